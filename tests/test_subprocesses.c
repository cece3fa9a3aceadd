/* SPDX-License-Identifier: MIT */
/* test_subprocesses.c - `-p PID dump --subprocesses`, `-p PID record
 * --subprocesses` and `top -p PID` on a tree whose root is not Python: a
 * shell (tests/fixtures/tree_parent.sh) with Python workers of two
 * interpreters under it, and one more worker started after the attach.
 * Each Python process is shown once, with the shell as its parent, and
 * with its own stack; the late one is recorded from when it appears.
 * Without --subprocesses, -p on the shell is still refused with exit 4. */
#include <criterion/criterion.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testlib.h"

typedef struct tree {
    char *dir;                /* the workers' ready files                  */
    pid_t shell;              /* the root: tree_parent.sh                  */
    int a, b;                 /* the first two workers' pids               */
    const char *py_b;         /* worker b's (and c's) interpreter          */
} tree_t;

/* The shell with worker a on 3.11 static and b on the newest CPython
 * here (3.13, else 3.12, else 3.11 shared), both spinning `secs`. */
static void start_tree(tree_t *t, double secs)
{
    const char *py_a = at_test_python_or_skip("static");
    t->py_b = at_test_python("3.13") ? at_test_python("3.13")
            : at_test_python("3.12") ? at_test_python("3.12") : at_test_python_or_skip("shared");
    t->dir = at_test_tmpdir();
    char cmd[PATH_MAX * 4];
    snprintf(cmd, sizeof cmd, "exec sh tests/fixtures/tree_parent.sh %s %s %s %g", t->dir, py_a, t->py_b, secs);
    t->shell = at_test_spawn_group(cmd, "/dev/null", NULL);
    cr_assert_gt(t->shell, 0, "cannot start the shell");
    t->a = at_test_pid_file(t->dir, "a");
    t->b = at_test_pid_file(t->dir, "b");
}

static void end_tree(tree_t *t)
{
    kill(-t->shell, SIGKILL);
    at_test_shf(NULL, NULL, "rm -rf '%s'", t->dir);
    free(t->dir);
}

static int count_of(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* ---- dump ------------------------------------------------------------------ */

Test(subprocesses, dump_every_python_under_a_shell, .timeout = 60)
{
    tree_t t;
    start_tree(&t, 20);
    char *out = NULL, *err = NULL, head[128];
    int rc = at_test_shf(&out, &err, "%s -p %d dump --subprocesses", at_test_archtrace(), (int)t.shell);
    cr_assert_eq(rc, 0, "dump --subprocesses of a shell: exit %d: %s", rc, err);
    cr_assert_eq(count_of(out, "Process "), 2, "two Python processes, each once:\n%s", out);
    for (int i = 0; i < 2; i++) {
        snprintf(head, sizeof head, "Process %d (", i ? t.b : t.a);
        char *at = strstr(out, head);
        cr_assert(at, "process %d missing:\n%s", i ? t.b : t.a, out);
        char *eol = strchr(at, '\n');
        snprintf(head, sizeof head, ", parent %d (", (int)t.shell);
        cr_assert(eol && memmem(at, (size_t)(eol - at), head, strlen(head)), "its parent is the shell:\n%s", out);
    }
    char *a = strstr(out, "in worker_a"), *b = strstr(out, "in worker_b");
    cr_assert(a && b, "each worker's own stack:\n%s", out);
    cr_assert_lt(strstr(out, "Process ") - out, a - out, "stacks under their process:\n%s", out);
    free(out), free(err);

    /* the same as one JSON document: both processes, the shell their ppid */
    char json[PATH_MAX], expr[256];
    snprintf(json, sizeof json, "%s/dump.json", t.dir);
    rc = at_test_shf(NULL, &err, "%s -p %d dump --subprocesses --json %s >/dev/null", at_test_archtrace(),
                     (int)t.shell, json);
    cr_assert_eq(rc, 0, "dump --subprocesses --json: exit %d: %s", rc, err);
    free(err);
    snprintf(expr, sizeof expr, "sorted((p['pid'], p['ppid']) for p in d['processes']) == sorted([(%d, %d), (%d, %d)])",
             t.a, (int)t.shell, t.b, (int)t.shell);
    cr_assert(at_test_json_num(json, expr), "both processes in the JSON, each with its ppid");

    /* without --subprocesses the shell is what it is: not Python */
    rc = at_test_shf(NULL, &err, "%s -p %d dump", at_test_archtrace(), (int)t.shell);
    cr_assert_eq(rc, 4, "dump of a shell without --subprocesses: want 4, got %d (%s)", rc, err);
    cr_assert(strstr(err, "is not a Python process"), "the reason: %s", err);
    free(err);
    end_tree(&t);
}

/* ---- record ---------------------------------------------------------------- */

Test(subprocesses, record_follows_children_that_start_later, .timeout = 90)
{
    tree_t t;
    start_tree(&t, 5);
    char json[PATH_MAX], go[PATH_MAX], log[PATH_MAX];
    snprintf(json, sizeof json, "%s/report.json", t.dir);
    snprintf(go, sizeof go, "%s/go", t.dir);
    snprintf(log, sizeof log, "%s/record.err", t.dir);
    char cmd[PATH_MAX * 3];
    snprintf(cmd, sizeof cmd, "%s -p %d record --subprocesses -q --json %s", at_test_archtrace(), (int)t.shell,
             json);
    pid_t rec = at_test_spawn_group(cmd, "/dev/null", log);
    usleep(700000);                      /* attached: now the late worker */
    at_test_shf(NULL, NULL, "touch '%s'", go);
    int c = at_test_pid_file(t.dir, "c");
    int st = -1;
    cr_assert_eq(waitpid(rec, &st, 0), rec, "record ends when the tree does");
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "record exits 0, not status 0x%x", st);
    char *err = NULL;
    at_test_shf(&err, NULL, "cat '%s'", log);
    cr_assert(at_test_wait_file(json, 1000), "no report: %s", err);
    char expr[512];
    snprintf(expr, sizeof expr, "sorted(p['pid'] for p in d['processes']) == sorted([%d, %d, %d])", t.a, t.b, c);
    cr_assert(at_test_json_num(json, expr), "the three workers, each once: %s", at_test_json(json, "[p['pid'] for p in d['processes']]"));
    snprintf(expr, sizeof expr, "all(p['ppid'] == %d for p in d['processes'])", (int)t.shell);
    cr_assert(at_test_json_num(json, expr), "each with the shell as its parent");
    for (int i = 0; i < 3; i++) {
        int pid = i == 0 ? t.a : i == 1 ? t.b : c;
        snprintf(expr, sizeof expr, "[p['samples']['thread_samples'] for p in d['processes'] if p['pid'] == %d][0]", pid);
        double samples = at_test_json_num(json, expr);
        /* c spins 2 s from when it is seen (at most SCAN_NS late) at 100 Hz */
        cr_assert_gt(samples, i == 2 ? 120 : 300, "worker %c sampled: %g samples", 'a' + i, samples);
    }
    snprintf(expr, sizeof expr, "'worker_c' in str([p['samples'] for p in d['processes'] if p['pid'] == %d][0])", c);
    cr_assert(at_test_json_num(json, expr), "the late worker's stacks are its own");
    free(err);
    end_tree(&t);
}

