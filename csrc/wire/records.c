/*
 * records.c - RecordBatch v2 and legacy message-set decoding, RecordBatch
 * v2 encoding (see records.h for the contract and ownership rules).
 */
#include "records.h"

#include <stdlib.h>
#include <zlib.h>

#include "compress.h"
#include "crc32c.h"

/* Iterator states. */
enum {
    ITER_TOP = 0,    /* between entries */
    ITER_BATCH = 1,  /* inside a v2 batch: `left` records in `rec` */
    ITER_LEGACY = 2, /* inside a legacy compressed wrapper's inner set */
    ITER_DONE = 3,
    ITER_FAILED = 4
};

/* Smallest legacy messages (crc, magic, attributes, [timestamp], key
 * length, value length; magic 0) and the smallest v2 batch after batchLength. */
#define LEGACY_V0_MIN 14
#define BATCH_MIN (PKC_BATCH_HEADER_SIZE - PKC_LOG_OVERHEAD)
/* Bytes up to and including the magic byte of any entry. */
#define HEADER_UP_TO_MAGIC 17

/* Byte offsets inside a v2 batch header. */
#define OFF_MAGIC 16
#define OFF_CRC 17
#define OFF_ATTRIBUTES 21
#define OFF_LAST_OFFSET_DELTA 23
#define OFF_BASE_TIMESTAMP 27
#define OFF_MAX_TIMESTAMP 35
#define OFF_PRODUCER_ID 43
#define OFF_PRODUCER_EPOCH 51
#define OFF_BASE_SEQUENCE 53
#define OFF_RECORDS_COUNT 57

/* A valid address for empty views (NULL + 0 is undefined behaviour). */
static const uint8_t empty_bytes[1];

/* ------------------------------------------------------------- arena */

struct pkc_arena_block {
    pkc_arena_block *next;
    uint8_t *data;
};

void
pkc_arena_init(pkc_arena *a, size_t max)
{
    a->head = NULL;
    a->used = 0;
    a->max = max;
}

void
pkc_arena_free(pkc_arena *a)
{
    pkc_arena_block *b = a->head;

    while (b != NULL) {
        pkc_arena_block *next = b->next;
        free(b->data);
        free(b);
        b = next;
    }
    a->head = NULL;
    a->used = 0;
}

/* ------------------------------------------------- aborted producer set */

#define PID_EMPTY (-1)
#define PID_TOMBSTONE (-2)

static size_t
pid_slot(int64_t pid, size_t mask)
{
    uint64_t h = (uint64_t)pid * 0x9E3779B97F4A7C15u;
    return (size_t)(h >> 32) & mask;
}

static int
pid_contains(const pkc_records_iter *it, int64_t pid)
{
    size_t i;

    if (it->pids == NULL || pid < 0)
        return 0;
    for (i = pid_slot(pid, it->pid_mask);; i = (i + 1) & it->pid_mask) {
        if (it->pids[i] == pid)
            return 1;
        if (it->pids[i] == PID_EMPTY)
            return 0;
    }
}

/* The table has more than twice as many slots as aborted transactions, and
 * each transaction adds at most one entry, so it never fills up. */
static void
pid_add(pkc_records_iter *it, int64_t pid)
{
    size_t i, tomb = SIZE_MAX;

    if (pid < 0 || pid_contains(it, pid))
        return;
    for (i = pid_slot(pid, it->pid_mask);; i = (i + 1) & it->pid_mask) {
        if (it->pids[i] == PID_TOMBSTONE && tomb == SIZE_MAX)
            tomb = i;
        if (it->pids[i] == PID_EMPTY)
            break;
    }
    it->pids[tomb != SIZE_MAX ? tomb : i] = pid;
}

static void
pid_remove(pkc_records_iter *it, int64_t pid)
{
    size_t i;

    if (it->pids == NULL || pid < 0)
        return;
    for (i = pid_slot(pid, it->pid_mask);; i = (i + 1) & it->pid_mask) {
        if (it->pids[i] == pid) {
            it->pids[i] = PID_TOMBSTONE;
            return;
        }
        if (it->pids[i] == PID_EMPTY)
            return;
    }
}

static int
txn_cmp(const void *a, const void *b)
{
    const pkc_aborted_txn *x = a, *y = b;

    if (x->first_offset != y->first_offset)
        return x->first_offset < y->first_offset ? -1 : 1;
    return (x->producer_id > y->producer_id) - (x->producer_id < y->producer_id);
}

/* Mark the producers of aborted transactions that start at or before
 * `last_offset` (they are sorted by first offset). */
static void
consume_txns_upto(pkc_records_iter *it, int64_t last_offset)
{
    while (it->txn_next < it->n_txns &&
           it->txns[it->txn_next].first_offset <= last_offset) {
        pid_add(it, it->txns[it->txn_next].producer_id);
        it->txn_next++;
    }
}

/* ---------------------------------------------------------- iterator */

