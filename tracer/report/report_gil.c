/* SPDX-License-Identifier: MIT */
/* report_gil.c - the GIL part of a report: per-thread hold/wait table,
 * contended phases, and the hold/wait timeline as Chrome trace events.
 *
 * Design: <pid>.gil (common/gil_format.h) is read whole, validated, and
 * turned into a view: per-thread totals (from the table, which never
 * drops a count) and the timeline (from the ring, which may have
 * overwritten its oldest intervals: the report says so).  A process that
 * was killed never closed its books; its open intervals are closed at its
 * last recorded event, in the totals and in the timeline alike, so the
 * two always agree.  Contended phases are found on the timeline: stretches
 * between thread starts and ends where two or more threads were in Python
 * (holding or waiting).
 *
 * wait_ratio = total wait / (wall x threads that ran Python), where the
 * threads are counted by the time they spent in Python (holding, waiting
 * or handing off the GIL): a thread blocked in join() or I/O is not
 * running Python.  That is total wait / total time in Python.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "report/chrome.h"
#include "gil_format.h"
#include "report/report_features.h"
#include "session/session.h"
#include "out/textout.h"

#define GIL_FILE_MAX (64u << 20)     /* far above AT_GIL_FILE_SIZE       */
#define END_SLACK_NS 1000000ull      /* events may end this past last_ns  */
#define PHASE_MIN_THREADS 2
#define PHASE_SHARE_DIV 20           /* in Python >= 1/20 of a phase      */
#define MAX_PHASES 64

typedef struct gil_tview {
    const at_gil_thread_t *raw;     /* the row in the file               */
    char name[AT_GIL_NAME_MAX];     /* NUL-terminated copy, maybe ""     */
    uint64_t ns[AT_GIL_EV_KINDS];   /* totals by AT_GIL_EV_* kind        */
    uint64_t start, end;            /* lifetime inside the accounting    */
    int open;                       /* an interval was left open         */
} gil_tview_t;

typedef struct gil_phase {
    uint64_t start, end;            /* window on CLOCK_MONOTONIC         */
    uint64_t ns[AT_GIL_EV_KINDS];   /* per kind, clipped to the window   */
    uint32_t threads;               /* threads in Python in the window   */
} gil_phase_t;

typedef struct gil_view {
    char *buf;                      /* the file                          */
    const at_gil_header_t *h;       /* its header                        */
    gil_tview_t *t;                 /* threads, slot order               */
    uint32_t nt;
    at_gil_event_t *ev;             /* valid intervals, sorted by start  */
    size_t nev;
    size_t bad_events;              /* ring entries that failed checks   */
    uint64_t start, end;            /* accounting window                 */
    gil_phase_t *ph;                /* contended phases                  */
    size_t nph;
} gil_view_t;

/* ---- loading ------------------------------------------------------------ */

static void view_free(gil_view_t *v)
{
    free(v->buf);
    free(v->t);
    free(v->ev);
    free(v->ph);
    memset(v, 0, sizeof(*v));
}

static int read_file(const char *dir, pid_t pid, char **buf, size_t *size)
{
    FILE *f = at_session_open_file(dir, pid, "gil");
    if (!f)
        return -errno;
    struct stat st;
    int rc = fstat(fileno(f), &st) < 0 ? -errno : 0;
    if (rc == 0 && (st.st_size <= 0 || (uint64_t)st.st_size > GIL_FILE_MAX))
        rc = st.st_size <= 0 ? -ENODATA : -EFBIG;
    *size = rc == 0 ? (size_t)st.st_size : 0;
    *buf = rc == 0 ? malloc(*size) : NULL;
    if (rc == 0 && !*buf)
        rc = -ENOMEM;
    if (rc == 0 && fread(*buf, 1, *size, f) != *size)
        rc = -EIO;
    fclose(f);
    if (rc < 0) {
        free(*buf);
        *buf = NULL;
    }
    return rc;
}

static int cmp_event(const void *a, const void *b)
{
    const at_gil_event_t *x = a, *y = b;
    return x->start_ns < y->start_ns ? -1 : x->start_ns > y->start_ns;
}

