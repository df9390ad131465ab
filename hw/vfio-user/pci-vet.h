/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vfio-user client: vet the PCI personality a server describes.
 *
 * hw/vfio's PCI code was written for devices the kernel had already
 * vetted: it follows capability chains without loop checks, trusts MSI
 * and MSI-X fields as indexes and sizes, and asserts on a ROM BAR that is
 * not a power of two.  A vfio-user server is another process, perhaps a
 * hostile one, so before hw/vfio parses its config space we read it once,
 * check every field hw/vfio interprets, and from then on serve those
 * fields (the "pinned" bits) from that vetted copy, so that a server
 * cannot change them between our check and hw/vfio's use, or later.
 *
 * Pure C over a buffer: no QOM, no socket, so that the fuzzer can drive
 * it directly.
 */

#ifndef HW_VFIO_USER_PCI_VET_H
#define HW_VFIO_USER_PCI_VET_H

#include "hw/pci/pci.h"

/* The largest option ROM we expose, and the largest ROM region we read. */
#define VFIO_USER_PCI_ROM_MAX       (16 * MiB)

/* What the server said about the device outside its config space. */
typedef struct VFIOUserPCIShape {
    uint64_t config_size;               /* size of the config region */
    uint64_t bar_size[PCI_ROM_SLOT];    /* size of each BAR's region */
    uint64_t rom_region_size;           /* size of the ROM region */
    bool rom_bar;                       /* QEMU will expose the ROM BAR */
    /* The ROM BAR read back after its address bits were written as ones */
    uint32_t rom_bar_sized;
} VFIOUserPCIShape;

typedef struct VFIOUserPCIVet {
    uint32_t config_size;
    uint32_t rom_size;                  /* vetted ROM BAR size, 0: none */
    bool rom_sizing;                    /* last ROM BAR write was a sizing */
    uint8_t config[PCIE_CONFIG_SPACE_SIZE];     /* the vetted copy */
    uint8_t pinned[PCIE_CONFIG_SPACE_SIZE];     /* bits served from it */
} VFIOUserPCIVet;

/*
 * Check @config (shape->config_size bytes, as read from the server) and
 * @shape; on success fill @vet with the vetted copy and the bits to pin.
 * On failure the error names the field and its value.
 */
bool vfio_user_pci_vet(VFIOUserPCIVet *vet, const uint8_t *config,
                       const VFIOUserPCIShape *shape, Error **errp);

/*
 * A config space read of [@off, @off + @len) from the server returned
 * @data: replace the pinned bits with the vetted ones.
 */
void vfio_user_pci_vet_read(const VFIOUserPCIVet *vet, uint64_t off,
                            uint8_t *data, size_t len);

/* A config space write of @data is on its way to the server. */
void vfio_user_pci_vet_write(VFIOUserPCIVet *vet, uint64_t off,
                             const uint8_t *data, size_t len);

/*
 * Whether @config (@config_size bytes, read from a new connection) is
 * the device @vet was made for: same IDs and class, and the same bits
 * where @vet pins them.  On failure the error says what differs.
 */
bool vfio_user_pci_vet_same_device(const VFIOUserPCIVet *vet,
                                   const uint8_t *config,
                                   uint64_t config_size, Error **errp);

#endif /* HW_VFIO_USER_PCI_VET_H */
