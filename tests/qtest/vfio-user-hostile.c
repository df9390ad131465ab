/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The helper the vfio-user-hostile-test files share: see
 * vfio-user-hostile.h.
 */

#include "qemu/osdep.h"
#include "qobject/qdict.h"
#include "qemu/atomic.h"
#include "qemu/bswap.h"
#include "qemu/units.h"
#include "vfio-user-hostile.h"

/* ---------------------------------------------------------------------- */
/* The hostile part of the server: a hook that misbehaves on demand */


static VUTestHookAction hostile_hook(VUTestServer *s, const VUTestMsg *msg,
                                     GByteArray *out, void *opaque)
{
    Hostile *h = opaque;
    VUTestHookAction act;

    if (!qatomic_load_acquire(&h->armed) || msg->hdr.command != h->cmd) {
        return VU_TEST_HOOK_CONTINUE;
    }
    if (h->index >= 0 &&
        (msg->payload_size < 12 || ldl_le_p(msg->payload + 8) != h->index)) {
        return VU_TEST_HOOK_CONTINUE;
    }
    if (h->skip > 0) {
        h->skip--;
        return VU_TEST_HOOK_CONTINUE;
    }
    if (h->once) {
        qatomic_set(&h->armed, 0);
    }
    qatomic_inc(&h->entered);
    act = h->fn(h, s, msg, out);
    qatomic_inc(&h->hits);
    return act;
}

static void hostile_init(Hostile *h)
{
    memset(h, 0, sizeof(*h));
    h->index = -1;
    h->size = -1;
    h->canned = g_byte_array_new();
    g_mutex_init(&h->lock);
    g_cond_init(&h->cond);
}

void hostile_arm(Hostile *h, uint16_t cmd, int64_t index,
                 HostileFn fn)
{
    h->cmd = cmd;
    h->index = index;
    h->fn = fn;
    qatomic_set(&h->entered, 0);
    qatomic_set(&h->hits, 0);
    qatomic_store_release(&h->armed, 1);
}

void hostile_disarm(Hostile *h)
{
    qatomic_set(&h->armed, 0);
}

/* End every sleep of the hook, now and later. */
void hostile_release(Hostile *h)
{
    g_mutex_lock(&h->lock);
    h->released = true;
    g_cond_broadcast(&h->cond);
    g_mutex_unlock(&h->lock);
}

/* Sleep in the hook for @ms, or until released. */
void hostile_sleep(Hostile *h, unsigned ms)
{
    gint64 end = g_get_monotonic_time() + ms * G_TIME_SPAN_MILLISECOND;

    g_mutex_lock(&h->lock);
    while (!h->released && g_cond_wait_until(&h->cond, &h->lock, end)) {
        /* woken: check again */
    }
    g_mutex_unlock(&h->lock);
}

bool hostile_wait_hits(Hostile *h, int n)
{
    for (int i = 0; i < WAIT_MS; i++) {
        if (qatomic_read(&h->hits) >= n) {
            return true;
        }
        g_usleep(1000);
    }
    return false;
}

/*
 * The hook counts a hit after it returns, but a hook that sends its reply
 * itself (one with fds) lets the client, and the test, go on first: wait
 * for the count before checking it.
 */
void assert_hits(Hostile *h, int n)
{
    hostile_wait_hits(h, n);
    g_assert_cmpint(qatomic_read(&h->hits), ==, n);
}

void put_hdr(GByteArray *out, uint16_t id, uint16_t cmd, uint32_t size,
             uint32_t flags, uint32_t err)
{
    VFIOUserHdr hdr = {
        .id = id, .command = cmd, .size = size, .flags = flags,
        .error_reply = err,
    };

    g_byte_array_append(out, (uint8_t *)&hdr, sizeof(hdr));
}

/* A well-formed reply to @msg carrying @len bytes of @p */
void put_reply(GByteArray *out, const VUTestMsg *msg, const void *p,
               size_t len)
{
    put_hdr(out, msg->hdr.id, msg->hdr.command, sizeof(VFIOUserHdr) + len,
            VFIO_USER_REPLY, 0);
    g_byte_array_append(out, p, len);
}

