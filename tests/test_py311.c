/* SPDX-License-Identifier: MIT */
/* test_py311.c - every number in common/py311.h re-derived from the real
 * CPython 3.11 headers of both build shapes.
 *
 * py311.h is plain numbers so the shim, the sampler and the BPF programs
 * can share it without Python.h.  Here one table pairs each macro with the
 * C expression (offsetof, sizeof, an enum value) that states it in the
 * CPython headers; tests/layout_probe.c builds a probe from it against the
 * headers of each shape's interpreter and compares, and checks that every
 * #define of py311.h has a row here (or a reason in the unchecked list).
 * test_py312.c and test_py313.c do the same for the later versions.
 */
#include <criterion/criterion.h>

#include "layout_probe.h"
#include "py311.h"
#include "testlib.h"

#define ROW AT_LAYOUT_ROW

static const at_layout_row_t layout[] = {
    /* _PyRuntimeState: interpreters, gilstate, ceval.gil (pycore_gil.h) */
    ROW(AT_RT_INTERPRETERS_HEAD, "offsetof(_PyRuntimeState, interpreters.head)"),
    ROW(AT_RT_INTERPRETERS_MAIN, "offsetof(_PyRuntimeState, interpreters.main)"),
    ROW(AT_RT_GILSTATE_TSTATE_CURRENT, "offsetof(_PyRuntimeState, gilstate.tstate_current)"),
    ROW(AT_RT_GIL, "offsetof(_PyRuntimeState, ceval.gil)"),
    ROW(AT_RT_GIL_LAST_HOLDER, "offsetof(_PyRuntimeState, ceval.gil.last_holder)"),
    ROW(AT_RT_GIL_LOCKED, "offsetof(_PyRuntimeState, ceval.gil.locked)"),
    ROW(AT_RT_GIL_SWITCH_NUMBER, "offsetof(_PyRuntimeState, ceval.gil.switch_number)"),
    ROW(AT_RT_GIL_COND, "offsetof(_PyRuntimeState, ceval.gil.cond)"),
    ROW(AT_RT_GIL_MUTEX, "offsetof(_PyRuntimeState, ceval.gil.mutex)"),
    ROW(AT_RT_GIL_SWITCH_COND, "offsetof(_PyRuntimeState, ceval.gil.switch_cond)"),
    ROW(AT_RT_GIL_SWITCH_MUTEX, "offsetof(_PyRuntimeState, ceval.gil.switch_mutex)"),
    ROW(AT_RT_AUDIT_HOOK_HEAD, "offsetof(_PyRuntimeState, audit_hook_head)"),
    ROW(AT_RT_MAIN_INTERPRETER, "offsetof(_PyRuntimeState, _main_interpreter)"),
    ROW(AT_AUDIT_ENTRY_NEXT, "offsetof(_Py_AuditHookEntry, next)"),
    ROW(AT_AUDIT_ENTRY_HOOK, "offsetof(_Py_AuditHookEntry, hookCFunction)"),
    /* PyInterpreterState (pycore_interp.h) */
    ROW(AT_INTERP_NEXT, "offsetof(PyInterpreterState, next)"),
    ROW(AT_INTERP_TSTATE_HEAD, "offsetof(PyInterpreterState, threads.head)"),
    ROW(AT_INTERP_RUNTIME, "offsetof(PyInterpreterState, runtime)"),
    ROW(AT_INTERP_ID, "offsetof(PyInterpreterState, id)"),
    ROW(AT_INTERP_GC_GENERATION_STATS, "offsetof(PyInterpreterState, gc.generation_stats)"),
    ROW(AT_SIZEOF_GC_GENERATION_STATS, "sizeof(struct gc_generation_stats)"),
    ROW(AT_INTERP_MODULES, "offsetof(PyInterpreterState, modules)"),
    /* PyThreadState (cpython/pystate.h) */
    ROW(AT_TSTATE_PREV, "offsetof(PyThreadState, prev)"),
    ROW(AT_TSTATE_NEXT, "offsetof(PyThreadState, next)"),
    ROW(AT_TSTATE_INTERP, "offsetof(PyThreadState, interp)"),
    ROW(AT_TSTATE_CFRAME, "offsetof(PyThreadState, cframe)"),
    ROW(AT_TSTATE_THREAD_ID, "offsetof(PyThreadState, thread_id)"),
    ROW(AT_TSTATE_NATIVE_THREAD_ID, "offsetof(PyThreadState, native_thread_id)"),
    ROW(AT_TSTATE_ID, "offsetof(PyThreadState, id)"),
    ROW(AT_CFRAME_CURRENT_FRAME, "offsetof(_PyCFrame, current_frame)"),
    /* _PyInterpreterFrame (pycore_frame.h) */
    ROW(AT_IFRAME_CODE, "offsetof(_PyInterpreterFrame, f_code)"),
    ROW(AT_IFRAME_PREVIOUS, "offsetof(_PyInterpreterFrame, previous)"),
    ROW(AT_IFRAME_PREV_INSTR, "offsetof(_PyInterpreterFrame, prev_instr)"),
    ROW(AT_IFRAME_STACKTOP, "offsetof(_PyInterpreterFrame, stacktop)"),
    ROW(AT_IFRAME_IS_ENTRY, "offsetof(_PyInterpreterFrame, is_entry)"),
    ROW(AT_IFRAME_OWNER, "offsetof(_PyInterpreterFrame, owner)"),
    ROW(AT_FRAME_OWNED_BY_GENERATOR, "FRAME_OWNED_BY_GENERATOR"),
    /* PyCodeObject (cpython/code.h) */
    ROW(AT_CODE_FIRSTLINENO, "offsetof(PyCodeObject, co_firstlineno)"),
    ROW(AT_CODE_NLOCALSPLUS, "offsetof(PyCodeObject, co_nlocalsplus)"),
    ROW(AT_CODE_FILENAME, "offsetof(PyCodeObject, co_filename)"),
    ROW(AT_CODE_NAME, "offsetof(PyCodeObject, co_name)"),
    ROW(AT_CODE_QUALNAME, "offsetof(PyCodeObject, co_qualname)"),
    ROW(AT_CODE_LINETABLE, "offsetof(PyCodeObject, co_linetable)"),
    ROW(AT_CODE_FIRSTTRACEABLE, "offsetof(PyCodeObject, _co_firsttraceable)"),
    ROW(AT_CODE_CODE_ADAPTIVE, "offsetof(PyCodeObject, co_code_adaptive)"),
    ROW(AT_SIZEOF_CODEUNIT, "sizeof(_Py_CODEUNIT)"),
    /* objects the walkers decode: type names, bytes, str */
    ROW(AT_OBJECT_TYPE, "offsetof(PyObject, ob_type)"),
    ROW(AT_VAR_SIZE, "offsetof(PyVarObject, ob_size)"),
    ROW(AT_TYPE_NAME, "offsetof(PyTypeObject, tp_name)"),
    ROW(AT_BYTES_SVAL, "offsetof(PyBytesObject, ob_sval)"),
    ROW(AT_UNICODE_LENGTH, "offsetof(PyASCIIObject, length)"),
    ROW(AT_UNICODE_STATE, "offsetof(PyASCIIObject, state)"),
    ROW(AT_SIZEOF_PYASCIIOBJECT, "sizeof(PyASCIIObject)"),
    ROW(AT_SIZEOF_PYCOMPACTUNICODEOBJECT, "sizeof(PyCompactUnicodeObject)"),
    ROW(AT_UNICODE_UTF8, "offsetof(PyCompactUnicodeObject, utf8)"),
    /* what the thread-name reader walks: modules, dicts, instances, ints */
    ROW(AT_TYPE_FLAGS, "offsetof(PyTypeObject, tp_flags)"),
    ROW(AT_TPFLAGS_MANAGED_DICT, "Py_TPFLAGS_MANAGED_DICT"),
    ROW(AT_HEAPTYPE_CACHED_KEYS, "offsetof(PyHeapTypeObject, ht_cached_keys)"),
    ROW(AT_MODULE_DICT, "offsetof(PyModuleObject, md_dict)"),
    ROW(AT_LONG_DIGITS, "offsetof(PyLongObject, ob_digit)"),
    ROW(AT_LONG_SHIFT, "PyLong_SHIFT"),
    ROW(AT_DICT_KEYS, "offsetof(PyDictObject, ma_keys)"),
    ROW(AT_DICT_VALUES, "offsetof(PyDictObject, ma_values)"),
    ROW(AT_DICTKEYS_LOG2_INDEX_BYTES, "offsetof(PyDictKeysObject, dk_log2_index_bytes)"),
    ROW(AT_DICTKEYS_KIND, "offsetof(PyDictKeysObject, dk_kind)"),
    ROW(AT_DICTKEYS_NENTRIES, "offsetof(PyDictKeysObject, dk_nentries)"),
    ROW(AT_DICTKEYS_INDICES, "offsetof(PyDictKeysObject, dk_indices)"),
    ROW(AT_DICT_KEYS_GENERAL, "DICT_KEYS_GENERAL"),
    ROW(AT_SIZEOF_DICT_KEY_ENTRY, "sizeof(PyDictKeyEntry)"),
    ROW(AT_SIZEOF_DICT_UNICODE_ENTRY, "sizeof(PyDictUnicodeEntry)"),
    ROW(AT_DICTVALUES_VALUES, "offsetof(PyDictValues, values)"),
    /* what the shim's import recorder reads (preload/imports.h keeps the
     * same macros) */
    ROW(AT_TSTATE_TRACING, "offsetof(PyThreadState, tracing)"),
    ROW(AT_TSTATE_C_PROFILEFUNC, "offsetof(PyThreadState, c_profilefunc)"),
    ROW(AT_TSTATE_C_TRACEFUNC, "offsetof(PyThreadState, c_tracefunc)"),
    ROW(AT_TSTATE_C_PROFILEOBJ, "offsetof(PyThreadState, c_profileobj)"),
    ROW(AT_CFRAME_USE_TRACING, "offsetof(_PyCFrame, use_tracing)"),
    ROW(AT_FRAMEOBJ_F_FRAME, "offsetof(PyFrameObject, f_frame)"),
    ROW(AT_IFRAME_GLOBALS, "offsetof(_PyInterpreterFrame, f_globals)"),
    ROW(AT_IFRAME_LOCALSPLUS, "offsetof(_PyInterpreterFrame, localsplus)"),
    ROW(AT_CFUNC_M_ML, "offsetof(PyCFunctionObject, m_ml)"),
    ROW(AT_CFUNC_M_SELF, "offsetof(PyCFunctionObject, m_self)"),
    ROW(AT_TPFLAGS_TYPE_SUBCLASS, "Py_TPFLAGS_TYPE_SUBCLASS"),
    /* what `dump --locals` reads (cpython/code.h, tupleobject.h, listobject.h,
     * floatobject.h, cellobject.h, setobject.h, pycore_code.h) */
    ROW(AT_CODE_ARGCOUNT, "offsetof(PyCodeObject, co_argcount)"),
    ROW(AT_CODE_KWONLYARGCOUNT, "offsetof(PyCodeObject, co_kwonlyargcount)"),
    ROW(AT_CODE_FLAGS, "offsetof(PyCodeObject, co_flags)"),
    ROW(AT_CODE_LOCALSPLUSNAMES, "offsetof(PyCodeObject, co_localsplusnames)"),
    ROW(AT_CODE_LOCALSPLUSKINDS, "offsetof(PyCodeObject, co_localspluskinds)"),
    ROW(AT_CO_VARARGS, "CO_VARARGS"),
    ROW(AT_CO_VARKEYWORDS, "CO_VARKEYWORDS"),
    ROW(AT_CO_FAST_LOCAL, "CO_FAST_LOCAL"),
    ROW(AT_CO_FAST_CELL, "CO_FAST_CELL"),
    ROW(AT_CO_FAST_FREE, "CO_FAST_FREE"),
    ROW(AT_TUPLE_ITEMS, "offsetof(PyTupleObject, ob_item)"),
    ROW(AT_LIST_ITEMS, "offsetof(PyListObject, ob_item)"),
    ROW(AT_FLOAT_FVAL, "offsetof(PyFloatObject, ob_fval)"),
    ROW(AT_CELL_REF, "offsetof(PyCellObject, ob_ref)"),
    ROW(AT_SET_USED, "offsetof(PySetObject, used)"),
    ROW(AT_SET_MASK, "offsetof(PySetObject, mask)"),
    ROW(AT_SET_TABLE, "offsetof(PySetObject, table)"),
    ROW(AT_SIZEOF_SETENTRY, "sizeof(setentry)"),
    ROW(AT_DICT_USED, "offsetof(PyDictObject, ma_used)"),
    ROW(AT_UNICODE_COMPACT_ASCII,
        "*(unsigned *)&((PyASCIIObject){.state = {.compact = 1, .ascii = 1}}).state"),
    /* what `dump --asyncio` reads (cpython/genobject.h, pycore_frame.h,
     * cpython/weakrefobject.h, cpython/object.h) */
    ROW(AT_GEN_IFRAME, "offsetof(PyGenObject, gi_iframe)"),
    ROW(AT_GEN_FRAME_STATE, "offsetof(PyGenObject, gi_frame_state)"),
    ROW(AT_FRAME_CREATED, "FRAME_CREATED"),
    ROW(AT_FRAME_SUSPENDED, "FRAME_SUSPENDED"),
    ROW(AT_FRAME_COMPLETED, "FRAME_COMPLETED"),
    ROW(AT_WEAKREF_OBJECT, "offsetof(PyWeakReference, wr_object)"),
    ROW(AT_TYPE_BASE, "offsetof(PyTypeObject, tp_base)"),
    ROW(AT_TYPE_DICT, "offsetof(PyTypeObject, tp_dict)"),
    ROW(AT_MEMBERDESCR_MEMBER, "offsetof(PyMemberDescrObject, d_member)"),
};

