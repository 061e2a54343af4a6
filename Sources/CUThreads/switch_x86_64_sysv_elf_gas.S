/*
 * switch_x86_64_sysv_elf_gas.S — the user-space context switch for x86-64, System V ABI, ELF.
 *
 * uthreads_switch(void **from_sp, void *to_sp) is an ordinary call, so only what the ABI
 * makes callee-saved has to survive it: rbx, rbp, r12-r15, rsp, the MXCSR control bits and
 * the x87 control word. Everything else the caller already treats as clobbered.
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
 * pipeline); when rounding modes and masks agree, which is always in practice, the switch
 * pays two stores, two loads and two predicted branches.
 *
 * No system call anywhere: the kernel never learns that a switch happened.
 */

#if defined(__x86_64__) && defined(__ELF__)

.file "switch_x86_64_sysv_elf_gas.S"
.text

/* void uthreads_switch(void **from_sp /rdi/, void *to_sp /rsi/) */
.globl uthreads_switch
.type uthreads_switch,@function
.align 16
uthreads_switch:
    .cfi_startproc
    endbr64                         /* CET landing pad: this is an indirect-call target too */
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
    pushq   %r15                    /* ... on the outgoing thread's stack                   */
    .cfi_adjust_cfa_offset 8
    leaq    -8(%rsp), %rsp          /* room for MXCSR + x87 CW (lea: leaves flags alone)    */
    .cfi_adjust_cfa_offset 8
    stmxcsr (%rsp)                  /* save MXCSR (control + status) at offset 0            */
    fnstcw  4(%rsp)                 /* save the x87 control word at offset 4                */
    movq    %rsp, (%rdi)            /* publish the outgoing stack pointer: *from_sp = rsp   */

    movq    %rsi, %rsp              /* ---- now on the incoming thread's stack ----         */

    stmxcsr -8(%rsp)                /* live MXCSR into the red zone                         */
    movl    -8(%rsp), %eax          /* eax = live MXCSR                                     */
    xorl    (%rsp), %eax            /* eax = live ^ saved                                   */
    testl   $0xffc0, %eax           /* do the control bits (DAZ, masks, RC, FZ) differ?     */
    jnz     2f                      /* rare: restore them (out of line)                     */
1:
    fnstcw  -8(%rsp)                /* live x87 control word into the red zone              */
    movzwl  -8(%rsp), %eax          /* eax = live CW                                        */
    cmpw    4(%rsp), %ax            /* same as the saved one?                               */
    jne     3f                      /* rare: restore it (out of line)                       */
4:
    leaq    8(%rsp), %rsp           /* drop the FP control slot                             */
    popq    %r15                    /* restore the incoming thread's registers ...          */
    popq    %r14
    popq    %r13
    popq    %r12
    popq    %rbx
    popq    %rbp                    /* ... in reverse order                                 */
    ret                             /* resume the incoming thread where it called switch    */

2:  /* MXCSR control bits differ: keep the live status bits, take the saved control bits */
    movl    -8(%rsp), %eax          /* eax = live MXCSR                                     */
    andl    $0x003f, %eax           /* keep only the live status bits                        */
    movl    (%rsp), %ecx            /* ecx = saved MXCSR                                    */
    andl    $0xffc0, %ecx           /* keep only its control bits                            */
    orl     %ecx, %eax              /* combine                                               */
    movl    %eax, -8(%rsp)
    ldmxcsr -8(%rsp)                /* install                                               */
    jmp     1b

3:  /* x87 control word differs */
    fldcw   4(%rsp)                 /* install the saved control word                        */
    jmp     4b
    .cfi_endproc
.size uthreads_switch,.-uthreads_switch

/*
 * uthreads_trampoline: the return address of a new context's first frame
 * (see uthreads_context_make in context.c). r12 = entry function, r13 = its argument.
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

#endif

/* This object needs no executable stack. */
.section .note.GNU-stack,"",%progbits
