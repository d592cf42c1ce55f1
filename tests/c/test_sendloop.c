/*
 * test_sendloop.c - plain-C tests of the producer's send engine
 * (csrc/wire/sendloop.c), with a small fake broker thread on loopback that
 * speaks ApiVersions v0 and Produce v3 (hand-encoded with pkc_writer, read
 * with pkc_reader).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "pkc_test.h"
#include "compress.h"
#include "records.h"
#include "kafka_errors.h"
#include "sendloop.h"

/* ------------------------------------------------------------ fake broker */

typedef struct {
    int listen_fd;
    int port;
    int error_code;         /* answer every partition with this */
    int fail_first;         /* answer the first N Produce with error 6 */
    int delay_ms;           /* wait this long before answering a Produce */
    int64_t pids_seen;      /* producer id of the last batch */
    int32_t next_seq[4];    /* expected base sequence per partition */
    int seq_errors;         /* batches whose base sequence was not it */
    int produce_requests;
    int records_seen;
    int64_t next_offset[4];
    char txn_id[32];        /* TransactionalId of the last Produce */
    int txn_batches;        /* batches with the transactional bit */
    pthread_t thread;
} fake;

static int
read_full(int fd, uint8_t *buf, size_t n)
{
    while (n > 0) {
        ssize_t r = read(fd, buf, n);
        if (r <= 0)
            return -1;
        buf += r;
        n -= (size_t)r;
    }
    return 0;
}

static int
send_frame(int fd, int32_t corr, const pkc_writer *body)
{
    uint8_t hdr[8];
    size_t off = 0;

    pkc_store_u32(hdr, (uint32_t)(body->len + 4));
    pkc_store_u32(hdr + 4, (uint32_t)corr);
    if (write(fd, hdr, 8) != 8)
        return -1;
    while (off < body->len) {
        ssize_t w = write(fd, body->buf + off, body->len - off);
        if (w <= 0)
            return -1;
        off += (size_t)w;
    }
    return 0;
}

/* ApiVersions: v0 lists Produce 3..3 and ApiVersions 0..0; any newer
 * version is refused the way a broker before Kafka 2.4 refuses it
 * (UNSUPPORTED_VERSION and an empty list, in the v0 layout), so the
 * client's link asks again with v0. */
static void
answer_api_versions(int fd, int32_t corr, int16_t version)
{
    pkc_writer w;

    pkc_writer_init(&w, 64, 0);
    if (version > 0) {
        pkc_write_i16(&w, PKC_KERR_UNSUPPORTED_VERSION); /* ErrorCode */
        pkc_write_i32(&w, 0);                            /* ApiKeys */
        send_frame(fd, corr, &w);
        pkc_writer_free(&w);
        return;
    }
    pkc_write_i16(&w, 0);      /* ErrorCode */
    pkc_write_i32(&w, 2);      /* ApiKeys */
    pkc_write_i16(&w, 0);      /* Produce 3..3 */
    pkc_write_i16(&w, 3);
    pkc_write_i16(&w, 3);
    pkc_write_i16(&w, 18);     /* ApiVersions 0..0 */
    pkc_write_i16(&w, 0);
    pkc_write_i16(&w, 0);
    send_frame(fd, corr, &w);
    pkc_writer_free(&w);
}

