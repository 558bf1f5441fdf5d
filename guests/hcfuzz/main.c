/*
 * hcfuzz: seeded random hypercalls and ring entries (issue 13, hostile
 * hypercalls).
 *
 *   SEED N [FINAL]
 *
 * Issues N random hypercalls (and, when the tender offers the ring, random
 * ring entries among them) whose arguments are drawn from edge cases: handles
 * 0, the devices', unused ones and huge ones; offsets and lengths around the
 * block capacity, misaligned and huge; POLL timeouts of 0, 1 ns and u64 max;
 * buffers in our own arena, in read-only .text, in low memory (host reads
 * only), at the very end of guest memory (gpa + len = M - 1, the last legal
 * byte) and unaligned argument structs. None of these may be fatal by the
 * spec: the tender answers each with a result code and the run goes on.
 *
 * Then it prints ONE summary line and does one FINAL step, chosen by the
 * seed unless given: a normal halt with a random status, or one hostile
 * access that must end the run with a tender error (gpa at or past M, a
 * wrapping range, a struct over the end, a host write into low memory or
 * .text, a bad hypercall number or port, a bad halt cookie, a bad ring
 * entry, an ent_tail jump, a CPU exception). The harness
 * (tender/fuzz/hypercalls.py) checks the verdict against the kind.
 *
 * Needs BLOCK_BASIC "storage" and NET_BASIC "service0" (manifest.json).
 * Nothing per call is printed; the random PUTS go to the console, which
 * the harness discards.
 */
#include "guest.h"
#include "hvt_ring.h"

#define ARENA_SIZE (64 * 1024)
static uint8_t arena[ARENA_SIZE] __attribute__((aligned(4096)));
static uint64_t rng_state;
static uint64_t mem, capacity, blk_handle, net_handle;
static volatile struct hvt_ring *ring;
static unsigned long n_ok, n_again, n_einval, n_other, n_ring;

static uint64_t rnd(void)
{
    /* xorshift64*: a handful of instructions (guest code is slow here). */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1DULL;
}

static uint64_t below(uint64_t n) { return n ? rnd() % n : 0; }

static void tally(int32_t ret)
{
    if (ret == RES_OK) n_ok++;
    else if (ret == RES_AGAIN) n_again++;
    else if (ret == RES_EINVAL) n_einval++;
    else n_other++;
}

/* A length: mostly small, sometimes a block multiple, a frame, or huge. */
static uint64_t pick_len(uint64_t max)
{
    static const uint64_t edge[] = { 0, 1, 2, 14, 60, 511, 512, 513, 1024,
                                     1514, 2048, 4096 };
    uint64_t len;
    switch (below(4)) {
    case 0: len = edge[below(sizeof(edge) / sizeof(edge[0]))]; break;
    case 1: len = below(65); break;
    case 2: len = 512 * (1 + below(8)); break;
    default: len = below(max + 1); break;
    }
    return len > max ? max : len;
}

/* A buffer the host may READ: anywhere below M with gpa + len < M. */
static uint64_t pick_readable(uint64_t len)
{
    switch (below(6)) {
    case 0: return 0;
    case 1: return below(0x100000 - len);                   /* low memory */
    case 2: return (uintptr_t)&app_main;                    /* .text */
    case 3: return mem - 1 - len - below(3);                /* at the end */
    default: return (uintptr_t)arena + below(ARENA_SIZE - len);
    }
}

/* A buffer the host may WRITE: our arena or the free top 64 bytes of RAM. */
static uint64_t pick_writable(uint64_t len)
{
    if (len <= 62 && below(4) == 0)
        return mem - 1 - len - below(63 - len);
    return (uintptr_t)arena + below(ARENA_SIZE - len);
}

/* Where the argument struct goes (host-written): aligned or not. */
static volatile void *pick_arg(uint64_t size)
{
    return (volatile void *)(uintptr_t)pick_writable(size);
}

static uint64_t pick_handle(uint64_t good)
{
    switch (below(8)) {
    case 0: return 0;
    case 1: return good == blk_handle ? net_handle : blk_handle;
    case 2: return 3 + below(61);
    case 3: return 64 + below(1000);
    case 4: return rnd();
    default: return good;
    }
}

