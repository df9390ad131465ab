/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The fuzz harness's second mode: the PCI personality vetting
 * (hw/vfio-user/pci-vet.c) driven directly, without a conversation.
 *
 * Why directly: the vetting is pure C over a config space and a few sizes,
 * and what it must survive and refuse is in their values (capability
 * chains, MSI/MSI-X fields, BAR and ROM sizing, config sizes).  Reaching
 * it through the protocol would cost a whole conversation per input and
 * leave the fuzzer to rebuild one before each config space it tries; here
 * an input costs microseconds.
 *
 * Beyond the sanitizers it checks the promise pci-vet.h makes: once a
 * config space passed, whatever the server returns on a later read, the
 * pinned bits read as vetted (the ROM BAR, which reads as its size while
 * being sized, is left to the vetting's own code).
 *
 * Input format (VET_MAGIC first, so that the protocol mode's inputs never
 * land here by accident):
 *   "PCIV" | cfg (1) | flags (1) | bar[6] (1 each) | rom_region (1)
 *   | rom_bar_sized (4, LE) | config space (cfg's size, zero-filled if
 *   short) | ops...
 * cfg: 0 = 256 bytes, 1 = 4096, 2 = 0, 3 = 0x20, else cfg * 0x11;
 * flags bit 0: QEMU exposes the ROM BAR;
 * sizes (bar, rom_region): 0 = none, 1..64 = 2^(n-1), else n * 0x1100;
 * an op: kind (1; bit 0: write) | offset (2, LE) | len (1) | for a write,
 * len bytes written, for a read len bytes the server returns.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/error-report.h"
#include "qemu/bswap.h"
#include "hw/pci/pci_regs.h"
#include "hw/vfio-user/pci-vet.h"
#include "vfio-user-fuzz.h"

#define VET_MAGIC       "PCIV"
#define VET_HDR_SIZE    (4 + 1 + 1 + PCI_ROM_SLOT + 1 + 4)

static uint64_t vet_size(uint8_t code)
{
    if (!code) {
        return 0;
    }
    return code <= 64 ? 1ULL << (code - 1) : code * 0x1100ULL;
}

static uint64_t vet_config_size(uint8_t code)
{
    static const uint64_t sizes[] = {
        PCI_CONFIG_SPACE_SIZE, PCIE_CONFIG_SPACE_SIZE, 0, 0x20,
    };

    return code < ARRAY_SIZE(sizes) ? sizes[code] : code * 0x11;
}

/* A read the server answered with @data passed through the overlay. */
static void vet_check_read(const VFIOUserPCIVet *vet, uint64_t off,
                           const uint8_t *data, size_t len)
{
    for (size_t n = 0; n < len && off + n < vet->config_size; n++) {
        unsigned i = off + n;

        if (i >= PCI_ROM_ADDRESS && i < PCI_ROM_ADDRESS + 4) {
            continue;
        }
        if ((data[n] ^ vet->config[i]) & vet->pinned[i]) {
            fprintf(stderr, "pci-vet-fuzz: config byte 0x%x reads 0x%02x, "
                    "vetted 0x%02x, pinned bits 0x%02x\n", i, data[n],
                    vet->config[i], vet->pinned[i]);
            abort();
        }
    }
}

bool vfio_user_vet_fuzz(const uint8_t *data, size_t size)
{
    static VFIOUserPCIVet vet;
    static uint8_t config[PCIE_CONFIG_SPACE_SIZE];
    VFIOUserPCIShape shape = { 0 };
    const uint8_t *p = data + 4, *end = data + size;
    Error *err = NULL;
    size_t n;

    if (size < VET_HDR_SIZE || memcmp(data, VET_MAGIC, 4)) {
        return false;
    }
    shape.config_size = vet_config_size(*p++);
    shape.rom_bar = *p++ & 1;
    for (int i = 0; i < PCI_ROM_SLOT; i++) {
        shape.bar_size[i] = vet_size(*p++);
    }
    shape.rom_region_size = vet_size(*p++);
    shape.rom_bar_sized = ldl_le_p(p);
    p += 4;

    /* As vfio-user-pci reads it: only a size the vetting can accept */
    memset(config, 0, sizeof(config));
    n = MIN(MIN(shape.config_size, sizeof(config)), (size_t)(end - p));
    memcpy(config, p, n);
    p += MIN(shape.config_size, (size_t)(end - p));

    if (!vfio_user_pci_vet(&vet, config, &shape, &err)) {
        /* VFIO_USER_FUZZ_VERBOSE=1 shows which check refused it */
        error_report_err(err);
        return true;
    }
    while (end - p >= 4) {
        bool write = p[0] & 1;
        uint16_t off = lduw_le_p(p + 1);
        uint8_t buf[256];

        n = MIN((size_t)p[3], (size_t)(end - p - 4));
        memcpy(buf, p + 4, n);
        p += 4 + n;
        if (write) {
            vfio_user_pci_vet_write(&vet, off, buf, n);
        } else {
            vfio_user_pci_vet_read(&vet, off, buf, n);
            vet_check_read(&vet, off, buf, n);
        }
    }
    return true;
}
