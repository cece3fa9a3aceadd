/* SPDX-License-Identifier: MIT */
/* test_run.c - `archtrace [run] COMMAND` end to end on both 3.11 build
 * shapes (and 3.12, 3.13 where a table of them says so):
 * exit statuses, forked and exec'd Python children, the JSON report. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "testlib.h"

/* Run archtrace with --json into a temp dir; returns the exit status and
 * the JSON path (malloc'd) in *json. */
static int run_json(char **json, char **err, const char *fmt_cmd, const char *py)
{
    char *dir = at_test_tmpdir();
    char cmd[4096];
    size_t len = strlen(dir) + 16;
    *json = malloc(len);
    snprintf(*json, len, "%s/r.json", dir);
    int n = snprintf(cmd, sizeof(cmd), "%s --json %s ", at_test_archtrace(), *json);
    snprintf(cmd + n, sizeof(cmd) - (size_t)n, fmt_cmd, py);
    free(dir);
    return at_test_sh(cmd, NULL, err);
}

static long json_long(const char *json, const char *expr)
{
    char *v = at_test_json(json, expr);
    cr_assert_not_null(v, "JSON query %s failed", expr);
    long x = strtol(v, NULL, 10);
    free(v);
    return x;
}

static void check_fork(const char *shape)
{
    const char *py = at_test_python_or_skip(shape);
    char *json, *err;
    int rc = run_json(&json, &err, "%s -c 'import os; os.fork() or print(1)'", py);
    cr_assert_eq(rc, 0, "exit status 0 expected, got %d; stderr: %s", rc, err);
    cr_assert_eq(json_long(json, "len(d['processes'])"), 2, "parent and child listed");
    long parent = json_long(json, "d['processes'][0]['pid']");
    cr_assert_eq(json_long(json, "d['processes'][1]['ppid']"), parent, "child's ppid is the parent");
    cr_assert_eq(json_long(json, "int(d['processes'][1]['forked'])"), 1, "child marked forked");
    char *build = at_test_json(json, "d['processes'][0]['python']['build']");
    /* 3.12 and 3.13 are pyenv's shared-libpython builds here */
    cr_assert_str_eq(build, strcmp(shape, "static") ? "shared" : "static", "build shape detected");
    char *schema = at_test_json(json, "d['schema']");
    cr_assert_str_eq(schema, "archtrace/1", "schema");
    char *ver = at_test_json(json, "d['processes'][0]['python']['version'][:5]");
    cr_assert_str_eq(ver, at_test_shape_version(shape), "version");
    char *sup = at_test_json(json, "d['processes'][0]['python']['supported']");
    cr_assert_str_eq(sup, "True", "a supported version");
    free(sup);
    char *full = at_test_json(json, "d['processes'][0]['python']['version']");
    cr_assert(full && strstr(err, full), "the text report's process line names %s: %s", full, err);
    free(full);
    cr_assert(json_long(json, "d['processes'][0]['audit_events']") > 10, "audit events counted");
    free(build), free(schema), free(ver), free(json), free(err);
}

AT_TEST_EACH_SHAPE(run, fork, .timeout = 60) { check_fork(shape); }

static void check_multiprocessing(const char *shape)
{
    const char *py = at_test_python_or_skip(shape);
    char *json, *err;
    int rc = run_json(&json, &err, "%s tests/fixtures/run_pool.py", py);
    cr_assert_eq(rc, 0, "exit 0, got %d: %s", rc, err);
    cr_assert_geq(json_long(json, "len(d['processes'])"), 3, "pool workers are processes");
    free(json), free(err);
}

Test(run, multiprocessing_workers_static) { check_multiprocessing("static"); }
Test(run, multiprocessing_workers_shared) { check_multiprocessing("shared"); }

static void check_exec_child(const char *shape)
{
    const char *py = at_test_python_or_skip(shape);
    char *json, *err;
    int rc = run_json(&json, &err,
                      "%s -c 'import subprocess, sys; "
                      "subprocess.run([sys.executable, \"-c\", \"import sys; sys.exit(0)\"], check=True); "
                      "subprocess.run([\"true\"])'", py);
    cr_assert_eq(rc, 0, "exit 0, got %d: %s", rc, err);
    cr_assert_eq(json_long(json, "len(d['processes'])"), 2,
                 "the exec'd Python child is listed, `true` is not");
    cr_assert_eq(json_long(json, "int(d['processes'][1]['forked'])"), 0, "exec'd child is not 'forked'");
    free(json), free(err);
}

