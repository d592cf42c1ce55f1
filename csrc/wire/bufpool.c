/*
 * bufpool.c - the block pool, the refcounted answer buffer and the
 * record vector (see bufpool.h).
 */
#include "bufpool.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

struct pkc_bufpool {
    pthread_mutex_t mu;
    atomic_long refs;
    size_t n, total;   /* blocks kept, and their bytes */
    struct {
        void *mem;
        size_t cap;
    } blk[PKC_BUFPOOL_SLOTS];
};

/* ----------------------------------------------------------------- pool */

pkc_bufpool *
pkc_bufpool_new(void)
{
    pkc_bufpool *pool = calloc(1, sizeof(*pool));

    if (pool == NULL)
        return NULL;
    pthread_mutex_init(&pool->mu, NULL);
    atomic_init(&pool->refs, 1);
    return pool;
}

void
pkc_bufpool_release(pkc_bufpool *pool)
{
    if (pool == NULL)
        return;
    if (atomic_fetch_sub_explicit(&pool->refs, 1, memory_order_acq_rel) ==
        1) {
        for (size_t i = 0; i < pool->n; i++)
            free(pool->blk[i].mem);
        pthread_mutex_destroy(&pool->mu);
        free(pool);
    }
}

/* Under pool->mu: take the smallest kept block of at least `need` bytes,
 * or return NULL. */
static void *
pool_take_best_fit(pkc_bufpool *pool, size_t need, size_t *cap)
{
    size_t best = SIZE_MAX;
    void *blk;

    for (size_t i = 0; i < pool->n; i++)
        if (pool->blk[i].cap >= need &&
            (best == SIZE_MAX || pool->blk[i].cap < pool->blk[best].cap))
            best = i;
    if (best == SIZE_MAX)
        return NULL;
    blk = pool->blk[best].mem;
    *cap = pool->blk[best].cap;
    pool->total -= *cap;
    pool->blk[best] = pool->blk[--pool->n];
    return blk;
}

void *
pkc_bufpool_get(pkc_bufpool *pool, size_t need, size_t *cap)
{
    void *blk = NULL;

    if (need == 0)
        need = 1;
    if (pool != NULL) {
        pthread_mutex_lock(&pool->mu);
        blk = pool_take_best_fit(pool, need, cap);
        pthread_mutex_unlock(&pool->mu);
        if (blk != NULL)
            return blk;
    }
    blk = malloc(need);
    *cap = need;
    return blk;
}

void
pkc_bufpool_put(pkc_bufpool *pool, void *blk, size_t cap)
{
    if (blk == NULL)
        return;
    if (pool != NULL && cap <= PKC_BUFPOOL_MAX_BLOCK) {
        pthread_mutex_lock(&pool->mu);
        if (pool->n < PKC_BUFPOOL_SLOTS &&
            pool->total + cap <= PKC_BUFPOOL_MAX_TOTAL) {
            pool->blk[pool->n].mem = blk;
            pool->blk[pool->n].cap = cap;
            pool->n++;
            pool->total += cap;
            blk = NULL;
        }
        pthread_mutex_unlock(&pool->mu);
    }
    free(blk);
}

/* ------------------------------------------------------- answer buffer */

pkc_answer_buf *
pkc_answer_buf_new(pkc_bufpool *pool, const uint8_t *data, size_t len,
                   size_t arena_max)
{
    pkc_answer_buf *buf = calloc(1, sizeof(*buf));

    if (buf == NULL)
        return NULL;
    buf->data = pkc_bufpool_get(pool, len, &buf->data_cap);
    if (buf->data == NULL) {
        free(buf);
        return NULL;
    }
    if (len)
        memcpy(buf->data, data, len);
    buf->len = len;
    atomic_init(&buf->refs, 1);
    if (pool != NULL) {
        atomic_fetch_add_explicit(&pool->refs, 1, memory_order_relaxed);
        buf->pool = pool;
    }
    pkc_arena_init(&buf->arena, arena_max);
    return buf;
}

void
pkc_answer_buf_release(pkc_answer_buf *buf)
{
    if (buf == NULL)
        return;
    if (atomic_fetch_sub_explicit(&buf->refs, 1, memory_order_acq_rel) ==
        1) {
        pkc_arena_free(&buf->arena);
        pkc_bufpool_put(buf->pool, buf->data, buf->data_cap);
        pkc_bufpool_release(buf->pool);
        free(buf);
    }
}

/* ------------------------------------------------------- record vector */

int
pkc_recvec_reserve(pkc_recvec *rv, size_t extra)
{
    size_t want, bytes;
    pkc_record *nv;

    if (rv->n + extra <= rv->cap)
        return PKC_OK;
    want = rv->cap ? rv->cap * 2 : 256;
    if (want < rv->n + extra)
        want = rv->n + extra;
    if (want > SIZE_MAX / sizeof(pkc_record))
        return PKC_ERR_NOMEM;
    nv = pkc_bufpool_get(rv->pool, want * sizeof(pkc_record), &bytes);
    if (nv == NULL)
        return PKC_ERR_NOMEM;
    if (rv->n)
        memcpy(nv, rv->v, rv->n * sizeof(pkc_record));
    pkc_bufpool_put(rv->pool, rv->v, rv->cap * sizeof(pkc_record));
    rv->v = nv;
    rv->cap = bytes / sizeof(pkc_record);
    return PKC_OK;
}

void
pkc_recvec_free(pkc_recvec *rv)
{
    pkc_bufpool_put(rv->pool, rv->v, rv->cap * sizeof(pkc_record));
    rv->v = NULL;
    rv->n = rv->cap = 0;
}
