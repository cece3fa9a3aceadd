/* SPDX-License-Identifier: MIT */
/* mem_poll.h - memory over time of one process of a `run`, from outside.
 *
 * Every AT_MEM_EVERY_NS the run sampler reads the shim's live counters
 * from the head of <pid>.alloc (the shim keeps them there, in a shared
 * mapping, for `top` too) and the resident set from /proc/PID/statm, and
 * adds a point to a session/memory_series.h series: the traced process
 * does no work for it.  The file descriptors stay open between reads.
 */
#ifndef AT_MEM_POLL_H
#define AT_MEM_POLL_H
#include <stdint.h>
#include <sys/types.h>

typedef struct at_mem_poll at_mem_poll_t;

/* A poller of process pid of the session in dir; NULL when out of memory. */
at_mem_poll_t *at_mem_poll_new(const char *dir, pid_t pid);
/* A point when one is due at now_ns (CLOCK_MONOTONIC). */
void at_mem_poll_tick(at_mem_poll_t *m, uint64_t now_ns);
/* Write <dir>/<key>.memory when any point was taken: 0 or -errno. */
int at_mem_poll_save(const at_mem_poll_t *m, const char *dir, pid_t key);
void at_mem_poll_free(at_mem_poll_t *m);

#endif
