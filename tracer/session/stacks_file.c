/* SPDX-License-Identifier: MIT */
/* stacks_file.c - <pid>.stacks on disk: writing, reading back, listing (format: stacks.h).
 *
 * Only stacks.h's public functions: a sample table is saved the way a
 * renderer walks it and loaded the way the sampler fills it, so the file
 * and the in-memory table cannot drift apart.
 */
#include "session/stacks.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "out/textout.h"
#include "session/session.h"
#include "session/tsv.h"

#define STACK_MAX_N     1024         /* frames in one stack (python+native) */
#define LINE_MAX_BYTES  (1u << 20)   /* longest line accepted on load      */
#define FORMAT_MAGIC    "archtrace-stacks"
#define FORMAT_VERSION  1

/* ---- saving ------------------------------------------------------------ */

static const char *kind_name(int kind)
{
    return kind == AT_SYM_PY ? "py" : kind == AT_SYM_NATIVE ? "native" : kind == AT_SYM_TASK ? "task" : "mark";
}

static void save_header(const at_stacks_t *s, FILE *f)
{
    const at_stacks_meta_t *m = at_stacks_info(s);
    fprintf(f, FORMAT_MAGIC "\t%d\n", FORMAT_VERSION);
    fprintf(f, "pid\t%d\ncomm\t", (int)at_key_pid(m->pid));   /* the file's name says which program */
    at_tsv_put(f, m->comm);
    fputs("\nversion\t", f);
    at_tsv_put(f, m->version);
    fputs("\nbuild\t", f);
    at_tsv_put(f, m->build);
    fprintf(f, "\nrate_hz\t%.6g\nsamples\t%" PRIu64 "\nmissed\t%" PRIu64 "\nduration_s\t%.6f\nnative\t%d\n",
            m->rate_hz, m->samples, m->missed, m->duration_s, m->native);
    if (m->on_cpu)
        fprintf(f, "cpu_s\t%.9f\ncpu_intervals\t%" PRIu64 "\n", m->cpu_s, m->cpu_intervals);
    if (m->waits_polled || m->waits_timed)
        fprintf(f, "waits\t%" PRIu64 "\t%" PRIu64 "\n", m->waits_polled, m->waits_timed);
    if (m->busy_s > 0)
        fprintf(f, "busy_s\t%.9f\n", m->busy_s);
    if (m->read_calls || m->proc_reads)
        fprintf(f, "reads\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\n", m->read_calls, m->read_bytes,
                m->proc_reads);
}

static void save_body(const at_stacks_t *s, FILE *f)
{
    const at_symtab_t *t = at_stacks_syms(s);
    size_t c = 0;
    at_stack_view_t v;
    for (uint32_t i = 0; i < at_symtab_count(t); i++) {
        fprintf(f, "sym\t%u\t%s\t", i, kind_name(at_symtab_kind(t, i)));
        at_tsv_put(f, at_symtab_func(t, i));
        fputc('\t', f);
        at_tsv_put(f, at_symtab_file(t, i));
        if (at_symtab_start_line(t, i) > 0)
            fprintf(f, "\t%d", (int)at_symtab_start_line(t, i));
        fputc('\n', f);
    }
    while (at_stacks_next(s, &c, &v)) {
        fprintf(f, "stack\t%" PRIu64 "\t%u\t%d\t%d\t", v.count, v.tid, v.idle, v.gil);
        for (int k = 0; k < v.n; k++)
            fprintf(f, "%s%u:%d", k ? "," : "", v.frames[k].sym, (int)v.frames[k].line);
        fputc('\n', f);
    }
    at_thread_names_save(at_stacks_thread_names(s), f);
    fprintf(f, "end\t%u\t%zu\n", at_symtab_count(t), at_stacks_count(s));
}

int at_stacks_save(const at_stacks_t *s, const char *dir)
{
    FILE *f = at_session_create_file(dir, at_stacks_info(s)->pid, "stacks");
    if (!f)
        return -errno;
    save_header(s, f);
    save_body(s, f);
    /* the flush repeats a failed write, so errno says why (ENOSPC) */
    int err = ferror(f) | fflush(f) ? (errno ? errno : EIO) : 0;
    if (fclose(f) != 0 && !err)
        err = errno;
    return -err;
}

