/*
 * net.c - a Kafka broker connection in plain C (see net.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* SOCK_NONBLOCK, SOCK_CLOEXEC, MSG_NOSIGNAL */
#endif

#include "net.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

/* The output buffer is released after a flush when it grew past this. */
#define PKC_CONN_OUT_KEEP (4 * 1024 * 1024)
/* Requests larger than this cannot be framed (int32 Size). */
#define PKC_CONN_OUT_MAX ((size_t)INT32_MAX)

int64_t
pkc_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
pkc_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t
pkc_deadline_after(int64_t timeout_ms)
{
    int64_t now;

    if (timeout_ms < 0)
        return PKC_NO_DEADLINE;
    now = pkc_now_ms();
    if (timeout_ms > PKC_NO_DEADLINE - now)
        return PKC_NO_DEADLINE;
    return now + timeout_ms;
}

/* ------------------------------------------------------------ errors */

/* Thread-safe strerror into buf. */
static const char *
errno_text(int err, char *buf, size_t len)
{
#if defined(__GLIBC__) && defined(_GNU_SOURCE)
    return strerror_r(err, buf, len);
#else
    if (strerror_r(err, buf, len) != 0)
        snprintf(buf, len, "errno %d", err);
    return buf;
#endif
}

/* Append printf-style text at buf[*pos], truncating at `size`. */
static void
str_append(char *buf, size_t size, size_t *pos, const char *fmt, ...)
{
    va_list va;
    int n;

    if (*pos + 1 >= size)
        return;
    va_start(va, fmt);
    n = vsnprintf(buf + *pos, size - *pos, fmt, va);
    va_end(va);
    if (n < 0)
        return;
    *pos += (size_t)n < size - *pos ? (size_t)n : size - *pos - 1;
}

/* "host:port", with brackets around an IPv6 literal. */
static void
conn_peer(const pkc_conn *conn, char *buf, size_t size, size_t *pos)
{
    if (conn->port == 0)
        str_append(buf, size, pos, "%s", conn->host[0] ? conn->host : "?");
    else if (strchr(conn->host, ':') != NULL)
        str_append(buf, size, pos, "[%s]:%d", conn->host, conn->port);
    else
        str_append(buf, size, pos, "%s:%d", conn->host, conn->port);
}

/*
 * Set errstr to "<host:port>: <message>" (plus ": <strerror>" when err is
 * non-zero) and err_errno to err.  Returns status.
 */
static int
conn_error(pkc_conn *conn, int status, int err, const char *fmt, ...)
{
    char etext[128];
    size_t pos = 0;
    va_list va;
    int n;

    conn_peer(conn, conn->errstr, sizeof(conn->errstr), &pos);
    str_append(conn->errstr, sizeof(conn->errstr), &pos, ": ");
    if (pos + 1 < sizeof(conn->errstr)) {
        va_start(va, fmt);
        n = vsnprintf(conn->errstr + pos, sizeof(conn->errstr) - pos, fmt,
                      va);
        va_end(va);
        if (n > 0)
            pos += (size_t)n < sizeof(conn->errstr) - pos
                       ? (size_t)n
                       : sizeof(conn->errstr) - pos - 1;
    }
    if (err)
        str_append(conn->errstr, sizeof(conn->errstr), &pos, ": %s",
                   errno_text(err, etext, sizeof(etext)));
    conn->err_errno = err;
    return status;
}

static void
conn_reset_queues(pkc_conn *conn)
{
    conn->fifo_head = conn->fifo_len = conn->fifo_discard = 0;
    conn->out.len = 0;
    conn->out.status = PKC_OK;
    conn->out_sent = 0;
    conn->build_off = SIZE_MAX;
    conn->rlen = conn->rstart = conn->rconsume = 0;
}

void
pkc_conn_break(pkc_conn *conn, const char *why)
{
    if (why != NULL && why != conn->errstr)
        snprintf(conn->errstr, sizeof(conn->errstr), "%s", why);
    if (conn->fd >= 0)
        shutdown(conn->fd, SHUT_RDWR);
    if (conn->state == PKC_CONN_OPEN)
        conn->state = PKC_CONN_BROKEN;
    conn_reset_queues(conn);
}

/* conn_error + pkc_conn_break: for fatal errors. */
static int
conn_fatal(pkc_conn *conn, int status, int err, const char *fmt, ...)
{
    char msg[256];
    va_list va;

    va_start(va, fmt);
    vsnprintf(msg, sizeof(msg), fmt, va);
    va_end(va);
    conn_error(conn, status, err, "%s", msg);
    pkc_conn_break(conn, NULL);
    return status;
}

static int
conn_not_open(pkc_conn *conn)
{
    if (conn->state == PKC_CONN_BROKEN)
        return PKC_ERR_CLOSED; /* keep the errstr of the failure */
    return conn_error(conn, PKC_ERR_CLOSED, 0, "not connected");
}

/* ------------------------------------------------------------ lifecycle */

