/* SPDX-License-Identifier: MIT */
/* test_realworld.c - programs nobody here wrote, under archtrace and without
 * it (issue 25): same exit status, same stdout, and a report that shows
 * what the program did, on both build shapes.  The programs and the report
 * checks (check.py) are in tests/realworld/.  No network: the wheel is
 * there too, toolz's sdist is unpacked in build/realworld/ by
 * tools/realworld_deps.sh (make test runs it), numpy and pytest are in
 * the .venv/<shape> venvs. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "testlib.h"

#define WHEEL "tests/realworld/archtrace_tinypkg-0.1-py3-none-any.whl"
#define PIP_INSTALL "-m pip install --no-index --no-cache-dir --disable-pip-version-check " \
                    "--no-input --progress-bar off"

/* `python -m pip install` of a local wheel into a fresh venv: once plain,
 * once under archtrace (after uninstalling), compared. */
static void check_pip_install(const char *shape)
{
    const char *py = at_test_python_or_skip(shape);
    char *dir = at_test_tmpdir(), *plain, *traced, *err, wheel[4096];
    cr_assert(realpath(WHEEL, wheel), "the test wheel is at %s (run from the tree's root)", WHEEL);
    int rc = at_test_shf(NULL, &err, "%s -m venv %s/v", py, dir);
    cr_assert_eq(rc, 0, "%s: python -m venv: %d: %s", shape, rc, err);
    free(err);

    int rc_plain = at_test_shf(&plain, &err, "%s/v/bin/python " PIP_INSTALL " %s", dir, wheel);
    cr_assert_eq(rc_plain, 0, "%s: pip install without archtrace: %d: %s", shape, rc_plain, err);
    free(err);
    rc = at_test_shf(NULL, &err, "%s/v/bin/python -m pip uninstall -y archtrace_tinypkg", dir);
    cr_assert_eq(rc, 0, "%s: pip uninstall: %d: %s", shape, rc, err);
    free(err);

    int rc_traced = at_test_shf(&traced, &err, "%s -q --json %s/r.json -- %s/v/bin/python " PIP_INSTALL " %s",
                                at_test_archtrace(), dir, dir, wheel);
    cr_assert_eq(rc_traced, rc_plain, "%s: exit status under archtrace %d, without %d: %s", shape, rc_traced,
                 rc_plain, err);
    cr_assert_str_eq(traced, plain, "%s: pip's stdout is the same under archtrace", shape);
    cr_assert(strstr(traced, "Successfully installed archtrace-tinypkg-0.1"), "%s: installed: %s", shape, traced);
    free(err), free(plain), free(traced);

    char *out;
    rc = at_test_shf(&out, &err, "%s/v/bin/python -c 'import archtrace_tinypkg as t; print(t.hello())'", dir);
    cr_assert_eq(rc, 0, "%s: the package installed under archtrace imports: %s", shape, err);
    cr_assert_str_eq(out, "hello from tinypkg\n", "%s: and works", shape);
    free(out), free(err);

    /* the report saw pip at work */
    char json[600];
    snprintf(json, sizeof json, "%s/r.json", dir);
    char *v = at_test_json(json, "sorted({i['module'] for p in d['processes'] for i in (p['imports'] or []) "
                                 "if i['module'] in ('pip', 'pip._internal.cli.main', "
                                 "'pip._internal.commands.install', 'pip._internal.req')})");
    cr_assert_not_null(v, "%s: JSON report readable", shape);
    cr_assert_str_eq(v, "['pip', 'pip._internal.cli.main', 'pip._internal.commands.install', 'pip._internal.req']",
                     "%s: the report lists pip's imports: %s", shape, v);
    free(v);
    double n = at_test_json_num(json, "len(d['processes'])");
    cr_assert_geq(n, 1, "%s: pip's process is reported", shape);
    at_test_shf(NULL, NULL, "rm -rf %s", dir);
    free(dir);
}

Test(realworld, pip_install_local_wheel_static, .timeout = 180) { check_pip_install("static"); }
Test(realworld, pip_install_local_wheel_shared, .timeout = 180) { check_pip_install("shared"); }

/* ---- plain and traced, compared ----------------------------------------- */

/* The venv interpreter of a shape (tools/venvs.sh put numpy and pytest
 * there), as an absolute path: some cases run from another directory. */
