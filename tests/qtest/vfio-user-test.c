/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qtests for vfio-user-pci, against the test server of vfio-user-server.c
 * running in a thread of this process.
 *
 * Each test checks what the guest sees (through qtest and libqos) and,
 * where it says something about the protocol, what the server received.
 */

#include "qemu/osdep.h"
#include <sys/socket.h>
#include <sys/un.h>
#include "libqtest.h"
#include "libqos/pci.h"
#include "libqos/pci-pc.h"
#include "qobject/qdict.h"
#include "qobject/qjson.h"
#include "qobject/qstring.h"
#include "qemu/atomic.h"
#include "qemu/bswap.h"
#include "hw/pci/pci_regs.h"
#include "vfio-user-server.h"
#include "vfio-user-fixture.h"

#define SLOT            VU_FIXTURE_SLOT
#define DEVFN           VU_FIXTURE_DEVFN
#define RAM_MB          256
#define GUEST_SRC       0x200000
#define GUEST_DST       0x300000
#define GUEST_MSI       0x400000
#define WAIT_MS         5000

/* Guest RAM with an fd the server can map. */
#define MEMFD_RAM VU_FIXTURE_MEMFD_RAM

typedef struct TestCtx {
    VUFixture f;
} TestCtx;

/* Start a server and QEMU with the device at slot 4. */
static void ctx_start(TestCtx *c, const VUTestServerConfig *cfg,
                      const char *qemu_extra, const char *dev_extra)
{
    g_autofree char *args = g_strdup_printf("-machine pc -m %d %s", RAM_MB,
                                            qemu_extra ? qemu_extra : "");

    vu_fixture_server(&c->f, "vfio-user-test", cfg);
    vu_fixture_start(&c->f, args, dev_extra);
}

/* ---------------------------------------------------------------------- */

static void test_enumerate(void)
{
    VUTestServerConfig cfg;
    TestCtx c = { 0 };
    uint64_t size;

    vu_test_server_config_init(&cfg);
    ctx_start(&c, &cfg, NULL, NULL);

    g_assert_cmphex(qpci_config_readw(c.f.dev, PCI_VENDOR_ID), ==,
                    cfg.vendor_id);
    g_assert_cmphex(qpci_config_readw(c.f.dev, PCI_DEVICE_ID), ==,
                    cfg.device_id);
    g_assert_cmphex(qpci_config_readl(c.f.dev, PCI_CLASS_REVISION) >> 8, ==,
                    0x00ff00);
    g_assert_cmpuint(c.f.bar0_size, ==, VU_TEST_BAR0_SIZE);
    qpci_iomap(c.f.dev, 1, &size);
    g_assert_cmpuint(size, ==, VU_TEST_BAR1_SIZE);
    qpci_iomap(c.f.dev, 2, &size);
    g_assert_cmpuint(size, ==, VU_TEST_BAR2_SIZE);

    /* The client negotiated, then asked for the device's description. */
    g_assert_cmpuint(vu_test_server_cmd_count(c.f.srv, VFIO_USER_VERSION),
                     ==, 1);
    g_assert_cmpuint(vu_test_server_cmd_count(c.f.srv,
                                              VFIO_USER_DEVICE_GET_INFO),
                     >=, 1);
    vu_fixture_stop(&c.f);
}

/* The id overrides vfio-pci users expect. */
static void test_id_override(void)
{
    TestCtx c = { 0 };

    ctx_start(&c, NULL, NULL,
              ",x-pci-vendor-id=0x1af4,x-pci-device-id=0xbeef");
    g_assert_cmphex(qpci_config_readw(c.f.dev, PCI_VENDOR_ID), ==, 0x1af4);
    g_assert_cmphex(qpci_config_readw(c.f.dev, PCI_DEVICE_ID), ==, 0xbeef);
    vu_fixture_stop(&c.f);
}

/* -device in JSON form, nested socket object. */
static void test_json_device(void)
{
    TestCtx c = { 0 };

    vu_fixture_server(&c.f, "vfio-user-test", NULL);
    c.f.qts = qtest_initf("-machine pc -m %d -device "
                          "'{\"driver\":\"vfio-user-pci\",\"id\":\"vu0\","
                          "\"addr\":\"%d.0\",\"socket\":{\"type\":\"unix\","
                          "\"path\":\"%s\"}}'", RAM_MB, SLOT, c.f.sock);
    vu_fixture_find_device(&c.f, DEVFN);
    g_assert_cmphex(vu_fixture_bar0_readl(&c.f, VU_TEST_REG_ID), ==,
                    VU_TEST_ID_MAGIC);
    vu_fixture_stop(&c.f);
}

/* A socket connected by the management layer, passed as an fd. */
static void test_socket_fd(void)
{
    TestCtx c = { 0 };
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    QDict *resp;
    int fd;

    vu_fixture_server(&c.f, "vfio-user-test", NULL);
    c.f.qts = qtest_initf("-machine pc -m %d", RAM_MB);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    g_assert_cmpint(fd, >=, 0);
    g_strlcpy(addr.sun_path, c.f.sock, sizeof(addr.sun_path));
    g_assert_cmpint(connect(fd, (struct sockaddr *)&addr, sizeof(addr)),
                    ==, 0);
    resp = qtest_qmp_fds(c.f.qts, &fd, 1, "{'execute': 'getfd',"
                         "'arguments': {'fdname': 'vusock'}}");
    g_assert(qdict_haskey(resp, "return"));
    qobject_unref(resp);
    close(fd);

    resp = qtest_qmp(c.f.qts, "{'execute': 'device_add', 'arguments': {"
                     "'driver': 'vfio-user-pci', 'id': 'vu0', 'addr': '4.0',"
                     "'socket': {'type': 'fd', 'str': 'vusock'}}}");
    g_assert(qdict_haskey(resp, "return"));
    qobject_unref(resp);
    vu_fixture_find_device(&c.f, DEVFN);
    g_assert_cmphex(vu_fixture_bar0_readl(&c.f, VU_TEST_REG_ID), ==,
                    VU_TEST_ID_MAGIC);
    vu_fixture_stop(&c.f);
}

