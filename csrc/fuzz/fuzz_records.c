/*
 * fuzz_records.c - libFuzzer target for the record decoder (records.c):
 * RecordBatch v2 and legacy message sets, compressed or not.
 *
 * Build and run (or scripts/fuzz.sh 60 records):
 *   clang -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined \
 *       -fno-sanitize-recover=undefined -D_GNU_SOURCE \
 *       -DPKC_HAVE_SNAPPY=1 -DPKC_HAVE_LZ4=1 -DPKC_HAVE_ZSTD=1 \
 *       -Icsrc/wire csrc/fuzz/fuzz_records.c csrc/wire/buf.c \
 *       csrc/wire/compress.c csrc/wire/crc32c.c csrc/wire/records.c \
 *       -lz -lsnappy -llz4 -lzstd -lpthread -o csrc/fuzz/build/fuzz_records
 *   csrc/fuzz/build/fuzz_records -max_total_time=60 csrc/fuzz/corpus/records
 *
 * Input: one control byte, then the Records bytes of a partition.
 * Control bits: 0 skip CRC checks (so mutations reach the record parser),
 * 1 read_committed with a fixed AbortedTransactions list, 2 decompress into
 * an arena (else the iterator's scratch buffer), 3-5 fetch_offset 0..7,
 * 6-7 the decompression cap (1 MiB >> 2n).  Seeds use control byte 0.
 *
 * Checks beyond the sanitizers: every delivered record has offset >=
 * fetch_offset and a header area that walks to exactly header_count
 * headers; and re-encoding the delivered records with the batch builder
 * and decoding that batch gives the same keys, values, timestamps and
 * headers (compared through a running CRC-32C digest, because scratch
 * views die at the next call).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "compress.h"
#include "crc32c.h"
#include "records.h"

#define FUZZ_MAX_CAP ((size_t)1 << 20)
#define MAX_HEADERS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const pkc_aborted_txn aborted[] = {
    {0, 0}, {1, 3}, {7, 0}, {-1, 0}, {2, 1000},
};

/* Fold one view into the digest, null distinct from empty. */
static uint32_t
digest_slice(uint32_t d, pkc_slice s)
{
    uint8_t len[4];

    pkc_store_u32(len, (uint32_t)s.len);
    d = pkc_crc32c(d, len, 4);
    if (s.len > 0)
        d = pkc_crc32c(d, s.ptr, (size_t)s.len);
    return d;
}

/* Digest of a record's key, value, timestamp and headers; fills hdrs. */
static uint32_t
digest_record(uint32_t d, const pkc_record *rec, pkc_header *hdrs,
              int32_t *n_hdrs)
{
    pkc_header_iter hi;
    pkc_slice k, v;
    uint8_t ts[8];
    int32_t n = 0;
    int rc;

    pkc_store_u64(ts, (uint64_t)rec->timestamp);
    d = pkc_crc32c(d, ts, 8);
    d = digest_slice(d, rec->key);
    d = digest_slice(d, rec->value);
    pkc_record_headers_init(&hi, rec);
    while ((rc = pkc_record_headers_next(&hi, &k, &v)) == 1) {
        d = digest_slice(digest_slice(d, k), v);
        if (n < MAX_HEADERS) {
            hdrs[n].key = k;
            hdrs[n].value = v;
        }
        n++;
    }
    if (rc != 0 || n != rec->header_count)
        abort(); /* a delivered record's headers must walk cleanly */
    *n_hdrs = n;
    return d;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pkc_records_opts opts;
    pkc_records_iter it, it2;
    pkc_batch_builder b;
    pkc_arena arena;
    pkc_record rec;
    pkc_header hdrs[MAX_HEADERS];
    const uint8_t *out;
    size_t out_len;
    uint32_t d1 = 0, d2 = 0;
    int rc, ctl, n1 = 0, n2 = 0, reencode = 1;

    if (size < 1)
        return 0;
    ctl = data[0];
    data++;
    size--;
    memset(&opts, 0, sizeof(opts));
    opts.skip_crc = ctl & 1;
    opts.read_committed = (ctl >> 1) & 1;
    opts.aborted = aborted;
    opts.n_aborted = sizeof(aborted) / sizeof(aborted[0]);
    opts.fetch_offset = (ctl >> 3) & 7;
    opts.max_decompressed = FUZZ_MAX_CAP >> (2 * ((ctl >> 6) & 3));
    pkc_arena_init(&arena, 4 * FUZZ_MAX_CAP);
    if (ctl & 4)
        opts.arena = &arena;

    pkc_batch_builder_init(&b, PKC_CODEC_NONE, -1, 0);
    if (pkc_records_iter_init(&it, data, size, &opts) != PKC_OK)
        abort();
    while ((rc = pkc_records_next(&it, &rec)) == 1) {
        int32_t nh;
        if (rec.offset < opts.fetch_offset)
            abort();
        d1 = digest_record(d1, &rec, hdrs, &nh);
        if (nh > MAX_HEADERS)
            reencode = 0;
        else if (reencode &&
                 pkc_batch_builder_append(&b, rec.timestamp, rec.key.ptr,
                                          rec.key.len, rec.value.ptr,
                                          rec.value.len, hdrs, nh) != PKC_OK)
            reencode = 0;
        n1++;
    }
    if (rc > 0 || (rc < 0 && it.r.status != rc))
        abort();
    pkc_records_iter_free(&it);

    if (reencode && n1 > 0) {
        if (pkc_batch_builder_finish(&b, &out, &out_len) != PKC_OK)
            abort();
        if (pkc_records_iter_init(&it2, out, out_len, NULL) != PKC_OK)
            abort();
        while ((rc = pkc_records_next(&it2, &rec)) == 1) {
            int32_t nh;
            d2 = digest_record(d2, &rec, hdrs, &nh);
            n2++;
        }
        if (rc != 0 || n2 != n1 || d2 != d1 || it2.truncated)
            abort();
        pkc_records_iter_free(&it2);
    }
    pkc_batch_builder_free(&b);
    pkc_arena_free(&arena);
    return 0;
}
