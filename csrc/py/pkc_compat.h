/*
 * pkc_compat.h - the few C-API calls pykafka_c uses that are newer than
 * its oldest supported Python (3.10), written for this project.
 *
 * Each shim is compiled only on the versions that lack the call, and has
 * the documented semantics of the real one, so the code above it is
 * written against the current API and this file shrinks as old versions
 * are dropped.  Include it right after <Python.h> (module.h does).
 *
 *   PyType_GetModuleByDef  public from 3.11.  On 3.10 walk the MRO as
 *                          3.11 does: the first heap type whose module
 *                          (ht_module, set by PyType_FromModuleAndSpec)
 *                          was made from `def`.
 *
 * Everything else the glue uses exists in 3.10: Py_NewRef, Py_XNewRef,
 * PyModule_AddObjectRef, PyModule_AddType, Py_TPFLAGS_IMMUTABLETYPE,
 * PyType_FromModuleAndSpec, PyType_GetModuleState, PyObject_Vectorcall,
 * PyObject_CallMethodOneArg, PyThreadState_GetID.  Slots newer than 3.10
 * (Py_mod_multiple_interpreters, 3.12) are used under #ifdef where they
 * are used.
 */
#pragma once

#include <Python.h>

#if PY_VERSION_HEX < 0x030B0000

/* Borrowed reference to the module of the first class on type's MRO that
 * was made by PyType_FromModuleAndSpec with a module from `def`; NULL with
 * TypeError set if there is none (as 3.11). */
static inline PyObject *
PyType_GetModuleByDef(PyTypeObject *type, PyModuleDef *def)
{
    PyObject *mro = type->tp_mro;

    if (mro != NULL && PyTuple_Check(mro)) {
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(mro); i++) {
            PyTypeObject *base = (PyTypeObject *)PyTuple_GET_ITEM(mro, i);
            PyObject *mod;

            if (!(base->tp_flags & Py_TPFLAGS_HEAPTYPE))
                continue;
            mod = ((PyHeapTypeObject *)base)->ht_module;
            if (mod != NULL && PyModule_GetDef(mod) == def)
                return mod;
        }
    }
    PyErr_Format(PyExc_TypeError,
                 "PyType_GetModuleByDef: No superclass of '%s' has the "
                 "given module",
                 type->tp_name);
    return NULL;
}

#endif /* < 3.11 */
