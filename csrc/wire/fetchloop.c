/*
 * fetchloop.c - the consumer's fetch engine: one pthread, one connection
 * per leader broker, records decoded and queued in C.  See fetchloop.h.
 */
#include "fetchloop.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api_support.h"
#include "bufpool.h"
#include "kafka_errors.h"
#include "link.h"
#include "proto.h"
#include "reactor.h"

#define FL_HOST_MAX 256
/* Setting a connection up (connect, TLS, ApiVersions, SASL) is given up
 * after at most this long (it never blocks the thread: see
 * fl_connect_start). */
#define FL_CONNECT_CAP_MS 10000
/* Idle tick of the thread's poll. */
#define FL_TICK_MS 1000
/* Records decoded per partition per answer are capped at
 * max(queued_max_messages, this); the rest is fetched again later. */
#define FL_CHUNK_RECORDS_MIN 65536

/* --------------------------------------------------------------- chunks */

/* A piece of one partition's records from one answer; the record views
 * point into its buf.  The record block comes from the buf's pool. */
typedef struct fl_chunk {
    struct fl_chunk *next;
    pkc_answer_buf *buf;    /* one reference */
    pkc_record *recs;   /* owned */
    size_t recs_bytes;
    size_t n, pos;
} fl_chunk;

static void
fl_chunk_free_list(fl_chunk *c)
{
    while (c != NULL) {
        fl_chunk *next = c->next;
        pkc_bufpool_put(c->buf->pool, c->recs, c->recs_bytes);
        pkc_answer_buf_release(c->buf);
        free(c);
        c = next;
    }
}

/* ------------------------------------------------------ engine structs */

/* One partition named in a Fetch request. */
typedef struct {
    size_t pidx;
    int32_t partition;
    int32_t epoch;
    int64_t offset;
    uint32_t gen;
} fl_req_entry;

typedef struct fl_broker {
    int32_t node_id;
    char host[FL_HOST_MAX]; /* under mu */
    int port;
    int reconfig;           /* host/port changed: reconnect (under mu) */
    int64_t retry_at;       /* no connect before this (under mu) */

    /* Owned by the fetch thread while it runs.  The link is DOWN, being
     * set up (connect, TLS, ApiVersions, SASL; the thread polls it until
     * its deadline), or READY: then idle, or with a Fetch in flight. */
    pkc_link link;
    int link_inited;
    int fetching;           /* a Fetch is in flight */
    int16_t version;        /* the Fetch version of this connection */
    int64_t fetch_deadline; /* no answer by then: the connection is dropped */
    int answered;           /* answers since the last connect */
    int64_t last_silent;    /* last silent reconnect */
    int want_connect;
    int want_send;          /* req[] holds a new request to send */
    int want_step;          /* a re-authentication is due (KIP-368) */
    char chost[FL_HOST_MAX];
    int cport;
    fl_req_entry *req;      /* the partitions of the request in flight */
    size_t req_n, req_cap;
    size_t rr;              /* rotation of the partition order */
} fl_broker;

typedef struct {
    int32_t id;
    int state;
    fl_broker *leader;
    int32_t leader_epoch;
    int64_t fetch_offset;
    int64_t last_consumed;
    int64_t hw, lso, log_start;
    uint32_t gen;
    fl_broker *inflight;    /* broker with a Fetch naming it, or NULL */
    int prio;               /* put first in the next request */
    int64_t resume_at;
    fl_chunk *head, *tail;
    size_t queued;
    int ev_pending;
    uint64_t ev_seq;
    pkc_fl_event ev;
    long rnext, rprev;      /* ready ring (indices) */
    int in_ring;
} fl_part;

struct pkc_fl {
    pkc_fl_config cfg;
    char *client_id;
    char *topic;
    char *source_host;
    char *software_version;  /* ApiVersions' ClientSoftwareVersion */
    size_t arena_max;
    size_t chunk_max;
    pkc_bufpool *pool;           /* blocks reused across answers */

    pthread_mutex_t mu;
    pthread_cond_t cv;       /* consumers wait here */
    pthread_t thread;
    int thread_running;
    int stop_in_progress;    /* a pkc_fl_stop call is under way (joining
                                the thread, resetting the partitions):
                                other stop and start calls wait on cv
                                until it is 0 */
    int stopping;            /* the thread must exit */
    int stopped;             /* not running: waiters return -1 */
    unsigned interrupt_gen;
    int waiters;

    pkc_security *security;  /* a reference, or NULL: plain TCP */
    pkc_reactor reactor;     /* the thread's poll set and wake-up fd */
    int reactor_ok;
    int wake_pending;

    fl_part *parts;
    size_t nparts, parts_cap;
    long ready;              /* next partition to serve, -1: none */

    fl_broker **brokers;
    size_t nbrokers, brokers_cap;

    atomic_int n_events;
    uint64_t ev_counter;
    pkc_fl_stats stats;

    /* Scratch of the fetch thread. */
    fl_broker **tb;
    size_t ntb, tb_cap;
};

/* ------------------------------------------------- proto field lookups */

static struct {
    int ok;
    /* FetchRequest */
    const pkc_proto_field *rq_max_wait, *rq_min_bytes, *rq_max_bytes,
        *rq_isolation, *rq_topics, *rq_t_topic, *rq_t_partitions,
        *rq_p_partition, *rq_p_epoch, *rq_p_offset, *rq_p_max_bytes;
    /* FetchResponse */
    const pkc_proto_field *rs_error, *rs_responses, *rs_t_topic,
        *rs_t_partitions, *rs_p_index, *rs_p_error, *rs_p_hw, *rs_p_lso,
        *rs_p_log_start, *rs_p_aborted, *rs_p_records, *rs_a_producer,
        *rs_a_first;
} F;

static pthread_once_t F_once = PTHREAD_ONCE_INIT;

static const pkc_proto_struct *
fl_sub(const pkc_proto_field *f)
{
    if (f == NULL || f->sub < 0)
        return NULL;
    return pkc_proto_struct_at((size_t)f->sub);
}

static const pkc_proto_field *
fl_field(const pkc_proto_struct *s, const char *name)
{
    return s ? pkc_proto_struct_field(s, name) : NULL;
}

static void
fl_fields_init(void)
{
    const pkc_proto_api *fetch = pkc_proto_api_find(PKC_API_FETCH);
    const pkc_proto_struct *s, *t, *p, *a;

    if (fetch == NULL)
        return;
    s = pkc_proto_message(fetch, PKC_PROTO_REQUEST);
    F.rq_max_wait = fl_field(s, "max_wait_ms");
    F.rq_min_bytes = fl_field(s, "min_bytes");
    F.rq_max_bytes = fl_field(s, "max_bytes");
    F.rq_isolation = fl_field(s, "isolation_level");
    F.rq_topics = fl_field(s, "topics");
    t = fl_sub(F.rq_topics);
    F.rq_t_topic = fl_field(t, "topic");
    F.rq_t_partitions = fl_field(t, "partitions");
    p = fl_sub(F.rq_t_partitions);
    F.rq_p_partition = fl_field(p, "partition");
    F.rq_p_epoch = fl_field(p, "current_leader_epoch");
    F.rq_p_offset = fl_field(p, "fetch_offset");
    F.rq_p_max_bytes = fl_field(p, "partition_max_bytes");

    s = pkc_proto_message(fetch, PKC_PROTO_RESPONSE);
    F.rs_error = fl_field(s, "error_code");
    F.rs_responses = fl_field(s, "responses");
    t = fl_sub(F.rs_responses);
    F.rs_t_topic = fl_field(t, "topic");
    F.rs_t_partitions = fl_field(t, "partitions");
    p = fl_sub(F.rs_t_partitions);
    F.rs_p_index = fl_field(p, "partition_index");
    F.rs_p_error = fl_field(p, "error_code");
    F.rs_p_hw = fl_field(p, "high_watermark");
    F.rs_p_lso = fl_field(p, "last_stable_offset");
    F.rs_p_log_start = fl_field(p, "log_start_offset");
    F.rs_p_aborted = fl_field(p, "aborted_transactions");
    F.rs_p_records = fl_field(p, "records");
    a = fl_sub(F.rs_p_aborted);
    F.rs_a_producer = fl_field(a, "producer_id");
    F.rs_a_first = fl_field(a, "first_offset");

    F.ok = F.rq_max_wait && F.rq_min_bytes && F.rq_max_bytes &&
           F.rq_isolation && F.rq_topics && F.rq_t_topic &&
           F.rq_t_partitions && F.rq_p_partition && F.rq_p_epoch &&
           F.rq_p_offset && F.rq_p_max_bytes && F.rs_error &&
           F.rs_responses && F.rs_t_topic && F.rs_t_partitions &&
           F.rs_p_index && F.rs_p_error && F.rs_p_hw && F.rs_p_lso &&
           F.rs_p_log_start && F.rs_p_aborted && F.rs_p_records &&
           F.rs_a_producer && F.rs_a_first;
}

static int
fl_fields(void)
{
    pthread_once(&F_once, fl_fields_init);
    return F.ok;
}

/* ------------------------------------------------ FetchRequest source */

typedef struct {
    const char *topic;
    size_t topic_len;
    const fl_req_entry *ents;
    size_t n;
    size_t idx;
    int32_t max_wait, min_bytes, max_bytes, pmax;
    int8_t isolation;
} fl_src;

static int
fl_src_has(void *ctx, const pkc_proto_field *f)
{
    (void)ctx;
    return f == F.rq_max_wait || f == F.rq_min_bytes ||
           f == F.rq_max_bytes || f == F.rq_isolation ||
           f == F.rq_topics || f == F.rq_t_topic ||
           f == F.rq_t_partitions || f == F.rq_p_partition ||
           f == F.rq_p_epoch || f == F.rq_p_offset ||
           f == F.rq_p_max_bytes;
}

