/* SPDX-License-Identifier: MIT */
/* gen_asyncio_seeds.c - write the seed corpus of fuzz_asyncio (tests/fuzz/corpus/asyncio).
 *
 * Each seed is a well-formed fake 3.11 target (py311.h's layout) in which
 * the whole path of both asyncio readers exists: _PyRuntime ->
 * interpreters.main -> sys.modules (a general-kind dict of str keys) ->
 * "asyncio.tasks" and "_asyncio" (modules) -> their md_dicts ->
 *   - "_all_tasks": a WeakSet (a heap type with a managed dict: split
 *     values before the object, the keys cached on the type) whose "data"
 *     is a set of weak references: to two tasks, to a pure-Python task,
 *     to None (a dead referent), and a deleted slot;
 *   - "_eager_tasks": a set holding a third task and one of the first two
 *     again (3.12's eager tasks; the reader merges both sets);
 *   - "_current_tasks": a dict, loop -> the task it runs now (loop 0 runs
 *     the "main" task, loop 1 the pure-Python one);
 *   - _asyncio's "Task": the C task type (a third task's type derives
 *     from it).
 * The tasks: "main", running (its coroutine's frame is executing, so
 * at_asyncio_join and at_async_now_task find it on a stack); "worker-1",
 * suspended in a coroutine that awaits a @types.coroutine generator that
 * awaits a coroutine that awaits the third task (its fut_waiter too);
 * "λ-fetch" (UCS-2), a coroutine not started yet, created in debug mode
 * (_source_traceback: a list of two FrameSummary objects, whose slots the
 * reader finds through their type's dict of member descriptors).  The
 * code objects, str objects and line table are what fuzz_frame_walk's
 * seeds have.  The type objects "dict" and "module" are in the image with
 * their tp_name (py_names.c checks those by name); the builtin types and
 * None sit at walk_image.h's WALK_* addresses.  Each seed then adds one
 * twist (see main), so the fuzzer starts from inputs that reach the task,
 * await-chain and creation-site decoding instead of failing at the first
 * pointer.  The seeds are kept in git; this program documents how they
 * were made and remakes them:
 *     cc -Icommon -Itests/fuzz -o /tmp/gen tests/fuzz/gen_asyncio_seeds.c && /tmp/gen DIR
 * What each seed yields (tasks read, the running task found):
 *     FUZZ_ASYNCIO_VERBOSE=1 build-fz/fuzz/fuzz_asyncio DIR/three_tasks DIR/await_cycle ...
 * With a second directory, /tmp/gen DIR SLOWDIR also writes
 * SLOWDIR/summaries: a 95 KiB target of 200 tasks whose creation sites'
 * FrameSummary type lacks the slots, which cost 38 million reads a call
 * (two minutes under ASan) while py_asyncio.c looked the slots up again
 * for each summary; 32 thousand since.  It stays out of the corpus (a
 * mutation of it would take ~50 ms); replay it by hand:
 *     FUZZ_ASYNCIO_VERBOSE=1 build-fz/fuzz/fuzz_asyncio SLOWDIR/summaries
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "py311.h"
#include "seed_image.h"
#include "walk_image.h"

/* Where each object sits in the image. */
enum {
    O_RT = 0x000, O_INTERP = 0x100,                 /* interp: 0x380 bytes         */
    O_T_DICT = 0x480, O_T_MODULE = 0x5a0, O_T_TASK = 0x6c0, O_T_SUBTASK = 0x7e0,
    O_T_FS = 0x900, O_T_PYTASK = 0xa20, O_T_LOOP = 0xb40, O_T_SUBTASK2 = 0xc60, /* 0x120 each */
    O_T_WEAKSET = 0xd80,                            /* a heap type: 0x380 bytes   */
    O_TYPENAMES = 0x1100,                           /* 16 C strings of 16 bytes   */
    O_STRS = 0x1200,                                /* 32 str slots of 0x60       */
    O_MODULES = 0x1e00, O_MODULES_KEYS = 0x1e30,    /* dict, 5 general entries    */
    O_TASKS_MOD = 0x1f00, O_C_MOD = 0x1f20,         /* module objects             */
    O_TASKS_MD = 0x1f40, O_TASKS_MD_KEYS = 0x1f70,  /* dict, 4 unicode entries    */
    O_C_MD = 0x2000, O_C_MD_KEYS = 0x2030,          /* dict, 3 unicode entries    */
    O_CURRENT = 0x20c0, O_CURRENT_KEYS = 0x20f0,    /* dict, 2 general entries    */
    O_FS_DICT = 0x2180, O_FS_DICT_KEYS = 0x21b0,    /* FrameSummary's tp_dict     */
    O_WEAKSET_KEYS = 0x2240,                        /* split keys, 3 entries      */
    O_WEAKSET_VALUES = 0x22a0, O_WEAKSET = 0x22e0,  /* values; the object (-32: ptr) */
    O_DATASET = 0x2300, O_DATASET_TABLE = 0x2340,   /* set, 8 slots               */
    O_EAGER = 0x23c0, O_EAGER_TABLE = 0x2400,       /* set, 8 slots               */
    O_WEAKREFS = 0x2480,                            /* 6 of 0x20 bytes            */
    O_LOOPS = 0x2540,                               /* 2 of 0x20 bytes            */
    O_TASKS = 0x2580,                               /* 4 of 0xc0 bytes            */
    O_COROS = 0x2880,                               /* 6 of 0xc0 bytes            */
    O_CODES = 0x2d00,                               /* 4 of 0x100 bytes           */
    O_LINETABLE = 0x3100,                           /* bytes, 16 entries          */
    O_TB = 0x3140, O_TB_ITEMS = 0x3160,             /* list of 2 FrameSummary     */
    O_FS = 0x3180,                                  /* 2 of 0x40 bytes            */
    O_DESCRS = 0x3200, O_MEMBERS = 0x3290,          /* 3 of 0x30, 3 of 0x28       */
    O_INTS = 0x3310,                                /* 3 of 0x20 bytes            */
    O_LONG_NAME = 0x3380,                           /* a 150-char str             */
    IMAGE_SIZE = 0x3480,
    /* deep_chain's extension: DEEP coroutines, each awaiting the next */
    O_DEEP = 0x3480, DEEP = 70, DEEP_SLOT = 0xa0, BIG_IMAGE_SIZE = O_DEEP + DEEP * DEEP_SLOT,
    /* the "summaries" input's extension (see make_summaries) */
    SLOW_TASKS = 200, SLOW_KEYS = 2000,
    O_SLOW_TABLE = 0x3480,                          /* 256 set slots              */
    O_SLOW_REFS = O_SLOW_TABLE + 256 * 16,          /* SLOW_TASKS of 0x20 bytes   */
    O_SLOW_TASKS = O_SLOW_REFS + SLOW_TASKS * 0x20, /* SLOW_TASKS of 0xc0 bytes   */
    O_SLOW_TB = O_SLOW_TASKS + SLOW_TASKS * 0xc0,   /* a list of 32 summaries     */
    O_SLOW_KEYS = O_SLOW_TB + 0x20 + 32 * 8,        /* FrameSummary's dict keys   */
    SLOW_IMAGE_SIZE = O_SLOW_KEYS + 0x28 + SLOW_KEYS * 16,
};

