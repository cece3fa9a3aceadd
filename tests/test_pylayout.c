/* SPDX-License-Identifier: MIT */
/* test_pylayout.c - the per-version tables of common/pylayout.c: lookup,
 * what each version lacks, and _Py_DebugOffsets applied over the 3.13
 * table (built here from py313.h, and read from a live 3.13).
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixtures/testutil.h"
#include "layout_probe.h"
#include "py311.h"
#include "py312.h"
#include "py313.h"
#include "pylayout.h"
#include "testlib.h"

#define NONE AT_PYLAYOUT_NONE

Test(pylayout, finds_each_supported_version)
{
    size_t n;
    const at_pylayout_t *all = at_pylayout_all(&n);
    cr_assert_eq(n, 3, "three tables (3.11, 3.12, 3.13), got %zu", n);
    for (size_t i = 0; i < n; i++) {
        const at_pylayout_t *l = at_pylayout_find(all[i].major, all[i].minor);
        cr_expect_eq(l, &all[i], "at_pylayout_find(%d, %d) is not the table of %s", all[i].major,
                     all[i].minor, all[i].name);
        char name[16];
        snprintf(name, sizeof name, "%d.%d", l->major, l->minor);
        cr_expect_str_eq(l->name, name, "table %zu is called %s", i, l->name);
    }
    cr_expect_eq(at_pylayout_find_hex(0x030b02f0)->minor, 11, "3.11.2 final");
    cr_expect_eq(at_pylayout_find_hex(0x030c01f0)->minor, 12, "3.12.1 final");
    cr_expect_eq(at_pylayout_find_hex(0x030d00f0)->minor, 13, "3.13.0 final");
    cr_expect_eq(at_pylayout_find_hex(0x030d00a1)->minor, 13, "3.13.0a1");
}

Test(pylayout, refuses_other_versions)
{
    static const int versions[][2] = { { 3, 10 }, { 3, 14 }, { 2, 7 }, { 4, 11 }, { 3, 0 } };
    for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++) {
        errno = 0;
        cr_expect_null(at_pylayout_find(versions[i][0], versions[i][1]), "a table for %d.%d",
                       versions[i][0], versions[i][1]);
        cr_expect_eq(errno, ENOENT, "errno for %d.%d", versions[i][0], versions[i][1]);
    }
    cr_expect_null(at_pylayout_find_hex(0x030a0df0), "a table for 3.10.13");
    cr_expect_null(at_pylayout_find_hex(0), "a table for version 0");
}

/* The facts that moved are where each header says, and a fact a version
 * lacks is NONE, not a 0 that would read the wrong word. */
