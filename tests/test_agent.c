/* SPDX-License-Identifier: MIT */
/* test_agent.c - `archtrace agent` against the real consumers of what it
 * serves: a real Prometheus server (Debian's) scrapes --metrics and is
 * queried through its HTTP API; promtool checks the exposition; `go tool
 * pprof` reads the profiles written to --profiles; a stand-in for
 * Pyroscope's POST /ingest (tests/fixtures/ingest_receiver.py) takes
 * --push.  The watched programs are CPython processes of both 3.11 build
 * shapes with two threads contending for the GIL, one started before the
 * agent and one after, and one that exits while watched. */
#include <criterion/criterion.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testlib.h"

#define GIL_FIXTURE "tests/fixtures/agent_gil.py"

typedef struct agent {
    char *tmp;                /* everything of the test                    */
    pid_t pid;                /* the agent                                 */
    char log[PATH_MAX];       /* its stderr                                */
    char addr[128];           /* where its metrics are: HOST:PORT          */
} agent_t;

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* Grep the agent's log for a line containing text (up to timeout_ms). */
static int log_has(const agent_t *a, const char *text, long timeout_ms)
{
    for (long t = 0;; t += 100) {
        char *out = NULL;
        at_test_shf(&out, NULL, "cat '%s'", a->log);
        int found = out && strstr(out, text);
        free(out);
        if (found || t >= timeout_ms)
            return found;
        sleep_ms(100);
    }
}

static void agent_init(agent_t *a)
{
    memset(a, 0, sizeof *a);
    a->tmp = at_test_tmpdir();
}

/* `archtrace agent --metrics 127.0.0.1:0 ARGS`, TMPDIR in the test's dir
 * (its work directory must be gone at the end); waits for the address. */
static void start_agent(agent_t *a, const char *args)
{
    snprintf(a->log, sizeof a->log, "%s/agent.log", a->tmp);
    char cmd[PATH_MAX * 2];
    snprintf(cmd, sizeof cmd, "TMPDIR=%s/work exec %s agent --metrics 127.0.0.1:0 %s", a->tmp, at_test_archtrace(),
             args);
    at_test_shf(NULL, NULL, "mkdir -p '%s/work'", a->tmp);
    a->pid = at_test_spawn_group(cmd, "/dev/null", a->log);
    cr_assert(log_has(a, "/metrics", 10000), "the agent did not say where its metrics are");
    char *line = NULL;
    at_test_shf(&line, NULL, "sed -n 's|.*metrics at http://\\([^/]*\\)/metrics.*|\\1|p' '%s' | head -1", a->log);
    cr_assert(line && *line, "no address in the agent's log");
    snprintf(a->addr, sizeof a->addr, "%.*s", (int)strcspn(line, "\n"), line);
    free(line);
}

/* SIGINT ends it cleanly: exit 0, its work directory removed. */
static void stop_agent(agent_t *a)
{
    int st = -1;
    kill(a->pid, SIGINT);
    cr_assert_eq(waitpid(a->pid, &st, 0), a->pid, "the agent did not end");
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the agent's exit after SIGINT: status 0x%x", st);
    char *left = NULL;
    at_test_shf(&left, NULL, "ls -A '%s/work'", a->tmp);
    cr_assert(left && !*left, "the agent left its work directory behind: %s", left);
    free(left);
}

static void end_agent(agent_t *a)
{
    at_test_shf(NULL, NULL, "rm -rf '%s'", a->tmp);
    free(a->tmp);
}

/* A GIL workload of one shape for secs; its pid once both threads run. */
static int start_workload(const agent_t *a, const char *shape, const char *name, double secs)
{
    const char *py = at_test_python_or_skip(shape);
    char ready[PATH_MAX], cmd[PATH_MAX * 3];
    snprintf(ready, sizeof ready, "%s/%s.ready", a->tmp, name);
    snprintf(cmd, sizeof cmd, "exec %s %s %s %g", py, GIL_FIXTURE, ready, secs);
    pid_t pid = at_test_spawn_group(cmd, "/dev/null", NULL);
    cr_assert(at_test_wait_file(ready, 15000), "%s workload did not start", shape);
    return (int)pid;
}

