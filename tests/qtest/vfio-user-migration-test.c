/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qtests for the live migration of a vfio-user-pci device: two QEMUs,
 * each with its own test server, and a migration from one to the other.
 *
 * The device's state (BAR0's scratch register and 32 KiB buffer) must
 * arrive; pages the server writes into guest memory while pre-copy runs
 * must arrive too, tracked by the client under secure-dma and by the
 * server's DMA logging otherwise; and whatever fails (a refused state
 * change, a server that dies, a destination that rejects the data, a
 * cancel, a malformed answer) fails the migration and leaves the source
 * running with a working device.
 */

#include "qemu/osdep.h"
#include "libqtest.h"
#include "libqos/pci.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"
#include "qemu/atomic.h"
#include "qemu/units.h"
#include "vfio-user-server.h"
#include "vfio-user-fixture.h"

#define RAM_MB          256
/* Guest pages the device writes while pre-copy runs: its whole buffer */
#define DIRTY_GPA       0x1000000
#define DIRTY_PAGES     (VU_TEST_BUF_SIZE / PAGE)
#define PAGE            4096
#define WAIT_MS         30000
#define SCRATCH_VALUE   0x5eedf00d

#define RETURN_PATH_ON  "{'execute': 'migrate-set-capabilities'," \
                        " 'arguments': {'capabilities': [" \
                        "   {'capability': 'return-path', 'state': true}]}}"

typedef enum HookAction {
    HOOK_NONE,
    HOOK_REFUSE_STATE,          /* error reply to a change to @state */
    HOOK_DIE_ON_DATA_READ,      /* close the connection at MIG_DATA_READ */
    HOOK_REFUSE_DATA_WRITE,     /* error reply to MIG_DATA_WRITE */
    HOOK_LONG_DATA_READ,        /* a MIG_DATA_READ reply longer than asked */
    HOOK_WRONG_STATE,           /* a state change answered with another */
    HOOK_SHORT_FLAGS,           /* migration flags in 4 bytes, not 8 */
    HOOK_BAD_REPORT,            /* a DMA log report for another range */
    HOOK_NO_DATA_SIZE,          /* MIG_DATA_SIZE refused, as most servers do */
} HookAction;

typedef struct Hook {
    HookAction action;
    uint32_t state;
    bool refuse_reset;          /* error reply to DEVICE_RESET too */
    int hits;                   /* atomic */
} Hook;

typedef struct MigCtx {
    VUFixture src;
    VUFixture dst;
    Hook src_hook;
    Hook dst_hook;
    char *uri;
    char *mig_path;
} MigCtx;

static void put_error(GByteArray *out, const VUTestMsg *msg, int err)
{
    VFIOUserHdr hdr = {
        .id = msg->hdr.id, .command = msg->hdr.command,
        .size = sizeof(hdr), .flags = VFIO_USER_REPLY | VFIO_USER_ERROR,
        .error_reply = err,
    };

    g_byte_array_append(out, (uint8_t *)&hdr, sizeof(hdr));
}

static void put_reply(GByteArray *out, const VUTestMsg *msg, const void *p,
                      size_t len)
{
    VFIOUserHdr hdr = {
        .id = msg->hdr.id, .command = msg->hdr.command,
        .size = sizeof(hdr) + len, .flags = VFIO_USER_REPLY,
    };

    g_byte_array_append(out, (uint8_t *)&hdr, sizeof(hdr));
    g_byte_array_append(out, p, len);
}

/* The state a DEVICE_FEATURE request asks the device to go to, or -1 */
static int64_t requested_state(const VUTestMsg *msg)
{
    const VFIOUserDeviceFeature *f = (const void *)msg->payload;
    const VFIOUserMigState *st;

    if (msg->hdr.command != VFIO_USER_DEVICE_FEATURE ||
        msg->payload_size < sizeof(*f) + sizeof(*st) ||
        f->flags != (VFIO_DEVICE_FEATURE_SET |
                     VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE)) {
        return -1;
    }
    st = (const void *)f->data;
    return st->device_state;
}

