/* SPDX-License-Identifier: MIT */
/* report_memory.c - memory over time (<pid>.memory, session/memory_series.h) in the reports.
 *
 * Text: one line per series (Python, native, RSS) with its start, its
 * peak and when, and its end.  JSON: the points.  Chrome trace: the
 * same points on the "memory" counter track the allocation snapshots
 * use, with RSS added.  Times are seconds since the shim started, as in
 * the allocation report (the last point comes after the interpreter's
 * finalisation freed its objects).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include "out/textout.h"
#include "report/report_features.h"
#include "session/memory_series.h"
#include "session/session.h"

static const char *const series_names[3] = { "Python", "native", "RSS" };

static int load(const char *dir, pid_t pid, at_mem_series_t **out)
{
    at_mem_series_t *s = malloc(sizeof *s);
    int rc = s ? at_mem_series_load(dir, pid, s) : -ENOMEM;
    if (rc < 0 && rc != -ENOENT) {   /* damaged, a symlink, unreadable: said, and the rest goes on */
        char stem[32];
        fprintf(stderr, "archtrace: %s/%s.memory is %s: memory over time left out\n", dir,
                at_key_name(pid, stem, sizeof stem), rc == -EBADMSG ? "damaged" : at_errstr(-rc));
    }
    if (rc == 0 && s->n == 0)
        rc = -ENOENT;
    if (rc < 0) {
        free(s);
        return rc == -ENOMEM ? rc : -ENOENT;
    }
    *out = s;
    return 0;
}

/* "start 10.1 MiB, peak 40.2 MiB at 0.35 s, end 10.0 MiB"; 0 when series k was never measured. */
static int text_series(FILE *out, const at_mem_series_t *s, int k)
{
    char a[32], b[32], c[32];
    int peak = at_mem_series_peak(s, k), first = -1, last = -1;
    for (int i = 0; i < s->n; i++)
        if (at_mem_point_value(&s->p[i], k) >= 0) {
            first = first < 0 ? i : first;
            last = i;
        }
    if (peak < 0 || (k == 1 && at_mem_point_value(&s->p[peak], k) == 0))
        return 0;   /* never measured, or no native memory tracked at all */
    at_text_bytes(a, sizeof a, (double)at_mem_point_value(&s->p[first], k));
    at_text_bytes(b, sizeof b, (double)at_mem_point_value(&s->p[peak], k));
    at_text_bytes(c, sizeof c, (double)at_mem_point_value(&s->p[last], k));
    fprintf(out, "    %-7s first %10s   peak %10s at %7.3f s   last %10s\n", series_names[k], a, b, at_mem_series_t_s(s, peak), c);
    return 1;
}

int at_memory_report_text(const char *dir, pid_t pid, FILE *out, const at_options_t *o)
{
    (void)o;
    at_mem_series_t *s;
    int rc = load(dir, pid, &s);
    if (rc < 0)
        return rc;
    fprintf(out, "  memory over time: %d points every %.0f ms, %.3f s to %.3f s (--format svg --memory-plot draws it)\n",
            s->n, (double)s->interval_ns / 1e6, at_mem_series_t_s(s, 0), at_mem_series_t_s(s, s->n - 1));
    for (int k = 0; k < 3; k++)
        text_series(out, s, k);
    free(s);
    return 0;
}

static void json_peak(at_json_t *j, const at_mem_series_t *s, int k, const char *key)
{
    int i = at_mem_series_peak(s, k);
    at_json_key(j, key);
    if (i < 0) {
        at_json_null(j);
        return;
    }
    at_json_obj_begin(j);
    at_json_kv_int(j, "bytes", at_mem_point_value(&s->p[i], k));
    at_json_kv_double(j, "t_s", at_mem_series_t_s(s, i));
    at_json_obj_end(j);
}

int at_memory_report_json(const char *dir, pid_t pid, at_json_t *j, const at_options_t *o)
{
    (void)o;
    at_mem_series_t *s;
    int rc = load(dir, pid, &s);
    if (rc < 0)
        return rc;
    at_json_obj_begin(j);
    at_json_kv_double(j, "interval_ms", (double)s->interval_ns / 1e6);
    at_json_kv_uint(j, "origin_ns", s->origin_ns ? s->origin_ns : s->p[0].t_ns);
    json_peak(j, s, 0, "python_peak");
    json_peak(j, s, 1, "native_peak");
    json_peak(j, s, 2, "rss_peak");
    at_json_key(j, "points");   /* [t_s, python, native, rss], -1: not measured */
    at_json_arr_begin(j);
    for (int i = 0; i < s->n; i++) {
        at_json_arr_begin(j);
        at_json_double(j, at_mem_series_t_s(s, i));
        at_json_int(j, s->p[i].py);
        at_json_int(j, s->p[i].native);
        at_json_int(j, s->p[i].rss);
        at_json_arr_end(j);
    }
    at_json_arr_end(j);
    at_json_obj_end(j);
    free(s);
    return 0;
}

int at_memory_chrome(const char *dir, pid_t pid, at_json_t *j, const at_options_t *o)
{
    (void)o;
    at_mem_series_t *s;
    int rc = load(dir, pid, &s);
    if (rc < 0)
        return rc;
    for (int i = 0; i < s->n; i++) {
        if (s->p[i].py < 0)
            continue;   /* before the shim started: the counter track is Python's first */
        at_json_obj_begin(j);
        at_json_kv_str(j, "name", "memory");
        at_json_kv_str(j, "ph", "C");
        at_json_kv_int(j, "pid", pid);
        at_json_kv_double(j, "ts", (double)s->p[i].t_ns / 1e3);
        at_json_key(j, "args");
        at_json_obj_begin(j);
        for (int k = 0; k < 3; k++)
            if (at_mem_point_value(&s->p[i], k) >= 0)
                at_json_kv_int(j, k == 0 ? "python" : k == 1 ? "native" : "rss", at_mem_point_value(&s->p[i], k));
        at_json_obj_end(j);
        at_json_obj_end(j);
    }
    free(s);
    return 0;
}
