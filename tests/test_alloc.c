/* SPDX-License-Identifier: MIT */
/* test_alloc.c - allocation tracking end to end, on both 3.11 build shapes
 * (and on 3.12 and 3.13 for the comparisons with tracemalloc):
 * archtrace's snapshot at a program's marker against tracemalloc's top 5
 * taken in the same process (lab04 and a fixture of known sizes), the
 * peak, native memory, fork, threads, SIGKILL, tracemalloc stopping under
 * us, sampling and deep stacks.  The comparisons live in
 * tests/fixtures/alloc_check.py (it prints what differs). */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "alloc_format.h"
#include "testlib.h"

typedef struct run {
    char *dir;    /* temp dir: r.json, out, session/            */
    char *json;
    char *out;    /* the program's stdout                       */
    char *err;    /* archtrace's and the program's stderr       */
    int rc;
} run_t;

/* archtrace with only allocation tracking on, --json, stdout kept. */
static run_t trace(const char *opts, const char *py, const char *args)
{
    run_t r = { .dir = at_test_tmpdir() };
    cr_assert_not_null(r.dir, "temp dir");
    cr_assert(asprintf(&r.json, "%s/r.json", r.dir) > 0 && asprintf(&r.out, "%s/out", r.dir) > 0, "paths");
    r.rc = at_test_shf(NULL, &r.err, "%s -q --no-gil --no-imports --no-sample %s --json %s %s %s >%s",
                       at_test_archtrace(), opts, r.json, py, args, r.out);
    return r;
}

/* alloc_check.py CHECK REPORT STDOUT ARGS: what is "CHECK [ARGS]". */
static void check(const run_t *r, const char *what)
{
    char *msg = NULL, *err = NULL;
    int name = (int)strcspn(what, " ");
    int rc = at_test_shf(&msg, &err, "python3 tests/fixtures/alloc_check.py %.*s %s %s %s", name, what,
                         r->json, r->out, what + name);
    cr_assert_eq(rc, 0, "check '%s' failed: %s%s\n(archtrace exit %d, stderr: %.2000s)", what, msg, err,
                 r->rc, r->err);
    free(msg), free(err);
}

static void done(run_t *r)
{
    at_test_shf(NULL, NULL, "rm -rf '%s'", r->dir);
    free(r->dir), free(r->json), free(r->out), free(r->err);
}

/* ---- the same five sites as tracemalloc ------------------------------- */

static void sites_known(const char *shape)
{
    run_t r = trace("--alloc-exact", at_test_python_or_skip(shape), "tests/fixtures/alloc_sites.py");
    cr_assert_eq(r.rc, 0, "exit 0, got %d: %s", r.rc, r.err);
    check(&r, "top5 sites EXPECT 0.05");
    check(&r, "peak EXPECT");
    done(&r);
}

AT_TEST_EACH_SHAPE(alloc, known_sites, .timeout = 60) { sites_known(shape); }

static void sites_tracemalloc(const char *shape, const char *pyopts)
{
    char args[256];
    snprintf(args, sizeof(args), "%s tests/fixtures/alloc_sites.py --tracemalloc", pyopts);
    run_t r = trace("--alloc-exact", at_test_python_or_skip(shape), args);
    cr_assert_eq(r.rc, 0, "exit 0, got %d: %s", r.rc, r.err);
    check(&r, "top5 sites TOP5 0.05");
    check(&r, "peak TOP5");
    done(&r);
}

/* tracemalloc.start() after our hooks: it wraps us, we re-wrap it. */
AT_TEST_EACH_SHAPE(alloc, tracemalloc_started_later, .timeout = 60) { sites_tracemalloc(shape, ""); }
/* -X tracemalloc: it is below our hooks from the start. */
AT_TEST_EACH_SHAPE(alloc, tracemalloc_from_start, .timeout = 60) { sites_tracemalloc(shape, "-X tracemalloc=1"); }

/* Lab 04 for a shape.  The lab teaches 3.11 and refuses other versions:
 * on 3.12 and 3.13 a fixture runs its top-five section (same lines, same
 * marker). */
