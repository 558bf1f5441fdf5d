/* hold: "hold STATUS": print "hold: start STATUS", then read sector 0 of
 * the block device "storage" every 20 ms (a POLL in between) until it
 * begins with "go", print "hold: end STATUS" and exit with STATUS & 0xff.
 * Load tests start many at once, see every "start" before any "end" (so
 * all ran at the same time), then release them by writing "go" into their
 * images and check that each run's status and output are its own. */
#include "guest.h"

static uint8_t sector[4096];

int app_main(const char *cmdline)
{
    const char *p = cmdline;
    long status;
    uint64_t h;
    struct block_info info;

    if (parse_long(&p, &status) != 0) {
        printf("FAILURE: usage: hold STATUS (got \"%s\")\n", cmdline);
        return EXIT_FAILURE;
    }
    if (block_acquire("storage", &h, &info) != RES_OK || info.block_size > sizeof sector) {
        puts("FAILURE: device storage unusable\n");
        return EXIT_FAILURE;
    }
    printf("hold: start %ld\n", status);
    for (;;) {
        int r = block_read(h, 0, sector, info.block_size);
        if (r != RES_OK) {
            printf("FAILURE: read ret=%d\n", r);
            return EXIT_FAILURE;
        }
        if (sector[0] == 'g' && sector[1] == 'o')
            break;
        yield(clock_monotonic() + 20 * (NSEC_PER_SEC / 1000));
    }
    printf("hold: end %ld\n", status);
    return (int)status;
}
