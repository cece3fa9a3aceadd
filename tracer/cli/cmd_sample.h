/* SPDX-License-Identifier: MIT */
/* cmd_sample.h - `archtrace -p PID dump`. */
#ifndef AT_CMD_SAMPLE_H
#define AT_CMD_SAMPLE_H
#include "cli/options.h"

/* Print every thread's stack of o->pid once, most recent call last, to
 * stdout.  0, or an AT_EXIT_* status after one line on stderr. */
int at_cmd_dump(const at_options_t *o);

#endif
