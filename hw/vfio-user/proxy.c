/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vfio-user client: the connection to a server.
 *
 * Threads and locks
 * -----------------
 * Any thread may send a request (vCPU threads for BAR accesses, the main
 * loop for setup and DMA_MAP): vfio_user_request() queues a pending entry
 * under proxy->lock, sends the whole message holding the send token
 * (proxy->sending, under proxy->lock) and waits until the reply is in or
 * the timeout passes.  The send token is not a mutex: its wait is timed,
 * so that no sender queues for longer than its own deadline behind
 * another whose message the server reads slowly.
 *
 * Messages are read one whole message at a time by whichever thread holds
 * the read token (proxy->reading, under proxy->lock).  A thread that
 * waits for a reply takes the token itself when it is free and reads
 * until its reply is in: a BAR read then costs the server's round trip
 * and nothing more, with no hand-over between threads; when another
 * thread holds the token, it sleeps on proxy->cond until its reply is in
 * or the token is free.  The receive thread reads only while nobody
 * waits for a reply (proxy->waiting == 0): the server's own requests
 * between BAR accesses.  It does not even wake up for what a waiter
 * reads: it watches the socket through an epoll set, from which the
 * first waiter takes the socket out and the last one puts it back
 * (level-triggered: what is left unread wakes it then).  Before a waiter
 * sleeps it busy-polls the socket for a window that adapts to how soon
 * data comes (poll-window.c): being woken up costs more than the
 * rest of a BAR read.
 *
 * A reader reads through a receive buffer: one recvmsg() brings a
 * message's header together with whatever follows it that has arrived,
 * so a BAR read's reply (36 bytes) costs one system call, not two, and a
 * burst of the server's requests one for the lot.  Payloads of 64 KiB
 * and more go straight to where they belong (the waiter's buffer, guest
 * RAM) once what was read ahead is used up.  What a reader read ahead
 * stays for the next reader; a reader never hands the token over with a
 * whole message in the buffer (nothing would wake anybody for it), only
 * with the start of one whose rest is still to come through the socket.
 * Likewise its answers to the server's requests: small ones wait in a
 * send buffer while more requests are there to read, and go with one
 * sendmsg() before the reader waits for data or hands the token over.
 *
 * Whoever reads a reply looks up the pending entry by id, marks it busy
 * and reads the payload into the waiter's buffer; a reply nobody waits
 * for any more (late, unknown id, duplicate) is read to its end and
 * dropped, so the stream never desynchronises.  Requests
 * from the server (DMA_READ/WRITE) are serviced by the reader with the
 * handler the device installed, which is why a server that DMAs while a
 * vCPU waits for one of its replies does not stall: no lock the handler
 * needs is held, and no main-loop hop is involved.
 *
 * Every wait has a deadline per message, not per system call: the
 * socket is non-blocking, and a thread poll()s only when a read or write
 * would block, for what is left until the deadline (T is x-msg-timeout):
 * - a message we send, from the wait for the send token to its last
 *   byte: T from the start of the send;
 * - a message we read, from its first byte to its last: T; and, when
 *   the reader is a waiter, no later than that waiter's own deadline;
 * - a server's request and our reply to it (DMA_READ data) together:
 *   the request's deadline;
 * - a reply: T from the end of the send of its request.
 * A message not through by its deadline kills the connection (a partial
 * message cannot be taken back, nor skipped), whoever reads or writes
 * it; a waiter whose reply is stuck in another reader's hands past its
 * deadline kills it too; a reply that has not begun by then fails only
 * its request, with -ETIMEDOUT.  The kill shuts the socket down, which
 * wakes every poll() at once.  So no caller of vfio_user_request() waits
 * more than 2 T, and no server request keeps its reader (whose handler
 * the device's unplug may wait for) more than T.  When the connection
 * dies every pending request fails at once with -ECONNRESET (-ETIMEDOUT
 * for a deadline), and the device is told from a bottom half in the
 * main loop.
 */

#include "qemu/osdep.h"
#include <poll.h>
#include <sys/epoll.h>
#include "qapi/error.h"
#include "qemu/error-report.h"
#include "qemu/iov.h"
#include "qemu/main-loop.h"
#include "qemu/rcu.h"
#include "qemu/timer.h"
#include "qemu/units.h"
#include "io/channel-socket.h"
#include "hw/vfio-user/poll-window.h"
#include "hw/vfio-user/proxy.h"
#include "trace.h"

/*
 * Largest message we read: beyond it the stream is not worth reading.
 * Up to it, a request too big for us (a DMA_WRITE above our
 * max_data_xfer_size) is read to its end and refused with E2BIG.
 */
#define VFIO_USER_MAX_RECV_MSG  VFIO_USER_MAX_MSG

/*
 * One read brings as many messages as have come: a server that posts its
 * DMA_WRITEs, a page each, sends them back to back, and a system call per
 * page cost more than copying the page out of the buffer.
 */
#define VFIO_USER_RBUF_SIZE     (256 * KiB)
/* A payload this big, with nothing read ahead, goes straight into place */
#define VFIO_USER_DIRECT_MIN    (64 * KiB)

/*
 * Replies to the server's requests wait here while more requests are
 * there to read, and go with one sendmsg(): a server that asks for the
 * pages of a scatter-gather list together gets them back as one stream.
 * Bigger replies are not worth the copy.
 */
#define VFIO_USER_TBUF_SIZE     (256 * KiB)
#define VFIO_USER_TBUF_COPY_MAX (16 * KiB)

typedef struct VFIOUserPending {
    uint16_t id;
    uint16_t cmd;
    VFIOUserReply *reply;
    int error;          /* positive errno, valid once done */
    bool done;
    bool busy;          /* a reader is filling reply */
    QTAILQ_ENTRY(VFIOUserPending) next;
} VFIOUserPending;

/*
 * Who owns each field.  These are the invariants the narrative at the top
 * relies on; every field is in exactly one group.
 *
 * Locks: proxy->lock is a leaf (nothing else is taken while it is held,
 * and it is never held across socket I/O, a handler, or a wait other
 * than on its own conditions); the DMA table's lock (dma.c) is a leaf
 * too, and the two are never held together.
 */
struct VFIOUserProxy {
    /* Set by vfio_user_connect(), read-only after it, any thread */
    char *name;
    QIOChannelSocket *sioc;
    QIOChannel *ioc;
    int fd;
    int epfd;           /* the receive thread's watch on fd */
    uint32_t timeout_ms;
    /*
     * No request of ours may wait past it (now_ms(), INT64_MAX: none):
     * set by the main loop while no other thread sends, to bound a
     * sequence of requests as a whole (vfio_user_set_deadline())
     */
    int64_t deadline_cap;
    QemuThread recv_thread;
    bool recv_running;

    /*
     * Set before the first request other than VERSION (by
     * vfio_user_negotiate(); and poll.max_ns, x-poll-max-ns), by the
     * thread that realizes the device, read-only after it
     */
    VFIOUserPeerCaps caps;

    /* Under lock */
    QemuMutex lock;
    QemuCond cond;      /* a request done, the read token free, death */
    bool sending;       /* the send token: a thread is writing a message */
    unsigned send_waiters;      /* threads waiting for the send token */
    QemuCond send_cond; /* the send token free, death */
    bool reading;       /* the read token: a thread is reading a message */
    unsigned waiting;   /* threads waiting for a reply: they read */
    QTAILQ_HEAD(, VFIOUserPending) pending;     /* and each entry's state */
    uint16_t next_id;
    /* false -> true once, under lock; qatomic_read() without it */
    bool dead;
    char *death_reason; /* set with dead, freed at disconnect */
    VFIOUserRequestHandler handler;
    void *handler_opaque;
    bool handler_busy;  /* a reader is running the handler */
    QemuCond handler_idle;

    /*
     * The read token holder's (reading == true), without the lock: when
     * it must be done, the receive buffer (see proxy_fill()), fds read
     * but not yet claimed, the busy-poll window, and the reply buffer of
     * a pending entry it marked busy
     */
    int64_t read_limit;         /* its own deadline, INT64_MAX: none */
    int64_t rx_deadline;        /* the message being read must be in */
    uint8_t *rbuf;
    size_t rbuf_head;   /* next byte to hand out */
    size_t rbuf_tail;   /* end of what was read */
    uint64_t rx_pos;    /* stream offset of rbuf[rbuf_head] */
    int *rx_fds;        /* fds of a read, not yet claimed by a message */
    size_t rx_nfds;
    uint64_t rx_fds_at; /* stream offset of that read's last byte */
    VFIOUserPollWindow poll;
    uint8_t *tbuf;      /* replies not sent yet (VFIO_USER_TBUF_SIZE) */
    size_t tbuf_len;
    int64_t tbuf_deadline;      /* the first one's request's */

    /*
     * The send token holder's (sending == true): the write side of fd.
     * The main loop's: the death report, and who it goes to (set at
     * realize and exit, when no death_bh can run)
     */
    QEMUBH *death_bh;
    bool death_reported;                /* death_bh ran */
    bool report_death;                  /* log it (the default) */
    void (*death_notify)(void *opaque, const char *reason);
    void *death_opaque;
};

static int64_t now_ms(void)
{
    return g_get_monotonic_time() / 1000;
}

static void proxy_close_fds(int *fds, size_t nfds)
{
    for (size_t i = 0; i < nfds; i++) {
        close(fds[i]);
    }
}

/*
 * Mark the connection dead and fail every pending request at once (an
 * entry the receive thread is filling is finished by that thread).
 * Returns true for the first caller.
 */
static bool proxy_mark_dead(VFIOUserProxy *proxy, char *reason, int err)
{
    VFIOUserPending *p;
    bool first;

    qemu_mutex_lock(&proxy->lock);
    first = !proxy->dead;
    if (first) {
        qatomic_set(&proxy->dead, true);
        proxy->death_reason = reason;
        QTAILQ_FOREACH(p, &proxy->pending, next) {
            /* A reply already in stands: its waiter just has not woken. */
            if (!p->busy && !p->done) {
                p->error = err;
                p->done = true;
            }
        }
        qemu_cond_broadcast(&proxy->cond);
        qemu_cond_broadcast(&proxy->send_cond);
    } else {
        g_free(reason);
    }
    qemu_mutex_unlock(&proxy->lock);

    /* Wakes the receive thread, and any writer stuck on a full socket. */
    qio_channel_shutdown(proxy->ioc, QIO_CHANNEL_SHUTDOWN_BOTH, NULL);
    return first;
}

void vfio_user_kill(VFIOUserProxy *proxy, int err, const char *fmt, ...)
{
    va_list ap;
    char *reason;

    va_start(ap, fmt);
    reason = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    trace_vfio_user_connection_dead(proxy->name, reason);
    if (proxy_mark_dead(proxy, reason, err)) {
        qemu_bh_schedule(proxy->death_bh);
    }
}

static void proxy_report_death(VFIOUserProxy *proxy)
{
    proxy->death_reported = true;
    if (!proxy->report_death) {
        return;
    }
    error_report("vfio-user: %s: connection to the server lost: %s",
                 proxy->name, proxy->death_reason);
}

static void proxy_death_bh(void *opaque)
{
    VFIOUserProxy *proxy = opaque;

    proxy_report_death(proxy);
    if (proxy->death_notify) {
        proxy->death_notify(proxy->death_opaque, proxy->death_reason);
    }
}

/*
 * Wait until the socket is ready for @events or @deadline (now_ms())
 * passes; false then.  An error or a hang-up counts as ready: the I/O
 * that follows finds it.
 */
static bool proxy_wait_until(VFIOUserProxy *proxy, short events,
                             int64_t deadline)
{
    struct pollfd pfd = { .fd = proxy->fd, .events = events };

    for (;;) {
        int64_t left = deadline - now_ms();
        int n;

        if (left <= 0) {
            return false;
        }
        n = poll(&pfd, 1, MIN(left, INT_MAX));
        if (n > 0) {
            return true;
        }
        if (n < 0 && errno != EINTR) {
            return false;
        }
    }
}

/*
 * Write a whole message by @deadline, or kill the connection (a partial
 * message cannot be taken back).  The socket is non-blocking: a write
 * that makes some progress costs no poll(), and a server that drains
 * one skb at a time cannot stretch the message past its deadline.
 * Caller holds the send token.
 */
static int proxy_write(VFIOUserProxy *proxy, const struct iovec *iov_in,
                       unsigned int niov, const int *fds, size_t nfds,
                       int64_t deadline)
{
    struct iovec local[4];
    g_autofree struct iovec *copy = NULL;
    struct iovec *iov = local;
    size_t size = iov_size(iov_in, niov);

    if (niov > ARRAY_SIZE(local)) {
        iov = copy = g_new(struct iovec, niov);
    }
    memcpy(iov, iov_in, niov * sizeof(*iov));

    while (niov > 0) {
        Error *err = NULL;
        ssize_t n = qio_channel_writev_full(proxy->ioc, iov, niov,
                                            (int *)fds, nfds, 0, &err);

        if (n == QIO_CHANNEL_ERR_BLOCK) {
            if (!proxy_wait_until(proxy, POLLOUT, deadline)) {
                vfio_user_kill(proxy, ETIMEDOUT, "the server did not read "
                               "a message of %zu bytes within %u ms",
                               size, proxy->timeout_ms);
                return -ETIMEDOUT;
            }
            continue;
        }
        if (n < 0) {
            vfio_user_kill(proxy, ECONNRESET, "send failed: %s",
                           error_get_pretty(err));
            error_free(err);
            return -ECONNRESET;
        }
        fds = NULL;
        nfds = 0;
        iov_discard_front(&iov, &niov, n);
    }
    return 0;
}

/*
 * Take the send token, by @deadline: a timed wait, where a mutex would
 * let a server that reads slowly hold every other sender (a vCPU behind
 * the receive thread's 1 MiB DMA_READ reply) for as long as it pleases.
 * Caller holds lock.  Returns 0, -ETIMEDOUT, -ECONNRESET (dead).
 */
static int proxy_take_send_token(VFIOUserProxy *proxy, int64_t deadline)
{
    while (proxy->sending && !proxy->dead) {
        int64_t left = deadline - now_ms();

        if (left <= 0) {
            return -ETIMEDOUT;
        }
        proxy->send_waiters++;
        qemu_cond_timedwait(&proxy->send_cond, &proxy->lock,
                            MIN(left, INT_MAX));
        proxy->send_waiters--;
    }
    if (proxy->dead) {
        return -ECONNRESET;
    }
    proxy->sending = true;
    return 0;
}

/*
 * Send whole messages, the first with header @hdr, from the wait for the
 * send token on, by @deadline
 */
static int proxy_send_iov(VFIOUserProxy *proxy, const VFIOUserHdr *hdr,
                          const struct iovec *all, size_t niov,
                          const int *fds, size_t nfds, int64_t deadline)
{
    int ret;

    qemu_mutex_lock(&proxy->lock);
    ret = proxy_take_send_token(proxy, deadline);
    qemu_mutex_unlock(&proxy->lock);
    if (ret == -ETIMEDOUT) {
        vfio_user_kill(proxy, ETIMEDOUT, "message id %u (command %u) could "
                       "not be sent within %u ms: the server reads "
                       "another message too slowly", hdr->id,
                       hdr->command, proxy->timeout_ms);
    }
    if (ret < 0) {
        return ret;
    }

    ret = proxy_write(proxy, all, niov, fds, nfds, deadline);

    qemu_mutex_lock(&proxy->lock);
    proxy->sending = false;
    if (proxy->send_waiters) {
        qemu_cond_signal(&proxy->send_cond);
    }
    qemu_mutex_unlock(&proxy->lock);
    return ret;
}

/* Send a whole message, from the wait for the send token on, by @deadline */
static int proxy_send(VFIOUserProxy *proxy, VFIOUserHdr *hdr,
                      const struct iovec *iov, size_t niov,
                      const int *fds, size_t nfds, int64_t deadline)
{
    struct iovec small[4];
    g_autofree struct iovec *big = NULL;
    struct iovec *all = niov < ARRAY_SIZE(small) ? small :
                        (big = g_new(struct iovec, niov + 1));
    size_t size = sizeof(*hdr);

    all[0] = (struct iovec) { .iov_base = hdr, .iov_len = sizeof(*hdr) };
    for (size_t i = 0; i < niov; i++) {
        all[i + 1] = iov[i];
        size += iov[i].iov_len;
    }
    if (size > UINT32_MAX) {
        return -E2BIG;
    }
    hdr->size = size;
    return proxy_send_iov(proxy, hdr, all, niov + 1, fds, nfds, deadline);
}

/*
 * The replies held back, if any, by the first one's deadline; the
 * caller holds the read token.
 */
static int proxy_flush_replies(VFIOUserProxy *proxy)
{
    struct iovec iov = { .iov_base = proxy->tbuf,
                         .iov_len = proxy->tbuf_len };

    if (!proxy->tbuf_len) {
        return 0;
    }
    proxy->tbuf_len = 0;
    return proxy_send_iov(proxy, (VFIOUserHdr *)proxy->tbuf, &iov, 1,
                          NULL, 0, proxy->tbuf_deadline);
}

/*
 * Our answer to the server's request being read (it shares its
 * deadline): held back if small, to go with the others of a burst (see
 * VFIO_USER_TBUF_SIZE), else after them.
 */
static int proxy_send_answer(VFIOUserProxy *proxy, VFIOUserHdr *hdr,
                             const struct iovec *iov, size_t niov)
{
    size_t size = sizeof(*hdr) + iov_size(iov, niov);
    int ret;

    if (size > VFIO_USER_TBUF_COPY_MAX ||
        proxy->tbuf_len + size > VFIO_USER_TBUF_SIZE) {
        ret = proxy_flush_replies(proxy);
        if (ret < 0) {
            return ret;
        }
    }
    if (size > VFIO_USER_TBUF_COPY_MAX) {
        return proxy_send(proxy, hdr, iov, niov, NULL, 0, proxy->rx_deadline);
    }
    if (!proxy->tbuf_len) {
        proxy->tbuf_deadline = proxy->rx_deadline;
    }
    hdr->size = size;
    memcpy(proxy->tbuf + proxy->tbuf_len, hdr, sizeof(*hdr));
    iov_to_buf(iov, niov, 0, proxy->tbuf + proxy->tbuf_len + sizeof(*hdr),
               size - sizeof(*hdr));
    proxy->tbuf_len += size;
    return 0;
}

static size_t proxy_buffered(VFIOUserProxy *proxy)
{
    return proxy->rbuf_tail - proxy->rbuf_head;
}

/*
 * One read from the socket into @iov, with the fds that came with it if
 * @fds is given.  Returns the bytes read, -EAGAIN when there are none
 * yet (the socket is non-blocking), -ECONNRESET at the end of the
 * stream, -EIO.
 */
static ssize_t proxy_recv(VFIOUserProxy *proxy, struct iovec *iov,
                          unsigned int niov, int **fds, size_t *nfds)
{
    Error *err = NULL;
    ssize_t n = qio_channel_readv_full(proxy->ioc, iov, niov, fds, nfds, 0,
                                       &err);

    if (n == QIO_CHANNEL_ERR_BLOCK) {
        return -EAGAIN;
    }
    if (n < 0) {
        error_free(err);
        return -EIO;
    }
    return n ? n : -ECONNRESET;
}

/*
 * Read what the socket has, at least one byte and at most @max, into the
 * empty receive buffer.  The caller holds the read token.  Returns what
 * proxy_recv() returns.
 *
 * fds ride with bytes: the kernel ends a read right after the bytes that
 * carried fds, and a sender's fds come with the first bytes of its
 * message, so fds belong to the message that holds the last byte of the
 * read that brought them (proxy_claim_fds()).
 */
static ssize_t proxy_fill(VFIOUserProxy *proxy, size_t max)
{
    struct iovec iov = {
        .iov_base = proxy->rbuf,
        .iov_len = MIN(max, VFIO_USER_RBUF_SIZE),
    };
    int *fds = NULL;
    size_t nfds = 0;
    ssize_t n;

    assert(proxy_buffered(proxy) == 0);
    proxy->rbuf_head = proxy->rbuf_tail = 0;
    n = proxy_recv(proxy, &iov, 1, &fds, &nfds);
    if (n > 0) {
        proxy->rbuf_tail = n;
    }
    if (nfds) {
        /* Fds nobody claimed (the server sent them with no message). */
        proxy_close_fds(proxy->rx_fds, proxy->rx_nfds);
        g_free(proxy->rx_fds);
        proxy->rx_fds = fds;
        proxy->rx_nfds = nfds;
        proxy->rx_fds_at = proxy->rx_pos + proxy->rbuf_tail - 1;
    }
    return n;
}

/*
 * Read exactly the bytes described by @iov, first from the receive
 * buffer; the caller holds the read token.  Waits in poll() only when
 * the socket has nothing yet, and never past proxy->rx_deadline, the
 * current message's: -EAGAIN then when no byte at all came, -ETIMEDOUT
 * when some did.  A shutdown of the socket (proxy_kill,
 * vfio_user_disconnect) ends it at once.
 */
static int proxy_read(VFIOUserProxy *proxy, const struct iovec *iov_in,
                      unsigned int niov)
{
    struct iovec local[4];
    g_autofree struct iovec *copy = NULL;
    struct iovec *iov = local;
    size_t left = iov_size(iov_in, niov);
    bool started = false;

    /* Header and small payloads stay off the heap. */
    if (niov > ARRAY_SIZE(local)) {
        iov = copy = g_new(struct iovec, niov);
    }
    memcpy(iov, iov_in, niov * sizeof(*iov));
    while (left > 0) {
        size_t have = proxy_buffered(proxy);
        ssize_t n;

        if (have) {
            n = iov_from_buf(iov, niov, 0, proxy->rbuf + proxy->rbuf_head,
                             MIN(have, left));
            proxy->rbuf_head += n;
        } else {
            if (left >= VFIO_USER_DIRECT_MIN) {
                /* Big: straight into place (fds here are dropped). */
                n = proxy_recv(proxy, iov, niov, NULL, NULL);
            } else {
                /*
                 * Unclaimed fds belong to the message being read (its
                 * header came in pieces): read no further than it, or
                 * the next message's fds would replace them.
                 */
                n = proxy_fill(proxy, proxy->rx_nfds ? left :
                                      VFIO_USER_RBUF_SIZE);
                if (n > 0) {
                    continue;
                }
            }
            if (n == -EAGAIN) {
                /* The server may wait for them before it sends more. */
                if (proxy_flush_replies(proxy) < 0) {
                    return -ECONNRESET;
                }
                if (proxy_wait_until(proxy, POLLIN, proxy->rx_deadline)) {
                    continue;
                }
                return started ? -ETIMEDOUT : -EAGAIN;
            }
            if (n < 0) {
                return n;
            }
        }
        proxy->rx_pos += n;
        left -= n;
        started = true;
        iov_discard_front(&iov, &niov, n);
    }
    return 0;
}

/*
 * The fds of the message whose header starts at stream offset @start and
 * is @size bytes long, if they came; fds of earlier bytes are stale.
 */
static int *proxy_claim_fds(VFIOUserProxy *proxy, uint64_t start,
                            uint32_t size, size_t *nfds)
{
    int *fds = NULL;

    *nfds = 0;
    if (!proxy->rx_nfds || proxy->rx_fds_at >= start + size) {
        return NULL;            /* none, or a later message's */
    }
    if (proxy->rx_fds_at >= start) {
        fds = proxy->rx_fds;
        *nfds = proxy->rx_nfds;
    } else {
        proxy_close_fds(proxy->rx_fds, proxy->rx_nfds);
        g_free(proxy->rx_fds);
    }
    proxy->rx_fds = NULL;
    proxy->rx_nfds = 0;
    return fds;
}

/*
 * A whole message in the receive buffer, or a header with a size that
 * kills the connection: the reader must deal with it before it lets go
 * of the token, since no data on the socket will wake anybody for it.
 */
static bool proxy_message_buffered(VFIOUserProxy *proxy)
{
    VFIOUserHdr hdr;

    if (proxy_buffered(proxy) < sizeof(hdr)) {
        return false;
    }
    memcpy(&hdr, proxy->rbuf + proxy->rbuf_head, sizeof(hdr));
    return hdr.size <= proxy_buffered(proxy) || hdr.size < sizeof(hdr) ||
           hdr.size > VFIO_USER_MAX_RECV_MSG;
}

int vfio_user_recv_payload(VFIOUserProxy *proxy, const struct iovec *iov,
                           size_t niov)
{
    return proxy_read(proxy, iov, niov);
}

int vfio_user_discard(VFIOUserProxy *proxy, size_t len)
{
    char buf[4096];

    while (len > 0) {
        struct iovec iov = { .iov_base = buf,
                             .iov_len = MIN(len, sizeof(buf)) };
        int ret = proxy_read(proxy, &iov, 1);

        if (ret < 0) {
            return ret;
        }
        len -= iov.iov_len;
    }
    return 0;
}

int vfio_user_send_reply(VFIOUserProxy *proxy, const VFIOUserHdr *req,
                         const struct iovec *iov, size_t niov)
{
    VFIOUserHdr hdr = {
        .id = req->id,
        .command = req->command,
        .flags = VFIO_USER_REPLY,
    };

    return proxy_send_answer(proxy, &hdr, iov, niov);
}

int vfio_user_send_error(VFIOUserProxy *proxy, const VFIOUserHdr *req,
                         int err)
{
    VFIOUserHdr hdr = {
        .id = req->id,
        .command = req->command,
        .flags = VFIO_USER_REPLY | VFIO_USER_ERROR,
        .error_reply = err,
    };

    return proxy_send_answer(proxy, &hdr, NULL, 0);
}

/* A reply: give it to its waiter, or drop it whole. */
static bool proxy_handle_reply(VFIOUserProxy *proxy, const VFIOUserHdr *hdr,
                               size_t payload, int *fds, size_t nfds)
{
    VFIOUserPending *p;
    VFIOUserReply *reply;
    int error = 0;
    int ret;

    qemu_mutex_lock(&proxy->lock);
    QTAILQ_FOREACH(p, &proxy->pending, next) {
        if (p->id == hdr->id && !p->done) {
            break;
        }
    }
    if (p) {
        p->busy = true;
    }
    qemu_mutex_unlock(&proxy->lock);

    if (!p) {
        trace_vfio_user_reply_dropped(proxy->name, hdr->id, hdr->command,
                                      payload);
        proxy_close_fds(fds, nfds);
        return vfio_user_discard(proxy, payload) == 0;
    }

    reply = p->reply;
    if (hdr->command != p->cmd) {
        error = EPROTO;
        ret = vfio_user_discard(proxy, payload);
        proxy_close_fds(fds, nfds);
    } else if (hdr->flags & VFIO_USER_ERROR) {
        /* A positive errno; anything else is not one. */
        error = hdr->error_reply > 0 && hdr->error_reply < 4096 ?
                hdr->error_reply : EIO;
        ret = vfio_user_discard(proxy, payload);
        proxy_close_fds(fds, nfds);
    } else {
        size_t want = reply ? MIN(payload, reply->max) : 0;
        struct iovec iov = { .iov_base = reply ? reply->buf : NULL,
                             .iov_len = want };
        size_t keep = reply ? MIN(nfds, reply->max_fds) : 0;

        ret = want ? proxy_read(proxy, &iov, 1) : 0;
        if (ret == 0) {
            ret = vfio_user_discard(proxy, payload - want);
        }
        if (reply) {
            reply->len = payload;
            if (keep) {
                memcpy(reply->fds, fds, keep * sizeof(int));
            }
            reply->nfds = keep;
        }
        if (nfds > keep) {
            proxy_close_fds(fds + keep, nfds - keep);
        }
    }

    qemu_mutex_lock(&proxy->lock);
    p->busy = false;
    p->error = ret < 0 ? ECONNRESET : error;
    p->done = true;
    qemu_cond_broadcast(&proxy->cond);
    qemu_mutex_unlock(&proxy->lock);
    return ret == 0;
}

/* A request from the server (DMA_READ/DMA_WRITE). */
static bool proxy_handle_request(VFIOUserProxy *proxy,
                                 const VFIOUserHdr *hdr, size_t payload)
{
    VFIOUserRequestHandler handler;
    void *opaque;

    qemu_mutex_lock(&proxy->lock);
    handler = proxy->handler;
    opaque = proxy->handler_opaque;
    proxy->handler_busy = handler != NULL;
    qemu_mutex_unlock(&proxy->lock);

    if (handler) {
        bool ok = handler(opaque, proxy, hdr);

        qemu_mutex_lock(&proxy->lock);
        proxy->handler_busy = false;
        qemu_cond_broadcast(&proxy->handler_idle);
        qemu_mutex_unlock(&proxy->lock);
        return ok;
    }
    trace_vfio_user_request_refused(proxy->name, hdr->id, hdr->command,
                                    ENOSYS);
    if (vfio_user_discard(proxy, payload) < 0) {
        return false;
    }
    if (!(hdr->flags & VFIO_USER_NO_REPLY)) {
        vfio_user_send_error(proxy, hdr, ENOSYS);
    }
    return true;
}

/*
 * Read one whole message and act on it; the caller holds the read token
 * and knows data is there.  Returns false when the connection is dead
 * (killed here if it was not already).
 */
static bool proxy_read_message(VFIOUserProxy *proxy)
{
    VFIOUserHdr hdr;
    struct iovec iov = { .iov_base = &hdr, .iov_len = sizeof(hdr) };
    uint64_t start = proxy->rx_pos;
    g_autofree int *fds = NULL;
    size_t nfds = 0, payload;
    bool ok;
    int ret;

    /*
     * The whole message, and our answer if it is a request, must be
     * through by then; and by the reader's own deadline, if it waits for
     * a reply.
     */
    proxy->rx_deadline = MIN(now_ms() + proxy->timeout_ms,
                             proxy->read_limit);
    ret = proxy_read(proxy, &iov, 1);
    if (ret == -EAGAIN) {
        return true;            /* no message by the deadline */
    }
    if (ret < 0) {
        if (ret == -ETIMEDOUT) {
            vfio_user_kill(proxy, ETIMEDOUT, "the server did not send a "
                           "whole message header within %u ms",
                           proxy->timeout_ms);
        } else {
            vfio_user_kill(proxy, ECONNRESET, "%s", ret == -ECONNRESET ?
                       "the server closed the connection" :
                       "socket read error");
        }
        return false;
    }
    if (hdr.size < sizeof(hdr) || hdr.size > VFIO_USER_MAX_RECV_MSG) {
        vfio_user_kill(proxy, ECONNRESET, "message id %u (command %u) has "
                       "size %u, outside [%zu, %zu]", hdr.id, hdr.command,
                       hdr.size, sizeof(hdr), (size_t)VFIO_USER_MAX_RECV_MSG);
        return false;
    }
    payload = hdr.size - sizeof(hdr);
    fds = proxy_claim_fds(proxy, start, hdr.size, &nfds);
    trace_vfio_user_recv(proxy->name, hdr.id, hdr.command, hdr.size,
                         hdr.flags, nfds);

    switch (hdr.flags & VFIO_USER_TYPE) {
    case VFIO_USER_REPLY:
        ok = proxy_handle_reply(proxy, &hdr, payload, fds, nfds);
        break;
    case VFIO_USER_REQUEST:
        /* The server's requests never carry fds. */
        proxy_close_fds(fds, nfds);
        ok = proxy_handle_request(proxy, &hdr, payload);
        break;
    default:
        proxy_close_fds(fds, nfds);
        trace_vfio_user_reply_dropped(proxy->name, hdr.id, hdr.command,
                                      payload);
        ok = vfio_user_discard(proxy, payload) == 0;
        break;
    }
    if (!ok && now_ms() >= proxy->rx_deadline) {
        vfio_user_kill(proxy, ETIMEDOUT, "message id %u (command %u, %u "
                       "bytes) was not through within %u ms", hdr.id,
                       hdr.command, hdr.size, proxy->timeout_ms);
    } else if (!ok) {
        vfio_user_kill(proxy, ECONNRESET, "receive failed in message id %u "
                       "(command %u)", hdr.id, hdr.command);
    }
    return ok;
}

/*
 * The receive thread, after a message: is there more to read at once?
 * A whole message, or the start of one (its rest is on its way); else
 * whatever the socket has now, without waiting.  A server that posts its
 * DMA_WRITEs sends them back to back: reading on saves an epoll_wait()
 * and a poll() per message.  Not while someone waits for a reply: the
 * waiters read then.
 */
static bool proxy_more_to_read(VFIOUserProxy *proxy)
{
    if (proxy_buffered(proxy)) {
        return true;
    }
    if (qatomic_read(&proxy->waiting) || proxy->rx_nfds) {
        return false;
    }
    return proxy_fill(proxy, VFIO_USER_RBUF_SIZE) > 0;
}

/*
 * Holding the read token (taken under proxy->lock, which is dropped and
 * retaken here): read one message if one arrives within @timeout_ms (0:
 * only if one is there, for the receive thread), and any others it
 * brought whole into the receive buffer (with @burst, the receive
 * thread's: any that follow at once), then hand the token back.
 * A waiter passes its own @deadline: what it reads must be through by
 * then (INT64_MAX: no such limit).  Returns false when the connection
 * is dead.
 */
static bool proxy_read_with_token(VFIOUserProxy *proxy, int timeout_ms,
                                  int64_t deadline, bool burst)
{
    bool ok = true;
    bool ready;

    proxy->reading = true;
    proxy->read_limit = deadline;
    qemu_mutex_unlock(&proxy->lock);
    ready = proxy_message_buffered(proxy) ||
            vfio_user_poll_window_wait(&proxy->poll, proxy->fd, timeout_ms,
                                       proxy->name);
    if (ready) {
        do {
            ok = proxy_read_message(proxy);
        } while (ok && !qatomic_read(&proxy->dead) &&
                 (burst ? proxy_more_to_read(proxy) :
                          proxy_message_buffered(proxy)));
        /* Answers to what was read go before the next reader reads. */
        if (proxy_flush_replies(proxy) < 0) {
            ok = false;
        }
    }
    qemu_mutex_lock(&proxy->lock);
    proxy->reading = false;
    qemu_cond_broadcast(&proxy->cond);
    return ok;
}

/*
 * The receive thread watches the socket only while nobody waits for a
 * reply (the waiters read).  Caller holds proxy->lock.
 */
static void proxy_watch_socket(VFIOUserProxy *proxy, bool watch)
{
    struct epoll_event ev = { .events = watch ? EPOLLIN : 0 };

    /* Cannot fail for an fd in the set; a hang-up is reported anyway. */
    epoll_ctl(proxy->epfd, EPOLL_CTL_MOD, proxy->fd, &ev);
}

/*
 * What nobody waits for: the server's requests while no reply is due,
 * and replies that come after their waiter gave up.
 */
static void *proxy_recv_thread(void *opaque)
{
    VFIOUserProxy *proxy = opaque;

    /* DMA requests served here mark guest RAM dirty, under RCU. */
    rcu_register_thread();
    while (!qatomic_read(&proxy->dead)) {
        struct epoll_event ev;

        if (epoll_wait(proxy->epfd, &ev, 1, -1) < 0 && errno != EINTR) {
            vfio_user_kill(proxy, ECONNRESET, "epoll_wait failed: %s",
                           strerror(errno));
            break;
        }
        qemu_mutex_lock(&proxy->lock);
        /*
         * Woken before a waiter took the socket out of the set, or by a
         * hang-up (always reported): the waiters read, not us.
         */
        while (!proxy->dead && (proxy->reading || proxy->waiting)) {
            qemu_cond_wait(&proxy->cond, &proxy->lock);
        }
        /* A waiter may have read what woke us: do not block in a read. */
        if (!proxy->dead &&
            !proxy_read_with_token(proxy, 0, INT64_MAX, true)) {
            qemu_mutex_unlock(&proxy->lock);
            break;
        }
        qemu_mutex_unlock(&proxy->lock);
    }
    rcu_unregister_thread();
    return NULL;
}

int vfio_user_request(VFIOUserProxy *proxy, uint16_t cmd,
                      const struct iovec *iov, size_t niov,
                      const int *fds, size_t nfds, VFIOUserReply *reply)
{
    VFIOUserPending p = { .cmd = cmd, .reply = reply };
    VFIOUserHdr hdr = { .command = cmd, .flags = VFIO_USER_REQUEST };
    int64_t start = now_ms();
    int64_t deadline;
    int ret;

    if (reply) {
        reply->len = 0;
        reply->nfds = 0;
    }
    qemu_mutex_lock(&proxy->lock);
    if (proxy->dead) {
        qemu_mutex_unlock(&proxy->lock);
        return -ECONNRESET;
    }
    p.id = hdr.id = proxy->next_id++;
    QTAILQ_INSERT_TAIL(&proxy->pending, &p, next);
    qemu_mutex_unlock(&proxy->lock);

    trace_vfio_user_send(proxy->name, hdr.id, cmd, iov_size(iov, niov), nfds);
    ret = proxy_send(proxy, &hdr, iov, niov, fds, nfds,
                     MIN(start + proxy->timeout_ms, proxy->deadline_cap));

    /*
     * Only now: while the send blocks on a full socket the receive thread
     * must go on reading, or a server that writes to us while we write
     * to it would never drain.
     */
    qemu_mutex_lock(&proxy->lock);
    if (proxy->waiting++ == 0) {
        proxy_watch_socket(proxy, false);
    }
    start = now_ms();
    deadline = MIN(start + proxy->timeout_ms, proxy->deadline_cap);
    for (bool first = true; ret == 0 && !p.done; first = false) {
        /* The deadline was just set: no need to read the clock. */
        int64_t left = deadline - (first ? start : now_ms());

        if (left > 0 && !proxy->reading && !proxy->dead) {
            /* Read ourselves: our reply, or what comes before it. */
            proxy_read_with_token(proxy, MIN(left, INT_MAX), deadline,
                                  false);
            continue;
        }
        if (left <= 0 && p.busy) {
            /*
             * Another reader is stuck in the middle of our reply: the
             * stream is lost, and our buffer is in use until that reader
             * lets go of it.  Kill the connection to make it.
             */
            qemu_mutex_unlock(&proxy->lock);
            vfio_user_kill(proxy, ECONNRESET, "the server stalled in the "
                           "middle of the reply to message id %u", p.id);
            qemu_mutex_lock(&proxy->lock);
            while (!p.done) {
                qemu_cond_wait(&proxy->cond, &proxy->lock);
            }
            break;
        }
        if (left <= 0) {
            ret = -ETIMEDOUT;
            break;
        }
        qemu_cond_timedwait(&proxy->cond, &proxy->lock, left);
    }
    if (ret == 0 && p.done) {
        ret = -p.error;
    }
    QTAILQ_REMOVE(&proxy->pending, &p, next);
    if (--proxy->waiting == 0) {
        proxy_watch_socket(proxy, true);
        qemu_cond_broadcast(&proxy->cond);      /* the receive thread */
    }
    qemu_mutex_unlock(&proxy->lock);

    if (ret == -ETIMEDOUT) {
        trace_vfio_user_timeout(proxy->name, p.id, cmd, proxy->timeout_ms);
    }
    return ret;
}

int vfio_user_post(VFIOUserProxy *proxy, uint16_t cmd,
                   const struct iovec *iov, size_t niov)
{
    VFIOUserHdr hdr = {
        .command = cmd,
        .flags = VFIO_USER_REQUEST | VFIO_USER_NO_REPLY,
    };

    qemu_mutex_lock(&proxy->lock);
    hdr.id = proxy->next_id++;
    qemu_mutex_unlock(&proxy->lock);
    trace_vfio_user_send(proxy->name, hdr.id, cmd, iov_size(iov, niov), 0);
    return proxy_send(proxy, &hdr, iov, niov, NULL, 0,
                      now_ms() + proxy->timeout_ms);
}

VFIOUserProxy *vfio_user_connect(SocketAddress *addr, const char *name,
                                 uint32_t timeout_ms, uint32_t poll_max_ns,
                                 MemReentrancyGuard *guard, Error **errp)
{
    g_autoptr(QIOChannelSocket) sioc = qio_channel_socket_new();

    if (addr->type != SOCKET_ADDRESS_TYPE_UNIX &&
        addr->type != SOCKET_ADDRESS_TYPE_FD) {
        error_setg(errp, "socket must be a UNIX socket path "
                   "or an fd");
        return NULL;
    }
    if (qio_channel_socket_connect_sync(sioc, addr, errp) < 0) {
        return NULL;            /* the error names the socket */
    }
    return vfio_user_proxy_new(sioc, name, timeout_ms, poll_max_ns, false,
                               guard, errp);
}

VFIOUserProxy *vfio_user_proxy_new(QIOChannelSocket *sioc, const char *name,
                                   uint32_t timeout_ms, uint32_t poll_max_ns,
                                   bool quiet, MemReentrancyGuard *guard,
                                   Error **errp)
{
    VFIOUserProxy *proxy;
    int epfd;

    if (!qio_channel_has_feature(QIO_CHANNEL(sioc),
                                 QIO_CHANNEL_FEATURE_FD_PASS)) {
        error_setg(errp, "the socket cannot pass file descriptors "
                   "(not a UNIX socket?)");
        return NULL;
    }
    /*
     * Non-blocking: every wait is a poll() bounded by the deadline of the
     * message being read or written, not by a per-call socket timeout
     * that a server trickling bytes would renew with each one.
     */
    if (qio_channel_set_blocking(QIO_CHANNEL(sioc), false, errp) < 0) {
        return NULL;
    }
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) {
        error_setg_errno(errp, errno, "epoll_create1 failed");
        return NULL;
    }
    {
        struct epoll_event ev = { .events = EPOLLIN };

        if (epoll_ctl(epfd, EPOLL_CTL_ADD, sioc->fd, &ev) < 0) {
            error_setg_errno(errp, errno, "cannot watch the socket");
            close(epfd);
            return NULL;
        }
    }

    proxy = g_new0(VFIOUserProxy, 1);
    proxy->rbuf = g_malloc(VFIO_USER_RBUF_SIZE);
    proxy->tbuf = g_malloc(VFIO_USER_TBUF_SIZE);
    proxy->epfd = epfd;
    proxy->name = g_strdup(name);
    object_ref(OBJECT(sioc));
    proxy->sioc = sioc;
    proxy->ioc = QIO_CHANNEL(proxy->sioc);
    proxy->fd = proxy->sioc->fd;
    proxy->timeout_ms = timeout_ms;
    proxy->deadline_cap = INT64_MAX;
    proxy->report_death = !quiet;
    vfio_user_poll_window_init(&proxy->poll, poll_max_ns);
    qemu_mutex_init(&proxy->lock);
    qemu_cond_init(&proxy->cond);
    qemu_cond_init(&proxy->send_cond);
    qemu_cond_init(&proxy->handler_idle);
    QTAILQ_INIT(&proxy->pending);
    proxy->death_bh = qemu_bh_new_guarded(proxy_death_bh, proxy, guard);
    proxy->caps = (VFIOUserPeerCaps) {
        .max_msg_fds = VFIO_USER_DEF_MAX_FDS,
        .max_data_xfer_size = VFIO_USER_DEF_MAX_XFER,
        .pgsizes = VFIO_USER_DEF_PGSIZE,
        .max_dma_maps = VFIO_USER_DEF_MAX_DMA_MAPS,
    };

    qemu_thread_create(&proxy->recv_thread, "vfio-user-recv",
                       proxy_recv_thread, proxy, QEMU_THREAD_JOINABLE);
    proxy->recv_running = true;
    return proxy;
}

