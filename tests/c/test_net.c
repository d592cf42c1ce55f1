/*
 * test_net.c - plain-C tests of net.c without Python, over socketpairs:
 * the API the C fetch loop and producer thread use (request_begin/end
 * with a writer, flush, recv with deadlines, discard), resumable progress
 * on timeouts, pipelining, and the fatal-error paths; and, over loopback
 * TCP, the blocking and the non-blocking connect (pkc_conn_connect_start /
 * _step): success, refusal with fail-over to the next resolved address,
 * and a listener that does not answer SYNs.
 *
 * Build and run (tests/test_net_c.py does this):
 *   cc -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE -Icsrc/wire \
 *      tests/c/test_net.c csrc/wire/net.c csrc/wire/buf.c -o test_net
 *   ./test_net
 */
#include "buf.h"
#include "net.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

static int failures;

#define CHECK(cond)                                                        \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__,        \
                    __LINE__, #cond);                                      \
            failures++;                                                    \
        }                                                                  \
    } while (0)

#define CHECK_RC(expr, want)                                               \
    do {                                                                   \
        int rc_ = (expr);                                                  \
        if (rc_ != (want)) {                                               \
            fprintf(stderr, "%s:%d: %s returned %d (%s), want %d\n",      \
                    __FILE__, __LINE__, #expr, rc_, pkc_status_str(rc_),   \
                    (int)(want));                                          \
            failures++;                                                    \
        }                                                                  \
    } while (0)

/* A conn on one end of a socketpair; *peer is the "broker" end. */
static void
setup(pkc_conn *conn, int *peer, int32_t max_frame)
{
    int sv[2];

    if (pkc_conn_init(conn, "c-test", 6, max_frame) != PKC_OK)
        abort();
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        abort();
    if (pkc_conn_adopt_fd(conn, sv[0], "pair") != PKC_OK)
        abort();
    *peer = sv[1];
}

static void
put(int fd, const void *data, size_t len)
{
    const uint8_t *p = data;

    while (len) {
        ssize_t n = write(fd, p, len);
        if (n <= 0)
            abort();
        p += n;
        len -= (size_t)n;
    }
}

static void
get(int fd, void *data, size_t len)
{
    uint8_t *p = data;

    while (len) {
        ssize_t n = read(fd, p, len);
        if (n <= 0)
            abort();
        p += n;
        len -= (size_t)n;
    }
}

/* Write a response frame: header v0 or v1 (empty tags) + body. */
static void
respond(int fd, int32_t corr, int header_version, const void *body,
        size_t len)
{
    uint8_t hdr[9];
    size_t hlen = 8;

    pkc_store_u32(hdr, (uint32_t)(4 + (header_version ? 1 : 0) + len));
    pkc_store_u32(hdr + 4, (uint32_t)corr);
    if (header_version)
        hdr[hlen++] = 0;
    put(fd, hdr, hlen);
    put(fd, body, len);
}

/* Read one request frame from the broker end; returns its size. */
static int32_t
read_request(int fd, uint8_t *buf, size_t cap)
{
    uint8_t szb[4];
    int32_t size;

    get(fd, szb, 4);
    size = (int32_t)pkc_load_u32(szb);
    if (size < 0 || (size_t)size > cap)
        abort();
    get(fd, buf, (size_t)size);
    return size;
}

