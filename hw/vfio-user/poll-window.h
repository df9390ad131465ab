/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vfio-user client: waiting for a reply, busy-polling first.
 */

#ifndef HW_VFIO_USER_POLL_WINDOW_H
#define HW_VFIO_USER_POLL_WINDOW_H

/*
 * How long a thread that waits for a reply polls the socket before it
 * sleeps.  The window adapts to how soon replies come (poll-window.c);
 * it belongs to whoever holds the connection's read token.
 */
typedef struct VFIOUserPollWindow {
    uint32_t max_ns;    /* x-poll-max-ns: 0 never busy-polls */
    uint32_t ns;        /* the current window, 0 to max_ns */
} VFIOUserPollWindow;

void vfio_user_poll_window_init(VFIOUserPollWindow *win, uint32_t max_ns);

/*
 * Wait up to @timeout_ms (0: do not wait) for @fd to be readable:
 * busy-poll for the window, then sleep in poll() for the rest, and adapt
 * the window to when the data came.  True when data came, or an error or
 * a hang-up (the read that follows finds those).  @name is for traces.
 */
bool vfio_user_poll_window_wait(VFIOUserPollWindow *win, int fd,
                                int timeout_ms, const char *name);

#endif /* HW_VFIO_USER_POLL_WINDOW_H */
