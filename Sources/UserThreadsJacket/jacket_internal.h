// jacket_internal.h — what the jacket's files share: the real calls, the "on a user thread?"
// test, and the slow path that parks. The design essay is in jacket_core.c.
#ifndef UTHREADS_JACKET_INTERNAL_H
#define UTHREADS_JACKET_INTERNAL_H

#define _GNU_SOURCE
#include "uthreads_jacket.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>

/// The C library's definitions, found once with dlsym(RTLD_NEXT, …).
typedef struct jacket_real_calls {
    ssize_t (*read)(int, void *, size_t);
    ssize_t (*write)(int, const void *, size_t);
    ssize_t (*readv)(int, const struct iovec *, int);
    ssize_t (*writev)(int, const struct iovec *, int);
    ssize_t (*preadv2)(int, const struct iovec *, int, off_t, int);
    ssize_t (*pwritev2)(int, const struct iovec *, int, off_t, int);
    ssize_t (*recv)(int, void *, size_t, int);
    ssize_t (*recvfrom)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
    ssize_t (*recvmsg)(int, struct msghdr *, int);
    ssize_t (*send)(int, const void *, size_t, int);
    ssize_t (*sendto)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
    ssize_t (*sendmsg)(int, const struct msghdr *, int);
    int (*accept)(int, struct sockaddr *, socklen_t *);
    int (*accept4)(int, struct sockaddr *, socklen_t *, int);
    int (*connect)(int, const struct sockaddr *, socklen_t);
    int (*close)(int);
    int (*poll)(struct pollfd *, nfds_t, int);
    int (*ppoll)(struct pollfd *, nfds_t, const struct timespec *, const sigset_t *);
    int (*select)(int, fd_set *, fd_set *, fd_set *, struct timeval *);
    int (*pselect)(int, fd_set *, fd_set *, fd_set *, const struct timespec *, const sigset_t *);
    int (*epoll_wait)(int, struct epoll_event *, int, int);
    int (*epoll_pwait)(int, struct epoll_event *, int, int, const sigset_t *);
    int (*nanosleep)(const struct timespec *, struct timespec *);
    int (*clock_nanosleep)(clockid_t, int, const struct timespec *, struct timespec *);
    int (*usleep)(useconds_t);
    unsigned (*sleep)(unsigned);
    int (*getaddrinfo)(const char *, const char *, const struct addrinfo *, struct addrinfo **);
    int (*fcntl)(int, int, ...);
} jacket_real_calls;

// Hidden: read PC-relative, not through the GOT (two loads fewer on every call).
#define JACKET_HIDDEN __attribute__((visibility("hidden")))
extern JACKET_HIDDEN jacket_real_calls jacket_real;
/// The runtime's table; NULL until a runtime starts (and in a forked child).
extern JACKET_HIDDEN const uthreads_jacket_runtime *jacket_runtime;
extern JACKET_HIDDEN intptr_t jacket_tls_offset;

/// Fills `jacket_real` (idempotent; also called by the first call that finds a pointer unset,
/// e.g. from another library's constructor that runs before the jacket's). preserve_most: a
/// call site need not save its arguments around it, so the hot path needs no stack frame.
#if defined(__clang__) && defined(__x86_64__)
__attribute__((preserve_most))
#endif
JACKET_HIDDEN void jacket_resolve(void);

#define REAL(name) (__builtin_expect(jacket_real.name != NULL, 1) ? jacket_real.name : (jacket_resolve(), jacket_real.name))

/// True on a user thread, once a runtime is installed (jacket_runtime != NULL): one load of
/// the runtime's own thread-local "current user thread" pointer at its fixed offset from the
/// thread pointer.
static inline __attribute__((always_inline)) int jacket_in_user_thread(void) {
    void *current;
#if defined(__x86_64__)
    __asm__ volatile("movq %%fs:(%1), %0" : "=r"(current) : "r"(jacket_tls_offset));
#elif defined(__aarch64__)
    char *tp;
    __asm__ volatile("mrs %0, tpidr_el0" : "=r"(tp));
    current = *(void *volatile *)(tp + jacket_tls_offset);
#else
    current = NULL;
#endif
    return current != NULL;
}

/// True on a user thread of a running runtime.
static inline __attribute__((always_inline)) int jacket_on_user_thread(void) {
    return __builtin_expect(jacket_runtime != NULL, 0) && jacket_in_user_thread();
}

