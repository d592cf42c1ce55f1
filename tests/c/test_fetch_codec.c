/*
 * test_fetch_codec.c - plain-C tests of the Fetch codec
 * (csrc/wire/fetch_codec.h): a request encoded and read back, and answers
 * parsed with pkc_fetch_parse (Fetch v4 and v12 answers built here with
 * pkc_writer and the records batch builder): the records' offsets and
 * next fetch positions, truncated trailing batches, read_committed,
 * errors, hostile counts, and every prefix of a valid answer (run under
 * ASan + UBSan by tests/test_fetch_codec_c.py).
 */
#include "buf.h"
#include "fetch_codec.h"
#include "proto.h"
#include "records.h"

#include <stdlib.h>
#include <string.h>

#include "pkc_test.h"

#define TOPIC "topic-a"

/* One RecordBatch v2 with `n` records "v<i>" at base_offset; returns a
 * malloc'd copy in *out. */
static size_t
make_batch(int n, int64_t base_offset, int64_t producer_id, int transactional,
           uint8_t **out)
{
    pkc_batch_builder b;
    const uint8_t *view;
    size_t len;
    char val[32];

    CHECK_EQ(pkc_batch_builder_init(&b, 0, -1, 0), PKC_OK);
    b.producer_id = producer_id;
    b.producer_epoch = producer_id >= 0 ? 0 : -1;
    b.base_sequence = producer_id >= 0 ? 0 : -1;
    b.transactional = transactional;
    for (int i = 0; i < n; i++) {
        int vl = snprintf(val, sizeof(val), "v%lld",
                          (long long)(base_offset + i));
        CHECK_EQ(pkc_batch_builder_append(&b, 1000 + i, NULL, -1,
                                          (const uint8_t *)val, vl, NULL, 0),
                 PKC_OK);
    }
    CHECK_EQ(pkc_batch_builder_finish(&b, &view, &len), PKC_OK);
    *out = malloc(len);
    memcpy(*out, view, len);
    pkc_store_u64(*out, (uint64_t)base_offset); /* not covered by the CRC */
    pkc_batch_builder_free(&b);
    return len;
}

typedef struct {
    int32_t partition;
    int16_t error;
    int64_t hw;
    const uint8_t *records;
    int32_t records_len; /* -1 null */
    const int64_t *aborted; /* pairs (producer_id, first_offset) */
    int n_aborted;
} part_spec;

/* A Fetch answer body of `version` (4 or 12) for one topic. */
static void
build_fetch(pkc_writer *w, int version, const char *topic,
            const part_spec *parts, int n, int16_t top_error)
{
    int flex = version >= 12;

    pkc_writer_reset(w);
    pkc_write_i32(w, 0); /* ThrottleTimeMs */
    if (version >= 7) {
        pkc_write_i16(w, top_error);
        pkc_write_i32(w, 0); /* SessionId */
    }
    pkc_write_array_count(w, flex, 1);
    pkc_write_string(w, flex, topic, (int32_t)strlen(topic));
    pkc_write_array_count(w, flex, n);
    for (int i = 0; i < n; i++) {
        pkc_write_i32(w, parts[i].partition);
        pkc_write_i16(w, parts[i].error);
        pkc_write_i64(w, parts[i].hw);
        pkc_write_i64(w, parts[i].hw); /* LastStableOffset */
        if (version >= 5)
            pkc_write_i64(w, 0);        /* LogStartOffset */
        if (parts[i].aborted == NULL) {
            pkc_write_array_count(w, flex, -1);
        }
        else {
            pkc_write_array_count(w, flex, parts[i].n_aborted);
            for (int k = 0; k < parts[i].n_aborted; k++) {
                pkc_write_i64(w, parts[i].aborted[2 * k]);
                pkc_write_i64(w, parts[i].aborted[2 * k + 1]);
                if (flex)
                    pkc_write_empty_tags(w);
            }
        }
        if (version >= 11)
            pkc_write_i32(w, -1); /* PreferredReadReplica */
        pkc_write_bytes(w, flex, parts[i].records, parts[i].records_len);
        if (flex)
            pkc_write_empty_tags(w);
    }
    if (flex) {
        pkc_write_empty_tags(w); /* topic */
        pkc_write_empty_tags(w); /* response */
    }
    CHECK_EQ(w->status, PKC_OK);
}

#define MAX_SEEN 8

typedef struct {
    int calls;
    pkc_fetch_part_result res[MAX_SEEN];
    int64_t first_offset[MAX_SEEN];
    int64_t last_offset[MAX_SEEN];
    char first_value[MAX_SEEN][16];
} seen_t;

