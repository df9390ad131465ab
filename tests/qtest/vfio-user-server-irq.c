/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The test server's interrupts: INTx, MSI, MSI-X, ERR and REQ, each
 * signalled through the eventfd SET_IRQS gave it, or left pending while
 * masked.
 */

#include "qemu/osdep.h"
#include "qemu/bswap.h"
#include "qemu/host-utils.h"
#include "vfio-user-server-int.h"

void vu_irqs_init(VUTestServer *s)
{
    static const uint32_t flags[VFIO_PCI_NUM_IRQS] = {
        [VFIO_PCI_INTX_IRQ_INDEX] = VFIO_IRQ_INFO_EVENTFD |
                                    VFIO_IRQ_INFO_MASKABLE |
                                    VFIO_IRQ_INFO_AUTOMASKED,
        [VFIO_PCI_MSI_IRQ_INDEX] = VFIO_IRQ_INFO_EVENTFD |
                                   VFIO_IRQ_INFO_NORESIZE,
        [VFIO_PCI_MSIX_IRQ_INDEX] = VFIO_IRQ_INFO_EVENTFD,
        [VFIO_PCI_ERR_IRQ_INDEX] = VFIO_IRQ_INFO_EVENTFD,
        [VFIO_PCI_REQ_IRQ_INDEX] = VFIO_IRQ_INFO_EVENTFD,
    };
    unsigned i, j;

    for (i = 0; i < VFIO_PCI_NUM_IRQS; i++) {
        VUIrqIndex *ix = &s->irqs[i];

        ix->count = i == VFIO_PCI_MSIX_IRQ_INDEX ? s->cfg.msix_vectors : 1;
        ix->info_flags = flags[i];
        if (i == VFIO_PCI_MSIX_IRQ_INDEX && s->cfg.msix_noresize) {
            ix->info_flags |= VFIO_IRQ_INFO_NORESIZE;
        }
        ix->v = g_new0(VUIrq, MAX(ix->count, 1));
        for (j = 0; j < MAX(ix->count, 1); j++) {
            ix->v[j].trigger_fd = ix->v[j].mask_fd = ix->v[j].unmask_fd = -1;
        }
    }
}

static bool vu_irq_masked(VUTestServer *s, unsigned index, unsigned vector)
{
    uint16_t ctrl;

    if (s->irqs[index].v[vector].masked) {
        return true;
    }
    if (index == VFIO_PCI_INTX_IRQ_INDEX) {
        return lduw_le_p(s->config + PCI_COMMAND) & PCI_COMMAND_INTX_DISABLE;
    }
    if (index == VFIO_PCI_MSIX_IRQ_INDEX && s->cfg.msix_table_masks) {
        ctrl = lduw_le_p(s->config + VU_TEST_CFG_MSIX_CAP + PCI_MSIX_FLAGS);
        return (ctrl & PCI_MSIX_FLAGS_MASKALL) ||
               (ldl_le_p(s->msix_table + vector * PCI_MSIX_ENTRY_SIZE +
                         PCI_MSIX_ENTRY_VECTOR_CTRL) &
                PCI_MSIX_ENTRY_CTRL_MASKBIT);
    }
    return false;
}

/* Signal a vector, or leave it pending if masked; returns 0 or -errno */
static int vu_irq_signal(VUTestServer *s, unsigned index, unsigned vector)
{
    VUIrq *v = &s->irqs[index].v[vector];

    if (vu_irq_masked(s, index, vector)) {
        if (!v->pending) {
            v->pending = true;
            s->stats.irqs_pending[index]++;
        }
        return 0;
    }
    v->pending = false;
    if (index == VFIO_PCI_INTX_IRQ_INDEX) {
        v->masked = true;               /* VFIO_IRQ_INFO_AUTOMASKED */
    }
    if (v->trigger_fd < 0) {
        s->stats.irqs_lost[index]++;
        return -ENOENT;
    }
    if (eventfd_write(v->trigger_fd, 1) < 0) {
        s->stats.irqs_lost[index]++;
        return -errno;
    }
    s->stats.irqs_signalled[index]++;
    return 0;
}

