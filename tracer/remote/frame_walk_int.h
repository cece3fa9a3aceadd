/* SPDX-License-Identifier: MIT */
/* frame_walk_int.h - what the walker's files share: its struct, the code cache's entries and the remembered chains.
 *
 * The walker (frame_walk.h) is split by concern: frame_walk.c walks a
 * thread's chain of frames and keeps it for the next sample,
 * frame_walk_code.c reads and caches code objects (names, line tables),
 * frame_walk_threads.c lists the thread states with the GIL, and
 * frame_walk_idle.c reads whether a thread runs from /proc.  Not for use
 * outside the walker.  The small lookups that more than one
 * of them makes are static inline here. */
#ifndef AT_FRAME_WALK_INT_H
#define AT_FRAME_WALK_INT_H
#include <stdint.h>
#include <time.h>

#include "remote/frame_walk.h"
#include "remote/linetable.h"

#define CODE_SLOTS      4096               /* code cache, power of two     */
#define CODE_RECHECK_NS AT_WALKER_CODE_RECHECK_NS
#define FD_SLOTS        1024               /* /proc task stat fds, pow. 2  */
#define FD_SWEEP_EVERY  512                /* samples between fd sweeps    */
#define MAX_STR_CHARS   1024               /* longer names are cut         */
#define STR_OUT_MAX     (MAX_STR_CHARS * 4 + 8)
#define MAX_LINETABLE   (512 * 1024)       /* bytes of co_linetable        */
#define MAX_CODE_UNITS  (1 << 24)          /* a sane upper bound on Py_SIZE */
/* Buffers hold the largest version's structs (py_proc.h's AT_READ_*,
 * which every layout is checked against); reads take the target's sizes. */
#define FRAME_READ      AT_READ_FRAME      /* _PyInterpreterFrame through owner, every version */
#define CODE_READ_MAX   AT_READ_CODE_MAX   /* code header: up to co_code_adaptive (184-200) */
#define TSTATE_READ_MAX AT_READ_TSTATE_MAX /* thread state: through native_thread_id (152-168) */
#define INTERP_READ_MAX AT_READ_INTERP_MAX /* interpreter: next .. runtime (48-120) */
#define RT_READ_MAX     AT_READ_RT_MAX     /* _PyRuntime from interpreters.head (3.11: + GIL) */
#define GIL_READ_MAX    AT_READ_GIL_MAX    /* struct _gil_runtime_state through switch_number */
#define STR_HEAD_READ   (AT_READ_STR_HEAD_MAX + 256)
#define NO_CODE_CSTACK  1ull               /* code of a frame owned by the C stack (3.12+): none */
/* A code unit is 2 bytes in every version (at_py_proc_layout_fits, which
 * at_walker_new asks, refuses another): a constant divisor per frame. */
#define CODE_UNIT       2
#define BYTES_HEAD_READ 512
#define SPEC_CHAINS     64                 /* threads whose chain is kept  */
#define SPEC_THREADS    256                /* thread states batch-read     */
#define CHAIN_SLOTS     512                /* frame index, pow. 2, > 2x depth */
#define PRE_THREADS     64                 /* chains read with the list    */
#define PRE_BYTES       (64 * 1024)        /* their buffer                 */
#define SPEC_BYTES      (AT_MAX_STACK_DEPTH * (FRAME_READ + CODE_READ_MAX) > SPEC_THREADS * TSTATE_READ_MAX \
                         ? AT_MAX_STACK_DEPTH * (FRAME_READ + CODE_READ_MAX) : SPEC_THREADS * TSTATE_READ_MAX)

