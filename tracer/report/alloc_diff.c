/* SPDX-License-Identifier: MIT */
/* alloc_diff.c - the difference of two allocation snapshots by file:line (see alloc_diff.h).
 *
 * A snapshot keeps its AT_ALLOC_SNAP_TOP biggest groups: a line outside
 * one snapshot's top counts as 0 there, and the output says how much of
 * each snapshot lay outside (in exact mode with fewer live lines than
 * that, nothing does, and the lines and sizes are tracemalloc's).
 */
#include "report/alloc_diff.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "alloc_format.h"
#include "json.h"
#include "out/textout.h"
#include "session/procs.h"
#include "session/session.h"

typedef struct side {
    char dir[4096];
    char name[AT_ALLOC_LABEL_MAX];
} side_t;

typedef struct diff_row {
    const char *file;          /* in one of the two files' strings         */
    int32_t line;
    int64_t size[2], count[2]; /* in A, in B                               */
} diff_row_t;

typedef struct diff {
    diff_row_t *v;
    size_t n, cap;
    int64_t outside[2];        /* live bytes not in the snapshot's top      */
} diff_t;

/* "DIR:NAME", "DIR" (its exit) or "NAME" (of the session `dir`). */
static void parse_side(const char *arg, const char *dir, side_t *s)
{
    struct stat st;
    const char *colon = strrchr(arg, ':');
    if (stat(arg, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(s->dir, sizeof s->dir, "%s", arg);
        snprintf(s->name, sizeof s->name, "exit");
    } else if (colon && colon > arg) {
        snprintf(s->dir, sizeof s->dir, "%.*s", (int)(colon - arg), arg);
        snprintf(s->name, sizeof s->name, "%s", colon + 1);
    } else {
        snprintf(s->dir, sizeof s->dir, "%s", dir ? dir : ".");
        snprintf(s->name, sizeof s->name, "%s", arg);
    }
}

/* The newest whole snapshot labelled name ("peak" and "exit" by kind). */
static const at_alloc_snap_t *find_snap(const at_alloc_data_t *d, const char *name)
{
    const at_alloc_snap_t *best = NULL;
    for (uint32_t i = 0; i < d->h->snap_cap; i++) {
        const at_alloc_snap_t *sn = &d->snaps[i];
        int kind_ok = !strcmp(name, "peak") ? sn->kind == AT_ALLOC_SNAP_KIND_PEAK
                    : !strcmp(name, "exit") ? sn->kind == AT_ALLOC_SNAP_KIND_EXIT
                    : sn->kind == AT_ALLOC_SNAP_KIND_MARKER && !strncmp(sn->label, name, sizeof sn->label);
        if (sn->seq && !(sn->seq & 1) && kind_ok && (!best || sn->seq > best->seq))
            best = sn;
    }
    return best;
}

static diff_row_t *row_for(diff_t *df, const char *file, int32_t line)
{
    for (size_t i = 0; i < df->n; i++)
        if (df->v[i].line == line && !strcmp(df->v[i].file, file))
            return &df->v[i];
    if (df->n == df->cap) {
        size_t cap = df->cap ? df->cap * 2 : 256;
        diff_row_t *v = realloc(df->v, cap * sizeof *v);
        if (!v)
            return NULL;
        df->v = v;
        df->cap = cap;
    }
    df->v[df->n] = (diff_row_t){ .file = file, .line = line };
    return &df->v[df->n++];
}

/* Snapshot sn of d into column k of df: groups of kind gkind (Python or
 * native), tracemalloc's own memory left out.  sn NULL: an empty one. */
static int add_snap(diff_t *df, const at_alloc_data_t *d, const at_alloc_snap_t *sn, int k, unsigned gkind)
{
    uint32_t scale = d->h->count_scale ? d->h->count_scale : 1;
    int64_t shown = 0;
    for (uint32_t i = 0; sn && i < sn->n && i < AT_ALLOC_SNAP_TOP; i++) {
        if (sn->top[i].group >= d->ngroups)
            continue;
        const at_alloc_group_t *g = &d->groups[sn->top[i].group];
        if (g->kind != gkind || (g->flags & AT_ALLOC_G_TOOL))
            continue;
        diff_row_t *r = row_for(df, at_alloc_str(d, g->file), g->line);
        if (!r)
            return -ENOMEM;
        r->size[k] += sn->top[i].bytes;
        r->count[k] += (sn->top[i].count + scale / 2) / scale;
        shown += sn->top[i].bytes;
    }
    int64_t total = !sn ? 0 : gkind == AT_ALLOC_GROUP_PY ? sn->py_bytes : sn->native_bytes;
    df->outside[k] = total > shown ? total - shown : 0;
    return 0;
}

static int64_t abs64(int64_t v)
{
    return v < 0 ? -v : v;
}

/* compare_to's order: |size_diff|, size, |count_diff|, count, descending. */
static int cmp_rows(const void *a, const void *b)
{
    const diff_row_t *x = a, *y = b;
    int64_t k[2][4] = { { abs64(x->size[1] - x->size[0]), x->size[1], abs64(x->count[1] - x->count[0]), x->count[1] },
                        { abs64(y->size[1] - y->size[0]), y->size[1], abs64(y->count[1] - y->count[0]), y->count[1] } };
    for (int i = 0; i < 4; i++)
        if (k[0][i] != k[1][i])
            return k[0][i] < k[1][i] ? 1 : -1;
    int c = strcmp(x->file, y->file);
    return c ? c : (x->line > y->line) - (x->line < y->line);
}

static void text_rows(const diff_t *df, int top, FILE *out)
{
    char size[32], dsize[32], avg[32];
    for (size_t i = 0; i < df->n && (int)i < top; i++) {
        const diff_row_t *r = &df->v[i];
        int64_t ds = r->size[1] - r->size[0], dc = r->count[1] - r->count[0];
        at_text_bytes(size, sizeof size, (double)r->size[1]);
        at_text_bytes(dsize, sizeof dsize, (double)abs64(ds));
        at_text_bytes(avg, sizeof avg, r->count[1] ? (double)r->size[1] / (double)r->count[1] : 0);
        fprintf(out, "%s:%d: size=%s (%c%s), count=%" PRId64 " (%+" PRId64 "), average=%s\n", r->file, (int)r->line,
                size, ds < 0 ? '-' : '+', dsize, r->count[1], dc, avg);
    }
    if (df->n > (size_t)top)
        fprintf(out, "... %zu more lines changed (--top N shows more)\n", df->n - (size_t)top);
}

static void json_rows(const diff_t *df, at_json_t *j)
{
    at_json_key(j, "lines");
    at_json_arr_begin(j);
    for (size_t i = 0; i < df->n; i++) {
        const diff_row_t *r = &df->v[i];
        at_json_obj_begin(j);
        at_json_kv_str(j, "file", r->file);
        at_json_kv_int(j, "line", r->line);
        at_json_kv_int(j, "size", r->size[1]);
        at_json_kv_int(j, "size_diff", r->size[1] - r->size[0]);
        at_json_kv_int(j, "count", r->count[1]);
        at_json_kv_int(j, "count_diff", r->count[1] - r->count[0]);
        at_json_obj_end(j);
    }
    at_json_arr_end(j);
}

/* Drop lines that did not change, sort the rest. */
static void finish(diff_t *df)
{
    size_t k = 0;
    for (size_t i = 0; i < df->n; i++)
        if (df->v[i].size[0] != df->v[i].size[1] || df->v[i].count[0] != df->v[i].count[1])
            df->v[k++] = df->v[i];
    df->n = k;
    qsort(df->v, df->n, sizeof *df->v, cmp_rows);
}

/* ---- one pair of snapshots ------------------------------------------------ */

typedef struct pair {
    pid_t pid;
    const at_alloc_data_t *d[2];
    const at_alloc_snap_t *sn[2];
} pair_t;

static double snap_t(const at_alloc_data_t *d, const at_alloc_snap_t *sn)
{
    return sn->ns >= d->h->start_ns ? (double)(sn->ns - d->h->start_ns) / 1e9 : 0;
}

static int diff_pair(const pair_t *p, diff_t *df)
{
    memset(df, 0, sizeof *df);
    int rc = add_snap(df, p->d[0], p->sn[0], 0, AT_ALLOC_GROUP_PY);
    if (rc == 0)
        rc = add_snap(df, p->d[1], p->sn[1], 1, AT_ALLOC_GROUP_PY);
    if (rc == 0)
        finish(df);
    return rc;
}

static void text_pair(const pair_t *p, const side_t *s, const diff_t *df, int top, FILE *out)
{
    char a[32], b[32];
    fprintf(out, "pid %d: '%s' (%.3f s) -> '%s' (%.3f s), Python memory by line, as tracemalloc's compare_to:\n",
            (int)p->pid, s[0].name, snap_t(p->d[0], p->sn[0]), s[1].name, snap_t(p->d[1], p->sn[1]));
    text_rows(df, top, out);
    if (!df->n)
        fprintf(out, "(no line changed)\n");
    if (df->outside[0] || df->outside[1]) {
        at_text_bytes(a, sizeof a, (double)df->outside[0]);
        at_text_bytes(b, sizeof b, (double)df->outside[1]);
        fprintf(out, "(not compared: %s and %s live in lines outside each snapshot's %u biggest)\n", a, b,
                AT_ALLOC_SNAP_TOP);
    }
}

static void json_pair(const pair_t *p, const diff_t *df, at_json_t *j)
{
    at_json_obj_begin(j);
    at_json_kv_int(j, "pid", p->pid);
    at_json_kv_double(j, "a_t_s", snap_t(p->d[0], p->sn[0]));
    at_json_kv_double(j, "b_t_s", snap_t(p->d[1], p->sn[1]));
    at_json_kv_int(j, "not_compared_a_bytes", df->outside[0]);
    at_json_kv_int(j, "not_compared_b_bytes", df->outside[1]);
    json_rows(df, j);
    at_json_obj_end(j);
}

/* ---- the processes ----------------------------------------------------------- */

typedef struct out_ctx {
    const at_options_t *o;
    const side_t *s;
    FILE *out;
    at_json_t *j;             /* NULL: text                                */
    int pairs;
} out_ctx_t;

static int emit(out_ctx_t *c, const pair_t *p)
{
    diff_t df;
    int rc = diff_pair(p, &df);
    if (rc == 0) {
        if (c->j)
            json_pair(p, &df, c->j);
        else
            text_pair(p, c->s, &df, c->o->top_n > 0 ? c->o->top_n : 10, c->out);
        c->pairs++;
    }
    free(df.v);
    return rc;
}

/* fn over every process of the session c->s[0].dir with allocation data;
 * stops at the first error. */
static int each_with_alloc(out_ctx_t *c, int (*fn)(out_ctx_t *c, pid_t pid, const at_alloc_data_t *d))
{
    at_proc_list_t l;
    int rc = at_proc_list_load(c->s[0].dir, &l);
    if (rc < 0)
        return rc;
    for (size_t i = 0; rc == 0 && i < l.count; i++) {
        at_alloc_data_t d;
        if (at_alloc_load(c->s[0].dir, l.procs[i].key, &d) < 0)
            continue;
        rc = fn(c, l.procs[i].pid, &d);
        at_alloc_free(&d);
    }
    at_proc_list_free(&l);
    return rc;
}

/* One session: each process with both snapshots. */
static int diff_of(out_ctx_t *c, pid_t pid, const at_alloc_data_t *d)
{
    pair_t p = { pid, { d, d }, { find_snap(d, c->s[0].name), find_snap(d, c->s[1].name) } };
    return p.sn[0] && p.sn[1] ? emit(c, &p) : 0;
}

static int same_session(out_ctx_t *c)
{
    return each_with_alloc(c, diff_of);
}

/* The first process of dir whose allocations have snapshot name. */
static int first_with(const side_t *s, at_alloc_data_t *d, pid_t *pid)
{
    at_proc_list_t l;
    int rc = at_proc_list_load(s->dir, &l), found = 0;
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < l.count && !found; i++) {
        if (at_alloc_load(s->dir, l.procs[i].key, d) < 0)
            continue;
        found = find_snap(d, s->name) != NULL;
        *pid = l.procs[i].pid;
        if (!found)
            at_alloc_free(d);
    }
    at_proc_list_free(&l);
    return found ? 0 : -ENOENT;
}

