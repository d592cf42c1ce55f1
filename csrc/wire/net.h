/*
 * net.h - a Kafka broker connection in plain C (no Python.h).
 *
 * A pkc_conn is one TCP connection speaking Kafka's size-prefixed framing:
 * requests are written with a request header (v1, or v2 for flexible
 * versions), responses are read into one receive buffer that is reused
 * across frames, and every response's CorrelationId is checked against the
 * oldest request still in flight (Kafka answers the requests of one
 * connection in order, so several may be in flight: send N, receive N).
 *
 * Threads: a pkc_conn has no lock.  One thread at a time may use it; the
 * functions never touch Python, so the Python glue calls them without the
 * GIL under its own lock, and the C fetch loop / producer thread may embed
 * a pkc_conn directly.
 *
 * Blocking and deadlines: every blocking function takes an absolute
 * deadline in milliseconds on the monotonic clock (pkc_now_ms()), or
 * PKC_NO_DEADLINE to wait forever.  A deadline that has already passed
 * makes one non-blocking attempt, so a caller multiplexing many
 * connections can poll their descriptors itself and then step each one.
 * The socket is non-blocking; waiting is done with poll().
 *
 * Interruption: a signal that interrupts poll/recv/send returns
 * PKC_ERR_INTR with all progress kept (bytes already sent or received stay
 * accounted), so the caller can run its signal handlers and call the same
 * function again, as CPython's sock_call_ex does; a pure-C caller may just
 * retry.  PKC_ERR_TIMEOUT likewise keeps the progress and the connection:
 * the Python glue chooses to close on timeout, a multiplexing C loop need
 * not.
 *
 * Fatal errors: a socket error (PKC_ERR_IO), end of stream (PKC_ERR_CLOSED),
 * a frame length that is negative, too short or over max_frame
 * (PKC_ERR_INVALID / PKC_ERR_TOO_LARGE, decided from the 4-byte length
 * before anything is allocated), a malformed response header
 * (PKC_ERR_TRUNCATED / PKC_ERR_VARINT), a CorrelationId that does not match
 * the oldest request in flight or a response with no request in flight
 * (PKC_ERR_INVALID), and a failed allocation for a frame already announced
 * (PKC_ERR_NOMEM) all "break" the connection: the socket is shut down in
 * both directions, in-flight and queued requests are dropped, and every
 * later I/O call returns PKC_ERR_CLOSED.  The descriptor itself is only
 * closed by pkc_conn_close() / pkc_conn_free(), so another thread that
 * read conn->fd under the owner's lock discipline never sees it reused.
 *
 * Errors: every failing call returns a pkc_status and fills conn->errstr
 * with a sentence saying what happened (with host:port where it helps)
 * and conn->err_errno with the errno of a failed system call (0 if none).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "proto_api.h"
#include "tls.h"

/* No deadline: wait forever. */
#define PKC_NO_DEADLINE INT64_MAX

/* Default cap on one response frame (Kafka's socket.request.max.bytes). */
#define PKC_CONN_DEFAULT_MAX_FRAME (100 * 1024 * 1024)
/* Initial size of the receive buffer; it grows to the largest frame seen.
 * (Overridable at build time so the fuzzer reaches the grow paths.) */
#ifndef PKC_CONN_RBUF_INITIAL
#define PKC_CONN_RBUF_INITIAL (64 * 1024)
#endif

/* Inside a long response frame, poll() waits for this many bytes at once
 * (SO_RCVLOWAT), so a big Fetch answer is read in a few large reads rather
 * than one per TCP segment or TLS record; frames shorter than the minimum
 * wake on every arrival, as without it. */
#define PKC_CONN_LOWAT_MIN (64 * 1024)
#define PKC_CONN_LOWAT_MAX (256 * 1024)
/* The most ciphertext of one TLS record that OpenSSL may hold read but not
 * yet decrypted (a 16 KiB record, its header and expansion). */
#define PKC_CONN_TLS_RECORD_HELD (16384 + 2048)

/* Milliseconds on CLOCK_MONOTONIC. */
int64_t pkc_now_ms(void);

/* Microseconds on the same clock (pkc_now_ms() == pkc_now_us() / 1000):
 * for the timers that must be finer than a millisecond (a producer's
 * linger_ms of a few milliseconds). */
int64_t pkc_now_us(void);

/* now + timeout_ms; a negative timeout means PKC_NO_DEADLINE. */
int64_t pkc_deadline_after(int64_t timeout_ms);