static void test_config_space(void)
{
    TestCtx c = { 0 };
    uint16_t cmd;

    ctx_start(&c, NULL, NULL, NULL);
    /* libqos enabled memory and I/O decoding and bus mastering. */
    cmd = qpci_config_readw(c.f.dev, PCI_COMMAND);
    g_assert(cmd & PCI_COMMAND_MEMORY);
    g_assert(cmd & PCI_COMMAND_MASTER);
    g_assert(vu_fixture_region_written(&c.f, VFIO_PCI_CONFIG_REGION_INDEX,
                                       PCI_COMMAND));

    /* The capabilities the server declared are there for the guest. */
    g_assert_cmpuint(qpci_find_capability(c.f.dev, PCI_CAP_ID_MSI, 0), ==,
                     VU_TEST_CFG_MSI_CAP);
    g_assert_cmpuint(qpci_find_capability(c.f.dev, PCI_CAP_ID_MSIX, 0), ==,
                     VU_TEST_CFG_MSIX_CAP);
    vu_fixture_stop(&c.f);
}

static void check_bar0_by_message(bool posted)
{
    TestCtx c = { 0 };
    g_autoptr(GArray) writes = NULL;
    bool found = false;

    ctx_start(&c, NULL, NULL, posted ? ",x-post-writes=on" :
                                       ",x-post-writes=off");
    g_assert_cmphex(vu_fixture_bar0_readl(&c.f, VU_TEST_REG_ID), ==,
                    VU_TEST_ID_MAGIC);
    vu_fixture_bar0_writel(&c.f, VU_TEST_REG_SCRATCH, 0xdeadbeef);
    g_assert_cmphex(vu_fixture_bar0_readl(&c.f, VU_TEST_REG_SCRATCH), ==,
                    0xdeadbeef);
    g_assert_cmphex(vu_test_server_reg_read(c.f.srv, VU_TEST_REG_SCRATCH), ==,
                    0xdeadbeef);

    writes = vu_test_server_region_writes(c.f.srv);
    for (guint i = 0; i < writes->len; i++) {
        VUTestRegionWriteRecord *w =
            &g_array_index(writes, VUTestRegionWriteRecord, i);

        if (w->region == VFIO_PCI_BAR0_REGION_INDEX &&
            w->offset == VU_TEST_REG_SCRATCH) {
            g_assert_cmpuint(w->count, ==, 4);
            g_assert_cmpint(w->no_reply, ==, posted);
            found = true;
        }
    }
    g_assert(found);
    vu_fixture_stop(&c.f);
}

static void test_bar_message_posted(void)
{
    check_bar0_by_message(true);
}

static void test_bar_message_nonposted(void)
{
    check_bar0_by_message(false);
}

/* CPU time of QEMU's main thread, in ns */
static uint64_t qemu_main_thread_cpu_ns(TestCtx *c)
{
    int pid = qtest_pid(c->f.qts);
    g_autofree char *path = g_strdup_printf("/proc/%d/task/%d/schedstat",
                                            pid, pid);
    g_autofree char *txt = NULL;

    g_assert(g_file_get_contents(path, &txt, NULL, NULL));
    return g_ascii_strtoull(txt, NULL, 10);
}

/*
 * The busy-poll tests compare threads' CPU time, which some kernels do
 * not show, and which an instrumented build (make check-sanitizers)
 * inflates and scatters beyond what the comparison tells apart: there
 * qtest's own work per read went from ~60 us to 100-300 us.
 */
static bool skip_without_thread_cpu_time(void)
{
#ifdef QEMU_SANITIZE_ADDRESS
    g_test_skip("CPU time of a sanitizer build says nothing about polling");
    return true;
#endif
    if (!g_file_test("/proc/self/schedstat", G_FILE_TEST_EXISTS)) {
        g_test_skip("no per-thread CPU time (schedstat) in /proc");
        return true;
    }
    return false;
}

/* Every BAR0 read is answered @opaque us late */
static VUTestHookAction slow_bar0_reads(VUTestServer *s, const VUTestMsg *msg,
                                        GByteArray *reply, void *opaque)
{
    if (msg->hdr.command == VFIO_USER_REGION_READ &&
        msg->payload_size >= 12 &&
        ldl_le_p(msg->payload + 8) == VFIO_PCI_BAR0_REGION_INDEX) {
        g_usleep(GPOINTER_TO_UINT(opaque));
    }
    return VU_TEST_HOOK_CONTINUE;
}

/*
 * CPU time of QEMU's main thread (where qtest's accesses run) per BAR0
 * read, in us, as the device stands.  The warm-up gives the busy-poll
 * window time to adapt.
 */
