/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Hostile servers at run time: bad, late, stray and duplicate replies
 * to the guest's BAR accesses, framing errors, stalls and disconnects.
 */

#include "qemu/osdep.h"
#include <sys/eventfd.h>
#include "hw/pci/pci_regs.h"
#include "vfio-user-hostile.h"

/* Answer a 4-byte REGION_READ with h->value, and fds if any */
static VUTestHookAction fn_read_value(Hostile *h, VUTestServer *s,
                                      const VUTestMsg *msg, GByteArray *out)
{
    put_read_reply(out, msg, h->value);
    if (h->nfds) {
        send_with_fds(h, s, out);
    }
    return VU_TEST_HOOK_REPLACE;
}

/* The same reply twice */
static VUTestHookAction fn_duplicate(Hostile *h, VUTestServer *s,
                                     const VUTestMsg *msg, GByteArray *out)
{
    put_read_reply(out, msg, h->value);
    put_read_reply(out, msg, h->value);
    return VU_TEST_HOOK_REPLACE;
}

/*
 * Half a header, a pause of h->delay_ms, then the rest: a server that is
 * slow in the middle of a reply.  delay_ms 0: the rest never comes.
 */
static VUTestHookAction fn_half_header(Hostile *h, VUTestServer *s,
                                       const VUTestMsg *msg, GByteArray *out)
{
    put_read_reply(out, msg, h->value);
    g_assert_cmpint(vu_test_server_send_raw(s, out->data, 8, NULL, 0), ==, 0);
    if (h->delay_ms) {
        hostile_sleep(h, h->delay_ms);
        g_byte_array_remove_range(out, 0, 8);
    } else {
        g_byte_array_set_size(out, 0);
    }
    return VU_TEST_HOOK_REPLACE;
}

/* A reply to a posted write, which asked for none, then handle it */
static VUTestHookAction fn_reply_to_posted(Hostile *h, VUTestServer *s,
                                           const VUTestMsg *msg,
                                           GByteArray *out)
{
    g_autoptr(GByteArray) spurious = g_byte_array_new();

    if (!(msg->hdr.flags & VFIO_USER_NO_REPLY)) {
        return VU_TEST_HOOK_CONTINUE;
    }
    put_reply(spurious, msg, msg->payload, sizeof(VFIOUserRegionRW));
    g_assert_cmpint(vu_test_server_send_raw(s, spurious->data, spurious->len,
                                            NULL, 0), ==, 0);
    return VU_TEST_HOOK_CONTINUE;
}
/* ---------------------------------------------------------------------- */
/* Run time: bad replies to the guest's BAR accesses */

/* One bad reply; the read fails, and the device goes on working. */
static void check_read_fails_then_works(TestCtx *c)
{
    g_assert_cmphex(vu_fixture_bar0_readl(&c->f, VU_TEST_REG_ID), ==, ALL_ONES);
    assert_hits(&c->h, 1);
    assert_works(c);
    assert_works(c);
}

/* A reply for an id the client never sent, in place of the real one */
static void test_rt_wrong_id(void)
{
    TestCtx c = { .timeout_ms = FAST_TIMEOUT_MS };

    ctx_start(&c, NULL);
    assert_works(&c);
    g_byte_array_append(c.h.canned, (uint8_t *)&(VFIOUserRegionRW) {
                            .offset = VU_TEST_REG_ID, .count = 4 },
                        sizeof(VFIOUserRegionRW));
    g_byte_array_append(c.h.canned, (uint8_t *)"\x11\x11\x11\x11", 4);
    c.h.id_xor = 0x8000;
    arm_read(&c, fn_canned);
    check_read_fails_then_works(&c);
    ctx_stop(&c);
}

