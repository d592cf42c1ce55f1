/*
 * send_idem.c - the idempotent producer's state (KIP-98, KIP-360; see
 * send_engine.h): the producer-id handover, each partition's sequence
 * numbers, and the epoch bump that restarts them.
 *
 * The rules, as Kafka's Java producer keeps them for an idempotent
 * (not transactional) producer:
 * - A batch is numbered once, when first written, under its partition's
 *   producer id, epoch and next sequence; every retry carries the same
 *   numbers, so a leader that already has the batch recognises it
 *   (DUPLICATE_SEQUENCE_NUMBER, or its original offset).  Nothing that
 *   may have been written is ever numbered again.
 * - A partition's numbers change only when its leader answers the
 *   earliest of its batches in flight with OUT_OF_ORDER_SEQUENCE_NUMBER
 *   or UNKNOWN_PRODUCER_ID: that batch is not in the log, and neither is
 *   any later one of the partition (a leader appends only in sequence).
 *   Once none of them is in flight, the epoch of the same producer id is
 *   bumped and the partition's waiting batches are numbered from 0 under
 *   it (a leader takes sequence 0 of a newer epoch).  The other
 *   partitions keep their numbers: a leader keeps each partition's
 *   producer state apart.
 * - The epoch is bumped here, not with InitProducerId: brokers answer an
 *   InitProducerId without a transactional id with a new producer id
 *   whatever id and epoch it carries (v3+ bumps only a transactional
 *   id's epoch).
 * - A new producer id only when the leader knows a newer epoch of ours
 *   (INVALID_PRODUCER_EPOCH) or the epoch is exhausted.
 */
#include <stdint.h>

#include "send_engine.h"

/* Restart `p`'s sequences at 0 under the current producer id and epoch
 * (mu held). */
static void
sl_idem_part_restart(pkc_sl *sl, sl_part *p)
{
    p->seq_gen = sl->pid_gen;
    p->seq_pid = sl->pid;
    p->seq_epoch = sl->epoch;
    p->next_seq = 0;
}

void
sl_idem_want_producer_id(pkc_sl *sl)
{
    /* A transactional producer's ids come from the glue's transaction
     * protocol only (InitProducerId with its transactional id). */
    if (sl->pid_wanted || sl->have_pending || !sl->cfg.idempotent ||
        sl->transactional_id != NULL)
        return;
    sl->pid_wanted = 1;
    sl->ev_pid = 1;
    sl->stats.producer_id_requests++;
    pthread_cond_broadcast(&sl->ev_cond);
}

/* Without a producer id no partition is numbered (mu held). */
static void
sl_idem_forget_all(pkc_sl *sl)
{
    for (int32_t id = 0; id < sl->nparts; id++) {
        sl_idem_forget_partition(sl, &sl->parts[id]);
        sl->parts[id].seq_gen = -1;
    }
}

int
sl_idem_apply_producer_id(pkc_sl *sl)
{
    if (!sl->have_pending)
        return 1;
    /* Batches numbered one way must not be in flight when the next go
     * the other way. */
    if ((sl->pid < 0 || sl->pending_pid < 0) && sl->inflight_batches > 0)
        return 0;
    sl->pid = sl->pending_pid;
    sl->epoch = sl->pid >= 0 ? sl->pending_epoch : -1;
    sl->pid_gen++;
    sl->have_pending = 0;
    sl->stats.producer_id = sl->pid;
    sl->stats.producer_epoch = sl->epoch;
    /* A transactional producer's new epoch restarts every partition. */
    if (sl->pid < 0 || sl->transactional_id != NULL)
        sl_idem_forget_all(sl);
    return 1;
}

/* Bump the epoch of the producer id in use (mu held).  Returns 1, or 0
 * when the epoch is exhausted: a new producer id was asked for. */
static int
sl_idem_bump_epoch(pkc_sl *sl)
{
    if (sl->epoch >= INT16_MAX) {
        sl_idem_want_producer_id(sl);
        return 0;
    }
    sl->epoch++;
    sl->pid_gen++;
    sl->stats.producer_epoch = sl->epoch;
    sl->stats.epoch_bumps++;
    return 1;
}

/* May `p`'s sequences restart now: it wants it and none of its batches
 * is in flight (mu held). */
static int
sl_idem_reset_due(const sl_part *p)
{
    return p->reset_wanted && p->n_in_flight == 0;
}

void
sl_idem_apply_resets(pkc_sl *sl)
{
    int due = 0, need_bump = 0;

    if (sl->resets_wanted == 0 || sl->have_pending || sl->pid_wanted)
        return;
    for (int32_t id = 0; id < sl->nparts; id++) {
        const sl_part *p = &sl->parts[id];

        if (!sl_idem_reset_due(p))
            continue;
        due = 1;
        /* Sequence 0 again needs an epoch newer than the one its leader
         * saw last. */
        if (p->seq_pid == sl->pid && p->seq_epoch == sl->epoch)
            need_bump = 1;
    }
    if (!due || (need_bump && !sl_idem_bump_epoch(sl)))
        return;
    for (int32_t id = 0; id < sl->nparts; id++) {
        sl_part *p = &sl->parts[id];

        if (!sl_idem_reset_due(p))
            continue;
        sl_idem_part_restart(sl, p);
        p->reset_wanted = 0;
        sl->resets_wanted--;
        sl->stats.sequence_resets++;
    }
}

