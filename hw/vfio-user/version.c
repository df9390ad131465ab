/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vfio-user client: version and capability negotiation.
 *
 * The first message on a connection is VFIO_USER_VERSION: we send our
 * version and, as JSON, the capabilities we have (how many fds a message
 * of the server may carry, the largest data transfer we take); the
 * server answers with its own.  Every capability the server gives is
 * checked against the spec's range and our own limits (protocol.h)
 * before the connection uses it; one it omits keeps the spec's default.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/units.h"
#include "qobject/qdict.h"
#include "qobject/qjson.h"
#include "qobject/qnum.h"
#include "hw/vfio-user/proxy.h"
#include "trace.h"

/* Largest VERSION reply we take: a few capabilities, not a document */
#define VFIO_USER_VERSION_MAX   4096

/* Read an integer capability and check it lies in [min, max]. */
static bool caps_get_uint(QDict *caps, const char *key, uint64_t min,
                          uint64_t max, uint64_t *val, Error **errp)
{
    QObject *obj = qdict_get(caps, key);
    QNum *num;

    if (!obj) {
        return true;            /* absent: keep the spec's default */
    }
    num = qobject_to(QNum, obj);
    if (!num || !qnum_get_try_uint(num, val) || *val < min || *val > max) {
        error_setg(errp, "capability %s must be an integer in [%" PRIu64
                   ", %" PRIu64 "]", key, min, max);
        return false;
    }
    return true;
}

/* Fold the server's capabilities in @json into @caps. */
static bool version_parse_caps(const char *json, VFIOUserPeerCaps *caps,
                               Error **errp)
{
    g_autoptr(QDict) top = NULL;
    QObject *obj, *cobj;
    QDict *dict;
    uint64_t v;

    obj = qobject_from_json(json, errp);
    if (!obj) {
        return false;
    }
    top = qobject_to(QDict, obj);
    if (!top) {
        qobject_unref(obj);
        error_setg(errp, "version data is not a JSON object");
        return false;
    }
    cobj = qdict_get(top, VFIO_USER_CAP);
    if (!cobj) {
        return true;
    }
    dict = qobject_to(QDict, cobj);
    if (!dict) {
        error_setg(errp, "'" VFIO_USER_CAP "' is not a JSON object");
        return false;
    }

    v = caps->max_msg_fds;
    if (!caps_get_uint(dict, VFIO_USER_CAP_MAX_FDS, 1, VFIO_USER_MAX_MAX_FDS,
                       &v, errp)) {
        return false;
    }
    /* A server may take more than one sendmsg() of ours carries. */
    caps->max_msg_fds = MIN(v, VFIO_USER_CLIENT_SEND_FDS);

    v = caps->max_data_xfer_size;
    if (!caps_get_uint(dict, VFIO_USER_CAP_MAX_XFER, sizeof(uint64_t),
                       VFIO_USER_MAX_MAX_XFER, &v, errp)) {
        return false;
    }
    caps->max_data_xfer_size = v;

    v = caps->pgsizes;
    if (!caps_get_uint(dict, VFIO_USER_CAP_PGSIZES, 1, UINT64_MAX, &v,
                       errp)) {
        return false;
    }
    if (!(v & qemu_real_host_page_size())) {
        error_setg(errp, "capability " VFIO_USER_CAP_PGSIZES " 0x%" PRIx64
                   " does not include the host page size", v);
        return false;
    }
    caps->pgsizes = v;

    v = caps->max_dma_maps;
    if (!caps_get_uint(dict, VFIO_USER_CAP_MAX_DMA_MAPS, 1, UINT32_MAX, &v,
                       errp)) {
        return false;
    }
    caps->max_dma_maps = v;
    return true;
}

/* Our capabilities, as the JSON the VERSION message carries. */
static GString *version_client_caps(void)
{
    g_autoptr(QDict) top = qdict_new();
    QDict *caps = qdict_new();

    qdict_put_int(caps, VFIO_USER_CAP_MAX_FDS, VFIO_USER_CLIENT_MAX_FDS);
    qdict_put_int(caps, VFIO_USER_CAP_MAX_XFER, VFIO_USER_CLIENT_MAX_XFER);
    qdict_put(top, VFIO_USER_CAP, caps);
    return qobject_to_json(QOBJECT(top));
}

bool vfio_user_negotiate(VFIOUserProxy *proxy, Error **errp)
{
    g_autoptr(GString) json = version_client_caps();
    VFIOUserVersion ver = {
        .major = VFIO_USER_MAJOR_VER,
        .minor = VFIO_USER_MINOR_VER,
    };
    struct iovec iov[2] = {
        { .iov_base = &ver, .iov_len = sizeof(ver) },
        /* the NUL too: the spec's version data is a C string */
        { .iov_base = json->str, .iov_len = json->len + 1 },
    };
    g_autofree char *buf = g_malloc0(VFIO_USER_VERSION_MAX + 1);
    VFIOUserReply reply = { .buf = buf, .max = VFIO_USER_VERSION_MAX };
    VFIOUserVersion *rver = (VFIOUserVersion *)buf;
    const char *data = buf + sizeof(*rver);
    VFIOUserPeerCaps caps = *vfio_user_peer_caps(proxy);
    size_t datalen;
    int ret;

    ret = vfio_user_request(proxy, VFIO_USER_VERSION, iov, 2, NULL, 0,
                            &reply);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "version negotiation failed");
        return false;
    }
    if (reply.len < sizeof(*rver) || reply.len > VFIO_USER_VERSION_MAX) {
        error_setg(errp, "VERSION reply of %zu bytes", reply.len);
        return false;
    }
    if (rver->major != VFIO_USER_MAJOR_VER ||
        rver->minor > VFIO_USER_MINOR_VER) {
        error_setg(errp, "server answered version %u.%u to our %u.%u",
                   rver->major, rver->minor,
                   VFIO_USER_MAJOR_VER, VFIO_USER_MINOR_VER);
        return false;
    }

    datalen = reply.len - sizeof(*rver);
    if (datalen > 0) {
        Error *err = NULL;

        if (!memchr(data, '\0', datalen)) {
            error_setg(errp, "VERSION data is not NUL-terminated");
            return false;
        }
        if (!version_parse_caps(data, &caps, &err)) {
            error_propagate_prepend(errp, err, "bad VERSION reply: ");
            return false;
        }
    }
    vfio_user_set_peer_caps(proxy, &caps);
    trace_vfio_user_version(vfio_user_name(proxy), rver->major, rver->minor,
                            caps.max_msg_fds, caps.max_data_xfer_size,
                            caps.pgsizes, caps.max_dma_maps);
    return true;
}
