/*
 * sendloop.c - the producer's send engine (see sendloop.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include "sendloop.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api_support.h"
#include "compress.h"
#include "kafka_errors.h"
#include "send_engine.h"

/* A broker that refused our connection for good (TLS, SASL, no Produce
 * version) is not asked again sooner than this. */
#define REFUSED_BACKOFF_MS 5000
/* The sender never sleeps longer than this (it re-plans on wake-up). */
#define MAX_POLL_MS 1000

/* ---------------------------------------------------------------- helpers */

void
sl_set_result(pkc_sl_result *r, int kind, int16_t code, int status,
              const char *fmt, ...)
{
    va_list va;

    r->kind = kind;
    r->error_code = code;
    r->status = status;
    va_start(va, fmt);
    vsnprintf(r->message, sizeof(r->message), fmt, va);
    va_end(va);
}

void
sl_wake_sender(pkc_sl *sl)
{
    /* mu held; the wake-up never blocks (an eventfd). */
    if (sl->wake_pending)
        return;
    sl->wake_pending = 1;
    pkc_reactor_wake(&sl->reactor);
}

/* Wait on `c` until signalled or `deadline` (monotonic ms).  Returns 0 on a
 * wake-up, ETIMEDOUT when the deadline passed. */
static int
sl_cond_wait_until(pthread_cond_t *c, pthread_mutex_t *mu, int64_t deadline)
{
    struct timespec ts;

    if (deadline == PKC_NO_DEADLINE)
        return pthread_cond_wait(c, mu);
    if (pkc_now_ms() >= deadline)
        return ETIMEDOUT;
    ts.tv_sec = (time_t)(deadline / 1000);
    ts.tv_nsec = (long)((deadline % 1000) * 1000000L);
    return pthread_cond_timedwait(c, mu, &ts);
}

void
sl_request_metadata(pkc_sl *sl)
{
    if (!sl->ev_metadata) {
        sl->ev_metadata = 1;
        sl->stats.metadata_requests++;
        sl->last_metadata_ms = pkc_now_ms();
        pthread_cond_broadcast(&sl->ev_cond);
    }
}

/* ------------------------------------------------------- failed attempts */

/*
 * May a batch whose attempt failed with a retriable error be sent again?
 * With a delivery timeout, until it has passed (however many attempts
 * that takes); without one, while attempts are left.
 */
static int
sl_may_retry(const pkc_sl *sl, const pkc_sl_batch *bt, int64_t now)
{
    if (sl->cfg.delivery_timeout_ms > 0)
        return now < sl_delivery_deadline(sl, bt);
    return bt->attempts < sl->cfg.max_retries;
}

/*
 * A send attempt of `b` failed with `r` (mu held, b owned by the caller).
 * Retry it after the backoff if the error allows and sl_may_retry says
 * so, else complete it with the error.
 */
static void
sl_attempt_failed(pkc_sl *sl, pkc_sl_batch *bt, const pkc_sl_result *r,
                  int retriable, int needs_metadata)
{
    int64_t now = pkc_now_ms();

    if (needs_metadata)
        sl_request_metadata(sl);
    if (retriable && sl_may_retry(sl, bt, now) && !sl->stop_now) {
        bt->attempts++;
        bt->result = *r; /* remembered in case the last attempt fails */
        bt->not_before_ms = now + sl->cfg.retry_backoff_ms;
        sl->stats.retries++;
        sl_batch_to_retry(sl, bt);
        sl_wake_sender(sl);
        return;
    }
    bt->attempts++;
    if (retriable && !sl->stop_now && sl->cfg.delivery_timeout_ms > 0) {
        pkc_sl_result expired;

        sl_expired_result(sl, bt, r, now, &expired);
        sl_batch_fail(sl, bt, &expired);
        return;
    }
    sl_batch_fail(sl, bt, r);
}

/* ----------------------------------------------------------------- append */

int
pkc_sl_append(pkc_sl *sl, int32_t partition, int64_t timestamp,
              const uint8_t *key, int32_t key_len, const uint8_t *value,
              int32_t value_len, const pkc_header *headers,
              int32_t n_headers, const pkc_sl_cookie *cookie)
{
    static const pkc_sl_cookie no_cookie = {NULL, NULL};
    sl_part *p;
    pkc_sl_batch *bt;
    int rc;
    int fresh = 0;

    if (cookie == NULL)
        cookie = &no_cookie;
    pthread_mutex_lock(&sl->mu);
    if (!sl->accepting) {
        pthread_mutex_unlock(&sl->mu);
        return PKC_SL_APPEND_STOPPED;
    }
    if (partition < 0 || partition >= sl->nparts ||
        !sl->parts[partition].known) {
        pthread_mutex_unlock(&sl->mu);
        return PKC_SL_APPEND_NOPART;
    }
    if (sl->stats.unsent >= sl->cfg.max_queued) {
        pthread_mutex_unlock(&sl->mu);
        return PKC_SL_APPEND_FULL;
    }
    p = &sl->parts[partition];

    for (int round = 0;; round++) {
        bt = p->open;
        if (bt == NULL) {
            bt = sl_batch_get(sl, partition);
            if (bt == NULL) {
                pthread_mutex_unlock(&sl->mu);
                return PKC_ERR_NOMEM;
            }
            p->open = bt;
            fresh = 1;
        }
        if (sl->cfg.keep_cookies && sl_batch_reserve_cookie(bt) != PKC_OK) {
            rc = PKC_ERR_NOMEM;
            break;
        }
        rc = pkc_batch_builder_append(&bt->bb, timestamp, key, key_len,
                                      value, value_len, headers, n_headers);
        if (rc != PKC_ERR_TOO_LARGE || round > 0)
            break;
        if (bt->count == 0)
            break; /* even an empty batch cannot take it */
        /* The open batch is full: seal it and start another. */
        bt->full = 1;
        p->open = NULL;
        sl_batch_to_ready(p, bt);
        sl_wake_sender(sl);
    }
    if (rc == PKC_ERR_TOO_LARGE) {
        /* Larger than max_request_size: it fails on its own, at once. */
        pkc_sl_batch *tb = sl_batch_get(sl, partition);

        if (bt->count == 0 && p->open == bt) {
            p->open = NULL;
            sl_batch_put(sl, bt);
        }
        if (tb == NULL) {
            pthread_mutex_unlock(&sl->mu);
            return PKC_ERR_NOMEM;
        }
        if (sl->cfg.keep_cookies &&
            sl_batch_add_cookie(tb, cookie) != PKC_OK) {
            sl_batch_put(sl, tb);
            pthread_mutex_unlock(&sl->mu);
            return PKC_ERR_NOMEM;
        }
        tb->count = 1;
        sl->stats.appended++;
        sl_set_result(&tb->result, PKC_SL_TOO_LARGE,
                      PKC_KERR_MESSAGE_TOO_LARGE, PKC_ERR_TOO_LARGE,
                      "a record of %zu bytes is larger than max_request_size "
                      "(%zu)",
                      (size_t)(key_len > 0 ? key_len : 0) +
                          (size_t)(value_len > 0 ? value_len : 0),
                      sl->cfg.max_request_size);
        sl_batch_complete(sl, tb);
        pthread_mutex_unlock(&sl->mu);
        return PKC_SL_APPEND_OK;
    }
    if (rc != PKC_OK) {
        if (bt->count == 0 && p->open == bt) {
            p->open = NULL;
            sl_batch_put(sl, bt);
        }
        pthread_mutex_unlock(&sl->mu);
        return rc;
    }
    if (sl->cfg.keep_cookies)
        bt->cookies[bt->count] = *cookie; /* room reserved above */
    bt->count++;
    if (bt->first_us < 0)
        bt->first_us = pkc_now_us();
    sl->stats.appended++;
    sl_batch_unsent_add(sl, p, 1);
    if (fresh ||
        (p->broker != NULL && p->broker->unsent == sl->cfg.min_queued) ||
        sl->flushers > 0)
        sl_wake_sender(sl);
    pthread_mutex_unlock(&sl->mu);
    return PKC_SL_APPEND_OK;
}

