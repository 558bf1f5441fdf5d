/* mft63: 63 BLOCK_BASIC devices storage0..storage62 (64 manifest entries,
 * the maximum). All must be attached with a capacity; each gets one
 * sector written and read back through its own handle. */
#include "guest.h"

static uint8_t buf[32768], want[32768];

int app_main(const char *cmdline)
{
    const struct mft *m = rt_manifest();
    char name[16];

    if (m->version != 1 || m->entries != 64) {
        printf("FAILURE: manifest version %u entries %u\n", m->version, m->entries);
        return EXIT_FAILURE;
    }
    if (m->e[0].type != MFT_RESERVED_FIRST || m->e[0].name[0] != '\0') {
        puts("FAILURE: entry 0 is not the reserved entry\n");
        return EXIT_FAILURE;
    }
    for (int i = 0; i < 63; i++) {
        snprintf(name, sizeof(name), "storage%d", i);
        int idx = mft_find(name, MFT_BLOCK_BASIC);
        if (idx != i + 1) {
            printf("FAILURE: %s at index %d\n", name, idx);
            return EXIT_FAILURE;
        }
        const struct mft_entry *e = &m->e[idx];
        uint64_t bs = e->u.blk.block_size;
        if (e->attached != 1 || e->u.blk.capacity == 0 || bs < 512 ||
            bs > sizeof(buf) || e->u.blk.capacity % bs != 0) {
            printf("FAILURE: %s attached %u capacity %lu block_size %lu\n", name,
                   e->attached, e->u.blk.capacity, bs);
            return EXIT_FAILURE;
        }
    }
    /* one write + read per device, then verify all (no cross-talk) */
    for (uint64_t h = 1; h < 64; h++) {
        uint64_t bs = m->e[h].u.blk.block_size;
        memset(buf, (int)h, bs);
        if (block_write(h, 0, buf, bs) != RES_OK) {
            printf("FAILURE: write to handle %lu\n", h);
            return EXIT_FAILURE;
        }
    }
    for (uint64_t h = 1; h < 64; h++) {
        uint64_t bs = m->e[h].u.blk.block_size;
        memset(want, (int)h, bs);
        if (block_read(h, 0, buf, bs) != RES_OK || memcmp(buf, want, bs) != 0) {
            printf("FAILURE: read back from handle %lu\n", h);
            return EXIT_FAILURE;
        }
    }
    puts("mft63: 63 devices attached and usable\n");
    puts("SUCCESS\n");
    return EXIT_SUCCESS;
}
