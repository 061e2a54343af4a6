/*
 * switch_aarch64_aapcs_elf_gas.S — the user-space context switch for AArch64, AAPCS64, ELF
 * (Linux), GNU as syntax.
 *
 * uthreads_switch(void **from_sp, void *to_sp, void *handoff) is an ordinary call, so only
 * what AAPCS64 makes callee-saved has to survive it: x19-x28, the frame pointer x29, the link register
 * x30 (it is where we return to), sp, the low 64 bits of v8-v15 (d8-d15) and the FPCR
 * control register (rounding mode, flush-to-zero, default-NaN, trap enables). Everything
 * else the caller already treats as clobbered. x18 is the platform register; on Linux it is
 * an ordinary temporary and is not saved. The FPSR (cumulative exception flags, QC) is
 * status, not control, and is deliberately left alone, as the ABI allows.
 *
 * The return value is the *switcher's* `handoff` (x2), not the resumed thread's own: x2 is
 * caller-saved and untouched below, so it still holds the third argument of whoever switched
 * to us when it is copied to x0 just before `ret`. The scheduler passes itself there; under
 * M:N a thread may be resumed by another worker's scheduler, and this is how it learns which
 * one without a thread-local read (Scheduler.swift).
 *
 * The saved frame lives on the suspended thread's own stack; the thread table keeps only its
 * address (uthreads_tcb.sp):
 *
 *   -----------------------------------------------------------------
 *   | offset | 0x00 | 0x08 | 0x10 | 0x18 | 0x20 | 0x28 | 0x30 | 0x38 |
 *   -----------------------------------------------------------------
 *   | saved  |  d8  |  d9  |  d10 |  d11 |  d12 |  d13 |  d14 |  d15 |
 *   -----------------------------------------------------------------
 *   | offset | 0x40 | 0x48 | 0x50 | 0x58 | 0x60 | 0x68 | 0x70 | 0x78 |
 *   -----------------------------------------------------------------
 *   | saved  |  x19 |  x20 |  x21 |  x22 |  x23 |  x24 |  x25 |  x26 |
 *   -----------------------------------------------------------------
 *   | offset | 0x80 | 0x88 | 0x90 | 0x98 | 0xa0 | 0xa8 |
 *   ---------------------------------------------------
 *   | saved  |  x27 |  x28 | FPCR |  (0) | x29  | x30  |
 *   |        |      |      |      | pad  | (fp) | (lr) |
 *   ---------------------------------------------------
 *   sp -> offset 0x00; 0xb0 = 176 bytes; sp stays 16-byte aligned throughout.
 *   The top 16 bytes (fp, lr) form an ordinary AAPCS64 frame record, so a debugger that
 *   knows only the saved sp of a suspended thread finds its frame chain at sp + 0xa0.
 *
 * A new context (uthreads_context_make_aarch64, below) gets the same frame with
 * x19 = entry, x20 = arg, lr = uthreads_trampoline and every other slot 0 (FPCR 0 is the
 * Linux default: round to nearest, no traps, no flush-to-zero, no default-NaN).
 *
 * FPCR is restored only when it differs from the live value. An MSR to FPCR may be
 * self-synchronising on some cores (tens of cycles, more than the whole switch); when
 * rounding modes agree, which is always in practice, the switch pays one MRS, one store,
 * one load, a compare and a predicted branch.
 *
 * Branch protection: both global functions start with a BTI landing pad (HINT encodings,
 * so the file assembles for any ARMv8-A and is a NOP on cores without BTI). None of the
 * functions sign the link register: uthreads_switch is a leaf that saves and reloads x30
 * verbatim, and the callers' own PAC-signed return addresses live in their frames,
 * untouched. A .note.gnu.property advertising BTI/PAC compatibility is emitted when the
 * compiler is asked for branch protection (-mbranch-protection=...), so that linking this
 * object does not turn BTI off for the whole executable.
 *
 * No system call anywhere: the kernel never learns that a switch happened.
 */

#if defined(__aarch64__) && defined(__ELF__)

.file "switch_aarch64_aapcs_elf_gas.S"
.text

/* Frame offsets (see the table above). */
#define UT_FRAME_SIZE  0xb0
#define UT_OFF_D8      0x00
#define UT_OFF_X19     0x40
#define UT_OFF_FPCR    0x90
#define UT_OFF_FP      0xa0

/*
 * The frame in the table above, on the running stack (uthreads_switch and
 * uthreads_call_on_stack: one layout, written once). Leaves the live FPCR in x9.
 */
