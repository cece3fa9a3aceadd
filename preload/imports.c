/* SPDX-License-Identifier: MIT */
/* imports.c - the import chain recorder: per import attempt, who imported
 * it, which finder found it, which loader ran it, how long it took.
 *
 * See imports.h for the design.  This file holds the lifecycle (start at
 * the first `import` audit event, fork, exit), the two wrappers that
 * stand in for importlib's _find_and_load and _find_spec, and the
 * per-thread stack of imports in progress; imports_store.c writes
 * <pid>.imports.  Everything here runs with the GIL held; the
 * shared tables are only changed between two Python calls, never across
 * one, so no lock is needed.  at_in_shim is raised around our own work
 * and dropped around the original functions: the program's imports are
 * the program's (its allocations stay visible to the alloc feature), ours
 * (the core's `import atexit`) are not recorded.
 */
#include <errno.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "audit_hooks.h"
#include "imports.h"
#include "shim.h"

extern char **environ;

at_imp_api_t at_imp_api;

#define STACK_MAX    64     /* imports nested on one thread that are kept   */
#define WINDOWS_MAX  4      /* finder searches nested on one thread         */

/* ---- process state ---------------------------------------------------- */

static int started;                 /* wrappers installed                   */
static int start_failed;            /* gave up: do not try again            */
static unsigned generation;         /* bumped in a forked child             */
static PyObject *name_key;          /* interned "__name__"                  */
static int watch_all;               /* ARCHTRACE_IMPORTS_WATCH_ALL: every search
                                       through the window (to compare the two) */

/* ---- per-thread state ------------------------------------------------- */

typedef struct imp_frame {
    uint32_t rec;                   /* record index or AT_IMP_NONE          */
    unsigned gen;                   /* generation it was pushed in          */
    uint16_t depth;                 /* nesting depth on this thread         */
    uint16_t flags;                 /* AT_IMP_F_* so far                    */
    int searched;                   /* _find_spec ran for this import       */
    uint64_t children_ns;           /* direct children's cumulative time    */
    PyObject *spec;                 /* the spec found (owned) or NULL       */
} imp_frame_t;

static __thread imp_frame_t tl_frames[STACK_MAX];
static __thread int tl_depth;       /* imports open (may exceed STACK_MAX)  */
static __thread at_imp_window_t tl_windows[WINDOWS_MAX];
static __thread int tl_nwin;        /* windows open                         */
static __thread PyObject *tl_pending; /* name of the last `import` audit event,
                                         compared by identity, never read   */
static __thread uint32_t tl_tid;

static uint32_t thread_id(void)
{
    if (!tl_tid)
        tl_tid = (uint32_t)syscall(SYS_gettid);
    return tl_tid;
}

static at_imp_record_t *record_of(const imp_frame_t *fr)
{
    if (!fr || fr->gen != generation || fr->rec == AT_IMP_NONE)
        return NULL;
    return at_imp_store_record(fr->rec);
}

/* ---- who imported it ------------------------------------------------- */

static int is_machinery(PyObject *code)
{
    PyObject *file_name = *(PyObject **)((char *)code + at_pyl.code_filename);
    PyObject *name = *(PyObject **)((char *)code + at_pyl.code_name);
    at_py_ssize_t n = 0;
    const char *fn;
    if (at_imp_str_is(name, "import_module", 13)) {
        fn = at_py.PyUnicode_AsUTF8AndSize(file_name, &n);
        if (!fn)
            at_py.PyErr_Clear();
        return fn && n >= 21 && strcmp(fn + n - 21, "importlib/__init__.py") == 0;
    }
    fn = at_py.PyUnicode_AsUTF8AndSize(file_name, &n);
    if (!fn) {
        at_py.PyErr_Clear();
        return 0;
    }
    return strncmp(fn, "<frozen importlib._bootstrap", 28) == 0;
}

/* __name__ of the innermost Python frame outside importlib: the module
 * whose code ran the import statement or importlib.import_module().
 * Borrowed, or NULL (imports made from C, e.g. during start-up). */
