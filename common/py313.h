/* SPDX-License-Identifier: MIT */
/* py313.h - the CPython 3.13 internal layout archtrace reads, in one place.
 *
 * The 3.13 counterpart of py311.h and py312.h: plain numbers from the
 * 3.13 internal headers (-DPy_BUILD_CORE) of the default (GIL) build on
 * x86_64, re-derived by tests/test_py313.c with offsetof().  Names are
 * AT313_ + py311.h's suffix for the same fact.  A free-threaded build
 * (3.13t, Py_GIL_DISABLED) has another PyObject header and other offsets
 * everywhere: none of these numbers hold there (refuse it; see
 * docs/VERSIONS.md for how to tell).
 *
 * What moved since 3.12:
 *   - _PyRuntime starts with _Py_DebugOffsets (debug_offsets, "xdebugpy"
 *     cookie): the target's own offsets for most of what follows.  The
 *     AT313_DBG_* macros at the end are offsets inside that struct, so a
 *     reader can take each fact from the target and compare it with the
 *     table here (it is untrusted memory: check the cookie, the version
 *     and every offset against the struct sizes it also gives).
 *   - _PyCFrame is gone: tstate->current_frame points at the frame.
 *   - _PyInterpreterFrame.f_code became f_executable (a PyObject *,
 *     "code object or None" says pycore_frame.h: check the type before
 *     using it as code) and prev_instr became instr_ptr, which points AT the
 *     instruction executing (or about to start), not at the code unit
 *     before it: the line is that of instr_ptr, not of prev_instr + 1.
 *   - PyInterpreterState starts with struct _ceval_state, so most of its
 *     fields moved by ~7 KiB; ceval.gil is its third word.
 *   - a managed instance dict: obj - 3 words holds only a dict pointer
 *     (PyManagedDictPointer); attributes of a type with
 *     Py_TPFLAGS_INLINE_VALUES live in a PyDictValues right after the
 *     object header (_PyObject_InlineValues), `valid` says whether they
 *     are current (else the dict is).
 * The GIL, the audit hook list, PyCodeObject's line fields, str, bytes,
 * int and dict keep their 3.12 layout (code: firsttraceable and the
 * first instruction moved by 8 for co_executors).
 */
#ifndef AT_PY313_H
#define AT_PY313_H

/* _PyRuntimeState (exported as the symbol _PyRuntime) */
#define AT313_RT_DEBUG_OFFSETS           0     /* _Py_DebugOffsets (AT313_DBG_*) */
#define AT313_RT_INTERPRETERS_HEAD       632   /* PyInterpreterState *      */
#define AT313_RT_INTERPRETERS_MAIN       640   /* PyInterpreterState *      */
#define AT313_RT_AUDIT_HOOK_HEAD         10424 /* audit_hooks.head          */
#define AT313_RT_MAIN_INTERPRETER        88352 /* PyInterpreterState, embedded */
#define AT313_RT_TRACEMALLOC_TRACING     10084 /* tracemalloc.config.tracing (int)   */
/* not in 3.13 (as in 3.12): AT_RT_GILSTATE_TSTATE_CURRENT, AT_RT_GIL_* */

/* _Py_AuditHookEntry: a runtime audit hook (PySys_AddAuditHook) */
#define AT313_AUDIT_ENTRY_NEXT           0
#define AT313_AUDIT_ENTRY_HOOK           8     /* Py_AuditHookFunction      */

/* PyInterpreterState */
#define AT313_INTERP_CEVAL_GIL           16    /* struct _gil_runtime_state * in use */
#define AT313_INTERP_CEVAL_OWN_GIL       24    /* int: 1 when CEVAL_GIL is INTERP_GIL */
#define AT313_INTERP_NEXT                7264
#define AT313_INTERP_ID                  7272
#define AT313_INTERP_TSTATE_HEAD         7344  /* threads.head              */
#define AT313_INTERP_RUNTIME             7376  /* back pointer: runtime check */
#define AT313_INTERP_GC_GENERATION_STATS 7528  /* gc.generation_stats[3], as 3.11 */
#define AT313_SIZEOF_GC_GENERATION_STATS 24    /* one of them               */
#define AT313_INTERP_MODULES             7656  /* imports.modules (sys.modules) */
#define AT313_INTERP_GIL                 7752  /* _gil: the interpreter's own GIL */
#define AT313_INTERP_AUDIT_HOOKS         10808 /* PyObject *: sys.addaudithook's list */

