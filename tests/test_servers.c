/* SPDX-License-Identifier: MIT */
/* test_servers.c - an ASGI server under load (issue 25): lab 15's FastAPI
 * app served by uvicorn, on both build shapes, while a client sends
 * requests over keep-alive connections (tests/fixtures/http_client.py:
 * POST /echo and GET /health in turn, every answer checked).
 *   - started under `archtrace run`: ~2000 requests, none fails, and the
 *     report has the request handlers' frames in its samples and the
 *     server's imports;
 *   - started without archtrace: `-p PID dump`, `record -d` and `record
 *     --bpf -d` while requests flow: none fails, and each shows the
 *     handlers' frames (the eBPF one its GIL and sampling data, as in
 *     test_record_bpf.c). */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "testlib.h"

#define CLIENT   "tests/fixtures/http_client.py"
#define REQUESTS 2000
#define CONNS    4
#define WAIT_S   60

/* Samples whose stack holds one of lab 15's handlers (its app.py's echo
 * and health endpoints, called per request). */
#define HANDLER_SAMPLES "sum(s['count'] for s in d['processes'][0]['samples']['stacks'] " \
                        "if any('lab15/app.py' in f and f.split(' (')[0].rsplit('.', 1)[-1] " \
                        "in ('echo', 'health') for f in s['frames']))"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The venv python of a shape (it has lab 15's packages), or skip. */
static const char *venv_python(const char *shape)
{
    at_test_python_or_skip(shape);
    static char path[2][PATH_MAX];
    char *p = path[strcmp(shape, "static") != 0];
    snprintf(p, PATH_MAX, ".venv/%s/bin/python", shape);
    if (access(p, X_OK) != 0 || at_test_shf(NULL, NULL, "%s -c 'import fastapi, uvicorn'", p) != 0)
        cr_skip_test("%s has no fastapi/uvicorn (make venvs)", p);
    return p;
}

/* A port that was free a moment ago. */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    cr_assert(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
              getsockname(fd, (struct sockaddr *)&a, &len) == 0, "a free port");
    close(fd);
    return ntohs(a.sin_port);
}

static int port_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

/* `sh -c cmd` in the background, stdout and stderr into <dir>/<name>. */
static pid_t spawn_sh(const char *dir, const char *name, const char *cmd)
{
    char log[PATH_MAX];
    snprintf(log, sizeof log, "%s/%s", dir, name);
    return at_test_spawn_group(cmd, log, NULL);
}