/* str slots */
enum { S_SYS, S_ASYNCIO, S_ASYNCIO_TASKS, S_C_ASYNCIO, S_TASK, S_ALL_TASKS, S_SCHEDULED, S_EAGER, S_CURRENT,
       S_DATA, S_PENDING, S_ITERATING, S_FILENAME, S_LINENO, S_NAME, S_DUNDER_NAME, S_MAIN, S_WORKER, S_LAMBDA,
       S_EVIL, S_FILE, S_RUNNERS, S_FN_MAIN, S_FN_WORKER, S_FN_GEN, S_FN_FETCH, S_FN_RUN, S_COUNT };

enum { T_MAIN, T_WORKER, T_FETCH, T_PY };              /* tasks (T_PY: a _PyTask)  */
enum { C_MAIN, C_WORKER, C_GEN, C_WAIT, C_FETCH };     /* coroutines               */
enum { K_MAIN, K_WORKER, K_GEN, K_FETCH };             /* code objects             */

#define RESUME 151   /* 3.11's opcode: its oparg says what the frame yielded from */

static uint8_t img[SLOW_IMAGE_SIZE > BIG_IMAGE_SIZE ? SLOW_IMAGE_SIZE : BIG_IMAGE_SIZE];

static unsigned str_at(int slot)
{
    return O_STRS + (unsigned)slot * 0x60;
}

static uint64_t str_addr(int slot)
{
    return seed_at(str_at(slot));
}

static unsigned task_at(int i)
{
    return O_TASKS + (unsigned)i * 0xc0;
}

static unsigned coro_at(int i)
{
    return O_COROS + (unsigned)i * 0xc0;
}

static unsigned code_at(int i)
{
    return O_CODES + (unsigned)i * 0x100;
}

