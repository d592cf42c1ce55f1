/*
 * records.h - Kafka record decoding (RecordBatch v2 and the legacy message
 * sets of magic 0 and 1) and RecordBatch v2 encoding.
 *
 * Python-free and GIL-free: nothing here touches Python, so the fetch loop
 * and the producer may call it with the GIL released.  Every input byte is
 * read through a pkc_reader (buf.h).  Layouts: kafka-broker.md section 5.
 *
 * ------------------------------------------------------------ decoding
 *
 * A pkc_records_iter walks the Records field of one partition of a Fetch
 * response: entries (RecordBatch v2 batches or legacy messages) back to
 * back.  Each call of pkc_records_next() yields one deliverable record:
 *
 *     pkc_records_iter it;
 *     pkc_record rec;
 *     int rc;
 *     if (pkc_records_iter_init(&it, data, len, &opts) != PKC_OK) ...
 *     while ((rc = pkc_records_next(&it, &rec)) == 1)
 *         use(&rec);
 *     if (rc < 0) report(rc, &it.r, it.err_offset);
 *     pkc_records_iter_free(&it);
 *
 * What is delivered:
 *  - A truncated trailing entry (legal at the end of a fetch, which is cut
 *    at a byte limit) ends the iteration without an error; `truncated` is
 *    set so a caller can tell "nothing whole fitted" from "empty".
 *  - Control batches (attribute bit 5) are never delivered.
 *  - Records with offset < opts.fetch_offset are skipped (batches may start
 *    before the requested offset); whole batches below it are skipped
 *    without being decompressed.
 *  - Empty batches (all records removed by compaction) yield nothing but
 *    advance `next_offset` past their last offset.
 *  - read_committed: records of aborted transactions are dropped, given the
 *    AbortedTransactions list of the partition (the Java consumer's
 *    algorithm: a transactional batch of producer P is dropped while P has
 *    an aborted transaction whose firstOffset <= the batch's last offset
 *    and whose ABORT marker has not been seen yet).
 *  - LogAppendTime batches (attribute bit 3): every record's timestamp is
 *    the batch's maxTimestamp.
 *  - Legacy magic 0/1 messages: CRC32 (zlib) verified; codec = attributes
 *    & 0x07; a compressed wrapper's value is decompressed and its inner
 *    messages delivered (one level; nested compression is an error);
 *    magic-1 inner offsets that are relative (last inner offset smaller
 *    than the wrapper's) are rebased to wrapperOffset - lastInner + inner,
 *    which equals pykafka's wrapperOffset - n + 1 + i for contiguous inner
 *    offsets; a magic-1 LogAppendTime wrapper gives its timestamp to every
 *    inner message.  Magic 0 has no timestamp: `timestamp` is -1
 *    (Kafka's NO_TIMESTAMP; pykafka reported 0) and `timestamp_type` is
 *    PKC_TS_NONE.
 *
 * Errors (pkc_records_next returns a negative pkc_status and keeps
 * returning it): PKC_ERR_CRC for a checksum mismatch; PKC_ERR_INVALID for
 * impossible lengths, counts, offsets or a record count that does not match
 * the records; PKC_ERR_VARINT for overlong varints; PKC_ERR_UNSUPPORTED for
 * an unknown magic; the compression statuses (PKC_ERR_CODEC,
 * PKC_ERR_COMPRESSION, PKC_ERR_TOO_LARGE over the decompression cap,
 * PKC_ERR_NOMEM).  `it.r` then holds the failing field's name (err_field)
 * and the byte offset of the failing entry in the input (err_offset), and
 * `it.err_offset` the entry's Kafka base offset.  Records delivered before
 * the error stay valid.
 *
 * Ownership and lifetime of record data: key, value and header views point
 * either into the caller's input buffer (uncompressed entries; valid while
 * the input is) or into decompressed memory:
 *  - with opts.arena set, decompressed data is appended to that arena and
 *    stays valid until the caller calls pkc_arena_free() (the iterator may
 *    be freed first);
 *  - with opts.arena NULL, the iterator keeps one scratch buffer that is
 *    reused for the next compressed entry: such views are valid only until
 *    the next pkc_records_next() call or pkc_records_iter_free().
 * The iterator never modifies the input.
 *
 * ------------------------------------------------------------ encoding
 *
 * A pkc_batch_builder appends records to one RecordBatch v2 and finishes
 * it (see its functions below).  It does no I/O and holds no global state.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* RecordBatch v2 header size, and the baseOffset + batchLength prefix
 * shared by every entry format. */
