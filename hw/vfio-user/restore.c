/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vfio-user client: put a vfio-user-pci device back on a new connection
 * to its server, after the old one died.
 *
 * The new server process knows nothing of us.  Before the device uses
 * it, it must prove that it serves the same device: the same device
 * info, the same regions (size and access) and interrupts (count and
 * flags) as the old one first said, and the same config space wherever
 * hw/vfio parsed it (IDs, class, capabilities, BAR types: pci-vet.c).
 * Then it is told everything the old one had been told:
 *   - every DMA mapping, with memory fds as before or, under secure-dma,
 *     without (container.c);
 *   - the config space the guest programmed (command register, BARs,
 *     MSI/MSI-X control), as raw writes;
 *   - the interrupt eventfds and masks hw/vfio set up (device.c records
 *     them), INTx unmasked since the device dropped its level at death;
 *   - and the BARs that were mmapped are mapped again, at the same
 *     addresses, from the new server's fds (MAP_FIXED replaces the old
 *     mapping atomically for the vCPUs); a BAR the new server gives no
 *     usable fd for is unmapped and accessed by message from then on.
 * Everything runs in the main loop under the BQL, so no vCPU sees the
 * device half restored; every request is bounded by x-msg-timeout, and
 * a server that stalls is killed, which fails what is left at once.
 *
 * What the server keeps inside the device (an NVMe controller's queues)
 * is new: the guest's driver must notice and reset the device.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/error-report.h"
#include "hw/vfio/pci.h"
#include "hw/vfio-user/container.h"
#include "hw/vfio-user/restore.h"
#include "trace.h"

static bool same_device_info(VFIODevice *vbasedev, Error **errp)
{
    struct vfio_device_info info = { .argsz = sizeof(info) };
    uint32_t flags = vbasedev->flags &
                     (VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET);
    int ret = vbasedev->io_ops->get_device_info(vbasedev, &info);

    if (ret < 0) {
        error_setg_errno(errp, -ret, "cannot get device info");
        return false;
    }
    if (info.flags != flags || info.num_regions != vbasedev->num_regions ||
        info.num_irqs != vbasedev->num_irqs) {
        error_setg(errp, "device info flags 0x%x, %u regions, %u irqs; was "
                   "0x%x, %u, %u", info.flags, info.num_regions,
                   info.num_irqs, flags, vbasedev->num_regions,
                   vbasedev->num_irqs);
        return false;
    }
    return true;
}

static bool same_regions(VFIODevice *vbasedev, VFIOUserDevice *udev,
                         Error **errp)
{
    for (uint32_t i = 0; i < udev->num_regions; i++) {
        const VFIOUserRegionState *was = &udev->regions[i];
        g_autofree struct vfio_region_info *info = NULL;
        uint32_t rw;
        int fd;
        int ret;

        if (was->size == UINT64_MAX) {
            continue;           /* never asked: nothing depends on it */
        }
        ret = vfio_user_device_query_region(vbasedev, i, &info, &fd);
        if (ret < 0) {
            error_setg_errno(errp, -ret, "cannot get region %u info", i);
            return false;
        }
        if (fd >= 0) {
            close(fd);
        }
        rw = info->flags & (VFIO_REGION_INFO_FLAG_READ |
                            VFIO_REGION_INFO_FLAG_WRITE);
        if (info->size != was->size || rw != was->rw_flags) {
            error_setg(errp, "region %u: size 0x%llx, access flags 0x%x; "
                       "was 0x%" PRIx64 ", 0x%x", i, info->size, rw,
                       was->size, was->rw_flags);
            return false;
        }
    }
    return true;
}

static bool same_irqs(VFIODevice *vbasedev, VFIOUserDevice *udev,
                      Error **errp)
{
    for (uint32_t i = 0; i < udev->num_irqs; i++) {
        VFIOUserIRQState *was = &udev->irqs[i];
        struct vfio_irq_info info = { .argsz = sizeof(info), .index = i };
        int ret;

        if (!was->known) {
            continue;
        }
        ret = vbasedev->io_ops->get_irq_info(vbasedev, &info);
        if (ret < 0) {
            error_setg_errno(errp, -ret, "cannot get irq %u info", i);
            return false;
        }
        if (info.count != was->count || info.flags != was->flags) {
            error_setg(errp, "irq %u: %u vectors, flags 0x%x; was %u, 0x%x",
                       i, info.count, info.flags, was->count, was->flags);
            return false;
        }
    }
    return true;
}

static bool same_config(VFIODevice *vbasedev, VFIOUserDevice *udev,
                        Error **errp)
{
    const VFIOUserPCIVet *vet = udev->config_vet;
    g_autofree uint8_t *config = NULL;

    if (!vet) {
        return true;            /* realize never got that far */
    }
    config = g_malloc0(vet->config_size);
    if (vfio_user_device_read_unvetted(vbasedev,
                                       VFIO_PCI_CONFIG_REGION_INDEX, 0,
                                       vet->config_size, config) !=
        vet->config_size) {
        error_setg(errp, "cannot read config space");
        return false;
    }
    /* same_regions() found the config region's size unchanged */
    return vfio_user_pci_vet_same_device(vet, config, vet->config_size,
                                         errp);
}

static bool write_config(VFIODevice *vbasedev, const uint8_t *config,
                         unsigned off, unsigned len, Error **errp)
{
    if (vbasedev->io_ops->region_write(vbasedev, VFIO_PCI_CONFIG_REGION_INDEX,
                                       off, len, (void *)(config + off),
                                       false) != len) {
        error_setg(errp, "cannot write config space at 0x%x", off);
        return false;
    }
    return true;
}

/*
 * What the guest programmed that the device itself sees: BARs first,
 * then the command register that enables decoding and bus mastering,
 * then MSI's address and data before its enable bit, and MSI-X's.
 */
static bool restore_config(VFIOPCIDevice *vdev, Error **errp)
{
    VFIODevice *vbasedev = &vdev->vbasedev;
    PCIDevice *pdev = &vdev->pdev;
    const uint8_t *config = pdev->config;

    for (unsigned bar = 0; bar < PCI_ROM_SLOT; bar++) {
        if (!write_config(vbasedev, config, PCI_BASE_ADDRESS_0 + 4 * bar, 4,
                          errp)) {
            return false;
        }
    }
    if (!write_config(vbasedev, config, PCI_CACHE_LINE_SIZE, 2, errp) ||
        !write_config(vbasedev, config, PCI_INTERRUPT_LINE, 1, errp) ||
        !write_config(vbasedev, config, PCI_COMMAND, 2, errp)) {
        return false;
    }
    if (pdev->cap_present & QEMU_PCI_CAP_MSI) {
        unsigned pos = pdev->msi_cap;

        if (!write_config(vbasedev, config, pos + PCI_MSI_ADDRESS_LO,
                          vdev->msi_cap_size - PCI_MSI_ADDRESS_LO, errp) ||
            !write_config(vbasedev, config, pos + PCI_MSI_FLAGS, 2, errp)) {
            return false;
        }
    }
    if (pdev->cap_present & QEMU_PCI_CAP_MSIX) {
        if (!write_config(vbasedev, config, pdev->msix_cap + PCI_MSIX_FLAGS,
                          2, errp)) {
            return false;
        }
    }
    return true;
}

static bool send_irq_set(VFIODevice *vbasedev, uint32_t index,
                         uint32_t flags, uint32_t start, uint32_t count,
                         const int *fds, Error **errp)
{
    g_autofree struct vfio_irq_set *set = NULL;
    size_t datalen = fds ? count * sizeof(int32_t) : 0;
    int ret;

    set = g_malloc0(sizeof(*set) + datalen);
    set->argsz = sizeof(*set) + datalen;
    set->flags = flags;
    set->index = index;
    set->start = start;
    set->count = count;
    if (fds) {
        memcpy(set->data, fds, datalen);
    }
    ret = vfio_user_device_send_irq_set(vbasedev, set);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "cannot set up irq %u", index);
        return false;
    }
    return true;
}