Test(run, exec_child_static) { check_exec_child("static"); }
Test(run, exec_child_shared) { check_exec_child("shared"); }

/* ---- issue 25: os.execv into another Python program ---------------------- */

static void json_expect(const char *json, const char *expr, const char *want, const char *what)
{
    char *v = at_test_json(json, expr);
    cr_assert_not_null(v, "JSON query %s failed", expr);
    cr_assert_str_eq(v, want, "%s: %s gives %s, want %s", what, expr, v, want);
    free(v);
}

/* Samples of function fn in process i. */
#define EXEC_SAMPLES(i, fn) "sum(s['count'] for s in d['processes'][" #i "]['samples']['stacks'] " \
                            "if any(f.startswith('" fn " ') for f in s['frames']))"

/* exec_first.py allocates, imports colorsys and spins in first_spin, then
 * os.execv's exec_second.py (same pid), which does the same with its own
 * names and exits 7: both programs are listed, each with its argv and only
 * its own allocations, imports and samples; the status passes through. */
static void check_exec_python(const char *shape)
{
    const char *py = at_test_python_or_skip(shape);
    char *dir = at_test_tmpdir(), *out, *err, json[600];
    snprintf(json, sizeof json, "%s/r.json", dir);
    int rc = at_test_shf(&out, &err, "%s -q --rate 200 -o %s/s --json %s %s tests/fixtures/exec_first.py",
                         at_test_archtrace(), dir, json, py);
    cr_assert_eq(rc, 7, "the second program's status 7 passes through, got %d: %s", rc, err);
    cr_assert_str_eq(out, "first colorsys\nsecond second-arg textwrap\n", "stdout untouched: '%s'", out);
    free(out), free(err);
    json_expect(json, "len(d['processes']), len(set(p['pid'] for p in d['processes']))", "(2, 1)",
                "two programs, one pid");
    json_expect(json, "[[a.rsplit('/', 1)[-1] for a in p['argv'][1:]] for p in d['processes']]",
                "[['exec_first.py'], ['exec_second.py', 'second-arg']]", "each its own argv, in exec order");
    json_expect(json, "[(p['execed'], p['complete'], p['python']['build']) for p in d['processes']]",
                strcmp(shape, "static") ? "[(True, True, 'shared'), (False, True, 'shared')]"
                                        : "[(True, True, 'static'), (False, True, 'static')]",
                "the first exec'd the second; both complete");
    json_expect(json, "[(t['file'].rsplit('/', 1)[-1], t['line']) for t in "
                      "(p['alloc']['peak']['top'][0] for p in d['processes'])]",
                "[('exec_first.py', 10), ('exec_second.py', 8)]", "each program's own top allocation site");
    json_expect(json, "'exec_second' in json.dumps(d['processes'][0]['alloc']), "
                      "'exec_first' in json.dumps(d['processes'][1]['alloc'])",
                "(False, False)", "no allocation of one program in the other's figures");
    json_expect(json, "[[m for m in ('colorsys', 'textwrap') if any(i['module'] == m for i in p['imports'])] "
                      "for p in d['processes']]",
                "[['colorsys'], ['textwrap']]", "each program's own imports");
    cr_assert_geq(json_long(json, EXEC_SAMPLES(0, "first_spin")), 20, "first_spin sampled in the first program");
    cr_assert_geq(json_long(json, EXEC_SAMPLES(1, "second_spin")), 20, "second_spin sampled in the second");
    cr_assert_eq(json_long(json, EXEC_SAMPLES(0, "second_spin")) + json_long(json, EXEC_SAMPLES(1, "first_spin")),
                 0, "no samples of one program in the other's");
    /* report DIR, and a damaged file of the first program named as its own */
    long pid = json_long(json, "d['processes'][0]['pid']");
    rc = at_test_shf(NULL, &err, "truncate -s 100 %s/s/%ld-1.alloc; %s report %s/s", dir, pid,
                     at_test_archtrace(), dir);
    cr_assert_eq(rc, 0, "report DIR: 0, got %d: %s", rc, err);
    char want[96];
    snprintf(want, sizeof want, "warning: process %ld-1 damaged: alloc", pid);
    cr_assert(strstr(err, want), "the first program's damaged .alloc is named: %.3000s", err);
    snprintf(want, sizeof want, "Samples: pid %ld before exec 1", pid);
    cr_assert(strstr(err, want) && strstr(err, "Python processes: 2"), "both programs reported: %.3000s", err);
    free(err);
    at_test_shf(NULL, NULL, "rm -rf %s", dir);
    free(dir);
}