#define PKC_BATCH_HEADER_SIZE 61
#define PKC_LOG_OVERHEAD 12

/* Batch attribute bits (int16). */
#define PKC_ATTR_CODEC_MASK 0x07
#define PKC_ATTR_LOG_APPEND_TIME 0x08
#define PKC_ATTR_TRANSACTIONAL 0x10
#define PKC_ATTR_CONTROL 0x20

/* Default cap on the decompressed size of one batch (64 MiB). */
#define PKC_DEFAULT_MAX_DECOMPRESSED ((size_t)64 << 20)

/* Timestamp types of a record. */
enum {
    PKC_TS_NONE = -1,      /* magic 0: no timestamp */
    PKC_TS_CREATE = 0,     /* CreateTime (set by the producer) */
    PKC_TS_LOG_APPEND = 1  /* LogAppendTime (set by the broker) */
};

/* Control record types (key: int16 version, int16 type). */
enum { PKC_CONTROL_ABORT = 0, PKC_CONTROL_COMMIT = 1 };

/* ------------------------------------------------------------- arena */

typedef struct pkc_arena_block pkc_arena_block;

/*
 * Owner of decompressed record data that must outlive the iterator (the
 * fetch loop keeps records queued until the application consumes them).
 * `max` caps the total bytes held (0 = no cap beyond the per-batch cap),
 * so a response full of compression bombs cannot exhaust memory.
 */
typedef struct {
    pkc_arena_block *head;
    size_t used;
    size_t max;
} pkc_arena;

void pkc_arena_init(pkc_arena *a, size_t max);
/* Free everything the arena holds; it can be reused afterwards. */
void pkc_arena_free(pkc_arena *a);

/* ----------------------------------------------------------- decoding */

/* One entry of a Fetch response's AbortedTransactions list. */
typedef struct {
    int64_t producer_id;
    int64_t first_offset;
} pkc_aborted_txn;

typedef struct {
    int64_t fetch_offset;   /* records below this offset are skipped */
    int read_committed;     /* 1: drop aborted transactions' records */
    const pkc_aborted_txn *aborted; /* any order; copied by init */
    size_t n_aborted;
    size_t max_decompressed; /* per compressed entry; 0 = the default */
    int skip_crc;           /* 1: do not verify CRCs (default: verify) */
    pkc_arena *arena;       /* NULL: see "Ownership" above; borrowed */
} pkc_records_opts;

/* A decoded record.  All views are borrowed (see "Ownership" above). */
typedef struct {
    int64_t offset;
    int64_t timestamp;      /* ms since the epoch; -1 when none */
    int8_t timestamp_type;  /* PKC_TS_* */
    int8_t magic;           /* 0, 1 or 2: the format it came from */
    int8_t codec;           /* codec of its batch or wrapper (informational) */
    pkc_slice key;          /* len -1: null */
    pkc_slice value;        /* len -1: null */
    int32_t header_count;   /* 0 for legacy messages */
    pkc_slice headers;      /* raw header area (header_count headers) */
} pkc_record;

