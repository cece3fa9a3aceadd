/* SPDX-License-Identifier: MIT */
/* imports_store.c - the writer of <pid>.imports: record table and string
 * arena in a shared mapping (layout in common/imports_format.h).
 *
 * Runs with the GIL held, so one writer at a time; `count` and
 * `arena_used` are published with release stores after what they cover
 * is in place, for a reader that looks while the process runs or after
 * it was killed.  Equal strings (finder and loader names, path entries,
 * parents) are stored once, found through a small hash table; sharing is
 * only a saving, so a full table just forgets old entries.
 */
#include <errno.h>
#include <string.h>
#include "imports.h"
#include "shim.h"

#define FILE_SIZE    at_imp_file_size(AT_IMP_CAPACITY, AT_IMP_ARENA_SIZE)
#define DEDUP_SLOTS  2048   /* strings remembered for sharing              */
#define DEDUP_PROBES 4
#define NAMES_MAX    2048   /* bytes of one list of finder names           */

at_imp_header_t *at_imp_file;
const at_imp_str_t at_imp_no_str = { AT_IMP_NONE, 0 };

static at_imp_record_t *records;     /* the file's record array            */
static char *arena;                  /* the file's string arena            */
static int table_full_noted;         /* at_shim_note sent once             */

typedef struct dedup_slot {
    uint32_t hash;                   /* FNV-1a of the bytes                */
    uint32_t used;                   /* the slot holds a string            */
    at_imp_str_t ref;                /* where the bytes are                */
} dedup_slot_t;
static dedup_slot_t dedup[DEDUP_SLOTS];

int at_imp_store_open(uint32_t phase)
{
    at_imp_header_t *h = at_seg_map(AT_IMP_SUFFIX, FILE_SIZE);
    if (!h)
        return -EIO;
    h->magic = AT_IMP_MAGIC;
    h->version = AT_IMP_VERSION;
    h->header_size = sizeof(*h);
    h->record_size = sizeof(at_imp_record_t);
    h->capacity = AT_IMP_CAPACITY;
    h->arena_size = AT_IMP_ARENA_SIZE;
    h->pid = (int32_t)at_shim.pid;
    h->state = AT_IMP_STATE_RUNNING;
    h->start_phase = phase;
    h->t0_ns = at_now_ns();
    records = (at_imp_record_t *)((char *)h + sizeof(*h));
    arena = (char *)(records + AT_IMP_CAPACITY);
    memset(dedup, 0, sizeof(dedup));
    table_full_noted = 0;
    at_imp_file = h;
    return 0;
}

/* Only syscalls here: this runs in a fork child handler. */
int at_imp_store_reopen(void)
{
    if (!at_imp_file)
        return 0;
    uint32_t phase = at_imp_file->start_phase;
    at_seg_unmap(at_imp_file, FILE_SIZE);
    at_imp_file = NULL;
    records = NULL;
    arena = NULL;
    return at_imp_store_open(phase);
}

uint32_t at_imp_store_new(void)
{
    at_imp_header_t *h = at_imp_file;
    if (!h)
        return AT_IMP_NONE;
    uint32_t i = h->count;
    if (i >= h->capacity) {
        h->dropped_records++;
        if (!table_full_noted++)
            at_shim_note("imports", "record table full: later imports were not recorded");
        return AT_IMP_NONE;
    }
    at_imp_record_t *r = &records[i];
    memset(r, 0, sizeof(*r));
    at_imp_str_t *strs[] = { &r->module, &r->parent, &r->finder, &r->path_finder, &r->path_entry,
                             &r->loader, &r->origin, &r->error, &r->consulted };
    for (size_t k = 0; k < sizeof(strs) / sizeof(strs[0]); k++)
        *strs[k] = at_imp_no_str;
    __atomic_store_n(&h->count, i + 1, __ATOMIC_RELEASE);
    return i;
}

at_imp_record_t *at_imp_store_record(uint32_t i)
{
    return at_imp_file && i < at_imp_file->count ? &records[i] : NULL;
}

/* ---- strings ------------------------------------------------------------ */

