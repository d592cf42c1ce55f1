/*
 * fetchloop.h - the consumer's fetch engine (Python-free).
 *
 * A pkc_fl fetches one topic's partitions from their leaders in a
 * background pthread and queues the decoded records in C, so the
 * application thread only pops records and turns them into objects.
 *
 * The thread
 *   One pthread serves every leader broker: one broker link (link.h)
 *   per broker, multiplexed with poll() together with a wake-up eventfd
 *   (reactor.h).  Setting a connection up never blocks the thread (only
 *   name resolution does): the link's connect, TLS handshake, ApiVersions
 *   and SASL exchange are stepped as its socket becomes ready, until it is
 *   READY or its deadline, min(cfg.socket_timeout_ms, 10 s), passes.  The
 *   engine then uses the highest Fetch version in [4, cfg.max_version]
 *   (<= 12: topics by name) that the broker listed.  A re-authentication
 *   the broker's session lifetime calls for (KIP-368) runs between two
 *   Fetches.  A set-up that fails for good (TLS, SASL, no usable Fetch
 *   version) pauses the broker's partitions with a SETUP event instead of
 *   retrying.  Each broker has at most
 *   one Fetch in flight; a Fetch names every ACTIVE partition led by that
 *   broker that is not already in flight and whose queue holds fewer
 *   records than cfg.queued_max_messages or than its last answer brought
 *   (whichever is more: one answer in reserve, so that the next is on its
 *   way while the application reads the current one; a partition's queue
 *   holds at most about two answers).  A Fetch that would name only
 *   partitions at their end (it would long-poll for max_wait_ms, and the
 *   broker serves one request per connection at a time) is held while
 *   another partition of that broker has data behind its full queue, so
 *   that partition is not stuck behind the long poll when it wants more.
 *   The starting partition rotates from one request to the next, and a
 *   partition whose last answer held no whole batch goes first, so the
 *   "at least one batch" rule of KIP-74 (which the broker applies to the
 *   first partition with data) lets a batch larger than
 *   partition_max_bytes through instead of stalling.
 *   Requests and responses go through the Fetch codec (fetch_codec.h);
 *   records are decoded with the records iterator (CRC checked,
 *   decompressed, control batches and, for read_committed, aborted
 *   transactions dropped).  The thread never touches Python objects.
 *
 * Records and memory
 *   A response body is copied once out of the connection into a
 *   refcounted pkc_answer_buf (bufpool.h; it also owns the arena of
 *   decompressed data).  Each partition's records of one response form
 *   a chunk (an array of pkc_record whose views point into the buf)
 *   appended to that partition's queue.  A record popped by the
 *   application comes with a reference to its buf, released with
 *   pkc_answer_buf_release() once the record's bytes have been copied
 *   out.
 *
 * Positions
 *   Each partition has `fetch_offset` (next offset to fetch) and
 *   `last_consumed` (offset of the last record popped; pykafka's
 *   last_offset_consumed, -1 before any).  pkc_fl_seek() drops the queue
 *   and sets fetch_offset = next, last_consumed = next - 1; a seek bumps a
 *   generation number so an answer to a Fetch sent before it is dropped.
 *   A negative fetch offset (pykafka's "-2 means reset me" convention) is
 *   reported as OFFSET_OUT_OF_RANGE without asking the broker.
 *
 * Errors become events
 *   The thread does not recover from errors itself.  A partition error in
 *   a Fetch answer, a record decode error, a broken connection, or a
 *   partition without a leader pauses the partition and posts one event
 *   for it (at most one pending per partition).  The application takes
 *   the events (pkc_fl_take_events), acts (metadata refresh, offset
 *   reset) and resumes partitions with pkc_fl_set_leader / pkc_fl_seek /
 *   pkc_fl_resume.  Connection attempts to a broker are spaced by
 *   cfg.backoff_ms; a partition left without a leader re-posts its event
 *   every cfg.backoff_ms.
 *
 * Threads and locking
 *   One mutex protects partition state and queues; I/O and decoding run
 *   without it.  Every function below except pkc_fl_new/_free may be
 *   called from any thread at any time; pkc_fl_wait blocks and should be
 *   called without the GIL.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "api_support.h"
#include "buf.h"
#include "bufpool.h"
#include "records.h"
#include "security.h"

typedef struct pkc_fl pkc_fl;

/* The engine speaks Fetch PKC_VER_FETCH_MIN (RecordBatch v2, isolation
 * level) to PKC_VER_FETCH_MAX (the last with topic names); see
 * api_support.def. */

