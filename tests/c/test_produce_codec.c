/*
 * test_produce_codec.c - plain-C tests of the Produce codec
 * (csrc/wire/produce_codec.c): requests checked byte by byte with a
 * pkc_reader, responses hand-encoded with a pkc_writer.
 */
#include <stdlib.h>
#include <string.h>

#include "pkc_test.h"
#include "kafka_errors.h"
#include "produce_codec.h"

static pkc_produce_fields fields;

static void
test_fields(void)
{
    char err[128];

    CHECK_EQ(pkc_produce_fields_init(&fields, err, sizeof(err)), PKC_OK);
    CHECK(fields.req_records != NULL && fields.resp_error_message != NULL);
    CHECK_EQ(pkc_produce_is_flexible(3), 0);
    CHECK_EQ(pkc_produce_is_flexible(8), 0);
    CHECK_EQ(pkc_produce_is_flexible(9), 1);
}

static const uint8_t records_a[] = {1, 2, 3};
static const uint8_t records_b[] = {4, 5, 6, 7, 8};

static void
make_request(pkc_produce_request *req, pkc_produce_partition parts[2])
{
    parts[0].index = 3;
    parts[0].records = records_a;
    parts[0].records_len = sizeof(records_a);
    parts[1].index = 0;
    parts[1].records = records_b;
    parts[1].records_len = sizeof(records_b);
    memset(req, 0, sizeof(*req));
    req->acks = -1;
    req->timeout_ms = 1500;
    req->topic = "topic";
    req->topic_len = 5;
    req->partitions = parts;
    req->n_partitions = 2;
}

/* Read one partition's data (compact or classic) and compare. */
static void
check_partition(pkc_reader *r, int compact, const pkc_produce_partition *p)
{
    int32_t index;
    pkc_slice recs;

    pkc_read_i32(r, &index, "index");
    pkc_read_bytes(r, compact, 1, &recs, "records");
    if (compact)
        pkc_read_skip_tags(r, "tags");
    CHECK_EQ(r->status, PKC_OK);
    CHECK_EQ(index, p->index);
    CHECK_EQ(recs.len, (int32_t)p->records_len);
    if (recs.len == (int32_t)p->records_len)
        CHECK_MEM(recs.ptr, p->records, p->records_len);
}

/* Encode at `version` (with TransactionalId `txn_id`, NULL for null) and
 * read it back in that version's layout. */
static void
check_request(int version, int compact, const char *txn_id)
{
    pkc_produce_partition parts[2];
    pkc_produce_request req;
    pkc_proto_error perr;
    pkc_writer w;
    pkc_reader r;
    pkc_slice s;
    int16_t acks;
    int32_t timeout, n;

    make_request(&req, parts);
    req.transactional_id = txn_id;
    pkc_writer_init(&w, 0, 0);
    CHECK_EQ(pkc_produce_encode(&w, &fields, version, &req, &perr), 0);
    pkc_reader_init(&r, w.buf, w.len);
    pkc_read_string(&r, compact, 1, &s, "transactional_id");
    if (txn_id == NULL)
        CHECK_EQ(s.len, -1);
    else
        CHECK(s.len == (int32_t)strlen(txn_id) &&
              memcmp(s.ptr, txn_id, strlen(txn_id)) == 0);
    pkc_read_i16(&r, &acks, "acks");
    pkc_read_i32(&r, &timeout, "timeout_ms");
    CHECK_EQ(acks, -1);
    CHECK_EQ(timeout, 1500);
    pkc_read_array_count(&r, compact, 0, 1, 10, &n, "topic_data");
    CHECK_EQ(n, 1);
    pkc_read_string(&r, compact, 0, &s, "name");
    CHECK(s.len == 5 && memcmp(s.ptr, "topic", 5) == 0);
    pkc_read_array_count(&r, compact, 0, 1, 10, &n, "partition_data");
    CHECK_EQ(n, 2);
    check_partition(&r, compact, &parts[0]);
    check_partition(&r, compact, &parts[1]);
    if (compact) {
        pkc_read_skip_tags(&r, "topic tags");
        pkc_read_skip_tags(&r, "tags");
    }
    CHECK_EQ(r.status, PKC_OK);
    CHECK_EQ(r.pos, r.end);
    pkc_writer_free(&w);
}

