/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Hostile servers while the device realizes: bad replies to the
 * setup commands, absurd device, region and irq descriptions, bad fds,
 * DMA before the client has set anything up, and stalls.
 */

#include "qemu/osdep.h"
#include <sys/eventfd.h>
#include "qemu/memfd.h"
#include "qemu/units.h"
#include "vfio-user-hostile.h"

/* A DMA request of our own while the client waits for this reply */
static VUTestHookAction fn_dma_first(Hostile *h, VUTestServer *s,
                                     const VUTestMsg *msg, GByteArray *out)
{
    VUTestDMARequest req = { .address = GUEST_BUF, .count = 8 };
    VUTestDMAResult res;

    h->err = -vu_test_server_dma(s, &req, &res);
    if (res.data) {
        g_byte_array_unref(res.data);
    }
    return VU_TEST_HOOK_CONTINUE;
}

/*
 * BAR1's region info with our own fd (h->fds[0]), in pieces that end the
 * client's first read inside the reply's header: the kernel ends a read
 * right after bytes that carry fds, and the first 8 bytes carry the fd.
 * Behind them: the rest of the reply, then a stray reply with fds of its
 * own (h->fds[1..]).  All of it is queued before the client reads again,
 * since it is busy sending us the reply to a 512 KiB DMA_READ, which we
 * read only after the hook: its next read may not run on into the stray
 * reply and take its fds for the region's.
 */
static VUTestHookAction fn_region_fd_split_header(Hostile *h, VUTestServer *s,
                                                  const VUTestMsg *msg,
                                                  GByteArray *out)
{
    VFIOUserRegionInfo info = {
        .argsz = sizeof(info), .index = VFIO_PCI_BAR1_REGION_INDEX,
        .flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE |
                 VFIO_REGION_INFO_FLAG_MMAP,
        .size = VU_TEST_BAR1_SIZE,
    };
    VFIOUserDMARW rw = { .address = GUEST_BUF, .count = 512 * KiB };
    g_autoptr(GByteArray) dma = g_byte_array_new();

    put_hdr(dma, 0x7777, VFIO_USER_DMA_READ, sizeof(VFIOUserHdr) + sizeof(rw),
            VFIO_USER_REQUEST, 0);
    g_byte_array_append(dma, (uint8_t *)&rw, sizeof(rw));
    g_assert_cmpint(vu_test_server_send_raw(s, dma->data, dma->len, NULL, 0),
                    ==, 0);

    put_reply(out, msg, &info, sizeof(info));
    g_assert_cmpint(vu_test_server_send_raw(s, out->data, 8, h->fds, 1), ==,
                    0);
    g_assert_cmpint(vu_test_server_send_raw(s, out->data + 8, out->len - 8,
                                            NULL, 0), ==, 0);
    g_byte_array_set_size(out, 0);
    put_hdr(out, msg->hdr.id ^ 0x8000, msg->hdr.command, sizeof(VFIOUserHdr),
            VFIO_USER_REPLY, 0);
    send_with_fds_from(h, s, out, 1);
    return VU_TEST_HOOK_REPLACE;
}
/* Disconnect or error on the other setup commands */
typedef struct SetupCase {
    const char *name;
    uint16_t cmd;
    int64_t index;
    bool disconnect;            /* else an error reply with EIO */
    const char *expect;
} SetupCase;

static void test_setup_fails(const void *data)
{
    const SetupCase *sc = data;
    TestCtx c = { 0 };

    ctx_server(&c, NULL, true);
    ctx_qemu(&c);
    c.h.once = true;
    c.h.flags = VFIO_USER_ERROR;
    c.h.err = EIO;
    hostile_arm(&c.h, sc->cmd, sc->index,
                sc->disconnect ? fn_disconnect : fn_canned);
    check_realize_fails(&c, sc->expect);
    ctx_stop(&c);
}

