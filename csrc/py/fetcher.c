/*
 * fetcher.c - _core.Fetcher, the Python face of the fetch engine
 * (fetchloop.h): the C fetch thread of one SimpleConsumer and its record
 * queues.
 *
 * The per-message path (consume, __next__, consume_batch) takes records
 * from the engine's C queues under the engine's mutex and builds
 * pykafka_c.protocol.Message objects directly (pkc_message_from_record);
 * it holds no Python-level lock and never sleeps while records are
 * queued.  When nothing is queued a blocking consume waits on the
 * engine's condition variable without the GIL, in slices of at most
 * FETCHER_SLICE_MS, running signal handlers (Ctrl-C) and checking
 * `unblock_event` between slices.
 *
 * Errors found by the fetch thread are events.  Before taking a record,
 * consume() calls the `on_events` callable (set by SimpleConsumer, which
 * takes the events with take_events(), refreshes metadata, resets offsets
 * or raises); without one, consume() raises the first event's exception.
 */
#include "module.h"

#include "fetchloop.h"
#include "kafka_errors.h"
#include "message.h"
#include "net.h"

/* Longest wait without the GIL before signals / unblock_event are
 * looked at again. */
#define FETCHER_SLICE_MS 100
/* Records popped at once by consume_batch when no size is given. */
#define FETCHER_BATCH_DEFAULT 1000

typedef struct {
    PyObject_HEAD
    pkc_fl *fl;
    int32_t *part_ids;      /* in the order added */
    PyObject **part_objs;   /* Partition objects (strong refs) */
    size_t nparts, parts_cap;
    PyObject *on_events;    /* callable or NULL */
    PyObject *deserializer; /* callable or NULL */
    PyObject *pending_error;/* exception instance raised by the next consume */
    int64_t consumer_timeout_ms;
    /* Whether consume() may wait for records: the engine's thread state,
     * copied under the GIL after each start and stop (see Fetcher_start). */
    int running;
} FetcherObject;

#define Fetcher_CAST(op) ((FetcherObject *)(op))

static pkc_state *
Fetcher_state(FetcherObject *self)
{
    return (pkc_state *)PyType_GetModuleState(Py_TYPE(self));
}

/* Borrowed: the Partition object of partition id `pid` (None if unset). */
static inline PyObject *
Fetcher_part_obj(FetcherObject *self, int32_t pid)
{
    if (pid >= 0 && (size_t)pid < self->nparts &&
        self->part_ids[pid] == pid)
        return self->part_objs[pid];
    for (size_t i = 0; i < self->nparts; i++)
        if (self->part_ids[i] == pid)
            return self->part_objs[i];
    return Py_None;
}

