/* SPDX-License-Identifier: MIT */
/* imports_model.c - one process's imports from <pid>.imports, or built
 * from an eBPF recording's module loads (see imports_model.h).
 *
 * <pid>.imports is read whole, checked (at_imports_decode) and used in
 * place: every string is an (offset, length) into its arena, validated
 * once.  An eBPF recording becomes an image of the same format in memory,
 * so every reader of the model sees one shape.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "session/bpf_data.h"
#include "session/imports_model.h"
#include "session/session.h"

#define MAX_FILE_SIZE  (64u << 20)
#define EBPF_MAX_DEPTH 64u        /* enclosing imports tracked per thread */
#define EBPF_MAX_TIDS  64u        /* threads tracked for enclosing        */

/* ---- decoding --------------------------------------------------------- */

static int fail(char *why, size_t n, const char *fmt, unsigned long a, unsigned long b)
{
    snprintf(why, n, fmt, a, b);
    return -EINVAL;
}

static int str_ok(at_imp_str_t s, uint32_t arena_used)
{
    if (s.off == AT_IMP_NONE)
        return s.len == 0;
    return s.off <= arena_used && s.len <= arena_used - s.off;
}

static int header_check(const at_imp_header_t *h, size_t size, char *why, size_t n)
{
    if (size < sizeof(*h))
        return fail(why, n, "truncated: %lu bytes, the header alone needs %lu", size, sizeof(*h));
    if (h->magic != AT_IMP_MAGIC)
        return fail(why, n, "not an imports file (magic %#lx, expected %#lx)", h->magic, AT_IMP_MAGIC);
    if (h->version != AT_IMP_VERSION)
        return fail(why, n, "format version %lu, this archtrace reads version %lu", h->version,
                    AT_IMP_VERSION);
    if (h->header_size != sizeof(*h) || h->record_size != sizeof(at_imp_record_t))
        return fail(why, n, "layout mismatch: header %lu bytes, record %lu bytes", h->header_size,
                    h->record_size);
    if (!h->capacity || h->capacity > (1u << 24) || h->arena_size > (1u << 30))
        return fail(why, n, "implausible capacity %lu or arena size %lu", h->capacity, h->arena_size);
    size_t want = at_imp_file_size(h->capacity, h->arena_size);
    if (size != want)
        return fail(why, n, "truncated or padded: %lu bytes, expected %lu", size, want);
    if (h->count > h->capacity)
        return fail(why, n, "corrupt: %lu records in a table of %lu", h->count, h->capacity);
    if (h->arena_used > h->arena_size)
        return fail(why, n, "corrupt: %lu string bytes in an arena of %lu", h->arena_used, h->arena_size);
    return 0;
}

static int record_check(const at_imp_record_t *rec, uint32_t i, uint32_t arena_used, char *why, size_t n)
{
    const at_imp_record_t *r = &rec[i];
    const at_imp_str_t strs[] = { r->module, r->parent, r->finder, r->path_finder, r->path_entry,
                                  r->loader, r->origin, r->error, r->consulted };
    for (size_t k = 0; k < sizeof(strs) / sizeof(strs[0]); k++)
        if (!str_ok(strs[k], arena_used))
            return fail(why, n, "corrupt: record %lu string %lu points outside the arena", i, k);
    if (r->enclosing != AT_IMP_NONE) {
        if (r->enclosing >= i)
            return fail(why, n, "corrupt: record %lu is enclosed by later record %lu", i, r->enclosing);
        const at_imp_record_t *up = &rec[r->enclosing];
        if (up->tid != r->tid || up->depth + 1 != r->depth)
            return fail(why, n, "corrupt: record %lu does not nest in record %lu", i, r->enclosing);
    }
    if ((r->flags & AT_IMP_F_DONE) &&
        (r->end_ns < r->start_ns || r->children_ns > r->end_ns - r->start_ns))
        return fail(why, n, "corrupt: record %lu has inconsistent times (children %lu ns)", i,
                    r->children_ns);
    return 0;
}

