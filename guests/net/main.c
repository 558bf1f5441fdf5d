/*
 * net: answers ARP and ICMP echo for the IPs on its command line, one per
 * NET_BASIC device in manifest order (service0, service1, ...).
 *
 *   IP... [limit N] [pattern HEX] [info]
 *
 * limit N:     exit SUCCESS once every device answered N echo requests
 * pattern HEX: check every echo payload (after ping's 16-byte timestamp)
 *              against the repeated pattern, as `ping -p HEX` fills it
 * info:        print MAC and MTU of each device, then exit SUCCESS
 * ping PEER N:  the guest asks instead: ARP for PEER on the first device,
 *              then N echo requests, each waiting (5 s) for its reply
 * hc-hostile KIND: one raw NET hypercall with a bad handle or pointer; see
 *              hc_hostile() for the kinds.
 * timing N:   time N empty loop iterations, N/10 x 10 nops, N/100 ring
 *              kicks (port 0x600), WALLTIME hypercalls and 1400-byte copies
 *              with the TSC, print them, exit (bench/ring_costs.py)
 * ring-hostile KIND: post one bad entry straight into the shared ring (no
 *              runtime helper) and see what the host I/O thread does; see
 *              ring_hostile() for the kinds. Needs the ring.
 *
 * Always prints whether the ring is in use. The per-packet path is kept
 * short (in-place reply, incremental checksum): guest instructions are
 * expensive under kvm_pvm.
 */
#include "guest.h"
#include "net.h"

#define MAX_NICS 4
#define ETH_HLEN 14
#define BUF_SIZE (9216 + ETH_HLEN)

struct nic {
    char name[16];
    uint64_t handle;
    struct net_info info;
    uint8_t ip[4];
    unsigned long echoes;
};

static struct nic nics[MAX_NICS];
static unsigned n_nics;
static uint8_t buf[BUF_SIZE] __attribute__((aligned(64)));
static uint8_t pattern[16];
static unsigned pattern_len;
static unsigned long bad_payloads;

