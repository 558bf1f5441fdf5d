/*
 * floor: the physical floor of an hvt boot, for bench/boot.
 *
 *   floor [-x] [-m MIB] KERNEL [ARGS...]
 *
 * Creates a KVM VM with one vCPU and MIB (default 64) MiB of zeroed,
 * MAP_SHARED anonymous memory, copies KERNEL's PT_LOAD segments with
 * p_filesz != 0 into it, writes the identity page tables, the boot GDT,
 * the boot info, a manifest copy with only the reserved entry and the
 * command line (HVT_SPEC.md 3), sets CPUID / sregs / regs as solo5-hvt
 * does and runs the vCPU.
 *
 * Default: stop at the guest's FIRST hypercall (an `outl` to 0x500..0x508)
 * and exit 0: KVM set-up + guest entry + the guest's early boot, nothing
 * else. With -x: serve PUTS (write to fd 1) and HALT (exit with the guest's
 * status) and fail on any other hypercall: a minimal C tender for guests
 * that need nothing more (hello).
 *
 * No checks beyond what is needed not to crash on the guests we build; this
 * is a measuring stick, not a tender. Written for pytender; no Solo5 code.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hvt_abi.h"

#define PAGE 0x1000ULL
#define HUGE (2ULL << 20)
/* The ABI's numbers and layouts: csrc/hvt_abi.h (build with -Icsrc). */
#define GDT_BASE ((uint64_t)HVT_GDT_BASE)
#define PML4_BASE ((uint64_t)HVT_PML4_BASE)
#define PDPT_BASE ((uint64_t)HVT_PDPT_BASE)
#define PD_BASE ((uint64_t)HVT_PD_BASE)
#define PT0_BASE ((uint64_t)HVT_PT0_BASE)
#define BOOT_INFO ((uint64_t)HVT_BOOT_INFO_BASE)
#define MFT_COPY (BOOT_INFO + sizeof(struct hvt_boot_info))
#define MIN_BASE ((uint64_t)HVT_GUEST_MIN_BASE)
#define P 1ULL
#define RW 2ULL
#define PS 0x80ULL
#define HC_BASE HC_PIO_BASE
#define MAX_CPUID 100

static void die(const char *what)
{
    fprintf(stderr, "floor: %s: %s\n", what, strerror(errno));
    exit(2);
}

static void fail(const char *what)
{
    fprintf(stderr, "floor: %s\n", what);
    exit(2);
}

static int xioctl(int fd, unsigned long req, void *arg, const char *what)
{
    int r = ioctl(fd, req, arg);
    if (r < 0)
        die(what);
    return r;
}

static uint8_t *mem;
static uint64_t mem_size;

/* guest [gpa, gpa+len) -> host pointer, or die */
static uint8_t *gpa(uint64_t addr, uint64_t len)
{
    if (addr >= mem_size || len > mem_size - addr)
        fail("guest address out of range");
    return mem + addr;
}

/* Load PT_LOADs with p_filesz != 0; returns the entry, sets *kend. */
static uint64_t load_elf(const char *path, uint64_t *kend)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0)
        die(path);
    uint8_t *f = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (f == MAP_FAILED)
        die("mmap kernel");
    close(fd);
    if ((size_t)st.st_size < sizeof(Elf64_Ehdr))
        fail("short ELF");
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)f;
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_machine != EM_X86_64 ||
        eh->e_phentsize != sizeof(Elf64_Phdr) ||
        eh->e_phoff + (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr) > (uint64_t)st.st_size)
        fail("not an x86_64 ELF");
    const Elf64_Phdr *ph = (const Elf64_Phdr *)(f + eh->e_phoff);
    uint64_t end = 0;
    for (int i = 0; i < eh->e_phnum; i++) {
        if (ph[i].p_type != PT_LOAD || ph[i].p_filesz == 0)
            continue;
        if (ph[i].p_vaddr < MIN_BASE || ph[i].p_offset + ph[i].p_filesz > (uint64_t)st.st_size ||
            ph[i].p_memsz < ph[i].p_filesz)
            fail("bad PT_LOAD");
        uint64_t align = ph[i].p_align ? ph[i].p_align : 1;
        uint64_t e = (ph[i].p_vaddr + ph[i].p_memsz + align - 1) & ~(align - 1);
        memcpy(gpa(ph[i].p_vaddr, ph[i].p_memsz), f + ph[i].p_offset, ph[i].p_filesz);
        if (e > end)
            end = e;
    }
    *kend = end;
    uint64_t entry = eh->e_entry;
    munmap(f, (size_t)st.st_size);
    if (entry < MIN_BASE || entry >= mem_size)
        fail("bad entry point");
    return entry;
}

