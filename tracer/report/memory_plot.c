/* SPDX-License-Identifier: MIT */
/* memory_plot.c - `--format svg --memory-plot`: memory over time as line charts.
 *
 * One chart per process that has a <pid>.memory series: Python bytes
 * (CPython's allocators), native bytes (libc malloc outside them) and the
 * resident set, against seconds since the shim started; the peak of each
 * marked; the program's `sys.audit("archtrace.snapshot", NAME)` markers
 * (from <pid>.alloc's snapshots) as labelled vertical lines.  Plain SVG,
 * no script: any browser or image viewer shows it offline.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "alloc_format.h"
#include "out/textout.h"
#include "report/flamegraph.h"
#include "report/report_features.h"
#include "session/memory_series.h"
#include "session/session.h"

#define WIDTH   960.0
#define HEIGHT  300.0   /* one chart                                       */
#define LEFT    80.0    /* room for the byte labels                        */
#define RIGHT   20.0
#define TOP     36.0
#define BOTTOM  40.0
#define TICKS   5

static const char *const colours[3] = { "#1f77b4", "#ff7f0e", "#7f7f7f" };
static const char *const names[3] = { "Python", "native", "RSS" };

typedef struct chart {
    const at_mem_series_t *s;
    double y0;                /* top of this chart in the document         */
    double t_max;             /* seconds shown                             */
    double v_max;             /* bytes shown                               */
} chart_t;

static double x_of(const chart_t *c, double t)
{
    t = t < 0 ? 0 : t;   /* a point before the shim started: at the left edge */
    return LEFT + (c->t_max > 0 ? t / c->t_max : 0) * (WIDTH - LEFT - RIGHT);
}

static double y_of(const chart_t *c, double v)
{
    return c->y0 + TOP + (1.0 - (c->v_max > 0 ? v / c->v_max : 0)) * (HEIGHT - TOP - BOTTOM);
}

/* A round step giving about TICKS intervals up to max. */
static double nice_step(double max)
{
    double raw = max / TICKS, mag = pow(10, floor(log10(raw > 0 ? raw : 1)));
    double f = raw / mag;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}

/* The same in the unit the labels use (KiB, MiB, GiB), so a byte axis
 * reads 10 MiB, 20 MiB rather than 19.1 MiB, 38.1 MiB. */
static double nice_bytes_step(double max)
{
    double unit = max >= 1073741824.0 ? 1073741824.0 : max >= 1048576.0 ? 1048576.0 : max >= 1024.0 ? 1024.0 : 1.0;
    return nice_step(max / unit) * unit;
}

static void axes(FILE *out, const chart_t *c)
{
    char label[32];
    double step = nice_bytes_step(c->v_max), tstep = nice_step(c->t_max);
    for (double v = 0; v <= c->v_max * 1.0001; v += step) {
        at_text_bytes(label, sizeof label, v);
        fprintf(out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", LEFT, y_of(c, v),
                WIDTH - RIGHT, y_of(c, v));
        fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", LEFT - 6, y_of(c, v) + 4, label);
    }
    for (double t = 0; t <= c->t_max * 1.0001 && tstep > 0; t += tstep)
        fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%.3g s</text>\n", x_of(c, t),
                c->y0 + HEIGHT - BOTTOM + 16, t);
    fprintf(out, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#999\"/>\n", LEFT,
            c->y0 + TOP, WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
}

static void series_line(FILE *out, const chart_t *c, int k)
{
    int peak = at_mem_series_peak(c->s, k);
    char label[32];
    if (peak < 0)
        return;
    fprintf(out, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"", colours[k]);
    for (int i = 0; i < c->s->n; i++)
        if (at_mem_point_value(&c->s->p[i], k) >= 0)
            fprintf(out, "%.1f,%.1f ", x_of(c, at_mem_series_t_s(c->s, i)), y_of(c, (double)at_mem_point_value(&c->s->p[i], k)));
    fprintf(out, "\"/>\n");
    double px = x_of(c, at_mem_series_t_s(c->s, peak)), py = y_of(c, (double)at_mem_point_value(&c->s->p[peak], k));
    at_text_bytes(label, sizeof label, (double)at_mem_point_value(&c->s->p[peak], k));
    fprintf(out, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"><title>%s peak %s at %.3f s</title></circle>\n", px,
            py, colours[k], names[k], label, at_mem_series_t_s(c->s, peak));
}

