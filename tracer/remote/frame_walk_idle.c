/* SPDX-License-Identifier: MIT */
/* frame_walk_idle.c - whether a thread of the target runs: its /proc task state, kept open.
 *
 * One pread a thread a sample on a file opened once (the descriptors
 * of threads gone are closed by a sweep every FD_SWEEP_EVERY samples). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "remote/frame_walk_int.h"

/* ---- idle: /proc task state ------------------------------------------ */

void at_walker_sweep_fds(at_walker_t *w)
{
    tid_fd_t keep[FD_SLOTS];
    int nkeep = 0;
    for (int i = 0; i < FD_SLOTS; i++) {
        tid_fd_t *e = &w->fds[i];
        if (!e->tid)
            continue;
        if (e->seen == w->epoch)
            keep[nkeep++] = *e;
        else
            close(e->fd);
        e->tid = 0;
    }
    w->epoch++;
    for (int i = 0; i < nkeep; i++) {
        uint32_t h = keep[i].tid * 2654435761u & (FD_SLOTS - 1);
        while (w->fds[h].tid)
            h = (h + 1) & (FD_SLOTS - 1);
        w->fds[h] = keep[i];
    }
}

static tid_fd_t *fd_slot(at_walker_t *w, uint32_t tid)
{
    uint32_t h = tid * 2654435761u & (FD_SLOTS - 1);
    for (int probe = 0; probe < FD_SLOTS; probe++, h = (h + 1) & (FD_SLOTS - 1)) {
        if (w->fds[h].tid == tid || !w->fds[h].tid)
            return &w->fds[h];
    }
    return NULL;
}

/* Which /proc task file tells "running or not".  /proc/PID/task/TID/syscall
 * says "running" exactly when the task state is TASK_RUNNING (stat's 'R')
 * and costs a quarter of stat here (1-2 µs against 4-5 µs a read: stat
 * formats 52 fields and unwinds a blocked task's stack for its wchan
 * flag); per thread per sample that was a third of a 4-thread sample.
 * Kernels without it (no arch tracehook) get stat. */
static const char *const STATE_FILES[] = { "syscall", "stat" };

static int task_exists(const at_walker_t *w, uint32_t tid)
{
    char path[80];
    snprintf(path, sizeof path, "/proc/%d/task/%u", (int)w->proc->pid, tid);
    return access(path, F_OK) == 0;
}

static int open_state(at_walker_t *w, tid_fd_t *e, uint32_t tid)
{
    char path[80];
    int fd = -1, err = ENOENT;
    for (int i = w->state_file; i < 2 && fd < 0; i++) {
        snprintf(path, sizeof path, "/proc/%d/task/%u/%s", (int)w->proc->pid, tid, STATE_FILES[i]);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        err = errno;
        if (fd < 0 && err == ENOENT && i == 0 && !w->state_file_known && task_exists(w, tid))
            w->state_file = 1; /* the task is there but has no syscall file */
    }
    w->state_file_known |= fd >= 0;
    if (fd < 0)
        return -err;
    e->tid = tid;
    e->fd = fd;
    return 0;
}

/* 1 when the text of the state file says the task is not running. */
static int idle_from(const at_walker_t *w, const char *buf)
{
    if (w->state_file == 0) /* "running" or "NR args... sp pc" / "-1 sp pc" */
        return strncmp(buf, "running", 7) != 0;
    /* "tid (comm) S ...": comm may hold ')' and spaces, so take the last */
    const char *rp = strrchr(buf, ')');
    if (!rp || rp[1] != ' ')
        return -EINVAL;
    return rp[2] != 'R';
}

int at_walker_idle(at_walker_t *w, uint32_t tid)
{
    char buf[160];
    tid_fd_t *e = fd_slot(w, tid);
    if (!tid || !e)
        return -EINVAL;
    if (!e->tid && open_state(w, e, tid) < 0)
        return -ESRCH;
    e->seen = w->epoch;
    w->proc_reads++;
    ssize_t n = pread(e->fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return -ESRCH;
    buf[n] = '\0';
    return idle_from(w, buf);
}
