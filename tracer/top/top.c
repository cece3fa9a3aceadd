/* SPDX-License-Identifier: MIT */
/* top.c - `archtrace top [-p PID | -- COMMAND]`: the live view (see top.h).
 *
 * One loop on the main thread: wait for a key or the next refresh (1 s),
 * take a snapshot of the model, draw it.  On a terminal the screen is
 * full (alternate screen, raw keys, restored on every way out: q, the
 * command's exit, a signal, a write error); otherwise one log line a
 * second.  A COMMAND is started like `run` starts it, but with its
 * output sent to a scratch file (shown on the last row) so it cannot
 * scribble over the screen.  We stop only what we started: q and Ctrl-C
 * pass SIGINT to the command and wait for it (SIGKILL after a grace
 * period); with -p they only detach.
 */
#include "top/top.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "session/launch.h"
#include "remote/sampler.h"
#include "out/textout.h"

#define REFRESH_NS      1000000000ull  /* one frame a second              */
#define STOP_GRACE_NS   3000000000ull  /* SIGINT, then SIGKILL after this */
#define ATTACH_WAIT_MS  20
#define KEY_CTRL_C      3
#define OUTPUT_TAIL     512

typedef struct top {
    const at_options_t *o;
    at_top_model_t *model;
    at_launch_t child;      /* the COMMAND, when started               */
    int started;               /* we started it                           */
    int exited;                /* it exited (status below)                */
    int status;
    int screen;                /* full-screen mode (stdout is a tty)      */
    int keys;                  /* keys from stdin (a tty too)             */
    int color;
    int paused;
    int quit;                  /* asked to stop                           */
    uint64_t kill_at_ns;       /* SIGKILL the command then (0: not asked) */
    FILE *output;              /* the command's output (screen mode)      */
    int saved_stderr;          /* our stderr while it points at /dev/null */
    at_top_query_t query;
    at_top_snap_t snap;        /* the last frame                          */
} top_t;

static volatile sig_atomic_t pending_signal;  /* the last SIGINT/TERM/HUP   */
static volatile sig_atomic_t signal_from_user; /* sent with kill(), not a tty */
static volatile sig_atomic_t resized;
static struct termios saved_tty;
static int tty_raw;             /* the alternate screen is up              */
static int tty_keys;            /* stdin is in raw mode (saved_tty valid)  */

/* ---- terminal ------------------------------------------------------------ */

static void screen_restore(void)
{
    if (!tty_raw)
        return;
    static const char leave[] = "\033[0m\033[?25h\033[?1049l";
    fflush(stdout);
    ssize_t n = write(STDOUT_FILENO, leave, sizeof leave - 1);
    (void)n; /* a terminal that is gone needs no restoring */
    if (tty_keys)
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
    tty_raw = tty_keys = 0;
}

/* Raw keys (no echo, no line buffering, Ctrl-C as a key so we decide what
 * it stops), the alternate screen, no cursor. */
static int screen_enter(top_t *t)
{
    if (t->keys) {
        struct termios raw;
        if (tcgetattr(STDIN_FILENO, &saved_tty) < 0)
            return -errno;
        raw = saved_tty;
        raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO | ISIG | IEXTEN);
        raw.c_iflag &= ~(tcflag_t)(IXON | ICRNL);
        raw.c_cc[VMIN] = 1;
        raw.c_cc[VTIME] = 0;
        if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw) < 0)
            return -errno;
        tty_keys = 1;
    }
    tty_raw = 1;
    atexit(screen_restore);
    fputs("\033[?1049h\033[?25l\033[2J", stdout);
    fflush(stdout);
    return 0;
}

static void screen_size(int *rows, int *cols)
{
    struct winsize ws;
    *rows = 24;
    *cols = 80;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0) {
        *rows = ws.ws_row;
        *cols = ws.ws_col;
    }
}

/* The feature readers report damaged files on stderr; a file being
 * written can look damaged for a moment.  While the view runs, those
 * lines go nowhere (the panel just keeps its previous numbers). */
static void stderr_silence(top_t *t)
{
    int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    t->saved_stderr = null_fd >= 0 ? fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 0) : -1;
    if (t->saved_stderr >= 0) {
        fflush(stderr);
        dup2(null_fd, STDERR_FILENO);
    }
    if (null_fd >= 0)
        close(null_fd);
}

static void stderr_restore(top_t *t)
{
    if (t->saved_stderr < 0)
        return;
    dup2(t->saved_stderr, STDERR_FILENO);
    close(t->saved_stderr);
    t->saved_stderr = -1;
}

/* ---- signals --------------------------------------------------------------- */

static void on_stop_signal(int sig, siginfo_t *info, void *uc)
{
    (void)uc;
    pending_signal = sig;
    signal_from_user = info && info->si_code == SI_USER;
}

static void on_winch(int sig)
{
    (void)sig;
    resized = 1;
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_stop_signal;
    sa.sa_flags = SA_SIGINFO; /* no SA_RESTART: poll() must wake up */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_winch;
    sigaction(SIGWINCH, &sa, NULL);
    signal(SIGPIPE, SIG_IGN); /* a closed log reader is a write error */
    signal(SIGQUIT, SIG_IGN);
}