Test(pylayout, moved_and_missing_fields)
{
    const at_pylayout_t *l11 = at_pylayout_find(3, 11), *l12 = at_pylayout_find(3, 12),
                        *l13 = at_pylayout_find(3, 13);
    /* the GIL: in _PyRuntime, then behind interp->ceval.gil */
    cr_expect_eq(l11->rt_gil, AT_RT_GIL);
    cr_expect_eq(l11->gil_cond, AT_RT_GIL_COND - AT_RT_GIL, "3.11's cond relative to the GIL");
    cr_expect_eq(l11->gil_cond, l12->gil_cond, "the GIL struct itself did not change in 3.12");
    cr_expect_eq(l11->interp_ceval_gil, NONE);
    cr_expect_eq(l12->rt_gil, NONE);
    cr_expect_eq(l12->interp_ceval_gil, AT312_INTERP_CEVAL_GIL);
    cr_expect_eq(l13->interp_ceval_gil, AT313_INTERP_CEVAL_GIL);
    cr_expect_eq(l12->rt_gilstate_tstate_current, NONE, "3.12: the current tstate is thread-local");
    /* the frame of a thread: through _PyCFrame, then directly */
    cr_expect_eq(l11->cframe_current_frame, AT_CFRAME_CURRENT_FRAME);
    cr_expect_eq(l12->cframe_current_frame, AT312_CFRAME_CURRENT_FRAME);
    cr_expect_eq(l13->tstate_cframe, NONE);
    cr_expect_eq(l13->cframe_current_frame, NONE);
    cr_expect_eq(l13->tstate_current_frame, AT313_TSTATE_CURRENT_FRAME);
    cr_expect_eq(l12->tstate_current_frame, NONE);
    cr_expect_eq(l13->tstate_status_holds_gil, AT313_TSTATE_STATUS_HOLDS_GIL, "3.13's per-thread GIL bit");
    cr_expect_eq(l12->tstate_status, NONE);
    /* frames: f_code/f_executable, prev_instr/instr_ptr, is_entry/CSTACK */
    cr_expect_eq(l11->iframe_code, AT_IFRAME_CODE);
    cr_expect_eq(l12->iframe_code, AT312_IFRAME_CODE);
    cr_expect_eq(l13->iframe_code, AT313_IFRAME_EXECUTABLE);
    cr_expect_eq(l12->iframe_instr, AT312_IFRAME_PREV_INSTR);
    cr_expect_eq(l13->iframe_instr, AT313_IFRAME_INSTR_PTR);
    cr_expect_eq(l11->iframe_is_entry, AT_IFRAME_IS_ENTRY);
    cr_expect_eq(l12->iframe_is_entry, NONE);
    cr_expect_eq(l11->frame_owned_by_cstack, NONE);
    cr_expect_eq(l13->frame_owned_by_cstack, AT313_FRAME_OWNED_BY_CSTACK);
    /* ints, str, instance dicts */
    cr_expect_eq(l11->long_lv_tag, NONE);
    cr_expect_eq(l13->long_lv_tag, AT313_LONG_LV_TAG);
    cr_expect_eq(l11->sizeof_pyasciiobject, AT_SIZEOF_PYASCIIOBJECT);
    cr_expect_eq(l12->sizeof_pyasciiobject, AT312_SIZEOF_PYASCIIOBJECT);
    cr_expect_eq(l11->dict_mode, AT_PYDICT_PRE_VALUES_DICT);
    cr_expect_eq(l12->dict_mode, AT_PYDICT_TAGGED);
    cr_expect_eq(l13->dict_mode, AT_PYDICT_INLINE);
    cr_expect_eq(l12->object_managed_values, NONE);
    cr_expect_eq(l13->tpflags_inline_values, AT313_TPFLAGS_INLINE_VALUES);
    cr_expect_eq(l12->tpflags_inline_values, 0);
    cr_expect_eq(l13->rt_debug_offsets, AT313_RT_DEBUG_OFFSETS);
    cr_expect_eq(l12->rt_debug_offsets, NONE);
}

/* Fields that every version has are set (not left 0 by a missing
 * initializer): the walk's essentials are nonzero in every table. */
Test(pylayout, essentials_are_set_everywhere)
{
    size_t n;
    const at_pylayout_t *all = at_pylayout_all(&n);
    for (size_t i = 0; i < n; i++) {
        const at_pylayout_t *l = &all[i];
        int32_t must[] = { l->rt_interpreters_head, l->rt_main_interpreter, l->interp_tstate_head,
                           l->interp_runtime, l->interp_modules, l->tstate_next,
                           l->tstate_native_thread_id, l->iframe_previous, l->iframe_instr,
                           l->iframe_owner, l->code_filename, l->code_linetable,
                           l->code_code_adaptive, l->object_type, l->sizeof_pyasciiobject,
                           l->gil_cond, l->gil_mutex, l->gil_locked, l->gil_last_holder,
                           l->code_argcount, l->code_kwonlyargcount, l->code_flags,
                           l->code_localsplusnames, l->code_localspluskinds, l->co_varargs,
                           l->co_varkeywords, l->co_fast_local, l->co_fast_cell, l->co_fast_free,
                           l->tuple_items, l->list_items, l->float_fval, l->cell_ref, l->dict_used,
                           l->set_used, l->set_mask, l->set_table, l->sizeof_setentry };
        for (size_t j = 0; j < sizeof must / sizeof must[0]; j++)
            cr_expect_gt(must[j], 0, "%s: essential field %zu is %d", l->name, j, must[j]);
        cr_expect(l->rt_gil > 0 || l->interp_ceval_gil > 0, "%s: no way to the GIL", l->name);
        cr_expect(l->cframe_current_frame >= 0 || l->tstate_current_frame > 0,
                  "%s: no way from a thread to its frame", l->name);
    }
}

