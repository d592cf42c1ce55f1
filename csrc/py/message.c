/*
 * message.c - pykafka_c.protocol.Message (and its empty base
 * pykafka_c.common.Message), defined in C so that the fetch loop can make
 * one per record without running Python code.
 *
 * Same constructor, attributes and behaviour as pykafka 2.8's slotted
 * Message, plus `headers` (a list of (str, bytes or None) pairs).
 * Differences, by design:
 *  - offset, partition_id, compression_type, produce_attempt and
 *    protocol_version are C integers: assigning a non-int raises TypeError.
 *  - decode() verifies the CRC32 (pykafka did not) and raises typed
 *    pykafka_c exceptions on malformed input.
 *  - timestamp_dt is None when timestamp is None (pykafka raised TypeError).
 *  - Messages from the consumer have protocol_version 1 when the record
 *    carried a timestamp (magic 1 or 2) and 0 for magic 0, and timestamp
 *    -1 when it had none (pykafka: 0).
 * Decoded messages create their timestamp int and headers list lazily.
 * Messages start untracked by the cyclic GC and are tracked once a slot
 * gets an object that can be part of a cycle (see message.h); the object
 * slots are therefore written only through Message_setattro (their member
 * descriptors are read-only) and the setters below.
 */
#include "message.h"

#include <math.h>
#include <structmember.h>
#include <time.h>

/* ------------------------------------------------------------ helpers */

static int64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static pkc_state *
message_state(PyObject *op)
{
    return pkc_state_from_type(Py_TYPE(op));
}

/* The timestamp object, made from ts_ms on first use.  Borrowed. */
static PyObject *
message_timestamp(pkc_message *m)
{
    if (m->timestamp == NULL)
        m->timestamp = PyLong_FromLongLong(m->ts_ms);
    return m->timestamp;
}

int
pkc_message_timestamp_ms(pkc_message *m, int64_t *out)
{
    PyObject *ts = m->timestamp;

    *out = -1;
    if (ts == NULL) {
        *out = m->ts_ms;
        return 0;
    }
    if (ts == Py_None)
        return 1;
    if (PyLong_Check(ts)) {
        long long v = PyLong_AsLongLong(ts);
        if (v == -1 && PyErr_Occurred())
            return -1;
        *out = v;
        return 0;
    }
    if (PyFloat_Check(ts)) {
        double d = PyFloat_AS_DOUBLE(ts);
        if (!isfinite(d) || d >= 9.2e18 || d <= -9.2e18) {
            PyErr_SetString(PyExc_ValueError, "timestamp out of range");
            return -1;
        }
        *out = (int64_t)d;
        return 0;
    }
    PyErr_Format(PyExc_TypeError,
                 "Message.timestamp must be an int, a float or None, not "
                 "%.100s",
                 Py_TYPE(ts)->tp_name);
    return -1;
}

/* timestamp = int(1000 * (dt - EPOCH).total_seconds()), as pykafka. */
static int
message_set_timestamp_dt(pkc_state *st, pkc_message *m, PyObject *dt)
{
    PyObject *delta = NULL, *secs = NULL, *ms = NULL;
    double d;
    int rc = -1;

    delta = PyNumber_Subtract(dt, st->epoch);
    if (delta == NULL)
        goto done;
    secs = PyObject_CallMethod(delta, "total_seconds", NULL);
    if (secs == NULL)
        goto done;
    d = PyFloat_AsDouble(secs);
    if (d == -1.0 && PyErr_Occurred())
        goto done;
    ms = PyLong_FromDouble(1000.0 * d);
    if (ms == NULL)
        goto done;
    pkc_message_store(m, &m->timestamp, ms);
    rc = 0;
done:
    Py_XDECREF(delta);
    Py_XDECREF(secs);
    Py_XDECREF(ms);
    return rc;
}

/* pykafka's set_timestamp: exactly int, float or None is stored, exactly
 * datetime goes through timestamp_dt, anything else is RuntimeError. */
static int
message_set_timestamp(pkc_state *st, pkc_message *m, PyObject *ts)
{
    if (ts == Py_None || PyLong_CheckExact(ts) || PyFloat_CheckExact(ts)) {
        pkc_message_store(m, &m->timestamp, ts);
        return 0;
    }
    if ((PyObject *)Py_TYPE(ts) == st->datetime_type)
        return message_set_timestamp_dt(st, m, ts);
    PyErr_Format(PyExc_RuntimeError,
                 "timestamp must be an int, float, None or datetime, not "
                 "%.100s",
                 Py_TYPE(ts)->tp_name);
    return -1;
}

/* A list of (str, bytes or None) from a record's header area.  New
 * reference. */
static PyObject *
headers_from_record(const pkc_record *rec)
{
    PyObject *list = NULL, *k = NULL, *v = NULL, *pair;
    pkc_header_iter hi;
    pkc_slice hk, hv;
    Py_ssize_t i = 0;
    int rc;

    list = PyList_New(rec->header_count);
    if (list == NULL)
        return NULL;
    pkc_record_headers_init(&hi, rec);
    while ((rc = pkc_record_headers_next(&hi, &hk, &hv)) == 1 &&
           i < rec->header_count) {
        k = PyUnicode_DecodeUTF8((const char *)hk.ptr, hk.len,
                                 "surrogateescape");
        if (k == NULL)
            goto error;
        v = hv.len < 0 ? Py_NewRef(Py_None)
                       : PyBytes_FromStringAndSize((const char *)hv.ptr,
                                                   hv.len);
        if (v == NULL)
            goto error;
        pair = PyTuple_Pack(2, k, v);
        if (pair == NULL)
            goto error;
        Py_CLEAR(k);
        Py_CLEAR(v);
        PyList_SET_ITEM(list, i, pair); /* steals pair */
        i++;
    }
    if (rc < 0 || i != rec->header_count) {
        /* pkc_records_next validated the area: only a caller-made record
         * can get here. */
        PyErr_SetString(PyExc_ValueError, "malformed record headers");
        goto error;
    }
    return list;
error:
    Py_XDECREF(k);
    Py_XDECREF(v);
    Py_DECREF(list);
    return NULL;
}