static int two_sessions(out_ctx_t *c)
{
    at_alloc_data_t d[2];
    pid_t pid[2];
    int rc = first_with(&c->s[0], &d[0], &pid[0]);
    if (rc < 0)
        return rc == -ENOENT ? 0 : rc;
    rc = first_with(&c->s[1], &d[1], &pid[1]);
    if (rc == 0) {
        pair_t p = { pid[1], { &d[0], &d[1] }, { find_snap(&d[0], c->s[0].name), find_snap(&d[1], c->s[1].name) } };
        rc = emit(c, &p);
        at_alloc_free(&d[1]);
    }
    at_alloc_free(&d[0]);
    return rc == -ENOENT ? 0 : rc;
}

static int run_diff(out_ctx_t *c)
{
    return strcmp(c->s[0].dir, c->s[1].dir) ? two_sessions(c) : same_session(c);
}

/* Open the output (--json FILE, else stdout), and with JSON put body's
 * processes in {"schema", KEY: {FIELDS..., "processes": [...]}}; fields
 * are name, value pairs, NULL-terminated.  body's status; *pairs: the
 * processes it wrote. */
static int in_document(const at_options_t *o, const side_t *s, const char *key, const char *const *fields,
                       int (*body)(out_ctx_t *c), int *pairs)
{
    int json = o->format == AT_FMT_JSON || o->json_file;
    FILE *out = o->json_file && strcmp(o->json_file, "-") ? fopen(o->json_file, "w") : stdout;
    if (!out)
        return -errno;
    at_json_t j;
    out_ctx_t c = { .o = o, .s = s, .out = out, .j = json ? &j : NULL };
    if (json) {
        at_json_init(&j, out, 1);
        at_json_obj_begin(&j);
        at_json_kv_str(&j, "schema", "archtrace/1");
        at_json_key(&j, key);
        at_json_obj_begin(&j);
        for (int i = 0; fields[i]; i += 2)
            at_json_kv_str(&j, fields[i], fields[i + 1]);
        at_json_key(&j, "processes");
        at_json_arr_begin(&j);
    }
    int rc = body(&c);
    if (json) {
        at_json_arr_end(&j);
        at_json_obj_end(&j);
        at_json_obj_end(&j);
        fputc('\n', out);
    }
    if (out != stdout)
        fclose(out);
    *pairs = c.pairs;
    return rc;
}