/* struct _gil_runtime_state (pycore_gil.h): as 3.12 in the default build
 * (a free-threaded build puts `int enabled` first) */
#define AT313_GIL_INTERVAL               0     /* unsigned long, microseconds */
#define AT313_GIL_LAST_HOLDER            8     /* PyThreadState *           */
#define AT313_GIL_LOCKED                 16    /* int, -1 = not created     */
#define AT313_GIL_SWITCH_NUMBER          24    /* unsigned long             */
#define AT313_GIL_COND                   32    /* pthread_cond_t (48 bytes) */
#define AT313_GIL_MUTEX                  80    /* pthread_mutex_t (40 bytes)*/
#define AT313_GIL_SWITCH_COND            120   /* pthread_cond_t            */
#define AT313_GIL_SWITCH_MUTEX           168   /* pthread_mutex_t           */

/* PyThreadState */
#define AT313_TSTATE_PREV                0
#define AT313_TSTATE_NEXT                8
#define AT313_TSTATE_INTERP              16
#define AT313_TSTATE_STATUS              32    /* _status: bit field word   */
#define AT313_TSTATE_STATUS_HOLDS_GIL    0x20  /* _status.holds_gil (new in 3.13) */
#define AT313_TSTATE_TRACING             60    /* int: >0 inside a trace/profile call */
#define AT313_TSTATE_CURRENT_FRAME       72    /* _PyInterpreterFrame * (no _PyCFrame) */
#define AT313_TSTATE_C_PROFILEFUNC       80    /* Py_tracefunc              */
#define AT313_TSTATE_C_TRACEFUNC         88    /* Py_tracefunc              */
#define AT313_TSTATE_C_PROFILEOBJ        96    /* PyObject *                */
#define AT313_TSTATE_THREAD_ID           152   /* pthread_t                 */
#define AT313_TSTATE_NATIVE_THREAD_ID    160   /* unsigned long (OS tid)    */
#define AT313_TSTATE_ID                  224   /* uint64_t                  */
/* not in 3.13: AT_TSTATE_CFRAME, AT_CFRAME_CURRENT_FRAME (use
 * TSTATE_CURRENT_FRAME) */

/* _PyInterpreterFrame */
#define AT313_IFRAME_EXECUTABLE          0     /* PyObject *: code, or None */
#define AT313_IFRAME_PREVIOUS            8
#define AT313_IFRAME_GLOBALS             24    /* PyObject * (dict)         */
#define AT313_IFRAME_INSTR_PTR           56    /* _Py_CODEUNIT *, the current one */
#define AT313_IFRAME_STACKTOP            64    /* int                       */
#define AT313_IFRAME_OWNER               70    /* char                      */
#define AT313_IFRAME_LOCALSPLUS          72    /* PyObject *localsplus[]    */
#define AT313_FRAME_OWNED_BY_GENERATOR   1
#define AT313_FRAME_OWNED_BY_CSTACK      3     /* an entry frame, no code: skip */
/* not in 3.13: AT_IFRAME_CODE (use EXECUTABLE), AT_IFRAME_PREV_INSTR
 * (use INSTR_PTR), AT_IFRAME_IS_ENTRY (use OWNED_BY_CSTACK) */

/* PyFrameObject, PyCFunctionObject */
#define AT313_FRAMEOBJ_F_FRAME           24    /* _PyInterpreterFrame *     */
#define AT313_CFUNC_M_ML                 16    /* PyMethodDef *             */
#define AT313_CFUNC_M_SELF               24    /* PyObject *                */

/* PyCodeObject */
#define AT313_CODE_FIRSTLINENO           68    /* int                       */
#define AT313_CODE_NLOCALSPLUS           72    /* int                       */
#define AT313_CODE_FILENAME              112   /* PyObject * (str)          */
#define AT313_CODE_NAME                  120
#define AT313_CODE_QUALNAME              128
#define AT313_CODE_LINETABLE             136   /* PyObject * (bytes), 3.11's format */
#define AT313_CODE_FIRSTTRACEABLE        184   /* int, in code units (3.12: 176) */
#define AT313_CODE_CODE_ADAPTIVE         200   /* first instruction (3.12: 192) */
#define AT313_SIZEOF_CODEUNIT            2

