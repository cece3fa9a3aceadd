/* SPDX-License-Identifier: MIT */
/* async_now.h - which asyncio task each thread is running, once per sample.
 *
 * `record --asyncio` and `run --asyncio` put each sample under the task
 * it was taken in, so a flame graph splits by task.  A full task read
 * (py_asyncio.h) walks every task and its await chain: far too much for
 * every tick.  This reads only what a tick needs: asyncio's
 * `_current_tasks` (event loop -> the task it is stepping now; a few
 * entries), and of each of those tasks its coroutine and its name.  A
 * thread runs a task when that task's coroutine frame (embedded in the
 * coroutine object) is on the thread's walked stack: the check also
 * makes a task that finished its step between the two reads count for
 * nobody instead of the wrong thread.
 *
 * The module lookups (a bounded walk of sys.modules) are made until
 * asyncio is found: on the first read, then at most every 100 ms
 * (LOOKUP_EVERY_NS); their addresses are then kept.  Names are read
 * when a (task, name object) pair is first seen.
 * Only C tasks (_asyncio.Task and subclasses) are attributed.
 */
#ifndef AT_ASYNC_NOW_H
#define AT_ASYNC_NOW_H
#include <stdint.h>

#include "remote/frame_walk.h"
#include "remote/py_proc.h"
#include "session/stacks.h"

#define AT_ASYNC_NOW_MAX 64   /* loops running a task at one moment, read */

typedef struct at_async_now at_async_now_t;

/* A reader for p, interning task symbols ("task NAME", AT_SYM_TASK)
 * into syms.  NULL when out of memory. */
at_async_now_t *at_async_now_new(at_py_proc_t *p, at_symtab_t *syms);
void at_async_now_free(at_async_now_t *a);

/* Read the tasks running now (call once per sample, before the threads'
 * walks); what cannot be read is left out (the walks notice a process
 * that is gone). */
void at_async_now_read(at_async_now_t *a, uint64_t now_ns);

/* The symbol of the task whose coroutine frame is on st (a thread's
 * frames as walked), or AT_SYM_NONE. */
uint32_t at_async_now_task(const at_async_now_t *a, const at_pystack_t *st);

/* Tasks running at the last read (the sum over the loops). */
int at_async_now_count(const at_async_now_t *a);

#endif