static int
fl_src_get_int(void *ctx, const pkc_proto_field *f, int64_t *out)
{
    fl_src *s = ctx;
    const fl_req_entry *e = s->idx < s->n ? &s->ents[s->idx] : NULL;

    if (f == F.rq_max_wait)
        *out = s->max_wait;
    else if (f == F.rq_min_bytes)
        *out = s->min_bytes;
    else if (f == F.rq_max_bytes)
        *out = s->max_bytes;
    else if (f == F.rq_isolation)
        *out = s->isolation;
    else if (e != NULL && f == F.rq_p_partition)
        *out = e->partition;
    else if (e != NULL && f == F.rq_p_epoch)
        *out = e->epoch;
    else if (e != NULL && f == F.rq_p_offset)
        *out = e->offset;
    else if (f == F.rq_p_max_bytes)
        *out = s->pmax;
    else
        return PKC_PROTO_BADTYPE;
    return 0;
}

static int
fl_src_get_float(void *ctx, const pkc_proto_field *f, double *out)
{
    (void)ctx;
    (void)f;
    *out = 0.0;
    return PKC_PROTO_BADTYPE;
}

static int
fl_src_get_bytes(void *ctx, const pkc_proto_field *f, pkc_slice *out)
{
    fl_src *s = ctx;

    if (f != F.rq_t_topic)
        return PKC_PROTO_BADTYPE;
    out->ptr = (const uint8_t *)s->topic;
    out->len = (int32_t)s->topic_len;
    return 0;
}

static int
fl_src_enter_array(void *ctx, const pkc_proto_field *f, int32_t *count)
{
    fl_src *s = ctx;

    if (f == F.rq_topics)
        *count = 1;
    else if (f == F.rq_t_partitions)
        *count = (int32_t)s->n;
    else
        *count = 0;
    return 0;
}

static int
fl_src_enter_element(void *ctx, const pkc_proto_field *f, int32_t i)
{
    fl_src *s = ctx;

    if (f == F.rq_t_partitions)
        s->idx = (size_t)i;
    return 0;
}

/* ---------------------------------------------- FetchResponse visitor */

typedef struct {
    int32_t partition;
    int16_t error_code;
    int64_t hw, lso, log_start;
    pkc_slice records;
    size_t ab_first, ab_count;
} fl_presult;

typedef struct {
    const char *topic;
    size_t topic_len;
    const int32_t *ids;   /* requested partitions */
    size_t n;
    int read_committed;
    int topic_ok;
    fl_presult cur;
    pkc_aborted_txn txn;
    fl_presult *res;      /* capacity n */
    size_t *res_req;      /* request index of each result */
    size_t nres;
    uint8_t *seen;        /* n flags */
    pkc_aborted_txn *ab;
    size_t nab, abcap;
    int16_t top_error;
} fl_rvis;

static int
fl_rv_begin_struct(void *ctx, const pkc_proto_field *f,
                   const pkc_proto_struct *s)
{
    fl_rvis *v = ctx;

    (void)s;
    if (f == F.rs_responses) {
        v->topic_ok = 0;
    }
    else if (f == F.rs_t_partitions) {
        memset(&v->cur, 0, sizeof(v->cur));
        v->cur.records.len = -1;
        v->cur.hw = v->cur.lso = v->cur.log_start = -1;
        v->cur.ab_first = v->nab;
    }
    else if (f == F.rs_p_aborted) {
        v->txn.producer_id = -1;
        v->txn.first_offset = -1;
    }
    return 0;
}

static int
fl_rv_end_struct(void *ctx, const pkc_proto_field *f,
                 const pkc_proto_struct *s)
{
    fl_rvis *v = ctx;

    (void)s;
    if (f == F.rs_t_partitions) {
        if (!v->topic_ok)
            return 0;
        for (size_t i = 0; i < v->n; i++) {
            if (v->ids[i] == v->cur.partition && !v->seen[i]) {
                v->seen[i] = 1;
                v->res[v->nres] = v->cur;
                v->res_req[v->nres] = i;
                v->nres++;
                break;
            }
        }
    }
    else if (f == F.rs_p_aborted && v->read_committed) {
        if (v->nab == v->abcap) {
            size_t cap = v->abcap ? v->abcap * 2 : 16;
            pkc_aborted_txn *ab = realloc(v->ab, cap * sizeof(*ab));
            if (ab == NULL)
                return PKC_ERR_NOMEM;
            v->ab = ab;
            v->abcap = cap;
        }
        v->ab[v->nab++] = v->txn;
        v->cur.ab_count++;
    }
    return 0;
}

static int
fl_rv_on_int(void *ctx, const pkc_proto_field *f, int64_t val)
{
    fl_rvis *v = ctx;

    if (f == F.rs_p_index)
        v->cur.partition = (int32_t)val;
    else if (f == F.rs_p_error)
        v->cur.error_code = (int16_t)val;
    else if (f == F.rs_p_hw)
        v->cur.hw = val;
    else if (f == F.rs_p_lso)
        v->cur.lso = val;
    else if (f == F.rs_p_log_start)
        v->cur.log_start = val;
    else if (f == F.rs_a_producer)
        v->txn.producer_id = val;
    else if (f == F.rs_a_first)
        v->txn.first_offset = val;
    else if (f == F.rs_error)
        v->top_error = (int16_t)val;
    return 0;
}

static int
fl_rv_on_string(void *ctx, const pkc_proto_field *f, pkc_slice s)
{
    fl_rvis *v = ctx;

    if (f == F.rs_t_topic)
        v->topic_ok = s.len >= 0 && (size_t)s.len == v->topic_len &&
                      memcmp(s.ptr, v->topic, v->topic_len) == 0;
    return 0;
}

static int
fl_rv_on_bytes(void *ctx, const pkc_proto_field *f, pkc_slice s)
{
    fl_rvis *v = ctx;

    if (f == F.rs_p_records)
        v->cur.records = s;
    return 0;
}

static int
fl_rv_on_null(void *ctx, const pkc_proto_field *f)
{
    fl_rvis *v = ctx;

    if (f == F.rs_p_records)
        v->cur.records.len = -1;
    return 0;
}

static void
fl_rvis_free(fl_rvis *v)
{
    free(v->res);
    free(v->res_req);
    free(v->seen);
    free(v->ab);
    memset(v, 0, sizeof(*v));
}

/*
 * Walk a Fetch response body.  On success v->res[0..nres) hold the answers
 * for requested partitions of our topic (each at most once).  Returns a
 * status; errbuf gets a sentence on failure.
 */
static int
fl_parse_response(fl_rvis *v, const uint8_t *body, size_t len, int version,
                  char *errbuf, size_t errlen)
{
    pkc_proto_visitor vis;
    pkc_proto_error perr;
    pkc_reader r;
    int rc;

    memset(&vis, 0, sizeof(vis));
    vis.ctx = v;
    vis.begin_struct = fl_rv_begin_struct;
    vis.end_struct = fl_rv_end_struct;
    vis.on_int = fl_rv_on_int;
    vis.on_string = fl_rv_on_string;
    vis.on_bytes = fl_rv_on_bytes;
    vis.on_null = fl_rv_on_null;

    v->res = malloc((v->n ? v->n : 1) * sizeof(*v->res));
    v->res_req = malloc((v->n ? v->n : 1) * sizeof(*v->res_req));
    v->seen = calloc(v->n ? v->n : 1, 1);
    if (v->res == NULL || v->res_req == NULL || v->seen == NULL) {
        snprintf(errbuf, errlen, "out of memory decoding a Fetch response");
        return PKC_ERR_NOMEM;
    }
    memset(&perr, 0, sizeof(perr));
    pkc_reader_init(&r, body, len);
    rc = pkc_proto_decode(&r, PKC_PROTO_RESPONSE, PKC_API_FETCH, version,
                          &vis, &perr);
    if (rc != 0) {
        if (rc > 0 || rc == PKC_PROTO_ABORT || rc == PKC_PROTO_BADTYPE)
            rc = PKC_ERR_INVALID;
        snprintf(errbuf, errlen,
                 "Fetch v%d response: %s in field '%s' at byte %zu of %zu",
                 version, pkc_status_str(rc), perr.path, perr.offset, len);
        return rc;
    }
    return PKC_OK;
}

/*
 * Decoding one partition's records in pieces, so the engine can queue the
 * first records of an answer while it decodes the rest.
 */
typedef struct {
    pkc_records_iter it;
    int inited;
    int partition;
    int64_t fetch_offset;
    size_t max_recs;     /* stop after this many (fetched again later) */
    size_t n;            /* records delivered so far */
    int64_t last_offset; /* offset of the last record delivered, -1 */
    int status;          /* PKC_OK or the records status */
    int done, capped;
    char *errbuf;
    size_t errlen;
} fl_stream;

static void
fl_stream_init(fl_stream *ds, const fl_presult *pr, const pkc_aborted_txn *ab,
               int64_t fetch_offset, int read_committed, int check_crcs,
               size_t max_decompressed, pkc_arena *arena, size_t max_recs,
               char *errbuf, size_t errlen)
{
    pkc_records_opts opts;

    memset(ds, 0, sizeof(*ds));
    ds->partition = pr->partition;
    ds->fetch_offset = fetch_offset;
    ds->max_recs = max_recs;
    ds->last_offset = -1;
    ds->errbuf = errbuf;
    ds->errlen = errlen;
    if (pr->records.len <= 0) {
        ds->done = 1;
        return;
    }
    memset(&opts, 0, sizeof(opts));
    opts.fetch_offset = fetch_offset;
    opts.read_committed = read_committed;
    opts.aborted = read_committed ? ab : NULL;
    opts.n_aborted = read_committed ? pr->ab_count : 0;
    opts.max_decompressed = max_decompressed;
    opts.skip_crc = !check_crcs;
    opts.arena = arena;
    ds->inited = 1;
    if (pkc_records_iter_init(&ds->it, pr->records.ptr,
                              (size_t)pr->records.len, &opts) != PKC_OK) {
        ds->status = PKC_ERR_NOMEM;
        ds->done = 1;
        snprintf(errbuf, errlen, "out of memory decoding records");
    }
}

