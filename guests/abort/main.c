/* abort: abort() -> status 255 */
#include "guest.h"

int app_main(const char *cmdline)
{
    puts("abort: calling abort()\n");
    abort();
}
