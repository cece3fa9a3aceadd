/* SPDX-License-Identifier: MIT */
/* reap.h - one owner for the command's wait statuses while --native ptraces it.
 *
 * `run` waits for the command it started; with --native the sampler
 * thread also seizes the command's threads and waits for their ptrace
 * stops.  Both are in archtrace's thread group, and Linux reports a
 * tracee's stops and its exit to any thread of the tracer's group that
 * waits for it, whatever the wait flags: the run loop's waitpid() used to
 * take the sampler's PTRACE_EVENT_STOP (status 0x80057f, read as 125),
 * and the sampler's waitpid could reap the command's exit and drop it.
 *
 * So: the run loop only peeks (waitid WNOWAIT) until the command has
 * really ended and then reaps it; the native unwinder's waits go through
 * at_reap_poll, which keeps an exit status it reaps for the watched pid.
 * Reaping happens under one lock, so a status is taken exactly once and
 * never lost.
 */
#ifndef AT_REAP_H
#define AT_REAP_H
#include <sys/types.h>

/* The command whose exit status the run loop wants (0: none). */
void at_reap_watch(pid_t pid);

/* Block until `pid` (a child of ours) ends; its wait status in *status.
 * Ptrace stops are left for the sampler.  0 or -errno. */
int at_reap_wait_exit(pid_t pid, int *status);

/* Non-blocking waitpid(tid, __WALL | WNOHANG) for the native unwinder:
 * returns what waitpid returns (tid, 0 or -1 with errno).  An exit of the
 * watched pid reaped here is kept for at_reap_wait_exit. */
pid_t at_reap_poll(pid_t tid, int *status);

#endif
