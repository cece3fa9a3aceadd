/* SPDX-License-Identifier: MIT */
/* run.h - `archtrace [run] COMMAND`: start it under the shim, wait, report. */
#ifndef AT_RUN_H
#define AT_RUN_H
#include "cli/options.h"

/* Run the command of `o`; returns its exit status (128+N for a signal) or
 * AT_EXIT_FAILED / AT_EXIT_CANNOT_RUN / AT_EXIT_NOT_FOUND. */
int at_cmd_run(const at_options_t *o);

#endif
