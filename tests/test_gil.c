/* SPDX-License-Identifier: MIT */
/* test_gil.c - GIL accounting: the <pid>.gil format and its reader (unit),
 * then archtrace on CPU-bound threads, a fork and lab 08, on both
 * python3.11 build shapes, checked against the interpreter's own
 * switch_number, the fixtures' own clocks and /proc schedstat. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <criterion/redirect.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "gil_format.h"
#include "report/report_features.h"
#include "testlib.h"

/* ---- key/value summaries (tests/fixtures/gil_summary.py) ---------------- */

typedef struct summary {
    char **keys;
    double *vals;
    size_t n;
} summary_t;

static void summary_parse(summary_t *s, char *text)
{
    size_t cap = 0;
    memset(s, 0, sizeof(*s));
    for (char *save, *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *sp = strchr(line, ' ');
        if (!sp)
            continue;
        *sp = '\0';
        if (s->n == cap) {
            cap = cap ? 2 * cap : 256;
            s->keys = realloc(s->keys, cap * sizeof(*s->keys));
            s->vals = realloc(s->vals, cap * sizeof(*s->vals));
        }
        s->keys[s->n] = strdup(line);
        s->vals[s->n++] = strtod(sp + 1, NULL);
    }
}

static void summary_free(summary_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->keys[i]);
    free(s->keys);
    free(s->vals);
}

static int vfind(const summary_t *s, double *out, const char *fmt, va_list ap)
{
    char key[256];
    vsnprintf(key, sizeof(key), fmt, ap);
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->keys[i], key) == 0)
            return *out = s->vals[i], 1;
    return 0;
}

