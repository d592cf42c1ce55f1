/*
 * producer.c - _core.ProducerCore: the C half of pykafka_c.Producer.
 *
 * ProducerCore wraps a send engine (sendloop.h).  Its produce() is the
 * whole per-message path: type checks, serializer, partitioner, the
 * Message object, and the append of the record to its partition's open
 * RecordBatch - one call from Python per message.  The engine's sender
 * thread never touches Python; everything that needs the GIL (delivery
 * reports, exceptions, reference counts) happens here, in dispatch(),
 * which the Python layer calls from its control thread, flush(), stop()
 * and get_delivery_report().
 */
#include "module.h"

#include <time.h>

#include "compress.h"
#include "kafka_errors.h"
#include "message.h"
#include "net.h"
#include "sendloop.h"

/* produce() keeps headers of up to this many entries on the stack. */
#define STACK_HEADERS 8
/* A produce() blocked on a full queue wakes this often to check signals. */
#define FULL_WAIT_SLICE_MS 200

typedef struct {
    PyObject_HEAD
    pkc_state *st;            /* borrowed: the type keeps the module alive */
    pkc_sl *sl;
    int running;              /* produce() accepted (start..stop) */
    int keep_reports;         /* delivery reports on */
    int block_on_queue_full;
    int codec;
    int round_robin;          /* RandomPartitioner fast path */
    Py_ssize_t rr_idx;
    PyObject *partitioner;    /* callable or None */
    PyObject *serializer;     /* callable or None */
    PyObject *partitions;     /* list of Partition objects */
    int32_t *part_ids;        /* ids of `partitions`, in list order */
    Py_ssize_t n_parts;
    PyObject *tlocal;         /* threading.local: .q = report queue */
    uint64_t cached_tid;      /* PyThreadState id of cached_q's thread */
    PyObject *cached_q;       /* that thread's report queue */
    PyObject *queue_factory;  /* makes a report queue */
    PyObject *exc_stopped;    /* ProducerStoppedException */
    PyObject *exc_full;       /* ProducerQueueFullError */
    PyObject *exc_failure;    /* ProduceFailureError */
    PyObject *str_id, *str_q, *str_put, *str_set_timestamp;
    /* Transactions: txn_hook(partition_id) adds a partition to the
     * transaction before its first record of it is queued; txn_added[id]
     * says it was (cleared by txn_reset at each transaction's end). */
    PyObject *txn_hook;       /* callable, or NULL: not transactional */
    uint8_t *txn_added;
    int32_t txn_added_cap;
    /* produce() calls produce_check() first while it is set (outside a
     * transaction: it raises the state error); NULL: nothing to check. */
    PyObject *produce_check;
} ProducerCore;

#define ProducerCore_CAST(op) ((ProducerCore *)(op))

static int64_t
wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Deadline for a timeout in ms (negative: none). */
static int64_t
deadline_for(long long timeout_ms)
{
    if (timeout_ms < 0)
        return PKC_NO_DEADLINE;
    return pkc_now_ms() + timeout_ms;
}

/* ------------------------------------------------------------ reports */

/* The exception instance for a failed batch.  New reference. */
static PyObject *
result_exception(ProducerCore *self, const pkc_sl_result *r)
{
    pkc_state *st = self->st;
    PyObject *cls = NULL;

    switch (r->kind) {
    case PKC_SL_KAFKA:
    case PKC_SL_TOO_LARGE:
    case PKC_SL_NO_LEADER:
        if (st->error_for_code != NULL)
            return PyObject_CallFunction(st->error_for_code, "is",
                                         (int)r->error_code, r->message);
        break;
    case PKC_SL_DISCONNECTED:
        cls = st->SocketDisconnectedError;
        break;
    case PKC_SL_REFUSED:
        if (r->status == PKC_ERR_AUTH && st->error_for_code != NULL)
            return PyObject_CallFunction(
                st->error_for_code, "is",
                r->error_code ? (int)r->error_code
                              : (int)PKC_KERR_SASL_AUTHENTICATION_FAILED,
                r->message);
        cls = st->SslError;
        break;
    case PKC_SL_DECODE:
        cls = st->ProtocolDecodeError;
        break;
    case PKC_SL_LOCAL:
        if (r->status == PKC_ERR_CODEC)
            cls = st->CodecUnavailableError;
        else if (r->status == PKC_ERR_COMPRESSION)
            cls = st->CompressionError;
        else
            cls = self->exc_failure;
        break;
    default:
        cls = self->exc_failure;
        break;
    }
    if (cls == NULL)
        cls = self->exc_failure != NULL ? self->exc_failure
                                        : PyExc_RuntimeError;
    return PyObject_CallFunction(cls, "s", r->message);
}

/* Post the reports of one finished batch and drop its cookies' references.
 * Never fails: a queue that refuses a report is reported as unraisable. */
static void
dispatch_batch(ProducerCore *self, pkc_sl_batch *b, PyObject *failures)
{
    PyObject *exc = NULL;
    int failed = b->result.kind != PKC_SL_OK;

    if (failed) {
        exc = result_exception(self, &b->result);
        if (exc == NULL) {
            PyErr_WriteUnraisable((PyObject *)self);
            exc = Py_NewRef(Py_None);
        }
        if (failures != NULL) {
            PyObject *item = Py_BuildValue("(iO)", (int)b->count, exc);

            if (item == NULL || PyList_Append(failures, item) < 0)
                PyErr_WriteUnraisable((PyObject *)self);
            Py_XDECREF(item);
        }
    }
    if (b->cookies != NULL) {
        for (int32_t i = 0; i < b->count; i++) {
            pkc_message *m = (pkc_message *)b->cookies[i].msg;
            PyObject *q = (PyObject *)b->cookies[i].queue;
            PyObject *report, *res;

            if (m == NULL)
                continue;
            if (!failed && b->base_offset >= 0)
                m->offset = b->base_offset + i;
            m->produce_attempt = b->attempts;
            if (!failed && b->log_append_time >= 0) {
                Py_CLEAR(m->timestamp);
                m->ts_ms = b->log_append_time;
            }
            if (q != NULL && q != Py_None) {
                report = PyTuple_Pack(2, (PyObject *)m,
                                      failed ? exc : Py_None);
                if (report == NULL) {
                    PyErr_WriteUnraisable((PyObject *)self);
                }
                else {
                    res = PyObject_CallMethodOneArg(q, self->str_put, report);
                    if (res == NULL)
                        PyErr_WriteUnraisable((PyObject *)self);
                    Py_XDECREF(res);
                    Py_DECREF(report);
                }
            }
            b->cookies[i].msg = NULL;
            b->cookies[i].queue = NULL;
            Py_DECREF(m);
            Py_XDECREF(q);
        }
    }
    Py_XDECREF(exc);
}

/* Dispatch everything on the done list.  Returns the number of records
 * reported; failed batches are appended to `failures` as (count, exc). */
static Py_ssize_t
dispatch_all(ProducerCore *self, PyObject *failures)
{
    pkc_sl_batch *b, *next;
    Py_ssize_t n = 0;

    if (self->sl == NULL)
        return 0;
    b = pkc_sl_take_done(self->sl);
    for (; b != NULL; b = next) {
        next = b->next;
        n += b->count;
        dispatch_batch(self, b, failures);
        pkc_sl_batch_release(self->sl, b);
    }
    return n;
}

/* The calling thread's report queue (created on first use).  New
 * reference. */
