// jacket_signal.c — signals around parked jacketed calls: a handler interrupts them as it would
// the real blocking calls (EINTR, or a restart under SA_RESTART), and the signal mask of
// ppoll/pselect/epoll_pwait says which signals may.
//
// Design essay
// ============
//
// The problem. A real read(2) blocked on an empty pipe is interrupted by a signal: the kernel
// runs the handler, then restarts the call if the handler was installed with SA_RESTART, or
// fails it with EINTR if not; poll, ppoll, select, pselect, epoll_wait, epoll_pwait,
// nanosleep, clock_nanosleep and usleep are never restarted, and neither are socket calls
// with a timeout (SO_RCVTIMEO for accept and the receive calls, SO_SNDTIMEO for connect and
// the send calls) — signal(7), "Interruption of system calls and library functions by signal
// handlers". Programs depend on it: a main loop in poll whose SIGINT or SIGCHLD handler sets a
// flag relies on the EINTR to look at the flag. A parked jacketed call is no system call: it is
// a user thread in the reactor's queue, and the kernel does not know it exists. The handler
// runs wherever the kernel delivers the signal — on a worker while another user thread runs,
// or in the scheduler's idle epoll_wait (which the signal interrupts) — and nothing told the
// parked call. This file tells it.
//
// How. The jacket defines sigaction, signal, bsd_signal, sysv_signal and siginterrupt. A
// handler the program installs for an asynchronous signal is installed in the kernel as the
// jacket's trampoline, which calls the program's handler and then, still in the signal
// handler and only with async-signal-safe steps, bumps a process-wide signal generation,
// stamps the signal with it (whether its handler had SA_RESTART, as the program installed it)
// and writes 1 to the jacket's *bell*, an eventfd. After the handler, not before: a parked
// call that wakes on another worker must see what the handler did (the flag it set).
// sigaction reports the program's own action back, so a program that reads its handler back
// sees its own. A parked jacketed call that any installed handler could interrupt — every one
// for the calls that are never restarted, only those without SA_RESTART otherwise, minus the
// signals its own mask blocks — waits on its descriptor *and* the bell: a temporary epoll set
// holding both (the bell edge-triggered, so that a bell that rang before does not wake it
// again), which the reactor waits on as one descriptor, as poll's several descriptors already
// are (jacket_poll.c); a sleep waits on the bell alone, with its deadline. Every wait of every
// worker so armed wakes on the bell and asks "did a signal that interrupts me arrive since I
// began?" — a stamp newer than the generation it noted when it first had to wait, for a
// signal its mask does not block, of the right kind. If so it fails with EINTR (a write that
// already wrote part returns its short count, as the real call does); if not it waits again:
// the restart SA_RESTART asks for, invisible to the caller. A call that no installed handler
// could interrupt — no handlers, or only SA_RESTART ones and a restarted call such as read —
// parks exactly as before, at the same cost.
//
// While an armed call waits, the thread table still names the caller's descriptor (`read fd 7
// (jacket)`, not the temporary set's number) and an armed sleep shows as a sleep: the park
// passes the number to show beside the one it waits on (`wait_fd` in the ABI).
//
// Which parked calls a signal interrupts: every armed one in the process, on every worker.
// A process-directed signal interrupts one real thread's call (the kernel's choice, which the
// program cannot direct); here every user thread in a jacketed wait may have been that thread.
// Interrupting one would be arbitrary and could leave the one that waits for the signal (the
// main loop in poll) asleep — a hang — while a spurious EINTR is what every program that
// installs a handler without SA_RESTART must handle from every call anyway.
//
// The mask of ppoll, pselect and epoll_pwait. The real call replaces the kernel thread's mask
// for its duration. The zero-timeout real call each of them makes before parking applies it
// exactly: a pending signal it unblocks is delivered there, and the call fails with EINTR, as
// the real one would. While parked, the worker's kernel thread keeps its own mask (it is shared
// by every user thread of the worker, so it cannot take one thread's). What is exact: a signal
// the call's mask blocks never interrupts it; one it does not block interrupts it if its
// handler runs while it waits. What is approximated: the handler of a signal the call's mask
// blocks still runs meanwhile (wherever the kernel delivers it, not held pending until the call
// ends), and a signal every kernel thread of the process blocks but the call's mask unblocks
// stays pending while the call is parked (it is delivered by the next real call that unblocks
// it: the zero-timeout retry after a wake-up, or the call's last one at its timeout).
//
// Not wrapped, and so never interrupting a parked call: the synchronous signals (SIGSEGV,
// SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGSYS, SIGABRT: raised by the faulting thread itself,
// which is running, not parked); SIG_DFL and SIG_IGN; the Swift runtime's crash backtracer
// (libswiftCore: the process is ending); the runtime's own thread-dump handler (CUThreads'
// dump_signal.c installs it past the jacket, with __sigaction: a diagnostic must not disturb
// the program); and handlers installed past the jacket's sigaction: the rt_sigaction system
// call itself, sigset(3) and other paths inside the C library. A call that parked before a
// handler was installed is not armed for it. A handler that the program's own signal mask
// keeps from running is never stamped: nothing to interrupt for. Two threads changing one
// signal's handler at once race here as they do in the kernel (the table and the kernel may
// then disagree on which one won); a trampoline that runs meanwhile calls one of the two.
//
// Rejected designs:
//   * signalfd: the runtime would read the signals itself, so the program's handlers would
//     not run unless the jacket called them from the reactor — outside signal context, at
//     another time, on another stack — and the signals would have to be blocked in every kernel
//     thread of the process, which changes what the program and its libraries see (sigwait, a
//     child's inherited mask).
//   * Stealing the signal: the jacket's handler only records it and the runtime runs the
//     program's handler later, at a safe point. The handler then no longer runs when the
//     signal arrives (a SIGSEGV-style synchronous use, a handler that longjmps, async-signal
//     timing the program relies on), and a program with no user thread waiting would see it
//     late for nothing.
//   * SA_RESTART everywhere (rewriting the program's flags) or ignoring signals (the previous
//     version): the first changes the real calls' behaviour for code off user threads; both
//     leave a parked poll deaf to a handler, so a main loop waiting for a flag never looks.
//   * Reading SA_RESTART back with sigaction(sig, NULL, …) when the wait ends: the disposition
//     may have changed meanwhile (SA_RESETHAND resets it when the signal arrives), and the wait
//     would still need to be woken: the bell is needed either way, and the trampoline knows the
//     flags the handler actually ran with.
//   * Waking only the reactors (each worker's idle epoll_wait returns EINTR) and letting the
//     runtime find the parked jacketed calls: a signal whose handler runs on a worker that is
//     running a user thread interrupts no epoll_wait, and the scheduler would need to know the
//     jacket's rules; the bell reaches every worker, running or idle.
//   * A bell in every wait: a temporary epoll set per park costs four system calls more; it is
//     paid only by calls that an installed handler could interrupt.
#include "jacket_internal.h"

