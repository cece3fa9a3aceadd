/* SPDX-License-Identifier: MIT */
/* report_imports.c - render the imports model (session/imports_model.h):
 * an indented tree (like -X importtime, with finder -> loader on each
 * line where the shim saw them) and a summary of the finders and loaders,
 * JSON, Chrome slices.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "report/chrome.h"
#include "imports_format.h"
#include "report/report_features.h"
#include "session/imports_model.h"
#include "session/session.h"
#include "out/textout.h"

#define TEXT_MAX_LINES 1000   /* tree lines printed; the rest: --json      */
#define MODULE_COLUMN  40     /* indent + module name, padded to this      */
#define COUNT_MAX      64     /* distinct finders/loaders counted          */

/* ---- record helpers ------------------------------------------------- */

typedef struct sv {
    const char *p;                  /* not NUL-terminated                */
    size_t n;
} sv_t;

static sv_t str_of(const at_imp_view_t *v, at_imp_str_t s)
{
    if (s.off == AT_IMP_NONE)
        return (sv_t){ NULL, 0 };
    return (sv_t){ v->arena + s.off, s.len };
}

static int sv_eq(sv_t a, sv_t b)
{
    return a.p && b.p && a.n == b.n && memcmp(a.p, b.p, a.n) == 0;
}

static int done(const at_imp_record_t *r)
{
    return (r->flags & AT_IMP_F_DONE) != 0;
}

static double cum_us(const at_imp_record_t *r)
{
    return done(r) ? (double)(r->end_ns - r->start_ns) / 1e3 : 0;
}

static double self_us(const at_imp_record_t *r)
{
    return done(r) ? (double)(r->end_ns - r->start_ns - r->children_ns) / 1e3 : 0;
}

/* Escaped, bounded output of an untrusted string. */
static size_t put_sv(FILE *out, sv_t s, size_t max)
{
    char buf[AT_IMP_STR_MAX + 1];
    size_t n = s.n < sizeof(buf) - 1 ? s.n : sizeof(buf) - 1;
    if (!s.p)
        return 0;
    memcpy(buf, s.p, n);
    buf[n] = '\0';
    return at_text_put_escaped(out, buf, max);
}

static void json_sv(at_json_t *j, const char *key, sv_t s)
{
    at_json_key(j, key);
    if (s.p)
        at_json_strn(j, s.p, s.n);
    else
        at_json_null(j);
}

/* ---- counting finders and loaders ------------------------------------- */

typedef struct tally {
    sv_t name;
    unsigned count;
    struct tally *sub;              /* path entry finders under a meta finder */
    unsigned n_sub;
} tally_t;

static tally_t *tally_add(tally_t *t, unsigned *n, sv_t name)
{
    for (unsigned i = 0; i < *n; i++)
        if (sv_eq(t[i].name, name)) {
            t[i].count++;
            return &t[i];
        }
    if (*n >= COUNT_MAX)
        return NULL;
    t[*n] = (tally_t){ .name = name, .count = 1 };
    return &t[(*n)++];
}

static int by_count(const void *a, const void *b)
{
    const tally_t *x = a, *y = b;
    return (int)y->count - (int)x->count;
}

static void print_tally(FILE *out, tally_t *t, unsigned n)
{
    qsort(t, n, sizeof(*t), by_count);
    for (unsigned i = 0; i < n; i++) {
        fprintf(out, "%s", i ? ", " : "");
        put_sv(out, t[i].name, 80);
        fprintf(out, " %u", t[i].count);
        if (!t[i].n_sub)
            continue;
        qsort(t[i].sub, t[i].n_sub, sizeof(tally_t), by_count);
        fprintf(out, " (");
        for (unsigned k = 0; k < t[i].n_sub; k++) {
            fprintf(out, "%s", k ? ", " : "");
            put_sv(out, t[i].sub[k].name, 80);
            fprintf(out, " %u", t[i].sub[k].count);
        }
        fprintf(out, ")");
    }
}

