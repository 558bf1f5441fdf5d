/* quiet: run with --solo5:quiet; the runtime prints nothing, we print SUCCESS. */
#include "guest.h"

int app_main(const char *cmdline)
{
    if (rt_log_level != LOG_QUIET) {
        puts("FAILURE: --solo5:quiet was not consumed\n");
        return EXIT_FAILURE;
    }
    if (cmdline[0] != '\0') {
        printf("FAILURE: unexpected command line \"%s\"\n", cmdline);
        return EXIT_FAILURE;
    }
    puts("SUCCESS\n");
    return EXIT_SUCCESS;
}
