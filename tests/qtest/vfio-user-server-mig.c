/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The test server's migration: VFIO_USER_DEVICE_FEATURE (the migration
 * state machine and DMA logging) and VFIO_USER_MIG_DATA_READ/WRITE, as
 * QEMU 10.2's docs/interop/vfio-user.rst has them.  vfio-user-server.h
 * documents what tests see: the state that migrates, the stream format,
 * and our choices where the spec leaves one.
 *
 * Everything here runs with the server's lock held (the request
 * handlers take it).  The save stream is built when a state calls for it
 * (the whole buffer on entering PRE_COPY, the rest on entering STOP_COPY)
 * and, in PRE_COPY, from the chunks written since, once the client has
 * read what there was.  A restore is checked record by record as its
 * data comes, and applied to a copy of the buffer that becomes the
 * device's only at RESUMING -> STOP.
 */

#include "qemu/osdep.h"
#include "qemu/bitmap.h"
#include "qemu/bswap.h"
#include "qemu/host-utils.h"
#include "vfio-user-server-int.h"

#define VU_MIG_STATES       VFIO_DEVICE_STATE_NR
#define VU_FEATURE_GET      VFIO_DEVICE_FEATURE_GET
#define VU_FEATURE_SET      VFIO_DEVICE_FEATURE_SET
#define VU_FEATURE_PROBE    VFIO_DEVICE_FEATURE_PROBE
#define VU_MIG_REC_SIZE     sizeof(VUTestMigRecord)

void vu_mig_init(VUTestServer *s)
{
    VUMig *m = &s->mig;

    m->state = VFIO_DEVICE_STATE_RUNNING;
    m->out = g_byte_array_new();
    m->in = g_byte_array_new();
    m->log_ranges = g_array_new(FALSE, FALSE,
                                sizeof(VFIOUserDMALoggingRange));
    m->dirty_pages = g_hash_table_new_full(g_int64_hash, g_int64_equal,
                                           g_free, NULL);
}

void vu_mig_free(VUTestServer *s)
{
    VUMig *m = &s->mig;

    g_byte_array_unref(m->out);
    g_byte_array_unref(m->in);
    g_free(m->stage);
    g_array_unref(m->log_ranges);
    g_hash_table_destroy(m->dirty_pages);
}

static bool vu_mig_saving(uint32_t state)
{
    return state == VFIO_DEVICE_STATE_PRE_COPY ||
           state == VFIO_DEVICE_STATE_STOP_COPY;
}

bool vu_mig_frozen(VUTestServer *s)
{
    return s->mig.state != VFIO_DEVICE_STATE_RUNNING &&
           s->mig.state != VFIO_DEVICE_STATE_PRE_COPY;
}

/* The device wrote to buf: what PRE_COPY sent of those chunks is stale */
void vu_mig_buf_dirty(VUTestServer *s, uint64_t offset, uint64_t len)
{
    uint64_t first = offset / VU_MIG_CHUNK_SIZE;

    if (s->mig.state != VFIO_DEVICE_STATE_PRE_COPY || !len) {
        return;
    }
    bitmap_set(s->mig.dirty, first,
               (offset + len - 1) / VU_MIG_CHUNK_SIZE - first + 1);
}

/* Saving */

static void vu_mig_put_rec(VUTestServer *s, uint32_t type, uint32_t offset,
                           const void *data, uint32_t len)
{
    uint8_t h[VU_MIG_REC_SIZE];

    stl_le_p(h, type);
    stl_le_p(h + 4, offset);
    stl_le_p(h + 8, len);
    g_byte_array_append(s->mig.out, h, sizeof(h));
    if (len) {
        g_byte_array_append(s->mig.out, data, len);
    }
}

