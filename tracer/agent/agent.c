/* SPDX-License-Identifier: MIT */
/* agent.c - `archtrace agent`'s loop (see agent.h).
 *
 * One thread does everything in turn, so nothing is shared: look for new
 * processes (every SCAN_NS), consume every process's probe events, cut the
 * profiles when an interval ends, and wait for a scrape for the rest of
 * a TICK_MS tick.  A scrape reads the probes' maps at that moment.
 */
#include "agent/agent.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "agent/curl_api.h"
#include "agent/http_server.h"
#include "agent/metrics.h"
#include "agent/profiles.h"
#include "agent/watch.h"
#include "out/textout.h"
#include "remote/sampler.h"

#define SCAN_NS  1000000000ull    /* new processes found within a second  */
#define TICK_MS  100              /* events consumed at least this often  */
#define DEFAULT_METRICS "127.0.0.1:9464"

static volatile sig_atomic_t agent_stop;

static void on_stop(int sig)
{
    (void)sig;
    agent_stop = 1;
}

static void catch_stop(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* Each probe set's ring buffer, one per CPython binary, shared by its
 * processes (it was 512 KiB per process).  A sample is 4.6 KiB (256
 * Python frames): read every TICK_MS, 8 MiB holds ~1800 of them, what
 * 180 threads of one binary busy at 100 Hz take in a tick; it is woken
 * early once a quarter full. */
#define AGENT_RING_BYTES (8u << 20)

typedef struct agent {
    const at_options_t *o;    /* the command line, ring size set            */
    at_options_t opts;
    at_watch_t watch;
    at_profiles_t profiles;
    at_http_t http;
    uint64_t scrapes;
    int cutting;                  /* --profiles or --push given            */
} agent_t;

static void metrics_body(FILE *out, void *ctx)
{
    agent_t *a = ctx;
    a->scrapes++;
    at_metrics_write(out, &a->watch, &a->profiles, a->scrapes);
}

/* A process that exits or is let go keeps its last partial profile. */
static void on_gone(void *ctx, at_watched_t *p)
{
    agent_t *a = ctx;
    if (a->cutting)
        at_profiles_cut(&a->profiles, p);
}

static void cut_due(agent_t *a, uint64_t now)
{
    uint64_t every = (uint64_t)(a->o->interval_s * 1e9);
    for (size_t i = 0; a->cutting && i < a->watch.n; i++)
        if (now - a->watch.procs[i].interval_ns >= every)
            at_profiles_cut(&a->profiles, &a->watch.procs[i]);
}

/* Said even under -q (which quiets the line per process): where to look. */
static void announce(const agent_t *a)
{
    fprintf(stderr, "archtrace agent: watching every CPython process of this host with eBPF");
    if (a->http.fd >= 0)
        fprintf(stderr, "; metrics at http://%s/metrics", a->http.addr);
    if (a->o->profiles_dir)
        fprintf(stderr, "; a profile every %g s into %s", a->o->interval_s, a->o->profiles_dir);
    if (a->o->push_url)
        fprintf(stderr, "; pushed to %s", a->o->push_url);
    fprintf(stderr, "\n");
    fflush(stderr);
}

static int set_up(agent_t *a)
{
    char err[512];
    const at_options_t *o = a->o;
    if (o->profiles_dir && mkdir(o->profiles_dir, 0755) < 0 && errno != EEXIST) {
        fprintf(stderr, "archtrace: cannot create --profiles %s: %s\n", o->profiles_dir, at_errstr(errno));
        return AT_EXIT_FAILED;
    }
    if (o->push_url && !at_curl(err, sizeof err)) {         /* said now, not at the first push */
        fprintf(stderr, "archtrace: --push: %s\n", err);
        return AT_EXIT_FAILED;
    }
    if (at_http_listen(&a->http, o->metrics_addr ? o->metrics_addr : DEFAULT_METRICS, err, sizeof err) < 0) {
        fprintf(stderr, "archtrace: %s\n", err);
        return AT_EXIT_FAILED;
    }
    int rc = at_watch_init(&a->watch, o);
    if (rc < 0) {
        fprintf(stderr, "archtrace: cannot create the agent's work directory: %s\n", at_errstr(-rc));
        at_http_close(&a->http);
        return AT_EXIT_FAILED;
    }
    at_profiles_init(&a->profiles, o);
    a->cutting = o->profiles_dir || o->push_url;
    return 0;
}

int at_cmd_agent(const at_options_t *cli)
{
    agent_t a = { .opts = *cli };
    a.opts.bpf_ring_bytes = AGENT_RING_BYTES;
    a.o = &a.opts;
    const at_options_t *o = a.o;
    int rc = set_up(&a);
    if (rc)
        return rc;
    catch_stop();
    announce(&a);
    uint64_t end = o->duration_s > 0 ? at_now_ns() + (uint64_t)(o->duration_s * 1e9) : 0, next_scan = 0;
    while (!agent_stop && (!end || at_now_ns() < end)) {
        uint64_t now = at_now_ns();
        if (now >= next_scan) {
            at_watch_scan(&a.watch);
            next_scan = now + SCAN_NS;
        }
        at_watch_poll(&a.watch, on_gone, &a);
        cut_due(&a, at_now_ns());
        at_http_serve(&a.http, TICK_MS, metrics_body, &a);
    }
    at_watch_end(&a.watch, on_gone, &a);
    at_http_close(&a.http);
    return 0;
}
