/* SPDX-License-Identifier: MIT */
/* py_asyncio_int.h - what the full task reader (py_asyncio.c) and the
 * counter `top` uses (py_asyncio_count.c) share: the reading context,
 * bounded reads, the task sets' gathering and the type check. */
#ifndef AT_PY_ASYNCIO_INT_H
#define AT_PY_ASYNCIO_INT_H
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "remote/py_asyncio.h"

#define AT_ASYNC_TASK_READ_MAX 256  /* bytes of a TaskObj (144-176) read at most */

typedef struct async_ctx {
    at_py_proc_t *p;
    const at_pylayout_t *L;
    at_walker_t *w;
    at_symtab_t *syms;
    uint64_t task_type;      /* _asyncio.Task                              */
    uint64_t fs_type;        /* traceback.FrameSummary, once its slots are known */
    int64_t fs_filename, fs_lineno, fs_name; /* their offsets            */
    int fs_lookups;          /* slot lookups made, of FS_LOOKUPS_MAX       */
    uint64_t *cand;          /* candidate objects                          */
    int ncand, cap;
    int gone;                /* a read said the process exited             */
} async_ctx_t;

static inline int rd(async_ctx_t *c, uint64_t addr, void *buf, size_t len)
{
    int rc = at_remote_read(&c->p->mem, addr, buf, len);
    c->gone |= rc == -ESRCH;
    return rc;
}

/* type is `base` or derives from it (tp_base links, bounded). */
int at_asyncio_derives(async_ctx_t *c, uint64_t type, uint64_t base);
/* The candidate tasks of asyncio.tasks' dict into c->cand (duplicates
 * possible).  0 or -ENOMEM. */
int at_asyncio_gather(async_ctx_t *c, uint64_t tasks_dict);
int at_asyncio_cmp_u64(const void *a, const void *b);

#endif
