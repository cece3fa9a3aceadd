/* SPDX-License-Identifier: MIT */
/* test_py312.c - every number in common/py312.h re-derived from the real
 * CPython 3.12 headers (see test_py311.c and layout_probe.h for how).
 *
 * The interpreter is a default (GIL) build of 3.12 found on PATH or in
 * pyenv's versions; without one the header test is skipped, saying so.
 */
#include <criterion/criterion.h>

#include "layout_probe.h"
#include "py312.h"
#include "testlib.h"

#define ROW AT_LAYOUT_ROW

static const at_layout_row_t layout[] = {
    /* _PyRuntimeState (pycore_runtime.h) */
    ROW(AT312_RT_INTERPRETERS_HEAD, "offsetof(_PyRuntimeState, interpreters.head)"),
    ROW(AT312_RT_INTERPRETERS_MAIN, "offsetof(_PyRuntimeState, interpreters.main)"),
    ROW(AT312_RT_AUDIT_HOOK_HEAD, "offsetof(_PyRuntimeState, audit_hooks.head)"),
    ROW(AT312_RT_MAIN_INTERPRETER, "offsetof(_PyRuntimeState, _main_interpreter)"),
    ROW(AT312_RT_TRACEMALLOC_TRACING, "offsetof(_PyRuntimeState, tracemalloc.config.tracing)"),
    ROW(AT312_AUDIT_ENTRY_NEXT, "offsetof(_Py_AuditHookEntry, next)"),
    ROW(AT312_AUDIT_ENTRY_HOOK, "offsetof(_Py_AuditHookEntry, hookCFunction)"),
    /* PyInterpreterState (pycore_interp.h) */
    ROW(AT312_INTERP_NEXT, "offsetof(PyInterpreterState, next)"),
    ROW(AT312_INTERP_ID, "offsetof(PyInterpreterState, id)"),
    ROW(AT312_INTERP_TSTATE_HEAD, "offsetof(PyInterpreterState, threads.head)"),
    ROW(AT312_INTERP_RUNTIME, "offsetof(PyInterpreterState, runtime)"),
    ROW(AT312_INTERP_GC_GENERATION_STATS, "offsetof(PyInterpreterState, gc.generation_stats)"),
    ROW(AT312_SIZEOF_GC_GENERATION_STATS, "sizeof(struct gc_generation_stats)"),
    ROW(AT312_INTERP_CEVAL_GIL, "offsetof(PyInterpreterState, ceval.gil)"),
    ROW(AT312_INTERP_CEVAL_OWN_GIL, "offsetof(PyInterpreterState, ceval.own_gil)"),
    ROW(AT312_INTERP_MODULES, "offsetof(PyInterpreterState, imports.modules)"),
    ROW(AT312_INTERP_GIL, "offsetof(PyInterpreterState, _gil)"),
    ROW(AT312_INTERP_AUDIT_HOOKS, "offsetof(PyInterpreterState, audit_hooks)"),
    /* struct _gil_runtime_state (pycore_gil.h) */
    ROW(AT312_GIL_INTERVAL, "offsetof(struct _gil_runtime_state, interval)"),
    ROW(AT312_GIL_LAST_HOLDER, "offsetof(struct _gil_runtime_state, last_holder)"),
    ROW(AT312_GIL_LOCKED, "offsetof(struct _gil_runtime_state, locked)"),
    ROW(AT312_GIL_SWITCH_NUMBER, "offsetof(struct _gil_runtime_state, switch_number)"),
    ROW(AT312_GIL_COND, "offsetof(struct _gil_runtime_state, cond)"),
    ROW(AT312_GIL_MUTEX, "offsetof(struct _gil_runtime_state, mutex)"),
    ROW(AT312_GIL_SWITCH_COND, "offsetof(struct _gil_runtime_state, switch_cond)"),
    ROW(AT312_GIL_SWITCH_MUTEX, "offsetof(struct _gil_runtime_state, switch_mutex)"),
    /* PyThreadState, _PyCFrame (cpython/pystate.h) */
    ROW(AT312_TSTATE_PREV, "offsetof(PyThreadState, prev)"),
    ROW(AT312_TSTATE_NEXT, "offsetof(PyThreadState, next)"),
    ROW(AT312_TSTATE_INTERP, "offsetof(PyThreadState, interp)"),
    ROW(AT312_TSTATE_TRACING, "offsetof(PyThreadState, tracing)"),
    ROW(AT312_TSTATE_CFRAME, "offsetof(PyThreadState, cframe)"),
    ROW(AT312_TSTATE_C_PROFILEFUNC, "offsetof(PyThreadState, c_profilefunc)"),
    ROW(AT312_TSTATE_C_TRACEFUNC, "offsetof(PyThreadState, c_tracefunc)"),
    ROW(AT312_TSTATE_C_PROFILEOBJ, "offsetof(PyThreadState, c_profileobj)"),
    ROW(AT312_TSTATE_THREAD_ID, "offsetof(PyThreadState, thread_id)"),
    ROW(AT312_TSTATE_NATIVE_THREAD_ID, "offsetof(PyThreadState, native_thread_id)"),
    ROW(AT312_TSTATE_ID, "offsetof(PyThreadState, id)"),
    ROW(AT312_CFRAME_CURRENT_FRAME, "offsetof(_PyCFrame, current_frame)"),
    /* _PyInterpreterFrame (pycore_frame.h) */
    ROW(AT312_IFRAME_CODE, "offsetof(_PyInterpreterFrame, f_code)"),
    ROW(AT312_IFRAME_PREVIOUS, "offsetof(_PyInterpreterFrame, previous)"),
    ROW(AT312_IFRAME_GLOBALS, "offsetof(_PyInterpreterFrame, f_globals)"),
    ROW(AT312_IFRAME_PREV_INSTR, "offsetof(_PyInterpreterFrame, prev_instr)"),
    ROW(AT312_IFRAME_STACKTOP, "offsetof(_PyInterpreterFrame, stacktop)"),
    ROW(AT312_IFRAME_OWNER, "offsetof(_PyInterpreterFrame, owner)"),
    ROW(AT312_IFRAME_LOCALSPLUS, "offsetof(_PyInterpreterFrame, localsplus)"),
    ROW(AT312_FRAME_OWNED_BY_GENERATOR, "FRAME_OWNED_BY_GENERATOR"),
    ROW(AT312_FRAME_OWNED_BY_CSTACK, "FRAME_OWNED_BY_CSTACK"),
    ROW(AT312_FRAMEOBJ_F_FRAME, "offsetof(PyFrameObject, f_frame)"),
    ROW(AT312_CFUNC_M_ML, "offsetof(PyCFunctionObject, m_ml)"),
    ROW(AT312_CFUNC_M_SELF, "offsetof(PyCFunctionObject, m_self)"),
    /* PyCodeObject (cpython/code.h) */
    ROW(AT312_CODE_FIRSTLINENO, "offsetof(PyCodeObject, co_firstlineno)"),
    ROW(AT312_CODE_NLOCALSPLUS, "offsetof(PyCodeObject, co_nlocalsplus)"),
    ROW(AT312_CODE_FILENAME, "offsetof(PyCodeObject, co_filename)"),
    ROW(AT312_CODE_NAME, "offsetof(PyCodeObject, co_name)"),
    ROW(AT312_CODE_QUALNAME, "offsetof(PyCodeObject, co_qualname)"),
    ROW(AT312_CODE_LINETABLE, "offsetof(PyCodeObject, co_linetable)"),
    ROW(AT312_CODE_FIRSTTRACEABLE, "offsetof(PyCodeObject, _co_firsttraceable)"),
    ROW(AT312_CODE_CODE_ADAPTIVE, "offsetof(PyCodeObject, co_code_adaptive)"),
    ROW(AT312_SIZEOF_CODEUNIT, "sizeof(_Py_CODEUNIT)"),
    /* objects the walkers decode */
    ROW(AT312_OBJECT_TYPE, "offsetof(PyObject, ob_type)"),
    ROW(AT312_VAR_SIZE, "offsetof(PyVarObject, ob_size)"),
    ROW(AT312_TYPE_NAME, "offsetof(PyTypeObject, tp_name)"),
    ROW(AT312_BYTES_SVAL, "offsetof(PyBytesObject, ob_sval)"),
    ROW(AT312_UNICODE_LENGTH, "offsetof(PyASCIIObject, length)"),
    ROW(AT312_UNICODE_STATE, "offsetof(PyASCIIObject, state)"),
    ROW(AT312_UNICODE_COMPACT_ASCII,
        "*(unsigned *)&((PyASCIIObject){.state = {.compact = 1, .ascii = 1}}).state"),
    ROW(AT312_SIZEOF_PYASCIIOBJECT, "sizeof(PyASCIIObject)"),
    ROW(AT312_SIZEOF_PYCOMPACTUNICODEOBJECT, "sizeof(PyCompactUnicodeObject)"),
    ROW(AT312_UNICODE_UTF8, "offsetof(PyCompactUnicodeObject, utf8)"),
    ROW(AT312_TYPE_FLAGS, "offsetof(PyTypeObject, tp_flags)"),
    ROW(AT312_TPFLAGS_MANAGED_DICT, "Py_TPFLAGS_MANAGED_DICT"),
    ROW(AT312_TPFLAGS_TYPE_SUBCLASS, "Py_TPFLAGS_TYPE_SUBCLASS"),
    ROW(AT312_HEAPTYPE_CACHED_KEYS, "offsetof(PyHeapTypeObject, ht_cached_keys)"),
    ROW(AT312_MODULE_DICT, "offsetof(PyModuleObject, md_dict)"),
    ROW(AT312_LONG_LV_TAG, "offsetof(PyLongObject, long_value.lv_tag)"),
    ROW(AT312_LONG_DIGITS, "offsetof(PyLongObject, long_value.ob_digit)"),
    ROW(AT312_LONG_SHIFT, "PyLong_SHIFT"),
    ROW(AT312_LONG_NON_SIZE_BITS, "_PyLong_NON_SIZE_BITS"),
    ROW(AT312_LONG_SIGN_MASK, "_PyLong_SIGN_MASK"),
    /* what `dump --locals` reads (cpython/code.h, tupleobject.h, listobject.h,
     * floatobject.h, cellobject.h, setobject.h, pycore_code.h) */
    ROW(AT312_CODE_ARGCOUNT, "offsetof(PyCodeObject, co_argcount)"),
    ROW(AT312_CODE_KWONLYARGCOUNT, "offsetof(PyCodeObject, co_kwonlyargcount)"),
    ROW(AT312_CODE_FLAGS, "offsetof(PyCodeObject, co_flags)"),
    ROW(AT312_CODE_LOCALSPLUSNAMES, "offsetof(PyCodeObject, co_localsplusnames)"),
    ROW(AT312_CODE_LOCALSPLUSKINDS, "offsetof(PyCodeObject, co_localspluskinds)"),
    ROW(AT312_CO_VARARGS, "CO_VARARGS"),
    ROW(AT312_CO_VARKEYWORDS, "CO_VARKEYWORDS"),
    ROW(AT312_CO_FAST_LOCAL, "CO_FAST_LOCAL"),
    ROW(AT312_CO_FAST_CELL, "CO_FAST_CELL"),
    ROW(AT312_CO_FAST_FREE, "CO_FAST_FREE"),
    ROW(AT312_CO_FAST_HIDDEN, "CO_FAST_HIDDEN"),
    ROW(AT312_TUPLE_ITEMS, "offsetof(PyTupleObject, ob_item)"),
    ROW(AT312_LIST_ITEMS, "offsetof(PyListObject, ob_item)"),
    ROW(AT312_FLOAT_FVAL, "offsetof(PyFloatObject, ob_fval)"),
    ROW(AT312_CELL_REF, "offsetof(PyCellObject, ob_ref)"),
    ROW(AT312_SET_USED, "offsetof(PySetObject, used)"),
    ROW(AT312_SET_MASK, "offsetof(PySetObject, mask)"),
    ROW(AT312_SET_TABLE, "offsetof(PySetObject, table)"),
    ROW(AT312_SIZEOF_SETENTRY, "sizeof(setentry)"),
    ROW(AT312_DICT_USED, "offsetof(PyDictObject, ma_used)"),
    /* dict (pycore_dict.h, pycore_object.h) */
    ROW(AT312_DICT_KEYS, "offsetof(PyDictObject, ma_keys)"),
    ROW(AT312_DICT_VALUES, "offsetof(PyDictObject, ma_values)"),
    ROW(AT312_DICTKEYS_LOG2_INDEX_BYTES, "offsetof(PyDictKeysObject, dk_log2_index_bytes)"),
    ROW(AT312_DICTKEYS_KIND, "offsetof(PyDictKeysObject, dk_kind)"),
    ROW(AT312_DICTKEYS_NENTRIES, "offsetof(PyDictKeysObject, dk_nentries)"),
    ROW(AT312_DICTKEYS_INDICES, "offsetof(PyDictKeysObject, dk_indices)"),
    ROW(AT312_DICT_KEYS_GENERAL, "DICT_KEYS_GENERAL"),
    ROW(AT312_SIZEOF_DICT_KEY_ENTRY, "sizeof(PyDictKeyEntry)"),
    ROW(AT312_SIZEOF_DICT_UNICODE_ENTRY, "sizeof(PyDictUnicodeEntry)"),
    ROW(AT312_DICTVALUES_VALUES, "offsetof(PyDictValues, values)"),
    /* the tag _PyDictOrValues_SetValues puts in: values - 1 */
    ROW(AT312_DORV_VALUES_BIT,
        "_PyDictOrValues_IsValues((PyDictOrValues){.values = (char *)16 - 1})"),
    /* what `dump --asyncio` reads (cpython/genobject.h, pycore_frame.h,
     * cpython/weakrefobject.h, cpython/object.h) */
    ROW(AT312_GEN_IFRAME, "offsetof(PyGenObject, gi_iframe)"),
    ROW(AT312_GEN_FRAME_STATE, "offsetof(PyGenObject, gi_frame_state)"),
    ROW(AT312_FRAME_CREATED, "FRAME_CREATED"),
    ROW(AT312_FRAME_SUSPENDED, "FRAME_SUSPENDED"),
    ROW(AT312_FRAME_COMPLETED, "FRAME_COMPLETED"),
    ROW(AT312_WEAKREF_OBJECT, "offsetof(PyWeakReference, wr_object)"),
    ROW(AT312_TYPE_BASE, "offsetof(PyTypeObject, tp_base)"),
    ROW(AT312_TYPE_DICT, "offsetof(PyTypeObject, tp_dict)"),
    ROW(AT312_MEMBERDESCR_MEMBER, "offsetof(PyMemberDescrObject, d_member)"),
    ROW(AT312_MEMBERDEF_OFFSET, "offsetof(PyMemberDef, offset)"),
};

