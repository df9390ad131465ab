/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer harness for the vfio-user client's receive path.
 *
 * The fuzz input is what a hostile server sends: an arbitrary byte stream,
 * cut into chunks, some of them carrying file descriptors.  The client
 * code under test (hw/vfio-user/proxy.c, device.c, dma.c, built with
 * coverage and ASan/UBSan by scripts/fuzz.sh) runs for real: a
 * VFIOUserProxy with its receive thread on one end of a socketpair, the
 * harness playing the server on the other end, while the main thread
 * drives the client as vfio-user-pci's realize and a guest would:
 * version negotiation, device info, every region info (walking the
 * capability chain exactly as hw/vfio does), irq info, region reads and
 * writes (posted too), set irqs with eventfds, reset.  A DMA table maps
 * harness memory fenced by PROT_NONE guard pages (one mapping read-only
 * in the MMU), with vfio_user_dma_handle_request installed once
 * negotiation succeeded (as vfio-user-pci does), so that DMA_READ/WRITE
 * requests in the stream get serviced; an access outside a mapping, or a
 * write to a read-only one, faults.  Besides the sanitizers, the harness
 * aborts when the client sends a malformed message, or when an fd the
 * server sent (or the socket) or a thread outlives the connection.
 *
 * Why libFuzzer rather than AFL++: the client is a library with threads
 * and a socket, not a program reading a file.  libFuzzer runs it
 * in-process, with no fork or exec per input (the cost per input is the
 * client's own: a connection, its receive thread, a conversation), works
 * hand in hand with ASan/UBSan (a finding in any thread stops the run
 * and saves the input), and needs nothing but clang (Debian's clang-14,
 * libclang-rt-14-dev, llvm-14 for the symbolizer).  Being in-process, it
 * needs the harness to leave nothing behind: it checks per input that no
 * fd and no thread outlives the connection.
 *
 * Time is virtual (fuzz/virtual-time.c): every timeout, the client's and
 * the harness's own (WAIT, DELAY), fires as soon as nothing but a timeout
 * can happen, in the order of the deadlines.  An input thus costs what
 * its conversation computes, not what it waits, and the outcome of a
 * race between two timeouts does not depend on the machine's load.
 * Threads, the client's too, come from a pool of the harness.
 *
 * Inputs that start with "PCIV" are for the other mode, the PCI
 * personality vetting driven directly (fuzz/pci-vet-fuzz.c).
 *
 * Input format: a sequence of chunks, each
 *   ctrl (1 byte) | len (2 bytes, little-endian, clamped to what is left)
 *   | len bytes of stream
 * ctrl bits:
 *   0x01 WAIT   before sending, wait for the client's next request that
 *               wants a reply (up to the timeout); FIX uses its id and
 *               command
 *   0x02 FIX    the chunk starts with a header: set its size to the chunk
 *               length and, for a reply, its id and command to those of
 *               the request waited for
 *   0x04 FD     attach fds to the chunk (SCM_RIGHTS; needs len >= 1)
 *   0x18        fd kind: eventfd, memfd (8 KiB), pipe, socket
 *   0x60        fd count: 1, 2, 9, 16
 *   0x80 DELAY  sleep past the client's timeout first (at most 2 per input)
 * When the chunks are exhausted the server end is shut down for writing:
 * the client sees the server hang up, and everything after fails fast.
 *
 * Environment: VFIO_USER_FUZZ_VERBOSE=1 keeps the client's error_report
 * output (otherwise silenced), VFIO_USER_FUZZ_TRACE=1 enables its trace
 * events.
 */

#include "qemu/osdep.h"
#include <sys/socket.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <dirent.h>
#include "qemu/bitops.h"
#include <poll.h>
#include "qapi/error.h"
#include "qemu/main-loop.h"
#include "qemu/module.h"
#include "qemu/log.h"
#include "block/aio.h"
#include "trace/control.h"
#include "hw/vfio-user/device.h"
#include "hw/vfio-user/dma.h"
#include "exec/ramlist.h"
#include "exec/exec-all.h"
#include "system/tcg.h"
#include "hw/pci/pci_regs.h"
#include "vfio-user-fuzz.h"
#include "virtual-time.h"

#define TIMEOUT_MS      20
#define MAX_DELAYS      2

#define C_WAIT          0x01
#define C_FIX           0x02
#define C_FD            0x04
#define C_FD_KIND(c)    (((c) >> 3) & 3)
#define C_FD_COUNT(c)   (fd_counts[((c) >> 5) & 3])
#define C_DELAY         0x80

static const int fd_counts[4] = { 1, 2, 9, 16 };

/* DMA memory: [guard][A: 2 pages rw][guard][B: 1 page, read-only][guard] */
#define PG              4096
static uint8_t *dma_mem;
#define DMA_A           (dma_mem + PG)
#define DMA_B           (dma_mem + 4 * PG)

/* What the client owns in the harness: the fake device. */
static VFIODevice vbasedev;
static VFIOUserDevice udev;

typedef struct Server {
    int fd;
    int client_fd;              /* the client's end */
    VFIOUserProxy *proxy;
    const uint8_t *data;
    size_t size;
    QemuMutex lock;
    QemuCond cond;
    VFIOUserHdr reqs[64];       /* client requests not yet waited for */
    unsigned head, tail;
    bool client_done;
    bool eof;
} Server;

static int baseline_fds = -1, baseline_threads, baseline_pool;
static FILE *report;            /* the real stderr, for the harness */

/*
 * The fds of an input: the client's end of the socket and every fd the
 * server sent, by inode (the harness closes its own copies), so that the
 * leak check ignores what the sanitizers open on their own (the
 * symbolizer's pipes).  eventfds share one inode: they are counted.
 */
typedef struct FdId {
    dev_t dev;
    ino_t ino;
} FdId;
static FdId input_fds[4096];
static unsigned n_input_fds;
static QemuMutex input_fds_lock;

static bool is_anon_inode(int fd, char *link, size_t size)
{
    char path[64];
    ssize_t n;

    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    n = readlink(path, link, size - 1);
    link[MAX(n, 0)] = 0;
    return g_str_has_prefix(link, "anon_inode:");
}

static void track_fd(int fd)
{
    struct stat st;
    char link[128];

    if (is_anon_inode(fd, link, sizeof(link))) {
        return;         /* one inode for all of them */
    }
    if (fstat(fd, &st) == 0 && n_input_fds < ARRAY_SIZE(input_fds)) {
        qemu_mutex_lock(&input_fds_lock);
        input_fds[n_input_fds++] = (FdId) { st.st_dev, st.st_ino };
        qemu_mutex_unlock(&input_fds_lock);
    }
}

/* Count our eventfds, and report fds of this input still open. */
static int scan_fds(bool report_leaks)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int eventfds = 0, leaks = 0;

    assert(d);
    while ((e = readdir(d))) {
        char link[128];
        struct stat st;
        int fd;

        if (e->d_name[0] == '.') {
            continue;
        }
        fd = atoi(e->d_name);
        if (fd == dirfd(d)) {
            continue;
        }
        if (is_anon_inode(fd, link, sizeof(link))) {
            eventfds += !strcmp(link, "anon_inode:[eventfd]");
            continue;
        }
        if (!report_leaks || fstat(fd, &st) < 0) {
            continue;
        }
        for (unsigned i = 0; i < n_input_fds; i++) {
            if (input_fds[i].dev == st.st_dev &&
                input_fds[i].ino == st.st_ino) {
                fprintf(report, "vfio-user-fuzz: fd %d (%s) of this input "
                        "is still open: the client leaks it\n", fd, link);
                leaks++;
                break;
            }
        }
    }
    closedir(d);
    return leaks ? -1 : eventfds;
}
static bool initialized;

