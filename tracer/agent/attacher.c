/* SPDX-License-Identifier: MIT */
/* attacher.c - the agent's attaches and detaches, off its main thread (see attacher.h). */
#include "agent/attacher.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "session/session.h"

static void run_job(at_attacher_t *a, at_job_t *j)
{
    if (j->kind == AT_JOB_DETACH) {
        at_bpf_stop(j->bpf);
        at_session_remove(j->dir);
        free(j);
        return;
    }
    j->bpf = at_bpf_host_start(a->host, j->pid, j->dir, a->o, j->why, sizeof j->why);
    j->err = j->bpf ? 0 : errno;
    pthread_mutex_lock(&a->lock);
    j->next = a->done;
    a->done = j;
    pthread_mutex_unlock(&a->lock);
}

/* The next job to run: detaches always, attaches unless stopping.  NULL
 * when stopping and nothing is left. */
static at_job_t *next_job(at_attacher_t *a)
{
    pthread_mutex_lock(&a->lock);
    for (;;) {
        at_job_t *j = a->todo;
        if (j) {
            a->todo = j->next;
            if (!a->todo)
                a->todo_tail = NULL;
            if (j->kind == AT_JOB_ATTACH && a->stopping) {
                at_session_remove(j->dir);
                free(j);
                continue;
            }
            pthread_mutex_unlock(&a->lock);
            return j;
        }
        if (a->stopping) {
            pthread_mutex_unlock(&a->lock);
            return NULL;
        }
        pthread_cond_wait(&a->wake, &a->lock);
    }
}

static void *worker(void *arg)
{
    at_attacher_t *a = arg;
    for (at_job_t *j; (j = next_job(a));)
        run_job(a, j);
    return NULL;
}

int at_attacher_start(at_attacher_t *a, const at_options_t *o, at_bpf_host_t *host)
{
    memset(a, 0, sizeof *a);
    a->o = o;
    a->host = host;
    pthread_mutex_init(&a->lock, NULL);
    pthread_cond_init(&a->wake, NULL);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);      /* signals stay the main thread's */
    int rc = 0;
    for (int i = 0; i < AT_ATTACHER_THREADS && rc == 0; i++)
        if ((rc = pthread_create(&a->threads[i], NULL, worker, a)) == 0)
            a->nthreads++;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return a->nthreads ? 0 : -rc;
}

void at_attacher_submit(at_attacher_t *a, at_job_t *job)
{
    job->next = NULL;
    pthread_mutex_lock(&a->lock);
    if (a->todo_tail)
        a->todo_tail->next = job;
    else
        a->todo = job;
    a->todo_tail = job;
    pthread_cond_signal(&a->wake);
    pthread_mutex_unlock(&a->lock);
}

at_job_t *at_attacher_take(at_attacher_t *a)
{
    pthread_mutex_lock(&a->lock);
    at_job_t *list = a->done;
    a->done = NULL;
    pthread_mutex_unlock(&a->lock);
    return list;
}

void at_attacher_stop(at_attacher_t *a)
{
    pthread_mutex_lock(&a->lock);
    a->stopping = 1;
    pthread_cond_broadcast(&a->wake);
    pthread_mutex_unlock(&a->lock);
    for (int i = 0; i < a->nthreads; i++)
        pthread_join(a->threads[i], NULL);
    for (at_job_t *j = at_attacher_take(a), *next; j; j = next) {
        next = j->next;
        at_bpf_stop(j->bpf);
        at_session_remove(j->dir);
        free(j);
    }
    pthread_cond_destroy(&a->wake);
    pthread_mutex_destroy(&a->lock);
}
