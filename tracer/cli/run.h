/* SPDX-License-Identifier: MIT */
/* run.h - `archtrace [run] COMMAND`: start it under the shim, wait, report. */
#ifndef AT_RUN_H
#define AT_RUN_H
#include <limits.h>
#include <stddef.h>
#include "session/meta.h"
#include "cli/options.h"

/* Run the command of `o`; returns its exit status (128+N for a signal) or
 * AT_EXIT_FAILED / AT_EXIT_CANNOT_RUN / AT_EXIT_NOT_FOUND. */
int at_cmd_run(const at_options_t *o);

/* Path of libarchtrace.so next to the archtrace binary (or
 * $ARCHTRACE_SHIM); 0 or -ENOENT. */
int at_find_shim(char *out, size_t size);

/* ---- pieces of `run`, for `top` (which starts the command the same way) */

/* A command started under the shim, with its session. */
typedef struct at_run_child {
    char dir[PATH_MAX];       /* the session directory                     */
    pid_t pid;                /* the command                               */
    at_meta_t meta;           /* session.meta as written                   */
    double t0;                /* start, monotonic seconds                  */
} at_run_child_t;

/* Create the session (meta kind `kind`), set the shim's environment and
 * start o->argv.  stdio_fd >= 0: the command's stdin is /dev/null and its
 * stdout/stderr go to stdio_fd.  0, or an AT_EXIT_* status after one line
 * on stderr (the session is then gone). */
int at_run_start(const at_options_t *o, const char *kind, int stdio_fd, at_run_child_t *c);

/* Record the command's status in session.meta, marked complete. */
void at_run_close(at_run_child_t *c, int status);

/* Remove the session directory unless -o DIR asked to keep it. */
void at_run_cleanup(const at_options_t *o, at_run_child_t *c);

/* Note which signals archtrace was started with ignored, before anything
 * changes them (main does it first): the command gets the same. */
void at_run_note_signals(void);

/* A waitpid() status as run returns it: the exit code, 128+N for signal N. */
int at_run_exit_status(int wait_status);

#endif
