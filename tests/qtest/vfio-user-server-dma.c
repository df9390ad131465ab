/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The test server's DMA: the client's DMA_MAP/UNMAP, our DMA_READ/WRITE
 * requests and their replies, and the device's DMA engine, which copies
 * through a mapping's fd where it has one and asks the client where it
 * has none.
 */

#include "qemu/osdep.h"
#include <sys/mman.h>
#include "qemu/bswap.h"
#include "vfio-user-server-int.h"

/* The smallest page size we accept in DMA_MAP */
static uint64_t vu_pgsize(VUTestServer *s)
{
    uint64_t p = s->cfg.pgsizes ? s->cfg.pgsizes : VFIO_USER_DEF_PGSIZE;

    return p & -p;
}

static VUMapping *vu_find_mapping(VUTestServer *s, uint64_t iova)
{
    unsigned i;

    for (i = 0; i < s->mappings->len; i++) {
        VUMapping *m = &g_array_index(s->mappings, VUMapping, i);

        if (iova >= m->iova && iova - m->iova < m->size) {
            return m;
        }
    }
    return NULL;
}

/* The lowest mapping start in (iova, iova + len), or 0 if none */
static uint64_t vu_next_mapping(VUTestServer *s, uint64_t iova, uint64_t len)
{
    uint64_t next = 0;
    unsigned i;

    for (i = 0; i < s->mappings->len; i++) {
        VUMapping *m = &g_array_index(s->mappings, VUMapping, i);

        if (m->iova > iova && m->iova - iova < len &&
            (!next || m->iova < next)) {
            next = m->iova;
        }
    }
    return next;
}

static void vu_unmap(VUMapping *m)
{
    if (m->mmap_base) {
        munmap(m->mmap_base, m->mmap_len);
    }
    vu_close_fd(&m->fd);
}

void vu_unmap_all(VUTestServer *s)
{
    for (unsigned i = 0; i < s->mappings->len; i++) {
        vu_unmap(&g_array_index(s->mappings, VUMapping, i));
    }
    g_array_set_size(s->mappings, 0);
}

/* Check the reply to one of our DMA requests; returns 0 or -errno */
static int vu_dma_check_reply(VUTestServer *s, const VUTestDMARequest *req,
                              VUMsg *msg, VUTestDMAResult *res)
{
    uint8_t *p = msg->payload;
    size_t len = msg->payload_size;
    bool ok;
    int e;

    res->replied = true;
    res->hdr = msg->hdr;
    if (msg->hdr.flags & VFIO_USER_ERROR) {
        res->error_reply = true;
        g_mutex_lock(&s->lock);
        s->stats.dma_error_replies++;
        g_mutex_unlock(&s->lock);
        e = msg->hdr.error_reply;
        return e > 0 ? -e : -EIO;
    }
    if (len >= 8) {
        res->address = ldq_le_p(p);
    }
    if (len >= 16) {
        res->count = ldq_le_p(p + 8);
    } else if (len >= 12) {
        res->count = ldl_le_p(p + 8);
    }
    if (req->write) {
        /* 12 bytes: the 32-bit count of the spec's DMA_WRITE reply table */
        ok = (len == 16 || len == 12);
    } else {
        ok = len >= 16 && len - 16 == req->count;
        if (len >= 16 && !req->read_into) {
            res->data = g_byte_array_new();
            g_byte_array_append(res->data, p + 16, len - 16);
        }
    }
    ok = ok && !msg->bad && res->address == req->address &&
         res->count == req->count;
    if (ok && !req->write && req->read_into) {
        memcpy(req->read_into, p + 16, len - 16);
    }
    g_mutex_lock(&s->lock);
    if (!ok) {
        s->stats.dma_bad_replies++;
    } else if (req->write) {
        s->stats.dma_bytes_written += req->count;
    } else {
        s->stats.dma_bytes_read += req->count;
    }
    g_mutex_unlock(&s->lock);
    return ok ? 0 : -EPROTO;
}