/* Parse a Produce v3 body and answer it. */
static void
answer_produce(fake *f, int fd, int32_t corr, pkc_reader *r)
{
    pkc_slice s;
    int16_t acks;
    int32_t timeout, ntopics, nparts, index;
    int32_t idx[8];
    int counts[8];
    pkc_writer w;

    f->produce_requests++;
    pkc_read_string(r, 0, 1, &s, "transactional_id");
    f->txn_id[0] = '\0';
    if (s.len > 0 && s.len < (int32_t)sizeof(f->txn_id)) {
        memcpy(f->txn_id, s.ptr, (size_t)s.len);
        f->txn_id[s.len] = '\0';
    }
    pkc_read_i16(r, &acks, "acks");
    pkc_read_i32(r, &timeout, "timeout");
    pkc_read_array_count(r, 0, 0, 1, 4, &ntopics, "topics");
    CHECK_EQ(ntopics, 1);
    pkc_read_string(r, 0, 0, &s, "name");
    CHECK(s.len == 1 && s.ptr[0] == 't');
    pkc_read_array_count(r, 0, 0, 1, 8, &nparts, "partitions");
    for (int32_t i = 0; i < nparts && r->status == PKC_OK; i++) {
        pkc_records_iter it;
        pkc_record rec;

        pkc_read_i32(r, &index, "index");
        pkc_read_bytes(r, 0, 1, &s, "records");
        idx[i] = index;
        counts[i] = 0;
        if (s.len >= 61) {
            int64_t pid = (int64_t)pkc_load_u64(s.ptr + 43);
            int32_t seq = (int32_t)pkc_load_u32(s.ptr + 53);
            int32_t n = (int32_t)pkc_load_u32(s.ptr + 57);

            f->pids_seen = pid;
            if (pkc_load_u16(s.ptr + 21) & PKC_ATTR_TRANSACTIONAL)
                f->txn_batches++;
            if (pid >= 0) {
                if (seq != f->next_seq[index & 3])
                    f->seq_errors++;
                else
                    f->next_seq[index & 3] = seq + n;
            }
        }
        pkc_records_iter_init(&it, s.ptr, (size_t)s.len, NULL);
        while (pkc_records_next(&it, &rec) == 1)
            counts[i]++;
        pkc_records_iter_free(&it);
        f->records_seen += counts[i];
    }
    CHECK_EQ(r->status, PKC_OK);
    if (f->delay_ms > 0) {
        struct timespec ts = {0, (long)f->delay_ms * 1000000L};

        nanosleep(&ts, NULL);
    }

    pkc_writer_init(&w, 128, 0);
    pkc_write_i32(&w, 1);                               /* Responses */
    pkc_write_string(&w, 0, "t", 1);
    pkc_write_i32(&w, nparts);
    for (int32_t i = 0; i < nparts; i++) {
        int err = f->error_code;

        if (f->fail_first > 0)
            err = 6;
        pkc_write_i32(&w, idx[i]);
        pkc_write_i16(&w, (int16_t)err);
        pkc_write_i64(&w, err ? -1 : f->next_offset[idx[i] & 3]);
        pkc_write_i64(&w, -1);                          /* LogAppendTime */
        if (!err)
            f->next_offset[idx[i] & 3] += counts[i];
    }
    pkc_write_i32(&w, 0);                               /* ThrottleTimeMs */
    if (f->fail_first > 0)
        f->fail_first--;
    if (acks != 0)
        send_frame(fd, corr, &w);
    pkc_writer_free(&w);
}

static void *
fake_main(void *arg)
{
    fake *f = arg;

    for (;;) {
        int fd = accept(f->listen_fd, NULL, NULL);

        if (fd < 0)
            return NULL;
        for (;;) {
            uint8_t hdr[4];
            uint8_t *frame;
            int32_t len, corr;
            int16_t api_key, version, cid_len;
            pkc_reader r;

            if (read_full(fd, hdr, 4) < 0)
                break;
            len = (int32_t)pkc_load_u32(hdr);
            if (len < 10 || len > (64 << 20))
                break;
            frame = malloc((size_t)len);
            if (frame == NULL || read_full(fd, frame, (size_t)len) < 0) {
                free(frame);
                break;
            }
            pkc_reader_init(&r, frame, (size_t)len);
            pkc_read_i16(&r, &api_key, "api_key");
            pkc_read_i16(&r, &version, "version");
            pkc_read_i32(&r, &corr, "corr");
            pkc_read_i16(&r, &cid_len, "client_id");
            if (cid_len > 0)
                pkc_read_skip(&r, (size_t)cid_len, "client_id");
            if (api_key == PKC_API_API_VERSIONS)
                answer_api_versions(fd, corr, version);
            else if (api_key == 0 && version == 3)
                answer_produce(f, fd, corr, &r);
            free(frame);
        }
        close(fd);
    }
}

static void
fake_start(fake *f)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof(a);
    int one = 1;

    memset(f, 0, sizeof(*f));
    f->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(f->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(f->listen_fd, (struct sockaddr *)&a, sizeof(a));
    listen(f->listen_fd, 4);
    getsockname(f->listen_fd, (struct sockaddr *)&a, &alen);
    f->port = ntohs(a.sin_port);
    pthread_create(&f->thread, NULL, fake_main, f);
}

static void
fake_stop(fake *f)
{
    shutdown(f->listen_fd, SHUT_RDWR);
    close(f->listen_fd);
    pthread_join(f->thread, NULL);
}

/* ---------------------------------------------------------------- helpers */

static pkc_sl_config
base_config(void)
{
    pkc_sl_config c;

    memset(&c, 0, sizeof(c));
    c.topic = "t";
    c.codec = 0;
    c.level = -1;
    c.acks = 1;
    c.ack_timeout_ms = 1000;
    c.max_retries = 3;
    c.retry_backoff_ms = 10;
    c.max_queued = 100000;
    c.min_queued = 1;
    c.linger_ms = 0;
    c.max_request_size = 1000000;
    c.keep_cookies = 1;
    c.connect_timeout_ms = 2000;
    c.request_timeout_ms = 5000;
    c.leader_wait_ms = 5000;
    c.max_in_flight = 2;
    return c;
}