int
pkc_sl_wait_space(pkc_sl *sl, int64_t deadline)
{
    int room;

    pthread_mutex_lock(&sl->mu);
    while (sl->accepting && sl->stats.unsent >= sl->cfg.max_queued) {
        if (sl_cond_wait_until(&sl->space_cond, &sl->mu, deadline) ==
            ETIMEDOUT)
            break;
    }
    room = sl->accepting && sl->stats.unsent < sl->cfg.max_queued;
    pthread_mutex_unlock(&sl->mu);
    return room;
}

int
pkc_sl_running(pkc_sl *sl)
{
    int r;

    pthread_mutex_lock(&sl->mu);
    r = sl->accepting;
    pthread_mutex_unlock(&sl->mu);
    return r;
}

/* ------------------------------------------------------------ the sender */

/* Under mu: set b's count of requests in flight to n, adding the time it
 * spent with at least one and at least two to the counters. */
static void
sl_inflight_set(pkc_sl *sl, sl_broker *b, int n)
{
    int64_t now = pkc_now_us();

    if (b->n_inflight >= 1 && n < 1)
        sl->stats.busy_us += now - b->busy_since_us;
    else if (b->n_inflight < 1 && n >= 1)
        b->busy_since_us = now;
    if (b->n_inflight >= 2 && n < 2)
        sl->stats.backlog_us += now - b->backlog_since_us;
    else if (b->n_inflight < 2 && n >= 2)
        b->backlog_since_us = now;
    b->n_inflight = n;
}

void
sl_broker_drop(pkc_sl *sl, sl_broker *b, const pkc_sl_result *r)
{
    sl_req *req = b->inflight_head;

    b->inflight_head = b->inflight_tail = NULL;
    sl_inflight_set(sl, b, 0);
    while (req != NULL) {
        sl_req *next = req->next;

        for (int32_t i = 0; i < req->n_batches; i++) {
            pkc_sl_batch *bt = req->batches[i];
            int32_t part = bt->partition;

            sl_attempt_failed(sl, bt, r, 1, 1);
            sl_batch_landed(sl, part);
        }
        sl_req_free(req);
        req = next;
    }
    pkc_link_close(&b->link);
    b->produce_version = -1;
}

void
sl_req_fail(pkc_sl *sl, sl_req *req, const pkc_sl_result *r, int retriable,
            int needs_metadata)
{
    for (int32_t i = 0; i < req->n_batches; i++) {
        pkc_sl_batch *bt = req->batches[i];
        int32_t part = bt->partition;

        sl_attempt_failed(sl, bt, r, retriable, needs_metadata);
        sl_batch_landed(sl, part);
    }
    sl_req_free(req);
}

/* ------------------------------------------------------------ links */

/* The result for a link set-up that failed for good (TLS, SASL). */
static void
sl_link_refusal(pkc_sl_result *r, const pkc_link *link)
{
    sl_set_result(r, PKC_SL_REFUSED, (int16_t)pkc_link_kafka_error(link),
                  pkc_link_status(link), "%s", pkc_link_error(link));
}

/* mu held: the set-up of `b` failed; the next plan fails one attempt of
 * what each of its partitions would send (as a failed request would),
 * retried after the backoff unless the failure is permanent. */
static void
sl_link_refused(pkc_sl *sl, sl_broker *b, const pkc_sl_result *r,
                int retriable)
{
    int64_t backoff = sl->cfg.retry_backoff_ms;

    /* TLS or SASL refused: no point asking again soon. */
    if (!retriable && backoff < REFUSED_BACKOFF_MS)
        backoff = REFUSED_BACKOFF_MS;
    b->refused = 1;
    b->refusal = *r;
    b->refusal_retriable = retriable;
    b->produce_version = -1;
    b->connect_after = pkc_now_ms() + backoff;
    if (retriable)
        sl_request_metadata(sl);
    sl_wake_sender(sl);
}

/* The link of `b` failed and is DOWN (sender, unlocked). */
static void
sl_link_failed(pkc_sl *sl, sl_broker *b)
{
    int permanent = pkc_link_failure_is_permanent(&b->link);
    pkc_sl_result r;

    if (permanent)
        sl_link_refusal(&r, &b->link);
    else
        sl_set_result(&r, PKC_SL_DISCONNECTED, 0, pkc_link_status(&b->link),
                      "%s", pkc_link_error(&b->link));
    pthread_mutex_lock(&sl->mu);
    sl_link_refused(sl, b, &r, !permanent);
    pthread_mutex_unlock(&sl->mu);
}

/* The link of `b` became READY (sender, unlocked): the highest
 * Produce version both sides speak. */
static void
sl_link_ready(pkc_sl *sl, sl_broker *b)
{
    pkc_api_range range = pkc_link_api_range(&b->link, PKC_API_PRODUCE);
    int16_t v = pkc_link_version(&b->link, PKC_API_PRODUCE,
                                 PKC_VER_PRODUCE_MIN, PKC_VER_PRODUCE_MAX);
    pkc_sl_result r;

    pthread_mutex_lock(&sl->mu);
    sl->stats.connects++;
    if (v >= 0) {
        b->produce_version = v;
        pthread_mutex_unlock(&sl->mu);
        return;
    }
    sl_set_result(&r, PKC_SL_KAFKA, PKC_KERR_UNSUPPORTED_VERSION,
                  PKC_ERR_UNSUPPORTED,
                  "%s:%d: the broker supports Produce v%d-v%d; pykafka_c "
                  "needs one of v%d-v%d", b->link.conn.host, b->link.conn.port,
                  (int)range.min, (int)range.max, PKC_VER_PRODUCE_MIN,
                  PKC_VER_PRODUCE_MAX);
    pkc_link_close(&b->link);
    sl_link_refused(sl, b, &r, 0);
    pthread_mutex_unlock(&sl->mu);
}