static void print_summary(FILE *out, const at_imp_view_t *v)
{
    static tally_t finders[COUNT_MAX], loaders[COUNT_MAX], subs[COUNT_MAX][COUNT_MAX];
    unsigned nf = 0, nl = 0, missing = 0, unknown = 0;
    for (uint32_t i = 0; i < v->h->count; i++) {
        const at_imp_record_t *r = &v->rec[i];
        if (!(r->flags & AT_IMP_F_SPEC)) {
            missing += done(r) && !(r->flags & (AT_IMP_F_OK | AT_IMP_F_FIND_RAISED));
            continue;
        }
        sv_t finder = str_of(v, r->finder);
        tally_t *t = finder.p ? tally_add(finders, &nf, finder) : NULL;
        unknown += !finder.p;
        if (t && !t->sub)
            t->sub = subs[t - finders];
        sv_t pf = str_of(v, r->path_finder);
        if (t && pf.p)
            tally_add(t->sub, &t->n_sub, pf);
        sv_t loader = str_of(v, r->loader);
        if (loader.p)
            tally_add(loaders, &nl, loader);
    }
    fprintf(out, "finders: ");
    print_tally(out, finders, nf);
    if (unknown)
        fprintf(out, "%sunobserved %u", nf ? ", " : "", unknown);
    fprintf(out, "; not found %u\nloaders: ", missing);
    print_tally(out, loaders, nl);
    fputc('\n', out);
    memset(subs, 0, sizeof(subs));
}

/* ---- the tree ----------------------------------------------------------- */

static void print_chain(FILE *out, const at_imp_view_t *v, const at_imp_record_t *r)
{
    sv_t finder = str_of(v, r->finder), pf = str_of(v, r->path_finder);
    sv_t loader = str_of(v, r->loader), error = str_of(v, r->error);
    if (!done(r)) {
        fprintf(out, "unfinished (the process ended inside this import)");
    } else if (r->flags & AT_IMP_F_SPEC) {
        put_sv(out, finder.p ? finder : (sv_t){ "(unobserved)", 12 }, 80);
        if (pf.p) {
            fputc('/', out);
            put_sv(out, pf, 80);
        }
        fprintf(out, " -> ");
        put_sv(out, loader.p ? loader : (sv_t){ "?", 1 }, 80);
        if (r->flags & AT_IMP_F_NAMESPACE)
            fprintf(out, " (namespace)");
    } else if (r->flags & AT_IMP_F_FIND_RAISED) {
        fprintf(out, "finder ");
        put_sv(out, finder.p ? finder : (sv_t){ "?", 1 }, 80);
        fprintf(out, " raised");
    } else if (r->flags & AT_IMP_F_NO_FIND) {
        fprintf(out, "(already in sys.modules)");
    } else if (!(r->flags & AT_IMP_F_OK)) {
        fprintf(out, "not found");
    }
    if (!(r->flags & AT_IMP_F_OK) && error.p && done(r)) {
        fprintf(out, (r->flags & AT_IMP_F_SPEC) ? ", raised " : " (");
        put_sv(out, error, 80);
        fprintf(out, (r->flags & AT_IMP_F_SPEC) ? "" : ")");
    }
    if (!(r->flags & AT_IMP_F_AUDITED))
        fprintf(out, "  [importlib]");
}

/* One import: its times, its module (indented by depth in the tree,
 * not in a flat list) and its chain. */
static void print_line(FILE *out, const at_imp_view_t *v, const at_imp_record_t *r, int flat)
{
    if (done(r))
        fprintf(out, "%10.0f %10.0f  ", self_us(r), cum_us(r));
    else
        fprintf(out, "%10s %10s  ", "-", "-");
    unsigned indent = flat ? 0 : 2u * (r->depth < 60 ? r->depth : 60);
    fprintf(out, "%*s", (int)indent, "");
    size_t w = indent + put_sv(out, str_of(v, r->module), 200);
    fprintf(out, "%*s", w < MODULE_COLUMN ? (int)(MODULE_COLUMN - w) : 1, "");
    print_chain(out, v, r);
    fputc('\n', out);
}

/* Threads in order of their first import. */
static unsigned thread_list(const at_imp_view_t *v, uint32_t *tids, unsigned max)
{
    unsigned n = 0;
    for (uint32_t i = 0; i < v->h->count; i++) {
        unsigned k = 0;
        while (k < n && tids[k] != v->rec[i].tid)
            k++;
        if (k == n && n < max)
            tids[n++] = v->rec[i].tid;
    }
    return n;
}

static void print_tree(FILE *out, const at_imp_view_t *v, pid_t pid)
{
    uint32_t tids[64];
    unsigned nt = thread_list(v, tids, 64), printed = 0;
    fprintf(out, "%10s %10s  %-*s%s\n", "self [us]", "cum [us]", MODULE_COLUMN, "module",
            "finder[/path entry finder] -> loader");
    for (unsigned t = 0; t < nt && printed < TEXT_MAX_LINES; t++) {
        if (nt > 1)
            fprintf(out, "thread %u%s:\n", tids[t], tids[t] == (uint32_t)pid ? " (main)" : "");
        for (uint32_t i = 0; i < v->h->count && printed < TEXT_MAX_LINES; i++) {
            if (v->rec[i].tid != tids[t])
                continue;
            print_line(out, v, &v->rec[i], 0);
            printed++;
        }
    }
    if (printed < v->h->count)
        fprintf(out, "... %u more imports not shown: see --json\n", v->h->count - printed);
}

