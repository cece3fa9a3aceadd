/* SPDX-License-Identifier: MIT */
/* report_bpf.c - what only an eBPF recording of a process (<pid>.bpf) has:
 * how each probe was attached, garbage collections and the probes' own
 * counters, as text, JSON and Chrome events.  Its GIL waits, imports and
 * samples are in the session model and render with the shim's (report_gil,
 * report_imports, report_stacks), each marked with its source. */
#include "session/bpf_data.h"
#include "report/report_features.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "report/chrome.h"
#include "out/textout.h"
#include "session/session.h"

static double attached_s(const at_bpf_data_t *d)
{
    return d->end_ns > d->attach_ns ? (double)(d->end_ns - d->attach_ns) / 1e9 : 0;
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
    int rc = at_bpf_data_read(dir, pid, &d);
    if (rc < 0)
        return rc;
    (void)o;
    fputc('\n', out);
    at_text_heading(out, "eBPF probes");
    text_views(out, &d);
    text_gc(out, &d);
    text_dropped(out, &d);
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

int at_bpf_report_json(const char *dir, pid_t pid, at_json_t *j, const at_options_t *o)
{
    at_bpf_data_t d;
    int rc = at_bpf_data_read(dir, pid, &d);
    if (rc < 0)
        return rc;
    (void)o;
    at_json_obj_begin(j);
    at_json_kv_str(j, "python", d.version);
    at_json_kv_str(j, "build", d.build);
    at_json_kv_uint(j, "attached_ns", d.end_ns - d.attach_ns);
    at_json_kv_bool(j, "exited", d.exited);
    json_views(j, &d);
    json_gc(j, &d);
    /* what the BPF sampler received; the stacks are in "samples" */
    at_json_key(j, "samples");
    at_json_obj_begin(j);
    at_json_kv_uint(j, "received", d.samples);
    at_json_kv_uint(j, "with_python", d.samples_py);
    at_json_obj_end(j);
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

int at_bpf_chrome(const char *dir, pid_t pid, at_json_t *j, const at_options_t *o)
{
    at_bpf_data_t d;
    char name[48];
    (void)o;
    int rc = at_bpf_data_read(dir, pid, &d);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < d.ngc; i++) {
        snprintf(name, sizeof name, "gc gen %d", (int)d.gcs[i].generation);
        chrome_event(j, name, "gc (bpf)", pid, d.gcs[i].tid, d.gcs[i].start_ns, d.gcs[i].end_ns);
    }
    at_bpf_data_free(&d);
    return 0;
}