typedef struct {
    const char *client_id;        /* copied; NULL: "pykafka_c" */
    const char *topic;            /* copied */
    size_t topic_len;
    int32_t max_wait_ms;          /* FetchRequest MaxWaitMs */
    int32_t min_bytes;            /* FetchRequest MinBytes */
    int32_t max_bytes;            /* FetchRequest MaxBytes (whole answer) */
    int32_t partition_max_bytes;  /* FetchRequest PartitionMaxBytes */
    int8_t isolation_level;       /* 0 read_uncommitted, 1 read_committed */
    int32_t queued_max_messages;  /* per-partition queue cap */
    int32_t socket_timeout_ms;    /* connect timeout; request timeout is
                                     max_wait_ms + this */
    int32_t backoff_ms;           /* between retries after errors */
    int32_t max_frame;            /* cap on one response; <= 0 default */
    int16_t max_version;          /* Fetch version cap, 4..12 */
    int check_crcs;               /* 1: verify record CRCs */
    size_t max_decompressed;      /* per compressed batch; 0 default */
    const char *source_host;      /* copied; NULL or "" for any */
    int source_port;
    pkc_security *security;       /* TLS and SASL of every connection
                                     (the engine takes a reference);
                                     NULL: plain TCP without SASL */
    const char *software_version; /* ApiVersions' ClientSoftwareVersion
                                     (copied); NULL: "0" */
} pkc_fl_config;

/* Fill `cfg` with the defaults (pykafka's SimpleConsumer defaults). */
void pkc_fl_config_default(pkc_fl_config *cfg);

/* Kinds of events. */
enum {
    PKC_FL_EV_KAFKA = 1,     /* the broker answered `code` for the partition */
    PKC_FL_EV_DECODE = 2,    /* its records or the answer did not decode:
                                `code` is a pkc_status */
    PKC_FL_EV_CONN = 3,      /* its leader's connection failed: `code` is a
                                pkc_status */
    PKC_FL_EV_NO_LEADER = 4, /* it has no leader (set_leader with node -1) */
    PKC_FL_EV_SETUP = 5      /* its leader's connection could not be set up
                                and retrying will not help: `code` is
                                PKC_ERR_TLS, PKC_ERR_AUTH (`kafka_error`:
                                the broker's code, 0 when the client
                                refused) or PKC_ERR_UNSUPPORTED (no Fetch
                                version in common); the partition pauses */
};

typedef struct {
    int32_t partition;
    int32_t kind;            /* PKC_FL_EV_* */
    int32_t code;            /* Kafka error code or pkc_status */
    int32_t node_id;         /* leader at the time, -1 if none */
    int32_t kafka_error;     /* SETUP: the broker's error code, or 0 */
    int64_t offset;          /* fetch offset at the time */
    char msg[384];           /* a sentence for the exception */
} pkc_fl_event;

/* Partition states. */
enum {
    PKC_FL_ACTIVE = 0,       /* fetched when its queue has room */
    PKC_FL_WAIT_LEADER = 1,  /* no usable leader; event posted */
    PKC_FL_PAUSED = 2        /* stopped by an error until seek/resume */
};

typedef struct {
    int32_t partition;
    int32_t state;           /* PKC_FL_* state */
    int32_t leader;          /* node id, -1 none */
    int32_t leader_epoch;
    int64_t fetch_offset;
    int64_t last_consumed;
    int64_t high_watermark;  /* -1 until known */
    int64_t last_stable_offset;
    int64_t log_start_offset;
    size_t queued;           /* records queued */
    int event_pending;
} pkc_fl_partinfo;

/* Counters for tests and benchmarks. */
typedef struct {
    uint64_t fetches_sent;
    uint64_t responses;
    uint64_t records_queued;
    uint64_t bytes_received;
    uint64_t connects;
    uint64_t authentications;  /* SASL exchanges completed, re-auths too */
    uint64_t conn_failures;
    uint64_t events_posted;
    uint64_t wakeups;
} pkc_fl_stats;

/* ------------------------------------------------------------ lifecycle */

/*
 * Make an engine (no thread yet).  Returns PKC_OK, PKC_ERR_NOMEM, or
 * PKC_ERR_INVALID for a bad config (then *out is NULL).
 */
int pkc_fl_new(const pkc_fl_config *cfg, pkc_fl **out);

/* Stop the thread if running, then free everything (queued records are
 * dropped; bufs still referenced by popped records stay alive until
 * released). */
void pkc_fl_free(pkc_fl *fl);

/* Add a partition (before the first start only).  Returns PKC_OK,
 * PKC_ERR_INVALID (duplicate, or the thread runs) or PKC_ERR_NOMEM. */
int pkc_fl_add_partition(pkc_fl *fl, int32_t partition);

