/* SPDX-License-Identifier: MIT */
/* py_names.c - threading.Thread names read from a 3.11-3.13 target (see py_names.h).
 *
 * The path: interp->modules (sys.modules) -> "threading" -> its md_dict
 * -> "_active" (ident -> Thread) -> each Thread's "_name".  Dicts are
 * scanned, not hashed (str hashes depend on the target's hash seed):
 * their entry arrays are read in one go and the keys compared.  A Thread
 * keeps its attributes in a managed dict, or in a values array that
 * pairs with the keys its type shares among instances; where each is
 * depends on the version (the layout's dict_mode): 3.11 has both words
 * before the object, 3.12 one tagged word, 3.13 the dict before the
 * object and the values inline after its header.  Offsets are the
 * target's layout table (p->layout).
 */
#include "remote/py_names.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "py311.h"   /* AT_MAX_THREADS */
#include "remote/py_str.h"

#define MAX_ENTRIES   16384   /* dict entries scanned (sys.modules: ~1000)  */
#define TYPE_NAME_MAX 16
/* Dict entries one walk may read (and compare, one remote read each).
 * Each dict is bounded by MAX_ENTRIES, but every Thread in _active scans
 * its own keys, so a corrupt target could otherwise cost MAX_ENTRIES^2
 * reads (minutes of system calls, gigabytes copied); a real one needs
 * sys.modules' ~1000 plus a few dozen per thread. */
#define MAX_WALK_ENTRIES 65536

typedef struct names_walk {
    at_py_proc_t *p;
    const at_pylayout_t *L;                        /* p's layout             */
    uint64_t dict_type, module_type, long_type;   /* types seen to be these */
    int64_t entries_left;                          /* of MAX_WALK_ENTRIES    */
} names_walk_t;

/* ---- types ---------------------------------------------------------------- */

/* 1 when obj's type is named `want` ("dict", "module", "int"); the
 * answer per type is remembered in *cache. */
static int is_type(names_walk_t *w, uint64_t obj, const char *want, uint64_t *cache)
{
    uint64_t type, name_ptr;
    char name[TYPE_NAME_MAX] = "";
    if (at_remote_read_u64(&w->p->mem, obj + (uint64_t)w->L->object_type, &type) < 0 || !type)
        return 0;
    if (*cache)
        return type == *cache;
    if (at_remote_read_u64(&w->p->mem, type + (uint64_t)w->L->type_name, &name_ptr) < 0 ||
        at_remote_read_some(&w->p->mem, name_ptr, name, sizeof name - 1) <= 0)
        return 0;
    if (strcmp(name, want) != 0)
        return 0;
    *cache = type;
    return 1;
}

/* ---- dict keys ------------------------------------------------------------ */

typedef struct keys_view {
    int64_t n;             /* entries in use (some may be deleted)         */
    size_t esize;          /* bytes per entry                              */
    size_t key_off;        /* key's offset in an entry (value follows it)  */
    uint64_t entries;      /* remote address of entry 0                    */
} keys_view_t;

/* The dict-keys header: the same in 3.11, 3.12 and 3.13 (py31x.h), and
 * not in 3.13's debug offsets, so these are the table's own numbers. */
#define KEYS_HEAD_MAX 64

static int keys_open(names_walk_t *w, uint64_t keys, keys_view_t *k)
{
    const at_pylayout_t *L = w->L;
    uint8_t head[KEYS_HEAD_MAX];
    if (L->dictkeys_indices > KEYS_HEAD_MAX || L->dictkeys_nentries + 8 > L->dictkeys_indices ||
        L->dictkeys_log2_index_bytes >= L->dictkeys_indices || L->dictkeys_kind >= L->dictkeys_indices)
        return -EPROTO;
    int rc = at_remote_read(&w->p->mem, keys, head, (size_t)L->dictkeys_indices);
    if (rc < 0)
        return rc;
    int log2_index_bytes = head[L->dictkeys_log2_index_bytes];
    int general = head[L->dictkeys_kind] == L->dict_keys_general;
    k->n = (int64_t)at_get_u64(head, L->dictkeys_nentries);
    if (log2_index_bytes > 30 || k->n < 0 || k->n > MAX_ENTRIES)
        return -EPROTO;
    k->esize = (size_t)(general ? L->sizeof_dict_key_entry : L->sizeof_dict_unicode_entry);
    k->key_off = general ? 8 : 0;   /* general entries start with the hash */
    k->entries = keys + (uint64_t)L->dictkeys_indices + (1ull << log2_index_bytes);
    return 0;
}

