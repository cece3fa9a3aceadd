/* SPDX-License-Identifier: MIT */
/* cmd_record.c - `archtrace -p PID record`: the ptrace sampler or the eBPF
 * probes on one process, or with --subprocesses its whole tree
 * (subprocesses.c, subprocesses_bpf.c) (see cmd_record.h). */
#include "cli/cmd_record.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bpf/ebpf.h"
#include "cli/recording.h"
#include "out/progress.h"
#include "out/textout.h"
#include "remote/sampler.h"
#include "session/session.h"

/* ---- one process, sampled ---------------------------------------------------- */

static void sample_until_done(at_target_t *t, const at_options_t *o)
{
    at_pace_t pace;
    at_progress_t progress;
    uint64_t end = at_rec_deadline_ns(o);
    at_pace_init(&pace, o->rate_hz, !o->no_poll);
    uint64_t first_tick = pace.next_ns, last_tick = first_tick;
    at_progress_init(&progress);
    while (!at_rec_stop && (!end || at_now_ns() < end)) {
        at_progress_update(&progress, at_stacks_meta(t->stacks)->samples, "samples", 1);
        last_tick = pace.next_ns;       /* sampled, or counted missed */
        if (at_target_sample(t, NULL, NULL) == -ESRCH)
            break;
        if (t->failures > AT_TARGET_MAX_FAILURES) {
            fprintf(stderr, "archtrace: process %d no longer reads as Python %s (did it exec?); "
                    "stopping\n", (int)t->proc.pid, t->proc.version);
            break;
        }
        at_stacks_meta(t->stacks)->missed += at_pace_wait(&pace, &at_rec_stop);
        last_tick = pace.next_ns - pace.period_ns;  /* ticks it skipped are missed */
    }
    at_progress_end(&progress);
    at_pace_end(&pace);
    at_target_note_waits(t, &pace);
    /* The recording spans its ticks, first to last, each sampled or
     * counted missed (samples + missed = ticks): not the times the
     * samples were taken, which come late by the time a sample takes
     * (the first, which reads every code object, by milliseconds).  The
     * tick the last wait waited for was neither. */
    if (t->start_ns) {
        t->start_ns = first_tick;
        t->end_ns = last_tick > first_tick ? last_tick : first_tick;
    }
}

/* ---- record --bpf ------------------------------------------------------------ */

/* The exit status for a refused at_bpf_start: 7 when the kernel refused
 * BPF itself, else what the process check said (3, 4, 5, 6) or 125. */
static int bpf_refusal_status(const char *why, int err)
{
    if (strncmp(why, "eBPF unavailable", 16) == 0)
        return AT_EXIT_BPF_UNAVAILABLE;
    int status = at_py_proc_exit_status(-err);
    return status ? status : AT_EXIT_FAILED;
}

/* Attach, waiting a little for an interpreter still starting. */
static at_bpf_t *bpf_attach(const at_options_t *o, const char *dir, int *status)
{
    char why[512] = "";
    uint64_t deadline = at_now_ns() + AT_ATTACH_WAIT_NS;
    at_bpf_t *b;
    while (!(b = at_bpf_start(o->pid, dir, o, why, sizeof why)) && errno == EAGAIN &&
           at_now_ns() < deadline) {
        struct timespec ts = { 0, 20000000 };
        nanosleep(&ts, NULL);
    }
    if (b)
        return b;
    int err = errno;
    *status = bpf_refusal_status(why, err);
    fprintf(stderr, "archtrace: %s\n", why[0] ? why : at_errstr(err));
    if (*status == AT_EXIT_BPF_UNAVAILABLE)
        fprintf(stderr, "archtrace: without --bpf, `archtrace -p %d record` still samples Python "
                "stacks through process_vm_readv\n", (int)o->pid);
    return NULL;
}

/* Consume probe events until -d SECS, Ctrl-C or the target's exit
 * (then 1). */
