/*
 * sasl.c - SASL mechanism names, the client state machine, PLAIN and
 * OAUTHBEARER (see sasl.h); SCRAM is in scram.c and scram_msg.c.
 *
 * Every mechanism's first message is built when the client is made, so
 * the credentials are checked (and copied) once.  States:
 *
 *   SEND_FIRST --step(NULL)--> AWAIT_SERVER_FIRST (SCRAM)
 *                          \-> AWAIT_OUTCOME      (PLAIN, OAUTHBEARER)
 *   AWAIT_SERVER_FIRST --server-first--> AWAIT_SERVER_FINAL (client-final)
 *   AWAIT_SERVER_FINAL --v= verified--> DONE
 *   AWAIT_OUTCOME --empty answer--> DONE
 *                 --OAUTHBEARER error JSON--> REJECTED (sends 0x01)
 *   REJECTED --any step--> FAILED (PKC_ERR_AUTH)
 * and any failure --> FAILED, which is sticky.
 */
#include "sasl.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "scram.h"

#ifdef PKC_HAVE_OPENSSL
#include <openssl/crypto.h>
#define SCRAM_AVAILABLE 1
#else
#define SCRAM_AVAILABLE 0
#endif

#define SASL_ERROR_MAX 320

typedef enum {
    SASL_SEND_FIRST,
    SASL_AWAIT_SERVER_FIRST,
    SASL_AWAIT_SERVER_FINAL,
    SASL_AWAIT_OUTCOME,
    SASL_REJECTED,
    SASL_DONE,
    SASL_FAILED
} sasl_state;

struct pkc_sasl_client {
    int mechanism;
    sasl_state state;
    int status;            /* the failure, once state is SASL_FAILED */
    pkc_writer out;        /* the message to send; wiped before reuse */
    pkc_scram *scram;      /* SCRAM mechanisms only */
    char error[SASL_ERROR_MAX];
};

/* ------------------------------------------------------------------- names */

static const char *const mechanism_names[] = {
    [PKC_SASL_PLAIN] = "PLAIN",
    [PKC_SASL_SCRAM_SHA_256] = "SCRAM-SHA-256",
    [PKC_SASL_SCRAM_SHA_512] = "SCRAM-SHA-512",
    [PKC_SASL_OAUTHBEARER] = "OAUTHBEARER",
};

#define MECHANISM_COUNT \
    ((int)(sizeof(mechanism_names) / sizeof(mechanism_names[0])))

const char *
pkc_sasl_mechanism_name(int mechanism)
{
    if (mechanism <= PKC_SASL_NONE || mechanism >= MECHANISM_COUNT)
        return NULL;
    return mechanism_names[mechanism];
}

int
pkc_sasl_mechanism_from_name(const char *name, size_t len)
{
    if (name == NULL)
        return -1;
    for (int m = PKC_SASL_NONE + 1; m < MECHANISM_COUNT; m++)
        if (strlen(mechanism_names[m]) == len &&
            memcmp(mechanism_names[m], name, len) == 0)
            return m;
    return -1;
}

int
pkc_sasl_mechanism_available(int mechanism)
{
    switch (mechanism) {
    case PKC_SASL_PLAIN:
    case PKC_SASL_OAUTHBEARER:
        return 1;
    case PKC_SASL_SCRAM_SHA_256:
    case PKC_SASL_SCRAM_SHA_512:
        return SCRAM_AVAILABLE;
    default:
        return 0;
    }
}

/* ----------------------------------------------------------------- helpers */