static VUTestHookAction mig_hook(VUTestServer *s, const VUTestMsg *msg,
                                 GByteArray *reply, void *opaque)
{
    Hook *h = opaque;

    if (qatomic_read(&h->refuse_reset) &&
        msg->hdr.command == VFIO_USER_DEVICE_RESET) {
        put_error(reply, msg, EIO);
        return VU_TEST_HOOK_REPLACE;
    }
    switch (h->action) {
    case HOOK_REFUSE_STATE:
        if (requested_state(msg) == h->state) {
            qatomic_inc(&h->hits);
            put_error(reply, msg, EIO);
            return VU_TEST_HOOK_REPLACE;
        }
        break;
    case HOOK_WRONG_STATE:
        if (requested_state(msg) == h->state) {
            uint8_t p[sizeof(VFIOUserDeviceFeature) + sizeof(VFIOUserMigState)];
            VFIOUserMigState st = {
                .device_state = VFIO_DEVICE_STATE_RUNNING,
                .data_fd = UINT32_MAX,
            };

            qatomic_inc(&h->hits);
            memcpy(p, msg->payload, sizeof(VFIOUserDeviceFeature));
            memcpy(p + sizeof(VFIOUserDeviceFeature), &st, sizeof(st));
            put_reply(reply, msg, p, sizeof(p));
            return VU_TEST_HOOK_REPLACE;
        }
        break;
    case HOOK_DIE_ON_DATA_READ:
        if (msg->hdr.command == VFIO_USER_MIG_DATA_READ &&
            vu_test_server_mig_state(s) == VFIO_DEVICE_STATE_STOP_COPY) {
            qatomic_inc(&h->hits);
            return VU_TEST_HOOK_DISCONNECT;
        }
        break;
    case HOOK_REFUSE_DATA_WRITE:
        if (msg->hdr.command == VFIO_USER_MIG_DATA_WRITE) {
            qatomic_inc(&h->hits);
            put_error(reply, msg, EINVAL);
            return VU_TEST_HOOK_REPLACE;
        }
        break;
    case HOOK_LONG_DATA_READ:
        if (msg->hdr.command == VFIO_USER_MIG_DATA_READ &&
            msg->payload_size >= sizeof(VFIOUserMigDataHdr)) {
            const VFIOUserMigDataHdr *req = (const void *)msg->payload;
            size_t n = (size_t)req->size + 16;
            g_autofree uint8_t *p = g_malloc0(sizeof(*req) + n);
            VFIOUserMigDataHdr r = { .argsz = sizeof(r) + n, .size = n };

            qatomic_inc(&h->hits);
            memcpy(p, &r, sizeof(r));
            put_reply(reply, msg, p, sizeof(r) + n);
            return VU_TEST_HOOK_REPLACE;
        }
        break;
    case HOOK_SHORT_FLAGS:
        if (msg->hdr.command == VFIO_USER_DEVICE_FEATURE &&
            msg->payload_size >= sizeof(VFIOUserDeviceFeature) &&
            ((const VFIOUserDeviceFeature *)msg->payload)->flags ==
            (VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIGRATION)) {
            uint8_t p[sizeof(VFIOUserDeviceFeature) + 4] = { };

            qatomic_inc(&h->hits);
            memcpy(p, msg->payload, sizeof(VFIOUserDeviceFeature));
            p[sizeof(VFIOUserDeviceFeature)] = VFIO_MIGRATION_STOP_COPY;
            put_reply(reply, msg, p, sizeof(p));
            return VU_TEST_HOOK_REPLACE;
        }
        break;
    case HOOK_BAD_REPORT:
        if (msg->hdr.command == VFIO_USER_DEVICE_FEATURE &&
            msg->payload_size == sizeof(VFIOUserDeviceFeature) +
                                 sizeof(VFIOUserDMALoggingReport) &&
            ((const VFIOUserDeviceFeature *)msg->payload)->flags ==
            (VFIO_DEVICE_FEATURE_GET |
             VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT)) {
            const VFIOUserDeviceFeature *f = (const void *)msg->payload;
            VFIOUserDMALoggingReport rep;
            size_t bitmap, len;
            g_autofree uint8_t *p = NULL;

            memcpy(&rep, f->data, sizeof(rep));
            bitmap = DIV_ROUND_UP(rep.length / rep.page_size, 64) * 8;
            len = sizeof(*f) + sizeof(rep) + bitmap;
            p = g_malloc0(len);
            qatomic_inc(&h->hits);
            memcpy(p, f, sizeof(*f));
            rep.iova += rep.page_size;
            memcpy(p + sizeof(*f), &rep, sizeof(rep));
            memset(p + sizeof(*f) + sizeof(rep), 0xff, bitmap);
            put_reply(reply, msg, p, len);
            return VU_TEST_HOOK_REPLACE;
        }
        break;
    case HOOK_NO_DATA_SIZE:
        if (msg->hdr.command == VFIO_USER_DEVICE_FEATURE &&
            msg->payload_size >= sizeof(VFIOUserDeviceFeature) &&
            ((const VFIOUserDeviceFeature *)msg->payload)->flags ==
            (VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIG_DATA_SIZE)) {
            qatomic_inc(&h->hits);
            put_error(reply, msg, ENOTSUP);
            return VU_TEST_HOOK_REPLACE;
        }
        break;
    case HOOK_NONE:
        break;
    }
    return VU_TEST_HOOK_CONTINUE;
}

