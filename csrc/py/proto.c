/*
 * proto.c (py) - the Python face of the table-driven protocol codec:
 * encode_request / encode_response turn a dict into a message body,
 * decode_response / decode_request turn a body into nested dicts and
 * lists, plus the constant tables (API versions, the versions pykafka_c
 * supports, Kafka's error codes) and header-version helpers.
 *
 * The C walker (csrc/wire/proto.c) does all the protocol work; this file
 * only implements its source and visitor vtables over Python objects.
 * Field names are interned once per module (pkc_state.proto_names, one
 * str per field row).
 */
#include "module.h"
#include "api_support.h"
#include "kafka_errors.h"
#include "proto.h"

#define FRAMES (2 * PKC_PROTO_MAX_DEPTH + 2)

static PyObject *
field_name(pkc_state *st, const pkc_proto_field *f)
{
    /* borrowed */
    return PyTuple_GET_ITEM(st->proto_names, pkc_proto_field_index(f));
}

/* "Metadata v12 response" */
static void
describe(char *buf, size_t n, const pkc_proto_api *api, int version,
         pkc_proto_kind kind)
{
    PyOS_snprintf(buf, n, "%s v%d %s", api->name, version,
                  kind == PKC_PROTO_REQUEST ? "request" : "response");
}

/* Look up the API and check the version; raise and return NULL if not. */
static const pkc_proto_api *
check_api(pkc_state *st, int api_key, int version)
{
    const pkc_proto_api *api = pkc_proto_api_find(api_key);

    if (api == NULL) {
        PyErr_Format(PyExc_ValueError,
                     "pykafka_c has no protocol spec for api key %d",
                     api_key);
        return NULL;
    }
    if (version < api->min_version || version > api->max_version) {
        pkc_raise(st->UnsupportedApiVersionError,
                  "%s v%d is outside the versions pykafka_c can encode "
                  "and decode (%d-%d)",
                  api->name, version, (int)api->min_version,
                  (int)api->max_version);
        return NULL;
    }
    return api;
}

static int
parse_key_version(PyObject *const *args, int *api_key, int *version)
{
    long k = PyLong_AsLong(args[0]);
    long v;

    if (k == -1 && PyErr_Occurred())
        return -1;
    v = PyLong_AsLong(args[1]);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (k < INT16_MIN || k > INT16_MAX || v < INT16_MIN || v > INT16_MAX) {
        PyErr_SetString(PyExc_ValueError,
                        "api_key and api_version must fit in an int16");
        return -1;
    }
    *api_key = (int)k;
    *version = (int)v;
    return 0;
}

/* ------------------------------------------------------------- decoding */

typedef struct {
    PyObject *obj;   /* owned: a dict or a list */
    Py_ssize_t next; /* lists: next index to fill */
} dframe;

typedef struct {
    pkc_state *st;
    dframe stack[FRAMES];
    int depth;
    PyObject *result; /* owned */
    /* When the input is an (immutable) bytes object: records fields become
     * read-only memoryviews of it instead of copies. */
    PyObject *input;       /* borrowed: that bytes object, else NULL */
    const char *base;      /* its data */
    Py_ssize_t len;
    PyObject *input_view;  /* owned: memoryview(input), made on first use */
} dctx;

/* Store `obj` (stolen) under f in the innermost dict, or as the next
 * element of the innermost list. */
static int
put_steal(dctx *c, const pkc_proto_field *f, PyObject *obj)
{
    dframe *top;
    int rc;

    if (obj == NULL)
        return PKC_PROTO_ABORT;
    if (c->depth == 0) {
        Py_DECREF(obj);
        PyErr_SetString(PyExc_SystemError, "proto: value outside a struct");
        return PKC_PROTO_ABORT;
    }
    top = &c->stack[c->depth - 1];
    if (PyList_CheckExact(top->obj)) {
        if (top->next >= PyList_GET_SIZE(top->obj)) {
            Py_DECREF(obj);
            PyErr_SetString(PyExc_SystemError, "proto: list overflow");
            return PKC_PROTO_ABORT;
        }
        PyList_SET_ITEM(top->obj, top->next, obj);
        top->next++;
        return 0;
    }
    rc = PyDict_SetItem(top->obj, field_name(c->st, f), obj);
    Py_DECREF(obj);
    return rc < 0 ? PKC_PROTO_ABORT : 0;
}

