/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vfio-user client: finding the server again after the connection died.
 *
 * A restarted server listens on the same socket path again.  Every
 * attempt to reach it runs from the main loop without blocking it: a
 * timer starts a QIOTask whose thread connects and negotiates the
 * version (a server that listens but does not accept blocks connect(),
 * one that accepts but does not answer blocks VERSION for up to
 * x-msg-timeout), and its completion, back in the main loop with the
 * BQL, hands the new connection to the device, which restores itself
 * over it (restore.c) or refuses it.
 *
 * While nothing listens on the socket, attempts come every reconnect-ms:
 * a refused connect costs next to nothing, and the guest waits for the
 * first attempt after the server is back.  A server that does answer but
 * fails the attempt (negotiation, identity, restore), or that dies again
 * soon after a restore (before VFIO_USER_RECONNECT_STABLE_MS), doubles
 * the wait, up to VFIO_USER_RECONNECT_MAX_MS: a flapping server costs a
 * handful of attempts, not a busy loop.  Only the first failure of an
 * outage is logged; every attempt has a trace event.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/clone-visitor.h"
#include "qapi/qapi-visit-sockets.h"
#include "qemu/error-report.h"
#include "qemu/main-loop.h"
#include "qemu/timer.h"
#include "qemu/sockets.h"
#include "io/channel-socket.h"
#include "hw/vfio-user/reconnect.h"
#include "trace.h"

#define VFIO_USER_RECONNECT_MAX_MS      10000
#define VFIO_USER_RECONNECT_STABLE_MS   5000

struct VFIOUserReconnect {
    SocketAddress *addr;        /* NULL: only vfio_user_reconnect_with() */
    char *name;
    uint32_t interval_ms;
    uint32_t timeout_ms;
    uint32_t poll_max_ns;
    MemReentrancyGuard *guard;  /* the owner's */
    Object *owner;              /* the device, held while an attempt runs */
    VFIOUserRestoreFunc restore;
    void *opaque;

    QEMUTimer *timer;
    unsigned failures;          /* servers that failed since the last success */
    bool said_failure;          /* logged a failure of this outage */
    bool connecting;            /* an asynchronous connect is in flight */
    bool orphaned;              /* freed while connecting: its end frees */
    bool down;                  /* between start() and a restore */
    int64_t restored_at;        /* QEMU_CLOCK_REALTIME ms, 0: never */
};

static uint32_t reconnect_delay_ms(VFIOUserReconnect *rc)
{
    uint64_t cap = MAX(rc->interval_ms, VFIO_USER_RECONNECT_MAX_MS);
    uint64_t delay = (uint64_t)rc->interval_ms << MIN(rc->failures, 16);

    return MIN(delay, cap);
}

static void reconnect_schedule(VFIOUserReconnect *rc)
{
    uint32_t delay = reconnect_delay_ms(rc);

    trace_vfio_user_reconnect_wait(rc->name, rc->failures, delay);
    timer_mod(rc->timer, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + delay);
}

/* @answered: a server accepted the attempt, and failed it */
static void reconnect_failed(VFIOUserReconnect *rc, Error *err, bool answered)
{
    trace_vfio_user_reconnect_failed(rc->name, error_get_pretty(err));
    if (!rc->said_failure) {
        rc->said_failure = true;
        warn_report("vfio-user: %s: cannot reconnect to the server: %s; "
                    "retrying every %u ms, backing off up to %u ms while "
                    "a server answers and fails", rc->name,
                    error_get_pretty(err), rc->interval_ms,
                    MAX(rc->interval_ms, VFIO_USER_RECONNECT_MAX_MS));
    }
    error_free(err);
    if (answered) {
        rc->failures++;
    }
    if (rc->addr && rc->down) {
        reconnect_schedule(rc);
    }
}

/*
 * A new connection, quiet until the device takes it (its death is this
 * attempt's failure), negotiated.  On failure *@proxy may still be set,
 * dead: only the main loop may free it, since its death bottom half
 * may be about to run there.
 */
