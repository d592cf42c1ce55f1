/*
 * compress.c (py) - the Python face of the record-batch codecs:
 * _core.compress, _core.decompress, _core.codec_available and
 * _core.available_codecs, plus pkc_raise_codec for other C callers.
 * The codec work itself is csrc/wire/compress.c and runs without the GIL.
 */
#include "module.h"

#include "compress.h"

/* Default cap on decompressed output, in bytes (64 MiB). */
#define PKC_DECOMPRESS_MAX_DEFAULT ((Py_ssize_t)64 * 1024 * 1024)

/* What to install for each optional codec (Debian/Ubuntu package names). */
static const char *
codec_package(int codec)
{
    switch (codec) {
    case PKC_CODEC_GZIP: return "zlib1g-dev";
    case PKC_CODEC_SNAPPY: return "libsnappy-dev";
    case PKC_CODEC_LZ4: return "liblz4-dev";
    case PKC_CODEC_ZSTD: return "libzstd-dev";
    default: return "?";
    }
}

PyObject *
pkc_raise_codec(pkc_state *st, int status, int codec, int decompressing,
                size_t max_size)
{
    const char *name = pkc_codec_name(codec);

    switch (status) {
    case PKC_ERR_CODEC:
        return pkc_raise(st->CodecUnavailableError,
                         "%s support was not built: install %s and rebuild "
                         "pykafka_c",
                         name, codec_package(codec));
    case PKC_ERR_TOO_LARGE:
        if (decompressing)
            return pkc_raise(st->CompressionError,
                             "%s: decompressed data is larger than the "
                             "limit of %zu bytes",
                             name, max_size);
        return PyErr_NoMemory();
    case PKC_ERR_NOMEM:
        return PyErr_NoMemory();
    case PKC_ERR_INVALID:
        PyErr_Format(PyExc_ValueError,
                     "%s: compression level out of range", name);
        return NULL;
    case PKC_ERR_UNSUPPORTED:
        PyErr_Format(PyExc_ValueError, "unknown compression codec %d",
                     codec);
        return NULL;
    case PKC_ERR_COMPRESSION:
        return pkc_raise(st->CompressionError,
                         "%s: corrupt or truncated compressed data", name);
    default:
        return pkc_raise(st->CompressionError, "%s: %s", name,
                         pkc_status_str(status));
    }
}

/* A codec given as its id (an int, e.g. CompressionType.GZIP) or its name.
 * Returns 0, or -1 with ValueError/TypeError set. */
static int
codec_from_object(PyObject *obj, int *codec)
{
    if (PyLong_Check(obj)) {
        long v = PyLong_AsLong(obj);
        if (v == -1 && PyErr_Occurred())
            return -1;
        if (v < PKC_CODEC_NONE || v > PKC_CODEC_ZSTD) {
            PyErr_Format(PyExc_ValueError, "unknown compression codec %ld",
                         v);
            return -1;
        }
        *codec = (int)v;
        return 0;
    }
    if (PyUnicode_Check(obj)) {
        for (int c = PKC_CODEC_NONE; c <= PKC_CODEC_ZSTD; c++) {
            if (PyUnicode_CompareWithASCIIString(obj, pkc_codec_name(c)) ==
                0) {
                *codec = c;
                return 0;
            }
        }
        PyErr_Format(PyExc_ValueError, "unknown compression codec %R", obj);
        return -1;
    }
    PyErr_Format(PyExc_TypeError,
                 "codec must be an int or a str, not %.100s",
                 Py_TYPE(obj)->tp_name);
    return -1;
}

PyDoc_STRVAR(pkc_compress_doc,
"compress($module, codec, data, level=-1)\n--\n\n"
"Compress a bytes-like object with a Kafka codec (id 0-4 or name) and\n"
"return bytes.  level -1 is Kafka's default for the codec (gzip 6, lz4\n"
"fast, zstd 3); snappy and none take no level.  Raises\n"
"CodecUnavailableError if this build lacks the codec.");

static PyObject *
pkc_py_compress(PyObject *module, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"codec", "data", "level", NULL};
    pkc_state *st = pkc_get_state(module);
    PyObject *codec_obj, *result = NULL;
    Py_buffer data = {0};
    pkc_writer w;
    int codec, level = -1, status;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "Oy*|i:compress", kwlist,
                                     &codec_obj, &data, &level))
        return NULL;
    pkc_writer_init(&w, 0, 0); /* reserves nothing, so cannot fail */
    if (codec_from_object(codec_obj, &codec) < 0)
        goto done;
    Py_BEGIN_ALLOW_THREADS
    status = pkc_compress(codec, data.buf, (size_t)data.len, level, &w);
    Py_END_ALLOW_THREADS
    if (status != PKC_OK) {
        pkc_raise_codec(st, status, codec, 0, 0);
        goto done;
    }
    result = PyBytes_FromStringAndSize((const char *)w.buf,
                                       (Py_ssize_t)w.len);
done:
    pkc_writer_free(&w);
    PyBuffer_Release(&data);
    return result;
}

PyDoc_STRVAR(pkc_decompress_doc,
"decompress($module, codec, data, max_size=67108864)\n--\n\n"
"Decompress a bytes-like object compressed with a Kafka codec (id 0-4 or\n"
"name) and return bytes.  Accepts concatenated gzip members, raw and\n"
"xerial-framed snappy, any LZ4 frame(s) and zstd frames with or without a\n"
"content size.  A result larger than max_size bytes raises\n"
"CompressionError without using more memory than that; corrupt or\n"
"truncated data raises CompressionError; a codec missing from this build\n"
"raises CodecUnavailableError.");

