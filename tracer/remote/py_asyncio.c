/* SPDX-License-Identifier: MIT */
/* py_asyncio.c - asyncio tasks, their await chains and creation sites, from outside (see py_asyncio.h).
 *
 * Three passes: gather the candidate objects (the WeakSet's referents
 * and the eager set's members), keep those whose type is the C Task (or
 * derives from it) and read each one in one go (TaskObj is 144-176
 * bytes), then follow each task's coroutine down its await chain.
 * Module globals and instance attributes are found with py_names.c's
 * bounded dict walk; str and int values with py_str.c and py_repr.c.
 */
#include "remote/py_asyncio.h"
#include "remote/py_asyncio_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "remote/py_names.h"
#include "remote/py_repr.h"
#include "remote/py_str.h"

#define SET_SLOTS_MAX  65536  /* set table slots scanned (1 MiB of entries) */
#define GEN_READ_MAX   (AT_ASYNC_TASK_READ_MAX) /* a coroutine through its frame's header */
#define BASES_MAX      16     /* tp_base links followed to find Task        */
#define STACK_SLOTS    (1 << 20) /* a frame's stacktop believed up to this  */
#define SLOT_OFF_MAX   4096   /* a __slots__ slot lies this near the header */
#define LIST_MAX       (1 << 24) /* a traceback list longer than this is corrupt */
#define FUNC_MAX       256    /* bytes of a function or file name read      */
#define RUNNING_MAX    256    /* loops' current tasks read from _current_tasks */
#define FS_LOOKUPS_MAX 4      /* FrameSummary types whose slots are looked up (one is real) */


const char *at_async_state_name(at_async_state_t s)
{
    return s == AT_ASYNC_DONE ? "done" : s == AT_ASYNC_CANCELLED ? "cancelled" : "pending";
}

/* ---- reads --------------------------------------------------------------- */

static uint64_t rd_u64(async_ctx_t *c, uint64_t addr)
{
    uint64_t v = 0;
    return rd(c, addr, &v, sizeof v) < 0 ? 0 : v;
}

static uint64_t type_of(async_ctx_t *c, uint64_t obj)
{
    return obj ? rd_u64(c, obj + (uint64_t)c->L->object_type) : 0;
}

/* type is `base` or derives from it (tp_base links, bounded). */
int at_asyncio_derives(async_ctx_t *c, uint64_t type, uint64_t base)
{
    for (int i = 0; type && base && i < BASES_MAX; i++) {
        if (type == base)
            return 1;
        type = rd_u64(c, type + (uint64_t)c->L->type_base);
    }
    return 0;
}

/* ---- gathering ------------------------------------------------------------ */

static int add_cand(async_ctx_t *c, uint64_t obj)
{
    if (!obj || c->ncand >= AT_ASYNC_MAX_TASKS * 4)
        return 0;
    if (c->ncand == c->cap) {
        int cap = c->cap ? c->cap * 2 : 256;
        uint64_t *n = realloc(c->cand, sizeof *n * (size_t)cap);
        if (!n)
            return -ENOMEM;
        c->cand = n;
        c->cap = cap;
    }
    c->cand[c->ncand++] = obj;
    return 0;
}

/* Every live key of the set at `set` (a weak reference's referent when
 * weak), as candidates.  A table is scanned up to SET_SLOTS_MAX slots. */
static int scan_set(async_ctx_t *c, uint64_t set, int weak)
{
    const at_pylayout_t *L = c->L;
    uint8_t head[AT_READ_VALUE_HEAD_MAX];
    size_t es = (size_t)L->sizeof_setentry;
    if (!set || L->set_table + 8 > (int32_t)sizeof head || es < 16 || es > 64 ||
        rd(c, set, head, (size_t)L->set_table + 8) < 0 ||
        !at_asyncio_derives(c, at_get_u64(head, L->object_type), c->p->known[AT_PYSYM_SET_TYPE]))
        return 0;
    int64_t mask = (int64_t)at_get_u64(head, L->set_mask);
    if (mask < 0 || at_get_u64(head, L->set_used) == 0)
        return 0;
    /* mask, not mask + 1, compared: a mask of INT64_MAX must not overflow */
    size_t slots = mask < SET_SLOTS_MAX ? (size_t)mask + 1 : SET_SLOTS_MAX;
    uint8_t *table = malloc(slots * es);
    if (!table)
        return -ENOMEM;
    int rc = rd(c, at_get_u64(head, L->set_table), table, slots * es) < 0 ? 0 : 1;
    for (size_t i = 0; rc == 1 && i < slots; i++) {
        uint64_t key = at_get_u64(table, i * es);
        int64_t hash = (int64_t)at_get_u64(table, i * es + 8);
        if (!key || hash == -1)   /* empty, or a deleted key's dummy */
            continue;
        if (add_cand(c, weak ? rd_u64(c, key + (uint64_t)L->weakref_object) : key) < 0)
            rc = -ENOMEM;
    }
    free(table);
    return rc < 0 ? rc : 0;
}