/* Send the chunks written since they were sent; returns whether any */
static bool vu_mig_put_dirty(VUTestServer *s)
{
    unsigned long *dirty = s->mig.dirty;
    unsigned long i = find_first_bit(dirty, VU_MIG_NCHUNKS);
    bool any = i < VU_MIG_NCHUNKS;

    for (; i < VU_MIG_NCHUNKS; i = find_next_bit(dirty, VU_MIG_NCHUNKS, i)) {
        unsigned offset = i * VU_MIG_CHUNK_SIZE;

        clear_bit(i, dirty);
        vu_mig_put_rec(s, VU_TEST_MIG_REC_CHUNK, offset, s->buf + offset,
                       VU_MIG_CHUNK_SIZE);
    }
    return any;
}

static void vu_mig_put_all(VUTestServer *s)
{
    bitmap_fill(s->mig.dirty, VU_MIG_NCHUNKS);
    vu_mig_put_dirty(s);
}

/* Entering STOP_COPY: the device has stopped, the rest of it goes out */
static void vu_mig_put_final(VUTestServer *s, bool whole)
{
    uint8_t regs[4];

    if (whole) {
        vu_mig_put_all(s);
    } else {
        vu_mig_put_dirty(s);
    }
    stl_le_p(regs, s->scratch);
    vu_mig_put_rec(s, VU_TEST_MIG_REC_REGS, 0, regs, sizeof(regs));
    vu_mig_put_rec(s, VU_TEST_MIG_REC_END, 0, NULL, 0);
}

static void vu_mig_out_reset(VUTestServer *s)
{
    g_byte_array_set_size(s->mig.out, 0);
    s->mig.out_pos = 0;
}

static void vu_mig_save_end(VUTestServer *s)
{
    vu_mig_out_reset(s);
    bitmap_zero(s->mig.dirty, VU_MIG_NCHUNKS);
}

/* Move up to @size bytes of the stream to @into; returns how many */
static uint32_t vu_mig_take(VUTestServer *s, GByteArray *into, uint32_t size)
{
    VUMig *m = &s->mig;
    uint32_t done = 0;

    while (done < size) {
        uint32_t n;

        if (m->out_pos == m->out->len) {
            /* In PRE_COPY there is more as long as the device writes */
            vu_mig_out_reset(s);
            if (m->state != VFIO_DEVICE_STATE_PRE_COPY ||
                !vu_mig_put_dirty(s)) {
                break;
            }
        }
        n = MIN(size - done, m->out->len - m->out_pos);
        g_byte_array_append(into, m->out->data + m->out_pos, n);
        m->out_pos += n;
        done += n;
    }
    return done;
}

/* Resuming */

static void vu_mig_resume_begin(VUTestServer *s)
{
    VUMig *m = &s->mig;

    g_byte_array_set_size(m->in, 0);
    g_free(m->stage);
    m->stage = g_malloc0(VU_TEST_BUF_SIZE);
    m->stage_scratch = 0;
    bitmap_zero(m->covered, VU_TEST_BUF_SIZE);
    m->got_regs = m->got_end = false;
}

static void vu_mig_resume_drop(VUTestServer *s)
{
    g_byte_array_set_size(s->mig.in, 0);
    g_clear_pointer(&s->mig.stage, g_free);
}

/* Whether a record header makes sense, before its data is there */
static bool vu_mig_rec_ok(uint32_t type, uint32_t offset, uint32_t len)
{
    switch (type) {
    case VU_TEST_MIG_REC_CHUNK:
        return len && offset <= VU_TEST_BUF_SIZE &&
               len <= VU_TEST_BUF_SIZE - offset;
    case VU_TEST_MIG_REC_REGS:
        return !offset && len == 4;
    case VU_TEST_MIG_REC_END:
        return !offset && !len;
    default:
        return false;
    }
}

static void vu_mig_apply(VUTestServer *s, uint32_t type, uint32_t offset,
                         const uint8_t *data, uint32_t len)
{
    VUMig *m = &s->mig;

    switch (type) {
    case VU_TEST_MIG_REC_CHUNK:
        memcpy(m->stage + offset, data, len);
        bitmap_set(m->covered, offset, len);
        break;
    case VU_TEST_MIG_REC_REGS:
        m->stage_scratch = ldl_le_p(data);
        m->got_regs = true;
        break;
    case VU_TEST_MIG_REC_END:
        m->got_end = true;
        break;
    }
}

