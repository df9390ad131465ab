/*
 * Boot sector for vfio-user-bench: a guest under TCG that times nothing
 * itself, but runs BAR0 accesses of the vfio-user-pci device at 00:04.0
 * back to back, so that the server can time them as they arrive.
 *
 * SeaBIOS loads it at 0x7c00.  It switches to flat 32-bit protected mode,
 * reads BAR0 from config space, enables memory, I/O and bus mastering,
 * points MSI at guest RAM (address 0x6000, data 0x4d53: no APIC is
 * involved, QEMU's MSI write lands in RAM where the guest can watch it),
 * and then, for n_rounds rounds:
 *   n_reads  reads of BAR0 SCRATCH
 *   n_writes writes of BAR0 SCRATCH
 *   one read of BAR0 ID (end of writes)
 *   n_irqs times: clear 0x6000, write IRQ_RAISE = 0, spin until the
 *            MSI data appears at 0x6000
 *   one read of BAR0 INTX_STATUS (end of round)
 * then writes "DONE" at 0x6100 and halts.  The parameters live at offset
 * 0x1e0 of the sector (VFIO_USER_BENCH_BOOT_PARAMS); the benchmark patches
 * them.
 *
 * Regenerate vfio-user-bench-boot.h with scripts/bench.sh --regen-boot.
 */
.macro cfgaddr reg
        mov $0xcf8, %dx
        mov $(0x80002000 + \reg), %eax
        outl %eax, %dx
        mov $0xcfc, %dx
.endm
.code16
.text
.globl _start
_start:
        cli
        xor %ax, %ax
        mov %ax, %ds
        lgdt gdtdesc
        mov %cr0, %eax
        or $1, %eax
        mov %eax, %cr0
        ljmpl $8, $pm32
.code32
pm32:
        mov $16, %eax
        mov %eax, %ds
        mov %eax, %es
        mov %eax, %ss
        mov $0x7000, %esp
        inb $0x92, %al
        or $2, %al
        outb %al, $0x92
        cfgaddr 0x10
        inl %dx, %eax
        and $0xfffffff0, %eax
        mov %eax, %ebx
        mov %eax, 0x6108
        cfgaddr 0x04
        mov $0x0007, %ax
        outw %ax, %dx
        cfgaddr 0x44
        mov $0x6000, %eax
        outl %eax, %dx
        cfgaddr 0x48
        xor %eax, %eax
        outl %eax, %dx
        cfgaddr 0x4c
        mov $0x4d53, %eax
        outl %eax, %dx
        mov $0xcf8, %dx
        mov $0x80002040, %eax
        outl %eax, %dx
        mov $0xcfe, %dx
        inw %dx, %ax
        or $1, %ax
        outw %ax, %dx
        mov n_rounds, %esi
round:
        mov n_reads, %ecx
        jecxz 7f
1:      mov 4(%ebx), %eax
        loop 1b
7:      mov n_writes, %ecx
        jecxz 8f
2:      mov %ecx, 4(%ebx)
        loop 2b
8:
        mov (%ebx), %eax
        mov n_irqs, %ecx
        jecxz 5f
3:      movl $0, 0x6000
        movl $0, 0x40(%ebx)
4:      pause
        cmpl $0x4d53, 0x6000
        jne 4b
        loop 3b
5:      mov 0xc(%ebx), %eax
        dec %esi
        jnz round
        movl $0x444f4e45, 0x6100
6:      hlt
        jmp 6b

        .p2align 3
gdt:
        .quad 0
        .quad 0x00cf9a000000ffff
        .quad 0x00cf92000000ffff
gdtdesc:
        .word gdtdesc - gdt - 1
        .long gdt

        .org 0x1e0
n_rounds: .long 1
n_reads:  .long 1000
n_writes: .long 1000
n_irqs:   .long 100
        .org 0x1fe
        .byte 0x55, 0xaa
