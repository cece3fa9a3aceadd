/* SPDX-License-Identifier: MIT */
/* pylayout.c - the per-version layout tables, filled from py311.h,
 * py312.h and py313.h (see pylayout.h). */
#include "pylayout.h"

#include <errno.h>
#include <string.h>

#include "py311.h"
#include "py312.h"
#include "py313.h"

#define NONE AT_PYLAYOUT_NONE

/* What `dump --locals` reads, the same names in every version. */
#define LOCALS_FIELDS(P)                                                                   \
    .code_argcount = P##CODE_ARGCOUNT, .code_kwonlyargcount = P##CODE_KWONLYARGCOUNT,      \
    .code_flags = P##CODE_FLAGS, .code_localsplusnames = P##CODE_LOCALSPLUSNAMES,          \
    .code_localspluskinds = P##CODE_LOCALSPLUSKINDS, .co_varargs = P##CO_VARARGS,          \
    .co_varkeywords = P##CO_VARKEYWORDS, .co_fast_local = P##CO_FAST_LOCAL,                \
    .co_fast_cell = P##CO_FAST_CELL, .co_fast_free = P##CO_FAST_FREE,                      \
    .tuple_items = P##TUPLE_ITEMS, .list_items = P##LIST_ITEMS,                            \
    .float_fval = P##FLOAT_FVAL, .cell_ref = P##CELL_REF, .dict_used = P##DICT_USED,       \
    .set_used = P##SET_USED, .set_mask = P##SET_MASK, .set_table = P##SET_TABLE,           \
    .sizeof_setentry = P##SIZEOF_SETENTRY

/* What `dump --asyncio` reads (the task's offsets come from live tasks:
 * see the py31x.h comments). */
#define ASYNCIO_FIELDS(P)                                                                  \
    .gen_iframe = P##GEN_IFRAME, .gen_frame_state = P##GEN_FRAME_STATE,                    \
    .frame_created = P##FRAME_CREATED, .frame_suspended = P##FRAME_SUSPENDED,              \
    .frame_completed = P##FRAME_COMPLETED, .weakref_object = P##WEAKREF_OBJECT,            \
    .type_base = P##TYPE_BASE, .type_dict = P##TYPE_DICT,                                  \
    .memberdescr_member = P##MEMBERDESCR_MEMBER, .memberdef_offset = P##MEMBERDEF_OFFSET,  \
    .task_loop = P##TASK_LOOP,                                                             \
    .task_source_tb = P##TASK_SOURCE_TB, .task_state = P##TASK_STATE,                      \
    .task_fut_waiter = P##TASK_FUT_WAITER, .task_coro = P##TASK_CORO,                      \
    .task_name = P##TASK_NAME, .task_read = P##TASK_READ,                                  \
    .fut_state_pending = P##FUT_STATE_PENDING, .fut_state_cancelled = P##FUT_STATE_CANCELLED, \
    .fut_state_finished = P##FUT_STATE_FINISHED

/* The facts every version has under the same suffix: P is the prefix,
 * AT_ (py311.h), AT312_ or AT313_. */
