/*
 * send_engine.h - private to the send engine: included by its files
 * only (below).  The glue and the tests use sendloop.h; nothing outside
 * the engine may see these structs.
 *
 * The engine's files, one concern each:
 *   sendloop.c      the engine's policy: append, the producer-id handover,
 *                   sending requests and answering their responses
 *                   (retries), the broker links, flush/stop/events and the
 *                   sender's loop.
 *   send_engine.c   making and freeing an engine: the config checked and
 *                   copied with its defaults, the largest batch, the lock,
 *                   condition variables and reactor.
 *   send_brokers.c  the broker and leader tables: the brokers the glue
 *                   listed, each with its link, and each partition's
 *                   leader resolved to its broker entry.
 *   send_batch.c    a batch's life: made, reused and freed, its cookies,
 *                   its moves between its partition's queues (open, ready,
 *                   retry, in a request), filed on the done list, split in
 *                   two when the broker refuses it as too large.
 *   send_plan.c     the planner: what the sender does for each broker this
 *                   round (fail, connect, re-authenticate, or build
 *                   requests), sealing due batches and finishing
 *                   (compressing) them ahead of their request.
 *   send_idem.c     the idempotent producer's state (KIP-98, KIP-360):
 *                   the producer-id handover, each partition's sequence
 *                   numbers, and the epoch bump that restarts them.
 * The Produce bytes are produce_codec.c's, which knows none of this.
 *
 * Names.  Public functions are pkc_sl_* (sendloop.h; pkc_sl_new and
 * pkc_sl_free are send_engine.c's, pkc_sl_set_brokers and
 * pkc_sl_set_leaders send_brokers.c's).  Inside the engine a function's
 * prefix names its file: sl_engine_* send_engine.c, sl_brokers_*
 * send_brokers.c, sl_batch_* send_batch.c, sl_plan_* send_plan.c,
 * sl_idem_* send_idem.c, any other sl_* sendloop.c.  One short name
 * per type: bt a batch, b a broker, p a partition, req a request, r a
 * result.
 *
 * Locking: the one discipline of the engine.
 * - One mutex, sl->mu, guards every field below unless its comment says
 *   otherwise ("fixed": set before the engine is shared, read-only after;
 *   "sender": the sender thread's alone, no lock needed).
 * - Each function states how it is called, in its comment: "mu held"
 *   (never unlocks, never blocks, does no I/O; it may signal condition
 *   variables and wake the sender) or "sender, unlocked" (called by the
 *   sender thread without the lock; it takes mu for one short scope per
 *   step and encodes, compresses and does socket I/O outside them).  The
 *   public functions take mu themselves.  mu is not recursive.
 * - What only the sender writes, it writes under mu (so that other
 *   threads can read it under mu) and reads without: a broker's
 *   produce_version, connect_after and in-flight FIFO.  A batch in a
 *   request is the sender's until its result is filed.  Broker entries
 *   are never freed before pkc_sl_free, so a broker pointer stays valid
 *   without mu.  The one reader of shared data without mu is
 *   sl_plan_finish_ahead, which says why that is safe.
 * - Lock order: the glue may hold the GIL while it takes mu; the engine
 *   never takes the GIL.
 */
#pragma once

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "link.h"
#include "produce_codec.h"
#include "reactor.h"
#include "sendloop.h"

/* One Produce request written to a connection and not finished yet. */
typedef struct sl_req sl_req;
struct sl_req {
    sl_req *next;
    int32_t correlation_id;
    int64_t deadline_ms;    /* no response by then: the connection is
                               dropped */
    int32_t n_batches;
    int32_t cap;
    pkc_sl_batch **batches; /* one per partition, in plan order */
};

