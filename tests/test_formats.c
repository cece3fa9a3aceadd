/* SPDX-License-Identifier: MIT */
/* test_formats.c - the drawn outputs against the report's own numbers, on
 * both python3.11 build shapes: the SVG flame graph (CPU samples, and
 * memory with --alloc) is well-formed XML whose frame widths add up to the
 * samples and bytes of the JSON report; the Chrome trace parses, has a
 * track per thread, GIL hold/wait slices that add up to the report's
 * hold_ns/wait_ns, one slice per import and memory counters; collapsed
 * stacks sum to the sample count.  Every format is rendered again from the
 * saved session with `archtrace report --format X DIR`.  Then the progress
 * line of `record`: drawn in place on a terminal, absent otherwise. */
#include <criterion/criterion.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testlib.h"

typedef struct session {
    char *tmp;                 /* this test's own temp dir (its outputs)    */
    char dir[PATH_MAX];        /* the saved session (-o), shared            */
    char json[PATH_MAX];       /* the run's --json report, shared           */
    char chrome[PATH_MAX];     /* the run's --format chrome --out, shared   */
    const char *shape;
} session_t;

/* The recording every test of a shape reads, made once per run of this
 * binary: in /tmp/archtrace-fmt-<runner pid>-<shape> (Criterion runs each
 * test in a child of one runner), by the first test that needs it (a
 * lock directory), the others waiting for its "done" mark.  The tests
 * only read it; what is left of runners gone is removed. */
static void shared_recording(const char *shape, const char *py, char *cache, size_t n)
{
    char lock[PATH_MAX + 8], done_mark[PATH_MAX + 8];
    snprintf(cache, n, "/tmp/archtrace-fmt-%d-%s", (int)getppid(), shape);
    snprintf(lock, sizeof lock, "%s.lock", cache);
    snprintf(done_mark, sizeof done_mark, "%s/done", cache);
    if (mkdir(lock, 0700) == 0) {
        at_test_shf(NULL, NULL, "for d in /tmp/archtrace-fmt-*; do p=${d#/tmp/archtrace-fmt-}; p=${p%%%%-*}; "
                                "kill -0 \"$p\" 2>/dev/null || rm -rf \"$d\"; done");
        mkdir(cache, 0700);
        char *err = NULL;
        int rc = at_test_shf(NULL, &err, "%s -q -o %s/session --json %s/report.json --format chrome --out "
                             "%s/run.trace.json %s tests/fixtures/fmt_workload.py 1 && touch %s",
                             at_test_archtrace(), cache, cache, cache, py, done_mark);
        cr_assert_eq(rc, 0, "%s: the traced workload exits 0: %s", shape, err);
        free(err);
    }
    cr_assert(at_test_wait_file(done_mark, 60000), "%s: the shared recording never finished", shape);
}

/* Run the format workload under archtrace (once per shape), keeping the session. */
static void record(session_t *s, const char *shape)
{
    const char *py = at_test_python_or_skip(shape);
    char cache[PATH_MAX - 64];
    s->shape = shape;
    s->tmp = at_test_tmpdir();
    shared_recording(shape, py, cache, sizeof cache);
    snprintf(s->dir, sizeof s->dir, "%s/session", cache);
    snprintf(s->json, sizeof s->json, "%s/report.json", cache);
    snprintf(s->chrome, sizeof s->chrome, "%s/run.trace.json", cache);
}

static void done(session_t *s)
{
    at_test_shf(NULL, NULL, "rm -rf '%s'", s->tmp);
    free(s->tmp);
}

/* `archtrace report -q ARGS --out TMP/NAME DIR`; returns the output path. */
static char *rerender(const session_t *s, const char *args, const char *name)
{
    char *path = malloc(PATH_MAX), *err = NULL;
    snprintf(path, PATH_MAX, "%s/%s", s->tmp, name);
    int rc = at_test_shf(NULL, &err, "%s report -q %s --out %s %s", at_test_archtrace(), args, path, s->dir);
    cr_assert_eq(rc, 0, "%s: archtrace report %s: exit %d: %s", s->shape, args, rc, err);
    free(err);
    return path;
}

