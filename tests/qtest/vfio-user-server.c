/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A vfio-user server for tests, running in a thread of the test process.
 * vfio-user-server.h describes the device and the API.
 *
 * One thread owns the connection: it accepts a client, reads its
 * requests and replies in order, as the spec requires.  The DMA engine
 * runs inside the handling of the REGION_WRITE that starts it, before
 * that write is replied to: the client has to service our DMA_READ/WRITE
 * while it waits for its own reply.  While we wait for the reply to one
 * of our DMA requests, requests from the client are queued and handled,
 * in order, once the DMA is over; handling them at once would reorder
 * replies and let a DMA_UNMAP overtake the DMA it races with.  A client
 * that sends nothing but waits gets its reply after the DMA, or after our
 * timeout.
 *
 * The test thread talks to the server thread through a job queue (DMA
 * requests) and the state lock (records, device state, interrupts).
 */

#include "qemu/osdep.h"
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/mman.h>
#include <sys/eventfd.h>
#include "qemu/bitops.h"
#include "qemu/bswap.h"
#include "qemu/host-utils.h"
#include "qemu/memfd.h"
#include "hw/pci/pci_regs.h"
#include "hw/vfio-user/protocol.h"
#include "vfio-user-server.h"

#define VU_MSG_TIMEOUT_MS       10000   /* to finish a message once begun */
#define VU_DEF_DMA_TIMEOUT_MS   5000
#define VU_MAX_RX_FDS           VFIO_USER_MAX_MAX_FDS
#define VU_RX_BUF_SIZE          (8 * 1024)  /* a header and a page */
#define VU_CFG_SIZE             256
#define VU_JSON_MAX_DEPTH       16

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

    unsigned cmd_count[VFIO_USER_MAX];
    unsigned cmd_fds[VFIO_USER_MAX];
    GArray *dma_maps;
    GArray *dma_unmaps;
    GArray *set_irqs;
    GArray *region_writes;
    GArray *dma_errors;
    VUTestServerStats stats;
};

static bool vu_stopping(VUTestServer *s)
{
    return g_atomic_int_get(&s->stopping);
}

static void vu_wake(VUTestServer *s)
{
    eventfd_write(s->wake_fd, 1);
}

static void vu_close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

static void vu_log(VUTestServer *s, GArray *log, const void *rec)
{
    if (log->len >= VU_TEST_LOG_MAX) {
        s->stats.log_dropped++;
        return;
    }
    g_array_append_vals(log, rec, 1);
}

static void vu_msg_free(VUMsg *msg)
{
    unsigned i;

    for (i = 0; i < msg->nfds; i++) {
        vu_close_fd(&msg->fds[i]);
    }
    g_free(msg->payload);
    g_free(msg);
}

/* The smallest page size we accept in DMA_MAP */
static uint64_t vu_pgsize(VUTestServer *s)
{
    uint64_t p = s->cfg.pgsizes ? s->cfg.pgsizes : VFIO_USER_DEF_PGSIZE;

    return p & -p;
}

static unsigned vu_max_rx_fds(VUTestServer *s)
{
    return s->cfg.max_msg_fds ? MIN(s->cfg.max_msg_fds, VU_MAX_RX_FDS)
                              : VFIO_USER_DEF_MAX_FDS;
}

static uint64_t vu_max_rx_xfer(VUTestServer *s)
{
    return s->cfg.max_data_xfer_size ? s->cfg.max_data_xfer_size
                                     : VFIO_USER_DEF_MAX_XFER;
}

/*
 * JSON: just enough to read the client's capabilities.  Any valid JSON
 * is accepted and skipped where we do not look; anything invalid fails.
 */

typedef struct VUJson {
    const char *p;
    const char *end;
    unsigned depth;
} VUJson;

typedef bool (*VUJsonMember)(VUJson *j, const char *key, void *opaque);

static bool vu_json_value(VUJson *j);

static void vu_json_ws(VUJson *j)
{
    while (j->p < j->end &&
           (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) {
        j->p++;
    }
}

static bool vu_json_char(VUJson *j, char c)
{
    vu_json_ws(j);
    if (j->p < j->end && *j->p == c) {
        j->p++;
        return true;
    }
    return false;
}

static bool vu_json_peek(VUJson *j, char c)
{
    vu_json_ws(j);
    return j->p < j->end && *j->p == c;
}

static bool vu_json_literal(VUJson *j, const char *lit)
{
    size_t n = strlen(lit);

    if ((size_t)(j->end - j->p) < n || memcmp(j->p, lit, n)) {
        return false;
    }
    j->p += n;
    return true;
}

/* A string; its ASCII content goes to @out if not NULL */
static bool vu_json_string(VUJson *j, GString *out)
{
    if (!vu_json_char(j, '"')) {
        return false;
    }
    while (j->p < j->end) {
        unsigned char c = *j->p++;
        unsigned i, u = 0;

        if (c == '"') {
            return true;
        }
        if (c < 0x20) {
            return false;
        }
        if (c == '\\') {
            if (j->p >= j->end) {
                return false;
            }
            c = *j->p++;
            switch (c) {
            case '"':
            case '\\':
            case '/':
                break;
            case 'b':
                c = '\b';
                break;
            case 'f':
                c = '\f';
                break;
            case 'n':
                c = '\n';
                break;
            case 'r':
                c = '\r';
                break;
            case 't':
                c = '\t';
                break;
            case 'u':
                if (j->end - j->p < 4) {
                    return false;
                }
                for (i = 0; i < 4; i++) {
                    if (!g_ascii_isxdigit(j->p[i])) {
                        return false;
                    }
                    u = u * 16 + g_ascii_xdigit_value(j->p[i]);
                }
                j->p += 4;
                c = (u > 0 && u < 0x80) ? u : '?';
                break;
            default:
                return false;
            }
        }
        if (out) {
            g_string_append_c(out, c);
        }
    }
    return false;
}

/* A number; *@is_uint tells whether it is an integer >= 0 in *@val */
static bool vu_json_number(VUJson *j, uint64_t *val, bool *is_uint)
{
    bool neg = false, exact = true;
    uint64_t v = 0;

    vu_json_ws(j);
    if (j->p < j->end && *j->p == '-') {
        neg = true;
        j->p++;
    }
    if (j->p >= j->end || !g_ascii_isdigit(*j->p)) {
        return false;
    }
    if (*j->p == '0') {
        j->p++;
    } else {
        while (j->p < j->end && g_ascii_isdigit(*j->p)) {
            unsigned d = *j->p++ - '0';

            if (v > (UINT64_MAX - d) / 10) {
                exact = false;
            } else {
                v = v * 10 + d;
            }
        }
    }
    if (j->p < j->end && *j->p == '.') {
        j->p++;
        if (j->p >= j->end || !g_ascii_isdigit(*j->p)) {
            return false;
        }
        while (j->p < j->end && g_ascii_isdigit(*j->p)) {
            j->p++;
        }
        exact = false;
    }
    if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
        j->p++;
        if (j->p < j->end && (*j->p == '+' || *j->p == '-')) {
            j->p++;
        }
        if (j->p >= j->end || !g_ascii_isdigit(*j->p)) {
            return false;
        }
        while (j->p < j->end && g_ascii_isdigit(*j->p)) {
            j->p++;
        }
        exact = false;
    }
    *val = v;
    *is_uint = exact && !neg;
    return true;
}

static bool vu_json_uint(VUJson *j, uint64_t *val)
{
    bool is_uint;

    return vu_json_number(j, val, &is_uint) && is_uint;
}

/* An object; @fn (or a skip) consumes each member's value */
static bool vu_json_object(VUJson *j, VUJsonMember fn, void *opaque)
{
    if (++j->depth > VU_JSON_MAX_DEPTH || !vu_json_char(j, '{')) {
        return false;
    }
    if (!vu_json_char(j, '}')) {
        do {
            g_autoptr(GString) key = g_string_new(NULL);

            if (!vu_json_string(j, key) || !vu_json_char(j, ':')) {
                return false;
            }
            if (fn ? !fn(j, key->str, opaque) : !vu_json_value(j)) {
                return false;
            }
        } while (vu_json_char(j, ','));
        if (!vu_json_char(j, '}')) {
            return false;
        }
    }
    j->depth--;
    return true;
}