/*
 * The set of open fd numbers, as one poll() sees it: scan_fds() costs two
 * system calls per open fd, a tenth of what an input cost once the
 * waits were gone, so it runs only when this set changed.  A leak takes
 * the lowest free number, so it shows below the bound.
 */
#define PROBED_FDS      1024
static struct pollfd fd_probe[PROBED_FDS];
static unsigned long fds_before[BITS_TO_LONGS(PROBED_FDS)];

static bool fds_as_before(bool remember)
{
    unsigned long now[BITS_TO_LONGS(PROBED_FDS)] = { 0 };

    for (int i = 0; i < PROBED_FDS; i++) {
        fd_probe[i] = (struct pollfd) { .fd = i };
    }
    poll(fd_probe, PROBED_FDS, 0);
    for (int i = 0; i < PROBED_FDS; i++) {
        if (!(fd_probe[i].revents & POLLNVAL)) {
            set_bit(i, now);
        }
    }
    if (remember) {
        memcpy(fds_before, now, sizeof(now));
        return true;
    }
    return !memcmp(fds_before, now, sizeof(now));
}

static int count_dir(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    int n = 0;

    if (!d) {
        return -1;
    }
    while ((e = readdir(d))) {
        n += e->d_name[0] != '.';
    }
    closedir(d);
    return n;
}

static void close_cmsg_fds(struct msghdr *msg)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            int n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            int *fds = (int *)CMSG_DATA(c);

            for (int i = 0; i < n; i++) {
                close(fds[i]);
            }
        }
    }
}

