/*
 * The vCPU run loop and the native twins of the hot hypercalls.
 *
 * Policy lives in Python (tender/vm.py, tender/hypercalls/). This file only
 * runs KVM_RUN, serves the hypercalls Python marked native in native_mask,
 * and returns every other exit to Python as a struct vl_exit. The native
 * handlers implement the semantics of the Python reference handlers in
 * tender/hypercalls/ (results, EINVAL/AGAIN cases, fatal errors); the test suite
 * runs both so they cannot drift apart.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <linux/kvm.h>

#include "hvt_ring.h"
#include "vl_stats.h"
#include "vcpu_loop.h"

/* Bump a live counter of the vCPU thread (see vl_stats.h). */
#define TALLY(v, field, n)                                                    \
    do {                                                                      \
        if ((v)->stats != NULL)                                               \
            (v)->stats->vcpu.field += (n);                                    \
    } while (0)

#define PIO_BASE 0x500
#define NR_WALLTIME 1
#define NR_PUTS 2
#define NR_POLL 3
#define NR_BLOCK_WRITE 4
#define NR_BLOCK_READ 5
#define NR_NET_WRITE 6
#define NR_NET_READ 7

#define R_OK_ 0
#define R_AGAIN 1
#define R_EINVAL 2
#define R_EUNSPEC 3

/* Argument structs: fixed little-endian layouts from the hvt ABI. */
struct a_walltime { uint64_t nsecs; };
struct a_puts { uint64_t data, len; };
struct a_poll { uint64_t timeout_nsecs, ready_set; int32_t ret, pad; };
struct a_block { uint64_t handle, offset, data, len; int32_t ret, pad; };
struct a_net { uint64_t handle, data, len; int32_t ret, pad; };

/* Overflow-safe: gpa < M, gpa + sz does not wrap, gpa + sz < M (strict). */
int vl_check(const struct vl_vcpu *v, uint64_t gpa, uint64_t sz)
{
    uint64_t end;
    if (gpa >= v->mem_size)
        return 0;
    if (__builtin_add_overflow(gpa, sz, &end))
        return 0;
    return end < v->mem_size;
}

/* A host write on the guest's behalf must also stay out of the tender's own
 * structures below write_floor and out of read-only (text/rodata) segments:
 * those pages are mprotect-ed read-only on the host, so a write would crash
 * the tender instead of failing the guest. */
int vl_check_write(const struct vl_vcpu *v, uint64_t gpa, uint64_t sz)
{
    uint32_t i;
    if (!vl_check(v, gpa, sz) || gpa < v->write_floor)
        return 0;
    for (i = 0; i < v->n_ro; i++)
        if (gpa < v->ro[2 * i + 1] && gpa + sz > v->ro[2 * i])
            return 0;
    return 1;
}