typedef enum {
    PKC_CONN_CLOSED = 0,     /* no socket */
    PKC_CONN_CONNECTING = 1, /* pkc_conn_connect returned PKC_ERR_INTR, or
                                pkc_conn_connect_start/_step returned
                                PKC_IN_PROGRESS */
    PKC_CONN_OPEN = 2,
    PKC_CONN_BROKEN = 3      /* fatal error; fd kept until pkc_conn_close */
} pkc_conn_state;

/* One request whose response has not been read yet. */
typedef struct {
    int32_t correlation_id;
    int16_t api_key;
    int16_t api_version;
    int8_t response_header_version; /* 0 or 1 */
    int8_t discard;                 /* read and drop its response */
} pkc_inflight;

/* A response handed to the caller.  `body` points into the connection's
 * receive buffer and stays valid until the next receive, close or free. */
typedef struct {
    int32_t correlation_id;
    int16_t api_key;
    int16_t api_version;
    const uint8_t *body; /* after the response header */
    size_t body_len;
} pkc_response;

typedef struct pkc_conn {
    int fd;
    int state;        /* pkc_conn_state */
    char host[256];   /* as given to pkc_conn_connect (for messages) */
    int port;
    int32_t max_frame;       /* cap on a response frame's length */
    int32_t next_correlation_id;

    /* client_id written in every request header (NULL = null string). */
    char *client_id;
    int16_t client_id_len;

    /* Receive buffer: bytes [rstart, rlen) are received and not yet
     * consumed; the frame last returned occupies [rstart, rstart +
     * rconsume) and is consumed at the start of the next receive. */
    uint8_t *rbuf;
    size_t rcap;
    size_t rlen;
    size_t rstart;
    size_t rconsume;
    size_t rcap_peak; /* largest rcap ever allocated (tests, stats) */
    int rcvlowat;     /* the socket's SO_RCVLOWAT (1: the default) */

    /* Output: queued frames in out.buf[out_sent, out.len); a frame being
     * built starts at build_off (SIZE_MAX when none). */
    pkc_writer out;
    size_t out_sent;
    size_t build_off;
    int32_t build_correlation_id;
    int16_t build_api_key;
    int16_t build_api_version;
    int8_t build_flexible;

    /* In-flight FIFO (ring buffer). */
    pkc_inflight *fifo;
    size_t fifo_cap;
    size_t fifo_head;
    size_t fifo_len;
    size_t fifo_discard; /* entries with discard set */

    /* TLS over the socket (pkc_conn_tls_start), or NULL for plain TCP.
     * The readiness a TLS read / write that could not go on waits for
     * (0 when none is waiting): a read may need POLLOUT and a write
     * POLLIN, so callers poll with pkc_conn_poll_events. */
    pkc_tls *tls;
    int tls_ready;    /* the handshake is complete */
    short read_want;
    short write_want;

    /* Connect in progress (PKC_CONN_CONNECTING). */
    void *ai_list;    /* struct addrinfo * */
    void *ai_next;    /* next address to try */
    void *src_ai;     /* resolved source address, or NULL */
    char connect_addr[64]; /* numeric address being tried */
    int64_t connect_deadline; /* of the whole connect (all addresses) */

    int err_errno;
    char errstr[320];
} pkc_conn;

/*
 * Initialise an unconnected conn.  `client_id` (may be NULL for a null
 * ClientId; copied) is at most 32767 bytes.  `max_frame` <= 0 selects
 * PKC_CONN_DEFAULT_MAX_FRAME.  Returns PKC_OK or PKC_ERR_NOMEM /
 * PKC_ERR_INVALID.  pkc_conn_free() must be called even on failure.
 */
int pkc_conn_init(pkc_conn *conn, const char *client_id, size_t client_id_len,
                  int32_t max_frame);

/* Close the socket (if any) and release every buffer. */
void pkc_conn_free(pkc_conn *conn);

/*
 * Resolve `host` (IPv4/IPv6 literal or name, getaddrinfo with AF_UNSPEC)
 * and connect to `port`, trying every address in turn until `deadline`:
 * non-blocking connect + poll, then TCP_NODELAY.  If `source_host` is
 * non-empty or `source_port` non-zero, each socket is bound to that source
 * address first (addresses of another family are skipped).  Returns PKC_OK
 * (state OPEN), PKC_ERR_IO (refused, unreachable, resolution failure: the
 * last address's error), PKC_ERR_TIMEOUT, or PKC_ERR_INTR (state
 * CONNECTING: call pkc_conn_connect_resume to go on).  Name resolution
 * itself cannot be interrupted or bounded by the deadline.
 */