static void Message_dealloc(PyObject *op);

/* Under AddressSanitizer a kept Message is poisoned until reused, so a
 * use after free of a Message is still reported. */
#if defined(__has_feature)
#if __has_feature(address_sanitizer) && !defined(__SANITIZE_ADDRESS__)
#define __SANITIZE_ADDRESS__ 1
#endif
#endif
#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/asan_interface.h>
#define SPARE_POISON(op) ASAN_POISON_MEMORY_REGION((op), sizeof(pkc_message))
#define SPARE_UNPOISON(op) \
    ASAN_UNPOISON_MEMORY_REGION((op), sizeof(pkc_message))
#else
#define SPARE_POISON(op) ((void)(op))
#define SPARE_UNPOISON(op) ((void)(op))
#endif

/*
 * Reuse of freed Messages.  Message_dealloc keeps up to
 * PKC_SPARE_MESSAGES_MAX instances of the exact type (cleared, untracked,
 * without their reference to the type) and pkc_message_alloc hands them
 * out again, re-initialised by PyObject_Init as CPython's own free lists
 * do for tuples and lists.  The caller of either holds the GIL.
 */
pkc_message *
pkc_message_alloc(pkc_state *st)
{
    PyObject *op;

    if (st->spare_message_count == 0)
        return PyObject_GC_New(pkc_message, st->MessageType);
    op = st->spare_messages[--st->spare_message_count];
    SPARE_UNPOISON(op);
    return (pkc_message *)PyObject_Init(op, st->MessageType);
}

/* Keep a cleared, untracked Message for reuse; 0 when it must be freed. */
static int
message_keep_spare(PyObject *op)
{
    PyTypeObject *tp = Py_TYPE(op);
    pkc_state *st;

    /* Subclasses (created by Python) deallocate through subtype_dealloc,
     * so a tp_dealloc of our own means the exact type. */
    if (tp->tp_dealloc != Message_dealloc)
        return 0;
    st = (pkc_state *)PyType_GetModuleState(tp);
    if (st == NULL || tp != st->MessageType ||
        st->spare_message_count >= PKC_SPARE_MESSAGES_MAX)
        return 0;
    st->spare_messages[st->spare_message_count++] = op;
    SPARE_POISON(op);
    return 1;
}

void
pkc_message_spares_free(pkc_state *st)
{
    PyObject *op;

    while (st->spare_message_count > 0) {
        op = st->spare_messages[--st->spare_message_count];
        SPARE_UNPOISON(op);
        PyObject_GC_Del(op);
    }
}

PyObject *
pkc_message_from_record(pkc_state *st, const pkc_record *rec,
                        int32_t partition_id)
{
    PyObject *value = NULL, *key = NULL, *headers = NULL;
    pkc_message *m;

    if (rec->value.len < 0)
        value = Py_NewRef(Py_None);
    else
        value = PyBytes_FromStringAndSize((const char *)rec->value.ptr,
                                          rec->value.len);
    if (value == NULL)
        goto error;
    if (rec->key.len < 0)
        key = Py_NewRef(Py_None);
    else
        key = PyBytes_FromStringAndSize((const char *)rec->key.ptr,
                                        rec->key.len);
    if (key == NULL)
        goto error;
    if (rec->header_count > 0 && (headers = headers_from_record(rec)) == NULL)
        goto error;
    m = pkc_message_alloc(st);
    if (m == NULL)
        goto error;
    m->value = value;         /* steals */
    m->partition_key = key;   /* steals */
    m->headers = headers;     /* steals; NULL means [] */
    m->partition = Py_NewRef(Py_None);
    m->delivery_report_q = Py_NewRef(Py_None);
    m->timestamp = NULL;
    m->ts_ms = rec->timestamp;
    m->offset = rec->offset;
    m->partition_id = partition_id;
    m->compression_type = 0;
    m->produce_attempt = 0;
    m->protocol_version = rec->magic >= 1 ? 1 : 0;
    /* Left untracked: bytes, None and a headers list of (str, bytes or
     * None) tuples that no Python code has seen yet cannot form a cycle
     * (message.h). */
    return (PyObject *)m;
error:
    Py_XDECREF(value);
    Py_XDECREF(key);
    Py_XDECREF(headers);
    return NULL;
}

/* -------------------------------------------------------------- slots */

static PyObject *
Message_new(PyTypeObject *type, PyObject *Py_UNUSED(args),
            PyObject *Py_UNUSED(kwds))
{
    pkc_state *st = pkc_state_from_type(type);
    pkc_message *m;

    if (st == NULL)
        return NULL;
    m = (pkc_message *)type->tp_alloc(type, 0); /* tracked */
    if (m == NULL)
        return NULL;
    /* Untracked until a slot gets an object that may form a cycle (every
     * field is None or a C number here); subclass instances may have a
     * __dict__ or slots of their own, so they stay tracked. */
    if (type == st->MessageType)
        PyObject_GC_UnTrack(m);
    m->value = Py_NewRef(Py_None);
    m->partition_key = Py_NewRef(Py_None);
    m->partition = Py_NewRef(Py_None);
    m->delivery_report_q = Py_NewRef(Py_None);
    m->timestamp = Py_NewRef(Py_None);
    m->offset = -1;
    m->ts_ms = -1;
    m->partition_id = -1;
    return (PyObject *)m;
}