/* All entries of k, read in one go and charged to the walk's budget;
 * NULL on failure or when the budget is spent. */
static uint8_t *keys_entries(names_walk_t *w, const keys_view_t *k)
{
    if (k->n > w->entries_left)
        return NULL;
    w->entries_left -= k->n;
    size_t len = (size_t)k->n * k->esize;
    uint8_t *buf = malloc(len ? len : 1);
    if (buf && len && at_remote_read(&w->p->mem, k->entries, buf, len) < 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* Index of the entry whose key is the str `name`, or -1. */
static int64_t keys_find(names_walk_t *w, const keys_view_t *k, const uint8_t *ents, const char *name)
{
    for (int64_t i = 0; i < k->n; i++) {
        uint64_t key = at_get_u64(ents, (size_t)i * k->esize + k->key_off);
        if (key && at_py_str_equals(&w->p->mem, w->L, w->p->unicode_type, key, name))
            return i;
    }
    return -1;
}

/* Value of entry i: from the entry, or from a split dict's values. */
static uint64_t entry_value(names_walk_t *w, const keys_view_t *k, const uint8_t *ents, int64_t i,
                            uint64_t values)
{
    uint64_t v = 0;
    if (!values)
        return at_get_u64(ents, (size_t)i * k->esize + k->key_off + 8);
    return at_remote_read_u64(&w->p->mem, values + (uint64_t)i * 8, &v) < 0 ? 0 : v;
}

/* keys[name] with values from `values` (0: combined); 0 when absent. */
static uint64_t lookup(names_walk_t *w, uint64_t keys, uint64_t values, const char *name)
{
    keys_view_t k;
    if (!keys || keys_open(w, keys, &k) < 0)
        return 0;
    uint8_t *ents = keys_entries(w, &k);
    if (!ents)
        return 0;
    int64_t i = keys_find(w, &k, ents, name);
    uint64_t v = i >= 0 ? entry_value(w, &k, ents, i, values) : 0;
    free(ents);
    return v;
}

/* dict[name] for a str key; 0 when absent or not a dict. */
/* A dict's keys object and split values (0: combined) into kv: 0, or -1
 * when dict is not a readable dict. */
static int dict_parts(names_walk_t *w, uint64_t dict, uint64_t kv[2])
{
    /* ma_keys then ma_values (at_py_proc_layout_fits checks they follow) */
    if (!dict || !is_type(w, dict, "dict", &w->dict_type) ||
        at_remote_read(&w->p->mem, dict + (uint64_t)w->L->dict_keys, kv, 2 * sizeof *kv) < 0)
        return -1;
    return 0;
}

static uint64_t dict_get(names_walk_t *w, uint64_t dict, const char *name)
{
    uint64_t kv[2];
    return dict_parts(w, dict, kv) < 0 ? 0 : lookup(w, kv[0], kv[1], name);
}

/* ---- objects ------------------------------------------------------------- */

/* obj.name from 3.11's two words before the object: a dict (obj - 3
 * words), else split values (obj - 4 words) over the type's shared keys. */
static uint64_t attr_pre_values_dict(names_walk_t *w, uint64_t obj, uint64_t type, const char *name)
{
    const at_pylayout_t *L = w->L;
    uint64_t pre[2], keys;   /* values (obj-32), dict (obj-24) */
    if (L->object_managed_values + 8 != L->object_managed_dict ||
        at_remote_read(&w->p->mem, obj + (uint64_t)(int64_t)L->object_managed_values, pre, sizeof pre) < 0)
        return 0;
    if (pre[1])
        return dict_get(w, pre[1], name);
    if (!pre[0] || at_remote_read_u64(&w->p->mem, type + (uint64_t)L->heaptype_cached_keys, &keys) < 0)
        return 0;
    return lookup(w, keys, pre[0] + (uint64_t)L->dictvalues_values, name);
}

/* obj.name from 3.12's tagged word at obj - 3 words: with the low bit
 * set it is the values array minus one, else the dict. */
static uint64_t attr_tagged(names_walk_t *w, uint64_t obj, uint64_t type, const char *name)
{
    const at_pylayout_t *L = w->L;
    uint64_t dorv, keys;
    if (at_remote_read_u64(&w->p->mem, obj + (uint64_t)(int64_t)L->object_managed_dict, &dorv) < 0 || !dorv)
        return 0;
    if (!(dorv & (uint64_t)L->dorv_values_bit))
        return dict_get(w, dorv, name);
    if (at_remote_read_u64(&w->p->mem, type + (uint64_t)L->heaptype_cached_keys, &keys) < 0)
        return 0;
    return lookup(w, keys, dorv + 1 + (uint64_t)L->dictvalues_values, name);
}

/* obj.name from 3.13's inline values after the header when they are
 * current (`valid`, Py_TPFLAGS_INLINE_VALUES types), else the dict at
 * obj - 3 words: the order CPython's own attribute lookup takes. */
static uint64_t attr_inline(names_walk_t *w, uint64_t obj, uint64_t type, uint64_t flags, const char *name)
{
    const at_pylayout_t *L = w->L;
    uint64_t values = obj + (uint64_t)L->object_inline_values, dict, keys;
    uint8_t valid = 0;
    if ((flags & L->tpflags_inline_values) &&
        at_remote_read(&w->p->mem, values + (uint64_t)L->dictvalues_valid, &valid, 1) == 0 && valid &&
        at_remote_read_u64(&w->p->mem, type + (uint64_t)L->heaptype_cached_keys, &keys) == 0)
        return lookup(w, keys, values + (uint64_t)L->dictvalues_values, name);
    if (at_remote_read_u64(&w->p->mem, obj + (uint64_t)(int64_t)L->object_managed_dict, &dict) < 0 || !dict)
        return 0;
    return dict_get(w, dict, name);
}

/* obj.name from its managed instance dict, 0 when not found. */
static uint64_t attr_of(names_walk_t *w, uint64_t obj, const char *name)
{
    const at_pylayout_t *L = w->L;
    uint64_t type, flags;
    at_remote_t *m = &w->p->mem;
    if (obj < 32 || at_remote_read_u64(m, obj + (uint64_t)L->object_type, &type) < 0 ||
        at_remote_read_u64(m, type + (uint64_t)L->type_flags, &flags) < 0 || !(flags & L->tpflags_managed_dict))
        return 0;
    switch (L->dict_mode) {
    case AT_PYDICT_PRE_VALUES_DICT: return attr_pre_values_dict(w, obj, type, name);
    case AT_PYDICT_TAGGED:          return attr_tagged(w, obj, type, name);
    case AT_PYDICT_INLINE:          return attr_inline(w, obj, type, flags, name);
    }
    return 0;
}

/* An int's digit count and sign: 3.11's ob_size, or 3.12+'s lv_tag
 * (ndigits << NON_SIZE_BITS | sign, sign 0 positive, 1 zero, 2 negative).
 * -EPROTO for a negative number. */
static int long_ndigits(const at_pylayout_t *L, const uint8_t *buf, int64_t *ndigits)
{
    if (L->long_lv_tag == AT_PYLAYOUT_NONE) {
        *ndigits = (int64_t)at_get_u64(buf, L->var_size);
        return *ndigits < 0 ? -EPROTO : 0;
    }
    uint64_t tag = at_get_u64(buf, L->long_lv_tag);
    if ((tag & (uint64_t)L->long_sign_mask) == 2)
        return -EPROTO;
    *ndigits = (int64_t)(tag >> L->long_non_size_bits);
    return 0;
}

/* An int object's value, when it fits 64 bits and is >= 0. */
static int long_value(names_walk_t *w, uint64_t obj, uint64_t *out)
{
    const at_pylayout_t *L = w->L;
    uint8_t buf[AT_READ_LONG_HEAD_MAX + 3 * 4];
    size_t want = (size_t)L->long_digits + 3 * 4;
    long got = is_type(w, obj, "int", &w->long_type) ? at_remote_read_some(&w->p->mem, obj, buf, want) : -1;
    int64_t ndigits = 0;
    if (got < (long)L->long_digits || long_ndigits(L, buf, &ndigits) < 0)
        return -EPROTO;
    /* digits past what was read (the end of a mapping) would be garbage */
    if (ndigits < 0 || ndigits > 3 || got < (long)L->long_digits + ndigits * 4)
        return -EPROTO;
    uint64_t v = 0;
    for (int64_t i = ndigits - 1; i >= 0; i--)
        v = v << L->long_shift | at_get_u32(buf, (size_t)L->long_digits + (size_t)i * 4);
    *out = v;
    return 0;
}

/* ---- the walk ------------------------------------------------------------ */

/* sys.modules[name].__dict__, 0 when the module was never imported. */
static uint64_t module_dict(names_walk_t *w, uint64_t interp, const char *name)
{
    uint64_t modules, module, md_dict;
    if (at_remote_read_u64(&w->p->mem, interp + (uint64_t)w->L->interp_modules, &modules) < 0)
        return 0;
    module = dict_get(w, modules, name);
    if (!module || !is_type(w, module, "module", &w->module_type) ||
        at_remote_read_u64(&w->p->mem, module + (uint64_t)w->L->module_dict, &md_dict) < 0)
        return 0;
    return md_dict;
}

/* threading._active, 0 when threading was never imported. */
static uint64_t threading_active(names_walk_t *w, uint64_t interp)
{
    uint64_t md_dict = module_dict(w, interp, "threading");
    return md_dict ? dict_get(w, md_dict, "_active") : 0;
}

/* ident -> name for every Thread in _active; returns how many. */
static int read_active(names_walk_t *w, uint64_t active, at_py_thread_name_t *out, int max)
{
    uint64_t kv[2];
    keys_view_t k;
    if (dict_parts(w, active, kv) < 0 || keys_open(w, kv[0], &k) < 0)
        return 0;
    uint8_t *ents = keys_entries(w, &k);
    int n = 0;
    for (int64_t i = 0; ents && i < k.n && n < max; i++) {
        uint64_t key = at_get_u64(ents, (size_t)i * k.esize + k.key_off);
        uint64_t thread = key ? entry_value(w, &k, ents, i, kv[1]) : 0;
        uint64_t name = thread ? attr_of(w, thread, "_name") : 0;
        if (!name || long_value(w, key, &out[n].ident) < 0 ||
            at_py_str_read(&w->p->mem, w->L, w->p->unicode_type, name, out[n].name, AT_PY_NAME_MAX) < 0)
            continue;
        out[n++].tid = 0;
    }
    free(ents);
    return n;
}

/* Pair idents with OS thread ids through the thread states; names of
 * idents no thread state has are dropped. */
static int pair_tids(names_walk_t *w, uint64_t interp, at_py_thread_name_t *out, int n)
{
    const at_pylayout_t *L = w->L;
    uint64_t ts;
    int kept = 0;
    if (at_remote_read_u64(&w->p->mem, interp + (uint64_t)L->interp_tstate_head, &ts) < 0)
        return 0;
    for (int i = 0; ts && i < AT_MAX_THREADS; i++) {
        uint64_t ident, tid, next;
        if (at_remote_read_u64(&w->p->mem, ts + (uint64_t)L->tstate_thread_id, &ident) < 0 ||
            at_remote_read_u64(&w->p->mem, ts + (uint64_t)L->tstate_native_thread_id, &tid) < 0 ||
            at_remote_read_u64(&w->p->mem, ts + (uint64_t)L->tstate_next, &next) < 0)
            break;
        for (int j = kept; j < n; j++) {
            if (out[j].ident != ident)
                continue;
            at_py_thread_name_t t = out[j];
            t.tid = (uint32_t)tid;
            out[j] = out[kept];
            out[kept++] = t;
            break;
        }
        ts = next;
    }
    return kept;
}

int at_py_thread_names_cached(at_py_proc_t *p, uint64_t *cache, at_py_thread_name_t *out, int max)
{
    names_walk_t w = { .p = p, .L = &p->layout, .entries_left = MAX_WALK_ENTRIES };
    uint64_t interp, active = cache ? *cache : 0;
    if (max <= 0)
        return 0;
    if (!at_py_proc_layout_fits(&p->layout))
        return -EPROTO;
    int rc = at_remote_read_u64(&p->mem, p->runtime + (uint64_t)p->layout.rt_interpreters_main, &interp);
    if (rc < 0)
        return rc;
    if (!active || !is_type(&w, active, "dict", &w.dict_type))
        active = threading_active(&w, interp);
    if (cache)
        *cache = active;
    int n = active ? pair_tids(&w, interp, out, read_active(&w, active, out, max)) : 0;
    /* nothing found may mean the target exited mid-walk: say so (-ESRCH) */
    if (n == 0 && at_remote_read_u64(&p->mem, p->runtime, &interp) == -ESRCH)
        return -ESRCH;
    return n;
}

int at_py_thread_names(at_py_proc_t *p, at_py_thread_name_t *out, int max)
{
    return at_py_thread_names_cached(p, NULL, out, max);
}

const char *at_py_thread_name_of(const at_py_thread_name_t *names, int n, uint32_t tid)
{
    for (int i = 0; i < n; i++)
        if (names[i].tid == tid)
            return names[i].name;
    return NULL;
}

int at_thread_names_read(at_thread_names_t *t, at_py_proc_t *p, uint64_t now_ns)
{
    at_py_thread_name_t got[64];
    t->read_ns = now_ns;
    int n = at_py_thread_names_cached(p, &t->active, got, 64);
    for (int i = 0; i < n; i++)
        if (at_thread_names_set(t, got[i].tid, got[i].name) < 0)
            return -ENOMEM;
    return n;
}

/* ---- the same pieces for other readers ------------------------------------ */

uint64_t at_py_module_dict(at_py_proc_t *p, const char *name)
{
    names_walk_t w = { .p = p, .L = &p->layout, .entries_left = MAX_WALK_ENTRIES };
    uint64_t interp;
    if (!at_py_proc_layout_fits(&p->layout) ||
        at_remote_read_u64(&p->mem, p->runtime + (uint64_t)p->layout.rt_interpreters_main, &interp) < 0)
        return 0;
    return module_dict(&w, interp, name);
}

uint64_t at_py_dict_get_str(at_py_proc_t *p, uint64_t dict, const char *key)
{
    names_walk_t w = { .p = p, .L = &p->layout, .entries_left = MAX_WALK_ENTRIES };
    return dict_get(&w, dict, key);
}

uint64_t at_py_attr(at_py_proc_t *p, uint64_t obj, const char *name)
{
    names_walk_t w = { .p = p, .L = &p->layout, .entries_left = MAX_WALK_ENTRIES };
    return attr_of(&w, obj, name);
}

int at_py_dict_values(at_py_proc_t *p, uint64_t dict, uint64_t *out, int max)
{
    names_walk_t w = { .p = p, .L = &p->layout, .entries_left = MAX_WALK_ENTRIES };
    uint64_t kv[2];
    keys_view_t k;
    if (dict_parts(&w, dict, kv) < 0 || keys_open(&w, kv[0], &k) < 0)
        return 0;
    uint8_t *ents = keys_entries(&w, &k);
    int n = 0;
    for (int64_t i = 0; ents && i < k.n && n < max; i++) {
        uint64_t v = at_get_u64(ents, (size_t)i * k.esize + k.key_off) ? entry_value(&w, &k, ents, i, kv[1]) : 0;
        if (v)
            out[n++] = v;
    }
    free(ents);
    return n;
}