/* PyObject, PyVarObject, PyTypeObject, bytes, str: as 3.12 */
#define AT313_OBJECT_TYPE                8
#define AT313_VAR_SIZE                   16
#define AT313_TYPE_NAME                  24    /* const char *              */
#define AT313_BYTES_SVAL                 32
#define AT313_UNICODE_LENGTH             16
#define AT313_UNICODE_STATE              32    /* bit field word            */
#define AT313_UNICODE_COMPACT_ASCII      0x60  /* state bits: compact | ascii */
#define AT313_SIZEOF_PYASCIIOBJECT       40    /* compact ASCII data follows */
#define AT313_SIZEOF_PYCOMPACTUNICODEOBJECT 56 /* compact non-ASCII data follows */
#define AT313_UNICODE_UTF8               48    /* char *, UTF-8 copy or NULL */
#define AT313_TYPE_FLAGS                 168   /* unsigned long tp_flags    */
#define AT313_TPFLAGS_INLINE_VALUES      4     /* attributes after the header */
#define AT313_TPFLAGS_MANAGED_DICT       16    /* instance dict before the object */
#define AT313_TPFLAGS_TYPE_SUBCLASS      (1UL << 31)
#define AT313_HEAPTYPE_CACHED_KEYS       880   /* keys shared by instances  */
#define AT313_MODULE_DICT                16    /* PyModuleObject.md_dict    */
#define AT313_LONG_LV_TAG                16    /* uintptr_t: ndigits << 3 | sign */
#define AT313_LONG_DIGITS                24    /* uint32 digits, 30 bits each */
#define AT313_LONG_SHIFT                 30
#define AT313_LONG_NON_SIZE_BITS         3     /* lv_tag >> 3 = ndigits     */
#define AT313_LONG_SIGN_MASK             3     /* 0 positive, 1 zero, 2 negative */

/* What `dump --locals` reads: a code object's variables, and the values
 * of the builtin types it shows (tuple/list items, float, cell, set, dict
 * size).  The CO_* numbers are code flags and localsplus kinds. */
#define AT313_CODE_ARGCOUNT              52    /* int: positional args, posonly included */
#define AT313_CODE_KWONLYARGCOUNT        60    /* int                       */
#define AT313_CODE_FLAGS                 48    /* int: CO_VARARGS, ...      */
#define AT313_CODE_LOCALSPLUSNAMES       96    /* tuple of str              */
#define AT313_CODE_LOCALSPLUSKINDS       104   /* bytes: a CO_FAST_* each   */
#define AT313_CO_VARARGS                 4     /* *args after the kw-only args */
#define AT313_CO_VARKEYWORDS             8     /* **kwargs after *args      */
#define AT313_CO_FAST_LOCAL              0x20
#define AT313_CO_FAST_CELL               0x40  /* slot holds a cell (after MAKE_CELL) */
#define AT313_CO_FAST_FREE               0x80  /* a cell copied from the closure */
#define AT313_CO_FAST_HIDDEN             0x10  /* an inlined comprehension's own */
#define AT313_TUPLE_ITEMS                24    /* PyObject *ob_item[]       */
#define AT313_LIST_ITEMS                 24    /* PyObject **ob_item        */
#define AT313_FLOAT_FVAL                 16    /* double                    */
#define AT313_CELL_REF                   16    /* PyObject *, NULL = empty  */
#define AT313_SET_USED                   24    /* Py_ssize_t: active keys   */
#define AT313_SET_MASK                   32    /* Py_ssize_t: table size - 1 */
#define AT313_SET_TABLE                  40    /* setentry *                */
#define AT313_SIZEOF_SETENTRY            16    /* (key, hash)               */
#define AT313_DICT_USED                  16    /* Py_ssize_t ma_used        */