static int
Message_init(PyObject *op, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"value", "partition_key", "compression_type",
                             "offset", "partition_id", "produce_attempt",
                             "protocol_version", "timestamp",
                             "delivery_report_q", "headers", NULL};
    pkc_message *m = pkc_message_CAST(op);
    pkc_state *st = message_state(op);
    PyObject *value, *key = Py_None, *ts = Py_None, *q = Py_None;
    PyObject *headers = Py_None;
    int compression_type = 0, partition_id = -1, produce_attempt = 0;
    int protocol_version = 0;
    long long offset = -1;

    if (st == NULL)
        return -1;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|OiLiiiOO$O:Message",
                                     kwlist, &value, &key, &compression_type,
                                     &offset, &partition_id, &produce_attempt,
                                     &protocol_version, &ts, &q, &headers))
        return -1;
    m->compression_type = compression_type;
    pkc_message_store(m, &m->partition_key, key);
    pkc_message_store(m, &m->value, value);
    m->offset = offset;
    if (ts == Py_None && protocol_version > 0) {
        PyObject *now = PyLong_FromLongLong(now_ms());
        if (now == NULL)
            return -1;
        Py_XSETREF(m->timestamp, now); /* an int: atomic */
    }
    else if (message_set_timestamp(st, m, ts) < 0)
        return -1;
    m->partition_id = partition_id;
    Py_XSETREF(m->partition, Py_NewRef(Py_None));
    m->produce_attempt = produce_attempt;
    pkc_message_store(m, &m->delivery_report_q, q);
    Py_CLEAR(m->headers);
    if (headers != Py_None)
        pkc_message_store(m, &m->headers, headers);
    if (protocol_version != 0 && protocol_version != 1) {
        PyErr_SetString(PyExc_AssertionError,
                        "protocol_version must be 0 or 1");
        return -1;
    }
    m->protocol_version = protocol_version;
    return 0;
}

static int
Message_traverse(PyObject *op, visitproc visit, void *arg)
{
    pkc_message *m = pkc_message_CAST(op);

    Py_VISIT(Py_TYPE(op));
    Py_VISIT(m->value);
    Py_VISIT(m->partition_key);
    Py_VISIT(m->partition);
    Py_VISIT(m->delivery_report_q);
    Py_VISIT(m->timestamp);
    Py_VISIT(m->headers);
    return 0;
}

static int
Message_clear(PyObject *op)
{
    pkc_message *m = pkc_message_CAST(op);

    Py_CLEAR(m->value);
    Py_CLEAR(m->partition_key);
    Py_CLEAR(m->partition);
    Py_CLEAR(m->delivery_report_q);
    Py_CLEAR(m->timestamp);
    Py_CLEAR(m->headers);
    return 0;
}

static void
Message_dealloc(PyObject *op)
{
    PyTypeObject *tp = Py_TYPE(op);

    PyObject_GC_UnTrack(op);
    Message_clear(op);
    if (!message_keep_spare(op))
        tp->tp_free(op);
    Py_DECREF(tp);
}

/* Length of a bytes-like or str (UTF-8) field; -1 for None. */
static int
field_length(PyObject *obj, int64_t *len)
{
    Py_ssize_t n;

    if (obj == NULL || obj == Py_None) {
        *len = -1;
        return 0;
    }
    if (PyBytes_Check(obj)) {
        *len = PyBytes_GET_SIZE(obj);
        return 0;
    }
    if (PyUnicode_Check(obj)) {
        if (PyUnicode_AsUTF8AndSize(obj, &n) == NULL)
            return -1;
        *len = n;
        return 0;
    }
    n = PyObject_Length(obj);
    if (n < 0)
        return -1;
    *len = n;
    return 0;
}

/* ---------------------------------------- legacy (magic 0/1) encoding */

/* The magic pykafka encodes with: 1 only when protocol_version is 1 and the
 * timestamp is truthy.  Sets *ts_ms for magic 1.  -1 with an exception. */
static int
legacy_magic(pkc_message *m, int64_t *ts_ms)
{
    PyObject *ts;
    int truthy, rc;

    *ts_ms = 0;
    if (m->protocol_version != 1)
        return 0;
    ts = message_timestamp(m);
    if (ts == NULL)
        return -1;
    truthy = PyObject_IsTrue(ts);
    if (truthy <= 0)
        return truthy;
    rc = pkc_message_timestamp_ms(m, ts_ms);
    if (rc < 0)
        return -1;
    return rc == 0 ? 1 : 0;
}

/* len(message): its size as a legacy message (crc through value), which is
 * what pack_into writes, as pykafka's Message.__len__. */
static Py_ssize_t
Message_length(PyObject *op)
{
    pkc_message *m = pkc_message_CAST(op);
    int64_t klen, vlen, ts;
    int magic;

    if (field_length(m->partition_key, &klen) < 0 ||
        field_length(m->value, &vlen) < 0)
        return -1;
    if (klen > INT32_MAX || vlen > INT32_MAX) {
        PyErr_SetString(PyExc_OverflowError, "message too large");
        return -1;
    }
    magic = legacy_magic(m, &ts);
    if (magic < 0)
        return -1;
    return (Py_ssize_t)pkc_legacy_message_size(magic, (int32_t)klen,
                                               (int32_t)vlen);
}

