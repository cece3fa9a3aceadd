/* SPDX-License-Identifier: MIT */
/* test_alloc_diff.c - `report --diff A B`: two snapshots compared by line, against tracemalloc's compare_to.
 *
 * tests/fixtures/alloc_diff.py marks "before" and "after" right where it
 * takes its own tracemalloc snapshots, changes four lines in between and
 * prints tracemalloc's Snapshot.compare_to for its own file.  Run with
 * --alloc-exact, archtrace's diff of the two markers must list the same
 * lines in the same order with sizes and counts within 5 %; the JSON says
 * the same; two sessions compare by their exit snapshots; an unknown
 * snapshot name is said and exits 8.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"

#define MAX_LINES 16

typedef struct diff_line {
    int line;
    long long size, size_diff, count, count_diff;
} diff_line_t;

/* Lines that changed by less are left out on both sides: the marker
 * fires inside sys.audit, tracemalloc's snapshot a statement later, and
 * the interpreter may allocate a few bytes on the marker's line between
 * the two (48 B on 3.13). */
#define MIN_CHANGE 4096

/* tracemalloc's DIFF lines from the program's stdout. */
static int parse_truth(const char *out, diff_line_t *v)
{
    int n = 0;
    for (const char *p = out; n < MAX_LINES && (p = strstr(p, "DIFF ")); p++)
        if (sscanf(p, "DIFF %d %lld %lld %lld %lld", &v[n].line, &v[n].size, &v[n].size_diff, &v[n].count,
                   &v[n].count_diff) == 5 && (v[n].size_diff >= MIN_CHANGE || v[n].size_diff <= -MIN_CHANGE))
            n++;
    return n;
}

static int close_to(long long a, long long b)
{
    long long d = a > b ? a - b : b - a, m = (a < 0 ? -a : a) > (b < 0 ? -b : b) ? (a < 0 ? -a : a) : (b < 0 ? -b : b);
    return d <= m / 20 + 1;
}

AT_TEST_EACH_SHAPE(alloc_diff, equals_tracemallocs_compare_to, .timeout = 60)
{
    char *dir = at_test_tmpdir(), *out = NULL, *json = NULL, path[1024], fixture[1024];
    cr_assert(realpath("tests/fixtures/alloc_diff.py", fixture));
    int rc = at_test_shf(&out, NULL, "'%s' -q --alloc-exact -o '%s/s' '%s' '%s'", at_test_archtrace(), dir,
                         at_test_python_or_skip(shape), fixture);
    cr_assert_eq(rc, 0, "%s: exit %d", shape, rc);
    diff_line_t truth[MAX_LINES];
    int n = parse_truth(out, truth);
    cr_assert_geq(n, 4, "%s: tracemalloc's diff has %d lines:\n%s", shape, n, out);
    snprintf(path, sizeof path, "%s/d.json", dir);
    rc = at_test_shf(NULL, NULL, "'%s' report --diff before after --json '%s' '%s/s'", at_test_archtrace(), path, dir);
    cr_assert_eq(rc, 0, "%s: report --diff exited %d", shape, rc);
    char expr[2048];
    snprintf(expr, sizeof expr, "' '.join('%%d %%d %%d %%d %%d' %% (l['line'], l['size'], l['size_diff'], l['count'], "
             "l['count_diff']) for l in d['diff']['processes'][0]['lines'] if l['file'] == '%s' and abs(l['size_diff']) >= %d)",
             fixture, MIN_CHANGE);
    json = at_test_json(path, expr);
    cr_assert(json, "%s: no diff in the JSON", shape);
    const char *p = json;
    for (int i = 0; i < n; i++) {
        diff_line_t got;
        int used = 0;
        cr_assert_eq(sscanf(p, "%d %lld %lld %lld %lld%n", &got.line, &got.size, &got.size_diff, &got.count,
                            &got.count_diff, &used), 5, "%s: line %d missing from archtrace's diff: %s", shape, i, json);
        p += used;
        cr_expect_eq(got.line, truth[i].line, "%s: row %d is line %d, tracemalloc's is line %d", shape, i, got.line,
                     truth[i].line);
        cr_expect(close_to(got.size_diff, truth[i].size_diff) && close_to(got.size, truth[i].size),
                  "%s: line %d: size %lld (%+lld), tracemalloc %lld (%+lld)", shape, got.line, got.size, got.size_diff,
                  truth[i].size, truth[i].size_diff);
        cr_expect(close_to(got.count_diff, truth[i].count_diff), "%s: line %d: count %+lld, tracemalloc %+lld", shape,
                  got.line, got.count_diff, truth[i].count_diff);
    }
    char *text = NULL;
    at_test_shf(&text, NULL, "'%s' report --diff before after '%s/s'", at_test_archtrace(), dir);
    cr_expect(text && strstr(text, "'before' (") && strstr(text, "-> 'after' (") && strstr(text, "size=") &&
              strstr(text, ", count="), "%s: text:\n%s", shape, text);
    at_test_shf(NULL, NULL, "rm -rf '%s'", dir);
    free(dir), free(out), free(json), free(text);
}

