/*
 * Ring I/O (HVT_FEATURE_RING_IO, HVT_SPEC.md 5): the host I/O thread.
 *
 * The guest posts NET_WRITE / NET_READ entries into a ring at GPA M and
 * kicks port 0x600 (an ioeventfd, so no VM exit) when the thread asked for
 * it. The thread serves the entries against the tap fds. Writes are
 * fire-and-forget; each read produces one commit.
 *
 * Everything the guest can write is untrusted: entries are copied before
 * use, every buffer goes through vl_check / vl_check_write, and the
 * host-owned indices (ent_head, com_tail) are kept privately and only
 * published into the ring, never read back from it.
 *
 * A fatal error (tap write failure, invalid guest address, bad indices)
 * stops the thread and is handed to the vCPU thread, which reports it like
 * any other fatal tender error (one line, status 1). The process is never
 * ended from here: a library may run other guests in it.
 *
 * Inline mode (no eventfd, no thread): needs_kick stays 1, so the guest
 * kicks after every submission; the kick is an ordinary IO exit and the
 * vCPU thread serves the ring itself (vl_ring_kick) before re-entering the
 * guest. Where the I/O thread would have to share a CPU with the vCPU
 * thread, its wake-ups cost more than the exits it saves.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hvt_abi.h"
#include "hvt_ring.h"
#include "vl_stats.h"
#include "vcpu_loop.h"
#include "hypercalls.h"

/* Bump a live counter of the ring thread (see vl_stats.h). */
#define TALLY(q, field, n)                                                    \
    do {                                                                      \
        if ((q)->v.stats != NULL)                                             \
            (q)->v.stats->ring.field += (n);                                  \
    } while (0)

#define RING_POLL_ITERS 4096

struct vl_ring {
    struct vl_vcpu v;           /* private copy: bounds, read-only ranges, devices */
    volatile struct hvt_ring *r;
    int efd;
    int wake_fd;                /* written at stop: efd, or a kick pipe's write end */
    pthread_t thread;
    int stop;                   /* atomic */
    int ready;                  /* 0 starting, 1 running; under lock */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    uint32_t ent_head, com_tail;   /* host-owned indices, authoritative here */
    pthread_t vcpu_thread;      /* kicked when the ring fails */
    int kick_signal;
    jmp_buf bail;               /* fail() returns to the top of the thread */
    int failed;                 /* atomic; fail_msg is set before it */
    char fail_msg[256];
    uint64_t writes, reads, kicks;
};

/* A fatal error: record it, stop serving the ring, and make the vCPU thread
 * leave the guest so that vl_run reports it (VL_FATAL) and Python ends the run
 * the usual way, block devices synced, exit status 1. Nothing is held here
 * (no lock, no allocation), so jumping back to the thread's top is safe. */
static void die(struct vl_ring *q, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 2, 3)));

static void die(struct vl_ring *q, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(q->fail_msg, sizeof q->fail_msg, fmt, ap);
    va_end(ap);
    __atomic_store_n(&q->failed, 1, __ATOMIC_RELEASE);
    /* Once stopping, the vCPU thread has left the guest (and may have dropped
     * its kick handler): vl_ring_stop reports the failure after the join. */
    if (q->efd >= 0 && !__atomic_load_n(&q->stop, __ATOMIC_ACQUIRE)) {
        if (q->v.backend != NULL)
            vl_backend_stop(q->v.backend);
        pthread_kill(q->vcpu_thread, q->kick_signal);
    }
    longjmp(q->bail, 1);        /* inline: back into vl_ring_kick / vl_ring_stop */
}

int vl_ring_failed(struct vl_ring *q, char *msg, size_t msglen)
{
    if (q == NULL || !__atomic_load_n(&q->failed, __ATOMIC_ACQUIRE))
        return 0;
    snprintf(msg, msglen, "%s", q->fail_msg);
    return 1;
}

static int net_fd(const struct vl_ring *q, uint32_t h)
{
    if (h >= q->v.n_devices || h >= VL_MAX_DEVICES ||
        q->v.devices[h].kind != VL_DEV_NET)
        return -1;
    return q->v.devices[h].fd;
}

static void publish_ent_head(struct vl_ring *q)
{
    __atomic_store_n(&q->r->ent_head, q->ent_head, __ATOMIC_RELEASE);
}

