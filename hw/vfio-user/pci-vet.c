/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vfio-user client: vet the PCI personality a server describes.
 *
 * Each check below guards a place where hw/vfio (hw/vfio/pci.c) or the
 * PCI core it calls would loop, index out of bounds or assert on what a
 * kernel-vetted device never reports; the comment on each check names
 * it.  What the check relies on is pinned, so hw/vfio sees the same
 * value whenever it reads config space again (at realize, which reads
 * it several times, and after every reset).
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/bitmap.h"
#include "qemu/bswap.h"
#include "qemu/units.h"
#include "hw/pci/pci_regs.h"
#include "hw/pci/msix.h"
#include "hw/vfio-user/pci-vet.h"

/* An MSI capability's Multiple Message Capable field: 2^5 = 32 vectors */
#define MSI_MMC_MAX             5
/* PCIe capability bytes hw/vfio writes whatever its size (up to LNKCTL) */
#define PCIE_CAP_MIN_SIZE       (PCI_EXP_LNKCTL + 2)
/* pcie_add_capability() asserts that an extended capability has 8 bytes */
#define EXT_CAP_MIN_SIZE        8
#define REBAR_MAX_BARS          6

typedef struct VetState {
    VFIOUserPCIVet *vet;
    const VFIOUserPCIShape *shape;
    uint16_t caps[PCIE_CONFIG_SPACE_SIZE / 4];  /* positions, in chain order */
    unsigned ncaps;
    DECLARE_BITMAP(seen_ids, 256);              /* standard capability IDs */
} VetState;

static void pin(VFIOUserPCIVet *vet, unsigned off, unsigned len, uint8_t mask)
{
    for (unsigned i = off; i < off + len; i++) {
        vet->pinned[i] |= mask;
    }
}

/*
 * Distance from the capability at @pos to the next one above it (or to
 * @end): the size hw/vfio gives it (vfio_std_cap_max_size(),
 * vfio_ext_cap_max_size()).
 */
static unsigned cap_room(const VetState *s, unsigned pos, unsigned end)
{
    unsigned next = end;

    for (unsigned i = 0; i < s->ncaps; i++) {
        if (s->caps[i] > pos && s->caps[i] < next) {
            next = s->caps[i];
        }
    }
    return next - pos;
}

/*
 * Follow a capability list, from @first (found at @from), through the
 * next pointer that
 * @next_of extracts.  Every position must lie in [@lo, @hi] and be
 * aligned to 4, and none may come twice (hw/vfio and the PCI core walk
 * these lists with no bound: a loop hangs QEMU under the BQL).
 */
static bool walk_caps(VetState *s, const char *what, unsigned from,
                      unsigned first, unsigned lo, unsigned hi,
                      unsigned (*next_of)(const uint8_t *config, unsigned pos),
                      Error **errp)
{
    g_autofree unsigned long *visited = bitmap_new(PCIE_CONFIG_SPACE_SIZE);
    unsigned prev = from;

    s->ncaps = 0;
    for (unsigned pos = first; pos; pos = next_of(s->vet->config, pos)) {
        if (pos < lo || pos > hi || (pos & 3)) {
            error_setg(errp, "%s at 0x%x points to 0x%x, outside "
                       "[0x%x, 0x%x] or not 4-byte aligned", what, prev,
                       pos, lo, hi);
            return false;
        }
        if (test_and_set_bit(pos, visited)) {
            error_setg(errp, "%s loops: the capability at 0x%x points back "
                       "to 0x%x", what, prev, pos);
            return false;
        }
        s->caps[s->ncaps++] = pos;
        prev = pos;
    }
    return true;
}

static unsigned std_next(const uint8_t *config, unsigned pos)
{
    return config[pos + PCI_CAP_LIST_NEXT];
}

static unsigned ext_next(const uint8_t *config, unsigned pos)
{
    return PCI_EXT_CAP_NEXT(pci_get_long(config + pos));
}

