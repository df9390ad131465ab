/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vfio-user client: the IOMMU backend that turns hw/vfio's DMA mappings
 * into VFIO_USER_DMA_MAP/UNMAP messages.
 */

#ifndef HW_VFIO_USER_CONTAINER_H
#define HW_VFIO_USER_CONTAINER_H

#include "hw/vfio/vfio-common.h"
#include "hw/vfio-user/dma.h"

#define TYPE_VFIO_IOMMU_USER TYPE_VFIO_IOMMU "-user"

void vfio_user_container_detach(VFIODevice *vbasedev);
/*
 * Serve the server's DMA requests on @proxy from now on, and kill @proxy
 * when a transfer stalls.
 */
void vfio_user_container_set_proxy(VFIODevice *vbasedev,
                                   VFIOUserProxy *proxy);
/*
 * The same, then tell @proxy's server, which knows none of them, every
 * mapping the device has (with memory fds as the first time, or none
 * under secure-dma).  On failure the caller gives the device its old
 * proxy back with vfio_user_container_set_proxy().
 */
bool vfio_user_container_restore(VFIODevice *vbasedev, VFIOUserProxy *proxy,
                                 Error **errp);
void vfio_user_container_dma_stats(VFIODevice *vbasedev,
                                   VFIOUserDMAStats *stats);

#endif /* HW_VFIO_USER_CONTAINER_H */
