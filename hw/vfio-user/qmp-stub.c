/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vfio-user-reconnect for a QEMU built without vfio-user-pci.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-commands-vfio.h"

void qmp_vfio_user_reconnect(const char *id, const char *fdname,
                             Error **errp)
{
    error_setg(errp, "this QEMU has no vfio-user-pci device");
}