#define COMMON_FIELDS(P)                                                                   \
    .rt_interpreters_head = P##RT_INTERPRETERS_HEAD,                                       \
    .rt_interpreters_main = P##RT_INTERPRETERS_MAIN,                                       \
    .rt_audit_hook_head = P##RT_AUDIT_HOOK_HEAD,                                           \
    .rt_main_interpreter = P##RT_MAIN_INTERPRETER,                                         \
    .audit_entry_next = P##AUDIT_ENTRY_NEXT,                                               \
    .audit_entry_hook = P##AUDIT_ENTRY_HOOK,                                               \
    .interp_next = P##INTERP_NEXT,                                                         \
    .interp_id = P##INTERP_ID,                                                             \
    .interp_tstate_head = P##INTERP_TSTATE_HEAD,                                           \
    .interp_runtime = P##INTERP_RUNTIME,                                                   \
    .interp_gc_generation_stats = P##INTERP_GC_GENERATION_STATS,                           \
    .sizeof_gc_generation_stats = P##SIZEOF_GC_GENERATION_STATS,                           \
    .interp_modules = P##INTERP_MODULES,                                                   \
    .tstate_prev = P##TSTATE_PREV,                                                         \
    .tstate_next = P##TSTATE_NEXT,                                                         \
    .tstate_interp = P##TSTATE_INTERP,                                                     \
    .tstate_thread_id = P##TSTATE_THREAD_ID,                                               \
    .tstate_native_thread_id = P##TSTATE_NATIVE_THREAD_ID,                                 \
    .tstate_id = P##TSTATE_ID,                                                             \
    .tstate_tracing = P##TSTATE_TRACING,                                                   \
    .tstate_c_profilefunc = P##TSTATE_C_PROFILEFUNC,                                       \
    .tstate_c_tracefunc = P##TSTATE_C_TRACEFUNC,                                           \
    .tstate_c_profileobj = P##TSTATE_C_PROFILEOBJ,                                         \
    .iframe_previous = P##IFRAME_PREVIOUS,                                                 \
    .iframe_globals = P##IFRAME_GLOBALS,                                                   \
    .iframe_stacktop = P##IFRAME_STACKTOP,                                                 \
    .iframe_owner = P##IFRAME_OWNER,                                                       \
    .iframe_localsplus = P##IFRAME_LOCALSPLUS,                                             \
    .frame_owned_by_generator = P##FRAME_OWNED_BY_GENERATOR,                               \
    .frameobj_f_frame = P##FRAMEOBJ_F_FRAME,                                               \
    .cfunc_m_ml = P##CFUNC_M_ML,                                                           \
    .cfunc_m_self = P##CFUNC_M_SELF,                                                       \
    .code_firstlineno = P##CODE_FIRSTLINENO,                                               \
    .code_nlocalsplus = P##CODE_NLOCALSPLUS,                                               \
    .code_filename = P##CODE_FILENAME,                                                     \
    .code_name = P##CODE_NAME,                                                             \
    .code_qualname = P##CODE_QUALNAME,                                                     \
    .code_linetable = P##CODE_LINETABLE,                                                   \
    .code_firsttraceable = P##CODE_FIRSTTRACEABLE,                                         \
    .code_code_adaptive = P##CODE_CODE_ADAPTIVE,                                           \
    .sizeof_codeunit = P##SIZEOF_CODEUNIT,                                                 \
    .object_type = P##OBJECT_TYPE,                                                         \
    .var_size = P##VAR_SIZE,                                                               \
    .type_name = P##TYPE_NAME,                                                             \
    .type_flags = P##TYPE_FLAGS,                                                           \
    .bytes_sval = P##BYTES_SVAL,                                                           \
    .unicode_length = P##UNICODE_LENGTH,                                                   \
    .unicode_state = P##UNICODE_STATE,                                                     \
    .unicode_compact_ascii = P##UNICODE_COMPACT_ASCII,                                     \
    .sizeof_pyasciiobject = P##SIZEOF_PYASCIIOBJECT,                                       \
    .sizeof_pycompactunicodeobject = P##SIZEOF_PYCOMPACTUNICODEOBJECT,                     \
    .unicode_utf8 = P##UNICODE_UTF8,                                                       \
    .heaptype_cached_keys = P##HEAPTYPE_CACHED_KEYS,                                       \
    .module_dict = P##MODULE_DICT,                                                         \
    .long_digits = P##LONG_DIGITS,                                                         \
    .long_shift = P##LONG_SHIFT,                                                           \
    .tpflags_managed_dict = P##TPFLAGS_MANAGED_DICT,                                       \
    .tpflags_type_subclass = P##TPFLAGS_TYPE_SUBCLASS,                                     \
    .dict_keys = P##DICT_KEYS,                                                             \
    .dict_values = P##DICT_VALUES,                                                         \
    .dictkeys_log2_index_bytes = P##DICTKEYS_LOG2_INDEX_BYTES,                             \
    .dictkeys_kind = P##DICTKEYS_KIND,                                                     \
    .dictkeys_nentries = P##DICTKEYS_NENTRIES,                                             \
    .dictkeys_indices = P##DICTKEYS_INDICES,                                               \
    .dict_keys_general = P##DICT_KEYS_GENERAL,                                             \
    .sizeof_dict_key_entry = P##SIZEOF_DICT_KEY_ENTRY,                                     \
    .sizeof_dict_unicode_entry = P##SIZEOF_DICT_UNICODE_ENTRY,                             \
    .dictvalues_values = P##DICTVALUES_VALUES,                                             \
    .object_managed_dict = P##OBJECT_MANAGED_DICT,                                         \
    LOCALS_FIELDS(P),                                                                      \
    ASYNCIO_FIELDS(P)

