/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Hostile servers at the end of the device's life and its resets:
 * DEVICE_RESET and DMA_UNMAP that fail, stall or disconnect, and DMA into
 * what the client is unmapping.
 */

#include "qemu/osdep.h"
#include "qobject/qdict.h"
#include "qemu/atomic.h"
#include "hw/pci/pci_regs.h"
#include "vfio-user-hostile.h"

/* ---------------------------------------------------------------------- */
/* Reset and unplug */

static void do_reset(TestCtx *c)
{
    QDict *resp = qtest_qmp(c->f.qts, "{'execute': 'system_reset'}");

    g_assert(qdict_haskey(resp, "return"));
    qobject_unref(resp);
    qtest_qmp_eventwait(c->f.qts, "RESET");
}

static void test_reset_error(void)
{
    TestCtx c = { 0 };

    ctx_start(&c, NULL);
    c.h.flags = VFIO_USER_ERROR;
    c.h.err = UINT32_MAX;
    c.h.once = true;
    hostile_arm(&c.h, VFIO_USER_DEVICE_RESET, -1, fn_canned);
    do_reset(&c);
    assert_hits(&c.h, 1);
    vu_fixture_find_device(&c.f, DEVFN);
    assert_works(&c);
    ctx_stop(&c);
}

static void test_reset_late(void)
{
    TestCtx c = { .timeout_ms = FAST_TIMEOUT_MS };

    ctx_start(&c, NULL);
    c.h.delay_ms = c.timeout_ms * 2;
    c.h.once = true;
    hostile_arm(&c.h, VFIO_USER_DEVICE_RESET, -1, fn_sleep);
    do_reset(&c);
    g_assert(hostile_wait_hits(&c.h, 1));
    vu_fixture_find_device(&c.f, DEVFN);
    assert_works(&c);
    ctx_stop(&c);
}

static void test_reset_disconnect(void)
{
    TestCtx c = { 0 };

    ctx_start(&c, NULL);
    c.h.once = true;
    hostile_arm(&c.h, VFIO_USER_DEVICE_RESET, -1, fn_disconnect);
    do_reset(&c);
    assert_hits(&c.h, 1);
    /* A failed device: config space reads all ones too. */
    g_assert_cmphex(qpci_config_readw(c.f.dev, PCI_VENDOR_ID), ==, 0xffff);
    qpci_device_enable(c.f.dev);
    c.f.bar0 = qpci_iomap(c.f.dev, 0, NULL);
    assert_degraded(&c);
    do_reset(&c);
    assert_alive(&c);
    ctx_stop(&c);
}

/* Unplug with a server that misbehaves on DMA_UNMAP: it completes. */
static void check_unplug(HostileFn fn, uint32_t err, unsigned delay_ms)
{
    TestCtx c = { .timeout_ms = FAST_TIMEOUT_MS };
    gint64 t0;

    ctx_start(&c, NULL);
    assert_works(&c);
    c.h.flags = VFIO_USER_ERROR;
    c.h.err = err;
    c.h.delay_ms = delay_ms;
    hostile_arm(&c.h, VFIO_USER_DMA_UNMAP, -1, fn);
    t0 = g_get_monotonic_time();
    qpci_unplug_acpi_device_test(c.f.qts, "vu0", SLOT);
    /*
     * One unanswered DMA_UNMAP drops the server: the other mappings
     * (five here) must not wait the timeout each.
     */
    g_assert_cmpint(g_get_monotonic_time() - t0, <,
                    3 * c.timeout_ms * 1000);
    g_assert_cmpint(qatomic_read(&c.h.entered), >=, 1);
    assert_unplugged(&c);
    ctx_stop(&c);
}

/*
 * While the client waits for the DMA_UNMAP of guest RAM, the server
 * DMAs there: the range left the client's table before the message was
 * sent, so both directions are refused and RAM is untouched.
 */
static VUTestHookAction fn_dma_into_unmapped(Hostile *h, VUTestServer *s,
                                             const VUTestMsg *msg,
                                             GByteArray *out)
{
    VFIOUserDMAUnmap um;
    uint8_t data[64];
    VUTestDMARequest wr = {
        .write = true, .address = GUEST_BUF, .count = sizeof(data),
        .data = data, .data_len = sizeof(data),
    };
    VUTestDMARequest rd = { .address = GUEST_BUF, .count = sizeof(data) };
    VUTestDMAResult res;

    memcpy(&um, msg->payload, sizeof(um));
    if (um.address > GUEST_BUF || um.address + um.size <= GUEST_BUF) {
        return VU_TEST_HOOK_CONTINUE;
    }
    /* Each must be an error reply from the client: the errno, or 0 */
    memset(data, 0xee, sizeof(data));
    h->err = vu_test_server_dma(s, &wr, &res);
    h->err = res.error_reply ? h->err : 0;
    h->value = vu_test_server_dma(s, &rd, &res);
    h->value = res.error_reply ? h->value : 0;
    if (res.data) {
        g_byte_array_unref(res.data);
    }
    h->once = false;
    qatomic_set(&h->armed, 0);
    return VU_TEST_HOOK_CONTINUE;
}

static void test_unplug_dma_into_unmapped(void)
{
    TestCtx c = { 0 };
    uint8_t want[64], got[64];

    ctx_start(&c, NULL);
    guard_fill(&c);
    vu_fixture_fill_pattern(want, sizeof(want), 9);
    qtest_memwrite(c.f.qts, GUEST_BUF, want, sizeof(want));
    assert_works(&c);
    hostile_arm(&c.h, VFIO_USER_DMA_UNMAP, -1, fn_dma_into_unmapped);
    qpci_unplug_acpi_device_test(c.f.qts, "vu0", SLOT);
    g_assert(vu_test_server_wait_disconnected(c.f.srv, WAIT_MS));
    g_assert_cmpint(qatomic_read(&c.h.armed), ==, 0);
    g_assert_cmpint((int32_t)c.h.err, ==, -EFAULT);
    g_assert_cmpint((int32_t)c.h.value, ==, -EFAULT);
    qtest_memread(c.f.qts, GUEST_BUF, got, sizeof(got));
    g_assert_cmpmem(got, sizeof(got), want, sizeof(want));
    guard_check(&c);
    assert_alive(&c);
    ctx_stop(&c);
}

static void test_unplug_disconnect(void)
{
    check_unplug(fn_disconnect, 0, 0);
}

static void test_unplug_error(void)
{
    check_unplug(fn_canned, 0, 0);
}

static void test_unplug_stall(void)
{
    check_unplug(fn_sleep, 0, 60000);
}

void hostile_add_unplug_tests(void)
{
    qtest_add_func("/vfio-user-hostile/reset/error", test_reset_error);
    qtest_add_func("/vfio-user-hostile/reset/late", test_reset_late);
    qtest_add_func("/vfio-user-hostile/reset/disconnect",
                   test_reset_disconnect);
    qtest_add_func("/vfio-user-hostile/unplug/disconnect",
                   test_unplug_disconnect);
    qtest_add_func("/vfio-user-hostile/unplug/error", test_unplug_error);
    qtest_add_func("/vfio-user-hostile/unplug/stall", test_unplug_stall);
    qtest_add_func("/vfio-user-hostile/unplug/dma-into-unmapped",
                   test_unplug_dma_into_unmapped);
}