static PyObject *importer_name(void)
{
    char *f = (char *)at_pyl_current_frame((uintptr_t)at_imp_api.ThreadState_UncheckedGet());
    for (int i = 0; f && i < AT_MAX_STACK_DEPTH; i++, f = *(char **)(f + at_pyl.iframe_previous)) {
        if (at_pyl_frame_is_cstack((uintptr_t)f))
            continue;                 /* 3.12+: an entry frame, no code */
        PyObject *code = *(PyObject **)(f + at_pyl.iframe_code);
        if (!code || at_imp_type_of(code) != at_imp_api.code_type)
            return NULL;
        if (is_machinery(code))
            continue;
        PyObject *globals = *(PyObject **)(f + at_pyl.iframe_globals);
        return globals ? at_imp_api.Dict_GetItem(globals, name_key) : NULL;
    }
    return NULL;
}

/* ---- the per-thread stack of imports in progress ----------------------- */

static imp_frame_t *frame_at(int d)
{
    return d >= 0 && d < STACK_MAX ? &tl_frames[d] : NULL;
}

static imp_frame_t *top_frame(void)
{
    imp_frame_t *fr = frame_at(tl_depth - 1);
    return fr && fr->gen == generation ? fr : NULL;
}

static imp_frame_t *frame_push(PyObject *name, int audited)
{
    imp_frame_t *up = top_frame();
    imp_frame_t *fr = frame_at(tl_depth++);
    if (!fr) {
        if (at_imp_file)
            at_imp_file->dropped_records++;
        return NULL;
    }
    *fr = (imp_frame_t){ .gen = generation, .depth = up ? (uint16_t)(up->depth + 1) : 0,
                         .flags = audited ? AT_IMP_F_AUDITED : 0 };
    fr->rec = at_imp_store_new();
    at_imp_record_t *r = record_of(fr);
    if (!r)
        return fr;
    r->tid = thread_id();
    r->depth = fr->depth;
    r->enclosing = record_of(up) ? up->rec : AT_IMP_NONE;
    r->module = at_imp_put_pystr(name, AT_IMP_ALWAYS, &fr->flags);
    r->parent = at_imp_put_pystr(importer_name(), AT_IMP_ALWAYS, &fr->flags);
    r->flags = fr->flags;
    return fr;
}

/* The error's type name, read from the type object (no Python call). */
static at_imp_str_t put_error(PyObject *type, uint16_t *flags)
{
    const char *name = type ? *(const char **)((char *)type + at_pyl.type_name) : NULL;
    return name ? at_imp_put_bytes(name, strlen(name), AT_IMP_ALWAYS, flags) : at_imp_no_str;
}

static void put_spec_facts(at_imp_record_t *r, PyObject *spec, uint16_t *flags)
{
    PyObject *loader = at_py.PyObject_GetAttrString(spec, "loader");
    PyObject *origin = at_py.PyObject_GetAttrString(spec, "origin");
    if (!loader || !origin)
        at_py.PyErr_Clear();
    r->loader = at_imp_put_qualname(loader, flags);
    r->origin = at_imp_put_pystr(origin, AT_IMP_IF_ROOM, flags);
    if (loader)
        at_py.Py_DecRef(loader);
    if (origin)
        at_py.Py_DecRef(origin);
}

static void frame_finish(imp_frame_t *fr, PyObject *res, uint64_t t1)
{
    at_imp_record_t *r = record_of(fr);
    if (!r)
        return;
    PyObject *et = NULL, *ev = NULL, *etb = NULL;
    if (!res)
        at_py.PyErr_Fetch(&et, &ev, &etb);
    uint16_t flags = fr->flags | (res ? AT_IMP_F_OK : 0);
    if (!res)
        r->error = put_error(et, &flags);
    if (fr->spec)
        put_spec_facts(r, fr->spec, &flags);
    else if (res && !fr->searched)
        flags |= AT_IMP_F_NO_FIND;
    if (!res)
        at_py.PyErr_Restore(et, ev, etb);
    r->end_ns = t1;
    r->children_ns = fr->children_ns;
    __atomic_store_n(&r->flags, (uint16_t)(flags | AT_IMP_F_DONE), __ATOMIC_RELEASE);
}

