/*
 * send_batch.c - a batch's life in the send engine (see send_engine.h):
 * made, reused and freed, its cookies, its moves between its partition's
 * queues, filed on the done list, and split in two when the broker
 * refuses it as too large.
 */
#include <stdlib.h>
#include <string.h>

#include "send_engine.h"

/* Batches kept for reuse (each keeps its builder's buffers). */
#define FREE_BATCHES_MAX 8

/* ------------------------------------------------------------ memory */

pkc_sl_batch *
sl_batch_get(pkc_sl *sl, int32_t partition)
{
    pkc_sl_batch *bt = sl->free_list;

    if (bt != NULL) {
        sl->free_list = bt->next;
        sl->nfree--;
        pkc_batch_builder_reset(&bt->bb);
    }
    else {
        bt = calloc(1, sizeof(*bt));
        if (bt == NULL)
            return NULL;
        if (pkc_batch_builder_init(&bt->bb, sl->cfg.codec, sl->cfg.level,
                                   sl->batch_max) != PKC_OK) {
            pkc_batch_builder_free(&bt->bb);
            free(bt);
            return NULL;
        }
    }
    bt->bb.transactional = sl->transactional_id != NULL;
    bt->next = NULL;
    bt->partition = partition;
    bt->count = 0;
    bt->first_us = -1;
    bt->created_ms = pkc_now_ms();
    bt->not_before_ms = 0;
    bt->attempts = 0;
    bt->stamp_gen = -1;
    bt->stamp_pid = -1;
    bt->stamp_epoch = -1;
    bt->base_seq = -1;
    bt->full = 0;
    bt->finish_tried = 0;
    bt->finished = 0;
    bt->wire = NULL;
    bt->wire_len = 0;
    bt->base_offset = -1;
    bt->log_append_time = -1;
    memset(&bt->result, 0, sizeof(bt->result));
    return bt;
}

void
sl_batch_put(pkc_sl *sl, pkc_sl_batch *bt)
{
    if (sl->nfree >= FREE_BATCHES_MAX) {
        sl_batch_destroy(bt);
        return;
    }
    bt->count = 0;
    bt->next = sl->free_list;
    sl->free_list = bt;
    sl->nfree++;
}

void
sl_batch_destroy(pkc_sl_batch *bt)
{
    if (bt == NULL)
        return;
    pkc_batch_builder_free(&bt->bb);
    free(bt->cookies);
    free(bt);
}

int
sl_batch_reserve_cookie(pkc_sl_batch *bt)
{
    if (bt->count >= bt->cookies_cap) {
        int32_t ncap = bt->cookies_cap ? bt->cookies_cap * 2 : 256;
        pkc_sl_cookie *n = realloc(bt->cookies, (size_t)ncap * sizeof(*n));

        if (n == NULL)
            return PKC_ERR_NOMEM;
        bt->cookies = n;
        bt->cookies_cap = ncap;
    }
    return PKC_OK;
}

int
sl_batch_add_cookie(pkc_sl_batch *bt, const pkc_sl_cookie *c)
{
    if (sl_batch_reserve_cookie(bt) != PKC_OK)
        return PKC_ERR_NOMEM;
    bt->cookies[bt->count] = *c;
    return PKC_OK;
}

void
pkc_sl_batch_release(pkc_sl *sl, pkc_sl_batch *bt)
{
    pthread_mutex_lock(&sl->mu);
    sl_batch_put(sl, bt);
    pthread_mutex_unlock(&sl->mu);
}

/* ------------------------------------------------ the partition queues */

void
sl_batch_unsent_add(pkc_sl *sl, sl_part *p, int64_t n)
{
    p->unsent += n;
    sl->stats.unsent += n;
    if (p->broker != NULL)
        p->broker->unsent += n;
    if (n < 0)
        pthread_cond_broadcast(&sl->space_cond);
}

/* Append `bt` to the FIFO (*head, *tail). */
static void
sl_batch_fifo_push(pkc_sl_batch **head, pkc_sl_batch **tail,
                   pkc_sl_batch *bt)
{
    bt->next = NULL;
    if (*tail != NULL)
        (*tail)->next = bt;
    else
        *head = bt;
    *tail = bt;
}

void
sl_batch_to_ready(sl_part *p, pkc_sl_batch *bt)
{
    sl_batch_fifo_push(&p->ready_head, &p->ready_tail, bt);
}

void
sl_batch_to_request(pkc_sl *sl, sl_part *p, sl_broker *b, pkc_sl_batch *bt)
{
    if (bt == p->open) {
        p->open = NULL;
    }
    else {
        p->ready_head = bt->next;
        if (p->ready_head == NULL)
            p->ready_tail = NULL;
    }
    bt->next = NULL;
    p->n_in_flight++;
    p->inflight_broker = b;
    sl->inflight_batches++;
    if (p->n_in_flight > sl->stats.max_partition_in_flight)
        sl->stats.max_partition_in_flight = p->n_in_flight;
    sl_batch_unsent_add(sl, p, -bt->count);
}

void
sl_batch_to_retry(pkc_sl *sl, pkc_sl_batch *bt)
{
    sl_part *p = &sl->parts[bt->partition];

    sl_batch_fifo_push(&p->retry_head, &p->retry_tail, bt);
    sl_batch_unsent_add(sl, p, bt->count);
}

