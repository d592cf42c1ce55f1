/*
 * fetchloop_broker.c - one broker's link as the fetch thread drives it:
 * set-up progress, the Fetch sent, the answer read, deadlines, and what a
 * failure does to the broker's partitions.  Private to the engine (see
 * fetchloop_int.h).
 */
#include "fetchloop_int.h"

#include <poll.h>
#include <stdio.h>
#include <string.h>

#include "api_support.h"
#include "kafka_errors.h"

/* Setting a connection up (connect, TLS, ApiVersions, SASL) is given up
 * after at most this long (it never blocks the thread: see
 * fl_connect_start). */
#define FL_CONNECT_CAP_MS 10000

/* A broker's link, set up as the engine's config says. */
int
fl_link_init(pkc_fl *fl, pkc_link *link)
{
    pkc_link_config lc;
    int32_t setup_ms = fl->cfg.socket_timeout_ms;

    if (setup_ms > FL_CONNECT_CAP_MS)
        setup_ms = FL_CONNECT_CAP_MS;
    memset(&lc, 0, sizeof(lc));
    lc.client_id = fl->client_id;
    lc.max_frame = fl->cfg.max_frame;
    lc.source_host = fl->source_host;
    lc.source_port = fl->cfg.source_port;
    lc.setup_timeout_ms = setup_ms;
    lc.security = fl->security;
    lc.software_name = "pykafka-c";
    lc.software_version = fl->software_version;
    return pkc_link_init(link, &lc);
}

/* ------------------------------------------------------------ failures */

/* Under mu: the broker's connection is gone.  Partitions in flight on it
 * are released; with `post`, its ACTIVE partitions wait for a leader and
 * get a CONN event. */
void
fl_broker_down(pkc_fl *fl, fl_broker *b, int status, const char *why,
               int post, int64_t now)
{
    pkc_link_close(&b->link);
    b->fetching = 0;
    b->answered = 0;
    b->retry_at = post ? now + fl->cfg.backoff_ms : now;
    for (size_t i = 0; i < fl->nparts; i++) {
        fl_part *p = &fl->parts[i];
        if (p->inflight == b)
            p->inflight = NULL;
        if (post && p->leader == b && p->state == PKC_FL_ACTIVE) {
            p->state = PKC_FL_WAIT_LEADER;
            fl_post(fl, p, PKC_FL_EV_CONN, status,
                    "Connection to broker %d (%s:%d) failed while "
                    "fetching partition %d: %s",
                    (int)b->node_id, b->host, b->port, (int)p->id, why);
        }
    }
    if (post)
        fl->stats.conn_failures++;
}

/* Under mu: the broker's connection could not be set up and retrying
 * will not help (TLS, SASL, a broker without a usable Fetch version): its
 * ACTIVE partitions pause with a SETUP event, so the application sees the
 * error once instead of the thread reconnecting in a loop. */
static void
broker_refused(pkc_fl *fl, fl_broker *b, int status, int kafka_error,
               const char *why, int64_t now)
{
    pkc_link_close(&b->link);
    b->fetching = 0;
    b->answered = 0;
    b->retry_at = now + fl->cfg.backoff_ms;
    for (size_t i = 0; i < fl->nparts; i++) {
        fl_part *p = &fl->parts[i];
        if (p->inflight == b)
            p->inflight = NULL;
        if (p->leader != b || p->state != PKC_FL_ACTIVE)
            continue;
        p->state = PKC_FL_PAUSED;
        if (fl_post(fl, p, PKC_FL_EV_SETUP, status,
                    "Cannot fetch partition %d from broker %d: %s",
                    (int)p->id, (int)b->node_id, why))
            p->ev.kafka_error = kafka_error;
    }
    fl->stats.conn_failures++;
}

/* Without mu: a connection failure seen by the thread.  An established
 * connection that had answered gets one silent reconnect first (brokers
 * close idle connections), at most once per backoff period. */
void
fl_broker_fail(pkc_fl *fl, fl_broker *b, int status, const char *why)
{
    int64_t now = pkc_now_ms();
    char msg[384];
    int silent;

    snprintf(msg, sizeof(msg), "%s", why && *why ? why :
             pkc_status_str(status));
    fl_lock(fl);
    silent = b->answered > 0 && now - b->last_silent >= fl->cfg.backoff_ms;
    if (silent)
        b->last_silent = now;
    fl_broker_down(fl, b, status, msg, !silent, now);
    fl_unlock(fl);
}

