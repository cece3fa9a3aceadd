/* SPDX-License-Identifier: MIT */
/* memory_series.h - one process's memory over time: <pid>.memory.
 *
 * The run sampler reads, every AT_MEM_EVERY_NS, the shim's live counters
 * (bytes live in CPython's allocators, in libc malloc outside them) from
 * the head of <pid>.alloc, and the resident set from /proc/PID/statm:
 * nothing is added to the traced process's own work.  At most
 * AT_MEM_MAX_POINTS are kept: when full, each two neighbours become one
 * (the later time, the larger value of each series, so a peak survives)
 * and the interval doubles.
 *
 * On disk, text, tab-separated, ending with an "end" line:
 *     archtrace-memory 1
 *     pid 1234 / origin_ns N / interval_ns N / points N
 *     p T_NS PY_BYTES NATIVE_BYTES RSS_BYTES      (-1: not measured)
 *     end N
 */
#ifndef AT_MEMORY_SERIES_H
#define AT_MEMORY_SERIES_H
#include <stdint.h>
#include <sys/types.h>

#define AT_MEM_EVERY_NS   10000000ull   /* 10 ms                           */
#define AT_MEM_MAX_POINTS 4096

typedef struct at_mem_point {
    uint64_t t_ns;            /* CLOCK_MONOTONIC                           */
    int64_t py, native, rss;  /* bytes, -1 when not measured               */
} at_mem_point_t;

typedef struct at_mem_series {
    pid_t pid;
    uint64_t origin_ns;       /* the shim's start (times in the allocation
                                 report count from it), 0 when unknown    */
    uint64_t interval_ns;     /* between points (doubles when thinned)     */
    int n;
    at_mem_point_t p[AT_MEM_MAX_POINTS];
} at_mem_series_t;

/* Add a point taken at pt->t_ns, thinning the series when full. */
void at_mem_series_add(at_mem_series_t *s, const at_mem_point_t *pt);

/* Write <dir>/<key>.memory: 0 or -errno.  Read it back: 0, -ENOENT, or
 * -EBADMSG when corrupt. */
int at_mem_series_save(const at_mem_series_t *s, const char *dir, pid_t key);
int at_mem_series_load(const char *dir, pid_t key, at_mem_series_t *s);

/* The point where series k (0 py, 1 native, 2 rss) peaks; -1 when none
 * was measured. */
int at_mem_series_peak(const at_mem_series_t *s, int k);
int64_t at_mem_point_value(const at_mem_point_t *p, int k);
/* Seconds of point i since the shim started (the allocation report's
 * clock), or since the first point when that is not known. */
double at_mem_series_t_s(const at_mem_series_t *s, int i);

#endif
