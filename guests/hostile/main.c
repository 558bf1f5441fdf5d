/*
 * hostile: issue ONE bad hypercall / port access, chosen by the command
 * line, and report if we survive. Built twice: `hostile` (no devices) and
 * `hostileblk` (one BLOCK_BASIC device "storage", so the block hypercalls
 * are registered when run with --block:storage=IMG).
 *
 * Fatal modes (the tender must kill us, exit 1): puts-oob puts-huge
 * puts-wrap arg-oob arg-last bad-nr bad-nr9 port-in port-size port-far
 * halt-cookie-oob walltime-ro. Surviving prints "FAILURE: survived" and
 * exits 1, so tests must also check the tender's message.
 *
 * Non-fatal modes (print SUCCESS, exit 0): block-nodev block-hugehandle
 * (both expect ret EINVAL; need the block module, i.e. hostileblk with
 * --block; without it the tender says "Invalid guest hypercall"),
 * poll-zero, pagetables (the tender may also refuse that one).
 */
#include "guest.h"

static void survived(void)
{
    puts("FAILURE: survived\n");
    exit(EXIT_FAILURE);
}

static int hc_puts_raw(uint64_t data, uint64_t len)
{
    volatile struct hc_puts p;
    p.data = data;
    p.len = len;
    hypercall(HC_PUTS, &p);
    return 0;
}

static const char msg[] = "hostile: this text must not be printed\n";