static void
test_header_bytes(void)
{
    pkc_conn conn;
    pkc_writer *w;
    uint8_t buf[256];
    int32_t corr, size;
    int peer;
    static const uint8_t want_v2[] = {
        0, 1, 0, 12,                          /* ApiKey 1, version 12 */
        0, 0, 0, 1,                           /* CorrelationId 1 */
        0, 6, 'c', '-', 't', 'e', 's', 't',   /* ClientId */
        0,                                    /* TaggedFields */
        0xAB, 0xCD                            /* body */
    };

    setup(&conn, &peer, 0);
    CHECK_RC(pkc_conn_request_begin(&conn, 1, 12, 1, &w), PKC_OK);
    pkc_write_i16(w, (int16_t)0xABCD);
    CHECK_RC(pkc_conn_request_end(&conn, 1, &corr), PKC_OK);
    CHECK(corr == 1);
    CHECK(pkc_conn_in_flight(&conn) == 1);
    CHECK(pkc_conn_unsent(&conn) == 4 + sizeof(want_v2));
    CHECK_RC(pkc_conn_flush(&conn, PKC_NO_DEADLINE), PKC_OK);
    CHECK(pkc_conn_unsent(&conn) == 0);
    size = read_request(peer, buf, sizeof(buf));
    CHECK(size == (int32_t)sizeof(want_v2));
    CHECK(memcmp(buf, want_v2, sizeof(want_v2)) == 0);

    /* Header v1: no tagged fields. */
    CHECK_RC(pkc_conn_send_request(&conn, 3, 1, 0, 1, "", 0,
                                   PKC_NO_DEADLINE, &corr), PKC_OK);
    CHECK(corr == 2);
    size = read_request(peer, buf, sizeof(buf));
    CHECK(size == 16);
    CHECK(buf[15] == 't');
    pkc_conn_free(&conn);
    close(peer);
}

static void
test_pipelining_and_header_versions(void)
{
    pkc_conn conn;
    pkc_response resp;
    uint8_t buf[256];
    int32_t ids[4];
    int peer;

    setup(&conn, &peer, 0);
    /* 0: v0, 1: flexible (v1), 2: flexible ApiVersions (v0), 3: acks=0 */
    CHECK_RC(pkc_conn_send_request(&conn, 3, 1, 0, 1, "a", 1,
                                   PKC_NO_DEADLINE, &ids[0]), PKC_OK);
    CHECK_RC(pkc_conn_send_request(&conn, 3, 12, 1, 1, "b", 1,
                                   PKC_NO_DEADLINE, &ids[1]), PKC_OK);
    CHECK_RC(pkc_conn_send_request(&conn, 18, 3, 1, 1, "c", 1,
                                   PKC_NO_DEADLINE, &ids[2]), PKC_OK);
    CHECK_RC(pkc_conn_send_request(&conn, 0, 9, 1, 0, "d", 1,
                                   PKC_NO_DEADLINE, &ids[3]), PKC_OK);
    CHECK(pkc_conn_in_flight(&conn) == 3);
    for (int i = 0; i < 4; i++)
        read_request(peer, buf, sizeof(buf));
    respond(peer, ids[0], 0, "r0", 2);
    respond(peer, ids[1], 1, "r1", 2);
    respond(peer, ids[2], 0, "r2", 2);

    for (int i = 0; i < 3; i++) {
        CHECK_RC(pkc_conn_recv_response(&conn, pkc_deadline_after(5000),
                                        &resp), PKC_OK);
        CHECK(resp.correlation_id == ids[i]);
        CHECK(resp.body_len == 2 && resp.body[0] == 'r' &&
              resp.body[1] == '0' + i);
    }
    CHECK(resp.api_key == 18 && resp.api_version == 3);
    CHECK(pkc_conn_in_flight(&conn) == 0);
    /* Nothing in flight: an error that leaves the connection open. */
    CHECK_RC(pkc_conn_recv_response(&conn, 0, &resp), PKC_ERR_INVALID);
    CHECK(pkc_conn_is_open(&conn));
    pkc_conn_free(&conn);
    close(peer);
}