/* The GIL's fields inside struct _gil_runtime_state (3.12+; py311.h
 * gives them inside _PyRuntime, so 3.11 subtracts AT_RT_GIL). */
#define GIL_FIELDS(P)                                                                      \
    .gil_last_holder = P##GIL_LAST_HOLDER, .gil_locked = P##GIL_LOCKED,                    \
    .gil_switch_number = P##GIL_SWITCH_NUMBER, .gil_cond = P##GIL_COND,                    \
    .gil_mutex = P##GIL_MUTEX, .gil_switch_cond = P##GIL_SWITCH_COND,                      \
    .gil_switch_mutex = P##GIL_SWITCH_MUTEX

/* 3.12 and 3.13 keep ints the same way */
#define LV_TAG_FIELDS(P)                                                                   \
    .long_lv_tag = P##LONG_LV_TAG, .long_non_size_bits = P##LONG_NON_SIZE_BITS,            \
    .long_sign_mask = P##LONG_SIGN_MASK

static const at_pylayout_t layouts[] = {
    {
        .major = 3, .minor = 11, .name = "3.11", .dict_mode = AT_PYDICT_PRE_VALUES_DICT,
        COMMON_FIELDS(AT_),
        .rt_gilstate_tstate_current = AT_RT_GILSTATE_TSTATE_CURRENT,
        .rt_debug_offsets = NONE,
        .rt_tracemalloc_tracing = NONE,
        .rt_gil = AT_RT_GIL,
        .interp_ceval_gil = NONE, .interp_ceval_own_gil = NONE, .interp_gil = NONE,
        .interp_audit_hooks = NONE,
        .gil_last_holder = AT_RT_GIL_LAST_HOLDER - AT_RT_GIL,
        .gil_locked = AT_RT_GIL_LOCKED - AT_RT_GIL,
        .gil_switch_number = AT_RT_GIL_SWITCH_NUMBER - AT_RT_GIL,
        .gil_cond = AT_RT_GIL_COND - AT_RT_GIL,
        .gil_mutex = AT_RT_GIL_MUTEX - AT_RT_GIL,
        .gil_switch_cond = AT_RT_GIL_SWITCH_COND - AT_RT_GIL,
        .gil_switch_mutex = AT_RT_GIL_SWITCH_MUTEX - AT_RT_GIL,
        .tstate_cframe = AT_TSTATE_CFRAME,
        .cframe_current_frame = AT_CFRAME_CURRENT_FRAME,
        .cframe_use_tracing = AT_CFRAME_USE_TRACING,
        .tstate_current_frame = NONE,
        .tstate_status = NONE, .tstate_status_holds_gil = 0,
        .iframe_code = AT_IFRAME_CODE,
        .iframe_instr = AT_IFRAME_PREV_INSTR,
        .iframe_is_entry = AT_IFRAME_IS_ENTRY,
        .frame_owned_by_cstack = NONE,
        .long_lv_tag = NONE, .long_non_size_bits = NONE, .long_sign_mask = NONE,
        .tpflags_inline_values = 0,
        .dictvalues_valid = NONE,
        .object_managed_values = AT_OBJECT_MANAGED_VALUES,
        .object_inline_values = NONE,
        .dorv_values_bit = NONE,
        .co_fast_hidden = 0,
        .frame_suspended_yield_from = NONE, .has_yield_from_state = 0,
    },
    {
        .major = 3, .minor = 12, .name = "3.12", .dict_mode = AT_PYDICT_TAGGED,
        COMMON_FIELDS(AT312_),
        GIL_FIELDS(AT312_),
        LV_TAG_FIELDS(AT312_),
        .rt_gilstate_tstate_current = NONE,
        .rt_debug_offsets = NONE,
        .rt_tracemalloc_tracing = AT312_RT_TRACEMALLOC_TRACING,
        .rt_gil = NONE,
        .interp_ceval_gil = AT312_INTERP_CEVAL_GIL,
        .interp_ceval_own_gil = AT312_INTERP_CEVAL_OWN_GIL,
        .interp_gil = AT312_INTERP_GIL,
        .interp_audit_hooks = AT312_INTERP_AUDIT_HOOKS,
        .tstate_cframe = AT312_TSTATE_CFRAME,
        .cframe_current_frame = AT312_CFRAME_CURRENT_FRAME,
        .cframe_use_tracing = NONE,
        .tstate_current_frame = NONE,
        .tstate_status = NONE, .tstate_status_holds_gil = 0,
        .iframe_code = AT312_IFRAME_CODE,
        .iframe_instr = AT312_IFRAME_PREV_INSTR,
        .iframe_is_entry = NONE,
        .frame_owned_by_cstack = AT312_FRAME_OWNED_BY_CSTACK,
        .tpflags_inline_values = 0,
        .dictvalues_valid = NONE,
        .object_managed_values = NONE,
        .object_inline_values = NONE,
        .dorv_values_bit = AT312_DORV_VALUES_BIT,
        .co_fast_hidden = AT312_CO_FAST_HIDDEN,
        .frame_suspended_yield_from = NONE, .has_yield_from_state = 0,
    },
    {
        .major = 3, .minor = 13, .name = "3.13", .dict_mode = AT_PYDICT_INLINE,
        COMMON_FIELDS(AT313_),
        GIL_FIELDS(AT313_),
        LV_TAG_FIELDS(AT313_),
        .rt_gilstate_tstate_current = NONE,
        .rt_debug_offsets = AT313_RT_DEBUG_OFFSETS,
        .rt_tracemalloc_tracing = AT313_RT_TRACEMALLOC_TRACING,
        .rt_gil = NONE,
        .interp_ceval_gil = AT313_INTERP_CEVAL_GIL,
        .interp_ceval_own_gil = AT313_INTERP_CEVAL_OWN_GIL,
        .interp_gil = AT313_INTERP_GIL,
        .interp_audit_hooks = AT313_INTERP_AUDIT_HOOKS,
        .tstate_cframe = NONE,
        .cframe_current_frame = NONE,
        .cframe_use_tracing = NONE,
        .tstate_current_frame = AT313_TSTATE_CURRENT_FRAME,
        .tstate_status = AT313_TSTATE_STATUS,
        .tstate_status_holds_gil = AT313_TSTATE_STATUS_HOLDS_GIL,
        .iframe_code = AT313_IFRAME_EXECUTABLE,
        .iframe_instr = AT313_IFRAME_INSTR_PTR,
        .iframe_is_entry = NONE,
        .frame_owned_by_cstack = AT313_FRAME_OWNED_BY_CSTACK,
        .tpflags_inline_values = AT313_TPFLAGS_INLINE_VALUES,
        .dictvalues_valid = AT313_DICTVALUES_VALID,
        .object_managed_values = NONE,
        .object_inline_values = AT313_OBJECT_INLINE_VALUES,
        .dorv_values_bit = NONE,
        .co_fast_hidden = AT313_CO_FAST_HIDDEN,
        .frame_suspended_yield_from = AT313_FRAME_SUSPENDED_YIELD_FROM, .has_yield_from_state = 1,
    },
};
#define N_LAYOUTS (sizeof layouts / sizeof layouts[0])

