/* SPDX-License-Identifier: MIT */
/* alloc_site.c - which Python line is allocating: frame -> site index.
 *
 * Design: the fast path reads the innermost complete _PyInterpreterFrame
 * of the thread (tstate->cframe->current_frame, 3.13 tstate->current_frame,
 * skipping frames still in their prologue and, from 3.12, the entry frames
 * of the C stack, as tracemalloc does), the offsets those of the running
 * version (at_pyl, read here on a new site only; the per-allocation cache
 * probe is compiled per version, alloc.h), keys the site by (code object,
 * instruction index, co_linetable address[, outer frames], kind) and finds
 * it in an open-addressing index: a few loads, no Python API, no lock.
 * Line numbers are resolved late, once per new site and not per
 * allocation: the slow path (under a spin lock, rare) decodes the line
 * table, copies co_filename/co_qualname into the file's string table and
 * files the site under a (file, line, function) group, the unit reports
 * are made of.  The code object is alive while we read it (its frame
 * holds a reference); the linetable address in the key keeps a later code
 * object at the same address from inheriting a dead one's site.
 */
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include "alloc.h"

#define SITE_INDEX_CAP  (2u * AT_ALLOC_SITE_CAP)
#define GROUP_INDEX_CAP (2u * AT_ALLOC_GROUP_CAP)
#define STR_INDEX_CAP   65536u
#define LOC_CAP         16384u   /* direct-mapped (code, instr) -> group  */
#define MAX_DEPTH       128

typedef struct frame_key {
    uintptr_t code;
    uintptr_t lt;                /* co_linetable (bytes object)           */
    int32_t instr;
} frame_key_t;

typedef struct loc_entry {
    uintptr_t code, lt;
    int32_t instr;
    uint32_t group_plus1;        /* 0: empty                              */
    uint32_t gkind;
    uint32_t pad;
} loc_entry_t;

static uint32_t *site_index;     /* site + 1, 0 empty                     */
static uint32_t *group_index;    /* group + 1                             */
static uint32_t *str_index;      /* string offset + 1                     */
static loc_entry_t *loc_cache;
static int site_lock;
at_site_cache_t at_site_cache[AT_SITE_CACHE];
static uint32_t str_count;       /* strings in str_index                 */
static uint32_t overflow_sites[AT_ALLOC_KINDS];
static uint32_t overflow_groups[2];
static uint32_t str_unknown, str_question, str_overflow, str_empty;

_Static_assert(AT_SIZEOF_CODEUNIT == AT312_SIZEOF_CODEUNIT && AT_SIZEOF_CODEUNIT == AT313_SIZEOF_CODEUNIT,
               "a code unit is two bytes in every version (a constant divisor)");

#define RD(a)  (*(const uintptr_t *)(a))
#define RDI(a) (*(const int *)(a))

/* ---- keys and hashing --------------------------------------------------- */

static inline uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

static inline uint32_t site_hash(uintptr_t code, int32_t instr, uint64_t okey, unsigned kind)
{
    uint64_t h = (code >> 4) * 0x9E3779B97F4A7C15ull;
    h ^= ((uint64_t)(uint32_t)instr | ((uint64_t)kind << 32)) * 0xC2B2AE3D27D4EB4Full;
    return (uint32_t)mix64(h ^ okey);
}

/* The first frame at or above f that has started executing its code
 * (_PyFrame_IsIncomplete, which tracemalloc skips too; 3.13's also skips
 * the C stack's entry frames, whose f_executable is None). */
static inline uintptr_t complete_frame(uintptr_t f)
{
    for (int n = 0; f && n < AT_MAX_STACK_DEPTH; n++, f = RD(f + at_pyl.iframe_previous)) {
        if (at_pyl_frame_is_cstack(f))
            continue;
        if (*(const char *)(f + at_pyl.iframe_owner) == (char)at_pyl.frame_owned_by_generator)
            return f;
        uintptr_t code = RD(f + at_pyl.iframe_code);
        uintptr_t first = code + (uintptr_t)at_pyl.code_code_adaptive +
                          (uintptr_t)RDI(code + at_pyl.code_firsttraceable) * AT_SIZEOF_CODEUNIT;
        if (RD(f + at_pyl.iframe_instr) >= first)
            return f;
    }
    return 0;
}