static void
test_partial_frames_resume(void)
{
    pkc_conn conn;
    pkc_response resp;
    uint8_t buf[64], frame[4 + 4 + 300];
    int32_t corr;
    int peer;

    setup(&conn, &peer, 0);
    CHECK_RC(pkc_conn_send_request(&conn, 3, 1, 0, 1, NULL, 0,
                                   PKC_NO_DEADLINE, &corr), PKC_OK);
    read_request(peer, buf, sizeof(buf));
    pkc_store_u32(frame, 4 + 300);
    pkc_store_u32(frame + 4, (uint32_t)corr);
    for (int i = 0; i < 300; i++)
        frame[8 + i] = (uint8_t)i;
    /* Feed it in pieces; each receive with a passed deadline times out,
     * keeps what it has, and the last one completes the frame. */
    size_t cuts[] = {1, 3, 6, 8, 100, sizeof(frame)};
    size_t sent = 0;
    for (size_t k = 0; k < sizeof(cuts) / sizeof(cuts[0]); k++) {
        put(peer, frame + sent, cuts[k] - sent);
        sent = cuts[k];
        int rc = pkc_conn_recv_response(&conn, 0, &resp);
        if (sent < sizeof(frame)) {
            CHECK_RC(rc, PKC_ERR_TIMEOUT);
            CHECK(pkc_conn_is_open(&conn));
            CHECK(pkc_conn_in_flight(&conn) == 1);
        }
        else {
            CHECK_RC(rc, PKC_OK);
            CHECK(resp.body_len == 300);
            CHECK(resp.body[0] == 0 && resp.body[299] == (uint8_t)299);
        }
    }
    pkc_conn_free(&conn);
    close(peer);
}

static void
test_discard(void)
{
    pkc_conn conn;
    pkc_response resp;
    uint8_t buf[64];
    int32_t a, b;
    int peer;

    setup(&conn, &peer, 0);
    CHECK_RC(pkc_conn_send_request(&conn, 3, 1, 0, 1, NULL, 0,
                                   PKC_NO_DEADLINE, &a), PKC_OK);
    CHECK_RC(pkc_conn_send_request(&conn, 3, 1, 0, 1, NULL, 0,
                                   PKC_NO_DEADLINE, &b), PKC_OK);
    CHECK_RC(pkc_conn_discard(&conn, a), PKC_OK);
    CHECK_RC(pkc_conn_discard(&conn, a), PKC_ERR_INVALID);
    CHECK(pkc_conn_in_flight(&conn) == 1);
    read_request(peer, buf, sizeof(buf));
    read_request(peer, buf, sizeof(buf));
    respond(peer, a, 0, "old", 3);
    respond(peer, b, 0, "new", 3);
    CHECK_RC(pkc_conn_recv_response(&conn, pkc_deadline_after(5000), &resp),
             PKC_OK);
    CHECK(resp.correlation_id == b && resp.body_len == 3 &&
          memcmp(resp.body, "new", 3) == 0);
    CHECK(conn.fifo_len == 0 && conn.fifo_discard == 0);
    pkc_conn_free(&conn);
    close(peer);
}

static void
test_fatal_errors(void)
{
    static const struct {
        uint8_t bytes[8];
        size_t len;
        int want;
    } cases[] = {
        {{0x7f, 0xff, 0xff, 0xff}, 4, PKC_ERR_TOO_LARGE},
        {{0xff, 0xff, 0xff, 0xff}, 4, PKC_ERR_INVALID},
        {{0, 0, 0, 0}, 4, PKC_ERR_INVALID},
        {{0, 0, 4, 1}, 4, PKC_ERR_TOO_LARGE}, /* max 1024, length 1025 */
        {{0x15, 3, 3, 0, 2, 2, 0x32}, 7, PKC_ERR_TOO_LARGE},
        {{0, 0, 0, 4, 0, 0, 0, 99}, 8, PKC_ERR_INVALID}, /* wrong corr */
        {{0, 0, 0, 9, 0, 0}, 6, PKC_ERR_CLOSED},         /* EOF inside */
    };
    pkc_response resp;
    uint8_t buf[64];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pkc_conn conn;
        int32_t corr;
        int peer;

        setup(&conn, &peer, 1024);
        CHECK_RC(pkc_conn_send_request(&conn, 3, 1, 0, 1, NULL, 0,
                                       PKC_NO_DEADLINE, &corr), PKC_OK);
        read_request(peer, buf, sizeof(buf));
        put(peer, cases[i].bytes, cases[i].len);
        shutdown(peer, SHUT_WR);
        CHECK_RC(pkc_conn_recv_response(&conn, pkc_deadline_after(5000),
                                        &resp), cases[i].want);
        CHECK(conn.state == PKC_CONN_BROKEN);
        CHECK(conn.rcap_peak == PKC_CONN_RBUF_INITIAL);
        CHECK(conn.errstr[0] != '\0');
        /* Broken: the peer sees EOF, later calls fail without I/O. */
        CHECK(read(peer, buf, sizeof(buf)) == 0);
        CHECK_RC(pkc_conn_send_request(&conn, 3, 1, 0, 1, NULL, 0, 0, NULL),
                 PKC_ERR_CLOSED);
        CHECK(pkc_conn_in_flight(&conn) == 0);
        pkc_conn_close(&conn);
        CHECK(conn.fd == -1 && conn.state == PKC_CONN_CLOSED);
        pkc_conn_free(&conn);
        close(peer);
    }
}