typedef struct MigSetup {
    bool precopy;
    bool dma_logging;
    bool memfd;                 /* guest RAM with an fd */
    const char *dev_extra;      /* e.g. ",secure-dma=on" */
    bool reaccept;              /* source server takes a new client */
    bool return_path;
} MigSetup;

static void mig_start(MigCtx *c, const MigSetup *su)
{
    VUTestServerConfig cfg;
    g_autofree char *args = g_strdup_printf("-machine pc -m %d %s",
                                            RAM_MB,
                                            su->memfd ? VU_FIXTURE_MEMFD_RAM
                                                      : "");
    g_autofree char *dst_args = g_strdup_printf("%s -incoming defer", args);

    vu_test_server_config_init(&cfg);
    cfg.migration = true;
    cfg.mig_precopy = su->precopy;
    cfg.dma_logging = su->dma_logging;
    cfg.reaccept = su->reaccept;
    cfg.hook = mig_hook;
    cfg.hook_opaque = &c->src_hook;
    vu_fixture_server(&c->src, "vfio-user-mig-src", &cfg);
    cfg.reaccept = false;
    cfg.hook_opaque = &c->dst_hook;
    vu_fixture_server(&c->dst, "vfio-user-mig-dst", &cfg);

    vu_fixture_start(&c->src, args, su->dev_extra);
    vu_fixture_qemu(&c->dst, dst_args, su->dev_extra);

    c->mig_path = g_build_filename(c->src.tmpdir, "migration", NULL);
    c->uri = g_strdup_printf("unix:%s", c->mig_path);
    if (su->return_path) {
        qtest_qmp_assert_success(c->src.qts, RETURN_PATH_ON);
        qtest_qmp_assert_success(c->dst.qts, RETURN_PATH_ON);
    }
    qtest_qmp_assert_success(c->dst.qts,
                             "{'execute': 'migrate-incoming',"
                             " 'arguments': {'uri': %s,"
                             "               'exit-on-error': false}}",
                             c->uri);
}

static void mig_stop(MigCtx *c)
{
    if (c->mig_path) {
        unlink(c->mig_path);
    }
    vu_fixture_stop(&c->dst);
    vu_fixture_stop(&c->src);
    g_free(c->mig_path);
    g_free(c->uri);
}

static void set_limits(QTestState *qts, int64_t downtime_ms,
                       int64_t bytes_per_s)
{
    qtest_qmp_assert_success(qts, "{'execute': 'migrate-set-parameters',"
                             " 'arguments': {'downtime-limit': %lld,"
                             "               'max-bandwidth': %lld}}",
                             (long long)downtime_ms, (long long)bytes_per_s);
}

static void migrate(MigCtx *c)
{
    qtest_qmp_assert_success(c->src.qts,
                             "{'execute': 'migrate', 'arguments': {'uri': %s}}",
                             c->uri);
}

static QDict *query_migrate(QTestState *qts)
{
    QDict *rsp = qtest_qmp(qts, "{'execute': 'query-migrate'}");
    QDict *ret;

    g_assert(qdict_haskey(rsp, "return"));
    ret = qdict_get_qdict(rsp, "return");
    qobject_ref(ret);
    qobject_unref(rsp);
    return ret;
}