static const SetupCase setup_cases[] = {
    { "get-info/disconnect", VFIO_USER_DEVICE_GET_INFO, -1, true,
      "cannot get device info" },
    { "get-region-info/disconnect", VFIO_USER_DEVICE_GET_REGION_INFO,
      VFIO_PCI_BAR0_REGION_INDEX, true,
      "region 0 info: Connection reset by peer" },
    { "get-region-info/error", VFIO_USER_DEVICE_GET_REGION_INFO,
      VFIO_PCI_CONFIG_REGION_INDEX, false, "config info: Input/output error" },
    { "get-irq-info/disconnect", VFIO_USER_DEVICE_GET_IRQ_INFO,
      VFIO_PCI_MSIX_IRQ_INDEX, true, "MSI-X irq info" },
    { "dma-map/disconnect", VFIO_USER_DMA_MAP, -1, true,
      "Connection reset by peer" },
    { "dma-map/error", VFIO_USER_DMA_MAP, -1, false, "Input/output error" },
    { "set-irqs/error", VFIO_USER_DEVICE_SET_IRQS, -1, false,
      "SET_IRQS failure: Input/output error" },
    { "set-irqs/disconnect", VFIO_USER_DEVICE_SET_IRQS, -1, true,
      "SET_IRQS failure: Connection reset by peer" },
};

/* A reply too short to hold what was asked */
static void test_get_info_short(void)
{
    TestCtx c = { 0 };
    uint32_t half[2] = { 16, VFIO_DEVICE_FLAGS_PCI };

    ctx_server(&c, NULL, true);
    ctx_qemu(&c);
    g_byte_array_append(c.h.canned, (uint8_t *)half, sizeof(half));
    hostile_arm(&c.h, VFIO_USER_DEVICE_GET_INFO, -1, fn_canned);
    check_realize_fails(&c, "cannot get device info");
    ctx_stop(&c);
}

typedef struct InfoCase {
    const char *name;
    uint32_t flags;
    uint32_t num_regions;
    uint32_t num_irqs;
} InfoCase;

static const InfoCase info_cases[] = {
    { "huge-counts", VFIO_DEVICE_FLAGS_PCI, UINT32_MAX, UINT32_MAX },
    { "huge-regions", VFIO_DEVICE_FLAGS_PCI, 1000000, VFIO_PCI_NUM_IRQS },
    { "huge-irqs", VFIO_DEVICE_FLAGS_PCI, VFIO_PCI_NUM_REGIONS, 1000000 },
    { "no-config-region", VFIO_DEVICE_FLAGS_PCI, 3, VFIO_PCI_NUM_IRQS },
    { "not-pci", VFIO_DEVICE_FLAGS_PLATFORM, VFIO_PCI_NUM_REGIONS,
      VFIO_PCI_NUM_IRQS },
};

static void test_get_info_absurd(const void *data)
{
    const InfoCase *ic = data;
    VFIOUserDeviceInfo info = {
        .argsz = sizeof(info), .flags = ic->flags,
        .num_regions = ic->num_regions, .num_irqs = ic->num_irqs,
    };
    TestCtx c = { 0 };

    ctx_server(&c, NULL, true);
    ctx_qemu(&c);
    g_byte_array_append(c.h.canned, (uint8_t *)&info, sizeof(info));
    hostile_arm(&c.h, VFIO_USER_DEVICE_GET_INFO, -1, fn_canned);
    check_realize_fails(&c, "cannot get device info");
    ctx_stop(&c);
}

/* GET_REGION_INFO replies the client must refuse (or survive) */
typedef enum {
    RI_HUGE_SIZE,
    RI_HUGE_POW2,
    RI_ODD_SIZE,
    RI_OFFSET_OVERFLOW,
    RI_ARGSZ_HUGE,
    RI_WRONG_INDEX,
    RI_SHORT,
    RI_CAP_LOOP,
    RI_CAP_SELF,
    RI_CAP_OUTSIDE,
    RI_CAP_UNALIGNED,
    RI_SPARSE_OUTSIDE,
    RI_SPARSE_OVERFLOW,
    RI_SPARSE_TOO_MANY,
    RI_SPARSE_ALIGN4,
    RI_ALL_FLAGS,
} RegionCorruption;

typedef struct RegionCase {
    const char *name;
    uint32_t index;
    RegionCorruption what;
    const char *expect;
} RegionCase;

