/* SPDX-License-Identifier: MIT */
/* py312.h - the CPython 3.12 internal layout archtrace reads, in one place.
 *
 * The 3.12 counterpart of py311.h: plain numbers (no Python.h) so the
 * shim, the sampler and the BPF programs can share them, taken from the
 * 3.12 internal headers (Include/internal/pycore_*.h with -DPy_BUILD_CORE)
 * of the default (GIL) build on x86_64.  tests/test_py312.c re-derives
 * every one of them with offsetof() from the installed 3.12 headers.
 *
 * Names: AT312_ + the suffix py311.h gives the same fact (AT_IFRAME_CODE
 * there is AT312_IFRAME_CODE here), so a table per version can be filled
 * name by name (common/pylayout.c).  A fact 3.12 no longer has is not
 * defined here, and says so below; a fact new in 3.12 has a new suffix.
 *
 * What moved since 3.11:
 *   - the GIL is per interpreter (PEP 684): _PyRuntime.ceval.gil is gone;
 *     interp->ceval.gil points at the struct _gil_runtime_state in use
 *     (the interpreter's own interp->_gil, or the main interpreter's when
 *     it shares).  The main interpreter is embedded in _PyRuntime
 *     (_main_interpreter), so its GIL has a static address:
 *     &_PyRuntime + RT_MAIN_INTERPRETER + INTERP_GIL.  GIL fields are
 *     given relative to struct _gil_runtime_state (AT312_GIL_*).
 *   - _PyRuntime.gilstate.tstate_current is gone: the current thread
 *     state is the thread-local _Py_tss_tstate (pycore_pystate.h), read
 *     in-process with the exported _PyThreadState_GetCurrent().
 *   - sys.modules is interp->imports.modules; the audit hook list is
 *     _PyRuntime.audit_hooks.head.
 *   - _PyCFrame lost use_tracing: current_frame is its first field.
 *   - _PyInterpreterFrame lost is_entry: a frame owned by the C stack
 *     (owner == FRAME_OWNED_BY_CSTACK) marks an entry from C instead; the
 *     frame walk skips those, they have no code of their own to show.
 *   - PyLongObject keeps size and sign in long_value.lv_tag (ndigits =
 *     lv_tag >> NON_SIZE_BITS, sign = 1 - (lv_tag & SIGN_MASK)), not in
 *     ob_size.
 *   - str lost wstr: PyASCIIObject is 40 bytes, PyCompactUnicodeObject 56.
 *   - a managed instance dict is one tagged word at obj - 3 words
 *     (PyDictOrValues): low bit set = values array + 1, else the dict.
 */
#ifndef AT_PY312_H
#define AT_PY312_H

/* _PyRuntimeState (exported as the symbol _PyRuntime) */
#define AT312_RT_INTERPRETERS_HEAD       40    /* PyInterpreterState *      */
#define AT312_RT_INTERPRETERS_MAIN       48    /* PyInterpreterState *      */
#define AT312_RT_AUDIT_HOOK_HEAD         3064  /* audit_hooks.head          */
#define AT312_RT_MAIN_INTERPRETER        76392 /* PyInterpreterState, embedded */
#define AT312_RT_TRACEMALLOC_TRACING     2772  /* tracemalloc.config.tracing (int): 3.11's
                                                * _Py_tracemalloc_config moved in here */
/* not in 3.12: AT_RT_GILSTATE_TSTATE_CURRENT (thread-local now) and every
 * AT_RT_GIL_* (the GIL lives in the interpreter: AT312_INTERP_CEVAL_GIL) */

/* _Py_AuditHookEntry: a runtime audit hook (PySys_AddAuditHook) */
#define AT312_AUDIT_ENTRY_NEXT           0
#define AT312_AUDIT_ENTRY_HOOK           8     /* Py_AuditHookFunction      */

