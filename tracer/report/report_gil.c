/* SPDX-License-Identifier: MIT */
/* report_gil.c - the GIL part of a report: per-thread hold/wait table,
 * contended phases, and the hold/wait timeline as Chrome trace events,
 * from the GIL model (session/gil_model.h) whichever backend filled it.
 *
 * wait_ratio = total wait / (wall x threads that ran Python), where the
 * threads are counted by the time they spent in Python (holding, waiting
 * or handing off the GIL): a thread blocked in join() or I/O is not
 * running Python.  That is total wait / total time in Python.  eBPF sees
 * the waits only: there the ratio is over the attached window, and what
 * it did not measure is "-" in text and null in JSON, never a zero.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "out/textout.h"
#include "report/chrome.h"
#include "report/report_features.h"
#include "session/gil_model.h"
#include "session/session.h"

/* ---- derived numbers ------------------------------------------------------- */

static uint64_t in_python(const uint64_t ns[AT_GIL_EV_KINDS])
{
    return ns[AT_GIL_EV_HOLD] + ns[AT_GIL_EV_WAIT] + ns[AT_GIL_EV_HANDOFF];
}

static double ratio(uint64_t a, uint64_t b)
{
    return b ? (double)a / (double)b : 0.0;
}

static int has(const at_gil_model_t *v, unsigned what)
{
    return (v->measured & what) != 0;
}

static void totals(const at_gil_model_t *v, uint64_t ns[AT_GIL_EV_KINDS], uint64_t *python, uint64_t *acq,
                   uint64_t *sw, uint64_t *forced, uint32_t *ran)
{
    memset(ns, 0, sizeof(uint64_t) * AT_GIL_EV_KINDS);
    *python = *acq = *sw = *forced = 0;
    *ran = 0;
    for (uint32_t i = 0; i < v->nt; i++) {
        *python += v->t[i].python_ns;
        for (int k = 0; k < (int)AT_GIL_EV_KINDS; k++)
            ns[k] += v->t[i].ns[k];
        *acq += v->t[i].row.acquisitions;
        *sw += v->t[i].row.switches;
        *forced += v->t[i].row.forced_drops;
        *ran += v->t[i].row.acquisitions > 0 || v->t[i].ns[AT_GIL_EV_HOLD] > 0 || !has(v, AT_GIL_M_HOLD);
    }
}

/* ---- text ------------------------------------------------------------------ */

static const char *label(const at_gil_tmodel_t *t, char *buf, size_t n)
{
    if (t->row.flags & AT_GIL_T_OVERFLOW)
        snprintf(buf, n, "(other threads)");
    else if (t->name[0])
        at_text_escape(buf, n, t->name);
    else
        snprintf(buf, n, "tid %u", t->row.tid);
    return buf;
}

static const char *dur(char *buf, size_t n, uint64_t ns)
{
    at_text_duration(buf, n, (double)ns / 1e9);
    return buf;
}

/* A duration the backend measured, else "-". */
static const char *dur_if(char *buf, size_t n, uint64_t ns, int measured)
{
    return measured ? dur(buf, n, ns) : "-";
}

static const char *count_if(char *buf, size_t n, uint64_t v, int measured)
{
    if (!measured)
        return "-";
    snprintf(buf, n, "%" PRIu64, v);
    return buf;
}

static int by_time_in_python(const void *a, const void *b)
{
    const at_gil_tmodel_t *x = *(at_gil_tmodel_t *const *)a, *y = *(at_gil_tmodel_t *const *)b;
    if (x->python_ns != y->python_ns)
        return x->python_ns < y->python_ns ? 1 : -1;
    uint64_t xw = x->ns[AT_GIL_EV_WAIT], yw = y->ns[AT_GIL_EV_WAIT];
    return xw < yw ? 1 : xw > yw ? -1 : 0;
}

