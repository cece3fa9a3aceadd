/* SPDX-License-Identifier: MIT */
/* segment.c - per-pid files of the session, mapped shared into the target.
 *
 * Everything here uses raw syscalls wrappers only (open, posix_fallocate,
 * mmap) and no malloc: it runs in constructors, in fork child handlers and
 * underneath the allocator hooks.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include "shim.h"
#include "segment_format.h"

uint64_t at_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int seg_path(char *buf, size_t n, const char *suffix)
{
    int len = snprintf(buf, n, "%s/%d.%s", at_shim.session, (int)at_shim.pid, suffix);
    return (len < 0 || (size_t)len >= n) ? -ENAMETOOLONG : 0;
}

static const char *failure_reason(int err)
{
    switch (err) {
    case ENOSPC:
    case EDQUOT:
        return "no space left in the session directory";
    case EROFS:
        return "the session directory is read-only";
    case EACCES:
    case EPERM:
        return "permission denied";
    case ENOMEM:
        return "out of memory";
    default:
        return "cannot create the file";
    }
}

/* A file that could not be made must show in the report, not as a silent
 * hole: feature files get a note in <pid>.seg; a <pid>.seg that could not
 * be made (the process would vanish from the report) leaves an empty
 * <pid>.seg.dropped marker when the disk is full (an empty file needs no
 * data blocks), which the report counts. */
static void note_failure(const char *path, const char *suffix, int err)
{
    if (strcmp(suffix, "seg") != 0) {
        char why[160];
        snprintf(why, sizeof(why), "%d.%s not written: %s (data dropped)", (int)at_shim.pid,
                 suffix, failure_reason(err));
        at_shim_note("core", why);
        return;
    }
    if (err != ENOSPC && err != EDQUOT)
        return;
    char marker[AT_PATH_MAX + 80];
    if (snprintf(marker, sizeof(marker), "%s.dropped", path) >= (int)sizeof(marker))
        return;
    int fd = open(marker, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd >= 0)
        close(fd);
}

/* open + reserve + map; NULL with *err set.  The path is unlinked again
 * on failure so no half-made file is left for the report. */
static void *create_and_map(const char *path, size_t size, int *err)
{
    /* A file of the same name is ours from before an exec (same pid):
     * replace it rather than write into a stale mapping's file. */
    unlink(path);
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        *err = errno;
        return NULL;
    }
    void *addr = MAP_FAILED;
    /* Reserve the blocks now: a full disk must fail here, not as SIGBUS
     * in the middle of the target's work. */
    *err = posix_fallocate(fd, 0, (off_t)size);
    if (*err == 0) {
        addr = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        *err = addr == MAP_FAILED ? errno : 0;
        /* No readahead: the file is all unwritten extents, and a first
         * touch would otherwise "read" (zero-fill) a large folio range
         * around the page (ext4: ~1.3 ms of a 16 ms start-up for the
         * .alloc and .imports files).  Only touched pages get filled. */
        if (addr != MAP_FAILED)
            madvise(addr, size, MADV_RANDOM);
    }
    close(fd);
    if (addr == MAP_FAILED) {
        unlink(path);
        return NULL;
    }
    return addr;
}

/* <session>/<pid>-<image>.<suffix> (image > 0) or <pid>.<suffix>. */
static int image_path(char *buf, size_t n, int image, const char *suffix)
{
    if (!image)
        return seg_path(buf, n, suffix);
    int len = snprintf(buf, n, "%s/%d-%d.%s", at_shim.session, (int)at_shim.pid, image, suffix);
    return (len < 0 || (size_t)len >= n) ? -ENAMETOOLONG : 0;
}

/* State of the <pid>.seg already there (a program of this pid before an
 * exec), or 0 when there is none of ours. */
static uint32_t previous_state(void)
{
    char path[AT_PATH_MAX + 64];
    at_seg_header_t h;
    if (seg_path(path, sizeof(path), "seg") < 0)
        return 0;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return 0;
    size_t want = offsetof(at_seg_header_t, ppid);
    ssize_t n = pread(fd, &h, want, 0);
    close(fd);
    if (n != (ssize_t)want || h.magic != AT_SEG_MAGIC || h.pid != (int32_t)at_shim.pid)
        return 0;
    return h.state;
}

/* First image number with no <pid>-<n>.seg yet, or 0 when all are taken. */
static int free_image(void)
{
    char path[AT_PATH_MAX + 64];
    for (int image = 1; image <= AT_SEG_IMAGE_MAX; image++)
        if (image_path(path, sizeof(path), image, "seg") == 0 && access(path, F_OK) < 0 && errno == ENOENT)
            return image;
    return 0;
}

void at_seg_keep_previous(void)
{
    static const char *const kinds[] = { "alloc", "gil", "imports", "seg.dropped", "seg" };
    int saved = errno;
    int image = previous_state() == AT_SEG_REPLACED ? free_image() : 0;
    /* the segment last: the sampler takes a new <pid>.seg for an exec */
    for (size_t i = 0; image && i < sizeof(kinds) / sizeof(*kinds); i++) {
        char from[AT_PATH_MAX + 64], to[AT_PATH_MAX + 64];
        if (seg_path(from, sizeof(from), kinds[i]) == 0 &&
            image_path(to, sizeof(to), image, kinds[i]) == 0)
            rename(from, to);   /* a kind the program did not write: ENOENT */
    }
    errno = saved;
}

void *at_seg_map(const char *suffix, size_t size)
{
    char path[AT_PATH_MAX + 64];
    if (!at_shim.session[0] || seg_path(path, sizeof(path), suffix) < 0)
        return NULL;
    int saved = errno;          /* the target's errno is not ours to change */
    int err = 0;
    void *addr = create_and_map(path, size, &err);
    if (!addr)
        note_failure(path, suffix, err);
    errno = saved;
    return addr;
}

void at_seg_unmap(void *addr, size_t size)
{
    if (addr)
        munmap(addr, size);
}
