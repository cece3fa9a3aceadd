/* SPDX-License-Identifier: MIT */
/* imports_window.c - watch one finder search (importlib's _find_spec) with
 * a profile function chained in front of the thread's own.
 *
 * Design: the window is open only while the original _find_spec runs on
 * this thread (a few dozen calls per import), never during module code.
 * Our function first forwards every event to the profile function that
 * was installed before (a user's sys.setprofile, cProfile, ...), with the
 * same object and arguments, then looks at the event:
 *   level 1  the _find_spec frame itself: remember it;
 *   level 2  a sys.meta_path finder's find_spec: read the finder from
 *            _find_spec's own local `finder` (exact even for static or
 *            C methods); the last one asked is the one that answered;
 *   deeper   find_spec calls inside that finder (PathFinder -> FileFinder,
 *            or a custom path hook's finder): the first to return a spec
 *            is the path entry finder.
 * On 3.11 the thread state is written directly (c_profilefunc and the
 * cached use_tracing flag, as _PyEval_SetProfile does), not through
 * PyEval_SetProfile: that would raise a `sys.setprofile` audit event the
 * program's own audit hooks could see, and even veto.  c_profileobj is
 * never touched, so sys.getprofile() keeps answering the program's object.
 * From 3.12 the legacy profile function is driven by sys.monitoring
 * (PEP 669), whose events _PyEval_SetProfile turns on and off; there is
 * no other way in, so there the window goes through it, passing the
 * program's own c_profileobj back (sys.getprofile() unchanged), with the
 * audit hooks unhooked for the call so that no hook of the program hears
 * the `sys.setprofile` event it raises (set_profile_unheard).
 */
#include <errno.h>
#include <string.h>
#include "imports.h"
#include "shim.h"

__thread at_imp_window_t *at_imp_cur_window;

/* The profile function that was in place when the newest window opened:
 * used if an event ever arrives with no window (never expected). */
static __thread at_tracefunc_t fallback_prev;

static PyObject *find_spec_code;    /* code object of the original _find_spec */
static int finder_index = -1;       /* its local `finder` in localsplus[]     */

/* ---- reading objects ------------------------------------------------- */

int at_imp_str_is(PyObject *s, const char *lit, size_t n)
{
    if (!s || at_imp_type_of(s) != at_imp_api.unicode_type)
        return 0;
    const char *p = (const char *)s;
    uint32_t state = *(const uint32_t *)(p + at_pyl.unicode_state);
    if ((state & (uint32_t)at_pyl.unicode_compact_ascii) != (uint32_t)at_pyl.unicode_compact_ascii)
        return 0;
    if (*(const at_py_ssize_t *)(p + at_pyl.unicode_length) != (at_py_ssize_t)n)
        return 0;
    return memcmp(p + at_pyl.sizeof_pyasciiobject, lit, n) == 0;
}

/* Same as at_imp_str_is but only compares the first n bytes. */
static int str_starts(PyObject *s, const char *lit, size_t n)
{
    if (!s || at_imp_type_of(s) != at_imp_api.unicode_type)
        return 0;
    const char *p = (const char *)s;
    uint32_t state = *(const uint32_t *)(p + at_pyl.unicode_state);
    if ((state & (uint32_t)at_pyl.unicode_compact_ascii) != (uint32_t)at_pyl.unicode_compact_ascii)
        return 0;
    if (*(const at_py_ssize_t *)(p + at_pyl.unicode_length) < (at_py_ssize_t)n)
        return 0;
    return memcmp(p + at_pyl.sizeof_pyasciiobject, lit, n) == 0;
}

static PyObject *code_field(PyObject *code, size_t off)
{
    return *(PyObject **)((char *)code + off);
}

/* The _PyInterpreterFrame and code object behind a PyFrameObject. */
static char *iframe_of(PyObject *frame, PyObject **code)
{
    char *f = frame ? *(char **)((char *)frame + at_pyl.frameobj_f_frame) : NULL;
    *code = f ? *(PyObject **)(f + at_pyl.iframe_code) : NULL;
    if (!*code || at_imp_type_of(*code) != at_imp_api.code_type)
        return NULL;
    return f;
}