/* Exit status of pid (128+N for a signal), killing it after WAIT_S. */
static int reap(pid_t pid)
{
    double end = now_s() + WAIT_S;
    int st = 0;
    while (waitpid(pid, &st, WNOHANG) == 0) {
        if (now_s() > end) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        usleep(10000);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static char *slurp(const char *dir, const char *name)
{
    char *out = NULL;
    at_test_shf(&out, NULL, "cat %s/%s", dir, name);
    return out;
}

/* Wait until the server listens on port (it logs into <dir>/<log>). */
static void wait_listening(pid_t server, int port, const char *dir, const char *log)
{
    double end = now_s() + WAIT_S;
    while (!port_open(port)) {
        if (now_s() > end || waitpid(server, NULL, WNOHANG) != 0) {
            char *text = slurp(dir, log);
            cr_assert_fail("the server never listened on %d: %.3000s", port, text);
        }
        usleep(20000);
    }
}

/* The server stops on SIGTERM (run forwards it): uvicorn shuts down,
 * then raises the signal again (0.29+), so its status is 128+15 (0 for
 * an older uvicorn); under run that status passes through. */
static void stop_server(pid_t server, const char *dir, const char *log)
{
    kill(server, SIGTERM);
    int rc = reap(server);
    char *text = slurp(dir, log);
    cr_assert(rc == 128 + SIGTERM || rc == 0, "the server stops on SIGTERM, got %d: %.3000s", rc, text);
    cr_assert(strstr(text, "Application shutdown complete"), "after a clean shutdown: %.3000s", text);
    free(text);
}

/* Wait until the server has logged `what` (uvicorn logs each request). */
static void wait_logged(const char *dir, const char *log, const char *what)
{
    double end = now_s() + WAIT_S;
    for (;;) {
        char *text = slurp(dir, log);
        int seen = strstr(text, what) != NULL;
        cr_assert(seen || now_s() < end, "the server never logged '%s': %.3000s", what, text);
        free(text);
        if (seen)
            return;
        usleep(20000);
    }
}

static void assert_client_ok(int rc, const char *out, long want)
{
    cr_assert_eq(rc, 0, "the client saw no failure, exit %d: %s", rc, out);
    long ok = -1, failed = -1;
    cr_assert(sscanf(out, "ok %ld failed %ld", &ok, &failed) == 2, "client's counts: %s", out);
    cr_assert(failed == 0 && (want ? ok == want : ok > 0), "requests: %ld ok, %ld failed (want %ld): %s", ok,
              failed, want, out);
}

/* ---- under archtrace run --------------------------------------------------------- */

static void check_run(const char *shape)
{
    const char *py = venv_python(shape);
    char *dir = at_test_tmpdir(), *out, cmd[3 * PATH_MAX], json[PATH_MAX];
    int port = free_port();
    snprintf(json, sizeof json, "%s/r.json", dir);
    snprintf(cmd, sizeof cmd, "exec %s -q --json %s -o %s/s %s -m labs.lab15 --port %d",
             at_test_archtrace(), json, dir, py, port);
    pid_t at = spawn_sh(dir, "server.log", cmd);
    wait_listening(at, port, dir, "server.log");
    int rc = at_test_shf(&out, NULL, "python3 " CLIENT " %d %d %d", port, CONNS, REQUESTS);
    assert_client_ok(rc, out, REQUESTS);
    free(out);
    stop_server(at, dir, "server.log");
    cr_assert_eq(at_test_json_num(json, "len(d['processes'])"), 1, "%s: uvicorn is one process", shape);
    double handler = at_test_json_num(json, HANDLER_SAMPLES);
    double all = at_test_json_num(json, "d['processes'][0]['samples']['thread_samples']");
    cr_log_info("%s: %.0f of %.0f samples in lab 15's handlers", shape, handler, all);
    cr_assert_geq(handler, 5, "%s: the handlers' frames are sampled: %.0f of %.0f", shape, handler, all);
    cr_assert(at_test_json_num(json, "{'uvicorn', 'fastapi', 'labs.lab15.app'} <= "
                                     "{i['module'] for i in d['processes'][0]['imports']}"),
              "%s: the server's imports are listed", shape);
    at_test_shf(NULL, NULL, "rm -rf %s", dir);
    free(dir);
}

TestSuite(servers, .fini = at_test_kill_groups);

Test(servers, lab15_under_run_serves_2000_requests_static, .timeout = 120) { check_run("static"); }
Test(servers, lab15_under_run_serves_2000_requests_shared, .timeout = 120) { check_run("shared"); }

/* ---- attached to from outside ----------------------------------------------------- */

/* `archtrace -p PID dump` DUMPS times, and on until one shows a request
 * being handled: the task uvicorn runs each request in (h11_impl.py's
 * run_asgi, under which the app, FastAPI and lab 15's handlers run).
 * Each dump is one moment, and the server is often between requests.
 * Every dump shows the main thread's whole stack, from runpy (none cut
 * short or unknown: read while the thread runs on, it was torn one time
 * in ~20).  The number of dumps that showed a request. */
#define DUMPS 15
static int dump_until_handler(pid_t pid, const char *shape)
{
    int hits = 0;
    for (int i = 1; i <= 60 && (i <= DUMPS || !hits); i++) {
        char *out, *err;
        int rc = at_test_shf(&out, &err, "%s -p %d dump", at_test_archtrace(), (int)pid);
        cr_assert_eq(rc, 0, "%s: dump %d exits 0: %s", shape, i, err);
        const char *main = strstr(out, "\"MainThread\"");
        cr_assert(main && !strncmp(strchr(main, '\n') + 1, "  File \"<frozen runpy>\"", 23) &&
                  !strstr(out, "[truncated]") && !strstr(out, "[unknown]"),
                  "%s: dump %d shows the main thread's whole stack: %.3000s", shape, i, out);
        int hit = strstr(out, "h11_impl.py") && strstr(out, "run_asgi");
        free(out), free(err);
        hits += hit;
    }
    cr_assert_gt(hits, 0, "%s: no dump of 60 showed a request being handled", shape);
    return hits;
}

static void record(const char *dir, pid_t pid, const char *shape, const char *how)
{
    char json[PATH_MAX], *err;
    snprintf(json, sizeof json, "%s/%s.json", dir, how[0] ? "bpf" : "ptrace");
    int rc = at_test_shf(NULL, &err, "%s -q -p %d record %s --rate 500 -d 1.5 -o %s/%s --json %s",
                         at_test_archtrace(), (int)pid, how, dir, how[0] ? "bpf" : "ptrace", json);
    if (rc == 7 && how[0]) {
        at_test_note("%s: the kernel refuses eBPF here, record --bpf not tried: %s", shape, err);
        free(err);
        return;
    }
    cr_assert_eq(rc, 0, "%s: record %s exits 0, got %d: %s", shape, how, rc, err);
    free(err);
    double handler = at_test_json_num(json, HANDLER_SAMPLES);
    double all = at_test_json_num(json, "d['processes'][0]['samples']['thread_samples']");
    cr_log_info("%s: record %s: %.0f of %.0f samples in the handlers", shape, how, handler, all);
    cr_assert_geq(handler, 3, "%s: record %s samples the handlers: %.0f of %.0f", shape, how, handler, all);
    cr_assert(at_test_json_num(json, "d['processes'][0]['attached']"), "%s: marked attached", shape);
    if (!how[0])
        return;
    /* the eBPF views, as test_record_bpf.c has them: GIL probes on, and
     * uvicorn's one thread never waits for the GIL; on-CPU stacks */
    cr_assert(at_test_json_num(json, "'gil' in d['processes'][0]['bpf']['probes'] and "
                                     "not d['processes'][0]['bpf']['unavailable'] and "
                                     "d['processes'][0]['bpf']['attached_ns'] > 1e9"),
              "%s: record --bpf attached its GIL probes and sampler for the whole -d", shape);
    cr_assert(at_test_json_num(json, "d['processes'][0]['gil']['source'] == 'ebpf' and "
                                     "d['processes'][0]['gil']['wait_ratio'] < 0.05"),
              "%s: a single-threaded server does not wait for the GIL", shape);
    cr_assert(at_test_json_num(json, "d['processes'][0]['bpf']['samples']['with_python'] >= 0.9 * "
                                     "d['processes'][0]['bpf']['samples']['received'] > 0"),
              "%s: the eBPF sampler walked Python frames in its samples", shape);
}

static void check_attached(const char *shape)
{
    const char *py = venv_python(shape);
    char *dir = at_test_tmpdir(), *out, cmd[3 * PATH_MAX];
    int port = free_port();
    snprintf(cmd, sizeof cmd, "exec %s -m labs.lab15 --port %d", py, port);
    pid_t server = spawn_sh(dir, "server.log", cmd);
    wait_listening(server, port, dir, "server.log");
    snprintf(cmd, sizeof cmd, "exec python3 " CLIENT " %d 2 0 %s/stop", port, dir);
    pid_t client = spawn_sh(dir, "client.log", cmd);
    wait_logged(dir, "server.log", "POST /echo");
    int dumps = dump_until_handler(server, shape);
    cr_log_info("%s: %d dumps showed a request", shape, dumps);
    record(dir, server, shape, "");
    record(dir, server, shape, "--bpf");
    at_test_shf(NULL, NULL, "touch %s/stop", dir);
    int rc = reap(client);
    out = slurp(dir, "client.log");
    assert_client_ok(rc, out, 0);
    free(out);
    stop_server(server, dir, "server.log");
    at_test_shf(NULL, NULL, "rm -rf %s", dir);
    free(dir);
}

Test(servers, lab15_attached_dump_record_and_bpf_static, .timeout = 120) { check_attached("static"); }
Test(servers, lab15_attached_dump_record_and_bpf_shared, .timeout = 120) { check_attached("shared"); }
