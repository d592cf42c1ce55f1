/*
 * sendloop.h - the producer's send engine (Python-free).
 *
 * A pkc_sl is the C half of one Producer: per-partition RecordBatch v2
 * builders that records are appended to as they are produced, and one
 * sender thread (pthread) that seals batches, compresses them, sends
 * Produce requests to the partition leaders, reads the responses, retries
 * what failed retriably and hands every finished batch back to the glue.
 * Nothing here touches Python, so the sender never needs the GIL.
 *
 * Threads and locking.  Every function below but pkc_sl_new and
 * pkc_sl_free is thread-safe: it takes the engine's one lock for a short
 * while (producing threads hold it for the few hundred nanoseconds of an
 * append; the sender encodes, compresses and does socket I/O without
 * it).  The glue may hold the GIL while it calls any of them, as the
 * sender never takes the GIL; the ones that wait say "call without the
 * GIL".  A batch is the engine's until pkc_sl_take_done hands it to the
 * glue, which owns it until pkc_sl_batch_release.  The engine's own
 * rules are in send_engine.h.
 *
 * Opaque per-record cookies.  Each appended record may carry a
 * pkc_sl_cookie (two pointers the engine never dereferences; the glue
 * stores a Message and its report queue there).  With keep_cookies off
 * nothing per record is stored, and successful batches are freed by the
 * sender itself.
 *
 * Batch life: OPEN (appendable, in partition->open) -> SEALED (in the
 * partition's ready FIFO; when full, or, while the partition has a batch
 * in flight and nothing else ready, when linger_ms passed since its first
 * record, when the leader's unsent count reached min_queued, or when a
 * flush/stop is under way) -> FINISHED (header, compression and CRC done
 * by the sender while the batch waits in the ready FIFO, so compression
 * overlaps the broker's work on the request in flight; a batch sent
 * straight from OPEN is finished when its request is built) -> IN FLIGHT
 * (in one request; see "Order" below)
 * -> DONE (on sl->done for the glue: success with base offset, or failure
 * with a pkc_sl_result saying why).  A failed attempt whose error is
 * retriable waits, with any other batch of its partition that fails
 * before the partition's batches in flight are all answered, and then they
 * go back to the head of the partition's ready FIFO in their order, sent
 * again after retry_backoff_ms, up to max_retries times; MESSAGE_TOO_LARGE
 * / RECORD_LIST_TOO_LARGE on a batch of several records splits it in two
 * (no attempt counted).  Every appended record ends on the done list
 * exactly once (pkc_sl_stop fails what is left with PKC_SL_STOPPED).
 *
 * Order.  Without a producer id one batch per partition is in flight, so
 * retries keep the partition's order.  With cfg.idempotent (Kafka's
 * idempotent producer, KIP-98) the glue hands over a producer id and epoch
 * from InitProducerId (pkc_sl_set_producer_id, applied while nothing is in
 * flight); each batch gets its partition's next base sequence when it is
 * first written (kept across its retries, patched into a batch finished
 * ahead with pkc_batch_builder_restamp), and up to
 * PKC_SL_IDEMPOTENT_MAX_IN_FLIGHT batches per partition are in flight, all
 * to one broker.  The leader refuses a gap (OUT_OF_ORDER_SEQUENCE_NUMBER:
 * the batches behind a failed one follow it, no attempt counted) and
 * recognises a repeat (DUPLICATE_SEQUENCE_NUMBER, or the original offset:
 * a success), so retries neither reorder nor duplicate.  A partition's
 * numbers change only when its leader proves its batches in flight
 * unwritten (OUT_OF_ORDER_SEQUENCE_NUMBER or UNKNOWN_PRODUCER_ID on the
 * earliest one: the leader appends only in sequence): once none is in
 * flight, the engine bumps the producer's epoch itself (KIP-360, as
 * Kafka's Java producer does for an idempotent producer) and numbers the
 * partition's waiting batches from 0 under it; other partitions keep
 * their numbers, and a batch that may have been written is always
 * retried with the numbers of its first attempt.  A batch with sequences
 * that fails for good needs nothing more: the partition's next batch is
 * accepted (the leader has it) or refused as out of order (a reset).
 * INVALID_PRODUCER_EPOCH, or an exhausted epoch, raise
 * PKC_SL_EV_PRODUCER_ID: the partitions that need it restart under the
 * new id once the glue hands it over, the others go on meanwhile.
 *
 * Transactions.  With cfg.transactional_id the glue runs the
 * transaction protocol (InitProducerId, AddPartitionsToTxn, EndTxn) and
 * hands the engine each producer id and epoch; a batch refused for its
 * numbers or its epoch (OUT_OF_ORDER_SEQUENCE_NUMBER,
 * UNKNOWN_PRODUCER_ID, INVALID_PRODUCER_EPOCH, PRODUCER_FENCED) fails
 * for good, as Kafka's transactional producer fails the transaction,
 * instead of the idempotent producer's own epoch bump or new producer
 * id; a producer id handed over restarts every partition's sequences
 * at 0 (the glue hands one over only with nothing in flight, after
 * InitProducerId bumped the epoch).
 *
 * Connections.  The sender keeps one broker link (link.h) per leader
 * broker and sets it up on demand without blocking (connect from
 * cfg.source_host/port, TLS, ApiVersions, SASL: stepped by its poll loop,
 * the whole bounded by connect_timeout_ms), so a broker that does not
 * answer delays only its own partitions.  It uses the highest Produce
 * version both sides speak (3..12; zstd needs 7+) and multiplexes all
 * brokers with poll() (reactor.h).  A failed set-up fails one attempt of
 * the next batch of each partition the broker leads, as a failed request
 * would; TLS and SASL refusals fail them for good (PKC_SL_REFUSED) and
 * the broker is not asked again for REFUSED_BACKOFF_MS.  A due
 * re-authentication (KIP-368) runs once the broker's requests are
 * answered.  Errors that make the metadata suspect (leader
 * moved, unknown partition, disconnects) set PKC_SL_EV_METADATA for the
 * glue, which refreshes the metadata in Python and calls
 * pkc_sl_set_brokers / pkc_sl_set_leaders; the sender never does.
 */
