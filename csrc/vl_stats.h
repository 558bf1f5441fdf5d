/*
 * Live counters of one guest run (tender/stats.py reads them).
 *
 * Each part has exactly one writer thread (vcpu: the thread in vl_run; ring:
 * the net I/O thread), so the hot path does plain uint64 increments with no
 * lock and no atomic instruction. Readers on other threads load them without
 * a lock: aligned 64-bit loads are single-copy atomic on x86_64 and the
 * counters only grow, so a reader sees a value that was true a moment ago,
 * never a torn one. Python sums the two parts.
 *
 * cffi reads this file as a cdef too: no include guard, no #if.
 */
#define VL_STATS_NR 16          /* hypercall numbers, as VL_NR_MAX */
#define VL_STATS_DEVICES 64     /* manifest handles, as VL_MAX_DEVICES */
#define VL_EXIT_KINDS 64        /* the backend's exit reasons; the last slot: any larger */

struct vl_dev_counters {
    uint64_t rd_ops, rd_bytes, rd_errors;   /* block read / net rx */
    uint64_t wr_ops, wr_bytes, wr_errors;   /* block write / net tx */
    uint64_t drops;                         /* tx frames dropped: full queue */
    uint64_t rx_empty;                      /* rx polls that found no frame */
};

struct vl_counters {
    uint64_t hypercalls[VL_STATS_NR];       /* served in C, by number (vl_vcpu.counts) */
    uint64_t exits[VL_EXIT_KINDS];          /* vCPU runs ended, by exit reason */
    uint64_t interrupted;                   /* a vCPU run was interrupted (EINTR) */
    uint64_t bad_handle;                    /* requests naming no such device */
    uint64_t ring_kicks;                    /* ring thread woken by the guest */
    struct vl_dev_counters dev[VL_STATS_DEVICES];
};

struct vl_stats {
    struct vl_counters vcpu;
    struct vl_counters ring;
};
