/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Benchmarks of vfio-user-pci against the test server of vfio-user-server.c,
 * each beside the limit it is measured against, measured in the same run.
 *
 * Not a test: nothing here passes or fails on speed.  Every figure is a
 * ratio to a limit measured in the same process right before it (a raw
 * AF_UNIX round trip, a raw socket stream of the same message shapes,
 * memcpy, an eventfd), with medians over repeated rounds and the spread
 * (min..max of the per-round figures) beside them.
 *
 * Where each figure is measured, and why there:
 *
 * - DMA_READ/DMA_WRITE (secure-dma=on): on the server thread, from a
 *   hook that a BAR0 write triggers; each request is timed from before
 *   its send to after its reply is parsed, so nothing of qtest is in it.
 * - BAR reads/writes and interrupts: a guest under TCG (the boot sector
 *   of vfio-user-bench-boot.S) runs loops of BAR0 accesses and MSI
 *   round trips; the server timestamps each request as it arrives.  The
 *   gap between two consecutive reads is one whole read as the guest
 *   sees it (vCPU -> client -> server -> client -> vCPU); for writes the
 *   arrival rate is the rate at which the guest can issue them; for
 *   interrupts the gap is: posted IRQ_RAISE write, eventfd signal, QEMU
 *   delivering the MSI (a write to guest RAM), the guest seeing it.
 * - fd-mapped DMA: the server's DMA engine, copied here (lock, mapping
 *   lookup, memcpy), run through a mapping of the guest RAM fd that came
 *   with DMA_MAP.
 * - DMA_MAP/UNMAP churn: toggling the i440FX PAM registers remaps RAM
 *   below 1 MiB; the client sends DMA_UNMAP/DMA_MAP for each change, and
 *   the server timestamps them.  Each PAM register write is a burst; the
 *   rate is ops within bursts (first to last arrival), so qtest is not
 *   in it.
 *
 * Usage: vfio-user-bench [--quick] [--csv FILE] [--plot-data FILE]
 * QTEST_QEMU_BINARY must point to qemu-system-x86_64.  BENCH_QUICK=1 is
 * --quick; for profiling, BENCH_ONLY=guest,dma,memfd runs only those
 * parts and BENCH_ROUNDS, BENCH_GUEST_{ROUNDS,READS,WRITES,IRQS}
 * override the counts; BENCH_DMA_SIZE=bytes, BENCH_DMA_DIR=read|write
 * restrict the DMA part; BENCH_DEVICE_OPTS=",prop=value,..." is appended
 * to every -device vfio-user-pci (e.g. ",x-poll-max-ns=0").
 */

#include "qemu/osdep.h"
#include <sys/socket.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <math.h>
#include "qemu/atomic.h"
#include "qemu/bswap.h"
#include "qemu/units.h"
#include "libqtest.h"
#include "libqos/pci.h"
#include "libqos/pci-pc.h"
#include "vfio-user-server.h"
#include "vfio-user-fixture.h"
#include "vfio-user-bench-boot.h"

#define DEVFN           VU_FIXTURE_DEVFN
#define RAM_MB          256
#define GUEST_ADDR      0x200000        /* DMA target in guest RAM */
#define DMA_MAGIC       0xb3c4d5e6      /* SCRATCH value: run the DMA job */
#define MAX_XFER        (1 * MiB)
#define MAX_EVENTS      (1u << 21)
#define MAX_ROUNDS      32

#define MEMFD_RAM       VU_FIXTURE_MEMFD_RAM

/* ------------------------------------------------------------------ */
/* Parameters */

typedef struct Params {
    bool quick;
    unsigned rounds;            /* repetitions of every measurement */
    unsigned rt_iters;          /* raw round trips per round */
    const char *dev_opts;       /* appended to -device vfio-user-pci */
    unsigned oneway_msgs;
    unsigned dma_bytes;         /* per round and size, roughly */
    unsigned guest_reads;       /* per guest round */
    unsigned guest_writes;
    unsigned guest_irqs;
    unsigned guest_rounds;
    unsigned pam_toggles;
    unsigned guest_timeout_s;
} Params;

static Params P;

static void env_uint(const char *name, unsigned *val)
{
    const char *v = getenv(name);

    if (v && *v) {
        *val = g_ascii_strtoull(v, NULL, 0);
    }
}

/* BENCH_ONLY=guest,dma,memfd: run only those parts (default: all) */
static bool want(const char *part)
{
    const char *only = getenv("BENCH_ONLY");
    g_auto(GStrv) parts = NULL;

    if (!only || !*only) {
        return true;
    }
    parts = g_strsplit(only, ",", -1);
    return g_strv_contains((const gchar * const *)parts, part);
}

static const size_t dma_sizes[] = {
    4 * KiB, 16 * KiB, 64 * KiB, 256 * KiB, 1 * MiB,
};
#define NSIZES ARRAY_SIZE(dma_sizes)

/* ------------------------------------------------------------------ */
/* Time and statistics */

static inline uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* Percentile @p (0..100) of @n values; sorts them. */
static double pct(double *v, size_t n, double p)
{
    size_t i;

    if (!n) {
        return NAN;
    }
    qsort(v, n, sizeof(*v), cmp_double);
    i = (size_t)(p / 100.0 * (n - 1) + 0.5);
    return v[MIN(i, n - 1)];
}

static double median(double *v, size_t n)
{
    return pct(v, n, 50);
}

/* A figure measured in each round, and its limit in the same round. */
typedef struct Series {
    double val[MAX_ROUNDS];
    double lim[MAX_ROUNDS];
    unsigned n;
} Series;

static void series_add(Series *s, double val, double lim)
{
    if (s->n < MAX_ROUNDS) {
        s->val[s->n] = val;
        s->lim[s->n] = lim;
        s->n++;
    }
}

/* ------------------------------------------------------------------ */
/* Output: one table, one CSV */

typedef struct Row {
    char name[64];
    char size[16];
    char unit[16];
    double val, val_lo, val_hi;     /* median and spread over rounds */
    double lim, lim_lo, lim_hi;
    double ratio;                   /* median of per-round ratios */
    char limit_name[64];
    char note[160];
    bool measured;
    bool not_run;                   /* left out on request (BENCH_ONLY...) */
    bool higher_better;
} Row;

static GArray *rows;
static FILE *csv;