static const char *venv_python(const char *shape)
{
    static char path[2][4096];
    int i = strcmp(shape, "static") != 0;
    at_test_python_or_skip(shape);
    char cwd[3000];
    /* not realpath(): bin/python is a symlink to the base interpreter,
     * and only the venv's own path makes it the venv */
    cr_assert(getcwd(cwd, sizeof(cwd)), "getcwd");
    snprintf(path[i], sizeof(path[i]), "%s/.venv/%s/bin/python", cwd, shape);
    cr_assert(access(path[i], X_OK) == 0, "%s: no %s: run tools/venvs.sh (make test does)", shape, path[i]);
    return path[i];
}

typedef struct pair {
    const char *shape;
    char *dir;                  /* temp dir: r.json and the cases' files   */
    char json[600];             /* archtrace's --json report               */
    int rc_plain, rc_traced;
    char *out_plain, *out_traced;
    char *err_plain, *err_traced;
} pair_t;

/* `PRE CMD` as it is, then `PRE archtrace -q OPTS --json J -- CMD`: PRE is
 * a shell prefix (`cd X &&`, `seq 9 |`), CMD the program.  "%D" in CMD
 * stands for the temp dir (the cases write side files there); the traced
 * run's stdout is saved there as DIR/out too. */
static pair_t run_pair(const char *shape, const char *pre, const char *opts, const char *cmd)
{
    pair_t r = { .shape = shape, .dir = at_test_tmpdir() };
    cr_assert_not_null(r.dir, "temp dir");
    snprintf(r.json, sizeof(r.json), "%s/r.json", r.dir);
    char c[4096];
    size_t n = 0;
    for (const char *s = cmd; *s && n + 600 < sizeof(c); s++)
        if (s[0] == '%' && s[1] == 'D')
            n += (size_t)snprintf(c + n, sizeof(c) - n, "%s", r.dir), s++;
        else
            c[n++] = *s;
    c[n] = '\0';
    r.rc_plain = at_test_shf(&r.out_plain, &r.err_plain, "%s %s", pre, c);
    r.rc_traced = at_test_shf(&r.out_traced, &r.err_traced, "%s %s -q %s --json %s -- %s", pre,
                              at_test_archtrace(), opts, r.json, c);
    /* DIR/out: the traced stdout, for the checks that read it */
    snprintf(c, sizeof(c), "%s/out", r.dir);
    FILE *f = fopen(c, "w");
    cr_assert(f && fputs(r.out_traced, f) >= 0 && fclose(f) == 0, "writing %s", c);
    return r;
}

/* Same exit status (the expected one) and byte-for-byte the same stdout. */
static void same_behaviour(const pair_t *r, int want_rc)
{
    cr_assert_eq(r->rc_plain, want_rc, "%s: the program alone exits %d, got %d: %.2000s", r->shape, want_rc,
                 r->rc_plain, r->err_plain);
    cr_assert_eq(r->rc_traced, r->rc_plain, "%s: exit status under archtrace %d, without %d: %.2000s", r->shape,
                 r->rc_traced, r->rc_plain, r->err_traced);
    cr_assert_str_eq(r->out_traced, r->out_plain, "%s: stdout under archtrace differs:\n%.2000s\n-- without:\n%.2000s",
                     r->shape, r->out_traced, r->out_plain);
}

static void pair_done(pair_t *r)
{
    at_test_shf(NULL, NULL, "rm -rf '%s'", r->dir);
    free(r->dir), free(r->out_plain), free(r->out_traced), free(r->err_plain), free(r->err_traced);
}

/* A question about the report answered by tests/realworld/check.py:
 * "ok", or what differs (then the test fails with it). */
static void check(const pair_t *r, const char *what)
{
    char *msg = NULL, *err = NULL;
    int rc = at_test_shf(&msg, &err, "python3 tests/realworld/check.py %s %s %s", r->json, r->dir, what);
    cr_assert_eq(rc, 0, "%s: report check '%s' failed: %s%s\n(archtrace stderr: %.1500s)", r->shape, what, msg,
                 err, r->err_traced);
    free(msg), free(err);
}

/* ---- a third-party project's own test suite under pytest --------------- */

#define TOOLZ_DIR "build/realworld/toolz-1.0.0"

/* pytest -q ends with "180 passed, 2 skipped in 0.83s": cut the time off
 * (the only part that may differ) and return that last line. */
