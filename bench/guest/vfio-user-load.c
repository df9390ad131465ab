/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vfio-user-load: a block I/O load generator for the benchmark guest.
 *
 * The guest of make bench (scripts/build-guest.sh, demo=load) runs it on
 * the NVMe namespace that QEMU's vfio-user server exposes, to measure
 * what a guest gets at a queue depth above one: dd keeps one I/O in
 * flight, a real workload keeps many.
 *
 * Why not fio: Debian's fio binary (bookworm, 3.33) links thirteen shared
 * libraries (librados, librbd, libgfapi, libibverbs, librdmacm, libpmem,
 * libnbd, ...) and they pull in more (ceph, glusterfs, boost): 18
 * packages besides fio, 43 MB, all of which the busybox initramfs would
 * have to carry.  This program is built static on the host and needs nothing.
 * It takes fio's option names and prints fio's kind of report, so a
 * result reads the same and a job can be rerun under fio elsewhere.
 *
 * How: Linux native AIO (io_setup/io_submit/io_getevents, called
 * directly, no libaio) on the device opened with O_DIRECT, so that one
 * thread keeps IODEPTH requests in flight; a guest under TCG has little
 * CPU to spare on switching between IODEPTH threads.  Each completed
 * request is resubmitted at once.  Completion latency is measured from
 * just before io_submit to the io_getevents that returns it.
 *
 * Usage: vfio-user-load [GLOBAL OPTIONS] --name=JOB [JOB OPTIONS] ...
 *   Options before the first --name apply to every job (fio's global
 *   section); each --name starts a job.  Jobs run one after the other
 *   (as with fio's stonewall).
 *   --filename=PATH    device or file (O_DIRECT)
 *   --rw=read|write|randread|randwrite
 *   --bs=SIZE          block size (default 4k); SIZE takes k, m, g
 *   --iodepth=N        requests in flight (default 1)
 *   --size=SIZE        the region used, from --offset (default: to the end)
 *   --offset=SIZE      start of the region (default 0)
 *   --runtime=TIME     stop after TIME (s, or with ms/s/m suffix)
 *   --time_based       run for the whole runtime, wrapping around the
 *                      region (else stop after SIZE bytes)
 *   --direct=1         accepted; I/O is always O_DIRECT
 *   --output-format=normal|kv|normal,kv
 *                      kv: one line per job, "vfio-user-load: name=...
 *                      key=value ...", for scripts
 * Exit status: 0, or 1 on an I/O error or bad option.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/aio_abi.h>
#include <linux/fs.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_JOBS        32
#define MIN(a, b)       ((a) < (b) ? (a) : (b))
#define MAX(a, b)       ((a) > (b) ? (a) : (b))
#define MAX_DEPTH       256

/*
 * Latency histogram: log-linear buckets, 2^SUB_BITS per power of two of
 * nanoseconds, so a percentile is exact to within 1/2^SUB_BITS (6 %).
 */
#define SUB_BITS        4
#define NBUCKETS        (64 << SUB_BITS)

typedef enum { RW_READ, RW_WRITE, RW_RANDREAD, RW_RANDWRITE } RwMode;

static const char *const rw_names[] = {
    [RW_READ] = "read", [RW_WRITE] = "write",
    [RW_RANDREAD] = "randread", [RW_RANDWRITE] = "randwrite",
};

typedef struct Job {
    char name[64];
    const char *filename;
    RwMode rw;
    uint64_t bs;
    unsigned iodepth;
    uint64_t size;              /* 0: to the end of the device */
    uint64_t offset;
    uint64_t runtime_ns;        /* 0: no limit */
    bool time_based;
} Job;

typedef struct Stats {
    uint64_t ios, bytes, elapsed_ns;
    uint64_t lat_min, lat_max;
    double lat_sum, lat_sq;
    uint64_t hist[NBUCKETS];
} Stats;

static bool out_normal = true, out_kv;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void die(const char *fmt, ...)
{
    va_list ap;

    fflush(stdout);
    fprintf(stderr, "vfio-user-load: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    exit(1);
}

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* "4k", "1M", "64m", "512": bytes (fio takes k/m/g as powers of 1024) */
static uint64_t parse_size(const char *opt, const char *s)
{
    char *end;
    uint64_t v;

    errno = 0;
    v = strtoull(s, &end, 0);
    if (errno || end == s) {
        die("--%s=%s: not a size", opt, s);
    }
    switch (*end) {
    case 'k': case 'K':
        v <<= 10, end++;
        break;
    case 'm': case 'M':
        v <<= 20, end++;
        break;
    case 'g': case 'G':
        v <<= 30, end++;
        break;
    }
    if (*end == 'i' || *end == 'b' || *end == 'B') {
        end += *end == 'i' ? 2 : 1;
    }
    if (*end) {
        die("--%s=%s: not a size", opt, s);
    }
    return v;
}

/* "5", "5s", "500ms", "2m": nanoseconds (fio's default unit is s) */
static uint64_t parse_time(const char *opt, const char *s)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (errno || end == s || v < 0) {
        die("--%s=%s: not a time", opt, s);
    }
    if (!strcmp(end, "ms")) {
        v /= 1e3;
    } else if (!strcmp(end, "m")) {
        v *= 60;
    } else if (*end && strcmp(end, "s")) {
        die("--%s=%s: not a time", opt, s);
    }
    return v * 1e9;
}

/* Apply one "--key=value" option to JOB; false if KEY is not known. */
static bool job_option(Job *job, const char *key, const char *val)
{
    if (!strcmp(key, "filename")) {
        job->filename = val;
    } else if (!strcmp(key, "rw") || !strcmp(key, "readwrite")) {
        unsigned i;

        for (i = 0; i < 4 && strcmp(val, rw_names[i]); i++) {
            continue;
        }
        if (i == 4) {
            die("--rw=%s: read, write, randread or randwrite", val);
        }
        job->rw = i;
    } else if (!strcmp(key, "bs")) {
        job->bs = parse_size(key, val);
    } else if (!strcmp(key, "iodepth")) {
        job->iodepth = strtoul(val, NULL, 0);
        if (job->iodepth < 1 || job->iodepth > MAX_DEPTH) {
            die("--iodepth=%s: 1 to %d", val, MAX_DEPTH);
        }
    } else if (!strcmp(key, "size")) {
        job->size = parse_size(key, val);
    } else if (!strcmp(key, "offset")) {
        job->offset = parse_size(key, val);
    } else if (!strcmp(key, "runtime")) {
        job->runtime_ns = parse_time(key, val);
    } else if (!strcmp(key, "time_based")) {
        job->time_based = !val || strcmp(val, "0");
    } else if (!strcmp(key, "direct")) {
        if (val && strcmp(val, "1")) {
            die("--direct=%s: only O_DIRECT I/O is supported", val);
        }
    } else {
        return false;
    }
    return true;
}

/* xorshift64*: random offsets; the seed only has to differ per job */
static uint64_t rand_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545f4914f6cdd1dull;
}

