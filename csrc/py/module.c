/*
 * module.c - assembles pykafka_c._core: module state, exec slot,
 * traverse/clear, and the few module-level functions that belong to no
 * type (_set_exceptions, codec availability).
 */
#include "module.h"
#include "message.h"

#include <stdarg.h>

PyObject *
pkc_raise(PyObject *cls, const char *fmt, ...)
{
    va_list va;
    PyObject *msg;

    va_start(va, fmt);
    msg = PyUnicode_FromFormatV(fmt, va);
    va_end(va);
    if (msg == NULL)
        return NULL;
    PyErr_SetObject(cls ? cls : PyExc_RuntimeError, msg);
    Py_DECREF(msg);
    return NULL;
}

PyObject *
pkc_raise_decode(pkc_state *st, int status, const char *what,
                 const pkc_reader *r)
{
    PyObject *cls = st->ProtocolDecodeError;

    if (status == PKC_ERR_CRC && st->CorruptRecordError)
        cls = st->CorruptRecordError;
    else if (status == PKC_ERR_CODEC && st->CodecUnavailableError)
        cls = st->CodecUnavailableError;
    else if (status == PKC_ERR_COMPRESSION && st->CompressionError)
        cls = st->CompressionError;
    else if (status == PKC_ERR_NOMEM)
        return PyErr_NoMemory();
    if (r != NULL)
        return pkc_raise(cls, "%s: %s in field '%s' at byte %zu of %zu",
                         what, pkc_status_str(status),
                         r->err_field ? r->err_field : "?", r->err_offset,
                         (size_t)(r->end - r->start));
    return pkc_raise(cls, "%s: %s", what, pkc_status_str(status));
}

PyObject *
pkc_raise_kafka_error(pkc_state *st, int code, const char *msg)
{
    PyObject *exc;

    if (st->error_for_code == NULL)
        return pkc_raise(NULL, "Kafka error code %d: %s", code, msg);
    exc = PyObject_CallFunction(st->error_for_code, "is", code, msg);
    if (exc == NULL)
        return NULL;
    PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
    Py_DECREF(exc);
    return NULL;
}

/* _set_exceptions(classes: dict, error_for_code: callable) */
static PyObject *
pkc_set_exceptions(PyObject *module, PyObject *args)
{
    pkc_state *st = pkc_get_state(module);
    PyObject *classes, *efc;
    struct {
        const char *name;
        PyObject **slot;
    } table[] = {
        {"KafkaException", &st->KafkaException},
        {"SocketDisconnectedError", &st->SocketDisconnectedError},
        {"ProtocolDecodeError", &st->ProtocolDecodeError},
        {"CorruptRecordError", &st->CorruptRecordError},
        {"CompressionError", &st->CompressionError},
        {"CodecUnavailableError", &st->CodecUnavailableError},
        {"MessageSetDecodeFailure", &st->MessageSetDecodeFailure},
        {"UnsupportedApiVersionError", &st->UnsupportedApiVersionError},
        {"ConsumerStoppedException", &st->ConsumerStoppedException},
        {"SslError", &st->SslError},
        {"SslUnavailableError", &st->SslUnavailableError},
    };

    if (!PyArg_ParseTuple(args, "O!O:_set_exceptions", &PyDict_Type,
                          &classes, &efc))
        return NULL;
    if (!PyCallable_Check(efc)) {
        PyErr_SetString(PyExc_TypeError, "error_for_code must be callable");
        return NULL;
    }
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        PyObject *cls = PyDict_GetItemString(classes, table[i].name);
        if (cls == NULL || !PyExceptionClass_Check(cls)) {
            PyErr_Format(PyExc_TypeError,
                         "_set_exceptions: missing exception class %s",
                         table[i].name);
            return NULL;
        }
        Py_XSETREF(*table[i].slot, Py_NewRef(cls));
    }
    Py_XSETREF(st->error_for_code, Py_NewRef(efc));
    Py_RETURN_NONE;
}

PyDoc_STRVAR(pkc_set_exceptions_doc,
"_set_exceptions($module, classes, error_for_code, /)\n--\n\n"
"Private: hand the exception classes of pykafka_c.exceptions to the core.");

static PyMethodDef pkc_methods[] = {
    {"_set_exceptions", pkc_set_exceptions, METH_VARARGS,
     pkc_set_exceptions_doc},
    {NULL}
};