static PyObject *local_at(char *iframe, int index)
{
    return *(PyObject **)(iframe + at_pyl.iframe_localsplus + (size_t)index * sizeof(PyObject *));
}

/* importlib's own helpers called from _find_spec (_ImportLockContext's
 * __enter__/__exit__) live in the frozen bootstrap; a finder's find_spec
 * may too (BuiltinImporter, FrozenImporter), so those go by name. */
static int is_finder_call(PyObject *code)
{
    PyObject *name = code_field(code, (size_t)at_pyl.code_name);
    if (at_imp_str_is(name, "find_spec", 9) || at_imp_str_is(name, "_find_spec_legacy", 17))
        return 1;
    return !str_starts(code_field(code, (size_t)at_pyl.code_filename), "<frozen importlib._bootstrap", 28);
}

static const char *cfunc_name(PyObject *f)
{
    PyObject *t = at_imp_type_of(f);
    if (t != at_imp_api.cfunction_type && t != at_imp_api.cmethod_type)
        return NULL;
    const char *const *ml = *(const char *const **)((char *)f + at_pyl.cfunc_m_ml);
    return ml ? ml[0] : NULL;
}

/* ---- what the window learns ----------------------------------------- */

static void drop(PyObject **slot)
{
    if (*slot) {
        at_py.Py_DecRef(*slot);
        *slot = NULL;
    }
}

static void keep(PyObject **slot, PyObject *o)
{
    drop(slot);
    if (o) {
        at_py.Py_IncRef(o);
        *slot = o;
    }
}

/* A new sys.meta_path finder is being asked: the previous one declined. */
static void meta_call(at_imp_window_t *w)
{
    PyObject *finder = local_at(w->find_frame, finder_index);
    if (!finder)
        return;
    w->n_asked++;
    if (w->last) {
        if (w->n_consulted < AT_IMP_MAX_CONSULTED)
            w->consulted[w->n_consulted++] = w->last;   /* the ref moves */
        else
            at_py.Py_DecRef(w->last);
        w->last = NULL;
    }
    keep(&w->last, finder);
    drop(&w->path_finder);
    drop(&w->c_path_finder);
    w->n_nested = 0;
    w->meta_open = 1;
}

static void on_call(at_imp_window_t *w, PyObject *frame)
{
    PyObject *code;
    char *f = iframe_of(frame, &code);
    if (!f)
        return;
    if (w->level == 1) {
        w->find_frame = code == find_spec_code ? f : NULL;
        return;
    }
    if (w->level == 2) {
        if (w->find_frame && is_finder_call(code))
            meta_call(w);
        return;
    }
    if (!w->meta_open || w->n_nested >= AT_IMP_NESTED_MAX)
        return;
    if (!at_imp_str_is(code_field(code, (size_t)at_pyl.code_name), "find_spec", 9))
        return;
    w->nested_level[w->n_nested] = w->level;
    w->nested_self[w->n_nested] = local_at(f, 0);
    w->n_nested++;
}

static void on_return(at_imp_window_t *w, PyObject *result)
{
    if (w->level == 2)
        w->meta_open = 0;
    if (!w->n_nested || w->nested_level[w->n_nested - 1] != w->level)
        return;
    PyObject *self = w->nested_self[--w->n_nested];
    if (result && result != at_imp_api.none && self && !w->path_finder)
        keep(&w->path_finder, self);
}

static void on_c_call(at_imp_window_t *w, PyObject *func)
{
    const char *name = cfunc_name(func);
    if (!name || strcmp(name, "find_spec") != 0)
        return;
    if (w->level == 2 && w->find_frame) {
        meta_call(w);
    } else if (w->level > 2 && w->meta_open && !w->path_finder && !w->c_path_finder) {
        /* its result is not reported for C functions: a candidate only */
        keep(&w->c_path_finder, *(PyObject **)((char *)func + at_pyl.cfunc_m_self));
    }
}

