/*
 * pytender guest runtime: console, exit/abort, stack protector, clocks,
 * manifest and block helpers, command line, main.
 */
#include "guest.h"

int rt_log_level = LOG_INFO;
static uint64_t tsc_base;

/* ---- strings ------------------------------------------------------------ */

/*
 * Bulk memory operations use x86 string instructions: cheap on hardware and
 * far fewer instruction steps where KVM has to emulate the guest (kvm_pvm
 * with a non-PVM guest runs at roughly one microsecond per instruction).
 */
void *memcpy(void *dst, const void *src, size_t n)
{
    void *d = dst;
    size_t q = n / 8, r = n % 8;
    __asm__ __volatile__("rep movsq\n\t"
                         "movq %[r], %%rcx\n\t"
                         "rep movsb"
                         : "+D"(d), "+S"(src), "+c"(q)
                         : [r] "r"(r) : "memory");
    return dst;
}

void *memmove(void *dst, const void *src, size_t n)
{
    uint8_t *d = dst;
    const uint8_t *s = src;
    if (d <= s || d >= s + n)
        return memcpy(dst, src, n);
    while (n--)                 /* overlapping, dst above src: backwards */
        d[n] = s[n];
    return dst;
}

void *memset(void *dst, int c, size_t n)
{
    void *d = dst;
    uint64_t v = (uint8_t)c * 0x0101010101010101ULL;
    size_t q = n / 8, r = n % 8;
    __asm__ __volatile__("rep stosq\n\t"
                         "movq %[r], %%rcx\n\t"
                         "rep stosb"
                         : "+D"(d), "+c"(q)
                         : "a"(v), [r] "r"(r) : "memory");
    return dst;
}

/* Fill N 64-bit words at DST with V. */
void memset64(void *dst, uint64_t v, size_t n)
{
    __asm__ __volatile__("rep stosq" : "+D"(dst), "+c"(n) : "a"(v) : "memory");
}

int memcmp(const void *a, const void *b, size_t n)
{
    const uint8_t *x = a, *y = b;
    size_t q = n / 8;

    if (q) {
        const void *pa = x, *pb = y;
        size_t left = q;
        /* repe cmpsq stops right after the first differing word */
        __asm__ __volatile__("repe cmpsq"
                             : "+S"(pa), "+D"(pb), "+c"(left)
                             :: "memory", "cc");
        /* words before the last consumed one are equal; recheck that one
         * (and the tail) bytewise to order the first difference */
        size_t skip = (q - left - 1) * 8;
        x += skip;
        y += skip;
        n -= skip;
    }
    for (; n; n--, x++, y++)
        if (*x != *y)
            return *x < *y ? -1 : 1;
    return 0;
}

size_t strlen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

int strcmp(const char *a, const char *b)
{
    while (*a && *a == *b)
        a++, b++;
    return (unsigned char)*a - (unsigned char)*b;
}

int strncmp(const char *a, const char *b, size_t n)
{
    for (; n; n--, a++, b++) {
        if (*a != *b)
            return (unsigned char)*a - (unsigned char)*b;
        if (!*a)
            return 0;
    }
    return 0;
}

char *strchr(const char *s, int c)
{
    for (;; s++) {
        if (*s == (char)c)
            return (char *)s;
        if (!*s)
            return NULL;
    }
}

int parse_long(const char **sp, long *out)
{
    const char *s = *sp;
    int neg = 0;
    unsigned long v = 0;

    while (*s == ' ')
        s++;
    if (*s == '-' || *s == '+')
        neg = *s++ == '-';
    if (*s < '0' || *s > '9')
        return -1;
    while (*s >= '0' && *s <= '9')
        v = v * 10 + (unsigned long)(*s++ - '0');
    *out = neg ? -(long)v : (long)v;
    *sp = s;
    return 0;
}

