/* SPDX-License-Identifier: MIT */
/* metrics.c - the agent's readings in Prometheus text exposition (see metrics.h). */
#include "agent/metrics.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "session/thread_names.h"

#define NS 1e9

/* A label value escaped as the exposition format says: \\, \" and \n. */
static void put_value(FILE *out, const char *v)
{
    for (; v && *v; v++) {
        if (*v == '\\' || *v == '"')
            fputc('\\', out), fputc(*v, out);
        else if (*v == '\n')
            fputs("\\n", out);
        else
            fputc(*v, out);
    }
}

static void family(FILE *out, const char *name, const char *type, const char *help)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{pid=..,comm=..,python=..,build=..  (left open for more labels) */
static void open_process(FILE *out, const char *name, const at_bpf_data_t *d)
{
    fprintf(out, "%s{pid=\"%d\",comm=\"", name, (int)d->pid);
    put_value(out, d->comm);
    fprintf(out, "\",python=\"");
    put_value(out, d->version);
    fprintf(out, "\",build=\"");
    put_value(out, d->build);
    fputc('"', out);
}

static void put_thread(FILE *out, const at_bpf_live_t *l, uint32_t tid)
{
    const char *name = l->names ? at_thread_names_get(l->names, tid) : NULL;
    fprintf(out, ",tid=\"%u\",thread=\"", tid);
    put_value(out, name ? name : "");
    fputc('"', out);
}

/* ---- per process and thread ---------------------------------------------------- */

typedef void (*emit_fn)(FILE *out, const char *name, const at_bpf_live_t *l);

static double gil_field(const at_bpf_gil_row_t *r, int which)
{
    switch (which) {
    case 0:  return (double)r->wait_ns / NS;
    case 1:  return (double)r->waits;
    case 2:  return (double)r->timeouts;
    default: return (double)r->max_wait_ns / NS;
    }
}

static void emit_gil(FILE *out, const char *name, const at_bpf_live_t *l, int which)
{
    for (size_t i = 0; i < l->ngil; i++) {
        open_process(out, name, l->data);
        put_thread(out, l, l->gil[i].tid);
        fprintf(out, "} %.9g\n", gil_field(&l->gil[i], which));
    }
}

static void emit_gil_wait(FILE *o, const char *n, const at_bpf_live_t *l) { emit_gil(o, n, l, 0); }
static void emit_gil_waits(FILE *o, const char *n, const at_bpf_live_t *l) { emit_gil(o, n, l, 1); }
static void emit_gil_drops(FILE *o, const char *n, const at_bpf_live_t *l) { emit_gil(o, n, l, 2); }
static void emit_gil_max(FILE *o, const char *n, const at_bpf_live_t *l) { emit_gil(o, n, l, 3); }

static void emit_value(FILE *out, const char *name, const at_bpf_live_t *l, double v)
{
    open_process(out, name, l->data);
    fprintf(out, "} %.9g\n", v);
}

static void emit_imports(FILE *o, const char *n, const at_bpf_live_t *l)
{
    if (l->data->avail[AT_BPF_VIEW_IMPORTS])
        emit_value(o, n, l, (double)(l->data->nimports + l->data->imports_dropped));
}

static void emit_import_failures(FILE *o, const char *n, const at_bpf_live_t *l)
{
    uint64_t failed = 0;
    for (size_t i = 0; i < l->data->nimports; i++)
        failed += l->data->imports[i].found == 0;
    if (l->data->avail[AT_BPF_VIEW_IMPORTS])
        emit_value(o, n, l, (double)failed);
}

static void emit_gc(FILE *out, const char *name, const at_bpf_live_t *l, int which)
{
    if (!l->data->avail[AT_BPF_VIEW_GC])
        return;
    for (int g = 0; g < AT_BPF_GC_SLOTS; g++) {
        const struct at_bpf_gc_stat *s = &l->gc[g];
        if (!s->runs)
            continue;
        open_process(out, name, l->data);
        fprintf(out, ",generation=\"%d\"} %.9g\n", g,
                which == 0 ? (double)s->runs : which == 1 ? (double)s->total_ns / NS : (double)s->collected);
    }
}

static void emit_gc_runs(FILE *o, const char *n, const at_bpf_live_t *l) { emit_gc(o, n, l, 0); }
static void emit_gc_secs(FILE *o, const char *n, const at_bpf_live_t *l) { emit_gc(o, n, l, 1); }
static void emit_gc_objs(FILE *o, const char *n, const at_bpf_live_t *l) { emit_gc(o, n, l, 2); }

static void emit_samples(FILE *o, const char *n, const at_bpf_live_t *l)
{
    if (l->data->avail[AT_BPF_VIEW_SAMPLES])
        emit_value(o, n, l, (double)l->data->samples);
}

static void emit_samples_lost(FILE *o, const char *n, const at_bpf_live_t *l)
{
    if (l->data->avail[AT_BPF_VIEW_SAMPLES])
        emit_value(o, n, l, (double)l->stats[AT_BPF_ST_LOST_SAMPLE]);
}

static void emit_events_lost(FILE *out, const char *name, const at_bpf_live_t *l)
{
    static const struct { const char *kind; int stat; } kinds[] = {
        { "import", AT_BPF_ST_LOST_IMPORT }, { "gc", AT_BPF_ST_LOST_GC }, { "sample", AT_BPF_ST_LOST_SAMPLE },
    };
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
        open_process(out, name, l->data);
        fprintf(out, ",kind=\"%s\"} %" PRIu64 "\n", kinds[k].kind, l->stats[kinds[k].stat]);
    }
}

