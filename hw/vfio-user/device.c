/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vfio-user client: hw/vfio's device operations (VFIODeviceIOOps) as
 * vfio-user messages.
 *
 * Each operation takes the kernel's structures, as hw/vfio passes them,
 * and checks everything the server answers before hw/vfio sees it: sizes,
 * indexes, counts, the region capability chain.  A server that lies gets
 * -EPROTO (hw/vfio reports "Protocol error") and the reason in the log,
 * never a buffer overrun.  -EINVAL is for what hw/vfio itself asked
 * wrong.
 */

#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "qemu/memfd.h"
#include "qemu/units.h"
#include "hw/vfio-user/device.h"
#include "hw/vfio-user/migration.h"
#include "trace.h"

static VFIOUserProxy *proxy_of(VFIODevice *vbasedev)
{
    return vfio_user_device_of(vbasedev)->proxy;
}

/*
 * The server's answer to @vbasedev's request breaks the protocol or our
 * bounds: say why and fail the operation with -EPROTO.  Only the first
 * reason reaches the log (hw/vfio logs every failed access itself, and
 * a hostile server must not be able to flood it); the trace event has
 * them all.
 */
int vfio_user_device_bad_replyv(VFIODevice *vbasedev, const char *fmt,
                                va_list ap)
{
    VFIOUserDevice *udev = vfio_user_device_of(vbasedev);
    g_autofree char *why = g_strdup_vprintf(fmt, ap);

    trace_vfio_user_bad_reply(vbasedev->name, why);
    if (!udev->said_bad_reply) {
        udev->said_bad_reply = true;
        error_report("vfio-user: %s: refused the server's answer: %s",
                     vbasedev->name, why);
    }
    return -EPROTO;
}

static int G_GNUC_PRINTF(2, 3) bad_reply(VFIODevice *vbasedev,
                                         const char *fmt, ...)
{
    va_list ap;
    int ret;

    va_start(ap, fmt);
    ret = vfio_user_device_bad_replyv(vbasedev, fmt, ap);
    va_end(ap);
    return ret;
}

static int vfio_user_get_device_info(VFIODevice *vbasedev,
                                     struct vfio_device_info *info)
{
    VFIOUserDeviceInfo msg = { .argsz = sizeof(msg) };
    VFIOUserDeviceInfo r;
    struct iovec iov = { .iov_base = &msg, .iov_len = sizeof(msg) };
    VFIOUserReply reply = { .buf = &r, .max = sizeof(r) };
    int ret;

    ret = vfio_user_request(proxy_of(vbasedev), VFIO_USER_DEVICE_GET_INFO,
                            &iov, 1, NULL, 0, &reply);
    if (ret < 0) {
        return ret;
    }
    if (reply.len < sizeof(r) || r.argsz < sizeof(r)) {
        return bad_reply(vbasedev, "DEVICE_GET_INFO reply of %zu bytes",
                         reply.len);
    }
    if (!(r.flags & VFIO_DEVICE_FLAGS_PCI) ||
        r.num_regions <= VFIO_PCI_CONFIG_REGION_INDEX ||
        r.num_regions > VFIO_USER_MAX_REGIONS ||
        r.num_irqs > VFIO_USER_MAX_IRQS) {
        return bad_reply(vbasedev, "device info flags 0x%x, %u regions, "
                         "%u irqs: a PCI device has config space (region "
                         "%d), at most %d regions and %d irqs", r.flags,
                         r.num_regions, r.num_irqs,
                         VFIO_PCI_CONFIG_REGION_INDEX, VFIO_USER_MAX_REGIONS,
                         VFIO_USER_MAX_IRQS);
    }
    info->flags = r.flags & (VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET);
    info->num_regions = r.num_regions;
    info->num_irqs = r.num_irqs;
    trace_vfio_user_device_info(vbasedev->name, r.flags, r.num_regions,
                                r.num_irqs);
    return 0;
}

/*
 * Check the capability chain of a region info of @len bytes: every
 * header and body inside the message, offsets strictly increasing (so it
 * cannot loop) and 8-byte aligned as the kernel lays them out (the
 * structures hold 64-bit fields, which hw/vfio reads in place), and
 * sparse mmap areas inside the region.
 */
