/* SPDX-License-Identifier: MIT */
/* test_hardening.c - `archtrace run` and `report` against faults, bad input,
 * load and hostile targets, on both CPython 3.11 build shapes.
 *
 * Every scenario must end in a one-line message and a documented exit
 * status, never a crash, a hang or a changed target:
 *   - target killed by SIGKILL          -> 137 (128+9), process "incomplete"
 *   - archtrace killed by SIGKILL       -> the target runs on (never left
 *     (run, or -p PID record --native)     stopped); `report DIR` exits 0
 *                                          and warns "did not finish"
 *   - -p PID record of a missing, non-
 *     Python, non-3.11 or unreadable
 *     (as nobody) process               -> 3, 4, 5, 6 and one line
 *   - damaged session files             -> `report` exits 0 with a line per
 *                                          damaged file (125 only when the
 *                                          directory itself cannot be read)
 *   - bad options, unwritable outputs,
 *     read-only or symlinked -o DIR     -> 125 and one line, command not run
 *   - full disk                         -> the target's own status and
 *                                          output; the report says what
 *                                          was dropped
 * Scenarios that mount file systems run inside `unshare -m`, so a failed
 * assertion never leaves a mount behind.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "testlib.h"

/* ---- helpers -------------------------------------------------------------- */

static const char *at(void)
{
    return at_test_archtrace();
}

static char *new_tmpdir(void)
{
    char *d = at_test_tmpdir();
    cr_assert_not_null(d, "cannot make a temp directory");
    return d;
}

static void rm_rf(char *dir)
{
    if (dir)
        at_test_shf(NULL, NULL, "rm -rf '%s'", dir);
    free(dir);
}

/* The repository root (tests run there): for commands run elsewhere. */
static const char *root(void)
{
    static char cwd[1024];
    if (!cwd[0] && !getcwd(cwd, sizeof(cwd)))
        snprintf(cwd, sizeof(cwd), ".");
    return cwd;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t n = 0;
    FILE *m = open_memstream(&buf, &n);
    char chunk[8192];
    size_t got;
    while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0)
        fwrite(chunk, 1, got, m);
    fclose(f);
    fclose(m);
    if (len)
        *len = n;
    return buf;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; s && *s; s++)
        n += *s == '\n';
    return n;
}

/* archtrace's verdict on bad input: exactly one line, "archtrace: ...". */
static void assert_one_line(const char *err, const char *what)
{
    cr_assert_not_null(err, "%s: no stderr captured", what);
    cr_assert_eq(count_lines(err), 1, "%s: exactly one line on stderr expected, got:\n%s", what, err);
    cr_assert(!strncmp(err, "archtrace: ", 11), "%s: the line starts with 'archtrace: ': %s", what, err);
}

static char *jq(const char *json, const char *expr)
{
    char *v = at_test_json(json, expr);
    cr_assert_not_null(v, "JSON query `%s` on %s failed (missing or invalid JSON)", expr, json);
    return v;
}

static long jq_long(const char *json, const char *expr)
{
    char *v = jq(json, expr);
    long x = strtol(v, NULL, 10);
    free(v);
    return x;
}

static int jq_true(const char *json, const char *expr)
{
    char *v = jq(json, expr);
    int t = !strcmp(v, "True");
    free(v);
    return t;
}

static int file_exists(const char *dir, const char *name)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

/* The plain run's stdout of a fixture, for byte-for-byte comparisons. */
static char *plain_stdout(const char *py, const char *args)
{
    char *out = NULL;
    int rc = at_test_shf(&out, NULL, "%s %s", py, args);
    cr_assert_eq(rc, 0, "plain run of %s %s failed with %d", py, args, rc);
    return out;
}

/* ---- 1. the target killed by SIGKILL --------------------------------------- */

static void check_target_kills_itself(const char *shape)
{
    const char *py = at_test_python_or_skip(shape);
    char *dir = new_tmpdir(), json[512], *out, *err;
    snprintf(json, sizeof(json), "%s/r.json", dir);
    int rc = at_test_shf(&out, &err, "NO_COLOR=1 timeout 50 %s --json %s %s tests/fixtures/hard_kill.py self",
                         at(), json, py);
    cr_assert_eq(rc, 128 + 9, "archtrace returns 137 for a target killed by SIGKILL, got %d: %s", rc, err);
    cr_assert(!strstr(out, "survived"), "the helper thread's SIGKILL landed");
    cr_assert(strstr(err, "incomplete"), "the text report marks the killed process incomplete:\n%s", err);
    cr_assert_eq(jq_long(json, "d['exit_status']"), 137, "JSON exit_status is 137");
    cr_assert(jq_true(json, "d['complete']"), "archtrace itself finished the session");
    cr_assert_geq(jq_long(json, "len(d['processes'])"), 4, "the killed parent and its 3+ children listed");
    cr_assert(!jq_true(json, "[p for p in d['processes'] if not p['forked']][0]['complete']"),
              "the killed process is marked incomplete");
    /* the 3 children reaped before the kill are complete; one forked
     * around the kill may still run, orphaned, when the report is made */
    cr_assert_geq(jq_long(json, "sum(p['complete'] for p in d['processes'] if p['forked'])"), 3,
                  "children that exited before the kill are complete");
    free(out), free(err);
    rm_rf(dir);
}

Test(kill, target_sigkills_itself_static, .timeout = 60) { check_target_kills_itself("static"); }
Test(kill, target_sigkills_itself_shared, .timeout = 60) { check_target_kills_itself("shared"); }

static void check_child_killed(const char *shape)
{
    const char *py = at_test_python_or_skip(shape);
    char *dir = new_tmpdir(), json[512], *out, *err;
    snprintf(json, sizeof(json), "%s/r.json", dir);
    int rc = at_test_shf(&out, &err, "timeout 50 %s --json %s %s tests/fixtures/hard_kill.py child", at(), json, py);
    cr_assert_eq(rc, 0, "the parent's own status (0), got %d: %s", rc, err);
    cr_assert_str_eq(out, "child killed\n", "the target's stdout is untouched: '%s'", out);
    cr_assert_eq(jq_long(json, "len(d['processes'])"), 2, "parent and killed child listed");
    cr_assert(!jq_true(json, "[p for p in d['processes'] if p['forked']][0]['complete']"),
              "the SIGKILLed child is incomplete");
    cr_assert(jq_true(json, "[p for p in d['processes'] if not p['forked']][0]['complete']"),
              "the parent is complete");
    free(out), free(err);
    rm_rf(dir);
}

