/* tls: __thread variables (local-exec, %fs-relative) live in the block the
 * runtime copied below its TCB: .tdata initialised, .tbss zeroed, both
 * writable, and their addresses sit just below %fs. */
#include "guest.h"

static int fail;
#define CHECK(c) do { if (!(c)) { printf("FAILURE: %s:%d: %s\n", __FILE__, __LINE__, #c); fail = 1; } } while (0)

__thread uint64_t t_init = 0x0123456789abcdefULL;
__thread uint32_t t_small = 0xfeedf00d;
__thread char t_str[16] = "tls string";
__thread uint64_t t_zero;
__thread uint8_t t_zero_arr[100];

static uint64_t read_fs_t_init(void)
{
    uint64_t v;
    /* explicit %fs-relative access using the linker's TP offset */
    __asm__ __volatile__("movq %%fs:t_init@tpoff, %0" : "=r"(v));
    return v;
}

static void write_fs_t_zero(uint64_t v)
{
    __asm__ __volatile__("movq %0, %%fs:t_zero@tpoff" :: "r"(v) : "memory");
}

int app_main(const char *cmdline)
{
    uint64_t fs = rt_get_fs_base();
    uint64_t fs0;

    __asm__ __volatile__("movq %%fs:0, %0" : "=r"(fs0));
    CHECK(fs == (uintptr_t)rt_tcb_ptr);
    CHECK(fs0 == fs);   /* TCB self pointer at %fs:0 */

    CHECK(t_init == 0x0123456789abcdefULL);
    CHECK(read_fs_t_init() == 0x0123456789abcdefULL);
    CHECK(t_small == 0xfeedf00d);
    CHECK(strcmp(t_str, "tls string") == 0);
    CHECK(t_zero == 0);
    for (int i = 0; i < 100; i++)
        CHECK(t_zero_arr[i] == 0);

    /* every TLS object is below %fs and within a page of it */
    uintptr_t addrs[] = { (uintptr_t)&t_init, (uintptr_t)&t_small,
                          (uintptr_t)t_str, (uintptr_t)&t_zero,
                          (uintptr_t)t_zero_arr };
    for (unsigned i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++)
        CHECK(addrs[i] < fs && fs - addrs[i] <= 4096);
    CHECK(((uintptr_t)&t_init & 7) == 0);

    t_init = 1;
    t_small = 2;
    t_str[0] = 'T';
    write_fs_t_zero(0xabcdef);
    t_zero_arr[99] = 9;
    CHECK(read_fs_t_init() == 1);
    CHECK(t_small == 2);
    CHECK(t_str[0] == 'T' && t_str[1] == 'l');
    CHECK(t_zero == 0xabcdef);
    CHECK(t_zero_arr[99] == 9 && t_zero_arr[98] == 0);

    /* the stack-protector canary is still in place and non-zero */
    CHECK(rt_tcb_ptr->stack_guard != 0);

    printf("tls: fs=0x%lx &t_init=%p &t_zero=%p\n", fs, (void *)&t_init,
           (void *)&t_zero);
    if (fail)
        return EXIT_FAILURE;
    puts("SUCCESS\n");
    return EXIT_SUCCESS;
}
