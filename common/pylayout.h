/* SPDX-License-Identifier: MIT */
/* pylayout.h - one table of CPython internal offsets per minor version
 * (3.11, 3.12, 3.13), to be chosen once per target.
 *
 * Design: py311.h, py312.h and py313.h stay the ground truth, plain
 * macros each checked against its own version's headers by
 * tests/test_py3XX.c (and usable from BPF code).  pylayout.c turns them
 * into three values of at_pylayout_t, name by name (AT_X, AT312_X and
 * AT313_X fill field x), so a reader that serves several versions says
 * `L->tstate_next` where it says AT_TSTATE_NEXT today, and nothing is
 * typed twice.  A fact a version does not have is AT_PYLAYOUT_NONE; a
 * reader tests for it where versions differ (the frame pointer of a
 * thread: tstate_cframe then cframe_current_frame, or
 * tstate_current_frame; the GIL: rt_gil, or interp_ceval_gil).  Pure
 * data: nothing here reads a process.
 *
 * Picking a table at attach: the version is Py_Version (an exported
 * `const unsigned long` = PY_VERSION_HEX, 3.11+) read from the target, or
 * parsed from the libpython / executable name, then at_pylayout_find_hex.
 * From 3.13 the target also carries _Py_DebugOffsets at _PyRuntime + 0:
 * read AT313_SIZEOF_DEBUG_OFFSETS bytes there and pass them to
 * at_pylayout_apply_debug, which validates them (untrusted memory) and
 * takes the offsets they give over the table's.  tracer/remote/ reads
 * every target through it (py_proc.c chooses the table; the frame walk,
 * thread names, strings and `top` take its fields), and so does the
 * preload shim (preload/pyversion.h), and the BPF probes get theirs
 * from it before load (tracer/bpf/bpf_layout.c).
 */
#ifndef AT_PYLAYOUT_H
#define AT_PYLAYOUT_H
#include <stddef.h>
#include <stdint.h>

#define AT_PYLAYOUT_NONE (-1) /* this version has no such field */

/* How an instance keeps its attributes (Py_TPFLAGS_MANAGED_DICT types). */
typedef enum at_pydict_mode {
    AT_PYDICT_PRE_VALUES_DICT = 1, /* 3.11: values at obj-4 words, dict at obj-3 */
    AT_PYDICT_TAGGED,              /* 3.12: one word at obj-3: dict, or values-1 (low bit) */
    AT_PYDICT_INLINE,              /* 3.13: dict at obj-3; values after the header */
} at_pydict_mode_t;

