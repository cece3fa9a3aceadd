/* SPDX-License-Identifier: MIT */
/* report_stacks.c - sampled stacks in a report: the hottest functions and
 * lines as text, the stacks as JSON, and folded ("collapsed") stacks for
 * flamegraph.pl, speedscope and the like.  Reads <pid>.stacks through
 * session/stacks.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include "out/textout.h"
#include "report/gil_waits.h"
#include "report/native_split.h"
#include "report/thread_split.h"
#include "report/report_features.h"
#include "session/session.h"
#include "session/stacks.h"

#define DEFAULT_TOP 5
#define LABEL_MAX   2048
#define AT_MAX_THREADS_SEEN 4096     /* threads counted in a summary       */

int at_stacks_included(const at_stack_view_t *v, const at_options_t *o)
{
    return !v->idle || (o && o->idle);
}

/* Load for a report: 0, -ENOENT silently, other errors with one line. */
static int load_for_report(const char *dir, pid_t pid, at_stacks_t **s)
{
    char err[512];
    int rc = at_stacks_load(dir, pid, s, err, sizeof err);
    if (rc < 0 && rc != -ENOENT)
        fprintf(stderr, "archtrace: %s\n", err);
    if (rc == 0 && at_stacks_info(*s)->samples == 0 && at_stacks_count(*s) == 0) {
        at_stacks_free(*s);
        *s = NULL;
        rc = -ENOENT;
    }
    return rc;
}

/* Per-function and per-line totals over the included stacks. */
typedef struct fn_stat {
    uint32_t sym;            /* the function                               */
    uint64_t self, total;    /* samples on top / anywhere (once per stack) */
    int32_t line;            /* its hottest line                           */
    uint64_t line_self, line_total; /* that line's counts                  */
} fn_stat_t;

typedef struct line_map {
    uint64_t *keys;          /* (sym << 32 | line) + 1, 0 = empty          */
    uint64_t *self, *total;
    size_t cap;
} line_map_t;

static uint64_t *line_slot(line_map_t *m, uint32_t sym, int32_t line, size_t *idx)
{
    uint64_t key = ((uint64_t)sym << 32 | (uint32_t)line) + 1;
    size_t i = (size_t)(key * 0x9e3779b97f4a7c15ull >> 20) & (m->cap - 1);
    while (m->keys[i] && m->keys[i] != key)
        i = (i + 1) & (m->cap - 1);
    m->keys[i] = key;
    *idx = i;
    return &m->keys[i];
}

typedef struct summary {
    fn_stat_t *fns;          /* by symbol id                               */
    uint32_t nfns;
    uint64_t included;       /* thread-samples shown                       */
    uint64_t idle_left_out;  /* idle thread-samples not shown              */
    uint32_t threads;        /* distinct threads                           */
    fn_stat_t *tasks;        /* --asyncio's task roots, most samples first */
    uint32_t ntasks;
    uint64_t in_tasks;       /* thread-samples under one of them           */
} summary_t;

static void count_stack(summary_t *sum, line_map_t *m, uint64_t *stamp, uint64_t id,
                        const at_stack_view_t *v)
{
    size_t i;
    for (int k = 0; k < v->n; k++) {
        const at_frame_t *f = &v->frames[k];
        int top = k == v->n - 1;
        line_slot(m, f->sym, f->line, &i);
        m->total[i] += v->count;
        if (top) {
            m->self[i] += v->count;
            sum->fns[f->sym].self += v->count;
        }
        if (stamp[f->sym] != id) { /* recursion counts once in total */
            stamp[f->sym] = id;
            sum->fns[f->sym].total += v->count;
        }
    }
}

static void pick_lines(summary_t *sum, const line_map_t *m)
{
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->keys[i])
            continue;
        uint64_t key = m->keys[i] - 1;
        fn_stat_t *f = &sum->fns[key >> 32];
        if (m->self[i] > f->line_self || (m->self[i] == f->line_self && m->total[i] > f->line_total)) {
            f->line = (int32_t)(uint32_t)key;
            f->line_self = m->self[i];
            f->line_total = m->total[i];
        }
    }
}

