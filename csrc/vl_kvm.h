/*
 * Interface of the C side, KVM part (csrc/vcpu_loop.c): the backend part of
 * a vCPU and the detail of an exit the loop returns as VL_EXIT. Python owns
 * both (tender/kvm/vcpu.py). cffi parses this file as a cdef too: no
 * include guard, no #if.
 */

struct vl_kvm_exit {
    uint32_t reason;             /* kvm_run.exit_reason */
    uint64_t mmio_addr;
    uint32_t mmio_len;
    uint8_t mmio_is_write;
    uint32_t suberror;
    uint64_t fail_reason;
    uint32_t msr_index;          /* KVM_EXIT_X86_RDMSR/WRMSR (already refused) */
    uint64_t msr_data;           /* the value a WRMSR tried to write */
};

struct vl_backend {
    int vcpufd;
    void *run;                   /* the vCPU's struct kvm_run mapping */
    struct vl_kvm_exit exit;     /* set by vl_run with VL_EXIT (and VL_ERRNO: reason) */
};

/* The signal kick: the handler sets RUN's immediate_exit (see vcpu_loop.c). */
int vl_install_kick(void *run, int signum);
void vl_clear_kick(void);
