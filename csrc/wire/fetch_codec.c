/*
 * fetch_codec.c - the Fetch request source, the Fetch response visitor
 * and the per-partition records stream over the proto tables (see
 * fetch_codec.h).
 */
#include "fetch_codec.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bufpool.h"
#include "proto.h"

/* --------------------------------------------------------- field table */

/* The fields of FetchRequest and FetchResponse this codec reads or
 * writes, looked up once by name; the walker's callbacks tell them apart
 * by pointer. */
static struct {
    const pkc_proto_field *MaxWaitMs, *MinBytes, *MaxBytes, *IsolationLevel,
        *Topics, *Topic, *Partitions, *Partition, *CurrentLeaderEpoch,
        *FetchOffset, *PartitionMaxBytes;
} FetchRequest;

static struct {
    const pkc_proto_field *ErrorCode, *Responses, *Topic, *Partitions,
        *PartitionIndex, *PartitionErrorCode, *HighWatermark,
        *LastStableOffset, *LogStartOffset, *AbortedTransactions, *Records,
        *ProducerId, *FirstOffset;
} FetchResponse;

static int fetch_fields_ok;
static pthread_once_t fetch_fields_once = PTHREAD_ONCE_INIT;

/* Field `name` of struct `st`; clears *ok when there is none. */
static const pkc_proto_field *
fetch_field(const pkc_proto_struct *st, const char *name, int *ok)
{
    const pkc_proto_field *f = st ? pkc_proto_struct_field(st, name) : NULL;

    if (f == NULL)
        *ok = 0;
    return f;
}

/* The struct the elements of array field `f` are made of, or NULL. */
static const pkc_proto_struct *
fetch_sub(const pkc_proto_field *f)
{
    if (f == NULL || f->sub < 0)
        return NULL;
    return pkc_proto_struct_at((size_t)f->sub);
}

static int
fetch_request_fields_init(const pkc_proto_struct *msg)
{
    const pkc_proto_struct *topic, *part;
    int ok = 1;

    FetchRequest.MaxWaitMs = fetch_field(msg, "max_wait_ms", &ok);
    FetchRequest.MinBytes = fetch_field(msg, "min_bytes", &ok);
    FetchRequest.MaxBytes = fetch_field(msg, "max_bytes", &ok);
    FetchRequest.IsolationLevel = fetch_field(msg, "isolation_level", &ok);
    FetchRequest.Topics = fetch_field(msg, "topics", &ok);
    topic = fetch_sub(FetchRequest.Topics);
    FetchRequest.Topic = fetch_field(topic, "topic", &ok);
    FetchRequest.Partitions = fetch_field(topic, "partitions", &ok);
    part = fetch_sub(FetchRequest.Partitions);
    FetchRequest.Partition = fetch_field(part, "partition", &ok);
    FetchRequest.CurrentLeaderEpoch =
        fetch_field(part, "current_leader_epoch", &ok);
    FetchRequest.FetchOffset = fetch_field(part, "fetch_offset", &ok);
    FetchRequest.PartitionMaxBytes =
        fetch_field(part, "partition_max_bytes", &ok);
    return ok;
}

static int
fetch_response_fields_init(const pkc_proto_struct *msg)
{
    const pkc_proto_struct *topic, *part, *aborted;
    int ok = 1;

    FetchResponse.ErrorCode = fetch_field(msg, "error_code", &ok);
    FetchResponse.Responses = fetch_field(msg, "responses", &ok);
    topic = fetch_sub(FetchResponse.Responses);
    FetchResponse.Topic = fetch_field(topic, "topic", &ok);
    FetchResponse.Partitions = fetch_field(topic, "partitions", &ok);
    part = fetch_sub(FetchResponse.Partitions);
    FetchResponse.PartitionIndex = fetch_field(part, "partition_index", &ok);
    FetchResponse.PartitionErrorCode = fetch_field(part, "error_code", &ok);
    FetchResponse.HighWatermark = fetch_field(part, "high_watermark", &ok);
    FetchResponse.LastStableOffset =
        fetch_field(part, "last_stable_offset", &ok);
    FetchResponse.LogStartOffset =
        fetch_field(part, "log_start_offset", &ok);
    FetchResponse.AbortedTransactions =
        fetch_field(part, "aborted_transactions", &ok);
    FetchResponse.Records = fetch_field(part, "records", &ok);
    aborted = fetch_sub(FetchResponse.AbortedTransactions);
    FetchResponse.ProducerId = fetch_field(aborted, "producer_id", &ok);
    FetchResponse.FirstOffset = fetch_field(aborted, "first_offset", &ok);
    return ok;
}