/* ---- _Py_DebugOffsets ---------------------------------------------------- */

static void put_u64(unsigned char *d, size_t pos, uint64_t v)
{
    memcpy(d + pos, &v, sizeof v);
}

/* The debug offsets a 3.13 built from py313.h's numbers would carry. */
static void synth_debug(unsigned char d[AT313_SIZEOF_DEBUG_OFFSETS])
{
    memset(d, 0, AT313_SIZEOF_DEBUG_OFFSETS);
    memcpy(d + AT313_DBG_COOKIE, AT313_DEBUG_COOKIE, 8);
    static const struct {
        size_t pos;
        uint64_t v;
    } vals[] = {
        { AT313_DBG_VERSION, 0x030d00f0 },
        { AT313_DBG_RUNTIME_SIZE, 283320 },
        { AT313_DBG_RUNTIME_INTERPRETERS_HEAD, AT313_RT_INTERPRETERS_HEAD },
        { AT313_DBG_INTERP_SIZE, 100000 },
        { AT313_DBG_INTERP_ID, AT313_INTERP_ID },
        { AT313_DBG_INTERP_NEXT, AT313_INTERP_NEXT },
        { AT313_DBG_INTERP_THREADS_HEAD, AT313_INTERP_TSTATE_HEAD },
        { AT313_DBG_INTERP_IMPORTS_MODULES, AT313_INTERP_MODULES },
        { AT313_DBG_INTERP_CEVAL_GIL, AT313_INTERP_CEVAL_GIL },
        { AT313_DBG_INTERP_GIL_RUNTIME_STATE, AT313_INTERP_GIL },
        { AT313_DBG_INTERP_GIL_LOCKED, AT313_INTERP_GIL + AT313_GIL_LOCKED },
        { AT313_DBG_INTERP_GIL_HOLDER, AT313_INTERP_GIL + AT313_GIL_LAST_HOLDER },
        { AT313_DBG_TSTATE_SIZE, 4096 },
        { AT313_DBG_TSTATE_PREV, AT313_TSTATE_PREV },
        { AT313_DBG_TSTATE_NEXT, AT313_TSTATE_NEXT },
        { AT313_DBG_TSTATE_INTERP, AT313_TSTATE_INTERP },
        { AT313_DBG_TSTATE_CURRENT_FRAME, AT313_TSTATE_CURRENT_FRAME },
        { AT313_DBG_TSTATE_THREAD_ID, AT313_TSTATE_THREAD_ID },
        { AT313_DBG_TSTATE_NATIVE_THREAD_ID, AT313_TSTATE_NATIVE_THREAD_ID },
        { AT313_DBG_TSTATE_STATUS, AT313_TSTATE_STATUS },
        { AT313_DBG_IFRAME_SIZE, 80 },
        { AT313_DBG_IFRAME_PREVIOUS, AT313_IFRAME_PREVIOUS },
        { AT313_DBG_IFRAME_EXECUTABLE, AT313_IFRAME_EXECUTABLE },
        { AT313_DBG_IFRAME_INSTR_PTR, AT313_IFRAME_INSTR_PTR },
        { AT313_DBG_IFRAME_LOCALSPLUS, AT313_IFRAME_LOCALSPLUS },
        { AT313_DBG_IFRAME_OWNER, AT313_IFRAME_OWNER },
        { AT313_DBG_CODE_SIZE, 208 },
        { AT313_DBG_CODE_FILENAME, AT313_CODE_FILENAME },
        { AT313_DBG_CODE_NAME, AT313_CODE_NAME },
        { AT313_DBG_CODE_QUALNAME, AT313_CODE_QUALNAME },
        { AT313_DBG_CODE_LINETABLE, AT313_CODE_LINETABLE },
        { AT313_DBG_CODE_FIRSTLINENO, AT313_CODE_FIRSTLINENO },
        { AT313_DBG_CODE_ARGCOUNT, AT313_CODE_ARGCOUNT },
        { AT313_DBG_CODE_LOCALSPLUSNAMES, AT313_CODE_LOCALSPLUSNAMES },
        { AT313_DBG_CODE_LOCALSPLUSKINDS, AT313_CODE_LOCALSPLUSKINDS },
        { AT313_DBG_CODE_CODE_ADAPTIVE, AT313_CODE_CODE_ADAPTIVE },
        { AT313_DBG_OBJECT_SIZE, 16 },
        { AT313_DBG_OBJECT_TYPE, AT313_OBJECT_TYPE },
        { AT313_DBG_TYPE_SIZE, 920 },
        { AT313_DBG_TYPE_NAME, AT313_TYPE_NAME },
        { AT313_DBG_TYPE_FLAGS, AT313_TYPE_FLAGS },
        { AT313_DBG_TUPLE_SIZE, 32 },
        { AT313_DBG_TUPLE_ITEMS, AT313_TUPLE_ITEMS },
        { AT313_DBG_LIST_SIZE, 40 },
        { AT313_DBG_LIST_ITEMS, AT313_LIST_ITEMS },
        { AT313_DBG_FLOAT_SIZE, 24 },
        { AT313_DBG_FLOAT_FVAL, AT313_FLOAT_FVAL },
        { AT313_DBG_DICT_SIZE, 48 },
        { AT313_DBG_DICT_KEYS, AT313_DICT_KEYS },
        { AT313_DBG_DICT_VALUES, AT313_DICT_VALUES },
        { AT313_DBG_LONG_SIZE, 32 },
        { AT313_DBG_LONG_LV_TAG, AT313_LONG_LV_TAG },
        { AT313_DBG_LONG_DIGITS, AT313_LONG_DIGITS },
        { AT313_DBG_BYTES_SIZE, 40 },
        { AT313_DBG_BYTES_SVAL, AT313_BYTES_SVAL },
        { AT313_DBG_UNICODE_SIZE, 64 },
        { AT313_DBG_UNICODE_STATE, AT313_UNICODE_STATE },
        { AT313_DBG_UNICODE_LENGTH, AT313_UNICODE_LENGTH },
        { AT313_DBG_UNICODE_ASCIIOBJECT_SIZE, AT313_SIZEOF_PYASCIIOBJECT },
    };
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++)
        put_u64(d, vals[i].pos, vals[i].v);
}