static bool vu_json_array(VUJson *j)
{
    if (++j->depth > VU_JSON_MAX_DEPTH || !vu_json_char(j, '[')) {
        return false;
    }
    if (!vu_json_char(j, ']')) {
        do {
            if (!vu_json_value(j)) {
                return false;
            }
        } while (vu_json_char(j, ','));
        if (!vu_json_char(j, ']')) {
            return false;
        }
    }
    j->depth--;
    return true;
}

static bool vu_json_value(VUJson *j)
{
    uint64_t v;
    bool is_uint;

    vu_json_ws(j);
    if (j->p >= j->end) {
        return false;
    }
    switch (*j->p) {
    case '{':
        return vu_json_object(j, NULL, NULL);
    case '[':
        return vu_json_array(j);
    case '"':
        return vu_json_string(j, NULL);
    case 't':
        return vu_json_literal(j, "true");
    case 'f':
        return vu_json_literal(j, "false");
    case 'n':
        return vu_json_literal(j, "null");
    default:
        return vu_json_number(j, &v, &is_uint);
    }
}

static bool vu_json_migration(VUJson *j, const char *key, void *opaque)
{
    VUTestClientInfo *ci = opaque;

    if (!strcmp(key, VFIO_USER_CAP_PGSIZE)) {
        return vu_json_uint(j, &ci->migr_pgsize) && ci->migr_pgsize;
    }
    return vu_json_value(j);
}

static bool vu_json_caps(VUJson *j, const char *key, void *opaque)
{
    VUTestClientInfo *ci = opaque;
    uint64_t v;

    if (!strcmp(key, VFIO_USER_CAP_MAX_FDS)) {
        if (!vu_json_uint(j, &v)) {
            return false;
        }
        ci->max_msg_fds = MIN(v, VFIO_USER_MAX_MAX_FDS);
    } else if (!strcmp(key, VFIO_USER_CAP_MAX_XFER)) {
        if (!vu_json_uint(j, &v) || !v) {
            return false;
        }
        ci->max_data_xfer_size = MIN(v, VFIO_USER_MAX_MAX_XFER);
    } else if (!strcmp(key, VFIO_USER_CAP_PGSIZES)) {
        if (!vu_json_uint(j, &v) || !v) {
            return false;
        }
        ci->pgsizes = v;
    } else if (!strcmp(key, VFIO_USER_CAP_MAX_DMA_MAPS)) {
        if (!vu_json_uint(j, &v) || !v) {
            return false;
        }
        ci->max_dma_maps = MIN(v, UINT32_MAX);
    } else if (!strcmp(key, VFIO_USER_CAP_MIGR)) {
        return vu_json_peek(j, '{') &&
               vu_json_object(j, vu_json_migration, ci);
    } else {
        return vu_json_value(j);
    }
    return true;
}

static bool vu_json_top(VUJson *j, const char *key, void *opaque)
{
    if (!strcmp(key, VFIO_USER_CAP)) {
        return vu_json_peek(j, '{') && vu_json_object(j, vu_json_caps, opaque);
    }
    return vu_json_value(j);
}

/* Parse the version data of the client into @ci */
static bool vu_parse_caps(const char *json, size_t len, VUTestClientInfo *ci)
{
    VUJson j = { .p = json, .end = json + len };

    if (!vu_json_peek(&j, '{') || !vu_json_object(&j, vu_json_top, ci)) {
        return false;
    }
    vu_json_ws(&j);
    return j.p == j.end;
}

/*
 * Socket I/O.  conn_fd is non-blocking; we poll with the wake eventfd so
 * that vu_test_server_free() can always stop the thread.
 */

static void vu_intx_unmask(VUTestServer *s);

/*
 * Wait for input on the connection until @deadline_us (monotonic, -1:
 * forever).  Returns 1 if there is some, 0 on timeout or wake-up, -1 if
 * the server is stopping.  Also services the INTx unmask eventfd.
 */
static int vu_wait_input(VUTestServer *s, int64_t deadline_us)
{
    for (;;) {
        GPollFD pfd[3];
        int n = 0, timeout = -1, unmask_fd, r;

        if (vu_stopping(s)) {
            return -1;
        }
        pfd[n++] = (GPollFD) { .fd = s->conn_fd, .events = G_IO_IN };
        pfd[n++] = (GPollFD) { .fd = s->wake_fd, .events = G_IO_IN };
        g_mutex_lock(&s->lock);
        unmask_fd = s->irqs[VFIO_PCI_INTX_IRQ_INDEX].v[0].unmask_fd;
        g_mutex_unlock(&s->lock);
        if (unmask_fd >= 0) {
            pfd[n++] = (GPollFD) { .fd = unmask_fd, .events = G_IO_IN };
        }
        if (deadline_us >= 0) {
            int64_t left = deadline_us - g_get_monotonic_time();

            timeout = left > 0 ? (left + 999) / 1000 : 0;
        }
        r = g_poll(pfd, n, timeout);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            return r < 0 ? -1 : 0;
        }
        if (n > 2 && pfd[2].revents) {
            eventfd_t v;

            if (eventfd_read(unmask_fd, &v) == 0) {
                vu_intx_unmask(s);
            }
        }
        if (pfd[0].revents) {
            return 1;
        }
        if (pfd[1].revents) {
            eventfd_t v;

            eventfd_read(s->wake_fd, &v);
            return 0;
        }
    }
}

static void vu_drop_rx_fds(VUTestServer *s)
{
    for (unsigned i = 0; i < s->rx_nfds; i++) {
        vu_close_fd(&s->rx_fds[i]);
    }
    s->rx_nfds = 0;
    s->rx_fds_lost = false;
}

/* The fds of a read that brought @len bytes: replace unclaimed ones */
static void vu_take_fds(VUTestServer *s, struct msghdr *mh, size_t len)
{
    struct cmsghdr *cm;
    bool any = mh->msg_flags & MSG_CTRUNC;

    for (cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
        any |= cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS;
    }
    if (!any) {
        return;
    }
    vu_drop_rx_fds(s);
    s->rx_fds_lost = mh->msg_flags & MSG_CTRUNC;
    s->rx_fds_at = s->rx_pos + len - 1;     /* reads start at rx_pos */
    for (cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
        size_t i, n;

        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) {
            continue;
        }
        n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (i = 0; i < n; i++) {
            int fd;

            memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
            if (s->rx_nfds < VU_MAX_RX_FDS) {
                s->rx_fds[s->rx_nfds++] = fd;
            } else {
                close(fd);
                s->rx_fds_lost = true;
            }
        }
    }
}

/* Give @msg, which began at stream offset @start, the fds that are its */
static void vu_claim_fds(VUTestServer *s, VUMsg *msg, uint64_t start)
{
    if (!s->rx_nfds && !s->rx_fds_lost) {
        return;
    }
    if (s->rx_fds_at >= start + msg->hdr.size) {
        return;                 /* a later message's */
    }
    if (s->rx_fds_at >= start) {
        memcpy(msg->fds, s->rx_fds, s->rx_nfds * sizeof(int));
        msg->nfds = s->rx_nfds;
        msg->fds_lost = s->rx_fds_lost;
        s->rx_nfds = 0;
        s->rx_fds_lost = false;
    }
    vu_drop_rx_fds(s);          /* stale ones: nobody's */
}

static void vu_rx_reset(VUTestServer *s)
{
    vu_drop_rx_fds(s);
    s->rx_head = s->rx_tail = 0;
    s->rx_pos = 0;
}

/*
 * One recvmsg() of at most @len bytes into @buf, or into the empty
 * receive buffer when @buf is NULL.  Returns what recvmsg() returns.
 */
static ssize_t vu_recv_some(VUTestServer *s, void *buf, size_t len)
{
    union {
        char buf[CMSG_SPACE(VU_MAX_RX_FDS * sizeof(int))];
        struct cmsghdr align;
    } control;
    struct iovec iov;
    struct msghdr mh = {
        .msg_iov = &iov,
        .msg_iovlen = 1,
        .msg_control = control.buf,
        .msg_controllen = sizeof(control.buf),
    };
    ssize_t r;

    if (buf) {
        iov = (struct iovec) { .iov_base = buf, .iov_len = len };
    } else {
        g_assert(s->rx_head == s->rx_tail);
        s->rx_head = s->rx_tail = 0;
        iov = (struct iovec) {
            .iov_base = s->rx_buf, .iov_len = MIN(len, sizeof(s->rx_buf)),
        };
    }
    r = recvmsg(s->conn_fd, &mh, MSG_CMSG_CLOEXEC);
    if (r > 0) {
        vu_take_fds(s, &mh, r);
        if (!buf) {
            s->rx_tail = r;
        }
    }
    return r;
}

