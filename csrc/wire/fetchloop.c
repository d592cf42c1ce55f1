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
#include "fetch_codec.h"
#include "kafka_errors.h"
#include "link.h"
#include "reactor.h"

#define FL_HOST_MAX 256
/* Setting a connection up (connect, TLS, ApiVersions, SASL) is given up
 * after at most this long (it never blocks the thread: see
 * fl_connect_start). */
#define FL_CONNECT_CAP_MS 10000
/* Idle tick of the thread's poll. */
#define FL_TICK_MS 1000

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

/* Where a partition named in the request in flight came from: its index
 * in fl->parts and its generation then (an answer to an older generation
 * is dropped). */
typedef struct {
    size_t pidx;
    uint32_t gen;
} fl_req_origin;

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
    pkc_fetch_partition *req; /* the partitions of the request in flight */
    fl_req_origin *req_origin; /* where each came from */
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
    if (!pkc_fetch_codec_ready())
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
    if (fl->chunk_max < PKC_FETCH_MAX_RECORDS)
        fl->chunk_max = PKC_FETCH_MAX_RECORDS;
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
        free(b->req_origin);
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
        pkc_fetch_partition *r = realloc(b->req, n * sizeof(*r));
        fl_req_origin *o;
        if (r == NULL)
            return PKC_ERR_NOMEM;
        b->req = r;
        o = realloc(b->req_origin, n * sizeof(*o));
        if (o == NULL)
            return PKC_ERR_NOMEM;
        b->req_origin = o;
        b->req_cap = n;
    }
    /* Two passes: partitions flagged `prio` first, then the rest from the
     * rotating start. */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t k = 0; k < n; k++) {
            size_t i = (start + k) % n;
            fl_part *p = &fl->parts[i];
            pkc_fetch_partition *e;

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
            b->req_origin[b->req_n].pidx = i;
            b->req_origin[b->req_n].gen = p->gen;
            e = &b->req[b->req_n++];
            e->partition = p->id;
            e->leader_epoch = p->leader_epoch;
            e->fetch_offset = p->fetch_offset;
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

/* The request in flight on broker `b` (b->req) as the codec sees it. */
static void
fl_fetch_request(const pkc_fl *fl, const fl_broker *b,
                 pkc_fetch_request *req)
{
    memset(req, 0, sizeof(*req));
    req->topic = fl->topic;
    req->topic_len = fl->cfg.topic_len;
    req->max_wait_ms = fl->cfg.max_wait_ms;
    req->min_bytes = fl->cfg.min_bytes;
    req->max_bytes = fl->cfg.max_bytes;
    req->partition_max_bytes = fl->cfg.partition_max_bytes;
    req->isolation_level = fl->cfg.isolation_level;
    req->parts = b->req;
    req->n_parts = b->req_n;
}

/* Without mu: encode and queue the Fetch of b->req. */
static void
fl_send_fetch(pkc_fl *fl, fl_broker *b)
{
    pkc_conn *conn = pkc_link_conn(&b->link);
    pkc_fetch_request req;
    pkc_writer *w = NULL;
    int rc;

    fl_fetch_request(fl, b, &req);
    rc = pkc_conn_request_begin(conn, PKC_API_FETCH, b->version,
                                pkc_fetch_is_flexible(b->version), &w);
    if (rc == PKC_OK) {
        rc = pkc_fetch_request_encode(w, b->version, &req);
        if (rc != PKC_OK) {
            pkc_conn_request_abort(conn);
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

/*
 * Without mu (takes it): append a piece of request partition k's records
 * to the partition's queue if it is still fetched from this request, else
 * to the job's drop list.
 */
static void
answer_queue_piece(pkc_fl *fl, fl_broker *b, size_t k, fl_chunk *c,
                   answer_job *job)
{
    const fl_req_origin *o = &b->req_origin[k];
    fl_part *p;

    fl_lock(fl);
    p = &fl->parts[o->pidx];
    if (p->gen != o->gen || p->state != PKC_FL_ACTIVE || p->leader != b) {
        fl_unlock(fl);
        c->next = job->drop;
        job->drop = c;
        return;
    }
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
    fl_ring_insert(fl, (long)o->pidx);
    if (fl->waiters)
        pthread_cond_broadcast(&fl->cv);
    fl_unlock(fl);
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
    pkc_fetch_records s;
    int lost = 0;

    pkc_fetch_records_init(&s, &job->resp, (size_t)out->answer,
                           b->req[k].fetch_offset, &opts, out->err,
                           sizeof(out->err));
    while (!s.done) {
        size_t cap, got;
        pkc_record *blk = pkc_bufpool_get(fl->pool,
                                          FL_PIECE * sizeof(pkc_record), &cap);
        fl_chunk *c;

        if (blk == NULL) {
            pkc_fetch_records_abort(&s, PKC_ERR_NOMEM);
            snprintf(out->err, sizeof(out->err), "out of memory");
            break;
        }
        got = pkc_fetch_records_next(&s, blk, cap / sizeof(pkc_record));
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
    pkc_fetch_records_finish(&s, &out->next_offset, &out->truncated_empty);
    out->status = s.status;
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
    /* Data the answer did not carry (a batch over the byte limits, or
     * the answer's MaxBytes spent on other partitions): ask for this
     * partition first next time, where KIP-74 guarantees one whole
     * batch. */
    if (out->truncated_empty ||
        (out->nrec == 0 && a->high_watermark > p->fetch_offset))
        p->prio = 1;
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
    fl_part *p = &fl->parts[o->pidx];
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
        p->hw = a->high_watermark;
    if (a->last_stable_offset >= 0)
        p->lso = a->last_stable_offset;
    if (a->log_start_offset >= 0)
        p->log_start = a->log_start_offset;
    if (a->error_code != 0)
        answer_kafka_error(fl, b, p, a->error_code, 0);
    else
        answer_advance(fl, b, p, a, out);
}

/* Without mu: handle the answer to the Fetch in flight. */
static void
fl_on_fetch(pkc_fl *fl, fl_broker *b, const pkc_response *resp)
{
    answer_job job;

    if (answer_init(fl, b, resp, &job) != PKC_OK) {
        answer_free(&job);
        fl_broker_fail(fl, b, PKC_ERR_NOMEM, "out of memory for an answer");
        return;
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
