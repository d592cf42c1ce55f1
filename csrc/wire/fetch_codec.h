/*
 * fetch_codec.h - the Fetch request and its answer for one topic
 * (Python-free, no engine types): a request encoded from the partitions
 * it names, an answer parsed into one result per requested partition,
 * and each partition's records decoded piece by piece.
 *
 * Versions PKC_VER_FETCH_MIN (RecordBatch v2, isolation level) to
 * PKC_VER_FETCH_MAX (the last with topic names); see api_support.def.
 * Both directions walk the proto tables (proto.h), so fields, versions
 * and flexible encodings come from Kafka's JSON.
 *
 * Views: a parsed answer's record bytes point into the body given to
 * pkc_fetch_response_parse; decoded records point into that body or into
 * the arena given to their stream (decompressed data).  Both must outlive
 * the records.  Nothing here locks or keeps global state but the field
 * table, looked up once (thread-safe).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "records.h"

/* Records one partition's stream delivers per answer at most in
 * pkc_fetch_parse (the engine asks for at least as many); the rest is
 * fetched again from the next position. */
#define PKC_FETCH_MAX_RECORDS 65536

/* 1 when the protocol tables hold every Fetch field this codec uses
 * (else every function below fails with PKC_ERR_UNSUPPORTED). */
int pkc_fetch_codec_ready(void);

/* ------------------------------------------------------------ request */

/* One partition named in a Fetch request. */
typedef struct {
    int32_t partition;
    int32_t leader_epoch; /* CurrentLeaderEpoch (v9+), -1: unknown */
    int64_t fetch_offset;
} pkc_fetch_partition;

/* A Fetch request for one topic; its answer is parsed against it. */
typedef struct {
    const char *topic;
    size_t topic_len;
    int32_t max_wait_ms;
    int32_t min_bytes;
    int32_t max_bytes;           /* the whole answer */
    int32_t partition_max_bytes; /* each partition */
    int8_t isolation_level;      /* 0 read_uncommitted, 1 read_committed */
    const pkc_fetch_partition *parts;
    size_t n_parts;
} pkc_fetch_request;

/* 1 when Fetch `version` uses the flexible request header. */
int pkc_fetch_is_flexible(int version);

/* Write `req` as the body of a Fetch of `version` (the request header is
 * in `w` already).  PKC_OK, PKC_ERR_UNSUPPORTED, PKC_ERR_INVALID (a value
 * the version cannot carry) or the writer's status. */
int pkc_fetch_request_encode(pkc_writer *w, int version,
                             const pkc_fetch_request *req);

/* ------------------------------------------------------------ response */

/* One requested partition's answer; its records still encoded. */
typedef struct {
    int32_t partition;
    int16_t error_code;         /* the partition's ErrorCode */
    int64_t high_watermark;     /* -1 when absent */
    int64_t last_stable_offset; /* -1 when absent */
    int64_t log_start_offset;   /* -1 when absent */
    pkc_slice records;          /* len -1: null */
    size_t req_index;           /* its index in the request's parts */
    size_t aborted_first;       /* its aborted transactions: */
    size_t n_aborted;           /* response.aborted[first .. first+n) */
} pkc_fetch_answer;

/* A parsed answer: the answers to the request's partitions of its topic,
 * each at most once, in the order the broker sent them. */
typedef struct {
    int16_t error_code;         /* the answer's ErrorCode (v7+), or 0 */
    pkc_fetch_answer *parts;
    size_t n_parts;
    int read_committed;         /* the request's isolation level was 1 */
    pkc_aborted_txn *aborted;   /* read_committed only */
    size_t n_aborted, aborted_cap;
} pkc_fetch_response;

/* Parse a Fetch answer body of `version` to `req`.  PKC_OK, or a status
 * with a sentence in errbuf (the API, version, field and byte offset).
 * Call pkc_fetch_response_free either way. */
int pkc_fetch_response_parse(pkc_fetch_response *resp,
                             const pkc_fetch_request *req, int version,
                             const uint8_t *body, size_t len, char *errbuf,
                             size_t errlen);

void pkc_fetch_response_free(pkc_fetch_response *resp);

/* --------------------------------------------------------------- records */

/* How a partition's records are decoded. */
typedef struct {
    int check_crcs;          /* 1: verify record batch CRCs */
    size_t max_decompressed; /* per compressed batch; 0: default */
    pkc_arena *arena;        /* decompressed data goes here (borrowed) */
    size_t max_records;      /* stop after this many */
} pkc_fetch_records_opts;

/* One partition's records, decoded in pieces.  Read `done` and `status`;
 * the rest is the codec's. */
typedef struct {
    int done;             /* nothing more: exhausted, capped or failed */
    int status;           /* PKC_OK or why it stopped early */
    pkc_records_iter it;
    int inited, capped;
    int32_t partition;
    int64_t fetch_offset;
    size_t max_records;
    size_t n;             /* records delivered so far */
    int64_t last_offset;  /* offset of the last record delivered, -1 */
    char *errbuf;
    size_t errlen;
} pkc_fetch_records;

/* Start decoding resp->parts[i], asked for from `fetch_offset`.  A
 * failure (out of memory) shows as done with status and errbuf set. */
void pkc_fetch_records_init(pkc_fetch_records *s,
                            const pkc_fetch_response *resp, size_t i,
                            int64_t fetch_offset,
                            const pkc_fetch_records_opts *opts,
                            char *errbuf, size_t errlen);

/* Up to `max` more records into out[]; returns how many.  `done` is set
 * once the records are exhausted, capped or failed (status, errbuf). */
size_t pkc_fetch_records_next(pkc_fetch_records *s, pkc_record *out,
                              size_t max);

/* Stop early with `status` (the caller could not take more records). */
void pkc_fetch_records_abort(pkc_fetch_records *s, int status);

/* After the last piece: the position to fetch next (after the last
 * record delivered, or past skipped batches) and whether the answer held
 * only part of a batch; frees the stream. */
void pkc_fetch_records_finish(pkc_fetch_records *s, int64_t *next_offset,
                              int *truncated_empty);

/* ------------------------------------------------------ all at once */

/* One answered partition, its records decoded, for pkc_fetch_parse. */
typedef struct {
    int32_t partition;
    int16_t error_code;    /* the answer's ErrorCode, else the partition's */
    int64_t high_watermark;
    int64_t last_stable_offset;
    int64_t log_start_offset;
    int64_t next_offset;   /* next fetch position after these records */
    int truncated_empty;   /* no whole batch: only a partial one */
    int rec_status;        /* PKC_OK or the records decode status */
    const pkc_record *recs;
    size_t n_recs;
} pkc_fetch_part_result;

/* Returns 0 to go on; anything else stops pkc_fetch_parse with it. */
typedef int (*pkc_fetch_part_cb)(void *ctx, const pkc_fetch_part_result *res);

/*
 * Parse an answer to `req` and decode every answered partition's records
 * (at most PKC_FETCH_MAX_RECORDS each; views valid during the callback),
 * calling `cb` for each partition in turn: the engine's decoding in one
 * call, for tests and fuzzing.  Returns PKC_OK, the status of the answer
 * as a whole (errbuf gets a sentence), or the callback's non-zero value.
 */
int pkc_fetch_parse(const pkc_fetch_request *req, int version,
                    const uint8_t *body, size_t len, int check_crcs,
                    pkc_fetch_part_cb cb, void *ctx, char *errbuf,
                    size_t errlen);