void vfio_user_set_request_handler(VFIOUserProxy *proxy,
                                   VFIOUserRequestHandler handler,
                                   void *opaque)
{
    /*
     * Once this returns, the old handler is not running and never will.
     * It is done by its request's deadline: this waits x-msg-timeout at
     * most (at unplug, for a server that trickles a DMA_WRITE).
     */
    qemu_mutex_lock(&proxy->lock);
    while (proxy->handler_busy) {
        qemu_cond_wait(&proxy->handler_idle, &proxy->lock);
    }
    proxy->handler_opaque = opaque;
    proxy->handler = handler;
    qemu_mutex_unlock(&proxy->lock);
}

void vfio_user_set_death_notifier(VFIOUserProxy *proxy,
                                  void (*notify)(void *opaque,
                                                 const char *reason),
                                  void *opaque)
{
    proxy->death_notify = notify;
    proxy->death_opaque = opaque;
}

void vfio_user_set_deadline(VFIOUserProxy *proxy, uint32_t ms)
{
    proxy->deadline_cap = ms ? now_ms() + ms : INT64_MAX;
}

void vfio_user_set_report_death(VFIOUserProxy *proxy, bool report)
{
    proxy->report_death = report;
}

const VFIOUserPeerCaps *vfio_user_peer_caps(VFIOUserProxy *proxy)
{
    return &proxy->caps;
}