Test(pylayout, debug_offsets_matching_the_table_change_nothing)
{
    const at_pylayout_t *l13 = at_pylayout_find(3, 13);
    unsigned char d[AT313_SIZEOF_DEBUG_OFFSETS];
    synth_debug(d);
    at_pylayout_t out;
    memset(&out, 0xa5, sizeof out);
    int rc = at_pylayout_apply_debug(l13, d, sizeof d, &out);
    cr_assert_eq(rc, 0, "offsets equal to py313.h's: %d differ (or error)", rc);
    cr_expect_eq(memcmp(&out, l13, sizeof out), 0, "the table came back changed");
}

Test(pylayout, debug_offsets_override_the_table)
{
    const at_pylayout_t *l13 = at_pylayout_find(3, 13);
    unsigned char d[AT313_SIZEOF_DEBUG_OFFSETS];
    synth_debug(d);
    put_u64(d, AT313_DBG_TSTATE_CURRENT_FRAME, AT313_TSTATE_CURRENT_FRAME + 8);
    put_u64(d, AT313_DBG_INTERP_GIL_LOCKED, AT313_INTERP_GIL + AT313_GIL_LOCKED + 4);
    at_pylayout_t out;
    int rc = at_pylayout_apply_debug(l13, d, sizeof d, &out);
    cr_assert_eq(rc, 2, "two offsets moved, %d reported", rc);
    cr_expect_eq(out.tstate_current_frame, AT313_TSTATE_CURRENT_FRAME + 8);
    cr_expect_eq(out.gil_locked, AT313_GIL_LOCKED + 4, "GIL fields are relative to the GIL");
    cr_expect_eq(out.tstate_next, l13->tstate_next, "the others stay");
}