/* Without mu: the broker's link failed (it is DOWN): a failure that
 * retrying will not fix pauses the broker's partitions, any other is
 * handled like a lost connection. */
static void
broker_link_failed(pkc_fl *fl, fl_broker *b)
{
    char why[sizeof(b->link.error)];

    snprintf(why, sizeof(why), "%s", pkc_link_error(&b->link));
    if (!pkc_link_failure_is_permanent(&b->link)) {
        fl_broker_fail(fl, b, pkc_link_status(&b->link), why);
        return;
    }
    fl_lock(fl);
    broker_refused(fl, b, pkc_link_status(&b->link),
                   pkc_link_kafka_error(&b->link), why, pkc_now_ms());
    fl_unlock(fl);
}

/* -------------------------------------------------------------- set-up */

/* Without mu: the link became READY: use its highest Fetch version. */
static void
broker_link_ready(pkc_fl *fl, fl_broker *b)
{
    pkc_api_range r = pkc_link_api_range(&b->link, PKC_API_FETCH);
    int16_t v = pkc_link_version(&b->link, PKC_API_FETCH, PKC_VER_FETCH_MIN,
                                 fl->cfg.max_version);
    char why[256];

    if (v < 0) {
        snprintf(why, sizeof(why), "the broker supports Fetch v%d-v%d; "
                 "pykafka_c needs one of v%d-v%d", (int)r.min, (int)r.max,
                 PKC_VER_FETCH_MIN, (int)fl->cfg.max_version);
        fl_lock(fl);
        broker_refused(fl, b, PKC_ERR_UNSUPPORTED,
                       PKC_KERR_UNSUPPORTED_VERSION, why, pkc_now_ms());
        fl_unlock(fl);
        return;
    }
    b->version = v;
    b->answered = 0;
}

/* Without mu: act on what pkc_link_start / pkc_link_step returned.  A
 * link READY again after a re-authentication keeps its Fetch version. */
static void
broker_link_progress(pkc_fl *fl, fl_broker *b, int rc)
{
    if (rc == PKC_IN_PROGRESS)
        return;
    fl_lock(fl);
    if (b->version < 0) /* a connect attempt ended, either way */
        fl->stats.connects++;
    if (rc == PKC_OK && b->link.authenticated)
        fl->stats.authentications++;
    fl_unlock(fl);
    if (rc != PKC_OK) {
        broker_link_failed(fl, b);
        return;
    }
    if (b->version < 0)
        broker_link_ready(fl, b);
}

/*
 * Without mu: start setting the connection up without waiting (name
 * resolution still blocks).  The link goes on in the poll loop (connect,
 * TLS, ApiVersions, SASL: fl_link_step on readiness or at its deadline,
 * min(socket_timeout_ms, FL_CONNECT_CAP_MS) for the whole set-up).
 */
void
fl_connect_start(pkc_fl *fl, fl_broker *b)
{
    int rc;

    b->version = -1;
    rc = pkc_link_start(&b->link, b->conn_host, b->conn_port, pkc_now_ms());
    broker_link_progress(fl, b, rc);
}

/* Without mu: the link's descriptor is ready, its deadline passed, or a
 * re-authentication is due. */
void
fl_link_step(pkc_fl *fl, fl_broker *b)
{
    if (b->link.state == PKC_LINK_DOWN)
        return;
    broker_link_progress(fl, b, pkc_link_step(&b->link, pkc_now_ms()));
}

/* ----------------------------------------------------------- the Fetch */

/* Without mu: encode b's request behind its header and write what the
 * socket takes now (the rest goes out as it becomes writable). */
static int
broker_write_fetch(pkc_fl *fl, fl_broker *b)
{
    pkc_conn *conn = pkc_link_conn(&b->link);
    pkc_fetch_request req;
    pkc_writer *w = NULL;
    int rc;

    fl_fetch_request(fl, b, &req);
    rc = pkc_conn_request_begin(conn, PKC_API_FETCH, b->version,
                                pkc_fetch_is_flexible(b->version), &w);
    if (rc != PKC_OK)
        return rc;
    rc = pkc_fetch_request_encode(w, b->version, &req);
    if (rc != PKC_OK) {
        pkc_conn_request_abort(conn);
        return rc;
    }
    rc = pkc_conn_request_end(conn, 1, NULL);
    if (rc != PKC_OK)
        return rc;
    rc = pkc_conn_flush(conn, 0);
    return rc == PKC_ERR_TIMEOUT || rc == PKC_ERR_INTR ? PKC_OK : rc;
}

