/*
 * fetchloop_plan.c - the fetch engine's planner: what each broker does
 * next (connect, re-authenticate, send a Fetch, or wait) and which
 * partitions its next Fetch names.  Private to the engine (see
 * fetchloop_int.h); everything here runs under mu, on the fetch thread.
 */
#include "fetchloop_int.h"

#include <stdlib.h>
#include <string.h>

#include "kafka_errors.h"

/* Under mu: room for `n` partitions in b's request.  PKC_OK or
 * PKC_ERR_NOMEM. */
static int
plan_reserve(fl_broker *b, size_t n)
{
    pkc_fetch_partition *parts;
    fl_req_origin *origin;

    if (b->req_cap >= n)
        return PKC_OK;
    parts = realloc(b->req, n * sizeof(*parts));
    if (parts == NULL)
        return PKC_ERR_NOMEM;
    b->req = parts;
    origin = realloc(b->req_origin, n * sizeof(*origin));
    if (origin == NULL)
        return PKC_ERR_NOMEM;
    b->req_origin = origin;
    b->req_cap = n;
    return PKC_OK;
}

/* Under mu: whether partition p goes into b's next Fetch now.  A
 * partition waiting to resume lowers *next to its time; one without a
 * valid position pauses with an OFFSET_OUT_OF_RANGE event instead. */
static int
plan_wants(pkc_fl *fl, fl_broker *b, fl_part *p, int64_t now,
           int64_t *next)
{
    if (p->leader != b || p->state != PKC_FL_ACTIVE || p->inflight != NULL)
        return 0;
    if (p->queued >= fl_refetch_below(fl, p))
        return 0;
    if (p->resume_at > now) {
        if (p->resume_at < *next)
            *next = p->resume_at;
        return 0;
    }
    if (p->fetch_offset < 0) {
        p->state = PKC_FL_PAUSED;
        fl_post(fl, p, PKC_FL_EV_KAFKA, PKC_KERR_OFFSET_OUT_OF_RANGE,
                "partition %d has no valid position (offset %lld)",
                (int)p->id, (long long)p->fetch_offset);
        return 0;
    }
    return 1;
}

/* Under mu: name partition i in b's request. */
static void
plan_name(pkc_fl *fl, fl_broker *b, size_t i)
{
    fl_part *p = &fl->parts[i];
    pkc_fetch_partition *part = &b->req[b->req_n];

    b->req_origin[b->req_n].part_index = i;
    b->req_origin[b->req_n].gen = p->gen;
    part->partition = p->id;
    part->leader_epoch = p->leader_epoch;
    part->fetch_offset = p->fetch_offset;
    b->req_n++;
    p->inflight = b;
    p->ask_first = 0;
}

/* Under mu: whether the broker had nothing after p's position at its last
 * answer (the last stable offset for read_committed); unknown: no. */
static int
plan_at_end(const pkc_fl *fl, const fl_part *p)
{
    int64_t end = fl->cfg.isolation_level ? p->last_stable_offset
                                          : p->high_watermark;

    return end >= 0 && p->fetch_offset >= end;
}

/* Under mu: whether b's next Fetch should wait.  A Fetch that names only
 * partitions at their end waits on the broker for up to max_wait_ms, and
 * the broker serves one request per connection at a time, so a partition
 * of b that has data behind its full queue would wait out that long poll
 * as soon as the application drains it (on a busy partition beside idle
 * ones, every answer).  Such a Fetch is held until that partition wants
 * more (the consumer wakes the thread then) and both go together, for at
 * most max_wait_ms (the application may be reading only the others). */
static int
plan_hold(pkc_fl *fl, fl_broker *b, int64_t now, int64_t *next)
{
    int data_wanted = 0, data_held = 0;

    for (size_t i = 0; i < fl->nparts; i++) {
        fl_part *p = &fl->parts[i];

        if (p->leader != b || p->state != PKC_FL_ACTIVE || p->inflight)
            continue;
        if (plan_at_end(fl, p))
            continue;
        if (p->queued >= fl_refetch_below(fl, p))
            data_held = 1;
        else if (plan_wants(fl, b, p, now, next))
            data_wanted = 1;
    }
    if (!data_held || data_wanted || (b->hold_until && now >= b->hold_until)) {
        b->hold_until = 0;
        return 0;
    }
    if (b->hold_until == 0)
        b->hold_until = now + fl->cfg.max_wait_ms;
    if (b->hold_until < *next)
        *next = b->hold_until;
    return 1;
}

/* Under mu: pick the partitions of an idle broker's next Fetch (none is
 * fine: then nothing is sent).  Partitions flagged ask_first come first,
 * then the rest from a start that rotates from one request to the next. */