static bool region_caps_valid(const struct vfio_region_info *info,
                              size_t len)
{
    uint32_t off = info->cap_offset;
    uint32_t prev = 0;

    while (off) {
        const struct vfio_info_cap_header *hdr;

        if (off < sizeof(*info) || off <= prev || (off % 8) ||
            len < sizeof(*hdr) || off > len - sizeof(*hdr)) {
            return false;
        }
        hdr = (const void *)info + off;
        if (hdr->id == VFIO_REGION_INFO_CAP_SPARSE_MMAP) {
            const struct vfio_region_info_cap_sparse_mmap *sp =
                (const void *)hdr;

            if (len - off < sizeof(*sp) ||
                sp->nr_areas > (len - off - sizeof(*sp)) /
                                sizeof(sp->areas[0])) {
                return false;
            }
            for (uint32_t i = 0; i < sp->nr_areas; i++) {
                uint64_t end = sp->areas[i].offset + sp->areas[i].size;

                if (end < sp->areas[i].offset || end > info->size) {
                    return false;
                }
            }
        } else if (hdr->id == VFIO_REGION_INFO_CAP_TYPE) {
            if (len - off < sizeof(struct vfio_region_info_cap_type)) {
                return false;
            }
        }
        prev = off;
        off = hdr->next;
    }
    return true;
}

/*
 * With secure-dma the server is not trusted, and what it hands us to map
 * into the guest must not be able to hurt QEMU: a file it can shrink
 * later kills QEMU with SIGBUS on the next guest access, and a file on a
 * filesystem that can stall a page fault (FUSE, NFS) freezes the vCPU
 * that touches it.  Only a memfd sealed against shrinking is neither; any
 * other region is accessed by message.
 */
static bool region_fd_safe(VFIOUserDevice *udev, int fd, uint32_t index)
{
    int seals;

    if (!udev->secure_dma) {
        return true;
    }
    seals = fcntl(fd, F_GET_SEALS);
    if (seals >= 0 && (seals & F_SEAL_SHRINK)) {
        return true;
    }
    if (!udev->warned_unsealed_fd) {
        udev->warned_unsealed_fd = true;
        warn_report("vfio-user: %s: region %u's fd is not a memfd sealed "
                    "against shrinking (F_SEAL_SHRINK); with secure-dma=on "
                    "such regions are accessed by message, not mapped",
                    vfio_user_name(udev->proxy), index);
    }
    return false;
}

/*
 * A file shorter than the region it backs would kill QEMU with SIGBUS on
 * the first guest access past its end: map only what the file covers.
 * (A server could still shrink it later: secure-dma rules that out by
 * asking for F_SEAL_SHRINK, region_fd_safe(); without secure-dma the
 * server is trusted with guest memory anyway.)
 */
static bool region_fd_covers(int fd, const struct vfio_region_info *info)
{
    struct stat st;

    if (fstat(fd, &st) < 0) {
        return false;
    }
    /* Not a file (a device node): the kernel checks the mmap itself. */
    return !S_ISREG(st.st_mode) ||
           (uint64_t)st.st_size >= info->offset + info->size;
}

/*
 * Keep one fd per region for the device's lifetime: hw/vfio asks for a
 * region's info several times, and a VFIORegion holds on to the fd it
 * was first given.  Returns the fd to use, or -1.
 */
static int keep_region_fd(VFIOUserDevice *udev, uint32_t index, int fd)
{
    if (index >= udev->num_regions) {
        close(fd);
        return -1;
    }
    if (udev->regions[index].fd >= 0) {
        close(fd);
    } else {
        udev->regions[index].fd = fd;
    }
    return udev->regions[index].fd;
}

/*
 * hw/vfio asks for some regions' info again long after realize (the ROM
 * when the guest first reads it) and sizes allocations by the answer: a
 * region keeps the size it was first given, for the device's lifetime.
 * What the server first said is also what a new connection must say
 * again (restore.c).
 */
