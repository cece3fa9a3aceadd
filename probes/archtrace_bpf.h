/* SPDX-License-Identifier: MIT */
/* archtrace_bpf.h - event structs and limits shared by probes/archtrace.bpf.c and tracer/bpf_*.c.
 *
 * Types only.  The BPF side includes vmlinux.h first (which defines the
 * __u64 family); user space gets them from <linux/types.h>.  Every struct
 * has a fixed layout (explicit padding, _Static_assert in user space) so
 * the two compilers agree on it.  The probes compile in no CPython
 * offset: user space gives them the target's (struct at_bpf_py, from
 * its at_pylayout_t, and struct at_bpf_proc); py311.h is here for the stack depth the ptrace
 * walker also uses (AT_MAX_STACK_DEPTH), nothing else.
 */
#ifndef AT_ARCHTRACE_BPF_H
#define AT_ARCHTRACE_BPF_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif
#include "py311.h"

/* ---- limits -------------------------------------------------------------- */

#define AT_BPF_NAME_MAX       128        /* bytes of a module name kept      */
#define AT_BPF_USTACK_MAX     64         /* native user frames per sample    */
#define AT_BPF_PY_MAX         AT_MAX_STACK_DEPTH /* Python frames per sample */
#define AT_BPF_IMPORT_DEPTH   32         /* nested imports kept per thread   */
#define AT_BPF_MAX_THREADS    1024       /* per-thread map entries           */
#define AT_BPF_TSTATE_SCAN    64         /* thread states scanned per sample */
#define AT_BPF_RINGBUF_BYTES  (8u << 20) /* events in flight                 */
#define AT_BPF_GC_SLOTS       4          /* generations 0-2, 3 = out of range */
#define AT_BPF_FRAME_READ     72         /* _PyInterpreterFrame through owner */
#define AT_BPF_INSTR_NONE     0xffffffffu /* pyframe.instr_off: not usable    */
#define AT_BPF_ETIMEDOUT      110        /* pthread_cond_timedwait's timeout  */
#define AT_BPF_GC_GENERATIONS 3          /* generation_stats[] entries       */
#define AT_BPF_OFF_NONE       0xffffffffu /* at_bpf_py: the version has none  */
#define AT_BPF_MAX_PROCS      256        /* processes one probe set watches  */

/* ---- the target's CPython ------------------------------------------------
 * What the probes read in a CPython, in two parts.
 *
 * struct at_bpf_py: its version's offsets, the same for every process of
 * one binary (or libpython), set in .rodata before load by
 * tracer/bpf/bpf_layout.c from the at_pylayout_t (3.11, 3.12 or 3.13, the
 * debug offsets of a 3.13 applied).  .rodata is frozen at load, so the
 * verifier sees every field as a constant: the branches of other versions
 * are dead code to it and each offset is checked as a constant
 * (bpf_layout.c refuses those the reads below could not take).  Offsets
 * from the start of the struct named.
 *
 * struct at_bpf_proc: what differs per process (ASLR gives each its own
 * addresses), the value of the probes' `procs` map under its tgid.  A
 * process is watched exactly while it has an entry: the probes of one
 * binary fire in every process that maps it (host-wide uprobes), and the
 * lookup of the current tgid is the first thing each program does. */
struct at_bpf_py {
    __u32 gil_locked, gil_last_holder, gil_cond;
    __u32 rt_interpreters_head;          /* _PyRuntime                       */
    __u32 interp_tstate_head;            /* PyInterpreterState               */
    __u32 interp_gc_stats;               /* gc.generation_stats[3], or NONE:
                                          * gc_collect_main's argument is the
                                          * generation (3.11, 3.12)          */
    __u32 gc_stats_size;                 /* one entry; collections first     */
    __u32 tstate_next, tstate_interp, tstate_native_thread_id;
    __u32 tstate_cframe;                 /* _PyCFrame *, NONE from 3.13      */
    __u32 frame_ptr;                     /* current frame in the cframe, or in
                                          * the thread state (3.13)          */
    __u32 iframe_code, iframe_previous, iframe_instr; /* 8-aligned, < FRAME_READ */
    __u32 iframe_owner;                  /* char                             */
    __u32 iframe_is_entry;               /* bool, 3.11; NONE after           */
    __u32 unicode_state;                 /* str: state bit field word        */
    __u32 unicode_compact, unicode_ascii;/* its compact and ascii bits       */
    __u32 sizeof_pyasciiobject;          /* compact ASCII text follows       */
    __u32 unicode_utf8;                  /* char *, compact non-ASCII        */
    __u32 pad;
};