Test(alloc_diff, two_sessions_and_unknown_names, .timeout = 60)
{
    char *dir = at_test_tmpdir(), *out = NULL, *err = NULL;
    const char *py = at_test_python_or_skip("static");
    at_test_shf(NULL, NULL, "'%s' -q --alloc-exact -o '%s/a' '%s' -c 'x = [bytes(100) for _ in range(1000)]'",
                at_test_archtrace(), dir, py);
    at_test_shf(NULL, NULL, "'%s' -q --alloc-exact -o '%s/b' '%s' -c 'x = [bytes(100) for _ in range(9000)]'",
                at_test_archtrace(), dir, py);
    int rc = at_test_shf(&out, NULL, "'%s' report --diff '%s/a' '%s/b'", at_test_archtrace(), dir, dir);
    cr_expect_eq(rc, 0, "two sessions: exit %d", rc);
    cr_expect(out && strstr(out, "<string>:1: size=") && strstr(out, " (+8000), average="), "%s", out);
    rc = at_test_shf(NULL, &err, "'%s' report --diff nope exit '%s/a'", at_test_archtrace(), dir);
    cr_expect_eq(rc, 8, "unknown snapshot: exit %d", rc);
    cr_expect(err && strstr(err, "no process has both a snapshot 'nope'"), "%s", err);
    at_test_shf(NULL, NULL, "rm -rf '%s'", dir);
    free(dir), free(out), free(err);
}

/* `report --leaks-since warm`: the leaking line is the first Python line,
 * with about the bytes it kept (5000 strs of ~300 B); sampled (the
 * default) as well as exact; JSON says the same. */
AT_TEST_EACH_SHAPE(alloc_diff, leaks_find_the_leaking_line_first, .timeout = 60)
{
    char *dir = at_test_tmpdir(), fixture[1024], *out = NULL, expr[1200], path[1100];
    cr_assert(realpath("tests/fixtures/leak_loop.py", fixture));
    int line = 0;
    char *grep = NULL;
    at_test_shf(&grep, NULL, "grep -n '# LEAK' '%s' | cut -d: -f1", fixture);
    line = grep ? atoi(grep) : 0;
    cr_assert_gt(line, 0);
    for (int exact = 0; exact < 2; exact++) {
        int rc = at_test_shf(NULL, NULL, "rm -rf '%s/s' && '%s' -q %s -o '%s/s' '%s' '%s'", dir, at_test_archtrace(),
                             exact ? "--alloc-exact" : "", dir, at_test_python_or_skip(shape), fixture);
        cr_assert_eq(rc, 0, "%s: exit %d", shape, rc);
        free(out);
        out = NULL;
        rc = at_test_shf(&out, NULL, "'%s' report --leaks-since warm '%s/s'", at_test_archtrace(), dir);
        cr_expect_eq(rc, 0, "%s: --leaks exited %d", shape, rc);
        char want[1200];
        snprintf(want, sizeof want, "  Python:\n    %s:%d: size=+", fixture, line);
        cr_expect(out && strstr(out, "and not at 'warm' (") && strstr(out, want), "%s (%s): the leak is not first:\n%s",
                  shape, exact ? "exact" : "sampled", out);
        snprintf(path, sizeof path, "%s/l.json", dir);
        at_test_shf(NULL, NULL, "'%s' report --leaks-since warm --json '%s' '%s/s'", at_test_archtrace(), path, dir);
        snprintf(expr, sizeof expr, "(lambda l: l['line'] == %d and 1.0e6 <= l['size'] <= 2.0e6)"
                 "(d['leaks']['processes'][0]['python'][0])", line);
        char *ok = at_test_json(path, expr);
        cr_expect(ok && !strcmp(ok, "True"), "%s (%s): JSON: %s", shape, exact ? "exact" : "sampled", ok);
        free(ok);
    }
    at_test_shf(NULL, NULL, "rm -rf '%s'", dir);
    free(dir), free(out), free(grep);
}
