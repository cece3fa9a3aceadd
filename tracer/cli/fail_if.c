/* SPDX-License-Identifier: MIT */
/* fail_if.c - `--fail-if`: the session's figures against the limits (see fail_if.h). */
#include "cli/fail_if.h"

#include <stdio.h>

#include "cli/cli.h"
#include "out/textout.h"
#include "report/thresholds.h"

int at_fail_if_status(const at_options_t *o, const char *dir, int status)
{
    at_threshold_t t[sizeof o->fail_if / sizeof *o->fail_if];
    char err[256];
    int n = 0;
    if (!o->n_fail_if)
        return status;
    for (int i = 0; i < o->n_fail_if; i++)   /* parsed once already: the command line was checked */
        if (at_threshold_parse(o->fail_if[i], &t[n], err, sizeof err) == 0)
            n++;
    int hits = at_thresholds_check(dir, t, n, stderr);
    if (hits < 0) {
        fprintf(stderr, "archtrace: --fail-if: cannot read the session %s: %s\n", dir, at_errstr(-hits));
        return AT_EXIT_FAILED;
    }
    return hits ? AT_EXIT_THRESHOLD : status;
}