int at_alloc_diff(const at_options_t *o)
{
    side_t s[2];
    int pairs = 0;
    parse_side(o->diff_a, o->report_dir, &s[0]);
    parse_side(o->diff_b, o->report_dir, &s[1]);
    const char *fields[] = { "a", o->diff_a, "b", o->diff_b, NULL };
    int rc = in_document(o, s, "diff", fields, run_diff, &pairs);
    if (rc == 0 && !pairs) {
        fprintf(stderr, "archtrace: --diff: no process has both a snapshot '%s' (%s) and '%s' (%s)\n", s[0].name,
                s[0].dir, s[1].name, s[1].dir);
        return -ENOENT;
    }
    return rc;
}

/* ---- leaks: live at exit, not live at a marker ----------------------------- */

static int cmp_growth(const void *a, const void *b)
{
    const diff_row_t *x = a, *y = b;
    int64_t gx = x->size[1] - x->size[0], gy = y->size[1] - y->size[0];
    if (gx != gy)
        return gx < gy ? 1 : -1;
    int c = strcmp(x->file, y->file);
    return c ? c : (x->line > y->line) - (x->line < y->line);
}

/* The lines of kind gkind that grew from sn0 (NULL: nothing) to sn1. */
static int grown(const at_alloc_data_t *d, const at_alloc_snap_t *sn0, const at_alloc_snap_t *sn1, unsigned gkind,
                 diff_t *df)
{
    memset(df, 0, sizeof *df);
    int rc = add_snap(df, d, sn0, 0, gkind);
    if (rc == 0)
        rc = add_snap(df, d, sn1, 1, gkind);
    size_t k = 0;
    for (size_t i = 0; rc == 0 && i < df->n; i++)
        if (df->v[i].size[1] > df->v[i].size[0])
            df->v[k++] = df->v[i];
    df->n = rc == 0 ? k : 0;
    qsort(df->v, df->n, sizeof *df->v, cmp_growth);
    return rc;
}

