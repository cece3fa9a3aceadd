/* SPDX-License-Identifier: MIT */
/* test_labs_output.c - archtrace does not change what a lab prints.
 *
 * Labs 01-08 run on both build shapes (.venv/<shape>/bin/python when
 * tools/venvs.sh made it, else the base interpreter), once plainly and
 * once under `archtrace -q` with every feature and the sampler on.  Exit
 * statuses must be equal and stdout identical after
 * tests/fixtures/hard_normalise.py, which masks only what differs between
 * two plain runs (addresses, pids, timings, the pymalloc counts of lab04's
 * child, lab08's calibrated work sizes and completion order); its
 * docstring lists the rules.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "testlib.h"

typedef struct lab_case {
    char shape[8];           /* "static" or "shared"                       */
    int lab;                 /* 1..8                                       */
} lab_case_t;

ParameterizedTestParameters(labs, stdout_same_with_and_without_archtrace)
{
    static lab_case_t cases[16];
    for (int i = 0; i < 16; i++) {
        snprintf(cases[i].shape, sizeof(cases[i].shape), "%s", i < 8 ? "static" : "shared");
        cases[i].lab = i % 8 + 1;
    }
    return cr_make_param_array(lab_case_t, cases, 16);
}

/* The venv interpreter of a shape, else the base one, else NULL. */
static const char *lab_python(const char *shape)
{
    static char venv[2][64];
    int i = strcmp(shape, "static") != 0;
    snprintf(venv[i], sizeof(venv[i]), ".venv/%s/bin/python", shape);
    if (access(venv[i], X_OK) == 0)
        return venv[i];
    return at_test_python(shape);
}

/* Run the lab (under archtrace when `traced`) into dir/<tag>.out, the
 * normalised output into dir/<tag>.norm; returns the lab's exit status. */
static int run_lab(const char *dir, const char *tag, const char *py, int lab, int traced)
{
    char *err = NULL;
    char prefix[1200] = "";
    if (traced)
        snprintf(prefix, sizeof(prefix), "%s -q", at_test_archtrace());
    int rc = at_test_shf(NULL, &err, "%s %s labs/lab%02d.py > %s/%s.out; rc=$?; "
                         "python3 tests/fixtures/hard_normalise.py < %s/%s.out > %s/%s.norm || exit 99; exit $rc",
                         prefix, py, lab, dir, tag, dir, tag, dir, tag);
    cr_assert_neq(rc, 99, "normaliser failed: %s", err);
    free(err);
    return rc;
}

ParameterizedTest(lab_case_t *c, labs, stdout_same_with_and_without_archtrace, .timeout = 90)
{
    const char *py = lab_python(c->shape);
    if (!py)
        cr_skip_test("no %s-libpython CPython 3.11 on this machine", c->shape);
    char lab[32];
    snprintf(lab, sizeof(lab), "labs/lab%02d.py", c->lab);
    if (access(lab, R_OK) != 0)
        cr_skip_test("%s not written yet", lab);
    char *dir = at_test_tmpdir();
    cr_assert_not_null(dir, "temp directory");
    int plain = run_lab(dir, "plain", py, c->lab, 0);
    int traced = run_lab(dir, "traced", py, c->lab, 1);
    cr_assert_eq(traced, plain, "lab%02d %s: exit %d under archtrace, %d plain", c->lab, c->shape, traced, plain);
    char *diff = NULL;
    int rc = at_test_shf(&diff, NULL, "diff -u %s/plain.norm %s/traced.norm | head -40", dir, dir);
    cr_assert_eq(rc, 0, "diff ran");
    cr_assert_str_eq(diff, "", "lab%02d %s (%s): stdout differs under archtrace after normalising:\n%s",
                     c->lab, c->shape, py, diff);
    free(diff);
    at_test_shf(NULL, NULL, "rm -rf %s", dir);
    free(dir);
}