/* (code, instruction index, linetable) of a frame: the index is that of
 * prev_instr (3.11, 3.12) or instr_ptr (3.13), the one CPython and
 * tracemalloc take the line of. */
static inline void frame_key(uintptr_t f, frame_key_t *k)
{
    k->code = RD(f + at_pyl.iframe_code);
    k->lt = RD(k->code + at_pyl.code_linetable);
    uintptr_t first_unit = k->code + (uintptr_t)at_pyl.code_code_adaptive;
    intptr_t off = (intptr_t)RD(f + at_pyl.iframe_instr) - (intptr_t)first_unit;
    k->instr = (int32_t)(off / AT_SIZEOF_CODEUNIT);
}

static inline uint64_t okey_of(const frame_key_t *k, int n)
{
    uint64_t h = mix64(k[0].lt ^ 0x5bd1e995u);
    for (int i = 1; i < n; i++)
        h = mix64(h ^ (k[i].code * 31) ^ (k[i].lt << 7) ^ (uint64_t)(uint32_t)k[i].instr);
    return h;
}

static inline int site_matches(const at_alloc_site_t *s, uintptr_t code, int32_t instr,
                               uint64_t okey, unsigned kind)
{
    return s->code == code && s->instr == (uint32_t)instr && s->okey == okey && s->kind == kind;
}

/* Index slot holding the site, or the empty slot where it would go. */
static inline uint32_t *index_find(uint32_t h, uintptr_t code, int32_t instr,
                                   uint64_t okey, unsigned kind)
{
    for (uint32_t i = h & (SITE_INDEX_CAP - 1);; i = (i + 1) & (SITE_INDEX_CAP - 1)) {
        uint32_t v = __atomic_load_n(&site_index[i], __ATOMIC_ACQUIRE);
        if (!v || site_matches(&at_alloc.sites[v - 1], code, instr, okey, kind))
            return &site_index[i];
    }
}

/* ---- strings ------------------------------------------------------------ */

static void lock_sites(void)
{
    while (__atomic_exchange_n(&site_lock, 1, __ATOMIC_ACQUIRE))
        sched_yield();
}

static void unlock_sites(void)
{
    __atomic_store_n(&site_lock, 0, __ATOMIC_RELEASE);
}

static uint32_t str_hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return (uint32_t)mix64(h);
}

/* Offset of an interned copy of s[0..n) in the file's string table. */
static uint32_t intern(const char *s, size_t n)
{
    at_alloc_header_t *h = at_alloc.hdr;
    uint32_t i = str_hash(s, n) & (STR_INDEX_CAP - 1);
    for (uint32_t probes = 0; str_index[i] && probes < STR_INDEX_CAP; probes++) {
        const char *rec = at_alloc.strs + str_index[i] - 1;
        uint16_t len;
        memcpy(&len, rec, sizeof(len));
        if (len == n && memcmp(rec + 2, s, n) == 0)
            return str_index[i] - 1;
        i = (i + 1) & (STR_INDEX_CAP - 1);
    }
    uint64_t used = h->str_used;
    if (str_count >= STR_INDEX_CAP / 4 * 3 || used + n + 3 > h->str_cap || used >= UINT32_MAX - 1) {
        h->strs_dropped++;
        return str_question;
    }
    uint16_t len = (uint16_t)n;
    memcpy(at_alloc.strs + used, &len, sizeof(len));
    memcpy(at_alloc.strs + used + 2, s, n);
    at_alloc.strs[used + 2 + n] = '\0';
    str_index[i] = (uint32_t)used + 1;
    str_count++;
    __atomic_store_n(&h->str_used, used + n + 3, __ATOMIC_RELEASE);
    return (uint32_t)used;
}

