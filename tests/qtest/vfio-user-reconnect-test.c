/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qtests for vfio-user-pci's reconnect-ms: the server process dies and a
 * new one listens on the same socket; the device finds it, checks that
 * it serves the same device, tells it everything the old one knew, and
 * works again, while QEMU stays responsive throughout.
 *
 * A "restart" here frees the test server (closing the connection, as a
 * killed process would) and starts a new one, with fresh device state,
 * on the same path.
 */

#include "qemu/osdep.h"
#include <sys/socket.h>
#include <sys/un.h>
#include "libqtest.h"
#include "libqos/pci.h"
#include "libqos/pci-pc.h"
#include "qobject/qdict.h"
#include "qemu/atomic.h"
#include "hw/pci/pci_regs.h"
#include "vfio-user-server.h"
#include "vfio-user-fixture.h"

#define RAM_MB          256
#define GUEST_SRC       0x200000
#define GUEST_DST       0x300000
#define GUEST_MSI       0x400000
#define WAIT_MS         5000
#define INTX_IRQ        10

typedef struct TestCtx {
    VUFixture f;
    char *trace;                /* the QEMU's trace file */
} TestCtx;

/*
 * Start a server and QEMU whose device reconnects every @reconnect_ms,
 * tracing the reconnect and restore events into c->trace.
 */
static void ctx_start(TestCtx *c, const VUTestServerConfig *cfg,
                      bool memfd_ram, const char *dev_extra,
                      unsigned reconnect_ms)
{
    g_autofree char *args = NULL;
    g_autofree char *dev = NULL;
    int fd = g_file_open_tmp("vfio-user-reconnect-XXXXXX.trace", &c->trace,
                             NULL);

    g_assert(fd >= 0);
    close(fd);
    args = g_strdup_printf("-machine pc -m %d %s "
                           "-trace enable=vfio_user_reconnect*,file=%s "
                           "-trace enable=vfio_user_restore*,file=%s "
                           "-trace enable=vfio_user_pci_link*,file=%s",
                           RAM_MB,
                           memfd_ram ? VU_FIXTURE_MEMFD_RAM : "", c->trace,
                           c->trace, c->trace);
    dev = g_strdup_printf(",reconnect-ms=%u%s", reconnect_ms,
                          dev_extra ? dev_extra : "");
    vu_fixture_server(&c->f, "vfio-user-reconnect", cfg);
    vu_fixture_start(&c->f, args, dev);
}

static void ctx_stop(TestCtx *c)
{
    vu_fixture_stop(&c->f);
    unlink(c->trace);
    g_free(c->trace);
}

/* The server process dies: its connection closes, its socket goes */
static void kill_server(TestCtx *c)
{
    vu_test_server_free(c->f.srv);
    c->f.srv = NULL;
}

/* A new server process on the same socket, with fresh device state */
static void start_server(TestCtx *c, const VUTestServerConfig *cfg)
{
    c->f.srv = vu_test_server_new(c->f.sock, cfg);
    g_assert(c->f.srv);
}

static void wait_event(TestCtx *c, const char *event)
{
    QDict *ev = qtest_qmp_eventwait_ref(c->f.qts, event);
    QDict *data = qdict_get_qdict(ev, "data");

    g_assert_cmpstr(qdict_get_str(data, "device-id"), ==, "vu0");
    g_assert_cmpstr(qdict_get_str(data, "qom-path"), ==,
                    "/machine/peripheral/vu0");
    qobject_unref(ev);
}

/* The server dies, and the device says so */
static void server_dies(TestCtx *c)
{
    kill_server(c);
    wait_event(c, "VFIO_USER_SERVER_LOST");
}

static bool connected(TestCtx *c)
{
    QDict *resp = qtest_qmp(c->f.qts, "{'execute': 'qom-get', 'arguments': "
                            "{'path': 'vu0', 'property': 'connected'}}");
    bool ret = qdict_get_bool(resp, "return");

    qobject_unref(resp);
    return ret;
}

/* How many lines of the trace file hold @needle */
static unsigned trace_lines(TestCtx *c, const char *needle)
{
    g_autofree char *txt = NULL;
    g_auto(GStrv) lines = NULL;
    unsigned n = 0;

    if (!g_file_get_contents(c->trace, &txt, NULL, NULL)) {
        return 0;
    }
    lines = g_strsplit(txt, "\n", -1);
    for (int i = 0; lines[i]; i++) {
        n += strstr(lines[i], needle) != NULL;
    }
    return n;
}