/* Replies nobody asked for, at any time, are dropped whole */
static void test_rt_unsolicited(void)
{
    TestCtx c = { 0 };
    g_autoptr(GByteArray) junk = g_byte_array_new();
    uint8_t payload[sizeof(VFIOUserRegionRW) + 4] = { 0 };

    ctx_start(&c, NULL);
    for (unsigned id = 0; id < 64; id++) {
        put_hdr(junk, 0xffff - id, VFIO_USER_REGION_READ,
                sizeof(VFIOUserHdr) + sizeof(payload), VFIO_USER_REPLY, 0);
        g_byte_array_append(junk, payload, sizeof(payload));
        put_hdr(junk, 0xfff0 - id, VFIO_USER_DEVICE_RESET,
                sizeof(VFIOUserHdr), VFIO_USER_REPLY | VFIO_USER_ERROR, 5);
    }
    g_assert_cmpint(vu_test_server_send_raw(c.f.srv, junk->data, junk->len,
                                            NULL, 0), ==, 0);
    assert_works(&c);
    assert_works(&c);
    ctx_stop(&c);
}

/* The same reply twice: the second must not answer the next request */
static void test_rt_duplicate(void)
{
    TestCtx c = { 0 };

    ctx_start(&c, NULL);
    c.h.value = 0x12345678;
    arm_read(&c, fn_duplicate);
    g_assert_cmphex(vu_fixture_bar0_readl(&c.f, VU_TEST_REG_ID), ==,
                    0x12345678);
    assert_works(&c);
    assert_works(&c);
    ctx_stop(&c);
}

/* A reply with the right id but another command */
static void test_rt_wrong_command(void)
{
    TestCtx c = { 0 };

    ctx_start(&c, NULL);
    g_byte_array_set_size(c.h.canned, sizeof(VFIOUserRegionRW) + 4);
    c.h.reply_cmd = VFIO_USER_REGION_WRITE;
    arm_read(&c, fn_canned);
    check_read_fails_then_works(&c);
    ctx_stop(&c);
}

/* A reply after the timeout: the read fails, the stream stays in sync */
static void test_rt_late_reply(void)
{
    TestCtx c = { .timeout_ms = FAST_TIMEOUT_MS };
    gint64 t0, dt;

    ctx_start(&c, NULL);
    c.h.delay_ms = c.timeout_ms * 2;
    arm_read(&c, fn_sleep);
    t0 = g_get_monotonic_time();
    g_assert_cmphex(vu_fixture_bar0_readl(&c.f, VU_TEST_REG_ID), ==, ALL_ONES);
    dt = (g_get_monotonic_time() - t0) / 1000;
    g_assert_cmpint(dt, >=, c.timeout_ms - 10);
    g_assert(hostile_wait_hits(&c.h, 1));
    assert_works(&c);
    assert_works(&c);
    ctx_stop(&c);
}

/*
 * Odd errno values in error replies, some with the payload of a good
 * reply: an error is an error whatever its number and payload.
 */
static void test_rt_error_errno(void)
{
    static const uint32_t errs[] = {
        0, EIO, (uint32_t)-EIO, 0x80000000, UINT32_MAX, 4096, 65536,
    };
    VFIOUserRegionRW rw = {
        .offset = VU_TEST_REG_ID, .region = VFIO_PCI_BAR0_REGION_INDEX,
        .count = 4,
    };
    TestCtx c = { 0 };

    ctx_start(&c, NULL);
    for (size_t i = 0; i < ARRAY_SIZE(errs); i++) {
        g_byte_array_set_size(c.h.canned, 0);
        if (i & 1) {
            g_byte_array_append(c.h.canned, (uint8_t *)&rw, sizeof(rw));
            g_byte_array_append(c.h.canned, (uint8_t *)"1111", 4);
        }
        c.h.flags = VFIO_USER_ERROR;
        c.h.err = errs[i];
        arm_read(&c, fn_canned);
        check_read_fails_then_works(&c);
    }
    ctx_stop(&c);
}

