/* SPDX-License-Identifier: MIT */
/* launch.c - start a command with the shim preloaded and a new session to
 * write into (see launch.h).
 *
 * Exec failures travel back over a close-on-exec pipe, so 126/127 are
 * archtrace's verdict and never confused with the command's own status.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "out/textout.h"
#include "session/launch.h"
#include "session/meta.h"
#include "session/session.h"

int at_find_shim(char *out, size_t size)
{
    const char *env = getenv("ARCHTRACE_SHIM");
    if (env && *env) {
        snprintf(out, size, "%s", env);
        return access(out, R_OK) == 0 ? 0 : -ENOENT;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return -ENOENT;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    *slash = '\0';
    const char *candidates[] = { "%s/libarchtrace.so", "%s/../lib/archtrace/libarchtrace.so" };
    for (size_t i = 0; i < 2; i++) {
        snprintf(out, size, candidates[i], exe);
        if (access(out, R_OK) == 0)
            return 0;
    }
    return -ENOENT;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#ifdef __SANITIZE_ADDRESS__
#include <dlfcn.h>
extern void __asan_init(void);

/* An ASan-built shim cannot load unless the ASan runtime comes first in
 * the target: put the runtime this archtrace was linked with in front,
 * and keep CPython's deliberate leaks at exit out of the verdict. */
static const char *sanitizer_preload(void)
{
    Dl_info info;
    if (!dladdr((void *)__asan_init, &info) || !info.dli_fname)
        return "";
    setenv("ASAN_OPTIONS", "detect_leaks=0:abort_on_error=0:exitcode=99", 0);
    return info.dli_fname;
}
#else
static const char *sanitizer_preload(void)
{
    return "";
}
#endif

static int set_child_env(const at_options_t *o, const char *shim, const char *dir)
{
    char features[64] = "";
    if (!o->no_alloc)
        strcat(features, "alloc,");
    if (!o->no_gil)
        strcat(features, "gil,");
    if (!o->no_imports)
        strcat(features, "imports,");
    char preload[PATH_MAX * 2];
    const char *old = getenv("LD_PRELOAD");
    const char *runtime = sanitizer_preload();
    snprintf(preload, sizeof(preload), "%s%s%s%s%s", runtime, *runtime ? " " : "", shim,
             old && *old ? " " : "", old ? old : "");
    char num[32];
    int rc = setenv("LD_PRELOAD", preload, 1) | setenv("ARCHTRACE_SESSION", dir, 1) |
             setenv("ARCHTRACE_FEATURES", features, 1);
    snprintf(num, sizeof(num), "%d", o->alloc_depth);
    rc |= setenv("ARCHTRACE_ALLOC_DEPTH", num, 1);
    snprintf(num, sizeof(num), "%ld", o->alloc_sample);
    rc |= setenv("ARCHTRACE_ALLOC_SAMPLE", num, 1);
    snprintf(num, sizeof(num), "%d", o->top_n);
    rc |= setenv("ARCHTRACE_TOP", num, 1);
    return rc ? -ENOMEM : 0;
}

/* `top` keeps the terminal: the command reads /dev/null and writes to
 * stdio_fd instead (when it is >= 0). */
static void redirect_stdio(int stdio_fd)
{
    if (stdio_fd < 0)
        return;
    int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd >= 0)
        dup2(null_fd, STDIN_FILENO);
    dup2(stdio_fd, STDOUT_FILENO);
    dup2(stdio_fd, STDERR_FILENO);
}

/* The signals archtrace ignores or catches while the command runs (run:
 * SIGINT, SIGQUIT; top: SIGPIPE too), and whether each was ignored when
 * archtrace started.  An ignored signal stays ignored across exec, so
 * the command must get exactly what archtrace was given: `nohup`, or a
 * script's `cmd &`, starts it with SIGINT ignored, and a default put back
 * there would let a Ctrl-C meant for the shell kill it. */
static const int passed_signals[] = { SIGINT, SIGQUIT, SIGPIPE, SIGTERM, SIGHUP, SIGWINCH };
#define N_PASSED (sizeof(passed_signals) / sizeof(passed_signals[0]))
static signed char ignored_at_start[N_PASSED]; /* 1: SIG_IGN when archtrace started */

void at_launch_note_signals(void)
{
    for (size_t i = 0; i < N_PASSED; i++) {
        struct sigaction sa;
        ignored_at_start[i] = sigaction(passed_signals[i], NULL, &sa) == 0 && sa.sa_handler == SIG_IGN ? 1 : 0;
    }
}

/* In the child, before exec: what archtrace was started with (handlers
 * would be reset by exec anyway; SIG_IGN would not). */
static void give_back_signals(void)
{
    for (size_t i = 0; i < N_PASSED; i++)
        signal(passed_signals[i], ignored_at_start[i] == 1 ? SIG_IGN : SIG_DFL);
}

/* In the child: exec, and on failure send errno up the pipe. */
static void exec_child(const at_options_t *o, int err_fd, int stdio_fd)
{
    give_back_signals();
    redirect_stdio(stdio_fd);
    execvp(o->argv[0], o->argv);
    int e = errno;
    if (write(err_fd, &e, sizeof(e)) < 0)
        _exit(AT_EXIT_FAILED);
    _exit(AT_EXIT_FAILED);
}

