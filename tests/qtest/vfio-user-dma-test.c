/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qtests for vfio-user-pci's secure DMA: with secure-dma=on no memory fd
 * reaches the server, which must ask for every access with DMA_READ or
 * DMA_WRITE, and the client refuses whatever lies outside its current
 * mappings, breaks their permission, overflows or exceeds its limits.
 *
 * The server is the test server of vfio-user-server.c, in a thread of
 * this process; it sends the DMA requests a test asks for and reports
 * the client's answer.
 */

#include "qemu/osdep.h"
#include "libqtest.h"
#include "libqos/pci.h"
#include "libqos/pci-pc.h"
#include "hw/pci/pci_regs.h"
#include "qobject/qdict.h"
#include "hw/i386/intel_iommu_internal.h"
#include "vfio-user-server.h"
#include "vfio-user-fixture.h"

#define SLOT            VU_FIXTURE_SLOT
#define DEVFN           VU_FIXTURE_DEVFN
#define RAM_MB          256
#define RAM_END         ((uint64_t)RAM_MB << 20)
#define GUEST_SCRATCH   0x500000
#define GUEST_TARGET    0x600000
#define CLIENT_MAX_XFER (1024 * 1024)   /* what the client advertises */
#define BIOS_ROM        0xfffc0000ULL   /* the firmware, mapped read-only */
#define DIMM_SIZE       (128 * 1024 * 1024)
/* ACPI memory hot-plug registers of the pc machine (PIIX4 PM) */
#define MEMHP_IO_BASE   0x0a00
#define MEMHP_SELECTOR  0x00
#define MEMHP_FLAGS     0x14
#define MEMHP_EJECT     0x08
#define GUARD_SEED      0xa5

/* Guest RAM with an fd, which secure-dma must never hand out. */
#define MEMFD_RAM VU_FIXTURE_MEMFD_RAM
#define SECURE  ",secure-dma=on"

typedef struct TestCtx {
    VUFixture f;
    uint64_t good_dma;          /* where a DMA must work; 0: GUEST_SCRATCH */
    uint64_t good_gpa;          /* the guest page it reaches */
} TestCtx;

/* Start a server and QEMU with the device at slot 4. */
static void ctx_start_args(TestCtx *c, const char *qemu_args,
                           const char *dev_extra)
{
    vu_fixture_server(&c->f, "vfio-user-dma-test", NULL);
    vu_fixture_start(&c->f, qemu_args, dev_extra);
}

/* ... on a pc with memfd RAM */
static void ctx_start(TestCtx *c, const char *dev_extra)
{
    ctx_start_args(c, "-machine pc -m 256M " MEMFD_RAM, dev_extra);
}

/* The DMA_MAP of [start, end), or NULL. */
static VUTestDMAMapRecord *find_map(GArray *maps, uint64_t start,
                                    uint64_t end)
{
    for (guint i = 0; i < maps->len; i++) {
        VUTestDMAMapRecord *m = &g_array_index(maps, VUTestDMAMapRecord, i);

        if (m->err == 0 && m->iova <= start && end <= m->iova + m->size) {
            return m;
        }
    }
    return NULL;
}

/*
 * The server writes, then reads back, @len bytes at DMA address @addr,
 * by message; both are checked against guest memory at @gpa as qtest
 * sees it.
 */
static void check_server_dma_at(TestCtx *c, uint64_t addr, uint64_t gpa,
                                size_t len)
{
    VUTestServerStats before, after;

    vu_test_server_get_stats(c->f.srv, &before);
    vu_fixture_server_dma_round_trip(&c->f, addr, gpa, len, 3, 101);
    vu_test_server_get_stats(c->f.srv, &after);
    g_assert_cmpuint(after.dma_bytes_written - before.dma_bytes_written, ==,
                     len);
    g_assert_cmpuint(after.dma_bytes_read - before.dma_bytes_read, ==, len);
    g_assert_cmpuint(after.dma_bad_replies, ==, before.dma_bad_replies);
}

static void check_server_dma(TestCtx *c, uint64_t addr, size_t len)
{
    check_server_dma_at(c, addr, addr, len);
}

/* ---------------------------------------------------------------------- */

/*
 * secure-dma=on with memfd RAM: no DMA_MAP carries an fd, yet the server
 * reaches guest RAM both ways by DMA_READ/DMA_WRITE.
 */
static void test_secure_both_directions(void)
{
    const size_t len = VU_TEST_BUF_SIZE;
    g_autoptr(GArray) maps = NULL;
    VUTestServerStats st;
    TestCtx c = { 0 };

    ctx_start(&c, SECURE);

    maps = vu_test_server_dma_maps(c.f.srv);
    g_assert_cmpuint(maps->len, >, 0);
    g_assert_cmpuint(vu_test_server_cmd_count(c.f.srv, VFIO_USER_DMA_MAP), ==,
                     maps->len);
    g_assert_cmpuint(vu_test_server_cmd_fds(c.f.srv, VFIO_USER_DMA_MAP), ==, 0);
    for (guint i = 0; i < maps->len; i++) {
        VUTestDMAMapRecord *m = &g_array_index(maps, VUTestDMAMapRecord, i);

        g_assert_cmpint(m->err, ==, 0);
        g_assert_cmpuint(m->nfds, ==, 0);
    }
    g_assert(find_map(maps, GUEST_SCRATCH, GUEST_SCRATCH + 0x10000));

    check_server_dma(&c, GUEST_SCRATCH + 0x123, 3 * 4096 + 100);
    /* The largest transfer the client allows, in one message each way. */
    check_server_dma(&c, GUEST_TARGET, CLIENT_MAX_XFER);
    /* The last bytes of RAM. */
    check_server_dma(&c, RAM_END - 64, 64);

    /* The device's own engine, by message too. */
    vu_fixture_engine_dma(&c.f, false, GUEST_SCRATCH, 0, len, 21);
    vu_fixture_engine_dma(&c.f, true, GUEST_TARGET, 0, len, 22);

    vu_test_server_get_stats(c.f.srv, &st);
    g_assert_cmpuint(st.dma_bytes_mmap, ==, 0);
    g_assert_cmpuint(st.dma_error_replies, ==, 0);
    g_assert_cmpuint(vu_test_server_cmd_fds(c.f.srv, VFIO_USER_DMA_MAP), ==, 0);
    vu_fixture_stop(&c.f);
}

/* secure-dma=off, for contrast: the same RAM is mapped with its fd. */
static void test_insecure_ram_fd(void)
{
    g_autoptr(GArray) maps = NULL;
    VUTestDMAMapRecord *ram;
    TestCtx c = { 0 };

    ctx_start(&c, NULL);
    maps = vu_test_server_dma_maps(c.f.srv);
    ram = find_map(maps, GUEST_SCRATCH, GUEST_SCRATCH + 0x10000);
    g_assert(ram);
    g_assert_cmpuint(ram->nfds, ==, 1);
    g_assert_cmpuint(vu_test_server_cmd_fds(c.f.srv, VFIO_USER_DMA_MAP), >=, 1);
    vu_fixture_stop(&c.f);
}

/* ---------------------------------------------------------------------- */

#define GUARD_LEN       0x3000

/*
 * Send @req, which the client must refuse with @err, and check that the
 * guest memory at @guard (GUARD_LEN bytes, if not 0) is unchanged and
 * that the connection still serves a good DMA afterwards.
 */