static int fatal(struct vl_exit *e, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fatal(struct vl_exit *e, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    e->reason = VL_FATAL;
    e->err = err;
    return -1;
}

static int bad_access(struct vl_exit *e, uint64_t gpa, uint64_t sz)
{
    return fatal(e, 0, "Invalid guest access: gpa=0x%lx, sz=%lu",
                 (unsigned long)gpa, (unsigned long)sz);
}

static const struct vl_device *device(const struct vl_vcpu *v, uint64_t h,
                                      int kind)
{
    if (h >= v->n_devices || h >= VL_MAX_DEVICES)
        return NULL;
    if (v->devices[h].kind != kind)
        return NULL;
    return &v->devices[h];
}

/*
 * Each handler copies the argument struct out of guest memory once and works
 * on the copy: guest memory can change under us (the ring I/O thread writes
 * into buffers the guest chose), so a field must never be checked in guest
 * memory and then read from there again. Results are stored back field by
 * field into the (checked, writable) struct.
 */
#define ARGS(a, gpa) memcpy(&(a), v->mem + (gpa), sizeof(a))
#define STORE(gpa, type, field, value)                                        \
    do {                                                                      \
        __typeof__(((type *)0)->field) val_ = (value);                        \
        memcpy(v->mem + (gpa) + offsetof(type, field), &val_, sizeof val_);   \
    } while (0)

static int hc_walltime(struct vl_vcpu *v, uint64_t gpa, struct vl_exit *e)
{
    struct timespec ts;

    if (!vl_check_write(v, gpa, sizeof(struct a_walltime)))
        return bad_access(e, gpa, sizeof(struct a_walltime));
    clock_gettime(CLOCK_REALTIME, &ts);
    STORE(gpa, struct a_walltime, nsecs,
          (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec);
    return 0;
}

static int hc_puts(struct vl_vcpu *v, uint64_t gpa, struct vl_exit *e)
{
    struct a_puts a;
    ssize_t n;

    if (!vl_check(v, gpa, sizeof a))
        return bad_access(e, gpa, sizeof a);
    ARGS(a, gpa);
    if (!vl_check(v, a.data, a.len))
        return bad_access(e, a.data, a.len);
    /* One write, short writes ignored, as upstream. */
    do
        n = write(v->console_fd, v->mem + a.data, a.len);
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno != EAGAIN)
        return fatal(e, errno, "Fatal error writing to console: %s",
                     strerror(errno));
    return 0;
}

static int hc_poll(struct vl_vcpu *v, uint64_t gpa, struct vl_exit *e)
{
    struct pollfd fds[VL_MAX_DEVICES];
    uint32_t handles[VL_MAX_DEVICES];
    struct a_poll a;
    struct timespec ts;
    uint64_t ready = 0;
    int nfds = 0, n, i, nready = 0;
    uint32_t h;

    if (!vl_check_write(v, gpa, sizeof a))
        return bad_access(e, gpa, sizeof a);
    ARGS(a, gpa);
    for (h = 0; h < v->n_devices && h < VL_MAX_DEVICES; h++) {
        if (v->devices[h].kind != VL_DEV_NET)
            continue;
        fds[nfds].fd = v->devices[h].fd;
        fds[nfds].events = POLLIN;
        fds[nfds].revents = 0;
        handles[nfds++] = h;
    }
    ts.tv_sec = (time_t)(a.timeout_nsecs / 1000000000ULL);
    ts.tv_nsec = (long)(a.timeout_nsecs % 1000000000ULL);
    n = ppoll(fds, (nfds_t)nfds, &ts, NULL);
    if (n < 0) {
        /* A signal: report nothing ready; Python decides whether to stop. */
        STORE(gpa, struct a_poll, ready_set, 0);
        STORE(gpa, struct a_poll, ret, 0);
        if (errno == EINTR) {
            e->reason = VL_EINTR;
            return -1;
        }
        return fatal(e, errno, "Fatal error in poll: %s", strerror(errno));
    }
    for (i = 0; i < nfds; i++) {
        if (fds[i].revents & (POLLIN | POLLERR | POLLHUP)) {
            ready |= 1ULL << handles[i];
            nready++;
        }
    }
    STORE(gpa, struct a_poll, ready_set, ready);
    STORE(gpa, struct a_poll, ret, nready);
    return 0;
}

static int hc_block(struct vl_vcpu *v, uint64_t gpa, int is_write,
                    struct vl_exit *e)
{
    const struct vl_device *d;
    struct a_block a;
    uint64_t end, off;
    ssize_t n;
    int ok;

    if (!vl_check_write(v, gpa, sizeof a))
        return bad_access(e, gpa, sizeof a);
    ARGS(a, gpa);
    d = device(v, a.handle, VL_DEV_BLOCK);
    /* Whole sectors only, one or many per request (beyond upstream, which
     * leaves alignment to the guest bindings). */
    if (d == NULL || a.len > SSIZE_MAX || a.offset >= d->capacity ||
        __builtin_add_overflow(a.offset, a.len, &end) || end > d->capacity ||
        a.offset % d->block_size != 0 || a.len % d->block_size != 0) {
        if (d == NULL)
            TALLY(v, bad_handle, 1);
        else if (is_write)
            TALLY(v, dev[a.handle].wr_errors, 1);
        else
            TALLY(v, dev[a.handle].rd_errors, 1);
        STORE(gpa, struct a_block, ret, R_EINVAL);
        return 0;
    }
    ok = is_write ? vl_check(v, a.data, a.len) : vl_check_write(v, a.data, a.len);
    if (!ok)
        return bad_access(e, a.data, a.len);
    for (off = 0; off < a.len; off += (uint64_t)n) {
        if (is_write)
            n = pwrite(d->fd, v->mem + a.data + off, a.len - off,
                       (off_t)(a.offset + off));
        else
            n = pread(d->fd, v->mem + a.data + off, a.len - off,
                      (off_t)(a.offset + off));
        if (n < 0 && errno == EINTR) {
            n = 0;
            continue;
        }
        /* The backing store failed (ENOSPC, EIO, a file shrunk under us):
         * the guest's request failed, not the tender (beyond upstream,
         * which exits). A write is never acknowledged unless all of it
         * reached the file. */
        if (n <= 0) {
            if (is_write)
                TALLY(v, dev[a.handle].wr_errors, 1);
            else
                TALLY(v, dev[a.handle].rd_errors, 1);
            STORE(gpa, struct a_block, ret, R_EUNSPEC);
            return 0;
        }
    }
    if (is_write) {
        TALLY(v, dev[a.handle].wr_ops, 1);
        TALLY(v, dev[a.handle].wr_bytes, a.len);
    } else {
        TALLY(v, dev[a.handle].rd_ops, 1);
        TALLY(v, dev[a.handle].rd_bytes, a.len);
    }
    STORE(gpa, struct a_block, ret, R_OK_);
    return 0;
}

/* Common prologue of NET_WRITE / NET_READ: returns 1 to go on with *a and
 * *d, 0 when answered already (EINVAL for a bad handle), -1 when fatal. */
static int net_args(struct vl_vcpu *v, uint64_t gpa, struct vl_exit *e,
                    struct a_net *a, const struct vl_device **d)
{
    if (!vl_check_write(v, gpa, sizeof *a))
        return bad_access(e, gpa, sizeof *a);
    ARGS(*a, gpa);
    *d = device(v, a->handle, VL_DEV_NET);
    if (*d == NULL) {
        TALLY(v, bad_handle, 1);
        STORE(gpa, struct a_net, ret, R_EINVAL);
        return 0;
    }
    return 1;
}

static int hc_net_write(struct vl_vcpu *v, uint64_t gpa, struct vl_exit *e)
{
    const struct vl_device *d;
    struct a_net a;
    ssize_t n;
    int go = net_args(v, gpa, e, &a, &d);

    if (go <= 0)
        return go;
    if (!vl_check(v, a.data, a.len))
        return bad_access(e, a.data, a.len);
    do
        n = write(d->fd, v->mem + a.data, a.len);
    while (n < 0 && errno == EINTR);
    /* A full socket (FramePipe) queue drops the frame, as a full tap does. */
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        TALLY(v, dev[a.handle].drops, 1);
        n = (ssize_t)a.len;
    } else if (n >= 0) {
        TALLY(v, dev[a.handle].wr_ops, 1);
        TALLY(v, dev[a.handle].wr_bytes, (uint64_t)n);
    }
    if (n < 0 || (uint64_t)n != a.len)
        TALLY(v, dev[a.handle].wr_errors, 1);
    if (n < 0)
        return fatal(e, errno, "Fatal error when writing: %s", strerror(errno));
    if ((uint64_t)n != a.len)
        return fatal(e, 0, "Fatal error: wrote only %ld out of %lu bytes",
                     (long)n, (unsigned long)a.len);
    STORE(gpa, struct a_net, ret, R_OK_);
    return 0;
}