int
pkc_conn_init(pkc_conn *conn, const char *client_id, size_t client_id_len,
              int32_t max_frame)
{
    memset(conn, 0, sizeof(*conn));
    conn->fd = -1;
    conn->rcvlowat = 1;
    conn->state = PKC_CONN_CLOSED;
    conn->max_frame = max_frame > 0 ? max_frame : PKC_CONN_DEFAULT_MAX_FRAME;
    conn->next_correlation_id = 1;
    conn->build_off = SIZE_MAX;
    conn->client_id_len = -1;
    pkc_writer_init(&conn->out, 0, PKC_CONN_OUT_MAX);
    if (client_id != NULL) {
        if (client_id_len > INT16_MAX) {
            snprintf(conn->errstr, sizeof(conn->errstr),
                     "client_id is longer than 32767 bytes");
            return PKC_ERR_INVALID;
        }
        conn->client_id = malloc(client_id_len ? client_id_len : 1);
        if (conn->client_id == NULL)
            return PKC_ERR_NOMEM;
        memcpy(conn->client_id, client_id, client_id_len);
        conn->client_id_len = (int16_t)client_id_len;
    }
    return PKC_OK;
}

static void
conn_free_addrinfo(pkc_conn *conn)
{
    if (conn->ai_list != NULL)
        freeaddrinfo((struct addrinfo *)conn->ai_list);
    if (conn->src_ai != NULL)
        freeaddrinfo((struct addrinfo *)conn->src_ai);
    conn->ai_list = conn->ai_next = conn->src_ai = NULL;
}

void
pkc_conn_close(pkc_conn *conn)
{
    pkc_tls_free(conn->tls);
    conn->tls = NULL;
    conn->tls_ready = 0;
    conn->read_want = conn->write_want = 0;
    if (conn->fd >= 0)
        close(conn->fd);
    conn->fd = -1;
    conn->rcvlowat = 1;
    conn->state = PKC_CONN_CLOSED;
    conn_free_addrinfo(conn);
    conn_reset_queues(conn);
}

void
pkc_conn_free(pkc_conn *conn)
{
    pkc_conn_close(conn);
    free(conn->rbuf);
    conn->rbuf = NULL;
    conn->rcap = 0;
    free(conn->fifo);
    conn->fifo = NULL;
    conn->fifo_cap = 0;
    pkc_writer_free(&conn->out);
    free(conn->client_id);
    conn->client_id = NULL;
    conn->client_id_len = -1;
}

/* Allocate the receive buffer once per conn. */
static int
conn_ensure_rbuf(pkc_conn *conn)
{
    if (conn->rbuf != NULL)
        return PKC_OK;
    conn->rbuf = malloc(PKC_CONN_RBUF_INITIAL);
    if (conn->rbuf == NULL)
        return PKC_ERR_NOMEM;
    conn->rcap = PKC_CONN_RBUF_INITIAL;
    if (conn->rcap > conn->rcap_peak)
        conn->rcap_peak = conn->rcap;
    return PKC_OK;
}

/* ------------------------------------------------------------ waiting */

/*
 * Wait for `events` on the socket until `deadline`.  A deadline in the
 * past still polls once without blocking.  Returns PKC_OK (ready, or an
 * error/hangup the next syscall will report), PKC_ERR_TIMEOUT,
 * PKC_ERR_INTR, or PKC_ERR_IO (errno in *err).
 */
static int
conn_wait(pkc_conn *conn, short events, int64_t deadline, int *err)
{
    struct pollfd pfd;
    int timeout, rc;

    *err = 0;
    for (;;) {
        if (deadline == PKC_NO_DEADLINE)
            timeout = -1;
        else {
            int64_t left = deadline - pkc_now_ms();
            if (left < 0)
                left = 0;
            timeout = left > INT_MAX ? INT_MAX : (int)left;
        }
        pfd.fd = conn->fd;
        pfd.events = events;
        pfd.revents = 0;
        rc = poll(&pfd, 1, timeout);
        if (rc > 0)
            return PKC_OK;
        if (rc < 0) {
            if (errno == EINTR)
                return PKC_ERR_INTR;
            *err = errno;
            return PKC_ERR_IO;
        }
        if (timeout == 0 ||
            (deadline != PKC_NO_DEADLINE && pkc_now_ms() >= deadline))
            return PKC_ERR_TIMEOUT;
    }
}

/* ------------------------------------------------------------ connect */

/* Numeric text of a socket address, for messages. */
static void
addr_text(const struct sockaddr *sa, socklen_t salen, char *buf, size_t len)
{
    char hostbuf[INET6_ADDRSTRLEN + 1], portbuf[16];
    size_t pos = 0;

    if (getnameinfo(sa, salen, hostbuf, sizeof(hostbuf), portbuf,
                    sizeof(portbuf), NI_NUMERICHOST | NI_NUMERICSERV) != 0)
        str_append(buf, len, &pos, "?");
    else if (sa->sa_family == AF_INET6)
        str_append(buf, len, &pos, "[%s]:%s", hostbuf, portbuf);
    else
        str_append(buf, len, &pos, "%s:%s", hostbuf, portbuf);
}