/* Act on what pkc_link_start / pkc_link_step returned (sender,
 * unlocked).  A link READY again after a re-authentication keeps its
 * Produce version. */
static void
sl_link_progress(pkc_sl *sl, sl_broker *b, int rc)
{
    if (rc == PKC_IN_PROGRESS)
        return;
    if (rc == PKC_OK && b->link.authenticated) {
        pthread_mutex_lock(&sl->mu);
        sl->stats.authentications++;
        pthread_mutex_unlock(&sl->mu);
    }
    if (rc != PKC_OK)
        sl_link_failed(sl, b);
    else if (b->produce_version < 0)
        sl_link_ready(sl, b);
}

/* Start setting the connection of `b` up, without waiting (name
 * resolution still blocks; sender, unlocked). */
static void
sl_link_start(pkc_sl *sl, sl_broker *b, const char *host, int port)
{
    pthread_mutex_lock(&sl->mu);
    b->produce_version = -1;
    pthread_mutex_unlock(&sl->mu);
    sl_link_progress(sl, b,
                     pkc_link_start(&b->link, host, port, pkc_now_ms()));
}

static void sl_complete_written(pkc_sl *sl, sl_broker *b);

/* Take batch i out of a request (it was failed or goes back to its
 * partition); the batches behind it move up. */
static void
sl_req_remove(sl_req *req, int32_t i)
{
    memmove(&req->batches[i], &req->batches[i + 1],
            (size_t)(req->n_batches - i - 1) * sizeof(req->batches[0]));
    req->n_batches--;
}

/* Sending, step 1: can the broker's Produce version carry the codec?
 * Returns 1, or 0 with the request failed for good (sender, unlocked). */
static int
sl_send_check_codec(pkc_sl *sl, sl_broker *b, sl_req *req,
                    const char *host, int port)
{
    pkc_sl_result r;

    if (sl->cfg.codec != PKC_CODEC_ZSTD ||
        b->produce_version >= PKC_VER_PRODUCE_ZSTD_MIN)
        return 1;
    sl_set_result(&r, PKC_SL_KAFKA, PKC_KERR_UNSUPPORTED_COMPRESSION_TYPE,
                  PKC_ERR_UNSUPPORTED,
                  "%s:%d: zstd needs Produce v%d, the broker speaks v%d",
                  host, port, PKC_VER_PRODUCE_ZSTD_MIN, b->produce_version);
    pthread_mutex_lock(&sl->mu);
    sl_req_fail(sl, req, &r, 0, 0);
    pthread_mutex_unlock(&sl->mu);
    return 0;
}

/*
 * Sending, step 2: the producer fields the batches not finished yet will
 * most likely carry (the sequence counters change only in this thread),
 * so that step 4's restamp finds them right and computes no second CRC
 * (sender, unlocked; one lock scope).
 */
static void
sl_send_preset(pkc_sl *sl, sl_req *req)
{
    pthread_mutex_lock(&sl->mu);
    for (int32_t i = 0; i < req->n_batches; i++) {
        pkc_sl_batch *bt = req->batches[i];

        if (!bt->finished)
            sl_idem_preset(sl, &sl->parts[bt->partition], bt);
    }
    pthread_mutex_unlock(&sl->mu);
}

/* Sending, step 3: finish (compress) the batches not finished ahead; a
 * batch that cannot be fails for good and leaves the request (sender,
 * unlocked; the lock only to fail one). */
static void
sl_send_finish(pkc_sl *sl, sl_req *req)
{
    pkc_sl_result r;
    int rc;

    for (int32_t i = 0; i < req->n_batches;) {
        pkc_sl_batch *bt = req->batches[i];
        int32_t part = bt->partition;

        if (bt->finished) {
            i++;
            continue;
        }
        rc = pkc_batch_builder_finish(&bt->bb, &bt->wire, &bt->wire_len);
        if (rc == PKC_OK && bt->wire_len <= INT32_MAX) {
            bt->finished = 1;
            i++;
            continue;
        }
        sl_set_result(&r, PKC_SL_LOCAL, 0, rc,
                      "could not encode a batch of %d records with %s: %s",
                      bt->count, pkc_codec_name(sl->cfg.codec),
                      pkc_status_str(rc));
        pthread_mutex_lock(&sl->mu);
        sl_attempt_failed(sl, bt, &r, 0, 0);
        sl_batch_landed(sl, part);
        pthread_mutex_unlock(&sl->mu);
        sl_req_remove(req, i);
    }
}

/*
 * Sending, step 4: sequence numbers, in partition order (requests of a
 * broker are written in plan order, one batch per partition each), under
 * one lock scope (sl_idem_stamp); then each batch's header is restamped
 * with the producer id, epoch and base sequence it goes with (sender,
 * unlocked).  A batch whose partition has an earlier batch waiting for
 * another attempt (its request failed before reaching the wire), or
 * whose sequences wait to restart, leaves the request and follows.
 */
static void
sl_send_sequence(pkc_sl *sl, sl_req *req)
{
    pthread_mutex_lock(&sl->mu);
    for (int32_t i = 0; i < req->n_batches;) {
        pkc_sl_batch *bt = req->batches[i];
        sl_part *p = &sl->parts[bt->partition];

        if (p->retry_head != NULL || p->reset_wanted) {
            int32_t part = bt->partition;

            sl_batch_to_retry(sl, bt);
            sl_batch_landed(sl, part);
            sl_req_remove(req, i);
            continue;
        }
        sl_idem_stamp(sl, p, bt);
        i++;
    }
    pthread_mutex_unlock(&sl->mu);
    for (int32_t i = 0; i < req->n_batches; i++) {
        pkc_sl_batch *bt = req->batches[i];

        pkc_batch_builder_restamp(&bt->bb, bt->stamp_pid, bt->stamp_epoch,
                                  bt->base_seq);
    }
}

/* Room for `n` partitions in the sender's encode scratch (sender). */
static int
sl_encode_parts_reserve(pkc_sl *sl, int32_t n)
{
    pkc_produce_partition *more;

    if (n <= sl->encode_parts_cap)
        return PKC_OK;
    more = realloc(sl->encode_parts, (size_t)n * sizeof(*more));
    if (more == NULL)
        return PKC_ERR_NOMEM;
    sl->encode_parts = more;
    sl->encode_parts_cap = n;
    return PKC_OK;
}

