/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Virtual time for the vfio-user fuzz harness.
 *
 * Why: most of what a fuzz input costs in real time is waiting for
 * timeouts.  A hostile server that says nothing, a reply with the wrong
 * id, a message cut in the middle: the client gives up only after its
 * timeout, and the harness's server waits too (for a request that will
 * not come, or on purpose, to send a reply late).  Measured on the
 * harness with real time: 9 of the 14 ms an input took were such waits,
 * i.e. 70 executions per second.  Shorter timeouts would make the
 * outcome depend on the scheduler (a reply late on a loaded machine is a
 * different conversation), so the fuzzer would chase noise.
 *
 * How: the client code under test (hw/vfio-user/{proxy,device,dma}.c) is
 * linked with its clock and its blocking calls renamed to the fuzz_*
 * functions below (scripts/fuzz.sh, objcopy --redefine-sym).  Time is
 * real time plus an offset.  Every thread that takes part in a
 * conversation (the client's threads and the harness's server threads:
 * the "participants") is counted as running unless it waits in one of
 * those calls.  When none runs and no byte or hang-up is left unread on
 * the sockets (the harness says, vt_set_pending()), nothing can happen
 * any more but a timeout: the offset jumps to the earliest deadline and
 * that waiter wakes up as if its time had passed.  A timeout thus costs
 * microseconds, and which timeout fires first no longer depends on the
 * scheduler: the deadlines are compared, not raced.
 *
 * What is not renamed keeps real time: a new blocking call in the client
 * makes the harness slower (its thread counts as running while it
 * blocks, so time does not jump), never wrong.
 */

#include "qemu/osdep.h"
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include "qemu/atomic.h"
#include "qemu/queue.h"
#include "io/channel-socket.h"
#include "virtual-time.h"

/*
 * A cond waiter can miss the wake-up of a timeout (see vt_wake()): it
 * checks for it at least this often.
 */
#define VT_COND_SLICE_MS        2

typedef struct VTWaiter {
    int64_t deadline;           /* virtual ns; INT64_MAX: none */
    QemuCond *cond;             /* what it waits on, or NULL */
    int wake_fd;                /* its eventfd, or -1 */
    bool woken;                 /* counted as running again */
    QTAILQ_ENTRY(VTWaiter) next;
} VTWaiter;

static QemuMutex vt_lock;
static QTAILQ_HEAD(, VTWaiter) vt_waiters =
    QTAILQ_HEAD_INITIALIZER(vt_waiters);
static unsigned vt_running;     /* participants not waiting, under vt_lock */
static int64_t vt_offset;       /* virtual minus real, ns */
static VTPendingFunc vt_pending;
static void *vt_pending_opaque;
static __thread int vt_wake_fd = -1;

/*
 * How a socket's reads wait, as read at its first read in this
 * conversation (vt_set_pending() starts a new one): -2 does not block,
 * -1 for ever, else SO_RCVTIMEO in ms.  The client sets them once, at
 * connect; asking the kernel at every read cost two system calls of the
 * dozen a round trip makes.
 */
static int vt_sock_fd = -1;
static int vt_sock_wait;

static int64_t real_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * NANOSECONDS_PER_SECOND + ts.tv_nsec;
}

int64_t vt_now_ns(void)
{
    return real_ns() + qatomic_read(&vt_offset);
}

static int vt_ms_left(int64_t deadline)
{
    int64_t left = deadline - vt_now_ns();

    return left <= 0 ? 0 : MIN(DIV_ROUND_UP(left, SCALE_MS), INT_MAX);
}

static void vt_wake(VTWaiter *w)
{
    uint64_t one = 1;

    w->woken = true;
    vt_running++;
    if (w->wake_fd >= 0) {
        ssize_t n = write(w->wake_fd, &one, sizeof(one));

        assert(n == sizeof(one));
    }
    if (w->cond) {
        /*
         * Without the waiter's mutex: if the waiter is between its check
         * and its wait, it misses this and sees it one slice later.
         */
        qemu_cond_broadcast(w->cond);
    }
}

/* Nobody can act: fire the earliest timeout. */
static void vt_settle_locked(void)
{
    VTWaiter *w, *first = NULL;
    int64_t now;

    if (vt_running || (vt_pending && vt_pending(vt_pending_opaque))) {
        return;
    }
    QTAILQ_FOREACH(w, &vt_waiters, next) {
        if (!w->woken && w->deadline != INT64_MAX &&
            (!first || w->deadline < first->deadline)) {
            first = w;
        }
    }
    if (!first) {
        return;
    }
    now = vt_now_ns();
    if (first->deadline > now) {
        qatomic_set(&vt_offset, vt_offset + first->deadline - now);
    }
    vt_wake(first);
}