/* Up to `max` more records into out[]; returns how many.  ds->done is set
 * once the partition's records are exhausted (or failed). */
static size_t
fl_stream_next(fl_stream *ds, pkc_record *out, size_t max)
{
    size_t k = 0;

    while (!ds->done && k < max) {
        int rc;
        if (ds->n >= ds->max_recs) {
            ds->capped = 1;
            ds->done = 1;
            break;
        }
        rc = pkc_records_next(&ds->it, &out[k]);
        if (rc == 0) {
            ds->done = 1;
            break;
        }
        if (rc < 0) {
            ds->status = rc;
            ds->done = 1;
            snprintf(ds->errbuf, ds->errlen,
                     "records of partition %d: %s in field '%s' at byte "
                     "%zu (batch at offset %lld)",
                     ds->partition, pkc_status_str(rc),
                     ds->it.r.err_field ? ds->it.r.err_field : "?",
                     ds->it.r.err_offset, (long long)ds->it.err_offset);
            break;
        }
        ds->last_offset = out[k].offset;
        ds->n++;
        k++;
    }
    return k;
}

/* After the last piece: the next fetch position and whether the answer
 * held only a partial batch; frees the iterator. */
static void
fl_stream_finish(fl_stream *ds, int64_t *next_offset, int *truncated_empty)
{
    int64_t next = ds->fetch_offset;

    if (ds->inited) {
        if (!ds->capped && ds->status == PKC_OK &&
            ds->it.next_offset > next)
            next = ds->it.next_offset;
        if (ds->n > 0 && ds->last_offset + 1 > next)
            next = ds->last_offset + 1;
        if (ds->capped || ds->status != PKC_OK)
            next = ds->n > 0 ? ds->last_offset + 1 : ds->fetch_offset;
        *truncated_empty = ds->n == 0 && ds->it.truncated &&
                           ds->status == PKC_OK && next == ds->fetch_offset;
        pkc_records_iter_free(&ds->it);
        ds->inited = 0;
    }
    else {
        *truncated_empty = 0;
    }
    *next_offset = next;
}

/* ----------------------------------------------------- public parsing */

int
pkc_fl_parse_fetch(const uint8_t *body, size_t len, int version,
                   const char *topic, size_t topic_len,
                   const int32_t *part_ids, const int64_t *offsets,
                   size_t n, int read_committed, int check_crcs,
                   pkc_fl_part_cb cb, void *ctx, char *errbuf,
                   size_t errlen)
{
    fl_rvis v;
    int rc;

    if (!fl_fields()) {
        snprintf(errbuf, errlen, "the protocol tables lack Fetch fields");
        return PKC_ERR_UNSUPPORTED;
    }
    memset(&v, 0, sizeof(v));
    v.topic = topic;
    v.topic_len = topic_len;
    v.ids = part_ids;
    v.n = n;
    v.read_committed = read_committed;
    rc = fl_parse_response(&v, body, len, version, errbuf, errlen);
    if (rc != PKC_OK)
        goto done;
    for (size_t i = 0; i < v.nres; i++) {
        pkc_fl_part_result res;
        pkc_recvec rv = {NULL, NULL, 0, 0}; /* plain malloc */
        pkc_arena arena;
        char rerr[256] = "";
        int64_t off = offsets[v.res_req[i]];

        pkc_arena_init(&arena, 0);
        memset(&res, 0, sizeof(res));
        res.partition = v.res[i].partition;
        res.error_code = v.top_error ? v.top_error : v.res[i].error_code;
        res.high_watermark = v.res[i].hw;
        res.last_stable_offset = v.res[i].lso;
        res.log_start_offset = v.res[i].log_start;
        res.next_offset = off;
        if (res.error_code == 0) {
            fl_stream ds;
            fl_stream_init(&ds, &v.res[i],
                           v.ab ? v.ab + v.res[i].ab_first : NULL, off,
                           read_committed, check_crcs, 0, &arena,
                           FL_CHUNK_RECORDS_MIN, rerr, sizeof(rerr));
            while (!ds.done) {
                if (pkc_recvec_reserve(&rv, 256) != PKC_OK) {
                    ds.status = PKC_ERR_NOMEM;
                    break;
                }
                rv.n += fl_stream_next(&ds, rv.v + rv.n, rv.cap - rv.n);
            }
            fl_stream_finish(&ds, &res.next_offset, &res.truncated_empty);
            res.rec_status = ds.status;
            res.n_recs = rv.n;
        }
        res.recs = rv.v;
        rc = cb(ctx, &res);
        pkc_recvec_free(&rv);
        pkc_arena_free(&arena);
        if (rc != 0)
            goto done;
    }
    rc = PKC_OK;
done:
    fl_rvis_free(&v);
    return rc;
}

/* ------------------------------------------------------ engine helpers */

static void
fl_lock(pkc_fl *fl)
{
    pthread_mutex_lock(&fl->mu);
}

static void
fl_unlock(pkc_fl *fl)
{
    pthread_mutex_unlock(&fl->mu);
}

static long
fl_find(pkc_fl *fl, int32_t id)
{
    for (size_t i = 0; i < fl->nparts; i++)
        if (fl->parts[i].id == id)
            return (long)i;
    return -1;
}

/* Wake the fetch thread (under mu). */
static void
fl_wake(pkc_fl *fl)
{
    if (!fl->wake_pending && fl->thread_running) {
        fl->wake_pending = 1;
        fl->stats.wakeups++;
        pkc_reactor_wake(&fl->reactor);
    }
}

static void
fl_ring_insert(pkc_fl *fl, long i)
{
    fl_part *p = &fl->parts[i];

    if (p->in_ring)
        return;
    if (fl->ready < 0) {
        p->rnext = p->rprev = i;
        fl->ready = i;
    }
    else {
        long last = fl->parts[fl->ready].rprev;
        p->rnext = fl->ready;
        p->rprev = last;
        fl->parts[last].rnext = i;
        fl->parts[fl->ready].rprev = i;
    }
    p->in_ring = 1;
}

static void
fl_ring_remove(pkc_fl *fl, long i)
{
    fl_part *p = &fl->parts[i];

    if (!p->in_ring)
        return;
    if (p->rnext == i) {
        fl->ready = -1;
    }
    else {
        fl->parts[p->rprev].rnext = p->rnext;
        fl->parts[p->rnext].rprev = p->rprev;
        if (fl->ready == i)
            fl->ready = p->rnext;
    }
    p->rnext = p->rprev = -1;
    p->in_ring = 0;
}

/* Detach a partition's queue (under mu); the caller frees the list after
 * unlocking. */
static fl_chunk *
fl_detach_queue(pkc_fl *fl, long i)
{
    fl_part *p = &fl->parts[i];
    fl_chunk *c = p->head;

    p->head = p->tail = NULL;
    p->queued = 0;
    fl_ring_remove(fl, i);
    return c;
}