Test(kill, forked_child_sigkilled_static, .timeout = 60) { check_child_killed("static"); }
Test(kill, forked_child_sigkilled_shared, .timeout = 60) { check_child_killed("shared"); }

/* ---- 2. archtrace killed while the target runs ----------------------------- */

static void check_archtrace_killed(const char *shape)
{
    const char *py = at_test_python_or_skip(shape);
    char *dir = new_tmpdir(), *out, *err;
    /* archtrace in the background; once the target runs, SIGKILL it; then
     * wait for the target (now an orphan) to write its marker and exit. */
    int rc = at_test_shf(&out, &err,
        "cd %s && { %s -o s %s %s/tests/fixtures/hard_workload.py --started started --marker marker "
        "--seconds 1.5 >target.out 2>target.err & ap=$!; "
        "for i in $(seq 200); do [ -f started ] && break; sleep 0.05; done; "
        "sleep 0.2; kill -9 $ap; wait $ap; echo \"archtrace=$?\"; "
        "for i in $(seq 300); do grep -q '^end$' target.out 2>/dev/null && break; sleep 0.05; done; "
        "for f in s/*.seg; do p=${f##*/}; p=${p%%.seg}; while kill -0 $p 2>/dev/null; do sleep 0.05; done; done; }",
        dir, at(), py, root());
    cr_assert_eq(rc, 0, "the scenario script ran: %s", err);
    cr_assert(strstr(out, "archtrace=137"), "archtrace was SIGKILLed: %s", out);
    char path[600];
    snprintf(path, sizeof(path), "%s/marker", dir);
    char *marker = slurp(path, NULL);
    cr_assert(marker && !strcmp(marker, "done"), "the target ran to completion after archtrace died");
    snprintf(path, sizeof(path), "%s/target.out", dir);
    char *tout = slurp(path, NULL);
    cr_assert(tout && strstr(tout, "child 0\n") && strstr(tout, "end\n"), "the target's output: %s", tout);
    free(out), free(err), free(marker), free(tout);

    rc = at_test_shf(NULL, &err, "NO_COLOR=1 %s report %s/s", at(), dir);
    cr_assert_eq(rc, 0, "report of an unfinished session exits 0, got %d: %s", rc, err);
    cr_assert(strstr(err, "warning: archtrace did not finish this session"),
              "the report says the session is incomplete:\n%s", err);
    cr_assert(strstr(err, "Python processes: 2"), "what the shim wrote is read:\n%s", err);
    free(err);
    char json[600];
    snprintf(json, sizeof(json), "%s/r.json", dir);
    rc = at_test_shf(NULL, &err, "%s report --json %s %s/s", at(), json, dir);
    cr_assert_eq(rc, 0, "report --json exits 0, got %d: %s", rc, err);
    cr_assert(strstr(err, "did not finish"), "--json run warns too:\n%s", err);
    cr_assert(!jq_true(json, "d['complete']"), "JSON: the session is incomplete");
    cr_assert_eq(jq_long(json, "d['exit_status']"), -1, "JSON: the exit status is unknown (-1)");
    cr_assert_eq(jq_long(json, "len(d['processes'])"), 2, "JSON: both processes read");
    cr_assert(jq_true(json, "all(p['complete'] for p in d['processes'])"),
              "the target and its child finished normally");
    cr_assert(jq_true(json, "'hard_workload.py' in d['processes'][0]['argv'][1]"), "argv read back");
    free(err);
    rm_rf(dir);
}

Test(killed, archtrace_sigkilled_static, .timeout = 60) { check_archtrace_killed("static"); }
Test(killed, archtrace_sigkilled_shared, .timeout = 60) { check_archtrace_killed("shared"); }

/* archtrace -p PID record --native, SIGKILLed while it samples: the target
 * (stopped now and then by ptrace for its native stacks) must not be left
 * stopped; it keeps printing, and `report DIR` reads the session as
 * unfinished. */
static void check_record_killed(const char *shape)
{
    const char *py = at_test_python_or_skip(shape);
    char *dir = new_tmpdir(), *out, *err, json[600];
    int rc = at_test_shf(&out, &err,
        "cd %s && { %s %s/tests/fixtures/hard_spin.py started 20 >target.out & tp=$!; "
        "for i in $(seq 200); do [ -f started ] && break; sleep 0.05; done; "
        "%s -p $tp record --native -d 15 -o s >rec.out 2>rec.err & ap=$!; "
        "sleep 1; kill -9 $ap; wait $ap; echo \"archtrace=$?\"; sleep 0.2; "
        "echo \"state=$(sed -n 's/^State:[[:space:]]*\\([A-Za-z]\\).*/\\1/p' /proc/$tp/status)\"; "
        "a=$(wc -l <target.out); sleep 0.5; b=$(wc -l <target.out); echo \"ticks=$((b - a))\"; "
        "kill $tp; wait $tp; true; }",
        dir, py, root(), at());
    cr_assert_eq(rc, 0, "%s: the scenario script ran: %s", shape, err);
    cr_assert(strstr(out, "archtrace=137"), "%s: archtrace was SIGKILLed: %s", shape, out);
    cr_assert(strstr(out, "state=R") || strstr(out, "state=S"),
              "%s: the target must run on, not stay stopped by a dead tracer: %s", shape, out);
    const char *ticks = strstr(out, "ticks=");
    cr_assert(ticks && atoi(ticks + 6) >= 3, "%s: the target keeps making progress: %s", shape, out);
    free(out), free(err);

    rc = at_test_shf(NULL, &err, "NO_COLOR=1 %s report %s/s", at(), dir);
    cr_assert_eq(rc, 0, "%s: report of the killed recording exits 0, got %d: %s", shape, rc, err);
    cr_assert(strstr(err, "did not finish this session") && strstr(err, "Python processes: 1"),
              "%s: the report reads the segment and says the session is unfinished:\n%s", shape, err);
    free(err);
    snprintf(json, sizeof(json), "%s/r.json", dir);
    rc = at_test_shf(NULL, &err, "%s report --json %s %s/s", at(), json, dir);
    cr_assert_eq(rc, 0, "%s: report --json exits 0, got %d: %s", shape, rc, err);
    cr_assert(!jq_true(json, "d['complete']"), "%s: JSON: the session is incomplete", shape);
    cr_assert(jq_true(json, "len(d['processes']) == 1 and 'hard_spin.py' in ' '.join(d['processes'][0]['argv'])"),
              "%s: JSON: the attached process is read back", shape);
    free(err);
    rm_rf(dir);
}