static void
test_request_classic(void)
{
    check_request(3, 0, NULL);
}

static void
test_request_flexible(void)
{
    check_request(9, 1, NULL);
}

/* A transactional producer's requests carry its transactional id. */
static void
test_request_transactional(void)
{
    check_request(3, 0, "txn-app-1");
    check_request(9, 1, "txn-app-1");
}

/* One partition's answer in the Produce v8 layout. */
static void
write_partition(pkc_writer *w, int32_t index, int16_t code, int64_t offset,
                int64_t append_time, const char *message)
{
    pkc_write_i32(w, index);
    pkc_write_i16(w, code);
    pkc_write_i64(w, offset);
    pkc_write_i64(w, append_time);
    pkc_write_i64(w, 0);              /* LogStartOffset */
    pkc_write_array_count(w, 0, 0);   /* RecordErrors */
    pkc_write_string(w, 0, message,
                     message ? (int32_t)strlen(message) : -1);
}

/* A Produce v8 response: two partitions of "topic", one of "other". */
static void
write_response(pkc_writer *w)
{
    pkc_writer_init(w, 0, 0);
    pkc_write_array_count(w, 0, 2);
    pkc_write_string(w, 0, "other", 5);
    pkc_write_array_count(w, 0, 1);
    write_partition(w, 3, 0, 999, -1, NULL);
    pkc_write_string(w, 0, "topic", 5);
    pkc_write_array_count(w, 0, 2);
    write_partition(w, 3, 0, 42, 1700, NULL);
    write_partition(w, 0, PKC_KERR_NOT_LEADER_OR_FOLLOWER, -1, -1,
                    "not\x01leader");
    pkc_write_i32(w, 0);              /* ThrottleTimeMs */
}

static void
test_response(void)
{
    const pkc_produce_partition_result *res;
    pkc_produce_response resp;
    pkc_proto_error perr;
    pkc_writer w;

    write_response(&w);
    CHECK_EQ(pkc_produce_decode(&fields, 8, w.buf, w.len, "topic", 5, &resp,
                                &perr), 0);
    CHECK_EQ(resp.n, 2);
    res = pkc_produce_response_find(&resp, 3);
    CHECK(res != NULL);
    if (res != NULL) {
        CHECK_EQ(res->error_code, 0);
        CHECK_EQ(res->base_offset, 42);
        CHECK_EQ(res->log_append_time, 1700);
        CHECK_EQ(res->message[0], '\0');
    }
    res = pkc_produce_response_find(&resp, 0);
    CHECK(res != NULL);
    if (res != NULL) {
        CHECK_EQ(res->error_code, PKC_KERR_NOT_LEADER_OR_FOLLOWER);
        CHECK_EQ(res->base_offset, -1);
        CHECK(strcmp(res->message, "not?leader") == 0);
    }
    CHECK(pkc_produce_response_find(&resp, 7) == NULL);
    pkc_produce_response_free(&resp);
    CHECK(resp.results == NULL && resp.n == 0);
    pkc_writer_free(&w);
}

/* Every prefix of a valid response, and a trailing byte, is an error and
 * leaves the output empty. */
static void
test_response_malformed(void)
{
    pkc_produce_response resp;
    pkc_proto_error perr;
    pkc_writer w;

    write_response(&w);
    for (size_t len = 0; len < w.len; len++) {
        int rc = pkc_produce_decode(&fields, 8, w.buf, len, "topic", 5,
                                    &resp, &perr);

        CHECK(rc < 0 && rc != PKC_ERR_NOMEM);
        CHECK(resp.results == NULL && resp.n == 0);
    }
    pkc_write_i8(&w, 0);
    CHECK(pkc_produce_decode(&fields, 8, w.buf, w.len, "topic", 5, &resp,
                             &perr) < 0);
    CHECK(resp.results == NULL);
    pkc_writer_free(&w);
}

int
main(void)
{
    RUN(test_fields);
    RUN(test_request_classic);
    RUN(test_request_flexible);
    RUN(test_request_transactional);
    RUN(test_response);
    RUN(test_response_malformed);
    return pkc_test_summary();
}