static char *pytest_summary(char *out)
{
    size_t n = strlen(out);
    while (n && out[n - 1] == '\n')
        out[--n] = '\0';
    char *last = strrchr(out, '\n');
    last = last ? last + 1 : out;
    char *in = strstr(last, " in ");
    if (in)
        *in = '\0';
    return last;
}

static long pytest_count(const char *summary, const char *what)
{
    const char *p = strstr(summary, what);
    if (!p)
        return 0;
    while (p > summary && p[-1] == ' ')
        p--;
    while (p > summary && p[-1] >= '0' && p[-1] <= '9')
        p--;
    return strtol(p, NULL, 10);
}

static void check_pytest_toolz(const char *shape)
{
    const char *py = venv_python(shape);
    cr_assert(access(TOOLZ_DIR "/PKG-INFO", R_OK) == 0,
              "%s is missing: run tools/realworld_deps.sh (make test does)", TOOLZ_DIR);
    char cmd[4200];
    /* no cache, no bytecode: both runs start from the same unpacked tree */
    snprintf(cmd, sizeof(cmd), "%s -m pytest -q -p no:cacheprovider toolz", py);
    pair_t r = run_pair(shape, "cd " TOOLZ_DIR " && PYTHONDONTWRITEBYTECODE=1", "", cmd);
    cr_assert_eq(r.rc_plain, 0, "%s: toolz's tests pass without archtrace: %.3000s", shape, r.out_plain);
    cr_assert_eq(r.rc_traced, 0, "%s: and under archtrace: %.3000s%.2000s", shape, r.out_traced, r.err_traced);
    char *plain = pytest_summary(r.out_plain), *traced = pytest_summary(r.out_traced);
    cr_assert_str_eq(traced, plain, "%s: pytest's counts under archtrace '%s', without '%s'", shape, traced, plain);
    cr_assert_str_eq(r.out_traced, r.out_plain, "%s: the rest of pytest's output is the same too", shape);
    cr_assert_geq(pytest_count(plain, "passed"), 150, "%s: toolz's suite ran (%s)", shape, plain);
    cr_assert_eq(pytest_count(plain, "failed") + pytest_count(plain, "error"), 0, "%s: nothing failed: %s", shape,
                 plain);
    check(&r, "pytest_toolz");
    pair_done(&r);
}

Test(realworld, pytest_toolz_suite_static, .timeout = 60) { check_pytest_toolz("static"); }
Test(realworld, pytest_toolz_suite_shared, .timeout = 60) { check_pytest_toolz("shared"); }

/* ---- numpy: archtrace's top 5 at a marker is tracemalloc's ------------- */

static void check_numpy(const char *shape)
{
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "%s tests/realworld/np_alloc.py", venv_python(shape));
    pair_t r = run_pair(shape, "", "--alloc-exact --no-gil --no-imports --no-sample", cmd);
    same_behaviour(&r, 0);
    char *msg = NULL, *err = NULL;
    int rc = at_test_shf(&msg, &err, "python3 tests/fixtures/alloc_check.py top5 %s %s/out numpy TOP5 0.05",
                         r.json, r.dir);
    cr_assert_eq(rc, 0, "%s: archtrace's top 5 at the marker is tracemalloc's: %s%s", shape, msg, err);
    free(msg), free(err);
    pair_done(&r);
}

Test(realworld, numpy_top5_is_tracemalloc_static, .timeout = 60) { check_numpy("static"); }
Test(realworld, numpy_top5_is_tracemalloc_shared, .timeout = 60) { check_numpy("shared"); }

/* Without tracemalloc, numpy's array data (malloc'd by numpy, reported
 * through PyTraceMalloc_Track) is still Python memory on the line that
 * made the array, not native memory: what tracemalloc would say. */
static void check_numpy_alone(const char *shape)
{
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "%s tests/realworld/np_alloc.py --no-tracemalloc", venv_python(shape));
    pair_t r = run_pair(shape, "", "--alloc-exact --no-gil --no-imports --no-sample", cmd);
    same_behaviour(&r, 0);
    check(&r, "numpy_python");
    pair_done(&r);
}

Test(realworld, numpy_arrays_are_python_memory_static, .timeout = 60) { check_numpy_alone("static"); }
Test(realworld, numpy_arrays_are_python_memory_shared, .timeout = 60) { check_numpy_alone("shared"); }

