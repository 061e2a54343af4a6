// aarch64_switch_test.c — a stand-alone test of the context-switch contract in cuthreads.h.
//
// Written for the AArch64 port (switch_aarch64_aapcs_elf_gas.S) but architecture-neutral
// where it can be: the same file builds and passes natively on x86-64 against
// switch_x86_64_sysv_elf_gas.S. scripts/check-aarch64.sh builds and runs it both ways:
//
//   cc -O2 -fno-omit-frame-pointer -I Sources/CUThreads/include Tests/asm/aarch64_switch_test.c
//      Sources/CUThreads/context.c Sources/CUThreads/backtrace.c
//      Sources/CUThreads/switch_x86_64_sysv_elf_gas.S
//   aarch64-linux-gnu-gcc -static -O2 -fno-omit-frame-pointer -I Sources/CUThreads/include
//      Tests/asm/aarch64_switch_test.c Sources/CUThreads/context.c Sources/CUThreads/backtrace.c
//      Sources/CUThreads/switch_aarch64_aapcs_elf_gas.S && qemu-aarch64 ./a.out
//
// What it checks:
//   * uthreads_context_make writes only the top 256 bytes and returns an aligned sp;
//   * a new context starts in entry(arg) on its own stack, with an aligned sp, default FP
//     control (round to nearest) whatever the creator's, and a backtrace that ends cleanly
//     in uthreads_trampoline (its CFI marks the return address undefined);
//   * a ping-pong main -> A -> B -> main of 3 * N switches in which
//       - every callee-saved register, set to a known pattern by an assembly probe just
//         before the call, holds it again just after (x19-x29 + d8-d15 / rbx, rbp, r12-r15),
//       - compiler-allocated integer and floating-point locals live across the calls stay
//         intact (checked against a switch-free reference run),
//       - the FP rounding mode (FPCR.RMode / MXCSR.RC) and flush-to-zero bit set in each
//         context stay that context's, and the FP status flags (FPSR / MXCSR status) are
//         not part of a context: they follow the kernel thread,
//       - the contexts resume in the expected order;
//   * uthreads_switch works when called through a function pointer (BTI landing pad);
//   * an entry function that returns traps (brk / ud2) instead of running off the stack;
//   * uthreads_backtrace_saved (backtrace.c) walks a suspended context's frames from its saved
//     frame: where it resumes, then each caller's return address, ending in the trampoline
//     (built with -fno-omit-frame-pointer, as Swift code is; with pac-ret the signed return
//     addresses must come out stripped).
//
// Output: one "ok"/"FAIL" line per check, then "aarch64 switch test: N passed, M failed";
// exit status 1 if any check failed. Optional argument: the number of round trips N.
#define _GNU_SOURCE
#include "cuthreads.h"

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <unwind.h>
#if defined(__x86_64__)
#include <xmmintrin.h>
#endif

#if !defined(__x86_64__) && !defined(__aarch64__)
#error "aarch64_switch_test.c: only x86-64 and AArch64 are supported"
#endif

// MARK: - Results

static int passed, failed;

static void report(const char *name, int ok, const char *detail) {
    if (ok) {
        passed++;
        printf("ok   - %s\n", name);
    } else {
        failed++;
        printf("FAIL - %s%s%s\n", name, detail && *detail ? ": " : "", detail ? detail : "");
    }
}

// Failures inside the ping-pong are counted per check and reported once, at the end, with
// the first one's details.
enum {
    K_ORDER, K_PROBE, K_LOCALS, K_ROUNDING, K_FTZ, K_STATUS, K_HANDOFF, K_COUNT
};
static const char *const check_names[K_COUNT] = {
    "contexts resume in the expected order",
    "callee-saved registers survive each switch (assembly probe)",
    "compiler-allocated int/double locals survive the switches",
    "FP rounding mode is per context",
    "flush-to-zero bit is per context",
    "FP status flags follow the kernel thread, not the context",
    "the switch returns the handoff of the switch that resumed the caller",
};
static unsigned long check_failures[K_COUNT];
static char check_detail[K_COUNT][160];

#define CHECK(kind, cond, ...)                                                             \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            if (check_failures[kind]++ == 0)                                               \
                snprintf(check_detail[kind], sizeof check_detail[kind], __VA_ARGS__);      \
        }                                                                                  \
    } while (0)

// MARK: - Architecture-specific helpers

enum round_mode { ROUND_NEAREST, ROUND_UP, ROUND_DOWN, ROUND_ZERO };

// probe_switch(from, to, seed): sets every callee-saved register to seed + k (k distinct
// per register), calls uthreads_switch(from, to, seed), and on return counts the registers that do
// not hold their pattern any more. Returns that count (0 = all survived). Written in
// assembly because a compiler gives no way to own all of those registers across a call.
int probe_switch(void **from, void *to, uint64_t seed);
// The caller's stack pointer at the call (before the call pushed anything).
uintptr_t caller_sp(void);

#if defined(__aarch64__)

#define SET_X(r, k) "    add " #r ", x2, #" #k "\n"
#define SET_D(r, k) "    add x9, x2, #" #k "\n    fmov " #r ", x9\n"
#define CHK_X(r, k) "    add x9, x2, #" #k "\n    cmp " #r ", x9\n    cinc x0, x0, ne\n"
#define CHK_D(r, k) \
    "    add x9, x2, #" #k "\n    fmov x10, " #r "\n    cmp x10, x9\n    cinc x0, x0, ne\n"