static PyObject *
thread_queue(ProducerCore *self)
{
    /* Thread-state ids are never reused, so the cache cannot hand one
     * thread's queue to another. */
    uint64_t tid = PyThreadState_GetID(PyThreadState_Get());
    PyObject *q;

    if (self->cached_q != NULL && self->cached_tid == tid)
        return Py_NewRef(self->cached_q);
    q = PyObject_GetAttr(self->tlocal, self->str_q);
    if (q == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError))
            return NULL;
        PyErr_Clear();
        q = PyObject_CallNoArgs(self->queue_factory);
        if (q == NULL)
            return NULL;
        if (PyObject_SetAttr(self->tlocal, self->str_q, q) < 0) {
            Py_DECREF(q);
            return NULL;
        }
    }
    Py_XSETREF(self->cached_q, Py_NewRef(q));
    self->cached_tid = tid;
    return q;
}

/* ------------------------------------------------------------ produce */

static int
bytes_or_none(PyObject *o, const uint8_t **ptr, int32_t *len,
              const char *what)
{
    if (o == Py_None) {
        *ptr = NULL;
        *len = -1;
        return 0;
    }
    if (!PyBytes_CheckExact(o)) {
        PyErr_Format(PyExc_TypeError,
                     "Producer.produce accepts a bytes object as %s, but it "
                     "got '%.100s'", what, Py_TYPE(o)->tp_name);
        return -1;
    }
    if (PyBytes_GET_SIZE(o) > INT32_MAX) {
        PyErr_Format(PyExc_ValueError, "%s is too large", what);
        return -1;
    }
    *ptr = (const uint8_t *)PyBytes_AS_STRING(o);
    *len = (int32_t)PyBytes_GET_SIZE(o);
    return 0;
}

/* A header key or value: str (UTF-8) or bytes; None for values. */
static int
header_part(PyObject *o, pkc_slice *out, int allow_none)
{
    Py_ssize_t n;
    const char *p;

    if (o == Py_None && allow_none) {
        out->ptr = NULL;
        out->len = -1;
        return 0;
    }
    if (PyUnicode_Check(o)) {
        p = PyUnicode_AsUTF8AndSize(o, &n);
        if (p == NULL)
            return -1;
    }
    else if (PyBytes_Check(o)) {
        p = PyBytes_AS_STRING(o);
        n = PyBytes_GET_SIZE(o);
    }
    else {
        PyErr_Format(PyExc_TypeError,
                     "message headers must be (str, bytes) pairs; got a "
                     "%.100s %s", Py_TYPE(o)->tp_name,
                     allow_none ? "value" : "key");
        return -1;
    }
    if (n > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "header too large");
        return -1;
    }
    out->ptr = (const uint8_t *)p;
    out->len = (int32_t)n;
    return 0;
}

/*
 * Parse `headers` (a sequence of 2-sequences, or a dict) into *hdrs.
 * *seq_out receives the sequence that keeps the views alive (new
 * reference).  *hdrs is `stack` or a PyMem_Malloc'ed array.
 */
static int
parse_headers(PyObject *headers, pkc_header *stack, pkc_header **hdrs,
              int32_t *n_out, PyObject **seq_out)
{
    PyObject *seq = NULL;
    Py_ssize_t n;
    pkc_header *h = stack;

    *hdrs = stack;
    *n_out = 0;
    *seq_out = NULL;
    if (headers == Py_None)
        return 0;
    if (PyDict_Check(headers)) {
        PyObject *items = PyDict_Items(headers);

        if (items == NULL)
            return -1;
        seq = PySequence_Fast(items, "headers");
        Py_DECREF(items);
    }
    else {
        seq = PySequence_Fast(headers,
                              "headers must be a list of (str, bytes) pairs");
    }
    if (seq == NULL)
        return -1;
    n = PySequence_Fast_GET_SIZE(seq);
    if (n > INT32_MAX / 2) {
        PyErr_SetString(PyExc_ValueError, "too many headers");
        goto error;
    }
    if (n > STACK_HEADERS) {
        h = PyMem_Malloc((size_t)n * sizeof(*h));
        if (h == NULL) {
            PyErr_NoMemory();
            goto error;
        }
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, i);

        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2) {
            PyErr_SetString(PyExc_TypeError,
                            "message headers must be (str, bytes) pairs");
            goto error;
        }
        if (header_part(PyTuple_GET_ITEM(item, 0), &h[i].key, 0) < 0 ||
            header_part(PyTuple_GET_ITEM(item, 1), &h[i].value, 1) < 0)
            goto error;
    }
    *hdrs = h;
    *n_out = (int32_t)n;
    *seq_out = seq;
    return 0;
error:
    if (h != stack)
        PyMem_Free(h);
    Py_XDECREF(seq);
    return -1;
}

/* The partition id for `key`.  Returns 0 with *pid set, or -1. */
static int
choose_partition(ProducerCore *self, PyObject *key, int32_t *pid)
{
    PyObject *args[2], *lst, *part, *idobj;
    long v;

    if (self->n_parts == 0) {
        PyErr_SetString(self->exc_failure ? self->exc_failure
                                          : PyExc_RuntimeError,
                        "the topic has no partitions");
        return -1;
    }
    if (self->round_robin) {
        /* pykafka's RandomPartitioner: idx = (idx + 1) % n. */
        self->rr_idx = (self->rr_idx + 1) % self->n_parts;
        *pid = self->part_ids[self->rr_idx];
        return 0;
    }
    lst = PyList_GetSlice(self->partitions, 0, self->n_parts);
    if (lst == NULL)
        return -1;
    args[0] = lst;
    args[1] = key;
    part = PyObject_Vectorcall(self->partitioner, args, 2, NULL);
    Py_DECREF(lst);
    if (part == NULL)
        return -1;
    idobj = PyObject_GetAttr(part, self->str_id);
    Py_DECREF(part);
    if (idobj == NULL)
        return -1;
    v = PyLong_AsLong(idobj);
    Py_DECREF(idobj);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (v < 0 || v > INT32_MAX) {
        PyErr_Format(self->exc_failure, "the partitioner chose partition "
                     "%ld, which the topic does not have", v);
        return -1;
    }
    *pid = (int32_t)v;
    return 0;
}

/* Has partition `pid` been added to the transaction (txn_hook)? */
static int
txn_partition_added(const ProducerCore *self, int32_t pid)
{
    return pid < self->txn_added_cap && self->txn_added[pid];
}

/* Before the first record of partition `pid` in a transaction: call the
 * transaction hook for it (AddPartitionsToTxn, in Python).  Returns 0, or
 * -1 with the hook's exception set. */