/* dict (pycore_dict.h) */
#define AT313_DICT_KEYS                  32    /* PyDictKeysObject *        */
#define AT313_DICT_VALUES                40    /* PyDictValues *, split dicts */
#define AT313_DICTKEYS_LOG2_INDEX_BYTES  9     /* uint8: indices' size      */
#define AT313_DICTKEYS_KIND              10    /* uint8: general/unicode/split */
#define AT313_DICTKEYS_NENTRIES          24    /* entries used so far       */
#define AT313_DICTKEYS_INDICES           32    /* indices, then the entries */
#define AT313_DICT_KEYS_GENERAL          0     /* (hash, key, value) entries */
#define AT313_SIZEOF_DICT_KEY_ENTRY      24
#define AT313_SIZEOF_DICT_UNICODE_ENTRY  16    /* (key, value)              */
#define AT313_DICTVALUES_VALID           3     /* uint8: the values are current */
#define AT313_DICTVALUES_VALUES          8     /* PyObject *values[] (3.12: 0) */
/* A managed instance dict: a PyDictObject * at obj - 3 words (NULL until
 * one is made); with Py_TPFLAGS_INLINE_VALUES the attributes are a
 * PyDictValues at obj + sizeof(PyObject).  Not in 3.13:
 * AT_OBJECT_MANAGED_VALUES. */
#define AT313_OBJECT_MANAGED_DICT        (-24)
#define AT313_OBJECT_INLINE_VALUES       16

/* _Py_DebugOffsets (pycore_runtime.h), at _PyRuntime + 0: each macro is
 * where, inside it, the target stores one offset (a uint64_t).  Which
 * of ours it gives (DBG_ field -> AT313_ macro):
 *   runtime_state.interpreters_head      -> RT_INTERPRETERS_HEAD
 *   interpreter_state.next / id          -> INTERP_NEXT / INTERP_ID
 *   interpreter_state.threads_head       -> INTERP_TSTATE_HEAD
 *   interpreter_state.imports_modules    -> INTERP_MODULES
 *   interpreter_state.ceval_gil          -> INTERP_CEVAL_GIL
 *   interpreter_state.gil_runtime_state  -> INTERP_GIL
 *   interpreter_state.gil_runtime_state_locked / _holder
 *                                        -> INTERP_GIL + GIL_LOCKED / GIL_LAST_HOLDER
 *                                           (of the embedded _gil, not of *ceval.gil)
 *   thread_state.prev / next / interp    -> TSTATE_PREV / NEXT / INTERP
 *   thread_state.current_frame           -> TSTATE_CURRENT_FRAME
 *   thread_state.thread_id / native_thread_id -> TSTATE_THREAD_ID / NATIVE_THREAD_ID
 *   thread_state.status                  -> TSTATE_STATUS (not the bit in it)
 *   interpreter_frame.previous / executable / instr_ptr / localsplus / owner
 *                                        -> IFRAME_PREVIOUS / EXECUTABLE / INSTR_PTR
 *                                           / LOCALSPLUS / OWNER
 *   code_object.filename / name / qualname / linetable / firstlineno /
 *   argcount / localsplusnames / localspluskinds / co_code_adaptive
 *                                        -> CODE_FILENAME / NAME / QUALNAME / LINETABLE
 *                                           / FIRSTLINENO / ARGCOUNT / LOCALSPLUSNAMES
 *                                           / LOCALSPLUSKINDS / CODE_ADAPTIVE
 *   tuple_object.ob_item / list_object.ob_item / float_object.ob_fval
 *                                        -> TUPLE_ITEMS / LIST_ITEMS / FLOAT_FVAL
 *   pyobject.ob_type                     -> OBJECT_TYPE
 *   type_object.tp_name / tp_flags       -> TYPE_NAME / TYPE_FLAGS
 *   dict_object.ma_keys / ma_values      -> DICT_KEYS / DICT_VALUES
 *   long_object.lv_tag / ob_digit        -> LONG_LV_TAG / LONG_DIGITS
 *   bytes_object.ob_sval                 -> BYTES_SVAL
 *   unicode_object.state / length / asciiobject_size
 *                                        -> UNICODE_STATE / UNICODE_LENGTH
 *                                           / SIZEOF_PYASCIIOBJECT
 * Not in it (keep them from this table): RT_INTERPRETERS_MAIN,
 * RT_AUDIT_HOOK_HEAD, INTERP_RUNTIME, INTERP_GC_GENERATION_STATS (it
 * gives gc, and gc.collecting only), the GIL's switch_number, cond and
 * mutexes, TSTATE_ID / TRACING / C_*, IFRAME_STACKTOP / GLOBALS, the
 * frame owner values, CODE_FIRSTTRACEABLE / NLOCALSPLUS / KWONLYARGCOUNT /
 * FLAGS, the CO_* flags and kinds, cells, sets, DICT_USED, every dict-keys,
 * managed-dict and inline-values fact, SIZEOF_PYCOMPACTUNICODEOBJECT, the
 * tp_flags bits and the int constants. */
