/* SPDX-License-Identifier: MIT */
/* cmd_dump.c - `archtrace -p PID dump [--locals] [--asyncio] [--json FILE]` (see cmd_dump.h).
 *
 * One sample of every thread, kept rather than counted: each thread's
 * frames, and with --locals each Python frame's variables, read while a
 * running thread is stopped for its walk (the sampler's on_pystack hook
 * runs before it resumes), so the values belong to the frames shown.
 * The hook sees the walk's frames most recent first; the sampler's
 * callback then sees them root first as printed, and each variables
 * list goes to the printed frame of the same function, in order.
 * With --asyncio the hook also keeps each thread's walked frames (with
 * their addresses); the tasks are read after the sample, every thread
 * stopped, and a task whose coroutine is executing is joined with the
 * thread whose stack holds that coroutine's frame.
 */
#include "cli/cmd_dump.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/dump_out.h"
#include "cli/recording.h"
#include "remote/native.h"   /* at_thread_stop: the tasks read at one moment */
#include "out/textout.h"

/* A dump reads threads that run on.  One caught entering or leaving the
 * eval loop (3.11/3.12 set tstate->cframe before the new cframe's
 * current_frame) or switching coroutines reads, for a few instructions,
 * as no frames, "[unknown]" ones, or a chain cut short ("[truncated]"
 * short of the depth limit).  A dump is one moment a person reads, so it
 * reads again (a sampler just counts the odd sample). */
#define DUMP_TORN_RETRIES 20
/* Remote reads the variables of one dump may take (~0.5 s of them).
 * Each value is bounded (py_repr.c), each frame and each stack too, but
 * their product is not: 512 threads of 256 frames of 256 variables.
 * Past this, frames say their variables were not read; checked per
 * frame, so one frame may go past it by its own bound. */
#define LOCALS_MAX_READS 200000ul

typedef struct dump_ctx {
    at_dump_t dump;
    int torn;                 /* a running thread read mid-change          */
    int json;                 /* variables' JSON values are wanted         */
    int oom;                  /* memory ran out while keeping a thread     */
    unsigned long calls0;     /* t->proc.mem.calls when this sample began  */
    /* with --asyncio, each thread's frames as walked (most recent first,
     * with their addresses), to join a running task with its thread */
    int nwalked;
    uint32_t walked_tid[AT_MAX_THREADS];
    at_pystack_t *walked[AT_MAX_THREADS];
    /* the current thread's variables, root first, from the hook */
    int pend_n;
    uint32_t pend_sym[AT_MAX_STACK_DEPTH];
    at_frame_locals_t pend[AT_MAX_STACK_DEPTH];
} dump_ctx_t;

static int looks_torn(const at_target_t *t, const at_thread_t *th, const at_frame_t *frames, int n)
{
    at_symtab_t *syms = at_stacks_symtab(t->stacks);
    int py = 0, cut = 0;
    for (int i = 0; i < n; i++) {
        int kind = at_symtab_kind(syms, frames[i].sym);
        const char *name = at_symtab_func(syms, frames[i].sym);
        py += kind == AT_SYM_PY;
        if (kind == AT_SYM_MARK && !strcmp(name, "[unknown]"))
            return 1;
        cut |= kind == AT_SYM_MARK && !strcmp(name, "[truncated]");
    }
    return (n == 0 && !th->idle) || (cut && py < AT_MAX_STACK_DEPTH);
}

static void pend_clear(dump_ctx_t *d)
{
    for (int i = 0; i < d->pend_n; i++)
        at_locals_free(&d->pend[i]);
    d->pend_n = 0;
}

/* The hook: every shown frame's variables, kept root first, read
 * innermost first (the read budget goes to the frames most looked at). */
static int read_locals(void *ctx, at_target_t *t, const at_thread_t *th, const at_pystack_t *st)
{
    dump_ctx_t *d = ctx;
    int k = 0;
    (void)th;
    pend_clear(d);
    for (int i = 0; i < st->n; i++)
        k += !st->frames[i].skip;   /* not shown: incomplete, or a C-stack entry frame */
    d->pend_n = k;
    memset(d->pend, 0, sizeof *d->pend * (size_t)k);
    for (int i = 0; i < st->n; i++) {
        if (st->frames[i].skip)
            continue;
        at_frame_locals_t *fl = &d->pend[--k];
        d->pend_sym[k] = st->frames[i].sym;
        if (t->proc.mem.calls - d->calls0 > LOCALS_MAX_READS) {
            snprintf(fl->error, sizeof fl->error, "not read: this dump spent its %lu reads of variables",
                     LOCALS_MAX_READS);
            continue;
        }
        int rc = at_locals_read(&t->proc, st->frame_addr[i], st->code_addr[i], d->json, fl);
        if (rc < 0)
            return rc;  /* -ESRCH, -ENOMEM: this sample fails */
    }
    return 0;
}