int
pkc_records_iter_init(pkc_records_iter *it, const uint8_t *data, size_t len,
                      const pkc_records_opts *opts)
{
    memset(it, 0, sizeof(*it));
    pkc_reader_init(&it->r, len ? data : empty_bytes, len);
    pkc_reader_init(&it->rec, empty_bytes, 0);
    it->err_offset = -1;
    it->next_offset = -1;
    it->state = ITER_TOP;
    if (opts != NULL)
        it->opts = *opts;
    if (it->opts.max_decompressed == 0)
        it->opts.max_decompressed = PKC_DEFAULT_MAX_DECOMPRESSED;
    pkc_writer_init(&it->scratch, 0, it->opts.max_decompressed);
    it->opts.aborted = NULL;
    it->opts.n_aborted = 0;
    if (opts != NULL && opts->read_committed && opts->n_aborted > 0) {
        size_t n = opts->n_aborted, slots = 8;

        if (n > SIZE_MAX / 4 / sizeof(int64_t))
            goto nomem;
        while (slots < 2 * n + 2)
            slots *= 2;
        it->txns = malloc(n * sizeof(*it->txns));
        it->pids = malloc(slots * sizeof(*it->pids));
        if (it->txns == NULL || it->pids == NULL)
            goto nomem;
        memcpy(it->txns, opts->aborted, n * sizeof(*it->txns));
        qsort(it->txns, n, sizeof(*it->txns), txn_cmp);
        for (size_t i = 0; i < slots; i++)
            it->pids[i] = PID_EMPTY;
        it->pid_mask = slots - 1;
        it->n_txns = n;
    }
    return PKC_OK;

nomem:
    it->state = ITER_FAILED;
    it->r.status = PKC_ERR_NOMEM;
    it->r.err_field = "AbortedTransactions";
    return PKC_ERR_NOMEM;
}

void
pkc_records_iter_free(pkc_records_iter *it)
{
    pkc_writer_free(&it->scratch);
    free(it->txns);
    free(it->pids);
    it->txns = NULL;
    it->pids = NULL;
    it->n_txns = 0;
}

/* Fail the iteration: status and field, positioned at the current entry. */
static int
iter_fail_at(pkc_records_iter *it, int status, const char *field, size_t pos)
{
    if (it->r.status == PKC_OK) {
        it->r.status = status;
        it->r.err_offset = pos;
        it->r.err_field = field;
        it->err_offset = it->base_offset;
    }
    it->state = ITER_FAILED;
    return it->r.status;
}

static int
iter_fail(pkc_records_iter *it, int status, const char *field)
{
    return iter_fail_at(it, status, field, it->entry_pos);
}

/* Fail with the error of sub-reader `sub`; the position is exact when the
 * sub-reader reads the input itself, else the entry's position. */
static int
iter_fail_sub(pkc_records_iter *it, const pkc_reader *sub)
{
    size_t pos = it->entry_pos;

    if (sub->start >= it->r.start && sub->start <= it->r.end)
        pos = (size_t)(sub->start - it->r.start) + sub->err_offset;
    return iter_fail_at(it, sub->status ? sub->status : PKC_ERR_INVALID,
                        sub->err_field, pos);
}

static void
advance_next_offset(pkc_records_iter *it, int64_t last_offset)
{
    int64_t next = (int64_t)((uint64_t)last_offset + 1);

    if (next > it->next_offset)
        it->next_offset = next;
}

/* Decompress in[0..len) with `codec` and point it->rec at the result. */
static int
decompress_into_rec(pkc_records_iter *it, int codec, const uint8_t *in,
                    size_t len, const char *field)
{
    size_t cap = it->opts.max_decompressed;
    pkc_arena *arena = it->opts.arena;
    const uint8_t *out;
    size_t out_len;
    int rc;

    if (arena != NULL) {
        pkc_writer tmp;
        pkc_arena_block *blk;

        if (arena->max) {
            if (arena->used >= arena->max)
                return iter_fail(it, PKC_ERR_TOO_LARGE, field);
            if (cap > arena->max - arena->used)
                cap = arena->max - arena->used;
        }
        pkc_writer_init(&tmp, 0, cap);
        rc = pkc_decompress(codec, in, len, &tmp);
        if (rc == PKC_OK && tmp.status != PKC_OK)
            rc = tmp.status;
        if (rc != PKC_OK) {
            pkc_writer_free(&tmp);
            return iter_fail(it, rc, field);
        }
        blk = malloc(sizeof(*blk));
        if (blk == NULL) {
            pkc_writer_free(&tmp);
            return iter_fail(it, PKC_ERR_NOMEM, field);
        }
        blk->data = tmp.buf;
        blk->next = arena->head;
        arena->head = blk;
        arena->used += tmp.len;
        out = tmp.buf;
        out_len = tmp.len;
    }
    else {
        pkc_writer_reset(&it->scratch);
        it->scratch.max = cap;
        rc = pkc_decompress(codec, in, len, &it->scratch);
        if (rc == PKC_OK && it->scratch.status != PKC_OK)
            rc = it->scratch.status;
        if (rc != PKC_OK)
            return iter_fail(it, rc, field);
        out = it->scratch.buf;
        out_len = it->scratch.len;
    }
    pkc_reader_init(&it->rec, out_len ? out : empty_bytes, out_len);
    return PKC_OK;
}

/* Inline fast paths of the pkc_reader functions for the per-record loop:
 * the common short forms are decoded here, everything else (long varints,
 * errors) goes through buf.c, so behaviour is identical. */
static inline int
rd_varint(pkc_reader *r, int32_t *out, const char *field)
{
    const uint8_t *p = r->pos;

    if (r->status == PKC_OK && p < r->end) {
        uint32_t u = p[0];
        if (u < 0x80) {
            r->pos = p + 1;
            *out = (int32_t)((u >> 1) ^ (~(u & 1) + 1));
            return PKC_OK;
        }
        if (p + 1 < r->end && p[1] < 0x80) {
            u = (u & 0x7f) | ((uint32_t)p[1] << 7);
            r->pos = p + 2;
            *out = (int32_t)((u >> 1) ^ (~(u & 1) + 1));
            return PKC_OK;
        }
    }
    return pkc_read_varint(r, out, field);
}