static bool wait_trace(TestCtx *c, const char *needle)
{
    for (int i = 0; i < WAIT_MS / 10; i++) {
        if (trace_lines(c, needle)) {
            return true;
        }
        g_usleep(10 * 1000);
    }
    return false;
}

static void query_status_ok(TestCtx *c)
{
    QDict *resp = qtest_qmp(c->f.qts, "{'execute': 'query-status'}");

    g_assert(qdict_haskey(resp, "return"));
    qobject_unref(resp);
}

/*
 * For @ms, every 20 ms, ask QMP for the status and, if @bar_read, read
 * BAR0 of the failed device (all ones): how many took longer than
 * SLOW_ANSWER_MS.  A main loop blocked for a second at each attempt
 * gives several; one alone is the host's scheduling (a loaded 2-core
 * machine deschedules QEMU for that long at times, whatever it does).
 */
#define SLOW_ANSWER_MS  250

static unsigned slow_answers(TestCtx *c, unsigned ms, bool bar_read)
{
    gint64 start = g_get_monotonic_time(), max_us = 0;
    unsigned slow = 0;

    while (g_get_monotonic_time() - start < ms * 1000) {
        gint64 t = g_get_monotonic_time();

        query_status_ok(c);
        if (bar_read) {
            g_assert_cmphex(vu_fixture_bar0_readl(&c->f, VU_TEST_REG_ID),
                            ==, 0xffffffff);
        }
        t = g_get_monotonic_time() - t;
        max_us = MAX(max_us, t);
        slow += t > SLOW_ANSWER_MS * 1000;
        g_usleep(20 * 1000);
    }
    g_test_message("%u of the answers took over %u ms; the slowest %"
                   PRId64 " us", slow, SLOW_ANSWER_MS, max_us);
    return slow;
}

/* MSI-X vector 1 writes 0x5a5a to GUEST_MSI */
static void setup_msix(TestCtx *c)
{
    uint64_t entry = c->f.dev->msix_table_off + 1 * PCI_MSIX_ENTRY_SIZE;

    qpci_msix_enable(c->f.dev);
    qpci_io_writel(c->f.dev, c->f.dev->msix_table_bar,
                   entry + PCI_MSIX_ENTRY_LOWER_ADDR, GUEST_MSI);
    qpci_io_writel(c->f.dev, c->f.dev->msix_table_bar,
                   entry + PCI_MSIX_ENTRY_UPPER_ADDR, 0);
    qpci_io_writel(c->f.dev, c->f.dev->msix_table_bar,
                   entry + PCI_MSIX_ENTRY_DATA, 0x5a5a);
    qpci_io_writel(c->f.dev, c->f.dev->msix_table_bar,
                   entry + PCI_MSIX_ENTRY_VECTOR_CTRL, 0);
}

static void check_msix(TestCtx *c)
{
    qtest_writel(c->f.qts, GUEST_MSI, 0);
    vu_fixture_bar0_writel(&c->f, VU_TEST_REG_IRQ_RAISE, 1);
    g_assert(vu_fixture_wait_guest_u32(c->f.qts, GUEST_MSI, 0x5a5a));
}

/* SET_IRQS the server got for @index with eventfds, and their fds */
static unsigned irq_fds_sent(VUTestServer *s, uint32_t index)
{
    g_autoptr(GArray) sets = vu_test_server_set_irqs(s);
    unsigned nfds = 0;

    for (guint i = 0; i < sets->len; i++) {
        VUTestSetIrqsRecord *r = &g_array_index(sets, VUTestSetIrqsRecord, i);

        if (r->index == index && (r->flags & VFIO_IRQ_SET_DATA_EVENTFD) &&
            (r->flags & VFIO_IRQ_SET_ACTION_TRIGGER)) {
            g_assert_cmpint(r->err, ==, 0);
            nfds += r->nfds;
        }
    }
    return nfds;
}

/*
 * Kill and restart the server under a device that uses everything: BAR0
 * by message, BAR1 mmapped, DMA, MSI-X.  On the new connection each of
 * them works again, against the new server (its fresh state shows), with
 * as many DMA mappings as before and the same eventfds, and, under
 * secure-dma, still without a single fd for guest memory.
 */
