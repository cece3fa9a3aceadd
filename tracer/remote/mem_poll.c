/* SPDX-License-Identifier: MIT */
/* mem_poll.c - live bytes and RSS of a running process, every 10 ms (see mem_poll.h). */
#include "remote/mem_poll.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc_format.h"
#include "session/memory_series.h"
#include "session/session.h"

struct at_mem_poll {
    char alloc_path[4096];
    int alloc_fd;             /* <pid>.alloc, -1 until it exists           */
    int statm_fd;             /* /proc/PID/statm, -1 when gone             */
    long page;
    uint64_t next_ns;
    at_mem_series_t series;
};

at_mem_poll_t *at_mem_poll_new(const char *dir, pid_t pid)
{
    char path[64], stem[32];
    at_mem_poll_t *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    snprintf(m->alloc_path, sizeof m->alloc_path, "%s/%s.alloc", dir, at_key_name(pid, stem, sizeof stem));
    snprintf(path, sizeof path, "/proc/%d/statm", (int)pid);
    m->alloc_fd = -1;
    m->statm_fd = open(path, O_RDONLY | O_CLOEXEC);
    m->page = sysconf(_SC_PAGESIZE);
    m->series.pid = pid;
    return m;
}

void at_mem_poll_free(at_mem_poll_t *m)
{
    if (!m)
        return;
    if (m->alloc_fd >= 0)
        close(m->alloc_fd);
    if (m->statm_fd >= 0)
        close(m->statm_fd);
    free(m);
}

/* Resident bytes (statm's second field), -1 when unreadable. */
static int64_t rss(at_mem_poll_t *m)
{
    char buf[128];
    long size, resident;
    ssize_t n = m->statm_fd >= 0 ? pread(m->statm_fd, buf, sizeof buf - 1, 0) : -1;
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    /* a process that has exited (a zombie until reaped) has no pages */
    return sscanf(buf, "%ld %ld", &size, &resident) == 2 && size > 0 ? (int64_t)resident * m->page : -1;
}

/* The shim's live counters: Python (its allocators, raw domain included)
 * and native bytes; -1 each until the shim's file is there and valid. */
static void live(at_mem_poll_t *m, int64_t *py, int64_t *native)
{
    at_alloc_header_t h;
    *py = *native = -1;
    if (m->alloc_fd < 0)
        m->alloc_fd = open(m->alloc_path, O_RDONLY | O_CLOEXEC);
    if (m->alloc_fd < 0 || pread(m->alloc_fd, &h, sizeof h, 0) != (ssize_t)sizeof h || h.magic != AT_ALLOC_MAGIC)
        return;
    if (!m->series.origin_ns)
        m->series.origin_ns = h.start_ns;
    *py = h.py_live + h.raw_live >= 0 ? h.py_live + h.raw_live : 0;
    *native = h.native_live >= 0 ? h.native_live : 0;
}

void at_mem_poll_tick(at_mem_poll_t *m, uint64_t now_ns)
{
    /* the series' interval: 10 ms, longer once thinned (no point taken
     * only to be merged away); a tick up to half of it early counts, so
     * the sampler's own ticks at that period are not every other one */
    uint64_t every = m->series.interval_ns ? m->series.interval_ns : AT_MEM_EVERY_NS;
    if (now_ns + every / 2 < m->next_ns)
        return;
    m->next_ns = now_ns + every;
    at_mem_point_t pt = { .t_ns = now_ns, .rss = rss(m) };
    live(m, &pt.py, &pt.native);
    if (pt.rss < 0)
        return;   /* gone: nothing to add */
    at_mem_series_add(&m->series, &pt);
}

int at_mem_poll_save(const at_mem_poll_t *m, const char *dir, pid_t key)
{
    return m->series.n ? at_mem_series_save(&m->series, dir, key) : 0;
}
