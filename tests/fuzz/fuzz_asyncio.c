/* SPDX-License-Identifier: MIT */
/* fuzz_asyncio.c - libFuzzer target: the asyncio task readers fed random "target memory".
 *
 * Both readers walk another process's objects: py_asyncio.c (`dump
 * --asyncio`: every task, its await chain and creation site) and
 * async_now.c (`record --asyncio`: the tasks running at a sample).  They
 * read only through process_vm_readv, which fake_target.h serves from the
 * fuzz input's memory image (format: walk_image.h; seeds:
 * gen_asyncio_seeds.c).  Per input: at_asyncio_read, then at_asyncio_join
 * of every task against a synthetic thread stack holding the running
 * tasks' frames, at_asyncio_find, at_asyncio_free; an at_async_now_t
 * read twice and asked for the task on that stack; then the patch (the
 * target moved on) and all of it again, the at_async_now_t keeping what
 * it cached.  Any break of the contracts in py_asyncio.h and async_now.h
 * aborts:
 *   - at_asyncio_read returns 0, -ESRCH, -ENOMEM or -EPROTO; -ESRCH only
 *     once the target exited, and always when it had exited before;
 *   - at most AT_ASYNC_MAX_TASKS tasks, sorted by loop then name, each
 *     once; names and labels NUL-terminated valid UTF-8; stacks within
 *     AT_ASYNC_MAX_DEPTH, creation sites within AT_ASYNC_MAX_CREATED,
 *     every symbol an id of the symtab; `awaits` 0 or another task read;
 *   - a join appends within AT_ASYNC_MAX_DEPTH and only once per task;
 *   - at_async_now_task answers AT_SYM_NONE or a "task NAME" symbol;
 *   - one call makes a bounded number of reads (below).
 * With FUZZ_ASYNCIO_VERBOSE set in the environment, each input's results
 * are printed to stderr (to check that the seeds reach the tasks).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_target.h"
#include "remote/async_now.h"
#include "remote/frame_walk.h"
#include "remote/py_asyncio.h"
#include "walk_image.h"

/* Reads one call may make, from the readers' own limits (the constants
 * are private to py_names.c, py_repr.c and py_asyncio.c, so they are
 * repeated here; a change there shows up as an abort here):
 *   DICT_READS     one bounded dict walk of py_names.c: a type check (3),
 *                  the dict and its keys (3), at most MAX_ENTRIES = 16384
 *                  key comparisons of one read each, a value (and for
 *                  at_py_dict_values a split value per entry: 16384 more);
 *   REPR_READS     one at_py_repr: READ_BUDGET = 1024 and its first probe;
 *   FRAME_READS    one coroutine of an await chain: its type, its header,
 *                  at_walker_frame (the frame, the code header, two names
 *                  and the line table twice), the RESUME and the stack top;
 *   SUMMARY_READS  one FrameSummary: its type, 2 slots, 2 str reads,
 *                  the lineno's repr (its type's slots are looked up,
 *                  SLOTS_READS, for at most FS_LOOKUPS_MAX = 4 types a
 *                  read);
 *   TASK_READS     one C task: its header and <= BASES_MAX = 16 tp_base
 *                  links, its name (a repr and a str), AT_ASYNC_MAX_DEPTH
 *                  coroutines and one more type, the traceback list (its
 *                  head, 16 bases, its items) and AT_ASYNC_MAX_CREATED
 *                  summaries;
 *   CAND_READS     a candidate that is no C task: header, bases, type.
 * at_asyncio_read: 9 dict walks (2 modules, Task, the 2 WeakSet names,
 * its data, _eager_tasks, _current_tasks and its values) and a probe; 2
 * sets (head, bases, table) and a weak reference per slot of at most
 * SET_SLOTS_MAX = 65536; at most 4 * AT_ASYNC_MAX_TASKS candidates of
 * which AT_ASYNC_MAX_TASKS are read as tasks; 4 slot lookups.  That is
 * 143 million, 97% of it 4096 tasks each with 33 reprs of the full
 * budget: no fuzz input gets near it, but a walk with one more factor in
 * it (a loop on a cycle, a lookup per item that should be per type, as
 * the slot lookups were: 13 billion) passes it at once.
 * at_async_now_read: a module and 2 dict walks, _current_tasks' values,
 * and per running task (at most AT_ASYNC_NOW_MAX) its header, 16 bases
 * and its name. */
