/*
 * The native twins of the hot hypercalls, backend-neutral: they see guest
 * memory, the device fds and struct vl_exit, never a hypervisor. A backend's
 * run loop (csrc/vcpu_loop.c today) hands each hypercall Python marked
 * native in native_mask to vl_serve. The twins implement the semantics of
 * the Python reference handlers in tender/hypercalls/ (results, EINVAL/AGAIN
 * cases, fatal errors); the test suite runs both so they cannot drift apart.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hvt_abi.h"
#include "vl_stats.h"
#include "vcpu_loop.h"
#include "hypercalls.h"

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

static int twin_walltime(struct vl_vcpu *v, uint64_t gpa, struct vl_exit *e)
{
    struct timespec ts;

    if (!vl_check_write(v, gpa, sizeof(struct hc_walltime)))
        return bad_access(e, gpa, sizeof(struct hc_walltime));
    clock_gettime(CLOCK_REALTIME, &ts);
    STORE(gpa, struct hc_walltime, nsecs,
          (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec);
    return 0;
}

static int twin_puts(struct vl_vcpu *v, uint64_t gpa, struct vl_exit *e)
{
    struct hc_puts a;
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

static int twin_poll(struct vl_vcpu *v, uint64_t gpa, struct vl_exit *e)
{
    struct pollfd fds[VL_MAX_DEVICES];
    uint32_t handles[VL_MAX_DEVICES];
    struct hc_poll a;
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
        STORE(gpa, struct hc_poll, ready_set, 0);
        STORE(gpa, struct hc_poll, ret, 0);
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
    STORE(gpa, struct hc_poll, ready_set, ready);
    STORE(gpa, struct hc_poll, ret, nready);
    return 0;
}

static int twin_block(struct vl_vcpu *v, uint64_t gpa, int is_write,
                    struct vl_exit *e)
{
    const struct vl_device *d;
    struct hc_block a;
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
            VL_TALLY(v, bad_handle, 1);
        else if (is_write)
            VL_TALLY(v, dev[a.handle].wr_errors, 1);
        else
            VL_TALLY(v, dev[a.handle].rd_errors, 1);
        STORE(gpa, struct hc_block, ret, RES_EINVAL);
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
                VL_TALLY(v, dev[a.handle].wr_errors, 1);
            else
                VL_TALLY(v, dev[a.handle].rd_errors, 1);
            STORE(gpa, struct hc_block, ret, RES_EUNSPEC);
            return 0;
        }
    }
    if (is_write) {
        VL_TALLY(v, dev[a.handle].wr_ops, 1);
        VL_TALLY(v, dev[a.handle].wr_bytes, a.len);
    } else {
        VL_TALLY(v, dev[a.handle].rd_ops, 1);
        VL_TALLY(v, dev[a.handle].rd_bytes, a.len);
    }
    STORE(gpa, struct hc_block, ret, RES_OK);
    return 0;
}

/* Common prologue of NET_WRITE / NET_READ: returns 1 to go on with *a and
 * *d, 0 when answered already (EINVAL for a bad handle), -1 when fatal.
 * The frame buffer must be writable for a read (TO_GUEST). */
static int net_args(struct vl_vcpu *v, uint64_t gpa, struct vl_exit *e,
                    struct hc_net *a, const struct vl_device **d, int to_guest)
{
    int ok;

    if (!vl_check_write(v, gpa, sizeof *a))
        return bad_access(e, gpa, sizeof *a);
    ARGS(*a, gpa);
    *d = device(v, a->handle, VL_DEV_NET);
    if (*d == NULL) {
        VL_TALLY(v, bad_handle, 1);
        STORE(gpa, struct hc_net, ret, RES_EINVAL);
        return 0;
    }
    ok = to_guest ? vl_check_write(v, a->data, a->len) : vl_check(v, a->data, a->len);
    if (!ok)
        return bad_access(e, a->data, a->len);
    return 1;
}

static int twin_net_write(struct vl_vcpu *v, uint64_t gpa, struct vl_exit *e)
{
    const struct vl_device *d;
    struct hc_net a;
    ssize_t n;
    int go = net_args(v, gpa, e, &a, &d, 0);

    if (go <= 0)
        return go;
    do
        n = write(d->fd, v->mem + a.data, a.len);
    while (n < 0 && errno == EINTR);
    /* A full socket (FramePipe) queue drops the frame, as a full tap does. */
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        VL_TALLY(v, dev[a.handle].drops, 1);
        n = (ssize_t)a.len;
    } else if (n >= 0) {
        VL_TALLY(v, dev[a.handle].wr_ops, 1);
        VL_TALLY(v, dev[a.handle].wr_bytes, (uint64_t)n);
    }
    if (n < 0 || (uint64_t)n != a.len)
        VL_TALLY(v, dev[a.handle].wr_errors, 1);
    if (n < 0)
        return fatal(e, errno, "Fatal error when writing: %s", strerror(errno));
    if ((uint64_t)n != a.len)
        return fatal(e, 0, "Fatal error: wrote only %ld out of %lu bytes",
                     (long)n, (unsigned long)a.len);
    STORE(gpa, struct hc_net, ret, RES_OK);
    return 0;
}

static int twin_net_read(struct vl_vcpu *v, uint64_t gpa, struct vl_exit *e)
{
    const struct vl_device *d;
    struct hc_net a;
    ssize_t n;
    int go = net_args(v, gpa, e, &a, &d, 1);

    if (go <= 0)
        return go;
    do
        n = read(d->fd, v->mem + a.data, a.len);
    while (n < 0 && errno == EINTR);
    if (n == 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))) {
        VL_TALLY(v, dev[a.handle].rx_empty, 1);
        STORE(gpa, struct hc_net, ret, RES_AGAIN);
        return 0;
    }
    if (n < 0) {
        VL_TALLY(v, dev[a.handle].rd_errors, 1);
        return fatal(e, errno, "Fatal error when reading: %s", strerror(errno));
    }
    VL_TALLY(v, dev[a.handle].rd_ops, 1);
    VL_TALLY(v, dev[a.handle].rd_bytes, (uint64_t)n);
    STORE(gpa, struct hc_net, len, (uint64_t)n);
    STORE(gpa, struct hc_net, ret, RES_OK);
    return 0;
}

int vl_serve(struct vl_vcpu *v, uint32_t nr, uint64_t gpa, struct vl_exit *e)
{
    switch (nr) {
    case HC_WALLTIME: return twin_walltime(v, gpa, e);
    case HC_PUTS: return twin_puts(v, gpa, e);
    case HC_POLL: return twin_poll(v, gpa, e);
    case HC_BLOCK_WRITE: return twin_block(v, gpa, 1, e);
    case HC_BLOCK_READ: return twin_block(v, gpa, 0, e);
    case HC_NET_WRITE: return twin_net_write(v, gpa, e);
    case HC_NET_READ: return twin_net_read(v, gpa, e);
    default: return fatal(e, 0, "Invalid guest hypercall: num=%u", nr);
    }
}
