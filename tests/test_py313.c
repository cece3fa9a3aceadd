/* SPDX-License-Identifier: MIT */
/* test_py313.c - every number in common/py313.h re-derived from the real
 * CPython 3.13 headers (see test_py311.c and layout_probe.h for how), and
 * the _Py_DebugOffsets a live 3.13 keeps at the start of _PyRuntime read
 * and compared with the same table.
 *
 * The interpreter is a default (GIL) build of 3.13 found on PATH or in
 * pyenv's versions; without one the tests that need it are skipped,
 * saying so.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layout_probe.h"
#include "py313.h"
#include "testlib.h"

#define ROW AT_LAYOUT_ROW

static const at_layout_row_t layout[] = {
    /* _PyRuntimeState (pycore_runtime.h) */
    ROW(AT313_RT_DEBUG_OFFSETS, "offsetof(_PyRuntimeState, debug_offsets)"),
    ROW(AT313_RT_INTERPRETERS_HEAD, "offsetof(_PyRuntimeState, interpreters.head)"),
    ROW(AT313_RT_INTERPRETERS_MAIN, "offsetof(_PyRuntimeState, interpreters.main)"),
    ROW(AT313_RT_AUDIT_HOOK_HEAD, "offsetof(_PyRuntimeState, audit_hooks.head)"),
    ROW(AT313_RT_MAIN_INTERPRETER, "offsetof(_PyRuntimeState, _main_interpreter)"),
    ROW(AT313_RT_TRACEMALLOC_TRACING, "offsetof(_PyRuntimeState, tracemalloc.config.tracing)"),
    ROW(AT313_AUDIT_ENTRY_NEXT, "offsetof(_Py_AuditHookEntry, next)"),
    ROW(AT313_AUDIT_ENTRY_HOOK, "offsetof(_Py_AuditHookEntry, hookCFunction)"),
    /* PyInterpreterState (pycore_interp.h) */
    ROW(AT313_INTERP_NEXT, "offsetof(PyInterpreterState, next)"),
    ROW(AT313_INTERP_ID, "offsetof(PyInterpreterState, id)"),
    ROW(AT313_INTERP_TSTATE_HEAD, "offsetof(PyInterpreterState, threads.head)"),
    ROW(AT313_INTERP_RUNTIME, "offsetof(PyInterpreterState, runtime)"),
    ROW(AT313_INTERP_GC_GENERATION_STATS, "offsetof(PyInterpreterState, gc.generation_stats)"),
    ROW(AT313_SIZEOF_GC_GENERATION_STATS, "sizeof(struct gc_generation_stats)"),
    ROW(AT313_INTERP_CEVAL_GIL, "offsetof(PyInterpreterState, ceval.gil)"),
    ROW(AT313_INTERP_CEVAL_OWN_GIL, "offsetof(PyInterpreterState, ceval.own_gil)"),
    ROW(AT313_INTERP_MODULES, "offsetof(PyInterpreterState, imports.modules)"),
    ROW(AT313_INTERP_GIL, "offsetof(PyInterpreterState, _gil)"),
    ROW(AT313_INTERP_AUDIT_HOOKS, "offsetof(PyInterpreterState, audit_hooks)"),
    /* struct _gil_runtime_state (pycore_gil.h) */
    ROW(AT313_GIL_INTERVAL, "offsetof(struct _gil_runtime_state, interval)"),
    ROW(AT313_GIL_LAST_HOLDER, "offsetof(struct _gil_runtime_state, last_holder)"),
    ROW(AT313_GIL_LOCKED, "offsetof(struct _gil_runtime_state, locked)"),
    ROW(AT313_GIL_SWITCH_NUMBER, "offsetof(struct _gil_runtime_state, switch_number)"),
    ROW(AT313_GIL_COND, "offsetof(struct _gil_runtime_state, cond)"),
    ROW(AT313_GIL_MUTEX, "offsetof(struct _gil_runtime_state, mutex)"),
    ROW(AT313_GIL_SWITCH_COND, "offsetof(struct _gil_runtime_state, switch_cond)"),
    ROW(AT313_GIL_SWITCH_MUTEX, "offsetof(struct _gil_runtime_state, switch_mutex)"),
    /* PyThreadState, _PyCFrame (cpython/pystate.h) */
    ROW(AT313_TSTATE_PREV, "offsetof(PyThreadState, prev)"),
    ROW(AT313_TSTATE_NEXT, "offsetof(PyThreadState, next)"),
    ROW(AT313_TSTATE_INTERP, "offsetof(PyThreadState, interp)"),
    ROW(AT313_TSTATE_STATUS, "offsetof(PyThreadState, _status)"),
    ROW(AT313_TSTATE_STATUS_HOLDS_GIL,
        "*(unsigned *)&((PyThreadState){._status = {.holds_gil = 1}})._status"),
    ROW(AT313_TSTATE_TRACING, "offsetof(PyThreadState, tracing)"),
    ROW(AT313_TSTATE_CURRENT_FRAME, "offsetof(PyThreadState, current_frame)"),
    ROW(AT313_TSTATE_C_PROFILEFUNC, "offsetof(PyThreadState, c_profilefunc)"),
    ROW(AT313_TSTATE_C_TRACEFUNC, "offsetof(PyThreadState, c_tracefunc)"),
    ROW(AT313_TSTATE_C_PROFILEOBJ, "offsetof(PyThreadState, c_profileobj)"),
    ROW(AT313_TSTATE_THREAD_ID, "offsetof(PyThreadState, thread_id)"),
    ROW(AT313_TSTATE_NATIVE_THREAD_ID, "offsetof(PyThreadState, native_thread_id)"),
    ROW(AT313_TSTATE_ID, "offsetof(PyThreadState, id)"),
    /* _PyInterpreterFrame (pycore_frame.h) */
    ROW(AT313_IFRAME_EXECUTABLE, "offsetof(_PyInterpreterFrame, f_executable)"),
    ROW(AT313_IFRAME_PREVIOUS, "offsetof(_PyInterpreterFrame, previous)"),
    ROW(AT313_IFRAME_GLOBALS, "offsetof(_PyInterpreterFrame, f_globals)"),
    ROW(AT313_IFRAME_INSTR_PTR, "offsetof(_PyInterpreterFrame, instr_ptr)"),
    ROW(AT313_IFRAME_STACKTOP, "offsetof(_PyInterpreterFrame, stacktop)"),
    ROW(AT313_IFRAME_OWNER, "offsetof(_PyInterpreterFrame, owner)"),
    ROW(AT313_IFRAME_LOCALSPLUS, "offsetof(_PyInterpreterFrame, localsplus)"),
    ROW(AT313_FRAME_OWNED_BY_GENERATOR, "FRAME_OWNED_BY_GENERATOR"),
    ROW(AT313_FRAME_OWNED_BY_CSTACK, "FRAME_OWNED_BY_CSTACK"),
    ROW(AT313_FRAMEOBJ_F_FRAME, "offsetof(PyFrameObject, f_frame)"),
    ROW(AT313_CFUNC_M_ML, "offsetof(PyCFunctionObject, m_ml)"),
    ROW(AT313_CFUNC_M_SELF, "offsetof(PyCFunctionObject, m_self)"),
    /* PyCodeObject (cpython/code.h) */
    ROW(AT313_CODE_FIRSTLINENO, "offsetof(PyCodeObject, co_firstlineno)"),
    ROW(AT313_CODE_NLOCALSPLUS, "offsetof(PyCodeObject, co_nlocalsplus)"),
    ROW(AT313_CODE_FILENAME, "offsetof(PyCodeObject, co_filename)"),
    ROW(AT313_CODE_NAME, "offsetof(PyCodeObject, co_name)"),
    ROW(AT313_CODE_QUALNAME, "offsetof(PyCodeObject, co_qualname)"),
    ROW(AT313_CODE_LINETABLE, "offsetof(PyCodeObject, co_linetable)"),
    ROW(AT313_CODE_FIRSTTRACEABLE, "offsetof(PyCodeObject, _co_firsttraceable)"),
    ROW(AT313_CODE_CODE_ADAPTIVE, "offsetof(PyCodeObject, co_code_adaptive)"),
    ROW(AT313_SIZEOF_CODEUNIT, "sizeof(_Py_CODEUNIT)"),
    /* objects the walkers decode */
    ROW(AT313_OBJECT_TYPE, "offsetof(PyObject, ob_type)"),
    ROW(AT313_VAR_SIZE, "offsetof(PyVarObject, ob_size)"),
    ROW(AT313_TYPE_NAME, "offsetof(PyTypeObject, tp_name)"),
    ROW(AT313_BYTES_SVAL, "offsetof(PyBytesObject, ob_sval)"),
    ROW(AT313_UNICODE_LENGTH, "offsetof(PyASCIIObject, length)"),
    ROW(AT313_UNICODE_STATE, "offsetof(PyASCIIObject, state)"),
    ROW(AT313_UNICODE_COMPACT_ASCII,
        "*(unsigned *)&((PyASCIIObject){.state = {.compact = 1, .ascii = 1}}).state"),
    ROW(AT313_SIZEOF_PYASCIIOBJECT, "sizeof(PyASCIIObject)"),
    ROW(AT313_SIZEOF_PYCOMPACTUNICODEOBJECT, "sizeof(PyCompactUnicodeObject)"),
    ROW(AT313_UNICODE_UTF8, "offsetof(PyCompactUnicodeObject, utf8)"),
    ROW(AT313_TYPE_FLAGS, "offsetof(PyTypeObject, tp_flags)"),
    ROW(AT313_TPFLAGS_INLINE_VALUES, "Py_TPFLAGS_INLINE_VALUES"),
    ROW(AT313_TPFLAGS_MANAGED_DICT, "Py_TPFLAGS_MANAGED_DICT"),
    ROW(AT313_TPFLAGS_TYPE_SUBCLASS, "Py_TPFLAGS_TYPE_SUBCLASS"),
    ROW(AT313_HEAPTYPE_CACHED_KEYS, "offsetof(PyHeapTypeObject, ht_cached_keys)"),
    ROW(AT313_MODULE_DICT, "offsetof(PyModuleObject, md_dict)"),
    ROW(AT313_LONG_LV_TAG, "offsetof(PyLongObject, long_value.lv_tag)"),
    ROW(AT313_LONG_DIGITS, "offsetof(PyLongObject, long_value.ob_digit)"),
    ROW(AT313_LONG_SHIFT, "PyLong_SHIFT"),
    ROW(AT313_LONG_NON_SIZE_BITS, "_PyLong_NON_SIZE_BITS"),
    ROW(AT313_LONG_SIGN_MASK, "_PyLong_SIGN_MASK"),
    /* what `dump --locals` reads (cpython/code.h, tupleobject.h, listobject.h,
     * floatobject.h, cellobject.h, setobject.h, pycore_code.h) */
    ROW(AT313_CODE_ARGCOUNT, "offsetof(PyCodeObject, co_argcount)"),
    ROW(AT313_CODE_KWONLYARGCOUNT, "offsetof(PyCodeObject, co_kwonlyargcount)"),
    ROW(AT313_CODE_FLAGS, "offsetof(PyCodeObject, co_flags)"),
    ROW(AT313_CODE_LOCALSPLUSNAMES, "offsetof(PyCodeObject, co_localsplusnames)"),
    ROW(AT313_CODE_LOCALSPLUSKINDS, "offsetof(PyCodeObject, co_localspluskinds)"),
    ROW(AT313_CO_VARARGS, "CO_VARARGS"),
    ROW(AT313_CO_VARKEYWORDS, "CO_VARKEYWORDS"),
    ROW(AT313_CO_FAST_LOCAL, "CO_FAST_LOCAL"),
    ROW(AT313_CO_FAST_CELL, "CO_FAST_CELL"),
    ROW(AT313_CO_FAST_FREE, "CO_FAST_FREE"),
    ROW(AT313_CO_FAST_HIDDEN, "CO_FAST_HIDDEN"),
    ROW(AT313_TUPLE_ITEMS, "offsetof(PyTupleObject, ob_item)"),
    ROW(AT313_LIST_ITEMS, "offsetof(PyListObject, ob_item)"),
    ROW(AT313_FLOAT_FVAL, "offsetof(PyFloatObject, ob_fval)"),
    ROW(AT313_CELL_REF, "offsetof(PyCellObject, ob_ref)"),
    ROW(AT313_SET_USED, "offsetof(PySetObject, used)"),
    ROW(AT313_SET_MASK, "offsetof(PySetObject, mask)"),
    ROW(AT313_SET_TABLE, "offsetof(PySetObject, table)"),
    ROW(AT313_SIZEOF_SETENTRY, "sizeof(setentry)"),
    ROW(AT313_DICT_USED, "offsetof(PyDictObject, ma_used)"),
    /* dict (pycore_dict.h, pycore_object.h) */
    ROW(AT313_DICT_KEYS, "offsetof(PyDictObject, ma_keys)"),
    ROW(AT313_DICT_VALUES, "offsetof(PyDictObject, ma_values)"),
    ROW(AT313_DICTKEYS_LOG2_INDEX_BYTES, "offsetof(PyDictKeysObject, dk_log2_index_bytes)"),
    ROW(AT313_DICTKEYS_KIND, "offsetof(PyDictKeysObject, dk_kind)"),
    ROW(AT313_DICTKEYS_NENTRIES, "offsetof(PyDictKeysObject, dk_nentries)"),
    ROW(AT313_DICTKEYS_INDICES, "offsetof(PyDictKeysObject, dk_indices)"),
    ROW(AT313_DICT_KEYS_GENERAL, "DICT_KEYS_GENERAL"),
    ROW(AT313_SIZEOF_DICT_KEY_ENTRY, "sizeof(PyDictKeyEntry)"),
    ROW(AT313_SIZEOF_DICT_UNICODE_ENTRY, "sizeof(PyDictUnicodeEntry)"),
    ROW(AT313_DICTVALUES_VALID, "offsetof(PyDictValues, valid)"),
    ROW(AT313_DICTVALUES_VALUES, "offsetof(PyDictValues, values)"),
    ROW(AT313_OBJECT_MANAGED_DICT, "MANAGED_DICT_OFFSET"),
    /* _PyObject_InlineValues: (char *)obj + sizeof(PyObject) */
    ROW(AT313_OBJECT_INLINE_VALUES, "sizeof(PyObject)"),
    /* _Py_DebugOffsets (pycore_runtime.h): where each offset is stored */
