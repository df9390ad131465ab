/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vfio-user client: hw/vfio's device operations (VFIODeviceIOOps) as
 * vfio-user messages.
 *
 * Each operation takes the kernel's structures, as hw/vfio passes them,
 * and checks everything the server answers before hw/vfio sees it: sizes,
 * indexes, counts, the region capability chain.  A server that lies gets
 * -EPROTO (hw/vfio reports "Protocol error") and the reason in the log,
 * never a buffer overrun.  -EINVAL is for what hw/vfio itself asked
 * wrong.
 */

#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "qemu/memfd.h"
#include "qemu/units.h"
#include "hw/vfio-user/device.h"
#include "trace.h"

static VFIOUserProxy *proxy_of(VFIODevice *vbasedev)
{
    return vfio_user_device_of(vbasedev)->proxy;
}

/*
 * The server's answer to @vbasedev's request breaks the protocol or our
 * bounds: say why and fail the operation with -EPROTO.  Only the first
 * reason reaches the log (hw/vfio logs every failed access itself, and
 * a hostile server must not be able to flood it); the trace event has
 * them all.
 */
static int G_GNUC_PRINTF(2, 3) bad_reply(VFIODevice *vbasedev,
                                         const char *fmt, ...)
{
    VFIOUserDevice *udev = vfio_user_device_of(vbasedev);
    g_autofree char *why = NULL;
    va_list ap;

    va_start(ap, fmt);
    why = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    trace_vfio_user_bad_reply(vbasedev->name, why);
    if (!udev->said_bad_reply) {
        udev->said_bad_reply = true;
        error_report("vfio-user: %s: refused the server's answer: %s",
                     vbasedev->name, why);
    }
    return -EPROTO;
}

static int vfio_user_get_device_info(VFIODevice *vbasedev,
                                     struct vfio_device_info *info)
{
    VFIOUserDeviceInfo msg = { .argsz = sizeof(msg) };
    VFIOUserDeviceInfo r;
    struct iovec iov = { .iov_base = &msg, .iov_len = sizeof(msg) };
    VFIOUserReply reply = { .buf = &r, .max = sizeof(r) };
    int ret;

    ret = vfio_user_request(proxy_of(vbasedev), VFIO_USER_DEVICE_GET_INFO,
                            &iov, 1, NULL, 0, &reply);
    if (ret < 0) {
        return ret;
    }
    if (reply.len < sizeof(r) || r.argsz < sizeof(r)) {
        return bad_reply(vbasedev, "DEVICE_GET_INFO reply of %zu bytes",
                         reply.len);
    }
    if (!(r.flags & VFIO_DEVICE_FLAGS_PCI) ||
        r.num_regions <= VFIO_PCI_CONFIG_REGION_INDEX ||
        r.num_regions > VFIO_USER_MAX_REGIONS ||
        r.num_irqs > VFIO_USER_MAX_IRQS) {
        return bad_reply(vbasedev, "device info flags 0x%x, %u regions, "
                         "%u irqs: a PCI device has config space (region "
                         "%d), at most %d regions and %d irqs", r.flags,
                         r.num_regions, r.num_irqs,
                         VFIO_PCI_CONFIG_REGION_INDEX, VFIO_USER_MAX_REGIONS,
                         VFIO_USER_MAX_IRQS);
    }
    info->flags = r.flags & (VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET);
    info->num_regions = r.num_regions;
    info->num_irqs = r.num_irqs;
    trace_vfio_user_device_info(vbasedev->name, r.flags, r.num_regions,
                                r.num_irqs);
    return 0;
}

/*
 * Check the capability chain of a region info of @len bytes: every
 * header and body inside the message, offsets strictly increasing (so it
 * cannot loop) and 8-byte aligned as the kernel lays them out (the
 * structures hold 64-bit fields, which hw/vfio reads in place), and
 * sparse mmap areas inside the region.
 */