__asm__(
    ".text\n"
    ".globl probe_switch\n"
    ".hidden probe_switch\n"
    ".type probe_switch,%function\n"
    ".p2align 4\n"
    "probe_switch:\n"
    "    hint #34\n"                        // bti c
    "    stp x29, x30, [sp, #-176]!\n"      // own frame: save what we are about to clobber
    "    stp x19, x20, [sp, #16]\n"
    "    stp x21, x22, [sp, #32]\n"
    "    stp x23, x24, [sp, #48]\n"
    "    stp x25, x26, [sp, #64]\n"
    "    stp x27, x28, [sp, #80]\n"
    "    stp d8, d9, [sp, #96]\n"
    "    stp d10, d11, [sp, #112]\n"
    "    stp d12, d13, [sp, #128]\n"
    "    stp d14, d15, [sp, #144]\n"
    "    str x2, [sp, #160]\n"              // the seed, for the check afterwards
    SET_X(x19, 19) SET_X(x20, 20) SET_X(x21, 21) SET_X(x22, 22) SET_X(x23, 23)
    SET_X(x24, 24) SET_X(x25, 25) SET_X(x26, 26) SET_X(x27, 27) SET_X(x28, 28)
    SET_X(x29, 29)
    SET_D(d8, 108) SET_D(d9, 109) SET_D(d10, 110) SET_D(d11, 111)
    SET_D(d12, 112) SET_D(d13, 113) SET_D(d14, 114) SET_D(d15, 115)
    "    bl uthreads_switch\n"
    "    ldr x2, [sp, #160]\n"
    "    mov x0, #0\n"
    CHK_X(x19, 19) CHK_X(x20, 20) CHK_X(x21, 21) CHK_X(x22, 22) CHK_X(x23, 23)
    CHK_X(x24, 24) CHK_X(x25, 25) CHK_X(x26, 26) CHK_X(x27, 27) CHK_X(x28, 28)
    CHK_X(x29, 29)
    CHK_D(d8, 108) CHK_D(d9, 109) CHK_D(d10, 110) CHK_D(d11, 111)
    CHK_D(d12, 112) CHK_D(d13, 113) CHK_D(d14, 114) CHK_D(d15, 115)
    "    ldp x19, x20, [sp, #16]\n"
    "    ldp x21, x22, [sp, #32]\n"
    "    ldp x23, x24, [sp, #48]\n"
    "    ldp x25, x26, [sp, #64]\n"
    "    ldp x27, x28, [sp, #80]\n"
    "    ldp d8, d9, [sp, #96]\n"
    "    ldp d10, d11, [sp, #112]\n"
    "    ldp d12, d13, [sp, #128]\n"
    "    ldp d14, d15, [sp, #144]\n"
    "    ldp x29, x30, [sp], #176\n"
    "    ret\n"
    ".size probe_switch,.-probe_switch\n"
    "\n"
    ".globl caller_sp\n"
    ".hidden caller_sp\n"
    ".type caller_sp,%function\n"
    ".p2align 4\n"
    "caller_sp:\n"
    "    hint #34\n"
    "    mov x0, sp\n"
    "    ret\n"
    ".size caller_sp,.-caller_sp\n");

#define PROBE_REGISTERS 19  // x19-x29, d8-d15

static uint64_t read_fpcr(void) {
    uint64_t v;
    __asm__ volatile("mrs %0, fpcr" : "=r"(v));
    return v;
}
static void write_fpcr(uint64_t v) { __asm__ volatile("msr fpcr, %0" : : "r"(v)); }
static uint64_t read_fpsr(void) {
    uint64_t v;
    __asm__ volatile("mrs %0, fpsr" : "=r"(v));
    return v;
}
static void write_fpsr(uint64_t v) { __asm__ volatile("msr fpsr, %0" : : "r"(v)); }

#define FPCR_RMODE_SHIFT 22
#define FPCR_FZ (1u << 24)
#define FPSR_IXC (1u << 4)  // inexact, cumulative

static const unsigned rmode_bits[4] = {
    [ROUND_NEAREST] = 0, [ROUND_UP] = 1, [ROUND_DOWN] = 2, [ROUND_ZERO] = 3};

static enum round_mode get_round(void) {
    unsigned bits = (unsigned)(read_fpcr() >> FPCR_RMODE_SHIFT) & 3;
    for (int m = 0; m < 4; m++)
        if (rmode_bits[m] == bits) return (enum round_mode)m;
    return ROUND_NEAREST;
}
static void set_round(enum round_mode m) {
    uint64_t v = read_fpcr() & ~(3ull << FPCR_RMODE_SHIFT);
    write_fpcr(v | ((uint64_t)rmode_bits[m] << FPCR_RMODE_SHIFT));
}
static int get_ftz(void) { return (read_fpcr() & FPCR_FZ) != 0; }
static void set_ftz(int on) { write_fpcr(on ? read_fpcr() | FPCR_FZ : read_fpcr() & ~(uint64_t)FPCR_FZ); }
static int get_inexact(void) { return (read_fpsr() & FPSR_IXC) != 0; }
static void clear_inexact(void) { write_fpsr(read_fpsr() & ~(uint64_t)FPSR_IXC); }
static int default_fp_control(void) { return read_fpcr() == 0; }
#define ENTRY_RETURN_SIGNAL SIGTRAP  // brk #0

