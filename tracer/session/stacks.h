/* SPDX-License-Identifier: MIT */
/* stacks.h - sampled stacks: symbols, aggregation, <pid>.stacks, reports, the run sampler.
 *
 * Work is split so the hot path stays small: the walkers turn remote
 * addresses into symbol ids (at_symtab_t, one per process) and lines; a
 * sample is then a short array of (symbol, line) pairs that at_stacks_add
 * counts in a hash table.  Strings are only touched when a new code object
 * or native address is first seen, and when the session is written.
 *
 * On disk, <session>/<pid>.stacks is line-oriented text, fields separated
 * by tabs, strings escaped (\\ \t \n \r \xHH), ending with an "end" line
 * so a truncated file is recognised:
 *     archtrace-stacks 1
 *     pid 1234 / comm python3.11 / version 3.11.7 / build shared
 *     rate_hz 100 / samples N / missed N / duration_s 2.5 / idle_included 1
 *     sym ID KIND FUNC FILE [START]    KIND: py, native, mark, task;
 *                                      START: a Python function's first line
 *     stack COUNT TID IDLE GIL SYM:LINE,SYM:LINE,...   (root first;
 *         GIL: AT_STACK_GIL_*)
 *     end NSYMS NSTACKS
 */
#ifndef AT_STACKS_H
#define AT_STACKS_H
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "session/thread_names.h"

/* ---- symbols: (kind, function, file) interned to small ids ------------ */

enum at_sym_kind {
    AT_SYM_PY = 0,      /* a Python function: qualname, co_filename       */
    AT_SYM_NATIVE = 1,  /* a native function: symbol, module              */
    AT_SYM_MARK = 2,    /* a marker such as "[truncated]"                 */
    AT_SYM_TASK = 3,    /* an asyncio task, "task NAME", at a stack's root
                         * (record/run --asyncio)                         */
};

#define AT_SYM_NONE UINT32_MAX

typedef struct at_symtab at_symtab_t;

at_symtab_t *at_symtab_new(void);
void at_symtab_free(at_symtab_t *t);
/* The id of (kind, func, file), adding it when new; AT_SYM_NONE when out
 * of memory or past the table's bound. */
uint32_t at_symtab_intern(at_symtab_t *t, int kind, const char *func, const char *file);
uint32_t at_symtab_count(const at_symtab_t *t);
/* A Python function's first line (co_firstlineno: pprof's start_line);
 * 0 when not known. */
void at_symtab_set_start_line(at_symtab_t *t, uint32_t id, int32_t line);
int32_t at_symtab_start_line(const at_symtab_t *t, uint32_t id);
const char *at_symtab_func(const at_symtab_t *t, uint32_t id);
const char *at_symtab_file(const at_symtab_t *t, uint32_t id);
int at_symtab_kind(const at_symtab_t *t, uint32_t id);
/* The name of the asyncio task symbol id ("heavy" of "task heavy"), or
 * NULL when id is not an AT_SYM_TASK. */
const char *at_symtab_task_name(const at_symtab_t *t, uint32_t id);

/* ---- one process's aggregated samples --------------------------------- */

typedef struct at_frame {
    uint32_t sym;        /* at_symtab id                                  */
    int32_t line;        /* line, -1 unknown, 0 for native frames         */
} at_frame_t;

typedef struct at_stacks_meta {
    pid_t pid;           /* the sampled process                           */
    char comm[32];       /* its /proc comm                                */
    char version[24];    /* "3.11.7"                                      */
    char build[8];       /* "static" or "shared"                          */
    double rate_hz;      /* rate asked for                                */
    uint64_t samples;    /* sampling passes over the process              */
    uint64_t missed;     /* ticks that produced no sample (late, failed)  */
    double duration_s;   /* first to last sample                          */
    int native;          /* native frames were collected                  */
    /* An on-CPU sampler (eBPF perf_event) keeps only the timer ticks that
     * find the process on a CPU: its samples measure CPU time, and its
     * rate is samples per CPU-second, counted on the scheduler's clock:
     * cpu_intervals samples over cpu_s seconds of the sampled threads. */
    int on_cpu;
    double cpu_s;
    uint64_t cpu_intervals;
    /* How the sampler waited between samples (pace.h): polling the clock
     * on a spare CPU, or sleeping on a timer. */
    uint64_t waits_polled, waits_timed;
    double busy_s;       /* time spent taking the samples (not waiting)   */
    /* The sampler's own counters (cost statistics): process_vm_readv
     * calls and bytes, and reads of /proc task files. */
    uint64_t read_calls, read_bytes, proc_reads;
} at_stacks_meta_t;