/*
 * Read exactly @len bytes (into @buf, or discard them if it is NULL):
 * first what was read ahead, then from the socket, through the receive
 * buffer unless what is left is big.  Once a message has begun, the
 * client gets VU_MSG_TIMEOUT_MS for each further piece of it.
 */
static bool vu_read_full(VUTestServer *s, void *buf, size_t len)
{
    uint8_t scratch[4096];
    size_t done = 0;

    while (done < len) {
        size_t have = s->rx_tail - s->rx_head;
        size_t want = len - done;
        ssize_t r;

        if (have) {
            r = MIN(have, want);
            if (buf) {
                memcpy((uint8_t *)buf + done, s->rx_buf + s->rx_head, r);
            }
            s->rx_head += r;
        } else if (want <= sizeof(s->rx_buf) / 2) {
            /*
             * While fds wait for their message (its header came in
             * pieces), read no further than it: the next message's fds
             * would replace them.
             */
            r = vu_recv_some(s, NULL, s->rx_nfds || s->rx_fds_lost ?
                                      want : sizeof(s->rx_buf));
            if (r > 0) {
                continue;
            }
        } else {
            r = vu_recv_some(s, buf ? (uint8_t *)buf + done : scratch,
                             buf ? want : MIN(want, sizeof(scratch)));
        }
        if (r > 0) {
            s->rx_pos += r;
            done += r;
        } else if (r == 0) {
            return false;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            int64_t deadline = g_get_monotonic_time() +
                               VU_MSG_TIMEOUT_MS * 1000LL;

            while (vu_wait_input(s, deadline) == 0) {
                if (g_get_monotonic_time() >= deadline) {
                    return false;
                }
            }
            if (vu_stopping(s)) {
                return false;
            }
        } else if (errno != EINTR) {
            return false;
        }
    }
    return true;
}

/* A whole message was read ahead: no need to wait for the socket. */
static bool vu_msg_buffered(VUTestServer *s)
{
    VFIOUserHdr hdr;

    if (s->rx_tail - s->rx_head < sizeof(hdr)) {
        return false;
    }
    memcpy(&hdr, s->rx_buf + s->rx_head, sizeof(hdr));
    return hdr.size < sizeof(hdr) || hdr.size <= s->rx_tail - s->rx_head;
}

/*
 * Receive one message, waiting for it until @deadline_us.  Returns 1 with
 * *@msgp set, 0 on timeout or wake-up, -1 if the connection is gone (then
 * conn_broken is set) or the server is stopping.  A message too big to
 * take is read and dropped, and returned with @bad set.
 */
static int vu_recv_msg(VUTestServer *s, VUMsg **msgp, int64_t deadline_us)
{
    uint64_t start = s->rx_pos;
    VUMsg *msg;
    int r;

    if (!vu_msg_buffered(s)) {
        r = vu_wait_input(s, deadline_us);
        if (r <= 0) {
            return r;
        }
    }
    msg = g_new0(VUMsg, 1);
    if (!vu_read_full(s, &msg->hdr, sizeof(msg->hdr))) {
        goto broken;
    }
    if (msg->hdr.size < sizeof(msg->hdr)) {
        /* Nowhere to resynchronise the stream from */
        g_mutex_lock(&s->lock);
        s->stats.protocol_errors++;
        g_mutex_unlock(&s->lock);
        goto broken;
    }
    msg->payload_size = msg->hdr.size - sizeof(msg->hdr);
    if (msg->hdr.size > VFIO_USER_MAX_MSG) {
        if (!vu_read_full(s, NULL, msg->payload_size)) {
            goto broken;
        }
        msg->payload_size = 0;
        msg->bad = -E2BIG;
    } else if (msg->payload_size) {
        msg->payload = g_malloc(msg->payload_size);
        if (!vu_read_full(s, msg->payload, msg->payload_size)) {
            goto broken;
        }
    }
    vu_claim_fds(s, msg, start);
    *msgp = msg;
    return 1;

broken:
    vu_msg_free(msg);
    s->conn_broken = true;
    return -1;
}

/* Send an iovec (and fds) as one message; returns 0 or -errno */
static int vu_sendv(VUTestServer *s, struct iovec *iov_in, int iovcnt,
                    const int *fds, unsigned nfds)
{
    union {
        char buf[CMSG_SPACE(VFIO_USER_MAX_MAX_FDS * sizeof(int))];
        struct cmsghdr align;
    } control;
    struct iovec iov[4];
    int i, ret = 0;

    if (iovcnt > (int)ARRAY_SIZE(iov) || nfds > VFIO_USER_MAX_MAX_FDS) {
        return -EINVAL;
    }
    memcpy(iov, iov_in, iovcnt * sizeof(iov[0]));
    g_mutex_lock(&s->send_lock);
    if (s->conn_fd < 0) {
        ret = -ENOTCONN;
        goto out;
    }
    for (;;) {
        struct msghdr mh = { .msg_iov = iov, .msg_iovlen = iovcnt };
        ssize_t r;

        while (iovcnt && !iov[0].iov_len && !nfds) {
            memmove(iov, iov + 1, --iovcnt * sizeof(iov[0]));
            mh.msg_iovlen = iovcnt;
        }
        if (!iovcnt) {
            break;
        }
        if (nfds) {
            struct cmsghdr *cm;

            memset(&control, 0, sizeof(control));
            mh.msg_control = control.buf;
            mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
            cm = CMSG_FIRSTHDR(&mh);
            cm->cmsg_level = SOL_SOCKET;
            cm->cmsg_type = SCM_RIGHTS;
            cm->cmsg_len = CMSG_LEN(nfds * sizeof(int));
            memcpy(CMSG_DATA(cm), fds, nfds * sizeof(int));
        }
        r = sendmsg(s->conn_fd, &mh, MSG_NOSIGNAL);
        if (r < 0) {
            GPollFD pfd = { .fd = s->conn_fd, .events = G_IO_OUT };

            if (errno == EINTR) {
                continue;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                ret = -errno;
                goto out;
            }
            if (g_poll(&pfd, 1, VU_MSG_TIMEOUT_MS) == 0) {
                ret = -ETIMEDOUT;
                goto out;
            }
            continue;
        }
        nfds = 0;
        for (i = 0; i < iovcnt && r > 0; i++) {
            size_t n = MIN((size_t)r, iov[i].iov_len);

            iov[i].iov_base = (uint8_t *)iov[i].iov_base + n;
            iov[i].iov_len -= n;
            r -= n;
        }
    }
out:
    g_mutex_unlock(&s->send_lock);
    return ret;
}

static void vu_send_bytes(VUTestServer *s, const void *buf, size_t len)
{
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };

    if (len && vu_sendv(s, &iov, 1, NULL, 0)) {
        s->conn_broken = true;
    }
}

/* Reply to @req: with @r's payload and fd, or an error reply */
static void vu_reply(VUTestServer *s, const VUMsg *req, int err, VUReply *r)
{
    VFIOUserHdr hdr = {
        .id = req->hdr.id,
        .command = req->hdr.command,
        .size = sizeof(hdr) + (err ? 0 : r->payload->len),
        .flags = VFIO_USER_REPLY | (err ? VFIO_USER_ERROR : 0),
        .error_reply = -err,
    };
    struct iovec iov[2] = {
        { .iov_base = &hdr, .iov_len = sizeof(hdr) },
        { .iov_base = r->payload->data, .iov_len = err ? 0 : r->payload->len },
    };
    bool with_fd = !err && r->fd >= 0;

    if (req->hdr.flags & VFIO_USER_NO_REPLY) {
        return;
    }
    if (err) {
        g_mutex_lock(&s->lock);
        s->stats.error_replies++;
        g_mutex_unlock(&s->lock);
    }
    if (vu_sendv(s, iov, 2, &r->fd, with_fd ? 1 : 0)) {
        s->conn_broken = true;
    }
}

