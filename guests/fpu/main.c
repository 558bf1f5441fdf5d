/* fpu: SSE movaps/mulps on aligned data. This file alone is built without
 * -mgeneral-regs-only. (Dies with a KVM internal error under kvm_pvm.) */
#include "guest.h"

static const uint32_t a[4] __attribute__((aligned(16))) = {
    0x3f800000, 0x40000000, 0x40400000, 0x40800000 };   /* 1 2 3 4 */
static const uint32_t b[4] __attribute__((aligned(16))) = {
    0x40000000, 0x40000000, 0x3f000000, 0xc0000000 };   /* 2 2 0.5 -2 */
static uint32_t r[4] __attribute__((aligned(16)));
static const uint32_t want[4] = {
    0x40000000, 0x40800000, 0x3fc00000, 0xc1000000 };   /* 2 4 1.5 -8 */

int app_main(const char *cmdline)
{
    puts("fpu: movaps/mulps\n");
    __asm__ __volatile__(
        "movaps %1, %%xmm0\n\t"
        "movaps %2, %%xmm1\n\t"
        "mulps %%xmm1, %%xmm0\n\t"
        "movaps %%xmm0, %0\n\t"
        : "=m"(r) : "m"(a), "m"(b) : "xmm0", "xmm1", "memory");
    for (int i = 0; i < 4; i++)
        if (r[i] != want[i]) {
            printf("FAILURE: lane %d = 0x%x, want 0x%x\n", i, r[i], want[i]);
            return EXIT_FAILURE;
        }
    puts("SUCCESS\n");
    return EXIT_SUCCESS;
}
