/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vfio-user protocol: the wire format shared by the QEMU client and the
 * test server.
 *
 * Every byte here follows docs/vfio-user.rst of libvfio-user (protocol
 * version 0.1, document version 0.9.1): a 16-byte header, then a command
 * specific payload whose offsets start at the end of the header.  All
 * structures are packed.  The protocol is little-endian; both peers sit
 * on one host and these structures are in host byte order, so users on a
 * big-endian host must byte-swap every field.
 *
 * Like every QEMU header this one expects "qemu/osdep.h" to have been
 * included first by the .c file.
 */

#ifndef HW_VFIO_USER_PROTOCOL_H
#define HW_VFIO_USER_PROTOCOL_H

#include <linux/vfio.h>

/* Protocol version spoken by this implementation */
#define VFIO_USER_MAJOR_VER             0
#define VFIO_USER_MINOR_VER             1

/* Command numbers ("Commands" table of the spec) */
typedef enum VFIOUserCmd {
    VFIO_USER_VERSION                   = 1,
    VFIO_USER_DMA_MAP                   = 2,
    VFIO_USER_DMA_UNMAP                 = 3,
    VFIO_USER_DEVICE_GET_INFO           = 4,
    VFIO_USER_DEVICE_GET_REGION_INFO    = 5,
    VFIO_USER_DEVICE_GET_REGION_IO_FDS  = 6,
    VFIO_USER_DEVICE_GET_IRQ_INFO       = 7,
    VFIO_USER_DEVICE_SET_IRQS           = 8,
    VFIO_USER_REGION_READ               = 9,
    VFIO_USER_REGION_WRITE              = 10,
    VFIO_USER_DMA_READ                  = 11,
    VFIO_USER_DMA_WRITE                 = 12,
    VFIO_USER_DEVICE_RESET              = 13,
    VFIO_USER_DIRTY_PAGES               = 14,
    /* Not in spec 0.9.1: from QEMU 10.2's docs/interop/vfio-user.rst */
    VFIO_USER_REGION_WRITE_MULTI        = 15,
    VFIO_USER_DEVICE_FEATURE            = 16,
    VFIO_USER_MIG_DATA_READ             = 17,
    VFIO_USER_MIG_DATA_WRITE            = 18,
    VFIO_USER_MAX,
} VFIOUserCmd;

/*
 * Message header, at offset 0 of every request and reply.
 * @id: chosen by the sender of a request, echoed in its reply
 * @command: a VFIO_USER_* command, also set in the reply
 * @size: size of the whole message, header included
 * @flags: VFIO_USER_REQUEST/REPLY in the type bits, NO_REPLY, ERROR
 * @error_reply: positive errno of a reply with VFIO_USER_ERROR (may be 0);
 *               reserved in a request
 */
typedef struct {
    uint16_t id;
    uint16_t command;
    uint32_t size;
    uint32_t flags;
    uint32_t error_reply;
} QEMU_PACKED VFIOUserHdr;

/* VFIOUserHdr.flags */
#define VFIO_USER_TYPE                  0xf         /* bits 0-3 */
#define VFIO_USER_REQUEST               0x0
#define VFIO_USER_REPLY                 0x1
#define VFIO_USER_NO_REPLY              (1u << 4)
#define VFIO_USER_ERROR                 (1u << 5)

/*
 * VFIO_USER_VERSION, request and reply.  @capabilities is optional: a
 * NUL-terminated UTF-8 JSON object filling the rest of the message,
 * e.g. {"capabilities":{"max_msg_fds":8,"max_data_xfer_size":1048576}}.
 */
typedef struct {
    uint16_t major;
    uint16_t minor;
    char capabilities[];
} QEMU_PACKED VFIOUserVersion;

/* JSON names in the version data */
#define VFIO_USER_CAP                   "capabilities"
#define VFIO_USER_CAP_MAX_FDS           "max_msg_fds"
#define VFIO_USER_CAP_MAX_XFER          "max_data_xfer_size"
#define VFIO_USER_CAP_MIGR              "migration"
#define VFIO_USER_CAP_PGSIZE            "pgsize"        /* in "migration" */
/*
 * Not in spec 0.9.1: later revisions of the spec (QEMU's own copy from
 * 10.1 on) add these two, both optional, with the defaults below.
 */
#define VFIO_USER_CAP_PGSIZES           "pgsizes"
#define VFIO_USER_CAP_MAX_DMA_MAPS      "max_dma_maps"

