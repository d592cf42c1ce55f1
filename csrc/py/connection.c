/*
 * connection.c - _core.Connection, the Python face of a broker link
 * (link.h) and its pkc_conn (net.h).
 *
 * The constructor sets the connection up with the link, blocking without
 * the GIL: TCP, TLS and, with negotiate=True or SASL, ApiVersions and
 * authentication; a re-authentication that falls due (KIP-368) runs
 * before the next request.
 *
 * Every blocking call runs without the GIL, under the object's own lock
 * (a PyThread lock taken without the GIL), in a loop modelled on CPython's
 * sock_call_ex: a signal that interrupts poll/recv/send makes the C call
 * return PKC_ERR_INTR with its progress kept; the loop re-takes the GIL,
 * runs the signal handlers (PyErr_CheckSignals) and either resumes the
 * call with the remaining time (deadlines are on the monotonic clock) or
 * returns the handler's exception, so Ctrl-C interrupts any blocking call.
 *
 * Ownership of conn.fd: it is only changed (connect, close) while holding
 * the GIL and the lock, so close() may read it with the GIL alone and
 * shut the socket down to wake a thread blocked on it.
 *
 * The type is final and holds no references that can form cycles (only
 * the host str), so it does not take part in GC.
 *
 * Errors: socket errors, timeouts and EOF raise SocketDisconnectedError;
 * TLS failures SslError; SASL failures the broker's error code class
 * (SaslAuthenticationFailed, UnsupportedSaslMechanism, IllegalSaslState);
 * bad frame lengths, malformed response headers and CorrelationId
 * mismatches raise ProtocolDecodeError; all close the connection.
 */
#include "module.h"

#include "kafka_errors.h"
#include "link.h"
#include "net.h"

#include <sys/socket.h>

typedef struct {
    PyObject_HEAD
    pkc_link link;     /* set up by the constructor; link.conn does I/O */
    PyThread_type_lock lock;
    PyObject *host;  /* str, as given */
    int port;
    int64_t timeout_ms; /* -1: no timeout */
    /* Copies of the conn's state, written only with the GIL held after
     * each call, so properties never race with a call in progress. */
    int is_open;
    Py_ssize_t in_flight;
    size_t rbuf_peak;
    int closing;        /* close() was called (maybe from another thread) */
    int link_inited;    /* pkc_link_init ran (dealloc frees it) */
} ConnectionObject;

#define Connection_CAST(op) ((ConnectionObject *)(op))

/* Bodies larger than this are copied into bytes without the GIL. */
#define CONN_COPY_NOGIL 65536

static pkc_state *
Connection_state(ConnectionObject *self)
{
    return (pkc_state *)PyType_GetModuleState(Py_TYPE(self));
}

static void
Connection_sync(ConnectionObject *self)
{
    self->is_open = pkc_conn_is_open(&self->link.conn);
    self->in_flight = (Py_ssize_t)pkc_conn_in_flight(&self->link.conn);
    self->rbuf_peak = self->link.conn.rcap_peak;
}

/* A timeout argument: `missing` if not given (obj NULL), `none` for None,
 * else an int >= 0 (milliseconds).  Returns 0, or -1 with an exception. */
static int
Connection_parse_timeout(PyObject *obj, int64_t missing, int64_t none,
                         int64_t *out)
{
    long long v;

    if (obj == NULL || obj == Py_None) {
        *out = obj == NULL ? missing : none;
        return 0;
    }
    v = PyLong_AsLongLong(obj);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (v < 0) {
        PyErr_SetString(PyExc_ValueError, "timeout_ms must be >= 0 or None");
        return -1;
    }
    *out = (int64_t)v;
    return 0;
}

/*
 * Take the connection lock without holding the GIL while waiting; signals
 * are checked while waiting.  Returns 0, or -1 with an exception set.
 */
