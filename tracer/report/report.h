/* SPDX-License-Identifier: MIT */
/* report.h - render a session directory (text, JSON, collapsed, chrome, svg). */
#ifndef AT_REPORT_H
#define AT_REPORT_H
#include "cli/options.h"

/* Render the session in `dir` as `o` asks: the text report to stderr
 * (unless quiet), --json FILE, and --format output.  `exit_status` is the
 * target's status (or -1 when unknown, e.g. for record).  0 (also when
 * damaged files were named and the rest reported), -ENODATA when the
 * directory is no session (empty, neither session.meta nor any <pid>
 * file) or none of its process files could be read (one line on stderr
 * says which), or another -errno (e.g. dir missing or not a directory). */
int at_report_render(const char *dir, const at_options_t *o, int exit_status);

/* `archtrace report`'s status when at_report_render says -ENODATA
 * (documented in the README with the others of options.h). */
#define AT_EXIT_NO_SESSION 8

#endif