static int
collect(void *ctx, const pkc_fetch_part_result *r)
{
    seen_t *s = ctx;

    if (s->calls < MAX_SEEN) {
        int i = s->calls;
        s->res[i] = *r;
        s->res[i].recs = NULL;
        s->first_offset[i] = r->n_recs ? r->recs[0].offset : -1;
        s->last_offset[i] = r->n_recs ? r->recs[r->n_recs - 1].offset : -1;
        s->first_value[i][0] = '\0';
        if (r->n_recs && r->recs[0].value.len > 0 &&
            r->recs[0].value.len < 16) {
            memcpy(s->first_value[i], r->recs[0].value.ptr,
                   (size_t)r->recs[0].value.len);
            s->first_value[i][r->recs[0].value.len] = '\0';
        }
    }
    s->calls++;
    return 0;
}

#define MAX_ASKED 4

/* A request for partitions ids[0..n) at offsets offs[0..n) of TOPIC;
 * `parts` has room for MAX_ASKED. */
static pkc_fetch_request
request(const int32_t *ids, const int64_t *offs, int n, int read_committed,
        pkc_fetch_partition *parts)
{
    pkc_fetch_request req;

    CHECK(n <= MAX_ASKED);
    memset(&req, 0, sizeof(req));
    req.topic = TOPIC;
    req.topic_len = strlen(TOPIC);
    req.isolation_level = (int8_t)read_committed;
    for (int i = 0; i < n && i < MAX_ASKED; i++) {
        parts[i].partition = ids[i];
        parts[i].leader_epoch = -1;
        parts[i].fetch_offset = offs[i];
    }
    req.parts = parts;
    req.n_parts = (size_t)n;
    return req;
}

static int
parse(const pkc_writer *w, int version, const int32_t *ids,
      const int64_t *offs, int n, int read_committed, seen_t *s)
{
    pkc_fetch_partition parts[MAX_ASKED];
    pkc_fetch_request req = request(ids, offs, n, read_committed, parts);
    char err[256];

    memset(s, 0, sizeof(*s));
    return pkc_fetch_parse(&req, version, w->buf, w->len, 1, collect, s,
                           err, sizeof(err));
}

static void
test_two_partitions_both_versions(void)
{
    uint8_t *b0, *b1;
    size_t l0 = make_batch(3, 0, -1, 0, &b0);
    size_t l1 = make_batch(5, 100, -1, 0, &b1);
    pkc_writer w;
    int32_t ids[2] = {0, 1};
    int64_t offs[2] = {0, 102};
    seen_t s;

    pkc_writer_init(&w, 0, 0);
    for (int version = 4; version <= 12; version += 8) {
        part_spec parts[2] = {
            {0, 0, 3, b0, (int32_t)l0, NULL, 0},
            {1, 0, 105, b1, (int32_t)l1, NULL, 0},
        };
        build_fetch(&w, version, TOPIC, parts, 2, 0);
        CHECK_EQ(parse(&w, version, ids, offs, 2, 0, &s), PKC_OK);
        CHECK_EQ(s.calls, 2);
        CHECK_EQ(s.res[0].partition, 0);
        CHECK_EQ(s.res[0].n_recs, 3);
        CHECK_EQ(s.first_offset[0], 0);
        CHECK_EQ(s.res[0].next_offset, 3);
        CHECK(strcmp(s.first_value[0], "v0") == 0);
        CHECK_EQ(s.res[0].high_watermark, 3);
        /* Partition 1 asked from 102: the batch starts at 100. */
        CHECK_EQ(s.res[1].n_recs, 3);
        CHECK_EQ(s.first_offset[1], 102);
        CHECK_EQ(s.last_offset[1], 104);
        CHECK_EQ(s.res[1].next_offset, 105);
        CHECK(strcmp(s.first_value[1], "v102") == 0);
    }
    pkc_writer_free(&w);
    free(b0);
    free(b1);
}

