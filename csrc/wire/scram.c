/*
 * scram.c - the SCRAM-SHA-256 / SCRAM-SHA-512 exchange (see scram.h):
 * client nonce, Hi() = PBKDF2-HMAC, the client proof and the expected
 * server signature, with OpenSSL's libcrypto.
 *
 *   SaltedPassword  = PBKDF2-HMAC-H(password, salt, i, |H|)
 *   ClientKey       = HMAC(SaltedPassword, "Client Key")
 *   StoredKey       = H(ClientKey)
 *   AuthMessage     = client-first-bare "," server-first ","
 *                     client-final-without-proof
 *   ClientProof     = ClientKey XOR HMAC(StoredKey, AuthMessage)
 *   ServerSignature = HMAC(HMAC(SaltedPassword, "Server Key"), AuthMessage)
 */
#include "scram.h"

#include <stdlib.h>
#include <string.h>

#ifdef PKC_HAVE_OPENSSL

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "base64.h"

/* "n,," before client-first-message-bare. */
#define GS2_HEADER_LEN 3

struct pkc_scram {
    const EVP_MD *md;
    size_t hash_len;
    uint32_t min_iterations;
    uint32_t max_iterations;
    uint8_t *password;          /* wiped and freed once the proof is made */
    size_t password_len;
    pkc_writer client_first;    /* "n,,n=<user>,r=<nonce>" */
    size_t nonce_len;           /* the nonce ends client_first */
    uint8_t server_signature[PKC_SCRAM_MAX_HASH];  /* expected */
    int have_server_signature;
};

static void
scram_forget_password(pkc_scram *s)
{
    if (s->password != NULL) {
        OPENSSL_cleanse(s->password, s->password_len);
        free(s->password);
        s->password = NULL;
        s->password_len = 0;
    }
}

void
pkc_scram_free(pkc_scram *s)
{
    if (s == NULL)
        return;
    scram_forget_password(s);
    pkc_writer_free(&s->client_first);
    OPENSSL_cleanse(s, sizeof(*s));
    free(s);
}

static int
scram_check_username(const pkc_sasl_credentials *cred, char *err,
                     size_t errlen)
{
    if (cred->username_len == 0)
        return pkc_sasl_errorf(err, errlen, PKC_ERR_INVALID,
                               "SCRAM needs a user name");
    if (memchr(cred->username, 0, cred->username_len) != NULL)
        return pkc_sasl_errorf(err, errlen, PKC_ERR_INVALID,
                               "the SCRAM user name contains a NUL byte");
    return PKC_OK;
}

static int
scram_set_iteration_bounds(pkc_scram *s, const pkc_sasl_credentials *cred,
                           char *err, size_t errlen)
{
    s->min_iterations = cred->scram_min_iterations
                            ? cred->scram_min_iterations
                            : PKC_SCRAM_DEFAULT_MIN_ITERATIONS;
    s->max_iterations = cred->scram_max_iterations
                            ? cred->scram_max_iterations
                            : PKC_SCRAM_DEFAULT_MAX_ITERATIONS;
    if (s->min_iterations > s->max_iterations)
        return pkc_sasl_errorf(err, errlen, PKC_ERR_INVALID,
                               "SCRAM iteration bounds are reversed: "
                               "minimum %u > maximum %u", s->min_iterations,
                               s->max_iterations);
    return PKC_OK;
}

/* The client nonce into buf (NUL-terminated): the fixed test nonce, or
 * PKC_SCRAM_NONCE_BYTES random bytes in base64 (no ',' and no '='). */
