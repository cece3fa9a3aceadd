/* SPDX-License-Identifier: MIT */
/* test_lab_views.c - what the labs verify about themselves, seen from outside.
 *
 * Lab 05 (ctypes + libc qsort): the lab's comparator is called by C.  A
 * dump and a recording with --native, taken while the first comparison
 * runs (tests/fixtures/lab05_paused.py pauses it there), show one merged
 * stack in call order: the lab's section_qsort -> _ctypes -> libffi's
 * call -> libc's qsort -> libffi's closure -> _ctypes -> the Python
 * comparator.  With --alloc-exact, the ctypes arrays the lab sorts are
 * charged to the lines that create them.  Lab 05 targets 3.11: both of
 * its build shapes.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixtures/testutil.h"
#include "testlib.h"

static pid_t lab_pid;

static void kill_lab(void)
{
    if (lab_pid > 0)
        tu_kill(lab_pid);
}

TestSuite(lab_views, .fini = kill_lab);

/* Start lab05 paused in its first comparison; dir gets the ready file. */
static pid_t start_lab05_paused(const char *shape, char *dir, size_t n)
{
    char py[512], fixture[1024], lab[PATH_MAX], ready[600];
    snprintf(py, sizeof py, "%s", at_test_python_or_skip(shape));
    cr_assert(realpath("labs/lab05.py", lab), "no labs/lab05.py: %s", strerror(errno));
    cr_assert(tu_tmpdir(dir, n), "mkdtemp: %s", strerror(errno));
    snprintf(ready, sizeof ready, "%s/ready", dir);
    char *argv[] = { py, (char *)tu_fixture("lab05_paused.py", fixture, sizeof fixture), ready, lab, NULL };
    lab_pid = tu_spawn(argv);
    cr_assert(lab_pid > 0, "%s: cannot start %s", shape, py);
    cr_assert(tu_wait_file(ready, 30) == 0, "%s: lab05 never reached its comparator", shape);
    return lab_pid;
}

/* The first place at or after `from` where `what` occurs, or NULL. */
static const char *after(const char *from, const char *what)
{
    return from ? strstr(from, what) : NULL;
}

/* The merged stack, in call order, within text (a dump's lines or one
 * folded stack): each step found after the one before.  NULL when the
 * order holds, else the first step missing. */
static const char *qsort_chain_broken(const char *text)
{
    static const char *const steps[] = {
        "section_qsort",         /* the lab calls libc.qsort(...)          */
        "(_ctypes.",             /* ctypes' call into C                    */
        "ffi_call (libffi",      /* libffi's call                          */
        "qsort",                 /* libc's qsort_r and its merge sort      */
        "(libc.so.6)",
        "(libffi",               /* libffi's closure trampoline            */
        "(_ctypes.",             /* ctypes' closure: back to Python        */
        "compare_first_paused",  /* the comparator, in Python              */
    };
    const char *at = text;
    for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
        at = after(at, steps[i]);
        if (!at)
            return steps[i];
        at += strlen(steps[i]);
    }
    return NULL;
}

AT_TEST_EACH_IN(AT_TEST_SHAPES_311, lab_views, lab05_dump_shows_python_called_from_qsort, .timeout = 60)
{
    char dir[256];
    pid_t pid = start_lab05_paused(shape, dir, sizeof dir);
    char *out = at_test_dump(pid, shape, "--native");
    tu_kill(pid);
    lab_pid = 0;
    tu_rmtree(dir);
    const char *broken = qsort_chain_broken(strstr(out, "\"MainThread\""));
    cr_expect(!broken, "%s: the merged stack misses '%s' in its place:\n%s", shape, broken, out);
    free(out);
}

AT_TEST_EACH_IN(AT_TEST_SHAPES_311, lab_views, lab05_samples_show_python_called_from_qsort, .timeout = 60)
{
    char dir[256], *folded = NULL, *err = NULL;
    pid_t pid = start_lab05_paused(shape, dir, sizeof dir);
    int rc = at_test_shf(NULL, &err, "'%s' -q -p %d record -d 0.5 --native --idle --format collapsed --out '%s/f.txt'",
                         at_test_archtrace(), (int)pid, dir);
    at_test_shf(&folded, NULL, "grep compare_first_paused '%s/f.txt' | head -1", dir);
    tu_kill(pid);
    lab_pid = 0;
    tu_rmtree(dir);
    cr_assert_eq(rc, 0, "%s: record --native exited %d: %s", shape, rc, err);
    const char *broken = folded && *folded ? qsort_chain_broken(folded) : "compare_first_paused";
    cr_expect(!broken, "%s: the sampled stack misses '%s' in its place:\n%s", shape, broken, folded);
    free(folded), free(err);
}

