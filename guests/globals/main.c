/* globals: initialised .data and zeroed .bss hold the right values and are
 * writable. */
#include "guest.h"

static int fail;
#define CHECK(c) do { if (!(c)) { printf("FAILURE: %s:%d: %s\n", __FILE__, __LINE__, #c); fail = 1; } } while (0)

int data_int = 0x12345678;
volatile uint64_t data_u64 = 0xdeadbeefcafef00dULL;
char data_str[] = "initialised .data string";
int data_array[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
const char rodata_str[] = "a .rodata string";

int bss_int;
uint64_t bss_u64;
static uint64_t bss_big[8192];         /* 64 KiB: many pages past kernel_end */
static uint64_t bss_tail[512];

extern char _sbss[], _ebss[], _sdata[], _edata[];

int app_main(const char *cmdline)
{
    CHECK(data_int == 0x12345678);
    CHECK(data_u64 == 0xdeadbeefcafef00dULL);
    CHECK(strcmp(data_str, "initialised .data string") == 0);
    for (int i = 0; i < 8; i++)
        CHECK(data_array[i] == i + 1);
    CHECK(strcmp(rodata_str, "a .rodata string") == 0);

    CHECK(bss_int == 0);
    CHECK(bss_u64 == 0);
    for (size_t i = 0; i < 8192; i++)
        if (bss_big[i]) {
            printf("FAILURE: bss_big[%lu] = 0x%lx\n", (unsigned long)i, bss_big[i]);
            fail = 1;
            break;
        }
    for (size_t i = 0; i < 512; i++)
        CHECK(bss_tail[i] == 0);
    /* the whole BSS range, not just our variables (runtime state is in
     * there too and is non-zero by now, so only check our arrays' pages) */
    CHECK((uintptr_t)bss_big >= (uintptr_t)_sbss && (uintptr_t)(bss_big + 8192) <= (uintptr_t)_ebss);
    CHECK((uintptr_t)&data_int >= (uintptr_t)_sdata && (uintptr_t)&data_int < (uintptr_t)_edata);
    CHECK(rt_bootinfo->kernel_end <= (uintptr_t)_sbss);

    data_int = -1;
    data_u64 = 1;
    data_str[0] = 'I';
    for (int i = 0; i < 8; i++)
        data_array[i] *= 10;
    bss_int = 42;
    bss_u64 = ~0ULL;
    for (size_t i = 0; i < 8192; i++)
        bss_big[i] = i * 7;
    bss_tail[511] = 0x1122334455667788ULL;

    CHECK(data_int == -1);
    CHECK(data_u64 == 1);
    CHECK(data_str[0] == 'I');
    for (int i = 0; i < 8; i++)
        CHECK(data_array[i] == (i + 1) * 10);
    CHECK(bss_int == 42);
    CHECK(bss_u64 == ~0ULL);
    for (size_t i = 0; i < 8192; i++)
        if (bss_big[i] != i * 7) {
            printf("FAILURE: bss_big[%lu] readback\n", (unsigned long)i);
            fail = 1;
            break;
        }
    CHECK(bss_tail[511] == 0x1122334455667788ULL);

    if (fail)
        return EXIT_FAILURE;
    puts("SUCCESS\n");
    return EXIT_SUCCESS;
}
