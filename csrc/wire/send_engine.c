/*
 * send_engine.c - making and freeing a send engine (see send_engine.h):
 * the config checked and copied with its defaults, the largest batch a
 * request can carry, the lock, condition variables and reactor; and
 * everything the engine owns freed once it is stopped.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "compress.h"
#include "send_engine.h"

/* Topic names are Kafka STRINGs: an int16 length. */
#define TOPIC_NAME_MAX 32767
/* Defaults for the timeouts the config leaves at 0 or below. */
#define CONNECT_TIMEOUT_MS_DEFAULT 10000
#define REQUEST_TIMEOUT_MS_DEFAULT 30000
#define LEADER_WAIT_MS_DEFAULT 10000
/* A batch has room for at least this much past its header. */
#define BATCH_RECORDS_MIN 16

/* Is `cfg` one an engine can be made of?  PKC_OK, or an error with its
 * sentence in errbuf. */
static int
sl_engine_check_config(const pkc_sl_config *cfg, char *errbuf,
                       size_t errlen)
{
    if (cfg->topic == NULL || cfg->topic[0] == '\0' ||
        strlen(cfg->topic) > TOPIC_NAME_MAX) {
        snprintf(errbuf, errlen, "invalid topic name");
        return PKC_ERR_INVALID;
    }
    if (!pkc_codec_available(cfg->codec)) {
        snprintf(errbuf, errlen, "compression codec %s is not available "
                 "in this build", pkc_codec_name(cfg->codec));
        return PKC_ERR_CODEC;
    }
    if (cfg->max_retries < 0 || cfg->retry_backoff_ms < 0 ||
        cfg->linger_ms < 0 || cfg->min_queued < 1 ||
        cfg->max_request_size < 1 || cfg->max_in_flight < 1) {
        snprintf(errbuf, errlen, "invalid producer configuration");
        return PKC_ERR_INVALID;
    }
    if (cfg->transactional_id != NULL &&
        (!cfg->idempotent || cfg->transactional_id[0] == '\0')) {
        snprintf(errbuf, errlen, "a transactional producer needs "
                 "idempotence and a non-empty transactional id");
        return PKC_ERR_INVALID;
    }
    return PKC_OK;
}

/* The engine's own copy of `cfg`: its strings duplicated, the defaults
 * filled in.  PKC_OK or PKC_ERR_NOMEM (the copies made so far are freed
 * with the engine). */
static int
sl_engine_own_config(pkc_sl *sl, const pkc_sl_config *cfg)
{
    sl->cfg = *cfg;
    sl->topic = strdup(cfg->topic);
    sl->client_id = strdup(cfg->client_id ? cfg->client_id : "pykafka_c");
    sl->source_host = strdup(cfg->source_host ? cfg->source_host : "");
    sl->software_version = strdup(cfg->software_version
                                      ? cfg->software_version : "0");
    sl->security = pkc_security_ref(cfg->security);
    if (cfg->transactional_id != NULL) {
        sl->transactional_id = strdup(cfg->transactional_id);
        if (sl->transactional_id == NULL)
            return PKC_ERR_NOMEM;
    }
    if (sl->topic == NULL || sl->client_id == NULL ||
        sl->source_host == NULL || sl->software_version == NULL)
        return PKC_ERR_NOMEM;
    sl->cfg.topic = sl->topic;
    sl->cfg.client_id = sl->client_id;
    sl->cfg.source_host = sl->source_host;
    sl->cfg.software_version = sl->software_version;
    sl->cfg.transactional_id = sl->transactional_id;
    sl->topic_len = strlen(sl->topic);
    if (sl->cfg.max_queued < 1)
        sl->cfg.max_queued = 1;
    if (sl->cfg.connect_timeout_ms <= 0)
        sl->cfg.connect_timeout_ms = CONNECT_TIMEOUT_MS_DEFAULT;
    if (sl->cfg.request_timeout_ms <= 0)
        sl->cfg.request_timeout_ms = REQUEST_TIMEOUT_MS_DEFAULT;
    if (sl->cfg.leader_wait_ms <= 0)
        sl->cfg.leader_wait_ms = LEADER_WAIT_MS_DEFAULT;
    return PKC_OK;
}

/* The largest batch: one must fit in one request with its framing. */
static size_t
sl_engine_batch_max(const pkc_sl *sl)
{
    size_t overhead = PKC_SL_REQUEST_OVERHEAD + sl->topic_len +
                      PKC_SL_PARTITION_OVERHEAD + strlen(sl->client_id) +
                      (sl->transactional_id != NULL
                           ? strlen(sl->transactional_id) : 0);
    size_t batch_max = PKC_BATCH_HEADER_SIZE + BATCH_RECORDS_MIN;

    if (sl->cfg.max_request_size > overhead + batch_max)
        batch_max = sl->cfg.max_request_size - overhead;
    if (batch_max > INT32_MAX)
        batch_max = INT32_MAX;
    return batch_max;
}