static int has(const summary_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int has(const summary_t *s, const char *fmt, ...)
{
    double v;
    va_list ap;
    va_start(ap, fmt);
    int found = vfind(s, &v, fmt, ap);
    va_end(ap);
    return found;
}

static double get(const summary_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static double get(const summary_t *s, const char *fmt, ...)
{
    double v = 0;
    char key[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(key, sizeof(key), fmt, ap);
    va_end(ap);
    va_start(ap, fmt);
    int found = vfind(s, &v, fmt, ap);
    va_end(ap);
    cr_assert(found, "the report has no value for %s", key);
    return v;
}

static const char *summary_python(void)
{
    /* not the pyenv shim: it costs 200 ms a call */
    return access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
}

static void summarize(summary_t *s, const char *json, const char *chrome, const char *truth)
{
    char *out = NULL, *err = NULL;
    int rc = at_test_shf(&out, &err, "%s tests/fixtures/gil_summary.py '%s' '%s' '%s'", summary_python(), json,
                         chrome ? chrome : "-", truth ? truth : "-");
    cr_assert_eq(rc, 0, "gil_summary.py failed (%d): %s", rc, err);
    summary_parse(s, out);
    free(out);
    free(err);
}

/* ---- unit: the format ---------------------------------------------------- */

static char *image(size_t *size)
{
    *size = AT_GIL_FILE_SIZE;
    char *buf = calloc(1, *size);
    at_gil_header_t *h = (at_gil_header_t *)buf;
    *h = (at_gil_header_t){
        .magic = AT_GIL_MAGIC, .version = AT_GIL_VERSION, .header_size = sizeof(at_gil_header_t),
        .thread_size = sizeof(at_gil_thread_t), .thread_cap = AT_GIL_MAX_THREADS,
        .event_size = sizeof(at_gil_event_t), .ring_cap = AT_GIL_RING_CAP,
    };
    return buf;
}

typedef struct bad_case {
    const char *what;
    size_t cut;          /* bytes removed from the end (0: none)        */
    size_t field_off;    /* offset of a uint32 to overwrite             */
    uint32_t value;
    int expect;
} bad_case_t;

static bad_case_t bad_cases[] = {
    { "empty file", AT_GIL_FILE_SIZE, 0, 0, -EBADMSG },
    { "half a header", AT_GIL_FILE_SIZE - 100, 0, 0, -EBADMSG },
    { "bad magic", 0, offsetof(at_gil_header_t, magic), 0x12345678, -EPROTO },
    { "future version", 0, offsetof(at_gil_header_t, version), 99, -EPROTO },
    { "other thread record size", 0, offsetof(at_gil_header_t, thread_size), 200, -EPROTO },
    { "more threads than rows", 0, offsetof(at_gil_header_t, nthreads), AT_GIL_MAX_THREADS + 1, -EBADMSG },
    { "absurd ring", 0, offsetof(at_gil_header_t, ring_cap), 0x7fffffff, -EBADMSG },
    { "ring cut off", 24, 0, 0, -EBADMSG },
};

ParameterizedTestParameters(gil_format, rejects_bad_images)
{
    return cr_make_param_array(bad_case_t, bad_cases, sizeof(bad_cases) / sizeof(bad_cases[0]));
}

ParameterizedTest(bad_case_t *c, gil_format, rejects_bad_images)
{
    size_t size;
    char *buf = image(&size);
    if (c->field_off || c->value)
        memcpy(buf + c->field_off, &c->value, sizeof(c->value));
    const char *why = NULL;
    int rc = at_gil_check(buf, size - c->cut, &why);
    cr_assert_eq(rc, c->expect, "%s: expected %d, got %d (%s)", c->what, c->expect, rc, why ? why : "no reason");
    cr_assert(why && *why, "%s: a reason is given", c->what);
    free(buf);
}

Test(gil_format, accepts_a_fresh_image)
{
    size_t size;
    char *buf = image(&size);
    const char *why = NULL;
    cr_assert_eq(at_gil_check(buf, size, &why), 0, "a fresh image is valid (%s)", why ? why : "");
    cr_assert_eq(AT_GIL_FILE_SIZE, 512 + 256 * 184 + 32768 * 24, "file size is header + rows + ring");
    free(buf);
}

/* ---- unit: the reader on a synthetic file --------------------------------- */

#define T0 1000000000ull   /* synthetic accounting start */

static void put_event(char *buf, uint32_t i, uint64_t start, uint64_t dur, uint32_t slot, uint32_t kind)
{
    at_gil_event_t *ring = (at_gil_event_t *)at_gil_ring(buf);
    ring[i] = (at_gil_event_t){ start, dur, slot, kind };
}

/* Two threads: main (exited books) and worker; the process was killed
 * while the worker held the GIL since T0+9 ms (last event at T0+10 ms). */
static char *synthetic(size_t *size, int killed)
{
    char *buf = image(size);
    at_gil_header_t *h = (at_gil_header_t *)buf;
    at_gil_thread_t *t = (at_gil_thread_t *)at_gil_threads(buf);
    h->pid = 4242;
    h->start_ns = T0;
    h->last_ns = T0 + 10000000;
    h->end_ns = killed ? 0 : T0 + 10000000;
    h->flags = AT_GIL_F_RUNNING | (killed ? 0 : AT_GIL_F_EXITED);
    h->interval_us = 5000;
    h->nthreads = 2;
    h->switch_start = 7;
    h->switch_last = h->switch_end = 10;
    t[0] = (at_gil_thread_t){ .tid = 4242, .flags = AT_GIL_T_MAIN | AT_GIL_T_NAMED, .first_ns = T0,
                              .hold_ns = 4000000, .wait_ns = 1000000, .acquisitions = 2, .switches = 1 };
    strcpy(t[0].name, "MainThread");
    t[1] = (at_gil_thread_t){ .tid = 4243, .first_ns = T0 + 1000000, .hold_ns = 3000000, .wait_ns = 1000000,
                              .acquisitions = 2, .switches = 2, .forced_drops = 1,
                              .state = killed ? AT_GIL_HELD : AT_GIL_OUT, .since_ns = T0 + 9000000 };
    put_event(buf, 0, T0, 4000000, 0, AT_GIL_EV_HOLD);
    put_event(buf, 1, T0 + 1000000, 3000000, 1, AT_GIL_EV_WAIT);
    put_event(buf, 2, T0 + 4000000, 3000000, 1, AT_GIL_EV_HOLD);
    put_event(buf, 3, T0 + 4000000, 1000000, 0, AT_GIL_EV_WAIT);
    put_event(buf, 4, T0 + 5000000, 1, 7, AT_GIL_EV_HOLD);        /* no such slot: corrupt */
    h->ring_written = 5;
    /* the worker's table says wait 1 ms but its ring wait is 3 ms: make
     * the table agree, as the shim keeps them */
    t[1].wait_ns = 3000000;
    if (!killed)
        put_event(buf, h->ring_written++, T0 + 9000000, 1000000, 1, AT_GIL_EV_HOLD), t[1].hold_ns += 1000000;
    return buf;
}

static char *write_session(const char *buf, size_t size, pid_t pid)
{
    char *dir = at_test_tmpdir();
    char path[512];
    snprintf(path, sizeof(path), "%s/%d.gil", dir, (int)pid);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "cannot write %s", path);
    cr_assert_eq(fwrite(buf, 1, size, f), size, "short write of %s", path);
    fclose(f);
    return dir;
}

/* Render pid's JSON and Chrome parts wrapped as a report and a trace. */
static void render(const char *dir, pid_t pid, char *json, char *chrome, size_t n)
{
    snprintf(json, n, "%s/r.json", dir);
    snprintf(chrome, n, "%s/t.json", dir);
    at_options_t o = { .top_n = 5 };
    FILE *f = fopen(json, "w");
    fprintf(f, "{\"processes\": [{\"pid\": %d, \"ppid\": 1, \"forked\": false, \"gil\": ", (int)pid);
    at_json_t j;
    at_json_init(&j, f, 1);
    cr_assert_eq(at_gil_report_json(dir, pid, &j, &o), 0, "at_gil_report_json succeeds");
    fprintf(f, "}]}\n");
    fclose(f);
    f = fopen(chrome, "w");
    fprintf(f, "{\"traceEvents\": [");
    at_json_init(&j, f, 0);
    j.depth = 1;            /* inside the array, as report.c calls it */
    cr_assert_eq(at_gil_chrome(dir, pid, &j, &o), 0, "at_gil_chrome succeeds");
    fprintf(f, "]}\n");
    fclose(f);
}

Test(gil_report, totals_timeline_and_chrome_agree)
{
    size_t size;
    char *buf = synthetic(&size, 0);
    char *dir = write_session(buf, size, 4242);
    char json[600], chrome[600];
    render(dir, 4242, json, chrome, sizeof(json));
    summary_t s;
    summarize(&s, json, chrome, NULL);
    cr_assert_eq(get(&s, "main.t.MainThread.hold_ns"), 4000000, "main's hold from the table");
    cr_assert_eq(get(&s, "main.t.4243.hold_ns"), 4000000, "an unnamed thread is called by its tid");
    cr_assert_eq(get(&s, "main.t.4243.named"), 0, "and marked unnamed");
    cr_assert_eq(get(&s, "main.t.4243.chrome_hold_ns"), get(&s, "main.t.4243.hold_ns"), "chrome holds sum to hold_ns");
    cr_assert_eq(get(&s, "main.t.4243.chrome_wait_ns"), get(&s, "main.t.4243.wait_ns"), "chrome waits sum to wait_ns");
    cr_assert_eq(get(&s, "main.timeline_corrupt"), 1, "the event of a missing slot is skipped and counted");
    cr_assert_eq(get(&s, "main.timeline_events"), 5, "four intervals plus the last hold");
    cr_assert_eq(get(&s, "main.tracks"), 2, "one Chrome track per thread");
    cr_assert_eq(get(&s, "main.thread_names"), 2, "one thread_name per thread");
    cr_assert_eq(get(&s, "main.switch_delta"), get(&s, "main.thread_switches"), "switches add up");
    cr_assert_eq(get(&s, "main.complete"), 1, "books closed");
    /* wait 4 ms of 12 ms in Python */
    cr_assert_float_eq(get(&s, "main.wait_ratio"), 4.0 / 12.0, 1e-4, "wait ratio is wait / time in Python");
    summary_free(&s);
    free(buf);
    free(dir);
}

Test(gil_report, killed_process_intervals_closed_at_last_event)
{
    size_t size;
    char *buf = synthetic(&size, 1);
    char *dir = write_session(buf, size, 4242);
    char json[600], chrome[600];
    render(dir, 4242, json, chrome, sizeof(json));
    summary_t s;
    summarize(&s, json, chrome, NULL);
    cr_assert_eq(get(&s, "main.complete"), 0, "the books were never closed");
    cr_assert_eq(get(&s, "main.t.4243.cut_short"), 1, "the open hold is flagged");
    cr_assert_eq(get(&s, "main.t.4243.hold_ns"), 3000000 + 1000000, "the open hold ends at the last event");
    cr_assert_eq(get(&s, "main.t.4243.chrome_hold_ns"), 4000000, "and is on the timeline too");
    summary_free(&s);
    free(buf);
    free(dir);
}

Test(gil_report, ring_overwrites_are_reported)
{
    size_t size;
    char *buf = synthetic(&size, 0);
    at_gil_header_t *h = (at_gil_header_t *)buf;
    h->ring_written = AT_GIL_RING_CAP + 123;
    h->ring_dropped_ns[AT_GIL_EV_WAIT] = 555;
    char *dir = write_session(buf, size, 4242);
    char json[600], chrome[600];
    render(dir, 4242, json, chrome, sizeof(json));
    summary_t s;
    summarize(&s, json, NULL, NULL);
    cr_assert_eq(get(&s, "main.timeline_dropped"), 123, "intervals lost to the ring are counted");
    cr_assert_eq(get(&s, "main.timeline_dropped_wait_ns"), 555, "with their durations");
    summary_free(&s);
    free(buf);
    free(dir);
}

Test(gil_report, missing_file_is_no_data)
{
    char *dir = at_test_tmpdir();
    at_json_t j;
    at_json_init(&j, stdout, 0);
    cr_assert_eq(at_gil_report_json(dir, 12345, &j, NULL), -ENOENT, "no .gil: -ENOENT, nothing written");
    free(dir);
}

Test(gil_report, corrupt_file_rejected_with_a_reason, .init = cr_redirect_stderr)
{
    size_t size;
    char *buf = image(&size);
    ((at_gil_header_t *)buf)->magic = 0xdeadbeef;
    char *dir = write_session(buf, size, 77);
    char *dir2 = write_session(buf, 300, 78);   /* truncated */
    at_json_t j;
    at_json_init(&j, stdout, 0);
    cr_assert_eq(at_gil_report_json(dir, 77, &j, NULL), -EPROTO, "bad magic: -EPROTO");
    cr_assert_eq(at_gil_report_text(dir2, 78, stdout, NULL), -EBADMSG, "truncated: -EBADMSG");
    fflush(stderr);
    char want[2048];
    snprintf(want, sizeof(want),
             "archtrace: %s/77.gil: bad magic (not a .gil file)\n"
             "archtrace: %s/78.gil: truncated: shorter than the header\n", dir, dir2);
    cr_assert_stderr_eq_str(want, "one line per corrupt file, naming it and the cause");
    free(buf);
    free(dir);
    free(dir2);
}

/* ---- integration ------------------------------------------------------------ */

typedef struct run {
    char dir[256];
    char json[300], chrome[300], truth[300];
    char *err;               /* archtrace's stderr: the text report */
    int rc;
    double steal_ns;         /* the hypervisor's stolen time, all CPUs */
} run_t;

/* The machine's stolen time so far (/proc/stat "cpu" line, 8th value):
 * time a virtual CPU was runnable but the hypervisor ran something else. */
static double steal_ns_now(void)
{
    FILE *f = fopen("/proc/stat", "r");
    unsigned long long v[8] = { 0 };
    int n = f ? fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4],
                       &v[5], &v[6], &v[7]) : 0;
    if (f)
        fclose(f);
    return n == 8 ? (double)v[7] * 1e9 / (double)sysconf(_SC_CLK_TCK) : 0.0;
}