static void observe(at_imp_window_t *w, PyObject *frame, int what, PyObject *arg)
{
    w->events++;
    switch (what) {
    case AT_TRACE_CALL:
        w->level++;
        on_call(w, frame);
        break;
    case AT_TRACE_RETURN:
        on_return(w, arg);
        w->level -= w->level > 0;
        break;
    case AT_TRACE_C_CALL:
        w->level++;
        on_c_call(w, arg);
        break;
    case AT_TRACE_C_RETURN:
    case AT_TRACE_C_EXCEPTION:
        w->level -= w->level > 0;
        break;
    default:
        break;
    }
}

/* Chained profile function: the previous one first, unchanged, then us.
 * Its return value is the previous one's, so a failing user profiler
 * fails exactly as it would without archtrace. */
static int window_profile(PyObject *obj, PyObject *frame, int what, PyObject *arg)
{
    at_imp_window_t *w = at_imp_cur_window;
    at_tracefunc_t prev = w ? w->prev_func : fallback_prev;
    int rc = prev ? prev(obj, frame, what, arg) : 0;
    if (w && w->open && !w->suspended)
        observe(w, frame, what, arg);
    return rc;
}

/* ---- the thread state ------------------------------------------------ */

static at_tracefunc_t *profilefunc_slot(char *ts)
{
    return (at_tracefunc_t *)(ts + at_pyl.tstate_c_profilefunc);
}

/* What _PyThreadState_UpdateTracingState does (3.11): the eval loop reads
 * the cached flag in the current _PyCFrame, not the function pointers. */
static void update_tracing(char *ts)
{
    char *cframe = *(char **)(ts + at_pyl.tstate_cframe);
    if (!cframe)
        return;
    int tracing = *(int *)(ts + at_pyl.tstate_tracing);
    int on = tracing == 0 && (*profilefunc_slot(ts) || *(void **)(ts + at_pyl.tstate_c_tracefunc));
    *(uint8_t *)(cframe + at_pyl.cframe_use_tracing) = on ? 255 : 0;
}

/* _PyEval_SetProfile with no audit hook to hear its `sys.setprofile`
 * event: the program's own hooks (sys.addaudithook's list in the
 * interpreter, PySys_AddAuditHook's in _PyRuntime) are unhooked around
 * the call and put back.  The GIL is ours throughout, and the call runs
 * no Python code (3.12+ collect garbage at the eval breaker, not inside
 * an allocation; the profile object we pass is the one already there),
 * so no other event can be raised meanwhile. */
static int set_profile_unheard(char *ts, at_tracefunc_t func, PyObject *obj)
{
    void **runtime_hooks = (void **)(at_shim.runtime + (uintptr_t)at_pyl.rt_audit_hook_head);
    char *interp = *(char **)(ts + at_pyl.tstate_interp);
    PyObject **interp_hooks = (PyObject **)(interp + at_pyl.interp_audit_hooks);
    void *saved_runtime = *runtime_hooks;
    PyObject *saved_interp = *interp_hooks;
    *runtime_hooks = NULL;
    *interp_hooks = NULL;
    int rc = at_imp_api.Eval_SetProfile(ts, func, obj);
    *runtime_hooks = saved_runtime;
    *interp_hooks = saved_interp;
    return rc;
}

/* Make func the thread's profile function: 3.11 in place, 3.12+ through
 * _PyEval_SetProfile (sys.monitoring drives the profile function there:
 * the fields alone do nothing) with the program's own profile object.  0,
 * or -1 when CPython refused (the error is cleared). */