static void
fetch_fields_init(void)
{
    const pkc_proto_api *fetch = pkc_proto_api_find(PKC_API_FETCH);
    int request_ok, response_ok;

    if (fetch == NULL)
        return;
    request_ok = fetch_request_fields_init(
        pkc_proto_message(fetch, PKC_PROTO_REQUEST));
    response_ok = fetch_response_fields_init(
        pkc_proto_message(fetch, PKC_PROTO_RESPONSE));
    fetch_fields_ok = request_ok && response_ok;
}

int
pkc_fetch_codec_ready(void)
{
    pthread_once(&fetch_fields_once, fetch_fields_init);
    return fetch_fields_ok;
}

/* A walker status as a pkc_status: a callback's refusal or a field the
 * version cannot carry is PKC_ERR_INVALID. */
static int
fetch_walk_status(int rc)
{
    if (rc > 0 || rc == PKC_PROTO_ABORT || rc == PKC_PROTO_BADTYPE)
        return PKC_ERR_INVALID;
    return rc;
}

/* ----------------------------------------------------- request source */

/* The walker's source over one request: the partition being written. */
typedef struct {
    const pkc_fetch_request *req;
    size_t idx;
} fetch_source;

static int
fetch_req_has(void *ctx, const pkc_proto_field *f)
{
    (void)ctx;
    return f == FetchRequest.MaxWaitMs || f == FetchRequest.MinBytes ||
           f == FetchRequest.MaxBytes || f == FetchRequest.IsolationLevel ||
           f == FetchRequest.Topics || f == FetchRequest.Topic ||
           f == FetchRequest.Partitions || f == FetchRequest.Partition ||
           f == FetchRequest.CurrentLeaderEpoch ||
           f == FetchRequest.FetchOffset ||
           f == FetchRequest.PartitionMaxBytes;
}

static int
fetch_req_get_int(void *ctx, const pkc_proto_field *f, int64_t *out)
{
    const fetch_source *src = ctx;
    const pkc_fetch_request *req = src->req;
    const pkc_fetch_partition *part =
        src->idx < req->n_parts ? &req->parts[src->idx] : NULL;

    if (f == FetchRequest.MaxWaitMs)
        *out = req->max_wait_ms;
    else if (f == FetchRequest.MinBytes)
        *out = req->min_bytes;
    else if (f == FetchRequest.MaxBytes)
        *out = req->max_bytes;
    else if (f == FetchRequest.IsolationLevel)
        *out = req->isolation_level;
    else if (part != NULL && f == FetchRequest.Partition)
        *out = part->partition;
    else if (part != NULL && f == FetchRequest.CurrentLeaderEpoch)
        *out = part->leader_epoch;
    else if (part != NULL && f == FetchRequest.FetchOffset)
        *out = part->fetch_offset;
    else if (f == FetchRequest.PartitionMaxBytes)
        *out = req->partition_max_bytes;
    else
        return PKC_PROTO_BADTYPE;
    return 0;
}

static int
fetch_req_get_float(void *ctx, const pkc_proto_field *f, double *out)
{
    (void)ctx;
    (void)f;
    *out = 0.0;
    return PKC_PROTO_BADTYPE;
}

