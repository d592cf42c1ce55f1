/*
 * tls.h - TLS for broker connections, on the system's OpenSSL (no Python).
 *
 * A pkc_tls_ctx is one client's TLS settings (an SSL_CTX): the CAs it
 * trusts, its certificate and key for mutual TLS, a CRL, and whether the
 * broker's host name is checked.  It is made once, never changed
 * afterwards, reference-counted, and shared by every connection and thread
 * of the client (OpenSSL allows a configured SSL_CTX to be shared).
 *
 * A pkc_tls is one connection's TLS session over a connected non-blocking
 * socket.  Nothing here blocks: every call does what the socket allows and
 * says which readiness it waits for in *want (POLLIN or POLLOUT), taken
 * from OpenSSL's last answer rather than from the operation, since a read
 * may need to write and a write to read (TLS 1.3 post-handshake messages).
 * Decrypted bytes may wait inside OpenSSL (pkc_tls_pending) where poll()
 * cannot see them, so a reader reads until the call reports PKC_IN_PROGRESS.
 * A pkc_tls is used by one thread at a time; OpenSSL's error queue is per
 * thread and is cleared before every call.
 *
 * Verification (always on): the broker's chain must lead to a trusted CA
 * (the CA file and/or directory, or the system's default store when
 * neither is given), and, unless the context was made with
 * verify_hostname 0, the certificate must name the host that was dialled
 * (DNS or IP subject alternative names; the subject CN only for a
 * certificate without DNS names, as OpenSSL does).  SNI is sent for host
 * names, never for IP literals (RFC 6066).  TLS 1.2 is the minimum.
 *
 * Built without OpenSSL (PKC_HAVE_OPENSSL undefined) every function
 * exists: pkc_tls_ctx_new fails with PKC_ERR_UNSUPPORTED and a sentence
 * naming the missing library, and pkc_tls_available() returns 0.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

typedef struct pkc_tls_ctx pkc_tls_ctx;
typedef struct pkc_tls pkc_tls;

/* Settings of a TLS context.  Every string is copied or used during
 * pkc_tls_ctx_new only; NULL means "not given". */
typedef struct {
    const char *cafile;        /* PEM file of trusted CAs */
    const char *capath;        /* directory of hashed CA certificates */
    const char *certfile;      /* client certificate chain (PEM), mTLS */
    const char *keyfile;       /* its private key (PEM; NULL: in certfile) */
    const char *key_password;  /* passphrase of an encrypted key */
    size_t key_password_len;
    const char *crlfile;       /* PEM CRL(s): revoked broker certificates */
    int verify_hostname;       /* 1: the certificate must name the host */
} pkc_tls_config;

/* 1 when this build has OpenSSL. */
int pkc_tls_available(void);

/* The OpenSSL version text ("OpenSSL 3.0.19 ..."), or a sentence saying
 * there is none. */
const char *pkc_tls_library_version(void);

/*
 * Make a context.  Returns PKC_OK, PKC_ERR_TLS (a file that cannot be
 * read or parsed, a key that does not match its certificate, a wrong key
 * password: `errbuf` says which, never with the password), PKC_ERR_NOMEM
 * or PKC_ERR_UNSUPPORTED (no OpenSSL in this build).
 */
int pkc_tls_ctx_new(const pkc_tls_config *cfg, pkc_tls_ctx **out,
                    char *errbuf, size_t errlen);
/* Take / drop a reference (thread-safe); the last unref frees it. */
pkc_tls_ctx *pkc_tls_ctx_ref(pkc_tls_ctx *ctx);
void pkc_tls_ctx_unref(pkc_tls_ctx *ctx);
int pkc_tls_ctx_verifies_hostname(const pkc_tls_ctx *ctx);

/*
 * Start a client session over the connected socket `fd` (not owned) to
 * `host` (the name or address that was dialled: used for SNI and the
 * host-name check).  Returns PKC_OK, PKC_ERR_NOMEM or PKC_ERR_TLS.
 */
int pkc_tls_new(pkc_tls_ctx *ctx, int fd, const char *host, pkc_tls **out,
                char *errbuf, size_t errlen);
void pkc_tls_free(pkc_tls *tls);

/*
 * Advance the handshake.  PKC_OK when it is complete and the broker's
 * certificate verified; PKC_IN_PROGRESS with *want set; PKC_ERR_TLS
 * (verification failed, an alert, a peer that is no TLS server or that
 * closes: a PLAINTEXT listener drops a ClientHello) or PKC_ERR_IO, with
 * the reason in pkc_tls_error().
 */
int pkc_tls_handshake(pkc_tls *tls, short *want);

/*
 * Read up to `len` decrypted bytes.  PKC_OK with *got > 0; PKC_IN_PROGRESS
 * (nothing now; *want says what to poll for); PKC_ERR_CLOSED (the peer
 * closed); PKC_ERR_TLS (an alert, e.g. the broker refusing our
 * certificate right after a TLS 1.3 handshake) or PKC_ERR_IO (errno in
 * *err) with the reason in pkc_tls_error().
 */
int pkc_tls_read(pkc_tls *tls, void *buf, size_t len, size_t *got,
                 short *want, int *err);

/*
 * Write up to `len` bytes.  PKC_OK with *put > 0 (one or more whole TLS
 * records; partial writes are enabled, so call again with the rest);
 * PKC_IN_PROGRESS with *want; PKC_ERR_CLOSED / PKC_ERR_TLS / PKC_ERR_IO as
 * for reads.  After PKC_IN_PROGRESS, retry with the same bytes.
 */
int pkc_tls_write(pkc_tls *tls, const void *buf, size_t len, size_t *put,
                  short *want, int *err);

/* Decrypted bytes buffered inside OpenSSL (readable without poll). */
size_t pkc_tls_pending(const pkc_tls *tls);

/* The last failure of this session, a sentence (never empty after an
 * error). */
const char *pkc_tls_error(const pkc_tls *tls);

/* "TLSv1.3 TLS_AES_256_GCM_SHA384" after the handshake (for tests and
 * repr), or "". */
const char *pkc_tls_describe(const pkc_tls *tls, char *buf, size_t len);