static void run_gil(run_t *r, const char *py, const char *args)
{
    char *dir = at_test_tmpdir();
    snprintf(r->dir, sizeof(r->dir), "%s", dir);
    free(dir);
    snprintf(r->json, sizeof(r->json), "%s/r.json", r->dir);
    snprintf(r->chrome, sizeof(r->chrome), "%s/trace.json", r->dir);
    snprintf(r->truth, sizeof(r->truth), "%s/truth.json", r->dir);
    double steal0 = steal_ns_now();
    r->rc = at_test_shf(NULL, &r->err,
                        "%s --json %s --format chrome --out %s --no-alloc --no-imports --no-sample "
                        "%s %s > %s",
                        at_test_archtrace(), r->json, r->chrome, py, args, r->truth);
    r->steal_ns = steal_ns_now() - steal0;
    cr_assert_eq(r->rc, 0, "archtrace %s %s: exit %d; stderr: %s", py, args, r->rc, r->err);
}

static void run_free(run_t *r)
{
    free(r->err);
    at_test_shf(NULL, NULL, "rm -rf '%s'", r->dir);
}

/* A thread runs Python only while it holds the GIL, and holds it only
 * while on a CPU or preempted: the fixture's own CPU time <= hold (+ the
 * take/drop slack), and hold <= the kernel's CPU + run-queue time.  On a
 * virtual machine a third state counts in the hold: the virtual CPU was
 * taken by the hypervisor (steal), which the guest's per-task times
 * leave out; the machine's stolen time over the run (all CPUs, whole
 * ticks) bounds it.  A worker thread's archtrace lifetime is the
 * fixture's own (`life`). */