static bool region_caps_valid(const struct vfio_region_info *info,
                              size_t len)
{
    uint32_t off = info->cap_offset;
    uint32_t prev = 0;

    while (off) {
        const struct vfio_info_cap_header *hdr;

        if (off < sizeof(*info) || off <= prev || (off % 8) ||
            len < sizeof(*hdr) || off > len - sizeof(*hdr)) {
            return false;
        }
        hdr = (const void *)info + off;
        if (hdr->id == VFIO_REGION_INFO_CAP_SPARSE_MMAP) {
            const struct vfio_region_info_cap_sparse_mmap *sp =
                (const void *)hdr;

            if (len - off < sizeof(*sp) ||
                sp->nr_areas > (len - off - sizeof(*sp)) /
                                sizeof(sp->areas[0])) {
                return false;
            }
            for (uint32_t i = 0; i < sp->nr_areas; i++) {
                uint64_t end = sp->areas[i].offset + sp->areas[i].size;

                if (end < sp->areas[i].offset || end > info->size) {
                    return false;
                }
            }
        } else if (hdr->id == VFIO_REGION_INFO_CAP_TYPE) {
            if (len - off < sizeof(struct vfio_region_info_cap_type)) {
                return false;
            }
        }
        prev = off;
        off = hdr->next;
    }
    return true;
}

/*
 * With secure-dma the server is not trusted, and what it hands us to map
 * into the guest must not be able to hurt QEMU: a file it can shrink
 * later kills QEMU with SIGBUS on the next guest access, and a file on a
 * filesystem that can stall a page fault (FUSE, NFS) freezes the vCPU
 * that touches it.  Only a memfd sealed against shrinking is neither; any
 * other region is accessed by message.
 */
static bool region_fd_safe(VFIOUserDevice *udev, int fd, uint32_t index)
{
    int seals;

    if (!udev->secure_dma) {
        return true;
    }
    seals = fcntl(fd, F_GET_SEALS);
    if (seals >= 0 && (seals & F_SEAL_SHRINK)) {
        return true;
    }
    if (!udev->warned_unsealed_fd) {
        udev->warned_unsealed_fd = true;
        warn_report("vfio-user: %s: region %u's fd is not a memfd sealed "
                    "against shrinking (F_SEAL_SHRINK); with secure-dma=on "
                    "such regions are accessed by message, not mapped",
                    vfio_user_name(udev->proxy), index);
    }
    return false;
}

/*
 * A file shorter than the region it backs would kill QEMU with SIGBUS on
 * the first guest access past its end: map only what the file covers.
 * (A server could still shrink it later: secure-dma rules that out by
 * asking for F_SEAL_SHRINK, region_fd_safe(); without secure-dma the
 * server is trusted with guest memory anyway.)
 */
static bool region_fd_covers(int fd, const struct vfio_region_info *info)
{
    struct stat st;

    if (fstat(fd, &st) < 0) {
        return false;
    }
    /* Not a file (a device node): the kernel checks the mmap itself. */
    return !S_ISREG(st.st_mode) ||
           (uint64_t)st.st_size >= info->offset + info->size;
}

/*
 * Keep one fd per region for the device's lifetime: hw/vfio asks for a
 * region's info several times, and a VFIORegion holds on to the fd it
 * was first given.  Returns the fd to use, or -1.
 */
static int keep_region_fd(VFIOUserDevice *udev, uint32_t index, int fd)
{
    if (index >= udev->num_region_fds) {
        close(fd);
        return -1;
    }
    if (udev->region_fds[index] >= 0) {
        close(fd);
    } else {
        udev->region_fds[index] = fd;
    }
    return udev->region_fds[index];
}

/*
 * hw/vfio asks for some regions' info again long after realize (the ROM
 * when the guest first reads it) and sizes allocations by the answer: a
 * region keeps the size it was first given, for the device's lifetime.
 */
static int region_size_unchanged(VFIODevice *vbasedev,
                                 const struct vfio_region_info *info)
{
    VFIOUserDevice *udev = vfio_user_device_of(vbasedev);
    uint64_t *known;

    if (!udev->region_sizes || info->index >= udev->num_region_fds) {
        return 0;
    }
    known = &udev->region_sizes[info->index];
    if (*known == UINT64_MAX) {
        *known = info->size;
    }
    if (*known != info->size) {
        return bad_reply(vbasedev, "region %u changed size from 0x%" PRIx64
                         " to 0x%llx", info->index, *known, info->size);
    }
    return 0;
}

static int vfio_user_get_region_info(VFIODevice *vbasedev,
                                     struct vfio_region_info *info, int *fd)
{
    VFIOUserDevice *udev = vfio_user_device_of(vbasedev);
    VFIOUserRegionInfo msg = { .argsz = info->argsz, .index = info->index };
    struct iovec iov = { .iov_base = &msg, .iov_len = sizeof(msg) };
    int fds[8];
    VFIOUserReply reply = {
        .buf = info, .max = info->argsz, .fds = fds, .max_fds = ARRAY_SIZE(fds),
    };
    uint32_t index = info->index;
    uint32_t argsz = info->argsz;
    int ret;

