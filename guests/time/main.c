/* time: with the argument `wall`, print two wall clock readings 10 ms
 * apart and exit 0 (for scripted clocks). Otherwise: wall clock sane, five 1 s yields each measured (TSC) within
 * 0.8-1.2 s, monotonic clock never goes backwards, and wall and monotonic
 * clocks advance at about the same rate. */
#include "guest.h"

#define MS (NSEC_PER_SEC / 1000)
/* 2017-01-01T00:00:00Z */
#define WALL_MIN (1483228800ULL * NSEC_PER_SEC)

int app_main(const char *cmdline)
{
    int fail = 0;
    uint64_t w0 = clock_wall(), m0 = clock_monotonic();

    if (strcmp(cmdline, "wall") == 0) {
        yield(m0 + 10 * MS);
        uint64_t w = clock_wall();
        printf("time: walltime %lu ns, then %lu ns\n", w0, w);
        return EXIT_SUCCESS;
    }

    printf("time: walltime %lu.%09lu s\n", w0 / NSEC_PER_SEC, w0 % NSEC_PER_SEC);
    if (w0 < WALL_MIN) {
        puts("FAILURE: wall clock is before 2017\n");
        return EXIT_FAILURE;
    }

    uint64_t prev = clock_monotonic();
    for (int i = 0; i < 10000; i++) {
        uint64_t t = clock_monotonic();
        if (t < prev) {
            printf("FAILURE: monotonic clock went back %lu -> %lu\n", prev, t);
            return EXIT_FAILURE;
        }
        prev = t;
    }

    for (int i = 0; i < 5; i++) {
        uint64_t ta = clock_monotonic();
        yield(ta + NSEC_PER_SEC);
        uint64_t tb = clock_monotonic();
        if (tb < ta) {
            puts("FAILURE: monotonic clock went back across yield\n");
            return EXIT_FAILURE;
        }
        uint64_t d = tb - ta;
        printf("time: yield %d slept %lu.%03lu s\n", i, d / NSEC_PER_SEC,
               (d % NSEC_PER_SEC) / MS);
        if (d < 800 * MS) {
            puts("FAILURE: slept too little\n");
            fail = 1;
        } else if (d > 1200 * MS) {
            puts("FAILURE: slept too much\n");
            fail = 1;
        }
    }

    uint64_t w1 = clock_wall(), m1 = clock_monotonic();
    if (w1 < w0) {
        puts("FAILURE: wall clock went back\n");
        return EXIT_FAILURE;
    }
    uint64_t dw = w1 - w0, dm = m1 - m0;
    uint64_t skew = dw > dm ? dw - dm : dm - dw;
    printf("time: wall advanced %lu ms, monotonic %lu ms\n", dw / MS, dm / MS);
    if (skew > 500 * MS) {
        puts("FAILURE: wall and monotonic clocks disagree (cpu_cycle_freq?)\n");
        fail = 1;
    }
    if (fail)
        return EXIT_FAILURE;
    puts("SUCCESS\n");
    return EXIT_SUCCESS;
}