/* REGION_READ replies whose count, size or echo is wrong */
static void test_rt_read_bad_reply(void)
{
    TestCtx c = { 0 };

    ctx_start(&c, NULL);
    for (int variant = 0; variant < 6; variant++) {
        VFIOUserRegionRW rw = {
            .offset = VU_TEST_REG_ID, .region = VFIO_PCI_BAR0_REGION_INDEX,
            .count = 4,
        };
        size_t data = 4;

        switch (variant) {
        case 0:
            rw.count = 2;               /* fewer than asked, 4 sent */
            break;
        case 1:
            rw.count = 2;               /* fewer than asked, and sent */
            data = 2;
            break;
        case 2:
            data = 4096;                /* more data than the count */
            break;
        case 3:
            rw.count = 0x100000;        /* a count it never asked for */
            break;
        case 4:
            rw.offset = 0x1000;         /* another offset */
            break;
        case 5:
            rw.region = VFIO_PCI_BAR1_REGION_INDEX;
            break;
        }
        g_byte_array_set_size(c.h.canned, 0);
        g_byte_array_append(c.h.canned, (uint8_t *)&rw, sizeof(rw));
        g_byte_array_set_size(c.h.canned, sizeof(rw) + data);
        memset(c.h.canned->data + sizeof(rw), 0x5a, data);
        arm_read(&c, fn_canned);
        check_read_fails_then_works(&c);
    }
    ctx_stop(&c);
}

/*
 * An error reply to a config space read: the guest reads all ones, as
 * from a BAR, and the next read is right again.
 */
static void test_rt_config_read_error(void)
{
    TestCtx c = { 0 };
    uint16_t v;

    ctx_start(&c, NULL);
    c.h.flags = VFIO_USER_ERROR;
    c.h.err = EIO;
    c.h.once = true;
    hostile_arm(&c.h, VFIO_USER_REGION_READ, VFIO_PCI_CONFIG_REGION_INDEX,
                fn_canned);
    v = qpci_config_readw(c.f.dev, PCI_DEVICE_ID);
    assert_hits(&c.h, 1);
    g_assert_cmphex(qpci_config_readw(c.f.dev, PCI_DEVICE_ID), ==, 0x5655);
    assert_works(&c);
    ctx_stop(&c);
    if (v != 0xffff) {
        /* Not fatal: let the other cases run. */
        g_test_message("client bug: a config read answered with an error "
                       "reads 0x%04x, not all ones", v);
        g_test_fail();
    }
}

/* fds attached to replies that take none: closed, never leaked */
static void test_rt_reply_fds(void)
{
    int fds[16];
    TestCtx c = { 0 };
    unsigned before;

    for (size_t i = 0; i < ARRAY_SIZE(fds); i++) {
        fds[i] = eventfd(0, EFD_CLOEXEC);
    }
    ctx_start(&c, NULL);
    assert_works(&c);
    before = vu_fixture_qemu_fds(&c.f);
    c.h.value = VU_TEST_ID_MAGIC;
    c.h.fds = fds;
    c.h.nfds = ARRAY_SIZE(fds);
    hostile_arm(&c.h, VFIO_USER_REGION_READ, VFIO_PCI_BAR0_REGION_INDEX,
                fn_read_value);
    for (int i = 0; i < 20; i++) {
        g_assert_cmphex(vu_fixture_bar0_readl(&c.f, VU_TEST_REG_ID), ==,
                        VU_TEST_ID_MAGIC);
    }
    hostile_disarm(&c.h);
    assert_hits(&c.h, 20);
    g_assert_cmpuint(vu_fixture_qemu_fds(&c.f), <=, before);
    assert_works(&c);
    ctx_stop(&c);
    for (size_t i = 0; i < ARRAY_SIZE(fds); i++) {
        close(fds[i]);
    }
}

/*
 * A stray reply right before BAR1's GET_REGION_INFO reply and its fd,
 * the stray with fds of its own or without: when both are there, the
 * client reads them in one go, and must still give each message its own
 * fds (BAR1 gets mapped, accesses there send no message).  Whether both
 * are there is up to the scheduler, so the device is plugged a few times.
 */
