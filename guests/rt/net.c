/*
 * pytender guest runtime: NET_BASIC over hypercalls or the ring
 * (HVT_SPEC.md 5.3). Written from the spec.
 */
#include "net.h"

/* Per-slot copies of written frames: the host reads them after we return. */
static uint8_t wbuf[RING_SIZE][RING_BUF_SIZE] __attribute__((aligned(64)));
static struct hvt_ring *ring;
static int ring_state = -1;     /* -1 unknown, 0 hypercalls, 1 ring */
static uint32_t next_id;

void net_copy(void *dst, const void *src, size_t n)
{
    /* Guest instructions are what is expensive under kvm_pvm, and every
     * iteration of a rep string instruction counts as one: lib.c's memcpy
     * moves 8 bytes per iteration (a 1400-byte frame: 175, not 1400). */
    memcpy(dst, src, n);
}

int net_ring_active(void)
{
    if (ring_state < 0) {
        const struct hvt_boot_info *bi = rt_bootinfo;
        ring_state = (bi->host_features & 1) && bi->net_ring != 0;
        ring = ring_state ? (struct hvt_ring *)(uintptr_t)bi->net_ring : NULL;
    }
    return ring_state;
}

volatile struct hvt_ring *net_ring_raw(void)
{
    return net_ring_active() ? ring : NULL;
}

int net_acquire(const char *name, uint64_t *handle, struct net_info *info)
{
    int i = mft_find(name, MFT_NET_BASIC);
    if (i < 0)
        return RES_EINVAL;
    const struct mft_entry *e = &rt_manifest()->e[i];
    if (!e->attached)
        return RES_EUNSPEC;
    *handle = (uint64_t)i;
    memcpy(info->mac, e->u.net.mac, 6);
    info->mtu = e->u.net.mtu;
    return RES_OK;
}

int hc_net_write(uint64_t handle, const void *buf, uint64_t len)
{
    volatile struct hc_net n;
    n.handle = handle;
    n.data = (uint64_t)(uintptr_t)buf;
    n.len = len;
    n.ret = -1;
    hypercall(HC_NET_WRITE, &n);
    return n.ret;
}

int hc_net_read(uint64_t handle, void *buf, uint64_t size, uint64_t *read_size)
{
    volatile struct hc_net n;
    n.handle = handle;
    n.data = (uint64_t)(uintptr_t)buf;
    n.len = size;
    n.ret = -1;
    hypercall(HC_NET_READ, &n);
    if (n.ret == RES_OK)
        *read_size = n.len;
    return n.ret;
}

/* Post one entry; returns the slot index it went to. */
static uint32_t ring_post(uint32_t op, uint64_t handle, uint64_t data,
                          uint32_t len, const void *copy_from)
{
    uint32_t tail = ring->ent_tail;     /* ours alone */
    struct ring_entry *e;

    /* Full: wait for the host to consume. */
    while (tail - __atomic_load_n(&ring->ent_head, __ATOMIC_ACQUIRE) >= RING_SIZE - 1)
        __builtin_ia32_pause();
    if (copy_from != NULL) {
#ifndef RING_NO_SLOT_COPY
        net_copy(wbuf[tail & RING_MASK], copy_from, len);
        data = (uint64_t)(uintptr_t)wbuf[tail & RING_MASK];
#else
        /* bench only (guests/Makefile net-nocopy): breaks spec 5.3, to
         * measure what the slot copy costs. */
        (void)wbuf;
        data = (uint64_t)(uintptr_t)copy_from;
#endif
    }
    e = &ring->entries[tail & RING_MASK];
    e->operation = op;
    e->handle = (uint32_t)handle;
    e->data = data;
    e->len = len;
    e->id = next_id++;
    e->reserved = 0;
    /* Entry body before the new tail (release), then a full fence before we
     * look at needs_kick: pairs with the host's fence after it sets it. */
    __atomic_store_n(&ring->ent_tail, tail + 1, __ATOMIC_RELEASE);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (__atomic_load_n(&ring->needs_kick, __ATOMIC_RELAXED))
        raw_outl(RING_KICK_PORT, 0);
    return tail;
}

int net_write(uint64_t handle, const void *buf, size_t len)
{
    if (!net_ring_active() || len > RING_BUF_SIZE)
        return hc_net_write(handle, buf, len);
    ring_post(OP_NET_WRITE, handle, 0, (uint32_t)len, buf);
    return RES_OK;              /* fire and forget */
}

int net_read(uint64_t handle, void *buf, size_t size, size_t *read_size)
{
    uint64_t n = 0;
    int r;

    if (!net_ring_active()) {
        r = hc_net_read(handle, buf, size, &n);
        if (r == RES_OK)
            *read_size = n;
        return r;
    }
    if (size > 0xffffffffu)
        size = 0xffffffffu;
    ring_post(OP_NET_READ, handle, (uint64_t)(uintptr_t)buf, (uint32_t)size, NULL);
    uint32_t head = ring->com_head;
    while (__atomic_load_n(&ring->com_tail, __ATOMIC_ACQUIRE) == head)
        __builtin_ia32_pause();
    const struct ring_commit *c = &ring->commits[head & RING_MASK];
    r = c->ret;
    if (r == RES_OK)
        *read_size = c->len;
    __atomic_store_n(&ring->com_head, head + 1, __ATOMIC_RELEASE);
    return r;
}
