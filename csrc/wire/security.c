/*
 * security.c - a client's TLS context and SASL credentials (security.h).
 */
#include "security.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pkc_security {
    atomic_int refs;
    pkc_tls_ctx *tls;
    int mechanism;
    char *username;
    size_t username_len;
    char *password;
    size_t password_len;
    uint32_t scram_max_iterations;
    pthread_mutex_t token_mu;  /* guards token, token_len, generation */
    char *token;
    size_t token_len;
    uint64_t generation;
};

/* Zero and free a secret. */
static void
security_wipe(char *p, size_t len)
{
    if (p == NULL)
        return;
    /* A volatile pointer keeps the compiler from dropping the stores. */
    for (volatile char *v = p; len > 0; len--)
        *v++ = 0;
    free(p);
}

static char *
security_dup(const char *s, size_t len)
{
    char *d = malloc(len + 1);

    if (d != NULL) {
        if (len > 0)
            memcpy(d, s, len);
        d[len] = '\0';
    }
    return d;
}

static void
security_free(pkc_security *sec)
{
    pkc_tls_ctx_unref(sec->tls);
    security_wipe(sec->username, sec->username_len);
    security_wipe(sec->password, sec->password_len);
    security_wipe(sec->token, sec->token_len);
    pthread_mutex_destroy(&sec->token_mu);
    free(sec);
}

/* Does the mechanism have what it needs? */
static int
security_check(const pkc_security_config *cfg, char *errbuf, size_t errlen)
{
    int mech = cfg->sasl_mechanism;

    if (mech == PKC_SASL_NONE)
        return PKC_OK;
    if (pkc_sasl_mechanism_name(mech) == NULL) {
        snprintf(errbuf, errlen, "unknown SASL mechanism %d", mech);
        return PKC_ERR_INVALID;
    }
    if (!pkc_sasl_mechanism_available(mech)) {
        snprintf(errbuf, errlen, "the SASL mechanism %s is not available: "
                 "pykafka_c was built without OpenSSL (install the OpenSSL "
                 "headers, e.g. Debian's libssl-dev, and reinstall "
                 "pykafka_c)", pkc_sasl_mechanism_name(mech));
        return PKC_ERR_UNSUPPORTED;
    }
    if (mech == PKC_SASL_OAUTHBEARER)
        return PKC_OK;
    if (cfg->username == NULL || cfg->username_len == 0 ||
        cfg->password == NULL || cfg->password_len == 0) {
        snprintf(errbuf, errlen, "the SASL mechanism %s needs a user name "
                 "and a password", pkc_sasl_mechanism_name(mech));
        return PKC_ERR_INVALID;
    }
    return PKC_OK;
}

int
pkc_security_new(const pkc_security_config *cfg, pkc_security **out,
                 char *errbuf, size_t errlen)
{
    pkc_security *sec;
    int rc;

    *out = NULL;
    rc = security_check(cfg, errbuf, errlen);
    if (rc != PKC_OK)
        return rc;
    sec = calloc(1, sizeof(*sec));
    if (sec == NULL)
        goto nomem;
    pthread_mutex_init(&sec->token_mu, NULL);
    atomic_init(&sec->refs, 1);
    sec->mechanism = cfg->sasl_mechanism;
    sec->scram_max_iterations = cfg->scram_max_iterations;
    sec->tls = pkc_tls_ctx_ref(cfg->tls);
    if (cfg->username != NULL) {
        sec->username = security_dup(cfg->username, cfg->username_len);
        sec->username_len = cfg->username_len;
        if (sec->username == NULL)
            goto nomem;
    }
    if (cfg->password != NULL) {
        sec->password = security_dup(cfg->password, cfg->password_len);
        sec->password_len = cfg->password_len;
        if (sec->password == NULL)
            goto nomem;
    }
    *out = sec;
    return PKC_OK;

nomem:
    if (sec != NULL)
        security_free(sec);
    snprintf(errbuf, errlen, "out of memory");
    return PKC_ERR_NOMEM;
}

