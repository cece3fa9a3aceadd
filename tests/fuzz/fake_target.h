/* SPDX-License-Identifier: MIT */
/* fake_target.h - a fake "remote process" for the libFuzzer targets of the remote readers.
 *
 * The readers (frame_walk.c, py_names.c, ...) see a target only through
 * process_vm_readv (remote.c).  This header defines process_vm_readv
 * itself, so the fuzz executable's definition wins over libc's and every
 * "remote" read is served from a memory image the fuzz input provides:
 * image byte i stands at address WALK_IMAGE_BASE + i (walk_image.h).  No
 * system call is made, reads past the image fail like unmapped pages, and
 * the "target" can vanish (ESRCH) after any number of reads.
 *
 * Header-only because it holds one global definition: include it from
 * exactly ONE .c file per binary (the fuzz target itself), or the link
 * fails with a duplicate process_vm_readv.
 */
#ifndef AT_FAKE_TARGET_H
#define AT_FAKE_TARGET_H
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "remote/py_proc.h"
#include "walk_image.h"

static struct {
    const uint8_t *image;    /* the target's memory                        */
    size_t size;
    unsigned reads;          /* process_vm_readv calls so far              */
    unsigned die_after;      /* ESRCH from this call on; 0 = never          */
} target;

/* Serve reads from image[0..size) from now on; the target dies at read
 * number die_after (0: never). */
static inline void fake_target_load(const uint8_t *image, size_t size, unsigned die_after)
{
    target.image = image;
    target.size = size;
    target.reads = 0;
    target.die_after = die_after;
}

/* One fuzz input in walk_image.h's format, its image being served. */
typedef struct fake_input {
    int flags;               /* WALK_TYPES_EXPORTED, WALK_RELOAD             */
    uint8_t *image;          /* a private copy (the patch writes to it, ASan  */
    size_t image_size;       /* bounds it exactly)                           */
    const uint8_t *patch;    /* bytes written at patch_off by fake_target_patch */
    size_t patch_len, patch_off;
} fake_input_t;

/* Split data into header, patch and image, and serve the image: 0, or -1
 * when the input is too short or out of memory (skip it). */
static inline int fake_target_open(fake_input_t *in, const uint8_t *data, size_t size)
{
    if (size < WALK_HDR_SIZE)
        return -1;
    in->flags = data[0];
    in->patch_off = (size_t)data[2] | (size_t)data[3] << 8;
    in->patch_len = data[4] % (WALK_PATCH_MAX + 1);
    if (size < WALK_HDR_SIZE + in->patch_len)
        return -1;
    in->patch = data + WALK_HDR_SIZE;
    in->image_size = size - WALK_HDR_SIZE - in->patch_len;
    in->image = malloc(in->image_size ? in->image_size : 1);
    if (!in->image)
        return -1;
    memcpy(in->image, in->patch + in->patch_len, in->image_size);
    fake_target_load(in->image, in->image_size, data[1]);
    return 0;
}

/* The target "moves on": the input's patch is written into the image. */
static inline void fake_target_patch(fake_input_t *in)
{
    for (size_t i = 0; i < in->patch_len && in->patch_off + i < in->image_size; i++)
        in->image[in->patch_off + i] = in->patch[i];
}

static inline void fake_target_close(fake_input_t *in)
{
    free(in->image);
    in->image = NULL;
}

/* The process the readers are given: _PyRuntime at the image base, and
 * the type addresses when the input says the build exports them. */