/* A bytes-like field as a buffer; null (view->buf NULL, *len -1) for None.
 * Release with release_field(). */
static int
get_field(PyObject *obj, const char *name, Py_buffer *view, int32_t *len)
{
    view->buf = NULL;
    view->obj = NULL;
    *len = -1;
    if (obj == NULL || obj == Py_None)
        return 0;
    if (PyObject_GetBuffer(obj, view, PyBUF_SIMPLE) < 0) {
        PyErr_Format(PyExc_TypeError,
                     "Message.%s must be bytes-like or None to be encoded, "
                     "not %.100s", name, Py_TYPE(obj)->tp_name);
        return -1;
    }
    if (view->len > INT32_MAX) {
        PyBuffer_Release(view);
        view->obj = NULL;
        PyErr_Format(PyExc_OverflowError, "Message.%s too large", name);
        return -1;
    }
    *len = (int32_t)view->len;
    return 0;
}

static void
release_field(Py_buffer *view)
{
    if (view->obj != NULL)
        PyBuffer_Release(view);
}

PyDoc_STRVAR(Message_pack_into_doc,
"pack_into($self, buff, offset, /)\n--\n\n"
"Write the message in the legacy magic 0/1 format (crc, magic,\n"
"attributes, [timestamp], key, value; no offset/size prefix) into the\n"
"writable buffer `buff` at `offset`, as pykafka's Message.pack_into.\n"
"Magic 1 is used only when protocol_version is 1 and the timestamp is\n"
"truthy.  Writes len(self) bytes.");

static PyObject *
Message_pack_into(PyObject *op, PyObject *const *args, Py_ssize_t nargs)
{
    pkc_message *m = pkc_message_CAST(op);
    Py_buffer key = {0}, value = {0}, out = {0};
    int32_t klen, vlen;
    int64_t ts;
    Py_ssize_t offset;
    pkc_writer w;
    int magic, status;
    PyObject *result = NULL;

    if (pkc_writer_init(&w, 0, (size_t)INT32_MAX) != PKC_OK)
        return PyErr_NoMemory();
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError,
                     "pack_into() takes exactly 2 arguments (%zd given)",
                     nargs);
        goto done;
    }
    offset = PyNumber_AsSsize_t(args[1], PyExc_OverflowError);
    if (offset == -1 && PyErr_Occurred())
        goto done;
    if (m->compression_type < 0 || m->compression_type > 0xff) {
        PyErr_SetString(PyExc_ValueError,
                        "compression_type must fit the attributes byte");
        goto done;
    }
    magic = legacy_magic(m, &ts);
    if (magic < 0 ||
        get_field(m->partition_key, "partition_key", &key, &klen) < 0 ||
        get_field(m->value, "value", &value, &vlen) < 0)
        goto done;
    status = pkc_legacy_message_write(&w, magic, m->compression_type, ts,
                                      key.buf, klen, value.buf, vlen);
    if (status == PKC_ERR_NOMEM) {
        PyErr_NoMemory();
        goto done;
    }
    if (status != PKC_OK) {
        PyErr_Format(PyExc_ValueError, "cannot encode the message: %s",
                     pkc_status_str(status));
        goto done;
    }
    if (!PyArg_Parse(args[0], "w*:pack_into", &out))
        goto done;
    if (offset < 0 || offset > out.len ||
        (size_t)(out.len - offset) < w.len) {
        PyErr_Format(PyExc_ValueError,
                     "pack_into requires a buffer of at least %zu bytes "
                     "at offset %zd (buffer is %zd bytes)", w.len, offset,
                     out.len);
        goto done;
    }
    memcpy((char *)out.buf + offset, w.buf, w.len);
    result = Py_NewRef(Py_None);
done:
    if (out.obj != NULL)
        PyBuffer_Release(&out);
    release_field(&key);
    release_field(&value);
    pkc_writer_free(&w);
    return result;
}

/* bytes for a slice; None for null.  New reference. */
static PyObject *
slice_to_bytes(pkc_slice s)
{
    if (s.len < 0)
        Py_RETURN_NONE;
    return PyBytes_FromStringAndSize((const char *)s.ptr, s.len);
}

PyDoc_STRVAR(Message_decode_doc,
"decode($type, buff, msg_offset=-1, partition_id=-1)\n--\n\n"
"Decode one legacy magic 0/1 message (crc through value, the whole of\n"
"`buff`), as pykafka's Message.decode: compression_type is the codec of\n"
"the attributes, protocol_version the magic, timestamp 0 for magic 0.\n"
"The CRC32 is verified: CorruptRecordError on a mismatch,\n"
"ProtocolDecodeError for malformed bytes.");