/* Encode the Produce body of `req` into `w` (sender, unlocked). */
static int
sl_encode_body(pkc_sl *sl, int version, const sl_req *req, pkc_writer *w)
{
    pkc_produce_request body;
    pkc_proto_error perr;

    memset(&body, 0, sizeof(body));
    body.transactional_id = sl->transactional_id;
    body.acks = sl->cfg.acks;
    body.timeout_ms = sl->cfg.ack_timeout_ms;
    body.topic = sl->topic;
    body.topic_len = sl->topic_len;
    body.partitions = sl->encode_parts;
    body.n_partitions = req->n_batches;
    for (int32_t i = 0; i < req->n_batches; i++) {
        sl->encode_parts[i].index = req->batches[i]->partition;
        sl->encode_parts[i].records = req->batches[i]->wire;
        sl->encode_parts[i].records_len = req->batches[i]->wire_len;
    }
    return pkc_produce_encode(w, &sl->fields, version, &body, &perr);
}

/* Sending, step 5: frame the request in the connection's output buffer.
 * Returns 1 with *corr its correlation id, or 0 with the request failed
 * for good (sender, unlocked). */
static int
sl_send_encode(pkc_sl *sl, sl_broker *b, sl_req *req, int32_t *corr)
{
    pkc_conn *conn = pkc_link_conn(&b->link);
    int version = b->produce_version;
    pkc_sl_result r;
    pkc_writer *w;
    int rc;

    rc = sl_encode_parts_reserve(sl, req->n_batches);
    if (rc == PKC_OK)
        rc = pkc_conn_request_begin(conn, PKC_API_PRODUCE, (int16_t)version,
                                    pkc_produce_is_flexible(version), &w);
    if (rc == PKC_OK) {
        rc = sl_encode_body(sl, version, req, w);
        if (rc == 0)
            rc = pkc_conn_request_end(conn, sl->cfg.acks != 0, corr);
        else
            pkc_conn_request_abort(conn);
    }
    if (rc == PKC_OK)
        return 1;
    sl_set_result(&r, PKC_SL_LOCAL, 0, rc,
                  "could not encode a Produce v%d request: %s", version,
                  pkc_status_str(rc));
    pthread_mutex_lock(&sl->mu);
    sl_req_fail(sl, req, &r, 0, 0);
    pthread_mutex_unlock(&sl->mu);
    return 0;
}

/* Sending, step 6: the request is in flight: counted, and at the tail of
 * the broker's in-flight FIFO (sender, unlocked; one lock scope). */
static void
sl_send_enqueue(pkc_sl *sl, sl_broker *b, sl_req *req, int32_t corr)
{
    req->correlation_id = corr;
    req->deadline_ms = pkc_now_ms() + sl->cfg.request_timeout_ms;
    req->next = NULL;
    pthread_mutex_lock(&sl->mu);
    sl->stats.requests++;
    sl->stats.batches_sent += req->n_batches;
    for (int32_t i = 0; i < req->n_batches; i++)
        sl->stats.bytes_sent += (int64_t)req->batches[i]->wire_len;
    if (b->inflight_tail != NULL)
        b->inflight_tail->next = req;
    else
        b->inflight_head = req;
    b->inflight_tail = req;
    sl_inflight_set(sl, b, b->n_inflight + 1);
    pthread_mutex_unlock(&sl->mu);
}

/* Sending, step 7: write what the socket takes now (poll() does the
 * rest).  Returns 1, or 0 when the connection broke: then every request
 * in flight on it failed an attempt (sender, unlocked). */
static int
sl_send_flush(pkc_sl *sl, sl_broker *b, const char *host, int port)
{
    pkc_conn *conn = pkc_link_conn(&b->link);
    pkc_sl_result r;
    int rc;

    do {
        rc = pkc_conn_flush(conn, 0);
    } while (rc == PKC_ERR_INTR);
    if (rc == PKC_OK || rc == PKC_ERR_TIMEOUT)
        return 1;
    sl_set_result(&r, PKC_SL_DISCONNECTED, 0, rc, "%s:%d: %s", host, port,
                  conn->errstr[0] ? conn->errstr : pkc_status_str(rc));
    pthread_mutex_lock(&sl->mu);
    sl_broker_drop(sl, b, &r);
    b->connect_after = pkc_now_ms() + sl->cfg.retry_backoff_ms;
    pthread_mutex_unlock(&sl->mu);
    return 0;
}

/*
 * Write request `req` to broker `b`, step by step, each step under its
 * own lock scope (sender, unlocked).  Returns 1 when the request is in
 * flight (with acks=0 it may be done already), else 0: the request was
 * failed, or nothing of it was left to send.
 */
static int
sl_send_request(pkc_sl *sl, sl_broker *b, sl_req *req, const char *host,
                int port)
{
    int32_t corr = 0;

    if (!sl_send_check_codec(sl, b, req, host, port))
        return 0;
    sl_send_preset(sl, req);
    sl_send_finish(sl, req);
    sl_send_sequence(sl, req);
    if (req->n_batches == 0) {
        sl_req_free(req);
        return 0;
    }
    if (!sl_send_encode(sl, b, req, &corr))
        return 0;
    sl_send_enqueue(sl, b, req, corr);
    if (!sl_send_flush(sl, b, host, port))
        return 0;
    if (sl->cfg.acks == 0)
        sl_complete_written(sl, b);
    return 1;
}

/* Answering, a success: NONE, or DUPLICATE_SEQUENCE_NUMBER for a batch
 * with sequences (an earlier attempt of this very batch was written; the
 * offset may be unknown, -1).  mu held. */
static void
sl_answer_written(pkc_sl *sl, pkc_sl_batch *bt,
                  const pkc_produce_partition_result *pr)
{
    if (pr->error_code == PKC_KERR_DUPLICATE_SEQUENCE_NUMBER)
        sl->stats.duplicates++;
    bt->base_offset = pr->base_offset;
    bt->log_append_time = pr->log_append_time;
    memset(&bt->result, 0, sizeof(bt->result));
    sl_batch_complete(sl, bt);
}

/* Answering, too large for the broker: the halves go instead, with the
 * parent's sequence numbers; the parent goes back to the free list (its
 * cookies moved to the halves).  No attempt counted.  mu held. */
static void
sl_answer_split(pkc_sl *sl, pkc_sl_batch *bt, pkc_sl_batch *h1,
                pkc_sl_batch *h2)
{
    sl->stats.splits++;
    if (bt->stamp_gen >= 0) {
        h1->stamp_gen = h2->stamp_gen = bt->stamp_gen;
        h1->stamp_pid = h2->stamp_pid = bt->stamp_pid;
        h1->stamp_epoch = h2->stamp_epoch = bt->stamp_epoch;
        h1->base_seq = bt->base_seq;
        h2->base_seq =
            (int32_t)(((int64_t)bt->base_seq + h1->count) & INT32_MAX);
    }
    sl_batch_to_retry(sl, h1);
    sl_batch_to_retry(sl, h2);
    bt->count = 0;
    sl_batch_put(sl, bt);
    sl_wake_sender(sl);
}

