/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vfio-user client: an IOMMU backend for hw/vfio whose map and unmap are
 * VFIO_USER_DMA_MAP and VFIO_USER_DMA_UNMAP messages.
 *
 * hw/vfio's memory listener and vIOMMU notifiers call dma_map with the
 * host address of guest RAM; from it we find the RAMBlock, and so the
 * memory fd and the offset in that file (including the RAMBlock's own
 * offset in its file), which a trusted server mmaps.  With secure-dma no
 * fd is ever sent: the server must ask for every access with DMA_READ or
 * DMA_WRITE, which dma.c checks against the table kept here.
 *
 * Each vfio-user device has its own connection, so its own container.
 *
 * Behind a vIOMMU, with secure-dma, the server is not told of each page
 * the guest maps: a DMA_MAP without an fd only lets it ask, and dma.c
 * answers only for the pages in the table, as an IOMMU faults the rest.
 * The server is told of the vIOMMU's IOVA space instead, in blocks
 * (IOVA_BLOCK), each once, and the guest's maps and unmaps stay here: a
 * vCPU that maps a page does not wait for the server, and a transfer over
 * pages contiguous in IOVA is one DMA request, not one per page.
 */

#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "qemu/range.h"
#include "qapi/error.h"
#include "exec/ramblock.h"
#include "hw/vfio-user/container.h"
#include "hw/vfio-user/device.h"
#include "trace.h"

/* How much of a vIOMMU's IOVA space the server is told of at once */
#define IOVA_BLOCK (1ULL << 30)

struct VFIOUserContainer {
    VFIOContainerBase bcontainer;
    VFIOUserProxy *proxy;
    VFIOUserDMATable *dma;
    bool secure_dma;
    /* Range: where a vIOMMU translates; noted under secure-dma only */
    GArray *iommu_ranges;
    GArray *iova_blocks;        /* Range: what the server was told of */
};

OBJECT_DECLARE_SIMPLE_TYPE(VFIOUserContainer, VFIO_IOMMU_USER)

static VFIOUserContainer *user_container(const VFIOContainerBase *bcontainer)
{
    return container_of(bcontainer, VFIOUserContainer, bcontainer);
}

/*
 * A DMA_MAP or DMA_UNMAP the server did not answer in time leaves us not
 * knowing what it can reach, and the next one would wait as long again,
 * under the BQL: a device with thousands of vIOMMU mappings would hang
 * QEMU for hours at unplug.  The server is as good as dead: drop it.
 */
static void vfio_user_dma_timed_out(VFIOUserContainer *container,
                                    const char *what, hwaddr iova,
                                    uint64_t size)
{
    vfio_user_kill(container->proxy, ECONNRESET, "%s of [0x%" HWADDR_PRIx
                   ", +0x%" PRIx64 ") not answered in %u ms", what, iova,
                   size, vfio_user_timeout_ms(container->proxy));
}

/*
 * [iova, iova + size) as a Range, built from its inclusive last byte so
 * that a span ending at 2^64 fits.  A span that wraps around 0, or is
 * empty, comes out empty: no range contains it.  Size 0 at IOVA 0 reads
 * as all 2^64 bytes, whose size does not fit in 64 bits.
 */
static Range iova_span(uint64_t iova, uint64_t size)
{
    uint64_t last = iova + (size - 1);
    Range span = range_empty;

    if (last >= iova) {
        range_set_bounds(&span, iova, last);
    }
    return span;
}

/* The range of @ranges that covers [iova, iova + size), if any */
static Range *find_range(GArray *ranges, uint64_t iova, uint64_t size)
{
    Range span = iova_span(iova, size);

    for (guint i = 0; i < ranges->len; i++) {
        Range *r = &g_array_index(ranges, Range, i);

        if (range_contains_range(r, &span)) {
            return r;
        }
    }
    return NULL;
}

/*
 * hw/vfio's listener calls add_window for every section before it maps
 * it: note where a vIOMMU translates.  Not in the fd mode, whose server
 * mmap()s each page it is given.
 */
static bool vfio_user_add_window(VFIOContainerBase *bcontainer,
                                 MemoryRegionSection *section, Error **errp)
{
    VFIOUserContainer *container = user_container(bcontainer);
    uint64_t start = section->offset_within_address_space;
    Int128 end = int128_add(int128_make64(start), section->size);
    /* The last byte, not the end: a vIOMMU's section may end at 2^64 */
    uint64_t last = int128_get64(int128_sub(end, int128_one()));
    Range r;

    if (container->secure_dma && memory_region_is_iommu(section->mr) &&
        int128_nz(section->size)) {
        range_set_bounds(&r, start, last);
        trace_vfio_user_dma_iommu_range(vfio_user_name(container->proxy),
                                        true, start, last);
        g_array_append_val(container->iommu_ranges, r);
    }
    return true;
}