/* `archtrace top` follows the exec too: the session it keeps has each
 * program's samples under its own files. */
static void check_exec_top(const char *shape)
{
    const char *py = at_test_python_or_skip(shape);
    char *dir = at_test_tmpdir(), *err, json[600];
    snprintf(json, sizeof json, "%s/r.json", dir);
    int rc = at_test_shf(NULL, &err, "%s top -o %s/s -- %s tests/fixtures/exec_first.py", at_test_archtrace(), dir,
                         py);
    cr_assert_eq(rc, 7, "top: the second program's status 7, got %d: %s", rc, err);
    free(err);
    rc = at_test_shf(NULL, &err, "%s report -q --json %s %s/s", at_test_archtrace(), json, dir);
    cr_assert_eq(rc, 0, "report of top's session: %s", err);
    free(err);
    json_expect(json, "[p['execed'] for p in d['processes']]", "[True, False]", "top's session has both programs");
    cr_assert_geq(json_long(json, EXEC_SAMPLES(0, "first_spin")), 10, "top sampled first_spin in the first program");
    cr_assert_geq(json_long(json, EXEC_SAMPLES(1, "second_spin")), 10, "and followed the exec to second_spin");
    cr_assert_eq(json_long(json, EXEC_SAMPLES(0, "second_spin")) + json_long(json, EXEC_SAMPLES(1, "first_spin")),
                 0, "no samples of one program in the other's");
    at_test_shf(NULL, NULL, "rm -rf %s", dir);
    free(dir);
}

Test(run, execv_into_python_reports_both_programs_static, .timeout = 60) { check_exec_python("static"); }
Test(run, execv_into_python_reports_both_programs_shared, .timeout = 60) { check_exec_python("shared"); }
Test(run, execv_into_python_top_follows_static, .timeout = 60) { check_exec_top("static"); }
Test(run, execv_into_python_top_follows_shared, .timeout = 60) { check_exec_top("shared"); }

/* Another CPython runs normally; the report names its version. */
Test(run, other_python_versions_are_reported_unsupported)
{
    const char *candidates[] = { "/root/.pyenv/versions/3.10.13/bin/python3.10" };
    int tried = 0;
    for (size_t i = 0; i < sizeof(candidates) / sizeof(candidates[0]); i++) {
        if (access(candidates[i], X_OK) != 0)
            continue;
        tried++;
        char *json, *err;
        int rc = run_json(&json, &err, "%s -c 'print(1)'", candidates[i]);
        cr_assert_eq(rc, 0, "%s runs normally under archtrace: %s", candidates[i], err);
        cr_assert(strstr(err, "unsupported, archtrace supports 3.11, 3.12 and 3.13"), "report says so: %s", err);
        char *sup = at_test_json(json, "d['processes'][0]['python']['supported']");
        cr_assert_str_eq(sup, "False", "JSON marks it unsupported");
        free(sup), free(json), free(err);
    }
    if (!tried)
        cr_skip_test("no CPython older than 3.11 installed here");
}

Test(run, exit_statuses_follow_env)
{
    char *err;
    const char *at = at_test_archtrace();
    cr_assert_eq(at_test_shf(NULL, NULL, "%s false", at), 1, "archtrace false returns 1");
    cr_assert_eq(at_test_shf(NULL, NULL, "%s bash -c 'exit 3'", at), 3, "status passed through");
    cr_assert_eq(at_test_shf(NULL, &err, "%s no-such-cmd-xyz", at), 127, "not found is 127");
    cr_assert_str_eq(err, "archtrace: no-such-cmd-xyz: command not found\n", "one-line message: %s", err);
    free(err);
    cr_assert_eq(at_test_shf(NULL, &err, "%s /etc/passwd", at), 126, "not executable is 126");
    free(err);
    cr_assert_eq(at_test_shf(NULL, NULL, "%s bash -c 'kill -TERM $$'", at), 128 + 15,
                 "killed by a signal: 128+N");
    cr_assert_eq(at_test_shf(NULL, &err, "%s --rate -5 true", at), 125, "bad usage is 125");
    free(err);
}

/* Without -o the session is a temporary directory in $TMPDIR, removed
 * after archtrace exits (by a detached process, off the command's
 * time): it must be gone soon, and the program's output and status
 * come through untouched. */
