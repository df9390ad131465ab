/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A vfio-user server for tests, running in a thread of the test process.
 *
 * It serves one client at a time on a UNIX socket and models a small PCI
 * function, records what the client sent, and lets the test make the
 * server do DMA, raise interrupts or misbehave.  All functions below are
 * thread-safe and may be called from a hook too: vu_test_server_dma()
 * then runs inline on the server thread.
 *
 * The device:
 *   config space  256 bytes, conventional PCI, class 0x00ff00, INTx pin A,
 *                 MSI capability at 0x40 (1 vector, 64-bit), MSI-X
 *                 capability at 0x50 (table and PBA in BAR2)
 *   BAR0  64 KiB  32-bit MMIO, registers below and a 32 KiB buffer, served
 *                 by REGION_READ/WRITE only
 *   BAR1  64 KiB  32-bit prefetchable MMIO backed by a memfd sealed
 *                 against resizing (unless cfg->bar1_unsealed); with
 *                 cfg->bar1_fd its region info has a sparse mmap
 *                 capability and the memfd
 *   BAR2   4 KiB  32-bit MMIO: MSI-X table at 0, PBA at 0x800 (absent
 *                 with no MSI-X vectors)
 *   IRQs  INTx (1, EVENTFD|MASKABLE|AUTOMASKED), MSI (1), MSI-X
 *         (cfg->msix_vectors), ERR (1), REQ (1)
 *   Migration and DMA logging, if configured: see below
 */

#ifndef TESTS_QTEST_VFIO_USER_SERVER_H
#define TESTS_QTEST_VFIO_USER_SERVER_H

#include "hw/vfio-user/protocol.h"

/* BAR0 registers; 32-bit unless marked, any access width is accepted */
#define VU_TEST_REG_ID              0x00    /* RO: VU_TEST_ID_MAGIC */
#define VU_TEST_REG_SCRATCH         0x04    /* RW */
#define VU_TEST_REG_RESET_COUNT     0x08    /* RO: DEVICE_RESETs so far */
#define VU_TEST_REG_INTX_STATUS     0x0c    /* RO: bit 0: INTx asserted */
#define VU_TEST_REG_DMA_SRC         0x10    /* RW, 64-bit */
#define VU_TEST_REG_DMA_DST         0x18    /* RW, 64-bit */
#define VU_TEST_REG_DMA_LEN         0x20    /* RW, 64-bit */
#define VU_TEST_REG_DMA_CMD         0x28    /* RW: VU_TEST_DMA_CMD_* */
#define VU_TEST_REG_DMA_STATUS      0x2c    /* RO: VU_TEST_DMA_STATUS_* */
#define VU_TEST_REG_DMA_ERRNO       0x30    /* RO: errno of the last DMA */
#define VU_TEST_REG_DMA_COUNT       0x34    /* RO: DMA commands completed */
#define VU_TEST_REG_IRQ_RAISE       0x40    /* WO: raise vector N */
#define VU_TEST_REG_IRQ_LOWER       0x44    /* WO: deassert INTx */
#define VU_TEST_REG_IRQ_ERRORS      0x48    /* RO: failed IRQ_RAISEs */
#define VU_TEST_REGS_SIZE           0x100
#define VU_TEST_BUF_OFFSET          0x8000  /* device buffer in BAR0 */
#define VU_TEST_BUF_SIZE            0x8000

#define VU_TEST_ID_MAGIC            0x76667531  /* "vfu1" */

/*
 * DMA_CMD: writing START runs the DMA before the REGION_WRITE is replied
 * to.  Guest to device: DMA_LEN bytes from IOVA DMA_SRC to the device
 * buffer at offset DMA_DST (0-based, i.e. BAR0 offset - 0x8000).  Device
 * to guest (TO_GUEST): from buffer offset DMA_SRC to IOVA DMA_DST.  IRQ
 * raises vector 0 when done, as IRQ_RAISE would.
 */
#define VU_TEST_DMA_CMD_START       (1u << 0)
#define VU_TEST_DMA_CMD_TO_GUEST    (1u << 1)
#define VU_TEST_DMA_CMD_IRQ         (1u << 2)
#define VU_TEST_DMA_STATUS_DONE     (1u << 0)
#define VU_TEST_DMA_STATUS_ERROR    (1u << 1)

/*
 * IRQ_RAISE, value N: MSI-X vector N if MSI-X is enabled by SET_IRQS,
 * else MSI (N must be 0) if MSI is, else INTx (level: stays asserted
 * until IRQ_LOWER or reset, and is signalled again on unmask).
 */