static unsigned bucket_of(uint64_t ns)
{
    unsigned msb;

    if (ns < (1u << SUB_BITS)) {
        return ns;
    }
    msb = 63 - __builtin_clzll(ns);
    return ((msb - SUB_BITS + 1) << SUB_BITS) +
           ((ns >> (msb - SUB_BITS)) & ((1u << SUB_BITS) - 1));
}

/* The middle of bucket B, in ns */
static double bucket_value(unsigned b)
{
    unsigned e = b >> SUB_BITS, m = b & ((1u << SUB_BITS) - 1);

    if (e == 0) {
        return m;
    }
    return ldexp((1u << SUB_BITS) + m + 0.5, e - 1);
}

static double percentile(const Stats *st, double p)
{
    uint64_t want = ceil(st->ios * p / 100.0), seen = 0;

    for (unsigned b = 0; b < NBUCKETS; b++) {
        seen += st->hist[b];
        if (seen >= want && seen) {
            /* A bucket's middle may lie outside what was seen. */
            return MIN(MAX(bucket_value(b), st->lat_min), st->lat_max);
        }
    }
    return st->lat_max;
}

static void account(Stats *st, uint64_t lat, uint64_t bytes)
{
    st->ios++;
    st->bytes += bytes;
    st->lat_min = st->ios == 1 || lat < st->lat_min ? lat : st->lat_min;
    st->lat_max = lat > st->lat_max ? lat : st->lat_max;
    st->lat_sum += lat;
    st->lat_sq += (double)lat * lat;
    st->hist[bucket_of(lat)]++;
}

static uint64_t device_size(int fd, const char *path)
{
    struct stat s;
    uint64_t sz;

    if (fstat(fd, &s) < 0) {
        die("%s: %s", path, strerror(errno));
    }
    if (S_ISBLK(s.st_mode)) {
        if (ioctl(fd, BLKGETSIZE64, &sz) < 0) {
            die("%s: BLKGETSIZE64: %s", path, strerror(errno));
        }
        return sz;
    }
    return s.st_size;
}

typedef struct Slot {
    struct iocb cb;
    void *buf;
    uint64_t t_submit;
} Slot;

/*
 * Run JOB to completion: keep iodepth requests in flight until the
 * runtime is over or (without time_based) size bytes were issued, then
 * wait for those in flight.
 */