/* fmt_svg.py's measurements of an SVG, next to it as NAME.sum.json. */
static char *measure_svg(const session_t *s, const char *svg)
{
    char *sum = malloc(PATH_MAX), *err = NULL;
    snprintf(sum, PATH_MAX, "%s.sum.json", svg);
    int rc = at_test_shf(NULL, &err, "python3 tests/fixtures/fmt_svg.py %s %s > %s", svg, s->json, sum);
    cr_assert_eq(rc, 0, "%s: the SVG is well-formed XML (xml.etree parses it): %s", s->shape, err);
    free(err);
    return sum;
}

static void svg_sound(const session_t *s, const char *sum)
{
    cr_assert_gt(at_test_json_num(sum, "d['frames']"), 3, "%s: frames were drawn", s->shape);
    cr_assert_eq(at_test_json_num(sum, "d['untitled']"), 0, "%s: every frame has a hover title", s->shape);
    cr_assert_leq(at_test_json_num(sum, "d['excess']"), 0, "%s: no frame's children are wider than it", s->shape);
    cr_assert_eq(at_test_json_num(sum, "d['self_sum']"), at_test_json_num(sum, "d['root']"), "%s: self widths add up to the root",
                 s->shape);
    cr_assert_lt(at_test_json_num(sum, "d['px_err']"), 0.05, "%s: drawn widths are proportional to the counts",
                 s->shape);
    cr_assert(at_test_json_num(sum, "d['script'] and d['click']"), "%s: a script zooms on click", s->shape);
}

/* ---- SVG: CPU samples ----------------------------------------------------------- */

static void svg_cpu(const char *shape)
{
    session_t s;
    record(&s, shape);
    char *svg = rerender(&s, "--format svg", "cpu.svg");
    char *sum = measure_svg(&s, svg);
    svg_sound(&s, sum);
    double root = at_test_json_num(sum, "d['root']"), samples = at_test_json_num(sum, "d['report_samples']");
    cr_assert_gt(samples, 20, "%s: the report has samples (%.0f)", shape, samples);
    cr_assert_eq(root, samples, "%s: the root is as wide as the report's thread samples: %.0f vs %.0f",
                 shape, root, samples);
    char *bad = at_test_json(sum, "d['self_mismatch'][:5]");
    cr_assert_str_eq(bad, "[]", "%s: each frame's self width is the report's samples ending there: %s",
                     shape, bad);
    cr_assert_geq(at_test_json_num(sum, "sum(1 for w in d['threads'].values() if w >= 0.2 * d['root'])"), 2,
                  "%s: both spinning threads have wide thread frames", shape);
    cr_assert(at_test_json_num(sum, "any(k.startswith(chr(60) + chr(38) + chr(34) + chr(39) + chr(62) + ' (') "
                       "for k in d['by_label'])"),
              "%s: a function named <&\"'> comes back intact through XML escaping", shape);
    free(bad), free(sum), free(svg);
    done(&s);
}

Test(formats, svg_cpu_widths_match_samples_static, .timeout = 60) { svg_cpu("static"); }
Test(formats, svg_cpu_widths_match_samples_shared, .timeout = 60) { svg_cpu("shared"); }

/* ---- SVG: memory ------------------------------------------------------------------ */

static void svg_alloc(const char *shape)
{
    session_t s;
    record(&s, shape);
    char *svg = rerender(&s, "--format svg --alloc", "alloc.svg");
    char *sum = measure_svg(&s, svg);
    svg_sound(&s, sum);
    double py = at_test_json_num(sum, "d['by_label'].get('Python allocators', 0)");
    double total = at_test_json_num(sum, "d['report_alloc_bytes']");
    cr_assert_gt(total, 2e6, "%s: the report counts the bytes allocated (%.0f)", shape, total);
    cr_assert_eq(py, total, "%s: the Python allocators frame is the report's total_bytes: %.0f vs %.0f",
                 shape, py, total);
    cr_assert_geq(at_test_json_num(sum, "d['root']"), py, "%s: native malloc only adds to the root", shape);
    /* 3.11 runs a list comprehension as its own frame: allocate.<locals>.<listcomp> */
    double line = at_test_json_num(sum, "sum(w for k, w in d['by_label'].items() if k.startswith('allocate') "
                           "and 'fmt_workload.py:' in k)");
    cr_assert_geq(line, 2e6, "%s: allocate() made its ~2 MB of bytes objects: %.0f B", shape, line);
    cr_assert_lt(line, total, "%s: and it is part of the whole", shape);
    free(sum), free(svg);
    done(&s);
}