#define DBG(macro, field) { #macro, (long)(macro), "offsetof(_Py_DebugOffsets, " field ")" }
    DBG(AT313_DBG_COOKIE, "cookie"),
    DBG(AT313_DBG_VERSION, "version"),
    DBG(AT313_DBG_FREE_THREADED, "free_threaded"),
    DBG(AT313_DBG_RUNTIME_SIZE, "runtime_state.size"),
    DBG(AT313_DBG_RUNTIME_INTERPRETERS_HEAD, "runtime_state.interpreters_head"),
    DBG(AT313_DBG_INTERP_SIZE, "interpreter_state.size"),
    DBG(AT313_DBG_INTERP_ID, "interpreter_state.id"),
    DBG(AT313_DBG_INTERP_NEXT, "interpreter_state.next"),
    DBG(AT313_DBG_INTERP_THREADS_HEAD, "interpreter_state.threads_head"),
    DBG(AT313_DBG_INTERP_GC, "interpreter_state.gc"),
    DBG(AT313_DBG_INTERP_IMPORTS_MODULES, "interpreter_state.imports_modules"),
    DBG(AT313_DBG_INTERP_CEVAL_GIL, "interpreter_state.ceval_gil"),
    DBG(AT313_DBG_INTERP_GIL_RUNTIME_STATE, "interpreter_state.gil_runtime_state"),
    DBG(AT313_DBG_INTERP_GIL_ENABLED, "interpreter_state.gil_runtime_state_enabled"),
    DBG(AT313_DBG_INTERP_GIL_LOCKED, "interpreter_state.gil_runtime_state_locked"),
    DBG(AT313_DBG_INTERP_GIL_HOLDER, "interpreter_state.gil_runtime_state_holder"),
    DBG(AT313_DBG_TSTATE_SIZE, "thread_state.size"),
    DBG(AT313_DBG_TSTATE_PREV, "thread_state.prev"),
    DBG(AT313_DBG_TSTATE_NEXT, "thread_state.next"),
    DBG(AT313_DBG_TSTATE_INTERP, "thread_state.interp"),
    DBG(AT313_DBG_TSTATE_CURRENT_FRAME, "thread_state.current_frame"),
    DBG(AT313_DBG_TSTATE_THREAD_ID, "thread_state.thread_id"),
    DBG(AT313_DBG_TSTATE_NATIVE_THREAD_ID, "thread_state.native_thread_id"),
    DBG(AT313_DBG_TSTATE_STATUS, "thread_state.status"),
    DBG(AT313_DBG_IFRAME_SIZE, "interpreter_frame.size"),
    DBG(AT313_DBG_IFRAME_PREVIOUS, "interpreter_frame.previous"),
    DBG(AT313_DBG_IFRAME_EXECUTABLE, "interpreter_frame.executable"),
    DBG(AT313_DBG_IFRAME_INSTR_PTR, "interpreter_frame.instr_ptr"),
    DBG(AT313_DBG_IFRAME_LOCALSPLUS, "interpreter_frame.localsplus"),
    DBG(AT313_DBG_IFRAME_OWNER, "interpreter_frame.owner"),
    DBG(AT313_DBG_CODE_SIZE, "code_object.size"),
    DBG(AT313_DBG_CODE_FILENAME, "code_object.filename"),
    DBG(AT313_DBG_CODE_NAME, "code_object.name"),
    DBG(AT313_DBG_CODE_QUALNAME, "code_object.qualname"),
    DBG(AT313_DBG_CODE_LINETABLE, "code_object.linetable"),
    DBG(AT313_DBG_CODE_FIRSTLINENO, "code_object.firstlineno"),
    DBG(AT313_DBG_CODE_ARGCOUNT, "code_object.argcount"),
    DBG(AT313_DBG_CODE_LOCALSPLUSNAMES, "code_object.localsplusnames"),
    DBG(AT313_DBG_CODE_LOCALSPLUSKINDS, "code_object.localspluskinds"),
    DBG(AT313_DBG_CODE_CODE_ADAPTIVE, "code_object.co_code_adaptive"),
    DBG(AT313_DBG_OBJECT_SIZE, "pyobject.size"),
    DBG(AT313_DBG_OBJECT_TYPE, "pyobject.ob_type"),
    DBG(AT313_DBG_TYPE_SIZE, "type_object.size"),
    DBG(AT313_DBG_TYPE_NAME, "type_object.tp_name"),
    DBG(AT313_DBG_TYPE_FLAGS, "type_object.tp_flags"),
    DBG(AT313_DBG_TUPLE_SIZE, "tuple_object.size"),
    DBG(AT313_DBG_TUPLE_ITEMS, "tuple_object.ob_item"),
    DBG(AT313_DBG_LIST_SIZE, "list_object.size"),
    DBG(AT313_DBG_LIST_ITEMS, "list_object.ob_item"),
    DBG(AT313_DBG_DICT_SIZE, "dict_object.size"),
    DBG(AT313_DBG_DICT_KEYS, "dict_object.ma_keys"),
    DBG(AT313_DBG_DICT_VALUES, "dict_object.ma_values"),
    DBG(AT313_DBG_FLOAT_SIZE, "float_object.size"),
    DBG(AT313_DBG_FLOAT_FVAL, "float_object.ob_fval"),
    DBG(AT313_DBG_LONG_SIZE, "long_object.size"),
    DBG(AT313_DBG_LONG_LV_TAG, "long_object.lv_tag"),
    DBG(AT313_DBG_LONG_DIGITS, "long_object.ob_digit"),
    DBG(AT313_DBG_BYTES_SIZE, "bytes_object.size"),
    DBG(AT313_DBG_BYTES_SVAL, "bytes_object.ob_sval"),
    DBG(AT313_DBG_UNICODE_SIZE, "unicode_object.size"),
    DBG(AT313_DBG_UNICODE_STATE, "unicode_object.state"),
    DBG(AT313_DBG_UNICODE_LENGTH, "unicode_object.length"),
    DBG(AT313_DBG_UNICODE_ASCIIOBJECT_SIZE, "unicode_object.asciiobject_size"),