int pkc_conn_connect(pkc_conn *conn, const char *host, int port,
                     int64_t deadline, const char *source_host,
                     int source_port);

/* Continue a connect that returned PKC_ERR_INTR (or PKC_IN_PROGRESS),
 * blocking until it ends or `deadline` passes. */
int pkc_conn_connect_resume(pkc_conn *conn, int64_t deadline);

/*
 * The non-blocking connect, for a thread that multiplexes many
 * connections.  pkc_conn_connect_start validates and resolves like
 * pkc_conn_connect (name resolution still blocks), records `deadline` in
 * conn->connect_deadline, and starts a non-blocking connect to the first
 * address that accepts one, without waiting.  pkc_conn_connect_step,
 * called when conn->fd is writable (or has an error, or at any time: it
 * never blocks), finishes the connect under way, moves on to the next
 * resolved address when one fails, and reports:
 *   PKC_OK           connected (state OPEN, TCP_NODELAY set);
 *   PKC_IN_PROGRESS  a connect is under way: poll conn->fd for POLLOUT
 *                    (the descriptor changes when an address fails over,
 *                    so read it again after every call) until
 *                    conn->connect_deadline, then step again;
 *   PKC_ERR_TIMEOUT  the deadline passed with a connect still under way;
 *   PKC_ERR_IO       every address failed (errstr: the last one's error);
 *   PKC_ERR_INVALID / PKC_ERR_NOMEM (bad arguments, out of memory).
 * pkc_conn_connect_start returns the same codes.  Every result but PKC_OK
 * and PKC_IN_PROGRESS leaves the conn CLOSED with errstr/err_errno set,
 * except PKC_ERR_INVALID from _step when no connect is in progress (the
 * conn is left as it was).  A connect in progress may also be finished
 * with the blocking pkc_conn_connect_resume, or abandoned with
 * pkc_conn_close.
 */
int pkc_conn_connect_start(pkc_conn *conn, const char *host, int port,
                           int64_t deadline, const char *source_host,
                           int source_port);
int pkc_conn_connect_step(pkc_conn *conn);

/*
 * Use an already connected stream socket (e.g. one end of a socketpair,
 * for tests and fuzzing).  The conn takes ownership of `fd` and makes it
 * non-blocking.  Returns PKC_OK or PKC_ERR_IO.
 */
int pkc_conn_adopt_fd(pkc_conn *conn, int fd, const char *label);

/*
 * TLS on an open connection: pkc_conn_tls_start makes the session (the
 * host given to connect is checked against the broker's certificate when
 * the context says so), pkc_conn_tls_step advances the handshake without
 * blocking: PKC_OK once it is complete and verified; PKC_IN_PROGRESS (poll
 * conn->fd for pkc_conn_poll_events(conn, 1)); or a failure that breaks the
 * connection with the reason in errstr: PKC_ERR_TLS (verification, an
 * alert, a peer that speaks no TLS), PKC_ERR_CLOSED (the broker closed:
 * a plaintext listener drops a ClientHello), PKC_ERR_IO.  From then on
 * every frame goes through TLS.  `ctx` is borrowed (the session holds
 * OpenSSL's own reference).
 */
int pkc_conn_tls_start(pkc_conn *conn, pkc_tls_ctx *ctx);
int pkc_conn_tls_step(pkc_conn *conn);

/*
 * The poll() events the connection needs: POLLIN when `expect_read` (a
 * response or handshake message is awaited) and POLLOUT while frames are
 * unsent, each replaced by what a TLS operation that could not go on
 * waits for.
 */
short pkc_conn_poll_events(const pkc_conn *conn, int expect_read);

/* Close the socket, drop in-flight and queued requests, keep the buffers
 * for reuse; the conn may be connected again.  Safe on a closed conn. */
void pkc_conn_close(pkc_conn *conn);

/* Shut the socket down (the peer sees EOF, a thread blocked in poll on it
 * wakes with PKC_ERR_CLOSED) and mark the conn BROKEN; `why` (NULL: keep
 * the current text) goes to errstr.  In-flight and queued requests are
 * dropped.  The descriptor stays open until pkc_conn_close. */
void pkc_conn_break(pkc_conn *conn, const char *why);

static inline int
pkc_conn_is_open(const pkc_conn *conn)
{
    return conn->state == PKC_CONN_OPEN;
}