/* Read exactly @len bytes (closing any fds that come along); false at EOF. */
static bool srv_read(int fd, void *buf, size_t len)
{
    while (len) {
        char cbuf[CMSG_SPACE(sizeof(int) * 253)];
        struct iovec iov = { .iov_base = buf, .iov_len = len };
        struct msghdr msg = {
            .msg_iov = &iov, .msg_iovlen = 1,
            .msg_control = cbuf, .msg_controllen = sizeof(cbuf),
        };
        ssize_t n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);

        if (n < 0 && errno == EAGAIN) {
            /* Waiting for the client is waiting in virtual time. */
            vt_wait_fd(fd, -1);
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return false;
        }
        close_cmsg_fds(&msg);
        buf = (uint8_t *)buf + n;
        len -= n;
    }
    return true;
}

/* The server's reader: drains everything the client sends, queues requests. */
static void *srv_reader(void *opaque)
{
    Server *s = opaque;
    static __thread uint8_t sink[64 * 1024];

    for (;;) {
        VFIOUserHdr hdr;
        size_t left;

        if (!srv_read(s->fd, &hdr, sizeof(hdr))) {
            break;
        }
        /* The client itself must always speak the protocol. */
        if (hdr.size < sizeof(hdr) || hdr.size > VFIO_USER_MAX_MSG) {
            fprintf(report, "vfio-user-fuzz: client sent a message of size "
                    "%u (id %u cmd %u)\n", hdr.size, hdr.id, hdr.command);
            abort();
        }
        for (left = hdr.size - sizeof(hdr); left; ) {
            size_t n = MIN(left, sizeof(sink));

            if (!srv_read(s->fd, sink, n)) {
                goto out;
            }
            left -= n;
        }
        /* Posted writes are not waited for: WAIT skips them. */
        if ((hdr.flags & VFIO_USER_TYPE) == VFIO_USER_REQUEST &&
            !(hdr.flags & VFIO_USER_NO_REPLY)) {
            qemu_mutex_lock(&s->lock);
            if (s->tail - s->head < ARRAY_SIZE(s->reqs)) {
                s->reqs[s->tail++ % ARRAY_SIZE(s->reqs)] = hdr;
            }
            vt_cond_broadcast(&s->cond);
            qemu_mutex_unlock(&s->lock);
        }
    }
out:
    qemu_mutex_lock(&s->lock);
    qatomic_set(&s->eof, true);
    vt_cond_broadcast(&s->cond);
    qemu_mutex_unlock(&s->lock);
    return NULL;
}

/*
 * For the virtual clock: bytes or a hang-up still to be read by a thread
 * that will read them (a dead client reads nothing more; the server's
 * reader ends at the client's hang-up).
 */
static bool srv_pending(void *opaque)
{
    Server *s = opaque;
    struct pollfd p[2] = {
        { .fd = s->client_fd, .events = POLLIN },
        { .fd = s->fd, .events = POLLIN },
    };

    if (poll(p, 2, 0) <= 0) {
        return false;
    }
    return (p[0].revents &&
            !(s->proxy && vfio_user_is_dead(s->proxy))) ||
           (p[1].revents && !qatomic_read(&s->eof));
}

static bool srv_wait_request(Server *s, VFIOUserHdr *req)
{
    int64_t deadline = vt_now_ns() / SCALE_MS + TIMEOUT_MS;
    bool got = false;

    qemu_mutex_lock(&s->lock);
    while (s->head == s->tail && !s->client_done && !s->eof) {
        int64_t left = deadline - vt_now_ns() / SCALE_MS;

        if (left <= 0) {
            break;
        }
        vt_cond_timedwait(&s->cond, &s->lock, left);
    }
    if (s->head != s->tail) {
        *req = s->reqs[s->head++ % ARRAY_SIZE(s->reqs)];
        got = true;
    }
    qemu_mutex_unlock(&s->lock);
    return got;
}

static int make_fd(int kind)
{
    int p[2], fd;

    switch (kind) {
    case 0:
        return eventfd(0, EFD_CLOEXEC);
    case 1:
        fd = memfd_create("vfio-user-fuzz", MFD_CLOEXEC);
        if (fd >= 0 && ftruncate(fd, 2 * PG) < 0) {
            close(fd);
            fd = -1;
        }
        return fd;
    case 2:
        if (pipe2(p, O_CLOEXEC) < 0) {
            return -1;
        }
        close(p[1]);
        return p[0];
    default:
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p) < 0) {
            return -1;
        }
        close(p[1]);
        return p[0];
    }
}

