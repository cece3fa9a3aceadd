/* SPDX-License-Identifier: MIT */
/* report_bpf.c - the eBPF recording of one process (<pid>.bpf) as text, JSON and Chrome events. */
#include "session/bpf_data.h"
#include "report/report_features.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "report/chrome.h"
#include "session/stacks.h"
#include "out/textout.h"
#include "session/session.h"

#define DEFAULT_TOP 5

static int top_n(const at_options_t *o)
{
    return o && o->top_n > 0 ? o->top_n : DEFAULT_TOP;
}

static double attached_s(const at_bpf_data_t *d)
{
    return d->end_ns > d->attach_ns ? (double)(d->end_ns - d->attach_ns) / 1e9 : 0;
}

static int load(const char *dir, pid_t pid, at_bpf_data_t *d)
{
    char err[256], stem[32];
    int rc = at_bpf_data_load(dir, pid, d, err, sizeof err);
    if (rc < 0 && rc != -ENOENT)
        fprintf(stderr, "archtrace: %s/%s.bpf: %s\n", dir, at_key_name(pid, stem, sizeof stem), err);
    return rc;
}

/* Thread names live with the process's stacks (<pid>.stacks, written by
 * the same recording); NULL when there are none (the stacks report says
 * why if that file is damaged). */
static at_stacks_t *load_names(const char *dir, pid_t pid)
{
    at_stacks_t *s = NULL;
    if (at_stacks_load(dir, pid, &s, NULL, 0) < 0)
        return NULL;
    return s;
}

static const char *name_of(at_stacks_t *s, uint32_t tid)
{
    return s ? at_thread_names_get(at_stacks_names(s), tid) : NULL;
}

/* "thread TID" or "thread TID "NAME"". */
static const char *thread_label(at_stacks_t *s, uint32_t tid, char *buf, size_t n)
{
    if (s)
        return at_stacks_thread_label(s, tid, buf, n);
    snprintf(buf, n, "thread %u", tid);
    return buf;
}

/* ---- derived numbers --------------------------------------------------------- */

typedef struct gc_totals {
    uint64_t runs, total_ns, max_ns;
    int64_t collected;
} gc_totals_t;

static gc_totals_t gc_totals(const at_bpf_data_t *d)
{
    gc_totals_t t = { 0, 0, 0, 0 };
    for (int g = 0; g < AT_BPF_GC_SLOTS; g++) {
        t.runs += d->gc[g].runs;
        t.total_ns += d->gc[g].total_ns;
        t.collected += d->gc[g].collected;
    }
    for (size_t i = 0; i < d->ngc; i++)
        if (d->gcs[i].end_ns - d->gcs[i].start_ns > t.max_ns)
            t.max_ns = d->gcs[i].end_ns - d->gcs[i].start_ns;
    return t;
}

/* Total GIL wait over (attached time x threads that waited). */
static double wait_ratio(const at_bpf_data_t *d)
{
    double att = (double)(d->end_ns - d->attach_ns), sum = 0;
    for (size_t i = 0; i < d->ngil; i++)
        sum += (double)d->gil[i].wait_ns;
    return d->ngil && att > 0 ? sum / (att * (double)d->ngil) : 0;
}

static double fraction(const at_bpf_data_t *d, uint64_t ns)
{
    double att = (double)(d->end_ns - d->attach_ns);
    return att > 0 ? (double)ns / att : 0;
}

static int cmp_cum_desc(const void *a, const void *b)
{
    const at_bpf_import_row_t *x = *(const at_bpf_import_row_t *const *)a;
    const at_bpf_import_row_t *y = *(const at_bpf_import_row_t *const *)b;
    uint64_t cx = x->end_ns - x->start_ns, cy = y->end_ns - y->start_ns;
    return cx < cy ? 1 : cx > cy ? -1 : 0;
}

static int cmp_stack_desc(const void *a, const void *b)
{
    const at_bpf_stack_row_t *x = *(const at_bpf_stack_row_t *const *)a;
    const at_bpf_stack_row_t *y = *(const at_bpf_stack_row_t *const *)b;
    return x->count < y->count ? 1 : x->count > y->count ? -1 : 0;
}

/* Pointers to rows sorted by cmp (caller frees). */
static void *sorted(void *rows, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
    void **p = malloc((n ? n : 1) * sizeof *p);
    if (!p)
        return NULL;
    for (size_t i = 0; i < n; i++)
        p[i] = (char *)rows + i * size;
    qsort(p, n, sizeof *p, cmp);
    return p;
}

/* ---- text --------------------------------------------------------------------- */