static int
plan_request(pkc_fl *fl, fl_broker *b, int64_t now, int64_t *next)
{
    size_t n = fl->nparts;
    size_t start = n ? b->rotation % n : 0;

    b->req_n = 0;
    if (plan_reserve(b, n) != PKC_OK)
        return PKC_ERR_NOMEM;
    if (plan_hold(fl, b, now, next))
        return PKC_OK;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t k = 0; k < n; k++) {
            size_t i = (start + k) % n;
            fl_part *p = &fl->parts[i];

            if ((pass == 0) != (p->ask_first != 0))
                continue;
            if (plan_wants(fl, b, p, now, next))
                plan_name(fl, b, i);
        }
    }
    b->rotation++;
    return PKC_OK;
}

/* Under mu: copy the broker table into fl->round, which the thread walks
 * without mu.  PKC_OK or PKC_ERR_NOMEM (then the round is empty). */
static int
plan_round(pkc_fl *fl)
{
    if (fl->round_cap < fl->nbrokers) {
        fl_broker **round = realloc(fl->round,
                                    fl->nbrokers * sizeof(*round));
        if (round == NULL) {
            fl->n_round = 0;
            return PKC_ERR_NOMEM;
        }
        fl->round = round;
        fl->round_cap = fl->nbrokers;
    }
    fl->n_round = fl->nbrokers;
    if (fl->n_round)
        memcpy(fl->round, fl->brokers, fl->n_round * sizeof(*fl->round));
    return PKC_OK;
}

/* Under mu: a partition without a leader re-posts its NO_LEADER event
 * every backoff_ms while the last one was taken. */
static void
plan_no_leader(pkc_fl *fl, int64_t now, int64_t *next)
{
    for (size_t i = 0; i < fl->nparts; i++) {
        fl_part *p = &fl->parts[i];
        if (p->state != PKC_FL_WAIT_LEADER || p->leader != NULL ||
            p->ev_pending)
            continue;
        if (now >= p->resume_at) {
            fl_post(fl, p, PKC_FL_EV_NO_LEADER, PKC_KERR_LEADER_NOT_AVAILABLE,
                    "partition %d has no leader", (int)p->id);
            p->resume_at = now + fl->cfg.backoff_ms;
        }
        else if (p->resume_at < *next) {
            *next = p->resume_at;
        }
    }
}

/* Under mu: 1 when b leads an ACTIVE partition. */
static int
plan_broker_needed(const pkc_fl *fl, const fl_broker *b)
{
    for (size_t i = 0; i < fl->nparts; i++)
        if (fl->parts[i].leader == b && fl->parts[i].state == PKC_FL_ACTIVE)
            return 1;
    return 0;
}

/* Under mu: what broker b does this round: reconnect after a new address,
 * connect when due, re-authenticate when due, or send the next Fetch. */
static void
plan_broker(pkc_fl *fl, fl_broker *b, int64_t now, int64_t *next)
{
    b->want_connect = 0;
    b->want_send = 0;
    b->want_reauth = 0;
    if (b->reconfig) {
        b->reconfig = 0;
        fl_broker_down(fl, b, PKC_ERR_CLOSED, "", 0, now);
        b->version = -1;
    }
    if (!plan_broker_needed(fl, b))
        return;
    if (b->link.state == PKC_LINK_DOWN) {
        if (now >= b->retry_at) {
            b->want_connect = 1;
            memcpy(b->conn_host, b->host, sizeof(b->conn_host));
            b->conn_port = b->port;
        }
        else if (b->retry_at < *next) {
            *next = b->retry_at;
        }
    }
    else if (pkc_link_is_ready(&b->link) && !b->fetching) {
        if (pkc_link_reauth_due(&b->link, now)) {
            b->want_reauth = 1; /* re-authenticate before fetching on */
            return;
        }
        if (b->link.reauth_at > now && b->link.reauth_at < *next)
            *next = b->link.reauth_at; /* (past: waits for a token) */
        if (plan_request(fl, b, now, next) != PKC_OK)
            *next = now + 100;
        b->want_send = b->req_n > 0;
    }
}

int64_t
fl_plan(pkc_fl *fl, int64_t now)
{
    int64_t next = now + FL_TICK_MS;

    fl->wake_pending = 0;
    if (plan_round(fl) != PKC_OK)
        return now + 100;
    plan_no_leader(fl, now, &next);
    for (size_t k = 0; k < fl->n_round; k++)
        plan_broker(fl, fl->round[k], now, &next);
    return next;
}
