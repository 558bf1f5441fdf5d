/*
 * pytender guest runtime: entry point and CPU exception stubs.
 *
 * The tender enters _start in 64-bit mode with %rdi = boot info GPA and
 * %rsp = mem_size - 8, interrupts disabled.
 */

    .section .text.start, "ax", @progbits
    .globl _start
    .type _start, @function
_start:
    /* Keep the top 64 bytes of RAM as scratch that no frame uses
     * (the hostile guest places an argument struct at mem_size-16). */
    subq $56, %rsp
    andq $-16, %rsp
    xorl %ebp, %ebp
    call rt_start           /* boot.c, never returns */
1:  hlt
    jmp 1b
    .size _start, . - _start

/* ---- CPU exception entry (vectors 0-31) ---------------------------------
 * Every stub leaves the same frame: [vector][error code][hw frame]. */
    .text
.macro TRAP_NOEC vec
    .globl rt_trap\vec
rt_trap\vec:
    pushq $0
    pushq $\vec
    jmp rt_trap_common
.endm
.macro TRAP_EC vec
    .globl rt_trap\vec
rt_trap\vec:
    pushq $\vec
    jmp rt_trap_common
.endm

TRAP_NOEC 0
TRAP_NOEC 1
TRAP_NOEC 2
TRAP_NOEC 3
TRAP_NOEC 4
TRAP_NOEC 5
TRAP_NOEC 6
TRAP_NOEC 7
TRAP_EC   8
TRAP_NOEC 9
TRAP_EC   10
TRAP_EC   11
TRAP_EC   12
TRAP_EC   13
TRAP_EC   14
TRAP_NOEC 15
TRAP_NOEC 16
TRAP_EC   17
TRAP_NOEC 18
TRAP_NOEC 19
TRAP_NOEC 20
TRAP_EC   21
TRAP_NOEC 22
TRAP_NOEC 23
TRAP_NOEC 24
TRAP_NOEC 25
TRAP_NOEC 26
TRAP_NOEC 27
TRAP_NOEC 28
TRAP_EC   29
TRAP_EC   30
TRAP_NOEC 31

rt_trap_common:
    cld
    pushq %rax
    pushq %rbx
    pushq %rcx
    pushq %rdx
    pushq %rsi
    pushq %rdi
    pushq %rbp
    pushq %r8
    pushq %r9
    pushq %r10
    pushq %r11
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    /* The faulting code may have clobbered FS base (test "notls"); the C
     * handler is allowed to use the stack protector, so restore it first. */
    movl $0xc0000100, %ecx
    movq rt_tcb_ptr(%rip), %rax
    movq %rax, %rdx
    shrq $32, %rdx
    wrmsr
    movq %rsp, %rdi
    andq $-16, %rsp
    call rt_trap_handler    /* never returns */
2:  hlt
    jmp 2b

/* Table of stub addresses for the IDT set-up in boot.c */
    .section .rodata
    .globl rt_trap_stubs
    .balign 8
rt_trap_stubs:
    .irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    .quad rt_trap\v
    .endr

    .section .note.GNU-stack, "", @progbits