Test(formats, svg_alloc_widths_match_bytes_static, .timeout = 60) { svg_alloc("static"); }
Test(formats, svg_alloc_widths_match_bytes_shared, .timeout = 60) { svg_alloc("shared"); }

/* ---- Chrome trace --------------------------------------------------------------------- */

/* Summed durations (us) of one GIL slice kind for one thread. */
static double slices_us(const char *trace, const char *name, int pid, long tid)
{
    char expr[512];
    snprintf(expr, sizeof expr, "sum(e['dur'] for e in d['traceEvents'] if e.get('name') == '%s' "
             "and e.get('ph') == 'X' and e['pid'] == %d and e.get('tid') == %ld)", name, pid, tid);
    return at_test_json_num(trace, expr);
}

static void check_thread(const session_t *s, const char *trace, int pid, int i)
{
    char expr[256];
    snprintf(expr, sizeof expr, "d['processes'][0]['gil']['threads'][%d]['tid']", i);
    long tid = (long)at_test_json_num(s->json, expr);
    snprintf(expr, sizeof expr, "sum(1 for e in d['traceEvents'] if e['ph'] == 'M' and "
             "e['name'] == 'thread_name' and e.get('tid') == %ld)", tid);
    cr_assert_eq(at_test_json_num(trace, expr), 1, "%s: thread %ld has one named track", s->shape, tid);
    static const char *const kinds[][2] = { { "GIL held", "hold_ns" }, { "GIL wait", "wait_ns" } };
    for (int k = 0; k < 2; k++) {
        snprintf(expr, sizeof expr, "d['processes'][0]['gil']['threads'][%d]['%s']", i, kinds[k][1]);
        double want = at_test_json_num(s->json, expr) / 1e3, got = slices_us(trace, kinds[k][0], pid, tid);
        double diff = got > want ? got - want : want - got;
        cr_assert_leq(diff, 0.02 * want + 1, "%s: thread %ld: '%s' slices add up to %.0f us, the report "
                      "says %s = %.0f us", s->shape, tid, kinds[k][0], got, kinds[k][1], want);
    }
}

static void chrome(const char *shape)
{
    session_t s;
    record(&s, shape);
    char *trace = rerender(&s, "--format chrome", "again.trace.json");
    int rc = at_test_shf(NULL, NULL, "cmp -s %s %s", trace, s.chrome);
    cr_assert_eq(rc, 0, "%s: re-rendering the saved session gives the run's trace byte for byte", shape);
    cr_assert(at_test_json_num(trace, "isinstance(d['traceEvents'], list) and len(d['traceEvents']) > 10"),
              "%s: a traceEvents array", shape);
    int pid = (int)at_test_json_num(s.json, "d['processes'][0]['pid']");
    cr_assert_eq(at_test_json_num(s.json, "d['processes'][0]['gil']['timeline_dropped_hold_ns']"), 0,
                 "%s: a 1 s workload fits the GIL timeline", shape);
    int threads = (int)at_test_json_num(s.json, "len(d['processes'][0]['gil']['threads'])");
    cr_assert_geq(threads, 3, "%s: main thread and two spinners in the GIL table", shape);
    for (int i = 0; i < threads; i++)
        check_thread(&s, trace, pid, i);
    char expr[256];
    snprintf(expr, sizeof expr, "sum(1 for e in d['traceEvents'] if e.get('cat') == 'import' and "
             "e['ph'] == 'X' and e['pid'] == %d)", pid);
    double slices = at_test_json_num(trace, expr), imports = at_test_json_num(s.json, "len(d['processes'][0]['imports'])");
    cr_assert_gt(imports, 3, "%s: json, decimal, email.parser were imported", shape);
    cr_assert_eq(slices, imports, "%s: one import slice per imports[] entry: %.0f vs %.0f", shape, slices,
                 imports);
    snprintf(expr, sizeof expr, "sum(1 for e in d['traceEvents'] if e['ph'] == 'C' and "
             "e['name'] == 'memory' and e['pid'] == %d and e['args']['python'] > 0)", pid);
    cr_assert_geq(at_test_json_num(trace, expr), 1, "%s: allocation counters (at least the peak)", shape);
    free(trace);
    done(&s);
}

