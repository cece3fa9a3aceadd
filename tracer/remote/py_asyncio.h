/* SPDX-License-Identifier: MIT */
/* py_asyncio.h - the asyncio tasks of a CPython 3.11-3.13 process, read from outside.
 *
 * asyncio keeps every scheduled task in a WeakSet of asyncio.tasks
 * (`_all_tasks` in 3.11, `_scheduled_tasks` from 3.12) and, from 3.12,
 * tasks started eagerly in the set `_eager_tasks`.  Both are reached
 * through sys.modules (interp->modules, 3.13's imports.modules) and the
 * module's md_dict; the WeakSet's `data` holds weak references, whose
 * wr_object is the task.  Only the C Task of the _asyncio module (and
 * its subclasses) is read: its layout is TaskObj's (common/py31x.h,
 * TASK_*).  A pure-Python task (asyncio.tasks._PyTask) is counted, not
 * shown.
 *
 * Per task: its loop (tasks are grouped by it), name, state, whether it
 * is the task its loop is running now (asyncio.tasks._current_tasks,
 * loop -> task), the task
 * it waits for (task_fut_waiter, when that is another task found here),
 * the coroutines it is suspended in -- task_coro's own frame, then the
 * coroutine or generator that one awaits (the top of its frame's value
 * stack while it is suspended in an await: 3.13's
 * FRAME_SUSPENDED_YIELD_FROM, or before 3.13 a RESUME with oparg >= 2
 * next), and so on -- and, when its loop runs in debug mode, where it
 * was created (_source_traceback: a list of traceback.FrameSummary,
 * read through their type's __slots__ descriptors).
 *
 * Nothing runs in the target; every object is checked for its type
 * before it is read, every loop is bounded, and an await chain that
 * comes back to a coroutine already seen ends there.
 */
#ifndef AT_PY_ASYNCIO_H
#define AT_PY_ASYNCIO_H
#include <stddef.h>
#include <stdint.h>

#include "remote/frame_walk.h"
#include "remote/py_proc.h"
#include "session/stacks.h"

#define AT_ASYNC_MAX_TASKS   4096 /* tasks read; more are counted        */
#define AT_ASYNC_MAX_DEPTH   64   /* coroutines followed down one chain  */
#define AT_ASYNC_MAX_CREATED 32   /* innermost frames of a creation site */
#define AT_ASYNC_NAME_MAX    128  /* bytes of a task's name, NUL included */

typedef enum at_async_state {
    AT_ASYNC_PENDING,
    AT_ASYNC_DONE,
    AT_ASYNC_CANCELLED,
} at_async_state_t;

typedef struct at_async_task {
    uint64_t addr;           /* the Task object: id(task)                 */
    uint64_t loop;           /* its event loop                            */
    uint64_t awaits;         /* the task it waits for, 0 when none        */
    at_async_state_t state;
    int running;             /* its loop is in its step now (_current_tasks) */
    char name[AT_ASYNC_NAME_MAX];  /* get_name(), as read (for JSON)   */
    char label[AT_ASYNC_NAME_MAX]; /* the same for the text: escaped as
                              * repr() escapes it (a bidi override reads
                              * \u202e, a newline \n), cut with "…"   */
    int n;                   /* stack[0..n): outermost first              */
    uint64_t running_frame;  /* the last coroutine's frame when it is
                              * executing (not suspended), else 0         */
    uint32_t thread;         /* the thread whose stack gave the frames
                              * past it (at_asyncio_join), else 0         */
    int stack_cut;           /* the chain went on past AT_ASYNC_MAX_DEPTH,
                              * came back to itself, or was unreadable    */
    at_frame_t stack[AT_ASYNC_MAX_DEPTH]; /* (function, file) and line */
    int created_known;       /* _source_traceback was read (debug mode)   */
    int n_created;           /* created[0..n_created): outermost first     */
    at_frame_t created[AT_ASYNC_MAX_CREATED];
} at_async_task_t;

typedef struct at_asyncio {
    int imported;            /* asyncio.tasks is in sys.modules           */
    int n;                   /* tasks[0..n), by loop, then name           */
    at_async_task_t *tasks;  /* malloc'd                                  */
    int more;                /* C tasks past AT_ASYNC_MAX_TASKS           */
    int py_tasks;            /* pure-Python tasks (_PyTask): not read     */
} at_asyncio_t;

/* Read every task of p into *out (symbols into syms, code through w).
 * 0, also when asyncio was never imported (out->imported 0) or a task
 * could not be read (it is left out); -ESRCH when the process is gone;
 * -ENOMEM. */
int at_asyncio_read(at_py_proc_t *p, at_walker_t *w, at_symtab_t *syms, at_asyncio_t *out);

void at_asyncio_free(at_asyncio_t *a);

/* Task.get_name() of the name object at `name` into text (as read, for
 * JSON) and label (escaped as repr() escapes it, for a terminal, cut
 * with "…"); 3.13's deferred name, an int N, reads "Task-N".  0, or
 * -ESRCH when the process is gone. */
int at_asyncio_name(at_py_proc_t *p, uint64_t name, char *text, size_t tlen, char *label, size_t llen);

/* Tasks of one event loop, for `top` (at_asyncio_count). */
typedef struct at_async_loop_count {
    uint64_t loop;           /* the event loop object                     */
    int tasks;               /* C tasks asyncio holds for it              */
    int pending;             /* of them not done nor cancelled            */
} at_async_loop_count_t;

/* Count p's C tasks by event loop into loops[0..max) without reading
 * names or stacks (one read per task); *other counts tasks of another
 * class (_PyTask).  The number of loops, 0 when asyncio is not imported;
 * -ESRCH when the process is gone, -EPROTO without a TaskObj layout. */
int at_asyncio_count(at_py_proc_t *p, at_async_loop_count_t *loops, int max, int *other);

/* "pending", "done", "cancelled". */
const char *at_async_state_name(at_async_state_t s);

/* A running task's coroutines are on a thread's stack, not suspended:
 * when st (thread tid's frames as the walk read them, most recent
 * first) holds the frame of t's last coroutine, append the shown frames
 * above it (what that coroutine is running now, innermost last, within
 * AT_ASYNC_MAX_DEPTH) and set t->thread.  1 when joined, else 0. */
int at_asyncio_join(at_async_task_t *t, const at_pystack_t *st, uint32_t tid);

/* The task at addr among a's, or NULL. */
const at_async_task_t *at_asyncio_find(const at_asyncio_t *a, uint64_t addr);

#endif