static unsigned loop_at(int i)
{
    return O_LOOPS + (unsigned)i * 0x20;
}

static unsigned int_at(int i)
{
    return O_INTS + (unsigned)i * 0x20;
}

static void make_strings(void)
{
    static const char *const ascii[] = {
        "sys", "asyncio", "asyncio.tasks", "_asyncio", "Task", "_all_tasks", "_scheduled_tasks", "_eager_tasks",
        "_current_tasks", "data", "_pending_removals", "_iterating", "filename", "lineno", "name", "__name__",
        "main", "worker-1",
    };
    for (int i = 0; i < (int)(sizeof ascii / sizeof ascii[0]); i++)
        seed_str_ascii(str_at(i), ascii[i]);
    static const uint16_t lambda[] = { 0x3bb, '-', 'f', 'e', 't', 'c', 'h' };
    seed_str_ucs2(str_at(S_LAMBDA), lambda, sizeof lambda / sizeof lambda[0]);
    /* a name a terminal must not see raw: a newline and a bidi override */
    static const uint16_t evil[] = { 'b', 'a', 'd', '\n', 0x202e, 'e', 'm', 'a', 'n' };
    seed_str_ucs2(str_at(S_EVIL), evil, sizeof evil / sizeof evil[0]);
    seed_str_ascii(str_at(S_FILE), "/app/main.py");
    seed_str_ascii(str_at(S_RUNNERS), "/usr/lib/python3.11/asyncio/runners.py");
    seed_str_ascii(str_at(S_FN_MAIN), "main");
    seed_str_ascii(str_at(S_FN_WORKER), "worker");
    seed_str_ascii(str_at(S_FN_GEN), "legacy_gen");
    seed_str_ascii(str_at(S_FN_FETCH), "fetch");
    seed_str_ascii(str_at(S_FN_RUN), "run");
    char long_name[151];
    for (int i = 0; i < 150; i++)
        long_name[i] = (char)('a' + i % 26);
    long_name[150] = '\0';
    seed_str_ascii(O_LONG_NAME, long_name);
}

/* An int with one 30-bit digit (the builtin int type: py_repr.c reads it). */
static void make_int(unsigned o, uint32_t v)
{
    seed_put64(o + AT_OBJECT_TYPE, WALK_LONG_TYPE);
    seed_put64(o + AT_VAR_SIZE, 1);
    seed_put32(o + AT_LONG_DIGITS, v);
}

static void make_types(void)
{
    static const struct { unsigned at; const char *name; } types[] = {
        { O_T_DICT, "dict" },          { O_T_MODULE, "module" },     { O_T_TASK, "_asyncio.Task" },
        { O_T_SUBTASK, "FetchTask" },  { O_T_FS, "FrameSummary" },   { O_T_PYTASK, "Task" },
        { O_T_LOOP, "EventLoop" },     { O_T_SUBTASK2, "OtherTask" }, { O_T_WEAKSET, "WeakSet" },
    };
    for (unsigned i = 0; i < sizeof types / sizeof types[0]; i++)
        seed_type_name(types[i].at, O_TYPENAMES + i * 16, types[i].name);
    seed_put64(O_T_SUBTASK + AT_TYPE_BASE, seed_at(O_T_TASK));
    /* WeakSet: instances keep data, _pending_removals, _iterating in split values */
    seed_put64(O_T_WEAKSET + AT_TYPE_FLAGS, AT_TPFLAGS_MANAGED_DICT | 1ul << 9); /* | Py_TPFLAGS_HEAPTYPE */
    seed_put64(O_T_WEAKSET + AT_HEAPTYPE_CACHED_KEYS, seed_at(O_WEAKSET_KEYS));
    img[O_WEAKSET_KEYS + AT_DICTKEYS_LOG2_INDEX_BYTES] = 3;
    img[O_WEAKSET_KEYS + AT_DICTKEYS_KIND] = 2; /* split */
    seed_put64(O_WEAKSET_KEYS + AT_DICTKEYS_NENTRIES, 3);
    seed_dict_entry(O_WEAKSET_KEYS, 0, 0, str_addr(S_DATA), 0);
    seed_dict_entry(O_WEAKSET_KEYS, 0, 1, str_addr(S_PENDING), 0);
    seed_dict_entry(O_WEAKSET_KEYS, 0, 2, str_addr(S_ITERATING), 0);
    /* FrameSummary: __slots__ filename, lineno, name as member descriptors in its dict */
    static const int slots[] = { S_FILENAME, S_LINENO, S_NAME };
    static const uint64_t offsets[] = { 16, 24, 56 };
    seed_put64(O_T_FS + AT_TYPE_DICT, seed_at(O_FS_DICT));
    seed_dict(O_FS_DICT, seed_at(O_T_DICT), O_FS_DICT_KEYS, 1, 4);
    seed_dict_entry(O_FS_DICT_KEYS, 0, 0, str_addr(S_DUNDER_NAME), str_addr(S_NAME));
    for (unsigned i = 0; i < 3; i++) {
        unsigned d = O_DESCRS + i * 0x30, m = O_MEMBERS + i * 0x28;
        seed_dict_entry(O_FS_DICT_KEYS, 0, (int)i + 1, str_addr(slots[i]), seed_at(d));
        seed_put64(d + AT_OBJECT_TYPE, seed_at(O_T_LOOP));
        seed_put64(d + AT_MEMBERDESCR_MEMBER, seed_at(m));
        seed_put64(m, str_addr(slots[i])); /* PyMemberDef.name: a char *, unread */
        seed_put64(m + AT_MEMBERDEF_OFFSET, offsets[i]);
    }
}