static int region_size_unchanged(VFIODevice *vbasedev,
                                 const struct vfio_region_info *info)
{
    VFIOUserDevice *udev = vfio_user_device_of(vbasedev);
    VFIOUserRegionState *known;

    if (info->index >= udev->num_regions) {
        return 0;
    }
    known = &udev->regions[info->index];
    if (known->size == UINT64_MAX) {
        known->size = info->size;
        known->rw_flags = info->flags & (VFIO_REGION_INFO_FLAG_READ |
                                         VFIO_REGION_INFO_FLAG_WRITE);
    }
    if (known->size != info->size) {
        return bad_reply(vbasedev, "region %u changed size from 0x%" PRIx64
                         " to 0x%llx", info->index, known->size, info->size);
    }
    return 0;
}

/*
 * Ask the server for the info of region info->index, into @info
 * (info->argsz bytes), checking it; *@fd is the fd to mmap the region
 * from, -1 if the server gave none we can use (and then the region has
 * no MMAP flag): it is the caller's.
 */
static int region_info_request(VFIODevice *vbasedev,
                               struct vfio_region_info *info, int *fd)
{
    VFIOUserDevice *udev = vfio_user_device_of(vbasedev);
    VFIOUserRegionInfo msg = { .argsz = info->argsz, .index = info->index };
    struct iovec iov = { .iov_base = &msg, .iov_len = sizeof(msg) };
    int fds[8];
    VFIOUserReply reply = {
        .buf = info, .max = info->argsz, .fds = fds, .max_fds = ARRAY_SIZE(fds),
    };
    uint32_t index = info->index;
    uint32_t argsz = info->argsz;
    int ret;

    *fd = -1;
    if (index >= vbasedev->num_regions || argsz < sizeof(*info) ||
        argsz > VFIO_USER_MAX_REGION_INFO) {
        return -EINVAL;
    }
    ret = vfio_user_request(udev->proxy, VFIO_USER_DEVICE_GET_REGION_INFO,
                            &iov, 1, NULL, 0, &reply);
    if (ret < 0) {
        goto out_close;
    }
    if (reply.len < sizeof(*info) || info->index != index ||
        info->argsz < sizeof(*info) ||
        info->argsz > VFIO_USER_MAX_REGION_INFO ||
        info->size > INT64_MAX || info->offset > INT64_MAX - info->size) {
        ret = bad_reply(vbasedev, "region %u info: reply of %zu bytes for "
                        "index %u, argsz %u, size 0x%llx, offset 0x%llx",
                        index, reply.len, info->index, info->argsz,
                        info->size, info->offset);
        goto out_close;
    }
    if (info->argsz > argsz) {
        /* Too small: the caller retries with info->argsz. */
        info->flags &= ~VFIO_REGION_INFO_FLAG_CAPS;
        info->cap_offset = 0;
        ret = 0;
        goto out_close;
    }
    if (info->flags & VFIO_REGION_INFO_FLAG_CAPS) {
        if (!region_caps_valid(info, MIN(reply.len, info->argsz))) {
            ret = bad_reply(vbasedev, "region %u info: malformed capability "
                            "chain from offset 0x%x", index,
                            info->cap_offset);
            goto out_close;
        }
    } else {
        info->cap_offset = 0;
    }

    /*
     * One fd to mmap the region from.  Older libvfio-user sends one per
     * sparse area, all for the same file: keep the first.
     */
    if ((info->flags & VFIO_REGION_INFO_FLAG_MMAP) && reply.nfds > 0 &&
        region_fd_covers(fds[0], info) &&
        region_fd_safe(udev, fds[0], index)) {
        *fd = fds[0];
        for (size_t i = 1; i < reply.nfds; i++) {
            close(fds[i]);
        }
    } else {
        for (size_t i = 0; i < reply.nfds; i++) {
            close(fds[i]);
        }
        /* Nothing to map it from: access it by message. */
        info->flags &= ~VFIO_REGION_INFO_FLAG_MMAP;
    }
    return 0;

out_close:
    for (size_t i = 0; i < reply.nfds; i++) {
        close(fds[i]);
    }
    return ret;
}

static int vfio_user_get_region_info(VFIODevice *vbasedev,
                                     struct vfio_region_info *info, int *fd)
{
    uint32_t argsz = info->argsz;
    VFIOUserDevice *udev = vfio_user_device_of(vbasedev);
    int ret = region_info_request(vbasedev, info, fd);

