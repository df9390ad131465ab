/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vfio-user client: finding the server again after the connection died.
 */

#ifndef HW_VFIO_USER_RECONNECT_H
#define HW_VFIO_USER_RECONNECT_H

#include "hw/vfio-user/proxy.h"

typedef struct VFIOUserReconnect VFIOUserReconnect;

/*
 * Called in the main loop with a new, negotiated connection to put the
 * device back on.  True: the device now owns @proxy.  False,
 * with @errp set: @proxy is dropped and another attempt follows.
 */
typedef bool (*VFIOUserRestoreFunc)(void *opaque, VFIOUserProxy *proxy,
                                    Error **errp);

/*
 * Reconnect to @addr (a UNIX socket path) every @interval_ms, backing off
 * while attempts fail, once vfio_user_reconnect_start() is called.
 * @name, @timeout_ms and @poll_max_ns are as for vfio_user_connect();
 * @owner is the device, whose
 * reentrancy guard the connections get.  @addr NULL: only
 * vfio_user_reconnect_with() reconnects.
 */
VFIOUserReconnect *vfio_user_reconnect_new(const SocketAddress *addr,
                                           const char *name,
                                           uint32_t interval_ms,
                                           uint32_t timeout_ms,
                                           uint32_t poll_max_ns,
                                           DeviceState *owner,
                                           VFIOUserRestoreFunc restore,
                                           void *opaque);

/* The connection died: start trying (main loop). */
void vfio_user_reconnect_start(VFIOUserReconnect *rc);

/*
 * Put the device back on @sioc, a socket the management layer connected
 * (QMP), now, whether or not attempts are running: true if it worked.
 */
bool vfio_user_reconnect_with(VFIOUserReconnect *rc, QIOChannelSocket *sioc,
                              Error **errp);

/* Stop trying and free @rc, even with a connect in flight (main loop). */
void vfio_user_reconnect_free(VFIOUserReconnect *rc);

#endif /* HW_VFIO_USER_RECONNECT_H */