    *fd = -1;
    if (index >= vbasedev->num_regions || argsz < sizeof(*info) ||
        argsz > VFIO_USER_MAX_REGION_INFO) {
        return -EINVAL;
    }
    ret = vfio_user_request(udev->proxy, VFIO_USER_DEVICE_GET_REGION_INFO,
                            &iov, 1, NULL, 0, &reply);
    if (ret < 0) {
        goto out_close;
    }
    if (reply.len < sizeof(*info) || info->index != index ||
        info->argsz < sizeof(*info) ||
        info->argsz > VFIO_USER_MAX_REGION_INFO ||
        info->size > INT64_MAX || info->offset > INT64_MAX - info->size) {
        ret = bad_reply(vbasedev, "region %u info: reply of %zu bytes for "
                        "index %u, argsz %u, size 0x%llx, offset 0x%llx",
                        index, reply.len, info->index, info->argsz,
                        info->size, info->offset);
        goto out_close;
    }
    if (info->argsz > argsz) {
        /* Too small: the caller retries with info->argsz. */
        info->flags &= ~VFIO_REGION_INFO_FLAG_CAPS;
        info->cap_offset = 0;
        ret = 0;
        goto out_close;
    }
    if (info->flags & VFIO_REGION_INFO_FLAG_CAPS) {
        if (!region_caps_valid(info, MIN(reply.len, info->argsz))) {
            ret = bad_reply(vbasedev, "region %u info: malformed capability "
                            "chain from offset 0x%x", index,
                            info->cap_offset);
            goto out_close;
        }
    } else {
        info->cap_offset = 0;
    }
    ret = region_size_unchanged(vbasedev, info);
    if (ret < 0) {
        goto out_close;         /* no fd kept yet */
    }

    /*
     * One fd to mmap the region from.  Older libvfio-user sends one per
     * sparse area, all for the same file: keep the first.
     */
    if ((info->flags & VFIO_REGION_INFO_FLAG_MMAP) && reply.nfds > 0 &&
        region_fd_covers(fds[0], info) &&
        region_fd_safe(udev, fds[0], index)) {
        *fd = keep_region_fd(udev, index, fds[0]);
        for (size_t i = 1; i < reply.nfds; i++) {
            close(fds[i]);
        }
    } else {
        for (size_t i = 0; i < reply.nfds; i++) {
            close(fds[i]);
        }
    }
    if (*fd < 0) {
        /* Nothing to map it from: access it by message. */
        info->flags &= ~VFIO_REGION_INFO_FLAG_MMAP;
    }
    trace_vfio_user_region_info(vbasedev->name, index, info->flags,
                                info->size, info->offset, *fd);
    return 0;

out_close:
    for (size_t i = 0; i < reply.nfds; i++) {
        close(fds[i]);
    }
    return ret;
}

static int vfio_user_get_irq_info(VFIODevice *vbasedev,
                                  struct vfio_irq_info *info)
{
    VFIOUserIRQInfo msg = { .argsz = sizeof(msg), .index = info->index };
    VFIOUserIRQInfo r;
    struct iovec iov = { .iov_base = &msg, .iov_len = sizeof(msg) };
    VFIOUserReply reply = { .buf = &r, .max = sizeof(r) };
    int ret;

    if (info->index >= vbasedev->num_irqs) {
        return -EINVAL;
    }
    ret = vfio_user_request(proxy_of(vbasedev),
                            VFIO_USER_DEVICE_GET_IRQ_INFO,
                            &iov, 1, NULL, 0, &reply);
    if (ret < 0) {
        return ret;
    }
    if (reply.len < sizeof(r) || r.index != info->index ||
        r.count > VFIO_USER_MAX_IRQ_COUNT) {
        return bad_reply(vbasedev, "irq %u info: reply of %zu bytes for "
                         "index %u, count %u (at most %d)", info->index,
                         reply.len, r.index, r.count, VFIO_USER_MAX_IRQ_COUNT);
    }
    info->flags = r.flags;
    info->count = r.count;
    return 0;
}