static int count_threads(const at_stacks_t *s, const at_options_t *o)
{
    uint32_t seen[AT_MAX_THREADS_SEEN];
    int n = 0;
    size_t c = 0;
    at_stack_view_t v;
    while (at_stacks_next(s, &c, &v) && n < AT_MAX_THREADS_SEEN) {
        int found = 0;
        if (!at_stacks_included(&v, o))
            continue;
        for (int i = 0; i < n && !found; i++)
            found = seen[i] == v.tid;
        if (!found)
            seen[n++] = v.tid;
    }
    return n;
}

static int cmp_total(const void *a, const void *b)
{
    const fn_stat_t *x = a, *y = b;
    if (x->total != y->total)
        return x->total < y->total ? 1 : -1;
    return (x->sym > y->sym) - (x->sym < y->sym);
}

/* The asyncio tasks (--asyncio roots) move from the functions to their
 * own table: a task is where a sample ran, not a function. */
static int take_tasks(const at_stacks_t *s, summary_t *sum)
{
    for (uint32_t i = 0; i < sum->nfns; i++) {
        if (at_symtab_kind(at_stacks_syms(s), i) != AT_SYM_TASK || !sum->fns[i].total)
            continue;
        if (!sum->tasks && !(sum->tasks = calloc(sum->nfns, sizeof *sum->tasks)))
            return -ENOMEM;
        sum->tasks[sum->ntasks++] = sum->fns[i];
        sum->in_tasks += sum->fns[i].total;
        sum->fns[i].self = sum->fns[i].total = 0;
    }
    if (sum->ntasks)
        qsort(sum->tasks, sum->ntasks, sizeof *sum->tasks, cmp_total);
    return 0;
}

static void summary_free(summary_t *sum)
{
    free(sum->fns);
    free(sum->tasks);
}

static int summarize(const at_stacks_t *s, const at_options_t *o, summary_t *sum)
{
    line_map_t m = { 0 };
    uint64_t *stamp;
    memset(sum, 0, sizeof *sum);
    sum->nfns = at_symtab_count(at_stacks_syms(s));
    for (m.cap = 64; m.cap < (size_t)at_stacks_frame_count(s) * 2 + 2; m.cap *= 2)
        ;
    sum->fns = calloc(sum->nfns + 1, sizeof *sum->fns);
    stamp = calloc(sum->nfns + 1, sizeof *stamp);
    m.keys = calloc(m.cap, sizeof *m.keys);
    m.self = calloc(m.cap, sizeof *m.self);
    m.total = calloc(m.cap, sizeof *m.total);
    int rc = sum->fns && stamp && m.keys && m.self && m.total ? 0 : -ENOMEM;
    size_t c = 0;
    at_stack_view_t v;
    while (rc == 0 && at_stacks_next(s, &c, &v)) {
        if (!at_stacks_included(&v, o)) {
            sum->idle_left_out += v.count;
            continue;
        }
        sum->included += v.count;
        count_stack(sum, &m, stamp, c, &v);
    }
    for (uint32_t i = 0; rc == 0 && i < sum->nfns; i++) {
        sum->fns[i].sym = i;
        sum->fns[i].line = -1;
    }
    if (rc == 0)
        pick_lines(sum, &m);
    if (rc == 0)
        rc = take_tasks(s, sum);
    sum->threads = (uint32_t)count_threads(s, o);
    free(stamp);
    free(m.keys);
    free(m.self);
    free(m.total);
    if (rc < 0)
        summary_free(sum);
    return rc;
}

static int cmp_fn(const void *a, const void *b)
{
    const fn_stat_t *x = a, *y = b;
    if (x->self != y->self)
        return x->self < y->self ? 1 : -1;
    if (x->total != y->total)
        return x->total < y->total ? 1 : -1;
    return (x->sym > y->sym) - (x->sym < y->sym);
}

/* Sort the functions with samples first; returns how many have any. */
static uint32_t rank_functions(summary_t *sum)
{
    qsort(sum->fns, sum->nfns, sizeof *sum->fns, cmp_fn);
    uint32_t n = 0;
    while (n < sum->nfns && sum->fns[n].total)
        n++;
    return n;
}

