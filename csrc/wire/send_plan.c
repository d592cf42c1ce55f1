/*
 * send_plan.c - the send engine's planner (see send_engine.h): under the
 * lock, what the sender does for each broker this round (fail what a
 * refused set-up leaves, connect, re-authenticate, or build up to
 * max_in_flight requests); sealing the batches that fell due; and,
 * without the lock, finishing (compressing) sealed batches ahead of
 * their request.
 */
#include <stdlib.h>
#include <string.h>

#include "kafka_errors.h"
#include "send_engine.h"

/* Sealed batches finished ahead of their request, per partition (the
 * first few of its ready FIFO; bounds the work and the memory). */
#define FINISH_AHEAD_DEPTH 4

static int
sl_plan_req_add(sl_req *req, pkc_sl_batch *bt)
{
    if (req->n_batches == req->cap) {
        int32_t ncap = req->cap ? req->cap * 2 : 8;
        pkc_sl_batch **more = realloc(req->batches,
                                      (size_t)ncap * sizeof(*more));

        if (more == NULL)
            return PKC_ERR_NOMEM;
        req->batches = more;
        req->cap = ncap;
    }
    req->batches[req->n_batches++] = bt;
    return PKC_OK;
}

/*
 * Build one request of the batches broker `b` leads (mu held): the next
 * sendable batch of each of its partitions, in turn, up to
 * max_request_size; open batches only when due (`send_now`: at once).
 * The batches count as in flight.  Returns the request, or NULL when
 * nothing is sendable; lowers *wake_at (a retry's backoff) or
 * sl->linger_wake_us (a linger's end) to when something becomes so.
 */
static sl_req *
sl_plan_one_request(pkc_sl *sl, sl_broker *b, int64_t now, int send_now,
                    int part_cap, int64_t *wake_at)
{
    sl_req *req = NULL;
    size_t total = 0;
    int32_t n = sl->nparts;

    for (int32_t k = 0; k < n; k++) {
        int32_t id = (b->rr + k) % n;
        sl_part *p = &sl->parts[id];
        pkc_sl_batch *bt = NULL;

        if (!p->known || p->broker != b)
            continue;
        /* Nothing while its sequences wait to restart; more of its batches
         * in flight only with sequence numbers, to the same broker, and
         * not while an earlier one waits for another attempt. */
        if (p->reset_wanted)
            continue;
        if (p->n_in_flight > 0 &&
            (p->n_in_flight >= part_cap || p->inflight_broker != b ||
             p->retry_head != NULL))
            continue;
        if (p->ready_head != NULL) {
            if (p->ready_head->not_before_ms > now) {
                sl_min_deadline(wake_at, p->ready_head->not_before_ms);
                continue;
            }
            bt = p->ready_head;
        }
        else if (p->open != NULL && p->open->count > 0) {
            if (!send_now && !sl_linger_over(sl, p->open))
                continue;
            bt = p->open;
        }
        else {
            continue;
        }
        if (req != NULL &&
            total + sl_batch_size(bt) > sl->cfg.max_request_size)
            continue;
        if (req == NULL && (req = calloc(1, sizeof(*req))) == NULL)
            break;
        if (sl_plan_req_add(req, bt) != PKC_OK)
            break;
        sl_batch_to_request(sl, p, b, bt);
        total += sl_batch_size(bt);
    }
    if (req != NULL && req->n_batches == 0) {
        sl_req_free(req);
        req = NULL;
    }
    if (req != NULL)
        b->rr = (b->rr + 1) % (n > 0 ? n : 1);
    return req;
}

/* Add an item for `b` to the plan (mu held). */
static size_t
sl_plan_add(sl_plan_item *plan, size_t np, sl_plan_action action, sl_broker *b,
               sl_req *req)
{
    plan[np].action = action;
    plan[np].b = b;
    plan[np].req = req;
    memcpy(plan[np].host, b->host, sizeof(b->host));
    plan[np].port = b->port;
    return np + 1;
}

/* The broker's address changed: what is in flight on the old connection
 * is lost with it (mu held; the sender reconnects on the next plan). */
static void
sl_plan_retire_link(pkc_sl *sl, sl_broker *b)
{
    pkc_sl_result r;

    b->addr_changed = 0;
    sl_set_result(&r, PKC_SL_DISCONNECTED, 0, PKC_ERR_CLOSED,
                  "%s:%d: connection replaced (the broker moved)", b->host,
                  b->port);
    sl_broker_drop(sl, b, &r);
}