static int by_cum_desc(const void *a, const void *b)
{
    double x = cum_us(*(const at_imp_record_t *const *)a), y = cum_us(*(const at_imp_record_t *const *)b);
    return (x < y) - (x > y);
}

static void print_slowest(FILE *out, const at_imp_view_t *v, int top_n)
{
    const at_imp_record_t **top = malloc(sizeof(*top) * (v->h->count + 1));
    unsigned n = 0;
    for (uint32_t i = 0; top && i < v->h->count; i++)
        if (v->rec[i].depth == 0 && done(&v->rec[i]))
            top[n++] = &v->rec[i];
    if (!top || !n) {
        free(top);
        return;
    }
    qsort(top, n, sizeof(*top), by_cum_desc);
    fprintf(out, "slowest top-level imports: ");
    for (unsigned i = 0; i < n && (int)i < (top_n > 0 ? top_n : 5); i++) {
        char d[32];
        at_text_duration(d, sizeof(d), cum_us(top[i]) / 1e6);
        fprintf(out, "%s", i ? ", " : "");
        put_sv(out, str_of(v, top[i]->module), 80);
        fprintf(out, " %s", d);
    }
    fputc('\n', out);
    free(top);
}

static void print_heading(FILE *out, const at_imports_model_t *m, pid_t pid)
{
    const at_imp_view_t *v = &m->v;
    unsigned ok = 0, failed = 0, open = 0, tl_threads;
    double top_us = 0;
    uint32_t tids[64];
    for (uint32_t i = 0; i < v->h->count; i++) {
        const at_imp_record_t *r = &v->rec[i];
        ok += done(r) && (r->flags & AT_IMP_F_OK);
        failed += done(r) && !(r->flags & AT_IMP_F_OK);
        open += !done(r);
        top_us += r->depth == 0 ? cum_us(r) : 0;
    }
    tl_threads = thread_list(v, tids, 64);
    char title[64], d[32];
    char label[48];
    snprintf(title, sizeof(title), "imports (pid %s)", at_key_label(pid, label, sizeof label));
    at_text_heading(out, title);
    at_text_duration(d, sizeof(d), top_us / 1e6);
    fprintf(out, "%u import attempt%s: %u found, %u failed%s on %u thread%s, %s in top-level imports",
            v->h->count, v->h->count == 1 ? "" : "s", ok, failed, open ? ", some unfinished," : "", tl_threads,
            tl_threads == 1 ? "" : "s", d);
    if (v->h->start_phase == AT_IMP_PHASE_RUN)
        fprintf(out, " (start-up imports not seen)");
    fputc('\n', out);
    if (!m->chains)
        fprintf(out, "(%s: module loads, their times and nesting; finders and loaders are not seen)\n", m->source);
    if (v->h->dropped_records || v->h->dropped_strings)
        fprintf(out, "warning: %llu imports and %llu strings dropped (tables full)\n",
                (unsigned long long)v->h->dropped_records, (unsigned long long)v->h->dropped_strings);
}

/* A finder or loader of the standard machinery (the interpreter's own
 * importers and the path finder's file finder and file loaders). */
static int standard(sv_t name)
{
    static const char *const names[] = {
        "BuiltinImporter", "FrozenImporter", "PathFinder", "FileFinder", "SourceFileLoader",
        "SourcelessFileLoader", "ExtensionFileLoader", "NamespaceLoader", "_NamespaceLoader",
    };
    for (size_t i = 0; name.p && i < sizeof names / sizeof *names; i++)
        if (strlen(names[i]) == name.n && !memcmp(names[i], name.p, name.n))
            return 1;
    return !name.p;
}

/* Worth a line in the abridged report: an import that failed, or one
 * that a finder or loader outside the standard machinery served. */
static int unusual(const at_imp_view_t *v, const at_imp_record_t *r)
{
    if (done(r) && !(r->flags & AT_IMP_F_OK))
        return 1;
    return (r->flags & AT_IMP_F_SPEC) && (!standard(str_of(v, r->finder)) || !standard(str_of(v, r->path_finder)) ||
                                          !standard(str_of(v, r->loader)));
}

