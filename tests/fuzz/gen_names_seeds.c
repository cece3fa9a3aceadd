/* SPDX-License-Identifier: MIT */
/* gen_names_seeds.c - write the seed corpus of fuzz_py_names (tests/fuzz/corpus/py_names).
 *
 * Each seed is a well-formed fake 3.11 target (the layout of py311.h) in
 * which the whole path the name reader takes exists: _PyRuntime ->
 * interpreters.main -> sys.modules (a general-kind dict of str keys) ->
 * "threading" (a module) -> md_dict (a unicode-kind dict) -> "_active" (a
 * general-kind dict of int idents) -> Thread objects whose type has a
 * managed dict: split values before the object with the keys cached on
 * the type, or, for one thread, a real dict.  Three thread states carry
 * the idents and OS thread ids.  The type objects "dict", "int", "module"
 * and "Thread" are in the image with their tp_name strings, since the
 * reader checks those by name.  Each seed then adds one twist, so the
 * fuzzer starts from inputs that reach the name decoding instead of
 * failing at the first pointer.  The seeds are kept in git; this program
 * documents how they were made and remakes them:
 *     cc -Icommon -Itests/fuzz -o /tmp/gen tests/fuzz/gen_names_seeds.c && /tmp/gen DIR
 * With a second directory, /tmp/gen DIR SLOWDIR also writes SLOWDIR/quadratic:
 * a 60 KiB target that costs 2 million reads per call unless the reader
 * bounds its total work (fuzz_py_names aborts on it without the bound).
 * It stays out of the corpus: each mutation of it takes ~50 ms, which
 * would slow the fuzzer a hundredfold.  Replay it by hand:
 *     build/fuzz/fuzz_py_names SLOWDIR/quadratic
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "py311.h"
#include "seed_image.h"
#include "walk_image.h"

/* Where each object sits in the image. */
enum {
    O_RT = 0x000, O_INTERP = 0x300,               /* interp: 0x380 bytes     */
    O_TS = 0x680,                                 /* 3 tstates of 0xb0 bytes */
    O_T_DICT = 0x8a0, O_T_INT = 0x8c0, O_T_MODULE = 0x8e0,   /* 32 bytes each */
    O_TYPENAMES = 0x900,                          /* 4 C strings of 16 bytes */
    O_T_THREAD = 0x950,                           /* a heap type: 0x370 bytes */
    O_STRS = 0xcc0,                               /* 16 str slots of 0x60    */
    O_MODULES = 0x12c0, O_MODULES_KEYS = 0x12f0,  /* dict, 6 general entries */
    O_THREADING = 0x13e0,                         /* the module object       */
    O_MD = 0x1400, O_MD_KEYS = 0x1430,            /* dict, 4 unicode entries */
    O_ACTIVE = 0x14a0, O_ACTIVE_KEYS = 0x14d0,    /* dict, 3 general entries */
    O_LONGS = 0x1540,                             /* 3 ints of 0x30 bytes    */
    O_CACHED_KEYS = 0x15d0,                       /* split keys, 4 entries   */
    O_THREADS = 0x1640,                           /* 3 x (values, pre, obj)  */
    O_T2_DICT = 0x1800, O_T2_KEYS = 0x1830,       /* thread 2's real dict    */
    O_LONG_NAME = 0x1880,                         /* a 150-char str          */
    IMAGE_SIZE = 0x1980,
    /* the "quadratic" seed's extension: a long _active, long Thread keys */
    O_BIG_ACTIVE_KEYS = 0x1980, BIG_ACTIVE = 1000,   /* 24 bytes an entry */
    O_BIG_CACHED_KEYS = 0x7800, BIG_CACHED = 2000,   /* 16 bytes an entry */
    BIG_IMAGE_SIZE = 0xf600,
};

/* str slots */
enum { S_SYS, S_BUILTINS, S_THREADING, S_OS, S_ACTIVE, S_DUNDER_NAME, S_LIMBO, S_TARGET, S_NAME, S_IDENT,
       S_DAEMONIC, S_MAIN, S_WORKER, S_LAMBDA, S_TIMER, S_THREADINX };

#define THREAD_SLOT 0x80   /* per thread: values array (32), pad, obj-32.. obj+64 */
#define NTHREADS    3

static const uint64_t idents[NTHREADS] = { 0x7f3a5c1e9740ull, 0xfffffffffffff000ull, 12345 };
static const uint32_t tids[NTHREADS] = { 4242, 4243, 4244 };

