/*
 * tls.c - TLS sessions on OpenSSL for broker connections (see tls.h).
 */
#include "tls.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef PKC_HAVE_OPENSSL

#include <arpa/inet.h>
#include <poll.h>
#include <stdatomic.h>

#include <openssl/err.h>
#include <openssl/opensslv.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

struct pkc_tls_ctx {
    SSL_CTX *ssl_ctx;
    atomic_int refs;
    int verify_hostname;
};

struct pkc_tls {
    SSL *ssl;
    int handshake_done;
    char error[320];
};

/* The passphrase of an encrypted key, for OpenSSL's callback. */
typedef struct {
    const char *password;
    size_t len;
} tls_password;

int
pkc_tls_available(void)
{
    return 1;
}

const char *
pkc_tls_library_version(void)
{
    return OpenSSL_version(OPENSSL_VERSION);
}

/* ------------------------------------------------------------- errors */

/* printf into buf. */
static void
tls_format(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
tls_format(char *buf, size_t len, const char *fmt, ...)
{
    va_list va;

    if (buf == NULL || len == 0)
        return;
    va_start(va, fmt);
    vsnprintf(buf, len, fmt, va);
    va_end(va);
}

/* The reason of OpenSSL's oldest queued error ("certificate verify
 * failed"), or `fallback`; empties the queue. */
static const char *
tls_queue_reason(char *buf, size_t len, const char *fallback)
{
    unsigned long code = ERR_get_error();
    const char *reason;

    ERR_clear_error();
    if (code == 0)
        return fallback;
    reason = ERR_reason_error_string(code);
    if (reason != NULL)
        tls_format(buf, len, "%s", reason);
    else
        ERR_error_string_n(code, buf, len);
    return buf;
}

/* ------------------------------------------------------------- context */

static int
tls_password_cb(char *buf, int size, int rwflag, void *userdata)
{
    const tls_password *pw = userdata;
    size_t n;

    (void)rwflag;
    if (pw == NULL || pw->password == NULL || size <= 0)
        return 0;
    n = pw->len < (size_t)size ? pw->len : (size_t)size;
    memcpy(buf, pw->password, n);
    return (int)n;
}

/* Where the trusted CAs come from. */
static int
tls_ctx_load_trust(SSL_CTX *c, const pkc_tls_config *cfg, char *errbuf,
                   size_t errlen)
{
    char why[160];

    if (cfg->cafile == NULL && cfg->capath == NULL) {
        if (SSL_CTX_set_default_verify_paths(c) == 1)
            return PKC_OK;
        tls_format(errbuf, errlen, "cannot load the system's default CA "
                   "certificates: %s",
                   tls_queue_reason(why, sizeof(why), "unknown error"));
        return PKC_ERR_TLS;
    }
    if (SSL_CTX_load_verify_locations(c, cfg->cafile, cfg->capath) == 1)
        return PKC_OK;
    tls_format(errbuf, errlen, "cannot load the CA certificates from %s%s%s: "
               "%s", cfg->cafile ? cfg->cafile : "",
               cfg->cafile && cfg->capath ? " and " : "",
               cfg->capath ? cfg->capath : "",
               tls_queue_reason(why, sizeof(why), "unreadable"));
    return PKC_ERR_TLS;
}

/* The client certificate and key (mutual TLS). */
static int
tls_ctx_load_identity(SSL_CTX *c, const pkc_tls_config *cfg, char *errbuf,
                      size_t errlen)
{
    const char *keyfile = cfg->keyfile ? cfg->keyfile : cfg->certfile;
    tls_password pw = {cfg->key_password, cfg->key_password_len};
    char why[160];
    int ok;

    if (cfg->certfile == NULL) {
        if (cfg->keyfile == NULL)
            return PKC_OK;
        tls_format(errbuf, errlen, "a client key (%s) was given without its "
                   "certificate (certfile)", cfg->keyfile);
        return PKC_ERR_TLS;
    }
    if (SSL_CTX_use_certificate_chain_file(c, cfg->certfile) != 1) {
        tls_format(errbuf, errlen, "cannot load the client certificate from "
                   "%s: %s", cfg->certfile,
                   tls_queue_reason(why, sizeof(why), "unreadable"));
        return PKC_ERR_TLS;
    }
    SSL_CTX_set_default_passwd_cb(c, tls_password_cb);
    SSL_CTX_set_default_passwd_cb_userdata(c, &pw);
    ok = SSL_CTX_use_PrivateKey_file(c, keyfile, SSL_FILETYPE_PEM) == 1;
    /* The passphrase is needed only here: forget where it lives. */
    SSL_CTX_set_default_passwd_cb(c, NULL);
    SSL_CTX_set_default_passwd_cb_userdata(c, NULL);
    if (!ok) {
        tls_format(errbuf, errlen, "cannot load the client key from %s: %s%s",
                   keyfile, tls_queue_reason(why, sizeof(why), "unreadable"),
                   cfg->key_password ? " (is the key password right?)"
                                     : " (is the key encrypted? give its "
                                       "password)");
        return PKC_ERR_TLS;
    }
    if (SSL_CTX_check_private_key(c) != 1) {
        tls_format(errbuf, errlen, "the client key in %s does not match the "
                   "certificate in %s", keyfile, cfg->certfile);
        ERR_clear_error();
        return PKC_ERR_TLS;
    }
    return PKC_OK;
}

/* A CRL file: broker certificates it revokes are refused (leaf check). */
static int
tls_ctx_load_crl(SSL_CTX *c, const char *crlfile, char *errbuf, size_t errlen)
{
    X509_STORE *store = SSL_CTX_get_cert_store(c);
    X509_LOOKUP *lookup;
    char why[160];

    if (crlfile == NULL)
        return PKC_OK;
    lookup = X509_STORE_add_lookup(store, X509_LOOKUP_file());
    if (lookup == NULL ||
        X509_load_crl_file(lookup, crlfile, X509_FILETYPE_PEM) <= 0) {
        tls_format(errbuf, errlen, "cannot load the CRL from %s: %s", crlfile,
                   tls_queue_reason(why, sizeof(why), "unreadable"));
        return PKC_ERR_TLS;
    }
    X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
    return PKC_OK;
}

int
pkc_tls_ctx_new(const pkc_tls_config *cfg, pkc_tls_ctx **out, char *errbuf,
                size_t errlen)
{
    pkc_tls_ctx *ctx;
    SSL_CTX *c;
    long options = 0;
    int rc;

    *out = NULL;
    ERR_clear_error();
    ctx = calloc(1, sizeof(*ctx));
    c = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL || c == NULL) {
        free(ctx);
        SSL_CTX_free(c);
        tls_format(errbuf, errlen, "out of memory making a TLS context");
        return PKC_ERR_NOMEM;
    }
    SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_mode(c, SSL_MODE_ENABLE_PARTIAL_WRITE |
                            SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
    /* A broker that closes without close_notify is an EOF, not an error. */
    options |= SSL_OP_IGNORE_UNEXPECTED_EOF;
#endif
    options |= SSL_OP_NO_RENEGOTIATION;
    SSL_CTX_set_options(c, options);
    rc = tls_ctx_load_trust(c, cfg, errbuf, errlen);
    if (rc == PKC_OK)
        rc = tls_ctx_load_identity(c, cfg, errbuf, errlen);
    if (rc == PKC_OK)
        rc = tls_ctx_load_crl(c, cfg->crlfile, errbuf, errlen);
    if (rc != PKC_OK) {
        SSL_CTX_free(c);
        free(ctx);
        return rc;
    }
    ctx->ssl_ctx = c;
    ctx->verify_hostname = cfg->verify_hostname ? 1 : 0;
    atomic_init(&ctx->refs, 1);
    *out = ctx;
    return PKC_OK;
}

pkc_tls_ctx *
pkc_tls_ctx_ref(pkc_tls_ctx *ctx)
{
    if (ctx != NULL)
        atomic_fetch_add(&ctx->refs, 1);
    return ctx;
}

void
pkc_tls_ctx_unref(pkc_tls_ctx *ctx)
{
    if (ctx == NULL || atomic_fetch_sub(&ctx->refs, 1) != 1)
        return;
    SSL_CTX_free(ctx->ssl_ctx);
    free(ctx);
}

int
pkc_tls_ctx_verifies_hostname(const pkc_tls_ctx *ctx)
{
    return ctx != NULL && ctx->verify_hostname;
}

/* ------------------------------------------------------------- session */

static int
tls_is_ip_literal(const char *host)
{
    unsigned char addr[16];

    return inet_pton(AF_INET, host, addr) == 1 ||
           inet_pton(AF_INET6, host, addr) == 1;
}

/* SNI and the host-name check for `host`. */
static int
tls_set_peer_name(pkc_tls_ctx *ctx, SSL *ssl, const char *host)
{
    int is_ip = tls_is_ip_literal(host);

    if (!is_ip && SSL_set_tlsext_host_name(ssl, host) != 1)
        return 0;
    if (!ctx->verify_hostname)
        return 1;
    SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (is_ip)
        return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) == 1;
    return SSL_set1_host(ssl, host) == 1;
}

