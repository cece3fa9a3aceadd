/* SPDX-License-Identifier: MIT */
/* subprocesses.c - `-p PID dump --subprocesses` and `-p PID record
 * --subprocesses`: every Python process of the tree under PID, whatever
 * PID itself runs (a shell, a gunicorn or Celery master, make).
 *
 * The tree is read from /proc (remote/proc_tree.c).  `dump` takes one
 * picture and dumps each Python process in it once, breadth first, each
 * headed with its parent.  `record` (with the sampler; --bpf is
 * subprocesses_bpf.c) looks again every SCAN_NS while it samples
 * (tree_follow.c), so workers that start after the attach are recorded
 * from the moment they are seen, and each process that exits keeps what
 * was sampled of it.  A process that is not Python when seen is looked
 * at again when its name changes: a forked shell becomes Python by exec.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmd_record.h"
#include "cli/cmd_dump.h"
#include "cli/recording.h"
#include "cli/tree_follow.h"
#include "out/progress.h"
#include "out/textout.h"
#include "remote/pace.h"
#include "remote/proc_tree.h"
#include "remote/py_proc.h"
#include "remote/sampler.h"
#include "session/session.h"

/* The parent of row in the full picture of /proc (NULL: not there). */
static const at_proc_row_t *parent_of(const at_proc_row_t *all, size_t count, const at_proc_row_t *row)
{
    for (size_t i = 0; i < count; i++)
        if (all[i].pid == row->ppid)
            return &all[i];
    return NULL;
}

/* ---- dump ------------------------------------------------------------------ */

/* Each Python process of the picture, read and printed in turn; the JSON
 * (--json) of all of them at the end. */
int at_dump_tree(const at_options_t *o)
{
    size_t count = 0;
    at_proc_row_t *all = at_proc_scan(&count), tree[AT_TREE_MAX];
    at_dumped_t *dumped[AT_TREE_MAX];
    int n = all ? at_proc_descendants(all, count, o->pid, tree, AT_TREE_MAX) : 0;
    int ndumped = 0, status = 0;
    for (int i = 0; i < n; i++) {
        at_target_t *t;
        char err[512];
        int rc = at_rec_try_open(tree[i].pid, o, &t, err, sizeof err), st;
        if (rc == -ENOEXEC || rc == -ESRCH)      /* not Python, or gone since */
            continue;
        if (rc < 0) {
            fprintf(stderr, "archtrace: %s\n", err[0] ? err : at_errstr(-rc));
            status = status ? status : at_py_proc_exit_status(rc);
            continue;
        }
        at_dumped_t *one = at_dump_read(o, t, parent_of(all, count, &tree[i]), &st);
        if (!one) {
            status = status ? status : st;
            continue;
        }
        if (ndumped && (!o->json_file || strcmp(o->json_file, "-") != 0))
            printf("\n");
        at_dump_print(o, one);
        dumped[ndumped++] = one;
    }
    free(all);
    if (ndumped) {
        int st = at_dump_write_all(o, dumped, ndumped);
        status = status ? status : st;
    }
    for (int i = 0; i < ndumped; i++)
        at_dumped_free(dumped[i]);
    if (!ndumped && !status)
        return at_tree_nothing(o->pid, n > 0);
    return status;
}

/* ---- record ---------------------------------------------------------------- */

#define SCAN_NS    200000000ull        /* look for new processes this often */

/* The sampler's opener (tree_follow.h): never waits, the next scan
 * tries again. */
static int open_sampled(at_tree_t *tr, at_followed_t *f, char *err, size_t errlen)
{
    int rc = at_target_open(&f->t, f->pid, tr->o, err, errlen);
    if (rc == 0)
        at_rec_seg_open(tr->dir, &f->t->proc, at_now_ns());
    return rc;
}

