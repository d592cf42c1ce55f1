/*
 * produce_codec.c - Produce requests and responses (see produce_codec.h).
 */
#include "produce_codec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------- the field rows */

/* The field `name` of struct `s` into *dst, or PKC_ERR_INVALID. */
static int
produce_field(const pkc_proto_field **dst, const pkc_proto_struct *s,
              const char *name, char *errbuf, size_t errlen)
{
    *dst = pkc_proto_struct_field(s, name);
    if (*dst == NULL) {
        snprintf(errbuf, errlen, "protocol table lacks field %s", name);
        return PKC_ERR_INVALID;
    }
    return PKC_OK;
}

/* The struct that field `f` holds into *dst, or PKC_ERR_INVALID. */
static int
produce_sub(const pkc_proto_struct **dst, const pkc_proto_field *f,
            char *errbuf, size_t errlen)
{
    if (f->sub < 0) {
        snprintf(errbuf, errlen, "protocol field %s is not a struct",
                 f->name);
        return PKC_ERR_INVALID;
    }
    *dst = pkc_proto_struct_at((size_t)f->sub);
    return PKC_OK;
}

static int
produce_request_fields(pkc_produce_fields *fields, const pkc_proto_api *api,
                       char *errbuf, size_t errlen)
{
    const pkc_proto_struct *s = pkc_proto_message(api, PKC_PROTO_REQUEST);
    const pkc_proto_struct *td, *pd;

    if (produce_field(&fields->req_transactional_id, s, "transactional_id",
                      errbuf, errlen) ||
        produce_field(&fields->req_acks, s, "acks", errbuf, errlen) ||
        produce_field(&fields->req_timeout_ms, s, "timeout_ms", errbuf,
                      errlen) ||
        produce_field(&fields->req_topic_data, s, "topic_data", errbuf,
                      errlen) ||
        produce_sub(&td, fields->req_topic_data, errbuf, errlen) ||
        produce_field(&fields->req_name, td, "name", errbuf, errlen) ||
        produce_field(&fields->req_partition_data, td, "partition_data",
                      errbuf, errlen) ||
        produce_sub(&pd, fields->req_partition_data, errbuf, errlen) ||
        produce_field(&fields->req_index, pd, "index", errbuf, errlen) ||
        produce_field(&fields->req_records, pd, "records", errbuf, errlen))
        return PKC_ERR_INVALID;
    return PKC_OK;
}

static int
produce_response_fields(pkc_produce_fields *fields,
                        const pkc_proto_api *api, char *errbuf,
                        size_t errlen)
{
    const pkc_proto_struct *s = pkc_proto_message(api, PKC_PROTO_RESPONSE);
    const pkc_proto_struct *rs, *pr;

    if (produce_field(&fields->resp_responses, s, "responses", errbuf,
                      errlen) ||
        produce_sub(&rs, fields->resp_responses, errbuf, errlen) ||
        produce_field(&fields->resp_name, rs, "name", errbuf, errlen) ||
        produce_field(&fields->resp_partition_responses, rs,
                      "partition_responses", errbuf, errlen) ||
        produce_sub(&pr, fields->resp_partition_responses, errbuf,
                    errlen) ||
        produce_field(&fields->resp_index, pr, "index", errbuf, errlen) ||
        produce_field(&fields->resp_error_code, pr, "error_code", errbuf,
                      errlen) ||
        produce_field(&fields->resp_base_offset, pr, "base_offset", errbuf,
                      errlen) ||
        produce_field(&fields->resp_log_append_time_ms, pr,
                      "log_append_time_ms", errbuf, errlen) ||
        produce_field(&fields->resp_error_message, pr, "error_message",
                      errbuf, errlen))
        return PKC_ERR_INVALID;
    return PKC_OK;
}

int
pkc_produce_fields_init(pkc_produce_fields *fields, char *errbuf,
                        size_t errlen)
{
    const pkc_proto_api *api = pkc_proto_api_find(PKC_API_PRODUCE);

    if (api == NULL) {
        snprintf(errbuf, errlen, "protocol table lacks Produce");
        return PKC_ERR_INVALID;
    }
    if (produce_request_fields(fields, api, errbuf, errlen) != PKC_OK)
        return PKC_ERR_INVALID;
    return produce_response_fields(fields, api, errbuf, errlen);
}