/* hold <= the kernel's CPU + run-queue time (+ reported steal): 1, or 0
 * with the numbers in why.  Some hypervisors (Firecracker) report no
 * steal at all, so a run the host starved can still miss it: callers
 * measure once more before they call it a failure. */
static int hold_within_kernel_time(const summary_t *s, const run_t *r, const char *t, char *why, size_t n)
{
    double hold = get(s, "main.t.%s.hold_ns", t);
    double kcpu = get(s, "main.t.%s.cpu_ns", t), runq = get(s, "main.t.%s.runq_ns", t);
    double steal = r->steal_ns > 0 ? r->steal_ns + 1e9 / (double)sysconf(_SC_CLK_TCK) : 0;
    if (hold <= (kcpu + runq) * 1.03 + 3e6 + steal)
        return 1;
    snprintf(why, n, "%s: hold %.0f ms beyond CPU + run queue %.0f ms + stolen %.0f ms", t, hold / 1e6,
             (kcpu + runq) / 1e6, steal / 1e6);
    return 0;
}

static void check_against_truth(const summary_t *s, const run_t *r, const char *t, int life)
{
    char why[256] = "";
    double hold = get(s, "main.t.%s.hold_ns", t), cpu = get(s, "truth.%s.cpu_ns", t);
    cr_assert_leq(cpu, hold * 1.03 + 3e6, "%s: CPU time %.0f ms within its hold %.0f ms", t, cpu / 1e6, hold / 1e6);
    cr_assert(hold_within_kernel_time(s, r, t, why, sizeof why), "%s", why);
    if (!life)
        return;
    double wall = get(s, "main.t.%s.wall_ns", t), truth_wall = get(s, "truth.%s.wall_ns", t);
    cr_assert_leq(truth_wall, wall * 1.02 + 2e6, "%s: fixture wall %.0f ms within archtrace's %.0f ms", t,
                  truth_wall / 1e6, wall / 1e6);
    cr_assert_geq(truth_wall * 1.02 + 5e6, wall, "%s: archtrace wall %.0f ms not beyond the fixture's %.0f ms",
                  t, wall / 1e6, truth_wall / 1e6);
}