static int
conn_resolve(pkc_conn *conn, const char *host, int port, int passive,
             struct addrinfo **out)
{
    struct addrinfo hints;
    char portbuf[16];
    int rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
    snprintf(portbuf, sizeof(portbuf), "%d", port);
    *out = NULL;
    rc = getaddrinfo(host, portbuf, &hints, out);
    if (rc == 0)
        return PKC_OK;
    if (rc == EAI_SYSTEM)
        return conn_error(conn, PKC_ERR_IO, errno, "cannot resolve %s '%s'",
                          passive ? "source address" : "host",
                          host ? host : "");
    if (rc == EAI_MEMORY)
        return conn_error(conn, PKC_ERR_NOMEM, 0, "out of memory resolving");
    return conn_error(conn, PKC_ERR_IO, 0, "cannot resolve %s '%s': %s",
                      passive ? "source address" : "host", host ? host : "",
                      gai_strerror(rc));
}

/*
 * Validate, resolve and enter CONNECTING with no socket yet (the common
 * start of the blocking and the non-blocking connect).  Returns PKC_OK or
 * a failure (state CLOSED).
 */
static int
conn_connect_prepare(pkc_conn *conn, const char *host, int port,
                     int64_t deadline, const char *source_host,
                     int source_port)
{
    struct addrinfo *ai = NULL, *src = NULL;
    size_t hlen;
    int rc;

    pkc_conn_close(conn);
    conn->err_errno = 0;
    conn->errstr[0] = '\0';
    hlen = host ? strlen(host) : 0;
    if (hlen == 0 || hlen >= sizeof(conn->host)) {
        conn->host[0] = '\0';
        conn->port = port;
        return conn_error(conn, PKC_ERR_INVALID, 0,
                          "host name is empty or too long");
    }
    memcpy(conn->host, host, hlen + 1);
    conn->port = port;
    if (port <= 0 || port > 65535)
        return conn_error(conn, PKC_ERR_INVALID, 0, "port %d out of range",
                          port);
    if (source_port < 0 || source_port > 65535)
        return conn_error(conn, PKC_ERR_INVALID, 0,
                          "source port %d out of range", source_port);
    rc = conn_ensure_rbuf(conn);
    if (rc != PKC_OK)
        return conn_error(conn, rc, 0, "out of memory");
    rc = conn_resolve(conn, host, port, 0, &ai);
    if (rc != PKC_OK)
        return rc;
    if ((source_host != NULL && source_host[0] != '\0') || source_port != 0) {
        rc = conn_resolve(conn,
                          (source_host && source_host[0]) ? source_host : NULL,
                          source_port, 1, &src);
        if (rc != PKC_OK) {
            freeaddrinfo(ai);
            return rc;
        }
    }
    conn->ai_list = ai;
    conn->ai_next = ai;
    conn->src_ai = src;
    conn->connect_deadline = deadline;
    conn->state = PKC_CONN_CONNECTING;
    snprintf(conn->errstr, sizeof(conn->errstr), "no address to connect to");
    return PKC_OK;
}

int
pkc_conn_connect(pkc_conn *conn, const char *host, int port,
                 int64_t deadline, const char *source_host, int source_port)
{
    int rc = conn_connect_prepare(conn, host, port, deadline, source_host,
                                  source_port);

    if (rc != PKC_OK)
        return rc;
    return pkc_conn_connect_resume(conn, deadline);
}

/* Finish a connect that failed for good: free the addresses and close. */
static int
conn_connect_failed(pkc_conn *conn, int status)
{
    if (conn->fd >= 0)
        close(conn->fd);
    conn->fd = -1;
    conn_free_addrinfo(conn);
    conn->state = PKC_CONN_CLOSED;
    return status;
}

/* Bind `fd` to the source address of family `family`; 0 or errno. */
static int
conn_bind_source(pkc_conn *conn, int fd, int family)
{
    struct addrinfo *s;
    int one = 1;

    for (s = conn->src_ai; s != NULL; s = s->ai_next) {
        if (s->ai_family != family)
            continue;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, s->ai_addr, s->ai_addrlen) != 0)
            return errno;
        return 0;
    }
    return EAFNOSUPPORT;
}

/*
 * Advance a connect in state CONNECTING without blocking: finish the
 * socket's connect if it is writable, else (no socket, or its connect
 * failed) start one to the next resolved address, until one address is
 * connected (PKC_OK, state OPEN), a connect is under way and not done yet
 * (PKC_IN_PROGRESS, conn->fd is the socket to wait on for POLLOUT), the
 * addresses are exhausted (PKC_ERR_IO, the last address's error), or
 * `deadline` has passed with a connect still under way (PKC_ERR_TIMEOUT).
 * A connect that completes at the very moment is still taken after the
 * deadline (one non-blocking look).  Failures close and free everything.
 */