/* Code object i named by str slot `name`, 16 code units. */
static void make_code(int i, int name, int firstlineno)
{
    unsigned c = code_at(i);
    seed_put64(c + AT_OBJECT_TYPE, WALK_CODE_TYPE);
    seed_put64(c + AT_VAR_SIZE, 16);
    seed_put32(c + AT_CODE_FIRSTLINENO, (uint32_t)firstlineno);
    seed_put64(c + AT_CODE_FILENAME, str_addr(S_FILE));
    seed_put64(c + AT_CODE_QUALNAME, str_addr(name));
    seed_put64(c + AT_CODE_LINETABLE, seed_at(O_LINETABLE));
    seed_put32(c + AT_CODE_FIRSTTRACEABLE, 2);
}

/* A coroutine (or generator) at o running code k: its frame stopped at
 * code unit `unit` in `state`; suspended in an await of `awaits` (the top
 * of its value stack, and a RESUME with oparg 3 next) when that is not 0. */
static void make_coro(unsigned o, uint64_t type, int k, int state, int unit, uint64_t awaits)
{
    unsigned f = o + AT_GEN_IFRAME;
    uint64_t code = seed_at(code_at(k));
    seed_put64(o + AT_OBJECT_TYPE, type);
    img[o + AT_GEN_FRAME_STATE] = (uint8_t)(int8_t)state;
    seed_put64(f + AT_IFRAME_CODE, code);
    seed_put64(f + AT_IFRAME_PREV_INSTR, code + AT_CODE_CODE_ADAPTIVE + (uint64_t)(int64_t)unit * AT_SIZEOF_CODEUNIT);
    img[f + AT_IFRAME_OWNER] = AT_FRAME_OWNED_BY_GENERATOR;
    if (awaits) {
        unsigned next = code_at(k) + AT_CODE_CODE_ADAPTIVE + (unsigned)(unit + 1) * AT_SIZEOF_CODEUNIT;
        img[next] = RESUME;
        img[next + 1] = 3;   /* after `await` */
        seed_put32(f + AT_IFRAME_STACKTOP, 1);
        seed_put64(f + AT_IFRAME_LOCALSPLUS, awaits);
    }
}

static void make_task(int i, uint64_t type, int loop, int coro, uint64_t name)
{
    unsigned t = task_at(i);
    seed_put64(t + AT_OBJECT_TYPE, type);
    seed_put64(t + AT_TASK_LOOP, seed_at(loop_at(loop)));
    seed_put32(t + AT_TASK_STATE, AT_FUT_STATE_PENDING);
    seed_put64(t + AT_TASK_CORO, seed_at(coro_at(coro)));
    seed_put64(t + AT_TASK_NAME, name);
    seed_put64(t + AT_TASK_SOURCE_TB, WALK_NONE);
}