/* A partition id argument (an int that fits int32). */
static int
Fetcher_pid_arg(PyObject *arg, int *out)
{
    long v = PyLong_AsLong(arg);

    if (v == -1 && PyErr_Occurred())
        return -1;
    if (v < INT32_MIN || v > INT32_MAX) {
        PyErr_SetString(PyExc_OverflowError, "partition id out of range");
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int
Fetcher_check_status(FetcherObject *self, int rc, const char *what)
{
    if (rc == PKC_OK)
        return 0;
    if (rc == PKC_ERR_NOMEM) {
        PyErr_NoMemory();
        return -1;
    }
    (void)self;
    PyErr_Format(rc == PKC_ERR_INVALID ? PyExc_ValueError
                                       : PyExc_RuntimeError,
                 "%s: %s", what, pkc_status_str(rc));
    return -1;
}

/* --------------------------------------------------------- construction */

static PyObject *
Fetcher_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"topic", "client_id", "fetch_wait_max_ms",
                             "fetch_min_bytes", "fetch_max_bytes",
                             "partition_max_bytes", "queued_max_messages",
                             "socket_timeout_ms", "backoff_ms",
                             "isolation_level", "check_crcs",
                             "consumer_timeout_ms", "source_host",
                             "source_port", "max_version", "max_frame",
                             "max_decompressed", "security",
                             "software_version", NULL};
    pkc_fl_config cfg;
    FetcherObject *self;
    Py_buffer topic = {0};
    const char *client_id = "pykafka_c", *source_host = "";
    int wait = 100, min_bytes = 1, max_bytes = 52428800;
    int pmax = 1048576, qmax = 2000, sock_to = 30000, backoff = 500;
    int iso = 0, check_crcs = 1, source_port = 0;
    int max_version = PKC_VER_FETCH_MAX, max_frame = 0;
    Py_ssize_t max_decompressed = 0;
    long long ctimeout = -1;
    PyObject *security = NULL;
    const char *software_version = NULL;
    int rc;

    if (!PyArg_ParseTupleAndKeywords(
            args, kwds, "y*|$siiiiiiiipLsiiinOz:Fetcher", kwlist, &topic,
            &client_id, &wait, &min_bytes, &max_bytes, &pmax, &qmax,
            &sock_to, &backoff, &iso, &check_crcs, &ctimeout, &source_host,
            &source_port, &max_version, &max_frame, &max_decompressed,
            &security, &software_version))
        return NULL;
    pkc_fl_config_default(&cfg);
    if (pkc_security_arg(pkc_state_from_type(type), security,
                         &cfg.security) < 0) {
        PyBuffer_Release(&topic);
        return NULL;
    }
    cfg.software_version = software_version;
    cfg.client_id = client_id;
    cfg.topic = topic.buf;
    cfg.topic_len = (size_t)topic.len;
    cfg.max_wait_ms = wait;
    cfg.min_bytes = min_bytes;
    cfg.max_bytes = max_bytes;
    cfg.partition_max_bytes = pmax;
    cfg.queued_max_messages = qmax;
    cfg.socket_timeout_ms = sock_to;
    cfg.backoff_ms = backoff;
    cfg.isolation_level = (int8_t)iso;
    cfg.check_crcs = check_crcs;
    cfg.source_host = source_host;
    cfg.source_port = source_port;
    cfg.max_version = (int16_t)max_version;
    cfg.max_frame = max_frame;
    cfg.max_decompressed = max_decompressed > 0 ? (size_t)max_decompressed
                                                : 0;
    if (iso < 0 || iso > 1 || max_version < PKC_VER_FETCH_MIN ||
        max_version > 32767) {
        PyBuffer_Release(&topic);
        PyErr_Format(PyExc_ValueError,
                     "isolation_level must be 0 or 1 and max_version "
                     ">= %d", (int)PKC_VER_FETCH_MIN);
        return NULL;
    }
    self = (FetcherObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        PyBuffer_Release(&topic);
        return NULL;
    }
    self->consumer_timeout_ms = ctimeout;
    rc = pkc_fl_new(&cfg, &self->fl);
    PyBuffer_Release(&topic);
    if (rc != PKC_OK) {
        Fetcher_check_status(self, rc, "Fetcher: bad configuration");
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static int
Fetcher_traverse(PyObject *op, visitproc visit, void *arg)
{
    FetcherObject *self = Fetcher_CAST(op);

    Py_VISIT(Py_TYPE(op));
    for (size_t i = 0; i < self->nparts; i++)
        Py_VISIT(self->part_objs[i]);
    Py_VISIT(self->on_events);
    Py_VISIT(self->deserializer);
    Py_VISIT(self->pending_error);
    return 0;
}

static int
Fetcher_clear(PyObject *op)
{
    FetcherObject *self = Fetcher_CAST(op);

    for (size_t i = 0; i < self->nparts; i++)
        Py_CLEAR(self->part_objs[i]);
    Py_CLEAR(self->on_events);
    Py_CLEAR(self->deserializer);
    Py_CLEAR(self->pending_error);
    return 0;
}

static void
Fetcher_dealloc(PyObject *op)
{
    FetcherObject *self = Fetcher_CAST(op);
    PyTypeObject *tp = Py_TYPE(op);

    PyObject_GC_UnTrack(op);
    if (self->fl != NULL) {
        pkc_fl *fl = self->fl;
        self->fl = NULL;
        self->running = 0;
        /* Joins the fetch thread: it never takes the GIL, so waiting for
         * it without the GIL cannot deadlock. */
        Py_BEGIN_ALLOW_THREADS
        pkc_fl_free(fl);
        Py_END_ALLOW_THREADS
    }
    Fetcher_clear(op);
    PyMem_Free(self->part_objs);
    PyMem_Free(self->part_ids);
    tp->tp_free(op);
    Py_DECREF(tp);
}

/* ------------------------------------------------------------- control */

PyDoc_STRVAR(Fetcher_add_partition_doc,
"add_partition($self, partition_id, partition=None, /)\n--\n\n"
"Add a partition to fetch (only while stopped).  `partition` is the\n"
"object put in each message's `partition` attribute.  It starts at\n"
"offset 0 (last consumed -1) and waits for set_leader().");

static PyObject *
Fetcher_add_partition(PyObject *op, PyObject *args)
{
    FetcherObject *self = Fetcher_CAST(op);
    PyObject *obj = Py_None;
    int pid;
    int rc;

    if (!PyArg_ParseTuple(args, "i|O:add_partition", &pid, &obj))
        return NULL;
    if (self->running) {
        PyErr_SetString(PyExc_RuntimeError,
                        "add_partition: the fetcher is running");
        return NULL;
    }
    if (self->nparts == self->parts_cap) {
        size_t cap = self->parts_cap ? self->parts_cap * 2 : 8;
        int32_t *ids = PyMem_Realloc(self->part_ids, cap * sizeof(*ids));
        PyObject **objs;
        if (ids == NULL)
            return PyErr_NoMemory();
        self->part_ids = ids;
        objs = PyMem_Realloc(self->part_objs, cap * sizeof(*objs));
        if (objs == NULL)
            return PyErr_NoMemory();
        self->part_objs = objs;
        self->parts_cap = cap;
    }
    rc = pkc_fl_add_partition(self->fl, pid);
    if (rc == PKC_ERR_INVALID) {
        PyErr_Format(PyExc_ValueError, "partition %d was already added",
                     pid);
        return NULL;
    }
    if (Fetcher_check_status(self, rc, "add_partition") < 0)
        return NULL;
    self->part_ids[self->nparts] = pid;
    self->part_objs[self->nparts] = Py_NewRef(obj);
    self->nparts++;
    Py_RETURN_NONE;
}

PyDoc_STRVAR(Fetcher_set_leader_doc,
"set_leader($self, partition_id, node_id, host=None, port=0,\n"
"           leader_epoch=-1, /)\n--\n\n"
"Fetch `partition_id` from broker `node_id` at host:port (node_id -1:\n"
"no leader for now).  A partition waiting for a leader resumes.");

static PyObject *
Fetcher_set_leader(PyObject *op, PyObject *args)
{
    FetcherObject *self = Fetcher_CAST(op);
    const char *host = NULL;
    int pid, node, port = 0, epoch = -1, rc;

    if (!PyArg_ParseTuple(args, "ii|zii:set_leader", &pid, &node, &host,
                          &port, &epoch))
        return NULL;
    if (node >= 0 && host == NULL) {
        PyErr_SetString(PyExc_ValueError, "set_leader: a host is needed");
        return NULL;
    }
    rc = pkc_fl_set_leader(self->fl, pid, node, host, port, epoch);
    if (Fetcher_check_status(self, rc, "set_leader (unknown partition, or "
                             "a bad host or port)") < 0)
        return NULL;
    Py_RETURN_NONE;
}

PyDoc_STRVAR(Fetcher_seek_doc,
"seek($self, partition_id, next_offset, /)\n--\n\n"
"Drop the partition's queued records and fetch from `next_offset` on\n"
"(its last consumed offset becomes next_offset - 1).  A negative\n"
"next_offset is reported as OFFSET_OUT_OF_RANGE by the next fetch.");

static PyObject *
Fetcher_seek(PyObject *op, PyObject *args)
{
    FetcherObject *self = Fetcher_CAST(op);
    long long off;
    int pid;

    if (!PyArg_ParseTuple(args, "iL:seek", &pid, &off))
        return NULL;
    if (Fetcher_check_status(self, pkc_fl_seek(self->fl, pid, off),
                             "seek: unknown partition") < 0)
        return NULL;
    Py_RETURN_NONE;
}

PyDoc_STRVAR(Fetcher_resume_doc,
"resume($self, partition_id, delay_ms=0, /)\n--\n\n"
"Resume a partition paused by an error (keeping its position and\n"
"queue) after `delay_ms`.");

static PyObject *
Fetcher_resume(PyObject *op, PyObject *args)
{
    FetcherObject *self = Fetcher_CAST(op);
    int pid, delay = 0;

    if (!PyArg_ParseTuple(args, "i|i:resume", &pid, &delay))
        return NULL;
    if (Fetcher_check_status(self, pkc_fl_resume(self->fl, pid, delay),
                             "resume: unknown partition") < 0)
        return NULL;
    Py_RETURN_NONE;
}

PyDoc_STRVAR(Fetcher_start_doc,
"start($self, /)\n--\n\n"
"Start the fetch thread (nothing when it runs).");

/* start() and stop() may run at once in several threads, each calling the
 * engine without the GIL, so `running` is not a shortcut: each call asks
 * the engine (which serializes them) and, back under the GIL, copies the
 * engine's state.  A start that returned while another thread's stop
 * was joining leaves `running` true only until that stop returns. */
static PyObject *
Fetcher_start(PyObject *op, PyObject *Py_UNUSED(arg))
{
    FetcherObject *self = Fetcher_CAST(op);
    int rc;

    Py_BEGIN_ALLOW_THREADS
    rc = pkc_fl_start(self->fl);
    Py_END_ALLOW_THREADS
    if (rc == PKC_ERR_NOMEM)
        return PyErr_NoMemory();
    if (rc != PKC_OK)
        return PyErr_Format(PyExc_RuntimeError,
                            "cannot start the fetch thread: %s",
                            pkc_status_str(rc));
    self->running = pkc_fl_running(self->fl);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(Fetcher_stop_doc,
"stop($self, /)\n--\n\n"
"Stop the fetch thread and wait for it, close its connections, drop\n"
"queued records (each partition goes back to its last consumed offset\n"
"+ 1) and pending events.  Blocked consume() calls raise\n"
"ConsumerStoppedException.");

static PyObject *
Fetcher_stop(PyObject *op, PyObject *Py_UNUSED(arg))
{
    FetcherObject *self = Fetcher_CAST(op);
    pkc_fl *fl = self->fl;

    self->running = 0; /* consume() stops waiting at once */
    Py_BEGIN_ALLOW_THREADS
    pkc_fl_stop(fl);
    Py_END_ALLOW_THREADS
    self->running = pkc_fl_running(fl); /* a start may have followed */
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------- events */

/* New reference: the exception instance of an event. */
static PyObject *
Fetcher_event_exc(pkc_state *st, const pkc_fl_event *ev)
{
    PyObject *cls = NULL;

    switch (ev->kind) {
    case PKC_FL_EV_KAFKA:
    case PKC_FL_EV_NO_LEADER:
        if (st->error_for_code != NULL)
            return PyObject_CallFunction(st->error_for_code, "is",
                                         (int)ev->code, ev->msg);
        cls = st->KafkaException;
        break;
    case PKC_FL_EV_CONN:
        cls = st->SocketDisconnectedError;
        break;
    case PKC_FL_EV_SETUP:
        if (ev->code == PKC_ERR_AUTH && st->error_for_code != NULL)
            return PyObject_CallFunction(
                st->error_for_code, "is",
                ev->kafka_error ? (int)ev->kafka_error
                                : (int)PKC_KERR_SASL_AUTHENTICATION_FAILED,
                ev->msg);
        cls = ev->code == PKC_ERR_TLS ? st->SslError
                                      : st->UnsupportedApiVersionError;
        break;
    case PKC_FL_EV_DECODE:
        switch (ev->code) {
        case PKC_ERR_CRC:
            cls = st->CorruptRecordError;
            break;
        case PKC_ERR_CODEC:
            cls = st->CodecUnavailableError;
            break;
        case PKC_ERR_COMPRESSION:
        case PKC_ERR_TOO_LARGE:
            cls = st->CompressionError;
            break;
        case PKC_ERR_NOMEM:
            cls = PyExc_MemoryError;
            break;
        default:
            cls = st->ProtocolDecodeError;
        }
        break;
    default:
        cls = st->KafkaException;
    }
    if (cls == NULL)
        cls = PyExc_RuntimeError;
    return PyObject_CallFunction(cls, "s", ev->msg);
}

PyDoc_STRVAR(Fetcher_take_events_doc,
"take_events($self, /)\n--\n\n"
"Take the pending events: a list of (partition_id, kind, code, offset,\n"
"node_id, exception) tuples, oldest first.  kind is one of\n"
"FETCH_EV_KAFKA (code: Kafka error code), FETCH_EV_DECODE,\n"
"FETCH_EV_CONN, FETCH_EV_NO_LEADER, FETCH_EV_SETUP (the leader's\n"
"connection was refused for good: TLS, SASL, no usable Fetch version;\n"
"the partition is paused); exception is the exception to raise\n"
"for it.  The partition stays paused (or waiting for a leader) until\n"
"seek(), set_leader() or resume().");

static PyObject *
Fetcher_take_events(PyObject *op, PyObject *Py_UNUSED(arg))
{
    FetcherObject *self = Fetcher_CAST(op);
    pkc_state *st = Fetcher_state(self);
    pkc_fl_event *evs = NULL;
    PyObject *list = NULL;
    size_t max = self->nparts ? self->nparts : 1, n;

    evs = PyMem_Malloc(max * sizeof(*evs));
    if (evs == NULL)
        return PyErr_NoMemory();
    n = pkc_fl_take_events(self->fl, evs, max);
    list = PyList_New((Py_ssize_t)n);
    if (list == NULL)
        goto error;
    for (size_t i = 0; i < n; i++) {
        PyObject *exc = Fetcher_event_exc(st, &evs[i]);
        PyObject *t;
        if (exc == NULL)
            goto error;
        t = Py_BuildValue("(iiiLiN)", (int)evs[i].partition,
                          (int)evs[i].kind, (int)evs[i].code,
                          (long long)evs[i].offset, (int)evs[i].node_id,
                          exc);
        if (t == NULL)
            goto error;
        PyList_SET_ITEM(list, (Py_ssize_t)i, t);
    }
    PyMem_Free(evs);
    return list;
error:
    PyMem_Free(evs);
    Py_XDECREF(list);
    return NULL;
}

PyDoc_STRVAR(Fetcher_post_event_doc,
"post_event($self, partition_id, kind, code, offset=-1, node_id=-1,\n"
"           message='', /)\n--\n\n"
"Put back an event that could not be handled (it is taken again by the\n"
"next consume()); the partition pauses.");

static PyObject *
Fetcher_post_event(PyObject *op, PyObject *args)
{
    FetcherObject *self = Fetcher_CAST(op);
    pkc_fl_event ev;
    const char *msg = "";
    long long off = -1;
    int pid, kind, code, node = -1;

    if (!PyArg_ParseTuple(args, "iii|Lis:post_event", &pid, &kind, &code,
                          &off, &node, &msg))
        return NULL;
    memset(&ev, 0, sizeof(ev));
    ev.partition = pid;
    ev.kind = kind;
    ev.code = code;
    ev.offset = off;
    ev.node_id = node;
    snprintf(ev.msg, sizeof(ev.msg), "%s", msg);
    if (Fetcher_check_status(self, pkc_fl_post_event(self->fl, &ev),
                             "post_event: unknown partition") < 0)
        return NULL;
    Py_RETURN_NONE;
}

PyDoc_STRVAR(Fetcher_set_error_doc,
"set_error($self, exc, /)\n--\n\n"
"Make the next consume() raise `exc` (errors of worker threads such as\n"
"the auto-committer).  None clears it.");

static PyObject *
Fetcher_set_error(PyObject *op, PyObject *exc)
{
    FetcherObject *self = Fetcher_CAST(op);

    if (exc == Py_None)
        Py_CLEAR(self->pending_error);
    else
        Py_XSETREF(self->pending_error, Py_NewRef(exc));
    pkc_fl_interrupt(self->fl);
    Py_RETURN_NONE;
}

/* Raise the first pending event (no on_events handler). */
static int
Fetcher_raise_event(FetcherObject *self)
{
    pkc_state *st = Fetcher_state(self);
    pkc_fl_event ev;
    PyObject *exc;

    if (pkc_fl_take_events(self->fl, &ev, 1) == 0)
        return 0;
    exc = Fetcher_event_exc(st, &ev);
    if (exc == NULL)
        return -1;
    PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
    Py_DECREF(exc);
    return -1;
}

static int
Fetcher_handle_events(FetcherObject *self)
{
    PyObject *r;

    if (self->on_events == NULL)
        return Fetcher_raise_event(self);
    r = PyObject_CallNoArgs(self->on_events);
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    return 0;
}

/* ------------------------------------------------------------ consuming */

/* New reference: the Message of a popped record, deserialized. */
static PyObject *
Fetcher_make_message(FetcherObject *self, pkc_state *st,
                     const pkc_record *rec, int32_t pid)
{
    PyObject *m = pkc_message_from_record(st, rec, pid);
    pkc_message *msg;

    if (m == NULL)
        return NULL;
    msg = pkc_message_CAST(m);
    pkc_message_store(msg, &msg->partition, Fetcher_part_obj(self, pid));
    if (self->deserializer != NULL) {
        PyObject *r = PyObject_CallFunctionObjArgs(
            self->deserializer, msg->value, msg->partition_key, NULL);
        PyObject *v, *k;
        if (r == NULL)
            goto error;
        if (!PyTuple_Check(r) || PyTuple_GET_SIZE(r) != 2) {
            PyObject *seq = PySequence_Tuple(r);
            Py_DECREF(r);
            if (seq == NULL)
                goto error;
            r = seq;
            if (PyTuple_GET_SIZE(r) != 2) {
                Py_DECREF(r);
                PyErr_SetString(PyExc_ValueError,
                                "the deserializer must return a (value, "
                                "partition_key) pair");
                goto error;
            }
        }
        v = PyTuple_GET_ITEM(r, 0);
        k = PyTuple_GET_ITEM(r, 1);
        pkc_message_store(msg, &msg->value, v);
        pkc_message_store(msg, &msg->partition_key, k);
        Py_DECREF(r);
    }
    return m;
error:
    Py_DECREF(m);
    return NULL;
}

static int
Fetcher_check_running(FetcherObject *self, pkc_state *st)
{
    if (self->pending_error != NULL) {
        PyObject *exc = self->pending_error;
        self->pending_error = NULL;
        if (PyExceptionInstance_Check(exc))
            PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
        else
            PyErr_SetObject(exc, NULL);
        Py_DECREF(exc);
        return -1;
    }
    if (!self->running) {
        PyErr_SetString(st->ConsumerStoppedException
                            ? st->ConsumerStoppedException
                            : PyExc_RuntimeError,
                        "The consumer is stopped");
        return -1;
    }
    return 0;
}

/*
 * Wait for records.  `deadline` is an absolute pkc_now_ms() time or -1 for
 * none.  Returns 1 when records or events may be there, 0 when the
 * deadline passed or unblock_event is set, -1 with an exception.
 */
static int
Fetcher_wait(FetcherObject *self, int64_t deadline, PyObject *unblock_event)
{
    int64_t slice = FETCHER_SLICE_MS;
    pkc_fl *fl = self->fl;
    int w;

    if (deadline >= 0) {
        int64_t left = deadline - pkc_now_ms();
        if (left <= 0)
            return 0;
        if (left < slice)
            slice = left;
    }
    Py_BEGIN_ALLOW_THREADS
    w = pkc_fl_wait(fl, slice);
    Py_END_ALLOW_THREADS
    if (PyErr_CheckSignals() < 0)
        return -1;
    if (w != 0)
        return 1; /* records, events, or stopped (checked by the caller) */
    if (unblock_event != NULL && unblock_event != Py_None) {
        PyObject *r = PyObject_CallMethod(unblock_event, "is_set", NULL);
        int set;
        if (r == NULL)
            return -1;
        set = PyObject_IsTrue(r);
        Py_DECREF(r);
        if (set < 0)
            return -1;
        if (set)
            return 0;
    }
    if (deadline >= 0 && pkc_now_ms() >= deadline)
        return 0;
    return 1;
}

/*
 * The next message, or None (nothing within the time allowed).  `timeout_ms`
 * < 0 means pykafka's rule: consumer_timeout_ms > 0 bounds the wait, -1
 * or 0 waits forever.
 */
static PyObject *
Fetcher_next_message(FetcherObject *self, int block, PyObject *unblock_event)
{
    pkc_state *st = Fetcher_state(self);
    int64_t deadline = -1;

    for (;;) {
        pkc_record rec;
        pkc_answer_buf *buf;
        int32_t pid;

        if (Fetcher_check_running(self, st) < 0)
            return NULL;
        if (pkc_fl_events_pending(self->fl) &&
            Fetcher_handle_events(self) < 0)
            return NULL;
        if (pkc_fl_pop(self->fl, &rec, &pid, &buf)) {
            PyObject *m = Fetcher_make_message(self, st, &rec, pid);
            pkc_answer_buf_release(buf);
            return m;
        }
        if (!block)
            Py_RETURN_NONE;
        if (deadline < 0 && self->consumer_timeout_ms > 0)
            deadline = pkc_now_ms() + self->consumer_timeout_ms;
        switch (Fetcher_wait(self, deadline, unblock_event)) {
        case -1:
            return NULL;
        case 0:
            if (!self->running)
                continue; /* raises ConsumerStoppedException */
            Py_RETURN_NONE;
        default:
            break;
        }
    }
}

PyDoc_STRVAR(Fetcher_consume_doc,
"consume($self, /, block=True, unblock_event=None)\n--\n\n"
"The next message, serving partitions in round robin.  With block=False\n"
"None at once when nothing is queued.  With block=True: when\n"
"consumer_timeout_ms > 0, None after waiting that long; otherwise wait\n"
"until a message comes or `unblock_event` (a threading.Event) is set\n"
"(noticed within 100 ms; then None).  Raises ConsumerStoppedException\n"
"when stopped.");

static PyObject *
Fetcher_consume(PyObject *op, PyObject *const *args, Py_ssize_t nargs,
                PyObject *kwnames)
{
    FetcherObject *self = Fetcher_CAST(op);
    PyObject *block_o = NULL, *unblock = Py_None;
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    int block = 1;

    if (nargs > 2) {
        PyErr_SetString(PyExc_TypeError,
                        "consume() takes at most 2 arguments");
        return NULL;
    }
    if (nargs >= 1)
        block_o = args[0];
    if (nargs >= 2)
        unblock = args[1];
    for (Py_ssize_t i = 0; i < nkw; i++) {
        PyObject *name = PyTuple_GET_ITEM(kwnames, i);
        PyObject *val = args[nargs + i];
        if (PyUnicode_CompareWithASCIIString(name, "block") == 0 &&
            nargs < 1)
            block_o = val;
        else if (PyUnicode_CompareWithASCIIString(name, "unblock_event") ==
                     0 && nargs < 2)
            unblock = val;
        else {
            PyErr_Format(PyExc_TypeError,
                         "consume() got an unexpected keyword argument %R",
                         name);
            return NULL;
        }
    }
    if (block_o != NULL) {
        block = PyObject_IsTrue(block_o);
        if (block < 0)
            return NULL;
    }
    return Fetcher_next_message(self, block, unblock);
}

static PyObject *
Fetcher_iternext(PyObject *op)
{
    PyObject *m = Fetcher_next_message(Fetcher_CAST(op), 1, NULL);

    if (m == Py_None) {
        Py_DECREF(m);
        return NULL; /* StopIteration */
    }
    return m;
}

PyDoc_STRVAR(Fetcher_consume_batch_doc,
"consume_batch($self, /, max_messages=1000, timeout_ms=0)\n--\n\n"
"Up to `max_messages` messages in a list, taken under one lock.  Waits\n"
"up to `timeout_ms` for the first one (0: do not wait; < 0: wait as\n"
"consume() does), then returns what is queued; [] on timeout.");

static PyObject *
Fetcher_consume_batch(PyObject *op, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"max_messages", "timeout_ms", NULL};
    FetcherObject *self = Fetcher_CAST(op);
    pkc_state *st = Fetcher_state(self);
    Py_ssize_t max = FETCHER_BATCH_DEFAULT;
    long long timeout = 0;
    int64_t deadline;
    pkc_fl_popped *pop = NULL;
    PyObject *list = NULL;
    size_t n = 0, i;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|nL:consume_batch",
                                     kwlist, &max, &timeout))
        return NULL;
    if (max <= 0) {
        PyErr_SetString(PyExc_ValueError, "max_messages must be positive");
        return NULL;
    }
    if (timeout < 0)
        deadline = self->consumer_timeout_ms > 0
                       ? pkc_now_ms() + self->consumer_timeout_ms
                       : -1;
    else
        deadline = pkc_now_ms() + timeout;
    pop = PyMem_Malloc((size_t)max * sizeof(*pop));
    if (pop == NULL)
        return PyErr_NoMemory();
    for (;;) {
        int w;
        if (Fetcher_check_running(self, st) < 0)
            goto error;
        if (pkc_fl_events_pending(self->fl) &&
            Fetcher_handle_events(self) < 0)
            goto error;
        n = pkc_fl_pop_many(self->fl, pop, (size_t)max);
        if (n > 0 || timeout == 0)
            break;
        w = Fetcher_wait(self, deadline, NULL);
        if (w < 0)
            goto error;
        if (w == 0 && self->running)
            break;
    }
    list = PyList_New((Py_ssize_t)n);
    if (list != NULL) {
        for (i = 0; i < n; i++) {
            PyObject *m = Fetcher_make_message(self, st, &pop[i].rec,
                                               pop[i].partition);
            if (m == NULL) {
                Py_CLEAR(list);
                break;
            }
            PyList_SET_ITEM(list, (Py_ssize_t)i, m);
        }
    }
    /* Every record's bytes are copied: drop the buffer references (one
     * per run of records from the same answer). */
    for (size_t j = 0; j < n; j++)
        pkc_answer_buf_release(pop[j].buf);
    PyMem_Free(pop);
    return list;
error:
    PyMem_Free(pop);
    return NULL;
}

PyDoc_STRVAR(Fetcher_consume_partition_doc,
"consume_partition($self, partition_id, /)\n--\n\n"
"The next queued message of one partition, or None (never waits).");

static PyObject *
Fetcher_consume_partition(PyObject *op, PyObject *arg)
{
    FetcherObject *self = Fetcher_CAST(op);
    pkc_state *st = Fetcher_state(self);
    pkc_record rec;
    pkc_answer_buf *buf;
    PyObject *m;
    int pid;

    if (Fetcher_pid_arg(arg, &pid) < 0)
        return NULL;
    if (!pkc_fl_pop_partition(self->fl, pid, &rec, &buf))
        Py_RETURN_NONE;
    m = Fetcher_make_message(self, st, &rec, pid);
    pkc_answer_buf_release(buf);
    return m;
}

/* ---------------------------------------------------------- inspection */

static PyObject *
Fetcher_info_dict(const pkc_fl_partinfo *pi)
{
    static const char *states[] = {"active", "wait_leader", "paused"};

    return Py_BuildValue(
        "{s:i,s:s,s:i,s:i,s:L,s:L,s:L,s:L,s:L,s:n,s:O}",
        "partition", (int)pi->partition,
        "state", (pi->state >= 0 && pi->state <= 2) ? states[pi->state]
                                                    : "?",
        "leader", (int)pi->leader, "leader_epoch", (int)pi->leader_epoch,
        "fetch_offset", (long long)pi->fetch_offset,
        "last_consumed", (long long)pi->last_consumed,
        "high_watermark", (long long)pi->high_watermark,
        "last_stable_offset", (long long)pi->last_stable_offset,
        "log_start_offset", (long long)pi->log_start_offset,
        "queued", (Py_ssize_t)pi->queued,
        "event_pending", pi->event_pending ? Py_True : Py_False);
}

PyDoc_STRVAR(Fetcher_partition_info_doc,
"partition_info($self, partition_id, /)\n--\n\n"
"A dict describing one partition: state, leader, fetch_offset,\n"
"last_consumed, high_watermark, queued, ...");

static PyObject *
Fetcher_partition_info(PyObject *op, PyObject *arg)
{
    FetcherObject *self = Fetcher_CAST(op);
    pkc_fl_partinfo pi;
    int pid;

    if (Fetcher_pid_arg(arg, &pid) < 0)
        return NULL;
    if (pkc_fl_partition_info(self->fl, pid, &pi) != PKC_OK) {
        PyErr_Format(PyExc_KeyError, "unknown partition %d", pid);
        return NULL;
    }
    return Fetcher_info_dict(&pi);
}

PyDoc_STRVAR(Fetcher_position_doc,
"position($self, partition_id, /)\n--\n\n"
"(last_consumed, fetch_offset, queued) of one partition.");

static PyObject *
Fetcher_position(PyObject *op, PyObject *arg)
{
    FetcherObject *self = Fetcher_CAST(op);
    pkc_fl_partinfo pi;
    int pid;

    if (Fetcher_pid_arg(arg, &pid) < 0)
        return NULL;
    if (pkc_fl_partition_info(self->fl, pid, &pi) != PKC_OK) {
        PyErr_Format(PyExc_KeyError, "unknown partition %d", pid);
        return NULL;
    }
    return Py_BuildValue("(LLn)", (long long)pi.last_consumed,
                         (long long)pi.fetch_offset, (Py_ssize_t)pi.queued);
}

PyDoc_STRVAR(Fetcher_positions_doc,
"positions($self, /)\n--\n\n"
"{partition_id: (last_consumed, fetch_offset, queued)} of every\n"
"partition.");

static PyObject *
Fetcher_positions(PyObject *op, PyObject *Py_UNUSED(arg))
{
    FetcherObject *self = Fetcher_CAST(op);
    PyObject *d = PyDict_New();
    size_t n = pkc_fl_partition_count(self->fl);

    if (d == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        pkc_fl_partinfo pi;
        PyObject *k, *v;
        int rc;
        if (pkc_fl_partition_info_at(self->fl, i, &pi) != PKC_OK)
            continue;
        k = PyLong_FromLong(pi.partition);
        v = Py_BuildValue("(LLn)", (long long)pi.last_consumed,
                          (long long)pi.fetch_offset,
                          (Py_ssize_t)pi.queued);
        rc = (k && v) ? PyDict_SetItem(d, k, v) : -1;
        Py_XDECREF(k);
        Py_XDECREF(v);
        if (rc < 0) {
            Py_DECREF(d);
            return NULL;
        }
    }
    return d;
}

PyDoc_STRVAR(Fetcher_stats_doc,
"stats($self, /)\n--\n\n"
"Counters of the fetch thread (fetches_sent, responses, records_queued,\n"
"bytes_received, connects, authentications, conn_failures, events_posted,\n"
"wakeups).");

static PyObject *
Fetcher_stats(PyObject *op, PyObject *Py_UNUSED(arg))
{
    FetcherObject *self = Fetcher_CAST(op);
    pkc_fl_stats s;

    pkc_fl_get_stats(self->fl, &s);
    return Py_BuildValue(
        "{s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K}",
        "fetches_sent", (unsigned long long)s.fetches_sent,
        "responses", (unsigned long long)s.responses,
        "records_queued", (unsigned long long)s.records_queued,
        "bytes_received", (unsigned long long)s.bytes_received,
        "connects", (unsigned long long)s.connects,
        "authentications", (unsigned long long)s.authentications,
        "conn_failures", (unsigned long long)s.conn_failures,
        "events_posted", (unsigned long long)s.events_posted,
        "wakeups", (unsigned long long)s.wakeups);
}

/* ----------------------------------------------------------- attributes */

static PyObject *
Fetcher_get_running(PyObject *op, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(pkc_fl_running(Fetcher_CAST(op)->fl));
}

static PyObject *
Fetcher_get_timeout(PyObject *op, void *Py_UNUSED(closure))
{
    return PyLong_FromLongLong(Fetcher_CAST(op)->consumer_timeout_ms);
}

static int
Fetcher_set_timeout(PyObject *op, PyObject *v, void *Py_UNUSED(closure))
{
    long long t;

    if (v == NULL) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete");
        return -1;
    }
    t = PyLong_AsLongLong(v);
    if (t == -1 && PyErr_Occurred())
        return -1;
    Fetcher_CAST(op)->consumer_timeout_ms = t;
    return 0;
}