static int
push_steal(dctx *c, PyObject *obj)
{
    if (obj == NULL)
        return PKC_PROTO_ABORT;
    if (c->depth >= FRAMES) {
        Py_DECREF(obj);
        PyErr_SetString(PyExc_SystemError, "proto: nesting too deep");
        return PKC_PROTO_ABORT;
    }
    c->stack[c->depth].obj = obj;
    c->stack[c->depth].next = 0;
    c->depth++;
    return 0;
}

/* Pop the innermost container and store it in its parent (or as the
 * result). */
static int
pop_put(dctx *c, const pkc_proto_field *f)
{
    PyObject *obj = c->stack[--c->depth].obj;

    if (c->depth == 0) {
        Py_XSETREF(c->result, obj);
        return 0;
    }
    return put_steal(c, f, obj);
}

static int
d_begin_struct(void *ctx, const pkc_proto_field *f, const pkc_proto_struct *s)
{
    (void)f;
    (void)s;
    return push_steal(ctx, PyDict_New());
}

static int
d_end_struct(void *ctx, const pkc_proto_field *f, const pkc_proto_struct *s)
{
    (void)s;
    return pop_put(ctx, f);
}

static int
d_begin_array(void *ctx, const pkc_proto_field *f, int32_t count)
{
    (void)f;
    return push_steal(ctx, PyList_New(count));
}

static int
d_end_array(void *ctx, const pkc_proto_field *f)
{
    return pop_put(ctx, f);
}

static int
d_on_null(void *ctx, const pkc_proto_field *f)
{
    return put_steal(ctx, f, Py_NewRef(Py_None));
}

static int
d_on_int(void *ctx, const pkc_proto_field *f, int64_t v)
{
    return put_steal(ctx, f, PyLong_FromLongLong(v));
}

static int
d_on_bool(void *ctx, const pkc_proto_field *f, int v)
{
    return put_steal(ctx, f, PyBool_FromLong(v));
}

static int
d_on_float(void *ctx, const pkc_proto_field *f, double v)
{
    return put_steal(ctx, f, PyFloat_FromDouble(v));
}

static int
d_on_string(void *ctx, const pkc_proto_field *f, pkc_slice v)
{
    PyObject *s = PyUnicode_DecodeUTF8((const char *)v.ptr, v.len, NULL);

    if (s == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_UnicodeDecodeError))
            return PKC_PROTO_ABORT;
        PyErr_Clear();
        return PKC_ERR_INVALID; /* reported with the field path */
    }
    return put_steal(ctx, f, s);
}

/* A Records field: a read-only memoryview of the input bytes (no copy of
 * what is most of a Fetch response or a Produce request), or a bytes copy
 * when the input is mutable or `v` does not lie in it.  New reference. */
static PyObject *
records_object(dctx *c, pkc_slice v)
{
    Py_ssize_t start = (const char *)v.ptr - c->base;

    if (c->input == NULL || (const char *)v.ptr < c->base ||
        v.len > c->len - start)
        return PyBytes_FromStringAndSize((const char *)v.ptr, v.len);
    if (c->input_view == NULL &&
        (c->input_view = PyMemoryView_FromObject(c->input)) == NULL)
        return NULL;
    return PySequence_GetSlice(c->input_view, start, start + v.len);
}

static int
d_on_bytes(void *ctx, const pkc_proto_field *f, pkc_slice v)
{
    if (f->type == PKC_PT_RECORDS)
        return put_steal(ctx, f, records_object(ctx, v));
    return put_steal(ctx, f,
                     PyBytes_FromStringAndSize((const char *)v.ptr, v.len));
}