/* The report's cumulative allocations by line (JSON), of the lines of
 * labs/lab05.py holding `code`: the total bytes charged there. */
static double bytes_at_line_of(const char *json, const char *code)
{
    char expr[1024];
    snprintf(expr, sizeof expr,
             "(lambda lines: sum(e['size'] for p in d['processes'] if p.get('alloc') "
             "for e in p['alloc']['cumulative']['top'] if e['file'].endswith('labs/lab05.py') and e['line'] in lines))"
             "([i + 1 for i, l in enumerate(open('labs/lab05.py')) if %s in l])", code);
    return at_test_json_num(json, expr);
}

AT_TEST_EACH_IN(AT_TEST_SHAPES_311, lab_views, lab05_ctypes_buffers_charged_to_their_lines, .timeout = 60)
{
    char *dir = at_test_tmpdir(), *out = NULL, json[1024];
    snprintf(json, sizeof json, "%s/r.json", dir);
    int rc = at_test_shf(&out, NULL, "'%s' -q --alloc-exact --top 1000 --json '%s' '%s' labs/lab05.py",
                         at_test_archtrace(), json, at_test_python_or_skip(shape));
    cr_assert_eq(rc, 0, "%s: lab05 under archtrace exited %d:\n%s", shape, rc, out);
    cr_expect(strstr(out, "VERIFY lab05:"), "%s: the lab's own verification is missing:\n%s", shape, out);
    /* 24 c_int (96 bytes) and 5 Score structs, each above ctypes' 16-byte inline buffer */
    double ints = bytes_at_line_of(json, "'arr = (ctypes.c_int * len(values))(*values)'");
    double scores = bytes_at_line_of(json, "'scores = (Score * len(rows))(*rows)'");
    tu_rmtree(dir);
    cr_expect(ints >= 96, "%s: %.0f bytes charged to the c_int array's line", shape, ints);
    cr_expect(scores >= 5 * 16, "%s: %.0f bytes charged to the Score array's line", shape, scores);
    free(dir), free(out);
}

/* ---- lab 11: a task queue's workers wait in Redis, not in Python --------- */

/* The venv python of a shape (it has redis-py), or skip. */
static const char *venv_python(const char *shape)
{
    static char path[2][PATH_MAX];
    char *p = path[strcmp(shape, "static") != 0];
    at_test_python_or_skip(shape);
    snprintf(p, PATH_MAX, ".venv/%s/bin/python", shape);
    if (access(p, X_OK) != 0 || at_test_shf(NULL, NULL, "%s -c 'import redis'", p) != 0)
        cr_skip_test("%s has no redis package (make venvs)", p);
    if (at_test_shf(NULL, NULL, "command -v redis-server >/dev/null") != 0)
        cr_skip_test("no redis-server (make deps)");
    return p;
}

/* The Redis phase's workers: the threads named worker-N that waited most
 * in redis-py's socket reads.  Each is mostly outside the GIL (holding
 * and waiting for it a small part of the time it spent in the socket),
 * took it again after each blocking call (acquisitions), and was idle in
 * most of its samples. */
static const char lab11_checks[] =
    "(lambda T, G: [c for c, ok in ["
    " ('4 workers wait in redis-py socket reads', len(T) == 4),"
    " ('mostly outside the GIL', all(G[t['thread']]['outside_ns'] > 2 * (G[t['thread']]['hold_ns']"
    "   + G[t['thread']]['wait_ns']) for t in T)),"
    " ('GIL taken again around blocking calls', all(G[t['thread']]['acquisitions'] >= 10 for t in T)),"
    " ('idle in most samples', all(t['idle'] >= 0.7 * t['samples'] for t in T))"
    "] if not ok])"
    "([t for p in d['processes'] if p['samples'] for t in p['samples']['by_thread']"
    "  if t.get('thread_name', '').startswith('worker-') and '/redis/' in (t['waited_most_in'] or '')"
    "  and '_read' in t['waited_most_in']],"
    " {g['tid']: g for p in d['processes'] if p['gil'] for g in p['gil']['threads']})";