static char *scrape(const agent_t *a)
{
    char *out = NULL;
    int rc = at_test_shf(&out, NULL, "curl -sf 'http://%s/metrics'", a->addr);
    cr_assert_eq(rc, 0, "GET /metrics failed (%d)", rc);
    return out;
}

/* The value of the first exposition line starting with prefix, or -1. */
static double metric(const char *text, const char *prefix)
{
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (!strncmp(p, prefix, strlen(prefix))) {
            const char *sp = memrchr(p, ' ', strcspn(p, "\n"));     /* the value ends the line */
            return sp ? strtod(sp + 1, NULL) : -1;
        }
    return -1;
}

static void check_threads(const char *text, int pid, const char *shape, const char *build)
{
    for (int i = 0; i < 2; i++) {
        char want[256];
        snprintf(want, sizeof want, "archtrace_gil_wait_seconds_total{pid=\"%d\",", pid);
        const char *line = strstr(text, want);
        cr_assert(line, "pid %d has GIL waits:\n%s", pid, text);
        size_t len = strcspn(line, "\n");
        snprintf(want, sizeof want, ",python=\"%s", at_test_shape_version(shape));
        cr_assert(memmem(line, len, want, strlen(want)), "pid %d: its Python version: %.*s", pid, (int)len, line);
        snprintf(want, sizeof want, ",build=\"%s\",", build);
        cr_assert(memmem(line, len, want, strlen(want)), "pid %d is a %s build: %.*s", pid, build, (int)len, line);
        snprintf(want, sizeof want, "archtrace_gil_wait_seconds_total{pid=\"%d\",", pid);
        char name[64];
        snprintf(name, sizeof name, ",thread=\"spinner-%d\"} ", i);
        int found = 0;
        for (const char *p = text; (p = strstr(p, want)); p += strlen(want)) {
            const char *at = memmem(p, strcspn(p, "\n"), name, strlen(name));
            found |= at && strtod(at + strlen(name), NULL) > 0;
        }
        cr_assert(found, "pid %d: spinner-%d by name, with waits > 0:\n%s", pid, i, text);
    }
}

/* ---- Prometheus ------------------------------------------------------------- */

typedef struct prom {
    pid_t pid;
    int port;
} prom_t;

static int free_port(void)
{
    char *out = NULL;
    at_test_shf(&out, NULL, "python3 -c 'import socket; s=socket.socket(); s.bind((\"127.0.0.1\", 0)); "
                            "print(s.getsockname()[1])'");
    int port = out ? atoi(out) : 0;
    free(out);
    return port;
}

static void start_prometheus(prom_t *p, const agent_t *a)
{
    if (at_test_shf(NULL, NULL, "command -v prometheus >/dev/null") != 0)
        cr_skip_test("no prometheus here (make deps installs Debian's)");
    char conf[PATH_MAX], cmd[PATH_MAX * 3];
    snprintf(conf, sizeof conf, "%s/prometheus.yml", a->tmp);
    FILE *f = fopen(conf, "w");
    cr_assert(f, "cannot write %s", conf);
    fprintf(f, "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: archtrace\n"
               "    static_configs:\n      - targets: ['%s']\n", a->addr);
    fclose(f);
    p->port = free_port();
    snprintf(cmd, sizeof cmd, "exec prometheus --config.file=%s --storage.tsdb.path=%s/tsdb "
             "--web.listen-address=127.0.0.1:%d", conf, a->tmp, p->port);
    p->pid = at_test_spawn_group(cmd, "/dev/null", NULL);
}