size_t next_word(const char **sp, char *buf, size_t size)
{
    const char *s = *sp;
    size_t n = 0;

    while (*s == ' ')
        s++;
    while (*s && *s != ' ') {
        if (n + 1 < size)
            buf[n] = *s;
        n++;
        s++;
    }
    if (size)
        buf[n < size ? n : size - 1] = '\0';
    *sp = s;
    return n;
}

/* ---- console ------------------------------------------------------------ */

void console_write(const char *buf, size_t len)
{
    volatile struct hc_puts p;
    p.data = (uint64_t)(uintptr_t)buf;
    p.len = len;
    hypercall(HC_PUTS, &p);
}

void puts(const char *s)
{
    console_write(s, strlen(s));
}

struct out {
    char *buf;
    size_t size;
    size_t n;       /* would-be length */
};

static void out_c(struct out *o, char c)
{
    if (o->n + 1 < o->size)
        o->buf[o->n] = c;
    o->n++;
}

static void out_num(struct out *o, unsigned long long v, unsigned base,
                    int neg, int upper, int width, int zero, int left)
{
    char tmp[24];
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    int len = 0;

    do {
        tmp[len++] = digits[v % base];
        v /= base;
    } while (v);
    int total = len + neg;
    if (!left && !zero)
        for (; width > total; width--)
            out_c(o, ' ');
    if (neg)
        out_c(o, '-');
    if (!left && zero)
        for (; width > total; width--)
            out_c(o, '0');
    while (len)
        out_c(o, tmp[--len]);
    if (left)
        for (; width > total; width--)
            out_c(o, ' ');
}

int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
    struct out o = { buf, size, 0 };

    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            out_c(&o, *fmt);
            continue;
        }
        fmt++;
        int zero = 0, left = 0, width = 0, lng = 0;
        for (;; fmt++) {
            if (*fmt == '0')
                zero = 1;
            else if (*fmt == '-')
                left = 1;
            else
                break;
        }
        while (*fmt >= '0' && *fmt <= '9')
            width = width * 10 + (*fmt++ - '0');
        while (*fmt == 'l' || *fmt == 'z') {
            lng++;
            fmt++;
        }
        unsigned long long u;
        long long s;
        switch (*fmt) {
        case 'd':
        case 'i':
            s = lng ? va_arg(ap, long) : va_arg(ap, int);
            u = s < 0 ? -(unsigned long long)s : (unsigned long long)s;
            out_num(&o, u, 10, s < 0, 0, width, zero, left);
            break;
        case 'u':
        case 'x':
        case 'X':
            u = lng ? va_arg(ap, unsigned long) : va_arg(ap, unsigned int);
            out_num(&o, u, *fmt == 'u' ? 10 : 16, 0, *fmt == 'X', width,
                    zero, left);
            break;
        case 'p':
            u = (uintptr_t)va_arg(ap, void *);
            out_c(&o, '0');
            out_c(&o, 'x');
            out_num(&o, u, 16, 0, 0, width, zero, left);
            break;
        case 'c':
            out_c(&o, (char)va_arg(ap, int));
            break;
        case 's': {
            const char *str = va_arg(ap, const char *);
            if (!str)
                str = "(null)";
            int len = (int)strlen(str);
            if (!left)
                for (; width > len; width--)
                    out_c(&o, ' ');
            while (*str)
                out_c(&o, *str++);
            if (left)
                for (; width > len; width--)
                    out_c(&o, ' ');
            break;
        }
        case '%':
            out_c(&o, '%');
            break;
        case '\0':
            fmt--;
            break;
        default:
            out_c(&o, '%');
            out_c(&o, *fmt);
            break;
        }
    }
    if (size)
        buf[o.n < size ? o.n : size - 1] = '\0';
    return (int)o.n;
}

int snprintf(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return n;
}

int printf(const char *fmt, ...)
{
    char buf[1024];
    va_list ap;

    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0)
        return n;
    if ((size_t)n < sizeof(buf)) {
        console_write(buf, (size_t)n);
        return n;
    }
    /* Too long for one buffer: format again into a bigger stack buffer
     * in chunks is not possible without re-walking, so print what fits
     * and mark the truncation. */
    console_write(buf, sizeof(buf) - 1);
    puts("...[truncated]\n");
    return n;
}