/* Called after the listener unmapped the whole section: forget it */
static void vfio_user_del_window(VFIOContainerBase *bcontainer,
                                 MemoryRegionSection *section)
{
    VFIOUserContainer *container = user_container(bcontainer);

    if (!memory_region_is_iommu(section->mr)) {
        return;
    }
    for (guint i = 0; i < container->iommu_ranges->len; i++) {
        Range *r = &g_array_index(container->iommu_ranges, Range, i);

        if (range_lob(r) == section->offset_within_address_space) {
            trace_vfio_user_dma_iommu_range(vfio_user_name(container->proxy),
                                        false, range_lob(r), range_upb(r));
            g_array_remove_index(container->iommu_ranges, i);
            return;
        }
    }
}

/*
 * Tell the server about [iova, iova + size) -> guest RAM in RAMBlock @rb
 * at @offset, which is in the table already: with the memory's fd where
 * it has one and the server is trusted with it (@rb NULL: no fd).
 */
static int send_dma_map(VFIOUserContainer *container, hwaddr iova,
                        uint64_t size, RAMBlock *rb, ram_addr_t offset,
                        bool writable)
{
    VFIOUserDMAMap msg = {
        .argsz = sizeof(msg),
        .flags = VFIO_USER_F_DMA_REGION_READ |
                 (writable ? VFIO_USER_F_DMA_REGION_WRITE : 0),
        .address = iova,
        .size = size,
    };
    struct iovec iov = { .iov_base = &msg, .iov_len = sizeof(msg) };
    int fd = -1;
    int ret;

    if (rb && !container->secure_dma) {
        fd = qemu_ram_get_fd(rb);
        if (fd >= 0) {
            msg.offset = rb->fd_offset + offset;
        }
    }
    trace_vfio_user_dma_map(vfio_user_name(container->proxy), iova, size,
                            msg.flags, msg.offset, fd);
    ret = vfio_user_request(container->proxy, VFIO_USER_DMA_MAP, &iov, 1,
                            fd >= 0 ? &fd : NULL, fd >= 0 ? 1 : 0, NULL);
    if (ret == -ETIMEDOUT) {
        vfio_user_dma_timed_out(container, "DMA_MAP", iova, size);
    }
    return ret;
}

/*
 * [iova, iova + size) lies in @iommu, a vIOMMU's range: tell the server
 * of the blocks around it it does not know of yet.
 */
static int tell_iova_blocks(VFIOUserContainer *container, Range *iommu,
                            uint64_t iova, uint64_t size)
{
    uint64_t block = QEMU_ALIGN_DOWN(iova, IOVA_BLOCK);

    for (;;) {
        Range b;
        int ret;

        /* Never empty: each block holds a byte of [iova, iova + size) */
        range_set_bounds(&b, MAX(block, range_lob(iommu)),
                         MIN(block + (IOVA_BLOCK - 1), range_upb(iommu)));
        if (!find_range(container->iova_blocks, range_lob(&b), 1)) {
            ret = send_dma_map(container, range_lob(&b), range_size(&b),
                               NULL, 0, true);
            if (ret < 0) {
                return ret;
            }
            g_array_append_val(container->iova_blocks, b);
        }
        if (range_upb(&b) >= iova + (size - 1)) {
            return 0;
        }
        block += IOVA_BLOCK;
    }
}

/* The blocks inside [iova, iova + size) go: the vIOMMU's range did */
static void untell_iova_blocks(VFIOUserContainer *container, uint64_t iova,
                               uint64_t size)
{
    Range span = iova_span(iova, size);

    for (guint i = 0; i < container->iova_blocks->len;) {
        Range b = g_array_index(container->iova_blocks, Range, i);
        VFIOUserDMAUnmap msg = {
            .argsz = sizeof(msg),
            .address = range_lob(&b),
            .size = range_size(&b),
        };
        struct iovec iov = { .iov_base = &msg, .iov_len = sizeof(msg) };

        if (!range_contains_range(&span, &b)) {
            i++;
            continue;
        }
        g_array_remove_index_fast(container->iova_blocks, i);
        trace_vfio_user_dma_unmap(vfio_user_name(container->proxy),
                                  msg.address, msg.size);
        /* Posted, as any unmap under secure-dma (see vfio_user_dma_unmap) */
        vfio_user_post(container->proxy, VFIO_USER_DMA_UNMAP, &iov, 1);
    }
}