static bool reconnect_open(VFIOUserReconnect *rc, QIOChannelSocket *sioc,
                           VFIOUserProxy **proxy, Error **errp)
{
    *proxy = vfio_user_proxy_new(sioc, rc->name, rc->timeout_ms,
                                 rc->poll_max_ns, true, rc->guard, errp);
    return *proxy && vfio_user_negotiate(*proxy, errp);
}

/* Hand @proxy to the device: true if it is back. */
static bool reconnect_restore(VFIOUserReconnect *rc, VFIOUserProxy *proxy,
                              Error **errp)
{
    /*
     * The restore holds the BQL: a server that answers each of its
     * requests just in time must not hold it for that long each.
     */
    vfio_user_set_deadline(proxy, rc->timeout_ms);
    if (!rc->restore(rc->opaque, proxy, errp)) {
        vfio_user_disconnect(proxy);
        return false;
    }
    vfio_user_set_deadline(proxy, 0);
    vfio_user_set_report_death(proxy, true);
    rc->down = false;
    rc->said_failure = false;
    rc->restored_at = qemu_clock_get_ms(QEMU_CLOCK_REALTIME);
    timer_del(rc->timer);
    info_report("vfio-user: %s: reconnected to the server", rc->name);
    return true;
}

/*
 * Connect to rc->addr without blocking: a server that listens but does
 * not accept fills its backlog, and a blocking connect() would then wait
 * for it forever; non-blocking, it fails (EAGAIN), like a missing server.
 */
static QIOChannelSocket *reconnect_connect(VFIOUserReconnect *rc,
                                           Error **errp)
{
    const char *path = rc->addr->u.q_unix.path;
    struct sockaddr_un un = { .sun_family = AF_UNIX };
    QIOChannelSocket *sioc;
    int fd;

    if (strlen(path) >= sizeof(un.sun_path)) {
        error_setg(errp, "socket path '%s' is too long", path);
        return NULL;
    }
    strcpy(un.sun_path, path);
    fd = qemu_socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0) {
        error_setg_errno(errp, errno, "cannot create a socket");
        return NULL;
    }
    qemu_socket_set_nonblock(fd);
    if (connect(fd, (struct sockaddr *)&un, sizeof(un)) < 0) {
        error_setg_errno(errp, errno, "Failed to connect to '%s'", path);
        close(fd);
        return NULL;
    }
    sioc = qio_channel_socket_new_fd(fd, errp);
    if (!sioc) {
        close(fd);
    }
    return sioc;
}

/* One attempt, from the timer to reconnect_done() */
typedef struct ReconnectAttempt {
    VFIOUserReconnect *rc;
    VFIOUserProxy *proxy;
    bool answered;              /* connect() succeeded */
    Error *err;
} ReconnectAttempt;

/*
 * In a thread of its own, so that neither a server that listens but does
 * not accept, nor one that accepts and does not answer VERSION, blocks
 * the main loop: connect and negotiate.  The attempt's rc is not freed
 * meanwhile (vfio_user_reconnect_free() leaves that to reconnect_done()),
 * and what this reads of it does not change.
 */
static void reconnect_worker(QIOTask *task, gpointer opaque)
{
    ReconnectAttempt *at = opaque;
    g_autoptr(QIOChannelSocket) sioc = reconnect_connect(at->rc, &at->err);

    if (sioc) {
        at->answered = true;
        reconnect_open(at->rc, sioc, &at->proxy, &at->err);
    }
}

