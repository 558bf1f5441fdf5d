/*
 * blkbench: sequential raw block I/O for bench/blk, on device "storage".
 *
 * Command line: write|read REQ_BYTES
 *   One raw BLOCK_WRITE / BLOCK_READ hypercall per REQ_BYTES over the whole
 *   capacity, in order, from one static buffer. No data is generated or
 *   checked: the guest does as little as possible per operation (guest
 *   instructions are slow under kvm_pvm). REQ_BYTES must be a multiple of
 *   the sector size that divides the capacity; the tender accepts any whole
 *   number of sectors per request.
 *
 * Command line: null OPS
 *   OPS zero-length BLOCK_READs at offset 0 (no data moves: the cost of a
 *   hypercall round trip through the block handler).
 *
 * Prints "ops=N bytes=B ns=T" (T from the TSC, around the loop only) and
 * exits 0; on a bad argument or a non-OK ret prints FAILURE and exits 1.
 */
#include "guest.h"

#define MAX_REQ (1u << 20)
static uint8_t buf[MAX_REQ] __attribute__((aligned(4096)));
static volatile struct hc_block req;

static uint64_t tsc_to_ns(uint64_t t)
{
    uint64_t freq = rt_bootinfo->cpu_cycle_freq;
    return (t / freq) * NSEC_PER_SEC + ((t % freq) * NSEC_PER_SEC) / freq;
}

int app_main(const char *cmdline)
{
    char mode[16];
    const char *p = cmdline;
    long len;
    uint64_t handle;
    struct block_info info;
    unsigned nr;

    next_word(&p, mode, sizeof(mode));
    if (strcmp(mode, "write") == 0)
        nr = HC_BLOCK_WRITE;
    else if (strcmp(mode, "read") == 0 || strcmp(mode, "null") == 0)
        nr = HC_BLOCK_READ;
    else {
        printf("FAILURE: usage: write|read REQ_BYTES | null OPS (got \"%s\")\n",
               cmdline);
        return EXIT_FAILURE;
    }
    if (parse_long(&p, &len) != 0 || len <= 0 || (uint64_t)len > MAX_REQ) {
        printf("FAILURE: REQ_BYTES / OPS must be 1..%u\n", MAX_REQ);
        return EXIT_FAILURE;
    }
    if (block_acquire("storage", &handle, &info) != RES_OK) {
        puts("FAILURE: block device 'storage' not attached\n");
        return EXIT_FAILURE;
    }
    req.handle = handle;
    req.data = (uint64_t)(uintptr_t)buf;

    if (mode[0] == 'n') {
        uint64_t ops = (uint64_t)len;
        req.len = 0;
        req.offset = 0;
        uint64_t t0 = rdtsc();
        for (uint64_t i = 0; i < ops; i++) {
            req.ret = -1;
            hypercall(nr, &req);
            if (req.ret != RES_OK) {
                printf("FAILURE: null read %lu: ret %d\n", i, req.ret);
                return EXIT_FAILURE;
            }
        }
        uint64_t t1 = rdtsc();
        printf("ops=%lu bytes=0 ns=%lu\n", ops, tsc_to_ns(t1 - t0));
        return EXIT_SUCCESS;
    }
    uint64_t step = (uint64_t)len, cap = info.capacity;
    if (step % info.block_size != 0 || cap % step != 0) {
        printf("FAILURE: REQ_BYTES %lu vs sector %lu / capacity %lu\n",
               step, info.block_size, cap);
        return EXIT_FAILURE;
    }

    req.len = step;
    uint64_t ops = cap / step;
    uint64_t t0 = rdtsc();
    for (uint64_t off = 0; off < cap; off += step) {
        req.offset = off;
        req.ret = -1;
        hypercall(nr, &req);
        if (req.ret != RES_OK) {
            printf("FAILURE: %s at offset %lu: ret %d\n", mode, off, req.ret);
            return EXIT_FAILURE;
        }
    }
    uint64_t t1 = rdtsc();
    printf("ops=%lu bytes=%lu ns=%lu\n", ops, cap, tsc_to_ns(t1 - t0));
    return EXIT_SUCCESS;
}