static void make_tasks(void)
{
    seed_put64(O_LINETABLE + AT_OBJECT_TYPE, WALK_BYTES_TYPE);
    seed_put64(O_LINETABLE + AT_VAR_SIZE, 16);
    memset(img + O_LINETABLE + AT_BYTES_SVAL, 0xd8, 16); /* 16 entries "+1 line" */
    make_code(K_MAIN, S_FN_MAIN, 10);
    make_code(K_WORKER, S_FN_WORKER, 30);
    make_code(K_GEN, S_FN_GEN, 50);
    make_code(K_FETCH, S_FN_FETCH, 70);
    for (int i = 0; i < 2; i++)
        seed_put64(loop_at(i) + AT_OBJECT_TYPE, seed_at(O_T_LOOP));
    make_coro(coro_at(C_MAIN), WALK_CORO_TYPE, K_MAIN, 0, 5, 0); /* FRAME_EXECUTING */
    make_coro(coro_at(C_WORKER), WALK_CORO_TYPE, K_WORKER, AT_FRAME_SUSPENDED, 3, seed_at(coro_at(C_GEN)));
    make_coro(coro_at(C_GEN), WALK_GEN_TYPE, K_GEN, AT_FRAME_SUSPENDED, 6, seed_at(coro_at(C_WAIT)));
    make_coro(coro_at(C_WAIT), WALK_CORO_TYPE, K_FETCH, AT_FRAME_SUSPENDED, 8, seed_at(task_at(T_FETCH)));
    make_coro(coro_at(C_FETCH), WALK_CORO_TYPE, K_FETCH, AT_FRAME_CREATED, -1, 0);
    make_task(T_MAIN, seed_at(O_T_TASK), 0, C_MAIN, str_addr(S_MAIN));
    make_task(T_WORKER, seed_at(O_T_TASK), 0, C_WORKER, str_addr(S_WORKER));
    seed_put64(task_at(T_WORKER) + AT_TASK_FUT_WAITER, seed_at(task_at(T_FETCH)));
    make_task(T_FETCH, seed_at(O_T_SUBTASK), 1, C_FETCH, str_addr(S_LAMBDA));
    seed_put64(task_at(T_FETCH) + AT_TASK_SOURCE_TB, seed_at(O_TB));
    seed_put64(task_at(T_PY) + AT_OBJECT_TYPE, seed_at(O_T_PYTASK));
    /* where "λ-fetch" was created: run() in runners.py, then main() */
    seed_put64(O_TB + AT_OBJECT_TYPE, WALK_LIST_TYPE);
    seed_put64(O_TB + AT_VAR_SIZE, 2);
    seed_put64(O_TB + AT_LIST_ITEMS, seed_at(O_TB_ITEMS));
    static const int files[] = { S_RUNNERS, S_FILE }, funcs[] = { S_FN_RUN, S_FN_MAIN };
    static const uint32_t lines[] = { 44, 12 };
    for (unsigned i = 0; i < 2; i++) {
        unsigned fs = O_FS + i * 0x40;
        make_int(int_at((int)i), lines[i]);
        seed_put64(O_TB_ITEMS + i * 8, seed_at(fs));
        seed_put64(fs + AT_OBJECT_TYPE, seed_at(O_T_FS));
        seed_put64(fs + 16, str_addr(files[i]));
        seed_put64(fs + 24, seed_at(int_at((int)i)));
        seed_put64(fs + 56, str_addr(funcs[i]));
    }
    make_int(int_at(2), 7);   /* 3.13's deferred name: Task-7 */
}

/* A set of WALK_SET_TYPE at o over an 8-slot table at t: keys[i] in slot
 * 2i+1 (0: a deleted slot, the dummy key with hash -1). */
static void make_set(unsigned o, unsigned t, const uint64_t *keys, int n)
{
    seed_put64(o + AT_OBJECT_TYPE, WALK_SET_TYPE);
    seed_put64(o + AT_SET_USED, (uint64_t)n);
    seed_put64(o + AT_SET_MASK, 7);
    seed_put64(o + AT_SET_TABLE, seed_at(t));
    for (int i = 0; i < n; i++) {
        unsigned e = t + (unsigned)(2 * i + 1) * AT_SIZEOF_SETENTRY;
        seed_put64(e, keys[i] ? keys[i] : seed_at(O_WEAKREFS + 5 * 0x20));
        seed_put64(e + 8, keys[i] ? 0x7a5c0000u + (unsigned)i : (uint64_t)-1);
    }
}

/* The weak references of the WeakSet (to main, worker-1, the _PyTask, a
 * dead one reading None), and the eager set (fetch, main again). */