/*
 * Wait until @deadline_us for the reply to our request @hdr and check it.
 * Requests from the client meanwhile are queued, replies to anything
 * else are recorded and dropped.  Returns 0 or -errno.
 */
static int vu_dma_wait_reply(VUTestServer *s, const VFIOUserHdr *hdr,
                             const VUTestDMARequest *req,
                             VUTestDMAResult *res, int64_t deadline_us)
{
    for (;;) {
        VUMsg *msg = NULL;
        int r = vu_recv_msg(s, &msg, deadline_us);

        if (r < 0) {
            return -ENOTCONN;
        }
        if (r == 0) {
            if (g_get_monotonic_time() >= deadline_us) {
                g_mutex_lock(&s->lock);
                s->stats.dma_timeouts++;
                g_mutex_unlock(&s->lock);
                return -ETIMEDOUT;
            }
            continue;
        }
        if ((msg->hdr.flags & VFIO_USER_TYPE) != VFIO_USER_REPLY) {
            g_queue_push_tail(&s->pending, msg);
            continue;
        }
        if (msg->hdr.id != hdr->id || msg->hdr.command != hdr->command) {
            g_mutex_lock(&s->lock);
            vu_record_stale_reply(s, msg);
            g_mutex_unlock(&s->lock);
            vu_msg_free(msg);
            continue;
        }
        r = vu_dma_check_reply(s, req, msg, res);
        vu_msg_free(msg);
        return r;
    }
}

/* Send one DMA request and wait for its reply (server thread only) */
int vu_dma_msg(VUTestServer *s, const VUTestDMARequest *req,
               VUTestDMAResult *res)
{
    uint16_t cmd = req->write ? VFIO_USER_DMA_WRITE : VFIO_USER_DMA_READ;
    g_autofree uint8_t *zeroes = NULL;
    VFIOUserDMARW rw = { .address = req->address, .count = req->count };
    VFIOUserHdr hdr = {
        .id = s->next_id++,
        .command = cmd,
        .flags = VFIO_USER_REQUEST,
    };
    struct iovec iov[3] = {
        { .iov_base = &hdr, .iov_len = sizeof(hdr) },
        { .iov_base = &rw, .iov_len = sizeof(rw) },
        { .iov_base = (void *)req->data, .iov_len = req->data_len },
    };
    unsigned timeout = req->timeout_ms ? req->timeout_ms
                                       : s->cfg.dma_timeout_ms;
    int err;

    memset(res, 0, sizeof(*res));
    if (req->data_len > UINT32_MAX - sizeof(hdr) - sizeof(rw)) {
        err = -EINVAL;
        goto fail;
    }
    hdr.size = sizeof(hdr) + sizeof(rw) + req->data_len;
    if (!req->data && req->data_len) {
        zeroes = g_malloc0(req->data_len);
        iov[2].iov_base = zeroes;
    }
    g_mutex_lock(&s->lock);
    if (req->write) {
        s->stats.dma_writes++;
    } else {
        s->stats.dma_reads++;
    }
    g_mutex_unlock(&s->lock);
    if (vu_sendv(s, iov, 3, NULL, 0)) {
        s->conn_broken = true;
        err = -ENOTCONN;
        goto fail;
    }
    err = vu_dma_wait_reply(s, &hdr, req, res,
                            g_get_monotonic_time() + timeout * 1000LL);
    if (!err) {
        return 0;
    }
fail:
    res->err = -err;
    vu_record_dma_error(s, cmd, req->address, req->count, err,
                        res->error_reply);
    return err;
}