/* The reply to a REGION_READ of 4 bytes: @value */
void put_read_reply(GByteArray *out, const VUTestMsg *msg,
                    uint32_t value)
{
    uint8_t p[sizeof(VFIOUserRegionRW) + 4];

    memcpy(p, msg->payload, sizeof(VFIOUserRegionRW));
    stl_le_p(p + sizeof(VFIOUserRegionRW), value);
    put_reply(out, msg, p, sizeof(p));
}

/* Send @out with h->fds, now; the hook then has nothing more to send. */
void send_with_fds_from(Hostile *h, VUTestServer *s, GByteArray *out,
                        unsigned first)
{
    g_assert_cmpint(vu_test_server_send_raw(s, out->data, out->len,
                                            h->fds + first, h->nfds - first),
                    ==, 0);
    g_byte_array_set_size(out, 0);
}

void send_with_fds(Hostile *h, VUTestServer *s, GByteArray *out)
{
    send_with_fds_from(h, s, out, 0);
}

/* The canned reply, with whatever header fields the test chose */
VUTestHookAction fn_canned(Hostile *h, VUTestServer *s,
                           const VUTestMsg *msg, GByteArray *out)
{
    size_t len = sizeof(VFIOUserHdr) + h->canned->len;

    put_hdr(out, msg->hdr.id ^ h->id_xor,
            h->reply_cmd ? h->reply_cmd : msg->hdr.command,
            h->size >= 0 ? h->size : len, VFIO_USER_REPLY | h->flags,
            h->err);
    g_byte_array_append(out, h->canned->data, h->canned->len);
    if (h->cut) {
        g_byte_array_set_size(out, MIN(h->cut, out->len));
    }
    if (h->nfds || h->then_handle) {
        send_with_fds(h, s, out);
    }
    return h->then_handle ? VU_TEST_HOOK_CONTINUE : VU_TEST_HOOK_REPLACE;
}

VUTestHookAction fn_disconnect(Hostile *h, VUTestServer *s,
                               const VUTestMsg *msg, GByteArray *out)
{
    return VU_TEST_HOOK_DISCONNECT;
}

/* Answer late (or never, until released) */
VUTestHookAction fn_sleep(Hostile *h, VUTestServer *s,
                          const VUTestMsg *msg, GByteArray *out)
{
    hostile_sleep(h, h->delay_ms);
    return VU_TEST_HOOK_CONTINUE;
}

/* ---------------------------------------------------------------------- */
/* Fixture */


static bool ctx_event(QTestState *qts, const char *name, QDict *event,
                      void *opaque)
{
    TestCtx *c = opaque;
    QDict *data;

    if (strcmp(name, "VFIO_USER_SERVER_LOST")) {
        return false;
    }
    data = qdict_get_qdict(event, "data");
    g_assert_cmpstr(qdict_get_str(data, "device-id"), ==, "vu0");
    g_assert_cmpstr(qdict_get_str(data, "qom-path"), ==,
                    "/machine/peripheral/vu0");
    g_free(c->lost_reason);
    c->lost_reason = g_strdup(qdict_get_str(data, "reason"));
    c->lost++;
    return true;
}

void ctx_server(TestCtx *c, VUTestServerConfig *cfg, bool reaccept)
{
    VUTestServerConfig local;

    if (!cfg) {
        vu_test_server_config_init(&local);
        cfg = &local;
    }
    if (!c->timeout_ms) {
        c->timeout_ms = SAFE_TIMEOUT_MS;
    }
    hostile_init(&c->h);
    cfg->hook = hostile_hook;
    cfg->hook_opaque = &c->h;
    cfg->reaccept = reaccept;
    vu_fixture_server(&c->f, "vfio-user-hostile", cfg);
}

/* QEMU without the device, for device_add */
void ctx_qemu(TestCtx *c)
{
    c->f.qts = qtest_initf("-machine pc -m %d", RAM_MB);
    qtest_qmp_set_event_callback(c->f.qts, ctx_event, c);
}