#include <dlfcn.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

/// Signals 1 … 64; bit s - 1 of the masks below is signal s.
#define JACKET_SIGNALS 65

static int (*real_sigaction)(int, const struct sigaction *, struct sigaction *);

/// The program's own handler of each signal (sa_handler or sa_sigaction, as it installed it)
/// and its flags; the kernel has the trampoline.
static void *jacket_handler[JACKET_SIGNALS];
static int jacket_handler_flags[JACKET_SIGNALS];
/// The last handler of each signal found to be no crash reporter (jacket_wraps).
static void *jacket_vetted[JACKET_SIGNALS];
/// Signals whose handler is the trampoline; of those, the ones installed with SA_RESTART.
static uint64_t jacket_wrapped, jacket_restarting;
/// The signals that signal() installs without SA_RESTART (siginterrupt), as the C library keeps them.
static uint64_t jacket_interrupting_signal;

/// Bumped once per handler run; each signal's stamp is the generation of its last run (of its
/// last run without SA_RESTART, in the second array).
static uint64_t jacket_generation;
static uint64_t jacket_stamp[JACKET_SIGNALS], jacket_stamp_interrupting[JACKET_SIGNALS];
/// The bell: an eventfd written after every handler, watched by every armed wait.
static int jacket_bell = -1;

static inline uint64_t jacket_signal_bit(int sig) { return UINT64_C(1) << (sig - 1); }

static void jacket_resolve_sigaction(void) {
    if (!real_sigaction) real_sigaction = (__typeof__(real_sigaction))dlsym(RTLD_NEXT, "sigaction");
}

void jacket_signal_install(void) {
    jacket_resolve_sigaction();
    if (jacket_bell < 0) jacket_bell = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}