#else  // __x86_64__

#define SET_R(r, k) "    leaq " #k "(%rdx), %" #r "\n"
#define CHK_R(r, k) \
    "    leaq " #k "(%rdx), %r8\n    xorl %r9d, %r9d\n    cmpq %r8, %" #r "\n" \
    "    setne %r9b\n    addq %r9, %rax\n"

__asm__(
    ".text\n"
    ".globl probe_switch\n"
    ".hidden probe_switch\n"
    ".type probe_switch,@function\n"
    ".p2align 4\n"
    "probe_switch:\n"
    "    endbr64\n"
    "    pushq %rbp\n"                      // save what we are about to clobber
    "    pushq %rbx\n"
    "    pushq %r12\n"
    "    pushq %r13\n"
    "    pushq %r14\n"
    "    pushq %r15\n"
    "    subq $24, %rsp\n"                  // 8 (ret) + 48 + 24 = 80: rsp 16-aligned again
    "    movq %rdx, (%rsp)\n"               // the seed, for the check afterwards
    SET_R(rbx, 1) SET_R(rbp, 2) SET_R(r12, 12) SET_R(r13, 13) SET_R(r14, 14) SET_R(r15, 15)
    "    call uthreads_switch@PLT\n"
    "    movq (%rsp), %rdx\n"
    "    xorl %eax, %eax\n"
    CHK_R(rbx, 1) CHK_R(rbp, 2) CHK_R(r12, 12) CHK_R(r13, 13) CHK_R(r14, 14) CHK_R(r15, 15)
    "    addq $24, %rsp\n"
    "    popq %r15\n"
    "    popq %r14\n"
    "    popq %r13\n"
    "    popq %r12\n"
    "    popq %rbx\n"
    "    popq %rbp\n"
    "    ret\n"
    ".size probe_switch,.-probe_switch\n"
    "\n"
    ".globl caller_sp\n"
    ".hidden caller_sp\n"
    ".type caller_sp,@function\n"
    ".p2align 4\n"
    "caller_sp:\n"
    "    endbr64\n"
    "    leaq 8(%rsp), %rax\n"
    "    ret\n"
    ".size caller_sp,.-caller_sp\n");

#define PROBE_REGISTERS 6  // rbx, rbp, r12-r15

#define MXCSR_RC_SHIFT 13
#define MXCSR_FTZ (1u << 15)
#define MXCSR_PE (1u << 5)  // precision (inexact), sticky

static const unsigned rmode_bits[4] = {
    [ROUND_NEAREST] = 0, [ROUND_DOWN] = 1, [ROUND_UP] = 2, [ROUND_ZERO] = 3};

static enum round_mode get_round(void) {
    unsigned bits = (_mm_getcsr() >> MXCSR_RC_SHIFT) & 3;
    for (int m = 0; m < 4; m++)
        if (rmode_bits[m] == bits) return (enum round_mode)m;
    return ROUND_NEAREST;
}
static void set_round(enum round_mode m) {
    unsigned v = _mm_getcsr() & ~(3u << MXCSR_RC_SHIFT);
    _mm_setcsr(v | (rmode_bits[m] << MXCSR_RC_SHIFT));
}
static int get_ftz(void) { return (_mm_getcsr() & MXCSR_FTZ) != 0; }
static void set_ftz(int on) { _mm_setcsr(on ? _mm_getcsr() | MXCSR_FTZ : _mm_getcsr() & ~MXCSR_FTZ); }
static int get_inexact(void) { return (_mm_getcsr() & MXCSR_PE) != 0; }
static void clear_inexact(void) { _mm_setcsr(_mm_getcsr() & ~MXCSR_PE); }
static int default_fp_control(void) { return (_mm_getcsr() & 0xffc0u) == 0x1f80u; }
#define ENTRY_RETURN_SIGNAL SIGILL  // ud2

#endif

static const char *const round_names[4] = {"nearest", "up", "down", "zero"};

// 1/3 and -1/3 computed at run time (volatile operands: no constant folding), compared with
// what each rounding mode must give. Sets the inexact flag as a side effect.
static int division_rounds(enum round_mode m) {
    static volatile double one = 1.0, three = 3.0;
    double q = one / three, nq = -one / three;
    uint64_t qb, nqb;
    memcpy(&qb, &q, 8);
    memcpy(&nqb, &nq, 8);
    const uint64_t lo = 0x3FD5555555555555ull, hi = 0x3FD5555555555556ull;
    const uint64_t sign = 0x8000000000000000ull;
    switch (m) {
    case ROUND_NEAREST:
    case ROUND_ZERO: return qb == lo && nqb == (lo | sign);
    case ROUND_UP: return qb == hi && nqb == (lo | sign);
    case ROUND_DOWN: return qb == lo && nqb == (hi | sign);
    }
    return 0;
}

// Flush-to-zero observed through arithmetic: a subnormal result is 0 with FZ on.
static int subnormal_flushed(void) {
    static volatile double tiny = 0x1p-1000, scale = 0x1p-60;
    double r = tiny * scale;  // 2^-1060: subnormal
    return r == 0.0;
}

