/*
 * fetchloop.c - the consumer's fetch engine: lifecycle, the control,
 * consuming and inspection API, and the thread's loop.  The planner, the
 * broker links, the answers and the partitions' queues have files of
 * their own (fetchloop_int.h lists them).  See fetchloop.h for the
 * contract.
 */
#include "fetchloop_int.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api_support.h"
#include "kafka_errors.h"

/* ------------------------------------------------------------- helpers */

/* Under mu: the index of partition `id`, or -1. */
static long
fl_find(pkc_fl *fl, int32_t id)
{
    for (size_t i = 0; i < fl->nparts; i++)
        if (fl->parts[i].id == id)
            return (long)i;
    return -1;
}

/* Under mu: wake the fetch thread to plan again. */
static void
fl_wake(pkc_fl *fl)
{
    if (!fl->wake_pending && fl->thread_running) {
        fl->wake_pending = 1;
        fl->stats.wakeups++;
        pkc_reactor_wake(&fl->reactor);
    }
}

/* ----------------------------------------------------------- lifecycle */

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

static int
fl_config_valid(const pkc_fl_config *cfg)
{
    return cfg->topic != NULL && cfg->topic_len > 0 &&
           cfg->topic_len <= 32767 && cfg->max_wait_ms >= 0 &&
           cfg->min_bytes >= 0 && cfg->max_bytes > 0 &&
           cfg->partition_max_bytes > 0 && cfg->queued_max_messages > 0 &&
           cfg->socket_timeout_ms > 0 && cfg->backoff_ms >= 0 &&
           cfg->isolation_level >= 0 && cfg->isolation_level <= 1 &&
           cfg->max_version >= PKC_VER_FETCH_MIN;
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

/* Decompressed data held per answer: 4x the answer cap, at least one
 * batch's worth. */
static size_t
fl_arena_max(const pkc_fl_config *cfg)
{
    size_t batch = cfg->max_decompressed ? cfg->max_decompressed
                                         : PKC_DEFAULT_MAX_DECOMPRESSED;
    size_t arena = (size_t)cfg->max_bytes * 4;

    return arena < batch ? batch : arena;
}

/* Copy the config and what it points to into fl, and make the block
 * pool.  PKC_OK or PKC_ERR_NOMEM (fl_config_free undoes either). */
static int
fl_config_take(pkc_fl *fl, const pkc_fl_config *cfg)
{
    const char *cid = cfg->client_id ? cfg->client_id : "pykafka_c";
    const char *src = cfg->source_host ? cfg->source_host : "";
    const char *sv = cfg->software_version ? cfg->software_version : "0";

    fl->cfg = *cfg;
    if (fl->cfg.max_version > PKC_VER_FETCH_MAX)
        fl->cfg.max_version = PKC_VER_FETCH_MAX;
    fl->client_id = fl_strdup(cid, strlen(cid));
    fl->topic = fl_strdup(cfg->topic, cfg->topic_len);
    fl->source_host = fl_strdup(src, strlen(src));
    fl->software_version = fl_strdup(sv, strlen(sv));
    fl->pool = pkc_bufpool_new();
    if (fl->client_id == NULL || fl->topic == NULL ||
        fl->source_host == NULL || fl->software_version == NULL ||
        fl->pool == NULL)
        return PKC_ERR_NOMEM;
    fl->cfg.client_id = fl->client_id;
    fl->cfg.topic = fl->topic;
    fl->cfg.source_host = fl->source_host;
    fl->cfg.software_version = NULL; /* fl->software_version is used */
    fl->security = pkc_security_ref(cfg->security);
    fl->chunk_max = (size_t)cfg->queued_max_messages;
    if (fl->chunk_max < PKC_FETCH_MAX_RECORDS)
        fl->chunk_max = PKC_FETCH_MAX_RECORDS;
    fl->arena_max = fl_arena_max(cfg);
    return PKC_OK;
}

static void
fl_config_free(pkc_fl *fl)
{
    pkc_security_unref(fl->security);
    free(fl->client_id);
    free(fl->topic);
    free(fl->source_host);
    free(fl->software_version);
    pkc_bufpool_release(fl->pool);
}

/* The mutex, and the condition variable on the monotonic clock (waits
 * have deadlines). */
static void
fl_sync_init(pkc_fl *fl)
{
    pthread_condattr_t ca;

    pthread_mutex_init(&fl->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&fl->cv, &ca);
    pthread_condattr_destroy(&ca);
}

int
pkc_fl_new(const pkc_fl_config *cfg, pkc_fl **out)
{
    pkc_fl *fl;

    *out = NULL;
    if (!pkc_fetch_codec_ready())
        return PKC_ERR_UNSUPPORTED;
    if (!fl_config_valid(cfg))
        return PKC_ERR_INVALID;
    fl = calloc(1, sizeof(*fl));
    if (fl == NULL)
        return PKC_ERR_NOMEM;
    fl->reactor.wake_fd = -1;
    fl->ready = -1;
    atomic_init(&fl->n_events, 0);
    fl->stopped = 1;
    if (fl_config_take(fl, cfg) != PKC_OK) {
        fl_config_free(fl);
        free(fl);
        return PKC_ERR_NOMEM;
    }
    if (pkc_reactor_init(&fl->reactor) != PKC_OK) {
        pkc_fl_free(fl);
        return PKC_ERR_IO;
    }
    fl->reactor_ok = 1;
    fl_sync_init(fl);
    *out = fl;
    return PKC_OK;
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
    free(fl->round);
    pkc_reactor_free(&fl->reactor);
    fl_config_free(fl);
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
    p->high_watermark = p->last_stable_offset = p->log_start_offset = -1;
    p->ring_next = p->ring_prev = -1;
done:
    fl_unlock(fl);
    return rc;
}

/* ------------------------------------------------------------ control */

/* Under mu: a new broker for node_id at host:port, added to the table;
 * NULL when out of memory. */
static fl_broker *
fl_broker_new(pkc_fl *fl, int32_t node_id, const char *host, int port)
{
    fl_broker *b;

    if (fl->nbrokers == fl->brokers_cap) {
        size_t cap = fl->brokers_cap ? fl->brokers_cap * 2 : 4;
        fl_broker **brokers = realloc(fl->brokers, cap * sizeof(*brokers));
        if (brokers == NULL)
            return NULL;
        fl->brokers = brokers;
        fl->brokers_cap = cap;
    }
    b = calloc(1, sizeof(*b));
    if (b == NULL)
        return NULL;
    if (fl_link_init(fl, &b->link) != PKC_OK) {
        pkc_link_free(&b->link);
        free(b);
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

/* Under mu: the broker of node_id, made if new; a known one whose address
 * changed is reconnected.  NULL when out of memory. */
static fl_broker *
fl_get_broker(pkc_fl *fl, int32_t node_id, const char *host, int port)
{
    for (size_t i = 0; i < fl->nbrokers; i++) {
        fl_broker *b = fl->brokers[i];
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
    return fl_broker_new(fl, node_id, host, port);
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
        b = fl_get_broker(fl, node_id, host, port);
        if (b == NULL) {
            rc = PKC_ERR_NOMEM;
            goto done;
        }
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
    p->ask_first = 0;
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
    fl_take_record(fl, i, rec, buf, &to_free, &need_wake);
    pkc_answer_buf_ref(*buf);
    *partition = fl->parts[i].id;
    fl->ready = fl->parts[i].ring_next;
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
    fl_take_record(fl, i, rec, buf, &to_free, &need_wake);
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

        fl_take_record(fl, i, &out[n].rec, &buf, &to_free, &need_wake);
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
        fl->ready = fl->parts[i].ring_next;
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
    out->high_watermark = p->high_watermark;
    out->last_stable_offset = p->last_stable_offset;
    out->log_start_offset = p->log_start_offset;
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

/* Without mu: do what the plan asked of each broker of the round. */
static void
fl_act(pkc_fl *fl)
{
    for (size_t k = 0; k < fl->n_round; k++) {
        fl_broker *b = fl->round[k];
        if (b->want_connect)
            fl_connect_start(fl, b);
        else if (b->want_send)
            fl_send_fetch(fl, b);
        else if (b->want_reauth)
            fl_link_step(fl, b);
    }
}

/* Without mu: wait until a link is ready, the thread is woken, or `next`;
 * then serve the ready links and the deadlines passed. */
static void
fl_poll(pkc_fl *fl, int64_t next)
{
    pkc_reactor *reactor = &fl->reactor;

    if (fl_poll_set(fl, &next) != PKC_OK) {
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
        return;
    }
    if (pkc_reactor_wait(reactor, next * 1000, FL_TICK_MS) > 0) {
        for (size_t i = 1; i < pkc_reactor_count(reactor); i++)
            if (pkc_reactor_revents(reactor, i))
                fl_on_ready(fl, pkc_reactor_owner(reactor, i),
                            pkc_reactor_revents(reactor, i));
    }
    fl_check_deadlines(fl);
}

/* The thread: plan under mu, then act and poll without it, until
 * stopped. */
static void *
fl_thread_main(void *arg)
{
    pkc_fl *fl = arg;

    fl_lock(fl);
    while (!fl->stopping) {
        int64_t next = fl_plan(fl, pkc_now_ms());

        fl_unlock(fl);
        fl_act(fl);
        fl_poll(fl, next);
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

/* Under mu, the thread gone: close every link and forget what was in
 * flight. */
static void
fl_reset_brokers(pkc_fl *fl)
{
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
}

/* Under mu, the thread gone: drop every queue (returned as one list to
 * free without mu), rewind each partition to last_consumed + 1, clear
 * its event and make it fetchable again. */
static fl_chunk *
fl_reset_partitions(pkc_fl *fl)
{
    fl_chunk *drop = NULL;

    for (size_t i = 0; i < fl->nparts; i++) {
        fl_part *p = &fl->parts[i];
        fl_chunk *c = fl_detach_queue(fl, (long)i);
        if (c != NULL) {
            fl_chunk *tail = c;
            while (tail->next)
                tail = tail->next;
            tail->next = drop;
            drop = c;
        }
        p->fetch_offset = p->last_consumed + 1;
        p->inflight = NULL;
        p->ask_first = 0;
        p->gen++;
        p->resume_at = 0;
        p->ev_pending = 0;
        p->state = p->leader ? PKC_FL_ACTIVE : PKC_FL_WAIT_LEADER;
    }
    fl->ready = -1;
    atomic_store(&fl->n_events, 0);
    return drop;
}

void
pkc_fl_stop(pkc_fl *fl)
{
    fl_chunk *drop;
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
    fl_reset_brokers(fl);
    drop = fl_reset_partitions(fl);
    fl->wake_pending = 0; /* a wake-up left in the reactor costs one round */
    fl->stop_in_progress = 0;
    pthread_cond_broadcast(&fl->cv);
    fl_unlock(fl);
    fl_chunk_free_list(drop);
}
