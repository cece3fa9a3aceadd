/* SPDX-License-Identifier: MIT */
/* dump_out.c - the text and JSON of `archtrace -p PID dump` (see dump_out.h). */
#include "cli/dump_out.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "out/textout.h"
#include "remote/py_repr.h"

#define LABEL_MAX 2048
#define VAR_TEXT  (AT_REPR_TEXT_MAX * 4)   /* a repr escaped for the terminal */

/* ---- text ------------------------------------------------------------------ */

/* ` "name"` of a thread threading knows (read by the sampler from
 * threading._active), escaped, or "". */
static const char *quoted_name(const at_target_t *t, uint32_t tid, char *buf, size_t n)
{
    char esc[AT_PY_NAME_MAX * 4];
    const char *name = at_thread_names_get(at_stacks_names(t->stacks), tid);
    if (!name)
        return "";
    at_text_escape(esc, sizeof esc, name);
    snprintf(buf, n, " \"%s\"", esc);
    return buf;
}

static void put_frame_in(FILE *f, const at_stacks_t *s, const at_frame_t *fr, const char *indent);

static void put_frame(FILE *f, const at_stacks_t *s, const at_frame_t *fr)
{
    put_frame_in(f, s, fr, "  ");
}

/* A frame as a traceback prints it, after `indent`. */
static void put_frame_in(FILE *f, const at_stacks_t *s, const at_frame_t *fr, const char *indent)
{
    at_symtab_t *syms = at_stacks_symtab((at_stacks_t *)s);
    char func[LABEL_MAX], file[LABEL_MAX];
    at_text_escape(func, sizeof func, at_symtab_func(syms, fr->sym));
    at_text_escape(file, sizeof file, at_symtab_file(syms, fr->sym));
    switch (at_symtab_kind(syms, fr->sym)) {
    case AT_SYM_PY:
        if (fr->line >= 0)
            fprintf(f, "%sFile \"%s\", line %d, in %s\n", indent, file, (int)fr->line, func);
        else
            fprintf(f, "%sFile \"%s\", line ?, in %s\n", indent, file, func);
        break;
    case AT_SYM_NATIVE:
        fprintf(f, "%s[native] %s (%s)\n", indent, func, file);
        break;
    default:
        fprintf(f, "%s%s\n", indent, func);
    }
}

/* A frame's variables, one a line: "    arg    name = repr". */
static void put_locals(FILE *f, const at_frame_locals_t *fl)
{
    char name[AT_LOCAL_NAME_MAX * 4], *text = malloc(VAR_TEXT);
    if (fl->error[0])
        fprintf(f, "    (variables unreadable: %s)\n", fl->error);
    for (int i = 0; text && i < fl->n; i++) {
        const at_local_t *v = &fl->vars[i];
        at_text_escape(name, sizeof name, v->name);
        at_text_escape(text, VAR_TEXT, v->repr ? v->repr : "?");
        fprintf(f, "    %-6s %s = %s\n", at_local_kind_name(v->kind), name, text);
    }
    if (fl->more)
        fprintf(f, "    (%d more variables not shown)\n", fl->more);
    free(text);
}

static void put_thread(FILE *f, const at_target_t *t, const at_dump_thread_t *th)
{
    char name[AT_PY_NAME_MAX * 4 + 4];
    fprintf(f, "\nThread %u%s (%s%s)\n", th->tid, quoted_name(t, th->tid, name, sizeof name),
            th->gil ? "holds the GIL, " : "", th->idle ? "idle" : "running");
    for (int i = 0; i < th->n; i++) {
        put_frame(f, t->stacks, &th->frames[i].f);
        if (th->frames[i].locals)
            put_locals(f, th->frames[i].locals);
    }
    if (th->n == 0)
        fprintf(f, "  (no Python frames)\n");
}

/* `Task "name"`, escaped, into buf. */
static const char *task_label(const at_async_task_t *k, char *buf, size_t n)
{
    char esc[AT_ASYNC_NAME_MAX * 4];
    at_text_escape(esc, sizeof esc, k->label);
    snprintf(buf, n, "Task \"%s\"", esc);
    return buf;
}