/* Post an event for partition p (under mu); at most one is pending. */
static int
fl_post(pkc_fl *fl, fl_part *p, int kind, int code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Returns 1 when the event was posted, 0 when one was pending already. */
static int
fl_post(pkc_fl *fl, fl_part *p, int kind, int code, const char *fmt, ...)
{
    va_list va;

    if (p->ev_pending)
        return 0;
    p->ev.partition = p->id;
    p->ev.kind = kind;
    p->ev.code = code;
    p->ev.kafka_error = 0;
    p->ev.node_id = p->leader ? p->leader->node_id : -1;
    p->ev.offset = p->fetch_offset;
    va_start(va, fmt);
    vsnprintf(p->ev.msg, sizeof(p->ev.msg), fmt, va);
    va_end(va);
    p->ev_pending = 1;
    p->ev_seq = ++fl->ev_counter;
    atomic_fetch_add(&fl->n_events, 1);
    fl->stats.events_posted++;
    if (fl->waiters)
        pthread_cond_broadcast(&fl->cv);
    return 1;
}

/* Under mu: the broker's connection is gone.  Partitions in flight on it
 * are released; with `post`, its ACTIVE partitions wait for a leader and
 * get a CONN event. */
static void
fl_broker_down(pkc_fl *fl, fl_broker *b, int status, const char *why,
               int post, int64_t now)
{
    pkc_link_close(&b->link);
    b->fetching = 0;
    b->answered = 0;
    b->retry_at = post ? now + fl->cfg.backoff_ms : now;
    for (size_t i = 0; i < fl->nparts; i++) {
        fl_part *p = &fl->parts[i];
        if (p->inflight == b)
            p->inflight = NULL;
        if (post && p->leader == b && p->state == PKC_FL_ACTIVE) {
            p->state = PKC_FL_WAIT_LEADER;
            fl_post(fl, p, PKC_FL_EV_CONN, status,
                    "Connection to broker %d (%s:%d) failed while "
                    "fetching partition %d: %s",
                    (int)b->node_id, b->host, b->port, (int)p->id, why);
        }
    }
    if (post)
        fl->stats.conn_failures++;
}

/* Under mu: the broker's connection could not be set up and retrying
 * will not help (TLS, SASL, a broker without a usable Fetch version): its
 * ACTIVE partitions pause with a SETUP event, so the application sees the
 * error once instead of the thread reconnecting in a loop. */
static void
fl_broker_refused(pkc_fl *fl, fl_broker *b, int status, int kafka_error,
                  const char *why, int64_t now)
{
    pkc_link_close(&b->link);
    b->fetching = 0;
    b->answered = 0;
    b->retry_at = now + fl->cfg.backoff_ms;
    for (size_t i = 0; i < fl->nparts; i++) {
        fl_part *p = &fl->parts[i];
        if (p->inflight == b)
            p->inflight = NULL;
        if (p->leader != b || p->state != PKC_FL_ACTIVE)
            continue;
        p->state = PKC_FL_PAUSED;
        if (fl_post(fl, p, PKC_FL_EV_SETUP, status,
                    "Cannot fetch partition %d from broker %d: %s",
                    (int)p->id, (int)b->node_id, why))
            p->ev.kafka_error = kafka_error;
    }
    fl->stats.conn_failures++;
}

/* A connection failure seen by the thread (takes mu).  An established
 * connection that had answered gets one silent reconnect first (brokers
 * close idle connections), at most once per backoff period. */
static void
fl_broker_fail(pkc_fl *fl, fl_broker *b, int status, const char *why)
{
    int64_t now = pkc_now_ms();
    char msg[384];
    int silent;

    snprintf(msg, sizeof(msg), "%s", why && *why ? why :
             pkc_status_str(status));
    fl_lock(fl);
    silent = b->answered > 0 && now - b->last_silent >= fl->cfg.backoff_ms;
    if (silent)
        b->last_silent = now;
    fl_broker_down(fl, b, status, msg, !silent, now);
    fl_unlock(fl);
}

/* The broker's link failed (it is DOWN): a failure that retrying will not
 * fix pauses the broker's partitions, any other is handled like a lost
 * connection. */
static void
fl_link_failed(pkc_fl *fl, fl_broker *b)
{
    char why[sizeof(b->link.error)];

    snprintf(why, sizeof(why), "%s", pkc_link_error(&b->link));
    if (!pkc_link_failure_is_permanent(&b->link)) {
        fl_broker_fail(fl, b, pkc_link_status(&b->link), why);
        return;
    }
    fl_lock(fl);
    fl_broker_refused(fl, b, pkc_link_status(&b->link),
                      pkc_link_kafka_error(&b->link), why, pkc_now_ms());
    fl_unlock(fl);
}

/* ------------------------------------------------------------- config */

void
pkc_fl_config_default(pkc_fl_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->client_id = "pykafka_c";
    cfg->topic = "";
    cfg->max_wait_ms = 100;
    cfg->min_bytes = 1;
    cfg->max_bytes = 52428800;
    cfg->partition_max_bytes = 1048576;
    cfg->isolation_level = 0;
    cfg->queued_max_messages = 2000;
    cfg->socket_timeout_ms = 30000;
    cfg->backoff_ms = 500;
    cfg->max_frame = 0;
    cfg->max_version = PKC_VER_FETCH_MAX;
    cfg->check_crcs = 1;
    cfg->max_decompressed = 0;
    cfg->source_host = NULL;
    cfg->source_port = 0;
    cfg->security = NULL;
    cfg->software_version = NULL;
}

static char *
fl_strdup(const char *s, size_t len)
{
    char *d = malloc(len + 1);

    if (d != NULL) {
        memcpy(d, s, len);
        d[len] = '\0';
    }
    return d;
}

int
pkc_fl_new(const pkc_fl_config *cfg, pkc_fl **out)
{
    pkc_fl *fl = NULL;
    pthread_condattr_t ca;
    const char *cid;

    *out = NULL;
    if (!fl_fields())
        return PKC_ERR_UNSUPPORTED;
    if (cfg->topic == NULL || cfg->topic_len == 0 ||
        cfg->topic_len > 32767 || cfg->max_wait_ms < 0 ||
        cfg->min_bytes < 0 || cfg->max_bytes <= 0 ||
        cfg->partition_max_bytes <= 0 || cfg->queued_max_messages <= 0 ||
        cfg->socket_timeout_ms <= 0 || cfg->backoff_ms < 0 ||
        cfg->isolation_level < 0 || cfg->isolation_level > 1 ||
        cfg->max_version < PKC_VER_FETCH_MIN)
        return PKC_ERR_INVALID;

    fl = calloc(1, sizeof(*fl));
    if (fl == NULL)
        return PKC_ERR_NOMEM;
    fl->reactor.wake_fd = -1;
    fl->cfg = *cfg;
    if (fl->cfg.max_version > PKC_VER_FETCH_MAX)
        fl->cfg.max_version = PKC_VER_FETCH_MAX;
    cid = cfg->client_id ? cfg->client_id : "pykafka_c";
    fl->client_id = fl_strdup(cid, strlen(cid));
    fl->topic = fl_strdup(cfg->topic, cfg->topic_len);
    fl->source_host = fl_strdup(cfg->source_host ? cfg->source_host : "",
                                cfg->source_host ? strlen(cfg->source_host)
                                                 : 0);
    if (fl->client_id == NULL || fl->topic == NULL ||
        fl->source_host == NULL)
        goto nomem;
    fl->cfg.client_id = fl->client_id;
    fl->cfg.topic = fl->topic;
    fl->cfg.source_host = fl->source_host;
    fl->cfg.software_version = NULL; /* used by pkc_fl_new only */
    fl->security = pkc_security_ref(cfg->security);
    fl->chunk_max = (size_t)cfg->queued_max_messages;
    if (fl->chunk_max < FL_CHUNK_RECORDS_MIN)
        fl->chunk_max = FL_CHUNK_RECORDS_MIN;
    /* Decompressed data held per answer: 4x the answer cap, at least one
     * batch's worth. */
    fl->arena_max = (size_t)cfg->max_bytes * 4;
    if (fl->arena_max < (cfg->max_decompressed ? cfg->max_decompressed
                                               : PKC_DEFAULT_MAX_DECOMPRESSED))
        fl->arena_max = cfg->max_decompressed ? cfg->max_decompressed
                                              : PKC_DEFAULT_MAX_DECOMPRESSED;
    fl->ready = -1;
    atomic_init(&fl->n_events, 0);
    fl->stopped = 1;
    fl->pool = pkc_bufpool_new();
    if (fl->pool == NULL)
        goto nomem;

    fl->software_version = fl_strdup(
        cfg->software_version ? cfg->software_version : "0",
        strlen(cfg->software_version ? cfg->software_version : "0"));
    if (fl->software_version == NULL)
        goto nomem;
    if (pkc_reactor_init(&fl->reactor) != PKC_OK) {
        pkc_fl_free(fl);
        return PKC_ERR_IO;
    }
    fl->reactor_ok = 1;
    pthread_mutex_init(&fl->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&fl->cv, &ca);
    pthread_condattr_destroy(&ca);
    *out = fl;
    return PKC_OK;

nomem:
    free(fl->client_id);
    free(fl->topic);
    free(fl->source_host);
    free(fl->software_version);
    pkc_security_unref(fl->security);
    pkc_bufpool_release(fl->pool);
    free(fl);
    return PKC_ERR_NOMEM;
}

void
pkc_fl_free(pkc_fl *fl)
{
    if (fl == NULL)
        return;
    if (fl->reactor_ok) {
        pkc_fl_stop(fl);
        pthread_mutex_destroy(&fl->mu);
        pthread_cond_destroy(&fl->cv);
    }
    for (size_t i = 0; i < fl->nparts; i++)
        fl_chunk_free_list(fl->parts[i].head);
    for (size_t i = 0; i < fl->nbrokers; i++) {
        fl_broker *b = fl->brokers[i];
        if (b->link_inited)
            pkc_link_free(&b->link);
        free(b->req);
        free(b);
    }
    free(fl->brokers);
    free(fl->parts);
    free(fl->tb);
    pkc_reactor_free(&fl->reactor);
    pkc_security_unref(fl->security);
    free(fl->client_id);
    free(fl->topic);
    free(fl->source_host);
    free(fl->software_version);
    pkc_bufpool_release(fl->pool);
    free(fl);
}

int
pkc_fl_add_partition(pkc_fl *fl, int32_t partition)
{
    fl_part *p;
    int rc = PKC_OK;

    fl_lock(fl);
    if (fl->thread_running || fl_find(fl, partition) >= 0) {
        rc = PKC_ERR_INVALID;
        goto done;
    }
    if (fl->nparts == fl->parts_cap) {
        size_t cap = fl->parts_cap ? fl->parts_cap * 2 : 8;
        fl_part *np = realloc(fl->parts, cap * sizeof(*np));
        if (np == NULL) {
            rc = PKC_ERR_NOMEM;
            goto done;
        }
        fl->parts = np;
        fl->parts_cap = cap;
    }
    p = &fl->parts[fl->nparts++];
    memset(p, 0, sizeof(*p));
    p->id = partition;
    p->state = PKC_FL_WAIT_LEADER;
    p->leader_epoch = -1;
    p->fetch_offset = 0;
    p->last_consumed = -1;
    p->hw = p->lso = p->log_start = -1;
    p->rnext = p->rprev = -1;
done:
    fl_unlock(fl);
    return rc;
}

/* ------------------------------------------------------------ control */

/* A broker's link, set up as the engine's config says. */
static int
fl_link_init(pkc_fl *fl, pkc_link *link)
{
    pkc_link_config lc;
    int32_t setup_ms = fl->cfg.socket_timeout_ms;

    if (setup_ms > FL_CONNECT_CAP_MS)
        setup_ms = FL_CONNECT_CAP_MS;
    memset(&lc, 0, sizeof(lc));
    lc.client_id = fl->client_id;
    lc.max_frame = fl->cfg.max_frame;
    lc.source_host = fl->source_host;
    lc.source_port = fl->cfg.source_port;
    lc.setup_timeout_ms = setup_ms;
    lc.security = fl->security;
    lc.software_name = "pykafka-c";
    lc.software_version = fl->software_version;
    return pkc_link_init(link, &lc);
}

static fl_broker *
fl_get_broker(pkc_fl *fl, int32_t node_id, const char *host, int port,
              int *rc)
{
    fl_broker *b;

    *rc = PKC_OK;
    for (size_t i = 0; i < fl->nbrokers; i++) {
        b = fl->brokers[i];
        if (b->node_id != node_id)
            continue;
        if (strcmp(b->host, host) != 0 || b->port != port) {
            snprintf(b->host, sizeof(b->host), "%s", host);
            b->port = port;
            b->reconfig = 1;
            b->retry_at = 0;
        }
        return b;
    }
    if (fl->nbrokers == fl->brokers_cap) {
        size_t cap = fl->brokers_cap ? fl->brokers_cap * 2 : 4;
        fl_broker **nb = realloc(fl->brokers, cap * sizeof(*nb));
        if (nb == NULL) {
            *rc = PKC_ERR_NOMEM;
            return NULL;
        }
        fl->brokers = nb;
        fl->brokers_cap = cap;
    }
    b = calloc(1, sizeof(*b));
    if (b == NULL) {
        *rc = PKC_ERR_NOMEM;
        return NULL;
    }
    if (fl_link_init(fl, &b->link) != PKC_OK) {
        pkc_link_free(&b->link);
        free(b);
        *rc = PKC_ERR_NOMEM;
        return NULL;
    }
    b->link_inited = 1;
    b->node_id = node_id;
    snprintf(b->host, sizeof(b->host), "%s", host);
    b->port = port;
    b->version = -1;
    b->last_silent = INT64_MIN / 2;
    fl->brokers[fl->nbrokers++] = b;
    return b;
}

int
pkc_fl_set_leader(pkc_fl *fl, int32_t partition, int32_t node_id,
                  const char *host, int port, int32_t leader_epoch)
{
    fl_part *p;
    fl_broker *b = NULL;
    long i;
    int rc = PKC_OK;

    if (node_id >= 0 && (host == NULL || strlen(host) >= FL_HOST_MAX ||
                         port <= 0 || port > 65535))
        return PKC_ERR_INVALID;
    fl_lock(fl);
    i = fl_find(fl, partition);
    if (i < 0) {
        rc = PKC_ERR_INVALID;
        goto done;
    }
    p = &fl->parts[i];
    if (node_id >= 0) {
        b = fl_get_broker(fl, node_id, host, port, &rc);
        if (b == NULL)
            goto done;
    }
    if (p->leader != b) {
        p->leader = b;
        p->inflight = NULL;
        p->gen++;
    }
    p->leader_epoch = leader_epoch;
    if (p->state == PKC_FL_WAIT_LEADER) {
        if (b != NULL) {
            p->state = PKC_FL_ACTIVE;
            p->resume_at = 0;
        }
        else if (!p->ev_pending) {
            p->resume_at = pkc_now_ms() + fl->cfg.backoff_ms;
        }
    }
    else if (b == NULL) {
        p->state = PKC_FL_WAIT_LEADER;
        p->resume_at = pkc_now_ms() + fl->cfg.backoff_ms;
    }
    fl_wake(fl);
done:
    fl_unlock(fl);
    return rc;
}

int
pkc_fl_seek(pkc_fl *fl, int32_t partition, int64_t next_offset)
{
    fl_chunk *drop = NULL;
    fl_part *p;
    long i;

    fl_lock(fl);
    i = fl_find(fl, partition);
    if (i < 0) {
        fl_unlock(fl);
        return PKC_ERR_INVALID;
    }
    p = &fl->parts[i];
    drop = fl_detach_queue(fl, i);
    p->fetch_offset = next_offset;
    p->last_consumed = next_offset - 1;
    p->gen++;
    p->inflight = NULL;
    p->prio = 0;
    p->resume_at = 0;
    if (p->ev_pending) {
        p->ev_pending = 0;
        atomic_fetch_sub(&fl->n_events, 1);
    }
    p->state = p->leader ? PKC_FL_ACTIVE : PKC_FL_WAIT_LEADER;
    if (p->leader == NULL)
        p->resume_at = 0; /* post NO_LEADER at once */
    fl_wake(fl);
    fl_unlock(fl);
    fl_chunk_free_list(drop);
    return PKC_OK;
}

int
pkc_fl_resume(pkc_fl *fl, int32_t partition, int32_t delay_ms)
{
    fl_part *p;
    long i;

    fl_lock(fl);
    i = fl_find(fl, partition);
    if (i < 0) {
        fl_unlock(fl);
        return PKC_ERR_INVALID;
    }
    p = &fl->parts[i];
    if (p->ev_pending) {
        p->ev_pending = 0;
        atomic_fetch_sub(&fl->n_events, 1);
    }
    p->resume_at = delay_ms > 0 ? pkc_now_ms() + delay_ms : 0;
    p->state = p->leader ? PKC_FL_ACTIVE : PKC_FL_WAIT_LEADER;
    fl_wake(fl);
    fl_unlock(fl);
    return PKC_OK;
}

int
pkc_fl_post_event(pkc_fl *fl, const pkc_fl_event *ev)
{
    fl_part *p;
    long i;

    fl_lock(fl);
    i = fl_find(fl, ev->partition);
    if (i < 0) {
        fl_unlock(fl);
        return PKC_ERR_INVALID;
    }
    p = &fl->parts[i];
    if (ev->kind == PKC_FL_EV_CONN || ev->kind == PKC_FL_EV_NO_LEADER ||
        (ev->kind == PKC_FL_EV_KAFKA &&
         pkc_kafka_error_refresh_metadata(ev->code)))
        p->state = PKC_FL_WAIT_LEADER;
    else
        p->state = PKC_FL_PAUSED;
    p->inflight = NULL;
    p->gen++;
    fl_post(fl, p, ev->kind, ev->code, "%s", ev->msg);
    fl_unlock(fl);
    return PKC_OK;
}

/* ------------------------------------------------------------ consuming */

/* Under mu: take the next record of partition i.  Chunks emptied go to
 * *to_free; *need_wake is set when the partition became fetchable. */
static void
fl_take(pkc_fl *fl, long i, pkc_record *rec, pkc_answer_buf **buf,
        fl_chunk **to_free, int *need_wake)
{
    fl_part *p = &fl->parts[i];
    fl_chunk *c = p->head;

    *rec = c->recs[c->pos++];
    *buf = c->buf;
    p->queued--;
    p->last_consumed = rec->offset;
    if (c->pos == c->n) {
        p->head = c->next;
        if (p->head == NULL)
            p->tail = NULL;
        c->next = *to_free;
        *to_free = c;
    }
    if (p->queued == (size_t)fl->cfg.queued_max_messages - 1 &&
        p->state == PKC_FL_ACTIVE && p->inflight == NULL)
        *need_wake = 1;
}

int
pkc_fl_pop(pkc_fl *fl, pkc_record *rec, int32_t *partition,
           pkc_answer_buf **buf)
{
    fl_chunk *to_free = NULL;
    int need_wake = 0;
    long i;

    fl_lock(fl);
    i = fl->ready;
    if (i < 0) {
        fl_unlock(fl);
        return 0;
    }
    fl_take(fl, i, rec, buf, &to_free, &need_wake);
    pkc_answer_buf_ref(*buf);
    *partition = fl->parts[i].id;
    fl->ready = fl->parts[i].rnext;
    if (fl->parts[i].queued == 0)
        fl_ring_remove(fl, i);
    if (need_wake)
        fl_wake(fl);
    fl_unlock(fl);
    if (to_free != NULL)
        fl_chunk_free_list(to_free);
    return 1;
}

int
pkc_fl_pop_partition(pkc_fl *fl, int32_t partition, pkc_record *rec,
                     pkc_answer_buf **buf)
{
    fl_chunk *to_free = NULL;
    int need_wake = 0;
    long i;

    fl_lock(fl);
    i = fl_find(fl, partition);
    if (i < 0 || fl->parts[i].queued == 0) {
        fl_unlock(fl);
        return 0;
    }
    fl_take(fl, i, rec, buf, &to_free, &need_wake);
    pkc_answer_buf_ref(*buf);
    if (fl->parts[i].queued == 0)
        fl_ring_remove(fl, i);
    if (need_wake)
        fl_wake(fl);
    fl_unlock(fl);
    if (to_free != NULL)
        fl_chunk_free_list(to_free);
    return 1;
}

size_t
pkc_fl_pop_many(pkc_fl *fl, pkc_fl_popped *out, size_t max)
{
    fl_chunk *to_free = NULL;
    pkc_answer_buf *last = NULL;
    int need_wake = 0;
    size_t n = 0;

    fl_lock(fl);
    while (n < max && fl->ready >= 0) {
        long i = fl->ready;
        pkc_answer_buf *buf;

        fl_take(fl, i, &out[n].rec, &buf, &to_free, &need_wake);
        out[n].partition = fl->parts[i].id;
        if (buf != last) {
            pkc_answer_buf_ref(buf);
            out[n].buf = buf;
            last = buf;
        }
        else {
            out[n].buf = NULL;
        }
        n++;
        fl->ready = fl->parts[i].rnext;
        if (fl->parts[i].queued == 0)
            fl_ring_remove(fl, i);
    }
    if (need_wake)
        fl_wake(fl);
    fl_unlock(fl);
    if (to_free != NULL)
        fl_chunk_free_list(to_free);
    return n;
}

int
pkc_fl_wait(pkc_fl *fl, int64_t timeout_ms)
{
    struct timespec ts;
    unsigned ig;
    int r;

    if (timeout_ms >= 0) {
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += (time_t)(timeout_ms / 1000);
        ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec += 1;
            ts.tv_nsec -= 1000000000L;
        }
    }
    fl_lock(fl);
    ig = fl->interrupt_gen;
    fl->waiters++;
    for (;;) {
        if (fl->ready >= 0 || atomic_load(&fl->n_events) > 0) {
            r = 1;
            break;
        }
        if (fl->stopped || fl->interrupt_gen != ig) {
            r = -1;
            break;
        }
        if (timeout_ms < 0) {
            pthread_cond_wait(&fl->cv, &fl->mu);
        }
        else if (pthread_cond_timedwait(&fl->cv, &fl->mu, &ts) ==
                 ETIMEDOUT) {
            r = (fl->ready >= 0 || atomic_load(&fl->n_events) > 0) ? 1 : 0;
            break;
        }
    }
    fl->waiters--;
    fl_unlock(fl);
    return r;
}

