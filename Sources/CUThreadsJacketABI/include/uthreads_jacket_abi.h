// uthreads_jacket_abi.h — the contract between the UserThreads runtime and the jacket
// (Sources/UserThreadsJacket, the opt-in interposer of the C library's blocking calls).
//
// The jacket is C with no dependency on the runtime's code: it may be a preloaded shared
// object (libuthreads-jacket.so) next to an executable that links UserThreads statically, so it
// cannot name Swift symbols or CUThreads' thread-locals. Instead the runtime, when its first
// runtime starts, hands the jacket this table (uthreads_jacket_install), once per process.
// The design essay is in Sources/UserThreadsJacket/jacket_core.c.
#ifndef UTHREADS_JACKET_ABI_H
#define UTHREADS_JACKET_ABI_H

#include <stdint.h>

#if !defined(__clang__)  /* nullability annotations are for Swift's importer (clang) */
#define _Nullable
#define _Nonnull
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define UTHREADS_JACKET_ABI_VERSION 3

/// Directions of `wait_fd`.
enum { UTHREADS_JACKET_READ = 1, UTHREADS_JACKET_WRITE = 2 };

/// What the thread table shows while a jacketed call waits (`read fd 7 (jacket)`): the
/// runtime's WaitReason.Kind of the same name.
enum {
    UTHREADS_JACKET_KIND_READ = 0,
    UTHREADS_JACKET_KIND_WRITE = 1,
    UTHREADS_JACKET_KIND_ACCEPT = 2,
    UTHREADS_JACKET_KIND_CONNECT = 3,
    UTHREADS_JACKET_KIND_POLL = 4,
    UTHREADS_JACKET_KIND_SLEEP = 5,  ///< a jacketed sleep (nanosleep, poll with no descriptor)
};

/// No deadline.
#define UTHREADS_JACKET_FOREVER UINT64_MAX

/// The runtime's side. Every function is called only on a user thread of a running runtime
/// (the jacket checks first), and returns 0 or an errno value: ETIMEDOUT (the deadline passed),
/// ECANCELED (the thread was cancelled), EBADF (the descriptor was closed meanwhile) or the
/// errno of a failed epoll_ctl.
typedef struct uthreads_jacket_runtime {
    uint32_t version;            ///< UTHREADS_JACKET_ABI_VERSION
    /// Offset of the runtime's per-kernel-thread "current user thread" pointer from the thread
    /// pointer (an initial-exec thread-local: the same offset on every kernel thread). The
    /// pointer is non-NULL exactly while a user thread runs on the calling kernel thread.
    intptr_t current_tls_offset;
    /// The runtime's clock in nanoseconds (CLOCK_MONOTONIC, or a simulation's virtual clock):
    /// the time base of every deadline below.
    uint64_t (*_Nonnull now)(void);
    /// Parks the calling user thread on its worker's reactor until `fd` may be ready for
    /// `direction` (the caller retries its call), or until `deadline`. The thread table shows
    /// the wait as one on `shown` (`read fd 7 (jacket)`): a call that must also wake on a
    /// signal parks on a temporary epoll set holding the caller's descriptor and the jacket's
    /// bell (jacket_signal.c), and the table names the caller's descriptor, not the set.
    /// `shown` < 0: the table shows `fd`, or, with UTHREADS_JACKET_KIND_SLEEP, a sleep.
    int (*_Nonnull wait_fd)(int fd, int shown, int direction, int kind, uint64_t deadline);
    /// Parks the calling user thread until `deadline` (a user-thread sleep).
    int (*_Nonnull sleep_until)(uint64_t deadline);
    /// Runs `body(context)` on the runtime's offload pool while the calling user thread parks.
    /// Not cancellable (the body runs to its end).
    int (*_Nonnull offload)(void (*_Nonnull body)(void *_Nullable), void *_Nullable context);
    /// close(2) of `fd` on a user thread, the runtime's way (`IO.close`): wakes the threads
    /// waiting on `fd` on every worker of an M:N runtime (a closed file leaves the other
    /// workers' epoll sets without an event) and closes it once none watches it any longer,
    /// parking the caller until then. Returns 0 when the runtime closed `fd`, the errno value
    /// of a failed close (EBADF for a bad or already closing descriptor), or -1 when it did
    /// not close `fd` (the jacket then calls close(2) itself).
    int (*_Nonnull closing)(int fd);
} uthreads_jacket_runtime;

/// The jacket's entry point (defined by UserThreadsJacket). The runtime calls it once, with a
/// table that lives for the rest of the process.
void uthreads_jacket_install(const uthreads_jacket_runtime *_Nonnull runtime);

/// The jacket's other entry point: forgets what it recorded about descriptor `fd` (its mode,
/// whether the jacket made it non-blocking). The runtime calls it, when the program has a
/// jacket, before it closes a descriptor with close(2) directly (`IO.close`, a deferred close):
/// the number may be reused at once, and a stale record would make the jacket treat the next
/// file under that number as the old one.
void uthreads_jacket_forget(int fd);

#ifdef __cplusplus
}
#endif
#endif