int
pkc_tls_new(pkc_tls_ctx *ctx, int fd, const char *host, pkc_tls **out,
            char *errbuf, size_t errlen)
{
    pkc_tls *tls;
    char why[160];

    *out = NULL;
    ERR_clear_error();
    tls = calloc(1, sizeof(*tls));
    if (tls == NULL) {
        tls_format(errbuf, errlen, "out of memory starting TLS");
        return PKC_ERR_NOMEM;
    }
    tls->ssl = SSL_new(ctx->ssl_ctx);
    if (tls->ssl == NULL || SSL_set_fd(tls->ssl, fd) != 1 ||
        !tls_set_peer_name(ctx, tls->ssl, host)) {
        tls_format(errbuf, errlen, "cannot start TLS to %s: %s", host,
                   tls_queue_reason(why, sizeof(why), "out of memory"));
        SSL_free(tls->ssl);
        free(tls);
        return PKC_ERR_TLS;
    }
    SSL_set_connect_state(tls->ssl);
    *out = tls;
    return PKC_OK;
}

void
pkc_tls_free(pkc_tls *tls)
{
    if (tls == NULL)
        return;
    SSL_free(tls->ssl);
    free(tls);
}

/* Why the broker's certificate was refused, with a hint where one helps. */
static void
tls_verify_failure(pkc_tls *tls, long result)
{
    const char *hint = "";

    if (result == X509_V_ERR_HOSTNAME_MISMATCH ||
        result == X509_V_ERR_IP_ADDRESS_MISMATCH)
        hint = " (the certificate does not name the host that was dialled)";
    else if (result == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
             result == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN ||
             result == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT)
        hint = " (is the CA file the CA that signed the broker's "
               "certificate?)";
    tls_format(tls->error, sizeof(tls->error),
               "TLS handshake failed: the broker's certificate did not "
               "verify: %s%s", X509_verify_cert_error_string(result), hint);
}