/* Requests whose responses the caller still expects (not discarded). */
static inline size_t
pkc_conn_in_flight(const pkc_conn *conn)
{
    return conn->fifo_len - conn->fifo_discard;
}

/* Bytes of queued requests not yet written to the socket. */
static inline size_t
pkc_conn_unsent(const pkc_conn *conn)
{
    return conn->out.len - conn->out_sent;
}

/*
 * Start a request frame in the conn's output buffer (after any frames
 * still queued): the size placeholder and the request header, v1, or v2
 * when `flexible` (v2 adds an empty tagged-field section; ClientId stays
 * an int16-length string).  On PKC_OK `*body` is the writer to append the
 * request body to; nothing else may touch the conn until
 * pkc_conn_request_end or _abort.  The CorrelationId is assigned here.
 */
int pkc_conn_request_begin(pkc_conn *conn, int16_t api_key,
                           int16_t api_version, int flexible,
                           pkc_writer **body);

/*
 * Finish the frame started by pkc_conn_request_begin: patch its size and,
 * if `expect_response` (0 only for Produce with Acks=0), register it in
 * the in-flight FIFO with the response header version implied by
 * `flexible` (ApiVersions: always v0).  The frame is queued, not sent:
 * call pkc_conn_flush.  `*correlation_id` may be NULL.  On a writer error
 * (over the cap, out of memory) the frame is dropped and the status
 * returned; the connection stays usable.
 */
int pkc_conn_request_end(pkc_conn *conn, int expect_response,
                         int32_t *correlation_id);

/* Drop the frame being built. */
void pkc_conn_request_abort(pkc_conn *conn);

/*
 * Write queued frames until all are sent or `deadline` passes.  Returns
 * PKC_OK, PKC_ERR_TIMEOUT / PKC_ERR_INTR (progress kept), or a fatal
 * status (connection broken).
 */
int pkc_conn_flush(pkc_conn *conn, int64_t deadline);

/*
 * begin + copy `body` + end + flush, for callers that have the body in
 * one piece.  On PKC_ERR_TIMEOUT / PKC_ERR_INTR the request is queued and
 * registered (its id is in *correlation_id): a later flush, send or
 * receive finishes writing it.
 */
int pkc_conn_send_request(pkc_conn *conn, int16_t api_key,
                          int16_t api_version, int flexible,
                          int expect_response, const void *body,
                          size_t body_len, int64_t deadline,
                          int32_t *correlation_id);

/*
 * Mark the in-flight request `correlation_id` so that its response is read
 * and dropped by pkc_conn_recv_response (used when the caller gave up on
 * it, e.g. after an interrupted call).  Returns PKC_OK or PKC_ERR_INVALID
 * if no such request is in flight.
 */
int pkc_conn_discard(pkc_conn *conn, int32_t correlation_id);

/*
 * Receive the response to the oldest request in flight (after flushing
 * queued frames, and skipping responses marked by pkc_conn_discard).
 * Reads one size-prefixed frame, checks its CorrelationId, strips the
 * response header and fills `*resp` with a view of the body.  Returns
 * PKC_OK, PKC_ERR_TIMEOUT / PKC_ERR_INTR (progress kept), a fatal status
 * (see the top of this file), or PKC_ERR_INVALID without breaking the
 * connection when no request is in flight (nothing is read).
 */
int pkc_conn_recv_response(pkc_conn *conn, int64_t deadline,
                           pkc_response *resp);

/* --------------------------------------------------- memory-fed parsing */

/*
 * Validate a frame's 4-byte length before anything is allocated: a
 * response is at least 4 bytes (its CorrelationId) and at most
 * `max_frame`.  Returns PKC_OK, PKC_ERR_INVALID (negative or < 4) or
 * PKC_ERR_TOO_LARGE; on error writes a sentence to errbuf (may be NULL).
 * Lengths that look like a TLS record header are named as such.
 */
int pkc_frame_check_length(const uint8_t hdr[4], int32_t max_frame,
                           int32_t *length, char *errbuf, size_t errlen);

/*
 * Parse a response header (v0: CorrelationId; v1: plus tagged fields)
 * from the start of a frame body with `r`, leaving r at the response body.
 * Returns PKC_OK or the reader's status.
 */
int pkc_response_header_read(pkc_reader *r, int header_version,
                             int32_t *correlation_id);

/* Response header version of (api_key, flexible): 1 if flexible, except
 * ApiVersions (always 0). */
static inline int
pkc_response_header_version(int16_t api_key, int flexible)
{
    return (flexible && api_key != PKC_API_API_VERSIONS) ? 1 : 0;
}