void vfio_user_set_peer_caps(VFIOUserProxy *proxy,
                             const VFIOUserPeerCaps *caps)
{
    /* Before any other request: nothing reads them concurrently yet. */
    proxy->caps = *caps;
}

const char *vfio_user_name(VFIOUserProxy *proxy)
{
    return proxy->name;
}

bool vfio_user_is_dead(VFIOUserProxy *proxy)
{
    return qatomic_read(&proxy->dead);
}

uint32_t vfio_user_timeout_ms(VFIOUserProxy *proxy)
{
    return proxy->timeout_ms;
}

void vfio_user_disconnect(VFIOUserProxy *proxy)
{
    if (!proxy) {
        return;
    }
    /* Stop the receive thread first: it may be using the handler. */
    if (!proxy_mark_dead(proxy, g_strdup("device removed"), ECONNRESET) &&
        !proxy->death_reported) {
        /* It died during the removal itself: death_bh will never run. */
        proxy_report_death(proxy);
    }
    if (proxy->recv_running) {
        qemu_thread_join(&proxy->recv_thread);
    }
    assert(QTAILQ_EMPTY(&proxy->pending));
    qemu_bh_delete(proxy->death_bh);
    close(proxy->epfd);
    proxy_close_fds(proxy->rx_fds, proxy->rx_nfds);
    g_free(proxy->rx_fds);
    g_free(proxy->rbuf);
    g_free(proxy->tbuf);
    object_unref(OBJECT(proxy->sioc));
    qemu_cond_destroy(&proxy->handler_idle);
    qemu_cond_destroy(&proxy->send_cond);
    qemu_cond_destroy(&proxy->cond);
    qemu_mutex_destroy(&proxy->lock);
    g_free(proxy->death_reason);
    g_free(proxy->name);
    g_free(proxy);
}