/* PyInterpreterState */
#define AT312_INTERP_NEXT                0
#define AT312_INTERP_ID                  8
#define AT312_INTERP_TSTATE_HEAD         72    /* threads.head              */
#define AT312_INTERP_RUNTIME             96    /* back pointer: runtime check */
#define AT312_INTERP_GC_GENERATION_STATS 240   /* gc.generation_stats[3], as 3.11 */
#define AT312_SIZEOF_GC_GENERATION_STATS 24    /* one of them               */
#define AT312_INTERP_CEVAL_GIL           384   /* struct _gil_runtime_state * in use */
#define AT312_INTERP_CEVAL_OWN_GIL       392   /* int: 1 when CEVAL_GIL is INTERP_GIL */
#define AT312_INTERP_MODULES             944   /* imports.modules (sys.modules) */
#define AT312_INTERP_GIL                 1040  /* _gil: the interpreter's own GIL */
#define AT312_INTERP_AUDIT_HOOKS         267208 /* PyObject *: sys.addaudithook's list */

/* struct _gil_runtime_state (pycore_gil.h), from the address in
 * interp->ceval.gil; the same fields as 3.11's _PyRuntime.ceval.gil */
#define AT312_GIL_INTERVAL               0     /* unsigned long, microseconds */
#define AT312_GIL_LAST_HOLDER            8     /* PyThreadState * (atomic)  */
#define AT312_GIL_LOCKED                 16    /* int (atomic), -1 = not created */
#define AT312_GIL_SWITCH_NUMBER          24    /* unsigned long             */
#define AT312_GIL_COND                   32    /* pthread_cond_t (48 bytes) */
#define AT312_GIL_MUTEX                  80    /* pthread_mutex_t (40 bytes)*/
#define AT312_GIL_SWITCH_COND            120   /* pthread_cond_t            */
#define AT312_GIL_SWITCH_MUTEX           168   /* pthread_mutex_t           */

/* PyThreadState */
#define AT312_TSTATE_PREV                0
#define AT312_TSTATE_NEXT                8
#define AT312_TSTATE_INTERP              16
#define AT312_TSTATE_TRACING             44    /* int: >0 inside a trace/profile call */
#define AT312_TSTATE_CFRAME              56    /* _PyCFrame * (the last version with it) */
#define AT312_TSTATE_C_PROFILEFUNC       64    /* Py_tracefunc              */
#define AT312_TSTATE_C_TRACEFUNC         72    /* Py_tracefunc              */
#define AT312_TSTATE_C_PROFILEOBJ        80    /* PyObject *                */
#define AT312_TSTATE_THREAD_ID           136   /* pthread_t                 */
#define AT312_TSTATE_NATIVE_THREAD_ID    144   /* unsigned long (OS tid)    */
#define AT312_TSTATE_ID                  224   /* uint64_t                  */

/* _PyCFrame (3.11: current_frame at 8, after use_tracing) */
#define AT312_CFRAME_CURRENT_FRAME       0     /* _PyInterpreterFrame *     */

/* _PyInterpreterFrame (3.11: f_code at 32, after f_func/globals/builtins/locals) */
#define AT312_IFRAME_CODE                0     /* PyCodeObject *            */
#define AT312_IFRAME_PREVIOUS            8
#define AT312_IFRAME_GLOBALS             24    /* PyObject * (dict)         */
#define AT312_IFRAME_PREV_INSTR          56    /* _Py_CODEUNIT *, as 3.11   */
#define AT312_IFRAME_STACKTOP            64    /* int                       */
#define AT312_IFRAME_OWNER               70    /* char                      */
#define AT312_IFRAME_LOCALSPLUS          72    /* PyObject *localsplus[]    */
#define AT312_FRAME_OWNED_BY_GENERATOR   1
#define AT312_FRAME_OWNED_BY_CSTACK      3     /* an entry frame, no code: skip */
/* not in 3.12: AT_IFRAME_IS_ENTRY (use OWNED_BY_CSTACK) */

/* PyFrameObject, PyCFunctionObject (what the import recorder's profile
 * function looks at) */
#define AT312_FRAMEOBJ_F_FRAME           24    /* _PyInterpreterFrame *     */
#define AT312_CFUNC_M_ML                 16    /* PyMethodDef *             */
#define AT312_CFUNC_M_SELF               24    /* PyObject *                */

/* PyCodeObject (3.11: firstlineno 72, nlocalsplus 76, firsttraceable
 * 168, code 184) */