static void run_job(const Job *job, Stats *st)
{
    static Slot slots[MAX_DEPTH];
    struct iocb *batch[MAX_DEPTH];
    struct io_event ev[MAX_DEPTH];
    bool rnd = job->rw == RW_RANDREAD || job->rw == RW_RANDWRITE;
    bool wr = job->rw == RW_WRITE || job->rw == RW_RANDWRITE;
    uint64_t devsize, region, next = 0, issued = 0, nblocks, seed, t0;
    uint64_t deadline;
    aio_context_t ctx = 0;
    unsigned inflight = 0, n;
    int fd;

    if (!job->filename) {
        die("job %s: no --filename", job->name);
    }
    if (!job->bs || job->bs % 512) {
        die("job %s: --bs must be a multiple of 512", job->name);
    }
    fd = open(job->filename, (wr ? O_RDWR : O_RDONLY) | O_DIRECT);
    if (fd < 0) {
        die("%s: %s", job->filename, strerror(errno));
    }
    devsize = device_size(fd, job->filename);
    if (job->offset >= devsize) {
        die("job %s: --offset beyond the end of %s", job->name,
            job->filename);
    }
    region = job->size ? job->size : devsize - job->offset;
    if (region > devsize - job->offset) {
        die("job %s: --size=%" PRIu64 " goes beyond the end of %s (%" PRIu64
            " bytes)", job->name, region, job->filename, devsize);
    }
    nblocks = region / job->bs;
    if (!nblocks) {
        die("job %s: region of %" PRIu64 " bytes is smaller than bs",
            job->name, region);
    }
    if (syscall(SYS_io_setup, job->iodepth, &ctx) < 0) {
        die("io_setup: %s", strerror(errno));
    }
    seed = now_ns() | 1;
    for (unsigned i = 0; i < job->iodepth; i++) {
        if (posix_memalign(&slots[i].buf, 4096, job->bs)) {
            die("out of memory for %u buffers of %" PRIu64 " bytes",
                job->iodepth, job->bs);
        }
        /* Written data are not all zeros, as with fio's default. */
        for (uint64_t k = 0; k < job->bs; k += 8) {
            *(uint64_t *)((char *)slots[i].buf + k) = rand_next(&seed);
        }
    }

    memset(st, 0, sizeof(*st));
    t0 = now_ns();
    deadline = job->runtime_ns ? t0 + job->runtime_ns : UINT64_MAX;
    n = job->iodepth;
    for (unsigned i = 0; i < n; i++) {
        batch[i] = &slots[i].cb;
    }
    for (;;) {
        uint64_t t = now_ns();
        unsigned nsub = 0;
        long got;

        /* Refill the free slots in BATCH[0..N) */
        for (unsigned i = 0; i < n; i++) {
            Slot *s = (Slot *)batch[i];
            uint64_t blk;

            if (t >= deadline ||
                (!job->time_based && issued >= region)) {
                break;
            }
            if (rnd) {
                blk = rand_next(&seed) % nblocks;
            } else {
                blk = next;
                next = (next + 1) % nblocks;
            }
            memset(&s->cb, 0, sizeof(s->cb));
            s->cb.aio_fildes = fd;
            s->cb.aio_lio_opcode = wr ? IOCB_CMD_PWRITE : IOCB_CMD_PREAD;
            s->cb.aio_buf = (uintptr_t)s->buf;
            s->cb.aio_nbytes = job->bs;
            s->cb.aio_offset = job->offset + blk * job->bs;
            s->cb.aio_data = (uintptr_t)s;
            s->t_submit = t;
            batch[nsub++] = &s->cb;
            issued += job->bs;
        }
        if (nsub) {
            long r = syscall(SYS_io_submit, ctx, nsub, batch);

            if (r != nsub) {
                die("io_submit: %s", r < 0 ? strerror(errno) : "short");
            }
            inflight += nsub;
        }
        if (!inflight) {
            break;
        }
        got = syscall(SYS_io_getevents, ctx, 1, inflight, ev, NULL);
        if (got < 0) {
            if (errno == EINTR) {
                n = 0;
                continue;
            }
            die("io_getevents: %s", strerror(errno));
        }
        t = now_ns();
        for (long i = 0; i < got; i++) {
            Slot *s = (Slot *)(uintptr_t)ev[i].data;

            if (ev[i].res != (int64_t)job->bs) {
                die("job %s: %s of %" PRIu64 " bytes at %llu: %s", job->name,
                    wr ? "write" : "read", job->bs,
                    (unsigned long long)s->cb.aio_offset,
                    (int64_t)ev[i].res < 0 ?
                    strerror(-(int64_t)ev[i].res) : "short transfer");
            }
            account(st, t - s->t_submit, job->bs);
            batch[i] = &s->cb;
        }
        inflight -= got;
        n = got;
        st->elapsed_ns = t - t0;
    }
    syscall(SYS_io_destroy, ctx);
    for (unsigned i = 0; i < job->iodepth; i++) {
        free(slots[i].buf);
    }
    close(fd);
}

