/* SPDX-License-Identifier: MIT */
/* test_faults.c - sessions that end badly (issue 25): the target killed
 * mid-run, archtrace itself killed mid-run and mid-write, the session's
 * disk full.  `archtrace report DIR` must then exit 0 with what was
 * written before the fault (a warning per damaged file), never crash or
 * hang, and the traced program's own status must not change. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "testlib.h"

#define FIXTURE "tests/fixtures/fault_work.py"
#define WAIT_S  30          /* any wait longer than this is a hang */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* `sh -c cmd` in the background, its output into <dir>/out and <dir>/err. */
static pid_t spawn_sh(const char *dir, const char *cmd)
{
    char out[600], err[600];
    snprintf(out, sizeof out, "%s/out", dir);
    snprintf(err, sizeof err, "%s/err", dir);
    return at_test_spawn_group(cmd, out, err);
}

/* waitpid with a deadline: the status as the shell gives it (128+N for
 * a signal), -1 after WAIT_S (the process is then killed), -2 when it
 * is not our child (archtrace reaped it before it was killed). */
static int wait_status(pid_t pid)
{
    double end = now_s() + WAIT_S;
    int st;
    while (now_s() < end) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r < 0 && errno == ECHILD)
            return -2;
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        usleep(2000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return -1;
}

/* The target's pid, from the file it writes once it has run a while. */
static long wait_ready(const char *ready)
{
    double end = now_s() + WAIT_S;
    while (now_s() < end) {
        FILE *f = fopen(ready, "r");
        long pid = 0;
        if (f) {
            int n = fscanf(f, "%ld", &pid);
            fclose(f);
            if (n == 1 && pid > 0)
                return pid;
        }
        usleep(2000);
    }
    cr_assert_fail("the target never wrote %s", ready);
    return -1;
}

/* Start `archtrace ARGS -o <dir>/s PY FIXTURE <dir>/ready MODE`. */
static pid_t start_traced(const char *dir, const char *py, const char *args, const char *mode)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "exec %s -q %s -o %s/s %s " FIXTURE " %s/ready %s", at_test_archtrace(), args, dir,
             py, dir, mode);
    return spawn_sh(dir, cmd);
}

/* `archtrace report --json <dir>/r.json <dir>/s` under a timeout: its
 * status; the text report (stderr) in *err. */
static int report(const char *dir, char **err)
{
    return at_test_shf(NULL, err, "timeout %d %s report --json %s/r.json %s/s", WAIT_S, at_test_archtrace(), dir,
                       dir);
}

static char *json_of(const char *dir, const char *expr)
{
    char path[600];
    snprintf(path, sizeof path, "%s/r.json", dir);
    char *v = at_test_json(path, expr);
    cr_assert_not_null(v, "JSON query %s over %s", expr, path);
    return v;
}

/* What was recorded before the fault is reported: the process, its
 * allocation site, its import of colorsys and (when sampled) fault_spin. */
static void assert_records_kept(const char *dir, long pid, int sampled)
{
    char want[200];
    char *v = json_of(dir, "[p['pid'] for p in d['processes']]");
    snprintf(want, sizeof want, "[%ld]", pid);
    cr_assert_str_eq(v, want, "the target is listed");
    free(v);
    v = json_of(dir, "(d['processes'][0]['alloc']['peak']['top'][0]['file'].rsplit('/', 1)[-1], "
                     "d['processes'][0]['alloc']['peak']['top'][0]['line'], "
                     "any(i['module'] == 'colorsys' for i in d['processes'][0]['imports']))");
    cr_assert_str_eq(v, "('fault_work.py', 14, True)", "its allocation site and imports are kept: %s", v);
    free(v);
    if (!sampled)
        return;
    v = json_of(dir, "sum(s['count'] for s in d['processes'][0]['samples']['stacks'] "
                     "if any(f.startswith('fault_spin ') for f in s['frames']))");
    cr_assert_geq(atol(v), 10, "its samples are kept: %s in fault_spin", v);
    free(v);
}

/* ---- the target killed ----------------------------------------------------- */

static void check_target_killed(const char *shape)
{
    const char *py = at_test_python_or_skip(shape);
    char *dir = at_test_tmpdir(), *err, ready[600];
    snprintf(ready, sizeof ready, "%s/ready", dir);
    pid_t at = start_traced(dir, py, "--rate 200", "forever");
    long pid = wait_ready(ready);
    cr_assert_eq(kill((pid_t)pid, SIGKILL), 0, "kill -9 the target");
    cr_assert_eq(wait_status(at), 128 + 9, "archtrace returns the target's 128+9");
    int rc = report(dir, &err);
    cr_assert_eq(rc, 0, "report after the target's SIGKILL: 0, got %d: %s", rc, err);
    free(err);
    assert_records_kept(dir, pid, 1);
    char *v = json_of(dir, "d['processes'][0]['complete'], d['exit_status']");
    cr_assert_str_eq(v, "(False, 137)", "marked incomplete, the status kept: %s", v);
    free(v);
    at_test_shf(NULL, NULL, "rm -rf %s", dir);
    free(dir);
}