static void check_stray_before_region_fd(bool stray_fds)
{
    int fds[2];
    TestCtx c = { 0 };

    for (size_t i = 0; i < ARRAY_SIZE(fds); i++) {
        fds[i] = eventfd(0, EFD_CLOEXEC);
        g_assert_cmpint(fds[i], >=, 0);
    }
    ctx_server(&c, NULL, true);
    ctx_qemu(&c);
    c.h.id_xor = 0x8000;                /* nobody's id */
    c.h.then_handle = true;             /* then the real reply */
    if (stray_fds) {
        c.h.fds = fds;
        c.h.nfds = ARRAY_SIZE(fds);
    }
    for (uint32_t i = 0; i < 6; i++) {
        QPCIBar bar1;
        uint32_t v;

        hostile_arm(&c.h, VFIO_USER_DEVICE_GET_REGION_INFO,
                    VFIO_PCI_BAR1_REGION_INDEX, fn_canned);
        check_realize_works(&c);
        bar1 = qpci_iomap(c.f.dev, 1, NULL);
        qpci_io_writel(c.f.dev, bar1, 0x100, 0x12345678 + i);
        vu_test_server_bar1_read(c.f.srv, 0x100, &v, sizeof(v));
        g_assert_cmphex(v, ==, 0x12345678 + i);
        g_assert(!vu_fixture_region_written(&c.f,
                                            VFIO_PCI_BAR1_REGION_INDEX,
                                            0x100));
        qpci_iounmap(c.f.dev, bar1);
        g_free(c.f.dev);
        c.f.dev = NULL;
        qpci_unplug_acpi_device_test(c.f.qts, "vu0", SLOT);
        g_assert(vu_test_server_wait_disconnected(c.f.srv, WAIT_MS));
    }
    ctx_stop(&c);
    for (size_t i = 0; i < ARRAY_SIZE(fds); i++) {
        close(fds[i]);
    }
}

static void test_rt_stray_before_fd(void)
{
    check_stray_before_region_fd(false);
}

static void test_rt_stray_fds_before_fd(void)
{
    check_stray_before_region_fd(true);
}

/*
 * Replies to posted writes, which asked for none.  The writes must have
 * been posted (NO_REPLY), or the hook never misbehaved and this proves
 * nothing.
 */
static void test_rt_reply_to_posted(void)
{
    g_autoptr(GArray) writes = NULL;
    unsigned posted = 0;
    TestCtx c = { 0 };

    ctx_start(&c, ",x-post-writes=on");
    vu_test_server_clear_log(c.f.srv);
    hostile_arm(&c.h, VFIO_USER_REGION_WRITE, VFIO_PCI_BAR0_REGION_INDEX,
                fn_reply_to_posted);
    for (int i = 0; i < 10; i++) {
        assert_works(&c);
    }
    g_assert(hostile_wait_hits(&c.h, 10));
    writes = vu_test_server_region_writes(c.f.srv);
    for (guint i = 0; i < writes->len; i++) {
        VUTestRegionWriteRecord *w = &g_array_index(writes,
                                                    VUTestRegionWriteRecord,
                                                    i);

        if (w->region == VFIO_PCI_BAR0_REGION_INDEX &&
            w->offset == VU_TEST_REG_SCRATCH) {
            g_assert(w->no_reply);
            posted++;
        }
    }
    g_assert_cmpuint(posted, ==, 10);
    ctx_stop(&c);
}

/*
 * Messages of a type that is neither request nor reply, and requests the
 * client does not serve: skipped or refused, the stream stays in sync
 */
