/* SPDX-License-Identifier: MIT */
/* cmd_sample.c - `archtrace -p PID record` (see cmd_sample.h; dump: cmd_dump.c). */
#include "cli/cmd_sample.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "remote/attached.h"
#include "bpf/ebpf.h"
#include "session/meta.h"
#include "out/progress.h"
#include "report/report.h"
#include "remote/sampler.h"
#include "segment_format.h"
#include "session/session.h"
#include "out/textout.h"

#define ATTACH_WAIT_NS  2000000000ull   /* wait for an initialising interpreter */
#define LABEL_MAX       2048

int at_cmd_open_target(const at_options_t *o, at_target_t **t)
{
    char err[512] = "";
    uint64_t deadline = at_now_ns() + ATTACH_WAIT_NS;
    int rc;
    while ((rc = at_target_open(t, o->pid, o, err, sizeof err)) == -EAGAIN && at_now_ns() < deadline) {
        struct timespec ts = { 0, 20000000 };
        nanosleep(&ts, NULL);
    }
    if (rc < 0) {
        fprintf(stderr, "archtrace: %s\n", err[0] ? err : at_errstr(-rc));
        return at_py_proc_exit_status(rc);
    }
    return 0;
}

/* ---- record ------------------------------------------------------------------ */

static volatile sig_atomic_t record_stop;

static void on_stop_signal(int sig)
{
    (void)sig;
    record_stop = 1;
}

static void catch_stop_signals(struct sigaction *old_int, struct sigaction *old_term)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal; /* no SA_RESTART: the sleep ends at once */
    sigemptyset(&sa.sa_mask);
    record_stop = 0;
    sigaction(SIGINT, &sa, old_int);
    sigaction(SIGTERM, &sa, old_term);
}

static void restore_stop_signals(const struct sigaction *old_int, const struct sigaction *old_term)
{
    sigaction(SIGINT, old_int, NULL);
    sigaction(SIGTERM, old_term, NULL);
}

/* When -d SECS ends the recording (0: never). */
static uint64_t deadline_ns(const at_options_t *o)
{
    return o->duration_s > 0 ? at_now_ns() + (uint64_t)(o->duration_s * 1e9) : 0;
}