/* The BAR a MSI-X table or PBA lives in must exist and hold @len bytes. */
static bool vet_msix_bar(VetState *s, unsigned pos, const char *what,
                         uint32_t reg, uint64_t len, Error **errp)
{
    unsigned bir = reg & PCI_MSIX_FLAGS_BIRMASK;
    uint64_t offset = reg & ~PCI_MSIX_FLAGS_BIRMASK;
    uint64_t size;

    /* vfio_msix_early_setup() indexes bars[] with the BIR */
    if (bir >= PCI_ROM_SLOT) {
        error_setg(errp, "MSI-X capability at 0x%x: %s BIR %u is not a "
                   "BAR (0-5)", pos, what, bir);
        return false;
    }
    size = s->shape->bar_size[bir];
    if (!size || (pci_get_long(s->vet->config + PCI_BASE_ADDRESS_0 +
                               4 * bir) & PCI_BASE_ADDRESS_SPACE_IO)) {
        error_setg(errp, "MSI-X capability at 0x%x: %s BIR %u names %s",
                   pos, what, bir, size ? "an I/O BAR" : "no BAR");
        return false;
    }
    /* msix_init() would map the table over the end of the BAR */
    if (offset > size || len > size - offset) {
        error_setg(errp, "MSI-X capability at 0x%x: %s of 0x%" PRIx64
                   " bytes at offset 0x%" PRIx64 " does not fit BAR%u "
                   "(0x%" PRIx64 " bytes)", pos, what, len, offset, bir,
                   size);
        return false;
    }
    return true;
}

static bool vet_msix(VetState *s, unsigned pos, Error **errp)
{
    const uint8_t *config = s->vet->config;
    unsigned entries;

    if (pos + MSIX_CAP_LENGTH > PCI_CONFIG_SPACE_SIZE) {
        error_setg(errp, "MSI-X capability at 0x%x runs past the end of "
                   "config space", pos);
        return false;
    }
    entries = (pci_get_word(config + pos + PCI_MSIX_FLAGS) &
               PCI_MSIX_FLAGS_QSIZE) + 1;
    if (!vet_msix_bar(s, pos, "table",
                      pci_get_long(config + pos + PCI_MSIX_TABLE),
                      (uint64_t)entries * PCI_MSIX_ENTRY_SIZE, errp) ||
        !vet_msix_bar(s, pos, "PBA", pci_get_long(config + pos + PCI_MSIX_PBA),
                      DIV_ROUND_UP(entries, 64) * 8, errp)) {
        return false;
    }
    pin(s->vet, pos, MSIX_CAP_LENGTH, 0xff);
    return true;
}

static bool vet_msi(VetState *s, unsigned pos, Error **errp)
{
    uint16_t flags = pci_get_word(s->vet->config + pos + PCI_MSI_FLAGS);
    unsigned mmc = (flags & PCI_MSI_FLAGS_QMASK) >> 1;
    unsigned len = PCI_MSI_DATA_32 + 2 +
                   (flags & PCI_MSI_FLAGS_64BIT ? 4 : 0) +
                   (flags & PCI_MSI_FLAGS_MASKBIT ? 10 : 0);

    /* msi_init() asserts at most 32 vectors */
    if (mmc > MSI_MMC_MAX) {
        error_setg(errp, "MSI capability at 0x%x: Multiple Message Capable "
                   "%u (%u vectors) is over the spec's 32 vectors", pos, mmc,
                   1u << mmc);
        return false;
    }
    /* msi_init() writes the whole capability into config space */
    if (pos + len > PCI_CONFIG_SPACE_SIZE) {
        error_setg(errp, "MSI capability at 0x%x needs 0x%x bytes and runs "
                   "past the end of config space", pos, len);
        return false;
    }
    pin(s->vet, pos + PCI_MSI_FLAGS, 2, 0xff);
    return true;
}