static uint64_t pick_offset(void)
{
    switch (below(8)) {
    case 0: return capacity - 512;
    case 1: return capacity;
    case 2: return capacity + 512 * below(4);
    case 3: return rnd();
    case 4: return below(capacity);                       /* misaligned */
    case 5: return ~0ULL - below(1024);
    default: return 512 * below(capacity / 512);
    }
}

static void hc_walltime(void)
{
    volatile struct hc_walltime *a = pick_arg(sizeof(*a));
    hypercall(HC_WALLTIME, a);
}

static void hc_puts(void)
{
    volatile struct hc_puts *a = pick_arg(sizeof(*a));
    uint64_t len = below(4) ? below(9) : pick_len(256);
    a->len = len;
    a->data = pick_readable(len);
    hypercall(HC_PUTS, a);
}

static void hc_poll(void)
{
    volatile struct hc_poll *a = pick_arg(sizeof(*a));
    uint64_t r = below(1000);
    /* Mostly 0 (a Python-mode timeout rounds up to 1 ms); u64 max rarely,
     * since it returns only when the harness's next frame arrives. */
    a->timeout_nsecs = r < 970 ? 0 : r < 998 ? 1 + below(100000) : ~0ULL - below(2);
    a->ret = -1;
    hypercall(HC_POLL, a);
    tally(RES_OK);
}

static void hc_block(void)
{
    volatile struct hc_block *a = pick_arg(sizeof(*a));
    int write = (int)below(2);
    uint64_t len = pick_len(ARENA_SIZE - 1);
    a->handle = pick_handle(blk_handle);
    a->offset = pick_offset();
    if (below(16) == 0)
        len = below(2) ? ~0ULL - below(4096) : (1ULL << 63);  /* EINVAL first */
    a->len = len;
    /* A valid request must name a valid buffer; a huge one is refused on
     * its length before the buffer is looked at (spec 4.4 steps 2-3). */
    if (len >= ARENA_SIZE)
        a->data = pick_readable(0);
    else
        a->data = write ? pick_readable(len) : pick_writable(len);
    a->ret = -1;
    hypercall(write ? HC_BLOCK_WRITE : HC_BLOCK_READ, a);
    tally(a->ret);
}

static void hc_net(void)
{
    volatile struct hc_net *a = pick_arg(sizeof(*a));
    int write = (int)below(2);
    uint64_t len = pick_len(write ? 1514 : ARENA_SIZE - 1);
    uint64_t h = pick_handle(net_handle);
    a->handle = h;
    if (h != net_handle && below(2))
        len = rnd();            /* bad handle: EINVAL before the buffer */
    a->len = len;
    if (h != net_handle && len >= ARENA_SIZE)
        a->data = rnd();
    else
        a->data = write ? pick_readable(len) : pick_writable(len);
    a->ret = -1;
    hypercall(write ? HC_NET_WRITE : HC_NET_READ, a);
    tally(a->ret);
}

/* One random ring entry (spec 5.2-5.4): writes, reads, unknown operations,
 * bad handles, odd ids; kicks at random (any value on port 0x600). */
static void ring_entry(void)
{
    while (ring->ent_tail - ring->ent_head >= RING_SIZE - 1)
        __asm__ __volatile__("pause");
    volatile struct ring_entry *e = &ring->entries[ring->ent_tail & RING_MASK];
    uint64_t r = below(8);
    uint32_t op = r < 4 ? OP_NET_WRITE : r < 6 ? OP_NET_READ : (uint32_t)below(2) * 3 +
                  (uint32_t)(rnd() & 0xff) * 4;
    uint64_t h = pick_handle(net_handle);
    uint64_t len = pick_len(RING_BUF_SIZE);
    e->operation = op;
    e->handle = (uint32_t)h;
    e->len = (uint32_t)len;
    e->data = op == OP_NET_READ ? pick_writable(len) : pick_readable(len);
    e->id = (uint32_t)rnd();
    e->reserved = rnd();
    uint32_t want = ring->com_tail + 1;
    __asm__ __volatile__("" ::: "memory");
    ring->ent_tail++;
    __asm__ __volatile__("mfence" ::: "memory");
    if (ring->needs_kick || below(32) == 0)
        raw_outl(RING_KICK_PORT, (uint32_t)rnd());
    n_ring++;
    if (op == OP_NET_READ) {
        /* A read is answered by exactly one commit (EINVAL for a bad
         * handle); consume it as the runtime does. */
        while (ring->com_tail != want)
            __asm__ __volatile__("pause");
        __asm__ __volatile__("" ::: "memory");
        tally(ring->commits[ring->com_head & RING_MASK].ret);
        ring->com_head++;
    }
}

