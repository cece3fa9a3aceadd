/* SPDX-License-Identifier: MIT */
/* bpf_data.c - what an eBPF recording holds, and its file <session>/<pid>.bpf.
 *
 * <pid>.bpf is line-oriented text, fields separated by tabs, strings
 * escaped (\\ \t \n \r \xHH), so a module or function name can hold any
 * byte.  It ends with "end <lines>" so a file cut short is recognised:
 *     archtrace-bpf 1
 *     pid 1234 / comm python3.11 / version 3.11.2 / build static
 *     attached START_NS END_NS EXITED / rate_hz 99
 *     view NAME AVAIL HOW                  gil, imports, gc, samples
 *     stat NAME VALUE                      probe-side counters
 *     gil TID WAIT_NS WAITS CALLS TIMEOUTS MAX_WAIT_NS OPEN
 *     import TID START_NS END_NS DEPTH FOUND NAME
 *     gcgen SLOT RUNS TOTAL_NS COLLECTED   / gc TID GEN START END COLLECTED
 *     samples TOTAL WITH_PY STACKS_DROPPED / dropped IMPORTS GC
 *     oncpu CPU_NS INTERVALS               the sampler's clock (rate per CPU-s)
 *     stack COUNT TID GIL FRAME...         root first, "func (file:line)"
 *     end NLINES
 * The reader trusts nothing: every number is parsed strictly, every
 * table is bounded by the same caps as the writer.
 */
#include "session/bpf_data.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "session/session.h"
#include "session/tsv.h"

#define MAGIC      "archtrace-bpf"
#define VERSION    1
#define MAX_FIELDS (4 + AT_BPF_PY_MAX + AT_BPF_USTACK_MAX + 8)

const char *const at_bpf_view_names[AT_BPF_VIEWS] = { "gil", "imports", "gc", "samples" };
const char *const at_bpf_stat_names[AT_BPF_ST_COUNT] = {
    "lost_import", "lost_gc", "lost_sample", "import_too_deep",
    "no_thread_state", "python_truncated", "map_full", "samples",
};

/* ---- building ------------------------------------------------------------ */

/* Room for element n: capacities are 16, then powers of two. */
static int grow(void **arr, size_t n, size_t elem)
{
    if (n != 0 && (n < 16 || (n & (n - 1)) != 0))
        return 0;
    size_t cap = n ? n * 2 : 16;
    void *p = realloc(*arr, cap * elem);
    if (!p)
        return -ENOMEM;
    *arr = p;
    return 0;
}

int at_bpf_data_add_import(at_bpf_data_t *d, const struct at_bpf_import_ev *e)
{
    if (d->nimports >= AT_BPF_MAX_IMPORTS) {
        d->imports_dropped++;
        return -ENOSPC;
    }
    if (grow((void **)&d->imports, d->nimports, sizeof *d->imports) < 0)
        return -ENOMEM;
    at_bpf_import_row_t *r = &d->imports[d->nimports++];
    memset(r, 0, sizeof *r);
    r->tid = e->tid;
    r->depth = e->depth;
    r->found = e->found;
    r->start_ns = e->start_ns;
    r->end_ns = e->end_ns >= e->start_ns ? e->end_ns : e->start_ns;
    memcpy(r->name, e->name, sizeof r->name);
    r->name[sizeof r->name - 1] = '\0';
    return 0;
}

int at_bpf_data_add_gc(at_bpf_data_t *d, const struct at_bpf_gc_ev *e)
{
    if (d->ngc >= AT_BPF_MAX_GC) {
        d->gc_dropped++;
        return -ENOSPC;
    }
    if (grow((void **)&d->gcs, d->ngc, sizeof *d->gcs) < 0)
        return -ENOMEM;
    at_bpf_gc_row_t *r = &d->gcs[d->ngc++];
    r->tid = e->tid;
    r->generation = e->generation;
    r->start_ns = e->start_ns;
    r->end_ns = e->end_ns >= e->start_ns ? e->end_ns : e->start_ns;
    r->collected = e->collected;
    return 0;
}

int at_bpf_data_add_gil(at_bpf_data_t *d, const at_bpf_gil_row_t *row)
{
    if (d->ngil >= AT_BPF_MAX_THREADS)
        return -ENOSPC;
    if (grow((void **)&d->gil, d->ngil, sizeof *d->gil) < 0)
        return -ENOMEM;
    d->gil[d->ngil++] = *row;
    return 0;
}