/*
 * Walk the records at the start of @data, whole or with a whole header:
 * check them, and apply the whole ones if @apply.  Returns the length of
 * the whole ones, or -EINVAL for a bad record or any byte after END.
 */
static ssize_t vu_mig_scan(VUTestServer *s, const uint8_t *data, size_t len,
                           bool apply)
{
    bool end = s->mig.got_end;
    size_t pos = 0;

    while (len - pos >= VU_MIG_REC_SIZE) {
        const uint8_t *p = data + pos;
        uint32_t type = ldl_le_p(p), off = ldl_le_p(p + 4);
        uint32_t n = ldl_le_p(p + 8);

        if (end || !vu_mig_rec_ok(type, off, n)) {
            return -EINVAL;
        }
        if (len - pos - VU_MIG_REC_SIZE < n) {
            break;
        }
        if (apply) {
            vu_mig_apply(s, type, off, p + VU_MIG_REC_SIZE, n);
        }
        end = type == VU_TEST_MIG_REC_END;
        pos += VU_MIG_REC_SIZE + n;
    }
    return end && pos < len ? -EINVAL : pos;
}

/* Take a MIG_DATA_WRITE's data, all of it or, if it is bad, none */
static int vu_mig_write(VUTestServer *s, const uint8_t *data, uint32_t size)
{
    GByteArray *in = s->mig.in;
    guint old = in->len;
    ssize_t whole;

    g_byte_array_append(in, data, size);
    whole = vu_mig_scan(s, in->data, in->len, false);
    if (whole < 0) {
        g_byte_array_set_size(in, old);
        return whole;
    }
    vu_mig_scan(s, in->data, in->len, true);
    g_byte_array_remove_range(in, 0, whole);
    return 0;
}

/* RESUMING -> STOP: the device takes the stream if it is all there */
static int vu_mig_resume_end(VUTestServer *s)
{
    VUMig *m = &s->mig;
    bool ok = !m->in->len && m->got_end && m->got_regs &&
              bitmap_full(m->covered, VU_TEST_BUF_SIZE);

    if (ok) {
        memcpy(s->buf, m->stage, VU_TEST_BUF_SIZE);
        s->scratch = m->stage_scratch;
    } else {
        s->stats.mig_data_rejected++;
    }
    vu_mig_resume_drop(s);
    return ok ? 0 : -EINVAL;
}

/* The state machine */

/* The spec's direct arcs; without mig_precopy, none touches PRE_COPY */
static bool vu_mig_arc(VUTestServer *s, uint32_t from, uint32_t to)
{
    static const uint8_t arcs[][2] = {
        { VFIO_DEVICE_STATE_RUNNING, VFIO_DEVICE_STATE_STOP },
        { VFIO_DEVICE_STATE_STOP_COPY, VFIO_DEVICE_STATE_STOP },
        { VFIO_DEVICE_STATE_RESUMING, VFIO_DEVICE_STATE_STOP },
        { VFIO_DEVICE_STATE_PRE_COPY, VFIO_DEVICE_STATE_RUNNING },
        { VFIO_DEVICE_STATE_STOP, VFIO_DEVICE_STATE_RUNNING },
        { VFIO_DEVICE_STATE_RUNNING, VFIO_DEVICE_STATE_PRE_COPY },
        { VFIO_DEVICE_STATE_STOP, VFIO_DEVICE_STATE_STOP_COPY },
        { VFIO_DEVICE_STATE_PRE_COPY, VFIO_DEVICE_STATE_STOP_COPY },
        { VFIO_DEVICE_STATE_STOP, VFIO_DEVICE_STATE_RESUMING },
    };
    unsigned i;

    if (!s->cfg.mig_precopy && (from == VFIO_DEVICE_STATE_PRE_COPY ||
                                to == VFIO_DEVICE_STATE_PRE_COPY)) {
        return false;
    }
    for (i = 0; i < ARRAY_SIZE(arcs); i++) {
        if (arcs[i][0] == from && arcs[i][1] == to) {
            return true;
        }
    }
    return false;
}