/* `archtrace OPTIONS PY labs/labNN.py --json J`: the lab's own VERIFY
 * line, the JSON checks (CHECKS evaluates to the list of failed ones)
 * and, in the text report, a table whose first line holds HEADING. */
static void lab_outside(const char *shape, const char *py, int lab, const char *options, const char *checks,
                        const char *heading)
{
    char *dir = at_test_tmpdir(), *out = NULL, *err = NULL, json[1024], verify[32];
    snprintf(json, sizeof json, "%s/r.json", dir);
    snprintf(verify, sizeof verify, "VERIFY lab%02d:", lab);
    int rc = at_test_shf(&out, &err, "'%s' %s --json '%s' '%s' labs/lab%02d.py", at_test_archtrace(), options, json, py,
                         lab);
    cr_assert_eq(rc, 0, "%s: lab%02d under archtrace exited %d:\n%s\n%s", shape, lab, rc, out, err);
    cr_expect(strstr(out, verify), "%s: the lab's own verification is missing:\n%s", shape, out);
    char *failed = at_test_json(json, checks);
    tu_rmtree(dir);
    cr_expect_str_eq(failed, "[]", "%s: failed checks: %s\nreport:\n%s", shape, failed, err);
    cr_expect(strstr(err, heading), "%s: no '%s' table:\n%s", shape, heading, err);
    free(dir), free(out), free(err), free(failed);
}

AT_TEST_EACH_IN(AT_TEST_SHAPES_311, lab_views, lab11_workers_wait_in_redis_outside_the_gil, .timeout = 90)
{
    lab_outside(shape, venv_python(shape), 11, "--idle --top 12", lab11_checks, "  by thread (idle: not running");
}

/* ---- lab 14: cryptography's work is native time in OpenSSL ---------------- */

/* With --native, the samples whose innermost frame is native code, by
 * library: cryptography's RSA key generation in its OpenSSL-backed Rust
 * extension (_rust.abi3.so, OpenSSL linked in), called from its
 * rsa.generate_private_key; hashlib's PBKDF2 in the system's
 * libcrypto.so.3, called from the lab's section_hashlib.  Both modules
 * are loaded after the sampling started: their names are looked up again
 * then, and only code outside any file (the vDSO, a module being mapped
 * in) stays in library "?". */
static const char lab14_checks[] =
    "(lambda L: [c for c, ok in ["
    " ('_rust.abi3.so has RSA keygen time', any(l['library'].startswith('_rust') and l['samples'] >= 10"
    "   and '/cryptography/' in (l['called_most_from'] or '') for l in L)),"
    " ('libcrypto.so.3 has PBKDF2 time', any(l['library'].startswith('libcrypto.so') and l['samples'] >= 10"
    "   and (l['called_most_from'] or '').startswith('section_hashlib (') for l in L)),"
    " ('few samples in no known library', sum(l['samples'] for l in L if l['library'] == '?')"
    "   <= 0.05 * sum(l['samples'] for l in L))"
    "] if not ok])"
    "([l for p in d['processes'] if p['samples'] for l in p['samples'].get('by_library', [])])";

AT_TEST_EACH_IN(AT_TEST_SHAPES_311, lab_views, lab14_crypto_is_native_time_in_openssl, .timeout = 90)
{
    const char *py = at_test_python_or_skip(shape);
    static char venv[2][64];
    char *v = venv[strcmp(shape, "static") != 0];
    snprintf(v, sizeof venv[0], ".venv/%s/bin/python", shape);
    if (access(v, X_OK) != 0 || at_test_shf(NULL, NULL, "%s -c 'import cryptography'", v) != 0)
        cr_skip_test("%s has no cryptography package (make venvs; base: %s)", v, py);
    lab_outside(shape, v, 14, "--native --rate 1000", lab14_checks, "  native code by library");
}
