/* Fiber context switch for x86-64 System V: saves only what a call must preserve (rbp, rbx, r12-r15,
 * MXCSR and the x87 control word), so a switch costs tens of nanoseconds where glibc's swapcontext
 * makes a sigprocmask syscall each time. Other targets use the ucontext fallback in fiber.cpp. */
#if defined(__x86_64__) && defined(__ELF__)
    .text

/* void emu_ctx_switch(void **save_sp, void *load_sp) */
    .globl emu_ctx_switch
    .hidden emu_ctx_switch
    .type emu_ctx_switch, @function
    .p2align 4
emu_ctx_switch:
    endbr64
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size emu_ctx_switch, .-emu_ctx_switch

/* First frame of every fiber (see fiber_reset): r12 = argument, r13 = function, which never returns. */
    .globl emu_fiber_entry
    .hidden emu_fiber_entry
    .type emu_fiber_entry, @function
    .p2align 4
emu_fiber_entry:
    .cfi_startproc
    .cfi_undefined rip
    endbr64
    movq %r12, %rdi
    callq *%r13
    ud2
    .cfi_endproc
    .size emu_fiber_entry, .-emu_fiber_entry
#endif
    .section .note.GNU-stack,"",@progbits