static void add_event(gil_view_t *v, uint64_t start, uint64_t dur, uint32_t slot, uint32_t kind)
{
    v->ev[v->nev++] = (at_gil_event_t){ .start_ns = start, .dur_ns = dur, .slot = slot, .kind = kind };
}

/* Threads: copy what we need, close intervals a killed process left
 * open (at its last event, the only time we know it was alive). */
static void load_threads(gil_view_t *v)
{
    const at_gil_thread_t *rows = at_gil_threads(v->buf);
    int exited = v->h->flags & AT_GIL_F_EXITED;
    for (uint32_t i = 0; i < v->nt; i++) {
        gil_tview_t *t = &v->t[i];
        const at_gil_thread_t *r = &rows[i];
        t->raw = r;
        memcpy(t->name, r->name, sizeof(t->name));
        t->name[sizeof(t->name) - 1] = '\0';
        t->ns[AT_GIL_EV_HOLD] = r->hold_ns;
        t->ns[AT_GIL_EV_WAIT] = r->wait_ns;
        t->ns[AT_GIL_EV_HANDOFF] = r->handoff_ns;
        t->start = r->first_ns > v->start && r->first_ns < v->end ? r->first_ns : v->start;
        t->end = (r->flags & AT_GIL_T_ENDED) && r->end_ns > t->start && r->end_ns < v->end ? r->end_ns : v->end;
        uint32_t kind = r->state == AT_GIL_HELD ? AT_GIL_EV_HOLD : r->state == AT_GIL_WAITING ? AT_GIL_EV_WAIT : 0;
        if (!exited && kind && !(r->flags & AT_GIL_T_OVERFLOW) && r->since_ns >= v->start &&
            r->since_ns <= v->end) {
            t->ns[kind] += v->end - r->since_ns;
            add_event(v, r->since_ns, v->end - r->since_ns, i, kind);
            t->open = 1;
        }
    }
}

static void load_events(gil_view_t *v)
{
    const at_gil_header_t *h = v->h;
    const at_gil_event_t *ring = at_gil_ring(v->buf);
    uint64_t n = h->ring_written < h->ring_cap ? h->ring_written : h->ring_cap;
    for (uint64_t i = 0; i < n; i++) {
        const at_gil_event_t *e = &ring[i];
        int ok = e->slot < v->nt && e->kind >= AT_GIL_EV_HOLD && e->kind < AT_GIL_EV_KINDS &&
                 e->start_ns >= v->start && e->dur_ns <= v->end - v->start + END_SLACK_NS &&
                 e->start_ns + e->dur_ns <= v->end + END_SLACK_NS;
        if (ok)
            add_event(v, e->start_ns, e->dur_ns, e->slot, e->kind);
        else
            v->bad_events++;
    }
    qsort(v->ev, v->nev, sizeof(v->ev[0]), cmp_event);
}

static void find_phases(gil_view_t *v);

/* 0, -ENOENT (no GIL data for pid: nothing printed), or -errno after one
 * line on stderr saying what is wrong with the file. */
static int view_load(const char *dir, pid_t pid, gil_view_t *v)
{
    char stem[32];
    memset(v, 0, sizeof(*v));
    size_t size = 0;
    int rc = read_file(dir, pid, &v->buf, &size);
    const char *why = NULL;
    if (rc == -ENOENT)
        return rc;
    if (rc == 0)
        rc = at_gil_check(v->buf, size, &why);
    if (rc < 0) {
        fprintf(stderr, "archtrace: %s/%s.gil: %s\n", dir, at_key_name(pid, stem, sizeof stem), why ? why : strerror(-rc));
        view_free(v);
        return rc;
    }
    const at_gil_header_t *h = v->h = (const at_gil_header_t *)v->buf;
    v->start = h->start_ns;
    v->end = (h->flags & AT_GIL_F_EXITED) && h->end_ns ? h->end_ns : h->last_ns;
    if (v->end < v->start)
        v->end = v->start;
    v->nt = h->nthreads;
    v->t = calloc(v->nt ? v->nt : 1, sizeof(*v->t));
    v->ev = calloc((size_t)h->ring_cap + v->nt + 1, sizeof(*v->ev));
    if (!v->t || !v->ev) {
        view_free(v);
        return -ENOMEM;
    }
    load_threads(v);
    load_events(v);
    find_phases(v);
    return 0;
}