static int
conn_connect_advance(pkc_conn *conn, int64_t deadline)
{
    char *addr = conn->connect_addr;
    struct pollfd pfd;
    int rc, err, one = 1;
    socklen_t errlen;

    for (;;) {
        if (conn->fd >= 0) {
            /* A non-blocking connect is under way on conn->fd. */
            pfd.fd = conn->fd;
            pfd.events = POLLOUT;
            pfd.revents = 0;
            rc = poll(&pfd, 1, 0);
            if (rc < 0 && errno == EINTR)
                continue; /* a zero-timeout poll: just look again */
            if (rc < 0) {
                conn_error(conn, PKC_ERR_IO, errno,
                           "poll during connect failed");
                return conn_connect_failed(conn, PKC_ERR_IO);
            }
            if (rc == 0) {
                if (deadline != PKC_NO_DEADLINE && pkc_now_ms() >= deadline) {
                    conn_error(conn, PKC_ERR_TIMEOUT, 0,
                               "connect to %s timed out", addr);
                    return conn_connect_failed(conn, PKC_ERR_TIMEOUT);
                }
                return PKC_IN_PROGRESS;
            }
            err = 0;
            errlen = sizeof(err);
            if (getsockopt(conn->fd, SOL_SOCKET, SO_ERROR, &err, &errlen) != 0)
                err = errno;
            if (err == 0) {
                setsockopt(conn->fd, IPPROTO_TCP, TCP_NODELAY, &one,
                           sizeof(one));
                conn_free_addrinfo(conn);
                conn->state = PKC_CONN_OPEN;
                conn->err_errno = 0;
                conn->errstr[0] = '\0';
                return PKC_OK;
            }
            conn_error(conn, PKC_ERR_IO, err, "connect to %s failed", addr);
            close(conn->fd);
            conn->fd = -1;
            continue;
        }
        struct addrinfo *ai = (struct addrinfo *)conn->ai_next;
        if (ai == NULL)
            return conn_connect_failed(conn, PKC_ERR_IO); /* last error */
        conn->ai_next = ai->ai_next;
        addr_text(ai->ai_addr, ai->ai_addrlen, addr,
                  sizeof(conn->connect_addr));
        int fd = socket(ai->ai_family,
                        ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                        ai->ai_protocol);
        if (fd < 0) {
            conn_error(conn, PKC_ERR_IO, errno, "socket() for %s failed",
                       addr);
            continue;
        }
        if (conn->src_ai != NULL) {
            err = conn_bind_source(conn, fd, ai->ai_family);
            if (err != 0) {
                conn_error(conn, PKC_ERR_IO, err,
                           "cannot bind the source address for %s", addr);
                close(fd);
                continue;
            }
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 ||
            errno == EINPROGRESS || errno == EINTR) {
            /* Done or under way (an interrupted non-blocking connect goes
             * on asynchronously): the top of the loop looks at it. */
            conn->fd = fd;
            continue;
        }
        conn_error(conn, PKC_ERR_IO, errno, "connect to %s failed", addr);
        close(fd);
    }
}

int
pkc_conn_connect_resume(pkc_conn *conn, int64_t deadline)
{
    int rc, err;

    if (conn->state != PKC_CONN_CONNECTING)
        return conn_error(conn, PKC_ERR_INVALID, 0, "no connect in progress");
    for (;;) {
        rc = conn_connect_advance(conn, deadline);
        if (rc != PKC_IN_PROGRESS)
            return rc;
        rc = conn_wait(conn, POLLOUT, deadline, &err);
        if (rc == PKC_ERR_INTR)
            return rc;
        if (rc == PKC_ERR_TIMEOUT) {
            conn_error(conn, rc, 0, "connect to %s timed out",
                       conn->connect_addr);
            return conn_connect_failed(conn, rc);
        }
        if (rc != PKC_OK) {
            conn_error(conn, rc, err, "poll during connect failed");
            return conn_connect_failed(conn, rc);
        }
    }
}

int
pkc_conn_connect_start(pkc_conn *conn, const char *host, int port,
                       int64_t deadline, const char *source_host,
                       int source_port)
{
    int rc = conn_connect_prepare(conn, host, port, deadline, source_host,
                                  source_port);

    if (rc != PKC_OK)
        return rc;
    return conn_connect_advance(conn, deadline);
}

int
pkc_conn_connect_step(pkc_conn *conn)
{
    if (conn->state != PKC_CONN_CONNECTING)
        return conn_error(conn, PKC_ERR_INVALID, 0, "no connect in progress");
    return conn_connect_advance(conn, conn->connect_deadline);
}

int
pkc_conn_adopt_fd(pkc_conn *conn, int fd, const char *label)
{
    int flags, rc;

    pkc_conn_close(conn);
    snprintf(conn->host, sizeof(conn->host), "%s", label ? label : "fd");
    conn->port = 0;
    rc = conn_ensure_rbuf(conn);
    if (rc != PKC_OK) {
        close(fd);
        return conn_error(conn, rc, 0, "out of memory");
    }
    flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
        rc = errno;
        close(fd);
        return conn_error(conn, PKC_ERR_IO, rc, "cannot adopt descriptor");
    }
    conn->fd = fd;
    conn->state = PKC_CONN_OPEN;
    conn->err_errno = 0;
    conn->errstr[0] = '\0';
    return PKC_OK;
}

/* ------------------------------------------------------------ byte I/O */

/*
 * Move bytes between the socket (through TLS when it is on) and memory.
 * Each returns PKC_OK with *n > 0; PKC_IN_PROGRESS when nothing can move
 * now (*want: the poll events to wait for, also kept in the conn for
 * pkc_conn_poll_events); PKC_ERR_INTR; PKC_ERR_CLOSED (end of stream);
 * PKC_ERR_IO (errno in *err) or PKC_ERR_TLS (the reason in the session).
 */