/* Back in the main loop, with the BQL */
static void reconnect_done(QIOTask *task, gpointer opaque)
{
    ReconnectAttempt *at = opaque;
    VFIOUserReconnect *rc = at->rc;
    Error *err = g_steal_pointer(&at->err);
    VFIOUserProxy *proxy = g_steal_pointer(&at->proxy);
    bool answered = at->answered;

    /* The attempt's hold on the device, dropped last */
    g_autoptr(Object) owner = rc->owner;

    g_free(at);
    rc->connecting = false;
    if (rc->orphaned || !rc->down) {
        /* Unplugged, or restored meanwhile by QMP */
        error_free(err);
        vfio_user_disconnect(proxy);
        if (rc->orphaned) {
            vfio_user_reconnect_free(rc);
        }
        return;
    }
    if (err) {
        vfio_user_disconnect(proxy);
        reconnect_failed(rc, err, answered);
    } else if (!reconnect_restore(rc, proxy, &err)) {
        reconnect_failed(rc, err, true);
    }
}

static void reconnect_timer_cb(void *opaque)
{
    VFIOUserReconnect *rc = opaque;
    ReconnectAttempt *at;
    QIOTask *task;

    if (rc->connecting || !rc->down) {
        return;
    }
    trace_vfio_user_reconnect_attempt(rc->name, rc->failures);
    rc->connecting = true;
    /*
     * The attempt's connection points at the device (its reentrancy
     * guard): the device must outlive it, even if unplugged meanwhile.
     */
    object_ref(rc->owner);
    at = g_new0(ReconnectAttempt, 1);
    at->rc = rc;
    task = qio_task_new(NULL, reconnect_done, at, NULL);
    qio_task_run_in_thread(task, reconnect_worker, at, NULL, NULL);
}

VFIOUserReconnect *vfio_user_reconnect_new(const SocketAddress *addr,
                                           const char *name,
                                           uint32_t interval_ms,
                                           uint32_t timeout_ms,
                                           uint32_t poll_max_ns,
                                           DeviceState *owner,
                                           VFIOUserRestoreFunc restore,
                                           void *opaque)
{
    VFIOUserReconnect *rc = g_new0(VFIOUserReconnect, 1);

    rc->addr = addr ? QAPI_CLONE(SocketAddress, addr) : NULL;
    rc->name = g_strdup(name);
    rc->interval_ms = MAX(interval_ms, 1);
    rc->timeout_ms = timeout_ms;
    rc->poll_max_ns = poll_max_ns;
    rc->guard = &owner->mem_reentrancy_guard;
    rc->owner = OBJECT(owner);
    rc->restore = restore;
    rc->opaque = opaque;
    rc->timer = timer_new_ms(QEMU_CLOCK_REALTIME, reconnect_timer_cb, rc);
    return rc;
}

void vfio_user_reconnect_start(VFIOUserReconnect *rc)
{
    int64_t now = qemu_clock_get_ms(QEMU_CLOCK_REALTIME);

    /* Back so briefly that this is one more failed attempt. */
    if (!rc->restored_at ||
        now - rc->restored_at >= VFIO_USER_RECONNECT_STABLE_MS) {
        rc->failures = 0;
    } else {
        rc->failures++;
    }
    rc->down = true;
    if (rc->addr) {
        reconnect_schedule(rc);
    }
}

bool vfio_user_reconnect_with(VFIOUserReconnect *rc, QIOChannelSocket *sioc,
                              Error **errp)
{
    VFIOUserProxy *proxy = NULL;

    if (!rc->down) {
        error_setg(errp, "the device is connected to its server");
        return false;
    }
    trace_vfio_user_reconnect_attempt(rc->name, rc->failures);
    if (!reconnect_open(rc, sioc, &proxy, errp)) {
        vfio_user_disconnect(proxy);
        return false;
    }
    return reconnect_restore(rc, proxy, errp);
}

void vfio_user_reconnect_free(VFIOUserReconnect *rc)
{
    if (!rc) {
        return;
    }
    timer_free(rc->timer);
    rc->timer = NULL;
    if (rc->connecting) {
        /* reconnect_connected() comes, and frees it then. */
        rc->orphaned = true;
        return;
    }
    qapi_free_SocketAddress(rc->addr);
    g_free(rc->name);
    g_free(rc);
}