static void one_call(void)
{
    uint64_t r = below(100);
    if (ring && r >= 90) ring_entry();
    else if (r < 10) hc_walltime();
    else if (r < 25) hc_puts();
    else if (r < 33) hc_poll();
    else if (r < 63) hc_block();
    else hc_net();
}

/* ---- the final step ------------------------------------------------------ */

static const char *const finals[] = {
    "halt", "puts-last", "puts-at-m", "puts-past-m", "puts-wrap", "arg-at-end",
    "arg-past-m", "walltime-low", "walltime-text", "blkread-text", "netread-low",
    "nr0", "nr9", "port-in", "port-size", "port-far", "cookie-oob", "ring-oob",
    "ring-jump", "pagefault",
};
#define N_FINALS (sizeof(finals) / sizeof(finals[0]))

static void final_step(const char *kind)
{
    volatile struct hc_puts *p = (volatile struct hc_puts *)arena;
    p->data = (uintptr_t)arena;
    p->len = 1;
    if (strncmp(kind, "puts-", 5) == 0) {
        if (strcmp(kind, "puts-last") == 0) {       /* the last byte of RAM */
            p->data = mem - 1;
        } else if (strcmp(kind, "puts-at-m") == 0) {
            p->data = mem;
            p->len = 0;
        } else if (strcmp(kind, "puts-past-m") == 0) {
            p->data = mem + below(1ULL << 40);
        } else {                                    /* puts-wrap */
            p->len = ~0ULL - below(0x1000);
        }
        hypercall(HC_PUTS, p);
    } else if (strcmp(kind, "arg-at-end") == 0) {  /* struct over the end */
        p = (volatile struct hc_puts *)(uintptr_t)(mem - 8 - below(8));
        hypercall(HC_PUTS, p);
    } else if (strcmp(kind, "arg-past-m") == 0) {
        raw_outl(HC_PIO_BASE + 1 + below(7), (uint32_t)(mem + 8 * below(1024)));
    } else if (strcmp(kind, "walltime-low") == 0) {
        hypercall(HC_WALLTIME, (volatile void *)(uintptr_t)(8 * below(0x100000 / 8)));
    } else if (strcmp(kind, "walltime-text") == 0) {
        hypercall(HC_WALLTIME, (volatile void *)(uintptr_t)&app_main);
    } else if (strcmp(kind, "blkread-text") == 0) {
        hc_block_read(blk_handle, 0, (void *)(uintptr_t)&app_main, 512);
    } else if (strcmp(kind, "netread-low") == 0) {
        volatile struct hc_net *a = (volatile struct hc_net *)arena;
        a->handle = net_handle;
        a->data = 0x1000 * below(256);
        a->len = 64;
        hypercall(HC_NET_READ, a);
    } else if (strcmp(kind, "nr0") == 0) {
        raw_outl(HC_PIO_BASE, (uint32_t)(uintptr_t)p);
    } else if (strcmp(kind, "nr9") == 0) {
        raw_outl((uint16_t)(HC_PIO_BASE + 9 + below(0xf7)), (uint32_t)(uintptr_t)p);
    } else if (strcmp(kind, "port-in") == 0) {
        uint32_t v;
        __asm__ __volatile__("inl %1, %0" : "=a"(v) : "d"((uint16_t)(HC_PIO_BASE + 2)));
    } else if (strcmp(kind, "port-size") == 0) {
        __asm__ __volatile__("outb %b0, %1" :: "a"((uint8_t)(uintptr_t)p),
                             "d"((uint16_t)(HC_PIO_BASE + 2)) : "memory");
    } else if (strcmp(kind, "port-far") == 0) {
        uint16_t port = (uint16_t)rnd();
        if (port >= HC_PIO_BASE && port <= HC_PIO_BASE + 8)
            port = 0x1234;
        if (port == RING_KICK_PORT)
            port = 0x601;
        raw_outl(port, (uint32_t)(uintptr_t)p);
    } else if (strcmp(kind, "cookie-oob") == 0) {
        rt_halt(0, (void *)(uintptr_t)(mem - 511 + below(511)));
    } else if (strcmp(kind, "ring-oob") == 0 && ring) {
        volatile struct ring_entry *e = &ring->entries[ring->ent_tail & RING_MASK];
        e->operation = below(2) ? OP_NET_WRITE : OP_NET_READ;
        e->handle = (uint32_t)net_handle;
        e->data = mem - 1 - below(8);
        e->len = 16;
        e->id = 0;
        __asm__ __volatile__("" ::: "memory");
        ring->ent_tail++;
        __asm__ __volatile__("mfence" ::: "memory");
        raw_outl(RING_KICK_PORT, 0);
        for (;;)        /* the I/O thread ends the run */
            __asm__ __volatile__("pause");
    } else if (strcmp(kind, "ring-jump") == 0 && ring) {
        ring->ent_tail = ring->ent_head + RING_SIZE + 1 + (uint32_t)below(100000);
        __asm__ __volatile__("mfence" ::: "memory");
        raw_outl(RING_KICK_PORT, 0);
        for (;;)
            __asm__ __volatile__("pause");
    } else if (strcmp(kind, "pagefault") == 0) {
        *(volatile uint64_t *)(uintptr_t)(0x400000000ULL + 8 * below(1 << 20)) = 1;
    } else {            /* "halt", or a ring kind without the ring */
        static const int status[] = { 0, 0, 0, 1, 2, 7, 254, 255, 256, -2 };
        int s = status[below(sizeof(status) / sizeof(status[0]))];
        printf("hcfuzz: halt %d\n", s);
        rt_halt(s, below(2) ? 0 : (void *)(uintptr_t)(arena + below(ARENA_SIZE - 512)));
    }
    puts("hcfuzz: FAILURE: survived the final step\n");
    exit(EXIT_FAILURE);
}

