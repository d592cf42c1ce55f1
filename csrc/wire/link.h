/*
 * link.h - one broker connection from TCP to ready: the broker link.
 *
 * Every connection pykafka_c makes to a broker, from the consumer's fetch
 * thread, the producer's send thread or the Python layer, is set up by a
 * pkc_link, one non-blocking state machine:
 *
 *   DOWN -> CONNECTING -> TLS_HANDSHAKE -> API_VERSIONS
 *        -> SASL_HANDSHAKE -> SASL_AUTHENTICATE -> READY
 *
 * (TLS only with a TLS context, SASL only with a mechanism).  CONNECTING
 * resolves the host (getaddrinfo, which may block), then connects without
 * blocking, trying every address.  API_VERSIONS asks ApiVersions (v3 with
 * the client's software name, falling back to what the broker says it
 * speaks, or v0 for brokers before 2.4) and keeps the broker's version
 * range of every API.  SASL_HANDSHAKE and SASL_AUTHENTICATE run the
 * mechanism of sasl.h over SaslHandshake v0-1 and SaslAuthenticate v0-2.
 * The whole set-up has one deadline, cfg.setup_timeout_ms after the start.
 *
 * Driving it.  The owner polls pkc_link_fd() for pkc_link_poll_events()
 * (with its other descriptors) until pkc_link_deadline(), and calls
 * pkc_link_step() when the descriptor is ready or the deadline has come.
 * pkc_link_step never blocks (but for name resolution at the start): it
 * goes through as many states as the socket allows and returns
 * PKC_IN_PROGRESS, PKC_OK (READY) or a failure.  pkc_link_run() does the
 * same for a caller that may block (the Python layer), up to a deadline.
 *
 * Once READY the owner sends requests on pkc_link_conn() (net.h) and
 * reads answers with pkc_link_recv_response(), which also notes when a
 * broker closes the connection before answering the first request after
 * set-up (a listener that wants SASL or TLS does that) and says so.
 *
 * Re-authentication (KIP-368).  When the broker gives the session a
 * lifetime, pkc_link_reauth_due() becomes true at 85-95 % of it (a random
 * point, as Kafka's clients do, and never within the second Kafka
 * refuses), for OAUTHBEARER only once the token has been replaced (the
 * same token would give a session that ends with it): the owner stops
 * sending, and once nothing is in flight calls pkc_link_step(), which
 * runs SaslHandshake and SaslAuthenticate again on the same connection
 * (no ApiVersions) and comes back to READY.
 *
 * Failures close the connection and are kept for the owner:
 * pkc_link_error() (a sentence, never with a secret), pkc_link_status()
 * (PKC_ERR_IO / TIMEOUT / CLOSED for the network, PKC_ERR_TLS, PKC_ERR_AUTH
 * for SASL, PKC_ERR_INVALID / TRUNCATED... for a malformed answer,
 * PKC_ERR_UNSUPPORTED for a broker too old) and pkc_link_kafka_error()
 * (the broker's error code when it gave one: 33 unsupported mechanism,
 * 34 illegal SASL state, 58 authentication failed, 35 ...; 0 otherwise).
 * TLS and SASL failures are not transient: an owner should not retry them
 * in a tight loop.
 *
 * Threads: a link is used by one thread at a time; its pkc_security is
 * shared.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "api_support.h"
#include "net.h"
#include "sasl.h"
#include "security.h"

typedef enum {
    PKC_LINK_DOWN = 0,
    PKC_LINK_CONNECTING,
    PKC_LINK_TLS_HANDSHAKE,
    PKC_LINK_API_VERSIONS,
    PKC_LINK_SASL_HANDSHAKE,
    PKC_LINK_SASL_AUTHENTICATE,
    PKC_LINK_READY
} pkc_link_state;

/* The highest ApiKey a link keeps a version range for. */
#define PKC_LINK_MAX_API_KEY 127

/* The newest ApiVersions version a link asks (v3 brought the client
 * name). */
#define PKC_LINK_API_VERSIONS_MAX PKC_VER_API_VERSIONS_MAX

typedef struct {
    int16_t min;   /* -1 when the broker does not list the API */
    int16_t max;
} pkc_api_range;

typedef struct {
    const char *client_id;        /* request headers; NULL: null (copied) */
    int32_t max_frame;            /* cap on one response; <= 0: default */
    const char *source_host;      /* bind before connecting; NULL/"": any */
    int source_port;
    int32_t setup_timeout_ms;     /* connect through authentication */
    pkc_security *security;       /* NULL: plain TCP, no SASL (the link
                                     takes its own reference) */
    const char *software_name;    /* ApiVersions v3 ClientSoftwareName */
    const char *software_version; /* ApiVersions v3 ClientSoftwareVersion */
    int16_t api_versions_version; /* first version asked; <= 0 or over the
                                     maximum: PKC_LINK_API_VERSIONS_MAX */
    int transport_only;           /* READY after TCP (and TLS): no
                                     ApiVersions; ignored with SASL, which
                                     needs it (tests and tools) */
} pkc_link_config;