static double cpu_us_per_read(TestCtx *c)
{
    enum { WARMUP = 20, READS = 40 };
    uint64_t before;

    for (int i = 0; i < WARMUP; i++) {
        vu_fixture_bar0_readl(&c->f, VU_TEST_REG_ID);
    }
    before = qemu_main_thread_cpu_ns(c);
    for (int i = 0; i < READS; i++) {
        g_assert_cmphex(vu_fixture_bar0_readl(&c->f, VU_TEST_REG_ID), ==,
                        VU_TEST_ID_MAGIC);
    }
    return (qemu_main_thread_cpu_ns(c) - before) / 1000.0 / READS;
}

/*
 * cpu_us_per_read() when the server answers each @delay_us late and the
 * device may busy-poll for @max_poll_ns.
 */
static double cpu_us_per_slow_read(unsigned delay_us, unsigned max_poll_ns)
{
    VUTestServerConfig cfg;
    TestCtx c = { 0 };
    g_autofree char *opts = g_strdup_printf(",x-poll-max-ns=%u",
                                            max_poll_ns);
    double us;

    vu_test_server_config_init(&cfg);
    cfg.hook = slow_bar0_reads;
    cfg.hook_opaque = GUINT_TO_POINTER(delay_us);
    ctx_start(&c, &cfg, NULL, opts);
    us = cpu_us_per_read(&c);
    vu_fixture_stop(&c.f);
    g_test_message("server %u us late, x-poll-max-ns=%u: QEMU main thread "
                   "CPU %.1f us per read", delay_us, max_poll_ns, us);
    return us;
}

/*
 * Replies 200 us late, within x-poll-max-ns: the window widens until it
 * covers them, and the waiting thread polls through the wait instead of
 * sleeping, which shows as CPU time.  With polling off it sleeps.
 */
static void test_busy_poll_window_widens(void)
{
    double slept, polled;

    if (skip_without_thread_cpu_time()) {
        return;
    }
    slept = cpu_us_per_slow_read(200, 0);
    /*
     * Polling through half the delay at least: the rest is qtest's.  A
     * wait that this machine stretches past the maximum (the server
     * woken late, QEMU preempted) closes the window, which then takes a
     * few reads to widen again: up to three tries.
     */
    for (int attempt = 0; attempt < 3; attempt++) {
        polled = cpu_us_per_slow_read(200, 1000000);
        if (polled - slept >= 100) {
            break;
        }
    }
    g_assert_cmpfloat(polled - slept, >=, 100);
}

/* Every BAR0 read is answered *(unsigned *)@opaque us late, as it is now */
static VUTestHookAction varying_bar0_reads(VUTestServer *s,
                                           const VUTestMsg *msg,
                                           GByteArray *reply, void *opaque)
{
    return slow_bar0_reads(s, msg, reply,
                           GUINT_TO_POINTER(qatomic_read((unsigned *)opaque)));
}

/*
 * vfio_user_poll_window trace lines of the log @path: how many opened or
 * widened the window (@open), or closed it.
 */
static unsigned count_poll_window_traces(const char *path, bool open)
{
    static const char now[] = "busy-poll window now ";
    g_autofree char *txt = NULL;
    g_auto(GStrv) lines = NULL;
    unsigned n = 0;

    if (!g_file_get_contents(path, &txt, NULL, NULL)) {
        return 0;
    }
    lines = g_strsplit(txt, "\n", -1);
    for (int i = 0; lines[i]; i++) {
        const char *w = strstr(lines[i], now);

        if (w && strstr(lines[i], "vfio_user_poll_window")) {
            uint64_t ns = g_ascii_strtoull(w + strlen(now), NULL, 10);

            n += open ? ns > 0 : ns == 0;
        }
    }
    return n;
}

/*
 * Replies 3 ms late, past x-poll-max-ns: the window closes, and waiting
 * costs next to no CPU more than with polling off.  Were the window to
 * stay open, each read would spin for the whole millisecond.  So that a
 * device that never polled at all cannot pass, the same device first
 * meets replies 200 us late, and its window must open (the
 * vfio_user_poll_window trace says so) before the slow replies close it.
 */
static void test_busy_poll_slow_server(void)
{
    enum { FAST = 20 };
    VUTestServerConfig cfg;
    TestCtx c = { 0 };
    g_autofree char *trace = NULL;
    g_autofree char *qemu_extra = NULL;
    unsigned delay_us = 200;
    double slept, polled;
    unsigned opened, closed;
    int fd;

    if (skip_without_thread_cpu_time()) {
        return;
    }
    slept = cpu_us_per_slow_read(3000, 0);

    fd = g_file_open_tmp("vfio-user-poll-XXXXXX.trace", &trace, NULL);
    g_assert(fd >= 0);
    close(fd);
    qemu_extra = g_strdup_printf("-trace enable=vfio_user_poll_window,"
                                 "file=%s", trace);
    vu_test_server_config_init(&cfg);
    cfg.hook = varying_bar0_reads;
    cfg.hook_opaque = &delay_us;
    ctx_start(&c, &cfg, qemu_extra, ",x-poll-max-ns=1000000");
    for (int i = 0; i < FAST; i++) {
        vu_fixture_bar0_readl(&c.f, VU_TEST_REG_ID);
    }
    /* Checked at the end, once the trace file is gone */
    opened = count_poll_window_traces(trace, true);

    qatomic_set(&delay_us, 3000);
    polled = cpu_us_per_read(&c);
    vu_fixture_stop(&c.f);
    closed = count_poll_window_traces(trace, false);
    unlink(trace);
    g_test_message("server 3000 us late after 200 us: QEMU main thread CPU "
                   "%.1f us per read, %.1f with polling off", polled, slept);
    g_assert_cmpuint(opened, >, 0);
    g_assert_cmpuint(closed, >, 0);
    g_assert_cmpfloat(polled - slept, <, 1000 / 3);
}