static int
fetch_req_get_bytes(void *ctx, const pkc_proto_field *f, pkc_slice *out)
{
    const fetch_source *src = ctx;

    if (f != FetchRequest.Topic)
        return PKC_PROTO_BADTYPE;
    out->ptr = (const uint8_t *)src->req->topic;
    out->len = (int32_t)src->req->topic_len;
    return 0;
}

static int
fetch_req_enter_array(void *ctx, const pkc_proto_field *f, int32_t *count)
{
    const fetch_source *src = ctx;

    if (f == FetchRequest.Topics)
        *count = 1;
    else if (f == FetchRequest.Partitions)
        *count = (int32_t)src->req->n_parts;
    else
        *count = 0;
    return 0;
}

static int
fetch_req_enter_element(void *ctx, const pkc_proto_field *f, int32_t i)
{
    fetch_source *src = ctx;

    if (f == FetchRequest.Partitions)
        src->idx = (size_t)i;
    return 0;
}

int
pkc_fetch_is_flexible(int version)
{
    return pkc_proto_is_flexible(pkc_proto_api_find(PKC_API_FETCH),
                                 version);
}

int
pkc_fetch_request_encode(pkc_writer *w, int version,
                         const pkc_fetch_request *req)
{
    fetch_source src_state = {req, 0};
    pkc_proto_source src;
    pkc_proto_error perr;

    if (!pkc_fetch_codec_ready())
        return PKC_ERR_UNSUPPORTED;
    memset(&src, 0, sizeof(src));
    src.ctx = &src_state;
    src.has = fetch_req_has;
    src.get_int = fetch_req_get_int;
    src.get_float = fetch_req_get_float;
    src.get_bytes = fetch_req_get_bytes;
    src.enter_array = fetch_req_enter_array;
    src.enter_element = fetch_req_enter_element;
    memset(&perr, 0, sizeof(perr));
    return fetch_walk_status(pkc_proto_encode(
        w, PKC_PROTO_REQUEST, PKC_API_FETCH, version, &src, &perr));
}

/* --------------------------------------------------- response visitor */

/* The walker's visitor over one answer. */
typedef struct {
    pkc_fetch_response *resp;
    const pkc_fetch_request *req;
    int topic_ok;          /* in a Responses element of the request's topic */
    pkc_fetch_answer cur;  /* the partition being read */
    pkc_aborted_txn txn;   /* the aborted transaction being read */
    uint8_t *seen;         /* per requested partition: answered already */
} fetch_visit;

/* Keep `cur` if it answers a requested partition not answered yet. */
static void
fetch_resp_keep_partition(fetch_visit *visit)
{
    const pkc_fetch_request *req = visit->req;
    pkc_fetch_response *resp = visit->resp;

    for (size_t i = 0; i < req->n_parts; i++) {
        if (req->parts[i].partition == visit->cur.partition &&
            !visit->seen[i]) {
            visit->seen[i] = 1;
            visit->cur.req_index = i;
            resp->parts[resp->n_parts++] = visit->cur;
            break;
        }
    }
}

/* Append the aborted transaction just read to the current partition's. */
static int
fetch_resp_keep_aborted(fetch_visit *visit)
{
    pkc_fetch_response *resp = visit->resp;

    if (resp->n_aborted == resp->aborted_cap) {
        size_t cap = resp->aborted_cap ? resp->aborted_cap * 2 : 16;
        pkc_aborted_txn *ab = realloc(resp->aborted, cap * sizeof(*ab));
        if (ab == NULL)
            return PKC_ERR_NOMEM;
        resp->aborted = ab;
        resp->aborted_cap = cap;
    }
    resp->aborted[resp->n_aborted++] = visit->txn;
    visit->cur.n_aborted++;
    return 0;
}