static void
test_flush_resumes_when_the_peer_is_slow(void)
{
    pkc_conn conn;
    size_t big = 4 * 1024 * 1024, got = 0;
    uint8_t *body = malloc(big), *sink = malloc(65536);
    int32_t corr;
    int peer, rc;

    if (body == NULL || sink == NULL)
        abort();
    memset(body, 'z', big);
    setup(&conn, &peer, 0);
    /* Nobody reads: the socket buffer fills and the flush times out with
     * the rest still queued. */
    rc = pkc_conn_send_request(&conn, 0, 9, 0, 1, body, big, 0, &corr);
    CHECK_RC(rc, PKC_ERR_TIMEOUT);
    CHECK(pkc_conn_is_open(&conn));
    CHECK(pkc_conn_unsent(&conn) > 0);
    CHECK(pkc_conn_in_flight(&conn) == 1);
    /* Drain the peer while flushing in steps. */
    fcntl(peer, F_SETFL, O_NONBLOCK);
    while (pkc_conn_unsent(&conn) > 0) {
        ssize_t n = read(peer, sink, 65536);
        if (n > 0)
            got += (size_t)n;
        rc = pkc_conn_flush(&conn, 0);
        CHECK(rc == PKC_OK || rc == PKC_ERR_TIMEOUT);
        if (rc != PKC_OK && rc != PKC_ERR_TIMEOUT)
            break;
    }
    for (;;) {
        ssize_t n = read(peer, sink, 65536);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    CHECK(got == 4 + 16 + big);
    pkc_conn_free(&conn);
    close(peer);
    free(body);
    free(sink);
}

/* A loopback port nothing listens on (bound, then released). */
static int
free_port(void)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
        abort();
    port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

static void
test_connect_refused_and_bad_args(void)
{
    char where[32];
    pkc_conn conn;
    int port = free_port();

    pkc_conn_init(&conn, NULL, 0, 0);
    CHECK_RC(pkc_conn_connect(&conn, "", 9092, PKC_NO_DEADLINE, NULL, 0),
             PKC_ERR_INVALID);
    CHECK_RC(pkc_conn_connect(&conn, "127.0.0.1", 70000, PKC_NO_DEADLINE,
                              NULL, 0), PKC_ERR_INVALID);
    CHECK_RC(pkc_conn_connect(&conn, "127.0.0.1", port,
                              pkc_deadline_after(5000), NULL, 0), PKC_ERR_IO);
    CHECK(conn.err_errno == ECONNREFUSED);
    snprintf(where, sizeof(where), "127.0.0.1:%d", port);
    CHECK(strstr(conn.errstr, where) != NULL);
    CHECK(conn.state == PKC_CONN_CLOSED && conn.fd == -1);
    pkc_conn_free(&conn);
}

/* ----------------------------------------------------- resolution stub */

/*
 * Name resolution for the fail-over tests: the host MULTI_HOST resolves to
 * 127.0.0.1, 127.0.0.2, 127.0.0.3 in this order (all loopback on Linux),
 * which no system resolver here can be told to do.  This executable's
 * getaddrinfo/freeaddrinfo take precedence over libc's for net.c's calls;
 * every other name goes to the next definition (libc, or the sanitizer's
 * interceptor in front of it).
 */
#define MULTI_HOST "multi.pkc.test"
#define MULTI_N 3

typedef struct {
    struct addrinfo ai[MULTI_N];
    struct sockaddr_in sa[MULTI_N];
} multi_list;

int
getaddrinfo(const char *node, const char *service,
            const struct addrinfo *hints, struct addrinfo **res)
{
    typedef int (*gai_fn)(const char *, const char *,
                          const struct addrinfo *, struct addrinfo **);
    gai_fn next;

    if (node != NULL && strcmp(node, MULTI_HOST) == 0) {
        multi_list *m = calloc(1, sizeof(*m));
        if (m == NULL)
            return EAI_MEMORY;
        for (int i = 0; i < MULTI_N; i++) {
            m->sa[i].sin_family = AF_INET;
            m->sa[i].sin_port = htons((uint16_t)atoi(service));
            m->sa[i].sin_addr.s_addr = htonl(0x7f000001u + (uint32_t)i);
            m->ai[i].ai_family = AF_INET;
            m->ai[i].ai_socktype = SOCK_STREAM;
            m->ai[i].ai_protocol = IPPROTO_TCP;
            m->ai[i].ai_addr = (struct sockaddr *)&m->sa[i];
            m->ai[i].ai_addrlen = sizeof(m->sa[i]);
            m->ai[i].ai_next = i + 1 < MULTI_N ? &m->ai[i + 1] : NULL;
        }
        *res = &m->ai[0]; /* == (struct addrinfo *)m */
        return 0;
    }
    *(void **)&next = dlsym(RTLD_NEXT, "getaddrinfo");
    if (next == NULL)
        abort();
    return next(node, service, hints, res);
}

void
freeaddrinfo(struct addrinfo *ai)
{
    typedef void (*fai_fn)(struct addrinfo *);
    fai_fn next;

    if (ai != NULL && ai->ai_canonname == NULL && ai->ai_next != NULL &&
        ai->ai_addr == (struct sockaddr *)&((multi_list *)(void *)ai)->sa[0]) {
        free(ai);
        return;
    }
    *(void **)&next = dlsym(RTLD_NEXT, "freeaddrinfo");
    if (next == NULL)
        abort();
    next(ai);
}

/* ---------------------------------------------------------- listeners */

/* A TCP socket bound to 127.0.0.<last>:port (0: any port); listening with
 * `backlog` when backlog >= 0, else bound only (connects are refused). */
static int
tcp_socket_at(int last, int port, int backlog, int *bound_port)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

    /* SO_REUSEADDR: a port reused after a test's connection closed may
     * still have a TIME_WAIT entry. */
    if (fd < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0)
        abort();
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(0x7f000000u + (uint32_t)last);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        abort();
    if (backlog >= 0 && listen(fd, backlog) != 0)
        abort();
    if (getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
        abort();
    if (bound_port != NULL)
        *bound_port = ntohs(sa.sin_port);
    return fd;
}

/*
 * A listener that does not answer SYNs: backlog 0 and an accept queue
 * already full (Linux drops a SYN to a listener whose accept queue is
 * full, so the client's connect stays in progress).  The filler sockets
 * go to fill[0..2].  Returns the listener.
 */
static int
blackhole_listener(int *port, int fill[3])
{
    struct sockaddr_in sa;
    int lfd = tcp_socket_at(1, 0, 0, port);

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)*port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < 3; i++) {
        fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (fill[i] < 0)
            abort();
        if (connect(fill[i], (struct sockaddr *)&sa, sizeof(sa)) != 0 &&
            errno != EINPROGRESS)
            abort();
    }
    /* Let the handshakes that fit complete. */
    poll(NULL, 0, 50);
    return lfd;
}