static PyObject *
Fetcher_get_callable(PyObject *op, void *closure)
{
    FetcherObject *self = Fetcher_CAST(op);
    PyObject *v = closure ? self->deserializer : self->on_events;

    return Py_NewRef(v ? v : Py_None);
}

static int
Fetcher_set_callable(PyObject *op, PyObject *v, void *closure)
{
    FetcherObject *self = Fetcher_CAST(op);
    PyObject **slot = closure ? &self->deserializer : &self->on_events;

    if (v == NULL || v == Py_None) {
        Py_CLEAR(*slot);
        return 0;
    }
    if (!PyCallable_Check(v)) {
        PyErr_SetString(PyExc_TypeError, "a callable or None is needed");
        return -1;
    }
    Py_XSETREF(*slot, Py_NewRef(v));
    return 0;
}

static PyGetSetDef Fetcher_getset[] = {
    {"running", Fetcher_get_running, NULL,
     "Whether the fetch thread runs (start() to stop()).", NULL},
    {"consumer_timeout_ms", Fetcher_get_timeout, Fetcher_set_timeout,
     "pykafka's consumer_timeout_ms: > 0 bounds a blocking consume().",
     NULL},
    {"on_events", Fetcher_get_callable, Fetcher_set_callable,
     "Called with no arguments when events are pending (or None).", NULL},
    {"deserializer", Fetcher_get_callable, Fetcher_set_callable,
     "f(value, partition_key) -> (value, partition_key), or None.",
     (void *)1},
    {NULL}
};

