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

void vu_fixture_qemu(VUFixture *f, const char *qemu_args,
                     const char *dev_extra)
{
    f->qts = qtest_initf("%s -device vfio-user-pci,id=vu0,addr=%d.0,"
                         "socket.type=unix,socket.path=%s%s",
                         qemu_args, VU_FIXTURE_SLOT, f->sock,
                         dev_extra ? dev_extra : "");
}

void vu_fixture_start(VUFixture *f, const char *qemu_args,
                      const char *dev_extra)
{
    vu_fixture_qemu(f, qemu_args, dev_extra);
    vu_fixture_find_device(f, VU_FIXTURE_DEVFN);
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

void vu_fixture_fill_pattern(uint8_t *buf, size_t len, uint8_t seed)
{
    for (size_t i = 0; i < len; i++) {
        buf[i] = (uint8_t)(i * 7 + seed + (i >> 8));
    }
}

void vu_fixture_engine_dma(VUFixture *f, bool to_guest, uint64_t gpa,
                           unsigned buf_off, size_t len, uint8_t seed)
{
    g_autofree uint8_t *out = g_malloc(len);
    g_autofree uint8_t *in = g_malloc(len);

    vu_fixture_fill_pattern(out, len, seed);
    if (to_guest) {
        vu_test_server_buf_write(f->srv, buf_off, out, len);
        g_assert_cmphex(vu_fixture_run_dma(f, buf_off, gpa, len,
                                           VU_TEST_DMA_CMD_TO_GUEST), ==,
                        VU_TEST_DMA_STATUS_DONE);
        qtest_memread(f->qts, gpa, in, len);
    } else {
        qtest_memwrite(f->qts, gpa, out, len);
        g_assert_cmphex(vu_fixture_run_dma(f, gpa, buf_off, len, 0), ==,
                        VU_TEST_DMA_STATUS_DONE);
        vu_test_server_buf_read(f->srv, buf_off, in, len);
    }
    g_assert_cmpmem(in, len, out, len);
}

void vu_fixture_server_dma_round_trip(VUFixture *f, uint64_t addr,
                                      uint64_t gpa, size_t len,
                                      uint8_t seed_out, uint8_t seed_in)
{
    g_autofree uint8_t *out = g_malloc(len);
    g_autofree uint8_t *in = g_malloc(len);

    vu_fixture_fill_pattern(out, len, seed_out);
    g_assert_cmpint(vu_test_server_dma_write(f->srv, addr, out, len), ==, 0);
    qtest_memread(f->qts, gpa, in, len);
    g_assert_cmpmem(in, len, out, len);

    vu_fixture_fill_pattern(out, len, seed_in);
    qtest_memwrite(f->qts, gpa, out, len);
    memset(in, 0, len);
    g_assert_cmpint(vu_test_server_dma_read(f->srv, addr, in, len), ==, 0);
    g_assert_cmpmem(in, len, out, len);
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

bool vu_fixture_wait_guest_u32(QTestState *qts, uint64_t addr, uint32_t want)
{
    for (int i = 0; i < VU_FIXTURE_WAIT_MS; i++) {
        if (qtest_readl(qts, addr) == want) {
            return true;
        }
        g_usleep(1000);
    }
    return false;
}

bool vu_fixture_wait_irq(QTestState *qts, int irq, bool level)
{
    for (int i = 0; i < VU_FIXTURE_WAIT_MS; i++) {
        if (qtest_get_irq(qts, irq) == level) {
            return true;
        }
        g_usleep(1000);
    }
    return false;
}
