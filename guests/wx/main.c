/* wx: break W^X in the way the first word of the command line says (issue 9).
 * Every case that is not stopped says so and exits 3, so a lax tender is
 * seen; "rdtext" (reading text is allowed) exits 0.
 *   xrodata xdata xstack xheap   call code placed in .rodata/.data/stack/heap
 *   wtext wrodata wbootinfo      write through the page tables we were given
 *   wpwp                         clear CR0.WP, then write .text
 *   wpt wgdt                     load our own CR3, write the tender's PML4/GDT
 *   nxe                          clear EFER.NXE with wrmsr
 *   rdtext                       read our own .text */
#include "guest.h"

#define NOT_STOPPED 3
#define MSR_EFER 0xc0000080u
#define EFER_LME_LMA 0x500u
#define TENDER_GDT 0x1000
#define TENDER_PML4 0x2000

/* mov eax, 42; ret */
#define CODE { 0xb8, 0x2a, 0x00, 0x00, 0x00, 0xc3 }
static const uint8_t code_rodata[] = CODE;
static uint8_t code_data[] = CODE;

static __attribute__((noinline)) int victim(int x) { return x * 3 + 1; }

/* Our own identity map of the first 4 GiB, 2 MiB pages, all RWX. */
static uint64_t own_pml4[512] __attribute__((aligned(4096)));
static uint64_t own_pdpt[512] __attribute__((aligned(4096)));
static uint64_t own_pd[4][512] __attribute__((aligned(4096)));

static void load_own_cr3(void)
{
    for (int g = 0; g < 4; g++) {
        for (int i = 0; i < 512; i++)
            own_pd[g][i] = ((uint64_t)g << 30) + ((uint64_t)i << 21) + 0x83;
        own_pdpt[g] = (uint64_t)(uintptr_t)own_pd[g] | 3;
    }
    own_pml4[0] = (uint64_t)(uintptr_t)own_pdpt | 3;
    __asm__ __volatile__("movq %0, %%cr3" :: "r"((uint64_t)(uintptr_t)own_pml4) : "memory");
}

static int call(const char *where, const void *p)
{
    int (*f)(void) = (int (*)(void))(uintptr_t)p;
    __asm__ __volatile__("" : "+r"(f));
    printf("wx: calling code in %s at %p\n", where, p);
    return f();
}

/* Write the byte already there, so a lax tender still runs correctly. */
static void rewrite(const char *what, uintptr_t addr)
{
    volatile uint8_t *p = (volatile uint8_t *)addr;
    __asm__ __volatile__("" : "+r"(p));
    printf("wx: writing %s at %p\n", what, (void *)p);
    uint8_t old = *p;
    *p = old;
}

int app_main(const char *cmdline)
{
    char mode[16];
    const char *s = cmdline;
    next_word(&s, mode, sizeof mode);
    uint8_t stack_code[] = CODE;

    if (!strcmp(mode, "xrodata")) {
        printf("wx: returned %d\n", call(".rodata", code_rodata));
    } else if (!strcmp(mode, "xdata")) {
        printf("wx: returned %d\n", call(".data", code_data));
    } else if (!strcmp(mode, "xstack")) {
        printf("wx: returned %d\n", call("the stack", stack_code));
    } else if (!strcmp(mode, "xheap")) {
        uintptr_t heap = (rt_bootinfo->kernel_end + 0x1fff) & ~(uintptr_t)0xfff;
        memcpy((void *)heap, stack_code, sizeof stack_code);
        printf("wx: returned %d\n", call("the heap", (void *)heap));
    } else if (!strcmp(mode, "wtext")) {
        rewrite(".text", (uintptr_t)&victim);
    } else if (!strcmp(mode, "wrodata")) {
        rewrite(".rodata", (uintptr_t)code_rodata);
    } else if (!strcmp(mode, "wbootinfo")) {
        rewrite("the boot info", (uintptr_t)rt_bootinfo);
    } else if (!strcmp(mode, "wpwp")) {
        uint64_t cr0;
        __asm__ __volatile__("movq %%cr0, %0" : "=r"(cr0));
        __asm__ __volatile__("movq %0, %%cr0" :: "r"(cr0 & ~(1ULL << 16)) : "memory");
        printf("wx: CR0.WP cleared\n");
        rewrite(".text", (uintptr_t)&victim);
    } else if (!strcmp(mode, "wpt")) {
        load_own_cr3();
        rewrite("the tender's page tables", TENDER_PML4);
    } else if (!strcmp(mode, "wgdt")) {
        load_own_cr3();
        rewrite("the tender's GDT", TENDER_GDT);
    } else if (!strcmp(mode, "nxe")) {
        /* LME | LMA without NXE; no read first, so only the write is tested */
        printf("wx: writing EFER=0x500 (NXE clear)\n");
        rt_wrmsr(MSR_EFER, EFER_LME_LMA);
        printf("wx: EFER=0x%lx\n", (unsigned long)rt_rdmsr(MSR_EFER));
    } else if (!strcmp(mode, "rdtext")) {
        const volatile uint8_t *p = (const volatile uint8_t *)(uintptr_t)&victim;
        printf("wx: .text byte 0x%x, victim(1) = %d\n", *p, victim(1));
        return EXIT_SUCCESS;
    } else {
        printf("wx: unknown mode '%s'\n", mode);
        return EXIT_FAILURE;
    }
    printf("wx: NOT STOPPED: %s\n", mode);
    return NOT_STOPPED;
}
