/* SPDX-License-Identifier: MIT */
/* imports.h - the import-chain recorder's internals, shared by imports.c
 * (lifecycle, wrappers, per-thread stack), imports_stock.c (reading a
 * search of the stock import system from its result), imports_window.c
 * (watching any other finder search), imports_store.c (<pid>.imports)
 * and imports_hook.c (the stand-ins for importlib's functions).
 *
 * Design: importlib's own `_frozen_importlib._find_and_load` and
 * `_find_spec` are replaced, in that module's dict only, by callables
 * that call the originals.  Every import path looks `_find_and_load` up
 * there at call time (import.c for import statements and __import__,
 * `_gcd_import` for importlib.import_module, which raises no `import`
 * audit event), so one wrapper sees all of them, times them and nests
 * them per thread.  When sys.meta_path and sys.path_hooks are the ones
 * CPython installed, who answered follows from the spec `_find_spec`
 * returns (imports_stock.c).  Otherwise, while the original `_find_spec`
 * runs, a profile function is chained in front of the thread's own (a program's
 * sys.setprofile stays in charge and keeps getting every event): it sees
 * which sys.meta_path finders are asked, which one answered, and which
 * path entry finder inside it returned the spec.  sys.meta_path,
 * sys.path_hooks and the finders are never touched.  Recording starts at
 * the first `import` audit event, during interpreter start-up.
 */
#ifndef AT_IMPORTS_H
#define AT_IMPORTS_H
#include <stdint.h>
#include "imports_format.h"
#include "pyapi.h"
#include "pyversion.h"

/* The layout (thread state's profile fields, frames, code, str, builtin
 * functions) is the running version's, at_pyl (pyversion.h). */

/* profile events (Include/cpython/pystate.h) */
#define AT_TRACE_CALL      0
#define AT_TRACE_RETURN    3
#define AT_TRACE_C_CALL    4
#define AT_TRACE_C_EXCEPTION 5
#define AT_TRACE_C_RETURN  6

typedef int (*at_tracefunc_t)(PyObject *obj, PyObject *frame, int what, PyObject *arg);

/* The extra C-API the recorder calls (resolved once when it starts). */
typedef struct at_imp_api {
    PyObject *(*Object_Call)(PyObject *f, PyObject *args, PyObject *kwargs);
    PyObject *(*Object_GetAttr)(PyObject *o, PyObject *name);      /* new ref */
    PyObject *(*Object_Repr)(PyObject *o);                         /* new ref */
    void (*Object_Free)(void *p);
    PyObject *(*Type_FromSpec)(void *spec);                        /* new ref */
    PyObject *(*Type_GenericAlloc)(PyObject *type, at_py_ssize_t n);
    void *(*ThreadState_UncheckedGet)(void);
    /* 3.12+: sets a thread's profile function and turns sys.monitoring's
     * events for it on or off (the fields alone no longer do) */
    int (*Eval_SetProfile)(void *tstate, at_tracefunc_t func, PyObject *obj);
    PyObject *(*Dict_GetItem)(PyObject *d, PyObject *k);          /* borrowed */
    int (*Dict_Next)(PyObject *d, at_py_ssize_t *pos, PyObject **k, PyObject **v);
    PyObject *(*Dict_GetItemString)(PyObject *d, const char *k);  /* borrowed */
    int (*Object_SetAttrString)(PyObject *o, const char *name, PyObject *v);
    PyObject *(*Type_GetQualName)(PyObject *type);                /* new ref */
    PyObject *(*Unicode_InternFromString)(const char *s);
    at_py_ssize_t (*List_Size)(PyObject *list);
    PyObject *(*List_GetItem)(PyObject *list, at_py_ssize_t i);  /* borrowed */
    PyObject *none;                 /* &_Py_NoneStruct                  */
    PyObject *code_type;            /* &PyCode_Type                     */
    PyObject *unicode_type;         /* &PyUnicode_Type                  */
    PyObject *cfunction_type;       /* &PyCFunction_Type                */
    PyObject *cmethod_type;         /* &PyCMethod_Type                  */
} at_imp_api_t;

extern at_imp_api_t at_imp_api;

/* ---- the finder-search window (imports_window.c) -------------------- */

#define AT_IMP_NESTED_MAX 8           /* open path-entry find_spec calls tracked */

typedef struct at_imp_window {
    struct at_imp_window *outer;      /* window open before this one (nested) */
    int open;                         /* our profile function is installed */
    int suspended;                    /* uninstalled while a nested import runs */
    int lost;                         /* the program replaced our function
                                         (sys.setprofile inside a finder):
                                         what followed was not seen       */
    int level;                        /* calls open since the window opened */
    at_tracefunc_t prev_func;         /* the thread's profile function before us */
    char *tstate;                     /* PyThreadState * of the window's thread */
    char *find_frame;                 /* _PyInterpreterFrame * of _find_spec */
    int meta_open;                    /* a sys.meta_path finder call is running */
    PyObject *consulted[AT_IMP_MAX_CONSULTED]; /* finders asked, owned refs */
    unsigned n_consulted;             /* kept in consulted[]              */
    unsigned n_asked;                 /* asked in all (may exceed the above) */
    PyObject *last;                   /* the last finder asked (owned)    */
    PyObject *path_finder;            /* first nested find_spec that returned
                                         a spec inside `last` (owned)     */
    PyObject *c_path_finder;          /* a C nested find_spec (result unseen) */
    int nested_level[AT_IMP_NESTED_MAX]; /* levels of the watched calls   */
    PyObject *nested_self[AT_IMP_NESTED_MAX]; /* their self (borrowed: the frame holds it) */
    int n_nested;
    uint64_t events;                  /* profile callbacks seen           */
} at_imp_window_t;

