/* gdbtarget: known functions and variables for the gdb stub tests.
 *
 * Without arguments it calls add_step() five times and exits 0 when the
 * total is 65. With "spin" it first loops until a debugger sets gdb_release
 * (for the Ctrl-C test). */
#include "guest.h"

volatile uint64_t gdb_counter;
volatile uint64_t gdb_release;

__attribute__((noinline)) uint64_t add_step(uint64_t x, uint64_t y)
{
    uint64_t r = x * 3 + y;
    gdb_counter += r;
    return r;
}

int app_main(const char *cmdline)
{
    uint64_t total = 0, i;

    if (strcmp(cmdline, "spin") == 0) {
        puts("gdbtarget: spinning\n");
        while (!gdb_release)
            ;
    }
    for (i = 0; i < 5; i++)
        total += add_step(i, 7);
    printf("gdbtarget: total=%lu counter=%lu\n", (unsigned long)total,
           (unsigned long)gdb_counter);
    return total == 65 ? EXIT_SUCCESS : EXIT_FAILURE;
}
