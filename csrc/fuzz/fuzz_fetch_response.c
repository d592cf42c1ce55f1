/*
 * fuzz_fetch_response.c - libFuzzer target for the Fetch codec's answer
 * parser (pkc_fetch_parse in fetch_codec.c): the FetchResponse walk of
 * the proto tables with the codec's visitor, and the records decoding of
 * every answered partition (CRC, decompression, control batches,
 * read_committed), as the fetch engine decodes its answers.
 *
 * Input layout:
 *   byte 0   Fetch version, 4 + (b % 9): v4..v12
 *   byte 1   bit 0: read_committed; bit 1: skip CRC checks
 *   byte 2   partitions requested, 1 + (b & 3): ids 0..n-1
 *   byte 3.. one byte per requested partition: its fetch offset
 *   rest     the answer body (after the response header)
 * The records of each answered partition are read back in the callback
 * (key, value and headers walked), so views into the input or the arena
 * are all touched under ASan.
 *
 * Run with scripts/fuzz.sh 60 fetch_response (seeds in
 * csrc/fuzz/corpus/fetch_response/).
 */
#include "buf.h"
#include "fetch_codec.h"
#include "records.h"

#include <stdint.h>
#include <string.h>

static int
touch(void *ctx, const pkc_fetch_part_result *r)
{
    volatile uint8_t sink = 0;

    (void)ctx;
    for (size_t i = 0; i < r->n_recs; i++) {
        const pkc_record *rec = &r->recs[i];
        pkc_header_iter hi;
        pkc_slice k, v;
        if (rec->key.len > 0)
            sink ^= rec->key.ptr[rec->key.len - 1];
        if (rec->value.len > 0)
            sink ^= rec->value.ptr[0] ^ rec->value.ptr[rec->value.len - 1];
        pkc_record_headers_init(&hi, rec);
        while (pkc_record_headers_next(&hi, &k, &v) == 1) {
            if (k.len > 0)
                sink ^= k.ptr[0];
            if (v.len > 0)
                sink ^= v.ptr[v.len - 1];
        }
    }
    (void)sink;
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pkc_fetch_partition parts[4];
    pkc_fetch_request req;
    char err[384];
    size_t n;
    int version;

    if (size < 4)
        return 0;
    version = 4 + data[0] % 9;
    n = 1 + (data[2] & 3);
    if (size < 3 + n)
        return 0;
    memset(&req, 0, sizeof(req));
    req.topic = "t";
    req.topic_len = 1;
    req.isolation_level = data[1] & 1;
    for (size_t i = 0; i < n; i++) {
        parts[i].partition = (int32_t)i;
        parts[i].leader_epoch = -1;
        parts[i].fetch_offset = data[3 + i];
    }
    req.parts = parts;
    req.n_parts = n;
    pkc_fetch_parse(&req, version, data + 3 + n, size - 3 - n,
                    !(data[1] & 2), touch, NULL, err, sizeof(err));
    return 0;
}