static bool restore_irqs(VFIODevice *vbasedev, VFIOUserDevice *udev,
                         Error **errp)
{
    for (uint32_t i = 0; i < udev->num_irqs; i++) {
        VFIOUserIRQState *irq = &udev->irqs[i];
        uint32_t nvec = irq->enabled;

        /* As hw/vfio enabled it, vectors without an eventfd included */
        if (nvec && !send_irq_set(vbasedev, i, VFIO_IRQ_SET_DATA_EVENTFD |
                                  VFIO_IRQ_SET_ACTION_TRIGGER, 0, nvec,
                                  irq->trigger, errp)) {
            return false;
        }
        for (uint32_t v = 0; v < irq->nvec; v++) {
            if (irq->unmask[v] >= 0 &&
                !send_irq_set(vbasedev, i, VFIO_IRQ_SET_DATA_EVENTFD |
                              VFIO_IRQ_SET_ACTION_UNMASK, v, 1,
                              &irq->unmask[v], errp)) {
                return false;
            }
            if (i != VFIO_PCI_INTX_IRQ_INDEX && irq->masked[v] &&
                !send_irq_set(vbasedev, i, VFIO_IRQ_SET_DATA_NONE |
                              VFIO_IRQ_SET_ACTION_MASK, v, 1, NULL, errp)) {
                return false;
            }
        }
        /* The level was dropped at death: nothing left to acknowledge */
        if (i == VFIO_PCI_INTX_IRQ_INDEX && nvec &&
            !send_irq_set(vbasedev, i, VFIO_IRQ_SET_DATA_NONE |
                          VFIO_IRQ_SET_ACTION_UNMASK, 0, 1, NULL, errp)) {
            return false;
        }
    }
    return true;
}

