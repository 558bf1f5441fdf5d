/* output: exactly one PUTS of 4096 bytes: 64 lines of 63 characters
 * ("0123456789abcdef..." rotated by the line number) plus '\n'. */
#include "guest.h"

static char buf[4096];

int app_main(const char *cmdline)
{
    static const char alphabet[] =
        "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ+/";
    for (int line = 0; line < 64; line++) {
        for (int i = 0; i < 63; i++)
            buf[line * 64 + i] = alphabet[(line + i) % 64];
        buf[line * 64 + 63] = '\n';
    }
    console_write(buf, sizeof(buf));
    return EXIT_SUCCESS;
}