static void make_sets(void)
{
    static const int refs[] = { T_MAIN, T_WORKER, T_PY, -1 };
    uint64_t keys[5];
    for (int i = 0; i < 4; i++) {
        unsigned wr = O_WEAKREFS + (unsigned)i * 0x20;
        seed_put64(wr + AT_OBJECT_TYPE, seed_at(O_T_LOOP));
        seed_put64(wr + AT_WEAKREF_OBJECT, refs[i] < 0 ? WALK_NONE : seed_at(task_at(refs[i])));
        keys[i] = seed_at(wr);
    }
    keys[4] = 0;
    make_set(O_DATASET, O_DATASET_TABLE, keys, 5);
    seed_put64(O_WEAKSET + AT_OBJECT_TYPE, seed_at(O_T_WEAKSET));
    seed_put64(O_WEAKSET + AT_OBJECT_MANAGED_VALUES, seed_at(O_WEAKSET_VALUES));
    seed_put64(O_WEAKSET_VALUES, seed_at(O_DATASET));
    const uint64_t eager[] = { seed_at(task_at(T_FETCH)), seed_at(task_at(T_MAIN)) };
    make_set(O_EAGER, O_EAGER_TABLE, eager, 2);
}

static void make_module(unsigned mod, unsigned md, unsigned keys, int n)
{
    seed_put64(mod + AT_OBJECT_TYPE, seed_at(O_T_MODULE));
    seed_put64(mod + AT_MODULE_DICT, seed_at(md));
    seed_dict(md, seed_at(O_T_DICT), keys, 1, n);
}

/* sys.modules, asyncio.tasks and _asyncio, _current_tasks. */
static void make_modules(void)
{
    seed_dict(O_MODULES, seed_at(O_T_DICT), O_MODULES_KEYS, AT_DICT_KEYS_GENERAL, 5);
    seed_dict_entry(O_MODULES_KEYS, 1, 0, str_addr(S_SYS), seed_at(O_INTERP));
    seed_dict_entry(O_MODULES_KEYS, 1, 1, 0, 0); /* a deleted entry */
    seed_dict_entry(O_MODULES_KEYS, 1, 2, str_addr(S_ASYNCIO), seed_at(O_INTERP));
    seed_dict_entry(O_MODULES_KEYS, 1, 3, str_addr(S_ASYNCIO_TASKS), seed_at(O_TASKS_MOD));
    seed_dict_entry(O_MODULES_KEYS, 1, 4, str_addr(S_C_ASYNCIO), seed_at(O_C_MOD));
    make_module(O_TASKS_MOD, O_TASKS_MD, O_TASKS_MD_KEYS, 4);
    seed_dict_entry(O_TASKS_MD_KEYS, 0, 0, str_addr(S_DUNDER_NAME), str_addr(S_ASYNCIO_TASKS));
    seed_dict_entry(O_TASKS_MD_KEYS, 0, 1, str_addr(S_ALL_TASKS), seed_at(O_WEAKSET));
    seed_dict_entry(O_TASKS_MD_KEYS, 0, 2, str_addr(S_EAGER), seed_at(O_EAGER));
    seed_dict_entry(O_TASKS_MD_KEYS, 0, 3, str_addr(S_CURRENT), seed_at(O_CURRENT));
    make_module(O_C_MOD, O_C_MD, O_C_MD_KEYS, 3);
    seed_dict_entry(O_C_MD_KEYS, 0, 0, str_addr(S_DUNDER_NAME), str_addr(S_C_ASYNCIO));
    seed_dict_entry(O_C_MD_KEYS, 0, 1, str_addr(S_TASK), seed_at(O_T_TASK));
    seed_dict_entry(O_C_MD_KEYS, 0, 2, str_addr(S_CURRENT), seed_at(O_CURRENT));
    seed_dict(O_CURRENT, seed_at(O_T_DICT), O_CURRENT_KEYS, AT_DICT_KEYS_GENERAL, 2);
    seed_dict_entry(O_CURRENT_KEYS, 1, 0, seed_at(loop_at(0)), seed_at(task_at(T_MAIN)));
    seed_dict_entry(O_CURRENT_KEYS, 1, 1, seed_at(loop_at(1)), seed_at(task_at(T_PY)));
}

static void base_image(void)
{
    memset(img, 0, sizeof img);
    seed_use(img, IMAGE_SIZE);
    make_strings();
    make_types();
    make_tasks();
    make_sets();
    make_modules();
    seed_put64(O_INTERP + AT_INTERP_RUNTIME, seed_at(O_RT));
    seed_put64(O_INTERP + AT_INTERP_MODULES, seed_at(O_MODULES));
    seed_put64(O_RT + AT_RT_INTERPRETERS_HEAD, seed_at(O_INTERP));
    seed_put64(O_RT + AT_RT_INTERPRETERS_MAIN, seed_at(O_INTERP));
}

/* worker-1's generator awaits a chain of DEEP coroutines (past
 * AT_ASYNC_MAX_DEPTH), the last one awaiting the first. */