static void test_rt_bad_types(void)
{
    g_autoptr(GByteArray) junk = g_byte_array_new();
    uint8_t payload[24] = { 0 };
    VUTestServerStats st;
    TestCtx c = { 0 };

    ctx_start(&c, NULL);
    put_hdr(junk, 1, VFIO_USER_REGION_READ, 16 + sizeof(payload), 0xf, 0);
    g_byte_array_append(junk, payload, sizeof(payload));
    put_hdr(junk, 2, 0x7777, 16 + sizeof(payload), VFIO_USER_REQUEST, 0);
    g_byte_array_append(junk, payload, sizeof(payload));
    put_hdr(junk, 3, VFIO_USER_VERSION, 16 + 4, VFIO_USER_REQUEST, 0);
    g_byte_array_append(junk, payload, 4);
    put_hdr(junk, 4, VFIO_USER_DMA_MAP, 16, VFIO_USER_REQUEST |
            VFIO_USER_NO_REPLY, 0);
    g_assert_cmpint(vu_test_server_send_raw(c.f.srv, junk->data, junk->len,
                                            NULL, 0), ==, 0);
    assert_works(&c);
    /* The two requests that wanted a reply got an error reply. */
    vu_test_server_get_stats(c.f.srv, &st);
    g_assert_cmpuint(st.stale_replies, ==, 2);
    assert_works(&c);
    ctx_stop(&c);
}

/* Framing errors that leave the stream unusable: the device degrades */
static void test_rt_fatal_frame(const void *data)
{
    const FrameCase *fc = data;
    TestCtx c = { .timeout_ms = FAST_TIMEOUT_MS };
    gint64 t0;

    ctx_start(&c, NULL);
    assert_works(&c);
    g_byte_array_set_size(c.h.canned, sizeof(VFIOUserRegionRW) + 4);
    c.h.size = fc->size;
    c.h.cut = fc->cut;
    arm_read(&c, fn_canned);
    t0 = g_get_monotonic_time();
    g_assert_cmphex(vu_fixture_bar0_readl(&c.f, VU_TEST_REG_ID), ==, ALL_ONES);
    g_assert_cmpint(g_get_monotonic_time() - t0, <, 5 * G_USEC_PER_SEC);
    assert_degraded(&c);
    ctx_stop(&c);
}

static const FrameCase rt_frame_cases[] = {
    { "size-below-header", 0, 15, 0 },
    { "size-zero", 0, 0, 0 },
    { "size-huge", 0, 0xffffffff, 0 },
    { "size-beyond-limit", 0, 64 * 1024 * 1024 + 64, 0 },
    { "stall-mid-payload", 0, -1, sizeof(VFIOUserHdr) + 6 },
};

/*
 * Half a header, then nothing for longer than the timeout, then the
 * rest: a slow server.  The read times out; then the stream must be in
 * sync again, or the connection dropped; never a wrong value.
 */
static void test_rt_stall_mid_header(void)
{
    TestCtx c = { .timeout_ms = FAST_TIMEOUT_MS };
    uint32_t v;

    ctx_start(&c, NULL);
    c.h.value = 0x0badf00d;
    c.h.delay_ms = c.timeout_ms * 2;
    arm_read(&c, fn_half_header);
    g_assert_cmphex(vu_fixture_bar0_readl(&c.f, VU_TEST_REG_ID), ==, ALL_ONES);
    g_assert(hostile_wait_hits(&c.h, 1));
    v = vu_fixture_bar0_readl(&c.f, VU_TEST_REG_ID);
    g_assert(v == VU_TEST_ID_MAGIC || v == ALL_ONES);
    if (v == ALL_ONES) {
        assert_degraded(&c);
    } else {
        assert_works(&c);
    }
    ctx_stop(&c);
}

/*
 * Half a header and never the rest, while the server goes on answering
 * later requests: the 8 stray bytes must not shift every later reply.
 */
static void test_rt_truncated_header(void)
{
    TestCtx c = { .timeout_ms = FAST_TIMEOUT_MS };
    uint32_t v;

    ctx_start(&c, NULL);
    vu_fixture_bar0_writel(&c.f, VU_TEST_REG_SCRATCH, 0x2468ace0);
    c.h.value = 0x0badf00d;
    c.h.delay_ms = 0;
    arm_read(&c, fn_half_header);
    g_assert_cmphex(vu_fixture_bar0_readl(&c.f, VU_TEST_REG_ID), ==, ALL_ONES);
    for (int i = 0; i < 8; i++) {
        v = vu_fixture_bar0_readl(&c.f, VU_TEST_REG_SCRATCH);
        if (v != ALL_ONES) {
            g_assert_cmphex(v, ==, 0x2468ace0);
        }
    }
    assert_alive(&c);
    ctx_stop(&c);
}

