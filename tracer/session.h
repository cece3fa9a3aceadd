/* SPDX-License-Identifier: MIT */
/* session.h - the session directory: where the shim and the sampler write.
 *
 * A session is a directory created 0700 holding, per traced Python
 * process, <pid>.seg (the shim's header segment, see common/segment_format.h)
 * and per-feature files <pid>.<feature> written by the shim or the tracer
 * (<pid>.alloc, <pid>.gil, <pid>.imports, <pid>.stacks, ...), plus
 * session.meta (the command, start time, archtrace's own state).
 */
#ifndef AT_SESSION_H
#define AT_SESSION_H
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

/* Create the session directory: `requested` (must not exist or be an empty
 * directory we own) or a fresh mkdtemp under $TMPDIR.  Writes the absolute
 * path to out.  0 or -errno. */
int at_session_create(const char *requested, char *out, size_t out_size);

/* Open <dir>/<pid>.<suffix> for reading (O_NOFOLLOW; a regular file only,
 * never blocking on a FIFO: EINVAL).  NULL + errno. */
FILE *at_session_open_file(const char *dir, pid_t pid, const char *suffix);

/* Create <dir>/<pid>.<suffix> for writing, 0600, O_NOFOLLOW|O_EXCL
 * (replacing an older file of ours).  NULL + errno. */
FILE *at_session_create_file(const char *dir, pid_t pid, const char *suffix);

/* Remove a session directory made by at_session_create (its files only). */
int at_session_remove(const char *dir);

#endif