static void row_from_series(const char *name, const char *size,
                            const char *unit, const char *limit_name,
                            bool higher_better, const Series *s,
                            const char *note)
{
    Row r = { 0 };
    double v[MAX_ROUNDS], l[MAX_ROUNDS], q[MAX_ROUNDS];

    g_strlcpy(r.name, name, sizeof(r.name));
    g_strlcpy(r.size, size, sizeof(r.size));
    g_strlcpy(r.unit, unit, sizeof(r.unit));
    g_strlcpy(r.limit_name, limit_name, sizeof(r.limit_name));
    g_strlcpy(r.note, note ? note : "", sizeof(r.note));
    r.higher_better = higher_better;
    r.measured = s->n > 0;
    for (unsigned i = 0; i < s->n; i++) {
        /* A NaN median (a round with no samples) is no measurement. */
        if (isnan(s->val[i]) || isnan(s->lim[i])) {
            r.measured = false;
            snprintf(r.note, sizeof(r.note), "round %u had no samples", i);
            break;
        }
    }
    if (r.measured) {
        for (unsigned i = 0; i < s->n; i++) {
            v[i] = s->val[i];
            l[i] = s->lim[i];
            q[i] = s->val[i] / s->lim[i];
        }
        r.val = median(v, s->n);
        r.val_lo = v[0];
        r.val_hi = v[s->n - 1];
        r.lim = median(l, s->n);
        r.lim_lo = l[0];
        r.lim_hi = l[s->n - 1];
        r.ratio = median(q, s->n);
    }
    g_array_append_val(rows, r);
}

static void row_not_measured(const char *name, const char *size,
                             const char *limit_name, const char *why)
{
    Series none = { .n = 0 };

    row_from_series(name, size, "", limit_name, true, &none, why);
}

/* A row that was not measured because the caller asked for less. */
static void row_not_run(const char *name, const char *size,
                        const char *limit_name, const char *why)
{
    row_not_measured(name, size, limit_name, why);
    g_array_index(rows, Row, rows->len - 1).not_run = true;
}

/*
 * Rows that should have a figure and have none: the run measured less
 * than it says, so it fails (make check runs the quick pass).
 */
static unsigned count_unmeasured(void)
{
    unsigned n = 0;

    for (guint i = 0; i < rows->len; i++) {
        Row *r = &g_array_index(rows, Row, i);

        n += !r->measured && !r->not_run;
    }
    return n;
}

/* A number in a few significant digits, without exponents */
static const char *num(double v)
{
    static char buf[8][24];
    static unsigned k;
    char *b = buf[k++ % 8];

    snprintf(b, 24, v >= 100 ? "%.0f" : v >= 10 ? "%.1f" : "%.2f", v);
    return b;
}

static void print_rows(void)
{
    printf("\n%-32s %-5s %30s  %-30s %22s %7s\n", "benchmark", "size",
           "median [min..max]", "limit", "median [min..max]",
           "ratio");
    for (guint i = 0; i < rows->len; i++) {
        Row *r = &g_array_index(rows, Row, i);
        char v[64], l[64];

        if (!r->measured) {
            printf("%-32s %-5s %30s  %-30s %22s %7s\n    %s: %s\n",
                   r->name, r->size, "-", r->limit_name, "-", "-",
                   r->not_run ? "not run" : "not measured", r->note);
            continue;
        }
        snprintf(v, sizeof(v), "%s [%s..%s] %s", num(r->val),
                 num(r->val_lo), num(r->val_hi), r->unit);
        snprintf(l, sizeof(l), "%s [%s..%s]", num(r->lim), num(r->lim_lo),
                 num(r->lim_hi));
        printf("%-32s %-5s %30s  %-30s %22s %6.2fx\n", r->name, r->size, v,
               r->limit_name, l, r->ratio);
        if (r->note[0]) {
            printf("    %s\n", r->note);
        }
    }
    if (csv) {
        fprintf(csv, "benchmark,size,unit,median,min,max,limit,limit_median,"
                "limit_min,limit_max,ratio,higher_is_better,note\n");
        for (guint i = 0; i < rows->len; i++) {
            Row *r = &g_array_index(rows, Row, i);

            if (!r->measured) {
                fprintf(csv, "%s,%s,,,,,%s,,,,,,\"%s: %s\"\n",
                        r->name, r->size, r->limit_name,
                        r->not_run ? "not run" : "not measured", r->note);
                continue;
            }
            fprintf(csv, "%s,%s,%s,%.6g,%.6g,%.6g,%s,%.6g,%.6g,%.6g,%.4f,%d,"
                    "\"%s\"\n", r->name, r->size, r->unit, r->val, r->val_lo,
                    r->val_hi, r->limit_name, r->lim, r->lim_lo, r->lim_hi,
                    r->ratio, r->higher_better, r->note);
        }
    }
}

static const char *size_str(size_t sz)
{
    static char buf[NSIZES][16];
    static unsigned k;
    char *b = buf[k++ % NSIZES];

    if (sz >= MiB) {
        snprintf(b, 16, "%zuM", sz / MiB);
    } else {
        snprintf(b, 16, "%zuK", sz / KiB);
    }
    return b;
}

/* ------------------------------------------------------------------ */
/* Raw limits over a socketpair, with the message shapes of vfio-user */

static void xsend(int fd, const void *buf, size_t len)
{
    while (len) {
        ssize_t n = send(fd, buf, len, 0);

        g_assert(n > 0 || (n < 0 && errno == EINTR));
        if (n > 0) {
            buf = (const uint8_t *)buf + n;
            len -= n;
        }
    }
}

static void xrecv(int fd, void *buf, size_t len)
{
    while (len) {
        ssize_t n = recv(fd, buf, len, MSG_WAITALL);

        g_assert(n > 0 || (n < 0 && errno == EINTR));
        if (n > 0) {
            buf = (uint8_t *)buf + n;
            len -= n;
        }
    }
}

/*
 * The peer: for each of @iters requests, read @req bytes and answer with
 * @rep bytes (or, with @efd >= 0, signal the eventfd instead).
 */
typedef struct Peer {
    int fd;
    int efd;
    size_t req, rep;
    unsigned iters;
    uint8_t *buf;
    uint64_t cpu_ns;            /* CPU time the peer thread used */
} Peer;

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* CPU time of all threads of process @pid, from schedstat (ns) */
static uint64_t process_cpu_ns(pid_t pid)
{
    g_autofree char *dir = g_strdup_printf("/proc/%d/task", pid);
    GDir *d = g_dir_open(dir, 0, NULL);
    const char *name;
    uint64_t sum = 0;

    if (!d) {
        return 0;
    }
    while ((name = g_dir_read_name(d))) {
        g_autofree char *path = g_strdup_printf("%s/%s/schedstat", dir, name);
        g_autofree char *txt = NULL;

        if (g_file_get_contents(path, &txt, NULL, NULL)) {
            sum += g_ascii_strtoull(txt, NULL, 10);
        }
    }
    g_dir_close(d);
    return sum;
}

