/*
 * bufpool.h - memory that outlives one answer (Python-free): a pool of
 * large blocks reused across answers, the refcounted answer buffer that
 * decoded records point into, and a growable record vector.
 *
 * The pool
 *   A small cache of large blocks (answer bodies, record arrays), so the
 *   steady state reuses memory instead of mapping fresh pages for every
 *   answer and unmapping them once consumed (page faults and munmap cost
 *   more than the copy).  It keeps at most PKC_BUFPOOL_SLOTS blocks of at
 *   most PKC_BUFPOOL_MAX_BLOCK bytes, PKC_BUFPOOL_MAX_TOTAL in all.
 *   Thread-safe and refcounted: buffers, released by consumer threads,
 *   keep their pool alive and give their blocks back to it.  Every
 *   function taking a pool accepts NULL (then plain malloc and free).
 *
 * The answer buffer
 *   One answer's body, copied once into a block of the pool, plus the
 *   arena of its decompressed record data; records decoded from it are
 *   views into either.  Refcounted: each holder of a view keeps a
 *   reference; the last release frees the arena and gives the block
 *   back.  `data`, `len`, `pool` and `arena` are set by new; only the
 *   records decoder writes into the arena, before the buffer is shared.
 */
#pragma once

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "records.h"

#define PKC_BUFPOOL_SLOTS 32
#define PKC_BUFPOOL_MAX_BLOCK ((size_t)16 << 20)
#define PKC_BUFPOOL_MAX_TOTAL ((size_t)48 << 20)

typedef struct pkc_bufpool pkc_bufpool;

/* A new pool with one reference, or NULL (out of memory). */
pkc_bufpool *pkc_bufpool_new(void);

/* Drop a reference (NULL: nothing); the last frees the kept blocks. */
void pkc_bufpool_release(pkc_bufpool *pool);

/* A block of at least `need` bytes (its size in *cap): the smallest kept
 * block that fits, else a new one.  NULL when out of memory. */
void *pkc_bufpool_get(pkc_bufpool *pool, size_t need, size_t *cap);

/* Give a block of `cap` bytes back: kept if there is room, else freed
 * (p NULL: nothing). */
void pkc_bufpool_put(pkc_bufpool *pool, void *p, size_t cap);

typedef struct {
    atomic_long refs;
    pkc_bufpool *pool; /* a reference, or NULL */
    uint8_t *data;     /* the body, a block of `pool` */
    size_t len, data_cap;
    pkc_arena arena;   /* decompressed record data */
} pkc_answer_buf;

/* A buffer with one reference holding a copy of data[0..len) and an
 * empty arena capped at `arena_max`; NULL when out of memory. */
pkc_answer_buf *pkc_answer_buf_new(pkc_bufpool *pool, const uint8_t *data,
                                   size_t len, size_t arena_max);

static inline void
pkc_answer_buf_ref(pkc_answer_buf *buf)
{
    atomic_fetch_add_explicit(&buf->refs, 1, memory_order_relaxed);
}

/* Drop a reference (NULL: nothing); the last frees the buffer. */
void pkc_answer_buf_release(pkc_answer_buf *buf);

/* A growable array of records whose blocks come from `pool` (may be
 * NULL).  Zero-initialise, set `pool`, reserve, fill v[n..cap). */
typedef struct {
    pkc_bufpool *pool;
    pkc_record *v;
    size_t n, cap;
} pkc_recvec;

/* Room for `extra` more records.  PKC_OK or PKC_ERR_NOMEM (v unchanged). */
int pkc_recvec_reserve(pkc_recvec *rv, size_t extra);

/* Give the array back to the pool; the vector is empty again. */
void pkc_recvec_free(pkc_recvec *rv);