/*
 * The states to go through from @from to @to (@to included) into @path;
 * returns their number, 0 if there is no way.  Breadth first over the
 * direct arcs finds a shortest path; no arc is followed out of a saving
 * state but the one we start from, so that none is inside the path.
 */
static unsigned vu_mig_path(VUTestServer *s, uint32_t from, uint32_t to,
                            uint32_t *path)
{
    uint32_t prev[VU_MIG_STATES], queue[VU_MIG_STATES], st;
    unsigned head = 0, tail = 0, n = 0, i;

    for (st = 0; st < VU_MIG_STATES; st++) {
        prev[st] = VU_MIG_STATES;               /* not seen */
    }
    prev[from] = from;
    queue[tail++] = from;
    while (head < tail && prev[to] == VU_MIG_STATES) {
        uint32_t cur = queue[head++];

        if (cur != from && vu_mig_saving(cur)) {
            continue;
        }
        for (st = 0; st < VU_MIG_STATES; st++) {
            if (prev[st] == VU_MIG_STATES && vu_mig_arc(s, cur, st)) {
                prev[st] = cur;
                queue[tail++] = st;
            }
        }
    }
    if (prev[to] == VU_MIG_STATES) {
        return 0;
    }
    for (st = to; st != from; st = prev[st]) {
        n++;
    }
    for (st = to, i = n; st != from; st = prev[st]) {
        path[--i] = st;
    }
    return n;
}

/* What a direct arc does (the Mealy machine's actions) */
static int vu_mig_arc_do(VUTestServer *s, uint32_t from, uint32_t to)
{
    if (to == VFIO_DEVICE_STATE_STOP_COPY) {
        vu_mig_put_final(s, from != VFIO_DEVICE_STATE_PRE_COPY);
    } else if (to == VFIO_DEVICE_STATE_PRE_COPY) {
        vu_mig_save_end(s);
        vu_mig_put_all(s);
    } else if (vu_mig_saving(from)) {
        vu_mig_save_end(s);
    } else if (to == VFIO_DEVICE_STATE_RESUMING) {
        vu_mig_resume_begin(s);
    } else if (from == VFIO_DEVICE_STATE_RESUMING) {
        return vu_mig_resume_end(s);
    }
    return 0;
}

/* End any transfer session and run again, as after a reset */
void vu_mig_reset(VUTestServer *s)
{
    vu_mig_save_end(s);
    vu_mig_resume_drop(s);
    s->mig.state = VFIO_DEVICE_STATE_RUNNING;
}

static bool vu_mig_state_settable(VUTestServer *s, uint32_t to)
{
    switch (to) {
    case VFIO_DEVICE_STATE_STOP:
    case VFIO_DEVICE_STATE_RUNNING:
    case VFIO_DEVICE_STATE_STOP_COPY:
    case VFIO_DEVICE_STATE_RESUMING:
        return true;
    case VFIO_DEVICE_STATE_PRE_COPY:
        return s->cfg.mig_precopy;
    default:
        return false;       /* ERROR, the P2P states, nonsense */
    }
}

static int vu_mig_set_state(VUTestServer *s, uint32_t to)
{
    uint32_t path[VU_MIG_STATES], from = s->mig.state;
    unsigned n, i;

    if (!vu_mig_state_settable(s, to) ||
        from == VFIO_DEVICE_STATE_ERROR ||
        (from == VFIO_DEVICE_STATE_STOP_COPY &&
         to == VFIO_DEVICE_STATE_PRE_COPY)) {
        return -EINVAL;
    }
    if (from == to) {
        return 0;
    }
    n = vu_mig_path(s, from, to, path);
    if (!n) {
        return -EINVAL;
    }
    for (i = 0; i < n; i++) {
        int err = vu_mig_arc_do(s, s->mig.state, path[i]);

        if (err) {
            /* Only a bad stream fails, and it is gone with the session */
            vu_mig_reset(s);
            s->mig.state = VFIO_DEVICE_STATE_ERROR;
            return err;
        }
        s->mig.state = path[i];
        s->stats.mig_transitions++;
    }
    return 0;
}

