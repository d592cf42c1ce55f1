/*
 * proto.h - the table-driven Kafka protocol codec (Python-free).
 *
 * The message layouts are data: csrc/gen/gen_proto.py turns Kafka's own
 * message JSON specs (csrc/gen/message/) into the tables of proto_gen.h,
 * and the walker in proto.c encodes and decodes any message of any version
 * by walking those tables.  Nothing here knows a particular API.
 *
 * Tables
 *   pkc_proto_api     one row per API: key, name, valid version range,
 *                     first flexible version, request/response struct.
 *   pkc_proto_struct  one row per struct (a message body, or a nested
 *                     struct): Kafka name and a range of field rows.
 *   pkc_proto_field   one row per field: snake_case name, type, version
 *                     range, nullable range, tagged range and tag, default,
 *                     nested struct.
 * Version ranges are inclusive [lo, hi]; "N+" has hi = PKC_PV_MAX and
 * "none" is the empty range lo = 0, hi = -1.
 *
 * Decoding reports every value to a pkc_proto_visitor (callbacks may be
 * NULL to ignore a kind of value); encoding pulls values from a
 * pkc_proto_source.  Both vtables get the field row, so a caller can tell
 * fields apart by pointer (look rows up once with pkc_proto_struct_field).
 *
 * Errors: functions return 0 or a negative status - a pkc_status from
 * buf.h, or PKC_PROTO_ABORT / PKC_PROTO_BADTYPE passed up from a callback -
 * and fill a pkc_proto_error with the field path ("topics[3].partitions[0]
 * .leader_id") and, for decoding, the byte offset.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "proto_api.h" /* PKC_API_<NAME>: the api_key arguments below */

#define PKC_PV_MAX 127 /* the "hi" of an open-ended version range */

/* A callback failed and has already recorded its own error (the Python
 * glue: an exception is set).  The walker stops and returns this. */
#define PKC_PROTO_ABORT (-100)
/* A source callback found a value of the wrong type for the field; the
 * walker records the field path and returns this. */
#define PKC_PROTO_BADTYPE (-101)

/* Maximum nesting depth of structs and arrays in a message (checked by the
 * generator). */
#define PKC_PROTO_MAX_DEPTH 16

typedef enum {
    PKC_PT_BOOL = 0,
    PKC_PT_INT8,
    PKC_PT_INT16,
    PKC_PT_UINT16,
    PKC_PT_INT32,
    PKC_PT_UINT32,
    PKC_PT_INT64,
    PKC_PT_FLOAT64,
    PKC_PT_UUID,
    PKC_PT_STRING,
    PKC_PT_BYTES,
    PKC_PT_RECORDS,
    PKC_PT_STRUCT
} pkc_proto_type;

/* pkc_proto_field.flags */
#define PKC_PF_ARRAY 0x01        /* an array of `type` */
#define PKC_PF_IGNORABLE 0x02    /* may be dropped when the version lacks it */
#define PKC_PF_DEFAULT_NULL 0x04 /* the default is null */

typedef struct {
    const char *name;  /* snake_case, e.g. "leader_id" */
    uint8_t type;      /* pkc_proto_type of the value, or of the elements */
    uint8_t flags;     /* PKC_PF_* */
    int8_t ver_lo, ver_hi;   /* versions that have the field */
    int8_t null_lo, null_hi; /* versions in which it may be null */
    int8_t tag_lo, tag_hi;   /* versions in which it is a tagged field */
    int8_t flex_lo, flex_hi; /* field-level flexibleVersions (else all) */
    int16_t tag;             /* tag number (if tagged) */
    int16_t sub;             /* struct index for PKC_PT_STRUCT, else -1 */
    int64_t def_int;         /* default of integer and bool fields */
    double def_float;        /* default of float64 fields */
    const char *def_str;     /* default of string fields (NULL: "" or null
                                per PKC_PF_DEFAULT_NULL) */
} pkc_proto_field;

typedef struct {
    const char *name;     /* Kafka name, e.g. "MetadataResponseTopic" */
    uint16_t first;       /* index of the first field row */
    uint16_t count;       /* number of field rows */
} pkc_proto_struct;

typedef struct {
    int16_t key;            /* ApiKey */
    const char *name;       /* e.g. "Metadata" */
    int16_t min_version;    /* validVersions */
    int16_t max_version;
    int16_t flexible_from;  /* first flexible version, -1 if none */
    uint8_t latest_unstable; /* latestVersionUnstable in the spec */
    int16_t request;        /* struct index of the request body */
    int16_t response;       /* struct index of the response body */
} pkc_proto_api;

