/* wtext: write into our own .text (host-read-only). The tender should stop
 * us with "host/guest translation fault"; surviving is a failure. The byte
 * written is the one already there, so a lax tender still runs correctly. */
#include "guest.h"

static __attribute__((noinline)) int victim(int x) { return x * 3 + 1; }

int app_main(const char *cmdline)
{
    volatile uint8_t *p = (volatile uint8_t *)(uintptr_t)&victim;
    __asm__ __volatile__("" : "+r"(p));
    printf("wtext: writing to .text at %p\n", (void *)p);
    uint8_t old = *p;
    *p = old;
    printf("FAILURE: write succeeded (victim(1) = %d)\n", victim(1));
    return EXIT_FAILURE;
}