static char *migration_status(QTestState *qts)
{
    g_autoptr(QDict) info = query_migrate(qts);

    return g_strdup(qdict_haskey(info, "status") ?
                    qdict_get_str(info, "status") : "none");
}

/* Wait for the source's migration to end; returns its final status */
static char *wait_migration_end(QTestState *qts)
{
    for (int ms = 0; ms < WAIT_MS; ms += 10) {
        g_autofree char *st = migration_status(qts);

        if (!strcmp(st, "completed") || !strcmp(st, "failed") ||
            !strcmp(st, "cancelled")) {
            return g_steal_pointer(&st);
        }
        g_usleep(10 * 1000);
    }
    g_assert_not_reached();
}

/* Wait until RAM has been through @n dirty bitmap syncs */
static void wait_dirty_syncs(QTestState *qts, int64_t n)
{
    for (int ms = 0; ms < WAIT_MS; ms += 10) {
        g_autoptr(QDict) info = query_migrate(qts);
        QDict *ram = qdict_haskey(info, "ram") ?
                     qdict_get_qdict(info, "ram") : NULL;

        const char *st = qdict_get_try_str(info, "status");

        g_assert(st && (!strcmp(st, "setup") || !strcmp(st, "active")));
        if (ram && qdict_get_int(ram, "dirty-sync-count") >= n) {
            return;
        }
        g_usleep(10 * 1000);
    }
    g_assert_not_reached();
}

static char *run_state(QTestState *qts)
{
    QDict *rsp = qtest_qmp(qts, "{'execute': 'query-status'}");
    char *st = g_strdup(qdict_get_str(qdict_get_qdict(rsp, "return"),
                                      "status"));

    qobject_unref(rsp);
    return st;
}

static void wait_run_state(QTestState *qts, const char *want)
{
    for (int ms = 0; ms < WAIT_MS; ms += 10) {
        g_autofree char *st = run_state(qts);

        if (!strcmp(st, want)) {
            return;
        }
        g_usleep(10 * 1000);
    }
    g_assert_not_reached();
}

/* Give the device state worth migrating: the scratch register, a buffer */
static void fill_device(VUFixture *f, uint8_t seed)
{
    uint8_t buf[VU_TEST_BUF_SIZE];

    vu_fixture_fill_pattern(buf, sizeof(buf), seed);
    vu_fixture_bar0_writel(f, VU_TEST_REG_SCRATCH, SCRATCH_VALUE + seed);
    qpci_memwrite(f->dev, f->bar0, VU_TEST_BUF_OFFSET, buf, sizeof(buf));
}

static void assert_device_state(VUFixture *f, uint8_t seed)
{
    uint8_t want[VU_TEST_BUF_SIZE], got[VU_TEST_BUF_SIZE];

    vu_fixture_fill_pattern(want, sizeof(want), seed);
    g_assert_cmphex(vu_fixture_bar0_readl(f, VU_TEST_REG_SCRATCH), ==,
                    SCRATCH_VALUE + seed);
    qpci_memread(f->dev, f->bar0, VU_TEST_BUF_OFFSET, got, sizeof(got));
    g_assert(!memcmp(want, got, sizeof(got)));
}

/* The device works: registers answer, and DMA reaches guest memory */
static void assert_device_works(VUFixture *f)
{
    g_assert_cmphex(vu_fixture_bar0_readl(f, VU_TEST_REG_ID), ==,
                    VU_TEST_ID_MAGIC);
    vu_fixture_bar0_writel(f, VU_TEST_REG_SCRATCH, 0xa5a5a5a5);
    g_assert_cmphex(vu_fixture_bar0_readl(f, VU_TEST_REG_SCRATCH), ==,
                    0xa5a5a5a5);
    vu_fixture_server_dma_round_trip(f, 0x200000, 0x200000, PAGE, 0x31,
                                     0x32);
}