static PyMethodDef Fetcher_methods[] = {
    {"add_partition", Fetcher_add_partition, METH_VARARGS,
     Fetcher_add_partition_doc},
    {"set_leader", Fetcher_set_leader, METH_VARARGS, Fetcher_set_leader_doc},
    {"seek", Fetcher_seek, METH_VARARGS, Fetcher_seek_doc},
    {"resume", Fetcher_resume, METH_VARARGS, Fetcher_resume_doc},
    {"start", Fetcher_start, METH_NOARGS, Fetcher_start_doc},
    {"stop", Fetcher_stop, METH_NOARGS, Fetcher_stop_doc},
    {"consume", PKC_CFUNC(Fetcher_consume), METH_FASTCALL | METH_KEYWORDS,
     Fetcher_consume_doc},
    {"consume_batch", PKC_CFUNC(Fetcher_consume_batch),
     METH_VARARGS | METH_KEYWORDS, Fetcher_consume_batch_doc},
    {"consume_partition", Fetcher_consume_partition, METH_O,
     Fetcher_consume_partition_doc},
    {"take_events", Fetcher_take_events, METH_NOARGS,
     Fetcher_take_events_doc},
    {"post_event", Fetcher_post_event, METH_VARARGS, Fetcher_post_event_doc},
    {"set_error", Fetcher_set_error, METH_O, Fetcher_set_error_doc},
    {"partition_info", Fetcher_partition_info, METH_O,
     Fetcher_partition_info_doc},
    {"position", Fetcher_position, METH_O, Fetcher_position_doc},
    {"positions", Fetcher_positions, METH_NOARGS, Fetcher_positions_doc},
    {"stats", Fetcher_stats, METH_NOARGS, Fetcher_stats_doc},
    {NULL}
};

