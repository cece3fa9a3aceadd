/* SPDX-License-Identifier: MIT */
/* watch.h - the CPython processes of the host, found and attached.
 *
 * Every scan reads /proc once (remote/proc_tree.c).  A process not seen
 * before is offered to the eBPF backend (bpf/ebpf.h), which checks that
 * it is CPython (either build shape) and attaches its probes without
 * stopping it, on the attacher's threads (attacher.h), to the host's
 * probes (one set per CPython binary, at_bpf_host_t); the results are
 * taken in at the next scan.  One that is not Python is remembered by
 * (pid, start time) and looked at again only if its name changes (a fork
 * that exec's Python), and one whose interpreter is still starting is
 * tried again at the next scan.  A watched process that exits is handed
 * to the caller one last time (its final profile), then detached (on the
 * attacher too) and forgotten.
 */
#ifndef AT_AGENT_WATCH_H
#define AT_AGENT_WATCH_H
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "agent/attacher.h"
#include "bpf/ebpf.h"
#include "cli/options.h"

/* Why a Python process could not be watched, counted for the metrics. */
enum at_watch_refusal {
    AT_REFUSED_UNSUPPORTED = 0,   /* a Python archtrace does not read      */
    AT_REFUSED_PERMISSION,        /* not permitted                         */
    AT_REFUSED_EBPF,              /* the kernel refused BPF                */
    AT_REFUSED_OTHER,
    AT_REFUSALS
};
extern const char *const at_watch_refusal_names[AT_REFUSALS];

typedef struct at_watched {
    pid_t pid;
    uint64_t starttime;           /* with pid, names one process           */
    at_bpf_t *bpf;                /* its probes                            */
    char dir[PATH_MAX];           /* its work directory (the probes' session) */
    uint64_t interval_ns;         /* CLOCK_MONOTONIC start of its profile  */
    uint64_t interval_real_s;     /* ... as UNIX time                      */
} at_watched_t;

typedef struct at_skipped {
    pid_t pid;
    uint64_t starttime;
    char comm[32];                /* looked at again when this changes     */
    int retry;                    /* interpreter still starting            */
    int in_flight;                /* an attach is on the attacher          */
} at_skipped_t;

typedef struct at_watch {
    const at_options_t *o;
    char workdir[PATH_MAX - 64];  /* private: one directory per process    */
    at_watched_t *procs;
    size_t n, cap;
    at_skipped_t *skipped;
    size_t nskipped, skipcap;
    uint64_t attached_total;      /* processes attached since start        */
    uint64_t exited_total;        /* ... that exited                       */
    uint64_t refused[AT_REFUSALS];
    int quiet;                    /* no line per process on stderr         */
    at_bpf_host_t *host;          /* the probes, shared by the processes   */
    at_attacher_t attacher;
    int pending;                  /* attaches on the attacher              */
} at_watch_t;

/* A private work directory under $TMPDIR, the attacher's threads.  0 or
 * -errno. */
int at_watch_init(at_watch_t *w, const at_options_t *o);

/* Find new CPython processes and attach to them. */
void at_watch_scan(at_watch_t *w);

/* Called with a watched process that exited, before it is detached. */
typedef void (*at_watch_gone_fn)(void *ctx, at_watched_t *p);

/* Consume every process's events; exited ones go to gone, then away. */
void at_watch_poll(at_watch_t *w, at_watch_gone_fn gone, void *ctx);

/* Detach everything (gone is called for each first), wait for the
 * detaches, and remove the work directory. */
void at_watch_end(at_watch_t *w, at_watch_gone_fn gone, void *ctx);

#endif
