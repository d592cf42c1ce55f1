/*
 * fetchloop_int.h - private to the fetch engine: its structs and the
 * functions its files share.  Only fetchloop*.c include it; the engine's
 * contract is fetchloop.h.
 *
 * Files, each calling only those below it
 *   fetchloop.c         lifecycle, the control, consuming and inspection
 *                       API, and the thread's loop
 *   fetchloop_plan.c    the planner: what each broker does next and which
 *                       partitions its next Fetch names
 *   fetchloop_broker.c  one broker's link as the thread drives it: set-up,
 *                       sending the Fetch, reading the answer, deadlines,
 *                       and what a failure does to its partitions
 *   fetchloop_answer.c  one answer: its records queued piece by piece,
 *                       then each partition's position, watermarks and
 *                       errors
 *   fetchloop_part.c    a partition's queue, its place in the ring of
 *                       partitions with records, and its event
 *
 * Locking (the one rule)
 *   fl->mu guards the partitions (state, positions, queues, events), the
 *   stats, the broker table and the broker fields marked "under mu".  The
 *   other broker fields (its link, the request in flight) belong to the
 *   fetch thread while it runs, and to pkc_fl_stop / pkc_fl_free when it
 *   does not.  I/O, encoding and decoding run without mu.  A function's
 *   comment begins "Under mu:" when its caller holds mu and "Without mu:"
 *   when it is called without (it then takes mu for each short step
 *   itself).  Consumers wait on fl->cv for records, events and stops.
 *
 * Names: functions shared by the engine's files are fl_*; a static
 * function carries its file's name (plan_*, broker_*, answer_*, part_*;
 * fl_* in fetchloop.c).
 */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "bufpool.h"
#include "fetch_codec.h"
#include "fetchloop.h"
#include "link.h"
#include "net.h"
#include "reactor.h"

#define FL_HOST_MAX 256
/* Idle tick of the thread's poll. */
#define FL_TICK_MS 1000

/* ------------------------------------------------------------- structs */

/* A piece of one partition's records from one answer; the record views
 * point into its buf.  The record block comes from the buf's pool. */
typedef struct fl_chunk {
    struct fl_chunk *next;
    pkc_answer_buf *buf;  /* one reference */
    pkc_record *recs;     /* owned */
    size_t recs_bytes;
    size_t n, pos;        /* records, and the next one to pop */
} fl_chunk;

/* Where a partition named in the request in flight came from: its index
 * in fl->parts and its generation then (an answer to an older generation
 * is dropped). */
typedef struct {
    size_t part_index;
    uint32_t gen;
} fl_req_origin;

/* A leader broker. */
typedef struct fl_broker {
    int32_t node_id;
    char host[FL_HOST_MAX];   /* under mu */
    int port;                 /* under mu */
    int reconfig;             /* host/port changed: reconnect (under mu) */
    int64_t retry_at;         /* no connect before this (under mu) */

    /* The thread's.  The link is DOWN, being set up (connect, TLS,
     * ApiVersions, SASL; the thread polls it until its deadline), or
     * READY: then idle, or with a Fetch in flight. */
    pkc_link link;
    int link_inited;
    int fetching;             /* a Fetch is in flight */
    int64_t hold_until;       /* a held Fetch goes then (0: none held) */
    int16_t version;          /* the Fetch version of this connection */
    int64_t fetch_deadline;   /* no answer by then: the connection drops */
    int answered;             /* answers since the last connect */
    int64_t last_silent;      /* last silent reconnect */
    /* What the plan asks of it this round (set by fl_plan). */
    int want_connect;         /* to conn_host:conn_port */
    int want_send;            /* req[] holds a new request to send */
    int want_reauth;          /* a re-authentication is due (KIP-368) */
    char conn_host[FL_HOST_MAX];
    int conn_port;
    pkc_fetch_partition *req; /* the partitions of the request in flight */
    fl_req_origin *req_origin; /* where each came from */
    size_t req_n, req_cap;
    size_t rotation;          /* where the next request's order starts */
} fl_broker;

/* A partition (all under mu). */
typedef struct {
    int32_t id;
    int state;                /* PKC_FL_* */
    fl_broker *leader;        /* NULL: none */
    int32_t leader_epoch;
    int64_t fetch_offset;
    int64_t last_consumed;
    int64_t high_watermark, last_stable_offset, log_start_offset;
    uint32_t gen;             /* bumped when an answer in flight goes stale */
    fl_broker *inflight;      /* broker with a Fetch naming it, or NULL */
    int ask_first;            /* put first in the next request (KIP-74) */
    int64_t resume_at;        /* not fetched (or re-posted) before this */
    fl_chunk *head, *tail;    /* its queue */
    size_t queued;            /* records in the queue */
    size_t last_answer_n;     /* records its last answer brought */
    int ev_pending;
    uint64_t ev_seq;          /* order of the pending event */
    pkc_fl_event ev;
    long ring_next, ring_prev; /* the ring of partitions with records */
    int in_ring;
} fl_part;

struct pkc_fl {
    pkc_fl_config cfg;
    char *client_id;
    char *topic;
    char *source_host;
    char *software_version;   /* ApiVersions' ClientSoftwareVersion */
    size_t arena_max;         /* decompressed data held per answer */
    size_t chunk_max;         /* records decoded per partition per answer */
    pkc_bufpool *pool;        /* blocks reused across answers */

