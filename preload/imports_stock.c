/* SPDX-License-Identifier: MIT */
/* imports_stock.c - who answered a finder search of the stock import
 * system, read from the spec it returned instead of watched.
 *
 * Why: the window (imports_window.c) sees the search with a profile
 * function, and CPython runs everything under one on its slower path:
 * on lab02 that was ~96 % of the recorder's cost (12 M instructions of
 * 157 M), and most programs never change the import system.  When
 * sys.meta_path and sys.path_hooks still hold the objects CPython
 * installed at start-up, and every finder cached in
 * sys.path_importer_cache is one of theirs, the answer follows from the
 * result alone:
 *   BuiltinImporter and FrozenImporter are asked first, in that order,
 *   and their specs carry themselves as the loader; any other spec came
 *   from PathFinder, after both declined;
 *   PathFinder asks the path entries in order, and the first whose
 *   finder returns a spec with a loader wins: a zipimporter is its own
 *   loader, and a FileFinder builds the origin as
 *   `<finder.path>/<tail><suffix>` or `<finder.path>/<tail>/__init__<suffix>`
 *   (a namespace portion as `<finder.path>/<tail>`), so the first entry
 *   whose FileFinder has that directory is the one.
 * Anything else (another finder anywhere, a namespace parent's path, a
 * search that raised, an origin of another shape) goes to the window,
 * decided before the search starts; an answer that still cannot be read
 * afterwards is recorded as unobserved, never guessed.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "imports.h"
#include "shim.h"

#define PATH_ENTRIES_MAX 4096   /* sys.path entries looked at             */
#define DIR_MAX 4096

#define SETUP_TRIES 64           /* searches before giving up on stock mode */

static struct {
    int ready, tries;
    PyObject *bootstrap;
    PyObject *builtin, *frozen, *path_finder;   /* the classes            */
    PyObject *file_finder_type, *zip_type;
    PyObject *meta_path[3];                      /* as CPython set them    */
    PyObject *path_hooks[2];
    PyObject *list_type;
    PyObject *distutils_type;                    /* seen and checked once  */
} stock;

static PyObject *attr(PyObject *o, const char *name)   /* new ref or NULL */
{
    PyObject *v = o ? at_py.PyObject_GetAttrString(o, name) : NULL;
    if (!v)
        at_py.PyErr_Clear();
    return v;
}

/* An attribute that its module keeps alive (a class): no reference kept. */
static PyObject *borrowed_attr(PyObject *o, const char *name)
{
    PyObject *v = attr(o, name);
    if (v)
        at_py.Py_DecRef(v);
    return v;
}

static int list_is(PyObject *list, PyObject *const *items, at_py_ssize_t n)
{
    if (!list || at_imp_type_of(list) != stock.list_type || at_imp_api.List_Size(list) != n)
        return 0;
    for (at_py_ssize_t i = 0; i < n; i++)
        if (at_imp_api.List_GetItem(list, i) != items[i])
            return 0;
    return 1;
}

static int is_distutils_finder(PyObject *f);

/* CPython's three finders, after setuptools' distutils finder or not. */
static int stock_meta_path(PyObject *meta, PyObject *const *want)
{
    if (!meta || at_imp_type_of(meta) != stock.list_type)
        return 0;
    at_py_ssize_t n = at_imp_api.List_Size(meta);
    if (n != 3 && !(n == 4 && is_distutils_finder(at_imp_api.List_GetItem(meta, 0))))
        return 0;
    for (int i = 0; i < 3; i++)
        if (at_imp_api.List_GetItem(meta, n - 3 + i) != want[i])
            return 0;
    return 1;
}

static int hook_is_file_finder(PyObject *hook)
{
    PyObject *q = attr(hook, "__qualname__");
    int yes = at_imp_str_is(q, "FileFinder.path_hook.<locals>.path_hook_for_FileFinder", 54);
    if (q)
        at_py.Py_DecRef(q);
    return yes;
}