static void do_write(struct vl_ring *q, const struct ring_entry *e)
{
    int fd = net_fd(q, e->handle);
    ssize_t n;

    if (fd < 0) {
        TALLY(q, bad_handle, 1);
        return;                 /* invalid handle: skipped silently */
    }
    if (!vl_check(&q->v, e->data, e->len))
        die(q, "Invalid guest access: gpa=0x%lx, sz=%u",
            (unsigned long)e->data, e->len);
    do
        n = write(fd, q->v.mem + e->data, e->len);
    while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        TALLY(q, dev[e->handle].drops, 1);
        n = (ssize_t)e->len;    /* full FramePipe queue: dropped, as a tap does */
    } else if (n >= 0) {
        TALLY(q, dev[e->handle].wr_ops, 1);
        TALLY(q, dev[e->handle].wr_bytes, (uint64_t)n);
    }
    if (n < 0 || (uint64_t)n != e->len)
        TALLY(q, dev[e->handle].wr_errors, 1);
    if (n < 0)
        die(q, "Fatal write error on net device: %s", strerror(errno));
    if ((uint64_t)n != e->len)
        die(q, "Fatal error: wrote only %zd out of %u bytes", n, e->len);
    q->writes++;
}

static void do_read(struct vl_ring *q, const struct ring_entry *e)
{
    volatile struct ring_commit *c = &q->r->commits[q->com_tail & RING_MASK];
    int fd = net_fd(q, e->handle);
    int32_t ret = RES_EINVAL;
    uint32_t len = 0;
    ssize_t n;

    if (fd < 0) {
        TALLY(q, bad_handle, 1);
    } else {
        if (!vl_check_write(&q->v, e->data, e->len))
            die(q, "Invalid guest access: gpa=0x%lx, sz=%u",
                (unsigned long)e->data, e->len);
        do
            n = read(fd, q->v.mem + e->data, e->len);
        while (n < 0 && errno == EINTR);
        if (n > 0) {
            ret = RES_OK;
            len = (uint32_t)n;
            TALLY(q, dev[e->handle].rd_ops, 1);
            TALLY(q, dev[e->handle].rd_bytes, (uint64_t)n);
        } else if (n == 0 || errno == EAGAIN || errno == EWOULDBLOCK) {
            ret = RES_AGAIN;
            TALLY(q, dev[e->handle].rx_empty, 1);
        } else {
            TALLY(q, dev[e->handle].rd_errors, 1);
        }
        /* other errors: EINVAL, 0 (the ring reports, the hypercall dies) */
    }
    c->id = e->id;
    c->ret = ret;
    c->len = len;
    c->reserved = 0;
    q->com_tail++;
    q->ent_head++;
    q->reads++;
    /* The commit body must be visible before the guest sees com_tail move. */
    __atomic_store_n(&q->r->com_tail, q->com_tail, __ATOMIC_RELEASE);
    publish_ent_head(q);
}

/* Serve everything posted up to a snapshot of ent_tail. */
static void process(struct vl_ring *q, uint32_t tail)
{
    uint32_t batch = 0;

    if (tail - q->ent_head > RING_SIZE)
        die(q, "Invalid guest ring state: ent_head=%u ent_tail=%u",
            q->ent_head, tail);
    while (q->ent_head + batch != tail) {
        struct ring_entry e;
        /* One copy: the guest may rewrite the slot while we look at it. */
        memcpy(&e, (const void *)&q->r->entries[(q->ent_head + batch) & RING_MASK],
               sizeof e);
        if (e.operation == OP_NET_READ) {
            if (batch) {
                q->ent_head += batch;
                publish_ent_head(q);
                batch = 0;
            }
            do_read(q, &e);
            continue;
        }
        if (e.operation == OP_NET_WRITE)
            do_write(q, &e);
        batch++;                /* writes and unknown ops: consumed, no commit */
    }
    if (batch) {
        q->ent_head += batch;
        publish_ent_head(q);
    }
}

static uint32_t guest_tail(const struct vl_ring *q)
{
    return __atomic_load_n(&q->r->ent_tail, __ATOMIC_ACQUIRE);
}

