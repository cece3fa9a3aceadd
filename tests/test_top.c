/* SPDX-License-Identifier: MIT */
/* test_top.c - `archtrace top`: the full screen driven in tmux (80x24),
 * the one-line-per-second log when stdout is not a terminal, on both
 * python3.11 build shapes, and -p PID on a Python that archtrace did not
 * start, there and on 3.12 and 3.13.  The workload (tests/fixtures/top_two_threads.py) is two
 * threads burning CPU in pure Python: each must hold the GIL a plausible
 * share of the time (20..80 %), and both must be on screen. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "testlib.h"

#define FIXTURE      "tests/fixtures/top_two_threads.py"
#define HELD_MIN     20.0
#define HELD_MAX     80.0

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static char *slurp(const char *path)
{
    char *out = NULL;
    at_test_shf(&out, NULL, "cat '%s'", path);
    return out;
}

/* ---- parsing what top shows ----------------------------------------------- */

/* The screen row of a thread named `name`: " TID NAME [*] HELD WAIT IDLE
 * function".  1 and *held set when the row is there with a number. */
static int screen_held(const char *screen, const char *name, double *held)
{
    const char *row = strstr(screen, name);
    if (!row)
        return 0;
    const char *p = row + strlen(name);
    while (*p == ' ' || *p == '*')
        p++;
    char *end;
    *held = strtod(p, &end);
    return end != p;
}

/* In a log line: "thread TID (NAME) held X% ...".  1 when found with a number. */
static int log_held(const char *line, const char *who, double *held)
{
    char key[128];
    snprintf(key, sizeof key, "%s held ", who);
    const char *at = strstr(line, key);
    if (!at)
        return 0;
    char *end;
    *held = strtod(at + strlen(key), &end);
    return end != at + strlen(key) && *end == '%';
}

/* ---- tmux ------------------------------------------------------------------- */

typedef struct tmux {
    char sock[64];            /* a private server: -L NAME                */
    char dir[256];            /* scratch: status file, ready file         */
} tmux_t;

static void tmux_start(tmux_t *t, const char *command)
{
    if (at_test_sh("command -v tmux", NULL, NULL) != 0)
        cr_skip_test("tmux is not installed (tools/debian-packages.txt lists it: make deps)");
    char *dir = at_test_tmpdir();
    snprintf(t->dir, sizeof t->dir, "%s", dir);
    free(dir);
    snprintf(t->sock, sizeof t->sock, "archtrace-test-%d-%ld", (int)getpid(), (long)time(NULL));
    int rc = at_test_shf(NULL, NULL,
                         "tmux -L %s -f /dev/null new-session -d -x 80 -y 24 -s top "
                         "\"env -u NO_COLOR TERM=xterm %s; echo \\$? > %s/status; echo TOP-EXITED; sleep 60\"",
                         t->sock, command, t->dir);
    cr_assert_eq(rc, 0, "cannot start tmux");
}

/* The pane as text; with attrs, with its colours as escape sequences. */
static char *tmux_capture_as(tmux_t *t, int attrs)
{
    char *out = NULL;
    at_test_shf(&out, NULL, "tmux -L %s capture-pane -p %s -t top", t->sock, attrs ? "-e" : "");
    return out;
}

static char *tmux_capture(tmux_t *t)
{
    return tmux_capture_as(t, 0);
}

static void tmux_stop(tmux_t *t)
{
    at_test_shf(NULL, NULL, "tmux -L %s kill-server", t->sock);
    at_test_shf(NULL, NULL, "rm -rf '%s'", t->dir);
}

/* Poll the pane until both burners show a GIL share (the first frames
 * come before the threads run or before two .gil readings). */
static char *capture_both(tmux_t *t, double *a, double *b)
{
    char *screen = NULL;
    for (int i = 0; i < 40; i++) {
        free(screen);
        screen = tmux_capture(t);
        if (screen_held(screen, "burner-a", a) && screen_held(screen, "burner-b", b) && (*a > 0 || *b > 0))
            return screen;
        sleep_ms(250);
    }
    return screen;
}

