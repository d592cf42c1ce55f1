/*
 * fetchloop_part.c - a partition's state as the fetch engine's files share
 * it: its queue of record chunks, its place in the ring of partitions with
 * records (the order consumers are served in), and its pending event.
 * Private to the engine (see fetchloop_int.h); everything here runs under
 * mu but fl_chunk_free_list.
 */
#include "fetchloop_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

/* ---------------------------------------------------------------- ring */

/* Under mu: partition i has records queued: serve it in turn. */
static void
part_ring_insert(pkc_fl *fl, long i)
{
    fl_part *p = &fl->parts[i];

    if (p->in_ring)
        return;
    if (fl->ready < 0) {
        p->ring_next = p->ring_prev = i;
        fl->ready = i;
    }
    else {
        long last = fl->parts[fl->ready].ring_prev;
        p->ring_next = fl->ready;
        p->ring_prev = last;
        fl->parts[last].ring_next = i;
        fl->parts[fl->ready].ring_prev = i;
    }
    p->in_ring = 1;
}

/* Under mu: partition i has no records queued any more. */
void
fl_ring_remove(pkc_fl *fl, long i)
{
    fl_part *p = &fl->parts[i];

    if (!p->in_ring)
        return;
    if (p->ring_next == i) {
        fl->ready = -1;
    }
    else {
        fl->parts[p->ring_prev].ring_next = p->ring_next;
        fl->parts[p->ring_next].ring_prev = p->ring_prev;
        if (fl->ready == i)
            fl->ready = p->ring_next;
    }
    p->ring_next = p->ring_prev = -1;
    p->in_ring = 0;
}

/* --------------------------------------------------------------- queue */

/* Without mu: free a list of chunks: their record blocks go back to the
 * pool, their buffer references are dropped. */
void
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

/* Under mu: append chunk c to partition i's queue (it takes the chunk)
 * and move the partition's position past it.  Returns 1 when consumers
 * wait in pkc_fl_wait: the caller wakes them after unlocking mu, so that
 * a woken consumer does not go back to sleep on mu at once. */
int
fl_enqueue(pkc_fl *fl, long i, fl_chunk *c)
{
    fl_part *p = &fl->parts[i];

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
    part_ring_insert(fl, i);
    return fl->waiters > 0;
}

/* Under mu: detach partition i's queue; the caller frees the list after
 * unlocking. */
fl_chunk *
fl_detach_queue(pkc_fl *fl, long i)
{
    fl_part *p = &fl->parts[i];
    fl_chunk *c = p->head;

    p->head = p->tail = NULL;
    p->queued = 0;
    fl_ring_remove(fl, i);
    return c;
}

/* Under mu: take the next record of partition i.  Chunks emptied go to
 * *to_free; *need_wake is set when the partition became fetchable. */
void
fl_take_record(pkc_fl *fl, long i, pkc_record *rec,
               pkc_answer_buf **buf, fl_chunk **to_free, int *need_wake)
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
    if (p->queued == fl_refetch_below(fl, p) - 1 &&
        p->state == PKC_FL_ACTIVE && p->inflight == NULL)
        *need_wake = 1;
}

/* --------------------------------------------------------------- event */

/* Under mu: post an event for partition p; at most one is pending.
 * Returns 1 when the event was posted, 0 when one was pending already. */
int
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