TestSuite(faults, .fini = at_test_kill_groups);

Test(faults, target_sigkill_mid_run_static, .timeout = 60) { check_target_killed("static"); }
Test(faults, target_sigkill_mid_run_shared, .timeout = 60) { check_target_killed("shared"); }

/* ---- archtrace killed -------------------------------------------------------- */

/* The first <key>.stacks in <dir>/s, or 0. */
static int stacks_present(const char *dir)
{
    char sess[600];
    snprintf(sess, sizeof sess, "%s/s", dir);
    DIR *d = opendir(sess);
    int found = 0;
    for (struct dirent *e; d && !found && (e = readdir(d));)
        found = strstr(e->d_name, ".stacks") != NULL;
    if (d)
        closedir(d);
    return found;
}

/* Whether pid has ended, without reaping it. */
static int has_ended(pid_t pid)
{
    siginfo_t info;
    memset(&info, 0, sizeof info);
    return waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid;
}

/* Kill archtrace (-9): mid-run (once the target is ready) or, `at_write`,
 * mid-write (as soon as a <pid>.stacks appears, polled every 50 us).  The
 * orphaned target finishes on its own; we reap it as the subreaper and
 * get its own status 3.  *killed: archtrace had not ended by itself;
 * *mid_write: a stacks file existed at the kill.  The target's pid. */
static long kill_tracer(const char *shape, const char *dir, int at_write, int *killed, int *mid_write)
{
    const char *py = at_test_python(shape);
    char ready[600];
    snprintf(ready, sizeof ready, "%s/ready", dir);
    cr_assert_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0, "become the subreaper");
    pid_t at = start_traced(dir, py, "--rate 2000", "exit 0.3");
    long pid = wait_ready(ready);
    double end = now_s() + WAIT_S;
    while (at_write && !stacks_present(dir) && !has_ended(at) && now_s() < end)
        usleep(50);
    *mid_write = at_write && stacks_present(dir);
    kill(at, SIGKILL);
    int st = wait_status(at);
    *killed = st == 128 + 9;
    cr_assert(*killed || (at_write && st == 3), "archtrace was killed (or had just ended with 3): %d", st);
    /* mid-write comes after archtrace reaped the target (-2) */
    st = wait_status((pid_t)pid);
    cr_assert(st == 3 || (at_write && st == -2), "the orphaned target ends with its own status 3: %d", st);
    return pid;
}

static void check_tracer_killed(const char *shape, int at_write, int rounds)
{
    at_test_python_or_skip(shape);
    int caught = 0, cut = 0;
    for (int i = 0; i < rounds; i++) {
        char *dir = at_test_tmpdir(), *err;
        int killed, mid_write;
        long pid = kill_tracer(shape, dir, at_write, &killed, &mid_write);
        caught += mid_write && killed;
        int rc = report(dir, &err);
        cr_assert_eq(rc, 0, "report after archtrace's SIGKILL (round %d): 0, got %d: %s", i, rc, err);
        assert_records_kept(dir, pid, 0);
        /* mid-run: before session.meta says finished (mid-write may be after) */
        cr_assert(at_write || strstr(err, "archtrace did not finish this session"),
                  "the session reads as unfinished: %.2000s", err);
        /* samples from a whole stacks file; one cut by the kill named
         * damaged, in JSON and in the text report; none without one */
        char *v = json_of(dir, "d['processes'][0]['samples'] is not None, "
                               "any(x.startswith('stacks ') for x in d['processes'][0]['damaged'])");
        int has_file = at_test_shf(NULL, NULL, "ls %s/s/*.stacks", dir) == 0;
        if (!has_file)
            cr_assert_str_eq(v, "(False, False)", "no stacks file: no samples, no damage: %s", v);
        else
            cr_assert(!strcmp(v, "(True, False)") || !strcmp(v, "(False, True)"),
                      "a stacks file is reported or named damaged: %s", v);
        if (!strcmp(v, "(False, True)")) {
            cr_assert(strstr(err, "damaged: stacks"), "the text report warns about it: %.2000s", err);
            cut++;
        }
        free(v), free(err);
        at_test_shf(NULL, NULL, "rm -rf %s", dir);
        free(dir);
    }
    if (at_write)
        at_test_note("%s: a stacks file was there at %d of %d kills, %d of them cut short", shape, caught, rounds,
                     cut);
}

Test(faults, tracer_sigkill_mid_run_static, .timeout = 60) { check_tracer_killed("static", 0, 1); }
Test(faults, tracer_sigkill_mid_run_shared, .timeout = 60) { check_tracer_killed("shared", 0, 1); }
Test(faults, tracer_sigkill_mid_write_static, .timeout = 120) { check_tracer_killed("static", 1, 2); }
Test(faults, tracer_sigkill_mid_write_shared, .timeout = 120) { check_tracer_killed("shared", 1, 2); }