/* Samples per second of wall time, or for an on-CPU sampler per second
 * of the sampled threads' CPU time. */
static double achieved_hz(const at_stacks_meta_t *m)
{
    if (m->on_cpu)
        return m->cpu_s > 0 ? (double)m->cpu_intervals / m->cpu_s : 0.0;
    return m->duration_s > 0 ? (double)m->samples / m->duration_s : 0.0;
}

static void text_rate(const at_stacks_meta_t *m, const summary_t *sum, FILE *out)
{
    const char *s = sum->threads == 1 ? "" : "s";
    if (m->on_cpu)
        fprintf(out, "  %" PRIu64 " on-CPU samples in %.2f s: %.1f Hz achieved of %.0f Hz asked, per second"
                " of CPU time (%.2f s between samples), %" PRIu64 " missed; %u thread%s\n", m->samples,
                m->duration_s, achieved_hz(m), m->rate_hz, m->cpu_s, m->missed, sum->threads, s);
    else
        fprintf(out, "  %" PRIu64 " samples in %.2f s: %.1f Hz achieved of %.0f Hz asked, %" PRIu64
                " missed; %u thread%s\n", m->samples, m->duration_s, achieved_hz(m), m->rate_hz, m->missed,
                sum->threads, s);
    if (m->waits_polled)
        fprintf(out, "  between samples the sampler polled the clock on a spare CPU %.0f%% of the time "
                "(cheaper for the target than timer wake-ups; --no-poll sleeps)\n",
                100.0 * (double)m->waits_polled / (double)(m->waits_polled + m->waits_timed));
}

static const char *where_label(const at_stacks_t *s, const fn_stat_t *f, char *buf, size_t n)
{
    const char *file = at_symtab_file(at_stacks_syms(s), f->sym);
    if (at_symtab_kind(at_stacks_syms(s), f->sym) == AT_SYM_PY && f->line >= 0)
        snprintf(buf, n, "%s:%d", file, (int)f->line);
    else
        snprintf(buf, n, "%s", file);
    return buf;
}

static void text_header(const at_stacks_t *s, const summary_t *sum, FILE *out, const at_options_t *o)
{
    const at_stacks_meta_t *m = at_stacks_info(s);
    char title[256], comm[128], label[48];
    at_text_escape(comm, sizeof comm, m->comm);
    snprintf(title, sizeof title, "Samples: pid %s (%s, Python %s %s%s)", at_key_label(m->pid, label, sizeof label), comm,
             m->version[0] ? m->version : "?", m->build, m->native ? ", with native frames" : "");
    at_text_heading(out, title);
    text_rate(m, sum, out);
    if (o && o->idle)
        fprintf(out, "  wall view: %" PRIu64 " thread-samples, idle ones included\n", sum->included);
    else
        fprintf(out, "  CPU view: %" PRIu64 " thread-samples (%" PRIu64
                " idle left out; --idle includes them)\n", sum->included, sum->idle_left_out);
}

static void text_rows(const at_stacks_t *s, const summary_t *sum, uint32_t nrows, FILE *out)
{
    char where[LABEL_MAX], func[LABEL_MAX], esc[LABEL_MAX];
    int wf = 8;
    for (uint32_t i = 0; i < nrows; i++) {
        at_text_escape(func, sizeof func, at_symtab_func(at_stacks_syms(s), sum->fns[i].sym));
        int len = (int)strlen(func);
        wf = len > wf ? (len > 48 ? 48 : len) : wf;
    }
    fprintf(out, "  %6s  %6s  %8s  %-*s  %s\n", "self%", "total%", "samples", wf, "function", "file:line");
    for (uint32_t i = 0; i < nrows; i++) {
        const fn_stat_t *f = &sum->fns[i];
        at_text_escape(func, sizeof func, at_symtab_func(at_stacks_syms(s), f->sym));
        at_text_escape(esc, sizeof esc, where_label(s, f, where, sizeof where));
        fprintf(out, "  %6.1f  %6.1f  %8" PRIu64 "  %-*.*s  %s\n", at_pct(f->self, sum->included),
                at_pct(f->total, sum->included), f->self, wf, wf, func, esc);
    }
}