static int
conn_io_recv(pkc_conn *conn, void *buf, size_t len, size_t *n, short *want,
             int *err)
{
    ssize_t got;
    int rc;

    *n = 0;
    *err = 0;
    if (conn->tls != NULL) {
        rc = pkc_tls_read(conn->tls, buf, len, n, want, err);
        conn->read_want = rc == PKC_IN_PROGRESS ? *want : 0;
        return rc;
    }
    got = recv(conn->fd, buf, len, 0);
    if (got > 0) {
        *n = (size_t)got;
        return PKC_OK;
    }
    if (got == 0)
        return PKC_ERR_CLOSED;
    if (errno == EINTR)
        return PKC_ERR_INTR;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        *want = POLLIN;
        return PKC_IN_PROGRESS;
    }
    *err = errno;
    return PKC_ERR_IO;
}

static int
conn_io_send(pkc_conn *conn, const void *buf, size_t len, size_t *n,
             short *want, int *err)
{
    ssize_t put;
    int rc;

    *n = 0;
    *err = 0;
    if (conn->tls != NULL) {
        rc = pkc_tls_write(conn->tls, buf, len, n, want, err);
        conn->write_want = rc == PKC_IN_PROGRESS ? *want : 0;
        return rc;
    }
    put = send(conn->fd, buf, len, MSG_NOSIGNAL);
    if (put > 0) {
        *n = (size_t)put;
        return PKC_OK;
    }
    if (put < 0 && errno == EINTR)
        return PKC_ERR_INTR;
    if (put < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        *want = POLLOUT;
        return PKC_IN_PROGRESS;
    }
    *err = put < 0 ? errno : 0;
    return put < 0 ? PKC_ERR_IO : PKC_ERR_CLOSED;
}

/* A failed byte transfer breaks the connection; the TLS session's own
 * sentence is kept when it has one. */
static int
conn_io_fatal(pkc_conn *conn, int rc, int err, const char *what)
{
    if (conn->tls != NULL && rc != PKC_ERR_IO)
        return conn_fatal(conn, rc, 0, "%s", pkc_tls_error(conn->tls));
    return conn_fatal(conn, rc, err, "%s", what);
}

short
pkc_conn_poll_events(const pkc_conn *conn, int expect_read)
{
    short ev = 0;

    if (expect_read)
        ev |= conn->read_want ? conn->read_want : POLLIN;
    if (pkc_conn_unsent(conn) > 0)
        ev |= conn->write_want ? conn->write_want : POLLOUT;
    return ev;
}

int
pkc_conn_tls_start(pkc_conn *conn, pkc_tls_ctx *ctx)
{
    char why[256];
    int rc;

    if (conn->state != PKC_CONN_OPEN)
        return conn_not_open(conn);
    if (conn->tls != NULL)
        return conn_error(conn, PKC_ERR_INVALID, 0, "TLS is already on");
    rc = pkc_tls_new(ctx, conn->fd, conn->host, &conn->tls, why,
                     sizeof(why));
    if (rc != PKC_OK)
        return conn_fatal(conn, rc, 0, "%s", why);
    conn->tls_ready = 0;
    conn->read_want = POLLOUT; /* the ClientHello goes first */
    return PKC_OK;
}

int
pkc_conn_tls_step(pkc_conn *conn)
{
    short want = 0;
    int rc;

    if (conn->state != PKC_CONN_OPEN || conn->tls == NULL)
        return conn_error(conn, PKC_ERR_INVALID, 0, "no TLS handshake in "
                          "progress");
    if (conn->tls_ready)
        return PKC_OK;
    rc = pkc_tls_handshake(conn->tls, &want);
    if (rc == PKC_IN_PROGRESS) {
        conn->read_want = want;
        return rc;
    }
    conn->read_want = 0;
    if (rc != PKC_OK)
        return conn_fatal(conn, rc, 0, "%s", pkc_tls_error(conn->tls));
    conn->tls_ready = 1;
    return PKC_OK;
}

/* ------------------------------------------------------------ requests */

static void
conn_build_rollback(pkc_conn *conn)
{
    if (conn->build_off != SIZE_MAX)
        conn->out.len = conn->build_off;
    conn->out.status = PKC_OK;
    conn->build_off = SIZE_MAX;
}

int
pkc_conn_request_begin(pkc_conn *conn, int16_t api_key, int16_t api_version,
                       int flexible, pkc_writer **body)
{
    pkc_writer *w = &conn->out;
    int32_t corr;
    int st;

    *body = NULL;
    if (conn->state != PKC_CONN_OPEN)
        return conn_not_open(conn);
    if (conn->build_off != SIZE_MAX)
        return conn_error(conn, PKC_ERR_INVALID, 0,
                          "a request is already being built");
    if (conn->out_sent == w->len)
        w->len = conn->out_sent = 0;
    corr = conn->next_correlation_id;
    conn->next_correlation_id = corr == INT32_MAX ? 0 : corr + 1;
    conn->build_off = w->len;
    pkc_write_i32(w, 0);                     /* Size, patched at the end */
    pkc_write_i16(w, api_key);               /* RequestApiKey */
    pkc_write_i16(w, api_version);           /* RequestApiVersion */
    pkc_write_i32(w, corr);                  /* CorrelationId */
    pkc_write_string(w, 0, conn->client_id,  /* ClientId (never compact) */
                     conn->client_id_len);
    if (flexible)
        pkc_write_empty_tags(w);             /* TaggedFields (header v2) */
    st = w->status;
    if (st != PKC_OK) {
        conn_build_rollback(conn);
        return conn_error(conn, st, 0, "cannot build request header: %s",
                          pkc_status_str(st));
    }
    conn->build_correlation_id = corr;
    conn->build_api_key = api_key;
    conn->build_api_version = api_version;
    conn->build_flexible = flexible ? 1 : 0;
    *body = w;
    return PKC_OK;
}