Test(killed, record_sigkilled_static, .timeout = 60) { check_record_killed("static"); }
Test(killed, record_sigkilled_shared, .timeout = 60) { check_record_killed("shared"); }

/* ---- 2b. -p PID record against the wrong process ---------------------------- */

static pid_t spawn_quiet(char *const argv[])
{
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open("/dev/null", O_RDWR);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    cr_assert_gt(pid, 0, "fork failed");
    usleep(300 * 1000); /* let the interpreter come up */
    return pid;
}

static void reap(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/* `[PREFIX] archtrace -p PID record -d 1 -o DIR/s`: status, one line
 * naming the cause, nothing on stdout, no session left behind. */
static void check_record_refused(const char *prefix, pid_t pid, int status, const char *says)
{
    char *dir = new_tmpdir(), *out, *err, what[64];
    chmod(dir, 0755); /* reachable (not writable) for the unprivileged case */
    snprintf(what, sizeof(what), "record -p %d", (int)pid);
    int rc = at_test_shf(&out, &err, "%s %s -p %d record -d 1 -o %s/s", prefix, at(), (int)pid, dir);
    cr_assert_eq(rc, status, "%s: status %d expected, got %d: %s", what, status, rc, err);
    assert_one_line(err, what);
    cr_assert(strstr(err, says), "%s: the line should say '%s': %s", what, says, err);
    cr_assert_str_eq(out, "", "%s: nothing on stdout", what);
    cr_assert(!file_exists(dir, "s"), "%s: no session directory is left behind", what);
    free(out), free(err);
    rm_rf(dir);
}

Test(pid, record_of_a_missing_process_is_3, .timeout = 20)
{
    pid_t gone = fork();
    if (gone == 0)
        _exit(0);
    waitpid(gone, NULL, 0); /* existed a moment ago, gone now */
    check_record_refused("", gone, 3, "no such process");
}

Test(pid, record_of_a_non_python_process_is_4, .timeout = 20)
{
    char *argv[] = { "/bin/sleep", "30", NULL };
    pid_t pid = spawn_quiet(argv);
    check_record_refused("", pid, 4, "is not a Python process");
    reap(pid);
}

Test(pid, record_of_another_python_is_5, .timeout = 20)
{
    char *py = NULL;
    if (at_test_shf(&py, NULL, "ls /root/.pyenv/versions/3.10*/bin/python3.10 2>/dev/null | head -1") != 0 ||
        !py || !py[0]) {
        free(py);
        cr_skip_test("no CPython 3.10 on this machine to stand for an unsupported Python");
    }
    py[strcspn(py, "\n")] = '\0';
    char *argv[] = { py, "-c", "import time; time.sleep(30)", NULL };
    pid_t pid = spawn_quiet(argv);
    check_record_refused("", pid, 5, "archtrace supports CPython 3.11 to 3.13");
    reap(pid);
    free(py);
}

static void check_record_unprivileged(const char *shape)
{
    const char *py = at_test_python_or_skip(shape);
    if (geteuid() != 0)
        cr_skip_test("needs root to start a root-owned target and drop to nobody");
    if (at_test_sh("setpriv --reuid=65534 --regid=65534 --clear-groups true", NULL, NULL) != 0)
        cr_skip_test("setpriv cannot drop to nobody here");
    char *argv[] = { (char *)py, "-c", "import time; time.sleep(30)", NULL };
    pid_t pid = spawn_quiet(argv);
    check_record_refused("setpriv --reuid=65534 --regid=65534 --clear-groups", pid, 6, "run archtrace as root");
    reap(pid);
}

Test(pid, record_as_nobody_of_a_root_python_is_6_static, .timeout = 20) { check_record_unprivileged("static"); }
Test(pid, record_as_nobody_of_a_root_python_is_6_shared, .timeout = 20) { check_record_unprivileged("shared"); }

/* ---- 3. damaged sessions --------------------------------------------------- */

/* Mutations that always make a file unreadable as what it claims to be:
 * the report must then name the file on stderr. */
static int mutation_is_fatal(const char *how)
{
    static const char *fatal[] = { "empty", "byte", "ones", "zeros", "random", "symlink" };
    for (size_t i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++)
        if (!strcmp(how, fatal[i]))
            return 1;
    return 0;
}

/* Run `report --json` with `bin` over every damaged copy listed in
 * dir/cases; check status, sanitizer output, JSON validity and that the
 * damaged file is named.  Problems are collected (one line each) so one
 * run shows them all. */
static void report_damaged(const char *dir, const char *bin, const char *label, FILE *problems)
{
    char *out, *err;
    int rc = at_test_shf(&out, &err,
        "cd %s && while read d; do "
        "  %s report --json $d.json $d >/dev/null 2>$d.err; echo \"$? $d\"; "
        "done <cases && python3 -c 'import json,sys\n"
        "for l in open(\"cases\"):\n"
        "  d=l.strip()\n"
        "  try: json.load(open(d+\".json\"))\n"
        "  except Exception as e: print(\"badjson\", d, e)'",
        dir, bin);
    cr_assert_eq(rc, 0, "%s: the damaged-session loop ran: %s", label, err);
    int cases = 0;
    for (char *save, *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (!strncmp(line, "badjson", 7)) {
            fprintf(problems, "%s: --json wrote invalid JSON: %s\n", label, line);
            continue;
        }
        char d[512], path[600];
        int st;
        cr_assert_eq(sscanf(line, "%d %511s", &st, d), 2, "%s: loop output: %s", label, line);
        cases++;
        snprintf(path, sizeof(path), "%s.err", d);
        char *e = slurp(path, NULL);
        cr_assert_not_null(e, "stderr of %s", d);
        const char *file = strrchr(d, '/') + 1, *how = strchr(file, '~') + 1;
        char name[128];
        snprintf(name, sizeof(name), "%.*s", (int)(how - 1 - file), file);
        if (st != 0)
            fprintf(problems, "%s: %s: exit %d, 0 expected (damaged files are skipped)\n", label, file, st);
        if (strstr(e, "ERROR: AddressSanitizer") || strstr(e, "runtime error:") || strstr(e, "LeakSanitizer"))
            fprintf(problems, "%s: %s: sanitizer report: %.300s\n", label, file, strstr(e, "==") ? strstr(e, "==") : e);
        if (mutation_is_fatal(how) && !strstr(e, name))
            fprintf(problems, "%s: %s: the damaged %s is not named on stderr\n", label, file, name);
        free(e);
    }
    cr_assert_geq(cases, 4 * 12, "%s: at least seg, meta and two feature files damaged 12 ways", label);
    free(out), free(err);
}

static void check_damaged_sessions(const char *shape)
{
    const char *py = at_test_python_or_skip(shape);
    char *dir = new_tmpdir(), *err;
    int rc = at_test_shf(NULL, &err, "%s -q -o %s/s %s tests/fixtures/hard_workload.py", at(), dir, py);
    cr_assert_eq(rc, 0, "the session to damage was recorded: %s", err);
    free(err);
    rc = at_test_shf(NULL, &err, "mkdir %s/m && python3 tests/fixtures/hard_corrupt.py %s/s %s/m > %s/cases",
                     dir, dir, dir, dir);
    cr_assert_eq(rc, 0, "damaged copies made: %s", err);
    free(err);
    char *problems = NULL;
    size_t plen = 0;
    FILE *pf = open_memstream(&problems, &plen);
    report_damaged(dir, at(), "archtrace", pf);
    /* the readers do not depend on the shape: ASan (150 ms a run) once */
    if (!strcmp(shape, "shared")) {
        cr_log_info("ASan pass over damaged sessions runs in the static test only");
    } else if (access("build-asan/archtrace", X_OK) == 0) {
        char asan[2048];
        snprintf(asan, sizeof(asan), "ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 %s/build-asan/archtrace",
                 root());
        report_damaged(dir, asan, "ASan archtrace", pf);
    } else {
        at_test_note("build-asan/archtrace absent (make asan): damaged sessions not run under ASan");
    }
    fclose(pf);
    cr_assert_eq(plen, 0, "damaged sessions (%s):\n%s", shape, problems);
    free(problems);
    rm_rf(dir);
}

Test(damaged, every_session_file_static, .timeout = 90) { check_damaged_sessions("static"); }
Test(damaged, every_session_file_shared, .timeout = 90) { check_damaged_sessions("shared"); }

Test(damaged, unreadable_session_dir_is_125, .timeout = 20)
{
    char *dir = new_tmpdir(), *err;
    int rc = at_test_shf(NULL, &err, "%s report %s/none", at(), dir);
    cr_assert_eq(rc, 125, "a missing session directory: 125, got %d", rc);
    assert_one_line(err, "missing session");
    free(err);
    rc = at_test_shf(NULL, &err, "touch %s/file && %s report %s/file", dir, at(), dir);
    cr_assert_eq(rc, 125, "a file instead of a session directory: 125, got %d", rc);
    assert_one_line(err, "file as session");
    free(err);
    rm_rf(dir);
}

/* ---- 4. invalid options ---------------------------------------------------- */

/* Each: archtrace ARGS touch MARKER must exit 125 with one line and never
 * run the command. */
typedef struct bad_option {
    int argc;
    char args[3][40];        /* a leading "@" stands for the temp directory */
    char says[40];           /* part of the one line                        */
} bad_option_t;

static const bad_option_t bad_options[] = {
    { 2, { "--rate", "-5" }, "invalid --rate" },
    { 2, { "--rate", "0" }, "invalid --rate" },
    { 2, { "--rate", "nan" }, "invalid --rate" },
    { 2, { "--rate", "inf" }, "invalid --rate" },
    { 1, { "--rate=" }, "invalid --rate" },
    { 2, { "--format", "pdf" }, "unknown format" },
    { 1, { "--format=" }, "unknown format" },
    { 2, { "--format", "JSON" }, "unknown format" },
    { 2, { "--top", "0" }, "invalid --top" },
    { 2, { "--top", "1001" }, "invalid --top" },
    { 2, { "--top", "5x" }, "invalid --top" },
    { 2, { "--top", "99999999999999999999" }, "invalid --top" },
    { 2, { "--alloc-depth", "0" }, "invalid --alloc-depth" },
    { 2, { "--alloc-sample", "-1" }, "invalid --alloc-sample" },
    { 3, { "--alloc-exact", "--alloc-sample", "1024" }, "contradict" },
    { 3, { "--alloc-sample", "1024", "--alloc-exact" }, "contradict" },
    { 2, { "-d", "-1" }, "invalid --duration" },
    { 1, { "--no-alloc=1" }, "unknown option" },
    { 1, { "-x" }, "unknown option" },
    { 2, { "-p", "1" }, "needs a command" },
    { 2, { "--json", "" }, "cannot write ''" },
    { 2, { "--json", "@/no/such/dir/r.json" }, "cannot write" },
    { 2, { "--json", "@" }, "Is a directory" },
    { 2, { "--out", "@/no/such/dir/x.svg" }, "cannot write" },
    { 2, { "-o", "" }, "cannot create session directory ''" },
    { 2, { "-o", "@/no/such/parent/s" }, "cannot create session directory" },
};

/* A value missing at the end of the line: nothing to run at all. */
static const char *const missing_values[] = { "--json", "-o", "--output", "--rate", "--format", "--top",
                                              "--out", "--alloc-depth", "--alloc-sample", "-p", "-d" };

Test(options, invalid_values_are_125_one_line_command_not_run, .timeout = 30)
{
    char *dir = new_tmpdir();
    for (size_t i = 0; i < sizeof(bad_options) / sizeof(bad_options[0]); i++) {
        const bad_option_t *c = &bad_options[i];
        char cmd[2048];
        int n = snprintf(cmd, sizeof(cmd), "%s", at());
        for (int k = 0; k < c->argc; k++) {
            const char *a = c->args[k];
            n += snprintf(cmd + n, sizeof(cmd) - (size_t)n, " '%s%s'", a[0] == '@' ? dir : "",
                          a[0] == '@' ? a + 1 : a);
        }
        snprintf(cmd + n, sizeof(cmd) - (size_t)n, " touch %s/ran", dir);
        char *out, *err;
        int rc = at_test_sh(cmd, &out, &err);
        cr_assert_eq(rc, 125, "`%s`: 125 expected, got %d: %s", cmd, rc, err);
        assert_one_line(err, cmd);
        cr_assert(strstr(err, c->says), "`%s`: the line should say '%s': %s", cmd, c->says, err);
        cr_assert_str_eq(out, "", "`%s`: nothing on stdout", cmd);
        cr_assert(!file_exists(dir, "ran"), "`%s`: the command must not run", cmd);
        free(out), free(err);
    }
    rm_rf(dir);
}

Test(options, missing_values_are_125_one_line, .timeout = 20)
{
    for (size_t i = 0; i < sizeof(missing_values) / sizeof(missing_values[0]); i++) {
        char *out, *err;
        int rc = at_test_shf(&out, &err, "%s %s", at(), missing_values[i]);
        cr_assert_eq(rc, 125, "`archtrace %s`: 125, got %d", missing_values[i], rc);
        assert_one_line(err, missing_values[i]);
        cr_assert(strstr(err, "needs a value"), "`archtrace %s`: says it needs a value: %s", missing_values[i], err);
        cr_assert_str_eq(out, "", "nothing on stdout");
        free(out), free(err);
    }
}

Test(options, report_with_bad_arguments_is_125_one_line, .timeout = 20)
{
    static const char *const cases[][2] = {
        { "report", "needs a session directory" },
        { "report a b", "unexpected argument 'b'" },
        { "report --top 0 /tmp", "invalid --top" },
        { "report --format pdf /tmp", "unknown format" },
        { "report --json", "needs a value" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *out, *err;
        int rc = at_test_shf(&out, &err, "%s %s", at(), cases[i][0]);
        cr_assert_eq(rc, 125, "`archtrace %s`: 125, got %d", cases[i][0], rc);
        assert_one_line(err, cases[i][0]);
        cr_assert(strstr(err, cases[i][1]), "`archtrace %s`: says '%s': %s", cases[i][0], cases[i][1], err);
        free(out), free(err);
    }
}

/* ---- 5. unwritable and full session directories --------------------------- */

static void need_mount_namespace(void)
{
    if (at_test_sh("unshare -m true", NULL, NULL) != 0)
        cr_skip_test("cannot make a mount namespace (unshare -m needs root / CAP_SYS_ADMIN)");
}

Test(space, read_only_session_dir_is_125_command_not_run, .timeout = 30)
{
    need_mount_namespace();
    char *dir = new_tmpdir(), *out, *err;
    /* three ways to hit the read-only tmpfs: a new -o, an existing empty
     * -o (chmod refused), and $TMPDIR without -o */
    int rc = at_test_shf(&out, &err,
        "mkdir %s/ro && unshare -m sh -c 'mount -t tmpfs -o ro,size=1m tmpfs %s/ro || exit 99; "
        "%s -o %s/ro/s touch %s/ran1 2>%s/e1; echo $?; "
        "%s -o %s/ro touch %s/ran2 2>%s/e2; echo $?; "
        "TMPDIR=%s/ro %s touch %s/ran3 2>%s/e3; echo $?'",
        dir, dir, at(), dir, dir, dir, at(), dir, dir, dir, dir, at(), dir, dir);
    if (rc == 99)
        cr_skip_test("mount -t tmpfs refused here");
    cr_assert_eq(rc, 0, "scenario ran: %s", err);
    cr_assert_str_eq(out, "125\n125\n125\n", "every read-only session dir is refused with 125: %s", out);
    for (int i = 1; i <= 3; i++) {
        char path[600], name[16];
        snprintf(path, sizeof(path), "%s/e%d", dir, i);
        snprintf(name, sizeof(name), "ran%d", i);
        char *e = slurp(path, NULL);
        assert_one_line(e, path);
        cr_assert(strstr(e, "cannot create session directory") && strstr(e, "Read-only file system"),
                  "case %d names the cause: %s", i, e);
        cr_assert(!file_exists(dir, name), "case %d: the command was not run", i);
        free(e);
    }
    free(out), free(err);
    rm_rf(dir);
}

Test(space, proc_path_as_session_dir_is_125, .timeout = 20)
{
    static const char *const dirs[] = { "/proc/archtrace-session", "/proc/self/fd/archtrace",
                                        "/proc/self" };
    char *tmp = new_tmpdir();
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        char *err;
        int rc = at_test_shf(NULL, &err, "%s -o %s touch %s/ran", at(), dirs[i], tmp);
        cr_assert_eq(rc, 125, "-o %s: 125, got %d", dirs[i], rc);
        assert_one_line(err, dirs[i]);
        cr_assert(strstr(err, "cannot create session directory"), "-o %s: %s", dirs[i], err);
        cr_assert(!file_exists(tmp, "ran"), "-o %s: command not run", dirs[i]);
        free(err);
    }
    rm_rf(tmp);
}

/* A 64 KiB tmpfs as -o: the target must run exactly as without archtrace;
 * features whose files do not fit are dropped, and the report says so. */
static void check_disk_full(const char *shape)
{
    need_mount_namespace();
    const char *py = at_test_python_or_skip(shape);
    char *dir = new_tmpdir(), *out, *err;
    char *want = plain_stdout(py, "tests/fixtures/hard_workload.py");
    char *want_forks = plain_stdout(py, "tests/fixtures/hard_load.py forks 20");
    int rc = at_test_shf(&out, &err,
        "mkdir %s/full && unshare -m sh -c 'mount -t tmpfs -o size=64k tmpfs %s/full || exit 99; "
        "NO_COLOR=1 %s --json %s/r.json -o %s/full/s %s tests/fixtures/hard_workload.py >%s/o1 2>%s/e1; echo $?; "
        "NO_COLOR=1 %s -o %s/full/f %s tests/fixtures/hard_load.py forks 20 >%s/o2 2>%s/e2; echo $?; "
        "ls %s/full/s > %s/ls'",
        dir, dir, at(), dir, dir, py, dir, dir, at(), dir, py, dir, dir, dir, dir);
    if (rc == 99)
        cr_skip_test("mount -t tmpfs refused here");
    cr_assert_eq(rc, 0, "scenario ran: %s", err);
    cr_assert_str_eq(out, "0\n0\n", "the target's own status (0) both times: %s", out);
    char path[600];
    snprintf(path, sizeof(path), "%s/o1", dir);
    char *o1 = slurp(path, NULL);
    cr_assert_str_eq(o1, want, "stdout identical to the plain run on a full disk");
    snprintf(path, sizeof(path), "%s/o2", dir);
    char *o2 = slurp(path, NULL);
    cr_assert_str_eq(o2, want_forks, "20 forks: stdout identical to the plain run");
    snprintf(path, sizeof(path), "%s/e1", dir);
    char *e1 = slurp(path, NULL);
    cr_assert(strstr(e1, "not written: no space left in the session directory (data dropped)"),
              "the report says which files were dropped and why:\n%s", e1);
    cr_assert(!strstr(e1, "did not finish"), "archtrace still finished the session:\n%s", e1);
    char json[600];
    snprintf(json, sizeof(json), "%s/r.json", dir);
    cr_assert(jq_true(json, "'no space left' in d['processes'][0]['notes']"), "JSON notes say it too");
    cr_assert_eq(jq_long(json, "d['exit_status']"), 0, "JSON exit status");
    snprintf(path, sizeof(path), "%s/e2", dir);
    char *e2 = slurp(path, NULL);
    cr_assert(strstr(e2, "the session ran out of space") && strstr(e2, "could not write their segment"),
              "processes without a segment are counted:\n%s", e2);
    snprintf(path, sizeof(path), "%s/ls", dir);
    char *ls = slurp(path, NULL);
    cr_assert(strstr(ls, ".seg\n") && strstr(ls, "session.meta\n"), "what fitted was kept: %s", ls);
    free(out), free(err), free(want), free(want_forks), free(o1), free(o2), free(e1), free(e2), free(ls);
    rm_rf(dir);
}

Test(space, full_disk_static, .timeout = 60) { check_disk_full("static"); }
Test(space, full_disk_shared, .timeout = 60) { check_disk_full("shared"); }

/* ---- 6. load ----------------------------------------------------------------- */

/* Sum of the sizes of the files in dir, in bytes. */
static long long dir_bytes(const char *dir)
{
    char *out;
    at_test_shf(&out, NULL, "du -sb --apparent-size %s | cut -f1", dir);
    long long n = atoll(out);
    free(out);
    return n;
}

/* Max RSS (KiB) of `archtrace report --json` alone (no children): the
 * report is where archtrace's memory grows with the data. */
static long report_max_rss_kib(const char *session, const char *json)
{
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        dup2(fd, 1);
        dup2(fd, 2);
        execl(at(), "archtrace", "report", "-q", "--json", json, session, (char *)NULL);
        _exit(127);
    }
    int st;
    struct rusage ru;
    cr_assert_eq(wait4(pid, &st, 0, &ru), pid, "wait4 on archtrace report");
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "archtrace report exited 0, status %d", st);
    return ru.ru_maxrss;
}

