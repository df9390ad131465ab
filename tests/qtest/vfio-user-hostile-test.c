/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qtests for vfio-user-pci against a hostile server: malformed, oversized,
 * out-of-order, late and missing messages, bad fds, absurd device
 * descriptions, DMA requests outside what the client mapped, floods,
 * stalls and disconnects, at every phase of the device's life.
 *
 * The server is the test server of vfio-user-server.c; its hook lets a
 * test replace the reply to any request with arbitrary bytes, and
 * vu_test_server_send_raw() lets it send anything at any time.
 * vfio-user-hostile.c makes the hook misbehave on demand; the cases are
 * in one file per path prefix, vfio-user-hostile-<prefix>.c.
 *
 * Every case checks that QEMU lives on (QMP answers) and that the outcome
 * is a clear one: at realize, device_add fails with an error naming the
 * device and its socket, and a well-behaved retry then works; at run
 * time, either the device degrades (BAR reads return all ones, writes are
 * dropped) or, where the misbehaviour is recoverable, it keeps working;
 * and guard patterns in guest RAM show that the server reached nothing it
 * was not given.
 */

#include "qemu/osdep.h"
#include "vfio-user-hostile.h"

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    hostile_add_version_tests();
    hostile_add_realize_tests();
    hostile_add_runtime_tests();
    hostile_add_unplug_tests();
    hostile_add_dma_tests();
    hostile_add_deadline_tests();
    return g_test_run();
}