/* Interrupts; all of these are called with the lock held */

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
static void vu_irq_recheck(VUTestServer *s)
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
static void vu_irq_raise_mode(VUTestServer *s, uint32_t vector)
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

static void vu_intx_lower(VUTestServer *s)
{
    s->intx_asserted = false;
    s->irqs[VFIO_PCI_INTX_IRQ_INDEX].v[0].pending = false;
}

/* The client signalled the INTx unmask eventfd (a KVM resample fd) */
static void vu_intx_unmask(VUTestServer *s)
{
    g_mutex_lock(&s->lock);
    s->irqs[VFIO_PCI_INTX_IRQ_INDEX].v[0].masked = false;
    vu_irq_recheck(s);
    g_mutex_unlock(&s->lock);
}

static void vu_irq_disable(VUTestServer *s, unsigned index)
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

/* Device model; called with the lock held */

static void vu_config_init(VUTestServer *s)
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

static void vu_msix_table_init(VUTestServer *s)
{
    unsigned i;

    memset(s->msix_table, 0, sizeof(s->msix_table));
    for (i = 0; i < VU_TEST_MSIX_MAX_VECTORS; i++) {
        stl_le_p(s->msix_table + i * PCI_MSIX_ENTRY_SIZE +
                 PCI_MSIX_ENTRY_VECTOR_CTRL, PCI_MSIX_ENTRY_CTRL_MASKBIT);
    }
}

/* DEVICE_RESET: registers and interrupt state; the buffer and BARs stay */
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

/* DMA */

static VUMapping *vu_find_mapping(VUTestServer *s, uint64_t iova)
{
    unsigned i;

    for (i = 0; i < s->mappings->len; i++) {
        VUMapping *m = &g_array_index(s->mappings, VUMapping, i);

        if (iova >= m->iova && iova - m->iova < m->size) {
            return m;
        }
    }
    return NULL;
}

/* The lowest mapping start in (iova, iova + len), or 0 if none */
static uint64_t vu_next_mapping(VUTestServer *s, uint64_t iova, uint64_t len)
{
    uint64_t next = 0;
    unsigned i;

    for (i = 0; i < s->mappings->len; i++) {
        VUMapping *m = &g_array_index(s->mappings, VUMapping, i);

        if (m->iova > iova && m->iova - iova < len &&
            (!next || m->iova < next)) {
            next = m->iova;
        }
    }
    return next;
}

static void vu_unmap(VUMapping *m)
{
    if (m->mmap_base) {
        munmap(m->mmap_base, m->mmap_len);
    }
    vu_close_fd(&m->fd);
}

static void vu_record_dma_error(VUTestServer *s, uint16_t cmd, uint64_t addr,
                                uint64_t count, int err, bool error_reply)
{
    VUTestDMAErrorRecord rec = {
        .command = cmd, .address = addr, .count = count,
        .err = -err, .error_reply = error_reply,
    };

    g_mutex_lock(&s->lock);
    vu_log(s, s->dma_errors, &rec);
    g_mutex_unlock(&s->lock);
}

/* Check the reply to one of our DMA requests; returns 0 or -errno */
static int vu_dma_check_reply(VUTestServer *s, const VUTestDMARequest *req,
                              VUMsg *msg, VUTestDMAResult *res)
{
    uint8_t *p = msg->payload;
    size_t len = msg->payload_size;
    bool ok;
    int e;

    res->replied = true;
    res->hdr = msg->hdr;
    if (msg->hdr.flags & VFIO_USER_ERROR) {
        res->error_reply = true;
        g_mutex_lock(&s->lock);
        s->stats.dma_error_replies++;
        g_mutex_unlock(&s->lock);
        e = msg->hdr.error_reply;
        return e > 0 ? -e : -EIO;
    }
    if (len >= 8) {
        res->address = ldq_le_p(p);
    }
    if (len >= 16) {
        res->count = ldq_le_p(p + 8);
    } else if (len >= 12) {
        res->count = ldl_le_p(p + 8);
    }
    if (req->write) {
        /* 12 bytes: the 32-bit count of the spec's DMA_WRITE reply table */
        ok = (len == 16 || len == 12);
    } else {
        ok = len >= 16 && len - 16 == req->count;
        if (len >= 16 && !req->read_into) {
            res->data = g_byte_array_new();
            g_byte_array_append(res->data, p + 16, len - 16);
        }
    }
    ok = ok && !msg->bad && res->address == req->address &&
         res->count == req->count;
    if (ok && !req->write && req->read_into) {
        memcpy(req->read_into, p + 16, len - 16);
    }
    g_mutex_lock(&s->lock);
    if (!ok) {
        s->stats.dma_bad_replies++;
    } else if (req->write) {
        s->stats.dma_bytes_written += req->count;
    } else {
        s->stats.dma_bytes_read += req->count;
    }
    g_mutex_unlock(&s->lock);
    return ok ? 0 : -EPROTO;
}

/*
 * Send one DMA request and wait for its reply (server thread only).
 * Requests from the client meanwhile are queued, replies to anything
 * else are dropped.
 */
static int vu_dma_msg(VUTestServer *s, const VUTestDMARequest *req,
                      VUTestDMAResult *res)
{
    uint16_t cmd = req->write ? VFIO_USER_DMA_WRITE : VFIO_USER_DMA_READ;
    g_autofree uint8_t *zeroes = NULL;
    VFIOUserDMARW rw = { .address = req->address, .count = req->count };
    VFIOUserHdr hdr = {
        .id = s->next_id++,
        .command = cmd,
        .flags = VFIO_USER_REQUEST,
    };
    struct iovec iov[3] = {
        { .iov_base = &hdr, .iov_len = sizeof(hdr) },
        { .iov_base = &rw, .iov_len = sizeof(rw) },
        { .iov_base = (void *)req->data, .iov_len = req->data_len },
    };
    unsigned timeout = req->timeout_ms ? req->timeout_ms
                                       : s->cfg.dma_timeout_ms;
    int64_t deadline;
    int err;

    memset(res, 0, sizeof(*res));
    if (req->data_len > UINT32_MAX - sizeof(hdr) - sizeof(rw)) {
        err = -EINVAL;
        goto fail;
    }
    hdr.size = sizeof(hdr) + sizeof(rw) + req->data_len;
    if (!req->data && req->data_len) {
        zeroes = g_malloc0(req->data_len);
        iov[2].iov_base = zeroes;
    }
    g_mutex_lock(&s->lock);
    if (req->write) {
        s->stats.dma_writes++;
    } else {
        s->stats.dma_reads++;
    }
    g_mutex_unlock(&s->lock);
    if (vu_sendv(s, iov, 3, NULL, 0)) {
        s->conn_broken = true;
        err = -ENOTCONN;
        goto fail;
    }
    deadline = g_get_monotonic_time() + timeout * 1000LL;
    for (;;) {
        VUMsg *msg = NULL;
        int r = vu_recv_msg(s, &msg, deadline);

        if (r < 0) {
            err = -ENOTCONN;
            goto fail;
        }
        if (r == 0) {
            if (g_get_monotonic_time() >= deadline) {
                g_mutex_lock(&s->lock);
                s->stats.dma_timeouts++;
                g_mutex_unlock(&s->lock);
                err = -ETIMEDOUT;
                goto fail;
            }
            continue;
        }
        if ((msg->hdr.flags & VFIO_USER_TYPE) != VFIO_USER_REPLY) {
            g_queue_push_tail(&s->pending, msg);
            continue;
        }
        if (msg->hdr.id != hdr.id || msg->hdr.command != cmd) {
            g_mutex_lock(&s->lock);
            s->stats.stale_replies++;
            g_mutex_unlock(&s->lock);
            vu_msg_free(msg);
            continue;
        }
        err = vu_dma_check_reply(s, req, msg, res);
        vu_msg_free(msg);
        if (!err) {
            return 0;
        }
        break;
    }
fail:
    res->err = -err;
    vu_record_dma_error(s, cmd, req->address, req->count, err,
                        res->error_reply);
    return err;
}