static int
scram_make_nonce(const pkc_sasl_credentials *cred, char *buf, size_t cap,
                 char *err, size_t errlen)
{
    uint8_t random[PKC_SCRAM_NONCE_BYTES];
    size_t n;

    if (cred->scram_nonce != NULL) {
        n = strlen(cred->scram_nonce);
        if (n >= cap ||
            !pkc_scram_is_printable((const uint8_t *)cred->scram_nonce, n))
            return pkc_sasl_errorf(err, errlen, PKC_ERR_INVALID,
                                   "the fixed SCRAM nonce must be 1 to %d "
                                   "printable ASCII characters without ','",
                                   PKC_SCRAM_MAX_NONCE);
        memcpy(buf, cred->scram_nonce, n + 1);
        return PKC_OK;
    }
    if (RAND_bytes(random, sizeof(random)) != 1)
        return pkc_sasl_errorf(err, errlen, PKC_ERR_UNSUPPORTED,
                               "OpenSSL could not make random bytes for "
                               "the SCRAM nonce (RAND_bytes failed)");
    n = pkc_base64_encode(random, sizeof(random), buf);
    buf[n] = '\0';
    OPENSSL_cleanse(random, sizeof(random));
    return PKC_OK;
}

static int
scram_copy_password(pkc_scram *s, const pkc_sasl_credentials *cred)
{
    s->password = malloc(cred->password_len + 1);
    if (s->password == NULL)
        return PKC_ERR_NOMEM;
    if (cred->password_len)
        memcpy(s->password, cred->password, cred->password_len);
    s->password[cred->password_len] = 0;
    s->password_len = cred->password_len;
    return PKC_OK;
}

/* Everything but the allocation of s itself. */
static int
scram_init(pkc_scram *s, const pkc_sasl_credentials *cred, char *err,
           size_t errlen)
{
    char nonce[PKC_SCRAM_MAX_NONCE + 1];
    int rc;

    s->md = cred->mechanism == PKC_SASL_SCRAM_SHA_512 ? EVP_sha512()
                                                       : EVP_sha256();
    s->hash_len = (size_t)EVP_MD_size(s->md);
    if (s->hash_len == 0 || s->hash_len > PKC_SCRAM_MAX_HASH)
        return pkc_sasl_errorf(err, errlen, PKC_ERR_UNSUPPORTED,
                               "OpenSSL has no usable %s digest",
                               pkc_sasl_mechanism_name(cred->mechanism));
    if ((rc = scram_check_username(cred, err, errlen)) != PKC_OK ||
        (rc = scram_set_iteration_bounds(s, cred, err, errlen)) != PKC_OK ||
        (rc = scram_make_nonce(cred, nonce, sizeof(nonce), err, errlen)))
        return rc;
    s->nonce_len = strlen(nonce);
    if (scram_copy_password(s, cred) != PKC_OK ||
        pkc_scram_write_client_first(&s->client_first, cred->username,
                                     cred->username_len, nonce,
                                     s->nonce_len) != PKC_OK)
        return pkc_sasl_errorf(err, errlen, PKC_ERR_NOMEM,
                               "out of memory making a SCRAM client");
    return PKC_OK;
}

int
pkc_scram_new(const pkc_sasl_credentials *cred, pkc_scram **out, char *err,
              size_t errlen)
{
    pkc_scram *s;
    int rc;

    *out = NULL;
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return pkc_sasl_errorf(err, errlen, PKC_ERR_NOMEM,
                               "out of memory making a SCRAM client");
    pkc_writer_init(&s->client_first, 0, 0);
    rc = scram_init(s, cred, err, errlen);
    if (rc != PKC_OK) {
        pkc_scram_free(s);
        return rc;
    }
    *out = s;
    return PKC_OK;
}

void
pkc_scram_client_first(const pkc_scram *s, const uint8_t **msg, size_t *len)
{
    *msg = s->client_first.buf;
    *len = s->client_first.len;
}

/* ------------------------------------------------------------ server-first */

