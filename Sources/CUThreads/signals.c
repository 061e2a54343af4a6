// signals.c — stack overflow is reported, not silent.
//
// A user thread that runs off the bottom of its stack touches the PROT_NONE guard page below
// it and the kernel raises SIGSEGV. The default outcome, a bare "Segmentation fault" with a
// backtrace through a stack that no longer exists, tells the user nothing. This handler runs on
// an alternate signal stack (the faulting stack is unusable), recognises a fault in or just
// below the running user thread's guard page, writes a report naming the thread with write(2)
// only (async-signal-safe, no malloc, survives stdout on a pipe), and aborts. Every other
// fault is passed on, unchanged, to the handler that was installed before (Swift's backtracer,
// a sanitizer, or the default action), so this handler never hides a real crash.
#define _GNU_SOURCE
#include "cuthreads.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ALT_STACK_SIZE (64 * 1024)
/// A large frame can jump past a 4 KiB guard page (a "stack clash"); faults this far below
/// the usable stack still count as an overflow of the running thread.
#define OVERFLOW_SLACK (256 * 1024)

static struct sigaction previous_segv, previous_bus;
static pthread_once_t install_once = PTHREAD_ONCE_INIT;
static int install_error;
static __thread int alt_stack_ready;

void uthreads_write_stderr(const char *message) {
    size_t left = strlen(message);
    while (left > 0) {
        ssize_t n = write(2, message, left);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        message += n;
        left -= (size_t)n;
    }
}

// Minimal formatting into a caller-provided buffer: no locale, no malloc.
typedef struct { char text[512]; size_t len; } line_t;
static void put(line_t *l, const char *s) {
    while (*s && l->len + 1 < sizeof l->text) l->text[l->len++] = *s++;
    l->text[l->len] = 0;
}
static void put_dec(line_t *l, uint64_t v) {
    char buf[24]; int i = 23; buf[i] = 0;
    do { buf[--i] = (char)('0' + v % 10); v /= 10; } while (v && i > 0);
    put(l, buf + i);
}
static void put_hex(line_t *l, uint64_t v) {
    char buf[24]; int i = 23; buf[i] = 0;
    do { buf[--i] = "0123456789abcdef"[v & 15]; v >>= 4; } while (v && i > 2);
    buf[--i] = 'x'; buf[--i] = '0';
    put(l, buf + i);
}
static void put_thread(line_t *l, const uthreads_tcb *t) {
    put(l, "user thread #"); put_dec(l, t->id);
    put(l, " \""); char name[UTHREADS_NAME_MAX + 1]; memcpy(name, t->name, UTHREADS_NAME_MAX);
    name[UTHREADS_NAME_MAX] = 0; put(l, name); put(l, "\"");
}
static void put_stack(line_t *l, const uthreads_tcb *t) {
    put(l, "stack "); put_dec(l, (uint64_t)(t->stack_hi - t->stack_lo)); put(l, " bytes [");
    put_hex(l, (uint64_t)(uintptr_t)t->stack_lo); put(l, ", ");
    put_hex(l, (uint64_t)(uintptr_t)t->stack_hi); put(l, ")");
}

static void chain(int sig, siginfo_t *info, void *context) {
    struct sigaction *old = sig == SIGBUS ? &previous_bus : &previous_segv;
    if (old->sa_flags & SA_SIGINFO) {
        if (old->sa_sigaction) { old->sa_sigaction(sig, info, context); return; }
    } else if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN && old->sa_handler) {
        old->sa_handler(sig);
        return;
    }
    // Default action: reinstall it and return; the faulting instruction runs again and the
    // kernel delivers the signal with its default disposition (core dump).
    signal(sig, SIG_DFL);
}

static void fault_handler(int sig, siginfo_t *info, void *context) {
    int saved_errno = errno;
    uthreads_tcb *t = uthreads_get_current();
    uintptr_t addr = (uintptr_t)info->si_addr;
    if (t && t->stack_mode == UTHREADS_STACK_GUARDED && t->stack_lo) {
        uintptr_t lo = (uintptr_t)t->stack_lo;
        uintptr_t guard_lo = lo - t->guard_size;
        uintptr_t floor = guard_lo > OVERFLOW_SLACK ? guard_lo - OVERFLOW_SLACK : 0;
        if (addr >= floor && addr < lo) {
            line_t l = {{0}, 0};
            put(&l, "\nuthreads: stack overflow in ");
            put_thread(&l, t);
            put(&l, ": fault at "); put_hex(&l, addr);
            put(&l, addr >= guard_lo ? " in the guard page below its " : " below its guard page, ");
            put_stack(&l, t);
            put(&l, ". Give it a larger stack: UThread(stackSize:) or Configuration.stackSize.\n");
            uthreads_write_stderr(l.text);
            signal(SIGABRT, SIG_DFL);
            abort();
        }
    }
    errno = saved_errno;
    chain(sig, info, context);
}

void uthreads_report_canary(const uthreads_tcb *t) {
    line_t l = {{0}, 0};
    put(&l, "\nuthreads: stack overflow in ");
    put_thread(&l, t);
    put(&l, ": the canary at the limit of its dense-mode ");
    put_stack(&l, t);
    put(&l, " was overwritten (detected at a switch). Give it a larger stack, or use guarded stacks.\n");
    uthreads_write_stderr(l.text);
    signal(SIGABRT, SIG_DFL);
    abort();
}

static void install_process_handler(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = fault_handler;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&action.sa_mask);
    if (sigaction(SIGSEGV, &action, &previous_segv) != 0 ||
        sigaction(SIGBUS, &action, &previous_bus) != 0) {
        install_error = errno;
    }
}

int uthreads_install_fault_handler(void) {
    pthread_once(&install_once, install_process_handler);
    if (install_error) return install_error;
    if (alt_stack_ready) return 0;
    stack_t current;
    if (sigaltstack(NULL, &current) == 0 && !(current.ss_flags & SS_DISABLE) &&
        current.ss_size >= ALT_STACK_SIZE / 2) {
        alt_stack_ready = 1;  // someone (the Swift runtime, a sanitizer) already gave one
        return 0;
    }
    // One per kernel thread that runs a runtime; lives as long as the kernel thread.
    stack_t alt;
    alt.ss_sp = malloc(ALT_STACK_SIZE);
    if (!alt.ss_sp) return ENOMEM;
    alt.ss_size = ALT_STACK_SIZE;
    alt.ss_flags = 0;
    if (sigaltstack(&alt, NULL) != 0) { int e = errno; free(alt.ss_sp); return e; }
    alt_stack_ready = 1;
    return 0;
}