// MARK: - Stacks

#define STACK_SIZE (256 * 1024)

struct stack {
    char *lo, *hi;
};

static struct stack stack_new(void) {
    char *p = mmap(NULL, STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    return (struct stack){p, p + STACK_SIZE};
}

// MARK: - The ping-pong

enum { CTX_MAIN, CTX_A, CTX_B, CTX_NUM };

static void *ctx_sp[CTX_NUM];
static struct stack ctx_stack[CTX_NUM];
static char *ctx_top[CTX_NUM];  // the stack_top given to uthreads_context_make
static unsigned long iterations;
static volatile unsigned long turn;  // 3 * i + (which context runs next within round i)
static volatile unsigned long resumes;  // times any context was resumed (or started)

// Called through a volatile pointer every few switches, so that the BTI landing pad of
// uthreads_switch is exercised by an indirect call (blr) when BTI is enforced.
static void *(*volatile switch_ptr)(void **, void *, void *) = uthreads_switch;
// The handoff of the last switch made (the probe passes its seed as the third argument).
static void *volatile handoff_sent;

static const enum round_mode ctx_round[CTX_NUM] = {ROUND_ZERO, ROUND_UP, ROUND_DOWN};
static const int ctx_ftz[CTX_NUM] = {0, 0, 1};

// Switches from context `self` to context `to` in round i: through the probe on odd rounds,
// through a function pointer every fourth round, directly otherwise.
static void do_switch(int self, int to, unsigned long i) {
    if (i & 1) {
        uint64_t seed = ((uint64_t)(self + 1) << 56) ^ (i * 0x9E3779B97F4A7C15ull);
        seed &= ~0xffffull;  // room for the small per-register offsets
        handoff_sent = (void *)(uintptr_t)seed;
        int bad = probe_switch(&ctx_sp[self], ctx_sp[to], seed);
        CHECK(K_PROBE, bad == 0, "context %d, round %lu: %d of %d registers clobbered", self,
              i, bad, PROBE_REGISTERS);
    } else {
        void *tag = (void *)(uintptr_t)(0x5a5a0000ul + 3 * i + (unsigned long)self);
        handoff_sent = tag;
        void *got = (i & 3) == 2 ? switch_ptr(&ctx_sp[self], ctx_sp[to], tag)
                                 : uthreads_switch(&ctx_sp[self], ctx_sp[to], tag);
        CHECK(K_HANDOFF, got == handoff_sent, "context %d, round %lu: got %p, the resuming switch passed %p",
              self, i, got, handoff_sent);
    }
}

// What each context checks when it is resumed.
static void check_fp_state(int self, unsigned long i) {
    enum round_mode m = get_round();
    CHECK(K_ROUNDING, m == ctx_round[self] && division_rounds(ctx_round[self]),
          "context %d, round %lu: rounding mode %s, expected %s", self, i, round_names[m],
          round_names[ctx_round[self]]);
    CHECK(K_FTZ, get_ftz() == ctx_ftz[self] && subnormal_flushed() == ctx_ftz[self],
          "context %d, round %lu: flush-to-zero %d, expected %d", self, i, get_ftz(),
          ctx_ftz[self]);
}

// The computation kept live across the switches. Integers: an LCG chain per variable (no
// closed form, so the compiler must carry the values); doubles: exact steps (independent of
// the rounding mode in force), so a reference run in any context agrees bit for bit.
struct live_result {
    uint64_t ints[6];
    double dbls[4];
};

#define LIVE_DECLARE(seed)                                                                 \
    uint64_t v0 = (seed), v1 = (seed) ^ 0x1111, v2 = (seed) ^ 0x2222, v3 = (seed) ^ 0x3333, \
             v4 = (seed) ^ 0x4444, v5 = (seed) ^ 0x5555;                                   \
    double f0 = (double)((seed) & 0xff), f1 = -3.5, f2 = 0.25, f3 = 1024.0
#define LIVE_STEP(i)                                                                       \
    do {                                                                                   \
        v0 = v0 * 6364136223846793005ull + 1442695040888963407ull;                         \
        v1 = v1 * 2862933555777941757ull + 3037000493ull + v0;                            \
        v2 ^= v1 >> 7;                                                                     \
        v3 += v2 * 31 + (i);                                                               \
        v4 = (v4 << 13 | v4 >> 51) ^ v3;                                                   \
        v5 -= v4;                                                                          \
        f0 += 1.25;                                                                        \
        f1 -= 0.75;                                                                        \
        f2 = f2 * 2.0 > 1e6 ? 0.25 : f2 * 2.0;                                             \
        f3 = f3 * 0.5 < 1.0 ? 1024.0 : f3 * 0.5;                                           \
    } while (0)
#define LIVE_STORE(r)                                                                      \
    do {                                                                                   \
        (r)->ints[0] = v0, (r)->ints[1] = v1, (r)->ints[2] = v2;                           \
        (r)->ints[3] = v3, (r)->ints[4] = v4, (r)->ints[5] = v5;                           \
        (r)->dbls[0] = f0, (r)->dbls[1] = f1, (r)->dbls[2] = f2, (r)->dbls[3] = f3;        \
    } while (0)

static const uint64_t ctx_seed[CTX_NUM] = {0x0123456789abcdefull, 0xfedcba9876543210ull,
                                           0x0f1e2d3c4b5a6978ull};
static struct live_result live_expected[CTX_NUM], live_got[CTX_NUM];

__attribute__((noinline)) static void live_reference(uint64_t seed, unsigned long n,
                                                     struct live_result *r) {
    LIVE_DECLARE(seed);
    for (unsigned long i = 0; i < n; i++) LIVE_STEP(i);
    LIVE_STORE(r);
}

// Start-of-context observations, checked by main afterwards.
struct start_info {
    int ran;
    void *arg;
    uintptr_t sp_at_call;
    uintptr_t local_addr;
    int default_fp;
    int unwind_code;
    int unwind_frames;
    int unwind_ends_in_trampoline;
};
static struct start_info start_info[CTX_NUM];

// MARK: - Unwinding from a new context

struct unwind_state {
    int frames;
    uintptr_t last_ip;
};

static _Unwind_Reason_Code unwind_step(struct _Unwind_Context *uc, void *p) {
    struct unwind_state *s = p;
    uintptr_t ip = (uintptr_t)_Unwind_GetIP(uc);
    if (ip) s->last_ip = ip;
    if (++s->frames > 64) return _URC_END_OF_STACK;  // runaway: the CFI did not stop it
    return _URC_NO_REASON;
}

__attribute__((noinline)) static void unwind_from_here(struct start_info *info) {
    struct unwind_state s = {0, 0};
    info->unwind_code = _Unwind_Backtrace(unwind_step, &s);
    info->unwind_frames = s.frames;
    uintptr_t t = (uintptr_t)&uthreads_trampoline;
    info->unwind_ends_in_trampoline = s.last_ip > t && s.last_ip <= t + 64;
}

// MARK: - Coroutines

static void coroutine(void *arg) {
    int self = (int)(intptr_t)arg - 1000;
    if (self != CTX_A && self != CTX_B) abort();
    int next = self == CTX_A ? CTX_B : CTX_MAIN;
    struct start_info *info = &start_info[self];
    volatile char here = 0;
    info->ran = 1;
    info->arg = arg;
    info->sp_at_call = caller_sp();
    info->local_addr = (uintptr_t)&here;
    info->default_fp = default_fp_control() && get_round() == ROUND_NEAREST;
    unwind_from_here(info);
    set_round(ctx_round[self]);
    set_ftz(ctx_ftz[self]);

    LIVE_DECLARE(ctx_seed[self]);
    for (unsigned long i = 0;; i++) {
        // Resumed for round i (the first resume is the start itself).
        resumes = resumes + 1;
        CHECK(K_ORDER, turn == 3 * i + (unsigned long)self,
              "context %d resumed at turn %lu, expected %lu", self, turn,
              3 * i + (unsigned long)self);
        check_fp_state(self, i);
        if (self == CTX_B) {
            // A divided (inexact) just before switching here; nobody cleared it since.
            CHECK(K_STATUS, get_inexact(), "round %lu: inexact flag lost across A -> B", i);
            clear_inexact();
        }
        if (i < iterations) LIVE_STEP(i);
        if (i + 1 == iterations) LIVE_STORE(&live_got[self]);
        turn = turn + 1;
        do_switch(self, next, i);
    }
}

// MARK: - Individual checks

static void test_frame(void) {
    // Fill a stack with a pattern, make a context with a deliberately misaligned top, and
    // check what changed.
    struct stack s = stack_new();
    memset(s.lo, 0xA5, STACK_SIZE);
    char *top = s.hi - 64 - 7;
    uintptr_t aligned = (uintptr_t)top & ~(uintptr_t)15;
    void *sp = uthreads_context_make(top, coroutine, NULL);
    uintptr_t usp = (uintptr_t)sp;
    char detail[160] = "";
    int ok = 1;
    if (usp & 15) ok = 0, snprintf(detail, sizeof detail, "sp %p not 16-byte aligned", sp);
    if (ok && (usp >= aligned || usp < aligned - 256))
        ok = 0, snprintf(detail, sizeof detail, "sp %p outside [top-256, top)", sp);
    for (char *p = s.lo; ok && p < s.hi; p++) {
        int inside = (uintptr_t)p >= aligned - 256 && (uintptr_t)p < aligned;
        if (!inside && *(unsigned char *)p != 0xA5)
            ok = 0, snprintf(detail, sizeof detail, "byte at top%+ld written",
                             (long)((uintptr_t)p - aligned));
    }
    report("context_make touches only the top 256 bytes and returns an aligned sp", ok, detail);
    munmap(s.lo, STACK_SIZE);
}

// MARK: - Backtrace of a suspended context

// bt_entry -> bt_outer -> bt_inner -> uthreads_switch: each level records its own return
// address, and the walk from the saved frame must find exactly these, innermost first.
static void *bt_main_sp, *bt_ctx_sp;
static uintptr_t bt_inner_return, bt_outer_return, bt_entry_return;
static volatile int bt_sink;

__attribute__((noinline)) static void bt_inner(void) {
    bt_inner_return = (uintptr_t)__builtin_extract_return_addr(__builtin_return_address(0));
    uthreads_switch(&bt_ctx_sp, bt_main_sp, NULL);
    bt_sink = bt_sink + 1;  // no tail call: the frame must stay
}

__attribute__((noinline)) static void bt_outer(void) {
    bt_outer_return = (uintptr_t)__builtin_extract_return_addr(__builtin_return_address(0));
    bt_inner();
    bt_sink = bt_sink + 1;
}

__attribute__((noinline)) static void bt_entry(void *arg) {
    (void)arg;
    bt_entry_return = (uintptr_t)__builtin_extract_return_addr(__builtin_return_address(0));
    bt_outer();
    for (;;) uthreads_switch(&bt_ctx_sp, bt_main_sp, NULL);
}

static void test_backtrace(void) {
    struct stack s = stack_new();
    bt_ctx_sp = uthreads_context_make(s.hi, bt_entry, NULL);
    uthreads_switch(&bt_main_sp, bt_ctx_sp, NULL);  // runs until bt_inner switches back
    uthreads_tcb t;
    memset(&t, 0, sizeof t);
    t.sp = bt_ctx_sp;
    t.stack_lo = s.lo;
    t.stack_hi = s.hi;
    uint64_t pcs[16] = {0};
    int n = uthreads_backtrace_saved(&t, pcs, 16);
    char d[160];
    snprintf(d, sizeof d, "%d frames: %#lx %#lx %#lx %#lx; want (in bt_inner) %#lx %#lx %#lx",
             n, (unsigned long)pcs[0], (unsigned long)pcs[1], (unsigned long)pcs[2],
             (unsigned long)pcs[3], (unsigned long)bt_inner_return,
             (unsigned long)bt_outer_return, (unsigned long)bt_entry_return);
    uintptr_t tramp = (uintptr_t)&uthreads_trampoline;
    int ok = n == 4 && pcs[0] > (uintptr_t)&bt_inner && pcs[0] < (uintptr_t)&bt_inner + 256 &&
             pcs[1] == bt_inner_return && pcs[2] == bt_outer_return && pcs[3] == bt_entry_return &&
             bt_entry_return > tramp && bt_entry_return < tramp + 64;
    report("backtrace of a suspended context: resume point, callers, then the trampoline", ok, d);

    // A saved sp outside the stack, or a frame chain leaving it, ends the walk: no fault.
    t.sp = s.hi - 8;
    int none = uthreads_backtrace_saved(&t, pcs, 16);
    t.sp = bt_ctx_sp;
#if defined(__aarch64__)
    t.stack_hi = (char *)bt_ctx_sp + 0xb0;  // the saved frame only: its callers lie above
#else
    t.stack_hi = (char *)bt_ctx_sp + 64;
#endif
    int cut = uthreads_backtrace_saved(&t, pcs, 16);
    snprintf(d, sizeof d, "sp at the top: %d frames (want 0); stack cut short: %d (want 1)", none, cut);
    report("backtrace stays inside the thread's stack", none == 0 && cut == 1, d);
    munmap(s.lo, STACK_SIZE);
}

// A context whose entry returns must trap, not run off into whatever lies above the frame.
static void returning_entry(void *arg) { (void)arg; }

static void test_entry_returns(void) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        report("a returning entry traps", 0, "fork failed");
        return;
    }
    if (pid == 0) {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        if (!freopen("/dev/null", "w", stderr)) _exit(78);  // quiet an emulator's report
        struct stack s = stack_new();
        void *sp = uthreads_context_make(s.hi, returning_entry, NULL);
        void *me = NULL;
        uthreads_switch(&me, sp, NULL);
        _exit(0);  // not reached: nothing switches back
    }
    int status = 0;
    waitpid(pid, &status, 0);
    char detail[96];
    snprintf(detail, sizeof detail, "child status 0x%x, expected signal %d", status,
             ENTRY_RETURN_SIGNAL);
    report("a returning entry traps", WIFSIGNALED(status) && WTERMSIG(status) == ENTRY_RETURN_SIGNAL,
           detail);
}

