/* SPDX-License-Identifier: MIT */
/* report.h - render a session directory (text, JSON, collapsed, chrome, svg). */
#ifndef AT_REPORT_H
#define AT_REPORT_H
#include "options.h"

/* Render the session in `dir` as `o` asks: the text report to stderr
 * (unless quiet), --json FILE, and --format output.  `exit_status` is the
 * target's status (or -1 when unknown, e.g. for record).  0 or -errno. */
int at_report_render(const char *dir, const at_options_t *o, int exit_status);

#endif
