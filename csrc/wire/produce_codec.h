/*
 * produce_codec.h - Produce requests and responses over the protocol
 * tables (Python-free).
 *
 * The send engine's wire format, and nothing else: a Produce request for
 * one topic from (partition, record batch) pairs, and the per-partition
 * results of a Produce response.  The layouts come from proto_gen.h (the
 * walker in proto.c encodes and decodes every version); this file only
 * says which value goes in which field.  It knows no engine, batch or
 * connection: its inputs and outputs are the structs below.
 *
 * Errors: functions return 0 (PKC_OK) or a negative status (buf.h's
 * pkc_status, or proto.h's PKC_PROTO_BADTYPE), with the failing field in
 * a pkc_proto_error.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "proto.h"

/*
 * The field rows the codec reads and writes, looked up once
 * (pkc_produce_fields_init) and then shared read-only by any thread.
 */
typedef struct {
    /* ProduceRequest */
    const pkc_proto_field *req_transactional_id, *req_acks, *req_timeout_ms,
        *req_topic_data, *req_name, *req_partition_data, *req_index,
        *req_records;
    /* ProduceResponse */
    const pkc_proto_field *resp_responses, *resp_name,
        *resp_partition_responses, *resp_index, *resp_error_code,
        *resp_base_offset, *resp_log_append_time_ms, *resp_error_message;
} pkc_produce_fields;

/*
 * Look the field rows up.  Returns PKC_OK, or PKC_ERR_INVALID with
 * `errbuf` naming the field the protocol table lacks.
 */
int pkc_produce_fields_init(pkc_produce_fields *fields, char *errbuf,
                            size_t errlen);

/* Is Produce `version` flexible (its request header is v2)? */
int pkc_produce_is_flexible(int version);

/* ---------------------------------------------------------- the request */

/* One partition's data in a request (Kafka's PartitionProduceData). */
typedef struct {
    int32_t index;          /* PartitionIndex */
    const uint8_t *records; /* Records: the batches' wire form (borrowed) */
    size_t records_len;     /* at most INT32_MAX */
} pkc_produce_partition;

/* A Produce request for one topic. */
typedef struct {
    const char *transactional_id; /* TransactionalId (borrowed), NULL:
                                     null */
    int16_t acks;                /* Acks */
    int32_t timeout_ms;          /* TimeoutMs */
    const char *topic;           /* Name (borrowed) */
    size_t topic_len;
    const pkc_produce_partition *partitions; /* PartitionData (borrowed) */
    int32_t n_partitions;
} pkc_produce_request;

/*
 * Append the body of Produce `version` for `req` to `w` (the request
 * header is the caller's).  Returns 0 or a negative status with `err`
 * filled; `w` then holds a partial body.
 */
int pkc_produce_encode(pkc_writer *w, const pkc_produce_fields *fields,
                       int version, const pkc_produce_request *req,
                       pkc_proto_error *err);

/* --------------------------------------------------------- the response */

/* One partition's answer (Kafka's PartitionProduceResponse). */
typedef struct {
    int32_t index;           /* PartitionIndex, -1 if the answer lacks it */
    int16_t error_code;      /* ErrorCode */
    int64_t base_offset;     /* BaseOffset, -1 unknown */
    int64_t log_append_time; /* LogAppendTimeMs, -1 unless LogAppendTime */
    char message[160];       /* ErrorMessage: printable ASCII ('?' for
                                anything else), cut short; "" if none */
} pkc_produce_partition_result;

/* The answers for one topic, in the order the broker sent them. */
typedef struct {
    pkc_produce_partition_result *results; /* n entries (owned) */
    size_t n;
    size_t cap;
} pkc_produce_response;

/*
 * Decode the body of a Produce `version` response and keep the results of
 * the partitions of `topic` (other topics are skipped).  Returns 0, with
 * `out` to be released by pkc_produce_response_free; PKC_ERR_NOMEM when
 * memory ran out; or another negative status for a malformed body, with
 * `err` naming the field and byte offset.  On failure `out` is empty.
 */
int pkc_produce_decode(const pkc_produce_fields *fields, int version,
                       const uint8_t *body, size_t len, const char *topic,
                       size_t topic_len, pkc_produce_response *out,
                       pkc_proto_error *err);

/* The first result for partition `index`, or NULL. */
const pkc_produce_partition_result *
pkc_produce_response_find(const pkc_produce_response *resp, int32_t index);

/* Free the results (the struct itself is the caller's). */
void pkc_produce_response_free(pkc_produce_response *resp);