#define AT312_CODE_FIRSTLINENO           68    /* int                       */
#define AT312_CODE_NLOCALSPLUS           72    /* int                       */
#define AT312_CODE_FILENAME              112   /* PyObject * (str)          */
#define AT312_CODE_NAME                  120
#define AT312_CODE_QUALNAME              128
#define AT312_CODE_LINETABLE             136   /* PyObject * (bytes), 3.11's format */
#define AT312_CODE_FIRSTTRACEABLE        176   /* int, in code units        */
#define AT312_CODE_CODE_ADAPTIVE         192   /* first instruction         */
#define AT312_SIZEOF_CODEUNIT            2

/* PyObject, PyVarObject, PyTypeObject, bytes, str */
#define AT312_OBJECT_TYPE                8
#define AT312_VAR_SIZE                   16
#define AT312_TYPE_NAME                  24    /* const char *              */
#define AT312_BYTES_SVAL                 32
#define AT312_UNICODE_LENGTH             16
#define AT312_UNICODE_STATE              32    /* bit field word            */
#define AT312_UNICODE_COMPACT_ASCII      0x60  /* state bits: compact | ascii */
#define AT312_SIZEOF_PYASCIIOBJECT       40    /* compact ASCII data follows (3.11: 48) */
#define AT312_SIZEOF_PYCOMPACTUNICODEOBJECT 56 /* compact non-ASCII data follows (3.11: 72) */
#define AT312_UNICODE_UTF8               48    /* char *, UTF-8 copy or NULL (3.11: 56) */
#define AT312_TYPE_FLAGS                 168   /* unsigned long tp_flags    */
#define AT312_TPFLAGS_MANAGED_DICT       16    /* instance dict before the object */
#define AT312_TPFLAGS_TYPE_SUBCLASS      (1UL << 31)
#define AT312_HEAPTYPE_CACHED_KEYS       880   /* keys shared by instances (3.11: 872) */
#define AT312_MODULE_DICT                16    /* PyModuleObject.md_dict    */
#define AT312_LONG_LV_TAG                16    /* uintptr_t: ndigits << 3 | sign */
#define AT312_LONG_DIGITS                24    /* uint32 digits, 30 bits each */
#define AT312_LONG_SHIFT                 30
#define AT312_LONG_NON_SIZE_BITS         3     /* lv_tag >> 3 = ndigits     */
#define AT312_LONG_SIGN_MASK             3     /* 0 positive, 1 zero, 2 negative */

/* What `dump --locals` reads: a code object's variables, and the values
 * of the builtin types it shows (tuple/list items, float, cell, set, dict
 * size).  The CO_* numbers are code flags and localsplus kinds. */
#define AT312_CODE_ARGCOUNT              52    /* int: positional args, posonly included */
#define AT312_CODE_KWONLYARGCOUNT        60    /* int                       */
#define AT312_CODE_FLAGS                 48    /* int: CO_VARARGS, ...      */
#define AT312_CODE_LOCALSPLUSNAMES       96    /* tuple of str              */
#define AT312_CODE_LOCALSPLUSKINDS       104   /* bytes: a CO_FAST_* each   */
#define AT312_CO_VARARGS                 4     /* *args after the kw-only args */
#define AT312_CO_VARKEYWORDS             8     /* **kwargs after *args      */
#define AT312_CO_FAST_LOCAL              0x20
#define AT312_CO_FAST_CELL               0x40  /* slot holds a cell (after MAKE_CELL) */
#define AT312_CO_FAST_FREE               0x80  /* a cell copied from the closure */
#define AT312_CO_FAST_HIDDEN             0x10  /* an inlined comprehension's own */
#define AT312_TUPLE_ITEMS                24    /* PyObject *ob_item[]       */
#define AT312_LIST_ITEMS                 24    /* PyObject **ob_item        */
#define AT312_FLOAT_FVAL                 16    /* double                    */
#define AT312_CELL_REF                   16    /* PyObject *, NULL = empty  */
#define AT312_SET_USED                   24    /* Py_ssize_t: active keys   */
#define AT312_SET_MASK                   32    /* Py_ssize_t: table size - 1 */
#define AT312_SET_TABLE                  40    /* setentry *                */
#define AT312_SIZEOF_SETENTRY            16    /* (key, hash)               */
#define AT312_DICT_USED                  16    /* Py_ssize_t ma_used        */