static void text_growth(const diff_t *df, int top, FILE *out)
{
    char size[32];
    for (size_t i = 0; i < df->n && (int)i < top; i++) {
        const diff_row_t *r = &df->v[i];
        at_text_bytes(size, sizeof size, (double)(r->size[1] - r->size[0]));
        fprintf(out, "    %s:%d: size=+%s, count=%+" PRId64 "\n", r->file, (int)r->line, size, r->count[1] - r->count[0]);
    }
    if (df->n > (size_t)top)
        fprintf(out, "    ... %zu more lines (--top N shows more)\n", df->n - (size_t)top);
    if (!df->n)
        fprintf(out, "    none\n");
}

static void json_growth(const diff_t *df, at_json_t *j, const char *key)
{
    at_json_key(j, key);
    at_json_arr_begin(j);
    for (size_t i = 0; i < df->n; i++) {
        at_json_obj_begin(j);
        at_json_kv_str(j, "file", df->v[i].file);
        at_json_kv_int(j, "line", df->v[i].line);
        at_json_kv_int(j, "size", df->v[i].size[1] - df->v[i].size[0]);
        at_json_kv_int(j, "count", df->v[i].count[1] - df->v[i].count[0]);
        at_json_obj_end(j);
    }
    at_json_arr_end(j);
}

