/* SPDX-License-Identifier: MIT */
/* subprocesses_bpf.c - `-p PID record --bpf --subprocesses`: the eBPF
 * probes on every Python process of the tree under PID, whatever PID
 * itself runs, those that start (or exec a CPython) later included.
 *
 * The tree is followed as the sampler's record follows it
 * (tree_follow.c), only more often (SCAN_NS): a child is found by its
 * exec of a CPython binary within a scan.  Each Python process joins the
 * host-wide probe set of its binary (bpf/, as `archtrace agent` does):
 * the first one of a binary waits for the uprobes, the next ones are an
 * entry in the probes' map, so a tree of one interpreter costs one
 * attach, not one per process.  The sets are kept until the end
 * (at_bpf_host_keep_sets): a short-lived child that goes neither removes
 * the uprobes the next one needs nor stalls the loop while they go.  A
 * process that exits is stopped at once and writes its <pid>.bpf and
 * <pid>.stacks, the rest at the end; each has a <pid>.seg written when
 * it joins (while /proc has its parent), so the report lists each
 * process once, with its parent, as for one process.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bpf/ebpf.h"
#include "cli/cmd_record.h"
#include "cli/recording.h"
#include "cli/tree_follow.h"
#include "out/progress.h"
#include "out/textout.h"
#include "remote/py_proc.h"
#include "session/session.h"

#define SCAN_NS   100000000ull       /* look for new processes this often  */
#define POLL_NS    50000000ull       /* consume the probes' events this often */

typedef struct bpf_tree {
    at_bpf_host_t *host;      /* the probe sets, one per CPython binary    */
    int refused;              /* the status when the kernel refused eBPF   */
    uint64_t events;          /* consumed, for the progress line          */
} bpf_tree_t;

/* The probes' opener (tree_follow.h): join f to its binary's set. */
static int open_probed(at_tree_t *tr, at_followed_t *f, char *err, size_t errlen)
{
    bpf_tree_t *bt = tr->ctx;
    at_py_proc_t proc;
    f->b = at_bpf_host_start(bt->host, f->pid, tr->dir, tr->o, err, errlen);
    if (!f->b) {
        int e = errno ? errno : EINVAL;
        if (strncmp(err, "eBPF unavailable", 16) == 0)
            bt->refused = AT_EXIT_BPF_UNAVAILABLE;
        return -e;
    }
    if (at_py_proc_open(&proc, f->pid, NULL, 0) == 0)   /* at_bpf_host_start checked it */
        at_rec_seg_open(tr->dir, &proc, at_now_ns());
    if (!tr->o->quiet) {
        const at_bpf_data_t *d = at_bpf_data(f->b);
        fprintf(stderr, "archtrace: + process %d (%s, Python %s %s) with eBPF probes\n", (int)f->pid, d->comm,
                d->version, d->build);
    }
    return 0;
}

/* f's recording written: its end in <pid>.seg, its probes' data in
 * <pid>.bpf and <pid>.stacks.  0 or -errno, said. */
static int stop_one(at_tree_t *tr, at_followed_t *f, int exited)
{
    at_rec_seg_close(tr->dir, f->pid, at_now_ns(), exited);
    int rc = at_bpf_stop(f->b);
    if (rc < 0)
        fprintf(stderr, "archtrace: cannot write the eBPF recording of process %d into %s: %s\n", (int)f->pid,
                tr->dir, at_errstr(-rc));
    f->b = NULL;
    f->state = AT_FOLLOW_DONE;
    return rc;
}

/* Every set's events to their processes, then each process's exit
 * looked for (an exited one stopped at once).  The number still
 * recorded; *rc the first failure to write. */
static int poll_all(at_tree_t *tr, int *rc)
{
    bpf_tree_t *bt = tr->ctx;
    int live = 0;
    bt->events += (uint64_t)at_bpf_host_poll(bt->host);
    for (int i = 0; i < tr->n; i++) {
        at_followed_t *f = &tr->procs[i];
        if (f->state != AT_FOLLOW_ON)
            continue;
        if (at_bpf_poll(f->b, 0) == -ESRCH) {
            bt->events += (uint64_t)at_bpf_host_poll(bt->host);   /* what it left */
            int st = stop_one(tr, f, 1);
            *rc = *rc ? *rc : st;
            continue;
        }
        live++;
    }
    return live;
}