/* procs[tgid]: one watched process (addresses in it). */
struct at_bpf_proc {
    __u64 runtime;                       /* &_PyRuntime                      */
    __u64 gil;                           /* struct _gil_runtime_state of the
                                          * main interpreter (3.11: in
                                          * _PyRuntime; 3.12+: its ceval.gil) */
    __u64 tstate_current;                /* 3.11: &gilstate.tstate_current;
                                          * 0: the GIL's holder tells (3.12+) */
    __u32 slot;                          /* its rows of gc_stats and stats,
                                          * < AT_BPF_MAX_PROCS               */
    __u32 pad;
};

/* ---- ring buffer events ------------------------------------------------- */

enum at_bpf_ev_kind {
    AT_BPF_EV_IMPORT = 1,                /* struct at_bpf_import_ev          */
    AT_BPF_EV_GC = 2,                    /* struct at_bpf_gc_ev              */
    AT_BPF_EV_SAMPLE = 3,                /* struct at_bpf_sample_ev          */
};

/* One finished import: the span of importlib's _find_and_load as the
 * import__find__load__start/done probes (or the uprobe fallback) saw it. */
struct at_bpf_import_ev {
    __u32 kind;                          /* AT_BPF_EV_IMPORT                 */
    __u32 tid;                           /* importing thread                 */
    __u64 start_ns;                      /* CLOCK_MONOTONIC                  */
    __u64 end_ns;
    __u32 depth;                         /* enclosing imports on the thread  */
    __s32 found;                         /* 1 module returned, 0 failed      */
    char name[AT_BPF_NAME_MAX];          /* absolute module name, NUL-ended  */
    __u32 tgid;                          /* the process (probes are shared)  */
    __u32 pad;
};

/* One collection: gc__start/done (or gc_collect_main entry/return). */
struct at_bpf_gc_ev {
    __u32 kind;                          /* AT_BPF_EV_GC                     */
    __u32 tid;
    __u64 start_ns;
    __u64 end_ns;
    __s32 generation;                    /* 0..2                             */
    __u32 tgid;                          /* the process                      */
    __s64 collected;                     /* unreachable objects found        */
};

/* A Python frame as read in BPF; user space turns code into names and
 * instr_off into a line (it re-validates the code object first). */
struct at_bpf_pyframe {
    __u64 code;                          /* PyCodeObject * (untrusted)       */
    __u32 instr_off;                     /* prev_instr - code, or INSTR_NONE */
    __u8 owner;                          /* _PyInterpreterFrame.owner        */
    __u8 is_entry;                       /* first frame of an eval call      */
    __u16 pad;
};

/* Sample flags. */
#define AT_BPF_S_GIL        0x1u         /* the thread held the GIL          */
#define AT_BPF_S_TSTATE     0x2u         /* its PyThreadState was found      */
#define AT_BPF_S_TRUNCATED  0x4u         /* Python chain cut (depth, fault)  */

/* One perf_event sample of a target thread on a CPU. */
struct at_bpf_sample_ev {
    __u32 kind;                          /* AT_BPF_EV_SAMPLE                 */
    __u32 tid;
    __u64 ts_ns;
    __u64 tstate;                        /* PyThreadState * or 0             */
    __u16 n_user;                        /* user[0..n_user), leaf first      */
    __u16 n_py;                          /* py[0..n_py), most recent first   */
    __u32 flags;                         /* AT_BPF_S_*                       */
    __u64 user[AT_BPF_USTACK_MAX];       /* bpf_get_stack(BPF_F_USER_STACK)  */
    struct at_bpf_pyframe py[AT_BPF_PY_MAX];
    __u32 tgid;                          /* the process                      */
    __u32 pad;
};

