/* SPDX-License-Identifier: MIT */
/* attacher.h - the agent's attaches and detaches, off its main thread.
 *
 * The probes are the host's (bpf/ebpf.h, at_bpf_host_t): the first
 * process of a CPython binary waits while the kernel registers that
 * binary's uprobes (~0.5 s per uprobe on these machines, time spent
 * waiting, not computing), and its last one while they are removed; the
 * others take milliseconds (a map entry, a perf event per thread).  A
 * few worker threads do them, so the agent's loop keeps serving scrapes
 * and consuming events while a binary's probes go in or out, and the
 * processes of other binaries are not held up behind them.  A job belongs to the attacher from submit until the main
 * thread takes it back (attaches) or it is done (detaches).
 */
#ifndef AT_AGENT_ATTACHER_H
#define AT_AGENT_ATTACHER_H
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

#include "bpf/ebpf.h"
#include "cli/options.h"

#define AT_ATTACHER_THREADS 8

typedef enum { AT_JOB_ATTACH, AT_JOB_DETACH } at_job_kind_t;

typedef struct at_job {
    at_job_kind_t kind;
    pid_t pid;
    uint64_t starttime;           /* with pid, names one process           */
    char comm[32];
    int tries;                    /* attaches of a starting interpreter    */
    char dir[PATH_MAX];           /* the probes' session directory         */
    at_bpf_t *bpf;                /* attach: the result; detach: the input */
    int err;                      /* attach: errno when bpf is NULL        */
    char why[512];                /* ... and the reason                    */
    struct at_job *next;
} at_job_t;

typedef struct at_attacher {
    const at_options_t *o;
    at_bpf_host_t *host;          /* the probes processes are attached to  */
    pthread_t threads[AT_ATTACHER_THREADS];
    int nthreads;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    at_job_t *todo, *todo_tail;   /* FIFO of submitted jobs                */
    at_job_t *done;               /* finished attaches, for the main thread */
    int stopping;
} at_attacher_t;

/* Start the workers, attaching to host's probes.  0 or -errno. */
int at_attacher_start(at_attacher_t *a, const at_options_t *o, at_bpf_host_t *host);

/* Hand a job (malloc'd) over. */
void at_attacher_submit(at_attacher_t *a, at_job_t *job);

/* The finished attaches (a list through ->next), now the caller's. */
at_job_t *at_attacher_take(at_attacher_t *a);

/* Let every detach submitted finish, drop attaches not started, stop
 * what attached meanwhile, and join the workers. */
void at_attacher_stop(at_attacher_t *a);

#endif
