/* SPDX-License-Identifier: MIT */
/* test_py_names.c - thread names read from outside equal the names the
 * program gives its threads, on 3.11 (both build shapes), 3.12 and 3.13. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "remote/py_names.h"
#include "session/thread_names.h"
#include "testlib.h"
#include "fixtures/testutil.h"

#define MAX_TRUTH 16

typedef struct target {
    pid_t pid;
    char out[512];          /* its stdout, a file                    */
    char *text;             /* what it printed up to "ready PID"     */
} target_t;

/* Start the fixture with stdout to a file; wait for its "ready" line. */
static void start(target_t *t, const char *py, const char *arg)
{
    char *dir = at_test_tmpdir();
    snprintf(t->out, sizeof t->out, "%s/out", dir);
    free(dir);
    t->pid = fork();
    cr_assert_geq(t->pid, 0, "fork");
    if (t->pid == 0) {
        int fd = open(t->out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0 || dup2(fd, 1) < 0)
            _exit(127);
        execl(py, py, "tests/fixtures/thread_names.py", arg, (char *)NULL);
        _exit(127);
    }
    for (double end = tu_now() + 20; tu_now() < end; tu_sleep(0.02)) {
        t->text = tu_slurp(t->out);
        if (t->text && strstr(t->text, "ready "))
            return;
        free(t->text);
    }
    tu_kill(t->pid);
    cr_assert_fail("the fixture did not print \"ready PID\"");
}

static void stop(target_t *t)
{
    tu_kill(t->pid);
    free(t->text);
    unlink(t->out);
}

static void open_proc(at_py_proc_t *p, pid_t pid)
{
    char err[256] = "";
    int rc = at_py_proc_open(p, pid, err, sizeof err);
    cr_assert_eq(rc, 0, "at_py_proc_open(%d): %s", (int)pid, err);
}