#define VU_TEST_BAR0_SIZE           0x10000
#define VU_TEST_BAR1_SIZE           0x10000
#define VU_TEST_BAR1_AREA0_OFFSET   0x0000  /* the sparse mmap areas */
#define VU_TEST_BAR1_AREA0_SIZE     0x4000
#define VU_TEST_BAR1_AREA1_OFFSET   0x8000
#define VU_TEST_BAR1_AREA1_SIZE     0x4000
#define VU_TEST_BAR2_SIZE           0x1000
#define VU_TEST_MSIX_TABLE_OFFSET   0x000
#define VU_TEST_MSIX_PBA_OFFSET     0x800
#define VU_TEST_MSIX_MAX_VECTORS    128
#define VU_TEST_CFG_MSI_CAP         0x40
#define VU_TEST_CFG_MSIX_CAP        0x50

/*
 * Migration (cfg->migration): the state that migrates is SCRATCH and the
 * buffer, nothing else.  The state machine is the spec's: its direct
 * arcs, and any other transition as the shortest path of them with no
 * saving state (PRE_COPY, STOP_COPY) inside it.  STOP_COPY -> PRE_COPY,
 * the P2P states, ERROR and, without cfg->mig_precopy, PRE_COPY are
 * refused with EINVAL.  In STOP, STOP_COPY, RESUMING and ERROR the device
 * is frozen: a REGION_WRITE to BAR0 fails with EBUSY.  RESUMING -> STOP
 * takes the stream only if it is whole (below); if not, the SET fails
 * with EINVAL and the device goes to ERROR, from which DEVICE_RESET
 * recovers.  DEVICE_RESET and the client's disconnect end any transfer
 * session and put the device in RUNNING, so that a new client finds it
 * running, buffer unchanged; a disconnect also stops DMA logging.
 *
 * DEVICE_FEATURE requests carry exactly the data of the feature (none for
 * a GET of MIGRATION or MIG_DEVICE_STATE, nor for DMA_LOGGING_STOP); a
 * PROBE may carry any.  A SET or PROBE is replied with its request (with
 * MIG_DEVICE_STATE's data_fd set to -1), a GET with argsz set to the size
 * of the reply.  A reply that would be larger than the request's argsz is
 * not cut short: the request fails with EINVAL.  Any request that fails
 * changes nothing, but for RESUMING -> STOP.
 *
 * The stream (MIG_DATA_READ in PRE_COPY or STOP_COPY, MIG_DATA_WRITE in
 * RESUMING, EINVAL elsewhere) is a sequence of records: a
 * VUTestMigRecord, little-endian, then @len bytes:
 *   CHUNK  @len (> 0) bytes of the buffer, at @offset into it
 *   REGS   @offset 0, @len 4: SCRATCH
 *   END    @offset 0, @len 0: the last record
 * PRE_COPY sends the whole buffer in 4 KiB CHUNKs, then the chunks written
 * since they were sent.  STOP_COPY sends the rest: the chunks written
 * since (the whole buffer if not from PRE_COPY), REGS, END.  A read that
 * returns less than asked means "nothing more for now" in PRE_COPY, "the
 * end" in STOP_COPY.  A MIG_DATA_READ or _WRITE moves up to
 * cfg->max_data_xfer_size bytes; a READ's argsz must leave room for all
 * it asks for, a WRITE's is not looked at (its reply has no payload).
 * MIG_DATA_WRITE takes records cut anywhere; one whose data would make a
 * bad record, or follow END, fails with EINVAL and none of its data is
 * taken.  RESUMING -> STOP wants an END, a REGS and every byte of the
 * buffer covered.  Later records win.
 */
#define VU_TEST_MIG_REC_CHUNK       0x31437576  /* "vuC1" */
#define VU_TEST_MIG_REC_REGS        0x31527576  /* "vuR1" */
#define VU_TEST_MIG_REC_END         0x31457576  /* "vuE1" */

typedef struct VUTestMigRecord {
    uint32_t type;              /* VU_TEST_MIG_REC_* */
    uint32_t offset;
    uint32_t len;
} QEMU_PACKED VUTestMigRecord;