static int
txn_add_partition(ProducerCore *self, int32_t pid)
{
    PyObject *arg, *res;

    if (txn_partition_added(self, pid))
        return 0;
    arg = PyLong_FromLong(pid);
    if (arg == NULL)
        return -1;
    res = PyObject_CallOneArg(self->txn_hook, arg);
    Py_DECREF(arg);
    if (res == NULL)
        return -1;
    Py_DECREF(res);
    if (pid >= self->txn_added_cap) {
        int32_t cap = pid + 1;
        uint8_t *more = PyMem_Realloc(self->txn_added, (size_t)cap);

        if (more == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        memset(more + self->txn_added_cap, 0,
               (size_t)(cap - self->txn_added_cap));
        self->txn_added = more;
        self->txn_added_cap = cap;
    }
    self->txn_added[pid] = 1;
    return 0;
}

/* A new Message for a produced record (no __init__ call), GC-tracked only
 * if a slot holds an object that may form a cycle (message.h).  Steals
 * nothing. */
static pkc_message *
make_message(ProducerCore *self, PyObject *value, PyObject *key,
             int32_t pid, int64_t ts_ms, PyObject *headers, PyObject *q)
{
    pkc_message *m = pkc_message_alloc(self->st);

    if (m == NULL)
        return NULL;
    m->value = Py_NewRef(value);
    m->partition_key = Py_NewRef(key);
    m->partition = Py_NewRef(Py_None);
    m->delivery_report_q = Py_NewRef(q != NULL ? q : Py_None);
    m->timestamp = NULL;
    m->headers = (headers != NULL && headers != Py_None)
                     ? Py_NewRef(headers) : NULL;
    m->offset = -1;
    m->ts_ms = ts_ms;
    m->partition_id = pid;
    m->compression_type = self->codec;
    m->produce_attempt = 0;
    m->protocol_version = 1;
    /* m is new, so untracked: one decision for all four slots. */
    if (pkc_message_may_cycle(m->value) ||
        pkc_message_may_cycle(m->partition_key) ||
        pkc_message_may_cycle(m->delivery_report_q) ||
        pkc_message_may_cycle(m->headers))
        PyObject_GC_Track((PyObject *)m);
    return m;
}

/* The timestamp of a produced record in ms; `ts` None is "now". */
static int
timestamp_ms(ProducerCore *self, PyObject *ts, int64_t *out)
{
    pkc_message *tmp;
    PyObject *r;
    int rc;

    if (ts == Py_None) {
        *out = wall_ms();
        return 0;
    }
    if (PyLong_CheckExact(ts)) {
        long long v = PyLong_AsLongLong(ts);

        if (v == -1 && PyErr_Occurred())
            return -1;
        *out = v;
        return 0;
    }
    /* float, datetime, anything else: pykafka's Message.set_timestamp
     * rules, on a scratch message. */
    tmp = make_message(self, Py_None, Py_None, -1, 0, NULL, NULL);
    if (tmp == NULL)
        return -1;
    r = PyObject_CallMethodOneArg((PyObject *)tmp, self->str_set_timestamp,
                                  ts);
    if (r == NULL) {
        Py_DECREF(tmp);
        return -1;
    }
    Py_DECREF(r);
    rc = pkc_message_timestamp_ms(tmp, out);
    Py_DECREF(tmp);
    if (rc == 1)
        *out = wall_ms();
    return rc < 0 ? -1 : 0;
}

/* Call the produce check (set: a transactional producer); -1 if it
 * raised.  The check is held across the call: it may be replaced. */
static int
produce_checked(ProducerCore *self)
{
    PyObject *check = Py_NewRef(self->produce_check);
    PyObject *res = PyObject_CallNoArgs(check);

    Py_DECREF(check);
    if (res == NULL)
        return -1;
    Py_DECREF(res);
    return 0;
}

PyDoc_STRVAR(ProducerCore_produce_doc,
"produce($self, message, partition_key=None, timestamp=None, headers=None)\n"
"--\n\n"
"Queue one message and return its pykafka_c.protocol.Message.\n\n"
"Without a serializer, message and partition_key must be bytes or None\n"
"(TypeError otherwise).  timestamp is epoch ms (int or float), a naive\n"
"UTC datetime, or None for now; headers is a list of (str, bytes) pairs.\n"
"Raises ProducerStoppedException when not running and\n"
"ProducerQueueFullError when the queue is full and block_on_queue_full\n"
"is off.");

static PyObject *
ProducerCore_produce(PyObject *op, PyObject *const *args, Py_ssize_t nargs,
                     PyObject *kwnames)
{
    static const char *const names[] = {"message", "partition_key",
                                        "timestamp", "headers"};
    ProducerCore *self = ProducerCore_CAST(op);
    PyObject *argv[4] = {NULL, Py_None, Py_None, Py_None};
    PyObject *value, *key, *ser = NULL, *hseq = NULL, *q = NULL;
    pkc_header hstack[STACK_HEADERS], *hdrs = hstack;
    int32_t nh = 0, pid = -1, klen = -1, vlen = -1;
    const uint8_t *kp = NULL, *vp = NULL;
    int64_t ts;
    pkc_message *m = NULL;
    pkc_sl_cookie cookie;
    int rc;

    /* Arguments: positional, then keywords. */
    if (nargs > 4) {
        PyErr_Format(PyExc_TypeError, "produce() takes at most 4 arguments "
                     "(%zd given)", nargs);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < nargs; i++)
        argv[i] = args[i];
    if (kwnames != NULL) {
        Py_ssize_t nk = PyTuple_GET_SIZE(kwnames);

        for (Py_ssize_t i = 0; i < nk; i++) {
            PyObject *kw = PyTuple_GET_ITEM(kwnames, i);
            int j;

            for (j = 0; j < 4; j++)
                if (PyUnicode_CompareWithASCIIString(kw, names[j]) == 0)
                    break;
            if (j == 4) {
                PyErr_Format(PyExc_TypeError, "produce() got an unexpected "
                             "keyword argument '%U'", kw);
                return NULL;
            }
            if (j < nargs) {
                PyErr_Format(PyExc_TypeError, "produce() got multiple values "
                             "for argument '%s'", names[j]);
                return NULL;
            }
            argv[j] = args[nargs + i];
        }
    }
    if (argv[0] == NULL) {
        PyErr_SetString(PyExc_TypeError,
                        "produce() missing required argument 'message'");
        return NULL;
    }
    if (self->produce_check != NULL && produce_checked(self) < 0)
        return NULL;
    value = argv[0];
    key = argv[1];

    /* pykafka's order: types, then running, then the serializer. */
    if (self->serializer == Py_None) {
        if (bytes_or_none(key, &kp, &klen, "partition_key") < 0 ||
            bytes_or_none(value, &vp, &vlen, "message") < 0)
            return NULL;
    }
    if (!self->running) {
        PyErr_SetNone(self->exc_stopped);
        return NULL;
    }
    if (self->serializer != Py_None) {
        PyObject *sargs[2] = {value, key};

        ser = PyObject_Vectorcall(self->serializer, sargs, 2, NULL);
        if (ser == NULL)
            return NULL;
        if (!PyTuple_Check(ser) || PyTuple_GET_SIZE(ser) != 2) {
            PyErr_SetString(PyExc_TypeError, "the serializer must return a "
                            "(value, partition_key) tuple");
            goto error;
        }
        value = PyTuple_GET_ITEM(ser, 0);
        key = PyTuple_GET_ITEM(ser, 1);
        if (bytes_or_none(key, &kp, &klen, "partition_key") < 0 ||
            bytes_or_none(value, &vp, &vlen, "message") < 0)
            goto error;
    }
    if (choose_partition(self, key, &pid) < 0)
        goto error;
    if (self->txn_hook != NULL && txn_add_partition(self, pid) < 0)
        goto error;
    if (timestamp_ms(self, argv[2], &ts) < 0)
        goto error;
    if (parse_headers(argv[3], hstack, &hdrs, &nh, &hseq) < 0)
        goto error;
    if (self->keep_reports && (q = thread_queue(self)) == NULL)
        goto error;
    m = make_message(self, value, key, pid, ts, argv[3], q);
    if (m == NULL)
        goto error;
    cookie.msg = m;
    cookie.queue = q;

    for (;;) {
        rc = pkc_sl_append(self->sl, pid, ts, kp, klen, vp, vlen, hdrs, nh,
                           &cookie);
        if (rc != PKC_SL_APPEND_FULL)
            break;
        if (!self->block_on_queue_full) {
            PyErr_SetString(self->exc_full,
                            "the producer's queue is full "
                            "(max_queued_messages)");
            goto error;
        }
        Py_BEGIN_ALLOW_THREADS
        pkc_sl_wait_space(self->sl, pkc_now_ms() + FULL_WAIT_SLICE_MS);
        Py_END_ALLOW_THREADS
        if (PyErr_CheckSignals() < 0)
            goto error;
    }
    if (rc == PKC_SL_APPEND_STOPPED) {
        PyErr_SetNone(self->exc_stopped);
        goto error;
    }
    if (rc == PKC_SL_APPEND_NOPART) {
        PyErr_Format(self->exc_failure, "partition %d is not a known "
                     "partition of the topic", (int)pid);
        goto error;
    }
    if (rc == PKC_ERR_NOMEM) {
        PyErr_NoMemory();
        goto error;
    }
    if (rc != PKC_SL_APPEND_OK) {
        PyErr_Format(PyExc_ValueError, "could not queue the message: %s",
                     pkc_status_str(rc));
        goto error;
    }
    if (self->keep_reports) {
        /* The engine holds the cookie: it owns these references now. */
        Py_INCREF(m);
        Py_XINCREF(q);
    }
    if (hdrs != hstack)
        PyMem_Free(hdrs);
    Py_XDECREF(hseq);
    Py_XDECREF(ser);
    Py_XDECREF(q);
    return (PyObject *)m;

error:
    if (hdrs != hstack)
        PyMem_Free(hdrs);
    Py_XDECREF(hseq);
    Py_XDECREF(ser);
    Py_XDECREF(q);
    Py_XDECREF(m);
    return NULL;
}

/* -------------------------------------------------------- transactions */

PyDoc_STRVAR(ProducerCore_set_txn_hook_doc,
"set_txn_hook($self, hook, /)\n--\n\n"
"Make produce() call hook(partition_id) before it queues the first\n"
"record of a partition since the last txn_reset() (a transactional\n"
"producer adds the partition to its transaction there; if the hook\n"
"raises, produce() raises it and queues nothing).  None: no hook.");

/* Store callable `arg` in *slot (None: NULL); `what` names it in the
 * TypeError for anything else. */
static PyObject *
store_callable_or_none(PyObject **slot, PyObject *arg, const char *what)
{
    if (arg != Py_None && !PyCallable_Check(arg)) {
        PyErr_Format(PyExc_TypeError, "the %s must be callable or None",
                     what);
        return NULL;
    }
    Py_XSETREF(*slot, arg == Py_None ? NULL : Py_NewRef(arg));
    Py_RETURN_NONE;
}

static PyObject *
ProducerCore_set_txn_hook(PyObject *op, PyObject *arg)
{
    return store_callable_or_none(&ProducerCore_CAST(op)->txn_hook, arg,
                                  "hook");
}

PyDoc_STRVAR(ProducerCore_set_produce_check_doc,
"set_produce_check($self, check, /)\n--\n\n"
"Make produce() call check() before anything else, and raise what it\n"
"raises (a transactional producer outside a transaction); None: no check.");

static PyObject *
ProducerCore_set_produce_check(PyObject *op, PyObject *arg)
{
    return store_callable_or_none(&ProducerCore_CAST(op)->produce_check,
                                  arg, "check");
}

PyDoc_STRVAR(ProducerCore_txn_reset_doc,
"txn_reset($self, /)\n--\n\n"
"Forget which partitions the hook was called for (a transaction ended).");

static PyObject *
ProducerCore_txn_reset(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    ProducerCore *self = ProducerCore_CAST(op);

    if (self->txn_added != NULL)
        memset(self->txn_added, 0, (size_t)self->txn_added_cap);
    Py_RETURN_NONE;
}

/* ------------------------------------------------------- configuration */

PyDoc_STRVAR(ProducerCore_set_partitions_doc,
"set_partitions($self, partitions, /)\n--\n\n"
"Set the list of Partition objects handed to the partitioner.  Each\n"
"needs an integer `id`.");

static PyObject *
ProducerCore_set_partitions(PyObject *op, PyObject *arg)
{
    ProducerCore *self = ProducerCore_CAST(op);
    PyObject *lst;
    int32_t *ids;
    Py_ssize_t n;

    if (!PyList_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "partitions must be a list");
        return NULL;
    }
    lst = PyList_GetSlice(arg, 0, PyList_GET_SIZE(arg));
    if (lst == NULL)
        return NULL;
    n = PyList_GET_SIZE(lst);
    ids = PyMem_Malloc((size_t)(n > 0 ? n : 1) * sizeof(*ids));
    if (ids == NULL) {
        Py_DECREF(lst);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *idobj = PyObject_GetAttr(PyList_GET_ITEM(lst, i),
                                           self->str_id);
        long v;

        if (idobj == NULL)
            goto error;
        v = PyLong_AsLong(idobj);
        Py_DECREF(idobj);
        if (v == -1 && PyErr_Occurred())
            goto error;
        if (v < 0 || v > INT32_MAX) {
            PyErr_Format(PyExc_ValueError, "bad partition id %ld", v);
            goto error;
        }
        ids[i] = (int32_t)v;
    }
    PyMem_Free(self->part_ids);
    self->part_ids = ids;
    self->n_parts = n;
    Py_XSETREF(self->partitions, lst);
    if (n > 0)
        self->rr_idx %= n;
    Py_RETURN_NONE;
error:
    PyMem_Free(ids);
    Py_DECREF(lst);
    return NULL;
}