/* Whether [off, off + size) of @info's region can be mmapped */
static bool region_area_mappable(struct vfio_region_info *info, off_t off,
                                 size_t size)
{
    struct vfio_info_cap_header *hdr;
    struct vfio_region_info_cap_sparse_mmap *sparse;

    if (!(info->flags & VFIO_REGION_INFO_FLAG_MMAP)) {
        return false;
    }
    hdr = vfio_get_region_info_cap(info, VFIO_REGION_INFO_CAP_SPARSE_MMAP);
    if (!hdr) {
        return off + size <= info->size;
    }
    sparse = container_of(hdr, struct vfio_region_info_cap_sparse_mmap,
                          header);
    for (uint32_t i = 0; i < sparse->nr_areas; i++) {
        if (off >= sparse->areas[i].offset &&
            off + size <= sparse->areas[i].offset + sparse->areas[i].size) {
            return true;
        }
    }
    return false;
}

typedef enum RemapResult {
    REMAP_DONE,                 /* mapped again from the new server */
    REMAP_NO_FD,                /* the new server gives nothing to map */
    REMAP_FAILED,               /* the request failed: try again later */
} RemapResult;

/* Map @region's mmapped areas again from the new server's fd, in place */
static RemapResult remap_region(VFIODevice *vbasedev, VFIOUserDevice *udev,
                                VFIORegion *region)
{
    g_autofree struct vfio_region_info *info = NULL;
    int prot = 0;
    int fd;

    if (vfio_user_device_query_region(vbasedev, region->nr, &info, &fd) < 0) {
        return REMAP_FAILED;
    }
    prot |= region->flags & VFIO_REGION_INFO_FLAG_READ ? PROT_READ : 0;
    prot |= region->flags & VFIO_REGION_INFO_FLAG_WRITE ? PROT_WRITE : 0;
    for (uint32_t i = 0; fd >= 0 && i < region->nr_mmaps; i++) {
        VFIOMmap *m = &region->mmaps[i];

        if (m->mmap && (!region_area_mappable(info, m->offset, m->size) ||
                        mmap(m->mmap, m->size, prot, MAP_SHARED | MAP_FIXED,
                             fd, info->offset + m->offset) == MAP_FAILED)) {
            close(fd);
            fd = -1;
        }
    }
    if (fd < 0) {
        return REMAP_NO_FD;
    }
    if (udev->regions[region->nr].fd >= 0) {
        close(udev->regions[region->nr].fd);
    }
    udev->regions[region->nr].fd = fd;
    region->fd = fd;
    region->fd_offset = info->offset;
    return REMAP_DONE;
}