static void check_refused(TestCtx *c, const VUTestDMARequest *req, int err,
                          uint64_t guard)
{
    g_autofree uint8_t *before = g_malloc(GUARD_LEN);
    g_autofree uint8_t *after = g_malloc(GUARD_LEN);
    VUTestServerStats st;
    VUTestDMAResult res;
    unsigned refused;
    int ret;

    if (guard) {
        vu_fixture_fill_pattern(before, GUARD_LEN, GUARD_SEED);
        qtest_memwrite(c->f.qts, guard, before, GUARD_LEN);
        /* Read back: ROM ignores the write and keeps its contents. */
        qtest_memread(c->f.qts, guard, before, GUARD_LEN);
    }
    vu_test_server_get_stats(c->f.srv, &st);
    refused = st.dma_error_replies;

    ret = vu_test_server_dma(c->f.srv, req, &res);
    g_test_message("%s 0x%" PRIx64 " count 0x%" PRIx64 " data %zu: %d",
                   req->write ? "DMA_WRITE" : "DMA_READ", req->address,
                   req->count, req->data_len, ret);
    g_assert_cmpint(ret, ==, -err);
    g_assert(res.error_reply);
    g_assert_cmpint(res.err, ==, err);
    g_assert(!res.data || res.data->len == 0);
    if (res.data) {
        g_byte_array_unref(res.data);
    }
    vu_test_server_get_stats(c->f.srv, &st);
    g_assert_cmpuint(st.dma_error_replies, ==, refused + 1);

    if (guard) {
        qtest_memread(c->f.qts, guard, after, GUARD_LEN);
        g_assert_cmpmem(after, GUARD_LEN, before, GUARD_LEN);
    }

    /* The connection lives on, and in step. */
    if (c->good_dma) {
        check_server_dma_at(c, c->good_dma, c->good_gpa, 0x800);
    } else {
        check_server_dma(c, GUEST_SCRATCH, 0x800);
    }
    g_assert_cmphex(vu_fixture_bar0_readl(&c->f, VU_TEST_REG_ID), ==,
                    VU_TEST_ID_MAGIC);
}

static void refuse_write(TestCtx *c, uint64_t addr, uint64_t count, int err,
                         uint64_t guard)
{
    g_autofree uint8_t *data = g_malloc(count);
    VUTestDMARequest req = {
        .write = true, .address = addr, .count = count,
        .data = data, .data_len = count,
    };

    memset(data, 0x5c, count);
    check_refused(c, &req, err, guard);
}

static void refuse_read(TestCtx *c, uint64_t addr, uint64_t count, int err)
{
    VUTestDMARequest req = { .address = addr, .count = count };

    check_refused(c, &req, err, 0);
}

/* An address no mapping covers: above the top of RAM. */
static void test_refuse_out_of_range(void)
{
    TestCtx c = { 0 };

    ctx_start(&c, SECURE);
    refuse_write(&c, RAM_END + 0x100000, 0x1000, EFAULT,
                 RAM_END - GUARD_LEN);
    refuse_read(&c, RAM_END + 0x100000, 0x1000, EFAULT);
    refuse_write(&c, RAM_END, 1, EFAULT, RAM_END - GUARD_LEN);
    refuse_read(&c, RAM_END, 1, EFAULT);
    /* The 640 KiB - 768 KiB VGA window is MMIO, not a mapping either. */
    refuse_write(&c, 0xa0000, 0x100, EFAULT, 0xa0000 - GUARD_LEN);
    refuse_read(&c, 0xa0000, 0x100, EFAULT);
    vu_fixture_stop(&c.f);
}

/* Starts in RAM, runs past its end: nothing at all may be written. */
static void test_refuse_partly_mapped(void)
{
    TestCtx c = { 0 };

    ctx_start(&c, SECURE);
    refuse_write(&c, RAM_END - 0x800, 0x1000, EFAULT, RAM_END - GUARD_LEN);
    refuse_read(&c, RAM_END - 0x800, 0x1000, EFAULT);
    refuse_write(&c, RAM_END - 1, 2, EFAULT, RAM_END - GUARD_LEN);
    /* Ends in the VGA hole after starting in low RAM. */
    refuse_write(&c, 0xa0000 - 0x100, 0x200, EFAULT, 0xa0000 - GUARD_LEN);
    vu_fixture_stop(&c.f);
}

/* The firmware ROM is mapped read-only: it can be read, not written. */
static void test_refuse_read_only(void)
{
    g_autoptr(GArray) maps = NULL;
    g_autofree uint8_t *rom = g_malloc(0x1000);
    g_autofree uint8_t *in = g_malloc(0x1000);
    VUTestDMAMapRecord *m;
    TestCtx c = { 0 };

    ctx_start(&c, SECURE);
    maps = vu_test_server_dma_maps(c.f.srv);
    m = find_map(maps, BIOS_ROM, BIOS_ROM + 0x1000);
    g_assert(m);
    g_assert_cmphex(m->flags, ==, VFIO_USER_F_DMA_REGION_READ);

    qtest_memread(c.f.qts, BIOS_ROM, rom, 0x1000);
    g_assert_cmpint(vu_test_server_dma_read(c.f.srv, BIOS_ROM, in, 0x1000), ==,
                    0);
    g_assert_cmpmem(in, 0x1000, rom, 0x1000);

    refuse_write(&c, BIOS_ROM, 0x1000, EPERM, BIOS_ROM);
    refuse_write(&c, BIOS_ROM + 0x1000, 1, EPERM, BIOS_ROM);
    /* The ROM's read-only shadow below 1 MiB, too. */
    refuse_write(&c, 0xf0000, 0x100, EPERM, 0xf0000 - 0x1000);
    vu_fixture_stop(&c.f);
}

/* The address wraps around: no partial access, no wrap to address 0. */
static void test_refuse_overflow(void)
{
    TestCtx c = { 0 };

    ctx_start(&c, SECURE);
    refuse_write(&c, 0xfffffffffffff000ULL, 0x2000, EFAULT, 0);
    refuse_read(&c, 0xfffffffffffff000ULL, 0x2000, EFAULT);
    refuse_write(&c, UINT64_MAX, 2, EFAULT, 0);
    vu_fixture_stop(&c.f);
}

/* A count above the max_data_xfer_size the client advertised. */
static void test_refuse_too_big(void)
{
    /* A count no client could take, with a little data only. */
    VUTestDMARequest huge_write = {
        .write = true, .address = GUEST_TARGET, .count = UINT64_MAX / 2,
        .data_len = 0x1000,
    };
    VUTestClientInfo ci;
    TestCtx c = { 0 };

    ctx_start(&c, SECURE);
    vu_test_server_get_client_info(c.f.srv, &ci);
    g_free(ci.json);
    g_assert_cmpuint(ci.max_data_xfer_size, ==, CLIENT_MAX_XFER);

    refuse_read(&c, GUEST_TARGET, CLIENT_MAX_XFER + 1, E2BIG);
    refuse_read(&c, GUEST_TARGET, UINT64_MAX / 2, E2BIG);
    check_refused(&c, &huge_write, E2BIG, GUEST_TARGET);
    vu_fixture_stop(&c.f);
}

/*
 * A well-formed DMA_WRITE one byte over the limit, data included: the
 * client answers E2BIG and goes on, it does not drop the connection.
 */
