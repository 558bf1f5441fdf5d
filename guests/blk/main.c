/*
 * blk: block device test on manifest device "storage".
 *
 * Command line: [MODE] [SEED] [multi]
 *   (no mode) / full  write a per-sector pattern to every sector, read all
 *                     back, exercise the tender's EINVAL cases with raw
 *                     hypercalls, verify again -> SUCCESS
 *   verify SEED       only read and verify (persistence across runs)
 *   write SEED        only write, exit 0
 *   write-abort SEED  write, then abort() (255)
 *   write-spin SEED   write, print WRITTEN, then yield forever (for SIGTERM)
 *   write-busy SEED   write, print WRITTEN, then spin with no VM exit at all
 *   write-fault SEED  write, then a fatal bad hypercall (tender exits 1)
 *   multi             fail if a multi-sector raw request gets EINVAL
 */
#include "guest.h"

#define MAX_BS 32768
static uint8_t buf[4 * MAX_BS] __attribute__((aligned(64)));
static uint8_t want[4 * MAX_BS] __attribute__((aligned(64)));

static uint64_t handle;
static struct block_info info;
static uint64_t seed;
static int fail;

#define CHECK(c) do { if (!(c)) { printf("FAILURE: %s:%d: %s\n", __FILE__, __LINE__, #c); fail = 1; } } while (0)

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* Sector contents: words {sector, seed, ~sector}, then a body of one
 * pseudo-random word derived from both (rep stosq: cheap even when the
 * guest is emulated), then {sector ^ seed} as the last word. */
static void pattern(uint8_t *p, uint64_t sector)
{
    uint64_t *w = (uint64_t *)p;
    uint64_t words = info.block_size / 8;
    memset64(w + 3, mix(sector ^ mix(seed)), words - 4);
    w[0] = sector;
    w[1] = seed;
    w[2] = ~sector;
    w[words - 1] = sector ^ seed ^ 0x7e11da7a5ec70c5ULL;
}

static int write_all(void)
{
    uint64_t n = info.capacity / info.block_size;
    for (uint64_t s = 0; s < n; s++) {
        pattern(buf, s);
        int r = block_write(handle, s * info.block_size, buf, info.block_size);
        if (r != RES_OK) {
            printf("FAILURE: write sector %lu: ret %d\n", s, r);
            return -1;
        }
    }
    printf("blk: wrote %lu sectors (seed %lu)\n", n, seed);
    return 0;
}

static int verify_all(void)
{
    uint64_t n = info.capacity / info.block_size;
    for (uint64_t s = 0; s < n; s++) {
        memset(buf, 0xa5, info.block_size);
        int r = block_read(handle, s * info.block_size, buf, info.block_size);
        if (r != RES_OK) {
            printf("FAILURE: read sector %lu: ret %d\n", s, r);
            return -1;
        }
        pattern(want, s);
        if (memcmp(buf, want, info.block_size) != 0) {
            uint64_t *w = (uint64_t *)buf;
            printf("FAILURE: sector %lu mismatch (holds sector %lu seed %lu)\n",
                   s, w[0], w[1]);
            return -1;
        }
    }
    printf("blk: verified %lu sectors (seed %lu)\n", n, seed);
    return 0;
}

static const char *res_name(int r)
{
    switch (r) {
    case RES_OK: return "OK";
    case RES_AGAIN: return "AGAIN";
    case RES_EINVAL: return "EINVAL";
    case RES_EUNSPEC: return "EUNSPEC";
    default: return "?";
    }
}

static void expect_einval(const char *what, int r)
{
    printf("blk: %s -> %s\n", what, res_name(r));
    if (r != RES_EINVAL) {
        printf("FAILURE: %s: expected EINVAL, got %d\n", what, r);
        fail = 1;
    }
}