static void put_awaited_by(FILE *f, const at_asyncio_t *a, const at_async_task_t *k)
{
    char label[AT_ASYNC_NAME_MAX * 4 + 8];
    int first = 1;
    for (int i = 0; i < a->n; i++) {
        if (a->tasks[i].awaits != k->addr)
            continue;
        fprintf(f, "%s%s", first ? "    awaited by " : ", ", task_label(&a->tasks[i], label, sizeof label));
        first = 0;
    }
    if (!first)
        fputc('\n', f);
}

static void put_task(FILE *f, const at_target_t *t, const at_asyncio_t *a, const at_async_task_t *k)
{
    char label[AT_ASYNC_NAME_MAX * 4 + 8];
    const at_async_task_t *w = at_asyncio_find(a, k->awaits);
    fprintf(f, "  %s (%s%s)\n", task_label(k, label, sizeof label), at_async_state_name(k->state),
            k->running ? ", running" : "");
    if (w)
        fprintf(f, "    awaiting %s\n", task_label(w, label, sizeof label));
    put_awaited_by(f, a, k);
    if (k->thread)
        fprintf(f, "    on thread %u, now:\n", k->thread);
    for (int i = 0; i < k->n; i++)
        put_frame_in(f, t->stacks, &k->stack[i], "    ");
    if (k->stack_cut)
        fprintf(f, "    [truncated]\n");
    if (!k->created_known) {
        fprintf(f, "    created: not known (the loop is not in debug mode)\n");
        return;
    }
    fprintf(f, "    created at:\n");
    for (int i = 0; i < k->n_created; i++)
        put_frame_in(f, t->stacks, &k->created[i], "      ");
}

/* Every task under its loop's heading (the tasks come sorted by loop). */
static void put_asyncio(FILE *f, const at_target_t *t, const at_asyncio_t *a)
{
    if (a->n == 0)
        fprintf(f, "\nno asyncio event loop (%s)\n", a->imported ? "no tasks" : "asyncio is not imported");
    for (int i = 0; i < a->n; i++) {
        if (i == 0 || a->tasks[i].loop != a->tasks[i - 1].loop)
            fprintf(f, "\nEvent loop 0x%" PRIx64 ":\n", a->tasks[i].loop);
        put_task(f, t, a, &a->tasks[i]);
    }
    if (a->more)
        fprintf(f, "(%d more tasks not read)\n", a->more);
    if (a->py_tasks)
        fprintf(f, "(%d pure-Python tasks not shown: only the C Task is read)\n", a->py_tasks);
}

void at_dump_print_text(FILE *out, const at_target_t *t, const at_dump_t *d)
{
    char comm[128];
    at_text_escape(comm, sizeof comm, t->proc.comm);
    fprintf(out, "Process %d (%s): Python %s, %s build", (int)t->proc.pid, comm, t->proc.version,
            at_py_proc_build(&t->proc));
    if (d->ppid) {
        at_text_escape(comm, sizeof comm, d->parent_comm);
        fprintf(out, ", parent %d (%s)", (int)d->ppid, comm);
    }
    fprintf(out, "\n");
    if (d->asyncio)
        put_asyncio(out, t, d->asyncio);
    for (int i = 0; i < d->n; i++)
        put_thread(out, t, &d->threads[i]);
    fflush(out);
}

/* ---- order ------------------------------------------------------------------ */

static pid_t main_tid_for_sort;

static int cmp_threads(const void *a, const void *b)
{
    const at_dump_thread_t *x = a, *y = b;
    int xm = x->tid == (uint32_t)main_tid_for_sort, ym = y->tid == (uint32_t)main_tid_for_sort;
    if (xm != ym)
        return ym - xm;
    return (x->tid > y->tid) - (x->tid < y->tid);
}

void at_dump_sort(at_dump_t *d, pid_t main_tid)
{
    main_tid_for_sort = main_tid;
    qsort(d->threads, (size_t)d->n, sizeof *d->threads, cmp_threads);
}

/* ---- JSON ------------------------------------------------------------------ */

