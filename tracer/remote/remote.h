/* SPDX-License-Identifier: MIT */
/* remote.h - the one way archtrace reads another process's memory.
 *
 * Every read of a target goes through at_remote_readv (process_vm_readv,
 * several segments per system call so a walker can batch what it needs
 * next).  Addresses come from the target and are untrusted: a null,
 * non-canonical or wrapping address fails with -EFAULT before any system
 * call.  Errors: -ESRCH (the process is gone), -EPERM (not allowed: see
 * at_remote_permission_hint), -EFAULT (bad address).
 */
#ifndef AT_REMOTE_H
#define AT_REMOTE_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define AT_REMOTE_MAX_SEGS  1024        /* segments per at_remote_readv (UIO_MAXIOV) */
#define AT_REMOTE_MAX_LEN   (1u << 20)  /* bytes per segment             */

typedef struct at_remote {
    pid_t pid;               /* the target process                       */
    unsigned long calls;     /* system calls made (for the µs/sample stat) */
    unsigned long bytes;     /* bytes read                               */
} at_remote_t;

typedef struct at_remote_seg {
    uint64_t addr;           /* remote address (untrusted)               */
    void *buf;               /* local destination                        */
    size_t len;              /* bytes wanted                             */
} at_remote_seg_t;

void at_remote_init(at_remote_t *r, pid_t pid);

/* Read up to n segments in one system call.  Returns the number of
 * leading segments read completely (0..n), or -errno when the first one
 * could not be read at all.  *partial (may be NULL) gets the bytes read
 * of the first incomplete segment. */
int at_remote_readv(at_remote_t *r, const at_remote_seg_t *segs, int n, size_t *partial);

/* One segment, all of it: 0 or -errno (-EFAULT when only part was read). */
int at_remote_read(at_remote_t *r, uint64_t addr, void *buf, size_t len);

/* One segment, as much as is readable from the start: bytes read or -errno. */
long at_remote_read_some(at_remote_t *r, uint64_t addr, void *buf, size_t len);

int at_remote_read_u64(at_remote_t *r, uint64_t addr, uint64_t *out);

/* "(run archtrace as root, or ...)": why a read of another process may be
 * refused, for messages after -EPERM. */
const char *at_remote_permission_hint(void);

/* Little helpers to pick fields out of a block read in one go. */
static inline uint64_t at_get_u64(const void *block, size_t off)
{
    uint64_t v;
    __builtin_memcpy(&v, (const char *)block + off, sizeof v);
    return v;
}

static inline int32_t at_get_i32(const void *block, size_t off)
{
    int32_t v;
    __builtin_memcpy(&v, (const char *)block + off, sizeof v);
    return v;
}

static inline uint32_t at_get_u32(const void *block, size_t off)
{
    uint32_t v;
    __builtin_memcpy(&v, (const char *)block + off, sizeof v);
    return v;
}

#endif
