/* cpu: print the CPUID leaves the guest sees, one line each
 * ("cpuid LEAF.SUB eax ebx ecx edx", hex), or touch one MSR:
 *   cpuid              leaves 0, 1, 7.0, 0xd.0, 0xd.1, 0x12.0, 0x40000000,
 *                      0x40000001, 0x80000000, 0x80000001, 0x80000007,
 *                      0x8000000a
 *   rdmsr HEX / wrmsr HEX   read (or write back what reads) MSR HEX; print
 *                      it and exit 0, or trap (#GP) if the MSR is refused */
#include "guest.h"

static inline void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
    __asm__ __volatile__("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
                         : "a"(leaf), "c"(sub));
}

static uint32_t hex(const char *s)
{
    uint32_t v = 0;
    if (s[0] == '0' && s[1] == 'x')
        s += 2;
    for (; *s; s++) {
        int d = *s >= 'a' ? *s - 'a' + 10 : *s >= 'A' ? *s - 'A' + 10 : *s - '0';
        v = v * 16 + (uint32_t)d;
    }
    return v;
}

static const uint32_t leaves[][2] = {
    {0, 0}, {1, 0}, {7, 0}, {0xd, 0}, {0xd, 1}, {0x12, 0}, {0x40000000, 0},
    {0x40000001, 0}, {0x80000000, 0}, {0x80000001, 0}, {0x80000007, 0},
    {0x8000000a, 0},
};

int app_main(const char *cmdline)
{
    char mode[16], arg[16];
    const char *s = cmdline;
    next_word(&s, mode, sizeof mode);
    next_word(&s, arg, sizeof arg);

    if (!strcmp(mode, "cpuid")) {
        for (size_t i = 0; i < sizeof leaves / sizeof leaves[0]; i++) {
            uint32_t r[4];
            cpuid(leaves[i][0], leaves[i][1], r);
            printf("cpuid %x.%x %x %x %x %x\n", leaves[i][0], leaves[i][1],
                   r[0], r[1], r[2], r[3]);
        }
        return EXIT_SUCCESS;
    }
    if (!strcmp(mode, "rdmsr") || !strcmp(mode, "wrmsr")) {
        uint32_t msr = hex(arg);
        printf("cpu: %s 0x%x\n", mode, msr);
        uint64_t v = rt_rdmsr(msr);
        if (mode[0] == 'w')
            rt_wrmsr(msr, v);
        printf("cpu: msr 0x%x = 0x%lx\n", msr, (unsigned long)v);
        return EXIT_SUCCESS;
    }
    printf("cpu: unknown mode '%s'\n", mode);
    return EXIT_FAILURE;
}