PyDoc_STRVAR(ProducerCore_set_leaders_doc,
"set_leaders($self, leaders, /)\n--\n\n"
"Set partition leaders from a list of (partition_id, leader_node_id)\n"
"pairs; -1 means no leader.");

static PyObject *
ProducerCore_set_leaders(PyObject *op, PyObject *arg)
{
    ProducerCore *self = ProducerCore_CAST(op);
    PyObject *seq;
    Py_ssize_t n;
    int32_t *buf = NULL;
    int rc;

    seq = PySequence_Fast(arg, "leaders must be a sequence of pairs");
    if (seq == NULL)
        return NULL;
    n = PySequence_Fast_GET_SIZE(seq);
    buf = PyMem_Malloc((size_t)(n > 0 ? n : 1) * 2 * sizeof(*buf));
    if (buf == NULL) {
        Py_DECREF(seq);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        int p, l;

        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, i), "ii", &p, &l))
            goto error;
        buf[i] = p;
        buf[n + i] = l;
    }
    rc = pkc_sl_set_leaders(self->sl, buf, buf + n, (size_t)n);
    if (rc == PKC_ERR_NOMEM) {
        PyErr_NoMemory();
        goto error;
    }
    if (rc != PKC_OK) {
        PyErr_SetString(PyExc_ValueError, "invalid partition id");
        goto error;
    }
    PyMem_Free(buf);
    Py_DECREF(seq);
    Py_RETURN_NONE;
error:
    PyMem_Free(buf);
    Py_DECREF(seq);
    return NULL;
}

PyDoc_STRVAR(ProducerCore_set_brokers_doc,
"set_brokers($self, brokers, /)\n--\n\n"
"Set the broker table from a list of (node_id, host, port).");

