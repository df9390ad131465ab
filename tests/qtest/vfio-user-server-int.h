/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The test server's own state, shared by its files and by nothing else:
 * tests see only vfio-user-server.h.
 *
 *   vfio-user-server.c            the server thread, its lifecycle, and
 *                                 the table of request handlers
 *   vfio-user-server-transport.c  the socket: framing, fds, replies
 *   vfio-user-server-device.c     the PCI function: config space, BARs,
 *                                 registers, reset
 *   vfio-user-server-irq.c        interrupts: eventfds, masks, SET_IRQS
 *   vfio-user-server-dma.c        DMA_MAP/UNMAP, DMA_READ/WRITE, the
 *                                 device's DMA engine
 *   vfio-user-server-log.c        what the server records for tests
 *   vfio-user-server-mig.c        migration: DEVICE_FEATURE, the state
 *                                 machine, MIG_DATA_READ/WRITE, DMA
 *                                 logging
 *
 * Locking: fields are owned by the server thread or under @lock, as
 * marked in VUTestServer; functions say which they need.
 */

#ifndef TESTS_QTEST_VFIO_USER_SERVER_INT_H
#define TESTS_QTEST_VFIO_USER_SERVER_INT_H

#include <sys/eventfd.h>
#include "hw/pci/pci_regs.h"
#include "qemu/bitmap.h"
#include "vfio-user-server.h"

#define VU_MSG_TIMEOUT_MS       10000   /* to finish a message once begun */
#define VU_DEF_DMA_TIMEOUT_MS   5000
#define VU_MAX_RX_FDS           VFIO_USER_MAX_MAX_FDS
#define VU_RX_BUF_SIZE          (8 * 1024)  /* a header and a page */
#define VU_CFG_SIZE             256
#define VU_MIG_CHUNK_SIZE       4096    /* what PRE_COPY tracks in buf */
#define VU_MIG_NCHUNKS          (VU_TEST_BUF_SIZE / VU_MIG_CHUNK_SIZE)
#define VU_LOG_PAGE_SHIFT       12      /* what DMA logging tracks */
#define VU_LOG_PAGE_SIZE        (1ULL << VU_LOG_PAGE_SHIFT)

/* A message received from the client */
typedef struct VUMsg {
    VFIOUserHdr hdr;
    uint8_t *payload;
    size_t payload_size;
    int fds[VU_MAX_RX_FDS];
    unsigned nfds;
    bool fds_lost;              /* more fds came than we could take */
    int bad;                    /* -errno if the message is unusable */
} VUMsg;

typedef struct VUReply {
    GByteArray *payload;
    int fd;                     /* to attach (not owned), or -1 */
    bool disconnect;            /* close the connection after replying */
} VUReply;

typedef struct VUMapping {
    uint64_t iova;
    uint64_t size;
    uint64_t offset;
    uint32_t flags;
    int fd;
    uint8_t *host;              /* iova in our address space, or NULL */
    void *mmap_base;
    size_t mmap_len;
} VUMapping;

typedef struct VUIrq {
    int trigger_fd;
    int mask_fd;
    int unmask_fd;
    bool masked;
    bool pending;
} VUIrq;

typedef struct VUIrqIndex {
    unsigned count;
    uint32_t info_flags;
    bool enabled;
    VUIrq *v;
} VUIrqIndex;

/* Migration, under the server's lock */
typedef struct VUMig {
    uint32_t state;             /* enum vfio_device_mig_state */
    /* Saving (PRE_COPY, STOP_COPY): the stream from out_pos on is unread */
    GByteArray *out;
    size_t out_pos;
    DECLARE_BITMAP(dirty, VU_MIG_NCHUNKS);  /* buf chunks written since sent */
    /*
     * Resuming: records are checked and applied to @stage as they come
     * whole; @in holds the start of one that is not whole yet.
     */
    GByteArray *in;
    uint8_t *stage;             /* buf as the stream has it, or NULL */
    uint32_t stage_scratch;
    DECLARE_BITMAP(covered, VU_TEST_BUF_SIZE);  /* bytes of @stage set */
    bool got_regs;
    bool got_end;
    /* DMA logging */
    bool logging;
    GArray *log_ranges;         /* VFIOUserDMALoggingRange; none: all */
    GHashTable *dirty_pages;    /* of uint64_t page numbers, iova >> 12 */
} VUMig;

