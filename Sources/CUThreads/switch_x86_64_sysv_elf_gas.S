/*
 * switch_x86_64_sysv_elf_gas.S — the user-space context switch for x86-64, System V ABI, ELF.
 *
 * uthreads_switch(void **from_sp, void *to_sp, void *handoff) is an ordinary call, so only
 * what the ABI makes callee-saved has to survive it: rbx, rbp, r12-r15, rsp, the MXCSR
 * control bits and the x87 control word. Everything else the caller already treats as
 * clobbered.
 *
 * The return value is the *switcher's* `handoff` (rdx), not the resumed thread's own: rdx is
 * caller-saved, so nothing restores it across the stack swap, and it still holds the third
 * argument of whoever switched to us when it is copied to rax just before `ret`. The
 * scheduler passes itself there; under M:N a thread may be resumed by another worker's
 * scheduler, and this is how it learns which one without a thread-local read (Scheduler.swift).
 *
 * The saved frame lives on the suspended thread's own stack; the thread table keeps only its
 * address (uthreads_tcb.sp):
 *
 *   ---------------------------------------------------------------------------
 *   | offset |  0    |  4     |  8  | 16  | 24  | 32  | 40  | 48  |  56      |
 *   ---------------------------------------------------------------------------
 *   | saved  | MXCSR | x87 CW | r15 | r14 | r13 | r12 | rbx | rbp | rip (ret)|
 *   ---------------------------------------------------------------------------
 *   sp -> offset 0; 64 bytes; sp is 16-byte aligned (the caller's rsp was, before its call)
 *
 * MXCSR and the x87 control word are restored only when their *control* bits differ from the
 * live ones. The MXCSR status (sticky exception) bits are not callee-saved, and an ldmxcsr
 * that changes them costs ~10x the whole switch on this class of machine (it serialises the
 * pipeline). The live values are the ones just saved for the outgoing thread, kept in rax
 * across the stack swap, so the incoming thread's are compared with a register, not read
 * again: when rounding modes and masks agree, which is always in practice, the switch pays
 * one stmxcsr, one fnstcw, two loads and one predicted branch.
 *
 * No system call anywhere: the kernel never learns that a switch happened.
 */

#if defined(__x86_64__) && defined(__ELF__)

.file "switch_x86_64_sysv_elf_gas.S"
.text

/*
 * The frame in the table above, pushed on the running stack (uthreads_switch and
 * uthreads_call_on_stack: one layout, written once).
 */
.macro SAVE_SWITCH_FRAME
    pushq   %rbp                    /* save the callee-saved integer registers ...          */
    .cfi_adjust_cfa_offset 8
    pushq   %rbx
    .cfi_adjust_cfa_offset 8
    pushq   %r12
    .cfi_adjust_cfa_offset 8
    pushq   %r13
    .cfi_adjust_cfa_offset 8
    pushq   %r14
    .cfi_adjust_cfa_offset 8
    pushq   %r15                    /* ... on the running stack                             */
    .cfi_adjust_cfa_offset 8
    leaq    -8(%rsp), %rsp          /* room for MXCSR + x87 CW (lea: leaves flags alone)    */
    .cfi_adjust_cfa_offset 8
    stmxcsr (%rsp)                  /* save MXCSR (control + status) at offset 0            */
    fnstcw  4(%rsp)                 /* save the x87 control word at offset 4                */
.endm

/* void *uthreads_switch(void **from_sp /rdi/, void *to_sp /rsi/, void *handoff /rdx/) */
.globl uthreads_switch
.type uthreads_switch,@function
.align 16
uthreads_switch:
    .cfi_startproc
    endbr64                         /* CET landing pad: this is an indirect-call target too */
    SAVE_SWITCH_FRAME               /* on the outgoing thread's stack                       */
    movq    (%rsp), %rax            /* rax = outgoing MXCSR | CW << 32 = the live values    */
    movq    %rsp, (%rdi)            /* publish the outgoing stack pointer: *from_sp = rsp   */

    movq    %rsi, %rsp              /* ---- now on the incoming thread's stack ----         */

    movq    (%rsp), %rcx            /* rcx = incoming saved MXCSR | CW << 32                */
    xorq    %rax, %rcx              /* which bits differ from the live ones?                */
    movabsq $0x0000ffff0000ffc0, %r8 /* control bits: MXCSR 6-15, the whole x87 CW         */
    testq   %r8, %rcx               /* any control bit different?                           */
    jnz     2f                      /* rare: restore them (out of line)                     */
1:
    leaq    8(%rsp), %rsp           /* drop the FP control slot                             */
    popq    %r15                    /* restore the incoming thread's registers ...          */
    popq    %r14
    popq    %r13
    popq    %r12
    popq    %rbx
    popq    %rbp                    /* ... in reverse order                                 */
    movq    %rdx, %rax              /* return the switcher's handoff (rdx kept since entry) */
    ret                             /* resume the incoming thread where it called switch    */