static void text_views(FILE *out, const at_bpf_data_t *d)
{
    char when[32];
    at_text_duration(when, sizeof when, attached_s(d));
    fprintf(out, "pid %d (", (int)d->pid);
    at_text_put_escaped(out, d->comm, 32);
    fprintf(out, ", Python %s %s), attached %s%s\n", d->version, d->build, when,
            d->exited ? ", until the process exited" : "");
    for (int v = 0; v < AT_BPF_VIEWS; v++) {
        fprintf(out, "  %-8s ", at_bpf_view_names[v]);
        at_text_put_escaped(out, d->how[v], AT_BPF_HOW_MAX);
        fputc('\n', out);
    }
}

static void text_gil(FILE *out, const at_bpf_data_t *d, at_stacks_t *names)
{
    char w[32], m[32];
    if (!d->avail[AT_BPF_VIEW_GIL])
        return;
    fprintf(out, "\nGIL waits (eBPF): %zu thread(s) waited, wait ratio %.1f%%\n", d->ngil,
            100 * wait_ratio(d));
    if (!d->ngil)
        return;
    fprintf(out, "  %-9s %12s %11s %8s %9s %10s  %s\n", "TID", "WAITED", "OF ATTACHED", "WAITS",
            "TIMEOUTS", "LONGEST", "THREAD");
    for (size_t i = 0; i < d->ngil; i++) {
        const at_bpf_gil_row_t *r = &d->gil[i];
        const char *name = name_of(names, r->tid);
        at_text_duration(w, sizeof w, (double)r->wait_ns / 1e9);
        at_text_duration(m, sizeof m, (double)r->max_wait_ns / 1e9);
        fprintf(out, "  %-9u %12s %10.1f%% %8llu %9llu %10s  ", r->tid, w, 100 * fraction(d, r->wait_ns),
                (unsigned long long)r->waits, (unsigned long long)r->timeouts, m);
        at_text_put_escaped(out, name ? name : "-", 40);
        fputs(r->open ? "  (waiting at the end)\n" : "\n", out);
    }
}

static void text_imports(FILE *out, const at_bpf_data_t *d, const at_options_t *o)
{
    char c[32], s[32];
    if (!d->avail[AT_BPF_VIEW_IMPORTS])
        return;
    fprintf(out, "\nimports (eBPF): %zu module load(s)", d->nimports);
    if (d->imports_dropped)
        fprintf(out, ", %llu not kept (table full)", (unsigned long long)d->imports_dropped);
    fputc('\n', out);
    const at_bpf_import_row_t **p = sorted(d->imports, d->nimports, sizeof *d->imports, cmp_cum_desc);
    if (!p || !d->nimports) {
        free(p);
        return;
    }
    fprintf(out, "  %-40s %12s %12s %6s\n", "MODULE (slowest first)", "CUMULATIVE", "SELF", "DEPTH");
    for (size_t i = 0; i < d->nimports && i < (size_t)top_n(o); i++) {
        at_text_duration(c, sizeof c, (double)(p[i]->end_ns - p[i]->start_ns) / 1e9);
        at_text_duration(s, sizeof s, (double)p[i]->self_ns / 1e9);
        fputs("  ", out);
        size_t w = at_text_put_escaped(out, p[i]->name, 40);
        fprintf(out, "%*s %12s %12s %6u%s\n", (int)(w < 40 ? 40 - w : 0), "", c, s, p[i]->depth,
                p[i]->found ? "" : "  (failed)");
    }
    free(p);
}

static void text_gc(FILE *out, const at_bpf_data_t *d)
{
    char t[32], m[32];
    if (!d->avail[AT_BPF_VIEW_GC])
        return;
    gc_totals_t g = gc_totals(d);
    at_text_duration(t, sizeof t, (double)g.total_ns / 1e9);
    at_text_duration(m, sizeof m, (double)g.max_ns / 1e9);
    fprintf(out, "\nGC (eBPF): %llu collection(s), %s in total, longest %s, %lld unreachable found\n",
            (unsigned long long)g.runs, t, m, (long long)g.collected);
    for (int k = 0; k < AT_BPF_GC_SLOTS && g.runs; k++) {
        if (!d->gc[k].runs)
            continue;
        at_text_duration(t, sizeof t, (double)d->gc[k].total_ns / 1e9);
        fprintf(out, "  generation %-3s %8llu runs %12s %10lld collected\n",
                k < AT_BPF_GC_SLOTS - 1 ? (const char *[]){ "0", "1", "2" }[k] : "?",
                (unsigned long long)d->gc[k].runs, t, (long long)d->gc[k].collected);
    }
}