/* Remember CPython's own finders, once the import system is the one it
 * sets up: the recorder starts at the first import event, before
 * PathFinder is installed, so this is tried again at each search (until
 * it holds, or SETUP_TRIES searches later: a program that changed the
 * import system that early keeps the window).  Kept for the process's
 * life (the classes are immortal in practice; the hook is held). */
void at_imp_stock_setup(PyObject *bootstrap)
{
    stock.bootstrap = bootstrap;
    stock.tries = 0;
}

static void try_setup(void)
{
    PyObject *bootstrap = stock.bootstrap;
    stock.tries++;
    PyObject *modules = at_py.PySys_GetObject("modules");
    PyObject *ext = modules ? at_imp_api.Dict_GetItemString(modules, "_frozen_importlib_external") : NULL;
    PyObject *zip = modules ? at_imp_api.Dict_GetItemString(modules, "zipimport") : NULL;
    if (!ext || !zip)
        return;
    stock.list_type = at_py_sym("PyList_Type");
    stock.builtin = borrowed_attr(bootstrap, "BuiltinImporter");
    stock.frozen = borrowed_attr(bootstrap, "FrozenImporter");
    stock.path_finder = borrowed_attr(ext, "PathFinder");
    stock.file_finder_type = borrowed_attr(ext, "FileFinder");
    stock.zip_type = borrowed_attr(zip, "zipimporter");
    PyObject *meta = at_py.PySys_GetObject("meta_path"), *hooks = at_py.PySys_GetObject("path_hooks");
    PyObject *want_meta[3] = { stock.builtin, stock.frozen, stock.path_finder };
    if (!stock.list_type || !stock.builtin || !stock.frozen || !stock.path_finder || !stock.file_finder_type ||
        !stock.zip_type || !stock_meta_path(meta, want_meta) || !hooks || at_imp_type_of(hooks) != stock.list_type ||
        at_imp_api.List_Size(hooks) != 2)
        return;
    PyObject *h0 = at_imp_api.List_GetItem(hooks, 0), *h1 = at_imp_api.List_GetItem(hooks, 1);
    if (h0 != stock.zip_type || !hook_is_file_finder(h1))
        return;
    memcpy(stock.meta_path, want_meta, sizeof want_meta);
    stock.path_hooks[0] = h0;
    stock.path_hooks[1] = h1;
    at_py.Py_IncRef(h1);
    stock.ready = 1;
}

static int stock_finder(PyObject *f)
{
    PyObject *t = f ? at_imp_type_of(f) : NULL;
    return !f || f == at_imp_api.none || t == stock.file_finder_type || t == stock.zip_type;
}

/* setuptools' _distutils_hack.DistutilsMetaFinder, which its
 * distutils-precedence.pth puts first in sys.meta_path of most Pythons
 * with setuptools (Debian's own included): it answers only a top-level
 * name it has a spec_for_<name> method for, or a `test.` submodule, and
 * returns None at once for everything else. */
static int is_distutils_finder(PyObject *f)
{
    PyObject *t = at_imp_type_of(f);
    if (t == stock.distutils_type)
        return 1;
    PyObject *m = attr(t, "__module__"), *q = attr(t, "__qualname__");
    int yes = at_imp_str_is(m, "_distutils_hack", 15) && at_imp_str_is(q, "DistutilsMetaFinder", 19);
    if (m)
        at_py.Py_DecRef(m);
    if (q)
        at_py.Py_DecRef(q);
    if (yes)
        stock.distutils_type = t;   /* the class lives as long as the module */
    return yes;
}