/* An alert received right after or during the handshake. */
static int
tls_alert_is_client_cert(unsigned long code)
{
    int reason = ERR_GET_REASON(code);

    return reason == SSL_R_SSLV3_ALERT_BAD_CERTIFICATE ||
           reason == SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED ||
           reason == SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE;
}

/*
 * Turn SSL_get_error's answer `sslerr` for an operation named `what`
 * into a status, *want and a sentence.
 */
static int
tls_status(pkc_tls *tls, int sslerr, const char *what, short *want,
           int *err)
{
    unsigned long code;
    char why[200];
    long vr;

    *want = 0;
    if (err != NULL)
        *err = 0;
    switch (sslerr) {
    case SSL_ERROR_WANT_READ:
        *want = POLLIN;
        return PKC_IN_PROGRESS;
    case SSL_ERROR_WANT_WRITE:
        *want = POLLOUT;
        return PKC_IN_PROGRESS;
    case SSL_ERROR_ZERO_RETURN:
        tls_format(tls->error, sizeof(tls->error), "the broker closed the "
                   "TLS connection%s", tls->handshake_done ? "" :
                   " during the handshake (is the port a PLAINTEXT or "
                   "SASL_PLAINTEXT listener?)");
        /* A handshake that ends this way is a configuration problem. */
        return tls->handshake_done ? PKC_ERR_CLOSED : PKC_ERR_TLS;
    case SSL_ERROR_SYSCALL:
        if (errno != 0 && ERR_peek_error() == 0) {
            if (err != NULL)
                *err = errno;
            tls_format(tls->error, sizeof(tls->error), "%s failed: %s", what,
                       strerror(errno));
            return PKC_ERR_IO;
        }
        ERR_clear_error();
        tls_format(tls->error, sizeof(tls->error), "the broker closed the "
                   "connection%s", tls->handshake_done ? "" :
                   " during the TLS handshake (is the port a PLAINTEXT or "
                   "SASL_PLAINTEXT listener?)");
        return tls->handshake_done ? PKC_ERR_CLOSED : PKC_ERR_TLS;
    default:
        break;
    }
    vr = SSL_get_verify_result(tls->ssl);
    if (!tls->handshake_done && vr != X509_V_OK) {
        ERR_clear_error();
        tls_verify_failure(tls, vr);
        return PKC_ERR_TLS;
    }
    code = ERR_peek_error();
    tls_queue_reason(why, sizeof(why), "unknown TLS error");
    if (tls_alert_is_client_cert(code))
        tls_format(tls->error, sizeof(tls->error), "the broker refused the "
                   "TLS connection (%s): does the listener require a client "
                   "certificate (mutual TLS) that its truststore accepts?",
                   why);
    else if (ERR_GET_REASON(code) == SSL_R_WRONG_VERSION_NUMBER)
        tls_format(tls->error, sizeof(tls->error), "TLS %s failed: the "
                   "broker did not answer with TLS (%s): is the port a "
                   "PLAINTEXT or SASL_PLAINTEXT listener?", what, why);
    else
        tls_format(tls->error, sizeof(tls->error), "TLS %s failed: %s", what,
                   why);
    return PKC_ERR_TLS;
}