int
pkc_produce_is_flexible(int version)
{
    return pkc_proto_is_flexible(pkc_proto_api_find(PKC_API_PRODUCE),
                                 version);
}

/* ------------------------------------- the request: a pkc_proto_source */

typedef struct {
    const pkc_produce_fields *fields;
    const pkc_produce_request *req;
    int32_t elem;               /* the current PartitionData element */
} produce_src;

static int
produce_src_has(void *ctx, const pkc_proto_field *f)
{
    produce_src *src = ctx;
    const pkc_produce_fields *fields = src->fields;

    return f == fields->req_transactional_id || f == fields->req_acks ||
           f == fields->req_timeout_ms || f == fields->req_topic_data ||
           f == fields->req_name || f == fields->req_partition_data ||
           f == fields->req_index || f == fields->req_records;
}

static int
produce_src_get_int(void *ctx, const pkc_proto_field *f, int64_t *out)
{
    produce_src *src = ctx;

    if (f == src->fields->req_acks)
        *out = src->req->acks;
    else if (f == src->fields->req_timeout_ms)
        *out = src->req->timeout_ms;
    else if (f == src->fields->req_index)
        *out = src->req->partitions[src->elem].index;
    else
        return PKC_PROTO_BADTYPE;
    return 0;
}

static int
produce_src_get_bytes(void *ctx, const pkc_proto_field *f, pkc_slice *out)
{
    produce_src *src = ctx;

    if (f == src->fields->req_transactional_id) {
        const char *id = src->req->transactional_id;

        out->ptr = (const uint8_t *)id;
        out->len = id != NULL ? (int32_t)strlen(id) : -1;
    }
    else if (f == src->fields->req_name) {
        out->ptr = (const uint8_t *)src->req->topic;
        out->len = (int32_t)src->req->topic_len;
    }
    else if (f == src->fields->req_records) {
        const pkc_produce_partition *part = &src->req->partitions[src->elem];

        out->ptr = part->records;
        out->len = (int32_t)part->records_len;
    }
    else {
        return PKC_PROTO_BADTYPE;
    }
    return 0;
}

static int
produce_src_enter_array(void *ctx, const pkc_proto_field *f, int32_t *count)
{
    produce_src *src = ctx;

    if (f == src->fields->req_topic_data)
        *count = 1;
    else if (f == src->fields->req_partition_data)
        *count = src->req->n_partitions;
    else
        *count = 0;
    return 0;
}

static int
produce_src_enter_element(void *ctx, const pkc_proto_field *f, int32_t i)
{
    produce_src *src = ctx;

    if (f == src->fields->req_partition_data)
        src->elem = i;
    return 0;
}

int
pkc_produce_encode(pkc_writer *w, const pkc_produce_fields *fields,
                   int version, const pkc_produce_request *req,
                   pkc_proto_error *err)
{
    produce_src src;
    pkc_proto_source ps;

    memset(&src, 0, sizeof(src));
    src.fields = fields;
    src.req = req;
    memset(&ps, 0, sizeof(ps));
    ps.ctx = &src;
    ps.has = produce_src_has;
    ps.get_int = produce_src_get_int;
    ps.get_bytes = produce_src_get_bytes;
    ps.enter_array = produce_src_enter_array;
    ps.enter_element = produce_src_enter_element;
    return pkc_proto_encode(w, PKC_PROTO_REQUEST, PKC_API_PRODUCE, version,
                            &ps, err);
}

/* ----------------------------------- the response: a pkc_proto_visitor */

typedef struct {
    const pkc_produce_fields *fields;
    const char *topic;
    size_t topic_len;
    int topic_match;                  /* the current topic is ours */
    pkc_produce_partition_result cur; /* the partition being read */
    pkc_produce_response *out;
    int nomem;
} produce_vis;