/* With --asyncio: where the samples ran, by task. */
static void text_tasks(const at_stacks_t *s, const summary_t *sum, uint32_t top, FILE *out)
{
    char name[LABEL_MAX];
    if (!sum->ntasks)
        return;
    fprintf(out, "  by asyncio task (%u task%s ran while sampled):\n", sum->ntasks, sum->ntasks == 1 ? "" : "s");
    fprintf(out, "  %6s  %8s  %s\n", "share%", "samples", "task");
    for (uint32_t i = 0; i < sum->ntasks && i < top; i++) {
        at_text_escape(name, sizeof name, at_symtab_task_name(at_stacks_syms(s), sum->tasks[i].sym));
        fprintf(out, "  %6.1f  %8" PRIu64 "  %s\n", at_pct(sum->tasks[i].total, sum->included), sum->tasks[i].total,
                name);
    }
    if (sum->ntasks > top)
        fprintf(out, "  %u more tasks (--top N shows more)\n", sum->ntasks - top);
    fprintf(out, "  %6.1f  %8" PRIu64 "  (no task: the event loop, other threads, other code)\n",
            at_pct(sum->included - sum->in_tasks, sum->included), sum->included - sum->in_tasks);
}

/* With --native: native time by library, and who called in. */
static void text_libraries(const at_stacks_t *s, const at_options_t *o, int top, uint64_t total, FILE *out)
{
    at_native_lib_t *l;
    int n = at_native_split(s, o, &l);
    if (n > 0)
        at_native_split_text(s, l, n, top, total, out);
    free(l);
}

static void json_libraries(const at_stacks_t *s, const at_options_t *o, uint64_t total, at_json_t *j)
{
    at_native_lib_t *l;
    int n = at_native_split(s, o, &l);
    if (n >= 0) {
        at_json_key(j, "by_library");
        at_native_split_json(s, l, n, total, j);
    }
    free(l);
}

/* With --idle: each thread's running and waiting, and where it waited. */
static void text_threads(const at_stacks_t *s, int top, FILE *out)
{
    at_thread_split_t *t;
    int n = at_thread_split(s, &t);
    if (n > 0)
        at_thread_split_text(s, t, n, top, out);
    free(t);
}

int at_stacks_report_text(const char *dir, pid_t pid, FILE *out, const at_options_t *o)
{
    at_stacks_t *s;
    summary_t sum;
    int rc = load_for_report(dir, pid, &s);
    if (rc < 0)
        return rc;
    if ((rc = summarize(s, o, &sum)) == 0) {
        uint32_t n = rank_functions(&sum), top = o && o->top_n > 0 ? (uint32_t)o->top_n : DEFAULT_TOP;
        text_header(s, &sum, out, o);
        if (n)
            text_rows(s, &sum, n < top ? n : top, out);
        else
            fprintf(out, "  no stacks to show%s\n", o && o->idle ? "" : " (all threads idle?)");
        text_tasks(s, &sum, top, out);
        at_gil_waits_text(s, (int)top, out);
        if (o && o->idle)
            text_threads(s, (int)top, out);
        if (at_stacks_info(s)->native)
            text_libraries(s, o, (int)top, sum.included, out);
        summary_free(&sum);
    }
    at_stacks_free(s);
    return rc;
}

/* ---- JSON --------------------------------------------------------------- */

static int cmp_count_desc(const void *a, const void *b)
{
    const at_stack_view_t *x = a, *y = b;
    return (x->count < y->count) - (x->count > y->count);
}