/* Does the leader's answer `code` to a batch with sequence numbers say
 * that it did not take the batch for its numbers (the leader's producer
 * state for the partition does not continue where the batch starts)? */
static int
sl_sequence_refused(int code)
{
    return code == PKC_KERR_OUT_OF_ORDER_SEQUENCE_NUMBER ||
           code == PKC_KERR_UNKNOWN_PRODUCER_ID;
}

/* Answering, a sequence refused behind a batch of the same partition
 * that failed and waits for another attempt: it follows that one, and
 * the attempt does not count.  mu held. */
static void
sl_answer_behind_gap(pkc_sl *sl, pkc_sl_batch *bt, int code,
                     const char *host, int port)
{
    sl_set_result(&bt->result, PKC_SL_KAFKA, (int16_t)code, 0,
                  "Produce to %s:%d for partition %d failed: %s behind an "
                  "earlier batch", host, port, bt->partition,
                  pkc_kafka_error_name(code));
    bt->not_before_ms = pkc_now_ms() + sl->cfg.retry_backoff_ms;
    sl->stats.retries++;
    sl_batch_to_retry(sl, bt);
}

/* Answering, the leader refused the partition's earliest batch in
 * flight for its numbers (sl_sequence_refused), or knows a newer epoch
 * of our producer id (INVALID_PRODUCER_EPOCH: a new id is needed).  The
 * batch, and every later one of the partition, is not in the log: they
 * are retried once the partition's sequences restart (send_idem.c).  mu
 * held. */
static void
sl_answer_numbers_refused(pkc_sl *sl, pkc_sl_batch *bt,
                          const pkc_produce_partition_result *pr,
                          const char *host, int port)
{
    pkc_sl_result r;

    sl_set_result(&r, PKC_SL_KAFKA, pr->error_code, 0,
                  "Produce to %s:%d for partition %d failed: %s%s%s", host,
                  port, bt->partition, pkc_kafka_error_name(pr->error_code),
                  pr->message[0] ? ": " : "", pr->message);
    if (pr->error_code == PKC_KERR_INVALID_PRODUCER_EPOCH)
        sl_idem_want_producer_id(sl);
    sl_idem_want_reset(sl, &sl->parts[bt->partition]);
    sl_attempt_failed(sl, bt, &r, 1, 0);
}

/* Answering, any other error code: Kafka's classification, as the fetch
 * loop uses it (the codes the producer treats apart are handled by the
 * functions above).  mu held. */
static void
sl_answer_error(pkc_sl *sl, pkc_sl_batch *bt,
                const pkc_produce_partition_result *pr, const char *host,
                int port)
{
    int code = pr->error_code;
    pkc_sl_result r;

    sl_set_result(&r, PKC_SL_KAFKA, (int16_t)code, 0,
                  "Produce to %s:%d for partition %d failed%s%s", host,
                  port, bt->partition, pr->message[0] ? ": " : "",
                  pr->message);
    sl_attempt_failed(sl, bt, &r, pkc_kafka_error_retriable(code),
                      pkc_kafka_error_refresh_metadata(code));
}

/* Answering one batch of a request: its partition's result `pr` (NULL
 * when the response has none), and the halves it was split into, if it
 * was (mu held; the caller then lands it). */
static void
sl_answer_batch(pkc_sl *sl, pkc_sl_batch *bt,
                const pkc_produce_partition_result *pr, pkc_sl_batch *h1,
                pkc_sl_batch *h2, const char *host, int port)
{
    sl_part *p = &sl->parts[bt->partition];
    int stamped = bt->stamp_pid >= 0; /* sequence numbers were on it */
    int code = pr != NULL ? pr->error_code : PKC_KERR_NONE;
    pkc_sl_result r;

    if (pr == NULL) {
        sl_set_result(&r, PKC_SL_DECODE, 0, PKC_ERR_INVALID,
                      "%s:%d: the Produce response has no result for "
                      "partition %d", host, port, bt->partition);
        sl_attempt_failed(sl, bt, &r, 1, 0);
    }
    else if (code == PKC_KERR_NONE ||
             (stamped && code == PKC_KERR_DUPLICATE_SEQUENCE_NUMBER))
        sl_answer_written(sl, bt, pr);
    else if (h1 != NULL)
        sl_answer_split(sl, bt, h1, h2);
    else if (stamped && sl_sequence_refused(code) && p->retry_head != NULL)
        sl_answer_behind_gap(sl, bt, code, host, port);
    else if (stamped && sl->transactional_id == NULL &&
             (sl_sequence_refused(code) ||
              code == PKC_KERR_INVALID_PRODUCER_EPOCH))
        sl_answer_numbers_refused(sl, bt, pr, host, port);
    else
        sl_answer_error(sl, bt, pr, host, port);
}

/* A batch of several records refused as too large (MESSAGE_TOO_LARGE,
 * RECORD_LIST_TOO_LARGE) is split in two, without the lock; *h1 and *h2
 * are the halves, or NULL (sender, unlocked). */
static void
sl_answer_split_if_too_large(pkc_sl *sl, pkc_sl_batch *bt,
                             const pkc_produce_partition_result *pr,
                             pkc_sl_batch **h1, pkc_sl_batch **h2)
{
    *h1 = *h2 = NULL;
    if (pr == NULL || bt->count <= 1 ||
        (pr->error_code != PKC_KERR_MESSAGE_TOO_LARGE &&
         pr->error_code != PKC_KERR_RECORD_LIST_TOO_LARGE))
        return;
    if (sl_batch_split(sl, bt, h1, h2) != PKC_OK)
        *h1 = *h2 = NULL;
}

/* Decode the response to `req` into *results.  Returns 1, or 0 with
 * every batch of the request failed an attempt (sender, unlocked). */
static int
sl_answer_decode(pkc_sl *sl, sl_req *req, const pkc_response *resp,
                 pkc_produce_response *results, const char *host, int port)
{
    pkc_proto_error perr;
    pkc_sl_result r;
    int rc;

    rc = pkc_produce_decode(&sl->fields, resp->api_version, resp->body,
                            resp->body_len, sl->topic, sl->topic_len,
                            results, &perr);
    if (rc == 0)
        return 1;
    if (rc == PKC_ERR_NOMEM)
        sl_set_result(&r, PKC_SL_LOCAL, 0, PKC_ERR_NOMEM,
                      "out of memory decoding a Produce response");
    else
        sl_set_result(&r, PKC_SL_DECODE, 0, rc,
                      "%s:%d: malformed Produce v%d response: %s in field "
                      "'%s' at byte %zu of %zu", host, port,
                      resp->api_version, pkc_status_str(rc), perr.path,
                      perr.offset, resp->body_len);
    pthread_mutex_lock(&sl->mu);
    sl_req_fail(sl, req, &r, 1, 0);
    pthread_mutex_unlock(&sl->mu);
    return 0;
}

