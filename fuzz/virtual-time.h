/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Virtual time for the vfio-user fuzz harness: timeouts that fire as soon
 * as nothing else can happen (fuzz/virtual-time.c says how and why).
 */

#ifndef FUZZ_VIRTUAL_TIME_H
#define FUZZ_VIRTUAL_TIME_H

#include <poll.h>
#include <sys/epoll.h>
#include "qemu/thread.h"
#include "io/channel.h"

/*
 * Whether a thread that is not waiting in virtual time could still act
 * on something already sent (bytes or a hang-up not yet read): the
 * harness knows its sockets.  Called with the clock's lock held.
 */
typedef bool (*VTPendingFunc)(void *opaque);

/* Once, from the thread that drives the client (a participant). */
void vt_init(void);
/* At the start of each conversation, and with NULL at its end. */
void vt_set_pending(VTPendingFunc fn, void *opaque);

/* Monotonic virtual time, in ns. */
int64_t vt_now_ns(void);

/*
 * A participant thread of the harness's own, from a pool (the client's
 * come from there too): join it with vt_thread_join().  Pool threads
 * persist; vt_busy_threads() counts routines running or not joined yet.
 */
void vt_thread_create(QemuThread *thread, const char *name,
                      void *(*fn)(void *), void *arg, int mode);
void *vt_thread_join(QemuThread *thread);
unsigned vt_busy_threads(void);
unsigned vt_pool_threads(void);

/*
 * Waits in virtual time: @timeout_ms < 0 waits for ever.  vt_wait_fd()
 * returns true when @fd is readable (or hung up), false when the timeout
 * passed; vt_cond_timedwait() is qemu_cond_timedwait() and needs its
 * waker to call vt_cond_broadcast() or vt_cond_signal().
 */
bool vt_wait_fd(int fd, int timeout_ms);
void vt_sleep_ms(int ms);
bool vt_cond_timedwait(QemuCond *cond, QemuMutex *mutex, int timeout_ms);
void vt_cond_broadcast(QemuCond *cond);
void vt_cond_signal(QemuCond *cond);

/* A participant blocks in a call that only another participant ends. */
void vt_block_begin(void);
void vt_block_end(void);

/*
 * What the client objects call instead of the real thing: scripts/fuzz.sh
 * renames their references to these (its vt_syms list).
 */
gint64 fuzz_g_get_monotonic_time(void);
int fuzz_clock_gettime(clockid_t clk, struct timespec *ts);
int fuzz_poll(struct pollfd *fds, nfds_t nfds, int timeout);
int fuzz_epoll_wait(int epfd, struct epoll_event *ev, int max, int timeout);
ssize_t fuzz_qio_channel_readv_full(QIOChannel *ioc, const struct iovec *iov,
                                    size_t niov, int **fds, size_t *nfds,
                                    int flags, Error **errp);
extern QemuCondWaitFunc fuzz_qemu_cond_wait_func;
extern QemuCondTimedWaitFunc fuzz_qemu_cond_timedwait_func;
void fuzz_qemu_cond_broadcast(QemuCond *cond);
void fuzz_qemu_cond_signal(QemuCond *cond);
void fuzz_qemu_thread_create(QemuThread *thread, const char *name,
                             void *(*fn)(void *), void *arg, int mode);
void *fuzz_qemu_thread_join(QemuThread *thread);

#endif /* FUZZ_VIRTUAL_TIME_H */