static void check_restore(bool secure)
{
    const size_t len = 2 * 4096 + 64;
    TestCtx c = { 0 };
    QPCIBar bar1;
    VUTestServerStats st;
    unsigned maps_before, msix_fds_before;
    uint32_t v;

    ctx_start(&c, NULL, true, secure ? ",secure-dma=on" : NULL, 20);
    bar1 = qpci_iomap(c.f.dev, 1, NULL);
    setup_msix(&c);
    check_msix(&c);
    vu_fixture_bar0_writel(&c.f, VU_TEST_REG_SCRATCH, 0x1234);
    maps_before = vu_test_server_num_mappings(c.f.srv);
    msix_fds_before = irq_fds_sent(c.f.srv, VFIO_PCI_MSIX_IRQ_INDEX);
    g_assert_cmpuint(maps_before, >, 0);
    g_assert_cmpuint(msix_fds_before, >, 0);
    g_assert(connected(&c));

    server_dies(&c);
    g_assert(!connected(&c));
    g_assert_cmphex(vu_fixture_bar0_readl(&c.f, VU_TEST_REG_ID), ==,
                    0xffffffff);
    start_server(&c, NULL);
    wait_event(&c, "VFIO_USER_SERVER_RECONNECTED");
    g_assert(connected(&c));

    /* BAR0 by message, against a server that never saw the old write */
    g_assert_cmphex(vu_fixture_bar0_readl(&c.f, VU_TEST_REG_ID), ==,
                    VU_TEST_ID_MAGIC);
    g_assert_cmphex(vu_fixture_bar0_readl(&c.f, VU_TEST_REG_SCRATCH), ==, 0);

    /* BAR1's sparse area is mapped from the new server's memory */
    qpci_io_writel(c.f.dev, bar1, 0x100, 0xfeedbeef);
    vu_test_server_bar1_read(c.f.srv, 0x100, &v, sizeof(v));
    g_assert_cmphex(v, ==, 0xfeedbeef);
    g_assert(!vu_fixture_region_written(&c.f, VFIO_PCI_BAR1_REGION_INDEX,
                                        0x100));
    g_assert_cmpuint(trace_lines(&c, "mapped again: 1"), ==, 1);

    /* The same mappings, with or without fds as the first time */
    g_assert_cmpuint(vu_test_server_num_mappings(c.f.srv), ==, maps_before);
    if (secure) {
        g_assert_cmpuint(vu_test_server_cmd_fds(c.f.srv, VFIO_USER_DMA_MAP),
                         ==, 0);
    } else {
        g_assert_cmpuint(vu_test_server_cmd_fds(c.f.srv, VFIO_USER_DMA_MAP),
                         >, 0);
    }
    vu_fixture_engine_dma(&c.f, false, GUEST_SRC, 0, len, 3);
    vu_fixture_engine_dma(&c.f, true, GUEST_DST, 0x20, len, 9);
    vu_test_server_get_stats(c.f.srv, &st);
    if (secure) {
        g_assert_cmpuint(st.dma_bytes_mmap, ==, 0);
        g_assert_cmpuint(st.dma_bytes_read, >=, len);
        g_assert_cmpuint(st.dma_bytes_written, >=, len);
    } else {
        g_assert_cmpuint(st.dma_bytes_mmap, >=, 2 * len);
        g_assert_cmpuint(st.dma_reads + st.dma_writes, ==, 0);
    }

    /* MSI-X: the eventfds were given again, and a vector reaches us */
    g_assert_cmpuint(irq_fds_sent(c.f.srv, VFIO_PCI_MSIX_IRQ_INDEX), >, 0);
    check_msix(&c);
    /* On conventional PCI there is no port to report an error at */
    g_assert_cmpuint(trace_lines(&c, "Surprise Down at the port above: "
                                 "-19"), ==, 1);
    ctx_stop(&c);
}

static void test_restore(void)
{
    check_restore(false);
}

static void test_restore_secure(void)
{
    check_restore(true);
}

/*
 * What the guest sets up while the server is gone (here MSI-X, enabled
 * and programmed during the outage) reaches the server found next.
 */
static void test_set_up_while_down(void)
{
    TestCtx c = { 0 };

    ctx_start(&c, NULL, false, NULL, 20);
    g_assert_cmpuint(irq_fds_sent(c.f.srv, VFIO_PCI_MSIX_IRQ_INDEX), ==, 0);
    server_dies(&c);
    setup_msix(&c);
    start_server(&c, NULL);
    wait_event(&c, "VFIO_USER_SERVER_RECONNECTED");
    g_assert_cmpuint(irq_fds_sent(c.f.srv, VFIO_PCI_MSIX_IRQ_INDEX), >, 0);
    check_msix(&c);
    ctx_stop(&c);
}

