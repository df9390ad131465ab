/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The test server's transport: one UNIX stream connection, messages
 * framed by their header, fds taken from the read that brought them.
 *
 * conn_fd is non-blocking; we poll with the wake eventfd so that
 * vu_test_server_free() can always stop the thread.  Everything here
 * runs on the server thread, except vu_sendv(), which serialises on
 * send_lock, so that the test thread can send raw bytes too.
 */

#include "qemu/osdep.h"
#include <sys/socket.h>
#include "vfio-user-server-int.h"

void vu_msg_free(VUMsg *msg)
{
    unsigned i;

    for (i = 0; i < msg->nfds; i++) {
        vu_close_fd(&msg->fds[i]);
    }
    g_free(msg->payload);
    g_free(msg);
}

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

void vu_rx_reset(VUTestServer *s)
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
int vu_recv_msg(VUTestServer *s, VUMsg **msgp, int64_t deadline_us)
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
int vu_sendv(VUTestServer *s, struct iovec *iov_in, int iovcnt,
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

void vu_send_bytes(VUTestServer *s, const void *buf, size_t len)
{
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };

    if (len && vu_sendv(s, &iov, 1, NULL, 0)) {
        s->conn_broken = true;
    }
}

/* Reply to @req: with @r's payload and fd, or an error reply */
void vu_reply(VUTestServer *s, const VUMsg *req, int err, VUReply *r)
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

/* The fixed part of a payload, zero-padded if the message is short */
void vu_msg_get_payload(VUMsg *msg, void *dst, size_t size)
{
    memset(dst, 0, size);
    if (msg->payload_size) {
        memcpy(dst, msg->payload, MIN(msg->payload_size, size));
    }
}

void vu_accept(VUTestServer *s, bool may_accept)
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
