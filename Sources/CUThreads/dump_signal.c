// dump_signal.c — "dump your threads" on a signal (SIGQUIT by default), Go- and Java-style.
//
// The handler only counts: it increments a process-wide request counter with an atomic add,
// which is async-signal-safe (and rings the registered bells, below). It never reads the thread table, formats or writes: a signal can
// land in the middle of a switch or of malloc. Each runtime remembers the last count it
// answered and, at its next safe point (every 64th yield, or its idle loop, whose futex wait or
// epoll_wait the signal or a bell below interrupts), builds the dump with ordinary Swift code and
// writes it to stderr with write(2). Nothing is added to the switch path.
//
// The handler is installed only over the default disposition or over the Swift runtime's crash
// backtracer (which claims SIGQUIT in every Swift program on Linux and turns it into a crash
// report and an exit): a program that installed its own handler for the signal keeps it
// (uthreads_install_dump_signal returns EBUSY), and an ignored signal stays ignored (ENOTSUP). When no runtime is live, the previous action is
// put back and the signal raised again, as if the handler were not there.
//
// Which kernel thread runs the handler is the kernel's choice: any thread of the process that
// does not block the signal (the main thread first, if it does not). A runtime idle in a long
// kernel wait on another kernel thread would not notice the request until its next event. So a
// runtime registers *bells*, of two kinds, for every kernel wait its idle loop makes:
//   * an eventfd in its pollers' epoll sets (an M:N runtime registers each worker's
//     completion-mailbox eventfd, a one-worker runtime its reactor's once it has one; the
//     reactor drains it on every event, so a spurious ring costs one empty pass): the handler
//     writes 1 to it;
//   * a futex word (a one-worker runtime's inbox, Scheduler/ForeignCancels.swift, whose idle
//     sleep without a reactor is a FUTEX_WAIT on it): the handler increments it and wakes its
//     sleepers, as a post to the inbox does.
// Both are async-signal-safe (an atomic add and a system call). A bell is unregistered before
// its descriptor is closed or its word freed, and `uthreads_dump_bell_remove` waits until no
// handler that may have read the slot is still running, so the handler never writes to a
// closed (or reused) descriptor number or to freed memory.
#define _GNU_SOURCE
#include "cuthreads.h"

#include <dlfcn.h>
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/// The C library's sigaction under its own name, which an interposer of sigaction (the
/// jacket, Sources/UserThreadsJacket/jacket_signal.c) does not define: the dump handler is the
/// runtime's diagnostic, not one of the program's handlers, so it must not interrupt the
/// program's parked calls the way the program's own handlers do.
extern int __sigaction(int, const struct sigaction *, struct sigaction *);

static uint64_t dump_requests;
static struct sigaction previous[65];

/// Registered bells (0: a free slot): an eventfd as (descriptor + 1) << 1, a futex word as its
/// address | 1 (a 32-bit word is 4-aligned, so the low bit is free).
static uintptr_t bells[UTHREADS_DUMP_BELLS];
/// Handlers between their first and last look at `bells`.
static int handlers_ringing;

static void ring_bells(void) {
    __atomic_add_fetch(&handlers_ringing, 1, __ATOMIC_SEQ_CST);
    for (int i = 0; i < UTHREADS_DUMP_BELLS; i++) {
        uintptr_t bell = __atomic_load_n(&bells[i], __ATOMIC_SEQ_CST);
        if (bell == 0) continue;
        if (bell & 1) {
            uint32_t *word = (uint32_t *)(bell & ~(uintptr_t)1);
            __atomic_fetch_add(word, 1, __ATOMIC_RELEASE);
            syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
        } else {
            int fd = (int)(bell >> 1) - 1;
            uint64_t one = 1;
            ssize_t n = syscall(SYS_write, fd, &one, sizeof one);  // EAGAIN (counter full) still wakes the poller
            (void)n;
        }
    }
    __atomic_sub_fetch(&handlers_ringing, 1, __ATOMIC_SEQ_CST);
}