Test(pylayout, debug_offsets_are_validated)
{
    const at_pylayout_t *l13 = at_pylayout_find(3, 13), *l12 = at_pylayout_find(3, 12);
    unsigned char d[AT313_SIZEOF_DEBUG_OFFSETS];
    at_pylayout_t out, before;
    memset(&out, 0x5a, sizeof out);
    before = out;

    synth_debug(d);
    cr_expect_eq(at_pylayout_apply_debug(l12, d, sizeof d, &out), -EINVAL, "3.12 has none");
    cr_expect_eq(at_pylayout_apply_debug(l13, d, sizeof d - 1, &out), -EINVAL, "short copy");
    d[0] = 'X';
    cr_expect_eq(at_pylayout_apply_debug(l13, d, sizeof d, &out), -EPROTO, "bad cookie");
    synth_debug(d);
    put_u64(d, AT313_DBG_FREE_THREADED, 1);
    cr_expect_eq(at_pylayout_apply_debug(l13, d, sizeof d, &out), -EOPNOTSUPP, "free-threaded");
    synth_debug(d);
    put_u64(d, AT313_DBG_VERSION, 0x030e00f0);
    cr_expect_eq(at_pylayout_apply_debug(l13, d, sizeof d, &out), -EPROTO, "3.14 under 3.13's table");
    synth_debug(d);
    put_u64(d, AT313_DBG_TSTATE_NEXT, 4096 - 4); /* a pointer past the end of PyThreadState */
    cr_expect_eq(at_pylayout_apply_debug(l13, d, sizeof d, &out), -EPROTO, "offset past the struct");
    synth_debug(d);
    put_u64(d, AT313_DBG_CODE_NAME, UINT64_MAX - 2); /* wraps if added carelessly */
    cr_expect_eq(at_pylayout_apply_debug(l13, d, sizeof d, &out), -EPROTO, "huge offset");
    synth_debug(d);
    put_u64(d, AT313_DBG_INTERP_SIZE, UINT64_MAX);
    cr_expect_eq(at_pylayout_apply_debug(l13, d, sizeof d, &out), -EPROTO, "absurd struct size");
    synth_debug(d);
    put_u64(d, AT313_DBG_INTERP_GIL_HOLDER, AT313_INTERP_GIL - 8); /* before the GIL */
    cr_expect_eq(at_pylayout_apply_debug(l13, d, sizeof d, &out), -EPROTO, "GIL field outside it");
    cr_expect_eq(memcmp(&out, &before, sizeof out), 0, "*out written on an error");
}

/* A running 3.13's own debug offsets, copied out with ctypes, give the
 * table back unchanged. */
Test(pylayout, live_313_debug_offsets_match_the_table, .timeout = 30)
{
    const char *py = at_layout_find_python("3.13");
    if (!py)
        cr_skip_test("no default-build CPython 3.13 on this machine: live debug offsets not read");
    char *out = NULL;
    int rc = at_test_shf(&out, NULL,
                         "'%s' -c 'import ctypes\n"
                         "a = ctypes.addressof(ctypes.c_char.in_dll(ctypes.pythonapi, \"_PyRuntime\"))\n"
                         "print(ctypes.string_at(a, %d).hex())'",
                         py, AT313_SIZEOF_DEBUG_OFFSETS);
    cr_assert_eq(rc, 0, "%s could not read its own _PyRuntime (exit %d)", py, rc);
    unsigned char d[AT313_SIZEOF_DEBUG_OFFSETS];
    for (size_t i = 0; i < sizeof d; i++) {
        unsigned byte;
        cr_assert_eq(sscanf(out + 2 * i, "%2x", &byte), 1, "hex dump too short at byte %zu", i);
        d[i] = (unsigned char)byte;
    }
    free(out);
    at_pylayout_t l;
    rc = at_pylayout_apply_debug(at_pylayout_find(3, 13), d, sizeof d, &l);
    cr_expect_eq(rc, 0, "%s: %d offsets differ from py313.h's (or error)", py, rc);
}

/* ---- the tables against real interpreters ------------------------------ */