    pthread_mutex_t mu;
    pthread_cond_t cv;        /* consumers wait here */
    pthread_t thread;
    int thread_running;
    int stop_in_progress;     /* a pkc_fl_stop call is under way (joining
                                 the thread, resetting the partitions):
                                 other stop and start calls wait on cv
                                 until it is 0 */
    int stopping;             /* the thread must exit */
    int stopped;              /* not running: waiters return -1 */
    unsigned interrupt_gen;
    int waiters;

    pkc_security *security;   /* a reference, or NULL: plain TCP */
    pkc_reactor reactor;      /* the thread's poll set and wake-up fd */
    int reactor_ok;
    int wake_pending;

    fl_part *parts;
    size_t nparts, parts_cap;
    long ready;               /* next partition to serve, -1: none */

    fl_broker **brokers;
    size_t nbrokers, brokers_cap;

    atomic_int n_events;
    uint64_t ev_counter;
    pkc_fl_stats stats;

    /* The thread's: the brokers of this round, copied by fl_plan under
     * mu so the thread can walk them without it. */
    fl_broker **round;
    size_t n_round, round_cap;
};

/* ------------------------------------------------------------- locking */

static inline void
fl_lock(pkc_fl *fl)
{
    pthread_mutex_lock(&fl->mu);
}

static inline void
fl_unlock(pkc_fl *fl)
{
    pthread_mutex_unlock(&fl->mu);
}

/* --------------------------------------------------- the Fetch request */

/* Under mu: partition p is fetched again while fewer records than this
 * are queued: cfg.queued_max_messages, or as many as its last answer
 * brought when that is more, so that one answer is read while the next
 * is on its way (the broker's time for a large answer, encrypted over
 * TLS, is longer than the application's for queued_max_messages
 * records). */
static inline size_t
fl_refetch_below(const pkc_fl *fl, const fl_part *p)
{
    size_t cap = (size_t)fl->cfg.queued_max_messages;

    return p->last_answer_n > cap ? p->last_answer_n : cap;
}

/* The request in flight on broker `b` (b->req) as the codec sees it. */
static inline void
fl_fetch_request(const pkc_fl *fl, const fl_broker *b,
                 pkc_fetch_request *req)
{
    memset(req, 0, sizeof(*req));
    req->topic = fl->topic;
    req->topic_len = fl->cfg.topic_len;
    req->max_wait_ms = fl->cfg.max_wait_ms;
    req->min_bytes = fl->cfg.min_bytes;
    req->max_bytes = fl->cfg.max_bytes;
    req->partition_max_bytes = fl->cfg.partition_max_bytes;
    req->isolation_level = fl->cfg.isolation_level;
    req->parts = b->req;
    req->n_parts = b->req_n;
}

/* ------------------------------------------------- fetchloop_part.c */

/* Without mu: free a list of chunks, giving their record blocks back to
 * the pool. */
void fl_chunk_free_list(fl_chunk *c);

/* Under mu: a partition's queue: append a chunk (1: wake the waiting
 * consumers after unlocking), detach the whole queue (to free without
 * mu), take the next record. */
int fl_enqueue(pkc_fl *fl, long i, fl_chunk *c);
fl_chunk *fl_detach_queue(pkc_fl *fl, long i);
void fl_take_record(pkc_fl *fl, long i, pkc_record *rec,
                    pkc_answer_buf **buf, fl_chunk **to_free,
                    int *need_wake);

/* Under mu: partition i has no records queued any more. */
void fl_ring_remove(pkc_fl *fl, long i);

/* Under mu: post an event for partition p (at most one is pending).
 * Returns 1 when posted, 0 when one was pending already. */
int fl_post(pkc_fl *fl, fl_part *p, int kind, int code, const char *fmt,
            ...) __attribute__((format(printf, 5, 6)));

/* ------------------------------------------------- fetchloop_plan.c */

/* Under mu: decide what each broker does next (b->want_*, b->req);
 * returns the next time the thread must look again. */
int64_t fl_plan(pkc_fl *fl, int64_t now);

/* ------------------------------------------------- fetchloop_broker.c */

/* Set a broker's link up as the engine's config says. */
int fl_link_init(pkc_fl *fl, pkc_link *link);

/* Under mu: the broker's connection is gone (see fetchloop_broker.c). */
void fl_broker_down(pkc_fl *fl, fl_broker *b, int status, const char *why,
                    int post, int64_t now);

/* Without mu: a connection failure seen by the thread. */
void fl_broker_fail(pkc_fl *fl, fl_broker *b, int status, const char *why);

/* Without mu: what the plan asked of a broker this round. */
void fl_connect_start(pkc_fl *fl, fl_broker *b);
void fl_send_fetch(pkc_fl *fl, fl_broker *b);
void fl_link_step(pkc_fl *fl, fl_broker *b);

/* Without mu: the round's poll set, a ready broker, and the deadlines
 * passed. */
int fl_poll_set(pkc_fl *fl, int64_t *next);
void fl_on_ready(pkc_fl *fl, fl_broker *b, short revents);
void fl_check_deadlines(pkc_fl *fl);

/* ------------------------------------------------- fetchloop_answer.c */

/* Without mu: handle the answer to the Fetch in flight on `b`.  PKC_OK,
 * or PKC_ERR_NOMEM when there was no memory to take it (nothing done). */
int fl_on_fetch(pkc_fl *fl, fl_broker *b, const pkc_response *resp);