/* Samples per second of the sampled threads' CPU time (the timer only
 * keeps the ticks that find the target on a CPU). */
static double oncpu_hz(const at_bpf_data_t *d)
{
    return d->oncpu_ns ? (double)d->oncpu_intervals * 1e9 / (double)d->oncpu_ns : 0.0;
}

#define THREAD_COL 28   /* "thread TID "NAME"" in the stack list */

static void text_stacks(FILE *out, const at_bpf_data_t *d, const at_options_t *o, at_stacks_t *names)
{
    char label[96];
    if (!d->avail[AT_BPF_VIEW_SAMPLES])
        return;
    fprintf(out, "\nsamples (eBPF): %llu on-CPU sample(s) at %g Hz per second of CPU time, %llu with "
            "Python frames",
            (unsigned long long)d->samples, d->rate_hz, (unsigned long long)d->samples_py);
    if (d->oncpu_ns)
        fprintf(out, "; %.1f Hz achieved per second of CPU time", oncpu_hz(d));
    if (d->stats[AT_BPF_ST_LOST_SAMPLE])
        fprintf(out, ", %llu lost", (unsigned long long)d->stats[AT_BPF_ST_LOST_SAMPLE]);
    fputc('\n', out);
    const at_bpf_stack_row_t **p = sorted(d->stacks, d->nstacks, sizeof *d->stacks, cmp_stack_desc);
    for (size_t i = 0; p && i < d->nstacks && i < (size_t)top_n(o); i++) {
        const at_bpf_stack_row_t *r = p[i];
        fprintf(out, "  %5.1f%%  ", d->samples ? 100.0 * (double)r->count / (double)d->samples : 0);
        thread_label(names, r->tid, label, sizeof label);
        size_t w = at_text_put_escaped(out, label, THREAD_COL);
        fprintf(out, "%*s  ", (int)(w < THREAD_COL ? THREAD_COL - w : 0), "");
        at_text_put_escaped(out, r->nframes ? r->frames[r->nframes - 1] : "?", 120);
        fputc('\n', out);
    }
    free(p);
}

static void text_dropped(FILE *out, const at_bpf_data_t *d)
{
    int any = 0;
    for (int s = 0; s < AT_BPF_ST_COUNT; s++) {
        if (s == AT_BPF_ST_SAMPLES || s == AT_BPF_ST_PY_TRUNCATED || !d->stats[s])
            continue;
        fprintf(out, "%s%s %llu", any++ ? ", " : "\nprobe counters: ", at_bpf_stat_names[s],
                (unsigned long long)d->stats[s]);
    }
    if (any)
        fputc('\n', out);
}

int at_bpf_report_text(const char *dir, pid_t pid, FILE *out, const at_options_t *o)
{
    at_bpf_data_t d;
    int rc = load(dir, pid, &d);
    if (rc < 0)
        return rc;
    at_stacks_t *names = load_names(dir, pid);
    fputc('\n', out);
    at_text_heading(out, "eBPF probes");
    text_views(out, &d);
    text_gil(out, &d, names);
    text_imports(out, &d, o);
    text_gc(out, &d);
    text_stacks(out, &d, o, names);
    text_dropped(out, &d);
    at_stacks_free(names);
    at_bpf_data_free(&d);
    return 0;
}

/* ---- JSON ------------------------------------------------------------------------ */

static void json_views(at_json_t *j, const at_bpf_data_t *d)
{
    at_json_key(j, "probes");
    at_json_obj_begin(j);
    for (int v = 0; v < AT_BPF_VIEWS; v++)
        at_json_kv_str(j, at_bpf_view_names[v], d->how[v]);
    at_json_obj_end(j);
    at_json_key(j, "unavailable");
    at_json_arr_begin(j);
    for (int v = 0; v < AT_BPF_VIEWS; v++)
        if (!d->avail[v])
            at_json_str(j, at_bpf_view_names[v]);
    at_json_arr_end(j);
}