static int distutils_declines(PyObject *f, PyObject *name, PyObject *path)
{
    at_py_ssize_t len = 0;
    const char *n = name && at_imp_type_of(name) == at_imp_api.unicode_type ? at_py.PyUnicode_AsUTF8AndSize(name, &len) : NULL;
    char method[256];
    if (!n || (size_t)len + 10 > sizeof method)
        return 0;
    int test = strncmp(n, "test.", 5) == 0;
    if (path && path != at_imp_api.none && !test)
        return 1;
    if (test)
        return 0;
    snprintf(method, sizeof method, "spec_for_%s", n);
    PyObject *m = attr(at_imp_type_of(f), method);
    if (m)
        at_py.Py_DecRef(m);
    return !m;
}

int at_imp_stock_now(PyObject *name, PyObject *path, PyObject **first)
{
    *first = NULL;
    if (!stock.ready && stock.bootstrap && stock.tries < SETUP_TRIES)
        try_setup();
    PyObject *meta = stock.ready ? at_py.PySys_GetObject("meta_path") : NULL;
    if (!stock_meta_path(meta, stock.meta_path) ||
        !list_is(at_py.PySys_GetObject("path_hooks"), stock.path_hooks, 2))
        return 0;
    if (at_imp_api.List_Size(meta) == 4) {   /* the distutils finder first */
        *first = at_imp_api.List_GetItem(meta, 0);
        if (!distutils_declines(*first, name, path))
            return 0;
    }
    if (path && path != at_imp_api.none && at_imp_type_of(path) != stock.list_type)
        return 0;   /* a namespace package's __path__: iterating it runs Python */
    PyObject *cache = at_py.PySys_GetObject("path_importer_cache"), *k, *v;
    at_py_ssize_t pos = 0;
    if (!cache)
        return 0;
    while (at_imp_api.Dict_Next(cache, &pos, &k, &v))
        if (!stock_finder(v))
            return 0;
    return 1;
}

/* ---- reading the answer ------------------------------------------------- */

/* The stock finders up to the n-th asked, after first (which declined). */
static void set_asked(at_imp_window_t *w, PyObject *first, int n)
{
    PyObject *order[4] = { first, stock.builtin, stock.frozen, stock.path_finder };
    PyObject *const *asked = first ? order : order + 1;
    n += first != NULL;
    for (int i = 0; i < n - 1; i++) {
        at_py.Py_IncRef(asked[i]);
        w->consulted[w->n_consulted++] = asked[i];
    }
    at_py.Py_IncRef(asked[n - 1]);
    w->last = asked[n - 1];
    w->n_asked = (unsigned)n;
}

/* s's UTF-8 up to its last '/' (levels times) into out; 0 or -1. */
static int dir_of(PyObject *s, int levels, char *out, size_t n)
{
    at_py_ssize_t len = 0;
    const char *p = s && at_imp_type_of(s) == at_imp_api.unicode_type ? at_py.PyUnicode_AsUTF8AndSize(s, &len) : NULL;
    if (!p) {
        at_py.PyErr_Clear();
        return -1;
    }
    while (levels-- > 0) {
        while (len > 0 && p[len - 1] != '/')
            len--;
        if (len-- <= 1)
            return -1;   /* no directory, or the root (joins drop its '/') */
    }
    if ((size_t)len >= n)
        return -1;
    memcpy(out, p, (size_t)len);
    out[len] = '\0';
    return 0;
}

/* The directory the answering FileFinder was for: from the origin, or
 * the first namespace portion.  0 or -1. */
static int answer_dir(PyObject *spec, PyObject *loader, char *out, size_t n)
{
    PyObject *locations = attr(spec, "submodule_search_locations");
    int rc = -1;
    if (loader == at_imp_api.none) {
        PyObject *portions = attr(locations, "_path");   /* _NamespacePath's list */
        if (portions && at_imp_type_of(portions) == stock.list_type && at_imp_api.List_Size(portions) > 0)
            rc = dir_of(at_imp_api.List_GetItem(portions, 0), 1, out, n);
        if (portions)
            at_py.Py_DecRef(portions);
    } else {
        PyObject *origin = attr(spec, "origin");
        int package = locations && locations != at_imp_api.none;
        rc = dir_of(origin, package ? 2 : 1, out, n);
        if (origin)
            at_py.Py_DecRef(origin);
    }
    if (locations)
        at_py.Py_DecRef(locations);
    return rc;
}