static void put64(uint64_t addr, uint64_t v) { memcpy(gpa(addr, 8), &v, 8); }

static void page_tables(void)
{
    put64(PML4_BASE, PDPT_BASE | P | RW);
    for (uint64_t i = 0; i < 4; i++)
        put64(PDPT_BASE + 8 * i, (PD_BASE + i * PAGE) | P | RW);
    put64(PD_BASE, PT0_BASE | P | RW);
    for (uint64_t k = 1; k < 2048 && k * HUGE < mem_size; k++)
        put64(PD_BASE + 8 * k, (k * HUGE) | P | RW | PS);
    for (uint64_t i = 0; i < 512; i++) {
        uint64_t a = i * PAGE;
        if (a >= BOOT_INFO)
            put64(PT0_BASE + 8 * i, a | P | (a >= MIN_BASE ? RW : 0));
    }
    put64(GDT_BASE + 8, 0x00AF99000000FFFFULL);    /* code */
    put64(GDT_BASE + 16, 0x00CF93000000FFFFULL);   /* data */
}

/* boot info, reserved-only manifest, command line */
static void boot_info(uint64_t kend, uint64_t tsc_hz, int argc, char **argv)
{
    const uint64_t mft_len = sizeof(struct mft) + sizeof(struct mft_entry);
    uint64_t cmdline = MFT_COPY + mft_len;
    struct mft *m = (struct mft *)gpa(MFT_COPY, mft_len);   /* memory is zeroed */
    m->version = MFT_VERSION;
    m->entries = 1;
    m->e[0].type = MFT_RESERVED_FIRST;
    char *c = (char *)gpa(cmdline, HVT_CMDLINE_SIZE);
    size_t n = 0;
    for (int i = 0; i < argc; i++) {
        size_t l = strlen(argv[i]);
        if (n + l + 2 > HVT_CMDLINE_SIZE)
            fail("command line too long");
        if (i)
            c[n++] = ' ';
        memcpy(c + n, argv[i], l);
        n += l;
    }
    c[n] = 0;
    struct hvt_boot_info bi = { .mem_size = mem_size, .kernel_end = kend,
                                .cpu_cycle_freq = tsc_hz, .cmdline = cmdline, .mft = MFT_COPY };
    memcpy(gpa(BOOT_INFO, sizeof(bi)), &bi, sizeof(bi));
}

static void seg(struct kvm_segment *s, uint16_t sel, uint8_t type, uint8_t db, uint8_t l)
{
    memset(s, 0, sizeof(*s));
    s->selector = sel;
    s->limit = 0xFFFFFFFF;
    s->type = type;
    s->present = 1;
    s->s = 1;
    s->db = db;
    s->l = l;
    s->g = 1;
}