Test(run, temporary_session_is_removed_after_exit)
{
    char *dir = at_test_tmpdir(), *out, *left;
    int rc = at_test_shf(&out, NULL, "TMPDIR=%s %s -q -- %s -c 'print(\"kept\"); raise SystemExit(4)'", dir,
                         at_test_archtrace(), at_test_python("static"));
    cr_assert_eq(rc, 4, "exit status passed through: %d", rc);
    cr_assert_str_eq(out, "kept\n", "output passed through: %s", out);
    free(out);
    for (int i = 0; i < 100; i++) {
        at_test_shf(&left, NULL, "ls -A %s", dir);
        if (!*left)
            break;
        free(left);
        left = NULL;
        usleep(50000);
    }
    cr_assert(left && !*left, "the temporary session is gone within 5 s: %s", left ? left : "(still there)");
    free(left);
    at_test_shf(NULL, NULL, "rm -rf %s", dir);
    free(dir);
}

Test(run, non_python_command_says_so)
{
    char *err;
    int rc = at_test_shf(NULL, &err, "%s ls /", at_test_archtrace());
    cr_assert_eq(rc, 0, "ls runs normally");
    cr_assert(strstr(err, "no Python process seen"), "report says so: %s", err);
    free(err);
}

/* A free-threaded 3.13t (none is installed here) is recognised by the
 * symbols only its libpython exports: a library that exports one, loaded
 * into a 3.13, makes the shim take it for one.  The program runs as
 * usual; the report says why nothing was recorded. */
Test(run, free_threaded_build_is_refused_with_its_own_note, .timeout = 60)
{
    const char *py = at_test_python_or_skip("3.13");
    char *dir = at_test_tmpdir(), *out = NULL, *err = NULL;
    int rc = at_test_shf(NULL, &err, "echo 'void _Py_DecRefShared(void *o) { (void)o; }' > %s/ft.c && "
                         "cc -shared -fPIC -o %s/ft.so %s/ft.c", dir, dir, dir);
    cr_assert_eq(rc, 0, "cannot build the stand-in library: %s", err);
    free(err);
    /* added behind archtrace's own preloads (an ASan build wants its
     * runtime first), by a shell that then becomes the Python */
    rc = at_test_shf(&out, &err,
                     "%s --no-sample --json %s/r.json sh -c 'LD_PRELOAD=\"$LD_PRELOAD %s/ft.so\" exec %s -c \"print(7)\"'",
                     at_test_archtrace(), dir, dir, py);
    cr_assert_eq(rc, 0, "the program runs normally: %s", err);
    cr_assert_str_eq(out, "7\n", "its stdout is untouched");
    cr_assert(strstr(err, "free-threaded CPython has no GIL to account for: archtrace does not support it"),
              "the report says why: %s", err);
    char json[512];
    snprintf(json, sizeof json, "%s/r.json", dir);
    char *sup = at_test_json(json, "d['processes'][0]['python']['supported']");
    cr_assert_str_eq(sup, "False", "JSON marks it unsupported");
    free(sup), free(out), free(err);
    at_test_shf(NULL, NULL, "rm -rf %s", dir);
    free(dir);
}

static void check_session_kept(const char *shape)
{
    const char *py = at_test_python_or_skip(shape);
    char *dir = at_test_tmpdir(), *out, *err;
    int rc = at_test_shf(&out, &err, "%s -q -o %s/s %s -c 'print(42)'", at_test_archtrace(), dir, py);
    cr_assert_eq(rc, 0, "run: %s", err);
    cr_assert_str_eq(out, "42\n", "the command's stdout is untouched: '%s'", out);
    free(out), free(err);
    rc = at_test_shf(&out, &err, "%s report --format json %s/s", at_test_archtrace(), dir);
    cr_assert_eq(rc, 0, "report: %s", err);
    cr_assert(strstr(out, "\"schema\": \"archtrace/1\""), "report DIR renders JSON: %s", out);
    cr_assert(strstr(err, "Python processes: 1"), "text report on stderr: %s", err);
    free(out), free(err);
    at_test_shf(NULL, NULL, "rm -rf %s", dir);
    free(dir);
}

AT_TEST_EACH_SHAPE(run, session_kept_and_reported, .timeout = 60) { check_session_kept(shape); }