static int cmp_start(const at_bpf_import_row_t *x, const at_bpf_import_row_t *y)
{
    if (x->start_ns != y->start_ns)
        return x->start_ns < y->start_ns ? -1 : 1;
    return x->end_ns > y->end_ns ? -1 : x->end_ns < y->end_ns; /* outer first */
}

static int cmp_import(const void *a, const void *b)
{
    return cmp_start(a, b);
}

static int cmp_thread_import(const void *a, const void *b)
{
    const at_bpf_import_row_t *x = a, *y = b;
    if (x->tid != y->tid)
        return x->tid < y->tid ? -1 : 1;
    return cmp_start(x, y);
}

/* Self time: the cumulative time minus that of the imports nested
 * directly inside (same thread), found with a stack over each thread's
 * records in start order; then everything back in start order. */
void at_bpf_data_finish(at_bpf_data_t *d)
{
    size_t stack[AT_BPF_IMPORT_DEPTH * 2];
    int top = 0;
    if (!d->nimports)
        return;
    qsort(d->imports, d->nimports, sizeof *d->imports, cmp_thread_import);
    for (size_t k = 0; k < d->nimports; k++) {
        at_bpf_import_row_t *r = &d->imports[k];
        uint64_t cum = r->end_ns - r->start_ns;
        r->self_ns = cum;
        if (k && d->imports[k - 1].tid != r->tid)
            top = 0;
        while (top && d->imports[stack[top - 1]].end_ns <= r->start_ns)
            top--;
        if (top) {
            at_bpf_import_row_t *p = &d->imports[stack[top - 1]];
            p->self_ns = p->self_ns > cum ? p->self_ns - cum : 0;
        }
        if (top < (int)(sizeof stack / sizeof stack[0]))
            stack[top++] = k;
    }
    qsort(d->imports, d->nimports, sizeof *d->imports, cmp_import);
}

void at_bpf_data_free(at_bpf_data_t *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->nstacks; i++) {
        for (int k = 0; k < d->stacks[i].nframes; k++)
            free(d->stacks[i].frames[k]);
        free(d->stacks[i].frames);
    }
    free(d->stacks);
    free(d->gil);
    free(d->imports);
    free(d->gcs);
    memset(d, 0, sizeof *d);
}

/* ---- writing ------------------------------------------------------------- */

static void put_kv(FILE *f, const char *key, const char *val)
{
    fprintf(f, "%s\t", key);
    at_tsv_put(f, val);
    fputc('\n', f);
}

static long save_body(const at_bpf_data_t *d, FILE *f)
{
    long lines = 10; /* the fixed lines; the loops count theirs */
    fprintf(f, "%s\t%d\npid\t%d\n", MAGIC, VERSION, (int)d->pid);
    put_kv(f, "comm", d->comm);
    put_kv(f, "version", d->version);
    put_kv(f, "build", d->build);
    fprintf(f, "attached\t%" PRIu64 "\t%" PRIu64 "\t%d\nrate_hz\t%.3f\n", d->attach_ns, d->end_ns,
            d->exited, d->rate_hz);
    for (int v = 0; v < AT_BPF_VIEWS; v++, lines++) {
        fprintf(f, "view\t%s\t%d\t", at_bpf_view_names[v], d->avail[v]);
        at_tsv_put(f, d->how[v]);
        fputc('\n', f);
    }
    for (int s = 0; s < AT_BPF_ST_COUNT; s++, lines++)
        fprintf(f, "stat\t%s\t%" PRIu64 "\n", at_bpf_stat_names[s], d->stats[s]);
    for (size_t i = 0; i < d->ngil; i++, lines++) {
        const at_bpf_gil_row_t *r = &d->gil[i];
        fprintf(f, "gil\t%u\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\t%u\n",
                r->tid, r->wait_ns, r->waits, r->calls, r->timeouts, r->max_wait_ns, r->open);
    }
    for (size_t i = 0; i < d->nimports; i++, lines++) {
        const at_bpf_import_row_t *r = &d->imports[i];
        fprintf(f, "import\t%u\t%" PRIu64 "\t%" PRIu64 "\t%u\t%d\t", r->tid, r->start_ns,
                r->end_ns, r->depth, r->found);
        at_tsv_put(f, r->name);
        fputc('\n', f);
    }
    for (int g = 0; g < AT_BPF_GC_SLOTS; g++, lines++)
        fprintf(f, "gcgen\t%d\t%" PRIu64 "\t%" PRIu64 "\t%" PRId64 "\n", g, (uint64_t)d->gc[g].runs,
                (uint64_t)d->gc[g].total_ns, (int64_t)d->gc[g].collected);
    for (size_t i = 0; i < d->ngc; i++, lines++) {
        const at_bpf_gc_row_t *r = &d->gcs[i];
        fprintf(f, "gc\t%u\t%d\t%" PRIu64 "\t%" PRIu64 "\t%" PRId64 "\n", r->tid, r->generation,
                r->start_ns, r->end_ns, r->collected);
    }
    fprintf(f, "samples\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\n", d->samples, d->samples_py,
            d->stacks_dropped);
    fprintf(f, "dropped\t%" PRIu64 "\t%" PRIu64 "\n", d->imports_dropped, d->gc_dropped);
    fprintf(f, "oncpu\t%" PRIu64 "\t%" PRIu64 "\n", d->oncpu_ns, d->oncpu_intervals);
    for (size_t i = 0; i < d->nstacks; i++, lines++) {
        const at_bpf_stack_row_t *r = &d->stacks[i];
        fprintf(f, "stack\t%" PRIu64 "\t%u\t%u", r->count, r->tid, r->gil);
        for (int k = 0; k < r->nframes; k++) {
            fputc('\t', f);
            at_tsv_put(f, r->frames[k]);
        }
        fputc('\n', f);
    }
    return lines;
}

