/*
 * fetchloop_answer.c - what the fetch engine does with one Fetch answer:
 * its records decoded and queued piece by piece, then each requested
 * partition's position, watermarks and errors (events).  Private to the
 * engine (see fetchloop_int.h).
 */
#include "fetchloop_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka_errors.h"

/* Records per piece queued while an answer is decoded. */
#define FL_PIECE 1024

/* What became of one requested partition, between decoding the answer
 * and applying it. */
typedef struct {
    long answer;           /* index in resp.parts, -1: not answered */
    size_t nrec;           /* records queued from this answer */
    int64_t next_offset;
    int truncated_empty;
    int status;            /* PKC_OK or why its records stopped */
    char err[256];
} answer_outcome;

/* An answer being handled. */
typedef struct {
    pkc_fetch_request req;    /* the request it answers (b->req) */
    pkc_fetch_response resp;
    int status;               /* PKC_OK, or the answer did not parse */
    char err[384];            /* why */
    pkc_answer_buf *buf;      /* the body; the records point into it */
    answer_outcome *outcome;  /* per requested partition */
    fl_chunk *drop;           /* pieces no partition waits for any more */
} answer_job;

/* Without mu: copy the body and set every outcome to "not answered".
 * PKC_OK or PKC_ERR_NOMEM. */
static int
answer_init(pkc_fl *fl, fl_broker *b, const pkc_response *resp,
            answer_job *job)
{
    size_t n = b->req_n;

    memset(job, 0, sizeof(*job));
    fl_fetch_request(fl, b, &job->req);
    job->buf = pkc_answer_buf_new(fl->pool, resp->body, resp->body_len,
                                  fl->arena_max);
    job->outcome = calloc(n ? n : 1, sizeof(*job->outcome));
    if (job->buf == NULL || job->outcome == NULL)
        return PKC_ERR_NOMEM;
    for (size_t k = 0; k < n; k++) {
        job->outcome[k].answer = -1;
        job->outcome[k].status = PKC_OK;
        job->outcome[k].next_offset = b->req[k].fetch_offset;
    }
    return PKC_OK;
}

static void
answer_free(answer_job *job)
{
    fl_chunk_free_list(job->drop);
    free(job->outcome);
    pkc_fetch_response_free(&job->resp);
    pkc_answer_buf_release(job->buf);
}

/* A chunk of the `got` records in `blk` (a pool block of `cap` bytes),
 * with a reference to `buf`; NULL when out of memory. */
static fl_chunk *
answer_chunk_new(pkc_answer_buf *buf, pkc_record *blk, size_t cap,
                 size_t got)
{
    fl_chunk *c = malloc(sizeof(*c));

    if (c == NULL)
        return NULL;
    c->next = NULL;
    c->buf = buf;
    pkc_answer_buf_ref(buf);
    c->recs = blk;
    c->recs_bytes = cap;
    c->n = got;
    c->pos = 0;
    return c;
}

/* Without mu: append a piece of request partition k's records to the
 * partition's queue if it is still fetched from this request, else to the
 * job's drop list. */
static void
answer_queue_piece(pkc_fl *fl, fl_broker *b, size_t k, fl_chunk *c,
                   answer_job *job)
{
    const fl_req_origin *o = &b->req_origin[k];
    fl_part *p;
    int wake;

    fl_lock(fl);
    p = &fl->parts[o->part_index];
    if (p->gen != o->gen || p->state != PKC_FL_ACTIVE || p->leader != b) {
        fl_unlock(fl);
        c->next = job->drop;
        job->drop = c;
        return;
    }
    wake = fl_enqueue(fl, (long)o->part_index, c);
    fl_unlock(fl);
    if (wake) /* after unlocking: the consumer can take mu at once */
        pthread_cond_broadcast(&fl->cv);
}

/* Without mu: decode request partition k's records piece by piece,
 * queueing each piece as soon as it is decoded. */
static void
answer_stream_partition(pkc_fl *fl, fl_broker *b, size_t k,
                        answer_job *job)
{
    answer_outcome *out = &job->outcome[k];
    pkc_fetch_records_opts opts = {fl->cfg.check_crcs,
                                   fl->cfg.max_decompressed,
                                   &job->buf->arena, fl->chunk_max};
    int64_t last_queued = -1;
    pkc_fetch_records stream;
    int lost = 0;

    pkc_fetch_records_init(&stream, &job->resp, (size_t)out->answer,
                           b->req[k].fetch_offset, &opts, out->err,
                           sizeof(out->err));
    while (!stream.done) {
        size_t cap, got;
        pkc_record *blk = pkc_bufpool_get(fl->pool,
                                          FL_PIECE * sizeof(pkc_record), &cap);
        fl_chunk *c;

        if (blk == NULL) {
            pkc_fetch_records_abort(&stream, PKC_ERR_NOMEM);
            snprintf(out->err, sizeof(out->err), "out of memory");
            break;
        }
        got = pkc_fetch_records_next(&stream, blk, cap / sizeof(pkc_record));
        if (got == 0) {
            pkc_bufpool_put(fl->pool, blk, cap);
            continue;
        }
        c = answer_chunk_new(job->buf, blk, cap, got);
        if (c == NULL) {
            pkc_bufpool_put(fl->pool, blk, cap);
            lost = 1;
            break;
        }
        out->nrec += got;
        last_queued = blk[got - 1].offset;
        answer_queue_piece(fl, b, k, c, job);
    }
    pkc_fetch_records_finish(&stream, &out->next_offset,
                             &out->truncated_empty);
    out->status = stream.status;
    if (lost) {
        /* The last piece could not be queued: go on after the last
         * record that was. */
        out->status = PKC_ERR_NOMEM;
        snprintf(out->err, sizeof(out->err), "out of memory");
        out->next_offset = out->nrec ? last_queued + 1
                                     : b->req[k].fetch_offset;
        out->truncated_empty = 0;
    }
}