static const char *lab04_prog(const char *shape)
{
    if (access("labs/lab04.py", R_OK) != 0)
        cr_skip_test("labs/lab04.py is not there yet");
    return strcmp(at_test_shape_version(shape), "3.11.") ? "tests/fixtures/lab04_top5.py" : "labs/lab04.py";
}

static void lab04(const char *shape)
{
    run_t r = trace("--alloc-exact", at_test_python_or_skip(shape), lab04_prog(shape));
    cr_assert_eq(r.rc, 0, "lab04 exits 0 under archtrace, got %d: %s", r.rc, r.err);
    check(&r, "top5 lab04 TOP5 0.05");
    check(&r, "peak TOP5");
    done(&r);
}

AT_TEST_EACH_SHAPE(alloc, lab04_top5, .timeout = 90) { lab04(shape); }

static void tracemalloc_stopped(const char *shape)
{
    run_t r = trace("--alloc-exact", at_test_python_or_skip(shape), "-X tracemalloc=1 tests/fixtures/alloc_tm_stop.py");
    cr_assert_eq(r.rc, 0, "exit 0, got %d: %s", r.rc, r.err);
    check(&r, "after after AFTER");
    done(&r);
}

AT_TEST_EACH_SHAPE(alloc, hooks_back_after_tracemalloc_stop, .timeout = 60) { tracemalloc_stopped(shape); }

/* ---- native memory, fork, threads, kill -------------------------------- */

static void native(const char *shape)
{
    run_t r = trace("--alloc-exact", at_test_python_or_skip(shape), "tests/fixtures/alloc_native.py");
    cr_assert_eq(r.rc, 0, "exit 0, got %d: %s", r.rc, r.err);
    check(&r, "native native");
    done(&r);
}

AT_TEST_EACH_SHAPE(alloc, native_on_calling_line, .timeout = 60) { native(shape); }

static void forked(const char *shape)
{
    run_t r = trace("--alloc-exact", at_test_python_or_skip(shape), "tests/fixtures/alloc_fork.py");
    cr_assert_eq(r.rc, 0, "exit 0, got %d: %s", r.rc, r.err);
    check(&r, "fork");
    done(&r);
}

AT_TEST_EACH_SHAPE(alloc, fork_child_has_its_own_counts, .timeout = 60) { forked(shape); }

static void threads(const char *shape)
{
    run_t r = trace("--alloc-exact", at_test_python_or_skip(shape), "tests/fixtures/alloc_threads.py");
    cr_assert_eq(r.rc, 0, "exit 0, got %d: %s", r.rc, r.err);
    check(&r, "threads");
    done(&r);
}

AT_TEST_EACH_SHAPE(alloc, threads_without_gil, .timeout = 60) { threads(shape); }

static void killed(const char *shape)
{
    run_t r = trace("--alloc-exact", at_test_python_or_skip(shape), "tests/fixtures/alloc_kill.py");
    cr_assert_eq(r.rc, 128 + 9, "the target's SIGKILL is archtrace's status, got %d: %s", r.rc, r.err);
    check(&r, "kill");
    done(&r);
}

AT_TEST_EACH_SHAPE(alloc, sigkill_keeps_counts, .timeout = 60) { killed(shape); }

/* ---- modes -------------------------------------------------------------- */

static void sampled(const char *shape)
{
    const char *py = at_test_python_or_skip(shape);
    run_t exact = trace("--alloc-exact", py, "tests/fixtures/alloc_bench.py");
    run_t samp = trace("--alloc-sample 1024", py, "tests/fixtures/alloc_bench.py");
    cr_assert_eq(exact.rc, 0, "exact run: %s", exact.err);
    cr_assert_eq(samp.rc, 0, "sampled run: %s", samp.err);
    char *mode = at_test_json(samp.json, "d['processes'][0]['alloc']['mode']");
    cr_assert_str_eq(mode, "sampled", "the sampled run says so");
    char what[1024];
    snprintf(what, sizeof(what), "sample %s", exact.json);
    check(&samp, what);
    /* the table holds the sampled blocks only, not an entry per granule */
    const char *q = "d['processes'][0]['alloc']['overhead']['shadow_resident_bytes']";
    double exact_tables = at_test_json_num(exact.json, q), samp_tables = at_test_json_num(samp.json, q);
    cr_assert(exact_tables > 0 && samp_tables > 0 && samp_tables < exact_tables / 3,
              "sampled mode's tables are under a third of exact mode's: %.0f vs %.0f bytes", samp_tables,
              exact_tables);
    free(mode);
    done(&exact), done(&samp);
}