static void check_load(const char *shape, const char *kind, long procs, long long max_session_per_proc)
{
    const char *py = at_test_python_or_skip(shape);
    char *dir = new_tmpdir(), args[256], json[600], *out, *err;
    snprintf(args, sizeof(args), "tests/fixtures/hard_load.py %s", kind);
    char *want = plain_stdout(py, args);
    snprintf(json, sizeof(json), "%s/r.json", dir);
    /* archtrace in the background, its own VmHWM polled until it exits
     * (wait4 would report the target's RSS: children count there). */
    int rc = at_test_shf(&out, &err,
        "cd %s && { %s -q --json r.json -o s %s %s/%s >target.out 2>target.err & ap=$!; hwm=0; "
        "while kill -0 $ap 2>/dev/null; do h=$(awk '/VmHWM/{print $2}' /proc/$ap/status 2>/dev/null); "
        "[ -n \"$h\" ] && [ \"$h\" -gt \"$hwm\" ] && hwm=$h; sleep 0.02; done; wait $ap; "
        "echo \"$? $hwm\"; }",
        dir, at(), py, root(), args);
    cr_assert_eq(rc, 0, "scenario ran: %s", err);
    int status = -1;
    long hwm = -1;
    cr_assert_eq(sscanf(out, "%d %ld", &status, &hwm), 2, "status and VmHWM: %s", out);
    char path[600];
    snprintf(path, sizeof(path), "%s/target.err", dir);
    char *terr = slurp(path, NULL);
    cr_assert_eq(status, 0, "%s %s under archtrace exits 0: %s", shape, kind, terr);
    snprintf(path, sizeof(path), "%s/target.out", dir);
    char *got = slurp(path, NULL);
    cr_assert_str_eq(got, want, "%s %s: stdout identical with and without archtrace", shape, kind);
    cr_assert_eq(jq_long(json, "len(d['processes'])"), procs, "%s %s: %ld processes listed", shape, kind, procs);
    cr_assert(jq_true(json, "all(p['complete'] for p in d['processes'])"), "every process complete");
    char session[600];
    snprintf(session, sizeof(session), "%s/s", dir);
    long long bytes = dir_bytes(session);
    long rss = report_max_rss_kib(session, json);
    cr_log_info("%s %s: archtrace VmHWM during run %ld KiB, report max RSS %ld KiB, session %lld bytes "
                "for %ld process(es)", shape, kind, hwm, rss, bytes, procs);
    fprintf(stderr, "hardening: %s %s: archtrace VmHWM %ld KiB, report max RSS %ld KiB, session %.1f MiB "
                    "for %ld process(es)\n", shape, kind, hwm, rss, (double)bytes / 1048576.0, procs);
    cr_assert(hwm > 0 && hwm < 64 * 1024, "archtrace's own peak RSS while running stays under 64 MiB: %ld KiB", hwm);
    cr_assert(rss < 64 * 1024, "archtrace report stays under 64 MiB: %ld KiB", rss);
    cr_assert(bytes < max_session_per_proc * procs, "session size bounded: %lld bytes for %ld processes",
              bytes, procs);
    free(out), free(err), free(want), free(got), free(terr);
    rm_rf(dir);
}

