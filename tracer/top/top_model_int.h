/* SPDX-License-Identifier: MIT */
/* top_model_int.h - what the model's files share: its struct and the per-thread and per-function counts.
 *
 * top_model.c samples (the sampler thread, counting under the lock)
 * and attaches; top_snapshot.c turns the counts into the UI's snapshot;
 * top_shim.c adds the panels read from the shim's files.  Not for use
 * outside top_model*.c, top_snapshot.c and top_shim.c. */
#ifndef AT_TOP_MODEL_INT_H
#define AT_TOP_MODEL_INT_H
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/types.h>

#include "remote/sampler.h"
#include "top/top.h"

#define TRACKED_THREADS   AT_TOP_MAX_THREADS
#define DECAY             0.8            /* per refresh: a ~5 s horizon     */
#define ATTACH_POLL_NS    50000000ull    /* retry attaching every 50 ms     */
#define PID_ATTACH_NS     2000000000ull  /* -p: wait for an interpreter     */
#define SEG_FALLBACK_NS   1000000000ull  /* COMMAND not Python: try its .seg children */
#define MAX_SHOWN         AT_TOP_MAX_PROCS   /* processes with a target kept */
#define EXEC_CHECK_NS     5000000ull     /* the root's <pid>.seg replaced?  */

/* Decayed sample counts of one function. */
typedef struct fn_count {
    double self;              /* samples with it innermost                 */
    double total;             /* samples with it anywhere on the stack     */
    uint64_t stamp;           /* last sample that counted its total        */
} fn_count_t;

/* Per-function counts, indexed by symbol id. */
typedef struct fn_table {
    fn_count_t *v;
    uint32_t n;
    double running;           /* decayed running samples                   */
} fn_table_t;

typedef struct thread_acc {
    uint32_t tid;             /* 0: free slot                              */
    uint64_t last_pass;       /* sampling pass that last saw it            */
    uint64_t samples;         /* this interval                             */
    uint64_t gil, idle;       /* ... holding the GIL, not running          */
    int gil_now;              /* at the last sample                        */
    at_frame_t leaf;          /* current function at the last sample       */
    int has_leaf;
    fn_table_t fns;           /* this thread's functions                   */
    uint64_t gil_hold_ns;     /* .gil reading at the last snapshot         */
    uint64_t gil_wait_ns;
    int gil_known;            /* the two above are set                     */
} thread_acc_t;

struct at_top_model {
    pthread_t thread;         /* the sampler                               */
    pthread_mutex_t lock;     /* everything below, but the constants       */
    atomic_int stop;
    pid_t pid;                /* the process asked for                     */
    pid_t sampled;            /* the process sampled (a .seg child maybe)  */
    pid_t home;               /* sampled unless the user picks another: the
                                 root, or (-p of a process that is not
                                 Python) its first Python descendant     */
    int root_not_python;      /* -p PID runs no Python itself             */
    int found_python;         /* ... and a descendant was sampled          */
    char dir[PATH_MAX];       /* session directory, "" for -p              */
    int started;              /* we launched it                            */
    double rate_hz;
    at_target_t *target;      /* NULL until attached                       */
    int attach_final;         /* gave up attaching                         */
    int attach_rc;            /* the last at_target_open error             */
    char attach_err[256];
    int gone;                 /* the sampled process exited                */
    uint64_t start_ns;        /* model start                               */
    uint64_t pass;            /* sampling passes                           */
    uint64_t interval_passes; /* ... since the last snapshot               */
    uint64_t stamp;           /* thread samples, for total-dedup           */
    uint32_t holder;          /* GIL holder at the last sample             */
    thread_acc_t threads[TRACKED_THREADS];
    fn_table_t all;           /* every thread's functions together         */
    uint64_t gil_read_ns;     /* when .gil was last read                   */
    at_top_snap_t last;       /* the previous snapshot's feature panels    */
    int no_poll;              /* --no-poll                                 */
    at_pace_t pace;           /* the sampler thread's; read after it ends  */
    pid_t want;               /* switch to this process (0: stay)          */
    pid_t refused;            /* the last pick that could not be sampled   */
    char switch_err[160];     /* why                                       */
    at_target_t *shown[MAX_SHOWN]; /* every target opened, current included */
    int nshown;
    ino_t seg_ino;            /* the sampled root's <pid>.seg when attached */
    uint64_t exec_check_ns;   /* when that was last looked at              */
    at_top_tree_t tree;       /* CPU readings of the tree (UI thread)      */
};

static inline double pct(double part, double whole)
{
    return whole > 0 ? 100.0 * part / whole : 0.0;
}

/* Copy, cut to n - 1 bytes (the view escapes and trims for display). */
static inline void copy_str(char *dst, size_t n, const char *src)
{
    size_t len = src ? strnlen(src, n - 1) : 0;
    if (len)
        memcpy(dst, src, len);
    dst[len] = '\0';
}

/* top_shim.c: exact GIL shares from the shim's live .gil reading */
void at_top_merge_gil(at_top_model_t *m, const void *gil, at_top_snap_t *s, uint64_t now, int peek);
/* top_shim.c: the allocation and import panels of the shim's files */
void at_top_snap_files(at_top_model_t *m, const at_top_query_t *q, at_top_snap_t *s);

#endif