int at_imports_decode(const void *raw, size_t size, at_imp_view_t *v, char *why, size_t why_size)
{
    const at_imp_header_t *h = raw;
    snprintf(why, why_size, "ok");
    if (!raw)
        return fail(why, why_size, "no data", 0, 0);
    int rc = header_check(h, size, why, why_size);
    if (rc < 0)
        return rc;
    v->h = h;
    v->rec = (const at_imp_record_t *)((const char *)raw + sizeof(*h));
    v->arena = (const char *)(v->rec + h->capacity);
    for (uint32_t i = 0; i < h->count; i++)
        if ((rc = record_check(v->rec, i, h->arena_used, why, why_size)) < 0)
            return rc;
    return 0;
}

static int read_all(FILE *f, void **buf, size_t *size)
{
    struct stat st;
    if (fstat(fileno(f), &st) < 0)
        return -errno;
    if (st.st_size < 0 || (unsigned long long)st.st_size > MAX_FILE_SIZE)
        return -EFBIG;
    *size = (size_t)st.st_size;
    *buf = malloc(*size ? *size : 1);
    if (!*buf)
        return -ENOMEM;
    if (fread(*buf, 1, *size, f) != *size) {
        free(*buf);
        *buf = NULL;
        return -EIO;
    }
    return 0;
}

int at_imports_load(const char *dir, int pid, void **buf, at_imp_view_t *v)
{
    *buf = NULL;
    FILE *f = at_session_open_file(dir, (pid_t)pid, AT_IMP_SUFFIX);
    if (!f) {
        int e = errno;
        if (e != ENOENT)
            fprintf(stderr, "archtrace: cannot open %d.%s: %s\n", pid, AT_IMP_SUFFIX, strerror(e));
        return -e;
    }
    size_t size = 0;
    int rc = read_all(f, buf, &size);
    fclose(f);
    char why[160];
    if (rc < 0) {
        fprintf(stderr, "archtrace: cannot read %d.%s: %s\n", pid, AT_IMP_SUFFIX, strerror(-rc));
        return rc;
    }
    if ((rc = at_imports_decode(*buf, size, v, why, sizeof(why))) < 0) {
        fprintf(stderr, "archtrace: %d.%s rejected: %s\n", pid, AT_IMP_SUFFIX, why);
        free(*buf);
        *buf = NULL;
    }
    return rc;
}

/* ---- from an eBPF recording --------------------------------------------- */

/* Where each thread's open imports are, by depth: the enclosing import of
 * a row at depth d is the last row of its thread at depth d - 1. */
typedef struct enclosing_map {
    uint32_t tid[EBPF_MAX_TIDS];
    uint32_t last[EBPF_MAX_TIDS][EBPF_MAX_DEPTH];
    unsigned n;
} enclosing_map_t;

static uint32_t *thread_slots(enclosing_map_t *m, uint32_t tid)
{
    for (unsigned i = 0; i < m->n; i++)
        if (m->tid[i] == tid)
            return m->last[i];
    if (m->n == EBPF_MAX_TIDS)
        return NULL;
    m->tid[m->n] = tid;
    for (unsigned d = 0; d < EBPF_MAX_DEPTH; d++)
        m->last[m->n][d] = AT_IMP_NONE;
    return m->last[m->n++];
}

static void ebpf_record(at_imp_record_t *r, const at_bpf_import_row_t *row, uint32_t *arena_used, char *arena,
                        uint32_t enclosing)
{
    size_t len = strnlen(row->name, sizeof row->name);
    memset(r, 0, sizeof *r);
    r->start_ns = row->start_ns;
    r->end_ns = row->end_ns > row->start_ns ? row->end_ns : row->start_ns;
    uint64_t cum = r->end_ns - r->start_ns;
    r->children_ns = cum > row->self_ns ? cum - row->self_ns : 0;
    r->tid = row->tid;
    r->enclosing = enclosing;
    r->depth = (uint16_t)(row->depth < UINT16_MAX ? row->depth : UINT16_MAX);
    r->flags = AT_IMP_F_DONE | AT_IMP_F_AUDITED | (row->found ? AT_IMP_F_OK : 0);
    r->module = (at_imp_str_t){ *arena_used, (uint32_t)len };
    memcpy(arena + *arena_used, row->name, len);
    *arena_used += (uint32_t)len;
    at_imp_str_t none = { AT_IMP_NONE, 0 };
    r->parent = r->finder = r->path_finder = r->path_entry = none;
    r->loader = r->origin = r->error = r->consulted = none;
}

