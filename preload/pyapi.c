/* SPDX-License-Identifier: MIT */
/* pyapi.c - resolve the CPython C-API the shim uses, by dlsym, once. */
#include <dlfcn.h>
#include <errno.h>
#include <string.h>
#include "pyapi.h"
#include "py311.h"
#include "py312.h"
#include "py313.h"

/* Used before a version is chosen (and in processes of any version):
 * the object header and tp_name are where they are in every table. */
_Static_assert(AT_OBJECT_TYPE == AT312_OBJECT_TYPE && AT_OBJECT_TYPE == AT313_OBJECT_TYPE &&
               AT_TYPE_NAME == AT312_TYPE_NAME && AT_TYPE_NAME == AT313_TYPE_NAME,
               "ob_type and tp_name have not moved");

at_pyapi_t at_py;

void *at_py_sym(const char *name)
{
    return dlsym(RTLD_DEFAULT, name);
}

#define RESOLVE(field, name) (*(void **)&at_py.field = at_py_sym(name))

/* Every function the core needs; a missing one means "not a CPython we
 * can drive" and the shim stays inert. */
static int resolve_required(void)
{
    void *need[] = {
        RESOLVE(PySys_AddAuditHook, "PySys_AddAuditHook"),
        RESOLVE(Py_IsInitialized, "Py_IsInitialized"),
        RESOLVE(Py_GetVersion, "Py_GetVersion"),
        RESOLVE(PyGILState_Check, "PyGILState_Check"),
        RESOLVE(PyTuple_Size, "PyTuple_Size"),
        RESOLVE(PyTuple_GetItem, "PyTuple_GetItem"),
        RESOLVE(PyUnicode_AsUTF8AndSize, "PyUnicode_AsUTF8AndSize"),
        RESOLVE(PyObject_GetAttrString, "PyObject_GetAttrString"),
        RESOLVE(PyObject_Str, "PyObject_Str"),
        RESOLVE(PyImport_ImportModule, "PyImport_ImportModule"),
        RESOLVE(PyCFunction_NewEx, "PyCFunction_NewEx"),
        RESOLVE(PySys_GetObject, "PySys_GetObject"),
        RESOLVE(PyLong_AsLong, "PyLong_AsLong"),
        RESOLVE(Py_IncRef, "Py_IncRef"),
        RESOLVE(Py_DecRef, "Py_DecRef"),
        RESOLVE(PyErr_Fetch, "PyErr_Fetch"),
        RESOLVE(PyErr_Restore, "PyErr_Restore"),
        RESOLVE(PyErr_Clear, "PyErr_Clear"),
        RESOLVE(PyMem_GetAllocator, "PyMem_GetAllocator"),
        RESOLVE(PyMem_SetAllocator, "PyMem_SetAllocator"),
    };
    for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++)
        if (!need[i])
            return -ENOENT;
    return 0;
}

int at_pyapi_resolve(void)
{
    if (resolve_required() < 0)
        return -ENOENT;
    /* Optional: 3.11+ only, or absent in odd builds. */
    RESOLVE(PyObject_CallOneArg, "PyObject_CallOneArg");
    at_py.Py_Version = at_py_sym("Py_Version");
    at_py.runtime = at_py_sym("_PyRuntime");

    Dl_info info;
    if (dladdr(*(void **)&at_py.PySys_AddAuditHook, &info) && info.dli_fname) {
        at_py.defining_object = info.dli_fname;
        at_py.shared = strstr(info.dli_fname, "libpython") != NULL;
    }
    return 0;
}

const char *at_py_type_name(PyObject *o)
{
    if (!o)
        return "NULL";
    const char *type = *(const char *const *)((const char *)o + AT_OBJECT_TYPE);
    if (!type)
        return "?";
    const char *name = *(const char *const *)(type + AT_TYPE_NAME);
    return name ? name : "?";
}

const char *at_py_str(PyObject *o)
{
    if (!o || strcmp(at_py_type_name(o), "str") != 0)
        return NULL;
    at_py_ssize_t n = 0;
    const char *s = at_py.PyUnicode_AsUTF8AndSize(o, &n);
    if (!s)
        at_py.PyErr_Clear();  /* lone surrogates: not representable */
    return s;
}
