/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Deadlines per message: servers that trickle their messages or read
 * ours slowly.
 */

#include "qemu/osdep.h"
#include "qemu/atomic.h"
#include "qemu/units.h"
#include "vfio-user-hostile.h"

/* ---------------------------------------------------------------------- */
/*
 * Deadlines per message: a server that trickles a message, or reads ours
 * slowly, making progress all the time, is given up on within the bound
 * of the docs (2 x x-msg-timeout for any wait of a vCPU or of the main
 * loop), not when it pauses for a whole timeout, which it never does.
 */

#define TRICKLE_MS      500         /* between two bytes: < the timeout */
#define TRICKLE_MAX_MS  15000       /* then the rest at once */
#define DEADLINE_BOUND_MS   (2 * FAST_TIMEOUT_MS)
/* Slack for a loaded machine, on top of the bound */
#define DEADLINE_SLACK_MS   FAST_TIMEOUT_MS

/*
 * Send @len bytes of @buf: @first at once, then one byte every
 * TRICKLE_MS, until the client stops taking them or the test ends.
 * Returns how many bytes went out.
 */
static size_t trickle(Hostile *h, VUTestServer *s, const uint8_t *buf,
                      size_t len, size_t first)
{
    gint64 end = g_get_monotonic_time() + TRICKLE_MAX_MS * 1000LL;
    size_t sent = 0;

    while (sent < len) {
        size_t n = sent ? 1 : first;

        if (g_get_monotonic_time() >= end) {
            n = len - sent;
        }
        if (vu_test_server_send_raw(s, buf + sent, n, NULL, 0) < 0) {
            break;
        }
        sent += n;
        if (sent < len) {
            hostile_sleep(h, TRICKLE_MS);
        }
    }
    return sent;
}

/* A DMA_WRITE of @count bytes of 0xee to GUEST_BUF */
static void put_dma_write(GByteArray *out, uint16_t id, uint64_t count)
{
    VFIOUserDMARW rw = { .address = GUEST_BUF, .count = count };
    size_t at;

    put_hdr(out, id, VFIO_USER_DMA_WRITE,
            sizeof(VFIOUserHdr) + sizeof(rw) + count, VFIO_USER_REQUEST, 0);
    g_byte_array_append(out, (uint8_t *)&rw, sizeof(rw));
    at = out->len;
    g_byte_array_set_size(out, at + count);
    memset(out->data + at, 0xee, count);
}

/* The wait took less than the bound (and the slack); say how long. */
static void assert_within_bound(const char *what, gint64 t0)
{
    gint64 ms = (g_get_monotonic_time() - t0) / 1000;

    g_test_message("%s: %" PRId64 " ms (bound %d ms)", what, ms,
                   DEADLINE_BOUND_MS);
    g_assert_cmpint(ms, <, DEADLINE_BOUND_MS + DEADLINE_SLACK_MS);
}

/* The reply to a BAR read: its header, then a byte at a time */
static VUTestHookAction fn_trickle_reply(Hostile *h, VUTestServer *s,
                                         const VUTestMsg *msg,
                                         GByteArray *out)
{
    /*
     * Let the client start waiting first: then the thread that waits for
     * the reply reads it itself (with the BQL, for a qtest access).
     */
    hostile_sleep(h, 50);
    put_read_reply(out, msg, h->value);
    trickle(h, s, out->data, out->len, sizeof(VFIOUserHdr));
    g_byte_array_set_size(out, 0);
    return VU_TEST_HOOK_REPLACE;
}

/*
 * A well-formed reply whose 20 bytes of payload take 10 s to arrive:
 * no pause in it reaches the timeout, yet the read must fail, and the
 * connection with it, within the bound.
 */