/* Wait until `n` records are done (or 10 s); returns the done batches. */
static pkc_sl_batch *
collect(pkc_sl *sl, int n, int *got)
{
    pkc_sl_batch *all = NULL, **tail = &all;
    int64_t deadline = pkc_now_ms() + 10000;

    *got = 0;
    while (*got < n && pkc_now_ms() < deadline) {
        pkc_sl_batch *b;

        pkc_sl_wait_event(sl, pkc_now_ms() + 100);
        b = pkc_sl_take_done(sl);
        *tail = b;
        while (b != NULL) {
            *got += b->count;
            tail = &b->next;
            b = b->next;
        }
    }
    return all;
}

static void
release_all(pkc_sl *sl, pkc_sl_batch *b)
{
    while (b != NULL) {
        pkc_sl_batch *next = b->next;
        pkc_sl_batch_release(sl, b);
        b = next;
    }
}

/* ------------------------------------------------------------------ tests */

static void
test_bad_config(void)
{
    pkc_sl_config c = base_config();
    pkc_sl *sl = NULL;
    char err[128];

    c.topic = "";
    CHECK_EQ(pkc_sl_new(&sl, &c, err, sizeof(err)), PKC_ERR_INVALID);
    CHECK(sl == NULL);
    c = base_config();
    c.min_queued = 0;
    CHECK_EQ(pkc_sl_new(&sl, &c, err, sizeof(err)), PKC_ERR_INVALID);
    c = base_config();
    c.codec = 99;
    CHECK_EQ(pkc_sl_new(&sl, &c, err, sizeof(err)), PKC_ERR_CODEC);
    c = base_config();
    c.transactional_id = "txn-1";   /* needs idempotence */
    CHECK_EQ(pkc_sl_new(&sl, &c, err, sizeof(err)), PKC_ERR_INVALID);
}

static void
test_stop_fails_everything_once(void)
{
    pkc_sl_config c = base_config();
    pkc_sl *sl = NULL;
    pkc_sl_batch *done;
    pkc_sl_stats st;
    int32_t part = 0, leader = -1;
    char err[128];
    int got = 0, seen[10] = {0};

    CHECK_EQ(pkc_sl_new(&sl, &c, err, sizeof(err)), PKC_OK);
    CHECK_EQ(pkc_sl_set_leaders(sl, &part, &leader, 1), PKC_OK);
    /* Not started: nothing is accepted. */
    CHECK_EQ(pkc_sl_append(sl, 0, 1, NULL, -1, (const uint8_t *)"x", 1, NULL,
                           0, NULL), PKC_SL_APPEND_STOPPED);
    CHECK_EQ(pkc_sl_start(sl), PKC_OK);
    for (intptr_t i = 0; i < 10; i++) {
        pkc_sl_cookie ck = {(void *)(i + 1), NULL};
        CHECK_EQ(pkc_sl_append(sl, 0, 1000 + i, NULL, -1,
                               (const uint8_t *)"v", 1, NULL, 0, &ck),
                 PKC_SL_APPEND_OK);
    }
    CHECK_EQ(pkc_sl_append(sl, 7, 1, NULL, -1, NULL, -1, NULL, 0, NULL),
             PKC_SL_APPEND_NOPART);
    CHECK_EQ(pkc_sl_stop(sl, pkc_now_ms() + 50), 10);
    CHECK_EQ(pkc_sl_append(sl, 0, 1, NULL, -1, NULL, -1, NULL, 0, NULL),
             PKC_SL_APPEND_STOPPED);
    done = pkc_sl_take_done(sl);
    for (pkc_sl_batch *b = done; b != NULL; b = b->next) {
        CHECK_EQ(b->result.kind, PKC_SL_STOPPED);
        for (int32_t i = 0; i < b->count; i++) {
            intptr_t v = (intptr_t)b->cookies[i].msg;
            CHECK(v >= 1 && v <= 10);
            if (v >= 1 && v <= 10)
                seen[v - 1]++;
            got++;
        }
    }
    CHECK_EQ(got, 10);
    for (int i = 0; i < 10; i++)
        CHECK_EQ(seen[i], 1);
    pkc_sl_stats_get(sl, &st);
    CHECK_EQ(st.appended, 10);
    CHECK_EQ(st.completed, 10);
    CHECK_EQ(st.failed, 10);
    CHECK_EQ(st.pending, 0);
    CHECK_EQ(st.unsent, 0);
    release_all(sl, done);
    pkc_sl_stop(sl, 0); /* twice is fine */
    pkc_sl_free(sl);
}

