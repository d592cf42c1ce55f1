/*
 * records.c (py) - the Python face of csrc/wire/records.c and crc32c.c:
 * _core.decode_records, _core.encode_record_batch and _core.crc32c.
 * The byte work runs without the GIL when the input is large.
 */
#include "message.h"

#include "compress.h"
#include "crc32c.h"
#include "records.h"

#include <time.h>

/* Inputs at least this large are processed with the GIL released. */
#define NOGIL_THRESHOLD ((Py_ssize_t)64 * 1024)
/* Records decoded per GIL release before their Messages are made. */
#define DECODE_CHUNK 4096
/* Default cap on all decompressed data of one decode_records call. */
#define DEFAULT_MAX_TOTAL_DECOMPRESSED ((Py_ssize_t)1 << 30)

/* ---------------------------------------------------------------- crc */

PyDoc_STRVAR(pkc_py_crc32c_doc,
"crc32c($module, data, crc=0)\n--\n\n"
"CRC-32C (Castagnoli) of a bytes-like object, continuing from `crc` (the\n"
"CRC of the preceding data, 0 to start), as Kafka's RecordBatch v2 uses.");

static PyObject *
pkc_py_crc32c(PyObject *Py_UNUSED(module), PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"data", "crc", NULL};
    Py_buffer data = {0};
    unsigned long crc_in = 0;
    uint32_t crc;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "y*|k:crc32c", kwlist,
                                     &data, &crc_in))
        return NULL;
    if (crc_in > 0xffffffffUL) {
        PyBuffer_Release(&data);
        PyErr_SetString(PyExc_ValueError, "crc must fit in 32 bits");
        return NULL;
    }
    if (data.len >= NOGIL_THRESHOLD) {
        Py_BEGIN_ALLOW_THREADS
        crc = pkc_crc32c((uint32_t)crc_in, data.buf, (size_t)data.len);
        Py_END_ALLOW_THREADS
    }
    else
        crc = pkc_crc32c((uint32_t)crc_in, data.buf, (size_t)data.len);
    PyBuffer_Release(&data);
    return PyLong_FromUnsignedLong(crc);
}

/* ------------------------------------------------------------- decode */

/* Raise the exception for a failed iteration. */
static PyObject *
raise_iter_error(pkc_state *st, const pkc_records_iter *it, int status,
                 int partition_id)
{
    char what[128];

    if (status == PKC_ERR_CODEC || status == PKC_ERR_COMPRESSION ||
        status == PKC_ERR_TOO_LARGE)
        return pkc_raise_codec(st, status, it->codec, 1,
                               it->opts.max_decompressed);
    PyOS_snprintf(what, sizeof(what),
                  "records of partition %d, entry at offset %lld",
                  partition_id, (long long)it->err_offset);
    return pkc_raise_decode(st, status, what, &it->r);
}

/* Aborted transactions from an iterable of (producer_id, first_offset).
 * *out is a PyMem buffer (NULL when empty). */
static int
parse_aborted(PyObject *obj, pkc_aborted_txn **out, size_t *n)
{
    PyObject *seq;
    Py_ssize_t len;
    pkc_aborted_txn *txns = NULL;

    *out = NULL;
    *n = 0;
    if (obj == Py_None)
        return 0;
    seq = PySequence_Fast(obj, "aborted_transactions must be iterable");
    if (seq == NULL)
        return -1;
    len = PySequence_Fast_GET_SIZE(seq);
    if (len > 0) {
        txns = PyMem_New(pkc_aborted_txn, (size_t)len);
        if (txns == NULL) {
            Py_DECREF(seq);
            PyErr_NoMemory();
            return -1;
        }
    }
    for (Py_ssize_t i = 0; i < len; i++) {
        long long pid, first;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, i),
                              "LL;aborted_transactions items must be "
                              "(producer_id, first_offset) pairs",
                              &pid, &first)) {
            PyMem_Free(txns);
            Py_DECREF(seq);
            return -1;
        }
        txns[i].producer_id = pid;
        txns[i].first_offset = first;
    }
    Py_DECREF(seq);
    *out = txns;
    *n = (size_t)len;
    return 0;
}

/* Decode up to `max` records into recs; returns how many, and sets *rc to
 * the last pkc_records_next result (1 more to come, 0 end, <0 error). */