Test(formats, chrome_matches_report_static, .timeout = 60) { chrome("static"); }
Test(formats, chrome_matches_report_shared, .timeout = 60) { chrome("shared"); }

/* ---- collapsed stacks ---------------------------------------------------------------- */

/* The folded counts summed (awk's "%.0f": Debian's mawk clamps "%d" at
 * 2^31 - 1, and a run's bytes pass 2 GiB). */
static double collapsed_sum(const char *path, const char *filter)
{
    char *out = NULL;
    int rc = at_test_shf(&out, NULL, "%s '%s' | awk '{n += $NF} END {printf \"%%.0f\", n}'",
                         filter, path);
    cr_assert_eq(rc, 0, "summing %s", path);
    double v = strtod(out, NULL);
    free(out);
    return v;
}

static void collapsed(const char *shape)
{
    session_t s;
    record(&s, shape);
    char *cpu = rerender(&s, "--format collapsed", "cpu.folded");
    double samples = at_test_json_num(s.json, "sum(p['samples']['thread_samples'] for p in d['processes'] if p['samples'])");
    cr_assert_gt(samples, 20, "%s: samples taken", shape);
    cr_assert_eq(collapsed_sum(cpu, "cat"), samples, "%s: the folded counts sum to the report's samples",
                 shape);
    char *mem = rerender(&s, "--format collapsed --alloc", "alloc.folded");
    double bytes = at_test_json_num(s.json, "sum(p['alloc']['total_bytes'] for p in d['processes'] if p['alloc'])");
    cr_assert_eq(collapsed_sum(mem, "grep -v ';\\[native malloc\\] ' "), bytes,
                 "%s: the folded Python allocations sum to total_bytes", shape);
    free(cpu), free(mem);
    done(&s);
}

Test(formats, collapsed_sums_to_counts_static, .timeout = 60) { collapsed("static"); }
Test(formats, collapsed_sums_to_counts_shared, .timeout = 60) { collapsed("shared"); }

/* ---- pprof, read by the real `go tool pprof` ------------------------------------ */

/* "of N total" from `go tool pprof -top` of one sample type, in UNIT. */
static double pprof_total(const char *path, const char *index, const char *unit)
{
    char *out = NULL;
    int rc = at_test_shf(&out, NULL, "go tool pprof -top -sample_index=%s -unit=%s '%s' 2>/dev/null | "
                         "sed -n 's/.* of \\([0-9.]*\\)[A-Za-z]* total.*/\\1/p' | head -1", index, unit, path);
    cr_assert_eq(rc, 0, "go tool pprof reads %s", path);
    double v = out && *out ? strtod(out, NULL) : -1;
    free(out);
    return v;
}

/* The CPU profile has the report's samples, labelled by thread; the
 * memory profile (--alloc) has the bytes the folded memory stacks have. */
static void pprof(const char *shape)
{
    if (at_test_shf(NULL, NULL, "command -v go >/dev/null") != 0)
        cr_skip_test("no Go toolchain here: `go tool pprof` is the reader this test uses");
    session_t s;
    record(&s, shape);
    char *cpu = rerender(&s, "--format pprof", "cpu.pb.gz");
    double samples = at_test_json_num(s.json, "sum(p['samples']['thread_samples'] for p in d['processes'] if p['samples'])");
    cr_assert_gt(samples, 20, "%s: samples taken", shape);
    cr_assert_eq(pprof_total(cpu, "samples", "count"), samples, "%s: pprof's samples are the report's", shape);
    char *tags = NULL;
    at_test_shf(&tags, NULL, "go tool pprof -tags '%s' 2>/dev/null", cpu);
    /* The spinners, not MainThread: it waits in join() and an idle
     * thread's samples are dropped, so it may have none. */
    cr_assert(tags && strstr(tags, "thread_name:") && strstr(tags, "spinner-") && strstr(tags, "pid:"),
              "%s: samples carry pid and thread labels:\n%s", shape, tags);
    char *mem = rerender(&s, "--format pprof --alloc", "alloc.pb.gz");
    char *folded = rerender(&s, "--format collapsed --alloc", "alloc.folded");
    cr_assert_eq(pprof_total(mem, "alloc_space", "B"), collapsed_sum(folded, "cat"),
                 "%s: pprof's alloc_space is every allocation the folded memory stacks have", shape);
    cr_assert_geq(pprof_total(mem, "inuse_space", "B"), 0, "%s: and it has inuse_space", shape);
    free(tags), free(cpu), free(mem), free(folded);
    done(&s);
}