/* UTF-8 of a str object read from its compact representation; never
 * calls Python (we may be inside the allocator). */
static size_t unicode_utf8(uintptr_t o, char *out, size_t cap)
{
    if (!o)
        return 0;
    unsigned state = *(const unsigned *)(o + at_pyl.unicode_state);
    unsigned kind = (state >> 2) & 7, compact = (state >> 5) & 1, ascii = (state >> 6) & 1;
    size_t len = (size_t)*(const intptr_t *)(o + at_pyl.unicode_length);
    if (!compact || (kind != 1 && kind != 2 && kind != 4))
        return 0;
    const unsigned char *data = (const unsigned char *)o +
        (ascii ? at_pyl.sizeof_pyasciiobject : at_pyl.sizeof_pycompactunicodeobject);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        uint32_t c = kind == 1 ? data[i] : kind == 2 ? ((const uint16_t *)data)[i]
                                                      : ((const uint32_t *)data)[i];
        unsigned char buf[4];
        size_t k;
        if (c < 0x80) {
            buf[0] = (unsigned char)c, k = 1;
        } else if (c < 0x800) {
            buf[0] = (unsigned char)(0xC0 | (c >> 6)), buf[1] = (unsigned char)(0x80 | (c & 63)), k = 2;
        } else if (c < 0x10000) {
            buf[0] = (unsigned char)(0xE0 | (c >> 12)), buf[1] = (unsigned char)(0x80 | ((c >> 6) & 63));
            buf[2] = (unsigned char)(0x80 | (c & 63)), k = 3;
        } else {
            buf[0] = (unsigned char)(0xF0 | ((c >> 18) & 7)), buf[1] = (unsigned char)(0x80 | ((c >> 12) & 63));
            buf[2] = (unsigned char)(0x80 | ((c >> 6) & 63)), buf[3] = (unsigned char)(0x80 | (c & 63)), k = 4;
        }
        if (n + k > cap)
            break;
        memcpy(out + n, buf, k);
        n += k;
    }
    return n;
}

static uint32_t intern_unicode(uintptr_t o)
{
    char buf[AT_ALLOC_STR_MAX];
    size_t n = unicode_utf8(o, buf, sizeof(buf));
    return n ? intern(buf, n) : str_question;
}

/* ---- groups ------------------------------------------------------------- */

static int is_tool_file(const char *s, size_t n)
{
    static const char tm[] = "tracemalloc.py";
    size_t k = sizeof(tm) - 1;
    return n >= k && memcmp(s + n - k, tm, k) == 0 && (n == k || s[n - k - 1] == '/');
}

static uint32_t new_group(uint32_t file, uint32_t func, int32_t line, unsigned gkind, unsigned flags)
{
    at_alloc_header_t *h = at_alloc.hdr;
    uint64_t k = mix64(((uint64_t)file << 32 | func) ^ ((uint64_t)(uint32_t)line << 1 | gkind));
    uint32_t i = (uint32_t)k & (GROUP_INDEX_CAP - 1);
    while (group_index[i]) {
        const at_alloc_group_t *g = &at_alloc.groups[group_index[i] - 1];
        if (g->file == file && g->func == func && g->line == line && g->kind == gkind)
            return group_index[i] - 1;
        i = (i + 1) & (GROUP_INDEX_CAP - 1);
    }
    if (h->ngroups >= h->group_cap) {
        h->groups_dropped++;
        return overflow_groups[gkind];
    }
    uint32_t idx = h->ngroups;
    at_alloc.groups[idx] = (at_alloc_group_t){ file, func, line, (uint16_t)gkind, (uint16_t)flags };
    group_index[i] = idx + 1;
    __atomic_store_n(&h->ngroups, idx + 1, __ATOMIC_RELEASE);
    return idx;
}

