/*
 * pytender guest runtime: NET_BASIC devices (HVT_SPEC.md 4.4, 5.3).
 *
 * Link rt/net.o only into guests that use the network: the ring's
 * per-slot write buffers are 2 MiB of BSS.
 *
 * When the tender offers ring I/O (host_features & 1 and net_ring != 0)
 * reads and writes go through the shared ring, with no VM exit except an
 * occasional kick; otherwise through the NET_READ / NET_WRITE hypercalls.
 * Frames over 2048 bytes are always written with the hypercall.
 */
#ifndef PYTENDER_NET_H
#define PYTENDER_NET_H

#include "guest.h"

/* The ring layout is the tender's own definition (csrc/hvt_ring.h). */
#include "hvt_ring.h"

struct net_info {
    uint8_t mac[6];
    uint16_t mtu;
};

/* RES_OK and fills handle/info if NAME is an attached NET_BASIC device. */
int net_acquire(const char *name, uint64_t *handle, struct net_info *info);
/* One frame. RES_OK, or the tender's ret. */
int net_write(uint64_t handle, const void *buf, size_t len);
/* One frame into BUF (SIZE >= mtu + 14): RES_OK and *read_size, RES_AGAIN
 * if nothing is pending, RES_EINVAL for a bad handle. */
int net_read(uint64_t handle, void *buf, size_t size, size_t *read_size);
/* 1 if the ring is in use (decided once, at the first call). */
int net_ring_active(void);
/* Raw hypercalls, whatever the ring state. */
int hc_net_write(uint64_t handle, const void *buf, uint64_t len);
int hc_net_read(uint64_t handle, void *buf, uint64_t size, uint64_t *read_size);
/* The shared ring (GPA M), or NULL if it is not in use. Only for tests that
 * must post raw, hostile entries; everyone else uses net_read / net_write. */
volatile struct hvt_ring *net_ring_raw(void);
/* Copy with rep movsb: per-byte loops are slow under kvm_pvm. */
void net_copy(void *dst, const void *src, size_t n);

#endif
