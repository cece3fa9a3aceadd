/* SPDX-License-Identifier: MIT */
/* testlib.c - see testlib.h. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "fixtures/testutil.h"
#include "testlib.h"

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return strdup("");
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t n;
    while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len < 2) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
    }
    buf[len] = '\0';
    fclose(f);
    return buf;
}

int at_test_sh(const char *cmd, char **out, char **err)
{
    char *dir = at_test_tmpdir();
    char o[512], e[512];
    snprintf(o, sizeof(o), "%s/out", dir);
    snprintf(e, sizeof(e), "%s/err", dir);
    size_t len = strlen(cmd) + 2 * sizeof(o) + 64;
    char *full = malloc(len);
    snprintf(full, len, "( %s ) >'%s' 2>'%s' </dev/null", cmd, o, e);
    int st = system(full);
    free(full);
    if (out)
        *out = slurp(o);
    if (err)
        *err = slurp(e);
    unlink(o);
    unlink(e);
    rmdir(dir);
    free(dir);
    if (st == -1)
        return -1;
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    return 128 + WTERMSIG(st);
}

int at_test_shf(char **out, char **err, const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    return at_test_sh(cmd, out, err);
}

char *at_test_tmpdir(void)
{
    char tmpl[] = "/tmp/archtrace-test.XXXXXX";
    char *d = mkdtemp(tmpl);
    return d ? strdup(d) : NULL;
}

int at_test_wait_file(const char *path, long timeout_ms)
{
    for (long t = 0; t < timeout_ms && access(path, F_OK) != 0; t += 50) {
        struct timespec ts = { 0, 50000000 };
        nanosleep(&ts, NULL);
    }
    return access(path, F_OK) == 0;
}

int at_test_pid_file(const char *dir, const char *name)
{
    char path[PATH_MAX], *out = NULL;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    cr_assert(at_test_wait_file(path, 15000), "worker %s never started", name);
    at_test_shf(&out, NULL, "cat '%s'", path);
    int pid = out ? atoi(out) : 0;
    free(out);
    cr_assert_gt(pid, 0, "worker %s wrote its pid", name);
    return pid;
}

static char *trim(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == ' '))
        s[--n] = '\0';
    return s;
}

static char *shape_python(const char *shape)
{
    if (!strcmp(shape, "static"))
        return access("/usr/bin/python3.11", X_OK) == 0 ? strdup("/usr/bin/python3.11") : NULL;
    /* the shared-libpython 3.11 first on PATH (pyenv's shim resolves to
     * the real binary through sys.executable) */
    char *out = NULL;
    int rc = at_test_sh("python3.11 -c \"import sys,sysconfig; "
                        "print(sys.executable if sysconfig.get_config_var('Py_ENABLE_SHARED') "
                        "else '')\"", &out, NULL);
    /* Debian's static build also says Py_ENABLE_SHARED: never take it */
    char real[4096];
    if (rc == 0 && out && *trim(out) && realpath(out, real) && !strcmp(real, "/usr/bin/python3.11"))
        rc = 1;
    if (rc != 0 || !out || !*trim(out)) {
        free(out);
        return NULL;
    }
    return out;
}

/* A shape is "static" or "shared" (CPython 3.11's two builds), or a
 * newer minor version, "3.12" or "3.13" (pyenv's shared builds here). */
static int shape_index(const char *shape)
{
    static const char *const shapes[] = { "static", "shared", "3.12", "3.13" };
    for (int i = 0; i < 4; i++)
        if (!strcmp(shape, shapes[i]))
            return i;
    return -1;
}

static char *version_python(const char *ver)
{
    char buf[4096];
    return tu_find_python(ver, NULL, buf, sizeof buf) == 0 ? strdup(buf) : NULL;
}

const char *at_test_python(const char *shape)
{
    static char *cache[4];
    static int done[4];
    int i = shape_index(shape);
    if (i < 0)
        return NULL;
    if (!done[i]) {
        cache[i] = i < 2 ? shape_python(shape) : version_python(shape);
        done[i] = 1;
    }
    return cache[i];
}