typedef enum {
    PKC_PROTO_REQUEST = 0,
    PKC_PROTO_RESPONSE = 1
} pkc_proto_kind;

/* An error from the walker.  `path` names the field ("" at top level). */
typedef struct {
    int status;        /* 0, a pkc_status, PKC_PROTO_ABORT/_BADTYPE */
    size_t offset;     /* decode: byte offset of the failing field */
    const char *what;  /* encode: a short static reason, or NULL */
    char path[256];
} pkc_proto_error;

static inline int
pkc_proto_in(int v, int lo, int hi)
{
    return v >= lo && v <= hi;
}

/* ------------------------------------------------------------ the tables */

size_t pkc_proto_api_count(void);
/* The i-th API row (0 <= i < pkc_proto_api_count()), in ApiKey order. */
const pkc_proto_api *pkc_proto_api_at(size_t i);
/* The row of ApiKey `key`, or NULL if pykafka_c has no spec for it. */
const pkc_proto_api *pkc_proto_api_find(int key);
size_t pkc_proto_struct_count(void);
const pkc_proto_struct *pkc_proto_struct_at(size_t i);
size_t pkc_proto_field_count(void);
const pkc_proto_field *pkc_proto_field_at(size_t i);
/* Index of a field row in the global field table (for per-field caches). */
size_t pkc_proto_field_index(const pkc_proto_field *f);
/* The field of struct `s` named `name` (snake_case), or NULL. */
const pkc_proto_field *pkc_proto_struct_field(const pkc_proto_struct *s,
                                              const char *name);
/* Request or response body struct of an API. */
const pkc_proto_struct *pkc_proto_message(const pkc_proto_api *api,
                                          pkc_proto_kind kind);

/* Is version `v` of `api` flexible (compact strings, tagged fields)? */
int pkc_proto_is_flexible(const pkc_proto_api *api, int v);
/* Header versions: request header 2 for flexible versions, else 1;
 * response header 1 for flexible versions, else 0 - except ApiVersions,
 * whose response header is always v0.  -1 for an unknown API. */
int pkc_proto_request_header_version(int api_key, int v);
int pkc_proto_response_header_version(int api_key, int v);

/* The header structs (RequestHeader v1-2, ResponseHeader v0-1).  Header
 * version h is flexible when h >= the value below. */
const pkc_proto_struct *pkc_proto_header(pkc_proto_kind kind);
int pkc_proto_header_flexible_from(pkc_proto_kind kind);

/* ------------------------------------------------------------- decoding */

typedef struct {
    void *ctx;
    /* A struct starts / ends.  `f` is the field holding it (also for each
     * element of an array of structs), NULL for the message itself. */
    int (*begin_struct)(void *ctx, const pkc_proto_field *f,
                        const pkc_proto_struct *s);
    int (*end_struct)(void *ctx, const pkc_proto_field *f,
                      const pkc_proto_struct *s);
    /* An array of `count` elements starts / ends (count is already checked
     * against the bytes left).  Elements are reported with the same `f`. */
    int (*begin_array)(void *ctx, const pkc_proto_field *f, int32_t count);
    int (*end_array)(void *ctx, const pkc_proto_field *f);
    /* A null string, bytes, records, array or struct. */
    int (*on_null)(void *ctx, const pkc_proto_field *f);
    /* int8/int16/uint16/int32/uint32/int64 */
    int (*on_int)(void *ctx, const pkc_proto_field *f, int64_t v);
    int (*on_bool)(void *ctx, const pkc_proto_field *f, int v);
    int (*on_float)(void *ctx, const pkc_proto_field *f, double v);
    /* string: UTF-8 as sent (not validated), a view into the input */
    int (*on_string)(void *ctx, const pkc_proto_field *f, pkc_slice v);
    /* bytes and records: a view into the input */
    int (*on_bytes)(void *ctx, const pkc_proto_field *f, pkc_slice v);
    int (*on_uuid)(void *ctx, const pkc_proto_field *f, const uint8_t *v16);
} pkc_proto_visitor;
/* Callbacks return 0 to go on, PKC_PROTO_ABORT to stop (their own error is
 * recorded elsewhere), or a negative pkc_status (e.g. PKC_ERR_INVALID for
 * a value they reject), which the walker records with the field path as a
 * decode error. */

/*
 * Decode the body of message `kind` of API `api_key` at `version` from the
 * reader's position to its end (trailing bytes are an error).  Known tagged
 * fields that are absent are reported with their defaults; unknown tags are
 * skipped.  Returns 0 or a negative status; on failure `err` is filled and
 * the reader's sticky status, err_offset and err_field (= err->path) are
 * set, so pkc_raise_decode() can report it.  `err` must outlive the use of
 * r->err_field.
 */