static inline int
rd_varlong(pkc_reader *r, int64_t *out, const char *field)
{
    const uint8_t *p = r->pos;

    if (r->status == PKC_OK && r->end - p >= 4) {
        uint64_t u = 0;
        for (int i = 0; i < 4; i++) {
            u |= (uint64_t)(p[i] & 0x7f) << (7 * i);
            if (p[i] < 0x80) {
                r->pos = p + i + 1;
                *out = (int64_t)((u >> 1) ^ (~(u & 1) + 1));
                return PKC_OK;
            }
        }
    }
    return pkc_read_varlong(r, out, field);
}

static inline int
rd_raw(pkc_reader *r, int32_t n, pkc_slice *out, const char *field)
{
    if (r->status == PKC_OK && (size_t)(r->end - r->pos) >= (size_t)n) {
        out->ptr = r->pos;
        out->len = n;
        r->pos += n;
        return PKC_OK;
    }
    return pkc_read_raw(r, (size_t)n, out, field);
}

/* Read the next v2 record of the current batch from it->rec. */
static int
read_v2_record(pkc_records_iter *it, pkc_record *rec)
{
    pkc_reader *rr = &it->rec;
    pkc_reader b;
    int32_t len, offset_delta, key_len, value_len, n_headers;
    int64_t ts_delta;
    int8_t attributes;
    const uint8_t *headers_start;

    if (pkc_reader_remaining(rr) == 0)
        return iter_fail(it, PKC_ERR_INVALID,
                         "recordsCount (more than the records)");
    if (rd_varint(rr, &len, "record length"))
        return iter_fail_sub(it, rr);
    if (len < 0 || (size_t)len > pkc_reader_remaining(rr)) {
        pkc_reader_fail(rr, PKC_ERR_INVALID, "record length");
        return iter_fail_sub(it, rr);
    }
    pkc_reader_init(&b, rr->pos, (size_t)len);
    rr->pos += len;

    pkc_read_i8(&b, &attributes, "record attributes");
    rd_varlong(&b, &ts_delta, "timestampDelta");
    rd_varint(&b, &offset_delta, "offsetDelta");
    rd_varint(&b, &key_len, "key length");
    if (b.status)
        goto fail;
    if (offset_delta < 0 || offset_delta > it->last_offset_delta) {
        pkc_reader_fail(&b, PKC_ERR_INVALID, "offsetDelta");
        goto fail;
    }
    rec->key.ptr = NULL;
    rec->key.len = -1;
    if (key_len < -1) {
        pkc_reader_fail(&b, PKC_ERR_INVALID, "key length");
        goto fail;
    }
    if (key_len >= 0 && rd_raw(&b, key_len, &rec->key, "key"))
        goto fail;
    if (rd_varint(&b, &value_len, "value length"))
        goto fail;
    rec->value.ptr = NULL;
    rec->value.len = -1;
    if (value_len < -1) {
        pkc_reader_fail(&b, PKC_ERR_INVALID, "value length");
        goto fail;
    }
    if (value_len >= 0 &&
        rd_raw(&b, value_len, &rec->value, "value"))
        goto fail;
    if (rd_varint(&b, &n_headers, "headers count"))
        goto fail;
    /* Each header takes at least two bytes (two one-byte varints). */
    if (n_headers < 0 || (size_t)n_headers > pkc_reader_remaining(&b) / 2) {
        pkc_reader_fail(&b, PKC_ERR_INVALID, "headers count");
        goto fail;
    }
    headers_start = b.pos;
    for (int32_t i = 0; i < n_headers; i++) {
        int32_t hk, hv;
        if (rd_varint(&b, &hk, "header key length"))
            goto fail;
        if (hk < 0) {
            pkc_reader_fail(&b, PKC_ERR_INVALID, "header key length");
            goto fail;
        }
        if (pkc_read_skip(&b, (size_t)hk, "header key") ||
            rd_varint(&b, &hv, "header value length"))
            goto fail;
        if (hv < -1) {
            pkc_reader_fail(&b, PKC_ERR_INVALID, "header value length");
            goto fail;
        }
        if (hv > 0 && pkc_read_skip(&b, (size_t)hv, "header value"))
            goto fail;
    }
    if (pkc_reader_remaining(&b) != 0) {
        pkc_reader_fail(&b, PKC_ERR_INVALID,
                        "record length (bytes after the headers)");
        goto fail;
    }
    rec->headers.ptr = headers_start;
    rec->headers.len = (int32_t)(b.pos - headers_start);
    rec->header_count = n_headers;
    rec->offset = (int64_t)((uint64_t)it->base_offset + (uint64_t)offset_delta);
    if (it->ts_type == PKC_TS_LOG_APPEND)
        rec->timestamp = it->max_ts;
    else
        rec->timestamp = (int64_t)((uint64_t)it->base_ts + (uint64_t)ts_delta);
    rec->timestamp_type = (int8_t)it->ts_type;
    rec->magic = 2;
    rec->codec = (int8_t)it->codec;
    it->left--;
    return PKC_OK;

fail:
    return iter_fail_sub(it, &b);
}

/* Is the first record of the current (control) batch an ABORT marker?
 * 1 yes, 0 no, <0 error. */
static int
is_abort_marker(pkc_records_iter *it)
{
    pkc_record first;
    int rc;

    if (it->left <= 0)
        return 0;
    rc = read_v2_record(it, &first);
    if (rc < 0)
        return rc;
    if (first.key.len < 4)
        return iter_fail(it, PKC_ERR_INVALID, "control record key");
    return pkc_load_u16(first.key.ptr + 2) == PKC_CONTROL_ABORT;
}

/* Point it->rec at the records of the v2 batch p[0..n), decompressing
 * them if the batch is compressed. */