static void
test_too_large_and_queue_full(void)
{
    pkc_sl_config c = base_config();
    pkc_sl *sl = NULL;
    pkc_sl_batch *done;
    int32_t part = 0, leader = -1;
    static uint8_t big[5000];
    char err[128];
    int got;

    c.max_request_size = 1000;
    c.max_queued = 3;
    CHECK_EQ(pkc_sl_new(&sl, &c, err, sizeof(err)), PKC_OK);
    pkc_sl_set_leaders(sl, &part, &leader, 1);
    pkc_sl_start(sl);
    {
        pkc_sl_cookie ck = {(void *)1, NULL};
        CHECK_EQ(pkc_sl_append(sl, 0, 1, NULL, -1, big, sizeof(big), NULL,
                               0, &ck), PKC_SL_APPEND_OK);
    }
    done = collect(sl, 1, &got);
    CHECK_EQ(got, 1);
    CHECK(done != NULL && done->result.kind == PKC_SL_TOO_LARGE &&
          done->result.error_code == 10 && done->cookies[0].msg == (void *)1);
    release_all(sl, done);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(pkc_sl_append(sl, 0, 1, NULL, -1, big, 10, NULL, 0, NULL),
                 PKC_SL_APPEND_OK);
    CHECK_EQ(pkc_sl_append(sl, 0, 1, NULL, -1, big, 10, NULL, 0, NULL),
             PKC_SL_APPEND_FULL);
    CHECK_EQ(pkc_sl_wait_space(sl, pkc_now_ms() + 20), 0);
    CHECK_EQ(pkc_sl_stop(sl, 0), 3);
    release_all(sl, pkc_sl_take_done(sl));
    pkc_sl_free(sl);
}

static void
test_no_leader_expires(void)
{
    pkc_sl_config c = base_config();
    pkc_sl *sl = NULL;
    pkc_sl_batch *done;
    int32_t part = 0, leader = -1;
    char err[128];
    int got;
    int64_t t0;

    c.leader_wait_ms = 150;
    CHECK_EQ(pkc_sl_new(&sl, &c, err, sizeof(err)), PKC_OK);
    pkc_sl_set_leaders(sl, &part, &leader, 1);
    pkc_sl_start(sl);
    t0 = pkc_now_ms();
    for (int i = 0; i < 5; i++) {
        pkc_sl_cookie ck = {(void *)(intptr_t)(i + 1), NULL};
        pkc_sl_append(sl, 0, 1, NULL, -1, (const uint8_t *)"a", 1, NULL, 0,
                      &ck);
    }
    /* The glue is asked for metadata while the partition is leaderless. */
    CHECK(pkc_sl_wait_event(sl, pkc_now_ms() + 2000) & PKC_SL_EV_METADATA);
    done = collect(sl, 5, &got);
    CHECK_EQ(got, 5);
    CHECK(pkc_now_ms() - t0 >= 140);
    for (pkc_sl_batch *b = done; b != NULL; b = b->next)
        CHECK_EQ(b->result.kind, PKC_SL_NO_LEADER);
    release_all(sl, done);
    CHECK_EQ(pkc_sl_stop(sl, 0), 0);
    pkc_sl_free(sl);
}

