/*
 * fuzz_frame.c - libFuzzer target for the response side of net.c: frame
 * length checks, the reused receive buffer with read-ahead, response
 * header v0/v1 parsing, the in-flight FIFO (CorrelationId matching,
 * discarded entries) and EOF inside a frame.
 *
 * Input layout:
 *   byte 0      number of requests in flight, 1 + (b & 7)
 *   byte 1      bit i: request i is flexible (response header v1)
 *   byte 2      bit i: request i is ApiVersions (header v0 regardless)
 *   byte 3      bit i: request i is discarded before receiving
 *   byte 4..5   max frame size (big-endian uint16, at least 4)
 *   rest        the bytes "the broker" sends, then EOF
 * The stream is fed through a socketpair, so the real recv()/poll() path
 * runs; the input is also passed through the memory-fed helpers.
 *
 * Build and run (60 s, ASan + UBSan); the small initial receive buffer
 * makes frames of the fuzzed sizes exercise compaction and growth:
 *   clang -g -O1 -std=c11 -D_GNU_SOURCE -DPKC_CONN_RBUF_INITIAL=32 \
 *       -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
 *       -Icsrc/wire csrc/fuzz/fuzz_frame.c csrc/wire/net.c csrc/wire/buf.c \
 *       -o /tmp/fuzz_frame
 *   /tmp/fuzz_frame -max_total_time=60 -max_len=4096 \
 *       csrc/fuzz/corpus/frame
 */
#include "buf.h"
#include "net.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void
fuzz_memory_paths(const uint8_t *data, size_t size)
{
    char err[160];
    int32_t len, corr;
    pkc_reader r;

    if (size < 4)
        return;
    pkc_frame_check_length(data, 1 << 16, &len, err, sizeof(err));
    pkc_frame_check_length(data, INT32_MAX, &len, NULL, 0);
    for (int v = 0; v <= 1; v++) {
        pkc_reader_init(&r, data + 4, size - 4);
        pkc_response_header_read(&r, v, &corr);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int sv[2] = {-1, -1};
    int32_t ids[8];
    pkc_conn conn;
    pkc_response resp;
    unsigned n, flex, apiv, disc, max_frame;
    const uint8_t *stream;
    size_t stream_len, off = 0;
    int rc;

    fuzz_memory_paths(data, size);
    if (size < 6)
        return 0;
    n = 1 + (data[0] & 7);
    flex = data[1];
    apiv = data[2];
    disc = data[3];
    max_frame = ((unsigned)data[4] << 8) | data[5];
    if (max_frame < 4)
        max_frame = 4;
    stream = data + 6;
    stream_len = size - 6;

    if (pkc_conn_init(&conn, "fuzz", 4, (int32_t)max_frame) != PKC_OK)
        abort();
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) != 0)
        abort();
    if (pkc_conn_adopt_fd(&conn, sv[0], "fuzz") != PKC_OK)
        abort();
    for (unsigned i = 0; i < n; i++) {
        int16_t key = (apiv >> i) & 1 ? PKC_API_API_VERSIONS
                                      : PKC_API_METADATA;
        rc = pkc_conn_send_request(&conn, key, 3, (flex >> i) & 1, 1, "x", 1,
                                   PKC_NO_DEADLINE, &ids[i]);
        if (rc != PKC_OK)
            abort();
    }
    for (unsigned i = 0; i < n; i++)
        if ((disc >> i) & 1)
            pkc_conn_discard(&conn, ids[i]);
    /* The "broker" side: write what fits the socket buffer (all of it
     * for the -max_len used), then EOF. */
    while (off < stream_len) {
        ssize_t w = write(sv[1], stream + off, stream_len - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    shutdown(sv[1], SHUT_WR);

    for (;;) {
        if (pkc_conn_in_flight(&conn) == 0)
            break;
        rc = pkc_conn_recv_response(&conn, 0, &resp);
        if (rc != PKC_OK)
            break;
        /* The view must lie inside the receive buffer. */
        if (resp.body < conn.rbuf ||
            resp.body + resp.body_len > conn.rbuf + conn.rlen)
            abort();
        if (resp.body_len) {
            volatile uint8_t sink;
            sink = resp.body[0] ^ resp.body[resp.body_len - 1];
            (void)sink;
        }
    }
    /* Bounded memory: never more than the frame cap (+ its length). */
    if (conn.rcap_peak > (size_t)PKC_CONN_RBUF_INITIAL &&
        conn.rcap_peak > (size_t)max_frame + 4)
        abort();
    pkc_conn_free(&conn);
    close(sv[1]);
    return 0;
}
