/* SPDX-License-Identifier: MIT */
/* test_fail_if.c - `--fail-if EXPR`: limits on a session's figures for CI.
 *
 * Real runs of small programs whose figures are known in advance: 32 MiB
 * kept alive, two threads fighting for the GIL, an import that fails.
 * A crossed limit makes archtrace exit 10 (not the program's status) and
 * say which limit, process and value; a limit not crossed leaves the
 * program's own status; a saved session is checked by `report` the same
 * way; a bad expression is refused before anything runs.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"

#define KEEP_32MIB "x = [bytes(1024) for _ in range(32768)]"
#define GIL_FIGHT                                                                                     \
    "import threading\n"                                                                               \
    "def spin():\n"                                                                                    \
    "    n = 0\n"                                                                                      \
    "    for i in range(3000000): n += i\n"                                                        \
    "ts = [threading.Thread(target=spin) for _ in range(2)]\n"                                         \
    "[t.start() for t in ts]; [t.join() for t in ts]\n"

/* `archtrace ARGS python3 -c CODE` with the interpreter of shape; exit
 * status, stderr into *err. */
static int traced(const char *shape, const char *args, const char *code, char **err)
{
    return at_test_shf(NULL, err, "'%s' -q %s '%s' -c \"$(printf '%%b' '%s')\"", at_test_archtrace(), args,
                       at_test_python_or_skip(shape), code);
}

AT_TEST_EACH_IN(AT_TEST_SHAPES_311, fail_if, peak_crossed_exits_10_and_says_so, .timeout = 60)
{
    char *err = NULL;
    int rc = traced(shape, "--fail-if 'peak>8MiB' --fail-if 'peak>1GiB'", KEEP_32MIB "\\nraise SystemExit(3)", &err);
    cr_expect_eq(rc, 10, "exit %d, want 10: %s", rc, err);
    cr_expect(strstr(err, "archtrace: --fail-if 'peak>8MiB' crossed: pid "), "no message: %s", err);
    cr_expect(strstr(err, " has peak = 3") && strstr(err, " MiB (Python allocators' peak"), "value: %s", err);
    cr_expect(!strstr(err, "'peak>1GiB' crossed"), "a limit not crossed is named: %s", err);
    free(err);
}

AT_TEST_EACH_IN(AT_TEST_SHAPES_311, fail_if, limits_not_crossed_keep_the_programs_status, .timeout = 60)
{
    char *err = NULL;
    int rc = traced(shape, "--fail-if 'peak>1GiB' --fail-if 'imports_failed>50' --fail-if 'gil_wait_ratio>0.9'",
                    KEEP_32MIB "\\nraise SystemExit(3)", &err);
    cr_expect_eq(rc, 3, "exit %d, want the program's 3: %s", rc, err);
    cr_expect(!strstr(err, "crossed"), "%s", err);
    free(err);
}

AT_TEST_EACH_IN(AT_TEST_SHAPES_311, fail_if, gil_and_imports_limits, .timeout = 60)
{
    char *err = NULL;
    int rc = traced(shape, "--no-alloc --fail-if 'gil_wait_ratio>0.2'", GIL_FIGHT, &err);
    cr_expect_eq(rc, 10, "two spinning threads: exit %d: %s", rc, err);
    cr_expect(strstr(err, "has gil_wait_ratio = 0."), "%s", err);
    free(err);
    err = NULL;
    rc = traced(shape, "--no-alloc --fail-if 'gil_wait_ratio>0.2'", "sum(range(3000000))", &err);
    cr_expect_eq(rc, 0, "one thread waits for nobody: exit %d: %s", rc, err);
    free(err);
    err = NULL;
    rc = traced(shape, "--fail-if 'imports_failed>0'", "try:\\n    import archtrace_no_such_module\\nexcept ImportError:\\n    pass", &err);
    cr_expect_eq(rc, 10, "a failed import: exit %d: %s", rc, err);
    free(err);
}

AT_TEST_EACH_IN(AT_TEST_SHAPES_311, fail_if, report_checks_a_saved_session, .timeout = 60)
{
    char *dir = at_test_tmpdir(), *err = NULL, code[256];
    snprintf(code, sizeof code, "-o '%s/s'", dir);
    cr_assert_eq(traced(shape, code, KEEP_32MIB, NULL), 0);
    int rc = at_test_shf(NULL, &err, "'%s' report --fail-if 'peak>16MiB' '%s/s' >/dev/null", at_test_archtrace(), dir);
    cr_expect_eq(rc, 10, "report --fail-if: exit %d: %s", rc, err);
    free(err);
    err = NULL;
    rc = at_test_shf(NULL, &err, "'%s' report --fail-if 'peak<16MiB' '%s/s' >/dev/null", at_test_archtrace(), dir);
    cr_expect_eq(rc, 0, "report --fail-if not crossed: exit %d: %s", rc, err);
    free(err);
    at_test_shf(NULL, NULL, "rm -rf '%s'", dir);
    free(dir);
}

Test(fail_if, bad_expressions_are_refused_before_running, .timeout = 30)
{
    static const char *const cases[][2] = {
        { "leaked>1MiB", "unknown metric" }, { "peak=5", "needs an operator" }, { "peak>", "needs a number" },
        { "peak>5 parsecs", "unit: B, KiB" }, { "gil_wait>2MiB", "unit: s, ms or us" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *err = NULL, *dir = at_test_tmpdir(), args[256];
        snprintf(args, sizeof args, "--fail-if '%s' -- sh -c 'touch %s/ran'", cases[i][0], dir);
        int rc = at_test_shf(NULL, &err, "'%s' %s", at_test_archtrace(), args);
        cr_expect_eq(rc, 125, "%s: exit %d", cases[i][0], rc);
        cr_expect(err && strstr(err, cases[i][1]), "%s: %s", cases[i][0], err);
        cr_expect_neq(at_test_shf(NULL, NULL, "test -e '%s/ran'", dir), 0, "%s: the command ran", cases[i][0]);
        at_test_shf(NULL, NULL, "rm -rf '%s'", dir);
        free(err), free(dir);
    }
    char *err = NULL;
    int rc = at_test_shf(NULL, &err, "'%s' -p 1 dump --fail-if 'peak>1'", at_test_archtrace());
    cr_expect_eq(rc, 125, "dump --fail-if: exit %d", rc);
    cr_expect(err && strstr(err, "--fail-if goes with run, record and report"), "%s", err);
    free(err);
}
