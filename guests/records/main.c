/* records: "records COUNT [STRIDE [PAUSE_AT PAUSE_MS]]": write numbered
 * records 0..COUNT-1 to the block device "storage", record i at sector
 * i*STRIDE (default 1), one BLOCK_WRITE each, and print "ack i" only after
 * that write returned OK ("fail i ret=R" otherwise, and go on). After
 * record PAUSE_AT, wait PAUSE_MS ms (so a test can break the backing store
 * mid-run). Then read every acknowledged record back ("badread i ret=R" or
 * "mismatch i" on failure) and print "records: acked A failed F". Exit 0
 * if every write and read-back succeeded, 2 otherwise.
 *
 * A record fills its sector: "PTREC001", the record number (u64), then a
 * pattern derived from it, so a torn or misplaced sector is detectable
 * (tender/stress/crash.py checks images with the same layout). */
#include "guest.h"

#define MAX_BS 4096
#define MAX_RECORDS 65536
static uint8_t buf[MAX_BS], back[MAX_BS], acked_map[MAX_RECORDS];

static void record(uint8_t *p, uint64_t i, uint64_t bs)
{
    uint64_t *w = (uint64_t *)p;
    for (uint64_t k = 0; k < bs / 8; k++)
        w[k] = (i + 1) * 0x9e3779b97f4a7c15ULL ^ k;
    memcpy(p, "PTREC001", 8);
    w[1] = i;
}

int app_main(const char *cmdline)
{
    const char *p = cmdline;
    long count, stride = 1, pause_at = -1, pause_ms = 0;
    uint64_t h, bs;
    struct block_info info;
    long acked = 0, failed = 0;

    if (parse_long(&p, &count) != 0 || count < 0 || count > MAX_RECORDS) {
        printf("FAILURE: usage: records COUNT [STRIDE [PAUSE_AT PAUSE_MS]]\n");
        return EXIT_FAILURE;
    }
    if (parse_long(&p, &stride) == 0 && parse_long(&p, &pause_at) == 0)
        parse_long(&p, &pause_ms);
    if (block_acquire("storage", &h, &info) != RES_OK || info.block_size > MAX_BS ||
        stride < 1 || (uint64_t)count * (uint64_t)stride * info.block_size > info.capacity) {
        printf("FAILURE: device storage unusable for %ld records\n", count);
        return EXIT_FAILURE;
    }
    bs = info.block_size;
    for (long i = 0; i < count; i++) {
        record(buf, (uint64_t)i, bs);
        int r = block_write(h, (uint64_t)(i * stride) * bs, buf, bs);
        if (r == RES_OK) {
            printf("ack %ld\n", i);
            acked_map[i] = 1;
            acked++;
        } else {
            printf("fail %ld ret=%d\n", i, r);
            failed++;
        }
        if (i == pause_at)
            yield(clock_monotonic() + (uint64_t)pause_ms * (NSEC_PER_SEC / 1000));
    }
    /* Read back every acknowledged record (a failed write may have left
     * anything in its sector). */
    long bad = 0;
    for (long i = 0; i < count; i++) {
        if (!acked_map[i])
            continue;
        int r = block_read(h, (uint64_t)(i * stride) * bs, back, bs);
        record(buf, (uint64_t)i, bs);
        if (r != RES_OK) {
            printf("badread %ld ret=%d\n", i, r);
            bad++;
        } else if (memcmp(back, buf, bs) != 0) {
            printf("mismatch %ld\n", i);
            bad++;
        }
    }
    printf("records: acked %ld failed %ld\n", acked, failed);
    return failed || bad ? 2 : 0;
}
