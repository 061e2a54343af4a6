// dump_signal.c — "dump your threads" on a signal (SIGQUIT by default), Go- and Java-style.
//
// The handler only counts: it increments a process-wide request counter with an atomic add,
// which is async-signal-safe. It never reads the thread table, formats or writes: a signal can
// land in the middle of a switch or of malloc. Each runtime remembers the last count it
// answered and, at its next safe point (every 64th yield, or its idle loop, whose nanosleep or
// epoll_wait the signal interrupts with EINTR), builds the dump with ordinary Swift code and
// writes it to stderr with write(2). Nothing is added to the switch path.
//
// The handler is installed only over the default disposition or over the Swift runtime's crash
// backtracer (which claims SIGQUIT in every Swift program on Linux and turns it into a crash
// report and an exit): a program that installed its own handler for the signal keeps it
// (uthreads_install_dump_signal returns EBUSY), and an ignored signal stays ignored (ENOTSUP). When no runtime is live, the previous action is
// put back and the signal raised again, as if the handler were not there.
#define _GNU_SOURCE
#include "cuthreads.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>

static uint64_t dump_requests;
static struct sigaction previous[65];

static void dump_handler(int sig) {
    int saved_errno = errno;
    if (uthreads_registry_live_count() == 0 && sig > 0 && sig < 65) {
        sigaction(sig, &previous[sig], NULL);  // async-signal-safe
        raise(sig);
    } else {
        __atomic_add_fetch(&dump_requests, 1, __ATOMIC_RELEASE);
    }
    errno = saved_errno;
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
    return sigaction(sig, &action, NULL) == 0 ? 0 : errno;
}

uint64_t uthreads_dump_requests(void) {
    return __atomic_load_n(&dump_requests, __ATOMIC_ACQUIRE);
}