static void sample_until_done(at_target_t *t, const at_options_t *o)
{
    at_pace_t pace;
    at_progress_t progress;
    uint64_t end = deadline_ns(o);
    at_pace_init(&pace, o->rate_hz, !o->no_poll);
    uint64_t first_tick = pace.next_ns, last_tick = first_tick;
    at_progress_init(&progress);
    while (!record_stop && (!end || at_now_ns() < end)) {
        at_progress_update(&progress, at_stacks_meta(t->stacks)->samples, "samples", 1);
        last_tick = pace.next_ns;       /* sampled, or counted missed */
        if (at_target_sample(t, NULL, NULL) == -ESRCH)
            break;
        if (t->failures > AT_TARGET_MAX_FAILURES) {
            fprintf(stderr, "archtrace: process %d no longer reads as Python %s (did it exec?); "
                    "stopping\n", (int)t->proc.pid, t->proc.version);
            break;
        }
        at_stacks_meta(t->stacks)->missed += at_pace_wait(&pace, &record_stop);
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

/* session.meta, so `archtrace report DIR` knows what this session was:
 * written when recording starts (the command line is read while the
 * process surely runs), and again with the wall time when it ends. */
static void meta_start(const char *dir, pid_t pid, at_meta_t *m)
{
    char buf[4096], *argv[64];
    int argc = 0;
    *m = (at_meta_t){ .complete = 0, .exit_status = -1, .root_pid = pid, .wall_s = -1 };
    snprintf(m->kind, sizeof m->kind, "record");
    m->start_realtime_ns = (uint64_t)time(NULL) * 1000000000ull;
    ssize_t n = at_py_proc_read(pid, "cmdline", buf, sizeof buf);
    for (ssize_t i = 0; i < n && argc < 63; i += (ssize_t)strlen(buf + i) + 1)
        argv[argc++] = buf + i;
    argv[argc] = NULL;
    at_meta_set_argv(m, argc, argv);
    at_meta_write(dir, m);
}

static void meta_end(const char *dir, at_meta_t *m, double wall_s)
{
    m->complete = 1;
    m->wall_s = wall_s;
    at_meta_write(dir, m);
}

static int create_session(const at_options_t *o, char *dir, size_t n)
{
    int rc = at_session_create(o->output_dir, dir, n);
    if (rc < 0)
        fprintf(stderr, "archtrace: cannot create session directory %s: %s\n",
                o->output_dir ? o->output_dir : "in $TMPDIR", at_errstr(-rc));
    return rc;
}

/* <pid>.seg, so reports list the process like one the shim ran in.
 * Written when the recording starts, while /proc still has its argv,
 * exe and parent; seg_close records the end. */
static void seg_open(const char *dir, const at_py_proc_t *p, uint64_t start_ns)
{
    at_attached_t a = { .pid = p->pid, .version = p->version, .version_hex = p->version_hex,
                        .shared = p->shared, .start_mono_ns = start_ns, .end_mono_ns = start_ns };
    int rc = at_attached_write_seg(dir, &a);
    if (rc < 0)
        fprintf(stderr, "archtrace: cannot write %s/%d.seg: %s\n", dir, (int)p->pid, at_errstr(-rc));
}

static void seg_close(const char *dir, pid_t pid, uint64_t end_ns, int exited)
{
    at_seg_header_t h;
    FILE *f = at_session_open_file(dir, pid, "seg");
    size_t got = f ? fread(&h, sizeof h, 1, f) : 0;
    if (f)
        fclose(f);
    if (got != 1 || h.magic != AT_SEG_MAGIC || h.origin != AT_SEG_ORIGIN_ATTACHED)
        return;                       /* seg_open said why */
    h.end_mono_ns = end_ns > h.start_mono_ns ? end_ns : h.start_mono_ns;
    if (exited)
        h.state = AT_SEG_EXITED;
    int ok = (f = at_session_create_file(dir, pid, "seg")) != NULL;
    ok = ok && fwrite(&h, sizeof h, 1, f) == 1;
    if (f && fclose(f) != 0)
        ok = 0;
    if (!ok)
        fprintf(stderr, "archtrace: cannot update %s/%d.seg: %s\n", dir, (int)pid, strerror(errno));
}

static int save_session(at_target_t *t, const at_options_t *o, const char *dir)
{
    int rc;
    at_target_finish(t, o->rate_hz);
    if ((rc = at_stacks_save(t->stacks, dir)) < 0)
        fprintf(stderr, "archtrace: cannot write %s/%d.stacks: %s\n", dir, (int)t->proc.pid, at_errstr(-rc));
    return rc;
}

/* Render the saved session, then drop it unless -o kept it. */
static int report_and_clean(const char *dir, const at_options_t *o)
{
    int rc = at_report_render(dir, o, -1);
    if (!o->output_dir)
        at_session_remove(dir);
    return rc < 0 ? AT_EXIT_FAILED : 0;
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
    uint64_t deadline = at_now_ns() + ATTACH_WAIT_NS;
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
    uint64_t end = deadline_ns(o), events = 0;
    at_progress_init(&progress);
    while (!record_stop && (!end || at_now_ns() < end)) {
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
    if (create_session(o, dir, sizeof dir) < 0)
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
    meta_start(dir, o->pid, &meta);
    if (at_py_proc_open(&proc, o->pid, NULL, 0) == 0)   /* at_bpf_start checked it */
        seg_open(dir, &proc, at_now_ns());
    if (!o->quiet)
        announce(o);
    catch_stop_signals(&old_int, &old_term);
    int exited = poll_until_done(b, o);
    restore_stop_signals(&old_int, &old_term);
    seg_close(dir, o->pid, at_now_ns(), exited);
    meta_end(dir, &meta, (double)(at_now_ns() - t0) / 1e9);
    int rc = at_bpf_stop(b);
    if (rc < 0) {
        fprintf(stderr, "archtrace: cannot write the eBPF recording into %s: %s\n", dir, at_errstr(-rc));
        if (!o->output_dir)
            at_session_remove(dir);
        return AT_EXIT_FAILED;
    }
    return report_and_clean(dir, o);
}

/* ---- record (ptrace sampler) ---------------------------------------------------- */

int at_cmd_record(const at_options_t *o)
{
    struct sigaction old_int, old_term;
    char dir[PATH_MAX] = "";
    at_target_t *t;
    if (o->bpf)
        return record_bpf(o);
    int rc = at_cmd_open_target(o, &t);
    if (rc)
        return rc;
    if (create_session(o, dir, sizeof dir) < 0) {
        at_target_free(t);
        return AT_EXIT_FAILED;
    }
    at_meta_t meta;
    uint64_t t0 = at_now_ns();
    meta_start(dir, o->pid, &meta);
    seg_open(dir, &t->proc, t0);
    catch_stop_signals(&old_int, &old_term);
    sample_until_done(t, o);
    restore_stop_signals(&old_int, &old_term);
    seg_close(dir, t->proc.pid, at_now_ns(), t->gone);
    meta_end(dir, &meta, (double)(at_now_ns() - t0) / 1e9);
    rc = save_session(t, o, dir);
    at_target_free(t);
    if (rc < 0) {
        if (!o->output_dir && dir[0])
            at_session_remove(dir);
        return AT_EXIT_FAILED;
    }
    return report_and_clean(dir, o);
}