static int
d_on_uuid(void *ctx, const pkc_proto_field *f, const uint8_t *v16)
{
    return put_steal(ctx, f, PyBytes_FromStringAndSize((const char *)v16,
                                                       16));
}

static const pkc_proto_visitor dict_visitor = {
    NULL,         d_begin_struct, d_end_struct, d_begin_array,
    d_end_array,  d_on_null,      d_on_int,     d_on_bool,
    d_on_float,   d_on_string,    d_on_bytes,   d_on_uuid,
};

static PyObject *
decode_impl(PyObject *module, PyObject *const *args, Py_ssize_t nargs,
            pkc_proto_kind kind, const char *fname)
{
    pkc_state *st = pkc_get_state(module);
    const pkc_proto_api *api;
    int api_key, version, rc, trailing_ok = 0;
    Py_buffer view = {0};
    pkc_reader r;
    pkc_proto_error err;
    pkc_proto_visitor vis = dict_visitor;
    dctx c = {0};
    PyObject *result = NULL;
    char what[96];

    if (nargs != 3 && nargs != 4) {
        PyErr_Format(PyExc_TypeError,
                     "%s() takes 3 or 4 arguments (%zd given)", fname,
                     nargs);
        return NULL;
    }
    if (nargs == 4 && (trailing_ok = PyObject_IsTrue(args[3])) < 0)
        return NULL;
    if (parse_key_version(args, &api_key, &version) < 0)
        return NULL;
    if ((api = check_api(st, api_key, version)) == NULL)
        return NULL;
    if (PyObject_GetBuffer(args[2], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    c.st = st;
    if (PyBytes_CheckExact(args[2])) {
        c.input = args[2];
        c.base = view.buf;
        c.len = view.len;
    }
    vis.ctx = &c;
    pkc_reader_init(&r, view.buf, (size_t)view.len);
    rc = trailing_ok
             ? pkc_proto_decode_prefix(&r, kind, api_key, version, &vis, &err)
             : pkc_proto_decode(&r, kind, api_key, version, &vis, &err);
    if (rc == 0) {
        result = c.result;
        c.result = NULL;
    }
    else if (rc != PKC_PROTO_ABORT) {
        describe(what, sizeof(what), api, version, kind);
        if (r.status == PKC_OK) /* a callback status without a read error */
            pkc_reader_fail(&r, rc, err.path);
        pkc_raise_decode(st, err.status, what, &r);
    }
    while (c.depth > 0)
        Py_DECREF(c.stack[--c.depth].obj);
    Py_XDECREF(c.result);
    Py_XDECREF(c.input_view); /* its slices keep the buffer alive */
    PyBuffer_Release(&view);
    return result;
}

static PyObject *
pkc_decode_response(PyObject *module, PyObject *const *args,
                    Py_ssize_t nargs)
{
    return decode_impl(module, args, nargs, PKC_PROTO_RESPONSE,
                       "decode_response");
}

static PyObject *
pkc_decode_request(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    return decode_impl(module, args, nargs, PKC_PROTO_REQUEST,
                       "decode_request");
}

/* ------------------------------------------------------------- encoding */

typedef struct {
    PyObject *obj; /* borrowed: a dict, or a list/tuple for arrays */
    PyObject *cur; /* arrays: the current element (borrowed) */
    int is_array;
} eframe;

typedef struct {
    pkc_state *st;
    eframe stack[FRAMES];
    int depth;
    Py_buffer view; /* the bytes-like value handed out last, if any */
    int have_view;
    const char *got; /* type name of a value of the wrong type */
    const char *what; /* "Metadata v12 request" */
} ectx;

/* The value for f in the current frame (borrowed); NULL without an
 * exception if absent. */
static PyObject *
value_of(ectx *c, const pkc_proto_field *f)
{
    eframe *top = &c->stack[c->depth - 1];

    if (top->is_array)
        return top->cur;
    return PyDict_GetItemWithError(top->obj, field_name(c->st, f));
}

static int
bad_type(ectx *c, PyObject *v)
{
    c->got = v == NULL ? "nothing" : Py_TYPE(v)->tp_name;
    return PKC_PROTO_BADTYPE;
}

static void
release_view(ectx *c)
{
    if (c->have_view) {
        PyBuffer_Release(&c->view);
        c->have_view = 0;
    }
}

static int
s_has(void *ctx, const pkc_proto_field *f)
{
    ectx *c = ctx;
    eframe *top = &c->stack[c->depth - 1];
    int rc;

    if (top->is_array)
        return 1;
    rc = PyDict_Contains(top->obj, field_name(c->st, f));
    return rc < 0 ? PKC_PROTO_ABORT : rc;
}

static int
s_get_int(void *ctx, const pkc_proto_field *f, int64_t *out)
{
    ectx *c = ctx;
    PyObject *v = value_of(c, f);
    int overflow = 0;
    long long x;

    *out = 0;
    if (v == NULL)
        return PyErr_Occurred() ? PKC_PROTO_ABORT : bad_type(c, v);
    if (!PyLong_Check(v))
        return bad_type(c, v);
    x = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (x == -1 && PyErr_Occurred())
        return PKC_PROTO_ABORT;
    if (overflow)
        return PKC_ERR_INVALID;
    *out = x;
    return 0;
}

static int
s_get_float(void *ctx, const pkc_proto_field *f, double *out)
{
    ectx *c = ctx;
    PyObject *v = value_of(c, f);

    *out = 0;
    if (v == NULL)
        return PyErr_Occurred() ? PKC_PROTO_ABORT : bad_type(c, v);
    if (!PyFloat_Check(v) && !PyLong_Check(v))
        return bad_type(c, v);
    *out = PyFloat_AsDouble(v);
    if (*out == -1.0 && PyErr_Occurred())
        return PKC_PROTO_ABORT;
    return 0;
}

static int
s_get_bytes(void *ctx, const pkc_proto_field *f, pkc_slice *out)
{
    ectx *c = ctx;
    PyObject *v = value_of(c, f);

    out->ptr = NULL;
    out->len = -1;
    release_view(c);
    if (v == NULL)
        return PyErr_Occurred() ? PKC_PROTO_ABORT : bad_type(c, v);
    if (v == Py_None)
        return 0;
    if (PyUnicode_Check(v)) {
        Py_ssize_t n;
        const char *p;
        if (f->type != PKC_PT_STRING)
            return bad_type(c, v);
        p = PyUnicode_AsUTF8AndSize(v, &n);
        if (p == NULL)
            return PKC_PROTO_ABORT;
        if (n > INT32_MAX)
            return PKC_ERR_INVALID;
        out->ptr = (const uint8_t *)p;
        out->len = (int32_t)n;
        return 0;
    }
    if (PyBytes_Check(v)) {
        if (PyBytes_GET_SIZE(v) > INT32_MAX)
            return PKC_ERR_INVALID;
        out->ptr = (const uint8_t *)PyBytes_AS_STRING(v);
        out->len = (int32_t)PyBytes_GET_SIZE(v);
        return 0;
    }
    if (PyObject_CheckBuffer(v)) {
        if (PyObject_GetBuffer(v, &c->view, PyBUF_SIMPLE) < 0)
            return PKC_PROTO_ABORT;
        c->have_view = 1;
        if (c->view.len > INT32_MAX)
            return PKC_ERR_INVALID;
        out->ptr = c->view.buf;
        out->len = (int32_t)c->view.len;
        return 0;
    }
    return bad_type(c, v);
}

static int
s_enter_array(void *ctx, const pkc_proto_field *f, int32_t *count)
{
    ectx *c = ctx;
    PyObject *v = value_of(c, f);
    Py_ssize_t n;

    *count = 0;
    if (v == NULL)
        return PyErr_Occurred() ? PKC_PROTO_ABORT : bad_type(c, v);
    if (v != Py_None && !PyList_Check(v) && !PyTuple_Check(v))
        return bad_type(c, v);
    if (c->depth >= FRAMES) {
        PyErr_SetString(PyExc_SystemError, "proto: nesting too deep");
        return PKC_PROTO_ABORT;
    }
    if (v == Py_None)
        n = -1;
    else
        n = PySequence_Fast_GET_SIZE(v);
    if (n > INT32_MAX)
        return PKC_ERR_INVALID;
    c->stack[c->depth].obj = v;
    c->stack[c->depth].cur = NULL;
    c->stack[c->depth].is_array = 1;
    c->depth++;
    *count = (int32_t)n;
    return 0;
}

static int
s_enter_element(void *ctx, const pkc_proto_field *f, int32_t i)
{
    ectx *c = ctx;
    eframe *top = &c->stack[c->depth - 1];

    (void)f;
    if (!top->is_array || i >= PySequence_Fast_GET_SIZE(top->obj)) {
        PyErr_SetString(PyExc_RuntimeError,
                        "proto: list changed size during encoding");
        return PKC_PROTO_ABORT;
    }
    top->cur = PySequence_Fast_GET_ITEM(top->obj, i);
    return 0;
}

static void
s_leave(void *ctx, const pkc_proto_field *f)
{
    ectx *c = ctx;

    (void)f;
    c->depth--;
}

/* Raise ValueError naming the keys of dict d that struct s lacks. */
static int
check_keys(ectx *c, PyObject *d, const pkc_proto_struct *s)
{
    PyObject *key, *value, *unknown = NULL, *joined = NULL, *sep = NULL;
    Py_ssize_t pos = 0;
    int rc = 0;

    while (PyDict_Next(d, &pos, &key, &value)) {
        int found = 0;
        if (PyUnicode_Check(key)) {
            for (unsigned i = 0; i < s->count && !found; i++) {
                const pkc_proto_field *f = pkc_proto_field_at(s->first + i);
                found = PyUnicode_Compare(key, field_name(c->st, f)) == 0;
            }
        }
        if (found)
            continue;
        if (unknown == NULL && (unknown = PyList_New(0)) == NULL)
            return PKC_PROTO_ABORT;
        PyObject *r = PyObject_Repr(key);
        if (r == NULL || PyList_Append(unknown, r) < 0) {
            Py_XDECREF(r);
            Py_DECREF(unknown);
            return PKC_PROTO_ABORT;
        }
        Py_DECREF(r);
    }
    if (unknown == NULL)
        return 0;
    rc = PKC_PROTO_ABORT;
    if ((sep = PyUnicode_FromString(", ")) != NULL &&
        (joined = PyUnicode_Join(sep, unknown)) != NULL)
        PyErr_Format(PyExc_ValueError, "%s: unknown field(s) %U in %s",
                     c->what, joined, s->name);
    Py_XDECREF(sep);
    Py_XDECREF(joined);
    Py_DECREF(unknown);
    return rc;
}

static int
s_enter_struct(void *ctx, const pkc_proto_field *f, const pkc_proto_struct *s,
               int *is_null)
{
    ectx *c = ctx;
    PyObject *v;
    int rc;

    *is_null = 0;
    if (f == NULL)
        v = c->stack[0].obj; /* the message: placed by encode_impl */
    else
        v = value_of(c, f);
    if (v == NULL)
        return PyErr_Occurred() ? PKC_PROTO_ABORT : bad_type(c, v);
    if (v == Py_None) {
        *is_null = 1;
        return 0;
    }
    if (!PyDict_Check(v))
        return bad_type(c, v);
    if ((rc = check_keys(c, v, s)) != 0)
        return rc;
    if (f == NULL)
        return 0; /* frame 0 already holds the message */
    if (c->depth >= FRAMES) {
        PyErr_SetString(PyExc_SystemError, "proto: nesting too deep");
        return PKC_PROTO_ABORT;
    }
    c->stack[c->depth].obj = v;
    c->stack[c->depth].cur = NULL;
    c->stack[c->depth].is_array = 0;
    c->depth++;
    return 0;
}

static void
s_leave_struct(void *ctx, const pkc_proto_field *f, const pkc_proto_struct *s)
{
    ectx *c = ctx;

    (void)s;
    if (f != NULL)
        c->depth--;
}

static const pkc_proto_source dict_source = {
    NULL,           s_has,          s_get_int,      s_get_float,
    s_get_bytes,    s_enter_array,  s_enter_element, s_leave,
    s_enter_struct, s_leave_struct,
};

/* Turn a failed encode into the matching Python exception. */
static void
raise_encode(ectx *c, const pkc_proto_error *err)
{
    const char *path = err->path[0] ? err->path : "(message)";

    switch (err->status) {
    case PKC_PROTO_ABORT:
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_SystemError, "proto: aborted");
        return;
    case PKC_PROTO_BADTYPE:
        PyErr_Format(PyExc_TypeError, "%s: field '%s': expected %s, got %s",
                     c->what, path, err->what ? err->what : "another type",
                     c->got ? c->got : "None");
        return;
    case PKC_ERR_NOMEM:
        PyErr_NoMemory();
        return;
    case PKC_ERR_UNSUPPORTED:
        PyErr_Format(PyExc_ValueError, "%s: field '%s' is %s", c->what,
                     path, err->what ? err->what : "not supported");
        return;
    case PKC_ERR_TOO_LARGE:
        PyErr_Format(PyExc_ValueError, "%s: message too large (at '%s')",
                     c->what, path);
        return;
    default:
        PyErr_Format(PyExc_ValueError, "%s: field '%s': %s", c->what, path,
                     err->what ? err->what : pkc_status_str(err->status));
        return;
    }
}

static PyObject *
encode_impl(PyObject *module, PyObject *const *args, Py_ssize_t nargs,
            pkc_proto_kind kind, const char *fname)
{
    pkc_state *st = pkc_get_state(module);
    const pkc_proto_api *api;
    int api_key, version, rc;
    pkc_writer w;
    pkc_proto_error err;
    pkc_proto_source src = dict_source;
    ectx c;
    PyObject *result = NULL;
    char what[96];

    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError,
                     "%s() takes exactly 3 arguments (%zd given)", fname,
                     nargs);
        return NULL;
    }
    if (parse_key_version(args, &api_key, &version) < 0)
        return NULL;
    if ((api = check_api(st, api_key, version)) == NULL)
        return NULL;
    if (!PyDict_Check(args[2])) {
        PyErr_Format(PyExc_TypeError, "%s() fields must be a dict, not %s",
                     fname, Py_TYPE(args[2])->tp_name);
        return NULL;
    }
    memset(&c, 0, sizeof(c));
    describe(what, sizeof(what), api, version, kind);
    c.st = st;
    c.what = what;
    c.stack[0].obj = args[2];
    c.depth = 1;
    src.ctx = &c;
    if (pkc_writer_init(&w, 256, 0) != PKC_OK)
        return PyErr_NoMemory();
    rc = pkc_proto_encode(&w, kind, api_key, version, &src, &err);
    release_view(&c);
    if (rc == 0)
        result = PyBytes_FromStringAndSize((const char *)w.buf,
                                           (Py_ssize_t)w.len);
    else
        raise_encode(&c, &err);
    pkc_writer_free(&w);
    return result;
}