void
pkc_fl_interrupt(pkc_fl *fl)
{
    fl_lock(fl);
    fl->interrupt_gen++;
    pthread_cond_broadcast(&fl->cv);
    fl_unlock(fl);
}

int
pkc_fl_events_pending(pkc_fl *fl)
{
    return atomic_load_explicit(&fl->n_events, memory_order_relaxed) > 0;
}

size_t
pkc_fl_take_events(pkc_fl *fl, pkc_fl_event *out, size_t max)
{
    size_t n = 0;

    fl_lock(fl);
    while (n < max) {
        fl_part *best = NULL;
        for (size_t i = 0; i < fl->nparts; i++) {
            fl_part *p = &fl->parts[i];
            if (p->ev_pending && (best == NULL || p->ev_seq < best->ev_seq))
                best = p;
        }
        if (best == NULL)
            break;
        out[n++] = best->ev;
        best->ev_pending = 0;
        atomic_fetch_sub(&fl->n_events, 1);
        /* A partition without a leader re-posts after the backoff. */
        if (best->state == PKC_FL_WAIT_LEADER && best->leader == NULL)
            best->resume_at = pkc_now_ms() + fl->cfg.backoff_ms;
    }
    if (n > 0)
        fl_wake(fl);
    fl_unlock(fl);
    return n;
}