static void emit_view_up(FILE *out, const char *name, const at_bpf_live_t *l)
{
    for (int v = 0; v < AT_BPF_VIEWS; v++) {
        open_process(out, name, l->data);
        fprintf(out, ",view=\"%s\"} %d\n", at_bpf_view_names[v], l->data->avail[v] ? 1 : 0);
    }
}

static const struct {
    const char *name, *type, *help;
    emit_fn emit;
} families[] = {
    { "archtrace_gil_wait_seconds_total", "counter",
      "Time each thread spent blocked waiting for the GIL (eBPF, in take_gil).", emit_gil_wait },
    { "archtrace_gil_waits_total", "counter", "GIL takes that had to wait.", emit_gil_waits },
    { "archtrace_gil_drop_requests_total", "counter",
      "Waits that timed out and asked the holder to drop the GIL (forced switches asked for).", emit_gil_drops },
    { "archtrace_gil_max_wait_seconds", "gauge", "Longest single GIL wait of the thread.", emit_gil_max },
    { "archtrace_imports_total", "counter", "Modules imported (loaded) since the probes attached.", emit_imports },
    { "archtrace_import_failures_total", "counter", "Imports that ended without a module (of those kept).",
      emit_import_failures },
    { "archtrace_gc_collections_total", "counter", "Garbage collections by generation.", emit_gc_runs },
    { "archtrace_gc_seconds_total", "counter", "Time spent collecting garbage, by generation.", emit_gc_secs },
    { "archtrace_gc_collected_objects_total", "counter", "Objects the collections freed, by generation.",
      emit_gc_objs },
    { "archtrace_samples_total", "counter", "Stack samples received (on-CPU, per CPU-second of the threads).",
      emit_samples },
    { "archtrace_samples_lost_total", "counter", "Samples lost (the ring buffer was full).", emit_samples_lost },
    { "archtrace_events_lost_total", "counter", "Probe events lost, by kind.", emit_events_lost },
    { "archtrace_probe_view_up", "gauge", "1 when the probes of a view are attached to the process.",
      emit_view_up },
};

/* ---- the agent itself ------------------------------------------------------------ */

static double cpu_seconds(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) < 0)
        return 0;
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static double resident_bytes(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "re");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return (double)resident * (double)sysconf(_SC_PAGESIZE);
}

static void one(FILE *out, const char *name, const char *type, const char *help, double v)
{
    family(out, name, type, help);
    fprintf(out, "%s %.9g\n", name, v);
}

static void write_health(FILE *out, const at_watch_t *w, const at_profiles_t *pr, uint64_t scrapes)
{
    one(out, "archtrace_agent_processes_watched", "gauge", "CPython processes with probes attached now.", (double)w->n);
    one(out, "archtrace_agent_processes_attached_total", "counter", "CPython processes attached since start.",
        (double)w->attached_total);
    one(out, "archtrace_agent_processes_exited_total", "counter", "Watched processes that exited.",
        (double)w->exited_total);
    one(out, "archtrace_agent_probe_sets", "gauge",
        "eBPF probe sets attached now: one per distinct CPython binary (or libpython) watched.",
        (double)(w->host ? at_bpf_host_sets(w->host) : 0));
    family(out, "archtrace_agent_attach_failures_total", "counter",
           "Python processes that could not be watched, by reason.");
    for (int r = 0; r < AT_REFUSALS; r++)
        fprintf(out, "archtrace_agent_attach_failures_total{reason=\"%s\"} %" PRIu64 "\n", at_watch_refusal_names[r],
                w->refused[r]);
    one(out, "archtrace_agent_cpu_seconds_total", "counter", "CPU time the agent used (user and system).",
        cpu_seconds());
    one(out, "archtrace_agent_resident_bytes", "gauge", "The agent's resident memory.", resident_bytes());
    one(out, "archtrace_agent_profiles_written_total", "counter", "pprof files written to --profiles.",
        (double)pr->written);
    one(out, "archtrace_agent_profile_failures_total", "counter", "Profiles that could not be made or written.",
        (double)pr->failed);
    one(out, "archtrace_agent_profiles_removed_total", "counter", "Old profiles removed to keep --profiles-max.",
        (double)pr->removed);
    family(out, "archtrace_agent_pushes_total", "counter", "Profiles POSTed to --push, by result.");
    fprintf(out, "archtrace_agent_pushes_total{result=\"ok\"} %" PRIu64 "\n", pr->pushed);
    fprintf(out, "archtrace_agent_pushes_total{result=\"failed\"} %" PRIu64 "\n", pr->push_failed);
    one(out, "archtrace_agent_scrapes_total", "counter", "Scrapes of /metrics served.", (double)scrapes);
}

void at_metrics_write(FILE *out, at_watch_t *w, const at_profiles_t *pr, uint64_t scrapes)
{
    at_bpf_live_t *live = w->n ? calloc(w->n, sizeof *live) : NULL;
    for (size_t i = 0; live && i < w->n; i++)
        at_bpf_live(w->procs[i].bpf, &live[i]);
    for (size_t f = 0; live && f < sizeof families / sizeof *families; f++) {
        family(out, families[f].name, families[f].type, families[f].help);
        for (size_t i = 0; i < w->n; i++)
            families[f].emit(out, families[f].name, &live[i]);
    }
    free(live);
    write_health(out, w, pr, scrapes);
}