/* BAR1's sparse areas are mmapped: accesses there send no message. */
static void test_bar_mmap(void)
{
    TestCtx c = { 0 };
    QPCIBar bar1;
    uint32_t v;

    ctx_start(&c, NULL, NULL, NULL);
    bar1 = qpci_iomap(c.f.dev, 1, NULL);

    qpci_io_writel(c.f.dev, bar1, 0x100, 0x12345678);
    vu_test_server_bar1_read(c.f.srv, 0x100, &v, sizeof(v));
    g_assert_cmphex(v, ==, 0x12345678);
    v = 0xcafef00d;
    vu_test_server_bar1_write(c.f.srv, VU_TEST_BAR1_AREA1_OFFSET + 8, &v,
                              sizeof(v));
    g_assert_cmphex(qpci_io_readl(c.f.dev, bar1,
                                  VU_TEST_BAR1_AREA1_OFFSET + 8), ==,
                    0xcafef00d);

    /*
     * Outside the sparse areas: by message.  Were the write posted, the
     * read after it would still be answered after it.
     */
    qpci_io_writel(c.f.dev, bar1, 0x4100, 0x55aa55aa);
    g_assert_cmphex(qpci_io_readl(c.f.dev, bar1, 0x4100), ==, 0x55aa55aa);
    vu_test_server_bar1_read(c.f.srv, 0x4100, &v, sizeof(v));
    g_assert_cmphex(v, ==, 0x55aa55aa);

    g_assert(!vu_fixture_region_written(&c.f, VFIO_PCI_BAR1_REGION_INDEX,
                                        0x100));
    g_assert(vu_fixture_region_written(&c.f, VFIO_PCI_BAR1_REGION_INDEX,
                                       0x4100));
    vu_fixture_stop(&c.f);
}

/* Without a region fd the same BAR works by message. */
static void test_bar_no_fd(void)
{
    VUTestServerConfig cfg;
    TestCtx c = { 0 };
    QPCIBar bar1;
    uint32_t v;

    vu_test_server_config_init(&cfg);
    cfg.bar1_fd = false;
    ctx_start(&c, &cfg, NULL, NULL);
    bar1 = qpci_iomap(c.f.dev, 1, NULL);
    qpci_io_writel(c.f.dev, bar1, 0x100, 0x87654321);
    g_assert_cmphex(qpci_io_readl(c.f.dev, bar1, 0x100), ==, 0x87654321);
    vu_test_server_bar1_read(c.f.srv, 0x100, &v, sizeof(v));
    g_assert_cmphex(v, ==, 0x87654321);
    g_assert(vu_fixture_region_written(&c.f, VFIO_PCI_BAR1_REGION_INDEX,
                                       0x100));
    vu_fixture_stop(&c.f);
}

/*
 * With secure-dma, a region fd is mapped only if it is a memfd sealed
 * against shrinking; the test server's unsealed one is used by message.
 */
static void check_bar_secure(bool unsealed)
{
    VUTestServerConfig cfg;
    TestCtx c = { 0 };
    QPCIBar bar1;
    uint32_t v;

    vu_test_server_config_init(&cfg);
    cfg.bar1_unsealed = unsealed;
    ctx_start(&c, &cfg, NULL, ",secure-dma=on");
    bar1 = qpci_iomap(c.f.dev, 1, NULL);
    qpci_io_writel(c.f.dev, bar1, 0x100, 0x2468ace0);
    g_assert_cmphex(qpci_io_readl(c.f.dev, bar1, 0x100), ==, 0x2468ace0);
    vu_test_server_bar1_read(c.f.srv, 0x100, &v, sizeof(v));
    g_assert_cmphex(v, ==, 0x2468ace0);
    g_assert_cmpint(vu_fixture_region_written(&c.f,
                                              VFIO_PCI_BAR1_REGION_INDEX,
                                              0x100), ==, unsealed);
    vu_fixture_stop(&c.f);
}

static void test_bar_secure_sealed(void)
{
    check_bar_secure(false);
}

static void test_bar_secure_unsealed(void)
{
    check_bar_secure(true);
}

typedef enum { DMA_VIA_FD, DMA_VIA_MESSAGES } DMAPath;

