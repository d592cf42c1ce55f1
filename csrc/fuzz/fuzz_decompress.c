/*
 * fuzz_decompress.c - libFuzzer target for pkc_decompress (compress.c).
 *
 * Input: one control byte, then the compressed bytes.  Control bits 0-2
 * pick the codec id (0-4 are the codecs, 5-7 unknown ids); bits 3-5 pick
 * the output cap, 1 MiB >> (2 * n), so the cap boundary is explored too;
 * bit 6 makes the re-compression below run one byte short of its size.
 * Seeds (csrc/fuzz/corpus/decompress/) start with the codec id and thus
 * use the 1 MiB cap.
 *
 * Checks beyond the sanitizers: the status is one the contract allows, the
 * output never exceeds the cap (neither its length nor the capacity
 * allocated for it), and whatever decodes survives a compress/decompress
 * round trip; compressing into a writer capped at exactly the result's size
 * gives the same bytes, one byte less gives PKC_ERR_TOO_LARGE.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "compress.h"

#define FUZZ_MAX_CAP ((size_t)1 << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pkc_writer out, again, back, capped;
    size_t cap;
    int codec, st, short_by;

    if (size < 1)
        return 0;
    codec = data[0] & 7;
    cap = FUZZ_MAX_CAP >> (2 * ((data[0] >> 3) & 7));
    short_by = (data[0] >> 6) & 1;
    data++;
    size--;

    pkc_writer_init(&out, 0, 0);
    out.max = cap;
    st = pkc_decompress(codec, data, size, &out);
    if (out.len > cap || out.cap > cap)
        abort();
    switch (st) {
    case PKC_OK:
    case PKC_ERR_TOO_LARGE:
    case PKC_ERR_COMPRESSION:
    case PKC_ERR_NOMEM:
        if (codec > PKC_CODEC_ZSTD || !pkc_codec_available(codec))
            abort();
        break;
    case PKC_ERR_UNSUPPORTED:
        if (codec <= PKC_CODEC_ZSTD)
            abort();
        break;
    case PKC_ERR_CODEC:
        if (pkc_codec_available(codec))
            abort();
        break;
    default:
        abort();
    }
    if (st == PKC_OK) {
        pkc_writer_init(&again, 0, 0);
        if (pkc_compress(codec, out.buf, out.len, -1, &again) != PKC_OK)
            abort();
        pkc_writer_init(&back, 0, 0);
        back.max = out.len;
        if (pkc_decompress(codec, again.buf, again.len, &back) != PKC_OK ||
            back.len != out.len ||
            (out.len && memcmp(back.buf, out.buf, out.len) != 0))
            abort();
        if (again.len == 0)
            short_by = 0;
        pkc_writer_init(&capped, 0, 0);
        capped.max = again.len - (size_t)short_by;
        st = pkc_compress(codec, out.buf, out.len, -1, &capped);
        if (short_by ? st != PKC_ERR_TOO_LARGE
                     : (st != PKC_OK || capped.len != again.len ||
                        (again.len &&
                         memcmp(capped.buf, again.buf, again.len) != 0)))
            abort();
        if (capped.cap > capped.max)
            abort();
        pkc_writer_free(&capped);
        pkc_writer_free(&back);
        pkc_writer_free(&again);
    }
    pkc_writer_free(&out);
    return 0;
}