/* DMA logging */

static void vu_log_mark(VUTestServer *s, uint64_t first, uint64_t last)
{
    uint64_t page;

    for (page = first >> VU_LOG_PAGE_SHIFT;
         page <= last >> VU_LOG_PAGE_SHIFT; page++) {
        if (!g_hash_table_contains(s->mig.dirty_pages, &page)) {
            g_hash_table_add(s->mig.dirty_pages, g_memdup2(&page,
                                                           sizeof(page)));
            s->stats.dirty_pages_logged++;
        }
    }
}

/* The device wrote @len bytes at @iova of guest memory, not by message */
void vu_mig_log_dma(VUTestServer *s, uint64_t iova, uint64_t len)
{
    GArray *ranges = s->mig.log_ranges;
    uint64_t last;
    unsigned i;

    if (!s->mig.logging || !len) {
        return;
    }
    last = len - 1 > UINT64_MAX - iova ? UINT64_MAX : iova + len - 1;
    if (!ranges->len) {
        vu_log_mark(s, iova, last);
        return;
    }
    for (i = 0; i < ranges->len; i++) {
        VFIOUserDMALoggingRange *r =
            &g_array_index(ranges, VFIOUserDMALoggingRange, i);
        uint64_t lo = MAX(iova, r->iova);
        uint64_t hi = MIN(last, r->iova + r->length - 1);

        if (lo <= hi) {
            vu_log_mark(s, lo, hi);
        }
    }
}

static gint vu_range_cmp(gconstpointer a, gconstpointer b)
{
    const VFIOUserDMALoggingRange *x = a, *y = b;

    return (x->iova > y->iova) - (x->iova < y->iova);
}

/* Ranges not empty, aligned to @page_size, not wrapping nor overlapping */
static bool vu_log_ranges_ok(GArray *ranges, uint64_t page_size)
{
    VFIOUserDMALoggingRange *r, *prev = NULL;
    unsigned i;

    g_array_sort(ranges, vu_range_cmp);
    for (i = 0; i < ranges->len; i++) {
        r = &g_array_index(ranges, VFIOUserDMALoggingRange, i);
        if (!r->length || ((r->iova | r->length) & (page_size - 1)) ||
            r->length - 1 > UINT64_MAX - r->iova ||
            (prev && r->iova <= prev->iova + prev->length - 1)) {
            return false;
        }
        prev = r;
    }
    return true;
}

static int vu_log_start(VUTestServer *s, const uint8_t *data, size_t len)
{
    VFIOUserDMALoggingControl c;
    g_autoptr(GArray) ranges = NULL;

    if (len < sizeof(c)) {
        return -EINVAL;
    }
    memcpy(&c, data, sizeof(c));
    if (c.num_ranges > VU_TEST_LOG_MAX_RANGES ||
        len != sizeof(c) + c.num_ranges * sizeof(VFIOUserDMALoggingRange) ||
        !is_power_of_2(c.page_size) || c.page_size < VU_LOG_PAGE_SIZE) {
        return -EINVAL;
    }
    ranges = g_array_sized_new(FALSE, FALSE, sizeof(VFIOUserDMALoggingRange),
                               c.num_ranges);
    g_array_append_vals(ranges, data + sizeof(c), c.num_ranges);
    if (!vu_log_ranges_ok(ranges, c.page_size)) {
        return -EINVAL;
    }
    if (s->mig.logging) {
        return -EBUSY;          /* as the kernel: one START, then a STOP */
    }
    g_array_unref(s->mig.log_ranges);
    s->mig.log_ranges = g_steal_pointer(&ranges);
    s->mig.logging = true;
    return 0;
}

static void vu_log_stop(VUTestServer *s)
{
    s->mig.logging = false;
    g_array_set_size(s->mig.log_ranges, 0);
    g_hash_table_remove_all(s->mig.dirty_pages);
}