/* Handle the response to `req`, the oldest request of its broker: each
 * batch answered under its own lock scope (sender, unlocked). */
static void
sl_handle_response(pkc_sl *sl, sl_req *req, const pkc_response *resp,
                   const char *host, int port)
{
    pkc_produce_response results;

    if (!sl_answer_decode(sl, req, resp, &results, host, port))
        return;
    for (int32_t i = 0; i < req->n_batches; i++) {
        pkc_sl_batch *bt = req->batches[i];
        int32_t part = bt->partition;
        const pkc_produce_partition_result *pr =
            pkc_produce_response_find(&results, part);
        pkc_sl_batch *h1, *h2;

        sl_answer_split_if_too_large(sl, bt, pr, &h1, &h2);
        pthread_mutex_lock(&sl->mu);
        sl_answer_batch(sl, bt, pr, h1, h2, host, port);
        sl_batch_landed(sl, part);
        pthread_mutex_unlock(&sl->mu);
    }
    pkc_produce_response_free(&results);
    sl_req_free(req);
}

/* acks=0: the requests of `b` are done once fully written (sender,
 * unlocked). */
static void
sl_complete_written(pkc_sl *sl, sl_broker *b)
{
    if (pkc_conn_unsent(pkc_link_conn(&b->link)) != 0)
        return;
    pthread_mutex_lock(&sl->mu);
    while (b->inflight_head != NULL) {
        sl_req *req = b->inflight_head;

        b->inflight_head = req->next;
        sl_inflight_set(sl, b, b->n_inflight - 1);
        for (int32_t i = 0; i < req->n_batches; i++) {
            pkc_sl_batch *bt = req->batches[i];
            int32_t part = bt->partition;

            bt->base_offset = -1;
            memset(&bt->result, 0, sizeof(bt->result));
            sl_batch_complete(sl, bt);
            sl_batch_landed(sl, part);
        }
        sl_req_free(req);
    }
    b->inflight_tail = NULL;
    pthread_mutex_unlock(&sl->mu);
}

/* The connection of `b` is gone with requests in flight, or could not
 * take a request (sender, unlocked). */
static void
sl_service_broken(pkc_sl *sl, sl_broker *b, int rc, const char *host, int port)
{
    const char *why = b->link.state == PKC_LINK_DOWN
                          ? pkc_link_error(&b->link)
                          : pkc_link_conn(&b->link)->errstr;
    pkc_sl_result r;

    sl_set_result(&r, PKC_SL_DISCONNECTED, 0, rc, "%s:%d: %s", host, port,
                  why[0] ? why : pkc_status_str(rc));
    pthread_mutex_lock(&sl->mu);
    sl_broker_drop(sl, b, &r);
    b->connect_after = pkc_now_ms() + sl->cfg.retry_backoff_ms;
    pthread_mutex_unlock(&sl->mu);
}

/* Close an idle connection (sender, unlocked). */
static void
sl_service_close(pkc_sl *sl, sl_broker *b)
{
    pthread_mutex_lock(&sl->mu);
    pkc_link_close(&b->link);
    b->produce_version = -1;
    pthread_mutex_unlock(&sl->mu);
}

/* Read the answers that are there, oldest request first (sender,
 * unlocked). */
static void
sl_service_answers(pkc_sl *sl, sl_broker *b, const char *host, int port)
{
    pkc_response resp;
    pkc_sl_result r;
    int rc;

    while (b->inflight_head != NULL) {
        sl_req *req;

        rc = pkc_link_recv_response(&b->link, 0, &resp);
        if (rc == PKC_ERR_INTR)
            continue;
        if (rc == PKC_ERR_TIMEOUT)
            return;
        if (rc != PKC_OK) {
            sl_service_broken(sl, b, rc, host, port);
            return;
        }
        pthread_mutex_lock(&sl->mu);
        req = b->inflight_head;
        b->inflight_head = req->next;
        if (b->inflight_head == NULL)
            b->inflight_tail = NULL;
        sl_inflight_set(sl, b, b->n_inflight - 1);
        pthread_mutex_unlock(&sl->mu);
        if (resp.correlation_id != req->correlation_id) {
            /* net.c checks this; a mismatch here is a bookkeeping bug. */
            sl_set_result(&r, PKC_SL_DECODE, 0, PKC_ERR_INVALID,
                          "%s:%d: response to correlation id %d, expected %d",
                          host, port, resp.correlation_id,
                          req->correlation_id);
            pthread_mutex_lock(&sl->mu);
            sl_req_fail(sl, req, &r, 1, 0);
            sl_broker_drop(sl, b, &r);
            pthread_mutex_unlock(&sl->mu);
            return;
        }
        sl_handle_response(sl, req, &resp, host, port);
    }
}

/* The READY connection of broker `b` is ready for `revents`: write what
 * it can take and read what it has (sender, unlocked). */
static void
sl_service_broker(pkc_sl *sl, sl_broker *b, short revents, const char *host,
                  int port)
{
    int rc;

    do {
        rc = pkc_conn_flush(pkc_link_conn(&b->link), 0);
    } while (rc == PKC_ERR_INTR);
    if (rc != PKC_OK && rc != PKC_ERR_TIMEOUT) {
        sl_service_broken(sl, b, rc, host, port);
        return;
    }
    if (sl->cfg.acks == 0) {
        /* Fire and forget: done once written.  Anything the broker sends
         * on this connection is unexpected: EOF or garbage both end it. */
        sl_complete_written(sl, b);
        if ((revents & (POLLIN | POLLERR | POLLHUP)) &&
            b->inflight_head == NULL)
            sl_service_close(sl, b);
        return;
    }
    if (b->inflight_head == NULL) {
        /* Readable with nothing in flight: the broker closed an idle
         * connection (or sent garbage).  Reconnect on the next send. */
        if (revents & (POLLIN | POLLERR | POLLHUP))
            sl_service_close(sl, b);
        return;
    }
    sl_service_answers(sl, b, host, port);
}