#define AT313_DBG_COOKIE                 0     /* char[8], "xdebugpy"       */
#define AT313_DBG_VERSION                8     /* PY_VERSION_HEX            */
#define AT313_DBG_FREE_THREADED          16    /* 1 in a 3.13t build        */
#define AT313_DBG_RUNTIME_SIZE           24    /* sizeof(_PyRuntimeState)   */
#define AT313_DBG_RUNTIME_INTERPRETERS_HEAD 40
#define AT313_DBG_INTERP_SIZE            48    /* sizeof(PyInterpreterState) */
#define AT313_DBG_INTERP_ID              56
#define AT313_DBG_INTERP_NEXT            64
#define AT313_DBG_INTERP_THREADS_HEAD    72
#define AT313_DBG_INTERP_GC              80
#define AT313_DBG_INTERP_IMPORTS_MODULES 88
#define AT313_DBG_INTERP_CEVAL_GIL       112
#define AT313_DBG_INTERP_GIL_RUNTIME_STATE 120
#define AT313_DBG_INTERP_GIL_ENABLED     128   /* 0 in the default build    */
#define AT313_DBG_INTERP_GIL_LOCKED      136
#define AT313_DBG_INTERP_GIL_HOLDER      144
#define AT313_DBG_TSTATE_SIZE            152   /* sizeof(PyThreadState)     */
#define AT313_DBG_TSTATE_PREV            160
#define AT313_DBG_TSTATE_NEXT            168
#define AT313_DBG_TSTATE_INTERP          176
#define AT313_DBG_TSTATE_CURRENT_FRAME   184
#define AT313_DBG_TSTATE_THREAD_ID       192
#define AT313_DBG_TSTATE_NATIVE_THREAD_ID 200
#define AT313_DBG_TSTATE_STATUS          216
#define AT313_DBG_IFRAME_SIZE            224   /* sizeof(_PyInterpreterFrame) */
#define AT313_DBG_IFRAME_PREVIOUS        232
#define AT313_DBG_IFRAME_EXECUTABLE      240
#define AT313_DBG_IFRAME_INSTR_PTR       248
#define AT313_DBG_IFRAME_LOCALSPLUS      256
#define AT313_DBG_IFRAME_OWNER           264
#define AT313_DBG_CODE_SIZE              272   /* sizeof(PyCodeObject)      */
#define AT313_DBG_CODE_FILENAME          280
#define AT313_DBG_CODE_NAME              288
#define AT313_DBG_CODE_QUALNAME          296
#define AT313_DBG_CODE_LINETABLE         304
#define AT313_DBG_CODE_FIRSTLINENO       312
#define AT313_DBG_CODE_ARGCOUNT          320
#define AT313_DBG_CODE_LOCALSPLUSNAMES   328
#define AT313_DBG_CODE_LOCALSPLUSKINDS   336
#define AT313_DBG_CODE_CODE_ADAPTIVE     344
#define AT313_DBG_OBJECT_SIZE            352   /* sizeof(PyObject)          */
#define AT313_DBG_OBJECT_TYPE            360
#define AT313_DBG_TYPE_SIZE              368   /* sizeof(PyTypeObject)      */
#define AT313_DBG_TYPE_NAME              376
#define AT313_DBG_TYPE_FLAGS             392
#define AT313_DBG_TUPLE_SIZE             400   /* sizeof(PyTupleObject)     */
#define AT313_DBG_TUPLE_ITEMS            408
#define AT313_DBG_LIST_SIZE              424   /* sizeof(PyListObject)      */
#define AT313_DBG_LIST_ITEMS             432
#define AT313_DBG_DICT_SIZE              448   /* sizeof(PyDictObject)      */
#define AT313_DBG_DICT_KEYS              456
#define AT313_DBG_DICT_VALUES            464
#define AT313_DBG_FLOAT_SIZE             472   /* sizeof(PyFloatObject)     */
#define AT313_DBG_FLOAT_FVAL             480
#define AT313_DBG_LONG_SIZE              488   /* sizeof(PyLongObject)      */
#define AT313_DBG_LONG_LV_TAG            496
#define AT313_DBG_LONG_DIGITS            504
#define AT313_DBG_BYTES_SIZE             512   /* sizeof(PyBytesObject)     */
#define AT313_DBG_BYTES_SVAL             528
#define AT313_DBG_UNICODE_SIZE           536   /* sizeof(PyUnicodeObject)   */
#define AT313_DBG_UNICODE_STATE          544
#define AT313_DBG_UNICODE_LENGTH         552
#define AT313_DBG_UNICODE_ASCIIOBJECT_SIZE 560
#define AT313_SIZEOF_DEBUG_OFFSETS       584   /* bytes to read at _PyRuntime */
#define AT313_DEBUG_COOKIE               "xdebugpy"