/* ------------------------------------------------------------ inspection */

static void
fl_info(const fl_part *p, pkc_fl_partinfo *out)
{
    out->partition = p->id;
    out->state = p->state;
    out->leader = p->leader ? p->leader->node_id : -1;
    out->leader_epoch = p->leader_epoch;
    out->fetch_offset = p->fetch_offset;
    out->last_consumed = p->last_consumed;
    out->high_watermark = p->hw;
    out->last_stable_offset = p->lso;
    out->log_start_offset = p->log_start;
    out->queued = p->queued;
    out->event_pending = p->ev_pending;
}

size_t
pkc_fl_partition_count(pkc_fl *fl)
{
    size_t n;

    fl_lock(fl);
    n = fl->nparts;
    fl_unlock(fl);
    return n;
}

int
pkc_fl_partition_info_at(pkc_fl *fl, size_t i, pkc_fl_partinfo *out)
{
    int rc = PKC_ERR_INVALID;

    fl_lock(fl);
    if (i < fl->nparts) {
        fl_info(&fl->parts[i], out);
        rc = PKC_OK;
    }
    fl_unlock(fl);
    return rc;
}

int
pkc_fl_partition_info(pkc_fl *fl, int32_t partition, pkc_fl_partinfo *out)
{
    int rc = PKC_ERR_INVALID;
    long i;

    fl_lock(fl);
    i = fl_find(fl, partition);
    if (i >= 0) {
        fl_info(&fl->parts[i], out);
        rc = PKC_OK;
    }
    fl_unlock(fl);
    return rc;
}

void
pkc_fl_get_stats(pkc_fl *fl, pkc_fl_stats *out)
{
    fl_lock(fl);
    *out = fl->stats;
    fl_unlock(fl);
}

/* ------------------------------------------------------ the fetch thread */

/* Under mu: pick the partitions of an idle broker's next Fetch. */
static int
fl_build_entries(pkc_fl *fl, fl_broker *b, int64_t now, int64_t *next)
{
    size_t n = fl->nparts;
    size_t start = n ? b->rr % n : 0;

    b->req_n = 0;
    if (b->req_cap < n) {
        fl_req_entry *r = realloc(b->req, n * sizeof(*r));
        if (r == NULL)
            return PKC_ERR_NOMEM;
        b->req = r;
        b->req_cap = n;
    }
    /* Two passes: partitions flagged `prio` first, then the rest from the
     * rotating start. */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t k = 0; k < n; k++) {
            size_t i = (start + k) % n;
            fl_part *p = &fl->parts[i];
            fl_req_entry *e;

            if (p->leader != b || p->state != PKC_FL_ACTIVE ||
                p->inflight != NULL || (pass == 0) != (p->prio != 0))
                continue;
            if (p->queued >= (size_t)fl->cfg.queued_max_messages)
                continue;
            if (p->resume_at > now) {
                if (p->resume_at < *next)
                    *next = p->resume_at;
                continue;
            }
            if (p->fetch_offset < 0) {
                p->state = PKC_FL_PAUSED;
                fl_post(fl, p, PKC_FL_EV_KAFKA, PKC_KERR_OFFSET_OUT_OF_RANGE,
                        "partition %d has no valid position (offset %lld)",
                        (int)p->id, (long long)p->fetch_offset);
                continue;
            }
            e = &b->req[b->req_n++];
            e->pidx = i;
            e->partition = p->id;
            e->epoch = p->leader_epoch;
            e->offset = p->fetch_offset;
            e->gen = p->gen;
            p->inflight = b;
            p->prio = 0;
        }
    }
    b->rr++;
    return PKC_OK;
}

/* Under mu: decide what each broker does next; returns the next time the
 * thread must look again. */
static int64_t
fl_plan(pkc_fl *fl, int64_t now)
{
    int64_t next = now + FL_TICK_MS;

    fl->wake_pending = 0;
    if (fl->tb_cap < fl->nbrokers) {
        fl_broker **tb = realloc(fl->tb, fl->nbrokers * sizeof(*tb));
        if (tb == NULL) {
            fl->ntb = 0;
            return now + 100;
        }
        fl->tb = tb;
        fl->tb_cap = fl->nbrokers;
    }
    fl->ntb = fl->nbrokers;
    if (fl->ntb)
        memcpy(fl->tb, fl->brokers, fl->ntb * sizeof(*fl->tb));

    for (size_t i = 0; i < fl->nparts; i++) {
        fl_part *p = &fl->parts[i];
        if (p->state != PKC_FL_WAIT_LEADER || p->leader != NULL ||
            p->ev_pending)
            continue;
        if (now >= p->resume_at) {
            fl_post(fl, p, PKC_FL_EV_NO_LEADER, PKC_KERR_LEADER_NOT_AVAILABLE,
                    "partition %d has no leader", (int)p->id);
            p->resume_at = now + fl->cfg.backoff_ms;
        }
        else if (p->resume_at < next) {
            next = p->resume_at;
        }
    }

    for (size_t k = 0; k < fl->ntb; k++) {
        fl_broker *b = fl->tb[k];
        int active = 0;

        b->want_connect = 0;
        b->want_send = 0;
        b->want_step = 0;
        if (b->reconfig) {
            b->reconfig = 0;
            fl_broker_down(fl, b, PKC_ERR_CLOSED, "", 0, now);
            b->version = -1;
        }
        for (size_t i = 0; i < fl->nparts && !active; i++)
            active = fl->parts[i].leader == b &&
                     fl->parts[i].state == PKC_FL_ACTIVE;
        if (!active)
            continue;
        if (b->link.state == PKC_LINK_DOWN) {
            if (now >= b->retry_at) {
                b->want_connect = 1;
                memcpy(b->chost, b->host, sizeof(b->chost));
                b->cport = b->port;
            }
            else if (b->retry_at < next) {
                next = b->retry_at;
            }
        }
        else if (pkc_link_is_ready(&b->link) && !b->fetching) {
            if (pkc_link_reauth_due(&b->link, now)) {
                b->want_step = 1; /* re-authenticate before fetching on */
                continue;
            }
            if (b->link.reauth_at > now && b->link.reauth_at < next)
                next = b->link.reauth_at; /* (past: waits for a token) */
            if (fl_build_entries(fl, b, now, &next) != PKC_OK)
                next = now + 100;
            b->want_send = b->req_n > 0;
        }
    }
    return next;
}

/* Without mu: the link became READY: use its highest Fetch version. */
static void
fl_link_ready(pkc_fl *fl, fl_broker *b)
{
    pkc_api_range r = pkc_link_api_range(&b->link, PKC_API_FETCH);
    int16_t v = pkc_link_version(&b->link, PKC_API_FETCH, PKC_VER_FETCH_MIN,
                                 fl->cfg.max_version);
    char why[256];

    if (v < 0) {
        snprintf(why, sizeof(why), "the broker supports Fetch v%d-v%d; "
                 "pykafka_c needs one of v%d-v%d", (int)r.min, (int)r.max,
                 PKC_VER_FETCH_MIN, (int)fl->cfg.max_version);
        fl_lock(fl);
        fl_broker_refused(fl, b, PKC_ERR_UNSUPPORTED,
                          PKC_KERR_UNSUPPORTED_VERSION, why, pkc_now_ms());
        fl_unlock(fl);
        return;
    }
    b->version = v;
    b->answered = 0;
}

/* Without mu: act on what pkc_link_start / pkc_link_step returned.  A
 * link READY again after a re-authentication keeps its Fetch version. */
static void
fl_link_progress(pkc_fl *fl, fl_broker *b, int rc)
{
    if (rc == PKC_IN_PROGRESS)
        return;
    fl_lock(fl);
    if (b->version < 0) /* a connect attempt ended, either way */
        fl->stats.connects++;
    if (rc == PKC_OK && b->link.authenticated)
        fl->stats.authentications++;
    fl_unlock(fl);
    if (rc != PKC_OK) {
        fl_link_failed(fl, b);
        return;
    }
    if (b->version < 0)
        fl_link_ready(fl, b);
}

/*
 * Without mu: start setting the connection up without waiting (name
 * resolution still blocks).  The link goes on in the poll loop (connect,
 * TLS, ApiVersions, SASL: fl_link_step on readiness or at its deadline,
 * min(socket_timeout_ms, FL_CONNECT_CAP_MS) for the whole set-up).
 */