typedef struct VUJob {
    const VUTestDMARequest *req;
    VUTestDMAResult *res;
    int ret;
    bool done;
} VUJob;

struct VUTestServer {
    VUTestServerConfig cfg;
    char *path;
    int listen_fd;
    int wake_fd;
    GThread *thread;
    gpointer self;              /* the server thread, as it sees itself */
    int stopping;

    /* Owned by the server thread; conn_fd changes under send_lock */
    int conn_fd;
    bool conn_broken;
    bool negotiated;
    uint16_t next_id;
    GQueue pending;             /* VUMsg: requests held during a DMA */
    /*
     * What was read ahead of the message being received: a message is
     * read with one recvmsg() when it is there whole, as the raw peer
     * the benchmarks compare us with reads it.  fds belong to the
     * message that holds the last byte of the read they came with.
     */
    uint8_t rx_buf[VU_RX_BUF_SIZE];
    size_t rx_head, rx_tail;
    uint64_t rx_pos;            /* stream offset of rx_buf[rx_head] */
    int rx_fds[VU_MAX_RX_FDS];  /* fds of a read, not yet claimed */
    unsigned rx_nfds;
    bool rx_fds_lost;
    uint64_t rx_fds_at;         /* stream offset of that read's last byte */
    uint64_t client_max_xfer;
    unsigned client_max_fds;
    GMutex send_lock;

    /* Everything below is under lock */
    GMutex lock;
    GCond cond;
    GQueue jobs;
    bool connected;
    VUTestClientInfo client;

    uint8_t config[VU_CFG_SIZE];
    uint8_t config_wmask[VU_CFG_SIZE];
    uint32_t scratch;
    uint32_t reset_count;
    uint64_t dma_src;
    uint64_t dma_dst;
    uint64_t dma_len;
    uint32_t dma_cmd;
    uint32_t dma_status;
    uint32_t dma_errno;
    uint32_t dma_count;
    uint32_t irq_errors;
    bool intx_asserted;
    uint8_t buf[VU_TEST_BUF_SIZE];
    int bar1_fd;
    uint8_t *bar1;
    uint8_t msix_table[VU_TEST_MSIX_MAX_VECTORS * PCI_MSIX_ENTRY_SIZE];
    VUIrqIndex irqs[VFIO_PCI_NUM_IRQS];
    GArray *mappings;           /* VUMapping */
    VUMig mig;

    unsigned cmd_count[VFIO_USER_MAX];
    unsigned cmd_fds[VFIO_USER_MAX];
    GArray *dma_maps;
    GArray *dma_unmaps;
    GArray *set_irqs;
    GArray *region_writes;
    GArray *dma_errors;
    GArray *stale_replies;
    VUTestServerStats stats;
};

static inline bool vu_stopping(VUTestServer *s)
{
    return g_atomic_int_get(&s->stopping);
}

static inline void vu_wake(VUTestServer *s)
{
    eventfd_write(s->wake_fd, 1);
}

static inline void vu_close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

/* The most data a request may carry to us (REGION_WRITE, MIG_DATA_*) */
static inline uint64_t vu_max_rx_xfer(VUTestServer *s)
{
    return s->cfg.max_data_xfer_size ? s->cfg.max_data_xfer_size
                                     : VFIO_USER_DEF_MAX_XFER;
}

/* Request handlers: return 0 and fill @r, or return -errno */
typedef int (*VUHandler)(VUTestServer *s, VUMsg *msg, VUReply *r);