int pkc_proto_decode(pkc_reader *r, pkc_proto_kind kind, int api_key,
                     int version, const pkc_proto_visitor *vis,
                     pkc_proto_error *err);

/*
 * pkc_proto_decode() without the trailing-bytes check: decodes the message
 * from the reader's position and leaves the reader after it, whatever
 * follows (pykafka's response classes ignored trailing bytes).
 */
int pkc_proto_decode_prefix(pkc_reader *r, pkc_proto_kind kind,
                            int api_key, int version,
                            const pkc_proto_visitor *vis,
                            pkc_proto_error *err);
/* Decode one struct `s` at `version` (flexible or not) from the reader's
 * position, leaving the reader after it (used for headers). */
int pkc_proto_decode_struct(pkc_reader *r, const pkc_proto_struct *s,
                            int version, int flexible,
                            const pkc_proto_visitor *vis,
                            pkc_proto_error *err);

/* ------------------------------------------------------------- encoding */

typedef struct {
    void *ctx;
    /* Does the current struct carry a value for `f`?  1 yes, 0 no (the
     * field takes its default), or a negative status. */
    int (*has)(void *ctx, const pkc_proto_field *f);
    /* The value of `f` in the current struct, or of the current array
     * element when inside an array.  Integers and bools as int64 (the
     * walker range-checks them against the type). */
    int (*get_int)(void *ctx, const pkc_proto_field *f, int64_t *out);
    int (*get_float)(void *ctx, const pkc_proto_field *f, double *out);
    /* string (UTF-8), bytes, records, uuid (exactly 16 bytes); len -1 is
     * null.  The view must stay valid until the next source call. */
    int (*get_bytes)(void *ctx, const pkc_proto_field *f, pkc_slice *out);
    /* Open the array `f`: its length, or -1 for null. */
    int (*enter_array)(void *ctx, const pkc_proto_field *f, int32_t *count);
    /* Make element i of the open array current. */
    int (*enter_element)(void *ctx, const pkc_proto_field *f, int32_t i);
    /* Close the array `f`; may be NULL (nothing to do). */
    void (*leave_array)(void *ctx, const pkc_proto_field *f);
    /* Open the struct `f` (the current array element for arrays of
     * structs; f is NULL for the message itself).  *is_null = 1 for a null
     * struct (then no leave_struct follows).  May be NULL: every struct is
     * then present.  leave_struct may be NULL too. */
    int (*enter_struct)(void *ctx, const pkc_proto_field *f,
                        const pkc_proto_struct *s, int *is_null);
    void (*leave_struct)(void *ctx, const pkc_proto_field *f,
                         const pkc_proto_struct *s);
} pkc_proto_source;
/* Source callbacks return 0, PKC_PROTO_ABORT or PKC_PROTO_BADTYPE. */

/*
 * Encode the body of message `kind` of `api_key` at `version`, appending
 * to `w`.  Fields the source lacks take their spec default.  A field the
 * version lacks is dropped if it is ignorable or equal to its default,
 * else PKC_ERR_UNSUPPORTED.  Tagged fields are written only when the
 * source has a value that differs from the default.  Values out of range
 * for the field type, nulls where the version is not nullable, classic
 * strings over 32767 bytes and uuids of another size give PKC_ERR_INVALID
 * (err->what says which).  Returns 0 or a negative status with `err`
 * filled; `w` then holds a partial message.
 */
int pkc_proto_encode(pkc_writer *w, pkc_proto_kind kind, int api_key,
                     int version, const pkc_proto_source *src,
                     pkc_proto_error *err);
int pkc_proto_encode_struct(pkc_writer *w, const pkc_proto_struct *s,
                            int version, int flexible,
                            const pkc_proto_source *src,
                            pkc_proto_error *err);

/* ------------------------------------------------------------- headers */

/*
 * Append a request header (v1 or v2 as the API version requires) for
 * `api_key`/`api_version` with `correlation_id` and `client_id` (len -1:
 * null).  Returns 0 or a negative status.
 */
int pkc_proto_write_request_header(pkc_writer *w, int api_key,
                                   int api_version, int32_t correlation_id,
                                   const char *client_id,
                                   int32_t client_id_len);
/*
 * Read the response header of `api_key`/`api_version` from the reader (v0:
 * correlation id; v1: and tagged fields) into *correlation_id.  Returns 0
 * or a negative status (reader status set).
 */
int pkc_proto_read_response_header(pkc_reader *r, int api_key,
                                   int api_version, int32_t *correlation_id);
