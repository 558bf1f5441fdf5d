/*
 * The KVM half of the C side: the vCPU run loop and its signal kick.
 *
 * Policy lives in Python (tender/vm.py, tender/hypercalls/). This file only
 * runs KVM_RUN, hands the hypercalls Python marked native in native_mask to
 * the backend-neutral twins (csrc/hypercalls.c), and returns every other
 * exit to Python as a struct vl_exit.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#ifdef __linux__
#include <linux/kvm.h>
#endif

#include "hvt_abi.h"
#include "hvt_ring.h"
#include "vl_stats.h"
#include "vcpu_loop.h"
#include "vl_kvm.h"
#include "hypercalls.h"

#ifndef __linux__
/* No KVM on this host (FreeBSD: bhyve's loop is Python's, tender/bhyve/vm.py);
 * the rest of this file (the signal kick, mprotect) still builds. */
int vl_run(struct vl_vcpu *v, struct vl_exit *e)
{
    (void)v;
    memset(e, 0, sizeof *e);
    e->reason = VL_ERRNO;
    e->err = ENOSYS;
    return 0;
}

void vl_backend_stop(struct vl_backend *b)
{
    (void)b;
}
#else
/* The ring thread's stop (hypercalls.h): KVM_RUN returns EINTR at once. */
void vl_backend_stop(struct vl_backend *b)
{
    if (b->run != NULL)
        ((struct kvm_run *)b->run)->immediate_exit = 1;
}

int vl_run(struct vl_vcpu *v, struct vl_exit *e)
{
    struct kvm_run *run = v->backend->run;
    struct vl_kvm_exit *x = &v->backend->exit;

    for (;;) {
        memset(e, 0, sizeof *e);
        memset(x, 0, sizeof *x);
        if (vl_ring_failed(v->ring, e->msg, sizeof e->msg)) {
            e->reason = VL_FATAL;   /* the I/O thread stopped: end the run */
            return 0;
        }
        if (ioctl(v->backend->vcpufd, KVM_RUN, 0) < 0) {
            if (errno == EINTR) {
                VL_TALLY(v, interrupted, 1);
                run->immediate_exit = 0;
                e->reason = VL_EINTR;
                return 0;
            }
            e->reason = VL_ERRNO;
            e->err = errno;
            x->reason = run->exit_reason;
            return 0;
        }
        VL_TALLY(v, exits[run->exit_reason < VL_EXIT_KINDS ? run->exit_reason
                                                         : VL_EXIT_KINDS - 1], 1);
        x->reason = run->exit_reason;
        switch (run->exit_reason) {
        case KVM_EXIT_IO: {
            uint32_t nr, gpa = 0;
            e->port = run->io.port;
            e->size = run->io.size;
            e->direction = run->io.direction;
            if (run->io.size == 4)
                memcpy(&gpa, (uint8_t *)run + run->io.data_offset, 4);
            e->data = gpa;
            if (run->io.port == RING_KICK_PORT && run->io.size == 4 &&
                run->io.direction == KVM_EXIT_IO_OUT && vl_ring_inline(v->ring)) {
                vl_ring_kick(v->ring);  /* a failure is reported at the top */
                continue;
            }
            nr = (uint32_t)run->io.port - HC_PIO_BASE;
            if (run->io.direction == KVM_EXIT_IO_OUT && run->io.size == 4 &&
                run->io.port >= HC_PIO_BASE && nr < VL_NR_MAX &&
                (v->native_mask & (1u << nr))) {
                v->counts[nr]++;    /* the one count; Python reads it as the stats' too */
                if (vl_serve(v, nr, gpa, e) < 0)
                    return 0;
                continue;
            }
            e->reason = VL_IO;
            return 0;
        }
        case KVM_EXIT_MMIO:
            x->mmio_addr = run->mmio.phys_addr;
            x->mmio_len = run->mmio.len;
            x->mmio_is_write = run->mmio.is_write;
            break;
        case KVM_EXIT_FAIL_ENTRY:
            x->fail_reason = run->fail_entry.hardware_entry_failure_reason;
            break;
        case KVM_EXIT_INTERNAL_ERROR:
            x->suberror = run->internal.suberror;
            break;
        case KVM_EXIT_X86_RDMSR:
        case KVM_EXIT_X86_WRMSR:
            /* Only the MSR filter sends these (tender/kvm/msr.py): refuse,
             * so KVM injects #GP on re-entry, as for an unknown MSR. */
            run->msr.error = 1;
            v->msr_denied++;
            if (!v->report_msr)
                continue;
            x->msr_index = run->msr.index;
            x->msr_data = run->msr.data;
            break;
        default:
            break;
        }
        e->reason = VL_EXIT;
        return 0;
    }
}
#endif

/*
 * Signals. Python's handler only sets a flag, so a SIGTERM that lands just
 * before KVM_RUN would go unnoticed while a guest spins. This handler sets
 * kvm_run.immediate_exit (KVM_RUN then returns EINTR at once) and chains to
 * the handler installed before it (Python's, for SIGINT/SIGTERM). The run
 * area is per thread, so one process can run several guests, each in its
 * own thread, and a signal sent to one thread stops only that guest.
 */
#ifdef __linux__
static __thread struct kvm_run *kick_run;
#else
static __thread struct { int immediate_exit; } *kick_run;   /* never set: no run page */
#endif
static struct sigaction kick_prev[65];
static pthread_mutex_t kick_lock = PTHREAD_MUTEX_INITIALIZER;

static void kick(int sig, siginfo_t *info, void *uctx)
{
    const struct sigaction *prev;

    if (kick_run != NULL)
        kick_run->immediate_exit = 1;
    if (sig <= 0 || sig >= 65)
        return;
    /* A previous SIG_DFL / SIG_IGN is not chained: the signal is then ours
     * alone (SIGUSR2 for Tender.stop and gdb's Ctrl-C). */
    prev = &kick_prev[sig];
    if (prev->sa_flags & SA_SIGINFO)
        prev->sa_sigaction(sig, info, uctx);
    else if (prev->sa_handler != SIG_DFL && prev->sa_handler != SIG_IGN)
        prev->sa_handler(sig);
}

int vl_install_kick(void *run, int signum)
{
    struct sigaction sa, cur;
    int rc = 0;

    if (signum <= 0 || signum >= 65)
        return -1;
    kick_run = run;
    /* Installed once per signal; kick_prev is written only then, under the
     * lock, and before the handler can run. */
    pthread_mutex_lock(&kick_lock);
    if (sigaction(signum, NULL, &cur) == 0 &&
        !((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == kick)) {
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = kick;
        sa.sa_flags = SA_SIGINFO;
        sigemptyset(&sa.sa_mask);
        kick_prev[signum] = cur;
        rc = sigaction(signum, &sa, NULL);
    }
    pthread_mutex_unlock(&kick_lock);
    return rc;
}

/* The run area is going away: signals to this thread must not touch it. */
void vl_clear_kick(void)
{
    kick_run = NULL;
}

int vl_mprotect(void *addr, size_t len, int prot)
{
    return mprotect(addr, len, prot) < 0 ? errno : 0;
}