#define MiB (1024LL * 1024)
Test(load, threads_64_static, .timeout = 60) { check_load("static", "threads", 1, 32 * MiB); }
Test(load, threads_64_shared, .timeout = 60) { check_load("shared", "threads", 1, 32 * MiB); }
Test(load, forks_50_static, .timeout = 90) { check_load("static", "forks", 51, 16 * MiB); }
Test(load, forks_50_shared, .timeout = 90) { check_load("shared", "forks", 51, 16 * MiB); }
Test(load, objects_10m_static, .timeout = 90) { check_load("static", "objects", 1, 32 * MiB); }
Test(load, objects_10m_shared, .timeout = 90) { check_load("shared", "objects", 1, 32 * MiB); }

/* ---- 7. security ------------------------------------------------------------ */

static void check_modes(const char *shape)
{
    const char *py = at_test_python_or_skip(shape);
    char *dir = new_tmpdir(), *out, *err;
    int rc = at_test_shf(NULL, &err, "umask 000 && %s -q -o %s/s %s tests/fixtures/hard_workload.py",
                         at(), dir, py);
    cr_assert_eq(rc, 0, "run with umask 000: %s", err);
    free(err);
    rc = at_test_shf(&out, &err, "stat -c '%%a %%u %%F %%n' %s/s %s/s/*", dir, dir);
    cr_assert_eq(rc, 0, "stat: %s", err);
    int files = 0;
    for (char *save, *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        unsigned mode;
        char type[32];
        unsigned uid;
        cr_assert_eq(sscanf(line, "%o %u %31s", &mode, &uid, type), 3, "stat line: %s", line);
        cr_assert_eq(uid, geteuid(), "owned by us: %s", line);
        if (files++ == 0) {
            cr_assert_eq(mode, 0700, "session directory is 0700 even with umask 000: %s", line);
        } else {
            cr_assert(!strcmp(type, "regular"), "only regular files in a session: %s", line);
            cr_assert_eq(mode, 0600, "session files are 0600 even with umask 000: %s", line);
        }
    }
    cr_assert_geq(files, 1 + 2 + 1, "directory, two segments and session.meta at least: %d", files);
    free(out), free(err);
    rm_rf(dir);
}