typedef struct VULogReport {
    uint64_t iova;
    uint64_t last;
    uint64_t page_size;
    uint64_t *bitmap;
} VULogReport;

/* Report a marked page that meets the range, clear it if inside it */
static gboolean vu_log_report_page(gpointer key, gpointer value,
                                   gpointer opaque)
{
    VULogReport *rep = opaque;
    uint64_t first = *(uint64_t *)key << VU_LOG_PAGE_SHIFT;
    uint64_t last = first + VU_LOG_PAGE_SIZE - 1;
    uint64_t i, end;

    if (last < rep->iova || first > rep->last) {
        return FALSE;
    }
    i = (MAX(first, rep->iova) - rep->iova) / rep->page_size;
    end = (MIN(last, rep->last) - rep->iova) / rep->page_size;
    for (; i <= end; i++) {
        rep->bitmap[i / 64] |= 1ULL << (i % 64);
    }
    return first >= rep->iova && last <= rep->last;
}

/* The request's data is at @f->data; the reply is built in @r */
static int vu_log_report(VUTestServer *s, const VFIOUserDeviceFeature *f,
                         const uint8_t *data, size_t len, VUReply *r)
{
    VFIOUserDMALoggingReport req;
    VFIOUserDeviceFeature hdr = { .flags = f->flags };
    VULogReport rep;
    uint64_t bits, words, size, i;

    if (len != sizeof(req)) {
        return -EINVAL;
    }
    memcpy(&req, data, sizeof(req));
    if (!s->mig.logging || !is_power_of_2(req.page_size) || !req.length ||
        ((req.iova | req.length) & (req.page_size - 1)) ||
        req.length - 1 > UINT64_MAX - req.iova) {
        return -EINVAL;
    }
    bits = req.length / req.page_size;
    words = bits / 64 + !!(bits % 64);
    if (words > VFIO_USER_MAX_MAX_XFER / sizeof(uint64_t)) {
        return -EINVAL;
    }
    size = sizeof(hdr) + sizeof(req) + words * sizeof(uint64_t);
    if (size > f->argsz) {
        return -EINVAL;
    }
    hdr.argsz = size;
    g_byte_array_append(r->payload, (uint8_t *)&hdr, sizeof(hdr));
    g_byte_array_append(r->payload, (uint8_t *)&req, sizeof(req));
    g_byte_array_set_size(r->payload, size);
    rep = (VULogReport) {
        .iova = req.iova,
        .last = req.iova + req.length - 1,
        .page_size = req.page_size,
        .bitmap = (uint64_t *)(r->payload->data + sizeof(hdr) + sizeof(req)),
    };
    memset(rep.bitmap, 0, words * sizeof(uint64_t));
    g_hash_table_foreach_remove(s->mig.dirty_pages, vu_log_report_page, &rep);
    for (i = 0; i < words; i++) {
        s->stats.dirty_pages_reported += ctpop64(rep.bitmap[i]);
    }
    return 0;
}

void vu_mig_disconnect(VUTestServer *s)
{
    vu_mig_reset(s);
    vu_log_stop(s);
}

/* VFIO_USER_DEVICE_FEATURE */

/* The methods feature @index has here; 0 if we do not have it */
static uint32_t vu_feature_ops(VUTestServer *s, uint32_t index)
{
    switch (index) {
    case VFIO_DEVICE_FEATURE_MIGRATION:
        return s->cfg.migration ? VU_FEATURE_GET : 0;
    case VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE:
        return s->cfg.migration ? VU_FEATURE_GET | VU_FEATURE_SET : 0;
    case VFIO_DEVICE_FEATURE_MIG_DATA_SIZE:
        return s->cfg.migration ? VU_FEATURE_GET : 0;
    case VFIO_DEVICE_FEATURE_DMA_LOGGING_START:
    case VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP:
        return s->cfg.dma_logging ? VU_FEATURE_SET : 0;
    case VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT:
        return s->cfg.dma_logging ? VU_FEATURE_GET : 0;
    default:
        return 0;
    }
}

