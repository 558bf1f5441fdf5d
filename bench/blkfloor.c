/*
 * blkfloor: the host floor for bench/blk.
 *
 *   blkfloor write|read PATH REQ_BYTES
 *
 * Sequential pwrite / pread of REQ_BYTES per call over the whole file, from
 * one static buffer, on an fd opened like the tender opens block images
 * (O_RDWR, no O_DIRECT, no O_SYNC). Prints "ops=N bytes=B ns=T" (T around
 * the loop only, CLOCK_MONOTONIC), the same line the blkbench guest prints.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_REQ (1u << 20)
static uint8_t buf[MAX_REQ] __attribute__((aligned(4096)));

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc != 4 || (strcmp(argv[1], "write") != 0 && strcmp(argv[1], "read") != 0)) {
        fprintf(stderr, "usage: blkfloor write|read PATH REQ_BYTES\n");
        return 2;
    }
    int writing = argv[1][0] == 'w';
    uint64_t req = strtoull(argv[3], NULL, 10);
    int fd = open(argv[2], O_RDWR | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        perror(argv[2]);
        return 2;
    }
    uint64_t cap = (uint64_t)st.st_size;
    if (req == 0 || req > MAX_REQ || cap % req != 0) {
        fprintf(stderr, "blkfloor: bad REQ_BYTES %s for size %lu\n", argv[3], cap);
        return 2;
    }
    uint64_t t0 = now_ns();
    for (uint64_t off = 0; off < cap; off += req) {
        ssize_t n = writing ? pwrite(fd, buf, req, (off_t)off)
                            : pread(fd, buf, req, (off_t)off);
        if (n != (ssize_t)req) {
            perror(writing ? "pwrite" : "pread");
            return 1;
        }
    }
    uint64_t t1 = now_ns();
    printf("ops=%lu bytes=%lu ns=%lu\n", cap / req, cap, t1 - t0);
    return 0;
}
