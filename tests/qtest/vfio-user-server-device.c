/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The test server's PCI function: config space, BAR0's registers and
 * buffer, BAR1's memory, BAR2's MSI-X table and PBA, DEVICE_RESET, and
 * the requests that describe or access them.  vfio-user-server.h
 * documents the device as tests see it.
 */

#include "qemu/osdep.h"
#include "qemu/bitops.h"
#include <sys/mman.h>
#include "qemu/bswap.h"
#include "qemu/memfd.h"
#include "vfio-user-server-int.h"

/* Device model; called with the lock held */

void vu_config_init(VUTestServer *s)
{
    uint8_t *c = s->config, *w = s->config_wmask;
    unsigned msi = VU_TEST_CFG_MSI_CAP, msix = VU_TEST_CFG_MSIX_CAP;
    unsigned n = s->cfg.msix_vectors;

    memset(c, 0, VU_CFG_SIZE);
    memset(w, 0, VU_CFG_SIZE);
    stw_le_p(c + PCI_VENDOR_ID, s->cfg.vendor_id);
    stw_le_p(c + PCI_DEVICE_ID, s->cfg.device_id);
    stw_le_p(c + PCI_STATUS, PCI_STATUS_CAP_LIST);
    c[PCI_REVISION_ID] = 1;
    c[PCI_CLASS_PROG] = 0x00;
    stw_le_p(c + PCI_CLASS_DEVICE, 0x00ff);         /* class code 0x00ff00 */
    c[PCI_HEADER_TYPE] = PCI_HEADER_TYPE_NORMAL;
    stl_le_p(c + PCI_BASE_ADDRESS_0, PCI_BASE_ADDRESS_SPACE_MEMORY |
                                     PCI_BASE_ADDRESS_MEM_TYPE_32);
    stl_le_p(c + PCI_BASE_ADDRESS_1, PCI_BASE_ADDRESS_SPACE_MEMORY |
                                     PCI_BASE_ADDRESS_MEM_TYPE_32 |
                                     PCI_BASE_ADDRESS_MEM_PREFETCH);
    stw_le_p(c + PCI_SUBSYSTEM_VENDOR_ID, s->cfg.vendor_id);
    stw_le_p(c + PCI_SUBSYSTEM_ID, s->cfg.device_id);
    c[PCI_CAPABILITY_LIST] = msi;
    c[PCI_INTERRUPT_PIN] = 1;

    c[msi + PCI_CAP_LIST_ID] = PCI_CAP_ID_MSI;
    c[msi + PCI_CAP_LIST_NEXT] = n ? msix : 0;
    stw_le_p(c + msi + PCI_MSI_FLAGS, PCI_MSI_FLAGS_64BIT);
    if (n) {
        c[msix + PCI_CAP_LIST_ID] = PCI_CAP_ID_MSIX;
        c[msix + PCI_CAP_LIST_NEXT] = 0;
        stw_le_p(c + msix + PCI_MSIX_FLAGS, n - 1);
        stl_le_p(c + msix + PCI_MSIX_TABLE, VU_TEST_MSIX_TABLE_OFFSET | 2);
        stl_le_p(c + msix + PCI_MSIX_PBA, VU_TEST_MSIX_PBA_OFFSET | 2);
    }

    stw_le_p(w + PCI_COMMAND, PCI_COMMAND_IO | PCI_COMMAND_MEMORY |
                              PCI_COMMAND_MASTER | PCI_COMMAND_PARITY |
                              PCI_COMMAND_SERR | PCI_COMMAND_INTX_DISABLE);
    w[PCI_CACHE_LINE_SIZE] = 0xff;
    w[PCI_LATENCY_TIMER] = 0xff;
    w[PCI_INTERRUPT_LINE] = 0xff;
    stl_le_p(w + PCI_BASE_ADDRESS_0, ~(uint32_t)(VU_TEST_BAR0_SIZE - 1));
    stl_le_p(w + PCI_BASE_ADDRESS_1, ~(uint32_t)(VU_TEST_BAR1_SIZE - 1));
    if (n) {
        stl_le_p(w + PCI_BASE_ADDRESS_2, ~(uint32_t)(VU_TEST_BAR2_SIZE - 1));
    }
    stw_le_p(w + msi + PCI_MSI_FLAGS, PCI_MSI_FLAGS_ENABLE |
                                      PCI_MSI_FLAGS_QSIZE);
    stl_le_p(w + msi + PCI_MSI_ADDRESS_LO, 0xfffffffc);
    stl_le_p(w + msi + PCI_MSI_ADDRESS_HI, 0xffffffff);
    stw_le_p(w + msi + PCI_MSI_DATA_64, 0xffff);
    if (n) {
        stw_le_p(w + msix + PCI_MSIX_FLAGS, PCI_MSIX_FLAGS_ENABLE |
                                            PCI_MSIX_FLAGS_MASKALL);
    }
}

