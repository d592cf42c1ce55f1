/*
 * link.c - the broker link: one connection from TCP to ready (link.h).
 */
#include "link.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_support.h"
#include "kafka_errors.h"
#include "proto.h"

/* ------------------------------------------------------------ failures */

/* Kafka's name of an error code, "?" for one it did not define. */
static const char *
link_error_name(int code)
{
    const char *name = pkc_kafka_error_name(code);

    return name != NULL ? name : "?";
}

static const char *const link_state_names[] = {
    [PKC_LINK_DOWN] = "not connected",
    [PKC_LINK_CONNECTING] = "connect",
    [PKC_LINK_TLS_HANDSHAKE] = "TLS handshake",
    [PKC_LINK_API_VERSIONS] = "ApiVersions",
    [PKC_LINK_SASL_HANDSHAKE] = "SASL handshake",
    [PKC_LINK_SASL_AUTHENTICATE] = "SASL authentication",
    [PKC_LINK_READY] = "ready",
};

const char *
pkc_link_state_name(int state)
{
    if (state < 0 || state > PKC_LINK_READY)
        return "?";
    return link_state_names[state];
}

/* "host:port" of the link's peer into buf. */
static void
link_peer(const pkc_link *link, char *buf, size_t len)
{
    const pkc_conn *c = &link->conn;

    if (strchr(c->host, ':') != NULL)
        snprintf(buf, len, "[%s]:%d", c->host, c->port);
    else
        snprintf(buf, len, "%s:%d", c->host, c->port);
}

/*
 * Record a failure ("host:port: <text>") with its status and the broker's
 * error code (0: none), close the connection and go DOWN.  Returns status.
 */
static int
link_failed(pkc_link *link, int status, int kafka_error, const char *fmt,
            ...) __attribute__((format(printf, 4, 5)));

static int
link_failed(pkc_link *link, int status, int kafka_error, const char *fmt,
            ...)
{
    char peer[300];
    size_t n;
    va_list va;

    link_peer(link, peer, sizeof(peer));
    n = (size_t)snprintf(link->error, sizeof(link->error), "%s: ", peer);
    if (n < sizeof(link->error)) {
        va_start(va, fmt);
        vsnprintf(link->error + n, sizeof(link->error) - n, fmt, va);
        va_end(va);
    }
    link->status = status;
    link->kafka_error = (int16_t)kafka_error;
    pkc_sasl_client_free(link->sasl);
    link->sasl = NULL;
    pkc_conn_close(&link->conn);
    link->state = PKC_LINK_DOWN;
    return status;
}

/* A failure of the connection itself: its own sentence says what. */
static int
link_conn_failed(pkc_link *link, int status)
{
    const char *why = link->conn.errstr[0] ? link->conn.errstr
                                           : pkc_status_str(status);
    char text[sizeof(link->conn.errstr)];

    snprintf(text, sizeof(text), "%s", why);
    snprintf(link->error, sizeof(link->error), "%s", text);
    link->status = status;
    link->kafka_error = 0;
    pkc_sasl_client_free(link->sasl);
    link->sasl = NULL;
    pkc_conn_close(&link->conn);
    link->state = PKC_LINK_DOWN;
    return status;
}

void
pkc_link_fail(pkc_link *link, int status, const char *why)
{
    if (why != NULL)
        snprintf(link->conn.errstr, sizeof(link->conn.errstr), "%s", why);
    link_conn_failed(link, status);
}

int
pkc_link_failure_is_permanent(const pkc_link *link)
{
    return link->status == PKC_ERR_TLS || link->status == PKC_ERR_AUTH ||
           link->status == PKC_ERR_UNSUPPORTED;
}

/* ------------------------------------------------------------ lifecycle */