int
pkc_sasl_errorf(char *err, size_t errlen, int status, const char *fmt, ...)
{
    va_list ap;

    if (err != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return status;
}

void
pkc_sasl_quote_server_text(char *dst, size_t cap, const uint8_t *text,
                           size_t len)
{
    size_t room, shown, o;

    if (cap == 0)
        return;
    room = cap - 1 < PKC_SASL_MAX_QUOTED ? cap - 1 : PKC_SASL_MAX_QUOTED;
    shown = len <= room ? len : (room >= 3 ? room - 3 : 0);
    for (o = 0; o < shown; o++)
        dst[o] = text[o] >= 0x20 && text[o] <= 0x7e ? (char)text[o] : '?';
    while (len > shown && o < room)
        dst[o++] = '.';
    dst[o] = '\0';
}

void
pkc_sasl_wipe(void *p, size_t n)
{
#ifdef PKC_HAVE_OPENSSL
    OPENSSL_cleanse(p, n);
#else
    volatile uint8_t *v = p;
    while (n--)
        *v++ = 0;
#endif
}

/* Wipe the message buffer (it may hold a password or a token) and free
 * it. */
static void
sasl_clear_output(pkc_sasl_client *c)
{
    if (c->out.buf != NULL)
        pkc_sasl_wipe(c->out.buf, c->out.cap);
    pkc_writer_free(&c->out);
    pkc_writer_init(&c->out, 0, 0);
}

/* Enter the sticky failed state with c->error already written, and drop
 * every secret at once. */
static int
sasl_enter_failed(pkc_sasl_client *c, int status)
{
    c->state = SASL_FAILED;
    c->status = status;
    sasl_clear_output(c);
    pkc_scram_free(c->scram);
    c->scram = NULL;
    return status;
}

static int
sasl_fail(pkc_sasl_client *c, int status, const char *sentence)
{
    snprintf(c->error, sizeof(c->error), "%s", sentence);
    return sasl_enter_failed(c, status);
}

/* ------------------------------------------------------------- credentials */

static int
sasl_check_field(const char *what, const char *ptr, size_t len, char *err,
                 size_t errlen)
{
    if (ptr == NULL && len > 0)
        return pkc_sasl_errorf(err, errlen, PKC_ERR_INVALID,
                               "the SASL %s is NULL with length %zu", what,
                               len);
    if (len > PKC_SASL_MAX_CREDENTIAL)
        return pkc_sasl_errorf(err, errlen, PKC_ERR_INVALID,
                               "the SASL %s is %zu bytes, over the %zu "
                               "accepted", what, len, PKC_SASL_MAX_CREDENTIAL);
    return PKC_OK;
}

static int
sasl_check_credentials(const pkc_sasl_credentials *cred, char *err,
                       size_t errlen)
{
    int rc;

    if ((rc = sasl_check_field("user name", cred->username,
                               cred->username_len, err, errlen)) ||
        (rc = sasl_check_field("password", cred->password,
                               cred->password_len, err, errlen)) ||
        (rc = sasl_check_field("token", cred->token, cred->token_len, err,
                               errlen)))
        return rc;
    return PKC_OK;
}

/* Reserve exactly n bytes, so writing the message never reallocates (a
 * reallocation would leave a copy of a secret behind). */
static int
sasl_reserve_output(pkc_sasl_client *c, size_t n, char *err, size_t errlen)
{
    if (pkc_writer_init(&c->out, n, n) != PKC_OK)
        return pkc_sasl_errorf(err, errlen, PKC_ERR_NOMEM,
                               "out of memory making a SASL client");
    return PKC_OK;
}

/* PLAIN (RFC 4616): authzid NUL authcid NUL passwd, authzid empty. */
static int
sasl_build_plain(pkc_sasl_client *c, const pkc_sasl_credentials *cred,
                 char *err, size_t errlen)
{
    if (cred->username_len == 0 || cred->password_len == 0)
        return pkc_sasl_errorf(err, errlen, PKC_ERR_INVALID,
                               "PLAIN needs a non-empty user name and "
                               "password (Kafka refuses empty ones)");
    if (memchr(cred->username, 0, cred->username_len) != NULL ||
        memchr(cred->password, 0, cred->password_len) != NULL)
        return pkc_sasl_errorf(err, errlen, PKC_ERR_INVALID,
                               "the PLAIN user name or password contains a "
                               "NUL byte, PLAIN's separator");
    if (sasl_reserve_output(c, 2 + cred->username_len + cred->password_len,
                            err, errlen) != PKC_OK)
        return PKC_ERR_NOMEM;
    pkc_write_raw(&c->out, "", 1);
    pkc_write_raw(&c->out, cred->username, cred->username_len);
    pkc_write_raw(&c->out, "", 1);
    pkc_write_raw(&c->out, cred->password, cred->password_len);
    return c->out.status;
}

#define OAUTHBEARER_HEAD "n,,\x01" "auth=Bearer "
#define OAUTHBEARER_TAIL "\x01\x01"

/* OAUTHBEARER (RFC 7628, KIP-255): n,,^Aauth=Bearer <token>^A^A. */
static int
sasl_build_oauthbearer(pkc_sasl_client *c, const pkc_sasl_credentials *cred,
                       char *err, size_t errlen)
{
    const size_t head = sizeof(OAUTHBEARER_HEAD) - 1;
    const size_t tail = sizeof(OAUTHBEARER_TAIL) - 1;

    if (cred->token_len == 0)
        return pkc_sasl_errorf(err, errlen, PKC_ERR_INVALID,
                               "OAUTHBEARER needs a token");
    for (size_t k = 0; k < cred->token_len; k++)
        if ((uint8_t)cred->token[k] < 0x21 || (uint8_t)cred->token[k] > 0x7e)
            return pkc_sasl_errorf(err, errlen, PKC_ERR_INVALID,
                                   "the OAUTHBEARER token has a byte that is "
                                   "not printable ASCII (at offset %zu)", k);
    if (sasl_reserve_output(c, head + cred->token_len + tail, err,
                            errlen) != PKC_OK)
        return PKC_ERR_NOMEM;
    pkc_write_raw(&c->out, OAUTHBEARER_HEAD, head);
    pkc_write_raw(&c->out, cred->token, cred->token_len);
    pkc_write_raw(&c->out, OAUTHBEARER_TAIL, tail);
    return c->out.status;
}

static int
sasl_build_scram(pkc_sasl_client *c, const pkc_sasl_credentials *cred,
                 char *err, size_t errlen)
{
    const uint8_t *first;
    size_t len;
    int rc;

    rc = pkc_scram_new(cred, &c->scram, err, errlen);
    if (rc != PKC_OK)
        return rc;
    pkc_scram_client_first(c->scram, &first, &len);
    pkc_write_raw(&c->out, first, len);
    if (c->out.status != PKC_OK)
        return pkc_sasl_errorf(err, errlen, PKC_ERR_NOMEM,
                               "out of memory making a SASL client");
    return PKC_OK;
}

static int
sasl_build_first_message(pkc_sasl_client *c,
                         const pkc_sasl_credentials *cred, char *err,
                         size_t errlen)
{
    switch (cred->mechanism) {
    case PKC_SASL_PLAIN:
        return sasl_build_plain(c, cred, err, errlen);
    case PKC_SASL_OAUTHBEARER:
        return sasl_build_oauthbearer(c, cred, err, errlen);
    case PKC_SASL_SCRAM_SHA_256:
    case PKC_SASL_SCRAM_SHA_512:
        return sasl_build_scram(c, cred, err, errlen);
    default:
        return pkc_sasl_errorf(err, errlen, PKC_ERR_INVALID,
                               "unknown SASL mechanism %d", cred->mechanism);
    }
}

int
pkc_sasl_client_new(const pkc_sasl_credentials *cred, pkc_sasl_client **out,
                    char *errbuf, size_t errlen)
{
    pkc_sasl_client *c;
    int rc;

    *out = NULL;
    if (errbuf != NULL && errlen > 0)
        errbuf[0] = '\0';
    rc = sasl_check_credentials(cred, errbuf, errlen);
    if (rc != PKC_OK)
        return rc;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return pkc_sasl_errorf(errbuf, errlen, PKC_ERR_NOMEM,
                               "out of memory making a SASL client");
    c->mechanism = cred->mechanism;
    c->state = SASL_SEND_FIRST;
    pkc_writer_init(&c->out, 0, 0);
    rc = sasl_build_first_message(c, cred, errbuf, errlen);
    if (rc != PKC_OK) {
        pkc_sasl_client_free(c);
        return rc;
    }
    *out = c;
    return PKC_OK;
}

void
pkc_sasl_client_free(pkc_sasl_client *c)
{
    if (c == NULL)
        return;
    sasl_clear_output(c);
    pkc_writer_free(&c->out);
    pkc_scram_free(c->scram);
    pkc_sasl_wipe(c, sizeof(*c));
    free(c);
}

const char *
pkc_sasl_client_error(const pkc_sasl_client *c)
{
    return c->error;
}

/* ------------------------------------------------------------------- steps */

static int
sasl_send_first(pkc_sasl_client *c, size_t len)
{
    if (len > 0)
        return sasl_fail(c, PKC_ERR_INVALID,
                         "the first SASL step takes no server message: "
                         "the client speaks first");
    c->state = c->scram != NULL ? SASL_AWAIT_SERVER_FIRST
                                : SASL_AWAIT_OUTCOME;
    return PKC_IN_PROGRESS;
}

static int
sasl_scram_answer(pkc_sasl_client *c, const uint8_t *msg, size_t len)
{
    int rc;

    sasl_clear_output(c);
    rc = pkc_scram_client_final(c->scram, msg, len, &c->out, c->error,
                                sizeof(c->error));
    if (rc != PKC_OK)
        return sasl_enter_failed(c, rc);
    c->state = SASL_AWAIT_SERVER_FINAL;
    return PKC_IN_PROGRESS;
}

static int
sasl_scram_finish(pkc_sasl_client *c, const uint8_t *msg, size_t len)
{
    int rc;

    sasl_clear_output(c);
    rc = pkc_scram_verify_server_final(c->scram, msg, len, c->error,
                                       sizeof(c->error));
    if (rc != PKC_OK)
        return sasl_enter_failed(c, rc);
    pkc_scram_free(c->scram);
    c->scram = NULL;
    c->state = SASL_DONE;
    return PKC_OK;
}

/* OAUTHBEARER's error JSON: remember it, answer with 0x01 (RFC 7628
 * section 3.2.3) so that the broker ends the exchange. */
static int
sasl_oauthbearer_rejected(pkc_sasl_client *c, const uint8_t *msg, size_t len)
{
    char quoted[PKC_SASL_MAX_QUOTED + 8];

    pkc_sasl_quote_server_text(quoted, sizeof(quoted), msg, len);
    snprintf(c->error, sizeof(c->error),
             "the broker rejected the OAUTHBEARER token: %s", quoted);
    pkc_write_raw(&c->out, "\x01", 1);
    if (c->out.status != PKC_OK)
        return sasl_fail(c, PKC_ERR_NOMEM, "out of memory in SASL");
    c->state = SASL_REJECTED;
    return PKC_IN_PROGRESS;
}

/* PLAIN and OAUTHBEARER: an empty answer is success. */
static int
sasl_take_outcome(pkc_sasl_client *c, const uint8_t *msg, size_t len)
{
    sasl_clear_output(c);
    if (len == 0) {
        c->state = SASL_DONE;
        return PKC_OK;
    }
    if (c->mechanism == PKC_SASL_OAUTHBEARER)
        return sasl_oauthbearer_rejected(c, msg, len);
    snprintf(c->error, sizeof(c->error),
             "the broker answered PLAIN with %zu bytes; success is an empty "
             "answer", len);
    return sasl_enter_failed(c, PKC_ERR_INVALID);
}

int
pkc_sasl_client_step(pkc_sasl_client *c, const uint8_t *server_msg,
                     size_t len, const uint8_t **out, size_t *out_len)
{
    int rc;

    *out = NULL;
    *out_len = 0;
    if (c->state == SASL_FAILED)
        return c->status;
    if (server_msg == NULL && len > 0)
        return sasl_fail(c, PKC_ERR_INVALID,
                         "a SASL step was given a NULL server message of "
                         "non-zero length");
    switch (c->state) {
    case SASL_SEND_FIRST:
        rc = sasl_send_first(c, len);
        break;
    case SASL_AWAIT_SERVER_FIRST:
        rc = sasl_scram_answer(c, server_msg, len);
        break;
    case SASL_AWAIT_SERVER_FINAL:
        rc = sasl_scram_finish(c, server_msg, len);
        break;
    case SASL_AWAIT_OUTCOME:
        rc = sasl_take_outcome(c, server_msg, len);
        break;
    case SASL_REJECTED:
        rc = sasl_enter_failed(c, PKC_ERR_AUTH);
        break;
    default:
        rc = sasl_fail(c, PKC_ERR_INVALID,
                       "the SASL exchange is already complete");
        break;
    }
    if (rc == PKC_IN_PROGRESS) {
        *out = c->out.buf;
        *out_len = c->out.len;
    }
    return rc;
}