static PyObject *
pkc_encode_request(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    return encode_impl(module, args, nargs, PKC_PROTO_REQUEST,
                       "encode_request");
}

static PyObject *
pkc_encode_response(PyObject *module, PyObject *const *args,
                    Py_ssize_t nargs)
{
    return encode_impl(module, args, nargs, PKC_PROTO_RESPONSE,
                       "encode_response");
}

/* ---------------------------------------------------------------- tables */

static PyObject *
pkc_api_versions_table(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    PyObject *table = PyDict_New();

    (void)module;
    if (table == NULL)
        return NULL;
    for (size_t i = 0; i < pkc_proto_api_count(); i++) {
        const pkc_proto_api *a = pkc_proto_api_at(i);
        PyObject *key, *row;
        int rc;
        if (a->flexible_from >= 0)
            row = Py_BuildValue("(siii)", a->name, (int)a->min_version,
                                (int)a->max_version, (int)a->flexible_from);
        else
            row = Py_BuildValue("(siiO)", a->name, (int)a->min_version,
                                (int)a->max_version, Py_None);
        key = PyLong_FromLong(a->key);
        if (row == NULL || key == NULL) {
            Py_XDECREF(row);
            Py_XDECREF(key);
            Py_DECREF(table);
            return NULL;
        }
        rc = PyDict_SetItem(table, key, row);
        Py_DECREF(row);
        Py_DECREF(key);
        if (rc < 0) {
            Py_DECREF(table);
            return NULL;
        }
    }
    return table;
}

