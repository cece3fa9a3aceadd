/* SPDX-License-Identifier: MIT */
/* native.h - native stacks for --native: ptrace stop, libunwind-ptrace, libdw symbols.
 *
 * A thread is seized and interrupted (PTRACE_SEIZE + PTRACE_INTERRUPT),
 * its Python frames are read while it stands still, its native stack is
 * unwound with libunwind's _UPT accessors, and it is detached again.
 * Return addresses are symbolised with libdw (dwfl over the process's
 * modules) and cached by address.  Every ptrace call comes from the one
 * thread that calls these functions (ptrace binds tracer threads).
 */
#ifndef AT_NATIVE_H
#define AT_NATIVE_H
#include <stdint.h>

#include "remote/frame_walk.h"
#include "session/stacks.h"

#define AT_NATIVE_MAX_DEPTH 512   /* native frames per thread             */

typedef struct at_native at_native_t;

/* NULL + errno (ENOMEM, or what libunwind/libdw refused). */
at_native_t *at_native_new(at_py_proc_t *proc, at_symtab_t *syms);
void at_native_free(at_native_t *n);

/* Stop thread tid.  0, -EPERM (not allowed), -ESRCH (gone), -ETIMEDOUT. */
int at_native_stop(at_native_t *n, uint32_t tid);
/* Let it run again (detach).  Safe to call after a failed stop. */
void at_native_resume(at_native_t *n, uint32_t tid);

/* The same without an unwinder (dump stops a running thread to read its
 * frames at one moment): *sig is a signal the stop took, for the resume. */
int at_thread_stop(uint32_t tid, int *sig);
void at_thread_resume(uint32_t tid, int sig);

/* Unwind the stopped thread: out[0..ret) most recent first, is_eval[i]
 * set where the frame is in _PyEval_EvalFrameDefault.  Count or -errno. */
int at_native_unwind(at_native_t *n, uint32_t tid, at_frame_t *out, uint8_t *is_eval, int cap);

/* Merge native frames (most recent first) with the thread's Python stack:
 * each _PyEval_EvalFrameDefault frame is replaced by the Python frames it
 * runs (up to and including the next entry frame); Python frames left
 * over go to the root.  Writes root first into out; returns the count. */
int at_native_merge(const at_frame_t *nat, const uint8_t *is_eval, int nn,
                    const at_pystack_t *py, at_frame_t *out, int cap);

#endif