static void json_stacks(const at_stacks_t *s, at_json_t *j, const at_options_t *o)
{
    char label[LABEL_MAX];
    at_stack_view_t *vs = malloc(sizeof *vs * (at_stacks_count(s) ? at_stacks_count(s) : 1));
    size_t c = 0, n = 0;
    at_stack_view_t v;
    while (vs && at_stacks_next(s, &c, &v))
        if (at_stacks_included(&v, o))
            vs[n++] = v;
    if (vs)
        qsort(vs, n, sizeof *vs, cmp_count_desc);
    at_json_key(j, "stacks");
    at_json_arr_begin(j);
    for (size_t i = 0; i < n; i++) {
        at_json_obj_begin(j);
        at_json_kv_uint(j, "thread", vs[i].tid);
        const char *name = at_thread_names_get(at_stacks_thread_names(s), vs[i].tid);
        if (name)
            at_json_kv_str(j, "thread_name", name);
        at_json_key(j, "frames");
        at_json_arr_begin(j);
        for (int k = 0; k < vs[i].n; k++)
            at_json_str(j, at_stacks_frame_label(s, &vs[i].frames[k], label, sizeof label));
        at_json_arr_end(j);
        at_json_kv_uint(j, "count", vs[i].count);
        at_json_kv_bool(j, "idle", vs[i].idle);
        at_json_kv_bool(j, "gil", vs[i].gil == AT_STACK_GIL_HELD);
        at_json_kv_bool(j, "gil_wait", vs[i].gil == AT_STACK_GIL_WAIT);
        at_json_obj_end(j);
    }
    at_json_arr_end(j);
    free(vs);
}

static void json_top(const at_stacks_t *s, summary_t *sum, at_json_t *j, const at_options_t *o)
{
    uint32_t n = rank_functions(sum), top = o && o->top_n > 0 ? (uint32_t)o->top_n : DEFAULT_TOP;
    at_json_key(j, "top");
    at_json_arr_begin(j);
    for (uint32_t i = 0; i < n && i < top; i++) {
        const fn_stat_t *f = &sum->fns[i];
        at_json_obj_begin(j);
        at_json_kv_str(j, "function", at_symtab_func(at_stacks_syms(s), f->sym));
        at_json_kv_str(j, "file", at_symtab_file(at_stacks_syms(s), f->sym));
        at_json_kv_int(j, "line", f->line);
        at_json_kv_uint(j, "self", f->self);
        at_json_kv_uint(j, "total", f->total);
        at_json_kv_double(j, "self_pct", at_pct(f->self, sum->included));
        at_json_kv_double(j, "total_pct", at_pct(f->total, sum->included));
        at_json_obj_end(j);
    }
    at_json_arr_end(j);
}

/* With --asyncio: every task samples ran under, most first. */
static void json_tasks(const at_stacks_t *s, const summary_t *sum, at_json_t *j)
{
    if (!sum->ntasks)
        return;
    at_json_key(j, "tasks");
    at_json_arr_begin(j);
    for (uint32_t i = 0; i < sum->ntasks; i++) {
        at_json_obj_begin(j);
        at_json_kv_str(j, "task", at_symtab_task_name(at_stacks_syms(s), sum->tasks[i].sym));
        at_json_kv_uint(j, "samples", sum->tasks[i].total);
        at_json_kv_double(j, "share_pct", at_pct(sum->tasks[i].total, sum->included));
        at_json_obj_end(j);
    }
    at_json_arr_end(j);
    at_json_kv_uint(j, "samples_outside_tasks", sum->included - sum->in_tasks);
}

/* Every thread's running and idle samples (idle ones counted also
 * without --idle), and where it waited most. */
static void json_threads(const at_stacks_t *s, at_json_t *j)
{
    at_thread_split_t *t;
    int n = at_thread_split(s, &t);
    if (n < 0)
        return;
    at_json_key(j, "by_thread");
    at_thread_split_json(s, t, n, j);
    free(t);
}

