/* SPDX-License-Identifier: MIT */
/* py311.h - the CPython 3.11 internal layout archtrace reads, in one place.
 *
 * These offsets are shared by the preload shim (in-process reads), the
 * ptrace/process_vm_readv sampler and the BPF programs, so they are plain
 * numbers with no dependency on Python.h.  They were taken from the real
 * 3.11 internal headers (Include/internal/pycore_*.h, built with
 * -DPy_BUILD_CORE) and are identical on 3.11.2 (Debian, static) and 3.11.7
 * (pyenv, shared); tests/test_py311.c re-derives every one of them from
 * the installed headers with offsetof() so a drift fails the build of the
 * tests, and the readers check them at run time (interp->runtime must
 * point back at _PyRuntime) before trusting them.  py312.h and py313.h
 * hold the same facts for 3.12 and 3.13 (AT312_/AT313_ + the same
 * suffix), pylayout.h one table per version built from all three, and
 * docs/VERSIONS.md what changed.
 */
#ifndef AT_PY311_H
#define AT_PY311_H

/* _PyRuntimeState (exported as the symbol _PyRuntime) */
#define AT_RT_INTERPRETERS_HEAD        40  /* PyInterpreterState *      */
#define AT_RT_INTERPRETERS_MAIN        48  /* PyInterpreterState *      */
#define AT_RT_GILSTATE_TSTATE_CURRENT  576 /* _Py_atomic_address        */
#define AT_RT_GIL                      360 /* struct _gil_runtime_state */
#define AT_RT_GIL_LAST_HOLDER          368 /* PyThreadState * (atomic)  */
#define AT_RT_GIL_LOCKED               376 /* int (atomic), -1 = not created */
#define AT_RT_GIL_SWITCH_NUMBER        384 /* unsigned long             */
#define AT_RT_GIL_COND                 392 /* pthread_cond_t (48 bytes) */
#define AT_RT_GIL_MUTEX                440 /* pthread_mutex_t (40 bytes)*/
#define AT_RT_GIL_SWITCH_COND          480 /* pthread_cond_t            */
#define AT_RT_GIL_SWITCH_MUTEX         528 /* pthread_mutex_t           */
#define AT_RT_AUDIT_HOOK_HEAD          656 /* _Py_AuditHookEntry *      */
#define AT_RT_MAIN_INTERPRETER         58936 /* PyInterpreterState, embedded */

/* _Py_AuditHookEntry: a runtime audit hook (PySys_AddAuditHook) */
#define AT_AUDIT_ENTRY_NEXT            0
#define AT_AUDIT_ENTRY_HOOK            8   /* Py_AuditHookFunction      */

/* PyInterpreterState */
#define AT_INTERP_NEXT                 0
#define AT_INTERP_TSTATE_HEAD          16  /* threads.head              */
#define AT_INTERP_RUNTIME              40  /* back pointer: runtime check */
#define AT_INTERP_ID                   48
#define AT_INTERP_GC_GENERATION_STATS  776 /* gc.generation_stats[3]: Py_ssize_t
                                            * collections, collected,
                                            * uncollectable each (top)   */
#define AT_SIZEOF_GC_GENERATION_STATS  24  /* one of them                */
#define AT_INTERP_MODULES              888 /* sys.modules (dict)        */

/* PyThreadState */
#define AT_TSTATE_PREV                 0
#define AT_TSTATE_NEXT                 8
#define AT_TSTATE_INTERP               16
#define AT_TSTATE_CFRAME               56  /* _PyCFrame *               */
#define AT_TSTATE_THREAD_ID            152 /* pthread_t                 */
#define AT_TSTATE_NATIVE_THREAD_ID     160 /* unsigned long (OS tid)    */
#define AT_TSTATE_ID                   240 /* uint64_t                  */

/* _PyCFrame */
#define AT_CFRAME_CURRENT_FRAME        8   /* _PyInterpreterFrame *     */

/* _PyInterpreterFrame */
#define AT_IFRAME_CODE                 32  /* PyCodeObject *            */
#define AT_IFRAME_PREVIOUS             48
#define AT_IFRAME_PREV_INSTR           56  /* _Py_CODEUNIT *            */
#define AT_IFRAME_STACKTOP             64  /* int                       */
#define AT_IFRAME_IS_ENTRY             68  /* bool                      */
#define AT_IFRAME_OWNER                69  /* char                      */
#define AT_FRAME_OWNED_BY_GENERATOR    1