static int
fetch_resp_begin_struct(void *ctx, const pkc_proto_field *f,
                        const pkc_proto_struct *st)
{
    fetch_visit *visit = ctx;

    (void)st;
    if (f == FetchResponse.Responses) {
        visit->topic_ok = 0;
    }
    else if (f == FetchResponse.Partitions) {
        memset(&visit->cur, 0, sizeof(visit->cur));
        visit->cur.records.len = -1;
        visit->cur.high_watermark = -1;
        visit->cur.last_stable_offset = -1;
        visit->cur.log_start_offset = -1;
        visit->cur.aborted_first = visit->resp->n_aborted;
    }
    else if (f == FetchResponse.AbortedTransactions) {
        visit->txn.producer_id = -1;
        visit->txn.first_offset = -1;
    }
    return 0;
}

static int
fetch_resp_end_struct(void *ctx, const pkc_proto_field *f,
                      const pkc_proto_struct *st)
{
    fetch_visit *visit = ctx;

    (void)st;
    if (f == FetchResponse.Partitions && visit->topic_ok)
        fetch_resp_keep_partition(visit);
    else if (f == FetchResponse.AbortedTransactions &&
             visit->resp->read_committed)
        return fetch_resp_keep_aborted(visit);
    return 0;
}

static int
fetch_resp_on_int(void *ctx, const pkc_proto_field *f, int64_t val)
{
    fetch_visit *visit = ctx;

    if (f == FetchResponse.PartitionIndex)
        visit->cur.partition = (int32_t)val;
    else if (f == FetchResponse.PartitionErrorCode)
        visit->cur.error_code = (int16_t)val;
    else if (f == FetchResponse.HighWatermark)
        visit->cur.high_watermark = val;
    else if (f == FetchResponse.LastStableOffset)
        visit->cur.last_stable_offset = val;
    else if (f == FetchResponse.LogStartOffset)
        visit->cur.log_start_offset = val;
    else if (f == FetchResponse.ProducerId)
        visit->txn.producer_id = val;
    else if (f == FetchResponse.FirstOffset)
        visit->txn.first_offset = val;
    else if (f == FetchResponse.ErrorCode)
        visit->resp->error_code = (int16_t)val;
    return 0;
}

static int
fetch_resp_on_string(void *ctx, const pkc_proto_field *f, pkc_slice val)
{
    fetch_visit *visit = ctx;
    const pkc_fetch_request *req = visit->req;

    if (f == FetchResponse.Topic)
        visit->topic_ok = val.len >= 0 && (size_t)val.len == req->topic_len &&
                      memcmp(val.ptr, req->topic, req->topic_len) == 0;
    return 0;
}

static int
fetch_resp_on_bytes(void *ctx, const pkc_proto_field *f, pkc_slice val)
{
    fetch_visit *visit = ctx;

    if (f == FetchResponse.Records)
        visit->cur.records = val;
    return 0;
}

static int
fetch_resp_on_null(void *ctx, const pkc_proto_field *f)
{
    fetch_visit *visit = ctx;

    if (f == FetchResponse.Records)
        visit->cur.records.len = -1;
    return 0;
}

/* Walk the body with the visitor; errbuf names the failing field. */
static int
fetch_resp_walk(fetch_visit *visit, int version, const uint8_t *body,
                size_t len, char *errbuf, size_t errlen)
{
    pkc_proto_visitor vis;
    pkc_proto_error perr;
    pkc_reader r;
    int rc;

    memset(&vis, 0, sizeof(vis));
    vis.ctx = visit;
    vis.begin_struct = fetch_resp_begin_struct;
    vis.end_struct = fetch_resp_end_struct;
    vis.on_int = fetch_resp_on_int;
    vis.on_string = fetch_resp_on_string;
    vis.on_bytes = fetch_resp_on_bytes;
    vis.on_null = fetch_resp_on_null;
    memset(&perr, 0, sizeof(perr));
    pkc_reader_init(&r, body, len);
    rc = pkc_proto_decode(&r, PKC_PROTO_RESPONSE, PKC_API_FETCH, version,
                          &vis, &perr);
    if (rc == 0)
        return PKC_OK;
    rc = fetch_walk_status(rc);
    snprintf(errbuf, errlen,
             "Fetch v%d response: %s in field '%s' at byte %zu of %zu",
             version, pkc_status_str(rc), perr.path, perr.offset, len);
    return rc;
}

