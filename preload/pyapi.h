/* SPDX-License-Identifier: MIT */
/* pyapi.h - the few CPython C-API functions the shim calls, found by dlsym.
 *
 * The shim never links libpython and never includes Python.h: it loads
 * into every process of a session (shells, compilers, `ls`), so every
 * Python symbol is looked up at run time and the shim stays inert where
 * they are missing.  Only call these with the GIL held (PyGILState_Check).
 */
#ifndef AT_PYAPI_H
#define AT_PYAPI_H
#include <stddef.h>
#include <sys/types.h>

typedef struct _object PyObject;       /* opaque: layout via pyversion.h only */
typedef ssize_t at_py_ssize_t;
typedef int (*at_audit_hook_fn)(const char *event, PyObject *args, void *data);

typedef struct at_pyapi {
    int (*PySys_AddAuditHook)(at_audit_hook_fn hook, void *data);
    int (*Py_IsInitialized)(void);
    const char *(*Py_GetVersion)(void);
    const unsigned long *Py_Version;   /* NULL before 3.11              */
    void *runtime;                     /* &_PyRuntime                   */
    int (*PyGILState_Check)(void);
    at_py_ssize_t (*PyTuple_Size)(PyObject *t);
    PyObject *(*PyTuple_GetItem)(PyObject *t, at_py_ssize_t i);   /* borrowed */
    const char *(*PyUnicode_AsUTF8AndSize)(PyObject *s, at_py_ssize_t *n);
    int (*PyUnicode_Check_fn)(PyObject *o);                        /* NULL: use type name */
    PyObject *(*PyObject_GetAttrString)(PyObject *o, const char *name); /* new ref */
    PyObject *(*PyObject_Str)(PyObject *o);                        /* new ref */
    PyObject *(*PyImport_ImportModule)(const char *name);          /* new ref */
    PyObject *(*PyObject_CallOneArg)(PyObject *f, PyObject *arg);  /* new ref */
    PyObject *(*PyCFunction_NewEx)(void *method_def, PyObject *self, PyObject *module);
    PyObject *(*PySys_GetObject)(const char *name);                /* borrowed */
    long (*PyLong_AsLong)(PyObject *o);
    void (*Py_IncRef)(PyObject *o);
    void (*Py_DecRef)(PyObject *o);
    void (*PyErr_Fetch)(PyObject **t, PyObject **v, PyObject **tb);
    void (*PyErr_Restore)(PyObject *t, PyObject *v, PyObject *tb);
    void (*PyErr_Clear)(void);
    void (*PyMem_GetAllocator)(int domain, void *allocator);
    void (*PyMem_SetAllocator)(int domain, void *allocator);
    const char *defining_object;       /* file that defines the API      */
    int shared;                        /* 1: libpython*.so, 0: in the exe */
} at_pyapi_t;

extern at_pyapi_t at_py;

/* Resolve the table once; 0 when this is a Python process, -ENOENT if not. */
int at_pyapi_resolve(void);

/* dlsym(RTLD_DEFAULT, name), cached by the caller: for symbols not above. */
void *at_py_sym(const char *name);

/* The type name of o ("str", "tuple", ...) read from ob_type->tp_name;
 * never NULL. */
const char *at_py_type_name(PyObject *o);

/* UTF-8 of a str object (borrowed, valid while o lives), or NULL when o is
 * not a str; never leaves an exception set. */
const char *at_py_str(PyObject *o);

#endif