static void build_region_info(GByteArray *out, const RegionCase *rc)
{
    struct {
        VFIOUserRegionInfo info;
        union {
            struct {
                struct vfio_region_info_cap_sparse_mmap sp;
                struct vfio_region_sparse_mmap_area areas[2];
            } sparse;
            struct vfio_region_info_cap_type type[2];
        };
    } QEMU_PACKED r = {
        .info = {
            .argsz = sizeof(VFIOUserRegionInfo),
            .flags = VFIO_REGION_INFO_FLAG_READ |
                     VFIO_REGION_INFO_FLAG_WRITE,
            .index = rc->index,
            .size = rc->index == VFIO_PCI_BAR2_REGION_INDEX ?
                    VU_TEST_BAR2_SIZE : VU_TEST_BAR0_SIZE,
        },
    };
    size_t len = sizeof(r.info);

    switch (rc->what) {
    case RI_HUGE_SIZE:
        r.info.size = 0x8000000000000000ULL;
        break;
    case RI_HUGE_POW2:
        r.info.size = 1ULL << 40;
        break;
    case RI_ODD_SIZE:
        r.info.size = 0x3000;
        break;
    case RI_OFFSET_OVERFLOW:
        r.info.offset = INT64_MAX;
        break;
    case RI_ARGSZ_HUGE:
        r.info.argsz = UINT32_MAX;
        break;
    case RI_WRONG_INDEX:
        r.info.index = rc->index + 1;
        break;
    case RI_SHORT:
        len = 20;
        break;
    case RI_ALL_FLAGS:
        /* mmappable without an fd, caps without a chain, unknown bits */
        r.info.flags = UINT32_MAX;
        break;
    case RI_CAP_LOOP:
    case RI_CAP_SELF:
    case RI_CAP_UNALIGNED:
        r.info.flags |= VFIO_REGION_INFO_FLAG_CAPS;
        r.info.cap_offset = sizeof(r.info);
        r.type[0].header.id = VFIO_REGION_INFO_CAP_TYPE;
        r.type[0].header.version = 1;
        r.type[0].header.next = rc->what == RI_CAP_SELF ?
                                sizeof(r.info) : sizeof(r.info) + 16;
        r.type[1] = r.type[0];
        r.type[1].header.next = sizeof(r.info);
        if (rc->what == RI_CAP_UNALIGNED) {
            r.type[0].header.next = sizeof(r.info) + 17;
        }
        len = sizeof(r.info) + sizeof(r.type);
        break;
    case RI_CAP_OUTSIDE:
        r.info.flags |= VFIO_REGION_INFO_FLAG_CAPS;
        r.info.cap_offset = 0x1000;
        break;
    case RI_SPARSE_OUTSIDE:
    case RI_SPARSE_OVERFLOW:
    case RI_SPARSE_TOO_MANY:
    case RI_SPARSE_ALIGN4:
        r.info.flags |= VFIO_REGION_INFO_FLAG_CAPS;
        r.info.cap_offset = sizeof(r.info);
        r.sparse.sp.header.id = VFIO_REGION_INFO_CAP_SPARSE_MMAP;
        r.sparse.sp.header.version = 1;
        r.sparse.sp.nr_areas = rc->what == RI_SPARSE_TOO_MANY ? 100000 : 2;
        r.sparse.areas[0].offset = 0;
        r.sparse.areas[0].size = 0x1000;
        r.sparse.areas[1].offset = rc->what == RI_SPARSE_OVERFLOW ?
                                   UINT64_MAX - 0xfff : 0xf000;
        r.sparse.areas[1].size = 0x2000;
        if (rc->what == RI_SPARSE_ALIGN4) {
            /* two valid areas: only where the capability sits is wrong */
            r.sparse.areas[0].size = VU_TEST_BAR2_SIZE / 2;
            r.sparse.areas[1].offset = VU_TEST_BAR2_SIZE / 2;
            r.sparse.areas[1].size = VU_TEST_BAR2_SIZE / 2;
        }
        len = sizeof(r.info) + sizeof(r.sparse);
        break;
    }
    if (rc->what == RI_SPARSE_ALIGN4) {
        /*
         * The same capability 4 bytes further: aligned to 4 but not to
         * 8, where the kernel puts capabilities and their 64-bit fields.
         */
        static const uint8_t pad[4];

        r.info.cap_offset = sizeof(r.info) + sizeof(pad);
        r.info.argsz = len + sizeof(pad);
        g_byte_array_append(out, (uint8_t *)&r.info, sizeof(r.info));
        g_byte_array_append(out, pad, sizeof(pad));
        g_byte_array_append(out, (uint8_t *)&r.sparse, sizeof(r.sparse));
        return;
    }
    if (rc->what != RI_ARGSZ_HUGE && len > r.info.argsz) {
        r.info.argsz = len;
    }
    g_byte_array_append(out, (uint8_t *)&r, len);
}