/*
 * The spec's rule for a reply larger than argsz (send argsz, not the
 * payload) would lose a report's bits: such requests fail, as in
 * libvfio-user, before they do anything.
 */
static int vu_feature_get(const VFIOUserDeviceFeature *f, const void *data,
                          uint32_t len, VUReply *r)
{
    VFIOUserDeviceFeature hdr = {
        .argsz = sizeof(hdr) + len,
        .flags = f->flags,
    };

    if (f->argsz < hdr.argsz) {
        return -EINVAL;
    }
    g_byte_array_append(r->payload, (uint8_t *)&hdr, sizeof(hdr));
    g_byte_array_append(r->payload, data, len);
    return 0;
}

static int vu_feature_mig_state(VUTestServer *s, VUMsg *msg,
                                const VFIOUserDeviceFeature *f, VUReply *r)
{
    VFIOUserMigState st;
    int err;

    if (f->flags & VU_FEATURE_GET) {
        if (msg->payload_size != sizeof(*f)) {
            return -EINVAL;
        }
        st = (VFIOUserMigState) { s->mig.state, UINT32_MAX };
        return vu_feature_get(f, &st, sizeof(st), r);
    }
    if (msg->payload_size != sizeof(*f) + sizeof(st) ||
        f->argsz < msg->payload_size) {
        return -EINVAL;
    }
    memcpy(&st, msg->payload + sizeof(*f), sizeof(st));
    err = vu_mig_set_state(s, st.device_state);
    if (err) {
        return err;
    }
    st.data_fd = UINT32_MAX;        /* the data moves by message */
    g_byte_array_append(r->payload, (uint8_t *)f, sizeof(*f));
    g_byte_array_append(r->payload, (uint8_t *)&st, sizeof(st));
    return 0;
}

/* DMA_LOGGING_START and _STOP, replied with the request */
static int vu_feature_logging(VUTestServer *s, VUMsg *msg,
                              const VFIOUserDeviceFeature *f, VUReply *r)
{
    const uint8_t *data = msg->payload + sizeof(*f);
    size_t len = msg->payload_size - sizeof(*f);
    int err = 0;

    if (f->argsz < msg->payload_size) {
        return -EINVAL;
    }
    if ((f->flags & VFIO_DEVICE_FEATURE_MASK) ==
        VFIO_DEVICE_FEATURE_DMA_LOGGING_START) {
        err = vu_log_start(s, data, len);
    } else if (len) {
        return -EINVAL;
    } else {
        vu_log_stop(s);
    }
    if (!err) {
        g_byte_array_append(r->payload, msg->payload, msg->payload_size);
    }
    return err;
}

/* A GET or a SET of a feature that has it; with the lock held */
static int vu_feature_do(VUTestServer *s, VUMsg *msg,
                         const VFIOUserDeviceFeature *f, VUReply *r)
{
    uint64_t flags = VFIO_MIGRATION_STOP_COPY;

    switch (f->flags & VFIO_DEVICE_FEATURE_MASK) {
    case VFIO_DEVICE_FEATURE_MIGRATION:
        if (msg->payload_size != sizeof(*f)) {
            return -EINVAL;
        }
        flags |= s->cfg.mig_precopy ? VFIO_MIGRATION_PRE_COPY : 0;
        return vu_feature_get(f, &flags, sizeof(flags), r);
    case VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE:
        return vu_feature_mig_state(s, msg, f, r);
    case VFIO_DEVICE_FEATURE_MIG_DATA_SIZE: {
        /*
         * Not in the vfio-user spec's list, but the kernel's feature: what
         * STOP_COPY would send, at most (all of the buffer, registers, end).
         */
        uint64_t len = s->mig.out->len - s->mig.out_pos + VU_TEST_BUF_SIZE +
                       VU_MIG_NCHUNKS * VU_MIG_REC_SIZE +
                       2 * VU_MIG_REC_SIZE + 4;

        if (msg->payload_size != sizeof(*f)) {
            return -EINVAL;
        }
        return vu_feature_get(f, &len, sizeof(len), r);
    }
    case VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT:
        return vu_log_report(s, f, msg->payload + sizeof(*f),
                             msg->payload_size - sizeof(*f), r);
    default:
        return vu_feature_logging(s, msg, f, r);
    }
}