Test(run, report_of_missing_or_corrupt_session)
{
    char *err, *dir = at_test_tmpdir();
    cr_assert_eq(at_test_shf(NULL, &err, "%s report /nonexistent-dir", at_test_archtrace()), 125,
                 "a missing session directory fails with 125");
    cr_assert(strstr(err, "cannot read session"), "message: %s", err);
    free(err);
    at_test_shf(NULL, NULL, "head -c 100 /dev/urandom > %s/99.seg; echo garbage > %s/session.meta", dir, dir);
    cr_assert_eq(at_test_shf(NULL, &err, "%s report %s", at_test_archtrace(), dir), 8,
                 "a session of which nothing can be read fails with 8");
    cr_assert(strstr(err, "corrupt or truncated segment"), "corrupt segment named: %s", err);
    cr_assert(strstr(err, "could be read"), "says nothing could be read: %s", err);
    free(err);
    at_test_shf(NULL, NULL, "rm -rf %s", dir);
    free(dir);
}

/* ---- issue 25: the command's status and stdout pass through ------------- */

/* A command that sleeps (so the sampler stops its thread with --native),
 * prints, and ends with status 3; or kills itself with SIGKILL. */
#define PASS_CMD "-c 'import time; time.sleep(0.2); print(\"hello\"); raise SystemExit(3)'"
#define KILL_CMD "-c 'import os, time; time.sleep(0.2); print(\"hello\", flush=True); " \
                 "os.kill(os.getpid(), 9)'"
/* The option matrix's command: a second thread (asleep), allocations,
 * 0.1 s of work in the main thread (so a CPU picture has stacks). */
#define MATRIX_CMD "-c 'import threading, time; t = threading.Thread(target=time.sleep, args=(0.1,)); " \
                   "t.start(); x = [bytes(100) for _ in range(20000)]; t0 = time.time()\n" \
                   "while time.time() - t0 < 0.1: pass\n" \
                   "t.join(); print(\"hello\"); raise SystemExit(3)'"
#define PASS_RUNS 3           /* races show in one run of several          */
#define MATRIX_RUNS 2         /* ... and over many sets in a few each      */

/* The file --format FMT leaves in the working directory without --out
 * (run's default: ./archtrace.<ext>), or NULL. */
static const char *format_file(const char *opts)
{
    static const char *const fmt[][2] = { { "--format svg", "archtrace.svg" },
                                          { "--format chrome", "archtrace.trace.json" },
                                          { "--format collapsed", "archtrace.folded" } };
    for (size_t i = 0; i < sizeof fmt / sizeof *fmt; i++)
        if (strstr(opts, fmt[i][0]))
            return fmt[i][1];
    return NULL;
}

/* `archtrace top` off a terminal prints a line a second on stdout
 * ("   0.3s pid 4242 ..."): the command's own lines are the others. */
static void drop_top_lines(char *out)
{
    char *w = out;
    for (char *line = out; *line;) {
        char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) + 1 : strlen(line);
        double t;
        int pid;
        if (sscanf(line, "%lfs pid %d", &t, &pid) != 2) {
            memmove(w, line, len);
            w += len;
        }
        line += len;
    }
    *w = '\0';
}

/* One run of `archtrace [top] OPTS -- PY CMD` in dir: exits `want`,
 * prints exactly "hello\n", the text report (unless -q or top) and the
 * JSON (--format json, into dir) say the same status, and a --format
 * picture is written. */
static void check_one_run(const char *dir, const char *shape, const char *opts, const char *cmd, int want,
                          int i, int runs)
{
    const char *py = at_test_python(shape), *pic = format_file(opts);
    int is_json = strstr(opts, "--format json") != NULL, quiet = strstr(opts, "-q") != NULL;
    int top = strncmp(opts, "top", 3) == 0;
    char json[600], line[64], *out, *err;
    snprintf(json, sizeof json, "%s/r.json", dir);
    at_test_shf(NULL, NULL, "rm -f %s/r.json %s/archtrace.*", dir, dir);
    /* a hang is a failure of its own (124), not the whole test's timeout */
    int rc = at_test_shf(&out, &err, "cd %s && timeout -k 5 60 %s %s%s%s -- %s %s", dir, at_test_archtrace(), opts,
                         is_json ? " --out " : "", is_json ? json : "", py, cmd);
    cr_assert_eq(rc, want, "%s, %s, run %d of %d: exit status %d, want %d; stderr: %.2000s",
                 shape, opts, i, runs, rc, want, err);
    if (top)
        drop_top_lines(out);
    cr_assert_str_eq(out, "hello\n", "%s, %s, run %d: stdout '%s', want 'hello\\n'", shape, opts, i, out);
    snprintf(line, sizeof line, "exit status: %d ", want);
    cr_assert(quiet || is_json || top || strstr(err, line), "%s, %s, run %d: the report header says '%s': %.2000s",
              shape, opts, i, line, err);
    if (is_json) {
        char *doc = NULL;
        at_test_shf(&doc, NULL, "cat %s", json);
        snprintf(line, sizeof line, "\"exit_status\": %d,", want);
        cr_assert(strstr(doc, line), "%s, %s, run %d: JSON has %s", shape, opts, i, line);
        free(doc);
    }
    if (pic)
        cr_assert_eq(at_test_shf(NULL, NULL, "test -s %s/%s", dir, pic), 0, "%s, %s, run %d: %s written: ...%s",
                     shape, opts, i, pic, err + (strlen(err) > 1500 ? strlen(err) - 1500 : 0));
    free(out), free(err);
}

