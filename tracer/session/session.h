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

/* A session file key names the files of one program: its pid for the
 * newest program of a process, and for one that exec'd another Python
 * (its files renamed <pid>-<n>.<kind> by the next one, n = 1, 2, ... in
 * exec order) the pid plus n << AT_KEY_IMAGE_SHIFT.  Linux pids stay
 * below 2^22 (PID_MAX_LIMIT), so a key is still a positive pid_t: every
 * reader that takes the pid of its files takes a key. */
#define AT_KEY_IMAGE_SHIFT 22
#define AT_KEY_PID_MASK    ((1 << AT_KEY_IMAGE_SHIFT) - 1)

static inline pid_t at_key_pid(pid_t key)
{
    return key & AT_KEY_PID_MASK;
}

static inline int at_key_image(pid_t key)
{
    return (int)(key >> AT_KEY_IMAGE_SHIFT);
}

static inline pid_t at_key_make(pid_t pid, int image)
{
    return pid | (pid_t)image << AT_KEY_IMAGE_SHIFT;
}

/* "1234" or "1234-1": the stem of key's file names, into buf. */
const char *at_key_name(pid_t key, char *buf, size_t n);

/* "1234" or "1234 before exec 1": a key as report titles show it. */
const char *at_key_label(pid_t key, char *buf, size_t n);

/* "<pid>.<rest>" or "<pid>-<n>.<rest>" -> the key, *rest after the dot;
 * 0 for any other name. */
pid_t at_session_parse_name(const char *name, const char **rest);

/* Inode of <dir>/<key>.seg, or 0 when there is none.  A new inode under
 * a live pid's name means the process exec'd a new Python. */
ino_t at_session_seg_inode(const char *dir, pid_t key);

/* The key the program whose segment had inode `ino` was renamed to when
 * pid exec'd another Python (<pid>-<n>.seg), or 0 when its files are gone
 * (a forked copy that exec'd at once is replaced, not kept). */
pid_t at_session_renamed_key(const char *dir, pid_t pid, ino_t ino);

/* Create the session directory: `requested` (must not exist or be an empty
 * directory we own) or a fresh mkdtemp under $TMPDIR.  Writes the absolute
 * path to out.  0 or -errno. */
int at_session_create(const char *requested, char *out, size_t out_size);

/* Open <dir>/<key>.<suffix> (at_key_name) for reading (O_NOFOLLOW; a regular file only,
 * never blocking on a FIFO: EINVAL).  NULL + errno. */
FILE *at_session_open_file(const char *dir, pid_t pid, const char *suffix);

/* Create <dir>/<pid>.<suffix> for writing, 0600, O_NOFOLLOW|O_EXCL
 * (replacing an older file of ours).  NULL + errno. */
FILE *at_session_create_file(const char *dir, pid_t pid, const char *suffix);

/* Remove a session directory made by at_session_create (its files only). */
int at_session_remove(const char *dir);
/* The same, done by a detached process: returns at once. */
void at_session_remove_later(const char *dir);

#endif