#define DICT_READS    (16384ull + 16 + 16384)
#define REPR_READS    1025ull
#define FRAME_READS   10ull
#define SLOTS_READS   (3 * (DICT_READS + 3))
#define SUMMARY_READS (1 + 2 + 2 + REPR_READS)
#define FS_LOOKUPS    4ull
#define TASK_READS    (17 + REPR_READS + 1 + (AT_ASYNC_MAX_DEPTH * FRAME_READS + 1) + 18 + \
                       AT_ASYNC_MAX_CREATED * SUMMARY_READS)
#define CAND_READS    18ull
#define READ_READS    (9 * DICT_READS + 1 + 2 * 18 + 65536 + 4ull * AT_ASYNC_MAX_TASKS * CAND_READS + \
                       AT_ASYNC_MAX_TASKS * TASK_READS + FS_LOOKUPS * SLOTS_READS)
#define NOW_READS     (4 * DICT_READS + AT_ASYNC_NOW_MAX * (17 + REPR_READS + 1))

static int verbose;

static void check_rc(int rc, unsigned reads_before, unsigned long long max_reads)
{
    if ((rc && rc != -ESRCH && rc != -ENOMEM && rc != -EPROTO) || (rc == -ESRCH && !fake_target_died()))
        abort();
    if (target.reads - reads_before > max_reads)
        abort();
}

static void check_sym(const at_symtab_t *syms, uint32_t sym)
{
    if (sym >= at_symtab_count(syms))
        abort();
    const char *func = at_symtab_func(syms, sym), *file = at_symtab_file(syms, sym);
    if (!func || !file)
        abort();
    fake_check_text(func, strlen(func) + 1);
    fake_check_text(file, strlen(file) + 1);
}

static void check_frames(const at_symtab_t *syms, const at_frame_t *f, int n, int max)
{
    if (n < 0 || n > max)
        abort();
    for (int i = 0; i < n; i++)
        check_sym(syms, f[i].sym);
}

static void check_task(const at_asyncio_t *a, const at_symtab_t *syms, const at_async_task_t *t)
{
    fake_check_text(t->name, sizeof t->name);
    fake_check_text(t->label, sizeof t->label);
    if ((unsigned)t->state > AT_ASYNC_CANCELLED || (t->running != 0 && t->running != 1) || t->thread ||
        (!t->created_known && t->n_created))
        abort();
    check_frames(syms, t->stack, t->n, AT_ASYNC_MAX_DEPTH);
    check_frames(syms, t->created, t->n_created, AT_ASYNC_MAX_CREATED);
    if (at_asyncio_find(a, t->addr) != t)   /* each task once */
        abort();
    if (t->awaits && (t->awaits == t->addr || !at_asyncio_find(a, t->awaits)))
        abort();
}

static void check_result(const at_asyncio_t *a, const at_symtab_t *syms)
{
    if (a->n < 0 || a->n > AT_ASYNC_MAX_TASKS || a->more < 0 || a->py_tasks < 0 || (a->n && !a->tasks) ||
        (a->n && !a->imported))
        abort();
    for (int i = 0; i < a->n; i++) {
        const at_async_task_t *t = &a->tasks[i];
        check_task(a, syms, t);
        if (i && (t->loop < t[-1].loop || (t->loop == t[-1].loop && strcmp(t->name, t[-1].name) < 0)))
            abort();   /* by loop, then name */
    }
}

/* A thread's stack as the walk would give it: AT_MAX_STACK_DEPTH frames
 * at image addresses, with the running tasks' frames at depths 3, 73,
 * 143, ... (so a join appends a few frames, or more than the chain has
 * room for); every fifth frame is an incomplete one (skipped). */
static void make_stack(const at_asyncio_t *a, const at_symtab_t *syms, at_pystack_t *st)
{
    uint32_t nsyms = at_symtab_count(syms);
    memset(st, 0, sizeof *st);
    st->n = AT_MAX_STACK_DEPTH;
    for (int i = 0; i < st->n; i++) {
        st->frames[i] = (at_pyframe_t){ .sym = nsyms ? (uint32_t)i % nsyms : 0, .line = i, .skip = i % 5 == 0 };
        st->frame_addr[i] = WALK_IMAGE_BASE + (uint64_t)i * 16;
        st->code_addr[i] = 1;
    }
    for (int i = 0, k = 3; i < a->n && k < st->n; i++)
        if (a->tasks[i].running_frame) {
            st->frame_addr[k] = a->tasks[i].running_frame;
            k += 70;
        }
}