/* Step a non-blocking connect to its end, waiting for POLLOUT in between
 * (the way a multiplexing loop would); counts the waits. */
static int
step_until_done(pkc_conn *conn, int rc, int *waits)
{
    *waits = 0;
    while (rc == PKC_IN_PROGRESS) {
        struct pollfd pfd = {conn->fd, POLLOUT, 0};
        int64_t left = conn->connect_deadline - pkc_now_ms();
        poll(&pfd, 1, left < 0 ? 0 : (int)(left > 5000 ? 5000 : left));
        (*waits)++;
        rc = pkc_conn_connect_step(conn);
    }
    return rc;
}

static void
test_connect_step_success(void)
{
    pkc_conn conn;
    int port, waits, afd;
    int lfd = tcp_socket_at(1, 0, 8, &port);
    int rc;

    pkc_conn_init(&conn, NULL, 0, 0);
    rc = pkc_conn_connect_start(&conn, "127.0.0.1", port,
                                pkc_deadline_after(5000), NULL, 0);
    CHECK(rc == PKC_OK || rc == PKC_IN_PROGRESS);
    CHECK(conn.fd >= 0);
    CHECK_RC(step_until_done(&conn, rc, &waits), PKC_OK);
    CHECK(conn.state == PKC_CONN_OPEN && pkc_conn_is_open(&conn));
    CHECK(conn.ai_list == NULL && conn.errstr[0] == '\0');
    afd = accept(lfd, NULL, NULL);
    CHECK(afd >= 0);
    /* No connect in progress any more: _step says so, the conn stays. */
    CHECK_RC(pkc_conn_connect_step(&conn), PKC_ERR_INVALID);
    CHECK(conn.state == PKC_CONN_OPEN);
    /* The connection works: a request reaches the listener's side. */
    CHECK_RC(pkc_conn_send_request(&conn, 18, 0, 0, 1, "", 0,
                                   pkc_deadline_after(2000), NULL),
             PKC_OK);
    {
        uint8_t req[64];
        CHECK(read_request(afd, req, sizeof(req)) >= 8);
    }
    close(afd);

    /* A connect started without waiting, finished by the blocking call. */
    rc = pkc_conn_connect_start(&conn, "127.0.0.1", port,
                                pkc_deadline_after(5000), NULL, 0);
    CHECK(rc == PKC_OK || rc == PKC_IN_PROGRESS);
    if (rc == PKC_IN_PROGRESS)
        rc = pkc_conn_connect_resume(&conn, pkc_deadline_after(5000));
    CHECK_RC(rc, PKC_OK);
    CHECK(conn.state == PKC_CONN_OPEN);
    pkc_conn_free(&conn);
    close(lfd);
}