static PyObject *
Message_decode(PyObject *cls, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"buff", "msg_offset", "partition_id", NULL};
    Py_buffer in = {0};
    long long msg_offset = -1;
    int partition_id = -1, status;
    pkc_state *st;
    pkc_reader r;
    pkc_legacy_message lm;
    PyObject *value = NULL, *key = NULL, *cargs = NULL, *ckw = NULL;
    PyObject *result = NULL;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "y*|Li:decode", kwlist, &in,
                                     &msg_offset, &partition_id))
        return NULL;
    st = pkc_state_from_type((PyTypeObject *)cls);
    if (st == NULL)
        goto done;
    pkc_reader_init(&r, in.buf, (size_t)in.len);
    Py_BEGIN_ALLOW_THREADS
    status = pkc_legacy_message_parse(&r, &lm, 1);
    Py_END_ALLOW_THREADS
    if (status != PKC_OK) {
        pkc_raise_decode(st, status, "legacy message", &r);
        goto done;
    }
    value = slice_to_bytes(lm.value);
    key = slice_to_bytes(lm.key);
    if (value == NULL || key == NULL)
        goto done;
    cargs = PyTuple_Pack(1, value);
    ckw = Py_BuildValue("{sOsisLsisisL}", "partition_key", key,
                        "compression_type",
                        lm.attributes & PKC_ATTR_CODEC_MASK, "offset",
                        msg_offset, "partition_id", partition_id,
                        "protocol_version", lm.magic, "timestamp",
                        (long long)(lm.magic == 0 ? 0 : lm.timestamp));
    if (cargs == NULL || ckw == NULL)
        goto done;
    result = PyObject_Call(cls, cargs, ckw);
done:
    Py_XDECREF(value);
    Py_XDECREF(key);
    Py_XDECREF(cargs);
    Py_XDECREF(ckw);
    PyBuffer_Release(&in);
    return result;
}

/* ------------------------------------------------- attributes, methods */

static PyObject *
Message_get_timestamp(PyObject *op, void *Py_UNUSED(closure))
{
    return Py_XNewRef(message_timestamp(pkc_message_CAST(op)));
}

static int
Message_set_timestamp_attr(PyObject *op, PyObject *value,
                           void *Py_UNUSED(closure))
{
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete timestamp");
        return -1;
    }
    pkc_message_store(pkc_message_CAST(op), &pkc_message_CAST(op)->timestamp,
                      value);
    return 0;
}

static PyObject *
Message_get_headers(PyObject *op, void *Py_UNUSED(closure))
{
    pkc_message *m = pkc_message_CAST(op);

    if (m->headers == NULL && (m->headers = PyList_New(0)) == NULL)
        return NULL;
    /* Handed out, the list can be changed to hold anything (even m). */
    pkc_message_note(m, m->headers);
    return Py_NewRef(m->headers);
}

static int
Message_set_headers(PyObject *op, PyObject *value, void *Py_UNUSED(closure))
{
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete headers");
        return -1;
    }
    pkc_message_store(pkc_message_CAST(op), &pkc_message_CAST(op)->headers,
                      value);
    return 0;
}

static PyObject *
Message_get_timestamp_dt(PyObject *op, void *Py_UNUSED(closure))
{
    pkc_state *st = message_state(op);
    PyObject *ts, *zero, *kwargs = NULL, *empty = NULL, *td = NULL;
    PyObject *result = NULL;
    int positive;

    if (st == NULL || (ts = message_timestamp(pkc_message_CAST(op))) == NULL)
        return NULL;
    if (ts == Py_None)
        Py_RETURN_NONE;
    zero = PyLong_FromLong(0);
    if (zero == NULL)
        return NULL;
    positive = PyObject_RichCompareBool(ts, zero, Py_GT);
    Py_DECREF(zero);
    if (positive < 0)
        return NULL;
    if (!positive)
        Py_RETURN_NONE;
    kwargs = Py_BuildValue("{sO}", "milliseconds", ts);
    empty = PyTuple_New(0);
    if (kwargs == NULL || empty == NULL)
        goto done;
    td = PyObject_Call(st->timedelta_type, empty, kwargs);
    if (td == NULL)
        goto done;
    result = PyNumber_Add(st->epoch, td);
done:
    Py_XDECREF(kwargs);
    Py_XDECREF(empty);
    Py_XDECREF(td);
    return result;
}

static int
Message_set_timestamp_dt_attr(PyObject *op, PyObject *value,
                              void *Py_UNUSED(closure))
{
    pkc_state *st = message_state(op);

    if (st == NULL)
        return -1;
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete timestamp_dt");
        return -1;
    }
    return message_set_timestamp_dt(st, pkc_message_CAST(op), value);
}

PyDoc_STRVAR(Message_set_timestamp_doc,
"set_timestamp($self, ts, /)\n--\n\n"
"Set the timestamp: an int or float (ms since the epoch) or None is stored\n"
"as is, a datetime (naive UTC) is converted to ms; anything else raises\n"
"RuntimeError.");

static PyObject *
Message_set_timestamp_meth(PyObject *op, PyObject *ts)
{
    pkc_state *st = message_state(op);

    if (st == NULL || message_set_timestamp(st, pkc_message_CAST(op), ts) < 0)
        return NULL;
    Py_RETURN_NONE;
}

PyDoc_STRVAR(Message_reduce_doc,
"__reduce__($self, /)\n--\n\n"
"Pickle support: value, key, offsets, timestamp and headers are kept;\n"
"partition and delivery_report_q are not (they are process-local).");

static PyObject *
Message_reduce(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    pkc_message *m = pkc_message_CAST(op);
    PyObject *ts = message_timestamp(m), *headers;

    if (ts == NULL || (headers = Message_get_headers(op, NULL)) == NULL)
        return NULL;
    return Py_BuildValue("O(OOiLiiiO)(N)", (PyObject *)Py_TYPE(op),
                         m->value ? m->value : Py_None,
                         m->partition_key ? m->partition_key : Py_None,
                         m->compression_type, (long long)m->offset,
                         m->partition_id, m->produce_attempt,
                         m->protocol_version, ts, headers);
}