/* tests/realworld/SCRIPT_ARGS plainly and under archtrace OPTS (PRE, e.g.
 * a pipe, before both): the same status WANT and stdout, and check.py's
 * WHAT on the report.  The caller adds its own checks and pair_done()s. */
static pair_t run_fixture(const char *shape, const char *pre, const char *opts, const char *script_args, int want,
                          const char *what)
{
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "%s tests/realworld/%s", at_test_python_or_skip(shape), script_args);
    pair_t r = run_pair(shape, pre, opts, cmd);
    same_behaviour(&r, want);
    check(&r, what);
    return r;
}

/* ---- multiprocessing: every start method, every child a process --------- */

static void check_mp(const char *shape)
{
    pair_t r = run_fixture(shape, "", "", "mp_starts.py %D/ids", 0, "procs");
    pair_done(&r);
}

Test(realworld, multiprocessing_start_methods_static, .timeout = 60) { check_mp("static"); }
Test(realworld, multiprocessing_start_methods_shared, .timeout = 60) { check_mp("shared"); }

/* ---- asyncio, threads, pipes, closed fds, signals ----------------------- */

static void check_asyncio(const char *shape)
{
    pair_t r = run_fixture(shape, "", "", "aio_tasks.py", 0, "asyncio");
    cr_assert(strstr(r.out_plain, "tasks 10000 "), "%s: 10 000 tasks ran: %s", shape, r.out_plain);
    pair_done(&r);
}

Test(realworld, asyncio_10000_tasks_static, .timeout = 60) { check_asyncio("static"); }
Test(realworld, asyncio_10000_tasks_shared, .timeout = 60) { check_asyncio("shared"); }

static void check_threads(const char *shape, int n)
{
    char args[64], what[32];
    snprintf(args, sizeof(args), "threads64.py %d", n);
    snprintf(what, sizeof(what), "threads64 %d", n);
    pair_t r = run_fixture(shape, "", "--alloc-exact", args, 0, what);
    pair_done(&r);
}

Test(realworld, threads_64_allocating_static, .timeout = 60) { check_threads("static", 64); }
Test(realworld, threads_64_allocating_shared, .timeout = 60) { check_threads("shared", 64); }
/* More threads than the shim kept names for between two audit events
 * (64, before): every one is still named. */
Test(realworld, threads_200_all_named_static, .timeout = 60) { check_threads("static", 200); }

static void check_pipe(const char *shape)
{
    pair_t r = run_fixture(shape, "seq 1 30000 |", "", "pipe_stdin.py", 0, "ran pipe_stdin.py");
    cr_assert(strstr(r.out_plain, "lines 30000 "), "%s: the whole pipe was read: %.200s", shape, r.out_plain);
    pair_done(&r);
}

Test(realworld, stdin_from_a_pipe_static, .timeout = 60) { check_pipe("static"); }
Test(realworld, stdin_from_a_pipe_shared, .timeout = 60) { check_pipe("shared"); }

static void check_close_fds(const char *shape)
{
    pair_t r = run_fixture(shape, "", "--alloc-exact", "close_fds.py", 7, "close_fds");
    pair_done(&r);
}

Test(realworld, closes_all_its_fds_static, .timeout = 60) { check_close_fds("static"); }
Test(realworld, closes_all_its_fds_shared, .timeout = 60) { check_close_fds("shared"); }

static void check_own_signals(const char *shape)
{
    pair_t r = run_fixture(shape, "", "", "own_signals.py", 0, "ran own_signals.py");
    cr_assert_str_eq(r.out_plain, "prof>=50 True usr1 20\n", "%s: every signal reached its handler", shape);
    pair_done(&r);
}

Test(realworld, own_sigprof_and_sigusr1_static, .timeout = 60) { check_own_signals("static"); }
Test(realworld, own_sigprof_and_sigusr1_shared, .timeout = 60) { check_own_signals("shared"); }

/* ---- fork from a thread while others allocate, 50 times ----------------- */

static void check_fork_thread(const char *shape)
{
    pair_t r = run_fixture(shape, "", "--alloc-exact", "fork_thread.py 50", 0, "forks 50");
    cr_assert_str_eq(r.out_traced, "forks 50 ok 50 hung 0\n", "%s: no child hung or failed", shape);
    pair_done(&r);
}

Test(realworld, fork_from_thread_50_times_static, .timeout = 90) { check_fork_thread("static"); }
Test(realworld, fork_from_thread_50_times_shared, .timeout = 90) { check_fork_thread("shared"); }