static void check_screen_fits(const char *screen)
{
    int rows = 0;
    for (const char *p = screen; *p; rows++) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        cr_expect(len <= 80 * 4, "row %d is longer than 80 columns:\n%s", rows, screen);
        p = nl ? nl + 1 : p + len;
    }
    cr_expect_leq(rows, 24, "more than 24 rows:\n%s", screen);
    cr_expect(strncmp(screen, "pid ", 4) == 0, "the header is not on the first row (scrolled?):\n%s", screen);
    cr_expect(strstr(screen, "q quit"), "the key help row is not there:\n%s", screen);
}

static void screen_two_threads(const char *shape)
{
    const char *py = at_test_python_or_skip(shape);
    tmux_t t;
    char cmd[2048], ready[300];
    char *dir = at_test_tmpdir();
    snprintf(ready, sizeof ready, "%s/ready", dir);
    snprintf(cmd, sizeof cmd, "%s top -- %s %s 30 %s", at_test_archtrace(), py, FIXTURE, ready);
    tmux_start(&t, cmd);
    cr_assert(at_test_wait_file(ready, 15000), "%s: the workload never started under top", shape);
    double a = -1, b = -1;
    char *screen = capture_both(&t, &a, &b);
    cr_assert(strstr(screen, "GIL HELD% WAIT% IDLE%"), "%s: no GIL columns on screen:\n%s", shape, screen);
    cr_assert(strstr(screen, "MainThread"), "%s: the main thread is not listed:\n%s", shape, screen);
    cr_assert(a >= HELD_MIN && a <= HELD_MAX, "%s: burner-a holds the GIL %.1f %% (want 20..80):\n%s", shape, a, screen);
    cr_assert(b >= HELD_MIN && b <= HELD_MAX, "%s: burner-b holds the GIL %.1f %% (want 20..80):\n%s", shape, b, screen);
    cr_expect(strstr(screen, "burn (top_two_threads.py"), "%s: burn() is not the current function:\n%s", shape, screen);
    cr_expect(strstr(screen, "IMPORTS") && strstr(screen, "PathFinder"), "%s: no imports with finders:\n%s", shape,
              screen);
    cr_expect(strstr(screen, "MEMORY") && strstr(screen, "peak"), "%s: no memory panel:\n%s", shape, screen);
    check_screen_fits(screen);
    free(screen);
    screen = tmux_capture_as(&t, 1);
    cr_expect(strstr(screen, "\033["), "%s: no colour on a terminal without NO_COLOR", shape);
    free(screen);

    /* q: the command gets SIGINT, top leaves the screen and returns the
     * command's status (130; 137 if it ignored SIGINT for the grace period) */
    char status_path[300];
    snprintf(status_path, sizeof status_path, "%s/status", t.dir);
    at_test_shf(NULL, NULL, "tmux -L %s send-keys -t top q", t.sock);
    cr_assert(at_test_wait_file(status_path, 6000), "%s: q did not end top within 6 s", shape);
    sleep_ms(200);
    char *status = slurp(status_path);
    int st = atoi(status);
    cr_expect(st == 130 || st == 137, "%s: top returned %d after q, want the command's 130 (SIGINT) or 137", shape, st);
    screen = tmux_capture(&t);
    cr_expect(strstr(screen, "TOP-EXITED"), "%s: the normal screen is not back after q:\n%s", shape, screen);
    free(screen);
    free(status);
    tmux_stop(&t);
    at_test_shf(NULL, NULL, "rm -rf '%s'", dir);
    free(dir);
}

Test(top, screen_two_threads_static, .timeout = 60)
{
    screen_two_threads("static");
}

Test(top, screen_two_threads_shared, .timeout = 60)
{
    screen_two_threads("shared");
}

Test(top, no_color_on_screen, .timeout = 30)
{
    const char *py = at_test_python_or_skip("static");
    tmux_t t;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "NO_COLOR=1 %s top -- %s %s 4", at_test_archtrace(), py, FIXTURE);
    tmux_start(&t, cmd);
    char *screen = NULL;
    for (int i = 0; i < 20 && (!screen || !strstr(screen, "MainThread")); i++) {
        sleep_ms(250);
        free(screen);
        screen = tmux_capture_as(&t, 1);
    }
    cr_assert(strstr(screen, "MainThread"), "no frame on screen:\n%s", screen);
    cr_assert(!strchr(screen, '\033'), "NO_COLOR set, yet the screen has attributes:\n%s", screen);
    free(screen);
    tmux_stop(&t);
}