static uint32_t group_of_code(const frame_key_t *k, unsigned gkind)
{
    uintptr_t code = k->code;
    uintptr_t fname = RD(code + at_pyl.code_filename);
    uint32_t file = intern_unicode(fname);
    uint32_t func = intern_unicode(RD(code + at_pyl.code_qualname));
    const uint8_t *tab = k->lt ? (const uint8_t *)k->lt + at_pyl.bytes_sval : NULL;
    size_t len = k->lt ? (size_t)*(const intptr_t *)(k->lt + at_pyl.var_size) : 0;
    int line = at_alloc_addr2line(tab, len, RDI(code + at_pyl.code_firstlineno), k->instr);
    const char *rec = at_alloc.strs + file;
    uint16_t flen;
    memcpy(&flen, rec, sizeof(flen));
    unsigned flags = is_tool_file(rec + 2, flen) ? AT_ALLOC_G_TOOL : 0;
    return new_group(file, func, line < 0 ? 0 : line, gkind, flags);
}

/* (code, instr) -> group, cached: deep sites share most of their frames. */
static uint32_t group_of(const frame_key_t *k, unsigned gkind)
{
    uint32_t h = (uint32_t)mix64(k->code ^ ((uint64_t)(uint32_t)k->instr << 40) ^ k->lt ^ gkind);
    loc_entry_t *e = &loc_cache[h & (LOC_CAP - 1)];
    if (e->group_plus1 && e->code == k->code && e->lt == k->lt && e->instr == k->instr &&
        e->gkind == gkind)
        return e->group_plus1 - 1;
    uint32_t g = group_of_code(k, gkind);
    *e = (loc_entry_t){ k->code, k->lt, k->instr, g + 1, gkind, 0 };
    return g;
}

/* ---- sites -------------------------------------------------------------- */

static unsigned gkind_of(unsigned kind)
{
    return kind == AT_ALLOC_KIND_NATIVE ? AT_ALLOC_GROUP_NATIVE : AT_ALLOC_GROUP_PY;
}

/* Outer frames of a deep site into frames[]; 1 + how many were kept. */
static int store_outer(at_alloc_site_t *s, const frame_key_t *keys, int n, unsigned gkind)
{
    at_alloc_header_t *h = at_alloc.hdr;
    if (n <= 1)
        return n;
    if (h->nframes + (uint32_t)(n - 1) > h->frame_cap) {
        h->frames_dropped++;
        return 1;
    }
    s->frames = h->nframes;
    for (int i = 1; i < n; i++)
        at_alloc.frames[h->nframes + (uint32_t)i - 1] = group_of(&keys[i], gkind);
    __atomic_store_n(&h->nframes, h->nframes + (uint32_t)(n - 1), __ATOMIC_RELEASE);
    return n;
}

static uint32_t create_site(const frame_key_t *keys, int n, uint64_t okey, unsigned kind, uint32_t hash)
{
    at_alloc_header_t *h = at_alloc.hdr;
    uintptr_t code = n ? keys[0].code : 0;
    int32_t instr = n ? keys[0].instr : 0;
    if (at_alloc_tl & AT_TL_BUSY)         /* a signal handler allocating */
        return overflow_sites[kind];
    at_alloc_tl |= AT_TL_BUSY;
    lock_sites();
    uint32_t *slot = index_find(hash, code, instr, okey, kind);
    uint32_t idx;
    if (*slot) {
        idx = *slot - 1;                  /* another thread made it      */
    } else if (h->nsites >= h->site_cap) {
        idx = overflow_sites[kind];
    } else {
        idx = h->nsites;
        at_alloc_site_t *s = &at_alloc.sites[idx];
        unsigned gkind = gkind_of(kind);
        *s = (at_alloc_site_t){ .code = code, .okey = okey, .instr = (uint32_t)instr, .kind = (uint8_t)kind };
        if (n) {
            s->group = group_of(&keys[0], gkind);
            s->nframes = (uint16_t)store_outer(s, keys, n, gkind);
        } else {
            s->group = new_group(str_unknown, str_empty, 0, gkind, AT_ALLOC_G_NOFRAME);
        }
        s->flags = (uint8_t)at_alloc.groups[s->group].flags;
        __atomic_store_n(&h->nsites, idx + 1, __ATOMIC_RELEASE);
        __atomic_store_n(slot, idx + 1, __ATOMIC_RELEASE);
    }
    unlock_sites();
    at_alloc_tl &= ~AT_TL_BUSY;
    if (idx == overflow_sites[kind])
        __atomic_fetch_add(&h->sites_dropped, 1, __ATOMIC_RELAXED);
    return idx;
}