static void
run_roundtrip(int acks, int fail_first, int codec)
{
    fake f;
    pkc_sl_config c = base_config();
    pkc_sl *sl = NULL;
    pkc_sl_batch *done;
    pkc_sl_broker_addr addr;
    int32_t parts[2] = {0, 1}, leaders[2] = {5, 5};
    pkc_header h = {{(const uint8_t *)"hk", 2}, {(const uint8_t *)"hv", 2}};
    char err[128];
    int got, seen[100] = {0};
    pkc_sl_stats st;

    fake_start(&f);
    f.fail_first = fail_first;
    c.acks = (int16_t)acks;
    c.codec = codec;
    c.linger_ms = 20;
    c.min_queued = 1000;
    CHECK_EQ(pkc_sl_new(&sl, &c, err, sizeof(err)), PKC_OK);
    addr.node_id = 5;
    addr.host = "127.0.0.1";
    addr.port = f.port;
    CHECK_EQ(pkc_sl_set_brokers(sl, &addr, 1), PKC_OK);
    CHECK_EQ(pkc_sl_set_leaders(sl, parts, leaders, 2), PKC_OK);
    CHECK_EQ(pkc_sl_start(sl), PKC_OK);
    for (intptr_t i = 0; i < 100; i++) {
        char v[16];
        pkc_sl_cookie ck = {(void *)(i + 1), NULL};
        int n = snprintf(v, sizeof(v), "value-%d", (int)i);

        CHECK_EQ(pkc_sl_append(sl, (int32_t)(i % 2), 1000 + i,
                               (const uint8_t *)"k", 1, (const uint8_t *)v,
                               n, &h, 1, &ck), PKC_SL_APPEND_OK);
    }
    CHECK_EQ(pkc_sl_flush(sl, pkc_now_ms() + 10000), 0);
    done = collect(sl, 100, &got);
    CHECK_EQ(got, 100);
    for (pkc_sl_batch *b = done; b != NULL; b = b->next) {
        CHECK_EQ(b->result.kind, PKC_SL_OK);
        if (acks == 0)
            CHECK_EQ(b->base_offset, -1);
        else
            CHECK(b->base_offset >= 0 && b->base_offset < 50);
        for (int32_t i = 0; i < b->count; i++) {
            intptr_t v = (intptr_t)b->cookies[i].msg;
            if (v >= 1 && v <= 100) {
                seen[v - 1]++;
                /* Partition i % 2, in order: offset = index / 2. */
                CHECK_EQ((v - 1) % 2, b->partition);
                if (acks != 0)
                    CHECK_EQ(b->base_offset + i, (v - 1) / 2);
            }
        }
    }
    for (int i = 0; i < 100; i++)
        CHECK_EQ(seen[i], 1);
    pkc_sl_stats_get(sl, &st);
    CHECK_EQ(st.retries > 0, fail_first > 0);
    CHECK_EQ(st.failed, 0);
    CHECK_EQ(pkc_sl_produce_version(sl, 5), 3);
    release_all(sl, done);
    CHECK_EQ(pkc_sl_stop(sl, pkc_now_ms() + 1000), 0);
    pkc_sl_free(sl);
    fake_stop(&f);
    if (fail_first)
        CHECK(f.records_seen > 100); /* the refused batches came again */
    else
        CHECK_EQ(f.records_seen, 100);
}

static void
test_roundtrip_acks1(void)
{
    run_roundtrip(1, 0, 0);
}

static void
test_roundtrip_acks0(void)
{
    run_roundtrip(0, 0, 0);
}

static void
test_roundtrip_retry_not_leader(void)
{
    run_roundtrip(1, 2, 0);
}

static void
test_roundtrip_gzip(void)
{
    run_roundtrip(1, 0, 1);
}

static void
test_non_retriable_error(void)
{
    fake f;
    pkc_sl_config c = base_config();
    pkc_sl *sl = NULL;
    pkc_sl_batch *done;
    pkc_sl_broker_addr addr;
    int32_t part = 0, leader = 1;
    char err[128];
    int got;

    fake_start(&f);
    f.error_code = 87; /* INVALID_RECORD */
    CHECK_EQ(pkc_sl_new(&sl, &c, err, sizeof(err)), PKC_OK);
    addr.node_id = 1;
    addr.host = "127.0.0.1";
    addr.port = f.port;
    pkc_sl_set_brokers(sl, &addr, 1);
    pkc_sl_set_leaders(sl, &part, &leader, 1);
    pkc_sl_start(sl);
    pkc_sl_append(sl, 0, 1, NULL, -1, (const uint8_t *)"x", 1, NULL, 0,
                  &(pkc_sl_cookie){(void *)1, NULL});
    done = collect(sl, 1, &got);
    CHECK_EQ(got, 1);
    CHECK(done != NULL && done->result.kind == PKC_SL_KAFKA &&
          done->result.error_code == 87 && done->attempts == 1);
    release_all(sl, done);
    pkc_sl_stop(sl, 0);
    pkc_sl_free(sl);
    fake_stop(&f);
    CHECK_EQ(f.produce_requests, 1);
}