/* Wait for a device whose server was dropped to reconnect */
static void wait_device_back(VUFixture *f)
{
    for (int ms = 0; ms < WAIT_MS &&
         vu_fixture_bar0_readl(f, VU_TEST_REG_ID) != VU_TEST_ID_MAGIC;
         ms += 10) {
        g_usleep(10 * 1000);
    }
}

/* After a failed migration: the source runs on, its device with it */
static void assert_source_survived(MigCtx *c, const char *status)
{
    g_autofree char *st = wait_migration_end(c->src.qts);

    g_assert_cmpstr(st, ==, status);
    wait_run_state(c->src.qts, "running");
    g_assert_cmpuint(vu_test_server_mig_state(c->src.srv), ==,
                     VFIO_DEVICE_STATE_RUNNING);
    assert_device_works(&c->src);
}

/*
 * The source's guest memory gets pattern 1 in DIRTY_PAGES pages; once
 * pre-copy has sent them (a second bitmap sync), the device's DMA engine
 * writes pattern 2 over them: by DMA_WRITE under secure-dma, through the
 * mapped memory fd otherwise.  Only a dirty page reaches the destination
 * again, so pattern 2 arrives only if the tracking saw the writes.
 * The migration cannot converge meanwhile: the device's stop-copy data
 * alone is more than 1 ms at the bandwidth given.
 */
static void migrate_with_dma_in_precopy(MigCtx *c)
{
    g_autofree uint8_t *before = g_malloc(DIRTY_PAGES * PAGE);
    g_autofree uint8_t *after = g_malloc(DIRTY_PAGES * PAGE);
    g_autofree uint8_t *got = g_malloc(DIRTY_PAGES * PAGE);
    g_autofree char *st = NULL;

    vu_fixture_fill_pattern(before, DIRTY_PAGES * PAGE, 1);
    vu_fixture_fill_pattern(after, DIRTY_PAGES * PAGE, 2);
    qtest_memwrite(c->src.qts, DIRTY_GPA, before, DIRTY_PAGES * PAGE);

    set_limits(c->src.qts, 1, 4 * MiB);
    migrate(c);
    wait_dirty_syncs(c->src.qts, 2);
    qpci_memwrite(c->src.dev, c->src.bar0, VU_TEST_BUF_OFFSET, after,
                  DIRTY_PAGES * PAGE);
    g_assert_cmphex(vu_fixture_run_dma(&c->src, 0, DIRTY_GPA,
                                       DIRTY_PAGES * PAGE,
                                       VU_TEST_DMA_CMD_START |
                                       VU_TEST_DMA_CMD_TO_GUEST),
                    ==, VU_TEST_DMA_STATUS_DONE);
    /* Also change the device while it runs in pre-copy */
    fill_device(&c->src, 7);
    set_limits(c->src.qts, 10000, GiB);

    st = wait_migration_end(c->src.qts);
    g_assert_cmpstr(st, ==, "completed");
    wait_run_state(c->dst.qts, "running");
    qtest_memread(c->dst.qts, DIRTY_GPA, got, DIRTY_PAGES * PAGE);
    g_assert(!memcmp(got, after, DIRTY_PAGES * PAGE));
    vu_fixture_find_device(&c->dst, VU_FIXTURE_DEVFN);
    assert_device_state(&c->dst, 7);
}

static void test_device_state(void)
{
    MigCtx c = { };
    MigSetup su = { .dev_extra = ",secure-dma=on" };
    VUTestServerStats src, dst;
    g_autofree char *st = NULL;

    mig_start(&c, &su);
    fill_device(&c.src, 3);
    migrate(&c);
    st = wait_migration_end(c.src.qts);
    g_assert_cmpstr(st, ==, "completed");
    wait_run_state(c.dst.qts, "running");

    vu_fixture_find_device(&c.dst, VU_FIXTURE_DEVFN);
    assert_device_state(&c.dst, 3);
    g_assert_cmpuint(vu_test_server_mig_state(c.dst.srv), ==,
                     VFIO_DEVICE_STATE_RUNNING);
    g_assert_cmpuint(vu_test_server_mig_state(c.src.srv), ==,
                     VFIO_DEVICE_STATE_STOP);
    vu_test_server_get_stats(c.src.srv, &src);
    vu_test_server_get_stats(c.dst.srv, &dst);
    g_assert_cmpuint(src.mig_bytes_read, >, VU_TEST_BUF_SIZE);
    g_assert_cmpuint(src.mig_bytes_read, ==, dst.mig_bytes_written);
    assert_device_works(&c.dst);
    mig_stop(&c);
}