static int full_test(int need_multi)
{
    uint64_t bs = info.block_size, cap = info.capacity, n = cap / bs;
    uint64_t entries = rt_manifest()->entries;

    if (write_all() || verify_all())
        return -1;

    /* last sector explicitly, raw */
    CHECK(hc_block_read(handle, cap - bs, buf, bs) == RES_OK);
    pattern(want, n - 1);
    CHECK(memcmp(buf, want, bs) == 0);

    /* tender-side bounds checks, raw hypercalls */
    expect_einval("raw read at offset=capacity", hc_block_read(handle, cap, buf, bs));
    expect_einval("raw write at offset=capacity", hc_block_write(handle, cap, buf, bs));
    expect_einval("raw read crossing the end", hc_block_read(handle, cap - bs, buf, 2 * bs));
    expect_einval("raw write crossing the end", hc_block_write(handle, cap - bs, buf, 2 * bs));
    expect_einval("raw read offset=2^64-bs", hc_block_read(handle, -bs, buf, bs));
    expect_einval("raw read len=2^63", hc_block_read(handle, 0, buf, 1ULL << 63));
    expect_einval("raw read len=2^64-1", hc_block_read(handle, bs, buf, ~0ULL));
    expect_einval("raw read handle 0", hc_block_read(0, 0, buf, bs));
    expect_einval("raw write handle 0", hc_block_write(0, 0, buf, bs));
    expect_einval("raw read handle=entries", hc_block_read(entries, 0, buf, bs));
    expect_einval("raw read handle=2^63", hc_block_read(1ULL << 63, 0, buf, bs));
    expect_einval("raw read handle=2^32+1", hc_block_read((1ULL << 32) + handle, 0, buf, bs));

    /* bindings-style (guest-side) checks */
    expect_einval("helper write past capacity", block_write(handle, cap, buf, bs));
    expect_einval("helper read misaligned offset", block_read(handle, 1, buf, bs));
    expect_einval("helper read short len", block_read(handle, 0, buf, bs / 2));
    expect_einval("helper read long len", block_read(handle, 0, buf, 2 * bs));

    /* multi-sector raw requests (not used by bindings; ours support it) */
    if (n >= 4) {
        for (int i = 0; i < 4; i++)
            pattern(buf + i * bs, (uint64_t)i);
        int w = hc_block_write(handle, 0, buf, 4 * bs);
        memset(buf, 0, 4 * bs);
        int r = hc_block_read(handle, 0, buf, 4 * bs);
        printf("multi-sector: %s (write %s)\n", res_name(r), res_name(w));
        if (r == RES_OK) {
            for (int i = 0; i < 4; i++) {
                pattern(want, (uint64_t)i);
                if (memcmp(buf + i * bs, want, bs) != 0) {
                    printf("FAILURE: multi-sector data wrong in sector %d\n", i);
                    fail = 1;
                }
            }
        } else if (need_multi || r != RES_EINVAL || w != RES_EINVAL) {
            printf("FAILURE: multi-sector: read %d write %d\n", r, w);
            fail = 1;
        }
    } else {
        puts("multi-sector: skipped (fewer than 4 sectors)\n");
        if (need_multi)
            fail = 1;
    }

    /* misaligned raw request: informative only */
    if (n >= 2) {
        int r = hc_block_read(handle, 1, buf, bs);
        printf("misaligned raw read (offset 1): %s\n", res_name(r));
        if (r == RES_OK) {
            pattern(want, 0);
            pattern(want + bs, 1);
            if (memcmp(buf, want + 1, bs) != 0) {
                puts("FAILURE: misaligned read returned OK with wrong data\n");
                fail = 1;
            }
        }
    }
    /* zero-length request inside the device: informative only */
    printf("zero-length raw read: %s\n", res_name(hc_block_read(handle, 0, buf, 0)));

    /* nothing above may have changed the contents: recheck the sectors the
     * raw requests touched (a full pass costs minutes on an emulated CPU) */
    uint64_t touched[] = { 0, 1, 2, 3, 4, n - 2, n - 1 };
    for (unsigned i = 0; i < sizeof(touched) / sizeof(touched[0]); i++) {
        uint64_t s = touched[i];
        if (s >= n)
            continue;
        CHECK(block_read(handle, s * bs, buf, bs) == RES_OK);
        pattern(want, s);
        if (memcmp(buf, want, bs) != 0) {
            printf("FAILURE: sector %lu changed by the raw requests\n", s);
            fail = 1;
        }
    }
    return fail ? -1 : 0;
}

int app_main(const char *cmdline)
{
    char mode[32] = "full", word[32];
    const char *p = cmdline;
    int need_multi = 0;

    while (next_word(&p, word, sizeof(word))) {
        const char *q = word;
        long v;
        if (strcmp(word, "multi") == 0)
            need_multi = 1;
        else if (parse_long(&q, &v) == 0 && *q == '\0')
            seed = (uint64_t)v;
        else
            memcpy(mode, word, sizeof(mode));
    }

    int r = block_acquire("storage", &handle, &info);
    if (r != RES_OK) {
        printf("FAILURE: block device 'storage' not available (%d)\n", r);
        return EXIT_FAILURE;
    }
    printf("blk: mode %s handle %lu capacity %lu block_size %lu\n", mode, handle,
           info.capacity, info.block_size);
    if (info.block_size < 512 || info.block_size > MAX_BS ||
        (info.block_size & (info.block_size - 1)) != 0 ||
        info.capacity % info.block_size != 0 || info.capacity == 0) {
        puts("FAILURE: bad capacity/block_size in the manifest copy\n");
        return EXIT_FAILURE;
    }

    if (strcmp(mode, "full") == 0) {
        if (full_test(need_multi) != 0)
            return EXIT_FAILURE;
    } else if (strcmp(mode, "verify") == 0) {
        if (verify_all() != 0)
            return EXIT_FAILURE;
    } else if (strcmp(mode, "write") == 0) {
        return write_all() ? EXIT_FAILURE : EXIT_SUCCESS;
    } else if (strcmp(mode, "write-abort") == 0) {
        if (write_all())
            return EXIT_FAILURE;
        abort();
    } else if (strcmp(mode, "write-spin") == 0) {
        if (write_all())
            return EXIT_FAILURE;
        puts("WRITTEN\n");
        for (;;)
            yield(clock_monotonic() + NSEC_PER_SEC);
    } else if (strcmp(mode, "write-busy") == 0) {
        /* Spin without a single VM exit: a signal must still end the run. */
        if (write_all())
            return EXIT_FAILURE;
        puts("WRITTEN\n");
        for (volatile uint64_t i = 0;; i++)
            ;
    } else if (strcmp(mode, "write-fault") == 0) {
        /* Then a PUTS of the last byte of RAM: the tender kills us (exit 1). */
        if (write_all())
            return EXIT_FAILURE;
        static struct hc_puts bad;
        bad.data = rt_bootinfo->mem_size - 1;
        bad.len = 1;
        hypercall(HC_PUTS, &bad);
        puts("FAILURE: survived a bad PUTS\n");
        return EXIT_FAILURE;
    } else {
        printf("FAILURE: unknown mode \"%s\"\n", mode);
        return EXIT_FAILURE;
    }
    puts("SUCCESS\n");
    return EXIT_SUCCESS;
}
