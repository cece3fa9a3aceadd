/* SPDX-License-Identifier: MIT */
/* top.h - `archtrace top`: a live view of one Python process.
 *
 * Work is split four ways:
 *   top_model.c  gathers the numbers: a sampler thread (sampler.h) counts
 *                per-thread GIL/idle samples and functions; each refresh
 *                reads the shim's live feature files (<pid>.gil, .alloc,
 *                .imports) with the report's readers, and the GC counters
 *                from the interpreter.  The result is an at_top_snap_t:
 *                plain copies, nothing pointing into the model.
 *   top_procs.c  the process tree under the root (multiprocessing workers)
 *                from /proc, with each one's CPU share; the model samples
 *                one process of it at a time (the one the user picks).
 *   top_view.c   draws a snapshot: a full screen of plain ANSI on a
 *                terminal, or one log line when stdout is not one.
 *   top.c        the command: starts COMMAND (like run) or opens -p PID,
 *                owns the terminal (raw mode, keys, restore on exit or
 *                signal) and the refresh loop.
 * Strings in a snapshot are as the target gave them: the view escapes
 * every one of them before it reaches the terminal.
 */
#ifndef AT_TOP_H
#define AT_TOP_H
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "cli/options.h"

#define AT_TOP_MAX_THREADS  64   /* thread rows kept in a snapshot          */
#define AT_TOP_MAX_FUNCS    24   /* function rows                           */
#define AT_TOP_MAX_SITES    12   /* allocation rows                         */
#define AT_TOP_MAX_IMPORTS  12   /* import rows                             */
#define AT_TOP_NAME         160  /* bytes kept of a name or file            */
#define AT_TOP_GC_GENS      3
#define AT_TOP_MAX_LOOPS    4     /* asyncio event loops shown             */
#define AT_TOP_MAX_PROCS    16   /* processes of the tree listed            */

/* What `s` cycles through. */
typedef enum at_top_sort {
    AT_TOP_SORT_SELF = 0,   /* functions by self samples, sites by live bytes */
    AT_TOP_SORT_TOTAL,      /* functions by total, sites by bytes allocated   */
    AT_TOP_SORT_GIL,        /* threads by GIL held, functions by self         */
    AT_TOP_SORT_COUNT
} at_top_sort_t;

/* What the view asks of the model for one snapshot. */
typedef struct at_top_query {
    at_top_sort_t sort;     /* table order                                  */
    uint32_t thread;        /* functions of this tid only; 0 = all threads  */
    int peek;               /* redraw for a key: the interval goes on       */
    pid_t process;          /* show this process of the tree; 0 = the root  */
} at_top_query_t;

/* Where a number comes from: the shim's exact accounting, the sampler's
 * estimate, or nowhere. */
typedef enum at_top_source {
    AT_TOP_SRC_NONE = 0,
    AT_TOP_SRC_SHIM,
    AT_TOP_SRC_SAMPLES,
} at_top_source_t;

typedef struct at_top_thread {
    uint32_t tid;                 /* OS thread id                            */
    char name[48];                /* threading name from the shim, or ""     */
    int main;                     /* the thread that runs __main__           */
    int gil_now;                  /* held the GIL at the last sample         */
    double held_pct;              /* of the last interval; < 0 unknown       */
    double wait_pct;              /* blocked waiting for the GIL; < 0 unknown */
    double idle_pct;              /* not running and not waiting; < 0 unknown */
    char func[AT_TOP_NAME];       /* current Python function, "" none        */
    char file[AT_TOP_NAME];       /* its file                                */
    int line;                     /* its line, -1 unknown                    */
} at_top_thread_t;

typedef struct at_top_func {
    char func[AT_TOP_NAME];       /* qualname                                */
    char file[AT_TOP_NAME];       /* co_filename                             */
    double self_pct, total_pct;   /* of the running samples (decayed)        */
} at_top_func_t;

typedef struct at_top_site {
    char file[AT_TOP_NAME];       /* where, as tracemalloc names it          */
    int line;
    char func[AT_TOP_NAME];
    int64_t live_bytes;           /* allocated here, not freed               */
    uint64_t total_bytes;         /* ever allocated here                     */
} at_top_site_t;

typedef struct at_top_import {
    char module[AT_TOP_NAME];     /* absolute module name                    */
    char finder[64];              /* meta path finder that found it          */
    char path_finder[64];         /* path entry finder, "" when none         */
    double cumulative_us;         /* < 0 while still importing               */
    int failed;                   /* raised (no module)                      */
} at_top_import_t;

/* A process of the tree under the one top was asked for (its workers). */
typedef struct at_top_proc {
    pid_t pid, ppid;
    char comm[32];                /* /proc comm, as the process set it       */
    double cpu_pct;               /* of one CPU since the last refresh; < 0 unknown */
} at_top_proc_t;

