/* SPDX-License-Identifier: MIT */
/* imports_hook.c - a callable that stands in for one importlib function
 * and hands each call to the recorder with the original.
 *
 * Design: the stand-in is an instance of a small heap type with tp_call,
 * not a builtin function.  CPython reports c_call/c_return profile events
 * only for builtin functions and method descriptors, so a program's own
 * sys.setprofile or cProfile sees exactly the events it sees without
 * archtrace (the original Python function still runs, and still produces
 * its call/return).  repr() and attribute reads are forwarded to the
 * original, so `importlib._bootstrap._find_spec.__name__` and friends
 * answer as before.  The type cannot be instantiated from Python.
 */
#include <errno.h>
#include "imports.h"

/* PyType_Slot / PyType_Spec, as in Include/object.h (stable ABI). */
typedef struct at_type_slot {
    int slot;
    void *pfunc;
} at_type_slot_t;

typedef struct at_type_spec {
    const char *name;
    int basicsize;
    int itemsize;
    unsigned int flags;
    at_type_slot_t *slots;
} at_type_spec_t;

/* Include/typeslots.h and Include/object.h */
#define AT_TP_CALL     50
#define AT_TP_DEALLOC  52
#define AT_TP_GETATTRO 58
#define AT_TP_REPR     66
#define AT_TPFLAGS_DISALLOW_INSTANTIATION (1UL << 7)
#define AT_TPFLAGS_IMMUTABLETYPE          (1UL << 8)

typedef struct hook_obj {
    at_py_ssize_t ob_refcnt;        /* PyObject_HEAD                     */
    PyObject *ob_type;
    PyObject *orig;                 /* the importlib function (owned)    */
    at_imp_wrap_fn fn;              /* the recorder's wrapper            */
} hook_obj_t;

static PyObject *hook_type;         /* created once, kept forever        */

static PyObject *hook_call(PyObject *self, PyObject *args, PyObject *kwargs)
{
    hook_obj_t *h = (hook_obj_t *)self;
    return h->fn(h->orig, args, kwargs);
}

static PyObject *hook_repr(PyObject *self)
{
    return at_imp_api.Object_Repr(((hook_obj_t *)self)->orig);
}

static PyObject *hook_getattro(PyObject *self, PyObject *name)
{
    return at_imp_api.Object_GetAttr(((hook_obj_t *)self)->orig, name);
}

/* Heap type instances own a reference to their type. */
static void hook_dealloc(PyObject *self)
{
    PyObject *type = at_imp_type_of(self);
    hook_obj_t *h = (hook_obj_t *)self;
    if (h->orig)
        at_py.Py_DecRef(h->orig);
    at_imp_api.Object_Free(self);
    at_py.Py_DecRef(type);
}

static at_type_slot_t hook_slots[] = {
    { AT_TP_CALL, (void *)hook_call },
    { AT_TP_DEALLOC, (void *)hook_dealloc },
    { AT_TP_GETATTRO, (void *)hook_getattro },
    { AT_TP_REPR, (void *)hook_repr },
    { 0, NULL },
};

static at_type_spec_t hook_spec = {
    "archtrace.ImportHook", (int)sizeof(hook_obj_t), 0,
    AT_TPFLAGS_DISALLOW_INSTANTIATION | AT_TPFLAGS_IMMUTABLETYPE, hook_slots,
};

static PyObject *hook_new(PyObject *orig, at_imp_wrap_fn fn)
{
    if (!hook_type && !(hook_type = at_imp_api.Type_FromSpec(&hook_spec)))
        return NULL;
    hook_obj_t *h = (hook_obj_t *)at_imp_api.Type_GenericAlloc(hook_type, 0);
    if (!h)
        return NULL;
    at_py.Py_IncRef(orig);
    h->orig = orig;
    h->fn = fn;
    return (PyObject *)h;
}

int at_imp_hook_install(PyObject *mod, const char *name, at_imp_wrap_fn fn)
{
    PyObject *orig = at_py.PyObject_GetAttrString(mod, name);
    if (!orig)
        return -ENOENT;
    int rc = -EINVAL;
    PyObject *h = NULL;
    if (at_imp_type_of(orig) == hook_type) {
        rc = -EEXIST;                   /* ours already */
    } else if (!(h = hook_new(orig, fn))) {
        rc = -ENOMEM;
    } else if (at_imp_api.Object_SetAttrString(mod, name, h) == 0) {
        rc = 0;                         /* the module's dict holds it now */
    }
    if (h)
        at_py.Py_DecRef(h);
    at_py.Py_DecRef(orig);
    return rc;
}