int
pkc_tls_handshake(pkc_tls *tls, short *want)
{
    int r;

    ERR_clear_error();
    errno = 0;
    r = SSL_connect(tls->ssl);
    if (r == 1) {
        long vr = SSL_get_verify_result(tls->ssl);

        if (!SSL_get0_peer_certificate(tls->ssl)) {
            tls_format(tls->error, sizeof(tls->error), "TLS handshake "
                       "failed: the broker sent no certificate");
            return PKC_ERR_TLS;
        }
        if (vr != X509_V_OK) {
            tls_verify_failure(tls, vr);
            return PKC_ERR_TLS;
        }
        tls->handshake_done = 1;
        *want = 0;
        return PKC_OK;
    }
    return tls_status(tls, SSL_get_error(tls->ssl, r), "handshake", want,
                      NULL);
}

int
pkc_tls_read(pkc_tls *tls, void *buf, size_t len, size_t *got, short *want,
             int *err)
{
    size_t n = 0;
    int r;

    *got = 0;
    ERR_clear_error();
    errno = 0;
    r = SSL_read_ex(tls->ssl, buf, len, &n);
    if (r == 1) {
        *got = n;
        *want = 0;
        if (err != NULL)
            *err = 0;
        return PKC_OK;
    }
    return tls_status(tls, SSL_get_error(tls->ssl, r), "read", want, err);
}