/* ---- the disk fills up ------------------------------------------------------- */

#define TMPFS_KIB 16384

/* A tmpfs of TMPFS_KIB at <dir>/m with only `free_kib` left, or skip.
 * Mounted in a mount namespace of this test's own process, so that a
 * failed assertion cannot leave it mounted. */
static void mount_full(const char *dir, int free_kib)
{
    char m[600];
    snprintf(m, sizeof m, "%s/m", dir);
    mkdir(m, 0700);
    if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount("tmpfs", m, "tmpfs", 0, "size=16m") != 0)
        cr_skip_test("cannot mount a tmpfs for the disk-full case: %s", strerror(errno));
    if (free_kib < TMPFS_KIB)
        cr_assert_eq(at_test_shf(NULL, NULL, "fallocate -l %dk %s/fill", TMPFS_KIB - free_kib, m), 0,
                     "fill the tmpfs");
}

static void unmount(const char *dir)
{
    char m[600];
    snprintf(m, sizeof m, "%s/m", dir);
    umount2(m, MNT_DETACH);
}

/* archtrace with its session on a disk with free_kib left: the command's
 * own status and stdout, whatever fits; report exits 0 when the process
 * could write its segment, else 8 saying the space ran out; never a
 * crash or a hang. */
static void check_disk_full(const char *shape, int free_kib)
{
    const char *py = at_test_python_or_skip(shape);
    char *dir = at_test_tmpdir(), *out, *err;
    mount_full(dir, free_kib);
    int rc = at_test_shf(&out, &err, "timeout %d %s -q -o %s/m/s %s " FIXTURE " %s/ready exit 0.05", WAIT_S,
                         at_test_archtrace(), dir, py, dir);
    if (free_kib == 0) {
        /* not even session.meta fits: archtrace says so and runs nothing */
        cr_assert_eq(rc, 125, "no space at all: 125, got %d: %s", rc, err);
        cr_assert(strstr(err, "no space left on device"), "says why: %s", err);
    } else {
        cr_assert_eq(rc, 3, "%d KiB free: the target's status 3 passes through, got %d: %s", free_kib, rc, err);
        cr_assert_str_eq(out, "hello\n", "%d KiB free: stdout untouched: '%s'", free_kib, out);
        /* a file archtrace could not write says why */
        cr_assert(!strstr(err, "cannot write") || strstr(err, "no space left on device"),
                  "%d KiB free: the cause is given: %s", free_kib, err);
    }
    free(out), free(err);
    int seg = at_test_shf(NULL, NULL, "ls %s/m/s/*.seg", dir) == 0;
    rc = at_test_shf(NULL, &err, "timeout %d %s report %s/m/s", WAIT_S, at_test_archtrace(), dir);
    if (seg) {
        cr_assert_eq(rc, 0, "%d KiB free: the segment was written, report exits 0, got %d: %s", free_kib, rc, err);
        cr_assert(strstr(err, "Python processes: 1"), "%d KiB free: the process is reported: %.2000s", free_kib, err);
    } else {
        cr_assert_eq(rc, 8, "%d KiB free: nothing readable, report exits 8, got %d: %s", free_kib, rc, err);
        cr_assert(free_kib == 0 || strstr(err, "ran out of space"), "%d KiB free: says so: %s", free_kib, err);
    }
    /* every file that is there but unreadable is named in the text */
    char *notes = NULL;
    at_test_shf(NULL, NULL, "%s report -q --json %s/r.json %s/m/s", at_test_archtrace(), dir, dir);
    at_test_shf(&notes, NULL, "python3 -c 'import json,sys; [print(x.split(\".\", 1)[-1]) for x in "
                "json.load(open(sys.argv[1]))[\"damaged\"] if x[0].isdigit()]' %s/r.json", dir);
    for (char *save, *n = strtok_r(notes, "\n", &save); n; n = strtok_r(NULL, "\n", &save))
        cr_assert(strstr(err, n), "%d KiB free: damaged file '%s' named in the text report: %.2000s", free_kib, n,
                  err);
    free(notes), free(err);
    unmount(dir);
    at_test_shf(NULL, NULL, "rm -rf %s", dir);
    free(dir);
}

/* From nothing free to room for nearly everything: session.meta, then
 * the segment, the GIL, imports and allocation files (0.8, 3 and 7.2
 * MiB) and the sampler's stacks each fail in turn. */
static const int free_kib[] = { 0, 4, 12, 900, 4100, 11600 };

static void check_disk_full_all(const char *shape)
{
    for (size_t i = 0; i < sizeof free_kib / sizeof *free_kib; i++)
        check_disk_full(shape, free_kib[i]);
}

Test(faults, disk_full_keeps_status_and_what_fits_static, .timeout = 120) { check_disk_full_all("static"); }
Test(faults, disk_full_keeps_status_and_what_fits_shared, .timeout = 120) { check_disk_full_all("shared"); }