// MARK: - uthreads_call_on_stack (the help-first join's call)
//
// fn(arg) runs on another stack; when it returns, the call returns NULL. Before the call the
// caller's frame is saved in uthreads_switch's layout and published in *save_sp, so fn may
// instead switch to it: the call then returns that switch's handoff, with the caller's
// locals and FP control intact, and fn (resumed by a later switch) never returns into it.

static struct stack cos_stack;
static void *cos_caller_sp, *cos_fn_sp, *cos_main_sp;
static void *volatile cos_fn_arg, *volatile cos_fn_local;
static volatile int cos_fn_resumed;

static void cos_returning_fn(void *arg) {
    int local = 0;
    cos_fn_arg = arg;
    cos_fn_local = (void *)&local;
}

static void cos_switching_fn(void *arg) {
    cos_fn_arg = arg;
    set_round(ROUND_ZERO);  // fn's own FP control must not leak into the caller's resume
    void *back = uthreads_switch(&cos_fn_sp, cos_caller_sp, (void *)0xabc);
    cos_fn_resumed = back == (void *)0xdef;
    uthreads_switch(&cos_fn_sp, cos_main_sp, (void *)0x123);  // never resumed again
    abort();
}

static void test_call_on_stack(void) {
    cos_stack = stack_new();
    char d[160];
    volatile long canary = 0x5eed;

    void *r = uthreads_call_on_stack((void *)0x11, cos_returning_fn, cos_stack.hi, &cos_caller_sp);
    uintptr_t local = (uintptr_t)cos_fn_local;
    snprintf(d, sizeof d, "returned %p, arg %p, fn's local %#lx, stack [%p, %p)", r, cos_fn_arg,
             (unsigned long)local, (void *)cos_stack.lo, (void *)cos_stack.hi);
    report("call_on_stack: fn runs on the other stack and its return returns NULL",
           r == NULL && cos_fn_arg == (void *)0x11 && local >= (uintptr_t)cos_stack.hi - 4096 &&
               local < (uintptr_t)cos_stack.hi,
           d);

    set_round(ROUND_UP);
    r = uthreads_call_on_stack((void *)0x22, cos_switching_fn, cos_stack.hi, &cos_caller_sp);
    enum round_mode after = get_round();
    snprintf(d, sizeof d, "returned %p (expected 0xabc), arg %p, canary %#lx, round '%s'", r,
             cos_fn_arg, (unsigned long)canary, round_names[after]);
    report("call_on_stack: a switch to *save_sp resumes the caller with the switcher's handoff",
           r == (void *)0xabc && cos_fn_arg == (void *)0x22 && canary == 0x5eed && after == ROUND_UP,
           d);
    set_round(ROUND_NEAREST);

    void *back = uthreads_switch(&cos_main_sp, cos_fn_sp, (void *)0xdef);
    report("call_on_stack: fn, resumed by a switch, goes on apart from its caller",
           cos_fn_resumed && back == (void *)0x123 && canary == 0x5eed, "");
    munmap(cos_stack.lo, STACK_SIZE);
}