static void print_thread(FILE *out, const at_gil_model_t *v, const at_gil_tmodel_t *t)
{
    char name[64], b[7][32];
    const at_gil_thread_t *r = &t->row;
    int all = has(v, AT_GIL_M_HOLD);
    uint64_t life = t->end > t->start ? t->end - t->start : 0;
    uint64_t other = life > t->python_ns ? life - t->python_ns : 0;
    fprintf(out, "  %-24.24s %8u %10s %10s %6.1f%% %9s %7s %6s %10s %10s%s\n", label(t, name, sizeof(name)),
            r->tid, dur_if(b[0], 32, t->ns[AT_GIL_EV_HOLD], all), dur(b[1], 32, t->ns[AT_GIL_EV_WAIT]),
            100.0 * ratio(t->ns[AT_GIL_EV_WAIT], t->python_ns), dur_if(b[2], 32, t->ns[AT_GIL_EV_HANDOFF], all),
            count_if(b[5], 32, r->acquisitions, all), count_if(b[6], 32, r->forced_drops, all),
            (r->flags & AT_GIL_T_SCHED) ? dur(b[3], 32, r->runq_ns) : "?", dur_if(b[4], 32, other, all),
            t->open ? "  (cut short)" : "");
}

static void print_rest(FILE *out, const at_gil_model_t *v, at_gil_tmodel_t **order, uint32_t from, uint32_t nt)
{
    if (from >= nt)
        return;
    uint64_t ns[AT_GIL_EV_KINDS] = { 0 };
    for (uint32_t i = from; i < nt; i++)
        for (int k = 0; k < (int)AT_GIL_EV_KINDS; k++)
            ns[k] += order[i]->ns[k];
    char b[2][32];
    fprintf(out, "  ... %u more threads: held %s, waited %s (--top N shows more)\n", nt - from,
            dur_if(b[0], 32, ns[AT_GIL_EV_HOLD], has(v, AT_GIL_M_HOLD)), dur(b[1], 32, ns[AT_GIL_EV_WAIT]));
}

static void print_phases(FILE *out, const at_gil_model_t *v)
{
    char b[3][32];
    for (size_t i = 0; i < v->nph; i++) {
        const at_gil_phase_t *p = &v->ph[i];
        fprintf(out, "  contended %s .. %s (%s): %u threads in Python, wait ratio %.2f\n",
                dur(b[0], 32, p->start - v->start), dur(b[1], 32, p->end - v->start),
                dur(b[2], 32, p->end - p->start), p->threads, ratio(p->ns[AT_GIL_EV_WAIT], in_python(p->ns)));
    }
}

static void print_timeline(FILE *out, const at_gil_model_t *v)
{
    const at_gil_header_t *h = &v->h;
    uint64_t dropped = at_gil_model_timeline_dropped(v);
    fprintf(out, "  timeline: %zu intervals", v->nev);
    if (dropped)
        fprintf(out, ", %" PRIu64 " oldest dropped (ring of %u): Chrome trace covers the end only", dropped,
                h->ring_cap);
    if (v->bad_events)
        fprintf(out, ", %zu corrupt skipped", v->bad_events);
    fputc('\n', out);
}

static void print_footer(FILE *out, const at_gil_model_t *v)
{
    const at_gil_header_t *h = &v->h;
    if (!has(v, AT_GIL_M_HOLD)) {
        fprintf(out, "  (%s: waits in take_gil only; holds, handoffs, switches and the timeline are not seen,\n"
                     "   WAIT%% is of the attached window)\n", v->source);
        return;
    }
    print_timeline(out, v);
    if (h->threads_dropped)
        fprintf(out, "  %u threads past the table's %u rows are summed as (other threads)\n",
                h->threads_dropped, h->thread_cap - 1);
    if (h->names_dropped)
        fprintf(out, "  %u threads started while too many waited for their names: shown by tid\n",
                h->names_dropped);
    if (!(h->flags & AT_GIL_F_EXITED))
        fprintf(out, "  the process did not exit normally: open intervals closed at its last GIL event\n");
    if (h->anomalies)
        fprintf(out, "  %u GIL events did not fit the expected sequence\n", h->anomalies);
    if (h->flags & AT_GIL_F_DISABLED)
        fprintf(out, "  accounting stopped: %.*s\n", (int)sizeof(h->error), h->error);
}

