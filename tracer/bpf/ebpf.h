/* SPDX-License-Identifier: MIT */
/* ebpf.h - the eBPF backend: attach probes to a running CPython 3.11 to 3.13, record, report.
 *
 * `archtrace -p PID record --bpf` measures a process that was not started
 * under archtrace.  at_bpf_start finds the interpreter (py_proc), opens
 * the skeleton of probes/archtrace.bpf.c, sets its read-only data (the
 * pid, and what to read in the target: the addresses of _PyRuntime and
 * the GIL, the offsets of its CPython version), loads it and attaches,
 * each probe to that process
 * only: the GIL on libc's pthread_cond_timedwait, imports and GC on the
 * interpreter's USDT notes or, without them, on uprobes of functions the
 * interpreter has, and a per-CPU perf_event sampler.  at_bpf_poll
 * consumes the ring buffer (Python stacks are named here, while the code
 * objects are alive); at_bpf_stop detaches and writes <session>/<pid>.bpf
 * (and <pid>.stacks when no sampler wrote one, so every stack format
 * works).  session/bpf_data.h holds what a recording is and reads it back.
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
#include "cli/options.h"
#include "pylayout.h"
#include "session/bpf_data.h"

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

/* ---- every CPython of the host (archtrace agent) -------------------------
 * One probe set (skeleton, uprobes, ring buffer) per distinct CPython
 * file (executable or libpython, by device and inode) and libc, its
 * uprobes attached once for every process (pid -1): the first process
 * of a binary waits for them (~0.5 s a uprobe, the kernel's time), the
 * next ones are an entry in the probes' map of watched processes, and a
 * set goes with its last process.  Starts and stops may run on several
 * threads at once; at_bpf_host_poll on one (the events of every set, to
 * their processes).  The processes' at_bpf_poll then only looks for
 * their exit, and at_bpf_live, at_bpf_cut_stacks and at_bpf_stop work
 * as for one process. */
typedef struct at_bpf_host at_bpf_host_t;

at_bpf_host_t *at_bpf_host_new(void);

/* at_bpf_start on the host's probes. */
at_bpf_t *at_bpf_host_start(at_bpf_host_t *h, pid_t pid, const char *session_dir, const at_options_t *o,
                            char *why, size_t why_size);

/* Consume every set's ring buffer (no wait).  Events consumed. */
int at_bpf_host_poll(at_bpf_host_t *h);

/* Probe sets attached now. */
int at_bpf_host_sets(at_bpf_host_t *h);

/* From now on keep h's sets when their last process stops, until
 * at_bpf_host_free: for a recording that ends (record --bpf
 * --subprocesses), where the next process of a binary should not wait
 * for its uprobes again, nor the recording's loop for their removal
 * (both ~0.5 s a uprobe) while a short-lived child comes and goes. */
void at_bpf_host_keep_sets(at_bpf_host_t *h);

/* Free h and the sets it kept; every process started on it stopped
 * first. */
void at_bpf_host_free(at_bpf_host_t *h);

/* ---- live readings, for a recording that never ends (archtrace agent) -- */

#define AT_BPF_LIVE_THREADS 256        /* threads read per process         */

typedef struct at_bpf_live {
    const at_bpf_data_t *data;         /* identity, views, imports, samples */
    uint64_t stats[AT_BPF_ST_COUNT];   /* probe-side counters now          */
    struct at_bpf_gc_stat gc[AT_BPF_GC_SLOTS]; /* collections by generation */
    at_bpf_gil_row_t gil[AT_BPF_LIVE_THREADS]; /* waits so far, per thread  */
    size_t ngil;
    const struct at_thread_names *names; /* threading names (NULL: none)    */
} at_bpf_live_t;

/* What the probes have counted so far, the process still attached: the
 * GIL waits per thread (a wait in progress counted, to now), GC totals
 * and the probes' own counters.  Valid until the next call on b. */
void at_bpf_live(at_bpf_t *b, at_bpf_live_t *out);

/* Write the samples taken since the last cut as <dir>/<pid>.stacks (no
 * file when there were none) and start afresh: one profile per interval.
 * The number of samples, or -errno. */
int at_bpf_cut_stacks(at_bpf_t *b, const char *dir);

/* Who b watches and what it recorded so far (imports, samples). */
const at_bpf_data_t *at_bpf_data(const at_bpf_t *b);

/* ======================================================================
 * Internal to tracer/bpf/.
 * ====================================================================== */

/* ---- bpf_elf.c: symbols, USDT notes, mapped libraries ----------------- */

#define AT_BPF_USDT_SITES 8            /* call sites listed per USDT probe */

/* Where a USDT probe is, for planning (libbpf attaches it). */
typedef struct at_bpf_usdt {
    int nsites;                        /* sites found (<= AT_BPF_USDT_SITES) */
    uint64_t off[AT_BPF_USDT_SITES];   /* file offsets of the probe sites  */
    uint64_t sema_off;                 /* file offset of the semaphore, 0  */
} at_bpf_usdt_t;

/* File offset of function `name` in the ELF file at path (.symtab first,
 * then .dynsym; the default version of a versioned symbol).  0, -ENOENT
 * when the file has no such function, other -errno. */
int at_bpf_elf_func(const char *path, const char *name, uint64_t *file_off);

/* The sites of USDT probe provider:name in path.  0, or -ENOENT (no
 * such note). */
int at_bpf_elf_usdt(const char *path, const char *provider, const char *name, at_bpf_usdt_t *u);

/* "/proc/PID/root<path>" of the first file mapped by pid whose base name
 * starts with `prefix` (e.g. "libc.so"); 0 or -ENOENT / -ESRCH. */
int at_bpf_mapped_lib(pid_t pid, const char *prefix, char *out, size_t n);

/* ---- bpf_layout.c: the target's CPython for the probes ------------------ */

struct at_py_proc;

/* struct at_bpf_py (the probes' .rodata) from layout L, and struct
 * at_bpf_proc (the process's entry in their procs map, slot 0) from
 * &_PyRuntime and the GIL in use.  0, or -EPROTO when a field is missing
 * or an offset lies where the probes cannot read it (no BPF is loaded
 * then). */
int at_bpf_layout_fill(const at_pylayout_t *L, uint64_t runtime, uint64_t gil, struct at_bpf_py *py,
                       struct at_bpf_proc *proc);

/* The struct _gil_runtime_state the main interpreter uses: in _PyRuntime
 * (3.11), else its interp->ceval.gil, read from the target and checked
 * to be its own.  0, -EAGAIN (no interpreter or GIL yet), -EPROTO, or a
 * read's -errno. */
int at_bpf_layout_gil(struct at_py_proc *p, uint64_t *gil);

/* ---- bpf_tracefs.c ----------------------------------------------------- */

/* Make sure uprobes can be created: with the uprobe PMU nothing is
 * needed; otherwise mount tracefs at /sys/kernel/tracing when absent.
 * 0, or -errno with the reason in why. */
int at_bpf_tracefs_ensure(char *why, size_t why_size);

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
