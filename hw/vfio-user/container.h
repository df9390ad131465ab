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
void vfio_user_container_dma_stats(VFIODevice *vbasedev,
                                   VFIOUserDMAStats *stats);

#endif /* HW_VFIO_USER_CONTAINER_H */
