/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qtests for vfio-user-pci against a hostile server: malformed, oversized,
 * out-of-order, late and missing messages, bad fds, absurd device
 * descriptions, DMA requests outside what the client mapped, floods,
 * stalls and disconnects, at every phase of the device's life.
 *
 * The server is the test server of vfio-user-server.c; its hook lets a
 * test replace the reply to any request with arbitrary bytes, and
 * vu_test_server_send_raw() lets it send anything at any time.
 *
 * Every case checks that QEMU lives on (QMP answers) and that the outcome
 * is a clear one: at realize, device_add fails with an error naming the
 * device and its socket, and a well-behaved retry then works; at run
 * time, either the device degrades (BAR reads return all ones, writes are
 * dropped) or, where the misbehaviour is recoverable, it keeps working;
 * and guard patterns in guest RAM show that the server reached nothing it
 * was not given.
 */

#include "qemu/osdep.h"
#include <sys/eventfd.h>
#include "libqtest.h"
#include "libqos/pci.h"
#include "libqos/pci-pc.h"
#include "qobject/qdict.h"
#include "qemu/atomic.h"
#include "qemu/bswap.h"
#include "qemu/memfd.h"
#include "qemu/units.h"
#include "hw/pci/pci_regs.h"
#include "vfio-user-server.h"
#include "vfio-user-fixture.h"

#define SLOT            4
#define DEVFN           QPCI_DEVFN(SLOT, 0)
#define RAM_MB          256
#define RAM_END         ((uint64_t)RAM_MB * 1024 * 1024)
/*
 * x-msg-timeout: short where a test waits for it to pass, long elsewhere,
 * so that a loaded machine does not time out a well-behaved exchange
 */
#define FAST_TIMEOUT_MS 1000
#define SAFE_TIMEOUT_MS 5000
#define WAIT_MS         5000
#define GUEST_BUF       0x200000    /* guest RAM the server may DMA to */
#define ALL_ONES        0xffffffffu

/* ---------------------------------------------------------------------- */
/* The hostile part of the server: a hook that misbehaves on demand */

typedef struct Hostile Hostile;
typedef VUTestHookAction (*HostileFn)(Hostile *h, VUTestServer *s,
                                      const VUTestMsg *msg, GByteArray *out);

struct Hostile {
    /* Set before arming, read by the server thread */
    uint16_t cmd;               /* command to misbehave on */
    int64_t index;              /* region/irq index (offset 8), -1: any */
    int skip;                   /* matching requests let through first */
    bool once;                  /* disarm after the first hit */
    HostileFn fn;

    /* Parameters of the canned reply (fn_canned) */
    GByteArray *canned;         /* payload */
    uint16_t id_xor;            /* id of the reply: request's ^ this */
    uint16_t reply_cmd;         /* 0: the request's command */
    uint32_t flags;             /* added to VFIO_USER_REPLY */
    uint32_t err;               /* error_reply field */
    int64_t size;               /* size field, -1: the right one */
    size_t cut;                 /* send only this many bytes, 0: all */
    const int *fds;             /* fds to attach */
    unsigned nfds;
    unsigned delay_ms;          /* for the fns that sleep */
    uint32_t value;             /* for the fns that answer reads */
    /*
     * fn_canned: send the canned reply first, then let the server handle
     * the request (its own reply comes second, a duplicate the client
     * must drop), so that the server's state follows
     */
    bool then_handle;

    int armed;                  /* atomic */
    int entered;                /* atomic: hook started misbehaving */
    int hits;                   /* atomic: hook done misbehaving */

    GMutex lock;
    GCond cond;
    bool released;              /* ends every sleep of the hook */
};

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

static void hostile_arm(Hostile *h, uint16_t cmd, int64_t index,
                        HostileFn fn)
{
    h->cmd = cmd;
    h->index = index;
    h->fn = fn;
    qatomic_set(&h->entered, 0);
    qatomic_set(&h->hits, 0);
    qatomic_store_release(&h->armed, 1);
}