int at_stacks_report_json(const char *dir, pid_t pid, at_json_t *j, const at_options_t *o)
{
    at_stacks_t *s;
    summary_t sum;
    int rc = load_for_report(dir, pid, &s);
    if (rc < 0)
        return rc;
    if ((rc = summarize(s, o, &sum)) == 0) {
        const at_stacks_meta_t *m = at_stacks_info(s);
        at_json_obj_begin(j);
        /* eBPF's perf_event sampler is the only on-CPU one */
        at_json_kv_str(j, "source", m->on_cpu ? "ebpf" : "sampler");
        at_json_kv_double(j, "rate_hz", m->rate_hz);
        at_json_kv_double(j, "achieved_hz", achieved_hz(m));
        at_json_kv_str(j, "clock", m->on_cpu ? "cpu" : "wall");
        if (m->busy_s > 0 && m->samples)
            at_json_kv_double(j, "us_per_sample", m->busy_s * 1e6 / (double)m->samples);
        if (m->samples && (m->read_calls || m->proc_reads)) {
            at_json_kv_double(j, "reads_per_sample", (double)m->read_calls / (double)m->samples);
            at_json_kv_double(j, "read_bytes_per_sample", (double)m->read_bytes / (double)m->samples);
            at_json_kv_double(j, "proc_reads_per_sample", (double)m->proc_reads / (double)m->samples);
        }
        if (m->waits_polled || m->waits_timed) {
            at_json_key(j, "waits");
            at_json_obj_begin(j);
            at_json_kv_uint(j, "polled", m->waits_polled);
            at_json_kv_uint(j, "timer", m->waits_timed);
            at_json_obj_end(j);
        }
        if (m->on_cpu)
            at_json_kv_double(j, "cpu_s", m->cpu_s);
        at_json_kv_uint(j, "count", m->samples);
        at_json_kv_uint(j, "missed", m->missed);
        at_json_kv_double(j, "duration_s", m->duration_s);
        at_json_kv_bool(j, "native", m->native);
        at_json_kv_bool(j, "idle_included", o && o->idle);
        at_json_kv_uint(j, "thread_samples", sum.included);
        at_json_kv_uint(j, "idle_left_out", sum.idle_left_out);
        at_json_kv_uint(j, "threads", sum.threads);
        json_stacks(s, j, o);
        json_top(s, &sum, j, o);
        json_tasks(s, &sum, j);
        json_threads(s, j);
        at_gil_waits_json(s, j);
        if (m->native)
            json_libraries(s, o, sum.included, j);
        at_json_obj_end(j);
        summary_free(&sum);
    }
    at_stacks_free(s);
    return rc;
}

/* ---- collapsed stacks ----------------------------------------------------- */

/* Frame names may not hold ';' (the separator) or line breaks. */
static void put_collapsed(FILE *out, const char *label)
{
    for (const unsigned char *p = (const unsigned char *)label; *p; p++)
        fputc(*p == ';' ? ',' : *p < 0x20 || *p == 0x7f ? '?' : *p, out);
}

static int collapse_one(const at_stacks_t *s, FILE *out, const at_options_t *o)
{
    char label[LABEL_MAX];
    at_stacks_t *merged = at_stacks_new(at_stacks_info(s)->pid);
    size_t c = 0;
    at_stack_view_t v;
    if (!merged)
        return -ENOMEM;
    /* the flags split stacks on disk; a flame graph merges them */
    while (at_stacks_next(s, &c, &v))
        if (at_stacks_included(&v, o))
            at_stacks_add(merged, v.tid, 0, 0, v.frames, v.n, v.count);
    for (c = 0; at_stacks_next(merged, &c, &v);) {
        fprintf(out, "%s (%d);", at_stacks_info(s)->comm, (int)at_key_pid(at_stacks_info(s)->pid));
        put_collapsed(out, at_stacks_thread_label(s, v.tid, label, sizeof label));
        for (int k = 0; k < v.n; k++) {
            fputc(';', out);
            put_collapsed(out, at_stacks_frame_label(s, &v.frames[k], label, sizeof label));
        }
        fprintf(out, " %" PRIu64 "\n", v.count);
    }
    at_stacks_free(merged);
    return 0;
}

int at_stacks_write_collapsed(const char *dir, FILE *out, const at_options_t *o)
{
    pid_t pids[4096];
    int n = at_stacks_list(dir, pids, 4096), found = 0, rc = 0;
    if (n < 0) {
        fprintf(stderr, "archtrace: cannot read %s: %s\n", dir, at_errstr(-n));
        return n;
    }
    for (int i = 0; i < n; i++) {
        at_stacks_t *s;
        int r = load_for_report(dir, pids[i], &s);
        if (r == -ENOENT)
            continue;
        if (r == 0) {
            r = collapse_one(s, out, o);
            at_stacks_free(s);
            found++;
        }
        rc = rc ? rc : r;
    }
    return rc ? rc : found ? 0 : -ENOENT;
}