    if (ret == 0 && info->argsz <= argsz) {
        ret = region_size_unchanged(vbasedev, info);
    }
    if (ret < 0) {
        if (*fd >= 0) {
            close(*fd);
            *fd = -1;
        }
        return ret;
    }
    if (*fd >= 0) {
        *fd = keep_region_fd(udev, info->index, *fd);
        if (*fd < 0) {
            info->flags &= ~VFIO_REGION_INFO_FLAG_MMAP;
        }
    }
    trace_vfio_user_region_info(vbasedev->name, info->index, info->flags,
                                info->size, info->offset, *fd);
    return 0;
}

static int vfio_user_get_irq_info(VFIODevice *vbasedev,
                                  struct vfio_irq_info *info)
{
    VFIOUserDevice *udev = vfio_user_device_of(vbasedev);
    VFIOUserIRQInfo msg = { .argsz = sizeof(msg), .index = info->index };
    VFIOUserIRQInfo r;
    struct iovec iov = { .iov_base = &msg, .iov_len = sizeof(msg) };
    VFIOUserReply reply = { .buf = &r, .max = sizeof(r) };
    int ret;

    if (info->index >= vbasedev->num_irqs) {
        return -EINVAL;
    }
    ret = vfio_user_request(proxy_of(vbasedev),
                            VFIO_USER_DEVICE_GET_IRQ_INFO,
                            &iov, 1, NULL, 0, &reply);
    if (ret < 0) {
        return ret;
    }
    if (reply.len < sizeof(r) || r.index != info->index ||
        r.count > VFIO_USER_MAX_IRQ_COUNT) {
        return bad_reply(vbasedev, "irq %u info: reply of %zu bytes for "
                         "index %u, count %u (at most %d)", info->index,
                         reply.len, r.index, r.count, VFIO_USER_MAX_IRQ_COUNT);
    }
    info->flags = r.flags;
    info->count = r.count;
    if (info->index < udev->num_irqs && !udev->irqs[info->index].known) {
        udev->irqs[info->index].known = true;
        udev->irqs[info->index].count = r.count;
        udev->irqs[info->index].flags = r.flags;
    }
    return 0;
}

static int set_irqs_msg(VFIOUserProxy *proxy, const struct vfio_irq_set *set,
                        uint32_t start, uint32_t count, const void *data,
                        size_t datalen, const int *fds, size_t nfds)
{
    VFIOUserIRQSet msg = {
        .argsz = sizeof(msg) + datalen,
        .flags = set->flags,
        .index = set->index,
        .start = start,
        .count = count,
    };
    struct iovec iov[2] = {
        { .iov_base = &msg, .iov_len = sizeof(msg) },
        { .iov_base = (void *)data, .iov_len = datalen },
    };

    return vfio_user_request(proxy, VFIO_USER_DEVICE_SET_IRQS, iov,
                             datalen ? 2 : 1, fds, nfds, NULL);
}

/*
 * The kernel takes an array of eventfds where -1 de-assigns a vector;
 * vfio-user sends eventfds as SCM_RIGHTS, at most max_msg_fds per
 * message, and de-assigns a range by sending none.  Split accordingly.
 */
int vfio_user_device_send_irq_set(VFIODevice *vbasedev,
                                  const struct vfio_irq_set *set)
{
    VFIOUserProxy *proxy = proxy_of(vbasedev);
    uint32_t max_fds = vfio_user_peer_caps(proxy)->max_msg_fds;
    const int32_t *fds = (const int32_t *)set->data;
    uint32_t i = 0;

    switch (set->flags & VFIO_IRQ_SET_DATA_TYPE_MASK) {
    case VFIO_IRQ_SET_DATA_NONE:
        return set_irqs_msg(proxy, set, set->start, set->count, NULL, 0,
                            NULL, 0);
    case VFIO_IRQ_SET_DATA_BOOL:
        return set_irqs_msg(proxy, set, set->start, set->count, set->data,
                            set->count, NULL, 0);
    case VFIO_IRQ_SET_DATA_EVENTFD:
        break;
    default:
        return -EINVAL;
    }

    if (set->count == 0) {
        return set_irqs_msg(proxy, set, set->start, 0, NULL, 0, NULL, 0);
    }
    while (i < set->count) {
        uint32_t n = 0;
        bool deassign = fds[i] < 0;
        int ret;

        /* A run of -1 (no fds) or of up to max_fds real eventfds. */
        while (i + n < set->count && (fds[i + n] < 0) == deassign &&
               (deassign || n < max_fds)) {
            n++;
        }
        ret = set_irqs_msg(proxy, set, set->start + i, n, NULL, 0,
                           deassign ? NULL : (const int *)&fds[i],
                           deassign ? 0 : n);
        if (ret < 0) {
            return ret;
        }
        i += n;
    }
    return 0;
}

