/*
 * security.h - how one client proves itself to its brokers (no Python).
 *
 * A pkc_security holds a client's TLS context and SASL credentials: the
 * settings every broker link of the client (the Python layer's
 * connections, the consumer's fetch thread, the producer's send thread)
 * needs to set up a connection.  It is made once from the client's
 * configuration, reference-counted, and safe to share between threads.
 * Only the OAUTHBEARER token changes after creation (the Python layer
 * refreshes it from the application's token provider), under a lock; each
 * authentication takes a copy of the token current at its start.
 *
 * Secrets (the SASL password, the token) are kept in memory the object
 * owns and wiped when it is freed; no function here writes them into an
 * error text.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "sasl.h"
#include "tls.h"

typedef struct pkc_security pkc_security;

typedef struct {
    pkc_tls_ctx *tls;          /* NULL: plain TCP (borrowed; the security
                                  object takes its own reference) */
    int sasl_mechanism;        /* pkc_sasl_mechanism; PKC_SASL_NONE: none */
    const char *username;      /* PLAIN and SCRAM */
    size_t username_len;
    const char *password;
    size_t password_len;
    uint32_t scram_max_iterations; /* 0: the SASL layer's default */
} pkc_security_config;

/*
 * Make a security object.  Returns PKC_OK, PKC_ERR_INVALID (a mechanism
 * without the credentials it needs, an unknown mechanism),
 * PKC_ERR_UNSUPPORTED (SCRAM in a build without OpenSSL) or PKC_ERR_NOMEM,
 * with a sentence in `errbuf`.
 */
int pkc_security_new(const pkc_security_config *cfg, pkc_security **out,
                     char *errbuf, size_t errlen);
pkc_security *pkc_security_ref(pkc_security *sec);
void pkc_security_unref(pkc_security *sec);

/* The TLS context (borrowed), or NULL for plain TCP. */
pkc_tls_ctx *pkc_security_tls(const pkc_security *sec);
/* The SASL mechanism, PKC_SASL_NONE when the client does not use SASL. */
int pkc_security_sasl_mechanism(const pkc_security *sec);

/* Replace the OAUTHBEARER token (copied).  Returns PKC_OK, PKC_ERR_INVALID
 * (not an OAUTHBEARER client, or a token with characters a bearer token
 * cannot have) or PKC_ERR_NOMEM. */
int pkc_security_set_token(pkc_security *sec, const char *token, size_t len,
                           char *errbuf, size_t errlen);
/* 1 when an OAUTHBEARER client has a token (always 1 for others). */
int pkc_security_has_credentials(pkc_security *sec);

/* How many times the credentials changed (each pkc_security_set_token
 * adds one).  A link compares it with the generation its session was
 * authenticated with: re-authenticating with an unchanged OAUTHBEARER
 * token would only give a session that ends when the old one does. */
uint64_t pkc_security_generation(pkc_security *sec);

/*
 * Start one SASL exchange with the credentials current now (the token is
 * copied under the lock); *generation gets their generation.  Returns
 * PKC_OK with *out (free it with pkc_sasl_client_free), or a failure with
 * a sentence in `errbuf` (PKC_ERR_AUTH when an OAUTHBEARER client has no
 * token yet).
 */
int pkc_security_sasl_client(pkc_security *sec, pkc_sasl_client **out,
                             uint64_t *generation, char *errbuf,
                             size_t errlen);