/* Disconnects at run time: idle, or in the middle of a request */
static void test_rt_disconnect_idle(void)
{
    TestCtx c = { 0 };

    ctx_start(&c, NULL);
    assert_works(&c);
    vu_test_server_disconnect(c.f.srv);
    assert_degraded(&c);
    ctx_stop(&c);
}

static void test_rt_disconnect_in_read(void)
{
    TestCtx c = { 0 };

    ctx_start(&c, NULL);
    arm_read(&c, fn_disconnect);
    g_assert_cmphex(vu_fixture_bar0_readl(&c.f, VU_TEST_REG_ID), ==, ALL_ONES);
    assert_degraded(&c);
    ctx_stop(&c);
}

static void test_rt_disconnect_in_write(void)
{
    TestCtx c = { 0 };

    ctx_start(&c, ",x-post-writes=off");
    c.h.once = true;
    hostile_arm(&c.h, VFIO_USER_REGION_WRITE, VFIO_PCI_BAR0_REGION_INDEX,
                fn_disconnect);
    vu_fixture_bar0_writel(&c.f, VU_TEST_REG_SCRATCH, 0x1234);
    assert_degraded(&c);
    ctx_stop(&c);
}

/*
 * A server that stops handling messages: every access fails after the
 * timeout, QEMU keeps answering, and once the server resumes the device
 * works again.
 */
static void test_rt_server_stalls(void)
{
    TestCtx c = { .timeout_ms = FAST_TIMEOUT_MS };
    unsigned reads;
    gint64 t0, dt;

    ctx_start(&c, NULL);
    reads = vu_test_server_cmd_count(c.f.srv, VFIO_USER_REGION_READ);
    c.h.delay_ms = 60000;
    arm_read(&c, fn_sleep);
    for (int i = 0; i < 3; i++) {
        t0 = g_get_monotonic_time();
        g_assert_cmphex(vu_fixture_bar0_readl(&c.f, VU_TEST_REG_ID), ==,
                        ALL_ONES);
        dt = (g_get_monotonic_time() - t0) / 1000;
        g_assert_cmpint(dt, <, c.timeout_ms * 5);
        assert_alive(&c);
    }
    hostile_release(&c.h);
    g_assert(hostile_wait_hits(&c.h, 1));
    /* The backlog is answered late and dropped; then all is well. */
    for (int i = 0; i < WAIT_MS / 10; i++) {
        if (vu_test_server_cmd_count(c.f.srv, VFIO_USER_REGION_READ) >=
            reads + 3) {
            break;
        }
        g_usleep(10000);
    }
    assert_works(&c);
    ctx_stop(&c);
}

/*
 * A server that stops reading: posted writes fill the socket, and the
 * client gives up on it after the timeout instead of blocking QEMU.
 */
static void test_rt_server_stops_reading(void)
{
    TestCtx c = { .timeout_ms = FAST_TIMEOUT_MS };
    gint64 t0 = 0, slowest = 0;
    int i;

    ctx_start(&c, ",x-post-writes=on");
    c.h.delay_ms = 60000;
    c.h.once = true;
    hostile_arm(&c.h, VFIO_USER_REGION_WRITE, VFIO_PCI_BAR0_REGION_INDEX,
                fn_sleep);
    for (i = 0; i < 200000; i++) {
        gint64 dt;

        t0 = g_get_monotonic_time();
        vu_fixture_bar0_writel(&c.f, VU_TEST_REG_SCRATCH, i);
        dt = g_get_monotonic_time() - t0;
        slowest = MAX(slowest, dt);
        if (dt >= (c.timeout_ms - 50) * 1000) {
            break;
        }
    }
    g_test_message("%d writes, slowest %" PRId64 " us", i, slowest);
    g_assert_cmpint(i, <, 200000);
    g_assert_cmpint(slowest, <, c.timeout_ms * 5 * 1000);
    assert_alive(&c);
    /* Reads now fail at once, not after the timeout. */
    t0 = g_get_monotonic_time();
    g_assert_cmphex(vu_fixture_bar0_readl(&c.f, VU_TEST_REG_ID), ==, ALL_ONES);
    g_assert_cmpint(g_get_monotonic_time() - t0, <,
                    c.timeout_ms * 1000 / 2);
    hostile_release(&c.h);
    assert_degraded(&c);
    ctx_stop(&c);
}

