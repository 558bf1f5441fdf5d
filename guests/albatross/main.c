/*
 * albatross: a unikernel as albatrossd starts it (tests/test_albatross.py):
 * one NIC on bridge "service", one block device "storage", and the
 * `--name=NAME` Albatross puts before the arguments.
 *
 *   --name=NAME exit N      print the name and MAC, then exit(N)
 *   --name=NAME write SEED  forever: pass P = SEED, SEED+1, ... writes
 *                           {sector, P} to every sector in order, one
 *                           console line "written P S" after each write
 *                           (for SIGTERM and a console reader that goes away)
 */
#include "guest.h"
#include "net.h"

#define MAX_BS 4096
static uint8_t buf[MAX_BS] __attribute__((aligned(64)));

static int write_forever(long seed)
{
    uint64_t handle;
    struct block_info info;

    if (block_acquire("storage", &handle, &info) != RES_OK || info.block_size > MAX_BS) {
        puts("FAILURE: block_acquire(storage)\n");
        return EXIT_FAILURE;
    }
    for (uint64_t pass = (uint64_t)seed;; pass++) {
        for (uint64_t s = 0; s < info.capacity / info.block_size; s++) {
            uint64_t *w = (uint64_t *)buf;
            w[0] = s;
            w[1] = pass;
            if (block_write(handle, s * info.block_size, buf, info.block_size) != RES_OK) {
                printf("FAILURE: write sector %lu\n", s);
                return EXIT_FAILURE;
            }
            printf("written %lu %lu\n", pass, s);
        }
    }
}

int app_main(const char *cmdline)
{
    const char *p = cmdline;
    char name[80], mode[16];
    uint64_t handle;
    struct net_info ni;
    long n;

    if (!next_word(&p, name, sizeof name) || strncmp(name, "--name=", 7) != 0) {
        printf("FAILURE: expected --name=NAME first, got \"%s\"\n", cmdline);
        return EXIT_FAILURE;
    }
    if (net_acquire("service", &handle, &ni) != RES_OK) {
        puts("FAILURE: net_acquire(service)\n");
        return EXIT_FAILURE;
    }
    printf("albatross: name=%s mac=%02x:%02x:%02x:%02x:%02x:%02x\n", name + 7,
           ni.mac[0], ni.mac[1], ni.mac[2], ni.mac[3], ni.mac[4], ni.mac[5]);
    next_word(&p, mode, sizeof mode);
    if (parse_long(&p, &n) < 0) {
        printf("FAILURE: usage: --name=NAME exit N | write SEED (got \"%s\")\n", cmdline);
        return EXIT_FAILURE;
    }
    if (strcmp(mode, "exit") == 0)
        exit((int)n);
    if (strcmp(mode, "write") == 0)
        return write_forever(n);
    printf("FAILURE: unknown mode \"%s\"\n", mode);
    return EXIT_FAILURE;
}