static bool srv_send(Server *s, uint8_t ctrl, const uint8_t *buf, size_t len)
{
    int fds[16];
    int nfds = 0;
    char cbuf[CMSG_SPACE(sizeof(fds))] = { 0 };
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
    bool ok = true;

    if ((ctrl & C_FD) && len > 0) {
        struct cmsghdr *c;

        for (int i = 0; i < C_FD_COUNT(ctrl); i++) {
            int fd = make_fd(C_FD_KIND(ctrl));

            if (fd >= 0) {
                track_fd(fd);
                fds[nfds++] = fd;
            }
        }
        if (nfds) {
            msg.msg_control = cbuf;
            msg.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
            c = CMSG_FIRSTHDR(&msg);
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
            memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
        }
    }
    while (iov.iov_len > 0) {
        ssize_t n = sendmsg(s->fd, &msg, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            ok = false;         /* the client hung up */
            break;
        }
        msg.msg_control = NULL;
        msg.msg_controllen = 0;
        iov.iov_base = (uint8_t *)iov.iov_base + n;
        iov.iov_len -= n;
    }
    for (int i = 0; i < nfds; i++) {
        close(fds[i]);
    }
    return ok;
}

/* The server's writer: plays the fuzz input. */
static void *srv_writer(void *opaque)
{
    Server *s = opaque;
    const uint8_t *p = s->data, *end = s->data + s->size;
    VFIOUserHdr req = { 0 };
    uint8_t *buf = g_malloc(65536);
    int delays = 0;

    while (end - p >= 3) {
        uint8_t ctrl = p[0];
        size_t len = MIN((size_t)(p[1] | p[2] << 8), (size_t)(end - p - 3));

        memcpy(buf, p + 3, len);
        p += 3 + len;

        if (ctrl & C_WAIT) {
            srv_wait_request(s, &req);
        }
        if ((ctrl & C_DELAY) && delays++ < MAX_DELAYS) {
            vt_sleep_ms(TIMEOUT_MS + 5);
        }
        if ((ctrl & C_FIX) && len >= sizeof(VFIOUserHdr)) {
            VFIOUserHdr *h = (VFIOUserHdr *)buf;

            h->size = len;
            if ((h->flags & VFIO_USER_TYPE) == VFIO_USER_REPLY) {
                h->id = req.id;
                h->command = req.command;
            }
        }
        if (!srv_send(s, ctrl, buf, len)) {
            break;
        }
    }
    g_free(buf);
    shutdown(s->fd, SHUT_WR);
    return NULL;
}

/*
 * Region info the way hw/vfio takes it (vfio_device_get_region_info,
 * vfio_get_cap, vfio_setup_region_sparse_mmaps): a buffer of exactly
 * argsz bytes, retried with the size the server asks for, then the
 * capability chain walked without further checks.
 */
static int client_region_info(uint32_t index, uint64_t *size)
{
    size_t argsz = sizeof(struct vfio_region_info);
    struct vfio_region_info *info = g_malloc0(argsz);
    struct vfio_info_cap_header *hdr;
    /* Keeps the reads of the capability data, which ASan checks. */
    volatile uint64_t sink = 0;
    int ret, fd, tries = 0;

    info->index = index;
retry:
    info->argsz = argsz;
    ret = vfio_user_device_io_ops.get_region_info(&vbasedev, info, &fd);
    if (ret) {
        g_free(info);
        return ret;
    }
    if (info->argsz > argsz && tries++ < 3) {
        argsz = info->argsz;
        info = g_realloc(info, argsz);
        goto retry;
    }
    assert(info->argsz <= argsz);
    if (fd >= 0) {
        struct stat st;

        /* The device keeps it; it must be open. */
        assert(fstat(fd, &st) == 0);
    }
    *size = info->size;
    if (info->flags & VFIO_REGION_INFO_FLAG_CAPS) {
        for (hdr = (void *)info + info->cap_offset; hdr != (void *)info;
             hdr = (void *)info + hdr->next) {
            if (hdr->id == VFIO_REGION_INFO_CAP_SPARSE_MMAP) {
                struct vfio_region_info_cap_sparse_mmap *sp = (void *)hdr;

                for (uint32_t i = 0; i < sp->nr_areas; i++) {
                    sink += sp->areas[i].offset + sp->areas[i].size;
                    assert(sp->areas[i].offset + sp->areas[i].size <=
                           info->size);
                }
            } else if (hdr->id == VFIO_REGION_INFO_CAP_TYPE) {
                struct vfio_region_info_cap_type *t = (void *)hdr;

                sink += t->type + t->subtype;
            }
        }
    }
    (void)sink;
    g_free(info);
    return 0;
}