/* What `dump --asyncio` reads: coroutines and generators (cpython/genobject.h,
 * pycore_frame.h's frame states), weak references (the tasks of
 * asyncio.tasks' WeakSet) and a type's base (a Task subclass). */
#define AT313_GEN_IFRAME                72    /* _PyInterpreterFrame, embedded */
#define AT313_GEN_FRAME_STATE           67    /* int8: FRAME_CREATED ... CLEARED */
#define AT313_FRAME_CREATED             -3    /* not started: line co_firstlineno */
#define AT313_FRAME_SUSPENDED           -2    /* at a yield (or await, before 3.13) */
#define AT313_FRAME_SUSPENDED_YIELD_FROM -1    /* suspended in await / yield from (new in 3.13) */
#define AT313_FRAME_COMPLETED           1     /* returned or raised: no frame to show */
#define AT313_WEAKREF_OBJECT            16    /* PyWeakReference.wr_object, None when dead */
#define AT313_TYPE_BASE                 256   /* PyTypeObject.tp_base      */
#define AT313_TYPE_DICT                 264   /* PyTypeObject.tp_dict (a heap type's) */
#define AT313_MEMBERDESCR_MEMBER        40    /* PyMemberDescrObject.d_member: a __slots__ slot's */
#define AT313_MEMBERDEF_OFFSET          16    /* PyMemberDef.offset: where the slot is in the object */

/* The C Task of the _asyncio module: TaskObj, which opens with
 * FutureObj_HEAD, in Modules/_asynciomodule.c.  No installed header has
 * it, and the source index at hand holds only CPython's main branch (whose
 * TaskObj has moved on), so these offsets were found on live tasks of
 * 3.13.0: a probe looks for each field by the object it must hold
 * (id(loop), id(coro), id(name), the awaited future, _source_traceback;
 * the state by a pending, a done and a cancelled task).  tests/test_asyncio.c
 * repeats that probe on every interpreter.  sizeof(TaskObj) = 144. */
#define AT313_TASK_LOOP                 16    /* PyObject *task_loop       */
#define AT313_TASK_SOURCE_TB            72    /* task_source_tb: a list of FrameSummary, or NULL/None */
#define AT313_TASK_STATE                96    /* fut_state: PENDING, CANCELLED, FINISHED */
#define AT313_TASK_FUT_WAITER           112   /* the future it waits for, or NULL */
#define AT313_TASK_CORO                 120   /* the coroutine it drives  */
#define AT313_TASK_NAME                 128   /* str (3.13: an int N until get_name: "Task-N") */
#define AT313_TASK_READ                 144   /* bytes read of a task: sizeof(TaskObj) */
#define AT313_FUT_STATE_PENDING         0
#define AT313_FUT_STATE_CANCELLED       1
#define AT313_FUT_STATE_FINISHED        2

#endif