static int by_depth(const void *a, const void *b)
{
    const at_imp_record_t *x = *(const at_imp_record_t *const *)a, *y = *(const at_imp_record_t *const *)b;
    if (x->depth != y->depth)
        return x->depth < y->depth ? -1 : 1;
    return (x > y) - (x < y);   /* then in the order they started */
}

/* The abridged list: failed and unusual imports, the program's own
 * (shallowest) first, top_n of each kind. */
static void print_unusual(FILE *out, const at_imp_view_t *v, int top_n)
{
    const at_imp_record_t **list = malloc(sizeof *list * (v->h->count + 1));
    unsigned n = 0, failed = 0, custom = 0, shown_f = 0, shown_c = 0;
    for (uint32_t i = 0; list && i < v->h->count; i++)
        if (unusual(v, &v->rec[i]))
            list[n++] = &v->rec[i];
    if (list)
        qsort(list, n, sizeof *list, by_depth);
    for (unsigned i = 0; i < n; i++) {
        int is_failed = done(list[i]) && !(list[i]->flags & AT_IMP_F_OK);
        unsigned *count = is_failed ? &failed : &custom, *shown = is_failed ? &shown_f : &shown_c;
        if (++*count > (unsigned)top_n)
            continue;
        if (!shown_f && !shown_c)
            fprintf(out, "failed imports, and imports a finder or loader other than the standard ones served:\n"
                    "%10s %10s  %-*s%s\n", "self [us]", "cum [us]", MODULE_COLUMN, "module",
                    "finder[/path entry finder] -> loader");
        ++*shown;
        print_line(out, v, list[i], 1);
    }
    if (failed > shown_f || custom > shown_c)
        fprintf(out, "... %u more failed and %u more unusual imports (--top N shows more)\n", failed - shown_f,
                custom - shown_c);
    free(list);
}

int at_imports_report_text(const char *dir, pid_t pid, FILE *out, const at_options_t *o)
{
    at_imports_model_t m;
    int rc = at_imports_model_load(dir, pid, &m);
    if (rc < 0)
        return rc;
    fputc('\n', out);
    print_heading(out, &m, pid);
    if (m.v.h->count) {
        int top_n = o && o->top_n > 0 ? o->top_n : 5;
        if (o && o->full)
            print_tree(out, &m.v, pid);
        else
            print_unusual(out, &m.v, top_n);
        if (m.chains)
            print_summary(out, &m.v);
        print_slowest(out, &m.v, top_n);
        if (!(o && o->full))
            fprintf(out, "(the whole import tree of %u imports: --full, or --format json)\n", m.v.h->count);
    }
    at_imports_model_free(&m);
    return 0;
}

/* ---- JSON ----------------------------------------------------------------- */

static void json_consulted(at_json_t *j, sv_t list)
{
    at_json_key(j, "consulted");
    at_json_arr_begin(j);
    for (size_t start = 0, i = 0; list.p && i <= list.n; i++) {
        if (i < list.n && list.p[i] != '\0')
            continue;
        at_json_strn(j, list.p + start, i - start);
        start = i + 1;
    }
    at_json_arr_end(j);
}

static void json_times(at_json_t *j, const at_imp_view_t *v, const at_imp_record_t *r)
{
    if (!done(r)) {
        at_json_key(j, "self_us");
        at_json_null(j);
        at_json_key(j, "cumulative_us");
        at_json_null(j);
    } else {
        at_json_kv_double(j, "self_us", self_us(r));
        at_json_kv_double(j, "cumulative_us", cum_us(r));
    }
    at_json_kv_double(j, "find_us", (double)r->find_ns / 1e3);
    at_json_kv_double(j, "start_us",
                      r->start_ns >= v->h->t0_ns ? (double)(r->start_ns - v->h->t0_ns) / 1e3 : 0);
}

