/* SPDX-License-Identifier: MIT */
/* report_alloc.c - render the allocation report from <pid>.alloc as
 * session/alloc_model.c validated it: the text tables and the JSON (the
 * Chrome trace, folded stacks and flame graph: report_alloc_stacks.c).
 *
 * Design: every index and offset used here has been checked against the
 * caps and the file size when it was loaded, so rendering trusts the
 * view.  Tops are made the way
 * tracemalloc's statistics('lineno') makes them: groups with the same
 * (file, line) are merged, then sorted by (size, count) descending, and
 * printed as its Statistic prints them, so the two can be compared line
 * by line.  Python (OBJ, MEM, RAW) and native memory are kept apart.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "alloc_format.h"
#include "report/report_alloc_int.h"
#include "report/report_features.h"
#include "session/session.h"
#include "out/textout.h"

typedef struct row {
    uint32_t file;          /* string offset                              */
    int32_t line;
    uint32_t func;
    int64_t bytes, count;   /* count in count_scale units                 */
} row_t;

typedef struct rows {
    row_t *v;
    size_t n;
} rows_t;

/* ---- tops --------------------------------------------------------------- */

static int row_cmp(const void *a, const void *b)
{
    const row_t *x = a, *y = b;
    if (x->bytes != y->bytes)
        return x->bytes < y->bytes ? 1 : -1;
    if (x->count != y->count)
        return x->count < y->count ? 1 : -1;
    if (x->file != y->file)
        return x->file < y->file ? -1 : 1;
    return (x->line > y->line) - (x->line < y->line);
}

static int row_key_cmp(const void *a, const void *b)
{
    const row_t *x = a, *y = b;
    if (x->file != y->file)
        return x->file < y->file ? -1 : 1;
    return (x->line > y->line) - (x->line < y->line);
}

/* Merge rows of the same (file, line), as tracemalloc groups by lineno,
 * drop empty ones, and sort biggest first. */
static void rows_finish(rows_t *r)
{
    size_t out = 0;
    qsort(r->v, r->n, sizeof(row_t), row_key_cmp);
    for (size_t i = 0; i < r->n; i++) {
        if (out && r->v[out - 1].file == r->v[i].file && r->v[out - 1].line == r->v[i].line) {
            r->v[out - 1].bytes += r->v[i].bytes;
            r->v[out - 1].count += r->v[i].count;
        } else {
            r->v[out++] = r->v[i];
        }
    }
    r->n = out;
    out = 0;
    for (size_t i = 0; i < r->n; i++)
        if (r->v[i].bytes > 0)
            r->v[out++] = r->v[i];
    r->n = out;
    qsort(r->v, r->n, sizeof(row_t), row_cmp);
}

static void rows_add(rows_t *r, const at_alloc_group_t *g, int64_t bytes, int64_t count)
{
    r->v[r->n++] = (row_t){ g->file, g->line, g->func, bytes, count };
}

static int want_group(const at_alloc_group_t *g, unsigned gkind)
{
    return g->kind == gkind && !(g->flags & AT_ALLOC_G_TOOL);
}

static int snap_rows(const at_alloc_data_t *d, const at_alloc_snap_t *sn, unsigned gkind, rows_t *r)
{
    r->v = calloc(sn->n + 1, sizeof(row_t));
    r->n = 0;
    if (!r->v)
        return -ENOMEM;
    for (uint32_t i = 0; i < sn->n; i++) {
        const at_alloc_group_t *g = &d->groups[sn->top[i].group];
        if (want_group(g, gkind))
            rows_add(r, g, sn->top[i].bytes, sn->top[i].count);
    }
    rows_finish(r);
    return 0;
}

/* From the site table: live (cumulative == 0) or ever allocated. */
static int site_rows(const at_alloc_data_t *d, int cumulative, unsigned gkind, rows_t *r)
{
    r->v = calloc(d->nsites + 1, sizeof(row_t));
    r->n = 0;
    if (!r->v)
        return -ENOMEM;
    for (uint32_t i = 0; i < d->nsites; i++) {
        const at_alloc_site_t *s = &d->sites[i];
        const at_alloc_group_t *g = &d->groups[s->group];
        if (!want_group(g, gkind))
            continue;
        if (cumulative)
            rows_add(r, g, (int64_t)s->total_bytes, (int64_t)s->total_count);
        else
            rows_add(r, g, s->live_bytes, s->live_count);
    }
    rows_finish(r);
    return 0;
}