static uint8_t img[BIG_IMAGE_SIZE];

static unsigned str_at(int slot)
{
    return O_STRS + (unsigned)slot * 0x60;
}

/* "λ-worker-é" as a UCS-2 compact str (not ASCII: data after 72 bytes). */
static void make_wide(unsigned o)
{
    static const uint16_t chars[] = { 0x3bb, '-', 'w', 'o', 'r', 'k', 'e', 'r', '-', 0xe9 };
    seed_str_ucs2(o, chars, sizeof chars / sizeof chars[0]);
}

static void make_type(unsigned o, int name_slot, const char *name)
{
    seed_type_name(o, O_TYPENAMES + (unsigned)name_slot * 16, name);
}

/* A dict object at o over keys at k: kind, log2 of the index bytes (8). */
static void make_dict(unsigned o, unsigned k, int kind, int64_t nentries)
{
    seed_dict(o, seed_at(O_T_DICT), k, kind, nentries);
}

static void put_entry(unsigned k, int general, int i, uint64_t key, uint64_t value)
{
    seed_dict_entry(k, general, i, key, value);
}

/* An int with 1..3 30-bit digits. */
static void make_long(unsigned o, uint64_t v)
{
    int n = 0;
    seed_put64(o + AT_OBJECT_TYPE, seed_at(O_T_INT));
    for (; v && n < 3; n++, v >>= AT_LONG_SHIFT)
        seed_put32(o + AT_LONG_DIGITS + (unsigned)n * 4, (uint32_t)(v & ((1u << AT_LONG_SHIFT) - 1)));
    seed_put64(o + AT_VAR_SIZE, (uint64_t)n);
}

static unsigned thread_obj(int i)
{
    return O_THREADS + (unsigned)i * THREAD_SLOT + 0x40;   /* values at slot start, obj-32 at +0x20 */
}

/* Thread i with split values (_target, _name, _ident, _daemonic) or, for
 * a real_dict thread, its attributes in the dict at O_T2_DICT. */
static void make_thread(int i, int name_slot, int real_dict)
{
    unsigned obj = thread_obj(i), values = O_THREADS + (unsigned)i * THREAD_SLOT;
    seed_put64(obj + AT_OBJECT_TYPE, seed_at(O_T_THREAD));
    seed_put64(values + 8, seed_at(str_at(name_slot)));
    seed_put64(values + 16, seed_at(O_LONGS + (unsigned)i * 0x30));
    if (!real_dict) {
        seed_put64(obj + AT_OBJECT_MANAGED_VALUES, seed_at(values));
        return;
    }
    seed_put64(obj + AT_OBJECT_MANAGED_DICT, seed_at(O_T2_DICT));
    make_dict(O_T2_DICT, O_T2_KEYS, 1, 2);
    put_entry(O_T2_KEYS, 0, 0, seed_at(str_at(S_DAEMONIC)), 0);
    put_entry(O_T2_KEYS, 0, 1, seed_at(str_at(S_NAME)), seed_at(str_at(name_slot)));
}

static void make_strings(void)
{
    static const char *const ascii[] = { "sys", "builtins", "threading", "os", "_active", "__name__", "_limbo",
                                         "_target", "_name", "_ident", "_daemonic", "MainThread", "worker-0" };
    for (int i = 0; i < (int)(sizeof ascii / sizeof ascii[0]); i++)
        seed_str_ascii(str_at(i), ascii[i]);
    make_wide(str_at(S_LAMBDA));
    seed_str_ascii(str_at(S_TIMER), "Timer-1");
    seed_str_ascii(str_at(S_THREADINX), "threadinx");
    char long_name[151];
    for (int i = 0; i < 150; i++)
        long_name[i] = (char)('a' + i % 26);
    long_name[150] = '\0';
    seed_str_ascii(O_LONG_NAME, long_name);
}

