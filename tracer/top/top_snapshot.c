/* SPDX-License-Identifier: MIT */
/* top_snapshot.c - what `archtrace top` shows once a second: the model's counts as rows, with the tree and GC.
 *
 * Taken by the UI thread under the model's lock (the sampler counts
 * under it meanwhile); each snapshot ends the interval, decaying the
 * function counts, unless it only peeks.  The shim's files are read
 * outside the lock (top_shim.c). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "remote/py_asyncio.h"
#include "remote/remote.h"
#include "session/gil_model.h"
#include "top/top_model_int.h"

/* ---- snapshot: threads and functions (lock held) ------------------------- */

static void snap_thread(const at_top_model_t *m, const thread_acc_t *t, at_top_thread_t *row)
{
    at_symtab_t *syms = at_stacks_symtab(m->target->stacks);
    memset(row, 0, sizeof *row);
    row->tid = t->tid;
    row->gil_now = t->gil_now;
    row->line = -1;
    row->held_pct = t->samples ? pct((double)t->gil, (double)t->samples) : -1;
    row->wait_pct = -1;
    row->idle_pct = t->samples ? pct((double)t->idle, (double)t->samples) : -1;
    row->main = t->tid == (uint32_t)m->sampled;
    /* read from outside by the sampler once a second: for -p, and for a
     * thread that only computes, which the shim names late (it reads
     * names only where the C-API is safe to call) */
    copy_str(row->name, sizeof row->name, at_thread_names_get(at_stacks_names(m->target->stacks), t->tid));
    if (t->has_leaf) {
        copy_str(row->func, sizeof row->func, at_symtab_func(syms, t->leaf.sym));
        copy_str(row->file, sizeof row->file, at_symtab_file(syms, t->leaf.sym));
        row->line = t->leaf.line;
    }
}

static void snap_threads(at_top_model_t *m, at_top_snap_t *s)
{
    for (int i = 0; i < TRACKED_THREADS && s->nthreads < AT_TOP_MAX_THREADS; i++) {
        const thread_acc_t *t = &m->threads[i];
        /* alive: seen by one of the last two passes */
        if (t->tid && t->last_pass + 2 > m->pass)
            snap_thread(m, t, &s->threads[s->nthreads++]);
    }
}

static int func_cmp_self(const void *a, const void *b)
{
    const at_top_func_t *x = a, *y = b;
    return x->self_pct < y->self_pct ? 1 : x->self_pct > y->self_pct ? -1 : (y->total_pct > x->total_pct) - (y->total_pct < x->total_pct);
}

static int func_cmp_total(const void *a, const void *b)
{
    const at_top_func_t *x = a, *y = b;
    return x->total_pct < y->total_pct ? 1 : x->total_pct > y->total_pct ? -1 : (y->self_pct > x->self_pct) - (y->self_pct < x->self_pct);
}

/* The best AT_TOP_MAX_FUNCS functions of ft: a bounded insertion into a
 * sorted array, so a large symbol table costs one pass. */
static void snap_funcs(at_top_model_t *m, const fn_table_t *ft, at_top_sort_t sort, at_top_snap_t *s)
{
    at_symtab_t *syms = at_stacks_symtab(m->target->stacks);
    int (*cmp)(const void *, const void *) = sort == AT_TOP_SORT_TOTAL ? func_cmp_total : func_cmp_self;
    at_top_func_t cand;
    uint32_t nsym = at_symtab_count(syms);
    for (uint32_t i = 0; i < ft->n && i < nsym; i++) {
        const fn_count_t *c = &ft->v[i];
        if (c->total < 0.5 || at_symtab_kind(syms, i) == AT_SYM_MARK)
            continue;
        cand.self_pct = pct(c->self, ft->running);
        cand.total_pct = pct(c->total, ft->running);
        if (s->nfuncs == AT_TOP_MAX_FUNCS && cmp(&cand, &s->funcs[s->nfuncs - 1]) >= 0)
            continue;
        int k = s->nfuncs < AT_TOP_MAX_FUNCS ? s->nfuncs++ : s->nfuncs - 1;
        while (k > 0 && cmp(&cand, &s->funcs[k - 1]) < 0) {
            s->funcs[k] = s->funcs[k - 1];
            k--;
        }
        s->funcs[k] = cand;
        copy_str(s->funcs[k].func, sizeof s->funcs[k].func, at_symtab_func(syms, i));
        copy_str(s->funcs[k].file, sizeof s->funcs[k].file, at_symtab_file(syms, i));
    }
}

static void decay(fn_table_t *ft)
{
    ft->running *= DECAY;
    for (uint32_t i = 0; i < ft->n; i++) {
        ft->v[i].self *= DECAY;
        ft->v[i].total *= DECAY;
    }
}

static void end_interval(at_top_model_t *m)
{
    for (int i = 0; i < TRACKED_THREADS; i++) {
        thread_acc_t *t = &m->threads[i];
        t->samples = t->gil = t->idle = 0;
        decay(&t->fns);
    }
    decay(&m->all);
    m->interval_passes = 0;
}