static PyObject *
ProducerCore_set_brokers(PyObject *op, PyObject *arg)
{
    ProducerCore *self = ProducerCore_CAST(op);
    PyObject *seq;
    Py_ssize_t n;
    pkc_sl_broker_addr *addrs = NULL;
    int rc;

    seq = PySequence_Fast(arg, "brokers must be a sequence");
    if (seq == NULL)
        return NULL;
    n = PySequence_Fast_GET_SIZE(seq);
    addrs = PyMem_Malloc((size_t)(n > 0 ? n : 1) * sizeof(*addrs));
    if (addrs == NULL) {
        Py_DECREF(seq);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        int node, port;
        const char *host;

        /* The host strings stay alive in `seq` during the call. */
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, i), "isi", &node,
                              &host, &port))
            goto error;
        addrs[i].node_id = node;
        addrs[i].host = host;
        addrs[i].port = port;
    }
    rc = pkc_sl_set_brokers(self->sl, addrs, (size_t)n);
    if (rc == PKC_ERR_NOMEM) {
        PyErr_NoMemory();
        goto error;
    }
    if (rc != PKC_OK) {
        PyErr_SetString(PyExc_ValueError, "invalid broker host");
        goto error;
    }
    PyMem_Free(addrs);
    Py_DECREF(seq);
    Py_RETURN_NONE;
error:
    PyMem_Free(addrs);
    Py_DECREF(seq);
    return NULL;
}

/* ------------------------------------------------------------ lifecycle */

PyDoc_STRVAR(ProducerCore_start_doc,
"start($self, /)\n--\n\n"
"Start the sender thread and accept messages.");

static PyObject *
ProducerCore_start(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    ProducerCore *self = ProducerCore_CAST(op);
    int rc = pkc_sl_start(self->sl);

    if (rc != PKC_OK) {
        PyErr_Format(PyExc_OSError, "could not start the sender thread: %s",
                     pkc_status_str(rc));
        return NULL;
    }
    self->running = 1;
    Py_RETURN_NONE;
}

PyDoc_STRVAR(ProducerCore_stop_doc,
"stop($self, timeout_ms=-1, /)\n--\n\n"
"Stop accepting messages, send what is queued until timeout_ms passes\n"
"(-1: no limit), stop the sender and fail what is left.  Returns the\n"
"number of messages that failed because of the stop; their reports are\n"
"posted by the next dispatch().");

static PyObject *
ProducerCore_stop(PyObject *op, PyObject *const *args, Py_ssize_t nargs)
{
    ProducerCore *self = ProducerCore_CAST(op);
    long long timeout_ms = -1;
    int64_t deadline, failed;

    if (nargs > 1) {
        PyErr_SetString(PyExc_TypeError, "stop() takes at most 1 argument");
        return NULL;
    }
    if (nargs == 1 && args[0] != Py_None) {
        timeout_ms = PyLong_AsLongLong(args[0]);
        if (timeout_ms == -1 && PyErr_Occurred())
            return NULL;
    }
    self->running = 0;
    deadline = deadline_for(timeout_ms);
    Py_BEGIN_ALLOW_THREADS
    failed = pkc_sl_stop(self->sl, deadline);
    Py_END_ALLOW_THREADS
    return PyLong_FromLongLong(failed);
}

PyDoc_STRVAR(ProducerCore_flush_doc,
"flush($self, timeout_ms=-1, /)\n--\n\n"
"Send everything queued now and wait until no message is pending or\n"
"timeout_ms passes (-1: no limit).  Returns the number still pending.");

static PyObject *
ProducerCore_flush(PyObject *op, PyObject *const *args, Py_ssize_t nargs)
{
    ProducerCore *self = ProducerCore_CAST(op);
    long long timeout_ms = -1;
    int64_t deadline, pending;

    if (nargs > 1) {
        PyErr_SetString(PyExc_TypeError, "flush() takes at most 1 argument");
        return NULL;
    }
    if (nargs == 1 && args[0] != Py_None) {
        timeout_ms = PyLong_AsLongLong(args[0]);
        if (timeout_ms == -1 && PyErr_Occurred())
            return NULL;
    }
    deadline = deadline_for(timeout_ms);
    for (;;) {
        int64_t slice = pkc_now_ms() + FULL_WAIT_SLICE_MS;

        if (slice > deadline)
            slice = deadline;
        Py_BEGIN_ALLOW_THREADS
        pending = pkc_sl_flush(self->sl, slice);
        Py_END_ALLOW_THREADS
        if (pending == 0 || pkc_now_ms() >= deadline)
            break;
        if (PyErr_CheckSignals() < 0)
            return NULL;
    }
    return PyLong_FromLongLong(pending);
}

PyDoc_STRVAR(ProducerCore_wait_event_doc,
"wait_event($self, timeout_ms, /)\n--\n\n"
"Wait (without the GIL) until delivery reports are ready, the metadata\n"
"needs refreshing or the sender stopped, or timeout_ms passes.  Returns\n"
"the EV_* bits.");

static PyObject *
ProducerCore_wait_event(PyObject *op, PyObject *arg)
{
    ProducerCore *self = ProducerCore_CAST(op);
    long long timeout_ms = PyLong_AsLongLong(arg);
    int64_t deadline;
    int ev;

    if (timeout_ms == -1 && PyErr_Occurred())
        return NULL;
    deadline = deadline_for(timeout_ms);
    Py_BEGIN_ALLOW_THREADS
    ev = pkc_sl_wait_event(self->sl, deadline);
    Py_END_ALLOW_THREADS
    return PyLong_FromLong(ev);
}

PyDoc_STRVAR(ProducerCore_set_producer_id_doc,
"set_producer_id($self, producer_id, producer_epoch, /)\n--\n\n"
"Hand the engine the id and epoch InitProducerId returned (idempotent\n"
"engines only; producer_id -1 gives idempotence up).  Raises ValueError\n"
"when the engine is not idempotent.");