/*
 * DMA logging (cfg->dma_logging): while started, the device's DMA writes
 * through a mapping's fd mark the 4 KiB pages they touch within START's
 * ranges (all pages if it gave none); the DMA_WRITEs the client is asked
 * to do, it sees itself.  START wants a power of two >= 4 KiB as
 * page_size (replied unchanged), ranges aligned to it, not empty, not
 * overlapping, at most VU_TEST_LOG_MAX_RANGES; a second START fails with
 * EBUSY; STOP forgets everything and always succeeds.  REPORT wants iova
 * and length (not 0) aligned to its page_size, a power of two, and a
 * bitmap of at most VFIO_USER_MAX_MAX_XFER bytes, and fails with EINVAL
 * unless logging was started; it sets bit i if a marked page meets
 * [iova + i * page_size, + page_size), and clears the marked pages wholly
 * inside [iova, + length).
 */
#define VU_TEST_LOG_MAX_RANGES      1024

typedef struct VUTestServer VUTestServer;

/* A message received from the client, as a hook sees it */
typedef struct VUTestMsg {
    VFIOUserHdr hdr;
    const uint8_t *payload;     /* hdr.size - sizeof(hdr) bytes */
    size_t payload_size;
    const int *fds;             /* closed by the server after the hook */
    unsigned nfds;
} VUTestMsg;

typedef enum VUTestHookAction {
    VU_TEST_HOOK_CONTINUE,      /* handle the message normally */
    VU_TEST_HOOK_REPLACE,       /* do not handle it; send @reply instead */
    VU_TEST_HOOK_DISCONNECT,    /* send @reply, then close the connection */
} VUTestHookAction;

/*
 * Called on the server thread with every request from the client, before
 * the server handles it (a request that arrived while the server waited
 * for a DMA reply is seen when it is handled, after that DMA).  @reply
 * starts empty; whatever the hook appends is sent verbatim, so it may
 * hold a malformed message, several messages or none.
 * vu_test_server_send_raw() sends fds too.
 */
typedef VUTestHookAction (*VUTestServerHook)(VUTestServer *s,
                                             const VUTestMsg *msg,
                                             GByteArray *reply,
                                             void *opaque);

typedef struct VUTestServerConfig {
    uint16_t vendor_id;
    uint16_t device_id;
    unsigned msix_vectors;      /* 0 (no MSI-X) .. VU_TEST_MSIX_MAX_VECTORS */
    bool msix_noresize;         /* MSI-X says NORESIZE: all fds at once */
    bool bar1_fd;               /* pass BAR1's memfd, with a sparse cap */
    bool bar1_unsealed;         /* not sealed against resizing */
    /*
     * Capabilities in the VERSION reply; 0 leaves one out, so that the
     * client must use the spec's default.  The server also enforces
     * max_msg_fds, max_data_xfer_size, pgsizes (DMA_MAP alignment to the
     * smallest) and max_dma_maps on what it receives.
     */
    uint32_t max_msg_fds;
    uint64_t max_data_xfer_size;
    uint64_t pgsizes;
    uint32_t max_dma_maps;
    /*
     * Deliver MSI-X only for vectors unmasked in BAR2's table (they start
     * masked), like QEMU 10.0's own server; by default only SET_IRQS
     * masks count.
     */
    bool msix_table_masks;
    bool reaccept;              /* serve another client after a disconnect */
    /*
     * Off by default: DEVICE_FEATURE then fails with ENOTSUP for the
     * features concerned (as for any feature the server does not have),
     * and so do MIG_DATA_READ/WRITE without @migration.  @migration: the
     * MIGRATION feature, with VFIO_MIGRATION_STOP_COPY, and
     * MIG_DEVICE_STATE; @mig_precopy adds VFIO_MIGRATION_PRE_COPY.
     * @dma_logging: DMA_LOGGING_START, _STOP and _REPORT.
     */
    bool migration;
    bool mig_precopy;
    bool dma_logging;
    unsigned dma_timeout_ms;    /* wait for a DMA reply; 0: 5000 */
    VUTestServerHook hook;
    void *hook_opaque;
} VUTestServerConfig;

/* Default: 1234:5655, 4 MSI-X vectors, BAR1 fd, 8 fds, 1 MiB, 4 KiB, 64k */
void vu_test_server_config_init(VUTestServerConfig *cfg);

/*
 * Listen on @socket_path (replacing a stale socket there) and start the
 * server thread.  @cfg may be NULL for the defaults.  Returns NULL if the
 * socket cannot be set up or @cfg is invalid.
 */
VUTestServer *vu_test_server_new(const char *socket_path,
                                 const VUTestServerConfig *cfg);