/* Carry out the plan (sender, unlocked). */
static void
sl_run_plan(pkc_sl *sl, sl_plan_item *plan, size_t np)
{
    for (size_t i = 0; i < np; i++) {
        sl_plan_item *it = &plan[i];

        switch (it->action) {
        case SL_PLAN_SEND:
            sl_send_request(sl, it->b, it->req, it->host, it->port);
            break;
        case SL_PLAN_CONNECT:
            sl_link_start(sl, it->b, it->host, it->port);
            break;
        case SL_PLAN_STEP:
            sl_link_progress(sl, it->b,
                             pkc_link_step(&it->b->link, pkc_now_ms()));
            break;
        }
    }
}

/* The poll set of this round (mu held): every broker whose connection is
 * up or being set up; lowers *wake_at to the set-ups' deadlines. */
static int
sl_poll_set(pkc_sl *sl, int64_t *wake_at)
{
    pkc_reactor_reset(&sl->reactor);
    for (size_t i = 0; i < sl->nbrokers; i++) {
        sl_broker *b = sl->brokers[i];

        if (b->link.state == PKC_LINK_DOWN)
            continue;
        if (pkc_link_in_setup(&b->link))
            sl_min_deadline(wake_at, pkc_link_deadline(&b->link));
        /* POLLIN always: an idle connection the broker closes is seen. */
        if (pkc_reactor_add(&sl->reactor, pkc_link_fd(&b->link),
                            pkc_link_poll_events(&b->link, 1), b) != PKC_OK)
            return PKC_ERR_NOMEM;
    }
    return PKC_OK;
}

/* Act on the descriptors poll() found ready (sender, unlocked). */
static void
sl_service_ready(pkc_sl *sl)
{
    for (size_t i = 1; i < pkc_reactor_count(&sl->reactor); i++) {
        short revents = pkc_reactor_revents(&sl->reactor, i);
        sl_broker *b = pkc_reactor_owner(&sl->reactor, i);
        char host[256];
        int port;

        if (revents == 0)
            continue;
        if (pkc_link_in_setup(&b->link)) {
            sl_link_progress(sl, b, pkc_link_step(&b->link, pkc_now_ms()));
            continue;
        }
        if (!pkc_link_is_ready(&b->link))
            continue;
        pthread_mutex_lock(&sl->mu);
        memcpy(host, b->host, sizeof(host));
        port = b->port;
        pthread_mutex_unlock(&sl->mu);
        sl_service_broker(sl, b, revents, host, port);
    }
}

/* Set-ups whose deadline passed fail (sender, unlocked). */
static void
sl_expire_setups(pkc_sl *sl)
{
    int64_t now = pkc_now_ms();
    size_t n;

    pthread_mutex_lock(&sl->mu);
    n = sl->nbrokers;
    pthread_mutex_unlock(&sl->mu);
    for (size_t i = 0; i < n; i++) {
        sl_broker *b;

        pthread_mutex_lock(&sl->mu);
        b = sl->brokers[i];
        pthread_mutex_unlock(&sl->mu);
        if (pkc_link_in_setup(&b->link) && now >= pkc_link_deadline(&b->link))
            sl_link_progress(sl, b, pkc_link_step(&b->link, now));
    }
}

/* Requests that outlived their deadline drop their connection; brokers
 * no longer in the table lose their idle connection (mu held). */
static void
sl_expire_requests(pkc_sl *sl, int64_t now)
{
    for (size_t i = 0; i < sl->nbrokers; i++) {
        sl_broker *b = sl->brokers[i];

        if (b->inflight_head != NULL && sl->cfg.acks != 0 &&
            b->inflight_head->deadline_ms <= now) {
            pkc_sl_result r;

            sl_set_result(&r, PKC_SL_DISCONNECTED,
                          PKC_KERR_REQUEST_TIMED_OUT, PKC_ERR_TIMEOUT,
                          "%s:%d: no Produce response within %d ms",
                          b->host, b->port, sl->cfg.request_timeout_ms);
            sl_broker_drop(sl, b, &r);
        }
        else if (!b->present && b->inflight_head == NULL &&
                 b->link.state != PKC_LINK_DOWN) {
            pkc_link_close(&b->link);
            b->produce_version = -1;
        }
    }
}

static void *
sl_sender_main(void *arg)
{
    pkc_sl *sl = arg;
    sigset_t all;
    sl_plan_item *plan = NULL;
    size_t plan_cap = 0;

    /* Signals belong to the interpreter's main thread. */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);

    pthread_mutex_lock(&sl->mu);
    while (!sl->stop_now) {
        int64_t now_us = pkc_now_us(), now = now_us / 1000;
        int64_t wake_at = now + MAX_POLL_MS, wake_us;
        size_t np = 0;
        int more, polled;

        sl->round_us = now_us;
        sl->linger_wake_us = PKC_NO_DEADLINE;
        plan = sl_plan_reserve(sl, plan, &plan_cap);
        if (plan_cap > 0)
            np = sl_plan_requests(sl, now, plan, plan_cap, &wake_at);
        sl_plan_seal_due(sl);
        for (size_t i = 0; i < sl->nbrokers; i++)
            if (sl->brokers[i]->inflight_head != NULL && sl->cfg.acks != 0)
                sl_min_deadline(&wake_at,
                                sl->brokers[i]->inflight_head->deadline_ms);
        sl->wake_pending = 0;
        pthread_mutex_unlock(&sl->mu);

        sl_run_plan(sl, plan, np);
        /* Compress the next batch while the broker works on this one. */
        more = sl_plan_finish_ahead(sl);

        pthread_mutex_lock(&sl->mu);
        polled = sl_poll_set(sl, &wake_at) == PKC_OK;
        wake_us = wake_at * 1000; /* (at most now + MAX_POLL_MS) */
        sl_min_deadline(&wake_us, sl->linger_wake_us);
        if (sl->wake_pending || more)
            wake_us = now_us; /* something happened meanwhile */
        pthread_mutex_unlock(&sl->mu);
        if (polled && pkc_reactor_wait(&sl->reactor, wake_us,
                                       MAX_POLL_MS) > 0)
            sl_service_ready(sl);
        else if (!polled) {
            struct timespec ts = {0, 10 * 1000000L};

            nanosleep(&ts, NULL);
        }
        sl_expire_setups(sl);
        pthread_mutex_lock(&sl->mu);
        sl_expire_requests(sl, pkc_now_ms());
    }
    sl->sender_exited = 1;
    pthread_cond_broadcast(&sl->ev_cond);
    pthread_mutex_unlock(&sl->mu);
    free(plan);
    return NULL;
}