/* The image of a <pid>.imports holding d's module loads (rows in start
 * order): what the probes see is the module's name, its thread and depth,
 * its times and whether a module came back. */
static int ebpf_image(const at_bpf_data_t *d, void **buf, size_t *size)
{
    uint32_t n = (uint32_t)d->nimports, arena_size = n * (uint32_t)AT_BPF_NAME_MAX + 1;
    uint32_t capacity = n ? n : 1;   /* the format has room for one at least */
    *size = at_imp_file_size(capacity, arena_size);
    *buf = calloc(1, *size);
    enclosing_map_t *map = calloc(1, sizeof *map);
    if (!*buf || !map) {
        free(map);
        return -ENOMEM;
    }
    at_imp_header_t *h = *buf;
    *h = (at_imp_header_t){ .magic = AT_IMP_MAGIC, .version = AT_IMP_VERSION, .header_size = sizeof *h,
                            .record_size = sizeof(at_imp_record_t), .capacity = capacity, .arena_size = arena_size,
                            .count = n, .dropped_records = d->imports_dropped, .t0_ns = d->attach_ns,
                            .pid = d->pid, .state = d->exited ? AT_IMP_STATE_EXITED : AT_IMP_STATE_RUNNING,
                            .start_phase = AT_IMP_PHASE_RUN };
    at_imp_record_t *rec = (at_imp_record_t *)(h + 1);
    char *arena = (char *)(rec + capacity);
    for (uint32_t i = 0; i < n; i++) {
        const at_bpf_import_row_t *row = &d->imports[i];
        uint32_t *slots = thread_slots(map, row->tid), enclosing = AT_IMP_NONE;
        if (slots && row->depth > 0 && row->depth <= EBPF_MAX_DEPTH)
            enclosing = slots[row->depth - 1];
        ebpf_record(&rec[i], row, &h->arena_used, arena, enclosing);
        if (slots && row->depth < EBPF_MAX_DEPTH) {
            slots[row->depth] = i;
            for (uint32_t k = row->depth + 1; k < EBPF_MAX_DEPTH; k++)
                slots[k] = AT_IMP_NONE;
        }
    }
    free(map);
    return 0;
}

static int load_ebpf(const char *dir, pid_t pid, at_imports_model_t *m)
{
    at_bpf_data_t d;
    char stem[32], why[160];
    int rc = at_bpf_data_read(dir, pid, &d);
    if (rc < 0)
        return rc;
    size_t size = 0;
    rc = d.avail[AT_BPF_VIEW_IMPORTS] ? ebpf_image(&d, &m->buf, &size) : -ENOENT;
    at_bpf_data_free(&d);
    if (rc == 0 && (rc = at_imports_decode(m->buf, size, &m->v, why, sizeof why)) < 0)
        fprintf(stderr, "archtrace: %s/%s.bpf: imports: %s\n", dir, at_key_name(pid, stem, sizeof stem), why);
    m->source = "ebpf";
    return rc;
}

/* ---- the model -------------------------------------------------------------- */

int at_imports_model_load(const char *dir, pid_t key, at_imports_model_t *m)
{
    memset(m, 0, sizeof *m);
    int rc = at_imports_load(dir, key, &m->buf, &m->v);
    if (rc == 0) {
        m->source = "preload";
        m->chains = 1;
    } else if (rc == -ENOENT) {
        rc = load_ebpf(dir, key, m);
    }
    if (rc < 0)
        at_imports_model_free(m);
    return rc;
}

void at_imports_model_free(at_imports_model_t *m)
{
    free(m->buf);
    memset(m, 0, sizeof *m);
}