static void test_region_info(const void *data)
{
    const RegionCase *rc = data;
    TestCtx c = { 0 };

    ctx_server(&c, NULL, true);
    ctx_qemu(&c);
    build_region_info(c.h.canned, rc);
    hostile_arm(&c.h, VFIO_USER_DEVICE_GET_REGION_INFO, rc->index,
                fn_canned);
    if (rc->expect) {
        check_realize_fails(&c, rc->expect);
    } else {
        check_realize_works(&c);
    }
    ctx_stop(&c);
}

#define BAR0 VFIO_PCI_BAR0_REGION_INDEX
#define BAR2 VFIO_PCI_BAR2_REGION_INDEX

/* A refused answer is a protocol error, not the caller's bad argument */
#define REFUSED0 "failed to get region 0 info: Protocol error"
#define REFUSED2 "failed to get region 2 info: Protocol error"

static const RegionCase region_cases[] = {
    { "huge-size", BAR0, RI_HUGE_SIZE, REFUSED0 },
    /* 1 TiB for a 32-bit BAR: it can never be mapped */
    { "huge-pow2-size", BAR0, RI_HUGE_POW2, "BAR0" },
    { "odd-size", BAR0, RI_ODD_SIZE, "BAR0 size 0x3000 is not a power" },
    { "offset-overflow", BAR0, RI_OFFSET_OVERFLOW, REFUSED0 },
    { "argsz-huge", BAR0, RI_ARGSZ_HUGE, REFUSED0 },
    { "wrong-index", BAR0, RI_WRONG_INDEX, REFUSED0 },
    { "short", BAR0, RI_SHORT, REFUSED0 },
    { "cap-loop", BAR2, RI_CAP_LOOP, REFUSED2 },
    { "cap-self-loop", BAR2, RI_CAP_SELF, REFUSED2 },
    { "cap-outside-message", BAR2, RI_CAP_OUTSIDE, REFUSED2 },
    { "cap-unaligned", BAR2, RI_CAP_UNALIGNED, REFUSED2 },
    { "sparse-outside-region", BAR2, RI_SPARSE_OUTSIDE, REFUSED2 },
    { "sparse-overflow", BAR2, RI_SPARSE_OVERFLOW, REFUSED2 },
    { "sparse-too-many-areas", BAR2, RI_SPARSE_TOO_MANY, REFUSED2 },
    /* found by the fuzzer: UBSan saw the misaligned 64-bit reads */
    { "sparse-cap-aligned-to-4", BAR2, RI_SPARSE_ALIGN4, REFUSED2 },
    { "all-flags", BAR0, RI_ALL_FLAGS, NULL },
};

/* An MSI-X irq count no device has */
static void test_irq_info_absurd(void)
{
    VFIOUserIRQInfo info = {
        .argsz = sizeof(info), .flags = VFIO_IRQ_INFO_EVENTFD,
        .index = VFIO_PCI_MSIX_IRQ_INDEX, .count = UINT32_MAX,
    };
    TestCtx c = { 0 };

    ctx_server(&c, NULL, true);
    ctx_qemu(&c);
    g_byte_array_append(c.h.canned, (uint8_t *)&info, sizeof(info));
    hostile_arm(&c.h, VFIO_USER_DEVICE_GET_IRQ_INFO, VFIO_PCI_MSIX_IRQ_INDEX,
                fn_canned);
    check_realize_fails(&c, "MSI-X irq info");
    ctx_stop(&c);
}

/*
 * BAR1 declared mappable with an fd that cannot back it: the client must
 * not crash, and BAR1 still works through messages.
 */
typedef enum {
    FD_EVENTFD,
    FD_PIPE,
    FD_READONLY,
    FD_SHORT,
    FD_OVERLAP,                 /* a good fd, overlapping sparse areas */
} BadFdKind;

static int make_bad_fd(BadFdKind kind, int *other)
{
    int p[2], fd;
    g_autofree char *path = NULL;

    *other = -1;
    switch (kind) {
    case FD_EVENTFD:
        return eventfd(0, EFD_CLOEXEC);
    case FD_PIPE:
        g_assert_cmpint(pipe(p), ==, 0);
        *other = p[1];
        return p[0];
    case FD_READONLY:
        fd = g_file_open_tmp("vfio-user-hostile-XXXXXX", &path, NULL);
        g_assert_cmpint(fd, >=, 0);
        g_assert_cmpint(ftruncate(fd, VU_TEST_BAR1_SIZE), ==, 0);
        close(fd);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        unlink(path);
        return fd;
    case FD_SHORT:
        return qemu_memfd_create("short", 4096, false, 0, 0, NULL);
    case FD_OVERLAP:
        return qemu_memfd_create("bar1", VU_TEST_BAR1_SIZE, false, 0, 0,
                                 NULL);
    }
    g_assert_not_reached();
}