static inline void fake_target_proc(const fake_input_t *in, at_py_proc_t *proc)
{
    int minor = in->flags & WALK_LAYOUT_313 ? 13 : in->flags & WALK_LAYOUT_312 ? 12 : 11;
    *proc = (at_py_proc_t){ .pid = 1, .runtime = WALK_IMAGE_BASE, .layout = *at_pylayout_find(3, minor) };
    at_remote_init(&proc->mem, proc->pid);
    if (in->flags & WALK_TYPES_EXPORTED) {
        proc->code_type = WALK_CODE_TYPE;
        proc->unicode_type = WALK_UNICODE_TYPE;
        proc->bytes_type = WALK_BYTES_TYPE;
        static const uint64_t known[AT_PYSYM_COUNT] = {
            [AT_PYSYM_LONG_TYPE] = WALK_LONG_TYPE,   [AT_PYSYM_BOOL_TYPE] = WALK_BOOL_TYPE,
            [AT_PYSYM_FLOAT_TYPE] = WALK_FLOAT_TYPE, [AT_PYSYM_TUPLE_TYPE] = WALK_TUPLE_TYPE,
            [AT_PYSYM_LIST_TYPE] = WALK_LIST_TYPE,   [AT_PYSYM_DICT_TYPE] = WALK_DICT_TYPE,
            [AT_PYSYM_SET_TYPE] = WALK_SET_TYPE,     [AT_PYSYM_FROZENSET_TYPE] = WALK_FROZENSET_TYPE,
            [AT_PYSYM_CELL_TYPE] = WALK_CELL_TYPE,   [AT_PYSYM_NONE] = WALK_NONE,
            [AT_PYSYM_TRUE] = WALK_TRUE,             [AT_PYSYM_FALSE] = WALK_FALSE,
            [AT_PYSYM_CORO_TYPE] = WALK_CORO_TYPE,   [AT_PYSYM_GEN_TYPE] = WALK_GEN_TYPE,
        };
        memcpy(proc->known, known, sizeof known);
    }
}

/* The fake target has died (its reads fail with ESRCH from now on). */
static inline int fake_target_died(void)
{
    return target.die_after && target.reads >= target.die_after;
}

/* Length of the valid UTF-8 sequence starting at s, 0 when invalid. */
static inline size_t fake_utf8_seq(const unsigned char *s)
{
    size_t n = s[0] < 0x80 ? 1
             : (s[0] & 0xE0) == 0xC0 ? 2
             : (s[0] & 0xF0) == 0xE0 ? 3
             : (s[0] & 0xF8) == 0xF0 ? 4
                                     : 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return n;
}

/* Abort unless s is NUL-terminated within size bytes and valid UTF-8:
 * what every reader promises of the text it hands back. */
static inline void fake_check_text(const char *s, size_t size)
{
    if (!s || !memchr(s, '\0', size))
        abort();
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        size_t n = fake_utf8_seq(p);
        if (!n)
            abort();
        p += n;
    }
}

/* Bytes of [addr, addr+len) readable from the start; 0 when none. */
static inline size_t fake_target_readable(uint64_t addr, size_t len)
{
    if (addr < WALK_IMAGE_BASE || addr - WALK_IMAGE_BASE >= target.size)
        return 0;
    size_t left = target.size - (size_t)(addr - WALK_IMAGE_BASE);
    return len < left ? len : left;
}

/* The kernel's contract as remote.c relies on it: local and remote iovecs
 * are two streams copied in order; the copy stops at the first unreadable
 * remote byte; the bytes copied are returned, or -1 (EFAULT) when none. */
ssize_t process_vm_readv(pid_t pid, const struct iovec *local, unsigned long liovcnt,
                         const struct iovec *remote, unsigned long riovcnt, unsigned long flags)
{
    (void)pid;
    (void)flags;
    if (++target.reads >= target.die_after && target.die_after) {
        errno = ESRCH;
        return -1;
    }
    size_t done = 0, li = 0, loff = 0;
    for (unsigned long ri = 0; ri < riovcnt; ri++) {
        uint64_t addr = (uint64_t)(uintptr_t)remote[ri].iov_base;
        size_t want = remote[ri].iov_len, ok = fake_target_readable(addr, want);
        for (size_t roff = 0; roff < ok && li < liovcnt;) {
            size_t room = local[li].iov_len - loff, n = ok - roff < room ? ok - roff : room;
            memcpy((uint8_t *)local[li].iov_base + loff, target.image + (addr - WALK_IMAGE_BASE) + roff, n);
            roff += n;
            loff += n;
            done += n;
            if (loff == local[li].iov_len) {
                li++;
                loff = 0;
            }
        }
        if (ok < want || li >= liovcnt)
            break;
    }
    if (done == 0 && riovcnt) {
        errno = EFAULT;
        return -1;
    }
    return (ssize_t)done;
}

#endif