/* The newest whole snapshot of a kind in [first, last). */
static const at_alloc_snap_t *newest(const at_alloc_data_t *d, unsigned first, unsigned last)
{
    const at_alloc_snap_t *best = NULL;
    for (unsigned i = first; i < last && i < d->h->snap_cap; i++) {
        const at_alloc_snap_t *sn = &d->snaps[i];
        if (sn->seq && !(sn->seq & 1) && (!best || sn->seq > best->seq))
            best = sn;
    }
    return best;
}

static const at_alloc_snap_t *peak_snap(const at_alloc_data_t *d)
{
    return newest(d, AT_ALLOC_SNAP_PEAK0, AT_ALLOC_SNAP_PEAK0 + 2);
}

static const at_alloc_snap_t *exit_snap(const at_alloc_data_t *d)
{
    return newest(d, AT_ALLOC_SNAP_EXIT, AT_ALLOC_SNAP_EXIT + 1);
}

static uint32_t nmarkers(const at_alloc_data_t *d)
{
    uint32_t n = d->h->nmarkers, cap = d->h->snap_cap - AT_ALLOC_SNAP_MARKER0;
    return n < cap ? n : cap;
}

static const at_alloc_snap_t *marker(const at_alloc_data_t *d, uint32_t i)
{
    const at_alloc_snap_t *sn = &d->snaps[AT_ALLOC_SNAP_MARKER0 + i];
    return sn->seq && !(sn->seq & 1) ? sn : NULL;
}

/* Bytes and blocks ever allocated by Python (tool memory excluded). */
static void py_totals(const at_alloc_data_t *d, uint64_t *bytes, uint64_t *count)
{
    *bytes = *count = 0;
    for (uint32_t i = 0; i < d->nsites; i++) {
        const at_alloc_site_t *s = &d->sites[i];
        if (want_group(&d->groups[s->group], AT_ALLOC_GROUP_PY))
            *bytes += s->total_bytes, *count += s->total_count;
    }
}

static double rel_s(const at_alloc_data_t *d, uint64_t ns)
{
    return ns >= d->h->start_ns ? (double)(ns - d->h->start_ns) / 1e9 : 0;
}

static int top_n(const at_options_t *o)
{
    return o && o->top_n > 0 ? o->top_n : 5;
}

/* ---- text --------------------------------------------------------------- */

void at_alloc_format_size(char *out, size_t n, double size)
{
    static const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    for (int i = 0; i < 5; i++) {
        if (fabs(size) < 100 && i) {
            snprintf(out, n, "%.1f %s", size, units[i]);
            return;
        }
        if (fabs(size) < 10 * 1024 || i == 4) {
            snprintf(out, n, "%.0f %s", size, units[i]);
            return;
        }
        size /= 1024;
    }
}

/* A sampled size's relative standard error, at most sqrt(mean / bytes):
 * a block of n bytes sampled with p = 1 - exp(-n / mean) and weighted
 * n / p adds n^2 (1 - p) / p <= n * mean to the variance.  0 when exact. */
static double rel_error(const at_alloc_data_t *d, int64_t bytes)
{
    int64_t mean = d->h->sample_bytes;
    if (!(d->h->flags & AT_ALLOC_F_SAMPLED) || mean <= 0 || bytes <= 0)
        return 0;
    double e = sqrt((double)mean / (double)bytes);
    return e < 1 ? e : 1;
}

static void print_rows(FILE *out, const at_alloc_data_t *d, const rows_t *r, int limit)
{
    char size[32], avg[32];
    if (!r->n)
        fprintf(out, "    (nothing live)\n");
    for (size_t i = 0; i < r->n && (int)i < limit; i++) {
        int64_t count = alloc_counts(d, r->v[i].count);
        at_alloc_format_size(size, sizeof(size), (double)r->v[i].bytes);
        fputs("    ", out);
        at_text_put_escaped(out, at_alloc_str(d, r->v[i].file), 4096);
        fprintf(out, ":%d: size=%s, count=%lld", r->v[i].line, size, (long long)count);
        if (count) {
            at_alloc_format_size(avg, sizeof(avg), (double)r->v[i].bytes / (double)count);
            fprintf(out, ", average=%s", avg);
        }
        double e = rel_error(d, r->v[i].bytes);
        if (e > 0)
            fprintf(out, " (+-%.0f%%)", 100 * e);
        fputc('\n', out);
    }
}

