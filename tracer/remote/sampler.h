/* SPDX-License-Identifier: MIT */
/* sampler.h - sample one process's threads, and pace samples at a rate.
 *
 * at_target_t is one sampled process: its interpreter, walker, optional
 * native unwinder and aggregated stacks.  The public sampler of `run`
 * (at_sampler_start/stop below) and the dump/record commands are
 * built from these pieces.
 */
#ifndef AT_SAMPLER_H
#define AT_SAMPLER_H
#include <signal.h>
#include <stdint.h>

#include "remote/async_now.h"
#include "session/gil_live.h"
#include "remote/frame_walk.h"
#include "remote/native.h"
#include "cli/options.h"
#include "remote/pace.h"
#include "session/stacks.h"

/* Python and native frames, "[truncated]" and the asyncio task. */
#define AT_TARGET_MAX_FRAMES (AT_MAX_STACK_DEPTH + AT_NATIVE_MAX_DEPTH + 2)
/* Failed samples in a row after which a process is given up (it exec'd
 * another program, or its interpreter is gone for good). */
#define AT_TARGET_MAX_FAILURES 1000

struct at_target;

/* Called for each thread with its Python frames as walked (most recent
 * first, with where each was read), while a thread stopped for the walk
 * still stands still: for readers that look further into the frames.
 * Returns 0, or -ESRCH when the process is gone. */
typedef int (*at_pystack_fn)(void *ctx, struct at_target *t, const at_thread_t *th, const at_pystack_t *st);

typedef struct at_target {
    at_py_proc_t proc;        /* the interpreter found in the process     */
    at_walker_t *walker;      /* its Python stacks                        */
    at_native_t *native;      /* native stacks, NULL without --native     */
    at_gil_live_t *gil_live;  /* the shim's GIL states (run), else NULL: a
                                 thread blocked in take_gil is sampled as
                                 waiting for the GIL (AT_STACK_GIL_WAIT) */
    at_async_now_t *tasks;    /* the running asyncio tasks, NULL without
                                 --asyncio (record, run)                  */
    at_stacks_t *stacks;      /* what was sampled                         */
    at_thread_t *threads;     /* scratch: AT_MAX_THREADS entries          */
    at_pystack_t pystack;     /* scratch: one thread's Python frames      */
    at_frame_t frames[AT_TARGET_MAX_FRAMES];       /* scratch: root first */
    at_frame_t natframes[AT_NATIVE_MAX_DEPTH];     /* scratch             */
    uint8_t is_eval[AT_NATIVE_MAX_DEPTH];          /* scratch             */
    uint64_t start_ns;        /* first sampling attempt                   */
    uint64_t end_ns;          /* last attempt                             */
    uint64_t busy_ns;         /* time spent sampling (cost statistics)    */
    int gone;                 /* the process exited                       */
    int stop_running;         /* dump: stop a running thread while its
                                 frames are read (one moment, not a chain
                                 changing under the reads)             */
    int failures;             /* failed samples in a row                  */
    at_pystack_fn on_pystack; /* NULL, or see at_pystack_fn (dump --locals) */
    void *on_pystack_ctx;
} at_target_t;

/* One thread's sample, root first, as dump prints it. */
typedef void (*at_thread_fn)(void *ctx, const at_target_t *t, const at_thread_t *th,
                             const at_frame_t *frames, int n);

/* Open pid for sampling.  0, or the codes of at_py_proc_open/check with
 * the reason in err (-EAGAIN: Python 3.11 but not initialised yet). */
int at_target_open(at_target_t **out, pid_t pid, const at_options_t *o, char *err, size_t errlen);
void at_target_free(at_target_t *t);

/* Take one sample of every thread into t->stacks (and to fn when given).
 * 0; -ESRCH when the process is gone (t->gone set); other -errno when
 * this sample failed (counted as missed). */
int at_target_sample(at_target_t *t, at_thread_fn fn, void *ctx);

/* Fill t->stacks's metadata (counts, duration) before saving. */
void at_target_finish(at_target_t *t, double rate_hz);
/* Record in t's stacks how the pace waited between samples. */
void at_target_note_waits(at_target_t *t, const at_pace_t *p);

/* ---- the sampler of `archtrace run` ----------------------------------- */

typedef struct at_sampler at_sampler_t;

/* Start a thread (signals blocked) that samples every Python process of
 * the session: those that create <pid>.seg in session_dir, and root_pid
 * once it runs Python.  NULL + errno on failure. */
at_sampler_t *at_sampler_start(pid_t root_pid, const char *session_dir, const at_options_t *o);
/* Stop and join it, write <session_dir>/<pid>.stacks for each process,
 * free everything.  NULL is accepted. */
void at_sampler_stop(at_sampler_t *s);

#endif