static void frame_pop(imp_frame_t *fr, PyObject *res, uint64_t t0, uint64_t t1)
{
    tl_depth--;
    if (!fr)
        return;
    imp_frame_t *up = top_frame();
    if (up && fr->gen == generation)
        up->children_ns += t1 - t0;
    frame_finish(fr, res, t1);
    if (fr->spec)
        at_py.Py_DecRef(fr->spec);
    fr->spec = NULL;
}

/* ---- what a finder search found ----------------------------------------- */

static PyObject *path_entry_of(PyObject *path_finder)
{
    PyObject *cache = at_py.PySys_GetObject("path_importer_cache");
    PyObject *k, *v;
    at_py_ssize_t pos = 0;
    while (cache && at_imp_api.Dict_Next(cache, &pos, &k, &v))
        if (v == path_finder)
            return k;
    return NULL;
}

static void put_winner(at_imp_record_t *r, const at_imp_window_t *w, uint16_t *flags)
{
    PyObject *pf = w->path_finder ? w->path_finder : w->c_path_finder;
    r->finder = at_imp_put_qualname(w->last, flags);
    r->consulted = at_imp_put_qualnames(w->consulted, w->n_consulted, flags);
    r->n_consulted = (uint16_t)(w->n_asked ? w->n_asked - 1 : 0);
    if (pf) {
        r->path_finder = at_imp_put_qualname(pf, flags);
        r->path_entry = at_imp_put_pystr(path_entry_of(pf), AT_IMP_IF_ROOM, flags);
    }
}

static void put_all_declined(at_imp_record_t *r, const at_imp_window_t *w, uint16_t *flags)
{
    PyObject *all[AT_IMP_MAX_CONSULTED + 1];
    unsigned n = w->n_consulted;
    memcpy(all, w->consulted, n * sizeof(PyObject *));
    if (w->last && n < AT_IMP_MAX_CONSULTED)
        all[n++] = w->last;
    r->consulted = at_imp_put_qualnames(all, n, flags);
    r->n_consulted = (uint16_t)w->n_asked;
}

static int spec_is_namespace(PyObject *spec)
{
    PyObject *loader = at_py.PyObject_GetAttrString(spec, "loader");
    if (!loader) {
        at_py.PyErr_Clear();
        return 0;
    }
    at_py.Py_DecRef(loader);
    return loader == at_imp_api.none;
}

static void search_done(imp_frame_t *fr, const at_imp_window_t *w, int observed, PyObject *res)
{
    at_imp_record_t *r = record_of(fr);
    if (res && res != at_imp_api.none) {
        at_py.Py_IncRef(res);
        fr->spec = res;
        fr->flags |= AT_IMP_F_SPEC;
    }
    if (!r)
        return;
    PyObject *et = NULL, *ev = NULL, *etb = NULL;
    if (!res)
        at_py.PyErr_Fetch(&et, &ev, &etb);
    if (!observed)
        fr->flags |= AT_IMP_F_UNOBSERVED;
    if (fr->spec && spec_is_namespace(fr->spec))
        fr->flags |= AT_IMP_F_NAMESPACE;
    if (res == at_imp_api.none || !observed)
        put_all_declined(r, w, &fr->flags);   /* unobserved: who answered is unknown */
    else
        put_winner(r, w, &fr->flags);
    if (!res)
        fr->flags |= AT_IMP_F_FIND_RAISED;
    r->flags = fr->flags;
    if (!res)
        at_py.PyErr_Restore(et, ev, etb);
}

/* ---- the wrappers ------------------------------------------------------- */

/* tp_call always gets a tuple; an empty one leaves nothing to record */
static PyObject *first_arg(PyObject *args)
{
    return args && at_py.PyTuple_Size(args) > 0 ? at_py.PyTuple_GetItem(args, 0) : NULL;
}

/* importlib.import_module() of a module already loaded also goes through
 * _find_and_load: that is a lookup, not an import attempt. */
static int already_loaded(PyObject *name)
{
    PyObject *modules = at_py.PySys_GetObject("modules");
    PyObject *m = modules ? at_imp_api.Dict_GetItem(modules, name) : NULL;
    return m && m != at_imp_api.none;
}