/* One broker of the cluster (an entry lives until pkc_sl_free). */
typedef struct {
    int32_t node_id;       /* fixed */
    int present;           /* in the latest broker table */
    char host[256];        /* address, from pkc_sl_set_brokers */
    int port;
    int addr_changed;      /* reconnect before the next request */
    /* The connection (sender; pkc_sl_set_brokers makes it before the
     * sender can see the entry, pkc_sl_stop and pkc_sl_free use it after
     * the join): DOWN, being set up (connect, TLS, ApiVersions, SASL:
     * stepped by the sender's poll loop), or READY. */
    pkc_link link;
    int link_inited;       /* fixed */
    int refused;           /* the last set-up failed: fail one attempt of
                              each partition's head batch (planner) */
    pkc_sl_result refusal; /* ... with this result */
    int refusal_retriable;
    /* Written by the sender only (under mu). */
    int16_t produce_version; /* -1 until the link is READY */
    int64_t connect_after; /* connect backoff (monotonic ms) */
    sl_req *inflight_head, *inflight_tail;
    int n_inflight;        /* changed only by sl_inflight_set */
    int64_t busy_since_us; /* when n_inflight last rose to 1 (pkc_now_us) */
    int64_t backlog_since_us; /* ... and to 2 */
    int64_t unsent;        /* records in open/ready batches it leads */
    int32_t rr;            /* round-robin start among its partitions */
} sl_broker;

/* One partition of the topic. */
typedef struct {
    int known;             /* listed by pkc_sl_set_leaders */
    int32_t leader;        /* node id, -1 none */
    sl_broker *broker;     /* the leader's broker entry, NULL if unknown */
    pkc_sl_batch *open;
    pkc_sl_batch *ready_head, *ready_tail;
    /* Batches whose attempt failed while later batches of the partition
     * were still in flight: they wait here, in partition order, until the
     * last of those is answered, then go back to the head of the ready
     * FIFO (so the order survives any mix of answers). */
    pkc_sl_batch *retry_head, *retry_tail;
    int64_t unsent;        /* records in open + ready + retry batches */
    int n_in_flight;       /* of its batches in requests */
    sl_broker *inflight_broker; /* the broker they went to */
    /* Idempotence (send_idem.c): the producer id and epoch its batches
     * are numbered under, and the generation (sl->pid_gen) they were
     * taken at, -1 before its first numbered batch.  A partition keeps
     * them until its sequences restart, so that every retry carries the
     * numbers of its first attempt. */
    int64_t seq_gen;
    int64_t seq_pid;
    int16_t seq_epoch;
    int32_t next_seq;      /* sequence of the next batch numbered */
    int reset_wanted;      /* the leader proved its batches in flight
                              unwritten: restart its sequences at 0 under
                              a newer epoch once none is in flight */
    int64_t leaderless_since; /* monotonic ms, -1 while it has a leader */
} sl_part;

struct pkc_sl {
    pkc_sl_config cfg;         /* fixed, but cfg.idempotent (under mu) */
    char *topic;               /* fixed */
    size_t topic_len;          /* fixed */
    char *client_id;           /* fixed */
    size_t batch_max;          /* fixed: builder cap, bytes */
    pkc_produce_fields fields; /* fixed: Produce's field rows */

    pthread_mutex_t mu;
    pthread_cond_t space_cond; /* producers waiting for room */
    pthread_cond_t idle_cond;  /* flush/stop waiting for pending == 0 */
    pthread_cond_t ev_cond;    /* the glue's event waiter */
    pkc_reactor reactor;       /* sender: its poll set; any thread wakes
                                  it (sl_wake_sender, mu held) */
    int wake_pending;
    /* The sender's planning round (sender, mu held): when it began, and
     * the earliest end of a linger it waits for, on the microsecond clock
     * (a linger of a few milliseconds must not end a millisecond late). */
    int64_t round_us;
    int64_t linger_wake_us;
    pkc_security *security;    /* fixed: a reference, or NULL: plain TCP */
    char *source_host;         /* fixed */
    char *software_version;    /* fixed */
    char *transactional_id;    /* fixed: NULL unless transactional */

    pthread_t thread;
    int thread_started;
    int thread_joined;
    int accepting;
    int stop_now;
    int sender_exited;
    int flushers;              /* > 0: send everything now */
    int ev_metadata;
    int64_t last_metadata_ms;