static int
Connection_lock(ConnectionObject *self)
{
    PyLockStatus r;

    if (PyThread_acquire_lock(self->lock, NOWAIT_LOCK))
        return 0;
    for (;;) {
        Py_BEGIN_ALLOW_THREADS
        r = PyThread_acquire_lock_timed(self->lock, -1, 1);
        Py_END_ALLOW_THREADS
        if (r == PY_LOCK_ACQUIRED)
            return 0;
        if (r == PY_LOCK_INTR) {
            if (PyErr_CheckSignals() < 0)
                return -1;
            continue;
        }
        PyErr_SetString(PyExc_RuntimeError,
                        "cannot acquire the connection lock");
        return -1;
    }
}

static void
Connection_unlock(ConnectionObject *self)
{
    Connection_sync(self);
    PyThread_release_lock(self->lock);
}

/*
 * Raise the exception for a failed pkc_conn call and close the connection
 * (called with the GIL and the lock held).  Always returns NULL.
 */
static PyObject *
Connection_fail(ConnectionObject *self, int rc)
{
    pkc_state *st = Connection_state(self);
    char msg[sizeof(self->link.error) + 64];
    /* The link's sentence when it recorded the failure (with its hints),
     * else the connection's. */
    const char *why = self->link.state == PKC_LINK_DOWN &&
                              self->link.status != PKC_OK
                          ? pkc_link_error(&self->link)
                          : self->link.conn.errstr;
    PyObject *cls;

    if (self->closing)
        snprintf(msg, sizeof(msg), "%s (the connection was closed by "
                 "close())", why);
    else
        snprintf(msg, sizeof(msg), "%s", why);
    pkc_link_close(&self->link);
    switch (rc) {
    case PKC_ERR_IO:
    case PKC_ERR_TIMEOUT:
    case PKC_ERR_CLOSED:
        cls = st->SocketDisconnectedError;
        break;
    case PKC_ERR_TLS:
        cls = st->SslError;
        break;
    case PKC_ERR_NOMEM:
        return PyErr_NoMemory();
    default:
        cls = st->ProtocolDecodeError;
        break;
    }
    return pkc_raise(cls, "%s", msg);
}

/* SocketDisconnectedError for a call on a closed connection. */
static PyObject *
Connection_closed_error(ConnectionObject *self)
{
    pkc_state *st = Connection_state(self);

    return pkc_raise(st->SocketDisconnectedError, "%U:%d: connection is "
                     "closed", self->host, self->port);
}

/* ------------------------------------------------------------ lifecycle */

/*
 * Raise the exception for a link that failed to set up (GIL held).
 * Always returns NULL.
 */
static PyObject *
Connection_setup_error(pkc_state *st, const pkc_link *link)
{
    const char *why = pkc_link_error(link);

    switch (pkc_link_status(link)) {
    case PKC_ERR_NOMEM:
        return PyErr_NoMemory();
    case PKC_ERR_TLS:
        return pkc_raise(st->SslError, "%s", why);
    case PKC_ERR_AUTH:
        return pkc_raise_kafka_error(st, pkc_link_kafka_error(link)
                                             ? pkc_link_kafka_error(link)
                                             : PKC_KERR_SASL_AUTHENTICATION_FAILED,
                                     why);
    case PKC_ERR_UNSUPPORTED:
        return pkc_raise(st->UnsupportedApiVersionError, "%s", why);
    case PKC_ERR_IO:
    case PKC_ERR_TIMEOUT:
    case PKC_ERR_CLOSED:
        return pkc_raise(st->SocketDisconnectedError, "%s", why);
    default: /* a malformed answer */
        return pkc_raise(st->ProtocolDecodeError, "%s", why);
    }
}

/*
 * Run the link's set-up (or re-authentication) to READY without the GIL,
 * running signal handlers between steps.  Returns 0, or -1 with an
 * exception set (the link is then down).
 */
static int
Connection_setup(ConnectionObject *self, pkc_state *st, int64_t deadline)
{
    int rc;

    for (;;) {
        Py_BEGIN_ALLOW_THREADS
        rc = pkc_link_run(&self->link, deadline);
        Py_END_ALLOW_THREADS
        if (rc != PKC_ERR_INTR)
            break;
        if (PyErr_CheckSignals() < 0) {
            pkc_link_close(&self->link);
            return -1;
        }
    }
    if (rc == PKC_OK)
        return 0;
    Connection_setup_error(st, &self->link);
    return -1;
}