/* PyCodeObject */
#define AT_CODE_FIRSTLINENO            72  /* int                       */
#define AT_CODE_NLOCALSPLUS            76  /* int                       */
#define AT_CODE_FILENAME               112 /* PyObject * (str)          */
#define AT_CODE_NAME                   120
#define AT_CODE_QUALNAME               128
#define AT_CODE_LINETABLE              136 /* PyObject * (bytes)        */
#define AT_CODE_FIRSTTRACEABLE         168 /* int, in code units        */
#define AT_CODE_CODE_ADAPTIVE          184 /* first instruction         */
#define AT_SIZEOF_CODEUNIT             2

/* PyObject, PyVarObject, PyTypeObject, bytes, str */
#define AT_OBJECT_TYPE                 8
#define AT_VAR_SIZE                    16
#define AT_TYPE_NAME                   24  /* const char *              */
#define AT_BYTES_SVAL                  32
#define AT_UNICODE_LENGTH              16
#define AT_UNICODE_STATE               32  /* bit field word            */
#define AT_SIZEOF_PYASCIIOBJECT        48  /* compact ASCII data follows */
#define AT_SIZEOF_PYCOMPACTUNICODEOBJECT 72 /* compact non-ASCII data follows */
#define AT_UNICODE_UTF8                56  /* char *: a compact non-ASCII str's UTF-8 copy, or NULL */
#define AT_TYPE_FLAGS                  168 /* unsigned long tp_flags    */
#define AT_TPFLAGS_MANAGED_DICT        16  /* instance dict before the object */
#define AT_HEAPTYPE_CACHED_KEYS        872 /* keys shared by instances  */
#define AT_MODULE_DICT                 16  /* PyModuleObject.md_dict    */
#define AT_LONG_DIGITS                 24  /* uint32 digits, 30 bits each */
#define AT_LONG_SHIFT                  30

/* dict (pycore_dict.h); a managed instance dict sits before the object:
 * obj - 3 words the dict, obj - 4 words its split values (3.11's
 * _PyObject_ManagedDictPointer / _PyObject_ValuesPointer) */
#define AT_DICT_KEYS                   32  /* PyDictKeysObject *        */
#define AT_DICT_VALUES                 40  /* PyDictValues *, split dicts */
#define AT_DICTKEYS_LOG2_INDEX_BYTES   9   /* uint8: indices' size      */
#define AT_DICTKEYS_KIND               10  /* uint8: general/unicode/split */
#define AT_DICTKEYS_NENTRIES           24  /* entries used so far       */
#define AT_DICTKEYS_INDICES            32  /* indices, then the entries */
#define AT_DICT_KEYS_GENERAL           0   /* (hash, key, value) entries */
#define AT_SIZEOF_DICT_KEY_ENTRY       24
#define AT_SIZEOF_DICT_UNICODE_ENTRY   16  /* (key, value)              */
#define AT_DICTVALUES_VALUES           0   /* PyObject *values[]        */
#define AT_OBJECT_MANAGED_DICT         (-24)
#define AT_OBJECT_MANAGED_VALUES       (-32)

/* What the shim's import recorder reads (profile function, frames,
 * builtin functions).  preload/imports.h and preload/gil.h define these
 * too, with the same tokens (so both definitions are the same macro to
 * the compiler); their copies can go once the shim takes its layout from
 * here.  Same suffixes in py312.h and py313.h. */
#define AT_TSTATE_TRACING        44
#define AT_TSTATE_C_PROFILEFUNC  64
#define AT_TSTATE_C_TRACEFUNC    72
#define AT_TSTATE_C_PROFILEOBJ   80
#define AT_CFRAME_USE_TRACING    0
#define AT_FRAMEOBJ_F_FRAME      24
#define AT_IFRAME_GLOBALS        8
#define AT_IFRAME_LOCALSPLUS     72
#define AT_CFUNC_M_ML            16
#define AT_CFUNC_M_SELF          24
#define AT_TPFLAGS_TYPE_SUBCLASS (1UL << 31)
#define AT_UNICODE_COMPACT_ASCII 0x60

/* What `dump --locals` reads: a code object's variables, and the values
 * of the builtin types it shows (tuple/list items, float, cell, set, dict
 * size).  The CO_* numbers are code flags and localsplus kinds. */
