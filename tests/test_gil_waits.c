/* SPDX-License-Identifier: MIT */
/* test_gil_waits.c - samples that say where a thread waited for the GIL.
 *
 * tests/fixtures/gil_burn.py runs two threads burning CPU in pure Python
 * for a second: each waits for the GIL about half the time, inside
 * burn().  The run sampler marks a sample whose thread the shim's live
 * GIL table shows blocked in take_gil; the report must put those waits
 * in burn(), each thread's share of waiting samples must agree with the
 * shim's exact wait time over its life (within 0.15), and pprof's
 * gil_wait and gil_hold sample types (read by the real `go tool pprof`)
 * must name burn(), whose function record carries its first line.  --idle: the JSON's stacks include the idle ones (a
 * thread blocked in take_gil is idle).
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"

static const char checks[] =
    "(lambda P: [c for c, ok in ["
    " ('waits sampled', P['samples']['gil_wait_samples'] >= 20),"
    " ('waits in burn', P['samples']['gil_waits'][0]['frame'].startswith('burn (')),"
    " ('share agrees with the shim', all(abs("
    "   sum(k['count'] for k in P['samples']['stacks'] if k['thread'] == t['tid'] and k['gil_wait'])"
    "   / max(1, sum(k['count'] for k in P['samples']['stacks'] if k['thread'] == t['tid']))"
    "   - t['wait_ns'] / t['wall_ns']) <= 0.15 for t in P['gil']['threads'] if t['name'].startswith('burn-')))"
    "] if not ok])(d['processes'][0])";

AT_TEST_EACH_SHAPE(gil_waits, sampled_where_threads_wait, .timeout = 60)
{
    char *dir = at_test_tmpdir(), fixture[1024], *out = NULL, json[1100];
    cr_assert(realpath("tests/fixtures/gil_burn.py", fixture));
    snprintf(json, sizeof json, "%s/r.json", dir);
    int rc = at_test_shf(NULL, NULL, "'%s' -q --idle --no-alloc -o '%s/s' --json '%s' '%s' '%s' 2 1.0", at_test_archtrace(),
                         dir, json, at_test_python_or_skip(shape), fixture);
    cr_assert_eq(rc, 0, "%s: exit %d", shape, rc);
    char *failed = at_test_json(json, checks);
    cr_expect_str_eq(failed, "[]", "%s: failed: %s", shape, failed);
    if (at_test_shf(NULL, NULL, "command -v go >/dev/null") == 0) {
        char *wait = NULL, *hold = NULL;
        at_test_shf(NULL, NULL, "'%s' -q report --format pprof --out '%s/p.pb.gz' '%s/s'", at_test_archtrace(), dir, dir);
        at_test_shf(&wait, NULL, "go tool pprof -top -sample_index=gil_wait '%s/p.pb.gz' 2>/dev/null | sed -n 6p", dir);
        at_test_shf(&hold, NULL, "go tool pprof -top -sample_index=gil_hold '%s/p.pb.gz' 2>/dev/null | sed -n 6p", dir);
        cr_expect(wait && strstr(wait, " burn\n"), "%s: pprof gil_wait's top: %s", shape, wait);
        cr_expect(hold && strstr(hold, " burn\n"), "%s: pprof gil_hold's top: %s", shape, hold);
        /* functions carry their first line (co_firstlineno): burn's def */
        char *start = NULL, *def = NULL;
        at_test_shf(&def, NULL, "grep -n '^def burn' '%s' | cut -d: -f1", fixture);
        at_test_shf(&start, NULL, "go tool pprof -raw '%s/p.pb.gz' 2>/dev/null | grep -m1 ' burn .*gil_burn.py:' | "
                    "sed 's/.* s=//'", dir);
        cr_expect(def && start && atoi(def) > 0 && atoi(start) == atoi(def), "%s: burn starts at line %s, pprof says %s",
                  shape, def, start);
        free(wait), free(hold), free(start), free(def);
    }
    at_test_shf(NULL, NULL, "rm -rf '%s'", dir);
    free(dir), free(out), free(failed);
}