/* Every field of at_pylayout_t a fixture may use, by name. */
#define I32(f) { #f, offsetof(at_pylayout_t, f), 4 }
#define U64(f) { #f, offsetof(at_pylayout_t, f), 8 }
static const struct {
    const char *name;
    size_t off, size;
} fields[] = {
    I32(tstate_interp), I32(interp_runtime), I32(interp_modules), I32(tstate_current_frame),
    I32(tstate_cframe), I32(cframe_current_frame), I32(iframe_owner), I32(iframe_code),
    I32(frame_owned_by_cstack), I32(iframe_instr), I32(iframe_previous), I32(code_code_adaptive),
    I32(sizeof_codeunit), I32(code_qualname), I32(code_filename), I32(object_type), I32(var_size),
    I32(type_name), I32(type_flags), I32(unicode_state), I32(unicode_length),
    I32(unicode_compact_ascii), I32(sizeof_pyasciiobject), I32(long_lv_tag), I32(long_non_size_bits),
    I32(long_sign_mask), I32(long_digits), I32(long_shift), I32(module_dict), I32(dict_keys),
    I32(dict_values), I32(dictkeys_log2_index_bytes), I32(dictkeys_kind), I32(dictkeys_nentries),
    I32(dictkeys_indices), I32(dict_keys_general), I32(sizeof_dict_key_entry),
    I32(sizeof_dict_unicode_entry), I32(dictvalues_values), I32(dictvalues_valid),
    I32(object_managed_dict), I32(object_managed_values), I32(object_inline_values),
    I32(dorv_values_bit), I32(heaptype_cached_keys), I32(rt_gil), I32(rt_main_interpreter),
    I32(interp_gil), I32(interp_ceval_gil), I32(gil_cond), I32(rt_interpreters_head),
    I32(rt_interpreters_main), I32(interp_next), I32(interp_id), I32(interp_tstate_head),
    I32(tstate_prev), I32(tstate_next), I32(tstate_thread_id), I32(tstate_native_thread_id),
    I32(rt_audit_hook_head), I32(audit_entry_next), I32(audit_entry_hook), U64(tpflags_managed_dict),
    U64(tpflags_inline_values),
};
#undef I32
#undef U64

/* Run fixtures/<fixture> under `py` with every field of `l` as NAME=VALUE
 * arguments (dict_mode too), `env` ("" or "NAME=VALUE ") before it.
 * Returns its exit status, its output (stdout and stderr) in *out. */
static int fixture_env_with(const char *env, const char *py, const char *fixture,
                            const at_pylayout_t *l, char **out)
{
    char path[512], args[4096];
    int n = snprintf(args, sizeof args, "dict_mode=%d", (int)l->dict_mode);
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        const char *p = (const char *)l + fields[i].off;
        long long v;
        if (fields[i].size == 4) {
            int32_t x;
            memcpy(&x, p, 4);
            v = x;
        } else {
            uint64_t x;
            memcpy(&x, p, 8);
            v = (long long)x;
        }
        n += snprintf(args + n, sizeof args - (size_t)n, " %s=%lld", fields[i].name, v);
        cr_assert_lt((size_t)n, sizeof args, "fixture arguments too long");
    }
    return at_test_shf(out, NULL, "%s'%s' '%s' %s 2>&1", env, py, tu_fixture(fixture, path, sizeof path),
                       args);
}

static int fixture_with(const char *py, const char *fixture, const at_pylayout_t *l, char **out)
{
    return fixture_env_with("", py, fixture, l, out);
}

static int walk_with(const char *py, const at_pylayout_t *l, char **out)
{
    return fixture_with(py, "layout_walk.py", l, out);
}

/* The table of 3.`minor` through fixture `what_fixture` under `py`. */
static void check_fixture(const char *py, const char *what, int minor, const char *fixture)
{
    if (!py)
        cr_skip_test("no %s on this machine: %s not run with its table", what, fixture);
    char *out = NULL;
    int rc = fixture_with(py, fixture, at_pylayout_find(3, minor), &out);
    if (out)
        out[strcspn(out, "\n")] = '\0';
    cr_expect_eq(rc, 0, "%s (%s): %s with the 3.%d table: %s", what, py, fixture, minor,
                 out ? out : "");
    if (rc == 0)
        at_test_note("%s (%s): %s with the 3.%d table: %s", what, py, fixture, minor, out);
    free(out);
}

static void check_walk(const char *py, const char *what, int minor)
{
    check_fixture(py, what, minor, "layout_walk.py");
}

static void check_names(const char *py, const char *what, int minor)
{
    check_fixture(py, what, minor, "layout_names.py");
}

static void check_runtime(const char *py, const char *what, int minor)
{
    check_fixture(py, what, minor, "layout_runtime.py");
}

