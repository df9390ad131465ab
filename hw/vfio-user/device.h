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

/* What the device learnt of a region, kept for the device's lifetime */
typedef struct VFIOUserRegionState {
    int fd;                     /* to mmap the region from, or -1 */
    uint64_t size;              /* size first reported, or UINT64_MAX */
    uint32_t rw_flags;          /* its VFIO_REGION_INFO_FLAG_READ/WRITE */
} VFIOUserRegionState;

/*
 * An interrupt index: what the server first said of it, and how hw/vfio
 * set it up since, so that a new connection can be told (restore.c)
 */
typedef struct VFIOUserIRQState {
    bool known;                 /* count and flags are the server's */
    uint32_t count;
    uint32_t flags;
    uint32_t enabled;           /* vectors of the enabled index, or 0 */
    uint32_t nvec;              /* entries in the arrays below */
    int *trigger;               /* our dup of each vector's eventfd, or -1 */
    int *unmask;                /* our dup of its unmask eventfd, or -1 */
    bool *masked;               /* masked with ACTION_MASK */
} VFIOUserIRQState;

/* What the device operations need beside the VFIODevice. */
typedef struct VFIOUserDevice {
    VFIOUserProxy *proxy;
    VFIOUserRegionState *regions;
    uint32_t num_regions;
    VFIOUserIRQState *irqs;
    uint32_t num_irqs;
    bool realized;              /* from then on, a death fails nothing */
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

/*
 * The server's answer to a request of @vbasedev breaks the protocol or
 * our bounds: say why (in the log the first time only, in a trace event
 * always) and return -EPROTO, for the operation to fail with.
 */
int G_GNUC_PRINTF(2, 0) vfio_user_device_bad_replyv(VFIODevice *vbasedev,
                                                    const char *fmt,
                                                    va_list ap);

/* Once the device info is known: room for what regions and irqs say */
void vfio_user_device_init_state(VFIOUserDevice *udev, uint32_t num_regions,
                                 uint32_t num_irqs);
void vfio_user_device_free_state(VFIOUserDevice *udev);

/*
 * Ask the server for region @index's info (allocated, caller frees) and
 * an fd to mmap it from (-1: none usable, and no MMAP flag), without
 * recording anything: for a new connection that must prove it serves
 * the same device before the device uses it (restore.c).
 */
int vfio_user_device_query_region(VFIODevice *vbasedev, uint32_t index,
                                  struct vfio_region_info **info, int *fd);

/*
 * Read a region as the op does, but config space as the server has it,
 * not with the bits vetting pinned (restore.c compares them).
 */
int vfio_user_device_read_unvetted(VFIODevice *vbasedev, uint8_t index,
                                   off_t off, uint32_t size, void *data);

/* Set an irq up as the op does, on the current proxy, recording nothing */
int vfio_user_device_send_irq_set(VFIODevice *vbasedev,
                                  const struct vfio_irq_set *set);

#endif /* HW_VFIO_USER_DEVICE_H */