/* A PromQL query's result vector as "LABEL=VALUE ..." pairs, by the label. */
static char *promql(const prom_t *p, const char *query, const char *label)
{
    char *out = NULL;
    at_test_shf(&out, NULL, "curl -sf --get 'http://127.0.0.1:%d/api/v1/query' --data-urlencode 'query=%s' | "
                "python3 -c 'import json,sys; r=json.load(sys.stdin)[\"data\"][\"result\"]; "
                "print(\" \".join(\"%%s=%%s\" %% (x[\"metric\"].get(\"%s\", \"\"), x[\"value\"][1]) for x in r))'",
                p->port, query, label);
    return out;
}


/* Poll a PromQL query until want() likes its result (up to 30 s). */
static char *promql_until(const prom_t *p, const char *query, const char *label, int (*want)(const char *, void *),
                          void *ctx)
{
    char *r = NULL;
    for (int i = 0; i < 150; i++) {
        free(r);
        r = promql(p, query, label);
        if (r && want(r, ctx))
            return r;
        sleep_ms(200);
    }
    return r;
}

typedef struct two_pids {
    int a, b;
} two_pids_t;

/* "PID=VALUE" for both pids, each value > 0. */
static int both_waited(const char *r, void *ctx)
{
    two_pids_t *t = ctx;
    char a[32], b[32];
    snprintf(a, sizeof a, "%d=", t->a);
    snprintf(b, sizeof b, "%d=", t->b);
    const char *x = strstr(r, a), *y = strstr(r, b);
    return x && y && strtod(x + strlen(a), NULL) > 0 && strtod(y + strlen(b), NULL) > 0;
}

/* The profiles matching glob, merged by `go tool pprof` (as it merges
 * several files): CPU samples in spin(), labelled by thread name.  (The
 * last of a killed process may hold a sample or two of its exit alone.) */
static void check_profile(const char *glob)
{
    char *files = NULL, *top = NULL, *tags = NULL;
    at_test_shf(&files, NULL, "ls %s 2>/dev/null | tr '\\n' ' '", glob);
    cr_assert(files && *files, "no profile %s", glob);
    if (at_test_shf(NULL, NULL, "command -v go >/dev/null") != 0) {
        free(files);
        return;                                   /* the files are there; no reader here */
    }
    at_test_shf(&top, NULL, "go tool pprof -top %s 2>/dev/null", files);
    at_test_shf(&tags, NULL, "go tool pprof -tags %s 2>/dev/null", files);
    cr_assert(top && strstr(top, "Type: cpu") && strstr(top, " spin"), "%s: go tool pprof shows spin:\n%s", files, top);
    cr_assert(tags && strstr(tags, "spinner-"), "%s: samples labelled by thread name:\n%s", files, tags);
    free(files), free(top), free(tags);
}