/* Move @len bytes between IOVA @iova and @buf, as the device's engine */
static int vu_dma_rw(VUTestServer *s, uint64_t iova, uint8_t *buf,
                     uint64_t len, bool to_guest)
{
    uint16_t cmd = to_guest ? VFIO_USER_DMA_WRITE : VFIO_USER_DMA_READ;

    while (len) {
        VUTestDMARequest req = { .write = to_guest, .address = iova };
        VUTestDMAResult res;
        uint64_t chunk, next;
        VUMapping *m;
        int err;

        g_mutex_lock(&s->lock);
        m = vu_find_mapping(s, iova);
        if (m && m->host) {
            uint32_t need = to_guest ? VFIO_USER_F_DMA_REGION_WRITE
                                     : VFIO_USER_F_DMA_REGION_READ;

            chunk = MIN(len, m->size - (iova - m->iova));
            if (!(m->flags & need)) {
                g_mutex_unlock(&s->lock);
                vu_record_dma_error(s, cmd, iova, chunk, -EPERM, false);
                return -EPERM;
            }
            if (to_guest) {
                memcpy(m->host + (iova - m->iova), buf, chunk);
            } else {
                memcpy(buf, m->host + (iova - m->iova), chunk);
            }
            s->stats.dma_bytes_mmap += chunk;
            g_mutex_unlock(&s->lock);
        } else {
            /*
             * No fd for this range, or no mapping at all: ask the client,
             * which is the one to refuse what it did not map.
             */
            chunk = MIN(len, s->client_max_xfer);
            if (m) {
                chunk = MIN(chunk, m->size - (iova - m->iova));
            } else {
                next = vu_next_mapping(s, iova, chunk);
                chunk = next ? next - iova : chunk;
            }
            g_mutex_unlock(&s->lock);
            req.count = chunk;
            if (to_guest) {
                req.data = buf;
                req.data_len = chunk;
            }
            err = vu_dma_msg(s, &req, &res);
            if (!err && !to_guest) {
                memcpy(buf, res.data->data, chunk);
            }
            if (res.data) {
                g_byte_array_unref(res.data);
            }
            if (err) {
                return err;
            }
        }
        iova += chunk;
        buf += chunk;
        len -= chunk;
    }
    return 0;
}

/* Run the command written to DMA_CMD, then report it in DMA_STATUS */
static void vu_dma_run(VUTestServer *s)
{
    g_autofree uint8_t *tmp = NULL;
    uint64_t src, dst, len, off, iova;
    uint32_t cmd;
    bool to_guest;
    int err = 0;

    g_mutex_lock(&s->lock);
    src = s->dma_src;
    dst = s->dma_dst;
    len = s->dma_len;
    cmd = s->dma_cmd;
    g_mutex_unlock(&s->lock);

    to_guest = cmd & VU_TEST_DMA_CMD_TO_GUEST;
    off = to_guest ? src : dst;
    iova = to_guest ? dst : src;
    if (len > VU_TEST_BUF_SIZE || off > VU_TEST_BUF_SIZE - len) {
        err = -EINVAL;
    } else if (len) {
        tmp = g_malloc(len);
        if (to_guest) {
            g_mutex_lock(&s->lock);
            memcpy(tmp, s->buf + off, len);
            g_mutex_unlock(&s->lock);
        }
        err = vu_dma_rw(s, iova, tmp, len, to_guest);
        if (!err && !to_guest) {
            g_mutex_lock(&s->lock);
            memcpy(s->buf + off, tmp, len);
            g_mutex_unlock(&s->lock);
        }
    }

    g_mutex_lock(&s->lock);
    s->dma_status = VU_TEST_DMA_STATUS_DONE |
                    (err ? VU_TEST_DMA_STATUS_ERROR : 0);
    s->dma_errno = -err;
    s->dma_count++;
    s->dma_cmd &= ~VU_TEST_DMA_CMD_START;
    if (cmd & VU_TEST_DMA_CMD_IRQ) {
        vu_irq_raise_mode(s, 0);
    }
    g_mutex_unlock(&s->lock);
}

/* Request handlers: return 0 and fill @r, or return -errno */

/* The fixed part of a payload, zero-padded if the message is short */
static void vu_get_payload(VUMsg *msg, void *dst, size_t size)
{
    memset(dst, 0, size);
    if (msg->payload_size) {
        memcpy(dst, msg->payload, MIN(msg->payload_size, size));
    }
}

static int vu_handle_version(VUTestServer *s, VUMsg *msg, VUReply *r)
{
    VUTestClientInfo ci = {
        .max_msg_fds = VFIO_USER_DEF_MAX_FDS,
        .max_data_xfer_size = VFIO_USER_DEF_MAX_XFER,
        .pgsizes = VFIO_USER_DEF_PGSIZE,
        .max_dma_maps = VFIO_USER_DEF_MAX_DMA_MAPS,
    };
    g_autoptr(GString) json = g_string_new("{\"" VFIO_USER_CAP "\":{");
    VFIOUserVersion v;
    const char *sep = "";

    if (s->negotiated || msg->payload_size < sizeof(v)) {
        return -EINVAL;
    }
    memcpy(&v, msg->payload, sizeof(v));
    if (v.major != VFIO_USER_MAJOR_VER) {
        /* The spec has the server close the connection */
        r->disconnect = true;
        return -ENOTSUP;
    }
    if (msg->payload_size > sizeof(v)) {
        const char *data = (const char *)msg->payload + sizeof(v);
        const char *nul = memchr(data, 0, msg->payload_size - sizeof(v));

        if (!nul) {
            return -EINVAL;
        }
        if (nul > data && !vu_parse_caps(data, nul - data, &ci)) {
            return -EINVAL;
        }
        ci.json = g_strndup(data, nul - data);
    }
    ci.negotiated = true;
    ci.major = v.major;
    ci.minor = v.minor;

    s->negotiated = true;
    s->client_max_xfer = ci.max_data_xfer_size;
    s->client_max_fds = ci.max_msg_fds;
    g_mutex_lock(&s->lock);
    g_free(s->client.json);
    s->client = ci;
    g_mutex_unlock(&s->lock);

    v.minor = MIN(v.minor, VFIO_USER_MINOR_VER);
    g_byte_array_append(r->payload, (uint8_t *)&v, sizeof(v));
    if (s->cfg.max_msg_fds) {
        g_string_append_printf(json, "%s\"%s\":%u", sep,
                               VFIO_USER_CAP_MAX_FDS, s->cfg.max_msg_fds);
        sep = ",";
    }
    if (s->cfg.max_data_xfer_size) {
        g_string_append_printf(json, "%s\"%s\":%" PRIu64, sep,
                               VFIO_USER_CAP_MAX_XFER,
                               s->cfg.max_data_xfer_size);
        sep = ",";
    }
    if (s->cfg.pgsizes) {
        g_string_append_printf(json, "%s\"%s\":%" PRIu64, sep,
                               VFIO_USER_CAP_PGSIZES, s->cfg.pgsizes);
        sep = ",";
    }
    if (s->cfg.max_dma_maps) {
        g_string_append_printf(json, "%s\"%s\":%u", sep,
                               VFIO_USER_CAP_MAX_DMA_MAPS,
                               s->cfg.max_dma_maps);
    }
    g_string_append(json, "}}");
    g_byte_array_append(r->payload, (uint8_t *)json->str, json->len + 1);
    return 0;
}