int
pkc_tls_write(pkc_tls *tls, const void *buf, size_t len, size_t *put,
              short *want, int *err)
{
    size_t n = 0;
    int r;

    *put = 0;
    ERR_clear_error();
    errno = 0;
    r = SSL_write_ex(tls->ssl, buf, len, &n);
    if (r == 1) {
        *put = n;
        *want = 0;
        if (err != NULL)
            *err = 0;
        return PKC_OK;
    }
    return tls_status(tls, SSL_get_error(tls->ssl, r), "write", want, err);
}

size_t
pkc_tls_pending(const pkc_tls *tls)
{
    int n = SSL_pending(tls->ssl);

    return n > 0 ? (size_t)n : 0;
}

const char *
pkc_tls_error(const pkc_tls *tls)
{
    return tls->error[0] ? tls->error : "TLS error";
}

const char *
pkc_tls_describe(const pkc_tls *tls, char *buf, size_t len)
{
    if (len == 0)
        return "";
    buf[0] = '\0';
    if (tls != NULL && tls->handshake_done)
        tls_format(buf, len, "%s %s", SSL_get_version(tls->ssl),
                   SSL_get_cipher_name(tls->ssl));
    return buf;
}

#else /* !PKC_HAVE_OPENSSL */

/* Without OpenSSL no context can be made, so no session ever exists. */

int
pkc_tls_available(void)
{
    return 0;
}

const char *
pkc_tls_library_version(void)
{
    return "none: this build has no OpenSSL";
}

int
pkc_tls_ctx_new(const pkc_tls_config *cfg, pkc_tls_ctx **out, char *errbuf,
                size_t errlen)
{
    (void)cfg;
    *out = NULL;
    if (errbuf != NULL && errlen > 0)
        snprintf(errbuf, errlen, "TLS is not available: pykafka_c was built "
                 "without OpenSSL (install the OpenSSL headers, e.g. "
                 "Debian's libssl-dev, and reinstall pykafka_c)");
    return PKC_ERR_UNSUPPORTED;
}

pkc_tls_ctx *
pkc_tls_ctx_ref(pkc_tls_ctx *ctx)
{
    return ctx;
}

void
pkc_tls_ctx_unref(pkc_tls_ctx *ctx)
{
    (void)ctx;
}

int
pkc_tls_ctx_verifies_hostname(const pkc_tls_ctx *ctx)
{
    (void)ctx;
    return 0;
}

int
pkc_tls_new(pkc_tls_ctx *ctx, int fd, const char *host, pkc_tls **out,
            char *errbuf, size_t errlen)
{
    (void)ctx;
    (void)fd;
    (void)host;
    *out = NULL;
    if (errbuf != NULL && errlen > 0)
        snprintf(errbuf, errlen, "TLS is not available in this build");
    return PKC_ERR_UNSUPPORTED;
}

void
pkc_tls_free(pkc_tls *tls)
{
    (void)tls;
}

int
pkc_tls_handshake(pkc_tls *tls, short *want)
{
    (void)tls;
    *want = 0;
    return PKC_ERR_UNSUPPORTED;
}

int
pkc_tls_read(pkc_tls *tls, void *buf, size_t len, size_t *got, short *want,
             int *err)
{
    (void)tls;
    (void)buf;
    (void)len;
    *got = 0;
    *want = 0;
    if (err != NULL)
        *err = 0;
    return PKC_ERR_UNSUPPORTED;
}

int
pkc_tls_write(pkc_tls *tls, const void *buf, size_t len, size_t *put,
              short *want, int *err)
{
    (void)tls;
    (void)buf;
    (void)len;
    *put = 0;
    *want = 0;
    if (err != NULL)
        *err = 0;
    return PKC_ERR_UNSUPPORTED;
}

size_t
pkc_tls_pending(const pkc_tls *tls)
{
    (void)tls;
    return 0;
}

const char *
pkc_tls_error(const pkc_tls *tls)
{
    (void)tls;
    return "TLS is not available in this build";
}

const char *
pkc_tls_describe(const pkc_tls *tls, char *buf, size_t len)
{
    (void)tls;
    if (len > 0)
        buf[0] = '\0';
    return buf;
}

#endif /* PKC_HAVE_OPENSSL */