static void make_deep_chain(void)
{
    seed_use(img, BIG_IMAGE_SIZE);
    for (unsigned i = 0; i < DEEP; i++) {
        unsigned o = O_DEEP + i * DEEP_SLOT;
        make_coro(o, WALK_CORO_TYPE, K_FETCH, AT_FRAME_SUSPENDED, 8,
                  seed_at(i + 1 < DEEP ? o + DEEP_SLOT : O_DEEP));
    }
    seed_put64(coro_at(C_GEN) + AT_GEN_IFRAME + AT_IFRAME_LOCALSPLUS, seed_at(O_DEEP));
}

/* SLOW_TASKS tasks, each created where a list of 32 FrameSummary says,
 * whose type's dict has SLOW_KEYS entries and none of them "filename":
 * a reader that looks the slots up again for each summary of a type it
 * could not use makes 38 million reads. */
static void make_summaries(void)
{
    seed_use(img, SLOW_IMAGE_SIZE);
    seed_put64(O_DATASET + AT_SET_USED, SLOW_TASKS);
    seed_put64(O_DATASET + AT_SET_MASK, 255);
    seed_put64(O_DATASET + AT_SET_TABLE, seed_at(O_SLOW_TABLE));
    seed_put64(O_SLOW_TB + AT_OBJECT_TYPE, WALK_LIST_TYPE);
    seed_put64(O_SLOW_TB + AT_VAR_SIZE, 32);
    seed_put64(O_SLOW_TB + AT_LIST_ITEMS, seed_at(O_SLOW_TB + 0x20));
    for (unsigned i = 0; i < 32; i++)
        seed_put64(O_SLOW_TB + 0x20 + i * 8, seed_at(O_FS));
    for (unsigned i = 0; i < SLOW_TASKS; i++) {
        unsigned wr = O_SLOW_REFS + i * 0x20, t = O_SLOW_TASKS + i * 0xc0;
        seed_put64(O_SLOW_TABLE + i * 16, seed_at(wr));
        seed_put64(O_SLOW_TABLE + i * 16 + 8, 0x7a5c0000u + i);
        seed_put64(wr + AT_WEAKREF_OBJECT, seed_at(t));
        seed_put64(t + AT_OBJECT_TYPE, seed_at(O_T_TASK));
        seed_put64(t + AT_TASK_LOOP, seed_at(loop_at(0)));
        seed_put64(t + AT_TASK_NAME, str_addr(S_MAIN));
        seed_put64(t + AT_TASK_SOURCE_TB, seed_at(O_SLOW_TB));
    }
    seed_put64(O_FS_DICT + AT_DICT_KEYS, seed_at(O_SLOW_KEYS));
    img[O_SLOW_KEYS + AT_DICTKEYS_LOG2_INDEX_BYTES] = 3;
    img[O_SLOW_KEYS + AT_DICTKEYS_KIND] = 1;
    seed_put64(O_SLOW_KEYS + AT_DICTKEYS_NENTRIES, SLOW_KEYS);
    for (int i = 0; i < SLOW_KEYS; i++)
        seed_dict_entry(O_SLOW_KEYS, 0, i, str_addr(S_DATA), 0);
}