/* Chrome durations sum to the table's totals within 2% (exactly, when
 * the ring dropped nothing). */
static void check_chrome(const summary_t *s, const char *t)
{
    for (int k = 0; k < 2; k++) {
        const char *kind = k ? "wait" : "hold";
        double table = get(s, "main.t.%s.%s_ns", t, kind), chrome = get(s, "main.t.%s.chrome_%s_ns", t, kind);
        cr_assert_leq(chrome > table ? chrome - table : table - chrome, table * 0.02 + 1000,
                      "%s: Chrome %s %.3f ms vs %s_ns %.3f ms", t, kind, chrome / 1e6, kind, table / 1e6);
    }
}

/* The ground truth (each of two CPU-bound threads waits ~1/2 of the wall)
 * needs two idle cores.  Load from other jobs on a shared machine shows
 * as run-queue time (schedstat), after a drop and before the next take:
 * it is neither GIL wait nor hold, and it takes from both.  1: the
 * thresholds hold; 0 with the reason; *busy: the run queue took > 20%. */
static int two_threads_fair(const summary_t *s, char *why, size_t n, int *busy)
{
    *busy = 0;
    int fair = 1;
    for (int k = 0; k < 2; k++) {
        char t[24];
        snprintf(t, sizeof(t), "burn-%d", k);
        double wall = get(s, "main.t.%s.wall_ns", t), wait = get(s, "main.t.%s.wait_ns", t);
        double hold = get(s, "main.t.%s.hold_ns", t), runq = get(s, "main.t.%s.runq_ns", t);
        *busy |= runq > 0.2 * wall;
        if (fair && (wait < 0.25 * wall || hold < 0.25 * wall)) {
            snprintf(why, n, "%s: wait %.0f ms, hold %.0f ms of wall %.0f ms (run queue %.0f ms)", t, wait / 1e6,
                     hold / 1e6, wall / 1e6, runq / 1e6);
            fair = 0;
        }
    }
    return fair;
}