/* Guest -> device and device -> guest, data checked on both sides. */
static void check_dma(const char *qemu_extra, const char *dev_extra,
                      DMAPath path, unsigned want_map_fds)
{
    const size_t len = 3 * 4096 + 100;
    g_autoptr(GArray) maps = NULL;
    VUTestServerStats st;
    TestCtx c = { 0 };
    bool ram_mapped = false;
    unsigned map_fds = 0;

    ctx_start(&c, NULL, qemu_extra, dev_extra);

    maps = vu_test_server_dma_maps(c.f.srv);
    g_assert_cmpuint(maps->len, >, 0);
    for (guint i = 0; i < maps->len; i++) {
        VUTestDMAMapRecord *m = &g_array_index(maps, VUTestDMAMapRecord, i);

        g_assert_cmpint(m->err, ==, 0);
        g_assert_cmpuint(m->nfds, <=, want_map_fds);
        if (m->iova <= GUEST_SRC && m->iova + m->size >= GUEST_DST + len) {
            /* Guest RAM; the firmware ROMs have no fd to give. */
            g_assert_cmpuint(m->nfds, ==, want_map_fds);
            g_assert_cmphex(m->flags, ==, VFIO_USER_F_DMA_REGION_READ |
                                          VFIO_USER_F_DMA_REGION_WRITE);
            map_fds += m->nfds;
            ram_mapped = true;
        }
    }
    g_assert(ram_mapped);

    vu_fixture_engine_dma(&c.f, false, GUEST_SRC, 0, len, 1);
    vu_fixture_engine_dma(&c.f, true, GUEST_DST, 0x10, len, 77);

    vu_test_server_get_stats(c.f.srv, &st);
    if (path == DMA_VIA_FD) {
        g_assert_cmpuint(st.dma_bytes_mmap, >=, 2 * len);
        g_assert_cmpuint(st.dma_reads + st.dma_writes, ==, 0);
    } else {
        g_assert_cmpuint(st.dma_bytes_mmap, ==, 0);
        g_assert_cmpuint(st.dma_bytes_read, >=, len);
        g_assert_cmpuint(st.dma_bytes_written, >=, len);
        g_assert_cmpuint(st.dma_error_replies, ==, 0);
    }
    g_assert_cmpuint(vu_test_server_cmd_fds(c.f.srv, VFIO_USER_DMA_MAP), >=,
                     map_fds);
    if (!want_map_fds) {
        g_assert_cmpuint(vu_test_server_cmd_fds(c.f.srv, VFIO_USER_DMA_MAP), ==,
                         0);
    }
    vu_fixture_stop(&c.f);
}

static void test_dma_memfd(void)
{
    check_dma(MEMFD_RAM, NULL, DMA_VIA_FD, 1);
}

static void test_dma_plain_ram(void)
{
    check_dma(NULL, NULL, DMA_VIA_MESSAGES, 0);
}

static void test_dma_secure(void)
{
    check_dma(MEMFD_RAM, ",secure-dma=on", DMA_VIA_MESSAGES, 0);
}

/* The server signals an MSI-X vector; the guest's message arrives. */
static void test_msix(void)
{
    g_autoptr(GArray) sets = NULL;
    TestCtx c = { 0 };
    uint64_t entry;
    bool msix_fds = false;

    ctx_start(&c, NULL, NULL, NULL);
    qpci_msix_enable(c.f.dev);
    /* Vector 1: a write of 0x5a5a to guest RAM, which we can watch. */
    entry = c.f.dev->msix_table_off + 1 * PCI_MSIX_ENTRY_SIZE;
    qpci_io_writel(c.f.dev, c.f.dev->msix_table_bar,
                   entry + PCI_MSIX_ENTRY_LOWER_ADDR, GUEST_MSI);
    qpci_io_writel(c.f.dev, c.f.dev->msix_table_bar,
                   entry + PCI_MSIX_ENTRY_UPPER_ADDR, 0);
    qpci_io_writel(c.f.dev, c.f.dev->msix_table_bar,
                   entry + PCI_MSIX_ENTRY_DATA, 0x5a5a);
    qpci_io_writel(c.f.dev, c.f.dev->msix_table_bar,
                   entry + PCI_MSIX_ENTRY_VECTOR_CTRL, 0);
    qtest_writel(c.f.qts, GUEST_MSI, 0);

    vu_fixture_bar0_writel(&c.f, VU_TEST_REG_IRQ_RAISE, 1);
    g_assert(vu_fixture_wait_guest_u32(c.f.qts, GUEST_MSI, 0x5a5a));

    sets = vu_test_server_set_irqs(c.f.srv);
    for (guint i = 0; i < sets->len; i++) {
        VUTestSetIrqsRecord *s = &g_array_index(sets, VUTestSetIrqsRecord, i);

        if (s->index == VFIO_PCI_MSIX_IRQ_INDEX && s->nfds > 0) {
            g_assert(s->flags & VFIO_IRQ_SET_DATA_EVENTFD);
            msix_fds = true;
        }
    }
    g_assert(msix_fds);
    qpci_msix_disable(c.f.dev);
    vu_fixture_stop(&c.f);
}

/*
 * Many MSI-X vectors and a server that takes many fds per message: every
 * vector in use has its eventfd, however many SET_IRQS that takes, and
 * each one's message reaches the guest.  With NORESIZE, vfio-pci sets
 * all vectors in use at once each time one more is used.
 */
