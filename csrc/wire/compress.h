/*
 * compress.h - Kafka's record-batch compression codecs (Python-free).
 *
 * Codec ids are the values of the RecordBatch attributes bits 0-2 (and of
 * pykafka_c.common.CompressionType): 0 none, 1 gzip, 2 snappy, 3 lz4,
 * 4 zstd.  gzip uses zlib (always built); snappy, lz4 and zstd use the
 * system libraries when the build found them (PKC_HAVE_SNAPPY, _LZ4,
 * _ZSTD); otherwise these functions return PKC_ERR_CODEC.
 *
 * Both directions append to a pkc_writer.  Decompression never writes more
 * than out->max bytes in total: a larger result fails with
 * PKC_ERR_TOO_LARGE (a decompression bomb), and output just under the cap
 * succeeds.  Corrupt or truncated input fails with PKC_ERR_COMPRESSION.
 * The functions hold no global state and are safe to call from any thread
 * without the GIL.
 *
 * Framing (what Kafka and its clients write, and what is accepted):
 *  - gzip: RFC 1952 members; concatenated members are accepted.
 *  - snappy: writes xerial framing (as the Java client does); reads both
 *    xerial framing and a plain raw snappy block (as librdkafka writes).
 *  - lz4: LZ4 frame format with independent blocks (Kafka refuses linked
 *    blocks), 64 KiB blocks, no content checksum on write; reads any valid
 *    frame (content size, block/content checksums allowed).
 *  - zstd: standard frames; reads frames with or without a content size.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

enum {
    PKC_CODEC_NONE = 0,
    PKC_CODEC_GZIP = 1,
    PKC_CODEC_SNAPPY = 2,
    PKC_CODEC_LZ4 = 3,
    PKC_CODEC_ZSTD = 4
};

/* 1 if `codec` is usable in this build, 0 if not (or unknown id). */
int pkc_codec_available(int codec);

/* "none", "gzip", "snappy", "lz4", "zstd", or "unknown". */
const char *pkc_codec_name(int codec);

/* Append the compressed form of in[0..len) to `out`.  `level` is the codec's
 * compression level, or -1 for Kafka's default.  Returns a pkc_status. */
int pkc_compress(int codec, const uint8_t *in, size_t len, int level,
                 pkc_writer *out);

/* Append the decompressed form of in[0..len) to `out`, never growing `out`
 * past out->max bytes.  Returns a pkc_status. */
int pkc_decompress(int codec, const uint8_t *in, size_t len, pkc_writer *out);
