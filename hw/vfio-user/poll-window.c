/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vfio-user client: the busy-poll window of a thread waiting for a reply.
 *
 * A BAR read by message is a vCPU waiting for the server's reply.  When
 * the waiter sleeps in poll(), being woken up costs it more than the
 * rest of the round trip: on a busy host, or in a VM, the wake-up is
 * most of what a BAR read costs beyond the server's own work.  A waiter
 * that is still running when the reply comes does not pay it.  So the
 * waiter polls the socket for a while before it sleeps.
 *
 * How long is the window: it opens (from VFIO_USER_POLL_START_NS,
 * doubling up to x-poll-max-ns) while replies come within x-poll-max-ns
 * of the start of the wait, and closes as soon as one comes later (a
 * slow server, or one with nothing to say), where polling would only
 * burn the CPU.  make bench measures what it is worth: the "BAR read by
 * message" rows with the default window and with x-poll-max-ns=0.
 */

#include "qemu/osdep.h"
#include <poll.h>
#include "qemu/timer.h"
#include "hw/vfio-user/poll-window.h"
#include "trace.h"

/* Where a window starts growing from */
#define VFIO_USER_POLL_START_NS 4000

void vfio_user_poll_window_init(VFIOUserPollWindow *win, uint32_t max_ns)
{
    win->max_ns = max_ns;
    win->ns = 0;
}

/* Wait up to @timeout_ms for data; true when there is. */
static bool poll_sleep(int fd, int timeout_ms)
{
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    int n;

    do {
        n = poll(&pfd, 1, timeout_ms);
    } while (n < 0 && errno == EINTR);
    /* An error or a hang-up is found by the read that follows. */
    return n != 0;
}

/* Busy-wait for data, from @start for the current window. */
static bool poll_busy(VFIOUserPollWindow *win, int fd, int64_t start)
{
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    int64_t end = start + win->ns;

    do {
        if (poll(&pfd, 1, 0) != 0) {
            return true;
        }
    } while (get_clock() < end);
    return false;
}

/* Data came @waited ns after the wait began: widen or close the window. */
static void poll_adapt(VFIOUserPollWindow *win, int64_t waited,
                       const char *name)
{
    uint32_t old = win->ns;

    if (waited > win->max_ns) {
        win->ns = 0;
    } else {
        win->ns = MIN(MAX((uint64_t)old * 2, VFIO_USER_POLL_START_NS),
                      win->max_ns);
    }
    if (win->ns != old) {
        trace_vfio_user_poll_window(name, waited, win->ns);
    }
}

bool vfio_user_poll_window_wait(VFIOUserPollWindow *win, int fd,
                                int timeout_ms, const char *name)
{
    int64_t start, polled_ms;
    bool ready;

    if (timeout_ms <= 0 || !win->max_ns) {
        return poll_sleep(fd, timeout_ms);
    }
    start = get_clock();
    if (poll_busy(win, fd, start)) {
        return true;
    }
    polled_ms = (get_clock() - start) / SCALE_MS;
    ready = poll_sleep(fd, MAX(timeout_ms - polled_ms, 0));
    poll_adapt(win, get_clock() - start, name);
    return ready;
}