static void imports_on_fork_child(void);

/* A fork before the core started the features (from site or a .pth file)
 * reaches no on_fork_child: the child notices here, by its pid. */
static void check_own_file(void)
{
    if (at_imp_file && at_imp_file->pid != (int32_t)at_shim.pid)
        imports_on_fork_child();
}

/* _find_and_load(name, import_): every import attempt, whatever path. */
static PyObject *wrap_find_and_load(PyObject *orig, PyObject *args, PyObject *kwargs)
{
    if (!at_in_shim)
        check_own_file();
    PyObject *name = at_in_shim || !at_imp_file ? NULL : first_arg(args);
    if (!name)
        return at_imp_api.Object_Call(orig, args, kwargs);
    at_in_shim++;
    int audited = name == tl_pending;
    tl_pending = NULL;
    if (!audited && already_loaded(name)) {
        at_in_shim--;
        return at_imp_api.Object_Call(orig, args, kwargs);
    }
    imp_frame_t *fr = frame_push(name, audited);
    at_imp_window_t *outer = tl_nwin ? &tl_windows[tl_nwin - 1] : NULL;
    if (outer)
        at_imp_window_suspend(outer);   /* its finder search waits for us */
    at_imp_record_t *r = record_of(fr);
    at_in_shim--;
    uint64_t t0 = at_now_ns();
    if (r)
        r->start_ns = t0;
    PyObject *res = at_imp_api.Object_Call(orig, args, kwargs);
    uint64_t t1 = at_now_ns();
    at_in_shim++;
    frame_pop(fr, res, t0, t1);
    if (outer)
        at_imp_window_resume(outer);
    at_in_shim--;
    return res;
}

/* at_imp_stock_read with the search's exception, if any, kept aside. */
static int read_stock(at_imp_window_t *w, PyObject *first, PyObject *path, PyObject *res)
{
    PyObject *t, *v, *tb;
    at_py.PyErr_Fetch(&t, &v, &tb);
    int rc = at_imp_stock_read(w, first, path, res);
    at_py.PyErr_Clear();
    at_py.PyErr_Restore(t, v, tb);
    return rc;
}

static void count_window(const at_imp_window_t *w)
{
    if (!at_imp_file)
        return;
    at_imp_file->find_windows++;
    at_imp_file->profile_events += w->events;
}

/* The path argument of _find_spec(name, path, target=None); borrowed. */
static PyObject *path_arg(PyObject *args)
{
    return args && at_py.PyTuple_Size(args) > 1 ? at_py.PyTuple_GetItem(args, 1) : NULL;
}

/* _find_spec(name, path, target=None): the search through sys.meta_path,
 * for the import on top of this thread's stack: read from its result
 * when the import system is CPython's own (imports_stock.c), else
 * watched through a window. */
static PyObject *wrap_find_spec(PyObject *orig, PyObject *args, PyObject *kwargs)
{
    imp_frame_t *fr = top_frame();
    if (at_in_shim || !fr || fr->searched)
        return at_imp_api.Object_Call(orig, args, kwargs);
    fr->searched = 1;
    at_in_shim++;
    PyObject *path = path_arg(args), *first;
    int stock = at_imp_stock_now(first_arg(args), path, &first);
    at_py.PyErr_Clear();
    at_in_shim--;
    at_imp_window_t *w = &tl_windows[tl_nwin < WINDOWS_MAX ? tl_nwin : 0];
    int watched = !stock && tl_nwin < WINDOWS_MAX && at_imp_window_open(w) == 0;
    tl_nwin += watched;
    uint64_t t0 = at_now_ns();
    PyObject *res = at_imp_api.Object_Call(orig, args, kwargs);
    uint64_t t1 = at_now_ns();
    if (watched) {
        at_imp_window_close(w);
        tl_nwin--;
    }
    at_in_shim++;
    at_imp_record_t *r = record_of(fr);
    if (r)
        r->find_ns += t1 - t0;
    if (watched)
        count_window(w);
    at_imp_window_t read = { 0 };
    int observed = watched ? w->events && !w->lost : stock && read_stock(&read, first, path, res) == 0;
    search_done(fr, watched ? w : &read, observed, res);
    if (watched)
        at_imp_window_clear(w);
    at_imp_window_clear(&read);
    at_in_shim--;
    return res;
}

