/*
 * Seccomp: the last step before the vCPU loop (HVT_SPEC.md 8.1). Python
 * decides the policy (which syscalls, which ioctl requests); this file only
 * turns the two lists into a BPF program and installs it on every thread
 * (TSYNC), so the ring I/O thread is covered too. Anything else kills the
 * whole process (KILL_PROCESS, not upstream's kill-thread: a killed main
 * thread must not leave the I/O thread running).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#ifndef __linux__
#include "vcpu_loop.h"

/* No seccomp on this host (FreeBSD: Capsicum is not wired, tender/sandbox.py). */
int vl_read_implies_exec(void)
{
    return 0;
}

int vl_sandbox(const uint32_t *nrs, uint32_t n_nrs, uint32_t ioctl_nr,
               const uint32_t *ioctls, uint32_t n_ioctls,
               uint32_t self_nr, uint32_t self_pid)
{
    (void)nrs, (void)n_nrs, (void)ioctl_nr, (void)ioctls, (void)n_ioctls;
    (void)self_nr, (void)self_pid;
    return ENOSYS;
}
#else
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#include "vcpu_loop.h"

#define OFF_NR offsetof(struct seccomp_data, nr)
#define OFF_ARCH offsetof(struct seccomp_data, arch)
#define OFF_ARG0_LO offsetof(struct seccomp_data, args)
#define OFF_ARG1_LO (offsetof(struct seccomp_data, args) + 8)
#define OFF_ARG1_HI (offsetof(struct seccomp_data, args) + 12)

#define STMT(code, k) ((struct sock_filter)BPF_STMT(code, k))
#define JEQ(k, jt, jf) ((struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, k, jt, jf))

int vl_read_implies_exec(void)
{
    int p = personality(0xffffffff);
    return p >= 0 && (p & READ_IMPLIES_EXEC) != 0;
}

int vl_sandbox(const uint32_t *nrs, uint32_t n_nrs, uint32_t ioctl_nr,
               const uint32_t *ioctls, uint32_t n_ioctls,
               uint32_t self_nr, uint32_t self_pid)
{
    struct sock_filter *f;
    struct sock_fprog prog;
    /* Layout: 4 arch/nr loads and checks, n_nrs jumps, the self_nr check
     * (4), 7 for the ioctl preamble, n_ioctls jumps, KILL, then ALLOW at
     * index allow. */
    uint32_t i, k = 0, allow = n_nrs + n_ioctls + 15, max = allow + 1;
    int rc;

    if (n_nrs + n_ioctls > 240)     /* jump offsets are 8-bit */
        return EINVAL;
    f = calloc(max, sizeof *f);
    if (f == NULL)
        return ENOMEM;
    f[k++] = STMT(BPF_LD | BPF_W | BPF_ABS, OFF_ARCH);
    f[k++] = JEQ(AUDIT_ARCH_X86_64, 1, 0);
    f[k++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
    f[k++] = STMT(BPF_LD | BPF_W | BPF_ABS, OFF_NR);
    /* x32 syscalls carry bit 30: never allowed. */
    for (i = 0; i < n_nrs; i++)
        f[k] = JEQ(nrs[i], (uint8_t)(allow - k - 1), 0), k++;
    /* self_nr (tgkill) only towards our own threads: arg0 == our pid. */
    f[k++] = JEQ(self_nr, 0, 3);
    f[k++] = STMT(BPF_LD | BPF_W | BPF_ABS, OFF_ARG0_LO);
    f[k] = JEQ(self_pid, (uint8_t)(allow - k - 1), 0), k++;
    f[k++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
    f[k++] = JEQ(ioctl_nr, 1, 0);                         /* -> ioctl checks */
    f[k++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
    /* ioctl: the request's high half must be 0, the low half listed. */
    f[k++] = STMT(BPF_LD | BPF_W | BPF_ABS, OFF_ARG1_HI);
    f[k++] = JEQ(0, 1, 0);
    f[k++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
    f[k++] = STMT(BPF_LD | BPF_W | BPF_ABS, OFF_ARG1_LO);
    for (i = 0; i < n_ioctls; i++)
        f[k] = JEQ(ioctls[i], (uint8_t)(allow - k - 1), 0), k++;
    f[k++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
    f[k++] = STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    if (k != max) {
        free(f);
        return EINVAL;
    }
    prog.len = (unsigned short)k;
    prog.filter = f;
    rc = 0;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
        syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC,
                &prog) != 0)
        rc = errno ? errno : EINVAL;
    free(f);
    return rc;
}
#endif