/*
 * The stop-copy size is not in the vfio-user spec's list of features,
 * and most servers refuse it: the migration must converge all the same.
 */
static void test_no_data_size(void)
{
    MigCtx c = { };
    MigSetup su = { .precopy = true, .dev_extra = ",secure-dma=on" };
    g_autofree char *st = NULL;

    c.src_hook = (Hook) { HOOK_NO_DATA_SIZE };
    mig_start(&c, &su);
    fill_device(&c.src, 8);
    migrate(&c);
    st = wait_migration_end(c.src.qts);
    g_assert_cmpstr(st, ==, "completed");
    g_assert_cmpint(qatomic_read(&c.src_hook.hits), >=, 1);
    wait_run_state(c.dst.qts, "running");
    vu_fixture_find_device(&c.dst, VU_FIXTURE_DEVFN);
    assert_device_state(&c.dst, 8);
    mig_stop(&c);
}

static void test_precopy_secure_dma(void)
{
    MigCtx c = { };
    MigSetup su = { .precopy = true, .dev_extra = ",secure-dma=on" };

    mig_start(&c, &su);
    fill_device(&c.src, 5);
    migrate_with_dma_in_precopy(&c);
    assert_device_works(&c.dst);
    mig_stop(&c);
}

static void test_precopy_dma_logging(void)
{
    MigCtx c = { };
    MigSetup su = { .precopy = true, .dma_logging = true, .memfd = true };
    VUTestServerStats src;

    mig_start(&c, &su);
    fill_device(&c.src, 5);
    migrate_with_dma_in_precopy(&c);
    vu_test_server_get_stats(c.src.srv, &src);
    g_test_message("the server logged %" PRIu64 " dirty pages and reported "
                   "%" PRIu64, src.dirty_pages_logged,
                   src.dirty_pages_reported);
    g_assert_cmpuint(src.dma_bytes_mmap, >=, DIRTY_PAGES * PAGE);
    g_assert_cmpuint(src.dirty_pages_reported, >=, DIRTY_PAGES);
    assert_device_works(&c.dst);
    mig_stop(&c);
}

/* Without dirty tracking, migration is blocked unless asked for */
static void test_no_dirty_tracking(void)
{
    MigCtx c = { };
    MigSetup su = { .memfd = true };
    g_autofree char *st = NULL;
    QDict *rsp;

    mig_start(&c, &su);
    rsp = qtest_qmp(c.src.qts, "{'execute': 'migrate',"
                    " 'arguments': {'uri': %s}}", c.uri);
    g_assert(qdict_haskey(rsp, "error"));
    g_assert(strstr(qdict_get_str(qdict_get_qdict(rsp, "error"), "desc"),
                    "dirty tracking"));
    qobject_unref(rsp);
    mig_stop(&c);

    /* enable-migration=on: every page counts as dirty, and it works */
    su.dev_extra = ",enable-migration=on";
    mig_start(&c, &su);
    fill_device(&c.src, 9);
    migrate(&c);
    st = wait_migration_end(c.src.qts);
    g_assert_cmpstr(st, ==, "completed");
    wait_run_state(c.dst.qts, "running");
    vu_fixture_find_device(&c.dst, VU_FIXTURE_DEVFN);
    assert_device_state(&c.dst, 9);
    mig_stop(&c);
}

/*
 * The server dies, then QEMU exits: stopping the device at exit cannot
 * reach it, which must not fail (hw/vfio would report the error through
 * migration state that is gone by then, and abort).
 */