static void names_match_the_program(const char *shape)
{
    const char *py = at_test_python_or_skip(shape);
    target_t t;
    at_py_proc_t p;
    at_py_thread_name_t got[MAX_TRUTH];
    start(&t, py, NULL);
    open_proc(&p, t.pid);
    int n = at_py_thread_names(&p, got, MAX_TRUTH);
    int truth = 0;
    char *save = NULL;
    for (char *line = strtok_r(t.text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        unsigned tid;
        int off = 0;
        if (sscanf(line, "name %u %n", &tid, &off) != 1 || !off)
            continue;
        truth++;
        const char *name = at_py_thread_name_of(got, n > 0 ? n : 0, tid);
        cr_assert(name, "%s: thread %u (%s) has a name", shape, tid, line + off);
        cr_assert_str_eq(name, line + off, "%s: thread %u's name", shape, tid);
    }
    cr_assert_eq(truth, 5, "%s: the program printed its 5 threading threads", shape);
    cr_assert_eq(n, truth, "%s: exactly the threading threads have names (the _thread one has none): %d",
                 shape, n);
    stop(&t);
}

ParameterizedTestParameters(py_names, names_match_the_program)
{
    static at_test_shape_t shapes[] = AT_TEST_SHAPES;
    return cr_make_param_array(at_test_shape_t, shapes, sizeof shapes / sizeof *shapes);
}

ParameterizedTest(at_test_shape_t *s, py_names, names_match_the_program, .timeout = 30)
{
    names_match_the_program(s->name);
}

/* A program that never imported threading has no names: 0, not an error. */
Test(py_names, no_threading_module_no_names, .timeout = 30)
{
    const char *py = at_test_python_or_skip("static");
    target_t t;
    at_py_proc_t p;
    at_py_thread_name_t got[MAX_TRUTH];
    start(&t, py, "none");
    open_proc(&p, t.pid);
    int n = at_py_thread_names(&p, got, MAX_TRUTH);
    cr_assert_eq(n, 0, "no threading module: no names, got %d", n);
    stop(&t);
    waitpid(t.pid, NULL, 0);
    cr_assert_eq(at_py_thread_names(&p, got, MAX_TRUTH), -ESRCH, "a process gone: -ESRCH");
}

Test(py_names, name_of_unknown_tid_is_null)
{
    at_py_thread_name_t v[2] = { { 10, 1, "a" }, { 11, 2, "b" } };
    cr_assert_str_eq(at_py_thread_name_of(v, 2, 11), "b", "found by tid");
    cr_assert_null(at_py_thread_name_of(v, 2, 12), "an unknown tid has no name");
    cr_assert_null(at_py_thread_name_of(v, 0, 10), "an empty table has no names");
}

/* `-p PID record` keeps the names with the stacks: the collapsed stacks
 * and the JSON name each thread as the program does. */
static void record_keeps_names(const char *shape)
{
    const char *py = at_test_python_or_skip(shape);
    target_t t;
    char *dir = at_test_tmpdir(), *out = NULL, *err = NULL, json[600];
    start(&t, py, NULL);
    int rc = at_test_shf(NULL, &err, "rmdir '%s' && %s -p %d record -d 1 -q -o '%s'", dir, at_test_archtrace(),
                         (int)t.pid, dir);
    cr_assert_eq(rc, 0, "%s: record failed (%d): %s", shape, rc, err);
    rc = at_test_shf(&out, NULL, "%s report --idle --format collapsed '%s'", at_test_archtrace(), dir);
    cr_assert_eq(rc, 0, "%s: collapsed report failed", shape);
    unsigned tid = 0;
    const char *line = strstr(t.text, " custom-subclass\n");
    cr_assert(line, "the fixture printed the subclass thread");
    while (line > t.text && line[-1] != '\n')
        line--;
    cr_assert_eq(sscanf(line, "name %u", &tid), 1, "its tid");
    char want[128];
    snprintf(want, sizeof want, ";thread %u \"custom-subclass\";", tid);
    cr_assert(strstr(out, want), "%s: collapsed stacks name the thread (%s):\n%s", shape, want, out);
    cr_assert(strstr(out, "\"naïve ünïcode ✓\";"), "%s: a UTF-8 name comes through:\n%s", shape, out);
    snprintf(json, sizeof json, "%s/r.json", dir);   /* the threads sleep: --idle keeps their stacks */
    rc = at_test_shf(NULL, NULL, "%s report --idle -q --json '%s' '%s'", at_test_archtrace(), json, dir);
    cr_assert_eq(rc, 0, "%s: JSON report failed", shape);
    char *names = at_test_json(json, "sorted({s.get('thread_name', '-') for p in d['processes'] "
                                     "for s in p['samples']['stacks']})");
    cr_assert(names && strstr(names, "worker-0-renamed") && strstr(names, "MainThread"),
              "%s: JSON stacks carry thread_name: %s", shape, names ? names : "(none)");
    free(names);
    free(out);
    free(err);
    stop(&t);
    at_test_shf(NULL, NULL, "rm -rf '%s'", dir);
    free(dir);
}

ParameterizedTestParameters(py_names, record_keeps_names)
{
    static at_test_shape_t shapes[] = AT_TEST_SHAPES;
    return cr_make_param_array(at_test_shape_t, shapes, sizeof shapes / sizeof *shapes);
}

ParameterizedTest(at_test_shape_t *s, py_names, record_keeps_names, .timeout = 30)
{
    record_keeps_names(s->name);
}

/* When the samplers read names again: once a second, or after 50 ms
 * while a running thread is new; a thread two readings found without a
 * name is no longer new (a _thread or C thread would otherwise cost a
 * reading every 50 ms for as long as it lives). */
Test(py_names, when_names_are_read_again)
{
    at_thread_names_t t = { 0 };
    const uint64_t ms = 1000000ull, t0 = 5000 * ms;
    cr_assert_eq(at_thread_names_due(&t, t0), AT_NAMES_DUE, "never read: due");
    t.read_ns = t0;
    cr_assert_eq(at_thread_names_due(&t, t0 + 10 * ms), AT_NAMES_NOT_DUE, "10 ms later: not due");
    cr_assert_eq(at_thread_names_due(&t, t0 + 60 * ms), AT_NAMES_IF_NEW_THREAD, "60 ms later: for new threads");
    cr_assert_eq(at_thread_names_due(&t, t0 + 1100 * ms), AT_NAMES_DUE, "1.1 s later: due");

    cr_assert(!at_thread_names_known(&t, 7), "an unseen thread is new");
    at_thread_names_looked_up(&t, 7);
    cr_assert(!at_thread_names_known(&t, 7), "one reading without a name: still new");
    at_thread_names_looked_up(&t, 7);
    cr_assert(at_thread_names_known(&t, 7), "two readings without a name: not new");
    cr_assert_null(at_thread_names_get(&t, 7), "and it has no name");
    cr_assert_eq(at_thread_names_set(&t, 7, "late-name"), 0, "set");
    cr_assert_str_eq(at_thread_names_get(&t, 7), "late-name", "a later reading names it");
    at_thread_names_looked_up(&t, 8);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    at_thread_names_save(&t, f);
    fclose(f);
    cr_assert_str_eq(buf, "tname\t7\tlate-name\n", "only names are saved, not threads looked up");
    free(buf);
    at_thread_names_free(&t);
}