static PyObject *
pkc_py_decompress(PyObject *module, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"codec", "data", "max_size", NULL};
    pkc_state *st = pkc_get_state(module);
    PyObject *codec_obj, *result = NULL;
    Py_buffer data = {0};
    Py_ssize_t max_size = PKC_DECOMPRESS_MAX_DEFAULT;
    pkc_writer w;
    int codec, status;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "Oy*|n:decompress",
                                     kwlist, &codec_obj, &data, &max_size))
        return NULL;
    pkc_writer_init(&w, 0, 0); /* reserves nothing, so cannot fail */
    if (codec_from_object(codec_obj, &codec) < 0)
        goto done;
    if (max_size < 0) {
        PyErr_SetString(PyExc_ValueError, "max_size must be >= 0");
        goto done;
    }
    w.max = (size_t)max_size;
    Py_BEGIN_ALLOW_THREADS
    status = pkc_decompress(codec, data.buf, (size_t)data.len, &w);
    Py_END_ALLOW_THREADS
    if (status != PKC_OK) {
        pkc_raise_codec(st, status, codec, 1, (size_t)max_size);
        goto done;
    }
    result = PyBytes_FromStringAndSize((const char *)w.buf,
                                       (Py_ssize_t)w.len);
done:
    pkc_writer_free(&w);
    PyBuffer_Release(&data);
    return result;
}

PyDoc_STRVAR(pkc_snappy_compress_raw_doc,
"snappy_compress_raw($module, data, /)\n--\n\n"
"Compress a bytes-like object into one raw snappy block (no xerial\n"
"framing; what pykafka's encode_snappy and librdkafka write) and return\n"
"bytes.  compress('snappy', ...) writes xerial framing instead.  Raises\n"
"CodecUnavailableError if this build lacks snappy.");

static PyObject *
pkc_py_snappy_compress_raw(PyObject *module, PyObject *arg)
{
    pkc_state *st = pkc_get_state(module);
    PyObject *result = NULL;
    Py_buffer data = {0};
    pkc_writer w;
    int status;

    if (PyObject_GetBuffer(arg, &data, PyBUF_SIMPLE) < 0)
        return NULL;
    pkc_writer_init(&w, 0, 0); /* reserves nothing, so cannot fail */
    Py_BEGIN_ALLOW_THREADS
    status = pkc_snappy_compress_raw(data.buf, (size_t)data.len, &w);
    Py_END_ALLOW_THREADS
    if (status != PKC_OK) {
        pkc_raise_codec(st, status, PKC_CODEC_SNAPPY, 0, 0);
        goto done;
    }
    result = PyBytes_FromStringAndSize((const char *)w.buf,
                                       (Py_ssize_t)w.len);
done:
    pkc_writer_free(&w);
    PyBuffer_Release(&data);
    return result;
}

PyDoc_STRVAR(pkc_codec_available_doc,
"codec_available($module, codec, /)\n--\n\n"
"True if this build supports the codec (id or name); False for a codec it\n"
"lacks or an unknown id.");

static PyObject *
pkc_py_codec_available(PyObject *Py_UNUSED(module), PyObject *arg)
{
    int codec;

    if (PyLong_Check(arg)) {
        long v = PyLong_AsLong(arg);
        if (v == -1 && PyErr_Occurred())
            return NULL;
        return PyBool_FromLong(v >= INT_MIN && v <= INT_MAX &&
                               pkc_codec_available((int)v));
    }
    if (codec_from_object(arg, &codec) < 0)
        return NULL;
    return PyBool_FromLong(pkc_codec_available(codec));
}

PyDoc_STRVAR(pkc_available_codecs_doc,
"available_codecs($module, /)\n--\n\n"
"The names of the codecs this build supports, in id order, e.g.\n"
"('none', 'gzip', 'snappy', 'lz4', 'zstd').");

static PyObject *
pkc_py_available_codecs(PyObject *Py_UNUSED(module),
                        PyObject *Py_UNUSED(ignored))
{
    PyObject *names = NULL, *name = NULL, *result = NULL;

    names = PyList_New(0);
    if (names == NULL)
        return NULL;
    for (int c = PKC_CODEC_NONE; c <= PKC_CODEC_ZSTD; c++) {
        if (!pkc_codec_available(c))
            continue;
        name = PyUnicode_FromString(pkc_codec_name(c));
        if (name == NULL || PyList_Append(names, name) < 0)
            goto done;
        Py_CLEAR(name);
    }
    result = PyList_AsTuple(names);
done:
    Py_XDECREF(name);
    Py_DECREF(names);
    return result;
}

static PyMethodDef pkc_compress_methods[] = {
    {"compress", PKC_CFUNC(pkc_py_compress), METH_VARARGS | METH_KEYWORDS,
     pkc_compress_doc},
    {"decompress", PKC_CFUNC(pkc_py_decompress),
     METH_VARARGS | METH_KEYWORDS, pkc_decompress_doc},
    {"snappy_compress_raw", pkc_py_snappy_compress_raw, METH_O,
     pkc_snappy_compress_raw_doc},
    {"codec_available", pkc_py_codec_available, METH_O,
     pkc_codec_available_doc},
    {"available_codecs", pkc_py_available_codecs, METH_NOARGS,
     pkc_available_codecs_doc},
    {NULL}
};

int
pkc_compress_exec(PyObject *module, pkc_state *Py_UNUSED(st))
{
    if (PyModule_AddFunctions(module, pkc_compress_methods) < 0)
        return -1;
    if (PyModule_AddIntConstant(module, "DECOMPRESS_MAX_DEFAULT",
                                (long)PKC_DECOMPRESS_MAX_DEFAULT) < 0)
        return -1;
    return 0;
}
