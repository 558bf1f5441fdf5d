/* blk2: two block devices disk0 and disk1: write distinct patterns to
 * every sector of both, then read both back and verify (so a write to one
 * device must not land on the other). */
#include "guest.h"

#define MAX_BS 32768
static uint8_t buf[MAX_BS], want[MAX_BS];

struct dev { const char *name; uint64_t h; struct block_info info; uint64_t tag; };

static void pattern(uint8_t *p, const struct dev *d, uint64_t sector)
{
    uint64_t *w = (uint64_t *)p;
    memset64(w, (d->tag << 40) ^ (sector * 0x9e3779b97f4a7c15ULL),
             d->info.block_size / 8);
    w[0] = d->tag;
    w[1] = sector;
}

int app_main(const char *cmdline)
{
    struct dev devs[2] = { { "disk0", 0, { 0, 0 }, 0xd15c0 },
                           { "disk1", 0, { 0, 0 }, 0xd15c1 } };

    for (int i = 0; i < 2; i++) {
        struct dev *d = &devs[i];
        if (block_acquire(d->name, &d->h, &d->info) != RES_OK ||
            d->info.block_size < 512 || d->info.block_size > MAX_BS) {
            printf("FAILURE: device %s unusable\n", d->name);
            return EXIT_FAILURE;
        }
        printf("blk2: %s handle %lu capacity %lu block_size %lu\n", d->name,
               d->h, d->info.capacity, d->info.block_size);
    }
    if (devs[0].h == devs[1].h) {
        puts("FAILURE: both devices have the same handle\n");
        return EXIT_FAILURE;
    }
    for (int i = 0; i < 2; i++) {
        struct dev *d = &devs[i];
        uint64_t bs = d->info.block_size;
        for (uint64_t s = 0; s < d->info.capacity / bs; s++) {
            pattern(buf, d, s);
            if (block_write(d->h, s * bs, buf, bs) != RES_OK) {
                printf("FAILURE: %s write sector %lu\n", d->name, s);
                return EXIT_FAILURE;
            }
        }
    }
    for (int i = 0; i < 2; i++) {
        struct dev *d = &devs[i];
        uint64_t bs = d->info.block_size;
        for (uint64_t s = 0; s < d->info.capacity / bs; s++) {
            if (block_read(d->h, s * bs, buf, bs) != RES_OK) {
                printf("FAILURE: %s read sector %lu\n", d->name, s);
                return EXIT_FAILURE;
            }
            pattern(want, d, s);
            if (memcmp(buf, want, bs) != 0) {
                printf("FAILURE: %s sector %lu mismatch\n", d->name, s);
                return EXIT_FAILURE;
            }
        }
        printf("blk2: %s verified\n", d->name);
    }
    puts("SUCCESS\n");
    return EXIT_SUCCESS;
}