char *at_test_json(const char *path, const char *expr)
{
    char *out = NULL;
    int rc = at_test_shf(&out, NULL,
                         "python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); "
                         "print(eval(sys.argv[2]))' '%s' \"%s\"", path, expr);
    if (rc != 0) {
        free(out);
        return NULL;
    }
    return trim(out);
}

const char *at_test_archtrace(void)
{
    static char path[4096];
    const char *env = getenv("ARCHTRACE_BIN");
    if (env && *env)
        return env;
    if (!path[0] && !realpath("build/archtrace", path))
        snprintf(path, sizeof(path), "build/archtrace");
    return path;
}

/* Whether $ARCHTRACE_TEST_SHAPES (a comma-separated list; unset: all)
 * names shape. */
static int shape_wanted(const char *shape)
{
    const char *only = getenv("ARCHTRACE_TEST_SHAPES");
    if (!only || !*only)
        return 1;
    size_t n = strlen(shape);
    for (const char *p = only; *p; p += strcspn(p, ",") + (p[strcspn(p, ",")] == ','))
        if (strncmp(p, shape, n) == 0 && (p[n] == ',' || p[n] == '\0'))
            return 1;
    return 0;
}

const char *at_test_python_or_skip(const char *shape)
{
    if (!shape_wanted(shape))
        cr_skip_test("%s: not in ARCHTRACE_TEST_SHAPES=%s", shape, getenv("ARCHTRACE_TEST_SHAPES"));
    const char *py = at_test_python(shape);
    if (!py && shape_index(shape) >= 2)
        cr_skip_test("no CPython %s on this machine", shape);
    if (!py)
        cr_skip_test("no %s-libpython CPython 3.11 on this machine", shape);
    return py;
}

const char *at_test_shape_version(const char *shape)
{
    int i = shape_index(shape);
    return i == 2 ? "3.12." : i == 3 ? "3.13." : "3.11.";
}

double at_test_json_num(const char *path, const char *expr)
{
    char *s = at_test_json(path, expr);
    cr_assert(s, "evaluating %s over %s", expr, path);
    double v = strcmp(s, "True") == 0 ? 1 : strcmp(s, "False") == 0 ? 0 : strtod(s, NULL);
    free(s);
    return v;
}

void at_test_note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("[NOTE] ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static pid_t spawned_groups[32];
static int nspawned_groups;

static void exec_sh_in_group(const char *cmd, const char *out, const char *err)
{
    setpgid(0, 0);
    int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600), in = open("/dev/null", O_RDONLY);
    int e = !err || !strcmp(err, out) ? o : open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (o < 0 || e < 0 || in < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0 || dup2(in, 0) < 0)
        _exit(126);
    execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
    _exit(127);
}

pid_t at_test_spawn_group(const char *cmd, const char *out, const char *err)
{
    pid_t pid = fork();
    cr_assert_geq(pid, 0, "fork");
    if (pid == 0)
        exec_sh_in_group(cmd, out, err);
    setpgid(pid, pid); /* in both: the group exists before anyone kills it */
    if (nspawned_groups < (int)(sizeof spawned_groups / sizeof *spawned_groups))
        spawned_groups[nspawned_groups++] = pid;
    return pid;
}

void at_test_kill_groups(void)
{
    for (int i = 0; i < nspawned_groups; i++)
        kill(-spawned_groups[i], SIGKILL);
    nspawned_groups = 0;
}

char *at_test_dump(pid_t pid, const char *shape, const char *args)
{
    char *out = NULL, *err = NULL;
    int rc = at_test_shf(&out, &err, "'%s' -p %d dump %s", at_test_archtrace(), (int)pid, args);
    cr_assert_eq(rc, 0, "%s: dump %s exited %d: %s", shape, args, rc, err ? err : "");
    cr_assert(!err || !err[0], "%s: dump %s said on stderr: %s", shape, args, err);
    free(err);
    return out;
}