#pragma once

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "api_support.h"
#include "buf.h"
#include "net.h"
#include "records.h"
#include "security.h"

/* The engine speaks Produce PKC_VER_PRODUCE_MIN to PKC_VER_PRODUCE_MAX
 * (v13 switches to topic ids), zstd from PKC_VER_PRODUCE_ZSTD_MIN; see
 * api_support.h. */

/* Batches of one partition in flight at once with an idempotent producer
 * (Kafka brokers keep the last five batches of each producer and
 * partition for duplicate detection). */
#define PKC_SL_IDEMPOTENT_MAX_IN_FLIGHT 5
/* Bytes of a Produce request that are not record batches, beyond the
 * topic name and per-partition overhead (generous). */
#define PKC_SL_REQUEST_OVERHEAD 128
#define PKC_SL_PARTITION_OVERHEAD 16

/* Kinds of results (pkc_sl_result.kind). */
typedef enum {
    PKC_SL_OK = 0,
    PKC_SL_KAFKA = 1,        /* the broker answered error_code != 0 */
    PKC_SL_DISCONNECTED = 2, /* connect/send/receive failed, or timeout */
    PKC_SL_DECODE = 3,       /* malformed response (detail in message) */
    PKC_SL_TOO_LARGE = 4,    /* a record larger than max_request_size */
    PKC_SL_STOPPED = 5,      /* producer stopped before delivery */
    PKC_SL_NO_LEADER = 6,    /* no leader known within leader_wait_ms */
    PKC_SL_LOCAL = 7,        /* local failure: encode, codec, memory */
    PKC_SL_REFUSED = 8       /* the leader refused our connection for good:
                                status PKC_ERR_TLS or PKC_ERR_AUTH
                                (error_code: the broker's, 0 when the client
                                refused the broker) */
} pkc_sl_kind;

/* What happened to a batch. */
typedef struct {
    int kind;              /* pkc_sl_kind */
    int16_t error_code;    /* for PKC_SL_KAFKA (also set for TOO_LARGE: 10,
                              NO_LEADER: 5) */
    int status;            /* pkc_status for DISCONNECTED/DECODE/LOCAL */
    char message[240];     /* human-readable detail, NUL-terminated */
} pkc_sl_result;

