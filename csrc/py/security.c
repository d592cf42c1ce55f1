/*
 * security.c - _core.Security, the Python face of a pkc_security
 * (csrc/wire/security.h): a client's TLS context and SASL credentials,
 * made once by the Python layer (KafkaClient) and handed to every
 * Connection, Fetcher and ProducerCore of the client.
 *
 * The type is final and holds no Python references, so it takes no part
 * in GC.  Its repr names the settings but never a password, key password
 * or token.
 */
#include "module.h"

#include "sasl.h"
#include "security.h"
#include "tls.h"

typedef struct {
    PyObject_HEAD
    pkc_security *sec;
    int tls;              /* a TLS context is set */
    int verify_hostname;
} SecurityObject;

#define Security_CAST(op) ((SecurityObject *)(op))

/* A str/bytes argument as a C string (NULL for None); *len its length.
 * Returns 0, or -1 with TypeError/ValueError set. */
static int
Security_text(PyObject *obj, const char *what, const char **out,
              Py_ssize_t *len)
{
    *out = NULL;
    *len = 0;
    if (obj == NULL || obj == Py_None)
        return 0;
    if (PyUnicode_Check(obj))
        *out = PyUnicode_AsUTF8AndSize(obj, len);
    else if (PyBytes_Check(obj))
        *out = PyBytes_AS_STRING(obj), *len = PyBytes_GET_SIZE(obj);
    else
        PyErr_Format(PyExc_TypeError, "%s must be str, bytes or None, not %s",
                     what, Py_TYPE(obj)->tp_name);
    if (*out == NULL)
        return -1;
    if ((Py_ssize_t)strlen(*out) != *len) {
        PyErr_Format(PyExc_ValueError, "%s contains a NUL character", what);
        return -1;
    }
    return 0;
}

/* The TLS context of the constructor's arguments, or NULL with an
 * exception set. */
static pkc_tls_ctx *
Security_make_tls(pkc_state *st, PyObject *const *files, PyObject *password,
                  int verify_hostname)
{
    static const char *const names[] = {"cafile", "capath", "certfile",
                                        "keyfile", "crlfile"};
    const char *paths[5];
    pkc_tls_config cfg;
    pkc_tls_ctx *ctx = NULL;
    Py_ssize_t len, pw_len;
    char why[512];
    int rc;

    for (int i = 0; i < 5; i++)
        if (Security_text(files[i], names[i], &paths[i], &len) < 0)
            return NULL;
    memset(&cfg, 0, sizeof(cfg));
    cfg.cafile = paths[0];
    cfg.capath = paths[1];
    cfg.certfile = paths[2];
    cfg.keyfile = paths[3];
    cfg.crlfile = paths[4];
    if (Security_text(password, "key password", &cfg.key_password,
                      &pw_len) < 0)
        return NULL;
    cfg.key_password_len = (size_t)pw_len;
    cfg.verify_hostname = verify_hostname;
    Py_BEGIN_ALLOW_THREADS
    rc = pkc_tls_ctx_new(&cfg, &ctx, why, sizeof(why));
    Py_END_ALLOW_THREADS
    if (rc == PKC_ERR_NOMEM)
        return (pkc_tls_ctx *)PyErr_NoMemory();
    if (rc != PKC_OK)
        return (pkc_tls_ctx *)pkc_raise(
            rc == PKC_ERR_UNSUPPORTED ? st->SslUnavailableError
                                      : st->SslError,
            "%s", why);
    return ctx;
}

/* The mechanism named `obj` (None: PKC_SASL_NONE), or -1 with ValueError. */
static int
Security_mechanism(PyObject *obj)
{
    const char *name;
    Py_ssize_t len;
    int mech;

    if (Security_text(obj, "sasl_mechanism", &name, &len) < 0)
        return -1;
    if (name == NULL)
        return PKC_SASL_NONE;
    mech = pkc_sasl_mechanism_from_name(name, (size_t)len);
    if (mech <= 0) {
        PyErr_Format(PyExc_ValueError, "unknown sasl_mechanism %R: use "
                     "'PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512' or "
                     "'OAUTHBEARER'", obj);
        return -1;
    }
    return mech;
}