/* A tuple of n rows, row(i) making each (new reference or NULL). */
static PyObject *
rows_tuple(size_t n, PyObject *(*row)(size_t))
{
    PyObject *rows = PyTuple_New((Py_ssize_t)n);

    if (rows == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        PyObject *r = row(i);
        if (r == NULL) {
            Py_DECREF(rows);
            return NULL;
        }
        PyTuple_SET_ITEM(rows, (Py_ssize_t)i, r); /* steals r */
    }
    return rows;
}

static PyObject *
kafka_error_row(size_t i)
{
    const pkc_kafka_error_info *e = pkc_kafka_error_at(i);

    return Py_BuildValue("(isOO)", (int)e->code, e->name,
                         e->retriable ? Py_True : Py_False,
                         e->refresh_metadata ? Py_True : Py_False);
}

static PyObject *
pkc_kafka_errors(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    (void)module;
    return rows_tuple(pkc_kafka_error_count(), kafka_error_row);
}

static PyObject *
api_support_row(size_t i)
{
    const pkc_api_support *a = pkc_api_support_at(i);

    return Py_BuildValue("(isii)", (int)a->api_key, a->name,
                         (int)a->min_version, (int)a->max_version);
}

static PyObject *
pkc_supported_versions(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    (void)module;
    return rows_tuple(pkc_api_support_count(), api_support_row);
}