/* Values a peer must assume for capabilities the other side omitted */
#define VFIO_USER_DEF_MAX_FDS           1
#define VFIO_USER_DEF_MAX_XFER          (1024 * 1024)
#define VFIO_USER_DEF_PGSIZE            4096    /* pgsizes: only 4 KiB */
#define VFIO_USER_DEF_MAX_DMA_MAPS      65535

/*
 * Sanity limits (ours, not the spec's).  The client refuses a server
 * that advertises more than these; the test server clamps a client's
 * values to them.  SCM_RIGHTS cannot carry more than 253 fds
 * (SCM_MAX_FD) in one message on Linux.
 */
#define VFIO_USER_MAX_MAX_FDS           253
#define VFIO_USER_MAX_MAX_XFER          (64 * 1024 * 1024)
/* Largest message that is not a data transfer (VERSION, SET_IRQS, ...) */
#define VFIO_USER_MAX_CTRL_MSG          (64 * 1024)
/* Largest message of any kind: data transfer header plus data */
#define VFIO_USER_MAX_MSG               (sizeof(VFIOUserHdr) + 16 + \
                                         VFIO_USER_MAX_MAX_XFER)

/*
 * VFIO_USER_DMA_MAP request; the reply has no payload.  An fd to mmap
 * at @offset may come as SCM_RIGHTS; without one the server accesses the
 * range with VFIO_USER_DMA_READ/WRITE.  @argsz is the size of this
 * structure (32).  Mapping over an existing region fails with EEXIST.
 */
typedef struct {
    uint32_t argsz;
    uint32_t flags;
    uint64_t offset;
    uint64_t address;
    uint64_t size;
} QEMU_PACKED VFIOUserDMAMap;

#define VFIO_USER_F_DMA_REGION_READ     (1u << 0)
#define VFIO_USER_F_DMA_REGION_WRITE    (1u << 1)

/*
 * VFIO_USER_DMA_UNMAP request.  @address and @size must match a previous
 * mapping exactly.  The reply echoes this structure; with
 * VFIO_USER_DMA_UNMAP_GET_DIRTY_BITMAP both request and reply carry a
 * VFIOUserBitmap after it, and the reply adds the bitmap itself.
 * VFIO_USER_DMA_UNMAP_ALL unmaps everything; it needs @address and @size
 * zero and cannot be combined with the bitmap flag.  The flag values are
 * the kernel's VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP and _ALL.
 */
typedef struct {
    uint32_t argsz;
    uint32_t flags;
    uint64_t address;
    uint64_t size;
} QEMU_PACKED VFIOUserDMAUnmap;

#define VFIO_USER_DMA_UNMAP_GET_DIRTY_BITMAP    (1u << 0)
#define VFIO_USER_DMA_UNMAP_ALL                 (1u << 1)

/* "VFIO Bitmap": @size is the bitmap size in bytes, without this header */
typedef struct {
    uint64_t pgsize;
    uint64_t size;
    uint8_t data[];
} QEMU_PACKED VFIOUserBitmap;

/*
 * VFIO_USER_DEVICE_GET_INFO, request and reply.  Unlike the kernel's
 * struct vfio_device_info there is no cap_offset: 16 bytes.
 * @flags: VFIO_DEVICE_FLAGS_RESET, VFIO_DEVICE_FLAGS_PCI
 */
typedef struct {
    uint32_t argsz;
    uint32_t flags;
    uint32_t num_regions;
    uint32_t num_irqs;
} QEMU_PACKED VFIOUserDeviceInfo;

/*
 * VFIO_USER_DEVICE_GET_REGION_INFO, request and reply: the layout of the
 * kernel's struct vfio_region_info (flags VFIO_REGION_INFO_FLAG_*).  In
 * the reply, capabilities (struct vfio_info_cap_header and friends from
 * <linux/vfio.h>, e.g. struct vfio_region_info_cap_sparse_mmap) follow at
 * @cap_offset, counted from the start of this structure.  With
 * VFIO_REGION_INFO_FLAG_MMAP the reply carries the fd to mmap at @offset.
 */
typedef struct {
    uint32_t argsz;
    uint32_t flags;
    uint32_t index;
    uint32_t cap_offset;
    uint64_t size;
    uint64_t offset;
} QEMU_PACKED VFIOUserRegionInfo;