/* ---- log mode ---------------------------------------------------------------- */

/* Lines after the first (which has no GIL interval yet) where both burners
 * show a share: how many, and how many of those are plausible. */
/* Samples behind a log line ("... samples N ..."), 0 if it says none. */
static long log_samples(const char *line)
{
    const char *s = strstr(line, " samples ");
    return s ? strtol(s + 9, NULL, 10) : 0;
}

/* Lines judged: both burners shown, over at least MIN_JUDGED samples (a
 * first line after 0.3 s holds ~30: too few to call a share unfair). */
#define MIN_JUDGED 50

static void count_log(char *out, const char *a, const char *b, int *with, int *plausible)
{
    *with = *plausible = 0;
    for (char *save, *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        double ha, hb;
        if (!log_held(line, a, &ha) || !log_held(line, b, &hb) || log_samples(line) < MIN_JUDGED)
            continue;
        (*with)++;
        *plausible += ha >= HELD_MIN && ha <= HELD_MAX && hb >= HELD_MIN && hb <= HELD_MAX;
    }
}

static void log_two_threads(const char *shape)
{
    const char *py = at_test_python_or_skip(shape);
    char *out = NULL, *err = NULL;
    int rc = at_test_shf(&out, &err, "NO_COLOR=1 %s top -- %s %s 4", at_test_archtrace(), py, FIXTURE);
    cr_assert_eq(rc, 0, "%s: top should return the command's status 0, got %d: %s", shape, rc, err);
    cr_assert(!strchr(out, '\033'), "%s: escape sequences in the log:\n%s", shape, out);
    cr_assert(strstr(out, "done\n"), "%s: the command's own output is lost:\n%s", shape, out);
    cr_assert(strstr(out, " exited 0 "), "%s: no final line with the exit status:\n%s", shape, out);
    cr_assert(strstr(out, " in evil\\x1b[2J (top_two_threads.py:"),
              "%s: the function named with ESC is not shown escaped:\n%s", shape, out);
    int with, plausible;
    count_log(out, "(burner-a)", "(burner-b)", &with, &plausible);
    cr_assert_geq(with, 2, "%s: want >= 2 log lines with both burners' GIL share:\n%s", shape, out);
    cr_assert_geq(plausible, with - 1, "%s: GIL shares outside 20..80 %%:\n%s", shape, out);
    free(out);
    free(err);
}

Test(top, log_two_threads_static, .timeout = 60)
{
    log_two_threads("static");
}

Test(top, log_two_threads_shared, .timeout = 60)
{
    log_two_threads("shared");
}

/* ---- a process tree -------------------------------------------------------- */

#define WORKERS_FIXTURE "tests/fixtures/top_workers.py"

/* The header's "pid N". */
static int screen_pid(const char *screen)
{
    return strncmp(screen, "pid ", 4) == 0 ? atoi(screen + 4) : 0;
}

/* Poll the pane until pred(screen, arg) holds (10 s); the last screen. */
static char *capture_until(tmux_t *t, int (*pred)(const char *, const void *), const void *arg)
{
    char *screen = NULL;
    for (int i = 0; i < 40; i++) {
        free(screen);
        screen = tmux_capture(t);
        if (pred(screen, arg))
            break;
        sleep_ms(250);
    }
    return screen;
}

static int lists_all(const char *screen, const void *arg)
{
    const int *pids = arg;
    char want[32];
    if (!strstr(screen, " PROCS "))
        return 0;
    for (int i = 0; i < 3; i++) {
        snprintf(want, sizeof want, "%d ", pids[i]);
        if (!strstr(screen, want))
            return 0;
    }
    return 1;
}

static int shows_worker(const char *screen, const void *arg)
{
    return screen_pid(screen) == *(const int *)arg && strstr(screen, "work_in_child");
}

/* The parent waits in join(): its thread is in multiprocessing's Popen. */
static int shows_parent(const char *screen, const void *arg)
{
    return screen_pid(screen) == *(const int *)arg && strstr(screen, "(popen_fork.py:") &&
           !strstr(screen, "work_in_child");
}

/* The parent's screen lists the tree; n goes to each worker (its own
 * threads and functions) and back to the parent. */