/* ---- derived numbers ------------------------------------------------------- */

static uint64_t in_python(const uint64_t ns[AT_GIL_EV_KINDS])
{
    return ns[AT_GIL_EV_HOLD] + ns[AT_GIL_EV_WAIT] + ns[AT_GIL_EV_HANDOFF];
}

static double ratio(uint64_t a, uint64_t b)
{
    return b ? (double)a / (double)b : 0.0;
}

static void totals(const gil_view_t *v, uint64_t ns[AT_GIL_EV_KINDS], uint64_t *acq, uint64_t *sw,
                   uint64_t *forced, uint32_t *ran)
{
    memset(ns, 0, sizeof(uint64_t) * AT_GIL_EV_KINDS);
    *acq = *sw = *forced = 0;
    *ran = 0;
    for (uint32_t i = 0; i < v->nt; i++) {
        for (int k = 0; k < (int)AT_GIL_EV_KINDS; k++)
            ns[k] += v->t[i].ns[k];
        *acq += v->t[i].raw->acquisitions;
        *sw += v->t[i].raw->switches;
        *forced += v->t[i].raw->forced_drops;
        *ran += v->t[i].raw->acquisitions > 0 || v->t[i].ns[AT_GIL_EV_HOLD] > 0;
    }
}

static uint64_t timeline_dropped(const at_gil_header_t *h)
{
    return h->ring_written > h->ring_cap ? h->ring_written - h->ring_cap : 0;
}

/* ---- contended phases -------------------------------------------------- */

/* Time each thread spent in Python within [a, b), into per[] (nt). */
static void clip(const gil_view_t *v, uint64_t a, uint64_t b, uint64_t *per, uint64_t ns[AT_GIL_EV_KINDS])
{
    memset(per, 0, sizeof(*per) * v->nt);
    if (ns)
        memset(ns, 0, sizeof(uint64_t) * AT_GIL_EV_KINDS);
    for (size_t i = 0; i < v->nev && v->ev[i].start_ns < b; i++) {
        const at_gil_event_t *e = &v->ev[i];
        uint64_t x = e->start_ns > a ? e->start_ns : a, end = e->start_ns + e->dur_ns;
        uint64_t y = end < b ? end : b;
        if (y <= x)
            continue;
        per[e->slot] += y - x;
        if (ns)
            ns[e->kind] += y - x;
    }
}

/* Threads in Python for a real part of [a, b) (1/20 of it), not for the
 * instant it took to start or join the others. */
static uint32_t participants(const gil_view_t *v, uint64_t a, uint64_t b, uint64_t *per)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < v->nt; i++)
        n += per[i] * PHASE_SHARE_DIV >= b - a;
    (void)a;
    return n;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Phases are cut where threads start and end: between two such instants
 * the set of threads is fixed, and the segment is contended when two or
 * more of them were in Python for a real part of it.  Cutting on
 * lifetimes rather than on instantaneous overlap keeps a phase whole on
 * a loaded machine, where a thread that dropped the GIL may sit in the
 * run queue for a while before it asks again.  Adjacent contended
 * segments make one phase; phases shorter than ten switch intervals are
 * left out. */
static void find_phases(gil_view_t *v)
{
    size_t nb = 0;
    uint64_t *cut = malloc(sizeof(*cut) * (2 * (size_t)v->nt + 2));
    uint64_t *per = malloc(sizeof(*per) * (v->nt ? v->nt : 1));
    v->ph = calloc(MAX_PHASES, sizeof(*v->ph));
    if (!cut || !per || !v->ph) {
        free(cut);
        free(per);
        return;
    }
    cut[nb++] = v->start;
    cut[nb++] = v->end;
    for (uint32_t i = 0; i < v->nt; i++)
        cut[nb++] = v->t[i].start, cut[nb++] = v->t[i].end;
    qsort(cut, nb, sizeof(*cut), cmp_u64);
    uint64_t interval = v->h->interval_us ? v->h->interval_us * 1000 : 5000000;
    uint64_t min_len = 10 * interval, from = 0;
    int open = 0;
    for (size_t i = 0; i + 1 < nb; i++) {
        uint64_t a = cut[i], b = cut[i + 1];
        int hot = 0;
        if (b > a) {
            clip(v, a, b, per, NULL);
            hot = participants(v, a, b, per) >= PHASE_MIN_THREADS;
        } else if (open) {
            continue;                    /* a repeated cut: nothing between */
        }
        if (hot && !open)
            from = a, open = 1;
        if (open && (!hot || i + 2 == nb)) {
            uint64_t to = hot ? b : a;
            if (to - from >= min_len && v->nph < MAX_PHASES)
                v->ph[v->nph++] = (gil_phase_t){ .start = from, .end = to };
            open = 0;
        }
    }
    for (size_t i = 0; i < v->nph; i++) {
        gil_phase_t *p = &v->ph[i];
        clip(v, p->start, p->end, per, p->ns);
        p->threads = participants(v, p->start, p->end, per);
    }
    free(cut);
    free(per);
}