static void test_deadline_reply_trickles(void)
{
    TestCtx c = { .timeout_ms = FAST_TIMEOUT_MS };
    gint64 t0;
    uint32_t v;

    ctx_start(&c, NULL);
    assert_works(&c);
    c.h.value = 0x0badf00d;
    arm_read(&c, fn_trickle_reply);
    t0 = g_get_monotonic_time();
    v = vu_fixture_bar0_readl(&c.f, VU_TEST_REG_ID);
    assert_within_bound("trickled reply", t0);
    g_assert_cmphex(v, ==, ALL_ONES);
    assert_degraded(&c);
    ctx_stop(&c);
}

/*
 * Answer a BAR read, then trickle a DMA_WRITE: from the server thread,
 * so that no reply of the server lands in the middle of it.
 */
static VUTestHookAction fn_dma_write_trickle(Hostile *h, VUTestServer *s,
                                             const VUTestMsg *msg,
                                             GByteArray *out)
{
    put_read_reply(out, msg, VU_TEST_ID_MAGIC);
    g_assert_cmpint(vu_test_server_send_raw(s, out->data, out->len, NULL, 0),
                    ==, 0);
    g_byte_array_set_size(out, 0);
    /* Once the reader of the reply is done: the receive thread reads it. */
    hostile_sleep(h, 100);
    put_dma_write(out, 0x7100, 32);
    trickle(h, s, out->data, out->len, sizeof(VFIOUserHdr) + 16);
    g_byte_array_set_size(out, 0);
    return VU_TEST_HOOK_REPLACE;
}

/*
 * A DMA_WRITE of the server whose data trickles in, read by the
 * client's receive thread: the connection must go within the bound of
 * its first byte, and a BAR read meanwhile must not wait longer.
 */
static void test_deadline_dma_write_trickles(void)
{
    TestCtx c = { .timeout_ms = FAST_TIMEOUT_MS };
    gint64 t0, t1;

    dma_start(&c);
    arm_read(&c, fn_dma_write_trickle);
    t0 = g_get_monotonic_time();
    g_assert_cmphex(vu_fixture_bar0_readl(&c.f, VU_TEST_REG_ID), ==,
                    VU_TEST_ID_MAGIC);
    g_usleep(200 * 1000);
    t1 = g_get_monotonic_time();
    g_assert_cmphex(vu_fixture_bar0_readl(&c.f, VU_TEST_REG_ID), ==, ALL_ONES);
    assert_within_bound("BAR read behind a trickled DMA_WRITE", t1);
    wait_lost(&c);
    assert_within_bound("trickled DMA_WRITE", t0);
    assert_degraded(&c);
    guard_check(&c);
    ctx_stop(&c);
}

/*
 * Answer a BAR read, then ask for 1 MiB of guest RAM and read the reply
 * 4 KiB every 200 ms (51 s for all of it), as a slow server would.
 * h->value: the bytes of it read.
 */
static VUTestHookAction fn_slow_reader(Hostile *h, VUTestServer *s,
                                       const VUTestMsg *msg, GByteArray *out)
{
    VFIOUserDMARW rw = { .address = GUEST_BUF, .count = 1 * MiB };
    gint64 end = g_get_monotonic_time() + TRICKLE_MAX_MS * 1000LL;
    g_autofree uint8_t *buf = g_malloc(4 * KiB);
    uint32_t got = 0;
    int n;

    put_read_reply(out, msg, VU_TEST_ID_MAGIC);
    g_assert_cmpint(vu_test_server_send_raw(s, out->data, out->len, NULL, 0),
                    ==, 0);
    g_byte_array_set_size(out, 0);
    /* Once the reader of the reply is done: the receive thread reads it. */
    hostile_sleep(h, 100);
    put_hdr(out, 0x7200, VFIO_USER_DMA_READ,
            sizeof(VFIOUserHdr) + sizeof(rw), VFIO_USER_REQUEST, 0);
    g_byte_array_append(out, (uint8_t *)&rw, sizeof(rw));
    g_assert_cmpint(vu_test_server_send_raw(s, out->data, out->len, NULL, 0),
                    ==, 0);
    g_byte_array_set_size(out, 0);
    while (g_get_monotonic_time() < end) {
        n = vu_test_server_recv_raw(s, buf, 4 * KiB, 0);
        if (n < 0) {
            break;
        }
        got += n;
        hostile_sleep(h, 200);
    }
    h->value = got;
    return VU_TEST_HOOK_REPLACE;
}

