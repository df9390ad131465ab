/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The fixture the vfio-user-pci qtests share: a test server on a socket
 * in a temporary directory, the QEMU talking to it, and the device as
 * libqos sees it, with BAR0 mapped.  It exists so that vfio-user-test,
 * vfio-user-dma-test, vfio-user-hostile-test, vfio-user-pci-vet-test and
 * the benchmarks (bench/) set up and tear down the same things the same
 * way; each embeds a VUFixture in its own context
 * and adds what only it needs.
 */

#ifndef TESTS_QTEST_VFIO_USER_FIXTURE_H
#define TESTS_QTEST_VFIO_USER_FIXTURE_H

#include "libqtest.h"
#include "libqos/pci.h"
#include "vfio-user-server.h"

/* Where the fixture plugs the device */
#define VU_FIXTURE_SLOT     4
#define VU_FIXTURE_DEVFN    QPCI_DEVFN(VU_FIXTURE_SLOT, 0)

/* Guest RAM with an fd (a 256 MiB memfd), for -m 256 */
#define VU_FIXTURE_MEMFD_RAM \
    "-object memory-backend-memfd,id=mem,size=256M,share=on " \
    "-machine memory-backend=mem"

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
 * Start QEMU with @qemu_args and a vfio-user-pci "vu0" in slot
 * VU_FIXTURE_SLOT talking to f->sock; @dev_extra (may be NULL) is
 * appended to its properties, as ",name=value...".
 */
void vu_fixture_qemu(VUFixture *f, const char *qemu_args,
                     const char *dev_extra);

/* The same, then find the device and map its BAR0 */
void vu_fixture_start(VUFixture *f, const char *qemu_args,
                      const char *dev_extra);

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

/* The same bytes for the same @seed, different ones for another */
void vu_fixture_fill_pattern(uint8_t *buf, size_t len, uint8_t seed);

/*
 * A transfer of the device's DMA engine, asserting that the bytes
 * arrive: @len bytes of a pattern (@seed) from guest address @gpa into
 * the device buffer at @buf_off, or (@to_guest) from the buffer to @gpa.
 */
void vu_fixture_engine_dma(VUFixture *f, bool to_guest, uint64_t gpa,
                           unsigned buf_off, size_t len, uint8_t seed);

/*
 * The server writes a pattern (@seed_out) to DMA address @addr, then
 * reads back what the test wrote there (@seed_in); both are checked
 * against guest memory at @gpa as qtest sees it.
 */
void vu_fixture_server_dma_round_trip(VUFixture *f, uint64_t addr,
                                      uint64_t gpa, size_t len,
                                      uint8_t seed_out, uint8_t seed_in);

/* How many fds the QEMU of f->qts holds: a leak shows as growth. */
unsigned vu_fixture_qemu_fds(VUFixture *f);

/* Wait up to VU_FIXTURE_WAIT_MS for guest memory at @addr to read @want */
#define VU_FIXTURE_WAIT_MS  5000
bool vu_fixture_wait_guest_u32(QTestState *qts, uint64_t addr,
                               uint32_t want);
/* The same for intercepted IRQ line @irq to be at @level */
bool vu_fixture_wait_irq(QTestState *qts, int irq, bool level);

/* Whether the server logged a REGION_WRITE at @offset of @region */
bool vu_fixture_region_written(VUFixture *f, uint32_t region,
                               uint64_t offset);

#endif
