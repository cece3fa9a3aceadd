/* SPDX-License-Identifier: MIT */
/* gil_model.c - fill the GIL model from <pid>.gil or <pid>.bpf (see gil_model.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "session/bpf_data.h"
#include "session/gil_model.h"
#include "session/session.h"
#include "session/stacks.h"

#define GIL_FILE_MAX (64u << 20)     /* far above AT_GIL_FILE_SIZE       */
#define END_SLACK_NS 1000000ull      /* events may end this past last_ns  */
#define PHASE_MIN_THREADS 2
#define PHASE_SHARE_DIV 20           /* in Python >= 1/20 of a phase      */
#define MAX_PHASES 64

/* ---- from the shim's file ------------------------------------------------ */

void at_gil_model_free(at_gil_model_t *v)
{
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

static void add_event(at_gil_model_t *v, uint64_t start, uint64_t dur, uint32_t slot, uint32_t kind)
{
    v->ev[v->nev++] = (at_gil_event_t){ .start_ns = start, .dur_ns = dur, .slot = slot, .kind = kind };
}

/* Threads: copy what we need, close intervals a killed process left
 * open (at its last event, the only time we know it was alive). */
static void load_threads(at_gil_model_t *v, const char *buf)
{
    const at_gil_thread_t *rows = at_gil_threads(buf);
    int exited = v->h.flags & AT_GIL_F_EXITED;
    for (uint32_t i = 0; i < v->nt; i++) {
        at_gil_tmodel_t *t = &v->t[i];
        const at_gil_thread_t *r = &rows[i];
        t->row = *r;
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
        t->python_ns = t->ns[AT_GIL_EV_HOLD] + t->ns[AT_GIL_EV_WAIT] + t->ns[AT_GIL_EV_HANDOFF];
    }
}

static void load_events(at_gil_model_t *v, const char *buf)
{
    const at_gil_header_t *h = &v->h;
    const at_gil_event_t *ring = at_gil_ring(buf);
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

/* ---- contended phases -------------------------------------------------- */

/* Time each thread spent in Python within [a, b), into per[] (nt). */
static void clip(const at_gil_model_t *v, uint64_t a, uint64_t b, uint64_t *per, uint64_t ns[AT_GIL_EV_KINDS])
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
static uint32_t participants(const at_gil_model_t *v, uint64_t a, uint64_t b, uint64_t *per)
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
static void find_phases(at_gil_model_t *v)
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
    uint64_t interval = v->h.interval_us ? v->h.interval_us * 1000 : 5000000;
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
                v->ph[v->nph++] = (at_gil_phase_t){ .start = from, .end = to };
            open = 0;
        }
    }
    for (size_t i = 0; i < v->nph; i++) {
        at_gil_phase_t *p = &v->ph[i];
        clip(v, p->start, p->end, per, p->ns);
        p->threads = participants(v, p->start, p->end, per);
    }
    free(cut);
    free(per);
}

/* From the shim's <pid>.gil: 0, -ENOENT (no file), or -errno after one
 * line on stderr saying what is wrong with it. */
static int load_preload(const char *dir, pid_t pid, at_gil_model_t *v)
{
    char stem[32], *buf = NULL;
    size_t size = 0;
    int rc = read_file(dir, pid, &buf, &size);
    const char *why = NULL;
    if (rc == -ENOENT)
        return rc;
    if (rc == 0)
        rc = at_gil_check(buf, size, &why);
    if (rc < 0) {
        fprintf(stderr, "archtrace: %s/%s.gil: %s\n", dir, at_key_name(pid, stem, sizeof stem), why ? why : strerror(-rc));
        free(buf);
        return rc;
    }
    const at_gil_header_t *h = &v->h;
    v->h = *(const at_gil_header_t *)buf;
    v->source = "preload";
    v->measured = AT_GIL_M_WAIT | AT_GIL_M_HOLD | AT_GIL_M_TIMELINE;
    v->start = h->start_ns;
    v->end = (h->flags & AT_GIL_F_EXITED) && h->end_ns ? h->end_ns : h->last_ns;
    if (v->end < v->start)
        v->end = v->start;
    v->nt = h->nthreads;
    v->t = calloc(v->nt ? v->nt : 1, sizeof(*v->t));
    v->ev = calloc((size_t)h->ring_cap + v->nt + 1, sizeof(*v->ev));
    if (!v->t || !v->ev) {
        free(buf);
        return -ENOMEM;
    }
    load_threads(v, buf);
    load_events(v, buf);
    free(buf);
    find_phases(v);
    return 0;
}

/* ---- from an eBPF recording ------------------------------------------------ */

