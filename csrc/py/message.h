/*
 * message.h - the C layout of pykafka_c.protocol.Message, for the C code
 * that builds messages (the fetch loop, through pkc_message_from_record in
 * module.h) or reads them (record-batch encoding, the producer).
 */
#pragma once

#include "module.h"

typedef struct {
    PyObject_HEAD
    PyObject *value;             /* any object; bytes or None normally */
    PyObject *partition_key;     /* likewise */
    PyObject *partition;         /* a Partition, set by consumers; None */
    PyObject *delivery_report_q; /* the producer's queue; None */
    PyObject *timestamp;         /* NULL until read: then made from ts_ms */
    PyObject *headers;           /* NULL until read: then a new [] */
    int64_t offset;
    int64_t ts_ms;               /* the timestamp while `timestamp` is NULL */
    int32_t partition_id;
    int32_t compression_type;
    int32_t produce_attempt;
    int32_t protocol_version;
} pkc_message;

#define pkc_message_CAST(op) ((pkc_message *)(op))

/*
 * Garbage-collector tracking.  Like CPython's tuples and dicts of atomic
 * values, a Message of pykafka_c.protocol.Message's exact type starts
 * untracked, so that the many short-lived messages of a fetch answer cost
 * the cyclic GC nothing, and is tracked (for good) the moment one of its
 * slots receives an object that can be part of a reference cycle.  The
 * invariant, kept by every path that stores into a Message (its setters,
 * __init__, __setstate__, the fetcher, the producer): an untracked Message
 * holds only objects for which pkc_message_may_cycle() is false, and a
 * headers list that has never been handed out to Python code.  Subclass
 * instances are always tracked.
 */

/* 1 if `obj` may take part in a cycle: a GC object, except an exact tuple
 * the collector untracked (it holds only atomic objects).  NULL is 0. */
static inline int
pkc_message_may_cycle(PyObject *obj)
{
    /* The type's flag first: an inline test that settles bytes, str, int
     * and None without a call. */
    if (obj == NULL || !PyType_IS_GC(Py_TYPE(obj)) || !PyObject_IS_GC(obj))
        return 0;
    return !(PyTuple_CheckExact(obj) && !PyObject_GC_IsTracked(obj));
}

/* Track `m` if it is untracked and `obj` (about to be, or just, stored in
 * it) may take part in a cycle. */
static inline void
pkc_message_note(pkc_message *m, PyObject *obj)
{
    if (!PyObject_GC_IsTracked((PyObject *)m) && pkc_message_may_cycle(obj))
        PyObject_GC_Track((PyObject *)m);
}

/* Store a new reference to `obj` (not NULL) in `*slot`, one of m's
 * object fields, dropping the old one; keeps the tracking invariant. */
static inline void
pkc_message_store(pkc_message *m, PyObject **slot, PyObject *obj)
{
    pkc_message_note(m, obj);
    Py_XSETREF(*slot, Py_NewRef(obj));
}

/* The timestamp of `m` in ms for encoding: *out set and 0 returned; 1 if
 * it is None (the caller picks "now"); -1 with TypeError for other
 * objects.  Floats are truncated. */
int pkc_message_timestamp_ms(pkc_message *m, int64_t *out);

/* A new, untracked Message of the exact type with uninitialised slots (a
 * freed one when one is kept for reuse); NULL with MemoryError. */
pkc_message *pkc_message_alloc(pkc_state *st);

/* Free the Messages kept for reuse (module teardown). */
void pkc_message_spares_free(pkc_state *st);