/* Re-authenticate first when the session's lifetime says so (lock
 * held).  Returns 0, or -1 with an exception set. */
static int
Connection_reauth_if_due(ConnectionObject *self)
{
    int64_t now = pkc_now_ms();

    if (!pkc_link_reauth_due(&self->link, now) ||
        pkc_conn_in_flight(&self->link.conn) > 0)
        return 0;
    if (pkc_link_step(&self->link, now) == PKC_OK)
        return 0;
    if (!pkc_link_in_setup(&self->link)) {
        Connection_setup_error(Connection_state(self), &self->link);
        return -1;
    }
    return Connection_setup(self, Connection_state(self),
                            pkc_deadline_after(self->timeout_ms));
}

/* The constructor's link configuration from its keyword arguments. */
typedef struct {
    PyObject *host;
    int port;
    PyObject *timeout;
    const char *client_id;
    Py_ssize_t client_id_len;
    Py_ssize_t max_frame;
    const char *source_host;
    int source_port;
    PyObject *security;
    int negotiate;
    int api_versions_version;
    const char *software_version;
} Connection_args;

static int
Connection_check_args(const Connection_args *a)
{
    if (a->max_frame < 4 || a->max_frame > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError,
                        "max_frame_bytes must be between 4 and 2**31-1");
        return -1;
    }
    if (a->client_id_len > INT16_MAX) {
        PyErr_SetString(PyExc_ValueError,
                        "client_id is longer than 32767 bytes");
        return -1;
    }
    if (a->port <= 0 || a->port > 65535 || a->source_port < 0 ||
        a->source_port > 65535) {
        PyErr_SetString(PyExc_ValueError, "port out of range");
        return -1;
    }
    return 0;
}

static PyObject *
Connection_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"host", "port", "timeout_ms", "client_id",
                             "max_frame_bytes", "source_host",
                             "source_port", "security", "negotiate",
                             "api_versions_version", "software_version",
                             NULL};
    Connection_args a = {NULL, 0, NULL, "pykafka", 7,
                         PKC_CONN_DEFAULT_MAX_FRAME, "", 0, NULL, 0,
                         PKC_LINK_API_VERSIONS_MAX, "0"};
    pkc_link_config cfg;
    int64_t timeout_ms;
    const char *host_c;
    ConnectionObject *self = NULL;
    pkc_state *st;
    int rc;

    if (!PyArg_ParseTupleAndKeywords(
            args, kwargs, "Ui|$Oz#nsiOpis:Connection", kwlist, &a.host,
            &a.port, &a.timeout, &a.client_id, &a.client_id_len,
            &a.max_frame, &a.source_host, &a.source_port, &a.security,
            &a.negotiate, &a.api_versions_version, &a.software_version))
        return NULL;
    if (Connection_parse_timeout(a.timeout, 30000, -1, &timeout_ms) < 0 ||
        Connection_check_args(&a) < 0)
        return NULL;
    host_c = PyUnicode_AsUTF8(a.host);
    if (host_c == NULL)
        return NULL;
    st = pkc_state_from_type(type);
    if (st == NULL)
        return NULL;
    memset(&cfg, 0, sizeof(cfg));
    if (pkc_security_arg(st, a.security, &cfg.security) < 0)
        return NULL;
    cfg.client_id = a.client_id;
    cfg.max_frame = (int32_t)a.max_frame;
    cfg.source_host = a.source_host;
    cfg.source_port = a.source_port;
    cfg.setup_timeout_ms = timeout_ms < 0 || timeout_ms > INT32_MAX
                               ? INT32_MAX : (int32_t)timeout_ms;
    cfg.software_name = "pykafka-c";
    cfg.software_version = a.software_version;
    cfg.api_versions_version = (int16_t)a.api_versions_version;
    cfg.transport_only = !a.negotiate;

    self = (ConnectionObject *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    /* tp_alloc zeroed the object; make dealloc safe before anything can
     * fail. */
    self->host = Py_NewRef(a.host);
    self->port = a.port;
    self->timeout_ms = timeout_ms;
    rc = pkc_link_init(&self->link, &cfg);
    self->link_inited = 1;
    if (rc != PKC_OK) {
        if (rc == PKC_ERR_NOMEM)
            PyErr_NoMemory();
        else
            PyErr_SetString(PyExc_ValueError, self->link.conn.errstr);
        goto error;
    }
    self->lock = PyThread_allocate_lock();
    if (self->lock == NULL) {
        PyErr_SetString(PyExc_MemoryError, "cannot allocate lock");
        goto error;
    }
    /* Nobody else can see the object yet: no lock needed. */
    rc = pkc_link_start(&self->link, host_c, a.port, pkc_now_ms());
    if (rc == PKC_ERR_INVALID && !pkc_conn_is_open(&self->link.conn)) {
        PyErr_SetString(PyExc_ValueError, pkc_link_error(&self->link));
        goto error;
    }
    if (rc != PKC_OK &&
        (rc != PKC_IN_PROGRESS ||
         Connection_setup(self, st, pkc_deadline_after(timeout_ms)) < 0)) {
        if (!PyErr_Occurred())
            Connection_setup_error(st, &self->link);
        goto error;
    }
    Connection_sync(self);
    return (PyObject *)self;

error:
    Py_DECREF(self);
    return NULL;
}