/* Move @len bytes between IOVA @iova and @buf, as the device's engine */
static int vu_dma_rw(VUTestServer *s, uint64_t iova, uint8_t *buf,
                     uint64_t len, bool to_guest)
{
    uint16_t cmd = to_guest ? VFIO_USER_DMA_WRITE : VFIO_USER_DMA_READ;

    while (len) {
        VUTestDMARequest req = { .write = to_guest, .address = iova };
        VUTestDMAResult res;
        uint64_t chunk, next;
        VUMapping *m;
        int err;

        g_mutex_lock(&s->lock);
        m = vu_find_mapping(s, iova);
        if (m && m->host) {
            uint32_t need = to_guest ? VFIO_USER_F_DMA_REGION_WRITE
                                     : VFIO_USER_F_DMA_REGION_READ;

            chunk = MIN(len, m->size - (iova - m->iova));
            if (!(m->flags & need)) {
                g_mutex_unlock(&s->lock);
                vu_record_dma_error(s, cmd, iova, chunk, -EPERM, false);
                return -EPERM;
            }
            if (to_guest) {
                memcpy(m->host + (iova - m->iova), buf, chunk);
                vu_mig_log_dma(s, iova, chunk);
            } else {
                memcpy(buf, m->host + (iova - m->iova), chunk);
            }
            s->stats.dma_bytes_mmap += chunk;
            g_mutex_unlock(&s->lock);
        } else {
            /*
             * No fd for this range, or no mapping at all: ask the client,
             * which is the one to refuse what it did not map.
             */
            chunk = MIN(len, s->client_max_xfer);
            if (m) {
                chunk = MIN(chunk, m->size - (iova - m->iova));
            } else {
                next = vu_next_mapping(s, iova, chunk);
                chunk = next ? next - iova : chunk;
            }
            g_mutex_unlock(&s->lock);
            req.count = chunk;
            if (to_guest) {
                req.data = buf;
                req.data_len = chunk;
            }
            err = vu_dma_msg(s, &req, &res);
            if (!err && !to_guest) {
                memcpy(buf, res.data->data, chunk);
            }
            if (res.data) {
                g_byte_array_unref(res.data);
            }
            if (err) {
                return err;
            }
        }
        iova += chunk;
        buf += chunk;
        len -= chunk;
    }
    return 0;
}

/* Run the command written to DMA_CMD, then report it in DMA_STATUS */
void vu_dma_run(VUTestServer *s)
{
    g_autofree uint8_t *tmp = NULL;
    uint64_t src, dst, len, off, iova;
    uint32_t cmd;
    bool to_guest;
    int err = 0;

    g_mutex_lock(&s->lock);
    src = s->dma_src;
    dst = s->dma_dst;
    len = s->dma_len;
    cmd = s->dma_cmd;
    g_mutex_unlock(&s->lock);

    to_guest = cmd & VU_TEST_DMA_CMD_TO_GUEST;
    off = to_guest ? src : dst;
    iova = to_guest ? dst : src;
    if (len > VU_TEST_BUF_SIZE || off > VU_TEST_BUF_SIZE - len) {
        err = -EINVAL;
    } else if (len) {
        tmp = g_malloc(len);
        if (to_guest) {
            g_mutex_lock(&s->lock);
            memcpy(tmp, s->buf + off, len);
            g_mutex_unlock(&s->lock);
        }
        err = vu_dma_rw(s, iova, tmp, len, to_guest);
        if (!err && !to_guest) {
            g_mutex_lock(&s->lock);
            memcpy(s->buf + off, tmp, len);
            vu_mig_buf_dirty(s, off, len);
            g_mutex_unlock(&s->lock);
        }
    }

    g_mutex_lock(&s->lock);
    s->dma_status = VU_TEST_DMA_STATUS_DONE |
                    (err ? VU_TEST_DMA_STATUS_ERROR : 0);
    s->dma_errno = -err;
    s->dma_count++;
    s->dma_cmd &= ~VU_TEST_DMA_CMD_START;
    if (cmd & VU_TEST_DMA_CMD_IRQ) {
        vu_irq_raise_mode(s, 0);
    }
    g_mutex_unlock(&s->lock);
}