Test(formats, pprof_read_by_go_tool_pprof_static, .timeout = 90) { pprof("static"); }
Test(formats, pprof_read_by_go_tool_pprof_shared, .timeout = 90) { pprof("shared"); }

/* ---- speedscope, checked against speedscope's own schema ------------------------ */

/* speedscope's file-format-schema.json from its npm package (pinned), into
 * dir; NULL when npm cannot fetch it here. */
static char *speedscope_schema(const char *dir)
{
    char *path = malloc(PATH_MAX);
    snprintf(path, PATH_MAX, "%s/package/dist/release/file-format-schema.json", dir);
    if (at_test_shf(NULL, NULL, "cd '%s' && npm pack --silent speedscope@1.22.2 >/dev/null 2>&1 && "
                    "tar xzf speedscope-1.22.2.tgz package/dist/release/file-format-schema.json", dir) != 0) {
        free(path);
        return NULL;
    }
    return path;
}

/* "samples=N bytes=B" of a speedscope file, after the format's checks. */
static void speedscope_sums(const char *file, const char *schema, double *samples, double *bytes)
{
    char *out = NULL, *err = NULL;
    int rc = at_test_shf(&out, &err, "PERIOD_NS=10000000 python3 tests/fixtures/speedscope_check.py '%s' %s", file,
                         schema ? schema : "");
    if (rc == 2)
        cr_skip_test("no jsonschema module for python3: cannot check against speedscope's schema");
    cr_assert_eq(rc, 0, "%s passes speedscope's rules: %s", file, err);
    cr_assert_eq(sscanf(out, "samples=%lf bytes=%lf", samples, bytes), 2, "sums of %s: %s", file, out);
    free(out), free(err);
}

static void speedscope(const char *shape)
{
    session_t s;
    record(&s, shape);
    char *schema = speedscope_schema(s.tmp);
    if (!schema)
        cr_log_warn("npm could not fetch speedscope's schema: checking the format's rules only");
    char *cpu = rerender(&s, "--format speedscope", "cpu.speedscope.json");
    char *mem = rerender(&s, "--format speedscope --alloc", "alloc.speedscope.json");
    char *folded = rerender(&s, "--format collapsed --alloc", "alloc.folded");
    double samples = 0, bytes = 0, none;
    speedscope_sums(cpu, schema, &samples, &none);
    double want = at_test_json_num(s.json, "sum(p['samples']['thread_samples'] for p in d['processes'] if p['samples'])");
    cr_assert_eq(samples, want, "%s: the thread profiles hold the report's samples (100 Hz)", shape);
    speedscope_sums(mem, schema, &none, &bytes);
    cr_assert_eq(bytes, collapsed_sum(folded, "cat"), "%s: the memory profiles weigh what the folded stacks do",
                 shape);
    free(schema), free(cpu), free(mem), free(folded);
    done(&s);
}

Test(formats, speedscope_valid_and_complete_static, .timeout = 120) { speedscope("static"); }
Test(formats, speedscope_valid_and_complete_shared, .timeout = 120) { speedscope("shared"); }

/* ---- the JSON parts say their source ------------------------------------ */

/* A run under the shim with the ptrace sampler: every part of a process
 * names the backend that measured it, the shape test_record_bpf checks
 * for eBPF's ("ebpf" in the same keys). */