// MARK: - Signals around parked calls (jacket_signal.c, with its essay)

/// What a parked call knows about signals: the signal generation when it first had to wait,
/// the signals its mask blocks (bit s - 1: signal s), and whether SA_RESTART restarts it.
typedef struct jacket_signal_watch {
    uint64_t generation;
    uint64_t blocked;
    int restarts;
} jacket_signal_watch;

/// Notes the current signal generation: `mask` is the call's (ppoll, pselect, epoll_pwait) or
/// NULL; `restarts`: the call is one SA_RESTART restarts (signal(7)).
JACKET_HIDDEN void jacket_signal_watch_begin(jacket_signal_watch *watch, const sigset_t *mask, int restarts);
/// True when an installed handler could interrupt the call (then its parks also watch the bell).
JACKET_HIDDEN int jacket_signal_armed(const jacket_signal_watch *watch);
/// True when a handler that interrupts the call ran since `jacket_signal_watch_begin`.
JACKET_HIDDEN int jacket_signal_interrupted(const jacket_signal_watch *watch);
/// Creates the bell (from uthreads_jacket_install).
JACKET_HIDDEN void jacket_signal_install(void);
/// Parks until `fd` may be ready for `direction`, `deadline`, or a signal that interrupts the
/// call (`watch` may be NULL: none does): 0, ETIMEDOUT, EINTR, ECANCELED, EBADF, EPERM (a
/// descriptor epoll refuses), or another errno.
JACKET_HIDDEN int jacket_park_fd(int fd, int direction, int kind, uint64_t deadline, const jacket_signal_watch *watch);
/// The same for the caller's own epoll set or a temporary one: until one of its descriptors is ready.
JACKET_HIDDEN int jacket_park_set(int set, int shown, int kind, uint64_t deadline, const jacket_signal_watch *watch);
/// Parks until `deadline` or a signal that interrupts the call: ETIMEDOUT, EINTR or ECANCELED.
JACKET_HIDDEN int jacket_park_time(uint64_t deadline, const jacket_signal_watch *watch);

/// A blocking call's wait state: its deadline, fixed at the first wait, and its signal watch.
typedef struct jacket_wait {
    int started;
    uint64_t deadline;
    jacket_signal_watch signals;
} jacket_wait;

/// `jacket_block`'s answer when the caller must make the real call itself (a descriptor the
/// caller made non-blocking: the real call returns EAGAIN as usual; or one epoll refuses).
#define JACKET_REAL_CALL (-1)

/// The slow path of a call that got EAGAIN on a descriptor: parks until `fd` may be ready for
/// `direction`. Returns 0 (retry), JACKET_REAL_CALL, or the errno to fail with (EAGAIN for an
/// SO_RCVTIMEO/SO_SNDTIMEO timeout, ECANCELED, EBADF, EINTR for a signal whose handler
/// interrupts the call, jacket_signal.c). Off a user thread (a file the jacket
/// made non-blocking, its caller expecting a blocking call) it waits in poll(2) instead.
int jacket_block(int fd, int direction, int kind, jacket_wait *wait);

// MARK: - The record of each descriptor (jacket_fd.c; essay: jacket_core.c, "Descriptor modes")

enum {
    /// Created blocking in this process by a call the jacket saw (socket, socketpair, pipe,
    /// pipe2, accept, accept4, or a duplicate of one), and not shared with a child since: the
    /// jacket may make its file non-blocking the first time a user thread reads or writes it.
    JACKET_FD_OURS = 1,
    /// The file is non-blocking in the kernel (the jacket or the caller set O_NONBLOCK through
    /// the jacket): the real call never blocks, EAGAIN means "would block". Only with OURS.
    JACKET_FD_NONBLOCKING = 2,
    /// The caller's own view: it set O_NONBLOCK (fcntl, ioctl FIONBIO). Only with NONBLOCKING.
    JACKET_FD_CALLER_NONBLOCKING = 4,
    /// Known not to be a regular file (a short read is a short read): jacket_io.c.
    JACKET_FD_NOT_REGULAR = 8,
};

/// Descriptor numbers from this one on have no record (state 0: the per-call path).
#define JACKET_FD_LIMIT 65536
extern JACKET_HIDDEN uint8_t jacket_fd_table[JACKET_FD_LIMIT];