/* The bounds and the nonce, checked before any hashing. */
static int
scram_check_server_first(const pkc_scram *s,
                         const pkc_scram_server_first *sf, char *err,
                         size_t errlen)
{
    const uint8_t *ours = s->client_first.buf + s->client_first.len -
                          s->nonce_len;

    if (sf->iterations < s->min_iterations ||
        sf->iterations > s->max_iterations)
        return pkc_sasl_errorf(err, errlen, PKC_ERR_INVALID,
                               "the broker's SCRAM iteration count i=%u "
                               "is outside the accepted %u to %u",
                               sf->iterations, s->min_iterations,
                               s->max_iterations);
    if ((size_t)sf->nonce.len <= s->nonce_len ||
        memcmp(sf->nonce.ptr, ours, s->nonce_len) != 0)
        return pkc_sasl_errorf(err, errlen, PKC_ERR_INVALID,
                               "the broker's SCRAM nonce does not extend "
                               "the client nonce (it must start with it "
                               "and be longer)");
    return PKC_OK;
}

/* AuthMessage = client-first-bare "," server-first ","
 * client-final-without-proof, into am. */
static int
scram_write_auth_message(const pkc_scram *s, const uint8_t *server_first,
                         size_t len, const pkc_writer *final_without_proof,
                         pkc_writer *am)
{
    pkc_write_raw(am, s->client_first.buf + GS2_HEADER_LEN,
                  s->client_first.len - GS2_HEADER_LEN);
    pkc_write_raw(am, ",", 1);
    pkc_write_raw(am, server_first, len);
    pkc_write_raw(am, ",", 1);
    pkc_write_raw(am, final_without_proof->buf, final_without_proof->len);
    return am->status;
}

static int
scram_hmac(const pkc_scram *s, const uint8_t *key, const void *data,
           size_t len, uint8_t *out)
{
    unsigned int out_len = 0;

    return HMAC(s->md, key, (int)s->hash_len, data, len, out, &out_len) !=
               NULL &&
           out_len == s->hash_len;
}

/* Compute the client proof and keep the expected server signature. */
static int
scram_compute(pkc_scram *s, const pkc_scram_server_first *sf,
              const pkc_writer *am, uint8_t *proof)
{
    uint8_t salted[PKC_SCRAM_MAX_HASH], client_key[PKC_SCRAM_MAX_HASH];
    uint8_t stored_key[PKC_SCRAM_MAX_HASH], server_key[PKC_SCRAM_MAX_HASH];
    uint8_t client_signature[PKC_SCRAM_MAX_HASH];
    unsigned int digest_len = 0;
    int ok;

    ok = PKCS5_PBKDF2_HMAC((const char *)s->password, (int)s->password_len,
                           sf->salt, (int)sf->salt_len, (int)sf->iterations,
                           s->md, (int)s->hash_len, salted) == 1 &&
         scram_hmac(s, salted, "Client Key", 10, client_key) &&
         EVP_Digest(client_key, s->hash_len, stored_key, &digest_len, s->md,
                    NULL) == 1 &&
         digest_len == s->hash_len &&
         scram_hmac(s, stored_key, am->buf, am->len, client_signature) &&
         scram_hmac(s, salted, "Server Key", 10, server_key) &&
         scram_hmac(s, server_key, am->buf, am->len, s->server_signature);
    for (size_t k = 0; ok && k < s->hash_len; k++)
        proof[k] = client_key[k] ^ client_signature[k];
    s->have_server_signature = ok;
    OPENSSL_cleanse(salted, sizeof(salted));
    OPENSSL_cleanse(client_key, sizeof(client_key));
    OPENSSL_cleanse(stored_key, sizeof(stored_key));
    OPENSSL_cleanse(server_key, sizeof(server_key));
    OPENSSL_cleanse(client_signature, sizeof(client_signature));
    return ok;
}