/* The tasks asyncio knows: the WeakSet (3.11's _all_tasks, later
 * _scheduled_tasks) and 3.12's _eager_tasks. */
int at_asyncio_gather(async_ctx_t *c, uint64_t tasks_dict)
{
    uint64_t weakset = at_py_dict_get_str(c->p, tasks_dict, "_scheduled_tasks");
    if (!weakset)
        weakset = at_py_dict_get_str(c->p, tasks_dict, "_all_tasks");
    int rc = weakset ? scan_set(c, at_py_attr(c->p, weakset, "data"), 1) : 0;
    if (rc == 0)
        rc = scan_set(c, at_py_dict_get_str(c->p, tasks_dict, "_eager_tasks"), 0);
    return rc;
}

int at_asyncio_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* ---- one task -------------------------------------------------------------- */

/* The bytes of s to keep within max: all of s when it fits, else a cut
 * that does not split a UTF-8 sequence (a name cut mid-character is no
 * longer valid UTF-8: a 60-character CJK name's repr is 182 bytes). */
static int utf8_cut(const char *s, size_t max)
{
    size_t n = strnlen(s, max);
    while (n == max && n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        max = --n;   /* s[n] continues a character begun before it */
    return (int)n;
}

int at_asyncio_name(at_py_proc_t *p, uint64_t name, char *text, size_t tlen, char *label, size_t llen)
{
    at_repr_t *r = name ? malloc(sizeof *r) : NULL;
    int rc = r ? at_py_repr(p, name, r, NULL) : -ENOMEM;
    if (at_py_str_read(&p->mem, &p->layout, p->unicode_type, name, text, tlen) < 0) {
        /* not a str: an int names "Task-N"; anything else shows its repr, cut to fit */
        const char *shown = rc == 0 ? r->text : "?";
        int n = snprintf(text, tlen, "%s", rc == 0 && !strcmp(r->type, "int") ? "Task-" : "");
        snprintf(text + n, tlen - (size_t)n, "%.*s", utf8_cut(shown, tlen - (size_t)n - 1), shown);
        snprintf(label, llen, "%s", text);
    } else if (rc == 0 && (r->text[0] == '\'' || r->text[0] == '"') && strrchr(r->text, r->text[0]) > r->text) {
        size_t inner = (size_t)(strrchr(r->text, r->text[0]) - r->text - 1);
        snprintf(label, llen, "%.*s%s", utf8_cut(r->text + 1, inner < llen - 4 ? inner : llen - 4),
                 r->text + 1, r->truncated || inner >= llen - 4 ? AT_REPR_CUT : "");
    } else {
        snprintf(label, llen, "%s", text);
    }
    free(r);
    return rc == -ESRCH ? -ESRCH : 0;
}

static void read_name(async_ctx_t *c, uint64_t name, at_async_task_t *t)
{
    c->gone |= at_asyncio_name(c->p, name, t->name, sizeof t->name, t->label, sizeof t->label) == -ESRCH;
}

/* What the suspended coroutine whose frame header is fr awaits: the top
 * of its value stack when it sits in an await (3.13 says so in its
 * frame state; before, the instruction after the YIELD_VALUE it stopped
 * at is a RESUME whose oparg is 2 after `yield from`, 3 after `await`,
 * as _PyGen_yf checks); 0 when it is at a plain yield. */
static uint64_t awaited(async_ctx_t *c, uint64_t coro, const uint8_t *fr, int state)
{
    const at_pylayout_t *L = c->L;
    if (L->has_yield_from_state) {
        if (state != L->frame_suspended_yield_from)
            return 0;
    } else {
        uint8_t next[2];
        if (rd(c, at_get_u64(fr, L->iframe_instr) + (uint64_t)L->sizeof_codeunit, next, sizeof next) < 0 ||
            next[1] < 2)
            return 0;
    }
    int32_t top = at_get_i32(fr, L->iframe_stacktop);
    if (top <= 0 || top > STACK_SLOTS)
        return 0;
    return rd_u64(c, coro + (uint64_t)L->gen_iframe + (uint64_t)L->iframe_localsplus + (uint64_t)(top - 1) * 8);
}

static int suspended(const at_pylayout_t *L, int state)
{
    return state == L->frame_suspended ||
           (L->has_yield_from_state && state == L->frame_suspended_yield_from);
}

/* The coroutine chain from the task's coroutine down: each coroutine's
 * (or @types.coroutine generator's) frame, until one that is not
 * suspended in an await, or an awaited object that is not a coroutine
 * (a future, a task). */
static void read_stack(async_ctx_t *c, at_async_task_t *t, uint64_t coro)
{
    const at_pylayout_t *L = c->L;
    uint64_t seen[AT_ASYNC_MAX_DEPTH];
    uint8_t g[GEN_READ_MAX];
    for (int d = 0; coro && !c->gone; d++) {
        uint64_t type = type_of(c, coro);
        if (!type || (type != c->p->known[AT_PYSYM_CORO_TYPE] && type != c->p->known[AT_PYSYM_GEN_TYPE])) {
            t->stack_cut |= !type;   /* an object that cannot be read ends the chain early */
            return;
        }
        for (int i = 0; i < d; i++)
            if (seen[i] == coro) {   /* a cycle: shown once */
                t->stack_cut = 1;
                return;
            }
        if (d == AT_ASYNC_MAX_DEPTH || rd(c, coro, g, (size_t)L->gen_iframe + AT_READ_FRAME) < 0) {
            t->stack_cut = 1;
            return;
        }
        seen[d] = coro;
        int state = (int8_t)g[L->gen_frame_state];
        at_pyframe_t f;
        if (state >= L->frame_completed)
            return;
        int rc = at_walker_frame(c->w, coro + (uint64_t)L->gen_iframe, &f);
        c->gone |= rc == -ESRCH;
        if (rc < 0) {
            t->stack_cut = 1;
            return;
        }
        t->stack[t->n++] = (at_frame_t){ .sym = f.sym, .line = f.line };
        if (state != L->frame_created && !suspended(L, state))
            t->running_frame = coro + (uint64_t)L->gen_iframe;   /* executing: see at_asyncio_join */
        coro = suspended(L, state) ? awaited(c, coro, g + L->gen_iframe, state) : 0;
    }
}

/* ---- where a task was created ---------------------------------------------- */

/* The offset of __slots__ slot `name` of a heap type: its member
 * descriptor in the type's dict names it. */
static int64_t slot_offset(async_ctx_t *c, uint64_t type, const char *name)
{
    const at_pylayout_t *L = c->L;
    uint64_t dict = rd_u64(c, type + (uint64_t)L->type_dict);
    uint64_t descr = dict ? at_py_dict_get_str(c->p, dict, name) : 0;
    uint64_t member = descr ? rd_u64(c, descr + (uint64_t)L->memberdescr_member) : 0;
    int64_t off = member ? (int64_t)rd_u64(c, member + (uint64_t)L->memberdef_offset) : 0;
    return off >= 16 && off < SLOT_OFF_MAX && off % 8 == 0 ? off : -1;
}

/* FrameSummary's slots, looked up once per type, and for at most
 * FS_LOOKUPS_MAX types a read: a lookup is 3 dict walks of up to 16384
 * entries, and a type without the slots is not remembered, so a target
 * whose summaries all have such a type would cost 3 walks per summary
 * (32 per task, 4096 tasks: billions of reads). */
static int frame_summary_slots(async_ctx_t *c, uint64_t type)
{
    if (type && type == c->fs_type)
        return 0;
    if (c->fs_lookups >= FS_LOOKUPS_MAX)
        return -EPROTO;
    c->fs_lookups++;
    c->fs_filename = slot_offset(c, type, "filename");
    c->fs_lineno = slot_offset(c, type, "lineno");
    c->fs_name = slot_offset(c, type, "name");
    if (c->fs_filename < 0 || c->fs_lineno < 0 || c->fs_name < 0)
        return -EPROTO;
    c->fs_type = type;
    return 0;
}

static int32_t int_value(async_ctx_t *c, uint64_t obj)
{
    at_repr_t *r = malloc(sizeof *r);
    long v = -1;
    if (r && at_py_repr(c->p, obj, r, NULL) == 0 && !strcmp(r->type, "int")) {
        char *end;
        v = strtol(r->text, &end, 10);
        if (*end || v < 0 || v > INT32_MAX)
            v = -1;
    }
    free(r);
    return (int32_t)v;
}

/* One FrameSummary into f: 0, or -EPROTO when it is not one. */
static int read_summary(async_ctx_t *c, uint64_t fs, at_frame_t *f)
{
    char func[FUNC_MAX], file[FUNC_MAX];
    uint64_t type = type_of(c, fs);
    if (!type || frame_summary_slots(c, type) < 0)
        return -EPROTO;
    uint64_t fn = rd_u64(c, fs + (uint64_t)c->fs_filename), nm = rd_u64(c, fs + (uint64_t)c->fs_name);
    if (at_py_str_read(&c->p->mem, c->L, c->p->unicode_type, fn, file, sizeof file) < 0 ||
        at_py_str_read(&c->p->mem, c->L, c->p->unicode_type, nm, func, sizeof func) < 0)
        return -EPROTO;
    f->line = int_value(c, rd_u64(c, fs + (uint64_t)c->fs_lineno));
    f->sym = at_symtab_intern(c->syms, AT_SYM_PY, func, file);
    return f->sym == AT_SYM_NONE ? -ENOMEM : 0;
}

/* _source_traceback (debug mode): the innermost AT_ASYNC_MAX_CREATED
 * entries of the list, outermost first as traceback prints them. */
static void read_created(async_ctx_t *c, at_async_task_t *t, uint64_t tb)
{
    const at_pylayout_t *L = c->L;
    uint8_t head[AT_READ_VALUE_HEAD_MAX];
    uint64_t items[AT_ASYNC_MAX_CREATED];
    if (!tb || tb == c->p->known[AT_PYSYM_NONE] || L->list_items + 8 > (int32_t)sizeof head ||
        rd(c, tb, head, (size_t)L->list_items + 8) < 0 ||
        !at_asyncio_derives(c, at_get_u64(head, L->object_type), c->p->known[AT_PYSYM_LIST_TYPE]))
        return;
    int64_t n = (int64_t)at_get_u64(head, L->var_size);
    if (n < 0 || n > LIST_MAX)
        return;
    int64_t from = n > AT_ASYNC_MAX_CREATED ? n - AT_ASYNC_MAX_CREATED : 0;
    if (n && rd(c, at_get_u64(head, L->list_items) + (uint64_t)from * 8, items, (size_t)(n - from) * 8) < 0)
        return;
    for (int64_t i = 0; i < n - from; i++)
        if (read_summary(c, items[i], &t->created[t->n_created]) == 0)
            t->n_created++;
    t->created_known = 1;
}

/* The task at addr into t: 0, or -1 when it is not a C Task. */
static int read_task(async_ctx_t *c, uint64_t addr, at_async_task_t *t)
{
    const at_pylayout_t *L = c->L;
    uint8_t b[AT_ASYNC_TASK_READ_MAX];
    if (rd(c, addr, b, (size_t)L->task_read) < 0 || !at_asyncio_derives(c, at_get_u64(b, L->object_type), c->task_type))
        return -1;
    memset(t, 0, sizeof *t);
    t->addr = addr;
    t->loop = at_get_u64(b, L->task_loop);
    t->awaits = at_get_u64(b, L->task_fut_waiter);   /* kept only if a task: see resolve_awaits */
    int32_t st = at_get_i32(b, L->task_state);
    t->state = st == L->fut_state_cancelled ? AT_ASYNC_CANCELLED
             : st == L->fut_state_finished ? AT_ASYNC_DONE : AT_ASYNC_PENDING;
    read_name(c, at_get_u64(b, L->task_name), t);
    if (t->state == AT_ASYNC_PENDING)
        read_stack(c, t, at_get_u64(b, L->task_coro));
    read_created(c, t, at_get_u64(b, L->task_source_tb));
    return 0;
}

/* ---- the whole ----------------------------------------------------------- */

static int cmp_tasks(const void *a, const void *b)
{
    const at_async_task_t *x = a, *y = b;
    if (x->loop != y->loop)
        return (x->loop > y->loop) - (x->loop < y->loop);
    int n = strcmp(x->name, y->name);
    return n ? n : (x->addr > y->addr) - (x->addr < y->addr);
}

int at_asyncio_join(at_async_task_t *t, const at_pystack_t *st, uint32_t tid)
{
    int k = 0;
    if (!t->running_frame || t->thread)
        return 0;
    while (k < st->n && st->frame_addr[k] != t->running_frame)
        k++;
    if (k == st->n)
        return 0;
    for (int i = k - 1; i >= 0; i--) {
        if (st->frames[i].skip)
            continue;
        if (t->n == AT_ASYNC_MAX_DEPTH) {
            t->stack_cut = 1;
            break;
        }
        t->stack[t->n++] = (at_frame_t){ .sym = st->frames[i].sym, .line = st->frames[i].line };
    }
    t->thread = tid;
    return 1;
}

const at_async_task_t *at_asyncio_find(const at_asyncio_t *a, uint64_t addr)
{
    for (int i = 0; addr && i < a->n; i++)
        if (a->tasks[i].addr == addr)
            return &a->tasks[i];
    return NULL;
}

/* A task's waiter is kept when it is one of the tasks read (a plain
 * future, a sleep's, is not a task). */
static void resolve_awaits(at_asyncio_t *a)
{
    for (int i = 0; i < a->n; i++)
        if (!at_asyncio_find(a, a->tasks[i].awaits) || a->tasks[i].awaits == a->tasks[i].addr)
            a->tasks[i].awaits = 0;
}

/* Mark the tasks that _current_tasks (loop -> task) says run now. */
static void mark_running(async_ctx_t *c, uint64_t tasks_dict, at_asyncio_t *out)
{
    uint64_t running[RUNNING_MAX];
    uint64_t current = at_py_dict_get_str(c->p, tasks_dict, "_current_tasks");
    int n = current ? at_py_dict_values(c->p, current, running, RUNNING_MAX) : 0;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < out->n; k++)
            out->tasks[k].running |= out->tasks[k].addr == running[i];
}

