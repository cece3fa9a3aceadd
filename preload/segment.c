/* SPDX-License-Identifier: MIT */
/* segment.c - per-pid files of the session, mapped shared into the target.
 *
 * Everything here uses raw syscalls wrappers only (open, posix_fallocate,
 * mmap) and no malloc: it runs in constructors, in fork child handlers and
 * underneath the allocator hooks.
 */
#include <errno.h>
#include <fcntl.h>
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

void *at_seg_map(const char *suffix, size_t size)
{
    char path[AT_PATH_MAX + 64];
    if (!at_shim.session[0] || seg_path(path, sizeof(path), suffix) < 0)
        return NULL;
    /* A file of the same name is ours from before an exec (same pid):
     * replace it rather than write into a stale mapping's file. */
    unlink(path);
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return NULL;
    void *addr = MAP_FAILED;
    /* Reserve the blocks now: a full disk must fail here, not as SIGBUS
     * in the middle of the target's work. */
    if (posix_fallocate(fd, 0, (off_t)size) == 0)
        addr = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (addr == MAP_FAILED) {
        unlink(path);
        return NULL;
    }
    return addr;
}

void at_seg_unmap(void *addr, size_t size)
{
    if (addr)
        munmap(addr, size);
}
