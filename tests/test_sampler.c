/* SPDX-License-Identifier: MIT */
/* test_sampler.c - the external sampler against real CPython processes: 3.11 in both
 * build shapes, 3.12 and 3.13 (one parameterized test per interpreter, skipped where absent).
 *
 * Ground truth comes from the programs themselves (the tests/fixtures scripts):
 * f_lineno as each frame sees it, CPU time per function from
 * time.thread_time().  archtrace runs as build/archtrace when it exists
 * (AT_ARCHTRACE overrides), else at_cmd_dump/at_cmd_record run in a
 * forked child of this test.  Timing-sensitive tests take a file lock so
 * they never measure each other.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <criterion/logging.h>
#include <dirent.h>
#include <math.h>
#include <sys/file.h>

#include "fixtures/testutil.h"
#include "cli/cmd_dump.h"
#include "cli/cmd_record.h"
#include "remote/sampler.h"
#include "report/report_features.h"
#include "session/stacks.h"
#include "testlib.h"

/* A measurement worth seeing in every run (tools/run_tests.sh shows
 * "[----]" lines; cr_log_warn would fail the run, cr_log_info needs
 * --verbose). */
static void measured(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void measured(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("[----] ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ---- running archtrace -------------------------------------------------- */

typedef struct run_result {
    int status;               /* exit status, or 128+signal                */
    char *out;                /* stdout                                    */
    char *err;                /* stderr                                    */
} run_result_t;

static const char *archtrace_bin(void)
{
    static char path[1024];
    const char *env = getenv("AT_ARCHTRACE");
    const char *cands[] = { env, "build/archtrace", "../build/archtrace" };
    for (size_t i = 0; i < 3; i++)
        if (cands[i] && access(cands[i], X_OK) == 0 && realpath(cands[i], path))
            return path;
    return NULL;
}

/* In the child when there is no binary: the options the CLI would make. */
static int in_process(char **argv)
{
    at_options_t o = { .rate_hz = 100, .top_n = 5, .quiet = 1 };
    for (int i = 1; argv[i]; i++) {
        if (!strcmp(argv[i], "-p"))
            o.pid = atoi(argv[++i]);
        else if (!strcmp(argv[i], "dump"))
            o.command = AT_CMD_DUMP;
        else if (!strcmp(argv[i], "record"))
            o.command = AT_CMD_RECORD;
        else if (!strcmp(argv[i], "--native"))
            o.native = 1;
        else if (!strcmp(argv[i], "--rate"))
            o.rate_hz = atof(argv[++i]);
        else if (!strcmp(argv[i], "-d"))
            o.duration_s = atof(argv[++i]);
        else if (!strcmp(argv[i], "-o"))
            o.output_dir = argv[++i];
    }
    return o.command == AT_CMD_DUMP ? at_cmd_dump(&o) : at_cmd_record(&o);
}

static uid_t run_as_uid; /* 0: as we are; else setuid() in the child first */

/* Run `archtrace ARGS...` (NULL-ended), capturing its output. */
static void run_archtrace(run_result_t *r, ...)
{
    char *argv[32], outp[] = "/tmp/at_out_XXXXXX", errp[] = "/tmp/at_err_XXXXXX";
    const char *bin = archtrace_bin();
    va_list ap;
    int argc = 0, fo = mkstemp(outp), fe = mkstemp(errp);
    cr_assert(fo >= 0 && fe >= 0, "mkstemp failed: %s", strerror(errno));
    argv[argc++] = (char *)(bin ? bin : "archtrace");
    va_start(ap, r);
    for (char *a; (a = va_arg(ap, char *)) && argc < 31;)
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fo, 1);
        dup2(fe, 2);
        if (run_as_uid && (setgid(run_as_uid) < 0 || setuid(run_as_uid) < 0))
            _exit(99);
        if (bin)
            execv(bin, argv);
        int rc = bin ? 127 : in_process(argv);
        fflush(NULL);
        _exit(rc);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    r->out = tu_slurp(outp);
    r->err = tu_slurp(errp);
    close(fo);
    close(fe);
    unlink(outp);
    unlink(errp);
}

static void run_free(run_result_t *r)
{
    free(r->out);
    free(r->err);
}

/* One test at a time measures timing: others wait here. */
static void timing_lock(void)
{
    int fd = open("/tmp/archtrace-test-timing.lock", O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    cr_assert(fd >= 0, "cannot open the timing lock: %s", strerror(errno));
    cr_assert(flock(fd, LOCK_EX) == 0, "cannot take the timing lock: %s", strerror(errno));
    /* released when this test's process exits */
}

/* A running fixture and where it reports. */
typedef struct fixture {
    pid_t pid;                /* the python process                        */
    char dir[256];            /* a temporary directory for its files       */
    char ready[512];          /* the ready file                            */
} fixture_t;

static void start_fixture(fixture_t *f, const char *py, const char *script, const char *a1, const char *a2)
{
    char path[1024];
    cr_assert(tu_tmpdir(f->dir, sizeof f->dir), "mkdtemp failed: %s", strerror(errno));
    snprintf(f->ready, sizeof f->ready, "%s/ready", f->dir);
    char *argv[] = { (char *)py, (char *)tu_fixture(script, path, sizeof path), f->ready,
                     (char *)a1, (char *)a2, NULL };
    f->pid = tu_spawn(argv);
    cr_assert(f->pid > 0, "cannot start %s", py);
    cr_assert(tu_wait_file(f->ready, 15) == 0, "%s %s did not get ready", py, script);
}

static void stop_fixture(fixture_t *f)
{
    tu_kill(f->pid);
    tu_rmtree(f->dir);
}

/* The interpreter of a shape ("static", "shared": 3.11; "3.12", "3.13"),
 * or skip the test. */
static void need_python(const char *shape, char *py, size_t n)
{
    snprintf(py, n, "%s", at_test_python_or_skip(shape));
}

static int stacks_have(const char *dir, pid_t pid, const char *func, uint64_t *samples)
{
    char err[512];
    at_stacks_t *s;
    if (at_stacks_load(dir, pid, &s, err, sizeof err) < 0)
        return 0;
    int found = 0;
    for (uint32_t i = 0; i < at_symtab_count(at_stacks_symtab(s)); i++)
        found |= !strcmp(at_symtab_func(at_stacks_symtab(s), i), func);
    *samples = at_stacks_meta(s)->samples;
    at_stacks_free(s);
    return found;
}

/* ---- dump: the exact call chain ------------------------------------------- */

/* The fixture wrote "qualname\tfile\tf_lineno" innermost first; dump
 * prints outermost first: compare them in that order. */
static void check_chain(const char *shape)
{
    char py[512], want[64][1024];
    fixture_t f;
    run_result_t r;
    need_python(shape, py, sizeof py);
    start_fixture(&f, py, "chain.py", NULL, NULL);
    char *truth = tu_slurp(f.ready);
    int n = 0;
    for (char *save, *l = strtok_r(truth, "\n", &save); l && n < 64; l = strtok_r(NULL, "\n", &save)) {
        char qual[256], file[600];
        int line;
        if (sscanf(l, "%255[^\t]\t%599[^\t]\t%d", qual, file, &line) == 3)
            snprintf(want[n++], sizeof want[0], "  File \"%s\", line %d, in %s\n", file, line, qual);
    }
    free(truth);
    cr_assert(n == 4, "%s: the fixture reported %d frames, expected 4", shape, n);

    char pidarg[16];
    snprintf(pidarg, sizeof pidarg, "%d", (int)f.pid);
    run_archtrace(&r, "-p", pidarg, "dump", NULL);
    stop_fixture(&f);
    cr_assert_eq(r.status, 0, "%s: dump failed (%d): %s", shape, r.status, r.err);
    const char *at = strstr(r.out, "Thread ");
    cr_assert(at, "%s: no thread in the dump:\n%s", shape, r.out);
    cr_assert(strstr(at, "(idle)"), "%s: the sleeping thread is not shown idle:\n%s", shape, r.out);
    at = strchr(at, '\n') + 1;
    for (int i = n - 1; i >= 0; i--) {
        cr_assert(!strncmp(at, want[i], strlen(want[i])),
                  "%s: frame %d differs from f_lineno's view\nwant: %sgot:\n%s", shape, n - 1 - i, want[i], at);
        at += strlen(want[i]);
    }
    run_free(&r);
}

ParameterizedTestParameters(dump, call_chain_and_lines)
{
    static at_test_shape_t shapes[] = AT_TEST_SHAPES;
    return cr_make_param_array(at_test_shape_t, shapes, sizeof shapes / sizeof *shapes);
}

ParameterizedTest(at_test_shape_t *s, dump, call_chain_and_lines, .timeout = 30)
{
    check_chain(s->name);
}

static void check_four_threads(const char *shape)
{
    char py[512], pidarg[16];
    fixture_t f;
    run_result_t r;
    need_python(shape, py, sizeof py);
    start_fixture(&f, py, "threads4.py", NULL, NULL);
    snprintf(pidarg, sizeof pidarg, "%d", (int)f.pid);
    run_archtrace(&r, "-p", pidarg, "dump", NULL);
    stop_fixture(&f);
    cr_assert_eq(r.status, 0, "%s: dump failed (%d): %s", shape, r.status, r.err);
    int threads = 0;
    for (const char *p = r.out; (p = strstr(p, "\nThread ")); p++)
        threads++;
    cr_assert_eq(threads, 4, "%s: %d thread stacks, expected 4:\n%s", shape, threads, r.out);
    const char *fns[] = { "in main_wait\n", "in worker_0\n", "in worker_1\n", "in worker_2\n" };
    for (int i = 0; i < 4; i++)
        cr_assert(strstr(r.out, fns[i]), "%s: no frame %s in:\n%s", shape, fns[i], r.out);
    /* threading's names, read from threading._active: "Thread-N (worker_i)" */
    const char *names[] = { "\"MainThread\" (", " (worker_0)\" (", " (worker_1)\" (", " (worker_2)\" (" };
    for (int i = 0; i < 4; i++)
        cr_assert(strstr(r.out, names[i]), "%s: no thread named %s in:\n%s", shape, names[i], r.out);
    run_free(&r);
}

ParameterizedTestParameters(dump, four_threads_four_stacks)
{
    static at_test_shape_t shapes[] = AT_TEST_SHAPES;
    return cr_make_param_array(at_test_shape_t, shapes, sizeof shapes / sizeof *shapes);
}

ParameterizedTest(at_test_shape_t *s, dump, four_threads_four_stacks, .timeout = 30)
{
    check_four_threads(s->name);
}

Test(dump, non_ascii_names_in_utf8, .timeout = 30)
{
    char py[512], pidarg[16], src[1024], copy[600], cmd[2048];
    fixture_t f;
    run_result_t r;
    need_python("shared", py, sizeof py);
    cr_assert(tu_tmpdir(f.dir, sizeof f.dir), "mkdtemp failed");
    snprintf(copy, sizeof copy, "%s/ñame_関.py", f.dir);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", tu_fixture("names.py", src, sizeof src), copy);
    cr_assert_eq(system(cmd), 0, "cannot copy names.py");
    snprintf(f.ready, sizeof f.ready, "%s/ready", f.dir);
    char *argv[] = { py, copy, f.ready, NULL };
    f.pid = tu_spawn(argv);
    cr_assert(tu_wait_file(f.ready, 15) == 0, "names.py did not start");
    snprintf(pidarg, sizeof pidarg, "%d", (int)f.pid);
    run_archtrace(&r, "-p", pidarg, "dump", NULL);
    stop_fixture(&f);
    cr_assert_eq(r.status, 0, "dump failed (%d): %s", r.status, r.err);
    const char *a = strstr(r.out, "ñame_関.py\", line 15, in función\n");
    const char *b = strstr(r.out, "ñame_関.py\", line 19, in 関数\n");
    const char *c = strstr(r.out, "ñame_関.py\", line 24, in 𠀀\n");
    cr_assert(a && b && c && a < b && b < c, "UCS1/2/4 names or the file name are wrong:\n%s", r.out);
    run_free(&r);
}

/* ---- dump: errors ----------------------------------------------------------- */

static void check_error(const char *pidarg, int status, const char *msg)
{
    run_result_t r;
    run_archtrace(&r, "-p", pidarg, "dump", NULL);
    cr_assert_eq(r.status, status, "dump -p %s: status %d, expected %d (stderr: %s)", pidarg, r.status,
                 status, r.err);
    cr_assert_eq(count_lines_of(r.err), 1, "dump -p %s: expected one line on stderr, got: %s", pidarg, r.err);
    cr_assert(strncmp(r.err, "archtrace: ", 11) == 0 && strstr(r.err, msg),
              "dump -p %s: stderr is \"%s\", expected \"archtrace: ...%s...\"", pidarg, r.err, msg);
    cr_assert(!r.out || !r.out[0], "dump -p %s: nothing expected on stdout, got: %s", pidarg, r.out);
    run_free(&r);
}

Test(dump, missing_pid, .timeout = 20)
{
    pid_t pid = fork();
    if (pid == 0)
        _exit(0);
    waitpid(pid, NULL, 0); /* a pid that surely existed and is gone now */
    char pidarg[16], msg[64];
    snprintf(pidarg, sizeof pidarg, "%d", (int)pid);
    snprintf(msg, sizeof msg, "no such process: %d", (int)pid);
    check_error(pidarg, AT_EXIT_NO_SUCH_PROCESS, msg);
}

Test(dump, not_python, .timeout = 20)
{
    char *argv[] = { "/bin/sleep", "30", NULL }, pidarg[16], msg[80];
    pid_t pid = tu_spawn(argv);
    tu_sleep(0.1);
    snprintf(pidarg, sizeof pidarg, "%d", (int)pid);
    snprintf(msg, sizeof msg, "process %d (sleep) is not a Python process", (int)pid);
    check_error(pidarg, AT_EXIT_NOT_PYTHON, msg);
    tu_kill(pid);
}

/* A CPython without a table (3.10 here) is refused, naming the versions
 * archtrace reads. */
Test(dump, other_python_version, .timeout = 20)
{
    char py[512], pidarg[16], msg[160], ver[32];
    if (tu_find_python("3.10", NULL, py, sizeof py) < 0)
        cr_skip_test("no python3.10 on this machine to stand for an unsupported Python");
    char cmd[600];
    /* before 3.11 there is no Py_Version: the library's name says "3.10" */
    snprintf(cmd, sizeof cmd, "%s -c 'import sys;print(\"%%d.%%d\" %% sys.version_info[:2])'", py);
    cr_assert(tu_capture(cmd, ver, sizeof ver) == 0, "cannot ask %s its version", py);
    char *argv[] = { py, "-c", "import time; time.sleep(30)", NULL };
    pid_t pid = tu_spawn(argv);
    tu_sleep(0.3);
    snprintf(pidarg, sizeof pidarg, "%d", (int)pid);
    snprintf(msg, sizeof msg, "process %d runs Python %s; archtrace supports CPython 3.11 to 3.13", (int)pid, ver);
    check_error(pidarg, AT_EXIT_UNSUPPORTED, msg);
    tu_kill(pid);
}

Test(dump, no_permission_says_why, .timeout = 20)
{
    char py[512], pidarg[16];
    fixture_t f;
    run_result_t r;
    if (geteuid() != 0)
        cr_skip_test("needs root to drop to another user");
    need_python("static", py, sizeof py);
    start_fixture(&f, py, "chain.py", NULL, NULL);
    snprintf(pidarg, sizeof pidarg, "%d", (int)f.pid);
    chmod(f.dir, 0755); /* let `nobody` reach the fixture's files if it must */
    run_as_uid = 65534;
    run_archtrace(&r, "-p", pidarg, "dump", NULL);
    run_as_uid = 0;
    stop_fixture(&f);
    cr_assert_eq(r.status, AT_EXIT_PERMISSION, "status %d, want %d (stderr: %s)", r.status, AT_EXIT_PERMISSION, r.err);
    cr_assert(count_lines_of(r.err) == 1 && strstr(r.err, "archtrace: cannot read process ") == r.err &&
              strstr(r.err, "run archtrace as root") && strstr(r.err, "ptrace_scope") && strstr(r.err, "CAP_SYS_PTRACE"),
              "expected one line with the cause and the remedies, got: %s", r.err);
    run_free(&r);
}

/* ---- dump --native ------------------------------------------------------------ */

static void check_native(const char *shape)
{
    char py[512], pidarg[16];
    fixture_t f;
    run_result_t r;
    need_python(shape, py, sizeof py);
    start_fixture(&f, py, "chain.py", NULL, NULL);
    snprintf(pidarg, sizeof pidarg, "%d", (int)f.pid);
    run_archtrace(&r, "-p", pidarg, "dump", "--native", NULL);
    stop_fixture(&f);
    cr_assert_eq(r.status, 0, "%s: dump --native failed (%d): %s", shape, r.status, r.err);
    const char *mod = strstr(r.out, "in <module>\n"), *outer = strstr(r.out, "in outer\n");
    const char *middle = strstr(r.out, "in Runner.middle\n"), *inner = strstr(r.out, "in outer.<locals>.inner\n");
    cr_assert(mod && outer && middle && inner && mod < outer && outer < middle && middle < inner,
              "%s: Python frames missing or out of order:\n%s", shape, r.out);
    cr_assert(strstr(r.out, "[native] Py_RunMain ("), "%s: no native root frames:\n%s", shape, r.out);
    cr_assert(strstr(inner, "[native] clock_nanosleep ("), "%s: no native frames above the Python ones:\n%s",
              shape, r.out);
    cr_assert(!strstr(r.out, "_PyEval_EvalFrameDefault"),
              "%s: eval-loop frames should be replaced by Python frames:\n%s", shape, r.out);
    run_free(&r);
}

ParameterizedTestParameters(dump, native_frames_merged)
{
    static at_test_shape_t shapes[] = AT_TEST_SHAPES;
    return cr_make_param_array(at_test_shape_t, shapes, sizeof shapes / sizeof *shapes);
}

ParameterizedTest(at_test_shape_t *s, dump, native_frames_merged, .timeout = 30)
{
    check_native(s->name);
}

/* ---- record: a known split ------------------------------------------------------ */

typedef struct split_count {
    uint64_t hot, cold, other, idle;
} split_count_t;

static void count_split(const char *dir, pid_t pid, split_count_t *c)
{
    char err[512];
    at_stacks_t *s;
    int rc = at_stacks_load(dir, pid, &s, err, sizeof err);
    cr_assert_eq(rc, 0, "cannot load the recorded stacks: %s", err);
    memset(c, 0, sizeof *c);
    size_t cur = 0;
    at_stack_view_t v;
    while (at_stacks_next(s, &cur, &v)) {
        const char *top = v.n ? at_symtab_func(at_stacks_symtab(s), v.frames[v.n - 1].sym) : "";
        if (v.idle)
            c->idle += v.count;
        else if (!strcmp(top, "hot"))
            c->hot += v.count;
        else if (!strcmp(top, "cold"))
            c->cold += v.count;
        else
            c->other += v.count;
    }
    at_stacks_free(s);
}

static void check_split(const char *shape)
{
    char py[512], pidarg[16], outdir[512], result[600];
    fixture_t f;
    run_result_t r;
    need_python(shape, py, sizeof py);
    timing_lock();
    start_fixture(&f, py, "split.py", "2.5", NULL);
    snprintf(pidarg, sizeof pidarg, "%d", (int)f.pid);
    snprintf(outdir, sizeof outdir, "%s/session", f.dir);
    run_archtrace(&r, "-p", pidarg, "record", "--rate", "1000", "-o", outdir, NULL);
    cr_assert_eq(r.status, 0, "%s: record failed (%d): %s", shape, r.status, r.err);
    snprintf(result, sizeof result, "%s.result", f.ready);
    cr_assert(tu_wait_file(result, 10) == 0, "%s: split.py wrote no result", shape);
    double hot = 0, cold = 0;
    char *truth = tu_slurp(result);
    cr_assert(truth && sscanf(truth, "hot %lf\ncold %lf", &hot, &cold) == 2, "%s: bad result: %s", shape, truth);
    free(truth);
    split_count_t c;
    count_split(outdir, f.pid, &c);
    stop_fixture(&f);
    double want = hot / (hot + cold), got = (double)c.hot / (double)(c.hot + c.cold);
    measured("%s: hot share %.3f sampled (%lu hot, %lu cold, %lu other, %lu idle), %.3f by thread_time",
                shape, got, (unsigned long)c.hot, (unsigned long)c.cold, (unsigned long)c.other,
                (unsigned long)c.idle, want);
    cr_assert(c.hot + c.cold > 1000, "%s: too few samples (%lu)", shape, (unsigned long)(c.hot + c.cold));
    cr_assert(got > want - 0.05 && got < want + 0.05, "%s: hot share %.3f sampled, %.3f measured by the program",
              shape, got, want);
    run_free(&r);
}

ParameterizedTestParameters(record, known_split)
{
    static at_test_shape_t shapes[] = AT_TEST_SHAPES;
    return cr_make_param_array(at_test_shape_t, shapes, sizeof shapes / sizeof *shapes);
}

ParameterizedTest(at_test_shape_t *s, record, known_split, .timeout = 40)
{
    check_split(s->name);
}

/* A thread that enters and leaves evaluation loops from C thousands of
 * times a second (a sort key) is walked through each entry frame into
 * its caller: most samples are in the key function, under <module>.  It
 * is also read, now and then, while its frame pointer changes (such a
 * read is looked at again): few samples may end as "[truncated]".  How
 * few depends on the machine's load (a thread preempted mid-change stays
 * torn for its whole time slice); 5 % bounds it here. */
static void check_key_callbacks(const char *shape)
{
    char py[512], pidarg[16], outdir[512], json[600], *err = NULL;
    fixture_t f;
    run_result_t r;
    need_python(shape, py, sizeof py);
    start_fixture(&f, py, "key_callbacks.py", "4", NULL);
    snprintf(pidarg, sizeof pidarg, "%d", (int)f.pid);
    snprintf(outdir, sizeof outdir, "%s/session", f.dir);
    run_archtrace(&r, "-p", pidarg, "record", "--rate", "2000", "-d", "2", "-o", outdir, NULL);
    cr_assert_eq(r.status, 0, "%s: record failed (%d): %s", shape, r.status, r.err);
    snprintf(json, sizeof json, "%s/r.json", f.dir);
    int rc = at_test_shf(NULL, &err, "%s report -q --idle --json %s %s", at_test_archtrace(), json, outdir);
    cr_assert_eq(rc, 0, "%s: report: %s", shape, err);
    const char *s = "d['processes'][0]['samples']['stacks']";
    char expr[512];
    snprintf(expr, sizeof expr, "sum(k['count'] for k in %s)", s);
    double all = at_test_json_num(json, expr);
    snprintf(expr, sizeof expr, "sum(k['count'] for k in %s if '[truncated]' in k['frames'] or not k['frames'])", s);
    double torn = at_test_json_num(json, expr);
    snprintf(expr, sizeof expr, "sum(k['count'] for k in %s if any(x.startswith('f (') for x in k['frames']))", s);
    double in_f = at_test_json_num(json, expr);
    measured("%s: %.0f samples, %.0f truncated or empty, %.3f in the key function", shape, all, torn, in_f / all);
    cr_assert_gt(all, 1000, "%s: too few samples (%.0f)", shape, all);
    cr_assert_lt(torn, 0.05 * all, "%s: %.0f of %.0f samples truncated or empty", shape, torn, all);
    cr_assert_gt(in_f, 0.5 * all, "%s: only %.0f of %.0f samples in the key function", shape, in_f, all);
    stop_fixture(&f);
    free(err);
    run_free(&r);
}

AT_TEST_EACH_SHAPE(record, key_callbacks_not_torn, .timeout = 40) { check_key_callbacks(shape); }

Test(record, ends_when_the_target_exits, .timeout = 30)
{
    char py[512], pidarg[16], outdir[512];
    fixture_t f;
    run_result_t r;
    uint64_t samples = 0;
    need_python("static", py, sizeof py);
    start_fixture(&f, py, "split.py", "1.0", NULL);
    snprintf(pidarg, sizeof pidarg, "%d", (int)f.pid);
    snprintf(outdir, sizeof outdir, "%s/session", f.dir);
    double t0 = tu_now();
    run_archtrace(&r, "-p", pidarg, "record", "--rate", "200", "-o", outdir, NULL);
    double took = tu_now() - t0;
    int found = stacks_have(outdir, f.pid, "hot", &samples);
    stop_fixture(&f);
    cr_assert_eq(r.status, 0, "record failed (%d): %s", r.status, r.err);
    cr_assert(took < 5, "record should end with its target (took %.1f s)", took);
    cr_assert(found && samples > 50, "samples until the exit are kept (found %d, %lu)", found, (unsigned long)samples);
    run_free(&r);
}

Test(record, sigint_stops_and_keeps_the_samples, .timeout = 30)
{
    char py[512], pidarg[16], outdir[512], out[] = "/tmp/at_rec_XXXXXX";
    const char *bin = archtrace_bin();
    fixture_t f;
    uint64_t samples = 0;
    if (!bin)
        cr_skip_test("needs build/archtrace to send it SIGINT");
    need_python("shared", py, sizeof py);
    start_fixture(&f, py, "chain.py", NULL, NULL);
    snprintf(pidarg, sizeof pidarg, "%d", (int)f.pid);
    snprintf(outdir, sizeof outdir, "%s/session", f.dir);
    int fd = mkstemp(out);
    pid_t rec = fork();
    if (rec == 0) {
        dup2(fd, 2);
        execl(bin, bin, "-p", pidarg, "record", "--rate", "200", "--idle", "-o", outdir, (char *)NULL);
        _exit(127);
    }
    tu_sleep(0.7);
    kill(rec, SIGINT);
    int st;
    waitpid(rec, &st, 0);
    close(fd);
    unlink(out);
    int found = stacks_have(outdir, f.pid, "outer.<locals>.inner", &samples);
    stop_fixture(&f);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "record should exit 0 after SIGINT (status %#x)", st);
    cr_assert(found && samples > 50, "samples before SIGINT are kept (found %d, %lu)", found, (unsigned long)samples);
}

/* ---- record: achieved rate ---------------------------------------------------------- */

/* `-p PID record -d SECS --rate HZ [FLAG]` of threads4.py (busy): its
 * stacks, loaded. */
static at_stacks_t *record_threads4(const char *py, const char *secs, const char *rate, const char *flag)
{
    char pidarg[16], outdir[512], err[512];
    fixture_t f;
    run_result_t r;
    at_stacks_t *s;
    start_fixture(&f, py, "threads4.py", "busy", NULL);
    snprintf(pidarg, sizeof pidarg, "%d", (int)f.pid);
    snprintf(outdir, sizeof outdir, "%s/session", f.dir);
    /* a NULL flag ends the list early: no flag */
    run_archtrace(&r, "-p", pidarg, "record", "-d", secs, "--rate", rate, "-o", outdir, flag, NULL);
    cr_assert_eq(r.status, 0, "record --rate %s %s failed (%d): %s", rate, flag ? flag : "", r.status, r.err);
    cr_assert_eq(at_stacks_load(outdir, f.pid, &s, err, sizeof err), 0, "cannot load: %s", err);
    stop_fixture(&f);
    run_free(&r);
    return s;
}

/* Samples whose innermost frame is func (the stacks are kept root first). */
static uint64_t samples_in(at_stacks_t *s, const char *func)
{
    uint64_t n = 0;
    size_t cur = 0;
    at_stack_view_t v;
    while (at_stacks_next(s, &cur, &v))
        if (v.n && !strcmp(at_symtab_func(at_stacks_symtab(s), v.frames[v.n - 1].sym), func))
            n += v.count;
    return n;
}

/* One recording of threads4.py (busy); returns achieved / asked.  The
 * samples must be the workers' own stacks, not just ticks counted. */
static double measure_rate(const char *shape, const char *py, const char *rate, int attempt)
{
    at_stacks_t *s = record_threads4(py, "1.5", rate, NULL);
    const at_stacks_meta_t *m = at_stacks_meta(s);
    double achieved = (double)m->samples / m->duration_s, asked = atof(rate);
    uint64_t spinning = samples_in(s, "spin_or_sleep");
    measured("rate: %s, %s Hz asked, 4 threads: %.1f Hz achieved (%.1f%%), %lu missed in %.3f s, "
             "%lu thread samples in spin_or_sleep%s", shape, rate, achieved, 100 * achieved / asked,
             (unsigned long)m->missed, m->duration_s, (unsigned long)spinning, attempt ? " (retry)" : "");
    cr_assert(spinning >= m->samples, "%s: %lu samples in spin_or_sleep for %lu ticks of 3 spinning workers", shape,
              (unsigned long)spinning, (unsigned long)m->samples);
    uint64_t expected = (uint64_t)(m->duration_s * asked + 0.5);
    cr_assert(m->samples + m->missed + 2 >= expected && m->samples + m->missed <= expected + 2,
              "samples %lu + missed %lu should account for the %lu ticks", (unsigned long)m->samples,
              (unsigned long)m->missed, (unsigned long)expected);
    at_stacks_free(s);
    return achieved / asked;
}

/* What a test can hold on a shared 2-core machine: every tick is either a
 * sample or counted as missed (measure_rate), and the sampler is not
 * starved.  The rate targets themselves (>= 95% sustained at 10 kHz) are
 * measured side by side by `make bench` (docs/BENCHMARKS.md): other
 * tenants stealing a CPU for a second made a 95% bar here fail runs that
 * had nothing wrong.  The better of two recordings counts. */
static void check_rate(const char *shape, const char *rate, double min_share)
{
    char py[512];
    need_python(shape, py, sizeof py);
    timing_lock();
    double best = measure_rate(shape, py, rate, 0);
    if (best < min_share)
        best = fmax(best, measure_rate(shape, py, rate, 1));
    cr_assert(best >= min_share, "%s: achieved %.1f%% of %s Hz asked (below %.0f%%)", shape, 100 * best, rate,
              100 * min_share);
}

/* One build per version: the rate depends on the walk, not on how
 * libpython is linked. */
ParameterizedTestParameters(record, rate_1khz_four_threads)
{
    static at_test_shape_t shapes[] = AT_TEST_SHAPES_SHARED;
    return cr_make_param_array(at_test_shape_t, shapes, sizeof shapes / sizeof *shapes);
}

ParameterizedTest(at_test_shape_t *s, record, rate_1khz_four_threads, .timeout = 30)
{
    check_rate(s->name, "1000", 0.6);
}

/* 10 kHz on a loaded 2-core machine: reported, and held to the same sanity bar. */
ParameterizedTestParameters(record, rate_10khz_four_threads)
{
    static at_test_shape_t shapes[] = AT_TEST_SHAPES_SHARED;
    return cr_make_param_array(at_test_shape_t, shapes, sizeof shapes / sizeof *shapes);
}

ParameterizedTest(at_test_shape_t *s, record, rate_10khz_four_threads, .timeout = 30)
{
    check_rate(s->name, "10000", 0.6);
}

/* How the sampler waits (pace.h): from 2 kHz on a machine with a spare
 * CPU it polls the clock (the timer's wake-ups cost the target more),
 * below that or with --no-poll it sleeps; the stacks say which. */
static void record_waits(const char *py, const char *secs, const char *rate, const char *flag, uint64_t *polled,
                         uint64_t *timed)
{
    at_stacks_t *s = record_threads4(py, secs, rate, flag);
    *polled = at_stacks_meta(s)->waits_polled;
    *timed = at_stacks_meta(s)->waits_timed;
    at_stacks_free(s);
}

Test(record, polls_the_clock_only_when_fast_and_allowed, .timeout = 40)
{
    char py[512];
    uint64_t polled, timed;
    need_python("static", py, sizeof py);
    if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
        cr_skip_test("one CPU: the sampler never polls");
    timing_lock();
    record_waits(py, "0.5", "10000", NULL, &polled, &timed);
    cr_assert(polled > 0, "10 kHz on %ld CPUs: the sampler polls (polled %lu, timer %lu)",
              sysconf(_SC_NPROCESSORS_ONLN), (unsigned long)polled, (unsigned long)timed);
    record_waits(py, "0.5", "10000", "--no-poll", &polled, &timed);
    cr_assert(polled == 0 && timed > 0, "--no-poll: timer only (polled %lu, timer %lu)", (unsigned long)polled,
              (unsigned long)timed);
    record_waits(py, "0.5", "1000", NULL, &polled, &timed);
    cr_assert(polled == 0 && timed > 0, "1 kHz: timer only (polled %lu, timer %lu)", (unsigned long)polled,
              (unsigned long)timed);
}

/* With every CPU busy there is no spare one to poll on: the sampler must
 * find out (missed ticks, tasks waiting for a CPU) and go back to the
 * timer rather than take a CPU the machine's work wants. */
Test(record, polling_backs_off_when_no_cpu_is_spare, .timeout = 40)
{
    char py[512];
    uint64_t polled, timed;
    need_python("static", py, sizeof py);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (ncpu < 2 || ncpu > 64)
        cr_skip_test("%ld CPUs: not a machine this test can fill", ncpu);
    timing_lock();
    pid_t hogs[64];
    for (long i = 0; i < ncpu; i++) {
        char *argv[] = { "/bin/sh", "-c", "while :; do :; done", NULL };
        hogs[i] = tu_spawn(argv);
        cr_assert(hogs[i] > 0, "cannot start a CPU hog");
    }
    /* more than one window (1 s) of polling before it can back off */
    record_waits(py, "2.5", "10000", NULL, &polled, &timed);
    for (long i = 0; i < ncpu; i++)
        tu_kill(hogs[i]);
    measured("polling with %ld CPU hogs: %lu waits polled, %lu on the timer", ncpu, (unsigned long)polled,
             (unsigned long)timed);
    cr_assert(timed > 0, "with every CPU busy the sampler went back to the timer (polled %lu, timer %lu)",
              (unsigned long)polled, (unsigned long)timed);
}

/* ---- cost per sample of a deep stack ---------------------------------------------- */

/* One build per version: what a sample costs where the layout differs. */
ParameterizedTestParameters(record, cost_per_sample_50_deep)
{
    static at_test_shape_t shapes[] = AT_TEST_SHAPES_SHARED;
    return cr_make_param_array(at_test_shape_t, shapes, sizeof shapes / sizeof *shapes);
}

ParameterizedTest(at_test_shape_t *s, record, cost_per_sample_50_deep, .timeout = 30)
{
    char py[512], err[512];
    fixture_t f;
    at_target_t *t;
    need_python(s->name, py, sizeof py);
    timing_lock();
    start_fixture(&f, py, "deep.py", "50", "sleep");
    at_options_t o = { .rate_hz = 1000 };
    cr_assert_eq(at_target_open(&t, f.pid, &o, err, sizeof err), 0, "cannot open: %s", err);
    cr_assert_eq(at_target_sample(t, NULL, NULL), 0, "first sample failed");
    unsigned long calls0 = t->proc.mem.calls;
    uint64_t t0 = at_now_ns();
    const int n = 2000;
    for (int i = 0; i < n; i++)
        cr_assert_eq(at_target_sample(t, NULL, NULL), 0, "sample %d failed", i);
    double us = (double)(at_now_ns() - t0) / 1e3 / n;
    double reads = (double)(t->proc.mem.calls - calls0) / n;
    size_t cur = 0;
    at_stack_view_t v;
    int depth = 0;
    while (at_stacks_next(t->stacks, &cur, &v))
        depth = v.n > depth ? v.n : depth;
    measured("cost: %s, 50-deep stack, %.1f us per sample, %.1f process_vm_readv per sample, depth %d", s->name,
             us, reads, depth);
    /* the time the report gives as us_per_sample: the sampler's own clock */
    at_target_finish(t, 1000);
    double busy_us = at_stacks_meta(t->stacks)->busy_s * 1e6 / (n + 1);
    at_target_free(t);
    stop_fixture(&f);   /* before any assertion: a failed one must not leave the fixture running */
    cr_assert(busy_us > 0 && busy_us <= us * 1.05, "%s: busy time per sample %.1f us, measured around it %.1f us",
              s->name, busy_us, us);
    cr_assert(depth >= 50, "%s: the stack should be at least 50 deep, got %d", s->name, depth);
    cr_assert(reads <= 56, "%s: a steady-state frame should cost one read (%.1f reads for 50 frames)", s->name,
              reads);
    cr_assert(us < 1000, "%s: %.1f us per sample is too slow", s->name, us);
}

/* ---- the sampler of `run` ------------------------------------------------------------- */

Test(sampler, finds_processes_by_seg_file, .timeout = 30)
{
    char py[512], session[256], seg[512];
    fixture_t f;
    uint64_t samples = 0;
    need_python("static", py, sizeof py);
    start_fixture(&f, py, "chain.py", NULL, NULL);
    cr_assert(tu_tmpdir(session, sizeof session), "mkdtemp failed");
    at_options_t o = { .rate_hz = 200 };
    at_sampler_t *s = at_sampler_start(0, session, &o);
    cr_assert(s, "at_sampler_start failed: %s", strerror(errno));
    snprintf(seg, sizeof seg, "%s/%d.seg", session, (int)f.pid);
    close(open(seg, O_CREAT | O_WRONLY, 0600)); /* what the shim does at start */
    tu_sleep(0.6);
    at_sampler_stop(s);
    int found = stacks_have(session, f.pid, "outer.<locals>.inner", &samples);
    stop_fixture(&f);
    tu_rmtree(session);
    cr_assert(found && samples > 20, "the sampler should have sampled %d (found %d, %lu samples)", (int)f.pid,
              found, (unsigned long)samples);
}

Test(sampler, takes_root_once_it_runs_python, .timeout = 30)
{
    char py[512], session[256], chain[1024], script[2048], ready[512];
    uint64_t samples = 0;
    need_python("shared", py, sizeof py);
    cr_assert(tu_tmpdir(session, sizeof session), "mkdtemp failed");
    snprintf(ready, sizeof ready, "%s/ready", session);
    snprintf(script, sizeof script, "sleep 0.3; exec %s %s %s", py, tu_fixture("chain.py", chain, sizeof chain), ready);
    char *argv[] = { "/bin/sh", "-c", script, NULL };
    at_options_t o = { .rate_hz = 200 };
    pid_t pid = tu_spawn(argv);
    at_sampler_t *s = at_sampler_start(pid, session, &o);
    cr_assert(s, "at_sampler_start failed: %s", strerror(errno));
    cr_assert(tu_wait_file(ready, 15) == 0, "chain.py did not start");
    tu_sleep(0.5);
    at_sampler_stop(s);
    int found = stacks_have(session, pid, "Runner.middle", &samples);
    tu_kill(pid);
    tu_rmtree(session);
    cr_assert(found && samples > 20, "the root process should be sampled once it execs Python "
              "(found %d, %lu samples)", found, (unsigned long)samples);
}

Test(sampler, keeps_samples_of_a_process_that_exits, .timeout = 30)
{
    char py[512], session[256], split[1024], ready[512];
    uint64_t samples = 0;
    need_python("static", py, sizeof py);
    cr_assert(tu_tmpdir(session, sizeof session), "mkdtemp failed");
    snprintf(ready, sizeof ready, "%s/ready", session);
    char *argv[] = { py, (char *)tu_fixture("split.py", split, sizeof split), ready, "0.5", NULL };
    at_options_t o = { .rate_hz = 500 };
    pid_t pid = tu_spawn(argv);
    at_sampler_t *s = at_sampler_start(pid, session, &o);
    cr_assert(s, "at_sampler_start failed: %s", strerror(errno));
    int st;
    waitpid(pid, &st, 0);
    tu_sleep(0.2);
    at_sampler_stop(s);
    int found = stacks_have(session, pid, "hot", &samples);
    tu_rmtree(session);
    cr_assert(found && samples > 50, "samples taken before the exit should be kept (found %d, %lu samples)",
              found, (unsigned long)samples);
}