static void irq_state_set_fd(int *slot, int fd)
{
    if (*slot >= 0) {
        close(*slot);
    }
    *slot = fd >= 0 ? dup(fd) : -1;
}

/*
 * Remember what @set, which the server accepted, set up: the eventfds
 * (our own dups, since hw/vfio closes its own when it is done with them)
 * and the masks, as the kernel's VFIO_DEVICE_SET_IRQS defines them.
 */
static void irq_state_record(VFIOUserDevice *udev,
                             const struct vfio_irq_set *set)
{
    uint32_t action = set->flags & VFIO_IRQ_SET_ACTION_TYPE_MASK;
    uint32_t data = set->flags & VFIO_IRQ_SET_DATA_TYPE_MASK;
    VFIOUserIRQState *irq;
    uint64_t end = (uint64_t)set->start + set->count;

    if (set->index >= udev->num_irqs || end > VFIO_USER_MAX_IRQ_COUNT) {
        return;
    }
    irq = &udev->irqs[set->index];
    if (action == VFIO_IRQ_SET_ACTION_TRIGGER &&
        data == VFIO_IRQ_SET_DATA_NONE && set->count == 0) {
        /* The whole index is disabled */
        for (uint32_t i = 0; i < irq->nvec; i++) {
            irq_state_set_fd(&irq->trigger[i], -1);
            irq_state_set_fd(&irq->unmask[i], -1);
            irq->masked[i] = false;
        }
        irq->enabled = 0;
        return;
    }
    if (end > irq->nvec) {
        irq->trigger = g_renew(int, irq->trigger, end);
        irq->unmask = g_renew(int, irq->unmask, end);
        irq->masked = g_renew(bool, irq->masked, end);
        for (uint32_t i = irq->nvec; i < end; i++) {
            irq->trigger[i] = irq->unmask[i] = -1;
            irq->masked[i] = false;
        }
        irq->nvec = end;
    }
    for (uint32_t i = 0; i < set->count; i++) {
        uint32_t v = set->start + i;
        bool on = data != VFIO_IRQ_SET_DATA_BOOL || set->data[i];

        if (data == VFIO_IRQ_SET_DATA_EVENTFD) {
            int fd = ((const int32_t *)set->data)[i];

            if (action == VFIO_IRQ_SET_ACTION_TRIGGER) {
                irq_state_set_fd(&irq->trigger[v], fd);
                /* The kernel enables the index for the whole range */
                irq->enabled = MAX(irq->enabled, v + 1);
            } else if (action == VFIO_IRQ_SET_ACTION_UNMASK) {
                irq_state_set_fd(&irq->unmask[v], fd);
            }
        } else if (action == VFIO_IRQ_SET_ACTION_MASK && on) {
            irq->masked[v] = true;
        } else if (action == VFIO_IRQ_SET_ACTION_UNMASK && on) {
            irq->masked[v] = false;
        }
    }
}

static int vfio_user_set_irqs(VFIODevice *vbasedev, struct vfio_irq_set *set)
{
    VFIOUserDevice *udev = vfio_user_device_of(vbasedev);
    int ret = vfio_user_device_send_irq_set(vbasedev, set);

    /*
     * A failed device (once realized: a server that dies during realize
     * fails it) takes the set as it drops region writes: hw/vfio
     * then keeps the state it asked for (it rolls back a failure), which
     * is what a server found by a reconnect must be told (restore.c).
     */
    if (ret < 0 && udev->realized && vfio_user_is_dead(udev->proxy)) {
        ret = 0;
    }
    if (ret == 0) {
        irq_state_record(udev, set);
    }
    return ret;
}

/*
 * Config space bits that hw/vfio parses come from the vetted copy,
 * whatever the server (or a dead one's all ones) says now.
 */