static void test_refuse_too_big_write(void)
{
    TestCtx c = { 0 };

    ctx_start(&c, SECURE);
    refuse_write(&c, GUEST_TARGET, CLIENT_MAX_XFER + 1, E2BIG,
                 GUEST_TARGET);
    vu_fixture_stop(&c.f);
}

/* The message carries more or less data than its count says. */
static void test_refuse_size_mismatch(void)
{
    g_autofree uint8_t *data = g_malloc(0x1000);
    VUTestDMARequest req = { .address = GUEST_TARGET, .data = data };
    TestCtx c = { 0 };

    memset(data, 0x3c, 0x1000);
    ctx_start(&c, SECURE);

    /* DMA_WRITE with less data than count. */
    req.write = true;
    req.count = 0x1000;
    req.data_len = 0x800;
    check_refused(&c, &req, EINVAL, GUEST_TARGET);
    /* DMA_WRITE with more. */
    req.count = 0x800;
    req.data_len = 0x1000;
    check_refused(&c, &req, EINVAL, GUEST_TARGET);
    /* DMA_WRITE with none. */
    req.count = 0x1000;
    req.data_len = 0;
    check_refused(&c, &req, EINVAL, GUEST_TARGET);
    /* DMA_READ carrying data. */
    req.write = false;
    req.count = 0x1000;
    req.data_len = 8;
    check_refused(&c, &req, EINVAL, GUEST_TARGET);
    req.data_len = 0x1000;
    check_refused(&c, &req, EINVAL, GUEST_TARGET);
    vu_fixture_stop(&c.f);
}

static void qmp_ok(QTestState *qts, QDict *resp)
{
    g_assert(resp);
    if (!qdict_haskey(resp, "return")) {
        g_test_message("QMP error: %s",
                       qdict_get_try_str(qdict_get_qdict(resp, "error"),
                                         "desc"));
        g_assert_not_reached();
    }
    qobject_unref(resp);
}

/* Hot-plug a pc-dimm of DIMM_SIZE over backend @memdev at @addr (0: any). */
static uint64_t plug_dimm(TestCtx *c, const char *id, const char *memdev,
                          uint64_t addr)
{
    QDict *resp;
    uint64_t got;

    if (addr) {
        resp = qtest_qmp(c->f.qts, "{'execute': 'device_add', 'arguments': {"
                         "'driver': 'pc-dimm', 'id': %s, 'memdev': %s,"
                         "'addr': %" PRIu64 "}}", id, memdev, addr);
    } else {
        resp = qtest_qmp(c->f.qts, "{'execute': 'device_add', 'arguments': {"
                         "'driver': 'pc-dimm', 'id': %s, 'memdev': %s}}",
                         id, memdev);
    }
    qmp_ok(c->f.qts, resp);
    resp = qtest_qmp(c->f.qts, "{'execute': 'qom-get', 'arguments': {"
                     "'path': %s, 'property': 'addr'}}", id);
    g_assert(qdict_haskey(resp, "return"));
    got = qdict_get_int(resp, "return");
    qobject_unref(resp);
    g_assert(!addr || got == addr);
    return got;
}

/* device_del, and the guest's side of ACPI memory hot-unplug: eject. */
static void unplug_dimm(TestCtx *c, const char *id)
{
    qtest_qmp_device_del_send(c->f.qts, id);
    qtest_outl(c->f.qts, MEMHP_IO_BASE + MEMHP_SELECTOR, 0);
    qtest_outl(c->f.qts, MEMHP_IO_BASE + MEMHP_FLAGS, MEMHP_EJECT);
    qtest_qmp_eventwait(c->f.qts, "DEVICE_DELETED");
}

static bool was_unmapped(GArray *unmaps, uint64_t iova, uint64_t size)
{
    for (guint i = 0; i < unmaps->len; i++) {
        VUTestDMAUnmapRecord *u =
            &g_array_index(unmaps, VUTestDMAUnmapRecord, i);

        if (u->err == 0 && u->iova == iova && u->size == size) {
            return true;
        }
    }
    return false;
}

/*
 * The DMA_UNMAPs the server has served.  With secure-dma the client
 * posts them (no reply wanted): the reply to a later request, a BAR
 * read, says the server served those before it.
 */
static GArray *server_unmaps(TestCtx *c)
{
    g_assert_cmphex(vu_fixture_bar0_readl(&c->f, VU_TEST_REG_ID), ==,
                    VU_TEST_ID_MAGIC);
    return vu_test_server_dma_unmaps(c->f.srv);
}

/*
 * Guest RAM that goes away: a pc-dimm, hot-plugged, reachable, then
 * hot-unplugged.  Once it is gone the server can no longer reach that
 * memory; plugged again over the same backend, the memory shows that
 * nothing reached it meanwhile.
 */
static void test_refuse_after_unmap(void)
{
    g_autofree uint8_t *guard = g_malloc(GUARD_LEN);
    g_autofree uint8_t *in = g_malloc(GUARD_LEN);
    g_autoptr(GArray) maps = NULL;
    g_autoptr(GArray) maps2 = NULL;
    g_autoptr(GArray) unmaps = NULL;
    VUTestDMAMapRecord *m;
    TestCtx c = { 0 };
    uint64_t addr, target;

    ctx_start_args(&c, "-machine pc -m 256M,slots=2,maxmem=1G " MEMFD_RAM
                   " -object memory-backend-memfd,id=hp0,size=128M,"
                   "share=on", SECURE);
    vu_test_server_clear_log(c.f.srv);
    addr = plug_dimm(&c, "dimm0", "hp0", 0);
    target = addr + 0x10000;
    g_test_message("pc-dimm at 0x%" PRIx64, addr);
    maps = vu_test_server_dma_maps(c.f.srv);
    m = find_map(maps, addr, addr + DIMM_SIZE);
    g_assert(m);
    g_assert_cmpuint(m->iova, ==, addr);
    g_assert_cmpuint(m->size, ==, DIMM_SIZE);
    g_assert_cmpuint(m->nfds, ==, 0);
    check_server_dma(&c, target, 0x4000);

    vu_fixture_fill_pattern(guard, GUARD_LEN, GUARD_SEED);
    qtest_memwrite(c.f.qts, target, guard, GUARD_LEN);
    unplug_dimm(&c, "dimm0");
    unmaps = server_unmaps(&c);
    g_assert(was_unmapped(unmaps, addr, DIMM_SIZE));

    refuse_write(&c, target, GUARD_LEN, EFAULT, 0);
    refuse_read(&c, target, GUARD_LEN, EFAULT);
    refuse_write(&c, addr, 1, EFAULT, 0);
    refuse_write(&c, addr + DIMM_SIZE - 1, 1, EFAULT, 0);

    /* Back at the same address, over the same memory: untouched. */
    vu_test_server_clear_log(c.f.srv);
    plug_dimm(&c, "dimm1", "hp0", addr);
    maps2 = vu_test_server_dma_maps(c.f.srv);
    g_assert(find_map(maps2, addr, addr + DIMM_SIZE));
    qtest_memread(c.f.qts, target, in, GUARD_LEN);
    g_assert_cmpmem(in, GUARD_LEN, guard, GUARD_LEN);
    check_server_dma(&c, target, 0x4000);
    vu_fixture_stop(&c.f);
}

/* ---------------------------------------------------------------------- */

/*
 * The server DMAs before it answers the REGION_WRITE the client waits
 * for: the client serves the DMA meanwhile, well inside its timeout.
 */