static void join_all(at_asyncio_t *a, const at_symtab_t *syms, const at_pystack_t *st)
{
    for (int i = 0; i < a->n; i++) {
        at_async_task_t *t = &a->tasks[i];
        int n = t->n, joined = at_asyncio_join(t, st, 4242);
        if (joined != 0 && joined != 1)
            abort();
        if (joined ? t->thread != 4242 || t->n < n : t->n != n)
            abort();
        check_frames(syms, t->stack, t->n, AT_ASYNC_MAX_DEPTH);
        if (at_asyncio_join(t, st, 4343) != 0 || t->n < n || (joined && t->thread != 4242))
            abort();   /* a task joins one thread, once */
    }
    if (at_asyncio_find(a, 0) || (a->n && at_asyncio_find(a, a->tasks[0].addr) != &a->tasks[0]))
        abort();
}

/* One at_asyncio_read and what follows it; the stack is left in st. */
static void asyncio_round(at_py_proc_t *proc, at_walker_t *w, at_symtab_t *syms, at_pystack_t *st)
{
    at_asyncio_t a;
    int dead_before = fake_target_died();
    unsigned before = target.reads;
    int rc = at_asyncio_read(proc, w, syms, &a);
    check_rc(rc, before, READ_READS);
    if (dead_before && rc != -ESRCH)
        abort();   /* a process that is gone must not read as "no asyncio" */
    check_result(&a, syms);
    make_stack(&a, syms, st);
    join_all(&a, syms, st);
    if (verbose) {
        fprintf(stderr, "  at_asyncio_read: rc %d, imported %d, %d tasks, %d more, %d _PyTask, %u reads\n", rc,
                a.imported, a.n, a.more, a.py_tasks, target.reads - before);
        for (int i = 0; i < a.n; i++) {
            const at_async_task_t *t = &a.tasks[i];
            fprintf(stderr, "    %-12s %-9s%s stack %d%s created %d%s awaits %s thread %u\n", t->label,
                    at_async_state_name(t->state), t->running ? " running" : "", t->n, t->stack_cut ? " (cut)" : "",
                    t->n_created, t->created_known ? "" : " (unknown)",
                    t->awaits ? at_asyncio_find(&a, t->awaits)->label : "-", t->thread);
        }
    }
    at_asyncio_free(&a);
    if (a.n || a.tasks)
        abort();
}

static void now_read(at_async_now_t *now, at_symtab_t *syms, const at_pystack_t *st, uint64_t ns)
{
    unsigned before = target.reads;
    at_async_now_read(now, ns);
    if (target.reads - before > NOW_READS)
        abort();
    int n = at_async_now_count(now);
    uint32_t sym = at_async_now_task(now, st);
    if (n < 0 || n > AT_ASYNC_NOW_MAX || (n == 0 && sym != AT_SYM_NONE))
        abort();
    if (sym != AT_SYM_NONE) {
        check_sym(syms, sym);
        if (at_symtab_kind(syms, sym) != AT_SYM_TASK || strncmp(at_symtab_func(syms, sym), "task ", 5) != 0)
            abort();
    }
    if (verbose)
        fprintf(stderr, "  at_async_now_read: %d running, on the stack: %s, %u reads\n", n,
                sym == AT_SYM_NONE ? "none" : at_symtab_func(syms, sym), target.reads - before);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fake_input_t in;
    if (fake_target_open(&in, data, size) < 0)
        return 0;
    at_py_proc_t proc;
    fake_target_proc(&in, &proc);
    static at_pystack_t st;
    at_symtab_t *syms = at_symtab_new();
    at_walker_t *w = syms ? at_walker_new(&proc, syms) : NULL;
    at_async_now_t *now = syms ? at_async_now_new(&proc, syms) : NULL;
    if (w && now) {
        asyncio_round(&proc, w, syms, &st);
        now_read(now, syms, &st, 0);
        now_read(now, syms, &st, 1);                 /* from what it cached */
        fake_target_patch(&in);
        asyncio_round(&proc, w, syms, &st);
        now_read(now, syms, &st, 1000000000ull);     /* looked up again if not found */
    }
    at_async_now_free(now);
    at_walker_free(w);
    at_symtab_free(syms);
    fake_target_close(&in);
    return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    verbose = getenv("FUZZ_ASYNCIO_VERBOSE") != NULL;
    return 0;
}
