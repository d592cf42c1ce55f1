/*
 * reactor.h - the poll loop of an engine thread (no Python).
 *
 * The consumer's fetch thread and the producer's send thread each wait
 * in one poll() on every broker connection they serve plus a wake-up
 * descriptor that other threads write to (an eventfd) when they hand the
 * thread new work.  A pkc_reactor holds that descriptor and the pollfd
 * array, rebuilt on every round: reset, add each descriptor with the
 * events it needs and an owner pointer, wait, then read back each entry's
 * revents and owner.  Deadlines are the caller's (monotonic ms): it passes
 * the earliest one as the wait's bound.
 *
 * pkc_reactor_wake may be called from any thread at any time (it never
 * blocks); everything else belongs to the engine thread.
 */
#pragma once

#include <poll.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    int wake_fd;            /* eventfd: readable after pkc_reactor_wake */
    struct pollfd *pfd;     /* pfd[0] is the wake descriptor */
    void **owner;           /* owner[i] of pfd[i] (NULL for pfd[0]) */
    size_t n, cap;
} pkc_reactor;

/* Make the wake descriptor.  Returns PKC_OK, PKC_ERR_IO or PKC_ERR_NOMEM;
 * pkc_reactor_free is safe either way. */
int pkc_reactor_init(pkc_reactor *r);
void pkc_reactor_free(pkc_reactor *r);

/* Make the engine thread's next (or current) wait return (thread-safe). */
void pkc_reactor_wake(pkc_reactor *r);

/* Start a round: only the wake descriptor is in the set. */
void pkc_reactor_reset(pkc_reactor *r);

/* Add `fd` with `events` (nothing is added for fd < 0 or no events).
 * Returns PKC_OK or PKC_ERR_NOMEM. */
int pkc_reactor_add(pkc_reactor *r, int fd, short events, void *owner);

/*
 * Wait until a descriptor is ready, the reactor is woken, or `deadline_us`
 * (pkc_now_us() clock, to the microsecond; waits of more than
 * `max_wait_ms` are cut to it) passes.
 * A pending wake-up is consumed.  Returns the number of ready entries
 * other than the wake descriptor (0 on timeout or wake-up; -1 when poll
 * failed for another reason than EINTR, which counts as a wake-up).
 */
int pkc_reactor_wait(pkc_reactor *r, int64_t deadline_us, int max_wait_ms);

/* Entries 1 .. count-1 are the descriptors added this round. */
static inline size_t
pkc_reactor_count(const pkc_reactor *r)
{
    return r->n;
}

static inline short
pkc_reactor_revents(const pkc_reactor *r, size_t i)
{
    return r->pfd[i].revents;
}

static inline void *
pkc_reactor_owner(const pkc_reactor *r, size_t i)
{
    return r->owner[i];
}