static void print_snap(FILE *out, const at_alloc_data_t *d, const at_alloc_snap_t *sn,
                       const char *title, int limit)
{
    rows_t r;
    char live[32];
    at_alloc_format_size(live, sizeof(live), (double)sn->py_bytes);
    fprintf(out, "  %s at %.3f s, %s live:\n", title, rel_s(d, sn->ns), live);
    if (snap_rows(d, sn, AT_ALLOC_GROUP_PY, &r) == 0)
        print_rows(out, d, &r, limit);
    free(r.v);
}

static void print_native(FILE *out, const at_alloc_data_t *d, int limit)
{
    const at_alloc_header_t *h = d->h;
    const at_alloc_snap_t *ex = exit_snap(d);
    char peak[32], total[32];
    rows_t r;
    at_alloc_format_size(peak, sizeof(peak), (double)h->native_peak);
    at_alloc_format_size(total, sizeof(total), (double)h->native_total_bytes);
    fprintf(out, "  native memory (libc malloc outside CPython's allocators): peak %s, %s allocated\n",
            peak, total);
    int rc = ex ? snap_rows(d, ex, AT_ALLOC_GROUP_NATIVE, &r) : site_rows(d, 0, AT_ALLOC_GROUP_NATIVE, &r);
    if (rc == 0 && r.n) {
        fprintf(out, "   live %s, by the Python line that called into native code:\n", ex ? "at exit" : "at the end");
        print_rows(out, d, &r, limit);
    }
    free(r.v);
}

static void print_footer(FILE *out, const at_alloc_data_t *d)
{
    const at_alloc_header_t *h = d->h;
    char a[32], b[32];
    if (h->tool_peak > 0) {
        at_alloc_format_size(a, sizeof(a), (double)h->tool_peak);
        fprintf(out, "  tracemalloc's own memory (tracemalloc.py), kept out of the totals: peak %s\n", a);
    }
    at_alloc_format_size(a, sizeof(a), (double)(h->shadow_resident + h->file_resident));
    at_alloc_format_size(b, sizeof(b), (double)h->private_bytes);
    fprintf(out, "  archtrace's tables: %s resident, %s private reserved; %u sites, %u lines\n", a, b,
            h->nsites, h->ngroups);
    if (h->sites_dropped || h->groups_dropped || h->frames_dropped || h->strs_dropped ||
        h->markers_dropped || h->untracked_blocks)
        fprintf(out, "  dropped: %llu site lookups, %llu lines, %llu deep stacks, %llu names, "
                     "%llu markers, %llu blocks untracked\n",
                (unsigned long long)h->sites_dropped, (unsigned long long)h->groups_dropped,
                (unsigned long long)h->frames_dropped, (unsigned long long)h->strs_dropped,
                (unsigned long long)h->markers_dropped, (unsigned long long)h->untracked_blocks);
    if (!(h->flags & AT_ALLOC_F_EXITED))
        fprintf(out, "  warning: the process did not exit normally: counts are as of its end\n");
}

static void print_header(FILE *out, const at_alloc_data_t *d, pid_t pid)
{
    const at_alloc_header_t *h = d->h;
    char peak[32];
    at_alloc_format_size(peak, sizeof(peak), (double)h->py_peak);
    char label[48];
    fprintf(out, "\nallocations (pid %s): ", at_key_label(pid, label, sizeof label));
    if (h->flags & AT_ALLOC_F_SAMPLED) {
        char mean[32];
        at_alloc_format_size(mean, sizeof(mean), (double)h->sample_bytes);
        fprintf(out, "sampled, 1 block per %s allocated on average (estimates, +-1 standard error; "
                     "--alloc-exact counts every block)", mean);
    } else {
        fprintf(out, "every block (exact)");
    }
    fprintf(out, ", %d frame%s per site%s; Python peak %s\n", h->depth, h->depth == 1 ? "" : "s",
            (h->flags & AT_ALLOC_F_FORKED) ? ", counted from the fork" : "", peak);
}