static void sources(const char *shape)
{
    session_t s;
    record(&s, shape);
    cr_assert(at_test_json_num(s.json, "[[p[k]['source'] for k in ('alloc', 'gil', 'samples')] "
                                       "for p in d['processes']][0] == ['preload', 'preload', 'sampler']"),
              "%s: alloc, gil and samples name their source", shape);
    cr_assert(at_test_json_num(s.json, "len(d['processes'][0]['imports']) > 0 and "
                                       "{i['source'] for i in d['processes'][0]['imports']} == {'preload'}"),
              "%s: every import record names its source", shape);
    cr_assert(at_test_json_num(s.json, "all(isinstance(t['hold_ns'], int) and t['waits'] is None "
                                       "for t in d['processes'][0]['gil']['threads'])"),
              "%s: the shim measures holds (numbers) and not waits-that-waited (null)", shape);
    char *again = rerender(&s, "--format json", "again.json");
    cr_assert(at_test_json_num(again, "d['processes'][0]['gil']['source'] == 'preload'"),
              "%s: a saved session renders the same source", shape);
    free(again);
    done(&s);
}

Test(formats, json_parts_name_their_source_static, .timeout = 60) { sources("static"); }
Test(formats, json_parts_name_their_source_shared, .timeout = 60) { sources("shared"); }

Test(formats, svg_alloc_without_alloc_data_says_so, .timeout = 60)
{
    const char *py = at_test_python_or_skip("static");
    char *tmp = at_test_tmpdir(), *err = NULL;
    int rc = at_test_shf(NULL, NULL, "%s -q --no-alloc -o %s/s %s -c 'pass'", at_test_archtrace(), tmp, py);
    cr_assert_eq(rc, 0, "traced run");
    rc = at_test_shf(NULL, &err, "%s report -q --format svg --alloc --out %s/x.svg %s/s",
                     at_test_archtrace(), tmp, tmp);
    cr_assert_neq(rc, 0, "nothing to draw is a failure");
    cr_assert(strstr(err, "archtrace: no allocation data"), "one clear line: %s", err);
    at_test_shf(NULL, NULL, "rm -rf '%s'", tmp);
    free(err), free(tmp);
}

/* ---- progress line ------------------------------------------------------------------ */

/* `record -d 1.6` of a spinning process, its stderr on a pty (script(1))
 * or a pipe; returns stderr (with the pty, stdout too). */
static char *record_progress(int tty)
{
    const char *py = at_test_python_or_skip("static");
    char *out = NULL, *err = NULL;
    if (access("/usr/bin/script", X_OK) != 0 && tty)
        cr_skip_test("no script(1) to give archtrace a terminal");
    int rc = at_test_shf(&out, &err,
        "%s tests/fixtures/bpf_threads.py 5 > /dev/null & py=$!; sleep 0.7; "
        "%s%s -q -p $py record -d 1.6%s; s=$?; kill $py; exit $s",
        py, tty ? "script -qec \"" : "", at_test_archtrace(), tty ? "\" /dev/null" : "");
    cr_assert_eq(rc, 0, "record exits 0: %s", err);
    if (tty) {
        free(err);
        return out;
    }
    free(out);
    return err;
}

Test(progress, drawn_in_place_on_a_terminal, .timeout = 30)
{
    char *text = record_progress(1);
    char *first = strstr(text, "\rrecording ");
    cr_assert(first, "a progress line on the terminal: %s", text);
    int lines = 0;
    for (char *p = first; (p = strstr(p, "\rrecording ")); p++)
        lines++;
    cr_assert_geq(lines, 3, "redrawn about 4 times a second over 1.6 s (%d times)", lines);
    cr_assert_leq(lines, 8, "and not more often (%d times)", lines);
    double secs;
    int samples;
    cr_assert_eq(sscanf(first, "\rrecording %lf s, %d samples, 1 process", &secs, &samples), 2,
                 "the line says time and samples: %.60s", first);
    cr_assert(strstr(text, "\r\033[K"), "the line is erased at the end");
    free(text);
}

Test(progress, silent_when_stderr_is_not_a_terminal, .timeout = 30)
{
    char *err = record_progress(0);
    cr_assert_null(strstr(err, "recording "), "no progress line in a pipe: %s", err);
    cr_assert_null(strchr(err, '\r'), "no carriage returns in a pipe");
    free(err);
}