Test(agent, scraped_by_prometheus_and_profiles_for_pprof, .timeout = 150)
{
    agent_t a;
    agent_init(&a);
    int early = start_workload(&a, "static", "early", 60);   /* running before the agent */
    char args[PATH_MAX];
    snprintf(args, sizeof args, "--profiles %s/profiles --interval 1", a.tmp);
    start_agent(&a, args);
    int late = start_workload(&a, "shared", "late", 60);     /* started after it */
    /* and the newest CPython here, when there is one */
    const char *newer = at_test_python("3.13") ? "3.13" : at_test_python("3.12") ? "3.12" : NULL;
    int newest = newer ? start_workload(&a, newer, "newer", 60) : 0;
    char plus[64];
    snprintf(plus, sizeof plus, "+ process %d ", early);
    cr_assert(log_has(&a, plus, 10000), "the agent did not attach to %d", early);
    snprintf(plus, sizeof plus, "+ process %d ", late);
    cr_assert(log_has(&a, plus, 10000), "the agent did not attach to %d, started after it", late);
    snprintf(plus, sizeof plus, "+ process %d ", newest);
    cr_assert(!newest || log_has(&a, plus, 10000), "the agent did not attach to %d (%s)", newest, newer);
    sleep_ms(1500);

    /* the exposition, as promtool reads it, with both processes' threads */
    char *text = scrape(&a), *err = NULL, path[PATH_MAX];
    snprintf(path, sizeof path, "%s/metrics.txt", a.tmp);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    int rc = at_test_shf(NULL, &err, "promtool check metrics < '%s'", path);
    cr_assert_eq(rc, 0, "promtool check metrics: %s", err);
    check_threads(text, early, "static", "static");
    check_threads(text, late, "shared", "shared");
    if (newest)
        check_threads(text, newest, newer, "shared");
    cr_assert_geq(metric(text, "archtrace_agent_processes_watched "), 2, "two processes watched");
    free(text), free(err);

    /* a real Prometheus scrapes it and answers PromQL about it */
    prom_t p;
    start_prometheus(&p, &a);
    two_pids_t both = { early, late };
    char *r = promql_until(&p, "sum by (pid) (archtrace_gil_wait_seconds_total)", "pid", both_waited, &both);
    cr_assert(r && both_waited(r, &both), "Prometheus has both processes' GIL waits: %s", r);
    free(r);
    kill(-p.pid, SIGKILL);

    /* one exits: its series go, the agent counts it */
    kill(late, SIGKILL);
    snprintf(plus, sizeof plus, "- process %d exited", late);
    cr_assert(log_has(&a, plus, 5000), "the agent did not see %d exit", late);
    text = scrape(&a);
    snprintf(plus, sizeof plus, "pid=\"%d\"", late);
    cr_assert(!strstr(text, plus), "series of the exited process are gone");
    cr_assert_geq(metric(text, "archtrace_agent_processes_exited_total "), 1, "its exit counted");
    free(text);

    snprintf(path, sizeof path, "%s/profiles/*-%d-*.pb.gz", a.tmp, early);
    check_profile(path);
    snprintf(path, sizeof path, "%s/profiles/*-%d-*.pb.gz", a.tmp, late);
    check_profile(path);                   /* its last partial profile too */
    stop_agent(&a);
    kill(early, SIGKILL);
    if (newest)
        kill(newest, SIGKILL);
    end_agent(&a);
}

/* ---- host-wide probes ------------------------------------------------------------ */

/* The value of `name{pid="PID",...} V` summed over its series of pid. */
static double pid_sum(const char *text, const char *name, int pid)
{
    char want[256];
    double sum = 0;
    snprintf(want, sizeof want, "%s{pid=\"%d\",", name, pid);
    for (const char *p = text; (p = strstr(p, want)); p += strlen(want)) {
        const char *sp = memrchr(p, ' ', strcspn(p, "\n"));
        sum += sp ? strtod(sp + 1, NULL) : 0;
    }
    return sum;
}

/* Two processes of one binary share its probes (one set, uprobes on
 * every process that maps it) and are still told apart: each has its
 * own threads' GIL waits; when one exits the other goes on being
 * counted; the agent lets go of everything within seconds. */
