/* SPDX-License-Identifier: MIT */
/* bpf_read.c - reading what the probes counted: at stop into <pid>.bpf and <pid>.stacks, and live for the agent.
 *
 * The probes keep per-thread rows keyed by pid_tgid (GIL waits, the
 * sampler's clock) and counters keyed by the process's slot (GC totals,
 * their own losses); a set's maps may hold the rows of other processes
 * too, so every walk filters on the pid.  At stop the rows become the
 * recording (a wait still open counted up to the end), and the samples
 * the BPF sampler took become <pid>.stacks.  While a process is watched,
 * the same reads answer the agent's /metrics, and its stacks are cut into
 * one profile per interval.  Kept apart from bpf_load.c, which runs the
 * recording, so that each file holds one concern (issue 18).
 */
#include "bpf/bpf_int.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "archtrace.skel.h"
#include "remote/py_names.h"
#include "session/session.h"
#include "session/stacks.h"

#define LABEL_MAX    2048

/* ---- the maps at stop -------------------------------------------------------------- */

/* The next entry of process pid in a per-thread map (key: pid_tgid)
 * into *tid and value: 1, or 0 at the end.  *started is 0 for the first
 * call; *key is the cursor. */
static int next_thread_entry(int fd, uint32_t pid, uint64_t *key, int *started, uint32_t *tid, void *value)
{
    uint64_t next;
    while (bpf_map_get_next_key(fd, *started ? key : NULL, &next) == 0) {
        *key = next;
        *started = 1;
        if ((uint32_t)(next >> 32) == pid && bpf_map_lookup_elem(fd, key, value) == 0) {
            *tid = (uint32_t)next;
            return 1;
        }
    }
    return 0;
}

/* Each thread's GIL row as of `end`: a wait still in progress counted
 * up to then (and as a wait).  fn gets each row; it stops the walk by
 * returning 0. */
static void each_gil_row(at_bpf_t *b, uint64_t end, int (*fn)(void *ctx, const at_bpf_gil_row_t *r), void *ctx)
{
    struct archtrace_bpf *k = b->set->skel;
    int fd = bpf_map__fd(k->maps.gil_threads), wfd = bpf_map__fd(k->maps.gil_waiting);
    struct at_bpf_gil_thread t;
    uint64_t key = 0;
    uint32_t tid;
    for (int started = 0; next_thread_entry(fd, (uint32_t)b->proc.pid, &key, &started, &tid, &t);) {
        struct at_bpf_gil_wait w;
        at_bpf_gil_row_t r = { tid, 0, t.wait_ns, t.waits, t.calls, t.timeouts, t.max_wait_ns };
        if (bpf_map_lookup_elem(wfd, &key, &w) == 0 && w.start_ns < end) {
            uint64_t from = w.start_ns > b->data.attach_ns ? w.start_ns : b->data.attach_ns;
            r.wait_ns += end - from;   /* still waiting at `end` */
            r.waits++;
            r.open = 1;
        }
        if (!fn(ctx, &r))
            return;
    }
}

static int add_gil_row(void *ctx, const at_bpf_gil_row_t *r)
{
    at_bpf_data_add_gil(ctx, r);
    return 1;
}

/* The probes' own counters and the GC totals of b, as they are now. */
static void read_counters(at_bpf_t *b, struct at_bpf_gc_stat *gc, uint64_t *stats)
{
    if (b->slot < 0)
        return;
    uint32_t slot = (uint32_t)b->slot;
    int fd = bpf_map__fd(b->set->skel->maps.gc_stats);
    for (uint32_t g = 0; g < AT_BPF_GC_SLOTS; g++) {
        uint32_t key = slot * AT_BPF_GC_SLOTS + g;
        bpf_map_lookup_elem(fd, &key, &gc[g]);
    }
    fd = bpf_map__fd(b->set->skel->maps.stats);
    for (uint32_t s = 0; s < AT_BPF_ST_COUNT; s++) {
        uint32_t key = slot * AT_BPF_ST_COUNT + s;
        bpf_map_lookup_elem(fd, &key, &stats[s]);
    }
}

/* The sampler's clock: each sampled thread's CPU time from its first
 * to its last sample, and the samples taken in it. */
static void read_sample_clock(at_bpf_t *b)
{
    int fd = bpf_map__fd(b->set->skel->maps.sample_clock);
    struct at_bpf_sample_clock c;
    uint64_t key = 0;
    uint32_t tid;
    for (int started = 0; next_thread_entry(fd, (uint32_t)b->proc.pid, &key, &started, &tid, &c);) {
        if (c.n < 2 || c.last_cpu_ns < c.first_cpu_ns)
            continue;
        b->data.oncpu_ns += c.last_cpu_ns - c.first_cpu_ns;
        b->data.oncpu_intervals += c.n - 1;
    }
}

static void read_maps(at_bpf_t *b, uint64_t end)
{
    read_counters(b, b->data.gc, b->data.stats);
    if (b->data.avail[AT_BPF_VIEW_GIL])
        each_gil_row(b, end, add_gil_row, &b->data);
    if (b->data.avail[AT_BPF_VIEW_SAMPLES])
        read_sample_clock(b);
}