static void vt_begin(VTWaiter *w)
{
    qemu_mutex_lock(&vt_lock);
    assert(vt_running > 0);
    vt_running--;
    QTAILQ_INSERT_TAIL(&vt_waiters, w, next);
    vt_settle_locked();
    qemu_mutex_unlock(&vt_lock);
}

static void vt_end(VTWaiter *w)
{
    qemu_mutex_lock(&vt_lock);
    if (!w->woken) {
        vt_running++;
    }
    QTAILQ_REMOVE(&vt_waiters, w, next);
    qemu_mutex_unlock(&vt_lock);
}

static int64_t vt_deadline(int timeout_ms)
{
    return timeout_ms < 0 ? INT64_MAX :
           vt_now_ns() + (int64_t)timeout_ms * SCALE_MS;
}

void vt_block_begin(void)
{
    qemu_mutex_lock(&vt_lock);
    vt_running--;
    vt_settle_locked();
    qemu_mutex_unlock(&vt_lock);
}

void vt_block_end(void)
{
    qemu_mutex_lock(&vt_lock);
    vt_running++;
    qemu_mutex_unlock(&vt_lock);
}

/* Wait for @fd to be readable; its revents, 0 when the timeout passed. */
static short vt_wait_fd_events(int fd, int timeout_ms)
{
    VTWaiter w = { .deadline = vt_deadline(timeout_ms) };
    short revents;

    if (vt_wake_fd < 0) {
        vt_wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        assert(vt_wake_fd >= 0);
    }
    w.wake_fd = vt_wake_fd;
    vt_begin(&w);
    for (;;) {
        struct pollfd p[2] = {
            { .fd = fd, .events = POLLIN },
            { .fd = vt_wake_fd, .events = POLLIN },
        };
        uint64_t v;

        /*
         * Once the deadline passed this only looks: data there wins over
         * the timeout, as in recvmsg().
         */
        poll(p, 2, w.deadline == INT64_MAX ? -1 : vt_ms_left(w.deadline));
        revents = p[0].revents;
        if (revents) {
            break;
        }
        if (p[1].revents && read(vt_wake_fd, &v, sizeof(v)) < 0) {
            /* drained by an earlier wait: nothing to do */
        }
        if (w.deadline != INT64_MAX && vt_now_ns() >= w.deadline) {
            break;
        }
    }
    vt_end(&w);
    return revents;
}

bool vt_wait_fd(int fd, int timeout_ms)
{
    return vt_wait_fd_events(fd, timeout_ms) != 0;
}

void vt_sleep_ms(int ms)
{
    vt_wait_fd(-1, ms);
}

bool vt_cond_timedwait(QemuCond *cond, QemuMutex *mutex, int timeout_ms)
{
    VTWaiter w = {
        .deadline = vt_deadline(timeout_ms), .cond = cond, .wake_fd = -1,
    };
    bool signalled;

    vt_begin(&w);
    for (;;) {
        if (vt_now_ns() >= w.deadline) {
            signalled = false;
            break;
        }
        if (qatomic_read(&w.woken)) {
            signalled = true;
            break;
        }
        qemu_cond_timedwait_impl(cond, mutex,
                                 MIN(vt_ms_left(w.deadline),
                                     VT_COND_SLICE_MS),
                                 __FILE__, __LINE__);
    }
    vt_end(&w);
    return signalled;
}

static void vt_cond_wait(QemuCond *cond, QemuMutex *mutex)
{
    VTWaiter w = { .deadline = INT64_MAX, .cond = cond, .wake_fd = -1 };

    vt_begin(&w);
    qemu_cond_wait_impl(cond, mutex, __FILE__, __LINE__);
    vt_end(&w);
}

/*
 * Count the waiters on @cond that a wake-up reaches as running from now
 * on, not when they wake: the first one (@all false) or every one.
 */
static void vt_mark_woken(QemuCond *cond, bool all)
{
    VTWaiter *w;

    qemu_mutex_lock(&vt_lock);
    QTAILQ_FOREACH(w, &vt_waiters, next) {
        if (w->cond == cond && !w->woken) {
            w->woken = true;
            vt_running++;
            if (!all) {
                break;
            }
        }
    }
    qemu_mutex_unlock(&vt_lock);
}

/*
 * Which waiter a signal wakes is the kernel's choice: count the first
 * one as running.  If the kernel woke another, the one counted returns
 * at its next slice as if woken spuriously, which waiters must expect.
 */
void vt_cond_signal(QemuCond *cond)
{
    vt_mark_woken(cond, false);
    qemu_cond_signal(cond);
}

void vt_cond_broadcast(QemuCond *cond)
{
    vt_mark_woken(cond, true);
    qemu_cond_broadcast(cond);
}