static void hostile_disarm(Hostile *h)
{
    qatomic_set(&h->armed, 0);
}

/* End every sleep of the hook, now and later. */
static void hostile_release(Hostile *h)
{
    g_mutex_lock(&h->lock);
    h->released = true;
    g_cond_broadcast(&h->cond);
    g_mutex_unlock(&h->lock);
}

/* Sleep in the hook for @ms, or until released. */
static void hostile_sleep(Hostile *h, unsigned ms)
{
    gint64 end = g_get_monotonic_time() + ms * G_TIME_SPAN_MILLISECOND;

    g_mutex_lock(&h->lock);
    while (!h->released && g_cond_wait_until(&h->cond, &h->lock, end)) {
        /* woken: check again */
    }
    g_mutex_unlock(&h->lock);
}

static bool hostile_wait_hits(Hostile *h, int n)
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
static void assert_hits(Hostile *h, int n)
{
    hostile_wait_hits(h, n);
    g_assert_cmpint(qatomic_read(&h->hits), ==, n);
}

static void put_hdr(GByteArray *out, uint16_t id, uint16_t cmd, uint32_t size,
                    uint32_t flags, uint32_t err)
{
    VFIOUserHdr hdr = {
        .id = id, .command = cmd, .size = size, .flags = flags,
        .error_reply = err,
    };

    g_byte_array_append(out, (uint8_t *)&hdr, sizeof(hdr));
}

/* A well-formed reply to @msg carrying @len bytes of @p */
static void put_reply(GByteArray *out, const VUTestMsg *msg, const void *p,
                      size_t len)
{
    put_hdr(out, msg->hdr.id, msg->hdr.command, sizeof(VFIOUserHdr) + len,
            VFIO_USER_REPLY, 0);
    g_byte_array_append(out, p, len);
}

/* The reply to a REGION_READ of 4 bytes: @value */
static void put_read_reply(GByteArray *out, const VUTestMsg *msg,
                           uint32_t value)
{
    uint8_t p[sizeof(VFIOUserRegionRW) + 4];

    memcpy(p, msg->payload, sizeof(VFIOUserRegionRW));
    stl_le_p(p + sizeof(VFIOUserRegionRW), value);
    put_reply(out, msg, p, sizeof(p));
}

/* Send @out with h->fds, now; the hook then has nothing more to send. */
static void send_with_fds_from(Hostile *h, VUTestServer *s, GByteArray *out,
                               unsigned first)
{
    g_assert_cmpint(vu_test_server_send_raw(s, out->data, out->len,
                                            h->fds + first, h->nfds - first),
                    ==, 0);
    g_byte_array_set_size(out, 0);
}

static void send_with_fds(Hostile *h, VUTestServer *s, GByteArray *out)
{
    send_with_fds_from(h, s, out, 0);
}

