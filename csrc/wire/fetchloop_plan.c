/*
 * fetchloop_plan.c - the fetch engine's planner: what each broker does
 * next (connect, re-authenticate, send a Fetch, or wait) and which
 * partitions its next Fetch names.  Private to the engine (see
 * fetchloop_int.h).
 */
#include "fetchloop_int.h"

#include <stdlib.h>
#include <string.h>

#include "kafka_errors.h"

/* Under mu: pick the partitions of an idle broker's next Fetch. */
static int
fl_build_entries(pkc_fl *fl, fl_broker *b, int64_t now, int64_t *next)
{
    size_t n = fl->nparts;
    size_t start = n ? b->rr % n : 0;

    b->req_n = 0;
    if (b->req_cap < n) {
        pkc_fetch_partition *r = realloc(b->req, n * sizeof(*r));
        fl_req_origin *o;
        if (r == NULL)
            return PKC_ERR_NOMEM;
        b->req = r;
        o = realloc(b->req_origin, n * sizeof(*o));
        if (o == NULL)
            return PKC_ERR_NOMEM;
        b->req_origin = o;
        b->req_cap = n;
    }
    /* Two passes: partitions flagged `prio` first, then the rest from the
     * rotating start. */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t k = 0; k < n; k++) {
            size_t i = (start + k) % n;
            fl_part *p = &fl->parts[i];
            pkc_fetch_partition *e;

            if (p->leader != b || p->state != PKC_FL_ACTIVE ||
                p->inflight != NULL || (pass == 0) != (p->prio != 0))
                continue;
            if (p->queued >= (size_t)fl->cfg.queued_max_messages)
                continue;
            if (p->resume_at > now) {
                if (p->resume_at < *next)
                    *next = p->resume_at;
                continue;
            }
            if (p->fetch_offset < 0) {
                p->state = PKC_FL_PAUSED;
                fl_post(fl, p, PKC_FL_EV_KAFKA, PKC_KERR_OFFSET_OUT_OF_RANGE,
                        "partition %d has no valid position (offset %lld)",
                        (int)p->id, (long long)p->fetch_offset);
                continue;
            }
            b->req_origin[b->req_n].pidx = i;
            b->req_origin[b->req_n].gen = p->gen;
            e = &b->req[b->req_n++];
            e->partition = p->id;
            e->leader_epoch = p->leader_epoch;
            e->fetch_offset = p->fetch_offset;
            p->inflight = b;
            p->prio = 0;
        }
    }
    b->rr++;
    return PKC_OK;
}

/* Under mu: decide what each broker does next; returns the next time the
 * thread must look again. */
int64_t
fl_plan(pkc_fl *fl, int64_t now)
{
    int64_t next = now + FL_TICK_MS;

    fl->wake_pending = 0;
    if (fl->tb_cap < fl->nbrokers) {
        fl_broker **tb = realloc(fl->tb, fl->nbrokers * sizeof(*tb));
        if (tb == NULL) {
            fl->ntb = 0;
            return now + 100;
        }
        fl->tb = tb;
        fl->tb_cap = fl->nbrokers;
    }
    fl->ntb = fl->nbrokers;
    if (fl->ntb)
        memcpy(fl->tb, fl->brokers, fl->ntb * sizeof(*fl->tb));

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
        else if (p->resume_at < next) {
            next = p->resume_at;
        }
    }

    for (size_t k = 0; k < fl->ntb; k++) {
        fl_broker *b = fl->tb[k];
        int active = 0;

        b->want_connect = 0;
        b->want_send = 0;
        b->want_step = 0;
        if (b->reconfig) {
            b->reconfig = 0;
            fl_broker_down(fl, b, PKC_ERR_CLOSED, "", 0, now);
            b->version = -1;
        }
        for (size_t i = 0; i < fl->nparts && !active; i++)
            active = fl->parts[i].leader == b &&
                     fl->parts[i].state == PKC_FL_ACTIVE;
        if (!active)
            continue;
        if (b->link.state == PKC_LINK_DOWN) {
            if (now >= b->retry_at) {
                b->want_connect = 1;
                memcpy(b->chost, b->host, sizeof(b->chost));
                b->cport = b->port;
            }
            else if (b->retry_at < next) {
                next = b->retry_at;
            }
        }
        else if (pkc_link_is_ready(&b->link) && !b->fetching) {
            if (pkc_link_reauth_due(&b->link, now)) {
                b->want_step = 1; /* re-authenticate before fetching on */
                continue;
            }
            if (b->link.reauth_at > now && b->link.reauth_at < next)
                next = b->link.reauth_at; /* (past: waits for a token) */
            if (fl_build_entries(fl, b, now, &next) != PKC_OK)
                next = now + 100;
            b->want_send = b->req_n > 0;
        }
    }
    return next;
}
