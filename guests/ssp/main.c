/* ssp: overflow a stack buffer -> __stack_chk_fail ->
 * "Stack corruption detected" -> abort (255). */
#include "guest.h"

static volatile size_t overflow = 48;

static __attribute__((noinline)) int smash(const char *src)
{
    char buf[16];
    for (size_t i = 0; i < overflow; i++)
        buf[i] = src[i % 4];
    __asm__ __volatile__("" :: "r"(buf) : "memory");
    return buf[3];
}

int app_main(const char *cmdline)
{
    puts("ssp: smashing the stack\n");
    int r = smash("AAAA");
    printf("FAILURE: returned from smash (%d)\n", r);
    return EXIT_FAILURE;
}