PyDoc_STRVAR(Message_setstate_doc,
"__setstate__($self, state, /)\n--\n\n"
"Pickle support: `state` is (headers,), as __reduce__ gives it.");

static PyObject *
Message_setstate(PyObject *op, PyObject *state)
{
    if (!PyTuple_Check(state) || PyTuple_GET_SIZE(state) != 1) {
        PyErr_SetString(PyExc_TypeError, "bad Message state");
        return NULL;
    }
    pkc_message_store(pkc_message_CAST(op), &pkc_message_CAST(op)->headers,
                      PyTuple_GET_ITEM(state, 0));
    Py_RETURN_NONE;
}

/* ---------------------------------------------------------------- repr */

/* Longest key and value shown by repr() before "..." cuts them. */
#define REPR_KEY_MAX 24
#define REPR_VALUE_MAX 40

/* repr(obj), or "<type name>" when it fails (repr() never raises for
 * what a message holds).  New reference; NULL only on memory errors. */
static PyObject *
repr_or_type(PyObject *obj)
{
    PyObject *r = PyObject_Repr(obj);

    if (r != NULL || PyErr_ExceptionMatches(PyExc_MemoryError))
        return r;
    PyErr_Clear();
    return PyUnicode_FromFormat("<%s>", Py_TYPE(obj)->tp_name);
}

/* A short text for a key or value: bytes and str cut to `limit` (with
 * "..." and their size), None, numbers; other objects by type and, for
 * the built-in containers, size.  Never runs code of the object's class
 * but its __repr__ for small scalars.  New reference. */
static PyObject *
repr_preview(PyObject *obj, Py_ssize_t limit)
{
    PyObject *head, *r;
    Py_ssize_t n;
    const char *unit;

    if (obj == NULL)
        return PyUnicode_FromString("<deleted>");
    if (obj == Py_None || PyLong_CheckExact(obj) || PyFloat_CheckExact(obj) ||
        PyBool_Check(obj))
        return repr_or_type(obj);
    if (PyBytes_Check(obj)) {
        n = PyBytes_GET_SIZE(obj);
        if (n <= limit)
            return repr_or_type(obj);
        head = PyBytes_FromStringAndSize(PyBytes_AS_STRING(obj), limit);
        unit = "bytes";
    }
    else if (PyUnicode_Check(obj)) {
        n = PyUnicode_GET_LENGTH(obj);
        if (n <= limit)
            return repr_or_type(obj);
        head = PyUnicode_Substring(obj, 0, limit);
        unit = "characters";
    }
    else if (PyByteArray_Check(obj) || PyMemoryView_Check(obj)) {
        n = PyObject_Length(obj);
        if (n < 0)
            PyErr_Clear();
        return PyUnicode_FromFormat("<%s of %zd bytes>",
                                    Py_TYPE(obj)->tp_name, n);
    }
    else if (PyList_CheckExact(obj) || PyTuple_CheckExact(obj) ||
             PyDict_CheckExact(obj) || PyAnySet_CheckExact(obj)) {
        n = PyObject_Length(obj);
        return PyUnicode_FromFormat("<%s of %zd item%s>",
                                    Py_TYPE(obj)->tp_name, n,
                                    n == 1 ? "" : "s");
    }
    else {
        return PyUnicode_FromFormat("<%s>", Py_TYPE(obj)->tp_name);
    }
    if (head == NULL)
        return NULL;
    r = PyUnicode_FromFormat("%R... (%zd %s)", head, n, unit);
    Py_DECREF(head);
    return r;
}

/* The timestamp as ISO 8601 UTC with milliseconds when it is a time
 * (>= 0), else as it is (-1: the record had none).  New reference. */
static PyObject *
repr_timestamp(pkc_message *m)
{
    int64_t ms = m->ts_ms, secs;
    PyObject *ts = m->timestamp;
    struct tm tm;
    time_t t;

    if (ts != NULL) {
        if (!PyLong_CheckExact(ts))
            return repr_or_type(ts); /* None, a float, ... as set */
        ms = PyLong_AsLongLong(ts);
        if (ms == -1 && PyErr_Occurred()) {
            PyErr_Clear();
            return repr_or_type(ts);
        }
    }
    /* year 10000 and later do not fit the format */
    if (ms < 0 || ms >= INT64_C(253402300800000))
        return PyUnicode_FromFormat("%lld", (long long)ms);
    secs = ms / 1000;
    t = (time_t)secs;
    if (gmtime_r(&t, &tm) == NULL)
        return PyUnicode_FromFormat("%lld", (long long)ms);
    return PyUnicode_FromFormat("%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                                tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                                tm.tm_hour, tm.tm_min, tm.tm_sec,
                                (int)(ms % 1000));
}

/* "topic=b'name', " when the message knows its Partition and that its
 * Topic, else "".  Reads two attributes; any error is cleared.  New
 * reference. */
static PyObject *
repr_topic(pkc_message *m)
{
    PyObject *topic = NULL, *name = NULL, *r = NULL;

    if (m->partition == NULL || m->partition == Py_None)
        return PyUnicode_FromString("");
    topic = PyObject_GetAttrString(m->partition, "topic");
    if (topic != NULL && topic != Py_None)
        name = PyObject_GetAttrString(topic, "name");
    if (name != NULL && (PyBytes_Check(name) || PyUnicode_Check(name)))
        r = PyUnicode_FromFormat("topic=%R, ", name);
    Py_XDECREF(topic);
    Py_XDECREF(name);
    if (r == NULL) {
        if (PyErr_Occurred() && PyErr_ExceptionMatches(PyExc_MemoryError))
            return NULL;
        PyErr_Clear();
        r = PyUnicode_FromString("");
    }
    return r;
}

