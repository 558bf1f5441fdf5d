/* rtcheck: self-test of the guest runtime library (string ops, formatting,
 * parsing, boot info sanity). SUCCESS if all pass. */
#include "guest.h"

static int fail;
#define CHECK(c) do { if (!(c)) { printf("FAILURE: %s:%d: %s\n", __FILE__, __LINE__, #c); fail = 1; } } while (0)

static uint8_t a[64], b[64];

static int sign(int x) { return x < 0 ? -1 : x > 0; }

int app_main(const char *cmdline)
{
    char s[128];
    const char *p;
    long v;

    /* memset / memcpy / memcmp at every length and a few offsets */
    for (size_t n = 0; n <= 40; n++) {
        for (size_t off = 0; off < 3; off++) {
            memset(a, 0x11, sizeof(a));
            memset(a + off, 0xab, n);
            for (size_t i = 0; i < sizeof(a); i++)
                CHECK(a[i] == ((i >= off && i < off + n) ? 0xab : 0x11));
            for (size_t i = 0; i < sizeof(b); i++)
                b[i] = (uint8_t)i;
            memcpy(a + off, b + 1, n);
            for (size_t i = 0; i < n; i++)
                CHECK(a[off + i] == (uint8_t)(i + 1));
            CHECK(memcmp(a + off, b + 1, n) == 0);
            if (n) {
                a[off + n - 1] ^= 0x80;     /* differ in the last byte */
                CHECK(sign(memcmp(a + off, b + 1, n)) ==
                      ((a[off + n - 1] < b[n]) ? -1 : 1));
                a[off] ^= 0x01;             /* and in the first */
                CHECK(sign(memcmp(a + off, b + 1, n)) ==
                      ((a[off] < b[1]) ? -1 : 1));
            }
        }
    }
    /* memmove overlap both ways */
    for (size_t i = 0; i < 16; i++)
        a[i] = (uint8_t)i;
    memmove(a + 2, a, 10);
    CHECK(a[2] == 0 && a[11] == 9);
    memmove(a, a + 2, 10);
    CHECK(a[0] == 0 && a[9] == 9);
    uint64_t w[5] = { 1, 1, 1, 1, 1 };
    memset64(w, 0x1234, 4);
    CHECK(w[0] == 0x1234 && w[3] == 0x1234 && w[4] == 1);

    /* strings */
    CHECK(strlen("") == 0 && strlen("abc") == 3);
    CHECK(strcmp("abc", "abc") == 0 && strcmp("abc", "abd") < 0 && strcmp("b", "a") > 0);
    CHECK(strncmp("abcx", "abcy", 3) == 0 && strncmp("ab", "abc", 3) < 0);
    CHECK(strchr("hello", 'l') != NULL && *strchr("hello", 'l') == 'l' && !strchr("x", 'y'));

    /* formatting */
    snprintf(s, sizeof(s), "%d %i %u %x %X %c %s %%", -42, 7, 4000000000u, 0xbeef, 0xbeef, 'z', "str");
    CHECK(strcmp(s, "-42 7 4000000000 beef BEEF z str %") == 0);
    snprintf(s, sizeof(s), "%ld %lu %lx %llx %llu", -1L, ~0UL, 0x123456789abcUL,
             0xfedcba9876543210ULL, 18446744073709551615ULL);
    CHECK(strcmp(s, "-1 18446744073709551615 123456789abc fedcba9876543210 18446744073709551615") == 0);
    snprintf(s, sizeof(s), "[%5d][%-5d][%05d][%08lx][%3s][%-3s]", 42, 42, -42, 0xabcUL, "a", "b");
    CHECK(strcmp(s, "[   42][42   ][-0042][00000abc][  a][b  ]") == 0);
    snprintf(s, sizeof(s), "%p %s %zu", (void *)0x1000, (const char *)NULL, (size_t)5);
    CHECK(strcmp(s, "0x1000 (null) 5") == 0);
    snprintf(s, sizeof(s), "%ld", (long)(-9223372036854775807L - 1));
    CHECK(strcmp(s, "-9223372036854775808") == 0);
    CHECK(snprintf(s, 4, "abcdef") == 6 && strcmp(s, "abc") == 0);

    /* parsing */
    p = "  -17 rest";
    CHECK(parse_long(&p, &v) == 0 && v == -17 && strcmp(p, " rest") == 0);
    p = "x";
    CHECK(parse_long(&p, &v) == -1);
    p = "  one  two";
    CHECK(next_word(&p, s, sizeof(s)) == 3 && strcmp(s, "one") == 0);
    CHECK(next_word(&p, s, 3) == 3 && strcmp(s, "tw") == 0);
    CHECK(next_word(&p, s, sizeof(s)) == 0 && s[0] == '\0');

    /* boot info and CPU state */
    const struct hvt_boot_info *bi = rt_bootinfo;
    CHECK((uintptr_t)bi == 0x10000);
    CHECK(bi->mem_size >= 2 << 20 && bi->mem_size % (2 << 20) == 0);
    CHECK(bi->kernel_end >= 0x101000 && bi->kernel_end % 0x1000 == 0);
    CHECK(bi->cpu_cycle_freq > 0);
    CHECK(bi->mft == 0x10038);
    CHECK(bi->cmdline == 0x10038 + 8 + 104 * rt_manifest()->entries);
    CHECK(rt_manifest()->version == 1 && rt_manifest()->entries == 1);
    CHECK(rt_manifest()->e[0].type == MFT_RESERVED_FIRST);
    CHECK(bi->host_features == 0 && bi->net_ring == 0);
    CHECK(rt_get_fs_base() == (uintptr_t)rt_tcb_ptr);
    uint64_t rsp;
    __asm__ __volatile__("movq %%rsp, %0" : "=r"(rsp));
    CHECK(rsp < bi->mem_size && rsp > bi->mem_size - 65536);
    CHECK(clock_monotonic() < 60 * NSEC_PER_SEC);

    printf("rtcheck: cmdline \"%s\"\n", cmdline);
    if (fail)
        return EXIT_FAILURE;
    puts("SUCCESS\n");
    return EXIT_SUCCESS;
}
