/*
 * pytender guest runtime: early boot. Compiled WITHOUT the stack protector:
 * it runs before %fs points at a TCB holding the canary.
 *
 * - own GDT (64-bit code, data, TSS with an IST stack for #DF/NMI/#MC)
 * - own IDT for vectors 0-31 -> rt_trap_handler
 * - TLS block (copied from .tdata, .tbss zeroed) directly below the TCB,
 *   FS base -> TCB, stack-protector canary at %fs:0x28
 */
#include "guest.h"

#define MSR_FS_BASE 0xc0000100u

const struct hvt_boot_info *rt_bootinfo;

void rt_main(void) __attribute__((noreturn));     /* lib.c */
void rt_start(const struct hvt_boot_info *bi) __attribute__((noreturn));
void rt_trap_handler(uint64_t *regs) __attribute__((noreturn));
int rt_tls_selfcheck(void);
extern const uint64_t rt_trap_stubs[32];           /* start.S */

void rt_set_fs_base(uint64_t base) { rt_wrmsr(MSR_FS_BASE, base); }
uint64_t rt_get_fs_base(void) { return rt_rdmsr(MSR_FS_BASE); }

/* ---- GDT / TSS / IDT ---------------------------------------------------- */

#define SEL_CODE 0x08
#define SEL_DATA 0x10
#define SEL_TSS  0x18

struct tss {
    uint32_t reserved0;
    uint64_t rsp[3];
    uint64_t reserved1;
    uint64_t ist[7];
    uint64_t reserved2;
    uint16_t reserved3;
    uint16_t iomap_base;
} __attribute__((packed));
_Static_assert(sizeof(struct tss) == 104, "tss size");

struct idt_gate {
    uint16_t off_lo;
    uint16_t sel;
    uint8_t ist;
    uint8_t type_attr;
    uint16_t off_mid;
    uint32_t off_hi;
    uint32_t zero;
};
_Static_assert(sizeof(struct idt_gate) == 16, "gate size");

struct dtr {
    uint16_t limit;
    uint64_t base;
} __attribute__((packed));

static uint64_t gdt[5] __attribute__((aligned(16))) = {
    0,
    0x00af9a000000ffffULL,      /* 64-bit code, readable, DPL 0 */
    0x00cf92000000ffffULL,      /* data, writable, DPL 0 */
    0, 0,                       /* TSS (filled in) */
};
static struct tss tss __attribute__((aligned(16)));
static struct idt_gate idt[32] __attribute__((aligned(16)));
static uint8_t ist_stack[16384] __attribute__((aligned(16)));

static void gdt_init(void)
{
    uint64_t base = (uint64_t)(uintptr_t)&tss;
    uint64_t limit = sizeof(tss) - 1;

    tss.ist[0] = (uint64_t)(uintptr_t)(ist_stack + sizeof(ist_stack));
    tss.iomap_base = sizeof(tss);
    gdt[3] = (limit & 0xffff) | ((base & 0xffffff) << 16) |
             (0x89ULL << 40) /* P, type 9: available 64-bit TSS */ |
             (((limit >> 16) & 0xf) << 48) | (((base >> 24) & 0xff) << 56);
    gdt[4] = base >> 32;

    struct dtr gdtr = { sizeof(gdt) - 1, (uint64_t)(uintptr_t)gdt };
    __asm__ __volatile__("lgdt %0" :: "m"(gdtr) : "memory");
    __asm__ __volatile__(
        "pushq %[cs]\n\t"
        "leaq 1f(%%rip), %%rax\n\t"
        "pushq %%rax\n\t"
        "lretq\n"
        "1:\n\t"
        "movl %[ds], %%eax\n\t"
        "movl %%eax, %%ds\n\t"
        "movl %%eax, %%es\n\t"
        "movl %%eax, %%ss\n\t"
        "xorl %%eax, %%eax\n\t"
        "movl %%eax, %%fs\n\t"
        "movl %%eax, %%gs\n\t"
        :: [cs] "i"(SEL_CODE), [ds] "i"(SEL_DATA) : "rax", "memory");
    __asm__ __volatile__("ltr %w0" :: "r"(SEL_TSS) : "memory");
}

static void idt_init(void)
{
    for (int v = 0; v < 32; v++) {
        uint64_t off = rt_trap_stubs[v];
        idt[v].off_lo = off & 0xffff;
        idt[v].sel = SEL_CODE;
        /* NMI, #DF and #MC run on the IST stack */
        idt[v].ist = (v == 2 || v == 8 || v == 18) ? 1 : 0;
        idt[v].type_attr = 0x8e;        /* present, DPL 0, interrupt gate */
        idt[v].off_mid = (off >> 16) & 0xffff;
        idt[v].off_hi = off >> 32;
        idt[v].zero = 0;
    }
    struct dtr idtr = { sizeof(idt) - 1, (uint64_t)(uintptr_t)idt };
    __asm__ __volatile__("lidt %0" :: "m"(idtr) : "memory");
}

/* ---- TLS and TCB -------------------------------------------------------- */

/* From hvt.ld */
extern char _tls_start[], _tdata_len[], _tls_len[], _tls_align[];