/* ---- text ------------------------------------------------------------------ */

static const char *label(const gil_tview_t *t, char *buf, size_t n)
{
    if (t->raw->flags & AT_GIL_T_OVERFLOW)
        snprintf(buf, n, "(other threads)");
    else if (t->name[0])
        at_text_escape(buf, n, t->name);
    else
        snprintf(buf, n, "tid %u", t->raw->tid);
    return buf;
}

static const char *dur(char *buf, size_t n, uint64_t ns)
{
    at_text_duration(buf, n, (double)ns / 1e9);
    return buf;
}

static int by_time_in_python(const void *a, const void *b)
{
    uint64_t x = in_python((*(gil_tview_t *const *)a)->ns), y = in_python((*(gil_tview_t *const *)b)->ns);
    return x < y ? 1 : x > y ? -1 : 0;
}

static void print_thread(FILE *out, const gil_tview_t *t)
{
    char name[64], b[5][32];
    const at_gil_thread_t *r = t->raw;
    uint64_t life = t->end > t->start ? t->end - t->start : 0;
    uint64_t other = life > in_python(t->ns) ? life - in_python(t->ns) : 0;
    fprintf(out, "  %-24.24s %8u %10s %10s %6.1f%% %9s %7" PRIu64 " %6" PRIu64 " %10s %10s%s\n",
            label(t, name, sizeof(name)), r->tid, dur(b[0], 32, t->ns[AT_GIL_EV_HOLD]),
            dur(b[1], 32, t->ns[AT_GIL_EV_WAIT]), 100.0 * ratio(t->ns[AT_GIL_EV_WAIT], in_python(t->ns)),
            dur(b[2], 32, t->ns[AT_GIL_EV_HANDOFF]), r->acquisitions, r->forced_drops,
            (r->flags & AT_GIL_T_SCHED) ? dur(b[3], 32, r->runq_ns) : "?", dur(b[4], 32, other),
            t->open ? "  (cut short)" : "");
}

static void print_rest(FILE *out, gil_tview_t **order, uint32_t from, uint32_t nt)
{
    if (from >= nt)
        return;
    uint64_t ns[AT_GIL_EV_KINDS] = { 0 };
    for (uint32_t i = from; i < nt; i++)
        for (int k = 0; k < (int)AT_GIL_EV_KINDS; k++)
            ns[k] += order[i]->ns[k];
    char b[2][32];
    fprintf(out, "  ... %u more threads: held %s, waited %s (--top N shows more)\n", nt - from,
            dur(b[0], 32, ns[AT_GIL_EV_HOLD]), dur(b[1], 32, ns[AT_GIL_EV_WAIT]));
}

static void print_phases(FILE *out, const gil_view_t *v)
{
    char b[3][32];
    for (size_t i = 0; i < v->nph; i++) {
        const gil_phase_t *p = &v->ph[i];
        fprintf(out, "  contended %s .. %s (%s): %u threads in Python, wait ratio %.2f\n",
                dur(b[0], 32, p->start - v->start), dur(b[1], 32, p->end - v->start),
                dur(b[2], 32, p->end - p->start), p->threads, ratio(p->ns[AT_GIL_EV_WAIT], in_python(p->ns)));
    }
}