static int
open_batch_records(pkc_records_iter *it, const uint8_t *p, size_t n,
                   const char *field)
{
    if (it->codec == PKC_CODEC_NONE) {
        pkc_reader_init(&it->rec, p + PKC_BATCH_HEADER_SIZE,
                        n - PKC_BATCH_HEADER_SIZE);
        return PKC_OK;
    }
    return decompress_into_rec(it, it->codec, p + PKC_BATCH_HEADER_SIZE,
                               n - PKC_BATCH_HEADER_SIZE, field);
}

/* Enter the v2 batch p[0..n) (n >= 17 and fully present).  Returns 2 to go
 * on iterating, or <0. */
static int
enter_v2(pkc_records_iter *it, const uint8_t *p, size_t n)
{
    uint32_t crc;
    int attributes, skip = 0, rc;
    int32_t count;
    int64_t producer_id;

    if (n < PKC_BATCH_HEADER_SIZE)
        return iter_fail(it, PKC_ERR_INVALID, "batchLength");
    crc = pkc_load_u32(p + OFF_CRC);
    if (!it->opts.skip_crc &&
        pkc_crc32c(0, p + OFF_ATTRIBUTES, n - OFF_ATTRIBUTES) != crc)
        return iter_fail(it, PKC_ERR_CRC, "RecordBatch crc");
    attributes = pkc_load_u16(p + OFF_ATTRIBUTES);
    it->magic = 2;
    it->codec = attributes & PKC_ATTR_CODEC_MASK;
    it->control = (attributes & PKC_ATTR_CONTROL) != 0;
    it->ts_type = (attributes & PKC_ATTR_LOG_APPEND_TIME) ? PKC_TS_LOG_APPEND
                                                         : PKC_TS_CREATE;
    it->last_offset_delta = (int32_t)pkc_load_u32(p + OFF_LAST_OFFSET_DELTA);
    it->base_ts = (int64_t)pkc_load_u64(p + OFF_BASE_TIMESTAMP);
    it->max_ts = (int64_t)pkc_load_u64(p + OFF_MAX_TIMESTAMP);
    producer_id = (int64_t)pkc_load_u64(p + OFF_PRODUCER_ID);
    count = (int32_t)pkc_load_u32(p + OFF_RECORDS_COUNT);
    if (it->last_offset_delta < 0)
        return iter_fail(it, PKC_ERR_INVALID, "lastOffsetDelta");
    if (count < 0 || (int64_t)count > (int64_t)it->last_offset_delta + 1)
        return iter_fail(it, PKC_ERR_INVALID, "recordsCount");
    it->last_offset = (int64_t)((uint64_t)it->base_offset +
                                (uint64_t)it->last_offset_delta);
    it->left = count;
    pkc_reader_init(&it->rec, empty_bytes, 0);

    if (it->opts.read_committed && producer_id >= 0) {
        consume_txns_upto(it, it->last_offset);
        if (it->control) {
            if (count > 0) {
                rc = open_batch_records(it, p, n, "records (control batch)");
                if (rc < 0)
                    return rc;
                rc = is_abort_marker(it);
                if (rc < 0)
                    return rc;
                if (rc == 1)
                    pid_remove(it, producer_id);
            }
        }
        else if ((attributes & PKC_ATTR_TRANSACTIONAL) &&
                 pid_contains(it, producer_id))
            skip = 1;
    }
    if (it->control || count == 0 || it->last_offset < it->opts.fetch_offset)
        skip = 1;
    if (skip) {
        it->left = 0;
        advance_next_offset(it, it->last_offset);
        it->state = ITER_TOP;
        return 2;
    }
    rc = open_batch_records(it, p, n, "records (compressed)");
    if (rc < 0)
        return rc;
    it->state = ITER_BATCH;
    return 2;
}

/* ------------------------------------------------- legacy messages */

size_t
pkc_legacy_message_size(int magic, int32_t key_len, int32_t value_len)
{
    /* crc, magic, attributes, key length, value length */
    size_t n = 4 + 1 + 1 + 4 + 4;

    if (magic == 1)
        n += 8;
    if (key_len > 0)
        n += (size_t)key_len;
    if (value_len > 0)
        n += (size_t)value_len;
    return n;
}

int
pkc_legacy_message_write(pkc_writer *w, int magic, int attributes,
                         int64_t timestamp, const uint8_t *key,
                         int32_t key_len, const uint8_t *value,
                         int32_t value_len)
{
    size_t start;

    if ((magic != 0 && magic != 1) || key_len < -1 || value_len < -1 ||
        attributes < 0 || attributes > 0xff)
        return PKC_ERR_INVALID;
    if (pkc_writer_reserve(w, pkc_legacy_message_size(magic, key_len,
                                                      value_len)))
        return w->status;
    start = pkc_write_i32(w, 0);                     /* Crc (patched) */
    pkc_write_i8(w, (int8_t)magic);                  /* MagicByte */
    pkc_write_i8(w, (int8_t)(uint8_t)attributes);    /* Attributes */
    if (magic == 1)
        pkc_write_i64(w, timestamp);                 /* Timestamp */
    pkc_write_bytes(w, 0, key_len > 0 ? key : empty_bytes, key_len);
    pkc_write_bytes(w, 0, value_len > 0 ? value : empty_bytes, value_len);
    if (w->status)
        return w->status;
    pkc_patch_u32(w, start,
                  (uint32_t)crc32(0, w->buf + start + 4,
                                  (uInt)(w->len - start - 4)));
    return PKC_OK;
}