/* A code object as last validated; addr 0 = free slot. */
typedef struct code_entry {
    uint64_t addr;           /* remote PyCodeObject *                       */
    uint64_t filename;       /* generation check: these pointers and ints   */
    uint64_t qualname;       /* must read back the same on every use        */
    uint64_t linetable;
    int64_t size;            /* Py_SIZE: code units                         */
    int32_t firstlineno;
    int32_t firsttraceable;
    uint32_t sym;            /* (qualname, filename) in the symtab          */
    uint64_t checked_ns;     /* when the header last read back the same     */
    int nranges;             /* -1 when the table did not decode            */
    at_line_range_t *ranges; /* decoded co_linetable                        */
} code_entry_t;

/* A thread's chain at the last sample: where to batch-read next time. */
typedef struct chain {
    uint64_t tstate;         /* the thread state, 0 = free                  */
    uint32_t used;           /* walker clock at the last use (LRU)          */
    int n;                   /* frames                                      */
    uint64_t frames[AT_MAX_STACK_DEPTH]; /* frame addresses, most recent first */
    uint64_t codes[AT_MAX_STACK_DEPTH];  /* their code objects               */
    /* The stack as walked, for reuse while the thread cannot have run
     * Python since (see gil_reuse): valid when the GIL's switch count
     * reads tag_sw, this thread is not the last holder and its cframe
     * still reads cframe. */
    int tag_ok;
    uint64_t tag_sw;
    uint64_t cframe;
    int out_n, out_truncated;
    at_pyframe_t out[AT_MAX_STACK_DEPTH];
} chain_t;

struct walk;

/* An open /proc/PID/task/TID/stat, read with pread on every sample. */
typedef struct tid_fd {
    uint32_t tid;            /* 0 = free                                    */
    int fd;
    uint32_t seen;           /* sweep epoch when last used                  */
} tid_fd_t;

struct at_walker {
    at_py_proc_t *proc;      /* the target (not owned)                      */
    at_pylayout_t L;         /* its offsets (copied from proc->layout)      */
    size_t code_read;        /* bytes of a code header read                 */
    size_t tstate_read;      /* bytes of a thread state read                */
    int32_t interp_first;    /* an interpreter is read from this offset ... */
    size_t interp_read;      /* ... this many bytes (next, threads, runtime) */
    int32_t rt_first;        /* _PyRuntime is read from interpreters.head ...*/
    size_t rt_read;          /* ... this many bytes (3.11: through the GIL)  */
    int gil_in_rt;           /* 3.11: the GIL is inside that read            */
    uint64_t gil_addr;       /* 3.12+: main interp->ceval.gil, 0 = not known */
    int fp_in_tstate;        /* 3.13+: the frame pointer is in the thread state */
    int32_t fp_off;          /* its offset in the cframe (or thread state)   */
    at_symtab_t *syms;       /* where names go (not owned)                  */
    code_entry_t *codes;     /* CODE_SLOTS entries                          */
    tid_fd_t fds[FD_SLOTS];
    uint32_t epoch;          /* fd sweep epoch                              */
    int state_file;          /* index in STATE_FILES: 0 syscall, 1 stat     */
    int state_file_known;    /* one was opened: no more probing             */
    uint32_t clock;          /* at_walker_threads calls                     */
    uint64_t proc_reads;     /* reads of /proc task files (statistics)      */
    uint64_t now_ns;         /* monotonic clock at the start of this walk   */
    uint64_t sw_last;        /* GIL switch count of the last thread list    */
    uint64_t holder_last;    /* and its last holder                         */
    int sw_known;            /* sw_last was read                            */
    uint64_t sw_before;      /* the count of the list before it             */
    int sw_before_ok;        /* there was one                               */
    chain_t *chains;         /* SPEC_CHAINS remembered chains               */
    struct walk *walk;       /* scratch for at_walker_stack                 */
    uint8_t *spec;           /* SPEC_BYTES: batch-read buffer               */
    struct spec_view *spec_view; /* the layout of the last read into spec   */
    struct spec_view *pre;   /* PRE_THREADS chains read with the list       */
    uint8_t *pre_buf;        /* PRE_BYTES: where they were read             */
    int pre_n;               /* of them in use                              */
    int pre_got;             /* segments that list read completed           */
    uint64_t list_interp;    /* the thread list last time (one interpreter) */
    int list_n;              /* its threads, 0 = no batch                   */
    uint64_t list_ts[SPEC_THREADS];
    uint64_t list_cframe[SPEC_THREADS];
    int16_t list_pre[SPEC_THREADS]; /* their chain's index in pre, or -1   */
    uint8_t list_guess[SPEC_THREADS]; /* its kept stack is expected to stand */
    uint32_t index_gen;      /* frame index of the chain being walked       */
    uint32_t index_stamp[CHAIN_SLOTS];
    uint64_t index_key[CHAIN_SLOTS];
    uint16_t index_pos[CHAIN_SLOTS];
    uint32_t sym_truncated;  /* "[truncated]" marker                        */
    uint32_t sym_unknown;    /* "[unknown]": a frame whose code is unreadable */
    char str[STR_OUT_MAX];   /* scratch for one decoded string              */
    uint8_t raw[MAX_STR_CHARS * 4]; /* scratch for one string's data        */
};