    sl_part *parts;            /* indexed by partition id (reallocated:
                                  no pointer into it outlives mu) */
    int32_t nparts;            /* allocated entries */
    sl_broker **brokers;       /* entries never freed before pkc_sl_free */
    size_t nbrokers, cap_brokers;

    pkc_sl_batch *done_head, *done_tail;
    pkc_sl_batch *free_list;
    int nfree;
    int32_t finish_rr;         /* where sl_plan_finish_ahead starts */
    /* Sender: a request's partitions for the codec. */
    pkc_produce_partition *encode_parts;
    int32_t encode_parts_cap;

    /* Idempotence (send_idem.c). */
    int64_t pid;               /* producer id in use, -1: none */
    int16_t epoch;             /* its newest epoch */
    int64_t pid_gen;           /* bumped whenever pid/epoch change */
    int pid_wanted;            /* waiting for the glue's producer id */
    int ev_pid;                /* PKC_SL_EV_PRODUCER_ID not yet seen */
    int have_pending;          /* pending_pid waits to be applied */
    int64_t pending_pid;
    int16_t pending_epoch;
    int32_t resets_wanted;     /* partitions with reset_wanted set */
    int64_t pid_wait_since;    /* monotonic ms the wait for the first
                                  producer id began, -1 */
    pkc_sl_result pid_failure; /* why the glue's last InitProducerId
                                  failed (kind PKC_SL_OK: none yet) */
    int pid_failures;          /* InitProducerId attempts failed since
                                  the waiting batches last failed */
    int64_t inflight_batches;  /* batches in requests, all partitions */

    pkc_sl_stats stats;
};

/* What the sender does for a broker this round: planned under the lock
 * (send_plan.c), carried out without it (sendloop.c). */
typedef enum {
    SL_PLAN_SEND,     /* write request req */
    SL_PLAN_CONNECT,  /* start setting its connection up */
    SL_PLAN_STEP      /* step its link (a due re-authentication) */
} sl_plan_action;

typedef struct {
    sl_plan_action action;
    sl_broker *b;
    sl_req *req;      /* SL_PLAN_SEND */
    char host[256];   /* b's address when planned */
    int port;
} sl_plan_item;

/* Lower the deadline *at to t. */
static inline void
sl_min_deadline(int64_t *at, int64_t t)
{
    if (t < *at)
        *at = t;
}

/* When batch bt's linger ends (pkc_now_us clock). */
static inline int64_t
sl_linger_end_us(const pkc_sl *sl, const pkc_sl_batch *bt)
{
    return bt->first_us + (int64_t)sl->cfg.linger_ms * 1000;
}

/* Whether bt's linger has ended this round; if not, the sender wakes
 * when it does (mu held). */
static inline int
sl_linger_over(pkc_sl *sl, const pkc_sl_batch *bt)
{
    int64_t end_us = sl_linger_end_us(sl, bt);

    if (end_us <= sl->round_us)
        return 1;
    sl_min_deadline(&sl->linger_wake_us, end_us);
    return 0;
}

/* Free a request (not its batches). */
static inline void
sl_req_free(sl_req *req)
{
    free(req->batches);
    free(req);
}

/* ------------------------------------------------- sendloop.c, shared */

