/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vfio-user client: the device operations of hw/vfio, over the socket.
 */

#ifndef HW_VFIO_USER_DEVICE_H
#define HW_VFIO_USER_DEVICE_H

#include "hw/vfio/vfio-common.h"
#include "hw/vfio-user/proxy.h"
#include "hw/vfio-user/pci-vet.h"

/* Bounds on what a server may declare (vfio-pci has 9 regions, 5 irqs). */
#define VFIO_USER_MAX_REGIONS       64
#define VFIO_USER_MAX_IRQS          16
#define VFIO_USER_MAX_IRQ_COUNT     2048    /* MSI-X table entries */
#define VFIO_USER_MAX_REGION_INFO   (64 * KiB)

/* What the device operations need beside the VFIODevice. */
typedef struct VFIOUserDevice {
    VFIOUserProxy *proxy;
    int *region_fds;            /* mmap fd per region index, or -1 */
    /* size first reported per region index, or UINT64_MAX: fixed after */
    uint64_t *region_sizes;
    uint32_t num_region_fds;
    bool secure_dma;            /* never send a memory fd */
    bool warned_unsealed_fd;    /* said once why a region is not mapped */
    bool said_bad_reply;        /* logged the first refused answer */
    /* Once set, config space reads see its pinned bits (pci-vet.h) */
    VFIOUserPCIVet *config_vet;
} VFIOUserDevice;

extern const VFIODeviceIOOps vfio_user_device_io_ops;

/*
 * Install vfio_user_device_io_ops on @vbasedev, working on @udev: the
 * operations find their state through vbasedev->io_opaque, never
 * through the device type that embeds the VFIODevice.
 */
void vfio_user_device_attach_io(VFIODevice *vbasedev, VFIOUserDevice *udev);

/* The state of a VFIODevice that vfio_user_device_attach_io() set up */
static inline VFIOUserDevice *vfio_user_device_of(VFIODevice *vbasedev)
{
    assert(vbasedev->io_ops == &vfio_user_device_io_ops);
    return vbasedev->io_opaque;
}

void vfio_user_device_init_fds(VFIOUserDevice *udev, uint32_t num_regions);
void vfio_user_device_close_fds(VFIOUserDevice *udev);

#endif /* HW_VFIO_USER_DEVICE_H */