/* repr(): where the message is, its key, a preview of its value, its
 * time and how many headers it has, e.g.
 *   <pykafka_c.protocol.Message topic=b'orders', partition=0,
 *    offset=42, key=b'k', value=b'{"id": 1...' (120 bytes),
 *    timestamp=2024-05-01T12:00:00.123Z, headers=2>
 * Built only when asked for: nothing is added to the consume path. */
static PyObject *
Message_repr(PyObject *op)
{
    pkc_message *m = pkc_message_CAST(op);
    PyObject *topic = NULL, *key = NULL, *value = NULL, *ts = NULL;
    PyObject *r = NULL;
    Py_ssize_t nh = 0;

    if (Py_ReprEnter(op) != 0) /* a message inside its own value */
        return PyUnicode_FromFormat("<%s ...>", Py_TYPE(op)->tp_name);
    if (m->headers != NULL) {
        nh = PyList_Check(m->headers) ? PyList_GET_SIZE(m->headers)
                                      : PyObject_Length(m->headers);
        if (nh < 0)
            PyErr_Clear();
    }
    topic = repr_topic(m);
    key = topic ? repr_preview(m->partition_key, REPR_KEY_MAX) : NULL;
    value = key ? repr_preview(m->value, REPR_VALUE_MAX) : NULL;
    ts = value ? repr_timestamp(m) : NULL;
    if (ts != NULL)
        r = PyUnicode_FromFormat(
            "<%s %Upartition=%d, offset=%lld, key=%U, value=%U, "
            "timestamp=%U, headers=%zd>",
            Py_TYPE(op)->tp_name, topic, (int)m->partition_id,
            (long long)m->offset, key, value, ts, nh);
    Py_XDECREF(topic);
    Py_XDECREF(key);
    Py_XDECREF(value);
    Py_XDECREF(ts);
    Py_ReprLeave(op);
    return r;
}

static PyMethodDef Message_methods[] = {
    {"set_timestamp", Message_set_timestamp_meth, METH_O,
     Message_set_timestamp_doc},
    {"__reduce__", Message_reduce, METH_NOARGS, Message_reduce_doc},
    {"__setstate__", Message_setstate, METH_O, Message_setstate_doc},
    {"pack_into", PKC_CFUNC(Message_pack_into), METH_FASTCALL,
     Message_pack_into_doc},
    {"decode", PKC_CFUNC(Message_decode),
     METH_VARARGS | METH_KEYWORDS | METH_CLASS, Message_decode_doc},
    {NULL}
};

static int Message_setattro(PyObject *op, PyObject *name, PyObject *value);

/* The object slot behind `descr` if it is one of Message's own member
 * descriptors of value, partition_key, partition or delivery_report_q
 * (read-only as descriptors: they are set here), else NULL. */
static PyObject **
object_slot(PyObject *op, PyObject *descr)
{
    PyMemberDef *d;

    if (!Py_IS_TYPE(descr, &PyMemberDescr_Type) ||
        PyDescr_TYPE(descr)->tp_setattro != Message_setattro)
        return NULL;
    d = ((PyMemberDescrObject *)descr)->d_member;
    if (d->type != T_OBJECT_EX || !(d->flags & READONLY))
        return NULL;
    switch (d->offset) {
    case offsetof(pkc_message, value):
    case offsetof(pkc_message, partition_key):
    case offsetof(pkc_message, partition):
    case offsetof(pkc_message, delivery_report_q):
        return (PyObject **)((char *)op + d->offset);
    default:
        return NULL;
    }
}

/* The attribute `name` of op's type, as instance attribute lookup finds it:
 * the first class on the MRO whose __dict__ has it.  Borrowed; NULL if
 * none (no exception) or on error (exception set). */
static PyObject *
type_attribute(PyObject *op, PyObject *name)
{
    PyObject *mro = Py_TYPE(op)->tp_mro, *found;

    if (mro == NULL || !PyTuple_Check(mro))
        return NULL;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(mro); i++) {
        PyTypeObject *base = (PyTypeObject *)PyTuple_GET_ITEM(mro, i);
        found = PyDict_GetItemWithError(base->tp_dict, name);
        if (found != NULL || PyErr_Occurred())
            return found;
    }
    return NULL;
}

/* Is `name` (a str) that of one of the four object slots?  A cheap test
 * that spares the type lookup for every other attribute. */
static int
is_object_slot_name(PyObject *name)
{
    static const char *const names[] = {"value", "partition_key",
                                        "partition", "delivery_report_q"};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (PyUnicode_CompareWithASCIIString(name, names[i]) == 0)
            return 1;
    return 0;
}

/* Attribute writes: the four object slots are stored here so that the
 * message is tracked when one gets an object that may form a cycle; every
 * other attribute (C numbers, getsets, a subclass's own) is generic. */
static int
Message_setattro(PyObject *op, PyObject *name, PyObject *value)
{
    PyObject *descr;
    PyObject **slot = NULL;

    if (PyUnicode_Check(name) && is_object_slot_name(name)) {
        descr = type_attribute(op, name);
        if (descr == NULL && PyErr_Occurred())
            return -1;
        if (descr != NULL)
            slot = object_slot(op, descr);
    }
    if (slot == NULL)
        return PyObject_GenericSetAttr(op, name, value);
    if (value != NULL) {
        pkc_message_store(pkc_message_CAST(op), slot, value);
        return 0;
    }
    if (*slot == NULL) { /* as a T_OBJECT_EX member: deleting twice */
        PyErr_SetObject(PyExc_AttributeError, name);
        return -1;
    }
    Py_CLEAR(*slot);
    return 0;
}