/*
 * Threads come from a pool: under ASan, creating and ending a thread
 * costs more than a whole conversation (its stack and allocator caches
 * are mapped, faulted in and unmapped, with a TLB shootdown each time),
 * and an input used to start three.  A pool thread runs one start
 * routine at a time; qemu_thread_join() waits for that routine, so "no
 * thread outlives the connection" becomes "no routine is still running
 * or unjoined" (vt_busy_threads()).
 */
#define VT_MAX_WORKERS  16

typedef struct VTWorker {
    QemuThread thread;
    QemuMutex lock;
    QemuCond cond;
    void *(*fn)(void *);        /* the routine to run, NULL when idle */
    void *arg;
    void *ret;
    bool busy;                  /* given a routine, not joined yet */
    bool done;                  /* the routine returned */
    bool detached;
} VTWorker;

static QemuMutex vt_pool_lock;
static VTWorker vt_workers[VT_MAX_WORKERS];
static unsigned vt_nworkers;

static void *vt_worker(void *opaque)
{
    VTWorker *w = opaque;

    qemu_mutex_lock(&w->lock);
    for (;;) {
        void *(*fn)(void *);
        void *ret;

        while (!w->fn) {
            qemu_cond_wait(&w->cond, &w->lock);
        }
        fn = w->fn;
        qemu_mutex_unlock(&w->lock);

        ret = fn(w->arg);
        /* Each routine has its own, so that an input's fds are its own. */
        if (vt_wake_fd >= 0) {
            close(vt_wake_fd);
            vt_wake_fd = -1;
        }
        vt_block_begin();       /* not a participant any more */

        qemu_mutex_lock(&w->lock);
        w->ret = ret;
        w->fn = NULL;
        w->done = true;
        if (w->detached) {
            w->busy = false;
        }
        qemu_cond_broadcast(&w->cond);
    }
    return NULL;
}

static VTWorker *vt_get_worker(void)
{
    VTWorker *w = NULL;

    qemu_mutex_lock(&vt_pool_lock);
    for (unsigned i = 0; i < vt_nworkers && !w; i++) {
        qemu_mutex_lock(&vt_workers[i].lock);
        if (!vt_workers[i].busy) {
            w = &vt_workers[i];
            w->busy = true;
        }
        qemu_mutex_unlock(&vt_workers[i].lock);
    }
    if (!w) {
        assert(vt_nworkers < VT_MAX_WORKERS);
        w = &vt_workers[vt_nworkers++];
        qemu_mutex_init(&w->lock);
        qemu_cond_init(&w->cond);
        w->busy = true;
        qemu_thread_create(&w->thread, "fuzz-worker", vt_worker, w,
                           QEMU_THREAD_DETACHED);
    }
    qemu_mutex_unlock(&vt_pool_lock);
    return w;
}

void vt_thread_create(QemuThread *thread, const char *name,
                      void *(*fn)(void *), void *arg, int mode)
{
    VTWorker *w = vt_get_worker();

    /* Running from now on: it may act before it is scheduled. */
    qemu_mutex_lock(&vt_lock);
    vt_running++;
    qemu_mutex_unlock(&vt_lock);

    qemu_mutex_lock(&w->lock);
    w->arg = arg;
    w->done = false;
    w->detached = mode == QEMU_THREAD_DETACHED;
    w->fn = fn;
    qemu_cond_broadcast(&w->cond);
    qemu_mutex_unlock(&w->lock);
    /* What qemu_thread_join() gets back to find the routine. */
    memset(thread, 0, sizeof(*thread));
    memcpy(thread, &w, sizeof(w));
}

void *vt_thread_join(QemuThread *thread)
{
    VTWorker *w;
    void *ret;

    memcpy(&w, thread, sizeof(w));
    assert(w >= vt_workers && w < vt_workers + vt_nworkers && w->busy);
    qemu_mutex_lock(&w->lock);
    if (!w->done) {
        vt_block_begin();
        while (!w->done) {
            qemu_cond_wait(&w->cond, &w->lock);
        }
        vt_block_end();
    }
    ret = w->ret;
    w->busy = false;
    qemu_mutex_unlock(&w->lock);
    return ret;
}

unsigned vt_busy_threads(void)
{
    unsigned n = 0;

    qemu_mutex_lock(&vt_pool_lock);
    for (unsigned i = 0; i < vt_nworkers; i++) {
        qemu_mutex_lock(&vt_workers[i].lock);
        n += vt_workers[i].busy;
        qemu_mutex_unlock(&vt_workers[i].lock);
    }
    qemu_mutex_unlock(&vt_pool_lock);
    return n;
}

unsigned vt_pool_threads(void)
{
    return qatomic_read(&vt_nworkers);
}