static void make_types(void)
{
    make_type(O_T_DICT, 0, "dict");
    make_type(O_T_INT, 1, "int");
    make_type(O_T_MODULE, 2, "module");
    make_type(O_T_THREAD, 3, "Thread");
    seed_put64(O_T_THREAD + AT_TYPE_FLAGS, AT_TPFLAGS_MANAGED_DICT | 1ul << 9); /* | Py_TPFLAGS_HEAPTYPE */
    seed_put64(O_T_THREAD + AT_HEAPTYPE_CACHED_KEYS, seed_at(O_CACHED_KEYS));
    img[O_CACHED_KEYS + AT_DICTKEYS_LOG2_INDEX_BYTES] = 3;
    img[O_CACHED_KEYS + AT_DICTKEYS_KIND] = 2; /* split */
    seed_put64(O_CACHED_KEYS + AT_DICTKEYS_NENTRIES, 4);
    for (int i = 0; i < 4; i++)
        put_entry(O_CACHED_KEYS, 0, i, seed_at(str_at(S_TARGET + i)), 0);
}

/* sys.modules, threading and its _active with the three threads. */
static void make_modules(void)
{
    static const int keys[] = { S_SYS, S_BUILTINS, S_OS, S_THREADING };
    make_dict(O_MODULES, O_MODULES_KEYS, AT_DICT_KEYS_GENERAL, 5);
    for (int i = 0; i < 4; i++)
        put_entry(O_MODULES_KEYS, 1, i, seed_at(str_at(keys[i])), seed_at(i == 3 ? O_THREADING : O_INTERP));
    put_entry(O_MODULES_KEYS, 1, 4, 0, 0); /* a deleted entry */
    seed_put64(O_THREADING + AT_OBJECT_TYPE, seed_at(O_T_MODULE));
    seed_put64(O_THREADING + AT_MODULE_DICT, seed_at(O_MD));
    make_dict(O_MD, O_MD_KEYS, 1, 3);
    put_entry(O_MD_KEYS, 0, 0, seed_at(str_at(S_DUNDER_NAME)), seed_at(str_at(S_THREADING)));
    put_entry(O_MD_KEYS, 0, 1, seed_at(str_at(S_LIMBO)), seed_at(O_MD));
    put_entry(O_MD_KEYS, 0, 2, seed_at(str_at(S_ACTIVE)), seed_at(O_ACTIVE));
    make_dict(O_ACTIVE, O_ACTIVE_KEYS, AT_DICT_KEYS_GENERAL, NTHREADS);
    for (int i = 0; i < NTHREADS; i++) {
        make_long(O_LONGS + (unsigned)i * 0x30, idents[i]);
        put_entry(O_ACTIVE_KEYS, 1, i, seed_at(O_LONGS + (unsigned)i * 0x30), seed_at(thread_obj(i)));
    }
    make_thread(0, S_MAIN, 0);
    make_thread(1, S_WORKER, 1);
    make_thread(2, S_LAMBDA, 0);
}

static void base_image(void)
{
    memset(img, 0, sizeof img);
    seed_use(img, IMAGE_SIZE);
    make_strings();
    make_types();
    make_modules();
    for (int i = 0; i < NTHREADS; i++) {
        unsigned ts = O_TS + (unsigned)i * 0xb0;
        seed_put64(ts + AT_TSTATE_NEXT, i + 1 < NTHREADS ? seed_at(ts + 0xb0) : 0);
        seed_put64(ts + AT_TSTATE_INTERP, seed_at(O_INTERP));
        seed_put64(ts + AT_TSTATE_THREAD_ID, idents[i]);
        seed_put64(ts + AT_TSTATE_NATIVE_THREAD_ID, tids[i]);
    }
    seed_put64(O_INTERP + AT_INTERP_TSTATE_HEAD, seed_at(O_TS));
    seed_put64(O_INTERP + AT_INTERP_RUNTIME, seed_at(O_RT));
    seed_put64(O_INTERP + AT_INTERP_MODULES, seed_at(O_MODULES));
    seed_put64(O_RT + AT_RT_INTERPRETERS_HEAD, seed_at(O_INTERP));
    seed_put64(O_RT + AT_RT_INTERPRETERS_MAIN, seed_at(O_INTERP));
}

/* 1000 _active entries, all the same Thread, whose type has 2000 keys
 * and none of them "_name": 2 million key comparisons unless the walk
 * bounds its total work. */
