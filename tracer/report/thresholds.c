/* SPDX-License-Identifier: MIT */
/* thresholds.c - `--fail-if`: parse the limits, read each process's figures, compare (see thresholds.h).
 *
 * Each metric reads its figure from the session model the report uses
 * (session/), so a limit and the report's own table never disagree.
 */
#include "report/thresholds.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "alloc_format.h"
#include "out/textout.h"
#include "session/gil_model.h"
#include "session/imports_model.h"
#include "session/procs.h"
#include "session/session.h"

enum unit { U_BYTES, U_SECONDS, U_NUMBER };

typedef double (*metric_fn)(const char *dir, const at_proc_t *p);

typedef struct metric {
    const char *name;
    enum unit unit;
    metric_fn read;           /* NAN: not measured for this process        */
    const char *what;
} metric_t;

/* ---- the figures -------------------------------------------------------- */

static double alloc_figure(const char *dir, const at_proc_t *p, int native)
{
    at_alloc_data_t d;
    if (at_alloc_load(dir, p->key, &d) < 0)
        return NAN;
    double v = (double)(native ? d.h->native_peak : d.h->py_peak);
    at_alloc_free(&d);
    return v;
}

static double py_peak(const char *dir, const at_proc_t *p)
{
    return alloc_figure(dir, p, 0);
}

static double native_peak(const char *dir, const at_proc_t *p)
{
    return alloc_figure(dir, p, 1);
}

/* Total GIL wait, and the wait ratio as the report states it: the wait
 * over the time threads spent in Python (hold + wait + handoff). */
static double gil_figure(const char *dir, const at_proc_t *p, int ratio)
{
    at_gil_model_t m;
    if (at_gil_model_load(dir, p->key, &m) < 0)
        return NAN;
    uint64_t wait = 0, python = 0;
    for (uint32_t i = 0; i < m.nt; i++) {
        wait += m.t[i].ns[AT_GIL_EV_WAIT];
        python += m.t[i].python_ns;
    }
    at_gil_model_free(&m);
    return ratio ? (python ? (double)wait / (double)python : 0.0) : (double)wait / 1e9;
}

static double gil_wait_ratio(const char *dir, const at_proc_t *p)
{
    return gil_figure(dir, p, 1);
}

static double gil_wait(const char *dir, const at_proc_t *p)
{
    return gil_figure(dir, p, 0);
}

/* Failed imports (found nothing, or raised), and the time in top-level imports. */
static double imports_figure(const char *dir, const at_proc_t *p, int failed)
{
    at_imports_model_t m;
    if (at_imports_model_load(dir, p->key, &m) < 0)
        return NAN;
    double v = 0;
    for (uint32_t i = 0; i < m.v.h->count; i++) {
        const at_imp_record_t *r = &m.v.rec[i];
        int done = (r->flags & AT_IMP_F_DONE) != 0;
        if (failed)
            v += done && !(r->flags & AT_IMP_F_OK);
        else if (r->depth == 0 && done)
            v += (double)(r->end_ns - r->start_ns) / 1e9;
    }
    at_imports_model_free(&m);
    return v;
}

static double imports_failed(const char *dir, const at_proc_t *p)
{
    return imports_figure(dir, p, 1);
}

static double import_time(const char *dir, const at_proc_t *p)
{
    return imports_figure(dir, p, 0);
}

static double wall(const char *dir, const at_proc_t *p)
{
    (void)dir;
    double w = at_proc_wall_s(p);
    return w < 0 ? NAN : w;
}

static const metric_t metrics[] = {
    { "peak", U_BYTES, py_peak, "Python allocators' peak of live bytes" },
    { "native_peak", U_BYTES, native_peak, "native (libc malloc) peak of live bytes" },
    { "gil_wait_ratio", U_NUMBER, gil_wait_ratio, "GIL wait over the time threads were in Python" },
    { "gil_wait", U_SECONDS, gil_wait, "GIL wait, all threads" },
    { "imports_failed", U_NUMBER, imports_failed, "imports that failed" },
    { "import_time", U_SECONDS, import_time, "time in top-level imports" },
    { "wall", U_SECONDS, wall, "the process's wall time" },
};
#define NMETRICS (int)(sizeof metrics / sizeof *metrics)

const char *at_threshold_metrics(void)
{
    return "peak, native_peak, gil_wait_ratio, gil_wait, imports_failed, import_time, wall";
}

/* ---- parsing ------------------------------------------------------------ */

static int fail(char *err, size_t n, const char *expr, const char *why)
{
    snprintf(err, n, "--fail-if '%s': %s", expr, why);
    return -EINVAL;
}