static void
test_truncated_trailing_batch(void)
{
    uint8_t *b0, *b1, *joined;
    size_t l0 = make_batch(2, 0, -1, 0, &b0);
    size_t l1 = make_batch(2, 2, -1, 0, &b1);
    pkc_writer w;
    int32_t ids[1] = {0};
    int64_t offs[1] = {0};
    seen_t s;

    joined = malloc(l0 + l1);
    memcpy(joined, b0, l0);
    memcpy(joined + l0, b1, l1);
    pkc_writer_init(&w, 0, 0);
    {
        part_spec p = {0, 0, 4, joined, (int32_t)(l0 + l1 / 2), NULL, 0};
        build_fetch(&w, 12, TOPIC, &p, 1, 0);
    }
    CHECK_EQ(parse(&w, 12, ids, offs, 1, 0, &s), PKC_OK);
    CHECK_EQ(s.res[0].n_recs, 2);
    CHECK_EQ(s.res[0].next_offset, 2); /* the cut batch is fetched again */
    CHECK_EQ(s.res[0].truncated_empty, 0);
    CHECK_EQ(s.res[0].rec_status, PKC_OK);
    {
        /* Only part of the first batch: nothing whole, same position. */
        part_spec p = {0, 0, 4, joined, (int32_t)(l0 / 2), NULL, 0};
        build_fetch(&w, 12, TOPIC, &p, 1, 0);
    }
    CHECK_EQ(parse(&w, 12, ids, offs, 1, 0, &s), PKC_OK);
    CHECK_EQ(s.res[0].n_recs, 0);
    CHECK_EQ(s.res[0].next_offset, 0);
    CHECK_EQ(s.res[0].truncated_empty, 1);
    pkc_writer_free(&w);
    free(joined);
    free(b0);
    free(b1);
}

static void
test_errors_topics_and_unrequested(void)
{
    uint8_t *b0;
    size_t l0 = make_batch(1, 0, -1, 0, &b0);
    pkc_writer w;
    int32_t ids[1] = {0};
    int64_t offs[1] = {0};
    seen_t s;

    pkc_writer_init(&w, 0, 0);
    {
        part_spec p[3] = {
            {0, 6, -1, NULL, -1, NULL, 0}, /* NOT_LEADER_OR_FOLLOWER */
            {0, 0, 1, b0, (int32_t)l0, NULL, 0}, /* duplicate: ignored */
            {9, 0, 1, b0, (int32_t)l0, NULL, 0}, /* not requested */
        };
        build_fetch(&w, 12, TOPIC, p, 3, 0);
    }
    CHECK_EQ(parse(&w, 12, ids, offs, 1, 0, &s), PKC_OK);
    CHECK_EQ(s.calls, 1);
    CHECK_EQ(s.res[0].error_code, 6);
    CHECK_EQ(s.res[0].n_recs, 0);
    {
        part_spec p = {0, 0, 1, b0, (int32_t)l0, NULL, 0};
        build_fetch(&w, 12, "other-topic", &p, 1, 0);
    }
    CHECK_EQ(parse(&w, 12, ids, offs, 1, 0, &s), PKC_OK);
    CHECK_EQ(s.calls, 0);
    {
        part_spec p = {0, 0, 1, b0, (int32_t)l0, NULL, 0};
        build_fetch(&w, 12, TOPIC, &p, 1, 70); /* top-level error */
    }
    CHECK_EQ(parse(&w, 12, ids, offs, 1, 0, &s), PKC_OK);
    CHECK_EQ(s.calls, 1);
    CHECK_EQ(s.res[0].error_code, 70);
    CHECK_EQ(s.res[0].n_recs, 0);
    pkc_writer_free(&w);
    free(b0);
}

static void
test_read_committed_drops_aborted(void)
{
    uint8_t *txn, *plain, *joined;
    size_t lt = make_batch(2, 0, 42, 1, &txn);   /* aborted producer 42 */
    size_t lp = make_batch(2, 2, -1, 0, &plain);
    int64_t aborted[2] = {42, 0};
    pkc_writer w;
    int32_t ids[1] = {0};
    int64_t offs[1] = {0};
    seen_t s;

    joined = malloc(lt + lp);
    memcpy(joined, txn, lt);
    memcpy(joined + lt, plain, lp);
    pkc_writer_init(&w, 0, 0);
    {
        part_spec p = {0, 0, 4, joined, (int32_t)(lt + lp), aborted, 1};
        build_fetch(&w, 12, TOPIC, &p, 1, 0);
    }
    CHECK_EQ(parse(&w, 12, ids, offs, 1, 1, &s), PKC_OK);
    CHECK_EQ(s.res[0].n_recs, 2);
    CHECK_EQ(s.first_offset[0], 2);
    CHECK_EQ(s.res[0].next_offset, 4);
    /* read_uncommitted shows them. */
    CHECK_EQ(parse(&w, 12, ids, offs, 1, 0, &s), PKC_OK);
    CHECK_EQ(s.res[0].n_recs, 4);
    CHECK_EQ(s.first_offset[0], 0);
    pkc_writer_free(&w);
    free(joined);
    free(txn);
    free(plain);
}