static void
test_broker_down_bounded(void)
{
    pkc_sl_config c = base_config();
    pkc_sl *sl = NULL;
    pkc_sl_batch *done;
    pkc_sl_broker_addr addr;
    int32_t part = 0, leader = 1;
    char err[128];
    int got, fd, one = 1;
    struct sockaddr_in a;
    socklen_t alen = sizeof(a);
    int64_t t0;

    /* A port with nothing listening: bind, read the port, close. */
    fd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, (struct sockaddr *)&a, sizeof(a));
    getsockname(fd, (struct sockaddr *)&a, &alen);
    close(fd);

    c.max_retries = 2;
    c.retry_backoff_ms = 20;
    CHECK_EQ(pkc_sl_new(&sl, &c, err, sizeof(err)), PKC_OK);
    addr.node_id = 1;
    addr.host = "127.0.0.1";
    addr.port = ntohs(a.sin_port);
    pkc_sl_set_brokers(sl, &addr, 1);
    pkc_sl_set_leaders(sl, &part, &leader, 1);
    pkc_sl_start(sl);
    t0 = pkc_now_ms();
    for (intptr_t i = 0; i < 20; i++)
        pkc_sl_append(sl, 0, 1, NULL, -1, (const uint8_t *)"x", 1, NULL, 0,
                      &(pkc_sl_cookie){(void *)(i + 1), NULL});
    done = collect(sl, 20, &got);
    CHECK_EQ(got, 20);
    CHECK(pkc_now_ms() - t0 < 5000);
    for (pkc_sl_batch *b = done; b != NULL; b = b->next) {
        CHECK_EQ(b->result.kind, PKC_SL_DISCONNECTED);
        CHECK_EQ(b->attempts, 3);
    }
    release_all(sl, done);
    pkc_sl_stop(sl, 0);
    pkc_sl_free(sl);
}

/*
 * Batches that wait behind the one in flight are finished (compressed)
 * while they wait, and still go out in order: one partition, small full
 * batches, a slow broker, optionally refused first attempts.
 */
static void
run_finish_ahead(int codec, int fail_first)
{
    fake f;
    pkc_sl_config c = base_config();
    pkc_sl *sl = NULL;
    pkc_sl_batch *done;
    pkc_sl_broker_addr addr;
    int32_t part = 0, leader = 3;
    char err[128];
    int got, seen[300] = {0};
    int64_t next_offset = 0;
    pkc_sl_stats st;

    fake_start(&f);
    f.delay_ms = 20;
    f.fail_first = fail_first;
    c.codec = codec;
    c.max_request_size = 1500;  /* about ten records per batch */
    c.linger_ms = 60000;        /* only full batches close on their own */
    c.min_queued = 100000;
    CHECK_EQ(pkc_sl_new(&sl, &c, err, sizeof(err)), PKC_OK);
    addr.node_id = 3;
    addr.host = "127.0.0.1";
    addr.port = f.port;
    CHECK_EQ(pkc_sl_set_brokers(sl, &addr, 1), PKC_OK);
    CHECK_EQ(pkc_sl_set_leaders(sl, &part, &leader, 1), PKC_OK);
    CHECK_EQ(pkc_sl_start(sl), PKC_OK);
    for (intptr_t i = 0; i < 300; i++) {
        char v[100];
        pkc_sl_cookie ck = {(void *)(i + 1), NULL};

        memset(v, 'a' + (int)(i % 26), sizeof(v));
        CHECK_EQ(pkc_sl_append(sl, 0, 1000 + i, NULL, -1,
                               (const uint8_t *)v, (int32_t)sizeof(v), NULL,
                               0, &ck), PKC_SL_APPEND_OK);
    }
    CHECK_EQ(pkc_sl_flush(sl, pkc_now_ms() + 20000), 0);
    done = collect(sl, 300, &got);
    CHECK_EQ(got, 300);
    /* Done in partition order, offsets consecutive, each record once. */
    for (pkc_sl_batch *b = done; b != NULL; b = b->next) {
        CHECK_EQ(b->result.kind, PKC_SL_OK);
        CHECK_EQ(b->base_offset, next_offset);
        for (int32_t i = 0; i < b->count; i++) {
            intptr_t v = (intptr_t)b->cookies[i].msg;

            CHECK_EQ(v, next_offset + i + 1);
            if (v >= 1 && v <= 300)
                seen[v - 1]++;
        }
        next_offset += b->count;
    }
    for (int i = 0; i < 300; i++)
        CHECK_EQ(seen[i], 1);
    pkc_sl_stats_get(sl, &st);
    CHECK(st.finished_ahead > 0);
    CHECK(st.batches_sent > 10);
    CHECK_EQ(st.failed, 0);
    CHECK_EQ(st.retries > 0, fail_first > 0);
    release_all(sl, done);
    CHECK_EQ(pkc_sl_stop(sl, pkc_now_ms() + 1000), 0);
    pkc_sl_free(sl);
    fake_stop(&f);
    if (fail_first)
        CHECK(f.records_seen > 300); /* the refused batches came again */
    else
        CHECK_EQ(f.records_seen, 300);
}

/* Idempotent: sequences from 0 per partition, contiguous, several
 * batches of a partition in flight, order kept. */
