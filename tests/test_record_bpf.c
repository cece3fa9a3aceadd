/* SPDX-License-Identifier: MIT */
/* test_record_bpf.c - `archtrace -p PID record --bpf` through the command
 * line, on Python processes started WITHOUT archtrace, on the oldest and
 * newest layouts (3.11 static, with USDT notes, and 3.13, uprobes only;
 * tests/test_bpf.c drives the same probes through the C API on all four
 * interpreters): two CPU-bound threads each wait
 * for the GIL >= 25 % of the attached time, an import-heavy script's
 * imports appear with times, GC runs are counted; the JSON report and a
 * re-rendered session carry it all.  With --subprocesses (on 3.11's two
 * build shapes): a shell's child that becomes Python by exec after the
 * attach is recorded under its own pid, the shell its parent, and a
 * Python parent and its two Python children are each recorded once.
 * Skips, with the kernel's reason, only when the kernel refuses BPF
 * (exit status 7). */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testlib.h"

typedef struct proc {
    pid_t pid;       /* what we spawned                       */
    int fd;          /* its stdout (python) or stderr (archtrace) */
} proc_t;

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Start argv with its stream `which` (1 or 2) on a pipe we read. */
static void spawn(proc_t *p, char *const argv[], int which)
{
    int fds[2];
    cr_assert_eq(pipe2(fds, O_CLOEXEC), 0, "pipe");
    p->pid = fork();
    cr_assert_geq(p->pid, 0, "fork");
    if (p->pid == 0) {
        dup2(fds[1], which);
        execv(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    p->fd = fds[0];
}

/* Read p's stream until a line starting with `prefix` (20 s at most);
 * returns that line (malloc'd), or fails the test with what came. */
static char *wait_line(proc_t *p, const char *prefix)
{
    char buf[4096];
    size_t len = 0;
    uint64_t end = mono_ns() + 20000000000ull;
    while (mono_ns() < end && len < sizeof buf - 1) {
        struct pollfd pf = { p->fd, POLLIN, 0 };
        if (poll(&pf, 1, 200) <= 0)
            continue;
        ssize_t n = read(p->fd, buf + len, sizeof buf - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        buf[len] = '\0';
        for (char *line = buf; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
            if (!strncmp(line, prefix, strlen(prefix)) && strchr(line, '\n'))
                return strndup(line, (size_t)(strchr(line, '\n') - line));
    }
    buf[len] = '\0';
    cr_assert_fail("no line starting \"%s\" (got \"%s\")", prefix, buf);
    return NULL;
}

/* Wait for p (timeout_s at most, then kill it); its exit status. */
static int reap(proc_t *p, double timeout_s)
{
    int st = 0;
    uint64_t end = mono_ns() + (uint64_t)(timeout_s * 1e9);
    while (waitpid(p->pid, &st, WNOHANG) == 0) {
        if (mono_ns() > end) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, &st, 0);
            break;
        }
        usleep(20000);
    }
    close(p->fd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* A python fixture started without archtrace; its pid from "ready PID". */
static pid_t start_target(proc_t *t, char *const argv[])
{
    spawn(t, argv, 1);
    char *line = wait_line(t, "ready ");
    pid_t pid = (pid_t)atoi(line + 6);
    free(line);
    cr_assert_gt(pid, 0, "the fixture says its pid");
    return pid;
}

static void skip_if_refused(int rc, const char *err)
{
    if (rc == 7)
        cr_skip_test("the kernel refuses eBPF here: %s", err);
}

/* ---- GIL --------------------------------------------------------------------- */

static void gil(const char *shape)
{
    const char *py = at_test_python_or_skip(shape);
    char *tmp = at_test_tmpdir(), json[PATH_MAX], *err = NULL;
    proc_t t;
    snprintf(json, sizeof json, "%s/r.json", tmp);
    char *argv[] = { (char *)py, "tests/fixtures/bpf_threads.py", "6", NULL };
    pid_t pid = start_target(&t, argv);
    int rc = at_test_shf(NULL, &err, "%s -q -p %d record --bpf -d 2 -o %s/s --json %s", at_test_archtrace(),
                         (int)pid, tmp, json);
    reap(&t, 0);
    skip_if_refused(rc, err);
    cr_assert_eq(rc, 0, "%s: record --bpf exits 0: %s", shape, err);
    char expr[256];
    snprintf(expr, sizeof expr, "[p['attached'] for p in d['processes'] if p['pid'] == %d] == [True]", (int)pid);
    cr_assert(at_test_json_num(json, expr), "%s: the process is listed, marked attached", shape);
    double att = at_test_json_num(json, "d['processes'][0]['bpf']['attached_ns']");
    cr_assert(att > 1.5e9 && att < 4e9, "%s: attached about 2 s (-d 2): %.0f ns", shape, att);
    double first = at_test_json_num(json, "sorted(t['wait_ns'] for t in d['processes'][0]['gil']['threads'])[-1]");
    double second = at_test_json_num(json, "sorted(t['wait_ns'] for t in d['processes'][0]['gil']['threads'])[-2]");
    cr_log_info("%s: GIL waits %.1f%% and %.1f%% of %.2f s", shape, 100 * first / att, 100 * second / att,
                att / 1e9);
    cr_assert_geq(second / att, 0.25, "%s: both threads wait >= 25%% of the attached time: %.1f%%, %.1f%%",
                  shape, 100 * first / att, 100 * second / att);
    cr_assert_leq(first / att, 1.01, "%s: no thread waits longer than it was watched", shape);
    cr_assert_gt(at_test_json_num(json, "d['processes'][0]['samples']['thread_samples']"), 0,
                 "%s: the BPF sampler's stacks fill the usual samples view", shape);
    cr_assert(at_test_json_num(json, "{t['name'] for t in d['processes'][0]['gil']['threads'] if t['named']}"
                                     " >= {'spin-0', 'spin-1'}"),
              "%s: the GIL rows carry the threads' names", shape);
    cr_assert(at_test_json_num(json, "[d['processes'][0][k]['source'] for k in ('gil', 'samples')] == ['ebpf', 'ebpf']"),
              "%s: the GIL and samples views are where the shim's are, marked source ebpf", shape);
    cr_assert(at_test_json_num(json, "[t['hold_ns'] for t in d['processes'][0]['gil']['threads']] == "
                                     "[None] * len(d['processes'][0]['gil']['threads'])"),
              "%s: what eBPF does not measure (holds) is null, not zero", shape);
    /* the saved session renders again, with the eBPF views in the text */
    rc = at_test_shf(NULL, &err, "%s report %s/s", at_test_archtrace(), tmp);
    cr_assert_eq(rc, 0, "%s: archtrace report DIR", shape);
    cr_assert(strstr(err, "measured by ebpf") && strstr(err, "WAITED") && strstr(err, "(attached: -p)"),
              "%s: the text report has the GIL table, from eBPF:\n%s", shape, err);
    cr_assert(strstr(err, "spin-0") && strstr(err, "spin-1"), "%s: and names its threads:\n%s", shape, err);
    at_test_shf(NULL, NULL, "rm -rf '%s'", tmp);
    free(err), free(tmp);
}

AT_TEST_EACH_END_SHAPE(record_bpf, gil_waits_two_threads, .timeout = 40) { gil(shape); }

/* ---- imports and GC: record until the target exits ------------------------------ */

/* Start the fixture (it waits for GO), attach `record --bpf` without -d,
 * wait for its "recording" line, let the fixture go, and wait for both. */
static void record_burst(const char *py, char *fixture, char *extra, const char *tmp, const char *json)
{
    char go[PATH_MAX], pidarg[16], dir[PATH_MAX];
    proc_t t, a;
    snprintf(go, sizeof go, "%s/go", tmp);
    snprintf(dir, sizeof dir, "%s/s", tmp);
    char *targv[] = { (char *)py, fixture, go, extra, NULL };
    snprintf(pidarg, sizeof pidarg, "%d", (int)start_target(&t, targv));
    char *aargv[] = { (char *)at_test_archtrace(), "-p", pidarg, "record", "--bpf", "--no-sample", "-o", dir,
                      "--json", (char *)json, NULL };
    spawn(&a, aargv, 2);
    char *line = wait_line(&a, "archtrace: ");
    if (!strstr(line, "recording process")) {
        reap(&t, 0);
        int rc = reap(&a, 10);
        skip_if_refused(rc, line);
        cr_assert_fail("record --bpf did not attach (exit %d): %s", rc, line);
    }
    free(line);
    int fd = open(go, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    cr_assert_geq(fd, 0, "create %s", go);
    close(fd);
    cr_assert_eq(reap(&t, 30), 0, "the fixture ends by itself, exit 0");
    cr_assert_eq(reap(&a, 30), 0, "record --bpf ends with the target, exit 0");
}

static void imports(const char *shape)
{
    const char *py = at_test_python_or_skip(shape);
    char *tmp = at_test_tmpdir(), json[PATH_MAX];
    snprintf(json, sizeof json, "%s/r.json", tmp);
    record_burst(py, "tests/fixtures/bpf_imports.py", NULL, tmp, json);
    if (at_test_json_num(json, "d['processes'][0]['imports'] is None"))
        cr_skip_test("%s: imports view unavailable on this interpreter", shape);
    cr_assert(at_test_json_num(json, "d['processes'][0]['bpf']['exited']"), "%s: recorded until the exit", shape);
    double n = at_test_json_num(json, "len(d['processes'][0]['imports'])");
    cr_assert_geq(n, 30, "%s: dozens of modules loaded, %.0f seen", shape, n);
    cr_assert(at_test_json_num(json, "{i['source'] for i in d['processes'][0]['imports']} == {'ebpf'}"),
              "%s: every import row says eBPF saw it", shape);
    cr_assert(at_test_json_num(json, "all((i['enclosing'] is None) == (i['depth'] == 0) "
                                     "for i in d['processes'][0]['imports'] if i['depth'] < 64)"),
              "%s: nested imports point at the import they ran inside", shape);
    static const char *const mods[] = { "json", "asyncio", "sqlite3" };
    for (size_t i = 0; i < sizeof mods / sizeof mods[0]; i++) {
        char expr[256];
        snprintf(expr, sizeof expr, "([i['cumulative_us'] for i in d['processes'][0]['imports'] "
                 "if i['module'] == '%s'] or [-1])[0]", mods[i]);
        double us = at_test_json_num(json, expr);
        cr_assert(us > 1 && us < 20e6, "%s: import %s timed: %.1f us", shape, mods[i], us);
    }
    char *trace = NULL;
    int rc = at_test_shf(&trace, NULL, "%s report -q --format chrome %s/s | python3 -c 'import json,sys; "
                         "print(sum(e.get(\"cat\") == \"import\" and e[\"args\"][\"source\"] == \"ebpf\" "
                         "for e in json.load(sys.stdin)[\"traceEvents\"]))'", at_test_archtrace(), tmp);
    cr_assert_eq(rc, 0, "%s: the Chrome trace renders", shape);
    cr_assert_eq(strtod(trace, NULL), n, "%s: one Chrome slice per import (%s vs %.0f)", shape, trace, n);
    at_test_shf(NULL, NULL, "rm -rf '%s'", tmp);
    free(trace), free(tmp);
}

AT_TEST_EACH_END_SHAPE(record_bpf, imports_with_times, .timeout = 60) { imports(shape); }

static void gc_runs(const char *shape)
{
    const char *py = at_test_python_or_skip(shape);
    char *tmp = at_test_tmpdir(), json[PATH_MAX];
    snprintf(json, sizeof json, "%s/r.json", tmp);
    record_burst(py, "tests/fixtures/bpf_gc.py", "200", tmp, json);
    if (at_test_json_num(json, "d['processes'][0]['bpf']['gc'] is None"))
        cr_skip_test("%s: gc view unavailable on this interpreter", shape);
    double full = at_test_json_num(json, "[g['runs'] for g in d['processes'][0]['bpf']['gc']['by_generation'] "
                            "if g['generation'] == 2][0]");
    cr_assert(full >= 200 && full <= 230, "%s: 200 gc.collect() calls, %.0f generation-2 runs", shape, full);
    cr_assert_geq(at_test_json_num(json, "d['processes'][0]['bpf']['gc']['runs']"), full, "%s: counted in the total", shape);
    at_test_shf(NULL, NULL, "rm -rf '%s'", tmp);
    free(tmp);
}

AT_TEST_EACH_END_SHAPE(record_bpf, gc_runs_counted, .timeout = 60) { gc_runs(shape); }

/* ---- refusals ----------------------------------------------------------------------- */

Test(record_bpf, refusals_have_one_line_and_a_status, .timeout = 30)
{
    char *err = NULL;
    int rc = at_test_shf(NULL, &err, "sleep 5 & s=$!; %s -p $s record --bpf -d 1; r=$?; kill $s; exit $r",
                         at_test_archtrace());
    cr_assert_eq(rc, 4, "not Python: exit 4, got %d: %s", rc, err);
    cr_assert(strstr(err, "not a Python process"), "says why: %s", err);
    cr_assert_eq(strchr(err, '\n'), err + strlen(err) - 1, "one line: %s", err);
    free(err);
    rc = at_test_shf(NULL, &err, "%s -p 999999999 record --bpf -d 1", at_test_archtrace());
    cr_assert_eq(rc, 3, "no such process: exit 3, got %d: %s", rc, err);
    free(err);
}

/* A CPython archtrace has no layout for is still refused before anything
 * is loaded (status 5, whether or not the kernel allows eBPF), with the
 * versions it reads.  A real one: pyenv's 3.10 where it is installed (a
 * free-threaded 3.13t, the other refusal, is not installed here; its
 * check is py_proc's, test_remote and test_run cover it). */
static const char *python310(void)
{
    static char path[4096];
    char *out = NULL;
    if (!path[0] && at_test_shf(&out, NULL, "ls -d \"$(pyenv root 2>/dev/null)\"/versions/3.10*/bin/python3.10 "
                                "2>/dev/null | tail -1") == 0 && out && out[0] == '/')
        snprintf(path, sizeof path, "%.*s", (int)strcspn(out, "\n"), out);
    free(out);
    return path[0] ? path : NULL;
}

Test(record_bpf, a_python_without_a_layout_is_refused, .timeout = 30)
{
    const char *py = python310();
    if (!py)
        cr_skip_test("no CPython 3.10 (pyenv) on this machine to be refused");
    char *err = NULL;
    int rc = at_test_shf(NULL, &err,
                         "%s -c 'import time; time.sleep(30)' & p=$!; sleep 0.5; "
                         "%s -p $p record --bpf -d 1; r=$?; kill $p; exit $r",
                         py, at_test_archtrace());
    cr_assert_eq(rc, 5, "3.10: exit 5, got %d: %s", rc, err);
    cr_assert(strstr(err, "archtrace: process ") == err && strstr(err, " runs Python 3.10") &&
              strstr(err, "; archtrace supports CPython 3.11 to 3.13\n"),
              "3.10: says why and what is read: %s", err);
    cr_assert_eq(strchr(err, '\n'), err + strlen(err) - 1, "3.10: one line: %s", err);
    free(err);
}

/* ---- --subprocesses: the tree under PID ------------------------------------------ */

/* The JSON report's number for process pid: `field` an expression on p. */
static double proc_num(const char *json, int pid, const char *field)
{
    char expr[512];
    snprintf(expr, sizeof expr, "([%s for p in d['processes'] if p['pid'] == %d] or [-1])[0]", field, pid);
    return at_test_json_num(json, expr);
}

/* Every folded line naming `func` is one of process pid's: 1, or 0. */
static int folded_only_under(const char *folded, const char *func, int pid)
{
    char mine[64];
    int seen = 0;
    snprintf(mine, sizeof mine, "(%d);thread ", pid);
    for (const char *line = folded; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        const char *eol = strchr(line, '\n');
        size_t len = eol ? (size_t)(eol - line) : strlen(line);
        if (!memmem(line, len, func, strlen(func)))
            continue;
        if (!memmem(line, len, mine, strlen(mine)))
            return 0;
        seen = 1;
    }
    return seen;
}

/* A shell whose child sleeps 0.5 s, then execs a CPython (bpf_tree.py,
 * busy in child_c for 3 s): attached to the shell before the child is
 * Python, record --bpf --subprocesses finds it by its exec and records
 * it under its own pid. */
static void shell_child(const char *shape)
{
    const char *py = at_test_python_or_skip(shape);
    char *tmp = at_test_tmpdir(), cmd[PATH_MAX * 3], json[PATH_MAX], *err = NULL, *folded = NULL;
    snprintf(json, sizeof json, "%s/r.json", tmp);
    snprintf(cmd, sizeof cmd, "(sleep 0.5; exec '%s' tests/fixtures/bpf_tree.py '%s' 3 c); :", py, tmp);
    pid_t shell = at_test_spawn_group(cmd, "/dev/null", NULL);
    int rc = at_test_shf(NULL, &err, "%s -q -p %d record --bpf --subprocesses -d 2.5 -o %s/s --json %s",
                         at_test_archtrace(), (int)shell, tmp, json);
    skip_if_refused(rc, err);
    cr_assert_eq(rc, 0, "%s: record --bpf --subprocesses of a shell exits 0: %s", shape, err);
    int child = at_test_pid_file(tmp, "c");
    char expr[256];
    snprintf(expr, sizeof expr, "[(p['pid'], p['ppid']) for p in d['processes']] == [(%d, %d)]", child, (int)shell);
    cr_assert(at_test_json_num(json, expr), "%s: the child alone, once, the shell its parent: %s", shape,
              at_test_json(json, "[(p['pid'], p['ppid']) for p in d['processes']]"));
    double samples = proc_num(json, child, "p['samples']['thread_samples']");
    double attached = proc_num(json, child, "p['bpf']['attached_ns']") / 1e9;
    cr_log_info("%s: child %d: %.0f samples in %.2f s attached", shape, child, samples, attached);
    cr_assert(attached > 0.5 && attached < 2.5, "%s: attached from its exec to -d: %.2f s", shape, attached);
    cr_assert_geq(samples, 10, "%s: the child's busy loop sampled: %.0f samples", shape, samples);
    rc = at_test_shf(&folded, NULL, "%s report -q --format collapsed %s/s", at_test_archtrace(), tmp);
    cr_assert_eq(rc, 0, "%s: the session renders as folded stacks", shape);
    cr_assert(folded_only_under(folded, "child_c", child), "%s: child_c under the child's pid %d:\n%s", shape,
              child, folded);
    kill(-shell, SIGKILL);
    at_test_shf(NULL, NULL, "rm -rf '%s'", tmp);
    free(err), free(folded), free(tmp);
}

AT_TEST_EACH_IN(AT_TEST_SHAPES_311, record_bpf, subprocesses_shell_child_exec_later, .timeout = 60)
{
    shell_child(shape);
}

/* A Python parent with two Python children, all three already running:
 * each recorded once, with its own function and its parent. */
static void python_family(const char *shape)
{
    const char *py = at_test_python_or_skip(shape);
    char *tmp = at_test_tmpdir(), cmd[PATH_MAX * 3], json[PATH_MAX], *err = NULL, *folded = NULL;
    snprintf(json, sizeof json, "%s/r.json", tmp);
    snprintf(cmd, sizeof cmd, "exec '%s' tests/fixtures/bpf_tree.py '%s' 6 parent", py, tmp);
    pid_t parent = at_test_spawn_group(cmd, "/dev/null", NULL);
    int kid[2] = { at_test_pid_file(tmp, "a"), at_test_pid_file(tmp, "b") };
    at_test_pid_file(tmp, "parent");
    int rc = at_test_shf(NULL, &err, "%s -p %d record --bpf --subprocesses -d 2 -o %s/s --json %s",
                         at_test_archtrace(), (int)parent, tmp, json);
    skip_if_refused(rc, err);
    cr_assert_eq(rc, 0, "%s: record --bpf --subprocesses of a Python parent exits 0: %s", shape, err);
    char expr[512];
    snprintf(expr, sizeof expr, "sorted((p['pid'], p['ppid']) for p in d['processes']) == "
             "sorted([(%d, %d), (%d, %d), (%d, %d)])", (int)parent, (int)getpid(), kid[0], (int)parent, kid[1],
             (int)parent);
    cr_assert(at_test_json_num(json, expr), "%s: the three processes, each once, with their parents: %s", shape,
              at_test_json(json, "[(p['pid'], p['ppid']) for p in d['processes']]"));
    rc = at_test_shf(&folded, NULL, "%s report -q --format collapsed %s/s", at_test_archtrace(), tmp);
    cr_assert_eq(rc, 0, "%s: the session renders as folded stacks", shape);
    const int pids[3] = { (int)parent, kid[0], kid[1] };
    const char *const funcs[3] = { "parent_busy", "child_a", "child_b" };
    for (int i = 0; i < 3; i++) {
        double samples = proc_num(json, pids[i], "p['samples']['thread_samples']");
        cr_log_info("%s: %s (%d): %.0f samples", shape, funcs[i], pids[i], samples);
        cr_assert_geq(samples, 5, "%s: %s's process sampled: %.0f", shape, funcs[i], samples);
        cr_assert(folded_only_under(folded, funcs[i], pids[i]), "%s: %s under pid %d only:\n%s", shape, funcs[i],
                  pids[i], folded);
    }
    char *header = NULL;   /* the text report lists each process once too */
    rc = at_test_shf(NULL, &header, "%s report %s/s", at_test_archtrace(), tmp);
    cr_assert(rc == 0 && strstr(header, "Python processes: 3"), "%s: the text report counts three:\n%s", shape,
              header);
    kill(-parent, SIGKILL);
    at_test_shf(NULL, NULL, "rm -rf '%s'", tmp);
    free(err), free(folded), free(header), free(tmp);
}

AT_TEST_EACH_IN(AT_TEST_SHAPES_311, record_bpf, subprocesses_parent_and_two_children, .timeout = 60)
{
    python_family(shape);
}

Test(record_bpf, subprocesses_refusals_and_help, .timeout = 30)
{
    char *out = NULL, *err = NULL;
    int rc = at_test_shf(NULL, &err, "sleep 5 & s=$!; %s -p $s record --bpf --subprocesses -d 1; r=$?; kill $s; "
                         "exit $r", at_test_archtrace());
    cr_assert_eq(rc, 4, "a tree without Python: exit 4, got %d: %s", rc, err);
    cr_assert(strstr(err, "no Python process in the tree"), "says why: %s", err);
    free(err);
    rc = at_test_shf(NULL, &err, "%s -p 2147483646 record --bpf --subprocesses -d 1", at_test_archtrace());
    cr_assert_eq(rc, 3, "no such process: exit 3, got %d: %s", rc, err);
    free(err);
    rc = at_test_shf(&out, NULL, "%s --help", at_test_archtrace());
    cr_assert(rc == 0 && strstr(out, "-p PID record [--bpf] [--subprocesses]") &&
              strstr(out, "(--bpf) the probes of each CPython binary"),
              "--help says record takes --bpf with --subprocesses:\n%s", out);
    free(out);
}

TestSuite(record_bpf, .fini = at_test_kill_groups);