static void
test_bad_crc_keeps_earlier_records(void)
{
    uint8_t *b0, *b1, *joined;
    size_t l0 = make_batch(2, 0, -1, 0, &b0);
    size_t l1 = make_batch(2, 2, -1, 0, &b1);
    pkc_writer w;
    int32_t ids[1] = {0};
    int64_t offs[1] = {0};
    seen_t s;

    joined = malloc(l0 + l1);
    memcpy(joined, b0, l0);
    memcpy(joined + l0, b1, l1);
    joined[l0 + l1 - 3] ^= 0x55; /* inside the second batch's records */
    pkc_writer_init(&w, 0, 0);
    {
        part_spec p = {0, 0, 4, joined, (int32_t)(l0 + l1), NULL, 0};
        build_fetch(&w, 4, TOPIC, &p, 1, 0);
    }
    CHECK_EQ(parse(&w, 4, ids, offs, 1, 0, &s), PKC_OK);
    CHECK_EQ(s.res[0].rec_status, PKC_ERR_CRC);
    CHECK_EQ(s.res[0].n_recs, 2);
    CHECK_EQ(s.res[0].next_offset, 2);
    pkc_writer_free(&w);
    free(joined);
    free(b0);
    free(b1);
}

static void
test_hostile_counts(void)
{
    pkc_writer w;
    int32_t ids[1] = {0};
    int64_t offs[1] = {0};
    seen_t s;

    pkc_writer_init(&w, 0, 0);
    /* v4: 0x7fffffff topics. */
    pkc_write_i32(&w, 0);
    pkc_write_i32(&w, 0x7FFFFFFF);
    CHECK(parse(&w, 4, ids, offs, 1, 0, &s) < 0);
    CHECK_EQ(s.calls, 0);
    /* v12: a compact array count of 2^32-2 partitions. */
    pkc_writer_reset(&w);
    pkc_write_i32(&w, 0);
    pkc_write_i16(&w, 0);
    pkc_write_i32(&w, 0);
    pkc_write_uvarint(&w, 2);
    pkc_write_string(&w, 1, TOPIC, (int32_t)strlen(TOPIC));
    pkc_write_uvarint(&w, 0xFFFFFFFFu);
    CHECK(parse(&w, 12, ids, offs, 1, 0, &s) < 0);
    /* v4: records length past the end. */
    pkc_writer_reset(&w);
    pkc_write_i32(&w, 0);
    pkc_write_array_count(&w, 0, 1);
    pkc_write_string(&w, 0, TOPIC, (int32_t)strlen(TOPIC));
    pkc_write_array_count(&w, 0, 1);
    pkc_write_i32(&w, 0);
    pkc_write_i16(&w, 0);
    pkc_write_i64(&w, 1);
    pkc_write_i64(&w, 1);
    pkc_write_array_count(&w, 0, -1);
    pkc_write_i32(&w, 1 << 30);
    CHECK(parse(&w, 4, ids, offs, 1, 0, &s) < 0);
    pkc_writer_free(&w);
}

static void
test_every_prefix_fails_cleanly(void)
{
    uint8_t *b0, *b1;
    size_t l0 = make_batch(3, 0, -1, 0, &b0);
    size_t l1 = make_batch(2, 10, -1, 0, &b1);
    int64_t aborted[2] = {5, 0};
    pkc_writer w;
    int32_t ids[2] = {0, 1};
    int64_t offs[2] = {0, 10};
    pkc_fetch_partition asked[MAX_ASKED];
    pkc_fetch_request req = request(ids, offs, 2, 1, asked);
    seen_t s;
    int ok = 0;

    pkc_writer_init(&w, 0, 0);
    for (int version = 4; version <= 12; version += 8) {
        part_spec parts[2] = {
            {0, 0, 3, b0, (int32_t)l0, aborted, 1},
            {1, 0, 12, b1, (int32_t)l1, NULL, 0},
        };
        build_fetch(&w, version, TOPIC, parts, 2, 0);
        for (size_t cut = 0; cut < w.len; cut++) {
            char err[256];
            int rc;
            memset(&s, 0, sizeof(s));
            /* A heap copy of exactly `cut` bytes, so ASan sees overreads. */
            uint8_t *prefix = malloc(cut ? cut : 1);
            memcpy(prefix, w.buf, cut);
            rc = pkc_fetch_parse(&req, version, prefix, cut, 1, collect,
                                 &s, err, sizeof(err));
            CHECK(rc < 0);
            CHECK(err[0] != '\0');
            free(prefix);
        }
        CHECK_EQ(parse(&w, version, ids, offs, 2, 1, &s), PKC_OK);
        ok += s.calls;
    }
    CHECK_EQ(ok, 4);
    pkc_writer_free(&w);
    free(b0);
    free(b1);
}