static int leaks_of(out_ctx_t *c, pid_t pid, const at_alloc_data_t *d, const at_alloc_snap_t *since,
                    const at_alloc_snap_t *exit)
{
    diff_t py, native;
    int top = c->o->top_n > 0 ? c->o->top_n : 10;
    int rc = grown(d, since, exit, AT_ALLOC_GROUP_PY, &py);
    if (rc == 0)
        rc = grown(d, since, exit, AT_ALLOC_GROUP_NATIVE, &native);
    if (rc == 0 && c->j) {
        at_json_obj_begin(c->j);
        at_json_kv_int(c->j, "pid", pid);
        at_json_kv_double(c->j, "exit_t_s", snap_t(d, exit));
        json_growth(&py, c->j, "python");
        json_growth(&native, c->j, "native");
        at_json_obj_end(c->j);
    } else if (rc == 0) {
        fprintf(c->out, "leaks, pid %d: live at exit (%.3f s) and not at ", (int)pid, snap_t(d, exit));
        if (since)
            fprintf(c->out, "'%s' (%.3f s)", c->s[0].name, snap_t(d, since));
        else
            fprintf(c->out, "start-up");
        fprintf(c->out, ", net by line, most first\n  Python:\n");
        text_growth(&py, top, c->out);
        fprintf(c->out, "  native (by the Python line that called into native code):\n");
        text_growth(&native, top, c->out);
    }
    c->pairs += rc == 0;
    free(py.v);
    free(native.v);
    return rc;
}

static int leaks_in(out_ctx_t *c, pid_t pid, const at_alloc_data_t *d)
{
    const char *since = c->o->leaks_since;
    const at_alloc_snap_t *from = since ? find_snap(d, since) : NULL, *exit = find_snap(d, "exit");
    return exit && (from || !since) ? leaks_of(c, pid, d, from, exit) : 0;
}

static int leaks_body(out_ctx_t *c)
{
    return each_with_alloc(c, leaks_in);
}

int at_alloc_leaks(const at_options_t *o)
{
    side_t s[1];
    int pairs = 0;
    parse_side(o->leaks_since ? o->leaks_since : "exit", o->report_dir, &s[0]);
    const char *fields[] = { "since", o->leaks_since, NULL };   /* null: since start-up */
    int rc = in_document(o, s, "leaks", fields, leaks_body, &pairs);
    if (rc == 0 && !pairs) {
        fprintf(stderr, "archtrace: --leaks: no process has an exit snapshot%s%s%s (was it killed, or run with "
                "--no-alloc?)\n", o->leaks_since ? " and a snapshot '" : "", o->leaks_since ? o->leaks_since : "",
                o->leaks_since ? "'" : "");
        return -ENOENT;
    }
    return rc;
}