static bool vet_std_cap(VetState *s, unsigned pos, Error **errp)
{
    uint8_t id = s->vet->config[pos + PCI_CAP_LIST_ID];

    pin(s->vet, pos, 2, 0xff);
    if ((id == PCI_CAP_ID_MSI || id == PCI_CAP_ID_MSIX ||
         id == PCI_CAP_ID_PM || id == PCI_CAP_ID_EXP) &&
        test_and_set_bit(id, s->seen_ids)) {
        /* hw/vfio and the PCI core keep one offset for each of these */
        error_setg(errp, "capability 0x%02x at 0x%x appears twice", id, pos);
        return false;
    }
    switch (id) {
    case PCI_CAP_ID_MSI:
        return vet_msi(s, pos, errp);
    case PCI_CAP_ID_MSIX:
        return vet_msix(s, pos, errp);
    case PCI_CAP_ID_PM:
        /* pci_pm_init() adds 8 bytes whatever the room */
        if (pos + PCI_PM_SIZEOF > PCI_CONFIG_SPACE_SIZE) {
            error_setg(errp, "power management capability at 0x%x runs "
                       "past the end of config space", pos);
            return false;
        }
        return true;
    case PCI_CAP_ID_EXP:
        /* vfio_setup_pcie_cap() emulates fields up to the link control */
        if (cap_room(s, pos, PCI_CONFIG_SPACE_SIZE) < PCIE_CAP_MIN_SIZE) {
            error_setg(errp, "PCI Express capability at 0x%x has 0x%x "
                       "bytes, fewer than 0x%x", pos,
                       cap_room(s, pos, PCI_CONFIG_SPACE_SIZE),
                       PCIE_CAP_MIN_SIZE);
            return false;
        }
        pin(s->vet, pos + PCI_EXP_FLAGS, 2, 0xff);
        return true;
    default:
        return true;
    }
}

static bool vet_std_caps(VetState *s, Error **errp)
{
    VFIOUserPCIVet *vet = s->vet;

    pin(vet, PCI_STATUS, 1, PCI_STATUS_CAP_LIST);
    if (!(vet->config[PCI_STATUS] & PCI_STATUS_CAP_LIST)) {
        return true;
    }
    pin(vet, PCI_CAPABILITY_LIST, 1, 0xff);
    if (!walk_caps(s, "capability list", PCI_CAPABILITY_LIST,
                   vet->config[PCI_CAPABILITY_LIST],
                   PCI_CONFIG_HEADER_SIZE, PCI_CONFIG_SPACE_SIZE - 4,
                   std_next, errp)) {
        return false;
    }
    for (unsigned i = 0; i < s->ncaps; i++) {
        if (!vet_std_cap(s, s->caps[i], errp)) {
            return false;
        }
    }
    return true;
}

static bool vet_ext_cap(VetState *s, unsigned pos, Error **errp)
{
    VFIOUserPCIVet *vet = s->vet;
    unsigned room = cap_room(s, pos, PCIE_CONFIG_SPACE_SIZE);
    uint32_t header = pci_get_long(vet->config + pos);
    unsigned nbar;

    pin(vet, pos, 4, 0xff);
    if (room < EXT_CAP_MIN_SIZE) {
        error_setg(errp, "extended capability 0x%x at 0x%x has 0x%x bytes, "
                   "fewer than %u", PCI_EXT_CAP_ID(header), pos, room,
                   EXT_CAP_MIN_SIZE);
        return false;
    }
    if (PCI_EXT_CAP_ID(header) != PCI_EXT_CAP_ID_REBAR) {
        return true;
    }
    /* vfio_setup_rebar_ecap() reads and emulates 8 bytes per BAR */
    nbar = (pci_get_long(vet->config + pos + PCI_REBAR_CTRL) &
            PCI_REBAR_CTRL_NBAR_MASK) >> PCI_REBAR_CTRL_NBAR_SHIFT;
    if (nbar < 1 || nbar > REBAR_MAX_BARS ||
        PCI_REBAR_CAP + 8 * nbar > room) {
        error_setg(errp, "resizable BAR capability at 0x%x: %u BARs do not "
                   "fit its 0x%x bytes (1 to %u BARs, 8 bytes each)", pos,
                   nbar, room, REBAR_MAX_BARS);
        return false;
    }
    pin(vet, pos + PCI_REBAR_CTRL, 1, PCI_REBAR_CTRL_NBAR_MASK);
    return true;
}

