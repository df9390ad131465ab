/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vfio-user client: the table of what the server may DMA to, and the
 * servicing of its DMA_READ/DMA_WRITE requests.
 */

#ifndef HW_VFIO_USER_DMA_H
#define HW_VFIO_USER_DMA_H

#include "exec/memory.h"
#include "hw/vfio-user/proxy.h"

typedef struct VFIOUserDMATable VFIOUserDMATable;

VFIOUserDMATable *vfio_user_dma_table_new(VFIOUserProxy *proxy);
/* With the BQL held, as it drops what references are left. */
void vfio_user_dma_table_free(VFIOUserDMATable *table);

/*
 * Enter [iova, iova + size) -> host memory at @vaddr, which is guest RAM
 * of @mr at @ram_addr.  Must happen before the DMA_MAP that announces it
 * is sent.  Fails with -EEXIST on overlap.  The table holds a reference
 * to @mr while the mapping is in it: behind a vIOMMU a mapping may
 * outlive the RAM it points into (a pc-dimm unplugged while the guest
 * keeps its IOVA mapped), and the server must never reach freed memory.
 * @mr NULL is host memory that is not guest RAM (the fuzzer's): nothing
 * to keep alive, nothing to mark dirty.
 */
int vfio_user_dma_table_add(VFIOUserDMATable *table, uint64_t iova,
                            uint64_t size, void *vaddr, MemoryRegion *mr,
                            ram_addr_t ram_addr, bool writable);

typedef struct VFIOUserDMARange {
    uint64_t iova;
    uint64_t size;
} VFIOUserDMARange;

/*
 * Remove every mapping that overlaps [iova, iova + size), waiting for
 * requests in flight to finish: once this returns, the server can no
 * longer reach that memory through us, and the DMA_UNMAPs may be sent.
 * Returns the removed mappings (VFIOUserDMARange), whole, since the
 * protocol unmaps exactly what was mapped.  Drops the references to
 * their memory, which may free it: main loop, with the BQL held.
 */
GArray *vfio_user_dma_table_remove(VFIOUserDMATable *table, uint64_t iova,
                                   uint64_t size);

/*
 * The connection that a DMA transfer stalled past its deadline is
 * killed on: a device that reconnects (reconnect.c) gives the new one.
 */
void vfio_user_dma_table_set_proxy(VFIOUserDMATable *table,
                                   VFIOUserProxy *proxy);

typedef struct VFIOUserDMAEntry {
    uint64_t iova;
    uint64_t size;
    void *vaddr;
    bool writable;
} VFIOUserDMAEntry;

/*
 * The mappings in the table (VFIOUserDMAEntry), sorted by IOVA, to tell
 * a new connection what the old one knew.  Main loop, with the BQL held,
 * so that the table does not change while they are replayed.
 */
GArray *vfio_user_dma_table_list(VFIOUserDMATable *table);

/* Number of mappings in the table. */
guint vfio_user_dma_table_count(VFIOUserDMATable *table);

/* The proxy's request handler for DMA_READ/DMA_WRITE (see proxy.h). */
bool vfio_user_dma_handle_request(void *opaque, VFIOUserProxy *proxy,
                                  const VFIOUserHdr *hdr);

/* Counters, for tests and the demo. */
typedef struct VFIOUserDMAStats {
    uint64_t reads, writes, bytes_read, bytes_written, refused;
    uint64_t dirty_pages;       /* marked for migration as written */
} VFIOUserDMAStats;
void vfio_user_dma_get_stats(VFIOUserDMATable *table, VFIOUserDMAStats *st);

#endif /* HW_VFIO_USER_DMA_H */