static void json_var(at_json_t *j, const at_local_t *v)
{
    at_json_obj_begin(j);
    at_json_kv_str(j, "name", v->name);
    at_json_kv_str(j, "kind", at_local_kind_name(v->kind));
    at_json_key(j, "type");
    if (v->type[0])
        at_json_str(j, v->type);
    else
        at_json_null(j);
    at_json_kv_str(j, "repr", v->repr);
    if (v->unbound)
        at_json_kv_bool(j, "unbound", 1);
    else if (v->json) {
        at_json_key(j, "value");
        at_json_raw(j, v->json);
    }
    if (v->truncated)
        at_json_kv_bool(j, "truncated", 1);
    if (v->error)
        at_json_kv_str(j, "error", at_py_repr_why(v->error));
    at_json_obj_end(j);
}

static void json_locals(at_json_t *j, const at_frame_locals_t *fl)
{
    at_json_key(j, "locals");
    at_json_arr_begin(j);
    for (int i = 0; i < fl->n; i++)
        json_var(j, &fl->vars[i]);
    at_json_arr_end(j);
    if (fl->error[0])
        at_json_kv_str(j, "locals_error", fl->error);
    if (fl->more)
        at_json_kv_int(j, "locals_more", fl->more);
}

static void json_frame(at_json_t *j, const at_target_t *t, const at_dump_frame_t *fr)
{
    static const char *const kinds[] = { [AT_SYM_PY] = "python", [AT_SYM_NATIVE] = "native",
                                         [AT_SYM_MARK] = "mark" };
    at_symtab_t *syms = at_stacks_symtab(t->stacks);
    int kind = at_symtab_kind(syms, fr->f.sym);
    at_json_obj_begin(j);
    at_json_kv_str(j, "function", at_symtab_func(syms, fr->f.sym));
    at_json_kv_str(j, "file", at_symtab_file(syms, fr->f.sym));
    at_json_key(j, "line");
    if (fr->f.line >= 0)
        at_json_int(j, fr->f.line);
    else
        at_json_null(j);
    at_json_kv_str(j, "kind", kind >= 0 && kind <= AT_SYM_MARK ? kinds[kind] : "mark");
    if (fr->locals)
        json_locals(j, fr->locals);
    at_json_obj_end(j);
}

static void json_thread(at_json_t *j, const at_target_t *t, const at_dump_thread_t *th)
{
    const char *name = at_thread_names_get(at_stacks_names(t->stacks), th->tid);
    at_json_obj_begin(j);
    at_json_kv_uint(j, "tid", th->tid);
    at_json_kv_str(j, "name", name);
    at_json_kv_bool(j, "main", th->tid == (uint32_t)t->proc.pid);
    at_json_kv_bool(j, "gil", th->gil);
    at_json_kv_bool(j, "idle", th->idle);
    at_json_key(j, "frames");
    at_json_arr_begin(j);
    for (int i = 0; i < th->n; i++)
        json_frame(j, t, &th->frames[i]);
    at_json_arr_end(j);
    at_json_obj_end(j);
}

static void json_frames(at_json_t *j, const at_target_t *t, const at_frame_t *fr, int n)
{
    at_symtab_t *syms = at_stacks_symtab(t->stacks);
    at_json_arr_begin(j);
    for (int i = 0; i < n; i++) {
        at_json_obj_begin(j);
        at_json_kv_str(j, "function", at_symtab_func(syms, fr[i].sym));
        at_json_kv_str(j, "file", at_symtab_file(syms, fr[i].sym));
        at_json_key(j, "line");
        if (fr[i].line >= 0)
            at_json_int(j, fr[i].line);
        else
            at_json_null(j);
        at_json_obj_end(j);
    }
    at_json_arr_end(j);
}

