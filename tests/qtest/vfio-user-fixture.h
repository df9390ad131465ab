/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The fixture the vfio-user-pci qtests share: a test server on a socket
 * in a temporary directory, the QEMU talking to it, and the device as
 * libqos sees it, with BAR0 mapped.  It exists so that vfio-user-test,
 * vfio-user-dma-test and vfio-user-hostile-test set up and tear down the
 * same things the same way; each embeds a VUFixture in its own context
 * and adds what only it needs.
 */

#ifndef TESTS_QTEST_VFIO_USER_FIXTURE_H
#define TESTS_QTEST_VFIO_USER_FIXTURE_H

#include "libqtest.h"
#include "libqos/pci.h"
#include "vfio-user-server.h"

typedef struct VUFixture {
    char *tmpdir;
    char *sock;                 /* the server's socket, in tmpdir */
    VUTestServer *srv;
    QTestState *qts;            /* started by the test, with f->sock */
    QPCIBus *bus;
    QPCIDevice *dev;
    QPCIBar bar0;
    uint64_t bar0_size;
} VUFixture;

/* Start a server on a socket in a new directory "@name-XXXXXX". */
void vu_fixture_server(VUFixture *f, const char *name,
                       const VUTestServerConfig *cfg);

/*
 * Find the device at @devfn on f->qts (reusing f->bus and dropping an
 * earlier f->dev, so a test may call it again after device_add), enable
 * it and map its BAR0.
 */
void vu_fixture_find_device(VUFixture *f, int devfn);

/* Free whatever of the above was set up, and clear @f. */
void vu_fixture_stop(VUFixture *f);

uint32_t vu_fixture_bar0_readl(VUFixture *f, uint64_t off);
void vu_fixture_bar0_writel(VUFixture *f, uint64_t off, uint32_t val);
void vu_fixture_bar0_writeq(VUFixture *f, uint64_t off, uint64_t val);

/*
 * Run the test device's DMA engine (VU_TEST_REG_DMA_*) and wait for it;
 * returns DMA_STATUS.
 */
uint32_t vu_fixture_run_dma(VUFixture *f, uint64_t src, uint64_t dst,
                            uint64_t len, uint32_t cmd);

/* How many fds the QEMU of f->qts holds: a leak shows as growth. */
unsigned vu_fixture_qemu_fds(VUFixture *f);

/* Whether the server logged a REGION_WRITE at @offset of @region */
bool vu_fixture_region_written(VUFixture *f, uint32_t region,
                               uint64_t offset);

#endif