void
sl_batch_landed(pkc_sl *sl, int32_t partition)
{
    sl_part *p = &sl->parts[partition];

    if (p->n_in_flight > 0) {
        p->n_in_flight--;
        sl->inflight_batches--;
    }
    if (p->n_in_flight > 0)
        return;
    p->inflight_broker = NULL;
    if (p->retry_head != NULL) {
        p->retry_tail->next = p->ready_head;
        if (p->ready_head == NULL)
            p->ready_tail = p->retry_tail;
        p->ready_head = p->retry_head;
        p->retry_head = p->retry_tail = NULL;
        sl_wake_sender(sl);
    }
}

size_t
sl_batch_size(const pkc_sl_batch *bt)
{
    return bt->finished ? bt->wire_len : pkc_batch_builder_size(&bt->bb);
}

/* ----------------------------------------------------------- results */

void
sl_batch_complete(pkc_sl *sl, pkc_sl_batch *bt)
{
    int failed = bt->result.kind != PKC_SL_OK;

    sl->stats.completed += bt->count;
    if (failed)
        sl->stats.failed += bt->count;
    if (!failed && !sl->cfg.keep_cookies) {
        sl_batch_put(sl, bt);
    }
    else {
        sl_batch_fifo_push(&sl->done_head, &sl->done_tail, bt);
        pthread_cond_broadcast(&sl->ev_cond);
    }
    if (sl->stats.appended - sl->stats.completed == 0)
        pthread_cond_broadcast(&sl->idle_cond);
}

void
sl_batch_fail(pkc_sl *sl, pkc_sl_batch *bt, const pkc_sl_result *r)
{
    bt->result = *r;
    bt->base_offset = -1;
    sl_batch_complete(sl, bt);
}

/* --------------------------------------------------- delivery timeout */

/* When the batch's delivery timeout starts: its first record. */
static int64_t
sl_batch_since(const pkc_sl_batch *bt)
{
    return bt->first_us >= 0 ? bt->first_us / 1000 : bt->created_ms;
}

int64_t
sl_delivery_deadline(const pkc_sl *sl, const pkc_sl_batch *bt)
{
    return sl_batch_since(bt) + sl->cfg.delivery_timeout_ms;
}

void
sl_expired_result(const pkc_sl *sl, const pkc_sl_batch *bt,
                  const pkc_sl_result *last, int64_t now,
                  pkc_sl_result *out)
{
    sl_set_result(out, last->kind, last->error_code, last->status,
                  "delivery_timeout_ms=%d passed (%lld ms, %d attempts): "
                  "%s", sl->cfg.delivery_timeout_ms,
                  (long long)(now - sl_batch_since(bt)), bt->attempts,
                  last->message);
}

/* ------------------------------------------------------------- split */

int
sl_batch_split(pkc_sl *sl, pkc_sl_batch *bt, pkc_sl_batch **first,
               pkc_sl_batch **second)
{
    pkc_records_iter it;
    pkc_record rec;
    pkc_sl_batch *halves[2] = {NULL, NULL};
    pkc_header *hdrs = NULL;
    int32_t hcap = 0;
    int32_t half = bt->count / 2, idx = 0;
    int rc, step;

    *first = *second = NULL;
    pthread_mutex_lock(&sl->mu);
    halves[0] = sl_batch_get(sl, bt->partition);
    halves[1] = sl_batch_get(sl, bt->partition);
    pthread_mutex_unlock(&sl->mu);
    if (halves[0] == NULL || halves[1] == NULL) {
        rc = PKC_ERR_NOMEM;
        goto error;
    }
    rc = pkc_records_iter_init(&it, bt->wire, bt->wire_len, NULL);
    if (rc != PKC_OK) {
        pkc_records_iter_free(&it);
        goto error;
    }
    while ((step = pkc_records_next(&it, &rec)) == 1) {
        pkc_sl_batch *h = halves[idx < half ? 0 : 1];
        pkc_header_iter hi;
        pkc_slice hk, hv;
        int32_t nh = 0;

        if (rec.header_count > hcap) {
            pkc_header *nhd = realloc(hdrs, (size_t)rec.header_count *
                                                sizeof(*nhd));
            if (nhd == NULL) {
                rc = PKC_ERR_NOMEM;
                break;
            }
            hdrs = nhd;
            hcap = rec.header_count;
        }
        pkc_record_headers_init(&hi, &rec);
        while (nh < rec.header_count &&
               pkc_record_headers_next(&hi, &hk, &hv) == 1) {
            hdrs[nh].key = hk;
            hdrs[nh].value = hv;
            nh++;
        }
        rc = pkc_batch_builder_append(&h->bb, rec.timestamp, rec.key.ptr,
                                      rec.key.len, rec.value.ptr,
                                      rec.value.len, hdrs, nh);
        if (rc != PKC_OK)
            break;
        if (bt->cookies != NULL && idx < bt->count) {
            rc = sl_batch_add_cookie(h, &bt->cookies[idx]);
            if (rc != PKC_OK)
                break;
        }
        h->count++;
        idx++;
    }
    if (step < 0)
        rc = step;
    pkc_records_iter_free(&it);
    free(hdrs);
    hdrs = NULL;
    if (rc != PKC_OK || idx != bt->count)
        goto error;
    for (int i = 0; i < 2; i++) {
        halves[i]->attempts = bt->attempts;
        halves[i]->first_us = bt->first_us;
        halves[i]->created_ms = bt->created_ms;
    }
    *first = halves[0];
    *second = halves[1];
    return PKC_OK;

error:
    free(hdrs);
    pthread_mutex_lock(&sl->mu);
    for (int i = 0; i < 2; i++)
        if (halves[i] != NULL)
            sl_batch_put(sl, halves[i]);
    pthread_mutex_unlock(&sl->mu);
    return rc != PKC_OK ? rc : PKC_ERR_INVALID;
}