static int poll_until_done(at_bpf_t *b, const at_options_t *o)
{
    int exited = 0;
    at_progress_t progress;
    uint64_t end = at_rec_deadline_ns(o), events = 0;
    at_progress_init(&progress);
    while (!at_rec_stop && (!end || at_now_ns() < end)) {
        uint64_t left = end ? end - at_now_ns() : UINT64_MAX;
        int rc = at_bpf_poll(b, left < 250000000ull ? (int)(left / 1000000) + 1 : 250);
        if (rc == -ESRCH) {
            exited = 1;
            break;
        }
        if (rc < 0 && rc != -EINTR) {
            fprintf(stderr, "archtrace: reading the probes' events failed: %s; stopping\n", at_errstr(-rc));
            break;
        }
        events += rc > 0 ? (uint64_t)rc : 0;
        at_progress_update(&progress, events, "events", 1);
    }
    at_progress_end(&progress);
    return exited;
}

/* One line once the probes are in: from here on nothing is missed
 * (scripts and tests wait for it before starting the work to watch). */
static void announce(const at_options_t *o)
{
    char secs[32] = "";
    if (o->duration_s > 0)
        snprintf(secs, sizeof secs, "%g s, ", o->duration_s);
    fprintf(stderr, "archtrace: recording process %d with eBPF probes (until %sCtrl-C or its exit)\n",
            (int)o->pid, secs);
    fflush(stderr);
}

static int record_bpf(const at_options_t *o)
{
    struct sigaction old_int, old_term;
    char dir[PATH_MAX] = "";
    int status = 0;
    if (at_rec_create_session(o, dir, sizeof dir) < 0)
        return AT_EXIT_FAILED;
    uint64_t t0 = at_now_ns();
    at_meta_t meta;
    at_py_proc_t proc;
    at_bpf_t *b = bpf_attach(o, dir, &status);
    if (!b) {
        if (!o->output_dir)
            at_session_remove(dir);
        return status;
    }
    at_rec_meta_start(dir, o->pid, &meta);
    if (at_py_proc_open(&proc, o->pid, NULL, 0) == 0)   /* at_bpf_start checked it */
        at_rec_seg_open(dir, &proc, at_now_ns());
    if (!o->quiet)
        announce(o);
    at_rec_catch_stop(&old_int, &old_term);
    int exited = poll_until_done(b, o);
    at_rec_restore_stop(&old_int, &old_term);
    at_rec_seg_close(dir, o->pid, at_now_ns(), exited);
    at_rec_meta_end(dir, &meta, (double)(at_now_ns() - t0) / 1e9);
    int rc = at_bpf_stop(b);
    if (rc < 0) {
        fprintf(stderr, "archtrace: cannot write the eBPF recording into %s: %s\n", dir, at_errstr(-rc));
        if (!o->output_dir)
            at_session_remove(dir);
        return AT_EXIT_FAILED;
    }
    return at_rec_report_and_clean(dir, o);
}

/* ---- record (ptrace sampler) ---------------------------------------------------- */

int at_cmd_record(const at_options_t *o)
{
    struct sigaction old_int, old_term;
    char dir[PATH_MAX] = "";
    at_target_t *t;
    if (o->bpf)
        return o->subprocesses ? at_record_tree_bpf(o) : record_bpf(o);
    if (o->subprocesses)
        return at_record_tree(o);
    int rc = at_rec_open_target(o, &t);
    if (rc)
        return rc;
    if (at_rec_create_session(o, dir, sizeof dir) < 0) {
        at_target_free(t);
        return AT_EXIT_FAILED;
    }
    at_meta_t meta;
    uint64_t t0 = at_now_ns();
    at_rec_meta_start(dir, o->pid, &meta);
    at_rec_seg_open(dir, &t->proc, t0);
    at_rec_catch_stop(&old_int, &old_term);
    sample_until_done(t, o);
    at_rec_restore_stop(&old_int, &old_term);
    at_rec_seg_close(dir, t->proc.pid, at_now_ns(), t->gone);
    at_rec_meta_end(dir, &meta, (double)(at_now_ns() - t0) / 1e9);
    rc = at_rec_save_stacks(t, o, dir);
    at_target_free(t);
    if (rc < 0) {
        if (!o->output_dir && dir[0])
            at_session_remove(dir);
        return AT_EXIT_FAILED;
    }
    return at_rec_report_and_clean(dir, o);
}
