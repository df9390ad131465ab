/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Hostile DMA requests from the server: outside what the client
 * mapped, overflowing, oversized, short, read-only, with fds, stalled
 * and flooding.
 */

#include "qemu/osdep.h"
#include <sys/eventfd.h>
#include "vfio-user-hostile.h"

/* ---------------------------------------------------------------------- */
/* DMA requests from the server */

static int do_dma(TestCtx *c, bool write, uint64_t addr, uint64_t count,
                  size_t data_len, VUTestDMAResult *res)
{
    g_autofree uint8_t *data = NULL;
    VUTestDMARequest req = {
        .write = write, .address = addr, .count = count,
        .data_len = data_len, .timeout_ms = 2000,
    };
    int ret;

    if (data_len) {
        data = g_malloc(data_len);
        memset(data, 0xee, data_len);
        req.data = data;
    }
    ret = vu_test_server_dma(c->f.srv, &req, res);
    if (res->data) {
        g_byte_array_unref(res->data);
        res->data = NULL;
    }
    return ret;
}

/* A refused request: an error reply, nothing touched, DMA still works */
static void check_refused(TestCtx *c, bool write, uint64_t addr,
                          uint64_t count, size_t data_len, int err)
{
    VUTestDMAResult res;
    int ret = do_dma(c, write, addr, count, data_len, &res);

    g_test_message("DMA_%s 0x%" PRIx64 " +0x%" PRIx64 " (%zu bytes): %d",
                   write ? "WRITE" : "READ", addr, count, data_len, ret);
    g_assert(res.error_reply);
    if (err) {
        g_assert_cmpint(ret, ==, -err);
    } else {
        g_assert_cmpint(ret, <, 0);
    }
}

static void dma_finish(TestCtx *c)
{
    check_dma_works(c);
    guard_check(c);
    assert_works(c);
    ctx_stop(c);
}

static void test_dma_out_of_map(void)
{
    TestCtx c = { 0 };

    dma_start(&c);
    /* Past the end of RAM, straddling it, and in the 640K-1M hole */
    check_refused(&c, true, RAM_END, 16, 16, EFAULT);
    check_refused(&c, true, RAM_END - 8, 16, 16, EFAULT);
    check_refused(&c, false, RAM_END - 8, 16, 0, EFAULT);
    check_refused(&c, true, 0xa0000 - 8, 16, 16, EFAULT);
    check_refused(&c, false, 0xfee00000, 4, 0, EFAULT);
    check_refused(&c, true, 0xfffffffff000ULL, 4096, 4096, EFAULT);
    dma_finish(&c);
}

static void test_dma_overflow(void)
{
    TestCtx c = { 0 };

    dma_start(&c);
    check_refused(&c, true, UINT64_MAX - 7, 16, 16, EFAULT);
    check_refused(&c, false, UINT64_MAX - 7, 16, 0, EFAULT);
    check_refused(&c, false, GUEST_BUF, UINT64_MAX, 0, 0);
    check_refused(&c, false, UINT64_MAX, 1, 0, EFAULT);
    dma_finish(&c);
}

static void test_dma_oversized(void)
{
    TestCtx c = { 0 };

    dma_start(&c);
    check_refused(&c, false, GUEST_BUF, 2 * 1024 * 1024, 0, E2BIG);
    check_refused(&c, false, GUEST_BUF, 1ULL << 40, 0, E2BIG);
    check_refused(&c, true, GUEST_BUF, 1024 * 1024 + 1, 4096, 0);
    dma_finish(&c);
}

static void test_dma_count_mismatch(void)
{
    TestCtx c = { 0 };

    dma_start(&c);
    check_refused(&c, true, GUEST_BUF, 16, 8, EINVAL);
    check_refused(&c, true, GUEST_BUF, 8, 16, EINVAL);
    check_refused(&c, true, GUEST_BUF, 0x1000, 0, EINVAL);
    check_refused(&c, false, GUEST_BUF, 8, 8, EINVAL);
    check_refused(&c, true, GUEST_BUF, 0, 8, EINVAL);
    dma_finish(&c);
}