static void print_footer(FILE *out, const gil_view_t *v)
{
    const at_gil_header_t *h = v->h;
    uint64_t dropped = timeline_dropped(h);
    fprintf(out, "  timeline: %zu intervals", v->nev);
    if (dropped)
        fprintf(out, ", %" PRIu64 " oldest dropped (ring of %u): Chrome trace covers the end only", dropped,
                h->ring_cap);
    if (v->bad_events)
        fprintf(out, ", %zu corrupt skipped", v->bad_events);
    fputc('\n', out);
    if (h->threads_dropped)
        fprintf(out, "  %u threads past the table's %u rows are summed as (other threads)\n",
                h->threads_dropped, h->thread_cap - 1);
    if (!(h->flags & AT_GIL_F_EXITED))
        fprintf(out, "  the process did not exit normally: open intervals closed at its last GIL event\n");
    if (h->anomalies)
        fprintf(out, "  %u GIL events did not fit the expected sequence\n", h->anomalies);
    if (h->flags & AT_GIL_F_DISABLED)
        fprintf(out, "  accounting stopped: %.*s\n", (int)sizeof(h->error), h->error);
}

int at_gil_report_text(const char *dir, pid_t pid, FILE *out, const at_options_t *o)
{
    gil_view_t v;
    int rc = view_load(dir, pid, &v);
    if (rc < 0)
        return rc;
    uint64_t ns[AT_GIL_EV_KINDS], acq, sw, forced;
    uint32_t ran;
    totals(&v, ns, &acq, &sw, &forced, &ran);
    char title[96], b[2][32];
    char label[48];
    snprintf(title, sizeof(title), "GIL, pid %s", at_key_label(pid, label, sizeof label));
    at_text_heading(out, title);
    uint64_t wall = v.end - v.start;
    fprintf(out, "wall %s, switch interval %s, %" PRIu64 " switches, %" PRIu64 " forced drops\n",
            dur(b[0], 32, wall), dur(b[1], 32, v.h->interval_us * 1000), sw, forced);
    fprintf(out, "wait ratio %.2f: %.1f threads were in Python on average and spent %.0f%% of that waiting\n",
            ratio(ns[AT_GIL_EV_WAIT], in_python(ns)), ratio(in_python(ns), wall),
            100.0 * ratio(ns[AT_GIL_EV_WAIT], in_python(ns)));
    fprintf(out, "  %-24s %8s %10s %10s %7s %9s %7s %6s %10s %10s\n", "THREAD", "TID", "HELD", "WAITED",
            "WAIT%", "HANDOFF", "ACQ", "FORCED", "RUNQ", "OUTSIDE");
    gil_tview_t **order = malloc(sizeof(*order) * (v.nt ? v.nt : 1));
    uint32_t top = o && o->top_n > 0 ? (uint32_t)o->top_n : 5;
    for (uint32_t i = 0; order && i < v.nt; i++)
        order[i] = &v.t[i];
    if (order) {
        qsort(order, v.nt, sizeof(*order), by_time_in_python);
        for (uint32_t i = 0; i < v.nt && i < top; i++)
            print_thread(out, order[i]);
        print_rest(out, order, top, v.nt);
    }
    free(order);
    fprintf(out, "  (HANDOFF: a forced drop waiting for the next holder; RUNQ: runnable but not on a CPU,\n"
                 "   from schedstat, not GIL wait; OUTSIDE: neither holding nor waiting: I/O, sleep, join)\n");
    print_phases(out, &v);
    print_footer(out, &v);
    view_free(&v);
    return 0;
}

/* ---- JSON ------------------------------------------------------------------ */