/* Per-record opaque data for the glue (never dereferenced here). */
typedef struct {
    void *msg;
    void *queue;
} pkc_sl_cookie;

typedef struct pkc_sl_batch pkc_sl_batch;
struct pkc_sl_batch {
    pkc_sl_batch *next;      /* in a ready FIFO, a free list or sl->done */
    int32_t partition;       /* partition id */
    int32_t count;           /* records */
    pkc_batch_builder bb;    /* the records (and, once finished, the wire
                                form, valid while `finished`) */
    pkc_sl_cookie *cookies;  /* count entries, or NULL without cookies */
    int32_t cookies_cap;
    int64_t first_us;        /* monotonic µs of the first append (linger) */
    int64_t created_ms;      /* monotonic ms when the batch was opened */
    int64_t not_before_ms;   /* retry backoff: not sent before this */
    int attempts;            /* failed send attempts so far */
    int64_t stamp_gen;       /* producer id generation of base_seq, -1 */
    int64_t stamp_pid;       /* producer id it was last sent with, -1 */
    int16_t stamp_epoch;     /* ... and its epoch, -1 */
    int32_t base_seq;        /* sequence of its first record (idempotent) */
    int full;                /* the builder refused a record */
    int finish_tried;        /* the sender tried to finish it while it
                                waited in the ready FIFO */
    int finished;            /* wire/wire_len are valid */
    const uint8_t *wire;
    size_t wire_len;
    /* Result (valid on the done list). */
    int64_t base_offset;     /* -1 unknown (acks=0, failures) */
    int64_t log_append_time; /* -1 unless the topic uses LogAppendTime */
    pkc_sl_result result;
};

/* Static configuration of an engine. */
typedef struct {
    const char *topic;        /* copied */
    int codec;                /* PKC_CODEC_* */
    int level;                /* codec level, -1 default */
    int16_t acks;             /* 0, 1, -1 (or n) */
    int32_t ack_timeout_ms;   /* Produce TimeoutMs */
    int max_retries;          /* without a delivery timeout, a batch is
                                 sent at most max_retries+1 times */
    int retry_backoff_ms;
    int delivery_timeout_ms;  /* > 0: a batch failing with a retriable
                                 error is retried, whatever max_retries
                                 says, and a batch waits for a leader,
                                 until this long after its first record
                                 (KIP-91); 0: max_retries and
                                 leader_wait_ms decide */
    int64_t max_queued;       /* cap on unsent records (<= 0 means 1) */
    int64_t min_queued;       /* unsent records per leader that trigger a
                                 send (>= 1) */
    int linger_ms;
    size_t max_request_size;  /* cap on a request's batches; one record
                                 larger than this fails as TOO_LARGE */
    int keep_cookies;
    int connect_timeout_ms;
    int request_timeout_ms;   /* no response within this: disconnect */
    int leader_wait_ms;       /* without a delivery timeout, a sealed
                                 batch whose partition has no leader fails
                                 after this long */
    int max_in_flight;        /* requests per broker connection (>= 1) */
    int idempotent;           /* use a producer id and sequences (ignored
                                 with acks=0); until the glue hands one
                                 over with pkc_sl_set_producer_id nothing
                                 is sent (pkc_sl_producer_id_failed);
                                 pid -1 there gives idempotence up: one
                                 batch per partition in flight */
    const char *client_id;    /* copied; NULL for "pykafka_c" */
    const char *source_host;  /* bind before connecting (copied); NULL or
                                 "": any */
    int source_port;
    pkc_security *security;   /* TLS and SASL (the engine takes a
                                 reference); NULL: plain TCP */
    const char *software_version; /* ApiVersions' ClientSoftwareVersion
                                     (copied); NULL: "0" */
    const char *transactional_id; /* copied; NULL: not transactional.
                                     A transactional engine (needs
                                     idempotent) puts it in every Produce
                                     request and sets the batches'
                                     transactional bit; it never bumps an
                                     epoch or asks for a producer id
                                     itself (see "Transactions" below) */
} pkc_sl_config;