typedef struct pkc_link {
    pkc_conn conn;
    int state;                    /* pkc_link_state */
    int64_t deadline;             /* of the set-up under way */
    int32_t setup_timeout_ms;
    pkc_security *security;
    char *source_host;
    int source_port;
    char *software_name;
    char *software_version;
    int transport_only;
    int16_t api_versions_version; /* the version to ask (and that worked) */
    int api_versions_tries;
    pkc_api_range api[PKC_LINK_MAX_API_KEY + 1];
    uint8_t *api_versions_body;   /* the last ApiVersions answer */
    size_t api_versions_len;
    /* SASL */
    pkc_sasl_client *sasl;
    int16_t sasl_handshake_version;
    int16_t sasl_authenticate_version;
    int authenticated;            /* a SASL exchange completed once */
    uint64_t auth_generation;     /* of the credentials of the session */
    int64_t reauth_at;            /* monotonic ms; INT64_MAX: never */
    int64_t session_lifetime_ms;
    /* After set-up */
    uint64_t answers;             /* responses read since READY */
    uint64_t setups;              /* times READY was reached */
    /* Failure */
    int status;                   /* pkc_status of the last failure */
    int16_t kafka_error;
    char error[512];
} pkc_link;

/* Initialise (no connection).  Returns PKC_OK, PKC_ERR_NOMEM or
 * PKC_ERR_INVALID; pkc_link_free must be called even on failure. */
int pkc_link_init(pkc_link *link, const pkc_link_config *cfg);
void pkc_link_free(pkc_link *link);

/*
 * Start setting up a connection to host:port at `now` (monotonic ms; any
 * connection already there is closed).  Returns what pkc_link_step
 * returns: PKC_IN_PROGRESS, PKC_OK (possible only after a first step), or
 * a failure.
 */
int pkc_link_start(pkc_link *link, const char *host, int port, int64_t now);

/*
 * Advance the set-up (or a re-authentication that is due, see above)
 * without blocking.  Returns PKC_IN_PROGRESS, PKC_OK once READY (also when
 * already READY with nothing to do), or a failure (the link is DOWN).
 */
int pkc_link_step(pkc_link *link, int64_t now);

/*
 * Set up (or re-authenticate) blocking until READY, a failure, `deadline`
 * (monotonic ms, with the set-up's own deadline) or a signal
 * (PKC_ERR_INTR: call again to go on).
 */
int pkc_link_run(pkc_link *link, int64_t deadline);

/* Close the connection (DOWN); the link may be started again. */
void pkc_link_close(pkc_link *link);

static inline int
pkc_link_is_ready(const pkc_link *link)
{
    return link->state == PKC_LINK_READY;
}

/* Between start and READY (or in a re-authentication). */
static inline int
pkc_link_in_setup(const pkc_link *link)
{
    return link->state != PKC_LINK_DOWN && link->state != PKC_LINK_READY;
}

static inline pkc_conn *
pkc_link_conn(pkc_link *link)
{
    return &link->conn;
}

static inline int
pkc_link_fd(const pkc_link *link)
{
    return link->conn.fd;
}

/* The deadline of the set-up under way (INT64_MAX when none). */
int64_t pkc_link_deadline(const pkc_link *link);

/*
 * The poll() events the link needs.  During set-up those of the state;
 * when READY those of the connection (unsent bytes, TLS), plus POLLIN when
 * `expect_read` (the owner waits for answers).
 */
short pkc_link_poll_events(const pkc_link *link, int expect_read);

/* The highest version of `api_key` in [lo, hi] that the broker supports,
 * or -1 (not listed, or no overlap).  Valid once READY. */
int16_t pkc_link_version(const pkc_link *link, int api_key, int lo, int hi);

/* The broker's range for `api_key` (min -1 when not listed). */
pkc_api_range pkc_link_api_range(const pkc_link *link, int api_key);

/* READY with a re-authentication due: the owner should send nothing new
 * and call pkc_link_step once nothing is in flight. */
int pkc_link_reauth_due(pkc_link *link, int64_t now);

/*
 * pkc_conn_recv_response on the link's connection; a failure closes the
 * link (DOWN), keeps the connection's sentence, and adds a hint when the
 * broker closed before answering anything since set-up.
 */
int pkc_link_recv_response(pkc_link *link, int64_t deadline,
                           pkc_response *resp);

/* The connection broke while READY (a send failed, a request timed out):
 * keep `status` and `why` (NULL: the connection's sentence) as the
 * link's failure and close it. */
void pkc_link_fail(pkc_link *link, int status, const char *why);

static inline const char *
pkc_link_error(const pkc_link *link)
{
    return link->error;
}

static inline int
pkc_link_status(const pkc_link *link)
{
    return link->status;
}

static inline int
pkc_link_kafka_error(const pkc_link *link)
{
    return link->kafka_error;
}

/* Is the last failure one that retrying will not fix by itself (TLS
 * verification, SASL authentication, a broker too old)? */
int pkc_link_failure_is_permanent(const pkc_link *link);

/* A short name of a state, for messages ("SASL handshake"). */
const char *pkc_link_state_name(int state);