/* ---- the command ------------------------------------------------------------- */

static void child_signal(top_t *t, int sig)
{
    if (t->started && !t->exited && t->child.pid > 0)
        kill(t->child.pid, sig);
}

/* q, Ctrl-C: the command gets SIGINT and a grace period. */
static void stop_command(top_t *t)
{
    if (!t->started || t->exited) {
        t->quit = 1;
        return;
    }
    if (!t->kill_at_ns) {
        child_signal(t, SIGINT);
        t->kill_at_ns = at_now_ns() + STOP_GRACE_NS;
    }
}

static void reap(top_t *t)
{
    int st;
    if (!t->started || t->exited)
        return;
    pid_t r = waitpid(t->child.pid, &st, WNOHANG);
    if (r == t->child.pid || (r < 0 && errno == ECHILD)) {
        t->exited = 1;
        t->status = r == t->child.pid ? at_launch_exit_status(st) : AT_EXIT_FAILED;
    } else if (t->kill_at_ns && at_now_ns() >= t->kill_at_ns) {
        child_signal(t, SIGKILL);
        t->kill_at_ns = UINT64_MAX;
    }
}

static void handle_signal(top_t *t)
{
    int sig = pending_signal;
    pending_signal = 0;
    if (!sig)
        return;
    if (!t->started) {
        t->quit = 1;
        return;
    }
    /* Ctrl-C on a terminal in cooked mode reached the command already:
     * only a signal sent to us alone is passed on. */
    if (sig != SIGINT || signal_from_user || tty_keys)
        child_signal(t, sig);
    if (sig == SIGINT && !t->kill_at_ns)
        t->kill_at_ns = at_now_ns() + STOP_GRACE_NS;
}

/* The last line the command printed, for the bottom row. */
static void output_tail(top_t *t, char *out, size_t n)
{
    char buf[OUTPUT_TAIL + 1];
    struct stat st;
    out[0] = '\0';
    if (!t->output || fstat(fileno(t->output), &st) < 0 || st.st_size <= 0)
        return;
    off_t off = st.st_size > OUTPUT_TAIL ? st.st_size - OUTPUT_TAIL : 0;
    ssize_t len = pread(fileno(t->output), buf, OUTPUT_TAIL, off);
    if (len <= 0)
        return;
    buf[len] = '\0';
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        buf[--len] = '\0';
    char *nl = strrchr(buf, '\n');
    const char *last = nl ? nl + 1 : buf;
    size_t keep = strlen(last) < n - 1 ? strlen(last) : n - 1;
    memcpy(out, last, keep);
    out[keep] = '\0';
}

/* ---- keys -------------------------------------------------------------------- */

static void next_thread_filter(top_t *t)
{
    uint32_t order[AT_TOP_MAX_THREADS];
    int n = at_top_view_thread_order(&t->snap, order, AT_TOP_MAX_THREADS), i = 0;
    while (i < n && order[i] != t->query.thread)
        i++;
    /* all -> first -> ... -> last -> all; a vanished thread goes back to all */
    t->query.thread = !t->query.thread ? (n ? order[0] : 0) : i + 1 < n ? order[i + 1] : 0;
}

/* 1 when the screen should be redrawn now. */
static int handle_key(top_t *t, int c)
{
    switch (c) {
    case 'q':
    case 'Q':
        stop_command(t);
        return 0;
    case KEY_CTRL_C:
        stop_command(t);
        return 0;
    case 'p':
    case 'P':
        t->paused = !t->paused;
        return 1;
    case 's':
    case 'S':
        t->query.sort = (at_top_sort_t)((t->query.sort + 1) % AT_TOP_SORT_COUNT);
        return 1;
    case 't':
    case 'T':
        next_thread_filter(t);
        return 1;
    case 'n':
    case 'N':
        /* the next process of the tree: its threads start afresh */
        t->query.process = at_top_tree_next(t->snap.procs, t->snap.nprocs, t->snap.pid);
        t->query.thread = 0;
        return 1;
    default:
        return 0;
    }
}

static int read_keys(top_t *t)
{
    unsigned char buf[64];
    ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
    int redraw = 0;
    if (n == 0)
        t->keys = 0; /* end of input: no more keys, keep going */
    for (ssize_t i = 0; i < n; i++)
        redraw |= handle_key(t, buf[i]);
    return redraw;
}

/* ---- frames ---------------------------------------------------------------- */

/* A frame: of a new snapshot (fresh), of the interval so far (a key
 * changed what is shown), or of the last snapshot again (paused). */
static int draw(top_t *t, int fresh, int peek)
{
    if (fresh || peek) {
        t->query.peek = !fresh;
        at_top_model_snapshot(t->model, &t->query, &t->snap);
        if (t->exited) {
            t->snap.exited = 1;
            t->snap.exit_status = t->status;
        }
        output_tail(t, t->snap.last_output, sizeof t->snap.last_output);
    }
    t->snap.stopping = t->kill_at_ns != 0;
    t->snap.sort = t->query.sort;
    t->snap.thread_filter = t->query.thread;
    if (t->screen) {
        int rows, cols;
        screen_size(&rows, &cols);
        at_top_view_screen(stdout, &t->snap, rows, cols, t->color, t->paused);
    } else {
        at_top_view_line(stdout, &t->snap);
    }
    return ferror(stdout) ? -EIO : 0;
}