/* VFIO_USER_DEVICE_GET_REGION_IO_FDS request; the reply adds sub-regions */
typedef struct {
    uint32_t argsz;
    uint32_t flags;
    uint32_t index;
    uint32_t count;
    uint8_t sub_regions[];
} QEMU_PACKED VFIOUserRegionIOFds;

/* One sub-region; @datamatch is user_data for an ioregionfd */
typedef struct {
    uint64_t offset;
    uint64_t size;
    uint32_t fd_index;
    uint32_t type;
    uint32_t flags;
    uint32_t padding;
    uint64_t datamatch;
} QEMU_PACKED VFIOUserSubRegionIOFd;

#define VFIO_USER_IO_FD_TYPE_IOEVENTFD  0
#define VFIO_USER_IO_FD_TYPE_IOREGIONFD 1

/*
 * VFIO_USER_DEVICE_GET_IRQ_INFO, request and reply: the layout of the
 * kernel's struct vfio_irq_info (flags VFIO_IRQ_INFO_*, index
 * VFIO_PCI_*_IRQ_INDEX).
 */
typedef struct {
    uint32_t argsz;
    uint32_t flags;
    uint32_t index;
    uint32_t count;
} QEMU_PACKED VFIOUserIRQInfo;

/*
 * VFIO_USER_DEVICE_SET_IRQS request, the layout of the kernel's struct
 * vfio_irq_set (flags VFIO_IRQ_SET_DATA_* | VFIO_IRQ_SET_ACTION_*).
 * @data holds @count bool bytes with VFIO_IRQ_SET_DATA_BOOL.  With
 * VFIO_IRQ_SET_DATA_EVENTFD the eventfds travel as SCM_RIGHTS, not in
 * @data; none at all de-assigns the range.  The reply has no payload.
 */
typedef struct {
    uint32_t argsz;
    uint32_t flags;
    uint32_t index;
    uint32_t start;
    uint32_t count;
    uint8_t data[];
} QEMU_PACKED VFIOUserIRQSet;

/*
 * VFIO_USER_REGION_READ / VFIO_USER_REGION_WRITE.  A read request has no
 * @data, its reply has @count bytes; a write request has @count bytes
 * and its reply none.  @count may not exceed the peer's
 * max_data_xfer_size.
 */
typedef struct {
    uint64_t offset;
    uint32_t region;
    uint32_t count;
    uint8_t data[];
} QEMU_PACKED VFIOUserRegionRW;

/*
 * VFIO_USER_DMA_READ / VFIO_USER_DMA_WRITE, sent by the server: 64-bit
 * @count and data at payload offset 16.  Replies echo @address and
 * @count; a read reply adds @count bytes of data, a write reply none.
 * (The spec's table for the DMA_WRITE reply gives @count 4 bytes; every
 * other table, and libvfio-user, use this 16-byte structure.)
 */
typedef struct {
    uint64_t address;
    uint64_t count;
    uint8_t data[];
} QEMU_PACKED VFIOUserDMARW;

/*
 * VFIO_USER_DIRTY_PAGES (flags VFIO_IOMMU_DIRTY_PAGES_FLAG_*); GET_BITMAP
 * is followed by a VFIOUserBitmapRange.
 */
typedef struct {
    uint32_t argsz;
    uint32_t flags;
} QEMU_PACKED VFIOUserDirtyPages;

/*
 * The spec's table gives @bitmap 24 bytes (the kernel's struct vfio_bitmap
 * with its data pointer), but refers to the 16-byte VFIO Bitmap format,
 * which libvfio-user uses: so do we.
 */
typedef struct {
    uint64_t iova;
    uint64_t size;
    VFIOUserBitmap bitmap;
} QEMU_PACKED VFIOUserBitmapRange;

/*
 * Migration, not in spec 0.9.1: as QEMU 10.2's docs/interop/vfio-user.rst
 * describes it.  Feature indexes, flags and states are <linux/vfio.h>'s.
 */

/* VFIO_USER_DEVICE_FEATURE request and reply: struct vfio_device_feature */
typedef struct {
    uint32_t argsz;
    uint32_t flags;
    uint8_t data[];
} QEMU_PACKED VFIOUserDeviceFeature;

/* VFIO_USER_MIG_DATA_READ/WRITE: data follows in a READ reply, WRITE request */
typedef struct {
    uint32_t argsz;
    uint32_t size;
} QEMU_PACKED VFIOUserMigDataHdr;

