/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vfio-user client: put a vfio-user-pci device back on a new connection.
 */

#ifndef HW_VFIO_USER_RESTORE_H
#define HW_VFIO_USER_RESTORE_H

#include "hw/vfio/pci.h"
#include "hw/vfio-user/device.h"

/*
 * Check that the server on @proxy, a new negotiated connection, serves
 * the device @vdev had, and tell it everything the old server had been
 * told.  True: @udev works over @proxy (the caller disposes of the old
 * one).  False: @udev is back on its old proxy, and the error says what
 * failed or what differs.  Main loop, with the BQL held.
 */
bool vfio_user_pci_restore(VFIOPCIDevice *vdev, VFIOUserDevice *udev,
                           VFIOUserProxy *proxy, Error **errp);

#endif /* HW_VFIO_USER_RESTORE_H */