/* vfio-user-server-transport.c: the server thread only */
void vu_msg_free(VUMsg *msg);
void vu_msg_get_payload(VUMsg *msg, void *dst, size_t size);
void vu_rx_reset(VUTestServer *s);
int vu_recv_msg(VUTestServer *s, VUMsg **msgp, int64_t deadline_us);
int vu_sendv(VUTestServer *s, struct iovec *iov_in, int iovcnt,
             const int *fds, unsigned nfds);
void vu_send_bytes(VUTestServer *s, const void *buf, size_t len);
void vu_reply(VUTestServer *s, const VUMsg *req, int err, VUReply *r);
void vu_accept(VUTestServer *s, bool may_accept);

/* vfio-user-server-device.c: with the lock held, except the handlers */
void vu_config_init(VUTestServer *s);
void vu_msix_table_init(VUTestServer *s);
bool vu_bar1_init(VUTestServer *s);       /* before the thread starts */
void vu_bar1_free(VUTestServer *s);
int vu_handle_get_info(VUTestServer *s, VUMsg *msg, VUReply *r);
int vu_handle_get_region_info(VUTestServer *s, VUMsg *msg, VUReply *r);
int vu_handle_region_read(VUTestServer *s, VUMsg *msg, VUReply *r);
int vu_handle_region_write(VUTestServer *s, VUMsg *msg, VUReply *r);
int vu_handle_reset(VUTestServer *s, VUMsg *msg, VUReply *r);

/* vfio-user-server-irq.c: with the lock held, except the handlers */
void vu_irqs_init(VUTestServer *s);
void vu_irq_recheck(VUTestServer *s);
void vu_irq_raise_mode(VUTestServer *s, uint32_t vector);
void vu_intx_lower(VUTestServer *s);
void vu_intx_unmask(VUTestServer *s);   /* takes the lock itself */
void vu_irq_disable(VUTestServer *s, unsigned index);
int vu_handle_get_irq_info(VUTestServer *s, VUMsg *msg, VUReply *r);
int vu_handle_set_irqs(VUTestServer *s, VUMsg *msg, VUReply *r);

/* vfio-user-server-dma.c */
void vu_unmap_all(VUTestServer *s);     /* with the lock held */
void vu_dma_run(VUTestServer *s);
int vu_dma_msg(VUTestServer *s, const VUTestDMARequest *req,
               VUTestDMAResult *res);
void vu_run_jobs(VUTestServer *s);
int vu_handle_dma_map(VUTestServer *s, VUMsg *msg, VUReply *r);
int vu_handle_dma_unmap(VUTestServer *s, VUMsg *msg, VUReply *r);

/* vfio-user-server-mig.c: with the lock held, except the handlers */
void vu_mig_init(VUTestServer *s);
void vu_mig_free(VUTestServer *s);
void vu_mig_reset(VUTestServer *s);     /* DEVICE_RESET */
void vu_mig_disconnect(VUTestServer *s);
bool vu_mig_frozen(VUTestServer *s);    /* the device may not change */
void vu_mig_buf_dirty(VUTestServer *s, uint64_t offset, uint64_t len);
void vu_mig_log_dma(VUTestServer *s, uint64_t iova, uint64_t len);
int vu_handle_device_feature(VUTestServer *s, VUMsg *msg, VUReply *r);
int vu_handle_mig_data_read(VUTestServer *s, VUMsg *msg, VUReply *r);
int vu_handle_mig_data_write(VUTestServer *s, VUMsg *msg, VUReply *r);

/* vfio-user-server-log.c: with the lock held, except where marked */
void vu_log_init(VUTestServer *s);
void vu_log_free(VUTestServer *s);
void vu_log(VUTestServer *s, GArray *log, const void *rec);
void vu_record_stale_reply(VUTestServer *s, const VUMsg *msg);
/* Takes the lock itself */
void vu_record_dma_error(VUTestServer *s, uint16_t cmd, uint64_t addr,
                         uint64_t count, int err, bool error_reply);

#endif /* TESTS_QTEST_VFIO_USER_SERVER_INT_H */