static void
test_connect_step_fails_over(void)
{
    char where[48];
    pkc_conn conn;
    int port, waits, rc, afd;
    /* 127.0.0.2 listens; 127.0.0.1 and .3 on the same port refuse (bound,
     * not listening, so nothing else can listen there meanwhile). */
    int lfd = tcp_socket_at(2, 0, 8, &port);
    int r1 = tcp_socket_at(1, port, -1, NULL);
    int r3 = tcp_socket_at(3, port, -1, NULL);

    pkc_conn_init(&conn, NULL, 0, 0);
    rc = pkc_conn_connect_start(&conn, MULTI_HOST, port,
                                pkc_deadline_after(5000), NULL, 0);
    CHECK_RC(step_until_done(&conn, rc, &waits), PKC_OK);
    CHECK(conn.state == PKC_CONN_OPEN);
    snprintf(where, sizeof(where), "127.0.0.2:%d", port);
    CHECK(strcmp(conn.connect_addr, where) == 0);
    afd = accept(lfd, NULL, NULL);
    CHECK(afd >= 0);
    if (afd >= 0)
        close(afd);
    pkc_conn_close(&conn);
    close(lfd);

    /* Every address refuses: each is tried, the last one's error stays. */
    lfd = tcp_socket_at(2, port, -1, NULL);
    rc = pkc_conn_connect_start(&conn, MULTI_HOST, port,
                                pkc_deadline_after(5000), NULL, 0);
    CHECK_RC(step_until_done(&conn, rc, &waits), PKC_ERR_IO);
    CHECK(conn.err_errno == ECONNREFUSED);
    snprintf(where, sizeof(where), "127.0.0.3:%d", port);
    CHECK(strstr(conn.errstr, where) != NULL);
    CHECK(conn.state == PKC_CONN_CLOSED && conn.fd == -1);
    CHECK(conn.ai_list == NULL);
    /* Nothing in progress after a failure. */
    CHECK_RC(pkc_conn_connect_step(&conn), PKC_ERR_INVALID);
    /* Bad arguments fail at once, as with the blocking call. */
    CHECK_RC(pkc_conn_connect_start(&conn, "", 9092, PKC_NO_DEADLINE, NULL,
                                    0), PKC_ERR_INVALID);
    CHECK_RC(pkc_conn_connect_start(&conn, "127.0.0.1", 0, PKC_NO_DEADLINE,
                                    NULL, 0), PKC_ERR_INVALID);
    CHECK(conn.state == PKC_CONN_CLOSED);
    pkc_conn_free(&conn);
    close(lfd);
    close(r1);
    close(r3);
}