static void
test_idempotent_in_flight(void)
{
    fake f;
    pkc_sl_config c = base_config();
    pkc_sl *sl = NULL;
    pkc_sl_batch *done;
    pkc_sl_broker_addr addr;
    int32_t parts[2] = {0, 1}, leaders[2] = {3, 3};
    char err[128];
    int got;
    int64_t next_offset[2] = {0, 0}, started_us;
    pkc_sl_stats st;

    fake_start(&f);
    f.delay_ms = 5;
    c.max_request_size = 1500;
    c.linger_ms = 60000;
    c.min_queued = 100000;
    c.max_in_flight = 5;
    c.idempotent = 1;
    CHECK_EQ(pkc_sl_new(&sl, &c, err, sizeof(err)), PKC_OK);
    /* The engine asks for a producer id at once. */
    CHECK(pkc_sl_wait_event(sl, pkc_now_ms() + 100) & PKC_SL_EV_PRODUCER_ID);
    CHECK_EQ(pkc_sl_set_producer_id(sl, 77, 2), PKC_OK);
    addr.node_id = 3;
    addr.host = "127.0.0.1";
    addr.port = f.port;
    CHECK_EQ(pkc_sl_set_brokers(sl, &addr, 1), PKC_OK);
    CHECK_EQ(pkc_sl_set_leaders(sl, parts, leaders, 2), PKC_OK);
    started_us = pkc_now_us();
    CHECK_EQ(pkc_sl_start(sl), PKC_OK);
    for (intptr_t i = 0; i < 400; i++) {
        char v[100];
        pkc_sl_cookie ck = {(void *)(i + 1), NULL};

        memset(v, 'a' + (int)(i % 26), sizeof(v));
        CHECK_EQ(pkc_sl_append(sl, (int32_t)(i % 2), 1000 + i, NULL, -1,
                               (const uint8_t *)v, (int32_t)sizeof(v), NULL,
                               0, &ck), PKC_SL_APPEND_OK);
    }
    CHECK_EQ(pkc_sl_flush(sl, pkc_now_ms() + 20000), 0);
    done = collect(sl, 400, &got);
    CHECK_EQ(got, 400);
    for (pkc_sl_batch *b = done; b != NULL; b = b->next) {
        CHECK_EQ(b->result.kind, PKC_SL_OK);
        CHECK_EQ(b->base_offset, next_offset[b->partition & 1]);
        for (int32_t i = 0; i < b->count; i++) {
            intptr_t v = (intptr_t)b->cookies[i].msg;

            /* Partition i % 2, in order: offset = index / 2. */
            CHECK_EQ((v - 1) % 2, b->partition);
            CHECK_EQ((v - 1) / 2, b->base_offset + i);
        }
        next_offset[b->partition & 1] += b->count;
    }
    pkc_sl_stats_get(sl, &st);
    CHECK_EQ(st.producer_id, 77);
    CHECK(st.max_partition_in_flight > 1);
    CHECK(st.max_partition_in_flight <= PKC_SL_IDEMPOTENT_MAX_IN_FLIGHT);
    /* The broker held each request 5 ms, several at once: it had one of
     * ours for at least that long, the next one waiting some of it, and
     * never longer than the run. */
    CHECK(st.busy_us >= 5000);
    CHECK(st.backlog_us > 0);
    CHECK(st.backlog_us <= st.busy_us);
    CHECK(st.busy_us <= pkc_now_us() - started_us);
    CHECK_EQ(st.failed, 0);
    release_all(sl, done);
    CHECK_EQ(pkc_sl_stop(sl, pkc_now_ms() + 1000), 0);
    pkc_sl_free(sl);
    fake_stop(&f);
    CHECK_EQ(f.pids_seen, 77);
    CHECK_EQ(f.seq_errors, 0);
    CHECK_EQ(f.next_seq[0], 200);
    CHECK_EQ(f.next_seq[1], 200);
    CHECK_EQ(f.records_seen, 400);
}

static void
test_finish_ahead_none(void)
{
    run_finish_ahead(PKC_CODEC_NONE, 0);
}

static void
test_finish_ahead_lz4(void)
{
    run_finish_ahead(PKC_CODEC_LZ4, 0);
}

static void
test_finish_ahead_gzip_retry(void)
{
    run_finish_ahead(PKC_CODEC_GZIP, 2);
}

/* Append `n` records to partition 0, flush and collect them; returns
 * the done batches. */
