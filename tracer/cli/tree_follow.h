/* SPDX-License-Identifier: MIT */
/* tree_follow.h - the Python processes of PID's tree, found as they come:
 * what `record --subprocesses` follows, with the sampler
 * (subprocesses.c) or the eBPF probes (subprocesses_bpf.c).
 *
 * at_tree_scan reads the tree under the root from /proc
 * (remote/proc_tree.c) and offers each process not yet followed to the
 * recorder's open function, once.  A process that is not Python when
 * seen is offered again when its name changes (a forked shell becomes
 * Python by exec), and one whose interpreter is still starting on every
 * scan for AT_ATTACH_WAIT_NS; the rest are followed, or done with.  The
 * recorder runs the loop: it decides how often to scan and what to do
 * with the processes it opened (each once, under its own pid). */
#ifndef AT_TREE_FOLLOW_H
#define AT_TREE_FOLLOW_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "bpf/ebpf.h"
#include "cli/options.h"
#include "remote/sampler.h"

#define AT_TREE_MAX 256                /* processes of a tree followed       */

typedef enum at_follow_state {
    AT_FOLLOW_WAITING,        /* Python, interpreter still starting        */
    AT_FOLLOW_NOT_PYTHON,     /* offered again when its name changes       */
    AT_FOLLOW_ON,             /* opened: the recorder records it           */
    AT_FOLLOW_DONE,           /* exited, exec'd, or refused: no more       */
} at_follow_state_t;

typedef struct at_followed {
    pid_t pid;
    char comm[32];            /* when last looked at                       */
    at_follow_state_t state;
    uint64_t seen_ns;         /* first seen (or exec'd)                    */
    at_target_t *t;           /* the sampler's, once opened (or NULL)      */
    at_bpf_t *b;              /* the probes', once opened (or NULL)        */
} at_followed_t;

typedef struct at_tree at_tree_t;

/* Open f for recording, without waiting (the next scan tries again):
 * 0 (f->t or f->b set), -ENOEXEC not Python, -EAGAIN its interpreter
 * is still starting, -ESRCH gone, other -errno with the reason in err. */
typedef int (*at_tree_open_fn)(at_tree_t *tr, at_followed_t *f, char *err, size_t errlen);

struct at_tree {
    const at_options_t *o;
    const char *dir;          /* the session                               */
    at_tree_open_fn open;
    void *ctx;                /* the recorder's own                        */
    at_followed_t procs[AT_TREE_MAX];
    int n;
    int root_alive;           /* at the last scan                          */
    int opened;               /* processes ever opened                     */
};

/* The tree now: new processes offered, exec'd and starting ones again. */
void at_tree_scan(at_tree_t *tr, uint64_t now);

/* 1 while a process's interpreter is still starting. */
int at_tree_pending(const at_tree_t *tr);

/* Nothing to record: "no process ROOT" (3) when the root was never seen,
 * else "no Python process in the tree" (4); the status, said. */
int at_tree_nothing(pid_t root, int found_root);

#endif