/*
 * Map the BARs that were mapped from the old server's memory again.  A
 * failed request fails the restore (the mappings stay disabled, and the
 * next attempt maps them again); a BAR the new server gives no usable fd
 * for is unmapped for good, and goes by message.
 */
static bool restore_mmaps(VFIOPCIDevice *vdev, VFIOUserDevice *udev,
                          Error **errp)
{
    VFIODevice *vbasedev = &vdev->vbasedev;

    for (int i = 0; i < PCI_ROM_SLOT; i++) {
        VFIORegion *region = &vdev->bars[i].region;
        bool mapped = false;

        for (uint32_t j = 0; j < region->nr_mmaps; j++) {
            mapped |= region->mmaps && region->mmaps[j].mmap;
        }
        if (!mapped) {
            continue;
        }
        switch (remap_region(vbasedev, udev, region)) {
        case REMAP_FAILED:
            error_setg(errp, "cannot get region %u info", region->nr);
            return false;
        case REMAP_NO_FD:
            /*
             * What is mapped there is the old server's memory: never let
             * the guest reach it again (hw/vfio re-enables mmaps after
             * INTx), and let it go.
             */
            trace_vfio_user_restore_mmap(vbasedev->name, i, false);
            vfio_region_unmap(region);
            if (udev->regions[region->nr].fd >= 0) {
                close(udev->regions[region->nr].fd);
                udev->regions[region->nr].fd = -1;
            }
            region->fd = -1;
            break;
        case REMAP_DONE:
            trace_vfio_user_restore_mmap(vbasedev->name, i, true);
            break;
        }
    }
    return true;
}

/* Let the guest reach the BARs mapped again (disabled at the death) */
static void enable_mmaps(VFIOPCIDevice *vdev)
{
    for (int i = 0; i < PCI_ROM_SLOT; i++) {
        vfio_region_mmaps_set_enabled(&vdev->bars[i].region, true);
    }
}

bool vfio_user_pci_restore(VFIOPCIDevice *vdev, VFIOUserDevice *udev,
                           VFIOUserProxy *proxy, Error **errp)
{
    ERRP_GUARD();
    VFIODevice *vbasedev = &vdev->vbasedev;
    VFIOUserProxy *old = udev->proxy;

    /* The device operations now talk to the new server. */
    udev->proxy = proxy;
    if (!same_device_info(vbasedev, errp) ||
        !same_regions(vbasedev, udev, errp) ||
        !same_irqs(vbasedev, udev, errp) ||
        !same_config(vbasedev, udev, errp)) {
        error_prepend(errp, "not the same device: ");
        goto fail;
    }
    if (!vfio_user_container_restore(vbasedev, proxy, errp) ||
        !restore_config(vdev, errp) ||
        !restore_irqs(vbasedev, udev, errp) ||
        !restore_mmaps(vdev, udev, errp)) {
        vfio_user_container_set_proxy(vbasedev, old);
        goto fail;
    }
    if (vfio_user_is_dead(proxy)) {
        error_setg(errp, "the server went away during the restore");
        vfio_user_container_set_proxy(vbasedev, old);
        goto fail;
    }
    enable_mmaps(vdev);
    return true;

fail:
    udev->proxy = old;
    return false;
}
