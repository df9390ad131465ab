/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vfio-user client: the device operations of hw/vfio's migration, over
 * VFIO_USER_DEVICE_FEATURE and VFIO_USER_MIG_DATA_READ/WRITE.
 */

#ifndef HW_VFIO_USER_MIGRATION_H
#define HW_VFIO_USER_MIGRATION_H

#include "hw/vfio/vfio-common.h"

/* The device_feature, mig_data_read and mig_data_write operations */
int vfio_user_device_feature(VFIODevice *vbasedev,
                             struct vfio_device_feature *feature);
ssize_t vfio_user_mig_data_read(VFIODevice *vbasedev, void *buf,
                                size_t size);
int vfio_user_mig_data_write(VFIODevice *vbasedev, const void *buf,
                             size_t size);

/*
 * The server's VFIO_MIGRATION_* flags, or -errno when it cannot migrate
 * the device (an older server does not know DEVICE_FEATURE at all)
 */
int vfio_user_migration_flags(VFIODevice *vbasedev, uint64_t *flags);

#endif /* HW_VFIO_USER_MIGRATION_H */
