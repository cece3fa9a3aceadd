/* SPDX-License-Identifier: MIT */
/* run.c - `archtrace [run] COMMAND`: launch it under the shim, forward
 * termination signals, sample it, wait, then render the report. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include "cli/run.h"
#include "cli/fail_if.h"
#include "remote/reap.h"
#include "remote/sampler.h"
#include "report/report.h"
#include "session/launch.h"

static volatile sig_atomic_t child_pid;
static volatile sig_atomic_t pending_sig;   /* came before the child was there */

static void forward_signal(int sig)
{
    if (child_pid > 0)
        kill((pid_t)child_pid, sig);
    else
        pending_sig = sig;
}

/* The command's exit status.  With --native the sampler thread ptraces
 * it meanwhile: a plain waitpid() here would take its ptrace stops, so
 * at_reap_wait_exit leaves those to it (see reap.h). */
static int wait_status(pid_t pid)
{
    int st = 0;
    int rc = at_reap_wait_exit(pid, &st);
    if (rc < 0) {
        fprintf(stderr, "archtrace: cannot wait for process %d: %s\n", (int)pid, strerror(-rc));
        return AT_EXIT_FAILED;
    }
    return at_launch_exit_status(st);
}

static void install_signal_forwarding(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = forward_signal;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    /* Ctrl-C reaches the whole foreground group: the command decides. */
    signal(SIGINT, SIG_IGN);
    signal(SIGQUIT, SIG_IGN);
}

/* -q with no --json, --format or --out asks for nothing: reading back a
 * session only to discard it would cost a short command milliseconds (the
 * feature files are megabytes of tables).  Kept with -o, it can be
 * rendered later by `archtrace report`. */
static int report_wanted(const at_options_t *o)
{
    return !o->quiet || o->json_file || o->format != AT_FMT_TEXT || o->out_file || o->n_fail_if;
}

int at_cmd_run(const at_options_t *o)
{
    at_launch_t c;
    /* before the command starts: a Ctrl-C once it runs (it may print
     * "ready" within milliseconds) is the command's to take, never ours;
     * the child gets the dispositions archtrace was started with */
    install_signal_forwarding();
    int rc = at_launch_start(o, "run", -1, &c);
    if (rc)
        return rc;
    child_pid = c.pid;
    if (pending_sig)
        kill(c.pid, pending_sig);
    at_reap_watch(c.pid);
    at_sampler_t *sampler = NULL;
    if (!o->no_sample)
        sampler = at_sampler_start(c.pid, c.dir, o);
    int status = wait_status(c.pid);
    if (sampler)
        at_sampler_stop(sampler);
    at_reap_watch(0);
    at_launch_close(&c, status);
    if (report_wanted(o))
        at_report_render(c.dir, o, status);
    status = at_fail_if_status(o, c.dir, status);
    at_launch_cleanup(o, &c);
    return status;
}
