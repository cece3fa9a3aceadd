/* SPDX-License-Identifier: MIT */
/* ebpf.h - the eBPF backend: attach probes to a running CPython 3.11, record, report.
 *
 * `archtrace -p PID record --bpf` measures a process that was not started
 * under archtrace.  at_bpf_start finds the interpreter (py_proc), opens
 * the skeleton of probes/archtrace.bpf.c, sets its read-only data (the
 * pid, &_PyRuntime), loads it and attaches, each probe to that process
 * only: the GIL on libc's pthread_cond_timedwait, imports and GC on the
 * interpreter's USDT notes or, without them, on uprobes of functions the
 * interpreter has, and a per-CPU perf_event sampler.  at_bpf_poll
 * consumes the ring buffer (Python stacks are named here, while the code
 * objects are alive); at_bpf_stop detaches and writes <session>/<pid>.bpf
 * (and <pid>.stacks when no sampler wrote one, so every stack format
 * works).  The report functions read <pid>.bpf back.
 *
 * Where the kernel refuses BPF, at_bpf_start returns NULL with one
 * lowercase line in `why` and libbpf stays quiet (its messages go to
 * stderr only with ARCHTRACE_DEBUG set).  Views that cannot be attached
 * (no USDT notes and no symbol to fall back on) are recorded as
 * "unavailable: <reason>" and the others still run.
 */
#ifndef AT_EBPF_H
#define AT_EBPF_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "../../probes/archtrace_bpf.h" /* probes/ is not on the include path */
#include "json.h"
#include "cli/options.h"

typedef struct at_bpf at_bpf_t;

/* Attach every probe to pid (GIL, imports, GC, and the sampler at
 * o->rate_hz unless o->no_sample; o->no_gil / o->no_imports leave those
 * out).  NULL + errno with a one-line reason in why, e.g. "eBPF
 * unavailable: operation not permitted (run as root)"; the reason starts
 * with "eBPF unavailable" exactly when the kernel refused BPF itself. */
at_bpf_t *at_bpf_start(pid_t pid, const char *session_dir, const at_options_t *o, char *why,
                       size_t why_size);

/* Wait up to timeout_ms (at most 250 ms; the probes do not wake us per
 * event, so this is the latency of the data), then consume the ring
 * buffer.  Events consumed (>= 0), or -ESRCH once the target has exited
 * (after draining what it left; it returns early then), other -errno. */
int at_bpf_poll(at_bpf_t *b, int timeout_ms);

/* Detach, write <session>/<pid>.bpf (and <pid>.stacks if absent), free.
 * 0 or -errno (the files could not be written).  NULL is accepted. */
int at_bpf_stop(at_bpf_t *b);

/* Report functions (see report_features.h): 0, or -ENOENT when there is
 * no <pid>.bpf (nothing written), or -EBADMSG with one line on stderr. */
int at_bpf_report_text(const char *dir, pid_t pid, FILE *out, const at_options_t *o);
/* The VALUE of the process's "bpf" key:
 *   {"attached_ns", "probes": {"gil": "...", ...}, "unavailable": [...],
 *    "gil": {"threads": [{"tid","wait_ns","waits","calls","timeouts",
 *            "max_wait_ns","wait_fraction"}], "wait_ratio"},
 *    "imports": [{"module","cumulative_us","self_us","tid","depth","found",
 *            "start_ns"}],
 *    "gc": {"runs","total_us","collected","by_generation":[...]},
 *    "stacks": {"rate_hz","samples","lost","top":[{"thread","gil","frames","count"}]},
 *    "dropped": {...}} */
int at_bpf_report_json(const char *dir, pid_t pid, at_json_t *j, const at_options_t *o);
/* Imports and collections as Chrome "X" events, appended to an open
 * traceEvents array. */
int at_bpf_chrome(const char *dir, pid_t pid, at_json_t *j, const at_options_t *o);

/* ======================================================================
 * Internal to tracer/bpf_*.c and tracer/report_bpf.c.
 * ====================================================================== */

/* ---- bpf_elf.c: symbols, USDT notes, mapped libraries ----------------- */

#define AT_BPF_USDT_SITES 8            /* call sites kept per USDT probe   */

typedef struct at_bpf_usdt {
    int nsites;                        /* sites found (<= AT_BPF_USDT_SITES) */
    uint64_t off[AT_BPF_USDT_SITES];   /* file offsets of the probe sites  */
    uint64_t sema_off;                 /* file offset of the semaphore, 0  */
    uint64_t cookie[AT_BPF_USDT_SITES];/* arg words (low: arg 0, high: 1)  */
} at_bpf_usdt_t;

/* File offset of function `name` in the ELF file at path (.symtab first,
 * then .dynsym; the default version of a versioned symbol).  0, -ENOENT
 * when the file has no such function, other -errno. */
int at_bpf_elf_func(const char *path, const char *name, uint64_t *file_off);

/* The sites of USDT probe provider:name in path.  0, -ENOENT (no such
 * note), -ENOTSUP (an argument in a form we do not decode). */
int at_bpf_elf_usdt(const char *path, const char *provider, const char *name, at_bpf_usdt_t *u);

/* Decode one stapsdt argument ("-4@112(%rsp)") into an AT_BPF_ARG_* word.
 * 0 or -EINVAL. */
int at_bpf_usdt_arg(const char *spec, uint32_t *word);

/* "/proc/PID/root<path>" of the first file mapped by pid whose base name
 * starts with `prefix` (e.g. "libc.so"); 0 or -ENOENT / -ESRCH. */
int at_bpf_mapped_lib(pid_t pid, const char *prefix, char *out, size_t n);

/* ---- bpf_tracefs.c ----------------------------------------------------- */

/* Make sure uprobes can be created: with the uprobe PMU nothing is
 * needed; otherwise mount tracefs at /sys/kernel/tracing when absent.
 * 0, or -errno with the reason in why. */
int at_bpf_tracefs_ensure(char *why, size_t why_size);

/* ---- bpf_data.c: what a recording holds, and <pid>.bpf ---------------- */

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

/* ---- bpf_sym.c: name the Python frames of samples ---------------------- */

struct at_py_proc;
struct at_stacks;
typedef struct at_bpf_sym at_bpf_sym_t;

at_bpf_sym_t *at_bpf_sym_new(struct at_py_proc *proc, struct at_stacks *stacks);
void at_bpf_sym_free(at_bpf_sym_t *s);
/* Start a new batch: code objects are re-validated on their next use. */
void at_bpf_sym_epoch(at_bpf_sym_t *s);
/* Count one sample into the stacks.  1 when it had Python frames, 0
 * when not, -errno (-ENOSPC: too many distinct stacks). */
int at_bpf_sym_sample(at_bpf_sym_t *s, const struct at_bpf_sample_ev *e);

#endif