static int set_profile(char *ts, at_tracefunc_t func)
{
    if (at_pyl.cframe_use_tracing != AT_PYLAYOUT_NONE) {
        *profilefunc_slot(ts) = func;
        update_tracing(ts);
        return 0;
    }
    PyObject *obj = *(PyObject **)(ts + at_pyl.tstate_c_profileobj);
    PyObject *t, *v, *tb;
    at_py.PyErr_Fetch(&t, &v, &tb);
    int rc = set_profile_unheard(ts, func, obj);
    if (rc < 0)
        at_py.PyErr_Clear();
    at_py.PyErr_Restore(t, v, tb);
    return rc < 0 ? -1 : 0;
}

static void install(at_imp_window_t *w)
{
    if (set_profile(w->tstate, window_profile) < 0)
        w->lost = 1;
}

/* Put the previous function back if ours is still the one installed;
 * if the program installed another meanwhile, its choice stands. */
static void uninstall(at_imp_window_t *w)
{
    if (*profilefunc_slot(w->tstate) != window_profile) {
        w->lost = 1;
        return;
    }
    set_profile(w->tstate, w->prev_func);
}

int at_imp_window_setup(PyObject *orig_find_spec)
{
    PyObject *code = at_py.PyObject_GetAttrString(orig_find_spec, "__code__");
    PyObject *names = code ? at_py.PyObject_GetAttrString(code, "co_varnames") : NULL;
    finder_index = -1;
    at_py_ssize_t n = names ? at_py.PyTuple_Size(names) : -1;
    for (at_py_ssize_t i = 0; i < n && finder_index < 0; i++)
        if (at_imp_str_is(at_py.PyTuple_GetItem(names, i), "finder", 6))
            finder_index = (int)i;
    if (names)
        at_py.Py_DecRef(names);
    if (!code) {
        at_py.PyErr_Clear();
        return -EINVAL;
    }
    /* the code object stays alive: the original function is kept forever */
    find_spec_code = code;
    at_py.Py_DecRef(code);
    if (finder_index < 0 || at_imp_type_of(code) != at_imp_api.code_type)
        return -EINVAL;
    return 0;
}

int at_imp_window_open(at_imp_window_t *w)
{
    char *ts = at_imp_api.ThreadState_UncheckedGet();
    if (!ts || !at_pyl_current_frame((uintptr_t)ts))
        return -EAGAIN;
    /* inside a trace or profile callback no event is delivered */
    if (*(int *)(ts + at_pyl.tstate_tracing) > 0)
        return -EAGAIN;
    at_tracefunc_t cur = *profilefunc_slot(ts);
    if (cur == window_profile)
        return -EAGAIN;
    memset(w, 0, sizeof(*w));
    w->tstate = ts;
    w->prev_func = cur;
    w->outer = at_imp_cur_window;
    fallback_prev = cur;
    at_imp_cur_window = w;
    w->open = 1;
    install(w);
    return 0;
}

void at_imp_window_close(at_imp_window_t *w)
{
    if (!w->open)
        return;
    if (!w->suspended)
        uninstall(w);
    w->open = 0;
    w->suspended = 0;
    at_imp_cur_window = w->outer;
}

void at_imp_window_suspend(at_imp_window_t *w)
{
    if (!w->open || w->suspended)
        return;
    uninstall(w);
    w->suspended = 1;
}

/* A nested import may have changed the program's profiler (module code
 * calling sys.setprofile): chain to whatever is there now. */
void at_imp_window_resume(at_imp_window_t *w)
{
    if (!w->open || !w->suspended)
        return;
    w->suspended = 0;
    if (w->lost)
        return;
    at_tracefunc_t cur = *profilefunc_slot(w->tstate);
    if (cur == window_profile)
        return;
    w->prev_func = cur;
    install(w);
}

void at_imp_window_clear(at_imp_window_t *w)
{
    for (unsigned i = 0; i < w->n_consulted; i++)
        drop(&w->consulted[i]);
    w->n_consulted = 0;
    drop(&w->last);
    drop(&w->path_finder);
    drop(&w->c_path_finder);
    w->n_nested = 0;
}
