/* SPDX-License-Identifier: MIT */
/* tree_follow.c - the Python processes of PID's tree, found as they come (see tree_follow.h). */
#include "cli/tree_follow.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli/recording.h"
#include "out/textout.h"
#include "remote/proc_tree.h"

static at_followed_t *find_followed(at_tree_t *tr, pid_t pid)
{
    for (int i = 0; i < tr->n; i++)
        if (tr->procs[i].pid == pid)
            return &tr->procs[i];
    return NULL;
}

/* Offer f to the recorder now. */
static void try_follow(at_tree_t *tr, at_followed_t *f, uint64_t now)
{
    char err[512] = "";
    int rc = tr->open(tr, f, err, sizeof err);
    if (rc == 0) {
        f->state = AT_FOLLOW_ON;
        tr->opened++;
    } else if (rc == -ENOEXEC) {
        f->state = AT_FOLLOW_NOT_PYTHON;
    } else if (rc == -EAGAIN && now - f->seen_ns < AT_ATTACH_WAIT_NS) {
        f->state = AT_FOLLOW_WAITING;
    } else {
        f->state = AT_FOLLOW_DONE;
        if (rc != -ESRCH)
            fprintf(stderr, "archtrace: process %d: %s\n", (int)f->pid, err[0] ? err : at_errstr(-rc));
    }
}

void at_tree_scan(at_tree_t *tr, uint64_t now)
{
    at_proc_row_t tree[AT_TREE_MAX];
    int n = at_proc_tree(tr->o->pid, tree, AT_TREE_MAX);
    tr->root_alive = n > 0;
    for (int i = 0; i < n; i++) {
        at_followed_t *f = find_followed(tr, tree[i].pid);
        if (!f && tr->n < AT_TREE_MAX) {
            f = &tr->procs[tr->n++];
            *f = (at_followed_t){ .pid = tree[i].pid, .seen_ns = now };
            snprintf(f->comm, sizeof f->comm, "%s", tree[i].comm);
            try_follow(tr, f, now);
        } else if (f && (f->state == AT_FOLLOW_WAITING ||
                         (f->state == AT_FOLLOW_NOT_PYTHON && strcmp(f->comm, tree[i].comm) != 0))) {
            snprintf(f->comm, sizeof f->comm, "%s", tree[i].comm);
            if (f->state == AT_FOLLOW_NOT_PYTHON)
                f->seen_ns = now;       /* exec'd: a fresh interpreter's wait */
            try_follow(tr, f, now);
        }
    }
}

int at_tree_pending(const at_tree_t *tr)
{
    for (int i = 0; i < tr->n; i++)
        if (tr->procs[i].state == AT_FOLLOW_WAITING)
            return 1;
    return 0;
}

int at_tree_nothing(pid_t root, int found_root)
{
    if (!found_root) {
        fprintf(stderr, "archtrace: no process %d\n", (int)root);
        return AT_EXIT_NO_SUCH_PROCESS;
    }
    fprintf(stderr, "archtrace: no Python process in the tree of process %d\n", (int)root);
    return AT_EXIT_NOT_PYTHON;
}