static int read_all(async_ctx_t *c, at_asyncio_t *out)
{
    /* no candidate (asyncio imported, no task yet) leaves cand NULL, which
     * qsort must not be given even with a count of 0 (UBSan: nonnull) */
    if (c->ncand)
        qsort(c->cand, (size_t)c->ncand, sizeof *c->cand, at_asyncio_cmp_u64);
    int cap = c->ncand < AT_ASYNC_MAX_TASKS ? c->ncand : AT_ASYNC_MAX_TASKS;
    if (!(out->tasks = calloc((size_t)(cap ? cap : 1), sizeof *out->tasks)))
        return -ENOMEM;
    for (int i = 0; i < c->ncand && !c->gone; i++) {
        if (i && c->cand[i] == c->cand[i - 1])
            continue;
        if (out->n == AT_ASYNC_MAX_TASKS) {
            out->more++;
            continue;
        }
        if (read_task(c, c->cand[i], &out->tasks[out->n]) == 0)
            out->n++;
        else if (type_of(c, c->cand[i]) && c->cand[i] != c->p->known[AT_PYSYM_NONE])
            out->py_tasks++;   /* another kind of task: _PyTask */
    }
    qsort(out->tasks, (size_t)out->n, sizeof *out->tasks, cmp_tasks);
    resolve_awaits(out);
    return c->gone ? -ESRCH : 0;
}