static int exec_failure_status(const char *cmd, int e)
{
    if (e == ENOENT) {
        fprintf(stderr, "archtrace: %s: command not found\n", cmd);
        return AT_EXIT_NOT_FOUND;
    }
    fprintf(stderr, "archtrace: cannot run %s: %s\n", cmd, strerror(e));
    return AT_EXIT_CANNOT_RUN;
}

int at_launch_exit_status(int st)
{
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return AT_EXIT_FAILED;
}

/* fork + exec with the error pipe; returns the child's pid or a negative
 * exit status (already explained on stderr). */
static pid_t spawn(const at_options_t *o, int stdio_fd)
{
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) < 0)
        return -AT_EXIT_FAILED;
    pid_t pid = fork();
    if (pid < 0) {
        close(pipefd[0]);
        close(pipefd[1]);
        return -AT_EXIT_FAILED;
    }
    if (pid == 0) {
        close(pipefd[0]);
        exec_child(o, pipefd[1], stdio_fd);
    }
    close(pipefd[1]);
    int e = 0;
    ssize_t n;
    while ((n = read(pipefd[0], &e, sizeof(e))) < 0 && errno == EINTR)
        ;
    close(pipefd[0]);
    if (n == (ssize_t)sizeof(e)) {
        waitpid(pid, NULL, 0);
        return -exec_failure_status(o->argv[0], e);
    }
    return pid;
}

static const char *session_error(int rc)
{
    switch (rc) {
    case -ELOOP:
        return "it is a symbolic link (refused: give the real directory)";
    case -EEXIST:
        return "it exists and is not a directory of ours";
    case -ENOTEMPTY:
        return "it exists and is not empty (a session needs a new or empty directory)";
    default:
        return strerror(-rc);
    }
}

/* --json FILE and --out FILE are checked before the command runs: a run
 * whose report cannot be written is a wasted run.  An existing file is
 * opened without truncation; a new one is created and removed again. */
static int probe_writable(const char *path)
{
    if (!path || !strcmp(path, "-"))
        return 0;
    int fd = open(path, O_WRONLY | O_CLOEXEC | O_NONBLOCK);
    int created = 0;
    if (fd < 0 && errno == ENOENT) {
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        created = fd >= 0;
    }
    if (fd < 0 && errno == ENXIO)
        return 0;               /* a FIFO whose reader comes later */
    if (fd < 0) {
        fprintf(stderr, "archtrace: cannot write %s: %s\n", *path ? path : "''", strerror(errno));
        return -1;
    }
    close(fd);
    if (created)
        unlink(path);
    return 0;
}

static int prepare_session(const at_options_t *o, char *dir, size_t size, char *shim, size_t shim_size)
{
    if (at_find_shim(shim, shim_size) < 0) {
        fprintf(stderr, "archtrace: cannot find libarchtrace.so next to the archtrace binary "
                        "(set ARCHTRACE_SHIM)\n");
        return -1;
    }
    if (probe_writable(o->json_file) < 0 || probe_writable(o->out_file) < 0)
        return -1;
    int rc = at_session_create(o->output_dir, dir, size);
    if (rc < 0) {
        fprintf(stderr, "archtrace: cannot create session directory %s: %s\n",
                o->output_dir ? (*o->output_dir ? o->output_dir : "''") : "in $TMPDIR",
                session_error(rc));
        return -1;
    }
    return 0;
}

int at_launch_start(const at_options_t *o, const char *kind, int stdio_fd, at_launch_t *c)
{
    char shim[PATH_MAX];
    memset(c, 0, sizeof(*c));
    if (prepare_session(o, c->dir, sizeof(c->dir), shim, sizeof(shim)) < 0)
        return AT_EXIT_FAILED;
    c->meta.exit_status = -1;
    c->meta.wall_s = -1;
    snprintf(c->meta.kind, sizeof(c->meta.kind), "%s", kind);
    at_meta_set_argv(&c->meta, o->argc, o->argv);
    c->meta.start_realtime_ns = (uint64_t)time(NULL) * 1000000000ull;
    int rc = at_meta_write(c->dir, &c->meta);
    if (rc == 0)
        rc = set_child_env(o, shim, c->dir);
    if (rc < 0) {
        fprintf(stderr, "archtrace: cannot write to session directory %s: %s\n", c->dir, at_errstr(-rc));
        at_launch_cleanup(o, c);
        return AT_EXIT_FAILED;
    }
    c->t0 = now_s();
    pid_t pid = spawn(o, stdio_fd);
    if (pid < 0) {
        at_launch_cleanup(o, c);
        return -pid;
    }
    c->pid = pid;
    return 0;
}

void at_launch_close(at_launch_t *c, int status)
{
    c->meta.root_pid = c->pid;
    c->meta.exit_status = status;
    c->meta.wall_s = now_s() - c->t0;
    c->meta.complete = 1;
    int mrc = at_meta_write(c->dir, &c->meta);
    if (mrc < 0)
        fprintf(stderr, "archtrace: cannot update %s/session.meta: %s: the session will read as "
                        "incomplete\n", c->dir, strerror(-mrc));
}

void at_launch_cleanup(const at_options_t *o, at_launch_t *c)
{
    if (!o->output_dir && c->dir[0])
        at_session_remove_later(c->dir);
}