PyDoc_STRVAR(Fetcher_doc,
"Fetcher(topic, *, client_id='pykafka_c', fetch_wait_max_ms=100,\n"
"        fetch_min_bytes=1, fetch_max_bytes=52428800,\n"
"        partition_max_bytes=1048576, queued_max_messages=2000,\n"
"        socket_timeout_ms=30000, backoff_ms=500, isolation_level=0,\n"
"        check_crcs=True, consumer_timeout_ms=-1, source_host='',\n"
"        source_port=0, max_version=12, max_frame=0,\n"
"        max_decompressed=0, security=None, software_version=None)\n"
"--\n\n"
"The C fetch loop of one topic (bytes name): a background thread that\n"
"fetches the added partitions from their leaders and queues decoded\n"
"records, and the consume side that turns them into Message objects.\n"
"Iterating yields messages until consume() would return None.\n"
"max_frame caps one response (0: 100 MiB), max_decompressed one\n"
"compressed batch (0: 64 MiB).");

static PyType_Slot Fetcher_slots[] = {
    {Py_tp_new, Fetcher_new},
    {Py_tp_dealloc, Fetcher_dealloc},
    {Py_tp_traverse, Fetcher_traverse},
    {Py_tp_clear, Fetcher_clear},
    {Py_tp_iter, PyObject_SelfIter},
    {Py_tp_iternext, Fetcher_iternext},
    {Py_tp_methods, Fetcher_methods},
    {Py_tp_getset, Fetcher_getset},
    {Py_tp_doc, (void *)Fetcher_doc},
    {0, NULL}
};