const at_pylayout_t *at_pylayout_all(size_t *n)
{
    *n = N_LAYOUTS;
    return layouts;
}

const at_pylayout_t *at_pylayout_find(int major, int minor)
{
    for (size_t i = 0; i < N_LAYOUTS; i++)
        if (layouts[i].major == major && layouts[i].minor == minor)
            return &layouts[i];
    errno = ENOENT;
    return NULL;
}

const at_pylayout_t *at_pylayout_find_hex(uint64_t py_version_hex)
{
    return at_pylayout_find((int)(py_version_hex >> 24 & 0xff), (int)(py_version_hex >> 16 & 0xff));
}

/* ---- _Py_DebugOffsets ---------------------------------------------------- */

/* Largest struct size believed in a target's debug offsets: far above
 * any real one (PyInterpreterState is ~100 KiB in 3.13). */
#define MAX_STRUCT_SIZE (1u << 20)
#define GIL_STRUCT_SIZE (AT313_GIL_SWITCH_MUTEX + 40) /* sizeof(struct _gil_runtime_state) */

/* One offset _Py_DebugOffsets gives and the field it fills. */
typedef struct {
    uint16_t pos;      /* where the target keeps it (AT313_DBG_*)          */
    uint16_t size_pos; /* where it keeps the size of the struct it is in  */
    uint16_t width;    /* bytes read at the offset (it must fit the struct) */
    uint16_t minus;    /* 0, or the DBG_ position of an offset to subtract
                        * (the GIL's fields come as interp + _gil + field) */
    size_t field;      /* offsetof(at_pylayout_t, ...)                     */
} dbg_map_t;