/* Server and QEMU with the device at slot 4, a short message timeout */
void ctx_start(TestCtx *c, const char *dev_extra)
{
    g_autofree char *args = g_strdup_printf("-machine pc -m %d", RAM_MB);
    g_autofree char *props = NULL;

    ctx_server(c, NULL, false);     /* sets the default timeout_ms */
    props = g_strdup_printf(",x-msg-timeout=%u%s", c->timeout_ms,
                            dev_extra ? dev_extra : "");
    vu_fixture_qemu(&c->f, args, props);
    qtest_qmp_set_event_callback(c->f.qts, ctx_event, c);
    vu_fixture_find_device(&c->f, DEVFN);
}

void ctx_stop(TestCtx *c)
{
    hostile_disarm(&c->h);
    hostile_release(&c->h);
    vu_fixture_stop(&c->f);
    g_byte_array_unref(c->h.canned);
    g_mutex_clear(&c->h.lock);
    g_cond_clear(&c->h.cond);
    g_free(c->lost_reason);
    memset(c, 0, sizeof(*c));
}

static QDict *device_add(TestCtx *c, const char *id)
{
    return qtest_qmp(c->f.qts, "{'execute': 'device_add', 'arguments': {"
                     "'driver': 'vfio-user-pci', 'id': %s, 'addr': '4.0',"
                     "'x-msg-timeout': %d,"
                     "'socket': {'type': 'unix', 'path': %s}}}",
                     id, c->timeout_ms, c->f.sock);
}

void assert_alive(TestCtx *c)
{
    QDict *resp = qtest_qmp(c->f.qts, "{'execute': 'query-status'}");

    g_assert(qdict_haskey(resp, "return"));
    qobject_unref(resp);
}

/* The device answers, with the right values, and writes reach it. */
void assert_works(TestCtx *c)
{
    uint32_t v = g_random_int() | 1;

    g_assert_cmphex(vu_fixture_bar0_readl(&c->f, VU_TEST_REG_ID), ==,
                    VU_TEST_ID_MAGIC);
    vu_fixture_bar0_writel(&c->f, VU_TEST_REG_SCRATCH, v);
    g_assert_cmphex(vu_fixture_bar0_readl(&c->f, VU_TEST_REG_SCRATCH), ==, v);
    g_assert_cmphex(vu_test_server_reg_read(c->f.srv, VU_TEST_REG_SCRATCH), ==,
                    v);
    assert_alive(c);
    g_assert_cmpint(c->lost, ==, 0);
}

/*
 * The connection is gone for good: the guest reads all ones, its writes
 * go nowhere, QEMU lives on and does not reconnect.
 */
void wait_lost(TestCtx *c)
{
    for (int i = 0; i < WAIT_MS / 10 && !c->lost; i++) {
        assert_alive(c);
        g_usleep(10000);
    }
    g_assert_cmpint(c->lost, ==, 1);
    g_test_message("server lost: %s", c->lost_reason);
}

void assert_degraded(TestCtx *c)
{
    uint32_t before;
    VUTestServerStats st;

    g_assert(vu_test_server_wait_disconnected(c->f.srv, WAIT_MS));
    wait_lost(c);
    before = vu_test_server_reg_read(c->f.srv, VU_TEST_REG_SCRATCH);
    g_assert_cmphex(vu_fixture_bar0_readl(&c->f, VU_TEST_REG_ID), ==, ALL_ONES);
    vu_fixture_bar0_writel(&c->f, VU_TEST_REG_SCRATCH, ~before);
    g_assert_cmphex(vu_fixture_bar0_readl(&c->f, VU_TEST_REG_SCRATCH), ==,
                    ALL_ONES);
    g_assert_cmphex(vu_test_server_reg_read(c->f.srv, VU_TEST_REG_SCRATCH), ==,
                    before);
    assert_alive(c);
    vu_test_server_get_stats(c->f.srv, &st);
    g_assert_cmpuint(st.connections, ==, 1);
}

/* Guard patterns in guest RAM, around everything the server may reach */
static const uint64_t guards[] = {
    0x9f000,                    /* last page below 640 KiB */
    0x100000,                   /* first page above 1 MiB */
    GUEST_BUF - 0x1000,
    GUEST_BUF + 0x1000,
    RAM_END - 0x1000,           /* last page of RAM */
};

void guard_fill(TestCtx *c)
{
    uint8_t buf[0x1000];

    for (size_t i = 0; i < ARRAY_SIZE(guards); i++) {
        vu_fixture_fill_pattern(buf, sizeof(buf), 0x40 + i);
        qtest_memwrite(c->f.qts, guards[i], buf, sizeof(buf));
    }
}