static void test_dma_while_waiting(void)
{
    const size_t len = VU_TEST_BUF_SIZE;
    g_autofree uint8_t *out = g_malloc(len);
    g_autofree uint8_t *in = g_malloc(len);
    g_autoptr(GArray) writes = NULL;
    VUTestServerStats st;
    TestCtx c = { 0 };
    bool waited = false;
    int64_t t0, elapsed;

    ctx_start(&c, SECURE ",x-post-writes=off,x-msg-timeout=5000");

    /* Guest to device. */
    vu_fixture_fill_pattern(out, len, 9);
    qtest_memwrite(c.f.qts, GUEST_TARGET, out, len);
    vu_fixture_bar0_writeq(&c.f, VU_TEST_REG_DMA_SRC, GUEST_TARGET);
    vu_fixture_bar0_writeq(&c.f, VU_TEST_REG_DMA_DST, 0);
    vu_fixture_bar0_writeq(&c.f, VU_TEST_REG_DMA_LEN, len);
    t0 = g_get_monotonic_time();
    vu_fixture_bar0_writel(&c.f, VU_TEST_REG_DMA_CMD, VU_TEST_DMA_CMD_START);
    elapsed = g_get_monotonic_time() - t0;
    g_test_message("guest to device: %" PRId64 " us", elapsed);
    g_assert_cmpint(elapsed, <, G_USEC_PER_SEC);
    g_assert_cmphex(vu_test_server_reg_read(c.f.srv, VU_TEST_REG_DMA_STATUS),
                    ==, VU_TEST_DMA_STATUS_DONE);
    vu_test_server_buf_read(c.f.srv, 0, in, len);
    g_assert_cmpmem(in, len, out, len);

    /* Device to guest. */
    vu_fixture_fill_pattern(out, len, 55);
    vu_test_server_buf_write(c.f.srv, 0, out, len);
    vu_fixture_bar0_writeq(&c.f, VU_TEST_REG_DMA_SRC, 0);
    vu_fixture_bar0_writeq(&c.f, VU_TEST_REG_DMA_DST, GUEST_TARGET + 0x10000);
    t0 = g_get_monotonic_time();
    vu_fixture_bar0_writel(&c.f, VU_TEST_REG_DMA_CMD,
                           VU_TEST_DMA_CMD_START | VU_TEST_DMA_CMD_TO_GUEST);
    elapsed = g_get_monotonic_time() - t0;
    g_test_message("device to guest: %" PRId64 " us", elapsed);
    g_assert_cmpint(elapsed, <, G_USEC_PER_SEC);
    g_assert_cmphex(vu_test_server_reg_read(c.f.srv, VU_TEST_REG_DMA_STATUS),
                    ==, VU_TEST_DMA_STATUS_DONE);
    qtest_memread(c.f.qts, GUEST_TARGET + 0x10000, in, len);
    g_assert_cmpmem(in, len, out, len);

    /* Both went by message, and the client did wait for each reply. */
    vu_test_server_get_stats(c.f.srv, &st);
    g_assert_cmpuint(st.dma_bytes_mmap, ==, 0);
    g_assert_cmpuint(st.dma_bytes_read, ==, len);
    g_assert_cmpuint(st.dma_bytes_written, ==, len);
    g_assert_cmpuint(st.dma_timeouts, ==, 0);
    writes = vu_test_server_region_writes(c.f.srv);
    for (guint i = 0; i < writes->len; i++) {
        VUTestRegionWriteRecord *w =
            &g_array_index(writes, VUTestRegionWriteRecord, i);

        if (w->region == VFIO_PCI_BAR0_REGION_INDEX &&
            w->offset == VU_TEST_REG_DMA_CMD) {
            g_assert(!w->no_reply);
            g_assert_cmpint(w->err, ==, 0);
            waited = true;
        }
    }
    g_assert(waited);
    g_assert_cmpuint(vu_fixture_bar0_readl(&c.f, VU_TEST_REG_DMA_COUNT), ==, 2);
    vu_fixture_stop(&c.f);
}

/* ---------------------------------------------------------------------- */

/*
 * DMA through a vIOMMU: the guest's VT-d tables, built here in guest
 * memory, decide what the server can reach.  Second-level translation,
 * 39-bit address width (3 levels), domain 1, bus 0.
 */
#define VTD_BASE        0xfed90000ULL
#define VTD_ROOT        0x100000        /* root table */
#define VTD_CTX         0x101000        /* context table of bus 0 */
#define VTD_L3          0x102000        /* page tables */
#define VTD_L2          0x103000
#define VTD_L1          0x104000
#define VTD_DID         1
#define VTD_AW_39BIT    1               /* context entry AW: 3 levels */
#define VTD_P           1ULL            /* root, context entry present */
#define VTD_PTE_R       1ULL
#define VTD_PTE_W       2ULL
#define IOVA_RW         0x40000000ULL   /* -> GPA_RW */
#define IOVA_RO         0x40001000ULL   /* -> GPA_RO, read-only */
#define IOVA_RW2        0x40002000ULL   /* -> GPA_RW2 */
#define IOVA_NEW        0x40003000ULL   /* mapped late, -> GPA_NEW */
/* What the server is told of: the 1 GiB block around them */
#define IOVA_BLOCK_START 0x40000000ULL
#define IOVA_BLOCK_SIZE  0x40000000ULL
#define IOVA_NONE       0x40004000ULL   /* never mapped */
#define GPA_RW          0x700000ULL
#define GPA_RO          0x702000ULL
#define GPA_RW2         0x705000ULL
#define GPA_NEW         0x707000ULL

static void vtd_writel(TestCtx *c, unsigned reg, uint32_t val)
{
    qtest_writel(c->f.qts, VTD_BASE + reg, val);
}

static void vtd_writeq(TestCtx *c, unsigned reg, uint64_t val)
{
    qtest_writeq(c->f.qts, VTD_BASE + reg, val);
}

static uint32_t vtd_readl(TestCtx *c, unsigned reg)
{
    return qtest_readl(c->f.qts, VTD_BASE + reg);
}

static void vtd_set_pte(TestCtx *c, uint64_t iova, uint64_t pte)
{
    qtest_writeq(c->f.qts, VTD_L1 + ((iova >> 12) & 0x1ff) * 8, pte);
}

/* Build the tables for DEVFN, then turn translation on. */
static void vtd_enable(TestCtx *c)
{
    uint64_t ctx_hi = VTD_AW_39BIT | (VTD_DID << 8);

    qtest_memset(c->f.qts, VTD_ROOT, 0, 5 * 0x1000);
    qtest_writeq(c->f.qts, VTD_ROOT, VTD_CTX | VTD_P);
    qtest_writeq(c->f.qts, VTD_CTX + DEVFN * 16, VTD_L3 | VTD_P);
    qtest_writeq(c->f.qts, VTD_CTX + DEVFN * 16 + 8, ctx_hi);
    qtest_writeq(c->f.qts, VTD_L3 + ((IOVA_RW >> 30) & 0x1ff) * 8,
                 VTD_L2 | VTD_PTE_R | VTD_PTE_W);
    qtest_writeq(c->f.qts, VTD_L2 + ((IOVA_RW >> 21) & 0x1ff) * 8,
                 VTD_L1 | VTD_PTE_R | VTD_PTE_W);
    vtd_set_pte(c, IOVA_RW, GPA_RW | VTD_PTE_R | VTD_PTE_W);
    vtd_set_pte(c, IOVA_RO, GPA_RO | VTD_PTE_R);
    vtd_set_pte(c, IOVA_RW2, GPA_RW2 | VTD_PTE_R | VTD_PTE_W);

    vtd_writeq(c, DMAR_RTADDR_REG, VTD_ROOT);
    vtd_writel(c, DMAR_GCMD_REG, VTD_GCMD_SRTP);
    g_assert(vtd_readl(c, DMAR_GSTS_REG) & VTD_GSTS_RTPS);
    vtd_writeq(c, DMAR_CCMD_REG, VTD_CCMD_ICC | VTD_CCMD_GLOBAL_INVL);
    vtd_writeq(c, DMAR_IOTLB_REG, VTD_TLB_IVT | VTD_TLB_GLOBAL_FLUSH);
    vtd_writel(c, DMAR_GCMD_REG, VTD_GCMD_TE);
    g_assert(vtd_readl(c, DMAR_GSTS_REG) & VTD_GSTS_TES);
    g_assert_cmphex(vtd_readl(c, DMAR_FSTS_REG), ==, 0);
}