/* Events for the glue (pkc_sl_wait_event). */
#define PKC_SL_EV_DONE 0x01     /* sl->done is not empty */
#define PKC_SL_EV_METADATA 0x02 /* the leaders need refreshing */
#define PKC_SL_EV_STOPPED 0x04  /* the sender has exited */
#define PKC_SL_EV_PRODUCER_ID 0x08 /* a (new) producer id is needed */

/* Result of pkc_sl_append. */
#define PKC_SL_APPEND_OK 0
#define PKC_SL_APPEND_FULL 1     /* queue full: nothing was appended */
#define PKC_SL_APPEND_STOPPED 2  /* the engine is not accepting records */
#define PKC_SL_APPEND_NOPART 3   /* unknown partition id */

/* Counters (pkc_sl_stats). */
typedef struct {
    int64_t appended;         /* records accepted */
    int64_t completed;        /* records finished (any result) */
    int64_t failed;           /* records finished with an error */
    int64_t requests;         /* Produce requests written */
    int64_t batches_sent;     /* batches put into requests */
    int64_t retries;          /* batch attempts retried */
    int64_t splits;           /* batches split after TOO_LARGE answers */
    int64_t bytes_sent;       /* batch bytes put into requests */
    int64_t finished_ahead;   /* batches sealed and compressed while they
                                 waited for their partition's turn */
    int64_t producer_id;      /* in use, -1 when not idempotent */
    int64_t producer_epoch;   /* its newest epoch, -1 without an id */
    int64_t epoch_bumps;      /* times the engine bumped the epoch of its
                                 producer id (KIP-360) */
    int64_t sequence_resets;  /* times a partition's sequences restarted
                                 at 0 after its leader refused them */
    int64_t producer_id_requests; /* times PKC_SL_EV_PRODUCER_ID was raised */
    int64_t duplicates;       /* batches answered DUPLICATE_SEQUENCE_NUMBER */
    int64_t max_partition_in_flight; /* most batches of one partition in
                                        flight at once, so far */
    int64_t busy_us;          /* microseconds during which a broker had at
                                 least one of our requests, summed over
                                 the brokers */
    int64_t backlog_us;       /* ... at least two: the broker had our next
                                 request waiting when it finished one */
    int64_t connects;         /* connections made */
    int64_t authentications;  /* SASL exchanges completed, re-auths too */
    int64_t metadata_requests;/* times PKC_SL_EV_METADATA was raised */
    int64_t pending;          /* appended - completed */
    int64_t unsent;           /* records in open or ready batches */
} pkc_sl_stats;

typedef struct pkc_sl pkc_sl;

/*
 * Make an engine (not started).  Returns PKC_OK, PKC_ERR_NOMEM or
 * PKC_ERR_INVALID (bad config; `errbuf` says why).  On success *out must
 * be released with pkc_sl_free().
 */
int pkc_sl_new(pkc_sl **out, const pkc_sl_config *cfg, char *errbuf,
               size_t errlen);

/*
 * Stop (if running), fail what is left, and free everything.  Batches on
 * the done list are freed too: the glue must have taken them (their
 * cookies would be lost).
 */
void pkc_sl_free(pkc_sl *sl);

/*
 * Replace the broker table: n entries of (node_id, host, port).  Brokers
 * whose address changed are reconnected; brokers that disappear are
 * closed and their in-flight requests retried.  Thread-safe.
 */
typedef struct {
    int32_t node_id;
    const char *host;
    int port;
} pkc_sl_broker_addr;
int pkc_sl_set_brokers(pkc_sl *sl, const pkc_sl_broker_addr *brokers,
                       size_t n);

/*
 * Set the leaders of the topic's partitions: n pairs (partition id,
 * leader node id, -1 for none).  Partitions not listed keep their leader;
 * new ids are added.  Batches of a partition whose leader changed go to
 * the new leader on their next attempt.  Thread-safe.
 */
int pkc_sl_set_leaders(pkc_sl *sl, const int32_t *partitions,
                       const int32_t *leaders, size_t n);