static void snap_sampled(at_top_model_t *m, const at_top_query_t *q, at_top_snap_t *s)
{
    const at_py_proc_t *p = &m->target->proc;
    copy_str(s->comm, sizeof s->comm, p->comm);
    copy_str(s->version, sizeof s->version, p->version);
    copy_str(s->build, sizeof s->build, at_py_proc_build(p));
    s->samples = at_stacks_meta(m->target->stacks)->samples;
    s->interval_samples = m->interval_passes;
    s->gil_holder = m->holder;
    s->gil_source = AT_TOP_SRC_SAMPLES;
    snap_threads(m, s);
    const fn_table_t *ft = &m->all;
    for (int i = 0; q->thread && i < TRACKED_THREADS; i++)
        if (m->threads[i].tid == q->thread)
            ft = &m->threads[i].fns;
    snap_funcs(m, ft, q->sort, s);
}

/* GC counters: interp->gc.generation_stats[gen].{collections, collected}
 * (the same three counters per generation in 3.11 to 3.13, at the
 * offset of the target's layout). */
static void snap_gc(at_top_model_t *m, at_top_snap_t *s)
{
    uint64_t head;
    char err[128];
    int64_t stats[AT_TOP_GC_GENS * 3];
    if (at_py_proc_check(&m->target->proc, &head, err, sizeof err) < 0 ||
        at_remote_read(&m->target->proc.mem, head + (uint64_t)m->target->proc.layout.interp_gc_generation_stats, stats,
                       sizeof stats) < 0)
        return;
    for (int g = 0; g < AT_TOP_GC_GENS; g++) {
        int64_t runs = stats[g * 3], collected = stats[g * 3 + 1];
        if (runs < 0 || collected < 0)
            return; /* not counters: refuse rather than show garbage */
        s->gc_runs[g] = (uint64_t)runs;
        s->gc_collected += (uint64_t)collected;
    }
    s->have_gc = 1;
}

/* asyncio's tasks per event loop (one read per task, names and stacks
 * left out: py_asyncio_count.c). */
static void snap_asyncio(at_top_model_t *m, at_top_snap_t *s)
{
    at_async_loop_count_t loops[AT_TOP_MAX_LOOPS + 1];
    int n = at_asyncio_count(&m->target->proc, loops, AT_TOP_MAX_LOOPS + 1, &s->py_tasks);
    for (int i = 0; i < n && i < AT_TOP_MAX_LOOPS; i++) {
        s->loops[i].loop = loops[i].loop;
        s->loops[i].tasks = loops[i].tasks;
        s->loops[i].pending = loops[i].pending;
    }
    s->nloops = n < 0 ? 0 : n < AT_TOP_MAX_LOOPS ? n : AT_TOP_MAX_LOOPS;
    s->loops_more = n > AT_TOP_MAX_LOOPS;
}

/* The tree under the root, and the process the query picks: taken when
 * it is in the tree (a pid from an old frame may be gone) and was not
 * refused already (a shell, a non-Python helper). */
static void snap_tree(at_top_model_t *m, const at_top_query_t *q, at_top_snap_t *s)
{
    s->nprocs = at_top_tree_list(&m->tree, m->pid, s->procs, AT_TOP_MAX_PROCS);
    int in_tree = 0;
    for (int i = 0; q->process && i < s->nprocs; i++)
        in_tree |= s->procs[i].pid == q->process;
    pthread_mutex_lock(&m->lock);
    if (q->process != m->refused) /* the user moved on: a later pick tries again */
        m->refused = 0, m->switch_err[0] = '\0';
    if (in_tree && q->process != m->sampled && q->process != m->refused && m->target)
        m->want = q->process;
    pthread_mutex_unlock(&m->lock);
}

void at_top_model_snapshot(at_top_model_t *m, const at_top_query_t *q, at_top_snap_t *s)
{
    uint64_t now = at_now_ns();
    memset(s, 0, sizeof *s);
    snap_tree(m, q, s);
    s->sort = q->sort;
    s->thread_filter = q->thread;
    s->started = m->started;
    s->rate_hz = m->rate_hz;
    s->uptime_s = (double)(now - m->start_ns) / 1e9;
    pthread_mutex_lock(&m->lock);
    pid_t shown = m->target ? m->sampled : 0;
    pthread_mutex_unlock(&m->lock);
    /* read outside the lock (a file read); a switch meanwhile is seen
     * below and the reading dropped */
    void *gil = m->dir[0] && shown ? at_gil_live_read(m->dir, shown) : NULL;
    pthread_mutex_lock(&m->lock);
    if (gil && shown != m->sampled) {
        free(gil);
        gil = NULL;
    }
    s->pid = m->sampled;
    s->attached = m->target != NULL;
    s->exited = m->gone || (m->sampled != m->pid && s->nprocs == 0); /* the root's end counts */
    if (!m->target && m->attach_err[0])
        copy_str(s->status, sizeof s->status, m->attach_err);
    else if (m->switch_err[0])
        copy_str(s->status, sizeof s->status, m->switch_err);
    if (m->target) {
        snap_sampled(m, q, s);
        if (!m->gone) {
            snap_gc(m, s);
            snap_asyncio(m, s);
        }
        if (gil)
            at_top_merge_gil(m, gil, s, now, q->peek);
        if (!q->peek)
            end_interval(m);
    }
    if (!q->peek)
        m->gil_read_ns = now;
    pthread_mutex_unlock(&m->lock);
    free(gil);
    if (m->last.pid != s->pid)   /* the last frame was of another process */
        memset(&m->last, 0, sizeof m->last);
    if (m->dir[0] && s->attached)
        at_top_snap_files(m, q, s);
    if (!s->have_gc && m->last.have_gc) {
        s->have_gc = 1;
        memcpy(s->gc_runs, m->last.gc_runs, sizeof s->gc_runs);
        s->gc_collected = m->last.gc_collected;
    }
    m->last = *s;
}