/* Stop the thread, close every fd, unmap everything, unlink the socket */
void vu_test_server_free(VUTestServer *s);

/* Wait until a client is connected / the last one has gone */
bool vu_test_server_wait_connected(VUTestServer *s, unsigned timeout_ms);
bool vu_test_server_wait_disconnected(VUTestServer *s, unsigned timeout_ms);
/* Close the connection from the server side */
void vu_test_server_disconnect(VUTestServer *s);

/* What the client proposed in VERSION (capabilities after defaults) */
typedef struct VUTestClientInfo {
    bool negotiated;
    uint16_t major;
    uint16_t minor;
    uint32_t max_msg_fds;
    uint64_t max_data_xfer_size;
    uint64_t pgsizes;
    uint32_t max_dma_maps;
    uint64_t migr_pgsize;       /* 0: no migration capability */
    char *json;                 /* NULL if none; caller frees */
} VUTestClientInfo;

void vu_test_server_get_client_info(VUTestServer *s, VUTestClientInfo *info);

/*
 * Records, as copies (g_array_unref() them) or counts.  Their @err is a
 * positive errno, as in a reply header; functions return -errno.
 */
typedef struct VUTestDMAMapRecord {
    uint64_t iova;
    uint64_t size;
    uint64_t offset;
    uint32_t flags;
    unsigned nfds;
    int err;                    /* errno the server replied with, or 0 */
} VUTestDMAMapRecord;

typedef struct VUTestDMAUnmapRecord {
    uint64_t iova;
    uint64_t size;
    uint32_t flags;
    int err;
} VUTestDMAUnmapRecord;

typedef struct VUTestSetIrqsRecord {
    uint32_t index;
    uint32_t start;
    uint32_t count;
    uint32_t flags;             /* VFIO_IRQ_SET_DATA_* | _ACTION_* */
    unsigned nfds;
    int err;
} VUTestSetIrqsRecord;

typedef struct VUTestRegionWriteRecord {
    uint64_t offset;
    uint32_t region;
    uint32_t count;
    bool no_reply;
    int err;
} VUTestRegionWriteRecord;

/* A DMA_READ/WRITE of the server that failed */
typedef struct VUTestDMAErrorRecord {
    uint16_t command;
    uint64_t address;
    uint64_t count;
    int err;
    bool error_reply;           /* the client replied with an error */
} VUTestDMAErrorRecord;

/* A reply the server got to no request it was waiting for */
typedef struct VUTestReplyRecord {
    uint16_t id;
    uint16_t command;
    uint32_t flags;
    uint32_t error_reply;
} VUTestReplyRecord;

typedef struct VUTestServerStats {
    unsigned connections;
    unsigned disconnects;
    unsigned error_replies;     /* error replies the server sent */
    unsigned protocol_errors;   /* malformed messages received */
    unsigned dma_reads;         /* DMA_READ requests sent */
    unsigned dma_writes;        /* DMA_WRITE requests sent */
    uint64_t dma_bytes_read;    /* moved by successful DMA_READs */
    uint64_t dma_bytes_written;
    uint64_t dma_bytes_mmap;    /* moved through mmapped DMA_MAP fds */
    unsigned dma_error_replies;
    unsigned dma_timeouts;
    unsigned dma_bad_replies;   /* replies that did not match the request */
    unsigned stale_replies;     /* replies to nothing outstanding */
    unsigned irqs_signalled[VFIO_PCI_NUM_IRQS];
    unsigned irqs_pending[VFIO_PCI_NUM_IRQS];   /* held back by a mask */
    unsigned irqs_lost[VFIO_PCI_NUM_IRQS];      /* raised without eventfd */
    unsigned log_dropped;       /* records beyond VU_TEST_LOG_MAX */
    unsigned mig_transitions;   /* direct arcs a SET of the state took */
    uint64_t mig_bytes_read;    /* stream bytes MIG_DATA_READ replied */
    uint64_t mig_bytes_written; /* stream bytes MIG_DATA_WRITE took */
    unsigned mig_data_rejected; /* MIG_DATA_READ/WRITEs failed, and */
                                /* streams RESUMING -> STOP refused */
    uint64_t dirty_pages_logged;    /* 4 KiB pages newly marked */
    uint64_t dirty_pages_reported;  /* bits set in REPORT bitmaps */
} VUTestServerStats;

#define VU_TEST_LOG_MAX             65536