/* A DMA_WRITE with more data than the client takes: refused whole */
static void test_dma_oversized_write(void)
{
    TestCtx c = { 0 };

    dma_start(&c);
    check_refused(&c, true, GUEST_BUF, 2 * 1024 * 1024, 2 * 1024 * 1024,
                  E2BIG);
    dma_finish(&c);
}

/* A request bigger than any message: fatal, and nothing written */
static void test_dma_beyond_limit(void)
{
    g_autoptr(GByteArray) msg = g_byte_array_new();
    VFIOUserDMARW rw = { .address = GUEST_BUF, .count = 0x7fffffe0 };
    TestCtx c = { 0 };

    dma_start(&c);
    put_hdr(msg, 0x6000, VFIO_USER_DMA_WRITE, 0x7ffffff0, VFIO_USER_REQUEST,
            0);
    g_byte_array_append(msg, (uint8_t *)&rw, sizeof(rw));
    g_byte_array_set_size(msg, msg->len + 64 * 1024);
    memset(msg->data + 32, 0xee, 64 * 1024);
    vu_test_server_send_raw(c.f.srv, msg->data, msg->len, NULL, 0);
    assert_degraded(&c);
    guard_check(&c);
    ctx_stop(&c);
}

/*
 * Short DMA requests: no room for address and count.  Each is answered
 * with an EINVAL error reply (the server sees them as replies to nothing
 * it waits for), and the connection goes on.
 */
static void test_dma_short_request(void)
{
    g_autoptr(GByteArray) junk = g_byte_array_new();
    g_autoptr(GArray) replies = NULL;
    uint8_t payload[8] = { 0 };
    VUTestServerStats st;
    TestCtx c = { 0 };

    dma_start(&c);
    vu_test_server_clear_log(c.f.srv);
    put_hdr(junk, 0x4000, VFIO_USER_DMA_WRITE, 16 + sizeof(payload),
            VFIO_USER_REQUEST, 0);
    g_byte_array_append(junk, payload, sizeof(payload));
    put_hdr(junk, 0x4001, VFIO_USER_DMA_READ, 16, VFIO_USER_REQUEST, 0);
    g_assert_cmpint(vu_test_server_send_raw(c.f.srv, junk->data, junk->len,
                                            NULL, 0), ==, 0);
    for (int i = 0; i < WAIT_MS; i++) {
        vu_test_server_get_stats(c.f.srv, &st);
        if (st.stale_replies >= 2) {
            break;
        }
        g_usleep(1000);
    }
    replies = vu_test_server_stale_replies(c.f.srv);
    g_assert_cmpuint(replies->len, ==, 2);
    for (guint i = 0; i < replies->len; i++) {
        VUTestReplyRecord *r = &g_array_index(replies, VUTestReplyRecord, i);

        g_assert_cmphex(r->id, ==, 0x4000 + i);
        g_assert_cmpuint(r->command, ==,
                         i ? VFIO_USER_DMA_READ : VFIO_USER_DMA_WRITE);
        g_assert_cmphex(r->flags & VFIO_USER_TYPE, ==, VFIO_USER_REPLY);
        g_assert(r->flags & VFIO_USER_ERROR);
        g_assert_cmpuint(r->error_reply, ==, EINVAL);
    }
    dma_finish(&c);
}

/* Read-only guest memory (the BIOS ROM) is not writable by DMA */
static void test_dma_readonly(void)
{
    g_autoptr(GArray) maps = NULL;
    uint8_t before[16], after[16];
    VUTestDMAResult res;
    TestCtx c = { 0 };
    uint64_t ro = 0;

    dma_start(&c);
    maps = vu_test_server_dma_maps(c.f.srv);
    for (guint i = 0; i < maps->len; i++) {
        VUTestDMAMapRecord *m = &g_array_index(maps, VUTestDMAMapRecord, i);

        if (!(m->flags & VFIO_USER_F_DMA_REGION_WRITE)) {
            ro = m->iova;
        }
    }
    /* The BIOS ROM is mapped read-only */
    g_assert_cmphex(ro, !=, 0);
    qtest_memread(c.f.qts, ro, before, sizeof(before));
    check_refused(&c, true, ro, 16, 16, EPERM);
    qtest_memread(c.f.qts, ro, after, sizeof(after));
    g_assert_cmpmem(before, sizeof(before), after, sizeof(after));
    g_assert_cmpint(do_dma(&c, false, ro, 16, 0, &res), ==, 0);
    dma_finish(&c);
}

