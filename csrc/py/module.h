/*
 * module.h - the module state of pykafka_c._core and what the per-type
 * files share.  Everything module-specific lives in pkc_state (no C
 * globals holding Python objects); types are heap types made in the exec
 * slot with PyType_FromModuleAndSpec.
 */
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "pkc_compat.h"

#include "buf.h"
#include "records.h"

/* How many freed Messages the module keeps for reuse: two fetch answers'
 * worth of 100-byte records, about 0.5 MB at most. */
#define PKC_SPARE_MESSAGES_MAX 4096

typedef struct {
    /* Exception classes from pykafka_c.exceptions, handed over by
     * _core._set_exceptions() at package import.  NULL until then; raise
     * through pkc_raise() which falls back to RuntimeError. */
    PyObject *KafkaException;
    PyObject *SocketDisconnectedError;
    PyObject *ProtocolDecodeError;
    PyObject *CorruptRecordError;
    PyObject *CompressionError;
    PyObject *CodecUnavailableError;
    PyObject *MessageSetDecodeFailure;
    PyObject *UnsupportedApiVersionError;
    PyObject *ConsumerStoppedException;
    PyObject *SslError;            /* TLS set-up or verification failed */
    PyObject *SslUnavailableError; /* a build without OpenSSL */
    PyObject *error_for_code; /* callable (code, message) -> instance */

    /* Heap types, set by each type file's exec function. */
    PyTypeObject *MessageType;     /* pykafka_c.protocol.Message */
    PyTypeObject *MessageBaseType; /* pykafka_c.common.Message */
    PyTypeObject *ConnectionType;
    PyTypeObject *FetcherType;
    PyTypeObject *ProducerCoreType;
    PyTypeObject *SecurityType;

    /* Interned strings and other caches. */
    PyObject *str_empty;
    PyObject *datetime_type;  /* datetime.datetime */
    PyObject *timedelta_type; /* datetime.timedelta */
    PyObject *epoch;          /* datetime(1970, 1, 1), naive */
    PyObject *proto_names; /* tuple: interned name of each proto field row */

    /* Freed pykafka_c.protocol.Message objects kept for reuse (message.c):
     * a fetch answer makes and drops thousands at a time, and reuse skips
     * the allocator and the cyclic GC's allocation count.  Untracked,
     * cleared, holding no reference (not even to their type). */
    PyObject *spare_messages[PKC_SPARE_MESSAGES_MAX];
    int spare_message_count;
} pkc_state;

extern PyModuleDef pkc_module_def;

static inline pkc_state *
pkc_get_state(PyObject *module)
{
    return (pkc_state *)PyModule_GetState(module);
}

/* State from an instance of one of our heap types (subclass-safe). */
static inline pkc_state *
pkc_state_from_type(PyTypeObject *tp)
{
    PyObject *mod = PyType_GetModuleByDef(tp, &pkc_module_def);
    if (mod == NULL)
        return NULL;
    return pkc_get_state(mod);
}

/* Cast for METH_FASTCALL / METH_KEYWORDS functions (through a void function
 * pointer so -Wcast-function-type stays quiet). */
#define PKC_CFUNC(f) ((PyCFunction)(void (*)(void))(f))

/*
 * Raise `cls` (one of the state's exception fields; RuntimeError if it is
 * still NULL) with a formatted message.  Always returns NULL.
 */
PyObject *pkc_raise(PyObject *cls, const char *fmt, ...);

/*
 * Raise the exception for a failed decode: ProtocolDecodeError (or
 * CorruptRecordError for PKC_ERR_CRC, CompressionError / CodecUnavailableError
 * for the compression statuses), with a message naming `what` (e.g.
 * "Fetch v12 response"), the field and byte offset of the reader.  `r` may
 * be NULL.  Always returns NULL.
 */
PyObject *pkc_raise_decode(pkc_state *st, int status, const char *what,
                           const pkc_reader *r);

/* Raise the pykafka exception for Kafka error code `code` (never KeyError).
 * Always returns NULL. */
PyObject *pkc_raise_kafka_error(pkc_state *st, int code, const char *msg);

/*
 * Raise the exception for a failed pkc_compress / pkc_decompress (status
 * from compress.h) on `codec`: CodecUnavailableError naming the codec and
 * the package to install, CompressionError for corrupt data and, when
 * `decompressing`, for a result over `max_size` bytes; ValueError for a
 * bad level or unknown codec; MemoryError.  Always returns NULL.
 */
PyObject *pkc_raise_codec(pkc_state *st, int status, int codec,
                          int decompressing, size_t max_size);

/* Exec functions of the per-type / per-area files, called in order by the
 * module's exec slot.  Each returns 0, or -1 with an exception set. */
int pkc_compress_exec(PyObject *module, pkc_state *st); /* compress.c */
int pkc_message_exec(PyObject *module, pkc_state *st);  /* message.c */
int pkc_records_exec(PyObject *module, pkc_state *st);  /* records.c */
int pkc_producer_exec(PyObject *module, pkc_state *st); /* producer.c */

/*
 * A new pykafka_c.protocol.Message for a decoded record (message.c): value
 * and key copied into bytes (or None), headers into a list of (str, bytes
 * or None) tuples, offset / timestamp / partition_id set directly without
 * calling __init__.  Returns a new reference, or NULL with an exception
 * set.  Needs the GIL; `rec`'s views must be valid during the call only.
 */
PyObject *pkc_message_from_record(pkc_state *st, const pkc_record *rec,
                                  int32_t partition_id);
int pkc_connection_exec(PyObject *module, pkc_state *st);
int pkc_proto_exec(PyObject *module, pkc_state *st);
int pkc_fetcher_exec(PyObject *module, pkc_state *st); /* fetcher.c */
int pkc_security_exec(PyObject *module, pkc_state *st); /* security.c */

/* The pkc_security of a `security=` argument (a _core.Security, or None
 * for *out NULL); borrowed from the object.  Returns 0, or -1 with
 * TypeError set. */
struct pkc_security;
int pkc_security_arg(pkc_state *st, PyObject *obj,
                     struct pkc_security **out);