static void check_msix_many(bool noresize)
{
    const unsigned nvec = 40;
    VUTestServerConfig cfg;
    g_autoptr(GArray) sets = NULL;
    g_autofree bool *has_fd = g_new0(bool, nvec);
    unsigned last_end = 0, per_vector = 0;
    TestCtx c = { 0 };

    vu_test_server_config_init(&cfg);
    cfg.msix_vectors = nvec;
    cfg.msix_noresize = noresize;
    cfg.max_msg_fds = 64;
    ctx_start(&c, &cfg, NULL, NULL);
    qpci_msix_enable(c.f.dev);
    for (unsigned v = 0; v < nvec; v++) {
        uint64_t entry = c.f.dev->msix_table_off + v * PCI_MSIX_ENTRY_SIZE;

        qpci_io_writel(c.f.dev, c.f.dev->msix_table_bar,
                       entry + PCI_MSIX_ENTRY_LOWER_ADDR, GUEST_MSI + 4 * v);
        qpci_io_writel(c.f.dev, c.f.dev->msix_table_bar,
                       entry + PCI_MSIX_ENTRY_UPPER_ADDR, 0);
        qpci_io_writel(c.f.dev, c.f.dev->msix_table_bar,
                       entry + PCI_MSIX_ENTRY_DATA, 0x1000 + v);
        qpci_io_writel(c.f.dev, c.f.dev->msix_table_bar,
                       entry + PCI_MSIX_ENTRY_VECTOR_CTRL, 0);
        qtest_writel(c.f.qts, GUEST_MSI + 4 * v, 0);
    }
    /* The server signals each vector's eventfd: none may be missing. */
    for (unsigned v = 0; v < nvec; v++) {
        vu_fixture_bar0_writel(&c.f, VU_TEST_REG_IRQ_RAISE, v);
        g_assert(vu_fixture_wait_guest_u32(c.f.qts, GUEST_MSI + 4 * v,
                                           0x1000 + v));
    }

    /*
     * The SET_IRQS that gave them: MSI-X trigger eventfds, one fd per
     * vector of the range, all accepted, covering every vector.  With
     * NORESIZE each time all vectors in use are set from 0, in as many
     * messages as the fds need (each one going on where the last ended),
     * the last time all of them; without, vectors are added one by one.
     */
    sets = vu_test_server_set_irqs(c.f.srv);
    for (guint i = 0; i < sets->len; i++) {
        VUTestSetIrqsRecord *s = &g_array_index(sets, VUTestSetIrqsRecord, i);

        if (s->index != VFIO_PCI_MSIX_IRQ_INDEX || !s->nfds) {
            continue;
        }
        g_assert_cmpint(s->err, ==, 0);
        g_assert_cmphex(s->flags, ==,
                        VFIO_IRQ_SET_DATA_EVENTFD |
                        VFIO_IRQ_SET_ACTION_TRIGGER);
        g_assert_cmpuint(s->nfds, ==, s->count);
        g_assert_cmpuint(s->start + s->count, <=, nvec);
        for (unsigned v = s->start; v < s->start + s->count; v++) {
            has_fd[v] = true;
        }
        if (noresize && s->start) {
            g_assert_cmpuint(s->start, ==, last_end);
        }
        per_vector += s->start > 0 && s->count == 1;
        last_end = s->start + s->count;
    }
    for (unsigned v = 0; v < nvec; v++) {
        g_assert(has_fd[v]);
    }
    if (noresize) {
        g_assert_cmpuint(last_end, ==, nvec);
    } else {
        g_assert_cmpuint(per_vector, >, 0);
    }
    qpci_msix_disable(c.f.dev);
    vu_fixture_stop(&c.f);
}

static void test_msix_many(void)
{
    check_msix_many(false);
}

static void test_msix_many_noresize(void)
{
    check_msix_many(true);
}

/* INTx: raised by the server, seen at the IOAPIC, and again after EOI. */
static void test_intx(void)
{
    const int irq = 10;
    g_autoptr(GArray) sets = NULL;
    QPCIDevice *isa;
    TestCtx c = { 0 };
    bool unmasked = false;

    ctx_start(&c, NULL, NULL, NULL);
    /* Route every PIIX3 PIRQ to ISA IRQ 10, as firmware would. */
    isa = qpci_device_find(c.f.bus, QPCI_DEVFN(1, 0));
    g_assert(isa);
    for (int i = 0; i < 4; i++) {
        qpci_config_writeb(isa, 0x60 + i, irq);
    }
    g_free(isa);
    qtest_irq_intercept_in(c.f.qts, "ioapic");

    for (int round = 0; round < 2; round++) {
        vu_fixture_bar0_writel(&c.f, VU_TEST_REG_IRQ_RAISE, 0);
        g_assert(vu_fixture_wait_irq(c.f.qts, irq, true));
        /* The guest handles it: the BAR access ends the interrupt. */
        vu_fixture_bar0_writel(&c.f, VU_TEST_REG_IRQ_LOWER, 0);
        g_assert_cmpuint(vu_fixture_bar0_readl(&c.f,
                                               VU_TEST_REG_INTX_STATUS),
                         ==, 0);
        g_assert(vu_fixture_wait_irq(c.f.qts, irq, false));
    }

    sets = vu_test_server_set_irqs(c.f.srv);
    for (guint i = 0; i < sets->len; i++) {
        VUTestSetIrqsRecord *s = &g_array_index(sets, VUTestSetIrqsRecord, i);

        if (s->index == VFIO_PCI_INTX_IRQ_INDEX &&
            (s->flags & VFIO_IRQ_SET_ACTION_UNMASK)) {
            unmasked = true;
        }
    }
    g_assert(unmasked);
    vu_fixture_stop(&c.f);
}

static void test_reset(void)
{
    TestCtx c = { 0 };
    uint32_t before;
    QDict *resp;

    ctx_start(&c, NULL, NULL, NULL);
    before = vu_test_server_reg_read(c.f.srv, VU_TEST_REG_RESET_COUNT);
    g_assert_cmpuint(vu_fixture_bar0_readl(&c.f, VU_TEST_REG_RESET_COUNT), ==,
                     before);
    resp = qtest_qmp(c.f.qts, "{'execute': 'system_reset'}");
    g_assert(qdict_haskey(resp, "return"));
    qobject_unref(resp);
    qtest_qmp_eventwait(c.f.qts, "RESET");
    g_assert_cmpuint(vu_test_server_reg_read(c.f.srv, VU_TEST_REG_RESET_COUNT),
                     ==, before + 1);
    g_assert_cmpuint(vu_test_server_cmd_count(c.f.srv,
                                              VFIO_USER_DEVICE_RESET),
                     >=, 1);
    vu_fixture_stop(&c.f);
}