/* Without mu: parse the body and queue the records of every partition
 * answered without an error. */
static void
answer_decode(pkc_fl *fl, fl_broker *b, answer_job *job)
{
    const pkc_fetch_response *resp = &job->resp;

    job->status = pkc_fetch_response_parse(
        &job->resp, &job->req, b->version, job->buf->data, job->buf->len,
        job->err, sizeof(job->err));
    if (job->status != PKC_OK)
        return;
    for (size_t j = 0; j < resp->n_parts; j++)
        job->outcome[resp->parts[j].req_index].answer = (long)j;
    if (resp->error_code != 0)
        return;
    for (size_t k = 0; k < job->req.n_parts; k++) {
        long j = job->outcome[k].answer;
        if (j >= 0 && resp->parts[j].error_code == 0)
            answer_stream_partition(fl, b, k, job);
    }
}

/* Under mu: the broker answered Kafka error `code` for partition p, for
 * the whole request when `whole`: the partition waits for a new leader
 * when the error says metadata is stale, else it pauses. */
static void
answer_kafka_error(pkc_fl *fl, fl_broker *b, fl_part *p, int code,
                   int whole)
{
    p->state = pkc_kafka_error_refresh_metadata(code) ? PKC_FL_WAIT_LEADER
                                                      : PKC_FL_PAUSED;
    if (whole)
        fl_post(fl, p, PKC_FL_EV_KAFKA, code,
                "Fetch from broker %d (%s:%d): Kafka error %d for the "
                "whole request", (int)b->node_id, b->host, b->port, code);
    else
        fl_post(fl, p, PKC_FL_EV_KAFKA, code,
                "Fetch from broker %d (%s:%d) for partition %d at "
                "offset %lld: Kafka error %d",
                (int)b->node_id, b->host, b->port, (int)p->id,
                (long long)p->fetch_offset, code);
}

/* Under mu: partition p's records of this answer are queued: move its
 * position on, and note what the answer could not carry. */
static void
answer_advance(pkc_fl *fl, fl_broker *b, fl_part *p,
               const pkc_fetch_answer *a, const answer_outcome *out)
{
    if (out->next_offset > p->fetch_offset)
        p->fetch_offset = out->next_offset;
    p->last_answer_n = out->nrec;
    /* Data the answer did not carry (a batch over the byte limits, or
     * the answer's MaxBytes spent on other partitions): ask for this
     * partition first next time, where KIP-74 guarantees one whole
     * batch. */
    if (out->truncated_empty ||
        (out->nrec == 0 && a->high_watermark > p->fetch_offset))
        p->ask_first = 1;
    if (out->status != PKC_OK) {
        p->state = PKC_FL_PAUSED;
        fl_post(fl, p, PKC_FL_EV_DECODE, out->status,
                "Fetch from broker %d for partition %d at offset "
                "%lld: %s", (int)b->node_id, (int)p->id,
                (long long)p->fetch_offset, out->err);
    }
}

/* Under mu: what the answer means for request partition k, if it is
 * still fetched from this request: watermarks, position, events. */
static void
answer_apply(pkc_fl *fl, fl_broker *b, size_t k, const answer_job *job)
{
    const fl_req_origin *o = &b->req_origin[k];
    const answer_outcome *out = &job->outcome[k];
    fl_part *p = &fl->parts[o->part_index];
    const pkc_fetch_answer *a;

    if (p->gen != o->gen)
        return;
    p->inflight = NULL;
    if (p->state != PKC_FL_ACTIVE || p->leader != b)
        return;
    if (job->status != PKC_OK) {
        p->state = PKC_FL_PAUSED;
        fl_post(fl, p, PKC_FL_EV_DECODE, job->status, "broker %d: %s",
                (int)b->node_id, job->err);
        return;
    }
    if (job->resp.error_code != 0) {
        answer_kafka_error(fl, b, p, job->resp.error_code, 1);
        return;
    }
    if (out->answer < 0)
        return; /* not answered: asked again next time */
    a = &job->resp.parts[out->answer];
    if (a->high_watermark >= 0)
        p->high_watermark = a->high_watermark;
    if (a->last_stable_offset >= 0)
        p->last_stable_offset = a->last_stable_offset;
    if (a->log_start_offset >= 0)
        p->log_start_offset = a->log_start_offset;
    if (a->error_code != 0)
        answer_kafka_error(fl, b, p, a->error_code, 0);
    else
        answer_advance(fl, b, p, a, out);
}

/* Without mu: handle the answer to the Fetch in flight (the caller drops
 * the connection when there was no memory to take it). */
int
fl_on_fetch(pkc_fl *fl, fl_broker *b, const pkc_response *resp)
{
    answer_job job;

    if (answer_init(fl, b, resp, &job) != PKC_OK) {
        answer_free(&job);
        return PKC_ERR_NOMEM;
    }
    answer_decode(fl, b, &job);

    fl_lock(fl);
    fl->stats.responses++;
    fl->stats.bytes_received += resp->body_len;
    for (size_t k = 0; k < job.req.n_parts; k++)
        answer_apply(fl, b, k, &job);
    fl_unlock(fl);

    b->answered++;
    b->fetching = 0;
    answer_free(&job);
    return PKC_OK;
}