/*
 * The receive thread sends a 1 MiB DMA_READ reply to a server that
 * reads it slowly, holding the send token; a vCPU's BAR write must not
 * wait for it longer than the bound.
 */
static void test_deadline_dma_read_slow_reader(void)
{
    TestCtx c = { .timeout_ms = FAST_TIMEOUT_MS };
    gint64 t0;

    ctx_start(&c, ",x-post-writes=off");
    guard_fill(&c);
    assert_works(&c);
    arm_read(&c, fn_slow_reader);
    g_assert_cmphex(vu_fixture_bar0_readl(&c.f, VU_TEST_REG_ID), ==,
                    VU_TEST_ID_MAGIC);
    /* Time for the receive thread to fill the socket with the reply */
    g_usleep(300 * 1000);
    t0 = g_get_monotonic_time();
    vu_fixture_bar0_writel(&c.f, VU_TEST_REG_SCRATCH, 0x5a5a5a5a);
    assert_within_bound("BAR write behind a slowly read DMA_READ reply", t0);
    /* The server reads the rest at once, to the end of the stream. */
    hostile_release(&c.h);
    assert_degraded(&c);
    g_assert(hostile_wait_hits(&c.h, 1));
    g_test_message("the server read %u bytes of the reply", c.h.value);
    g_assert_cmpuint(c.h.value, >, 0);
    g_assert_cmpuint(c.h.value, <, 1 * MiB);
    guard_check(&c);
    ctx_stop(&c);
}

/*
 * Instead of answering a DMA_UNMAP, a DMA_WRITE whose data trickles in:
 * the main loop, waiting for the DMA_UNMAP reply under the BQL, reads it.
 */
static VUTestHookAction fn_unmap_trickle(Hostile *h, VUTestServer *s,
                                         const VUTestMsg *msg,
                                         GByteArray *out)
{
    g_autoptr(GByteArray) dma = g_byte_array_new();

    /* Let the client start waiting: then it reads this itself. */
    hostile_sleep(h, 50);
    put_dma_write(dma, 0x7300, 32);
    trickle(h, s, dma->data, dma->len, sizeof(VFIOUserHdr) + 16);
    return VU_TEST_HOOK_CONTINUE;
}

static void test_deadline_unplug_stalled_handler(void)
{
    TestCtx c = { .timeout_ms = FAST_TIMEOUT_MS };
    gint64 t0;

    ctx_start(&c, NULL);
    assert_works(&c);
    c.h.once = true;
    hostile_arm(&c.h, VFIO_USER_DMA_UNMAP, -1, fn_unmap_trickle);
    t0 = g_get_monotonic_time();
    qpci_unplug_acpi_device_test(c.f.qts, "vu0", SLOT);
    assert_within_bound("unplug during a trickled DMA_WRITE", t0);
    g_assert_cmpint(qatomic_read(&c.h.entered), ==, 1);
    assert_unplugged(&c);
    ctx_stop(&c);
}

void hostile_add_deadline_tests(void)
{
    qtest_add_func("/vfio-user-hostile/deadline/reply-trickles",
                   test_deadline_reply_trickles);
    qtest_add_func("/vfio-user-hostile/deadline/dma-write-trickles",
                   test_deadline_dma_write_trickles);
    qtest_add_func("/vfio-user-hostile/deadline/dma-read-slow-reader",
                   test_deadline_dma_read_slow_reader);
    qtest_add_func("/vfio-user-hostile/deadline/unplug-stalled-handler",
                   test_deadline_unplug_stalled_handler);
}