/* Keep thread th's walked frames (the last walk of it wins: a torn
 * sample is read again). */
static int keep_walk(dump_ctx_t *d, const at_thread_t *th, const at_pystack_t *st)
{
    int i = 0;
    while (i < d->nwalked && d->walked_tid[i] != th->tid)
        i++;
    if (i == AT_MAX_THREADS)
        return 0;
    if (i == d->nwalked) {
        if (!(d->walked[i] = malloc(sizeof *d->walked[i])))
            return -ENOMEM;
        d->walked_tid[d->nwalked++] = th->tid;
    }
    *d->walked[i] = *st;
    return 0;
}

/* The hook: --asyncio keeps the frames, --locals reads their variables. */
static int on_stack(void *ctx, at_target_t *t, const at_thread_t *th, const at_pystack_t *st)
{
    dump_ctx_t *d = ctx;
    int rc = d->dump.asyncio ? keep_walk(d, th, st) : 0;
    return rc == 0 && d->dump.locals ? read_locals(ctx, t, th, st) : rc;
}

/* Give printed frame fr the next pending variables when they are its
 * function's (frames the walk did not show, such as markers, get none). */
static void attach_locals(dump_ctx_t *d, int *next, at_dump_frame_t *fr)
{
    if (*next >= d->pend_n || d->pend_sym[*next] != fr->f.sym)
        return;
    fr->locals = malloc(sizeof *fr->locals);
    if (!fr->locals) {
        d->oom = 1;
        return;
    }
    *fr->locals = d->pend[*next];
    memset(&d->pend[*next], 0, sizeof d->pend[*next]);
    ++*next;
}

static void keep_thread(void *ctx, const at_target_t *t, const at_thread_t *th, const at_frame_t *frames, int n)
{
    dump_ctx_t *d = ctx;
    d->torn |= looks_torn(t, th, frames, n);
    if (d->dump.n >= AT_MAX_THREADS)
        return;
    at_dump_thread_t *kept = &d->dump.threads[d->dump.n];
    *kept = (at_dump_thread_t){ .tid = th->tid, .gil = th->gil, .idle = th->idle, .n = n };
    if (n && !(kept->frames = calloc((size_t)n, sizeof *kept->frames))) {
        d->oom = 1;
        return;
    }
    int next = 0;
    for (int i = 0; i < n; i++) {
        kept->frames[i].f = frames[i];
        if (d->dump.locals)
            attach_locals(d, &next, &kept->frames[i]);
    }
    d->dump.n++;
    pend_clear(d);
}

/* Sample until a clean read (a chain changing under us can fail one
 * read, or read torn: the last torn read is shown if no clean one comes). */
static int sample_once(at_target_t *t, dump_ctx_t *d)
{
    int rc, torn_left = DUMP_TORN_RETRIES;
    for (int failed = 0; failed < 5;) {
        d->torn = d->oom = 0;
        d->calls0 = t->proc.mem.calls;
        rc = at_target_sample(t, keep_thread, d);
        pend_clear(d);
        if (rc == -ESRCH || (rc == 0 && (!d->torn || torn_left-- == 0)))
            break;
        at_dump_clear(&d->dump);
        if (rc == 0)
            usleep(1000);       /* torn: the thread is past it in a moment */
        else
            failed++;
    }
    return rc == 0 && d->oom ? -ENOMEM : rc;
}

/* With --asyncio, the tasks, read after the threads' stacks (from the
 * same walker and symbols) with every thread the sample saw stopped:
 * tasks, their sets and their coroutines change only while a thread
 * runs Python, so what is read belongs to one moment (a thread that
 * cannot be stopped, ptrace being refused, is read running, as the
 * stacks are).  0 or -errno (-ESRCH: the process exited). */
static int read_asyncio(at_target_t *t, dump_ctx_t *d, int rc)
{
    if (rc < 0 || !d->dump.asyncio)
        return rc;
    int n = d->dump.n, *sigs = calloc((size_t)(n ? n : 1), sizeof *sigs);
    uint8_t *stopped = calloc((size_t)(n ? n : 1), 1);
    for (int i = 0; sigs && stopped && i < n; i++)
        stopped[i] = at_thread_stop(d->dump.threads[i].tid, &sigs[i]) == 0;
    rc = sigs && stopped ? at_asyncio_read(&t->proc, t->walker, at_stacks_symtab(t->stacks), d->dump.asyncio)
                         : -ENOMEM;
    for (int k = 0; rc == 0 && k < d->dump.asyncio->n; k++)
        for (int i = 0; i < d->nwalked; i++)
            if (at_asyncio_join(&d->dump.asyncio->tasks[k], d->walked[i], d->walked_tid[i]))
                break;
    for (int i = 0; sigs && stopped && i < n; i++)
        if (stopped[i])
            at_thread_resume(d->dump.threads[i].tid, sigs[i]);
    free(sigs);
    free(stopped);
    return rc;
}

