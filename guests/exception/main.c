/* exception: write to GPA 16 GiB (not mapped) -> #PF -> trap handler ->
 * abort (255) with the trap frame as the HALT cookie. */
#include "guest.h"

int app_main(const char *cmdline)
{
    volatile uint64_t *p = (volatile uint64_t *)(16ULL << 30);
    puts("exception: writing to 16 GiB\n");
    *p = 1;
    puts("FAILURE: survived the write\n");
    return EXIT_FAILURE;
}