static PyType_Spec Fetcher_spec = {
    .name = "pykafka_c._core.Fetcher",
    .basicsize = sizeof(FetcherObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE |
             Py_TPFLAGS_HAVE_GC,
    .slots = Fetcher_slots,
};

int
pkc_fetcher_exec(PyObject *module, pkc_state *st)
{
    PyObject *tp = PyType_FromModuleAndSpec(module, &Fetcher_spec, NULL);

    if (tp == NULL)
        return -1;
    st->FetcherType = (PyTypeObject *)tp; /* state owns this reference */
    if (PyModule_AddType(module, st->FetcherType) < 0)
        return -1;
    if (PyModule_AddIntConstant(module, "FETCH_EV_KAFKA",
                                PKC_FL_EV_KAFKA) < 0 ||
        PyModule_AddIntConstant(module, "FETCH_EV_DECODE",
                                PKC_FL_EV_DECODE) < 0 ||
        PyModule_AddIntConstant(module, "FETCH_EV_CONN", PKC_FL_EV_CONN) < 0 ||
        PyModule_AddIntConstant(module, "FETCH_EV_SETUP", PKC_FL_EV_SETUP) < 0 ||
        PyModule_AddIntConstant(module, "FETCH_EV_NO_LEADER",
                                PKC_FL_EV_NO_LEADER) < 0)
        return -1;
    return 0;
}