static PyObject *
header_version(PyObject *const *args, Py_ssize_t nargs, int response,
               const char *fname)
{
    int api_key, version, hv;

    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError,
                     "%s() takes exactly 2 arguments (%zd given)", fname,
                     nargs);
        return NULL;
    }
    if (parse_key_version(args, &api_key, &version) < 0)
        return NULL;
    hv = response ? pkc_proto_response_header_version(api_key, version)
                  : pkc_proto_request_header_version(api_key, version);
    if (hv < 0) {
        PyErr_Format(PyExc_ValueError,
                     "pykafka_c has no protocol spec for api key %d",
                     api_key);
        return NULL;
    }
    return PyLong_FromLong(hv);
}

static PyObject *
pkc_request_header_version(PyObject *module, PyObject *const *args,
                           Py_ssize_t nargs)
{
    (void)module;
    return header_version(args, nargs, 0, "request_header_version");
}

static PyObject *
pkc_response_header_version(PyObject *module, PyObject *const *args,
                            Py_ssize_t nargs)
{
    (void)module;
    return header_version(args, nargs, 1, "response_header_version");
}

PyDoc_STRVAR(pkc_encode_request_doc,
"encode_request($module, api_key, api_version, fields, /)\n--\n\n"
"Encode the body (no header) of a request from a dict of snake_case\n"
"fields.  Missing fields take their spec default; unknown keys raise\n"
"ValueError, values of the wrong type TypeError naming the field.");