/* Names in py311.h that no CPython header can confirm, and why. */
static const at_layout_excuse_t unchecked[] = {
    { "AT_PY311_H", "the include guard, not a value" },
    { "AT_MEMBERDEF_OFFSET", "3.11 keeps PyMemberDef in structmember.h, which Python.h does not include; test_py312/313 check the same struct (unchanged since 3.0) and test_asyncio reads real slots" },
    { "AT_TASK_LOOP", "TaskObj of Modules/_asynciomodule.c, in no installed header: test_asyncio finds each field on live tasks" },
    { "AT_TASK_SOURCE_TB", "TaskObj of Modules/_asynciomodule.c, in no installed header: test_asyncio finds each field on live tasks" },
    { "AT_TASK_STATE", "TaskObj of Modules/_asynciomodule.c, in no installed header: test_asyncio finds each field on live tasks" },
    { "AT_TASK_FUT_WAITER", "TaskObj of Modules/_asynciomodule.c, in no installed header: test_asyncio finds each field on live tasks" },
    { "AT_TASK_CORO", "TaskObj of Modules/_asynciomodule.c, in no installed header: test_asyncio finds each field on live tasks" },
    { "AT_TASK_NAME", "TaskObj of Modules/_asynciomodule.c, in no installed header: test_asyncio finds each field on live tasks" },
    { "AT_TASK_READ", "TaskObj of Modules/_asynciomodule.c, in no installed header: test_asyncio finds each field on live tasks" },
    { "AT_FUT_STATE_PENDING", "TaskObj of Modules/_asynciomodule.c, in no installed header: test_asyncio finds each field on live tasks" },
    { "AT_FUT_STATE_CANCELLED", "TaskObj of Modules/_asynciomodule.c, in no installed header: test_asyncio finds each field on live tasks" },
    { "AT_FUT_STATE_FINISHED", "TaskObj of Modules/_asynciomodule.c, in no installed header: test_asyncio finds each field on live tasks" },
    { "AT_MAX_STACK_DEPTH", "archtrace's own bound on a frame walk, not a CPython layout" },
    { "AT_MAX_THREADS", "archtrace's own bound on a thread list walk, not a CPython layout" },
    { "AT_MAX_INTERPRETERS", "archtrace's own bound on an interpreter walk, not a CPython layout" },
    { "AT_OBJECT_MANAGED_DICT", "returned by the inline _PyObject_ManagedDictPointer (obj - 3 words), "
                                "no field to take offsetof of; the thread-name test reads real objects" },
    { "AT_OBJECT_MANAGED_VALUES", "returned by the inline _PyObject_ValuesPointer (obj - 4 words), "
                                  "no field to take offsetof of; the thread-name test reads real objects" },
};

static const at_layout_table_t py311 = AT_LAYOUT_TABLE("common/py311.h", "3.11", layout, unchecked);

Test(py311, every_macro_is_checked_or_excused)
{
    at_layout_check_names(&py311);
}

/* The two build shapes: each one's interpreter says where its headers are,
 * so the headers checked belong to the python the tests trace. */
Test(py311, static_build_headers_agree, .timeout = 30)
{
    at_layout_check_python(&py311, at_test_python("static"), "static-libpython 3.11");
}

Test(py311, shared_build_headers_agree, .timeout = 30)
{
    at_layout_check_python(&py311, at_test_python("shared"), "shared-libpython 3.11");
}
