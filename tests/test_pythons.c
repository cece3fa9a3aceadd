/* SPDX-License-Identifier: MIT */
/* test_pythons.c - which CPythons this run of the tests used.
 *
 * The integration tests take their interpreters from at_test_python
 * (testlib.c): 3.11's two build shapes, and 3.12 and 3.13 where this
 * machine has them.  Each case here checks that what was found is what
 * its name says (the version, and for 3.11 the shape: libpython mapped or
 * not) and logs it, so `make test` says which interpreters it ran on; an
 * absent one is a skip that names it.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"

/* "3.12 shared" as the interpreter reports itself: version, and whether
 * libpython is mapped into it. */
static char *describe(const char *py)
{
    char *out = NULL;
    int rc = at_test_shf(&out, NULL,
                         "%s -c \"import sys; v=sys.version_info; "
                         "print('%%d.%%d %%s' %% (v[0], v[1], 'shared' if 'libpython' in "
                         "open('/proc/self/maps').read() else 'static'))\"",
                         py);
    cr_assert_eq(rc, 0, "%s runs", py);
    out[strcspn(out, "\n")] = '\0';
    return out;
}

/* want: what describe() must start with */
static void found(const char *shape, const char *want)
{
    const char *py = at_test_python_or_skip(shape);
    char *got = describe(py);
    cr_log_info("python %s: %s (%s)", shape, py, got);
    cr_assert(!strncmp(got, want, strlen(want)), "at_test_python(\"%s\") is %s, which says it is %s", shape, py,
              got);
    free(got);
}

Test(pythons, static_311) { found("static", "3.11 static"); }
Test(pythons, shared_311) { found("shared", "3.11 shared"); }
/* either shape: this machine's are shared, another's may be static */
Test(pythons, any_312) { found("3.12", "3.12 "); }
Test(pythons, any_313) { found("3.13", "3.13 "); }