static PyObject *
ProducerCore_set_producer_id(PyObject *op, PyObject *const *args,
                             Py_ssize_t nargs)
{
    ProducerCore *self = ProducerCore_CAST(op);
    long long pid;
    long epoch;
    int rc;

    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError,
                        "set_producer_id() takes 2 arguments");
        return NULL;
    }
    pid = PyLong_AsLongLong(args[0]);
    if (pid == -1 && PyErr_Occurred())
        return NULL;
    epoch = PyLong_AsLong(args[1]);
    if (epoch == -1 && PyErr_Occurred())
        return NULL;
    if (pid < -1 || epoch < -1 || epoch > 32767) {
        PyErr_SetString(PyExc_ValueError,
                        "producer id or epoch out of range");
        return NULL;
    }
    rc = pkc_sl_set_producer_id(self->sl, (int64_t)pid, (int16_t)epoch);
    if (rc != PKC_OK) {
        PyErr_SetString(PyExc_ValueError, "this producer is not idempotent");
        return NULL;
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(ProducerCore_producer_id_failed_doc,
"producer_id_failed($self, error_code, message, /)\n--\n\n"
"Tell the engine why InitProducerId failed this time (error_code: the\n"
"Kafka error the brokers answered, 0 when none could be reached).  Until\n"
"its first producer id the engine sends nothing; messages that wait too\n"
"long fail with this reason.  Raises ValueError when the engine is not\n"
"idempotent.");

static PyObject *
ProducerCore_producer_id_failed(PyObject *op, PyObject *const *args,
                                Py_ssize_t nargs)
{
    ProducerCore *self = ProducerCore_CAST(op);
    const char *message;
    long code;

    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError,
                        "producer_id_failed() takes 2 arguments");
        return NULL;
    }
    code = PyLong_AsLong(args[0]);
    if (PyErr_Occurred())
        return NULL;
    if (code < INT16_MIN || code > INT16_MAX) {
        PyErr_SetString(PyExc_ValueError, "error code out of range");
        return NULL;
    }
    message = PyUnicode_AsUTF8(args[1]);
    if (message == NULL)
        return NULL;
    if (pkc_sl_producer_id_failed(self->sl, (int)code, message) != PKC_OK) {
        PyErr_SetString(PyExc_ValueError, "this producer is not idempotent");
        return NULL;
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(ProducerCore_dispatch_doc,
"dispatch($self, /)\n--\n\n"
"Post the delivery reports of every finished batch to the producing\n"
"threads' queues.  Returns a list of (count, exception) for the batches\n"
"that failed (empty when none did).");

static PyObject *
ProducerCore_dispatch(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    ProducerCore *self = ProducerCore_CAST(op);
    PyObject *failures = PyList_New(0);

    if (failures == NULL)
        return NULL;
    dispatch_all(self, failures);
    return failures;
}

PyDoc_STRVAR(ProducerCore_report_queue_doc,
"report_queue($self, /)\n--\n\n"
"The calling thread's delivery-report queue (made on first use).");

static PyObject *
ProducerCore_report_queue(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    return thread_queue(ProducerCore_CAST(op));
}

PyDoc_STRVAR(ProducerCore_stats_doc,
"stats($self, /)\n--\n\n"
"Counters of the send engine as a dict.");

static PyObject *
ProducerCore_stats(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    ProducerCore *self = ProducerCore_CAST(op);
    pkc_sl_stats s;

    pkc_sl_stats_get(self->sl, &s);
    return Py_BuildValue(
        "{sLsLsLsLsLsLsLsLsLsLsLsLsLsLsLsLsLsLsLsLsLsLsL}", "appended",
        (long long)s.appended,
        "completed", (long long)s.completed, "failed", (long long)s.failed,
        "requests", (long long)s.requests, "batches_sent",
        (long long)s.batches_sent, "retries", (long long)s.retries,
        "splits", (long long)s.splits, "bytes_sent", (long long)s.bytes_sent,
        "connects", (long long)s.connects, "authentications",
        (long long)s.authentications, "metadata_requests",
        (long long)s.metadata_requests, "pending", (long long)s.pending,
        "unsent", (long long)s.unsent, "finished_ahead",
        (long long)s.finished_ahead, "producer_id",
        (long long)s.producer_id, "producer_epoch",
        (long long)s.producer_epoch, "epoch_bumps",
        (long long)s.epoch_bumps, "sequence_resets",
        (long long)s.sequence_resets, "producer_id_requests",
        (long long)s.producer_id_requests, "duplicates",
        (long long)s.duplicates, "max_partition_in_flight",
        (long long)s.max_partition_in_flight, "busy_us",
        (long long)s.busy_us, "backlog_us", (long long)s.backlog_us);
}

PyDoc_STRVAR(ProducerCore_produce_version_doc,
"produce_version($self, node_id, /)\n--\n\n"
"The Produce version negotiated with broker node_id, or -1.");

static PyObject *
ProducerCore_produce_version(PyObject *op, PyObject *arg)
{
    long node = PyLong_AsLong(arg);

    if (node == -1 && PyErr_Occurred())
        return NULL;
    return PyLong_FromLong(
        pkc_sl_produce_version(ProducerCore_CAST(op)->sl, (int32_t)node));
}

static PyObject *
ProducerCore_get_running(PyObject *op, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(ProducerCore_CAST(op)->running);
}

static PyObject *
ProducerCore_get_pending(PyObject *op, void *Py_UNUSED(closure))
{
    pkc_sl_stats s;

    pkc_sl_stats_get(ProducerCore_CAST(op)->sl, &s);
    return PyLong_FromLongLong(s.pending);
}

static PyObject *
ProducerCore_get_rr_index(PyObject *op, void *Py_UNUSED(closure))
{
    return PyLong_FromSsize_t(ProducerCore_CAST(op)->rr_idx);
}

/* ------------------------------------------------------------ type slots */

/* The value of keyword `name` (borrowed), or NULL when absent or None. */
static PyObject *
kw_value(PyObject *kw, const char *name)
{
    PyObject *v = kw != NULL ? PyDict_GetItemString(kw, name) : NULL;

    return v == Py_None ? NULL : v;
}

static int
get_int_kw(PyObject *kw, const char *name, long long dflt, long long lo,
           long long hi, long long *out)
{
    PyObject *v = kw_value(kw, name);

    *out = dflt;
    if (v == NULL)
        return 0;
    *out = PyLong_AsLongLong(v);
    if (*out == -1 && PyErr_Occurred())
        return -1;
    if (*out < lo || *out > hi) {
        PyErr_Format(PyExc_ValueError, "%s=%lld is out of range [%lld, "
                     "%lld]", name, *out, lo, hi);
        return -1;
    }
    return 0;
}

/* A str keyword (absent or None: *out NULL).  Returns 0 or -1. */
static int
get_str_kw(PyObject *kw, const char *name, const char **out)
{
    PyObject *v = kw_value(kw, name);

    *out = NULL;
    if (v == NULL)
        return 0;
    if (!PyUnicode_Check(v)) {
        PyErr_Format(PyExc_TypeError, "%s must be a str", name);
        return -1;
    }
    *out = PyUnicode_AsUTF8(v);
    return *out == NULL ? -1 : 0;
}

static PyObject *
ProducerCore_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    ProducerCore *self = NULL;
    const char *topic;
    PyObject *partitioner = Py_None, *serializer = Py_None;
    PyObject *tlocal = NULL, *factory = NULL, *excs = NULL;
    long long codec, acks, ack_timeout, retries, backoff, maxq, minq, linger,
        maxreq, reports, block, rr, connect_to, request_to, leader_wait,
        inflight, idem, source_port, delivery_timeout;
    const char *source_host = NULL, *software_version = NULL;
    const char *transactional_id = NULL;
    pkc_security *security = NULL;
    pkc_sl_config cfg;
    char err[256];
    int rc;

    static const char *const known[] = {
        "partitioner", "serializer", "thread_local", "queue_factory",
        "exceptions", "compression", "required_acks", "ack_timeout_ms",
        "max_retries", "retry_backoff_ms", "delivery_timeout_ms",
        "max_queued_messages",
        "min_queued_messages", "linger_ms", "max_request_size",
        "delivery_reports", "block_on_queue_full", "round_robin",
        "connect_timeout_ms", "request_timeout_ms", "leader_wait_ms",
        "max_in_flight", "idempotent", "source_host", "source_port",
        "security", "software_version", "transactional_id", NULL};

    if (!PyArg_ParseTuple(args, "s:ProducerCore", &topic))
        return NULL;
    if (kw != NULL) {
        PyObject *key;
        Py_ssize_t pos = 0;

        while (PyDict_Next(kw, &pos, &key, NULL)) {
            int i;

            for (i = 0; known[i] != NULL; i++)
                if (PyUnicode_Check(key) &&
                    PyUnicode_CompareWithASCIIString(key, known[i]) == 0)
                    break;
            if (known[i] == NULL) {
                PyErr_Format(PyExc_TypeError, "ProducerCore() got an "
                             "unexpected keyword argument '%S'", key);
                return NULL;
            }
        }
        partitioner = PyDict_GetItemString(kw, "partitioner");
        serializer = PyDict_GetItemString(kw, "serializer");
        tlocal = PyDict_GetItemString(kw, "thread_local");
        factory = PyDict_GetItemString(kw, "queue_factory");
        excs = PyDict_GetItemString(kw, "exceptions");
    }
    if (partitioner == NULL)
        partitioner = Py_None;
    if (serializer == NULL)
        serializer = Py_None;
    if (tlocal == NULL || factory == NULL || excs == NULL ||
        !PyDict_Check(excs)) {
        PyErr_SetString(PyExc_TypeError, "ProducerCore needs thread_local, "
                        "queue_factory and exceptions (a dict)");
        return NULL;
    }
    if (get_int_kw(kw, "compression", 0, 0, 4, &codec) < 0 ||
        get_int_kw(kw, "required_acks", 1, -32768, 32767, &acks) < 0 ||
        get_int_kw(kw, "ack_timeout_ms", 10000, 0, INT32_MAX,
                   &ack_timeout) < 0 ||
        get_int_kw(kw, "max_retries", 3, 0, 1000000, &retries) < 0 ||
        get_int_kw(kw, "retry_backoff_ms", 100, 0, INT32_MAX, &backoff) < 0 ||
        get_int_kw(kw, "delivery_timeout_ms", 0, 0, INT32_MAX,
                   &delivery_timeout) < 0 ||
        get_int_kw(kw, "max_queued_messages", 100000, 0, INT64_MAX / 2,
                   &maxq) < 0 ||
        get_int_kw(kw, "min_queued_messages", 70000, 1, INT64_MAX / 2,
                   &minq) < 0 ||
        get_int_kw(kw, "linger_ms", 5000, 0, INT32_MAX, &linger) < 0 ||
        get_int_kw(kw, "max_request_size", 1000012, 1, INT32_MAX,
                   &maxreq) < 0 ||
        get_int_kw(kw, "delivery_reports", 0, 0, 1, &reports) < 0 ||
        get_int_kw(kw, "block_on_queue_full", 1, 0, 1, &block) < 0 ||
        get_int_kw(kw, "round_robin", 0, 0, 1, &rr) < 0 ||
        get_int_kw(kw, "connect_timeout_ms", 10000, 1, INT32_MAX,
                   &connect_to) < 0 ||
        get_int_kw(kw, "request_timeout_ms", 30000, 1, INT32_MAX,
                   &request_to) < 0 ||
        get_int_kw(kw, "leader_wait_ms", 10000, 1, INT32_MAX,
                   &leader_wait) < 0 ||
        get_int_kw(kw, "max_in_flight", 5, 1, 1000, &inflight) < 0 ||
        get_int_kw(kw, "idempotent", 0, 0, 1, &idem) < 0 ||
        get_int_kw(kw, "source_port", 0, 0, 65535, &source_port) < 0)
        return NULL;
    if (get_str_kw(kw, "source_host", &source_host) < 0 ||
        get_str_kw(kw, "software_version", &software_version) < 0 ||
        get_str_kw(kw, "transactional_id", &transactional_id) < 0 ||
        pkc_security_arg(pkc_state_from_type(type),
                         kw_value(kw, "security"), &security) < 0)
        return NULL;
    if (!rr && !PyCallable_Check(partitioner)) {
        PyErr_SetString(PyExc_TypeError, "partitioner must be callable");
        return NULL;
    }
    if (serializer != Py_None && !PyCallable_Check(serializer)) {
        PyErr_SetString(PyExc_TypeError, "serializer must be callable");
        return NULL;
    }

    self = (ProducerCore *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->st = pkc_state_from_type(type);
    if (self->st == NULL)
        goto error;
    self->keep_reports = (int)reports;
    self->block_on_queue_full = (int)block;
    self->codec = (int)codec;
    self->round_robin = (int)rr;
    self->partitioner = Py_NewRef(partitioner);
    self->serializer = Py_NewRef(serializer);
    self->partitions = PyList_New(0);
    self->tlocal = Py_NewRef(tlocal);
    self->queue_factory = Py_NewRef(factory);
    self->exc_stopped = Py_XNewRef(
        PyDict_GetItemString(excs, "ProducerStoppedException"));
    self->exc_full = Py_XNewRef(
        PyDict_GetItemString(excs, "ProducerQueueFullError"));
    self->exc_failure = Py_XNewRef(
        PyDict_GetItemString(excs, "ProduceFailureError"));
    self->str_id = PyUnicode_InternFromString("id");
    self->str_q = PyUnicode_InternFromString("q");
    self->str_put = PyUnicode_InternFromString("put");
    self->str_set_timestamp = PyUnicode_InternFromString("set_timestamp");
    if (self->partitions == NULL || self->str_id == NULL ||
        self->str_q == NULL || self->str_put == NULL ||
        self->str_set_timestamp == NULL)
        goto error;
    if (self->exc_stopped == NULL || self->exc_full == NULL ||
        self->exc_failure == NULL) {
        PyErr_SetString(PyExc_TypeError, "exceptions must hold "
                        "ProducerStoppedException, ProducerQueueFullError "
                        "and ProduceFailureError");
        goto error;
    }
    if (rr && kw != NULL) {
        /* Continue the RandomPartitioner's own counter. */
        PyObject *idx = PyObject_GetAttrString(partitioner, "idx");

        if (idx != NULL) {
            Py_ssize_t v = PyLong_AsSsize_t(idx);

            Py_DECREF(idx);
            if (v == -1 && PyErr_Occurred())
                PyErr_Clear();
            else if (v >= 0)
                self->rr_idx = v;
        }
        else {
            PyErr_Clear();
        }
    }

    memset(&cfg, 0, sizeof(cfg));
    cfg.topic = topic;
    cfg.codec = (int)codec;
    cfg.level = -1;
    cfg.acks = (int16_t)acks;
    cfg.ack_timeout_ms = (int32_t)ack_timeout;
    cfg.max_retries = (int)retries;
    cfg.retry_backoff_ms = (int)backoff;
    cfg.delivery_timeout_ms = (int)delivery_timeout;
    cfg.max_queued = maxq;
    cfg.min_queued = minq;
    cfg.linger_ms = (int)linger;
    cfg.max_request_size = (size_t)maxreq;
    cfg.keep_cookies = (int)reports;
    cfg.connect_timeout_ms = (int)connect_to;
    cfg.request_timeout_ms = (int)request_to;
    cfg.leader_wait_ms = (int)leader_wait;
    cfg.max_in_flight = (int)inflight;
    cfg.idempotent = (int)idem;
    cfg.client_id = "pykafka_c";
    cfg.source_host = source_host;
    cfg.source_port = (int)source_port;
    cfg.security = security;
    cfg.software_version = software_version;
    cfg.transactional_id = transactional_id;
    rc = pkc_sl_new(&self->sl, &cfg, err, sizeof(err));
    if (rc == PKC_ERR_NOMEM) {
        PyErr_NoMemory();
        goto error;
    }
    if (rc == PKC_ERR_CODEC) {
        pkc_raise(self->st->CodecUnavailableError, "%s", err);
        goto error;
    }
    if (rc != PKC_OK) {
        PyErr_Format(PyExc_ValueError, "%s", err);
        goto error;
    }
    return (PyObject *)self;

error:
    Py_DECREF(self);
    return NULL;
}

static int
ProducerCore_traverse(PyObject *op, visitproc visit, void *arg)
{
    ProducerCore *self = ProducerCore_CAST(op);

    Py_VISIT(Py_TYPE(op));
    Py_VISIT(self->partitioner);
    Py_VISIT(self->serializer);
    Py_VISIT(self->partitions);
    Py_VISIT(self->tlocal);
    Py_VISIT(self->cached_q);
    Py_VISIT(self->queue_factory);
    Py_VISIT(self->exc_stopped);
    Py_VISIT(self->exc_full);
    Py_VISIT(self->exc_failure);
    Py_VISIT(self->txn_hook);
    Py_VISIT(self->produce_check);
    return 0;
}

static int
ProducerCore_clear(PyObject *op)
{
    ProducerCore *self = ProducerCore_CAST(op);

    Py_CLEAR(self->partitioner);
    Py_CLEAR(self->serializer);
    Py_CLEAR(self->partitions);
    Py_CLEAR(self->tlocal);
    Py_CLEAR(self->cached_q);
    Py_CLEAR(self->queue_factory);
    Py_CLEAR(self->exc_stopped);
    Py_CLEAR(self->exc_full);
    Py_CLEAR(self->exc_failure);
    Py_CLEAR(self->txn_hook);
    Py_CLEAR(self->produce_check);
    return 0;
}

static void
ProducerCore_dealloc(PyObject *op)
{
    ProducerCore *self = ProducerCore_CAST(op);
    PyTypeObject *tp = Py_TYPE(op);

    PyObject_GC_UnTrack(op);
    if (self->sl != NULL) {
        self->running = 0;
        Py_BEGIN_ALLOW_THREADS
        pkc_sl_stop(self->sl, 0);
        Py_END_ALLOW_THREADS
        /* Post what the stop failed (exactly one report per message, even
         * now) and drop the references the engine held. */
        dispatch_all(self, NULL);
        pkc_sl_free(self->sl);
        self->sl = NULL;
    }
    ProducerCore_clear(op);
    PyMem_Free(self->part_ids);
    PyMem_Free(self->txn_added);
    Py_XDECREF(self->str_id);
    Py_XDECREF(self->str_q);
    Py_XDECREF(self->str_put);
    Py_XDECREF(self->str_set_timestamp);
    tp->tp_free(op);
    Py_DECREF(tp);
}

static PyMethodDef ProducerCore_methods[] = {
    {"produce", PKC_CFUNC(ProducerCore_produce),
     METH_FASTCALL | METH_KEYWORDS, ProducerCore_produce_doc},
    {"set_partitions", ProducerCore_set_partitions, METH_O,
     ProducerCore_set_partitions_doc},
    {"set_leaders", ProducerCore_set_leaders, METH_O,
     ProducerCore_set_leaders_doc},
    {"set_brokers", ProducerCore_set_brokers, METH_O,
     ProducerCore_set_brokers_doc},
    {"start", ProducerCore_start, METH_NOARGS, ProducerCore_start_doc},
    {"stop", PKC_CFUNC(ProducerCore_stop), METH_FASTCALL,
     ProducerCore_stop_doc},
    {"flush", PKC_CFUNC(ProducerCore_flush), METH_FASTCALL,
     ProducerCore_flush_doc},
    {"wait_event", ProducerCore_wait_event, METH_O,
     ProducerCore_wait_event_doc},
    {"producer_id_failed", PKC_CFUNC(ProducerCore_producer_id_failed),
     METH_FASTCALL, ProducerCore_producer_id_failed_doc},
    {"set_producer_id", PKC_CFUNC(ProducerCore_set_producer_id),
     METH_FASTCALL,
     ProducerCore_set_producer_id_doc},
    {"dispatch", ProducerCore_dispatch, METH_NOARGS,
     ProducerCore_dispatch_doc},
    {"report_queue", ProducerCore_report_queue, METH_NOARGS,
     ProducerCore_report_queue_doc},
    {"stats", ProducerCore_stats, METH_NOARGS, ProducerCore_stats_doc},
    {"set_txn_hook", ProducerCore_set_txn_hook, METH_O,
     ProducerCore_set_txn_hook_doc},
    {"set_produce_check", ProducerCore_set_produce_check, METH_O,
     ProducerCore_set_produce_check_doc},
    {"txn_reset", ProducerCore_txn_reset, METH_NOARGS,
     ProducerCore_txn_reset_doc},
    {"produce_version", ProducerCore_produce_version, METH_O,
     ProducerCore_produce_version_doc},
    {NULL}
};

static PyGetSetDef ProducerCore_getset[] = {
    {"running", ProducerCore_get_running, NULL,
     "True while produce() accepts messages.", NULL},
    {"pending", ProducerCore_get_pending, NULL,
     "Messages produced and not yet finished (acknowledged or failed).",
     NULL},
    {"rr_index", ProducerCore_get_rr_index, NULL,
     "The round-robin partitioner's current index.", NULL},
    {NULL}
};

PyDoc_STRVAR(ProducerCore_doc,
"ProducerCore(topic, /, *, thread_local, queue_factory, exceptions,\n"
"             partitioner=None, serializer=None, compression=0,\n"
"             required_acks=1, ack_timeout_ms=10000, max_retries=3,\n"
"             retry_backoff_ms=100, delivery_timeout_ms=0,\n"
"             max_queued_messages=100000,\n"
"             min_queued_messages=70000, linger_ms=5000,\n"
"             max_request_size=1000012, delivery_reports=False,\n"
"             block_on_queue_full=True, round_robin=False,\n"
"             connect_timeout_ms=10000, request_timeout_ms=30000,\n"
"             leader_wait_ms=10000, max_in_flight=5, idempotent=False,\n"
"             source_host=None, source_port=0, security=None,\n"
"             software_version=None, transactional_id=None)\n"
"--\n\n"
"The C send engine of one pykafka_c.Producer (private).  Keywords only;\n"
"None for any of them means its default.  thread_local, queue_factory\n"
"and exceptions (a dict of the producer's exception classes by name) are\n"
"required.");

static PyType_Slot ProducerCore_slots[] = {
    {Py_tp_doc, (void *)ProducerCore_doc},
    {Py_tp_new, ProducerCore_new},
    {Py_tp_dealloc, ProducerCore_dealloc},
    {Py_tp_traverse, ProducerCore_traverse},
    {Py_tp_clear, ProducerCore_clear},
    {Py_tp_methods, ProducerCore_methods},
    {Py_tp_getset, ProducerCore_getset},
    {0, NULL}
};

static PyType_Spec ProducerCore_spec = {
    .name = "pykafka_c._core.ProducerCore",
    .basicsize = sizeof(ProducerCore),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC |
             Py_TPFLAGS_IMMUTABLETYPE,
    .slots = ProducerCore_slots,
};

int
pkc_producer_exec(PyObject *module, pkc_state *st)
{
    PyObject *tp = PyType_FromModuleAndSpec(module, &ProducerCore_spec,
                                            NULL);

    if (tp == NULL)
        return -1;
    st->ProducerCoreType = (PyTypeObject *)tp;
    if (PyModule_AddObjectRef(module, "ProducerCore", tp) < 0)
        return -1;
    if (PyModule_AddIntConstant(module, "PRODUCER_EV_DONE",
                                PKC_SL_EV_DONE) < 0 ||
        PyModule_AddIntConstant(module, "PRODUCER_EV_METADATA",
                                PKC_SL_EV_METADATA) < 0 ||
        PyModule_AddIntConstant(module, "PRODUCER_EV_STOPPED",
                                PKC_SL_EV_STOPPED) < 0 ||
        PyModule_AddIntConstant(module, "PRODUCER_EV_PRODUCER_ID",
                                PKC_SL_EV_PRODUCER_ID) < 0)
        return -1;
    return 0;
}