static int wait_input(top_t *t, uint64_t until_ns)
{
    uint64_t now = at_now_ns();
    int ms = until_ns > now ? (int)((until_ns - now + 999999) / 1000000) : 0;
    struct pollfd pfd = { .fd = STDIN_FILENO, .events = POLLIN };
    int rc = poll(&pfd, t->keys ? 1 : 0, ms);
    return rc > 0 && (pfd.revents & (POLLIN | POLLHUP)) ? read_keys(t) : 0;
}

static void run_loop(top_t *t)
{
    uint64_t next = at_now_ns() + REFRESH_NS / 4; /* a first frame soon */
    for (;;) {
        int changed = wait_input(t, next), redraw = changed;
        handle_signal(t);
        reap(t);
        if (t->exited || (!t->started && t->snap.exited) || t->quit)
            break;
        int due = at_now_ns() >= next;
        if (due)
            next += REFRESH_NS;
        if (resized)
            redraw = 1, resized = 0;
        if ((due && !t->paused) || redraw) {
            if (draw(t, due && !t->paused, changed && !t->paused) < 0) {
                stop_command(t); /* the log reader went away */
                if (!t->started)
                    break;
            }
        }
    }
    draw(t, 1, 0); /* the final frame, paused or not */
}

/* ---- setting up ---------------------------------------------------------------- */

static int open_pid(top_t *t)
{
    const at_options_t *o = t->o;
    if (kill(o->pid, 0) < 0 && errno == ESRCH) {
        fprintf(stderr, "archtrace: no process %d\n", (int)o->pid);
        return AT_EXIT_NO_SUCH_PROCESS;
    }
    t->model = at_top_model_start(o->pid, NULL, 0, o);
    if (!t->model) {
        fprintf(stderr, "archtrace: cannot start the sampler: %s\n", at_errstr(errno));
        return AT_EXIT_FAILED;
    }
    char err[256] = "";
    int st;
    while ((st = at_top_model_attach_status(t->model, err, sizeof err)) < 0) {
        struct timespec ts = { 0, ATTACH_WAIT_MS * 1000000L };
        nanosleep(&ts, NULL);
    }
    if (st > 0) {
        fprintf(stderr, "archtrace: %s\n", err[0] ? err : "cannot sample this process");
        return st;
    }
    return 0;
}

static int start_command(top_t *t)
{
    if (t->screen && !(t->output = tmpfile())) {
        fprintf(stderr, "archtrace: cannot create a file for the command's output: %s\n", at_errstr(errno));
        return AT_EXIT_FAILED;
    }
    int rc = at_launch_start(t->o, "top", t->output ? fileno(t->output) : -1, &t->child);
    if (rc)
        return rc;
    t->started = 1;
    t->model = at_top_model_start(t->child.pid, t->child.dir, 1, t->o);
    if (!t->model) {
        fprintf(stderr, "archtrace: cannot start the sampler: %s (the command runs on)\n", at_errstr(errno));
        /* without a model there is nothing to show: wait like run does */
        int st;
        while (waitpid(t->child.pid, &st, 0) < 0 && errno == EINTR)
            ;
        t->exited = 1;
        t->status = at_launch_exit_status(st);
        return -1;
    }
    return 0;
}

/* Close the session (the report's files stay with -o) and say how we end:
 * the command's status, or 0 for -p. */
static int finish(top_t *t)
{
    if (t->started) {
        at_launch_close(&t->child, t->status);
        at_top_model_stop(t->model, t->o->output_dir ? t->child.dir : NULL);
        at_launch_cleanup(t->o, &t->child);
    } else {
        at_top_model_stop(t->model, NULL);
    }
    if (t->output)
        fclose(t->output);
    return t->started ? t->status : 0;
}

int at_cmd_top(const at_options_t *o)
{
    static top_t t; /* one per process; static keeps the snapshot off the stack */
    memset(&t, 0, sizeof t);
    t.o = o;
    t.saved_stderr = -1;
    t.screen = isatty(STDOUT_FILENO);
    t.keys = t.screen && isatty(STDIN_FILENO);
    t.color = t.screen && at_text_color(stdout);
    install_signals();
    int rc = o->argc ? start_command(&t) : open_pid(&t);
    if (rc > 0) {
        at_top_model_stop(t.model, NULL);
        return rc;
    }
    if (rc < 0)
        return finish(&t);
    if (t.screen && screen_enter(&t) < 0)
        t.keys = 0; /* stdin refuses raw mode: a screen without keys */
    stderr_silence(&t);
    run_loop(&t);
    stderr_restore(&t);
    screen_restore();
    if (t.screen && t.snap.status[0] && !t.snap.attached)
        fprintf(stderr, "archtrace: never sampled process %d: %s\n", (int)t.snap.pid, t.snap.status);
    return finish(&t);
}