static int
decode_chunk(pkc_records_iter *it, pkc_record *recs, int max, int *rc)
{
    int n = 0;

    while (n < max && (*rc = pkc_records_next(it, &recs[n])) == 1)
        n++;
    return n;
}

PyDoc_STRVAR(pkc_py_decode_records_doc,
"decode_records($module, data, partition_id=-1, fetch_offset=0,\n"
"               read_committed=False, aborted_transactions=None,\n"
"               max_decompressed=67108864, max_total_decompressed=1073741824)\n"
"--\n\n"
"Decode the Records bytes of one partition of a Fetch response (RecordBatch\n"
"v2 batches and/or legacy magic 0/1 message sets) into a list of\n"
"pykafka_c.protocol.Message.  A truncated trailing entry is ignored;\n"
"control batches and records below fetch_offset are skipped; with\n"
"read_committed, records of the aborted transactions listed as\n"
"(producer_id, first_offset) pairs are dropped.  CRCs are verified\n"
"(CorruptRecordError); malformed data raises ProtocolDecodeError;\n"
"decompression errors, and data decompressing to more than\n"
"max_decompressed bytes per batch or max_total_decompressed in all, raise\n"
"CompressionError (CodecUnavailableError for a codec this build lacks).");

static PyObject *
pkc_py_decode_records(PyObject *module, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"data", "partition_id", "fetch_offset",
                             "read_committed", "aborted_transactions",
                             "max_decompressed", "max_total_decompressed",
                             NULL};
    pkc_state *st = pkc_get_state(module);
    Py_buffer data = {0};
    int partition_id = -1, read_committed = 0, rc = 1, started = 0;
    long long fetch_offset = 0;
    Py_ssize_t max_dec = (Py_ssize_t)PKC_DEFAULT_MAX_DECOMPRESSED;
    Py_ssize_t max_total = DEFAULT_MAX_TOTAL_DECOMPRESSED;
    PyObject *aborted_obj = Py_None, *list = NULL, *msg;
    pkc_aborted_txn *aborted = NULL;
    pkc_record *recs = NULL;
    pkc_records_iter it;
    pkc_records_opts opts;
    pkc_arena arena;

    pkc_arena_init(&arena, 0);
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "y*|iLpOnn:decode_records",
                                     kwlist, &data, &partition_id,
                                     &fetch_offset, &read_committed,
                                     &aborted_obj, &max_dec, &max_total))
        return NULL;
    if (max_dec <= 0 || max_total <= 0) {
        PyErr_SetString(PyExc_ValueError,
                        "decompression limits must be positive");
        goto error;
    }
    if (parse_aborted(aborted_obj, &aborted, &opts.n_aborted) < 0)
        goto error;
    arena.max = (size_t)max_total;
    opts.fetch_offset = fetch_offset;
    opts.read_committed = read_committed;
    opts.aborted = aborted;
    opts.max_decompressed = (size_t)max_dec;
    opts.skip_crc = 0;
    opts.arena = &arena;
    recs = PyMem_New(pkc_record, DECODE_CHUNK);
    list = PyList_New(0);
    if (recs == NULL || list == NULL) {
        PyErr_NoMemory();
        goto error;
    }
    /* Until it is returned, no Python code sees the list and it holds only
     * untracked Messages (message.h): the collections that the Message
     * allocations trigger need not walk it meanwhile. */
    PyObject_GC_UnTrack(list);
    if (pkc_records_iter_init(&it, data.buf, (size_t)data.len, &opts)) {
        started = 1;
        PyErr_NoMemory();
        goto error;
    }
    started = 1;
    while (rc == 1) {
        int n;
        if (data.len >= NOGIL_THRESHOLD) {
            Py_BEGIN_ALLOW_THREADS
            n = decode_chunk(&it, recs, DECODE_CHUNK, &rc);
            Py_END_ALLOW_THREADS
        }
        else
            n = decode_chunk(&it, recs, DECODE_CHUNK, &rc);
        for (int i = 0; i < n; i++) {
            msg = pkc_message_from_record(st, &recs[i], partition_id);
            if (msg == NULL)
                goto error;
            if (PyList_Append(list, msg) < 0) {
                Py_DECREF(msg);
                goto error;
            }
            Py_DECREF(msg);
        }
    }
    if (rc < 0) {
        raise_iter_error(st, &it, rc, partition_id);
        goto error;
    }
    pkc_records_iter_free(&it);
    pkc_arena_free(&arena);
    PyMem_Free(recs);
    PyMem_Free(aborted);
    PyBuffer_Release(&data);
    PyObject_GC_Track(list);
    return list;