/* Page-selective IOTLB invalidation of one page, by register. */
static void vtd_invalidate_page(TestCtx *c, uint64_t iova)
{
    vtd_writeq(c, DMAR_IVA_REG, iova);
    vtd_writeq(c, DMAR_IOTLB_REG, VTD_TLB_IVT | VTD_TLB_PSI_FLUSH |
                                  ((uint64_t)VTD_DID << 32));
    g_assert(!(qtest_readq(c->f.qts, VTD_BASE + DMAR_IOTLB_REG) &
               VTD_TLB_IVT));
}

static VUTestDMAMapRecord *find_exact_map(GArray *maps, uint64_t iova,
                                          uint64_t size)
{
    for (guint i = 0; i < maps->len; i++) {
        VUTestDMAMapRecord *m = &g_array_index(maps, VUTestDMAMapRecord, i);

        if (m->iova == iova && m->size == size) {
            return m;
        }
    }
    return NULL;
}

/*
 * Since the log was cleared, the server was told of one mapping: the
 * 1 GiB block of IOVA space around the vIOMMU's pages, without an fd.
 */
static void check_told_of_block(TestCtx *c)
{
    g_autoptr(GArray) maps = vu_test_server_dma_maps(c->f.srv);
    VUTestDMAMapRecord *m;

    for (guint i = 0; i < maps->len; i++) {
        m = &g_array_index(maps, VUTestDMAMapRecord, i);
        g_test_message("DMA_MAP 0x%" PRIx64 " +0x%" PRIx64 " flags %u",
                       m->iova, m->size, m->flags);
        g_assert_cmpint(m->err, ==, 0);
        g_assert_cmpuint(m->nfds, ==, 0);
    }
    g_assert_cmpuint(maps->len, ==, 1);
    m = find_exact_map(maps, IOVA_BLOCK_START, IOVA_BLOCK_SIZE);
    g_assert(m);
    g_assert_cmphex(m->flags, ==, VFIO_USER_F_DMA_REGION_READ |
                                  VFIO_USER_F_DMA_REGION_WRITE);
    g_assert_cmpuint(vu_test_server_num_mappings(c->f.srv), ==, 1);
}

static void test_viommu(void)
{
    g_autofree uint8_t *two = NULL;
    g_autofree uint8_t *guard = g_malloc(0x1000);
    g_autofree uint8_t *in = g_malloc(0x1000);
    g_autoptr(GArray) maps = NULL;
    g_autoptr(GArray) unmaps = NULL;
    TestCtx c = { 0 };
    uint8_t buf[0x100];
    unsigned ram_maps;

    ctx_start_args(&c, "-machine q35,kernel-irqchip=split -m 256M "
                   MEMFD_RAM " -device intel-iommu,caching-mode=on,"
                   "intremap=off", SECURE);
    /* Before translation is on, the device sees guest RAM as it is. */
    check_server_dma(&c, GPA_RW, 0x1000);

    ram_maps = vu_test_server_num_mappings(c.f.srv);
    vu_test_server_clear_log(c.f.srv);
    vtd_enable(&c);

    /*
     * All of RAM went away.  The IOMMU's pages stay with the client: the
     * server is told of the 1 GiB block of IOVA space around them, once,
     * without an fd, and the client answers for the mapped pages only.
     */
    unmaps = server_unmaps(&c);
    g_assert_cmpuint(ram_maps, >, 0);
    g_assert_cmpuint(unmaps->len, ==, ram_maps);
    check_told_of_block(&c);
    c.good_dma = IOVA_RW2;
    c.good_gpa = GPA_RW2;

    /* The IOVA reaches the page the tables say, both ways. */
    vu_fixture_fill_pattern(buf, sizeof(buf), 11);
    g_assert_cmpint(vu_test_server_dma_write(c.f.srv, IOVA_RW + 0x80, buf,
                                             sizeof(buf)), ==, 0);
    qtest_memread(c.f.qts, GPA_RW + 0x80, in, sizeof(buf));
    g_assert_cmpmem(in, sizeof(buf), buf, sizeof(buf));
    vu_fixture_fill_pattern(guard, 0x1000, 12);
    qtest_memwrite(c.f.qts, GPA_RO, guard, 0x1000);
    g_assert_cmpint(vu_test_server_dma_read(c.f.srv, IOVA_RO, in, 0x1000),
                    ==, 0);
    g_assert_cmpmem(in, 0x1000, guard, 0x1000);

    /*
     * Refused: guest physical addresses are no longer the device's, nor
     * is an IOVA without a PTE, nor a write through a read-only PTE,
     * nor a transfer that runs from one mapping into nothing.
     */
    refuse_read(&c, GPA_RW, 0x100, EFAULT);
    refuse_write(&c, IOVA_NONE, 0x100, EFAULT, 0);
    refuse_write(&c, IOVA_RO, 0x100, EPERM, 0);
    refuse_read(&c, IOVA_RW2 + 0x800, 0x1000, EFAULT);
    refuse_write(&c, IOVA_RW2 + 0x800, 0x1000, EFAULT, 0);
    qtest_memread(c.f.qts, GPA_RO, in, 0x1000);
    g_assert_cmpmem(in, 0x1000, guard, 0x1000);
    /* From a writable page into the read-only one: not even a part. */
    refuse_write(&c, IOVA_RW + 0x800, 0x1000, EPERM, GPA_RW);

    /*
     * Unmap IOVA_RW: the server keeps its block, and is not told, but can
     * no longer reach the page: the client refuses it.
     */
    vu_test_server_clear_log(c.f.srv);
    vtd_set_pte(&c, IOVA_RW, 0);
    vtd_invalidate_page(&c, IOVA_RW);
    g_array_unref(unmaps);
    unmaps = server_unmaps(&c);
    g_assert_cmpuint(unmaps->len, ==, 0);
    g_assert_cmpuint(vu_test_server_num_mappings(c.f.srv), ==, 1);

    vu_fixture_fill_pattern(guard, 0x1000, 13);
    qtest_memwrite(c.f.qts, GPA_RW, guard, 0x1000);
    refuse_write(&c, IOVA_RW, 0x1000, EFAULT, 0);
    refuse_read(&c, IOVA_RW, 0x1000, EFAULT);
    qtest_memread(c.f.qts, GPA_RW, in, 0x1000);
    g_assert_cmpmem(in, 0x1000, guard, 0x1000);
    /* The other pages are still there. */
    g_assert_cmpint(vu_test_server_dma_read(c.f.srv, IOVA_RO, in, 0x100),
                    ==, 0);
    check_server_dma_at(&c, IOVA_RW2, GPA_RW2, 0x1000);

    /* A page mapped while translation is on: no message, reachable. */
    refuse_read(&c, IOVA_NEW, 0x1000, EFAULT);
    vu_test_server_clear_log(c.f.srv);
    vtd_set_pte(&c, IOVA_NEW, GPA_NEW | VTD_PTE_R | VTD_PTE_W);
    vtd_invalidate_page(&c, IOVA_NEW);
    g_array_unref(unmaps);
    unmaps = server_unmaps(&c);
    maps = vu_test_server_dma_maps(c.f.srv);
    g_assert_cmpuint(maps->len, ==, 0);
    check_server_dma_at(&c, IOVA_NEW, GPA_NEW, 0x1000);
    /* One request over two pages next in IOVA, apart in guest memory */
    two = g_malloc(0x2000);
    vu_fixture_fill_pattern(guard, 0x1000, 14);
    qtest_memwrite(c.f.qts, GPA_RW2, guard, 0x1000);
    vu_fixture_fill_pattern(in, 0x1000, 15);
    qtest_memwrite(c.f.qts, GPA_NEW, in, 0x1000);
    g_assert_cmpint(vu_test_server_dma_read(c.f.srv, IOVA_RW2, two, 0x2000),
                    ==, 0);
    g_assert_cmpmem(two, 0x1000, guard, 0x1000);
    g_assert_cmpmem(two + 0x1000, 0x1000, in, 0x1000);
    refuse_read(&c, IOVA_NONE, 0x10, EFAULT);
    vu_fixture_stop(&c.f);
}