/* Names in py312.h that no CPython header can confirm, and why. */
static const at_layout_excuse_t unchecked[] = {
    { "AT_PY312_H", "the include guard, not a value" },
    { "AT312_TASK_LOOP", "TaskObj of Modules/_asynciomodule.c, in no installed header: test_asyncio finds each field on live tasks" },
    { "AT312_TASK_SOURCE_TB", "TaskObj of Modules/_asynciomodule.c, in no installed header: test_asyncio finds each field on live tasks" },
    { "AT312_TASK_STATE", "TaskObj of Modules/_asynciomodule.c, in no installed header: test_asyncio finds each field on live tasks" },
    { "AT312_TASK_FUT_WAITER", "TaskObj of Modules/_asynciomodule.c, in no installed header: test_asyncio finds each field on live tasks" },
    { "AT312_TASK_CORO", "TaskObj of Modules/_asynciomodule.c, in no installed header: test_asyncio finds each field on live tasks" },
    { "AT312_TASK_NAME", "TaskObj of Modules/_asynciomodule.c, in no installed header: test_asyncio finds each field on live tasks" },
    { "AT312_TASK_READ", "TaskObj of Modules/_asynciomodule.c, in no installed header: test_asyncio finds each field on live tasks" },
    { "AT312_FUT_STATE_PENDING", "TaskObj of Modules/_asynciomodule.c, in no installed header: test_asyncio finds each field on live tasks" },
    { "AT312_FUT_STATE_CANCELLED", "TaskObj of Modules/_asynciomodule.c, in no installed header: test_asyncio finds each field on live tasks" },
    { "AT312_FUT_STATE_FINISHED", "TaskObj of Modules/_asynciomodule.c, in no installed header: test_asyncio finds each field on live tasks" },
    { "AT312_OBJECT_MANAGED_DICT", "returned by the inline _PyObject_DictOrValuesPointer "
                                   "(obj - 3 words), no field or macro to take it from" },
};

static const at_layout_table_t py312 = AT_LAYOUT_TABLE("common/py312.h", "3.12", layout, unchecked);

Test(py312, every_macro_is_checked_or_excused)
{
    at_layout_check_names(&py312);
}

Test(py312, headers_agree, .timeout = 60)
{
    at_layout_check_python(&py312, at_layout_find_python("3.12"), "CPython 3.12");
}
