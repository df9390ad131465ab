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
#include "qobject/qdict.h"
#include "qobject/qjson.h"
#include "qobject/qnum.h"
#include "vfio-user-server-int.h"

static unsigned vu_max_rx_fds(VUTestServer *s)
{
    return s->cfg.max_msg_fds ? MIN(s->cfg.max_msg_fds, VU_MAX_RX_FDS)
                              : VFIO_USER_DEF_MAX_FDS;
}

/*
 * A capability the client may leave out (then *@val keeps the spec's
 * default); present, it must be an integer >= 0, and not 0 unless
 * @zero_ok.
 */
static bool vu_caps_uint(QDict *caps, const char *key, bool zero_ok,
                         uint64_t *val)
{
    QObject *obj = qdict_get(caps, key);
    QNum *num = qobject_to(QNum, obj);
    uint64_t v;

    if (!obj) {
        return true;
    }
    if (!num || !qnum_get_try_uint(num, &v) || (!v && !zero_ok)) {
        return false;
    }
    *val = v;
    return true;
}

/* A member that may be absent, and must be an object if present */
static bool vu_caps_dict(QDict *dict, const char *key, QDict **out)
{
    QObject *obj = qdict_get(dict, key);

    *out = qobject_to(QDict, obj);
    return !obj || *out;
}

/* The client's capabilities, from its version data (@top), into @ci */
static bool vu_caps_from_dict(QDict *top, VUTestClientInfo *ci)
{
    QDict *caps, *migr;
    uint64_t fds = ci->max_msg_fds, xfer = ci->max_data_xfer_size;
    uint64_t maps = ci->max_dma_maps;

    if (!top || !vu_caps_dict(top, VFIO_USER_CAP, &caps)) {
        return false;
    }
    if (!caps) {
        return true;
    }
    if (!vu_caps_uint(caps, VFIO_USER_CAP_MAX_FDS, true, &fds) ||
        !vu_caps_uint(caps, VFIO_USER_CAP_MAX_XFER, false, &xfer) ||
        !vu_caps_uint(caps, VFIO_USER_CAP_PGSIZES, false, &ci->pgsizes) ||
        !vu_caps_uint(caps, VFIO_USER_CAP_MAX_DMA_MAPS, false, &maps) ||
        !vu_caps_dict(caps, VFIO_USER_CAP_MIGR, &migr) ||
        (migr && !vu_caps_uint(migr, VFIO_USER_CAP_PGSIZE, false,
                               &ci->migr_pgsize))) {
        return false;
    }
    ci->max_msg_fds = MIN(fds, VFIO_USER_MAX_MAX_FDS);
    ci->max_data_xfer_size = MIN(xfer, VFIO_USER_MAX_MAX_XFER);
    ci->max_dma_maps = MIN(maps, UINT32_MAX);
    return true;
}

/* Parse the client's version data with QEMU's JSON parser into @ci */
static bool vu_parse_caps(const char *json, VUTestClientInfo *ci)
{
    QObject *obj = qobject_from_json(json, NULL);
    bool ok = vu_caps_from_dict(qobject_to(QDict, obj), ci);

    qobject_unref(obj);
    return ok;
}

/* Our capabilities, as configured: a 0 leaves one out */
static void vu_put_caps(VUTestServer *s, GByteArray *out)
{
    const struct {
        const char *name;
        uint64_t value;
    } ours[] = {
        { VFIO_USER_CAP_MAX_FDS, s->cfg.max_msg_fds },
        { VFIO_USER_CAP_MAX_XFER, s->cfg.max_data_xfer_size },
        { VFIO_USER_CAP_PGSIZES, s->cfg.pgsizes },
        { VFIO_USER_CAP_MAX_DMA_MAPS, s->cfg.max_dma_maps },
    };
    g_autoptr(QDict) top = qdict_new();
    QDict *caps = qdict_new();
    g_autoptr(GString) json = NULL;

    for (size_t i = 0; i < ARRAY_SIZE(ours); i++) {
        if (ours[i].value) {
            qdict_put_obj(caps, ours[i].name,
                          QOBJECT(qnum_from_uint(ours[i].value)));
        }
    }
    qdict_put(top, VFIO_USER_CAP, caps);
    json = qobject_to_json(QOBJECT(top));
    g_byte_array_append(out, (uint8_t *)json->str, json->len + 1);
}