/* Header, patch, image. */
int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "tests/fuzz/corpus/asyncio";
    const unsigned wait_top = coro_at(C_WAIT) + AT_GEN_IFRAME + AT_IFRAME_LOCALSPLUS;
    uint64_t v;
    int bad = 0;

    base_image();
    bad |= seed_write(dir, "three_tasks", WALK_TYPES_EXPORTED, 0, 0, NULL, 0);
    bad |= seed_write(dir, "untyped", 0, 0, 0, NULL, 0);
    bad |= seed_write(dir, "exits_mid_read", WALK_TYPES_EXPORTED, 120, 0, NULL, 0);
    v = seed_at(task_at(T_WORKER)); /* the second reads: loop 0 runs worker-1 now */
    bad |= seed_write(dir, "current_moves", WALK_TYPES_EXPORTED, 0, O_CURRENT_KEYS + AT_DICTKEYS_INDICES + 8 + 16,
                      &v, 8);
    v = AT_FRAME_COMPLETED; /* the second reads: main's coroutine has returned */
    bad |= seed_write(dir, "coro_done_later", WALK_TYPES_EXPORTED, 0, coro_at(C_MAIN) + AT_GEN_FRAME_STATE, &v, 1);

    base_image(); /* the innermost coroutine awaits the outermost: a cycle */
    seed_put64(wait_top, seed_at(coro_at(C_WORKER)));
    bad |= seed_write(dir, "await_cycle", WALK_TYPES_EXPORTED, 0, 0, NULL, 0);

    base_image(); /* worker-1 waits for itself, its coroutine awaits itself */
    seed_put64(task_at(T_WORKER) + AT_TASK_FUT_WAITER, seed_at(task_at(T_WORKER)));
    seed_put64(coro_at(C_WORKER) + AT_GEN_IFRAME + AT_IFRAME_LOCALSPLUS, seed_at(coro_at(C_WORKER)));
    bad |= seed_write(dir, "awaits_itself", WALK_TYPES_EXPORTED, 0, 0, NULL, 0);

    base_image(); /* 3.13's deferred name (an int), a name with a newline and a bidi override, a long one */
    seed_put64(task_at(T_WORKER) + AT_TASK_NAME, seed_at(int_at(2)));
    seed_put64(task_at(T_MAIN) + AT_TASK_NAME, str_addr(S_EVIL));
    seed_put64(task_at(T_FETCH) + AT_TASK_NAME, seed_at(O_LONG_NAME));
    bad |= seed_write(dir, "odd_names", WALK_TYPES_EXPORTED, 0, 0, NULL, 0);

    base_image(); /* a name of 60 CJK characters: its repr is 182 bytes, cut for the label */
    uint16_t cjk[60];
    for (int i = 0; i < 60; i++)
        cjk[i] = 0x6f22;
    memset(img + O_LONG_NAME, 0, IMAGE_SIZE - O_LONG_NAME);
    seed_str_ucs2(O_LONG_NAME, cjk, 60);
    seed_put64(task_at(T_MAIN) + AT_TASK_NAME, seed_at(O_LONG_NAME));
    bad |= seed_write(dir, "wide_name", WALK_TYPES_EXPORTED, 0, 0, NULL, 0);

    base_image(); /* the WeakSet's table claims 2^40 slots: only the eager set is read */
    seed_put64(O_DATASET + AT_SET_MASK, (1ull << 40) - 1);
    bad |= seed_write(dir, "huge_mask", WALK_TYPES_EXPORTED, 0, 0, NULL, 0);
    seed_put64(O_DATASET + AT_SET_MASK, INT64_MAX); /* mask + 1 would overflow */
    bad |= seed_write(dir, "mask_int64_max", WALK_TYPES_EXPORTED, 0, 0, NULL, 0);

    base_image(); /* fetch's type derives from a type that derives from it */
    seed_put64(O_T_SUBTASK + AT_TYPE_BASE, seed_at(O_T_SUBTASK2));
    seed_put64(O_T_SUBTASK2 + AT_TYPE_BASE, seed_at(O_T_SUBTASK));
    seed_put64(O_CURRENT_KEYS + AT_DICTKEYS_INDICES + 8 + 24 + 16, seed_at(task_at(T_FETCH)));
    bad |= seed_write(dir, "base_cycle", WALK_TYPES_EXPORTED, 0, 0, NULL, 0);

    base_image(); /* 3.12's name of the WeakSet; worker-1 done, fetch cancelled */
    seed_put64(O_TASKS_MD_KEYS + AT_DICTKEYS_INDICES + 8 + 16, str_addr(S_SCHEDULED));
    seed_put32(task_at(T_WORKER) + AT_TASK_STATE, AT_FUT_STATE_FINISHED);
    seed_put32(task_at(T_FETCH) + AT_TASK_STATE, AT_FUT_STATE_CANCELLED);
    bad |= seed_write(dir, "scheduled_312", WALK_TYPES_EXPORTED, 0, 0, NULL, 0);

    base_image(); /* FrameSummary's dict has no "lineno": no creation site can be read */
    seed_put64(O_FS_DICT_KEYS + AT_DICTKEYS_INDICES + 8 + 2 * 16, str_addr(S_DATA));
    bad |= seed_write(dir, "no_lineno_slot", WALK_TYPES_EXPORTED, 0, 0, NULL, 0);

    base_image(); /* an await chain longer than AT_ASYNC_MAX_DEPTH */
    make_deep_chain();
    bad |= seed_write(dir, "deep_chain", WALK_TYPES_EXPORTED, 0, 0, NULL, 0);

    if (argc > 2) { /* the slow regression input, kept out of the corpus */
        base_image();
        make_summaries();
        bad |= seed_write(argv[2], "summaries", WALK_TYPES_EXPORTED, 0, 0, NULL, 0);
    }
    return bad;
}