static int vu_do_dma_map(VUTestServer *s, VUMsg *msg, VFIOUserDMAMap *dm)
{
    uint32_t max_maps = s->cfg.max_dma_maps ? s->cfg.max_dma_maps
                                            : VFIO_USER_DEF_MAX_DMA_MAPS;
    uint64_t pgmask = vu_pgsize(s) - 1;
    uint64_t host_pgmask = qemu_real_host_page_size() - 1;
    VUMapping m = { .fd = -1 };
    unsigned i;

    if (msg->payload_size < sizeof(*dm) || dm->argsz < sizeof(*dm) ||
        (dm->flags & ~(VFIO_USER_F_DMA_REGION_READ |
                       VFIO_USER_F_DMA_REGION_WRITE)) ||
        !dm->size || dm->address + dm->size - 1 < dm->address ||
        ((dm->address | dm->size) & pgmask) || msg->nfds > 1) {
        return -EINVAL;
    }
    for (i = 0; i < s->mappings->len; i++) {
        VUMapping *o = &g_array_index(s->mappings, VUMapping, i);

        if (dm->address <= o->iova + o->size - 1 &&
            o->iova <= dm->address + dm->size - 1) {
            return -EEXIST;
        }
    }
    if (s->mappings->len >= max_maps) {
        return -ENOSPC;
    }
    m.iova = dm->address;
    m.size = dm->size;
    m.offset = dm->offset;
    m.flags = dm->flags;
    if (msg->nfds && dm->flags) {
        uint64_t delta = dm->offset & host_pgmask;
        int prot = 0;
        struct stat st;

        if (fstat(msg->fds[0], &st) < 0) {
            return -errno;
        }
        /* Beyond the end of a file, our memcpy would get SIGBUS */
        if (S_ISREG(st.st_mode) &&
            (dm->offset + dm->size < dm->offset ||
             dm->offset + dm->size > (uint64_t)st.st_size)) {
            return -EINVAL;
        }
        if (dm->size > SIZE_MAX - delta) {
            return -ENOMEM;
        }
        prot |= (dm->flags & VFIO_USER_F_DMA_REGION_READ) ? PROT_READ : 0;
        prot |= (dm->flags & VFIO_USER_F_DMA_REGION_WRITE) ? PROT_WRITE : 0;
        m.mmap_len = dm->size + delta;
        m.mmap_base = mmap(NULL, m.mmap_len, prot, MAP_SHARED, msg->fds[0],
                           dm->offset - delta);
        if (m.mmap_base == MAP_FAILED) {
            return -errno;
        }
        m.host = (uint8_t *)m.mmap_base + delta;
    }
    if (msg->nfds) {
        m.fd = msg->fds[0];
        msg->fds[0] = -1;
    }
    g_array_append_val(s->mappings, m);
    return 0;
}

static int vu_handle_dma_map(VUTestServer *s, VUMsg *msg)
{
    VFIOUserDMAMap dm;
    VUTestDMAMapRecord rec;
    int err;

    vu_get_payload(msg, &dm, sizeof(dm));
    g_mutex_lock(&s->lock);
    err = vu_do_dma_map(s, msg, &dm);
    rec = (VUTestDMAMapRecord) {
        .iova = dm.address, .size = dm.size, .offset = dm.offset,
        .flags = dm.flags, .nfds = msg->nfds, .err = -err,
    };
    vu_log(s, s->dma_maps, &rec);
    g_mutex_unlock(&s->lock);
    return err;
}

static int vu_do_dma_unmap(VUTestServer *s, VUMsg *msg, VFIOUserDMAUnmap *du)
{
    unsigned i;

    if (msg->payload_size < sizeof(*du) || du->argsz < sizeof(*du) ||
        (du->flags & ~(VFIO_USER_DMA_UNMAP_GET_DIRTY_BITMAP |
                       VFIO_USER_DMA_UNMAP_ALL))) {
        return -EINVAL;
    }
    if (du->flags & VFIO_USER_DMA_UNMAP_GET_DIRTY_BITMAP) {
        /* No dirty page tracking here */
        return (du->flags & VFIO_USER_DMA_UNMAP_ALL) ||
               msg->payload_size < sizeof(*du) + sizeof(VFIOUserBitmap) ?
               -EINVAL : -ENOTSUP;
    }
    if (du->flags & VFIO_USER_DMA_UNMAP_ALL) {
        if (du->address || du->size) {
            return -EINVAL;
        }
        for (i = 0; i < s->mappings->len; i++) {
            vu_unmap(&g_array_index(s->mappings, VUMapping, i));
        }
        g_array_set_size(s->mappings, 0);
        return 0;
    }
    for (i = 0; i < s->mappings->len; i++) {
        VUMapping *m = &g_array_index(s->mappings, VUMapping, i);

        if (m->iova == du->address && m->size == du->size) {
            vu_unmap(m);
            g_array_remove_index(s->mappings, i);
            return 0;
        }
    }
    return -ENOENT;
}

static int vu_handle_dma_unmap(VUTestServer *s, VUMsg *msg, VUReply *r)
{
    VFIOUserDMAUnmap du;
    VUTestDMAUnmapRecord rec;
    int err;

    vu_get_payload(msg, &du, sizeof(du));
    g_mutex_lock(&s->lock);
    err = vu_do_dma_unmap(s, msg, &du);
    rec = (VUTestDMAUnmapRecord) {
        .iova = du.address, .size = du.size, .flags = du.flags, .err = -err,
    };
    vu_log(s, s->dma_unmaps, &rec);
    g_mutex_unlock(&s->lock);
    if (!err) {
        /* "The server responds with the original DMA entry" */
        g_byte_array_append(r->payload, msg->payload, sizeof(du));
    }
    return err;
}

static int vu_handle_get_info(VUMsg *msg, VUReply *r)
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

static int vu_handle_get_region_info(VUTestServer *s, VUMsg *msg,
                                     VUReply *r)
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

static int vu_handle_get_irq_info(VUTestServer *s, VUMsg *msg, VUReply *r)
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