static bool vet_ext_caps(VetState *s, Error **errp)
{
    VFIOUserPCIVet *vet = s->vet;

    if (vet->config_size < PCIE_CONFIG_SPACE_SIZE) {
        return true;
    }
    pin(vet, PCI_CONFIG_SPACE_SIZE, 4, 0xff);
    if (!pci_get_long(vet->config + PCI_CONFIG_SPACE_SIZE)) {
        return true;
    }
    if (!walk_caps(s, "extended capability list", PCI_CONFIG_SPACE_SIZE,
                   PCI_CONFIG_SPACE_SIZE, PCI_CONFIG_SPACE_SIZE,
                   PCIE_CONFIG_SPACE_SIZE - 4,
                   ext_next, errp)) {
        return false;
    }
    for (unsigned i = 0; i < s->ncaps; i++) {
        if (!vet_ext_cap(s, s->caps[i], errp)) {
            return false;
        }
    }
    return true;
}

/*
 * A BAR is a power of two (pci_register_bar() asserts it), at least as
 * big as its type bits, that its type can address; a 64-bit BAR takes
 * the next BAR's slot for its upper half.
 */
static bool vet_bars(VetState *s, Error **errp)
{
    VFIOUserPCIVet *vet = s->vet;

    for (int i = 0; i < PCI_ROM_SLOT; i++) {
        unsigned reg = PCI_BASE_ADDRESS_0 + 4 * i;
        uint32_t bar = pci_get_long(vet->config + reg);
        bool io = bar & PCI_BASE_ADDRESS_SPACE_IO;
        bool mem64 = !io && (bar & PCI_BASE_ADDRESS_MEM_TYPE_64);
        uint64_t size = s->shape->bar_size[i];
        uint64_t min = io ? 4 : 16;
        uint64_t max = io ? 64 * KiB : mem64 ? 1ULL << 63 : 2 * GiB;

        /* vfio_bar_prepare() reads the type bits again */
        pin(vet, reg, 1, io ? ~PCI_BASE_ADDRESS_IO_MASK & 0xff :
                              ~PCI_BASE_ADDRESS_MEM_MASK & 0xff);
        if (!size) {
            continue;
        }
        if (!is_power_of_2(size) || size < min || size > max) {
            error_setg(errp, "BAR%d size 0x%" PRIx64 " is not a power of two "
                       "from 0x%" PRIx64 " to 0x%" PRIx64 " as a %s BAR must "
                       "be", i, size, min, max,
                       io ? "I/O" : mem64 ? "64-bit" : "32-bit");
            return false;
        }
        if (mem64 && (i == PCI_ROM_SLOT - 1 || s->shape->bar_size[i + 1])) {
            error_setg(errp, "BAR%d is 64-bit but BAR%d, its upper half, %s",
                       i, i + 1, i == PCI_ROM_SLOT - 1 ? "does not exist" :
                       "is a region of its own");
            return false;
        }
        if (mem64) {
            i++;
        }
    }
    return true;
}

/*
 * The option ROM: vfio_pci_size_rom() gives pci_register_bar() whatever
 * the BAR sizes to (it asserts a power of two), and vfio_pci_load_rom()
 * allocates and reads the whole ROM region, up to 4 GiB, by message under
 * the BQL.
 */
static bool vet_rom(VetState *s, Error **errp)
{
    VFIOUserPCIVet *vet = s->vet;
    const VFIOUserPCIShape *shape = s->shape;
    uint32_t addr = shape->rom_bar_sized & PCI_ROM_ADDRESS_MASK;
    uint32_t size = ~addr + 1;

    if (!shape->rom_bar) {
        return true;
    }
    pin(vet, PCI_ROM_ADDRESS, 4, 0xff);
    if (!addr) {
        return true;            /* no ROM */
    }
    if (!is_power_of_2(size) || size > VFIO_USER_PCI_ROM_MAX) {
        error_setg(errp, "ROM BAR reads back 0x%08x when sized: size 0x%x "
                   "is not a power of two up to %u MiB", shape->rom_bar_sized,
                   size, (unsigned)(VFIO_USER_PCI_ROM_MAX / MiB));
        return false;
    }
    if (shape->rom_region_size < size ||
        shape->rom_region_size > VFIO_USER_PCI_ROM_MAX) {
        error_setg(errp, "ROM BAR of 0x%x bytes, but the ROM region has 0x%"
                   PRIx64 " (it must back the BAR, up to %u MiB)", size,
                   shape->rom_region_size,
                   (unsigned)(VFIO_USER_PCI_ROM_MAX / MiB));
        return false;
    }
    vet->rom_size = size;
    return true;
}