int at_alloc_report_text(const char *dir, pid_t pid, FILE *out, const at_options_t *o)
{
    at_alloc_data_t d;
    int rc = at_alloc_load(dir, pid, &d);
    if (rc < 0)
        return rc;
    int limit = top_n(o);
    print_header(out, &d, pid);
    const at_alloc_snap_t *sn = peak_snap(&d);
    if (sn)
        print_snap(out, &d, sn, "peak", limit);
    for (uint32_t i = 0; i < nmarkers(&d); i++) {
        char title[4 * AT_ALLOC_LABEL_MAX + 16];
        if (!(sn = marker(&d, i)))
            continue;
        char label[4 * AT_ALLOC_LABEL_MAX + 1], raw[AT_ALLOC_LABEL_MAX + 1];
        snprintf(raw, sizeof(raw), "%.*s", (int)AT_ALLOC_LABEL_MAX, sn->label);
        at_text_escape(label, sizeof(label), raw);
        snprintf(title, sizeof(title), "snapshot '%s'", label);
        print_snap(out, &d, sn, title, limit);
    }
    if ((sn = exit_snap(&d)))
        print_snap(out, &d, sn, "exit", limit);
    rows_t r;
    char total[32];
    uint64_t tb, tc;
    py_totals(&d, &tb, &tc);
    at_alloc_format_size(total, sizeof(total), (double)tb);
    fprintf(out, "  cumulative (allocated over the run: %s in %lld blocks):\n", total,
            (long long)alloc_counts(&d, (int64_t)tc));
    if (site_rows(&d, 1, AT_ALLOC_GROUP_PY, &r) == 0)
        print_rows(out, &d, &r, limit);
    free(r.v);
    print_native(out, &d, limit);
    print_footer(out, &d);
    at_alloc_free(&d);
    return 0;
}

/* ---- JSON --------------------------------------------------------------- */

static void json_rows(at_json_t *j, const at_alloc_data_t *d, const rows_t *r, int limit)
{
    at_json_arr_begin(j);
    for (size_t i = 0; i < r->n && (int)i < limit; i++) {
        at_json_obj_begin(j);
        at_json_kv_str(j, "file", at_alloc_str(d, r->v[i].file));
        at_json_kv_int(j, "line", r->v[i].line);
        at_json_kv_int(j, "size", r->v[i].bytes);
        at_json_kv_int(j, "count", alloc_counts(d, r->v[i].count));
        at_json_kv_str(j, "function", at_alloc_str(d, r->v[i].func));
        if (d->h->flags & AT_ALLOC_F_SAMPLED)
            at_json_kv_double(j, "size_rel_error", rel_error(d, r->v[i].bytes));
        at_json_obj_end(j);
    }
    at_json_arr_end(j);
}

/* Rows made by snap_rows or site_rows (rc: what it returned) as the
 * value of key, then freed; nothing when they could not be made. */
static void json_keyed_rows(at_json_t *j, const char *key, const at_alloc_data_t *d, int rc, rows_t *r,
                            int limit)
{
    if (rc == 0) {
        at_json_key(j, key);
        json_rows(j, d, r, limit);
    }
    free(r->v);
}

static void json_top(at_json_t *j, const char *key, const at_alloc_data_t *d, const at_alloc_snap_t *sn,
                     unsigned gkind, int limit)
{
    rows_t r;
    json_keyed_rows(j, key, d, snap_rows(d, sn, gkind, &r), &r, limit);
}

static void json_snap(at_json_t *j, const at_alloc_data_t *d, const at_alloc_snap_t *sn, int limit)
{
    at_json_obj_begin(j);
    at_json_kv_str(j, "label", sn->label);
    at_json_kv_double(j, "t_s", rel_s(d, sn->ns));
    at_json_kv_int(j, "bytes", sn->py_bytes);
    at_json_kv_int(j, "count", alloc_counts(d, sn->py_count));
    at_json_kv_int(j, "native_bytes", sn->native_bytes);
    json_top(j, "top", d, sn, AT_ALLOC_GROUP_PY, limit);
    json_top(j, "native_top", d, sn, AT_ALLOC_GROUP_NATIVE, limit);
    at_json_obj_end(j);
}

static void json_sites(at_json_t *j, const char *key, const at_alloc_data_t *d, int cumulative,
                       unsigned gkind, int limit)
{
    rows_t r;
    json_keyed_rows(j, key, d, site_rows(d, cumulative, gkind, &r), &r, limit);
}

static void json_native(at_json_t *j, const at_alloc_data_t *d, int limit)
{
    const at_alloc_header_t *h = d->h;
    at_json_key(j, "native");
    at_json_obj_begin(j);
    at_json_kv_int(j, "peak_bytes", h->native_peak);
    at_json_kv_int(j, "live_bytes", h->native_live);
    at_json_kv_uint(j, "total_bytes", h->native_total_bytes);
    const at_alloc_snap_t *ex = exit_snap(d);
    if (ex)
        json_top(j, "top", d, ex, AT_ALLOC_GROUP_NATIVE, limit);
    else
        json_sites(j, "top", d, 0, AT_ALLOC_GROUP_NATIVE, limit);
    json_sites(j, "cumulative_top", d, 1, AT_ALLOC_GROUP_NATIVE, limit);
    at_json_obj_end(j);
}

