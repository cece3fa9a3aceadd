/* SPDX-License-Identifier: MIT */
/* top_shim.c - `archtrace top`'s panels from the shim's live files: exact GIL shares, allocation sites, imports.
 *
 * Plain file reads with the report's own readers, no lock held for the
 * allocation and import panels; a file that fails its checks mid-write
 * is shown as it was at the previous refresh. */
#include <stdlib.h>
#include <string.h>

#include "alloc_format.h"
#include "gil_format.h"
#include "imports_format.h"
#include "session/gil_model.h"
#include "session/session.h"
#include "top/top_model_int.h"

/* ---- snapshot: the shim's files (no lock: plain file reads) -------------- */

/* Hold or wait time up to now, with the interval still open counted. */
static uint64_t gil_ns_now(const at_gil_thread_t *r, uint32_t state, uint64_t closed, uint64_t now)
{
    return closed + (r->state == state && r->since_ns && r->since_ns <= now ? now - r->since_ns : 0);
}

static double clamp_pct(double v, double hi)
{
    return v < 0 ? 0 : v > hi ? hi : v;
}

/* Exact held/wait from the shim: the change since the last reading over
 * the wall time between.  The sampler's idle share includes the waits
 * (a waiting thread sleeps on a condition variable): they come off it. */
void at_top_merge_gil(at_top_model_t *m, const void *gil, at_top_snap_t *s, uint64_t now, int peek)
{
    double wall = (double)(now - m->gil_read_ns);
    for (int i = 0; i < s->nthreads; i++) {
        at_top_thread_t *row = &s->threads[i];
        const at_gil_thread_t *r = at_gil_live_row(gil, row->tid);
        thread_acc_t *t = NULL;
        for (int k = 0; k < TRACKED_THREADS && !t; k++)
            t = m->threads[k].tid == row->tid ? &m->threads[k] : NULL;
        if (!r || !t)
            continue;
        if (r->name[0])   /* the shim's name is newer than ours, when it has one */
            memcpy(row->name, r->name, sizeof row->name - 1);
        row->main = (r->flags & AT_GIL_T_MAIN) != 0;
        uint64_t hold = gil_ns_now(r, AT_GIL_HELD, r->hold_ns, now);
        uint64_t wait = gil_ns_now(r, AT_GIL_WAITING, r->wait_ns + r->handoff_ns, now);
        if (t->gil_known && wall > 0) {
            row->held_pct = clamp_pct(pct((double)(hold - (hold > t->gil_hold_ns ? t->gil_hold_ns : hold)), wall), 100);
            row->wait_pct = clamp_pct(pct((double)(wait - (wait > t->gil_wait_ns ? t->gil_wait_ns : wait)), wall),
                                      100 - row->held_pct);
            if (row->idle_pct >= 0)
                row->idle_pct = clamp_pct(row->idle_pct - row->wait_pct, 100 - row->held_pct - row->wait_pct);
        } else {
            row->held_pct = row->wait_pct = -1;
        }
        if (peek)
            continue;
        t->gil_hold_ns = hold;
        t->gil_wait_ns = wait;
        t->gil_known = 1;
    }
    s->gil_source = AT_TOP_SRC_SHIM;
}

typedef struct group_sum {
    int64_t live;
    uint64_t total;
} group_sum_t;

static int site_better(const at_top_site_t *a, const at_top_site_t *b, at_top_sort_t sort)
{
    if (sort == AT_TOP_SORT_TOTAL)
        return a->total_bytes > b->total_bytes;
    return a->live_bytes > b->live_bytes;
}