static void test_server_gone_at_exit(void)
{
    VUFixture f = { };
    VUTestServerConfig cfg;
    QDict *rsp;
    bool connected = true;

    vu_test_server_config_init(&cfg);
    cfg.migration = true;
    vu_fixture_server(&f, "vfio-user-mig", &cfg);
    vu_fixture_start(&f, "-machine pc -m 256", ",secure-dma=on");
    vu_test_server_free(f.srv);
    f.srv = NULL;
    for (int ms = 0; ms < WAIT_MS && connected; ms += 10) {
        rsp = qtest_qmp(f.qts, "{'execute': 'qom-get', 'arguments':"
                        " {'path': 'vu0', 'property': 'connected'}}");
        connected = qdict_get_bool(rsp, "return");
        qobject_unref(rsp);
        g_usleep(10 * 1000);
    }
    g_assert(!connected);
    vu_fixture_stop(&f);        /* qtest_quit() fails if QEMU crashed */
}

/* A server that cannot migrate blocks migration, and says so */
static void test_unsupported(void)
{
    VUFixture f = { };
    QDict *rsp;
    const char *desc;

    vu_fixture_server(&f, "vfio-user-mig", NULL);
    vu_fixture_start(&f, "-machine pc -m 256", ",secure-dma=on");
    rsp = qtest_qmp(f.qts, "{'execute': 'migrate',"
                    " 'arguments': {'uri': 'exec:cat >/dev/null'}}");
    g_assert(qdict_haskey(rsp, "error"));
    desc = qdict_get_str(qdict_get_qdict(rsp, "error"), "desc");
    g_assert(strstr(desc, "the server cannot migrate the device"));
    qobject_unref(rsp);
    assert_device_works(&f);
    vu_fixture_stop(&f);
}

/* Migration flags too short: the server cannot migrate, QEMU goes on */
static void test_short_flags(void)
{
    MigCtx c = { };
    MigSetup su = { .dev_extra = ",secure-dma=on" };
    QDict *rsp;

    c.src_hook = (Hook) { HOOK_SHORT_FLAGS };
    mig_start(&c, &su);
    g_assert_cmpint(qatomic_read(&c.src_hook.hits), >=, 1);
    rsp = qtest_qmp(c.src.qts, "{'execute': 'migrate',"
                    " 'arguments': {'uri': %s}}", c.uri);
    g_assert(qdict_haskey(rsp, "error"));
    g_assert(strstr(qdict_get_str(qdict_get_qdict(rsp, "error"), "desc"),
                    "the server cannot migrate the device"));
    qobject_unref(rsp);
    assert_device_works(&c.src);
    mig_stop(&c);
}

/*
 * A migration that a misbehaving server fails: the source's (or with
 * @on_dst, the destination's) server answers as @hook says, and the
 * source runs on with a working device.
 */
typedef struct FailCase {
    const char *name;
    Hook hook;
    bool on_dst;
    MigSetup su;
} FailCase;

static const FailCase fail_cases[] = {
    { "refused-transition",
      { HOOK_REFUSE_STATE, VFIO_DEVICE_STATE_STOP_COPY },
      .su = { .dev_extra = ",secure-dma=on" } },
    { "wrong-state-answer",
      { HOOK_WRONG_STATE, VFIO_DEVICE_STATE_STOP_COPY },
      .su = { .dev_extra = ",secure-dma=on" } },
    { "long-data-read", { HOOK_LONG_DATA_READ },
      .su = { .dev_extra = ",secure-dma=on" } },
    /* A DMA log report for a range not asked about */
    { "bad-report", { HOOK_BAD_REPORT },
      .su = { .dma_logging = true, .memfd = true } },
    /* The destination refuses the data: the source learns it */
    { "destination-rejects", { HOOK_REFUSE_DATA_WRITE }, .on_dst = true,
      .su = { .dev_extra = ",secure-dma=on", .return_path = true } },
};

static void test_fail_case(const void *opaque)
{
    const FailCase *fc = opaque;
    MigCtx c = { };
    Hook *h = fc->on_dst ? &c.dst_hook : &c.src_hook;

    *h = fc->hook;
    mig_start(&c, &fc->su);
    fill_device(&c.src, 4);
    migrate(&c);
    assert_source_survived(&c, "failed");
    g_assert_cmpint(qatomic_read(&h->hits), >=, 1);
    mig_stop(&c);
}

/*
 * The source's server dies in STOP_COPY: the migration fails, and the
 * device reconnects to the server's successor and works again.
 */