typedef struct at_top_snap {
    pid_t pid;                    /* the process shown                       */
    char comm[32];
    char version[24];             /* "3.11.7", "" before attaching           */
    char build[8];                /* "static" / "shared"                     */
    int started;                  /* we started it (-- COMMAND)              */
    int attached;                 /* the sampler reads its interpreter       */
    int exited;                   /* it is gone                              */
    int exit_status;              /* when exited and we started it           */
    char status[160];             /* why not attached / gone, "" otherwise   */
    double uptime_s;              /* since top started it / attached         */
    double rate_hz;               /* sampling rate                           */
    uint64_t samples;             /* sampling passes so far                  */
    uint64_t interval_samples;    /* in the last interval                    */
    at_top_source_t gil_source;   /* where held/wait come from               */
    uint32_t gil_holder;          /* tid holding the GIL at the last sample  */
    int nthreads;
    at_top_thread_t threads[AT_TOP_MAX_THREADS];
    uint32_t thread_filter;       /* the query's filter (0: all)             */
    at_top_sort_t sort;
    int nfuncs;
    at_top_func_t funcs[AT_TOP_MAX_FUNCS];
    int have_alloc;               /* the shim's <pid>.alloc was readable     */
    int64_t alloc_live, alloc_peak;   /* Python memory now and at the peak   */
    uint64_t alloc_total;         /* ever allocated (Python domains)         */
    int nsites;
    at_top_site_t sites[AT_TOP_MAX_SITES];
    int have_imports;             /* <pid>.imports was readable              */
    uint32_t import_count;
    int nimports;                 /* newest first                            */
    at_top_import_t imports[AT_TOP_MAX_IMPORTS];
    int have_gc;                  /* GC counters read from the interpreter   */
    uint64_t gc_runs[AT_TOP_GC_GENS];  /* collections per generation         */
    uint64_t gc_collected;        /* objects collected, all generations      */
    int nloops;                   /* asyncio event loops with tasks (0: none,
                                     or asyncio not imported)               */
    struct { uint64_t loop; int tasks, pending; } loops[AT_TOP_MAX_LOOPS];
    int loops_more;               /* loops past AT_TOP_MAX_LOOPS             */
    int py_tasks;                 /* pure-Python tasks, counted, not by loop */
    int nprocs;                   /* the tree, root first (1: no children)   */
    at_top_proc_t procs[AT_TOP_MAX_PROCS];
    char last_output[160];        /* last line COMMAND printed (screen mode) */
    int stopping;                 /* we sent the command SIGINT, waiting     */
} at_top_snap_t;

/* ---- the model (top_model.c) --------------------------------------------- */

typedef struct at_top_model at_top_model_t;

/* Start sampling pid (started: we launched it, session_dir holds the
 * shim's files; NULL for -p).  The sampler retries until the interpreter
 * is up.  NULL + errno on failure to start. */
at_top_model_t *at_top_model_start(pid_t pid, const char *session_dir, int started,
                                   const at_options_t *o);

/* Fill snap from what was gathered since the last call, and start a new
 * interval (unless q->peek: then the interval goes on). */
void at_top_model_snapshot(at_top_model_t *m, const at_top_query_t *q, at_top_snap_t *snap);

/* -p PID: 0 once attached, the AT_EXIT_* status (and the reason in err)
 * when the process cannot be sampled, -1 while still trying. */
int at_top_model_attach_status(at_top_model_t *m, char *err, size_t errlen);

/* Stop sampling; with dir, write <dir>/<pid>.stacks for `report` (each
 * process that was shown). */
void at_top_model_stop(at_top_model_t *m, const char *dir);

/* ---- the process tree (top_procs.c) -------------------------------------- */

typedef struct at_top_cpu_seen {
    pid_t pid;
    uint64_t ticks;               /* utime + stime at the last look          */
    uint64_t at_ns;
} at_top_cpu_seen_t;

typedef struct at_top_tree {
    at_top_cpu_seen_t seen[AT_TOP_MAX_PROCS];
    int nseen;
} at_top_tree_t;

/* root and its live descendants, breadth first, at most cap, each with
 * its CPU share since the previous call (that saw it).  Returns how many
 * (0 when root is gone). */
int at_top_tree_list(at_top_tree_t *tree, pid_t root, at_top_proc_t *out, int cap);

/* The pid after `current` in procs[0..n) (wrapping), or procs[0]. */
pid_t at_top_tree_next(const at_top_proc_t *procs, int n, pid_t current);

/* ---- the view (top_view.c) ----------------------------------------------- */

/* One full screen of rows x cols at the top-left, then clear the rest.
 * paused: say so in the header. */
void at_top_view_screen(FILE *out, const at_top_snap_t *s, int rows, int cols, int color, int paused);

/* One line, for a log (stdout not a terminal). */
void at_top_view_line(FILE *out, const at_top_snap_t *s);

/* The tids in the order the screen lists them (for `t`). */
int at_top_view_thread_order(const at_top_snap_t *s, uint32_t *tids, int cap);

int at_cmd_top(const at_options_t *o);

#endif