/* ---- loading ------------------------------------------------------------ */

typedef struct loader {
    at_stacks_t *s;          /* being filled                              */
    unsigned long lineno;    /* for messages                              */
    int ended;               /* saw the end line                          */
    char *err;               /* message buffer                            */
    size_t errlen;
    char where[300];         /* "DIR/PID.stacks"                          */
} loader_t;

static int load_fail(loader_t *l, const char *why)
{
    snprintf(l->err, l->errlen, "%s: line %lu: %s", l->where, l->lineno, why);
    return -EBADMSG;
}

/* Split at tabs into at most max fields; returns the count. */
static int split_tabs(char *line, char **f, int max)
{
    int n = 0;
    for (char *p = line; n < max;) {
        f[n++] = p;
        p = strchr(p, '\t');
        if (!p)
            break;
        *p++ = '\0';
    }
    return n;
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    if (!*s || *s == '-')
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || errno)
        return -1;
    *out = v;
    return 0;
}

static int parse_double(const char *s, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (!*s || *end || !(v >= 0 && v < 1e12))
        return -1;
    *out = v;
    return 0;
}

static int load_meta(loader_t *l, char **f, int n)
{
    at_stacks_meta_t *m = at_stacks_meta(l->s);
    uint64_t u;
    if (n != 2 || at_tsv_unescape(f[1]) < 0)
        return load_fail(l, "bad header field");
    if (!strcmp(f[0], "pid"))
        return parse_u64(f[1], &u) < 0 || u != (uint64_t)at_key_pid(m->pid) ? load_fail(l, "pid does not match the file name") : 0;
    if (!strcmp(f[0], "comm") || !strcmp(f[0], "version") || !strcmp(f[0], "build")) {
        char *dst = f[0][0] == 'c' ? m->comm : f[0][0] == 'v' ? m->version : m->build;
        size_t cap = f[0][0] == 'c' ? sizeof m->comm : f[0][0] == 'v' ? sizeof m->version : sizeof m->build;
        snprintf(dst, cap, "%s", f[1]);
        return 0;
    }
    if (!strcmp(f[0], "rate_hz"))
        return parse_double(f[1], &m->rate_hz) < 0 ? load_fail(l, "bad rate_hz") : 0;
    if (!strcmp(f[0], "duration_s"))
        return parse_double(f[1], &m->duration_s) < 0 ? load_fail(l, "bad duration_s") : 0;
    if (!strcmp(f[0], "samples"))
        return parse_u64(f[1], &m->samples) < 0 ? load_fail(l, "bad samples") : 0;
    if (!strcmp(f[0], "missed"))
        return parse_u64(f[1], &m->missed) < 0 ? load_fail(l, "bad missed") : 0;
    if (!strcmp(f[0], "cpu_s")) {
        m->on_cpu = 1;
        return parse_double(f[1], &m->cpu_s) < 0 || m->cpu_s < 0 ? load_fail(l, "bad cpu_s") : 0;
    }
    if (!strcmp(f[0], "cpu_intervals"))
        return parse_u64(f[1], &m->cpu_intervals) < 0 ? load_fail(l, "bad cpu_intervals") : 0;
    if (!strcmp(f[0], "busy_s"))
        return parse_double(f[1], &m->busy_s) < 0 || m->busy_s < 0 ? load_fail(l, "bad busy_s") : 0;

    if (!strcmp(f[0], "native")) {
        if (parse_u64(f[1], &u) < 0 || u > 1)
            return load_fail(l, "bad native flag");
        m->native = (int)u;
        return 0;
    }
    return load_fail(l, "unknown record");
}