/* DMA_LOGGING_START data, followed by @num_ranges VFIOUserDMALoggingRange */
typedef struct {
    uint64_t page_size;
    uint32_t num_ranges;
    uint32_t reserved;
} QEMU_PACKED VFIOUserDMALoggingControl;

/* An IOVA range to log: struct vfio_device_feature_dma_logging_range */
typedef struct {
    uint64_t iova;
    uint64_t length;
} QEMU_PACKED VFIOUserDMALoggingRange;

/* DMA_LOGGING_REPORT data; the reply adds the bitmap, in u64s */
typedef struct {
    uint64_t iova;
    uint64_t length;
    uint64_t page_size;
} QEMU_PACKED VFIOUserDMALoggingReport;

/* MIG_DEVICE_STATE data: struct vfio_device_feature_mig_state */
typedef struct {
    uint32_t device_state;
    uint32_t data_fd;
} QEMU_PACKED VFIOUserMigState;

QEMU_BUILD_BUG_ON(sizeof(VFIOUserHdr) != 16);
QEMU_BUILD_BUG_ON(sizeof(VFIOUserVersion) != 4);
QEMU_BUILD_BUG_ON(sizeof(VFIOUserDMAMap) != 32);
QEMU_BUILD_BUG_ON(sizeof(VFIOUserDMAUnmap) != 24);
QEMU_BUILD_BUG_ON(sizeof(VFIOUserBitmap) != 16);
QEMU_BUILD_BUG_ON(sizeof(VFIOUserDeviceInfo) != 16);
QEMU_BUILD_BUG_ON(sizeof(VFIOUserRegionInfo) != 32);
QEMU_BUILD_BUG_ON(sizeof(VFIOUserRegionInfo) !=
                  sizeof(struct vfio_region_info));
QEMU_BUILD_BUG_ON(offsetof(VFIOUserRegionInfo, offset) !=
                  offsetof(struct vfio_region_info, offset));
QEMU_BUILD_BUG_ON(sizeof(VFIOUserRegionIOFds) != 16);
QEMU_BUILD_BUG_ON(sizeof(VFIOUserSubRegionIOFd) != 40);
QEMU_BUILD_BUG_ON(sizeof(VFIOUserIRQInfo) != 16);
QEMU_BUILD_BUG_ON(sizeof(VFIOUserIRQInfo) != sizeof(struct vfio_irq_info));
QEMU_BUILD_BUG_ON(sizeof(VFIOUserIRQSet) != 20);
QEMU_BUILD_BUG_ON(sizeof(VFIOUserIRQSet) != sizeof(struct vfio_irq_set));
QEMU_BUILD_BUG_ON(sizeof(VFIOUserRegionRW) != 16);
QEMU_BUILD_BUG_ON(sizeof(VFIOUserDMARW) != 16);
QEMU_BUILD_BUG_ON(sizeof(VFIOUserBitmapRange) != 32);
/* The capability structures used as they are from <linux/vfio.h> */
QEMU_BUILD_BUG_ON(sizeof(struct vfio_info_cap_header) != 8);
QEMU_BUILD_BUG_ON(sizeof(struct vfio_region_info_cap_sparse_mmap) != 16);
QEMU_BUILD_BUG_ON(sizeof(struct vfio_region_sparse_mmap_area) != 16);
QEMU_BUILD_BUG_ON(VFIO_USER_DMA_UNMAP_GET_DIRTY_BITMAP !=
                  VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP);
QEMU_BUILD_BUG_ON(VFIO_USER_DMA_UNMAP_ALL != VFIO_DMA_UNMAP_FLAG_ALL);
QEMU_BUILD_BUG_ON(sizeof(VFIOUserDeviceFeature) !=
                  sizeof(struct vfio_device_feature));
QEMU_BUILD_BUG_ON(sizeof(VFIOUserMigDataHdr) != 8);
QEMU_BUILD_BUG_ON(sizeof(VFIOUserDMALoggingControl) != 16);
QEMU_BUILD_BUG_ON(sizeof(VFIOUserDMALoggingRange) !=
                  sizeof(struct vfio_device_feature_dma_logging_range));
QEMU_BUILD_BUG_ON(sizeof(VFIOUserDMALoggingReport) != 24);
QEMU_BUILD_BUG_ON(sizeof(VFIOUserMigState) !=
                  sizeof(struct vfio_device_feature_mig_state));

#endif /* HW_VFIO_USER_PROTOCOL_H */