/* Deliver what a mask held back, now that it may be gone */
void vu_irq_recheck(VUTestServer *s)
{
    unsigned i, j;

    for (i = 0; i < VFIO_PCI_NUM_IRQS; i++) {
        for (j = 0; j < s->irqs[i].count; j++) {
            bool want = i == VFIO_PCI_INTX_IRQ_INDEX ? s->intx_asserted
                                                     : s->irqs[i].v[j].pending;

            if (want && !vu_irq_masked(s, i, j)) {
                vu_irq_signal(s, i, j);
            }
        }
    }
}

static int vu_irq_raise(VUTestServer *s, unsigned index, unsigned vector)
{
    if (index >= VFIO_PCI_NUM_IRQS || vector >= s->irqs[index].count) {
        return -EINVAL;
    }
    if (index == VFIO_PCI_INTX_IRQ_INDEX) {
        s->intx_asserted = true;
    }
    return vu_irq_signal(s, index, vector);
}

/* IRQ_RAISE: the vector of whichever interrupt mode is enabled */
void vu_irq_raise_mode(VUTestServer *s, uint32_t vector)
{
    unsigned index = VFIO_PCI_INTX_IRQ_INDEX;
    int err;

    if (s->irqs[VFIO_PCI_MSIX_IRQ_INDEX].enabled) {
        index = VFIO_PCI_MSIX_IRQ_INDEX;
    } else if (s->irqs[VFIO_PCI_MSI_IRQ_INDEX].enabled) {
        index = VFIO_PCI_MSI_IRQ_INDEX;
    }
    err = vu_irq_raise(s, index, vector);
    if (err) {
        s->irq_errors++;
    }
}

void vu_intx_lower(VUTestServer *s)
{
    s->intx_asserted = false;
    s->irqs[VFIO_PCI_INTX_IRQ_INDEX].v[0].pending = false;
}

/* The client signalled the INTx unmask eventfd (a KVM resample fd) */
void vu_intx_unmask(VUTestServer *s)
{
    g_mutex_lock(&s->lock);
    s->irqs[VFIO_PCI_INTX_IRQ_INDEX].v[0].masked = false;
    vu_irq_recheck(s);
    g_mutex_unlock(&s->lock);
}

void vu_irq_disable(VUTestServer *s, unsigned index)
{
    VUIrqIndex *ix = &s->irqs[index];
    unsigned i;

    for (i = 0; i < ix->count; i++) {
        vu_close_fd(&ix->v[i].trigger_fd);
        vu_close_fd(&ix->v[i].mask_fd);
        vu_close_fd(&ix->v[i].unmask_fd);
        ix->v[i].masked = false;
        ix->v[i].pending = false;
    }
    ix->enabled = false;
}

int vu_handle_get_irq_info(VUTestServer *s, VUMsg *msg, VUReply *r)
{
    VFIOUserIRQInfo info;

    if (msg->payload_size < sizeof(info)) {
        return -EINVAL;
    }
    memcpy(&info, msg->payload, sizeof(info));
    if (info.argsz < sizeof(info) || info.index >= VFIO_PCI_NUM_IRQS) {
        return -EINVAL;
    }
    info.argsz = sizeof(info);
    info.count = s->irqs[info.index].count;
    info.flags = info.count ? s->irqs[info.index].info_flags : 0;
    g_byte_array_append(r->payload, (uint8_t *)&info, sizeof(info));
    return 0;
}

/*
 * SET_IRQS with the semantics of the kernel's vfio-pci, eventfds taken
 * from the message: as many as @count, or none to de-assign.  For INTx,
 * UNMASK with an eventfd is the kernel's resample fd: we unmask when the
 * client signals it.  Other MASK/UNMASK eventfds are kept and recorded.
 */