static void print_summary(FILE *out, const at_gil_model_t *v, const uint64_t ns[AT_GIL_EV_KINDS], uint64_t python,
                          uint64_t sw, uint64_t forced)
{
    char b[2][32];
    uint64_t wall = v->end - v->start;
    if (has(v, AT_GIL_M_HOLD))
        fprintf(out, "wall %s, switch interval %s, %" PRIu64 " switches, %" PRIu64 " forced drops\n",
                dur(b[0], 32, wall), dur(b[1], 32, v->h.interval_us * 1000), sw, forced);
    else
        fprintf(out, "attached %s, %" PRIu64 " drop requests (measured by %s)\n", dur(b[0], 32, wall),
                v->h.drop_requests, v->source);
    fprintf(out, "wait ratio %.2f: %.1f threads were in Python on average and spent %.0f%% of that waiting\n",
            ratio(ns[AT_GIL_EV_WAIT], python), ratio(python, wall), 100.0 * ratio(ns[AT_GIL_EV_WAIT], python));
}

int at_gil_report_text(const char *dir, pid_t pid, FILE *out, const at_options_t *o)
{
    at_gil_model_t v;
    int rc = at_gil_model_load(dir, pid, &v);
    if (rc < 0)
        return rc;
    uint64_t ns[AT_GIL_EV_KINDS], python, acq, sw, forced;
    uint32_t ran;
    totals(&v, ns, &python, &acq, &sw, &forced, &ran);
    char title[96], label[48];
    snprintf(title, sizeof(title), "GIL, pid %s", at_key_label(pid, label, sizeof label));
    at_text_heading(out, title);
    print_summary(out, &v, ns, python, sw, forced);
    fprintf(out, "  %-24s %8s %10s %10s %7s %9s %7s %6s %10s %10s\n", "THREAD", "TID", "HELD", "WAITED",
            "WAIT%", "HANDOFF", "ACQ", "FORCED", "RUNQ", "OUTSIDE");
    at_gil_tmodel_t **order = malloc(sizeof(*order) * (v.nt ? v.nt : 1));
    uint32_t top = o && o->top_n > 0 ? (uint32_t)o->top_n : 5;
    for (uint32_t i = 0; order && i < v.nt; i++)
        order[i] = &v.t[i];
    if (order) {
        qsort(order, v.nt, sizeof(*order), by_time_in_python);
        for (uint32_t i = 0; i < v.nt && i < top; i++)
            print_thread(out, &v, order[i]);
        print_rest(out, &v, order, top, v.nt);
    }
    free(order);
    if (has(&v, AT_GIL_M_HOLD))
        fprintf(out, "  (HANDOFF: a forced drop waiting for the next holder; RUNQ: runnable but not on a CPU,\n"
                     "   from schedstat, not GIL wait; OUTSIDE: neither holding nor waiting: I/O, sleep, join)\n");
    print_phases(out, &v);
    print_footer(out, &v);
    at_gil_model_free(&v);
    return 0;
}

/* ---- JSON ------------------------------------------------------------------ */

/* A figure the backend measured, else null. */
static void kv_uint_if(at_json_t *j, const char *key, uint64_t v, int measured)
{
    at_json_key(j, key);
    measured ? at_json_uint(j, v) : at_json_null(j);
}