#define F(f) offsetof(at_pylayout_t, f)
static const dbg_map_t dbg_map[] = {
    { AT313_DBG_RUNTIME_INTERPRETERS_HEAD, AT313_DBG_RUNTIME_SIZE, 8, 0, F(rt_interpreters_head) },
    { AT313_DBG_INTERP_ID, AT313_DBG_INTERP_SIZE, 8, 0, F(interp_id) },
    { AT313_DBG_INTERP_NEXT, AT313_DBG_INTERP_SIZE, 8, 0, F(interp_next) },
    { AT313_DBG_INTERP_THREADS_HEAD, AT313_DBG_INTERP_SIZE, 8, 0, F(interp_tstate_head) },
    { AT313_DBG_INTERP_IMPORTS_MODULES, AT313_DBG_INTERP_SIZE, 8, 0, F(interp_modules) },
    { AT313_DBG_INTERP_CEVAL_GIL, AT313_DBG_INTERP_SIZE, 8, 0, F(interp_ceval_gil) },
    { AT313_DBG_INTERP_GIL_RUNTIME_STATE, AT313_DBG_INTERP_SIZE, GIL_STRUCT_SIZE, 0, F(interp_gil) },
    { AT313_DBG_INTERP_GIL_LOCKED, AT313_DBG_INTERP_SIZE, 4, AT313_DBG_INTERP_GIL_RUNTIME_STATE,
      F(gil_locked) },
    { AT313_DBG_INTERP_GIL_HOLDER, AT313_DBG_INTERP_SIZE, 8, AT313_DBG_INTERP_GIL_RUNTIME_STATE,
      F(gil_last_holder) },
    { AT313_DBG_TSTATE_PREV, AT313_DBG_TSTATE_SIZE, 8, 0, F(tstate_prev) },
    { AT313_DBG_TSTATE_NEXT, AT313_DBG_TSTATE_SIZE, 8, 0, F(tstate_next) },
    { AT313_DBG_TSTATE_INTERP, AT313_DBG_TSTATE_SIZE, 8, 0, F(tstate_interp) },
    { AT313_DBG_TSTATE_CURRENT_FRAME, AT313_DBG_TSTATE_SIZE, 8, 0, F(tstate_current_frame) },
    { AT313_DBG_TSTATE_THREAD_ID, AT313_DBG_TSTATE_SIZE, 8, 0, F(tstate_thread_id) },
    { AT313_DBG_TSTATE_NATIVE_THREAD_ID, AT313_DBG_TSTATE_SIZE, 8, 0, F(tstate_native_thread_id) },
    { AT313_DBG_TSTATE_STATUS, AT313_DBG_TSTATE_SIZE, 4, 0, F(tstate_status) },
    { AT313_DBG_IFRAME_PREVIOUS, AT313_DBG_IFRAME_SIZE, 8, 0, F(iframe_previous) },
    { AT313_DBG_IFRAME_EXECUTABLE, AT313_DBG_IFRAME_SIZE, 8, 0, F(iframe_code) },
    { AT313_DBG_IFRAME_INSTR_PTR, AT313_DBG_IFRAME_SIZE, 8, 0, F(iframe_instr) },
    { AT313_DBG_IFRAME_LOCALSPLUS, AT313_DBG_IFRAME_SIZE, 8, 0, F(iframe_localsplus) },
    { AT313_DBG_IFRAME_OWNER, AT313_DBG_IFRAME_SIZE, 1, 0, F(iframe_owner) },
    { AT313_DBG_CODE_FILENAME, AT313_DBG_CODE_SIZE, 8, 0, F(code_filename) },
    { AT313_DBG_CODE_NAME, AT313_DBG_CODE_SIZE, 8, 0, F(code_name) },
    { AT313_DBG_CODE_QUALNAME, AT313_DBG_CODE_SIZE, 8, 0, F(code_qualname) },
    { AT313_DBG_CODE_LINETABLE, AT313_DBG_CODE_SIZE, 8, 0, F(code_linetable) },
    { AT313_DBG_CODE_FIRSTLINENO, AT313_DBG_CODE_SIZE, 4, 0, F(code_firstlineno) },
    { AT313_DBG_CODE_ARGCOUNT, AT313_DBG_CODE_SIZE, 4, 0, F(code_argcount) },
    { AT313_DBG_CODE_LOCALSPLUSNAMES, AT313_DBG_CODE_SIZE, 8, 0, F(code_localsplusnames) },
    { AT313_DBG_CODE_LOCALSPLUSKINDS, AT313_DBG_CODE_SIZE, 8, 0, F(code_localspluskinds) },
    { AT313_DBG_CODE_CODE_ADAPTIVE, AT313_DBG_CODE_SIZE, 1, 0, F(code_code_adaptive) },
    { AT313_DBG_OBJECT_TYPE, AT313_DBG_OBJECT_SIZE, 8, 0, F(object_type) },
    { AT313_DBG_TYPE_NAME, AT313_DBG_TYPE_SIZE, 8, 0, F(type_name) },
    { AT313_DBG_TYPE_FLAGS, AT313_DBG_TYPE_SIZE, 8, 0, F(type_flags) },
    { AT313_DBG_TUPLE_ITEMS, AT313_DBG_TUPLE_SIZE, 8, 0, F(tuple_items) },
    { AT313_DBG_LIST_ITEMS, AT313_DBG_LIST_SIZE, 8, 0, F(list_items) },
    { AT313_DBG_FLOAT_FVAL, AT313_DBG_FLOAT_SIZE, 8, 0, F(float_fval) },
    { AT313_DBG_DICT_KEYS, AT313_DBG_DICT_SIZE, 8, 0, F(dict_keys) },
    { AT313_DBG_DICT_VALUES, AT313_DBG_DICT_SIZE, 8, 0, F(dict_values) },
    { AT313_DBG_LONG_LV_TAG, AT313_DBG_LONG_SIZE, 8, 0, F(long_lv_tag) },
    { AT313_DBG_LONG_DIGITS, AT313_DBG_LONG_SIZE, 4, 0, F(long_digits) },
    { AT313_DBG_BYTES_SVAL, AT313_DBG_BYTES_SIZE, 1, 0, F(bytes_sval) },
    { AT313_DBG_UNICODE_STATE, AT313_DBG_UNICODE_SIZE, 4, 0, F(unicode_state) },
    { AT313_DBG_UNICODE_LENGTH, AT313_DBG_UNICODE_SIZE, 8, 0, F(unicode_length) },
    /* a size, not an offset: it must fit in the str object too */
    { AT313_DBG_UNICODE_ASCIIOBJECT_SIZE, AT313_DBG_UNICODE_SIZE, 0, 0, F(sizeof_pyasciiobject) },
};
#undef F
#define N_DBG_MAP (sizeof dbg_map / sizeof dbg_map[0])