/* Given a checked server-first message: append the client-final to out. */
static int
scram_answer(pkc_scram *s, const uint8_t *server_first, size_t len,
             const pkc_scram_server_first *sf, pkc_writer *out, char *err,
             size_t errlen)
{
    uint8_t proof[PKC_SCRAM_MAX_HASH];
    pkc_writer am;
    int rc = PKC_OK;

    pkc_writer_init(&am, 0, 0);
    if (pkc_scram_write_client_final_without_proof(
            out, sf->nonce.ptr, (size_t)sf->nonce.len) != PKC_OK ||
        scram_write_auth_message(s, server_first, len, out, &am) != PKC_OK)
        rc = pkc_sasl_errorf(err, errlen, PKC_ERR_NOMEM,
                             "out of memory in the SCRAM exchange");
    else if (!scram_compute(s, sf, &am, proof))
        rc = pkc_sasl_errorf(err, errlen, PKC_ERR_UNSUPPORTED,
                             "OpenSSL refused a SCRAM computation "
                             "(PBKDF2, HMAC or digest)");
    else if (pkc_scram_write_proof(out, proof, s->hash_len) != PKC_OK)
        rc = pkc_sasl_errorf(err, errlen, PKC_ERR_NOMEM,
                             "out of memory in the SCRAM exchange");
    OPENSSL_cleanse(proof, sizeof(proof));
    pkc_writer_free(&am);
    return rc;
}

int
pkc_scram_client_final(pkc_scram *s, const uint8_t *server_first, size_t len,
                       pkc_writer *out, char *err, size_t errlen)
{
    pkc_scram_server_first sf;
    int rc;

    rc = pkc_scram_parse_server_first(server_first, len, &sf, err, errlen);
    if (rc == PKC_OK)
        rc = scram_check_server_first(s, &sf, err, errlen);
    if (rc == PKC_OK)
        rc = scram_answer(s, server_first, len, &sf, out, err, errlen);
    scram_forget_password(s);
    return rc;
}

/* ------------------------------------------------------------ server-final */

int
pkc_scram_verify_server_final(pkc_scram *s, const uint8_t *msg, size_t len,
                              char *err, size_t errlen)
{
    pkc_scram_server_final sfin;
    int rc;

    rc = pkc_scram_parse_server_final(msg, len, &sfin, err, errlen);
    if (rc != PKC_OK)
        return rc;
    if (sfin.signature_len != s->hash_len)
        return pkc_sasl_errorf(err, errlen, PKC_ERR_INVALID,
                               "the broker's SCRAM server signature has "
                               "%zu bytes instead of %zu", sfin.signature_len,
                               s->hash_len);
    if (!s->have_server_signature ||
        CRYPTO_memcmp(sfin.signature, s->server_signature, s->hash_len) != 0)
        return pkc_sasl_errorf(err, errlen, PKC_ERR_AUTH,
                               "the broker's SCRAM server signature is "
                               "wrong: it does not know this user's "
                               "credentials, or the answer was forged");
    return PKC_OK;
}

#else /* !PKC_HAVE_OPENSSL */

int
pkc_scram_new(const pkc_sasl_credentials *cred, pkc_scram **out, char *err,
              size_t errlen)
{
    *out = NULL;
    return pkc_sasl_errorf(err, errlen, PKC_ERR_UNSUPPORTED,
                           "%s needs OpenSSL's libcrypto, which this build "
                           "of pykafka_c does not include (OpenSSL headers "
                           "were not found when it was compiled)",
                           pkc_sasl_mechanism_name(cred->mechanism));
}

void
pkc_scram_client_first(const pkc_scram *s, const uint8_t **msg, size_t *len)
{
    (void)s;
    *msg = NULL;
    *len = 0;
}

int
pkc_scram_client_final(pkc_scram *s, const uint8_t *server_first, size_t len,
                       pkc_writer *out, char *err, size_t errlen)
{
    (void)s, (void)server_first, (void)len, (void)out;
    return pkc_sasl_errorf(err, errlen, PKC_ERR_UNSUPPORTED,
                           "SCRAM needs OpenSSL's libcrypto");
}

int
pkc_scram_verify_server_final(pkc_scram *s, const uint8_t *msg, size_t len,
                              char *err, size_t errlen)
{
    (void)s, (void)msg, (void)len;
    return pkc_sasl_errorf(err, errlen, PKC_ERR_UNSUPPORTED,
                           "SCRAM needs OpenSSL's libcrypto");
}

void
pkc_scram_free(pkc_scram *s)
{
    (void)s;
}

#endif /* PKC_HAVE_OPENSSL */