void vu_msix_table_init(VUTestServer *s)
{
    unsigned i;

    memset(s->msix_table, 0, sizeof(s->msix_table));
    for (i = 0; i < VU_TEST_MSIX_MAX_VECTORS; i++) {
        stl_le_p(s->msix_table + i * PCI_MSIX_ENTRY_SIZE +
                 PCI_MSIX_ENTRY_VECTOR_CTRL, PCI_MSIX_ENTRY_CTRL_MASKBIT);
    }
}

/* Without a memfd, BAR1 is plain memory and never offered for mmap */
bool vu_bar1_init(VUTestServer *s)
{
    void *p;

    s->bar1_fd = qemu_memfd_create("vu-test-bar1", VU_TEST_BAR1_SIZE, false,
                                   0, s->cfg.bar1_unsealed ? 0 :
                                   F_SEAL_SHRINK | F_SEAL_GROW, NULL);
    if (s->bar1_fd >= 0) {
        p = mmap(NULL, VU_TEST_BAR1_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
                 s->bar1_fd, 0);
    } else {
        p = mmap(NULL, VU_TEST_BAR1_SIZE, PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    }
    s->bar1 = p == MAP_FAILED ? NULL : p;
    return s->bar1;
}

void vu_bar1_free(VUTestServer *s)
{
    if (s->bar1) {
        munmap(s->bar1, VU_TEST_BAR1_SIZE);
    }
    vu_close_fd(&s->bar1_fd);
}

/*
 * DEVICE_RESET: registers, interrupt state, and the migration state
 * machine, back to RUNNING; the buffer and BARs stay
 */
static void vu_device_reset(VUTestServer *s)
{
    uint16_t cmd = PCI_COMMAND + 0, msi = VU_TEST_CFG_MSI_CAP + PCI_MSI_FLAGS;
    uint16_t msix = VU_TEST_CFG_MSIX_CAP + PCI_MSIX_FLAGS;

    s->scratch = 0;
    s->dma_src = s->dma_dst = s->dma_len = 0;
    s->dma_cmd = s->dma_status = s->dma_errno = 0;
    s->irq_errors = 0;
    vu_intx_lower(s);
    stw_le_p(s->config + cmd, 0);
    stw_le_p(s->config + msi, lduw_le_p(s->config + msi) &
                              ~(PCI_MSI_FLAGS_ENABLE | PCI_MSI_FLAGS_QSIZE));
    if (s->cfg.msix_vectors) {
        stw_le_p(s->config + msix, lduw_le_p(s->config + msix) &
                 ~(PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL));
    }
    vu_msix_table_init(s);
    vu_mig_reset(s);
    s->reset_count++;
}

static uint64_t vu_region_size(VUTestServer *s, unsigned index)
{
    switch (index) {
    case VFIO_PCI_BAR0_REGION_INDEX:
        return VU_TEST_BAR0_SIZE;
    case VFIO_PCI_BAR1_REGION_INDEX:
        return VU_TEST_BAR1_SIZE;
    case VFIO_PCI_BAR2_REGION_INDEX:
        return s->cfg.msix_vectors ? VU_TEST_BAR2_SIZE : 0;
    case VFIO_PCI_CONFIG_REGION_INDEX:
        return VU_CFG_SIZE;
    default:
        return 0;
    }
}

static bool vu_bar1_mappable(VUTestServer *s)
{
    return s->cfg.bar1_fd && s->bar1_fd >= 0 && s->client_max_fds >= 1;
}

static uint32_t vu_reg_read32(VUTestServer *s, unsigned off)
{
    switch (off) {
    case VU_TEST_REG_ID:
        return VU_TEST_ID_MAGIC;
    case VU_TEST_REG_SCRATCH:
        return s->scratch;
    case VU_TEST_REG_RESET_COUNT:
        return s->reset_count;
    case VU_TEST_REG_INTX_STATUS:
        return s->intx_asserted;
    case VU_TEST_REG_DMA_SRC:
        return s->dma_src;
    case VU_TEST_REG_DMA_SRC + 4:
        return s->dma_src >> 32;
    case VU_TEST_REG_DMA_DST:
        return s->dma_dst;
    case VU_TEST_REG_DMA_DST + 4:
        return s->dma_dst >> 32;
    case VU_TEST_REG_DMA_LEN:
        return s->dma_len;
    case VU_TEST_REG_DMA_LEN + 4:
        return s->dma_len >> 32;
    case VU_TEST_REG_DMA_CMD:
        return s->dma_cmd;
    case VU_TEST_REG_DMA_STATUS:
        return s->dma_status;
    case VU_TEST_REG_DMA_ERRNO:
        return s->dma_errno;
    case VU_TEST_REG_DMA_COUNT:
        return s->dma_count;
    case VU_TEST_REG_IRQ_ERRORS:
        return s->irq_errors;
    default:
        return 0;
    }
}

/* Returns true if the write starts a DMA */
static bool vu_reg_write32(VUTestServer *s, unsigned off, uint32_t val)
{
    switch (off) {
    case VU_TEST_REG_SCRATCH:
        s->scratch = val;
        break;
    case VU_TEST_REG_DMA_SRC:
    case VU_TEST_REG_DMA_SRC + 4:
        s->dma_src = deposit64(s->dma_src, (off & 4) * 8, 32, val);
        break;
    case VU_TEST_REG_DMA_DST:
    case VU_TEST_REG_DMA_DST + 4:
        s->dma_dst = deposit64(s->dma_dst, (off & 4) * 8, 32, val);
        break;
    case VU_TEST_REG_DMA_LEN:
    case VU_TEST_REG_DMA_LEN + 4:
        s->dma_len = deposit64(s->dma_len, (off & 4) * 8, 32, val);
        break;
    case VU_TEST_REG_DMA_CMD:
        s->dma_cmd = val & (VU_TEST_DMA_CMD_START | VU_TEST_DMA_CMD_TO_GUEST |
                            VU_TEST_DMA_CMD_IRQ);
        if (val & VU_TEST_DMA_CMD_START) {
            s->dma_status = 0;
            return true;
        }
        break;
    case VU_TEST_REG_IRQ_RAISE:
        vu_irq_raise_mode(s, val);
        break;
    case VU_TEST_REG_IRQ_LOWER:
        vu_intx_lower(s);
        break;
    }
    return false;
}

/* Any width, any alignment: each dword touched is read, merged, written */
static bool vu_regs_access(VUTestServer *s, unsigned off, uint8_t *data,
                           unsigned count, bool write)
{
    bool kick = false;
    unsigned end = off + count, d;

    for (d = off & ~3u; d < end; d += 4) {
        uint8_t bytes[4];
        unsigned i;

        stl_le_p(bytes, vu_reg_read32(s, d));
        for (i = 0; i < 4; i++) {
            if (d + i >= off && d + i < end) {
                if (write) {
                    bytes[i] = data[d + i - off];
                } else {
                    data[d + i - off] = bytes[i];
                }
            }
        }
        if (write) {
            kick |= vu_reg_write32(s, d, ldl_le_p(bytes));
        }
    }
    return kick;
}

static bool vu_bar0_access(VUTestServer *s, uint64_t off, uint8_t *data,
                           uint32_t count, bool write)
{
    bool kick = false;

    while (count) {
        uint32_t n;

        if (off < VU_TEST_REGS_SIZE) {
            n = MIN(count, VU_TEST_REGS_SIZE - off);
            kick |= vu_regs_access(s, off, data, n, write);
        } else if (off < VU_TEST_BUF_OFFSET) {
            n = MIN(count, VU_TEST_BUF_OFFSET - off);
            if (!write) {
                memset(data, 0, n);
            }
        } else {
            n = count;
            if (write) {
                memcpy(s->buf + off - VU_TEST_BUF_OFFSET, data, n);
                vu_mig_buf_dirty(s, off - VU_TEST_BUF_OFFSET, n);
            } else {
                memcpy(data, s->buf + off - VU_TEST_BUF_OFFSET, n);
            }
        }
        off += n;
        data += n;
        count -= n;
    }
    return kick;
}

static void vu_bar2_access(VUTestServer *s, uint64_t off, uint8_t *data,
                           uint32_t count, bool write)
{
    unsigned n = s->cfg.msix_vectors;
    unsigned table_end = VU_TEST_MSIX_TABLE_OFFSET + n * PCI_MSIX_ENTRY_SIZE;
    unsigned pba_end = VU_TEST_MSIX_PBA_OFFSET + DIV_ROUND_UP(n, 64) * 8;
    uint32_t i;

    for (i = 0; i < count; i++) {
        uint64_t a = off + i;

        if (a < table_end) {
            if (write) {
                s->msix_table[a - VU_TEST_MSIX_TABLE_OFFSET] = data[i];
            } else {
                data[i] = s->msix_table[a - VU_TEST_MSIX_TABLE_OFFSET];
            }
        } else if (!write && a >= VU_TEST_MSIX_PBA_OFFSET && a < pba_end) {
            unsigned bit, first = (a - VU_TEST_MSIX_PBA_OFFSET) * 8;

            data[i] = 0;
            for (bit = 0; bit < 8 && first + bit < n; bit++) {
                if (s->irqs[VFIO_PCI_MSIX_IRQ_INDEX].v[first + bit].pending) {
                    data[i] |= 1 << bit;
                }
            }
        } else if (!write) {
            data[i] = 0;
        }
    }
    if (write) {
        vu_irq_recheck(s);
    }
}

static void vu_config_access(VUTestServer *s, uint64_t off, uint8_t *data,
                             uint32_t count, bool write)
{
    uint32_t i;

    for (i = 0; i < count; i++) {
        uint8_t *c = &s->config[off + i], w = s->config_wmask[off + i];

        if (write) {
            *c = (*c & ~w) | (data[i] & w);
        } else {
            data[i] = *c;
            if (off + i == PCI_STATUS && s->intx_asserted) {
                data[i] |= PCI_STATUS_INTERRUPT;
            }
        }
    }
    if (write) {
        vu_irq_recheck(s);
    }
}

/* The access has been checked against the region; returns "start DMA" */
static bool vu_region_access(VUTestServer *s, unsigned region, uint64_t off,
                             uint8_t *data, uint32_t count, bool write)
{
    switch (region) {
    case VFIO_PCI_BAR0_REGION_INDEX:
        return vu_bar0_access(s, off, data, count, write);
    case VFIO_PCI_BAR1_REGION_INDEX:
        if (write) {
            memcpy(s->bar1 + off, data, count);
        } else {
            memcpy(data, s->bar1 + off, count);
        }
        break;
    case VFIO_PCI_BAR2_REGION_INDEX:
        vu_bar2_access(s, off, data, count, write);
        break;
    case VFIO_PCI_CONFIG_REGION_INDEX:
        vu_config_access(s, off, data, count, write);
        break;
    }
    return false;
}

int vu_handle_get_info(VUTestServer *s, VUMsg *msg, VUReply *r)
{
    VFIOUserDeviceInfo info;

    if (msg->payload_size < sizeof(info)) {
        return -EINVAL;
    }
    memcpy(&info, msg->payload, sizeof(info));
    if (info.argsz < sizeof(info)) {
        return -EINVAL;
    }
    info = (VFIOUserDeviceInfo) {
        .argsz = sizeof(info),
        .flags = VFIO_DEVICE_FLAGS_RESET | VFIO_DEVICE_FLAGS_PCI,
        .num_regions = VFIO_PCI_NUM_REGIONS,
        .num_irqs = VFIO_PCI_NUM_IRQS,
    };
    g_byte_array_append(r->payload, (uint8_t *)&info, sizeof(info));
    return 0;
}

int vu_handle_get_region_info(VUTestServer *s, VUMsg *msg, VUReply *r)
{
    struct vfio_region_info_cap_sparse_mmap sparse = {
        .header.id = VFIO_REGION_INFO_CAP_SPARSE_MMAP,
        .header.version = 1,
        .nr_areas = 2,
    };
    struct vfio_region_sparse_mmap_area areas[2] = {
        { VU_TEST_BAR1_AREA0_OFFSET, VU_TEST_BAR1_AREA0_SIZE },
        { VU_TEST_BAR1_AREA1_OFFSET, VU_TEST_BAR1_AREA1_SIZE },
    };
    VFIOUserRegionInfo in, out = { 0 };
    uint32_t full;

    if (msg->payload_size < sizeof(in)) {
        return -EINVAL;
    }
    memcpy(&in, msg->payload, sizeof(in));
    if (in.argsz < sizeof(in) || in.index >= VFIO_PCI_NUM_REGIONS) {
        return -EINVAL;
    }
    out.index = in.index;
    out.size = vu_region_size(s, in.index);
    out.argsz = sizeof(out);
    if (out.size) {
        out.flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
    }
    if (in.index == VFIO_PCI_BAR1_REGION_INDEX && vu_bar1_mappable(s)) {
        full = sizeof(out) + sizeof(sparse) + sizeof(areas);
        out.flags |= VFIO_REGION_INFO_FLAG_MMAP | VFIO_REGION_INFO_FLAG_CAPS;
        out.argsz = full;
        /* Like the kernel: no room for the caps, no cap_offset */
        out.cap_offset = in.argsz >= full ? sizeof(out) : 0;
        r->fd = s->bar1_fd;
    }
    g_byte_array_append(r->payload, (uint8_t *)&out, sizeof(out));
    if (out.cap_offset) {
        g_byte_array_append(r->payload, (uint8_t *)&sparse, sizeof(sparse));
        g_byte_array_append(r->payload, (uint8_t *)areas, sizeof(areas));
    }
    return 0;
}

static int vu_check_access(VUTestServer *s, const VFIOUserRegionRW *rw)
{
    uint64_t size;

    if (rw->region >= VFIO_PCI_NUM_REGIONS || !rw->count ||
        rw->count > vu_max_rx_xfer(s)) {
        return -EINVAL;
    }
    size = vu_region_size(s, rw->region);
    if (rw->offset > size || rw->count > size - rw->offset) {
        return -EINVAL;
    }
    return 0;
}

int vu_handle_region_read(VUTestServer *s, VUMsg *msg, VUReply *r)
{
    VFIOUserRegionRW rw;
    int err;

    if (msg->payload_size != sizeof(rw)) {
        return -EINVAL;
    }
    memcpy(&rw, msg->payload, sizeof(rw));
    err = vu_check_access(s, &rw);
    if (err) {
        return err;
    }
    g_byte_array_append(r->payload, (uint8_t *)&rw, sizeof(rw));
    g_byte_array_set_size(r->payload, sizeof(rw) + rw.count);
    g_mutex_lock(&s->lock);
    vu_region_access(s, rw.region, rw.offset, r->payload->data + sizeof(rw),
                     rw.count, false);
    g_mutex_unlock(&s->lock);
    return 0;
}

int vu_handle_region_write(VUTestServer *s, VUMsg *msg, VUReply *r)
{
    VFIOUserRegionRW rw;
    VUTestRegionWriteRecord rec;
    bool kick = false;
    int err;

    vu_msg_get_payload(msg, &rw, sizeof(rw));
    if (msg->payload_size < sizeof(rw) ||
        msg->payload_size - sizeof(rw) != rw.count) {
        err = -EINVAL;
    } else {
        err = vu_check_access(s, &rw);
    }
    g_mutex_lock(&s->lock);
    if (!err && rw.region == VFIO_PCI_BAR0_REGION_INDEX && vu_mig_frozen(s)) {
        err = -EBUSY;           /* a stopped device does not change */
    }
    rec = (VUTestRegionWriteRecord) {
        .offset = rw.offset, .region = rw.region, .count = rw.count,
        .no_reply = msg->hdr.flags & VFIO_USER_NO_REPLY, .err = -err,
    };
    vu_log(s, s->region_writes, &rec);
    if (!err) {
        kick = vu_region_access(s, rw.region, rw.offset,
                                msg->payload + sizeof(rw), rw.count, true);
    }
    g_mutex_unlock(&s->lock);
    if (err) {
        return err;
    }
    if (kick) {
        vu_dma_run(s);              /* before the reply, on purpose */
    }
    g_byte_array_append(r->payload, (uint8_t *)&rw, sizeof(rw));
    return 0;
}

int vu_handle_reset(VUTestServer *s, VUMsg *msg, VUReply *r)
{
    g_mutex_lock(&s->lock);
    vu_device_reset(s);
    g_mutex_unlock(&s->lock);
    return 0;
}

uint32_t vu_test_server_reg_read(VUTestServer *s, unsigned offset)
{
    uint32_t v;

    g_mutex_lock(&s->lock);
    v = vu_reg_read32(s, offset & ~3u);
    g_mutex_unlock(&s->lock);
    return v;
}

static void vu_mem_access(VUTestServer *s, uint8_t *mem, size_t size,
                          unsigned offset, void *buf, size_t len, bool write)
{
    g_assert(offset <= size && len <= size - offset);
    g_mutex_lock(&s->lock);
    if (write) {
        memcpy(mem + offset, buf, len);
    } else {
        memcpy(buf, mem + offset, len);
    }
    g_mutex_unlock(&s->lock);
}

void vu_test_server_buf_read(VUTestServer *s, unsigned offset, void *buf,
                             size_t len)
{
    vu_mem_access(s, s->buf, VU_TEST_BUF_SIZE, offset, buf, len, false);
}

void vu_test_server_buf_write(VUTestServer *s, unsigned offset,
                              const void *buf, size_t len)
{
    g_assert(offset <= VU_TEST_BUF_SIZE && len <= VU_TEST_BUF_SIZE - offset);
    g_mutex_lock(&s->lock);
    memcpy(s->buf + offset, buf, len);
    vu_mig_buf_dirty(s, offset, len);
    g_mutex_unlock(&s->lock);
}

void vu_test_server_bar1_read(VUTestServer *s, unsigned offset, void *buf,
                              size_t len)
{
    vu_mem_access(s, s->bar1, VU_TEST_BAR1_SIZE, offset, buf, len, false);
}

void vu_test_server_bar1_write(VUTestServer *s, unsigned offset,
                               const void *buf, size_t len)
{
    vu_mem_access(s, s->bar1, VU_TEST_BAR1_SIZE, offset, (void *)buf, len,
                  true);
}