/* INTx is set up again, unmasked, and reaches the IOAPIC after restore */
static void test_intx(void)
{
    TestCtx c = { 0 };
    QPCIDevice *isa;

    ctx_start(&c, NULL, false, NULL, 20);
    isa = qpci_device_find(c.f.bus, QPCI_DEVFN(1, 0));
    g_assert(isa);
    for (int i = 0; i < 4; i++) {
        qpci_config_writeb(isa, 0x60 + i, INTX_IRQ);
    }
    g_free(isa);
    qtest_irq_intercept_in(c.f.qts, "ioapic");

    /* Asserted when the server dies: the level must not stay up */
    vu_fixture_bar0_writel(&c.f, VU_TEST_REG_IRQ_RAISE, 0);
    g_assert(vu_fixture_wait_irq(c.f.qts, INTX_IRQ, true));
    server_dies(&c);
    g_assert(vu_fixture_wait_irq(c.f.qts, INTX_IRQ, false));
    start_server(&c, NULL);
    wait_event(&c, "VFIO_USER_SERVER_RECONNECTED");
    g_assert_cmpuint(irq_fds_sent(c.f.srv, VFIO_PCI_INTX_IRQ_INDEX), ==, 1);

    for (int round = 0; round < 2; round++) {
        vu_fixture_bar0_writel(&c.f, VU_TEST_REG_IRQ_RAISE, 0);
        g_assert(vu_fixture_wait_irq(c.f.qts, INTX_IRQ, true));
        vu_fixture_bar0_writel(&c.f, VU_TEST_REG_IRQ_LOWER, 0);
        g_assert(vu_fixture_wait_irq(c.f.qts, INTX_IRQ, false));
    }
    ctx_stop(&c);
}

/*
 * A server that comes back as another device is refused, and says why;
 * the device stays failed, keeps trying, and takes the right one.
 */
static void test_identity_mismatch(void)
{
    VUTestServerConfig other;
    TestCtx c = { 0 };

    ctx_start(&c, NULL, false, NULL, 20);
    server_dies(&c);

    vu_test_server_config_init(&other);
    other.device_id = 0x1111;
    start_server(&c, &other);
    g_assert(wait_trace(&c, "not the same device: device ID 0x1111, was "
                        "0x5655"));
    g_assert(!connected(&c));
    g_assert_cmphex(vu_fixture_bar0_readl(&c.f, VU_TEST_REG_ID), ==,
                    0xffffffff);
    /* It told the impostor nothing */
    g_assert_cmpuint(vu_test_server_cmd_count(c.f.srv, VFIO_USER_DMA_MAP),
                     ==, 0);
    g_assert_cmpuint(vu_test_server_cmd_count(c.f.srv,
                                              VFIO_USER_DEVICE_SET_IRQS),
                     ==, 0);

    kill_server(&c);
    vu_test_server_config_init(&other);
    other.msix_vectors = 8;
    start_server(&c, &other);
    g_assert(wait_trace(&c, "not the same device: irq 2: 8 vectors"));
    g_assert(!connected(&c));

    kill_server(&c);
    start_server(&c, NULL);
    wait_event(&c, "VFIO_USER_SERVER_RECONNECTED");
    g_assert_cmphex(vu_fixture_bar0_readl(&c.f, VU_TEST_REG_ID), ==,
                    VU_TEST_ID_MAGIC);
    ctx_stop(&c);
}

/* Drops a connection at its first @die_cmd while @dying is positive */
typedef struct DieHook {
    unsigned die_cmd;
    int dying;                  /* connections left to drop */
} DieHook;

static VUTestHookAction die_hook(VUTestServer *s, const VUTestMsg *msg,
                                 GByteArray *reply, void *opaque)
{
    DieHook *h = opaque;

    if (msg->hdr.command == h->die_cmd && qatomic_read(&h->dying) > 0) {
        qatomic_dec(&h->dying);
        return VU_TEST_HOOK_DISCONNECT;
    }
    return VU_TEST_HOOK_CONTINUE;
}

/*
 * The new server dies while the device is being restored on it (at its
 * first DMA_MAP): that attempt fails cleanly and the next one, on the
 * server's next connection, brings the device back.
 */