error:
    if (started)
        pkc_records_iter_free(&it);
    pkc_arena_free(&arena);
    PyMem_Free(recs);
    PyMem_Free(aborted);
    Py_XDECREF(list);
    PyBuffer_Release(&data);
    return NULL;
}

/* ------------------------------------------------------------- encode */

/* A view of a value/key: None -> len -1; bytes directly; other bytes-like
 * objects are copied into a bytes object kept alive in `keep`.  `what`
 * names the field in errors. */
static int
bytes_view(PyObject *obj, PyObject *keep, pkc_slice *out, const char *what)
{
    PyObject *b;

    out->ptr = NULL;
    out->len = -1;
    if (obj == Py_None)
        return 0;
    if (PyBytes_Check(obj))
        b = obj;
    else if (PyObject_CheckBuffer(obj)) {
        b = PyBytes_FromObject(obj);
        if (b == NULL)
            return -1;
        if (PyList_Append(keep, b) < 0) {
            Py_DECREF(b);
            return -1;
        }
        Py_DECREF(b); /* `keep` holds it */
    }
    else {
        PyErr_Format(PyExc_TypeError,
                     "%s must be bytes-like or None, not %.100s", what,
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    if (PyBytes_GET_SIZE(b) > INT32_MAX) {
        PyErr_Format(PyExc_ValueError, "%s is too large for Kafka", what);
        return -1;
    }
    out->ptr = (const uint8_t *)PyBytes_AS_STRING(b);
    out->len = (int32_t)PyBytes_GET_SIZE(b);
    return 0;
}

/* Header list -> hdrs (grown as needed; PyMem). */
static int
headers_view(PyObject *obj, PyObject *keep, pkc_header **hdrs,
             Py_ssize_t *cap, int32_t *n)
{
    PyObject *seq;
    Py_ssize_t len;

    *n = 0;
    if (obj == NULL || obj == Py_None)
        return 0;
    seq = PySequence_Fast(obj, "headers must be a sequence of pairs");
    if (seq == NULL)
        return -1;
    /* keep the sequence (it may be a new list made from an iterable) */
    if (PyList_Append(keep, seq) < 0) {
        Py_DECREF(seq);
        return -1;
    }
    Py_DECREF(seq);
    len = PySequence_Fast_GET_SIZE(seq);
    if (len > INT32_MAX / 2) {
        PyErr_SetString(PyExc_ValueError, "too many headers");
        return -1;
    }
    if (len > *cap) {
        pkc_header *nh = PyMem_Resize(*hdrs, pkc_header, (size_t)len);
        if (nh == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        *hdrs = nh;
        *cap = len;
    }
    for (Py_ssize_t i = 0; i < len; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, i), *k, *v;
        pkc_header *h = &(*hdrs)[i];
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2) {
            PyErr_SetString(PyExc_TypeError,
                            "headers must be (key, value) tuples");
            return -1;
        }
        k = PyTuple_GET_ITEM(item, 0);
        v = PyTuple_GET_ITEM(item, 1);
        if (PyUnicode_Check(k)) {
            Py_ssize_t klen;
            const char *s = PyUnicode_AsUTF8AndSize(k, &klen);
            if (s == NULL) {
                /* lone surrogates, e.g. from decoding with
                 * surrogateescape: encode them back the same way */
                PyObject *kb;
                PyErr_Clear();
                kb = PyUnicode_AsEncodedString(k, "utf-8", "surrogateescape");
                if (kb == NULL)
                    return -1;
                if (PyList_Append(keep, kb) < 0) {
                    Py_DECREF(kb);
                    return -1;
                }
                Py_DECREF(kb);
                s = PyBytes_AS_STRING(kb);
                klen = PyBytes_GET_SIZE(kb);
            }
            if (klen > INT32_MAX) {
                PyErr_SetString(PyExc_ValueError, "header key too large");
                return -1;
            }
            h->key.ptr = (const uint8_t *)s;
            h->key.len = (int32_t)klen;
        }
        else {
            if (k == Py_None) {
                PyErr_SetString(PyExc_TypeError,
                                "a header key must be str or bytes, not None");
                return -1;
            }
            if (bytes_view(k, keep, &h->key, "header key") < 0)
                return -1;
        }
        if (bytes_view(v, keep, &h->value, "header value") < 0)
            return -1;
    }
    *n = (int32_t)len;
    return 0;
}

/* Timestamp of a tuple item: None -> now, int, or float (truncated). */
static int
timestamp_from_object(PyObject *obj, int64_t *out)
{
    if (obj == Py_None)
        return 1;
    if (PyLong_Check(obj)) {
        long long v = PyLong_AsLongLong(obj);
        if (v == -1 && PyErr_Occurred())
            return -1;
        *out = v;
        return 0;
    }
    if (PyFloat_Check(obj)) {
        double d = PyFloat_AS_DOUBLE(obj);
        if (!(d < 9.2e18 && d > -9.2e18)) {
            PyErr_SetString(PyExc_ValueError, "timestamp out of range");
            return -1;
        }
        *out = (int64_t)d;
        return 0;
    }
    PyErr_Format(PyExc_TypeError,
                 "timestamp must be an int, a float or None, not %.100s",
                 Py_TYPE(obj)->tp_name);
    return -1;
}

static int64_t
wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static PyObject *
raise_builder_error(pkc_state *st, int status, int codec)
{
    switch (status) {
    case PKC_ERR_NOMEM:
        return PyErr_NoMemory();
    case PKC_ERR_TOO_LARGE:
        PyErr_SetString(PyExc_ValueError,
                        "record batch larger than max_size");
        return NULL;
    case PKC_ERR_INVALID:
        PyErr_SetString(PyExc_ValueError, "invalid record or empty batch");
        return NULL;
    default:
        return pkc_raise_codec(st, status, codec, 0, 0);
    }
}

PyDoc_STRVAR(pkc_py_encode_record_batch_doc,
"encode_record_batch($module, records, compression=0, *, producer_id=-1,\n"
"                    producer_epoch=-1, base_sequence=-1,\n"
"                    transactional=False, compression_level=-1,\n"
"                    max_size=0)\n"
"--\n\n"
"Encode one RecordBatch v2 and return its bytes.  `records` is an iterable\n"
"of pykafka_c.protocol.Message or (value, key, timestamp_ms, headers)\n"
"tuples; values and keys are bytes-like or None (null and empty are\n"
"kept apart), headers a list of (str or bytes, bytes or None) pairs, a\n"
"timestamp of None means now.  Offsets deltas are 0..n-1, baseOffset 0,\n"
"partitionLeaderEpoch -1; the records are compressed as one blob with\n"
"`compression` (CompressionType id).  max_size caps the uncompressed batch\n"
"(0: 2 GiB); ValueError when it or Kafka's limits are exceeded.");

static PyObject *
pkc_py_encode_record_batch(PyObject *module, PyObject *args,
                           PyObject *kwargs)
{
    static char *kwlist[] = {"records", "compression", "producer_id",
                             "producer_epoch", "base_sequence",
                             "transactional", "compression_level",
                             "max_size", NULL};
    pkc_state *st = pkc_get_state(module);
    PyObject *records, *iter = NULL, *item = NULL, *keep = NULL;
    PyObject *result = NULL;
    int codec = 0, level = -1, transactional = 0, epoch = -1, seq_no = -1;
    int status, builder_ready = 0;
    long long pid = -1;
    Py_ssize_t max_size = 0, hcap = 0;
    pkc_header *hdrs = NULL;
    pkc_batch_builder b;
    const uint8_t *out;
    size_t out_len;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs,
                                     "O|i$Liipin:encode_record_batch",
                                     kwlist, &records, &codec, &pid, &epoch,
                                     &seq_no, &transactional, &level,
                                     &max_size))
        return NULL;
    if (codec < PKC_CODEC_NONE || codec > PKC_CODEC_ZSTD) {
        PyErr_Format(PyExc_ValueError, "unknown compression codec %d", codec);
        return NULL;
    }
    if (!pkc_codec_available(codec))
        return pkc_raise_codec(st, PKC_ERR_CODEC, codec, 0, 0);
    if (epoch < INT16_MIN || epoch > INT16_MAX || max_size < 0) {
        PyErr_SetString(PyExc_ValueError,
                        "producer_epoch or max_size out of range");
        return NULL;
    }
    if (pkc_batch_builder_init(&b, codec, level, (size_t)max_size)) {
        pkc_batch_builder_free(&b);
        return PyErr_NoMemory();
    }
    builder_ready = 1;
    b.producer_id = pid;
    b.producer_epoch = (int16_t)epoch;
    b.base_sequence = seq_no;
    b.transactional = transactional;
    keep = PyList_New(0);
    iter = PyObject_GetIter(records);
    if (keep == NULL || iter == NULL)
        goto done;
    while ((item = PyIter_Next(iter)) != NULL) {
        pkc_slice key, value;
        int64_t ts = 0;
        int32_t nh = 0;
        int tsr;

        if (PyObject_TypeCheck(item, st->MessageType)) {
            pkc_message *m = pkc_message_CAST(item);
            if (bytes_view(m->value ? m->value : Py_None, keep, &value,
                           "Message.value") < 0 ||
                bytes_view(m->partition_key ? m->partition_key : Py_None,
                           keep, &key, "Message.partition_key") < 0 ||
                headers_view(m->headers, keep, &hdrs, &hcap, &nh) < 0)
                goto done;
            tsr = pkc_message_timestamp_ms(m, &ts);
        }
        else if (PyTuple_Check(item) && PyTuple_GET_SIZE(item) == 4) {
            if (bytes_view(PyTuple_GET_ITEM(item, 0), keep, &value,
                           "value") < 0 ||
                bytes_view(PyTuple_GET_ITEM(item, 1), keep, &key, "key") < 0 ||
                headers_view(PyTuple_GET_ITEM(item, 3), keep, &hdrs, &hcap,
                             &nh) < 0)
                goto done;
            tsr = timestamp_from_object(PyTuple_GET_ITEM(item, 2), &ts);
        }
        else {
            PyErr_Format(PyExc_TypeError,
                         "records must be Messages or (value, key, "
                         "timestamp_ms, headers) tuples, not %.100s",
                         Py_TYPE(item)->tp_name);
            goto done;
        }
        if (tsr < 0)
            goto done;
        if (tsr == 1)
            ts = wall_ms();
        status = pkc_batch_builder_append(&b, ts, key.ptr, key.len, value.ptr,
                                          value.len, hdrs, nh);
        if (status != PKC_OK) {
            raise_builder_error(st, status, codec);
            goto done;
        }
        Py_CLEAR(item);
        if (PyList_SetSlice(keep, 0, PyList_GET_SIZE(keep), NULL) < 0)
            goto done;
    }
    if (PyErr_Occurred())
        goto done;
    if (codec != PKC_CODEC_NONE ||
        pkc_batch_builder_size(&b) >= (size_t)NOGIL_THRESHOLD) {
        Py_BEGIN_ALLOW_THREADS
        status = pkc_batch_builder_finish(&b, &out, &out_len);
        Py_END_ALLOW_THREADS
    }
    else
        status = pkc_batch_builder_finish(&b, &out, &out_len);
    if (status != PKC_OK) {
        raise_builder_error(st, status, codec);
        goto done;
    }
    result = PyBytes_FromStringAndSize((const char *)out, (Py_ssize_t)out_len);
done:
    Py_XDECREF(item);
    Py_XDECREF(iter);
    Py_XDECREF(keep);
    PyMem_Free(hdrs);
    if (builder_ready)
        pkc_batch_builder_free(&b);
    return result;
}

static PyMethodDef pkc_records_methods[] = {
    {"crc32c", PKC_CFUNC(pkc_py_crc32c), METH_VARARGS | METH_KEYWORDS,
     pkc_py_crc32c_doc},
    {"decode_records", PKC_CFUNC(pkc_py_decode_records),
     METH_VARARGS | METH_KEYWORDS, pkc_py_decode_records_doc},
    {"encode_record_batch", PKC_CFUNC(pkc_py_encode_record_batch),
     METH_VARARGS | METH_KEYWORDS, pkc_py_encode_record_batch_doc},
    {NULL}
};

int
pkc_records_exec(PyObject *module, pkc_state *Py_UNUSED(st))
{
    if (PyModule_AddFunctions(module, pkc_records_methods) < 0)
        return -1;
    if (PyModule_AddIntConstant(module, "RECORD_BATCH_OVERHEAD",
                                PKC_BATCH_HEADER_SIZE) < 0)
        return -1;
    return 0;
}