/* Its set-up failed: one request's worth of its batches fail an attempt,
 * as the request would have (mu held). */
static void
sl_plan_fail_refused(pkc_sl *sl, sl_broker *b, int64_t now, int part_cap,
                     int64_t *wake_at)
{
    sl_req *req;

    b->refused = 0;
    req = sl_plan_one_request(sl, b, now, 1, part_cap, wake_at);
    if (req != NULL)
        sl_req_fail(sl, req, &b->refusal, b->refusal_retriable,
                    b->refusal_retriable);
}

/*
 * Plan what the sender does for broker `b` this round (mu held): fail
 * what a refused set-up leaves, connect, re-authenticate, or send up to
 * max_in_flight requests.  Returns the plan's new length.
 */
static size_t
sl_plan_broker(pkc_sl *sl, sl_broker *b, int64_t now, int part_cap,
               sl_plan_item *plan, size_t np, size_t cap, int64_t *wake_at)
{
    int send_now, planned = 0;
    sl_req *req;

    if (b->addr_changed)
        sl_plan_retire_link(sl, b);
    if (b->present && pkc_link_is_ready(&b->link)) {
        if (pkc_link_reauth_due(&b->link, now))
            /* Also when idle: the session must not end under the next
             * request.  Only once what is in flight is answered. */
            return b->n_inflight == 0
                       ? sl_plan_add(plan, np, SL_PLAN_STEP, b, NULL) : np;
        if (b->link.reauth_at > now) /* (past: waits for a new token) */
            sl_min_deadline(wake_at, b->link.reauth_at);
    }
    if (!b->present || b->unsent <= 0) {
        b->refused = 0;
        return np;
    }
    if (b->refused)
        sl_plan_fail_refused(sl, b, now, part_cap, wake_at);
    if (b->connect_after > now) {
        sl_min_deadline(wake_at, b->connect_after);
        return np;
    }
    if (b->link.state == PKC_LINK_DOWN)
        return sl_plan_add(plan, np, SL_PLAN_CONNECT, b, NULL);
    if (!pkc_link_is_ready(&b->link))
        return np; /* being set up: its readiness wakes the sender */
    send_now = !sl->accepting || sl->flushers > 0 ||
               b->unsent >= sl->cfg.min_queued;
    while (np < cap && b->n_inflight + planned < sl->cfg.max_in_flight) {
        req = sl_plan_one_request(sl, b, now, send_now, part_cap, wake_at);
        if (req == NULL)
            break;
        np = sl_plan_add(plan, np, SL_PLAN_SEND, b, req);
        planned++;
    }
    return np;
}

sl_plan_item *
sl_plan_reserve(pkc_sl *sl, sl_plan_item *plan, size_t *cap)
{
    size_t want = sl->nbrokers * ((size_t)sl->cfg.max_in_flight + 1) + 1;
    sl_plan_item *bigger;

    if (want <= *cap)
        return plan;
    bigger = realloc(plan, want * sizeof(*bigger));
    if (bigger == NULL)
        return plan;
    *cap = want;
    return bigger;
}

/* ------------------------------------------- partitions without a leader */

/* Ask for metadata, at most once per retry backoff (mu held). */
static void
sl_want_leader(pkc_sl *sl, int64_t now, int64_t *wake_at)
{
    if (sl->last_metadata_ms < 0 ||
        now - sl->last_metadata_ms >= sl->cfg.retry_backoff_ms)
        sl_request_metadata(sl);
    else
        sl_min_deadline(wake_at,
                        sl->last_metadata_ms + sl->cfg.retry_backoff_ms);
}

/* Take the sealed batch at the head of `p`'s ready FIFO, or its open
 * batch when none is sealed, out of the partition (mu held). */
static pkc_sl_batch *
sl_take_unsent(pkc_sl *sl, sl_part *p)
{
    pkc_sl_batch *bt = p->ready_head;

    if (bt != NULL) {
        p->ready_head = bt->next;
        if (p->ready_head == NULL)
            p->ready_tail = NULL;
    }
    else if (p->open != NULL && p->open->count > 0) {
        bt = p->open;
        p->open = NULL;
    }
    if (bt != NULL)
        sl_batch_unsent_add(sl, p, -bt->count);
    return bt;
}