Test(security, session_modes_static, .timeout = 30) { check_modes("static"); }
Test(security, session_modes_shared, .timeout = 30) { check_modes("shared"); }

Test(security, symlinked_or_foreign_output_dir_refused, .timeout = 30)
{
    char *dir = new_tmpdir();
    static const char *const cases[][3] = {
        /* setup (in dir),                         -o,        the line says */
        { "mkdir real && ln -s real link", "link", "symbolic link" },
        { "ln -s nowhere dangling", "dangling", "symbolic link" },
        { "ln -s /etc etc", "etc", "symbolic link" },
        { "echo x > file", "file", "not a directory of ours" },
        { "mkdir full && touch full/x", "full", "not empty" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *err;
        int rc = at_test_shf(NULL, &err, "cd %s && %s && %s -o %s touch %s/ran", dir, cases[i][0], at(),
                             cases[i][1], dir);
        cr_assert_eq(rc, 125, "-o %s (%s): 125, got %d: %s", cases[i][1], cases[i][0], rc, err);
        assert_one_line(err, cases[i][1]);
        cr_assert(strstr(err, cases[i][2]), "-o %s: the line says '%s': %s", cases[i][1], cases[i][2], err);
        cr_assert(!file_exists(dir, "ran"), "-o %s: command not run", cases[i][1]);
        free(err);
    }
    cr_assert(!file_exists(dir, "nowhere"), "a dangling symlink's target is not created");
    char *out;
    at_test_shf(&out, NULL, "ls -A %s/real", dir);
    cr_assert_str_eq(out, "", "nothing written through the symlink: %s", out);
    free(out);
    rm_rf(dir);
}

/* Symlinks planted in the session at the paths the shim is about to
 * create (the target's pid is the shell's, which execs it) must be
 * replaced, never followed. */
static void check_planted_symlinks(const char *shape)
{
    const char *py = at_test_python_or_skip(shape);
    char *dir = new_tmpdir(), *out, *err;
    int rc = at_test_shf(&out, &err,
        "cd %s && echo precious > victim && %s -q --json r.json -o s sh -c "
        "'for f in seg alloc gil imports stacks; do ln -s %s/victim s/$$.$f; done; "
        "exec %s -c \"print(123)\"'",
        dir, at(), dir, py);
    cr_assert_eq(rc, 0, "run with planted symlinks: %s", err);
    cr_assert_str_eq(out, "123\n", "target output: %s", out);
    free(out), free(err);
    char path[600];
    snprintf(path, sizeof(path), "%s/victim", dir);
    char *victim = slurp(path, NULL);
    cr_assert_str_eq(victim, "precious\n", "the symlink target is untouched");
    free(victim);
    /* the segment replaced its planted link; links for files nobody made
     * (a feature or the sampler with nothing to write) may remain */
    rc = at_test_shf(&out, NULL, "find %s/s -name '*.seg' -type f | wc -l", dir);
    cr_assert_str_eq(out, "1\n", "the segment is a regular file of its own");
    free(out);
    snprintf(path, sizeof(path), "%s/r.json", dir);
    cr_assert_eq(jq_long(path, "len(d['processes'])"), 1, "the target's own segment was created and read");
    rm_rf(dir);
}

Test(security, planted_symlinks_not_followed_static, .timeout = 30) { check_planted_symlinks("static"); }
Test(security, planted_symlinks_not_followed_shared, .timeout = 30) { check_planted_symlinks("shared"); }

/* A CPython with AT_SECURE (setgid to nogroup, run as root): the shim must
 * ignore ARCHTRACE_* entirely.  The static python cannot load the shim at
 * all in secure mode (ld.so drops LD_PRELOAD paths), so that shape checks
 * the run is harmless; the shared shape links the shim in (DT_NEEDED, so
 * ld.so loads it even in secure mode) and checks its constructor. */
Test(security, setgid_static_python_runs_untraced, .timeout = 30)
{
    const char *py = at_test_python_or_skip("static");
    char *dir = new_tmpdir(), *out, *err;
    int rc = at_test_shf(&out, &err,
        "cd %s && cp %s py && chgrp 65534 py && chmod 2755 py && "
        "%s -q --json r.json -o s ./py -c 'import os; print(os.getegid())'", dir, py, at());
    cr_assert_eq(rc, 0, "setgid python under archtrace: %s", err);
    if (strcmp(out, "65534\n"))
        cr_skip_test("setgid bit not honoured here (nosuid mount?): egid %s", out);
    char json[600];
    snprintf(json, sizeof(json), "%s/r.json", dir);
    cr_assert_eq(jq_long(json, "len(d['processes'])"), 0, "no segment from a secure-mode process");
    free(out), free(err);
    rm_rf(dir);
}

Test(security, setgid_process_ignores_archtrace_environment, .timeout = 60)
{
    const char *py = at_test_python_or_skip("shared");
    if (at_test_sh("command -v cc", NULL, NULL) != 0)
        cr_skip_test("no C compiler to build the setgid launcher");
    char *libdir;
    int rc = at_test_shf(&libdir, NULL, "%s -c \"import sysconfig; print(sysconfig.get_config_var('LIBDIR'))\"", py);
    cr_assert_eq(rc, 0, "LIBDIR of the shared python");
    libdir[strcspn(libdir, "\n")] = '\0';
    char shim[1024];
    snprintf(shim, sizeof(shim), "%s", at());
    snprintf(strrchr(shim, '/'), sizeof(shim) - (size_t)(strrchr(shim, '/') - shim), "/libarchtrace.so");
    char *dir = new_tmpdir(), *out, *err;
    rc = at_test_shf(NULL, &err,
        "cd %s && printf 'int Py_BytesMain(int, char **);\\n"
        "int main(int c, char **v) { return Py_BytesMain(c, v); }\\n' > l.c && "
        "cc -o launcher l.c -Wl,--no-as-needed %s -Wl,--as-needed -L%s -lpython3.11 -Wl,-rpath,%s && "
        "mkdir plain secure", dir, shim, libdir, libdir);
    cr_assert_eq(rc, 0, "launcher (an embedded CPython with the shim linked in) built: %s", err);
    free(err);
    const char *code = "import os; print(os.getegid())";
    rc = at_test_shf(&out, &err, "cd %s && ARCHTRACE_SESSION=%s/plain ./launcher -c '%s'", dir, dir, code);
    cr_assert_eq(rc, 0, "control run: %s", err);
    char *ls;
    at_test_shf(&ls, NULL, "ls %s/plain", dir);
    cr_assert(strstr(ls, ".seg"), "control: without AT_SECURE the shim does write a segment (%s)", ls);
    free(out), free(err), free(ls);
    rc = at_test_shf(&out, &err, "cd %s && chgrp 65534 launcher && chmod 2755 launcher && "
                     "ARCHTRACE_SESSION=%s/secure ./launcher -c '%s'", dir, dir, code);
    cr_assert_eq(rc, 0, "setgid run: %s", err);
    if (strcmp(out, "65534\n"))
        cr_skip_test("setgid bit not honoured here (nosuid mount?): egid %s", out);
    at_test_shf(&ls, NULL, "ls -A %s/secure", dir);
    cr_assert_str_eq(ls, "", "with AT_SECURE the shim ignores ARCHTRACE_SESSION: %s", ls);
    free(out), free(err), free(ls), free(libdir);
    rm_rf(dir);
}

/* Everything the target controls, full of ESC and CSI: the text report
 * must carry none of them raw. */
static void check_escapes(const char *shape)
{
    const char *py = at_test_python_or_skip(shape);
    char *dir = new_tmpdir(), *out;
    int rc = at_test_shf(&out, NULL,
        "cd %s && NO_COLOR=1 %s --json r.json %s %s/tests/fixtures/hard_evil.py %s "
        "\"$(printf 'arg\\033[2J\\033]0;title\\007\\302\\233')\" 2>err",
        dir, at(), py, root(), dir);
    char path[600];
    snprintf(path, sizeof(path), "%s/err", dir);
    size_t len = 0;
    char *err = slurp(path, &len);
    cr_assert_eq(rc, 0, "the evil target runs normally: %s", err);
    cr_assert(strstr(out, "evil done"), "target output: %s", out);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)err[i];
        size_t from = i > 60 ? i - 60 : 0;
        cr_assert(c != 0x1b, "raw ESC at byte %zu of the text report: ...%.*s", i, (int)(i - from), err + from);
        cr_assert(c != 0x07, "raw BEL at byte %zu of the text report: ...%.*s", i, (int)(i - from), err + from);
        cr_assert(!(c == 0xc2 && i + 1 < len && (unsigned char)err[i + 1] >= 0x80 &&
                    (unsigned char)err[i + 1] < 0xa0),
                  "raw C1 control at byte %zu of the text report: ...%.*s", i, (int)(i - from), err + from);
    }
    cr_assert(strstr(err, "\\x1b[2J"), "the escape is shown escaped: %s", err);
    snprintf(path, sizeof(path), "%s/r.json", dir);
    cr_assert(jq_true(path, "d['processes'][0]['argv'][-1].startswith('arg\\x1b[2J')"),
              "JSON keeps the exact argv (escaped by the JSON encoding)");
    free(out), free(err);
    rm_rf(dir);
}