/* A condition variable whose timed waits count on the monotonic clock,
 * as the engine's deadlines do (pkc_now_ms). */
static void
sl_engine_cond_init_monotonic(pthread_cond_t *c)
{
    pthread_condattr_t attr;

    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(c, &attr);
    pthread_condattr_destroy(&attr);
}

/* The reactor (its wake-up eventfd), the lock and the condition
 * variables.  PKC_OK, or PKC_ERR_IO with nothing made. */
static int
sl_engine_init_sync(pkc_sl *sl, char *errbuf, size_t errlen)
{
    if (pkc_reactor_init(&sl->reactor) != PKC_OK) {
        snprintf(errbuf, errlen, "eventfd: %s", strerror(errno));
        return PKC_ERR_IO;
    }
    pthread_mutex_init(&sl->mu, NULL);
    sl_engine_cond_init_monotonic(&sl->space_cond);
    sl_engine_cond_init_monotonic(&sl->idle_cond);
    sl_engine_cond_init_monotonic(&sl->ev_cond);
    return PKC_OK;
}

/* No producer id yet; an idempotent engine asks the glue for one from
 * the start (acks=0 gets no answers, so no sequence checks either). */
static void
sl_engine_init_producer_id(pkc_sl *sl)
{
    if (sl->cfg.acks == 0)
        sl->cfg.idempotent = 0;
    sl->pid = -1;
    sl->epoch = -1;
    sl->stats.producer_id = -1;
    sl->stats.producer_epoch = -1;
    sl->pid_wait_since = -1;
    /* A transactional producer gets its id from init_transactions(). */
    if (sl->cfg.idempotent && sl->transactional_id == NULL) {
        sl->pid_wanted = 1;
        sl->ev_pid = 1;
        sl->stats.producer_id_requests = 1;
    }
}

/* Free the reactor, the security config's reference, the config's
 * strings and the engine itself (the lock and the condition variables
 * are the caller's). */
static void
sl_engine_free_owned(pkc_sl *sl)
{
    pkc_reactor_free(&sl->reactor);
    pkc_security_unref(sl->security);
    free(sl->topic);
    free(sl->client_id);
    free(sl->source_host);
    free(sl->software_version);
    free(sl->transactional_id);
    free(sl);
}

int
pkc_sl_new(pkc_sl **out, const pkc_sl_config *cfg, char *errbuf,
           size_t errlen)
{
    pkc_sl *sl;
    int rc;

    *out = NULL;
    if (errlen > 0)
        errbuf[0] = '\0';
    rc = sl_engine_check_config(cfg, errbuf, errlen);
    if (rc != PKC_OK)
        return rc;
    sl = calloc(1, sizeof(*sl));
    if (sl == NULL)
        return PKC_ERR_NOMEM;
    sl->reactor.wake_fd = -1;
    rc = sl_engine_own_config(sl, cfg);
    if (rc == PKC_OK) {
        sl->batch_max = sl_engine_batch_max(sl);
        rc = pkc_produce_fields_init(&sl->fields, errbuf, errlen);
    }
    if (rc == PKC_OK)
        rc = sl_engine_init_sync(sl, errbuf, errlen);
    if (rc != PKC_OK) {
        sl_engine_free_owned(sl);
        return rc;
    }
    sl->last_metadata_ms = -1;
    sl_engine_init_producer_id(sl);
    *out = sl;
    return PKC_OK;
}

void
pkc_sl_free(pkc_sl *sl)
{
    pkc_sl_batch *bt;

    if (sl == NULL)
        return;
    pkc_sl_stop(sl, 0);
    while ((bt = sl->done_head) != NULL) {
        sl->done_head = bt->next;
        sl_batch_destroy(bt);
    }
    while ((bt = sl->free_list) != NULL) {
        sl->free_list = bt->next;
        sl_batch_destroy(bt);
    }
    for (size_t i = 0; i < sl->nbrokers; i++) {
        if (sl->brokers[i]->link_inited)
            pkc_link_free(&sl->brokers[i]->link);
        free(sl->brokers[i]);
    }
    free(sl->brokers);
    free(sl->parts);
    free(sl->encode_parts);
    pthread_mutex_destroy(&sl->mu);
    pthread_cond_destroy(&sl->space_cond);
    pthread_cond_destroy(&sl->idle_cond);
    pthread_cond_destroy(&sl->ev_cond);
    sl_engine_free_owned(sl);
}