static int parse_ip(const char *s, uint8_t ip[4])
{
    for (int i = 0; i < 4; i++) {
        long v;
        if (parse_long(&s, &v) < 0 || v < 0 || v > 255)
            return -1;
        ip[i] = (uint8_t)v;
        if (i < 3 && *s++ != '.')
            return -1;
    }
    return *s == '\0' ? 0 : -1;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int parse_pattern(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n % 2 || n / 2 > sizeof pattern)
        return -1;
    for (size_t i = 0; i < n; i += 2) {
        int hi = hexval(s[i]), lo = hexval(s[i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        pattern[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    pattern_len = (unsigned)(n / 2);
    return 0;
}

static void print_mac(const char *what, const uint8_t m[6])
{
    printf("%s%02x:%02x:%02x:%02x:%02x:%02x", what, m[0], m[1], m[2], m[3],
           m[4], m[5]);
}

/* ARP request for our IP: turn it into the reply in place. */
static int arp(struct nic *c, uint8_t *f, size_t len)
{
    uint8_t *a = f + ETH_HLEN;
    if (len < ETH_HLEN + 28 || a[0] != 0 || a[1] != 1 || a[2] != 8 ||
        a[3] != 0 || a[4] != 6 || a[5] != 4 || a[6] != 0 || a[7] != 1 ||
        memcmp(a + 24, c->ip, 4) != 0)
        return 0;
    a[7] = 2;                                   /* reply */
    net_copy(a + 18, a + 8, 10);                /* tha, tpa = sha, spa */
    net_copy(a + 8, c->info.mac, 6);            /* sha */
    net_copy(a + 14, c->ip, 4);                 /* spa */
    net_copy(f, a + 18, 6);                     /* eth dst = requester */
    net_copy(f + 6, c->info.mac, 6);
    return net_write(c->handle, f, ETH_HLEN + 28) == RES_OK;
}

static void check_payload(const uint8_t *d, size_t n)
{
    /* ping writes its timestamp over the first 16 bytes of the pattern. */
    for (size_t i = 16; i < n; i++) {
        if (d[i] != pattern[i % pattern_len]) {
            if (bad_payloads++ == 0)
                printf("FAILURE: payload byte %lu is 0x%02x, expected 0x%02x\n",
                       (unsigned long)i, d[i], pattern[i % pattern_len]);
            return;
        }
    }
}

/* ICMP echo request to our IP: reply in place. */
static int icmp(struct nic *c, uint8_t *f, size_t len)
{
    uint8_t *ip = f + ETH_HLEN, *ic;
    size_t ihl, tot;
    uint32_t sum;
    uint8_t tmp[6];

    if (len < ETH_HLEN + 20 || (ip[0] >> 4) != 4 || ip[9] != 1 ||
        memcmp(ip + 16, c->ip, 4) != 0)
        return 0;
    ihl = (size_t)(ip[0] & 0xf) * 4;
    tot = (size_t)ip[2] << 8 | ip[3];
    if (ihl < 20 || tot < ihl + 8 || ETH_HLEN + tot > len)
        return 0;
    ic = ip + ihl;
    if (ic[0] != 8 || ic[1] != 0)
        return 0;
    if (pattern_len)
        check_payload(ic + 8, tot - ihl - 8);
    /* swap addresses; the IP checksum is unchanged by a swap */
    net_copy(tmp, ip + 12, 4);
    net_copy(ip + 12, ip + 16, 4);
    net_copy(ip + 16, tmp, 4);
    net_copy(tmp, f, 6);
    net_copy(f, f + 6, 6);
    net_copy(f + 6, tmp, 6);
    /* type 8 -> 0: RFC 1624 incremental update, HC' = ~(~HC + ~m + m') */
    ic[0] = 0;
    sum = (uint32_t)(~((uint32_t)ic[2] << 8 | ic[3]) & 0xffff) + (~0x0800u & 0xffff);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = ~sum & 0xffff;
    ic[2] = (uint8_t)(sum >> 8);
    ic[3] = (uint8_t)sum;
    if (net_write(c->handle, f, ETH_HLEN + tot) != RES_OK) {
        puts("FAILURE: net_write failed\n");
        exit(EXIT_FAILURE);
    }
    c->echoes++;
    return 1;
}

static void handle(struct nic *c, uint8_t *f, size_t len)
{
    if (len < ETH_HLEN)
        return;
    if (f[12] == 0x08 && f[13] == 0x06)
        arp(c, f, len);
    else if (f[12] == 0x08 && f[13] == 0x00)
        icmp(c, f, len);
}

static int all_done(unsigned long limit)
{
    for (unsigned i = 0; i < n_nics; i++)
        if (nics[i].echoes < limit)
            return 0;
    return 1;
}

/* ---- ping PEER N ------------------------------------------------------------ */
#define PING_ID 0x7074

static uint8_t peer_ip[4], peer_mac[6];

static uint16_t csum(const uint8_t *p, size_t n)
{
    uint32_t s = 0;
    for (size_t i = 0; i + 1 < n; i += 2)
        s += (uint32_t)p[i] << 8 | p[i + 1];
    if (n & 1)
        s += (uint32_t)p[n - 1] << 8;
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint16_t)~s;
}

static void eth_header(uint8_t *f, const uint8_t dst[6], const uint8_t src[6], uint8_t type_lo)
{
    net_copy(f, dst, 6);
    net_copy(f + 6, src, 6);
    f[12] = 0x08;
    f[13] = type_lo;
}

/* An ARP reply from the peer: remember its MAC. */
static int is_arp_reply(const uint8_t *f, size_t len, long seq)
{
    const uint8_t *a = f + ETH_HLEN;
    (void)seq;
    if (len < ETH_HLEN + 28 || f[12] != 0x08 || f[13] != 0x06 || a[7] != 2 ||
        memcmp(a + 14, peer_ip, 4) != 0)
        return 0;
    net_copy(peer_mac, a + 8, 6);
    return 1;
}

static int is_echo_reply(const uint8_t *f, size_t len, long seq)
{
    const uint8_t *ip = f + ETH_HLEN, *ic = ip + 20;
    return len >= ETH_HLEN + 28 && f[12] == 0x08 && f[13] == 0x00 && ip[0] == 0x45 &&
           ip[9] == 1 && memcmp(ip + 12, peer_ip, 4) == 0 && ic[0] == 0 &&
           (ic[4] << 8 | ic[5]) == PING_ID && (ic[6] << 8 | ic[7]) == seq;
}

/* Up to 5 s for a frame that `want` accepts; others are ignored. */
static int await_frame(struct nic *c, int (*want)(const uint8_t *, size_t, long), long seq)
{
    uint64_t deadline = clock_monotonic() + 5 * NSEC_PER_SEC;
    while (clock_monotonic() < deadline) {
        uint64_t ready = yield(deadline);
        size_t n;
        if ((ready & (1ULL << c->handle)) &&
            net_read(c->handle, buf, sizeof buf, &n) == RES_OK && want(buf, n, seq))
            return 1;
    }
    return 0;
}

static int ping_peer(struct nic *c, long count)
{
    static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t arp_hdr[8] = {0, 1, 8, 0, 6, 4, 0, 1};
    uint8_t f[ETH_HLEN + 36];

    memset(f, 0, sizeof f);
    eth_header(f, bcast, c->info.mac, 0x06);
    net_copy(f + ETH_HLEN, arp_hdr, 8);
    net_copy(f + ETH_HLEN + 8, c->info.mac, 6);
    net_copy(f + ETH_HLEN + 14, c->ip, 4);
    net_copy(f + ETH_HLEN + 24, peer_ip, 4);
    if (net_write(c->handle, f, ETH_HLEN + 28) != RES_OK || !await_frame(c, is_arp_reply, 0)) {
        puts("FAILURE: no ARP reply from the peer\n");
        return EXIT_FAILURE;
    }
    print_mac("ping: peer is at ", peer_mac);
    puts("\n");
    for (long seq = 1; seq <= count; seq++) {
        uint8_t *ip = f + ETH_HLEN, *ic = ip + 20;
        uint16_t sum;
        memset(f, 0, sizeof f);
        eth_header(f, peer_mac, c->info.mac, 0x00);
        ip[0] = 0x45;
        ip[3] = 36;                         /* 20 + 8 + 8 */
        ip[6] = 0x40;                       /* DF */
        ip[8] = 64;
        ip[9] = 1;
        net_copy(ip + 12, c->ip, 4);
        net_copy(ip + 16, peer_ip, 4);
        sum = csum(ip, 20);
        ip[10] = (uint8_t)(sum >> 8);
        ip[11] = (uint8_t)sum;
        ic[0] = 8;
        ic[4] = PING_ID >> 8;
        ic[5] = PING_ID & 0xff;
        ic[6] = (uint8_t)(seq >> 8);
        ic[7] = (uint8_t)seq;
        net_copy(ic + 8, "pytender", 8);
        sum = csum(ic, 16);
        ic[2] = (uint8_t)(sum >> 8);
        ic[3] = (uint8_t)sum;
        if (net_write(c->handle, f, ETH_HLEN + 36) != RES_OK ||
            !await_frame(c, is_echo_reply, seq)) {
            printf("FAILURE: no echo reply for seq %ld\n", seq);
            return EXIT_FAILURE;
        }
    }
    printf("ping: %ld replies\n", count);
    puts("SUCCESS\n");
    return EXIT_SUCCESS;
}

/* ---- timing N (bench/ring_costs.py): what guest work and exits cost ------- */

static int timing(long n)
{
    static uint8_t from[1400], to[1400];
    uint64_t t[6];

    t[0] = clock_monotonic();
    for (long i = 0; i < n; i++)
        __asm__ __volatile__("" ::: "memory");
    t[1] = clock_monotonic();
    for (long i = 0; i < n / 10; i++)
        __asm__ __volatile__("nop; nop; nop; nop; nop; nop; nop; nop; nop; nop" ::: "memory");
    t[2] = clock_monotonic();
    for (long i = 0; i < n / 100; i++)
        raw_outl(RING_KICK_PORT, 0);    /* no entry posted: the host finds nothing */
    t[3] = clock_monotonic();
    for (long i = 0; i < n / 100; i++)
        (void)clock_wall();
    t[4] = clock_monotonic();
    for (long i = 0; i < n / 100; i++)
        net_copy(to, from, sizeof to);
    t[5] = clock_monotonic();
    printf("TIMING loop_iteration_ns=%lu nop_ns=%lu kick_ns=%lu walltime_ns=%lu "
           "copy1400_ns=%lu\n", (unsigned long)((t[1] - t[0]) / (uint64_t)n),
           (unsigned long)((t[2] - t[1]) / (uint64_t)n),
           (unsigned long)((t[3] - t[2]) / (uint64_t)(n / 100)),
           (unsigned long)((t[4] - t[3]) / (uint64_t)(n / 100)),
           (unsigned long)((t[5] - t[4]) / (uint64_t)(n / 100)));
    puts("SUCCESS\n");
    return EXIT_SUCCESS;
}

/* ---- ring-hostile ----------------------------------------------------------
 * Each kind posts bad entries by hand, as a hostile guest would: fill the
 * slot, ent_tail++ (release), full fence, kick port 0x600 if asked to.
 * Fatal kinds: the tender must end the process (status 1, one line on
 * stderr) while we wait, so surviving is a failure. The others check what
 * the host did and print SUCCESS. */

static volatile struct hvt_ring *hr;

static void hostile_post(uint32_t op, uint32_t handle, uint64_t data, uint32_t len,
                         uint32_t id)
{
    uint32_t tail = hr->ent_tail;
    volatile struct ring_entry *e = &hr->entries[tail & RING_MASK];

    e->operation = op;
    e->handle = handle;
    e->data = data;
    e->len = len;
    e->id = id;
    e->reserved = 0;
    __atomic_store_n(&hr->ent_tail, tail + 1, __ATOMIC_RELEASE);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (__atomic_load_n(&hr->needs_kick, __ATOMIC_RELAXED))
        raw_outl(RING_KICK_PORT, 0);
}

/* Wait (bounded, 5 s) until the host has consumed everything we posted. */
static int hostile_drained(void)
{
    uint64_t deadline = clock_monotonic() + 5 * NSEC_PER_SEC;
    while (__atomic_load_n(&hr->ent_head, __ATOMIC_ACQUIRE) != hr->ent_tail) {
        if (clock_monotonic() > deadline)
            return 0;
        yield(clock_monotonic() + NSEC_PER_SEC / 1000);
    }
    return 1;
}

/* The next commit must be {ID, EINVAL, len 0}; consume it. */
static int hostile_einval_commit(uint32_t id)
{
    uint32_t head = hr->com_head;
    if (__atomic_load_n(&hr->com_tail, __ATOMIC_ACQUIRE) != head + 1) {
        printf("FAILURE: com_tail %u, expected %u\n", hr->com_tail, head + 1);
        return 0;
    }
    volatile struct ring_commit *c = &hr->commits[head & RING_MASK];
    if (c->id != id || c->ret != RES_EINVAL || c->len != 0) {
        printf("FAILURE: commit id %u ret %d len %u, expected id %u ret %d len 0\n",
               c->id, c->ret, c->len, id, RES_EINVAL);
        return 0;
    }
    __atomic_store_n(&hr->com_head, head + 1, __ATOMIC_RELEASE);
    return 1;
}

static int ring_hostile(const char *kind, uint32_t handle)
{
    uint64_t mem = rt_bootinfo->mem_size;
    uint64_t buf_gpa = (uint64_t)(uintptr_t)buf;
    int fatal = 1;

    hr = net_ring_raw();
    if (hr == NULL) {
        puts("FAILURE: ring-hostile needs the ring\n");
        return EXIT_FAILURE;
    }
    printf("NET: ring-hostile %s\n", kind);
    if (strcmp(kind, "write-oob") == 0) {
        hostile_post(OP_NET_WRITE, handle, mem - 1, 16, 1);
    } else if (strcmp(kind, "read-oob") == 0) {
        hostile_post(OP_NET_READ, handle, mem + 0x1000, 64, 1);
    } else if (strcmp(kind, "read-lowmem") == 0) {
        hostile_post(OP_NET_READ, handle, 0x2000, 64, 1);   /* page tables */
    } else if (strcmp(kind, "read-text") == 0) {
        printf("NET: text gpa 0x%lx\n", (unsigned long)(uintptr_t)&ring_hostile);
        hostile_post(OP_NET_READ, handle, (uint64_t)(uintptr_t)&ring_hostile, 64, 1);
    } else if (strcmp(kind, "bad-handle") == 0) {
        /* Writes: skipped silently, no commit. Reads: EINVAL commits. */
        hostile_post(OP_NET_WRITE, 0, buf_gpa, 60, 1);
        hostile_post(OP_NET_WRITE, 63, buf_gpa, 60, 2);
        hostile_post(OP_NET_READ, 0, buf_gpa, sizeof buf, 3);
        if (!hostile_drained() || !hostile_einval_commit(3))
            goto fail;
        hostile_post(OP_NET_READ, 63, buf_gpa, sizeof buf, 4);
        if (!hostile_drained() || !hostile_einval_commit(4))
            goto fail;
        fatal = 0;
    } else if (strcmp(kind, "bad-op") == 0) {
        uint32_t com = hr->com_tail;
        hostile_post(7, handle, buf_gpa, 60, 1);
        if (!hostile_drained())
            goto fail;
        if (hr->com_tail != com) {
            puts("FAILURE: an unknown operation produced a commit\n");
            return EXIT_FAILURE;
        }
        fatal = 0;
    } else if (strcmp(kind, "write-oob-halt") == 0 ||
               strcmp(kind, "write-oob-kick-halt") == 0) {
        /* Post the bad write and halt 0 at once: the host finds it only in
         * its last drain (no kick) or while the vCPU is already halting. */
        uint32_t tail = hr->ent_tail;
        volatile struct ring_entry *e = &hr->entries[tail & RING_MASK];
        e->operation = OP_NET_WRITE;
        e->handle = handle;
        e->data = mem - 1;
        e->len = 16;
        e->id = 1;
        e->reserved = 0;
        __atomic_store_n(&hr->ent_tail, tail + 1, __ATOMIC_RELEASE);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        if (kind[9] == 'k')
            raw_outl(RING_KICK_PORT, 0);
        return EXIT_SUCCESS;
    } else if (strcmp(kind, "ent-tail-jump") == 0) {
        __atomic_store_n(&hr->ent_tail, hr->ent_head + 5000, __ATOMIC_RELEASE);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        if (__atomic_load_n(&hr->needs_kick, __ATOMIC_RELAXED))
            raw_outl(RING_KICK_PORT, 0);
    } else {
        printf("FAILURE: unknown ring-hostile kind '%s'\n", kind);
        return EXIT_FAILURE;
    }
    if (!fatal) {
        /* The ring is still in step: an ordinary read through the runtime. */
        size_t n;
        int r = net_read(handle, buf, sizeof buf, &n);
        if (r != RES_OK && r != RES_AGAIN) {
            printf("FAILURE: net_read after the bad entries gave %d\n", r);
            return EXIT_FAILURE;
        }
        puts("SUCCESS\n");
        return EXIT_SUCCESS;
    }
    /* The I/O thread reacts within microseconds; 2 s is slack for a busy host.
     * yield returns early whenever a frame arrives (the host kernel sends
     * IPv6 neighbour discovery on a fresh tap), so wait out the deadline. */
    uint64_t deadline = clock_monotonic() + 2 * NSEC_PER_SEC;
    while (clock_monotonic() < deadline)
        yield(deadline);
    puts("FAILURE: survived\n");
    return EXIT_FAILURE;
fail:
    printf("FAILURE: the host did not consume the entries (ent_head %u, ent_tail %u)\n",
           hr->ent_head, hr->ent_tail);
    return EXIT_FAILURE;
}

/* ---- hc-hostile ------------------------------------------------------------
 * Raw NET_WRITE / NET_READ hypercalls with bad handles and pointers, ring or
 * not (spec 4.4). Kinds that the tender must survive print SUCCESS:
 *   bad-handle   handles 0, 63 and 2^32+handle: EINVAL for read and write
 *   read-empty   nothing queued: AGAIN, len left as it was
 * Fatal kinds (the tender must end the run; surviving prints FAILURE):
 *   write-oob    16 bytes from the last byte of RAM
 *   read-oob     64 bytes at M (beyond guest memory)
 *   read-lowmem  into the tender's page tables at 0x2000
 *   read-text    into our own .text
 */
static int hc_net_raw(uint32_t nr, uint64_t handle, uint64_t data, uint64_t len,
                      uint64_t *len_out)
{
    volatile struct hc_net a;
    a.handle = handle;
    a.data = data;
    a.len = len;
    a.ret = -1;
    hypercall(nr, &a);
    if (len_out)
        *len_out = a.len;
    return a.ret;
}

static int hc_hostile(const char *kind, uint64_t handle)
{
    uint64_t mem = rt_bootinfo->mem_size, len = 0;
    uint64_t text = (uint64_t)(uintptr_t)&hc_hostile;

    printf("NET: hc-hostile %s\n", kind);
    if (strcmp(kind, "bad-handle") == 0) {
        static const uint64_t bad[] = { 0, 63, (1ULL << 32) + 1 };
        for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            int w = hc_net_raw(HC_NET_WRITE, bad[i], (uintptr_t)buf, 60, NULL);
            int r = hc_net_raw(HC_NET_READ, bad[i], (uintptr_t)buf, sizeof buf, NULL);
            printf("NET: handle 0x%lx: write ret %d, read ret %d\n",
                   (unsigned long)bad[i], w, r);
            if (w != RES_EINVAL || r != RES_EINVAL) {
                puts("FAILURE: expected EINVAL\n");
                return EXIT_FAILURE;
            }
        }
    } else if (strcmp(kind, "read-empty") == 0) {
        int r = hc_net_raw(HC_NET_READ, handle, (uintptr_t)buf, 1234, &len);
        printf("NET: empty read ret %d len %lu\n", r, (unsigned long)len);
        if (r != RES_AGAIN || len != 1234) {
            puts("FAILURE: expected AGAIN with len unchanged\n");
            return EXIT_FAILURE;
        }
    } else {
        if (strcmp(kind, "write-oob") == 0)
            hc_net_raw(HC_NET_WRITE, handle, mem - 1, 16, NULL);
        else if (strcmp(kind, "read-oob") == 0)
            hc_net_raw(HC_NET_READ, handle, mem, 64, NULL);
        else if (strcmp(kind, "read-lowmem") == 0)
            hc_net_raw(HC_NET_READ, handle, 0x2000, 64, NULL);
        else if (strcmp(kind, "read-text") == 0)
            hc_net_raw(HC_NET_READ, handle, text, 64, NULL);
        else {
            printf("FAILURE: unknown hc-hostile kind '%s'\n", kind);
            return EXIT_FAILURE;
        }
        puts("FAILURE: survived\n");
        return EXIT_FAILURE;
    }
    puts("SUCCESS\n");
    return EXIT_SUCCESS;
}

int app_main(const char *cmdline)
{
    const struct mft *m = rt_manifest();
    const char *p = cmdline;
    char word[64];
    unsigned n_ips = 0;
    long limit = 0, ping = 0, timing_n = 0;
    int info = 0;
    char hostile[32] = "", hc_kind[32] = "";

    for (uint32_t i = 1; i < m->entries && n_nics < MAX_NICS; i++) {
        if (m->e[i].type != MFT_NET_BASIC)
            continue;
        struct nic *c = &nics[n_nics];
        snprintf(c->name, sizeof c->name, "%s", m->e[i].name);
        if (net_acquire(c->name, &c->handle, &c->info) != RES_OK) {
            printf("FAILURE: net_acquire(%s)\n", c->name);
            return EXIT_FAILURE;
        }
        n_nics++;
    }
    while (next_word(&p, word, sizeof word)) {
        if (strcmp(word, "limit") == 0) {
            if (parse_long(&p, &limit) < 0 || limit < 1) {
                puts("FAILURE: bad limit\n");
                return EXIT_FAILURE;
            }
        } else if (strcmp(word, "timing") == 0) {
            if (parse_long(&p, &timing_n) < 0 || timing_n < 100) {
                puts("FAILURE: timing needs N >= 100\n");
                return EXIT_FAILURE;
            }
        } else if (strcmp(word, "pattern") == 0) {
            if (!next_word(&p, word, sizeof word) || parse_pattern(word) < 0) {
                puts("FAILURE: bad pattern\n");
                return EXIT_FAILURE;
            }
        } else if (strcmp(word, "ping") == 0) {
            if (!next_word(&p, word, sizeof word) || parse_ip(word, peer_ip) < 0 ||
                parse_long(&p, &ping) < 0 || ping < 1 || ping > 65535) {
                puts("FAILURE: ping needs PEER-IP COUNT\n");
                return EXIT_FAILURE;
            }
        } else if (strcmp(word, "info") == 0) {
            info = 1;
        } else if (strcmp(word, "hc-hostile") == 0) {
            if (!next_word(&p, hc_kind, sizeof hc_kind)) {
                puts("FAILURE: hc-hostile needs a kind\n");
                return EXIT_FAILURE;
            }
        } else if (strcmp(word, "ring-hostile") == 0) {
            if (!next_word(&p, hostile, sizeof hostile)) {
                puts("FAILURE: ring-hostile needs a kind\n");
                return EXIT_FAILURE;
            }
        } else if (n_ips < n_nics && parse_ip(word, nics[n_ips].ip) == 0) {
            n_ips++;
        } else {
            printf("FAILURE: bad argument '%s'\n", word);
            return EXIT_FAILURE;
        }
    }
    printf("NET: ring %s\n", net_ring_active() ? "active" : "inactive");
    for (unsigned i = 0; i < n_nics; i++) {
        printf("NET: %s handle %lu ", nics[i].name, (unsigned long)nics[i].handle);
        print_mac("mac ", nics[i].info.mac);
        printf(" mtu %u\n", nics[i].info.mtu);
        printf("MTU is %u\n", nics[i].info.mtu);
    }
    if (hostile[0])
        return n_nics ? ring_hostile(hostile, (uint32_t)nics[0].handle) : EXIT_FAILURE;
    if (hc_kind[0])
        return n_nics ? hc_hostile(hc_kind, nics[0].handle) : EXIT_FAILURE;
    if (info) {
        puts("SUCCESS\n");
        return EXIT_SUCCESS;
    }
    if (n_nics == 0 || n_ips != n_nics) {
        printf("FAILURE: need one IP per device (%u devices)\n", n_nics);
        return EXIT_FAILURE;
    }
    if (ping)
        return ping_peer(&nics[0], ping);
    if (timing_n)
        return timing(timing_n);
    printf("NET: serving %u device(s), limit %ld\n", n_nics, limit);

    for (;;) {
        uint64_t ready = yield(clock_monotonic() + NSEC_PER_SEC);
        for (unsigned i = 0; i < n_nics; i++) {
            size_t n;
            if (!(ready & (1ULL << nics[i].handle)))
                continue;
            if (net_read(nics[i].handle, buf, sizeof buf, &n) == RES_OK)
                handle(&nics[i], buf, n);
        }
        if (bad_payloads) {
            printf("FAILURE: %lu bad payloads\n", bad_payloads);
            return EXIT_FAILURE;
        }
        if (limit && all_done((unsigned long)limit))
            break;
    }
    for (unsigned i = 0; i < n_nics; i++)
        printf("NET: %s answered %lu echo requests\n", nics[i].name, nics[i].echoes);
    if (pattern_len)
        puts("NET: all payloads matched the pattern\n");
    puts("SUCCESS\n");
    return EXIT_SUCCESS;
}