static void test_death_during_restore(void)
{
    DieHook hook = { .die_cmd = VFIO_USER_DMA_MAP, .dying = 1 };
    VUTestServerConfig cfg;
    VUTestServerStats st;
    TestCtx c = { 0 };

    ctx_start(&c, NULL, false, NULL, 20);
    server_dies(&c);

    vu_test_server_config_init(&cfg);
    cfg.reaccept = true;
    cfg.hook = die_hook;
    cfg.hook_opaque = &hook;
    start_server(&c, &cfg);
    wait_event(&c, "VFIO_USER_SERVER_RECONNECTED");
    g_assert_cmpint(qatomic_read(&hook.dying), ==, 0);
    g_assert_cmpuint(trace_lines(&c, "DMA_MAP of"), >=, 1);
    vu_test_server_get_stats(c.f.srv, &st);
    g_assert_cmpuint(st.connections, ==, 2);
    g_assert_cmphex(vu_fixture_bar0_readl(&c.f, VU_TEST_REG_ID), ==,
                    VU_TEST_ID_MAGIC);
    vu_fixture_engine_dma(&c.f, false, GUEST_SRC, 0, 4096, 5);
    ctx_stop(&c);
}

/*
 * A server that accepts and hangs up, again and again: attempts back
 * off (doubling from reconnect-ms), so there are a handful of them, not
 * a busy loop, and QMP answers all along.  When it stops flapping the
 * device comes back.
 */
static void test_flapping(void)
{
    DieHook hook = { .die_cmd = VFIO_USER_VERSION, .dying = 1000 };
    VUTestServerConfig cfg;
    VUTestServerStats st;
    TestCtx c = { 0 };
    unsigned attempts, refused;

    ctx_start(&c, NULL, false, NULL, 20);
    server_dies(&c);

    vu_test_server_config_init(&cfg);
    cfg.reaccept = true;
    cfg.hook = die_hook;
    cfg.hook_opaque = &hook;
    start_server(&c, &cfg);
    g_assert_cmpuint(slow_answers(&c, 1500, false), <=, 1);
    /*
     * Attempts that found no server yet wait reconnect-ms each; once the
     * server answers and hangs up, waits of 40, 80, 160, 320, 640 ms:
     * at most 7 attempts since it listens, where retrying every
     * reconnect-ms would make 75.
     */
    attempts = trace_lines(&c, "vfio_user_reconnect_attempt");
    refused = trace_lines(&c, "next in 20 ms");
    vu_test_server_get_stats(c.f.srv, &st);
    g_test_message("%u attempts (%u waits of reconnect-ms), "
                   "%u connections", attempts, refused, st.connections);
    g_assert_cmpuint(refused, >=, 1);
    g_assert_cmpuint(attempts, >=, refused + 2);
    g_assert_cmpuint(attempts, <=, refused + 7);
    g_assert_cmpuint(st.connections, >=, 1);
    /* Each wait doubles */
    g_assert_cmpuint(trace_lines(&c, "next in 40 ms"), ==, 1);
    g_assert_cmpuint(trace_lines(&c, "next in 80 ms"), ==, 1);
    g_assert(wait_trace(&c, "version negotiation failed"));
    g_assert(!connected(&c));

    qatomic_set(&hook.dying, 0);
    wait_event(&c, "VFIO_USER_SERVER_RECONNECTED");
    g_assert_cmphex(vu_fixture_bar0_readl(&c.f, VU_TEST_REG_ID), ==,
                    VU_TEST_ID_MAGIC);
    ctx_stop(&c);
}

/*
 * While nothing listens on the socket, the device tries every
 * reconnect-ms, without backing off: the guest waits for the first
 * attempt after the server is back, and a refused connect costs nothing.
 */
static void test_absent_server(void)
{
    TestCtx c = { 0 };
    unsigned attempts;

    ctx_start(&c, NULL, false, NULL, 50);
    server_dies(&c);
    g_usleep(1500 * 1000);
    attempts = trace_lines(&c, "vfio_user_reconnect_attempt");
    g_test_message("%u attempts in 1.5 s", attempts);
    /* Doubling from 50 ms would make 5; every 50 ms, about 30 */
    g_assert_cmpuint(attempts, >=, 10);
    g_assert_cmpuint(trace_lines(&c, "next in 100 ms"), ==, 0);
    query_status_ok(&c);

    start_server(&c, NULL);
    wait_event(&c, "VFIO_USER_SERVER_RECONNECTED");
    g_assert_cmphex(vu_fixture_bar0_readl(&c.f, VU_TEST_REG_ID), ==,
                    VU_TEST_ID_MAGIC);
    ctx_stop(&c);
}