AT_TEST_EACH_SHAPE(alloc, sampled_top5_like_exact, .timeout = 90) { sampled(shape); }

/* A thread's first counted block is sampled only as often as any other:
 * 300 threads, each started to make a few blocks, once added ~16 KiB (a
 * mean gap) per thread to the sampled totals, twice the real bytes.  The
 * default sampling's estimate of all bytes allocated stays within 35 %
 * of the exact count (~300 samples: one standard error is ~6 %). */
static void thread_starts(const char *shape)
{
    const char *py = at_test_python_or_skip(shape);
    run_t exact = trace("--alloc-exact", py, "tests/fixtures/alloc_thread_starts.py");
    run_t samp = trace("", py, "tests/fixtures/alloc_thread_starts.py");
    cr_assert_eq(exact.rc, 0, "exact run: %s", exact.err);
    cr_assert_eq(samp.rc, 0, "sampled run: %s", samp.err);
    const char *q = "d['processes'][0]['alloc']['total_bytes'] + d['processes'][0]['alloc']['native']['total_bytes']";
    double e = at_test_json_num(exact.json, q), s = at_test_json_num(samp.json, q);
    cr_assert_gt(e, 1e6, "%s: the exact run counted the threads' allocations: %.0f bytes", shape, e);
    cr_assert(s > 0.65 * e && s < 1.35 * e, "%s: sampled total %.0f bytes, exact %.0f (%.2fx)", shape, s, e, s / e);
    done(&exact), done(&samp);
}

AT_TEST_EACH_SHAPE(alloc, sampled_thread_starts_unbiased, .timeout = 60) { thread_starts(shape); }

/* Sampled frees skip the shadow walk on a hint: every path that frees a
 * sampled block (OBJ, RAW under OBJ, realloc; with native, libc free on
 * threads without the GIL) must still find and subtract it.  The native
 * half is a test of its own: under ASan, libc blocks are ASan's. */
static void sampled_frees(const char *shape, const char *what, const char *args)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "tests/fixtures/alloc_sample_frees.py %s", args);
    run_t r = trace("--alloc-sample 1024", at_test_python_or_skip(shape), cmd);
    cr_assert_eq(r.rc, 0, "exit 0, got %d: %s", r.rc, r.err);
    check(&r, what);
    done(&r);
}

AT_TEST_EACH_SHAPE(alloc, sampled_frees_subtracted, .timeout = 60) { sampled_frees(shape, "frees frees", ""); }
AT_TEST_EACH_SHAPE(alloc, threads_without_gil_sampled_frees, .timeout = 60) { sampled_frees(shape, "frees frees native", ""); }
/* Under tracemalloc our layer is wrapped and wraps it again: the inner
 * one must pass through, and tracemalloc's own trace records (RAW blocks
 * it makes while we call it) must not be counted as the program's. */
AT_TEST_EACH_SHAPE(alloc, sampled_frees_under_tracemalloc, .timeout = 60)
{
    sampled_frees(shape, "frees frees", "--tracemalloc");
}

/* The default: sampled, one block per 16 KiB on average, said in the
 * report; lab04's sites in order and within their standard errors. */
static void default_sampled(const char *shape)
{
    run_t r = trace("", at_test_python_or_skip(shape), lab04_prog(shape));
    cr_assert_eq(r.rc, 0, "lab04 exits 0 under archtrace, got %d: %s", r.rc, r.err);
    char *mode = at_test_json(r.json, "d['processes'][0]['alloc']['mode']");
    char *mean = at_test_json(r.json, "d['processes'][0]['alloc']['sample_bytes']");
    cr_assert_str_eq(mode, "sampled", "the default run samples");
    cr_assert_str_eq(mean, "16384", "one block per 16 KiB on average");
    check(&r, "top5 lab04 TOP5 0.20");
    free(mode), free(mean);
    done(&r);
}