static void test_server_dies_in_stop_copy(void)
{
    MigCtx c = { };
    MigSetup su = { .dev_extra = ",secure-dma=on,reconnect-ms=50",
                    .reaccept = true };

    c.src_hook = (Hook) { HOOK_DIE_ON_DATA_READ };
    mig_start(&c, &su);
    migrate(&c);
    g_autofree char *st = wait_migration_end(c.src.qts);
    g_assert_cmpstr(st, ==, "failed");
    g_assert_cmpint(qatomic_read(&c.src_hook.hits), ==, 1);
    c.src_hook.action = HOOK_NONE;
    wait_run_state(c.src.qts, "running");
    wait_device_back(&c.src);
    assert_device_works(&c.src);
    mig_stop(&c);
}

/*
 * A server that can neither stop the device nor reset it leaves it in a
 * state nobody knows, to which hw/vfio's answer is to abort QEMU: QEMU
 * drops the server instead, and the device reconnects to a fresh one.
 */
static void test_refuses_to_stop(void)
{
    MigCtx c = { };
    MigSetup su = { .dev_extra = ",secure-dma=on,reconnect-ms=50",
                    .reaccept = true };
    g_autofree char *st = NULL;

    c.src_hook = (Hook) { HOOK_REFUSE_STATE, VFIO_DEVICE_STATE_STOP, true };
    mig_start(&c, &su);
    migrate(&c);
    st = wait_migration_end(c.src.qts);
    g_assert_cmpstr(st, ==, "failed");
    g_assert_cmpint(qatomic_read(&c.src_hook.hits), >=, 1);
    qatomic_set(&c.src_hook.refuse_reset, false);
    c.src_hook.action = HOOK_NONE;
    wait_run_state(c.src.qts, "running");
    wait_device_back(&c.src);
    assert_device_works(&c.src);
    mig_stop(&c);
}

static void test_cancel(void)
{
    MigCtx c = { };
    MigSetup su = { .precopy = true, .dev_extra = ",secure-dma=on" };
    g_autofree char *st = NULL;

    mig_start(&c, &su);
    fill_device(&c.src, 6);
    set_limits(c.src.qts, 1, 4 * MiB);
    migrate(&c);
    wait_dirty_syncs(c.src.qts, 2);
    g_assert_cmpuint(vu_test_server_mig_state(c.src.srv), ==,
                     VFIO_DEVICE_STATE_PRE_COPY);
    qtest_qmp_assert_success(c.src.qts, "{'execute': 'migrate_cancel'}");
    st = wait_migration_end(c.src.qts);
    g_assert_cmpstr(st, ==, "cancelled");
    wait_run_state(c.src.qts, "running");
    assert_device_state(&c.src, 6);
    assert_source_survived(&c, "cancelled");
    mig_stop(&c);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    qtest_add_func("/vfio-user-pci/migration/unsupported", test_unsupported);
    qtest_add_func("/vfio-user-pci/migration/device-state",
                   test_device_state);
    qtest_add_func("/vfio-user-pci/migration/no-data-size",
                   test_no_data_size);
    qtest_add_func("/vfio-user-pci/migration/precopy-secure-dma",
                   test_precopy_secure_dma);
    qtest_add_func("/vfio-user-pci/migration/precopy-dma-logging",
                   test_precopy_dma_logging);
    qtest_add_func("/vfio-user-pci/migration/no-dirty-tracking",
                   test_no_dirty_tracking);
    qtest_add_func("/vfio-user-pci/migration/short-flags", test_short_flags);
    qtest_add_func("/vfio-user-pci/migration/server-dies-in-stop-copy",
                   test_server_dies_in_stop_copy);
    qtest_add_func("/vfio-user-pci/migration/refuses-to-stop",
                   test_refuses_to_stop);
    qtest_add_func("/vfio-user-pci/migration/cancel", test_cancel);
    for (size_t i = 0; i < ARRAY_SIZE(fail_cases); i++) {
        g_autofree char *path = g_strdup_printf("/vfio-user-pci/migration/%s",
                                                fail_cases[i].name);

        qtest_add_data_func(path, &fail_cases[i], test_fail_case);
    }
    qtest_add_func("/vfio-user-pci/migration/server-gone-at-exit",
                   test_server_gone_at_exit);
    return g_test_run();
}