static int load_sym(loader_t *l, char **f, int n)
{
    uint64_t id;
    int kind = -1;
    uint64_t start = 0;
    if ((n != 5 && n != 6) || parse_u64(f[1], &id) < 0 || id != at_symtab_count(at_stacks_symtab(l->s)) ||
        (n == 6 && (parse_u64(f[5], &start) < 0 || start > INT32_MAX)))
        return load_fail(l, "bad symbol record (ids must run 0, 1, 2, ...)");
    kind = !strcmp(f[2], "py") ? AT_SYM_PY : !strcmp(f[2], "native") ? AT_SYM_NATIVE
         : !strcmp(f[2], "mark") ? AT_SYM_MARK : !strcmp(f[2], "task") ? AT_SYM_TASK : -1;
    if (kind < 0 || at_tsv_unescape(f[3]) < 0 || at_tsv_unescape(f[4]) < 0)
        return load_fail(l, "bad symbol kind or escape");
    if (at_symtab_intern(at_stacks_symtab(l->s), kind, f[3], f[4]) != id)
        return load_fail(l, "duplicate symbol or out of memory");
    at_symtab_set_start_line(at_stacks_symtab(l->s), (uint32_t)id, (int32_t)start);
    return 0;
}

static int parse_frames(loader_t *l, char *list, at_frame_t *fr, int *n)
{
    *n = 0;
    for (char *p = list; *p;) {
        char *end;
        if (*n >= STACK_MAX_N)
            return load_fail(l, "too many frames");
        unsigned long sym = strtoul(p, &end, 10);
        if (end == p || *end != ':' || sym >= at_symtab_count(at_stacks_symtab(l->s)))
            return load_fail(l, "bad frame (unknown symbol id)");
        p = end + 1;
        long line = strtol(p, &end, 10);
        if (end == p || line < -1 || line > INT32_MAX || (*end && *end != ','))
            return load_fail(l, "bad frame line");
        fr[(*n)++] = (at_frame_t){ (uint32_t)sym, (int32_t)line };
        p = *end ? end + 1 : end;
    }
    return 0;
}

static int load_stack(loader_t *l, char **f, int n)
{
    at_frame_t fr[STACK_MAX_N];
    uint64_t count, tid, idle, gil;
    int nf;
    if (n != 6 || parse_u64(f[1], &count) < 0 || !count || parse_u64(f[2], &tid) < 0 ||
        tid > UINT32_MAX || parse_u64(f[3], &idle) < 0 || idle > 1 || parse_u64(f[4], &gil) < 0 || gil > AT_STACK_GIL_WAIT)
        return load_fail(l, "bad stack record");
    int rc = parse_frames(l, f[5], fr, &nf);
    if (rc < 0)
        return rc;
    rc = at_stacks_add(l->s, (uint32_t)tid, (int)idle, (int)gil, fr, nf, count);
    return rc < 0 ? load_fail(l, "too many stacks or out of memory") : 0;
}

static int load_line(loader_t *l, char *line)
{
    char *f[8];
    uint64_t a, b;
    if (l->ended)
        return load_fail(l, "data after the end line");
    int n = split_tabs(line, f, 8);
    if (!strcmp(f[0], "sym"))
        return load_sym(l, f, n);
    if (!strcmp(f[0], "stack"))
        return load_stack(l, f, n);
    if (!strcmp(f[0], "tname"))
        return n != 3 || at_thread_names_load(at_stacks_names(l->s), f[1], f[2]) < 0 ? load_fail(l, "bad thread name") : 0;
    if (!strcmp(f[0], "waits"))   /* polled timer: how the sampler waited (pace.h) */
        return n != 3 || parse_u64(f[1], &at_stacks_meta(l->s)->waits_polled) < 0 ||
                       parse_u64(f[2], &at_stacks_meta(l->s)->waits_timed) < 0
                   ? load_fail(l, "bad waits")
                   : 0;
    if (!strcmp(f[0], "reads"))   /* calls bytes proc-reads: the sampler's cost counters */
        return n != 4 || parse_u64(f[1], &at_stacks_meta(l->s)->read_calls) < 0 ||
                       parse_u64(f[2], &at_stacks_meta(l->s)->read_bytes) < 0 || parse_u64(f[3], &at_stacks_meta(l->s)->proc_reads) < 0
                   ? load_fail(l, "bad reads")
                   : 0;
    if (!strcmp(f[0], "end")) {
        if (n != 3 || parse_u64(f[1], &a) < 0 || parse_u64(f[2], &b) < 0 ||
            a != at_symtab_count(at_stacks_symtab(l->s)) || b != at_stacks_count(l->s))
            return load_fail(l, "end line does not match the records read");
        l->ended = 1;
        return 0;
    }
    return load_meta(l, f, n);
}

