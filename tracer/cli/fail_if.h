/* SPDX-License-Identifier: MIT */
/* fail_if.h - `--fail-if` at the end of run, record and report: the
 * limits checked on the session (report/thresholds.h), the exit status
 * changed when one was crossed. */
#ifndef AT_FAIL_IF_H
#define AT_FAIL_IF_H
#include "cli/options.h"

/* With --fail-if: check the session in dir; AT_EXIT_THRESHOLD when a
 * limit was crossed (each said on stderr), else `status` unchanged.
 * Without --fail-if: `status`. */
int at_fail_if_status(const at_options_t *o, const char *dir, int status);

#endif