int app_main(const char *cmdline)
{
    const char *s = cmdline;
    long seed, n;
    char kind[32] = "";
    struct block_info bi;
    int h;

    if (parse_long(&s, &seed) < 0 || parse_long(&s, &n) < 0 || n < 0) {
        puts("usage: hcfuzz SEED N [FINAL]\n");
        return EXIT_FAILURE;
    }
    rng_state = (uint64_t)seed * 0x9E3779B97F4A7C15ULL + 1;
    next_word(&s, kind, sizeof(kind));
    mem = rt_bootinfo->mem_size;
    if (block_acquire("storage", &blk_handle, &bi) != RES_OK ||
        (h = mft_find("service0", MFT_NET_BASIC)) < 0) {
        puts("hcfuzz: needs block 'storage' and net 'service0'\n");
        return EXIT_FAILURE;
    }
    net_handle = (uint64_t)h;
    capacity = bi.capacity;
    if ((rt_bootinfo->host_features & 1) && rt_bootinfo->net_ring)
        ring = (volatile struct hvt_ring *)(uintptr_t)rt_bootinfo->net_ring;
    const char *final = kind[0] ? kind : finals[below(N_FINALS)];
    if (!ring && strncmp(final, "ring-", 5) == 0)
        final = "halt";
    for (long i = 0; i < n; i++)
        one_call();
    printf("hcfuzz: seed %ld calls %ld ring %lu ok %lu again %lu einval %lu other %lu"
           " final %s\n", seed, n, n_ring, n_ok, n_again, n_einval, n_other, final);
    final_step(final);
    return EXIT_FAILURE;
}