_Static_assert(AT313_SIZEOF_DEBUG_OFFSETS <= 0xffff, "debug offsets fit dbg_map_t.pos");
_Static_assert(AT313_DBG_UNICODE_ASCIIOBJECT_SIZE + 8 <= AT313_SIZEOF_DEBUG_OFFSETS,
               "every DBG_ position is inside the struct");

static uint64_t get_u64(const unsigned char *p, size_t pos)
{
    uint64_t v;
    memcpy(&v, p + pos, sizeof v);
    return v;
}

int at_pylayout_apply_debug(const at_pylayout_t *base, const void *dbg, size_t len,
                            at_pylayout_t *out)
{
    const unsigned char *d = dbg;
    if (base->rt_debug_offsets == NONE || len < AT313_SIZEOF_DEBUG_OFFSETS)
        return -EINVAL;
    if (memcmp(d + AT313_DBG_COOKIE, AT313_DEBUG_COOKIE, 8) != 0)
        return -EPROTO;
    if (get_u64(d, AT313_DBG_FREE_THREADED) != 0)
        return -EOPNOTSUPP;
    uint64_t version = get_u64(d, AT313_DBG_VERSION);
    if ((version >> 24 & 0xff) != (uint64_t)base->major || (version >> 16 & 0xff) != (uint64_t)base->minor)
        return -EPROTO;
    at_pylayout_t l = *base;
    int differ = 0;
    for (size_t i = 0; i < N_DBG_MAP; i++) {
        const dbg_map_t *m = &dbg_map[i];
        uint64_t size = get_u64(d, m->size_pos), v = get_u64(d, m->pos);
        if (size > MAX_STRUCT_SIZE || v > size || m->width > size - v)
            return -EPROTO;
        if (m->minus) {
            uint64_t from = get_u64(d, m->minus);
            if (v < from || v - from > (uint64_t)(GIL_STRUCT_SIZE - m->width))
                return -EPROTO;
            v -= from;
        }
        int32_t *field = (int32_t *)((char *)&l + m->field);
        differ += *field != (int32_t)v;
        *field = (int32_t)v;
    }
    *out = l;
    return differ;
}