static int
pkc_exec(PyObject *module)
{
    pkc_state *st = pkc_get_state(module);

    st->str_empty = PyUnicode_InternFromString("");
    if (st->str_empty == NULL)
        return -1;
    if (pkc_compress_exec(module, st) < 0)
        return -1;
    if (pkc_message_exec(module, st) < 0)
        return -1;
    if (pkc_records_exec(module, st) < 0)
        return -1;
    if (pkc_connection_exec(module, st) < 0)
        return -1;
    if (pkc_proto_exec(module, st) < 0)
        return -1;
    if (pkc_producer_exec(module, st) < 0)
        return -1;
    if (pkc_security_exec(module, st) < 0)
        return -1;
    if (pkc_fetcher_exec(module, st) < 0)
        return -1;
    return 0;
}

static int
pkc_traverse(PyObject *module, visitproc visit, void *arg)
{
    pkc_state *st = pkc_get_state(module);

    Py_VISIT(st->KafkaException);
    Py_VISIT(st->SocketDisconnectedError);
    Py_VISIT(st->ProtocolDecodeError);
    Py_VISIT(st->CorruptRecordError);
    Py_VISIT(st->CompressionError);
    Py_VISIT(st->CodecUnavailableError);
    Py_VISIT(st->MessageSetDecodeFailure);
    Py_VISIT(st->UnsupportedApiVersionError);
    Py_VISIT(st->ConsumerStoppedException);
    Py_VISIT(st->SslError);
    Py_VISIT(st->SslUnavailableError);
    Py_VISIT(st->error_for_code);
    Py_VISIT(st->MessageType);
    Py_VISIT(st->MessageBaseType);
    Py_VISIT(st->ConnectionType);
    Py_VISIT(st->FetcherType);
    Py_VISIT(st->ProducerCoreType);
    Py_VISIT(st->SecurityType);
    Py_VISIT(st->str_empty);
    Py_VISIT(st->datetime_type);
    Py_VISIT(st->timedelta_type);
    Py_VISIT(st->epoch);
    Py_VISIT(st->proto_names);
    return 0;
}

static int
pkc_clear(PyObject *module)
{
    pkc_state *st = pkc_get_state(module);

    Py_CLEAR(st->KafkaException);
    Py_CLEAR(st->SocketDisconnectedError);
    Py_CLEAR(st->ProtocolDecodeError);
    Py_CLEAR(st->CorruptRecordError);
    Py_CLEAR(st->CompressionError);
    Py_CLEAR(st->CodecUnavailableError);
    Py_CLEAR(st->MessageSetDecodeFailure);
    Py_CLEAR(st->UnsupportedApiVersionError);
    Py_CLEAR(st->ConsumerStoppedException);
    Py_CLEAR(st->SslError);
    Py_CLEAR(st->SslUnavailableError);
    Py_CLEAR(st->error_for_code);
    pkc_message_spares_free(st);
    Py_CLEAR(st->MessageType);
    Py_CLEAR(st->MessageBaseType);
    Py_CLEAR(st->ConnectionType);
    Py_CLEAR(st->FetcherType);
    Py_CLEAR(st->ProducerCoreType);
    Py_CLEAR(st->SecurityType);
    Py_CLEAR(st->str_empty);
    Py_CLEAR(st->datetime_type);
    Py_CLEAR(st->timedelta_type);
    Py_CLEAR(st->epoch);
    Py_CLEAR(st->proto_names);
    return 0;
}

static void
pkc_free(void *module)
{
    pkc_clear((PyObject *)module);
}

static PyModuleDef_Slot pkc_slots[] = {
    {Py_mod_exec, pkc_exec},
#ifdef Py_mod_multiple_interpreters
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
#ifdef Py_mod_gil
    /* Said out loud (it is the default): _core's Python objects rely on
     * the GIL (no per-object critical sections yet), so a free-threaded
     * interpreter (3.13t, 3.14t) turns the GIL back on when it imports
     * _core.  See README, "Python versions". */
    {Py_mod_gil, Py_MOD_GIL_USED},
#endif
    {0, NULL}
};

PyDoc_STRVAR(pkc_module_doc,
"The C core of pykafka_c: wire codec, records, compression, connections,\n"
"the fetch loop and the producer's send path.");

PyModuleDef pkc_module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "pykafka_c._core",
    .m_doc = pkc_module_doc,
    .m_size = sizeof(pkc_state),
    .m_methods = pkc_methods,
    .m_slots = pkc_slots,
    .m_traverse = pkc_traverse,
    .m_clear = pkc_clear,
    .m_free = pkc_free,
};

PyMODINIT_FUNC
PyInit__core(void)
{
    return PyModuleDef_Init(&pkc_module_def);
}