/* ---- Ctrl-C: SIGINT to the whole foreground process group --------------- */

/* sh -c CMD (which execs its program) in a process group of its own, the
 * way a shell runs a foreground job; stdout to OUT.  Once OUT says
 * "ready", SIGINT goes to the whole group, as Ctrl-C at a terminal sends
 * it (archtrace and the program both get it); the test's own process is
 * outside the group.  Returns the exit status (128+N for a signal). */
static int interrupt_group(const char *cmd, const char *out)
{
    unlink(out);   /* a "ready" left by the run before is not this one's */
    pid_t pid = fork();
    cr_assert_geq(pid, 0, "fork");
    if (pid == 0) {
        setpgid(0, 0);
        signal(SIGINT, SIG_DFL);  /* Python installs its handler only then */
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600), nul = open("/dev/null", O_RDWR);
        if (fd < 0 || nul < 0 || dup2(fd, 1) < 0 || dup2(nul, 0) < 0 || dup2(nul, 2) < 0)
            _exit(126);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    setpgid(pid, pid);            /* in both: the group exists before kill */
    for (int i = 0; i < 2000; i++) {
        char *text = NULL;
        at_test_shf(&text, NULL, "cat '%s' 2>/dev/null", out);
        int ready = text && strstr(text, "ready\n") != NULL;
        free(text);
        if (ready)
            break;
        usleep(10000);
    }
    kill(-pid, SIGINT);
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void check_sigint(const char *shape, const char *mode, int want)
{
    const char *py = at_test_python_or_skip(shape);
    char *dir = at_test_tmpdir(), cmd[4200], out[600], json[600];
    snprintf(out, sizeof(out), "%s/out", dir);
    snprintf(json, sizeof(json), "%s/r.json", dir);
    snprintf(cmd, sizeof(cmd), "exec %s tests/realworld/sigint.py %s", py, mode);
    int rc_plain = interrupt_group(cmd, out);
    char *plain = NULL, *traced = NULL;
    at_test_shf(&plain, NULL, "cat '%s'", out);
    snprintf(cmd, sizeof(cmd), "exec %s -q --json %s -- %s tests/realworld/sigint.py %s", at_test_archtrace(), json,
             py, mode);
    int rc_traced = interrupt_group(cmd, out);
    at_test_shf(&traced, NULL, "cat '%s'", out);
    cr_assert_eq(rc_plain, want, "%s: Ctrl-C ends the program alone with %d, got %d: %s", shape, want, rc_plain,
                 plain);
    cr_assert_eq(rc_traced, rc_plain, "%s: under archtrace the status is %d, without %d", shape, rc_traced,
                 rc_plain);
    cr_assert_str_eq(traced, plain, "%s: same stdout under archtrace:\n%s\nwithout:\n%s", shape, traced, plain);
    cr_assert_eq(at_test_json_num(json, "d['exit_status']"), want, "%s: the report has the status", shape);
    free(plain), free(traced);
    at_test_shf(NULL, NULL, "rm -rf '%s'", dir);
    free(dir);
}

Test(realworld, ctrl_c_handled_static, .timeout = 60) { check_sigint("static", "handle", 42); }
Test(realworld, ctrl_c_handled_shared, .timeout = 60) { check_sigint("shared", "handle", 42); }
Test(realworld, ctrl_c_unhandled_static, .timeout = 60) { check_sigint("static", "default", 130); }
Test(realworld, ctrl_c_unhandled_shared, .timeout = 60) { check_sigint("shared", "default", 130); }

/* A command started with SIGINT ignored (`nohup`, `cmd &` in a script)
 * keeps it ignored under archtrace: archtrace ignores Ctrl-C itself while
 * it waits, and must not hand the command a default it never had. */
static void check_sigint_ignored(const char *shape)
{
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "%s tests/realworld/sigint.py show", at_test_python_or_skip(shape));
    pair_t r = run_pair(shape, "trap '' INT;", "--no-sample", cmd);
    same_behaviour(&r, 0);
    cr_assert_str_eq(r.out_plain, "sigint ignored at start: True\n", "%s: ignored from the start", shape);
    pair_done(&r);
}

Test(realworld, sigint_ignored_stays_ignored_static, .timeout = 30) { check_sigint_ignored("static"); }
Test(realworld, sigint_ignored_stays_ignored_shared, .timeout = 30) { check_sigint_ignored("shared"); }
