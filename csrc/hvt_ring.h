/*
 * The shared net ring of HVT_FEATURE_RING_IO (HVT_SPEC.md 5.2): one fixed
 * little-endian layout, 49280 bytes at GPA M. The host side (csrc/ring.c)
 * and our test guests (guests/rt/net.h) both include this file, so the two
 * ends cannot disagree about it.
 */
#ifndef PYTENDER_HVT_RING_H
#define PYTENDER_HVT_RING_H

#include <stdint.h>

#define RING_SIZE 1024u
#define RING_MASK (RING_SIZE - 1)
#define RING_BUF_SIZE 2048u         /* per-slot guest write buffer */
#define RING_KICK_PORT 0x600
#define OP_NET_WRITE 1
#define OP_NET_READ 2

struct ring_entry {
    uint32_t operation, handle;
    uint64_t data;
    uint32_t len, id;
    uint64_t reserved;
};
struct ring_commit {
    uint32_t id;
    int32_t ret;
    uint32_t len, reserved;
};
struct hvt_ring {
    uint32_t ent_tail;          /* guest */
    uint32_t com_head;          /* guest */
    uint8_t pad0[56];
    uint32_t ent_head;          /* host */
    uint32_t com_tail;          /* host */
    uint32_t needs_kick;        /* host */
    uint8_t pad1[52];
    struct ring_entry entries[RING_SIZE];
    struct ring_commit commits[RING_SIZE];
};
_Static_assert(sizeof(struct hvt_ring) == 49280, "hvt_ring size");
_Static_assert(__builtin_offsetof(struct hvt_ring, ent_head) == 64, "ent_head");
_Static_assert(__builtin_offsetof(struct hvt_ring, entries) == 128, "entries");
_Static_assert(__builtin_offsetof(struct hvt_ring, commits) == 32896, "commits");

#endif