PyDoc_STRVAR(pkc_encode_response_doc,
"encode_response($module, api_key, api_version, fields, /)\n--\n\n"
"Encode the body (no header) of a response; see encode_request.");

PyDoc_STRVAR(pkc_decode_response_doc,
"decode_response($module, api_key, api_version, data, trailing_ok=False,\n"
"                /)\n--\n\n"
"Decode a response body into nested dicts and lists (strings as str,\n"
"bytes as bytes, uuids as 16 bytes).  Records fields (Fetch responses,\n"
"Produce requests) are read-only memoryviews of data when data is bytes,\n"
"so they are not copied, else bytes.  Raises ProtocolDecodeError naming\n"
"the field path and byte offset; bytes after the body are an error unless\n"
"trailing_ok is true (pykafka's response classes ignored them).");

PyDoc_STRVAR(pkc_decode_request_doc,
"decode_request($module, api_key, api_version, data, trailing_ok=False,\n"
"               /)\n--\n\n"
"Decode a request body; see decode_response.");

PyDoc_STRVAR(pkc_api_versions_table_doc,
"api_versions_table($module, /)\n--\n\n"
"{api_key: (name, min_version, max_version, flexible_from)}: the versions\n"
"pykafka_c can encode and decode (the specs' validVersions);\n"
"flexible_from is None for APIs without flexible versions.");