static void report_start(int c, const char *name) {
    struct start_info *info = &start_info[c];
    char buf[200], d[160];
    uintptr_t lo = (uintptr_t)ctx_stack[c].lo, hi = (uintptr_t)ctx_top[c];

    snprintf(buf, sizeof buf, "%s: entry ran with its argument", name);
    snprintf(d, sizeof d, "ran %d, arg %p", info->ran, info->arg);
    report(buf, info->ran && info->arg == (void *)(intptr_t)(1000 + c), d);

    snprintf(buf, sizeof buf, "%s: runs on its own stack with a 16-byte aligned sp", name);
    snprintf(d, sizeof d, "sp at call %#lx, local %#lx, stack [%#lx, %#lx)",
             (unsigned long)info->sp_at_call, (unsigned long)info->local_addr,
             (unsigned long)lo, (unsigned long)hi);
    report(buf,
           (info->sp_at_call & 15) == 0 && info->local_addr >= hi - 4096 &&
               info->local_addr < hi && info->sp_at_call >= hi - 4096 && info->sp_at_call < hi,
           d);

    snprintf(buf, sizeof buf, "%s: starts with the default FP control (creator's is 'zero')",
             name);
    report(buf, info->default_fp, "");

    snprintf(buf, sizeof buf, "%s: backtrace ends in uthreads_trampoline", name);
    snprintf(d, sizeof d, "_Unwind_Backtrace code %d (want %d), %d frames, ends in trampoline %d",
             info->unwind_code, _URC_END_OF_STACK, info->unwind_frames,
             info->unwind_ends_in_trampoline);
    report(buf,
           info->unwind_code == _URC_END_OF_STACK && info->unwind_frames <= 8 &&
               info->unwind_ends_in_trampoline,
           d);
}

