/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qtests for vfio-user-pci against libvfio-user, a server library none of
 * us wrote: its samples, and a small libvfio-user device of ours that does
 * DMA on command (tests/vfio-user-dma-device).
 *
 * $VFIO_USER_SAMPLES names the directory holding the gpio-pci-idio-16,
 * server and dma-device binaries (scripts/build-libvfio-user.sh builds
 * them); without it the tests are skipped.  make check runs this twice:
 * with the library from the tree our series patches (it changes where
 * libvfio-user's DMA_READ/WRITE go and how many DMA mappings it takes),
 * and with the library exactly as QEMU 10.0's tarball ships it, with
 * $VFIO_USER_PRISTINE=1: there the cases that need our fixes are
 * skipped, each saying which.  Each test
 * runs its server in a fresh temporary directory and kills it at the
 * end, or when the test aborts.
 */

#include "qemu/osdep.h"
#include <sys/wait.h>
#ifdef CONFIG_LINUX
#include <sys/prctl.h>
#endif
#include "libqtest.h"
#include "libqos/pci-pc.h"
#include "hw/pci/pci_regs.h"
#include "qobject/qdict.h"

#define PEER_START_TIMEOUT_MS   10000
#define PEER_EXIT_TIMEOUT_MS    10000
#define DEVFN                   QPCI_DEVFN(4, 0)

/* gpio-pci-idio-16: BAR2, 256 bytes of I/O space: an IDIO-16's registers */
#define GPIO_VENDOR_ID          0x494f
#define GPIO_DEVICE_ID          0x0dc8
#define GPIO_BAR                2
#define GPIO_BAR_SIZE           0x100
#define GPIO_OUT0_7             0
#define GPIO_IN0_7              1
#define GPIO_OUT8_15            4
#define GPIO_IN8_15             5
#define GPIO_IRQ_STATUS         6

/* dma-device (tests/vfio-user-dma-device/dma-device.c) */
#define DMA_VENDOR_ID           0x1234
#define DMA_DEVICE_ID           0x11e9
#define DMA_REG_ID              0x00
#define DMA_REG_ADDR            0x08
#define DMA_REG_LEN             0x10
#define DMA_REG_BUF_OFFSET      0x14
#define DMA_REG_CMD             0x18
#define DMA_REG_STATUS          0x1c
#define DMA_REG_DONE            0x20
#define DMA_REG_MSG_BYTES       0x24
#define DMA_REG_MAP_BYTES       0x28
#define DMA_REG_NR_REGIONS      0x2c
#define DMA_REG_NR_MAPPED       0x30
#define DMA_REG_QUERY_ADDR      0x40
#define DMA_REG_QUERY_BASE      0x48
#define DMA_REG_QUERY_SIZE      0x50
#define DMA_REG_FEATURES        0x58
#define DMA_FEAT_MSG_OFFSET     1   /* DMA by message inside a region */
#define DMA_FEAT_SGL_MANY       2   /* DMA_CMD_PAGES_REVERSED */
#define DMA_ID_MAGIC            0x444d4131
#define DMA_CMD_TO_DEVICE       1
#define DMA_CMD_TO_GUEST        2
#define DMA_CMD_PAGES_REVERSED  3   /* one vfu_sgl_read(), last page first */
#define DMA_BUF_SIZE            0x10000
#define DMA_GUEST_ADDR          0x1000000   /* 16 MiB, in guest RAM */

/* A server process, in its own temporary directory */
typedef struct Peer {
    char *name;
    char *dir;
    char *sock;
    GPid pid;
    bool reaped;
    int status;
} Peer;

/* The samples are built from libvfio-user as the tarball ships it */
static bool pristine_samples(void)
{
    const char *v = g_getenv("VFIO_USER_PRISTINE");

    return v && !strcmp(v, "1");
}

static const char *samples_dir(void)
{
    const char *dir = g_getenv("VFIO_USER_SAMPLES");

    if (!dir || !*dir) {
        g_test_skip("VFIO_USER_SAMPLES is not set: it names the directory "
                    "of the libvfio-user samples (make libvfio-user)");
        return NULL;
    }
    return dir;
}

/* Runs in the child: do not outlive the test, whatever happens to it */
static void peer_child_setup(gpointer opaque)
{
#ifdef CONFIG_LINUX
    prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
}

/*
 * From the SIGABRT handler of libqtest (a failed assertion): only
 * async-signal-safe calls here.
 */
static void peer_abort_hook(void *opaque)
{
    Peer *p = opaque;

    if (!p->reaped) {
        kill(p->pid, SIGKILL);
    }
    unlink(p->sock);
    rmdir(p->dir);
}

static bool peer_try_reap(Peer *p)
{
    if (!p->reaped) {
        pid_t r = waitpid(p->pid, &p->status, WNOHANG);

        if (r == p->pid || (r < 0 && errno == ECHILD)) {
            p->reaped = true;
            g_spawn_close_pid(p->pid);
        }
    }
    return p->reaped;
}

/* Wait up to @timeout_ms for the server to exit by itself */
static bool peer_wait_exit(Peer *p, unsigned timeout_ms)
{
    gint64 deadline = g_get_monotonic_time() + timeout_ms * 1000LL;

    while (!peer_try_reap(p)) {
        if (g_get_monotonic_time() > deadline) {
            return false;
        }
        g_usleep(10 * 1000);
    }
    return true;
}

static void peer_free(Peer *p)
{
    if (!peer_try_reap(p)) {
        kill(p->pid, SIGTERM);
        if (!peer_wait_exit(p, 2000)) {
            kill(p->pid, SIGKILL);
            peer_wait_exit(p, PEER_EXIT_TIMEOUT_MS);
        }
    }
    qtest_remove_abrt_handler(p);
    unlink(p->sock);
    rmdir(p->dir);
    g_free(p->name);
    g_free(p->dir);
    g_free(p->sock);
    g_free(p);
}

/*
 * Start sample @name of $VFIO_USER_SAMPLES on a socket in a new temporary
 * directory and wait until it listens.  It is killed when the test ends.
 * Returns NULL if the test is skipped.
 */
static Peer *peer_start(const char *name)
{
    const char *dir = samples_dir();
    g_autofree char *bin = NULL;
    g_autoptr(GError) err = NULL;
    gint64 deadline;
    char *argv[3];
    Peer *p;

    if (!dir) {
        return NULL;
    }
    bin = g_build_filename(dir, name, NULL);
    if (!g_file_test(bin, G_FILE_TEST_IS_EXECUTABLE)) {
        g_error("%s: no such executable (VFIO_USER_SAMPLES=%s)", bin, dir);
    }

    p = g_new0(Peer, 1);
    p->name = g_strdup(name);
    p->dir = g_dir_make_tmp("vfio-user-interop-XXXXXX", &err);
    g_assert_no_error(err);
    p->sock = g_build_filename(p->dir, "sock", NULL);

    argv[0] = bin;
    argv[1] = p->sock;
    argv[2] = NULL;
    g_spawn_async(NULL, argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD,
                  peer_child_setup, NULL, &p->pid, &err);
    g_assert_no_error(err);
    qtest_add_abrt_handler(peer_abort_hook, p);
    g_test_queue_destroy((GDestroyNotify)peer_free, p);

    deadline = g_get_monotonic_time() + PEER_START_TIMEOUT_MS * 1000LL;
    while (!g_file_test(p->sock, G_FILE_TEST_EXISTS)) {
        if (peer_try_reap(p)) {
            g_error("%s exited before listening (status 0x%x)", name,
                    p->status);
        }
        if (g_get_monotonic_time() > deadline) {
            g_error("%s: no socket %s after %d ms", name, p->sock,
                    PEER_START_TIMEOUT_MS);
        }
        g_usleep(10 * 1000);
    }
    return p;
}

static QTestState *qemu_start(Peer *p, const char *extra, const char *opts)
{
    return qtest_initf("-machine pc %s "
                       "-device vfio-user-pci,id=vu0,socket.type=unix,"
                       "socket.path=%s,addr=04.0%s",
                       extra, p->sock, opts);
}

static QPCIDevice *find_device(QPCIBus *bus, uint16_t vendor_id,
                               uint16_t device_id)
{
    QPCIDevice *dev = qpci_device_find(bus, DEVFN);

    g_assert(dev);
    g_assert_cmphex(qpci_config_readw(dev, PCI_VENDOR_ID), ==, vendor_id);
    g_assert_cmphex(qpci_config_readw(dev, PCI_DEVICE_ID), ==, device_id);
    qpci_device_enable(dev);
    return dev;
}

/*
 * gpio-pci-idio-16: its BAR2 is 256 bytes of I/O space; a read of offset
 * 0 returns a counter that advances every third read (pin++ / 3), writes
 * are accepted and ignored.
 */
static void test_gpio(void)
{
    Peer *p = peer_start("gpio-pci-idio-16");
    QTestState *qts;
    QPCIBus *bus;
    QPCIDevice *dev;
    QPCIBar bar;
    uint64_t size;
    uint8_t v[13];
    unsigned i, run = 0, runs = 0;
    /* As the tarball ships it, the sample counts at 0 and ignores writes */
    bool pristine = pristine_samples();
    unsigned in0_7 = pristine ? 0 : GPIO_IN0_7;

    if (!p) {
        return;
    }
    qts = qemu_start(p, "", "");
    bus = qpci_new_pc(qts, NULL);
    dev = find_device(bus, GPIO_VENDOR_ID, GPIO_DEVICE_ID);

    g_assert(qpci_config_readl(dev, PCI_BASE_ADDRESS_0 + 4 * GPIO_BAR) &
             PCI_BASE_ADDRESS_SPACE_IO);
    bar = qpci_iomap(dev, GPIO_BAR, &size);
    g_assert_cmphex(size, ==, GPIO_BAR_SIZE);

    /*
     * The registers of an ACCES PCI-IDIO-16 (Linux's gpio-pci-idio-16):
     * inputs 0-7 are the sample's counter.  Each value comes three reads
     * in a row, then the next one: a read that did not reach the server
     * (cached, dropped, merged) shows as a longer run, a duplicated one as
     * a shorter run.
     */
    for (i = 0; i < 7; i++) {
        v[i] = qpci_io_readb(dev, bar, in0_7);
    }
    if (pristine) {
        /* Writes in between must not disturb the count */
        qpci_io_writeb(dev, bar, 0, 0xa5);
        qpci_io_writeb(dev, bar, 1, 0x5a);
        qpci_io_writew(dev, bar, 0, 0xffff);
    } else {
        /*
         * Nor other accesses: the outputs (0, 4) read back what was
         * written, and the word write at 0 also writes inputs 0-7, which
         * the device ignores (Linux writes it to clear an interrupt).
         * Inputs 8-15 (the counter's next bits) and the interrupt status
         * read as 0.
         */
        qpci_io_writeb(dev, bar, GPIO_OUT0_7, 0xa5);
        qpci_io_writeb(dev, bar, GPIO_OUT8_15, 0x5a);
        g_assert_cmphex(qpci_io_readb(dev, bar, GPIO_OUT0_7), ==, 0xa5);
        g_assert_cmphex(qpci_io_readb(dev, bar, GPIO_OUT8_15), ==, 0x5a);
        qpci_io_writew(dev, bar, GPIO_OUT0_7, 0xffff);
        qpci_io_writeb(dev, bar, GPIO_OUT8_15, 0xc3);
        g_assert_cmphex(qpci_io_readb(dev, bar, GPIO_OUT0_7), ==, 0xff);
        g_assert_cmphex(qpci_io_readb(dev, bar, GPIO_OUT8_15), ==, 0xc3);
        g_assert_cmphex(qpci_io_readb(dev, bar, GPIO_IN8_15), ==, 0);
        g_assert_cmphex(qpci_io_readb(dev, bar, GPIO_IRQ_STATUS), ==, 0);
    }
    for (; i < ARRAY_SIZE(v); i++) {
        v[i] = qpci_io_readb(dev, bar, in0_7);
    }
    for (i = 1; i < ARRAY_SIZE(v); i++) {
        g_assert_cmpuint((uint8_t)(v[i] - v[i - 1]), <=, 1);
        if (v[i] != v[i - 1]) {
            if (run > 0) {
                g_assert_cmpuint(i - run, ==, 3);   /* a whole run */
            }
            run = i;
            runs++;
        }
    }
    g_assert_cmpuint(ARRAY_SIZE(v) - run, <=, 3);
    g_assert_cmpuint(runs, ==, 4);      /* 13 reads: 4 steps */

    qpci_iounmap(dev, bar);
    g_free(dev);
    qpci_free_pc(bus);
    qtest_quit(qts);
}

/*
 * libvfio-user's "server" sample declares BAR1 as 0x3000 bytes, which no
 * PCI BAR can be: device_add fails with an error naming the BAR, QEMU
 * lives on, and the connection is closed (the sample exits when its
 * client goes away).
 */
static void test_server_bad_bar(void)
{
    Peer *p = peer_start("server");
    QTestState *qts;
    QDict *resp;
    const char *desc;

    if (!p) {
        return;
    }
    qts = qtest_init("-machine pc");
    resp = qtest_qmp(qts, "{'execute': 'device_add', 'arguments': {"
                     "'driver': 'vfio-user-pci', 'id': 'vu0', 'addr': '04.0',"
                     "'socket': {'type': 'unix', 'path': %s}}}", p->sock);
    g_assert(qdict_haskey(resp, "error"));
    desc = qdict_get_str(qdict_get_qdict(resp, "error"), "desc");
    g_test_message("device_add: %s", desc);
    g_assert(strstr(desc, "BAR1"));
    g_assert(strstr(desc, "power of two"));
    qobject_unref(resp);

    resp = qtest_qmp(qts, "{'execute': 'query-status'}");
    g_assert(qdict_haskey(resp, "return"));
    g_assert_cmpstr(qdict_get_str(qdict_get_qdict(resp, "return"), "status"),
                    ==, "running");
    qobject_unref(resp);

    /* No half-made device is left behind */
    resp = qtest_qmp(qts, "{'execute': 'qom-list', 'arguments': {"
                     "'path': '/machine/peripheral/vu0'}}");
    g_assert(qdict_haskey(resp, "error"));
    qobject_unref(resp);

    g_assert(peer_wait_exit(p, PEER_EXIT_TIMEOUT_MS));
    qtest_quit(qts);
}

typedef struct DmaVariant {
    const char *extra;          /* machine options */
    const char *opts;           /* device options */
    bool mapped;                /* the server gets fds and maps guest RAM */
} DmaVariant;

static const DmaVariant dma_secure = {
    .extra = "",
    .opts = ",secure-dma=on",
};

/* Same, with guest RAM that has an fd: secure-dma must not pass it */
static const DmaVariant dma_secure_memfd = {
    .extra = "-m 256M -object memory-backend-memfd,id=mem,size=256M,share=on "
             "-machine memory-backend=mem",
    .opts = ",secure-dma=on",
};

/* Default guest RAM has no fd: DMA_MAP without one, DMA by messages */
static const DmaVariant dma_nofd = {
    .extra = "",
    .opts = ",secure-dma=off",
};

static const DmaVariant dma_memfd = {
    .extra = "-m 256M -object memory-backend-memfd,id=mem,size=256M,share=on "
             "-machine memory-backend=mem",
    .opts = ",secure-dma=off",
    .mapped = true,
};

typedef struct DmaTest {
    QTestState *qts;
    QPCIBus *bus;
    QPCIDevice *dev;
    QPCIBar regs;
    QPCIBar buf;
} DmaTest;

static uint32_t dma_reg(DmaTest *t, unsigned reg)
{
    return qpci_io_readl(t->dev, t->regs, reg);
}

static uint64_t dma_reg64(DmaTest *t, unsigned reg)
{
    return dma_reg(t, reg) | (uint64_t)dma_reg(t, reg + 4) << 32;
}

/* QEMU with the device of @p as @v says, its BARs mapped and checked */
static void dma_test_start(DmaTest *t, Peer *p, const DmaVariant *v)
{
    uint64_t size;

    t->qts = qemu_start(p, v->extra, v->opts);
    t->bus = qpci_new_pc(t->qts, NULL);
    t->dev = find_device(t->bus, DMA_VENDOR_ID, DMA_DEVICE_ID);
    t->regs = qpci_iomap(t->dev, 0, &size);
    g_assert_cmphex(size, ==, 0x1000);
    t->buf = qpci_iomap(t->dev, 1, &size);
    g_assert_cmphex(size, ==, DMA_BUF_SIZE);
    g_assert_cmphex(dma_reg(t, DMA_REG_ID), ==, DMA_ID_MAGIC);
}

static void dma_test_stop(DmaTest *t)
{
    qpci_iounmap(t->dev, t->regs);
    qpci_iounmap(t->dev, t->buf);
    g_free(t->dev);
    qpci_free_pc(t->bus);
    qtest_quit(t->qts);
}

/* Run one DMA; returns DMA_STATUS */
static uint32_t dma_run(DmaTest *t, uint32_t cmd, uint64_t addr, uint32_t len,
                        uint32_t buf_offset)
{
    uint32_t done = dma_reg(t, DMA_REG_DONE);
    uint32_t status;

    qpci_io_writel(t->dev, t->regs, DMA_REG_ADDR, addr);
    qpci_io_writel(t->dev, t->regs, DMA_REG_ADDR + 4, addr >> 32);
    qpci_io_writel(t->dev, t->regs, DMA_REG_LEN, len);
    qpci_io_writel(t->dev, t->regs, DMA_REG_BUF_OFFSET, buf_offset);
    qpci_io_writel(t->dev, t->regs, DMA_REG_CMD, cmd);
    status = dma_reg(t, DMA_REG_STATUS);
    g_assert_cmpuint(dma_reg(t, DMA_REG_DONE), ==, done + !status);
    return status;
}

static void fill_pattern(uint8_t *p, size_t len, uint32_t seed)
{
    size_t i;

    for (i = 0; i < len; i++) {
        seed = seed * 1103515245 + 12345;
        p[i] = seed >> 16;
    }
}

/*
 * Move @len bytes guest -> device -> guest, each with its own pattern,
 * and check that the bytes took the path the variant calls for.
 */
static void dma_roundtrip(DmaTest *t, const DmaVariant *v, uint64_t addr,
                          uint32_t len, uint32_t buf_offset, uint32_t seed)
{
    g_autofree uint8_t *a = g_malloc(len);
    g_autofree uint8_t *b = g_malloc(len);
    g_autofree uint8_t *got = g_malloc(len);
    uint32_t msg_bytes = dma_reg(t, DMA_REG_MSG_BYTES);
    uint32_t map_bytes = dma_reg(t, DMA_REG_MAP_BYTES);

    g_test_message("DMA of 0x%x bytes at 0x%" PRIx64 ", buffer offset 0x%x",
                   len, addr, buf_offset);

    /* Guest to device, read back through BAR1 */
    fill_pattern(a, len, seed);
    qtest_memwrite(t->qts, addr, a, len);
    memset(got, 0, len);
    qpci_memwrite(t->dev, t->buf, buf_offset, got, len);
    g_assert_cmpuint(dma_run(t, DMA_CMD_TO_DEVICE, addr, len, buf_offset),
                     ==, 0);
    qpci_memread(t->dev, t->buf, buf_offset, got, len);
    g_assert(memcmp(got, a, len) == 0);

    /* Device to guest, the buffer written through BAR1 */
    fill_pattern(b, len, ~seed);
    qpci_memwrite(t->dev, t->buf, buf_offset, b, len);
    qtest_memset(t->qts, addr, 0, len);
    g_assert_cmpuint(dma_run(t, DMA_CMD_TO_GUEST, addr, len, buf_offset),
                     ==, 0);
    qtest_memread(t->qts, addr, got, len);
    g_assert(memcmp(got, b, len) == 0);

    /* The bytes went through the mapping, or as DMA_READ/WRITE messages */
    if (v->mapped) {
        g_assert_cmpuint(dma_reg(t, DMA_REG_MAP_BYTES), ==,
                         map_bytes + 2 * len);
        g_assert_cmpuint(dma_reg(t, DMA_REG_MSG_BYTES), ==, msg_bytes);
    } else {
        g_assert_cmpuint(dma_reg(t, DMA_REG_MSG_BYTES), ==,
                         msg_bytes + 2 * len);
        g_assert_cmpuint(dma_reg(t, DMA_REG_MAP_BYTES), ==, map_bytes);
    }
}

static void test_dma(const void *opaque)
{
    const DmaVariant *v = opaque;
    Peer *p = peer_start("dma-device");
    DmaTest t;
    uint64_t base, addr;

    if (!p) {
        return;
    }
    dma_test_start(&t, p, v);

    /*
     * Guest RAM reached the server as DMA_MAPs, with its fd only where
     * RAM has one and secure-dma is off.
     */
    g_assert_cmpuint(dma_reg(&t, DMA_REG_NR_REGIONS), >, 0);
    if (v->mapped) {
        g_assert_cmpuint(dma_reg(&t, DMA_REG_NR_MAPPED), >, 0);
    } else {
        g_assert_cmpuint(dma_reg(&t, DMA_REG_NR_MAPPED), ==, 0);
    }

    /*
     * The libvfio-user of QEMU 10.0's tarball has vfu_sgl_read/write
     * reach only the start of a DMA region (dma-device.c says why): DMA
     * by message starts where the DMA_MAP covering our address starts.
     */
    qpci_io_writel(t.dev, t.regs, DMA_REG_QUERY_ADDR, DMA_GUEST_ADDR);
    qpci_io_writel(t.dev, t.regs, DMA_REG_QUERY_ADDR + 4, 0);
    base = dma_reg64(&t, DMA_REG_QUERY_BASE);
    g_assert_cmphex(base, <=, DMA_GUEST_ADDR);
    g_assert_cmphex(dma_reg64(&t, DMA_REG_QUERY_SIZE), >=,
                    DMA_GUEST_ADDR - base + DMA_BUF_SIZE + 0x10000);
    addr = v->mapped ? DMA_GUEST_ADDR : base;

    dma_roundtrip(&t, v, addr, 0x1000, 0, 1);
    dma_roundtrip(&t, v, addr, DMA_BUF_SIZE, 0, 2);
    /* Odd length and buffer offset; with a mapping, an odd address too */
    dma_roundtrip(&t, v, addr + (v->mapped ? 0x2345 : 0), 0x1234, 0x21, 3);

    /*
     * An address no DMA_MAP covers fails in the server (the library finds
     * no region), and the device reports it: DMA_STATUS is not
     * unconditionally 0.
     */
    g_assert_cmpuint(dma_run(&t, DMA_CMD_TO_DEVICE, 1ULL << 44, 0x1000, 0),
                     !=, 0);

    dma_test_stop(&t);

    /* QEMU closed the connection: the device exits, successfully */
    g_assert(peer_wait_exit(p, PEER_EXIT_TIMEOUT_MS));
    g_assert(WIFEXITED(p->status));
    g_assert_cmpint(WEXITSTATUS(p->status), ==, 0);
}

/*
 * DMA by message (no fd) inside a DMA region, not at its start, both
 * ways: each DMA_READ/WRITE must carry the address asked for, so the
 * bytes land there and the region's start is left alone.  The tarball's
 * libvfio-user sends the region's start instead (see dma-device.c);
 * our series fixes QEMU's copy, so against the library as shipped this
 * case is skipped.
 */
static void test_dma_offset(const void *opaque)
{
    const DmaVariant *v = opaque;
    Peer *p = peer_start("dma-device");
    g_autofree uint8_t *guard = g_malloc(0x2000);
    g_autofree uint8_t *got = g_malloc(0x2000);
    DmaTest t;
    uint64_t base;
    uint32_t features;

    if (!p) {
        return;
    }
    g_assert(!v->mapped);
    dma_test_start(&t, p, v);
    g_assert_cmpuint(dma_reg(&t, DMA_REG_NR_MAPPED), ==, 0);

    /* The device was built for the library it runs on: no silent skip */
    features = dma_reg(&t, DMA_REG_FEATURES);
    if (pristine_samples()) {
        g_assert_cmphex(features & DMA_FEAT_MSG_OFFSET, ==, 0);
        g_test_skip("libvfio-user as shipped DMAs by message only at the "
                    "start of a region: needs the series' fix to "
                    "vfu_dma_transfer()");
        goto out;
    }
    g_assert_cmphex(features & DMA_FEAT_MSG_OFFSET, ==, DMA_FEAT_MSG_OFFSET);

    qpci_io_writel(t.dev, t.regs, DMA_REG_QUERY_ADDR, DMA_GUEST_ADDR);
    qpci_io_writel(t.dev, t.regs, DMA_REG_QUERY_ADDR + 4, 0);
    base = dma_reg64(&t, DMA_REG_QUERY_BASE);
    g_assert_cmphex(DMA_GUEST_ADDR - base, >=, 0x2000);
    g_assert_cmphex(dma_reg64(&t, DMA_REG_QUERY_SIZE), >=,
                    DMA_GUEST_ADDR - base + 0x10000);
    fill_pattern(guard, 0x2000, 0x600d);
    qtest_memwrite(t.qts, base, guard, 0x2000);

    /* Page-aligned inside the region; then odd address, length, offset */
    dma_roundtrip(&t, v, DMA_GUEST_ADDR, 0x1000, 0, 4);
    dma_roundtrip(&t, v, DMA_GUEST_ADDR + 0x2345, 0x1234, 0x21, 5);

    qtest_memread(t.qts, base, got, 0x2000);
    g_assert(memcmp(got, guard, 0x2000) == 0);

out:
    dma_test_stop(&t);
    g_assert(peer_wait_exit(p, PEER_EXIT_TIMEOUT_MS));
}

/*
 * A burst: the device reads 16 guest pages with one vfu_sgl_read() of 16
 * entries, last page first, so their DMA_READs go out together and the
 * replies stream back (the series' libvfio-user reads many per
 * recvmsg()).  Each reply must land in its own entry's place, and the
 * connection must stay in step for the DMA that follows.
 */
static void test_dma_burst(const void *opaque)
{
    const DmaVariant *v = opaque;
    Peer *p = peer_start("dma-device");
    const uint32_t page = 0x1000, n = DMA_BUF_SIZE / page;
    g_autofree uint8_t *a = g_malloc(DMA_BUF_SIZE);
    g_autofree uint8_t *got = g_malloc(DMA_BUF_SIZE);
    uint32_t msg_bytes;
    DmaTest t;

    if (!p) {
        return;
    }
    dma_test_start(&t, p, v);
    if (pristine_samples()) {
        g_assert_cmphex(dma_reg(&t, DMA_REG_FEATURES) & DMA_FEAT_SGL_MANY,
                        ==, 0);
        g_test_skip("libvfio-user as shipped reads one entry per "
                    "vfu_sgl_read()");
        goto out;
    }
    g_assert_cmphex(dma_reg(&t, DMA_REG_FEATURES) & DMA_FEAT_SGL_MANY, ==,
                    DMA_FEAT_SGL_MANY);

    fill_pattern(a, DMA_BUF_SIZE, 0xb0057);
    qtest_memwrite(t.qts, DMA_GUEST_ADDR, a, DMA_BUF_SIZE);
    memset(got, 0, DMA_BUF_SIZE);
    qpci_memwrite(t.dev, t.buf, 0, got, DMA_BUF_SIZE);
    msg_bytes = dma_reg(&t, DMA_REG_MSG_BYTES);
    g_assert_cmpuint(dma_run(&t, DMA_CMD_PAGES_REVERSED, DMA_GUEST_ADDR,
                             DMA_BUF_SIZE, 0), ==, 0);
    g_assert_cmpuint(dma_reg(&t, DMA_REG_MSG_BYTES), ==,
                     msg_bytes + DMA_BUF_SIZE);
    qpci_memread(t.dev, t.buf, 0, got, DMA_BUF_SIZE);
    for (uint32_t i = 0; i < n; i++) {
        g_assert(memcmp(got + i * page, a + (n - 1 - i) * page, page) == 0);
    }

    /* Three pages into the middle of the buffer; then a single DMA */
    g_assert_cmpuint(dma_run(&t, DMA_CMD_PAGES_REVERSED, DMA_GUEST_ADDR,
                             3 * page, 5 * page), ==, 0);
    qpci_memread(t.dev, t.buf, 5 * page, got, 3 * page);
    for (uint32_t i = 0; i < 3; i++) {
        g_assert(memcmp(got + i * page, a + (2 - i) * page, page) == 0);
    }
    dma_roundtrip(&t, v, DMA_GUEST_ADDR, page, 0, 6);

out:
    dma_test_stop(&t);
    g_assert(peer_wait_exit(p, PEER_EXIT_TIMEOUT_MS));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qtest_add_func("/vfio-user-interop/gpio-pci-idio-16", test_gpio);
    qtest_add_func("/vfio-user-interop/server/bar-not-power-of-two",
                   test_server_bad_bar);
    qtest_add_data_func("/vfio-user-interop/dma/secure", &dma_secure,
                        test_dma);
    qtest_add_data_func("/vfio-user-interop/dma/secure-burst", &dma_secure,
                        test_dma_burst);
    qtest_add_data_func("/vfio-user-interop/dma/secure-memfd",
                        &dma_secure_memfd, test_dma);
    qtest_add_data_func("/vfio-user-interop/dma/no-fd", &dma_nofd, test_dma);
    qtest_add_data_func("/vfio-user-interop/dma/memfd", &dma_memfd, test_dma);
    qtest_add_data_func("/vfio-user-interop/dma/secure-at-offset",
                        &dma_secure, test_dma_offset);
    qtest_add_data_func("/vfio-user-interop/dma/no-fd-at-offset", &dma_nofd,
                        test_dma_offset);
    return g_test_run();
}