#define TLS_RESERVE 8192
static struct {
    uint8_t tls[TLS_RESERVE];   /* local-exec TLS block ends here ... */
    struct tcb tcb;             /* ... where %fs points */
} tls_area __attribute__((aligned(4096)));
struct tcb *rt_tcb_ptr = &tls_area.tcb;

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static int tls_init(void)
{
    uint64_t tdata_len = (uint64_t)(uintptr_t)_tdata_len;
    uint64_t align = (uint64_t)(uintptr_t)_tls_align;
    uint64_t size = (uint64_t)(uintptr_t)_tls_len;
    struct tcb *tcb = &tls_area.tcb;

    if (align == 0)
        align = 1;
    size = (size + align - 1) & ~(align - 1);
    if (size > TLS_RESERVE || align > 4096 || tdata_len > size)
        return -1;
    uint8_t *block = (uint8_t *)tcb - size;
    for (uint64_t i = 0; i < size; i++)
        block[i] = i < tdata_len ? (uint8_t)_tls_start[i] : 0;

    uint64_t guard = splitmix64(rdtsc());
    guard &= ~0xffULL;          /* a NUL low byte stops string over-reads */
    if (guard == 0)
        guard = 0x5a17ed00c0ffee00ULL;
    tcb->self = tcb;
    tcb->stack_guard = guard;
    rt_set_fs_base((uint64_t)(uintptr_t)tcb);
    return 0;
}

/* ---- entry --------------------------------------------------------------- */

static void early_halt(int status)
{
    static volatile struct hc_halt h;
    h.cookie = 0;
    h.exit_status = status;
    hypercall(HC_HALT, &h);
    for (;;)
        __asm__ __volatile__("hlt");
}

void rt_start(const struct hvt_boot_info *bi)
{
    rt_bootinfo = bi;
    gdt_init();
    idt_init();
    if (tls_init() != 0) {
        static const char msg[] = "GUEST: ABORT: TLS block too large\n";
        static volatile struct hc_puts p;
        p.data = (uint64_t)(uintptr_t)msg;
        p.len = sizeof(msg) - 1;
        hypercall(HC_PUTS, &p);
        early_halt(EXIT_ABORT);
    }
    if (!rt_tls_selfcheck()) {
        static const char msg[] = "GUEST: ABORT: TLS layout mismatch\n";
        static volatile struct hc_puts p;
        p.data = (uint64_t)(uintptr_t)msg;
        p.len = sizeof(msg) - 1;
        hypercall(HC_PUTS, &p);
        early_halt(EXIT_ABORT);
    }
    rt_main();
}

/* ---- CPU exceptions ------------------------------------------------------- */

static const char *const trap_names[32] = {
    "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM",
    "#DF", "#CSO", "#TS", "#NP", "#SS", "#GP", "#PF", "#15",
    "#MF", "#AC", "#MC", "#XM", "#VE", "#CP", "#22", "#23",
    "#24", "#25", "#26", "#27", "#HV", "#VC", "#SX", "#31",
};

/* Cookie for HALT: the tender checks 512 bytes at the cookie address. */
static union {
    struct trap_frame tf;
    uint8_t pad[512];
} trap_cookie __attribute__((aligned(64)));

/* REGS layout (start.S): r15 r14 r13 r12 r11 r10 r9 r8 rbp rdi rsi rdx rcx
 * rbx rax, vector, error code, rip, cs, rflags, rsp, ss. */
enum { R_VEC = 15, R_EC, R_RIP, R_CS, R_RFLAGS, R_RSP, R_SS };

void rt_trap_handler(uint64_t *regs)
{
    static int in_trap;
    uint64_t cr2;

    __asm__ __volatile__("movq %%cr2, %0" : "=r"(cr2));
    if (in_trap++)              /* fault while reporting a fault */
        early_halt(EXIT_ABORT);

    uint64_t vec = regs[R_VEC] & 31;
    trap_cookie.tf.cr2 = cr2;
    trap_cookie.tf.ec = regs[R_EC];
    trap_cookie.tf.rip = regs[R_RIP];
    trap_cookie.tf.cs = regs[R_CS];
    trap_cookie.tf.rflags = regs[R_RFLAGS];
    trap_cookie.tf.rsp = regs[R_RSP];
    trap_cookie.tf.ss = regs[R_SS];

    if (rt_log_level >= LOG_ERROR) {
        printf("GUEST: trap: %s (vec %lu) rip=0x%lx cr2=0x%lx ec=0x%lx "
               "rsp=0x%lx rflags=0x%lx\n",
               trap_names[vec], (unsigned long)regs[R_VEC], regs[R_RIP], cr2,
               regs[R_EC], regs[R_RSP], regs[R_RFLAGS]);
        printf("GUEST: ABORT: fatal CPU exception\n");
    }
    rt_halt(EXIT_ABORT, &trap_cookie);
}

/* ---- misc ELF bits ------------------------------------------------------ */

/* PT_INTERP: makes the host kernel refuse to exec a .hvt directly. */
const char rt_interp[] __attribute__((section(".interp"), used)) =
    "/nonexistent/solo5/";

/* Guarantee .tdata and .tbss exist (hvt.ld refers to them) and let the
 * runtime check its TLS layout agrees with the linker's. */
__thread uint64_t rt_tls_check_init __attribute__((used)) = 0x74646174614f4b21ULL;
__thread uint64_t rt_tls_check_zero __attribute__((used));

int rt_tls_selfcheck(void)
{
    return rt_tls_check_init == 0x74646174614f4b21ULL && rt_tls_check_zero == 0 &&
           ((struct tcb *)rt_get_fs_base())->self == rt_tcb_ptr;
}