int
pkc_sl_start(pkc_sl *sl)
{
    int rc;

    pthread_mutex_lock(&sl->mu);
    if (sl->thread_started && !sl->thread_joined) {
        pthread_mutex_unlock(&sl->mu);
        return PKC_OK;
    }
    sl->stop_now = 0;
    sl->sender_exited = 0;
    sl->accepting = 1;
    sl->thread_joined = 0;
    rc = pthread_create(&sl->thread, NULL, sl_sender_main, sl);
    if (rc != 0) {
        sl->accepting = 0;
        pthread_mutex_unlock(&sl->mu);
        return rc == ENOMEM || rc == EAGAIN ? PKC_ERR_NOMEM : PKC_ERR_IO;
    }
    sl->thread_started = 1;
    pthread_mutex_unlock(&sl->mu);
    return PKC_OK;
}

/* ------------------------------------------------- flush / stop / events */

int64_t
pkc_sl_flush(pkc_sl *sl, int64_t deadline)
{
    int64_t pending;

    pthread_mutex_lock(&sl->mu);
    sl->flushers++;
    sl_wake_sender(sl);
    while (sl->stats.appended - sl->stats.completed > 0 &&
           !sl->sender_exited && sl->thread_started && !sl->thread_joined) {
        if (sl_cond_wait_until(&sl->idle_cond, &sl->mu, deadline) == ETIMEDOUT)
            break;
    }
    sl->flushers--;
    pending = sl->stats.appended - sl->stats.completed;
    pthread_mutex_unlock(&sl->mu);
    return pending;
}

int64_t
pkc_sl_stop(pkc_sl *sl, int64_t deadline)
{
    int64_t failed = 0;
    int join = 0;
    pkc_sl_result r;

    pthread_mutex_lock(&sl->mu);
    sl->accepting = 0;
    pthread_cond_broadcast(&sl->space_cond);
    if (sl->thread_started && !sl->thread_joined) {
        sl->flushers++;
        sl_wake_sender(sl);
        while (sl->stats.appended - sl->stats.completed > 0 &&
               !sl->sender_exited) {
            if (sl_cond_wait_until(&sl->idle_cond, &sl->mu, deadline) ==
                   ETIMEDOUT)
                break;
        }
        sl->flushers--;
        sl->stop_now = 1;
        sl_wake_sender(sl);
        join = 1;
    }
    pthread_mutex_unlock(&sl->mu);
    if (join) {
        pthread_join(sl->thread, NULL);
    }

    pthread_mutex_lock(&sl->mu);
    if (join)
        sl->thread_joined = 1;
    sl->stop_now = 1;
    sl_set_result(&r, PKC_SL_STOPPED, 0, 0,
                  "the producer was stopped before the broker acknowledged "
                  "the message");
    for (size_t i = 0; i < sl->nbrokers; i++) {
        sl_broker *b = sl->brokers[i];
        sl_req *req = b->inflight_head;

        b->inflight_head = b->inflight_tail = NULL;
        sl_inflight_set(sl, b, 0);
        while (req != NULL) {
            sl_req *next = req->next;

            for (int32_t k = 0; k < req->n_batches; k++) {
                failed += req->batches[k]->count;
                sl_batch_fail(sl, req->batches[k], &r);
            }
            sl_req_free(req);
            req = next;
        }
        pkc_link_close(&b->link);
        b->produce_version = -1;
        b->refused = 0;
    }
    for (int32_t id = 0; id < sl->nparts; id++) {
        sl_part *p = &sl->parts[id];

        while (p->retry_head != NULL) {
            pkc_sl_batch *bt = p->retry_head;

            p->retry_head = bt->next;
            sl_batch_unsent_add(sl, p, -bt->count);
            failed += bt->count;
            sl_batch_fail(sl, bt, &r);
        }
        p->retry_tail = NULL;
        while (p->ready_head != NULL) {
            pkc_sl_batch *bt = p->ready_head;

            p->ready_head = bt->next;
            sl_batch_unsent_add(sl, p, -bt->count);
            failed += bt->count;
            sl_batch_fail(sl, bt, &r);
        }
        p->ready_tail = NULL;
        if (p->open != NULL) {
            pkc_sl_batch *bt = p->open;

            p->open = NULL;
            if (bt->count > 0) {
                sl_batch_unsent_add(sl, p, -bt->count);
                failed += bt->count;
                sl_batch_fail(sl, bt, &r);
            }
            else {
                sl_batch_put(sl, bt);
            }
        }
        p->n_in_flight = 0;
        p->inflight_broker = NULL;
        sl_idem_forget_partition(sl, p);
    }
    sl->inflight_batches = 0;
    pthread_cond_broadcast(&sl->ev_cond);
    pthread_cond_broadcast(&sl->idle_cond);
    pthread_cond_broadcast(&sl->space_cond);
    pthread_mutex_unlock(&sl->mu);
    return failed;
}

int
pkc_sl_wait_event(pkc_sl *sl, int64_t deadline)
{
    int ev = 0;

    pthread_mutex_lock(&sl->mu);
    for (;;) {
        ev = 0;
        if (sl->done_head != NULL)
            ev |= PKC_SL_EV_DONE;
        if (sl->ev_metadata)
            ev |= PKC_SL_EV_METADATA;
        if (sl->ev_pid)
            ev |= PKC_SL_EV_PRODUCER_ID;
        if (sl->sender_exited || sl->thread_joined)
            ev |= PKC_SL_EV_STOPPED;
        if (ev != 0)
            break;
        if (sl_cond_wait_until(&sl->ev_cond, &sl->mu, deadline) == ETIMEDOUT)
            break;
    }
    sl->ev_metadata = 0;
    sl->ev_pid = 0;
    pthread_mutex_unlock(&sl->mu);
    return ev;
}

pkc_sl_batch *
pkc_sl_take_done(pkc_sl *sl)
{
    pkc_sl_batch *head;

    pthread_mutex_lock(&sl->mu);
    head = sl->done_head;
    sl->done_head = sl->done_tail = NULL;
    pthread_mutex_unlock(&sl->mu);
    return head;
}

void
pkc_sl_stats_get(pkc_sl *sl, pkc_sl_stats *out)
{
    int64_t now = pkc_now_us();

    pthread_mutex_lock(&sl->mu);
    *out = sl->stats;
    out->pending = sl->stats.appended - sl->stats.completed;
    for (size_t i = 0; i < sl->nbrokers; i++) {   /* intervals still open */
        const sl_broker *b = sl->brokers[i];

        if (b->n_inflight >= 1)
            out->busy_us += now - b->busy_since_us;
        if (b->n_inflight >= 2)
            out->backlog_us += now - b->backlog_since_us;
    }
    pthread_mutex_unlock(&sl->mu);
}

int
pkc_sl_produce_version(pkc_sl *sl, int32_t node_id)
{
    sl_broker *b;
    int v = -1;

    pthread_mutex_lock(&sl->mu);
    b = sl_brokers_find(sl, node_id);
    if (b != NULL)
        v = b->produce_version;
    pthread_mutex_unlock(&sl->mu);
    return v;
}
