// jacket_core.c — the jacket: the C library's blocking calls, made to park a user thread.
//
// Design essay
// ============
//
// The problem. A user thread that calls the C library's read(2) on an empty pipe blocks its
// kernel thread, and with it every user thread of that worker. Code written for this project
// uses IO.read and friends, which park instead; code it did not write — a C client library, a
// package calling Glibc directly — does not. The textbook's answer is a *jacket* around each
// call that could block: check first, and if it would block, run another thread instead.
//
// How others do it, and what this takes from each:
//   * GNU Pth's "hard" mode defines read, write, select, … in the program (pth_syscall.c) and
//     reaches the real calls through syscall(2) or dlsym. Its wrappers switch every descriptor
//     to non-blocking around each call (pth_fdmode) and restore the mode afterwards: two fcntl
//     calls per read, and a window in which another process sharing the file sees it
//     non-blocking.
//   * Tencent's libco (co_hook_sys_call.cpp) hooks socket calls with dlsym(RTLD_NEXT, …), keeps
//     a record per socket created through its socket() hook, makes those sockets non-blocking
//     and remembers the user's own O_NONBLOCK via a hooked fcntl; descriptors it did not create
//     (pipes, inherited sockets) go straight to the real call. Cheap, but blind to pipes, and a
//     per-fd record goes stale when a descriptor is closed by a path it does not see (fclose).
//   * gevent's monkey.patch_all replaces Python's socket, select and time modules with
//     cooperative ones: the same idea one level up, possible because Python code only reaches
//     the OS through those modules. C code cannot be patched that way; its calls are symbols.
//
// This jacket defines the symbols (linked into the program, or preloaded as
// libuthreads-jacket.so) and reaches the real ones with dlsym(RTLD_NEXT, …), each found once
// (jacket_resolve). Every call first asks "am I on a user thread of a running runtime?" — one
// load of the runtime's own thread-local "current user thread" pointer, at the offset from the
// thread pointer that the runtime handed over (its thread-locals are initial-exec, so the
// offset is the same on every kernel thread). Outside a user thread (no runtime, the offload
// pool, any other kernel thread, the scheduler's idle loop) every function is the real call,
// through the cached pointer — with one exception once a runtime runs: a read, write, send,
// receive, accept or connect on a file the jacket made non-blocking (below) whose caller sees
// it blocking waits in poll(2) on EAGAIN and retries, so that the caller still gets the
// blocking call it expects (JACKET_PASS: one byte of the descriptor's record).
//
// Descriptor modes. A call that does not block should cost what the real call costs, plus
// the user-thread test (issue's target: ~20 ns). That needs the real call itself on a file
// that is non-blocking in the kernel, so that "would block" comes back as EAGAIN — while the
// caller, who made the descriptor blocking, still sees a blocking one. Libco's design, with
// the sharing problem it ignores decided explicitly:
//   * Descriptors *created in this process* through the jacket — socket, socketpair, pipe,
//     pipe2, accept, accept4 (and their dup/dup2/dup3/F_DUPFD copies) — are recorded per
//     number (jacket_fd.c, one byte each, up to 65,536). The first time a user thread reads,
//     writes, accepts or connects on one that was created blocking, the jacket sets O_NONBLOCK
//     on its file, once (F_GETFL + F_SETFL), and from then on calls the real read/write on it;
//     EAGAIN is "would block". Born non-blocking (SOCK_NONBLOCK, O_NONBLOCK: the runtime's own
//     descriptors among them) is the caller's choice already: no record, the real calls do
//     what it expects.
//   * The record keeps the caller's view: fcntl/fcntl64 F_SETFL and ioctl(FIONBIO) record
//     the O_NONBLOCK the caller asks for and keep the jacket's on the file; F_GETFL reports
//     the caller's. A descriptor the caller sees blocking parks on EAGAIN (bounded by
//     SO_RCVTIMEO/SO_SNDTIMEO); one it made non-blocking gets EAGAIN as usual. The record is
//     cleared by close, fclose, close_range and by dup2/dup3 over the number (which copy the
//     source's record: a duplicate shares the file, so its mode).
//   * Every other descriptor — inherited from the parent, received over SCM_RIGHTS, opened
//     with open(2) (a FIFO, a terminal), created by a raw system call — may be shared with
//     another process, where a changed O_NONBLOCK would break a program that never heard of
//     this one. Its mode is never changed: it keeps the per-call non-blocking path below.
//   * Sharing with a child ends the jacket's ownership: before fork (pthread_atfork's
//     prepare) every file the jacket made non-blocking gets its blocking mode back and every
//     record created here is dropped, so the child — where the jacket is off — and the
//     programs it execs see the modes their callers set; the parent serves those descriptors
//     through the per-call path from then on. posix_spawn/posix_spawnp do the same for the
//     descriptors an exec'd program inherits (no FD_CLOEXEC), and so do system and popen
//     (glibc spawns inside itself for them, and its posix_spawn runs no atfork handlers).
//     Unseen: vfork or clone followed by exec — such a program inherits a descriptor the
//     jacket made non-blocking as it is (give it FD_CLOEXEC, or fork).
//   * Sockets need no state at all for recv/recvfrom/recvmsg/send/sendto/sendmsg: the same
//     call with MSG_DONTWAIT is the per-call non-blocking attempt, at the real call's cost.
// Rejected: Pth's flip of O_NONBLOCK around each call (two fcntl per call, and a window in which
// another process sharing the file sees it non-blocking); setting O_NONBLOCK on any socket or
// pipe at first touch, inherited ones included (a parent's or a child's blocking read of a
// shared pipe would start failing with EAGAIN); keying the record by file (st_dev/st_ino) to
// see duplicates made behind the jacket's back (an fstat per call: the cost this removes);
// leaving adopted files non-blocking across fork (the child, where the jacket is off, would get
// EAGAIN from calls it made blocking) or restoring them in the child only (the file is shared:
// the parent's records would then be wrong and its calls block its workers); and making every call a per-call non-blocking attempt, as the first version did (preadv2/
// pwritev2 with RWF_NOWAIT cost +164–326 ns per call on a pipe, the kernel's longer path;
// now −1–79 ns, noise around +14.5 instructions: docs/runs/jacket-2026-12-07.txt).
//
// The per-call non-blocking path, for descriptors without a record: ask the kernel for a
// non-blocking attempt *of this one call* and leave the file's status flags alone:
//   * read/readv/write/writev: preadv2/pwritev2 with offset -1 (the file position, as read
//     does) and RWF_NOWAIT. Sockets and pipes honour it (the kernel then acts as if O_NONBLOCK
//     were set for this call); files that cannot (EOPNOTSUPP: terminals, some devices) get a
//     zero-timeout poll before the real call instead.
//   * recv/recvfrom/recvmsg/send/sendto/sendmsg: the same call with MSG_DONTWAIT added.
//   * accept/accept4: a zero-timeout poll first (no per-call flag exists); connect: the one
//     call that must flip O_NONBLOCK (a connect in progress cannot be re-issued blocking), on
//     a socket that is not connected yet and so is rarely shared.
// On EAGAIN the slow path (jacket_block) reads the file's flags once: a descriptor the caller
// made non-blocking returns EAGAIN as the real call would. A descriptor the caller sees
// blocking parks the user thread on its worker's reactor (the same wait IO.read uses on
// EAGAIN, with the table showing `read fd 7 (jacket)`), bounded by SO_RCVTIMEO/SO_SNDTIMEO
// (then EAGAIN, as Linux returns), and retries. A blocking write or send on a stream writes everything, as the real call does,
// parking as often as needed; a blocking recv with MSG_WAITALL reads everything.
//
// RWF_NOWAIT on a regular file stops at the first byte not in the page cache; a short read
// is followed by an fstat, and from a regular file the rest is read with the real call (the
// "not a regular file" answer is remembered per descriptor number until the jacket's close),
// so a program that reads a file whole still gets it whole. readv keeps the short count.
//
// Regular files and block devices are left alone: the kernel reports them always ready to
// poll and epoll refuses them (EPERM), so there is no readiness to park on; a read that must
// go to disk blocks the kernel thread, as with the real call. Wrap such reads in `blocking {}`
// (the offload pool). getaddrinfo, which can never be non-blocking, runs on the offload pool.
//
// poll/ppoll/select/pselect/epoll_wait/epoll_pwait with a non-zero timeout: the real call with
// a zero timeout first; if nothing is ready, park until one descriptor may be ready or the
// timeout (one descriptor waiting in one direction parks on it directly; several are put in a
// temporary epoll set, which the reactor waits on as one descriptor — epoll descriptors are
// pollable), then the zero-timeout call again. The signal mask of ppoll/pselect/epoll_pwait
// applies exactly to those real calls, and while the thread is parked says which signals
// interrupt it (jacket_signal.c). Sleeps
// (nanosleep/clock_nanosleep/usleep/sleep) become user-thread sleeps on the runtime's clock.
//
// errno. Every return value and errno is the real call's, with two additions: a cancelled
// user thread's jacketed wait fails with ECANCELED (not EINTR: C libraries retry EINTR, and a
// cancelled thread would retry forever), and a descriptor closed by another user thread while
// this one waited fails with EBADF. A call that does not need to wait completes even for a
// cancelled thread. EINTR from a signal is the real call's: a handler interrupts a parked call
// as signal(7) says it interrupts the real one (jacket_signal.c, with its own essay).
//
// The runtime's own I/O never passes through the jacket. Its descriptors are non-blocking, but
// through the jacket a read that would block cost preadv2 + fcntl(F_GETFL) + readv, an eventfd
// ring (eventfds refuse RWF_NOWAIT: EOPNOTSUPP) pwritev2 + poll + writev, an accept an extra
// poll — and the registry's close(2) would re-enter the jacket's close below under its own
// lock. So the CUThreads shims (eventfd bells, accept, the dump signal's bell) and IO's
// read/write/readv/writev/recv/send and every close of the runtime call the kernel directly
// (uthreads_sys_* in CUThreads, syscall(2)), whether or not a jacket is linked; without one
// that costs the same as the libc call.
//
// close. On a user thread the jacket's close is the runtime's `IO.close` (the `closing` hook):
// it wakes the descriptor's waiters on every worker of an M:N runtime with EBADF — the kernel
// removes a closed file from the other workers' epoll sets without an event, so a reader parked
// there would otherwise sleep forever — and close(2) runs once no worker watches the number
// (deferred to the last watcher, the closer parked until then, not cancellable: the registry's
// essay, Sources/UserThreads/Reactor/DescriptorRegistry.swift), so the number cannot be reused
// while a worker still has an entry for it. Rejected: telling only the closing worker's reactor
// (the first version: the cross-worker reader hung), and waking the other workers but closing
// at once (their late wakes could hit a new file that reused the number). Off a user thread the
// close is the real call.
//
// Edges. The runtime's own close(2) (`IO.close`, a stream's close, a deferred close) tells the
// jacket first (uthreads_jacket_forget, in the ABI header), so its record goes before the
// number can be reused. A descriptor closed behind the jacket's back otherwise
// (syscall(SYS_close), the C library's own closes inside fopen/fclose pairs it made itself)
// keeps a stale registration until its number is waited on again — then the wait only ends at
// its timeout — and may keep a stale record, which the jacket drops where it can tell cheaply:
//   * a call on the number fails with EBADF (no file has it): the error path only;
//   * fcntl(F_GETFL) finds the jacket's O_NONBLOCK gone from a file it made non-blocking (a
//     blocking file under the number, or a raw fcntl cleared it): the call reads the flags anyway;
//   * a call is about to park on a file the jacket made non-blocking, and an fstat finds another
//     file under the number than the one adopted (st_dev and st_ino, noted at adoption and
//     copied by dup): one fstat per park, a wait's cost already, never on a call that does not
//     block. So a non-blocking file that reuses the number (an eventfd, a timerfd made by a raw
//     system call) returns EAGAIN to its caller instead of parking it for ever.
//   * open, openat (and their 64 names), eventfd, timerfd_create, signalfd and inotify_init
//     return a number that was free: a record under it is dropped (one byte store per call).
// Left undetected, because telling would cost a system call on the path that does not block: a
// blocking file that reuses the number of one the jacket made non-blocking by a path the
// jacket does not see (a raw system call, a raw dup2 over it, the C library's internal opens in
// fopen) is read as non-blocking — the read blocks its kernel thread, as without the jacket —
// until one of the checks above drops the record; and a number created here and not yet
// adopted, reused by such a file, is adopted as if it were the old one (its O_NONBLOCK set). Rejected: an fstat on every call (the cost the records
// remove), and noting the identity at creation too (an fstat per accept, for the rare second
// case). Under M:N, a fork while another worker is inside a real
// read of a file the fork gives back its blocking mode lets that read block its kernel thread.
// A forked child has no runtime: the jacket turns itself off
// there (pthread_atfork) for good, so the child's calls are the real calls, even for a runtime
// the child starts (the hand-over runs once per process). Signals: a handler interrupts a
// parked call as it would the real call, and the mask of ppoll/pselect/epoll_pwait says which
// signals may — with the approximations its essay lists (jacket_signal.c). A signal handler's
// call on a user thread is jacketed like any other: it never parks when it need not wait (a
// write to a non-blocking self-pipe, to stderr), but a handler must not make a call that would
// block, with or without the jacket.
//
// Off switch: with UTHREADS_JACKET=0 in the environment the jacket never activates (every
// call is the real call), for comparing a program with and without it.
//
// Cost. A call that does not block pays the user-thread test (a global load, a %fs load), the
// descriptor's record (one byte load) and an indirect call through a cached pointer to the
// real call; on a descriptor without a record (inherited, opened) read/write cost
// preadv2/pwritev2 in the kernel instead. `uthreads bench jacket` measures it against the
// real call in the same run; the figures are in DEVELOPERS.md.
#include "jacket_internal.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

