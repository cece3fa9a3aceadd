/* SPDX-License-Identifier: MIT */
/* top_view.c - draw an `archtrace top` snapshot: a screen, or a log line.
 *
 * The screen is plain ANSI: cursor home, each row written whole and
 * cleared to its end, then the rest of the screen cleared, so a frame
 * never flickers and never needs curses.  Every row is built in a line
 * buffer that counts columns (UTF-8 characters) and drops what does not
 * fit, so a long path or a narrow terminal truncates cleanly.  Names read
 * from the target go through at_text_escape before they are counted.
 * The rows are shared out between the panels by what each has to show.
 */
#include "top/top.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "out/textout.h"

#define LINE_BYTES   2048
#define FIXED_ROWS   8      /* header, status, 4 titles, gc, keys        */
#define BOLD         "\033[1m"
#define REVERSE      "\033[7m"
#define GREEN        "\033[32m"
#define RESET        "\033[0m"

typedef struct line {
    char buf[LINE_BYTES];
    size_t len;
    int cols;               /* columns used                              */
    int width;              /* columns available                         */
    int color;              /* escapes allowed                           */
} line_t;

static void line_init(line_t *l, int width, int color)
{
    l->len = 0;
    l->cols = 0;
    l->width = width;
    l->color = color;
    l->buf[0] = '\0';
}

/* A terminal escape: takes no column, only on a colour terminal. */
static void put_attr(line_t *l, const char *esc)
{
    size_t n = strlen(esc);
    if (!l->color || l->len + n >= sizeof l->buf)
        return;
    memcpy(l->buf + l->len, esc, n + 1);
    l->len += n;
}

/* Already-escaped text, at most max columns of it (and of the line). */
static void put_cols(line_t *l, const char *s, int max)
{
    const unsigned char *p = (const unsigned char *)s;
    int used = 0;
    while (*p && used < max && l->cols < l->width) {
        size_t n = 1;
        while ((p[n] & 0xC0) == 0x80 && n < 4)
            n++;
        if (l->len + n >= sizeof l->buf)
            break;
        memcpy(l->buf + l->len, p, n);
        l->len += n;
        p += n;
        used++;
        l->cols++;
    }
    l->buf[l->len] = '\0';
}

static void put(line_t *l, const char *s)
{
    put_cols(l, s, l->width);
}