static void jacket_trampoline(int sig, siginfo_t *info, void *context) {
    void *handler = __atomic_load_n(&jacket_handler[sig], __ATOMIC_ACQUIRE);
    int flags = __atomic_load_n(&jacket_handler_flags[sig], __ATOMIC_RELAXED);
    if (flags & SA_RESETHAND) {  // the kernel has reset its disposition to SIG_DFL already
        __atomic_store_n(&jacket_handler[sig], (void *)SIG_DFL, __ATOMIC_RELEASE);
        __atomic_fetch_and(&jacket_wrapped, ~jacket_signal_bit(sig), __ATOMIC_RELAXED);
    }
    if (flags & SA_SIGINFO) {
        ((void (*)(int, siginfo_t *, void *))handler)(sig, info, context);
    } else if (handler != (void *)SIG_DFL && handler != (void *)SIG_IGN) {
        ((void (*)(int))handler)(sig);
    }
    int saved_errno = errno;
    uint64_t generation = __atomic_add_fetch(&jacket_generation, 1, __ATOMIC_SEQ_CST);
    __atomic_store_n(&jacket_stamp[sig], generation, __ATOMIC_RELEASE);
    if (!(flags & SA_RESTART)) __atomic_store_n(&jacket_stamp_interrupting[sig], generation, __ATOMIC_RELEASE);
    int bell = __atomic_load_n(&jacket_bell, __ATOMIC_ACQUIRE);
    if (bell >= 0) {
        uint64_t one = 1;
        long n = syscall(SYS_write, bell, &one, sizeof one);  // the system call: never the jacket's write
        (void)n;
    }
    errno = saved_errno;
}

/// Whether a handler of `sig` is installed as the trampoline: an asynchronous signal, a real
/// handler, not the Swift runtime's crash backtracer.
static int jacket_wraps(int sig, const struct sigaction *action) {
    switch (sig) {
    case SIGSEGV: case SIGBUS: case SIGILL: case SIGFPE: case SIGTRAP: case SIGSYS: case SIGABRT:
    case SIGKILL: case SIGSTOP:
        return 0;
    default: break;
    }
    void *handler = (action->sa_flags & SA_SIGINFO) ? (void *)action->sa_sigaction : (void *)action->sa_handler;
    if (handler == (void *)SIG_DFL || handler == (void *)SIG_IGN || handler == (void *)SIG_ERR) return 0;
    // A handler that installs itself again (System V style, often from inside the handler,
    // after SA_RESETHAND): no dladdr, which takes the dynamic loader's lock and is not
    // async-signal-safe.
    if (__atomic_load_n(&jacket_vetted[sig], __ATOMIC_ACQUIRE) == handler) return 1;
    Dl_info info;
    if (dladdr(handler, &info) != 0 && info.dli_fname && strstr(info.dli_fname, "libswiftCore")) return 0;
    __atomic_store_n(&jacket_vetted[sig], handler, __ATOMIC_RELEASE);
    return 1;
}

int sigaction(int sig, const struct sigaction *action, struct sigaction *old) {
    if (__builtin_expect(!real_sigaction, 0)) jacket_resolve_sigaction();
    if (sig <= 0 || sig >= JACKET_SIGNALS) return real_sigaction(sig, action, old);
    void *previous = __atomic_load_n(&jacket_handler[sig], __ATOMIC_ACQUIRE);
    int previous_flags = __atomic_load_n(&jacket_handler_flags[sig], __ATOMIC_RELAXED);
    struct sigaction trampoline, kernel_old;
    const struct sigaction *install = action;
    if (action && jacket_wraps(sig, action)) {
        trampoline = *action;
        trampoline.sa_sigaction = jacket_trampoline;
        trampoline.sa_flags |= SA_SIGINFO;
        // The table first: a signal that arrives once the kernel has the trampoline finds it.
        __atomic_store_n(&jacket_handler_flags[sig], action->sa_flags, __ATOMIC_RELAXED);
        __atomic_store_n(&jacket_handler[sig],
                         (action->sa_flags & SA_SIGINFO) ? (void *)action->sa_sigaction : (void *)action->sa_handler,
                         __ATOMIC_RELEASE);
        install = &trampoline;
    }
    int rc = real_sigaction(sig, install, &kernel_old);
    if (rc != 0) {
        if (install == &trampoline) {  // refused (EINVAL): the table keeps the previous handler
            __atomic_store_n(&jacket_handler_flags[sig], previous_flags, __ATOMIC_RELAXED);
            __atomic_store_n(&jacket_handler[sig], previous, __ATOMIC_RELEASE);
        }
        return rc;
    }
    if (action) {
        uint64_t bit = jacket_signal_bit(sig);
        if (install == &trampoline) {
            if (action->sa_flags & SA_RESTART) __atomic_fetch_or(&jacket_restarting, bit, __ATOMIC_RELAXED);
            else __atomic_fetch_and(&jacket_restarting, ~bit, __ATOMIC_RELAXED);
            __atomic_fetch_or(&jacket_wrapped, bit, __ATOMIC_RELEASE);
        } else {
            __atomic_fetch_and(&jacket_wrapped, ~bit, __ATOMIC_RELEASE);
        }
    }
    if (old) {
        *old = kernel_old;
        if ((kernel_old.sa_flags & SA_SIGINFO) && kernel_old.sa_sigaction == jacket_trampoline) {
            // The program's own handler, as it installed it.
            old->sa_flags = (kernel_old.sa_flags & ~SA_SIGINFO) | (previous_flags & SA_SIGINFO);
            if (previous_flags & SA_SIGINFO) old->sa_sigaction = (void (*)(int, siginfo_t *, void *))previous;
            else old->sa_handler = (void (*)(int))previous;
        }
    }
    return 0;
}

