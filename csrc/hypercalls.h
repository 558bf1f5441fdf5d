/*
 * Backend-neutral native hypercall twins (csrc/hypercalls.c), for the C run
 * loops of the backends. Not a cffi cdef: include it after vl_stats.h and
 * vcpu_loop.h, which carry no include guards because cffi parses them.
 */
#ifndef PYTENDER_HYPERCALLS_H
#define PYTENDER_HYPERCALLS_H

#include <stdint.h>

/* Bump a live counter of the vCPU thread (see vl_stats.h). */
#define VL_TALLY(v, field, n)                                                 \
    do {                                                                      \
        if ((v)->stats != NULL)                                               \
            (v)->stats->vcpu.field += (n);                                    \
    } while (0)

/* Serve hypercall NR (a bit of native_mask) with its argument struct at
 * GPA: 0 to re-enter the guest, -1 when E says why the run loop must return
 * to Python (VL_FATAL with msg, or VL_EINTR from a blocking call). */
int vl_serve(struct vl_vcpu *v, uint32_t nr, uint64_t gpa, struct vl_exit *e);

/* Implemented by the backend's run loop: make the vCPU B leave the guest
 * soon, from any thread (the ring thread, before it sends the kick signal). */
void vl_backend_stop(struct vl_backend *b);

#endif
