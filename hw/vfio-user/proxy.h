/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vfio-user client: the connection to a server.
 *
 * A VFIOUserProxy owns the socket.  Requests are sent whole under a send
 * lock, so two threads never interleave bytes of two messages; replies
 * are matched to their request by message id.  A dedicated receive
 * thread reads every message the server sends: it hands replies to the
 * thread waiting for them and services the server's own requests
 * (DMA_READ/DMA_WRITE) itself, so a server that DMAs while a vCPU waits
 * for one of its replies never stalls QEMU.  See proxy.c for the locking.
 */

#ifndef HW_VFIO_USER_PROXY_H
#define HW_VFIO_USER_PROXY_H

#include "qemu/thread.h"
#include "qemu/queue.h"
#include "io/channel.h"
#include "io/channel-socket.h"
#include "qapi/qapi-types-sockets.h"
#include "hw/qdev-core.h"
#include "hw/vfio-user/protocol.h"

typedef struct VFIOUserProxy VFIOUserProxy;

/*
 * Handler for a request the server sends (DMA_READ, DMA_WRITE), called
 * by the thread reading the socket (the receive thread, or one waiting
 * for a reply, which may hold the BQL: the handler must not take it)
 * with the header already read.  It must consume
 * exactly hdr->size - sizeof(*hdr) payload bytes with
 * vfio_user_recv_payload() or vfio_user_discard(), and answer with
 * vfio_user_send_reply() or vfio_user_send_error() unless the request
 * carries VFIO_USER_NO_REPLY.  Returning false means the stream can no
 * longer be trusted: the connection is dropped.  The request and the
 * answer share one deadline (x-msg-timeout from the request's first
 * byte): past it those functions fail and the connection is dropped, so
 * a handler never runs longer than that.
 */
typedef bool (*VFIOUserRequestHandler)(void *opaque, VFIOUserProxy *proxy,
                                       const VFIOUserHdr *hdr);

/* Negotiated with the server in VFIO_USER_VERSION. */
typedef struct VFIOUserPeerCaps {
    uint32_t max_msg_fds;        /* fds we send per message, at most */
    uint64_t max_data_xfer_size; /* largest REGION_READ/WRITE count */
    uint64_t pgsizes;            /* DMA page sizes the server supports */
    uint32_t max_dma_maps;       /* DMA_MAP regions the server accepts */
} VFIOUserPeerCaps;

/* Our own limits, advertised in VFIO_USER_VERSION. */
#define VFIO_USER_CLIENT_MAX_FDS        16
#define VFIO_USER_CLIENT_MAX_XFER       (1 * MiB)

/* The most fds one message of ours carries (QIOChannelSocket's limit). */
#define VFIO_USER_CLIENT_SEND_FDS       16

typedef struct VFIOUserReply {
    void *buf;          /* payload destination, may be NULL */
    size_t max;         /* room in buf */
    size_t len;         /* payload bytes the server sent */
    int *fds;           /* fds received with the reply, if wanted */
    size_t max_fds;
    size_t nfds;
} VFIOUserReply;

/*
 * Connect to the server at @addr.  @name names the device and its socket
 * in errors and traces (the caller composes it); @timeout_ms is
 * x-msg-timeout; a thread that waits for a reply may busy-poll the
 * socket for up to @poll_max_ns before it sleeps (0: never); @guard is
 * the device's, for the bottom half that reports the death of the
 * connection.
 */
VFIOUserProxy *vfio_user_connect(SocketAddress *addr, const char *name,
                                 uint32_t timeout_ms, uint32_t poll_max_ns,
                                 MemReentrancyGuard *guard, Error **errp);
/*
 * The same over @sioc, a socket already connected (by reconnect.c): the
 * proxy takes a reference to it.  @quiet: do not log the death of the
 * connection (a connection being tried out, whose death is the
 * attempt's failure) until vfio_user_set_report_death().
 */
VFIOUserProxy *vfio_user_proxy_new(QIOChannelSocket *sioc, const char *name,
                                   uint32_t timeout_ms, uint32_t poll_max_ns,
                                   bool quiet, MemReentrancyGuard *guard,
                                   Error **errp);
void vfio_user_set_request_handler(VFIOUserProxy *proxy,
                                   VFIOUserRequestHandler handler,
                                   void *opaque);
/* Called in the main loop once the connection is dead, with why. */
void vfio_user_set_death_notifier(VFIOUserProxy *proxy,
                                  void (*notify)(void *opaque,
                                                 const char *reason),
                                  void *opaque);
/*
 * From now on, let no request wait more than @ms in all (0: only each
 * request's own x-msg-timeout), so that a sequence of them (a restore,
 * under the BQL) is bounded as a whole.  Only while no other thread
 * sends requests on @proxy.
 */
void vfio_user_set_deadline(VFIOUserProxy *proxy, uint32_t ms);

/* Whether the death of the connection is logged (main loop) */
void vfio_user_set_report_death(VFIOUserProxy *proxy, bool report);
void vfio_user_disconnect(VFIOUserProxy *proxy);

/*
 * Exchange VFIO_USER_VERSION (version.c): the first request on a
 * connection.  Until it succeeds the peer has the spec's defaults.
 */
bool vfio_user_negotiate(VFIOUserProxy *proxy, Error **errp);
const VFIOUserPeerCaps *vfio_user_peer_caps(VFIOUserProxy *proxy);
/* For vfio_user_negotiate(), before any other request is sent. */
void vfio_user_set_peer_caps(VFIOUserProxy *proxy,
                             const VFIOUserPeerCaps *caps);
const char *vfio_user_name(VFIOUserProxy *proxy);
bool vfio_user_is_dead(VFIOUserProxy *proxy);
uint32_t vfio_user_timeout_ms(VFIOUserProxy *proxy);

/*
 * Drop a connection that can no longer be trusted, saying why: every
 * pending request fails with -@err (ECONNRESET; ETIMEDOUT for a missed
 * deadline) and the device is told from the main loop.
 */
void G_GNUC_PRINTF(3, 4) vfio_user_kill(VFIOUserProxy *proxy, int err,
                                        const char *fmt, ...);

/*
 * Send a request made of @iov and wait for its reply.  Returns 0, or a
 * negative errno: the server's error reply, -ETIMEDOUT, -ECONNRESET when
 * the connection is gone.  @reply may be NULL when no payload is wanted.
 */
int vfio_user_request(VFIOUserProxy *proxy, uint16_t cmd,
                      const struct iovec *iov, size_t niov,
                      const int *fds, size_t nfds, VFIOUserReply *reply);

/* Send a request with VFIO_USER_NO_REPLY: ordered, but not waited for. */
int vfio_user_post(VFIOUserProxy *proxy, uint16_t cmd,
                   const struct iovec *iov, size_t niov);

/* For request handlers, in the thread that called them. */
int vfio_user_recv_payload(VFIOUserProxy *proxy, const struct iovec *iov,
                           size_t niov);
int vfio_user_discard(VFIOUserProxy *proxy, size_t len);
int vfio_user_send_reply(VFIOUserProxy *proxy, const VFIOUserHdr *req,
                         const struct iovec *iov, size_t niov);
int vfio_user_send_error(VFIOUserProxy *proxy, const VFIOUserHdr *req,
                         int err);

#endif /* HW_VFIO_USER_PROXY_H */