Test(security, no_raw_escapes_in_report_static, .timeout = 60) { check_escapes("static"); }
Test(security, no_raw_escapes_in_report_shared, .timeout = 60) { check_escapes("shared"); }

/* ---- 8. the target's own choice of allocators ------------------------------ */

/* A program may choose its allocators (PYTHONMALLOC, -X dev's debug
 * hooks).  Under each, in exact and sampled mode, it must run to the same
 * output as without archtrace (the debug allocator aborted at exit when it
 * freed the shim's audit hook entries, made before it was installed), and
 * archtrace must still see its allocations. */
static void check_allocator_choice(const char *shape)
{
    static const char *const choices[] = { "PYTHONMALLOC=debug", "PYTHONDEVMODE=1", "PYTHONMALLOC=malloc",
                                           "PYTHONMALLOC=malloc_debug" };
    static const char *const modes[] = { "", "--alloc-sample 1024" };
    const char *py = at_test_python_or_skip(shape);
    char *want = plain_stdout(py, "tests/fixtures/hard_workload.py");
    for (size_t c = 0; c < sizeof(choices) / sizeof(choices[0]); c++) {
        for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
            char *dir = new_tmpdir(), *out, *err, json[600];
            int rc = at_test_shf(&out, &err, "env %s %s -q %s --json %s/r.json -o %s/s %s tests/fixtures/hard_workload.py",
                                 choices[c], at(), modes[m], dir, dir, py);
            cr_assert_eq(rc, 0, "%s, archtrace %s: exit 0, got %d: %s", choices[c], modes[m], rc, err);
            cr_assert(!strstr(err, "Fatal Python error"), "%s, archtrace %s: %s", choices[c], modes[m], err);
            cr_assert_str_eq(out, want, "%s, archtrace %s: the program's own output", choices[c], modes[m]);
            snprintf(json, sizeof(json), "%s/r.json", dir);
            cr_assert(jq_true(json, "any(t['file'].endswith('hard_workload.py') and t['function'].startswith('allocate')"
                                    " for s in d['processes'][0]['alloc']['snapshots'] if s['label'] == 'hard-peak'"
                                    " for t in s['top'])"),
                      "%s, archtrace %s: the workload's allocation is in its snapshot's top", choices[c], modes[m]);
            free(out), free(err);
            rm_rf(dir);
        }
    }
    free(want);
}

/* every interpreter: 3.12 and 3.13 keep the hook list elsewhere */
AT_TEST_EACH_SHAPE(allocators, program_chosen_allocators, .timeout = 120) { check_allocator_choice(shape); }
