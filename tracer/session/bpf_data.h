/* SPDX-License-Identifier: MIT */
/* bpf_data.h - what an eBPF recording holds, and its file <session>/<pid>.bpf.
 *
 * bpf/ fills an at_bpf_data_t while it records and saves it; the session
 * model and the report read it back (bpf_data.c says the file's format).
 */
#ifndef AT_BPF_DATA_H
#define AT_BPF_DATA_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../../probes/archtrace_bpf.h" /* probes/ is not on the include path */

enum at_bpf_view {
    AT_BPF_VIEW_GIL = 0,
    AT_BPF_VIEW_IMPORTS,
    AT_BPF_VIEW_GC,
    AT_BPF_VIEW_SAMPLES,
    AT_BPF_VIEWS
};

#define AT_BPF_MAX_IMPORTS    16384    /* import records kept              */
#define AT_BPF_MAX_GC         8192     /* collection records kept          */
#define AT_BPF_MAX_STACKS     65536    /* distinct stacks kept             */
#define AT_BPF_HOW_MAX        160      /* bytes of a view's description    */

typedef struct at_bpf_gil_row {
    uint32_t tid;                      /* OS thread id                     */
    uint32_t open;                     /* was waiting when recording ended */
    uint64_t wait_ns;                  /* time blocked in take_gil         */
    uint64_t waits;                    /* take_gil calls that waited       */
    uint64_t calls;                    /* pthread_cond_timedwait returns   */
    uint64_t timeouts;                 /* timed out: asked for a drop      */
    uint64_t max_wait_ns;              /* longest wait                     */
} at_bpf_gil_row_t;

typedef struct at_bpf_import_row {
    uint32_t tid;                      /* importing thread                 */
    uint32_t depth;                    /* enclosing imports                */
    int32_t found;                     /* 1 a module came back             */
    uint64_t start_ns, end_ns;         /* CLOCK_MONOTONIC                  */
    uint64_t self_ns;                  /* minus the nested imports (load)  */
    char name[AT_BPF_NAME_MAX];        /* absolute module name             */
} at_bpf_import_row_t;

typedef struct at_bpf_gc_row {
    uint32_t tid;
    int32_t generation;
    uint64_t start_ns, end_ns;
    int64_t collected;
} at_bpf_gc_row_t;

typedef struct at_bpf_stack_row {
    uint32_t tid;                      /* sampled thread                   */
    uint32_t gil;                      /* it held the GIL                  */
    uint64_t count;                    /* samples                          */
    int nframes;                       /* frames[0..n), root first         */
    char **frames;                     /* "func (file:line)" labels        */
} at_bpf_stack_row_t;

typedef struct at_bpf_data {
    pid_t pid;                         /* the process                      */
    char comm[32];                     /* its /proc comm                   */
    char version[24];                  /* "3.11.2"                         */
    char build[8];                     /* "static" / "shared"              */
    uint64_t attach_ns, end_ns;        /* attached, detached or exited     */
    int exited;                        /* the target exited while attached */
    double rate_hz;                    /* sampling rate asked for          */
    int avail[AT_BPF_VIEWS];           /* view was recorded                */
    char how[AT_BPF_VIEWS][AT_BPF_HOW_MAX]; /* how, or "unavailable: why" */
    uint64_t stats[AT_BPF_ST_COUNT];   /* probe-side counters              */
    at_bpf_gil_row_t *gil;             /* per thread                       */
    size_t ngil;
    at_bpf_import_row_t *imports;      /* in start order after load        */
    size_t nimports;
    uint64_t imports_dropped;          /* past AT_BPF_MAX_IMPORTS          */
    struct at_bpf_gc_stat gc[AT_BPF_GC_SLOTS]; /* totals by generation     */
    at_bpf_gc_row_t *gcs;              /* individual collections           */
    size_t ngc;
    uint64_t gc_dropped;
    at_bpf_stack_row_t *stacks;        /* aggregated samples               */
    size_t nstacks;
    uint64_t oncpu_ns;                 /* sampled threads' CPU time between */
    uint64_t oncpu_intervals;          /* their first and last samples, and */
                                       /* the samples in it (rate per CPU-s) */
    uint64_t samples;                  /* samples received                 */
    uint64_t samples_py;               /* of which had Python frames       */
    uint64_t stacks_dropped;           /* past AT_BPF_MAX_STACKS           */
} at_bpf_data_t;

extern const char *const at_bpf_view_names[AT_BPF_VIEWS];
extern const char *const at_bpf_stat_names[AT_BPF_ST_COUNT];

void at_bpf_data_free(at_bpf_data_t *d);
/* Append records (bounded: past the caps they are counted as dropped). */
int at_bpf_data_add_import(at_bpf_data_t *d, const struct at_bpf_import_ev *e);
int at_bpf_data_add_gc(at_bpf_data_t *d, const struct at_bpf_gc_ev *e);
int at_bpf_data_add_gil(at_bpf_data_t *d, const at_bpf_gil_row_t *r);
/* Sort imports by start and compute self times (after adding all). */
void at_bpf_data_finish(at_bpf_data_t *d);
/* Write <dir>/<pid>.bpf.  0 or -errno. */
int at_bpf_data_save(const at_bpf_data_t *d, const char *dir);
/* Read <dir>/<pid>.bpf.  0, -ENOENT, or -EBADMSG with the reason in err. */
int at_bpf_data_load(const char *dir, pid_t pid, at_bpf_data_t *d, char *err, size_t errlen);
/* The same for a reader of the session: a damaged file is named in one
 * line on stderr ("archtrace: DIR/KEY.bpf: why"); -ENOENT stays silent. */
int at_bpf_data_read(const char *dir, pid_t pid, at_bpf_data_t *d);

#endif