typedef struct {
    /* Public, read-only for callers. */
    pkc_reader r;           /* over the whole input; error details */
    int64_t err_offset;     /* Kafka base offset of the failing entry */
    int64_t next_offset;    /* one past the last offset of the last whole
                             * entry read (the next fetch position); -1 if
                             * none */
    int truncated;          /* 1: a partial trailing entry was ignored */
    int records_read;       /* records delivered so far */

    /* Private. */
    pkc_records_opts opts;
    int state;              /* ITER_* in records.c */
    int magic, codec, ts_type, control;
    int32_t left;           /* records left in the current batch */
    int32_t last_offset_delta;
    int64_t base_offset, last_offset, base_ts, max_ts;
    int64_t inner_delta;    /* legacy inner offset rebase */
    int64_t wrapper_ts;     /* legacy LogAppendTime wrapper timestamp */
    size_t entry_pos;       /* input byte offset of the current entry */
    pkc_reader rec;         /* the current batch's records / inner set */
    pkc_writer scratch;     /* decompression buffer when opts.arena NULL */
    pkc_aborted_txn *txns;  /* sorted copy of opts.aborted */
    size_t n_txns, txn_next;
    int64_t *pids;          /* open-addressing set of aborted producer ids */
    size_t pid_mask;
} pkc_records_iter;

/*
 * Start iterating over data[0..len) (not copied: it must outlive the
 * iterator and, for uncompressed entries, the records).  `opts` may be NULL
 * (defaults: fetch_offset 0, read_uncommitted, CRC verified).  Returns
 * PKC_OK or PKC_ERR_NOMEM; call pkc_records_iter_free() in both cases.
 */
int pkc_records_iter_init(pkc_records_iter *it, const uint8_t *data,
                          size_t len, const pkc_records_opts *opts);

/* Next record: 1 with *rec filled, 0 at the end, or a negative pkc_status
 * (sticky). */
int pkc_records_next(pkc_records_iter *it, pkc_record *rec);

/* Free what the iterator allocated (not the arena, not the input). */
void pkc_records_iter_free(pkc_records_iter *it);

/* Walks the headers of one record. */
typedef struct {
    pkc_reader r;
    int32_t left;
} pkc_header_iter;

void pkc_record_headers_init(pkc_header_iter *hi, const pkc_record *rec);

/* Next header: 1 with *key (never null) and *value (len -1: null) set, 0 at
 * the end, <0 on a malformed header area (never for records returned by
 * pkc_records_next, which validates headers). */
int pkc_record_headers_next(pkc_header_iter *hi, pkc_slice *key,
                            pkc_slice *value);

/* ------------------------------------------------- legacy messages
 *
 * One magic 0/1 message (pykafka's Message), without the offset and size
 * prefix of a message-set entry:
 *     crc u32 (zlib CRC32 of what follows), magic i8, attributes i8,
 *     [timestamp i64 when magic 1], key bytes (i32 length, -1 null),
 *     value bytes (i32 length, -1 null).
 */
typedef struct {
    int magic;              /* 0 or 1 */
    int attributes;         /* the attributes byte, unsigned */
    int64_t timestamp;      /* -1 for magic 0 */
    pkc_slice key;          /* len -1: null; views into the input */
    pkc_slice value;
} pkc_legacy_message;

/* Encoded size of one legacy message (crc through value) for `magic` 0 or 1
 * and key/value lengths (-1 null). */
size_t pkc_legacy_message_size(int magic, int32_t key_len, int32_t value_len);

/*
 * Append one legacy message (crc through value) to `w` and back-patch its
 * CRC32.  key/value: len -1 for null (ptr may then be NULL).  Returns
 * PKC_OK; PKC_ERR_INVALID for a magic other than 0/1 or a length below -1;
 * the writer's status (PKC_ERR_NOMEM, PKC_ERR_TOO_LARGE) otherwise.
 */
int pkc_legacy_message_write(pkc_writer *w, int magic, int attributes,
                             int64_t timestamp, const uint8_t *key,
                             int32_t key_len, const uint8_t *value,
                             int32_t value_len);

/*
 * Parse the whole of `r` (positioned at the crc; its end is the message's
 * end) as one legacy message into *out (views into r's input).  The CRC32
 * is verified when `verify_crc`.  Returns PKC_OK, or the failing status
 * with `r` naming the field: PKC_ERR_TRUNCATED / PKC_ERR_INVALID for bad
 * lengths or trailing bytes, PKC_ERR_UNSUPPORTED for a magic other than
 * 0/1, PKC_ERR_CRC for a checksum mismatch (r->pos at the crc).
 */