/* Start the fetch thread.  PKC_OK (also when it already runs; a start
 * that meets a stop under way waits for it, then starts), or
 * PKC_ERR_NOMEM / PKC_ERR_IO if the thread could not be made. */
int pkc_fl_start(pkc_fl *fl);

/*
 * Stop the thread and wait for it; close every connection; drop every
 * queued record and rewind each partition to last_consumed + 1; clear
 * pending events; partitions become ACTIVE again.  Waiters in
 * pkc_fl_wait return.  Safe to call when not running, and from several
 * threads at once: one of them joins the thread, the others wait until
 * it is done.
 */
void pkc_fl_stop(pkc_fl *fl);

/* 1 while the thread runs (between start and stop). */
int pkc_fl_running(pkc_fl *fl);

/* ------------------------------------------------------------ control */

/*
 * Set the leader of `partition`: broker `node_id` at host:port (node_id -1:
 * no leader; the partition waits and re-posts a NO_LEADER event every
 * backoff_ms).  A partition waiting for a leader becomes ACTIVE; a paused
 * one stays paused.  A broker whose host or port changed is reconnected.
 * Returns PKC_OK, PKC_ERR_INVALID (unknown partition, host too long) or
 * PKC_ERR_NOMEM.
 */
int pkc_fl_set_leader(pkc_fl *fl, int32_t partition, int32_t node_id,
                      const char *host, int port, int32_t leader_epoch);

/* Drop the partition's queue, set its position (fetch_offset = next,
 * last_consumed = next - 1), clear its event and make it ACTIVE (or
 * WAIT_LEADER if it has no leader). */
int pkc_fl_seek(pkc_fl *fl, int32_t partition, int64_t next_offset);

/* Make a paused or waiting partition ACTIVE again after `delay_ms`,
 * keeping its position and queue. */
int pkc_fl_resume(pkc_fl *fl, int32_t partition, int32_t delay_ms);

/* Re-post an event the application took but could not handle (the
 * partition is paused, or waits for a leader for CONN / NO_LEADER). */
int pkc_fl_post_event(pkc_fl *fl, const pkc_fl_event *ev);

/* ------------------------------------------------------------ consuming */

/*
 * Pop the next record, serving partitions with queued records in round
 * robin.  Returns 1 with *rec, *partition and *buf set (release *buf
 * with pkc_answer_buf_release once the record's views are no longer
 * needed), or 0 when nothing is queued.  Sets the partition's
 * last_consumed.
 */
int pkc_fl_pop(pkc_fl *fl, pkc_record *rec, int32_t *partition,
               pkc_answer_buf **buf);

/* Pop from one partition only (pykafka's OwnedPartition.consume). */
int pkc_fl_pop_partition(pkc_fl *fl, int32_t partition, pkc_record *rec,
                         pkc_answer_buf **buf);

/* One popped record for pkc_fl_pop_many. */
typedef struct {
    pkc_record rec;
    int32_t partition;
    pkc_answer_buf *buf; /* a reference, or NULL when the previous
                            entry's reference covers this record (same
                            buf) */
} pkc_fl_popped;

/* Pop up to `max` records under one lock; returns how many.  Release every
 * non-NULL `buf` of the entries. */
size_t pkc_fl_pop_many(pkc_fl *fl, pkc_fl_popped *out, size_t max);

/*
 * Wait until a record is queued, an event is pending, the engine is
 * stopped or interrupted, or `timeout_ms` passes (< 0: no timeout).
 * Returns 1 if there is something to do (records or events), 0 on
 * timeout, -1 if stopped/interrupted.  Call without the GIL.
 */
int pkc_fl_wait(pkc_fl *fl, int64_t timeout_ms);

/* Wake every pkc_fl_wait caller (they return -1 once). */
void pkc_fl_interrupt(pkc_fl *fl);

/* Non-zero when events are pending (a relaxed read, no lock). */
int pkc_fl_events_pending(pkc_fl *fl);

/* Take up to `max` pending events (oldest partitions first). */
size_t pkc_fl_take_events(pkc_fl *fl, pkc_fl_event *out, size_t max);

/* ------------------------------------------------------------ inspection */

size_t pkc_fl_partition_count(pkc_fl *fl);
/* Info of the i-th partition (in the order added). */
int pkc_fl_partition_info_at(pkc_fl *fl, size_t i, pkc_fl_partinfo *out);
/* Info of partition id `partition`. */
int pkc_fl_partition_info(pkc_fl *fl, int32_t partition,
                          pkc_fl_partinfo *out);
void pkc_fl_get_stats(pkc_fl *fl, pkc_fl_stats *out);