/* finder.path equals dir, trailing '/' aside (joins strip them). */
static int finder_has_dir(PyObject *finder, const char *dir)
{
    PyObject *p = attr(finder, "path");
    at_py_ssize_t len = 0;
    const char *s = p && at_imp_type_of(p) == at_imp_api.unicode_type ? at_py.PyUnicode_AsUTF8AndSize(p, &len) : NULL;
    if (!s)
        at_py.PyErr_Clear();
    while (s && len > 1 && s[len - 1] == '/')
        len--;
    int yes = s && (size_t)len == strlen(dir) && memcmp(s, dir, (size_t)len) == 0;
    if (p)
        at_py.Py_DecRef(p);
    return yes;
}

/* sys.path_importer_cache's finder for a path entry ('' is the current
 * directory, as PathFinder looks it up); borrowed or NULL. */
static PyObject *cached_finder(PyObject *cache, PyObject *entry)
{
    at_py_ssize_t len = 0;
    const char *e = at_imp_type_of(entry) == at_imp_api.unicode_type ? at_py.PyUnicode_AsUTF8AndSize(entry, &len) : NULL;
    if (!e) {
        at_py.PyErr_Clear();
        return NULL;
    }
    if (len > 0)
        return at_imp_api.Dict_GetItem(cache, entry);
    char cwd[DIR_MAX];
    if (!getcwd(cwd, sizeof cwd))
        return NULL;
    return at_imp_api.Dict_GetItemString(cache, cwd);
}

/* The first entry of the search path whose FileFinder is for dir. */
static PyObject *file_finder_for(PyObject *path, const char *dir)
{
    PyObject *cache = at_py.PySys_GetObject("path_importer_cache");
    if (!path || path == at_imp_api.none)
        path = at_py.PySys_GetObject("path");
    if (!cache || !path || at_imp_type_of(path) != stock.list_type)
        return NULL;
    at_py_ssize_t n = at_imp_api.List_Size(path);
    for (at_py_ssize_t i = 0; i < n && i < PATH_ENTRIES_MAX; i++) {
        PyObject *f = cached_finder(cache, at_imp_api.List_GetItem(path, i));
        if (f && at_imp_type_of(f) == stock.file_finder_type && finder_has_dir(f, dir))
            return f;
    }
    return NULL;
}

/* PathFinder's answer: its path entry finder into w.  0 or -1. */
static int path_answer(at_imp_window_t *w, PyObject *spec, PyObject *loader, PyObject *path)
{
    PyObject *pf = NULL;
    char dir[DIR_MAX];
    if (at_imp_type_of(loader) == stock.zip_type)
        pf = loader;
    else if (answer_dir(spec, loader, dir, sizeof dir) == 0)
        pf = file_finder_for(path, dir);
    if (!pf)
        return -1;
    at_py.Py_IncRef(pf);
    w->path_finder = pf;
    return 0;
}

int at_imp_stock_read(at_imp_window_t *w, PyObject *first, PyObject *path, PyObject *res)
{
    if (!res)
        return -1;   /* a finder raised: which one is not in the result */
    if (res == at_imp_api.none) {
        set_asked(w, first, 3);
        return 0;
    }
    PyObject *loader = attr(res, "loader");
    int rc = 0;
    if (!loader)
        rc = -1;
    else if (loader == stock.builtin)
        set_asked(w, first, 1);
    else if (loader == stock.frozen)
        set_asked(w, first, 2);
    else if ((rc = path_answer(w, res, loader, path)) == 0)
        set_asked(w, first, 3);
    if (loader)
        at_py.Py_DecRef(loader);
    return rc;
}