int vu_handle_device_feature(VUTestServer *s, VUMsg *msg, VUReply *r)
{
    VFIOUserDeviceFeature f;
    uint32_t ops, methods, has;
    int err;

    if (msg->payload_size < sizeof(f)) {
        return -EINVAL;
    }
    memcpy(&f, msg->payload, sizeof(f));
    ops = f.flags & ~VFIO_DEVICE_FEATURE_MASK;
    methods = ops & (VU_FEATURE_GET | VU_FEATURE_SET);
    has = vu_feature_ops(s, f.flags & VFIO_DEVICE_FEATURE_MASK);
    if (!has) {
        return -ENOTSUP;        /* as for any feature we do not know */
    }
    if ((ops & ~(methods | VU_FEATURE_PROBE)) || (methods & ~has)) {
        return -EINVAL;
    }
    if (ops & VU_FEATURE_PROBE) {
        if (f.argsz < msg->payload_size) {
            return -EINVAL;
        }
        g_byte_array_append(r->payload, msg->payload, msg->payload_size);
        return 0;
    }
    if (methods != VU_FEATURE_GET && methods != VU_FEATURE_SET) {
        return -EINVAL;         /* neither, or both without PROBE */
    }
    g_mutex_lock(&s->lock);
    err = vu_feature_do(s, msg, &f, r);
    g_mutex_unlock(&s->lock);
    return err;
}

/* VFIO_USER_MIG_DATA_READ and _WRITE */

int vu_handle_mig_data_read(VUTestServer *s, VUMsg *msg, VUReply *r)
{
    VFIOUserMigDataHdr h;
    uint32_t n;

    if (!s->cfg.migration) {
        return -ENOTSUP;
    }
    vu_msg_get_payload(msg, &h, sizeof(h));
    g_mutex_lock(&s->lock);
    if (msg->payload_size != sizeof(h) || !vu_mig_saving(s->mig.state) ||
        h.size > vu_max_rx_xfer(s) ||
        h.argsz < sizeof(h) + (uint64_t)h.size) {
        s->stats.mig_data_rejected++;
        g_mutex_unlock(&s->lock);
        return -EINVAL;
    }
    g_byte_array_set_size(r->payload, sizeof(h));
    n = vu_mig_take(s, r->payload, h.size);
    s->stats.mig_bytes_read += n;
    g_mutex_unlock(&s->lock);

    h = (VFIOUserMigDataHdr) { .argsz = sizeof(h) + n, .size = n };
    memcpy(r->payload->data, &h, sizeof(h));
    return 0;
}

int vu_handle_mig_data_write(VUTestServer *s, VUMsg *msg, VUReply *r)
{
    VFIOUserMigDataHdr h;
    int err = -EINVAL;

    if (!s->cfg.migration) {
        return -ENOTSUP;
    }
    /* argsz bounds a reply that has no payload: nothing to check */
    vu_msg_get_payload(msg, &h, sizeof(h));
    g_mutex_lock(&s->lock);
    if (msg->payload_size >= sizeof(h) &&
        msg->payload_size - sizeof(h) == h.size &&
        h.size <= vu_max_rx_xfer(s) &&
        s->mig.state == VFIO_DEVICE_STATE_RESUMING) {
        err = vu_mig_write(s, msg->payload + sizeof(h), h.size);
    }
    if (err) {
        s->stats.mig_data_rejected++;
    } else {
        s->stats.mig_bytes_written += h.size;
    }
    g_mutex_unlock(&s->lock);
    return err;
}

uint32_t vu_test_server_mig_state(VUTestServer *s)
{
    uint32_t state;

    g_mutex_lock(&s->lock);
    state = s->mig.state;
    g_mutex_unlock(&s->lock);
    return state;
}