static PyObject *
Security_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"tls", "cafile", "capath", "certfile",
                             "keyfile", "key_password", "crlfile",
                             "check_hostname", "sasl_mechanism",
                             "sasl_username", "sasl_password",
                             "scram_max_iterations", NULL};
    PyObject *files[5] = {NULL, NULL, NULL, NULL, NULL}, *key_password = NULL;
    PyObject *mech_obj = NULL, *user_obj = NULL, *pass_obj = NULL;
    int tls = 0, check_hostname = 1;
    unsigned int max_iter = 0;
    pkc_security_config cfg;
    SecurityObject *self;
    Py_ssize_t ulen, plen;
    pkc_state *st;
    char why[512];
    int rc;

    if (!PyArg_ParseTupleAndKeywords(
            args, kwargs, "|$pOOOOOOpOOOI:Security", kwlist, &tls, &files[0],
            &files[1], &files[2], &files[3], &key_password, &files[4],
            &check_hostname, &mech_obj, &user_obj, &pass_obj, &max_iter))
        return NULL;
    st = pkc_state_from_type(type);
    if (st == NULL)
        return NULL;
    memset(&cfg, 0, sizeof(cfg));
    cfg.sasl_mechanism = Security_mechanism(mech_obj);
    if (cfg.sasl_mechanism < 0)
        return NULL;
    if (Security_text(user_obj, "sasl_username", &cfg.username, &ulen) < 0 ||
        Security_text(pass_obj, "sasl_password", &cfg.password, &plen) < 0)
        return NULL;
    cfg.username_len = (size_t)ulen;
    cfg.password_len = (size_t)plen;
    cfg.scram_max_iterations = max_iter;
    self = (SecurityObject *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    if (tls) {
        cfg.tls = Security_make_tls(st, files, key_password, check_hostname);
        if (cfg.tls == NULL)
            goto error;
    }
    rc = pkc_security_new(&cfg, &self->sec, why, sizeof(why));
    pkc_tls_ctx_unref(cfg.tls); /* the security object has its own ref */
    if (rc == PKC_ERR_NOMEM) {
        PyErr_NoMemory();
        goto error;
    }
    if (rc != PKC_OK) {
        pkc_raise(rc == PKC_ERR_UNSUPPORTED ? st->SslUnavailableError
                                            : PyExc_ValueError, "%s", why);
        goto error;
    }
    self->tls = tls;
    self->verify_hostname = tls && check_hostname;
    return (PyObject *)self;

error:
    Py_DECREF(self);
    return NULL;
}

static void
Security_dealloc(PyObject *op)
{
    SecurityObject *self = Security_CAST(op);
    PyTypeObject *tp = Py_TYPE(op);

    pkc_security_unref(self->sec);
    tp->tp_free(op);
    Py_DECREF(tp);
}

static PyObject *
Security_repr(PyObject *op)
{
    SecurityObject *self = Security_CAST(op);
    int mech = pkc_security_sasl_mechanism(self->sec);

    return PyUnicode_FromFormat(
        "<pykafka_c._core.Security tls=%s%s sasl=%s>",
        self->tls ? "on" : "off",
        self->tls ? (self->verify_hostname ? " (host names checked)"
                                           : " (host names not checked)")
                  : "",
        mech == PKC_SASL_NONE ? "none" : pkc_sasl_mechanism_name(mech));
}

PyDoc_STRVAR(Security_set_token_doc,
"set_token($self, token, /)\n--\n\n"
"Give an OAUTHBEARER client its current bearer token (str or bytes).\n"
"Authentications that start afterwards use it; ValueError for a client\n"
"of another mechanism or a token with characters a bearer token cannot\n"
"have.");