void
pkc_conn_request_abort(pkc_conn *conn)
{
    conn_build_rollback(conn);
}

/* Append to the in-flight FIFO, growing it when full. */
static int
conn_fifo_push(pkc_conn *conn, const pkc_inflight *e)
{
    if (conn->fifo_len == conn->fifo_cap) {
        size_t ncap = conn->fifo_cap ? conn->fifo_cap * 2 : 16;
        pkc_inflight *nf;

        if (ncap > SIZE_MAX / sizeof(*nf))
            return PKC_ERR_NOMEM;
        nf = malloc(ncap * sizeof(*nf));
        if (nf == NULL)
            return PKC_ERR_NOMEM;
        for (size_t i = 0; i < conn->fifo_len; i++)
            nf[i] = conn->fifo[(conn->fifo_head + i) % conn->fifo_cap];
        free(conn->fifo);
        conn->fifo = nf;
        conn->fifo_cap = ncap;
        conn->fifo_head = 0;
    }
    conn->fifo[(conn->fifo_head + conn->fifo_len) % conn->fifo_cap] = *e;
    conn->fifo_len++;
    return PKC_OK;
}

static void
conn_fifo_pop(pkc_conn *conn)
{
    if (conn->fifo[conn->fifo_head].discard)
        conn->fifo_discard--;
    conn->fifo_head = (conn->fifo_head + 1) % conn->fifo_cap;
    conn->fifo_len--;
    if (conn->fifo_len == 0)
        conn->fifo_head = 0;
}

int
pkc_conn_request_end(pkc_conn *conn, int expect_response,
                     int32_t *correlation_id)
{
    pkc_writer *w = &conn->out;
    pkc_inflight e;
    size_t size;
    int st;

    if (conn->build_off == SIZE_MAX)
        return conn_error(conn, PKC_ERR_INVALID, 0,
                          "no request is being built");
    st = w->status;
    if (st != PKC_OK) {
        conn_build_rollback(conn);
        return conn_error(conn, st, 0, "cannot build request: %s",
                          pkc_status_str(st));
    }
    size = w->len - conn->build_off - 4;
    if (size > (size_t)INT32_MAX) {
        conn_build_rollback(conn);
        return conn_error(conn, PKC_ERR_TOO_LARGE, 0, "request too large");
    }
    pkc_patch_i32(w, conn->build_off, (int32_t)size); /* Size */
    if (expect_response) {
        e.correlation_id = conn->build_correlation_id;
        e.api_key = conn->build_api_key;
        e.api_version = conn->build_api_version;
        e.response_header_version = (int8_t)pkc_response_header_version(
            conn->build_api_key, conn->build_flexible);
        e.discard = 0;
        st = conn_fifo_push(conn, &e);
        if (st != PKC_OK) {
            conn_build_rollback(conn);
            return conn_error(conn, st, 0, "out of memory");
        }
    }
    conn->build_off = SIZE_MAX;
    if (correlation_id != NULL)
        *correlation_id = conn->build_correlation_id;
    return PKC_OK;
}

int
pkc_conn_flush(pkc_conn *conn, int64_t deadline)
{
    pkc_writer *w = &conn->out;
    int rc, err;

    if (conn->state != PKC_CONN_OPEN)
        return conn_not_open(conn);
    if (conn->build_off != SIZE_MAX)
        return conn_error(conn, PKC_ERR_INVALID, 0,
                          "flush while a request is being built");
    while (conn->out_sent < w->len) {
        size_t put = 0;
        short want = POLLOUT;

        rc = conn_io_send(conn, w->buf + conn->out_sent,
                          w->len - conn->out_sent, &put, &want, &err);
        if (rc == PKC_OK) {
            conn->out_sent += put;
            continue;
        }
        if (rc == PKC_ERR_INTR)
            return rc;
        if (rc == PKC_IN_PROGRESS) {
            rc = conn_wait(conn, want, deadline, &err);
            if (rc == PKC_OK)
                continue;
            if (rc == PKC_ERR_INTR)
                return rc;
            if (rc == PKC_ERR_TIMEOUT)
                return conn_error(conn, rc, 0,
                                  "timed out sending a request (%zu bytes "
                                  "unsent)", w->len - conn->out_sent);
            return conn_fatal(conn, rc, err, "poll failed while sending");
        }
        return conn_io_fatal(conn, rc, err, "send failed");
    }
    w->len = conn->out_sent = 0;
    if (w->cap > PKC_CONN_OUT_KEEP)
        pkc_writer_free(w); /* don't keep a huge produce buffer around */
    return PKC_OK;
}