static void json_gil(at_json_t *j, const at_bpf_data_t *d, at_stacks_t *names)
{
    at_json_key(j, "gil");
    if (!d->avail[AT_BPF_VIEW_GIL]) {
        at_json_null(j);
        return;
    }
    at_json_obj_begin(j);
    at_json_kv_double(j, "wait_ratio", wait_ratio(d));
    at_json_key(j, "threads");
    at_json_arr_begin(j);
    for (size_t i = 0; i < d->ngil; i++) {
        const at_bpf_gil_row_t *r = &d->gil[i];
        at_json_obj_begin(j);
        at_json_kv_uint(j, "tid", r->tid);
        if (name_of(names, r->tid))
            at_json_kv_str(j, "thread_name", name_of(names, r->tid));
        at_json_kv_uint(j, "wait_ns", r->wait_ns);
        at_json_kv_uint(j, "waits", r->waits);
        at_json_kv_uint(j, "calls", r->calls);
        at_json_kv_uint(j, "timeouts", r->timeouts);
        at_json_kv_uint(j, "max_wait_ns", r->max_wait_ns);
        at_json_kv_double(j, "wait_fraction", fraction(d, r->wait_ns));
        at_json_kv_bool(j, "waiting_at_end", (int)r->open);
        at_json_obj_end(j);
    }
    at_json_arr_end(j);
    at_json_obj_end(j);
}

static void json_imports(at_json_t *j, const at_bpf_data_t *d)
{
    at_json_key(j, "imports");
    if (!d->avail[AT_BPF_VIEW_IMPORTS]) {
        at_json_null(j);
        return;
    }
    at_json_arr_begin(j);
    for (size_t i = 0; i < d->nimports; i++) {
        const at_bpf_import_row_t *r = &d->imports[i];
        at_json_obj_begin(j);
        at_json_kv_str(j, "module", r->name);
        at_json_kv_double(j, "cumulative_us", (double)(r->end_ns - r->start_ns) / 1e3);
        at_json_kv_double(j, "self_us", (double)r->self_ns / 1e3);
        at_json_kv_uint(j, "tid", r->tid);
        at_json_kv_uint(j, "depth", r->depth);
        at_json_kv_bool(j, "found", r->found);
        at_json_kv_uint(j, "start_ns", r->start_ns);
        at_json_obj_end(j);
    }
    at_json_arr_end(j);
}

static void json_gc(at_json_t *j, const at_bpf_data_t *d)
{
    at_json_key(j, "gc");
    if (!d->avail[AT_BPF_VIEW_GC]) {
        at_json_null(j);
        return;
    }
    gc_totals_t g = gc_totals(d);
    at_json_obj_begin(j);
    at_json_kv_uint(j, "runs", g.runs);
    at_json_kv_double(j, "total_us", (double)g.total_ns / 1e3);
    at_json_kv_double(j, "max_us", (double)g.max_ns / 1e3);
    at_json_kv_int(j, "collected", g.collected);
    at_json_key(j, "by_generation");
    at_json_arr_begin(j);
    for (int k = 0; k < AT_BPF_GC_SLOTS; k++) {
        if (k == AT_BPF_GC_SLOTS - 1 && !d->gc[k].runs)
            continue;   /* the out-of-range slot, shown only when used */
        at_json_obj_begin(j);
        if (k < AT_BPF_GC_SLOTS - 1)
            at_json_kv_int(j, "generation", k);
        else
            at_json_kv_int(j, "generation", -1);
        at_json_kv_uint(j, "runs", d->gc[k].runs);
        at_json_kv_double(j, "total_us", (double)d->gc[k].total_ns / 1e3);
        at_json_kv_int(j, "collected", d->gc[k].collected);
        at_json_obj_end(j);
    }
    at_json_arr_end(j);
    at_json_obj_end(j);
}

static void json_stacks(at_json_t *j, const at_bpf_data_t *d, const at_options_t *o, at_stacks_t *names)
{
    at_json_key(j, "stacks");
    if (!d->avail[AT_BPF_VIEW_SAMPLES]) {
        at_json_null(j);
        return;
    }
    at_json_obj_begin(j);
    at_json_kv_double(j, "rate_hz", d->rate_hz);
    at_json_kv_double(j, "achieved_hz", oncpu_hz(d));
    at_json_kv_double(j, "cpu_s", (double)d->oncpu_ns / 1e9);
    at_json_kv_uint(j, "samples", d->samples);
    at_json_kv_uint(j, "with_python", d->samples_py);
    at_json_kv_uint(j, "lost", d->stats[AT_BPF_ST_LOST_SAMPLE]);
    at_json_kv_uint(j, "distinct", d->nstacks);
    at_json_key(j, "top");
    at_json_arr_begin(j);
    const at_bpf_stack_row_t **p = sorted(d->stacks, d->nstacks, sizeof *d->stacks, cmp_stack_desc);
    size_t lim = (size_t)top_n(o) * 4;
    for (size_t i = 0; p && i < d->nstacks && i < lim; i++) {
        at_json_obj_begin(j);
        at_json_kv_uint(j, "thread", p[i]->tid);
        if (name_of(names, p[i]->tid))
            at_json_kv_str(j, "thread_name", name_of(names, p[i]->tid));
        at_json_kv_bool(j, "gil", (int)p[i]->gil);
        at_json_kv_uint(j, "count", p[i]->count);
        at_json_key(j, "frames");
        at_json_arr_begin(j);
        for (int k = 0; k < p[i]->nframes; k++)
            at_json_str(j, p[i]->frames[k]);
        at_json_arr_end(j);
        at_json_obj_end(j);
    }
    free(p);
    at_json_arr_end(j);
    at_json_obj_end(j);
}