static char *
link_strdup(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

int
pkc_link_init(pkc_link *link, const pkc_link_config *cfg)
{
    const char *cid = cfg->client_id;
    int rc;

    memset(link, 0, sizeof(*link));
    link->state = PKC_LINK_DOWN;
    link->reauth_at = INT64_MAX;
    link->deadline = INT64_MAX;
    rc = pkc_conn_init(&link->conn, cid, cid ? strlen(cid) : 0,
                       cfg->max_frame);
    if (rc != PKC_OK)
        return rc;
    link->setup_timeout_ms = cfg->setup_timeout_ms > 0 ? cfg->setup_timeout_ms
                                                       : 30000;
    link->security = pkc_security_ref(cfg->security);
    link->source_port = cfg->source_port;
    link->transport_only =
        cfg->transport_only &&
        pkc_security_sasl_mechanism(cfg->security) == PKC_SASL_NONE;
    link->api_versions_version =
        (cfg->api_versions_version > 0 &&
         cfg->api_versions_version <= PKC_LINK_API_VERSIONS_MAX)
            ? cfg->api_versions_version
            : PKC_LINK_API_VERSIONS_MAX;
    link->source_host = link_strdup(cfg->source_host ? cfg->source_host : "");
    link->software_name = link_strdup(cfg->software_name ? cfg->software_name
                                                         : "pykafka-c");
    link->software_version = link_strdup(
        cfg->software_version ? cfg->software_version : "0");
    if (link->source_host == NULL || link->software_name == NULL ||
        link->software_version == NULL)
        return PKC_ERR_NOMEM;
    return PKC_OK;
}

void
pkc_link_free(pkc_link *link)
{
    pkc_sasl_client_free(link->sasl);
    link->sasl = NULL;
    pkc_conn_free(&link->conn);
    pkc_security_unref(link->security);
    link->security = NULL;
    free(link->source_host);
    free(link->software_name);
    free(link->software_version);
    free(link->api_versions_body);
    link->source_host = link->software_name = link->software_version = NULL;
    link->api_versions_body = NULL;
}

void
pkc_link_close(pkc_link *link)
{
    pkc_sasl_client_free(link->sasl);
    link->sasl = NULL;
    pkc_conn_close(&link->conn);
    link->state = PKC_LINK_DOWN;
    link->deadline = INT64_MAX;
    link->reauth_at = INT64_MAX;
}

int64_t
pkc_link_deadline(const pkc_link *link)
{
    return pkc_link_in_setup(link) ? link->deadline : INT64_MAX;
}

/* ------------------------------------------------------------ versions */

pkc_api_range
pkc_link_api_range(const pkc_link *link, int api_key)
{
    pkc_api_range none = {-1, -1};

    if (api_key < 0 || api_key > PKC_LINK_MAX_API_KEY)
        return none;
    return link->api[api_key];
}

int16_t
pkc_link_version(const pkc_link *link, int api_key, int lo, int hi)
{
    pkc_api_range r = pkc_link_api_range(link, api_key);

    if (r.min < 0)
        return -1;
    if (r.min > lo)
        lo = r.min;
    if (r.max < hi)
        hi = r.max;
    return (int16_t)(lo <= hi ? hi : -1);
}

/* ------------------------------------------------------ request bodies */

/*
 * A request body of top-level fields only, for the small set-up messages:
 * each named field gets an integer or a byte string; the others take their
 * spec defaults.  Fields are told apart by their snake_case names.
 */
typedef struct {
    const char *name;
    const uint8_t *bytes;  /* NULL: an integer field */
    int32_t len;
} link_value;

typedef struct {
    const link_value *values;
    size_t n;
} link_body;

static const link_value *
link_body_find(const link_body *body, const pkc_proto_field *f)
{
    for (size_t i = 0; i < body->n; i++)
        if (strcmp(body->values[i].name, f->name) == 0)
            return &body->values[i];
    return NULL;
}

static int
link_body_has(void *ctx, const pkc_proto_field *f)
{
    return link_body_find(ctx, f) != NULL;
}

static int
link_body_get_bytes(void *ctx, const pkc_proto_field *f, pkc_slice *out)
{
    const link_value *v = link_body_find(ctx, f);

    if (v == NULL || v->bytes == NULL)
        return PKC_PROTO_BADTYPE;
    out->ptr = v->bytes;
    out->len = v->len;
    return 0;
}

/*
 * Queue request `api_key`/`version` with `body` and write what the socket
 * takes now.  Returns PKC_OK or a failure (the link is then DOWN).
 */
static int
link_send(pkc_link *link, int api_key, int version, const link_body *body)
{
    const pkc_proto_api *api = pkc_proto_api_find(api_key);
    pkc_proto_source src;
    pkc_proto_error perr;
    pkc_writer *w;
    int rc;

    memset(&src, 0, sizeof(src));
    src.ctx = (void *)body;
    src.has = link_body_has;
    src.get_bytes = link_body_get_bytes;
    rc = pkc_conn_request_begin(&link->conn, (int16_t)api_key,
                                (int16_t)version,
                                pkc_proto_is_flexible(api, version), &w);
    if (rc != PKC_OK)
        return link_conn_failed(link, rc);
    memset(&perr, 0, sizeof(perr));
    rc = pkc_proto_encode(w, PKC_PROTO_REQUEST, api_key, version, &src,
                          &perr);
    if (rc != 0) {
        pkc_conn_request_abort(&link->conn);
        return link_failed(link, PKC_ERR_INVALID, 0, "cannot encode %s v%d: "
                           "%s (field '%s')", api->name, version,
                           perr.what ? perr.what : pkc_status_str(rc),
                           perr.path);
    }
    rc = pkc_conn_request_end(&link->conn, 1, NULL);
    if (rc == PKC_OK)
        rc = pkc_conn_flush(&link->conn, 0);
    if (rc == PKC_ERR_TIMEOUT || rc == PKC_ERR_INTR)
        rc = PKC_OK; /* the rest goes out when the socket is writable */
    if (rc != PKC_OK)
        return link_conn_failed(link, rc);
    return PKC_OK;
}

/* ----------------------------------------------------- response fields */

/*
 * What the set-up answers carry, collected by one visitor: the top-level
 * error code, error message, auth bytes and session lifetime, the
 * ApiVersions ranges, and the SaslHandshake mechanisms (as one
 * comma-separated text).
 */
typedef struct {
    pkc_link *link;
    int16_t error_code;
    pkc_slice error_message;   /* len -1: null */
    pkc_slice auth_bytes;
    int64_t session_lifetime_ms;
    int32_t key;               /* the ApiVersions entry being read */
    int16_t key_min, key_max;
    int ours_listed;           /* SaslHandshake lists our mechanism */
    const char *our_mechanism;
    char mechanisms[256];
    size_t mechanisms_len;
} link_answer;

static int
link_answer_int(void *ctx, const pkc_proto_field *f, int64_t v)
{
    link_answer *a = ctx;

    if (strcmp(f->name, "error_code") == 0)
        a->error_code = (int16_t)v;
    else if (strcmp(f->name, "session_lifetime_ms") == 0)
        a->session_lifetime_ms = v;
    else if (strcmp(f->name, "api_key") == 0)
        a->key = (int32_t)v;
    else if (strcmp(f->name, "min_version") == 0)
        a->key_min = (int16_t)v;
    else if (strcmp(f->name, "max_version") == 0)
        a->key_max = (int16_t)v;
    return 0;
}

/* Append a mechanism name to the printable list (bounded, sanitized). */
static void
link_answer_add_mechanism(link_answer *a, pkc_slice s)
{
    size_t room = sizeof(a->mechanisms) - 1 - a->mechanisms_len;

    if (a->mechanisms_len > 0 && room > 2) {
        memcpy(a->mechanisms + a->mechanisms_len, ", ", 2);
        a->mechanisms_len += 2;
        room -= 2;
    }
    for (int32_t i = 0; i < s.len && room > 0; i++, room--) {
        uint8_t c = s.ptr[i];
        a->mechanisms[a->mechanisms_len++] =
            (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    a->mechanisms[a->mechanisms_len] = '\0';
}

static int
link_answer_string(void *ctx, const pkc_proto_field *f, pkc_slice s)
{
    link_answer *a = ctx;

    if (strcmp(f->name, "error_message") == 0) {
        a->error_message = s;
    }
    else if (strcmp(f->name, "mechanisms") == 0) {
        size_t ours = strlen(a->our_mechanism);
        if (s.len >= 0 && (size_t)s.len == ours &&
            memcmp(s.ptr, a->our_mechanism, ours) == 0)
            a->ours_listed = 1;
        link_answer_add_mechanism(a, s);
    }
    return 0;
}

static int
link_answer_bytes(void *ctx, const pkc_proto_field *f, pkc_slice s)
{
    link_answer *a = ctx;

    if (strcmp(f->name, "auth_bytes") == 0)
        a->auth_bytes = s;
    return 0;
}

static int
link_answer_end_struct(void *ctx, const pkc_proto_field *f,
                       const pkc_proto_struct *s)
{
    link_answer *a = ctx;
    pkc_link *link = a->link;

    (void)s;
    if (f == NULL || strcmp(f->name, "api_keys") != 0)
        return 0;
    if (a->key >= 0 && a->key <= PKC_LINK_MAX_API_KEY && a->key_min >= 0 &&
        a->key_min <= a->key_max) {
        link->api[a->key].min = a->key_min;
        link->api[a->key].max = a->key_max;
    }
    a->key = -1;
    return 0;
}

/* Decode an answer of `api_key`/`version` into *a.  Returns PKC_OK or a
 * failure (the link is DOWN). */
static int
link_decode(pkc_link *link, const pkc_response *resp, int version,
            link_answer *a)
{
    const pkc_proto_api *api = pkc_proto_api_find(resp->api_key);
    pkc_proto_visitor vis;
    pkc_proto_error perr;
    pkc_reader r;
    int rc;

    memset(&vis, 0, sizeof(vis));
    vis.ctx = a;
    vis.on_int = link_answer_int;
    vis.on_string = link_answer_string;
    vis.on_bytes = link_answer_bytes;
    vis.end_struct = link_answer_end_struct;
    a->link = link;
    a->error_message.len = -1;
    a->auth_bytes.len = -1;
    a->key = -1;
    memset(&perr, 0, sizeof(perr));
    pkc_reader_init(&r, resp->body, resp->body_len);
    rc = pkc_proto_decode(&r, PKC_PROTO_RESPONSE, resp->api_key, version,
                          &vis, &perr);
    if (rc == 0)
        return PKC_OK;
    if (rc > 0 || rc == PKC_PROTO_ABORT || rc == PKC_PROTO_BADTYPE)
        rc = PKC_ERR_INVALID;
    return link_failed(link, rc, 0, "malformed %s v%d answer during %s: %s "
                       "in field '%s' at byte %zu of %zu",
                       api ? api->name : "?", version,
                       pkc_link_state_name(link->state), pkc_status_str(rc),
                       perr.path, perr.offset, resp->body_len);
}

/* The broker's error message, printable and bounded, into buf. */
static const char *
link_message_text(pkc_slice msg, char *buf, size_t len)
{
    size_t n = 0;

    if (msg.len <= 0 || len == 0)
        return "";
    for (int32_t i = 0; i < msg.len && n + 1 < len; i++) {
        uint8_t c = msg.ptr[i];
        buf[n++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    buf[n] = '\0';
    return buf;
}

/* ------------------------------------------------------------ ApiVersions */

static int
link_send_api_versions(pkc_link *link)
{
    int v = link->api_versions_version;
    link_value values[] = {
        {"client_software_name", (const uint8_t *)link->software_name,
         (int32_t)strlen(link->software_name)},
        {"client_software_version", (const uint8_t *)link->software_version,
         (int32_t)strlen(link->software_version)},
    };
    link_body body = {values, v >= 3 ? 2 : 0};

    link->state = PKC_LINK_API_VERSIONS;
    link->api_versions_tries++;
    return link_send(link, PKC_API_API_VERSIONS, v, &body);
}

static int link_start_sasl(pkc_link *link);
static int link_sasl_continue(pkc_link *link, const uint8_t *token,
                              size_t len);
static int link_ready(pkc_link *link, int64_t now);
static int link_connected(pkc_link *link, int64_t now);

/* Keep a copy of the answer for the layer above (Python's Broker). */
static int
link_keep_api_versions(pkc_link *link, const pkc_response *resp)
{
    uint8_t *copy = malloc(resp->body_len ? resp->body_len : 1);

    if (copy == NULL)
        return link_failed(link, PKC_ERR_NOMEM, 0, "out of memory");
    memcpy(copy, resp->body, resp->body_len);
    free(link->api_versions_body);
    link->api_versions_body = copy;
    link->api_versions_len = resp->body_len;
    return PKC_OK;
}

/*
 * A broker that does not know the ApiVersions version we asked answers
 * UNSUPPORTED_VERSION in the v0 layout: with its own ApiVersions range
 * from Kafka 2.4 (KIP-511), with an empty list before that, which means
 * "ask v0".  Returns PKC_IN_PROGRESS after asking again, or a failure.
 */
static int
link_api_versions_retry(pkc_link *link, const link_answer *a)
{
    pkc_api_range own = link->api[PKC_API_API_VERSIONS];
    int next = 0;

    if (own.min >= 0) {
        next = own.max < PKC_LINK_API_VERSIONS_MAX ? own.max
                                                   : PKC_LINK_API_VERSIONS_MAX;
        if (next < own.min)
            next = -1;
    }
    if (link->api_versions_version == 0 || next < 0 ||
        next >= link->api_versions_version || link->api_versions_tries >= 3)
        return link_failed(link, PKC_ERR_UNSUPPORTED, a->error_code,
                           "the broker refused every ApiVersions version "
                           "(error %d, %s)", a->error_code,
                           link_error_name(a->error_code));
    link->api_versions_version = (int16_t)next;
    for (int k = 0; k <= PKC_LINK_MAX_API_KEY; k++)
        link->api[k].min = link->api[k].max = -1;
    if (link_send_api_versions(link) != PKC_OK)
        return link->status;
    return PKC_IN_PROGRESS;
}

static int
link_on_api_versions(pkc_link *link, const pkc_response *resp, int64_t now)
{
    link_answer a;
    int version = link->api_versions_version;
    int rc;

    memset(&a, 0, sizeof(a));
    a.our_mechanism = "";
    /* An error answer always has the v0 layout (KIP-511). */
    if (resp->body_len >= 2 &&
        (int16_t)pkc_load_u16(resp->body) == PKC_KERR_UNSUPPORTED_VERSION)
        version = 0;
    for (int k = 0; k <= PKC_LINK_MAX_API_KEY; k++)
        link->api[k].min = link->api[k].max = -1;
    rc = link_decode(link, resp, version, &a);
    if (rc != PKC_OK)
        return rc;
    if (a.error_code == PKC_KERR_UNSUPPORTED_VERSION)
        return link_api_versions_retry(link, &a);
    if (a.error_code != 0)
        return link_failed(link, PKC_ERR_UNSUPPORTED, a.error_code,
                           "ApiVersions failed with error %d (%s)",
                           a.error_code, link_error_name(a.error_code));
    rc = link_keep_api_versions(link, resp);
    if (rc != PKC_OK)
        return rc;
    if (pkc_security_sasl_mechanism(link->security) != PKC_SASL_NONE)
        return link_start_sasl(link);
    return link_ready(link, now);
}

/* ------------------------------------------------------------ SASL */

static int
link_send_sasl_handshake(pkc_link *link)
{
    const char *mech =
        pkc_sasl_mechanism_name(pkc_security_sasl_mechanism(link->security));
    link_value values[] = {
        {"mechanism", (const uint8_t *)mech, (int32_t)strlen(mech)},
    };
    link_body body = {values, 1};

    link->state = PKC_LINK_SASL_HANDSHAKE;
    if (link_send(link, PKC_API_SASL_HANDSHAKE,
                  link->sasl_handshake_version, &body) != PKC_OK)
        return link->status;
    return PKC_IN_PROGRESS;
}

/* Pick the SASL versions (SaslHandshake v1: tokens in SaslAuthenticate;
 * the v0 raw-token framing of Kafka before 1.0 is not spoken). */
static int
link_start_sasl(pkc_link *link)
{
    link->sasl_handshake_version =
        pkc_link_version(link, PKC_API_SASL_HANDSHAKE, 1,
                         PKC_VER_SASL_HANDSHAKE_MAX);
    link->sasl_authenticate_version =
        pkc_link_version(link, PKC_API_SASL_AUTHENTICATE,
                         PKC_VER_SASL_AUTHENTICATE_MIN,
                         PKC_VER_SASL_AUTHENTICATE_MAX);
    if (link->sasl_handshake_version < 0 ||
        link->sasl_authenticate_version < 0)
        return link_failed(link, PKC_ERR_UNSUPPORTED, 0,
                           "the broker does not offer SaslHandshake v1 and "
                           "SaslAuthenticate (Kafka 1.0 or newer is needed "
                           "for SASL; is this listener a SASL listener?)");
    return link_send_sasl_handshake(link);
}

static int
link_send_sasl_token(pkc_link *link, const uint8_t *token, size_t len)
{
    link_value values[] = {
        {"auth_bytes", token ? token : (const uint8_t *)"", (int32_t)len},
    };
    link_body body = {values, 1};

    link->state = PKC_LINK_SASL_AUTHENTICATE;
    if (link_send(link, PKC_API_SASL_AUTHENTICATE,
                  link->sasl_authenticate_version, &body) != PKC_OK)
        return link->status;
    return PKC_IN_PROGRESS;
}

/* Why the broker refused the handshake. */
static int
link_handshake_refused(pkc_link *link, const link_answer *a, const char *mech)
{
    if (a->error_code == PKC_KERR_UNSUPPORTED_SASL_MECHANISM)
        return link_failed(link, PKC_ERR_AUTH, a->error_code,
                           "the broker does not offer the SASL mechanism %s; "
                           "it offers: %s", mech,
                           a->mechanisms_len ? a->mechanisms : "none");
    if (a->error_code == PKC_KERR_ILLEGAL_SASL_STATE)
        return link_failed(link, PKC_ERR_AUTH, a->error_code,
                           "the broker refused the SASL handshake (%s): is "
                           "the port a SASL listener (SASL_PLAINTEXT or "
                           "SASL_SSL)?", link_error_name(a->error_code));
    return link_failed(link, PKC_ERR_AUTH, a->error_code,
                       "the SASL handshake failed with error %d (%s)",
                       a->error_code, link_error_name(a->error_code));
}

static int
link_on_sasl_handshake(pkc_link *link, const pkc_response *resp)
{
    const char *mech =
        pkc_sasl_mechanism_name(pkc_security_sasl_mechanism(link->security));
    char why[256];
    link_answer a;
    int rc;

    memset(&a, 0, sizeof(a));
    a.our_mechanism = mech;
    rc = link_decode(link, resp, link->sasl_handshake_version, &a);
    if (rc != PKC_OK)
        return rc;
    if (a.error_code != 0)
        return link_handshake_refused(link, &a, mech);
    if (!a.ours_listed)
        return link_failed(link, PKC_ERR_INVALID, 0,
                           "the broker accepted the SASL mechanism %s but "
                           "does not list it (it lists: %s)", mech,
                           a.mechanisms_len ? a.mechanisms : "nothing");
    pkc_sasl_client_free(link->sasl);
    link->sasl = NULL;
    rc = pkc_security_sasl_client(link->security, &link->sasl,
                                  &link->auth_generation, why, sizeof(why));
    if (rc != PKC_OK)
        return link_failed(link, rc, 0, "%s", why);
    return link_sasl_continue(link, NULL, 0);
}

static int
link_on_sasl_authenticate(pkc_link *link, const pkc_response *resp,
                          int64_t now)
{
    char text[256];
    link_answer a;
    int rc;

    memset(&a, 0, sizeof(a));
    a.our_mechanism = "";
    rc = link_decode(link, resp, link->sasl_authenticate_version, &a);
    if (rc != PKC_OK)
        return rc;
    if (a.error_code != 0)
        return link_failed(
            link, PKC_ERR_AUTH, a.error_code,
            "SASL authentication with %s failed: %s%s%s",
            pkc_sasl_mechanism_name(
                pkc_security_sasl_mechanism(link->security)),
            link_error_name(a.error_code),
            a.error_message.len > 0 ? ": " : "",
            link_message_text(a.error_message, text, sizeof(text)));
    link->session_lifetime_ms = a.session_lifetime_ms;
    rc = link_sasl_continue(link, a.auth_bytes.ptr,
                            a.auth_bytes.len > 0 ? (size_t)a.auth_bytes.len
                                                 : 0);
    if (rc == PKC_OK)
        return link_ready(link, now);
    return rc;
}

/* One more mechanism step with the broker's last token (NULL: the
 * first). */
static int
link_sasl_continue(pkc_link *link, const uint8_t *token, size_t len)
{
    const uint8_t *out = NULL;
    size_t out_len = 0;
    int rc;

    rc = pkc_sasl_client_step(link->sasl, token, len, &out, &out_len);
    if (rc == PKC_IN_PROGRESS)
        return link_send_sasl_token(link, out, out_len);
    if (rc == PKC_OK) {
        pkc_sasl_client_free(link->sasl);
        link->sasl = NULL;
        link->authenticated = 1;
        return PKC_OK;
    }
    return link_failed(
        link, rc == PKC_ERR_NOMEM ? rc : PKC_ERR_AUTH,
        rc == PKC_ERR_AUTH ? PKC_KERR_SASL_AUTHENTICATION_FAILED : 0,
        "SASL authentication with %s failed: %s",
        pkc_sasl_mechanism_name(pkc_security_sasl_mechanism(link->security)),
        pkc_sasl_client_error(link->sasl));
}

/* ------------------------------------------------------------ ready */

/* Kafka refuses a re-authentication that starts less than a second after
 * the previous one (KafkaChannel's MIN_REAUTH_INTERVAL): the link waits a
 * little longer than that. */
#define LINK_REAUTH_MIN_INTERVAL_MS 1100

/* A point at 85-95 % of the session's lifetime (spread so that many
 * connections do not re-authenticate at once), and not within the
 * broker's minimum interval.  A session too short for both ends at the
 * broker, which closes the connection; the link then reconnects. */
static int64_t
link_reauth_point(pkc_link *link, int64_t now)
{
    uint64_t x = (uint64_t)now ^ (uint64_t)(uintptr_t)link ^
                 (link->setups * 0x9E3779B97F4A7C15ULL);
    int64_t permille, at;

    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    permille = 850 + (int64_t)(x % 101);
    at = now + link->session_lifetime_ms * permille / 1000;
    return at > now + LINK_REAUTH_MIN_INTERVAL_MS
               ? at : now + LINK_REAUTH_MIN_INTERVAL_MS;
}

static int
link_ready(pkc_link *link, int64_t now)
{
    link->state = PKC_LINK_READY;
    link->deadline = INT64_MAX;
    link->status = PKC_OK;
    link->kafka_error = 0;
    link->error[0] = '\0';
    link->setups++;
    link->reauth_at = link->session_lifetime_ms > 0
                          ? link_reauth_point(link, now)
                          : INT64_MAX;
    return PKC_OK;
}

int
pkc_link_reauth_due(pkc_link *link, int64_t now)
{
    if (link->state != PKC_LINK_READY || now < link->reauth_at)
        return 0;
    if (pkc_security_sasl_mechanism(link->security) != PKC_SASL_OAUTHBEARER)
        return 1;
    return pkc_security_generation(link->security) != link->auth_generation;
}

/* ------------------------------------------------------------ stepping */

int
pkc_link_start(pkc_link *link, const char *host, int port, int64_t now)
{
    int rc;

    pkc_link_close(link);
    link->status = PKC_OK;
    link->kafka_error = 0;
    link->error[0] = '\0';
    link->answers = 0;
    link->api_versions_tries = 0;
    link->authenticated = 0;
    link->session_lifetime_ms = 0;
    link->deadline = now + link->setup_timeout_ms;
    link->state = PKC_LINK_CONNECTING;
    rc = pkc_conn_connect_start(&link->conn, host, port, link->deadline,
                                link->source_host, link->source_port);
    if (rc != PKC_OK && rc != PKC_IN_PROGRESS)
        return link_conn_failed(link, rc);
    if (rc == PKC_OK) { /* connected at once (loopback) */
        rc = link_connected(link, now);
        if (rc != PKC_IN_PROGRESS)
            return rc;
    }
    return pkc_link_step(link, now);
}

/* The byte stream is up (TCP, and TLS when on): ApiVersions next, or
 * READY for a transport-only link. */
static int
link_transport_up(pkc_link *link, int64_t now)
{
    if (link->transport_only)
        return link_ready(link, now);
    return link_send_api_versions(link) == PKC_OK ? PKC_IN_PROGRESS
                                                   : link->status;
}

/* The TCP connection is up: TLS next, or the rest. */
static int
link_connected(pkc_link *link, int64_t now)
{
    pkc_tls_ctx *tls = pkc_security_tls(link->security);
    int rc;

    if (tls == NULL)
        return link_transport_up(link, now);
    rc = pkc_conn_tls_start(&link->conn, tls);
    if (rc != PKC_OK)
        return link_conn_failed(link, rc);
    link->state = PKC_LINK_TLS_HANDSHAKE;
    return PKC_IN_PROGRESS;
}

/* Read one answer of the set-up, if a whole one is there. */
static int
link_read_answer(pkc_link *link, int64_t now)
{
    pkc_response resp;
    int rc;

    do {
        rc = pkc_conn_recv_response(&link->conn, 0, &resp);
    } while (rc == PKC_ERR_INTR);
    if (rc == PKC_ERR_TIMEOUT)
        return PKC_IN_PROGRESS; /* not all of it yet */
    if (rc != PKC_OK)
        return link_conn_failed(link, rc);
    switch (link->state) {
    case PKC_LINK_API_VERSIONS:
        return link_on_api_versions(link, &resp, now);
    case PKC_LINK_SASL_HANDSHAKE:
        rc = link_on_sasl_handshake(link, &resp);
        return rc == PKC_OK ? link_ready(link, now) : rc;
    case PKC_LINK_SASL_AUTHENTICATE:
        return link_on_sasl_authenticate(link, &resp, now);
    default:
        return link_failed(link, PKC_ERR_INVALID, 0, "an answer in state %s",
                           pkc_link_state_name(link->state));
    }
}

/* One move of the state machine; PKC_IN_PROGRESS also when a state was
 * left and the next one may move at once (the caller loops). */
static int
link_move(pkc_link *link, int64_t now, int *moved)
{
    int before = link->state, rc;

    switch (link->state) {
    case PKC_LINK_CONNECTING:
        rc = pkc_conn_connect_step(&link->conn);
        if (rc == PKC_OK)
            rc = link_connected(link, now);
        else if (rc != PKC_IN_PROGRESS)
            rc = link_conn_failed(link, rc);
        break;
    case PKC_LINK_TLS_HANDSHAKE:
        rc = pkc_conn_tls_step(&link->conn);
        if (rc == PKC_OK)
            rc = link_transport_up(link, now);
        else if (rc != PKC_IN_PROGRESS)
            rc = link_conn_failed(link, rc);
        break;
    default:
        rc = link_read_answer(link, now);
        break;
    }
    *moved = link->state != before;
    return rc;
}

/* READY: start a re-authentication when it is due and nothing is in
 * flight. */
static int
link_step_ready(pkc_link *link, int64_t now)
{
    if (!pkc_link_reauth_due(link, now) ||
        pkc_conn_in_flight(&link->conn) > 0 ||
        pkc_conn_unsent(&link->conn) > 0)
        return PKC_OK;
    link->deadline = now + link->setup_timeout_ms;
    link->reauth_at = INT64_MAX;
    return link_send_sasl_handshake(link);
}

int
pkc_link_step(pkc_link *link, int64_t now)
{
    int rc = PKC_IN_PROGRESS, moved = 1;

    if (link->state == PKC_LINK_DOWN)
        return link->status != PKC_OK ? link->status : PKC_ERR_CLOSED;
    if (link->state == PKC_LINK_READY) {
        rc = link_step_ready(link, now);
        if (rc != PKC_IN_PROGRESS)
            return rc;
    }
    while (rc == PKC_IN_PROGRESS && moved && pkc_link_in_setup(link))
        rc = link_move(link, now, &moved);
    if (rc == PKC_IN_PROGRESS && now >= link->deadline)
        return link_failed(link, PKC_ERR_TIMEOUT, 0,
                           "setting up the connection timed out after %d ms "
                           "(in the %s)", (int)link->setup_timeout_ms,
                           pkc_link_state_name(link->state));
    return rc;
}

short
pkc_link_poll_events(const pkc_link *link, int expect_read)
{
    switch (link->state) {
    case PKC_LINK_DOWN:
        return 0;
    case PKC_LINK_CONNECTING:
        return POLLOUT;
    case PKC_LINK_READY:
        return pkc_conn_poll_events(&link->conn, expect_read);
    default:
        return pkc_conn_poll_events(&link->conn, 1);
    }
}

int
pkc_link_run(pkc_link *link, int64_t deadline)
{
    for (;;) {
        int64_t now = pkc_now_ms(), until;
        struct pollfd pfd;
        int rc = pkc_link_step(link, now), timeout;

        if (rc != PKC_IN_PROGRESS)
            return rc;
        if (now >= deadline)
            return link_failed(link, PKC_ERR_TIMEOUT, 0,
                               "setting up the connection timed out (in the "
                               "%s)", pkc_link_state_name(link->state));
        until = link->deadline < deadline ? link->deadline : deadline;
        timeout = until - now > INT_MAX ? INT_MAX : (int)(until - now);
        pfd.fd = pkc_link_fd(link);
        pfd.events = pkc_link_poll_events(link, 1);
        pfd.revents = 0;
        if (poll(&pfd, 1, timeout) < 0) {
            if (errno == EINTR)
                return PKC_ERR_INTR;
            return link_failed(link, PKC_ERR_IO, 0, "poll failed: %s",
                               strerror(errno));
        }
    }
}

/* ------------------------------------------------------------ answers */

int
pkc_link_recv_response(pkc_link *link, int64_t deadline, pkc_response *resp)
{
    int rc = pkc_conn_recv_response(&link->conn, deadline, resp);
    char why[sizeof(link->conn.errstr)];

    if (rc == PKC_OK) {
        link->answers++;
        return rc;
    }
    if (rc == PKC_ERR_TIMEOUT || rc == PKC_ERR_INTR ||
        (rc == PKC_ERR_INVALID && pkc_conn_is_open(&link->conn)))
        return rc;
    if (rc == PKC_ERR_CLOSED && link->answers == 0 && link->setups > 0 &&
        !link->authenticated) {
        snprintf(why, sizeof(why), "%s", link->conn.errstr);
        snprintf(link->conn.errstr, sizeof(link->conn.errstr), "%.200s (the "
                 "broker closed the connection before answering the first "
                 "request: does the listener require SASL or TLS?)", why);
    }
    return link_conn_failed(link, rc);
}