static void client_set_irqs(void)
{
    g_autofree struct vfio_irq_set *set =
        g_malloc0(sizeof(*set) + 4 * sizeof(int32_t));
    int32_t *fds = (int32_t *)set->data;
    int e1 = eventfd(0, EFD_CLOEXEC), e2 = eventfd(0, EFD_CLOEXEC);

    set->argsz = sizeof(*set) + 4 * sizeof(int32_t);
    set->flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
    set->index = VFIO_PCI_MSIX_IRQ_INDEX;
    set->start = 0;
    set->count = 4;
    fds[0] = -1;
    fds[1] = e1;
    fds[2] = e2;
    fds[3] = -1;
    vfio_user_device_io_ops.set_irqs(&vbasedev, set);
    close(e1);
    close(e2);

    set->flags = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER;
    set->count = 0;
    vfio_user_device_io_ops.set_irqs(&vbasedev, set);

    set->flags = VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_ACTION_UNMASK;
    set->index = VFIO_PCI_INTX_IRQ_INDEX;
    set->count = 1;
    set->data[0] = 1;
    vfio_user_device_io_ops.set_irqs(&vbasedev, set);
}

/*
 * The vetting as vfio-user-pci's realize does it (pci.c), over the wire:
 * the config space and the ROM BAR's sizing come from the server.  Last
 * in the conversation, so that the inputs written before it still answer
 * the requests they were written for.  True when the device passed and
 * its config space reads now go through the vetted copy.
 */
static bool client_vet(const uint64_t *sizes)
{
    g_autofree VFIOUserPCIVet *vet = g_new0(VFIOUserPCIVet, 1);
    g_autofree uint8_t *config = g_malloc0(PCIE_CONFIG_SPACE_SIZE);
    VFIOUserPCIShape shape = {
        .config_size = sizes[VFIO_PCI_CONFIG_REGION_INDEX],
        .rom_region_size = sizes[VFIO_PCI_ROM_REGION_INDEX],
        .rom_bar = true,
    };
    uint32_t orig, mask = cpu_to_le32(PCI_ROM_ADDRESS_MASK);
    const VFIODeviceIOOps *ops = &vfio_user_device_io_ops;
    int cfg = VFIO_PCI_CONFIG_REGION_INDEX;
    Error *err = NULL;

    memcpy(shape.bar_size, sizes, sizeof(shape.bar_size));
    if ((shape.config_size != PCI_CONFIG_SPACE_SIZE &&
         shape.config_size != PCIE_CONFIG_SPACE_SIZE) ||
        ops->region_read(&vbasedev, cfg, 0, shape.config_size, config) !=
            shape.config_size ||
        ops->region_read(&vbasedev, cfg, PCI_ROM_ADDRESS, 4, &orig) != 4 ||
        ops->region_write(&vbasedev, cfg, PCI_ROM_ADDRESS, 4, &mask,
                          false) != 4 ||
        ops->region_read(&vbasedev, cfg, PCI_ROM_ADDRESS, 4,
                         &shape.rom_bar_sized) != 4 ||
        ops->region_write(&vbasedev, cfg, PCI_ROM_ADDRESS, 4, &orig,
                          false) != 4) {
        return false;
    }
    shape.rom_bar_sized = le32_to_cpu(shape.rom_bar_sized);
    if (!vfio_user_pci_vet(vet, config, &shape, &err)) {
        error_free(err);
        return false;
    }
    udev.config_vet = g_steal_pointer(&vet);
    return true;
}

/* Give up on a conversation after this many timeouts: it only gets slower. */
#define MAX_TIMEOUTS    2

/* One VFIO_DEVICE_FEATURE of @data_len bytes of data, as hw/vfio sends it */
static int client_feature(uint32_t flags, const void *data, size_t data_len)
{
    uint64_t buf[DIV_ROUND_UP(sizeof(struct vfio_device_feature) + 64,
                              sizeof(uint64_t))] = { };
    struct vfio_device_feature *f = (struct vfio_device_feature *)buf;

    assert(data_len <= 64);
    f->argsz = sizeof(buf);
    f->flags = flags;
    if (data_len) {
        memcpy(f->data, data, data_len);
    }
    return vfio_user_device_io_ops.device_feature(&vbasedev, f);
}

/*
 * What hw/vfio's migration asks of a device: its flags, the state
 * changes of a save with its data, the stop-copy size, DMA logging with
 * a report of 200 pages (4 bitmap words, the last one partial), and the
 * data of a load.
 */