// MARK: - Branch Target Identification (AArch64 built with -mbranch-protection=bti|standard)
//
// Only meaningful when every function that can be reached by an indirect branch in the
// guarded window carries a landing pad, hence only in a BTI build of this file. The pages
// holding the switch are re-mapped with PROT_BTI (what the kernel does for a BTI-marked
// executable; Debian's libc.a is not BTI-marked, so the executable as a whole cannot be).

#if defined(__aarch64__) && defined(__ARM_FEATURE_BTI_DEFAULT)
#ifndef PROT_BTI
#define PROT_BTI 0x10
#endif
#define BTI_ROUNDS 1000

static int skipped;
static void *(*volatile make_ptr)(void *, void (*)(void *), void *) = uthreads_context_make_aarch64;
static void *bti_main_sp, *bti_co_sp;
static volatile int bti_count;

static int guard_switch_pages(int on) {
    uintptr_t lo = (uintptr_t)&uthreads_switch & ~(uintptr_t)4095;
    uintptr_t hi = ((uintptr_t)&uthreads_context_make_aarch64 + 64 + 4095) & ~(uintptr_t)4095;
    return mprotect((void *)lo, hi - lo, PROT_READ | PROT_EXEC | (on ? PROT_BTI : 0));
}

static void bti_entry(void *arg) {
    (void)arg;
    for (;;) {
        bti_count = bti_count + 1;
        switch_ptr(&bti_co_sp, bti_main_sp, NULL);  // blr: must land on bti c
    }
}

static void bti_exit_entry(void *arg) { _exit((int)(intptr_t)arg); }