int at_bpf_data_save(const at_bpf_data_t *d, const char *dir)
{
    FILE *f = at_session_create_file(dir, d->pid, "bpf");
    if (!f)
        return -errno;
    long lines = save_body(d, f);
    fprintf(f, "end\t%ld\n", lines);
    int rc = ferror(f) ? -EIO : 0;
    if (fclose(f) != 0 && rc == 0)
        rc = -errno;
    return rc;
}

/* ---- reading ------------------------------------------------------------- */

typedef struct loader {
    at_bpf_data_t *d;
    long lines;            /* lines read, "end" excluded                 */
    int ended;             /* saw the end line with a matching count     */
    char *err;
    size_t errlen;
} loader_t;

static int fail(loader_t *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(loader_t *l, const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(l->err, l->errlen, "line %ld: ", l->lines + 1);
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < l->errlen)
        vsnprintf(l->err + n, l->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return -EBADMSG;
}

static int u64_of(const char *s, uint64_t *out)
{
    char *end;
    if (!s || !*s || *s == '-')
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

static int i64_of(const char *s, int64_t *out)
{
    char *end;
    if (!s || !*s)
        return -1;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

/* Parse n unsigned fields f[0..n) into out[]. */
static int u64s(char **f, int n, uint64_t *out)
{
    for (int i = 0; i < n; i++)
        if (u64_of(f[i], &out[i]) < 0)
            return -1;
    return 0;
}

static int load_view(loader_t *l, char **f, int n)
{
    uint64_t avail;
    for (int v = 0; n == 4 && v < AT_BPF_VIEWS; v++) {
        if (strcmp(f[1], at_bpf_view_names[v]) != 0)
            continue;
        if (u64_of(f[2], &avail) < 0 || avail > 1 || at_tsv_unescape(f[3]) < 0)
            return fail(l, "bad view line");
        l->d->avail[v] = (int)avail;
        snprintf(l->d->how[v], sizeof l->d->how[v], "%s", f[3]);
        return 0;
    }
    return n == 4 ? 0 : fail(l, "bad view line"); /* unknown views: newer writer */
}

static int load_stat(loader_t *l, char **f, int n)
{
    uint64_t v;
    if (n != 3 || u64_of(f[2], &v) < 0)
        return fail(l, "bad stat line");
    for (int s = 0; s < AT_BPF_ST_COUNT; s++)
        if (strcmp(f[1], at_bpf_stat_names[s]) == 0)
            l->d->stats[s] = v;
    return 0;
}

static int load_gil(loader_t *l, char **f, int n)
{
    uint64_t v[7];
    if (n != 8 || u64s(f + 1, 7, v) < 0 || v[0] > UINT32_MAX || v[6] > 1)
        return fail(l, "bad gil line");
    at_bpf_gil_row_t r = { (uint32_t)v[0], (uint32_t)v[6], v[1], v[2], v[3], v[4], v[5] };
    return at_bpf_data_add_gil(l->d, &r) == -ENOMEM ? -ENOMEM : 0;
}

static int load_import(loader_t *l, char **f, int n)
{
    uint64_t v[4];
    int64_t found;
    struct at_bpf_import_ev e = { .kind = AT_BPF_EV_IMPORT };
    if (n != 7 || u64_of(f[1], &v[0]) < 0 || u64_of(f[2], &v[1]) < 0 || u64_of(f[3], &v[2]) < 0 ||
        u64_of(f[4], &v[3]) < 0 || i64_of(f[5], &found) < 0 || at_tsv_unescape(f[6]) < 0 ||
        v[0] > UINT32_MAX || v[3] > UINT32_MAX || v[2] < v[1])
        return fail(l, "bad import line");
    e.tid = (uint32_t)v[0];
    e.start_ns = v[1];
    e.end_ns = v[2];
    e.depth = (uint32_t)v[3];
    e.found = found != 0;
    snprintf(e.name, sizeof e.name, "%s", f[6]);
    return at_bpf_data_add_import(l->d, &e) == -ENOMEM ? -ENOMEM : 0;
}

static int load_gcgen(loader_t *l, char **f, int n)
{
    uint64_t slot, runs, total;
    int64_t coll;
    if (n != 5 || u64_of(f[1], &slot) < 0 || slot >= AT_BPF_GC_SLOTS || u64_of(f[2], &runs) < 0 ||
        u64_of(f[3], &total) < 0 || i64_of(f[4], &coll) < 0)
        return fail(l, "bad gcgen line");
    l->d->gc[slot].runs = runs;
    l->d->gc[slot].total_ns = total;
    l->d->gc[slot].collected = coll;
    return 0;
}

static int load_gc(loader_t *l, char **f, int n)
{
    uint64_t tid, start, end;
    int64_t gen, coll;
    if (n != 6 || u64_of(f[1], &tid) < 0 || i64_of(f[2], &gen) < 0 || u64_of(f[3], &start) < 0 ||
        u64_of(f[4], &end) < 0 || i64_of(f[5], &coll) < 0 || tid > UINT32_MAX || end < start ||
        gen < INT32_MIN || gen > INT32_MAX)
        return fail(l, "bad gc line");
    struct at_bpf_gc_ev e = { AT_BPF_EV_GC, (uint32_t)tid, start, end, (int32_t)gen, 0, coll };
    return at_bpf_data_add_gc(l->d, &e) == -ENOMEM ? -ENOMEM : 0;
}

static int load_stack(loader_t *l, char **f, int n)
{
    uint64_t v[3];
    at_bpf_data_t *d = l->d;
    if (n < 4 || u64s(f + 1, 3, v) < 0 || v[1] > UINT32_MAX || v[2] > 1)
        return fail(l, "bad stack line");
    if (d->nstacks >= AT_BPF_MAX_STACKS)
        return 0;
    if (grow((void **)&d->stacks, d->nstacks, sizeof *d->stacks) < 0)
        return -ENOMEM;
    at_bpf_stack_row_t *r = &d->stacks[d->nstacks];
    r->count = v[0];
    r->tid = (uint32_t)v[1];
    r->gil = (uint32_t)v[2];
    r->nframes = 0;
    r->frames = calloc((size_t)(n - 4) + 1, sizeof *r->frames);
    if (!r->frames)
        return -ENOMEM;
    d->nstacks++;
    for (int k = 4; k < n; k++) {
        if (at_tsv_unescape(f[k]) < 0)
            return fail(l, "bad escape in a stack frame");
        if (!(r->frames[r->nframes] = strdup(f[k])))
            return -ENOMEM;
        r->nframes++;
    }
    return 0;
}

static int load_header(loader_t *l, char **f, int n)
{
    at_bpf_data_t *d = l->d;
    uint64_t v[3];
    int64_t pid;
    if (strcmp(f[0], "pid") == 0 && n == 2 && i64_of(f[1], &pid) == 0 && pid > 0 && pid <= INT32_MAX)
        d->pid = (pid_t)pid;
    else if (strcmp(f[0], "comm") == 0 && n == 2 && at_tsv_unescape(f[1]) == 0)
        snprintf(d->comm, sizeof d->comm, "%s", f[1]);
    else if (strcmp(f[0], "version") == 0 && n == 2 && at_tsv_unescape(f[1]) == 0)
        snprintf(d->version, sizeof d->version, "%s", f[1]);
    else if (strcmp(f[0], "build") == 0 && n == 2 && at_tsv_unescape(f[1]) == 0)
        snprintf(d->build, sizeof d->build, "%s", f[1]);
    else if (strcmp(f[0], "attached") == 0 && n == 4 && u64s(f + 1, 3, v) == 0 && v[1] >= v[0] &&
             v[2] <= 1) {
        d->attach_ns = v[0];
        d->end_ns = v[1];
        d->exited = (int)v[2];
    } else if (strcmp(f[0], "rate_hz") == 0 && n == 2) {
        char *end;
        d->rate_hz = strtod(f[1], &end);
        if (*end || !(d->rate_hz >= 0 && d->rate_hz < 1e6))
            return fail(l, "bad rate");
    } else if (strcmp(f[0], "samples") == 0 && n == 4 && u64s(f + 1, 3, v) == 0) {
        d->samples = v[0];
        d->samples_py = v[1];
        d->stacks_dropped = v[2];
    } else if (strcmp(f[0], "oncpu") == 0 && n == 3 && u64s(f + 1, 2, v) == 0) {
        d->oncpu_ns = v[0];
        d->oncpu_intervals = v[1];
    } else if (strcmp(f[0], "dropped") == 0 && n == 3 && u64s(f + 1, 2, v) == 0) {
        d->imports_dropped += v[0];
        d->gc_dropped += v[1];
    } else
        return fail(l, "bad %s line", f[0]);
    return 0;
}

static int load_line(loader_t *l, char *line)
{
    char *f[MAX_FIELDS];
    int n = 0;
    line[strcspn(line, "\n")] = '\0';
    for (char *p = line; n < MAX_FIELDS; n++) {
        f[n] = p;
        char *tab = strchr(p, '\t');
        if (!tab) {
            n++;
            break;
        }
        *tab = '\0';
        p = tab + 1;
    }
    if (l->ended)
        return fail(l, "data after the end line");
    if (strcmp(f[0], "end") == 0) {
        uint64_t count;
        if (n != 2 || u64_of(f[1], &count) < 0 || count != (uint64_t)l->lines)
            return fail(l, "end line does not match the %ld lines read", l->lines);
        l->ended = 1;
        return 0;
    }
    l->lines++;
    static const struct { const char *key; int (*fn)(loader_t *, char **, int); } kinds[] = {
        { "view", load_view }, { "stat", load_stat }, { "gil", load_gil },
        { "import", load_import }, { "gcgen", load_gcgen }, { "gc", load_gc },
        { "stack", load_stack },
    };
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
        if (strcmp(f[0], kinds[k].key) == 0)
            return kinds[k].fn(l, f, n);
    return load_header(l, f, n);
}

static int load_lines(loader_t *l, FILE *f)
{
    char *line = NULL;
    size_t cap = 0;
    int rc = 0;
    ssize_t got = getline(&line, &cap, f);
    if (got <= 0 || strncmp(line, MAGIC "\t1\n", sizeof(MAGIC "\t1\n") - 1) != 0) {
        free(line);
        snprintf(l->err, l->errlen, "not an archtrace-bpf 1 file");
        return -EBADMSG;
    }
    l->lines = 1;
    while (rc == 0 && getline(&line, &cap, f) > 0)
        rc = load_line(l, line);
    free(line);
    if (rc == 0 && !l->ended) {
        snprintf(l->err, l->errlen, "truncated after %ld lines (no end line)", l->lines);
        rc = -EBADMSG;
    }
    return rc;
}

int at_bpf_data_load(const char *dir, pid_t pid, at_bpf_data_t *d, char *err, size_t errlen)
{
    char dummy[8];
    memset(d, 0, sizeof *d);
    FILE *f = at_session_open_file(dir, pid, "bpf");
    if (!f)
        return errno == ENOENT ? -ENOENT : -errno;
    loader_t l = { d, 0, 0, err ? err : dummy, err ? errlen : sizeof dummy };
    int rc = load_lines(&l, f);
    fclose(f);
    if (rc == -ENOMEM)
        snprintf(l.err, l.errlen, "out of memory");
    if (rc < 0) {
        at_bpf_data_free(d);
        return rc == -ENOMEM ? rc : -EBADMSG;
    }
    if (d->pid != pid) {
        snprintf(l.err, l.errlen, "file is for pid %d, not %d", (int)d->pid, (int)pid);
        at_bpf_data_free(d);
        return -EBADMSG;
    }
    at_bpf_data_finish(d);
    return 0;
}

int at_bpf_data_read(const char *dir, pid_t pid, at_bpf_data_t *d)
{
    char err[256], stem[32];
    int rc = at_bpf_data_load(dir, pid, d, err, sizeof err);
    if (rc < 0 && rc != -ENOENT)
        fprintf(stderr, "archtrace: %s/%s.bpf: %s\n", dir, at_key_name(pid, stem, sizeof stem), err);
    return rc;
}