int
pkc_fetch_response_parse(pkc_fetch_response *resp,
                         const pkc_fetch_request *req, int version,
                         const uint8_t *body, size_t len, char *errbuf,
                         size_t errlen)
{
    size_t n = req->n_parts ? req->n_parts : 1;
    fetch_visit visit;
    int rc;

    memset(resp, 0, sizeof(*resp));
    if (!pkc_fetch_codec_ready()) {
        snprintf(errbuf, errlen, "the protocol tables lack Fetch fields");
        return PKC_ERR_UNSUPPORTED;
    }
    resp->read_committed = req->isolation_level == 1;
    memset(&visit, 0, sizeof(visit));
    visit.resp = resp;
    visit.req = req;
    resp->parts = malloc(n * sizeof(*resp->parts));
    visit.seen = calloc(n, 1);
    if (resp->parts == NULL || visit.seen == NULL) {
        free(visit.seen);
        snprintf(errbuf, errlen, "out of memory decoding a Fetch response");
        return PKC_ERR_NOMEM;
    }
    rc = fetch_resp_walk(&visit, version, body, len, errbuf, errlen);
    free(visit.seen);
    return rc;
}

void
pkc_fetch_response_free(pkc_fetch_response *resp)
{
    free(resp->parts);
    free(resp->aborted);
    memset(resp, 0, sizeof(*resp));
}

/* ----------------------------------------------------- records stream */

void
pkc_fetch_records_init(pkc_fetch_records *stream,
                       const pkc_fetch_response *resp, size_t i,
                       int64_t fetch_offset,
                       const pkc_fetch_records_opts *opts, char *errbuf,
                       size_t errlen)
{
    const pkc_fetch_answer *a = &resp->parts[i];
    pkc_records_opts ro;

    memset(stream, 0, sizeof(*stream));
    stream->partition = a->partition;
    stream->fetch_offset = fetch_offset;
    stream->max_records = opts->max_records;
    stream->last_offset = -1;
    stream->errbuf = errbuf;
    stream->errlen = errlen;
    if (a->records.len <= 0) {
        stream->done = 1;
        return;
    }
    memset(&ro, 0, sizeof(ro));
    ro.fetch_offset = fetch_offset;
    ro.read_committed = resp->read_committed;
    ro.aborted = resp->read_committed && resp->aborted != NULL
                     ? resp->aborted + a->aborted_first
                     : NULL;
    ro.n_aborted = resp->read_committed ? a->n_aborted : 0;
    ro.max_decompressed = opts->max_decompressed;
    ro.skip_crc = !opts->check_crcs;
    ro.arena = opts->arena;
    stream->inited = 1;
    if (pkc_records_iter_init(&stream->it, a->records.ptr,
                              (size_t)a->records.len, &ro) != PKC_OK) {
        stream->status = PKC_ERR_NOMEM;
        stream->done = 1;
        snprintf(errbuf, errlen, "out of memory decoding records");
    }
}

/* The records iterator failed with `rc`: say where. */
static void
fetch_records_failed(pkc_fetch_records *stream, int rc)
{
    const pkc_records_iter *it = &stream->it;

    stream->status = rc;
    stream->done = 1;
    snprintf(stream->errbuf, stream->errlen,
             "records of partition %d: %s in field '%s' at byte %zu (batch "
             "at offset %lld)",
             (int)stream->partition, pkc_status_str(rc),
             it->r.err_field ? it->r.err_field : "?", it->r.err_offset,
             (long long)it->err_offset);
}

size_t
pkc_fetch_records_next(pkc_fetch_records *stream, pkc_record *out,
                       size_t max)
{
    size_t k = 0;

    while (!stream->done && k < max) {
        int rc;
        if (stream->n >= stream->max_records) {
            stream->capped = 1;
            stream->done = 1;
            break;
        }
        rc = pkc_records_next(&stream->it, &out[k]);
        if (rc == 0) {
            stream->done = 1;
            break;
        }
        if (rc < 0) {
            fetch_records_failed(stream, rc);
            break;
        }
        stream->last_offset = out[k].offset;
        stream->n++;
        k++;
    }
    return k;
}