/*
 * Hot-plug, use, hot-unplug: every mapping is withdrawn from the server,
 * the connection closes, and QEMU holds no more fds than before.
 */
static void test_hotplug_unplug(void)
{
    g_autoptr(GArray) maps = NULL;
    g_autoptr(GArray) unmaps = NULL;
    TestCtx c = { 0 };
    unsigned fds_before;
    QDict *resp;

    vu_fixture_server(&c.f, "vfio-user-test", NULL);
    c.f.qts = qtest_initf("-machine pc -m %d " MEMFD_RAM, RAM_MB);
    fds_before = vu_fixture_qemu_fds(&c.f);

    resp = qtest_qmp(c.f.qts, "{'execute': 'device_add', 'arguments': {"
                     "'driver': 'vfio-user-pci', 'id': 'vu0', 'addr': '4.0',"
                     "'socket': {'type': 'unix', 'path': %s}}}", c.f.sock);
    g_assert(qdict_haskey(resp, "return"));
    qobject_unref(resp);
    vu_fixture_find_device(&c.f, DEVFN);
    g_assert_cmphex(vu_fixture_bar0_readl(&c.f, VU_TEST_REG_ID), ==,
                    VU_TEST_ID_MAGIC);
    g_assert_cmpuint(vu_fixture_qemu_fds(&c.f), >, fds_before);

    qpci_unplug_acpi_device_test(c.f.qts, "vu0", SLOT);
    g_assert(vu_test_server_wait_disconnected(c.f.srv, WAIT_MS));

    maps = vu_test_server_dma_maps(c.f.srv);
    unmaps = vu_test_server_dma_unmaps(c.f.srv);
    g_assert_cmpuint(maps->len, >, 0);
    g_assert_cmpuint(unmaps->len, ==, maps->len);
    g_assert_cmpuint(vu_fixture_qemu_fds(&c.f), ==, fds_before);

    /* Still alive and answering. */
    resp = qtest_qmp(c.f.qts, "{'execute': 'query-status'}");
    g_assert(qdict_haskey(resp, "return"));
    qobject_unref(resp);
    vu_fixture_stop(&c.f);
}

/*
 * The server dies at run time: QEMU stays up, says so with an event, and
 * the guest sees a failed device (all ones, writes dropped) at once.
 */
static void test_server_death(void)
{
    TestCtx c = { 0 };
    QPCIBar bar1;
    QDict *ev, *data, *resp;

    ctx_start(&c, NULL, NULL, NULL);
    bar1 = qpci_iomap(c.f.dev, 1, NULL);
    g_assert_cmphex(vu_fixture_bar0_readl(&c.f, VU_TEST_REG_ID), ==,
                    VU_TEST_ID_MAGIC);
    qpci_io_writel(c.f.dev, bar1, 0x100, 0x12345678);

    vu_test_server_disconnect(c.f.srv);
    ev = qtest_qmp_eventwait_ref(c.f.qts, "VFIO_USER_SERVER_LOST");
    data = qdict_get_qdict(ev, "data");
    g_assert_cmpstr(qdict_get_str(data, "device-id"), ==, "vu0");
    g_assert_cmpstr(qdict_get_str(data, "qom-path"), ==,
                    "/machine/peripheral/vu0");
    g_assert(strstr(qdict_get_str(data, "reason"), "closed"));
    qobject_unref(ev);

    g_assert_cmphex(vu_fixture_bar0_readl(&c.f, VU_TEST_REG_ID), ==,
                    0xffffffff);
    vu_fixture_bar0_writel(&c.f, VU_TEST_REG_SCRATCH, 1);
    g_assert_cmphex(vu_fixture_bar0_readl(&c.f, VU_TEST_REG_SCRATCH), ==,
                    0xffffffff);
    /* The mmapped sparse area is no longer reachable either. */
    g_assert_cmphex(qpci_io_readl(c.f.dev, bar1, 0x100), ==, 0xffffffff);

    resp = qtest_qmp(c.f.qts, "{'execute': 'query-status'}");
    g_assert(qdict_haskey(resp, "return"));
    qobject_unref(resp);
    vu_fixture_stop(&c.f);
}

/* How many times @needle occurs in @hay */
static unsigned count_substr(const char *hay, const char *needle)
{
    unsigned n = 0;

    for (const char *p = strstr(hay, needle); p;
         p = strstr(p + strlen(needle), needle)) {
        n++;
    }
    return n;
}

/*
 * device_add of vu0 with @socket (JSON) to a socket nobody listens on:
 * realize fails with an error that names the device and the socket
 * exactly once each, and QEMU lives on.
 */