static pkc_sl_batch *
produce_and_collect(pkc_sl *sl, int n)
{
    int got;
    pkc_sl_batch *done;

    for (intptr_t i = 0; i < n; i++) {
        pkc_sl_cookie ck = {(void *)(i + 1), NULL};

        CHECK_EQ(pkc_sl_append(sl, 0, 1000 + i, NULL, -1,
                               (const uint8_t *)"v", 1, NULL, 0, &ck),
                 PKC_SL_APPEND_OK);
    }
    CHECK_EQ(pkc_sl_flush(sl, pkc_now_ms() + 20000), 0);
    done = collect(sl, n, &got);
    CHECK_EQ(got, n);
    return done;
}

/* A started engine with producer id `pid` and epoch 0 whose partition 0
 * is led by the fake broker `f`. */
static pkc_sl *
start_idempotent_on(fake *f, const pkc_sl_config *c, int64_t pid)
{
    pkc_sl *sl = NULL;
    pkc_sl_broker_addr addr = {3, "127.0.0.1", f->port};
    int32_t part = 0, leader = 3;
    char err[128];

    CHECK_EQ(pkc_sl_new(&sl, c, err, sizeof(err)), PKC_OK);
    CHECK_EQ(pkc_sl_set_producer_id(sl, pid, 0), PKC_OK);
    CHECK_EQ(pkc_sl_set_brokers(sl, &addr, 1), PKC_OK);
    CHECK_EQ(pkc_sl_set_leaders(sl, &part, &leader, 1), PKC_OK);
    CHECK_EQ(pkc_sl_start(sl), PKC_OK);
    return sl;
}

/* Transactional: the id in every request, the transactional bit on every
 * batch; a batch refused for its numbers fails (no epoch bump, no
 * producer id asked for); a producer id handed over restarts the
 * sequences at 0. */
static void
test_transactional(void)
{
    fake f;
    pkc_sl_config c = base_config();
    pkc_sl *sl;
    pkc_sl_batch *done;
    pkc_sl_stats st;

    fake_start(&f);
    c.idempotent = 1;
    c.transactional_id = "txn-1";
    sl = start_idempotent_on(&f, &c, 55);
    done = produce_and_collect(sl, 10);
    for (pkc_sl_batch *b = done; b != NULL; b = b->next)
        CHECK_EQ(b->result.kind, PKC_SL_OK);
    release_all(sl, done);
    CHECK(strcmp(f.txn_id, "txn-1") == 0);
    CHECK(f.txn_batches > 0);
    CHECK_EQ(f.txn_batches, f.produce_requests);

    f.error_code = PKC_KERR_OUT_OF_ORDER_SEQUENCE_NUMBER;
    done = produce_and_collect(sl, 1);
    CHECK(done != NULL && done->result.kind == PKC_SL_KAFKA &&
          done->result.error_code == PKC_KERR_OUT_OF_ORDER_SEQUENCE_NUMBER);
    release_all(sl, done);
    CHECK_EQ(pkc_sl_wait_event(sl, pkc_now_ms()) & PKC_SL_EV_PRODUCER_ID, 0);
    pkc_sl_stats_get(sl, &st);
    CHECK_EQ(st.epoch_bumps, 0);
    CHECK_EQ(st.producer_id_requests, 0);

    /* The glue bumped the epoch (InitProducerId): sequences from 0. */
    f.error_code = 0;
    f.next_seq[0] = 0;
    CHECK_EQ(pkc_sl_set_producer_id(sl, 55, 1), PKC_OK);
    done = produce_and_collect(sl, 2);
    CHECK(done != NULL && done->result.kind == PKC_SL_OK);
    release_all(sl, done);
    CHECK_EQ(f.seq_errors, 0);   /* the new epoch's batch began at 0 */
    CHECK_EQ(pkc_sl_stop(sl, pkc_now_ms() + 1000), 0);
    pkc_sl_free(sl);
    fake_stop(&f);
}

int
main(void)
{
    RUN(test_bad_config);
    RUN(test_stop_fails_everything_once);
    RUN(test_too_large_and_queue_full);
    RUN(test_no_leader_expires);
    RUN(test_roundtrip_acks1);
    RUN(test_roundtrip_acks0);
    RUN(test_roundtrip_retry_not_leader);
    RUN(test_roundtrip_gzip);
    RUN(test_non_retriable_error);
    RUN(test_broker_down_bounded);
    RUN(test_finish_ahead_none);
    RUN(test_finish_ahead_lz4);
    RUN(test_finish_ahead_gzip_retry);
    RUN(test_idempotent_in_flight);
    RUN(test_transactional);
    if (pkc_test_failures == 0)
        printf("all checks passed\n");
    return pkc_test_summary();
}