static void check_two_threads(const char *shape)
{
    const char *py = at_test_python_or_skip(shape);
    char why[256] = "";
    run_t r;
    summary_t s;
    int fair, busy;
    for (int attempt = 0;; attempt++) {
        run_gil(&r, py, "tests/fixtures/gil_burn.py 2 1.5");
        summarize(&s, r.json, r.chrome, r.truth);
        fair = two_threads_fair(&s, why, sizeof(why), &busy);
        char late[256] = "";
        int holds = hold_within_kernel_time(&s, &r, "burn-0", late, sizeof(late)) &&
                    hold_within_kernel_time(&s, &r, "burn-1", late, sizeof(late));
        if (((fair || !busy) && holds) || attempt == 2)
            break;
        at_test_note("%s: machine busy, measuring again: %s", shape, holds ? why : late);
        summary_free(&s);
        run_free(&r);
    }
    cr_assert_eq(get(&s, "main.switch_delta"), get(&s, "main.thread_switches"),
                 "per-thread switches add up to the interpreter's switch_number");
    cr_assert_gt(get(&s, "main.switch_delta"), 20, "threads switched every few ms");
    cr_assert_gt(get(&s, "main.t.burn-0.forced_drops"), 10, "burn-0 was forced to drop the GIL");
    cr_assert_eq(get(&s, "main.t.burn-0.named"), 1, "threads carry their threading names");
    cr_assert_eq(get(&s, "main.t.burn-1.ended"), 1, "a joined thread is marked ended");
    cr_assert_eq(get(&s, "main.anomalies"), 0, "every GIL event fitted take/drop");
    cr_assert_eq(get(&s, "main.timeline_dropped"), 0, "the ring kept everything");
    cr_assert_geq(get(&s, "main.max_phase_wait_ratio"), 0.3, "a contended phase shows the waiting");
    double pt = get(&s, "main.max_phase_threads");
    cr_assert(pt >= 2 && pt <= 3, "the two burning threads (and maybe main, waiting to return from start/join) "
              "are in the phase: %.0f", pt);
    cr_assert_eq(get(&s, "main.tracks"), 3, "one Chrome track per thread (main + 2)");
    cr_assert_eq(get(&s, "main.thread_names"), 3, "thread_name metadata per thread");
    for (int k = 0; k < 2; k++) {
        char t[24];
        snprintf(t, sizeof(t), "burn-%d", k);
        check_against_truth(&s, &r, t, 1);
        check_chrome(&s, t);
    }
    check_chrome(&s, "MainThread");
    cr_assert(strstr(r.err, "GIL, pid") && strstr(r.err, "burn-0") && strstr(r.err, "WAIT%"),
              "the text report has the per-thread table: %s", r.err);
    if (!fair && busy)
        cr_skip_test("machine too busy for the 2-core ground truth after 3 runs: %s", why);
    cr_assert(fair, "2 CPU-bound threads each wait and hold >= 25%% of wall: %s", why);
    summary_free(&s);
    run_free(&r);
}