static void test_region_bad_fd(const void *data)
{
    BadFdKind kind = GPOINTER_TO_INT(data);
    struct {
        VFIOUserRegionInfo info;
        struct vfio_region_info_cap_sparse_mmap sp;
        struct vfio_region_sparse_mmap_area areas[3];
    } QEMU_PACKED r = {
        .info = {
            .argsz = sizeof(r.info), .index = VFIO_PCI_BAR1_REGION_INDEX,
            .flags = VFIO_REGION_INFO_FLAG_READ |
                     VFIO_REGION_INFO_FLAG_WRITE |
                     VFIO_REGION_INFO_FLAG_MMAP,
            .size = VU_TEST_BAR1_SIZE,
        },
        .sp = {
            .header.id = VFIO_REGION_INFO_CAP_SPARSE_MMAP,
            .header.version = 1,
            .nr_areas = 3,
        },
        .areas = { { 0, 0x3000 }, { 0x1000, 0x1000 }, { 0x2000, 0x2000 } },
    };
    size_t len = sizeof(r.info);
    TestCtx c = { 0 };
    QPCIBar bar1;
    int other, fd;
    uint32_t v;

    fd = make_bad_fd(kind, &other);
    g_assert_cmpint(fd, >=, 0);
    ctx_server(&c, NULL, true);
    ctx_qemu(&c);
    if (kind == FD_OVERLAP) {
        r.info.flags |= VFIO_REGION_INFO_FLAG_CAPS;
        r.info.cap_offset = sizeof(r.info);
        r.info.argsz = len = sizeof(r);
    }
    g_byte_array_append(c.h.canned, (uint8_t *)&r, len);
    c.h.fds = &fd;
    c.h.nfds = 1;
    hostile_arm(&c.h, VFIO_USER_DEVICE_GET_REGION_INFO,
                VFIO_PCI_BAR1_REGION_INDEX, fn_canned);
    check_realize_works(&c);

    bar1 = qpci_iomap(c.f.dev, 1, NULL);
    if (kind == FD_OVERLAP) {
        /* Mapped, overlaps and all: the data is in our memfd. */
        qpci_io_writel(c.f.dev, bar1, 0x1800, 0x600dcafe);
        g_assert_cmphex(qpci_io_readl(c.f.dev, bar1, 0x1800), ==, 0x600dcafe);
        g_assert_cmpint(pread(fd, &v, sizeof(v), 0x1800), ==, sizeof(v));
        g_assert_cmphex(v, ==, 0x600dcafe);
        ctx_stop(&c);
        close(fd);
        return;
    }
    /* Past the end of the short file: by message, or at least not fatal */
    qpci_io_writel(c.f.dev, bar1, 0x8000, 0x600dcafe);
    v = qpci_io_readl(c.f.dev, bar1, 0x8000);
    assert_alive(&c);
    g_assert_cmphex(v, ==, 0x600dcafe);
    vu_test_server_bar1_read(c.f.srv, 0x8000, &v, sizeof(v));
    g_assert_cmphex(v, ==, 0x600dcafe);
    ctx_stop(&c);
    close(fd);
    if (other >= 0) {
        close(other);
    }
}

/* The server DMAs before the client has set anything up */
static void test_dma_during_realize(void)
{
    TestCtx c = { 0 };

    ctx_server(&c, NULL, true);
    ctx_qemu(&c);
    c.h.once = true;
    hostile_arm(&c.h, VFIO_USER_DEVICE_GET_INFO, -1, fn_dma_first);
    check_realize_works(&c);
    assert_hits(&c.h, 1);
    g_assert_cmpint(c.h.err, ==, ENOSYS);
    ctx_stop(&c);
}

