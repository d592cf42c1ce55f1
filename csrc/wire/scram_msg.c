/*
 * scram_msg.c - SCRAM messages: the strict parser of server-first and
 * server-final, the builders of client-first and client-final (see
 * scram.h).  No crypto: built with or without OpenSSL.
 *
 * A server message is a list of "x=value" attributes separated by ','
 * (RFC 5802 section 5).  Every byte is read through a pkc_reader.
 */
#include "scram.h"

#include <string.h>

#include "base64.h"

#define SERVER_FIRST "SCRAM server-first message"
#define SERVER_FINAL "SCRAM server-final message"

typedef struct {
    char name;        /* the attribute letter */
    pkc_slice value;  /* non-empty, no NUL, no ',' */
    int more;         /* 1 if a ',' and another attribute follow */
} scram_attr;

static int
is_ascii_letter(uint8_t ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

int
pkc_scram_is_printable(const uint8_t *s, size_t len)
{
    if (len == 0)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (s[i] < 0x21 || s[i] > 0x7e || s[i] == ',')
            return 0;
    return 1;
}

/* Read one attribute "x=value" and the ',' after it, if any. */
static int
scram_read_attr(pkc_reader *r, scram_attr *a, const char *which, char *err,
                size_t errlen)
{
    pkc_slice head;
    const uint8_t *comma;
    size_t at = pkc_reader_offset(r), n;

    a->more = 0;
    if (pkc_read_raw(r, 2, &head, "attribute") != PKC_OK)
        return pkc_sasl_errorf(err, errlen, PKC_ERR_INVALID,
                               "%s ends at byte %zu where an attribute "
                               "should start", which, at);
    if (!is_ascii_letter(head.ptr[0]) || head.ptr[1] != '=')
        return pkc_sasl_errorf(err, errlen, PKC_ERR_INVALID,
                               "%s has no attribute of the form x=value "
                               "at byte %zu", which, at);
    a->name = (char)head.ptr[0];
    comma = memchr(r->pos, ',', pkc_reader_remaining(r));
    n = comma ? (size_t)(comma - r->pos) : pkc_reader_remaining(r);
    if (pkc_read_raw(r, n, &a->value, "attribute value") != PKC_OK)
        return pkc_sasl_errorf(err, errlen, PKC_ERR_INVALID,
                               "%s: attribute %c= is too long", which,
                               a->name);
    if (n == 0)
        return pkc_sasl_errorf(err, errlen, PKC_ERR_INVALID,
                               "%s: attribute %c= is empty", which, a->name);
    if (memchr(a->value.ptr, 0, n) != NULL)
        return pkc_sasl_errorf(err, errlen, PKC_ERR_INVALID,
                               "%s: attribute %c= contains a NUL byte",
                               which, a->name);
    if (comma) {
        pkc_read_skip(r, 1, ",");
        a->more = 1;
    }
    return PKC_OK;
}

/* Read the next attribute, which must be `name`. */
static int
scram_expect_attr(pkc_reader *r, scram_attr *a, char name, const char *which,
                  char *err, size_t errlen)
{
    char previous = a->name;

    if (!a->more)
        return pkc_sasl_errorf(err, errlen, PKC_ERR_INVALID,
                               "%s ends after %c=: %c= is missing", which,
                               previous, name);
    if (scram_read_attr(r, a, which, err, errlen) != PKC_OK)
        return PKC_ERR_INVALID;
    if (a->name != name)
        return pkc_sasl_errorf(err, errlen, PKC_ERR_INVALID,
                               "%s has %c= where %c= should follow %c=",
                               which, a->name, name, previous);
    return PKC_OK;
}

/* e= instead of the expected message: the server's error, quoted. */
static int
scram_server_error(const scram_attr *a, const char *which, char *err,
                   size_t errlen)
{
    char quoted[PKC_SASL_MAX_QUOTED + 8];

    pkc_sasl_quote_server_text(quoted, sizeof(quoted), a->value.ptr,
                               (size_t)a->value.len);
    return pkc_sasl_errorf(err, errlen, PKC_ERR_AUTH,
                           "the broker sent a SCRAM error instead of the %s: "
                           "e=%s", which + strlen("SCRAM "), quoted);
}

/* The first attribute: e= (error) and m= (mandatory extension) end the
 * exchange; otherwise it must be `name`. */
static int
scram_read_first_attr(pkc_reader *r, scram_attr *a, char name,
                      const char *which, char *err, size_t errlen)
{
    if (scram_read_attr(r, a, which, err, errlen) != PKC_OK)
        return PKC_ERR_INVALID;
    if (a->name == 'e')
        return scram_server_error(a, which, err, errlen);
    if (a->name == 'm')
        return pkc_sasl_errorf(err, errlen, PKC_ERR_INVALID,
                               "%s asks for a mandatory extension (m=), "
                               "which RFC 5802 says must fail", which);
    if (a->name != name)
        return pkc_sasl_errorf(err, errlen, PKC_ERR_INVALID,
                               "%s starts with %c= instead of %c=", which,
                               a->name, name);
    return PKC_OK;
}

/* After the defined attributes: only extensions with letters SCRAM does
 * not use, which are skipped. */
static int
scram_skip_extensions(pkc_reader *r, scram_attr *a, const char *which,
                      char *err, size_t errlen)
{
    while (a->more) {
        if (scram_read_attr(r, a, which, err, errlen) != PKC_OK)
            return PKC_ERR_INVALID;
        if (strchr("anmrcsipve", a->name) != NULL)
            return pkc_sasl_errorf(err, errlen, PKC_ERR_INVALID,
                                   "%s: attribute %c= is repeated or out "
                                   "of place", which, a->name);
    }
    return PKC_OK;
}

/* Check the size, start reading msg and read its first attribute, which
 * must be `name` (see scram_read_first_attr). */
static int
scram_begin(pkc_reader *r, const uint8_t *msg, size_t len, scram_attr *a,
            char name, const char *which, char *err, size_t errlen)
{
    if (len == 0)
        return pkc_sasl_errorf(err, errlen, PKC_ERR_INVALID, "%s is empty",
                               which);
    if (len > PKC_SCRAM_MAX_MESSAGE)
        return pkc_sasl_errorf(err, errlen, PKC_ERR_INVALID,
                               "%s is %zu bytes, over the %d accepted",
                               which, len, PKC_SCRAM_MAX_MESSAGE);
    pkc_reader_init(r, msg, len);
    return scram_read_first_attr(r, a, name, which, err, errlen);
}

/* i=: RFC 5802 posit-number (%x31-39 *DIGIT), at most 2^32 - 1. */
static int
scram_parse_iterations(const scram_attr *a, uint32_t *out, char *err,
                       size_t errlen)
{
    uint64_t n = 0;

    for (int32_t k = 0; k < a->value.len; k++) {
        uint8_t ch = a->value.ptr[k];
        if (ch < '0' || ch > '9' || (k == 0 && ch == '0'))
            return pkc_sasl_errorf(err, errlen, PKC_ERR_INVALID,
                                   "%s: the iteration count i= is not a "
                                   "positive decimal number", SERVER_FIRST);
        n = n * 10 + (uint64_t)(ch - '0');
        if (n > UINT32_MAX)
            return pkc_sasl_errorf(err, errlen, PKC_ERR_INVALID,
                                   "%s: the iteration count i= is over "
                                   "%u", SERVER_FIRST, UINT32_MAX);
    }
    *out = (uint32_t)n;
    return PKC_OK;
}

/* Decode a base64 attribute into out[0..cap). */
static int
scram_decode_base64(const scram_attr *a, uint8_t *out, size_t cap,
                    size_t *out_len, const char *which, char *err,
                    size_t errlen)
{
    int rc = pkc_base64_decode(a->value.ptr, (size_t)a->value.len, out, cap,
                               out_len);

    if (rc == PKC_ERR_TOO_LARGE)
        return pkc_sasl_errorf(err, errlen, PKC_ERR_INVALID,
                               "%s: %c= decodes to more than %zu bytes",
                               which, a->name, cap);
    if (rc != PKC_OK)
        return pkc_sasl_errorf(err, errlen, PKC_ERR_INVALID,
                               "%s: %c= is not valid base64", which,
                               a->name);
    return PKC_OK;
}

int
pkc_scram_parse_server_first(const uint8_t *msg, size_t len,
                             pkc_scram_server_first *out, char *err,
                             size_t errlen)
{
    pkc_reader r;
    scram_attr a;
    int rc;

    memset(out, 0, sizeof(*out));
    rc = scram_begin(&r, msg, len, &a, 'r', SERVER_FIRST, err, errlen);
    if (rc != PKC_OK)
        return rc;
    if (!pkc_scram_is_printable(a.value.ptr, (size_t)a.value.len))
        return pkc_sasl_errorf(err, errlen, PKC_ERR_INVALID,
                               "%s: the nonce r= has a byte that is not "
                               "printable ASCII", SERVER_FIRST);
    out->nonce = a.value;
    if (scram_expect_attr(&r, &a, 's', SERVER_FIRST, err, errlen) != PKC_OK ||
        scram_decode_base64(&a, out->salt, sizeof(out->salt), &out->salt_len,
                            SERVER_FIRST, err, errlen) != PKC_OK ||
        scram_expect_attr(&r, &a, 'i', SERVER_FIRST, err, errlen) != PKC_OK ||
        scram_parse_iterations(&a, &out->iterations, err, errlen) != PKC_OK)
        return PKC_ERR_INVALID;
    return scram_skip_extensions(&r, &a, SERVER_FIRST, err, errlen);
}

int
pkc_scram_parse_server_final(const uint8_t *msg, size_t len,
                             pkc_scram_server_final *out, char *err,
                             size_t errlen)
{
    pkc_reader r;
    scram_attr a;
    int rc;

    memset(out, 0, sizeof(*out));
    if (len == 0)
        return pkc_sasl_errorf(err, errlen, PKC_ERR_INVALID,
                               "%s is empty: the broker sent no server "
                               "signature (v=)", SERVER_FINAL);
    rc = scram_begin(&r, msg, len, &a, 'v', SERVER_FINAL, err, errlen);
    if (rc != PKC_OK)
        return rc;
    if (scram_decode_base64(&a, out->signature, sizeof(out->signature),
                            &out->signature_len, SERVER_FINAL, err,
                            errlen) != PKC_OK)
        return PKC_ERR_INVALID;
    return scram_skip_extensions(&r, &a, SERVER_FINAL, err, errlen);
}

/* ---------------------------------------------------------------- builders */

/* The user name as RFC 5802 saslname: ',' as "=2C", '=' as "=3D". */
static void
scram_write_saslname(pkc_writer *w, const char *user, size_t len)
{
    size_t start = 0;

    for (size_t i = 0; i < len; i++) {
        const char *escaped = user[i] == ',' ? "=2C"
                              : user[i] == '=' ? "=3D" : NULL;
        if (escaped == NULL)
            continue;
        pkc_write_raw(w, user + start, i - start);
        pkc_write_raw(w, escaped, 3);
        start = i + 1;
    }
    pkc_write_raw(w, user + start, len - start);
}

int
pkc_scram_write_client_first(pkc_writer *w, const char *user, size_t user_len,
                             const char *nonce, size_t nonce_len)
{
    pkc_write_raw(w, "n,,n=", 5);
    scram_write_saslname(w, user, user_len);
    pkc_write_raw(w, ",r=", 3);
    pkc_write_raw(w, nonce, nonce_len);
    return w->status;
}

int
pkc_scram_write_client_final_without_proof(pkc_writer *w,
                                           const uint8_t *nonce,
                                           size_t nonce_len)
{
    /* "biws" is base64("n,,"): the gs2 header, no channel binding. */
    pkc_write_raw(w, "c=biws,r=", 9);
    pkc_write_raw(w, nonce, nonce_len);
    return w->status;
}

int
pkc_scram_write_proof(pkc_writer *w, const uint8_t *proof, size_t len)
{
    char text[(PKC_SCRAM_MAX_HASH + 2) / 3 * 4];

    if (len > PKC_SCRAM_MAX_HASH)
        return PKC_ERR_INVALID;
    pkc_write_raw(w, ",p=", 3);
    pkc_write_raw(w, text, pkc_base64_encode(proof, len, text));
    return w->status;
}