static int set_irqs_msg(VFIOUserProxy *proxy, const struct vfio_irq_set *set,
                        uint32_t start, uint32_t count, const void *data,
                        size_t datalen, const int *fds, size_t nfds)
{
    VFIOUserIRQSet msg = {
        .argsz = sizeof(msg) + datalen,
        .flags = set->flags,
        .index = set->index,
        .start = start,
        .count = count,
    };
    struct iovec iov[2] = {
        { .iov_base = &msg, .iov_len = sizeof(msg) },
        { .iov_base = (void *)data, .iov_len = datalen },
    };

    return vfio_user_request(proxy, VFIO_USER_DEVICE_SET_IRQS, iov,
                             datalen ? 2 : 1, fds, nfds, NULL);
}

/*
 * The kernel takes an array of eventfds where -1 de-assigns a vector;
 * vfio-user sends eventfds as SCM_RIGHTS, at most max_msg_fds per
 * message, and de-assigns a range by sending none.  Split accordingly.
 */
static int vfio_user_set_irqs(VFIODevice *vbasedev, struct vfio_irq_set *set)
{
    VFIOUserProxy *proxy = proxy_of(vbasedev);
    uint32_t max_fds = vfio_user_peer_caps(proxy)->max_msg_fds;
    const int32_t *fds = (const int32_t *)set->data;
    uint32_t i = 0;

    switch (set->flags & VFIO_IRQ_SET_DATA_TYPE_MASK) {
    case VFIO_IRQ_SET_DATA_NONE:
        return set_irqs_msg(proxy, set, set->start, set->count, NULL, 0,
                            NULL, 0);
    case VFIO_IRQ_SET_DATA_BOOL:
        return set_irqs_msg(proxy, set, set->start, set->count, set->data,
                            set->count, NULL, 0);
    case VFIO_IRQ_SET_DATA_EVENTFD:
        break;
    default:
        return -EINVAL;
    }

    if (set->count == 0) {
        return set_irqs_msg(proxy, set, set->start, 0, NULL, 0, NULL, 0);
    }
    while (i < set->count) {
        uint32_t n = 0;
        bool deassign = fds[i] < 0;
        int ret;

        /* A run of -1 (no fds) or of up to max_fds real eventfds. */
        while (i + n < set->count && (fds[i + n] < 0) == deassign &&
               (deassign || n < max_fds)) {
            n++;
        }
        ret = set_irqs_msg(proxy, set, set->start + i, n, NULL, 0,
                           deassign ? NULL : (const int *)&fds[i],
                           deassign ? 0 : n);
        if (ret < 0) {
            return ret;
        }
        i += n;
    }
    return 0;
}

/*
 * Config space bits that hw/vfio parses come from the vetted copy,
 * whatever the server (or a dead one's all ones) says now.
 */
static void vet_config_read(VFIODevice *vbasedev, uint8_t index, off_t off,
                            uint32_t size, void *data)
{
    VFIOUserPCIVet *vet = vfio_user_device_of(vbasedev)->config_vet;

    if (vet && index == VFIO_PCI_CONFIG_REGION_INDEX) {
        vfio_user_pci_vet_read(vet, off, data, size);
    }
}

static int vfio_user_region_read(VFIODevice *vbasedev, uint8_t index,
                                 off_t off, uint32_t size, void *data)
{
    VFIOUserProxy *proxy = proxy_of(vbasedev);
    uint64_t max = vfio_user_peer_caps(proxy)->max_data_xfer_size;
    uint32_t done = 0;

    if (index >= vbasedev->num_regions) {
        return -EINVAL;
    }
    if (vfio_user_is_dead(proxy)) {
        /* A failed device: all ones, without a word per access. */
        memset(data, 0xff, size);
        vet_config_read(vbasedev, index, off, size, data);
        return size;
    }
    while (done < size) {
        uint32_t count = MIN(size - done, max);
        VFIOUserRegionRW msg = {
            .offset = off + done, .region = index, .count = count,
        };
        struct iovec iov = { .iov_base = &msg, .iov_len = sizeof(msg) };
        /* BAR accesses are 1 to 8 bytes: keep them off the heap. */
        uint8_t small[sizeof(msg) + 64];
        g_autofree uint8_t *big = NULL;
        uint8_t *buf = count <= 64 ? small : (big = g_malloc(sizeof(msg) +
                                                              count));
        VFIOUserRegionRW *r = (VFIOUserRegionRW *)buf;
        VFIOUserReply reply = { .buf = buf, .max = sizeof(msg) + count };
        int ret;

        ret = vfio_user_request(proxy, VFIO_USER_REGION_READ, &iov, 1,
                                NULL, 0, &reply);
        if (ret < 0) {
            return ret;
        }
        if (reply.len != sizeof(msg) + count || r->count != count ||
            r->region != index || r->offset != msg.offset) {
            return bad_reply(vbasedev, "REGION_READ of region %u offset "
                             "0x%" PRIx64 " count %u: reply of %zu bytes for "
                             "region %u offset 0x%" PRIx64 " count %u", index,
                             (uint64_t)msg.offset, count, reply.len,
                             r->region, (uint64_t)r->offset, r->count);
        }
        memcpy((uint8_t *)data + done, r->data, count);
        done += count;
    }
    vet_config_read(vbasedev, index, off, size, data);
    return size;
}