/*
 * Give the engine the producer id and epoch that InitProducerId returned
 * (idempotent engines only), or pid -1 to give up idempotence for good
 * (one batch per partition in flight from then on).  The first id, and
 * pid -1, apply once no batch is in flight; a later id (asked for with
 * PKC_SL_EV_PRODUCER_ID) applies at once to the partitions whose
 * sequences restart, while the others keep their numbers.  Thread-safe.
 */
int pkc_sl_set_producer_id(pkc_sl *sl, int64_t producer_id,
                           int16_t producer_epoch);

/*
 * Tell the engine why the glue's InitProducerId attempt failed (it tries
 * again): `error_code` the Kafka error the brokers answered, or 0 when
 * none could be reached; `message` is copied.  Until its first producer id
 * an idempotent engine sends nothing; its batches fail with this reason
 * at their delivery timeout, or without one once max_retries + 1
 * attempts failed.  PKC_ERR_INVALID unless idempotent.
 * Thread-safe.
 */
int pkc_sl_producer_id_failed(pkc_sl *sl, int error_code,
                              const char *message);

/* Start the sender thread.  PKC_OK, or PKC_ERR_NOMEM/PKC_ERR_IO. */
int pkc_sl_start(pkc_sl *sl);

/*
 * Append one record to its partition's open batch.  `timestamp` is in ms
 * since the epoch; key/value len -1 means null.  The cookie is copied
 * (ignored without keep_cookies; NULL keeps an empty one).  Returns
 * PKC_SL_APPEND_*; on FULL the caller may wait with pkc_sl_wait_space()
 * and try again.  A record that can never fit (larger than
 * max_request_size) is accepted and goes straight to the done list with
 * PKC_SL_TOO_LARGE.  Other failures
 * (PKC_ERR_NOMEM, PKC_ERR_INVALID for bad headers) are returned as
 * negative pkc_status values with nothing appended.
 */
int pkc_sl_append(pkc_sl *sl, int32_t partition, int64_t timestamp,
                  const uint8_t *key, int32_t key_len,
                  const uint8_t *value, int32_t value_len,
                  const pkc_header *headers, int32_t n_headers,
                  const pkc_sl_cookie *cookie);

/*
 * Block until the unsent count is below max_queued, the engine stops
 * accepting, or `deadline` (pkc_now_ms clock) passes.  Returns 1 when
 * there is room, 0 otherwise.  Call without the GIL.
 */
int pkc_sl_wait_space(pkc_sl *sl, int64_t deadline);

/*
 * Seal every open batch and send what is queued at once, then wait until
 * nothing is pending or `deadline` passes.  Returns the number of records
 * still pending.  Call without the GIL.
 */
int64_t pkc_sl_flush(pkc_sl *sl, int64_t deadline);

/*
 * Stop accepting records, flush until `deadline`, then stop the sender,
 * fail every record still pending with PKC_SL_STOPPED (they go to the
 * done list) and close the connections.  Returns the number of records
 * failed that way.  Safe to call twice and on an engine never started.
 * Call without the GIL.
 */
int64_t pkc_sl_stop(pkc_sl *sl, int64_t deadline);

/* Nonzero while the engine accepts records (started, not stopping). */
int pkc_sl_running(pkc_sl *sl);

/*
 * Wait until an event is pending or `deadline` passes; returns the
 * PKC_SL_EV_* bits and clears EV_METADATA.  Call without the GIL.
 */
int pkc_sl_wait_event(pkc_sl *sl, int64_t deadline);

/* Take the whole done list (oldest first), or NULL.  The caller owns the
 * batches and gives each back with pkc_sl_batch_release(). */
pkc_sl_batch *pkc_sl_take_done(pkc_sl *sl);

/* Give a finished batch back (its buffers are reused). */
void pkc_sl_batch_release(pkc_sl *sl, pkc_sl_batch *bt);

/* Counters, read under the lock. */
void pkc_sl_stats_get(pkc_sl *sl, pkc_sl_stats *out);

/* The Produce version in use with broker `node_id`, or -1 if not
 * connected yet. */
int pkc_sl_produce_version(pkc_sl *sl, int32_t node_id);