static void json_record(at_json_t *j, const at_imports_model_t *m, uint32_t i)
{
    const at_imp_view_t *v = &m->v;
    const at_imp_record_t *r = &v->rec[i];
    at_json_obj_begin(j);
    json_sv(j, "module", str_of(v, r->module));
    at_json_kv_str(j, "source", m->source);
    json_sv(j, "parent", str_of(v, r->parent));
    json_sv(j, "finder", str_of(v, r->finder));
    json_sv(j, "path_finder", str_of(v, r->path_finder));
    json_sv(j, "path_entry", str_of(v, r->path_entry));
    json_sv(j, "loader", str_of(v, r->loader));
    json_sv(j, "origin", str_of(v, r->origin));
    at_json_kv_bool(j, "found", done(r) && (r->flags & AT_IMP_F_OK));
    json_consulted(j, str_of(v, r->consulted));
    at_json_kv_int(j, "n_consulted", r->n_consulted);
    json_times(j, v, r);
    at_json_kv_int(j, "depth", r->depth);
    at_json_kv_uint(j, "thread", r->tid);
    at_json_kv_int(j, "index", i);
    at_json_key(j, "enclosing");
    if (r->enclosing == AT_IMP_NONE)
        at_json_null(j);
    else
        at_json_int(j, r->enclosing);
    at_json_kv_str(j, "via", (r->flags & AT_IMP_F_AUDITED) ? "import" : "importlib");
    json_sv(j, "error", done(r) ? str_of(v, r->error) : (sv_t){ NULL, 0 });
    at_json_kv_bool(j, "complete", done(r));
    at_json_kv_bool(j, "namespace", (r->flags & AT_IMP_F_NAMESPACE) != 0);
    at_json_kv_bool(j, "already_loaded", (r->flags & AT_IMP_F_NO_FIND) != 0);
    at_json_kv_bool(j, "observed", !(r->flags & AT_IMP_F_UNOBSERVED));
    at_json_obj_end(j);
}

int at_imports_report_json(const char *dir, pid_t pid, at_json_t *j, const at_options_t *o)
{
    (void)o;
    at_imports_model_t m;
    int rc = at_imports_model_load(dir, pid, &m);
    if (rc < 0)
        return rc;
    at_json_arr_begin(j);
    for (uint32_t i = 0; i < m.v.h->count; i++)
        json_record(j, &m, i);
    at_json_arr_end(j);
    at_imports_model_free(&m);
    return 0;
}

/* ---- Chrome trace ----------------------------------------------------------- */

/* Microseconds with the nanoseconds kept: %.6g would round a monotonic
 * timestamp to the millisecond. */
static void kv_us(at_json_t *j, const char *key, uint64_t ns)
{
    at_json_key(j, key);
    j->after_key = 0;
    fprintf(j->out, "%llu.%03u", (unsigned long long)(ns / 1000), (unsigned)(ns % 1000));
}

/* One complete ("X") slice per finished import; nesting follows from the
 * times.  ts is CLOCK_MONOTONIC in microseconds, like the other features. */
/* Imports get a track of their own next to their thread's: on the
 * thread's track they would overlap its GIL slices without nesting. */
#define IMPORT_TRACK_BASE 0x40000000u   /* above any Linux tid (pid_max <= 2^22) */

static void chrome_import_tracks(at_json_t *j, const at_imp_view_t *v, pid_t pid)
{
    uint32_t tids[64];
    unsigned nt = thread_list(v, tids, 64);
    for (unsigned t = 0; t < nt; t++) {
        char name[64];
        snprintf(name, sizeof name, "imports (thread %u)", tids[t]);
        at_chrome_track_name(j, pid, IMPORT_TRACK_BASE + tids[t], name);
    }
}

int at_imports_chrome(const char *dir, pid_t pid, at_json_t *j, const at_options_t *o)
{
    (void)o;
    at_imports_model_t m;
    int rc = at_imports_model_load(dir, pid, &m);
    if (rc < 0)
        return rc;
    const at_imp_view_t v = m.v;
    chrome_import_tracks(j, &v, pid);
    for (uint32_t i = 0; i < v.h->count; i++) {
        const at_imp_record_t *r = &v.rec[i];
        if (!done(r))
            continue;
        at_json_obj_begin(j);
        json_sv(j, "name", str_of(&v, r->module));
        at_json_kv_str(j, "cat", "import");
        at_json_kv_str(j, "ph", "X");
        kv_us(j, "ts", r->start_ns);
        kv_us(j, "dur", r->end_ns - r->start_ns);
        at_json_kv_int(j, "pid", pid);
        at_json_kv_uint(j, "tid", IMPORT_TRACK_BASE + r->tid);
        at_json_key(j, "args");
        at_json_obj_begin(j);
        at_json_kv_uint(j, "thread", r->tid);
        at_json_kv_str(j, "source", m.source);
        json_sv(j, "finder", str_of(&v, r->finder));
        json_sv(j, "path_finder", str_of(&v, r->path_finder));
        json_sv(j, "loader", str_of(&v, r->loader));
        json_sv(j, "origin", str_of(&v, r->origin));
        json_sv(j, "parent", str_of(&v, r->parent));
        at_json_kv_bool(j, "found", (r->flags & AT_IMP_F_OK) != 0);
        at_json_kv_double(j, "self_us", self_us(r));
        at_json_obj_end(j);
        at_json_obj_end(j);
    }
    at_imports_model_free(&m);
    return 0;
}