struct at_dumped {
    at_target_t *t;
    dump_ctx_t *d;
};

void at_dumped_free(at_dumped_t *one)
{
    if (!one)
        return;
    dump_ctx_t *d = one->d;
    if (d) {
        at_dump_clear(&d->dump);
        if (d->dump.asyncio)
            at_asyncio_free(d->dump.asyncio);
        free(d->dump.asyncio);
        for (int i = 0; i < d->nwalked; i++)
            free(d->walked[i]);
        free(d->dump.threads);
        free(d);
    }
    at_target_free(one->t);
    free(one);
}

/* Why a read failed, said; its exit status. */
static int read_failed(pid_t pid, int rc)
{
    if (rc == -ESRCH) {
        fprintf(stderr, "archtrace: process %d exited while being read\n", (int)pid);
        return AT_EXIT_NO_SUCH_PROCESS;
    }
    fprintf(stderr, "archtrace: cannot read the stacks of process %d: %s\n", (int)pid, at_errstr(-rc));
    return AT_EXIT_FAILED;
}

static dump_ctx_t *new_ctx(const at_options_t *o)
{
    dump_ctx_t *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->dump.locals = o->locals;
    d->json = o->locals && o->json_file;
    if (!(d->dump.threads = calloc(AT_MAX_THREADS, sizeof *d->dump.threads)) ||
        (o->asyncio && !(d->dump.asyncio = calloc(1, sizeof *d->dump.asyncio)))) {
        free(d->dump.threads);
        free(d);
        return NULL;
    }
    return d;
}

at_dumped_t *at_dump_read(const at_options_t *o, at_target_t *t, const at_proc_row_t *parent, int *status)
{
    at_dumped_t *one = calloc(1, sizeof *one);
    dump_ctx_t *d = one ? new_ctx(o) : NULL;
    if (!d) {
        free(one);
        at_target_free(t);
        fprintf(stderr, "archtrace: out of memory\n");
        *status = AT_EXIT_FAILED;
        return NULL;
    }
    *one = (at_dumped_t){ .t = t, .d = d };
    t->stop_running = 1;
    if (parent) {
        d->dump.ppid = parent->pid;
        snprintf(d->dump.parent_comm, sizeof d->dump.parent_comm, "%s", parent->comm);
    }
    if (o->locals || o->asyncio) {
        t->on_pystack = on_stack;
        t->on_pystack_ctx = d;
    }
    int rc = read_asyncio(t, d, sample_once(t, d));
    if (rc < 0) {
        *status = read_failed(t->proc.pid, rc);
        at_dumped_free(one);
        return NULL;
    }
    at_dump_sort(&d->dump, t->proc.pid);
    *status = 0;
    return one;
}

void at_dump_print(const at_options_t *o, const at_dumped_t *one)
{
    if (!o->json_file || strcmp(o->json_file, "-") != 0)
        at_dump_print_text(stdout, one->t, &one->d->dump);
}

int at_dump_write_all(const at_options_t *o, at_dumped_t *const *all, int n)
{
    if (!o->json_file)
        return 0;
    const at_target_t **t = calloc((size_t)n + 1, sizeof *t);
    const at_dump_t **d = calloc((size_t)n + 1, sizeof *d);
    for (int i = 0; t && d && i < n; i++)
        t[i] = all[i]->t, d[i] = &all[i]->d->dump;
    int to_stdout = !strcmp(o->json_file, "-");
    FILE *f = !t || !d ? NULL : to_stdout ? stdout : fopen(o->json_file, "w");
    int rc = f ? at_dump_write_json(f, t, d, n) : !t || !d ? -ENOMEM : -errno;
    if (f && !to_stdout && fclose(f) != 0 && rc == 0)
        rc = -errno;
    free(t), free(d);
    if (rc < 0) {
        fprintf(stderr, "archtrace: cannot write %s: %s\n", o->json_file, at_errstr(-rc));
        return AT_EXIT_FAILED;
    }
    return 0;
}

int at_cmd_dump(const at_options_t *o)
{
    at_target_t *t;
    if (o->subprocesses)
        return at_dump_tree(o);
    int rc = at_rec_open_target(o, &t);
    if (rc)
        return rc;
    at_dumped_t *one = at_dump_read(o, t, NULL, &rc);
    if (!one)
        return rc;
    at_dump_print(o, one);
    rc = at_dump_write_all(o, &one, 1);
    at_dumped_free(one);
    return rc;
}