static int vfio_user_dma_map(const VFIOContainerBase *bcontainer,
                             hwaddr iova, ram_addr_t size, void *vaddr,
                             bool readonly)
{
    VFIOUserContainer *container = user_container(bcontainer);
    const char *name = vfio_user_name(container->proxy);
    ram_addr_t offset;
    RAMBlock *rb = qemu_ram_block_from_host(vaddr, false, &offset);
    Range *iommu;
    int ret;

    /*
     * Only guest RAM: never MMIO, never another device's BAR (a RAM
     * device region), which the server has no business reaching.
     */
    if (!rb || memory_region_is_ram_device(rb->mr)) {
        trace_vfio_user_dma_map_skip(name, iova, size);
        return 0;
    }
    if (vfio_user_dma_table_count(container->dma) >=
        vfio_user_peer_caps(container->proxy)->max_dma_maps) {
        ret = -ENOSPC;
        goto fail;
    }

    /* In the table before the server hears of it. */
    ret = vfio_user_dma_table_add(container->dma, iova, size, vaddr, rb->mr,
                                  qemu_ram_get_offset(rb) + offset,
                                  !readonly);
    if (ret < 0) {
        goto fail;
    }
    iommu = find_range(container->iommu_ranges, iova, size);
    if (iommu) {
        ret = tell_iova_blocks(container, iommu, iova, size);
    } else {
        ret = send_dma_map(container, iova, size, rb, offset, !readonly);
    }
    if (ret < 0 && bcontainer->initialized &&
        vfio_user_is_dead(container->proxy)) {
        /*
         * No server to tell: the mapping stays in the table, for the
         * server that a reconnect finds (restore.c) to be told of it.
         */
        return 0;
    }
    if (ret < 0) {
        g_array_unref(vfio_user_dma_table_remove(container->dma, iova, size));
        goto fail;
    }
    return 0;

fail:
    if (!bcontainer->initialized) {
        return ret;             /* realize fails with hw/vfio's message */
    }
    /*
     * At run time hw/vfio would abort QEMU on a failed map: a server
     * must not be able to do that.  The device cannot DMA there; say so.
     */
    error_report("vfio-user: %s: DMA_MAP of [0x%" HWADDR_PRIx ", +0x%"
                 PRIx64 ") failed: %s; the device cannot reach that memory",
                 name, iova, (uint64_t)size, strerror(-ret));
    return 0;
}

static int vfio_user_dma_unmap(const VFIOContainerBase *bcontainer,
                               hwaddr iova, ram_addr_t size,
                               IOMMUTLBEntry *iotlb)
{
    VFIOUserContainer *container = user_container(bcontainer);
    g_autoptr(GArray) removed = NULL;
    int ret = 0;

    /* Out of the table, and no transfer in flight, before the message. */
    removed = vfio_user_dma_table_remove(container->dma, iova, size);
    for (guint i = 0; i < removed->len; i++) {
        VFIOUserDMARange *r = &g_array_index(removed, VFIOUserDMARange, i);
        VFIOUserDMAUnmap msg = {
            .argsz = sizeof(msg),
            .address = r->iova,
            .size = r->size,
        };
        struct iovec iov = { .iov_base = &msg, .iov_len = sizeof(msg) };
        VFIOUserDMAUnmap echo;
        VFIOUserReply reply = { .buf = &echo, .max = sizeof(echo) };
        int err;

        if (find_range(container->iommu_ranges, r->iova, r->size)) {
            continue;           /* the server only knows of the block */
        }
        trace_vfio_user_dma_unmap(vfio_user_name(container->proxy),
                                  r->iova, r->size);
        if (container->secure_dma) {
            /*
             * The server never had the memory, only our word that it may
             * ask for it, and that word is gone with the table entry:
             * nothing to wait for.  Posted, the unmap still comes before
             * whatever we ask next (a map of the same IOVA, the guest's
             * doorbell), and a vCPU unmapping a vIOMMU page does not wait
             * for the server.
             */
            err = vfio_user_post(container->proxy, VFIO_USER_DMA_UNMAP,
                                 &iov, 1);
        } else {
            err = vfio_user_request(container->proxy, VFIO_USER_DMA_UNMAP,
                                    &iov, 1, NULL, 0, &reply);
        }
        if (err == -ETIMEDOUT) {
            vfio_user_dma_timed_out(container, "DMA_UNMAP", r->iova,
                                    r->size);
            err = -ECONNRESET;
        }
        /* A dead server holds nothing of ours any more. */
        if (err < 0 && err != -ECONNRESET && !ret) {
            ret = err;
        }
    }
    untell_iova_blocks(container, iova, size);
    return ret;
}