static void check_passthrough_runs(const char *shape, const char *opts, const char *cmd, int want, int runs)
{
    at_test_python_or_skip(shape);
    char *dir = at_test_tmpdir();
    for (int i = 1; i <= runs; i++)
        check_one_run(dir, shape, opts, cmd, want, i, runs);
    at_test_shf(NULL, NULL, "rm -rf %s", dir);
    free(dir);
}

static void check_passthrough(const char *shape, const char *opts, const char *cmd, int want)
{
    check_passthrough_runs(shape, opts, cmd, want, PASS_RUNS);
}

static void check_passthrough_matrix(const char *shape, const char *const *opts, int n)
{
    for (int i = 0; i < n; i++)
        check_passthrough(shape, opts[i], PASS_CMD, 3);
}

static const char *const native_opts[] = { "-q --native", "--native --rate 1000", "-q --native --format json",
                                           "-q --native --no-sample" };
static const char *const other_opts[] = { "-q", "--rate 1000", "--no-sample", "-q --format json" };
#define COUNT(a) ((int)(sizeof(a) / sizeof *(a)))

/* Every run option alone, and the combinations people type together. */
static const char *const matrix_opts[] = {
    "--native", "--rate 10000", "--idle", "--alloc-depth 5", "--alloc-sample 1024", "--alloc-exact",
    "--no-alloc", "--no-gil", "--no-imports", "--no-sample", "--no-poll --rate 10000",
    "--no-alloc --no-gil --no-imports --no-sample", "--format svg", "--format chrome", "--format collapsed",
    "--format json", "--format svg --alloc", "--format collapsed --alloc --alloc-exact --alloc-depth 5",
    "--native --rate 10000 --idle", "--native --idle --format collapsed",
    "--rate 10000 --alloc-exact --alloc-depth 5 --idle --format chrome",
    "-q --top 3 --alloc-sample 1024 --no-gil --native", "--no-sample --format json --alloc-exact",
    "top", "top --rate 10000 --native", "top --alloc-exact --no-gil",
};

static void check_option_matrix(const char *shape)
{
    for (int i = 0; i < COUNT(matrix_opts); i++)
        check_passthrough_runs(shape, matrix_opts[i], MATRIX_CMD, 3, MATRIX_RUNS);
}

Test(run, exit_status_and_stdout_pass_through_option_matrix_static, .timeout = 600)
{
    check_option_matrix("static");
}
Test(run, exit_status_and_stdout_pass_through_option_matrix_shared, .timeout = 600)
{
    check_option_matrix("shared");
}

Test(run, exit_status_passes_through_native_static, .timeout = 600)
{
    check_passthrough_matrix("static", native_opts, COUNT(native_opts));
}
Test(run, exit_status_passes_through_native_shared, .timeout = 600)
{
    check_passthrough_matrix("shared", native_opts, COUNT(native_opts));
}
Test(run, exit_status_passes_through_other_options_static, .timeout = 600)
{
    check_passthrough_matrix("static", other_opts, COUNT(other_opts));
}
Test(run, exit_status_passes_through_other_options_shared, .timeout = 600)
{
    check_passthrough_matrix("shared", other_opts, COUNT(other_opts));
}
Test(run, signal_death_passes_through_native_static, .timeout = 300)
{
    check_passthrough("static", "--native --rate 1000", KILL_CMD, 128 + 9);
}
Test(run, signal_death_passes_through_native_shared, .timeout = 300)
{
    check_passthrough("shared", "--native --rate 1000", KILL_CMD, 128 + 9);
}
