/* Entry of the ld.so shim. The kernel enters here with %rsp at argc (argv, envp and
 * the auxiliary vector follow). shim_main edits the vector in place and returns the
 * real ld.so's entry; we jump there with the original %rsp, as the kernel would. */
#include "uwrx_control.h"

	.text
	.globl _start
	.type _start, @function
_start:
	.cfi_startproc
	.cfi_undefined rip
	xor %ebp, %ebp
	mov %rsp, %rbx          /* callee-saved: survives the call */
	mov %rsp, %rdi
	and $-16, %rsp
	call shim_main
	mov %rbx, %rsp
	xor %ebx, %ebx
	xor %ecx, %ecx
	xor %edx, %edx          /* no atexit function for the program's _start */
	xor %esi, %esi
	xor %edi, %edi
	xor %r8d, %r8d
	xor %r9d, %r9d
	xor %r10d, %r10d
	xor %r11d, %r11d
	jmp *%rax
	.cfi_endproc
	.size _start, . - _start

/* From a rewritten system call site of ld.so (uwrx_recorder.h, "the dynamic linker's
 * own calls"), through that site's stub, which moved %rsp past ld.so's red zone and ran
 * the instruction the rewrite replaced: the call's registers in (%rax, %rdi, %rsi, %rdx,
 * %r10, %r8, %r9), its result out in %rax, and every other register the syscall
 * instruction keeps kept (%rcx and %r11 it clobbers anyway). */
	.text
	.balign 16
	.type ldso_common, @function
ldso_common:
	push %rdi
	push %rsi
	push %rdx
	push %r8
	push %r9
	push %r10
	push %rbx
	mov %rsp, %rbx
	and $-16, %rsp
	sub $8, %rsp
	push %r9                /* the seventh argument: the call's sixth */
	mov %r8, %r9
	mov %r10, %rcx
	mov %rax, %r8
	call shim_ldso_call
	mov %rbx, %rsp
	pop %rbx
	pop %r10
	pop %r9
	pop %r8
	pop %rdx
	pop %rsi
	pop %rdi
	ret
	.size ldso_common, . - ldso_common

/* Room for the sites' stubs, written by the combiner (src/reproducibility/ldso-rewrite.ts),
 * which finds it by its magic: then the distance to ldso_common, then the stubs. */
	.balign 16
ldso_stubs:
	.ascii UWRX_LDSO_STUBS_MAGIC
	.byte 0
	.quad ldso_common - ldso_stubs
	.fill UWRX_SHIM_MAX_SITES * UWRX_LDSO_STUB_SIZE, 1, 0xcc

/* Marks this file as the shim so it never loads itself as "the real ld.so". */
	.section .note.uwrx, "a", @note
	.balign 4
	.long 5                 /* namesz: "uwrx\0" */
	.long 4                 /* descsz */
	.long UWRX_SHIM_NOTE_TYPE
	.asciz UWRX_SHIM_NOTE_NAME
	.balign 4
	.long UWRX_CONTROL_VERSION
	.balign 4

	.section .note.GNU-stack, "", @progbits