typedef struct at_pylayout {
    int major, minor;            /* 3, 12                               */
    const char *name;            /* "3.12"                              */
    at_pydict_mode_t dict_mode;

    /* _PyRuntimeState */
    int32_t rt_interpreters_head;
    int32_t rt_interpreters_main;
    int32_t rt_audit_hook_head;  /* _Py_AuditHookEntry *                 */
    int32_t rt_main_interpreter; /* the embedded main PyInterpreterState */
    int32_t rt_gilstate_tstate_current; /* 3.11 only (then thread-local)  */
    int32_t rt_debug_offsets;    /* 3.13+: _Py_DebugOffsets             */
    int32_t rt_tracemalloc_tracing; /* 3.12+: int; 3.11 has its own global
                                  * _Py_tracemalloc_config instead        */

    /* Where the GIL is: in _PyRuntime (3.11), or through a pointer in
     * the interpreter (3.12+); its fields relative to the struct. */
    int32_t rt_gil;              /* 3.11: struct _gil_runtime_state     */
    int32_t interp_ceval_gil;    /* 3.12+: struct _gil_runtime_state *  */
    int32_t interp_ceval_own_gil;/* 3.12+: int                          */
    int32_t interp_gil;          /* 3.12+: the interpreter's own GIL    */
    int32_t interp_audit_hooks;  /* 3.12+: sys.addaudithook's list (the
                                  * shim hides it around its own calls
                                  * that raise events; 3.11 needs not)   */
    int32_t gil_last_holder, gil_locked, gil_switch_number;
    int32_t gil_cond, gil_mutex, gil_switch_cond, gil_switch_mutex;

    /* _Py_AuditHookEntry */
    int32_t audit_entry_next, audit_entry_hook;

    /* PyInterpreterState */
    int32_t interp_next, interp_id, interp_tstate_head, interp_runtime;
    int32_t interp_gc_generation_stats;
    int32_t sizeof_gc_generation_stats; /* one generation's {collections,
                                  * collected, uncollectable}            */
    int32_t interp_modules;      /* sys.modules                         */

    /* PyThreadState and how to get to its frame */
    int32_t tstate_prev, tstate_next, tstate_interp;
    int32_t tstate_thread_id, tstate_native_thread_id, tstate_id;
    int32_t tstate_tracing, tstate_c_profilefunc, tstate_c_tracefunc, tstate_c_profileobj;
    int32_t tstate_cframe;       /* 3.11, 3.12: _PyCFrame *             */
    int32_t cframe_current_frame;/* 3.11, 3.12                          */
    int32_t cframe_use_tracing;  /* 3.11 only                           */
    int32_t tstate_current_frame;/* 3.13+: _PyInterpreterFrame *        */
    int32_t tstate_status;       /* 3.13+: _status bit field word       */
    uint32_t tstate_status_holds_gil; /* 3.13+: its holds_gil bit, else 0 */

    /* _PyInterpreterFrame */
    int32_t iframe_code;         /* f_code; 3.13 f_executable (check it is code) */
    int32_t iframe_instr;        /* prev_instr; 3.13 instr_ptr: either way
                                  * (ptr - code_code_adaptive) / sizeof
                                  * code unit is the index whose line is shown */
    int32_t iframe_previous, iframe_globals, iframe_stacktop, iframe_owner, iframe_localsplus;
    int32_t iframe_is_entry;     /* 3.11 only (later: owner CSTACK)      */
    int32_t frame_owned_by_generator;
    int32_t frame_owned_by_cstack; /* 3.12+: an entry frame without code  */
    int32_t frameobj_f_frame, cfunc_m_ml, cfunc_m_self;

    /* PyCodeObject */
    int32_t code_firstlineno, code_nlocalsplus, code_filename, code_name, code_qualname;
    int32_t code_linetable, code_firsttraceable, code_code_adaptive, sizeof_codeunit;

    /* objects: type names, str, bytes, int, modules */
    int32_t object_type, var_size, type_name, type_flags, bytes_sval;
    int32_t unicode_length, unicode_state, unicode_compact_ascii;
    int32_t sizeof_pyasciiobject, sizeof_pycompactunicodeobject;
    int32_t unicode_utf8;        /* char *: a compact non-ASCII str's UTF-8 */
    int32_t heaptype_cached_keys, module_dict;
    int32_t long_digits, long_shift;
    int32_t long_lv_tag;         /* 3.12+; 3.11 keeps size and sign in var_size */
    int32_t long_non_size_bits, long_sign_mask; /* 3.12+                 */
    uint64_t tpflags_managed_dict, tpflags_type_subclass;
    uint64_t tpflags_inline_values; /* 3.13+, else 0                     */

    /* dicts and managed instance dicts (see dict_mode) */
    int32_t dict_keys, dict_values;
    int32_t dictkeys_log2_index_bytes, dictkeys_kind, dictkeys_nentries, dictkeys_indices;
    int32_t dict_keys_general, sizeof_dict_key_entry, sizeof_dict_unicode_entry;
    int32_t dictvalues_values;
    int32_t dictvalues_valid;    /* 3.13+: uint8, the inline values are current */
    int32_t object_managed_dict;
    int32_t object_managed_values; /* 3.11 only                          */
    int32_t object_inline_values;  /* 3.13+                              */
    int32_t dorv_values_bit;       /* 3.12 only                          */

    /* a frame's variables and the values `dump --locals` shows */
    int32_t code_argcount, code_kwonlyargcount, code_flags;
    int32_t code_localsplusnames;  /* tuple of str, co_nlocalsplus long   */
    int32_t code_localspluskinds;  /* bytes: one CO_FAST_* kind per name  */
    int32_t co_varargs, co_varkeywords; /* co_flags bits                 */
    int32_t co_fast_local, co_fast_cell, co_fast_free;
    int32_t co_fast_hidden;        /* 3.12+, else 0 (no such kind)       */
    int32_t tuple_items, list_items, float_fval, cell_ref, dict_used;
    int32_t set_used, set_mask, set_table, sizeof_setentry;

    /* asyncio tasks and the coroutines they drive (`dump --asyncio`) */
    int32_t gen_iframe, gen_frame_state; /* PyGenObject / PyCoroObject   */
    int32_t frame_created, frame_suspended, frame_completed; /* gi_frame_state */
    int32_t frame_suspended_yield_from; /* 3.13+ (-1, so AT_PYLAYOUT_NONE
                                  * cannot say it is absent: see below)  */
    int32_t has_yield_from_state;/* 1 from 3.13; before, the next
                                  * instruction's RESUME oparg tells an
                                  * await from a yield                  */
    int32_t weakref_object, type_base;
    int32_t type_dict, memberdescr_member, memberdef_offset; /* a __slots__ slot's offset */
    int32_t task_loop, task_source_tb, task_state, task_fut_waiter, task_coro, task_name;
    int32_t task_read;           /* sizeof(TaskObj)                     */
    int32_t fut_state_pending, fut_state_cancelled, fut_state_finished;
} at_pylayout_t;

/* The table of CPython major.minor, or NULL (errno ENOENT) for a version
 * archtrace has none for. */
const at_pylayout_t *at_pylayout_find(int major, int minor);

/* The same from a PY_VERSION_HEX value (the target's Py_Version). */
const at_pylayout_t *at_pylayout_find_hex(uint64_t py_version_hex);

/* Every table, oldest first; *n set to how many. */
const at_pylayout_t *at_pylayout_all(size_t *n);

/* Check `len` bytes copied from a target's _PyRuntime.debug_offsets and
 * put into *out the table `base` with every offset they give in its
 * place.  Returns how many of those differ from base (0 on a build that
 * matches the table), -EINVAL when base has no debug offsets (before
 * 3.13) or len is short, -EPROTO when the cookie, the version or an
 * offset is wrong (past the struct it is in), -EOPNOTSUPP for a
 * free-threaded build.  *out is written only on success. */
int at_pylayout_apply_debug(const at_pylayout_t *base, const void *dbg, size_t len,
                            at_pylayout_t *out);

#endif