static void
fl_connect_start(pkc_fl *fl, fl_broker *b)
{
    int rc;

    b->version = -1;
    rc = pkc_link_start(&b->link, b->chost, b->cport, pkc_now_ms());
    fl_link_progress(fl, b, rc);
}

/* Without mu: the link's descriptor is ready, its deadline passed, or a
 * re-authentication is due. */
static void
fl_link_step(pkc_fl *fl, fl_broker *b)
{
    if (b->link.state == PKC_LINK_DOWN)
        return;
    fl_link_progress(fl, b, pkc_link_step(&b->link, pkc_now_ms()));
}

/* Without mu: encode and queue the Fetch of b->req. */
static void
fl_send_fetch(pkc_fl *fl, fl_broker *b)
{
    const pkc_proto_api *api = pkc_proto_api_find(PKC_API_FETCH);
    pkc_conn *conn = pkc_link_conn(&b->link);
    pkc_proto_source src;
    pkc_proto_error perr;
    pkc_writer *w = NULL;
    fl_src s;
    int rc;

    memset(&s, 0, sizeof(s));
    s.topic = fl->topic;
    s.topic_len = fl->cfg.topic_len;
    s.ents = b->req;
    s.n = b->req_n;
    s.max_wait = fl->cfg.max_wait_ms;
    s.min_bytes = fl->cfg.min_bytes;
    s.max_bytes = fl->cfg.max_bytes;
    s.pmax = fl->cfg.partition_max_bytes;
    s.isolation = fl->cfg.isolation_level;
    memset(&src, 0, sizeof(src));
    src.ctx = &s;
    src.has = fl_src_has;
    src.get_int = fl_src_get_int;
    src.get_float = fl_src_get_float;
    src.get_bytes = fl_src_get_bytes;
    src.enter_array = fl_src_enter_array;
    src.enter_element = fl_src_enter_element;
    memset(&perr, 0, sizeof(perr));

    rc = pkc_conn_request_begin(conn, PKC_API_FETCH, b->version,
                                pkc_proto_is_flexible(api, b->version), &w);
    if (rc == PKC_OK) {
        rc = pkc_proto_encode(w, PKC_PROTO_REQUEST, PKC_API_FETCH, b->version,
                              &src, &perr);
        if (rc != 0) {
            pkc_conn_request_abort(conn);
            if (rc > 0 || rc == PKC_PROTO_ABORT || rc == PKC_PROTO_BADTYPE)
                rc = PKC_ERR_INVALID;
        }
        else {
            rc = pkc_conn_request_end(conn, 1, NULL);
        }
    }
    if (rc == PKC_OK) {
        rc = pkc_conn_flush(conn, 0);
        if (rc == PKC_ERR_TIMEOUT || rc == PKC_ERR_INTR)
            rc = PKC_OK;
    }
    if (rc != PKC_OK) {
        char why[384];
        snprintf(why, sizeof(why), "sending Fetch v%d: %s%s%s",
                 (int)b->version, pkc_status_str(rc),
                 conn->errstr[0] ? ": " : "", conn->errstr);
        fl_broker_fail(fl, b, rc, why);
        return;
    }
    b->fetching = 1;
    b->fetch_deadline = pkc_now_ms() + fl->cfg.max_wait_ms +
                        fl->cfg.socket_timeout_ms;
    fl_lock(fl);
    fl->stats.fetches_sent++;
    fl_unlock(fl);
}

/* One partition of an answer, between decoding and the final apply. */
typedef struct {
    long res;              /* index in v.res, -1: not answered */
    size_t nrec;           /* records queued from this answer */
    int64_t next_offset;
    int truncated_empty;
    int status;
    char err[256];
} fl_dec;

/* Records per piece queued while an answer is decoded. */
#define FL_PIECE 1024

/*
 * Under mu: queue one piece of partition k's records (the chunk takes its
 * record block and a buf reference) if the partition is still fetched from
 * this request; else hand the chunk back for freeing.
 */
static fl_chunk *
fl_queue_piece(pkc_fl *fl, fl_broker *b, const fl_req_entry *e,
               fl_chunk *c)
{
    fl_part *p = &fl->parts[e->pidx];

    if (p->gen != e->gen || p->state != PKC_FL_ACTIVE || p->leader != b)
        return c;
    if (p->tail)
        p->tail->next = c;
    else
        p->head = c;
    p->tail = c;
    p->queued += c->n;
    /* The position follows what is queued, so that consumed and fetched
     * stay consistent even while the rest of the answer is decoded. */
    if (c->recs[c->n - 1].offset + 1 > p->fetch_offset)
        p->fetch_offset = c->recs[c->n - 1].offset + 1;
    fl->stats.records_queued += c->n;
    fl_ring_insert(fl, (long)e->pidx);
    if (fl->waiters)
        pthread_cond_broadcast(&fl->cv);
    return NULL;
}

/* Without mu: decode partition k's records piece by piece, queueing each
 * piece as soon as it is decoded. */
static void
fl_stream_partition(pkc_fl *fl, fl_broker *b, size_t k, const fl_rvis *v,
                    fl_dec *d, pkc_answer_buf *buf, fl_chunk **drop)
{
    const fl_req_entry *e = &b->req[k];
    const fl_presult *pr = &v->res[d->res];
    int64_t last_queued = -1;
    int lost = 0;
    fl_stream ds;

    fl_stream_init(&ds, pr, v->ab ? v->ab + pr->ab_first : NULL, e->offset,
                   v->read_committed, fl->cfg.check_crcs,
                   fl->cfg.max_decompressed, &buf->arena, fl->chunk_max,
                   d->err, sizeof(d->err));
    while (!ds.done) {
        size_t cap, got;
        pkc_record *blk = pkc_bufpool_get(fl->pool,
                                      FL_PIECE * sizeof(pkc_record), &cap);
        fl_chunk *c;

        if (blk == NULL) {
            ds.status = PKC_ERR_NOMEM;
            snprintf(d->err, sizeof(d->err), "out of memory");
            break;
        }
        got = fl_stream_next(&ds, blk, cap / sizeof(pkc_record));
        if (got == 0) {
            pkc_bufpool_put(fl->pool, blk, cap);
            continue;
        }
        c = malloc(sizeof(*c));
        if (c == NULL) {
            pkc_bufpool_put(fl->pool, blk, cap);
            lost = 1;
            break;
        }
        c->next = NULL;
        c->buf = buf;
        pkc_answer_buf_ref(buf);
        c->recs = blk;
        c->recs_bytes = cap;
        c->n = got;
        c->pos = 0;
        d->nrec += got;
        last_queued = blk[got - 1].offset;
        fl_lock(fl);
        c = fl_queue_piece(fl, b, e, c);
        fl_unlock(fl);
        if (c != NULL) {
            c->next = *drop;
            *drop = c;
        }
    }
    fl_stream_finish(&ds, &d->next_offset, &d->truncated_empty);
    d->status = ds.status;
    if (lost) {
        /* The last piece could not be queued: go on after the last
         * record that was. */
        d->status = PKC_ERR_NOMEM;
        snprintf(d->err, sizeof(d->err), "out of memory");
        d->next_offset = d->nrec ? last_queued + 1 : e->offset;
        d->truncated_empty = 0;
    }
}

/* Without mu: handle a Fetch answer. */
static void
fl_on_fetch(pkc_fl *fl, fl_broker *b, const pkc_response *resp)
{
    fl_rvis v;
    fl_dec *dec = NULL;
    int32_t *ids = NULL;
    pkc_answer_buf *buf = NULL;
    fl_chunk *drop = NULL;
    char perr[384] = "";
    int prc;
    size_t n = b->req_n;

    memset(&v, 0, sizeof(v));
    buf = pkc_answer_buf_new(fl->pool, resp->body, resp->body_len,
                             fl->arena_max);
    dec = calloc(n ? n : 1, sizeof(*dec));
    ids = malloc((n ? n : 1) * sizeof(*ids));
    if (buf == NULL || dec == NULL || ids == NULL) {
        free(dec);
        free(ids);
        pkc_answer_buf_release(buf);
        fl_broker_fail(fl, b, PKC_ERR_NOMEM, "out of memory for an answer");
        return;
    }
    for (size_t k = 0; k < n; k++) {
        ids[k] = b->req[k].partition;
        dec[k].res = -1;
        dec[k].status = PKC_OK;
        dec[k].next_offset = b->req[k].offset;
    }
    v.topic = fl->topic;
    v.topic_len = fl->cfg.topic_len;
    v.ids = ids;
    v.n = n;
    v.read_committed = fl->cfg.isolation_level == 1;
    prc = fl_parse_response(&v, buf->data, buf->len, b->version, perr,
                            sizeof(perr));
    if (prc == PKC_OK) {
        for (size_t j = 0; j < v.nres; j++)
            dec[v.res_req[j]].res = (long)j;
        if (v.top_error == 0) {
            for (size_t k = 0; k < n; k++)
                if (dec[k].res >= 0 && v.res[dec[k].res].error_code == 0)
                    fl_stream_partition(fl, b, k, &v, &dec[k], buf, &drop);
        }
    }

    fl_lock(fl);
    fl->stats.responses++;
    fl->stats.bytes_received += resp->body_len;
    for (size_t k = 0; k < n; k++) {
        const fl_req_entry *e = &b->req[k];
        fl_dec *d = &dec[k];
        fl_part *p = &fl->parts[e->pidx];
        const fl_presult *pr;
        int code;

        if (p->gen != e->gen)
            continue;
        p->inflight = NULL;
        if (p->state != PKC_FL_ACTIVE || p->leader != b)
            continue;
        if (prc != PKC_OK) {
            p->state = PKC_FL_PAUSED;
            fl_post(fl, p, PKC_FL_EV_DECODE, prc, "broker %d: %s",
                    (int)b->node_id, perr);
            continue;
        }
        if (v.top_error != 0) {
            code = v.top_error;
            p->state = pkc_kafka_error_refresh_metadata(code)
                           ? PKC_FL_WAIT_LEADER
                           : PKC_FL_PAUSED;
            fl_post(fl, p, PKC_FL_EV_KAFKA, code,
                    "Fetch from broker %d (%s:%d): Kafka error %d for the "
                    "whole request", (int)b->node_id, b->host, b->port,
                    code);
            continue;
        }
        if (d->res < 0)
            continue; /* not answered: asked again next time */
        pr = &v.res[d->res];
        if (pr->hw >= 0)
            p->hw = pr->hw;
        if (pr->lso >= 0)
            p->lso = pr->lso;
        if (pr->log_start >= 0)
            p->log_start = pr->log_start;
        code = pr->error_code;
        if (code != 0) {
            p->state = pkc_kafka_error_refresh_metadata(code)
                           ? PKC_FL_WAIT_LEADER
                           : PKC_FL_PAUSED;
            fl_post(fl, p, PKC_FL_EV_KAFKA, code,
                    "Fetch from broker %d (%s:%d) for partition %d at "
                    "offset %lld: Kafka error %d",
                    (int)b->node_id, b->host, b->port, (int)p->id,
                    (long long)p->fetch_offset, code);
            continue;
        }
        if (d->next_offset > p->fetch_offset)
            p->fetch_offset = d->next_offset;
        /* Data the answer did not carry (a batch over the byte limits,
         * or the answer's MaxBytes spent on other partitions): ask for
         * this partition first next time, where KIP-74 guarantees one
         * whole batch. */
        if (d->truncated_empty || (d->nrec == 0 && pr->hw > p->fetch_offset))
            p->prio = 1;
        if (d->status != PKC_OK) {
            p->state = PKC_FL_PAUSED;
            fl_post(fl, p, PKC_FL_EV_DECODE, d->status,
                    "Fetch from broker %d for partition %d at offset "
                    "%lld: %s", (int)b->node_id, (int)p->id,
                    (long long)p->fetch_offset, d->err);
        }
    }
    fl_unlock(fl);

    b->answered++;
    b->fetching = 0;
    fl_chunk_free_list(drop);
    free(dec);
    free(ids);
    fl_rvis_free(&v);
    pkc_answer_buf_release(buf);
}