/* Frames old->frames[from..from+m) as batch-read: frame i at
 * buf + i * FRAME_READ, its code header at buf + m * FRAME_READ +
 * slot[i] * w->code_read (a code object shared by several frames, as in a
 * recursion, is read once; one whose cached header is fresh, see
 * code_fresh, not at all: slot NO_HEADER).  Segment `seg0 + i` holds
 * frame i and `seg0 + m + slot` a header: what at_remote_readv completed
 * is known from its count of leading segments. */
typedef struct spec_view {
    const at_walker_t *w;    /* whose code cache decided what was read      */
    const chain_t *old;      /* the chain read (a walker slot)              */
    uint64_t tstate;         /* its thread, to check the slot still is it   */
    int from, m;             /* frames read                                 */
    int seg0, nslots;        /* first segment; header slots used            */
    uint8_t *buf;
    uint16_t slot[AT_MAX_STACK_DEPTH];
} spec_view_t;

#define SPEC_DEDUP 16        /* distinct code objects looked up per chain   */
#define NO_HEADER  UINT16_MAX /* slot of a frame whose header is not read   */

static inline uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline code_entry_t *code_slot(const at_walker_t *w, uint64_t addr)
{
    return &w->codes[(addr >> 4) * 0x9e3779b97f4a7c15ull >> 52 & (CODE_SLOTS - 1)];
}

static inline chain_t *chain_find(at_walker_t *w, uint64_t tstate)
{
    for (int i = 0; i < SPEC_CHAINS; i++)
        if (w->chains[i].tstate == tstate)
            return &w->chains[i];
    return NULL;
}

/* Thread tstate's kept stack if it may stand for this sample, with the
 * switch count sw and last holder read now. */
static inline const chain_t *reusable(const at_walker_t *w, uint64_t tstate, uint64_t cframe, uint64_t sw, uint64_t holder)
{
    const chain_t *c = chain_find((at_walker_t *)w, tstate);
    return c && c->tag_ok && c->tag_sw == sw && tstate != holder && c->cframe == cframe ? c : NULL;
}

/* frame_walk_code.c: the cached code object at addr, its header hdr just
 * read (re-read names and line table when it changed); NULL when it is
 * not a code object or cannot be read. */
const code_entry_t *at_walker_code_lookup(at_walker_t *w, uint64_t addr, const uint8_t *hdr);

/* frame_walk.c: plan the batch read of a remembered chain (see spec_view_t). */
int at_walker_spec_plan(spec_view_t *v, const at_walker_t *w, const chain_t *old, int from, int m, uint8_t *buf,
                        at_remote_seg_t *segs, int seg0);

/* frame_walk_idle.c: close the /proc task files not used since the last sweep. */
void at_walker_sweep_fds(at_walker_t *w);

#endif