static void putf(line_t *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(line_t *l, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    put(l, tmp);
}

static void pad_to(line_t *l, int col)
{
    while (l->cols < col && l->cols < l->width)
        put_cols(l, " ", 1);
}

/* A string from the target, escaped, in a field of w columns. */
static void put_field(line_t *l, const char *s, int w)
{
    char esc[AT_TOP_NAME * 4 + 8];
    at_text_escape(esc, sizeof esc, s);
    int start = l->cols;
    put_cols(l, esc, w);
    pad_to(l, start + w);
}

static void emit(FILE *out, line_t *l)
{
    fputs(l->buf, out);
    if (l->color)
        fputs(RESET, out);
    fputs("\033[K\r\n", out);
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash && slash[1] ? slash + 1 : path;
}

/* "func (file.py:12)" with the file's base name, escaped. */
static void where(char *buf, size_t n, const char *func, const char *file, int line)
{
    char raw[AT_TOP_NAME * 2 + 32];
    if (!func[0])
        snprintf(raw, sizeof raw, "-");
    else if (!file[0])
        snprintf(raw, sizeof raw, "%s", func);
    else if (line >= 0)
        snprintf(raw, sizeof raw, "%s (%s:%d)", func, base_name(file), line);
    else
        snprintf(raw, sizeof raw, "%s (%s)", func, base_name(file));
    at_text_escape(buf, n, raw);
}

static void pct_field(char *buf, size_t n, double v)
{
    if (v < 0)
        snprintf(buf, n, "-");
    else
        snprintf(buf, n, "%.1f", v);
}

static const char *sort_name(at_top_sort_t s)
{
    return s == AT_TOP_SORT_TOTAL ? "total" : s == AT_TOP_SORT_GIL ? "gil" : "self";
}

/* ---- thread order -------------------------------------------------------- */

static double thread_key(const at_top_thread_t *t, at_top_sort_t sort)
{
    if (sort == AT_TOP_SORT_GIL)
        return -(t->held_pct < 0 ? 0 : t->held_pct);
    return t->main ? -1.0 : (double)t->tid; /* main first, then by tid */
}

int at_top_view_thread_order(const at_top_snap_t *s, uint32_t *tids, int cap)
{
    int n = 0, idx[AT_TOP_MAX_THREADS];
    for (int i = 0; i < s->nthreads && n < cap && n < AT_TOP_MAX_THREADS; i++) {
        int k = n++;
        while (k > 0 && thread_key(&s->threads[i], s->sort) < thread_key(&s->threads[idx[k - 1]], s->sort)) {
            idx[k] = idx[k - 1];
            k--;
        }
        idx[k] = i;
    }
    for (int i = 0; i < n; i++)
        tids[i] = s->threads[idx[i]].tid;
    return n;
}

static const at_top_thread_t *thread_by_tid(const at_top_snap_t *s, uint32_t tid)
{
    for (int i = 0; i < s->nthreads; i++)
        if (s->threads[i].tid == tid)
            return &s->threads[i];
    return NULL;
}

/* ---- panels -------------------------------------------------------------- */

static void header_line(line_t *l, const at_top_snap_t *s, int paused)
{
    char comm[128];
    at_text_escape(comm, sizeof comm, s->comm[0] ? s->comm : "?");
    put_attr(l, REVERSE);
    if (paused)
        put(l, "PAUSED  ");
    putf(l, "pid %d %s", (int)s->pid, comm);
    if (s->version[0])
        putf(l, " %s/%s", s->version, s->build);
    putf(l, "  up %.0f s  %.0f Hz  sort:%s", s->uptime_s, s->rate_hz, sort_name(s->sort));
    if (s->thread_filter)
        putf(l, "  thread:%u", s->thread_filter);
    pad_to(l, l->width);
}

static void status_line(line_t *l, const at_top_snap_t *s)
{
    char esc[sizeof s->status * 4];
    if (s->stopping && !s->exited)
        put(l, "stopping: SIGINT sent to the command (SIGKILL after 3 s)");
    else if (s->exited && s->started)
        putf(l, "exited with status %d", s->exit_status);
    else if (s->exited)
        put(l, "process exited");
    else if (!s->attached) {
        at_text_escape(esc, sizeof esc, s->status[0] ? s->status : "starting");
        putf(l, "waiting for the interpreter: %s", esc);
    } else {
        putf(l, "running  %d thread%s  %llu samples", s->nthreads, s->nthreads == 1 ? "" : "s",
             (unsigned long long)s->interval_samples);
        if (s->status[0]) { /* a process picked with n that cannot be shown */
            at_text_escape(esc, sizeof esc, s->status);
            putf(l, "  (%s)", esc);
        }
    }
    if (!s->started)
        put(l, "  -p: no shim, so no GIL wait, memory, imports");
}

/* The tree, when the root has children: " PROCS  >1234 python 3%  1240
 * python 99% ...", the process shown marked. */
static void procs_line(line_t *l, const at_top_snap_t *s)
{
    char comm[128], cpu[16];
    put(l, " PROCS ");
    for (int i = 0; i < s->nprocs; i++) {
        const at_top_proc_t *p = &s->procs[i];
        at_text_escape(comm, sizeof comm, p->comm);
        pct_field(cpu, sizeof cpu, p->cpu_pct);
        if (p->pid == s->pid)
            put_attr(l, REVERSE);
        putf(l, " %s%d %s %s%%", p->pid == s->pid ? ">" : "", (int)p->pid, comm, cpu);
        if (p->pid == s->pid)
            put_attr(l, RESET);
        put(l, " ");
    }
}

static void title(line_t *l, const char *text)
{
    put_attr(l, BOLD);
    put(l, text);
    put_attr(l, RESET);
}

/* Thread rows: "> TID NAME GIL HELD% WAIT% IDLE%  function", 46 columns
 * before the function so it keeps 34 of an 80-column screen. */
static void thread_title(line_t *l)
{
    title(l, " TID      THREAD       GIL HELD% WAIT% IDLE%  CURRENT FUNCTION");
}

static void thread_row(line_t *l, const at_top_snap_t *s, const at_top_thread_t *t)
{
    char held[16], wait[16], idle[16], fn[AT_TOP_NAME * 6];
    int holder = t->tid == s->gil_holder;
    pct_field(held, sizeof held, t->held_pct);
    pct_field(wait, sizeof wait, t->wait_pct);
    pct_field(idle, sizeof idle, t->idle_pct);
    putf(l, "%s%-8u ", t->tid == s->thread_filter ? ">" : " ", t->tid);
    put_field(l, t->name[0] ? t->name : t->main ? "(main)" : "", 12);
    put(l, "  ");
    if (holder)
        put_attr(l, GREEN);
    put(l, holder ? "*" : " ");
    if (holder)
        put_attr(l, RESET);
    putf(l, " %5s %5s %5s  ", held, wait, idle);
    where(fn, sizeof fn, t->func, t->file, t->line);
    put(l, fn);
}

static void func_title(line_t *l, const at_top_snap_t *s)
{
    title(l, "FUNCTIONS   SELF%  TOTAL%  ");
    putf(l, "(running samples, last ~5 s, %s)", s->thread_filter ? "one thread" : "all threads");
}

static void func_row(line_t *l, const at_top_func_t *f)
{
    char fn[AT_TOP_NAME * 6];
    putf(l, "          %6.1f  %6.1f  ", f->self_pct, f->total_pct);
    where(fn, sizeof fn, f->func, f->file, -1);
    put(l, fn);
}

static void mem_title(line_t *l, const at_top_snap_t *s)
{
    char live[32], peak[32], total[32];
    if (!s->have_alloc) {
        title(l, "MEMORY");
        put(l, s->started ? "  no allocation data yet" : "  n/a: the shim is not loaded");
        return;
    }
    title(l, "MEMORY      LIVE  ALLOCATED  ");
    at_text_bytes(live, sizeof live, (double)s->alloc_live);
    at_text_bytes(peak, sizeof peak, (double)s->alloc_peak);
    at_text_bytes(total, sizeof total, (double)s->alloc_total);
    putf(l, "now %s, peak %s, %s allocated", live, peak, total);
}

static void site_row(line_t *l, const at_top_site_t *st)
{
    char live[32], total[32], raw[AT_TOP_NAME * 3], esc[AT_TOP_NAME * 12];
    at_text_bytes(live, sizeof live, (double)st->live_bytes);
    at_text_bytes(total, sizeof total, (double)st->total_bytes);
    snprintf(raw, sizeof raw, "%s:%d %s", base_name(st->file), st->line, st->func);
    at_text_escape(esc, sizeof esc, raw);
    putf(l, "%12s %10s  ", live, total);
    put(l, esc);
}

static void import_title(line_t *l, const at_top_snap_t *s)
{
    title(l, "IMPORTS ");
    if (!s->have_imports)
        put(l, s->started ? "  no import data yet" : "  n/a: the shim is not loaded");
    else
        putf(l, "  %u so far, newest first   (module, finder / path entry finder, time)", s->import_count);
}

static void import_row(line_t *l, const at_top_import_t *im)
{
    char finder[160], time[32];
    snprintf(finder, sizeof finder, "%s%s%s", im->finder[0] ? im->finder : "-", im->path_finder[0] ? " / " : "",
             im->path_finder);
    if (im->failed)
        snprintf(time, sizeof time, "failed");
    else if (im->cumulative_us < 0)
        snprintf(time, sizeof time, "...");
    else
        at_text_duration(time, sizeof time, im->cumulative_us / 1e6);
    put(l, "  ");
    put_field(l, im->module, 30);
    put(l, " ");
    put_field(l, finder, 32);
    putf(l, " %9s", time);
}

static void gc_line(line_t *l, const at_top_snap_t *s)
{
    title(l, "GC ");
    if (!s->have_gc) {
        put(l, "  n/a");
        return;
    }
    unsigned long long runs = s->gc_runs[0] + s->gc_runs[1] + s->gc_runs[2];
    putf(l, "  %llu runs (gen0 %llu, gen1 %llu, gen2 %llu)  %llu objects collected", runs,
         (unsigned long long)s->gc_runs[0], (unsigned long long)s->gc_runs[1],
         (unsigned long long)s->gc_runs[2], (unsigned long long)s->gc_collected);
}

/* asyncio's tasks by event loop (a row only when there are any). */
static void asyncio_line(line_t *l, const at_top_snap_t *s)
{
    title(l, "asyncio ");
    for (int i = 0; i < s->nloops; i++)
        putf(l, "%s loop 0x%llx: %d tasks (%d pending)", i ? "," : " ", (unsigned long long)s->loops[i].loop,
             s->loops[i].tasks, s->loops[i].pending);
    if (s->loops_more)
        put(l, ", more loops");
    if (s->py_tasks)
        putf(l, "; %d pure-Python tasks", s->py_tasks);
}

static void keys_line(line_t *l, const at_top_snap_t *s)
{
    put_attr(l, REVERSE);
    put(l, "q quit  p pause  s sort  t thread");
    if (s->nprocs > 1)
        put(l, "  n process");
    if (s->last_output[0]) {
        char esc[sizeof s->last_output * 4];
        at_text_escape(esc, sizeof esc, s->last_output);
        put(l, "  | ");
        put(l, esc);
    }
    pad_to(l, l->width);
}

/* ---- layout -------------------------------------------------------------- */

typedef struct layout {
    int threads, funcs, sites, imports;
} layout_t;

/* Threads first (up to 3/8 of the free rows), then one row at a time to
 * functions, memory and imports while they have something to show. */
static layout_t share_rows(const at_top_snap_t *s, int rows, int nthreads)
{
    layout_t lay = { 0, 0, 0, 0 };
    int avail = rows - FIXED_ROWS - (s->nprocs > 1) - (s->nloops > 0 || s->py_tasks > 0);
    if (avail <= 0)
        return lay;
    int tmax = avail * 3 / 8 > 2 ? avail * 3 / 8 : 2;
    lay.threads = nthreads < tmax ? nthreads : tmax;
    if (lay.threads > avail)
        lay.threads = avail;
    avail -= lay.threads;
    int want[3] = { s->nfuncs, s->nsites, s->nimports }, *got[3] = { &lay.funcs, &lay.sites, &lay.imports };
    for (int progress = 1; avail > 0 && progress;) {
        progress = 0;
        for (int k = 0; k < 3 && avail > 0; k++)
            if (*got[k] < want[k]) {
                (*got[k])++;
                avail--;
                progress = 1;
            }
    }
    return lay;
}

void at_top_view_screen(FILE *out, const at_top_snap_t *s, int rows, int cols, int color, int paused)
{
    line_t l;
    uint32_t order[AT_TOP_MAX_THREADS];
    int n = at_top_view_thread_order(s, order, AT_TOP_MAX_THREADS);
    layout_t lay = share_rows(s, rows, n);
    int used = 0;
#define ROW(call)                            \
    do {                                     \
        if (used < rows) {                   \
            line_init(&l, cols, color);      \
            call;                            \
            emit(out, &l);                   \
            used++;                          \
        }                                    \
    } while (0)
    fputs("\033[H", out);
    ROW(header_line(&l, s, paused));
    ROW(status_line(&l, s));
    if (s->nprocs > 1)
        ROW(procs_line(&l, s));
    ROW(thread_title(&l));
    for (int i = 0; i < lay.threads; i++)
        ROW(thread_row(&l, s, thread_by_tid(s, order[i])));
    ROW(func_title(&l, s));
    for (int i = 0; i < lay.funcs; i++)
        ROW(func_row(&l, &s->funcs[i]));
    ROW(mem_title(&l, s));
    for (int i = 0; i < lay.sites; i++)
        ROW(site_row(&l, &s->sites[i]));
    ROW(import_title(&l, s));
    for (int i = 0; i < lay.imports; i++)
        ROW(import_row(&l, &s->imports[i]));
    ROW(gc_line(&l, s));
    if (s->nloops > 0 || s->py_tasks > 0)
        ROW(asyncio_line(&l, s));
    while (used < rows - 1)
        ROW((void)0);
    /* the last row without a newline, so the screen never scrolls */
    if (used < rows) {
        line_init(&l, cols, color);
        keys_line(&l, s);
        fputs(l.buf, out);
        fputs(color ? RESET "\033[K" : "\033[K", out);
    }
#undef ROW
    fflush(out);
}

/* ---- log mode ------------------------------------------------------------ */

void at_top_view_line(FILE *out, const at_top_snap_t *s)
{
    char held[16], wait[16], idle[16], fn[AT_TOP_NAME * 6], name[AT_TOP_NAME * 4];
    uint32_t order[AT_TOP_MAX_THREADS];
    int n = at_top_view_thread_order(s, order, AT_TOP_MAX_THREADS);
    fprintf(out, "%7.1fs pid %d", s->uptime_s, (int)s->pid);
    if (s->exited && s->started)
        fprintf(out, " exited %d", s->exit_status);
    else if (!s->attached) {
        at_text_escape(name, sizeof name, s->status[0] ? s->status : "starting");
        fprintf(out, " waiting (%s)", name);
    }
    fprintf(out, " samples %llu gil %s holder %u", (unsigned long long)s->interval_samples,
            s->gil_source == AT_TOP_SRC_SHIM ? "shim" : s->gil_source == AT_TOP_SRC_SAMPLES ? "samples" : "none",
            s->gil_holder);
    for (int i = 0; i < n; i++) {
        const at_top_thread_t *t = thread_by_tid(s, order[i]);
        pct_field(held, sizeof held, t->held_pct);
        pct_field(wait, sizeof wait, t->wait_pct);
        pct_field(idle, sizeof idle, t->idle_pct);
        at_text_escape(name, sizeof name, t->name[0] ? t->name : t->main ? "main" : "-");
        where(fn, sizeof fn, t->func, t->file, t->line);
        fprintf(out, " | thread %u (%s) held %s%% wait %s%% idle %s%% in %s", t->tid, name, held, wait, idle, fn);
    }
    if (s->nfuncs > 0) {
        where(fn, sizeof fn, s->funcs[0].func, s->funcs[0].file, -1);
        fprintf(out, " | top %s %.1f%%", fn, s->funcs[0].self_pct);
    }
    if (s->have_alloc) {
        char live[32], peak[32];
        at_text_bytes(live, sizeof live, (double)s->alloc_live);
        at_text_bytes(peak, sizeof peak, (double)s->alloc_peak);
        fprintf(out, " | live %s peak %s", live, peak);
    }
    if (s->have_imports)
        fprintf(out, " | imports %u", s->import_count);
    if (s->have_gc)
        fprintf(out, " | gc %llu", (unsigned long long)(s->gc_runs[0] + s->gc_runs[1] + s->gc_runs[2]));
    for (int i = 0; i < s->nloops; i++)
        fprintf(out, "%s0x%llx %d", i ? ", " : " | tasks by loop ", (unsigned long long)s->loops[i].loop, s->loops[i].tasks);
    if (s->nprocs > 1) {
        fputs(" | procs", out);
        for (int i = 0; i < s->nprocs; i++) {
            at_text_escape(name, sizeof name, s->procs[i].comm);
            pct_field(held, sizeof held, s->procs[i].cpu_pct);
            fprintf(out, " %d (%s) cpu %s%%", (int)s->procs[i].pid, name, held);
        }
    }
    fputc('\n', out);
    fflush(out);
}