AT_TEST_EACH_SHAPE(gil, two_threads_contend, .timeout = 90) { check_two_threads(shape); }

static void check_one_thread(const char *shape)
{
    const char *py = at_test_python_or_skip(shape);
    char why[256] = "";
    run_t r;
    summary_t s;
    for (int attempt = 0;; attempt++) {
        run_gil(&r, py, "tests/fixtures/gil_burn.py 1 1.0");
        summarize(&s, r.json, r.chrome, r.truth);
        if (hold_within_kernel_time(&s, &r, "MainThread", why, sizeof(why)) || attempt == 1)
            break;
        at_test_note("%s: machine busy, measuring again: %s", shape, why);
        summary_free(&s);
        run_free(&r);
    }
    double wall = get(&s, "main.wall_ns"), wait = get(&s, "main.wait_ns");
    cr_assert_lt(wait, 0.05 * wall, "one thread: total wait %.3f ms < 5%% of wall %.0f ms", wait / 1e6, wall / 1e6);
    cr_assert_lt(get(&s, "main.wait_ratio"), 0.05, "one thread: wait ratio ~0");
    cr_assert_geq(get(&s, "main.t.MainThread.hold_ns"), 0.9 * wall, "the main thread held the GIL throughout");
    cr_assert_eq(get(&s, "main.phases"), 0, "no contended phase");
    check_against_truth(&s, &r, "MainThread", 0);
    check_chrome(&s, "MainThread");
    summary_free(&s);
    run_free(&r);
}

AT_TEST_EACH_SHAPE(gil, one_thread_never_waits, .timeout = 60) { check_one_thread(shape); }

static void check_fork(const char *shape)
{
    const char *py = at_test_python_or_skip(shape);
    run_t r;
    summary_t s;
    run_gil(&r, py, "tests/fixtures/gil_burn.py 2 1.0 --fork");
    summarize(&s, r.json, r.chrome, NULL);
    cr_assert_eq(get(&s, "child0.gil"), 1, "the forked child has its own GIL data");
    cr_assert_eq(get(&s, "child0.forked"), 1, "and is marked forked");
    cr_assert_lt(get(&s, "child0.wait_ratio"), 0.05, "its own GIL: the child barely waits");
    cr_assert_geq(get(&s, "child0.hold_ns"), 0.9e9, "it held its GIL for its 1 s of work");
    cr_assert_eq(get(&s, "child0.nthreads"), 1, "only the forking thread lives in the child");
    double ctid = get(&s, "child0.pid");
    cr_assert(has(&s, "child0.t.MainThread.tid") && get(&s, "child0.t.MainThread.tid") == ctid,
              "the child's thread row has the child's own tid");
    cr_assert_eq(get(&s, "child0.switch_delta"), get(&s, "child0.thread_switches"), "child switches add up");
    cr_assert_geq(get(&s, "main.wait_ratio"), 0.2, "the parent's two threads still contend");
    summary_free(&s);
    run_free(&r);
}

AT_TEST_EACH_SHAPE(gil, fork_child_has_its_own_gil, .timeout = 60) { check_fork(shape); }

/* Lab 08: its threaded phase contends; its Pool workers (fork) each run
 * alone on their own GIL. */