static int hc_net_read(struct vl_vcpu *v, uint64_t gpa, struct vl_exit *e)
{
    const struct vl_device *d;
    struct a_net a;
    ssize_t n;
    int go = net_args(v, gpa, e, &a, &d);

    if (go <= 0)
        return go;
    if (!vl_check_write(v, a.data, a.len))
        return bad_access(e, a.data, a.len);
    do
        n = read(d->fd, v->mem + a.data, a.len);
    while (n < 0 && errno == EINTR);
    if (n == 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))) {
        TALLY(v, dev[a.handle].rx_empty, 1);
        STORE(gpa, struct a_net, ret, R_AGAIN);
        return 0;
    }
    if (n < 0) {
        TALLY(v, dev[a.handle].rd_errors, 1);
        return fatal(e, errno, "Fatal error when reading: %s", strerror(errno));
    }
    TALLY(v, dev[a.handle].rd_ops, 1);
    TALLY(v, dev[a.handle].rd_bytes, (uint64_t)n);
    STORE(gpa, struct a_net, len, (uint64_t)n);
    STORE(gpa, struct a_net, ret, R_OK_);
    return 0;
}

static int serve(struct vl_vcpu *v, uint32_t nr, uint64_t gpa,
                 struct vl_exit *e)
{
    switch (nr) {
    case NR_WALLTIME: return hc_walltime(v, gpa, e);
    case NR_PUTS: return hc_puts(v, gpa, e);
    case NR_POLL: return hc_poll(v, gpa, e);
    case NR_BLOCK_WRITE: return hc_block(v, gpa, 1, e);
    case NR_BLOCK_READ: return hc_block(v, gpa, 0, e);
    case NR_NET_WRITE: return hc_net_write(v, gpa, e);
    case NR_NET_READ: return hc_net_read(v, gpa, e);
    default: return fatal(e, 0, "Invalid guest hypercall: num=%u", nr);
    }
}