static void json_thread(at_json_t *j, const at_gil_model_t *v, const at_gil_tmodel_t *t)
{
    const at_gil_thread_t *r = &t->row;
    int all = has(v, AT_GIL_M_HOLD);
    char tid[16];
    snprintf(tid, sizeof(tid), "%u", r->tid);
    uint64_t life = t->end > t->start ? t->end - t->start : 0;
    at_json_obj_begin(j);
    at_json_kv_uint(j, "tid", r->tid);
    at_json_kv_str(j, "name", r->flags & AT_GIL_T_OVERFLOW ? "(other threads)" : t->name[0] ? t->name : tid);
    at_json_kv_bool(j, "named", (r->flags & AT_GIL_T_NAMED) != 0);
    at_json_kv_bool(j, "main", (r->flags & AT_GIL_T_MAIN) != 0);
    at_json_kv_uint(j, "wait_ns", t->ns[AT_GIL_EV_WAIT]);
    kv_uint_if(j, "waits", t->waits, has(v, AT_GIL_M_WAITS));
    kv_uint_if(j, "hold_ns", t->ns[AT_GIL_EV_HOLD], all);
    kv_uint_if(j, "handoff_ns", t->ns[AT_GIL_EV_HANDOFF], all);
    kv_uint_if(j, "acquisitions", r->acquisitions, all);
    kv_uint_if(j, "switches", r->switches, all);
    kv_uint_if(j, "forced_drops", r->forced_drops, all);
    at_json_kv_uint(j, "drop_requests", r->drop_requests);
    at_json_kv_uint(j, "max_wait_ns", r->max_wait_ns);
    kv_uint_if(j, "max_hold_ns", r->max_hold_ns, all);
    at_json_kv_uint(j, "start_ns", t->start);
    at_json_kv_uint(j, "wall_ns", life);
    kv_uint_if(j, "outside_ns", life > t->python_ns ? life - t->python_ns : 0, all);
    at_json_kv_double(j, "wait_ratio", ratio(t->ns[AT_GIL_EV_WAIT], t->python_ns));
    int sched = (r->flags & AT_GIL_T_SCHED) != 0;
    kv_uint_if(j, "cpu_ns", r->cpu_ns, sched);
    kv_uint_if(j, "runq_ns", r->runq_ns, sched);
    at_json_kv_bool(j, "ended", (r->flags & AT_GIL_T_ENDED) != 0);
    at_json_kv_bool(j, "cut_short", t->open);
    at_json_obj_end(j);
}

