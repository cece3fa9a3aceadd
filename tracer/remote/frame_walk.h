/* SPDX-License-Identifier: MIT */
/* frame_walk.h - read every thread's Python stack out of a CPython 3.11-3.13 process.
 *
 * _PyRuntime -> interpreters -> thread states -> the current frame
 * (3.11/3.12: tstate->cframe->current_frame; 3.13: tstate->current_frame)
 * -> _PyInterpreterFrame.previous ..., at the offsets of the process's
 * layout table (proc->layout), every pointer untrusted: a bounded
 * number of interpreters, threads and frames, cycles detected, each
 * object's type checked where CPython exports it, each interpreter's
 * back pointer to _PyRuntime checked.  Code objects are cached by address
 * and re-validated on every use (type, filename, qualname, linetable,
 * firstlineno, size).
 *
 * System calls are what a sample costs (several µs each on a busy
 * machine, and each remote range pinned costs more), so reads are batched
 * speculatively: the thread list, the thread states, each current frame
 * pointer and each thread's chain of frames and code headers as the last
 * sample found them are read in one call (a code object shared by many
 * frames, as in a recursion, once).  Every link is then checked (head,
 * next, interp, cframe, previous, code); where the chain changed the
 * walker goes on with one call for the rest of the remembered chain, then
 * plain reads (one per frame: a frame's code header rides with the next
 * frame).  A process whose stacks did not change costs one call a sample.
 *
 * A code header that read back the same less than
 * AT_WALKER_CODE_RECHECK_NS ago is not read again (a third of the remote
 * ranges of a 10-frame sample were code headers): a frame that names it
 * runs it, unless it was freed and another allocated at its address since
 * the check; the frame's instruction pointer must still lie inside it,
 * which most such impostors fail at once, and the rest are caught at the
 * next check.
 */
#ifndef AT_FRAME_WALK_H
#define AT_FRAME_WALK_H
#include <stdint.h>

#include "py311.h"   /* AT_MAX_STACK_DEPTH, AT_MAX_THREADS: every version's limits */
#include "remote/py_proc.h"
#include "session/stacks.h"

/* One Python frame as read, most recent first. */
#define AT_WALKER_CODE_RECHECK_NS 200000000ull /* re-read a used code header this often */

typedef struct at_pyframe {
    uint32_t sym;        /* at_symtab id of (qualname, filename)          */
    int32_t line;        /* frame.f_lineno; -1 when unknown               */
    uint8_t entry;       /* ends an eval-loop call's frames: 3.11's is_entry
                          * frame, or 3.12+'s C-stack frame (skipped)     */
    uint8_t skip;        /* incomplete frame, hidden as CPython does      */
} at_pyframe_t;

typedef struct at_thread {
    uint64_t tstate;     /* remote PyThreadState *                        */
    uint64_t cframe;     /* what holds its frame pointer: its cframe, read
                          * with it (3.11/3.12), or the tstate (3.13)     */
    uint64_t frame;      /* its current frame when frame_known            */
    uint8_t frame_known; /* frame was read along with the thread list     */
    int16_t prefetch;    /* its last chain was read with the list: index
                          * of that read in the walker, else -1          */
    uint32_t tid;        /* native thread id                              */
    uint8_t gil;         /* holds the GIL                                 */
    uint8_t idle;        /* not running (/proc task state != 'R')         */
    uint8_t reuse;       /* its last walk stands: no frames to read       */
    uint8_t stopped;     /* reloaded while stopped (--native)             */
} at_thread_t;

typedef struct at_pystack {
    int n;               /* frames[0..n), most recent first               */
    int truncated;       /* chain ended early: corrupt, changing or deep  */
    at_pyframe_t frames[AT_MAX_STACK_DEPTH];
    /* where frames[i] was read: its _PyInterpreterFrame and the code
     * object it ran (1 for a C-stack frame), for readers that look
     * further into a frame (dump --locals) */
    uint64_t frame_addr[AT_MAX_STACK_DEPTH];
    uint64_t code_addr[AT_MAX_STACK_DEPTH];
} at_pystack_t;

typedef struct at_walker at_walker_t;

/* A walker over an opened process (its layout chosen: at_py_proc_open),
 * interning names into `syms`.  NULL with errno EINVAL when proc has no
 * usable layout, ENOMEM. */
at_walker_t *at_walker_new(at_py_proc_t *proc, at_symtab_t *syms);
void at_walker_free(at_walker_t *w);

/* List the threads (tstate, tid, gil; no frames yet) into out[0..cap).
 * Returns the count, or -errno (-ESRCH: process gone; -EPROTO: layout
 * check failed; -EAGAIN: no interpreter yet). */
int at_walker_threads(at_walker_t *w, at_thread_t *out, int cap);

/* Walk the frames of thread t (from at_walker_threads) into st.  0 or -errno
 * (-ESRCH when the process is gone); a broken chain is not an error: the
 * frames read so far are kept and st->truncated is set. */
int at_walker_stack(at_walker_t *w, const at_thread_t *t, at_pystack_t *st);

/* Read the one frame at `frame` (a coroutine's or generator's own,
 * embedded in it: `dump --asyncio`) into *out, its code through the
 * walker's cache: function and file in out->sym, out->line (-1 when
 * unknown).  0, -ESRCH when the process is gone, -EFAULT when the
 * frame cannot be read, -EPROTO when it runs no code object. */
int at_walker_frame(at_walker_t *w, uint64_t frame, at_pyframe_t *out);

/* Re-read t's cframe (3.13: its frame pointer, at the walk) after the
 * thread was stopped (--native), so its Python frames are read as they
 * stand while it stands still.  0 or -errno. */
int at_walker_reload(at_walker_t *w, at_thread_t *t);

/* 1 when thread tid is not running (its task state is not TASK_RUNNING,
 * read from /proc/PID/task/TID/syscall, or stat where that is missing),
 * 0 when running or runnable, -errno when unknown (-ESRCH: it ended). */
int at_walker_idle(at_walker_t *w, uint32_t tid);

/* Reads of /proc task files made so far (cost statistics). */
uint64_t at_walker_proc_reads(const at_walker_t *w);

/* The id of the "[truncated]" marker symbol. */
uint32_t at_walker_sym_truncated(const at_walker_t *w);

#endif