static VUTestHookAction swallow_version(VUTestServer *s, const VUTestMsg *msg,
                                        GByteArray *reply, void *opaque)
{
    return msg->hdr.command == VFIO_USER_VERSION ? VU_TEST_HOOK_REPLACE
                                                 : VU_TEST_HOOK_CONTINUE;
}

/*
 * A server that accepts and never answers VERSION (a wedged process):
 * each attempt waits x-msg-timeout for it, but off the main loop, so
 * QMP and the vCPU (a BAR read of the failed device) answer at once
 * meanwhile.
 */
static void test_hung_server(void)
{
    VUTestServerConfig cfg;
    VUTestServerStats st;
    TestCtx c = { 0 };

    ctx_start(&c, NULL, false, ",x-msg-timeout=1000", 20);
    server_dies(&c);
    vu_test_server_config_init(&cfg);
    cfg.reaccept = true;
    cfg.hook = swallow_version;
    start_server(&c, &cfg);
    g_assert_cmpuint(slow_answers(&c, 2500, true), <=, 1);
    vu_test_server_get_stats(c.f.srv, &st);
    g_assert_cmpuint(st.connections, >=, 2);
    g_assert(wait_trace(&c, "version negotiation failed"));
    g_assert(!connected(&c));
    ctx_stop(&c);
}

/*
 * Unplug while the device waits to reconnect: the unplug completes, a
 * server that then appears is never contacted, and QEMU lives on.
 */
static void test_unplug_while_reconnecting(void)
{
    VUTestServerStats st;
    TestCtx c = { 0 };

    ctx_start(&c, NULL, false, NULL, 200);
    server_dies(&c);
    qpci_unplug_acpi_device_test(c.f.qts, "vu0", VU_FIXTURE_SLOT);
    start_server(&c, NULL);
    g_usleep(600 * 1000);
    vu_test_server_get_stats(c.f.srv, &st);
    g_assert_cmpuint(st.connections, ==, 0);
    query_status_ok(&c);
    ctx_stop(&c);
}

/*
 * Below a PCIe root port with AER, the device's return is reported to
 * the guest as a Surprise Down at the port (fatal: the port's device
 * status says so), for its drivers to reset the device.
 */
static void test_aer_surprise_down(void)
{
    TestCtx c = { 0 };
    QPCIDevice *port;
    uint8_t exp;
    int fd = g_file_open_tmp("vfio-user-reconnect-XXXXXX.trace", &c.trace,
                             NULL);

    g_assert(fd >= 0);
    close(fd);
    vu_fixture_server(&c.f, "vfio-user-reconnect", NULL);
    c.f.qts = qtest_initf("-machine q35 -m %d "
                          "-trace enable=vfio_user_pci_link*,file=%s "
                          "-device pcie-root-port,id=rp0,chassis=1,addr=5.0 "
                          "-device vfio-user-pci,id=vu0,bus=rp0,"
                          "socket.path=%s,reconnect-ms=20",
                          RAM_MB, c.trace, c.f.sock);
    c.f.bus = qpci_new_pc(c.f.qts, NULL);
    port = qpci_device_find(c.f.bus, QPCI_DEVFN(5, 0));
    g_assert(port);
    exp = qpci_find_capability(port, PCI_CAP_ID_EXP, 0);
    g_assert(exp);
    g_assert_cmphex(qpci_config_readw(port, exp + PCI_EXP_DEVSTA) &
                    PCI_EXP_DEVSTA_FED, ==, 0);
    /*
     * The guest answers with a secondary bus reset of the port, after
     * which Linux waits for the link to be up again: the port (ACPI
     * hot-plug, q35's default) must say it is.
     */
    g_assert(qpci_config_readl(port, exp + PCI_EXP_LNKCAP) &
             PCI_EXP_LNKCAP_DLLLARC);
    g_assert_cmphex(qpci_config_readw(port, exp + PCI_EXP_LNKSTA) &
                    PCI_EXP_LNKSTA_DLLLA, ==, PCI_EXP_LNKSTA_DLLLA);

    server_dies(&c);
    /* Not at the death: a reset now would find no device */
    g_assert_cmphex(qpci_config_readw(port, exp + PCI_EXP_DEVSTA) &
                    PCI_EXP_DEVSTA_FED, ==, 0);
    start_server(&c, NULL);
    wait_event(&c, "VFIO_USER_SERVER_RECONNECTED");
    g_assert_cmphex(qpci_config_readw(port, exp + PCI_EXP_DEVSTA) &
                    PCI_EXP_DEVSTA_FED, ==, PCI_EXP_DEVSTA_FED);
    g_assert_cmpuint(trace_lines(&c, "Surprise Down at the port above: 0"),
                     ==, 1);
    g_free(port);
    ctx_stop(&c);
}