static int vfio_user_region_write(VFIODevice *vbasedev, uint8_t index,
                                  off_t off, uint32_t size, void *data,
                                  bool post)
{
    VFIOUserDevice *udev = vfio_user_device_of(vbasedev);
    uint64_t max = vfio_user_peer_caps(udev->proxy)->max_data_xfer_size;
    uint32_t done = 0;

    if (index >= vbasedev->num_regions) {
        return -EINVAL;
    }
    if (udev->config_vet && index == VFIO_PCI_CONFIG_REGION_INDEX) {
        vfio_user_pci_vet_write(udev->config_vet, off, data, size);
    }
    if (vfio_user_is_dead(udev->proxy)) {
        return size;            /* a failed device drops writes */
    }
    while (done < size) {
        uint32_t count = MIN(size - done, max);
        VFIOUserRegionRW msg = {
            .offset = off + done, .region = index, .count = count,
        };
        VFIOUserRegionRW r;
        struct iovec iov[2] = {
            { .iov_base = &msg, .iov_len = sizeof(msg) },
            { .iov_base = (uint8_t *)data + done, .iov_len = count },
        };
        VFIOUserReply reply = { .buf = &r, .max = sizeof(r) };
        int ret;

        if (post) {
            /*
             * Ordering holds without a reply: the server processes
             * messages in order, so a later read is answered after it.
             */
            ret = vfio_user_post(udev->proxy, VFIO_USER_REGION_WRITE,
                                 iov, 2);
        } else {
            ret = vfio_user_request(udev->proxy, VFIO_USER_REGION_WRITE,
                                    iov, 2, NULL, 0, &reply);
            if (ret == 0 && (reply.len < sizeof(r) || r.count != count)) {
                ret = bad_reply(vbasedev, "REGION_WRITE of region %u "
                                "offset 0x%" PRIx64 " count %u: reply of "
                                "%zu bytes", index, (uint64_t)msg.offset,
                                count, reply.len);
            }
        }
        if (ret < 0) {
            return ret;
        }
        done += count;
    }
    return size;
}

static int vfio_user_device_reset(VFIODevice *vbasedev)
{
    return vfio_user_request(proxy_of(vbasedev), VFIO_USER_DEVICE_RESET,
                             NULL, 0, NULL, 0, NULL);
}

void vfio_user_device_attach_io(VFIODevice *vbasedev, VFIOUserDevice *udev)
{
    vbasedev->io_ops = &vfio_user_device_io_ops;
    vbasedev->io_opaque = udev;
}

const VFIODeviceIOOps vfio_user_device_io_ops = {
    .get_device_info = vfio_user_get_device_info,
    .get_region_info = vfio_user_get_region_info,
    .get_irq_info = vfio_user_get_irq_info,
    .set_irqs = vfio_user_set_irqs,
    .region_read = vfio_user_region_read,
    .region_write = vfio_user_region_write,
    .device_reset = vfio_user_device_reset,
};

void vfio_user_device_init_fds(VFIOUserDevice *udev, uint32_t num_regions)
{
    udev->region_fds = g_new(int, num_regions);
    udev->region_sizes = g_new(uint64_t, num_regions);
    udev->num_region_fds = num_regions;
    for (uint32_t i = 0; i < num_regions; i++) {
        udev->region_fds[i] = -1;
        udev->region_sizes[i] = UINT64_MAX;
    }
}

void vfio_user_device_close_fds(VFIOUserDevice *udev)
{
    for (uint32_t i = 0; i < udev->num_region_fds; i++) {
        if (udev->region_fds[i] >= 0) {
            close(udev->region_fds[i]);
        }
    }
    g_free(udev->region_fds);
    udev->region_fds = NULL;
    g_free(udev->region_sizes);
    udev->region_sizes = NULL;
    udev->num_region_fds = 0;
}