static void test_bti(void) {
    // Negative control first, in a child: a blr to uthreads_switch + 4 (past the landing
    // pad) must raise SIGILL, or the positive check below proves nothing.
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        if (!freopen("/dev/null", "w", stderr)) _exit(78);
        struct stack s = stack_new();
        void *sp = uthreads_context_make(s.hi, bti_exit_entry, (void *)(intptr_t)3);
        if (guard_switch_pages(1) != 0) _exit(77);
        void *(*volatile bad)(void **, void *, void *) =
            (void *(*)(void **, void *, void *))((uintptr_t)&uthreads_switch + 4);
        void *me = NULL;
        bad(&me, sp, NULL);  // without enforcement: switches and exits with 3
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
        printf("skip - BTI: mprotect(PROT_BTI) refused (no BTI in this CPU or kernel)\n");
        skipped += 2;
        return;
    }
    char d[96];
    snprintf(d, sizeof d, "child status 0x%x, expected signal %d", status, SIGILL);
    report("BTI enforced: a blr past the landing pad of uthreads_switch traps",
           WIFSIGNALED(status) && WTERMSIG(status) == SIGILL, d);

    // Positive: with the pages guarded, reach context_make and switch by blr.
    struct stack s = stack_new();
    int ok = guard_switch_pages(1) == 0;
    if (ok) {
        bti_co_sp = make_ptr(s.hi, bti_entry, NULL);
        for (int i = 0; i < BTI_ROUNDS; i++) switch_ptr(&bti_main_sp, bti_co_sp, NULL);
        ok = guard_switch_pages(0) == 0 && bti_count == BTI_ROUNDS;
    }
    snprintf(d, sizeof d, "%d of %d round trips", bti_count, BTI_ROUNDS);
    report("BTI: uthreads_context_make_aarch64 and uthreads_switch called by blr", ok, d);
    munmap(s.lo, STACK_SIZE);
}
#else
static const int skipped = 0;
#endif

// MARK: - main

int main(int argc, char **argv) {
    iterations = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000;
    if (iterations < 4) iterations = 4;
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("aarch64 switch test (%s): %lu round trips main -> A -> B -> main\n",
#if defined(__aarch64__)
           "aarch64",
#else
           "x86_64",
#endif
           iterations);

    test_frame();
    test_entry_returns();
    test_backtrace();
    test_call_on_stack();
#if defined(__aarch64__) && defined(__ARM_FEATURE_BTI_DEFAULT)
    test_bti();
#endif

    for (int c = CTX_MAIN; c < CTX_NUM; c++)
        live_reference(ctx_seed[c], iterations, &live_expected[c]);

    // The creator's FP control differs from the default, to show that a new context does
    // not inherit it.
    set_round(ctx_round[CTX_MAIN]);
    set_ftz(ctx_ftz[CTX_MAIN]);

    for (int c = CTX_A; c < CTX_NUM; c++) {
        ctx_stack[c] = stack_new();
        // The stack top is 1 KiB below the end of the mapping. Above it lies a decoy: words
        // that look like return addresses into the trampoline. An unwinder that does not
        // stop at the trampoline (missing CFI) walks into them and runs away, which the
        // backtrace check sees, instead of stopping by luck on whatever lies past the top.
        ctx_top[c] = ctx_stack[c].hi - 1024;
        for (uintptr_t *w = (uintptr_t *)ctx_top[c]; w < (uintptr_t *)ctx_stack[c].hi; w++)
            *w = (uintptr_t)&uthreads_trampoline + 8;
        ctx_sp[c] = uthreads_context_make(ctx_top[c], coroutine, (void *)(intptr_t)(1000 + c));
    }

    LIVE_DECLARE(ctx_seed[CTX_MAIN]);
    for (unsigned long i = 0; i < iterations; i++) {
        turn = 3 * i + CTX_A;  // A's turn; A hands over to B, B back to main
        clear_inexact();  // A's division must set it again before B looks
        do_switch(CTX_MAIN, CTX_A, i);
        // Resumed by B at the end of round i.
        resumes = resumes + 1;
        CHECK(K_ORDER, turn == 3 * i + 3, "main resumed at turn %lu, expected %lu", turn,
              3 * i + 3);
        check_fp_state(CTX_MAIN, i);
        LIVE_STEP(i);
    }
    LIVE_STORE(&live_got[CTX_MAIN]);
    // A clobbered loop counter could end a loop early and hide other damage: count.
    CHECK(K_ORDER, resumes == 3 * iterations, "%lu resumes, expected %lu", resumes,
          3 * iterations);
    set_round(ROUND_NEAREST);
    set_ftz(0);

    for (int c = CTX_MAIN; c < CTX_NUM; c++) {
        if (memcmp(&live_got[c], &live_expected[c], sizeof live_got[c]) != 0)
            CHECK(K_LOCALS, 0, "context %d: values differ from the switch-free reference", c);
    }

    report_start(CTX_A, "A");
    report_start(CTX_B, "B");
    for (int k = 0; k < K_COUNT; k++) report(check_names[k], check_failures[k] == 0, check_detail[k]);

    for (int c = CTX_A; c < CTX_NUM; c++) munmap(ctx_stack[c].lo, STACK_SIZE);
    printf("%lu switches\n", 3 * iterations);
    if (skipped)
        printf("aarch64 switch test: %d passed, %d failed, %d skipped\n", passed, failed, skipped);
    else
        printf("aarch64 switch test: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