#undef DBG
    ROW(AT313_SIZEOF_DEBUG_OFFSETS, "sizeof(_Py_DebugOffsets)"),
    /* what `dump --asyncio` reads (cpython/genobject.h, pycore_frame.h,
     * cpython/weakrefobject.h, cpython/object.h) */
    ROW(AT313_GEN_IFRAME, "offsetof(PyGenObject, gi_iframe)"),
    ROW(AT313_GEN_FRAME_STATE, "offsetof(PyGenObject, gi_frame_state)"),
    ROW(AT313_FRAME_CREATED, "FRAME_CREATED"),
    ROW(AT313_FRAME_SUSPENDED, "FRAME_SUSPENDED"),
    ROW(AT313_FRAME_SUSPENDED_YIELD_FROM, "FRAME_SUSPENDED_YIELD_FROM"),
    ROW(AT313_FRAME_COMPLETED, "FRAME_COMPLETED"),
    ROW(AT313_WEAKREF_OBJECT, "offsetof(PyWeakReference, wr_object)"),
    ROW(AT313_TYPE_BASE, "offsetof(PyTypeObject, tp_base)"),
    ROW(AT313_TYPE_DICT, "offsetof(PyTypeObject, tp_dict)"),
    ROW(AT313_MEMBERDESCR_MEMBER, "offsetof(PyMemberDescrObject, d_member)"),
    ROW(AT313_MEMBERDEF_OFFSET, "offsetof(PyMemberDef, offset)"),
};