void
pkc_fetch_records_abort(pkc_fetch_records *stream, int status)
{
    stream->status = status;
    stream->done = 1;
}

void
pkc_fetch_records_finish(pkc_fetch_records *stream, int64_t *next_offset,
                         int *truncated_empty)
{
    int64_t asked = stream->fetch_offset;
    int64_t after_last = stream->last_offset + 1;
    int64_t next = asked;

    if (stream->inited) {
        int ok = stream->status == PKC_OK;
        if (!stream->capped && ok && stream->it.next_offset > next)
            next = stream->it.next_offset;
        if (stream->n > 0 && after_last > next)
            next = after_last;
        if (stream->capped || !ok)
            next = stream->n > 0 ? after_last : asked;
        *truncated_empty = stream->n == 0 && stream->it.truncated && ok &&
                           next == asked;
        pkc_records_iter_free(&stream->it);
        stream->inited = 0;
    }
    else {
        *truncated_empty = 0;
    }
    *next_offset = next;
}

/* ------------------------------------------------------ all at once */

/* Decode resp->parts[i] whole and hand it to `cb`; returns cb's value. */
static int
fetch_parse_partition(const pkc_fetch_response *resp, size_t i,
                      int64_t fetch_offset, int check_crcs,
                      pkc_fetch_part_cb cb, void *ctx)
{
    const pkc_fetch_answer *a = &resp->parts[i];
    pkc_fetch_part_result res;
    pkc_recvec rv = {NULL, NULL, 0, 0}; /* plain malloc */
    pkc_arena arena;
    char rerr[256] = "";
    int rc;

    pkc_arena_init(&arena, 0);
    memset(&res, 0, sizeof(res));
    res.partition = a->partition;
    res.error_code = resp->error_code ? resp->error_code : a->error_code;
    res.high_watermark = a->high_watermark;
    res.last_stable_offset = a->last_stable_offset;
    res.log_start_offset = a->log_start_offset;
    res.next_offset = fetch_offset;
    if (res.error_code == 0) {
        pkc_fetch_records_opts opts = {check_crcs, 0, &arena,
                                       PKC_FETCH_MAX_RECORDS};
        pkc_fetch_records stream;

        pkc_fetch_records_init(&stream, resp, i, fetch_offset, &opts, rerr,
                               sizeof(rerr));
        while (!stream.done) {
            if (pkc_recvec_reserve(&rv, 256) != PKC_OK) {
                pkc_fetch_records_abort(&stream, PKC_ERR_NOMEM);
                break;
            }
            rv.n += pkc_fetch_records_next(&stream, rv.v + rv.n,
                                           rv.cap - rv.n);
        }
        pkc_fetch_records_finish(&stream, &res.next_offset,
                                 &res.truncated_empty);
        res.rec_status = stream.status;
        res.n_recs = rv.n;
    }
    res.recs = rv.v;
    rc = cb(ctx, &res);
    pkc_recvec_free(&rv);
    pkc_arena_free(&arena);
    return rc;
}

int
pkc_fetch_parse(const pkc_fetch_request *req, int version,
                const uint8_t *body, size_t len, int check_crcs,
                pkc_fetch_part_cb cb, void *ctx, char *errbuf, size_t errlen)
{
    pkc_fetch_response resp;
    int rc;

    rc = pkc_fetch_response_parse(&resp, req, version, body, len, errbuf,
                                  errlen);
    for (size_t i = 0; rc == PKC_OK && i < resp.n_parts; i++) {
        int64_t offset = req->parts[resp.parts[i].req_index].fetch_offset;
        rc = fetch_parse_partition(&resp, i, offset, check_crcs, cb, ctx);
    }
    pkc_fetch_response_free(&resp);
    return rc;
}