static void dump_handler(int sig) {
    int saved_errno = errno;
    if (uthreads_registry_live_count() == 0 && sig > 0 && sig < 65) {
        __sigaction(sig, &previous[sig], NULL);  // async-signal-safe
        raise(sig);
    } else {
        __atomic_add_fetch(&dump_requests, 1, __ATOMIC_RELEASE);
        ring_bells();
    }
    errno = saved_errno;
}

static int add_bell(uintptr_t bell) {
    for (int i = 0; i < UTHREADS_DUMP_BELLS; i++) {
        uintptr_t expected = 0;
        if (__atomic_compare_exchange_n(&bells[i], &expected, bell, 0, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) return i;
    }
    return -1;  // every slot taken: this runtime wakes only for a signal delivered to its own thread
}

int uthreads_dump_bell_add(int fd) {
    if (fd < 0) return -1;
    return add_bell(((uintptr_t)fd + 1) << 1);
}

int uthreads_dump_bell_add_futex(uint32_t *word) {
    if (!word || ((uintptr_t)word & 3) != 0) return -1;
    return add_bell((uintptr_t)word | 1);
}

void uthreads_dump_bell_remove(int slot) {
    if (slot < 0 || slot >= UTHREADS_DUMP_BELLS) return;
    __atomic_store_n(&bells[slot], 0, __ATOMIC_SEQ_CST);
    // A handler that read the slot before the store may still write to the descriptor: wait for
    // it (a few instructions) before the caller may close it. Seq-cst: a handler that starts
    // after this load reads the cleared slot.
    while (__atomic_load_n(&handlers_ringing, __ATOMIC_SEQ_CST) != 0) sched_yield();
}

/// Whether `action` is the Swift runtime's backtracer (its handler lives in libswiftCore).
static int is_swift_backtracer(const struct sigaction *action) {
    void *handler = (action->sa_flags & SA_SIGINFO) ? (void *)action->sa_sigaction : (void *)action->sa_handler;
    Dl_info info;
    if (!handler || handler == (void *)SIG_IGN || dladdr(handler, &info) == 0 || !info.dli_fname) return 0;
    return strstr(info.dli_fname, "libswiftCore") != NULL;
}

int uthreads_install_dump_signal(int sig) {
    if (sig <= 0 || sig >= 65) return EINVAL;
    struct sigaction old;
    if (sigaction(sig, NULL, &old) != 0) return errno;
    // The runtime's kernel thread takes the signal even if it inherited a mask blocking it
    // (a process spawned from a thread that blocks SIGQUIT does): an idle scheduler is woken
    // from its nanosleep or epoll_wait only by a signal delivered to its own kernel thread.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    if (!(old.sa_flags & SA_SIGINFO) && old.sa_handler == dump_handler) return 0;
    // An ignored signal stays ignored (a shell starts background jobs with SIGQUIT ignored).
    if (!(old.sa_flags & SA_SIGINFO) && old.sa_handler == SIG_IGN) return ENOTSUP;
    int is_default = !(old.sa_flags & SA_SIGINFO) && old.sa_handler == SIG_DFL;
    if (!is_default && !is_swift_backtracer(&old)) return EBUSY;
    previous[sig] = old;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = dump_handler;
    // SA_RESTART keeps the program's own blocking calls going; nanosleep and epoll_wait return
    // EINTR after a handler regardless (signal(7)), which is what wakes an idle scheduler.
    action.sa_flags = SA_RESTART;
    sigemptyset(&action.sa_mask);
    // Two runtimes may race to install: both install the same handler, harmless.
    return __sigaction(sig, &action, NULL) == 0 ? 0 : errno;
}

uint64_t uthreads_dump_requests(void) {
    return __atomic_load_n(&dump_requests, __ATOMIC_ACQUIRE);
}