static bool vet_header(VetState *s, Error **errp)
{
    VFIOUserPCIVet *vet = s->vet;
    uint16_t vendor = pci_get_word(vet->config + PCI_VENDOR_ID);
    uint8_t type = vet->config[PCI_HEADER_TYPE] &
                   ~PCI_HEADER_TYPE_MULTI_FUNCTION;
    uint8_t pin_nr = vet->config[PCI_INTERRUPT_PIN];

    if (vendor == 0xffff) {
        error_setg(errp, "vendor ID 0xffff: config space reads as no device "
                   "(all ones)");
        return false;
    }
    /* hw/vfio knows type 0 only: 6 BARs, a ROM BAR at 0x30 */
    pin(vet, PCI_HEADER_TYPE, 1, (uint8_t)~PCI_HEADER_TYPE_MULTI_FUNCTION);
    if (type != PCI_HEADER_TYPE_NORMAL) {
        error_setg(errp, "header type 0x%02x: only type 0 (an endpoint) is "
                   "supported", type);
        return false;
    }
    /* vfio_intx_enable() reads the pin again after every reset */
    pin(vet, PCI_INTERRUPT_PIN, 1, 0xff);
    if (pin_nr > PCI_NUM_PINS) {
        error_setg(errp, "interrupt pin %u is not 0 (none) or 1-4 (INTA-INTD)",
                   pin_nr);
        return false;
    }
    return true;
}

bool vfio_user_pci_vet(VFIOUserPCIVet *vet, const uint8_t *config,
                       const VFIOUserPCIShape *shape, Error **errp)
{
    g_autofree VetState *s = g_new0(VetState, 1);

    /* Anything else and hw/vfio reads past what the server gave */
    if (shape->config_size != PCI_CONFIG_SPACE_SIZE &&
        shape->config_size != PCIE_CONFIG_SPACE_SIZE) {
        error_setg(errp, "config space region of 0x%" PRIx64 " bytes: it "
                   "must be 0x%x (PCI) or 0x%x (PCI Express)",
                   shape->config_size, PCI_CONFIG_SPACE_SIZE,
                   PCIE_CONFIG_SPACE_SIZE);
        return false;
    }
    memset(vet, 0, sizeof(*vet));
    vet->config_size = shape->config_size;
    memcpy(vet->config, config, vet->config_size);
    s->vet = vet;
    s->shape = shape;

    return vet_header(s, errp) && vet_bars(s, errp) && vet_rom(s, errp) &&
           vet_std_caps(s, errp) && vet_ext_caps(s, errp);
}

/* What the ROM BAR reads as: its size while being sized, else as vetted */
static uint8_t rom_bar_byte(const VFIOUserPCIVet *vet, unsigned i)
{
    uint32_t sized = vet->rom_size ? ~(vet->rom_size - 1) &
                                     PCI_ROM_ADDRESS_MASK : 0;

    if (!vet->rom_sizing) {
        return vet->config[i];
    }
    return sized >> (8 * (i - PCI_ROM_ADDRESS));
}

void vfio_user_pci_vet_read(const VFIOUserPCIVet *vet, uint64_t off,
                            uint8_t *data, size_t len)
{
    for (size_t n = 0; n < len && off + n < vet->config_size; n++) {
        unsigned i = off + n;
        uint8_t mask = vet->pinned[i];
        uint8_t val = vet->config[i];

        if (!mask) {
            continue;
        }
        if (i >= PCI_ROM_ADDRESS && i < PCI_ROM_ADDRESS + 4) {
            val = rom_bar_byte(vet, i);
        }
        data[n] = (data[n] & ~mask) | (val & mask);
    }
}

