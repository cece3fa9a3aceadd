/* SPDX-License-Identifier: MIT */
/* async_now.c - the asyncio task each thread runs, read once per sample (see async_now.h).
 *
 * Per sample: one bounded walk of `_current_tasks` (a dict of a few
 * entries), then one read of each running TaskObj's header.  A task's
 * name is read once per (task, name object): a task renamed with
 * set_name() gets a new name object, and a freed task whose address is
 * reused by another almost always has another name object too.
 */
#include "remote/async_now.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "remote/py_asyncio.h"
#include "remote/py_names.h"

#define LOOKUP_EVERY_NS 100000000ull  /* sys.modules looked at for asyncio */
#define TASK_HEAD_MAX   256           /* bytes of a TaskObj (144-176) read */
#define BASES_MAX       16            /* tp_base links followed to Task    */
#define NAME_SLOTS      256           /* names kept, by task address       */

typedef struct name_slot {
    uint64_t task, name_obj;
    uint32_t sym;
} name_slot_t;

struct at_async_now {
    at_py_proc_t *p;
    at_symtab_t *syms;
    uint64_t current;         /* asyncio's _current_tasks dict, 0 unknown  */
    uint64_t task_type;       /* _asyncio.Task                             */
    uint64_t task_subtype;    /* the last type seen to derive from it      */
    uint64_t next_lookup_ns;
    int n;                    /* running tasks at the last read            */
    uint64_t frame[AT_ASYNC_NOW_MAX]; /* their coroutine's frame          */
    uint32_t sym[AT_ASYNC_NOW_MAX];
    name_slot_t names[NAME_SLOTS];
};

at_async_now_t *at_async_now_new(at_py_proc_t *p, at_symtab_t *syms)
{
    at_async_now_t *a = calloc(1, sizeof *a);
    if (a) {
        a->p = p;
        a->syms = syms;
    }
    return a;
}

void at_async_now_free(at_async_now_t *a)
{
    free(a);
}

/* asyncio's dicts, looked for until found (asyncio may be imported late). */
static void look_up(at_async_now_t *a, uint64_t now_ns)
{
    if (a->current || now_ns < a->next_lookup_ns)
        return;
    a->next_lookup_ns = now_ns + LOOKUP_EVERY_NS;
    uint64_t c_mod = at_py_module_dict(a->p, "_asyncio");
    uint64_t type = c_mod ? at_py_dict_get_str(a->p, c_mod, "Task") : 0;
    uint64_t current = c_mod ? at_py_dict_get_str(a->p, c_mod, "_current_tasks") : 0;
    if (type && current) {
        a->task_type = type;
        a->current = current;
    }
}

/* type is _asyncio.Task or derives from it (bounded tp_base links). */
static int is_task_type(at_async_now_t *a, uint64_t type)
{
    if (type == a->task_type || (type && type == a->task_subtype))
        return 1;
    uint64_t t = type;
    for (int i = 0; t && i < BASES_MAX; i++) {
        if (at_remote_read_u64(&a->p->mem, t + (uint64_t)a->p->layout.type_base, &t) < 0)
            return 0;
        if (t == a->task_type) {
            a->task_subtype = type;
            return 1;
        }
    }
    return 0;
}

/* The symbol "task NAME" of the task at addr named by name_obj. */
static uint32_t task_sym(at_async_now_t *a, uint64_t addr, uint64_t name_obj)
{
    name_slot_t *slot = &a->names[(addr >> 4) % NAME_SLOTS];
    if (slot->task == addr && slot->name_obj == name_obj && slot->sym != AT_SYM_NONE)
        return slot->sym;
    char text[AT_ASYNC_NAME_MAX], label[AT_ASYNC_NAME_MAX], func[AT_ASYNC_NAME_MAX + 8];
    if (at_asyncio_name(a->p, name_obj, text, sizeof text, label, sizeof label) < 0)
        return AT_SYM_NONE;
    snprintf(func, sizeof func, "task %s", label);
    *slot = (name_slot_t){ addr, name_obj, at_symtab_intern(a->syms, AT_SYM_TASK, func, "") };
    return slot->sym;
}

/* One running task: its coroutine's frame and its symbol. */
static void add_running(at_async_now_t *a, uint64_t addr)
{
    const at_pylayout_t *L = &a->p->layout;
    uint8_t b[TASK_HEAD_MAX];
    if (at_remote_read(&a->p->mem, addr, b, (size_t)L->task_read) < 0 ||
        !is_task_type(a, at_get_u64(b, L->object_type)))
        return;
    uint64_t coro = at_get_u64(b, L->task_coro);
    uint32_t sym = coro ? task_sym(a, addr, at_get_u64(b, L->task_name)) : AT_SYM_NONE;
    if (sym == AT_SYM_NONE)
        return;
    a->frame[a->n] = coro + (uint64_t)L->gen_iframe;
    a->sym[a->n++] = sym;
}

void at_async_now_read(at_async_now_t *a, uint64_t now_ns)
{
    uint64_t tasks[AT_ASYNC_NOW_MAX];
    a->n = 0;
    if (a->p->layout.task_read <= 0 || a->p->layout.task_read > TASK_HEAD_MAX)
        return;   /* no TaskObj layout for this version: nothing attributed */
    look_up(a, now_ns);
    int n = a->current ? at_py_dict_values(a->p, a->current, tasks, AT_ASYNC_NOW_MAX) : 0;
    for (int i = 0; i < n; i++)
        add_running(a, tasks[i]);
}

uint32_t at_async_now_task(const at_async_now_t *a, const at_pystack_t *st)
{
    for (int i = 0; i < a->n; i++)
        for (int k = 0; k < st->n; k++)
            if (st->frame_addr[k] == a->frame[i])
                return a->sym[i];
    return AT_SYM_NONE;
}

int at_async_now_count(const at_async_now_t *a)
{
    return a->n;
}