static void client_migrate(uint8_t *buf, size_t len, int *timeouts)
{
    static const struct vfio_device_feature_dma_logging_range ranges[2] = {
        { .iova = 0, .length = 0xa0000 },
        { .iova = 0x100000, .length = 0x7f00000 },
    };
    struct vfio_device_feature_dma_logging_control ctl = {
        .page_size = 4096, .num_ranges = 2, .ranges = (uintptr_t)ranges,
    };
    uint64_t bitmap[4];
    struct vfio_device_feature_dma_logging_report rep = {
        .iova = 0x100000, .length = 200 * 4096, .page_size = 4096,
        .bitmap = (uintptr_t)bitmap,
    };
    struct vfio_device_feature_mig_state st = { .data_fd = -1 };
    static const uint32_t states[] = {
        VFIO_DEVICE_STATE_PRE_COPY, VFIO_DEVICE_STATE_STOP_COPY,
        VFIO_DEVICE_STATE_STOP, VFIO_DEVICE_STATE_RESUMING,
    };
    uint64_t size = 0;

#define MOP(x) \
    do { \
        if ((x) == -ETIMEDOUT && ++*timeouts >= MAX_TIMEOUTS) { \
            return; \
        } \
    } while (0)

    MOP(client_feature(VFIO_DEVICE_FEATURE_GET |
                       VFIO_DEVICE_FEATURE_MIGRATION, NULL, 0));
    MOP(client_feature(VFIO_DEVICE_FEATURE_PROBE |
                       VFIO_DEVICE_FEATURE_DMA_LOGGING_START, NULL, 0));
    MOP(client_feature(VFIO_DEVICE_FEATURE_SET |
                       VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
                       &ctl, sizeof(ctl)));
    MOP(client_feature(VFIO_DEVICE_FEATURE_GET |
                       VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT,
                       &rep, sizeof(rep)));
    MOP(client_feature(VFIO_DEVICE_FEATURE_GET |
                       VFIO_DEVICE_FEATURE_MIG_DATA_SIZE, &size,
                       sizeof(size)));
    for (size_t i = 0; i < ARRAY_SIZE(states); i++) {
        st.device_state = states[i];
        MOP(client_feature(VFIO_DEVICE_FEATURE_SET |
                           VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
                           &st, sizeof(st)));
        assert(st.data_fd == -1);
        if (states[i] == VFIO_DEVICE_STATE_RESUMING) {
            MOP(vfio_user_device_io_ops.mig_data_write(&vbasedev, buf, len));
        } else if (states[i] != VFIO_DEVICE_STATE_STOP) {
            ssize_t n = vfio_user_device_io_ops.mig_data_read(&vbasedev, buf,
                                                              len);

            assert(n <= (ssize_t)len);
            MOP(n);
        }
    }
    MOP(client_feature(VFIO_DEVICE_FEATURE_SET |
                       VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP, NULL, 0));
#undef MOP
}

static void client_drive(VFIOUserProxy *proxy, VFIOUserDMATable *table)
{
    struct vfio_device_info info = { .argsz = sizeof(info) };
    struct vfio_irq_info irq;
    uint64_t sizes[12] = { 0 };
    uint8_t small[8], big[300];
    Error *err = NULL;
    int timeouts = 0;

#define OP(x) \
    do { \
        if ((x) == -ETIMEDOUT && ++timeouts >= MAX_TIMEOUTS) { \
            goto out; \
        } \
    } while (0)

    if (!vfio_user_negotiate(proxy, &err)) {
        error_free(err);
        goto out;
    }
    /* As in vfio-user-pci: DMA is serviced once the container is attached. */
    vfio_user_set_request_handler(proxy, vfio_user_dma_handle_request, table);
    if (vfio_user_device_io_ops.get_device_info(&vbasedev, &info)) {
        goto out;
    }
    assert(info.num_regions > VFIO_PCI_CONFIG_REGION_INDEX &&
           info.num_regions <= VFIO_USER_MAX_REGIONS &&
           info.num_irqs <= VFIO_USER_MAX_IRQS);
    vbasedev.num_regions = info.num_regions;
    vbasedev.num_irqs = info.num_irqs;
    vfio_user_device_init_state(&udev, info.num_regions, info.num_irqs);

    for (uint32_t i = 0; i < MIN(info.num_regions, 12); i++) {
        OP(client_region_info(i, &sizes[i]));
    }
    for (uint32_t i = 0; i < info.num_irqs; i++) {
        irq = (struct vfio_irq_info) { .argsz = sizeof(irq), .index = i };
        OP(vfio_user_device_io_ops.get_irq_info(&vbasedev, &irq));
    }

    OP(vfio_user_device_io_ops.region_read(&vbasedev,
                                           VFIO_PCI_CONFIG_REGION_INDEX, 0,
                                           4, small));
    OP(vfio_user_device_io_ops.region_read(&vbasedev, 0, 0, 8, small));
    OP(vfio_user_device_io_ops.region_read(&vbasedev,
                                           VFIO_PCI_CONFIG_REGION_INDEX, 0,
                                           sizeof(big), big));
    memset(big, 0x5a, sizeof(big));
    OP(vfio_user_device_io_ops.region_write(&vbasedev,
                                            VFIO_PCI_CONFIG_REGION_INDEX, 4,
                                            2, big, false));
    OP(vfio_user_device_io_ops.region_write(&vbasedev, 0, 0, 4, big, true));
    OP(vfio_user_device_io_ops.region_write(&vbasedev, 0, 0, sizeof(big),
                                            big, false));
    client_set_irqs();
    OP(vfio_user_device_io_ops.device_reset(&vbasedev));
    OP(vfio_user_device_io_ops.region_read(&vbasedev, 0, 0, 4, small));
    if (client_vet(sizes)) {
        /* Through the overlay now: a read that hw/vfio parsed, a write */
        OP(vfio_user_device_io_ops.region_read(&vbasedev,
                                               VFIO_PCI_CONFIG_REGION_INDEX,
                                               0, 64, big));
        OP(vfio_user_device_io_ops.region_write(&vbasedev,
                                                VFIO_PCI_CONFIG_REGION_INDEX,
                                                PCI_ROM_ADDRESS, 4, big,
                                                false));
    }
    client_migrate(big, sizeof(big), &timeouts);
out:
    /* Unmap while the server may still be DMAing into it. */
    g_array_unref(vfio_user_dma_table_remove(table, 0x10000, 0x1000));
#undef OP
}