static void json_phases(at_json_t *j, const at_gil_model_t *v)
{
    at_json_key(j, "phases");
    if (!has(v, AT_GIL_M_TIMELINE)) {
        at_json_null(j);
        return;
    }
    at_json_arr_begin(j);
    for (size_t i = 0; i < v->nph; i++) {
        const at_gil_phase_t *p = &v->ph[i];
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

static void json_timeline(at_json_t *j, const at_gil_model_t *v)
{
    const at_gil_header_t *h = &v->h;
    int tl = has(v, AT_GIL_M_TIMELINE);
    kv_uint_if(j, "timeline_events", v->nev, tl);
    kv_uint_if(j, "timeline_dropped", at_gil_model_timeline_dropped(v), tl);
    kv_uint_if(j, "timeline_dropped_hold_ns", h->ring_dropped_ns[AT_GIL_EV_HOLD], tl);
    kv_uint_if(j, "timeline_dropped_wait_ns", h->ring_dropped_ns[AT_GIL_EV_WAIT], tl);
    kv_uint_if(j, "timeline_dropped_handoff_ns", h->ring_dropped_ns[AT_GIL_EV_HANDOFF], tl);
    kv_uint_if(j, "timeline_corrupt", v->bad_events, tl);
}

static void json_switches(at_json_t *j, const at_gil_model_t *v, uint64_t sw)
{
    const at_gil_header_t *h = &v->h;
    int all = has(v, AT_GIL_M_HOLD);
    kv_uint_if(j, "switches", sw, all);
    kv_uint_if(j, "switch_number_start", h->switch_start, all);
    kv_uint_if(j, "switch_number_end", (h->flags & AT_GIL_F_EXITED) ? h->switch_end : h->switch_last, all);
    kv_uint_if(j, "switch_interval_us", h->interval_us, all);
}

int at_gil_report_json(const char *dir, pid_t pid, at_json_t *j, const at_options_t *o)
{
    (void)o;
    at_gil_model_t v;
    int rc = at_gil_model_load(dir, pid, &v);
    if (rc < 0)
        return rc;
    const at_gil_header_t *h = &v.h;
    int all = has(&v, AT_GIL_M_HOLD);
    uint64_t ns[AT_GIL_EV_KINDS], python, acq, sw, forced, wall = v.end - v.start;
    uint32_t ran;
    totals(&v, ns, &python, &acq, &sw, &forced, &ran);
    at_json_obj_begin(j);
    at_json_kv_str(j, "source", v.source);
    at_json_kv_double(j, "wait_ratio", ratio(ns[AT_GIL_EV_WAIT], python));
    at_json_kv_double(j, "busy_threads", ratio(python, wall));
    at_json_kv_uint(j, "python_threads", ran);
    at_json_kv_uint(j, "wall_ns", wall);
    at_json_kv_uint(j, "start_ns", v.start);
    kv_uint_if(j, "hold_ns", ns[AT_GIL_EV_HOLD], all);
    at_json_kv_uint(j, "wait_ns", ns[AT_GIL_EV_WAIT]);
    kv_uint_if(j, "handoff_ns", ns[AT_GIL_EV_HANDOFF], all);
    kv_uint_if(j, "acquisitions", acq, all);
    json_switches(j, &v, sw);
    at_json_kv_uint(j, "drop_requests", h->drop_requests);
    kv_uint_if(j, "forced_drops", forced, all);
    at_json_kv_bool(j, "complete", (h->flags & AT_GIL_F_EXITED) != 0);
    at_json_kv_uint(j, "anomalies", h->anomalies);
    at_json_kv_uint(j, "threads_dropped", h->threads_dropped);
    kv_uint_if(j, "names_dropped", h->names_dropped, all);
    json_timeline(j, &v);
    json_phases(j, &v);
    at_json_key(j, "threads");
    at_json_arr_begin(j);
    for (uint32_t i = 0; i < v.nt; i++)
        json_thread(j, &v, &v.t[i]);
    at_json_arr_end(j);
    at_json_obj_end(j);
    at_gil_model_free(&v);
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

static uint32_t chrome_tid(const at_gil_model_t *v, uint32_t slot)
{
    const at_gil_thread_t *r = &v->t[slot].row;
    return (r->flags & AT_GIL_T_OVERFLOW) || !r->tid ? 0x7fffffffu : r->tid;
}

static void chrome_thread_name(at_json_t *j, const at_gil_model_t *v, pid_t pid, uint32_t slot)
{
    char name[96], tmp[64];
    const at_gil_tmodel_t *t = &v->t[slot];
    if (t->name[0])
        snprintf(name, sizeof(name), "%s (%u)", label(t, tmp, sizeof(tmp)), t->row.tid);
    else
        snprintf(name, sizeof(name), "%s", label(t, tmp, sizeof(tmp)));
    at_chrome_track_name(j, pid, chrome_tid(v, slot), name);
}

static const char *const event_name[AT_GIL_EV_KINDS] = { NULL, "GIL held", "GIL wait", "GIL handoff" };

static void chrome_event(at_json_t *j, const at_gil_model_t *v, pid_t pid, const at_gil_event_t *e)
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
    at_gil_model_t v;
    int rc = at_gil_model_load(dir, pid, &v);
    if (rc < 0)
        return rc;
    for (uint32_t i = 0; i < v.nt; i++)
        chrome_thread_name(j, &v, pid, i);
    for (size_t i = 0; i < v.nev; i++)
        chrome_event(j, &v, pid, &v.ev[i]);
    at_gil_model_free(&v);
    return 0;
}