/* ---- exit, abort, stack protector --------------------------------------- */

void rt_halt(int status, void *cookie)
{
    volatile struct hc_halt h;
    h.cookie = (uint64_t)(uintptr_t)cookie;
    h.exit_status = status;
    hypercall(HC_HALT, &h);
    for (;;)                    /* the tender never resumes us */
        __asm__ __volatile__("hlt");
}

void exit(int status)
{
    if (rt_log_level >= LOG_DEBUG)
        printf("GUEST: exit(%d)\n", status);
    rt_halt(status, NULL);
}

void rt_abort(const char *file, int line, const char *msg)
{
    if (rt_log_level >= LOG_ERROR)
        printf("GUEST: ABORT: %s:%d: %s\n", file, line, msg);
    rt_halt(EXIT_ABORT, NULL);
}

void abort(void)
{
    if (rt_log_level >= LOG_ERROR)
        puts("GUEST: ABORT: abort() called\n");
    rt_halt(EXIT_ABORT, NULL);
}

void __stack_chk_fail(void) __attribute__((noreturn));
void __stack_chk_fail(void)
{
    /* puts only: keep the failing path short */
    if (rt_log_level >= LOG_ERROR)
        puts("GUEST: ABORT: Stack corruption detected\n");
    rt_halt(EXIT_ABORT, NULL);
}

/* ---- time --------------------------------------------------------------- */

uint64_t clock_monotonic(void)
{
    uint64_t freq = rt_bootinfo->cpu_cycle_freq;
    uint64_t t = rdtsc() - tsc_base;
    /* t * 1e9 / freq without 128-bit division (no libgcc, no floats):
     * (t % freq) * 1e9 fits in 64 bits for any freq below 18 GHz. */
    return (t / freq) * NSEC_PER_SEC + ((t % freq) * NSEC_PER_SEC) / freq;
}

uint64_t clock_wall(void)
{
    volatile struct hc_walltime w;
    w.nsecs = 0;
    hypercall(HC_WALLTIME, &w);
    return w.nsecs;
}

int poll_ns(uint64_t timeout_ns, uint64_t *ready_set)
{
    volatile struct hc_poll p;
    p.timeout_nsecs = timeout_ns;
    p.ready_set = 0;
    p.ret = -1;
    hypercall(HC_POLL, &p);
    if (ready_set)
        *ready_set = p.ready_set;
    return p.ret;
}

uint64_t yield(uint64_t deadline)
{
    uint64_t now = clock_monotonic(), ready = 0;
    poll_ns(deadline > now ? deadline - now : 0, &ready);
    return ready;
}

/* ---- manifest and block ------------------------------------------------- */

const struct mft *rt_manifest(void)
{
    return (const struct mft *)(uintptr_t)rt_bootinfo->mft;
}

int mft_find(const char *name, uint32_t type)
{
    const struct mft *m = rt_manifest();
    for (uint32_t i = 0; i < m->entries; i++)
        if (m->e[i].type == type &&
            strncmp(m->e[i].name, name, MFT_NAME_SIZE) == 0)
            return (int)i;
    return -1;
}

int block_acquire(const char *name, uint64_t *handle, struct block_info *info)
{
    int i = mft_find(name, MFT_BLOCK_BASIC);
    if (i < 0)
        return RES_EINVAL;
    const struct mft_entry *e = &rt_manifest()->e[i];
    if (!e->attached)
        return RES_EUNSPEC;
    *handle = (uint64_t)i;
    info->capacity = e->u.blk.capacity;
    info->block_size = e->u.blk.block_size;
    return RES_OK;
}

