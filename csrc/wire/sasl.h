/*
 * sasl.h - the client side of the SASL mechanisms Kafka brokers offer:
 * PLAIN (RFC 4616), SCRAM-SHA-256 / SCRAM-SHA-512 (RFC 5802, RFC 7677;
 * scram.h) and OAUTHBEARER (RFC 7628, KIP-255).  Python-free, no I/O.
 *
 * A pkc_sasl_client is a small state machine over the mechanism bytes
 * only (the AuthBytes of SaslAuthenticate); the broker link does the Kafka
 * framing (SaslHandshake, SaslAuthenticate and their error codes) and
 * drives it:
 *
 *     pkc_sasl_client_new(&cred, &c, errbuf, sizeof(errbuf));
 *     rc = pkc_sasl_client_step(c, NULL, 0, &out, &out_len);
 *     while (rc == PKC_IN_PROGRESS) {
 *         send SaslAuthenticate(out, out_len); receive the answer;
 *         if (answer.ErrorCode != 0) -> failed, ErrorMessage says why
 *         rc = pkc_sasl_client_step(c, answer.AuthBytes, len, &out, ...);
 *     }
 *     rc == PKC_OK: authenticated; else pkc_sasl_client_error(c) says why.
 *
 * Success needs more than ErrorCode 0: PLAIN and OAUTHBEARER want an empty
 * answer, SCRAM a server signature that verifies (a forged "error 0" on
 * SASL_PLAINTEXT cannot log the client in).  Every server message is
 * parsed strictly and bounded; any failure is sticky (later steps return
 * the same status).  Error sentences never contain a password, a token or
 * a value derived from them; text the broker sent (a SCRAM e=, the
 * OAUTHBEARER error JSON) is shown with non-printable bytes replaced and
 * its length bounded.  A client serves one exchange: re-authentication
 * (KIP-368) makes a new one.  A client is not thread-safe; distinct
 * clients are independent.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

typedef enum {
    PKC_SASL_NONE = 0,
    PKC_SASL_PLAIN,
    PKC_SASL_SCRAM_SHA_256,
    PKC_SASL_SCRAM_SHA_512,
    PKC_SASL_OAUTHBEARER
} pkc_sasl_mechanism;

/* The name Kafka uses ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512",
 * "OAUTHBEARER"), a static string; NULL for PKC_SASL_NONE or an unknown
 * value. */
const char *pkc_sasl_mechanism_name(int mechanism);

/* The mechanism called name[0..len) (exact, case-sensitive, as brokers
 * list them in SaslHandshake), or -1 if unknown. */
int pkc_sasl_mechanism_from_name(const char *name, size_t len);

/* 1 if this build can run the mechanism, 0 if not: SCRAM needs OpenSSL's
 * libcrypto (PKC_HAVE_OPENSSL); 0 for PKC_SASL_NONE and unknown values. */
int pkc_sasl_mechanism_available(int mechanism);

/* Longest username, password or token accepted (bytes). */
#define PKC_SASL_MAX_CREDENTIAL ((size_t)64 * 1024)

typedef struct {
    int mechanism;
    const char *username; size_t username_len;   /* PLAIN, SCRAM */
    const char *password; size_t password_len;   /* PLAIN, SCRAM */
    /* OAUTHBEARER: the bearer token */
    const char *token; size_t token_len;
    uint32_t scram_min_iterations;  /* 0: 4096 */
    /* 0: 16384 (all a Kafka broker can store) */
    uint32_t scram_max_iterations;
    /* tests only: fixed client nonce; NULL: random from RAND_bytes */
    const char *scram_nonce;
} pkc_sasl_credentials;

typedef struct pkc_sasl_client pkc_sasl_client;