void guard_check(TestCtx *c)
{
    uint8_t want[0x1000], got[0x1000];

    for (size_t i = 0; i < ARRAY_SIZE(guards); i++) {
        vu_fixture_fill_pattern(want, sizeof(want), 0x40 + i);
        qtest_memread(c->f.qts, guards[i], got, sizeof(got));
        g_assert_cmpmem(got, sizeof(got), want, sizeof(want));
    }
}

/* ---------------------------------------------------------------------- */
/* Realize: device_add fails cleanly, or the device works */

/*
 * device_add fails with an error naming the device and its socket (and
 * containing @expect); QEMU lives on, the connection is closed, and
 * nothing is left behind: a retry with a well-behaved server works.
 */
void check_realize_fails(TestCtx *c, const char *expect)
{
    QDict *resp = device_add(c, "vu0");
    const char *desc;

    if (!qdict_haskey(resp, "error")) {
        /* Not fatal: let the other cases run. */
        g_test_message("client bug: device_add succeeded");
        g_test_fail();
        qobject_unref(resp);
        assert_alive(c);
        return;
    }
    desc = qdict_get_str(qdict_get_qdict(resp, "error"), "desc");
    g_test_message("device_add: %s", desc);
    g_assert(strstr(desc, "vfio-user-pci 'vu0'"));
    g_assert(strstr(desc, c->f.sock));
    if (expect) {
        g_assert(strstr(desc, expect));
    }
    qobject_unref(resp);
    assert_alive(c);
    hostile_disarm(&c->h);
    hostile_release(&c->h);
    g_assert(vu_test_server_wait_disconnected(c->f.srv, WAIT_MS));

    resp = device_add(c, "vu1");
    g_assert(qdict_haskey(resp, "return"));
    qobject_unref(resp);
    vu_fixture_find_device(&c->f, DEVFN);
    assert_works(c);
}

void check_realize_works(TestCtx *c)
{
    QDict *resp = device_add(c, "vu0");

    if (qdict_haskey(resp, "error")) {
        g_test_message("device_add: %s", qdict_get_str(
                           qdict_get_qdict(resp, "error"), "desc"));
    }
    g_assert(qdict_haskey(resp, "return"));
    qobject_unref(resp);
    /* The misbehaviour did happen. */
    g_assert(hostile_wait_hits(&c->h, 1));
    vu_fixture_find_device(&c->f, DEVFN);
    assert_works(c);
}
void add_data_tests(const char *prefix, const void *cases,
                    size_t n, size_t size, GTestDataFunc fn)
{
    for (size_t i = 0; i < n; i++) {
        const void *tc = (const uint8_t *)cases + i * size;
        g_autofree char *path =
            g_strdup_printf("%s/%s", prefix, *(const char *const *)tc);

        qtest_add_data_func(path, tc, fn);
    }
}

void arm_read(TestCtx *c, HostileFn fn)
{
    c->h.once = true;
    hostile_arm(&c->h, VFIO_USER_REGION_READ, VFIO_PCI_BAR0_REGION_INDEX, fn);
}

void check_dma_works(TestCtx *c)
{
    vu_fixture_server_dma_round_trip(&c->f, GUEST_BUF, GUEST_BUF, 256,
                                     g_random_int(), g_random_int());
}

void dma_start(TestCtx *c)
{
    ctx_start(c, NULL);
    guard_fill(c);
    check_dma_works(c);
}

/*
 * After an unplug with the hook stalled: let the hook go; the connection
 * is closed, QEMU lives, and the device is gone (its id can be used
 * again).
 */
void assert_unplugged(TestCtx *c)
{
    QDict *resp;

    hostile_release(&c->h);
    g_assert(vu_test_server_wait_disconnected(c->f.srv, WAIT_MS));
    assert_alive(c);
    resp = qtest_qmp(c->f.qts, "{'execute': 'qom-get', 'arguments': "
                     "{'path': '/machine/peripheral/vu0', "
                     "'property': 'type'}}");
    g_assert(qdict_haskey(resp, "error"));
    qobject_unref(resp);
}