static int block_check(uint64_t handle, uint64_t offset, size_t len)
{
    const struct mft *m = rt_manifest();
    if (handle >= m->entries || m->e[handle].type != MFT_BLOCK_BASIC)
        return RES_EINVAL;
    uint64_t bs = m->e[handle].u.blk.block_size;
    if (bs == 0 || offset % bs != 0 || len != bs)
        return RES_EINVAL;
    return RES_OK;
}

static int hc_block(unsigned nr, uint64_t handle, uint64_t offset,
                    uint64_t data, uint64_t len)
{
    volatile struct hc_block b;
    b.handle = handle;
    b.offset = offset;
    b.data = data;
    b.len = len;
    b.ret = -1;
    hypercall(nr, &b);
    return b.ret;
}

int hc_block_write(uint64_t handle, uint64_t offset, const void *buf, uint64_t len)
{
    return hc_block(HC_BLOCK_WRITE, handle, offset, (uintptr_t)buf, len);
}

int hc_block_read(uint64_t handle, uint64_t offset, void *buf, uint64_t len)
{
    return hc_block(HC_BLOCK_READ, handle, offset, (uintptr_t)buf, len);
}

int block_write(uint64_t handle, uint64_t offset, const void *buf, size_t len)
{
    int r = block_check(handle, offset, len);
    return r != RES_OK ? r : hc_block_write(handle, offset, buf, len);
}

int block_read(uint64_t handle, uint64_t offset, void *buf, size_t len)
{
    int r = block_check(handle, offset, len);
    return r != RES_OK ? r : hc_block_read(handle, offset, buf, len);
}

/* ---- command line and main ---------------------------------------------- */

/* Consume a leading run of --solo5:{quiet,error,warn,info,debug} options
 * (space separated). Returns the rest of the command line; it is returned
 * verbatim (leading blanks included) if nothing was consumed. */
static const char *consume_solo5_options(const char *p)
{
    static const struct { const char *name; int level; } opts[] = {
        { "quiet", LOG_QUIET }, { "error", LOG_ERROR }, { "warn", LOG_WARN },
        { "info", LOG_INFO }, { "debug", LOG_DEBUG },
    };
    const char *rest = p;

    for (;;) {
        while (*p == ' ')
            p++;
        if (strncmp(p, "--solo5:", 8) != 0)
            break;
        const char *opt = p + 8;
        size_t n = 0;
        while (opt[n] && opt[n] != ' ')
            n++;
        size_t i;
        for (i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
            if (strlen(opts[i].name) == n && strncmp(opt, opts[i].name, n) == 0)
                break;
        if (i == sizeof(opts) / sizeof(opts[0]))
            break;              /* unknown: left for the application */
        rt_log_level = opts[i].level;
        p = opt + n;
        rest = p;
        while (*rest == ' ')
            rest++;
    }
    return rest;
}

void rt_main(void) __attribute__((noreturn));
void rt_main(void)
{
    const struct hvt_boot_info *bi = rt_bootinfo;
    const char *cmdline =
        consume_solo5_options((const char *)(uintptr_t)bi->cmdline);

    tsc_base = rdtsc();
    if (bi->cpu_cycle_freq == 0)
        ABORT("boot info: cpu_cycle_freq is 0");

    if (rt_log_level >= LOG_INFO)
        printf("GUEST: pytender guest runtime: mem=0x%lx kernel_end=0x%lx "
               "tsc=%lu Hz devices=%u cmdline=\"%s\"\n",
               bi->mem_size, bi->kernel_end, bi->cpu_cycle_freq,
               rt_manifest()->entries ? rt_manifest()->entries - 1 : 0,
               cmdline);
    if (rt_log_level >= LOG_DEBUG) {
        const struct mft *m = rt_manifest();
        for (uint32_t i = 1; i < m->entries; i++)
            printf("GUEST: device %u: '%s' type %u attached %u\n", i,
                   m->e[i].name, m->e[i].type, m->e[i].attached);
        printf("GUEST: host_features=0x%x net_ring=0x%lx fs=0x%lx\n",
               bi->host_features, bi->net_ring, rt_get_fs_base());
    }
    exit(app_main(cmdline));
}