uint32_t at_alloc_site_here(uintptr_t tstate, unsigned kind)
{
    frame_key_t keys[MAX_DEPTH];
    int n = 0;
    uintptr_t first = at_pyl_current_frame(tstate);
    uintptr_t f = complete_frame(first), inner = f;
    uint64_t okey = 0;
    if (AT_LIKELY(f)) {
        frame_key(f, &keys[0]);
        n = 1;
        for (int depth = at_alloc.depth; n < depth; n++) {
            f = complete_frame(RD(f + at_pyl.iframe_previous));
            if (!f)
                break;
            frame_key(f, &keys[n]);
        }
        okey = okey_of(keys, n);
    }
    uintptr_t code = n ? keys[0].code : 0;
    int32_t instr = n ? keys[0].instr : 0;
    uint32_t hash = site_hash(code, instr, okey, kind);
    uint32_t v = *index_find(hash, code, instr, okey, kind);
    uint32_t site = v ? v - 1 : create_site(keys, n, okey, kind, hash);
    if (kind == AT_ALLOC_KIND_PY && n == 1 && at_alloc.depth == 1 && inner == first &&
        site != overflow_sites[kind]) {
        uintptr_t pi = RD(inner + at_pyl.iframe_instr);
        at_site_cache[(pi >> 1) & (AT_SITE_CACHE - 1)] = (at_site_cache_t){ pi, code, keys[0].lt, site, 0 };
    }
    return site;
}

uint32_t at_alloc_overflow_site(unsigned kind)
{
    return overflow_sites[kind];
}

/* ---- set-up ------------------------------------------------------------- */

static void *map_private(size_t n)
{
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static size_t private_size(void)
{
    return SITE_INDEX_CAP * 4 + GROUP_INDEX_CAP * 4 + STR_INDEX_CAP * 4 + LOC_CAP * sizeof(loc_entry_t);
}

size_t at_alloc_sites_private_bytes(void)
{
    return private_size();
}

/* Fixed strings, overflow groups and sites: the first records of a file. */
static void seed_tables(void)
{
    at_alloc_header_t *h = at_alloc.hdr;
    str_empty = intern("", 0);
    str_question = intern("?", 1);
    str_unknown = intern("<unknown>", 9);
    str_overflow = intern("<archtrace: table full>", 23);
    for (unsigned g = 0; g < 2; g++)
        overflow_groups[g] = new_group(str_overflow, str_empty, 0, g, AT_ALLOC_G_OVERFLOW);
    for (unsigned k = 0; k < AT_ALLOC_KINDS; k++) {
        uint32_t idx = h->nsites++;
        at_alloc.sites[idx] = (at_alloc_site_t){ .kind = (uint8_t)k, .group = overflow_groups[gkind_of(k)],
                                                 .flags = AT_ALLOC_G_OVERFLOW };
        overflow_sites[k] = idx;
    }
}

int at_alloc_sites_init(void)
{
    if (!site_index) {
        char *p = map_private(private_size());
        if (!p)
            return -ENOMEM;
        site_index = (uint32_t *)p;
        group_index = site_index + SITE_INDEX_CAP;
        str_index = group_index + GROUP_INDEX_CAP;
        loc_cache = (loc_entry_t *)(str_index + STR_INDEX_CAP);
    }
    seed_tables();
    return 0;
}

/* Fork child: the file is new and empty; forget the parent's indexes. */
void at_alloc_sites_reset(void)
{
    if (site_index)
        madvise(site_index, private_size(), MADV_DONTNEED);
    site_lock = 0;
    str_count = 0;
    memset(at_site_cache, 0, sizeof(at_site_cache));
    seed_tables();
}