static int vu_do_dma_map(VUTestServer *s, VUMsg *msg, VFIOUserDMAMap *dm)
{
    uint32_t max_maps = s->cfg.max_dma_maps ? s->cfg.max_dma_maps
                                            : VFIO_USER_DEF_MAX_DMA_MAPS;
    uint64_t pgmask = vu_pgsize(s) - 1;
    uint64_t host_pgmask = qemu_real_host_page_size() - 1;
    VUMapping m = { .fd = -1 };
    unsigned i;

    if (msg->payload_size < sizeof(*dm) || dm->argsz < sizeof(*dm) ||
        (dm->flags & ~(VFIO_USER_F_DMA_REGION_READ |
                       VFIO_USER_F_DMA_REGION_WRITE)) ||
        !dm->size || dm->address + dm->size - 1 < dm->address ||
        ((dm->address | dm->size) & pgmask) || msg->nfds > 1) {
        return -EINVAL;
    }
    for (i = 0; i < s->mappings->len; i++) {
        VUMapping *o = &g_array_index(s->mappings, VUMapping, i);

        if (dm->address <= o->iova + o->size - 1 &&
            o->iova <= dm->address + dm->size - 1) {
            return -EEXIST;
        }
    }
    if (s->mappings->len >= max_maps) {
        return -ENOSPC;
    }
    m.iova = dm->address;
    m.size = dm->size;
    m.offset = dm->offset;
    m.flags = dm->flags;
    if (msg->nfds && dm->flags) {
        uint64_t delta = dm->offset & host_pgmask;
        int prot = 0;
        struct stat st;

        if (fstat(msg->fds[0], &st) < 0) {
            return -errno;
        }
        /* Beyond the end of a file, our memcpy would get SIGBUS */
        if (S_ISREG(st.st_mode) &&
            (dm->offset + dm->size < dm->offset ||
             dm->offset + dm->size > (uint64_t)st.st_size)) {
            return -EINVAL;
        }
        if (dm->size > SIZE_MAX - delta) {
            return -ENOMEM;
        }
        prot |= (dm->flags & VFIO_USER_F_DMA_REGION_READ) ? PROT_READ : 0;
        prot |= (dm->flags & VFIO_USER_F_DMA_REGION_WRITE) ? PROT_WRITE : 0;
        m.mmap_len = dm->size + delta;
        m.mmap_base = mmap(NULL, m.mmap_len, prot, MAP_SHARED, msg->fds[0],
                           dm->offset - delta);
        if (m.mmap_base == MAP_FAILED) {
            return -errno;
        }
        m.host = (uint8_t *)m.mmap_base + delta;
    }
    if (msg->nfds) {
        m.fd = msg->fds[0];
        msg->fds[0] = -1;
    }
    g_array_append_val(s->mappings, m);
    return 0;
}

int vu_handle_dma_map(VUTestServer *s, VUMsg *msg, VUReply *r)
{
    VFIOUserDMAMap dm;
    VUTestDMAMapRecord rec;
    int err;

    vu_msg_get_payload(msg, &dm, sizeof(dm));
    g_mutex_lock(&s->lock);
    err = vu_do_dma_map(s, msg, &dm);
    rec = (VUTestDMAMapRecord) {
        .iova = dm.address, .size = dm.size, .offset = dm.offset,
        .flags = dm.flags, .nfds = msg->nfds, .err = -err,
    };
    vu_log(s, s->dma_maps, &rec);
    g_mutex_unlock(&s->lock);
    return err;
}