static void screen_workers(const char *shape)
{
    const char *py = at_test_python_or_skip(shape);
    tmux_t t;
    char cmd[2048], ready[300];
    char *dir = at_test_tmpdir(), *pids = NULL;
    snprintf(ready, sizeof ready, "%s/ready", dir);
    snprintf(cmd, sizeof cmd, "%s top -- %s %s 30 %s", at_test_archtrace(), py, WORKERS_FIXTURE, ready);
    tmux_start(&t, cmd);
    cr_assert(at_test_wait_file(ready, 15000), "%s: the workers never started under top", shape);
    at_test_shf(&pids, NULL, "python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); "
                             "print(d[\"parent\"], *d[\"workers\"])' %s", ready);
    int tree[3];
    cr_assert_eq(sscanf(pids, "%d %d %d", &tree[0], &tree[1], &tree[2]), 3, "bad ready file: %s", pids);

    char *screen = capture_until(&t, lists_all, tree);
    cr_assert(lists_all(screen, tree), "%s: the PROCS row does not list %d %d %d:\n%s", shape, tree[0], tree[1],
              tree[2], screen);
    cr_assert_eq(screen_pid(screen), tree[0], "%s: the parent is shown first:\n%s", shape, screen);
    cr_assert(strstr(screen, "n process"), "%s: the key is not offered:\n%s", shape, screen);
    check_screen_fits(screen);
    for (int k = 1; k <= 2; k++) {
        free(screen);
        at_test_shf(NULL, NULL, "tmux -L %s send-keys -t top n", t.sock);
        screen = capture_until(&t, shows_worker, &tree[k]);
        cr_assert(shows_worker(screen, &tree[k]), "%s: after %d x n, worker %d and work_in_child are not shown:\n%s",
                  shape, k, tree[k], screen);
    }
    free(screen);
    at_test_shf(NULL, NULL, "tmux -L %s send-keys -t top n", t.sock);
    screen = capture_until(&t, shows_parent, &tree[0]);
    cr_assert(shows_parent(screen, &tree[0]), "%s: n does not come back to the parent:\n%s", shape, screen);
    free(screen);
    free(pids);
    tmux_stop(&t);
    at_test_shf(NULL, NULL, "rm -rf '%s'", dir);
    free(dir);
}

Test(top, screen_process_tree_static, .timeout = 60) { screen_workers("static"); }
Test(top, screen_process_tree_shared, .timeout = 60) { screen_workers("shared"); }

/* Lines of top's log (not a terminal) that show two processes of the
 * tree at >= 50% CPU. */
static int busy_lines_of(char *out)
{
    int busy_lines = 0;
    for (char *save, *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        const char *procs = strstr(line, " | procs ");
        int busy = 0;
        for (const char *p = procs; p && (p = strstr(p, " cpu ")); p += 5)
            busy += strtod(p + 5, NULL) >= 50.0;
        busy_lines += busy >= 2;
    }
    return busy_lines;
}

/* Not a terminal: each line lists the tree with the workers' CPU.  The
 * two workers share 2 cores with top and whatever else runs: a second
 * run when the first saw no second with both busy (a loaded machine). */
Test(top, log_process_tree, .timeout = 60)
{
    const char *py = at_test_python_or_skip("static");
    char *out = NULL, *err = NULL, *shown = NULL;
    int busy = 0;
    for (int attempt = 0; attempt < 2 && !busy; attempt++) {
        free(out), free(err), free(shown);
        out = err = NULL;
        int rc = at_test_shf(&out, &err, "NO_COLOR=1 %s top -- %s %s 3", at_test_archtrace(), py, WORKERS_FIXTURE);
        cr_assert_eq(rc, 0, "top returns the command's status 0, got %d: %s", rc, err);
        shown = strdup(out);
        busy = busy_lines_of(out);
        if (!busy && !attempt)
            at_test_note("top log_process_tree: no second with both workers busy, measuring again:\n%s", shown);
    }
    cr_assert_geq(busy, 1, "no line shows two processes of the tree at >= 50%% CPU:\n%s", shown);
    free(out), free(err), free(shown);
}

/* ---- -p PID ------------------------------------------------------------------ */

