/* SPDX-License-Identifier: MIT */
/* shim.h - state and services the shim core offers its features.
 *
 * Design: the constructor only reads the environment and sets flags.  If
 * this is a CPython, the core adds an audit hook; at the first
 * cpython.run_* event (interpreter fully up, GIL held) each enabled
 * feature's on_run starts it.  Features (alloc, gil, imports) live in
 * their own files and keep their data in per-pid files of the session,
 * mapped with at_seg_map, so that what was written survives a crash of
 * the target and of archtrace.
 */
#ifndef AT_SHIM_H
#define AT_SHIM_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "pyapi.h"

#define AT_API __attribute__((visibility("default")))

/* feature bits, from ARCHTRACE_FEATURES="alloc,gil,imports" */
#define AT_FEAT_ALLOC   0x1
#define AT_FEAT_GIL     0x2
#define AT_FEAT_IMPORTS 0x4

#define AT_PATH_MAX 512

typedef struct at_shim {
    int active;              /* a session is set and this CPython is supported */
    int python;              /* the process has the CPython API           */
    int supported;           /* ... and it is 3.11, 3.12 or 3.13 (GIL build) */
    int running;             /* first cpython.run_* seen                  */
    unsigned features;       /* AT_FEAT_* enabled for this session        */
    pid_t pid;               /* getpid() of this process (after fork too) */
    char session[AT_PATH_MAX]; /* session directory                       */
    int alloc_depth;         /* ARCHTRACE_ALLOC_DEPTH (default 1)         */
    long alloc_sample;       /* ARCHTRACE_ALLOC_SAMPLE bytes, 0 = exact   */
    int top_n;               /* ARCHTRACE_TOP rows kept per snapshot      */
    uintptr_t runtime;       /* &_PyRuntime                               */
} at_shim_t;

extern at_shim_t at_shim;

/* Per-thread reentrancy guard: set while shim code runs on this thread,
 * so hooks reached from inside the shim pass straight through. */
extern __thread int at_in_shim;

/* Map <session>/<pid>.<suffix>, size bytes, zero-filled, created 0600
 * without following symlinks, with its blocks reserved up front (so a full
 * disk fails here and not as SIGBUS later).  NULL on failure (the feature
 * then stays off and the core records why). */
void *at_seg_map(const char *suffix, size_t size);

/* Before this program makes its <pid>.seg: if an earlier program of the
 * same pid ran Python and exec'd this one (its segment says
 * AT_SEG_REPLACED), rename its files to <pid>-<n>.<kind> so both are
 * reported.  Syscalls only. */
void at_seg_keep_previous(void);

/* Unmap a region from at_seg_map (e.g. the parent's, in a forked child). */
void at_seg_unmap(void *addr, size_t size);

/* Monotonic nanoseconds (CLOCK_MONOTONIC), async-signal-safe. */
uint64_t at_now_ns(void);

/* Record a one-line reason a feature could not start (into <pid>.seg). */
void at_shim_note(const char *feature, const char *why);

/* A feature of the shim: every callback is optional.  Order of calls:
 * on_run (GIL held, once) -> on_audit (GIL held, every event) ->
 * on_fork_child (in the child right after fork; no Python API; must
 * re-create its own files for the child's pid) -> on_exit (at Python's
 * atexit time, GIL held, `__main__` still alive; also called from the
 * destructor with python_alive=0 if atexit never ran). */
typedef struct at_feature {
    const char *name;
    unsigned bit;                                   /* AT_FEAT_*       */
    void (*on_run)(void);
    void (*on_audit)(const char *event, PyObject *args);
    void (*on_fork_child)(void);
    void (*on_exit)(int python_alive);
} at_feature_t;

/* Defined by preload/alloc.c, gil.c, imports.c; weak so the core builds
 * and runs without any of them. */
extern const at_feature_t at_feature_alloc __attribute__((weak));
extern const at_feature_t at_feature_gil __attribute__((weak));
extern const at_feature_t at_feature_imports __attribute__((weak));

#endif