int
pkc_legacy_message_parse(pkc_reader *r, pkc_legacy_message *out,
                         int verify_crc)
{
    const uint8_t *m = r->pos;
    size_t n = pkc_reader_remaining(r);
    uint32_t crc;
    int8_t magic, attributes;

    out->timestamp = -1;
    pkc_read_u32(r, &crc, "message crc");
    pkc_read_i8(r, &magic, "magic");
    pkc_read_i8(r, &attributes, "message attributes");
    if (r->status)
        return r->status;
    if (magic != 0 && magic != 1)
        return pkc_reader_fail(r, PKC_ERR_UNSUPPORTED, "magic");
    if (magic == 1 && pkc_read_i64(r, &out->timestamp, "message timestamp"))
        return r->status;
    if (pkc_read_bytes(r, 0, 1, &out->key, "message key") ||
        pkc_read_bytes(r, 0, 1, &out->value, "message value"))
        return r->status;
    if (pkc_reader_remaining(r) != 0)
        return pkc_reader_fail(r, PKC_ERR_INVALID, "message size");
    if (verify_crc && (uint32_t)crc32(0, m + 4, (uInt)(n - 4)) != crc) {
        r->pos = m;
        return pkc_reader_fail(r, PKC_ERR_CRC, "message crc");
    }
    out->magic = magic;
    out->attributes = (uint8_t)attributes;
    return PKC_OK;
}

/* Parse the legacy message m[0..n) (starting at its crc) and verify its
 * CRC32.  Returns PKC_OK or fails the iterator. */
static int
parse_legacy(pkc_records_iter *it, const uint8_t *m, size_t n,
             pkc_legacy_message *out)
{
    pkc_reader b;

    pkc_reader_init(&b, m, n);
    if (pkc_legacy_message_parse(&b, out, !it->opts.skip_crc))
        return iter_fail_sub(it, &b);
    return PKC_OK;
}

/* Check the framing of a decompressed inner message set and find its
 * entry count and last offset. */
static int
scan_inner_set(pkc_records_iter *it, int64_t *last, int32_t *count)
{
    pkc_reader s = it->rec;

    *last = -1;
    *count = 0;
    while (pkc_reader_remaining(&s) > 0) {
        int64_t off;
        int32_t size;
        pkc_read_i64(&s, &off, "inner message offset");
        pkc_read_i32(&s, &size, "inner message size");
        if (s.status == PKC_OK && size < LEGACY_V0_MIN)
            pkc_reader_fail(&s, PKC_ERR_INVALID, "inner message size");
        if (pkc_read_skip(&s, (size_t)size, "inner message"))
            return iter_fail(it, s.status, s.err_field);
        *last = off;
        (*count)++;
    }
    return PKC_OK;
}

/* Enter the legacy entry p[0..n).  Returns 1 with *rec filled (an
 * uncompressed message to deliver), 2 to go on, or <0. */
static int
enter_legacy(pkc_records_iter *it, const uint8_t *p, size_t n,
             pkc_record *rec)
{
    pkc_legacy_message m;
    int codec, rc;
    int64_t last_inner;
    int32_t n_inner;

    if (parse_legacy(it, p + PKC_LOG_OVERHEAD, n - PKC_LOG_OVERHEAD, &m))
        return it->r.status;
    codec = m.attributes & PKC_ATTR_CODEC_MASK;
    it->magic = m.magic;
    it->codec = codec;
    it->ts_type = m.magic == 0 ? PKC_TS_NONE
                  : (m.attributes & PKC_ATTR_LOG_APPEND_TIME) ? PKC_TS_LOG_APPEND
                                                              : PKC_TS_CREATE;
    it->wrapper_ts = m.timestamp;
    /* Whether compressed or not, the entry's offset is its last one. */
    it->last_offset = it->base_offset;
    if (it->base_offset < it->opts.fetch_offset) {
        advance_next_offset(it, it->base_offset);
        return 2;
    }
    if (codec == PKC_CODEC_NONE) {
        advance_next_offset(it, it->base_offset);
        rec->offset = it->base_offset;
        rec->timestamp = m.timestamp;
        rec->timestamp_type = (int8_t)it->ts_type;
        rec->magic = (int8_t)m.magic;
        rec->codec = 0;
        rec->key = m.key;
        rec->value = m.value;
        rec->header_count = 0;
        rec->headers.ptr = empty_bytes;
        rec->headers.len = 0;
        return 1;
    }
    if (m.value.len < 0)
        return iter_fail(it, PKC_ERR_INVALID,
                         "message value (null in a compressed wrapper)");
    rc = decompress_into_rec(it, codec, m.value.len ? m.value.ptr : empty_bytes,
                             (size_t)m.value.len, "message value (compressed)");
    if (rc < 0)
        return rc;
    if (scan_inner_set(it, &last_inner, &n_inner) < 0)
        return it->r.status;
    /* Magic 1 writes inner offsets relative to the set (0..n-1) and the
     * wrapper carries the absolute offset of the last one. */
    it->inner_delta = (n_inner > 0 && last_inner < it->base_offset)
                          ? (int64_t)((uint64_t)it->base_offset -
                                      (uint64_t)last_inner)
                          : 0;
    it->state = ITER_LEGACY;
    return 2;
}