int main(int argc, char **argv)
{
    int serve = 0;
    uint64_t mib = 64;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "-x") == 0)
            serve = 1;
        else if (strcmp(argv[i], "-m") == 0 && i + 1 < argc)
            mib = strtoull(argv[++i], NULL, 10);
        else
            fail("usage: floor [-x] [-m MIB] KERNEL [ARGS...]");
    }
    if (i >= argc)
        fail("usage: floor [-x] [-m MIB] KERNEL [ARGS...]");
    const char *kernel = argv[i++];
    mem_size = (mib << 20) & ~(HUGE - 1);
    if (mem_size == 0)
        mem_size = HUGE;

    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0)
        die("/dev/kvm");
    if (ioctl(kvm, KVM_GET_API_VERSION, 0) != 12)
        fail("KVM API version is not 12");
    int vm = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm < 0)
        die("KVM_CREATE_VM");
    int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
    if (vcpu < 0)
        die("KVM_CREATE_VCPU");
    int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (run_size < 0)
        die("KVM_GET_VCPU_MMAP_SIZE");
    struct kvm_run *run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED,
                               vcpu, 0);
    if (run == MAP_FAILED)
        die("mmap kvm_run");
    mem = mmap(NULL, mem_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        die("mmap guest memory");
    struct kvm_userspace_memory_region region = {
        .slot = 0, .flags = 0, .guest_phys_addr = 0, .memory_size = mem_size,
        .userspace_addr = (uint64_t)(uintptr_t)mem,
    };
    xioctl(vm, KVM_SET_USER_MEMORY_REGION, &region, "KVM_SET_USER_MEMORY_REGION");

    uint64_t kend;
    uint64_t entry = load_elf(kernel, &kend);
    page_tables();

    struct kvm_cpuid2 *cpuid =
        calloc(1, sizeof(*cpuid) + MAX_CPUID * sizeof(struct kvm_cpuid_entry2));
    if (!cpuid)
        die("calloc");
    cpuid->nent = MAX_CPUID;
    xioctl(kvm, KVM_GET_SUPPORTED_CPUID, cpuid, "KVM_GET_SUPPORTED_CPUID");
    xioctl(vcpu, KVM_SET_CPUID2, cpuid, "KVM_SET_CPUID2");

    struct kvm_sregs sregs;
    xioctl(vcpu, KVM_GET_SREGS, &sregs, "KVM_GET_SREGS");
    seg(&sregs.cs, 0x08, 9, 0, 1);
    seg(&sregs.ds, 0x10, 3, 1, 0);
    sregs.ss = sregs.es = sregs.fs = sregs.gs = sregs.ds;
    memset(&sregs.tr, 0, sizeof(sregs.tr));
    sregs.tr.type = 11;
    sregs.tr.present = 1;
    memset(&sregs.ldt, 0, sizeof(sregs.ldt));
    sregs.ldt.unusable = 1;
    sregs.gdt.base = GDT_BASE;
    sregs.gdt.limit = 23;
    sregs.idt.base = 0;
    sregs.idt.limit = 0;
    sregs.cr0 = 0x80010021;
    sregs.cr3 = PML4_BASE;
    sregs.cr4 = 0x620;
    sregs.efer = 0x500;
    sregs.cr2 = sregs.cr8 = sregs.apic_base = 0;
    memset(sregs.interrupt_bitmap, 0, sizeof(sregs.interrupt_bitmap));
    xioctl(vcpu, KVM_SET_SREGS, &sregs, "KVM_SET_SREGS");

    if (ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_GET_TSC_KHZ) != 1)
        fail("no KVM_CAP_GET_TSC_KHZ");
    int khz = ioctl(vcpu, KVM_GET_TSC_KHZ, 0);
    if (khz <= 0)
        die("KVM_GET_TSC_KHZ");
    boot_info(kend, (uint64_t)khz * 1000, argc - i, argv + i);

    struct kvm_regs regs;
    memset(&regs, 0, sizeof(regs));
    regs.rip = entry;
    regs.rsp = mem_size - 8;
    regs.rdi = BOOT_INFO;
    regs.rflags = 2;
    xioctl(vcpu, KVM_SET_REGS, &regs, "KVM_SET_REGS");

    for (;;) {
        if (ioctl(vcpu, KVM_RUN, 0) < 0) {
            if (errno == EINTR)
                continue;
            die("KVM_RUN");
        }
        if (run->exit_reason != KVM_EXIT_IO || run->io.direction != KVM_EXIT_IO_OUT ||
            run->io.size != 4 || run->io.port < HC_BASE || run->io.port > HC_BASE + HC_HALT) {
            fprintf(stderr, "floor: unexpected exit: reason %u\n", run->exit_reason);
            return 2;
        }
        if (!serve)
            return 0;           /* the first hypercall: the floor is reached */
        uint32_t arg;
        memcpy(&arg, (uint8_t *)run + run->io.data_offset, 4);
        switch (run->io.port - HC_BASE) {
        case HC_PUTS: {
            struct hc_puts p;
            memcpy(&p, gpa(arg, sizeof(p)), sizeof(p));
            if (write(1, gpa(p.data, p.len), p.len) < 0)
                die("write");
            break;
        }
        case HC_HALT: {
            struct hc_halt h;
            memcpy(&h, gpa(arg, sizeof(h)), sizeof(h));
            return h.exit_status & 0xff;
        }
        default:
            fprintf(stderr, "floor: unsupported hypercall %u\n", run->io.port - HC_BASE);
            return 2;
        }
    }
}