static int vu_do_dma_unmap(VUTestServer *s, VUMsg *msg, VFIOUserDMAUnmap *du)
{
    unsigned i;

    if (msg->payload_size < sizeof(*du) || du->argsz < sizeof(*du) ||
        (du->flags & ~(VFIO_USER_DMA_UNMAP_GET_DIRTY_BITMAP |
                       VFIO_USER_DMA_UNMAP_ALL))) {
        return -EINVAL;
    }
    if (du->flags & VFIO_USER_DMA_UNMAP_GET_DIRTY_BITMAP) {
        /* No dirty page tracking here */
        return (du->flags & VFIO_USER_DMA_UNMAP_ALL) ||
               msg->payload_size < sizeof(*du) + sizeof(VFIOUserBitmap) ?
               -EINVAL : -ENOTSUP;
    }
    if (du->flags & VFIO_USER_DMA_UNMAP_ALL) {
        if (du->address || du->size) {
            return -EINVAL;
        }
        vu_unmap_all(s);
        return 0;
    }
    for (i = 0; i < s->mappings->len; i++) {
        VUMapping *m = &g_array_index(s->mappings, VUMapping, i);

        if (m->iova == du->address && m->size == du->size) {
            vu_unmap(m);
            g_array_remove_index(s->mappings, i);
            return 0;
        }
    }
    return -ENOENT;
}

int vu_handle_dma_unmap(VUTestServer *s, VUMsg *msg, VUReply *r)
{
    VFIOUserDMAUnmap du;
    VUTestDMAUnmapRecord rec;
    int err;

    vu_msg_get_payload(msg, &du, sizeof(du));
    g_mutex_lock(&s->lock);
    err = vu_do_dma_unmap(s, msg, &du);
    rec = (VUTestDMAUnmapRecord) {
        .iova = du.address, .size = du.size, .flags = du.flags, .err = -err,
    };
    vu_log(s, s->dma_unmaps, &rec);
    g_mutex_unlock(&s->lock);
    if (!err) {
        /* "The server responds with the original DMA entry" */
        g_byte_array_append(r->payload, msg->payload, sizeof(du));
    }
    return err;
}

void vu_run_jobs(VUTestServer *s)
{
    VUJob *job;

    for (;;) {
        g_mutex_lock(&s->lock);
        job = g_queue_pop_head(&s->jobs);
        g_mutex_unlock(&s->lock);
        if (!job) {
            return;
        }
        if (s->conn_fd < 0 || s->conn_broken) {
            memset(job->res, 0, sizeof(*job->res));
            job->ret = -ENOTCONN;
            job->res->err = ENOTCONN;
        } else {
            job->ret = vu_dma_msg(s, job->req, job->res);
        }
        g_mutex_lock(&s->lock);
        job->done = true;
        g_cond_broadcast(&s->cond);
        g_mutex_unlock(&s->lock);
    }
}

int vu_test_server_dma(VUTestServer *s, const VUTestDMARequest *req,
                       VUTestDMAResult *res)
{
    VUTestDMAResult local;
    VUJob job = { .req = req, .res = res ? res : &local };

    memset(job.res, 0, sizeof(*job.res));
    if (g_atomic_pointer_get(&s->self) == (gpointer)g_thread_self()) {
        /* From a hook: we are the server thread */
        if (s->conn_fd < 0) {
            job.ret = -ENOTCONN;
            job.res->err = ENOTCONN;
        } else {
            job.ret = vu_dma_msg(s, req, job.res);
        }
    } else {
        g_mutex_lock(&s->lock);
        g_queue_push_tail(&s->jobs, &job);
        vu_wake(s);
        while (!job.done) {
            g_cond_wait(&s->cond, &s->lock);
        }
        g_mutex_unlock(&s->lock);
    }
    if (!res && local.data) {
        g_byte_array_unref(local.data);
    }
    return job.ret;
}

int vu_test_server_dma_read(VUTestServer *s, uint64_t address, void *buf,
                            uint64_t count)
{
    VUTestDMARequest req = {
        .address = address, .count = count, .read_into = buf,
    };
    VUTestDMAResult res;
    int err = vu_test_server_dma(s, &req, &res);

    if (res.data) {
        g_byte_array_unref(res.data);
    }
    return err;
}

int vu_test_server_dma_write(VUTestServer *s, uint64_t address,
                             const void *buf, uint64_t count)
{
    VUTestDMARequest req = {
        .write = true, .address = address, .count = count,
        .data = buf, .data_len = count,
    };

    return vu_test_server_dma(s, &req, NULL);
}