/* Without mu: read the answer to the Fetch in flight. */
static void
fl_on_readable(pkc_fl *fl, fl_broker *b)
{
    pkc_response resp;
    int rc;

    if (!b->fetching)
        return;
    do {
        rc = pkc_link_recv_response(&b->link, 0, &resp);
    } while (rc == PKC_ERR_INTR);
    if (rc == PKC_ERR_TIMEOUT)
        return; /* partial frame: wait for more */
    if (rc != PKC_OK) {
        fl_link_failed(fl, b);
        return;
    }
    fl_on_fetch(fl, b, &resp);
}

/* Without mu: write what is queued; read when there is something. */
static void
fl_on_ready(pkc_fl *fl, fl_broker *b, short revents)
{
    if (pkc_link_in_setup(&b->link)) {
        fl_link_step(fl, b);
        return;
    }
    if (!pkc_link_is_ready(&b->link))
        return;
    if (pkc_conn_unsent(pkc_link_conn(&b->link)) > 0) {
        int rc = pkc_conn_flush(pkc_link_conn(&b->link), 0);
        if (rc != PKC_OK && rc != PKC_ERR_TIMEOUT && rc != PKC_ERR_INTR) {
            fl_broker_fail(fl, b, rc, pkc_link_conn(&b->link)->errstr);
            return;
        }
    }
    if (revents & (POLLIN | POLLERR | POLLHUP | POLLNVAL))
        fl_on_readable(fl, b);
}

/* Without mu: the poll set of this round; lowers *next to the earliest
 * deadline of a set-up or a Fetch in flight. */
static int
fl_poll_set(pkc_fl *fl, int64_t *next)
{
    pkc_reactor_reset(&fl->reactor);
    for (size_t k = 0; k < fl->ntb; k++) {
        fl_broker *b = fl->tb[k];
        int64_t deadline = INT64_MAX;
        short ev = pkc_link_poll_events(&b->link, b->fetching);

        if (pkc_link_in_setup(&b->link))
            deadline = pkc_link_deadline(&b->link);
        else if (b->fetching)
            deadline = b->fetch_deadline;
        if (deadline < *next)
            *next = deadline;
        if (pkc_reactor_add(&fl->reactor, pkc_link_fd(&b->link), ev, b) !=
            PKC_OK)
            return PKC_ERR_NOMEM;
    }
    return PKC_OK;
}

/* Without mu: set-ups and Fetches that got no answer in time. */
static void
fl_check_deadlines(pkc_fl *fl)
{
    int64_t now = pkc_now_ms();
    char why[384];

    for (size_t k = 0; k < fl->ntb; k++) {
        fl_broker *b = fl->tb[k];

        if (pkc_link_in_setup(&b->link) &&
            now >= pkc_link_deadline(&b->link)) {
            fl_link_step(fl, b); /* fails with the set-up's timeout */
            continue;
        }
        if (b->fetching && now >= b->fetch_deadline) {
            snprintf(why, sizeof(why), "no answer from %s:%d within %d ms",
                     b->chost, b->cport,
                     (int)(fl->cfg.max_wait_ms + fl->cfg.socket_timeout_ms));
            b->answered = 0;
            fl_broker_fail(fl, b, PKC_ERR_TIMEOUT, why);
        }
    }
}

static void *
fl_thread_main(void *arg)
{
    pkc_fl *fl = arg;

    fl_lock(fl);
    while (!fl->stopping) {
        int64_t next = fl_plan(fl, pkc_now_ms());

        fl_unlock(fl);
        for (size_t k = 0; k < fl->ntb; k++) {
            fl_broker *b = fl->tb[k];
            if (b->want_connect)
                fl_connect_start(fl, b);
            else if (b->want_send)
                fl_send_fetch(fl, b);
            else if (b->want_step)
                fl_link_step(fl, b);
        }
        if (fl_poll_set(fl, &next) != PKC_OK) {
            struct timespec ts = {0, 100 * 1000000L};
            nanosleep(&ts, NULL);
            fl_lock(fl);
            continue;
        }
        if (pkc_reactor_wait(&fl->reactor, next, FL_TICK_MS) > 0) {
            for (size_t i = 1; i < pkc_reactor_count(&fl->reactor); i++)
                if (pkc_reactor_revents(&fl->reactor, i))
                    fl_on_ready(fl, pkc_reactor_owner(&fl->reactor, i),
                                pkc_reactor_revents(&fl->reactor, i));
        }
        fl_check_deadlines(fl);
        fl_lock(fl);
    }
    fl_unlock(fl);
    return NULL;
}

int
pkc_fl_start(pkc_fl *fl)
{
    sigset_t all, old;
    int rc;

    fl_lock(fl);
    while (fl->stop_in_progress)
        pthread_cond_wait(&fl->cv, &fl->mu);
    if (fl->thread_running) {
        fl_unlock(fl);
        return PKC_OK;
    }
    fl->stopping = 0;
    fl->stopped = 0;
    fl->wake_pending = 0;
    /* The thread takes no signals: they belong to Python's main thread. */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    rc = pthread_create(&fl->thread, NULL, fl_thread_main, fl);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        fl->stopped = 1;
        fl_unlock(fl);
        return rc == ENOMEM || rc == EAGAIN ? PKC_ERR_NOMEM : PKC_ERR_IO;
    }
    fl->thread_running = 1;
    fl_unlock(fl);
    return PKC_OK;
}

int
pkc_fl_running(pkc_fl *fl)
{
    int r;

    fl_lock(fl);
    r = fl->thread_running;
    fl_unlock(fl);
    return r;
}

void
pkc_fl_stop(pkc_fl *fl)
{
    fl_chunk *drop = NULL;
    int was_running;

    fl_lock(fl);
    if (fl->stop_in_progress) {
        /* Another thread is stopping the engine: wait until it is done
         * (only one caller may join the thread). */
        while (fl->stop_in_progress)
            pthread_cond_wait(&fl->cv, &fl->mu);
        fl_unlock(fl);
        return;
    }
    was_running = fl->thread_running;
    fl->stopping = 1;
    fl->stopped = 1;
    /* Held until the reset below is done, also when no thread runs: a
     * start meanwhile must not have its new thread marked stopped. */
    fl->stop_in_progress = 1;
    pthread_cond_broadcast(&fl->cv);
    if (was_running)
        pkc_reactor_wake(&fl->reactor);
    fl_unlock(fl);
    if (was_running)
        pthread_join(fl->thread, NULL);

    fl_lock(fl);
    fl->thread_running = 0;
    fl->stopping = 0;
    for (size_t k = 0; k < fl->nbrokers; k++) {
        fl_broker *b = fl->brokers[k];
        pkc_link_close(&b->link);
        b->fetching = 0;
        b->retry_at = 0;
        b->answered = 0;
        b->reconfig = 0;
        b->version = -1;
        b->req_n = 0;
    }
    for (size_t i = 0; i < fl->nparts; i++) {
        fl_part *p = &fl->parts[i];
        fl_chunk *c = fl_detach_queue(fl, (long)i);
        if (c != NULL) {
            fl_chunk *t = c;
            while (t->next)
                t = t->next;
            t->next = drop;
            drop = c;
        }
        p->fetch_offset = p->last_consumed + 1;
        p->inflight = NULL;
        p->prio = 0;
        p->gen++;
        p->resume_at = 0;
        p->ev_pending = 0;
        p->state = p->leader ? PKC_FL_ACTIVE : PKC_FL_WAIT_LEADER;
    }
    fl->ready = -1;
    atomic_store(&fl->n_events, 0);
    fl->wake_pending = 0; /* a wake-up left in the reactor costs one round */
    fl->stop_in_progress = 0;
    pthread_cond_broadcast(&fl->cv);
    fl_unlock(fl);
    fl_chunk_free_list(drop);
}