static void
test_connect_step_no_answer_times_out(void)
{
    pkc_conn conn;
    int fill[3], port, rc, waits;
    int lfd = blackhole_listener(&port, fill);
    int64_t t0, deadline;
    struct pollfd pfd;

    pkc_conn_init(&conn, NULL, 0, 0);
    t0 = pkc_now_ms();
    deadline = t0 + 400;
    rc = pkc_conn_connect_start(&conn, "127.0.0.1", port, deadline, NULL, 0);
    /* Started without waiting for the handshake. */
    CHECK(pkc_now_ms() - t0 < 200);
    CHECK_RC(rc, PKC_IN_PROGRESS);
    CHECK(conn.state == PKC_CONN_CONNECTING && conn.fd >= 0);
    CHECK(conn.connect_deadline == deadline);
    if (rc != PKC_IN_PROGRESS) {
        fprintf(stderr, "the full-backlog listener answered the SYN: this "
                "kernel does not drop SYNs to a full accept queue\n");
        pkc_conn_free(&conn);
        goto out;
    }
    /* Before the deadline a step never blocks and reports progress. */
    t0 = pkc_now_ms();
    CHECK_RC(pkc_conn_connect_step(&conn), PKC_IN_PROGRESS);
    CHECK(pkc_now_ms() - t0 < 50);
    pfd.fd = conn.fd;
    pfd.events = POLLOUT;
    pfd.revents = 0;
    CHECK(poll(&pfd, 1, 100) == 0); /* no SYN-ACK came */
    CHECK_RC(pkc_conn_connect_step(&conn), PKC_IN_PROGRESS);
    /* At the deadline: PKC_ERR_TIMEOUT, closed, the address named. */
    CHECK_RC(step_until_done(&conn, PKC_IN_PROGRESS, &waits),
             PKC_ERR_TIMEOUT);
    CHECK(pkc_now_ms() >= deadline);
    CHECK(pkc_now_ms() - deadline < 1000);
    CHECK(strstr(conn.errstr, "timed out") != NULL);
    CHECK(conn.state == PKC_CONN_CLOSED && conn.fd == -1);

    /* The blocking connect keeps its behaviour: PKC_ERR_TIMEOUT at the
     * deadline. */
    t0 = pkc_now_ms();
    CHECK_RC(pkc_conn_connect(&conn, "127.0.0.1", port, t0 + 300, NULL, 0),
             PKC_ERR_TIMEOUT);
    CHECK(pkc_now_ms() - t0 >= 300 && pkc_now_ms() - t0 < 1300);
    CHECK(conn.state == PKC_CONN_CLOSED && conn.fd == -1);
    pkc_conn_free(&conn);
out:
    for (int i = 0; i < 3; i++)
        close(fill[i]);
    close(lfd);
}

/* poll() on the conn's socket: 1 when it reports POLLIN at once. */
static int
readable_now(const pkc_conn *conn)
{
    struct pollfd pfd = {conn->fd, POLLIN, 0};

    return poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLIN);
}

/* A long frame raises the socket's wake-up threshold (SO_RCVLOWAT) to what
 * is certain to come, never past it; the threshold falls back to 1 when
 * the frame is whole, so a short answer after it is read at once. */