/* Next inner message of a legacy wrapper.  1 delivered, 2 skipped, <0. */
static int
read_legacy_inner(pkc_records_iter *it, pkc_record *rec)
{
    pkc_reader *rr = &it->rec;
    int64_t off;
    int32_t size;
    pkc_legacy_message m;

    /* Framing was checked by scan_inner_set. */
    pkc_read_i64(rr, &off, "inner message offset");
    pkc_read_i32(rr, &size, "inner message size");
    if (rr->status)
        return iter_fail_sub(it, rr);
    if (parse_legacy(it, rr->pos, (size_t)size, &m))
        return it->r.status;
    rr->pos += size;
    if ((m.attributes & PKC_ATTR_CODEC_MASK) != 0)
        return iter_fail(it, PKC_ERR_INVALID,
                         "inner message attributes (nested compression)");
    rec->offset = (int64_t)((uint64_t)off + (uint64_t)it->inner_delta);
    if (it->ts_type == PKC_TS_LOG_APPEND) {
        rec->timestamp = it->wrapper_ts;
        rec->timestamp_type = PKC_TS_LOG_APPEND;
    }
    else if (m.magic == 1) {
        rec->timestamp = m.timestamp;
        rec->timestamp_type = PKC_TS_CREATE;
    }
    else {
        rec->timestamp = -1;
        rec->timestamp_type = PKC_TS_NONE;
    }
    rec->magic = (int8_t)m.magic;
    rec->codec = (int8_t)it->codec;
    rec->key = m.key;
    rec->value = m.value;
    rec->header_count = 0;
    rec->headers.ptr = empty_bytes;
    rec->headers.len = 0;
    if (rec->offset < it->opts.fetch_offset)
        return 2;
    return 1;
}

/* At the top level: enter the next entry.  0 end, 1 record delivered, 2 go
 * on, <0 error. */
static int
enter_entry(pkc_records_iter *it, pkc_record *rec)
{
    pkc_reader *r = &it->r;
    size_t rem = pkc_reader_remaining(r);
    const uint8_t *p = r->pos;
    int32_t size;
    int magic;

    it->entry_pos = pkc_reader_offset(r);
    if (rem == 0) {
        it->state = ITER_DONE;
        return 0;
    }
    if (rem < PKC_LOG_OVERHEAD)
        goto truncated;
    it->base_offset = (int64_t)pkc_load_u64(p);
    size = (int32_t)pkc_load_u32(p + 8);
    if (size < LEGACY_V0_MIN)
        return iter_fail(it, PKC_ERR_INVALID, "batchLength");
    if (rem < HEADER_UP_TO_MAGIC)
        goto truncated;
    magic = (int8_t)p[OFF_MAGIC];
    if (magic < 0 || magic > 2)
        return iter_fail(it, PKC_ERR_UNSUPPORTED, "magic");
    if ((size_t)size > rem - PKC_LOG_OVERHEAD)
        goto truncated;
    r->pos += PKC_LOG_OVERHEAD + (size_t)size;
    if (magic == 2)
        return enter_v2(it, p, PKC_LOG_OVERHEAD + (size_t)size);
    return enter_legacy(it, p, PKC_LOG_OVERHEAD + (size_t)size, rec);

truncated:
    it->truncated = 1;
    it->state = ITER_DONE;
    return 0;
}

int
pkc_records_next(pkc_records_iter *it, pkc_record *rec)
{
    int rc;

    for (;;) {
        switch (it->state) {
        case ITER_BATCH:
            if (it->left > 0) {
                rc = read_v2_record(it, rec);
                if (rc < 0)
                    return rc;
                if (rec->offset < it->opts.fetch_offset)
                    continue;
                it->records_read++;
                return 1;
            }
            if (pkc_reader_remaining(&it->rec) != 0)
                return iter_fail(it, PKC_ERR_INVALID,
                                 "recordsCount (fewer than the records)");
            advance_next_offset(it, it->last_offset);
            it->state = ITER_TOP;
            continue;
        case ITER_LEGACY:
            if (pkc_reader_remaining(&it->rec) > 0) {
                rc = read_legacy_inner(it, rec);
                if (rc < 0)
                    return rc;
                if (rc == 2)
                    continue;
                it->records_read++;
                return 1;
            }
            advance_next_offset(it, it->last_offset);
            it->state = ITER_TOP;
            continue;
        case ITER_TOP:
            rc = enter_entry(it, rec);
            if (rc == 2)
                continue;
            if (rc == 1)
                it->records_read++;
            return rc;
        case ITER_DONE:
            return 0;
        default:
            return it->r.status ? it->r.status : PKC_ERR_INVALID;
        }
    }
}

/* ----------------------------------------------------------- headers */

void
pkc_record_headers_init(pkc_header_iter *hi, const pkc_record *rec)
{
    if (rec->headers.ptr != NULL && rec->headers.len > 0)
        pkc_reader_init(&hi->r, rec->headers.ptr, (size_t)rec->headers.len);
    else
        pkc_reader_init(&hi->r, empty_bytes, 0);
    hi->left = rec->header_count;
}

int
pkc_record_headers_next(pkc_header_iter *hi, pkc_slice *key, pkc_slice *value)
{
    int32_t kl, vl;

    key->ptr = value->ptr = NULL;
    key->len = value->len = -1;
    if (hi->r.status)
        return hi->r.status;
    if (hi->left <= 0)
        return 0;
    if (pkc_read_varint(&hi->r, &kl, "header key length"))
        return hi->r.status;
    if (kl < 0)
        return pkc_reader_fail(&hi->r, PKC_ERR_INVALID, "header key length");
    if (pkc_read_raw(&hi->r, (size_t)kl, key, "header key") ||
        pkc_read_varint(&hi->r, &vl, "header value length"))
        return hi->r.status;
    if (vl < -1)
        return pkc_reader_fail(&hi->r, PKC_ERR_INVALID,
                               "header value length");
    if (vl >= 0 && pkc_read_raw(&hi->r, (size_t)vl, value, "header value"))
        return hi->r.status;
    hi->left--;
    return 1;
}

/* ----------------------------------------------------------- encoding */

