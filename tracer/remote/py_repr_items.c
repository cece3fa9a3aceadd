/* SPDX-License-Identifier: MIT */
/* py_repr_items.c - tuples, lists, dicts, sets and frozensets of a target: their first items, each through at_repr_value.
 *
 * A container's item pointers take one read (a dict's keys and entries
 * two or three); at most AT_REPR_MAX_ITEMS items are shown, and
 * containers deeper than AT_REPR_MAX_DEPTH are "[...]". */
#include <errno.h>
#include <string.h>

#include "remote/py_repr_int.h"

#define DICT_SCAN      64     /* dict entries looked at for items         */
#define SET_SCAN       128    /* set table slots looked at for items      */
#define KEYS_HEAD_MAX  64     /* PyDictKeysObject up to its indices       */

/* ---- containers --------------------------------------------------------- */

/* What a container shows: its items' addresses (dict: key, value pairs). */
typedef struct items {
    uint64_t addr[2 * AT_REPR_MAX_ITEMS];
    int n;                   /* items shown (pairs for a dict)           */
    int64_t len;             /* the container's own len()                */
} items_t;

typedef struct shape {
    const char *open, *close;  /* "[", "]"                                */
    const char *empty;         /* "[]", "set()"                           */
    int pairs;                 /* dict: key: value                        */
    int one_comma;             /* tuple: "(x,)"                           */
} shape_t;

static const shape_t *shape_of(kind_t k)
{
    static const shape_t tuple = { "(", ")", "()", 0, 1 }, list = { "[", "]", "[]", 0, 0 },
                         dict = { "{", "}", "{}", 1, 0 }, set = { "{", "}", "set()", 0, 0 },
                         frozenset = { "frozenset({", "})", "frozenset()", 0, 0 };
    return k == K_TUPLE ? &tuple : k == K_LIST ? &list : k == K_DICT ? &dict : k == K_SET ? &set : &frozenset;
}

/* Read n item pointers at `at` (n <= AT_REPR_MAX_ITEMS). */
static int read_pointers(walk_t *w, uint64_t at, items_t *it, int64_t n)
{
    it->n = (int)(n < AT_REPR_MAX_ITEMS ? n : AT_REPR_MAX_ITEMS);
    return it->n ? at_repr_read_all(w, at, it->addr, (size_t)it->n * 8) : 0;
}

static int sequence_items(walk_t *w, kind_t k, const uint8_t *head, long got, uint64_t addr, items_t *it)
{
    const at_pylayout_t *L = w->L;
    int32_t field = k == K_TUPLE ? L->tuple_items : L->list_items;
    if (got < field + 8)
        return -EFAULT;
    it->len = (int64_t)at_get_u64(head, L->var_size);
    if (it->len < 0 || it->len > MAX_LEN)
        return -EPROTO;
    uint64_t at = k == K_TUPLE ? addr + (uint64_t)field : at_get_u64(head, field);
    return read_pointers(w, at, it, it->len);
}

/* A dict's entries: key and value of each live one, in entry order (a
 * split dict's values come from its values array, by entry index). */
static int dict_items(walk_t *w, const uint8_t *head, long got, items_t *it)
{
    const at_pylayout_t *L = w->L;
    uint8_t kh[KEYS_HEAD_MAX];
    uint64_t ents[DICT_SCAN * 3], vals[DICT_SCAN];
    if (got < L->dict_values + 8 || got < L->dict_used + 8 || L->dictkeys_indices > KEYS_HEAD_MAX)
        return -EFAULT;
    it->len = (int64_t)at_get_u64(head, L->dict_used);
    uint64_t keys = at_get_u64(head, L->dict_keys), values = at_get_u64(head, L->dict_values);
    if (it->len < 0 || it->len > MAX_LEN)
        return -EPROTO;
    if (it->len == 0)
        return 0;
    int rc = at_repr_read_all(w, keys, kh, (size_t)L->dictkeys_indices);
    if (rc < 0)
        return rc;
    int log2_bytes = kh[L->dictkeys_log2_index_bytes], general = kh[L->dictkeys_kind] == L->dict_keys_general;
    int64_t nent = (int64_t)at_get_u64(kh, L->dictkeys_nentries);
    size_t words = (size_t)(general ? L->sizeof_dict_key_entry : L->sizeof_dict_unicode_entry) / 8;
    if (log2_bytes > 40 || nent < 0 || words < 2 || words > 3)
        return -EPROTO;
    int scan = (int)(nent < DICT_SCAN ? nent : DICT_SCAN);
    uint64_t first = keys + (uint64_t)L->dictkeys_indices + (1ull << log2_bytes);
    if ((rc = at_repr_read_all(w, first, ents, (size_t)scan * words * 8)) < 0 ||
        (values && (rc = at_repr_read_all(w, values + (uint64_t)L->dictvalues_values, vals, (size_t)scan * 8)) < 0))
        return rc;
    size_t key_at = general ? 1 : 0;   /* a general entry starts with the hash */
    for (int i = 0; i < scan && it->n < AT_REPR_MAX_ITEMS; i++) {
        uint64_t key = ents[(size_t)i * words + key_at], val = values ? vals[i] : ents[(size_t)i * words + key_at + 1];
        if (key && val) {
            it->addr[2 * it->n] = key;
            it->addr[2 * it->n + 1] = val;
            it->n++;
        }
    }
    return 0;
}