/* The factor of a unit suffix for the metric's kind; 0 when it is not one. */
static double unit_factor(const char *u, enum unit kind)
{
    static const struct { const char *name; enum unit kind; double factor; } units[] = {
        { "", U_BYTES, 1 },  { "B", U_BYTES, 1 },       { "KiB", U_BYTES, 1024.0 },
        { "MiB", U_BYTES, 1048576.0 }, { "GiB", U_BYTES, 1073741824.0 }, { "kB", U_BYTES, 1e3 },
        { "MB", U_BYTES, 1e6 }, { "GB", U_BYTES, 1e9 },  { "", U_SECONDS, 1 },
        { "s", U_SECONDS, 1 }, { "ms", U_SECONDS, 1e-3 }, { "us", U_SECONDS, 1e-6 },
        { "", U_NUMBER, 1 },   { "%", U_NUMBER, 0.01 },
    };
    for (size_t i = 0; i < sizeof units / sizeof *units; i++)
        if (units[i].kind == kind && !strcmp(units[i].name, u))
            return units[i].factor;
    return 0;
}

int at_threshold_parse(const char *expr, at_threshold_t *t, char *err, size_t errlen)
{
    size_t name_len = strcspn(expr, "<>= ");
    memset(t, 0, sizeof *t);
    snprintf(t->text, sizeof t->text, "%s", expr);
    t->metric = -1;
    for (int i = 0; i < NMETRICS; i++)
        if (strlen(metrics[i].name) == name_len && !strncmp(expr, metrics[i].name, name_len))
            t->metric = i;
    if (t->metric < 0) {
        char why[256];
        snprintf(why, sizeof why, "unknown metric (one of: %s)", at_threshold_metrics());
        return fail(err, errlen, expr, why);
    }
    const char *p = expr + name_len;
    while (*p == ' ')
        p++;
    t->op = p[0] == '>' ? (p[1] == '=' ? 'g' : '>') : p[0] == '<' ? (p[1] == '=' ? 'l' : '<') : 0;
    if (!t->op)
        return fail(err, errlen, expr, "needs an operator: > >= < <=");
    p += (t->op == 'g' || t->op == 'l') ? 2 : 1;
    char *end;
    double v = strtod(p, &end);
    if (end == p || !isfinite(v))
        return fail(err, errlen, expr, "needs a number after the operator");
    while (*end == ' ')
        end++;
    double f = unit_factor(end, metrics[t->metric].unit);
    if (f == 0)
        return fail(err, errlen, expr, metrics[t->metric].unit == U_BYTES ? "unit: B, KiB, MiB, GiB, kB, MB or GB"
                                       : metrics[t->metric].unit == U_SECONDS ? "unit: s, ms or us"
                                                                              : "a plain number (or N%)");
    t->limit = v * f;
    return 0;
}

/* ---- checking ------------------------------------------------------------ */

static int crossed(const at_threshold_t *t, double v)
{
    return t->op == '>' ? v > t->limit : t->op == 'g' ? v >= t->limit : t->op == '<' ? v < t->limit : v <= t->limit;
}

static void put_value(FILE *out, enum unit u, double v)
{
    char buf[48];
    if (u == U_BYTES)
        at_text_bytes(buf, sizeof buf, v);
    else if (u == U_SECONDS)
        at_text_duration(buf, sizeof buf, v);
    else
        snprintf(buf, sizeof buf, "%.4g", v);
    fputs(buf, out);
}

/* The first process crossing t: its index, or -1. */
static int first_crossing(const char *dir, const at_proc_list_t *l, const at_threshold_t *t, double *value)
{
    for (size_t i = 0; i < l->count; i++) {
        double v = metrics[t->metric].read(dir, &l->procs[i]);
        if (!isnan(v) && crossed(t, v)) {
            *value = v;
            return (int)i;
        }
    }
    return -1;
}

int at_thresholds_check(const char *dir, const at_threshold_t *t, int n, FILE *out)
{
    at_proc_list_t l;
    int rc = n > 0 ? at_proc_list_load(dir, &l) : 0, hits = 0;
    if (rc < 0 || n <= 0)
        return rc;
    for (int i = 0; i < n; i++) {
        double v = 0;
        int k = first_crossing(dir, &l, &t[i], &v);
        if (k < 0)
            continue;
        hits++;
        fprintf(out, "archtrace: --fail-if '%s' crossed: pid %d has %s = ", t[i].text, (int)l.procs[k].pid,
                metrics[t[i].metric].name);
        put_value(out, metrics[t[i].metric].unit, v);
        fprintf(out, " (%s)\n", metrics[t[i].metric].what);
    }
    at_proc_list_free(&l);
    return hits;
}