static gpointer peer_thread(gpointer opaque)
{
    Peer *p = opaque;
    uint64_t one = 1;
    uint64_t cpu0 = thread_cpu_ns();

    for (unsigned i = 0; i < p->iters; i++) {
        xrecv(p->fd, p->buf, p->req);
        if (p->efd >= 0) {
            g_assert(write(p->efd, &one, 8) == 8);
        } else if (p->rep) {
            xsend(p->fd, p->buf, p->rep);
        }
    }
    p->cpu_ns = thread_cpu_ns() - cpu0;
    return NULL;
}

/*
 * Request/response over a socketpair: send @req bytes, wait for @rep.
 * Fills @lat (ns per round trip); returns the number of samples.
 */
static uint64_t raw_peer_cpu_ns;    /* of the last raw_rpc() */

static unsigned raw_rpc(size_t req, size_t rep, unsigned iters, double *lat)
{
    int sv[2];
    size_t big = MAX(req, rep);
    g_autofree uint8_t *a = g_malloc0(big);
    g_autofree uint8_t *b = g_malloc0(big);
    Peer p = { .efd = -1, .req = req, .rep = rep, .iters = iters, .buf = b };
    GThread *t;

    g_assert(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    p.fd = sv[1];
    t = g_thread_new("raw-peer", peer_thread, &p);
    for (unsigned i = 0; i < iters; i++) {
        uint64_t t0 = now_ns();

        xsend(sv[0], a, req);
        xrecv(sv[0], a, rep);
        lat[i] = now_ns() - t0;
    }
    g_thread_join(t);
    raw_peer_cpu_ns = p.cpu_ns;
    close(sv[0]);
    close(sv[1]);
    return iters;
}

/* One-way messages of @len bytes: messages per second. */
static double raw_oneway_rate(size_t len, unsigned msgs)
{
    int sv[2];
    g_autofree uint8_t *a = g_malloc0(len);
    g_autofree uint8_t *b = g_malloc0(len);
    Peer p = { .efd = -1, .req = len, .rep = 0, .iters = msgs, .buf = b };
    GThread *t;
    uint64_t t0;

    g_assert(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    p.fd = sv[1];
    t0 = now_ns();
    t = g_thread_new("raw-peer", peer_thread, &p);
    for (unsigned i = 0; i < msgs; i++) {
        xsend(sv[0], a, len);
    }
    g_thread_join(t);
    t0 = now_ns() - t0;
    close(sv[0]);
    close(sv[1]);
    return msgs / (t0 / 1e9);
}

/* A message one way on the socket, an eventfd back: ns per cycle. */
static unsigned raw_msg_eventfd(size_t len, unsigned iters, double *lat)
{
    int sv[2];
    int efd = eventfd(0, 0);
    g_autofree uint8_t *a = g_malloc0(len);
    g_autofree uint8_t *b = g_malloc0(len);
    Peer p = { .req = len, .iters = iters, .buf = b, .efd = efd };
    GThread *t;
    uint64_t v;

    g_assert(efd >= 0);
    g_assert(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    p.fd = sv[1];
    t = g_thread_new("raw-peer", peer_thread, &p);
    for (unsigned i = 0; i < iters; i++) {
        uint64_t t0 = now_ns();

        xsend(sv[0], a, len);
        g_assert(read(efd, &v, 8) == 8);
        lat[i] = now_ns() - t0;
    }
    g_thread_join(t);
    close(sv[0]);
    close(sv[1]);
    close(efd);
    return iters;
}

/* memcpy of @size bytes: bytes per second (median over @iters) */
static double memcpy_rate(uint8_t *dst, const uint8_t *src, size_t size,
                          unsigned iters)
{
    g_autofree double *lat = g_new(double, iters);

    memcpy(dst, src, size);     /* fault it in */
    for (unsigned i = 0; i < iters; i++) {
        uint64_t t0 = now_ns();

        memcpy(dst, src, size);
        lat[i] = now_ns() - t0;
    }
    return size / (median(lat, iters) / 1e9);
}

static unsigned iters_for(size_t size)
{
    unsigned n = P.dma_bytes / size;

    return MAX(n, P.quick ? 4 : 16);
}

/* ------------------------------------------------------------------ */
/* The server, its hook, and what the hook records */

enum {
    EV_READ,            /* REGION_READ of BAR0 SCRATCH */
    EV_WRITE,           /* REGION_WRITE of BAR0 SCRATCH */
    EV_WRITES_END,      /* REGION_READ of BAR0 ID */
    EV_IRQ,             /* REGION_WRITE of BAR0 IRQ_RAISE */
    EV_ROUND_END,       /* REGION_READ of BAR0 INTX_STATUS */
    EV_MAP,
    EV_UNMAP,
};

typedef struct Event {
    uint32_t kind;
    uint64_t t;
} Event;

typedef struct DMAJob {
    bool write;
    size_t size;
    unsigned iters;
    double *lat;                /* ns per request */
    int err;
} DMAJob;

typedef struct Bench {
    VUTestServer *srv;
    Event *ev;
    unsigned nev;               /* atomic */
    bool record;

    GMutex lock;
    GCond cond;
    DMAJob *job;                /* under lock */
    bool job_done;
    int ram_fd;                 /* dup of the guest RAM DMA_MAP fd */
    uint64_t ram_iova, ram_size, ram_offset;
} Bench;

static Bench B;

static void ev_add(unsigned kind)
{
    unsigned n = qatomic_read(&B.nev);

    if (n < MAX_EVENTS) {
        B.ev[n] = (Event) { .kind = kind, .t = now_ns() };
        qatomic_store_release(&B.nev, n + 1);
    }
}

static void run_dma_job(VUTestServer *s, DMAJob *job)
{
    g_autofree uint8_t *buf = g_malloc0(job->size);

    for (unsigned i = 0; i < job->iters && !job->err; i++) {
        uint64_t t0 = now_ns();

        job->err = job->write ?
            vu_test_server_dma_write(s, GUEST_ADDR, buf, job->size) :
            vu_test_server_dma_read(s, GUEST_ADDR, buf, job->size);
        job->lat[i] = now_ns() - t0;
    }
}

static VUTestHookAction bench_hook(VUTestServer *s, const VUTestMsg *msg,
                                   GByteArray *reply, void *opaque)
{
    const VFIOUserRegionRW *rw = (const void *)msg->payload;
    unsigned cmd = msg->hdr.command;

    if ((cmd == VFIO_USER_REGION_READ || cmd == VFIO_USER_REGION_WRITE) &&
        msg->payload_size >= sizeof(*rw) &&
        rw->region == VFIO_PCI_BAR0_REGION_INDEX) {
        bool rd = cmd == VFIO_USER_REGION_READ;

        switch (rw->offset) {
        case VU_TEST_REG_SCRATCH:
            if (!rd && rw->count == 4 &&
                msg->payload_size >= sizeof(*rw) + 4 &&
                ldl_le_p(rw->data) == DMA_MAGIC) {
                DMAJob *job;

                g_mutex_lock(&B.lock);
                job = B.job;
                g_mutex_unlock(&B.lock);
                if (job) {
                    run_dma_job(s, job);
                }
                g_mutex_lock(&B.lock);
                B.job_done = true;
                g_cond_broadcast(&B.cond);
                g_mutex_unlock(&B.lock);
            } else if (B.record) {
                ev_add(rd ? EV_READ : EV_WRITE);
            }
            break;
        case VU_TEST_REG_ID:
            if (rd && B.record) {
                ev_add(EV_WRITES_END);
            }
            break;
        case VU_TEST_REG_IRQ_RAISE:
            if (!rd && B.record) {
                ev_add(EV_IRQ);
            }
            break;
        case VU_TEST_REG_INTX_STATUS:
            if (rd && B.record) {
                ev_add(EV_ROUND_END);
            }
            break;
        }
    } else if (cmd == VFIO_USER_DMA_MAP || cmd == VFIO_USER_DMA_UNMAP) {
        if (B.record) {
            ev_add(cmd == VFIO_USER_DMA_MAP ? EV_MAP : EV_UNMAP);
        }
        if (cmd == VFIO_USER_DMA_MAP && msg->nfds == 1 &&
            msg->payload_size >= sizeof(VFIOUserDMAMap)) {
            const VFIOUserDMAMap *dm = (const void *)msg->payload;

            g_mutex_lock(&B.lock);
            if (B.ram_fd < 0 && dm->address <= GUEST_ADDR &&
                dm->address + dm->size >= GUEST_ADDR + MAX_XFER) {
                B.ram_fd = dup(msg->fds[0]);
                B.ram_iova = dm->address;
                B.ram_size = dm->size;
                B.ram_offset = dm->offset;
            }
            g_mutex_unlock(&B.lock);
        }
    }
    return VU_TEST_HOOK_CONTINUE;
}

/* The fixture of the qtests; B.srv is its server, for the hook */
typedef struct Ctx {
    VUFixture f;
} Ctx;

static void ctx_start(Ctx *c, const char *qemu_extra, const char *dev_extra,
                      bool libqos)
{
    g_autofree char *args = g_strdup_printf("-machine pc -m %d %s", RAM_MB,
                                            qemu_extra ? qemu_extra : "");
    g_autofree char *props = g_strconcat(dev_extra ? dev_extra : "",
                                         P.dev_opts, NULL);
    VUTestServerConfig cfg;

    vu_test_server_config_init(&cfg);
    /* Each toggle of a PAM register is a few maps and unmaps. */
    cfg.max_dma_maps = 65535;
    cfg.hook = bench_hook;
    vu_fixture_server(&c->f, "vfio-user-bench", &cfg);
    B.srv = c->f.srv;
    vu_fixture_qemu(&c->f, args, props);
    if (libqos) {
        vu_fixture_find_device(&c->f, DEVFN);
    }
}

static void ctx_stop(Ctx *c)
{
    vu_fixture_stop(&c->f);
    B.srv = NULL;
    g_mutex_lock(&B.lock);
    if (B.ram_fd >= 0) {
        close(B.ram_fd);
        B.ram_fd = -1;
    }
    g_mutex_unlock(&B.lock);
    B.record = false;
    B.nev = 0;
}

/* ------------------------------------------------------------------ */
/* secure-dma: DMA_READ/DMA_WRITE against the raw stream */

static int run_job(Ctx *c, DMAJob *job)
{
    g_mutex_lock(&B.lock);
    B.job = job;
    B.job_done = false;
    g_mutex_unlock(&B.lock);
    qpci_io_writel(c->f.dev, c->f.bar0, VU_TEST_REG_SCRATCH, DMA_MAGIC);
    g_mutex_lock(&B.lock);
    while (!B.job_done) {
        g_cond_wait(&B.cond, &B.lock);
    }
    B.job = NULL;
    g_mutex_unlock(&B.lock);
    return job->err;
}

static Series sdma[2][NSIZES];          /* [write][size] */
static Series scpu[2][NSIZES];          /* client CPU us per request */
static Series fdma[2][NSIZES];          /* [to guest][size] */
/* Why a secure-dma row has no figure: the job's error, or a filter */
static char sdma_why[2][NSIZES][128];
static bool sdma_not_run[2][NSIZES];
static double plot_raw[2][NSIZES];      /* the limits, for the plot */
static double plot_memcpy[NSIZES];

static void bench_secure_dma(void)
{
    Ctx c = { 0 };
    const size_t hdr = sizeof(VFIOUserHdr) + sizeof(VFIOUserDMARW);
    /* For profiling: BENCH_DMA_SIZE=bytes, BENCH_DMA_DIR=read|write */
    const char *only_dir = getenv("BENCH_DMA_DIR");
    unsigned only_size = 0;
    pid_t qpid;

    env_uint("BENCH_DMA_SIZE", &only_size);

    printf("# secure-dma=on: DMA_READ/DMA_WRITE timed on the server thread\n");
    ctx_start(&c, NULL, ",secure-dma=on", true);
    qpid = qtest_pid(c.f.qts);
    for (unsigned r = 0; r < P.rounds; r++) {
        for (unsigned w = 0; w < 2; w++) {
            for (unsigned i = 0; i < NSIZES; i++) {
                size_t sz = dma_sizes[i];
                unsigned n = iters_for(sz);
                g_autofree double *lat = NULL;
                g_autofree double *raw = NULL;
                DMAJob job = { .write = w, .size = sz, .iters = n };
                double lim, val;
                uint64_t cpu0, peer_cpu;

                if ((only_size && only_size != sz) ||
                    (only_dir && !strcmp(only_dir, w ? "read" : "write"))) {
                    sdma_not_run[w][i] = true;
                    snprintf(sdma_why[w][i], sizeof(sdma_why[w][i]),
                             "left out by BENCH_DMA_SIZE/BENCH_DMA_DIR");
                    continue;
                }
                lat = job.lat = g_new(double, n);
                raw = g_new(double, n);
                /* DMA_READ: 32-byte request, 32 + size reply; WRITE: back */
                raw_rpc(w ? hdr + sz : hdr, w ? hdr : hdr + sz, n, raw);
                lim = sz / (median(raw, n) / 1e9);
                peer_cpu = raw_peer_cpu_ns;
                cpu0 = process_cpu_ns(qpid);
                if (run_job(&c, &job)) {
                    printf("# DMA %s %zu failed: %s\n", w ? "write" : "read",
                           sz, strerror(job.err));
                    snprintf(sdma_why[w][i], sizeof(sdma_why[w][i]),
                             "round %u: DMA_%s failed: %s", r,
                             w ? "WRITE" : "READ", strerror(job.err));
                    continue;
                }
                val = sz / (median(lat, n) / 1e9);
                series_add(&sdma[w][i], val / MiB, lim / MiB);
                series_add(&scpu[w][i],
                           (process_cpu_ns(qpid) - cpu0) / 1000.0 / n,
                           peer_cpu / 1000.0 / n);
            }
        }
    }
    ctx_stop(&c);
}

/* ------------------------------------------------------------------ */
/* fd-mapped DMA: the server's engine, copied, through the guest RAM fd */

typedef struct FdMapping {
    uint64_t iova, size;
    uint8_t *host;
} FdMapping;

/* As vu_dma_rw() does for an fd-backed mapping: lock, find, memcpy. */
static void engine_copy(GMutex *lock, FdMapping *maps, unsigned nmaps,
                        uint64_t iova, uint8_t *buf, size_t len,
                        bool to_guest)
{
    while (len) {
        FdMapping *m = NULL;
        size_t chunk;

        g_mutex_lock(lock);
        for (unsigned i = 0; i < nmaps; i++) {
            if (iova >= maps[i].iova && iova - maps[i].iova < maps[i].size) {
                m = &maps[i];
                break;
            }
        }
        g_assert(m);
        chunk = MIN(len, m->size - (iova - m->iova));
        if (to_guest) {
            memcpy(m->host + (iova - m->iova), buf, chunk);
        } else {
            memcpy(buf, m->host + (iova - m->iova), chunk);
        }
        g_mutex_unlock(lock);
        iova += chunk;
        buf += chunk;
        len -= chunk;
    }
}

static void bench_fd_dma(Ctx *c)
{
    GMutex lock;
    FdMapping m;
    void *base;
    g_autofree uint8_t *buf = g_malloc0(MAX_XFER);
    g_autofree uint8_t *heap = g_malloc0(MAX_XFER);

    printf("# fd-mapped DMA: the server's engine through the DMA_MAP fd\n");
    g_mutex_lock(&B.lock);
    if (B.ram_fd < 0) {
        g_mutex_unlock(&B.lock);
        return;
    }
    base = mmap(NULL, B.ram_size, PROT_READ | PROT_WRITE, MAP_SHARED,
                B.ram_fd, B.ram_offset);
    m = (FdMapping) { .iova = B.ram_iova, .size = B.ram_size, .host = base };
    g_mutex_unlock(&B.lock);
    g_assert(base != MAP_FAILED);
    g_mutex_init(&lock);
    /* Fault in and dirty every buffer once: the limit is warm memcpy. */
    memset(buf, 0x5a, MAX_XFER);
    memset(heap, 0xa5, MAX_XFER);

    for (unsigned r = 0; r < P.rounds; r++) {
        for (unsigned t = 0; t < 2; t++) {
            for (unsigned i = 0; i < NSIZES; i++) {
                size_t sz = dma_sizes[i];
                unsigned n = iters_for(sz) * 4;
                g_autofree double *lat = g_new(double, n);
                double lim;

                /*
                 * The better of the two directions: glibc's memcpy can be
                 * many times slower for one placement of two buffers
                 * than for the other (4K aliasing), which is not ours.
                 */
                lim = MAX(memcpy_rate(heap, buf, sz, n),
                          memcpy_rate(buf, heap, sz, n));
                engine_copy(&lock, &m, 1, GUEST_ADDR, buf, sz, t);
                for (unsigned k = 0; k < n; k++) {
                    uint64_t t0 = now_ns();

                    engine_copy(&lock, &m, 1, GUEST_ADDR, buf, sz, t);
                    lat[k] = now_ns() - t0;
                }
                series_add(&fdma[t][i], sz / (median(lat, n) / 1e9) / MiB,
                           lim / MiB);
            }
        }
    }
    g_mutex_clear(&lock);
    munmap(base, m.size);
}

/* ------------------------------------------------------------------ */
/* DMA_MAP/DMA_UNMAP churn: PAM toggles remap RAM below 1 MiB */

static Series churn;

static void bench_churn(Ctx *c)
{
    QPCIDevice *host = qpci_device_find(c->f.bus, QPCI_DEVFN(0, 0));
    const size_t msg = sizeof(VFIOUserHdr) + sizeof(VFIOUserDMAMap);
    unsigned toggles = P.pam_toggles;
    unsigned bursts = 0, nmap = 0, nunmap = 0;
    g_autofree double *raw = g_new(double, toggles * 4);

    printf("# DMA_MAP/UNMAP churn: i440FX PAM toggles, timed on the server\n");
    g_assert(host);
    for (unsigned r = 0; r < P.rounds; r++) {
        uint64_t busy = 0;
        unsigned ops = 0;
        double lim;

        raw_rpc(msg, sizeof(VFIOUserHdr), toggles * 4, raw);
        lim = median(raw, toggles * 4);
        for (unsigned k = 0; k < toggles; k++) {
            /*
             * 0xc0000-0xfffff: RAM read/write, then back to the default.
             * Each register write is one burst: the client sends its
             * maps and unmaps before qtest's write returns, and the gaps
             * are timed within it, so the qtest round trips between the
             * writes are not in the rate.
             */
            for (unsigned reg = 0x5a; reg <= 0x5f; reg++) {
                unsigned first = qatomic_load_acquire(&B.nev), last;

                B.record = true;
                qpci_config_writeb(host, reg, (k & 1) ? 0x00 : 0x33);
                B.record = false;
                last = qatomic_load_acquire(&B.nev);
                if (last - first >= 2) {
                    busy += B.ev[last - 1].t - B.ev[first].t;
                    ops += last - first - 1;
                }
                for (unsigned e = first; e < last; e++) {
                    nmap += B.ev[e].kind == EV_MAP;
                    nunmap += B.ev[e].kind == EV_UNMAP;
                }
                bursts += last > first;
            }
        }
        if (ops) {
            /* pairs per second; the limit: one raw round trip per op */
            series_add(&churn, 1e9 / (2.0 * busy / ops), 1e9 / (2 * lim));
        }
        B.nev = 0;
    }
    printf("# churn: %u toggles made %u bursts: %u DMA_MAP, %u DMA_UNMAP\n",
           toggles * P.rounds, bursts, nmap, nunmap);
    g_free(host);
}

static void bench_memfd(void)
{
    Ctx c = { 0 };

    ctx_start(&c, MEMFD_RAM, NULL, true);
    bench_fd_dma(&c);
    bench_churn(&c);
    ctx_stop(&c);
}

/* ------------------------------------------------------------------ */
/* A guest under TCG: BAR reads, BAR writes, MSI round trips */

typedef struct GuestResult {
    bool ok;
    char why[128];
    unsigned rounds;
    double read_med[MAX_ROUNDS];        /* ns per read */
    double write_rate[MAX_ROUNDS];      /* per second */
    double irq_med[MAX_ROUNDS];         /* ns per MSI round trip */
    GArray *read_gaps;                  /* all, ns */
    GArray *irq_gaps;
} GuestResult;

static char *write_boot(const char *dir)
{
    char *path = g_build_filename(dir, "boot.img", NULL);
    uint8_t img[512];
    uint32_t *params;

    g_assert(sizeof(vfio_user_bench_boot) == sizeof(img));
    memcpy(img, vfio_user_bench_boot, sizeof(img));
    params = (uint32_t *)(img + VFIO_USER_BENCH_BOOT_PARAMS);
    params[0] = cpu_to_le32(P.guest_rounds);
    params[1] = cpu_to_le32(P.guest_reads);
    params[2] = cpu_to_le32(P.guest_writes);
    params[3] = cpu_to_le32(P.guest_irqs);
    g_assert(g_file_set_contents(path, (char *)img, sizeof(img), NULL));
    return path;
}

/* One guest run; @dev_extra is added to the device's options */
static void guest_run(bool posted, const char *dev_extra, GuestResult *res)
{
    Ctx c = { 0 };
    g_autofree char *extra = NULL;
    uint64_t deadline;
    unsigned n, round = 0, i;
    g_autoptr(GArray) rd = g_array_new(false, false, sizeof(double));
    g_autoptr(GArray) irq = g_array_new(false, false, sizeof(double));
    uint64_t prev_read = 0, prev_irq = 0, first_write = 0, last_write = 0;
    unsigned writes = 0;

    memset(res, 0, sizeof(*res));
    res->read_gaps = g_array_new(false, false, sizeof(double));
    res->irq_gaps = g_array_new(false, false, sizeof(double));
    B.nev = 0;
    B.record = true;

    {
        g_autofree char *dir = g_dir_make_tmp("vfio-user-bench-boot-XXXXXX",
                                              NULL);
        g_autofree char *boot = write_boot(dir);
        /* Explicit both ways: the property's default may change. */
        g_autofree char *opts = g_strdup_printf(",x-post-writes=%s%s",
                                                posted ? "on" : "off",
                                                dev_extra);

        extra = g_strdup_printf("-accel tcg -drive file=%s,format=raw,"
                                "if=ide -nodefaults", boot);
        ctx_start(&c, extra, opts, false);
        unlink(boot);
        rmdir(dir);
    }

    deadline = now_ns() + P.guest_timeout_s * 1000000000ull;
    for (;;) {
        unsigned ends = 0;

        n = qatomic_load_acquire(&B.nev);
        for (i = 0; i < n; i++) {
            ends += B.ev[i].kind == EV_ROUND_END;
        }
        if (ends >= P.guest_rounds) {
            break;
        }
        if (now_ns() > deadline) {
            snprintf(res->why, sizeof(res->why), "the guest finished %u of "
                     "%u rounds in %u s (%u BAR accesses seen)", ends,
                     P.guest_rounds, P.guest_timeout_s, n);
            B.record = false;
            ctx_stop(&c);
            return;
        }
        g_usleep(20000);
    }
    B.record = false;

    for (i = 0; i < n && round < MAX_ROUNDS; i++) {
        Event *e = &B.ev[i];
        double g;

        switch (e->kind) {
        case EV_READ:
            if (prev_read) {
                g = e->t - prev_read;
                g_array_append_val(rd, g);
            }
            prev_read = e->t;
            break;
        case EV_WRITE:
            if (!writes++) {
                first_write = e->t;
            }
            last_write = e->t;
            break;
        case EV_IRQ:
            if (prev_irq) {
                g = e->t - prev_irq;
                g_array_append_val(irq, g);
            }
            prev_irq = e->t;
            break;
        case EV_ROUND_END:
            res->read_med[round] = median((double *)rd->data, rd->len);
            res->write_rate[round] = writes > 1 ?
                (writes - 1) / ((last_write - first_write) / 1e9) : NAN;
            res->irq_med[round] = median((double *)irq->data, irq->len);
            g_array_append_vals(res->read_gaps, rd->data, rd->len);
            g_array_append_vals(res->irq_gaps, irq->data, irq->len);
            g_array_set_size(rd, 0);
            g_array_set_size(irq, 0);
            prev_read = prev_irq = 0;
            writes = 0;
            round++;
            break;
        }
    }
    res->rounds = round;
    res->ok = true;
    ctx_stop(&c);
}

static void guest_result_free(GuestResult *res)
{
    if (res->read_gaps) {
        g_array_unref(res->read_gaps);
        g_array_unref(res->irq_gaps);
    }
}

static void bench_guest(void)
{
    GuestResult pr, np, sl;
    const size_t rd_req = sizeof(VFIOUserHdr) + sizeof(VFIOUserRegionRW);
    const size_t rd_rep = rd_req + 4;
    Series rl = { 0 }, rl99 = { 0 }, wp = { 0 }, wn = { 0 }, ir = { 0 },
           ww = { 0 }, rs = { 0 };
    unsigned lim_iters = P.rt_iters;
    g_autofree double *raw = g_new(double, lim_iters);
    double all_raw_med[MAX_ROUNDS], all_raw_99[MAX_ROUNDS];
    double rt_rate[MAX_ROUNDS], ow_rate[MAX_ROUNDS], ev_med[MAX_ROUNDS];

    printf("# BAR0 accesses and MSI: a guest under TCG, timed on the "
           "server\n");
    guest_run(true, "", &pr);
    guest_run(false, "", &np);
    /* What busy-polling for the reply is worth: the same without it. */
    guest_run(false, ",x-poll-max-ns=0", &sl);

    /* The limits, measured right after, as many rounds. */
    for (unsigned r = 0; r < P.rounds; r++) {
        raw_rpc(rd_req, rd_rep, lim_iters, raw);
        all_raw_99[r] = pct(raw, lim_iters, 99);
        all_raw_med[r] = median(raw, lim_iters);
        raw_rpc(rd_rep, rd_req, lim_iters, raw);   /* a write's shape */
        rt_rate[r] = 1e9 / median(raw, lim_iters);
        ow_rate[r] = raw_oneway_rate(rd_rep, P.oneway_msgs);
        raw_msg_eventfd(rd_rep, lim_iters, raw);
        ev_med[r] = median(raw, lim_iters);
    }

    if (pr.ok) {
        for (unsigned r = 0; r < pr.rounds; r++) {
            unsigned l = r % P.rounds;

            series_add(&rl, pr.read_med[r] / 1000, all_raw_med[l] / 1000);
            series_add(&wp, pr.write_rate[r] / 1000, ow_rate[l] / 1000);
            series_add(&ir, pr.irq_med[r] / 1000, ev_med[l] / 1000);
        }
        {
            double p99 = pct((double *)pr.read_gaps->data, pr.read_gaps->len,
                             99);

            for (unsigned r = 0; r < P.rounds; r++) {
                series_add(&rl99, p99 / 1000, all_raw_99[r] / 1000);
            }
        }
        row_from_series("BAR read by message, median", "4B", "us",
                        "raw AF_UNIX round trip", false, &rl,
                        "guest loop under TCG; gap between consecutive "
                        "REGION_READs at the server");
        row_from_series("BAR read by message, p99", "4B", "us",
                        "raw AF_UNIX round trip p99", false, &rl99,
                        "p99 over all reads of all rounds (spread: limit's)");
        row_from_series("BAR write posted", "4B", "k/s",
                        "raw one-way send rate", true, &wp,
                        "arrival rate at the server of back-to-back "
                        "guest writes");
        row_from_series("interrupt (MSI) round trip", "-", "us",
                        "msg one way + eventfd back", false, &ir,
                        "guest: posted IRQ_RAISE write, spin until the "
                        "MSI lands in RAM; gap at the server");
    } else {
        row_not_measured("BAR read by message", "4B",
                         "raw AF_UNIX round trip", pr.why);
        row_not_measured("BAR write posted", "4B", "raw one-way send rate",
                         pr.why);
        row_not_measured("interrupt (MSI) round trip", "-",
                         "msg one way + eventfd back", pr.why);
    }
    if (np.ok) {
        for (unsigned r = 0; r < np.rounds; r++) {
            series_add(&wn, np.write_rate[r] / 1000,
                       rt_rate[r % P.rounds] / 1000);
        }
        row_from_series("BAR write non-posted", "4B", "k/s",
                        "raw round trip rate", true, &wn,
                        "x-post-writes=off; arrival rate at the server");
    } else {
        row_not_measured("BAR write non-posted", "4B", "raw round trip rate",
                         np.why);
    }
    if (sl.ok) {
        for (unsigned r = 0; r < sl.rounds; r++) {
            series_add(&rs, sl.read_med[r] / 1000,
                       all_raw_med[r % P.rounds] / 1000);
        }
        row_from_series("BAR read, x-poll-max-ns=0", "4B", "us",
                        "raw AF_UNIX round trip", false, &rs,
                        "as above, with no busy-polling for the reply: "
                        "the vCPU sleeps at once");
    } else {
        row_not_measured("BAR read, x-poll-max-ns=0", "4B",
                         "raw AF_UNIX round trip", sl.why);
    }
    if (pr.ok && np.ok) {
        /* The goal: posted >= 5x non-posted, same run. */
        for (unsigned r = 0; r < MIN(pr.rounds, np.rounds); r++) {
            series_add(&ww, pr.write_rate[r] / 1000,
                       np.write_rate[r] / 1000);
        }
        row_from_series("BAR write posted vs non-posted", "4B", "k/s",
                        "non-posted rate", true, &ww, NULL);
    }
    guest_result_free(&pr);
    guest_result_free(&np);
    guest_result_free(&sl);
}

/* ------------------------------------------------------------------ */

/*
 * A secure-dma row without a figure, with its reason: left out on
 * request, or a round's DMA failed (the error, not a partial median).
 */
static bool secure_dma_row_missing(const char *name, unsigned i, unsigned w)
{
    if (!want("dma") || sdma_not_run[w][i]) {
        row_not_run(name, size_str(dma_sizes[i]), "-",
                    want("dma") ? sdma_why[w][i] : "BENCH_ONLY");
        return true;
    }
    if (sdma_why[w][i][0]) {
        row_not_measured(name, size_str(dma_sizes[i]), "-", sdma_why[w][i]);
        return true;
    }
    return false;
}

static void dma_rows(void)
{
    static const char *sname[2] = { "secure-dma DMA_READ",
                                    "secure-dma DMA_WRITE" };
    static const char *fname[2] = { "fd-mapped DMA from guest",
                                    "fd-mapped DMA to guest" };

    for (unsigned w = 0; w < 2; w++) {
        for (unsigned i = 0; i < NSIZES; i++) {
            if (!secure_dma_row_missing(sname[w], i, w)) {
                row_from_series(sname[w], size_str(dma_sizes[i]), "MiB/s",
                                w ? "raw stream, DMA_WRITE shape" :
                                    "raw stream, DMA_READ shape",
                                true, &sdma[w][i],
                                i ? NULL : "per request, server thread: "
                                "send, client services, reply parsed");
            }
        }
    }
    for (unsigned w = 0; w < 2; w++) {
        for (unsigned i = 0; i < NSIZES; i++) {
            const char *cname = w ? "client CPU per DMA_WRITE" :
                                    "client CPU per DMA_READ";

            if (!secure_dma_row_missing(cname, i, w)) {
                row_from_series(cname, size_str(dma_sizes[i]), "us",
                                "raw peer's CPU per request", false,
                                &scpu[w][i],
                                i ? NULL : "all QEMU threads (schedstat) "
                                "while the server DMAs; limit: the raw "
                                "stream's responder thread");
            }
        }
    }
    if (!want("memfd")) {
        row_not_run(fname[0], "-", "memcpy", "BENCH_ONLY");
    } else if (!fdma[0][0].n) {
        row_not_measured(fname[0], "-", "memcpy", "no DMA_MAP with an fd "
                         "covered guest RAM");
    }
    for (unsigned t = 0; t < 2 && fdma[0][0].n; t++) {
        for (unsigned i = 0; i < NSIZES; i++) {
            row_from_series(fname[t], size_str(dma_sizes[i]), "MiB/s",
                            "memcpy, heap to heap", true, &fdma[t][i], NULL);
        }
    }
    if (churn.n) {
        row_from_series("DMA_MAP+DMA_UNMAP pairs", "-", "pairs/s",
                        "raw round trip (per op)", true, &churn,
                        "ops within a PAM-toggle burst, first to last "
                        "arrival at the server (memfd RAM, fds attached)");
    } else if (!want("memfd")) {
        row_not_run("DMA_MAP+DMA_UNMAP pairs", "-", "raw round trip",
                    "BENCH_ONLY");
    } else {
        row_not_measured("DMA_MAP+DMA_UNMAP pairs", "-", "raw round trip",
                         "PAM toggles caused no DMA_MAP/UNMAP bursts");
    }
    /* For the plot: medians of the limits per size. */
    for (unsigned i = 0; i < NSIZES; i++) {
        for (unsigned w = 0; w < 2; w++) {
            Series *s = &sdma[w][i];
            double l[MAX_ROUNDS];

            memcpy(l, s->lim, sizeof(l));
            plot_raw[w][i] = s->n ? median(l, s->n) : NAN;
        }
        if (fdma[1][i].n) {
            double l[MAX_ROUNDS];

            memcpy(l, fdma[1][i].lim, sizeof(l));
            plot_memcpy[i] = median(l, fdma[1][i].n);
        } else {
            plot_memcpy[i] = NAN;
        }
    }
}

static double series_med(Series *s)
{
    double v[MAX_ROUNDS];

    if (!s->n) {
        return NAN;
    }
    memcpy(v, s->val, sizeof(v));
    return median(v, s->n);
}

/* Throughput vs size, for gnuplot: size, then one column per series. */
static void write_plot_data(const char *path)
{
    FILE *f = fopen(path, "w");

    g_assert(f);
    fprintf(f, "# size_bytes secure_read secure_write raw_read_shape "
            "raw_write_shape fd_from_guest fd_to_guest memcpy (MiB/s)\n");
    for (unsigned i = 0; i < NSIZES; i++) {
        fprintf(f, "%zu %.6g %.6g %.6g %.6g %.6g %.6g %.6g\n", dma_sizes[i],
                series_med(&sdma[0][i]), series_med(&sdma[1][i]),
                plot_raw[0][i], plot_raw[1][i], series_med(&fdma[0][i]),
                series_med(&fdma[1][i]), plot_memcpy[i]);
    }
    fclose(f);
}

int main(int argc, char **argv)
{
    const char *csv_path = NULL, *plot_path = NULL;
    const char *q = getenv("BENCH_QUICK");
    unsigned unmeasured;

    P.quick = q && *q && strcmp(q, "0");
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) {
            P.quick = true;
        } else if (!strcmp(argv[i], "--csv") && i + 1 < argc) {
            csv_path = argv[++i];
        } else if (!strcmp(argv[i], "--plot-data") && i + 1 < argc) {
            plot_path = argv[++i];
        } else {
            fprintf(stderr, "usage: %s [--quick] [--csv FILE] "
                    "[--plot-data FILE]\n", argv[0]);
            return 2;
        }
    }
    if (P.quick) {
        P = (Params) { .quick = true, .rounds = 1, .rt_iters = 2000,
                       .oneway_msgs = 20000, .dma_bytes = 4 * MiB,
                       .guest_rounds = 1, .guest_reads = 500,
                       .guest_writes = 500, .guest_irqs = 50,
                       .pam_toggles = 4, .guest_timeout_s = 20 };
    } else {
        P = (Params) { .rounds = 5, .rt_iters = 20000,
                       .oneway_msgs = 200000, .dma_bytes = 64 * MiB,
                       .guest_rounds = 5, .guest_reads = 20000,
                       .guest_writes = 20000, .guest_irqs = 2000,
                       .pam_toggles = 40, .guest_timeout_s = 300 };
    }
    /* For profiling: more guest iterations, one part only. */
    env_uint("BENCH_GUEST_ROUNDS", &P.guest_rounds);
    env_uint("BENCH_GUEST_READS", &P.guest_reads);
    env_uint("BENCH_GUEST_WRITES", &P.guest_writes);
    env_uint("BENCH_GUEST_IRQS", &P.guest_irqs);
    env_uint("BENCH_ROUNDS", &P.rounds);
    P.dev_opts = getenv("BENCH_DEVICE_OPTS") ?: "";
    P.rounds = MIN(MAX(P.rounds, 1), MAX_ROUNDS);
    P.guest_rounds = MIN(MAX(P.guest_rounds, 1), MAX_ROUNDS);
    if (!getenv("QTEST_QEMU_BINARY")) {
        fprintf(stderr, "QTEST_QEMU_BINARY must name qemu-system-x86_64\n");
        return 2;
    }
    if (csv_path) {
        csv = fopen(csv_path, "w");
        g_assert(csv);
    }
    rows = g_array_new(false, true, sizeof(Row));
    B.ev = g_new0(Event, MAX_EVENTS);
    B.ram_fd = -1;
    g_mutex_init(&B.lock);
    g_cond_init(&B.cond);

    printf("# vfio-user-pci benchmarks (%s): %u rounds; figures are medians "
           "over rounds, [min..max] the spread, ratio the median of "
           "per-round figure/limit\n", P.quick ? "quick" : "full", P.rounds);
    if (*P.dev_opts) {
        printf("# -device vfio-user-pci,...%s\n", P.dev_opts);
    }
    if (want("guest")) {
        bench_guest();
    }
    if (want("dma")) {
        bench_secure_dma();
    }
    if (want("memfd")) {
        bench_memfd();
    }
    dma_rows();
    print_rows();
    if (plot_path) {
        write_plot_data(plot_path);
    }
    if (csv) {
        fclose(csv);
    }
    unmeasured = count_unmeasured();
    if (unmeasured) {
        printf("bench: FAIL: %u rows not measured (reasons above)\n",
               unmeasured);
        return 1;
    }
    return 0;
}