static void
test_long_frame_wake_threshold(void)
{
    enum { BODY = 400 * 1024 };
    pkc_conn conn;
    pkc_response resp;
    uint8_t req[64], small[4 + 4 + 10];
    uint8_t *frame = calloc(1, 8 + BODY);
    int port, afd, lfd = tcp_socket_at(1, 0, 8, &port);
    int32_t corr;
    size_t sent;

    pkc_conn_init(&conn, NULL, 0, 0);
    CHECK_RC(pkc_conn_connect(&conn, "127.0.0.1", port,
                              pkc_deadline_after(5000), NULL, 0), PKC_OK);
    afd = accept(lfd, NULL, NULL);
    CHECK(afd >= 0 && frame != NULL && conn.rcvlowat == 1);
    CHECK_RC(pkc_conn_send_request(&conn, 1, 4, 0, 1, NULL, 0,
                                   pkc_deadline_after(2000), &corr), PKC_OK);
    read_request(afd, req, sizeof(req));
    pkc_store_u32(frame, 4 + BODY);
    pkc_store_u32(frame + 4, (uint32_t)corr);
    frame[8 + BODY - 1] = 0x5a;
    /* 100 KiB of it: 308 KiB still to come, so the threshold is the cap. */
    sent = 100 * 1024;
    put(afd, frame, sent);
    CHECK_RC(pkc_conn_recv_response(&conn, pkc_deadline_after(50), &resp),
             PKC_ERR_TIMEOUT);
    CHECK(conn.rcvlowat == PKC_CONN_LOWAT_MAX);
    /* Less than the threshold arrives: poll() does not wake for it. */
    put(afd, frame + sent, 100 * 1024);
    sent += 100 * 1024;
    usleep(20000);
    CHECK(!readable_now(&conn));
    /* The rest, in two pieces: every wait ends, and the frame is whole. */
    put(afd, frame + sent, 150 * 1024);
    sent += 150 * 1024;
    CHECK_RC(pkc_conn_recv_response(&conn, pkc_deadline_after(50), &resp),
             PKC_ERR_TIMEOUT);
    CHECK(conn.rcvlowat == 1); /* 58 KiB to come: below the minimum */
    put(afd, frame + sent, 8 + BODY - sent);
    CHECK_RC(pkc_conn_recv_response(&conn, pkc_deadline_after(2000), &resp),
             PKC_OK);
    CHECK(resp.body_len == BODY && resp.body[BODY - 1] == 0x5a);
    CHECK(conn.rcvlowat == 1);
    /* A ten-byte answer to the next request is read at once. */
    CHECK_RC(pkc_conn_send_request(&conn, 1, 4, 0, 1, NULL, 0,
                                   pkc_deadline_after(2000), &corr), PKC_OK);
    read_request(afd, req, sizeof(req));
    pkc_store_u32(small, 4 + 10);
    pkc_store_u32(small + 4, (uint32_t)corr);
    memset(small + 8, 7, 10);
    put(afd, small, sizeof(small));
    int64_t t0 = pkc_now_ms();
    CHECK_RC(pkc_conn_recv_response(&conn, pkc_deadline_after(2000), &resp),
             PKC_OK);
    CHECK(pkc_now_ms() - t0 < 500 && resp.body_len == 10);
    /* A closed socket starts again from the default. */
    pkc_conn_close(&conn);
    CHECK(conn.rcvlowat == 1);
    pkc_conn_free(&conn);
    free(frame);
    close(afd);
    close(lfd);
}

int
main(void)
{
    test_header_bytes();
    test_pipelining_and_header_versions();
    test_partial_frames_resume();
    test_discard();
    test_fatal_errors();
    test_flush_resumes_when_the_peer_is_slow();
    test_connect_refused_and_bad_args();
    test_connect_step_success();
    test_connect_step_fails_over();
    test_connect_step_no_answer_times_out();
    test_long_frame_wake_threshold();
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("test_net: all checks passed\n");
    return 0;
}