/// signal(3) with the C library's BSD semantics (SA_RESTART unless siginterrupt said otherwise,
/// the signal blocked in its own handler), through the jacket's sigaction.
static __sighandler_t jacket_signal(int sig, __sighandler_t handler, int flags, int block_itself) {
    if (handler == SIG_ERR || sig <= 0 || sig >= JACKET_SIGNALS) {
        errno = EINVAL;
        return SIG_ERR;
    }
    struct sigaction action, old;
    memset(&action, 0, sizeof action);
    action.sa_handler = handler;
    sigemptyset(&action.sa_mask);
    if (block_itself) sigaddset(&action.sa_mask, sig);
    action.sa_flags = flags;
    if (sigaction(sig, &action, &old) < 0) return SIG_ERR;
    return old.sa_handler;
}

__sighandler_t signal(int sig, __sighandler_t handler) {
    int interrupting = sig > 0 && sig < JACKET_SIGNALS &&
                       (__atomic_load_n(&jacket_interrupting_signal, __ATOMIC_RELAXED) & jacket_signal_bit(sig));
    return jacket_signal(sig, handler, interrupting ? 0 : SA_RESTART, 1);
}

__sighandler_t bsd_signal(int sig, __sighandler_t handler) { return signal(sig, handler); }

__sighandler_t sysv_signal(int sig, __sighandler_t handler) {
    return jacket_signal(sig, handler, SA_RESETHAND | SA_NODEFER, 0);
}

int siginterrupt(int sig, int interrupt) {
    struct sigaction action;
    if (sig <= 0 || sig >= JACKET_SIGNALS || sigaction(sig, NULL, &action) < 0) {
        errno = EINVAL;
        return -1;
    }
    if (interrupt) {
        __atomic_fetch_or(&jacket_interrupting_signal, jacket_signal_bit(sig), __ATOMIC_RELAXED);
        action.sa_flags &= ~SA_RESTART;
    } else {
        __atomic_fetch_and(&jacket_interrupting_signal, ~jacket_signal_bit(sig), __ATOMIC_RELAXED);
        action.sa_flags |= SA_RESTART;
    }
    return sigaction(sig, &action, NULL);
}

// MARK: - The waiting side

void jacket_signal_watch_begin(jacket_signal_watch *watch, const sigset_t *mask, int restarts) {
    watch->generation = __atomic_load_n(&jacket_generation, __ATOMIC_SEQ_CST);
    watch->restarts = restarts;
    watch->blocked = 0;
    if (mask) {
        for (int sig = 1; sig < JACKET_SIGNALS; sig++) {
            if (sigismember(mask, sig) == 1) watch->blocked |= jacket_signal_bit(sig);
        }
    }
}

int jacket_signal_armed(const jacket_signal_watch *watch) {
    if (!watch || jacket_bell < 0) return 0;
    uint64_t handlers = __atomic_load_n(&jacket_wrapped, __ATOMIC_ACQUIRE);
    if (watch->restarts) handlers &= ~__atomic_load_n(&jacket_restarting, __ATOMIC_RELAXED);
    return (handlers & ~watch->blocked) != 0;
}

