/*
 * test_records.c - plain-C unit tests of crc32c.c and records.c.
 *
 * The vectors below were written byte by byte from the RecordBatch v2 and
 * legacy message layouts (kafka-broker.md section 5); their CRC-32C values
 * were computed with java.util.zip.CRC32C and the legacy CRC32s with zlib,
 * independently of the code under test.  Built and run by
 * tests/test_records.py (gcc -std=c11 -Wall -Wextra -Werror).
 */
#include <stdlib.h>

#include "compress.h"
#include "crc32c.h"
#include "records.h"

#include "pkc_test.h"

/* Decode a hex string (spaces ignored) into out; returns the length. */
static size_t
unhex(const char *s, uint8_t *out)
{
    size_t n = 0;
    int hi = -1;

    for (; *s; s++) {
        int v;
        if (*s == ' ' || *s == '\n')
            continue;
        if (*s >= '0' && *s <= '9')
            v = *s - '0';
        else if (*s >= 'a' && *s <= 'f')
            v = *s - 'a' + 10;
        else
            abort();
        if (hi < 0)
            hi = v;
        else {
            out[n++] = (uint8_t)(hi << 4 | v);
            hi = -1;
        }
    }
    return n;
}

/* One record: key "k", value "v", timestamp 1000, offset 0. */
static const char V1[] =
    "0000000000000000" /* baseOffset 0 */
    "0000003a"         /* batchLength 58 */
    "ffffffff"         /* partitionLeaderEpoch -1 */
    "02"               /* magic */
    "716a6189"         /* crc */
    "0000"             /* attributes */
    "00000000"         /* lastOffsetDelta */
    "00000000000003e8" /* baseTimestamp 1000 */
    "00000000000003e8" /* maxTimestamp 1000 */
    "ffffffffffffffff" /* producerId -1 */
    "ffff"             /* producerEpoch -1 */
    "ffffffff"         /* baseSequence -1 */
    "00000001"         /* recordsCount 1 */
    "10"               /* length 8 */
    "00 00 00"         /* attributes, timestampDelta 0, offsetDelta 0 */
    "02 6b"            /* key "k" */
    "02 76"            /* value "v" */
    "00";              /* no headers */

/* Two records with headers: (key null, value "", ts 1000, [("h","x")]) and
 * (key "", value null, ts 1300, [("a", null)]). */
static const char V2[] =
    "0000000000000000"
    "00000047" /* batchLength 71 */
    "ffffffff"
    "02"
    "cb754689"
    "0000"
    "00000001"         /* lastOffsetDelta 1 */
    "00000000000003e8" /* baseTimestamp 1000 */
    "0000000000000514" /* maxTimestamp 1300 */
    "ffffffffffffffff"
    "ffff"
    "ffffffff"
    "00000002"
    /* record 0: length 10 */
    "14 00 00 00"
    "01"          /* key null */
    "00"          /* value "" */
    "02 02 68 02 78" /* 1 header: "h" = "x" */
    /* record 1: length 10, timestampDelta 300, offsetDelta 1 */
    "14 00 d8 04 02"
    "00"          /* key "" */
    "01"          /* value null */
    "02 02 61 01"; /* 1 header: "a" = null */

/* Legacy magic 0 (offset 5, key "k", value "v") and magic 1 (offset 6,
 * timestamp 2000, key null, value "vv"); CRC32 from zlib. */
static const char L0[] =
    "0000000000000005 00000010 1fecd70a 00 00 00000001 6b 00000001 76";
static const char L1[] =
    "0000000000000006 00000018 ce87e861 01 00 00000000000007d0 ffffffff "
    "00000002 7676";

static uint8_t buf_a[4096], buf_b[4096];

/* Recompute the CRC of the v2 batch at p (after editing it). */
static void
fix_crc(uint8_t *p)
{
    size_t n = 12 + pkc_load_u32(p + 8);
    pkc_store_u32(p + 17, pkc_crc32c(0, p + 21, n - 21));
}

/* Decode all records of data[0..len) into recs (max n); returns the count
 * or the negative status. */
static int
decode_all(const uint8_t *data, size_t len, const pkc_records_opts *opts,
           pkc_record *recs, int n, pkc_records_iter *out_it)
{
    pkc_records_iter it;
    int rc, i = 0;

    CHECK_EQ(pkc_records_iter_init(&it, data, len, opts), PKC_OK);
    while ((rc = pkc_records_next(&it, i < n ? &recs[i] : &recs[n - 1])) == 1)
        if (i < n)
            i++;
    if (out_it)
        *out_it = it;
    pkc_records_iter_free(&it);
    return rc < 0 ? rc : i;
}

static int
slice_is(pkc_slice s, const char *str)
{
    if (str == NULL)
        return s.len == -1;
    return s.len == (int32_t)strlen(str) &&
           (s.len == 0 || memcmp(s.ptr, str, (size_t)s.len) == 0);
}

/* ------------------------------------------------------------ CRC32C */