Test(agent, processes_of_one_binary_share_its_probes, .timeout = 90)
{
    agent_t a;
    agent_init(&a);
    int one = start_workload(&a, "static", "one", 60);
    start_agent(&a, "");
    int two = start_workload(&a, "static", "two", 60);   /* joins the set made for one */
    int other = start_workload(&a, "shared", "other", 60);
    char plus[64];
    int pids[] = { one, two, other };
    for (int i = 0; i < 3; i++) {
        snprintf(plus, sizeof plus, "+ process %d ", pids[i]);
        cr_assert(log_has(&a, plus, 10000), "the agent did not attach to %d", pids[i]);
    }
    sleep_ms(1500);
    char *text = scrape(&a);
    check_threads(text, one, "static", "static");
    check_threads(text, two, "static", "static");
    check_threads(text, other, "shared", "shared");
    double sets = metric(text, "archtrace_agent_probe_sets "), watched = metric(text, "archtrace_agent_processes_watched ");
    cr_assert(sets >= 2 && sets <= watched - 1, "one set per binary: %g sets for %g processes", sets, watched);
    free(text);

    kill(one, SIGKILL);
    snprintf(plus, sizeof plus, "- process %d exited", one);
    cr_assert(log_has(&a, plus, 5000), "the agent did not see %d exit", one);
    text = scrape(&a);
    double waited = pid_sum(text, "archtrace_gil_wait_seconds_total", two);
    double samples = pid_sum(text, "archtrace_samples_total", two);
    free(text);
    sleep_ms(1500);
    text = scrape(&a);
    cr_assert_gt(pid_sum(text, "archtrace_gil_wait_seconds_total", two), waited,
                 "%d's GIL waits still counted after %d (same binary) exited", two, one);
    cr_assert_gt(pid_sum(text, "archtrace_samples_total", two), samples, "%d still sampled", two);
    snprintf(plus, sizeof plus, "pid=\"%d\"", one);
    cr_assert(!strstr(text, plus), "series of the exited process are gone");
    free(text);

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    stop_agent(&a);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    cr_assert_lt(secs, 20, "the agent took %.1f s to let go of its probes and exit", secs);
    kill(two, SIGKILL);
    kill(other, SIGKILL);
    end_agent(&a);
}

/* ---- --push --------------------------------------------------------------------- */

Test(agent, profiles_pushed_to_an_ingest_endpoint, .timeout = 90)
{
    agent_t a;
    agent_init(&a);
    char recv[PATH_MAX - 64], cmd[PATH_MAX * 2], portfile[PATH_MAX];
    snprintf(recv, sizeof recv, "%s/ingest", a.tmp);
    snprintf(portfile, sizeof portfile, "%s/port", recv);
    at_test_shf(NULL, NULL, "mkdir -p '%s'", recv);
    snprintf(cmd, sizeof cmd, "exec python3 tests/fixtures/ingest_receiver.py %s", recv);
    pid_t server = at_test_spawn_group(cmd, "/dev/null", NULL);
    cr_assert(at_test_wait_file(portfile, 10000), "the receiver did not start");
    char *port = NULL;
    at_test_shf(&port, NULL, "cat '%s'", portfile);
    int pid = start_workload(&a, "static", "pushed", 60);
    char args[256];
    snprintf(args, sizeof args, "--push http://127.0.0.1:%d --interval 1", atoi(port));
    start_agent(&a, args);
    char second[PATH_MAX];
    snprintf(second, sizeof second, "%s/2.pb.gz", recv);
    cr_assert(at_test_wait_file(second, 20000), "two profiles were not pushed in 20 s");
    /* the agent watches the whole host (the receiver is Python too):
     * find our process's pushes among them */
    char *query = NULL, *errors = NULL, want[128], mine[PATH_MAX];
    snprintf(want, sizeof want, "archtrace.python{pid=%d,comm=", pid);
    for (int i = 0; i < 100 && (!query || !strstr(query, want)); i++) {
        free(query);
        query = NULL;
        sleep_ms(200);
        at_test_shf(&query, NULL, "cd '%s' && for q in *.query; do python3 -c 'import sys, urllib.parse as u; "
                                  "q=u.parse_qs(open(sys.argv[1]).read()); print(sys.argv[1], q[\"name\"][0], "
                                  "int(q[\"until\"][0]) >= int(q[\"from\"][0]) > 1.7e9, q[\"format\"][0])' $q; done",
                    recv);
    }
    const char *line = query ? strstr(query, want) : NULL;
    cr_assert(line, "no push of process %d: %s", pid, query);
    while (line > query && line[-1] != '\n')
        line--;
    size_t len = strcspn(line, "\n");
    cr_assert(memmem(line, len, ",python=3.11.", 13) && memmem(line, len, "} True pprof", 12),
              "the ingest query: %.*s", (int)len, line);
    snprintf(mine, sizeof mine, "%s/%.*s.pb.gz", recv, (int)strcspn(line, "."), line);
    at_test_shf(&errors, NULL, "cat '%s/errors' 2>/dev/null", recv);
    cr_assert(!errors || !*errors, "requests the receiver refused: %s", errors);
    check_profile(mine);
    stop_agent(&a);
    kill(pid, SIGKILL);
    kill(-server, SIGKILL);
    free(port), free(query), free(errors);
    end_agent(&a);
}


