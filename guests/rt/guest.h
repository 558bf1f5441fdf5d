/*
 * pytender guest runtime: the whole API a test guest sees.
 *
 * Freestanding, single vCPU, no interrupts, no SSE (built with
 * -mgeneral-regs-only). Written from HVT_SPEC.md, not derived from Solo5.
 */
#ifndef PYTENDER_GUEST_H
#define PYTENDER_GUEST_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* The hvt ABI: one header shared with the tender (csrc/hvt_abi.h). */
#include "hvt_abi.h"

/* Raw hypercall: outl of the 32-bit GPA of ARG to port 0x500+NR. */
static inline void hypercall(unsigned nr, volatile void *arg)
{
    __asm__ __volatile__("outl %0, %1"
                         :: "a"((uint32_t)(uintptr_t)arg),
                            "d"((uint16_t)(HC_PIO_BASE + nr))
                         : "memory");
}

/* Same, but with an arbitrary 32-bit value / port (hostile tests). */
static inline void raw_outl(uint16_t port, uint32_t val)
{
    __asm__ __volatile__("outl %0, %1" :: "a"(val), "d"(port) : "memory");
}

/* ---- MSRs --------------------------------------------------------------- */

static inline uint64_t rt_rdmsr(uint32_t msr)
{
    uint32_t lo, hi;
    __asm__ __volatile__("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
    return ((uint64_t)hi << 32) | lo;
}

static inline void rt_wrmsr(uint32_t msr, uint64_t v)
{
    __asm__ __volatile__("wrmsr" :: "c"(msr), "a"((uint32_t)v),
                         "d"((uint32_t)(v >> 32)) : "memory");
}

/* ---- application entry point ------------------------------------------- */

/* Provided by each guest. CMDLINE has the leading --solo5:* options
 * removed. The return value is the exit status. */
int app_main(const char *cmdline);

/* ---- runtime state ------------------------------------------------------ */

extern const struct hvt_boot_info *rt_bootinfo;
/* 0 quiet, 1 error, 2 warn, 3 info (default), 4 debug */
enum { LOG_QUIET, LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };
extern int rt_log_level;

/* Thread control block; %fs points at it. gcc's stack protector reads the
 * canary at %fs:0x28; local-exec __thread variables sit just below it. */
struct tcb {
    struct tcb *self;           /* %fs:0x00 */
    uint64_t reserved[4];       /* 0x08..0x27 */
    uint64_t stack_guard;       /* %fs:0x28 */
    uint64_t pad[2];
};
extern struct tcb *rt_tcb_ptr;    /* what FS base is reset to */
void rt_set_fs_base(uint64_t base);
uint64_t rt_get_fs_base(void);

/* ---- console ------------------------------------------------------------ */

/* Write LEN bytes with exactly one PUTS hypercall. */
void console_write(const char *buf, size_t len);
/* Write a NUL-terminated string as-is (no newline is added). */
void puts(const char *s);
/* printf subset: %s %d %i %u %x %X %p %c %%, flags '0' '-', width,
 * length modifiers l, ll, z. Output of one call goes out in as few PUTS
 * as possible (one unless > 1 KiB). */
int printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int snprintf(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- exit, abort, assert ----------------------------------------------- */

#define EXIT_SUCCESS 0
#define EXIT_FAILURE 1
#define EXIT_ABORT 255

void exit(int status) __attribute__((noreturn));
/* Halt with STATUS and a cookie (GPA) for the tender; no message. */
void rt_halt(int status, void *cookie) __attribute__((noreturn));
void abort(void) __attribute__((noreturn));
void rt_abort(const char *file, int line, const char *msg)
    __attribute__((noreturn));
#define ABORT(msg) rt_abort(__FILE__, __LINE__, (msg))
#define assert(e) \
    do { if (!(e)) rt_abort(__FILE__, __LINE__, "assertion failed: " #e); } while (0)

/* ---- time --------------------------------------------------------------- */

#define NSEC_PER_SEC ((uint64_t)1000000000)
static inline uint64_t rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}
/* Nanoseconds since boot, from the TSC scaled by cpu_cycle_freq. */
uint64_t clock_monotonic(void);
/* Nanoseconds since the epoch (WALLTIME hypercall). */
uint64_t clock_wall(void);
/* One POLL hypercall with the given timeout; returns ret, sets *ready. */
int poll_ns(uint64_t timeout_ns, uint64_t *ready_set);
/* POLL until DEADLINE (monotonic ns) or a device is ready: one hypercall
 * with timeout = deadline - now (0 if passed). Returns the ready set. */
uint64_t yield(uint64_t deadline);

/* ---- manifest and block devices ----------------------------------------- */

const struct mft *rt_manifest(void);
/* Index (= handle) of the entry named NAME of TYPE, or -1. */
int mft_find(const char *name, uint32_t type);

struct block_info { uint64_t capacity; uint64_t block_size; };
/* RES_OK and fills handle/info if NAME is an attached BLOCK_BASIC device. */
int block_acquire(const char *name, uint64_t *handle, struct block_info *info);
/* Bindings-style helpers: one block at a time; EINVAL (no hypercall) unless
 * the handle is a block device, offset is a multiple of block_size and
 * len == block_size. Otherwise the tender's ret. */
int block_write(uint64_t handle, uint64_t offset, const void *buf, size_t len);
int block_read(uint64_t handle, uint64_t offset, void *buf, size_t len);
/* Raw hypercalls, no guest-side checks; return the tender's ret. */
int hc_block_write(uint64_t handle, uint64_t offset, const void *buf, uint64_t len);
int hc_block_read(uint64_t handle, uint64_t offset, void *buf, uint64_t len);

/* ---- strings ------------------------------------------------------------ */

void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
/* Fill N 64-bit words at DST with V (rep stosq). */
void memset64(void *dst, uint64_t v, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
char *strchr(const char *s, int c);
/* Parse a signed decimal at *S (leading spaces skipped), advance *S.
 * Returns 0 on success, -1 if there is no number. */
int parse_long(const char **s, long *out);
/* Copy the next space-separated word of *S into BUF (NUL-terminated,
 * truncated to SIZE-1), advance *S. Returns its length (0 at the end). */
size_t next_word(const char **s, char *buf, size_t size);

#endif