int at_asyncio_read(at_py_proc_t *p, at_walker_t *w, at_symtab_t *syms, at_asyncio_t *out)
{
    async_ctx_t c = { .p = p, .L = &p->layout, .w = w, .syms = syms };
    memset(out, 0, sizeof *out);
    if (p->layout.task_read > AT_ASYNC_TASK_READ_MAX || p->layout.gen_iframe + AT_READ_FRAME > GEN_READ_MAX)
        return -EPROTO;
    uint64_t tasks_dict = at_py_module_dict(p, "asyncio.tasks"), c_mod = at_py_module_dict(p, "_asyncio");
    out->imported = tasks_dict != 0;
    c.task_type = c_mod ? at_py_dict_get_str(p, c_mod, "Task") : 0;
    if (!tasks_dict)
        return at_remote_read_u64(&p->mem, p->runtime, &(uint64_t){ 0 }) == -ESRCH ? -ESRCH : 0;
    int rc = at_asyncio_gather(&c, tasks_dict);
    if (rc == 0)
        rc = read_all(&c, out);
    if (rc == 0)
        mark_running(&c, tasks_dict, out);
    free(c.cand);
    return rc == 0 && c.gone ? -ESRCH : rc;
}

void at_asyncio_free(at_asyncio_t *a)
{
    free(a->tasks);
    memset(a, 0, sizeof *a);
}
