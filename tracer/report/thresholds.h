/* SPDX-License-Identifier: MIT */
/* thresholds.h - `--fail-if EXPR`: limits on a session's figures, for CI.
 *
 * EXPR is METRIC OP VALUE, e.g. `peak>200MiB`, `gil_wait_ratio>0.3`,
 * `imports_failed>0`; OP is one of > >= < <=; VALUE a number with an
 * optional unit (bytes: B KiB MiB GiB, or kB MB GB; seconds: s ms us).
 * Each metric is a figure of one process (the table in thresholds.c says
 * which, and where it comes from); a limit is crossed when any process
 * of the session crosses it, and processes that did not measure the
 * metric (allocations off, a process that never imported) are skipped.
 * archtrace then exits with AT_EXIT_THRESHOLD (cli/options.h) instead of
 * the command's status and says which limit, which process and which
 * value.
 */
#ifndef AT_THRESHOLDS_H
#define AT_THRESHOLDS_H
#include <stddef.h>
#include <stdio.h>

typedef struct at_threshold {
    int metric;               /* index into the metric table                */
    int op;                   /* '>', 'g' (>=), '<', 'l' (<=)               */
    double limit;             /* in the metric's base unit (B, s, 1)        */
    char text[96];            /* the expression as given                    */
} at_threshold_t;

/* Parse expr.  0, or -EINVAL with the reason in err (unknown metric,
 * operator, number or unit). */
int at_threshold_parse(const char *expr, at_threshold_t *t, char *err, size_t errlen);

/* Check the processes of the session in dir against t[0..n); a line on
 * out for each limit crossed.  The number crossed, or -errno when the
 * session cannot be read. */
int at_thresholds_check(const char *dir, const at_threshold_t *t, int n, FILE *out);

/* "peak, native_peak, ...": the metrics, for messages and --help. */
const char *at_threshold_metrics(void);

#endif