/* One pass over every sampled process; the number still sampled. */
static int sample_all(at_tree_t *r, uint64_t now)
{
    int live = 0;
    for (int i = 0; i < r->n; i++) {
        at_followed_t *f = &r->procs[i];
        if (f->state != AT_FOLLOW_ON)
            continue;
        int rc = at_target_sample(f->t, NULL, NULL);
        if (rc == -ESRCH || f->t->failures > AT_TARGET_MAX_FAILURES) {
            if (rc != -ESRCH)
                fprintf(stderr, "archtrace: process %d no longer reads as Python %s (did it exec?); "
                        "no longer sampled\n", (int)f->pid, f->t->proc.version);
            at_rec_seg_close(r->dir, f->pid, now, rc == -ESRCH);
            f->state = AT_FOLLOW_DONE;
            continue;
        }
        live++;
    }
    return live;
}

static uint64_t samples_taken(at_tree_t *r)
{
    uint64_t sum = 0;
    for (int i = 0; i < r->n; i++)
        if (r->procs[i].t)
            sum += at_stacks_meta(r->procs[i].t->stacks)->samples;
    return sum;
}

static void count_missed(at_tree_t *r, uint64_t missed)
{
    for (int i = 0; i < r->n; i++)
        if (r->procs[i].state == AT_FOLLOW_ON)
            at_stacks_meta(r->procs[i].t->stacks)->missed += missed;
}

/* Sample the tree until -d, a stop signal, or the root and every process
 * sampled are gone. */
static void follow_until_done(at_tree_t *r, at_pace_t *pace)
{
    at_progress_t progress;
    uint64_t end = at_rec_deadline_ns(r->o), next_scan = 0;
    at_progress_init(&progress);
    while (!at_rec_stop && (!end || at_now_ns() < end)) {
        uint64_t now = at_now_ns();
        if (now >= next_scan) {
            at_tree_scan(r, now);
            next_scan = now + SCAN_NS;
        }
        int live = sample_all(r, now);
        if (!r->root_alive && !live && !at_tree_pending(r))
            break;
        at_progress_update(&progress, samples_taken(r), "samples", 1);
        count_missed(r, at_pace_wait(pace, &at_rec_stop));
    }
    at_progress_end(&progress);
}

/* Close and save every process sampled; 0 or -errno of the first failure. */
static int save_all(at_tree_t *r, const at_pace_t *pace)
{
    int rc = 0;
    uint64_t now = at_now_ns();
    for (int i = 0; i < r->n; i++) {
        at_followed_t *f = &r->procs[i];
        if (!f->t)
            continue;
        if (f->state == AT_FOLLOW_ON)
            at_rec_seg_close(r->dir, f->pid, now, f->t->gone);
        at_target_note_waits(f->t, pace);
        int st = at_rec_save_stacks(f->t, r->o, r->dir);
        rc = rc ? rc : st;
        at_target_free(f->t);
        f->t = NULL;
    }
    return rc;
}

int at_record_tree(const at_options_t *o)
{
    struct sigaction old_int, old_term;
    char dir[PATH_MAX] = "";
    at_tree_t *r = calloc(1, sizeof *r);
    if (!r || at_rec_create_session(o, dir, sizeof dir) < 0) {
        free(r);
        return AT_EXIT_FAILED;
    }
    *r = (at_tree_t){ .o = o, .dir = dir, .open = open_sampled };
    at_meta_t meta;
    at_pace_t pace;
    uint64_t t0 = at_now_ns();
    at_rec_meta_start(dir, o->pid, &meta);
    at_rec_catch_stop(&old_int, &old_term);
    at_pace_init(&pace, o->rate_hz, !o->no_poll);
    follow_until_done(r, &pace);
    at_pace_end(&pace);
    at_rec_restore_stop(&old_int, &old_term);
    at_rec_meta_end(dir, &meta, (double)(at_now_ns() - t0) / 1e9);
    int rc = save_all(r, &pace), pythons = r->opened, root_seen = r->n > 0;
    free(r);
    if (rc < 0 || !pythons) {
        if (!o->output_dir)
            at_session_remove(dir);
        return rc < 0 ? AT_EXIT_FAILED : at_tree_nothing(o->pid, root_seen);
    }
    return at_rec_report_and_clean(dir, o);
}