static void
Connection_dealloc(PyObject *op)
{
    ConnectionObject *self = Connection_CAST(op);
    PyTypeObject *tp = Py_TYPE(op);

    if (self->link_inited)
        pkc_link_free(&self->link);
    if (self->lock != NULL)
        PyThread_free_lock(self->lock);
    Py_CLEAR(self->host);
    tp->tp_free(op);
    Py_DECREF(tp);
}

static PyObject *
Connection_repr(PyObject *op)
{
    ConnectionObject *self = Connection_CAST(op);

    return PyUnicode_FromFormat("<pykafka_c._core.Connection %R:%d %s>",
                                self->host, self->port,
                                self->is_open ? "open" : "closed");
}

/* ------------------------------------------------------------ methods */

PyDoc_STRVAR(Connection_send_doc,
"send($self, api_key, api_version, body, *, flexible=False,\n"
"     expect_response=True)\n--\n\n"
"Frame and send one request: a request header (v1, or v2 if flexible)\n"
"followed by body (a bytes-like object).  Returns the CorrelationId.\n"
"With expect_response=False (Produce with acks=0) no response is\n"
"expected and none is awaited.  The response is read later by recv();\n"
"several requests may be in flight and are answered in order.");

static PyObject *
Connection_send(PyObject *op, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"api_key", "api_version", "body", "flexible",
                             "expect_response", NULL};
    ConnectionObject *self = Connection_CAST(op);
    short api_key, api_version;
    Py_buffer body = {0};
    int flexible = 0, expect_response = 1, rc, built;
    int32_t corr = -1;
    int64_t deadline;
    PyObject *result = NULL;
    pkc_writer *w;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "hhy*|$pp:send", kwlist,
                                     &api_key, &api_version, &body,
                                     &flexible, &expect_response))
        return NULL;
    if (Connection_lock(self) < 0)
        goto done_nolock;
    if (!pkc_conn_is_open(&self->link.conn)) {
        Connection_closed_error(self);
        goto done;
    }
    if (Connection_reauth_if_due(self) < 0)
        goto done;
    deadline = pkc_deadline_after(self->timeout_ms);
    Py_BEGIN_ALLOW_THREADS
    rc = pkc_conn_request_begin(&self->link.conn, api_key, api_version, flexible,
                                &w);
    if (rc == PKC_OK) {
        pkc_write_raw(w, body.buf, (size_t)body.len);
        rc = pkc_conn_request_end(&self->link.conn, expect_response, &corr);
    }
    built = rc == PKC_OK;
    if (built)
        rc = pkc_conn_flush(&self->link.conn, deadline);
    Py_END_ALLOW_THREADS
    if (!built) {
        /* The frame could not be built (too large, out of memory): the
         * connection is untouched. */
        if (rc == PKC_ERR_NOMEM)
            PyErr_NoMemory();
        else
            PyErr_SetString(PyExc_ValueError, self->link.conn.errstr);
        goto done;
    }
    while (rc == PKC_ERR_INTR) {
        if (PyErr_CheckSignals() < 0) {
            /* The frame stays queued (the next call finishes writing it,
             * keeping the stream intact); nobody will read its answer. */
            if (expect_response)
                pkc_conn_discard(&self->link.conn, corr);
            goto done;
        }
        Py_BEGIN_ALLOW_THREADS
        rc = pkc_conn_flush(&self->link.conn, deadline);
        Py_END_ALLOW_THREADS
    }
    if (rc != PKC_OK) {
        Connection_fail(self, rc);
        goto done;
    }
    result = PyLong_FromLong(corr);