/* Without mu: send the Fetch of b->req. */
void
fl_send_fetch(pkc_fl *fl, fl_broker *b)
{
    pkc_conn *conn = pkc_link_conn(&b->link);
    int rc = broker_write_fetch(fl, b);

    if (rc != PKC_OK) {
        char why[384];
        snprintf(why, sizeof(why), "sending Fetch v%d: %s%s%s",
                 (int)b->version, pkc_status_str(rc),
                 conn->errstr[0] ? ": " : "", conn->errstr);
        fl_broker_fail(fl, b, rc, why);
        return;
    }
    b->fetching = 1;
    b->fetch_deadline = pkc_now_ms() + fl->cfg.max_wait_ms +
                        fl->cfg.socket_timeout_ms;
    fl_lock(fl);
    fl->stats.fetches_sent++;
    fl_unlock(fl);
}

/* ------------------------------------------------------------- answers */

/* Without mu: read the answer to the Fetch in flight. */
static void
broker_on_readable(pkc_fl *fl, fl_broker *b)
{
    pkc_response resp;
    int rc;

    if (!b->fetching)
        return;
    do {
        rc = pkc_link_recv_response(&b->link, 0, &resp);
    } while (rc == PKC_ERR_INTR);
    if (rc == PKC_ERR_TIMEOUT)
        return; /* partial frame: wait for more */
    if (rc != PKC_OK) {
        broker_link_failed(fl, b);
        return;
    }
    if (fl_on_fetch(fl, b, &resp) != PKC_OK)
        fl_broker_fail(fl, b, PKC_ERR_NOMEM, "out of memory for an answer");
}

/* Without mu: write what is queued; read when there is something. */
void
fl_on_ready(pkc_fl *fl, fl_broker *b, short revents)
{
    if (pkc_link_in_setup(&b->link)) {
        fl_link_step(fl, b);
        return;
    }
    if (!pkc_link_is_ready(&b->link))
        return;
    if (pkc_conn_unsent(pkc_link_conn(&b->link)) > 0) {
        int rc = pkc_conn_flush(pkc_link_conn(&b->link), 0);
        if (rc != PKC_OK && rc != PKC_ERR_TIMEOUT && rc != PKC_ERR_INTR) {
            fl_broker_fail(fl, b, rc, pkc_link_conn(&b->link)->errstr);
            return;
        }
    }
    if (revents & (POLLIN | POLLERR | POLLHUP | POLLNVAL))
        broker_on_readable(fl, b);
}

/* ----------------------------------------------------------- the round */

/* Without mu: the poll set of this round; lowers *next to the earliest
 * deadline of a set-up or a Fetch in flight. */
int
fl_poll_set(pkc_fl *fl, int64_t *next)
{
    pkc_reactor_reset(&fl->reactor);
    for (size_t k = 0; k < fl->n_round; k++) {
        fl_broker *b = fl->round[k];
        int64_t deadline = INT64_MAX;
        short ev = pkc_link_poll_events(&b->link, b->fetching);

        if (pkc_link_in_setup(&b->link))
            deadline = pkc_link_deadline(&b->link);
        else if (b->fetching)
            deadline = b->fetch_deadline;
        if (deadline < *next)
            *next = deadline;
        if (pkc_reactor_add(&fl->reactor, pkc_link_fd(&b->link), ev, b) !=
            PKC_OK)
            return PKC_ERR_NOMEM;
    }
    return PKC_OK;
}

/* Without mu: set-ups and Fetches that got no answer in time. */
void
fl_check_deadlines(pkc_fl *fl)
{
    int64_t now = pkc_now_ms();
    char why[384];

    for (size_t k = 0; k < fl->n_round; k++) {
        fl_broker *b = fl->round[k];

        if (pkc_link_in_setup(&b->link) &&
            now >= pkc_link_deadline(&b->link)) {
            fl_link_step(fl, b); /* fails with the set-up's timeout */
            continue;
        }
        if (b->fetching && now >= b->fetch_deadline) {
            snprintf(why, sizeof(why), "no answer from %s:%d within %d ms",
                     b->conn_host, b->conn_port,
                     (int)(fl->cfg.max_wait_ms + fl->cfg.socket_timeout_ms));
            b->answered = 0;
            fl_broker_fail(fl, b, PKC_ERR_TIMEOUT, why);
        }
    }
}