typedef struct at_stacks at_stacks_t;

at_stacks_t *at_stacks_new(pid_t pid);
void at_stacks_free(at_stacks_t *s);
at_symtab_t *at_stacks_symtab(at_stacks_t *s);
at_stacks_meta_t *at_stacks_meta(at_stacks_t *s);
/* Threading names of the threads (saved with the stacks). */
at_thread_names_t *at_stacks_names(at_stacks_t *s);
/* Read-only views for renderers: the same, through a const pointer. */
const at_symtab_t *at_stacks_syms(const at_stacks_t *s);
const at_stacks_meta_t *at_stacks_info(const at_stacks_t *s);
const at_thread_names_t *at_stacks_thread_names(const at_stacks_t *s);
/* Distinct stacks kept, and frames stored over all of them. */
size_t at_stacks_count(const at_stacks_t *s);
size_t at_stacks_frame_count(const at_stacks_t *s);
/* "thread TID" or "thread TID "NAME"". */
const char *at_stacks_thread_label(const at_stacks_t *s, uint32_t tid, char *buf, size_t n);
/* What a sample's thread did with the GIL (the `gil` of a stack). */
#define AT_STACK_GIL_NO   0   /* not holding it (or not known)              */
#define AT_STACK_GIL_HELD 1   /* holding it                                 */
#define AT_STACK_GIL_WAIT 2   /* blocked in take_gil, waiting for it (the
                                 shim's live state, `run` only)           */

/* Count `count` samples of thread `tid` with frames[0..n) root first.
 * 0, or -ENOSPC when the bound on distinct stacks is reached (counted in
 * meta.missed), -ENOMEM. */
int at_stacks_add(at_stacks_t *s, uint32_t tid, int idle, int gil,
                  const at_frame_t *frames, int n, uint64_t count);

/* Write <dir>/<pid>.stacks.  0 or -errno. */
int at_stacks_save(const at_stacks_t *s, const char *dir);
/* Read <dir>/<pid>.stacks: 0, -ENOENT when absent, -EBADMSG when corrupt
 * (err says where and why). */
int at_stacks_load(const char *dir, pid_t pid, at_stacks_t **out, char *err, size_t errlen);

/* Iterate stored stacks; 1 while there is one, 0 at the end. */
typedef struct at_stack_view {
    uint32_t tid;        /* thread (OS id)                                */
    int idle, gil;       /* flags of these samples                        */
    uint64_t count;      /* samples                                       */
    int n;               /* frames                                        */
    const at_frame_t *frames; /* root first                               */
} at_stack_view_t;
int at_stacks_next(const at_stacks_t *s, size_t *cursor, at_stack_view_t *v);

/* "func (file:line)" for one frame, into buf. */
const char *at_stacks_frame_label(const at_stacks_t *s, const at_frame_t *f, char *buf, size_t n);

/* ---- the session's stacks files ----------------------------------------- */

/* The pids with a <pid>.stacks in dir, ascending, at most cap: the count
 * or -errno. */
int at_stacks_list(const char *dir, pid_t *pids, int cap);

/* fn(s, ctx) on the stacks of each process of dir in pid order, loaded
 * one at a time (a damaged file is named in one line on stderr and left
 * out; an absent one is skipped).  Stops at fn's first non-zero return,
 * which it returns; else 0, or -ENOENT when no process had stacks, or
 * -errno when dir cannot be read. */
int at_stacks_each(const char *dir, int (*fn)(const at_stacks_t *s, void *ctx), void *ctx);

#endif