static int vu_do_set_irqs(VUTestServer *s, VUMsg *msg, VFIOUserIRQSet *is)
{
    uint32_t data = is->flags & VFIO_IRQ_SET_DATA_TYPE_MASK;
    uint32_t action = is->flags & VFIO_IRQ_SET_ACTION_TYPE_MASK;
    VUIrqIndex *ix;
    uint32_t i;

    if (msg->payload_size < sizeof(*is) || is->argsz < sizeof(*is) ||
        is->index >= VFIO_PCI_NUM_IRQS ||
        (is->flags & ~(VFIO_IRQ_SET_DATA_TYPE_MASK |
                       VFIO_IRQ_SET_ACTION_TYPE_MASK)) ||
        ctpop32(data) != 1 || ctpop32(action) != 1) {
        return -EINVAL;
    }
    ix = &s->irqs[is->index];
    if (!is->count) {
        if (data != VFIO_IRQ_SET_DATA_NONE || is->start || msg->nfds) {
            return -EINVAL;
        }
        if (action == VFIO_IRQ_SET_ACTION_TRIGGER) {
            vu_irq_disable(s, is->index);
        }
        return 0;
    }
    if (is->start >= ix->count || is->count > ix->count - is->start) {
        return -EINVAL;
    }
    if (data == VFIO_IRQ_SET_DATA_BOOL &&
        msg->payload_size - sizeof(*is) < is->count) {
        return -EINVAL;
    }
    if (data == VFIO_IRQ_SET_DATA_EVENTFD) {
        if (msg->nfds && msg->nfds != is->count) {
            return -EINVAL;
        }
    } else if (msg->nfds) {
        return -EINVAL;
    }

    for (i = 0; i < is->count; i++) {
        unsigned vec = is->start + i;
        VUIrq *v = &ix->v[vec];
        int *fdp;

        if (data == VFIO_IRQ_SET_DATA_EVENTFD) {
            fdp = action == VFIO_IRQ_SET_ACTION_TRIGGER ? &v->trigger_fd :
                  action == VFIO_IRQ_SET_ACTION_MASK ? &v->mask_fd :
                  &v->unmask_fd;
            vu_close_fd(fdp);
            if (msg->nfds) {
                *fdp = msg->fds[i];
                msg->fds[i] = -1;
            }
            continue;
        }
        if (data == VFIO_IRQ_SET_DATA_BOOL &&
            !msg->payload[sizeof(*is) + i]) {
            continue;
        }
        if (action == VFIO_IRQ_SET_ACTION_TRIGGER) {
            vu_irq_signal(s, is->index, vec);
        } else {
            v->masked = action == VFIO_IRQ_SET_ACTION_MASK;
        }
    }
    if (data == VFIO_IRQ_SET_DATA_EVENTFD &&
        action == VFIO_IRQ_SET_ACTION_TRIGGER) {
        ix->enabled = true;
    }
    if (action == VFIO_IRQ_SET_ACTION_UNMASK) {
        vu_irq_recheck(s);
    }
    return 0;
}

int vu_handle_set_irqs(VUTestServer *s, VUMsg *msg, VUReply *r)
{
    VFIOUserIRQSet is;
    VUTestSetIrqsRecord rec;
    int err;

    vu_msg_get_payload(msg, &is, sizeof(is));
    g_mutex_lock(&s->lock);
    err = vu_do_set_irqs(s, msg, &is);
    rec = (VUTestSetIrqsRecord) {
        .index = is.index, .start = is.start, .count = is.count,
        .flags = is.flags, .nfds = msg->nfds, .err = -err,
    };
    vu_log(s, s->set_irqs, &rec);
    g_mutex_unlock(&s->lock);
    return err;
}

int vu_test_server_raise_irq(VUTestServer *s, unsigned index,
                             unsigned vector)
{
    int err;

    g_mutex_lock(&s->lock);
    err = vu_irq_raise(s, index, vector);
    g_mutex_unlock(&s->lock);
    return err;
}

void vu_test_server_lower_intx(VUTestServer *s)
{
    g_mutex_lock(&s->lock);
    vu_intx_lower(s);
    g_mutex_unlock(&s->lock);
}