/* dict (pycore_dict.h): the same layout as 3.11 */
#define AT312_DICT_KEYS                  32    /* PyDictKeysObject *        */
#define AT312_DICT_VALUES                40    /* PyDictValues *, split dicts */
#define AT312_DICTKEYS_LOG2_INDEX_BYTES  9     /* uint8: indices' size      */
#define AT312_DICTKEYS_KIND              10    /* uint8: general/unicode/split */
#define AT312_DICTKEYS_NENTRIES          24    /* entries used so far       */
#define AT312_DICTKEYS_INDICES           32    /* indices, then the entries */
#define AT312_DICT_KEYS_GENERAL          0     /* (hash, key, value) entries */
#define AT312_SIZEOF_DICT_KEY_ENTRY      24
#define AT312_SIZEOF_DICT_UNICODE_ENTRY  16    /* (key, value)              */
#define AT312_DICTVALUES_VALUES          0     /* PyObject *values[]        */
/* A managed instance dict: one PyDictOrValues word at obj - 3 words
 * (_PyObject_DictOrValuesPointer): a dict, or, with the low bit set, the
 * address of the values array minus one.  Not in 3.12:
 * AT_OBJECT_MANAGED_VALUES (3.11's second word). */
#define AT312_OBJECT_MANAGED_DICT        (-24)
#define AT312_DORV_VALUES_BIT            1

/* What `dump --asyncio` reads: coroutines and generators (cpython/genobject.h,
 * pycore_frame.h's frame states), weak references (the tasks of
 * asyncio.tasks' WeakSet) and a type's base (a Task subclass). */
#define AT312_GEN_IFRAME                72    /* _PyInterpreterFrame, embedded */
#define AT312_GEN_FRAME_STATE           67    /* int8: FRAME_CREATED ... CLEARED */
#define AT312_FRAME_CREATED             -2    /* not started: line co_firstlineno */
#define AT312_FRAME_SUSPENDED           -1    /* at a yield (or await, before 3.13) */
#define AT312_FRAME_COMPLETED           1     /* returned or raised: no frame to show */
#define AT312_WEAKREF_OBJECT            16    /* PyWeakReference.wr_object, None when dead */
#define AT312_TYPE_BASE                 256   /* PyTypeObject.tp_base      */
#define AT312_TYPE_DICT                 264   /* PyTypeObject.tp_dict (a heap type's) */
#define AT312_MEMBERDESCR_MEMBER        40    /* PyMemberDescrObject.d_member: a __slots__ slot's */
#define AT312_MEMBERDEF_OFFSET          16    /* PyMemberDef.offset: where the slot is in the object */

/* The C Task of the _asyncio module: TaskObj, which opens with
 * FutureObj_HEAD, in Modules/_asynciomodule.c.  No installed header has
 * it, and the source index at hand holds only CPython's main branch (whose
 * TaskObj has moved on), so these offsets were found on live tasks of
 * 3.12.1: a probe looks for each field by the object it must hold
 * (id(loop), id(coro), id(name), the awaited future, _source_traceback;
 * the state by a pending, a done and a cancelled task).  tests/test_asyncio.c
 * repeats that probe on every interpreter.  sizeof(TaskObj) = 176. */
#define AT312_TASK_LOOP                 16    /* PyObject *task_loop       */
#define AT312_TASK_SOURCE_TB            72    /* task_source_tb: a list of FrameSummary, or NULL/None */
#define AT312_TASK_STATE                88    /* fut_state: PENDING, CANCELLED, FINISHED */
#define AT312_TASK_FUT_WAITER           128   /* the future it waits for, or NULL */
#define AT312_TASK_CORO                 136   /* the coroutine it drives  */
#define AT312_TASK_NAME                 144   /* str (3.13: an int N until get_name: "Task-N") */
#define AT312_TASK_READ                 176   /* bytes read of a task: sizeof(TaskObj) */
#define AT312_FUT_STATE_PENDING         0
#define AT312_FUT_STATE_CANCELLED       1
#define AT312_FUT_STATE_FINISHED        2

#endif
