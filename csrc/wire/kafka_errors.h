/*
 * kafka_errors.h - Kafka's error codes by name, and what a client does
 * about each one.
 *
 * The table is kafka_errors.def (see there for the sources).  C code
 * names codes as PKC_KERR_<NAME> (Kafka's NAME: PKC_KERR_NONE = 0,
 * PKC_KERR_NOT_LEADER_OR_FOLLOWER = 6, ...) and asks the two questions
 * every engine asks through the same two predicates, so the fetch and
 * send loops agree on them.  The glue hands the rows to Python as
 * _core.kafka_errors(); pykafka_c.exceptions builds its classes from them.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

typedef enum {
#define PKC_KAFKA_ERROR(name, code, retriable, refresh) \
    PKC_KERR_##name = (code),
#include "kafka_errors.def"
#undef PKC_KAFKA_ERROR
} pkc_kafka_error;

/* One row of the table. */
typedef struct {
    int16_t code;
    const char *name;         /* Kafka's name, "NOT_LEADER_OR_FOLLOWER" */
    uint8_t retriable;        /* a RetriableException in Kafka's client */
    uint8_t refresh_metadata; /* an InvalidMetadataException */
} pkc_kafka_error_info;

/* Kafka's name of `code` (static storage), or NULL for a code Kafka did
 * not define when this table was written. */
const char *pkc_kafka_error_name(int code);

/* 1 if retrying the request may succeed (Kafka: RetriableException), else
 * 0; 0 for unknown codes. */
int pkc_kafka_error_retriable(int code);

/* 1 if the error says the client's metadata is stale (a partition's
 * leader moved, a topic is unknown to this broker, ...): refresh it
 * before retrying (Kafka: InvalidMetadataException), else 0; 0 for
 * unknown codes.  Every such code is also retriable. */
int pkc_kafka_error_refresh_metadata(int code);

/* The rows in code order, for the glue: pkc_kafka_error_at(i) for i below
 * pkc_kafka_error_count(). */
size_t pkc_kafka_error_count(void);
const pkc_kafka_error_info *pkc_kafka_error_at(size_t i);
