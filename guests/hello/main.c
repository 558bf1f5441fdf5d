/* hello: the command line must be exactly "Hello_Solo5". */
#include "guest.h"

int app_main(const char *cmdline)
{
    if (strcmp(cmdline, "Hello_Solo5") != 0) {
        printf("FAILURE: command line is \"%s\", expected \"Hello_Solo5\"\n",
               cmdline);
        return EXIT_FAILURE;
    }
    puts("\n**** Hello, World ****\n\n");
    puts("SUCCESS\n");
    return EXIT_SUCCESS;
}