static void vet_config_read(VFIODevice *vbasedev, uint8_t index, off_t off,
                            uint32_t size, void *data)
{
    VFIOUserPCIVet *vet = vfio_user_device_of(vbasedev)->config_vet;

    if (vet && index == VFIO_PCI_CONFIG_REGION_INDEX) {
        vfio_user_pci_vet_read(vet, off, data, size);
    }
}

int vfio_user_device_read_unvetted(VFIODevice *vbasedev, uint8_t index,
                                   off_t off, uint32_t size, void *data)
{
    VFIOUserProxy *proxy = proxy_of(vbasedev);
    uint64_t max = vfio_user_peer_caps(proxy)->max_data_xfer_size;
    uint32_t done = 0;

    if (index >= vbasedev->num_regions) {
        return -EINVAL;
    }
    if (vfio_user_is_dead(proxy)) {
        /* A failed device: all ones, without a word per access. */
        memset(data, 0xff, size);
        return size;
    }
    while (done < size) {
        uint32_t count = MIN(size - done, max);
        VFIOUserRegionRW msg = {
            .offset = off + done, .region = index, .count = count,
        };
        struct iovec iov = { .iov_base = &msg, .iov_len = sizeof(msg) };
        /* BAR accesses are 1 to 8 bytes: keep them off the heap. */
        uint8_t small[sizeof(msg) + 64];
        g_autofree uint8_t *big = NULL;
        uint8_t *buf = count <= 64 ? small : (big = g_malloc(sizeof(msg) +
                                                              count));
        VFIOUserRegionRW *r = (VFIOUserRegionRW *)buf;
        VFIOUserReply reply = { .buf = buf, .max = sizeof(msg) + count };
        int ret;

        ret = vfio_user_request(proxy, VFIO_USER_REGION_READ, &iov, 1,
                                NULL, 0, &reply);
        if (ret < 0) {
            return ret;
        }
        if (reply.len != sizeof(msg) + count || r->count != count ||
            r->region != index || r->offset != msg.offset) {
            return bad_reply(vbasedev, "REGION_READ of region %u offset "
                             "0x%" PRIx64 " count %u: reply of %zu bytes for "
                             "region %u offset 0x%" PRIx64 " count %u", index,
                             (uint64_t)msg.offset, count, reply.len,
                             r->region, (uint64_t)r->offset, r->count);
        }
        memcpy((uint8_t *)data + done, r->data, count);
        done += count;
    }
    return size;
}

static int vfio_user_region_read(VFIODevice *vbasedev, uint8_t index,
                                 off_t off, uint32_t size, void *data)
{
    int ret = vfio_user_device_read_unvetted(vbasedev, index, off, size,
                                             data);

    if (ret == size) {
        vet_config_read(vbasedev, index, off, size, data);
    }
    return ret;
}

static int vfio_user_region_write(VFIODevice *vbasedev, uint8_t index,
                                  off_t off, uint32_t size, void *data,
                                  bool post)
{
    VFIOUserDevice *udev = vfio_user_device_of(vbasedev);
    uint64_t max = vfio_user_peer_caps(udev->proxy)->max_data_xfer_size;
    uint32_t done = 0;

    if (index >= vbasedev->num_regions) {
        return -EINVAL;
    }
    if (udev->config_vet && index == VFIO_PCI_CONFIG_REGION_INDEX) {
        vfio_user_pci_vet_write(udev->config_vet, off, data, size);
    }
    if (vfio_user_is_dead(udev->proxy)) {
        return size;            /* a failed device drops writes */
    }
    while (done < size) {
        uint32_t count = MIN(size - done, max);
        VFIOUserRegionRW msg = {
            .offset = off + done, .region = index, .count = count,
        };
        VFIOUserRegionRW r;
        struct iovec iov[2] = {
            { .iov_base = &msg, .iov_len = sizeof(msg) },
            { .iov_base = (uint8_t *)data + done, .iov_len = count },
        };
        VFIOUserReply reply = { .buf = &r, .max = sizeof(r) };
        int ret;

        if (post) {
            /*
             * Ordering holds without a reply: the server processes
             * messages in order, so a later read is answered after it.
             */
            ret = vfio_user_post(udev->proxy, VFIO_USER_REGION_WRITE,
                                 iov, 2);
        } else {
            ret = vfio_user_request(udev->proxy, VFIO_USER_REGION_WRITE,
                                    iov, 2, NULL, 0, &reply);
            if (ret == 0 && (reply.len < sizeof(r) || r.count != count)) {
                ret = bad_reply(vbasedev, "REGION_WRITE of region %u "
                                "offset 0x%" PRIx64 " count %u: reply of "
                                "%zu bytes", index, (uint64_t)msg.offset,
                                count, reply.len);
            }
        }
        if (ret < 0) {
            return ret;
        }
        done += count;
    }
    return size;
}

