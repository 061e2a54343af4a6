// cuthreads.h — layer 0 of UserThreads: the machine-level pieces that Swift cannot express.
//
//   * uthreads_switch / uthreads_trampoline: the user-space context switch (assembly, one
//     file per architecture and ABI: switch_<arch>_<abi>_elf_gas.S).
//   * uthreads_context_make: lays out the first frame of a new context on its stack.
//   * struct uthreads_tcb: the thread control block, one row of the thread table. It is a C
//     struct so that its layout is fixed and known to the fault handler (signals.c), to the
//     debugger scripts (tools/gdb, tools/lldb) and to Swift alike.
//   * backtraces of suspended threads (backtrace.c) and their symbols (symbols.c), the
//     thread-dump signal (dump_signal.c), the registry of live runtimes a debugger reads
//     (registry.c).
//   * the per-kernel-thread "current" pointers, the fault handler, and small syscall shims
//     (epoll, eventfd, timerfd, futex, mincore) that Glibc does not export to Swift.
//
// Nothing in this layer names a Swift type.
#ifndef CUTHREADS_H
#define CUTHREADS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#if !defined(__clang__)  /* nullability annotations are for Swift's importer (clang) */
#define _Nullable
#define _Nonnull
#endif

#ifdef __cplusplus
extern "C" {
#endif

// MARK: - Context switch (assembly)

/// Saves the callee-saved registers of the running context on its own stack, stores the
/// resulting stack pointer into `*from_sp`, loads `to_sp` and restores the registers saved
/// there. Returns when another context switches back to `*from_sp`. No system call.
///
/// Returns the `handoff` argument of *the switch that resumed the caller*, not its own: the
/// switcher passes its scheduler, so code that runs in the resumed thread right after the
/// switch learns which kernel thread's scheduler it now runs under without reading a
/// thread-local (M:N: a thread may resume on another worker; see Scheduler.swift).
void *_Nullable uthreads_switch(void *_Nullable *_Nonnull from_sp, void *_Nonnull to_sp,
                                void *_Nullable handoff);

/// Where a new context begins: calls `entry(arg)` (kept in callee-saved registers by
/// uthreads_context_make). Its CFI marks the return address undefined, so a backtrace of a
/// user thread ends cleanly here. `entry` must never return.
void uthreads_trampoline(void);

/// Calls `fn(arg)` with the stack pointer at `stack_top` (16-byte aligned). Before the call it
/// saves the caller's callee-saved registers in uthreads_switch's frame on the caller's stack
/// and stores that frame's address in `*save_sp` (the caller's row's `sp`), so the caller can
/// also be resumed by an ordinary switch to `*save_sp` while `fn` is suspended. Returns NULL
/// when `fn` returns; when resumed by a switch instead, returns that switch's `handoff` (as
/// uthreads_switch does), and `fn` must then never return. `fn`'s frames do not link to the
/// caller's (a backtrace inside ends here, as at the trampoline). The help-first join runs a
/// thread that has not started this way (Scheduler.swift).
void *_Nullable uthreads_call_on_stack(void *_Nullable arg, void (*_Nonnull fn)(void *_Nullable),
                                       void *_Nonnull stack_top, void *_Nullable *_Nonnull save_sp);

#if defined(__aarch64__)
/// AArch64 half of uthreads_context_make (switch_aarch64_aapcs_elf_gas.S documents the frame).
void *_Nonnull uthreads_context_make_aarch64(void *_Nonnull stack_top,
                                             void (*_Nonnull entry)(void *_Nullable),
                                             void *_Nullable arg);
#endif

/// Where uthreads_context_make puts the first frame of a context whose stack ends at
/// `stack_top`: the address it returns. A spawn on a kept row whose `sp` is still this address
/// finds its frame intact (the help-first join runs a body below it, `Scheduler.runHosted`) and
/// does not write it again: the frame's every word is the same for the same row.
static inline void *_Nonnull uthreads_context_frame(void *_Nonnull stack_top) {
    uintptr_t top = (uintptr_t)stack_top & ~(uintptr_t)15;
#if defined(__x86_64__)
    return (void *)(top - 64);
#elif defined(__aarch64__)
    return (void *)(top - 176);  // UT_FRAME_SIZE (switch_aarch64_aapcs_elf_gas.S)
#else
#error "UserThreads: no context switch for this architecture"
#endif
}

/// Writes the first frame of a new context just below `stack_top` (16-byte aligned) and
/// returns the stack pointer to pass to uthreads_switch. Touches only the top 256 bytes.
/// Inline: it is on every spawn's path (a call costs about as much as the frame's stores).
static inline void *_Nonnull uthreads_context_make(void *_Nonnull stack_top,
                                                   void (*_Nonnull entry)(void *_Nullable),
                                                   void *_Nullable arg) {
    uintptr_t top = (uintptr_t)stack_top & ~(uintptr_t)15;
#if defined(__x86_64__)
    // Frame read by uthreads_switch (switch_x86_64_sysv_elf_gas.S):
    //   [0] MXCSR | x87 CW, [1] r15, [2] r14, [3] r13 = arg, [4] r12 = entry, [5] rbx,
    //   [6] rbp = 0, [7] return address = uthreads_trampoline.
    // sp = top - 64 keeps sp 16-byte aligned, as a switch-saved frame is, so the trampoline
    // runs with rsp = top (aligned) and its call gives entry the ABI alignment.
    uint64_t *frame = (uint64_t *)(top - 64);
    // MXCSR default 0x1F80 (all exceptions masked, round-nearest) in the low half; the x87
    // default control word 0x037F (extended precision, all masked) in bytes 4-5.
    frame[0] = 0x1F80ull | (0x037Full << 32);
    frame[1] = 0;                       // r15
    frame[2] = 0;                       // r14
    frame[3] = (uint64_t)(uintptr_t)arg;    // r13
    frame[4] = (uint64_t)(uintptr_t)entry;  // r12
    frame[5] = 0;                       // rbx
    frame[6] = 0;                       // rbp: ends the frame-pointer chain
    frame[7] = (uint64_t)(uintptr_t)&uthreads_trampoline;
    return frame;
#elif defined(__aarch64__)
    return uthreads_context_make_aarch64((void *)top, entry, arg);
#else
#error "UserThreads: no context switch for this architecture"
#endif
}

// MARK: - Thread control block

/// Thread states. The ownership invariant of each is documented in ThreadState.swift.
enum {
    UTHREADS_STATE_FREE = 0,      ///< slot unused
    UTHREADS_STATE_READY = 1,     ///< on the policy's run queue
    UTHREADS_STATE_RUNNING = 2,   ///< the one thread on the CPU of this runtime
    UTHREADS_STATE_BLOCKED = 3,   ///< parked on a wait queue, wait_kind says which
    UTHREADS_STATE_SLEEPING = 4,  ///< parked with a deadline and no other wake source
    UTHREADS_STATE_FINISHED = 5,  ///< ran to completion; stack already returned
};

/// Bytes of PROT_NONE below every guarded stack and below every dense-mode slab (StackPool's
/// essay says why 1 MiB), and the slots of one dense-mode slab. The fault handler bounds how far
/// below its stack an overflowing thread's stack pointer can be with them.
#define UTHREADS_GUARD_REGION_SIZE 1048576
#define UTHREADS_DENSE_SLAB_SLOTS 1024

/// Stack modes.
enum {
    UTHREADS_STACK_GUARDED = 0,   ///< own mapping + PROT_NONE guard region below it
    UTHREADS_STACK_DENSE = 1,     ///< carved from a slab, no guard between slots, canary checked
    UTHREADS_STACK_KERNEL = 2,    ///< the main thread of the scheduler (kernel's stack)
};

/// Flag bits.
enum {
    UTHREADS_FLAG_CANCELLED = 1u << 0,   ///< cancel() was called
    UTHREADS_FLAG_MAIN = 1u << 2,        ///< the closure given to UThreadRuntime.run
    UTHREADS_FLAG_TIMER = 1u << 3,       ///< has an entry in the timer heap
    UTHREADS_FLAG_CANCELLABLE = 1u << 4, ///< the current park may be interrupted by cancel()
    UTHREADS_FLAG_OVERQUANTUM = 1u << 5, ///< ran past its time slice; switch at a safe point
    UTHREADS_FLAG_MIGRATABLE = 1u << 6,  ///< M:N: may resume on another worker (cleared for good by pinning)
    UTHREADS_FLAG_MOVABLE = 1u << 7,     ///< M:N: suspended at a site audited for resuming elsewhere
    UTHREADS_FLAG_IMMIGRANT = 1u << 8,   ///< M:N: owned by a worker other than its row's home
    UTHREADS_FLAG_UNAUDITED = 1u << 9,   ///< M:N: ready after a preemption at a site not audited for resuming elsewhere
    UTHREADS_FLAG_SCOPEPINNED = 1u << 10, ///< M:N: unmovable only while a thread group's scope lasts, migratable after it
    UTHREADS_FLAG_HOSTING = 1u << 11,    ///< its join runs a never-started thread as a call, not yet unhosted (Scheduler.swift, "Help-first join")
    UTHREADS_FLAG_DEFAULTSTACK = 1u << 12, ///< spawned with the default stack size: its finished row may be kept for a spawn with the default
};

#define UTHREADS_NAME_MAX 24
#define UTHREADS_CANARY 0x5554687264436e79ull  /* "UThrdCny" */

/// One row of the thread table. Field order is part of the gdb script's contract.
typedef struct uthreads_tcb {
    void *_Nullable sp;                       ///< saved stack pointer while not running
    struct uthreads_tcb *_Nullable next;      ///< intrusive link: run queue or wait queue
    struct uthreads_tcb *_Nullable prev;
    uint64_t id;                              ///< unique in the process, never reused
    uint8_t state;                            ///< UTHREADS_STATE_*
    uint8_t stack_mode;                       ///< UTHREADS_STACK_*
    uint8_t wait_kind;                        ///< WaitReason.Kind raw value while parked
    uint8_t wake_result;                      ///< why the last park ended
    uint32_t flags;                           ///< UTHREADS_FLAG_*
    int32_t priority;
    uint32_t timer_index;                     ///< position in the timer heap (FLAG_TIMER)
    uint64_t wait_object;                     ///< what it waits on (thread id, fd, lock id)
    void *_Nullable wait_queue;               ///< the WaitQueue it is linked on, if any
    char *_Nullable stack_lo;                 ///< lowest usable byte of the stack
    char *_Nullable stack_hi;                 ///< one past the highest byte (stack top)
    uint64_t guard_size;                      ///< bytes of PROT_NONE below stack_lo
    void *_Nullable exclusivity[2];           ///< Swift exclusivity access set while parked
    uint64_t parent_id;
    uint64_t created_tick;                    ///< uthreads_ticks() at spawn
    uint64_t deadline_ns;                     ///< wake-up time (CLOCK_MONOTONIC) while timed
    uint64_t wait_since_tick;                 ///< uthreads_ticks() when the current wait began
    uint64_t switches;                        ///< times switched in
    uint64_t cpu_ticks;                       ///< TSC ticks spent running
    uint64_t run_start_tick;                  ///< TSC at the last switch-in
    void *_Nullable object;                   ///< retained Swift object (closure, result, name)
    void *_Nullable runtime;                  ///< the scheduler that owns it
    uint64_t policy_data[2];                  ///< scratch for the scheduling policy
    char name[UTHREADS_NAME_MAX];             ///< NUL-terminated copy for C, gdb and signals
    // Appended for the scheduling policies; earlier offsets are unchanged.
    uint64_t sched_deadline_ns;               ///< EDF deadline, scheduler clock (UINT64_MAX: none)
    int32_t nice;                             ///< CFS nice value, -20...19
    uint32_t tickets;                         ///< lottery and stride tickets (>= 1)
    // Appended for M:N; earlier offsets are unchanged.
    int32_t worker;                           ///< index of the M:N worker that runs it; -1 under M:1
    uint32_t mn_abroad;                       ///< 1 while another worker owns the row (written by the home worker only)
    uint64_t mn_token;                        ///< token of its current cross-worker wait (0: none)
    void *_Nullable tsan_fiber;               ///< ThreadSanitizer's fiber for this context (TSan builds only)
    // 256 bytes: keep it so. One more field and zeroing a row at spawn becomes a memset call
    // (~+30 instructions per spawn, measured); per-thread M:N state lives in the ThreadObject.
} uthreads_tcb;

// MARK: - Per-kernel-thread state
//
// Read through non-inlined functions: a user thread may (under M:N) resume on another kernel
// thread, and a compiler is allowed to cache a thread-local's address across calls within one
// function. Calling out-of-line every time is the cure (see the design essay in Scheduler.swift).

void *_Nullable uthreads_get_runtime(void);
void uthreads_set_runtime(void *_Nullable runtime);
uthreads_tcb *_Nullable uthreads_get_current(void);
void uthreads_set_current(uthreads_tcb *_Nullable tcb);

/// The variables behind the accessors above (context.c), for the inline accessors below.
extern __thread void *_Nullable uthreads_tls_runtime __attribute__((tls_model("initial-exec")));
extern __thread uthreads_tcb *_Nullable uthreads_tls_current __attribute__((tls_model("initial-exec")));

/// Inline forms of uthreads_get_runtime and uthreads_set_current (one %fs-relative move, not a
/// call: ~5 instructions less per access). Only where no switch can come between two accesses
/// of one function that may run on an M:N worker (the compiler may reuse a thread-local's
/// address within a function): the help-first join, which runs only under M:1, and entry
/// points that read the runtime once, before anything else, in a function kept out of line
/// (`@inline(never)`: spawnThread, the join's wait).
static inline __attribute__((always_inline)) void *_Nullable uthreads_get_runtime_here(void) {
    return uthreads_tls_runtime;
}
static inline __attribute__((always_inline)) void uthreads_set_current_here(uthreads_tcb *_Nullable tcb) {
    uthreads_tls_current = tcb;
}

/// Offset of the "current user thread" thread-local from the thread pointer (initial-exec: the
/// same on every kernel thread). The jacket reads it with one %fs-relative load (jacket_link.c).
intptr_t uthreads_current_tls_offset(void);

// MARK: - Jacket (jacket_link.c)

/// Fills in the version and TLS offset of `table` (a `uthreads_jacket_runtime`, declared in
/// CUThreadsJacketABI, which this header does not include: the AArch64 check compiles it alone)
/// and gives it to the jacket (the opt-in interposer of blocking C calls,
/// Sources/UserThreadsJacket) when the program has one. Returns 1 when a jacket took it, 0 when
/// the program has none.
int uthreads_jacket_connect(void *_Nonnull table);
/// Tells the jacket, if the program has one, that `fd` is about to be closed by the runtime
/// (uthreads_jacket_forget; nothing without a jacket).
void uthreads_jacket_forget_descriptor(int fd);

// MARK: - Time-slice checkpoint (the explicit safe point)
//
// `UThread.checkpoint()` must cost about a nanosecond when no switch is due, so its fast path
// cannot call out of line (uthreads_get_runtime) or read the clock (rdtsc is ~10 ns here). It
// decrements a per-kernel-thread countdown; only when that reaches zero does the scheduler's
// slow path read the clock, compare it with the running thread's slice end, and either switch
// or re-arm the countdown (adaptively, so that the clock is read a few times per quantum).
// The scheduler sets the countdown to a huge value when the running thread has no slice (FIFO).
//
// This is the one piece of per-kernel-thread state read inline. Should a user thread ever
// resume on another kernel thread (M:N) with the address cached, the worst outcome is one
// early or late trip to the slow path, which re-reads everything through the out-of-line
// accessors: the countdown is a hint, never a decision.

extern __thread int64_t uthreads_checkpoint_countdown __attribute__((tls_model("initial-exec")));

/// True when the caller should enter the scheduler's slow path. One TLS decrement.
static inline __attribute__((always_inline)) int uthreads_checkpoint_tick(void) {
    return __builtin_expect(--uthreads_checkpoint_countdown <= 0, 0);
}
/// Re-arms the countdown (the scheduler's slow path and switch-in).
static inline void uthreads_checkpoint_arm(int64_t calls) { uthreads_checkpoint_countdown = calls; }

/// A spin-wait hint to the CPU (x86 `pause`, AArch64 `yield`), for bounded spins (M:N idle workers).
static inline void uthreads_cpu_relax(void) {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

// MARK: - ThreadSanitizer fibers (context.c)
//
// ThreadSanitizer keeps a shadow call stack per kernel thread; user-space switches would
// corrupt it (frames pushed by one user thread, popped by another; TSan then crashes inside its
// trace code). Under `-sanitize=thread` the scheduler tells TSan about every switch through its
// fiber API. In other builds `uthreads_tsan_enabled()` is 0 and the scheduler never calls the
// rest (one predictable branch on a field it already has in cache).

/// 1 when this library was compiled with ThreadSanitizer.
int uthreads_tsan_enabled(void);
/// Gives `tcb` a new TSan fiber.
void uthreads_tsan_fiber_create(uthreads_tcb *_Nonnull tcb);
/// Records the calling kernel thread's own fiber in `tcb` (the idle loop's block).
void uthreads_tsan_fiber_adopt(uthreads_tcb *_Nonnull tcb);
/// Destroys `tcb`'s fiber (from another fiber); no-op when it has none or adopted one.
void uthreads_tsan_fiber_destroy(uthreads_tcb *_Nonnull tcb);
/// `uthreads_switch` to `to`, telling TSan first that the kernel thread now runs `to`'s fiber.
/// Not instrumented itself, so TSan's function entries and exits stay balanced per fiber.
/// Returns like `uthreads_switch` (the resuming switch's `handoff`).
void *_Nullable uthreads_switch_tsan(void *_Nullable *_Nonnull from_sp, uthreads_tcb *_Nonnull to,
                                     void *_Nullable handoff);

/// The kernel's id of the calling kernel thread (gettid), for traces.
int32_t uthreads_gettid(void);

// MARK: - Swift runtime exclusivity state (exported by libswiftCore)

/// The two words of `tcb` that hold its exclusivity access set while it is not running.
static inline char *_Nonnull uthreads_exclusivity_state(uthreads_tcb *_Nonnull tcb) {
    return (char *)tcb->exclusivity;
}

/// Moves this kernel thread's dynamic-exclusivity access set into `state` (two words).
void swift_task_exitThreadLocalContext(char *_Nonnull state);
/// Installs the access set saved in `state` as this kernel thread's.
void swift_task_enterThreadLocalContext(char *_Nonnull state);
/// The address of the calling kernel thread's live access-set head inside libswiftCore, found
/// and verified once per call (exclusivity_head.c), or NULL where it cannot be found safely.
/// Valid for the calling kernel thread's life; read it only on that kernel thread.
void *_Nullable *_Nullable uthreads_exclusivity_head(void);

// MARK: - Swift runtime reference counting (exported by libswiftCore)

/// A strong retain of `object` by the Swift runtime's non-atomic retain
/// (`swift_nonatomic_retain`, what code compiled for a single thread calls): a plain add to the
/// count, no locked instruction and no hook test (10 instructions with this call against
/// swift_retain's 20). Only for an object that no other kernel thread can reference, so that
/// nothing else can change its count meanwhile (Scheduler.spawnKept). Returns `object`. Out of
/// line (refcount.c): Swift's LLVM passes know the runtime's name, and a call of it from Swift
/// code came out as `swift_retain`.
void *_Nonnull uthreads_retain_unshared(void *_Nonnull object);

/// The second word of a native Swift object, its inline reference counts (libswiftCore's
/// RefCount.h, 64-bit): bit 63 "the counts live in a side table", bits 33-62 the strong
/// references beyond the first, bit 32 "deinit has begun", bits 0-31 the unowned count and
/// flags. `uthreads_retain_if_unique` relies on that layout only where
/// `uthreads_refcount_layout_check` confirmed it against the runtime's own calls.
static inline __attribute__((always_inline)) uint64_t *_Nonnull uthreads_refcount_word(void *_Nonnull object) {
    return (uint64_t *)((char *)object + 8);
}

/// If `object`, a native Swift object the caller holds a strong reference to, has no other
/// strong reference (no other bits above 31: no second reference, no side table, no deinit
/// under way), adds one strong reference without a locked instruction and returns 1; else
/// returns 0 and changes nothing. The test is `isKnownUniquelyReferenced`'s (an acquire load:
/// a release by another kernel thread that made the object unique is seen before its reuse),
/// the add `swift_nonatomic_retain`'s: exact because no other kernel thread holds a reference
/// that could change the count meanwhile (Scheduler.spawnKept, MNThreadObject.reusableTwice); nor an `unowned` or `weak`
/// one, whose release would change the low bits under the plain store: thread objects are
/// referenced only strongly or through `Unmanaged` (keep it so). Only where
/// `uthreads_refcount_layout_check` returned 1; `uthreads_retain_if_unique_called` otherwise.
/// Inline: ~4 instructions against ~25 for the two runtime calls.
static inline __attribute__((always_inline)) int uthreads_retain_if_unique(void *_Nonnull object) {
    uint64_t *word = uthreads_refcount_word(object);
    uint64_t bits = __atomic_load_n(word, __ATOMIC_ACQUIRE);
    if (bits >> 32) return 0;
    __atomic_store_n(word, bits + ((uint64_t)1 << 33), __ATOMIC_RELAXED);
    return 1;
}

/// `uthreads_retain_if_unique` by the runtime's calls (`swift_isUniquelyReferenced_nonNull_native`,
/// then `swift_nonatomic_retain`), for where the layout check failed (refcount.c).
int uthreads_retain_if_unique_called(void *_Nonnull object);

/// Whether the inline counts of `object` behave as `uthreads_retain_if_unique` assumes, checked
/// against libswiftCore's retain, release and uniqueness test (refcount.c). `object` must be a
/// new native Swift object that the caller holds the only reference to and keeps alive during
/// the call; it has that one reference again when the call returns. Returns 1 or 0.
int uthreads_refcount_layout_check(void *_Nonnull object);

// MARK: - Clocks

/// Reads the time-stamp counter (no serialisation; ~20 cycles). 0 where unavailable.
uint64_t uthreads_ticks(void);
/// The same, inlined into the caller (the switch path).
static inline uint64_t uthreads_ticks_inline(void) {
#if defined(__x86_64__)
    return __builtin_ia32_rdtsc();
#elif defined(__aarch64__)
    uint64_t v;
    __asm__ volatile("mrs %0, cntvct_el0" : "=r"(v));
    return v;
#else
    return 0;
#endif
}
/// CLOCK_MONOTONIC in nanoseconds (vDSO, no system call).
uint64_t uthreads_monotonic_ns(void);

// MARK: - Fault handler (signals.c)

/// Installs (once per process) a SIGSEGV/SIGBUS handler that reports a user thread's stack
/// overflow (a fault in its guard region, or with its stack pointer below its stack), and gives
/// this kernel thread an alternate signal stack. Returns 0 or an errno value.
int uthreads_install_fault_handler(void);
/// Reports the overflow of `tcb`'s dense-mode stack found at a switch or exit (its canary
/// overwritten, or the stack pointer `sp` below the stack) on fd 2 and aborts.
_Noreturn void uthreads_report_dense_overflow(const uthreads_tcb *_Nonnull tcb, const void *_Nullable sp);

/// The caller's stack pointer (one instruction once inlined; the dense-mode check at a switch).
static inline __attribute__((always_inline)) void *_Nullable uthreads_stack_pointer(void) {
    void *sp;
#if defined(__x86_64__)
    __asm__ volatile("movq %%rsp, %0" : "=r"(sp));
#elif defined(__aarch64__)
    __asm__ volatile("mov %0, sp" : "=r"(sp));
#else
    sp = __builtin_frame_address(0);
#endif
    return sp;
}
/// How far below `tcb`'s stack its stack pointer may lie and still witness an overflow of it
/// (the fault handler's bound): dense mode, through every slot below it in its slab and the
/// guard region under the slab; guarded mode, a frame far larger than the guard region.
uintptr_t uthreads_overflow_reach(const uthreads_tcb *_Nonnull tcb);
/// Writes a string to fd 2 without allocating (async-signal-safe).
void uthreads_write_stderr(const char *_Nonnull message);

// MARK: - Memory

/// Counts the resident pages of [lo, hi) with mincore and returns the distance in bytes
/// from `hi` down to the lowest resident page (0 when none), or -errno.
long uthreads_resident_depth(void *_Nonnull lo, void *_Nonnull hi);


// MARK: - Backtraces (backtrace.c) and symbols (symbols.c)

/// Return addresses of a suspended thread, from its saved frame (the saved return address, then
/// the frame-pointer chain; x86-64 and AArch64), innermost first. Every frame pointer is checked
/// to lie inside [stack_lo, stack_hi). Returns the count written.
int uthreads_backtrace_saved(const uthreads_tcb *_Nonnull t, uint64_t *_Nonnull out, int max);
/// Return addresses of the caller, walking its own frame-pointer chain, bounded by the stack
/// of `t` (the running thread) or, when nil, 8 MiB above the caller's frame (a kernel stack).
int uthreads_backtrace_here(const uthreads_tcb *_Nullable t, uint64_t *_Nonnull out, int max);
/// Names the function containing `address`: dladdr, else the module's ELF .symtab; Swift names
/// demangled. Fills `symbol` (may stay empty), `module` (the file) and `offset` (from the
/// symbol's start). Returns 0 when the address is in no module, 1 when only the module is
/// known, 2 with a symbol. Not async-signal-safe.
int uthreads_symbolicate(uint64_t address, char *_Nonnull symbol, size_t symbol_size,
                         char *_Nonnull module, size_t module_size, uint64_t *_Nonnull offset);
/// The Swift runtime's demangler (exported by libswiftCore). Returns a malloc'd string when
/// `outputBuffer` is NULL, or NULL when `mangledName` is not a Swift symbol.
char *_Nullable swift_demangle(const char *_Nonnull mangledName, size_t mangledNameLength,
                               char *_Nullable outputBuffer, size_t *_Nullable outputBufferSize,
                               uint32_t flags);

// MARK: - Thread dumps on a signal (dump_signal.c)

/// Installs the dump handler for `sig` unless the program has its own handler for it (then
/// returns EBUSY) or ignores it (ENOTSUP). The handler only increments a counter. Returns 0 or an errno value.
int uthreads_install_dump_signal(int sig);
/// Dump requests received so far in the process (each runtime answers each one once).
uint64_t uthreads_dump_requests(void);

#define UTHREADS_DUMP_BELLS 64

/// Registers an eventfd that the dump handler writes 1 to on every request (so that a runtime
/// sleeping in epoll_wait on another kernel thread wakes). Returns the slot, or -1 when all
/// are taken. Remove the bell before closing the descriptor.
int uthreads_dump_bell_add(int fd);
/// Registers a futex word that the dump handler increments and wakes on every request (so that
/// a runtime sleeping on it in FUTEX_WAIT on another kernel thread wakes). Returns the slot,
/// or -1 when all are taken. Remove the bell before freeing the word.
int uthreads_dump_bell_add_futex(uint32_t *_Nonnull word);
/// Unregisters a bell; on return no handler writes to its descriptor or word any more.
void uthreads_dump_bell_remove(int slot);

// MARK: - A wake-up word for an idle kernel thread (futex.c)

/// Reads `word` with acquire ordering.
uint32_t uthreads_futex_load(const uint32_t *_Nonnull word);
/// Increments `word` (release) and wakes every kernel thread waiting on it.
void uthreads_futex_bump_and_wake(uint32_t *_Nonnull word);
/// Sleeps while `*word == expected`, for at most `nanoseconds` (UINT64_MAX: no limit). Returns
/// at once if the word differs; a signal, a wake or the timeout ends the wait (the caller
/// re-checks what it waits for). Returns 0 or the errno (EAGAIN, EINTR, ETIMEDOUT).
int uthreads_futex_wait(uint32_t *_Nonnull word, uint32_t expected, uint64_t nanoseconds);

// MARK: - The lock of a shared sync object (sync_lock.c)

/// Takes the lock `word` (0 when free; initialise it to 0): a compare-and-swap when free, else
/// a short spin, then FUTEX_WAIT. Not recursive.
void uthreads_sync_lock(uint32_t *_Nonnull word);
/// Releases the lock `word`, waking one kernel thread that sleeps on it.
void uthreads_sync_unlock(uint32_t *_Nonnull word);

// MARK: - Debugger registry (registry.c)

/// What a debugger needs to walk one runtime's thread table: its chunks of rows. Owned and
/// updated (only when the table grows) by ControlBlockTable.
typedef struct uthreads_table_view {
    uthreads_tcb *_Nullable *_Nullable chunks;  ///< `chunk_count` pointers to `chunk_size` rows
    uint64_t chunk_count;
    uint64_t chunk_size;
} uthreads_table_view;

#define UTHREADS_REGISTRY_SLOTS 256

/// One live runtime. `runtime` is NULL in a free slot.
typedef struct uthreads_registry_entry {
    void *_Nullable runtime;
    uthreads_table_view *_Nullable table;
    uint64_t kernel_tid;  ///< the kernel thread the runtime runs on (gdb's LWP)
} uthreads_registry_entry;

/// Claims a slot of `uthreads_runtime_registry` for a runtime; -1 when all are taken.
int uthreads_registry_add(uthreads_table_view *_Nonnull view, void *_Nonnull runtime);
void uthreads_registry_remove(int slot);
/// Runtimes live in the process.
int uthreads_registry_live_count(void);
/// The calling kernel thread's id (gettid).
int32_t uthreads_kernel_thread_id(void);

// MARK: - Control socket (control_socket.c)

/// A listening Unix stream socket at `path` (a stale socket file is replaced, a live one is
/// not: -EADDRINUSE). Returns the descriptor or -errno.
int uthreads_unix_listen(const char *_Nonnull path);
/// A connected Unix stream socket to `path`, or -errno.
int uthreads_unix_connect(const char *_Nonnull path);

#ifdef __cplusplus
}
#endif
#endif

// The reactor's system calls (epoll, eventfd, sockets).
#include "cuthreads_io.h"
