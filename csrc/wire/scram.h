/*
 * scram.h - the client side of SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802,
 * RFC 7677) as Kafka runs them.  Python-free; driven by sasl.c.
 *
 * Two files:
 *  - scram_msg.c: the strict parser of the two server messages and the
 *    builders of the two client messages.  No crypto, always built (the
 *    fuzz target and the tests use it in builds without OpenSSL too).
 *  - scram.c: the exchange itself: nonce, PBKDF2, HMAC, proof, server
 *    signature, with OpenSSL's libcrypto.  Without PKC_HAVE_OPENSSL,
 *    pkc_scram_new fails with PKC_ERR_UNSUPPORTED.
 *
 * Messages (Kafka sends no channel binding, no authzid, no extensions):
 *   client-first  n,,n=<user, ',' as =2C and '=' as =3D>,r=<client nonce>
 *   server-first  r=<client nonce><server nonce>,s=<base64 salt>,i=<count>
 *   client-final  c=biws,r=<the server's r>,p=<base64 ClientProof>
 *   server-final  v=<base64 ServerSignature>   or   e=<error>
 *
 * What the parser refuses (PKC_ERR_INVALID): a message over
 * PKC_SCRAM_MAX_MESSAGE bytes; a missing, duplicated, misplaced or empty
 * attribute; an attribute without '='; the reserved mandatory-extension
 * attribute m= (RFC 5802 section 5.1: it MUST fail authentication); a nonce
 * with a byte outside printable ASCII; a salt or signature that is not
 * canonical base64 or too long, an empty salt; an iteration count that is
 * not a positive decimal number (RFC 5802 posit-number: no sign, no
 * space, no leading zero) or over 2^32 - 1.  Extensions after the
 * defined attributes (",x=value", a letter not used by SCRAM) are
 * skipped.  A message that starts with e= is the server's error:
 * PKC_ERR_AUTH with its (quoted) text.
 *
 * What the exchange checks before any hashing: the iteration count within
 * [min, max] (defaults 4096 and 16384: what a Kafka broker can store), the
 * server nonce starting with ours and strictly longer.  The server
 * signature is compared in constant time.  SaltedPassword, ClientKey and
 * the other intermediate keys are wiped at once; the password copy is
 * wiped as soon as the proof is made.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "sasl.h"

#define PKC_SCRAM_MAX_MESSAGE 4096  /* longest server message accepted */
#define PKC_SCRAM_MAX_SALT 128      /* decoded salt bytes */
#define PKC_SCRAM_MAX_HASH 64       /* SHA-512 */
#define PKC_SCRAM_MAX_NONCE 255     /* a fixed (test) client nonce */
#define PKC_SCRAM_NONCE_BYTES 24    /* random bytes in a client nonce */
#define PKC_SCRAM_DEFAULT_MIN_ITERATIONS 4096
#define PKC_SCRAM_DEFAULT_MAX_ITERATIONS 16384

/* ----------------------------------------------- messages (scram_msg.c) */

typedef struct {
    pkc_slice nonce;        /* r=: client + server nonce, a view of msg */
    uint8_t salt[PKC_SCRAM_MAX_SALT];
    size_t salt_len;        /* >= 1 */
    uint32_t iterations;    /* >= 1, not yet checked against any bound */
} pkc_scram_server_first;

typedef struct {
    uint8_t signature[PKC_SCRAM_MAX_HASH];
    size_t signature_len;   /* any length up to PKC_SCRAM_MAX_HASH */
} pkc_scram_server_final;

/* Parse a server-first message.  Returns PKC_OK, PKC_ERR_INVALID
 * (malformed) or PKC_ERR_AUTH (the server sent e=...), with a sentence in
 * err[0..errlen) on failure. */
int pkc_scram_parse_server_first(const uint8_t *msg, size_t len,
                                 pkc_scram_server_first *out, char *err,
                                 size_t errlen);

/* Parse a server-final message; the same returns. */
int pkc_scram_parse_server_final(const uint8_t *msg, size_t len,
                                 pkc_scram_server_final *out, char *err,
                                 size_t errlen);

/* 1 if every byte of s[0..len) is RFC 5802 "printable" (0x21-0x7E but
 * ','), and len > 0. */
int pkc_scram_is_printable(const uint8_t *s, size_t len);

/* Append "n,,n=<escaped user>,r=<nonce>" to w.  Returns w's status. */
int pkc_scram_write_client_first(pkc_writer *w, const char *user,
                                 size_t user_len, const char *nonce,
                                 size_t nonce_len);

/* Append "c=biws,r=<nonce>" (client-final-message-without-proof).
 * Returns w's status. */
int pkc_scram_write_client_final_without_proof(pkc_writer *w,
                                               const uint8_t *nonce,
                                               size_t nonce_len);

/* Append ",p=<base64 proof>".  Returns w's status. */
int pkc_scram_write_proof(pkc_writer *w, const uint8_t *proof, size_t len);

/* ------------------------------------------------ the exchange (scram.c) */

typedef struct pkc_scram pkc_scram;

/* A SCRAM exchange for cred (mechanism PKC_SASL_SCRAM_SHA_256 or _512,
 * fields already checked for NULL and size by sasl.c).  Validates the
 * rest as sasl.h says, makes the client nonce and the client-first
 * message.  Returns PKC_OK, PKC_ERR_INVALID, PKC_ERR_UNSUPPORTED (no
 * OpenSSL in this build, or RAND_bytes failed) or PKC_ERR_NOMEM. */
int pkc_scram_new(const pkc_sasl_credentials *cred, pkc_scram **out,
                  char *err, size_t errlen);

/* The client-first message (owned by s, valid until free). */
void pkc_scram_client_first(const pkc_scram *s, const uint8_t **msg,
                            size_t *len);

/* Take the server-first message, check it, compute the proof and the
 * expected server signature, and append the client-final message to out.
 * Wipes the password copy.  Returns PKC_OK, PKC_ERR_INVALID, PKC_ERR_AUTH
 * (e=), PKC_ERR_UNSUPPORTED (OpenSSL refused) or PKC_ERR_NOMEM. */
int pkc_scram_client_final(pkc_scram *s, const uint8_t *server_first,
                           size_t len, pkc_writer *out, char *err,
                           size_t errlen);

/* Check the server-final message: PKC_OK only if it carries the expected
 * server signature; PKC_ERR_AUTH for a wrong signature or e=;
 * PKC_ERR_INVALID if malformed (a missing v= included). */
int pkc_scram_verify_server_final(pkc_scram *s, const uint8_t *msg,
                                  size_t len, char *err, size_t errlen);

/* Wipe and free; NULL is allowed. */
void pkc_scram_free(pkc_scram *s);
