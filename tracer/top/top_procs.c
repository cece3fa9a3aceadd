/* SPDX-License-Identifier: MIT */
/* top_procs.c - the process tree under top's process (see top.h).
 *
 * One pass over every /proc/PID/stat a refresh: each process's parent, state
 * and CPU ticks; then the root's descendants breadth first.  Zombies and
 * processes that vanish between the listing and the read are left out.
 * A CPU share needs two looks at the same pid: the first shows -1.
 */
#include "top/top.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "remote/sampler.h"

#define MAX_SCAN 32768            /* processes read from /proc at most     */

typedef struct stat_row {
    pid_t pid, ppid;
    char comm[32];
    uint64_t ticks;
} stat_row_t;

/* "pid (comm) state ppid ... utime stime": the comm may hold spaces and
 * parentheses, so fields count from the last ')'. */
static int read_stat(pid_t pid, stat_row_t *r)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *open = strchr(buf, '('), *close = strrchr(buf, ')');
    if (!open || !close || close < open || close[1] != ' ')
        return -1;
    size_t clen = (size_t)(close - open - 1);
    if (clen >= sizeof r->comm)
        clen = sizeof r->comm - 1;
    memcpy(r->comm, open + 1, clen);
    r->comm[clen] = '\0';
    char state;
    int ppid;
    unsigned long long utime, stime;
    /* state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
    if (sscanf(close + 2, "%c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &state, &ppid, &utime,
               &stime) != 4 || state == 'Z' || state == 'X')
        return -1;
    r->pid = pid;
    r->ppid = ppid;
    r->ticks = utime + stime;
    return 0;
}

static stat_row_t *scan_all(size_t *count)
{
    DIR *d = opendir("/proc");
    size_t cap = 256, n = 0;
    stat_row_t *rows = malloc(cap * sizeof *rows);
    if (!d || !rows) {
        if (d)
            closedir(d);
        free(rows);
        return NULL;
    }
    for (struct dirent *e; n < MAX_SCAN && (e = readdir(d));) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (end == e->d_name || *end || pid <= 0 || pid > INT32_MAX)
            continue;
        if (n == cap) {
            stat_row_t *more = realloc(rows, 2 * cap * sizeof *rows);
            if (!more)
                break;
            rows = more, cap *= 2;
        }
        if (read_stat((pid_t)pid, &rows[n]) == 0)
            n++;
    }
    closedir(d);
    *count = n;
    return rows;
}

static double cpu_share(at_top_tree_t *tree, const stat_row_t *r, uint64_t now)
{
    static long hz;
    if (!hz)
        hz = sysconf(_SC_CLK_TCK) > 0 ? sysconf(_SC_CLK_TCK) : 100;
    for (int i = 0; i < tree->nseen; i++) {
        at_top_cpu_seen_t *s = &tree->seen[i];
        if (s->pid != r->pid)
            continue;
        double wall = (double)(now - s->at_ns) / 1e9;
        double used = r->ticks >= s->ticks ? (double)(r->ticks - s->ticks) / (double)hz : 0;
        return wall > 0 ? 100.0 * used / wall : -1;
    }
    return -1;
}

int at_top_tree_list(at_top_tree_t *tree, pid_t root, at_top_proc_t *out, int cap)
{
    size_t count = 0;
    stat_row_t *rows = scan_all(&count);
    uint64_t now = at_now_ns();
    int n = 0;
    /* breadth first: out[] is its own queue */
    for (size_t i = 0; rows && i < count && n < cap; i++)
        if (rows[i].pid == root)
            out[n++] = (at_top_proc_t){ .pid = root, .ppid = rows[i].ppid };
    for (int head = 0; rows && head < n; head++)
        for (size_t i = 0; i < count && n < cap; i++)
            if (rows[i].ppid == out[head].pid && rows[i].pid != root)
                out[n++] = (at_top_proc_t){ .pid = rows[i].pid, .ppid = rows[i].ppid };
    at_top_tree_t next = { .nseen = 0 };
    for (int k = 0; k < n; k++)
        for (size_t i = 0; i < count; i++)
            if (rows[i].pid == out[k].pid) {
                memcpy(out[k].comm, rows[i].comm, sizeof out[k].comm);
                out[k].cpu_pct = cpu_share(tree, &rows[i], now);
                next.seen[next.nseen++] = (at_top_cpu_seen_t){ rows[i].pid, rows[i].ticks, now };
                break;
            }
    *tree = next;
    free(rows);
    return n;
}

pid_t at_top_tree_next(const at_top_proc_t *procs, int n, pid_t current)
{
    for (int i = 0; i < n; i++)
        if (procs[i].pid == current)
            return procs[(i + 1) % n].pid;
    return n ? procs[0].pid : 0;
}