void vfio_user_pci_vet_write(VFIOUserPCIVet *vet, uint64_t off,
                             const uint8_t *data, size_t len)
{
    if (off + len <= PCI_ROM_ADDRESS || off >= PCI_ROM_ADDRESS + 4) {
        return;
    }
    /* vfio_pci_size_rom() writes the address mask as one dword */
    vet->rom_sizing = off == PCI_ROM_ADDRESS && len == 4 &&
                      (ldl_le_p(data) & PCI_ROM_ADDRESS_MASK) ==
                      PCI_ROM_ADDRESS_MASK;
}

/*
 * The position of standard capability @id in the vetted copy, 0 if none
 * (its list was checked: in bounds, aligned, no loop).
 */
static unsigned vetted_cap(const VFIOUserPCIVet *vet, uint8_t id)
{
    unsigned pos = vet->config[PCI_CAPABILITY_LIST] & ~3;

    if (!(vet->config[PCI_STATUS] & PCI_STATUS_CAP_LIST)) {
        return 0;
    }
    for (unsigned n = 0; pos && n < PCI_CONFIG_SPACE_SIZE / 4; n++) {
        if (vet->config[pos + PCI_CAP_LIST_ID] == id) {
            return pos;
        }
        pos = vet->config[pos + PCI_CAP_LIST_NEXT] & ~3;
    }
    return 0;
}

bool vfio_user_pci_vet_same_device(const VFIOUserPCIVet *vet,
                                   const uint8_t *config,
                                   uint64_t config_size, Error **errp)
{
    unsigned msi, msix;
    static const struct {
        unsigned off, len;
        const char *name;
    } ids[] = {
        { PCI_VENDOR_ID, 2, "vendor ID" },
        { PCI_DEVICE_ID, 2, "device ID" },
        { PCI_REVISION_ID, 1, "revision ID" },
        { PCI_CLASS_PROG, 3, "class code" },
        { PCI_SUBSYSTEM_VENDOR_ID, 2, "subsystem vendor ID" },
        { PCI_SUBSYSTEM_ID, 2, "subsystem ID" },
    };

    if (config_size != vet->config_size) {
        error_setg(errp, "config space of 0x%" PRIx64 " bytes, was 0x%x",
                   config_size, vet->config_size);
        return false;
    }
    for (size_t i = 0; i < ARRAY_SIZE(ids); i++) {
        uint32_t now = 0, was = 0;

        memcpy(&now, config + ids[i].off, ids[i].len);
        memcpy(&was, vet->config + ids[i].off, ids[i].len);
        if (now != was) {
            error_setg(errp, "%s 0x%x, was 0x%x", ids[i].name,
                       le32_to_cpu(now), le32_to_cpu(was));
            return false;
        }
    }
    /*
     * Everything hw/vfio parsed, which is pinned, must read the same,
     * except what the guest programs: the ROM BAR's address, MSI's enable
     * and queue size, MSI-X's enable and function mask (a server that
     * kept its state across the reconnect has them set).
     */
    msi = vetted_cap(vet, PCI_CAP_ID_MSI);
    msix = vetted_cap(vet, PCI_CAP_ID_MSIX);
    for (unsigned i = 0; i < config_size; i++) {
        uint8_t mask = vet->pinned[i];

        if (i >= PCI_ROM_ADDRESS && i < PCI_ROM_ADDRESS + 4) {
            continue;
        }
        if (msi && i == msi + PCI_MSI_FLAGS) {
            mask &= ~(PCI_MSI_FLAGS_ENABLE | PCI_MSI_FLAGS_QSIZE);
        }
        if (msix && i == msix + PCI_MSIX_FLAGS + 1) {
            mask &= ~((PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL) >> 8);
        }
        if (i == PCI_HEADER_TYPE) {
            mask &= ~PCI_HEADER_TYPE_MULTI_FUNCTION;
        }
        if ((config[i] ^ vet->config[i]) & mask) {
            error_setg(errp, "config space byte 0x%x is 0x%02x, was 0x%02x "
                       "(capabilities or BAR types differ)", i, config[i],
                       vet->config[i]);
            return false;
        }
    }
    return true;
}