static void death_notify(void *opaque, const char *reason)
{
}


/* A VERSION reply without capabilities, for the warm-up run. */
/*
 * What dma.c links against for guest RAM.  The harness maps only its own
 * memory (no MemoryRegion, see map_host()), so none of this runs; QEMU's
 * memory_region_ref/unref accept NULL, and so do these.
 */
bool tcg_allowed;
RAMList ram_list;

void memory_region_ref(MemoryRegion *mr)
{
    assert(!mr);
}

void memory_region_unref(MemoryRegion *mr)
{
    assert(!mr);
}

uint8_t memory_region_get_dirty_log_mask(MemoryRegion *mr)
{
    g_assert_not_reached();
}

void tb_invalidate_phys_range(tb_page_addr_t start, tb_page_addr_t last)
{
    g_assert_not_reached();
}

/*
 * Host memory the harness owns, not guest RAM: no MemoryRegion to keep
 * alive or mark dirty.
 */
static int map_host(VFIOUserDMATable *table, uint64_t iova, uint64_t size,
                    uint8_t *host, bool writable)
{
    return vfio_user_dma_table_add(table, iova, size, host, NULL, 0,
                                   writable);
}

static const uint8_t warmup[] = {
    C_WAIT | C_FIX, 20, 0,
    0, 0, VFIO_USER_VERSION, 0, 20, 0, 0, 0, VFIO_USER_REPLY, 0, 0, 0,
    0, 0, 0, 0,
    0, 0, 1, 0,
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    signal(SIGPIPE, SIG_IGN);
    vt_init();
    qemu_mutex_init(&input_fds_lock);
    module_call_init(MODULE_INIT_TRACE);
    module_call_init(MODULE_INIT_QOM);
    qemu_init_main_loop(&error_fatal);
    if (getenv("VFIO_USER_FUZZ_TRACE")) {
        trace_enable_events("vfio_user*");
        qemu_set_log(LOG_TRACE, &error_fatal);
    }
    report = stderr;
    if (!getenv("VFIO_USER_FUZZ_VERBOSE")) {
        /*
         * Silence error_report (one line per dead connection).  libFuzzer
         * and the sanitizers write to fd 2 through their own handles.
         */
        FILE *null = fopen("/dev/null", "w");

        if (null) {
            stderr = null;
        }
    }

    dma_mem = mmap(NULL, 6 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
    assert(dma_mem != MAP_FAILED);
    assert(!mprotect(DMA_A, 2 * PG, PROT_READ | PROT_WRITE));
    assert(!mprotect(DMA_B, PG, PROT_READ | PROT_WRITE));
    memset(DMA_B, 0xbb, PG);
    assert(!mprotect(DMA_B, PG, PROT_READ));

    vbasedev.name = g_strdup("fuzz");
    vfio_user_device_attach_io(&vbasedev, &udev);

    /*
     * Whatever the libraries open on first use is not a leak, and the
     * sanitizers' symbolizer, started when a suppression is first looked
     * up, takes longer than the client's timeout: get it over with.
     */
    LLVMFuzzerTestOneInput(warmup, sizeof(warmup));
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static MemReentrancyGuard guard;
    Server s = { .data = data, .size = size };
    QemuThread reader, writer;
    SocketAddress addr = { .type = SOCKET_ADDRESS_TYPE_FD };
    VFIOUserProxy *proxy;
    VFIOUserDMATable *table;
    int sv[2], n;

    /* The vetting mode (fuzz/pci-vet-fuzz.c) needs no conversation. */
    if (vfio_user_vet_fuzz(data, size)) {
        return 0;
    }
    /* libFuzzer starts its own threads after LLVMFuzzerInitialize. */
    if (baseline_fds < 0 && initialized) {
        baseline_fds = scan_fds(false);
        fds_as_before(true);
        baseline_threads = count_dir("/proc/self/task");
        baseline_pool = vt_pool_threads();
    }
    assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    s.fd = sv[1];
    s.client_fd = sv[0];
    vt_set_pending(srv_pending, &s);
    n_input_fds = 0;
    track_fd(sv[0]);
    addr.u.fd.str = g_strdup_printf("%d", sv[0]);
    proxy = vfio_user_connect(&addr, "fuzz", TIMEOUT_MS, 0, &guard,
                              &error_abort);
    g_free(addr.u.fd.str);
    vfio_user_set_death_notifier(proxy, death_notify, NULL);
    udev.proxy = proxy;
    s.proxy = proxy;

    memset(DMA_A, 0xaa, 2 * PG);
    table = vfio_user_dma_table_new(proxy);
    /* iova-contiguous, host-discontiguous, one of them read-only */
    assert(!map_host(table, 0x10000, 2 * PG, DMA_A, true));
    assert(!map_host(table, 0x12000, PG, DMA_B, false));
    assert(!map_host(table, 0x40000, PG, DMA_A + PG, true));
    assert(!map_host(table, UINT64_MAX - 2 * PG + 1, PG, DMA_A, true));
    /* iova- and host-contiguous: one iovec */
    assert(!map_host(table, 0x50000, PG, DMA_A, true));
    assert(!map_host(table, 0x51000, PG, DMA_A + PG, true));

    qemu_mutex_init(&s.lock);
    qemu_cond_init(&s.cond);
    vt_thread_create(&reader, "fuzz-srv-rd", srv_reader, &s,
                     QEMU_THREAD_JOINABLE);
    vt_thread_create(&writer, "fuzz-srv-wr", srv_writer, &s,
                     QEMU_THREAD_JOINABLE);

    client_drive(proxy, table);

    /* Let the server play the rest of its input, then see it hang up. */
    qemu_mutex_lock(&s.lock);
    s.client_done = true;
    vt_cond_broadcast(&s.cond);
    qemu_mutex_unlock(&s.lock);
    vt_thread_join(&writer);
    /*
     * The client reads the hang-up and dies, and its death bottom half
     * wakes the main loop: no need to poll for it.
     */
    vt_block_begin();
    while (!vfio_user_is_dead(proxy)) {
        aio_poll(qemu_get_aio_context(), true);
    }
    vt_block_end();
    /* The main loop tells the device the connection died. */
    while (aio_poll(qemu_get_aio_context(), false)) {
        /* run the death bottom half */
    }

    /* Nothing waits in virtual time any more; s.proxy is about to go. */
    vt_set_pending(NULL, NULL);
    vfio_user_disconnect(proxy);
    vt_thread_join(&reader);
    close(s.fd);
    vfio_user_dma_table_free(table);
    vfio_user_device_free_state(&udev);
    g_free(udev.config_vet);
    udev.config_vet = NULL;
    vbasedev.num_regions = vbasedev.num_irqs = 0;
    qemu_cond_destroy(&s.cond);
    qemu_mutex_destroy(&s.lock);
    while (aio_poll(qemu_get_aio_context(), false)) {
        /* free the deleted bottom half */
    }

    if (baseline_fds < 0) {
        initialized = true;     /* the warm-up run */
        return 0;
    }
    if (!fds_as_before(false)) {
        n = scan_fds(true);
        if (n < 0) {
            abort();
        }
        if (n != baseline_fds) {
            fprintf(report, "vfio-user-fuzz: %d eventfds open after the "
                    "input, %d before: the client leaks eventfds\n", n,
                    baseline_fds);
            abort();
        }
        /* Not the client's (the sanitizers' symbolizer, say) */
        fds_as_before(true);
    }
    /*
     * Threads come from the harness's pool (fuzz/virtual-time.c): each
     * routine the client started must have ended and been joined, and
     * nothing else may have started a thread.
     */
    n = vt_busy_threads();
    if (n) {
        fprintf(report, "vfio-user-fuzz: %d threads still running or not "
                "joined after the input\n", n);
        abort();
    }
    n = count_dir("/proc/self/task") - (vt_pool_threads() - baseline_pool);
    if (n != baseline_threads) {
        fprintf(report, "vfio-user-fuzz: %d threads after the input, "
                "%d before\n", n, baseline_threads);
        abort();
    }
    return 0;
}
