/*
 * The hvt ABI (HVT_SPEC.md 2.5, 2.6, 3, 4): the one C definition of it.
 * The tender's C code (csrc/) and our test guests (guests/rt/) include this
 * file; tests/test_abi_header.py holds tender/abi.py to it, so the Python
 * and C sides cannot drift apart. The net ring is in hvt_ring.h.
 */
#ifndef PYTENDER_HVT_ABI_H
#define PYTENDER_HVT_ABI_H

#include <stdint.h>

#define HVT_ABI_VERSION 2
#define HVT_ABI_TARGET 1
#define MFT_VERSION 1

/* Guest-physical memory map (spec 3.2). */
#define HVT_GDT_BASE 0x1000
#define HVT_PML4_BASE 0x2000
#define HVT_PDPT_BASE 0x3000
#define HVT_PD_BASE 0x4000
#define HVT_PT0_BASE 0x8000
#define HVT_BOOT_INFO_BASE 0x10000
#define HVT_GUEST_MIN_BASE 0x100000
#define HVT_CMDLINE_SIZE 8192
#define HVT_FEATURE_RING_IO 1

/* Boot info at HVT_BOOT_INFO_BASE (spec 3.5). */
struct hvt_boot_info {
    uint64_t mem_size;          /* guest-visible RAM size M */
    uint64_t kernel_end;        /* end of loaded file-backed segments */
    uint64_t cpu_cycle_freq;    /* TSC Hz */
    uint64_t cmdline;           /* GPA of the NUL-terminated command line */
    uint64_t mft;               /* GPA of the manifest copy */
    uint32_t host_features;
    uint32_t guest_features;
    uint64_t net_ring;
};

enum hvt_hypercall_nr {
    HC_WALLTIME = 1,
    HC_PUTS = 2,
    HC_POLL = 3,
    HC_BLOCK_WRITE = 4,
    HC_BLOCK_READ = 5,
    HC_NET_WRITE = 6,
    HC_NET_READ = 7,
    HC_HALT = 8,
};
#define HC_PIO_BASE 0x500

/* solo5_result_t */
enum { RES_OK = 0, RES_AGAIN = 1, RES_EINVAL = 2, RES_EUNSPEC = 3 };

struct hc_walltime { uint64_t nsecs; };
struct hc_puts { uint64_t data; uint64_t len; };
struct hc_poll { uint64_t timeout_nsecs; uint64_t ready_set; int32_t ret; uint32_t pad; };
struct hc_block { uint64_t handle; uint64_t offset; uint64_t data; uint64_t len;
                  int32_t ret; uint32_t pad; };
struct hc_net { uint64_t handle; uint64_t data; uint64_t len; int32_t ret; uint32_t pad; };
struct hc_halt { uint64_t cookie; int32_t exit_status; uint32_t pad; };

/* Trap frame handed to HALT as the cookie after a CPU exception. */
struct trap_frame { uint64_t cr2, ec, rip, cs, rflags, rsp, ss; };

/* Manifest copy (HVT_SPEC.md 2.6) */
#define MFT_NAME_SIZE 68
#define MFT_BLOCK_BASIC 1
#define MFT_NET_BASIC 2
#define MFT_RESERVED_FIRST 0x40000000u
struct mft_entry {
    char name[MFT_NAME_SIZE];
    uint32_t type;
    union {
        struct { uint64_t capacity; uint16_t block_size; } blk;
        struct { uint8_t mac[6]; uint16_t mtu; } net;
        uint8_t raw[16];
    } u;
    uint64_t b;
    uint8_t attached;
    uint8_t pad[7];
};
struct mft {
    uint32_t version;
    uint32_t entries;
    struct mft_entry e[];
};

/* ELF notes (spec 2.5). */
#define NOTE_TYPE_ABI 0x31494241u   /* "ABI1" */
#define NOTE_TYPE_MFT 0x3154464Du   /* "MFT1" */
#define MFT_MAX_ENTRIES 64

#define HALT_COOKIE_MAX 512
#define SOLO5_EXIT_ABORT 255

_Static_assert(sizeof(struct hvt_boot_info) == 56, "boot info");
_Static_assert(sizeof(struct mft_entry) == 104, "manifest entry");

#endif