pkc_security *
pkc_security_ref(pkc_security *sec)
{
    if (sec != NULL)
        atomic_fetch_add(&sec->refs, 1);
    return sec;
}

void
pkc_security_unref(pkc_security *sec)
{
    if (sec != NULL && atomic_fetch_sub(&sec->refs, 1) == 1)
        security_free(sec);
}

pkc_tls_ctx *
pkc_security_tls(const pkc_security *sec)
{
    return sec != NULL ? sec->tls : NULL;
}

int
pkc_security_sasl_mechanism(const pkc_security *sec)
{
    return sec != NULL ? sec->mechanism : PKC_SASL_NONE;
}

/* Bearer tokens are printable ASCII (RFC 6750's b64token, which Kafka's
 * client-initial-response grammar admits). */
static int
security_token_ok(const char *token, size_t len)
{
    if (len == 0)
        return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)token[i] < 0x21 || (unsigned char)token[i] > 0x7e)
            return 0;
    return 1;
}

int
pkc_security_set_token(pkc_security *sec, const char *token, size_t len,
                       char *errbuf, size_t errlen)
{
    char *copy, *old;
    size_t old_len;

    if (sec->mechanism != PKC_SASL_OAUTHBEARER) {
        snprintf(errbuf, errlen, "a token is only used with OAUTHBEARER");
        return PKC_ERR_INVALID;
    }
    if (!security_token_ok(token, len)) {
        snprintf(errbuf, errlen, "the OAUTHBEARER token is empty or has "
                 "characters a bearer token cannot have (spaces, control "
                 "or non-ASCII characters)");
        return PKC_ERR_INVALID;
    }
    copy = security_dup(token, len);
    if (copy == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        return PKC_ERR_NOMEM;
    }
    pthread_mutex_lock(&sec->token_mu);
    old = sec->token;
    old_len = sec->token_len;
    sec->token = copy;
    sec->token_len = len;
    sec->generation++;
    pthread_mutex_unlock(&sec->token_mu);
    security_wipe(old, old_len);
    return PKC_OK;
}

int
pkc_security_has_credentials(pkc_security *sec)
{
    int have;

    if (sec->mechanism != PKC_SASL_OAUTHBEARER)
        return 1;
    pthread_mutex_lock(&sec->token_mu);
    have = sec->token != NULL;
    pthread_mutex_unlock(&sec->token_mu);
    return have;
}

uint64_t
pkc_security_generation(pkc_security *sec)
{
    uint64_t g;

    pthread_mutex_lock(&sec->token_mu);
    g = sec->generation;
    pthread_mutex_unlock(&sec->token_mu);
    return g;
}

int
pkc_security_sasl_client(pkc_security *sec, pkc_sasl_client **out,
                         uint64_t *generation, char *errbuf, size_t errlen)
{
    pkc_sasl_credentials cred;
    int rc;

    memset(&cred, 0, sizeof(cred));
    cred.mechanism = sec->mechanism;
    cred.username = sec->username;
    cred.username_len = sec->username_len;
    cred.password = sec->password;
    cred.password_len = sec->password_len;
    cred.scram_max_iterations = sec->scram_max_iterations;
    pthread_mutex_lock(&sec->token_mu);
    if (sec->mechanism == PKC_SASL_OAUTHBEARER && sec->token == NULL) {
        pthread_mutex_unlock(&sec->token_mu);
        snprintf(errbuf, errlen, "no OAUTHBEARER token: the token provider "
                 "has not given one");
        *out = NULL;
        return PKC_ERR_AUTH;
    }
    cred.token = sec->token;
    cred.token_len = sec->token_len;
    *generation = sec->generation;
    rc = pkc_sasl_client_new(&cred, out, errbuf, errlen);
    pthread_mutex_unlock(&sec->token_mu);
    return rc;
}