static void json_task(at_json_t *j, const at_target_t *t, const at_asyncio_t *a, const at_async_task_t *k)
{
    at_json_obj_begin(j);
    at_json_kv_str(j, "name", k->name);
    at_json_kv_str(j, "state", at_async_state_name(k->state));
    at_json_kv_bool(j, "running", k->running);
    at_json_key(j, "thread");
    if (k->thread)
        at_json_uint(j, k->thread);
    else
        at_json_null(j);
    at_json_kv_uint(j, "id", k->addr);
    at_json_key(j, "awaits");
    if (k->awaits)
        at_json_uint(j, k->awaits);
    else
        at_json_null(j);
    at_json_key(j, "awaited_by");
    at_json_arr_begin(j);
    for (int i = 0; i < a->n; i++)
        if (a->tasks[i].awaits == k->addr)
            at_json_uint(j, a->tasks[i].addr);
    at_json_arr_end(j);
    at_json_key(j, "stack");
    json_frames(j, t, k->stack, k->n);
    at_json_kv_bool(j, "stack_truncated", k->stack_cut);
    at_json_key(j, "created");
    if (k->created_known)
        json_frames(j, t, k->created, k->n_created);
    else
        at_json_null(j);
    at_json_obj_end(j);
}

static void json_loop_end(at_json_t *j)
{
    at_json_arr_end(j);
    at_json_obj_end(j);
}

/* "asyncio": [{"loop", "tasks": [...]}], one entry per loop. */
static void json_asyncio(at_json_t *j, const at_target_t *t, const at_asyncio_t *a)
{
    at_json_key(j, "asyncio");
    at_json_arr_begin(j);
    for (int i = 0; i < a->n; i++) {
        if (i == 0 || a->tasks[i].loop != a->tasks[i - 1].loop) {
            if (i)
                json_loop_end(j);
            at_json_obj_begin(j);
            at_json_kv_uint(j, "loop", a->tasks[i].loop);
            at_json_key(j, "tasks");
            at_json_arr_begin(j);
        }
        json_task(j, t, a, &a->tasks[i]);
    }
    if (a->n)
        json_loop_end(j);
    at_json_arr_end(j);
    at_json_kv_bool(j, "asyncio_imported", a->imported);
    at_json_kv_int(j, "asyncio_py_tasks", a->py_tasks);
    at_json_kv_int(j, "asyncio_more", a->more);
}

static void json_process(at_json_t *j, const at_target_t *t, const at_dump_t *d)
{
    at_json_obj_begin(j);
    at_json_kv_int(j, "pid", t->proc.pid);
    at_json_key(j, "ppid");
    if (d->ppid)
        at_json_int(j, d->ppid);
    else
        at_json_null(j);
    at_json_kv_str(j, "comm", t->proc.comm);
    at_json_key(j, "python");
    at_json_obj_begin(j);
    at_json_kv_str(j, "version", t->proc.version);
    at_json_kv_str(j, "build", at_py_proc_build(&t->proc));
    at_json_obj_end(j);
    at_json_kv_bool(j, "locals", d->locals);
    if (d->asyncio)
        json_asyncio(j, t, d->asyncio);
    at_json_key(j, "threads");
    at_json_arr_begin(j);
    for (int i = 0; i < d->n; i++)
        json_thread(j, t, &d->threads[i]);
    at_json_arr_end(j);
    at_json_obj_end(j);
}

int at_dump_write_json(FILE *out, const at_target_t *const *t, const at_dump_t *const *d, int n)
{
    at_json_t j;
    at_json_init(&j, out, 1);
    at_json_obj_begin(&j);
    at_json_kv_str(&j, "schema", "archtrace/1");
    at_json_kv_str(&j, "command", "dump");
    at_json_key(&j, "processes");
    at_json_arr_begin(&j);
    for (int i = 0; i < n; i++)
        json_process(&j, t[i], d[i]);
    at_json_arr_end(&j);
    at_json_obj_end(&j);
    if (fflush(out) == 0 && !ferror(out))
        return 0;
    return errno ? -errno : -EIO;
}

/* ---- lifetime ------------------------------------------------------------------ */

void at_dump_clear(at_dump_t *d)
{
    for (int i = 0; i < d->n; i++) {
        at_dump_thread_t *th = &d->threads[i];
        for (int k = 0; k < th->n; k++) {
            if (th->frames[k].locals)
                at_locals_free(th->frames[k].locals);
            free(th->frames[k].locals);
        }
        free(th->frames);
    }
    d->n = 0;
}