/* One line as the tree starts being watched; each process is said as it
 * joins ("+ process PID"), from when nothing of it is missed. */
static void announce(const at_options_t *o)
{
    char secs[32] = "";
    if (o->duration_s > 0)
        snprintf(secs, sizeof secs, "%g s, ", o->duration_s);
    fprintf(stderr, "archtrace: recording the Python processes of the tree of process %d with eBPF probes "
            "(until %sCtrl-C or the tree's exit)\n", (int)o->pid, secs);
    fflush(stderr);
}

/* Follow the tree until -d, a stop signal, a refusal of eBPF, or the
 * root and every process recorded are gone.  0 or the first -errno of a
 * process's recording. */
static int follow_until_done(at_tree_t *tr)
{
    bpf_tree_t *bt = tr->ctx;
    at_progress_t progress;
    uint64_t end = at_rec_deadline_ns(tr->o), next_scan = 0;
    int rc = 0;
    if (!tr->o->quiet && !at_py_proc_gone(tr->o->pid))
        announce(tr->o);
    at_progress_init(&progress);
    while (!at_rec_stop && (!end || at_now_ns() < end)) {
        uint64_t now = at_now_ns();
        if (now >= next_scan) {
            at_tree_scan(tr, now);
            next_scan = at_now_ns() + SCAN_NS;   /* a first attach takes seconds */
        }
        if (bt->refused)
            break;
        int live = poll_all(tr, &rc);
        if (!tr->root_alive && !live && !at_tree_pending(tr))
            break;
        at_progress_update(&progress, bt->events, "events", 1);
        struct timespec ts = { 0, (long)POLL_NS };
        nanosleep(&ts, NULL);                    /* a stop signal ends it early */
    }
    at_progress_end(&progress);
    return rc;
}

/* Stop every process still recorded; 0 or the first -errno. */
static int stop_all(at_tree_t *tr)
{
    bpf_tree_t *bt = tr->ctx;
    int rc = 0;
    at_bpf_host_poll(bt->host);
    for (int i = 0; i < tr->n; i++)
        if (tr->procs[i].b) {
            int st = stop_one(tr, &tr->procs[i], 0);
            rc = rc ? rc : st;
        }
    return rc;
}

/* What the recording ends with: the report, or why there is none. */
static int finish(const at_options_t *o, const char *dir, int rc, int refused, int opened, int root_seen)
{
    if (rc == 0 && opened && !refused)
        return at_rec_report_and_clean(dir, o);
    if (!o->output_dir)
        at_session_remove(dir);
    if (refused) {
        fprintf(stderr, "archtrace: without --bpf, `archtrace -p %d record --subprocesses` still samples "
                "Python stacks through process_vm_readv\n", (int)o->pid);
        return refused;
    }
    return rc < 0 ? AT_EXIT_FAILED : at_tree_nothing(o->pid, root_seen);
}

int at_record_tree_bpf(const at_options_t *o)
{
    struct sigaction old_int, old_term;
    char dir[PATH_MAX] = "";
    bpf_tree_t bt = { .host = at_bpf_host_new() };
    at_tree_t *tr = calloc(1, sizeof *tr);
    if (!tr || !bt.host || at_rec_create_session(o, dir, sizeof dir) < 0) {
        free(tr);
        at_bpf_host_free(bt.host);
        return AT_EXIT_FAILED;
    }
    at_bpf_host_keep_sets(bt.host);
    *tr = (at_tree_t){ .o = o, .dir = dir, .open = open_probed, .ctx = &bt };
    at_meta_t meta;
    uint64_t t0 = at_now_ns();
    at_rec_meta_start(dir, o->pid, &meta);
    at_rec_catch_stop(&old_int, &old_term);
    int rc = follow_until_done(tr);
    at_rec_restore_stop(&old_int, &old_term);
    int st = stop_all(tr);
    at_rec_meta_end(dir, &meta, (double)(at_now_ns() - t0) / 1e9);
    at_bpf_host_free(bt.host);   /* the kept sets' uprobes go */
    int opened = tr->opened, root_seen = tr->n > 0;
    free(tr);
    return finish(o, dir, rc ? rc : st, bt.refused, opened, root_seen);
}