/* The canned reply, with whatever header fields the test chose */
static VUTestHookAction fn_canned(Hostile *h, VUTestServer *s,
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

static VUTestHookAction fn_disconnect(Hostile *h, VUTestServer *s,
                                      const VUTestMsg *msg, GByteArray *out)
{
    return VU_TEST_HOOK_DISCONNECT;
}

/* Answer late (or never, until released) */
static VUTestHookAction fn_sleep(Hostile *h, VUTestServer *s,
                                 const VUTestMsg *msg, GByteArray *out)
{
    hostile_sleep(h, h->delay_ms);
    return VU_TEST_HOOK_CONTINUE;
}

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

/* ---------------------------------------------------------------------- */
/* Fixture */

typedef struct TestCtx {
    VUFixture f;
    Hostile h;
    unsigned timeout_ms;        /* x-msg-timeout, 0: SAFE_TIMEOUT_MS */
    int lost;                   /* VFIO_USER_SERVER_LOST events seen */
    char *lost_reason;
} TestCtx;

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

static void ctx_server(TestCtx *c, VUTestServerConfig *cfg, bool reaccept)
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
static void ctx_qemu(TestCtx *c)
{
    c->f.qts = qtest_initf("-machine pc -m %d", RAM_MB);
    qtest_qmp_set_event_callback(c->f.qts, ctx_event, c);
}

/* Server and QEMU with the device at slot 4, a short message timeout */
static void ctx_start(TestCtx *c, const char *dev_extra)
{
    ctx_server(c, NULL, false);
    c->f.qts = qtest_initf("-machine pc -m %d "
                           "-device vfio-user-pci,id=vu0,addr=%d.0,"
                           "socket.type=unix,socket.path=%s,"
                           "x-msg-timeout=%u%s",
                           RAM_MB, SLOT, c->f.sock, c->timeout_ms,
                           dev_extra ? dev_extra : "");
    qtest_qmp_set_event_callback(c->f.qts, ctx_event, c);
    vu_fixture_find_device(&c->f, DEVFN);
}


static void ctx_stop(TestCtx *c)
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

static void assert_alive(TestCtx *c)
{
    QDict *resp = qtest_qmp(c->f.qts, "{'execute': 'query-status'}");

    g_assert(qdict_haskey(resp, "return"));
    qobject_unref(resp);
}

/* The device answers, with the right values, and writes reach it. */
static void assert_works(TestCtx *c)
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
static void wait_lost(TestCtx *c)
{
    for (int i = 0; i < WAIT_MS / 10 && !c->lost; i++) {
        assert_alive(c);
        g_usleep(10000);
    }
    g_assert_cmpint(c->lost, ==, 1);
    g_test_message("server lost: %s", c->lost_reason);
}

static void assert_degraded(TestCtx *c)
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

static void fill_pattern(uint8_t *buf, size_t len, uint8_t seed)
{
    for (size_t i = 0; i < len; i++) {
        buf[i] = (uint8_t)(i * 7 + seed + (i >> 8));
    }
}

static void guard_fill(TestCtx *c)
{
    uint8_t buf[0x1000];

    for (size_t i = 0; i < ARRAY_SIZE(guards); i++) {
        fill_pattern(buf, sizeof(buf), 0x40 + i);
        qtest_memwrite(c->f.qts, guards[i], buf, sizeof(buf));
    }
}

static void guard_check(TestCtx *c)
{
    uint8_t want[0x1000], got[0x1000];

    for (size_t i = 0; i < ARRAY_SIZE(guards); i++) {
        fill_pattern(want, sizeof(want), 0x40 + i);
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
static void check_realize_fails(TestCtx *c, const char *expect)
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

static void check_realize_works(TestCtx *c)
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

typedef struct VersionCase {
    const char *name;
    uint16_t major;
    uint16_t minor;
    const char *json;           /* NULL: none */
    size_t json_len;            /* 0: strlen + 1 */
    const char *expect;         /* NULL: realize works */
} VersionCase;

static void test_version(const void *data)
{
    const VersionCase *vc = data;
    VFIOUserVersion v = { .major = vc->major, .minor = vc->minor };
    TestCtx c = { 0 };

    ctx_server(&c, NULL, true);
    ctx_qemu(&c);
    g_byte_array_append(c.h.canned, (uint8_t *)&v, sizeof(v));
    if (vc->json) {
        g_byte_array_append(c.h.canned, (uint8_t *)vc->json,
                            vc->json_len ? vc->json_len
                                         : strlen(vc->json) + 1);
    }
    c.h.then_handle = !vc->expect;
    hostile_arm(&c.h, VFIO_USER_VERSION, -1, fn_canned);
    if (vc->expect) {
        check_realize_fails(&c, vc->expect);
    } else {
        check_realize_works(&c);
    }
    ctx_stop(&c);
}

#define CAPS(x) "{\"capabilities\":{" x "}}"

static const VersionCase version_cases[] = {
    { "no-json", 0, 1, NULL, 0, NULL },
    { "older-minor", 0, 0, CAPS("\"max_msg_fds\":4"), 0, NULL },
    { "wrong-major", 1, 1, CAPS(""), 0, "server answered version 1.1" },
    { "newer-minor", 0, 2, CAPS(""), 0, "server answered version 0.2" },
    { "malformed-json", 0, 1, "{\"capabilities\":{\"max_msg_fds\":", 0,
      "bad VERSION reply" },
    { "json-not-object", 0, 1, "[1, 2, 3]", 0, "not a JSON object" },
    { "caps-not-object", 0, 1, "{\"capabilities\":7}", 0,
      "'capabilities' is not a JSON object" },
    { "json-not-terminated", 0, 1, CAPS(""), sizeof(CAPS("")) - 1,
      "not NUL-terminated" },
    { "max-msg-fds-0", 0, 1, CAPS("\"max_msg_fds\":0"), 0, "max_msg_fds" },
    { "max-msg-fds-negative", 0, 1, CAPS("\"max_msg_fds\":-1"), 0,
      "max_msg_fds" },
    { "max-msg-fds-string", 0, 1, CAPS("\"max_msg_fds\":\"8\""), 0,
      "max_msg_fds" },
    { "max-xfer-huge", 0, 1,
      CAPS("\"max_data_xfer_size\":1099511627776"), 0,
      "max_data_xfer_size" },
    { "max-xfer-0", 0, 1, CAPS("\"max_data_xfer_size\":0"), 0,
      "max_data_xfer_size" },
    { "pgsizes-without-4k", 0, 1, CAPS("\"pgsizes\":2097152"), 0,
      "pgsizes" },
    { "max-dma-maps-0", 0, 1, CAPS("\"max_dma_maps\":0"), 0,
      "max_dma_maps" },
    { "unknown-caps", 0, 1,
      CAPS("\"future\":{\"a\":[1,2,{\"b\":null}]},\"max_msg_fds\":2"), 0,
      NULL },
};

/* Huge JSON: more than the client takes, and deeply nested in less */
static void test_version_huge_json(void)
{
    VFIOUserVersion v = { .major = 0, .minor = 1 };
    g_autofree char *big = g_strnfill(256 * 1024, ' ');
    TestCtx c = { 0 };

    ctx_server(&c, NULL, true);
    ctx_qemu(&c);
    g_byte_array_append(c.h.canned, (uint8_t *)&v, sizeof(v));
    big[0] = '{';
    big[256 * 1024 - 2] = '}';
    g_byte_array_append(c.h.canned, (uint8_t *)big, 256 * 1024);
    hostile_arm(&c.h, VFIO_USER_VERSION, -1, fn_canned);
    check_realize_fails(&c, "VERSION reply of 262148 bytes");
    ctx_stop(&c);
}

static void test_version_deep_json(void)
{
    VFIOUserVersion v = { .major = 0, .minor = 1 };
    GString *json = g_string_new("{\"capabilities\":");
    TestCtx c = { 0 };

    for (int i = 0; i < 1500; i++) {
        g_string_append_c(json, '[');
    }
    ctx_server(&c, NULL, true);
    ctx_qemu(&c);
    g_byte_array_append(c.h.canned, (uint8_t *)&v, sizeof(v));
    g_byte_array_append(c.h.canned, (uint8_t *)json->str, json->len + 1);
    g_string_free(json, true);
    hostile_arm(&c.h, VFIO_USER_VERSION, -1, fn_canned);
    check_realize_fails(&c, "bad VERSION reply");
    ctx_stop(&c);
}

/* Framing errors on the VERSION reply */
typedef struct FrameCase {
    const char *name;
    uint16_t cmd;
    int64_t size;               /* -1: right */
    size_t cut;
    uint16_t id_xor;
    uint32_t flags;
    uint32_t err;
    const char *expect;
} FrameCase;

static void test_frame_realize(const void *data)
{
    const FrameCase *fc = data;
    VFIOUserVersion v = { .major = 0, .minor = 1 };
    TestCtx c = { .timeout_ms = FAST_TIMEOUT_MS };

    ctx_server(&c, NULL, true);
    ctx_qemu(&c);
    g_byte_array_append(c.h.canned, (uint8_t *)&v, sizeof(v));
    g_byte_array_append(c.h.canned, (uint8_t *)CAPS(""), sizeof(CAPS("")));
    c.h.size = fc->size;
    c.h.cut = fc->cut;
    c.h.id_xor = fc->id_xor;
    c.h.flags = fc->flags;
    c.h.err = fc->err;
    hostile_arm(&c.h, fc->cmd, -1, fn_canned);
    check_realize_fails(&c, fc->expect);
    ctx_stop(&c);
}

static const FrameCase frame_cases[] = {
    { "version/truncated-header", VFIO_USER_VERSION, -1, 8, 0, 0, 0,
      "Connection timed out" },
    { "version/truncated-payload", VFIO_USER_VERSION, -1, 20, 0, 0, 0,
      "version negotiation failed" },
    { "version/size-below-header", VFIO_USER_VERSION, 8, 0, 0, 0, 0,
      "version negotiation failed" },
    { "version/size-huge", VFIO_USER_VERSION, 0xfffffff0, 0, 0, 0, 0,
      "version negotiation failed" },
    { "version/wrong-id", VFIO_USER_VERSION, -1, 0, 0x5a5a, 0, 0,
      "Connection timed out" },
    { "version/error-errno-0", VFIO_USER_VERSION, -1, 0, 0, VFIO_USER_ERROR,
      0, "version negotiation failed" },
    { "version/error-errno-negative", VFIO_USER_VERSION, -1, 0, 0,
      VFIO_USER_ERROR, (uint32_t)-EPERM, "version negotiation failed" },
    { "version/error-errno-huge", VFIO_USER_VERSION, -1, 0, 0,
      VFIO_USER_ERROR, 0x7fffffff, "version negotiation failed" },
    { "version/not-a-reply", VFIO_USER_VERSION, -1, 0, 0, 0xe, 0,
      "Connection timed out" },
};

static void test_version_disconnect(void)
{
    TestCtx c = { 0 };

    ctx_server(&c, NULL, true);
    ctx_qemu(&c);
    hostile_arm(&c.h, VFIO_USER_VERSION, -1, fn_disconnect);
    check_realize_fails(&c, "version negotiation failed");
    ctx_stop(&c);
}

/* fds nobody asked for, as many as a message can carry */
static void test_version_fds(void)
{
    VFIOUserVersion v = { .major = 0, .minor = 1 };
    int fds[VFIO_USER_MAX_MAX_FDS];
    TestCtx c = { 0 };
    unsigned before;

    for (size_t i = 0; i < ARRAY_SIZE(fds); i++) {
        fds[i] = eventfd(0, EFD_CLOEXEC);
        g_assert_cmpint(fds[i], >=, 0);
    }
    ctx_server(&c, NULL, true);
    ctx_qemu(&c);
    before = vu_fixture_qemu_fds(&c.f);
    g_byte_array_append(c.h.canned, (uint8_t *)&v, sizeof(v));
    g_byte_array_append(c.h.canned, (uint8_t *)CAPS(""), sizeof(CAPS("")));
    c.h.fds = fds;
    c.h.nfds = ARRAY_SIZE(fds);
    c.h.then_handle = true;
    hostile_arm(&c.h, VFIO_USER_VERSION, -1, fn_canned);
    check_realize_works(&c);
    /* The device holds a few fds of its own, not hundreds of ours. */
    g_assert_cmpuint(vu_fixture_qemu_fds(&c.f), <, before + 32);
    ctx_stop(&c);
    for (size_t i = 0; i < ARRAY_SIZE(fds); i++) {
        close(fds[i]);
    }
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
        len = sizeof(r.info) + sizeof(r.sparse);
        break;
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

/* ---------------------------------------------------------------------- */
/* Run time: bad replies to the guest's BAR accesses */

static void arm_read(TestCtx *c, HostileFn fn)
{
    c->h.once = true;
    hostile_arm(&c->h, VFIO_USER_REGION_READ, VFIO_PCI_BAR0_REGION_INDEX, fn);
}

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

/*
 * After an unplug with the hook stalled: let the hook go; the connection
 * is closed, QEMU lives, and the device is gone (its id can be used
 * again).
 */
static void assert_unplugged(TestCtx *c)
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
    fill_pattern(want, sizeof(want), 9);
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

static void check_dma_works(TestCtx *c)
{
    uint8_t out[256], in[256];
    VUTestDMARequest req = {
        .write = true, .address = GUEST_BUF, .count = sizeof(out),
        .data = out, .data_len = sizeof(out),
    };

    fill_pattern(out, sizeof(out), g_random_int());
    g_assert_cmpint(vu_test_server_dma(c->f.srv, &req, NULL), ==, 0);
    qtest_memread(c->f.qts, GUEST_BUF, in, sizeof(in));
    g_assert_cmpmem(in, sizeof(in), out, sizeof(out));
    fill_pattern(out, sizeof(out), g_random_int());
    qtest_memwrite(c->f.qts, GUEST_BUF, out, sizeof(out));
    g_assert_cmpint(vu_test_server_dma_read(c->f.srv, GUEST_BUF, in,
                                            sizeof(in)), ==, 0);
    g_assert_cmpmem(in, sizeof(in), out, sizeof(out));
}

static void dma_start(TestCtx *c)
{
    ctx_start(c, NULL);
    guard_fill(c);
    check_dma_works(c);
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

/* ---------------------------------------------------------------------- */

static void add_data_tests(const char *prefix, const void *cases,
                           size_t n, size_t size, GTestDataFunc fn)
{
    for (size_t i = 0; i < n; i++) {
        const void *tc = (const uint8_t *)cases + i * size;
        g_autofree char *path =
            g_strdup_printf("%s/%s", prefix, *(const char *const *)tc);

        qtest_add_data_func(path, tc, fn);
    }
}

#define ADD_CASES(prefix, cases, fn) \
    add_data_tests(prefix, cases, ARRAY_SIZE(cases), sizeof(cases[0]), fn)

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    /* Negotiation */
    ADD_CASES("/vfio-user-hostile/version", version_cases, test_version);
    qtest_add_func("/vfio-user-hostile/version/huge-json",
                   test_version_huge_json);
    qtest_add_func("/vfio-user-hostile/version/deep-json",
                   test_version_deep_json);
    qtest_add_func("/vfio-user-hostile/version/disconnect",
                   test_version_disconnect);
    qtest_add_func("/vfio-user-hostile/version/fds", test_version_fds);
    ADD_CASES("/vfio-user-hostile", frame_cases, test_frame_realize);

    /* Realize */
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

    /* Run time */
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
    qtest_add_func("/vfio-user-hostile/realize/region-fd-split-header",
                   test_region_fd_split_header);
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

    /* Reset and unplug */
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

    /* DMA */
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

    qtest_add_func("/vfio-user-hostile/deadline/reply-trickles",
                   test_deadline_reply_trickles);
    qtest_add_func("/vfio-user-hostile/deadline/dma-write-trickles",
                   test_deadline_dma_write_trickles);
    qtest_add_func("/vfio-user-hostile/deadline/dma-read-slow-reader",
                   test_deadline_dma_read_slow_reader);
    qtest_add_func("/vfio-user-hostile/deadline/unplug-stalled-handler",
                   test_deadline_unplug_stalled_handler);
    return g_test_run();
}