static uint32_t fnv1a(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

/* At most AT_IMP_STR_MAX bytes, cut on a UTF-8 character boundary. */
static size_t bounded_len(const char *s, size_t n, uint16_t *flags)
{
    if (n <= AT_IMP_STR_MAX)
        return n;
    *flags |= AT_IMP_F_TRUNCATED;
    n = AT_IMP_STR_MAX;
    while (n && ((uint8_t)s[n] & 0xc0) == 0x80)
        n--;
    return n;
}

static int slot_holds(const dedup_slot_t *d, uint32_t hash, const char *s, size_t n)
{
    return d->used && d->hash == hash && d->ref.len == n && memcmp(arena + d->ref.off, s, n) == 0;
}

/* The slot holding these bytes, else a free one, else one to reuse. */
static dedup_slot_t *dedup_slot(uint32_t hash, const char *s, size_t n)
{
    for (unsigned probe = 0; probe < DEDUP_PROBES; probe++) {
        dedup_slot_t *d = &dedup[(hash + probe) % DEDUP_SLOTS];
        if (!d->used || slot_holds(d, hash, s, n))
            return d;
    }
    return &dedup[hash % DEDUP_SLOTS];
}

at_imp_str_t at_imp_put_bytes(const char *s, size_t n, at_imp_keep_t keep, uint16_t *flags)
{
    at_imp_header_t *h = at_imp_file;
    if (!h || !s)
        return at_imp_no_str;
    n = bounded_len(s, n, flags);
    uint32_t hash = fnv1a(s, n);
    dedup_slot_t *d = dedup_slot(hash, s, n);
    if (slot_holds(d, hash, s, n))
        return d->ref;
    uint32_t used = h->arena_used;
    uint32_t limit = keep == AT_IMP_ALWAYS ? h->arena_size : h->arena_size / 4 * 3;
    if (used > limit || n > limit - used) {
        h->dropped_strings++;
        *flags |= AT_IMP_F_TRUNCATED;
        return at_imp_no_str;
    }
    memcpy(arena + used, s, n);
    __atomic_store_n(&h->arena_used, used + (uint32_t)n, __ATOMIC_RELEASE);
    *d = (dedup_slot_t){ .hash = hash, .used = 1, .ref = { used, (uint32_t)n } };
    return d->ref;
}

at_imp_str_t at_imp_put_pystr(PyObject *s, at_imp_keep_t keep, uint16_t *flags)
{
    if (!s || s == at_imp_api.none)
        return at_imp_no_str;
    at_py_ssize_t n = 0;
    const char *u = at_py.PyUnicode_AsUTF8AndSize(s, &n);
    if (!u) {
        at_py.PyErr_Clear();   /* not a str, or lone surrogates */
        return at_imp_no_str;
    }
    return at_imp_put_bytes(u, (size_t)n, keep, flags);
}

static int is_type(PyObject *o)
{
    PyObject *t = at_imp_type_of(o);
    return (*(unsigned long *)((char *)t + at_pyl.type_flags) & at_pyl.tpflags_type_subclass) != 0;
}

/* The class qualname of a finder or loader: its own for a class (the
 * standard finders are used as classes), its type's for an instance. */
static PyObject *qualname_of(PyObject *o)
{
    PyObject *q = at_imp_api.Type_GetQualName(is_type(o) ? o : at_imp_type_of(o));
    if (!q)
        at_py.PyErr_Clear();
    return q;
}

at_imp_str_t at_imp_put_qualname(PyObject *o, uint16_t *flags)
{
    if (!o || o == at_imp_api.none)
        return at_imp_no_str;
    PyObject *q = qualname_of(o);
    at_imp_str_t s = at_imp_put_pystr(q, AT_IMP_ALWAYS, flags);
    if (q)
        at_py.Py_DecRef(q);
    return s;
}

/* Append one name and its NUL; 0, or -ENOSPC when it does not fit. */
static int append_name(char *buf, size_t *used, const char *s, size_t n)
{
    if (*used + n + 1 > NAMES_MAX)
        return -ENOSPC;
    memcpy(buf + *used, s, n);
    *used += n;
    buf[(*used)++] = '\0';
    return 0;
}

at_imp_str_t at_imp_put_qualnames(PyObject *const *objs, unsigned n, uint16_t *flags)
{
    char buf[NAMES_MAX];
    size_t used = 0;
    for (unsigned i = 0; i < n; i++) {
        PyObject *q = qualname_of(objs[i]);
        at_py_ssize_t len = 0;
        const char *s = q ? at_py.PyUnicode_AsUTF8AndSize(q, &len) : NULL;
        if (!s) {
            at_py.PyErr_Clear();
            s = "?";
            len = 1;
        }
        if (append_name(buf, &used, s, (size_t)len) < 0)
            *flags |= AT_IMP_F_TRUNCATED;
        if (q)
            at_py.Py_DecRef(q);
    }
    /* the last NUL is a separator too many */
    return n ? at_imp_put_bytes(buf, used ? used - 1 : 0, AT_IMP_IF_ROOM, flags) : at_imp_no_str;
}