static int load_lines(loader_t *l, FILE *f)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = 0;
    while (rc == 0 && (len = getline(&line, &cap, f)) >= 0) {
        l->lineno++;
        if ((size_t)len > LINE_MAX_BYTES || (len > 0 && (size_t)len != strlen(line)))
            rc = load_fail(l, "line too long or holds a NUL byte");
        else if (len == 0 || line[len - 1] != '\n')
            rc = load_fail(l, "truncated line");
        else {
            line[len - 1] = '\0';
            rc = l->lineno == 1 ? (strcmp(line, FORMAT_MAGIC "\t1") ? load_fail(l, "not an archtrace stacks file (version 1)") : 0)
                                : load_line(l, line);
        }
    }
    free(line);
    if (rc == 0 && ferror(f))
        rc = load_fail(l, at_errstr(errno));
    if (rc == 0 && !l->ended)
        rc = load_fail(l, l->lineno ? "truncated: no end line" : "empty file");
    return rc;
}

int at_stacks_load(const char *dir, pid_t pid, at_stacks_t **out, char *err, size_t errlen)
{
    char dummy[8];
    loader_t l = { .err = err ? err : dummy, .errlen = err ? errlen : sizeof dummy };
    *out = NULL;
    char stem[32];
    snprintf(l.where, sizeof l.where, "%s/%s.stacks", dir, at_key_name(pid, stem, sizeof stem));
    FILE *f = at_session_open_file(dir, pid, "stacks");
    if (!f) {
        int e = errno;
        snprintf(l.err, l.errlen, "%s: %s", l.where, at_errstr(e));
        return e == ENOENT ? -ENOENT : -e;
    }
    if (!(l.s = at_stacks_new(pid))) {
        fclose(f);
        return -ENOMEM;
    }
    int rc = load_lines(&l, f);
    fclose(f);
    if (rc < 0)
        at_stacks_free(l.s);
    else
        *out = l.s;
    return rc;
}

/* ---- the session's stacks files ---------------------------------------- */

static int cmp_pid(const void *a, const void *b)
{
    pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
    return (x > y) - (x < y);
}

int at_stacks_list(const char *dir, pid_t *pids, int cap)
{
    DIR *d = opendir(dir);
    int n = 0;
    if (!d)
        return -errno;
    for (struct dirent *e; (e = readdir(d)) && n < cap;) {
        const char *kind;
        pid_t key = at_session_parse_name(e->d_name, &kind);
        if (key && !strcmp(kind, "stacks"))
            pids[n++] = key;
    }
    closedir(d);
    qsort(pids, (size_t)n, sizeof *pids, cmp_pid);
    return n;
}

int at_stacks_each(const char *dir, int (*fn)(const at_stacks_t *s, void *ctx), void *ctx)
{
    static pid_t pids[4096];
    int n = at_stacks_list(dir, pids, 4096), found = 0, rc = 0;
    if (n < 0)
        return n;
    for (int i = 0; i < n && rc == 0; i++) {
        at_stacks_t *s;
        char err[512];
        int r = at_stacks_load(dir, pids[i], &s, err, sizeof err);
        if (r < 0) {
            if (r != -ENOENT)
                fprintf(stderr, "archtrace: %s\n", err);
            continue;
        }
        rc = fn(s, ctx);
        at_stacks_free(s);
        found++;
    }
    return rc ? rc : found ? 0 : -ENOENT;
}