static bool vfio_user_container_attach(const char *name,
                                       VFIODevice *vbasedev,
                                       AddressSpace *as, Error **errp)
{
    VFIOUserDevice *udev = vfio_user_device_of(vbasedev);
    const VFIOUserPeerCaps *caps = vfio_user_peer_caps(udev->proxy);
    struct vfio_device_info info = { .argsz = sizeof(info) };
    VFIOUserContainer *container;
    VFIOContainerBase *bcontainer;
    VFIOAddressSpace *space;
    int ret;

    ret = vbasedev->io_ops->get_device_info(vbasedev, &info);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "cannot get device info");
        return false;
    }
    vbasedev->num_irqs = info.num_irqs;
    vbasedev->num_regions = info.num_regions;
    vbasedev->flags = info.flags;
    vbasedev->reset_works = !!(info.flags & VFIO_DEVICE_FLAGS_RESET);
    vfio_user_device_init_state(udev, info.num_regions, info.num_irqs);

    space = vfio_get_address_space(as);
    container = VFIO_IOMMU_USER(object_new(TYPE_VFIO_IOMMU_USER));
    container->proxy = udev->proxy;
    container->secure_dma = udev->secure_dma;
    container->dma = vfio_user_dma_table_new(udev->proxy);
    container->iommu_ranges = g_array_new(false, false, sizeof(Range));
    container->iova_blocks = g_array_new(false, false, sizeof(Range));
    vfio_user_set_request_handler(udev->proxy, vfio_user_dma_handle_request,
                                  container->dma);

    bcontainer = &container->bcontainer;
    bcontainer->pgsizes = caps->pgsizes;
    /*
     * Under secure-dma every byte the server writes to guest memory goes
     * through dma.c, which marks it dirty as it writes: the container
     * tracks the device's DMA exactly, as an IOMMU with dirty tracking.
     */
    bcontainer->dirty_pages_supported = container->secure_dma;
    vbasedev->iommu_dirty_tracking = container->secure_dma;
    bcontainer->dma_max_mappings = caps->max_dma_maps;
    vfio_address_space_insert(space, bcontainer);

    vfio_device_add_to_container(vbasedev, bcontainer);

    /* Maps all guest RAM now: a failure here fails realize. */
    if (!vfio_container_listener_register(bcontainer, errp)) {
        vfio_user_container_detach(vbasedev);
        return false;
    }
    return true;
}

void vfio_user_container_detach(VFIODevice *vbasedev)
{
    VFIOContainerBase *bcontainer = vbasedev->bcontainer;
    VFIOUserContainer *container;
    VFIOAddressSpace *space;

    if (!bcontainer) {
        return;
    }
    container = user_container(bcontainer);
    space = bcontainer->space;

    vfio_device_del_from_container(vbasedev);

    /* Unmaps everything: the server is told while it still listens. */
    memory_listener_unregister(&bcontainer->listener);
    vfio_user_set_request_handler(container->proxy, NULL, NULL);
    vfio_user_dma_table_free(container->dma);
    container->dma = NULL;
    g_clear_pointer(&container->iommu_ranges, g_array_unref);
    g_clear_pointer(&container->iova_blocks, g_array_unref);
    object_unref(container);
    vfio_put_address_space(space);
}

void vfio_user_container_set_proxy(VFIODevice *vbasedev,
                                   VFIOUserProxy *proxy)
{
    VFIOUserContainer *container = user_container(vbasedev->bcontainer);

    container->proxy = proxy;
    vfio_user_dma_table_set_proxy(container->dma, proxy);
    vfio_user_set_request_handler(proxy, vfio_user_dma_handle_request,
                                  container->dma);
}