/* The archtrace.snapshot markers of the process, as vertical lines. */
static void markers(FILE *out, const chart_t *c, const char *dir, pid_t key)
{
    at_alloc_data_t d;
    if (at_alloc_load(dir, key, &d) < 0)
        return;
    for (uint32_t i = 0; i < d.h->snap_cap; i++) {
        const at_alloc_snap_t *sn = &d.snaps[i];
        uint64_t origin = c->s->origin_ns ? c->s->origin_ns : c->s->p[0].t_ns;
        if (!sn->seq || sn->seq % 2 || sn->kind != AT_ALLOC_SNAP_KIND_MARKER || sn->ns < origin)
            continue;
        double t = (double)(sn->ns - origin) / 1e9, x = x_of(c, t);
        if (t > c->t_max)
            continue;
        fprintf(out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#2ca02c\" stroke-dasharray=\"4 3\"/>\n",
                x, c->y0 + TOP, x, c->y0 + HEIGHT - BOTTOM);
        fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" fill=\"#2ca02c\">", x + 3, c->y0 + TOP + 12);
        at_svg_text(out, sn->label, 40);
        fprintf(out, "</text>\n");
    }
    at_alloc_free(&d);
}

static void legend(FILE *out, const chart_t *c, pid_t key)
{
    char stem[32];
    fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" font-weight=\"bold\">memory over time, pid %s</text>\n", LEFT,
            c->y0 + 20, at_key_label(key, stem, sizeof stem));
    for (int k = 0; k < 3; k++)
        fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" fill=\"%s\">&#9632; %s</text>\n", WIDTH - RIGHT - 260 + k * 90.0,
                c->y0 + 20, colours[k], names[k]);
}

static void chart(FILE *out, const at_mem_series_t *s, double y0, const char *dir, pid_t key)
{
    chart_t c = { .s = s, .y0 = y0, .t_max = at_mem_series_t_s(s, s->n - 1) };
    for (int i = 0; i < s->n; i++)
        for (int k = 0; k < 3; k++)
            if ((double)at_mem_point_value(&s->p[i], k) > c.v_max)
                c.v_max = (double)at_mem_point_value(&s->p[i], k);
    c.v_max = c.v_max > 0 ? ceil(c.v_max / nice_bytes_step(c.v_max)) * nice_bytes_step(c.v_max) : 1;
    c.t_max = c.t_max > 0 ? c.t_max : 1e-3;
    legend(out, &c, key);
    axes(out, &c);
    markers(out, &c, dir, key);
    for (int k = 2; k >= 0; k--)   /* Python on top */
        series_line(out, &c, k);
}

int at_memory_write_svg(const char *dir, const pid_t *keys, size_t n, FILE *out, const at_options_t *o)
{
    (void)o;
    at_mem_series_t *s = malloc(sizeof *s);
    int charts = 0;
    if (!s)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        charts += at_mem_series_load(dir, keys[i], s) == 0 && s->n > 0;
    if (!charts) {
        free(s);
        return -ENOENT;
    }
    fprintf(out, "<?xml version=\"1.0\" standalone=\"no\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" "
                 "width=\"%.0f\" height=\"%.0f\" font-family=\"sans-serif\" font-size=\"12\">\n"
                 "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n", WIDTH, HEIGHT * charts);
    for (size_t i = 0, k = 0; i < n; i++)
        if (at_mem_series_load(dir, keys[i], s) == 0 && s->n > 0)
            chart(out, s, HEIGHT * (double)k++, dir, keys[i]);
    fprintf(out, "</svg>\n");
    free(s);
    return 0;
}