/* ---------------------------------------------------------------------- */

/*
 * What the DMA table points at stays alive.  Behind the vIOMMU the guest
 * maps an IOVA into a pc-dimm and never unmaps it; the DIMM is unplugged
 * and its backend deleted.  The mapping holds the memory: the RAMBlock
 * stays (x-query-ramblock shows its host address), new RAM plugged at the
 * same guest address gets other host memory, and a DMA_WRITE through the
 * stale IOVA lands in the orphaned memory, reaching no guest address.
 * Once the guest unmaps the IOVA, or turns translation off, the memory
 * goes.
 *
 * Without the reference the backend is freed once QEMU has run its RCU
 * callbacks (drained here, so that this does not depend on timing), and
 * the server's write goes into freed host memory: memory whose munmap is
 * pending, memory reused for anything else, or a failed readv.
 */
#define IOVA_DIMM       0x40005000ULL
#define DIMM_PAGE       0x10000         /* the page of the DIMM it maps */

/* The host address of the RAMBlock whose name ends in @name, or NULL. */
static char *ramblock_hva(TestCtx *c, const char *name)
{
    QDict *resp = qtest_qmp(c->f.qts, "{'execute': 'x-query-ramblock'}");
    g_auto(GStrv) lines = NULL;
    char *hva = NULL;

    g_assert(qdict_haskey(resp, "return"));
    lines = g_strsplit(qdict_get_str(qdict_get_qdict(resp, "return"),
                                     "human-readable-text"), "\n", -1);
    qobject_unref(resp);
    for (int i = 0; lines[i] && !hva; i++) {
        /* name, page size (two words), offset, used, total, HVA, ro */
        g_auto(GStrv) col = g_strsplit_set(g_strstrip(lines[i]), " ", -1);
        guint n = g_strv_length(col);

        if (n > 2 && g_str_has_suffix(col[0], name)) {
            for (int j = n - 2; j > 0 && !hva; j--) {
                if (g_str_has_prefix(col[j], "0x")) {
                    hva = g_strdup(col[j]);
                }
            }
        }
    }
    return hva;
}

/*
 * Let QEMU finish what it deferred to RCU callbacks (freeing flatviews,
 * and with them the last references to unplugged memory): a device_add
 * that fails drains them before it returns.
 */
static void drain_rcu(TestCtx *c)
{
    QDict *resp = qtest_qmp(c->f.qts, "{'execute': 'device_add', "
                            "'arguments': {'driver': 'no-such-device'}}");

    g_assert(qdict_haskey(resp, "error"));
    qobject_unref(resp);
}

/* Whether a RAMBlock at host address @hva exists. */
static bool ramblock_exists(TestCtx *c, const char *hva)
{
    QDict *resp = qtest_qmp(c->f.qts, "{'execute': 'x-query-ramblock'}");
    bool found;

    g_assert(qdict_haskey(resp, "return"));
    found = strstr(qdict_get_str(qdict_get_qdict(resp, "return"),
                                 "human-readable-text"), hva) != NULL;
    qobject_unref(resp);
    return found;
}

/*
 * A server restarted behind a vIOMMU (reconnect-ms) is told of the IOVA
 * block again, not of the pages, and the client still answers for the
 * mapped pages only: what the guest mapped while translation was on
 * survives the outage, and nothing else does.
 */
static void test_viommu_reconnect(void)
{
    g_autofree uint8_t *guard = g_malloc(0x1000);
    g_autofree uint8_t *in = g_malloc(0x1000);
    TestCtx c = { 0 };
    QDict *ev;

    ctx_start_args(&c, "-machine q35,kernel-irqchip=split -m 256M "
                   MEMFD_RAM " -device intel-iommu,caching-mode=on,"
                   "intremap=off", SECURE ",reconnect-ms=20");
    vtd_enable(&c);
    c.good_dma = IOVA_RW2;
    c.good_gpa = GPA_RW2;
    check_server_dma_at(&c, IOVA_RW2, GPA_RW2, 0x1000);

    vu_test_server_free(c.f.srv);
    c.f.srv = NULL;
    ev = qtest_qmp_eventwait_ref(c.f.qts, "VFIO_USER_SERVER_LOST");
    qobject_unref(ev);
    c.f.srv = vu_test_server_new(c.f.sock, NULL);
    g_assert(c.f.srv);
    ev = qtest_qmp_eventwait_ref(c.f.qts, "VFIO_USER_SERVER_RECONNECTED");
    qobject_unref(ev);

    /* The new server knows of the block alone, without an fd */
    check_told_of_block(&c);

    /* The pages mapped before the outage are reached as they were */
    check_server_dma_at(&c, IOVA_RW2, GPA_RW2, 0x1000);
    vu_fixture_fill_pattern(guard, 0x1000, 21);
    qtest_memwrite(c.f.qts, GPA_RO, guard, 0x1000);
    g_assert_cmpint(vu_test_server_dma_read(c.f.srv, IOVA_RO, in, 0x1000),
                    ==, 0);
    g_assert_cmpmem(in, 0x1000, guard, 0x1000);
    refuse_write(&c, IOVA_RO, 0x100, EPERM, 0);
    /* The rest of the block, and guest physical addresses, are not */
    refuse_read(&c, IOVA_NONE, 0x100, EFAULT);
    refuse_read(&c, GPA_RW, 0x100, EFAULT);
    vu_fixture_stop(&c.f);
}

/*
 * The mapping goes by the guest's unmap of the IOVA (@disable_viommu
 * false), or with every other when the guest turns translation off.
 */
