/* notls: FS base 0, then read %fs:0x28 (what the stack protector reads)
 * -> #PF at 0x28 -> abort. Built without the stack protector. */
#include "guest.h"

int app_main(const char *cmdline)
{
    uint64_t v;
    puts("notls: setting FS base to 0 and reading %fs:0x28\n");
    rt_set_fs_base(0);
    __asm__ __volatile__("movq %%fs:0x28, %0" : "=r"(v) :: "memory");
    rt_set_fs_base((uintptr_t)rt_tcb_ptr);
    printf("FAILURE: read 0x%lx through a null FS base\n", v);
    return EXIT_FAILURE;
}
