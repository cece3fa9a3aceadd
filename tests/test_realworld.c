/* SPDX-License-Identifier: MIT */
/* test_realworld.c - programs nobody here wrote, under archtrace and without
 * it (issue 25): same exit status, same stdout, and a report that shows
 * what the program did.  No network: packages come from tests/realworld/. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "testlib.h"

#define WHEEL "tests/realworld/archtrace_tinypkg-0.1-py3-none-any.whl"
#define PIP_INSTALL "-m pip install --no-index --no-cache-dir --disable-pip-version-check " \
                    "--no-input --progress-bar off"

/* `python -m pip install` of a local wheel into a fresh venv: once plain,
 * once under archtrace (after uninstalling), compared. */
static void check_pip_install(const char *shape)
{
    const char *py = at_test_python_or_skip(shape);
    char *dir = at_test_tmpdir(), *plain, *traced, *err, wheel[4096];
    cr_assert(realpath(WHEEL, wheel), "the test wheel is at %s (run from the tree's root)", WHEEL);
    int rc = at_test_shf(NULL, &err, "%s -m venv %s/v", py, dir);
    cr_assert_eq(rc, 0, "%s: python -m venv: %d: %s", shape, rc, err);
    free(err);

    int rc_plain = at_test_shf(&plain, &err, "%s/v/bin/python " PIP_INSTALL " %s", dir, wheel);
    cr_assert_eq(rc_plain, 0, "%s: pip install without archtrace: %d: %s", shape, rc_plain, err);
    free(err);
    rc = at_test_shf(NULL, &err, "%s/v/bin/python -m pip uninstall -y archtrace_tinypkg", dir);
    cr_assert_eq(rc, 0, "%s: pip uninstall: %d: %s", shape, rc, err);
    free(err);

    int rc_traced = at_test_shf(&traced, &err, "%s -q --json %s/r.json -- %s/v/bin/python " PIP_INSTALL " %s",
                                at_test_archtrace(), dir, dir, wheel);
    cr_assert_eq(rc_traced, rc_plain, "%s: exit status under archtrace %d, without %d: %s", shape, rc_traced,
                 rc_plain, err);
    cr_assert_str_eq(traced, plain, "%s: pip's stdout is the same under archtrace", shape);
    cr_assert(strstr(traced, "Successfully installed archtrace-tinypkg-0.1"), "%s: installed: %s", shape, traced);
    free(err), free(plain), free(traced);

    char *out;
    rc = at_test_shf(&out, &err, "%s/v/bin/python -c 'import archtrace_tinypkg as t; print(t.hello())'", dir);
    cr_assert_eq(rc, 0, "%s: the package installed under archtrace imports: %s", shape, err);
    cr_assert_str_eq(out, "hello from tinypkg\n", "%s: and works", shape);
    free(out), free(err);

    /* the report saw pip at work */
    char json[600];
    snprintf(json, sizeof json, "%s/r.json", dir);
    char *v = at_test_json(json, "sorted({i['module'] for p in d['processes'] for i in (p['imports'] or []) "
                                 "if i['module'] in ('pip', 'pip._internal.cli.main', "
                                 "'pip._internal.commands.install', 'pip._internal.req')})");
    cr_assert_not_null(v, "%s: JSON report readable", shape);
    cr_assert_str_eq(v, "['pip', 'pip._internal.cli.main', 'pip._internal.commands.install', 'pip._internal.req']",
                     "%s: the report lists pip's imports: %s", shape, v);
    free(v);
    double n = at_test_json_num(json, "len(d['processes'])");
    cr_assert_geq(n, 1, "%s: pip's process is reported", shape);
    at_test_shf(NULL, NULL, "rm -rf %s", dir);
    free(dir);
}

Test(realworld, pip_install_local_wheel_static, .timeout = 180) { check_pip_install("static"); }
Test(realworld, pip_install_local_wheel_shared, .timeout = 180) { check_pip_install("shared"); }