static void json_overhead(at_json_t *j, const at_alloc_header_t *h)
{
    at_json_key(j, "overhead");
    at_json_obj_begin(j);
    at_json_kv_uint(j, "resident_bytes", h->shadow_resident + h->file_resident);
    at_json_kv_uint(j, "shadow_bytes", h->shadow_bytes);
    at_json_kv_uint(j, "shadow_resident_bytes", h->shadow_resident);
    at_json_kv_uint(j, "file_bytes", h->file_size);
    at_json_kv_uint(j, "file_resident_bytes", h->file_resident);
    at_json_kv_uint(j, "private_bytes", h->private_bytes);
    at_json_kv_uint(j, "layers", h->layers);
    at_json_obj_end(j);
    at_json_key(j, "dropped");
    at_json_obj_begin(j);
    at_json_kv_uint(j, "sites", h->sites_dropped);
    at_json_kv_uint(j, "lines", h->groups_dropped);
    at_json_kv_uint(j, "deep_stacks", h->frames_dropped);
    at_json_kv_uint(j, "names", h->strs_dropped);
    at_json_kv_uint(j, "markers", h->markers_dropped);
    at_json_kv_uint(j, "untracked_blocks", h->untracked_blocks);
    at_json_kv_uint(j, "untracked_bytes", h->untracked_bytes);
    at_json_obj_end(j);
}

static void json_summary(at_json_t *j, const at_alloc_data_t *d)
{
    const at_alloc_header_t *h = d->h;
    at_json_kv_str(j, "mode", (h->flags & AT_ALLOC_F_SAMPLED) ? "sampled" : "exact");
    at_json_kv_int(j, "sample_bytes", h->sample_bytes);
    at_json_kv_int(j, "depth", h->depth);
    at_json_kv_bool(j, "complete", (h->flags & AT_ALLOC_F_EXITED) != 0);
    at_json_kv_bool(j, "forked", (h->flags & AT_ALLOC_F_FORKED) != 0);
    at_json_kv_int(j, "peak_bytes", h->py_peak);
    at_json_kv_int(j, "live_bytes", h->py_live + h->raw_live);
    uint64_t tb, tc;
    py_totals(d, &tb, &tc);
    at_json_kv_uint(j, "total_bytes", tb);
    at_json_kv_int(j, "total_count", alloc_counts(d, (int64_t)tc));
    at_json_kv_int(j, "tool_peak_bytes", h->tool_peak);
    at_json_kv_uint(j, "sites", h->nsites);
    at_json_kv_uint(j, "lines", h->ngroups);
}

int at_alloc_report_json(const char *dir, pid_t pid, at_json_t *j, const at_options_t *o)
{
    at_alloc_data_t d;
    int rc = at_alloc_load(dir, pid, &d);
    if (rc < 0)
        return rc;
    int limit = top_n(o);
    at_json_obj_begin(j);
    at_json_kv_str(j, "source", "preload");   /* only the shim sees allocations */
    json_summary(j, &d);
    const at_alloc_snap_t *pk = peak_snap(&d), *ex = exit_snap(&d);
    at_json_key(j, "peak");
    if (pk)
        json_snap(j, &d, pk, limit);
    else
        at_json_null(j);
    at_json_key(j, "snapshots");
    at_json_arr_begin(j);
    for (uint32_t i = 0; i < nmarkers(&d); i++)
        if (marker(&d, i))
            json_snap(j, &d, marker(&d, i), limit);
    if (ex)
        json_snap(j, &d, ex, limit);
    at_json_arr_end(j);
    at_json_key(j, "current");
    at_json_obj_begin(j);
    json_sites(j, "top", &d, 0, AT_ALLOC_GROUP_PY, limit);
    at_json_obj_end(j);
    at_json_key(j, "cumulative");
    at_json_obj_begin(j);
    json_sites(j, "top", &d, 1, AT_ALLOC_GROUP_PY, limit);
    at_json_obj_end(j);
    json_native(j, &d, limit);
    json_overhead(j, d.h);
    at_json_obj_end(j);
    at_alloc_free(&d);
    return 0;
}