static void json_thread(at_json_t *j, const gil_tview_t *t)
{
    const at_gil_thread_t *r = t->raw;
    char tid[16];
    snprintf(tid, sizeof(tid), "%u", r->tid);
    uint64_t life = t->end > t->start ? t->end - t->start : 0;
    at_json_obj_begin(j);
    at_json_kv_uint(j, "tid", r->tid);
    at_json_kv_str(j, "name", r->flags & AT_GIL_T_OVERFLOW ? "(other threads)" : t->name[0] ? t->name : tid);
    at_json_kv_bool(j, "named", (r->flags & AT_GIL_T_NAMED) != 0);
    at_json_kv_bool(j, "main", (r->flags & AT_GIL_T_MAIN) != 0);
    at_json_kv_uint(j, "wait_ns", t->ns[AT_GIL_EV_WAIT]);
    at_json_kv_uint(j, "hold_ns", t->ns[AT_GIL_EV_HOLD]);
    at_json_kv_uint(j, "handoff_ns", t->ns[AT_GIL_EV_HANDOFF]);
    at_json_kv_uint(j, "acquisitions", r->acquisitions);
    at_json_kv_uint(j, "switches", r->switches);
    at_json_kv_uint(j, "forced_drops", r->forced_drops);
    at_json_kv_uint(j, "drop_requests", r->drop_requests);
    at_json_kv_uint(j, "max_wait_ns", r->max_wait_ns);
    at_json_kv_uint(j, "max_hold_ns", r->max_hold_ns);
    at_json_kv_uint(j, "start_ns", t->start);
    at_json_kv_uint(j, "wall_ns", life);
    at_json_kv_uint(j, "outside_ns", life > in_python(t->ns) ? life - in_python(t->ns) : 0);
    at_json_kv_double(j, "wait_ratio", ratio(t->ns[AT_GIL_EV_WAIT], in_python(t->ns)));
    int sched = (r->flags & AT_GIL_T_SCHED) != 0;
    at_json_key(j, "cpu_ns");
    sched ? at_json_uint(j, r->cpu_ns) : at_json_null(j);
    at_json_key(j, "runq_ns");
    sched ? at_json_uint(j, r->runq_ns) : at_json_null(j);
    at_json_kv_bool(j, "ended", (r->flags & AT_GIL_T_ENDED) != 0);
    at_json_kv_bool(j, "cut_short", t->open);
    at_json_obj_end(j);
}

static void json_phases(at_json_t *j, const gil_view_t *v)
{
    at_json_key(j, "phases");
    at_json_arr_begin(j);
    for (size_t i = 0; i < v->nph; i++) {
        const gil_phase_t *p = &v->ph[i];
        uint64_t wall = p->end - p->start;
        at_json_obj_begin(j);
        at_json_kv_str(j, "kind", "contended");
        at_json_kv_uint(j, "start_ns", p->start - v->start);
        at_json_kv_uint(j, "wall_ns", wall);
        at_json_kv_uint(j, "threads", p->threads);
        at_json_kv_double(j, "busy_threads", ratio(in_python(p->ns), wall));
        at_json_kv_uint(j, "hold_ns", p->ns[AT_GIL_EV_HOLD]);
        at_json_kv_uint(j, "wait_ns", p->ns[AT_GIL_EV_WAIT]);
        at_json_kv_double(j, "wait_ratio", ratio(p->ns[AT_GIL_EV_WAIT], in_python(p->ns)));
        at_json_obj_end(j);
    }
    at_json_arr_end(j);
}

static void json_timeline(at_json_t *j, const gil_view_t *v)
{
    const at_gil_header_t *h = v->h;
    at_json_kv_uint(j, "timeline_events", v->nev);
    at_json_kv_uint(j, "timeline_dropped", timeline_dropped(h));
    at_json_kv_uint(j, "timeline_dropped_hold_ns", h->ring_dropped_ns[AT_GIL_EV_HOLD]);
    at_json_kv_uint(j, "timeline_dropped_wait_ns", h->ring_dropped_ns[AT_GIL_EV_WAIT]);
    at_json_kv_uint(j, "timeline_dropped_handoff_ns", h->ring_dropped_ns[AT_GIL_EV_HANDOFF]);
    at_json_kv_uint(j, "timeline_corrupt", v->bad_events);
}