static void check_missing_socket(QTestState *qts, const char *path,
                                 QObject *socket)
{
    QDict *props = qdict_new();
    QDict *resp;
    const char *desc;

    qdict_put_str(props, "driver", "vfio-user-pci");
    qdict_put_str(props, "id", "vu0");
    if (socket) {
        qdict_put_obj(props, "socket", socket);
    }
    resp = qtest_qmp(qts, "{'execute': 'device_add', 'arguments': %p}",
                     props);
    g_assert(qdict_haskey(resp, "error"));
    desc = qdict_get_str(qdict_get_qdict(resp, "error"), "desc");
    g_test_message("device_add: %s", desc);
    g_assert_cmpuint(count_substr(desc, path), ==, 1);
    g_assert_cmpuint(count_substr(desc, "vfio-user-pci 'vu0'"), ==, 1);
    g_assert(strstr(desc, "Failed to connect"));
    qobject_unref(resp);

    resp = qtest_qmp(qts, "{'execute': 'query-status'}");
    g_assert(qdict_haskey(resp, "return"));
    qobject_unref(resp);
}

/*
 * A missing socket fails realize with an error naming it, whichever way
 * the socket was given: a SocketAddress, a plain path (what people copy
 * from usage lines), or a path through -global (a string, which once
 * crashed QEMU).
 */
static void test_missing_socket(void)
{
    g_autofree char *path = g_strdup_printf("%s/vfio-user-missing-%d.sock",
                                            g_get_tmp_dir(), getpid());
    QTestState *qts = qtest_init("-machine pc");

    check_missing_socket(qts, path, qobject_from_jsonf_nofail(
                             "{'type': 'unix', 'path': %s}", path));
    check_missing_socket(qts, path, QOBJECT(qstring_from_str(path)));
    qtest_quit(qts);

    qts = qtest_initf("-machine pc -global vfio-user-pci.socket=%s", path);
    check_missing_socket(qts, path, NULL);
    qtest_quit(qts);
}

/* device_add with @props (JSON, taken) fails, and the error names @culprit */
static void check_realize_refused(QDict *props, const char *culprit)
{
    TestCtx c = { 0 };
    QDict *resp;
    const char *desc;

    vu_fixture_server(&c.f, "vfio-user-test", NULL);
    c.f.qts = qtest_initf("-machine pc -m %d", RAM_MB);
    qdict_put_str(props, "driver", "vfio-user-pci");
    qdict_put_str(props, "id", "vu0");
    qdict_put(props, "socket", qdict_from_jsonf_nofail(
                  "{'type': 'unix', 'path': %s}", c.f.sock));
    resp = qtest_qmp(c.f.qts, "{'execute': 'device_add', 'arguments': %p}",
                     props);
    g_assert(qdict_haskey(resp, "error"));
    desc = qdict_get_str(qdict_get_qdict(resp, "error"), "desc");
    g_assert(strstr(desc, culprit));
    qobject_unref(resp);
    vu_fixture_stop(&c.f);
}

/* x-msg-timeout=0 is refused: it would mean no timeout on the socket. */
static void test_zero_timeout(void)
{
    check_realize_refused(qdict_from_jsonf_nofail("{'x-msg-timeout': 0}"),
                          "x-msg-timeout");
}

/* Busy-polling for more than a millisecond is refused. */
static void test_poll_too_long(void)
{
    check_realize_refused(qdict_from_jsonf_nofail(
                              "{'x-poll-max-ns': 1000001}"),
                          "x-poll-max-ns");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qtest_add_func("/vfio-user/realize/missing-socket", test_missing_socket);
    qtest_add_func("/vfio-user/realize/zero-timeout", test_zero_timeout);
    qtest_add_func("/vfio-user/realize/poll-too-long", test_poll_too_long);
    qtest_add_func("/vfio-user/enumerate", test_enumerate);
    qtest_add_func("/vfio-user/id-override", test_id_override);
    qtest_add_func("/vfio-user/json-device", test_json_device);
    qtest_add_func("/vfio-user/socket-fd", test_socket_fd);
    qtest_add_func("/vfio-user/config-space", test_config_space);
    qtest_add_func("/vfio-user/bar/message-posted", test_bar_message_posted);
    qtest_add_func("/vfio-user/bar/message-nonposted",
                   test_bar_message_nonposted);
    qtest_add_func("/vfio-user/bar/busy-poll-window-widens",
                   test_busy_poll_window_widens);
    qtest_add_func("/vfio-user/bar/busy-poll-slow-server",
                   test_busy_poll_slow_server);
    qtest_add_func("/vfio-user/bar/mmap", test_bar_mmap);
    qtest_add_func("/vfio-user/bar/no-region-fd", test_bar_no_fd);
    qtest_add_func("/vfio-user/bar/secure-sealed-fd-mapped",
                   test_bar_secure_sealed);
    qtest_add_func("/vfio-user/bar/secure-unsealed-fd-by-message",
                   test_bar_secure_unsealed);
    qtest_add_func("/vfio-user/dma/memfd", test_dma_memfd);
    qtest_add_func("/vfio-user/dma/plain-ram", test_dma_plain_ram);
    qtest_add_func("/vfio-user/dma/secure", test_dma_secure);
    qtest_add_func("/vfio-user/irq/msix", test_msix);
    qtest_add_func("/vfio-user/irq/msix-many", test_msix_many);
    qtest_add_func("/vfio-user/irq/msix-many-noresize",
                   test_msix_many_noresize);
    qtest_add_func("/vfio-user/irq/intx", test_intx);
    qtest_add_func("/vfio-user/reset", test_reset);
    qtest_add_func("/vfio-user/hotplug-unplug", test_hotplug_unplug);
    qtest_add_func("/vfio-user/server-death", test_server_death);
    return g_test_run();
}
