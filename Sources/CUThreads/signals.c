// signals.c — stack overflow is reported, not silent.
//
// A user thread that runs off the bottom of its stack touches the PROT_NONE guard region below
// it and the kernel raises SIGSEGV. The default outcome, a bare "Segmentation fault" with a
// backtrace through a stack that no longer exists, tells the user nothing. This handler runs on
// an alternate signal stack (the faulting stack is unusable), decides whether the running user
// thread overflowed, writes a report naming the thread, its stack and the fault with write(2)
// only (async-signal-safe, no malloc, survives stdout on a pipe), and aborts. Every other
// fault is passed on, unchanged, to the handler that was installed before (Swift's backtracer,
// a sanitizer, or the default action), so this handler never hides a real crash.
//
// Which thread: the per-kernel-thread current (uthreads_get_current). The kernel delivers
// SIGSEGV to the kernel thread that faulted, so under M:N each worker finds its own running
// thread. The scheduler and the idle loop run with current = NULL: their faults are passed on.
//
// Overflow, or another crash? Two witnesses, either suffices:
//   - the fault address lies in the thread's guard region (guarded mode);
//   - the interrupted stack pointer (from the ucontext) lies below the thread's stack, by at
//     most uthreads_overflow_reach (past the guard, or through its slab). Only an overflow moves it there, so this is the stronger witness: it
//     names a frame that jumped the guard and faulted further down (the address alone could be
//     any wild pointer), and it names an overflow in dense mode, where there is no guard between
//     slots: the recursion writes through the slots below and faults at the guard under the slab
//     (StackPool's essay), far below its own slot. A stack pointer inside the alternate signal
//     stack is not an overflow (a fault in another signal handler).
// A dense thread whose canary is already overwritten when it faults is reported as an overflow
// too (the fault is most likely its own corruption of the slot below).
// The report also names whose slot the fault address is in (scanning the tables of the
// registered runtimes, registry.c), since in dense mode that is a neighbour's stack.
#define _GNU_SOURCE
#include "cuthreads.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <ucontext.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define ALT_STACK_SIZE (64 * 1024)
/// How far below the usable stack the stack pointer still counts as an overflow of the running
/// thread, at least: past the guard region (a frame far larger than it). Dense mode reaches
/// further (uthreads_overflow_reach).
#define OVERFLOW_REACH ((uintptr_t)1 << 30)

/// The live runtimes' tables (registry.c), for naming the owner of a faulting address.
extern uthreads_registry_entry uthreads_runtime_registry[UTHREADS_REGISTRY_SLOTS];

static struct sigaction previous_segv, previous_bus;
static pthread_once_t install_once = PTHREAD_ONCE_INIT;
static int install_error;
static __thread int alt_stack_ready;

void uthreads_write_stderr(const char *message) {
    size_t left = strlen(message);
    while (left > 0) {
        // The system call itself, not the C library's write: an interposer of write (the
        // jacket, any LD_PRELOADed one) would see a call on a user thread and could park it,
        // and this runs in fault handlers on that thread's stack, where nothing may park.
        ssize_t n = syscall(SYS_write, 2, message, left);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        message += n;
        left -= (size_t)n;
    }
}