static void make_quadratic(void)
{
    seed_use(img, BIG_IMAGE_SIZE);
    seed_put64(O_ACTIVE + AT_DICT_KEYS, seed_at(O_BIG_ACTIVE_KEYS));
    img[O_BIG_ACTIVE_KEYS + AT_DICTKEYS_LOG2_INDEX_BYTES] = 3;
    seed_put64(O_BIG_ACTIVE_KEYS + AT_DICTKEYS_NENTRIES, BIG_ACTIVE);
    for (int i = 0; i < BIG_ACTIVE; i++)
        put_entry(O_BIG_ACTIVE_KEYS, 1, i, seed_at(O_LONGS), seed_at(thread_obj(0)));
    seed_put64(O_T_THREAD + AT_HEAPTYPE_CACHED_KEYS, seed_at(O_BIG_CACHED_KEYS));
    img[O_BIG_CACHED_KEYS + AT_DICTKEYS_LOG2_INDEX_BYTES] = 3;
    img[O_BIG_CACHED_KEYS + AT_DICTKEYS_KIND] = 2;
    seed_put64(O_BIG_CACHED_KEYS + AT_DICTKEYS_NENTRIES, BIG_CACHED);
    for (int i = 0; i < BIG_CACHED; i++)
        put_entry(O_BIG_CACHED_KEYS, 0, i, seed_at(str_at(S_TARGET)), 0);
}

/* Header, patch, image. */
int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "tests/fuzz/corpus/py_names";
    const unsigned values1 = O_THREADS + 1 * THREAD_SLOT, values2 = O_THREADS + 2 * THREAD_SLOT;
    uint64_t v;
    int bad = 0;

    base_image();
    bad |= seed_write(dir, "three_threads", WALK_TYPES_EXPORTED, 0, 0, NULL, 0);
    bad |= seed_write(dir, "untyped", 0, 0, 0, NULL, 0);
    bad |= seed_write(dir, "exits_mid_walk", WALK_TYPES_EXPORTED, 24, 0, NULL, 0);
    v = seed_at(O_LONG_NAME); /* after the cached reads: a name longer than AT_PY_NAME_MAX */
    bad |= seed_write(dir, "long_name_later", WALK_TYPES_EXPORTED, 0, values2 + 8, &v, 8);
    v = 0; /* after the cached reads: the cached _active is no dict any more */
    bad |= seed_write(dir, "stale_cache", WALK_TYPES_EXPORTED, 0, O_ACTIVE + AT_OBJECT_TYPE, &v, 8);
    v = seed_at(O_T2_DICT); /* after the cached reads: _active's keys are a Thread's dict keys */
    bad |= seed_write(dir, "active_swapped", WALK_TYPES_EXPORTED, 0, O_MD_KEYS + AT_DICTKEYS_INDICES + 8 + 2 * 16 + 8,
                      &v, 8);

    base_image(); /* the thread list loops back on itself */
    seed_put64(O_TS + 2 * 0xb0 + AT_TSTATE_NEXT, seed_at(O_TS));
    bad |= seed_write(dir, "tstate_cycle", WALK_TYPES_EXPORTED, 0, 0, NULL, 0);

    base_image(); /* threading never imported: sys.modules has "threadinx" */
    put_entry(O_MODULES_KEYS, 1, 3, seed_at(str_at(S_THREADINX)), seed_at(O_THREADING));
    bad |= seed_write(dir, "no_threading", WALK_TYPES_EXPORTED, 0, 0, NULL, 0);

    base_image(); /* _active claims 2^40 entries, then just past the limit */
    seed_put64(O_ACTIVE_KEYS + AT_DICTKEYS_NENTRIES, 1ull << 40);
    bad |= seed_write(dir, "huge_nentries", WALK_TYPES_EXPORTED, 0, 0, NULL, 0);
    seed_put64(O_ACTIVE_KEYS + AT_DICTKEYS_NENTRIES, 16385);
    bad |= seed_write(dir, "nentries_past_limit", WALK_TYPES_EXPORTED, 0, 0, NULL, 0);

    base_image(); /* one Thread values array and name shared, an ident with no thread state */
    seed_put64(thread_obj(2) + AT_OBJECT_MANAGED_VALUES, seed_at(values1));
    seed_put64(O_TS + 0xb0 + AT_TSTATE_THREAD_ID, 777);
    seed_put64(O_THREADS + 8, seed_at(str_at(S_TIMER)));
    bad |= seed_write(dir, "orphan_ident", WALK_TYPES_EXPORTED, 0, 0, NULL, 0);

    if (argc > 2) { /* the slow regression input, kept out of the corpus */
        base_image();
        make_quadratic();
        bad |= seed_write(argv[2], "quadratic", WALK_TYPES_EXPORTED, 0, 0, NULL, 0);
    }
    return bad;
}