/* Fill a result: kind (PKC_SL_*), Kafka code, pkc_status, message. */
void sl_set_result(pkc_sl_result *r, int kind, int16_t code, int status,
                   const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Wake the sender's poll (mu held; never blocks). */
void sl_wake_sender(pkc_sl *sl);
/* Ask the glue for fresh metadata, once until it looks (mu held). */
void sl_request_metadata(pkc_sl *sl);
/* Fail every request in flight on `b`, one attempt of each of their
 * batches, and close its connection (mu held). */
void sl_broker_drop(pkc_sl *sl, sl_broker *b, const pkc_sl_result *r);
/* Fail one attempt of each batch of a request that never reached the
 * wire, and free it (mu held). */
void sl_req_fail(pkc_sl *sl, sl_req *req, const pkc_sl_result *r,
                 int retriable, int needs_metadata);

/* ------------------------- send_brokers.c: the broker and leader tables */

/* The broker entry of `node_id`, listed or not any more, or NULL when it
 * never was (mu held). */
sl_broker *sl_brokers_find(pkc_sl *sl, int32_t node_id);

/* ------------------------------------------- send_batch.c: a batch's life */

/* A fresh batch of `partition`, from the free list or new; NULL when
 * memory ran out (mu held). */
pkc_sl_batch *sl_batch_get(pkc_sl *sl, int32_t partition);
/* Return a batch to the free list, or free it when the list is full (mu
 * held).  Its cookies must have been taken. */
void sl_batch_put(pkc_sl *sl, pkc_sl_batch *bt);
/* Free a batch and its buffers (NULL is fine; no lock needed: the batch
 * is nobody else's). */
void sl_batch_destroy(pkc_sl_batch *bt);
/* Make room for one more cookie, so that an append never has to be
 * undone.  PKC_OK or PKC_ERR_NOMEM. */
int sl_batch_reserve_cookie(pkc_sl_batch *bt);
/* Store cookie `c` for the record about to be counted (bt->count).
 * PKC_OK or PKC_ERR_NOMEM. */
int sl_batch_add_cookie(pkc_sl_batch *bt, const pkc_sl_cookie *c);

/* Records of partition `p` that became unsent (n > 0) or left (n < 0):
 * the partition's, its leader's and the engine's counts; wakes producers
 * waiting for room (mu held). */
void sl_batch_unsent_add(pkc_sl *sl, sl_part *p, int64_t n);
/* Append `bt` to the partition's ready FIFO: it is sealed (mu held). */
void sl_batch_to_ready(sl_part *p, pkc_sl_batch *bt);
/* Move `bt`, the open batch or the ready FIFO's head, into a request to
 * broker `b`: it is in flight (mu held). */
void sl_batch_to_request(pkc_sl *sl, sl_part *p, sl_broker *b,
                         pkc_sl_batch *bt);
/* Queue `bt` for another attempt behind its partition's other failed
 * batches; sl_batch_landed moves them to the ready FIFO's head (mu
 * held). */
void sl_batch_to_retry(pkc_sl *sl, pkc_sl_batch *bt);
/* One batch of `partition` is no longer in flight (mu held; call after
 * its result was filed).  When it was the partition's last, the batches
 * waiting for another attempt go back to the head of the ready FIFO, in
 * order, and the sender is woken. */
void sl_batch_landed(pkc_sl *sl, int32_t partition);
/* Bytes `bt` takes in a request (its wire form once finished). */
size_t sl_batch_size(const pkc_sl_batch *bt);

/* File a finished batch with its result: the done list, or straight back
 * to the free list when nobody needs to see it; wakes the glue and the
 * flushers (mu held). */
void sl_batch_complete(pkc_sl *sl, pkc_sl_batch *bt);
/* sl_batch_complete with failure `r`: the batch will never be sent
 * again (mu held).  A batch that carried sequence numbers needs nothing
 * more: the partition's next batch tells whether the leader has it (see
 * send_idem.c). */
void sl_batch_fail(pkc_sl *sl, pkc_sl_batch *bt, const pkc_sl_result *r);
/* With cfg.delivery_timeout_ms: the moment `bt` (holding records) stops
 * being retried, delivery_timeout_ms after its first record. */
int64_t sl_delivery_deadline(const pkc_sl *sl, const pkc_sl_batch *bt);
/* `last` (the batch's last failure, or why it waits), saying that the
 * delivery timeout passed at `now`, into *out. */
void sl_expired_result(const pkc_sl *sl, const pkc_sl_batch *bt,
                       const pkc_sl_result *last, int64_t now,
                       pkc_sl_result *out);

/* Split `bt` (finished, in a request, answered MESSAGE_TOO_LARGE) into two
 * halves that carry its records and cookies, its attempts and its first
 * append time (sender, unlocked).  Returns PKC_OK with both halves set,
 * or a status with neither (then `bt` is unchanged). */
int sl_batch_split(pkc_sl *sl, pkc_sl_batch *bt, pkc_sl_batch **first,
                   pkc_sl_batch **second);

/* --------------------------------------------- send_plan.c: the planner */

/* Grow `plan` to hold an item per broker and request in flight (mu held);
 * returns the plan (the old one if growing failed), *cap its room. */
sl_plan_item *sl_plan_reserve(pkc_sl *sl, sl_plan_item *plan, size_t *cap);
/*
 * Plan this round (mu held): fail the batches that waited too long for a
 * leader, apply a waiting producer id and the partitions' sequence
 * restarts (send_idem.c), then per broker fail what a
 * refused set-up leaves, connect, re-authenticate, or build up to
 * max_in_flight requests (their batches count as in flight).  Fills
 * `plan` (at most `cap` items), returns the count, and lowers *wake_at
 * (ms) to the next moment something becomes due, sl->linger_wake_us to
 * the next linger end.
 */
size_t sl_plan_requests(pkc_sl *sl, int64_t now, sl_plan_item *plan,
                        size_t cap, int64_t *wake_at);
/*
 * Seal the open batch of every partition that has a batch in flight and
 * nothing else ready, once that batch is due (linger_ms passed,
 * min_queued reached, or a flush), so that sl_plan_finish_ahead can
 * compress it while the partition waits for its answer (mu held).  Full
 * batches are sealed by pkc_sl_append.  Lowers sl->linger_wake_us to
 * the next linger end.
 */
void sl_plan_seal_due(pkc_sl *sl);
/* Finish (header, compression, CRC-32C) one sealed batch waiting in a
 * ready FIFO (sender, unlocked).  Returns 1 when it finished one (there
 * may be more), else 0. */
int sl_plan_finish_ahead(pkc_sl *sl);

/* --------------------- send_idem.c: the idempotent producer's state */

/* Ask the glue for a new producer id (mu held; idempotent engines).  The
 * current one stays in use until the new one is applied. */
void sl_idem_want_producer_id(pkc_sl *sl);
/* Apply a producer id handed over by pkc_sl_set_producer_id (mu held).
 * The first one (and giving idempotence up) waits until no batch is in
 * flight; a later one applies at once, to the partitions whose sequences
 * restart.  Returns 0 while one still waits, else 1. */
int sl_idem_apply_producer_id(pkc_sl *sl);
/* Is an idempotent engine still waiting for its first producer id?  It
 * sends nothing meanwhile: a batch sent without one could be written
 * twice by its retry (mu held). */
int sl_idem_awaiting_first_id(const pkc_sl *sl);
/* Why the unsent batches wait for the first producer id, `now`, into
 * *out: the glue's last InitProducerId failure (pkc_sl_producer_id_failed)
 * or that none answered yet (mu held). */
void sl_idem_wait_result(const pkc_sl *sl, int64_t now, pkc_sl_result *out);
/* Restart the sequences of the partitions that wanted it and have no
 * batch in flight, bumping the epoch when they were numbered under the
 * current one (mu held; the planner, before building requests). */
void sl_idem_apply_resets(pkc_sl *sl);
/* The leader refused the earliest batch in flight of `p` for its
 * sequence (OUT_OF_ORDER_SEQUENCE_NUMBER, UNKNOWN_PRODUCER_ID): restart
 * the partition's sequences once none is in flight (mu held). */
void sl_idem_want_reset(pkc_sl *sl, sl_part *p);
/* The producer fields `bt` will most likely carry, set in its builder
 * before it is finished, so that the restamp after numbering computes no
 * second CRC (mu held). */
void sl_idem_preset(const pkc_sl *sl, const sl_part *p, pkc_sl_batch *bt);
/* Number `bt` of partition `p` as it is written (mu held): a retry keeps
 * the numbers of its first attempt; a batch never numbered, or numbered
 * before its partition's sequences restarted, takes the partition's next
 * sequence.  Without a producer id it carries none. */
void sl_idem_stamp(pkc_sl *sl, sl_part *p, pkc_sl_batch *bt);
/* Forget the partitions' numbering (mu held; stop, after every batch was
 * failed). */
void sl_idem_forget_partition(pkc_sl *sl, sl_part *p);