/* The oldest unsent batch of `p` holding records, or NULL (mu held). */
static pkc_sl_batch *
sl_oldest_unsent(sl_part *p)
{
    if (p->ready_head != NULL)
        return p->ready_head;
    if (p->open != NULL && p->open->count > 0)
        return p->open;
    return NULL;
}

/* Fail every unsent batch of `p` with `r` (mu held). */
static void
sl_fail_unsent(pkc_sl *sl, sl_part *p, const pkc_sl_result *r)
{
    pkc_sl_batch *bt;

    while ((bt = sl_take_unsent(sl, p)) != NULL)
        sl_batch_fail(sl, bt, r);
}

/* With a delivery timeout: the unsent batches of `p` whose delivery
 * timeout passed fail, oldest first, saying why they waited (`waited`);
 * the others go on waiting (mu held). */
static void
sl_expire_unsent(pkc_sl *sl, sl_part *p, const pkc_sl_result *waited,
                 int64_t now, int64_t *wake_at)
{
    pkc_sl_batch *bt;

    while ((bt = sl_oldest_unsent(p)) != NULL) {
        pkc_sl_result expired;

        if (now < sl_delivery_deadline(sl, bt)) {
            sl_min_deadline(wake_at, sl_delivery_deadline(sl, bt));
            return;
        }
        bt = sl_take_unsent(sl, p);
        sl_expired_result(sl, bt, waited, now, &expired);
        sl_batch_fail(sl, bt, &expired);
    }
}

/* pykafka's rule: once partition `id` has had no leader for
 * leader_wait_ms, all its unsent batches fail (mu held). */
static void
sl_fail_leaderless(pkc_sl *sl, int32_t id, int64_t now, int64_t *wake_at)
{
    sl_part *p = &sl->parts[id];
    pkc_sl_result r;

    if (now - p->leaderless_since < sl->cfg.leader_wait_ms) {
        sl_min_deadline(wake_at,
                        p->leaderless_since + sl->cfg.leader_wait_ms);
        return;
    }
    sl_set_result(&r, PKC_SL_NO_LEADER, PKC_KERR_LEADER_NOT_AVAILABLE, 0,
                  "partition %d of %s had no leader for %d ms", id,
                  sl->topic, sl->cfg.leader_wait_ms);
    sl_fail_unsent(sl, p, &r);
    p->leaderless_since = now;
}

/* With a delivery timeout: the unsent batches of leaderless partition
 * `id` whose delivery timeout passed fail, oldest first; the others wait
 * for a leader (mu held). */
static void
sl_expire_leaderless(pkc_sl *sl, int32_t id, int64_t now, int64_t *wake_at)
{
    sl_part *p = &sl->parts[id];
    pkc_sl_result waited;

    sl_set_result(&waited, PKC_SL_NO_LEADER, PKC_KERR_LEADER_NOT_AVAILABLE,
                  0, "partition %d of %s has had no leader for %lld ms", id,
                  sl->topic, (long long)(now - p->leaderless_since));
    sl_expire_unsent(sl, p, &waited, now, wake_at);
}

/*
 * Waiting for the first producer id (sl_idem_awaiting_first_id): nothing
 * is sent, and the unsent batches fail at their delivery timeout, or with
 * it off (pykafka's rule) all of them once max_retries + 1 InitProducerId
 * attempts failed, saying why (mu held).
 */
static void
sl_plan_wait_for_producer_id(pkc_sl *sl, int64_t now, int64_t *wake_at)
{
    pkc_sl_result waited;
    int by_deadline = sl->cfg.delivery_timeout_ms > 0;

    if (sl->pid_wait_since < 0)
        sl->pid_wait_since = now;
    if (!by_deadline && sl->pid_failures <= sl->cfg.max_retries)
        return;
    sl_idem_wait_result(sl, now, &waited);
    for (int32_t id = 0; id < sl->nparts; id++) {
        if (by_deadline)
            sl_expire_unsent(sl, &sl->parts[id], &waited, now, wake_at);
        else
            sl_fail_unsent(sl, &sl->parts[id], &waited);
    }
    if (!by_deadline)
        sl->pid_failures = 0;
}