#define AT_CODE_ARGCOUNT               56    /* int: positional args, posonly included */
#define AT_CODE_KWONLYARGCOUNT         64    /* int                       */
#define AT_CODE_FLAGS                  48    /* int: CO_VARARGS, ...      */
#define AT_CODE_LOCALSPLUSNAMES        96    /* tuple of str              */
#define AT_CODE_LOCALSPLUSKINDS        104   /* bytes: a CO_FAST_* each   */
#define AT_CO_VARARGS                  4     /* *args after the kw-only args */
#define AT_CO_VARKEYWORDS              8     /* **kwargs after *args      */
#define AT_CO_FAST_LOCAL               0x20
#define AT_CO_FAST_CELL                0x40  /* slot holds a cell (after MAKE_CELL) */
#define AT_CO_FAST_FREE                0x80  /* a cell copied from the closure */
#define AT_TUPLE_ITEMS                 24    /* PyObject *ob_item[]       */
#define AT_LIST_ITEMS                  24    /* PyObject **ob_item        */
#define AT_FLOAT_FVAL                  16    /* double                    */
#define AT_CELL_REF                    16    /* PyObject *, NULL = empty  */
#define AT_SET_USED                    24    /* Py_ssize_t: active keys   */
#define AT_SET_MASK                    32    /* Py_ssize_t: table size - 1 */
#define AT_SET_TABLE                   40    /* setentry *                */
#define AT_SIZEOF_SETENTRY             16    /* (key, hash)               */
#define AT_DICT_USED                   16    /* Py_ssize_t ma_used        */

/* Walkers share one limit so a corrupt or cyclic chain always ends. */
#define AT_MAX_STACK_DEPTH             256
#define AT_MAX_THREADS                 512
#define AT_MAX_INTERPRETERS            16

/* What `dump --asyncio` reads: coroutines and generators (cpython/genobject.h,
 * pycore_frame.h's frame states), weak references (the tasks of
 * asyncio.tasks' WeakSet) and a type's base (a Task subclass). */
#define AT_GEN_IFRAME                80    /* _PyInterpreterFrame, embedded */
#define AT_GEN_FRAME_STATE           75    /* int8: FRAME_CREATED ... CLEARED */
#define AT_FRAME_CREATED             -2    /* not started: line co_firstlineno */
#define AT_FRAME_SUSPENDED           -1    /* at a yield (or await, before 3.13) */
#define AT_FRAME_COMPLETED           1     /* returned or raised: no frame to show */
#define AT_WEAKREF_OBJECT            16    /* PyWeakReference.wr_object, None when dead */
#define AT_TYPE_BASE                 256   /* PyTypeObject.tp_base      */
#define AT_TYPE_DICT                 264   /* PyTypeObject.tp_dict (a heap type's) */
#define AT_MEMBERDESCR_MEMBER        40    /* PyMemberDescrObject.d_member: a __slots__ slot's */
#define AT_MEMBERDEF_OFFSET          16    /* PyMemberDef.offset: where the slot is in the object */

/* The C Task of the _asyncio module: TaskObj, which opens with
 * FutureObj_HEAD, in Modules/_asynciomodule.c.  No installed header has
 * it, and the source index at hand holds only CPython's main branch (whose
 * TaskObj has moved on), so these offsets were found on live tasks of
 * 3.11.2 and 3.11.7: a probe looks for each field by the object it must hold
 * (id(loop), id(coro), id(name), the awaited future, _source_traceback;
 * the state by a pending, a done and a cancelled task).  tests/test_asyncio.c
 * repeats that probe on every interpreter.  sizeof(TaskObj) = 176. */
#define AT_TASK_LOOP                 16    /* PyObject *task_loop       */
#define AT_TASK_SOURCE_TB            72    /* task_source_tb: a list of FrameSummary, or NULL/None */
#define AT_TASK_STATE                88    /* fut_state: PENDING, CANCELLED, FINISHED */
#define AT_TASK_FUT_WAITER           128   /* the future it waits for, or NULL */
#define AT_TASK_CORO                 136   /* the coroutine it drives  */
#define AT_TASK_NAME                 144   /* str (3.13: an int N until get_name: "Task-N") */
#define AT_TASK_READ                 176   /* bytes read of a task: sizeof(TaskObj) */
#define AT_FUT_STATE_PENDING         0
#define AT_FUT_STATE_CANCELLED       1
#define AT_FUT_STATE_FINISHED        2

#endif