/* Names in py313.h that no CPython header can confirm, and why. */
static const at_layout_excuse_t unchecked[] = {
    { "AT_PY313_H", "the include guard, not a value" },
    { "AT313_TASK_LOOP", "TaskObj of Modules/_asynciomodule.c, in no installed header: test_asyncio finds each field on live tasks" },
    { "AT313_TASK_SOURCE_TB", "TaskObj of Modules/_asynciomodule.c, in no installed header: test_asyncio finds each field on live tasks" },
    { "AT313_TASK_STATE", "TaskObj of Modules/_asynciomodule.c, in no installed header: test_asyncio finds each field on live tasks" },
    { "AT313_TASK_FUT_WAITER", "TaskObj of Modules/_asynciomodule.c, in no installed header: test_asyncio finds each field on live tasks" },
    { "AT313_TASK_CORO", "TaskObj of Modules/_asynciomodule.c, in no installed header: test_asyncio finds each field on live tasks" },
    { "AT313_TASK_NAME", "TaskObj of Modules/_asynciomodule.c, in no installed header: test_asyncio finds each field on live tasks" },
    { "AT313_TASK_READ", "TaskObj of Modules/_asynciomodule.c, in no installed header: test_asyncio finds each field on live tasks" },
    { "AT313_FUT_STATE_PENDING", "TaskObj of Modules/_asynciomodule.c, in no installed header: test_asyncio finds each field on live tasks" },
    { "AT313_FUT_STATE_CANCELLED", "TaskObj of Modules/_asynciomodule.c, in no installed header: test_asyncio finds each field on live tasks" },
    { "AT313_FUT_STATE_FINISHED", "TaskObj of Modules/_asynciomodule.c, in no installed header: test_asyncio finds each field on live tasks" },
    { "AT313_DEBUG_COOKIE", "a string, not a number: debug_offsets_of_a_live_313 compares it "
                            "with the cookie a running 3.13 has at _PyRuntime" },
};