static void check_lab08(const char *shape)
{
    const char *py = at_test_python_or_skip(shape);
    if (access("labs/lab08.py", R_OK) != 0)
        cr_skip_test("labs/lab08.py is not there yet");
    run_t r;
    summary_t s;
    run_gil(&r, py, "labs/lab08.py");
    char *out = NULL;
    at_test_shf(&out, NULL, "tail -n 1 '%s'", r.truth);
    cr_assert(out && strncmp(out, "VERIFY lab08", 12) == 0, "lab 08 verified itself under archtrace: %s", out);
    free(out);
    summarize(&s, r.json, NULL, NULL);
    cr_assert_geq(get(&s, "main.max_phase_wait_ratio"), 0.3, "lab 08's threaded phase: wait ratio >= 0.3");
    cr_assert_geq(get(&s, "main.max_phase_threads"), 2, "with both burn threads in it");
    cr_assert_eq(get(&s, "main.t.burn-0.named"), 1, "the burn threads are named");
    cr_assert_eq(get(&s, "main.switch_delta"), get(&s, "main.thread_switches"), "switches add up");
    int workers = 0;
    for (int k = 0; has(&s, "child%d.pid", k); k++) {
        if (!get(&s, "child%d.gil", k))
            continue;
        workers++;
        cr_assert_lt(get(&s, "child%d.wait_ratio", k), 0.05, "forked worker %.0f: wait ratio < 0.05",
                     get(&s, "child%d.pid", k));
    }
    cr_assert_geq(workers, 2, "lab 08's pool workers appear as processes with GIL data");
    summary_free(&s);
    run_free(&r);
}

Test(gil, lab08_threads_contend_workers_do_not_static, .timeout = 90) { check_lab08("static"); }
Test(gil, lab08_threads_contend_workers_do_not_shared, .timeout = 90) { check_lab08("shared"); }

/* More intervals than the ring keeps: the totals never lose a count, the
 * timeline keeps the newest and says exactly what it dropped. */
static void check_ring_overflow(const char *shape)
{
    const char *py = at_test_python_or_skip(shape);
    run_t r;
    summary_t s;
    run_gil(&r, py, "tests/fixtures/gil_churn.py 20000");
    summarize(&s, r.json, r.chrome, NULL);
    cr_assert_gt(get(&s, "main.timeline_dropped"), 0, "40000 GIL round trips overflow the ring");
    cr_assert_eq(get(&s, "main.timeline_events"), AT_GIL_RING_CAP, "the ring is full");
    const char *kinds[] = { "hold", "wait", "handoff" };
    for (int k = 0; k < 3; k++)
        cr_assert_eq(get(&s, "main.chrome_%s_ns", kinds[k]) + get(&s, "main.timeline_dropped_%s_ns", kinds[k]),
                     get(&s, "main.%s_ns", kinds[k]), "%s: Chrome + dropped == total", kinds[k]);
    /* start + 20000 sleeps, plus one more per drop forced between them */
    double acq = get(&s, "main.t.churn-0.acquisitions"), forced = get(&s, "main.t.churn-0.forced_drops");
    cr_assert(acq >= 20001 && acq <= 20001 + forced, "every take counted: %.0f (forced drops %.0f)", acq, forced);
    cr_assert_eq(get(&s, "main.switch_delta"), get(&s, "main.thread_switches"), "switches add up");
    summary_free(&s);
    run_free(&r);
}

AT_TEST_EACH_SHAPE(gil, ring_overflow_is_accounted, .timeout = 60) { check_ring_overflow(shape); }

Test(gil, no_gil_option_leaves_no_data, .timeout = 60)
{
    const char *py = at_test_python_or_skip("static");
    char *dir = at_test_tmpdir(), json[300];
    snprintf(json, sizeof(json), "%s/r.json", dir);
    int rc = at_test_shf(NULL, NULL, "%s -q --json %s --no-gil --no-alloc --no-imports --no-sample %s -c pass",
                         at_test_archtrace(), json, py);
    cr_assert_eq(rc, 0, "archtrace --no-gil runs");
    summary_t s;
    summarize(&s, json, NULL, NULL);
    cr_assert_eq(get(&s, "main.gil"), 0, "--no-gil: no GIL data");
    summary_free(&s);
    at_test_shf(NULL, NULL, "rm -rf '%s'", dir);
    free(dir);
}