int jacket_signal_interrupted(const jacket_signal_watch *watch) {
    if (!watch || __atomic_load_n(&jacket_generation, __ATOMIC_SEQ_CST) == watch->generation) return 0;
    const uint64_t *stamps = watch->restarts ? jacket_stamp_interrupting : jacket_stamp;
    for (int sig = 1; sig < JACKET_SIGNALS; sig++) {
        if (watch->blocked & jacket_signal_bit(sig)) continue;
        if (__atomic_load_n(&stamps[sig], __ATOMIC_ACQUIRE) > watch->generation) return 1;
    }
    return 0;
}

/// The descriptors a temporary epoll set reports ready, the bell's edge consumed: 1 when one
/// other than the bell is ready.
static int jacket_set_ready(int set) {
    struct epoll_event events[16];
    int n = epoll_wait(set, events, 16, 0);
    for (int i = 0; i < n; i++) {
        if (events[i].data.fd != jacket_bell) return 1;
    }
    return 0;
}

int jacket_park_set(int set, int shown, int kind, uint64_t deadline, const jacket_signal_watch *watch) {
    if (!jacket_signal_armed(watch)) return jacket_runtime->wait_fd(set, shown, UTHREADS_JACKET_READ, kind, deadline);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.fd = jacket_bell};
    if (epoll_ctl(set, EPOLL_CTL_ADD, jacket_bell, &ev) < 0) return errno;
    // A bell that rang before is readable: the edge its ADD reports is consumed here.
    if (jacket_set_ready(set)) return 0;
    while (1) {
        // A signal first: woken by both, the call cannot tell which came first, and a caller
        // that installed a handler without SA_RESTART retries an EINTR anyway.
        if (jacket_signal_interrupted(watch)) return EINTR;
        int e = jacket_runtime->wait_fd(set, shown, UTHREADS_JACKET_READ, kind, deadline);
        if (e != 0) return jacket_signal_interrupted(watch) ? EINTR : e;
        if (jacket_signal_interrupted(watch)) return EINTR;
        if (jacket_set_ready(set)) return 0;  // else the bell only: a signal not for this call
    }
}

/// A temporary epoll set for `fd` (level-triggered, for `direction`), parked on until it is
/// ready, the deadline passes or a signal interrupts the call.
static int jacket_park_fd_armed(int fd, int direction, int kind, uint64_t deadline, const jacket_signal_watch *watch) {
    int set = epoll_create1(EPOLL_CLOEXEC);
    if (set < 0) return errno;
    struct epoll_event ev = {.events = direction == UTHREADS_JACKET_WRITE ? EPOLLOUT : EPOLLIN, .data.fd = fd};
    int e;
    if (epoll_ctl(set, EPOLL_CTL_ADD, fd, &ev) < 0) {
        e = errno;  // EPERM (a regular file: the caller makes the real call), EBADF, …
    } else {
        e = jacket_park_set(set, fd, kind, deadline, watch);
    }
    if (jacket_runtime->closing(set) < 0) REAL(close)(set);  // the runtime closes it on a user thread
    return e;
}

int jacket_park_fd(int fd, int direction, int kind, uint64_t deadline, const jacket_signal_watch *watch) {
    if (__builtin_expect(!jacket_signal_armed(watch), 1)) return jacket_runtime->wait_fd(fd, -1, direction, kind, deadline);
    if (jacket_signal_interrupted(watch)) return EINTR;
    return jacket_park_fd_armed(fd, direction, kind, deadline, watch);
}

int jacket_park_time(uint64_t deadline, const jacket_signal_watch *watch) {
    if (__builtin_expect(!jacket_signal_armed(watch), 1)) {
        int e = jacket_runtime->sleep_until(deadline);
        return e == 0 ? ETIMEDOUT : e;
    }
    // The bell alone: it is never closed, so every reactor may keep it; a bell that rang
    // before wakes the first wait of each worker once (its registration reports it readable).
    while (1) {
        if (jacket_signal_interrupted(watch)) return EINTR;
        int e = jacket_runtime->wait_fd(jacket_bell, -1, UTHREADS_JACKET_READ, UTHREADS_JACKET_KIND_SLEEP, deadline);
        if (e != 0) return jacket_signal_interrupted(watch) ? EINTR : e;
    }
}