/* A set's table slots in order (its own iteration order), skipping the
 * empty ones and the dummies left by deletions (hash -1, which no live
 * key has). */
static int set_items(walk_t *w, const uint8_t *head, long got, items_t *it)
{
    const at_pylayout_t *L = w->L;
    uint8_t table[SET_SCAN * 64];
    if (got < L->set_table + 8 || got < L->set_mask + 8 || got < L->set_used + 8)
        return -EFAULT;
    it->len = (int64_t)at_get_u64(head, L->set_used);
    int64_t mask = (int64_t)at_get_u64(head, L->set_mask);
    size_t es = (size_t)L->sizeof_setentry;
    if (it->len < 0 || it->len > MAX_LEN || mask < 0 || mask > MAX_LEN || es < 16 || es > 64)
        return -EPROTO;
    int scan = (int)(mask + 1 < SET_SCAN ? mask + 1 : SET_SCAN);
    int rc = it->len ? at_repr_read_all(w, at_get_u64(head, L->set_table), table, (size_t)scan * es) : 0;
    for (int i = 0; rc == 0 && i < scan && it->n < AT_REPR_MAX_ITEMS && it->len; i++) {
        uint64_t key = at_get_u64(table, (size_t)i * es);
        int64_t hash = (int64_t)at_get_u64(table, (size_t)i * es + 8);
        if (key && hash != -1)
            it->addr[it->n++] = key;
    }
    return rc;
}

static int container_items(walk_t *w, kind_t k, const uint8_t *head, long got, uint64_t addr, items_t *it)
{
    it->n = 0;
    it->len = 0;
    if (k == K_TUPLE || k == K_LIST)
        return sequence_items(w, k, head, got, addr, it);
    return k == K_DICT ? dict_items(w, head, got, it) : set_items(w, head, got, it);
}

static void json_container_begin(walk_t *w, kind_t k, int64_t len)
{
    if (!w->j)
        return;
    at_json_obj_begin(w->j);
    at_json_kv_str(w->j, "type", at_repr_kind_names[k]);
    at_json_kv_int(w->j, "len", len);
    at_json_key(w->j, "items");
    at_json_arr_begin(w->j);
}

static void json_container_end(walk_t *w, int truncated)
{
    if (!w->j)
        return;
    at_json_arr_end(w->j);
    at_json_kv_bool(w->j, "truncated", truncated);
    at_json_obj_end(w->j);
}

static void put_items(walk_t *w, const shape_t *s, const items_t *it, int depth)
{
    for (int i = 0; i < it->n; i++) {
        if (i)
            at_repr_put(w, ", ");
        if (s->pairs) {
            if (w->j)
                at_json_arr_begin(w->j);
            at_repr_value(w, it->addr[2 * i], depth + 1);
            at_repr_put(w, ": ");
            at_repr_value(w, it->addr[2 * i + 1], depth + 1);
            if (w->j)
                at_json_arr_end(w->j);
        } else {
            at_repr_value(w, it->addr[i], depth + 1);
        }
    }
}

void at_repr_container(walk_t *w, kind_t k, const uint8_t *head, long got, uint64_t addr, int depth)
{
    const shape_t *s = shape_of(k);
    items_t it;
    if (depth >= AT_REPR_MAX_DEPTH) {   /* deep enough: and no cycle runs forever */
        size_t mark = w->len;
        at_repr_put(w, s->open);
        at_repr_put(w, "...");
        at_repr_put(w, s->close);
        w->out->truncated = 1;
        at_repr_json_described(w, at_repr_kind_names[k], mark, 1);
        return;
    }
    int rc = container_items(w, k, head, got, addr, &it);
    if (rc < 0) {
        at_repr_unreadable(w, addr, rc);
        return;
    }
    int cut = it.n < it.len;
    if (it.len == 0) {
        at_repr_put(w, s->empty);
    } else {
        json_container_begin(w, k, it.len);
        at_repr_put(w, s->open);
        put_items(w, s, &it, depth);
        /* "..." alone when the items looked at were all deleted ones */
        at_repr_put(w, cut ? (it.n ? ", ..." : "...") : it.len == 1 && s->one_comma ? "," : "");
        at_repr_put(w, s->close);
        json_container_end(w, cut);
        w->out->truncated |= cut;
        return;
    }
    json_container_begin(w, k, 0);
    json_container_end(w, 0);
}