int vl_run(struct vl_vcpu *v, struct vl_exit *e)
{
    struct kvm_run *run = v->run;

    for (;;) {
        memset(e, 0, sizeof *e);
        if (vl_ring_failed(v->ring, e->msg, sizeof e->msg)) {
            e->reason = VL_FATAL;   /* the I/O thread stopped: end the run */
            return 0;
        }
        if (ioctl(v->vcpufd, KVM_RUN, 0) < 0) {
            if (errno == EINTR) {
                TALLY(v, interrupted, 1);
                run->immediate_exit = 0;
                e->reason = VL_EINTR;
                return 0;
            }
            e->reason = VL_ERRNO;
            e->err = errno;
            e->kvm_reason = run->exit_reason;
            return 0;
        }
        v->exits++;
        TALLY(v, exits[run->exit_reason < VL_EXIT_KINDS ? run->exit_reason
                                                         : VL_EXIT_KINDS - 1], 1);
        e->kvm_reason = run->exit_reason;
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
            nr = (uint32_t)run->io.port - PIO_BASE;
            if (run->io.direction == KVM_EXIT_IO_OUT && run->io.size == 4 &&
                run->io.port >= PIO_BASE && nr < VL_NR_MAX &&
                (v->native_mask & (1u << nr))) {
                v->counts[nr]++;
                TALLY(v, hypercalls[nr], 1);
                if (serve(v, nr, gpa, e) < 0)
                    return 0;
                continue;
            }
            e->reason = VL_IO;
            return 0;
        }
        case KVM_EXIT_MMIO:
            e->mmio_addr = run->mmio.phys_addr;
            e->mmio_len = run->mmio.len;
            e->mmio_is_write = run->mmio.is_write;
            break;
        case KVM_EXIT_FAIL_ENTRY:
            e->fail_reason = run->fail_entry.hardware_entry_failure_reason;
            break;
        case KVM_EXIT_INTERNAL_ERROR:
            e->suberror = run->internal.suberror;
            break;
        case KVM_EXIT_X86_RDMSR:
        case KVM_EXIT_X86_WRMSR:
            /* Only the MSR filter sends these (tender/kvm/msr.py): refuse,
             * so KVM injects #GP on re-entry, as for an unknown MSR. */
            run->msr.error = 1;
            v->msr_denied++;
            if (!v->report_msr)
                continue;
            e->msr_index = run->msr.index;
            e->msr_data = run->msr.data;
            break;
        default:
            break;
        }
        e->reason = VL_EXIT;
        return 0;
    }
}

/*
 * Signals. Python's handler only sets a flag, so a SIGTERM that lands just
 * before KVM_RUN would go unnoticed while a guest spins. This handler sets
 * kvm_run.immediate_exit (KVM_RUN then returns EINTR at once) and chains to
 * the handler installed before it (Python's, for SIGINT/SIGTERM). The run
 * area is per thread, so one process can run several guests, each in its
 * own thread, and a signal sent to one thread stops only that guest.
 */
static __thread struct kvm_run *kick_run;
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