void vt_init(void)
{
    qemu_mutex_init(&vt_lock);
    qemu_mutex_init(&vt_pool_lock);
    vt_running = 1;             /* the caller */
    /* Opened now, so that the harness's fd checks count it as its own. */
    vt_wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    assert(vt_wake_fd >= 0);
}

void vt_set_pending(VTPendingFunc fn, void *opaque)
{
    qatomic_set(&vt_sock_fd, -1);
    qemu_mutex_lock(&vt_lock);
    vt_pending = fn;
    vt_pending_opaque = opaque;
    qemu_mutex_unlock(&vt_lock);
}

/* What the client objects call instead of the real thing. */
gint64 fuzz_g_get_monotonic_time(void)
{
    return vt_now_ns() / 1000;
}

int fuzz_clock_gettime(clockid_t clk, struct timespec *ts)
{
    int64_t now;

    if (clk != CLOCK_MONOTONIC) {
        return clock_gettime(clk, ts);
    }
    now = vt_now_ns();
    ts->tv_sec = now / NANOSECONDS_PER_SECOND;
    ts->tv_nsec = now % NANOSECONDS_PER_SECOND;
    return 0;
}

int fuzz_poll(struct pollfd *fds, nfds_t nfds, int timeout)
{
    if (timeout == 0 || nfds != 1 || fds[0].events != POLLIN) {
        return poll(fds, nfds, timeout);
    }
    fds[0].revents = vt_wait_fd_events(fds[0].fd, timeout);
    return fds[0].revents != 0;
}

int fuzz_epoll_wait(int epfd, struct epoll_event *ev, int max, int timeout)
{
    int n;

    if (timeout == 0) {
        return epoll_wait(epfd, ev, max, 0);
    }
    if (timeout > 0) {
        return vt_wait_fd(epfd, timeout) ? epoll_wait(epfd, ev, max, 0) : 0;
    }
    /* What wakes it is data or a hang-up on a socket: vt_pending sees it. */
    vt_block_begin();
    n = epoll_wait(epfd, ev, max, -1);
    vt_block_end();
    return n;
}


static int vt_read_wait(int fd)
{
    struct timeval tv;
    socklen_t len = sizeof(tv);

    int wait;

    if (fd == qatomic_read(&vt_sock_fd)) {
        return qatomic_read(&vt_sock_wait);
    }
    if ((fcntl(fd, F_GETFL) & O_NONBLOCK) ||
        getsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, &len) < 0) {
        wait = -2;
    } else {
        wait = tv.tv_sec || tv.tv_usec ?
               tv.tv_sec * 1000 + DIV_ROUND_UP(tv.tv_usec, 1000) : -1;
    }
    qatomic_set(&vt_sock_wait, wait);
    qatomic_set(&vt_sock_fd, fd);
    return wait;
}

/* A blocking read with SO_RCVTIMEO gives up after it: in virtual time. */
ssize_t fuzz_qio_channel_readv_full(QIOChannel *ioc, const struct iovec *iov,
                                    size_t niov, int **fds, size_t *nfds,
                                    int flags, Error **errp)
{
    QIOChannelSocket *sioc = (QIOChannelSocket *)
        object_dynamic_cast(OBJECT(ioc), TYPE_QIO_CHANNEL_SOCKET);
    int wait = sioc ? vt_read_wait(sioc->fd) : -2;

    if (wait != -2 && !vt_wait_fd(sioc->fd, wait)) {
        errno = EAGAIN;
        return QIO_CHANNEL_ERR_BLOCK;
    }
    return qio_channel_readv_full(ioc, iov, niov, fds, nfds, flags, errp);
}

static void fuzz_cond_wait(QemuCond *cond, QemuMutex *mutex,
                           const char *file, int line)
{
    vt_cond_wait(cond, mutex);
}

static bool fuzz_cond_timedwait(QemuCond *cond, QemuMutex *mutex, int ms,
                                const char *file, int line)
{
    return vt_cond_timedwait(cond, mutex, ms);
}

/* Read by the qemu_cond_wait()/qemu_cond_timedwait() macros. */
QemuCondWaitFunc fuzz_qemu_cond_wait_func = fuzz_cond_wait;
QemuCondTimedWaitFunc fuzz_qemu_cond_timedwait_func = fuzz_cond_timedwait;

void fuzz_qemu_cond_broadcast(QemuCond *cond)
{
    vt_cond_broadcast(cond);
}

void fuzz_qemu_cond_signal(QemuCond *cond)
{
    vt_cond_signal(cond);
}

void fuzz_qemu_thread_create(QemuThread *thread, const char *name,
                             void *(*fn)(void *), void *arg, int mode)
{
    vt_thread_create(thread, name, fn, arg, mode);
}

void *fuzz_qemu_thread_join(QemuThread *thread)
{
    return vt_thread_join(thread);
}