static void top_sites(const at_alloc_data_t *d, const group_sum_t *g, at_top_sort_t sort, at_top_snap_t *s)
{
    for (uint32_t i = 0; i < d->ngroups; i++) {
        const at_alloc_group_t *gr = &d->groups[i];
        if ((gr->flags & AT_ALLOC_G_TOOL) || gr->kind != AT_ALLOC_GROUP_PY || (g[i].live <= 0 && !g[i].total))
            continue;
        at_top_site_t cand = { .line = gr->line, .live_bytes = g[i].live, .total_bytes = g[i].total };
        if (s->nsites == AT_TOP_MAX_SITES && !site_better(&cand, &s->sites[s->nsites - 1], sort))
            continue;
        int k = s->nsites < AT_TOP_MAX_SITES ? s->nsites++ : s->nsites - 1;
        while (k > 0 && site_better(&cand, &s->sites[k - 1], sort)) {
            s->sites[k] = s->sites[k - 1];
            k--;
        }
        s->sites[k] = cand;
        copy_str(s->sites[k].file, sizeof s->sites[k].file, at_alloc_str(d, gr->file));
        copy_str(s->sites[k].func, sizeof s->sites[k].func, at_alloc_str(d, gr->func));
    }
}

static void snap_alloc(const at_top_model_t *m, at_top_sort_t sort, at_top_snap_t *s)
{
    at_alloc_data_t d;
    if (at_alloc_load(m->dir, s->pid, &d) < 0)
        return;
    group_sum_t *g = calloc(d.ngroups ? d.ngroups : 1, sizeof *g);
    if (g) {
        for (uint32_t i = 0; i < d.nsites; i++) {
            const at_alloc_site_t *site = &d.sites[i];
            if (site->kind == AT_ALLOC_KIND_NATIVE || (site->flags & AT_ALLOC_G_TOOL))
                continue;
            g[site->group].live += site->live_bytes;
            g[site->group].total += site->total_bytes;
            s->alloc_total += site->total_bytes;
        }
        top_sites(&d, g, sort, s);
        s->alloc_live = d.h->py_live + d.h->raw_live;
        s->alloc_peak = d.h->py_peak;
        s->have_alloc = 1;
        free(g);
    }
    at_alloc_free(&d);
}

static void imp_copy(char *dst, size_t n, const at_imp_view_t *v, at_imp_str_t str)
{
    size_t len = str.off == AT_IMP_NONE ? 0 : str.len < n - 1 ? str.len : n - 1;
    if (len)
        memcpy(dst, v->arena + str.off, len); /* checked by at_imports_decode */
    dst[len] = '\0';
}

static void snap_imports(const at_top_model_t *m, at_top_snap_t *s)
{
    void *buf;
    at_imp_view_t v;
    if (at_imports_load(m->dir, s->pid, &buf, &v) < 0) {
        free(buf);
        return;
    }
    s->have_imports = 1;
    s->import_count = v.h->count;
    for (uint32_t i = v.h->count; i > 0 && s->nimports < AT_TOP_MAX_IMPORTS; i--) {
        const at_imp_record_t *r = &v.rec[i - 1];
        at_top_import_t *row = &s->imports[s->nimports++];
        imp_copy(row->module, sizeof row->module, &v, r->module);
        imp_copy(row->finder, sizeof row->finder, &v, r->finder);
        imp_copy(row->path_finder, sizeof row->path_finder, &v, r->path_finder);
        row->cumulative_us = (r->flags & AT_IMP_F_DONE) ? (double)(r->end_ns - r->start_ns) / 1e3 : -1;
        row->failed = (r->flags & AT_IMP_F_DONE) && !(r->flags & AT_IMP_F_OK);
    }
    free(buf);
}

/* The shim's panels; a file unreadable right now (being written, not
 * created yet) keeps what the previous refresh of the same process
 * showed. */
void at_top_snap_files(at_top_model_t *m, const at_top_query_t *q, at_top_snap_t *s)
{
    snap_alloc(m, q->sort, s);
    if (!s->have_alloc && m->last.have_alloc) {
        s->have_alloc = 1;
        s->alloc_live = m->last.alloc_live;
        s->alloc_peak = m->last.alloc_peak;
        s->alloc_total = m->last.alloc_total;
        s->nsites = m->last.nsites;
        memcpy(s->sites, m->last.sites, sizeof s->sites);
    }
    snap_imports(m, s);
    if (!s->have_imports && m->last.have_imports) {
        s->have_imports = 1;
        s->import_count = m->last.import_count;
        s->nimports = m->last.nimports;
        memcpy(s->imports, m->last.imports, sizeof s->imports);
    }
}