/* A slow GET_INFO: realize fails after the timeout, not later */
static void test_get_info_stall(void)
{
    TestCtx c = { .timeout_ms = FAST_TIMEOUT_MS };
    gint64 t0;

    ctx_server(&c, NULL, true);
    ctx_qemu(&c);
    c.h.delay_ms = 20000;
    c.h.once = true;
    hostile_arm(&c.h, VFIO_USER_DEVICE_GET_INFO, -1, fn_sleep);
    t0 = g_get_monotonic_time();
    check_realize_fails(&c, "Connection timed out");
    g_assert_cmpint(g_get_monotonic_time() - t0, <, 15 * G_USEC_PER_SEC);
    ctx_stop(&c);
}

/*
 * A reply whose fd comes with the first bytes of its header, with a stray
 * reply with fds queued behind it (fn_region_fd_split_header()): BAR1 is
 * mapped from the reply's fd, not from the stray's.
 */
static void test_region_fd_split_header(void)
{
    int fds[3];
    TestCtx c = { 0 };
    VUTestServerStats st;
    QPCIBar bar1;
    uint32_t v = 0;

    fds[0] = qemu_memfd_create("bar1", VU_TEST_BAR1_SIZE, false, 0, 0, NULL);
    g_assert_cmpint(fds[0], >=, 0);
    for (size_t i = 1; i < ARRAY_SIZE(fds); i++) {
        fds[i] = eventfd(0, EFD_CLOEXEC);
        g_assert_cmpint(fds[i], >=, 0);
    }
    ctx_server(&c, NULL, true);
    ctx_qemu(&c);
    c.h.once = true;
    c.h.fds = fds;
    c.h.nfds = ARRAY_SIZE(fds);
    hostile_arm(&c.h, VFIO_USER_DEVICE_GET_REGION_INFO,
                VFIO_PCI_BAR1_REGION_INDEX, fn_region_fd_split_header);
    check_realize_works(&c);

    /* The client did serve the DMA_READ: it was busy while we wrote. */
    for (int i = 0; i < WAIT_MS; i++) {
        vu_test_server_get_stats(c.f.srv, &st);
        if (st.stale_replies) {
            break;
        }
        g_usleep(1000);
    }
    g_assert_cmpuint(st.stale_replies, ==, 1);

    bar1 = qpci_iomap(c.f.dev, 1, NULL);
    qpci_io_writel(c.f.dev, bar1, 0x100, 0x600dcafe);
    g_assert_cmpint(pread(fds[0], &v, sizeof(v), 0x100), ==, sizeof(v));
    g_assert_cmphex(v, ==, 0x600dcafe);
    g_assert(!vu_fixture_region_written(&c.f, VFIO_PCI_BAR1_REGION_INDEX,
                                        0x100));
    ctx_stop(&c);
    for (size_t i = 0; i < ARRAY_SIZE(fds); i++) {
        close(fds[i]);
    }
}

void hostile_add_realize_tests(void)
{
    ADD_CASES("/vfio-user-hostile/realize", setup_cases, test_setup_fails);
    qtest_add_func("/vfio-user-hostile/realize/get-info/short",
                   test_get_info_short);
    qtest_add_func("/vfio-user-hostile/realize/get-info/stall",
                   test_get_info_stall);
    ADD_CASES("/vfio-user-hostile/realize/get-info", info_cases,
              test_get_info_absurd);
    ADD_CASES("/vfio-user-hostile/realize/region-info", region_cases,
              test_region_info);
    qtest_add_func("/vfio-user-hostile/realize/irq-info/huge-count",
                   test_irq_info_absurd);
    qtest_add_data_func("/vfio-user-hostile/realize/region-fd/eventfd",
                        GINT_TO_POINTER(FD_EVENTFD), test_region_bad_fd);
    qtest_add_data_func("/vfio-user-hostile/realize/region-fd/pipe",
                        GINT_TO_POINTER(FD_PIPE), test_region_bad_fd);
    qtest_add_data_func("/vfio-user-hostile/realize/region-fd/read-only",
                        GINT_TO_POINTER(FD_READONLY), test_region_bad_fd);
    qtest_add_data_func("/vfio-user-hostile/realize/region-fd/too-short",
                        GINT_TO_POINTER(FD_SHORT), test_region_bad_fd);
    qtest_add_data_func("/vfio-user-hostile/realize/region-fd/"
                        "sparse-overlap", GINT_TO_POINTER(FD_OVERLAP),
                        test_region_bad_fd);
    qtest_add_func("/vfio-user-hostile/realize/dma-before-setup",
                   test_dma_during_realize);
    qtest_add_func("/vfio-user-hostile/realize/region-fd-split-header",
                   test_region_fd_split_header);
}