JACKET_HIDDEN jacket_real_calls jacket_real;
JACKET_HIDDEN const uthreads_jacket_runtime *jacket_runtime;
JACKET_HIDDEN intptr_t jacket_tls_offset;

#define RESOLVE(name) \
    do { if (!jacket_real.name) jacket_real.name = (__typeof__(jacket_real.name))dlsym(RTLD_NEXT, #name); } while (0)

#if defined(__clang__) && defined(__x86_64__)
__attribute__((preserve_most))
#endif
void jacket_resolve(void) {
    RESOLVE(read); RESOLVE(write); RESOLVE(readv); RESOLVE(writev); RESOLVE(preadv2); RESOLVE(pwritev2);
    RESOLVE(recv); RESOLVE(recvfrom); RESOLVE(recvmsg); RESOLVE(send); RESOLVE(sendto); RESOLVE(sendmsg);
    RESOLVE(accept); RESOLVE(accept4); RESOLVE(connect); RESOLVE(close);
    RESOLVE(poll); RESOLVE(ppoll); RESOLVE(select); RESOLVE(pselect); RESOLVE(epoll_wait); RESOLVE(epoll_pwait);
    RESOLVE(nanosleep); RESOLVE(clock_nanosleep); RESOLVE(usleep); RESOLVE(sleep);
    RESOLVE(getaddrinfo); RESOLVE(fcntl);
    jacket_fd_resolve();
}

__attribute__((constructor)) static void jacket_init(void) { jacket_resolve(); }

static void jacket_after_fork_child(void) { jacket_runtime = NULL; }

void uthreads_jacket_install(const uthreads_jacket_runtime *runtime) {
    if (!runtime || runtime->version != UTHREADS_JACKET_ABI_VERSION) return;
    const char *setting = getenv("UTHREADS_JACKET");  // UTHREADS_JACKET=0: linked but off
    if (setting && strcmp(setting, "0") == 0) return;
    jacket_resolve();
    static atomic_flag once = ATOMIC_FLAG_INIT;
    if (atomic_flag_test_and_set(&once)) return;
    pthread_atfork(jacket_fd_before_fork, NULL, jacket_after_fork_child);
    jacket_signal_install();
    jacket_tls_offset = runtime->current_tls_offset;
    __atomic_store_n(&jacket_runtime, runtime, __ATOMIC_RELEASE);
}

int uthreads_jacket_active(void) { return jacket_runtime != NULL; }

uint64_t jacket_deadline_after(uint64_t ns) {
    // The runtime's rule (Sources/UserThreads/Timers/Deadline.swift): a timeout at or beyond
    // its horizon, 2^62 ns, is no deadline at all — not a timer near UINT64_MAX, which the
    // deadlock check counts as "will wake" and which moves a virtual clock to the end of time.
    if (ns >= JACKET_HORIZON_NS) return UTHREADS_JACKET_FOREVER;
    uint64_t now = jacket_runtime->now();
    return ns >= UTHREADS_JACKET_FOREVER - now ? UTHREADS_JACKET_FOREVER : now + ns;
}

int64_t jacket_timespec_ns(const struct timespec *ts) {
    if (ts->tv_sec < 0 || ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000L) return -1;
    if (ts->tv_sec > (INT64_MAX - 999999999L) / 1000000000L) return INT64_MAX;
    return (int64_t)ts->tv_sec * 1000000000LL + ts->tv_nsec;
}

/// Off a user thread: blocks in poll(2) until `fd` may be ready for `direction` or `deadline`
/// (the runtime's clock); 0, ETIMEDOUT, or EINTR when a handler that interrupts the call ran
/// (any other EINTR restarts the wait, as SA_RESTART would).
static int jacket_poll_until(int fd, int direction, uint64_t deadline, const jacket_signal_watch *watch) {
    struct pollfd p = {fd, (short)(direction == UTHREADS_JACKET_WRITE ? POLLOUT : POLLIN), 0};
    while (1) {
        int milliseconds = -1;
        if (deadline != UTHREADS_JACKET_FOREVER) {
            uint64_t now = jacket_runtime->now();
            if (now >= deadline) return ETIMEDOUT;
            uint64_t left = (deadline - now + 999999) / 1000000;
            milliseconds = left > INT32_MAX ? INT32_MAX : (int)left;
        }
        int ready = REAL(poll)(&p, 1, milliseconds);
        if (ready > 0) return 0;
        if (ready < 0 && errno != EINTR) return 0;  // the retried call reports the error
        if (ready < 0 && jacket_signal_interrupted(watch)) return EINTR;
    }
}

int jacket_block(int fd, int direction, int kind, jacket_wait *wait) {
    if (!wait->started) {
        wait->started = 1;
        unsigned state = jacket_fd_verify(fd);
        if (state & JACKET_FD_NONBLOCKING) {  // the record knows the caller's view
            if (state & JACKET_FD_CALLER_NONBLOCKING) return JACKET_REAL_CALL;
        } else {
            int flags = REAL(fcntl)(fd, F_GETFL);
            if (flags < 0 || (flags & O_NONBLOCK)) return JACKET_REAL_CALL;
        }
        struct timeval tv = {0, 0};
        socklen_t len = sizeof tv;
        int option = direction == UTHREADS_JACKET_WRITE ? SO_SNDTIMEO : SO_RCVTIMEO;
        if (getsockopt(fd, SOL_SOCKET, option, &tv, &len) == 0 && (tv.tv_sec > 0 || tv.tv_usec > 0)) {
            wait->deadline = jacket_deadline_after((uint64_t)tv.tv_sec * 1000000000ull + (uint64_t)tv.tv_usec * 1000ull);
        } else {
            wait->deadline = UTHREADS_JACKET_FOREVER;
        }
        // signal(7): SA_RESTART restarts these calls, unless the socket has a timeout.
        jacket_signal_watch_begin(&wait->signals, NULL, wait->deadline == UTHREADS_JACKET_FOREVER);
    }
    int e = jacket_in_user_thread() ? jacket_park_fd(fd, direction, kind, wait->deadline, &wait->signals)
                                    : jacket_poll_until(fd, direction, wait->deadline, &wait->signals);
    switch (e) {
    case 0: return 0;
    case ETIMEDOUT: return EAGAIN;        // SO_RCVTIMEO/SO_SNDTIMEO passed: Linux says EAGAIN
    case EPERM: return JACKET_REAL_CALL;  // epoll refuses it (a regular file): the real call
    default: return e;
    }
}