static void check_viommu_unplugged_ram(bool disable_viommu)
{
    g_autofree uint8_t *out = g_malloc(0x1000);
    g_autofree uint8_t *in = g_malloc(0x1000);
    g_autofree uint8_t *guard = g_malloc(0x1000);
    g_autofree char *hva = NULL;
    g_autofree char *hva1 = NULL;
    g_autoptr(GArray) maps = NULL;
    g_autoptr(GArray) unmaps = NULL;
    TestCtx c = { 0 };
    uint64_t addr, target;

    ctx_start_args(&c, "-machine q35,kernel-irqchip=split "
                   "-m 256M,slots=2,maxmem=1G " MEMFD_RAM
                   " -object memory-backend-ram,id=hp0,size=128M"
                   " -device intel-iommu,caching-mode=on,intremap=off",
                   SECURE);
    addr = plug_dimm(&c, "dimm0", "hp0", 0);
    target = addr + DIMM_PAGE;
    hva = ramblock_hva(&c, "hp0");
    g_assert(hva);
    g_test_message("pc-dimm at 0x%" PRIx64 ", host %s", addr, hva);

    vtd_enable(&c);
    c.good_dma = IOVA_RW2;
    c.good_gpa = GPA_RW2;
    vu_test_server_clear_log(c.f.srv);
    vtd_set_pte(&c, IOVA_DIMM, target | VTD_PTE_R | VTD_PTE_W);
    vtd_invalidate_page(&c, IOVA_DIMM);
    /* In the block the server knows of already: no message */
    maps = vu_test_server_dma_maps(c.f.srv);
    g_assert_cmpuint(maps->len, ==, 0);
    check_server_dma_at(&c, IOVA_DIMM, target, 0x1000);

    /* The DIMM goes, its backend too; the guest keeps its IOVA. */
    vu_test_server_clear_log(c.f.srv);
    unplug_dimm(&c, "dimm0");
    qmp_ok(c.f.qts, qtest_qmp(c.f.qts, "{'execute': 'object-del', "
                              "'arguments': {'id': 'hp0'}}"));
    unmaps = server_unmaps(&c);
    g_assert_cmpuint(unmaps->len, ==, 0);
    drain_rcu(&c);
    g_assert(ramblock_exists(&c, hva));

    /* New RAM at the same guest address: other host memory. */
    qmp_ok(c.f.qts, qtest_qmp(c.f.qts, "{'execute': 'object-add', "
                              "'arguments': {'qom-type': 'memory-backend-ram',"
                              " 'id': 'hp1', 'size': %d}}", DIMM_SIZE));
    plug_dimm(&c, "dimm1", "hp1", addr);
    hva1 = ramblock_hva(&c, "hp1");
    g_assert_cmpstr(hva1, !=, hva);
    vu_fixture_fill_pattern(guard, 0x1000, GUARD_SEED);
    qtest_memwrite(c.f.qts, target, guard, 0x1000);

    /* The stale IOVA still works, harmlessly: the old memory. */
    vu_fixture_fill_pattern(out, 0x1000, 31);
    g_assert_cmpint(vu_test_server_dma_write(c.f.srv, IOVA_DIMM, out,
                                             0x1000), ==, 0);
    qtest_memread(c.f.qts, target, in, 0x1000);
    g_assert_cmpmem(in, 0x1000, guard, 0x1000);
    memset(in, 0, 0x1000);
    g_assert_cmpint(vu_test_server_dma_read(c.f.srv, IOVA_DIMM, in, 0x1000),
                    ==, 0);
    g_assert_cmpmem(in, 0x1000, out, 0x1000);

    /*
     * The guest unmaps it: the memory goes, and the server cannot reach
     * it.  It hears of it when the vIOMMU goes: its block goes too.
     */
    if (disable_viommu) {
        vtd_writel(&c, DMAR_GCMD_REG, 0);
        g_assert(!(vtd_readl(&c, DMAR_GSTS_REG) & VTD_GSTS_TES));
        c.good_dma = 0;         /* guest RAM as it is, again */
    } else {
        vtd_set_pte(&c, IOVA_DIMM, 0);
        vtd_invalidate_page(&c, IOVA_DIMM);
    }
    g_array_unref(unmaps);
    unmaps = server_unmaps(&c);
    g_assert(was_unmapped(unmaps, IOVA_BLOCK_START, IOVA_BLOCK_SIZE) ==
             disable_viommu);
    drain_rcu(&c);
    g_assert(!ramblock_exists(&c, hva));
    refuse_write(&c, IOVA_DIMM, 0x100, EFAULT, target);
    vu_fixture_stop(&c.f);
}

static void test_viommu_unplugged_ram(void)
{
    check_viommu_unplugged_ram(false);
}

static void test_viommu_unplugged_ram_off(void)
{
    check_viommu_unplugged_ram(true);
}

/* ---------------------------------------------------------------------- */

/*
 * DMA writes mark guest memory dirty: the display sees what a server
 * DMA_WRITEs into the framebuffer.
 *
 * The std VGA (00:02.0) redraws, outside a full update, only the lines
 * whose pages its DIRTY_MEMORY_VGA log shows written.  Its 16 MiB BAR0
 * is RAM, so the client maps it for the server like guest RAM.  In an
 * 8 bpp VBE mode (where the display cannot share the framebuffer and
 * must redraw into its own surface), two screendumps leave the log
 * clean; the server then writes palette index 1 (red) over the first
 * line, and the next screendump must show it.  Why the display: it is
 * the observer of the dirty log a qtest can query; calc-dirty-rate in
 * dirty-bitmap mode counts only the pages KVM's log sync reports, and the
 * device blocks migration.
 */
#define VGA_DEVFN       QPCI_DEVFN(2, 0)
#define VBE_INDEX       0x1ce
#define VBE_DATA        0x1cf
#define VGA_AR_INDEX    0x3c0
#define VGA_AR_PAS      0x20    /* the palette is the display's: unblank */
#define VGA_DAC_INDEX   0x3c8
#define VGA_DAC_DATA    0x3c9
#define FB_W            64
#define FB_H            16

static void vbe_write(TestCtx *c, uint16_t index, uint16_t val)
{
    qtest_outw(c->f.qts, VBE_INDEX, index);
    qtest_outw(c->f.qts, VBE_DATA, val);
}

/* Screendump, and return the RGB of pixel (@x, 0). */
static uint32_t screen_pixel(TestCtx *c, const char *path, unsigned x)
{
    g_autofree char *ppm = NULL;
    unsigned w, h, max, nl = 0;
    size_t len, i;

    qmp_ok(c->f.qts, qtest_qmp(c->f.qts, "{'execute': 'screendump', "
                               "'arguments': {'filename': %s}}", path));
    g_assert(g_file_get_contents(path, &ppm, &len, NULL));
    unlink(path);
    g_assert_cmpint(sscanf(ppm, "P6 %u %u %u", &w, &h, &max), ==, 3);
    g_assert_cmpuint(w, ==, FB_W);
    g_assert_cmpuint(h, ==, FB_H);
    for (i = 0; i < len && nl < 3; i++) {
        nl += ppm[i] == '\n';
    }
    g_assert_cmpuint(len, ==, i + w * h * 3);
    i += x * 3;
    return (uint8_t)ppm[i] << 16 | (uint8_t)ppm[i + 1] << 8 |
           (uint8_t)ppm[i + 2];
}