/* check(py, what, minor) on the interpreter of one AT_TEST_SHAPES shape. */
static void on_shape(const char *shape, void (*check)(const char *, const char *, int))
{
    int minor = !strcmp(shape, "3.12") ? 12 : !strcmp(shape, "3.13") ? 13 : 11;
    char what[40];
    if (minor == 11)
        snprintf(what, sizeof what, "%s-libpython 3.11", shape);
    else
        snprintf(what, sizeof what, "CPython %s", shape);
    check(at_test_python(shape), what, minor);
}

AT_TEST_EACH_SHAPE(pylayout, walks_frames, .timeout = 30) { on_shape(shape, check_walk); }

/* Thread names the way tracer/remote/py_names.c finds them: sys.modules,
 * threading._active, int keys, managed dicts and values. */
AT_TEST_EACH_SHAPE(pylayout, reads_thread_names, .timeout = 30) { on_shape(shape, check_names); }

/* _PyRuntime, the interpreter, its threads and the audit hook list. */
AT_TEST_EACH_SHAPE(pylayout, finds_runtime_threads_and_hooks, .timeout = 30) { on_shape(shape, check_runtime); }

/* The GIL: fixtures/cond_spy.c (preloaded) counts the condition variables
 * two CPU-bound threads wait on; the one they wait on most must be the
 * cond the table places (and, 3.12+, where interp->ceval.gil points). */
static void check_gil(const char *py, const char *what, int minor)
{
    if (!py)
        cr_skip_test("no %s on this machine: its GIL not located", what);
    char *dir = at_test_tmpdir(), src[512], so[600], *out = NULL;
    cr_assert(dir, "cannot create a temporary directory");
    snprintf(so, sizeof so, "%s/cond_spy.so", dir);
    int rc = at_test_shf(&out, NULL, "cc -shared -fPIC -O2 -o '%s' '%s' -ldl 2>&1", so,
                         tu_fixture("cond_spy.c", src, sizeof src));
    cr_assert_eq(rc, 0, "cannot build cond_spy.so: %s", out ? out : "");
    free(out);
    char env[700];
    snprintf(env, sizeof env, "LD_PRELOAD='%s' ", so);
    rc = fixture_env_with(env, py, "layout_gil.py", at_pylayout_find(3, minor), &out);
    at_test_shf(NULL, NULL, "rm -rf '%s'", dir);
    free(dir);
    cr_assert_eq(rc, 0, "%s (%s): layout_gil.py failed: %s", what, py, out ? out : "");
    unsigned long long expect = 0, best = 0, addr;
    long best_n = -1, n, expect_n = 0;
    char *save = NULL;
    for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (sscanf(line, "expect %llx", &expect) == 1)
            continue;
        if (sscanf(line, "cond %llx %ld", &addr, &n) == 2) {
            if (n > best_n)
                best = addr, best_n = n;
            if (addr == expect)
                expect_n = n;
        }
    }
    free(out);
    cr_assert_neq(expect, 0, "%s: layout_gil.py printed no expected address", what);
    cr_expect_gt(expect_n, 0, "%s: nobody waited on %#llx, the cond the 3.%d table places", what,
                 expect, minor);
    cr_expect_eq(best, expect, "%s: the most waited-on cond is %#llx (%ld waits), the table says %#llx",
                 what, best, best_n, expect);
    at_test_note("%s (%s): the GIL's cond at %#llx, as the 3.%d table says: %ld waits", what, py,
                 expect, minor, expect_n);
}

AT_TEST_EACH_SHAPE(pylayout, gil_is_where_the_table_says, .timeout = 60) { on_shape(shape, check_gil); }

/* The walk tells tables apart: 3.12's table on a 3.13 does not pass. */
Test(pylayout, another_versions_table_does_not_walk, .timeout = 30)
{
    const char *py = at_layout_find_python("3.13");
    if (!py)
        cr_skip_test("no CPython 3.13 on this machine");
    char *out = NULL;
    int rc = walk_with(py, at_pylayout_find(3, 12), &out);
    cr_expect_neq(rc, 0, "3.12's table walked a 3.13: %s", out ? out : "");
    free(out);
}