/* ---- the size bound of --profiles ------------------------------------------------ */

Test(agent, profiles_kept_under_their_bound, .timeout = 60)
{
    agent_t a;
    agent_init(&a);
    int pid = start_workload(&a, "static", "bounded", 60);
    /* 2 MB of old profiles: past --profiles-max 1 the oldest go first */
    at_test_shf(NULL, NULL, "mkdir -p '%s/profiles' && cd '%s/profiles' && head -c 1200000 /dev/zero > "
                            "old-1-20000101T000000Z.pb.gz && head -c 900000 /dev/zero > old-2-20000101T000000Z.pb.gz && "
                            "touch -d 2000-01-01 old-1-*.pb.gz && touch -d 2000-01-02 old-2-*.pb.gz && "
                            "echo keep > notes.txt", a.tmp, a.tmp);
    char args[PATH_MAX], old1[PATH_MAX], old2[PATH_MAX], notes[PATH_MAX];
    snprintf(args, sizeof args, "--profiles %s/profiles --profiles-max 1 --interval 0.5", a.tmp);
    snprintf(old1, sizeof old1, "%s/profiles/old-1-20000101T000000Z.pb.gz", a.tmp);
    snprintf(old2, sizeof old2, "%s/profiles/old-2-20000101T000000Z.pb.gz", a.tmp);
    snprintf(notes, sizeof notes, "%s/profiles/notes.txt", a.tmp);
    start_agent(&a, args);
    for (int i = 0; i < 100 && access(old1, F_OK) == 0; i++)
        sleep_ms(100);
    cr_assert_neq(access(old1, F_OK), 0, "the oldest profile was not removed");
    cr_assert_eq(access(old2, F_OK), 0, "the next one fits under 1 MB and stays");
    cr_assert_eq(access(notes, F_OK), 0, "files that are not profiles are never touched");
    char *text = scrape(&a);
    cr_assert_geq(metric(text, "archtrace_agent_profiles_removed_total "), 1, "the removal is counted");
    free(text);
    stop_agent(&a);
    kill(pid, SIGKILL);
    end_agent(&a);
}

/* ---- refusals ------------------------------------------------------------------ */

Test(agent, refusals_say_why, .timeout = 30)
{
    static const struct { const char *args, *why; } bad[] = {
        { "-p 1", "no -p PID" },
        { "--metrics nonsense", "--metrics nonsense" },
        { "--push ftp://example.org", "http:// or https://" },
        { "--interval 0", "invalid --interval" },
        { "--profiles-max 0", "invalid --profiles-max" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char *err = NULL;
        int rc = at_test_shf(NULL, &err, "%s agent %s -d 1", at_test_archtrace(), bad[i].args);
        cr_expect(rc == 125 && err && strstr(err, bad[i].why), "agent %s: want 125 and '%s', got %d: %s",
                  bad[i].args, bad[i].why, rc, err);
        free(err);
    }
    agent_t a;
    agent_init(&a);
    start_agent(&a, "");
    char *err = NULL;
    int rc = at_test_shf(NULL, &err, "%s agent --metrics %s -d 1", at_test_archtrace(), a.addr);
    cr_expect(rc == 125 && err && strstr(err, "cannot listen"), "a port in use: want 125, got %d: %s", rc, err);
    free(err);
    stop_agent(&a);
    end_agent(&a);
}

TestSuite(agent, .fini = at_test_kill_groups);
