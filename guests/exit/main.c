/* exit: exit with the decimal status given on the command line
 * ("N" or "exit N"); e.g. 256 -> process status 0, -2 -> 254. */
#include "guest.h"

int app_main(const char *cmdline)
{
    const char *p = cmdline;
    long n;

    while (*p == ' ')
        p++;
    if (strncmp(p, "exit", 4) == 0 && (p[4] == ' ' || p[4] == '\0'))
        p += 4;
    if (parse_long(&p, &n) != 0) {
        printf("FAILURE: usage: exit N (got \"%s\")\n", cmdline);
        return EXIT_FAILURE;
    }
    printf("exit: calling exit(%ld)\n", n);
    exit((int)n);
}