static PyObject *
Security_set_token(PyObject *op, PyObject *arg)
{
    SecurityObject *self = Security_CAST(op);
    const char *token;
    Py_ssize_t len;
    char why[256];
    int rc;

    if (Security_text(arg, "token", &token, &len) < 0)
        return NULL;
    if (token == NULL) {
        PyErr_SetString(PyExc_TypeError, "token must be str or bytes");
        return NULL;
    }
    rc = pkc_security_set_token(self->sec, token, (size_t)len, why,
                                sizeof(why));
    if (rc == PKC_ERR_NOMEM)
        return PyErr_NoMemory();
    if (rc != PKC_OK) {
        PyErr_SetString(PyExc_ValueError, why);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef Security_methods[] = {
    {"set_token", Security_set_token, METH_O, Security_set_token_doc},
    {NULL}
};

static PyObject *
Security_get_tls(PyObject *op, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(Security_CAST(op)->tls);
}

static PyObject *
Security_get_check_hostname(PyObject *op, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(Security_CAST(op)->verify_hostname);
}

static PyObject *
Security_get_sasl_mechanism(PyObject *op, void *Py_UNUSED(closure))
{
    int mech = pkc_security_sasl_mechanism(Security_CAST(op)->sec);

    if (mech == PKC_SASL_NONE)
        Py_RETURN_NONE;
    return PyUnicode_FromString(pkc_sasl_mechanism_name(mech));
}

static PyObject *
Security_get_has_credentials(PyObject *op, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(
        pkc_security_has_credentials(Security_CAST(op)->sec));
}

static PyGetSetDef Security_getset[] = {
    {"tls", Security_get_tls, NULL, "True when connections use TLS.", NULL},
    {"check_hostname", Security_get_check_hostname, NULL,
     "True when the broker's certificate must name the host dialled.", NULL},
    {"sasl_mechanism", Security_get_sasl_mechanism, NULL,
     "The SASL mechanism's name, or None.", NULL},
    {"has_credentials", Security_get_has_credentials, NULL,
     "False while an OAUTHBEARER client has no token yet.", NULL},
    {NULL}
};

PyDoc_STRVAR(Security_doc,
"Security(*, tls=False, cafile=None, capath=None, certfile=None,\n"
"         keyfile=None, key_password=None, crlfile=None,\n"
"         check_hostname=True, sasl_mechanism=None, sasl_username=None,\n"
"         sasl_password=None, scram_max_iterations=0)\n"
"--\n\n"
"How a client's connections set up: TLS (the trusted CAs from cafile\n"
"and/or capath, or the system's store when neither is given; a client\n"
"certificate and key for mutual TLS; a CRL; the host-name check) and a\n"
"SASL mechanism ('PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512',\n"
"'OAUTHBEARER') with its credentials.  Files are read here: a file that\n"
"cannot be loaded or a wrong key password raises SslError now.  The\n"
"object is shared by every connection of a client.");

static PyType_Slot Security_slots[] = {
    {Py_tp_new, Security_new},
    {Py_tp_dealloc, Security_dealloc},
    {Py_tp_repr, Security_repr},
    {Py_tp_methods, Security_methods},
    {Py_tp_getset, Security_getset},
    {Py_tp_doc, (void *)Security_doc},
    {0, NULL}
};

static PyType_Spec Security_spec = {
    .name = "pykafka_c._core.Security",
    .basicsize = sizeof(SecurityObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = Security_slots,
};

int
pkc_security_arg(pkc_state *st, PyObject *obj, pkc_security **out)
{
    *out = NULL;
    if (obj == NULL || obj == Py_None)
        return 0;
    if (!Py_IS_TYPE(obj, st->SecurityType)) {
        PyErr_Format(PyExc_TypeError, "security must be a "
                     "pykafka_c._core.Security or None, not %s",
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    *out = Security_CAST(obj)->sec;
    return 0;
}

int
pkc_security_exec(PyObject *module, pkc_state *st)
{
    PyObject *tp = PyType_FromModuleAndSpec(module, &Security_spec, NULL);

    if (tp == NULL)
        return -1;
    st->SecurityType = (PyTypeObject *)tp; /* state owns this reference */
    if (PyModule_AddType(module, st->SecurityType) < 0)
        return -1;
    if (PyModule_AddIntConstant(module, "HAVE_TLS", pkc_tls_available()) < 0)
        return -1;
    return PyModule_AddStringConstant(module, "TLS_LIBRARY",
                                      pkc_tls_library_version());
}
