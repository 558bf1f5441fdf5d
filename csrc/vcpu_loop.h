/*
 * Interface of the C side, backend-neutral part: what the hypercall twins
 * (csrc/hypercalls.c), the ring thread (csrc/ring.c) and Python share. Each
 * backend's run loop adds its own part in a header of its own. cffi parses
 * this file as a cdef too: no include guard, no #if.
 */

#define VL_MAX_DEVICES 64
#define VL_NR_MAX 16

/* Why vl_run returned to Python. */
#define VL_IO 1          /* IO exit not handled natively: Python validates it */
#define VL_EINTR 2       /* the vCPU run or a blocking call was interrupted */
#define VL_ERRNO 3       /* running the vCPU failed; err holds errno */
#define VL_EXIT 4        /* another exit: the backend's part says which */
#define VL_FATAL 5       /* a native handler met a fatal condition; see msg */

#define VL_DEV_NONE 0
#define VL_DEV_BLOCK 1
#define VL_DEV_NET 2

struct vl_ring;     /* csrc/ring.c */
struct vl_stats;    /* csrc/vl_stats.h: live counters, owned by Python */
struct vl_backend;  /* the backend's part of a vCPU, opaque here */

struct vl_device {
    int kind;
    int fd;
    uint64_t capacity;
    uint32_t block_size;
};

struct vl_vcpu {
    struct vl_backend *backend;  /* the backend's vCPU; the ring thread stops it */
    uint8_t *mem;                /* host address of guest-physical 0 */
    uint64_t mem_size;           /* guest-visible size M; bound of every check */
    uint64_t write_floor;        /* host writes on the guest's behalf start here */
    uint32_t n_ro;               /* read-only [start, end) ranges (loaded segments) */
    const uint64_t *ro;          /* n_ro pairs start, end; owned by Python for the run */
    uint32_t native_mask;        /* bit nr: hypercall nr is served in C */
    int console_fd;              /* where PUTS goes (1 for the CLI) */
    struct vl_ring *ring;        /* the net ring's I/O thread, or NULL */
    uint32_t n_devices;
    struct vl_device devices[VL_MAX_DEVICES];
    uint64_t *counts;            /* [VL_NR_MAX] served natively, by nr: the stats
                                    block's vcpu.hypercalls when there is one */
    uint32_t report_msr;         /* also return refused MSR accesses to Python */
    uint64_t msr_denied;         /* RDMSR/WRMSR the MSR filter refused (#GP) */
    struct vl_stats *stats;      /* live counters, or NULL */
};

struct vl_exit {
    uint32_t reason;             /* VL_* */
    int err;
    uint16_t port;
    uint8_t size;
    uint8_t direction;
    uint32_t data;               /* first 4 bytes of IO data: the argument GPA */
    char msg[256];
};

/* vl_run: implemented by the backend's run loop. */
int vl_run(struct vl_vcpu *v, struct vl_exit *e);
int vl_check(const struct vl_vcpu *v, uint64_t gpa, uint64_t sz);
int vl_check_write(const struct vl_vcpu *v, uint64_t gpa, uint64_t sz);
int vl_mprotect(void *addr, size_t len, int prot);

/* Ring I/O thread (csrc/ring.c, HVT_SPEC.md 5). vl_ring_start copies V (the
 * bounds, read-only ranges, devices and backend part), zeroes the ring at
 * RING_GPA and returns once the thread runs, or NULL with ERR set. The
 * calling thread is taken to be the one that will run the vCPU: on a fatal
 * error the I/O thread records the message, stops serving, and kicks that
 * thread (vl_backend_stop + KICK_SIGNAL); vl_run then returns VL_FATAL with
 * the message. vl_ring_stop sets the stop flag, kicks EFD, joins, copies a
 * failure message (the thread's, final drain included) to MSG and frees; it
 * returns 1 when the thread failed. The caller closes EFD. */
struct vl_ring;
struct vl_ring_stats {
    uint64_t writes;
    uint64_t reads;
    uint64_t kicks;
};
struct vl_ring *vl_ring_start(const struct vl_vcpu *v, uint64_t ring_gpa, int efd,
                              int kick_signal, char *err, size_t errlen);
int vl_ring_failed(struct vl_ring *q, char *msg, size_t msglen);
/* EFD the read end of a kick pipe: vl_ring_stop wakes the thread through FD. */
void vl_ring_set_wake(struct vl_ring *q, int fd);
int vl_ring_stop(struct vl_ring *q, struct vl_ring_stats *stats, char *msg, size_t msglen);
/* EFD < 0 at vl_ring_start: inline mode, no thread; vl_run serves each kick
 * (a 4-byte OUT to port 0x600) with vl_ring_kick. */
int vl_ring_kick(struct vl_ring *q);
int vl_ring_inline(const struct vl_ring *q);

/* Sandbox (csrc/sandbox.c, HVT_SPEC.md 8.1): the policy is Python's. */
int vl_read_implies_exec(void);
int vl_sandbox(const uint32_t *nrs, uint32_t n_nrs, uint32_t ioctl_nr,
               const uint32_t *ioctls, uint32_t n_ioctls,
               uint32_t self_nr, uint32_t self_pid);