/* ---- maps read by user space --------------------------------------------
 * Per-thread maps are keyed by the whole bpf_get_current_pid_tgid() (tgid
 * in the high half, tid in the low), so user space finds a process's rows
 * and removes them when it goes.  gc_stats and stats are arrays with one
 * row per process slot (struct at_bpf_proc.slot). */

/* gil_threads[tid]: waits for the GIL on _PyRuntime.ceval.gil.cond.  An
 * episode starts at the first pthread_cond_timedwait of a take_gil and
 * ends at the return after which gil.locked reads 0 (the loop exits). */
struct at_bpf_gil_thread {
    __u64 wait_ns;                       /* closed episodes, total           */
    __u64 waits;                         /* closed episodes                  */
    __u64 calls;                         /* pthread_cond_timedwait returns   */
    __u64 timeouts;                      /* ETIMEDOUT: a drop request follows */
    __u64 max_wait_ns;                   /* longest episode                  */
    __u64 first_ns;                      /* first episode start              */
    __u64 last_ns;                       /* last episode end                 */
};

/* sample_clock[tid]: the scheduler's CPU time of a sampled thread at its
 * first and last sample.  The sampler's timers run on each thread's
 * CPU time (task-clock, one per thread; cpu-clock per CPU as a fallback),
 * so its rate is samples per CPU-second of the target: (n - 1) samples
 * over (last - first) of the thread's CPU time as the scheduler counts it,
 * read independently of the timer. */
struct at_bpf_sample_clock {
    __u64 first_cpu_ns;                  /* se.sum_exec_runtime at 1st sample */
    __u64 last_cpu_ns;                   /* ... at the latest                */
    __u64 n;                             /* samples of the thread            */
};

/* gil_waiting[tid]: an episode in progress. */
struct at_bpf_gil_wait {
    __u64 start_ns;                      /* episode start                    */
    __u64 call_ns;                       /* current call start               */
};

/* gc_stats[slot * GC_SLOTS + generation]: totals kept in BPF so a lost event costs nothing. */
struct at_bpf_gc_stat {
    __u64 runs;
    __u64 total_ns;
    __s64 collected;
    __u64 pad;
};

/* Per-thread import nesting (both the USDT and the fallback path). */
struct at_bpf_import_frame {
    __u64 start_ns;                      /* 0: a cached import (fallback)    */
    char name[AT_BPF_NAME_MAX];
};

struct at_bpf_import_stack {
    __u32 depth;                         /* open frames, may exceed the array */
    __u32 nmarked;                       /* of which real (uncached) imports */
    struct at_bpf_import_frame f[AT_BPF_IMPORT_DEPTH];
};

/* gc_open[tid]: a collection in progress.  With generation_stats
 * (3.13: gc_collect_main may be entered with generation -1, "choose",
 * and return without collecting), the generation is the one whose
 * collections counter moved between entry and return. */
struct at_bpf_gc_open {
    __u64 start_ns;
    __s32 generation;
    __u32 nested;                        /* calls inside it (3.13: return 0) */
    __u64 interp;                        /* PyInterpreterState *, 0: no stats */
    __u64 runs[AT_BPF_GC_GENERATIONS];   /* its collections counters at entry */
};

/* stats[slot * ST_COUNT + i]: counters of what the probes could not do. */
enum at_bpf_stat {
    AT_BPF_ST_LOST_IMPORT = 0,           /* ring buffer full                 */
    AT_BPF_ST_LOST_GC,
    AT_BPF_ST_LOST_SAMPLE,
    AT_BPF_ST_IMPORT_DEEP,               /* nesting past AT_BPF_IMPORT_DEPTH */
    AT_BPF_ST_NO_TSTATE,                 /* sample of a thread without one   */
    AT_BPF_ST_PY_TRUNCATED,              /* Python chain cut                 */
    AT_BPF_ST_MAP_FULL,                  /* a per-thread map was full        */
    AT_BPF_ST_SAMPLES,                   /* samples of the target taken      */
    AT_BPF_ST_COUNT
};

#endif