static int
produce_vis_begin_struct(void *ctx, const pkc_proto_field *f,
                         const pkc_proto_struct *s)
{
    produce_vis *vis = ctx;

    (void)s;
    if (f == vis->fields->resp_responses) {
        vis->topic_match = 0;
    }
    else if (f == vis->fields->resp_partition_responses) {
        memset(&vis->cur, 0, sizeof(vis->cur));
        vis->cur.base_offset = -1;
        vis->cur.log_append_time = -1;
        vis->cur.index = -1;
    }
    return 0;
}

static int
produce_vis_end_struct(void *ctx, const pkc_proto_field *f,
                       const pkc_proto_struct *s)
{
    produce_vis *vis = ctx;
    pkc_produce_response *out = vis->out;

    (void)s;
    if (f != vis->fields->resp_partition_responses || !vis->topic_match)
        return 0;
    if (out->n == out->cap) {
        size_t ncap = out->cap ? out->cap * 2 : 16;
        pkc_produce_partition_result *more =
            realloc(out->results, ncap * sizeof(*more));

        if (more == NULL) {
            vis->nomem = 1;
            return PKC_ERR_NOMEM;
        }
        out->results = more;
        out->cap = ncap;
    }
    out->results[out->n++] = vis->cur;
    return 0;
}

static int
produce_vis_on_int(void *ctx, const pkc_proto_field *f, int64_t val)
{
    produce_vis *vis = ctx;

    if (f == vis->fields->resp_index)
        vis->cur.index = (int32_t)val;
    else if (f == vis->fields->resp_error_code)
        vis->cur.error_code = (int16_t)val;
    else if (f == vis->fields->resp_base_offset)
        vis->cur.base_offset = val;
    else if (f == vis->fields->resp_log_append_time_ms)
        vis->cur.log_append_time = val;
    return 0;
}

static int
produce_vis_on_string(void *ctx, const pkc_proto_field *f, pkc_slice s)
{
    produce_vis *vis = ctx;

    if (f == vis->fields->resp_name) {
        vis->topic_match = s.len >= 0 && (size_t)s.len == vis->topic_len &&
                           memcmp(s.ptr, vis->topic, vis->topic_len) == 0;
    }
    else if (f == vis->fields->resp_error_message && s.len > 0) {
        size_t n = (size_t)s.len;

        if (n >= sizeof(vis->cur.message))
            n = sizeof(vis->cur.message) - 1;
        for (size_t i = 0; i < n; i++) {
            uint8_t c = s.ptr[i];
            vis->cur.message[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
        }
        vis->cur.message[n] = '\0';
    }
    return 0;
}

int
pkc_produce_decode(const pkc_produce_fields *fields, int version,
                   const uint8_t *body, size_t len, const char *topic,
                   size_t topic_len, pkc_produce_response *out,
                   pkc_proto_error *err)
{
    produce_vis vis;
    pkc_proto_visitor pv;
    pkc_reader rd;
    int rc;

    memset(out, 0, sizeof(*out));
    memset(&vis, 0, sizeof(vis));
    vis.fields = fields;
    vis.topic = topic;
    vis.topic_len = topic_len;
    vis.out = out;
    memset(&pv, 0, sizeof(pv));
    pv.ctx = &vis;
    pv.begin_struct = produce_vis_begin_struct;
    pv.end_struct = produce_vis_end_struct;
    pv.on_int = produce_vis_on_int;
    pv.on_string = produce_vis_on_string;
    pkc_reader_init(&rd, body, len);
    rc = pkc_proto_decode(&rd, PKC_PROTO_RESPONSE, PKC_API_PRODUCE, version,
                          &pv, err);
    if (rc == 0)
        return 0;
    pkc_produce_response_free(out);
    return vis.nomem ? PKC_ERR_NOMEM : rc;
}

const pkc_produce_partition_result *
pkc_produce_response_find(const pkc_produce_response *resp, int32_t index)
{
    for (size_t i = 0; i < resp->n; i++)
        if (resp->results[i].index == index)
            return &resp->results[i];
    return NULL;
}

void
pkc_produce_response_free(pkc_produce_response *resp)
{
    free(resp->results);
    memset(resp, 0, sizeof(*resp));
}
