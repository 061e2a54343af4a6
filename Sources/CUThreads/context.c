// context.c — the first frame of a new context, per-kernel-thread pointers, clocks, mincore.
#define _GNU_SOURCE
#include "cuthreads.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <sys/syscall.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <x86intrin.h>
#endif

// uthreads_context_make is inline in cuthreads.h (one call less per spawn).

// MARK: - Per-kernel-thread state (out of line on purpose: see the header)

// initial-exec, like the checkpoint countdown: each accessor is then one %fs-relative move,
// not a call to __tls_get_addr (general dynamic, the default for position-independent code;
// ~8 instructions per access, two to four accesses per spawn+join). These functions stay out
// of line (see the header), so no caller can keep a TLS address across a switch; the header's
// inline forms (`uthreads_get_runtime_here`, `uthreads_set_current_here`) serve only the few
// places it names, where no switch can come between.
__thread void *uthreads_tls_runtime __attribute__((tls_model("initial-exec")));
__thread uthreads_tcb *uthreads_tls_current __attribute__((tls_model("initial-exec")));

__thread int64_t uthreads_checkpoint_countdown __attribute__((tls_model("initial-exec"))) = INT64_MAX / 2;

int32_t uthreads_gettid(void) { return (int32_t)syscall(SYS_gettid); }

__attribute__((noinline)) void *uthreads_get_runtime(void) { return uthreads_tls_runtime; }
__attribute__((noinline)) void uthreads_set_runtime(void *runtime) { uthreads_tls_runtime = runtime; }
__attribute__((noinline)) uthreads_tcb *uthreads_get_current(void) { return uthreads_tls_current; }
__attribute__((noinline)) void uthreads_set_current(uthreads_tcb *tcb) { uthreads_tls_current = tcb; }

intptr_t uthreads_current_tls_offset(void) {
#if defined(__x86_64__)
    char *tp;
    __asm__("movq %%fs:0, %0" : "=r"(tp));  // the TCB's self pointer: the thread pointer
#elif defined(__aarch64__)
    char *tp;
    __asm__("mrs %0, tpidr_el0" : "=r"(tp));
#else
#error "UserThreads: no thread pointer for this architecture"
#endif
    return (intptr_t)((char *)&uthreads_tls_current - tp);
}

// MARK: - Clocks

uint64_t uthreads_ticks(void) { return uthreads_ticks_inline(); }

uint64_t uthreads_monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

// MARK: - Memory

long uthreads_resident_depth(void *lo, void *hi) {
    long page = sysconf(_SC_PAGESIZE);
    uintptr_t start = (uintptr_t)lo & ~(uintptr_t)(page - 1);
    uintptr_t end = ((uintptr_t)hi + (uintptr_t)page - 1) & ~(uintptr_t)(page - 1);
    size_t pages = (end - start) / (size_t)page;
    if (pages == 0) return 0;
    unsigned char small[256];
    unsigned char *vec = pages <= sizeof small ? small : malloc(pages);
    if (!vec) return -ENOMEM;
    if (mincore((void *)start, end - start, vec) != 0) {
        long e = -errno;
        if (vec != small) free(vec);
        return e;
    }
    long depth = 0;
    for (size_t i = 0; i < pages; i++) {
        if (vec[i] & 1) {  // lowest resident page: the deepest the stack has reached
            uintptr_t page_lo = start + i * (size_t)page;
            if (page_lo < (uintptr_t)lo) page_lo = (uintptr_t)lo;
            depth = (long)((uintptr_t)hi - page_lo);
            break;
        }
    }
    if (vec != small) free(vec);
    return depth;
}

// MARK: - ThreadSanitizer fibers

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UTHREADS_TSAN 1
#endif
#endif

#ifdef UTHREADS_TSAN
void *__tsan_get_current_fiber(void);
void *__tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void *fiber);
void __tsan_switch_to_fiber(void *fiber, unsigned flags);

int uthreads_tsan_enabled(void) { return 1; }
void uthreads_tsan_fiber_create(uthreads_tcb *tcb) { tcb->tsan_fiber = __tsan_create_fiber(0); }
void uthreads_tsan_fiber_adopt(uthreads_tcb *tcb) { tcb->tsan_fiber = __tsan_get_current_fiber(); }
void uthreads_tsan_fiber_destroy(uthreads_tcb *tcb) {
    if (tcb->tsan_fiber && tcb->stack_mode != UTHREADS_STACK_KERNEL) __tsan_destroy_fiber(tcb->tsan_fiber);
    tcb->tsan_fiber = 0;
}
__attribute__((no_sanitize("thread")))
void *uthreads_switch_tsan(void **from_sp, uthreads_tcb *to, void *handoff) {
    __tsan_switch_to_fiber(to->tsan_fiber, 0);
    return uthreads_switch(from_sp, to->sp, handoff);
}
#else
int uthreads_tsan_enabled(void) { return 0; }
void uthreads_tsan_fiber_create(uthreads_tcb *tcb) { (void)tcb; }
void uthreads_tsan_fiber_adopt(uthreads_tcb *tcb) { (void)tcb; }
void uthreads_tsan_fiber_destroy(uthreads_tcb *tcb) { (void)tcb; }
void *uthreads_switch_tsan(void **from_sp, uthreads_tcb *to, void *handoff) { return uthreads_switch(from_sp, to->sp, handoff); }
#endif