/* SET_IRQS refused when the guest enables MSI-X */
static void test_rt_set_irqs_error(void)
{
    TestCtx c = { 0 };

    ctx_start(&c, NULL);
    c.h.flags = VFIO_USER_ERROR;
    c.h.err = EINVAL;
    hostile_arm(&c.h, VFIO_USER_DEVICE_SET_IRQS, VFIO_PCI_MSIX_IRQ_INDEX,
                fn_canned);
    qpci_msix_enable(c.f.dev);
    qpci_io_writel(c.f.dev, c.f.dev->msix_table_bar, c.f.dev->msix_table_off +
                   PCI_MSIX_ENTRY_VECTOR_CTRL, 0);
    g_assert(hostile_wait_hits(&c.h, 1));
    assert_works(&c);
    qpci_msix_disable(c.f.dev);
    hostile_disarm(&c.h);
    assert_works(&c);
    ctx_stop(&c);
}

void hostile_add_runtime_tests(void)
{
    qtest_add_func("/vfio-user-hostile/runtime/wrong-id", test_rt_wrong_id);
    qtest_add_func("/vfio-user-hostile/runtime/unsolicited-replies",
                   test_rt_unsolicited);
    qtest_add_func("/vfio-user-hostile/runtime/duplicate-reply",
                   test_rt_duplicate);
    qtest_add_func("/vfio-user-hostile/runtime/wrong-command",
                   test_rt_wrong_command);
    qtest_add_func("/vfio-user-hostile/runtime/late-reply",
                   test_rt_late_reply);
    qtest_add_func("/vfio-user-hostile/runtime/error-errno",
                   test_rt_error_errno);
    qtest_add_func("/vfio-user-hostile/runtime/read-bad-reply",
                   test_rt_read_bad_reply);
    qtest_add_func("/vfio-user-hostile/runtime/config-read-error",
                   test_rt_config_read_error);
    qtest_add_func("/vfio-user-hostile/runtime/reply-fds",
                   test_rt_reply_fds);
    qtest_add_func("/vfio-user-hostile/runtime/stray-before-region-fd",
                   test_rt_stray_before_fd);
    qtest_add_func("/vfio-user-hostile/runtime/stray-fds-before-region-fd",
                   test_rt_stray_fds_before_fd);
    qtest_add_func("/vfio-user-hostile/runtime/reply-to-posted-write",
                   test_rt_reply_to_posted);
    qtest_add_func("/vfio-user-hostile/runtime/bad-types",
                   test_rt_bad_types);
    ADD_CASES("/vfio-user-hostile/runtime", rt_frame_cases,
              test_rt_fatal_frame);
    qtest_add_func("/vfio-user-hostile/runtime/stall-mid-header",
                   test_rt_stall_mid_header);
    qtest_add_func("/vfio-user-hostile/runtime/truncated-header",
                   test_rt_truncated_header);
    qtest_add_func("/vfio-user-hostile/runtime/disconnect-idle",
                   test_rt_disconnect_idle);
    qtest_add_func("/vfio-user-hostile/runtime/disconnect-in-read",
                   test_rt_disconnect_in_read);
    qtest_add_func("/vfio-user-hostile/runtime/disconnect-in-write",
                   test_rt_disconnect_in_write);
    qtest_add_func("/vfio-user-hostile/runtime/server-stalls",
                   test_rt_server_stalls);
    qtest_add_func("/vfio-user-hostile/runtime/server-stops-reading",
                   test_rt_server_stops_reading);
    qtest_add_func("/vfio-user-hostile/runtime/set-irqs-error",
                   test_rt_set_irqs_error);
}