/* The probes see each wait in take_gil (pthread_cond_timedwait on the
 * GIL's condition): its length, and whether it timed out and asked for a
 * drop.  Holds, switches and the timeline are not seen.  A thread's time
 * in Python is not known either: its wait ratio is taken over the window
 * the recording was attached. */
static void bpf_thread(at_gil_model_t *v, uint32_t i, const at_bpf_gil_row_t *r, const at_thread_names_t *names)
{
    at_gil_tmodel_t *t = &v->t[i];
    t->row.tid = r->tid;
    t->row.wait_ns = r->wait_ns;
    t->row.max_wait_ns = r->max_wait_ns;
    t->row.drop_requests = r->timeouts;
    t->row.first_ns = v->start;
    const char *name = names ? at_thread_names_get(names, r->tid) : NULL;
    if (name) {
        snprintf(t->name, sizeof t->name, "%s", name);
        t->row.flags |= AT_GIL_T_NAMED;
    }
    t->ns[AT_GIL_EV_WAIT] = r->wait_ns;
    t->waits = r->waits;
    t->start = v->start;
    t->end = v->end;
    t->python_ns = v->end - v->start;
    t->open = r->open != 0;
}

static int load_ebpf(const char *dir, pid_t pid, at_gil_model_t *v)
{
    at_bpf_data_t d;
    int rc = at_bpf_data_read(dir, pid, &d);
    if (rc < 0)
        return rc;
    if (!d.avail[AT_BPF_VIEW_GIL]) {
        at_bpf_data_free(&d);
        return -ENOENT;
    }
    at_stacks_t *stacks = NULL;
    if (at_stacks_load(dir, pid, &stacks, NULL, 0) < 0)
        stacks = NULL;             /* names only; the stacks report says why */
    v->source = "ebpf";
    v->measured = AT_GIL_M_WAIT | AT_GIL_M_WAITS;
    v->start = d.attach_ns;
    v->end = d.end_ns > d.attach_ns ? d.end_ns : d.attach_ns;
    v->h.pid = d.pid;
    v->h.start_ns = v->start;
    v->h.end_ns = d.exited ? v->end : 0;
    v->h.last_ns = v->end;
    v->h.flags = AT_GIL_F_RUNNING | (d.exited ? AT_GIL_F_EXITED : 0);
    v->nt = (uint32_t)d.ngil;
    v->t = calloc(v->nt ? v->nt : 1, sizeof(*v->t));
    if (!v->t)
        rc = -ENOMEM;
    for (uint32_t i = 0; rc == 0 && i < v->nt; i++) {
        bpf_thread(v, i, &d.gil[i], stacks ? at_stacks_thread_names(stacks) : NULL);
        v->h.drop_requests += d.gil[i].timeouts;
    }
    at_stacks_free(stacks);
    at_bpf_data_free(&d);
    return rc;
}

/* ---- the model ------------------------------------------------------------- */

int at_gil_model_load(const char *dir, pid_t key, at_gil_model_t *m)
{
    memset(m, 0, sizeof(*m));
    int rc = load_preload(dir, key, m);
    if (rc == -ENOENT)
        rc = load_ebpf(dir, key, m);
    if (rc < 0)
        at_gil_model_free(m);
    return rc;
}

uint64_t at_gil_model_timeline_dropped(const at_gil_model_t *m)
{
    return m->h.ring_written > m->h.ring_cap ? m->h.ring_written - m->h.ring_cap : 0;
}

/* ---- the live tables, for top -------------------------------------------- */

void *at_gil_live_read(const char *dir, pid_t pid)
{
    FILE *f = at_session_open_file(dir, pid, "gil");
    if (!f)
        return NULL;
    struct stat st;
    size_t want = sizeof(at_gil_header_t) + (size_t)AT_GIL_LIVE_MAX * sizeof(at_gil_thread_t);
    void *buf = fstat(fileno(f), &st) == 0 && st.st_size > 0 ? calloc(1, want) : NULL;
    const char *why;
    if (buf && (fread(buf, 1, want, f) < sizeof(at_gil_header_t) ||
                at_gil_check(buf, (size_t)st.st_size, &why) < 0 ||
                ((const at_gil_header_t *)buf)->thread_cap > AT_GIL_LIVE_MAX)) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

const at_gil_thread_t *at_gil_live_row(const void *gil, uint32_t tid)
{
    const at_gil_header_t *h = gil;
    const at_gil_thread_t *rows = at_gil_threads(gil);
    for (uint32_t i = 0; i < h->nthreads && i < h->thread_cap; i++)
        if (rows[i].tid == tid && !(rows[i].flags & AT_GIL_T_OVERFLOW))
            return &rows[i];
    return NULL;
}