/* Requests received per command (0: unknown commands) and their fds */
unsigned vu_test_server_cmd_count(VUTestServer *s, unsigned command);
unsigned vu_test_server_cmd_fds(VUTestServer *s, unsigned command);
GArray *vu_test_server_dma_maps(VUTestServer *s);
GArray *vu_test_server_dma_unmaps(VUTestServer *s);
GArray *vu_test_server_set_irqs(VUTestServer *s);
GArray *vu_test_server_region_writes(VUTestServer *s);
GArray *vu_test_server_dma_errors(VUTestServer *s);
GArray *vu_test_server_stale_replies(VUTestServer *s);
unsigned vu_test_server_num_mappings(VUTestServer *s);
void vu_test_server_get_stats(VUTestServer *s, VUTestServerStats *stats);
/* Forget all records, counts and stats */
void vu_test_server_clear_log(VUTestServer *s);

/* The migration state: an enum vfio_device_mig_state */
uint32_t vu_test_server_mig_state(VUTestServer *s);

/*
 * Device state, without side effects, except that buf_write() counts as a
 * write of the device for PRE_COPY
 */
uint32_t vu_test_server_reg_read(VUTestServer *s, unsigned offset);
void vu_test_server_buf_read(VUTestServer *s, unsigned offset, void *buf,
                             size_t len);
void vu_test_server_buf_write(VUTestServer *s, unsigned offset,
                              const void *buf, size_t len);
void vu_test_server_bar1_read(VUTestServer *s, unsigned offset, void *buf,
                              size_t len);
void vu_test_server_bar1_write(VUTestServer *s, unsigned offset,
                               const void *buf, size_t len);

/*
 * Make the server send one DMA_READ or DMA_WRITE and wait for its reply.
 * Nothing is checked on the way out, so that a test can probe the client.
 */
typedef struct VUTestDMARequest {
    bool write;                 /* DMA_WRITE, else DMA_READ */
    uint64_t address;
    uint64_t count;             /* the count field */
    const void *data;           /* data_len bytes to send; NULL: zeroes */
    size_t data_len;            /* normally count (write) or 0 (read) */
    unsigned timeout_ms;        /* 0: cfg->dma_timeout_ms */
    void *read_into;            /* DMA_READ data, else in result's data */
} VUTestDMARequest;

typedef struct VUTestDMAResult {
    int err;                    /* 0, or the (positive) errno */
    bool error_reply;           /* @err came from the client's reply */
    bool replied;               /* @hdr is valid */
    VFIOUserHdr hdr;            /* of the reply */
    uint64_t address;           /* echoed by the reply */
    uint64_t count;
    GByteArray *data;           /* data of a DMA_READ reply; caller frees */
} VUTestDMAResult;

/*
 * Returns 0, or minus: the client's errno (EIO if its error reply carried
 * 0), ETIMEDOUT, ENOTCONN, or EPROTO for a reply that does not match the
 * request.  @res may be NULL.
 */
int vu_test_server_dma(VUTestServer *s, const VUTestDMARequest *req,
                       VUTestDMAResult *res);
int vu_test_server_dma_read(VUTestServer *s, uint64_t address, void *buf,
                            uint64_t count);
int vu_test_server_dma_write(VUTestServer *s, uint64_t address,
                             const void *buf, uint64_t count);

/*
 * Raise vector @vector of IRQ index @index (VFIO_PCI_*_IRQ_INDEX) as the
 * device would: INTx is asserted until vu_test_server_lower_intx(); a
 * masked vector is left pending.  Returns 0, -EINVAL for a bad index or
 * vector, or -ENOENT if no eventfd is set for it.
 */
int vu_test_server_raise_irq(VUTestServer *s, unsigned index,
                             unsigned vector);
void vu_test_server_lower_intx(VUTestServer *s);

/* Send raw bytes (and fds) to the client; returns 0 or -errno */
int vu_test_server_send_raw(VUTestServer *s, const void *buf, size_t len,
                            const int *fds, unsigned nfds);

/*
 * From a hook only (the server thread): read up to @len raw bytes of what
 * follows the hooked message, waiting up to @timeout_ms for some, as a
 * peer that reads slowly would.  The server's own reading then goes on
 * after them, out of step with the messages: use it only where the
 * stream no longer matters.  Returns the bytes read, 0 if none came in
 * time, -ECONNRESET at the end of the stream, or another -errno.
 */
int vu_test_server_recv_raw(VUTestServer *s, void *buf, size_t len,
                            unsigned timeout_ms);

#endif /* TESTS_QTEST_VFIO_USER_SERVER_H */
