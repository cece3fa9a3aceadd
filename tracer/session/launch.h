/* SPDX-License-Identifier: MIT */
/* launch.h - start a command under the shim with a new session, the way
 * `archtrace run` and `archtrace top -- COMMAND` both do. */
#ifndef AT_LAUNCH_H
#define AT_LAUNCH_H
#include <limits.h>
#include <stddef.h>
#include "cli/options.h"
#include "session/meta.h"

/* Path of libarchtrace.so next to the archtrace binary (or
 * $ARCHTRACE_SHIM); 0 or -ENOENT. */
int at_find_shim(char *out, size_t size);

/* A command started under the shim, with its session. */
typedef struct at_launch {
    char dir[PATH_MAX];       /* the session directory                     */
    pid_t pid;                /* the command                               */
    at_meta_t meta;           /* session.meta as written                   */
    double t0;                /* start, monotonic seconds                  */
} at_launch_t;

/* Create the session (meta kind `kind`), set the shim's environment and
 * start o->argv.  stdio_fd >= 0: the command's stdin is /dev/null and its
 * stdout/stderr go to stdio_fd.  0, or an AT_EXIT_* status after one line
 * on stderr (the session is then gone). */
int at_launch_start(const at_options_t *o, const char *kind, int stdio_fd, at_launch_t *c);

/* Record the command's status in session.meta, marked complete. */
void at_launch_close(at_launch_t *c, int status);

/* Remove the session directory unless -o DIR asked to keep it. */
void at_launch_cleanup(const at_options_t *o, at_launch_t *c);

/* Note which signals archtrace was started with ignored, before anything
 * changes them (main does it first): the command gets the same. */
void at_launch_note_signals(void);

/* A waitpid() status as run returns it: the exit code, 128+N for signal N. */
int at_launch_exit_status(int wait_status);

#endif