void
sl_idem_want_reset(pkc_sl *sl, sl_part *p)
{
    if (p->reset_wanted)
        return;
    p->reset_wanted = 1;
    sl->resets_wanted++;
}

void
sl_idem_forget_partition(pkc_sl *sl, sl_part *p)
{
    if (p->reset_wanted) {
        p->reset_wanted = 0;
        sl->resets_wanted--;
    }
}

/* Does `bt` keep the numbers it was first written with (mu held)? */
static int
sl_idem_keeps_numbers(const sl_part *p, const pkc_sl_batch *bt)
{
    return bt->stamp_gen >= 0 && bt->stamp_gen == p->seq_gen;
}

void
sl_idem_preset(const pkc_sl *sl, const sl_part *p, pkc_sl_batch *bt)
{
    pkc_batch_builder *bb = &bt->bb;

    if (sl->pid < 0) {
        bb->producer_id = -1;
        bb->producer_epoch = -1;
        bb->base_sequence = -1;
    }
    else if (sl_idem_keeps_numbers(p, bt)) {
        bb->producer_id = bt->stamp_pid;
        bb->producer_epoch = bt->stamp_epoch;
        bb->base_sequence = bt->base_seq;
    }
    else if (p->seq_gen >= 0) {
        bb->producer_id = p->seq_pid;
        bb->producer_epoch = p->seq_epoch;
        bb->base_sequence = p->next_seq;
    }
    else {
        bb->producer_id = sl->pid;
        bb->producer_epoch = sl->epoch;
        bb->base_sequence = 0;
    }
}

void
sl_idem_stamp(pkc_sl *sl, sl_part *p, pkc_sl_batch *bt)
{
    if (sl->pid < 0) {
        bt->stamp_gen = -1;
        bt->stamp_pid = -1;
        bt->stamp_epoch = -1;
        bt->base_seq = -1;
        return;
    }
    if (sl_idem_keeps_numbers(p, bt))
        return;
    if (p->seq_gen < 0)
        sl_idem_part_restart(sl, p);
    bt->stamp_gen = p->seq_gen;
    bt->stamp_pid = p->seq_pid;
    bt->stamp_epoch = p->seq_epoch;
    bt->base_seq = p->next_seq;
    p->next_seq = (int32_t)(((int64_t)p->next_seq + bt->count) & INT32_MAX);
}

int
pkc_sl_set_producer_id(pkc_sl *sl, int64_t producer_id,
                       int16_t producer_epoch)
{
    pthread_mutex_lock(&sl->mu);
    if (!sl->cfg.idempotent) {
        pthread_mutex_unlock(&sl->mu);
        return PKC_ERR_INVALID;
    }
    if (producer_id < 0) {
        /* Give idempotence up: one batch per partition in flight. */
        sl->cfg.idempotent = 0;
        producer_id = -1;
        producer_epoch = -1;
    }
    sl->pending_pid = producer_id;
    sl->pending_epoch = producer_epoch;
    sl->have_pending = 1;
    sl->pid_wanted = 0;
    sl->ev_pid = 0;
    sl_wake_sender(sl);
    pthread_mutex_unlock(&sl->mu);
    return PKC_OK;
}

int
sl_idem_awaiting_first_id(const pkc_sl *sl)
{
    return sl->cfg.idempotent && sl->pid < 0;
}

void
sl_idem_wait_result(const pkc_sl *sl, int64_t now, pkc_sl_result *out)
{
    long long waited = sl->pid_wait_since >= 0 ? now - sl->pid_wait_since
                                                : 0;

    if (sl->pid_failure.kind == PKC_SL_OK) {
        sl_set_result(out, PKC_SL_LOCAL, 0, PKC_ERR_TIMEOUT,
                      "no producer id after %lld ms (InitProducerId not "
                      "answered yet)", waited);
        return;
    }
    sl_set_result(out, sl->pid_failure.kind, sl->pid_failure.error_code,
                  sl->pid_failure.status, "no producer id after %lld ms: %s",
                  waited, sl->pid_failure.message);
}

int
pkc_sl_producer_id_failed(pkc_sl *sl, int error_code, const char *message)
{
    pthread_mutex_lock(&sl->mu);
    if (!sl->cfg.idempotent) {
        pthread_mutex_unlock(&sl->mu);
        return PKC_ERR_INVALID;
    }
    if (error_code != 0)
        sl_set_result(&sl->pid_failure, PKC_SL_KAFKA, (int16_t)error_code,
                      0, "%s", message);
    else
        sl_set_result(&sl->pid_failure, PKC_SL_DISCONNECTED, 0, PKC_ERR_IO,
                      "%s", message);
    sl->pid_failures++;
    sl_wake_sender(sl);
    pthread_mutex_unlock(&sl->mu);
    return PKC_OK;
}