int
pkc_conn_send_request(pkc_conn *conn, int16_t api_key, int16_t api_version,
                      int flexible, int expect_response, const void *body,
                      size_t body_len, int64_t deadline,
                      int32_t *correlation_id)
{
    pkc_writer *w;
    int rc;

    rc = pkc_conn_request_begin(conn, api_key, api_version, flexible, &w);
    if (rc != PKC_OK)
        return rc;
    pkc_write_raw(w, body, body_len);
    rc = pkc_conn_request_end(conn, expect_response, correlation_id);
    if (rc != PKC_OK)
        return rc;
    return pkc_conn_flush(conn, deadline);
}

int
pkc_conn_discard(pkc_conn *conn, int32_t correlation_id)
{
    for (size_t i = 0; i < conn->fifo_len; i++) {
        pkc_inflight *e = &conn->fifo[(conn->fifo_head + i) % conn->fifo_cap];
        if (e->correlation_id == correlation_id && !e->discard) {
            e->discard = 1;
            conn->fifo_discard++;
            return PKC_OK;
        }
    }
    return PKC_ERR_INVALID;
}

/* ------------------------------------------------------------ responses */

int
pkc_frame_check_length(const uint8_t hdr[4], int32_t max_frame,
                       int32_t *length, char *errbuf, size_t errlen)
{
    int32_t len = (int32_t)pkc_load_u32(hdr);
    /* A TLS record starts with a content type 20..24 and major version 3:
     * a plaintext client talking to an SSL listener (KAFKA-4090). */
    const char *tls = (hdr[0] >= 0x14 && hdr[0] <= 0x18 && hdr[1] == 0x03)
                          ? " (these bytes look like a TLS record: is the "
                            "broker port an SSL listener?)"
                          : "";
    int st = PKC_OK;

    *length = len;
    if (len < 0)
        st = PKC_ERR_INVALID;
    else if (len < 4)
        st = PKC_ERR_INVALID;
    else if (len > max_frame)
        st = PKC_ERR_TOO_LARGE;
    if (st != PKC_OK && errbuf != NULL && errlen > 0) {
        if (len < 0)
            snprintf(errbuf, errlen, "negative response frame length %d%s",
                     (int)len, tls);
        else if (len < 4)
            snprintf(errbuf, errlen,
                     "response frame length %d is too short for a "
                     "response header", (int)len);
        else
            snprintf(errbuf, errlen,
                     "response frame length %d exceeds the maximum of %d "
                     "bytes%s", (int)len, (int)max_frame, tls);
    }
    return st;
}

int
pkc_response_header_read(pkc_reader *r, int header_version,
                         int32_t *correlation_id)
{
    pkc_read_i32(r, correlation_id, "CorrelationId");
    if (header_version >= 1)
        pkc_read_skip_tags(r, "response header TaggedFields");
    return r->status;
}

/* Make rcap - rstart >= need, moving unconsumed bytes to the front and
 * growing the buffer (never past max_frame + 4) as needed. */
static int
conn_rbuf_room(pkc_conn *conn, size_t need)
{
    size_t ncap, limit;
    uint8_t *nb;

    if (conn->rcap - conn->rstart >= need)
        return PKC_OK;
    if (conn->rstart > 0) {
        memmove(conn->rbuf, conn->rbuf + conn->rstart,
                conn->rlen - conn->rstart);
        conn->rlen -= conn->rstart;
        conn->rstart = 0;
    }
    if (conn->rcap >= need)
        return PKC_OK;
    ncap = conn->rcap ? conn->rcap : PKC_CONN_RBUF_INITIAL;
    while (ncap < need)
        ncap *= 2;
    limit = (size_t)conn->max_frame + 4;
    if (ncap > limit)
        ncap = need > limit ? need : limit;
    nb = realloc(conn->rbuf, ncap);
    if (nb == NULL)
        return PKC_ERR_NOMEM;
    conn->rbuf = nb;
    conn->rcap = ncap;
    if (ncap > conn->rcap_peak)
        conn->rcap_peak = ncap;
    return PKC_OK;
}

/* Set the socket's wake-up threshold; on failure the kernel's default
 * stays, which is only slower. */
static void
conn_set_lowat(pkc_conn *conn, int lowat)
{
    if (lowat == conn->rcvlowat)
        return;
    if (setsockopt(conn->fd, SOL_SOCKET, SO_RCVLOWAT, &lowat,
                   sizeof(lowat)) == 0)
        conn->rcvlowat = lowat;
}

/* Before waiting for `missing` more bytes of a frame: a threshold that
 * bytes certain to come will reach (over TLS, less what OpenSSL may
 * already hold of a record), never a stale one from a longer frame. */
static void
conn_expect(pkc_conn *conn, size_t missing)
{
    size_t lowat = missing;

    if (conn->tls != NULL)
        lowat = lowat > PKC_CONN_TLS_RECORD_HELD
                    ? lowat - PKC_CONN_TLS_RECORD_HELD : 0;
    if (lowat < PKC_CONN_LOWAT_MIN)
        lowat = 1;
    else if (lowat > PKC_CONN_LOWAT_MAX)
        lowat = PKC_CONN_LOWAT_MAX;
    conn_set_lowat(conn, (int)lowat);
}

