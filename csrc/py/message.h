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

/* The timestamp of `m` in ms for encoding: *out set and 0 returned; 1 if
 * it is None (the caller picks "now"); -1 with TypeError for other
 * objects.  Floats are truncated. */
int pkc_message_timestamp_ms(pkc_message *m, int64_t *out);