int at_gil_report_json(const char *dir, pid_t pid, at_json_t *j, const at_options_t *o)
{
    (void)o;
    gil_view_t v;
    int rc = view_load(dir, pid, &v);
    if (rc < 0)
        return rc;
    const at_gil_header_t *h = v.h;
    uint64_t ns[AT_GIL_EV_KINDS], acq, sw, forced, wall = v.end - v.start;
    uint32_t ran;
    totals(&v, ns, &acq, &sw, &forced, &ran);
    at_json_obj_begin(j);
    at_json_kv_double(j, "wait_ratio", ratio(ns[AT_GIL_EV_WAIT], in_python(ns)));
    at_json_kv_double(j, "busy_threads", ratio(in_python(ns), wall));
    at_json_kv_uint(j, "python_threads", ran);
    at_json_kv_uint(j, "wall_ns", wall);
    at_json_kv_uint(j, "start_ns", v.start);
    at_json_kv_uint(j, "hold_ns", ns[AT_GIL_EV_HOLD]);
    at_json_kv_uint(j, "wait_ns", ns[AT_GIL_EV_WAIT]);
    at_json_kv_uint(j, "handoff_ns", ns[AT_GIL_EV_HANDOFF]);
    at_json_kv_uint(j, "acquisitions", acq);
    at_json_kv_uint(j, "switches", sw);
    at_json_kv_uint(j, "switch_number_start", h->switch_start);
    at_json_key(j, "switch_number_end");
    (h->flags & AT_GIL_F_EXITED) ? at_json_uint(j, h->switch_end) : at_json_uint(j, h->switch_last);
    at_json_kv_uint(j, "switch_interval_us", h->interval_us);
    at_json_kv_uint(j, "drop_requests", h->drop_requests);
    at_json_kv_uint(j, "forced_drops", forced);
    at_json_kv_bool(j, "complete", (h->flags & AT_GIL_F_EXITED) != 0);
    at_json_kv_uint(j, "anomalies", h->anomalies);
    at_json_kv_uint(j, "threads_dropped", h->threads_dropped);
    json_timeline(j, &v);
    json_phases(j, &v);
    at_json_key(j, "threads");
    at_json_arr_begin(j);
    for (uint32_t i = 0; i < v.nt; i++)
        json_thread(j, &v.t[i]);
    at_json_arr_end(j);
    at_json_obj_end(j);
    view_free(&v);
    return 0;
}

/* ---- Chrome trace ------------------------------------------------------------ */

/* Microseconds with nanosecond digits: at_json_double keeps 6 significant
 * digits, too few for timestamps.  Written right after the key, which is
 * all before_value does in that state. */
static void kv_us(at_json_t *j, const char *key, uint64_t ns)
{
    at_json_key(j, key);
    j->after_key = 0;
    fprintf(j->out, "%" PRIu64 ".%03u", ns / 1000, (unsigned)(ns % 1000));
}

static uint32_t chrome_tid(const gil_view_t *v, uint32_t slot)
{
    const at_gil_thread_t *r = v->t[slot].raw;
    return (r->flags & AT_GIL_T_OVERFLOW) || !r->tid ? 0x7fffffffu : r->tid;
}

static void chrome_thread_name(at_json_t *j, const gil_view_t *v, pid_t pid, uint32_t slot)
{
    char name[96], tmp[64];
    const gil_tview_t *t = &v->t[slot];
    if (t->name[0])
        snprintf(name, sizeof(name), "%s (%u)", label(t, tmp, sizeof(tmp)), t->raw->tid);
    else
        snprintf(name, sizeof(name), "%s", label(t, tmp, sizeof(tmp)));
    at_chrome_track_name(j, pid, chrome_tid(v, slot), name);
}

static const char *const event_name[AT_GIL_EV_KINDS] = { NULL, "GIL held", "GIL wait", "GIL handoff" };

static void chrome_event(at_json_t *j, const gil_view_t *v, pid_t pid, const at_gil_event_t *e)
{
    at_json_obj_begin(j);
    at_json_kv_str(j, "name", event_name[e->kind]);
    at_json_kv_str(j, "cat", "gil");
    at_json_kv_str(j, "ph", "X");
    at_json_kv_int(j, "pid", pid);
    at_json_kv_uint(j, "tid", chrome_tid(v, e->slot));
    kv_us(j, "ts", e->start_ns);
    kv_us(j, "dur", e->dur_ns);
    at_json_obj_end(j);
}

int at_gil_chrome(const char *dir, pid_t pid, at_json_t *j, const at_options_t *o)
{
    (void)o;
    gil_view_t v;
    int rc = view_load(dir, pid, &v);
    if (rc < 0)
        return rc;
    for (uint32_t i = 0; i < v.nt; i++)
        chrome_thread_name(j, &v, pid, i);
    for (size_t i = 0; i < v.nev; i++)
        chrome_event(j, &v, pid, &v.ev[i]);
    view_free(&v);
    return 0;
}