PyDoc_STRVAR(pkc_kafka_errors_doc,
"kafka_errors($module, /)\n--\n\n"
"((code, name, retriable, refresh_metadata), ...): every error code Kafka\n"
"defines, in code order, from csrc/wire/kafka_errors.def.  name is\n"
"Kafka's (NOT_LEADER_OR_FOLLOWER); retriable: a RetriableException in\n"
"Kafka's client; refresh_metadata: an InvalidMetadataException.");

PyDoc_STRVAR(pkc_supported_versions_doc,
"supported_versions($module, /)\n--\n\n"
"((api_key, name, min_version, max_version), ...): the versions of each\n"
"API that pykafka_c implements, in ApiKey order, from\n"
"csrc/wire/api_support.def.  name is the API's constant name\n"
"(API_VERSIONS for PKC_API_API_VERSIONS).");

PyDoc_STRVAR(pkc_request_header_version_doc,
"request_header_version($module, api_key, api_version, /)\n--\n\n"
"The request header version (1 or 2) for this API version.");

PyDoc_STRVAR(pkc_response_header_version_doc,
"response_header_version($module, api_key, api_version, /)\n--\n\n"
"The response header version (0 or 1; ApiVersions is always 0).");

static PyMethodDef pkc_proto_methods[] = {
    {"encode_request", PKC_CFUNC(pkc_encode_request), METH_FASTCALL,
     pkc_encode_request_doc},
    {"encode_response", PKC_CFUNC(pkc_encode_response), METH_FASTCALL,
     pkc_encode_response_doc},
    {"decode_response", PKC_CFUNC(pkc_decode_response), METH_FASTCALL,
     pkc_decode_response_doc},
    {"decode_request", PKC_CFUNC(pkc_decode_request), METH_FASTCALL,
     pkc_decode_request_doc},
    {"api_versions_table", pkc_api_versions_table, METH_NOARGS,
     pkc_api_versions_table_doc},
    {"kafka_errors", pkc_kafka_errors, METH_NOARGS, pkc_kafka_errors_doc},
    {"supported_versions", pkc_supported_versions, METH_NOARGS,
     pkc_supported_versions_doc},
    {"request_header_version", PKC_CFUNC(pkc_request_header_version),
     METH_FASTCALL, pkc_request_header_version_doc},
    {"response_header_version", PKC_CFUNC(pkc_response_header_version),
     METH_FASTCALL, pkc_response_header_version_doc},
    {NULL}
};

int
pkc_proto_exec(PyObject *module, pkc_state *st)
{
    size_t n = pkc_proto_field_count();
    PyObject *names = PyTuple_New((Py_ssize_t)n);

    if (names == NULL)
        return -1;
    for (size_t i = 0; i < n; i++) {
        PyObject *s = PyUnicode_InternFromString(pkc_proto_field_at(i)->name);
        if (s == NULL) {
            Py_DECREF(names);
            return -1;
        }
        PyTuple_SET_ITEM(names, (Py_ssize_t)i, s);
    }
    Py_XSETREF(st->proto_names, names);
    return PyModule_AddFunctions(module, pkc_proto_methods);
}