done:
    Connection_unlock(self);
done_nolock:
    PyBuffer_Release(&body);
    return result;
}

/*
 * Receive the next response (lock held).  On success returns the body as
 * new bytes and sets *corr.  On an interrupting exception from a signal
 * handler the request stays in flight and *interrupted is set.
 */
static PyObject *
Connection_recv_locked(ConnectionObject *self, int64_t deadline,
                       int32_t *corr, int *interrupted)
{
    pkc_response resp;
    PyObject *bytes;
    int rc;

    *interrupted = 0;
    for (;;) {
        Py_BEGIN_ALLOW_THREADS
        rc = pkc_link_recv_response(&self->link, deadline, &resp);
        Py_END_ALLOW_THREADS
        if (rc != PKC_ERR_INTR)
            break;
        if (PyErr_CheckSignals() < 0) {
            *interrupted = 1;
            return NULL;
        }
    }
    if (rc != PKC_OK)
        return Connection_fail(self, rc);
    *corr = resp.correlation_id;
    if (resp.body_len > PY_SSIZE_T_MAX)
        return PyErr_NoMemory();
    if (resp.body_len <= CONN_COPY_NOGIL)
        return PyBytes_FromStringAndSize((const char *)resp.body,
                                         (Py_ssize_t)resp.body_len);
    bytes = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)resp.body_len);
    if (bytes == NULL)
        return NULL;
    char *dst = PyBytes_AS_STRING(bytes);
    Py_BEGIN_ALLOW_THREADS
    memcpy(dst, resp.body, resp.body_len);
    Py_END_ALLOW_THREADS
    return bytes;
}

PyDoc_STRVAR(Connection_recv_doc,
"recv($self, timeout_ms=None)\n--\n\n"
"Receive the response to the oldest request in flight and return\n"
"(correlation_id, body): the bytes after the response header.  timeout_ms\n"
"defaults to the connection's timeout.  A timeout, socket error or EOF\n"
"raises SocketDisconnectedError and closes the connection; an invalid\n"
"frame or a CorrelationId mismatch raises ProtocolDecodeError and closes\n"
"it.  Raises RuntimeError if no request is in flight.");

static PyObject *
Connection_recv(PyObject *op, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"timeout_ms", NULL};
    ConnectionObject *self = Connection_CAST(op);
    PyObject *timeout_obj = NULL, *body, *result = NULL;
    int64_t timeout_ms;
    int32_t corr = 0;
    int interrupted;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O:recv", kwlist,
                                     &timeout_obj))
        return NULL;
    if (Connection_parse_timeout(timeout_obj, self->timeout_ms,
                                 self->timeout_ms, &timeout_ms) < 0)
        return NULL;
    if (Connection_lock(self) < 0)
        return NULL;
    if (!pkc_conn_is_open(&self->link.conn)) {
        Connection_closed_error(self);
        goto done;
    }
    if (pkc_conn_in_flight(&self->link.conn) == 0) {
        PyErr_SetString(PyExc_RuntimeError,
                        "recv() with no request in flight");
        goto done;
    }
    body = Connection_recv_locked(self, pkc_deadline_after(timeout_ms),
                                  &corr, &interrupted);
    if (body == NULL)
        goto done;
    result = Py_BuildValue("(iN)", (int)corr, body);
