/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vfio-user client: the table of what the server may DMA to, and the
 * servicing of its DMA_READ/DMA_WRITE requests.
 *
 * The table is the authority on what the server can reach through us:
 * a range enters it before its DMA_MAP is sent and leaves it before its
 * DMA_UNMAP is sent.  It only ever holds guest RAM (the container skips
 * MMIO and other devices' RAM-device BARs), as host addresses.
 *
 * Requests are serviced by whichever thread reads the socket (see
 * proxy.c), never needing the BQL, without a main-loop hop.  Under
 * table->lock a request is checked (range inside current mappings,
 * permission, overflow, size limit, message size agreeing with the
 * count) and translated into an iovec of host addresses; the data then
 * moves straight between the socket and guest RAM (readv/sendmsg), with
 * no intermediate buffer, while table->inflight keeps the memory from
 * being unmapped under it.  What a DMA_WRITE put there is then marked
 * as address_space_write() would (see dma_mark_written()).
 * vfio_user_dma_table_remove() takes ranges out of the table first, so
 * no new request can reach them, then waits for inflight to drain; a
 * transfer that stalls past the message timeout (a server that stops
 * mid-message) gets its connection killed, which fails the transfer.
 *
 * Each mapping also holds a reference to the MemoryRegion of its RAM,
 * dropped only by vfio_user_dma_table_remove() (main loop, BQL), after
 * inflight drained: a mapping may outlive the RAM it points into (behind
 * a vIOMMU the guest need not unmap an IOVA before its pc-dimm goes), so
 * the memory must stay allocated until the mapping is gone.  A server
 * that then writes there writes into memory no guest address reaches.
 */

#include "qemu/osdep.h"
#include "qemu/iov.h"
#include "qemu/units.h"
#include "qemu/rcu.h"
#include "exec/ram_addr.h"
#include "system/tcg.h"
#include "hw/vfio-user/dma.h"
#include "trace.h"

/* A 1 MiB transfer over 4 KiB vIOMMU pages needs 256 entries. */
#define VFIO_USER_DMA_MAX_IOV   (VFIO_USER_CLIENT_MAX_XFER / 4096 + 2)

typedef struct DMAMapping {
    uint64_t iova;
    uint64_t size;
    uint8_t *vaddr;
    MemoryRegion *mr;           /* referenced: keeps vaddr allocated */
    ram_addr_t ram_addr;        /* of vaddr, for dirty tracking */
    bool writable;
} DMAMapping;

/* Where a piece of a transfer lands, in dirty-tracking terms. */
typedef struct DMASegment {
    MemoryRegion *mr;
    ram_addr_t ram_addr;
} DMASegment;

struct VFIOUserDMATable {
    VFIOUserProxy *proxy;
    QemuMutex lock;
    QemuCond idle;
    GArray *maps;               /* DMAMapping, sorted, disjoint */
    unsigned inflight;
    VFIOUserDMAStats stats;
};

VFIOUserDMATable *vfio_user_dma_table_new(VFIOUserProxy *proxy)
{
    VFIOUserDMATable *table = g_new0(VFIOUserDMATable, 1);

    table->proxy = proxy;
    qemu_mutex_init(&table->lock);
    qemu_cond_init(&table->idle);
    table->maps = g_array_new(false, false, sizeof(DMAMapping));
    return table;
}

void vfio_user_dma_table_free(VFIOUserDMATable *table)
{
    if (!table) {
        return;
    }
    assert(table->inflight == 0);
    for (guint i = 0; i < table->maps->len; i++) {
        memory_region_unref(g_array_index(table->maps, DMAMapping, i).mr);
    }
    g_array_free(table->maps, true);
    qemu_cond_destroy(&table->idle);
    qemu_mutex_destroy(&table->lock);
    g_free(table);
}

static inline DMAMapping *map_at(VFIOUserDMATable *table, guint i)
{
    return &g_array_index(table->maps, DMAMapping, i);
}

/* Index of the first mapping that ends after @addr. */
static guint first_ending_after(VFIOUserDMATable *table, uint64_t addr)
{
    guint lo = 0, hi = table->maps->len;

    while (lo < hi) {
        guint mid = lo + (hi - lo) / 2;
        DMAMapping *m = map_at(table, mid);

        if (m->iova + m->size <= addr) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

int vfio_user_dma_table_add(VFIOUserDMATable *table, uint64_t iova,
                            uint64_t size, void *vaddr, MemoryRegion *mr,
                            ram_addr_t ram_addr, bool writable)
{
    DMAMapping m = {
        .iova = iova, .size = size, .vaddr = vaddr, .mr = mr,
        .ram_addr = ram_addr, .writable = writable,
    };
    guint i;
    int ret = 0;

    if (size == 0 || iova + size < iova) {
        return -EINVAL;
    }
    qemu_mutex_lock(&table->lock);
    i = first_ending_after(table, iova);
    if (i < table->maps->len && map_at(table, i)->iova < iova + size) {
        ret = -EEXIST;
    } else {
        memory_region_ref(mr);
        g_array_insert_val(table->maps, i, m);
    }
    qemu_mutex_unlock(&table->lock);
    return ret;
}

GArray *vfio_user_dma_table_remove(VFIOUserDMATable *table, uint64_t iova,
                                   uint64_t size)
{
    GArray *removed = g_array_new(false, false, sizeof(VFIOUserDMARange));
    g_autoptr(GPtrArray) unref = g_ptr_array_new();
    uint64_t end = iova + size < iova ? UINT64_MAX : iova + size;
    VFIOUserProxy *proxy;
    int64_t deadline;
    guint i;

    qemu_mutex_lock(&table->lock);
    i = first_ending_after(table, iova);
    while (i < table->maps->len && map_at(table, i)->iova < end) {
        VFIOUserDMARange r = {
            .iova = map_at(table, i)->iova, .size = map_at(table, i)->size,
        };

        g_array_append_val(removed, r);
        g_ptr_array_add(unref, map_at(table, i)->mr);
        g_array_remove_index(table->maps, i);
    }

    /* Requests already past the check may still use that memory. */
    proxy = table->proxy;
    deadline = g_get_monotonic_time() / 1000 + vfio_user_timeout_ms(proxy);
    while (table->inflight > 0) {
        int64_t left = deadline - g_get_monotonic_time() / 1000;

        if (left <= 0) {
            qemu_mutex_unlock(&table->lock);
            vfio_user_kill(proxy, ECONNRESET, "a DMA transfer "
                           "stalled past the timeout while its memory was "
                           "being unmapped");
            qemu_mutex_lock(&table->lock);
            while (table->inflight > 0) {
                qemu_cond_wait(&table->idle, &table->lock);
            }
            break;
        }
        qemu_cond_timedwait(&table->idle, &table->lock, left);
    }
    qemu_mutex_unlock(&table->lock);

    /* Nothing uses that memory any more: it may go (maybe right now). */
    for (guint j = 0; j < unref->len; j++) {
        memory_region_unref(g_ptr_array_index(unref, j));
    }
    return removed;
}

void vfio_user_dma_table_set_proxy(VFIOUserDMATable *table,
                                   VFIOUserProxy *proxy)
{
    qemu_mutex_lock(&table->lock);
    table->proxy = proxy;
    qemu_mutex_unlock(&table->lock);
}

GArray *vfio_user_dma_table_list(VFIOUserDMATable *table)
{
    GArray *list = g_array_new(false, false, sizeof(VFIOUserDMAEntry));

    qemu_mutex_lock(&table->lock);
    g_array_set_size(list, table->maps->len);
    for (guint i = 0; i < table->maps->len; i++) {
        DMAMapping *m = map_at(table, i);

        g_array_index(list, VFIOUserDMAEntry, i) = (VFIOUserDMAEntry) {
            .iova = m->iova, .size = m->size, .vaddr = m->vaddr,
            .writable = m->writable,
        };
    }
    qemu_mutex_unlock(&table->lock);
    return list;
}

guint vfio_user_dma_table_count(VFIOUserDMATable *table)
{
    guint n;

    qemu_mutex_lock(&table->lock);
    n = table->maps->len;
    qemu_mutex_unlock(&table->lock);
    return n;
}

/*
 * Translate [addr, addr + count) into host iovecs, checking that every
 * byte lies in a current mapping that allows the access.  Caller holds
 * table->lock.  Returns 0 or a negative errno.
 */
static int dma_translate(VFIOUserDMATable *table, uint64_t addr,
                         uint64_t count, bool write, struct iovec *iov,
                         DMASegment *seg, size_t *niov)
{
    uint64_t cur = addr, end = addr + count;
    guint i;

    *niov = 0;
    if (end < addr) {
        return -EFAULT;
    }
    i = first_ending_after(table, addr);
    while (cur < end) {
        DMAMapping *m;
        uint64_t n;
        uint8_t *host;
        ram_addr_t ram_addr;

        if (i >= table->maps->len || map_at(table, i)->iova > cur) {
            return -EFAULT;
        }
        m = map_at(table, i);
        if (write && !m->writable) {
            return -EPERM;
        }
        n = MIN(end, m->iova + m->size) - cur;
        host = m->vaddr + (cur - m->iova);
        ram_addr = m->ram_addr + (cur - m->iova);
        if (*niov && (uint8_t *)iov[*niov - 1].iov_base +
                     iov[*niov - 1].iov_len == host &&
            seg[*niov - 1].mr == m->mr &&
            seg[*niov - 1].ram_addr + iov[*niov - 1].iov_len == ram_addr) {
            iov[*niov - 1].iov_len += n;
        } else if (*niov == VFIO_USER_DMA_MAX_IOV) {
            return -E2BIG;
        } else {
            seg[*niov] = (DMASegment) { .mr = m->mr, .ram_addr = ram_addr };
            iov[(*niov)++] = (struct iovec) { .iov_base = host,
                                              .iov_len = n };
        }
        cur += n;
        i++;
    }
    return 0;
}

/*
 * What address_space_write() does after it writes guest RAM (physmem.c's
 * invalidate_and_set_dirty()): the server's bytes went from the socket
 * straight into guest memory, behind the back of TCG, whose translated
 * code for those pages is now stale, and of dirty tracking (migration,
 * display), which must see the pages as written.  Safe on any thread,
 * like the physmem path that device threads take; the caller's inflight
 * count keeps the mappings' memory regions alive.
 */
static uint64_t dma_mark_written(const struct iovec *iov,
                                 const DMASegment *seg, size_t niov)
{
    uint64_t migration_pages = 0;

    RCU_READ_LOCK_GUARD();

    for (size_t i = 0; i < niov; i++) {
        ram_addr_t start = seg[i].ram_addr, len = iov[i].iov_len;
        uint8_t mask;

        if (!seg[i].mr) {
            continue;           /* not guest RAM (the fuzzer's memory) */
        }
        mask = memory_region_get_dirty_log_mask(seg[i].mr);

        if (mask) {
            mask = cpu_physical_memory_range_includes_clean(start, len, mask);
        }
        if (mask & (1 << DIRTY_MEMORY_CODE)) {
            assert(tcg_enabled());
            tb_invalidate_phys_range(start, start + len - 1);
            mask &= ~(1 << DIRTY_MEMORY_CODE);
        }
        cpu_physical_memory_set_dirty_range(start, len, mask);
        if (mask & (1 << DIRTY_MEMORY_MIGRATION)) {
            migration_pages += DIV_ROUND_UP(start + len, TARGET_PAGE_SIZE) -
                               start / TARGET_PAGE_SIZE;
        }
    }
    return migration_pages;
}

/* Refuse a request: consume what is left of it, answer with @err. */
static bool dma_refuse(VFIOUserDMATable *table, VFIOUserProxy *proxy,
                       const VFIOUserHdr *hdr, size_t left, uint64_t addr,
                       uint64_t count, int err)
{
    trace_vfio_user_dma_refused(vfio_user_name(proxy), hdr->command, addr,
                                count, err);
    qatomic_inc(&table->stats.refused);
    if (vfio_user_discard(proxy, left) < 0) {
        return false;
    }
    if (!(hdr->flags & VFIO_USER_NO_REPLY)) {
        vfio_user_send_error(proxy, hdr, err);
    }
    return true;
}

bool vfio_user_dma_handle_request(void *opaque, VFIOUserProxy *proxy,
                                  const VFIOUserHdr *hdr)
{
    VFIOUserDMATable *table = opaque;
    size_t left = hdr->size - sizeof(*hdr);
    bool write = hdr->command == VFIO_USER_DMA_WRITE;
    struct iovec iov[VFIO_USER_DMA_MAX_IOV + 1];
    DMASegment seg[VFIO_USER_DMA_MAX_IOV];
    VFIOUserDMARW req;
    uint64_t dirty = 0;
    size_t niov;
    int err, ret;

    if (hdr->command != VFIO_USER_DMA_READ && !write) {
        return dma_refuse(table, proxy, hdr, left, 0, 0, ENOSYS);
    }
    if (left < sizeof(req)) {
        return dma_refuse(table, proxy, hdr, left, 0, 0, EINVAL);
    }
    iov[0] = (struct iovec) { .iov_base = &req, .iov_len = sizeof(req) };
    if (vfio_user_recv_payload(proxy, iov, 1) < 0) {
        return false;
    }
    left -= sizeof(req);

    if (req.count > VFIO_USER_CLIENT_MAX_XFER) {
        return dma_refuse(table, proxy, hdr, left, req.address, req.count,
                          E2BIG);
    }
    if (left != (write ? req.count : 0)) {
        return dma_refuse(table, proxy, hdr, left, req.address, req.count,
                          EINVAL);
    }

    qemu_mutex_lock(&table->lock);
    err = dma_translate(table, req.address, req.count, write, iov + 1, seg,
                        &niov);
    if (!err) {
        table->inflight++;
    }
    qemu_mutex_unlock(&table->lock);
    if (err) {
        return dma_refuse(table, proxy, hdr, left, req.address, req.count,
                          -err);
    }

    if (write) {
        /* Straight from the socket into guest RAM. */
        ret = vfio_user_recv_payload(proxy, iov + 1, niov);
        /* Even a partial write changed guest memory. */
        dirty = dma_mark_written(iov + 1, seg, niov);
        if (ret == 0 && !(hdr->flags & VFIO_USER_NO_REPLY)) {
            vfio_user_send_reply(proxy, hdr, iov, 1);
        }
    } else {
        /* The reply: our echo of address and count, then guest RAM. */
        ret = vfio_user_send_reply(proxy, hdr, iov, niov + 1);
    }

    qemu_mutex_lock(&table->lock);
    table->stats.dirty_pages += dirty;
    if (ret == 0) {
        if (write) {
            table->stats.writes++;
            table->stats.bytes_written += req.count;
        } else {
            table->stats.reads++;
            table->stats.bytes_read += req.count;
        }
    }
    if (--table->inflight == 0) {
        qemu_cond_broadcast(&table->idle);
    }
    qemu_mutex_unlock(&table->lock);
    trace_vfio_user_dma(vfio_user_name(proxy), hdr->command, req.address,
                        req.count, hdr->flags & VFIO_USER_NO_REPLY, ret);
    /* A failed send already killed the connection; a failed read too. */
    return ret == 0 || !write;
}

void vfio_user_dma_get_stats(VFIOUserDMATable *table, VFIOUserDMAStats *st)
{
    qemu_mutex_lock(&table->lock);
    *st = table->stats;
    st->refused = qatomic_read(&table->stats.refused);
    qemu_mutex_unlock(&table->lock);
}