/* Receive until [rstart, rstart + need) is in the buffer (room ensured by
 * the caller).  `frame` is the frame's total size for messages, or 0 while
 * the length itself is being read. */
static int
conn_fill(pkc_conn *conn, size_t need, size_t frame, int64_t deadline)
{
    int rc, err;

    while (conn->rlen - conn->rstart < need) {
        size_t got = 0;
        short want = POLLIN;

        rc = conn_io_recv(conn, conn->rbuf + conn->rlen,
                          conn->rcap - conn->rlen, &got, &want, &err);
        if (rc == PKC_OK) {
            conn->rlen += got;
            continue;
        }
        if (rc == PKC_ERR_CLOSED) {
            size_t have = conn->rlen - conn->rstart;
            if (have == 0 && frame == 0)
                return conn_fatal(conn, PKC_ERR_CLOSED, 0,
                                  "connection closed by the broker");
            return conn_fatal(conn, PKC_ERR_CLOSED, 0,
                              "connection closed by the broker inside a "
                              "response frame (%zu of %zu bytes received)",
                              have, frame ? frame : (size_t)4);
        }
        if (rc == PKC_ERR_INTR)
            return rc;
        if (rc == PKC_IN_PROGRESS) {
            if (want == POLLIN)
                conn_expect(conn, need - (conn->rlen - conn->rstart));
            rc = conn_wait(conn, want, deadline, &err);
            if (rc == PKC_OK)
                continue;
            if (rc == PKC_ERR_INTR)
                return rc;
            if (rc == PKC_ERR_TIMEOUT)
                return conn_error(conn, rc, 0,
                                  "timed out waiting for a response "
                                  "(%zu bytes of it received)",
                                  conn->rlen - conn->rstart);
            return conn_fatal(conn, rc, err, "poll failed while receiving");
        }
        return conn_io_fatal(conn, rc, err, "recv failed");
    }
    return PKC_OK;
}

int
pkc_conn_recv_response(pkc_conn *conn, int64_t deadline, pkc_response *resp)
{
    char why[200];
    int32_t length, corr;
    size_t total;
    pkc_inflight *e;
    pkc_reader r;
    int rc;

    memset(resp, 0, sizeof(*resp));
    if (conn->state != PKC_CONN_OPEN)
        return conn_not_open(conn);
    /* The previous response's view ends here. */
    conn->rstart += conn->rconsume;
    conn->rconsume = 0;
    if (conn->rstart == conn->rlen)
        conn->rstart = conn->rlen = 0;
    if (pkc_conn_in_flight(conn) == 0)
        return conn_error(conn, PKC_ERR_INVALID, 0, "no request in flight");
    if (pkc_conn_unsent(conn) > 0) {
        rc = pkc_conn_flush(conn, deadline);
        if (rc != PKC_OK)
            return rc;
    }
    for (;;) {
        rc = conn_rbuf_room(conn, 4);
        if (rc != PKC_OK)
            return conn_fatal(conn, rc, 0, "out of memory");
        rc = conn_fill(conn, 4, 0, deadline);
        if (rc != PKC_OK)
            return rc;
        rc = pkc_frame_check_length(conn->rbuf + conn->rstart,
                                    conn->max_frame, &length, why,
                                    sizeof(why));
        if (rc != PKC_OK)
            return conn_fatal(conn, rc, 0, "%s", why);
        total = 4 + (size_t)length;
        rc = conn_rbuf_room(conn, total);
        if (rc != PKC_OK)
            return conn_fatal(conn, rc, 0,
                              "out of memory for a %zu-byte response", total);
        rc = conn_fill(conn, total, total, deadline);
        if (rc != PKC_OK)
            return rc;

        e = &conn->fifo[conn->fifo_head];
        pkc_reader_init(&r, conn->rbuf + conn->rstart + 4, (size_t)length);
        rc = pkc_response_header_read(&r, e->response_header_version, &corr);
        if (rc != PKC_OK)
            return conn_fatal(conn, rc, 0,
                              "malformed response header v%d for ApiKey %d "
                              "v%d: %s in %s at byte %zu",
                              e->response_header_version, e->api_key,
                              e->api_version, pkc_status_str(rc),
                              r.err_field ? r.err_field : "?", r.err_offset);
        if (corr != e->correlation_id)
            return conn_fatal(conn, PKC_ERR_INVALID, 0,
                              "response CorrelationId %d does not match the "
                              "oldest request in flight (CorrelationId %d, "
                              "ApiKey %d v%d)", (int)corr,
                              (int)e->correlation_id, e->api_key,
                              e->api_version);
        if (e->discard) {
            /* Nobody waits for this one: drop it and read the next. */
            conn_fifo_pop(conn);
            conn->rstart += total;
            if (conn->rstart == conn->rlen)
                conn->rstart = conn->rlen = 0;
            continue;
        }
        resp->correlation_id = corr;
        resp->api_key = e->api_key;
        resp->api_version = e->api_version;
        resp->body = r.pos;
        resp->body_len = pkc_reader_remaining(&r);
        conn_fifo_pop(conn);
        conn->rconsume = total;
        conn_set_lowat(conn, 1); /* the next answer may be short */
        return PKC_OK;
    }
}