static void *io_thread(void *arg)
{
    struct vl_ring *q = arg;
    uint64_t val;
    uint32_t tail;
    int i;

    pthread_mutex_lock(&q->lock);
    q->ready = 1;
    pthread_cond_signal(&q->cond);
    pthread_mutex_unlock(&q->lock);
    if (setjmp(q->bail) != 0)
        return NULL;            /* die(): failed, the vCPU has been told */

    while (!__atomic_load_n(&q->stop, __ATOMIC_ACQUIRE)) {
        tail = guest_tail(q);
        for (i = 0; tail == q->ent_head && i < RING_POLL_ITERS; i++) {
            __builtin_ia32_pause();
            tail = guest_tail(q);
        }
        if (tail == q->ent_head) {
            /* Ask for a kick, then look once more: the guest checks
             * needs_kick after publishing ent_tail, we check ent_tail after
             * publishing needs_kick; the full fences on both sides make it
             * impossible for both to miss each other. */
            __atomic_store_n(&q->r->needs_kick, 1, __ATOMIC_RELAXED);
            __atomic_thread_fence(__ATOMIC_SEQ_CST);
            tail = guest_tail(q);
            if (tail == q->ent_head) {
                ssize_t n = read(q->efd, &val, sizeof val);
                if (n < 0 && errno != EINTR)
                    break;
                q->kicks++;
                TALLY(q, ring_kicks, 1);
            }
            __atomic_store_n(&q->r->needs_kick, 0, __ATOMIC_RELEASE);
            continue;
        }
        process(q, tail);
    }
    /* Stopping (the guest halted): send what it wrote just before, so a
     * last reply is not lost. Reads get commits nobody will consume. */
    tail = guest_tail(q);
    if (tail != q->ent_head)
        process(q, tail);       /* its errors are fatal here too */
    return NULL;
}

/* Inline mode: serve what the guest posted, on the calling (vCPU) thread.
 * Returns -1 once the ring has failed (vl_ring_failed has the message). */
static int serve_inline(struct vl_ring *q)
{
    if (__atomic_load_n(&q->failed, __ATOMIC_ACQUIRE))
        return -1;
    if (setjmp(q->bail) != 0)
        return -1;
    process(q, guest_tail(q));
    return 0;
}

int vl_ring_kick(struct vl_ring *q)
{
    q->kicks++;
    return serve_inline(q);
}

int vl_ring_inline(const struct vl_ring *q)
{
    return q != NULL && q->efd < 0;
}

struct vl_ring *vl_ring_start(const struct vl_vcpu *v, uint64_t ring_gpa, int efd,
                              int kick_signal, char *err, size_t errlen)
{
    struct vl_ring *q;
    sigset_t all, old;
    int rc;

    if (ring_gpa + sizeof(struct hvt_ring) < ring_gpa) {
        snprintf(err, errlen, "bad ring address");
        return NULL;
    }
    q = calloc(1, sizeof *q);
    if (q == NULL) {
        snprintf(err, errlen, "%s", strerror(ENOMEM));
        return NULL;
    }
    memcpy(&q->v, v, sizeof *v);
    q->r = (volatile struct hvt_ring *)(v->mem + ring_gpa);
    memset((void *)q->r, 0, sizeof(struct hvt_ring));
    q->efd = efd;
    q->wake_fd = efd;
    q->vcpu_thread = pthread_self();
    q->kick_signal = kick_signal;
    if (efd < 0) {
        q->r->needs_kick = 1;   /* inline: every submission exits */
        return q;
    }
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->cond, NULL);

    /* The thread must never take SIGINT/SIGTERM: Python handles them on
     * the main thread, which then stops us through vl_ring_stop. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&q->thread, NULL, io_thread, q);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        snprintf(err, errlen, "%s", strerror(rc));
        pthread_cond_destroy(&q->cond);
        pthread_mutex_destroy(&q->lock);
        free(q);
        return NULL;
    }
    pthread_mutex_lock(&q->lock);
    while (!q->ready)
        pthread_cond_wait(&q->cond, &q->lock);
    pthread_mutex_unlock(&q->lock);
    return q;
}

/* A kick pipe (no ioeventfd, BHYVE_SPEC 8.4): the thread reads its read end
 * (efd, >= 1 byte per wake-up), so the stop must write to the other end. */
void vl_ring_set_wake(struct vl_ring *q, int fd)
{
    q->wake_fd = fd;
}

int vl_ring_stop(struct vl_ring *q, struct vl_ring_stats *stats, char *msg, size_t msglen)
{
    uint64_t one = 1;
    int failed;

    if (q == NULL)
        return 0;
    if (q->efd < 0) {
        /* Inline: the final drain (what the guest wrote just before it
         * halted) happens here, with the same fatal checks. */
        __atomic_store_n(&q->stop, 1, __ATOMIC_RELEASE);
        serve_inline(q);
        goto done;
    }
    __atomic_store_n(&q->stop, 1, __ATOMIC_RELEASE);
    if (write(q->wake_fd, &one, sizeof one) < 0) {
        /* the counter cannot overflow here; nothing to do */
    }
    pthread_join(q->thread, NULL);
    pthread_cond_destroy(&q->cond);
    pthread_mutex_destroy(&q->lock);
done:
    /* Decided after the join, so an error of the final drain counts. */
    failed = vl_ring_failed(q, msg, msglen);
    if (stats != NULL) {
        stats->writes = q->writes;
        stats->reads = q->reads;
        stats->kicks = q->kicks;
    }
    free(q);
    return failed;
}