size_t
sl_plan_requests(pkc_sl *sl, int64_t now, sl_plan_item *plan, size_t cap,
                 int64_t *wake_at)
{
    size_t np = 0;
    int part_cap;

    /* Partitions without a usable leader. */
    for (int32_t id = 0; id < sl->nparts; id++) {
        sl_part *p = &sl->parts[id];

        if (!p->known || p->broker != NULL)
            continue;
        if (p->open == NULL && p->ready_head == NULL)
            continue;
        if (p->leaderless_since < 0)
            p->leaderless_since = now;
        if (sl->cfg.delivery_timeout_ms > 0)
            sl_expire_leaderless(sl, id, now, wake_at);
        else
            sl_fail_leaderless(sl, id, now, wake_at);
        if (p->open != NULL || p->ready_head != NULL)
            sl_want_leader(sl, now, wake_at);
    }

    /* Nothing is sent before the first producer id (nor while giving
     * idempotence up waits for the batches in flight); then the
     * partitions whose leaders refused their sequences restart them. */
    if (!sl_idem_apply_producer_id(sl))
        return np;
    if (sl_idem_awaiting_first_id(sl)) {
        sl_plan_wait_for_producer_id(sl, now, wake_at);
        return np;
    }
    sl_idem_apply_resets(sl);
    part_cap = sl->pid >= 0 ? PKC_SL_IDEMPOTENT_MAX_IN_FLIGHT : 1;

    for (size_t bi = 0; bi < sl->nbrokers && np < cap; bi++)
        np = sl_plan_broker(sl, sl->brokers[bi], now, part_cap, plan, np, cap,
                            wake_at);
    return np;
}

void
sl_plan_seal_due(pkc_sl *sl)
{
    int flush_all = sl->flushers > 0 || !sl->accepting;

    for (int32_t id = 0; id < sl->nparts; id++) {
        sl_part *p = &sl->parts[id];
        pkc_sl_batch *bt = p->open;

        if (!p->known || p->broker == NULL || p->n_in_flight == 0 ||
            bt == NULL || bt->count == 0 || p->ready_head != NULL)
            continue;
        if (!flush_all && p->broker->unsent < sl->cfg.min_queued &&
            !sl_linger_over(sl, bt))
            continue;
        p->open = NULL;
        sl_batch_to_ready(p, bt);
    }
}

/*
 * Compression overlaps the broker's work on the requests in flight
 * instead of following it.  Picks, among the first FINISH_AHEAD_DEPTH
 * batches of each partition's FIFO, the one nearest to its FIFO's head
 * (partitions in turn).  Safe without the lock because only the sender
 * takes batches out of ready FIFOs or reads their wire form; producers
 * only link new batches after the tail, which writes the tail's `next`
 * and nothing else.  A batch that fails to finish is left alone:
 * sl_send_request finishes it again and fails it properly.
 */
int
sl_plan_finish_ahead(pkc_sl *sl)
{
    pkc_sl_batch *bt = NULL;
    int best_depth = FINISH_AHEAD_DEPTH;
    int32_t best_id = -1;
    int rc;

    pthread_mutex_lock(&sl->mu);
    for (int32_t k = 0; k < sl->nparts; k++) {
        int32_t id = (int32_t)(((int64_t)sl->finish_rr + k) % sl->nparts);
        pkc_sl_batch *c = sl->parts[id].ready_head;

        for (int depth = 0; c != NULL && depth < best_depth;
             depth++, c = c->next) {
            if (!c->finished && !c->finish_tried) {
                bt = c;
                best_depth = depth;
                best_id = id;
                break;
            }
        }
        if (best_depth == 0)
            break;
    }
    if (bt != NULL) {
        bt->finish_tried = 1;
        sl->finish_rr = best_id + 1 < sl->nparts ? best_id + 1 : 0;
    }
    pthread_mutex_unlock(&sl->mu);
    if (bt == NULL)
        return 0;
    rc = pkc_batch_builder_finish(&bt->bb, &bt->wire, &bt->wire_len);
    pthread_mutex_lock(&sl->mu);
    if (rc == PKC_OK && bt->wire_len <= INT32_MAX) {
        bt->finished = 1;
        sl->stats.finished_ahead++;
    }
    pthread_mutex_unlock(&sl->mu);
    return 1;
}