static int vu_handle_version(VUTestServer *s, VUMsg *msg, VUReply *r)
{
    VUTestClientInfo ci = {
        .max_msg_fds = VFIO_USER_DEF_MAX_FDS,
        .max_data_xfer_size = VFIO_USER_DEF_MAX_XFER,
        .pgsizes = VFIO_USER_DEF_PGSIZE,
        .max_dma_maps = VFIO_USER_DEF_MAX_DMA_MAPS,
    };
    VFIOUserVersion v;

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
        if (nul > data && !vu_parse_caps(data, &ci)) {
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
    vu_put_caps(s, r->payload);
    return 0;
}

static int vu_handle_unsupported(VUTestServer *s, VUMsg *msg, VUReply *r)
{
    return -ENOTSUP;
}

static int vu_handle_server_to_client(VUTestServer *s, VUMsg *msg,
                                      VUReply *r)
{
    return -EINVAL;
}

/*
 * Every command the server knows; a command not here (or 0) is
 * answered with ENOSYS.  Only DMA_MAP and SET_IRQS may carry fds: a
 * request of any other command that does is refused with EINVAL.
 */
typedef struct VUCommand {
    VUHandler handle;
    bool takes_fds;
} VUCommand;

static const VUCommand vu_commands[VFIO_USER_MAX] = {
    [VFIO_USER_VERSION] = { vu_handle_version },
    [VFIO_USER_DMA_MAP] = { vu_handle_dma_map, .takes_fds = true },
    [VFIO_USER_DMA_UNMAP] = { vu_handle_dma_unmap },
    [VFIO_USER_DEVICE_GET_INFO] = { vu_handle_get_info },
    [VFIO_USER_DEVICE_GET_REGION_INFO] = { vu_handle_get_region_info },
    [VFIO_USER_DEVICE_GET_REGION_IO_FDS] = { vu_handle_unsupported },
    [VFIO_USER_DEVICE_GET_IRQ_INFO] = { vu_handle_get_irq_info },
    [VFIO_USER_DEVICE_SET_IRQS] = { vu_handle_set_irqs, .takes_fds = true },
    [VFIO_USER_REGION_READ] = { vu_handle_region_read },
    [VFIO_USER_REGION_WRITE] = { vu_handle_region_write },
    [VFIO_USER_DMA_READ] = { vu_handle_server_to_client },
    [VFIO_USER_DMA_WRITE] = { vu_handle_server_to_client },
    [VFIO_USER_DEVICE_RESET] = { vu_handle_reset },
    [VFIO_USER_DIRTY_PAGES] = { vu_handle_unsupported },
    [VFIO_USER_DEVICE_FEATURE] = { vu_handle_device_feature },
    [VFIO_USER_MIG_DATA_READ] = { vu_handle_mig_data_read },
    [VFIO_USER_MIG_DATA_WRITE] = { vu_handle_mig_data_write },
};

static int vu_dispatch(VUTestServer *s, VUMsg *msg, VUReply *r)
{
    unsigned cmd = msg->hdr.command;
    const VUCommand *c = cmd < VFIO_USER_MAX ? &vu_commands[cmd] : NULL;

    if (msg->nfds && !(c && c->takes_fds)) {
        return -EINVAL;
    }
    return c && c->handle ? c->handle(s, msg, r) : -ENOSYS;
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
        vu_record_stale_reply(s, msg);
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

/*
 * As the spec asks: drop the client's mappings and fds, keep the rest.
 * A migration's transfer session and DMA logging belong to the client:
 * they end, and the device runs again for the next one.
 */
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
    vu_unmap_all(s);
    for (i = 0; i < VFIO_PCI_NUM_IRQS; i++) {
        vu_irq_disable(s, i);
    }
    vu_mig_disconnect(s);
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

VUTestServer *vu_test_server_new(const char *socket_path,
                                 const VUTestServerConfig *cfg)
{
    VUTestServerConfig def;
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    VUTestServer *s;

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
    vu_log_init(s);
    vu_irqs_init(s);
    vu_config_init(s);
    vu_msix_table_init(s);
    vu_mig_init(s);

    s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    memcpy(addr.sun_path, socket_path, strlen(socket_path) + 1);
    unlink(socket_path);
    if (s->wake_fd < 0 || !vu_bar1_init(s) || s->listen_fd < 0 ||
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
    vu_unmap_all(s);
    for (i = 0; i < VFIO_PCI_NUM_IRQS; i++) {
        vu_irq_disable(s, i);
        g_free(s->irqs[i].v);
    }
    vu_bar1_free(s);
    g_array_unref(s->mappings);
    vu_mig_free(s);
    vu_log_free(s);
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
