/* SPDX-License-Identifier: MIT */
/* reap.c - the command's exit status, shared by the run loop and the native unwinder (see reap.h). */
#include "remote/reap.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pid_t watched;         /* the command run waits for                 */
static int kept_status;       /* its wait status, reaped by the sampler    */
static int kept;              /* kept_status is valid                      */

void at_reap_watch(pid_t pid)
{
    pthread_mutex_lock(&lock);
    watched = pid;
    kept = 0;
    pthread_mutex_unlock(&lock);
}

static int is_end(int st)
{
    return WIFEXITED(st) || WIFSIGNALED(st);
}

pid_t at_reap_poll(pid_t tid, int *status)
{
    pthread_mutex_lock(&lock);
    pid_t r = waitpid(tid, status, __WALL | WNOHANG);
    int e = errno;
    if (r > 0 && r == watched && is_end(*status)) {
        kept_status = *status;
        kept = 1;
    }
    pthread_mutex_unlock(&lock);
    errno = e;
    return r;
}

static void nap_ms(long ms)
{
    struct timespec ts = { 0, ms * 1000000L };
    nanosleep(&ts, NULL);
}

/* Reap pid for good, or take the status the sampler kept: 1 done, 0 not
 * yet, -errno. */
static int take_exit(pid_t pid, int *status)
{
    int rc = 0, st = 0;
    pthread_mutex_lock(&lock);
    if (kept && watched == pid) {
        *status = kept_status;
        kept = 0;
        rc = 1;
    } else {
        pid_t r = waitpid(pid, &st, __WALL | WNOHANG);
        if (r == pid && is_end(st)) {
            *status = st;
            rc = 1;
        } else if (r < 0 && errno != EINTR) {
            rc = -errno;
        }
        /* r == pid with a stop: impossible after the end was seen (and
         * then taken from the sampler); waitid says again next round */
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

int at_reap_wait_exit(pid_t pid, int *status)
{
    for (;;) {
        siginfo_t si;
        memset(&si, 0, sizeof si);
        /* peek only: a ptrace stop stays for the sampler to take */
        int w = waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT | __WALL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno != ECHILD)
            return -errno;
        int ended = w < 0 || si.si_code == CLD_EXITED || si.si_code == CLD_KILLED ||
                    si.si_code == CLD_DUMPED;
        if (!ended) {
            nap_ms(1);      /* a sampler's stop: it takes it within a sample */
            continue;
        }
        /* ECHILD: the sampler reaped it and kept the status (under the
         * lock take_exit waits on, so it is there now) */
        int rc = take_exit(pid, status);
        if (rc != 0)
            return rc < 0 ? rc : 0;
        nap_ms(1);
    }
}
