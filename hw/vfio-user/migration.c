/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vfio-user client: the device's migration over the socket.
 *
 * hw/vfio/migration.c drives a device through VFIO_DEVICE_FEATURE (the
 * migration state machine, DMA logging) and a data fd.  vfio-user
 * carries the same features in VFIO_USER_DEVICE_FEATURE and the data in
 * VFIO_USER_MIG_DATA_READ/WRITE (docs/interop/vfio-user.rst of QEMU
 * 10.2; 10.0's copy describes a design the protocol dropped).  These are
 * the device operations that translate: the kernel's structures point
 * at arrays (DMA logging's ranges and bitmap) that the wire carries
 * inline, and a server's answers are checked before hw/vfio sees them.
 */

#include "qemu/osdep.h"
#include "qemu/units.h"
#include "hw/vfio-user/device.h"
#include "hw/vfio-user/migration.h"
#include "trace.h"

/* hw/vfio asks for two ranges (below and above 4 GiB); allow some more */
#define VFIO_USER_MAX_LOG_RANGES    64

static VFIOUserProxy *proxy_of(VFIODevice *vbasedev)
{
    return vfio_user_device_of(vbasedev)->proxy;
}

static int G_GNUC_PRINTF(2, 3) bad_reply(VFIODevice *vbasedev,
                                         const char *fmt, ...)
{
    va_list ap;
    int ret;

    va_start(ap, fmt);
    ret = vfio_user_device_bad_replyv(vbasedev, fmt, ap);
    va_end(ap);
    return ret;
}

/* Bytes of payload one request may move: the server's limit, and ours */
static size_t xfer_limit(VFIODevice *vbasedev)
{
    const VFIOUserPeerCaps *caps = vfio_user_peer_caps(proxy_of(vbasedev));

    return MIN(caps->max_data_xfer_size, VFIO_USER_CLIENT_MAX_XFER);
}

/*
 * Send a DEVICE_FEATURE request with @data_len bytes of data and take up
 * to @reply_max bytes of the reply's data into @reply_data.  Returns the
 * length of the reply's data, or -errno.  The reply must echo the flags.
 */
static ssize_t feature_request(VFIODevice *vbasedev, uint32_t flags,
                               const void *data, size_t data_len,
                               void *reply_data, size_t reply_max)
{
    VFIOUserDeviceFeature msg = {
        .argsz = sizeof(msg) + MAX(data_len, reply_max),
        .flags = flags,
    };
    struct iovec iov[2] = {
        { .iov_base = &msg, .iov_len = sizeof(msg) },
        { .iov_base = (void *)data, .iov_len = data_len },
    };
    g_autofree uint8_t *buf = g_malloc(sizeof(msg) + reply_max);
    VFIOUserReply reply = { .buf = buf, .max = sizeof(msg) + reply_max };
    VFIOUserDeviceFeature *r = (VFIOUserDeviceFeature *)buf;
    int ret;

    ret = vfio_user_request(proxy_of(vbasedev), VFIO_USER_DEVICE_FEATURE,
                            iov, data_len ? 2 : 1, NULL, 0, &reply);
    trace_vfio_user_device_feature(vbasedev->name, flags, data_len, ret);
    if (ret < 0) {
        return ret;
    }
    if (reply.len < sizeof(*r) || reply.len > sizeof(*r) + reply_max ||
        r->flags != flags) {
        return bad_reply(vbasedev, "DEVICE_FEATURE 0x%x: reply of %zu bytes "
                         "(at most %zu) with flags 0x%x", flags, reply.len,
                         sizeof(*r) + reply_max,
                         reply.len >= sizeof(*r) ? r->flags : 0);
    }
    if (reply.len > sizeof(*r)) {
        memcpy(reply_data, r->data, reply.len - sizeof(*r));
    }
    return reply.len - sizeof(*r);
}

static int feature_migration(VFIODevice *vbasedev, uint32_t flags,
                             struct vfio_device_feature_migration *mig)
{
    uint64_t mig_flags;
    ssize_t len;

    if (flags & VFIO_DEVICE_FEATURE_SET) {
        return -EINVAL;         /* read-only, as in the kernel */
    }
    len = feature_request(vbasedev, flags, NULL, 0, &mig_flags,
                          sizeof(mig_flags));
    if (len < 0) {
        return len;
    }
    if (len != sizeof(mig_flags)) {
        return bad_reply(vbasedev, "MIGRATION feature of %zd bytes", len);
    }
    /* vfio-user has no P2P states: a server that says so is not heard */
    mig->flags = mig_flags & (VFIO_MIGRATION_STOP_COPY |
                              VFIO_MIGRATION_PRE_COPY);
    return 0;
}

static bool mig_state_valid(uint32_t state)
{
    return state <= VFIO_DEVICE_STATE_PRE_COPY &&
           state != VFIO_DEVICE_STATE_RUNNING_P2P;
}

static int feature_mig_state(VFIODevice *vbasedev, uint32_t flags,
                             struct vfio_device_feature_mig_state *state)
{
    VFIOUserMigState msg = {
        .device_state = state->device_state,
        .data_fd = UINT32_MAX,
    };
    VFIOUserMigState r;
    bool set = flags & VFIO_DEVICE_FEATURE_SET;
    ssize_t len;

    /* ERROR is where a device falls, not a state to ask for */
    if (set && (!mig_state_valid(msg.device_state) ||
                msg.device_state == VFIO_DEVICE_STATE_ERROR)) {
        return -EINVAL;
    }
    len = feature_request(vbasedev, flags, set ? &msg : NULL,
                          set ? sizeof(msg) : 0, &r, sizeof(r));
    if (len < 0) {
        goto out;
    }
    if (len != sizeof(r) || !mig_state_valid(r.device_state) ||
        (set && r.device_state != msg.device_state)) {
        len = bad_reply(vbasedev, "MIG_DEVICE_STATE reply of %zd bytes, "
                        "state %u (asked for %u)", len,
                        len == sizeof(r) ? r.device_state : 0,
                        set ? msg.device_state : 0);
        goto out;
    }
    state->device_state = r.device_state;
    /* The data moves by message; whatever the server put here is not ours */
    state->data_fd = -1;
    return 0;

out:
    /*
     * RUNNING and STOP are where hw/vfio recovers to.  A server that
     * cannot reach them leaves the device in a state nobody knows: hw/vfio
     * would reset it, abort QEMU if that failed too, and at exit report
     * the error through a migration state that is gone.  Drop the server
     * instead: a device without one neither runs nor changes, so both
     * states are true of it, and the server a reconnect finds starts
     * RUNNING.
     */
    if (len < 0 && set &&
        (msg.device_state == VFIO_DEVICE_STATE_RUNNING ||
         msg.device_state == VFIO_DEVICE_STATE_STOP)) {
        if (!vfio_user_is_dead(proxy_of(vbasedev))) {
            vfio_user_kill(proxy_of(vbasedev), ECONNRESET, "the device could "
                           "not be set %s: %s",
                           msg.device_state == VFIO_DEVICE_STATE_RUNNING ?
                           "running" : "stopped", strerror(-len));
        }
        trace_vfio_user_mig_state_moot(vbasedev->name, msg.device_state);
        state->data_fd = -1;
        return 0;
    }
    return len < 0 ? len : 0;
}

static int feature_logging_start(VFIODevice *vbasedev, uint32_t flags,
                        struct vfio_device_feature_dma_logging_control *ctl)
{
    const struct vfio_device_feature_dma_logging_range *ranges =
        (const void *)(uintptr_t)ctl->ranges;
    g_autofree uint8_t *data = NULL;
    VFIOUserDMALoggingControl *wire;
    size_t len;
    ssize_t ret;

    if (!(flags & VFIO_DEVICE_FEATURE_SET) ||
        ctl->num_ranges > VFIO_USER_MAX_LOG_RANGES) {
        return -EINVAL;
    }
    len = sizeof(*wire) + ctl->num_ranges * sizeof(VFIOUserDMALoggingRange);
    data = g_malloc0(len);
    wire = (VFIOUserDMALoggingControl *)data;
    wire->page_size = ctl->page_size;
    wire->num_ranges = ctl->num_ranges;
    for (uint32_t i = 0; i < ctl->num_ranges; i++) {
        VFIOUserDMALoggingRange r = {
            .iova = ranges[i].iova,
            .length = ranges[i].length,
        };

        memcpy(data + sizeof(*wire) + i * sizeof(r), &r, sizeof(r));
    }
    ret = feature_request(vbasedev, flags, data, len, data, len);
    if (ret < 0) {
        return ret;
    }
    if (ret < sizeof(*wire) || !is_power_of_2(wire->page_size)) {
        return bad_reply(vbasedev, "DMA_LOGGING_START reply of %zd bytes",
                         ret);
    }
    ctl->page_size = wire->page_size;
    return 0;
}

/*
 * One DMA_LOGGING_REPORT of @pages pages from @iova into @bitmap (whole
 * 64-bit words, as many as @pages needs).
 */
static int logging_report_part(VFIODevice *vbasedev, uint32_t flags,
                               uint64_t iova, uint64_t pages,
                               uint64_t page_size, uint64_t *bitmap)
{
    VFIOUserDMALoggingReport req = {
        .iova = iova,
        .length = pages * page_size,
        .page_size = page_size,
    };
    size_t words = DIV_ROUND_UP(pages, 64);
    size_t max = sizeof(req) + words * sizeof(uint64_t);
    g_autofree uint8_t *buf = g_malloc(max);
    VFIOUserDMALoggingReport *r = (VFIOUserDMALoggingReport *)buf;
    ssize_t len;

    len = feature_request(vbasedev, flags, &req, sizeof(req), buf, max);
    if (len < 0) {
        return len;
    }
    if (len != max || r->iova != req.iova || r->length != req.length ||
        r->page_size != req.page_size) {
        return bad_reply(vbasedev, "DMA_LOGGING_REPORT of 0x%" PRIx64
                         "+0x%" PRIx64 ": reply of %zd bytes, %zu wanted",
                         req.iova, req.length, len, max);
    }
    memcpy(bitmap, buf + sizeof(req), words * sizeof(uint64_t));
    /* Bits past the range must be zero: do not take the server's word */
    if (pages % 64) {
        bitmap[words - 1] &= MAKE_64BIT_MASK(0, pages % 64);
    }
    return 0;
}

/*
 * The kernel writes the whole bitmap through a pointer; vfio-user sends
 * it back in the reply, so a large range goes in parts whose bitmaps
 * fit in one transfer, each a whole number of bitmap words.
 */
static int feature_logging_report(VFIODevice *vbasedev, uint32_t flags,
                        struct vfio_device_feature_dma_logging_report *rep)
{
    uint64_t *bitmap = (uint64_t *)(uintptr_t)rep->bitmap;
    uint64_t part_pages, pages, done = 0;

    if (flags != (VFIO_DEVICE_FEATURE_GET |
                  VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT) ||
        !is_power_of_2(rep->page_size) || !rep->length ||
        rep->length % rep->page_size) {
        return -EINVAL;
    }
    pages = rep->length / rep->page_size;
    part_pages = xfer_limit(vbasedev) > sizeof(VFIOUserDMALoggingReport) ?
                 (xfer_limit(vbasedev) - sizeof(VFIOUserDMALoggingReport)) /
                 sizeof(uint64_t) * 64 : 0;
    part_pages = MAX(part_pages, 64);
    while (done < pages) {
        uint64_t n = MIN(pages - done, part_pages);
        int ret = logging_report_part(vbasedev, flags,
                                      rep->iova + done * rep->page_size, n,
                                      rep->page_size, bitmap + done / 64);

        if (ret) {
            return ret;
        }
        done += n;
    }
    return 0;
}

/*
 * How much the device has left to send once stopped.  vfio-user lists
 * no such feature, though a server may know it as the kernel's: ask.
 * A server that cannot tell gets 0, not an error: hw/vfio would count
 * 100 GiB, and a migration would never converge (any guess much above
 * what an idle VM moves in 300 ms keeps it from converging too).  The
 * device's data is then left out of the downtime estimate.
 */
static int feature_mig_data_size(VFIODevice *vbasedev, uint32_t flags,
                                 struct vfio_device_feature_mig_data_size *sz)
{
    uint64_t len;
    ssize_t ret;

    if (flags != (VFIO_DEVICE_FEATURE_GET |
                  VFIO_DEVICE_FEATURE_MIG_DATA_SIZE)) {
        return -EINVAL;
    }
    ret = feature_request(vbasedev, flags, NULL, 0, &len, sizeof(len));
    if (ret >= 0 && ret != sizeof(len)) {
        return bad_reply(vbasedev, "MIG_DATA_SIZE of %zd bytes", ret);
    }
    sz->stop_copy_length = ret < 0 ? 0 : len;
    return 0;
}

/*
 * Under secure-dma the server touches guest memory only through our
 * DMA_READ/WRITE service, which marks the pages it writes itself (dma.c):
 * the device's own log is neither needed nor worth trusting.
 */
static bool logging_feature(uint32_t index)
{
    return index == VFIO_DEVICE_FEATURE_DMA_LOGGING_START ||
           index == VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP ||
           index == VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT;
}

/* The size of a feature's data in the kernel's structures */
static size_t feature_data_size(uint32_t index)
{
    switch (index) {
    case VFIO_DEVICE_FEATURE_MIGRATION:
        return sizeof(struct vfio_device_feature_migration);
    case VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE:
        return sizeof(struct vfio_device_feature_mig_state);
    case VFIO_DEVICE_FEATURE_MIG_DATA_SIZE:
        return sizeof(struct vfio_device_feature_mig_data_size);
    case VFIO_DEVICE_FEATURE_DMA_LOGGING_START:
        return sizeof(struct vfio_device_feature_dma_logging_control);
    case VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT:
        return sizeof(struct vfio_device_feature_dma_logging_report);
    default:
        return 0;
    }
}

/* The features vfio-user carries: the migration ones */
static bool feature_known(uint32_t index)
{
    return index == VFIO_DEVICE_FEATURE_MIGRATION ||
           index == VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE ||
           index == VFIO_DEVICE_FEATURE_MIG_DATA_SIZE ||
           logging_feature(index);
}

/* A request that carries no data and takes none back: a probe, a stop */
static int feature_no_data(VFIODevice *vbasedev, uint32_t flags)
{
    ssize_t ret = feature_request(vbasedev, flags, NULL, 0, NULL, 0);

    return ret < 0 ? ret : 0;
}

int vfio_user_device_feature(VFIODevice *vbasedev,
                             struct vfio_device_feature *feature)
{
    uint32_t flags = feature->flags;
    uint32_t index = flags & VFIO_DEVICE_FEATURE_MASK;
    uint32_t action = flags & (VFIO_DEVICE_FEATURE_GET |
                               VFIO_DEVICE_FEATURE_SET);

    if (flags & ~(VFIO_DEVICE_FEATURE_MASK | VFIO_DEVICE_FEATURE_GET |
                  VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_PROBE) ||
        (action == (VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_SET) &&
         !(flags & VFIO_DEVICE_FEATURE_PROBE))) {
        return -EINVAL;
    }
    if (!feature_known(index) ||
        (logging_feature(index) && vfio_user_device_of(vbasedev)->secure_dma)) {
        return -ENOTTY;
    }
    if (flags & VFIO_DEVICE_FEATURE_PROBE) {
        /* Data is not used for probing; the reply echoes the request */
        return feature_no_data(vbasedev, flags);
    }
    if (feature->argsz < sizeof(*feature) + feature_data_size(index)) {
        return -EINVAL;         /* as the kernel: no room for the data */
    }
    switch (index) {
    case VFIO_DEVICE_FEATURE_MIGRATION:
        return feature_migration(vbasedev, flags, (void *)feature->data);
    case VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE:
        return feature_mig_state(vbasedev, flags, (void *)feature->data);
    case VFIO_DEVICE_FEATURE_MIG_DATA_SIZE:
        return feature_mig_data_size(vbasedev, flags, (void *)feature->data);
    case VFIO_DEVICE_FEATURE_DMA_LOGGING_START:
        return feature_logging_start(vbasedev, flags, (void *)feature->data);
    case VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP:
        return feature_no_data(vbasedev, flags);
    case VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT:
        return feature_logging_report(vbasedev, flags,
                                      (void *)feature->data);
    default:
        g_assert_not_reached();     /* feature_known() */
    }
}

/*
 * MIG_DATA_READ, a transfer at a time; a short one means the server has
 * no more for now.
 */
ssize_t vfio_user_mig_data_read(VFIODevice *vbasedev, void *buf,
                                size_t size)
{
    size_t limit = xfer_limit(vbasedev), done = 0;
    g_autofree uint8_t *rbuf = g_malloc(sizeof(VFIOUserMigDataHdr) +
                                        MIN(size, limit));

    while (done < size) {
        uint32_t want = MIN(size - done, limit);
        VFIOUserMigDataHdr msg = {
            .argsz = sizeof(msg) + want,
            .size = want,
        };
        VFIOUserMigDataHdr *r = (VFIOUserMigDataHdr *)rbuf;
        struct iovec iov = { .iov_base = &msg, .iov_len = sizeof(msg) };
        VFIOUserReply reply = { .buf = rbuf, .max = sizeof(msg) + want };
        int ret;

        ret = vfio_user_request(proxy_of(vbasedev), VFIO_USER_MIG_DATA_READ,
                                &iov, 1, NULL, 0, &reply);
        if (ret < 0) {
            trace_vfio_user_mig_data(vbasedev->name, false, want, ret);
            return ret;
        }
        if (reply.len < sizeof(*r) || r->size > want ||
            reply.len != sizeof(*r) + r->size) {
            return bad_reply(vbasedev, "MIG_DATA_READ of %u bytes: reply "
                             "of %zu bytes, size %u", want, reply.len,
                             reply.len >= sizeof(*r) ? r->size : 0);
        }
        trace_vfio_user_mig_data(vbasedev->name, false, want, r->size);
        memcpy((uint8_t *)buf + done, r + 1, r->size);
        done += r->size;
        if (r->size < want) {
            break;
        }
    }
    return done;
}

int vfio_user_mig_data_write(VFIODevice *vbasedev, const void *buf,
                             size_t size)
{
    size_t limit = xfer_limit(vbasedev), done = 0;

    while (done < size) {
        uint32_t n = MIN(size - done, limit);
        VFIOUserMigDataHdr msg = { .argsz = sizeof(msg), .size = n };
        struct iovec iov[2] = {
            { .iov_base = &msg, .iov_len = sizeof(msg) },
            { .iov_base = (uint8_t *)buf + done, .iov_len = n },
        };
        int ret;

        ret = vfio_user_request(proxy_of(vbasedev), VFIO_USER_MIG_DATA_WRITE,
                                iov, 2, NULL, 0, NULL);
        trace_vfio_user_mig_data(vbasedev->name, true, n, ret);
        if (ret < 0) {
            return ret;
        }
        done += n;
    }
    return 0;
}

int vfio_user_migration_flags(VFIODevice *vbasedev, uint64_t *flags)
{
    uint64_t buf[DIV_ROUND_UP(sizeof(struct vfio_device_feature) +
                              sizeof(struct vfio_device_feature_migration),
                              sizeof(uint64_t))] = {};
    struct vfio_device_feature *feature = (void *)buf;
    int ret;

    feature->argsz = sizeof(buf);
    feature->flags = VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIGRATION;
    ret = vfio_user_device_feature(vbasedev, feature);
    if (!ret) {
        *flags = ((struct vfio_device_feature_migration *)feature->data)->flags;
    }
    return ret;
}
