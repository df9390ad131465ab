/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The fixture the vfio-user-pci qtests share: see vfio-user-fixture.h.
 */

#include "qemu/osdep.h"
#include "libqos/pci-pc.h"
#include "vfio-user-fixture.h"

void vu_fixture_server(VUFixture *f, const char *name,
                       const VUTestServerConfig *cfg)
{
    g_autofree char *tmpl = g_strdup_printf("%s-XXXXXX", name);

    f->tmpdir = g_dir_make_tmp(tmpl, NULL);
    g_assert(f->tmpdir);
    f->sock = g_build_filename(f->tmpdir, "sock", NULL);
    f->srv = vu_test_server_new(f->sock, cfg);
    g_assert(f->srv);
}

void vu_fixture_find_device(VUFixture *f, int devfn)
{
    if (!f->bus) {
        f->bus = qpci_new_pc(f->qts, NULL);
    }
    g_free(f->dev);
    f->dev = qpci_device_find(f->bus, devfn);
    g_assert(f->dev);
    qpci_device_enable(f->dev);
    f->bar0 = qpci_iomap(f->dev, 0, &f->bar0_size);
}

void vu_fixture_stop(VUFixture *f)
{
    g_free(f->dev);
    if (f->bus) {
        qpci_free_pc(f->bus);
    }
    if (f->qts) {
        qtest_quit(f->qts);
    }
    if (f->srv) {
        vu_test_server_free(f->srv);
    }
    if (f->tmpdir) {
        rmdir(f->tmpdir);
    }
    g_free(f->sock);
    g_free(f->tmpdir);
    memset(f, 0, sizeof(*f));
}

uint32_t vu_fixture_bar0_readl(VUFixture *f, uint64_t off)
{
    return qpci_io_readl(f->dev, f->bar0, off);
}

void vu_fixture_bar0_writel(VUFixture *f, uint64_t off, uint32_t val)
{
    qpci_io_writel(f->dev, f->bar0, off, val);
}

void vu_fixture_bar0_writeq(VUFixture *f, uint64_t off, uint64_t val)
{
    qpci_io_writeq(f->dev, f->bar0, off, val);
}

uint32_t vu_fixture_run_dma(VUFixture *f, uint64_t src, uint64_t dst,
                            uint64_t len, uint32_t cmd)
{
    vu_fixture_bar0_writeq(f, VU_TEST_REG_DMA_SRC, src);
    vu_fixture_bar0_writeq(f, VU_TEST_REG_DMA_DST, dst);
    vu_fixture_bar0_writeq(f, VU_TEST_REG_DMA_LEN, len);
    vu_fixture_bar0_writel(f, VU_TEST_REG_DMA_CMD,
                           VU_TEST_DMA_CMD_START | cmd);
    /* The server DMAs before answering; a read is ordered after it. */
    return vu_fixture_bar0_readl(f, VU_TEST_REG_DMA_STATUS);
}

unsigned vu_fixture_qemu_fds(VUFixture *f)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/fd",
                                            qtest_pid(f->qts));
    GDir *dir = g_dir_open(path, 0, NULL);
    unsigned n = 0;

    g_assert(dir);
    while (g_dir_read_name(dir)) {
        n++;
    }
    g_dir_close(dir);
    return n;
}

bool vu_fixture_region_written(VUFixture *f, uint32_t region,
                               uint64_t offset)
{
    g_autoptr(GArray) writes = vu_test_server_region_writes(f->srv);

    for (guint i = 0; i < writes->len; i++) {
        VUTestRegionWriteRecord *w =
            &g_array_index(writes, VUTestRegionWriteRecord, i);

        if (w->region == region && w->offset == offset) {
            return true;
        }
    }
    return false;
}