/// The record of `fd` (JACKET_FD_* bits; 0 for none).
static inline __attribute__((always_inline)) unsigned jacket_fd_state(int fd) {
    return (unsigned)fd < JACKET_FD_LIMIT ? __atomic_load_n(&jacket_fd_table[fd], __ATOMIC_RELAXED) : 0;
}

/// Records a descriptor this process just created (`nonblocking`: born with O_NONBLOCK).
JACKET_HIDDEN void jacket_fd_created(int fd, int nonblocking);
/// Makes an OURS descriptor's file non-blocking (the first touch by a user thread); returns
/// its new record, or 0 when that failed (the per-call path then serves it).
JACKET_HIDDEN unsigned jacket_fd_adopt(int fd);
/// Gives `to` the record of `from` (a duplicate: same file, same mode); returns it.
JACKET_HIDDEN unsigned jacket_fd_copy(int from, int to);
/// The record of `fd` for a call about to park: a non-blocking record whose file is not the
/// one the jacket adopted (its number was closed and reused behind the jacket's back: an fstat
/// says) is dropped, and 0 returned.
JACKET_HIDDEN unsigned jacket_fd_verify(int fd);
/// The jacket's close: forgets what it knew about descriptor `fd`.
JACKET_HIDDEN void jacket_forget_descriptor(int fd);
/// A call on `fd` failed with `error`: EBADF means no file has the number, so a record of it is stale.
static inline void jacket_fd_failed(int fd, int error) {
    if (__builtin_expect(error == EBADF, 0)) jacket_forget_descriptor(fd);
}
/// Resolves the real calls of jacket_fd.c (from jacket_resolve).
JACKET_HIDDEN void jacket_fd_resolve(void);
/// pthread_atfork's prepare: every file the jacket made non-blocking gets its caller's
/// blocking mode back before a child shares it.
JACKET_HIDDEN void jacket_fd_before_fork(void);

/// True when `fd`'s file is non-blocking only because the jacket made it so: its caller sees
/// it blocking. Off a user thread such a call that got EAGAIN (or, writing, a short count)
/// must still block as the caller expects: it waits in poll (jacket_block) and retries.
static inline __attribute__((always_inline)) int jacket_fd_blocks_for_caller(int fd) {
    return (jacket_fd_state(fd) & (JACKET_FD_NONBLOCKING | JACKET_FD_CALLER_NONBLOCKING)) == JACKET_FD_NONBLOCKING;
}

/// True when a call on `fd` is the real call: no runtime installed (then no file was made
/// non-blocking: the call goes straight through), or off a user thread on a file whose
/// caller's mode the kernel has. A file the jacket made non-blocking behind a caller that
/// sees it blocking takes the jacketed path even off a user thread, where it waits in poll.
#define JACKET_PASS(fd) \
    (__builtin_expect(jacket_runtime == NULL, 1) || (!jacket_in_user_thread() && !jacket_fd_blocks_for_caller(fd)))

/// The record of `fd` for a call on a user thread: an OURS descriptor seen for the first time
/// is adopted (made non-blocking) here.
static inline __attribute__((always_inline)) unsigned jacket_fd_touch(int fd) {
    unsigned state = jacket_fd_state(fd);
    if (__builtin_expect((state & (JACKET_FD_OURS | JACKET_FD_NONBLOCKING)) == JACKET_FD_OURS, 0)) state = jacket_fd_adopt(fd);
    return state;
}

/// Parks until one of `fds` may be ready (or `deadline`, or a signal that interrupts the call):
/// 0, ETIMEDOUT, EINTR, ECANCELED, or another errno.
int jacket_park_any(const struct pollfd *fds, nfds_t n, uint64_t deadline, const jacket_signal_watch *watch);

/// Timeouts at or beyond this many nanoseconds (~146 years) mean no deadline, as in the runtime.
#define JACKET_HORIZON_NS (UINT64_C(1) << 62)

/// Deadline in the runtime's clock `ns` nanoseconds from now; UTHREADS_JACKET_FOREVER (none)
/// at or beyond JACKET_HORIZON_NS.
uint64_t jacket_deadline_after(uint64_t ns);

/// A timespec as nanoseconds; -1 when invalid (negative, or tv_nsec out of range).
int64_t jacket_timespec_ns(const struct timespec *ts);

#endif
