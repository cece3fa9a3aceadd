/* SPDX-License-Identifier: MIT */
/* proc_tree.c - a process and its descendants, from /proc (see proc_tree.h). */
#include "remote/proc_tree.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SCAN 32768            /* processes read from /proc at most     */

/* "pid (comm) state ppid ... utime stime": the comm may hold spaces and
 * parentheses, so fields count from the last ')'. */
static int read_stat(pid_t pid, at_proc_row_t *r)
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
    unsigned long long utime, stime, start;
    /* state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
     * utime stime cutime cstime priority nice num_threads itrealvalue starttime */
    if (sscanf(close + 2, "%c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d %llu",
               &state, &ppid, &utime, &stime, &start) != 5 || state == 'Z' || state == 'X')
        return -1;
    r->pid = pid;
    r->ppid = ppid;
    r->ticks = utime + stime;
    r->starttime = start;
    return 0;
}

/* The numeric entries of /proc are the processes. */
static pid_t pid_of_entry(const char *name)
{
    char *end;
    long pid = strtol(name, &end, 10);
    return end == name || *end || pid <= 0 || pid > INT32_MAX ? 0 : (pid_t)pid;
}

at_proc_row_t *at_proc_scan(size_t *count)
{
    DIR *d = opendir("/proc");
    size_t cap = 256, n = 0;
    at_proc_row_t *rows = malloc(cap * sizeof *rows);
    if (!d || !rows) {
        if (d)
            closedir(d);
        free(rows);
        return NULL;
    }
    for (struct dirent *e; n < MAX_SCAN && (e = readdir(d));) {
        pid_t pid = pid_of_entry(e->d_name);
        if (!pid)
            continue;
        if (n == cap) {
            at_proc_row_t *more = realloc(rows, 2 * cap * sizeof *rows);
            if (!more)
                break;
            rows = more, cap *= 2;
        }
        if (read_stat(pid, &rows[n]) == 0)
            n++;
    }
    closedir(d);
    *count = n;
    return rows;
}

int at_proc_descendants(const at_proc_row_t *rows, size_t count, pid_t root, at_proc_row_t *out, int cap)
{
    int n = 0;
    for (size_t i = 0; rows && i < count && n < cap; i++)
        if (rows[i].pid == root)
            out[n++] = rows[i];
    /* breadth first: out[] is its own queue; a pid is in rows once, and
     * only root's row is skipped as a child, so every row enters once */
    for (int head = 0; head < n; head++)
        for (size_t i = 0; i < count && n < cap; i++)
            if (rows[i].ppid == out[head].pid && rows[i].pid != root)
                out[n++] = rows[i];
    return n;
}

int at_proc_tree(pid_t root, at_proc_row_t *out, int cap)
{
    size_t count = 0;
    at_proc_row_t *rows = at_proc_scan(&count);
    int n = rows ? at_proc_descendants(rows, count, root, out, cap) : 0;
    free(rows);
    return n;
}
