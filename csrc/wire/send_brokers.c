/*
 * send_brokers.c - the send engine's broker and leader tables (see
 * send_engine.h): the brokers the glue last listed, each with its link,
 * and each partition's leader, resolved to its broker entry.
 */
#include <stdio.h>
#include <string.h>

#include "send_engine.h"

/* Partition ids above this are refused (metadata sanity). */
#define PARTITION_ID_MAX (1 << 20)
/* Room for this many broker entries at first (the table doubles). */
#define BROKERS_FIRST_CAP 8

sl_broker *
sl_brokers_find(pkc_sl *sl, int32_t node_id)
{
    for (size_t i = 0; i < sl->nbrokers; i++)
        if (sl->brokers[i]->node_id == node_id)
            return sl->brokers[i];
    return NULL;
}

/* The broker entry for a leader id, or NULL unless it is in the table. */
static sl_broker *
sl_brokers_leader(pkc_sl *sl, int32_t leader)
{
    sl_broker *b;

    if (leader < 0)
        return NULL;
    b = sl_brokers_find(sl, leader);
    return (b != NULL && b->present) ? b : NULL;
}

/* A broker's link, set up as the engine's config says. */
static int
sl_brokers_link_init(pkc_sl *sl, pkc_link *link)
{
    pkc_link_config lc;

    memset(&lc, 0, sizeof(lc));
    lc.client_id = sl->client_id;
    lc.source_host = sl->source_host;
    lc.source_port = sl->cfg.source_port;
    lc.setup_timeout_ms = sl->cfg.connect_timeout_ms;
    lc.security = sl->security;
    lc.software_name = "pykafka-c";
    lc.software_version = sl->software_version;
    return pkc_link_init(link, &lc);
}

/* A new entry for broker `node_id`, its link made, at the end of the
 * table; NULL when memory ran out (mu held). */
static sl_broker *
sl_brokers_add(pkc_sl *sl, int32_t node_id)
{
    sl_broker *b;

    if (sl->nbrokers == sl->cap_brokers) {
        size_t ncap = sl->cap_brokers ? sl->cap_brokers * 2
                                      : BROKERS_FIRST_CAP;
        sl_broker **more = realloc(sl->brokers, ncap * sizeof(*more));

        if (more == NULL)
            return NULL;
        sl->brokers = more;
        sl->cap_brokers = ncap;
    }
    b = calloc(1, sizeof(*b));
    if (b == NULL)
        return NULL;
    if (sl_brokers_link_init(sl, &b->link) != PKC_OK) {
        pkc_link_free(&b->link);
        free(b);
        return NULL;
    }
    b->link_inited = 1;
    b->node_id = node_id;
    b->produce_version = -1;
    sl->brokers[sl->nbrokers++] = b;
    return b;
}

/* Point partition `p` at its leader's entry, if the table has it, and
 * move its unsent records' count along; a partition without one is
 * leaderless from now on, if it was not already (mu held). */
static void
sl_brokers_attach_part(pkc_sl *sl, sl_part *p)
{
    sl_broker *leader_b = sl_brokers_leader(sl, p->leader);

    if (leader_b != p->broker) {
        if (p->broker != NULL)
            p->broker->unsent -= p->unsent;
        if (leader_b != NULL)
            leader_b->unsent += p->unsent;
        p->broker = leader_b;
    }
    if (leader_b == NULL) {
        if (p->leaderless_since < 0)
            p->leaderless_since = pkc_now_ms();
    }
    else {
        p->leaderless_since = -1;
    }
}

int
pkc_sl_set_brokers(pkc_sl *sl, const pkc_sl_broker_addr *addrs, size_t n)
{
    int rc = PKC_OK;

    pthread_mutex_lock(&sl->mu);
    for (size_t i = 0; i < sl->nbrokers; i++)
        sl->brokers[i]->present = 0;
    for (size_t i = 0; i < n; i++) {
        sl_broker *b = sl_brokers_find(sl, addrs[i].node_id);

        if (addrs[i].host == NULL ||
            strlen(addrs[i].host) >= sizeof(b->host)) {
            rc = PKC_ERR_INVALID;
            continue;
        }
        if (b == NULL) {
            b = sl_brokers_add(sl, addrs[i].node_id);
            if (b == NULL) {
                rc = PKC_ERR_NOMEM;
                break;
            }
        }
        else if (strcmp(b->host, addrs[i].host) != 0 ||
                 b->port != addrs[i].port) {
            b->addr_changed = 1;
        }
        snprintf(b->host, sizeof(b->host), "%s", addrs[i].host);
        b->port = addrs[i].port;
        b->present = 1;
    }
    /* Leaders may now resolve to (or lose) a broker entry. */
    for (int32_t id = 0; id < sl->nparts; id++)
        if (sl->parts[id].known)
            sl_brokers_attach_part(sl, &sl->parts[id]);
    sl_wake_sender(sl);
    pthread_mutex_unlock(&sl->mu);
    return rc;
}

/* Grow the partition table to `count` entries, the new ones unknown and
 * without a leader (mu held). */
static int
sl_brokers_grow_parts(pkc_sl *sl, int32_t count)
{
    sl_part *np = realloc(sl->parts, (size_t)count * sizeof(*np));

    if (np == NULL)
        return PKC_ERR_NOMEM;
    memset(np + sl->nparts, 0, (size_t)(count - sl->nparts) * sizeof(*np));
    for (int32_t j = sl->nparts; j < count; j++) {
        np[j].leader = -1;
        np[j].leaderless_since = -1;
        np[j].seq_gen = -1;
    }
    sl->parts = np;
    sl->nparts = count;
    return PKC_OK;
}

int
pkc_sl_set_leaders(pkc_sl *sl, const int32_t *partitions,
                   const int32_t *leaders, size_t n)
{
    int rc = PKC_OK;

    pthread_mutex_lock(&sl->mu);
    for (size_t i = 0; i < n; i++) {
        int32_t id = partitions[i];
        sl_part *p;

        if (id < 0 || id > PARTITION_ID_MAX) {
            rc = PKC_ERR_INVALID;
            continue;
        }
        if (id >= sl->nparts && sl_brokers_grow_parts(sl, id + 1) != PKC_OK) {
            rc = PKC_ERR_NOMEM;
            break;
        }
        p = &sl->parts[id];
        p->known = 1;
        p->leader = leaders[i];
        sl_brokers_attach_part(sl, p);
    }
    sl_wake_sender(sl);
    pthread_mutex_unlock(&sl->mu);
    return rc;
}