.macro SAVE_SWITCH_FRAME
    sub     sp, sp, #UT_FRAME_SIZE  // make room for the frame (176: sp stays 16-aligned)
    .cfi_def_cfa_offset UT_FRAME_SIZE
    stp     d8, d9, [sp, #0x00]     // save the callee-saved FP/SIMD low halves ...
    stp     d10, d11, [sp, #0x10]
    stp     d12, d13, [sp, #0x20]
    stp     d14, d15, [sp, #0x30]   // ... d8-d15
    stp     x19, x20, [sp, #0x40]   // save the callee-saved integer registers ...
    stp     x21, x22, [sp, #0x50]
    stp     x23, x24, [sp, #0x60]
    stp     x25, x26, [sp, #0x70]
    stp     x27, x28, [sp, #0x80]   // ... x19-x28
    stp     x29, x30, [sp, #0xa0]   // save fp and lr (the resume address) as a frame record
    .cfi_offset x29, -16
    .cfi_offset x30, -8
    mrs     x9, fpcr                // x9 = the live FPCR
    str     x9, [sp, #UT_OFF_FPCR]  // save it (the pad slot at 0x98 is never read)
.endm

/* void *uthreads_switch(void **from_sp /x0/, void *to_sp /x1/, void *handoff /x2/) */
.globl uthreads_switch
.type uthreads_switch,%function
.p2align 4
uthreads_switch:
    .cfi_startproc
    hint    #34                     // bti c: landing pad, may be reached by an indirect call
    SAVE_SWITCH_FRAME               // on the outgoing thread's stack; x9 = its live FPCR
    mov     x10, sp                 // sp cannot be the source of a str: go through x10
    str     x10, [x0]               // publish the outgoing stack pointer: *from_sp = sp

    mov     sp, x1                  // ---- now on the incoming thread's stack ----
                                    // (same frame layout, so the CFI above still holds)

    ldr     x10, [sp, #UT_OFF_FPCR] // x10 = the incoming thread's saved FPCR
    cmp     x9, x10                 // x9 is still the live FPCR: nothing has written it
    b.ne    2f                      // rare: they differ, install it (out of line)
1:
    ldp     d8, d9, [sp, #0x00]     // restore the incoming thread's d8-d15 ...
    ldp     d10, d11, [sp, #0x10]
    ldp     d12, d13, [sp, #0x20]
    ldp     d14, d15, [sp, #0x30]   // ... (upper halves of v8-v15 are not callee-saved)
    ldp     x19, x20, [sp, #0x40]   // restore x19-x28 ...
    ldp     x21, x22, [sp, #0x50]
    ldp     x23, x24, [sp, #0x60]
    ldp     x25, x26, [sp, #0x70]
    ldp     x27, x28, [sp, #0x80]   // ... (for a new context: x19 = entry, x20 = arg)
    ldp     x29, x30, [sp, #0xa0]   // restore fp and the resume address
    mov     x0, x2                  // return the switcher's handoff (x2 kept since entry)
    .cfi_remember_state
    add     sp, sp, #UT_FRAME_SIZE  // drop the frame: sp is the caller's sp again
    .cfi_def_cfa_offset 0
    .cfi_restore x29
    .cfi_restore x30
    ret                             // resume the incoming thread where it called switch
                                    // (a new context: lands in uthreads_trampoline)
    .cfi_restore_state
2:  /* FPCR differs: install the saved one. Rare, and possibly slow. */
    msr     fpcr, x10               // FPCR = the incoming thread's control bits
    b       1b                      // back to the common restore path
    .cfi_endproc
.size uthreads_switch,.-uthreads_switch

/*
 * uthreads_trampoline: the resume address (lr slot) of a new context's first frame.
 * x19 = entry function, x20 = its argument; sp = the 16-byte aligned stack top.
 *
 * It is entered only by the `ret` at the end of uthreads_switch. RET is not a BTI-checked
 * branch (it leaves PSTATE.BTYPE at 0), so no landing pad is required; `bti jc` is placed
 * anyway (it executes as a NOP) so that the trampoline stays valid if a future switch
 * reaches it with `br` or `blr` instead.
 */
.globl uthreads_trampoline
.type uthreads_trampoline,%function
.p2align 4
uthreads_trampoline:
    .cfi_startproc
    .cfi_undefined x30              // no caller: unwinders and backtraces stop here
    hint    #38                     // bti jc: harmless landing pad (see above)
    mov     x29, xzr                // fp = 0: the frame-pointer chain ends here too
    mov     x0, x20                 // first argument: arg
    blr     x19                     // entry(arg): never returns
    brk     #0                      // entry returned: a runtime bug; trap loudly (SIGTRAP)
    .cfi_endproc
.size uthreads_trampoline,.-uthreads_trampoline

/*
 * void *uthreads_context_make_aarch64(void *stack_top /x0/, void (*entry)(void *) /x1/,
 *                                     void *arg /x2/)
 *
 * Writes the first frame of a new context just below stack_top (rounded down to 16 bytes)
 * and returns its address, to be passed as to_sp to uthreads_switch. The frame is the one
 * in the table above: every slot 0 except x19 = entry, x20 = arg and x30 = the trampoline.
 * After the first switch restores it, sp = the aligned top, which the trampoline hands on
 * to entry. Touches only the 176 bytes below the aligned top (the contract allows 256).
 */
.globl uthreads_context_make_aarch64
.type uthreads_context_make_aarch64,%function
.p2align 4
uthreads_context_make_aarch64:
    .cfi_startproc
    hint    #34                     // bti c: landing pad, may be reached by an indirect call
    and     x0, x0, #~15            // align the top down to 16 bytes
    sub     x0, x0, #UT_FRAME_SIZE  // x0 = the frame (16-aligned, like a saved one)
    stp     xzr, xzr, [x0, #0x00]   // d8, d9 = 0.0 ...
    stp     xzr, xzr, [x0, #0x10]
    stp     xzr, xzr, [x0, #0x20]
    stp     xzr, xzr, [x0, #0x30]   // ... d14, d15 = 0.0
    stp     x1, x2, [x0, #0x40]     // x19 = entry, x20 = arg
    stp     xzr, xzr, [x0, #0x50]   // x21, x22 = 0 ...
    stp     xzr, xzr, [x0, #0x60]
    stp     xzr, xzr, [x0, #0x70]
    stp     xzr, xzr, [x0, #0x80]   // ... x27, x28 = 0
    stp     xzr, xzr, [x0, #0x90]   // FPCR = 0 (Linux default), pad = 0
    adrp    x9, uthreads_trampoline // x9 = &uthreads_trampoline (PC-relative, PIC-safe) ...
    add     x9, x9, :lo12:uthreads_trampoline
    stp     xzr, x9, [x0, #0xa0]    // fp = 0 (ends the chain), lr = the trampoline
    ret                             // return the frame address: the new context's sp
    .cfi_endproc
.size uthreads_context_make_aarch64,.-uthreads_context_make_aarch64

/*
 * void *uthreads_call_on_stack(arg /x0/, fn /x1/, stack_top /x2/, void **save_sp /x3/):
 * fn(arg) on another stack (cuthreads.h). First the caller's callee-saved state is saved in
 * exactly uthreads_switch's frame (the table above) on the caller's stack, and *save_sp is
 * set to it: the caller is then resumable by an ordinary switch, which returns here as from
 * uthreads_switch, with the switcher's handoff. When fn returns instead, the frame is
 * dropped and NULL returned. x19 (callee-saved, so fn keeps it) holds the frame meanwhile;
 * fn's frames do not link to the caller's (fp = 0, the return address undefined to
 * unwinders, as at the trampoline): the caller may be resumed apart from them.
 */
.globl uthreads_call_on_stack
.type uthreads_call_on_stack,%function
.p2align 4
uthreads_call_on_stack:
    .cfi_startproc
    hint    #34                     // bti c: landing pad, may be reached by an indirect call
    SAVE_SWITCH_FRAME               // uthreads_switch's frame, on the caller's stack
    mov     x19, sp                 // x19 = the frame (fn keeps it)
    str     x19, [x3]               // *save_sp = the frame: resumable by a switch from here
    mov     x29, xzr                // fn's frame-pointer chain ends here
    mov     sp, x2                  // the other stack (16-byte aligned)
    .cfi_undefined x30              // unwinders stop here (fn's caller may run apart)
    blr     x1                      // fn(arg); x0 is arg already
    mov     sp, x19                 // fn returned: back on the caller's stack
    ldr     x19, [sp, #0x40]        // x20-x28, d8-d15 are the caller's still (fn kept them)
    ldp     x29, x30, [sp, #0xa0]
    add     sp, sp, #UT_FRAME_SIZE
    mov     x0, xzr                 // NULL: fn returned (a resume by switch returns non-NULL)
    ret
    .cfi_endproc
.size uthreads_call_on_stack,.-uthreads_call_on_stack

/*
 * GNU property note: this object is compatible with BTI (every indirect-branch target has a
 * landing pad) and with PAC-RET (it never signs or authenticates). Emitted only when the
 * compiler is building with branch protection, mirroring what it does for C objects.
 */
#if defined(__ARM_FEATURE_BTI_DEFAULT) || defined(__ARM_FEATURE_PAC_DEFAULT)
#if defined(__ARM_FEATURE_BTI_DEFAULT)
#define UT_GNU_PROPERTY_BTI 1       /* GNU_PROPERTY_AARCH64_FEATURE_1_BTI */
#else
#define UT_GNU_PROPERTY_BTI 0
#endif
#if defined(__ARM_FEATURE_PAC_DEFAULT)
#define UT_GNU_PROPERTY_PAC 2       /* GNU_PROPERTY_AARCH64_FEATURE_1_PAC */
#else
#define UT_GNU_PROPERTY_PAC 0
#endif
    .pushsection .note.gnu.property, "a"
    .p2align 3
    .word   4                       // n_namesz: "GNU\0"
    .word   16                      // n_descsz: one property, padded to 8 bytes
    .word   5                       // n_type: NT_GNU_PROPERTY_TYPE_0
    .asciz  "GNU"
    .word   0xc0000000              // pr_type: GNU_PROPERTY_AARCH64_FEATURE_1_AND
    .word   4                       // pr_datasz
    .word   (UT_GNU_PROPERTY_BTI | UT_GNU_PROPERTY_PAC)
    .word   0                       // padding to 8 bytes
    .popsection
#endif

#endif

/* This object needs no executable stack. */
.section .note.GNU-stack,"",%progbits