static void test_vga_dirty(void)
{
    g_autofree char *dump = NULL;
    uint8_t line[FB_W];
    QPCIDevice *vga;
    QPCIBar vram;
    TestCtx c = { 0 };
    uint64_t size;

    ctx_start(&c, SECURE);
    dump = g_build_filename(c.f.tmpdir, "screen.ppm", NULL);
    vga = qpci_device_find(c.f.bus, VGA_DEVFN);
    g_assert(vga);
    qpci_device_enable(vga);
    vram = qpci_iomap(vga, 0, &size);
    g_test_message("VGA framebuffer at 0x%" PRIx64 ", 0x%" PRIx64 " bytes",
                   vram.addr, size);

    vbe_write(&c, 4, 0);                        /* ENABLE: off */
    vbe_write(&c, 1, FB_W);                     /* XRES */
    vbe_write(&c, 2, FB_H);                     /* YRES */
    vbe_write(&c, 3, 8);                        /* BPP */
    vbe_write(&c, 4, 0x41);                     /* ENABLED | LFB_ENABLED */
    qtest_outb(c.f.qts, VGA_AR_INDEX, VGA_AR_PAS);
    qtest_outb(c.f.qts, VGA_DAC_INDEX, 1);      /* entry 1: red */
    qtest_outb(c.f.qts, VGA_DAC_DATA, 0x3f);
    qtest_outb(c.f.qts, VGA_DAC_DATA, 0);
    qtest_outb(c.f.qts, VGA_DAC_DATA, 0);

    /* A full update, then one that consumes the log: all black. */
    g_assert_cmphex(screen_pixel(&c, dump, 0), ==, 0);
    g_assert_cmphex(screen_pixel(&c, dump, 0), ==, 0);

    memset(line, 1, sizeof(line));
    g_assert_cmpint(vu_test_server_dma_write(c.f.srv, vram.addr, line,
                                             sizeof(line)), ==, 0);
    g_assert_cmphex(screen_pixel(&c, dump, 0), ==, 0xff0000);
    g_assert_cmphex(screen_pixel(&c, dump, FB_W - 1), ==, 0xff0000);
    g_free(vga);
    vu_fixture_stop(&c.f);
}

/*
 * DMA writes behave as writes to guest memory: a TCG guest runs the code
 * a server DMA_WRITEs over its old code, not a stale translation.
 *
 * The firmware is a 64 KiB image whose reset vector jumps to CODE_GPA, in
 * RAM, where the test puts a real-mode loop that stores a marker byte at
 * MARK_GPA (another page) forever.  TCG translates that loop once into
 * a block chained to itself; only invalidation of the page's translated
 * code makes the vCPU translate it again.  The server then rewrites the
 * loop to store another marker: the guest must start storing it.
 */
#define TCG_BIOS_SIZE   0x10000
#define CODE_GPA        0x1000
#define MARK_GPA        0x500
#define MARK_OLD        0x11
#define MARK_NEW        0x22
#define TCG_WAIT_MS     10000

static void guest_loop_code(uint8_t *code, uint8_t mark)
{
    const uint8_t loop[] = {
        0xc6, 0x06, MARK_GPA & 0xff, MARK_GPA >> 8, mark, /* movb mark, MARK */
        0xeb, 0xf9,                                       /* jmp back to it */
    };

    memcpy(code, loop, sizeof(loop));
}

/* Wait until the guest stores @mark at MARK_GPA. */
static bool wait_mark(TestCtx *c, uint8_t mark)
{
    for (int ms = 0; ms < TCG_WAIT_MS; ms++) {
        if (qtest_readb(c->f.qts, MARK_GPA) == mark) {
            return true;
        }
        g_usleep(1000);
    }
    return false;
}

static void test_tcg_code(void)
{
    g_autofree uint8_t *bios = g_malloc(TCG_BIOS_SIZE);
    g_autofree char *bios_path = NULL;
    g_autofree char *args = NULL;
    g_autoptr(GError) err = NULL;
    uint8_t code[7];
    TestCtx c = { 0 };
    int fd;

    if (!qtest_has_accel("tcg")) {
        g_test_skip("no TCG");
        return;
    }
    /* hlt everywhere; at the reset vector, ljmp $0, $CODE_GPA. */
    memset(bios, 0xf4, TCG_BIOS_SIZE);
    memcpy(bios + TCG_BIOS_SIZE - 16, (uint8_t[]) {
        0xea, CODE_GPA & 0xff, CODE_GPA >> 8, 0x00, 0x00 }, 5);
    fd = g_file_open_tmp("vfio-user-dma-bios-XXXXXX", &bios_path, &err);
    g_assert_no_error(err);
    g_assert(qemu_write_full(fd, bios, TCG_BIOS_SIZE) == TCG_BIOS_SIZE);
    close(fd);

    args = g_strdup_printf("-machine pc -m 256M -accel tcg -S -bios %s",
                           bios_path);
    ctx_start_args(&c, args, SECURE);
    unlink(bios_path);

    guest_loop_code(code, MARK_OLD);
    qtest_memwrite(c.f.qts, CODE_GPA, code, sizeof(code));
    qmp_ok(c.f.qts, qtest_qmp(c.f.qts, "{'execute': 'cont'}"));
    g_assert(wait_mark(&c, MARK_OLD));

    /* Only the immediate changes: the same loop, another marker. */
    guest_loop_code(code, MARK_NEW);
    g_assert_cmpint(vu_test_server_dma_write(c.f.srv, CODE_GPA, code,
                                             sizeof(code)), ==, 0);
    g_assert(wait_mark(&c, MARK_NEW));
    vu_fixture_stop(&c.f);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qtest_add_func("/vfio-user-dma/secure/both-directions",
                   test_secure_both_directions);
    qtest_add_func("/vfio-user-dma/insecure/ram-fd", test_insecure_ram_fd);
    qtest_add_func("/vfio-user-dma/refuse/out-of-range",
                   test_refuse_out_of_range);
    qtest_add_func("/vfio-user-dma/refuse/partly-mapped",
                   test_refuse_partly_mapped);
    qtest_add_func("/vfio-user-dma/refuse/after-unmap",
                   test_refuse_after_unmap);
    qtest_add_func("/vfio-user-dma/refuse/read-only", test_refuse_read_only);
    qtest_add_func("/vfio-user-dma/refuse/overflow", test_refuse_overflow);
    qtest_add_func("/vfio-user-dma/refuse/too-big", test_refuse_too_big);
    qtest_add_func("/vfio-user-dma/refuse/size-mismatch",
                   test_refuse_size_mismatch);
    qtest_add_func("/vfio-user-dma/while-waiting", test_dma_while_waiting);
    qtest_add_func("/vfio-user-dma/viommu", test_viommu);
    qtest_add_func("/vfio-user-dma/write/tcg-code", test_tcg_code);
    qtest_add_func("/vfio-user-dma/write/vga-dirty", test_vga_dirty);
    qtest_add_func("/vfio-user-dma/viommu/unplugged-ram",
                   test_viommu_unplugged_ram);
    qtest_add_func("/vfio-user-dma/viommu/unplugged-ram-viommu-off",
                   test_viommu_unplugged_ram_off);
    qtest_add_func("/vfio-user-dma/viommu/reconnect", test_viommu_reconnect);
    qtest_add_func("/vfio-user-dma/refuse/too-big-write",
                   test_refuse_too_big_write);
    return g_test_run();
}