done:
    Connection_unlock(self);
    return result;
}

PyDoc_STRVAR(Connection_request_doc,
"request($self, api_key, api_version, body, *, flexible=False,\n"
"        timeout_ms=None)\n--\n\n"
"send() then wait for this request's response and return its body.  The\n"
"connection lock is held throughout, so concurrent callers cannot take\n"
"each other's responses.  Raises RuntimeError if responses to earlier\n"
"send() calls are still pending.  timeout_ms covers the whole exchange.");

static PyObject *
Connection_request(PyObject *op, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"api_key", "api_version", "body", "flexible",
                             "timeout_ms", NULL};
    ConnectionObject *self = Connection_CAST(op);
    short api_key, api_version;
    Py_buffer body = {0};
    int flexible = 0, rc, built, interrupted;
    PyObject *timeout_obj = NULL, *result = NULL;
    int32_t corr = -1, rcorr = 0;
    int64_t timeout_ms, deadline;
    pkc_writer *w;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "hhy*|$pO:request",
                                     kwlist, &api_key, &api_version, &body,
                                     &flexible, &timeout_obj))
        return NULL;
    if (Connection_parse_timeout(timeout_obj, self->timeout_ms,
                                 self->timeout_ms, &timeout_ms) < 0)
        goto done_nolock;
    if (Connection_lock(self) < 0)
        goto done_nolock;
    if (!pkc_conn_is_open(&self->link.conn)) {
        Connection_closed_error(self);
        goto done;
    }
    if (pkc_conn_in_flight(&self->link.conn) != 0) {
        PyErr_Format(PyExc_RuntimeError,
                     "request() while %zd earlier requests await recv()",
                     (Py_ssize_t)pkc_conn_in_flight(&self->link.conn));
        goto done;
    }
    if (Connection_reauth_if_due(self) < 0)
        goto done;
    deadline = pkc_deadline_after(timeout_ms);
    Py_BEGIN_ALLOW_THREADS
    rc = pkc_conn_request_begin(&self->link.conn, api_key, api_version, flexible,
                                &w);
    if (rc == PKC_OK) {
        pkc_write_raw(w, body.buf, (size_t)body.len);
        rc = pkc_conn_request_end(&self->link.conn, 1, &corr);
    }
    built = rc == PKC_OK;
    if (built)
        rc = pkc_conn_flush(&self->link.conn, deadline);
    Py_END_ALLOW_THREADS
    if (!built) {
        if (rc == PKC_ERR_NOMEM)
            PyErr_NoMemory();
        else
            PyErr_SetString(PyExc_ValueError, self->link.conn.errstr);
        goto done;
    }
    while (rc == PKC_ERR_INTR) {
        if (PyErr_CheckSignals() < 0) {
            pkc_conn_discard(&self->link.conn, corr);
            goto done;
        }
        Py_BEGIN_ALLOW_THREADS
        rc = pkc_conn_flush(&self->link.conn, deadline);
        Py_END_ALLOW_THREADS
    }
    if (rc != PKC_OK) {
        Connection_fail(self, rc);
        goto done;
    }
    result = Connection_recv_locked(self, deadline, &rcorr, &interrupted);
    if (result == NULL && interrupted)
        pkc_conn_discard(&self->link.conn, corr); /* its answer is dropped */
done:
    Connection_unlock(self);
done_nolock:
    PyBuffer_Release(&body);
    return result;
}

PyDoc_STRVAR(Connection_close_doc,
"close($self)\n--\n\n"
"Close the connection.  A call blocked in another thread is woken (it\n"
"raises SocketDisconnectedError).  Closing twice is harmless.");

PyDoc_STRVAR(Connection_disconnect_doc,
"disconnect($self)\n--\n\n"
"close() under pykafka's BrokerConnection name.");

