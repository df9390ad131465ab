/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vfio-user client: finding the server again after the connection died.
 *
 * A restarted server listens on the same socket path again.  Every
 * attempt to reach it runs from the main loop without blocking it: a
 * timer starts an asynchronous connect (a thread of QIOTask's does the
 * connect(), which a server that listens but does not accept would
 * block), and its completion, back in the main loop with the BQL, hands
 * the new connection to the device, which restores itself over it
 * (restore.c) or refuses it.
 *
 * Attempts back off: each failure doubles the wait, from the device's
 * reconnect-ms up to VFIO_USER_RECONNECT_MAX_MS.  A server that accepts
 * and dies again soon after a restore (before VFIO_USER_RECONNECT_STABLE_MS)
 * counts as a failure too, so a flapping server gets the same backoff
 * as an absent one.  Only the first failure of an outage is logged;
 * every attempt has a trace event.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/clone-visitor.h"
#include "qapi/qapi-visit-sockets.h"
#include "qemu/error-report.h"
#include "qemu/main-loop.h"
#include "qemu/timer.h"
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
    MemReentrancyGuard *guard;
    VFIOUserRestoreFunc restore;
    void *opaque;

    QEMUTimer *timer;
    unsigned failures;          /* attempts failed since the last success */
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

static void reconnect_failed(VFIOUserReconnect *rc, Error *err)
{
    trace_vfio_user_reconnect_failed(rc->name, error_get_pretty(err));
    if (!rc->said_failure) {
        rc->said_failure = true;
        warn_report("vfio-user: %s: cannot reconnect to the server: %s; "
                    "retrying, with backoff up to %u ms", rc->name,
                    error_get_pretty(err),
                    MAX(rc->interval_ms, VFIO_USER_RECONNECT_MAX_MS));
    }
    error_free(err);
    rc->failures++;
    if (rc->addr && rc->down) {
        reconnect_schedule(rc);
    }
}

/* Hand @sioc to the device: true if it is back. */
static bool reconnect_restore(VFIOUserReconnect *rc, QIOChannelSocket *sioc,
                              Error **errp)
{
    VFIOUserProxy *proxy;

    proxy = vfio_user_proxy_new(sioc, rc->name, rc->timeout_ms, rc->guard,
                                errp);
    if (!proxy) {
        return false;
    }
    /* Until the device takes it, its death is this attempt's failure. */
    vfio_user_set_report_death(proxy, false);
    if (!rc->restore(rc->opaque, proxy, errp)) {
        vfio_user_disconnect(proxy);
        return false;
    }
    vfio_user_set_report_death(proxy, true);
    rc->down = false;
    rc->said_failure = false;
    rc->restored_at = qemu_clock_get_ms(QEMU_CLOCK_REALTIME);
    timer_del(rc->timer);
    info_report("vfio-user: %s: reconnected to the server", rc->name);
    return true;
}

static void reconnect_connected(QIOTask *task, gpointer opaque)
{
    VFIOUserReconnect *rc = opaque;
    QIOChannelSocket *sioc = QIO_CHANNEL_SOCKET(qio_task_get_source(task));
    Error *err = NULL;

    rc->connecting = false;
    if (rc->orphaned) {
        vfio_user_reconnect_free(rc);
        return;
    }
    if (!rc->down) {
        return;                 /* restored meanwhile, by QMP */
    }
    if (qio_task_propagate_error(task, &err) ||
        !reconnect_restore(rc, sioc, &err)) {
        reconnect_failed(rc, err);
    }
}

static void reconnect_timer_cb(void *opaque)
{
    VFIOUserReconnect *rc = opaque;
    QIOChannelSocket *sioc;

    if (rc->connecting || !rc->down) {
        return;
    }
    trace_vfio_user_reconnect_attempt(rc->name, rc->failures);
    rc->connecting = true;
    sioc = qio_channel_socket_new();
    qio_channel_socket_connect_async(sioc, rc->addr, reconnect_connected,
                                     rc, NULL, NULL);
    /* The task holds its own reference to sioc until it is done. */
    object_unref(OBJECT(sioc));
}

VFIOUserReconnect *vfio_user_reconnect_new(const SocketAddress *addr,
                                           const char *name,
                                           uint32_t interval_ms,
                                           uint32_t timeout_ms,
                                           MemReentrancyGuard *guard,
                                           VFIOUserRestoreFunc restore,
                                           void *opaque)
{
    VFIOUserReconnect *rc = g_new0(VFIOUserReconnect, 1);

    rc->addr = addr ? QAPI_CLONE(SocketAddress, addr) : NULL;
    rc->name = g_strdup(name);
    rc->interval_ms = MAX(interval_ms, 1);
    rc->timeout_ms = timeout_ms;
    rc->guard = guard;
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
    if (!rc->down) {
        error_setg(errp, "the device is connected to its server");
        return false;
    }
    trace_vfio_user_reconnect_attempt(rc->name, rc->failures);
    return reconnect_restore(rc, sioc, errp);
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
