/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The COLO end-to-end tests' guest: a multiboot kernel (QEMU -kernel, no
 * disk, no network) that increments the first byte of every page from
 * PATTERN_START to PATTERN_END, over and over, and writes 'B' to the
 * serial port after each pass, as QEMU's tests/migration a-b-bootblock.
 * At any instant the first bytes read v+1 ... v+1, v ... v (mod 256): a
 * torn checkpoint breaks that.  PAGE_DELAY (default 0) spins that many
 * loop iterations after each page, so that a pass takes longer and only
 * part of the range is dirtied between two checkpoints (the background
 * push's case).  Entered in 32-bit protected mode, flat segments, paging
 * off.
 */
#ifndef PATTERN_START
#define PATTERN_START 0x200000
#endif
#ifndef PATTERN_END
#define PATTERN_END 0x600000
#endif
#ifndef PAGE_DELAY
#define PAGE_DELAY 0
#endif

    .code32
    .section .text
    .align 4
multiboot_header:
    .long 0x1BADB002            /* magic */
    .long 0                     /* flags: ELF kernel, nothing asked */
    .long -0x1BADB002           /* checksum */

    .globl _start
_start:
    cli
    mov $0x3f8, %dx
1:
    mov $PATTERN_START, %ebx
2:
    incb (%ebx)
#if PAGE_DELAY
    mov $PAGE_DELAY, %ecx
3:
    dec %ecx
    jnz 3b
#endif
    add $4096, %ebx
    cmp $PATTERN_END, %ebx
    jb 2b
    mov $'B', %al
    outb %al, %dx
    jmp 1b
