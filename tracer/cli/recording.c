/* SPDX-License-Identifier: MIT */
/* recording.c - opening a target and the session a recording writes (see recording.h). */
#include "cli/recording.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/fail_if.h"
#include "remote/attached.h"
#include "report/report.h"
#include "segment_format.h"
#include "session/session.h"
#include "out/textout.h"

int at_rec_try_open(pid_t pid, const at_options_t *o, at_target_t **t, char *err, size_t errlen)
{
    uint64_t deadline = at_now_ns() + AT_ATTACH_WAIT_NS;
    int rc;
    err[0] = '\0';
    while ((rc = at_target_open(t, pid, o, err, errlen)) == -EAGAIN && at_now_ns() < deadline) {
        struct timespec ts = { 0, 20000000 };
        nanosleep(&ts, NULL);
    }
    return rc;
}

int at_rec_open_target(const at_options_t *o, at_target_t **t)
{
    char err[512];
    int rc = at_rec_try_open(o->pid, o, t, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "archtrace: %s\n", err[0] ? err : at_errstr(-rc));
        return at_py_proc_exit_status(rc);
    }
    return 0;
}

/* ---- stop signals ---------------------------------------------------------- */

volatile sig_atomic_t at_rec_stop;

static void on_stop_signal(int sig)
{
    (void)sig;
    at_rec_stop = 1;
}

void at_rec_catch_stop(struct sigaction *old_int, struct sigaction *old_term)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal; /* no SA_RESTART: the sleep ends at once */
    sigemptyset(&sa.sa_mask);
    at_rec_stop = 0;
    sigaction(SIGINT, &sa, old_int);
    sigaction(SIGTERM, &sa, old_term);
}

void at_rec_restore_stop(const struct sigaction *old_int, const struct sigaction *old_term)
{
    sigaction(SIGINT, old_int, NULL);
    sigaction(SIGTERM, old_term, NULL);
}

uint64_t at_rec_deadline_ns(const at_options_t *o)
{
    return o->duration_s > 0 ? at_now_ns() + (uint64_t)(o->duration_s * 1e9) : 0;
}

/* ---- the session ----------------------------------------------------------- */

void at_rec_meta_start(const char *dir, pid_t pid, at_meta_t *m)
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

void at_rec_meta_end(const char *dir, at_meta_t *m, double wall_s)
{
    m->complete = 1;
    m->wall_s = wall_s;
    at_meta_write(dir, m);
}

int at_rec_create_session(const at_options_t *o, char *dir, size_t n)
{
    int rc = at_session_create(o->output_dir, dir, n);
    if (rc < 0)
        fprintf(stderr, "archtrace: cannot create session directory %s: %s\n",
                o->output_dir ? o->output_dir : "in $TMPDIR", at_errstr(-rc));
    return rc;
}

/* <pid>.seg, so reports list the process like one the shim ran in.
 * Written when the recording starts, while /proc still has its argv,
 * exe and parent; at_rec_seg_close records the end. */
void at_rec_seg_open(const char *dir, const at_py_proc_t *p, uint64_t start_ns)
{
    at_attached_t a = { .pid = p->pid, .version = p->version, .version_hex = p->version_hex,
                        .shared = p->shared, .start_mono_ns = start_ns, .end_mono_ns = start_ns };
    int rc = at_attached_write_seg(dir, &a);
    if (rc < 0)
        fprintf(stderr, "archtrace: cannot write %s/%d.seg: %s\n", dir, (int)p->pid, at_errstr(-rc));
}

void at_rec_seg_close(const char *dir, pid_t pid, uint64_t end_ns, int exited)
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

int at_rec_save_stacks(at_target_t *t, const at_options_t *o, const char *dir)
{
    int rc;
    at_target_finish(t, o->rate_hz);
    if ((rc = at_stacks_save(t->stacks, dir)) < 0)
        fprintf(stderr, "archtrace: cannot write %s/%d.stacks: %s\n", dir, (int)t->proc.pid, at_errstr(-rc));
    return rc;
}

/* Render the saved session, then drop it unless -o kept it. */
int at_rec_report_and_clean(const char *dir, const at_options_t *o)
{
    int rc = at_report_render(dir, o, -1);
    int status = rc < 0 ? AT_EXIT_FAILED : at_fail_if_status(o, dir, 0);
    if (!o->output_dir)
        at_session_remove(dir);
    return status;
}