/*
 * Make a client for cred->mechanism.  Copies what it needs from cred
 * (secrets too; they are wiped on free, or as soon as the exchange no
 * longer needs them).  Credentials are checked here:
 *  - PLAIN: non-empty username and password without NUL bytes.
 *  - SCRAM: non-empty username without NUL bytes (',' and '=' are
 *    escaped); any password (its bytes as they are: Kafka applies no
 *    SASLprep); 1 <= scram_min_iterations <= scram_max_iterations once
 *    the zeros are replaced by the defaults (a minimum under 4096 helps
 *    offline guessing: tests only); scram_nonce, if set, printable ASCII
 *    without ',' and at most 255 characters.
 *  - OAUTHBEARER: a non-empty token of printable ASCII (0x21-0x7E), the
 *    characters Kafka's OAuthBearerClientInitialResponse allows in it.
 *  - every field at most PKC_SASL_MAX_CREDENTIAL bytes; a NULL pointer
 *    only with length 0.
 * Returns PKC_OK with *out set; PKC_ERR_INVALID (bad credentials or
 * unknown mechanism); PKC_ERR_UNSUPPORTED (SCRAM in a build without
 * OpenSSL, or OpenSSL could not make random bytes); PKC_ERR_NOMEM.  On
 * failure *out is NULL and errbuf (if errlen > 0) holds a sentence.
 */
int pkc_sasl_client_new(const pkc_sasl_credentials *cred,
                        pkc_sasl_client **out, char *errbuf, size_t errlen);

/*
 * One step.  First call: server_msg NULL/0 -> the client's first message.
 * Later calls: the AuthBytes of the broker's last SaslAuthenticate answer
 * (only when its ErrorCode was 0).
 * Returns PKC_IN_PROGRESS with (*out, *out_len) = the next AuthBytes to
 * send (owned by the client, valid until the next call or free); PKC_OK
 * when the exchange is complete and, for SCRAM, the server signature was
 * verified (nothing more to send); PKC_ERR_AUTH (server proof wrong,
 * server sent e=..., OAUTHBEARER error JSON after the client's 0x01, ...)
 * or PKC_ERR_INVALID (malformed or hostile server message) with a
 * sentence in pkc_sasl_client_error() that never contains a secret.
 * Also PKC_ERR_UNSUPPORTED if OpenSSL refuses a computation, PKC_ERR_NOMEM.
 * *out is NULL and *out_len 0 unless PKC_IN_PROGRESS is returned.
 *
 * OAUTHBEARER: a non-empty answer to the initial response is the broker's
 * error JSON; the step returns PKC_IN_PROGRESS with the single byte 0x01
 * (RFC 7628 section 3.2.3) and pkc_sasl_client_error() already holds the
 * JSON; the broker then answers with ErrorCode 58, and any later step
 * returns PKC_ERR_AUTH with that sentence.
 * Calling a finished client again (after PKC_OK) is PKC_ERR_INVALID.
 */
int pkc_sasl_client_step(pkc_sasl_client *c, const uint8_t *server_msg,
                         size_t len, const uint8_t **out, size_t *out_len);

/* The last failure as a sentence ("" if none); valid until the next step
 * or free. */
const char *pkc_sasl_client_error(const pkc_sasl_client *c);

/* Wipe the client's secrets and free it; NULL is allowed. */
void pkc_sasl_client_free(pkc_sasl_client *c);

/* ------------------------------------------ shared by the mechanism files */

/* Format a sentence into err[0..errlen) (if errlen > 0) and return
 * `status`, so a failing function can `return pkc_sasl_errorf(...)`. */
int pkc_sasl_errorf(char *err, size_t errlen, int status, const char *fmt,
                    ...) __attribute__((format(printf, 4, 5)));

/* Longest piece of broker text quoted in an error sentence. */
#define PKC_SASL_MAX_QUOTED 160

/* Copy text the broker sent into dst[0..cap) as a NUL-terminated string fit
 * for an error sentence: printable ASCII kept, any other byte shown as
 * '?', at most PKC_SASL_MAX_QUOTED characters (then "..."). */
void pkc_sasl_quote_server_text(char *dst, size_t cap, const uint8_t *text,
                                size_t len);

/* Overwrite n bytes at p with zeros in a way the compiler keeps. */
void pkc_sasl_wipe(void *p, size_t n);
