/* wrodata: write into a const object in .rodata (host-read-only). The
 * tender should stop us with "host/guest translation fault". */
#include "guest.h"

const uint64_t ro_value = 0x526f446174614f4bULL;

int app_main(const char *cmdline)
{
    volatile uint64_t *p = (volatile uint64_t *)(uintptr_t)&ro_value;
    __asm__ __volatile__("" : "+r"(p));
    printf("wrodata: writing to .rodata at %p\n", (void *)p);
    *p = 0x1122334455667788ULL;
    printf("FAILURE: write succeeded (value now 0x%lx)\n", (unsigned long)*p);
    return EXIT_FAILURE;
}