int app_main(const char *cmdline)
{
    char mode[64];
    const char *p = cmdline;
    uint64_t mem = rt_bootinfo->mem_size;

    next_word(&p, mode, sizeof(mode));
    printf("hostile: mode %s (mem_size=0x%lx)\n", mode, mem);

    if (strcmp(mode, "puts-oob") == 0) {
        /* the last byte of RAM can never be in a hypercall buffer */
        hc_puts_raw(mem - 1, 1);
        survived();
    } else if (strcmp(mode, "puts-huge") == 0) {
        hc_puts_raw((uintptr_t)msg, 1ULL << 63);
        survived();
    } else if (strcmp(mode, "puts-wrap") == 0) {
        hc_puts_raw(0xffffffffffff0000ULL, 0x20000);
        survived();
    } else if (strcmp(mode, "arg-oob") == 0) {
        uint64_t gpa = mem + 0x1000;
        if (gpa > 0xffffffffULL)
            printf("hostile: WARNING: mem_size+0x1000 does not fit in 32 bits,"
                   " the tender will see 0x%lx (use --mem below 4096)\n",
                   (uint64_t)(uint32_t)gpa);
        raw_outl(HC_PIO_BASE + HC_PUTS, (uint32_t)gpa);
        survived();
    } else if (strcmp(mode, "arg-last") == 0) {
        /* a valid-looking puts struct occupying [M-16, M): its last byte
         * is the last byte of RAM, so the struct check must fail. The
         * runtime keeps the top 64 bytes of RAM free for this. */
        volatile struct hc_puts *a = (volatile struct hc_puts *)(uintptr_t)(mem - 16);
        a->data = (uintptr_t)msg;
        a->len = sizeof(msg) - 1;
        hypercall(HC_PUTS, a);
        survived();
    } else if (strcmp(mode, "bad-nr") == 0) {
        volatile struct hc_puts a = { (uintptr_t)msg, sizeof(msg) - 1 };
        raw_outl(HC_PIO_BASE + 0, (uint32_t)(uintptr_t)&a);
        survived();
    } else if (strcmp(mode, "bad-nr9") == 0) {
        volatile struct hc_puts a = { (uintptr_t)msg, sizeof(msg) - 1 };
        raw_outl(HC_PIO_BASE + 9, (uint32_t)(uintptr_t)&a);
        survived();
    } else if (strcmp(mode, "port-in") == 0) {
        uint32_t v;
        __asm__ __volatile__("inl %1, %0" : "=a"(v) : "d"((uint16_t)(HC_PIO_BASE + HC_PUTS)));
        printf("hostile: inl returned 0x%x\n", v);
        survived();
    } else if (strcmp(mode, "port-size") == 0) {
        volatile struct hc_puts a = { (uintptr_t)msg, sizeof(msg) - 1 };
        __asm__ __volatile__("outw %0, %1" :: "a"((uint16_t)(uintptr_t)&a),
                             "d"((uint16_t)(HC_PIO_BASE + HC_PUTS)) : "memory");
        survived();
    } else if (strcmp(mode, "port-far") == 0) {
        volatile struct hc_puts a = { (uintptr_t)msg, sizeof(msg) - 1 };
        raw_outl(0x1234, (uint32_t)(uintptr_t)&a);
        survived();
    } else if (strcmp(mode, "halt-cookie-oob") == 0) {
        /* cookie + 512 runs past the end of RAM */
        rt_halt(0, (void *)(uintptr_t)(mem - 100));
    } else if (strcmp(mode, "walltime-ro") == 0) {
        /* ask the tender to write 8 bytes into our .text */
        volatile uint8_t *target = (volatile uint8_t *)(uintptr_t)&app_main;
        __asm__ __volatile__("" : "+r"(target));
        uint64_t before;
        memcpy(&before, (const void *)target, 8);
        hypercall(HC_WALLTIME, target);
        uint64_t after;
        memcpy(&after, (const void *)target, 8);
        printf("hostile: .text %s\n", before == after ? "unchanged" : "MODIFIED");
        survived();
    } else if (strcmp(mode, "block-nodev") == 0 ||
               strcmp(mode, "block-hugehandle") == 0) {
        static uint8_t buf[512];
        uint64_t h = mode[6] == 'n' ? 0 : 1ULL << 63;
        int r1 = hc_block_read(h, 0, buf, sizeof(buf));
        int r2 = hc_block_write(h, 0, buf, sizeof(buf));
        printf("hostile: handle 0x%lx: read ret %d, write ret %d\n", h, r1, r2);
        if (r1 != RES_EINVAL || r2 != RES_EINVAL) {
            puts("FAILURE: expected EINVAL\n");
            return EXIT_FAILURE;
        }
        puts("SUCCESS\n");
        return EXIT_SUCCESS;
    } else if (strcmp(mode, "poll-zero") == 0) {
        uint64_t ready = ~0ULL;
        uint64_t t0 = clock_monotonic();
        int r = poll_ns(0, &ready);
        uint64_t dt = clock_monotonic() - t0;
        printf("hostile: poll(0) ret %d ready_set 0x%lx took %lu us\n", r, ready,
               dt / 1000);
        if (ready != 0 || dt > NSEC_PER_SEC / 2) {
            puts("FAILURE: poll(0) misbehaved\n");
            return EXIT_FAILURE;
        }
        puts("SUCCESS\n");
        return EXIT_SUCCESS;
    } else if (strcmp(mode, "pagetables") == 0) {
        /* GPA 0x2000 is the tender's PML4: not mapped for us, but a valid
         * GPA; the tender may print it or refuse. */
        puts("hostile: [");
        hc_puts_raw(0x2000, 16);
        puts("]\n");
        puts("SUCCESS\n");
        return EXIT_SUCCESS;
    } else if (strcmp(mode, "triple-fault") == 0) {
        /* An empty IDT, then an exception: #UD -> #DF -> triple fault. The
         * CPU shuts down; the tender must report the exit, not hang. */
        static const struct { uint16_t limit; uint64_t base; } __attribute__((packed))
            no_idt = { 0, 0 };
        __asm__ volatile("lidt %0; ud2" : : "m"(no_idt));
        puts("FAILURE: survived\n");
        return EXIT_FAILURE;
    }
    printf("FAILURE: unknown mode \"%s\"\n", mode);
    return EXIT_FAILURE;
}