/*
 * A DMA_WRITE that stops in the middle of its data, for good: the
 * client's receive thread waits in it, so the client must not wait on
 * it for longer than the timeout, and must drop the connection at the
 * latest when the memory goes away (unplug).
 */
static void test_dma_stall_mid_write(void)
{
    g_autoptr(GByteArray) msg = g_byte_array_new();
    VFIOUserDMARW rw = { .address = GUEST_BUF, .count = 4096 };
    TestCtx c = { .timeout_ms = FAST_TIMEOUT_MS };
    gint64 t0;
    uint32_t v;

    dma_start(&c);
    put_hdr(msg, 0x7000, VFIO_USER_DMA_WRITE, 32 + 4096, VFIO_USER_REQUEST,
            0);
    g_byte_array_append(msg, (uint8_t *)&rw, sizeof(rw));
    g_byte_array_set_size(msg, msg->len + 100);
    memset(msg->data + 32, 0xee, 100);
    g_assert_cmpint(vu_test_server_send_raw(c.f.srv, msg->data, msg->len,
                                            NULL, 0), ==, 0);
    t0 = g_get_monotonic_time();
    v = vu_fixture_bar0_readl(&c.f, VU_TEST_REG_ID);
    g_test_message("read 0x%08x after %" PRId64 " ms", v,
                   (g_get_monotonic_time() - t0) / 1000);
    g_assert_cmphex(v, ==, ALL_ONES);
    g_assert_cmpint(g_get_monotonic_time() - t0, <,
                    c.timeout_ms * 3 * 1000);
    assert_alive(&c);
    /* Unplug: the memory goes, the stalled transfer with it */
    t0 = g_get_monotonic_time();
    qpci_unplug_acpi_device_test(c.f.qts, "vu0", SLOT);
    g_assert_cmpint(g_get_monotonic_time() - t0, <, 15 * G_USEC_PER_SEC);
    g_assert(vu_test_server_wait_disconnected(c.f.srv, WAIT_MS));
    guard_check(&c);
    assert_alive(&c);
    ctx_stop(&c);
}

/* DMA requests carrying fds: closed, never leaked, request served */
static void test_dma_with_fds(void)
{
    g_autoptr(GByteArray) msg = g_byte_array_new();
    VFIOUserDMARW rw = { .address = GUEST_BUF, .count = 8 };
    VUTestServerStats st;
    int fds[8];
    TestCtx c = { 0 };
    unsigned before;

    for (size_t i = 0; i < ARRAY_SIZE(fds); i++) {
        fds[i] = eventfd(0, EFD_CLOEXEC);
    }
    dma_start(&c);
    before = vu_fixture_qemu_fds(&c.f);
    put_hdr(msg, 0x5000, VFIO_USER_DMA_READ, 16 + sizeof(rw),
            VFIO_USER_REQUEST, 0);
    g_byte_array_append(msg, (uint8_t *)&rw, sizeof(rw));
    for (int i = 0; i < 20; i++) {
        g_assert_cmpint(vu_test_server_send_raw(c.f.srv, msg->data, msg->len,
                                                fds, ARRAY_SIZE(fds)), ==, 0);
    }
    assert_works(&c);
    vu_test_server_get_stats(c.f.srv, &st);
    g_assert_cmpuint(st.stale_replies, ==, 20);
    g_assert_cmpuint(vu_fixture_qemu_fds(&c.f), <=, before);
    dma_finish(&c);
    for (size_t i = 0; i < ARRAY_SIZE(fds); i++) {
        close(fds[i]);
    }
}