// Minimal formatting into a caller-provided buffer: no locale, no malloc.
typedef struct { char text[1024]; size_t len; } line_t;
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
static void put_worker(line_t *l, const uthreads_tcb *t) {
    if (t->worker >= 0) { put(l, " on M:N worker "); put_dec(l, (uint64_t)t->worker); }
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

static uintptr_t interrupted_sp(const void *context) {
    const ucontext_t *uc = context;
#if defined(__x86_64__)
    return (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
#elif defined(__aarch64__)
    return (uintptr_t)uc->uc_mcontext.sp;
#else
    (void)uc;
    return 0;
#endif
}

// A dense thread's recursion writes down through every slot below its own and faults in the
// guard region under the slab: from the top slot, that is UTHREADS_DENSE_SLAB_SLOTS - 1 slots,
// the canary page and a frame into the guard below (1 GiB does not cover it once a slot is
// larger than 1 MiB: the stack pointer would be out of reach and only a canary the recursion
// happened to overwrite would name the thread).
uintptr_t uthreads_overflow_reach(const uthreads_tcb *t) {
    if (t->stack_mode != UTHREADS_STACK_DENSE || !t->stack_lo) return OVERFLOW_REACH;
    uintptr_t slot = (uintptr_t)(t->stack_hi - t->stack_lo) + 64;
    uintptr_t slab = slot * UTHREADS_DENSE_SLAB_SLOTS + 2 * (uintptr_t)UTHREADS_GUARD_REGION_SIZE;
    return slab > OVERFLOW_REACH ? slab : OVERFLOW_REACH;
}

static int below(uintptr_t x, uintptr_t lo, uintptr_t reach) { return x < lo && lo - x <= reach; }

static int on_alt_stack(uintptr_t sp) {
    stack_t ss;
    if (sigaltstack(NULL, &ss) != 0 || (ss.ss_flags & SS_DISABLE)) return 0;
    return sp >= (uintptr_t)ss.ss_sp && sp < (uintptr_t)ss.ss_sp + ss.ss_size;
}

static int canary_intact(const uthreads_tcb *t) {
    return *(const volatile uint64_t *)(const void *)(t->stack_lo - 16) == UTHREADS_CANARY;
}

/// The live thread, other than `self`, whose stack (with the canary words at its top) holds
/// `addr`, from the registered runtimes' tables; NULL when none does. Reads only.
static const uthreads_tcb *slot_owner(uintptr_t addr, const uthreads_tcb *self) {
    for (int i = 0; i < UTHREADS_REGISTRY_SLOTS; i++) {
        const uthreads_table_view *view = __atomic_load_n(&uthreads_runtime_registry[i].table, __ATOMIC_ACQUIRE);
        if (!view || !view->chunks) continue;
        for (uint64_t c = 0; c < view->chunk_count; c++) {
            const uthreads_tcb *rows = view->chunks[c];
            if (!rows) continue;
            for (uint64_t r = 0; r < view->chunk_size; r++) {
                const uthreads_tcb *t = &rows[r];
                if (t == self || t->state == UTHREADS_STATE_FREE || t->state == UTHREADS_STATE_FINISHED) continue;
                if (t->stack_mode == UTHREADS_STACK_KERNEL || !t->stack_lo) continue;
                uintptr_t lo = (uintptr_t)t->stack_lo - (uintptr_t)t->guard_size;
                uintptr_t hi = (uintptr_t)t->stack_hi + (t->stack_mode == UTHREADS_STACK_DENSE ? 64 : 0);
                if (addr >= lo && addr < hi) return t;
            }
        }
    }
    return NULL;
}

static void fault_handler(int sig, siginfo_t *info, void *context) {
    int saved_errno = errno;
    uthreads_tcb *t = uthreads_get_current();
    uintptr_t addr = (uintptr_t)info->si_addr;
    if (t && t->stack_lo && (t->stack_mode == UTHREADS_STACK_GUARDED || t->stack_mode == UTHREADS_STACK_DENSE)) {
        uintptr_t lo = (uintptr_t)t->stack_lo;
        uintptr_t guard_lo = lo - t->guard_size;
        uintptr_t sp = interrupted_sp(context);
        int dense = t->stack_mode == UTHREADS_STACK_DENSE;
        int sp_below = below(sp, lo, uthreads_overflow_reach(t)) && !on_alt_stack(sp);
        int in_guard = !dense && addr >= guard_lo && addr < lo;
        int canary_gone = dense && !canary_intact(t);
        if (in_guard || sp_below || canary_gone) {
            line_t l = {{0}, 0};
            put(&l, "\nuthreads: stack overflow in ");
            put_thread(&l, t);
            put_worker(&l, t);
            put(&l, ": fault at "); put_hex(&l, addr);
            if (in_guard) {
                put(&l, " in the guard pages ("); put_dec(&l, t->guard_size / 1024);
                put(&l, " KiB) below its ");
            } else {
                put(&l, ", stack pointer "); put_hex(&l, sp);
                put(&l, sp_below ? " below its " : " in its ");
                if (dense) put(&l, "dense-mode ");
            }
            put_stack(&l, t);
            if (canary_gone) put(&l, "; its canary is overwritten");
            put(&l, ". Give it a larger stack: UThread(stackSize:) or Configuration.stackSize");
            put(&l, dense ? ", or use guarded stacks.\n" : ".\n");
            uthreads_write_stderr(l.text);
            // Written after the report: the scan reads other runtimes' tables, which another
            // kernel thread may be growing; a fault in it must not cost the report.
            const uthreads_tcb *owner = slot_owner(addr, t);
            if (owner) {
                line_t o = {{0}, 0};
                put(&o, "uthreads: the fault address is in the stack of ");
                put_thread(&o, owner);
                put(&o, ".\n");
                uthreads_write_stderr(o.text);
            }
            signal(SIGABRT, SIG_DFL);
            abort();
        }
    }
    errno = saved_errno;
    chain(sig, info, context);
}

void uthreads_report_dense_overflow(const uthreads_tcb *t, const void *sp) {
    line_t l = {{0}, 0};
    put(&l, "\nuthreads: stack overflow in ");
    put_thread(&l, t);
    put_worker(&l, t);
    if (sp && (const char *)sp < t->stack_lo) {
        put(&l, ": its stack pointer "); put_hex(&l, (uint64_t)(uintptr_t)sp);
        put(&l, " is below its dense-mode ");
    } else {
        put(&l, ": the canary at the limit of its dense-mode ");
    }
    put_stack(&l, t);
    put(&l, sp && (const char *)sp < t->stack_lo ? "" : " was overwritten");
    put(&l, " (detected when it switched out or ended). Give it a larger stack, or use guarded stacks.\n");
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
