/* SPDX-License-Identifier: MIT */
/* recording.h - what `dump` and `record` share around the sampler: opening
 * a target with a short wait for an interpreter still starting, the
 * session directory a recording writes (session.meta, one <pid>.seg and
 * <pid>.stacks per process, the report at the end), and the stop signals
 * (SIGINT, SIGTERM) that end a recording cleanly. */
#ifndef AT_RECORDING_H
#define AT_RECORDING_H
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "cli/options.h"
#include "remote/sampler.h"
#include "session/meta.h"

#define AT_ATTACH_WAIT_NS 2000000000ull   /* wait for an initialising interpreter */

/* at_target_open, retried while the interpreter is still starting (for up
 * to AT_ATTACH_WAIT_NS).  0, or its -errno with the reason in err. */
int at_rec_try_open(pid_t pid, const at_options_t *o, at_target_t **t, char *err, size_t errlen);

/* The same, saying why on stderr: 0 or the AT_EXIT_* status. */
int at_rec_open_target(const at_options_t *o, at_target_t **t);

/* Set by SIGINT/SIGTERM between at_rec_catch_stop and at_rec_restore_stop. */
extern volatile sig_atomic_t at_rec_stop;
void at_rec_catch_stop(struct sigaction *old_int, struct sigaction *old_term);
void at_rec_restore_stop(const struct sigaction *old_int, const struct sigaction *old_term);

/* When -d SECS ends the recording (0: never). */
uint64_t at_rec_deadline_ns(const at_options_t *o);

/* The session directory (-o DIR or a temporary one): 0 or -errno, said. */
int at_rec_create_session(const at_options_t *o, char *dir, size_t n);

/* session.meta at the start (the root's command line) and at the end. */
void at_rec_meta_start(const char *dir, pid_t root, at_meta_t *m);
void at_rec_meta_end(const char *dir, at_meta_t *m, double wall_s);

/* <pid>.seg when a process's recording starts (while /proc still has its
 * argv, exe and parent), and its end. */
void at_rec_seg_open(const char *dir, const at_py_proc_t *p, uint64_t start_ns);
void at_rec_seg_close(const char *dir, pid_t pid, uint64_t end_ns, int exited);

/* <pid>.stacks of one target: 0 or -errno, said. */
int at_rec_save_stacks(at_target_t *t, const at_options_t *o, const char *dir);

/* Render the saved session, then drop it unless -o kept it: 0 or 125. */
int at_rec_report_and_clean(const char *dir, const at_options_t *o);

#endif