static const at_layout_table_t py313 = AT_LAYOUT_TABLE("common/py313.h", "3.13", layout, unchecked);

Test(py313, every_macro_is_checked_or_excused)
{
    at_layout_check_names(&py313);
}

Test(py313, headers_agree, .timeout = 60)
{
    at_layout_check_python(&py313, at_layout_find_python("3.13"), "CPython 3.13");
}

/* ---- the target's own offsets ------------------------------------------ */

/* One offset a live 3.13 stores in its _Py_DebugOffsets: where (a DBG_
 * macro) and what py313.h says it must be. */
typedef struct {
    const char *name;
    long where;
    long want;
} live_row_t;

#define LIVE(dbg, want) { #dbg, dbg, (long)(want) }

static const live_row_t live[] = {
    LIVE(AT313_DBG_FREE_THREADED, 0),
    LIVE(AT313_DBG_RUNTIME_INTERPRETERS_HEAD, AT313_RT_INTERPRETERS_HEAD),
    LIVE(AT313_DBG_INTERP_ID, AT313_INTERP_ID),
    LIVE(AT313_DBG_INTERP_NEXT, AT313_INTERP_NEXT),
    LIVE(AT313_DBG_INTERP_THREADS_HEAD, AT313_INTERP_TSTATE_HEAD),
    LIVE(AT313_DBG_INTERP_IMPORTS_MODULES, AT313_INTERP_MODULES),
    LIVE(AT313_DBG_INTERP_CEVAL_GIL, AT313_INTERP_CEVAL_GIL),
    LIVE(AT313_DBG_INTERP_GIL_RUNTIME_STATE, AT313_INTERP_GIL),
    LIVE(AT313_DBG_INTERP_GIL_ENABLED, 0),
    LIVE(AT313_DBG_INTERP_GIL_LOCKED, AT313_INTERP_GIL + AT313_GIL_LOCKED),
    LIVE(AT313_DBG_INTERP_GIL_HOLDER, AT313_INTERP_GIL + AT313_GIL_LAST_HOLDER),
    LIVE(AT313_DBG_TSTATE_PREV, AT313_TSTATE_PREV),
    LIVE(AT313_DBG_TSTATE_NEXT, AT313_TSTATE_NEXT),
    LIVE(AT313_DBG_TSTATE_INTERP, AT313_TSTATE_INTERP),
    LIVE(AT313_DBG_TSTATE_CURRENT_FRAME, AT313_TSTATE_CURRENT_FRAME),
    LIVE(AT313_DBG_TSTATE_THREAD_ID, AT313_TSTATE_THREAD_ID),
    LIVE(AT313_DBG_TSTATE_NATIVE_THREAD_ID, AT313_TSTATE_NATIVE_THREAD_ID),
    LIVE(AT313_DBG_TSTATE_STATUS, AT313_TSTATE_STATUS),
    LIVE(AT313_DBG_IFRAME_PREVIOUS, AT313_IFRAME_PREVIOUS),
    LIVE(AT313_DBG_IFRAME_EXECUTABLE, AT313_IFRAME_EXECUTABLE),
    LIVE(AT313_DBG_IFRAME_INSTR_PTR, AT313_IFRAME_INSTR_PTR),
    LIVE(AT313_DBG_IFRAME_LOCALSPLUS, AT313_IFRAME_LOCALSPLUS),
    LIVE(AT313_DBG_IFRAME_OWNER, AT313_IFRAME_OWNER),
    LIVE(AT313_DBG_CODE_FILENAME, AT313_CODE_FILENAME),
    LIVE(AT313_DBG_CODE_NAME, AT313_CODE_NAME),
    LIVE(AT313_DBG_CODE_QUALNAME, AT313_CODE_QUALNAME),
    LIVE(AT313_DBG_CODE_LINETABLE, AT313_CODE_LINETABLE),
    LIVE(AT313_DBG_CODE_FIRSTLINENO, AT313_CODE_FIRSTLINENO),
    LIVE(AT313_DBG_CODE_CODE_ADAPTIVE, AT313_CODE_CODE_ADAPTIVE),
    LIVE(AT313_DBG_OBJECT_TYPE, AT313_OBJECT_TYPE),
    LIVE(AT313_DBG_TYPE_NAME, AT313_TYPE_NAME),
    LIVE(AT313_DBG_TYPE_FLAGS, AT313_TYPE_FLAGS),
    LIVE(AT313_DBG_DICT_KEYS, AT313_DICT_KEYS),
    LIVE(AT313_DBG_DICT_VALUES, AT313_DICT_VALUES),
    LIVE(AT313_DBG_LONG_LV_TAG, AT313_LONG_LV_TAG),
    LIVE(AT313_DBG_LONG_DIGITS, AT313_LONG_DIGITS),
    LIVE(AT313_DBG_BYTES_SVAL, AT313_BYTES_SVAL),
    LIVE(AT313_DBG_UNICODE_STATE, AT313_UNICODE_STATE),
    LIVE(AT313_DBG_UNICODE_LENGTH, AT313_UNICODE_LENGTH),
    LIVE(AT313_DBG_UNICODE_ASCIIOBJECT_SIZE, AT313_SIZEOF_PYASCIIOBJECT),
};
#define N_LIVE (sizeof live / sizeof live[0])