/* Remember the layout facts the window needs: the code object of the
 * original _find_spec and the index of its local `finder`.  0 or -EINVAL. */
int at_imp_window_setup(PyObject *orig_find_spec);

/* Open: chain our profile function in front of the thread's.  0, or
 * -EAGAIN when the thread cannot be observed now (then nothing changed). */
int at_imp_window_open(at_imp_window_t *w);

/* Close: put the previous profile function back (unless the program
 * replaced ours meanwhile: then its choice stands). */
void at_imp_window_close(at_imp_window_t *w);

/* Uninstall / reinstall around an import nested inside the window. */
void at_imp_window_suspend(at_imp_window_t *w);
void at_imp_window_resume(at_imp_window_t *w);

/* Drop every reference the window holds. */
void at_imp_window_clear(at_imp_window_t *w);

/* The window the profile function reports to (the innermost open one on
 * this thread), set by imports.c. */
extern __thread at_imp_window_t *at_imp_cur_window;

/* ---- the stock import system (imports_stock.c) ------------------------ */

/* Remember CPython's own finders and hooks, if they are still in place. */
void at_imp_stock_setup(PyObject *bootstrap);

/* 1 when the search for name through `path` (None: sys.path) can be
 * read from its result: sys.meta_path, sys.path_hooks and every cached
 * path entry finder are CPython's own, but for a first meta path finder
 * known to decline this name (*first, borrowed; else NULL).  Asked
 * before the search. */
int at_imp_stock_now(PyObject *name, PyObject *path, PyObject **first);

/* Fill w (consulted, last, n_asked, path_finder; owned refs) from the
 * search's result res (NULL: it raised).  0, or -1 when it cannot say. */
int at_imp_stock_read(at_imp_window_t *w, PyObject *first, PyObject *path, PyObject *res);

/* ---- helpers shared by the files ------------------------------------ */

/* The object's type (ob_type), read directly. */
static inline PyObject *at_imp_type_of(PyObject *o)
{
    return *(PyObject **)((char *)o + at_pyl.object_type);
}

/* 1 when s is a compact ASCII str equal to lit (n bytes). */
int at_imp_str_is(PyObject *s, const char *lit, size_t n);

/* ---- the string arena and record table (imports_store.c) ------------- */

extern at_imp_header_t *at_imp_file;   /* <pid>.imports, NULL when off */
extern const at_imp_str_t at_imp_no_str;

/* Map a fresh <pid>.imports for this process.  0 or -EIO. */
int at_imp_store_open(uint32_t phase);

/* In a forked child: drop the parent's mapping, open the child's own. */
int at_imp_store_reopen(void);

/* A new record (all strings null), or AT_IMP_NONE when the table is full. */
uint32_t at_imp_store_new(void);
at_imp_record_t *at_imp_store_record(uint32_t i);

/* Strings into the arena (equal ones shared); null when absent, not a
 * str, or the arena is full (then AT_IMP_F_TRUNCATED goes into flags).
 * The last quarter of the arena is kept for the strings a record cannot
 * do without (names of modules, finders, loaders): paths and finder lists
 * (AT_IMP_IF_ROOM) stop there, so a huge program still gets its module
 * names. */
typedef enum at_imp_keep {
    AT_IMP_ALWAYS,                    /* until the arena is full            */
    AT_IMP_IF_ROOM,                   /* while at most 3/4 of it is used    */
} at_imp_keep_t;

at_imp_str_t at_imp_put_bytes(const char *s, size_t n, at_imp_keep_t keep, uint16_t *flags);
at_imp_str_t at_imp_put_pystr(PyObject *s, at_imp_keep_t keep, uint16_t *flags);
at_imp_str_t at_imp_put_qualname(PyObject *o, uint16_t *flags);
at_imp_str_t at_imp_put_qualnames(PyObject *const *objs, unsigned n, uint16_t *flags);

/* ---- the stand-in for importlib functions (imports_hook.c) ------------ */

typedef PyObject *(*at_imp_wrap_fn)(PyObject *orig, PyObject *args, PyObject *kwargs);

/* Replace attribute `name` of module `mod` (a Python function) by a
 * callable that calls fn(original, args, kwargs).  0 or -errno. */
int at_imp_hook_install(PyObject *mod, const char *name, at_imp_wrap_fn fn);

#endif
