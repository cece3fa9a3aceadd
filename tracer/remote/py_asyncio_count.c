/* SPDX-License-Identifier: MIT */
/* py_asyncio_count.c - how many asyncio tasks each event loop has, cheaply (see py_asyncio.h).
 *
 * `top` shows the task count per loop every refresh: the same gathering
 * as at_asyncio_read (asyncio's task sets), then one read of each task's
 * header (its type, loop and state), and no names, await chains or
 * creation sites.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "remote/py_asyncio.h"
#include "remote/py_asyncio_int.h"
#include "remote/py_names.h"

/* Count the task at addr into loops[0..*n): 1 when it is a C Task. */
static int count_task(async_ctx_t *c, uint64_t addr, at_async_loop_count_t *loops, int max, int *n)
{
    const at_pylayout_t *L = c->L;
    uint8_t b[AT_ASYNC_TASK_READ_MAX];
    if (rd(c, addr, b, (size_t)L->task_read) < 0 || !at_asyncio_derives(c, at_get_u64(b, L->object_type), c->task_type))
        return 0;
    uint64_t loop = at_get_u64(b, L->task_loop);
    int32_t st = at_get_i32(b, L->task_state);
    int k = 0;
    while (k < *n && loops[k].loop != loop)
        k++;
    if (k == *n) {
        if (*n == max)
            return 1;   /* past the loops kept: counted nowhere, the caller says so */
        loops[(*n)++] = (at_async_loop_count_t){ .loop = loop };
    }
    loops[k].tasks++;
    loops[k].pending += st != L->fut_state_cancelled && st != L->fut_state_finished;
    return 1;
}

int at_asyncio_count(at_py_proc_t *p, at_async_loop_count_t *loops, int max, int *other)
{
    async_ctx_t c = { .p = p, .L = &p->layout };
    int n = 0;
    *other = 0;
    if (p->layout.task_read <= 0 || p->layout.task_read > AT_ASYNC_TASK_READ_MAX)
        return -EPROTO;
    uint64_t tasks_dict = at_py_module_dict(p, "asyncio.tasks"), c_mod = at_py_module_dict(p, "_asyncio");
    if (!tasks_dict)
        return 0;
    c.task_type = c_mod ? at_py_dict_get_str(p, c_mod, "Task") : 0;
    int rc = at_asyncio_gather(&c, tasks_dict);
    if (rc == 0 && c.ncand)
        qsort(c.cand, (size_t)c.ncand, sizeof *c.cand, at_asyncio_cmp_u64);
    for (int i = 0; rc == 0 && i < c.ncand && !c.gone; i++)
        if ((!i || c.cand[i] != c.cand[i - 1]) && !count_task(&c, c.cand[i], loops, max, &n) &&
            c.cand[i] != p->known[AT_PYSYM_NONE])
            ++*other;
    free(c.cand);
    return rc < 0 ? rc : c.gone ? -ESRCH : n;
}