static void
test_crc32c_check_values(void)
{
    uint8_t z[32], f[32], inc[32];

    for (int i = 0; i < 32; i++) {
        z[i] = 0;
        f[i] = 0xff;
        inc[i] = (uint8_t)i;
    }
    CHECK_EQ(pkc_crc32c(0, "123456789", 9), 0xE3069283u);
    CHECK_EQ(pkc_crc32c_sw(0, "123456789", 9), 0xE3069283u);
    CHECK_EQ(pkc_crc32c_hw(0, "123456789", 9), 0xE3069283u);
    /* RFC 3720 B.4 */
    CHECK_EQ(pkc_crc32c(0, z, 32), 0x8A9136AAu);
    CHECK_EQ(pkc_crc32c(0, f, 32), 0x62A8AB43u);
    CHECK_EQ(pkc_crc32c(0, inc, 32), 0x46DD794Eu);
    CHECK_EQ(pkc_crc32c_sw(0, inc, 32), 0x46DD794Eu);
    CHECK_EQ(pkc_crc32c(0, "", 0), 0);
    /* chaining */
    CHECK_EQ(pkc_crc32c(pkc_crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
}

static void
test_crc32c_paths_agree(void)
{
    uint8_t data[600];
    uint32_t seed = 12345;

    for (size_t i = 0; i < sizeof(data); i++) {
        seed = seed * 1103515245u + 12345u;
        data[i] = (uint8_t)(seed >> 16);
    }
    for (size_t off = 0; off < 9; off++)
        for (size_t n = 0; n + off <= sizeof(data); n += 13) {
            uint32_t sw = pkc_crc32c_sw(0, data + off, n);
            CHECK_EQ(pkc_crc32c_hw(0, data + off, n), sw);
            CHECK_EQ(pkc_crc32c(0, data + off, n), sw);
            CHECK_EQ(pkc_crc32c_sw(pkc_crc32c_sw(0, data + off, n / 3),
                                   data + off + n / 3, n - n / 3),
                     sw);
        }
}

/* Lengths around the three-stream block sizes of the SSE4.2 path (3 x 256
 * and 3 x 8192 bytes) and well past them, at every alignment. */
static void
test_crc32c_long_buffers_agree(void)
{
    static uint8_t data[3 * 8192 * 2 + 3 * 256 * 3 + 64];
    static const size_t lens[] = {
        767, 768, 769, 775, 776, 1535, 1536, 1537, 24575, 24576, 24577,
        24576 + 768, 24576 + 767, 49152, 49152 + 3 * 256 * 3 + 7,
        sizeof(data) - 8};
    uint32_t seed = 777;

    for (size_t i = 0; i < sizeof(data); i++) {
        seed = seed * 1103515245u + 12345u;
        data[i] = (uint8_t)(seed >> 16);
    }
    for (size_t off = 0; off < 8; off++)
        for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
            size_t n = lens[k];
            uint32_t sw = pkc_crc32c_sw(0, data + off, n);
            CHECK_EQ(pkc_crc32c_hw(0, data + off, n), sw);
            CHECK_EQ(pkc_crc32c(0, data + off, n), sw);
            /* chained through a long first part */
            CHECK_EQ(pkc_crc32c(pkc_crc32c(0, data + off, n - 5),
                                data + off + n - 5, 5),
                     sw);
            CHECK_EQ(pkc_crc32c(0x12345678u, data + off, n),
                     pkc_crc32c_sw(0x12345678u, data + off, n));
        }
    /* all-zero and all-ones long buffers */
    memset(data, 0, sizeof(data));
    CHECK_EQ(pkc_crc32c(0, data, 30000), pkc_crc32c_sw(0, data, 30000));
    memset(data, 0xff, sizeof(data));
    CHECK_EQ(pkc_crc32c(0, data, 30000), pkc_crc32c_sw(0, data, 30000));
}

/* ------------------------------------------------------ v2 decoding */

static void
test_decode_v1(void)
{
    size_t n = unhex(V1, buf_a);
    pkc_record rec[4];
    pkc_records_iter it;

    CHECK_EQ(n, 70);
    CHECK_EQ(decode_all(buf_a, n, NULL, rec, 4, &it), 1);
    CHECK_EQ(rec[0].offset, 0);
    CHECK_EQ(rec[0].timestamp, 1000);
    CHECK_EQ(rec[0].timestamp_type, PKC_TS_CREATE);
    CHECK_EQ(rec[0].magic, 2);
    CHECK(slice_is(rec[0].key, "k"));
    CHECK(slice_is(rec[0].value, "v"));
    CHECK_EQ(rec[0].header_count, 0);
    CHECK_EQ(it.next_offset, 1);
    CHECK_EQ(it.truncated, 0);
}

static void
test_decode_v2_headers(void)
{
    size_t n = unhex(V2, buf_a);
    pkc_record rec[4];
    pkc_header_iter hi;
    pkc_slice k, v;

    CHECK_EQ(n, 83);
    /* baseOffset is not covered by the CRC */
    pkc_store_u64(buf_a, 100);
    CHECK_EQ(decode_all(buf_a, n, NULL, rec, 4, NULL), 2);
    CHECK_EQ(rec[0].offset, 100);
    CHECK_EQ(rec[0].timestamp, 1000);
    CHECK(slice_is(rec[0].key, NULL));
    CHECK(slice_is(rec[0].value, ""));
    CHECK(rec[0].value.ptr != NULL);
    CHECK_EQ(rec[0].header_count, 1);
    pkc_record_headers_init(&hi, &rec[0]);
    CHECK_EQ(pkc_record_headers_next(&hi, &k, &v), 1);
    CHECK(slice_is(k, "h"));
    CHECK(slice_is(v, "x"));
    CHECK_EQ(pkc_record_headers_next(&hi, &k, &v), 0);

    CHECK_EQ(rec[1].offset, 101);
    CHECK_EQ(rec[1].timestamp, 1300);
    CHECK(slice_is(rec[1].key, ""));
    CHECK(slice_is(rec[1].value, NULL));
    pkc_record_headers_init(&hi, &rec[1]);
    CHECK_EQ(pkc_record_headers_next(&hi, &k, &v), 1);
    CHECK(slice_is(k, "a"));
    CHECK(slice_is(v, NULL));
    CHECK_EQ(pkc_record_headers_next(&hi, &k, &v), 0);
}

static void
test_log_append_time(void)
{
    size_t n = unhex(V2, buf_a);
    pkc_record rec[4];

    buf_a[22] |= PKC_ATTR_LOG_APPEND_TIME;
    fix_crc(buf_a);
    CHECK_EQ(decode_all(buf_a, n, NULL, rec, 4, NULL), 2);
    CHECK_EQ(rec[0].timestamp, 1300);
    CHECK_EQ(rec[1].timestamp, 1300);
    CHECK_EQ(rec[0].timestamp_type, PKC_TS_LOG_APPEND);
}

static void
test_crc_mismatch(void)
{
    size_t n = unhex(V2, buf_a);
    pkc_record rec[4];
    pkc_records_iter it;

    buf_a[n - 1] ^= 1; /* last byte of the records */
    CHECK_EQ(decode_all(buf_a, n, NULL, rec, 4, &it), PKC_ERR_CRC);
    CHECK_EQ(it.r.err_offset, 0);
    /* Without verification the flipped byte (header value length -1 -> 0)
     * is read as a valid record. */
    pkc_records_opts opts = {.skip_crc = 1};
    CHECK_EQ(decode_all(buf_a, n, &opts, rec, 4, NULL), 2);
    buf_a[n - 1] ^= 1;
    buf_a[17] ^= 0x80; /* the stored crc itself */
    CHECK_EQ(decode_all(buf_a, n, NULL, rec, 4, NULL), PKC_ERR_CRC);
}

/* Batches back to back; every prefix yields the whole batches in it and
 * no error. */
static void
test_prefixes(void)
{
    size_t n1 = unhex(V1, buf_a), n2 = unhex(V2, buf_a + n1), n = n1 + n2;
    pkc_record rec[4];
    pkc_records_iter it;

    pkc_store_u64(buf_a + n1, 1);
    CHECK_EQ(decode_all(buf_a, n, NULL, rec, 4, &it), 3);
    CHECK_EQ(rec[2].offset, 2);
    CHECK_EQ(it.next_offset, 3);
    for (size_t cut = 0; cut < n; cut++) {
        int want = cut < n1 ? 0 : 1;
        CHECK_EQ(decode_all(buf_a, cut, NULL, rec, 4, &it), want);
        CHECK_EQ(it.truncated, cut != 0 && cut != n1);
        CHECK_EQ(it.next_offset, cut < n1 ? -1 : 1);
    }
}

static void
test_fetch_offset(void)
{
    size_t n1 = unhex(V1, buf_a), n2 = unhex(V2, buf_a + n1), n = n1 + n2;
    pkc_record rec[4];
    pkc_records_iter it;
    pkc_records_opts opts = {.fetch_offset = 2};

    pkc_store_u64(buf_a + n1, 1); /* V2 holds offsets 1 and 2 */
    CHECK_EQ(decode_all(buf_a, n, &opts, rec, 4, &it), 1);
    CHECK_EQ(rec[0].offset, 2);
    CHECK(slice_is(rec[0].key, ""));
    CHECK_EQ(it.next_offset, 3);
    opts.fetch_offset = 3;
    CHECK_EQ(decode_all(buf_a, n, &opts, rec, 4, &it), 0);
    CHECK_EQ(it.next_offset, 3);
}

/* recordsCount 0 with lastOffsetDelta 4: a batch emptied by compaction. */
static void
test_empty_batch(void)
{
    size_t n = unhex(V1, buf_a);
    pkc_record rec[4];
    pkc_records_iter it;

    pkc_store_u32(buf_a + 8, 49);    /* header only */
    pkc_store_u32(buf_a + 23, 4);    /* lastOffsetDelta */
    pkc_store_u32(buf_a + 57, 0);    /* recordsCount */
    fix_crc(buf_a);
    n = 61;
    CHECK_EQ(decode_all(buf_a, n, NULL, rec, 4, &it), 0);
    CHECK_EQ(it.next_offset, 5);
    CHECK_EQ(it.truncated, 0);
}

/* ------------------------------------------------------ v2 encoding */

static void
test_encode_v1(void)
{
    uint8_t want[128];
    size_t n = unhex(V1, want);
    pkc_batch_builder b;
    const uint8_t *out;
    size_t out_len;

    CHECK_EQ(pkc_batch_builder_init(&b, PKC_CODEC_NONE, -1, 0), PKC_OK);
    CHECK_EQ(pkc_batch_builder_record_size(&b, 1000, 1, 1, NULL, 0), 9);
    CHECK_EQ(pkc_batch_builder_append(&b, 1000, (const uint8_t *)"k", 1,
                                      (const uint8_t *)"v", 1, NULL, 0),
             PKC_OK);
    CHECK_EQ(pkc_batch_builder_size(&b), n);
    CHECK_EQ(pkc_batch_builder_finish(&b, &out, &out_len), PKC_OK);
    CHECK_EQ(out_len, n);
    CHECK_MEM(out, want, n);
    /* reuse after reset gives the same bytes */
    pkc_batch_builder_reset(&b);
    CHECK_EQ(pkc_batch_builder_finish(&b, &out, &out_len), PKC_ERR_INVALID);
    CHECK_EQ(pkc_batch_builder_append(&b, 1000, (const uint8_t *)"k", 1,
                                      (const uint8_t *)"v", 1, NULL, 0),
             PKC_OK);
    CHECK_EQ(pkc_batch_builder_finish(&b, &out, &out_len), PKC_OK);
    CHECK_EQ(out_len, n);
    CHECK_MEM(out, want, n);
    pkc_batch_builder_free(&b);
}

static void
test_encode_v2(void)
{
    uint8_t want[128];
    size_t n = unhex(V2, want);
    pkc_batch_builder b;
    const uint8_t *out;
    size_t out_len;
    pkc_header h0 = {{(const uint8_t *)"h", 1}, {(const uint8_t *)"x", 1}};
    pkc_header h1 = {{(const uint8_t *)"a", 1}, {NULL, -1}};

    CHECK_EQ(pkc_batch_builder_init(&b, PKC_CODEC_NONE, -1, 0), PKC_OK);
    CHECK_EQ(pkc_batch_builder_append(&b, 1000, NULL, -1,
                                      (const uint8_t *)"", 0, &h0, 1),
             PKC_OK);
    CHECK_EQ(pkc_batch_builder_record_size(&b, 1300, 0, -1, &h1, 1), 11);
    CHECK_EQ(pkc_batch_builder_append(&b, 1300, (const uint8_t *)"", 0, NULL,
                                      -1, &h1, 1),
             PKC_OK);
    CHECK_EQ(pkc_batch_builder_finish(&b, &out, &out_len), PKC_OK);
    CHECK_EQ(out_len, n);
    CHECK_MEM(out, want, n);
    pkc_batch_builder_free(&b);
}

static void
test_builder_limits(void)
{
    pkc_batch_builder b;
    const uint8_t *out;
    size_t out_len, size;
    uint8_t val[100];
    int appended = 0;

    memset(val, 'x', sizeof(val));
    CHECK_EQ(pkc_batch_builder_init(&b, PKC_CODEC_NONE, -1, 1000), PKC_OK);
    for (;;) {
        size_t want = pkc_batch_builder_record_size(&b, 5, -1, 100, NULL, 0);
        size = pkc_batch_builder_size(&b);
        int rc = pkc_batch_builder_append(&b, 5, NULL, -1, val, 100, NULL, 0);
        if (rc != PKC_OK) {
            CHECK_EQ(rc, PKC_ERR_TOO_LARGE);
            CHECK(size + want > 1000);
            CHECK_EQ(pkc_batch_builder_size(&b), size); /* unchanged */
            break;
        }
        CHECK_EQ(pkc_batch_builder_size(&b), size + want);
        appended++;
    }
    CHECK_EQ(appended, 8); /* 61 + 8 * 109 = 933; a 9th would be 1042 */
    CHECK_EQ(pkc_batch_builder_finish(&b, &out, &out_len), PKC_OK);
    CHECK_EQ(out_len, 933);
    pkc_record rec[10];
    CHECK_EQ(decode_all(out, out_len, NULL, rec, 10, NULL), 8);
    CHECK_EQ(rec[7].offset, 7);
    CHECK_EQ(rec[7].value.len, 100);
    /* invalid arguments leave the builder usable */
    pkc_header bad = {{NULL, -1}, {NULL, -1}};
    pkc_batch_builder_reset(&b);
    CHECK_EQ(pkc_batch_builder_append(&b, 5, NULL, -2, val, 1, NULL, 0),
             PKC_ERR_INVALID);
    CHECK_EQ(pkc_batch_builder_append(&b, 5, NULL, -1, val, 1, &bad, 1),
             PKC_ERR_INVALID);
    CHECK_EQ(pkc_batch_builder_append(&b, 5, NULL, -1, val, 1, NULL, 0),
             PKC_OK);
    pkc_batch_builder_free(&b);
}

/* Producer fields and out-of-order timestamps round-trip. */
static void
test_builder_fields(void)
{
    pkc_batch_builder b;
    const uint8_t *out;
    size_t out_len;
    pkc_record rec[4];

    CHECK_EQ(pkc_batch_builder_init(&b, PKC_CODEC_NONE, -1, 0), PKC_OK);
    b.producer_id = 77;
    b.producer_epoch = 3;
    b.base_sequence = 10;
    b.transactional = 1;
    CHECK_EQ(pkc_batch_builder_append(&b, 5000, NULL, -1, NULL, -1, NULL, 0),
             PKC_OK);
    CHECK_EQ(pkc_batch_builder_append(&b, 4000, NULL, -1, NULL, -1, NULL, 0),
             PKC_OK);
    CHECK_EQ(pkc_batch_builder_append(&b, 9000, NULL, -1, NULL, -1, NULL, 0),
             PKC_OK);
    CHECK_EQ(pkc_batch_builder_finish(&b, &out, &out_len), PKC_OK);
    CHECK_EQ(pkc_load_u16(out + 21), PKC_ATTR_TRANSACTIONAL);
    CHECK_EQ((int32_t)pkc_load_u32(out + 23), 2);
    CHECK_EQ((int64_t)pkc_load_u64(out + 27), 5000);
    CHECK_EQ((int64_t)pkc_load_u64(out + 35), 9000);
    CHECK_EQ((int64_t)pkc_load_u64(out + 43), 77);
    CHECK_EQ((int16_t)pkc_load_u16(out + 51), 3);
    CHECK_EQ((int32_t)pkc_load_u32(out + 53), 10);
    CHECK_EQ(decode_all(out, out_len, NULL, rec, 4, NULL), 3);
    CHECK_EQ(rec[1].timestamp, 4000);
    CHECK_EQ(rec[2].timestamp, 9000);
    CHECK(slice_is(rec[1].value, NULL));
    pkc_batch_builder_free(&b);
}

/* ------------------------------------------------ transactions, control */

/* Append a batch of `count` records for producer `pid` at `base` to buf. */
static size_t
put_batch(uint8_t *buf, int64_t base, int64_t pid, int transactional,
          int count)
{
    pkc_batch_builder b;
    const uint8_t *out;
    size_t out_len;

    pkc_batch_builder_init(&b, PKC_CODEC_NONE, -1, 0);
    b.producer_id = pid;
    b.producer_epoch = pid >= 0 ? 0 : -1;
    b.base_sequence = pid >= 0 ? 0 : -1;
    b.transactional = transactional;
    for (int i = 0; i < count; i++)
        pkc_batch_builder_append(&b, 100 + i, NULL, -1,
                                 (const uint8_t *)"data", 4, NULL, 0);
    CHECK_EQ(pkc_batch_builder_finish(&b, &out, &out_len), PKC_OK);
    memcpy(buf, out, out_len);
    pkc_store_u64(buf, (uint64_t)base);
    pkc_batch_builder_free(&b);
    return out_len;
}

/* A control batch (ABORT or COMMIT marker) of producer pid at offset. */
static size_t
put_marker(uint8_t *buf, int64_t offset, int64_t pid, int type)
{
    pkc_batch_builder b;
    const uint8_t *out;
    size_t out_len;
    uint8_t key[4] = {0, 0, 0, (uint8_t)type};
    uint8_t value[6] = {0, 0, 0, 0, 0, 9};

    pkc_batch_builder_init(&b, PKC_CODEC_NONE, -1, 0);
    b.producer_id = pid;
    b.producer_epoch = 0;
    b.transactional = 1;
    pkc_batch_builder_append(&b, 200, key, 4, value, 6, NULL, 0);
    CHECK_EQ(pkc_batch_builder_finish(&b, &out, &out_len), PKC_OK);
    memcpy(buf, out, out_len);
    pkc_store_u64(buf, (uint64_t)offset);
    buf[22] |= PKC_ATTR_CONTROL;
    fix_crc(buf);
    pkc_batch_builder_free(&b);
    return out_len;
}

static size_t
txn_log(uint8_t *buf, int last_marker)
{
    size_t n = 0;
    n += put_batch(buf + n, 0, 7, 1, 2);   /* 0-1, pid 7, aborted */
    n += put_batch(buf + n, 2, 8, 1, 2);   /* 2-3, pid 8, committed */
    n += put_marker(buf + n, 4, 7, PKC_CONTROL_ABORT);
    n += put_marker(buf + n, 5, 8, PKC_CONTROL_COMMIT);
    n += put_batch(buf + n, 6, 7, 1, 2);   /* 6-7, pid 7 again */
    n += put_marker(buf + n, 8, 7, last_marker);
    n += put_batch(buf + n, 9, -1, 0, 1);  /* 9, not transactional */
    return n;
}

static void
check_offsets(const pkc_record *rec, int n, const int64_t *want, int nwant)
{
    CHECK_EQ(n, nwant);
    for (int i = 0; i < n && i < nwant; i++)
        CHECK_EQ(rec[i].offset, want[i]);
}

static void
test_read_committed(void)
{
    size_t n = txn_log(buf_a, PKC_CONTROL_COMMIT);
    pkc_record rec[16];
    pkc_records_iter it;
    pkc_aborted_txn aborted[2] = {{7, 6}, {7, 0}};
    pkc_records_opts opts = {.read_committed = 1, .aborted = aborted + 1,
                             .n_aborted = 1};
    const int64_t all[] = {0, 1, 2, 3, 6, 7, 9};
    const int64_t committed[] = {2, 3, 6, 7, 9};
    const int64_t committed2[] = {2, 3, 9};

    /* read_uncommitted: everything but the markers */
    check_offsets(rec, decode_all(buf_a, n, NULL, rec, 16, &it), all, 7);
    CHECK_EQ(it.next_offset, 10);
    check_offsets(rec, decode_all(buf_a, n, &opts, rec, 16, &it), committed,
                  5);
    CHECK_EQ(it.next_offset, 10);
    /* without the list, read_committed drops nothing */
    opts.n_aborted = 0;
    check_offsets(rec, decode_all(buf_a, n, &opts, rec, 16, NULL), all, 7);
    /* pid 7's second transaction aborted too (list unsorted) */
    n = txn_log(buf_a, PKC_CONTROL_ABORT);
    opts.aborted = aborted;
    opts.n_aborted = 2;
    check_offsets(rec, decode_all(buf_a, n, &opts, rec, 16, NULL), committed2,
                  3);
}

/* ------------------------------------------------------------ legacy */

static void
test_legacy(void)
{
    size_t n = unhex(L0, buf_a);
    pkc_record rec[4];
    pkc_records_iter it;

    n += unhex(L1, buf_a + n);
    CHECK_EQ(decode_all(buf_a, n, NULL, rec, 4, &it), 2);
    CHECK_EQ(rec[0].offset, 5);
    CHECK_EQ(rec[0].magic, 0);
    CHECK_EQ(rec[0].timestamp, -1);
    CHECK_EQ(rec[0].timestamp_type, PKC_TS_NONE);
    CHECK(slice_is(rec[0].key, "k"));
    CHECK(slice_is(rec[0].value, "v"));
    CHECK_EQ(rec[1].offset, 6);
    CHECK_EQ(rec[1].magic, 1);
    CHECK_EQ(rec[1].timestamp, 2000);
    CHECK_EQ(rec[1].timestamp_type, PKC_TS_CREATE);
    CHECK(slice_is(rec[1].key, NULL));
    CHECK(slice_is(rec[1].value, "vv"));
    CHECK_EQ(rec[1].header_count, 0);
    CHECK_EQ(it.next_offset, 7);
    /* mixed with a v2 batch, and every prefix */
    size_t n2 = unhex(V1, buf_a + n);
    pkc_store_u64(buf_a + n, 7);
    CHECK_EQ(decode_all(buf_a, n + n2, NULL, rec, 4, NULL), 3);
    CHECK_EQ(rec[2].offset, 7);
    for (size_t cut = 0; cut < n + n2; cut++) {
        int want = cut < 28 ? 0 : cut < n ? 1 : 2;
        CHECK_EQ(decode_all(buf_a, cut, NULL, rec, 4, NULL), want);
    }
    /* CRC32 checked */
    buf_a[n - 1] ^= 0x20;
    CHECK_EQ(decode_all(buf_a, n, NULL, rec, 4, &it), PKC_ERR_CRC);
    CHECK_EQ(it.r.err_offset, 28 + 12);
    CHECK_EQ(it.err_offset, 6);
}

/* Encoding a legacy message gives the known-answer bytes of L0/L1 (after
 * their 12-byte offset/size prefix), and parsing them back gives the
 * fields; hostile single messages fail with the right status. */
static void
test_legacy_message_encode(void)
{
    pkc_writer w;
    pkc_reader r;
    pkc_legacy_message m;
    size_t n0 = unhex(L0, buf_a), n1 = unhex(L1, buf_b);

    CHECK_EQ(pkc_legacy_message_size(0, 1, 1), n0 - 12);
    CHECK_EQ(pkc_legacy_message_size(1, -1, 2), n1 - 12);
    CHECK_EQ(pkc_writer_init(&w, 0, 64), PKC_OK);
    CHECK_EQ(pkc_legacy_message_write(&w, 0, 0, 12345,
                                      (const uint8_t *)"k", 1,
                                      (const uint8_t *)"v", 1), PKC_OK);
    CHECK_EQ(w.len, n0 - 12);
    CHECK(memcmp(w.buf, buf_a + 12, n0 - 12) == 0);
    pkc_writer_reset(&w);
    CHECK_EQ(pkc_legacy_message_write(&w, 1, 0, 2000, NULL, -1,
                                      (const uint8_t *)"vv", 2), PKC_OK);
    CHECK_EQ(w.len, n1 - 12);
    CHECK(memcmp(w.buf, buf_b + 12, n1 - 12) == 0);
    /* parse what was written */
    pkc_reader_init(&r, w.buf, w.len);
    CHECK_EQ(pkc_legacy_message_parse(&r, &m, 1), PKC_OK);
    CHECK_EQ(m.magic, 1);
    CHECK_EQ(m.attributes, 0);
    CHECK_EQ(m.timestamp, 2000);
    CHECK(slice_is(m.key, NULL));
    CHECK(slice_is(m.value, "vv"));
    /* every strict prefix fails without reading past it */
    for (size_t cut = 0; cut < w.len; cut++) {
        pkc_reader_init(&r, w.buf, cut);
        CHECK(pkc_legacy_message_parse(&r, &m, 1) < 0);
    }
    /* a trailing byte, a bad crc, an unknown magic, a huge length */
    memcpy(buf_a, w.buf, w.len);
    buf_a[w.len] = 0;
    pkc_reader_init(&r, buf_a, w.len + 1);
    CHECK_EQ(pkc_legacy_message_parse(&r, &m, 1), PKC_ERR_INVALID);
    buf_a[w.len - 1] ^= 1;
    pkc_reader_init(&r, buf_a, w.len);
    CHECK_EQ(pkc_legacy_message_parse(&r, &m, 1), PKC_ERR_CRC);
    CHECK_EQ(r.err_offset, 0);
    pkc_reader_init(&r, buf_a, w.len);
    CHECK_EQ(pkc_legacy_message_parse(&r, &m, 0), PKC_OK);
    buf_a[4] = 2;
    pkc_reader_init(&r, buf_a, w.len);
    CHECK_EQ(pkc_legacy_message_parse(&r, &m, 0), PKC_ERR_UNSUPPORTED);
    memcpy(buf_a, w.buf, w.len);
    pkc_store_u32(buf_a + 18, 0x7ffffff0u); /* value length */
    pkc_reader_init(&r, buf_a, w.len);
    CHECK(pkc_legacy_message_parse(&r, &m, 0) < 0);
    /* invalid arguments and the writer's cap */
    pkc_writer_reset(&w);
    CHECK_EQ(pkc_legacy_message_write(&w, 2, 0, 0, NULL, -1, NULL, -1),
             PKC_ERR_INVALID);
    CHECK_EQ(pkc_legacy_message_write(&w, 0, 0, 0, NULL, -2, NULL, -1),
             PKC_ERR_INVALID);
    CHECK_EQ(pkc_legacy_message_write(&w, 0, 0, 0, NULL, -1, buf_b, 100),
             PKC_ERR_TOO_LARGE);
    pkc_writer_free(&w);
}

/* ------------------------------------------------------------ hostile */

/* Decode V2 after `edit` changed it (CRC fixed up); expect status. */
static void
expect_v2_error(void (*edit)(uint8_t *, size_t *), int want)
{
    size_t n = unhex(V2, buf_b);
    pkc_record rec[4];

    edit(buf_b, &n);
    fix_crc(buf_b);
    CHECK_EQ(decode_all(buf_b, n, NULL, rec, 4, NULL), want);
}

static void e_count_high(uint8_t *p, size_t *n)
{ (void)n; pkc_store_u32(p + 57, 3); pkc_store_u32(p + 23, 2); }
static void e_count_low(uint8_t *p, size_t *n)
{ (void)n; pkc_store_u32(p + 57, 1); }
static void e_count_negative(uint8_t *p, size_t *n)
{ (void)n; pkc_store_u32(p + 57, 0xffffffffu); }
static void e_count_huge(uint8_t *p, size_t *n)
{ (void)n; pkc_store_u32(p + 57, 0x7fffffffu); pkc_store_u32(p + 23, 0x7ffffffeu); }
static void e_count_over_delta(uint8_t *p, size_t *n)
{ (void)n; pkc_store_u32(p + 23, 0); }
static void e_delta_negative(uint8_t *p, size_t *n)
{ (void)n; pkc_store_u32(p + 23, 0xfffffff0u); }
static void e_rec_len_huge(uint8_t *p, size_t *n)
{ (void)n; p[61] = 0x7e; /* length 63 > what is left */ }
static void e_rec_len_negative(uint8_t *p, size_t *n)
{ (void)n; p[61] = 0x03; /* -2 */ }
static void e_rec_len_short(uint8_t *p, size_t *n)
{ (void)n; p[61] = 0x12; /* 9: the record's fields need 10 */ }
static void e_key_len(uint8_t *p, size_t *n)
{ (void)n; p[65] = 0x03; /* key length -2 */ }
static void e_offset_delta(uint8_t *p, size_t *n)
{ (void)n; p[64] = 0x04; /* offsetDelta 2 > lastOffsetDelta 1 */ }
static void e_header_count(uint8_t *p, size_t *n)
{ (void)n; p[67] = 0x7e; /* 63 headers in 4 bytes */ }
static void e_header_key_null(uint8_t *p, size_t *n)
{ (void)n; p[68] = 0x01; /* header key length -1 */ }
/* Record 1's offsetDelta as a 6-byte varint (int32 allows 5). */
static void e_overlong_varint(uint8_t *p, size_t *n)
{
    (void)n;
    p[74] = 0;
    for (int i = 0; i < 6; i++)
        p[75 + i] = 0xff;
}
static void e_magic3(uint8_t *p, size_t *n) { (void)n; p[16] = 3; }
static void e_batch_short(uint8_t *p, size_t *n)
{ pkc_store_u32(p + 8, 40); *n = 52; }
static void e_batch_tiny(uint8_t *p, size_t *n)
{ pkc_store_u32(p + 8, 13); *n = 25; }

static void
test_hostile(void)
{
    expect_v2_error(e_count_high, PKC_ERR_INVALID);
    expect_v2_error(e_count_low, PKC_ERR_INVALID);
    expect_v2_error(e_count_negative, PKC_ERR_INVALID);
    expect_v2_error(e_count_huge, PKC_ERR_INVALID);
    expect_v2_error(e_count_over_delta, PKC_ERR_INVALID);
    expect_v2_error(e_delta_negative, PKC_ERR_INVALID);
    expect_v2_error(e_rec_len_huge, PKC_ERR_INVALID);
    expect_v2_error(e_rec_len_negative, PKC_ERR_INVALID);
    expect_v2_error(e_rec_len_short, PKC_ERR_TRUNCATED);
    expect_v2_error(e_key_len, PKC_ERR_INVALID);
    expect_v2_error(e_offset_delta, PKC_ERR_INVALID);
    expect_v2_error(e_header_count, PKC_ERR_INVALID);
    expect_v2_error(e_header_key_null, PKC_ERR_INVALID);
    expect_v2_error(e_overlong_varint, PKC_ERR_VARINT);
    expect_v2_error(e_magic3, PKC_ERR_UNSUPPORTED);
    expect_v2_error(e_batch_short, PKC_ERR_INVALID);
    expect_v2_error(e_batch_tiny, PKC_ERR_INVALID);
}

/* The error is sticky and reports the entry. */
static void
test_error_details(void)
{
    size_t n1 = unhex(V1, buf_a), n2 = unhex(V2, buf_a + n1);
    pkc_records_iter it;
    pkc_record rec;

    pkc_store_u64(buf_a + n1, 1);
    buf_a[n1 + 65] = 0x03; /* key length -2 in record 0 of V2 */
    fix_crc(buf_a + n1);
    CHECK_EQ(pkc_records_iter_init(&it, buf_a, n1 + n2, NULL), PKC_OK);
    CHECK_EQ(pkc_records_next(&it, &rec), 1);
    CHECK_EQ(pkc_records_next(&it, &rec), PKC_ERR_INVALID);
    CHECK_EQ(pkc_records_next(&it, &rec), PKC_ERR_INVALID);
    CHECK_EQ(it.err_offset, 1);
    CHECK(it.r.err_field != NULL && strcmp(it.r.err_field, "key length") == 0);
    CHECK_EQ(it.r.err_offset, n1 + 66);
    pkc_records_iter_free(&it);
}

/* ---------------------------------------------------------- compressed */

static void
test_compressed_roundtrip(void)
{
    static const int codecs[] = {PKC_CODEC_GZIP, PKC_CODEC_SNAPPY,
                                 PKC_CODEC_LZ4, PKC_CODEC_ZSTD};
    for (size_t c = 0; c < sizeof(codecs) / sizeof(codecs[0]); c++) {
        pkc_batch_builder b;
        const uint8_t *out;
        size_t out_len;
        pkc_record rec[300];
        pkc_arena arena;
        uint8_t val[64];

        if (!pkc_codec_available(codecs[c])) {
            /* every codec is required: install its -dev package */
            fprintf(stderr, "codec %s missing from this build\n",
                    pkc_codec_name(codecs[c]));
            CHECK(pkc_codec_available(codecs[c]));
            continue;
        }
        memset(val, 'a' + (int)c, sizeof(val));
        CHECK_EQ(pkc_batch_builder_init(&b, codecs[c], -1, 0), PKC_OK);
        for (int i = 0; i < 200; i++)
            CHECK_EQ(pkc_batch_builder_append(&b, 1000 + i, NULL, -1, val,
                                              (int32_t)(i % 64), NULL, 0),
                     PKC_OK);
        CHECK_EQ(pkc_batch_builder_finish(&b, &out, &out_len), PKC_OK);
        CHECK(out_len < pkc_batch_builder_size(&b));
        CHECK_EQ(pkc_load_u16(out + 21), codecs[c]);
        CHECK_EQ(decode_all(out, out_len, NULL, rec, 300, NULL), 200);
        CHECK_EQ(rec[199].offset, 199);
        CHECK_EQ(rec[199].value.len, 199 % 64);
        CHECK_EQ(rec[199].codec, codecs[c]);
        /* with an arena, the records outlive the iterator */
        pkc_arena_init(&arena, 0);
        pkc_records_opts opts = {.arena = &arena};
        CHECK_EQ(decode_all(out, out_len, &opts, rec, 300, NULL), 200);
        CHECK(arena.used > 0);
        CHECK_MEM(rec[63].value.ptr, val, 63);
        pkc_arena_free(&arena);
        /* decompression cap: just under passes, one byte less fails */
        size_t raw = pkc_batch_builder_size(&b) - PKC_BATCH_HEADER_SIZE;
        opts.arena = NULL;
        opts.max_decompressed = raw;
        CHECK_EQ(decode_all(out, out_len, &opts, rec, 300, NULL), 200);
        opts.max_decompressed = raw - 1;
        CHECK_EQ(decode_all(out, out_len, &opts, rec, 300, NULL),
                 PKC_ERR_TOO_LARGE);
        /* arena total cap */
        pkc_arena_init(&arena, raw - 1);
        opts.max_decompressed = 0;
        opts.arena = &arena;
        CHECK_EQ(decode_all(out, out_len, &opts, rec, 300, NULL),
                 PKC_ERR_TOO_LARGE);
        pkc_arena_free(&arena);
        pkc_batch_builder_free(&b);
    }
}

/* Restamping a finished batch's producer fields keeps it valid. */
static void
test_builder_restamp(void)
{
    static const int codecs[] = {PKC_CODEC_NONE, PKC_CODEC_LZ4};

    for (size_t c = 0; c < sizeof(codecs) / sizeof(codecs[0]); c++) {
        pkc_batch_builder b;
        const uint8_t *out;
        size_t out_len;
        pkc_record rec[20];

        CHECK_EQ(pkc_batch_builder_init(&b, codecs[c], -1, 0), PKC_OK);
        CHECK_EQ(pkc_batch_builder_restamp(&b, 7, 1, 0), PKC_ERR_INVALID);
        for (int i = 0; i < 10; i++)
            CHECK_EQ(pkc_batch_builder_append(&b, 1000 + i, NULL, -1,
                                              (const uint8_t *)"value", 5,
                                              NULL, 0), PKC_OK);
        CHECK_EQ(pkc_batch_builder_finish(&b, &out, &out_len), PKC_OK);
        CHECK_EQ((int64_t)pkc_load_u64(out + 43), -1);
        CHECK_EQ(pkc_batch_builder_restamp(&b, 123456789012LL, 3, 2000),
                 1);
        CHECK_EQ((int64_t)pkc_load_u64(out + 43), 123456789012LL);
        CHECK_EQ((int16_t)pkc_load_u16(out + 51), 3);
        CHECK_EQ((int32_t)pkc_load_u32(out + 53), 2000);
        CHECK_EQ((int32_t)pkc_load_u32(out + 57), 10);
        /* The CRC-32C was recomputed: the batch still decodes. */
        CHECK_EQ(decode_all(out, out_len, NULL, rec, 20, NULL), 10);
        CHECK_EQ(pkc_batch_builder_restamp(&b, 123456789012LL, 3, 2000),
                 0);
        CHECK_EQ(pkc_batch_builder_restamp(&b, -1, -1, -1), 1);
        CHECK_EQ(decode_all(out, out_len, NULL, rec, 20, NULL), 10);
        pkc_batch_builder_free(&b);
    }
}

int
main(void)
{
    RUN(test_crc32c_check_values);
    RUN(test_crc32c_paths_agree);
    RUN(test_crc32c_long_buffers_agree);
    RUN(test_decode_v1);
    RUN(test_decode_v2_headers);
    RUN(test_log_append_time);
    RUN(test_crc_mismatch);
    RUN(test_prefixes);
    RUN(test_fetch_offset);
    RUN(test_empty_batch);
    RUN(test_encode_v1);
    RUN(test_encode_v2);
    RUN(test_builder_limits);
    RUN(test_builder_fields);
    RUN(test_read_committed);
    RUN(test_legacy);
    RUN(test_legacy_message_encode);
    RUN(test_hostile);
    RUN(test_error_details);
    RUN(test_compressed_roundtrip);
    RUN(test_builder_restamp);
    return pkc_test_summary();
}