/* A running 3.13 reads its own _PyRuntime (ctypes, the exported symbol)
 * and prints the cookie, the version and the uint64 at each DBG_ offset:
 * what an attaching reader would take from the target. */
Test(py313, debug_offsets_of_a_live_313, .timeout = 30)
{
    const char *py = at_layout_find_python("3.13");
    if (!py)
        cr_skip_test("no default-build CPython 3.13 on this machine: its _PyRuntime.debug_offsets "
                     "not read");
    char offs[N_LIVE * 8 + 1] = "", *p = offs;
    for (size_t i = 0; i < N_LIVE; i++)
        p += sprintf(p, " %ld", live[i].where);
    char *out = NULL;
    int rc = at_test_shf(&out, NULL,
                         "'%s' -c 'import ctypes, struct, sys\n"
                         "a = ctypes.addressof(ctypes.c_char.in_dll(ctypes.pythonapi, \"_PyRuntime\"))\n"
                         "b = ctypes.string_at(a, %d)\n"
                         "q = lambda o: struct.unpack_from(\"<Q\", b, int(o))[0]\n"
                         "print(b[:8].decode(\"ascii\", \"replace\"), hex(q(%d)))\n"
                         "print(*(q(o) for o in sys.argv[1:]))'"
                         "%s",
                         py, AT313_SIZEOF_DEBUG_OFFSETS, AT313_DBG_VERSION, offs);
    cr_assert_eq(rc, 0, "%s could not read its own _PyRuntime (exit %d):\n%s", py, rc, out ? out : "");
    char cookie[16] = "", version[32] = "";
    int off = 0;
    cr_assert_eq(sscanf(out, "%15s %31s %n", cookie, version, &off), 2, "unexpected output: %s", out);
    cr_expect_str_eq(cookie, AT313_DEBUG_COOKIE, "%s: _PyRuntime does not start with the cookie", py);
    cr_expect_eq(strncmp(version, "0x30d", 5), 0, "%s: debug_offsets.version is %s, not 3.13", py,
                 version);
    char *s = out + off;
    for (size_t i = 0; i < N_LIVE; i++) {
        char *end;
        long got = strtol(s, &end, 10);
        cr_assert(end != s, "%s: no value for %s in: %s", py, live[i].name, out);
        cr_expect_eq(got, live[i].want, "%s: the target says %ld at %s, py313.h says %ld", py, got,
                     live[i].name, live[i].want);
        s = end;
    }
    at_test_note("CPython 3.13 (%s): _PyRuntime.debug_offsets %s %s, %zu offsets read and compared",
                 py, cookie, version, N_LIVE);
    free(out);
}