2:  /* control bits differ: take the saved control bits, keep the live MXCSR status bits */
    movl    %eax, %ecx              /* ecx = live MXCSR                                     */
    andl    $0x003f, %ecx           /* keep only the live status (sticky exception) bits    */
    movl    (%rsp), %r8d            /* r8d = saved MXCSR (rdx is the handoff: keep it)      */
    andl    $0xffc0, %r8d           /* keep only its control bits                           */
    orl     %r8d, %ecx              /* combine                                              */
    movl    %ecx, -8(%rsp)          /* via the red zone ...                                 */
    ldmxcsr -8(%rsp)                /* ... install MXCSR                                    */
    fldcw   4(%rsp)                 /* install the saved x87 control word                   */
    jmp     1b
    .cfi_endproc
.size uthreads_switch,.-uthreads_switch

/*
 * uthreads_trampoline: the return address of a new context's first frame
 * (see uthreads_context_make in cuthreads.h). r12 = entry function, r13 = its argument.
 * rsp is 16-byte aligned here, so the call below gives entry the ABI's alignment.
 */
.globl uthreads_trampoline
.type uthreads_trampoline,@function
.align 16
uthreads_trampoline:
    .cfi_startproc
    .cfi_undefined rip              /* no caller: unwinders and backtraces stop here        */
    endbr64                         /* reached by ret, an indirect branch under CET         */
    xorl    %ebp, %ebp              /* frame-pointer chain ends here too                    */
    movq    %r13, %rdi              /* first argument: arg                                  */
    callq   *%r12                   /* entry(arg): never returns                            */
    ud2                             /* entry returned: a runtime bug; trap loudly            */
    .cfi_endproc
.size uthreads_trampoline,.-uthreads_trampoline

/*
 * void *uthreads_call_on_stack(arg /rdi/, fn /rsi/, stack_top /rdx/, void **save_sp /rcx/):
 * fn(arg) on another stack (cuthreads.h). First the caller's callee-saved state is saved in
 * exactly uthreads_switch's frame (the table above) on the caller's stack, and *save_sp is
 * set to it: the caller is then resumable by an ordinary switch, which returns here as from
 * uthreads_switch, with the switcher's handoff. When fn returns instead, the frame is
 * dropped and NULL returned. rbx (callee-saved, so fn keeps it) holds the frame meanwhile;
 * fn's frames do not link to the caller's (rbp = 0, the return address undefined to
 * unwinders, as at the trampoline): the caller may be resumed apart from them.
 */
.globl uthreads_call_on_stack
.type uthreads_call_on_stack,@function
.align 16
uthreads_call_on_stack:
    .cfi_startproc
    endbr64                         /* CET landing pad: may be reached by an indirect call   */
    SAVE_SWITCH_FRAME               /* uthreads_switch's frame, on the caller's stack         */
    movq    %rsp, (%rcx)            /* *save_sp = the frame: resumable by a switch from here  */
    movq    %rsp, %rbx              /* rbx = the frame (fn keeps it)                          */
    xorl    %ebp, %ebp              /* fn's frame-pointer chain ends here                     */
    movq    %rdx, %rsp              /* the other stack (16-byte aligned: fn gets the ABI's)   */
    .cfi_undefined rip              /* unwinders stop here (fn's caller may run apart)        */
    callq   *%rsi                   /* fn(arg); rdi is arg already                            */
    leaq    40(%rbx), %rsp          /* fn returned: back on the caller's stack, at rbx's slot */
    popq    %rbx                    /* r12-r15 are the caller's still (fn kept them)          */
    popq    %rbp
    xorl    %eax, %eax              /* NULL: fn returned (a resume by switch returns non-NULL) */
    ret
    .cfi_endproc
.size uthreads_call_on_stack,.-uthreads_call_on_stack

/*
 * The GNU property note: this object is IBT-compatible (every indirect-branch target above
 * starts with endbr64; the numbered labels are reached only by direct jumps). The linker ANDs
 * the notes of all objects, so an object without one turned IBT off for the whole executable.
 * SHSTK is *not* claimed: a switch returns on another stack than it was called on, which a
 * shadow stack would fault (supporting it needs a shadow stack per user thread, switched with
 * rstorssp/saveprevssp). Layout: x86-64 ABI, "GNU Program Properties"; 8-byte aligned.
 */
.section .note.gnu.property,"a"
.p2align 3
.long 4                             /* n_namesz: "GNU\0"                                    */
.long 16                            /* n_descsz: one property, padded to 8                  */
.long 5                             /* n_type: NT_GNU_PROPERTY_TYPE_0                       */
.asciz "GNU"
.long 0xc0000002                    /* pr_type: GNU_PROPERTY_X86_FEATURE_1_AND              */
.long 4                             /* pr_datasz                                            */
.long 1                             /* GNU_PROPERTY_X86_FEATURE_1_IBT                       */
.p2align 3                          /* pr_padding                                           */

#endif

/* This object needs no executable stack. */
.section .note.GNU-stack,"",%progbits
