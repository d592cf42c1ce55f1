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
 *  - gzip: RFC 1952 members; concatenated members are accepted.  Bytes
 *    after the last member that are not another member are corrupt data
 *    (Java's GZIPInputStream would ignore them).
 *  - snappy: writes xerial framing (as the Java client does); reads both
 *    xerial framing (concatenated xerial streams too) and a plain raw
 *    snappy block (as librdkafka writes).
 *  - lz4: LZ4 frame format with independent blocks (Kafka refuses linked
 *    blocks), 64 KiB blocks, no content size, no checksums on write; reads
 *    any valid frame (content size, block/content checksums, linked blocks,
 *    skippable frames, several frames), and also frames whose header
 *    checksum was computed over the magic number too, as old Kafka clients
 *    wrote them (magic-0 message sets).
 *  - zstd: standard frames; reads frames with or without a content size and
 *    several frames.  Windows up to 128 MiB (zstd's default limit).
 *
 * Memory: a decompression never holds more than out->max bytes of output,
 * and sizes a stream claims (xerial chunk lengths, the raw-snappy length
 * prefix, LZ4 and zstd content sizes) are checked against the cap before
 * any allocation; a claim over the cap is PKC_ERR_TOO_LARGE at once.  The
 * codec libraries add bounded working memory (LZ4 blocks up to 4 MiB; a
 * zstd window, of which only as much is touched as the output needs).
 *
 * Statuses: PKC_OK; PKC_ERR_TOO_LARGE (result over out->max);
 * PKC_ERR_COMPRESSION (corrupt or truncated input, or a frame this code
 * does not support); PKC_ERR_CODEC (codec not in this build);
 * PKC_ERR_UNSUPPORTED (unknown codec id); PKC_ERR_INVALID (compression
 * level out of range); PKC_ERR_NOMEM.  A writer already in error is left
 * untouched and its status returned.
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
 * compression level as Kafka's compression.<codec>.level takes it, or -1
 * for Kafka's default: gzip 1..9 (default zlib's 6), lz4 1..17 (default 9,
 * which Kafka runs as the fast compressor; others are LZ4HC levels), zstd
 * ZSTD_minCLevel()..22 (default 3); none and snappy ignore it.  A result
 * that would not fit out->max is PKC_ERR_TOO_LARGE.  Returns a pkc_status. */
int pkc_compress(int codec, const uint8_t *in, size_t len, int level,
                 pkc_writer *out);

/* Append the decompressed form of in[0..len) to `out`, never growing `out`
 * past out->max bytes.  Returns a pkc_status. */
int pkc_decompress(int codec, const uint8_t *in, size_t len, pkc_writer *out);

/* Append one raw snappy block of in[0..len) (the varint length and the
 * compressed elements, no xerial framing: what librdkafka and pykafka's
 * default write).  PKC_ERR_CODEC when snappy is not built; a result that
 * would not fit out->max is PKC_ERR_TOO_LARGE.  Returns a pkc_status. */
int pkc_snappy_compress_raw(const uint8_t *in, size_t len, pkc_writer *out);