/* ---- installing ------------------------------------------------------- */

#define SYM(field, name) (*(void **)&at_imp_api.field = at_py_sym(name))

static int resolve_api(void)
{
    void *need[] = {
        SYM(Object_Call, "PyObject_Call"),
        SYM(Object_GetAttr, "PyObject_GetAttr"),
        SYM(Object_Repr, "PyObject_Repr"),
        SYM(Object_Free, "PyObject_Free"),
        SYM(Type_FromSpec, "PyType_FromSpec"),
        SYM(Type_GenericAlloc, "PyType_GenericAlloc"),
        SYM(ThreadState_UncheckedGet, at_pyl.minor >= 13 ? "PyThreadState_GetUnchecked"
                                                          : "_PyThreadState_UncheckedGet"),
        SYM(Dict_GetItem, "PyDict_GetItem"),
        SYM(Dict_Next, "PyDict_Next"),
        SYM(Dict_GetItemString, "PyDict_GetItemString"),
        SYM(Object_SetAttrString, "PyObject_SetAttrString"),
        SYM(Type_GetQualName, "PyType_GetQualName"),
        SYM(Unicode_InternFromString, "PyUnicode_InternFromString"),
        SYM(List_Size, "PyList_Size"),
        SYM(List_GetItem, "PyList_GetItem"),
        SYM(none, "_Py_NoneStruct"),
        SYM(code_type, "PyCode_Type"),
        SYM(unicode_type, "PyUnicode_Type"),
        SYM(cfunction_type, "PyCFunction_Type"),
        SYM(cmethod_type, "PyCMethod_Type"),
    };
    for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++)
        if (!need[i])
            return -ENOENT;
    /* 3.12+ (no use_tracing flag to set): the window goes through it */
    if (at_pyl.cframe_use_tracing == AT_PYLAYOUT_NONE && !SYM(Eval_SetProfile, "_PyEval_SetProfile"))
        return -ENOENT;
    return 0;
}

/* The layout is trusted only in the main interpreter of a runtime whose
 * main interpreter points back at it (as the core checks for on_run). */
static int layout_ok(void)
{
    if (!at_shim.runtime)
        return 0;
    uintptr_t main_interp = *(const uintptr_t *)(at_shim.runtime + at_pyl.rt_interpreters_main);
    if (!main_interp || *(const uintptr_t *)(main_interp + at_pyl.interp_runtime) != at_shim.runtime)
        return 0;
    char *ts = at_imp_api.ThreadState_UncheckedGet();
    return ts && *(uintptr_t *)(ts + at_pyl.tstate_interp) == main_interp;
}

/* importlib's own module, _frozen_importlib (also importlib._bootstrap),
 * borrowed from sys.modules. */
static PyObject *bootstrap_module(void)
{
    PyObject *modules = at_py.PySys_GetObject("modules");
    return modules ? at_imp_api.Dict_GetItemString(modules, "_frozen_importlib") : NULL;
}

/* Both must be the 3.11 Python functions; _find_spec goes first: a
 * timed _find_and_load without it still records something, the other
 * way round nothing. */
static int install_hooks(void)
{
    PyObject *boot = bootstrap_module();
    PyObject *fs = boot ? at_py.PyObject_GetAttrString(boot, "_find_spec") : NULL;
    PyObject *fal = boot ? at_py.PyObject_GetAttrString(boot, "_find_and_load") : NULL;
    int rc = -EINVAL;
    if (fs && fal && !strcmp(at_py_type_name(fs), "function") &&
        !strcmp(at_py_type_name(fal), "function") && at_imp_window_setup(fs) == 0) {
        rc = at_imp_hook_install(boot, "_find_spec", wrap_find_spec);
        if (rc == 0)
            rc = at_imp_hook_install(boot, "_find_and_load", wrap_find_and_load);
    }
    if (rc == 0 && !watch_all)
        at_imp_stock_setup(boot);
    if (fs)
        at_py.Py_DecRef(fs);
    if (fal)
        at_py.Py_DecRef(fal);
    at_py.PyErr_Clear();
    return rc;
}