AT_TEST_EACH_SHAPE(alloc, default_is_sampled, .timeout = 90) { default_sampled(shape); }

/* A sampled parent's hints must not make its forked child skip or
 * misread frees. */
static void sampled_fork(const char *shape)
{
    run_t r = trace("--alloc-sample 1024", at_test_python_or_skip(shape), "tests/fixtures/alloc_fork.py");
    cr_assert_eq(r.rc, 0, "exit 0, got %d: %s", r.rc, r.err);
    check(&r, "fork");
    done(&r);
}

AT_TEST_EACH_SHAPE(alloc, sampled_fork_child_has_its_own_counts, .timeout = 60) { sampled_fork(shape); }

static void deep(const char *shape)
{
    const char *py = at_test_python_or_skip(shape);
    char *dir = at_test_tmpdir(), *err = NULL, opts[1024], session[600];
    snprintf(session, sizeof(session), "%s/session", dir);
    snprintf(opts, sizeof(opts), "--alloc-exact --alloc-depth 25 -o %s", session);
    run_t r = trace(opts, py, "tests/fixtures/alloc_bench.py 100000");
    cr_assert_eq(r.rc, 0, "exit 0, got %d: %s", r.rc, r.err);
    char *depth = at_test_json(r.json, "d['processes'][0]['alloc']['depth']");
    char *pid = at_test_json(r.json, "d['processes'][0]['pid']");
    cr_assert_str_eq(depth, "25", "depth recorded");
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    cr_assert_eq(at_alloc_write_collapsed(session, atoi(pid), mem), 0, "collapsed stacks written");
    fclose(mem);
    int found = 0;
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line && !found; line = strtok_r(NULL, "\n", &save)) {
        char *m = strstr(line, ";main ("), *h = strstr(line, ";held (");
        found = strncmp(line, "<module> (", 10) == 0 && m && h && m < h;
    }
    cr_assert(found, "a stack <module>;main;held in the folded output");
    free(buf), free(depth), free(pid), free(err), free(dir);
    done(&r);
}

AT_TEST_EACH_SHAPE(alloc, deep_stacks_folded, .timeout = 60) { deep(shape); }

/* ---- robustness --------------------------------------------------------- */

Test(alloc, inert_in_non_python_processes, .timeout = 30)
{
    char *out = NULL, *err = NULL;
    int rc = at_test_shf(&out, &err, "%s -q sh -c 'ls / | sort | head -1; exit 3'", at_test_archtrace());
    cr_assert_eq(rc, 3, "the shell's own status passes through, got %d: %s", rc, err);
    cr_assert_str_eq(out, "bin\n", "the shell pipeline works under the interposed malloc");
    free(out), free(err);
}

Test(alloc, truncated_file_is_rejected, .timeout = 60)
{
    const char *py = at_test_python_or_skip("static");
    char *dir = at_test_tmpdir(), *out = NULL, *err = NULL;
    int rc = at_test_shf(NULL, &err, "%s -q --no-gil --no-imports --no-sample -o %s/s %s -c 'x = [1] * 1000'",
                         at_test_archtrace(), dir, py);
    cr_assert_eq(rc, 0, "traced run: %s", err);
    free(err);
    rc = at_test_shf(NULL, NULL, "f=$(ls %s/s/*.alloc) && truncate -s 100000 $f", dir);
    cr_assert_eq(rc, 0, "truncate the alloc file");
    rc = at_test_shf(&out, &err, "%s report %s/s", at_test_archtrace(), dir);
    cr_assert(strstr(err, ".alloc: truncated"), "a one-line reason on stderr, got: %s", err);
    at_test_shf(NULL, NULL, "rm -rf '%s'", dir);
    free(out), free(err), free(dir);
}