static const char *size_str(uint64_t v, char *buf, size_t len)
{
    if (v >= (1 << 20) && !(v % (1 << 20))) {
        snprintf(buf, len, "%" PRIu64 "M", v >> 20);
    } else if (v >= 1024 && !(v % 1024)) {
        snprintf(buf, len, "%" PRIu64 "k", v >> 10);
    } else {
        snprintf(buf, len, "%" PRIu64, v);
    }
    return buf;
}

static void report(const Job *job, const Stats *st)
{
    static const double pct[] = { 1, 5, 10, 50, 90, 95, 99, 99.9 };
    const unsigned npct = sizeof(pct) / sizeof(pct[0]);
    double secs = st->elapsed_ns / 1e9;
    double iops = secs > 0 ? st->ios / secs : 0;
    double mibps = secs > 0 ? st->bytes / secs / (1 << 20) : 0;
    double avg = st->ios ? st->lat_sum / st->ios : 0;
    double var = st->ios ? st->lat_sq / st->ios - avg * avg : 0;
    bool wr = job->rw == RW_WRITE || job->rw == RW_RANDWRITE;
    char bs[24];

    size_str(job->bs, bs, sizeof(bs));
    if (out_normal) {
        printf("%s: (groupid=0, jobs=1): rw=%s, bs=%s, iodepth=%u, "
               "ioengine=linux native aio, direct=1\n",
               job->name, rw_names[job->rw], bs, job->iodepth);
        printf("  %s: IOPS=%.0f, BW=%.1fMiB/s (%.1fMB/s)"
               "(%.1fMiB/%.0fmsec)\n", wr ? "write" : "read", iops, mibps,
               mibps * 1.048576, st->bytes / 1048576.0, secs * 1e3);
        printf("    clat (usec): min=%.0f, max=%.0f, avg=%.2f, "
               "stdev=%.2f\n", st->lat_min / 1e3, st->lat_max / 1e3,
               avg / 1e3, sqrt(var > 0 ? var : 0) / 1e3);
        printf("     clat percentiles (usec):\n");
        for (unsigned i = 0; i < npct; i++) {
            printf("%s %5.2fth=[%5.0f]%s", i % 4 ? "" : "     |", pct[i],
                   percentile(st, pct[i]) / 1e3,
                   i == npct - 1 ? "\n" : i % 4 == 3 ? ",\n" : ",");
        }
    }
    if (out_kv) {
        printf("vfio-user-load: name=%s rw=%s bs=%" PRIu64 " iodepth=%u "
               "ios=%" PRIu64 " bytes=%" PRIu64 " usec=%" PRIu64 " "
               "iops=%.1f mibps=%.2f clat_avg_us=%.1f clat_p50_us=%.1f "
               "clat_p99_us=%.1f clat_max_us=%.1f\n", job->name,
               rw_names[job->rw], job->bs, job->iodepth, st->ios, st->bytes,
               st->elapsed_ns / 1000, iops, mibps, avg / 1e3,
               percentile(st, 50) / 1e3, percentile(st, 99) / 1e3,
               st->lat_max / 1e3);
    }
    fflush(stdout);
}

int main(int argc, char **argv)
{
    static Job jobs[MAX_JOBS];
    static Stats st;
    Job global = { .rw = RW_READ, .bs = 4096, .iodepth = 1 };
    Job *cur = &global;
    unsigned njobs = 0;

    for (int i = 1; i < argc; i++) {
        char *a = argv[i], *val;

        if (strncmp(a, "--", 2)) {
            die("%s: options are --key=value (fio's names)", a);
        }
        a += 2;
        val = strchr(a, '=');
        if (val) {
            *val++ = '\0';
        }
        if (!strcmp(a, "name")) {
            if (njobs == MAX_JOBS) {
                die("at most %d jobs", MAX_JOBS);
            }
            /* A job starts from the global options. */
            jobs[njobs] = global;
            cur = &jobs[njobs++];
            snprintf(cur->name, sizeof(cur->name), "%s", val ? val : "");
        } else if (!strcmp(a, "output-format") && val) {
            out_normal = strstr(val, "normal") != NULL;
            out_kv = strstr(val, "kv") != NULL;
        } else if (!job_option(cur, a, val)) {
            die("--%s: unknown option", a);
        }
    }
    if (!njobs) {
        die("no job: give at least one --name=JOB");
    }
    for (unsigned i = 0; i < njobs; i++) {
        if (out_normal) {
            printf("Starting job %s\n", jobs[i].name);
            fflush(stdout);
        }
        run_job(&jobs[i], &st);
        report(&jobs[i], &st);
    }
    return 0;
}
