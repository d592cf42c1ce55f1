/*
 * reactor.c - the poll loop of an engine thread (see reactor.h).
 */
#include "reactor.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "net.h"

int
pkc_reactor_init(pkc_reactor *r)
{
    r->pfd = NULL;
    r->owner = NULL;
    r->n = r->cap = 0;
    r->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (r->wake_fd < 0)
        return PKC_ERR_IO;
    if (pkc_reactor_add(r, r->wake_fd, POLLIN, NULL) != PKC_OK)
        return PKC_ERR_NOMEM;
    return PKC_OK;
}

void
pkc_reactor_free(pkc_reactor *r)
{
    if (r->wake_fd >= 0)
        close(r->wake_fd);
    r->wake_fd = -1;
    free(r->pfd);
    free(r->owner);
    r->pfd = NULL;
    r->owner = NULL;
    r->n = r->cap = 0;
}

void
pkc_reactor_wake(pkc_reactor *r)
{
    uint64_t one = 1;
    ssize_t n;

    /* An eventfd counter: the write never blocks (short of 2^64 wakes). */
    do {
        n = write(r->wake_fd, &one, sizeof(one));
    } while (n < 0 && errno == EINTR);
}

void
pkc_reactor_reset(pkc_reactor *r)
{
    r->n = r->cap > 0 ? 1 : 0;
}

static int
reactor_grow(pkc_reactor *r)
{
    size_t cap = r->cap ? r->cap * 2 : 8;
    struct pollfd *pfd = realloc(r->pfd, cap * sizeof(*pfd));
    void **owner;

    if (pfd == NULL)
        return PKC_ERR_NOMEM;
    r->pfd = pfd;
    owner = realloc(r->owner, cap * sizeof(*owner));
    if (owner == NULL)
        return PKC_ERR_NOMEM;
    r->owner = owner;
    r->cap = cap;
    return PKC_OK;
}

int
pkc_reactor_add(pkc_reactor *r, int fd, short events, void *owner)
{
    if (fd < 0 || events == 0)
        return PKC_OK;
    if (r->n == r->cap && reactor_grow(r) != PKC_OK)
        return PKC_ERR_NOMEM;
    r->pfd[r->n].fd = fd;
    r->pfd[r->n].events = events;
    r->pfd[r->n].revents = 0;
    r->owner[r->n] = owner;
    r->n++;
    return PKC_OK;
}

/* Empty the wake-up counter. */
static void
reactor_drain(pkc_reactor *r)
{
    uint64_t v;

    while (read(r->wake_fd, &v, sizeof(v)) > 0)
        ;
}

int
pkc_reactor_wait(pkc_reactor *r, int64_t deadline_us, int max_wait_ms)
{
    int64_t left_us = deadline_us - pkc_now_us();
    struct timespec timeout;
    int ready;

    /* ppoll, not poll: poll's whole milliseconds would end a 5 ms linger
     * anywhere up to a millisecond late. */
    if (left_us < 0)
        left_us = 0;
    if (left_us > (int64_t)max_wait_ms * 1000)
        left_us = (int64_t)max_wait_ms * 1000;
    timeout.tv_sec = (time_t)(left_us / 1000000);
    timeout.tv_nsec = (long)(left_us % 1000000) * 1000;
    for (size_t i = 0; i < r->n; i++)
        r->pfd[i].revents = 0;
    ready = ppoll(r->pfd, (nfds_t)r->n, &timeout, NULL);
    if (ready < 0)
        return errno == EINTR ? 0 : -1;
    if (ready > 0 && r->pfd[0].revents) {
        reactor_drain(r);
        ready--;
    }
    return ready;
}