static inline uint64_t
zigzag64(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static inline size_t
uvarint_size(uint64_t v)
{
    /* the short forms first: lengths and deltas are mostly small */
    if (v < 0x80)
        return 1;
    if (v < 0x4000)
        return 2;
    if (v < 0x200000)
        return 3;
    return 1 + (size_t)(63 - __builtin_clzll(v)) / 7;
}

static inline size_t
varint_size(int64_t v)
{
    return uvarint_size(zigzag64(v));
}

static inline uint8_t *
put_varint(uint8_t *p, int64_t sv)
{
    uint64_t v = zigzag64(sv);
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

static inline uint8_t *
put_bytes(uint8_t *p, const uint8_t *data, int32_t len)
{
    p = put_varint(p, len);
    if (len > 0) {
        memcpy(p, data, (size_t)len);
        p += len;
    }
    return p;
}

/* Body size of a record (after its length varint); UINT64_MAX-safe sums of
 * lengths that each fit in int32. */
static uint64_t
record_body_size(int64_t ts_delta, int32_t offset_delta, int32_t key_len,
                 int32_t value_len, const pkc_header *headers,
                 int32_t n_headers)
{
    uint64_t n = 1 + varint_size(ts_delta) + varint_size(offset_delta) +
                 varint_size(key_len) + (key_len > 0 ? (uint64_t)key_len : 0) +
                 varint_size(value_len) +
                 (value_len > 0 ? (uint64_t)value_len : 0) +
                 varint_size(n_headers);
    for (int32_t i = 0; i < n_headers; i++) {
        int32_t kl = headers[i].key.len, vl = headers[i].value.len;
        n += varint_size(kl) + (kl > 0 ? (uint64_t)kl : 0) + varint_size(vl) +
             (vl > 0 ? (uint64_t)vl : 0);
    }
    return n;
}

size_t
pkc_record_size(int64_t ts_delta, int32_t offset_delta, int32_t key_len,
                int32_t value_len, const pkc_header *headers,
                int32_t n_headers)
{
    uint64_t body = record_body_size(ts_delta, offset_delta, key_len,
                                     value_len, headers, n_headers);
    return (size_t)(body + varint_size((int64_t)body));
}

size_t
pkc_batch_builder_record_size(const pkc_batch_builder *b, int64_t timestamp,
                              int32_t key_len, int32_t value_len,
                              const pkc_header *headers, int32_t n_headers)
{
    int64_t ts_delta = b->count
                           ? (int64_t)((uint64_t)timestamp - (uint64_t)b->base_ts)
                           : 0;
    return pkc_record_size(ts_delta, b->count, key_len, value_len, headers,
                           n_headers);
}

int
pkc_batch_builder_init(pkc_batch_builder *b, int codec, int level,
                       size_t max_size)
{
    memset(b, 0, sizeof(*b));
    if (max_size == 0 || max_size > (size_t)INT32_MAX)
        max_size = (size_t)INT32_MAX;
    if (max_size < PKC_BATCH_HEADER_SIZE)
        max_size = PKC_BATCH_HEADER_SIZE;
    b->codec = codec;
    b->level = level;
    b->producer_id = -1;
    b->producer_epoch = -1;
    b->base_sequence = -1;
    pkc_writer_init(&b->cw, 0, 0);
    if (pkc_writer_init(&b->w, 1024 < max_size ? 1024 : max_size, max_size))
        return PKC_ERR_NOMEM;
    pkc_batch_builder_reset(b);
    return b->w.status;
}

void
pkc_batch_builder_free(pkc_batch_builder *b)
{
    pkc_writer_free(&b->w);
    pkc_writer_free(&b->cw);
}

void
pkc_batch_builder_reset(pkc_batch_builder *b)
{
    pkc_writer_reset(&b->w);
    b->count = 0;
    b->base_ts = b->max_ts = -1;
    /* The header is filled in by finish; reserve its bytes now. */
    if (pkc_writer_reserve(&b->w, PKC_BATCH_HEADER_SIZE) == PKC_OK) {
        memset(b->w.buf, 0, PKC_BATCH_HEADER_SIZE);
        b->w.len = PKC_BATCH_HEADER_SIZE;
    }
}

int
pkc_batch_builder_append(pkc_batch_builder *b, int64_t timestamp,
                         const uint8_t *key, int32_t key_len,
                         const uint8_t *value, int32_t value_len,
                         const pkc_header *headers, int32_t n_headers)
{
    int64_t ts_delta;
    uint64_t body, total;
    uint8_t *p;

    if (b->w.status != PKC_OK)
        return b->w.status;
    if (b->count == INT32_MAX || key_len < -1 || value_len < -1 ||
        n_headers < 0 || (n_headers > 0 && headers == NULL))
        return PKC_ERR_INVALID;
    for (int32_t i = 0; i < n_headers; i++)
        if (headers[i].key.len < 0 || headers[i].value.len < -1)
            return PKC_ERR_INVALID;
    ts_delta = b->count ? (int64_t)((uint64_t)timestamp - (uint64_t)b->base_ts)
                        : 0;
    body = record_body_size(ts_delta, b->count, key_len, value_len, headers,
                            n_headers);
    total = body + varint_size((int64_t)body);
    if (total > b->w.max - b->w.len)
        return PKC_ERR_TOO_LARGE;
    if (b->w.cap - b->w.len < total && pkc_writer_reserve(&b->w, (size_t)total))
        return b->w.status;
    p = b->w.buf + b->w.len;
    p = put_varint(p, (int64_t)body);
    *p++ = 0; /* attributes */
    p = put_varint(p, ts_delta);
    p = put_varint(p, b->count);
    p = put_bytes(p, key, key_len);
    p = put_bytes(p, value, value_len);
    p = put_varint(p, n_headers);
    for (int32_t i = 0; i < n_headers; i++) {
        p = put_bytes(p, headers[i].key.ptr, headers[i].key.len);
        p = put_bytes(p, headers[i].value.ptr, headers[i].value.len);
    }
    b->w.len += (size_t)total;
    if (b->count == 0)
        b->base_ts = b->max_ts = timestamp;
    else if (timestamp > b->max_ts)
        b->max_ts = timestamp;
    b->count++;
    return PKC_OK;
}

/* Write the 61-byte header (CRC and batchLength left for the caller). */
static void
fill_header(const pkc_batch_builder *b, uint8_t *h)
{
    int attributes = (b->codec & PKC_ATTR_CODEC_MASK) |
                     (b->transactional ? PKC_ATTR_TRANSACTIONAL : 0);

    pkc_store_u64(h, 0);                       /* baseOffset */
    pkc_store_u32(h + 8, 0);                   /* batchLength (patched) */
    pkc_store_u32(h + 12, (uint32_t)-1);       /* partitionLeaderEpoch */
    h[OFF_MAGIC] = 2;                          /* magic */
    pkc_store_u32(h + OFF_CRC, 0);             /* crc (patched) */
    pkc_store_u16(h + OFF_ATTRIBUTES, (uint16_t)attributes);
    pkc_store_u32(h + OFF_LAST_OFFSET_DELTA, (uint32_t)(b->count - 1));
    pkc_store_u64(h + OFF_BASE_TIMESTAMP, (uint64_t)b->base_ts);
    pkc_store_u64(h + OFF_MAX_TIMESTAMP, (uint64_t)b->max_ts);
    pkc_store_u64(h + OFF_PRODUCER_ID, (uint64_t)b->producer_id);
    pkc_store_u16(h + OFF_PRODUCER_EPOCH, (uint16_t)b->producer_epoch);
    pkc_store_u32(h + OFF_BASE_SEQUENCE, (uint32_t)b->base_sequence);
    pkc_store_u32(h + OFF_RECORDS_COUNT, (uint32_t)b->count);
}

/* batchLength and CRC of the complete batch buf[0..len). */
static int
patch_length_crc(uint8_t *buf, size_t len)
{
    if (len - PKC_LOG_OVERHEAD > (size_t)INT32_MAX)
        return PKC_ERR_TOO_LARGE;
    pkc_store_u32(buf + 8, (uint32_t)(len - PKC_LOG_OVERHEAD));
    pkc_store_u32(buf + OFF_CRC,
                  pkc_crc32c(0, buf + OFF_ATTRIBUTES, len - OFF_ATTRIBUTES));
    return PKC_OK;
}

int
pkc_batch_builder_restamp(pkc_batch_builder *b, int64_t producer_id,
                          int16_t producer_epoch, int32_t base_sequence)
{
    pkc_writer *fw = b->codec == PKC_CODEC_NONE ? &b->w : &b->cw;
    uint8_t *h = fw->buf;

    if (b->count == 0 || fw->status != PKC_OK || h == NULL ||
        fw->len < PKC_BATCH_HEADER_SIZE ||
        (int32_t)pkc_load_u32(h + OFF_RECORDS_COUNT) != b->count)
        return PKC_ERR_INVALID;
    b->producer_id = producer_id;
    b->producer_epoch = producer_epoch;
    b->base_sequence = base_sequence;
    if ((int64_t)pkc_load_u64(h + OFF_PRODUCER_ID) == producer_id &&
        (int16_t)pkc_load_u16(h + OFF_PRODUCER_EPOCH) == producer_epoch &&
        (int32_t)pkc_load_u32(h + OFF_BASE_SEQUENCE) == base_sequence)
        return 0;
    pkc_store_u64(h + OFF_PRODUCER_ID, (uint64_t)producer_id);
    pkc_store_u16(h + OFF_PRODUCER_EPOCH, (uint16_t)producer_epoch);
    pkc_store_u32(h + OFF_BASE_SEQUENCE, (uint32_t)base_sequence);
    pkc_store_u32(h + OFF_CRC, pkc_crc32c(0, h + OFF_ATTRIBUTES,
                                          fw->len - OFF_ATTRIBUTES));
    return 1;
}

int
pkc_batch_builder_finish(pkc_batch_builder *b, const uint8_t **out,
                         size_t *out_len)
{
    int rc;

    *out = NULL;
    *out_len = 0;
    if (b->w.status != PKC_OK)
        return b->w.status;
    if (b->count == 0)
        return PKC_ERR_INVALID;
    fill_header(b, b->w.buf);
    if (b->codec == PKC_CODEC_NONE) {
        if ((rc = patch_length_crc(b->w.buf, b->w.len)) != PKC_OK)
            return rc;
        *out = b->w.buf;
        *out_len = b->w.len;
        return PKC_OK;
    }
    pkc_writer_reset(&b->cw);
    pkc_write_raw(&b->cw, b->w.buf, PKC_BATCH_HEADER_SIZE);
    if (b->cw.status != PKC_OK)
        return b->cw.status;
    rc = pkc_compress(b->codec, b->w.buf + PKC_BATCH_HEADER_SIZE,
                      b->w.len - PKC_BATCH_HEADER_SIZE, b->level, &b->cw);
    if (rc == PKC_OK)
        rc = b->cw.status;
    if (rc != PKC_OK)
        return rc;
    if ((rc = patch_length_crc(b->cw.buf, b->cw.len)) != PKC_OK)
        return rc;
    *out = b->cw.buf;
    *out_len = b->cw.len;
    return PKC_OK;
}
