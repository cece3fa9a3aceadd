/* SPDX-License-Identifier: MIT */
/* memory_series.c - memory over time, thinned to a bound, saved and read back (see memory_series.h). */
#include "session/memory_series.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "session/session.h"

#define FORMAT_MAGIC "archtrace-memory"
#define FORMAT_VERSION 1

static int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

/* Each two neighbours become one: the later time, the larger values. */
static void thin(at_mem_series_t *s)
{
    int k = 0;
    for (int i = 0; i + 1 < s->n; i += 2, k++)
        s->p[k] = (at_mem_point_t){ s->p[i + 1].t_ns, max64(s->p[i].py, s->p[i + 1].py),
                                    max64(s->p[i].native, s->p[i + 1].native), max64(s->p[i].rss, s->p[i + 1].rss) };
    if (s->n % 2)
        s->p[k++] = s->p[s->n - 1];
    s->n = k;
    s->interval_ns *= 2;
}

void at_mem_series_add(at_mem_series_t *s, const at_mem_point_t *pt)
{
    if (!s->interval_ns)
        s->interval_ns = AT_MEM_EVERY_NS;
    if (s->n == AT_MEM_MAX_POINTS)
        thin(s);
    s->p[s->n++] = *pt;
}

int64_t at_mem_point_value(const at_mem_point_t *p, int k)
{
    return k == 0 ? p->py : k == 1 ? p->native : p->rss;
}

double at_mem_series_t_s(const at_mem_series_t *s, int i)
{
    uint64_t origin = s->origin_ns ? s->origin_ns : s->p[0].t_ns;
    return (double)(int64_t)(s->p[i].t_ns - origin) / 1e9;   /* < 0 before the shim started */
}

int at_mem_series_peak(const at_mem_series_t *s, int k)
{
    int best = -1;
    for (int i = 0; i < s->n; i++)
        if (at_mem_point_value(&s->p[i], k) >= 0 &&
            (best < 0 || at_mem_point_value(&s->p[i], k) > at_mem_point_value(&s->p[best], k)))
            best = i;
    return best;
}


int at_mem_series_save(const at_mem_series_t *s, const char *dir, pid_t key)
{
    FILE *f = at_session_create_file(dir, key, "memory");   /* 0600, never through a symlink */
    if (!f)
        return -errno;
    fprintf(f, FORMAT_MAGIC "\t%d\npid\t%d\norigin_ns\t%" PRIu64 "\ninterval_ns\t%" PRIu64 "\npoints\t%d\n",
            FORMAT_VERSION, (int)at_key_pid(key), s->origin_ns, s->interval_ns, s->n);
    for (int i = 0; i < s->n; i++)
        fprintf(f, "p\t%" PRIu64 "\t%" PRId64 "\t%" PRId64 "\t%" PRId64 "\n", s->p[i].t_ns, s->p[i].py, s->p[i].native,
                s->p[i].rss);
    fprintf(f, "end\t%d\n", s->n);
    /* the flush repeats a failed write, so errno says why (ENOSPC) */
    int err = ferror(f) | fflush(f) ? (errno ? errno : EIO) : 0;
    if (fclose(f) != 0 && !err)
        err = errno;
    return -err;
}

/* One "p" line into s: 0, or -EBADMSG. */
static int load_point(const char *line, at_mem_series_t *s)
{
    at_mem_point_t pt;
    if (s->n >= AT_MEM_MAX_POINTS ||
        sscanf(line, "p\t%" SCNu64 "\t%" SCNd64 "\t%" SCNd64 "\t%" SCNd64, &pt.t_ns, &pt.py, &pt.native, &pt.rss) != 4 ||
        pt.py < -1 || pt.native < -1 || pt.rss < -1 || (s->n && pt.t_ns < s->p[s->n - 1].t_ns))
        return -EBADMSG;
    s->p[s->n++] = pt;
    return 0;
}

int at_mem_series_load(const char *dir, pid_t key, at_mem_series_t *s)
{
    char line[256];
    int version = 0, end = -1, rc = 0, pid = 0;
    FILE *f = at_session_open_file(dir, key, "memory");
    if (!f)
        return -errno;
    memset(s, 0, sizeof *s);
    if (!fgets(line, sizeof line, f) || sscanf(line, FORMAT_MAGIC "\t%d", &version) != 1 || version != FORMAT_VERSION)
        rc = -EBADMSG;
    while (rc == 0 && end < 0 && fgets(line, sizeof line, f)) {
        if (line[0] == 'p' && line[1] == '\t')
            rc = load_point(line, s);
        else if (sscanf(line, "end\t%d", &end) == 1)
            rc = end == s->n ? 0 : -EBADMSG;
        else if (sscanf(line, "pid\t%d", &pid) == 1 || sscanf(line, "interval_ns\t%" SCNu64, &s->interval_ns) == 1 ||
                 sscanf(line, "origin_ns\t%" SCNu64, &s->origin_ns) == 1 ||
                 !strncmp(line, "points\t", 7))
            continue;
        else
            rc = -EBADMSG;
    }
    fclose(f);
    s->pid = (pid_t)pid;
    return rc == 0 && end < 0 ? -EBADMSG : rc;
}