/*
 * A device without a server has nothing to reset: the server that a
 * reconnect finds starts afresh.  Succeed, since hw/vfio aborts QEMU
 * when the reset after a failed migration state change fails.
 */
static int vfio_user_device_reset(VFIODevice *vbasedev)
{
    VFIOUserProxy *proxy = proxy_of(vbasedev);

    if (vfio_user_is_dead(proxy)) {
        return 0;
    }
    return vfio_user_request(proxy, VFIO_USER_DEVICE_RESET, NULL, 0, NULL, 0,
                             NULL);
}

void vfio_user_device_attach_io(VFIODevice *vbasedev, VFIOUserDevice *udev)
{
    vbasedev->io_ops = &vfio_user_device_io_ops;
    vbasedev->io_opaque = udev;
}

const VFIODeviceIOOps vfio_user_device_io_ops = {
    .get_device_info = vfio_user_get_device_info,
    .get_region_info = vfio_user_get_region_info,
    .get_irq_info = vfio_user_get_irq_info,
    .set_irqs = vfio_user_set_irqs,
    .region_read = vfio_user_region_read,
    .region_write = vfio_user_region_write,
    .device_reset = vfio_user_device_reset,
    .device_feature = vfio_user_device_feature,
    .mig_data_read = vfio_user_mig_data_read,
    .mig_data_write = vfio_user_mig_data_write,
};

int vfio_user_device_query_region(VFIODevice *vbasedev, uint32_t index,
                                  struct vfio_region_info **info, int *fd)
{
    uint32_t argsz = sizeof(struct vfio_region_info);
    int ret;

    *info = NULL;
    /* Once more with the room the server asks for, and no more. */
    for (int attempt = 0;; attempt++) {
        *info = g_realloc(*info, argsz);
        memset(*info, 0, argsz);
        (*info)->index = index;
        (*info)->argsz = argsz;
        ret = region_info_request(vbasedev, *info, fd);
        if (ret < 0 || (*info)->argsz <= argsz) {
            break;
        }
        if (attempt > 0) {
            ret = bad_reply(vbasedev, "region %u info: asked for %u bytes "
                            "of room, then more", index, argsz);
            break;
        }
        argsz = (*info)->argsz;
    }
    if (ret < 0) {
        g_free(*info);
        *info = NULL;
    }
    return ret;
}

void vfio_user_device_init_state(VFIOUserDevice *udev, uint32_t num_regions,
                                 uint32_t num_irqs)
{
    udev->regions = g_new0(VFIOUserRegionState, num_regions);
    udev->num_regions = num_regions;
    for (uint32_t i = 0; i < num_regions; i++) {
        udev->regions[i].fd = -1;
        udev->regions[i].size = UINT64_MAX;
    }
    udev->irqs = g_new0(VFIOUserIRQState, num_irqs);
    udev->num_irqs = num_irqs;
}

void vfio_user_device_free_state(VFIOUserDevice *udev)
{
    for (uint32_t i = 0; i < udev->num_regions; i++) {
        if (udev->regions[i].fd >= 0) {
            close(udev->regions[i].fd);
        }
    }
    g_free(udev->regions);
    udev->regions = NULL;
    udev->num_regions = 0;
    for (uint32_t i = 0; i < udev->num_irqs; i++) {
        VFIOUserIRQState *irq = &udev->irqs[i];

        for (uint32_t v = 0; v < irq->nvec; v++) {
            irq_state_set_fd(&irq->trigger[v], -1);
            irq_state_set_fd(&irq->unmask[v], -1);
        }
        g_free(irq->trigger);
        g_free(irq->unmask);
        g_free(irq->masked);
    }
    g_free(udev->irqs);
    udev->irqs = NULL;
    udev->num_irqs = 0;
}
