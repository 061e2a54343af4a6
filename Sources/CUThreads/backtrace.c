// backtrace.c — backtraces of user threads: from a suspended thread's saved frame, or of the
// caller from its own frame pointer. Names for the addresses are symbols.c's job.
//
// A suspended thread's registers are on its own stack, in the frame its switch pushed (the
// frame tables in switch_x86_64_sysv_elf_gas.S and switch_aarch64_aapcs_elf_gas.S). That frame
// holds the thread's frame pointer and the address it resumes at:
//
//   x86-64   [sp + 48] rbp, [sp + 56] return address into the caller of uthreads_switch
//   AArch64  [sp + 0xa0] x29, [sp + 0xa8] x30 (lr): itself an AAPCS64 frame record
//
// Swift and C on Linux keep frame pointers on both (Swift passes -fno-omit-frame-pointer for
// non-leaf functions), and both ABIs lay a frame record out the same way: [fp] is the caller's
// frame pointer and [fp + 8] the return address. So from the saved frame pointer the chain
// leads up to the trampoline, which zeroes the frame pointer (uthreads_context_make puts 0 in
// the first frame's fp slot too). The walk never trusts the stack: every frame pointer must lie
// inside the thread's own stack, be 8-byte aligned and move strictly upwards, so a corrupt
// stack ends the walk instead of faulting.
//
// AArch64 with pointer authentication (-mbranch-protection=pac-ret) signs return addresses
// before they are stored in a frame record; the walk strips the signature with XPACLRI (a
// hint: a no-op on cores without PAC, where there is nothing to strip).
//
// Rejected: unwinding with the DWARF CFI (libunwind / _Unwind_Backtrace). It can only unwind
// the caller's own stack, it takes locks and allocates (a dump walks every thread), and the
// frame chain is already there.
#define _GNU_SOURCE
#include "cuthreads.h"

#if defined(__x86_64__)
#define SAVED_FP_OFFSET 48
#define SAVED_PC_OFFSET 56
#define SAVED_FRAME_SIZE 64
#elif defined(__aarch64__)
#define SAVED_FP_OFFSET 0xa0
#define SAVED_PC_OFFSET 0xa8
#define SAVED_FRAME_SIZE 0xb0
#endif

/// A return address as code sees it: without a pointer-authentication signature.
static inline uintptr_t strip_signature(uintptr_t address) {
#if defined(__aarch64__)
    register uintptr_t lr __asm__("x30") = address;
    __asm__("hint #7" : "+r"(lr));  // xpaclri: strip the PAC from x30
    return lr;
#else
    return address;
#endif
}

static int walk(uintptr_t fp, uintptr_t lo, uintptr_t hi, uint64_t *out, int count, int max) {
    while (count < max && fp != 0) {
        if (fp < lo || fp > hi - 16 || (fp & 7) != 0) break;
        uintptr_t next = ((const uintptr_t *)fp)[0];
        uintptr_t ret = strip_signature(((const uintptr_t *)fp)[1]);
        if (ret == 0) break;
        out[count++] = ret;
        if (next != 0 && next <= fp) break;  // must move towards the stack's top
        fp = next;
    }
    return count;
}

int uthreads_backtrace_saved(const uthreads_tcb *t, uint64_t *out, int max) {
#if defined(SAVED_FRAME_SIZE)
    uintptr_t lo = (uintptr_t)t->stack_lo, hi = (uintptr_t)t->stack_hi;
    uintptr_t sp = (uintptr_t)t->sp;
    if (max <= 0 || !t->stack_lo || sp < lo || sp > hi - SAVED_FRAME_SIZE) return 0;
    const uintptr_t *frame = (const uintptr_t *)sp;
    out[0] = strip_signature(frame[SAVED_PC_OFFSET / 8]);
    return walk(frame[SAVED_FP_OFFSET / 8], lo, hi, out, 1, max);
#else
    (void)t; (void)out; (void)max;
    return 0;  // an architecture without a switch
#endif
}

__attribute__((noinline)) int uthreads_backtrace_here(const uthreads_tcb *t, uint64_t *out, int max) {
#if defined(SAVED_FRAME_SIZE)
    if (max <= 0) return 0;
    uintptr_t fp = (uintptr_t)__builtin_frame_address(0);
    uintptr_t lo = t && t->stack_lo ? (uintptr_t)t->stack_lo : fp;
    uintptr_t hi = t && t->stack_hi ? (uintptr_t)t->stack_hi : fp + (8u << 20);  // kernel stack: 8 MiB
    return walk(fp, lo, hi, out, 0, max);
#else
    (void)t; (void)out; (void)max;
    return 0;
#endif
}