int at_bpf_report_json(const char *dir, pid_t pid, at_json_t *j, const at_options_t *o)
{
    at_bpf_data_t d;
    int rc = load(dir, pid, &d);
    if (rc < 0)
        return rc;
    at_stacks_t *names = load_names(dir, pid);
    at_json_obj_begin(j);
    at_json_kv_str(j, "python", d.version);
    at_json_kv_str(j, "build", d.build);
    at_json_kv_uint(j, "attached_ns", d.end_ns - d.attach_ns);
    at_json_kv_bool(j, "exited", d.exited);
    json_views(j, &d);
    json_gil(j, &d, names);
    json_imports(j, &d);
    json_gc(j, &d);
    json_stacks(j, &d, o, names);
    at_json_key(j, "dropped");
    at_json_obj_begin(j);
    at_json_kv_uint(j, "imports", d.imports_dropped + d.stats[AT_BPF_ST_LOST_IMPORT]);
    at_json_kv_uint(j, "gc", d.gc_dropped + d.stats[AT_BPF_ST_LOST_GC]);
    at_json_kv_uint(j, "samples", d.stats[AT_BPF_ST_LOST_SAMPLE]);
    at_json_kv_uint(j, "stacks", d.stacks_dropped);
    at_json_kv_uint(j, "import_too_deep", d.stats[AT_BPF_ST_IMPORT_DEEP]);
    at_json_kv_uint(j, "map_full", d.stats[AT_BPF_ST_MAP_FULL]);
    at_json_obj_end(j);
    at_json_obj_end(j);
    at_stacks_free(names);
    at_bpf_data_free(&d);
    return 0;
}

/* ---- Chrome trace ---------------------------------------------------------------- */

static void chrome_event(at_json_t *j, const char *name, const char *cat, pid_t pid, uint32_t tid,
                         uint64_t start_ns, uint64_t end_ns)
{
    at_json_obj_begin(j);
    at_json_kv_str(j, "name", name);
    at_json_kv_str(j, "cat", cat);
    at_json_kv_str(j, "ph", "X");
    at_json_kv_int(j, "pid", pid);
    at_json_kv_uint(j, "tid", tid);
    at_json_kv_double(j, "ts", (double)start_ns / 1e3);
    at_json_kv_double(j, "dur", (double)(end_ns - start_ns) / 1e3);
    at_json_obj_end(j);
}

/* A named track per thread the GIL probes saw, with its wait share. */
static void chrome_thread_names(at_json_t *j, const at_bpf_data_t *d, at_stacks_t *names)
{
    char label[96], name[160];
    for (size_t i = 0; i < d->ngil; i++) {
        uint32_t tid = d->gil[i].tid;
        thread_label(names, tid, label, sizeof label);
        snprintf(name, sizeof name, "%s (GIL wait %.1f%%, eBPF)", label, 100 * fraction(d, d->gil[i].wait_ns));
        at_chrome_track_name(j, d->pid, tid, name);
    }
}

int at_bpf_chrome(const char *dir, pid_t pid, at_json_t *j, const at_options_t *o)
{
    at_bpf_data_t d;
    char name[48];
    (void)o;
    int rc = load(dir, pid, &d);
    if (rc < 0)
        return rc;
    at_stacks_t *names = load_names(dir, pid);
    chrome_thread_names(j, &d, names);
    at_stacks_free(names);
    for (size_t i = 0; i < d.nimports; i++)
        chrome_event(j, d.imports[i].name, "import (bpf)", pid, d.imports[i].tid,
                     d.imports[i].start_ns, d.imports[i].end_ns);
    for (size_t i = 0; i < d.ngc; i++) {
        snprintf(name, sizeof name, "gc gen %d", (int)d.gcs[i].generation);
        chrome_event(j, name, "gc (bpf)", pid, d.gcs[i].tid, d.gcs[i].start_ns, d.gcs[i].end_ns);
    }
    at_bpf_data_free(&d);
    return 0;
}