int pkc_legacy_message_parse(pkc_reader *r, pkc_legacy_message *out,
                             int verify_crc);

/* ----------------------------------------------------------- encoding */

/* A header to encode: key.len >= 0, value.len -1 for null. */
typedef struct {
    pkc_slice key;
    pkc_slice value;
} pkc_header;

typedef struct {
    pkc_writer w;           /* header placeholder + uncompressed records */
    pkc_writer cw;          /* the finished batch when compressed */
    int codec;              /* PKC_CODEC_* (compress.h) */
    int level;              /* codec level, -1 = default */
    int32_t count;
    int64_t base_ts, max_ts;
    /* Idempotence / transactions; defaults -1, -1, -1, 0. */
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t base_sequence;
    int transactional;
} pkc_batch_builder;

/*
 * Prepare a builder for batches of at most `max_size` bytes uncompressed
 * (header included; 0 = no limit beyond INT32_MAX).  Returns PKC_OK or
 * PKC_ERR_NOMEM.  Always pair with pkc_batch_builder_free().
 */
int pkc_batch_builder_init(pkc_batch_builder *b, int codec, int level,
                           size_t max_size);
void pkc_batch_builder_free(pkc_batch_builder *b);
/* Start a new batch (keeps buffers, codec and producer fields). */
void pkc_batch_builder_reset(pkc_batch_builder *b);

/* Size of the batch so far, uncompressed, header included. */
static inline size_t
pkc_batch_builder_size(const pkc_batch_builder *b)
{
    return b->w.len;
}

/*
 * Bytes one record takes in a batch (its length varint included) for the
 * given timestamp delta, offset delta, key/value lengths (-1 null) and
 * headers.
 */
size_t pkc_record_size(int64_t ts_delta, int32_t offset_delta,
                       int32_t key_len, int32_t value_len,
                       const pkc_header *headers, int32_t n_headers);

/* Bytes the record would add if appended now (for cutting batches). */
size_t pkc_batch_builder_record_size(const pkc_batch_builder *b,
                                     int64_t timestamp, int32_t key_len,
                                     int32_t value_len,
                                     const pkc_header *headers,
                                     int32_t n_headers);

/*
 * Append a record (offset delta = its index, timestamp delta from the
 * first record).  key/value: len -1 for null (ptr may then be NULL).
 * Returns PKC_OK; PKC_ERR_TOO_LARGE (record not added, builder unchanged)
 * if it would take the batch past max_size; PKC_ERR_INVALID for a negative
 * header key length or too many records; PKC_ERR_NOMEM.
 */
int pkc_batch_builder_append(pkc_batch_builder *b, int64_t timestamp,
                             const uint8_t *key, int32_t key_len,
                             const uint8_t *value, int32_t value_len,
                             const pkc_header *headers, int32_t n_headers);

/*
 * Finish the batch: fill the header (baseOffset 0, partitionLeaderEpoch -1,
 * magic 2, attributes = codec | transactional, lastOffsetDelta, base/max
 * timestamp, producer fields, recordsCount), compress the records as one
 * blob when a codec is set, and back-patch batchLength and the CRC-32C.
 * *out / *out_len receive a view of the batch owned by the builder, valid
 * until its next reset/append/free.  Returns PKC_OK, PKC_ERR_INVALID for an
 * empty batch, or the compression status.
 */
int pkc_batch_builder_finish(pkc_batch_builder *b, const uint8_t **out,
                             size_t *out_len);

/*
 * Set the producer fields (producerId, producerEpoch, baseSequence) of a
 * finished batch: the builder's fields and, in the view the last
 * successful pkc_batch_builder_finish() returned, the header fields and
 * the CRC-32C (no recompression).  Only valid between a successful finish
 * and the next reset/append.  Returns 1 when the view changed, 0 when it
 * already carried these values, PKC_ERR_INVALID when nothing is finished.
 */
int pkc_batch_builder_restamp(pkc_batch_builder *b, int64_t producer_id,
                              int16_t producer_epoch, int32_t base_sequence);
