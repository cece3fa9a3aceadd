/* SPDX-License-Identifier: MIT */
/* cmd_sample.c - `archtrace -p PID dump` (see cmd_sample.h). */
#include "cli/cmd_sample.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/recording.h"
#include "remote/sampler.h"
#include "segment_format.h"
#include "session/session.h"
#include "out/textout.h"

#define LABEL_MAX       2048

/* ---- dump ------------------------------------------------------------------ */

/* One thread's text, kept so the main thread can be printed first. */
typedef struct dumped {
    uint32_t tid;             /* thread                                    */
    char *text;               /* its lines                                 */
} dumped_t;

typedef struct dump_ctx {
    dumped_t *threads;        /* AT_MAX_THREADS                            */
    int n;
    pid_t pid;
    int torn;                 /* a running thread read mid-change          */
} dump_ctx_t;

/* A dump reads threads that run on.  One caught entering or leaving the
 * eval loop (3.11/3.12 set tstate->cframe before the new cframe's
 * current_frame) or switching coroutines reads, for a few instructions,
 * as no frames, "[unknown]" ones, or a chain cut short ("[truncated]"
 * short of the depth limit).  A dump is one moment a person reads, so it
 * reads again (a sampler just counts the odd sample). */
#define DUMP_TORN_RETRIES 20

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

static void put_frame(FILE *f, const at_stacks_t *s, const at_frame_t *fr)
{
    at_symtab_t *syms = at_stacks_symtab((at_stacks_t *)s);
    char func[LABEL_MAX], file[LABEL_MAX];
    at_text_escape(func, sizeof func, at_symtab_func(syms, fr->sym));
    at_text_escape(file, sizeof file, at_symtab_file(syms, fr->sym));
    switch (at_symtab_kind(syms, fr->sym)) {
    case AT_SYM_PY:
        if (fr->line >= 0)
            fprintf(f, "  File \"%s\", line %d, in %s\n", file, (int)fr->line, func);
        else
            fprintf(f, "  File \"%s\", line ?, in %s\n", file, func);
        break;
    case AT_SYM_NATIVE:
        fprintf(f, "  [native] %s (%s)\n", func, file);
        break;
    default:
        fprintf(f, "  %s\n", func);
    }
}

static void dump_thread(void *ctx, const at_target_t *t, const at_thread_t *th,
                        const at_frame_t *frames, int n)
{
    dump_ctx_t *d = ctx;
    char *text = NULL;
    size_t len = 0;
    d->torn |= looks_torn(t, th, frames, n);
    FILE *f = d->n < AT_MAX_THREADS ? open_memstream(&text, &len) : NULL;
    if (!f)
        return;
    char name[AT_PY_NAME_MAX * 4 + 4];
    fprintf(f, "Thread %u%s (%s%s)\n", th->tid, quoted_name(t, th->tid, name, sizeof name),
            th->gil ? "holds the GIL, " : "", th->idle ? "idle" : "running");
    for (int i = 0; i < n; i++)
        put_frame(f, t->stacks, &frames[i]);
    if (n == 0)
        fprintf(f, "  (no Python frames)\n");
    fclose(f);
    d->threads[d->n++] = (dumped_t){ th->tid, text };
}

static pid_t main_pid_for_sort;

static int cmp_dumped(const void *a, const void *b)
{
    const dumped_t *x = a, *y = b;
    int xm = x->tid == (uint32_t)main_pid_for_sort, ym = y->tid == (uint32_t)main_pid_for_sort;
    if (xm != ym)
        return ym - xm;
    return (x->tid > y->tid) - (x->tid < y->tid);
}

static void print_dump(const at_target_t *t, dump_ctx_t *d, const at_proc_row_t *parent)
{
    char comm[128], pcomm[128];
    at_text_escape(comm, sizeof comm, t->proc.comm);
    printf("Process %d (%s): Python %s, %s build", (int)t->proc.pid, comm, t->proc.version,
           at_py_proc_build(&t->proc));
    if (parent) {
        at_text_escape(pcomm, sizeof pcomm, parent->comm);
        printf(", parent %d (%s)", (int)parent->pid, pcomm);
    }
    printf("\n");
    main_pid_for_sort = t->proc.pid;
    qsort(d->threads, (size_t)d->n, sizeof *d->threads, cmp_dumped);
    for (int i = 0; i < d->n; i++)
        printf("\n%s", d->threads[i].text);
    fflush(stdout);
}

int at_cmd_dump(const at_options_t *o)
{
    at_target_t *t;
    if (o->subprocesses)
        return at_dump_tree(o);
    int rc = at_rec_open_target(o, &t);
    return rc ? rc : at_dump_target(t, NULL);
}

int at_dump_target(at_target_t *t, const at_proc_row_t *parent)
{
    pid_t pid = t->proc.pid;
    dump_ctx_t d = { .pid = pid };
    int rc;
    t->stop_running = 1;
    if (!(d.threads = calloc(AT_MAX_THREADS, sizeof *d.threads))) {
        at_target_free(t);
        fprintf(stderr, "archtrace: out of memory\n");
        return AT_EXIT_FAILED;
    }
    /* a chain changing under us can fail one read, or read torn: try
     * again (the last torn read is shown if no clean one comes) */
    int torn_left = DUMP_TORN_RETRIES;
    for (int failed = 0; failed < 5;) {
        d.torn = 0;
        rc = at_target_sample(t, dump_thread, &d);
        if (rc == -ESRCH || (rc == 0 && (!d.torn || torn_left-- == 0)))
            break;
        for (int i = 0; i < d.n; i++)
            free(d.threads[i].text);
        d.n = 0;
        if (rc == 0)
            usleep(1000);       /* torn: the thread is past it in a moment */
        else
            failed++;
    }
    if (rc == 0)
        print_dump(t, &d, parent);
    else if (rc == -ESRCH)
        fprintf(stderr, "archtrace: process %d exited while being read\n", (int)pid);
    else
        fprintf(stderr, "archtrace: cannot read the stacks of process %d: %s\n", (int)pid, at_errstr(-rc));
    for (int i = 0; i < d.n; i++)
        free(d.threads[i].text);
    free(d.threads);
    at_target_free(t);
    return rc == 0 ? 0 : rc == -ESRCH ? AT_EXIT_NO_SUCH_PROCESS : AT_EXIT_FAILED;
}
