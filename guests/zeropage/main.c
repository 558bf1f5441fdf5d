/* zeropage: write to address 8 (the zero page is not mapped) -> abort. */
#include "guest.h"

int app_main(const char *cmdline)
{
    volatile uint64_t *p = (volatile uint64_t *)(uintptr_t)8;
    puts("zeropage: writing to address 8\n");
    __asm__ __volatile__("" : "+r"(p));  /* hide the constant from gcc */
    *p = 1;
    puts("FAILURE: survived the write\n");
    return EXIT_FAILURE;
}