static int vu_handle_set_irqs(VUTestServer *s, VUMsg *msg)
{
    VFIOUserIRQSet is;
    VUTestSetIrqsRecord rec;
    int err;

    vu_get_payload(msg, &is, sizeof(is));
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

static int vu_handle_region_read(VUTestServer *s, VUMsg *msg, VUReply *r)
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

static int vu_handle_region_write(VUTestServer *s, VUMsg *msg, VUReply *r)
{
    VFIOUserRegionRW rw;
    VUTestRegionWriteRecord rec;
    bool kick = false;
    int err;

    vu_get_payload(msg, &rw, sizeof(rw));
    if (msg->payload_size < sizeof(rw) ||
        msg->payload_size - sizeof(rw) != rw.count) {
        err = -EINVAL;
    } else {
        err = vu_check_access(s, &rw);
    }
    g_mutex_lock(&s->lock);
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

static int vu_handle_reset(VUTestServer *s)
{
    g_mutex_lock(&s->lock);
    vu_device_reset(s);
    g_mutex_unlock(&s->lock);
    return 0;
}

static int vu_dispatch(VUTestServer *s, VUMsg *msg, VUReply *r)
{
    unsigned cmd = msg->hdr.command;

    if (msg->nfds && cmd != VFIO_USER_DMA_MAP &&
        cmd != VFIO_USER_DEVICE_SET_IRQS) {
        return -EINVAL;
    }
    switch (cmd) {
    case VFIO_USER_VERSION:
        return vu_handle_version(s, msg, r);
    case VFIO_USER_DMA_MAP:
        return vu_handle_dma_map(s, msg);
    case VFIO_USER_DMA_UNMAP:
        return vu_handle_dma_unmap(s, msg, r);
    case VFIO_USER_DEVICE_GET_INFO:
        return vu_handle_get_info(msg, r);
    case VFIO_USER_DEVICE_GET_REGION_INFO:
        return vu_handle_get_region_info(s, msg, r);
    case VFIO_USER_DEVICE_GET_IRQ_INFO:
        return vu_handle_get_irq_info(s, msg, r);
    case VFIO_USER_DEVICE_SET_IRQS:
        return vu_handle_set_irqs(s, msg);
    case VFIO_USER_REGION_READ:
        return vu_handle_region_read(s, msg, r);
    case VFIO_USER_REGION_WRITE:
        return vu_handle_region_write(s, msg, r);
    case VFIO_USER_DEVICE_RESET:
        return vu_handle_reset(s);
    case VFIO_USER_DEVICE_GET_REGION_IO_FDS:
    case VFIO_USER_DIRTY_PAGES:
        return -ENOTSUP;
    case VFIO_USER_DMA_READ:
    case VFIO_USER_DMA_WRITE:
        return -EINVAL;              /* server to client only */
    default:
        return -ENOSYS;
    }
}

static void vu_handle_msg(VUTestServer *s, VUMsg *msg)
{
    unsigned type = msg->hdr.flags & VFIO_USER_TYPE;
    unsigned cmd = msg->hdr.command;
    VUReply r = { .fd = -1 };
    int err;

    g_mutex_lock(&s->lock);
    if (type == VFIO_USER_REPLY) {
        /* Ours are consumed while we wait for them */
        s->stats.stale_replies++;
        g_mutex_unlock(&s->lock);
        return;
    }
    s->cmd_count[cmd < VFIO_USER_MAX ? cmd : 0]++;
    s->cmd_fds[cmd < VFIO_USER_MAX ? cmd : 0] += msg->nfds;
    g_mutex_unlock(&s->lock);

    if (s->cfg.hook) {
        g_autoptr(GByteArray) raw = g_byte_array_new();
        VUTestMsg tm = {
            .hdr = msg->hdr,
            .payload = msg->payload,
            .payload_size = msg->payload_size,
            .fds = msg->fds,
            .nfds = msg->nfds,
        };
        VUTestHookAction act = s->cfg.hook(s, &tm, raw, s->cfg.hook_opaque);

        if (act != VU_TEST_HOOK_CONTINUE) {
            vu_send_bytes(s, raw->data, raw->len);
            if (act == VU_TEST_HOOK_DISCONNECT) {
                s->conn_broken = true;
            }
            return;
        }
    }

    r.payload = g_byte_array_new();
    if (type != VFIO_USER_REQUEST || msg->bad || msg->fds_lost ||
        msg->nfds > vu_max_rx_fds(s)) {
        g_mutex_lock(&s->lock);
        s->stats.protocol_errors++;
        g_mutex_unlock(&s->lock);
        err = msg->bad ? msg->bad : -EINVAL;
    } else if (!s->negotiated && cmd != VFIO_USER_VERSION) {
        err = -EINVAL;
    } else {
        err = vu_dispatch(s, msg, &r);
    }
    vu_reply(s, msg, err, &r);
    if (r.disconnect) {
        s->conn_broken = true;
    }
    g_byte_array_unref(r.payload);
}

/* The server thread */

static void vu_run_jobs(VUTestServer *s)
{
    VUJob *job;

    for (;;) {
        g_mutex_lock(&s->lock);
        job = g_queue_pop_head(&s->jobs);
        g_mutex_unlock(&s->lock);
        if (!job) {
            return;
        }
        if (s->conn_fd < 0 || s->conn_broken) {
            memset(job->res, 0, sizeof(*job->res));
            job->ret = -ENOTCONN;
            job->res->err = ENOTCONN;
        } else {
            job->ret = vu_dma_msg(s, job->req, job->res);
        }
        g_mutex_lock(&s->lock);
        job->done = true;
        g_cond_broadcast(&s->cond);
        g_mutex_unlock(&s->lock);
    }
}

static void vu_accept(VUTestServer *s, bool may_accept)
{
    GPollFD pfd[2] = {
        { .fd = s->wake_fd, .events = G_IO_IN },
        { .fd = s->listen_fd, .events = G_IO_IN },
    };
    eventfd_t v;
    int fd;

    if (g_poll(pfd, may_accept ? 2 : 1, -1) <= 0) {
        return;
    }
    if (pfd[0].revents) {
        eventfd_read(s->wake_fd, &v);
    }
    if (!may_accept || !pfd[1].revents) {
        return;
    }
    fd = accept(s->listen_fd, NULL, NULL);
    if (fd < 0) {
        return;
    }
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0 ||
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
        close(fd);
        return;
    }
    vu_rx_reset(s);
    g_mutex_lock(&s->send_lock);
    s->conn_fd = fd;
    g_mutex_unlock(&s->send_lock);
    s->conn_broken = false;
    s->negotiated = false;
    s->client_max_xfer = VFIO_USER_DEF_MAX_XFER;
    s->client_max_fds = VFIO_USER_DEF_MAX_FDS;
    g_mutex_lock(&s->lock);
    s->connected = true;
    s->stats.connections++;
    g_cond_broadcast(&s->cond);
    g_mutex_unlock(&s->lock);
}

/* As the spec asks: drop the client's mappings and fds, keep the rest */
static void vu_close_conn(VUTestServer *s)
{
    VUMsg *msg;
    unsigned i;

    g_mutex_lock(&s->send_lock);
    vu_close_fd(&s->conn_fd);
    g_mutex_unlock(&s->send_lock);
    vu_rx_reset(s);
    while ((msg = g_queue_pop_head(&s->pending))) {
        vu_msg_free(msg);
    }
    s->negotiated = false;
    s->conn_broken = false;

    g_mutex_lock(&s->lock);
    for (i = 0; i < s->mappings->len; i++) {
        vu_unmap(&g_array_index(s->mappings, VUMapping, i));
    }
    g_array_set_size(s->mappings, 0);
    for (i = 0; i < VFIO_PCI_NUM_IRQS; i++) {
        vu_irq_disable(s, i);
    }
    s->connected = false;
    s->stats.disconnects++;
    g_cond_broadcast(&s->cond);
    g_mutex_unlock(&s->lock);
}

static gpointer vu_server_thread(gpointer opaque)
{
    VUTestServer *s = opaque;
    bool may_accept = true;

    g_atomic_pointer_set(&s->self, g_thread_self());
    while (!vu_stopping(s)) {
        VUMsg *msg = NULL;

        vu_run_jobs(s);
        if (s->conn_fd < 0) {
            vu_accept(s, may_accept);
            continue;
        }
        msg = g_queue_pop_head(&s->pending);
        if (msg || vu_recv_msg(s, &msg, -1) > 0) {
            vu_handle_msg(s, msg);
            vu_msg_free(msg);
        }
        if (s->conn_broken) {
            vu_close_conn(s);
            may_accept = s->cfg.reaccept;
        }
    }
    if (s->conn_fd >= 0) {
        vu_close_conn(s);
    }
    vu_run_jobs(s);
    return NULL;
}

/* Public API */

void vu_test_server_config_init(VUTestServerConfig *cfg)
{
    *cfg = (VUTestServerConfig) {
        .vendor_id = 0x1234,
        .device_id = 0x5655,
        .msix_vectors = 4,
        .bar1_fd = true,
        .max_msg_fds = 8,
        .max_data_xfer_size = VFIO_USER_DEF_MAX_XFER,
        .pgsizes = VFIO_USER_DEF_PGSIZE,
        .max_dma_maps = VFIO_USER_DEF_MAX_DMA_MAPS,
    };
}

static void vu_irqs_init(VUTestServer *s)
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

VUTestServer *vu_test_server_new(const char *socket_path,
                                 const VUTestServerConfig *cfg)
{
    VUTestServerConfig def;
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    VUTestServer *s;
    void *p;

    if (!cfg) {
        vu_test_server_config_init(&def);
        cfg = &def;
    }
    if (cfg->msix_vectors > VU_TEST_MSIX_MAX_VECTORS ||
        strlen(socket_path) >= sizeof(addr.sun_path)) {
        return NULL;
    }
    s = g_new0(VUTestServer, 1);
    s->cfg = *cfg;
    if (!s->cfg.dma_timeout_ms) {
        s->cfg.dma_timeout_ms = VU_DEF_DMA_TIMEOUT_MS;
    }
    s->path = g_strdup(socket_path);
    s->conn_fd = s->bar1_fd = -1;
    s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    g_mutex_init(&s->lock);
    g_mutex_init(&s->send_lock);
    g_cond_init(&s->cond);
    g_queue_init(&s->pending);
    g_queue_init(&s->jobs);
    s->mappings = g_array_new(FALSE, TRUE, sizeof(VUMapping));
    s->dma_maps = g_array_new(FALSE, TRUE, sizeof(VUTestDMAMapRecord));
    s->dma_unmaps = g_array_new(FALSE, TRUE, sizeof(VUTestDMAUnmapRecord));
    s->set_irqs = g_array_new(FALSE, TRUE, sizeof(VUTestSetIrqsRecord));
    s->region_writes = g_array_new(FALSE, TRUE,
                                   sizeof(VUTestRegionWriteRecord));
    s->dma_errors = g_array_new(FALSE, TRUE, sizeof(VUTestDMAErrorRecord));
    vu_irqs_init(s);
    vu_config_init(s);
    vu_msix_table_init(s);

    /* Without a memfd, BAR1 is plain memory and never offered for mmap */
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

    s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    memcpy(addr.sun_path, socket_path, strlen(socket_path) + 1);
    unlink(socket_path);
    if (s->wake_fd < 0 || !s->bar1 || s->listen_fd < 0 ||
        bind(s->listen_fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
        listen(s->listen_fd, 1) < 0) {
        vu_test_server_free(s);
        return NULL;
    }
    s->thread = g_thread_new("vu-test-server", vu_server_thread, s);
    return s;
}

void vu_test_server_free(VUTestServer *s)
{
    unsigned i;

    if (!s) {
        return;
    }
    if (s->thread) {
        g_atomic_int_set(&s->stopping, 1);
        vu_wake(s);
        g_thread_join(s->thread);
        unlink(s->path);
    }
    vu_close_fd(&s->listen_fd);
    vu_close_fd(&s->wake_fd);
    for (i = 0; i < s->mappings->len; i++) {
        vu_unmap(&g_array_index(s->mappings, VUMapping, i));
    }
    for (i = 0; i < VFIO_PCI_NUM_IRQS; i++) {
        vu_irq_disable(s, i);
        g_free(s->irqs[i].v);
    }
    if (s->bar1) {
        munmap(s->bar1, VU_TEST_BAR1_SIZE);
    }
    vu_close_fd(&s->bar1_fd);
    g_array_unref(s->mappings);
    g_array_unref(s->dma_maps);
    g_array_unref(s->dma_unmaps);
    g_array_unref(s->set_irqs);
    g_array_unref(s->region_writes);
    g_array_unref(s->dma_errors);
    g_free(s->client.json);
    g_free(s->path);
    g_mutex_clear(&s->lock);
    g_mutex_clear(&s->send_lock);
    g_cond_clear(&s->cond);
    g_free(s);
}

static bool vu_wait(VUTestServer *s, bool connected, unsigned timeout_ms)
{
    gint64 deadline = g_get_monotonic_time() + timeout_ms * 1000LL;
    bool ok;

    g_mutex_lock(&s->lock);
    while (!(connected ? s->connected
                       : !s->connected && s->stats.connections) &&
           g_cond_wait_until(&s->cond, &s->lock, deadline)) {
        continue;
    }
    ok = connected ? s->connected : !s->connected && s->stats.connections;
    g_mutex_unlock(&s->lock);
    return ok;
}

bool vu_test_server_wait_connected(VUTestServer *s, unsigned timeout_ms)
{
    return vu_wait(s, true, timeout_ms);
}

bool vu_test_server_wait_disconnected(VUTestServer *s, unsigned timeout_ms)
{
    return vu_wait(s, false, timeout_ms);
}

void vu_test_server_disconnect(VUTestServer *s)
{
    /* The server thread sees EOF and cleans up */
    g_mutex_lock(&s->send_lock);
    if (s->conn_fd >= 0) {
        shutdown(s->conn_fd, SHUT_RDWR);
    }
    g_mutex_unlock(&s->send_lock);
}

void vu_test_server_get_client_info(VUTestServer *s, VUTestClientInfo *info)
{
    g_mutex_lock(&s->lock);
    *info = s->client;
    info->json = g_strdup(s->client.json);
    g_mutex_unlock(&s->lock);
}

static GArray *vu_copy_log(VUTestServer *s, GArray *log)
{
    GArray *copy;

    g_mutex_lock(&s->lock);
    copy = g_array_sized_new(FALSE, TRUE, g_array_get_element_size(log),
                             log->len);
    g_array_append_vals(copy, log->data, log->len);
    g_mutex_unlock(&s->lock);
    return copy;
}

unsigned vu_test_server_cmd_count(VUTestServer *s, unsigned command)
{
    unsigned n;

    g_mutex_lock(&s->lock);
    n = command < VFIO_USER_MAX ? s->cmd_count[command] : 0;
    g_mutex_unlock(&s->lock);
    return n;
}

unsigned vu_test_server_cmd_fds(VUTestServer *s, unsigned command)
{
    unsigned n;

    g_mutex_lock(&s->lock);
    n = command < VFIO_USER_MAX ? s->cmd_fds[command] : 0;
    g_mutex_unlock(&s->lock);
    return n;
}

GArray *vu_test_server_dma_maps(VUTestServer *s)
{
    return vu_copy_log(s, s->dma_maps);
}

GArray *vu_test_server_dma_unmaps(VUTestServer *s)
{
    return vu_copy_log(s, s->dma_unmaps);
}

GArray *vu_test_server_set_irqs(VUTestServer *s)
{
    return vu_copy_log(s, s->set_irqs);
}

GArray *vu_test_server_region_writes(VUTestServer *s)
{
    return vu_copy_log(s, s->region_writes);
}

GArray *vu_test_server_dma_errors(VUTestServer *s)
{
    return vu_copy_log(s, s->dma_errors);
}

unsigned vu_test_server_num_mappings(VUTestServer *s)
{
    unsigned n;

    g_mutex_lock(&s->lock);
    n = s->mappings->len;
    g_mutex_unlock(&s->lock);
    return n;
}

void vu_test_server_get_stats(VUTestServer *s, VUTestServerStats *stats)
{
    g_mutex_lock(&s->lock);
    *stats = s->stats;
    g_mutex_unlock(&s->lock);
}

void vu_test_server_clear_log(VUTestServer *s)
{
    g_mutex_lock(&s->lock);
    memset(s->cmd_count, 0, sizeof(s->cmd_count));
    memset(s->cmd_fds, 0, sizeof(s->cmd_fds));
    g_array_set_size(s->dma_maps, 0);
    g_array_set_size(s->dma_unmaps, 0);
    g_array_set_size(s->set_irqs, 0);
    g_array_set_size(s->region_writes, 0);
    g_array_set_size(s->dma_errors, 0);
    memset(&s->stats, 0, sizeof(s->stats));
    s->stats.connections = s->connected;
    g_mutex_unlock(&s->lock);
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
    vu_mem_access(s, s->buf, VU_TEST_BUF_SIZE, offset, (void *)buf, len,
                  true);
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

int vu_test_server_dma(VUTestServer *s, const VUTestDMARequest *req,
                       VUTestDMAResult *res)
{
    VUTestDMAResult local;
    VUJob job = { .req = req, .res = res ? res : &local };

    memset(job.res, 0, sizeof(*job.res));
    if (g_atomic_pointer_get(&s->self) == (gpointer)g_thread_self()) {
        /* From a hook: we are the server thread */
        if (s->conn_fd < 0) {
            job.ret = -ENOTCONN;
            job.res->err = ENOTCONN;
        } else {
            job.ret = vu_dma_msg(s, req, job.res);
        }
    } else {
        g_mutex_lock(&s->lock);
        g_queue_push_tail(&s->jobs, &job);
        vu_wake(s);
        while (!job.done) {
            g_cond_wait(&s->cond, &s->lock);
        }
        g_mutex_unlock(&s->lock);
    }
    if (!res && local.data) {
        g_byte_array_unref(local.data);
    }
    return job.ret;
}

int vu_test_server_dma_read(VUTestServer *s, uint64_t address, void *buf,
                            uint64_t count)
{
    VUTestDMARequest req = {
        .address = address, .count = count, .read_into = buf,
    };
    VUTestDMAResult res;
    int err = vu_test_server_dma(s, &req, &res);

    if (res.data) {
        g_byte_array_unref(res.data);
    }
    return err;
}

int vu_test_server_dma_write(VUTestServer *s, uint64_t address,
                             const void *buf, uint64_t count)
{
    VUTestDMARequest req = {
        .write = true, .address = address, .count = count,
        .data = buf, .data_len = count,
    };

    return vu_test_server_dma(s, &req, NULL);
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

int vu_test_server_send_raw(VUTestServer *s, const void *buf, size_t len,
                            const int *fds, unsigned nfds)
{
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };

    return vu_sendv(s, &iov, 1, fds, nfds);
}

int vu_test_server_recv_raw(VUTestServer *s, void *buf, size_t len,
                            unsigned timeout_ms)
{
    int64_t deadline = g_get_monotonic_time() + timeout_ms * 1000LL;
    size_t have = s->rx_tail - s->rx_head;
    ssize_t r;

    g_assert(g_thread_self() == s->self);
    if (have) {
        r = MIN(have, len);
        memcpy(buf, s->rx_buf + s->rx_head, r);
        s->rx_head += r;
        s->rx_pos += r;
        return r;
    }
    for (;;) {
        r = recv(s->conn_fd, buf, len, MSG_DONTWAIT);
        if (r > 0) {
            s->rx_pos += r;
            return r;
        }
        if (r == 0) {
            return -ECONNRESET;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            return -errno;
        }
        if (errno != EINTR && vu_wait_input(s, deadline) <= 0) {
            return vu_stopping(s) ? -ESHUTDOWN : 0;
        }
    }
}