/* 10000 DMA_READs back to back, and bad ones in between */
typedef struct Flood {
    VUTestServer *srv;
    unsigned n;
    int ret;
} Flood;

#define FLOOD_N     10000
#define FLOOD_BATCH 100

static gpointer flood_thread(gpointer opaque)
{
    Flood *f = opaque;
    g_autoptr(GByteArray) batch = g_byte_array_new();

    for (unsigned i = 0; i < f->n && !f->ret; i++) {
        VFIOUserDMARW rw = {
            .address = i % 50 ? GUEST_BUF + (i % 64) * 8 : RAM_END,
            .count = 8,
        };

        put_hdr(batch, i, VFIO_USER_DMA_READ, 16 + sizeof(rw),
                VFIO_USER_REQUEST, 0);
        g_byte_array_append(batch, (uint8_t *)&rw, sizeof(rw));
        if (batch->len >= FLOOD_BATCH * 32 || i == f->n - 1) {
            f->ret = vu_test_server_send_raw(f->srv, batch->data, batch->len,
                                             NULL, 0);
            g_byte_array_set_size(batch, 0);
        }
    }
    return NULL;
}

static void test_dma_flood(void)
{
    Flood f = { .n = FLOOD_N };
    VUTestServerStats st;
    TestCtx c = { 0 };
    GThread *t;
    gint64 slowest = 0, deadline, t0 = g_get_monotonic_time();
    unsigned queries = 0;

    dma_start(&c);
    f.srv = c.f.srv;
    vu_test_server_clear_log(c.f.srv);
    t = g_thread_new("flood", flood_thread, &f);
    deadline = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;
    do {
        gint64 q0 = g_get_monotonic_time();

        /*
         * QMP only: a BAR read now would need the test server to reply
         * while the flood thread holds its send lock, blocked on the
         * client, which waits for the server to read: a deadlock of the
         * test server, not of the client.
         */
        assert_alive(&c);
        slowest = MAX(slowest, g_get_monotonic_time() - q0);
        queries++;
        vu_test_server_get_stats(c.f.srv, &st);
    } while (st.stale_replies < FLOOD_N &&
             g_get_monotonic_time() < deadline);
    g_thread_join(t);
    g_test_message("%u replies in %" PRId64 " ms, %u QMP queries "
                   "meanwhile, slowest %" PRId64 " us", st.stale_replies,
                   (g_get_monotonic_time() - t0) / 1000, queries, slowest);
    g_assert_cmpint(f.ret, ==, 0);
    g_assert_cmpuint(st.stale_replies, ==, FLOOD_N);
    g_assert_cmpuint(st.protocol_errors, ==, 0);
    g_assert_cmpint(slowest, <, 2 * G_USEC_PER_SEC);
    dma_finish(&c);
}

void hostile_add_dma_tests(void)
{
    qtest_add_func("/vfio-user-hostile/dma/out-of-map", test_dma_out_of_map);
    qtest_add_func("/vfio-user-hostile/dma/overflow", test_dma_overflow);
    qtest_add_func("/vfio-user-hostile/dma/oversized", test_dma_oversized);
    qtest_add_func("/vfio-user-hostile/dma/count-mismatch",
                   test_dma_count_mismatch);
    qtest_add_func("/vfio-user-hostile/dma/oversized-write",
                   test_dma_oversized_write);
    qtest_add_func("/vfio-user-hostile/dma/beyond-limit",
                   test_dma_beyond_limit);
    qtest_add_func("/vfio-user-hostile/dma/short-request",
                   test_dma_short_request);
    qtest_add_func("/vfio-user-hostile/dma/read-only", test_dma_readonly);
    qtest_add_func("/vfio-user-hostile/dma/with-fds", test_dma_with_fds);
    qtest_add_func("/vfio-user-hostile/dma/stall-mid-write",
                   test_dma_stall_mid_write);
    qtest_add_func("/vfio-user-hostile/dma/flood", test_dma_flood);
}