static PyObject *
Connection_close(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    ConnectionObject *self = Connection_CAST(op);

    if (!PyThread_acquire_lock(self->lock, NOWAIT_LOCK)) {
        /* Another thread is inside a call: shut the socket down so that
         * it wakes up, then wait for it to leave.  conn.fd only changes
         * under the GIL, so reading it here is safe. */
        self->closing = 1;
        if (self->link.conn.fd >= 0)
            shutdown(self->link.conn.fd, SHUT_RDWR);
        if (Connection_lock(self) < 0)
            return NULL;
    }
    pkc_link_close(&self->link);
    self->closing = 0;
    Connection_unlock(self);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(Connection_fileno_doc,
"fileno($self)\n--\n\n"
"The socket's file descriptor, or -1 once closed.");

static PyObject *
Connection_fileno(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromLong(Connection_CAST(op)->link.conn.fd);
}

static PyObject *
Connection_enter(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    return Py_NewRef(op);
}

static PyObject *
Connection_exit(PyObject *op, PyObject *Py_UNUSED(args))
{
    return Connection_close(op, NULL);
}

static PyMethodDef Connection_methods[] = {
    {"send", PKC_CFUNC(Connection_send), METH_VARARGS | METH_KEYWORDS,
     Connection_send_doc},
    {"recv", PKC_CFUNC(Connection_recv), METH_VARARGS | METH_KEYWORDS,
     Connection_recv_doc},
    {"request", PKC_CFUNC(Connection_request), METH_VARARGS | METH_KEYWORDS,
     Connection_request_doc},
    {"close", Connection_close, METH_NOARGS, Connection_close_doc},
    {"disconnect", Connection_close, METH_NOARGS, Connection_disconnect_doc},
    {"fileno", Connection_fileno, METH_NOARGS, Connection_fileno_doc},
    {"__enter__", Connection_enter, METH_NOARGS, NULL},
    {"__exit__", Connection_exit, METH_VARARGS, NULL},
    {NULL}
};

/* ------------------------------------------------------------ properties */

static PyObject *
Connection_get_connected(PyObject *op, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(Connection_CAST(op)->is_open);
}

static PyObject *
Connection_get_host(PyObject *op, void *Py_UNUSED(closure))
{
    return Py_NewRef(Connection_CAST(op)->host);
}

static PyObject *
Connection_get_port(PyObject *op, void *Py_UNUSED(closure))
{
    return PyLong_FromLong(Connection_CAST(op)->port);
}

static PyObject *
Connection_get_in_flight(PyObject *op, void *Py_UNUSED(closure))
{
    return PyLong_FromSsize_t(Connection_CAST(op)->in_flight);
}

static PyObject *
Connection_get_rbuf_peak(PyObject *op, void *Py_UNUSED(closure))
{
    return PyLong_FromSize_t(Connection_CAST(op)->rbuf_peak);
}

static PyObject *
Connection_get_api_versions(PyObject *op, void *Py_UNUSED(closure))
{
    ConnectionObject *self = Connection_CAST(op);
    PyObject *d = PyDict_New();

    if (d == NULL)
        return NULL;
    for (int key = 0; key <= PKC_LINK_MAX_API_KEY; key++) {
        pkc_api_range r = pkc_link_api_range(&self->link, key);
        PyObject *k, *v;
        int rc;

        if (r.min < 0)
            continue;
        k = PyLong_FromLong(key);
        v = Py_BuildValue("(hh)", r.min, r.max);
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

static PyObject *
Connection_get_api_versions_version(PyObject *op, void *Py_UNUSED(closure))
{
    return PyLong_FromLong(Connection_CAST(op)->link.api_versions_version);
}

static PyObject *
Connection_get_api_versions_response(PyObject *op,
                                     void *Py_UNUSED(closure))
{
    ConnectionObject *self = Connection_CAST(op);

    if (self->link.api_versions_body == NULL)
        Py_RETURN_NONE;
    return PyBytes_FromStringAndSize(
        (const char *)self->link.api_versions_body,
        (Py_ssize_t)self->link.api_versions_len);
}

static PyObject *
Connection_get_tls(PyObject *op, void *Py_UNUSED(closure))
{
    ConnectionObject *self = Connection_CAST(op);
    char text[128];

    if (self->link.conn.tls == NULL || !self->link.conn.tls_ready)
        Py_RETURN_NONE;
    return PyUnicode_FromString(
        pkc_tls_describe(self->link.conn.tls, text, sizeof(text)));
}

static PyObject *
Connection_get_session_lifetime_ms(PyObject *op, void *Py_UNUSED(closure))
{
    return PyLong_FromLongLong(Connection_CAST(op)->link.session_lifetime_ms);
}

static PyObject *
Connection_get_authentications(PyObject *op, void *Py_UNUSED(closure))
{
    ConnectionObject *self = Connection_CAST(op);

    return PyLong_FromUnsignedLongLong(
        self->link.authenticated ? self->link.setups : 0);
}

static PyGetSetDef Connection_getset[] = {
    {"api_versions", Connection_get_api_versions, NULL,
     "{api_key: (min, max)} the broker listed in ApiVersions (empty for a "
     "connection made without negotiate).", NULL},
    {"api_versions_version", Connection_get_api_versions_version, NULL,
     "The ApiVersions version the broker answered.", NULL},
    {"api_versions_response", Connection_get_api_versions_response, NULL,
     "The body of the broker's ApiVersions answer (bytes), or None.", NULL},
    {"tls", Connection_get_tls, NULL,
     "The TLS version and cipher ('TLSv1.3 TLS_AES_256_GCM_SHA384'), or "
     "None for plain TCP.", NULL},
    {"session_lifetime_ms", Connection_get_session_lifetime_ms, NULL,
     "The SASL session lifetime the broker gave (0: none).", NULL},
    {"_authentications", Connection_get_authentications, NULL,
     "Private: SASL authentications completed on this connection "
     "(re-authentications included).", NULL},
    {"connected", Connection_get_connected, NULL,
     "True until the connection is closed or fails.", NULL},
    {"host", Connection_get_host, NULL, "The host given to the constructor.",
     NULL},
    {"port", Connection_get_port, NULL, "The broker port.", NULL},
    {"in_flight", Connection_get_in_flight, NULL,
     "Requests sent whose responses have not been received yet.", NULL},
    {"_recv_buffer_peak", Connection_get_rbuf_peak, NULL,
     "Private: the largest receive buffer allocated so far (bytes).", NULL},
    {NULL}
};

PyDoc_STRVAR(Connection_doc,
"Connection(host, port, *, timeout_ms=30000, client_id='pykafka',\n"
"           max_frame_bytes=104857600, source_host='', source_port=0,\n"
"           security=None, negotiate=False, api_versions_version=3,\n"
"           software_version='0')\n"
"--\n\n"
"A connection to one Kafka broker, set up by the constructor (IPv4,\n"
"IPv6 or a host name; every resolved address is tried): TCP, then TLS\n"
"when `security` (a Security) says so, then with negotiate=True or a\n"
"SASL mechanism ApiVersions (api_versions) and SASL authentication.\n"
"timeout_ms (None: no timeout) bounds the set-up and each\n"
"send/recv/request.\n"
"Responses longer than max_frame_bytes are refused before any memory is\n"
"allocated for them.  Thread-safe: one call at a time holds the\n"
"connection; the GIL is released while waiting.");

static PyType_Slot Connection_slots[] = {
    {Py_tp_new, Connection_new},
    {Py_tp_dealloc, Connection_dealloc},
    {Py_tp_repr, Connection_repr},
    {Py_tp_methods, Connection_methods},
    {Py_tp_getset, Connection_getset},
    {Py_tp_doc, (void *)Connection_doc},
    {0, NULL}
};

static PyType_Spec Connection_spec = {
    .name = "pykafka_c._core.Connection",
    .basicsize = sizeof(ConnectionObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = Connection_slots,
};

int
pkc_connection_exec(PyObject *module, pkc_state *st)
{
    PyObject *tp = PyType_FromModuleAndSpec(module, &Connection_spec, NULL);

    if (tp == NULL)
        return -1;
    st->ConnectionType = (PyTypeObject *)tp; /* state owns this reference */
    return PyModule_AddType(module, st->ConnectionType);
}
