/* SPDX-License-Identifier: MIT */
/* test_memory.c - memory over time: the run sampler's series, its report, plot and trace.
 *
 * tests/fixtures/memory_markers.py keeps ~40 MiB, marks "warm", drops
 * three quarters, marks "trimmed" and allocates again.  The series
 * (<pid>.memory, every 10 ms from outside) must find the same Python peak
 * as the shim's own peak snapshot, at the same moment, and an RSS above
 * it; the SVG draws the three series with both markers; the Chrome trace
 * carries the points as counters; a damaged series file costs only
 * itself.  Unit tests check the thinning that bounds the series.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "session/memory_series.h"
#include "testlib.h"

typedef struct session {
    char *dir;
    char json[1024];
} session_t;

static void record(session_t *s, const char *shape)
{
    char fixture[1024];
    s->dir = at_test_tmpdir();
    snprintf(s->json, sizeof s->json, "%s/r.json", s->dir);
    cr_assert(realpath("tests/fixtures/memory_markers.py", fixture));
    int rc = at_test_shf(NULL, NULL, "'%s' -q -o '%s/s' --json '%s' '%s' '%s'", at_test_archtrace(), s->dir, s->json,
                         at_test_python_or_skip(shape), fixture);
    cr_assert_eq(rc, 0, "%s: archtrace exited %d", shape, rc);
}

static void done(session_t *s)
{
    at_test_shf(NULL, NULL, "rm -rf '%s'", s->dir);
    free(s->dir);
}

/* The series and the shim agree on the peak: its size within 5 %, its
 * time within 50 ms (the series is read every 10 ms, the shim's peak
 * snapshot taken when the next allocation after it shrinks the heap). */
static const char peak_checks[] =
    "(lambda P: [c for c, ok in ["
    " ('points', len(P['memory']['points']) >= 30),"
    " ('peak size', abs(P['memory']['python_peak']['bytes'] - P['alloc']['peak_bytes']) <= 0.05 * P['alloc']['peak_bytes']),"
    " ('peak time', abs(P['memory']['python_peak']['t_s'] - P['alloc']['peak']['t_s']) <= 0.05),"
    " ('peak near 40 MiB', 38 << 20 <= P['memory']['python_peak']['bytes'] <= 44 << 20),"
    " ('rss above', P['memory']['rss_peak']['bytes'] >= P['memory']['python_peak']['bytes']),"
    " ('times rise', all(a[0] < b[0] for a, b in zip(P['memory']['points'], P['memory']['points'][1:])))"
    "] if not ok])([p for p in d['processes'] if p['memory']][0])";

AT_TEST_EACH_SHAPE(memory, series_agrees_with_the_shims_peak, .timeout = 60)
{
    session_t s;
    record(&s, shape);
    char *failed = at_test_json(s.json, peak_checks);
    char *text = NULL;
    at_test_shf(NULL, &text, "'%s' report '%s/s'", at_test_archtrace(), s.dir);
    done(&s);
    cr_expect_str_eq(failed, "[]", "%s: failed: %s", shape, failed);
    cr_expect(text && strstr(text, "  memory over time: ") && strstr(text, "\n    Python  first "),
              "%s: text:\n%s", shape, text);
    free(failed), free(text);
}

AT_TEST_EACH_SHAPE(memory, plot_and_trace, .timeout = 60)
{
    session_t s;
    record(&s, shape);
    char *svg = NULL, *trace = NULL;
    int rc = at_test_shf(&svg, NULL, "'%s' -q report --format svg --memory-plot '%s/s'", at_test_archtrace(), s.dir);
    int parsed = at_test_shf(NULL, NULL, "'%s' -q report --format svg --memory-plot '%s/s' | python3 -c "
                             "'import sys, xml.etree.ElementTree as E; E.parse(sys.stdin)'", at_test_archtrace(), s.dir);
    at_test_shf(&trace, NULL, "'%s' -q report --format chrome '%s/s' | python3 -c 'import json, sys; "
                "print(sum(1 for e in json.load(sys.stdin)[\"traceEvents\"] if e.get(\"ph\") == \"C\" and "
                "\"rss\" in e.get(\"args\", {})))'", at_test_archtrace(), s.dir);
    int bad = at_test_shf(NULL, NULL, "'%s' -q report --memory-plot '%s/s'", at_test_archtrace(), s.dir);
    done(&s);
    cr_assert_eq(rc, 0, "%s: --memory-plot failed", shape);
    cr_expect_eq(parsed, 0, "%s: the SVG does not parse", shape);
    int lines = 0;
    for (const char *p = svg; (p = strstr(p, "<polyline")); p++)
        lines++;
    cr_expect_eq(lines, 2 + (strstr(svg, "native peak") != NULL), "%s: %d series drawn", shape, lines);
    cr_expect(strstr(svg, ">warm</text>") && strstr(svg, ">trimmed</text>"), "%s: markers missing:\n%s", shape, svg);
    cr_expect(trace && atoi(trace) >= 30, "%s: %s counter events with rss", shape, trace);
    cr_expect_eq(bad, 125, "%s: --memory-plot without --format svg is refused", shape);
    free(svg), free(trace);
}

Test(memory, damaged_series_costs_only_itself, .timeout = 60)
{
    session_t s;
    record(&s, "static");
    char *err = NULL;
    at_test_shf(NULL, NULL, "f=$(ls '%s'/s/*.memory | head -1); head -c 200 \"$f\" > \"$f.cut\" && mv \"$f.cut\" \"$f\"",
                s.dir);
    int rc = at_test_shf(NULL, &err, "'%s' report '%s/s'", at_test_archtrace(), s.dir);
    done(&s);
    cr_expect_eq(rc, 0, "report of a session with a cut .memory: exit %d", rc);
    cr_expect(err && strstr(err, ".memory is damaged: memory over time left out"), "%s", err);
    cr_expect(err && strstr(err, "\nallocations (pid ") && strstr(err, "\nGIL, pid "), "the rest is gone:\n%s", err);
    free(err);
}

/* Past AT_MEM_MAX_POINTS each two neighbours become one: the count stays
 * bounded, the interval doubles, times keep rising, the peak survives. */
Test(memory, thinning_keeps_the_peak)
{
    static at_mem_series_t s;
    for (int i = 0; i < 3 * AT_MEM_MAX_POINTS; i++) {
        int64_t v = i == 5000 ? 1 << 30 : i;
        at_mem_point_t p = { .t_ns = 1000000ull * (uint64_t)i, .py = v, .native = -1, .rss = 2 * v };
        at_mem_series_add(&s, &p);
    }
    cr_expect_leq(s.n, AT_MEM_MAX_POINTS);
    cr_expect_gt(s.n, AT_MEM_MAX_POINTS / 2);
    cr_expect_eq(s.interval_ns, 16 * AT_MEM_EVERY_NS, "thinned when full: at 4096, then each 2048 more (4 times)");
    for (int i = 1; i < s.n; i++)
        cr_expect_gt(s.p[i].t_ns, s.p[i - 1].t_ns);
    int peak = at_mem_series_peak(&s, 0);
    cr_expect_eq(s.p[peak].py, 1 << 30);
    cr_expect_eq(at_mem_series_peak(&s, 1), -1, "native never measured");
}