/* ---- top -p of a shell --------------------------------------------------------- */

Test(subprocesses, top_of_a_shell_shows_a_python_child, .timeout = 60)
{
    tree_t t;
    start_tree(&t, 20);
    char *out = NULL, *err = NULL;
    int rc = at_test_shf(&out, &err, "NO_COLOR=1 timeout --preserve-status -s INT 2.5 %s top -p %d",
                         at_test_archtrace(), (int)t.shell);
    cr_assert_eq(rc, 0, "top -p of a shell: exit %d: %s", rc, err);
    cr_assert(strstr(out, "in spin (tree_worker.py:"), "a worker's function is shown:\n%s", out);
    char procs[64];
    snprintf(procs, sizeof procs, "procs %d (", (int)t.shell);
    cr_assert(strstr(out, procs), "the tree from the shell down:\n%s", out);
    free(out), free(err);
    end_tree(&t);
}

/* ---- refusals ------------------------------------------------------------------ */

Test(subprocesses, refusals_say_why, .timeout = 30)
{
    char *err = NULL;
    int rc = at_test_shf(NULL, &err, "sleep 5 & p=$!; %s -p $p dump --subprocesses; r=$?; kill $p; exit $r",
                         at_test_archtrace());
    cr_expect_eq(rc, 4, "a tree without Python: want 4, got %d (%s)", rc, err);
    cr_expect(strstr(err, "no Python process in the tree"), "the reason: %s", err);
    free(err);
    rc = at_test_shf(NULL, &err, "%s -p 2147483646 record --subprocesses -d 1", at_test_archtrace());
    cr_expect_eq(rc, 3, "no such process: want 3, got %d (%s)", rc, err);
    free(err);
    rc = at_test_shf(NULL, &err, "%s -p 1 dump --subprocesses --bpf", at_test_archtrace());
    cr_expect(rc == 125 && strstr(err, "--bpf"), "dump with --bpf: want 125, got %d (%s)", rc, err);
    free(err);
    rc = at_test_shf(NULL, &err, "%s --subprocesses true", at_test_archtrace());
    cr_expect(rc == 125 && strstr(err, "--subprocesses"), "with run: want 125, got %d (%s)", rc, err);
    free(err);
}

TestSuite(subprocesses, .fini = at_test_kill_groups);
