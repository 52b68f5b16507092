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
