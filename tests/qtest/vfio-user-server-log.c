/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the test server records for tests to assert on: per-command
 * counts, the records of vfio-user-server.h and the stats.  Records are
 * appended under the lock and handed out as copies.
 */

#include "qemu/osdep.h"
#include "vfio-user-server-int.h"

void vu_log_init(VUTestServer *s)
{
    s->dma_maps = g_array_new(FALSE, TRUE, sizeof(VUTestDMAMapRecord));
    s->dma_unmaps = g_array_new(FALSE, TRUE, sizeof(VUTestDMAUnmapRecord));
    s->set_irqs = g_array_new(FALSE, TRUE, sizeof(VUTestSetIrqsRecord));
    s->region_writes = g_array_new(FALSE, TRUE,
                                   sizeof(VUTestRegionWriteRecord));
    s->dma_errors = g_array_new(FALSE, TRUE, sizeof(VUTestDMAErrorRecord));
    s->stale_replies = g_array_new(FALSE, TRUE, sizeof(VUTestReplyRecord));
}

void vu_log_free(VUTestServer *s)
{
    g_array_unref(s->dma_maps);
    g_array_unref(s->dma_unmaps);
    g_array_unref(s->set_irqs);
    g_array_unref(s->region_writes);
    g_array_unref(s->dma_errors);
    g_array_unref(s->stale_replies);
    g_free(s->client.json);
}

void vu_log(VUTestServer *s, GArray *log, const void *rec)
{
    if (log->len >= VU_TEST_LOG_MAX) {
        s->stats.log_dropped++;
        return;
    }
    g_array_append_vals(log, rec, 1);
}

/* A reply to nothing the server waits for: counted, and kept for tests */
void vu_record_stale_reply(VUTestServer *s, const VUMsg *msg)
{
    VUTestReplyRecord rec = {
        .id = msg->hdr.id, .command = msg->hdr.command,
        .flags = msg->hdr.flags, .error_reply = msg->hdr.error_reply,
    };

    s->stats.stale_replies++;
    vu_log(s, s->stale_replies, &rec);
}

void vu_record_dma_error(VUTestServer *s, uint16_t cmd, uint64_t addr,
                         uint64_t count, int err, bool error_reply)
{
    VUTestDMAErrorRecord rec = {
        .command = cmd, .address = addr, .count = count,
        .err = -err, .error_reply = error_reply,
    };

    g_mutex_lock(&s->lock);
    vu_log(s, s->dma_errors, &rec);
    g_mutex_unlock(&s->lock);
}

void vu_test_server_get_client_info(VUTestServer *s, VUTestClientInfo *info)
{
    g_mutex_lock(&s->lock);
    *info = s->client;
    info->json = g_strdup(s->client.json);
    g_mutex_unlock(&s->lock);
}

static GArray *vu_copy_log(VUTestServer *s, GArray *log)
{
    GArray *copy;

    g_mutex_lock(&s->lock);
    copy = g_array_sized_new(FALSE, TRUE, g_array_get_element_size(log),
                             log->len);
    g_array_append_vals(copy, log->data, log->len);
    g_mutex_unlock(&s->lock);
    return copy;
}

/* @command's entry of a per-command table of counts */
static unsigned vu_per_command(VUTestServer *s, const unsigned *table,
                               unsigned command)
{
    unsigned n;

    g_mutex_lock(&s->lock);
    n = command < VFIO_USER_MAX ? table[command] : 0;
    g_mutex_unlock(&s->lock);
    return n;
}

unsigned vu_test_server_cmd_count(VUTestServer *s, unsigned command)
{
    return vu_per_command(s, s->cmd_count, command);
}

unsigned vu_test_server_cmd_fds(VUTestServer *s, unsigned command)
{
    return vu_per_command(s, s->cmd_fds, command);
}

GArray *vu_test_server_dma_maps(VUTestServer *s)
{
    return vu_copy_log(s, s->dma_maps);
}

GArray *vu_test_server_dma_unmaps(VUTestServer *s)
{
    return vu_copy_log(s, s->dma_unmaps);
}

GArray *vu_test_server_set_irqs(VUTestServer *s)
{
    return vu_copy_log(s, s->set_irqs);
}

GArray *vu_test_server_region_writes(VUTestServer *s)
{
    return vu_copy_log(s, s->region_writes);
}

GArray *vu_test_server_dma_errors(VUTestServer *s)
{
    return vu_copy_log(s, s->dma_errors);
}

GArray *vu_test_server_stale_replies(VUTestServer *s)
{
    return vu_copy_log(s, s->stale_replies);
}

unsigned vu_test_server_num_mappings(VUTestServer *s)
{
    unsigned n;

    g_mutex_lock(&s->lock);
    n = s->mappings->len;
    g_mutex_unlock(&s->lock);
    return n;
}

void vu_test_server_get_stats(VUTestServer *s, VUTestServerStats *stats)
{
    g_mutex_lock(&s->lock);
    *stats = s->stats;
    g_mutex_unlock(&s->lock);
}

void vu_test_server_clear_log(VUTestServer *s)
{
    g_mutex_lock(&s->lock);
    memset(s->cmd_count, 0, sizeof(s->cmd_count));
    memset(s->cmd_fds, 0, sizeof(s->cmd_fds));
    g_array_set_size(s->dma_maps, 0);
    g_array_set_size(s->dma_unmaps, 0);
    g_array_set_size(s->set_irqs, 0);
    g_array_set_size(s->region_writes, 0);
    g_array_set_size(s->dma_errors, 0);
    g_array_set_size(s->stale_replies, 0);
    memset(&s->stats, 0, sizeof(s->stats));
    s->stats.connections = s->connected;
    g_mutex_unlock(&s->lock);
}