/* A socket connected to c's server, passed to QEMU as @fdname */
static void pass_socket(TestCtx *c, const char *fdname)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    QDict *resp;
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);

    g_assert_cmpint(fd, >=, 0);
    g_strlcpy(addr.sun_path, c->f.sock, sizeof(addr.sun_path));
    g_assert_cmpint(connect(fd, (struct sockaddr *)&addr, sizeof(addr)),
                    ==, 0);
    resp = qtest_qmp_fds(c->f.qts, &fd, 1, "{'execute': 'getfd',"
                         "'arguments': {'fdname': %s}}", fdname);
    g_assert(qdict_haskey(resp, "return"));
    qobject_unref(resp);
    close(fd);
}

/* vfio-user-reconnect with @fdname: NULL if it worked, else the error */
static char *qmp_reconnect(TestCtx *c, const char *id, const char *fdname)
{
    QDict *resp = qtest_qmp(c->f.qts, "{'execute': 'vfio-user-reconnect',"
                            "'arguments': {'id': %s, 'fdname': %s}}",
                            id, fdname);
    char *err = NULL;

    if (qdict_haskey(resp, "error")) {
        err = g_strdup(qdict_get_str(qdict_get_qdict(resp, "error"),
                                     "desc"));
        g_test_message("vfio-user-reconnect: %s", err);
    }
    qobject_unref(resp);
    return err;
}

/*
 * A device given its socket as an fd cannot reconnect by itself: the
 * management layer hands it a new connected socket with
 * vfio-user-reconnect.  Refused while the device is connected, and for
 * what is not a vfio-user-pci device; accepted after the server died,
 * and the device works again.
 */
static void test_qmp_reconnect(void)
{
    g_autofree char *err = NULL;
    TestCtx c = { 0 };
    QDict *resp;

    vu_fixture_server(&c.f, "vfio-user-reconnect", NULL);
    c.f.qts = qtest_initf("-machine pc -m %d", RAM_MB);
    pass_socket(&c, "sock1");
    resp = qtest_qmp(c.f.qts, "{'execute': 'device_add', 'arguments': {"
                     "'driver': 'vfio-user-pci', 'id': 'vu0', 'addr': '4.0',"
                     "'socket': {'type': 'fd', 'str': 'sock1'}}}");
    g_assert(qdict_haskey(resp, "return"));
    qobject_unref(resp);
    vu_fixture_find_device(&c.f, VU_FIXTURE_DEVFN);
    vu_fixture_bar0_writel(&c.f, VU_TEST_REG_SCRATCH, 0x77);

    pass_socket(&c, "sock2");
    err = qmp_reconnect(&c, "vu0", "sock2");
    g_assert(err && strstr(err, "is connected"));
    g_clear_pointer(&err, g_free);
    err = qmp_reconnect(&c, "/machine/i440fx", "sock2");
    g_assert(err && strstr(err, "not a vfio-user-pci device"));
    g_clear_pointer(&err, g_free);

    server_dies(&c);
    start_server(&c, NULL);
    pass_socket(&c, "sock3");
    err = qmp_reconnect(&c, "vu0", "sock3");
    g_assert_null(err);
    wait_event(&c, "VFIO_USER_SERVER_RECONNECTED");
    g_assert(connected(&c));
    g_assert_cmphex(vu_fixture_bar0_readl(&c.f, VU_TEST_REG_ID), ==,
                    VU_TEST_ID_MAGIC);
    g_assert_cmphex(vu_fixture_bar0_readl(&c.f, VU_TEST_REG_SCRATCH), ==, 0);
    vu_fixture_stop(&c.f);
}

/*
 * Unplug while an attempt is under way (its thread waits for a VERSION
 * reply that never comes): the unplug completes, the attempt's end finds
 * the device gone and cleans up, and no attempt follows.
 */