static PyMemberDef Message_members[] = {
    {"value", T_OBJECT_EX, offsetof(pkc_message, value), READONLY,
     "The payload: bytes or None (whatever a deserializer returned)."},
    {"partition_key", T_OBJECT_EX, offsetof(pkc_message, partition_key),
     READONLY,
     "The key: bytes or None."},
    {"partition", T_OBJECT_EX, offsetof(pkc_message, partition), READONLY,
     "The Partition it came from (set by consumers), else None."},
    {"delivery_report_q", T_OBJECT_EX,
     offsetof(pkc_message, delivery_report_q), READONLY,
     "The producer's delivery report queue (internal)."},
    {"offset", T_LONGLONG, offsetof(pkc_message, offset), 0,
     "The offset in its partition, -1 until known."},
    {"partition_id", T_INT, offsetof(pkc_message, partition_id), 0,
     "The id of its partition, -1 until known."},
    {"compression_type", T_INT, offsetof(pkc_message, compression_type), 0,
     "Internal: always CompressionType.NONE on consumed messages."},
    {"produce_attempt", T_INT, offsetof(pkc_message, produce_attempt), 0,
     "The producer's retry counter."},
    {"protocol_version", T_INT, offsetof(pkc_message, protocol_version), 0,
     "0 or 1: 1 when the message carries a timestamp."},
    {NULL}
};

static PyGetSetDef Message_getset[] = {
    {"timestamp", Message_get_timestamp, Message_set_timestamp_attr,
     "Milliseconds since the epoch (int; float or None if set so); -1 when "
     "the record had none.",
     NULL},
    {"headers", Message_get_headers, Message_set_headers,
     "Record headers: a list of (str, bytes or None) pairs.", NULL},
    {"timestamp_dt", Message_get_timestamp_dt, Message_set_timestamp_dt_attr,
     "The timestamp as a naive UTC datetime if it is > 0, else None; "
     "settable with a datetime.",
     NULL},
    {NULL}
};

PyDoc_STRVAR(Message_doc,
"Message(value, partition_key=None, compression_type=0, offset=-1, "
"partition_id=-1, produce_attempt=0, protocol_version=0, timestamp=None, "
"delivery_report_q=None, *, headers=None)\n--\n\n"
"A Kafka message, as pykafka.protocol.Message, plus `headers`.\n\n"
"With protocol_version 1 and no timestamp, the timestamp is the current\n"
"time in ms.  len() is its size as a legacy magic 0/1 message, what\n"
"pack_into() writes.");

static PyType_Slot Message_slots[] = {
    {Py_tp_doc, (void *)Message_doc},
    {Py_tp_new, Message_new},
    {Py_tp_init, Message_init},
    {Py_tp_dealloc, Message_dealloc},
    {Py_tp_repr, Message_repr},
    {Py_tp_traverse, Message_traverse},
    {Py_tp_setattro, Message_setattro},
    {Py_tp_clear, Message_clear},
    {Py_tp_methods, Message_methods},
    {Py_tp_members, Message_members},
    {Py_tp_getset, Message_getset},
    {Py_sq_length, Message_length},
    {0, NULL}
};

static PyType_Spec Message_spec = {
    .name = "pykafka_c.protocol.Message",
    .basicsize = sizeof(pkc_message),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = Message_slots,
};

PyDoc_STRVAR(MessageBase_doc,
"Message()\n--\n\n"
"Base class of messages (pykafka.common.Message): no attributes.  Messages\n"
"handed out by consumers are pykafka_c.protocol.Message instances.");

static PyType_Slot MessageBase_slots[] = {
    {Py_tp_doc, (void *)MessageBase_doc},
    {0, NULL}
};

static PyType_Spec MessageBase_spec = {
    .name = "pykafka_c.common.Message",
    .basicsize = sizeof(PyObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .slots = MessageBase_slots,
};

int
pkc_message_exec(PyObject *module, pkc_state *st)
{
    PyObject *dtmod = NULL;
    int rc = -1;

    dtmod = PyImport_ImportModule("datetime");
    if (dtmod == NULL)
        goto done;
    st->datetime_type = PyObject_GetAttrString(dtmod, "datetime");
    if (st->datetime_type == NULL)
        goto done;
    st->timedelta_type = PyObject_GetAttrString(dtmod, "timedelta");
    if (st->timedelta_type == NULL)
        goto done;
    st->epoch = PyObject_CallFunction(st->datetime_type, "iii", 1970, 1, 1);
    if (st->epoch == NULL)
        goto done;
    st->MessageBaseType = (PyTypeObject *)PyType_FromModuleAndSpec(
        module, &MessageBase_spec, NULL);
    if (st->MessageBaseType == NULL)
        goto done;
    st->MessageType = (PyTypeObject *)PyType_FromModuleAndSpec(
        module, &Message_spec, (PyObject *)st->MessageBaseType);
    if (st->MessageType == NULL)
        goto done;
    if (PyModule_AddObjectRef(module, "MessageBase",
                              (PyObject *)st->MessageBaseType) < 0 ||
        PyModule_AddObjectRef(module, "Message",
                              (PyObject *)st->MessageType) < 0)
        goto done;
    rc = 0;
done:
    Py_XDECREF(dtmod);
    return rc;
}