static void attach_two_threads(const char *shape)
{
    const char *py = at_test_python_or_skip(shape);
    char *dir = at_test_tmpdir(), ready[300], *pidtxt = NULL;
    snprintf(ready, sizeof ready, "%s/ready", dir);
    at_test_shf(&pidtxt, NULL, "%s %s 20 %s >/dev/null 2>&1 & echo $!", py, FIXTURE, ready);
    int pid = atoi(pidtxt);
    cr_assert_gt(pid, 0, "cannot start the workload");
    cr_assert(at_test_wait_file(ready, 10000), "%s: the workload did not start", shape);
    char *tids = NULL;
    at_test_shf(&tids, NULL, "python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); "
                             "print(*d[\"tids\"])' %s", ready);
    unsigned ta = 0, tb = 0;
    cr_assert_eq(sscanf(tids, "%u %u", &ta, &tb), 2, "bad ready file: %s", tids);

    /* Ctrl-C (SIGINT) ends top -p; it must not touch the process */
    char *out = NULL, *err = NULL;
    int rc = at_test_shf(&out, &err, "timeout --preserve-status -s INT 3.5 %s top -p %d", at_test_archtrace(), pid);
    cr_assert_eq(rc, 0, "%s: top -p stopped by SIGINT should exit 0, got %d: %s", shape, rc, err);
    cr_assert_eq(kill(pid, 0), 0, "%s: top -p killed the process it watched", shape);
    kill(pid, SIGKILL);
    cr_assert(strstr(out, "gil samples"), "%s: -p has no shim: the GIL share must come from samples:\n%s", shape,
              out);
    char a[64], b[64];
    /* no shim either for the names: they are read from threading._active */
    snprintf(a, sizeof a, "thread %u (burner-a)", ta);
    snprintf(b, sizeof b, "thread %u (burner-b)", tb);
    int with, plausible;
    count_log(out, a, b, &with, &plausible);
    cr_assert_geq(with, 2, "%s: want >= 2 log lines with both burners:\n%s", shape, out);
    cr_assert_geq(plausible, with - 1, "%s: GIL shares outside 20..80 %%:\n%s", shape, out);
    cr_assert(strstr(out, "in burn (top_two_threads.py:"), "%s: burn() not seen as current:\n%s", shape, out);
    free(out);
    free(err);
    free(tids);
    free(pidtxt);
    at_test_shf(NULL, NULL, "rm -rf '%s'", dir);
    free(dir);
}

/* The oldest and newest layouts: the sampler under top is test_sampler's,
 * tested on all four */
ParameterizedTestParameters(top, attach_pid)
{
    static at_test_shape_t shapes[] = AT_TEST_SHAPES_ENDS;
    return cr_make_param_array(at_test_shape_t, shapes, sizeof shapes / sizeof *shapes);
}

ParameterizedTest(at_test_shape_t *s, top, attach_pid, .timeout = 60)
{
    attach_two_threads(s->name);
}

/* ---- refusals ---------------------------------------------------------------- */

Test(top, refuses_what_it_cannot_show)
{
    char *err = NULL;
    int rc = at_test_shf(NULL, &err, "%s top -p 2147483646", at_test_archtrace());
    cr_expect_eq(rc, 3, "no such pid: want 3, got %d (%s)", rc, err);
    free(err);
    rc = at_test_shf(NULL, &err, "sleep 5 & p=$!; %s top -p $p; r=$?; kill $p; exit $r", at_test_archtrace());
    cr_expect_eq(rc, 4, "not Python: want 4, got %d (%s)", rc, err);
    cr_expect(strstr(err, "is not a Python process"), "reason missing: %s", err);
    free(err);
    rc = at_test_shf(NULL, &err, "%s top", at_test_archtrace());
    cr_expect_eq(rc, 125, "top without a target: want 125, got %d", rc);
    free(err);
    rc = at_test_shf(NULL, &err, "%s top -p 1 -- python3", at_test_archtrace());
    cr_expect(rc == 125 && strstr(err, "not both"), "-p and a command: want 125, got %d (%s)", rc, err);
    free(err);
    rc = at_test_shf(NULL, &err, "%s top -- /nonexistent/cmd", at_test_archtrace());
    cr_expect_eq(rc, 127, "command not found: want 127, got %d (%s)", rc, err);
    free(err);
}