/* Aggregated samples into the data rows, labels resolved. */
static int stacks_to_rows(at_bpf_t *b)
{
    at_stack_view_t v;
    size_t cursor = 0;
    char label[LABEL_MAX];
    at_bpf_data_t *d = &b->data;
    while (b->stacks && at_stacks_next(b->stacks, &cursor, &v)) {
        if (d->nstacks >= AT_BPF_MAX_STACKS) {
            d->stacks_dropped++;
            continue;
        }
        if (d->nstacks % 256 == 0) {
            void *p = realloc(d->stacks, (d->nstacks + 256) * sizeof *d->stacks);
            if (!p)
                return -ENOMEM;
            d->stacks = p;
        }
        at_bpf_stack_row_t *r = &d->stacks[d->nstacks];
        *r = (at_bpf_stack_row_t){ v.tid, (uint32_t)v.gil, v.count, 0, NULL };
        if (!(r->frames = calloc((size_t)v.n + 1, sizeof *r->frames)))
            return -ENOMEM;
        d->nstacks++;
        for (int k = 0; k < v.n; k++) {
            at_stacks_frame_label(b->stacks, &v.frames[k], label, sizeof label);
            if (!(r->frames[r->nframes] = strdup(label)))
                return -ENOMEM;
            r->nframes++;
        }
    }
    return 0;
}

/* The stacks' header: who, at what rate, over which CPU time. */
static void fill_stacks_meta(at_bpf_t *b)
{
    at_stacks_meta_t *m = at_stacks_meta(b->stacks);
    m->pid = b->proc.pid;
    snprintf(m->comm, sizeof m->comm, "%s", b->data.comm);
    snprintf(m->version, sizeof m->version, "%s", b->data.version);
    snprintf(m->build, sizeof m->build, "%s", b->data.build);
    m->rate_hz = b->plan.hz;
    m->samples = b->data.samples;
    m->missed = b->data.stats[AT_BPF_ST_LOST_SAMPLE];
    m->duration_s = (double)(b->data.end_ns - b->data.attach_ns) / 1e9;
    m->native = 0;
    m->on_cpu = 1;
    m->cpu_s = (double)b->data.oncpu_ns / 1e9;
    m->cpu_intervals = b->data.oncpu_intervals;
}

/* <pid>.stacks for the stack formats (collapsed, svg), unless a sampler
 * already wrote one for this process. */
static int save_stacks(at_bpf_t *b)
{
    FILE *f = at_session_open_file(b->dir, b->proc.pid, "stacks");
    if (f) {
        fclose(f);
        return 0;
    }
    fill_stacks_meta(b);
    return at_stacks_save(b->stacks, b->dir);
}

/* The recording as of end: the maps read, the stacks' rows, and
 * <pid>.bpf and <pid>.stacks written.  0, or the first -errno. */
int at_bpf_save_recording(at_bpf_t *b, uint64_t end)
{
    read_maps(b, end);
    int rc = stacks_to_rows(b);
    at_bpf_data_finish(&b->data);
    int rc2 = at_bpf_data_save(&b->data, b->dir);
    if (rc == 0)
        rc = rc2;
    if (b->stacks && (rc2 = save_stacks(b)) < 0 && rc == 0)
        rc = rc2;
    return rc;
}

/* ---- live readings (archtrace agent) ------------------------------------------------ */

static int keep_live_row(void *ctx, const at_bpf_gil_row_t *r)
{
    at_bpf_live_t *l = ctx;
    l->gil[l->ngil++] = *r;
    return l->ngil < AT_BPF_LIVE_THREADS;
}

void at_bpf_live(at_bpf_t *b, at_bpf_live_t *l)
{
    memset(l, 0, sizeof *l);
    l->data = &b->data;
    read_counters(b, l->gc, l->stats);
    if (b->data.avail[AT_BPF_VIEW_GIL] && b->set->links.n)
        each_gil_row(b, at_bpf_now_ns(), keep_live_row, l);
    l->names = b->stacks ? at_stacks_names(b->stacks) : NULL;
}

int at_bpf_cut_stacks(at_bpf_t *b, const char *dir)
{
    if (!b->stacks)
        return -ENODATA;
    uint64_t now = at_bpf_now_ns(), since = b->cut_ns ? b->cut_ns : b->data.attach_ns;
    fill_stacks_meta(b);
    at_stacks_meta_t *m = at_stacks_meta(b->stacks);
    m->samples = b->data.samples - b->cut_samples;
    m->duration_s = (double)(now - since) / 1e9;
    m->cpu_s = 0, m->cpu_intervals = 0;     /* the CPU clock is read at the end only */
    uint64_t taken = m->samples;
    int rc = taken ? at_stacks_save(b->stacks, dir) : 0;
    /* afresh: the frames' names are re-read from the code objects, and
     * the threads' names at once (a profile's labels need them) */
    at_stacks_t *fresh = at_stacks_new(b->proc.pid);
    at_bpf_sym_t *sym = fresh ? at_bpf_sym_new(&b->proc, fresh) : NULL;
    if (!sym) {
        at_stacks_free(fresh);
        return rc < 0 ? rc : -ENOMEM;
    }
    at_bpf_sym_free(b->sym);
    at_stacks_free(b->stacks);
    b->stacks = fresh, b->sym = sym;
    b->cut_samples = b->data.samples;
    b->cut_ns = now;
    at_thread_names_read(at_stacks_names(b->stacks), &b->proc, now);
    return rc < 0 ? rc : (int)(taken < INT32_MAX ? taken : INT32_MAX);
}

const at_bpf_data_t *at_bpf_data(const at_bpf_t *b)
{
    return &b->data;
}