static void imports_start(uint32_t phase)
{
    if (started || start_failed)
        return;
    start_failed = 1;
    PyObject *t, *v, *tb;
    at_py.PyErr_Fetch(&t, &v, &tb);
    const char *why = NULL;
    if (resolve_api() < 0)
        why = "a C-API function it needs is missing";
    else if (!layout_ok())
        why = "CPython runtime layout does not match the version's table";
    else if (!(name_key = at_imp_api.Unicode_InternFromString("__name__")))
        why = "cannot create a string";
    else if (at_imp_store_open(phase) < 0)
        why = "cannot create <pid>.imports in the session";
    else if (install_hooks() < 0)
        why = "importlib's _find_and_load/_find_spec are not Python functions";
    if (why) {
        at_py.PyErr_Clear();
        at_shim_note("imports", why);
    } else {
        started = 1;
        start_failed = 0;
    }
    at_py.PyErr_Restore(t, v, tb);
}

/* An `import` event: remember its name object, so the _find_and_load call
 * that follows on this thread knows it came through import.c. */
static void note_import_event(PyObject *args)
{
    tl_pending = at_py.PyTuple_GetItem(args, 0);
    if (!tl_pending)
        at_py.PyErr_Clear();
}

/* ---- start-up imports --------------------------------------------------- */

/* The core hands its features audit events only from cpython.run_* on,
 * after site, encodings and .pth files were imported.  To see those too
 * (-X importtime lists them), this feature adds its own runtime audit
 * hook, which only acts on `import` events before the core is running. */
static int early_audit_hook(const char *event, PyObject *args, void *data)
{
    (void)data;
    at_audit_hooks_see(event);
    if (at_in_shim || at_shim.running || !at_shim.active || !(at_shim.features & AT_FEAT_IMPORTS))
        return 0;
    if (strcmp(event, "import") != 0)
        return 0;
    at_in_shim++;
    imports_start(AT_IMP_PHASE_INIT);
    if (started)
        note_import_event(args);
    at_in_shim--;
    return 0;
}

static const char *env_value(const char *name)
{
    size_t n = strlen(name);
    for (char **e = environ; e && *e; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
            return *e + n + 1;
    return NULL;
}

/* Only in a session asking for imports, in a process with the C-API;
 * everything else (shells, compilers) gets no hook at all. */
__attribute__((constructor)) static void imports_ctor(void)
{
    if (getauxval(AT_SECURE))
        return;
    const char *session = env_value("ARCHTRACE_SESSION");
    const char *features = env_value("ARCHTRACE_FEATURES");
    if (!session || !*session || (features && !strstr(features, "imports")))
        return;
    watch_all = env_value("ARCHTRACE_IMPORTS_WATCH_ALL") != NULL;
    at_audit_hook_add(early_audit_hook);
}

/* ---- the feature -------------------------------------------------------- */

static void imports_on_run(void)
{
    imports_start(AT_IMP_PHASE_RUN);   /* no-op when start-up already did */
}

static void imports_on_audit(const char *event, PyObject *args)
{
    if (started && strcmp(event, "import") == 0)
        note_import_event(args);
}

/* The child gets its own file; imports still open on the forking thread
 * belong to the parent's file (their generation no longer matches). */
static void imports_on_fork_child(void)
{
    generation++;
    tl_pending = NULL;
    tl_tid = 0;   /* the forking thread has a new id in the child */
    if (at_imp_store_reopen() < 0)
        at_shim_note("imports", "cannot create <pid>.imports for the forked child");
}

static void imports_on_exit(int python_alive)
{
    (void)python_alive;
    if (at_imp_file)
        __atomic_store_n(&at_imp_file->state, AT_IMP_STATE_EXITED, __ATOMIC_RELEASE);
}

const at_feature_t at_feature_imports = {
    .name = "imports",
    .bit = AT_FEAT_IMPORTS,
    .on_run = imports_on_run,
    .on_audit = imports_on_audit,
    .on_fork_child = imports_on_fork_child,
    .on_exit = imports_on_exit,
};