/* ------------------------------------------------------------ request */

typedef struct {
    int64_t max_wait, min_bytes, max_bytes, isolation, part_max;
    char topic[32];
    int n;                   /* partitions seen */
    int32_t partition[MAX_ASKED];
    int64_t offset[MAX_ASKED];
    int64_t epoch[MAX_ASKED];
} request_seen;

static int
request_on_int(void *ctx, const pkc_proto_field *f, int64_t v)
{
    request_seen *r = ctx;

    if (strcmp(f->name, "max_wait_ms") == 0)
        r->max_wait = v;
    else if (strcmp(f->name, "min_bytes") == 0)
        r->min_bytes = v;
    else if (strcmp(f->name, "max_bytes") == 0)
        r->max_bytes = v;
    else if (strcmp(f->name, "isolation_level") == 0)
        r->isolation = v;
    else if (strcmp(f->name, "partition_max_bytes") == 0)
        r->part_max = v;
    else if (strcmp(f->name, "partition") == 0 && r->n < MAX_ASKED)
        r->partition[r->n++] = (int32_t)v;
    else if (strcmp(f->name, "fetch_offset") == 0 && r->n > 0)
        r->offset[r->n - 1] = v;
    else if (strcmp(f->name, "current_leader_epoch") == 0 && r->n > 0)
        r->epoch[r->n - 1] = v;
    return 0;
}

static int
request_on_string(void *ctx, const pkc_proto_field *f, pkc_slice v)
{
    request_seen *r = ctx;

    if (strcmp(f->name, "topic") == 0 && v.len >= 0 &&
        (size_t)v.len < sizeof(r->topic)) {
        memcpy(r->topic, v.ptr, (size_t)v.len);
        r->topic[v.len] = '\0';
    }
    return 0;
}

/* A request encoded at v4 (no leader epoch, classic) and v12 (epochs,
 * flexible) reads back field for field through the proto walker. */
static void
test_request_round_trip(void)
{
    int32_t ids[2] = {3, 1};
    int64_t offs[2] = {42, 7};
    pkc_fetch_partition asked[MAX_ASKED];
    pkc_fetch_request req = request(ids, offs, 2, 1, asked);

    asked[0].leader_epoch = 5;
    req.max_wait_ms = 250;
    req.min_bytes = 1;
    req.max_bytes = 1 << 20;
    req.partition_max_bytes = 65536;
    CHECK_EQ(pkc_fetch_is_flexible(4), 0);
    CHECK_EQ(pkc_fetch_is_flexible(12), 1);
    for (int version = 4; version <= 12; version += 8) {
        pkc_proto_visitor vis;
        pkc_proto_error perr;
        request_seen r;
        pkc_reader rd;
        pkc_writer w;

        pkc_writer_init(&w, 0, 0);
        CHECK_EQ(pkc_fetch_request_encode(&w, version, &req), PKC_OK);
        memset(&r, 0, sizeof(r));
        memset(&vis, 0, sizeof(vis));
        memset(&perr, 0, sizeof(perr));
        vis.ctx = &r;
        vis.on_int = request_on_int;
        vis.on_string = request_on_string;
        pkc_reader_init(&rd, w.buf, w.len);
        CHECK_EQ(pkc_proto_decode(&rd, PKC_PROTO_REQUEST, PKC_API_FETCH,
                                  version, &vis, &perr), 0);
        CHECK_EQ(r.max_wait, 250);
        CHECK_EQ(r.min_bytes, 1);
        CHECK_EQ(r.max_bytes, 1 << 20);
        CHECK_EQ(r.isolation, 1);
        CHECK_EQ(r.part_max, 65536);
        CHECK(strcmp(r.topic, TOPIC) == 0);
        CHECK_EQ(r.n, 2);
        CHECK_EQ(r.partition[0], 3);
        CHECK_EQ(r.offset[0], 42);
        CHECK_EQ(r.partition[1], 1);
        CHECK_EQ(r.offset[1], 7);
        if (version >= 9) {
            CHECK_EQ(r.epoch[0], 5);
            CHECK_EQ(r.epoch[1], -1);
        }
        pkc_writer_free(&w);
    }
}

int
main(void)
{
    RUN(test_request_round_trip);
    RUN(test_two_partitions_both_versions);
    RUN(test_truncated_trailing_batch);
    RUN(test_errors_topics_and_unrequested);
    RUN(test_read_committed_drops_aborted);
    RUN(test_bad_crc_keeps_earlier_records);
    RUN(test_hostile_counts);
    RUN(test_every_prefix_fails_cleanly);
    return pkc_test_summary();
}