bool vfio_user_container_restore(VFIODevice *vbasedev, VFIOUserProxy *proxy,
                                 Error **errp)
{
    VFIOUserContainer *container = user_container(vbasedev->bcontainer);
    VFIOContainerBase *bcontainer = &container->bcontainer;
    g_autoptr(GArray) maps = vfio_user_dma_table_list(container->dma);
    const VFIOUserPeerCaps *caps = vfio_user_peer_caps(proxy);
    uint64_t min_pgsize = bcontainer->pgsizes & -bcontainer->pgsizes;

    vfio_user_container_set_proxy(vbasedev, proxy);
    /* hw/vfio sized and aligned mappings by the first server's limits */
    if (!(caps->pgsizes & min_pgsize) ||
        caps->max_dma_maps < bcontainer->dma_max_mappings) {
        error_setg(errp, "the server takes DMA page sizes 0x%" PRIx64
                   " and %u mappings; the device needs page size 0x%"
                   PRIx64 " and %u mappings", caps->pgsizes,
                   caps->max_dma_maps, min_pgsize,
                   bcontainer->dma_max_mappings);
        return false;
    }
    /* Behind a vIOMMU the server knew of blocks, not of our pages */
    for (guint i = 0; i < maps->len;) {
        VFIOUserDMAEntry *e = &g_array_index(maps, VFIOUserDMAEntry, i);

        if (find_range(container->iommu_ranges, e->iova, e->size)) {
            g_array_remove_index(maps, i);
        } else {
            i++;
        }
    }
    if (maps->len + container->iova_blocks->len > caps->max_dma_maps) {
        error_setg(errp, "the device has %u DMA mappings, the server "
                   "accepts %u", maps->len + container->iova_blocks->len,
                   caps->max_dma_maps);
        return false;
    }
    for (guint i = 0; i < container->iova_blocks->len; i++) {
        Range *b = &g_array_index(container->iova_blocks, Range, i);
        int ret = send_dma_map(container, range_lob(b), range_size(b), NULL,
                               0, true);

        if (ret < 0) {
            error_setg_errno(errp, -ret, "DMA_MAP of [0x%" PRIx64 ", 0x%"
                             PRIx64 "] failed", range_lob(b), range_upb(b));
            return false;
        }
    }
    for (guint i = 0; i < maps->len; i++) {
        VFIOUserDMAEntry *e = &g_array_index(maps, VFIOUserDMAEntry, i);
        ram_addr_t offset = 0;
        /* The table holds a reference to its memory: it is still there */
        RAMBlock *rb = qemu_ram_block_from_host(e->vaddr, false, &offset);
        int ret;

        ret = send_dma_map(container, e->iova, e->size, rb, offset,
                           e->writable);
        if (ret < 0) {
            error_setg_errno(errp, -ret, "DMA_MAP of [0x%" PRIx64 ", +0x%"
                             PRIx64 ") failed", e->iova, e->size);
            return false;
        }
    }
    return true;
}

void vfio_user_container_dma_stats(VFIODevice *vbasedev,
                                   VFIOUserDMAStats *stats)
{
    memset(stats, 0, sizeof(*stats));
    if (vbasedev->bcontainer) {
        vfio_user_dma_get_stats(user_container(vbasedev->bcontainer)->dma,
                                stats);
    }
}

static int vfio_user_set_dirty_page_tracking(const VFIOContainerBase *bc,
                                             bool start, Error **errp)
{
    VFIOUserContainer *container = user_container(bc);
    VFIOUserDMAStats stats;

    vfio_user_dma_get_stats(container->dma, &stats);
    trace_vfio_user_dirty_tracking(vfio_user_name(container->proxy), start,
                                   stats.dirty_pages);
    return 0;
}

/*
 * The pages the server wrote are dirty in QEMU's own bitmap already
 * (dma.c marked them as it wrote them): nothing to add.
 */
static int vfio_user_query_dirty_bitmap(const VFIOContainerBase *bcontainer,
                                        VFIOBitmap *vbmap, hwaddr iova,
                                        hwaddr size, Error **errp)
{
    VFIOUserContainer *container = user_container(bcontainer);
    VFIOUserDMAStats stats;

    vfio_user_dma_get_stats(container->dma, &stats);
    trace_vfio_user_dirty_bitmap(vfio_user_name(container->proxy), iova, size,
                                 stats.dirty_pages);
    return 0;
}

static void vfio_iommu_user_class_init(ObjectClass *klass, void *data)
{
    VFIOIOMMUClass *vioc = VFIO_IOMMU_CLASS(klass);

    vioc->attach_device = vfio_user_container_attach;
    vioc->detach_device = vfio_user_container_detach;
    vioc->dma_map = vfio_user_dma_map;
    vioc->dma_unmap = vfio_user_dma_unmap;
    vioc->add_window = vfio_user_add_window;
    vioc->del_window = vfio_user_del_window;
    vioc->set_dirty_page_tracking = vfio_user_set_dirty_page_tracking;
    vioc->query_dirty_bitmap = vfio_user_query_dirty_bitmap;
}

static const TypeInfo vfio_iommu_user_info = {
    .name = TYPE_VFIO_IOMMU_USER,
    .parent = TYPE_VFIO_IOMMU,
    .instance_size = sizeof(VFIOUserContainer),
    .class_init = vfio_iommu_user_class_init,
};

static void vfio_iommu_user_register_types(void)
{
    type_register_static(&vfio_iommu_user_info);
}

type_init(vfio_iommu_user_register_types)