static void test_unplug_during_attempt(void)
{
    VUTestServerConfig cfg;
    TestCtx c = { 0 };
    unsigned attempts;

    ctx_start(&c, NULL, false, ",x-msg-timeout=1000", 20);
    server_dies(&c);
    vu_test_server_config_init(&cfg);
    cfg.reaccept = true;
    cfg.hook = swallow_version;
    start_server(&c, &cfg);
    g_assert(vu_test_server_wait_connected(c.f.srv, WAIT_MS));
    qpci_unplug_acpi_device_test(c.f.qts, "vu0", VU_FIXTURE_SLOT);
    g_usleep(1500 * 1000);      /* past the attempt's x-msg-timeout */
    query_status_ok(&c);
    attempts = trace_lines(&c, "vfio_user_reconnect_attempt");
    g_usleep(300 * 1000);
    g_assert_cmpuint(trace_lines(&c, "vfio_user_reconnect_attempt"), ==,
                     attempts);
    query_status_ok(&c);
    ctx_stop(&c);
}

/*
 * The server process lives on and takes the device back (it dropped the
 * connection, say, on a timeout of ours): its config space still has
 * MSI-X enabled, as the guest left it, which must not make it another
 * device; and the vector works on the new connection.
 */
static void test_same_server_keeps_state(void)
{
    DieHook hook = { .die_cmd = VFIO_USER_REGION_READ, .dying = 0 };
    VUTestServerConfig cfg;
    TestCtx c = { 0 };

    vu_test_server_config_init(&cfg);
    cfg.reaccept = true;
    cfg.hook = die_hook;
    cfg.hook_opaque = &hook;
    ctx_start(&c, &cfg, false, NULL, 20);
    setup_msix(&c);
    check_msix(&c);
    qatomic_set(&hook.dying, 1);
    g_assert_cmphex(vu_fixture_bar0_readl(&c.f, VU_TEST_REG_ID), ==,
                    0xffffffff);
    wait_event(&c, "VFIO_USER_SERVER_LOST");
    wait_event(&c, "VFIO_USER_SERVER_RECONNECTED");
    g_assert_cmphex(vu_fixture_bar0_readl(&c.f, VU_TEST_REG_ID), ==,
                    VU_TEST_ID_MAGIC);
    check_msix(&c);
    ctx_stop(&c);
}

/* Without reconnect-ms a device that lost its server stays failed */
static void test_no_reconnect_by_default(void)
{
    VUTestServerStats st;
    TestCtx c = { 0 };

    ctx_start(&c, NULL, false, NULL, 0);
    server_dies(&c);
    start_server(&c, NULL);
    g_usleep(300 * 1000);
    vu_test_server_get_stats(c.f.srv, &st);
    g_assert_cmpuint(st.connections, ==, 0);
    g_assert(!connected(&c));
    ctx_stop(&c);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qtest_add_func("/vfio-user/reconnect/restore", test_restore);
    qtest_add_func("/vfio-user/reconnect/restore-secure-dma",
                   test_restore_secure);
    qtest_add_func("/vfio-user/reconnect/intx", test_intx);
    qtest_add_func("/vfio-user/reconnect/set-up-while-down",
                   test_set_up_while_down);
    qtest_add_func("/vfio-user/reconnect/identity-mismatch",
                   test_identity_mismatch);
    qtest_add_func("/vfio-user/reconnect/death-during-restore",
                   test_death_during_restore);
    qtest_add_func("/vfio-user/reconnect/absent-server", test_absent_server);
    qtest_add_func("/vfio-user/reconnect/flapping", test_flapping);
    qtest_add_func("/vfio-user/reconnect/hung-server", test_hung_server);
    qtest_add_func("/vfio-user/reconnect/unplug-while-reconnecting",
                   test_unplug_while_reconnecting);
    qtest_add_func("/vfio-user/reconnect/unplug-during-attempt",
                   test_unplug_during_attempt);
    qtest_add_func("/vfio-user/reconnect/same-server-keeps-state",
                   test_same_server_keeps_state);
    qtest_add_func("/vfio-user/reconnect/qmp-fd", test_qmp_reconnect);
    qtest_add_func("/vfio-user/reconnect/aer-surprise-down",
                   test_aer_surprise_down);
    qtest_add_func("/vfio-user/reconnect/off-by-default",
                   test_no_reconnect_by_default);
    return g_test_run();
}
