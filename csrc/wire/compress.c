/*
 * compress.c - Kafka's record-batch codecs over zlib, libsnappy, liblz4 and
 * libzstd (see compress.h for the contract).
 *
 * Output bounding, the rule every decoder below follows: before growing
 * `out` it asks for at most room(out) = out->max - out->len bytes, so the
 * writer never holds more than its cap.  When the cap is reached while the
 * stream may still have output, the decoder asks its library for one more
 * byte into a one-byte scratch buffer: a byte means the result is too large
 * (PKC_ERR_TOO_LARGE); the end of the stream means the result fits exactly.
 * Sizes that a stream claims (xerial chunk lengths, the raw-snappy length
 * prefix, LZ4 and zstd content sizes) are checked against the room before
 * anything is allocated for them; they are used only as allocation hints.
 *
 * Nothing here keeps global state: every call makes and frees its own codec
 * context, so the functions are reentrant and need no GIL.
 */
#include "compress.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#ifdef PKC_HAVE_SNAPPY
#include <snappy-c.h>
#endif
#ifdef PKC_HAVE_LZ4
#include <lz4frame.h>
#endif
#ifdef PKC_HAVE_ZSTD
#include <zstd.h>
#include <zstd_errors.h>
#endif

/* Output grows in steps of at least this much (the writer itself doubles
 * its capacity, so the number of reallocations stays logarithmic). */
#define PKC_DECOMP_STEP ((size_t)64 * 1024)

/* Bytes `w` may still grow by.  w->len never exceeds w->max. */
static size_t
room(const pkc_writer *w)
{
    return w->len < w->max ? w->max - w->len : 0;
}

/*
 * Make room for the next piece of decoder output: reserve `want` bytes
 * (clamped to [PKC_DECOMP_STEP, room]) unless some capacity is already
 * free.  Returns the number of bytes the decoder may write at
 * w->buf + w->len (never more than room), or 0 when the cap is reached or
 * on a writer error (then *status is set).
 */
static size_t
out_space(pkc_writer *w, size_t want, int *status)
{
    size_t r = room(w), free_cap;

    *status = PKC_OK;
    if (r == 0)
        return 0;
    free_cap = w->cap - w->len;
    if (free_cap == 0) {
        if (want < PKC_DECOMP_STEP)
            want = PKC_DECOMP_STEP;
        if (want > r)
            want = r;
        *status = pkc_writer_reserve(w, want);
        if (*status != PKC_OK)
            return 0;
        free_cap = w->cap - w->len;
    }
    return free_cap < r ? free_cap : r;
}

/* -------------------------------------------------------------- none */

static int
none_decompress(const uint8_t *in, size_t len, pkc_writer *out)
{
    if (len > room(out))
        return PKC_ERR_TOO_LARGE;
    pkc_write_raw(out, in, len);
    return out->status;
}

/* -------------------------------------------------------------- gzip */

/* Kafka's gzip levels: Deflater.DEFAULT_COMPRESSION (-1, zlib's 6) or
 * 1..9. */
static int
gzip_compress(const uint8_t *in, size_t len, int level, pkc_writer *out)
{
    z_stream zs;
    size_t left = len;
    int rc, flush, status = PKC_OK;

    if (level != -1 && (level < 1 || level > 9))
        return PKC_ERR_INVALID;
    memset(&zs, 0, sizeof(zs));
    /* windowBits 15 + 16: a gzip (RFC 1952) wrapper, not zlib's. */
    rc = deflateInit2(&zs, level == -1 ? Z_DEFAULT_COMPRESSION : level,
                      Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
    if (rc != Z_OK)
        return rc == Z_MEM_ERROR ? PKC_ERR_NOMEM : PKC_ERR_COMPRESSION;
    zs.next_in = (Bytef *)(uintptr_t)in;
    /* One reservation that fits the whole result in the normal case. */
    if (pkc_writer_reserve(out, (size_t)deflateBound(&zs, (uLong)len)))
        goto done;
    for (;;) {
        size_t space;

        if (zs.avail_in == 0 && left > 0) {
            uInt n = left > UINT_MAX ? UINT_MAX : (uInt)left;
            zs.avail_in = n;
            left -= n;
        }
        flush = left == 0 ? Z_FINISH : Z_NO_FLUSH;
        space = out->cap - out->len;
        if (space == 0) {
            if (pkc_writer_reserve(out, PKC_DECOMP_STEP))
                goto done;
            space = out->cap - out->len;
        }
        zs.next_out = out->buf + out->len;
        zs.avail_out = space > UINT_MAX ? UINT_MAX : (uInt)space;
        rc = deflate(&zs, flush);
        out->len += (size_t)(zs.next_out - (out->buf + out->len));
        if (rc == Z_STREAM_END)
            break;
        if (rc != Z_OK && rc != Z_BUF_ERROR) {
            status = PKC_ERR_COMPRESSION;
            goto done;
        }
    }
done:
    deflateEnd(&zs);
    if (status == PKC_OK)
        status = out->status;
    return status;
}

/*
 * One inflate() call into the writer, or into a one-byte scratch buffer
 * when the cap is reached (then *overflow is set if a byte came out).
 * Returns zlib's code; a writer failure is reported through *status.
 */
static int
gzip_inflate_step(z_stream *zs, pkc_writer *out, size_t hint, int *status,
                  int *overflow)
{
    uint8_t scratch[1];
    size_t space = out_space(out, hint, status);
    int rc;

    *overflow = 0;
    if (*status != PKC_OK)
        return Z_MEM_ERROR;
    if (space == 0) {
        zs->next_out = scratch;
        zs->avail_out = 1;
        rc = inflate(zs, Z_NO_FLUSH);
        if (zs->avail_out == 0)
            *overflow = 1;
        return rc;
    }
    zs->next_out = out->buf + out->len;
    zs->avail_out = space > UINT_MAX ? UINT_MAX : (uInt)space;
    rc = inflate(zs, Z_NO_FLUSH);
    out->len += (size_t)(zs->next_out - (out->buf + out->len));
    return rc;
}

/* gzip members, one after another; anything after the last member that is
 * not another complete member is corrupt data. */
static int
gzip_decompress(const uint8_t *in, size_t len, pkc_writer *out)
{
    z_stream zs;
    size_t left = len;
    size_t hint = len < SIZE_MAX / 4 ? len * 4 : len;
    int rc, status = PKC_OK, overflow;

    if (len == 0)
        return PKC_ERR_COMPRESSION;
    memset(&zs, 0, sizeof(zs));
    rc = inflateInit2(&zs, 15 + 16);
    if (rc != Z_OK)
        return rc == Z_MEM_ERROR ? PKC_ERR_NOMEM : PKC_ERR_COMPRESSION;
    zs.next_in = (Bytef *)(uintptr_t)in;
    for (;;) {
        if (zs.avail_in == 0 && left > 0) {
            uInt n = left > UINT_MAX ? UINT_MAX : (uInt)left;
            zs.avail_in = n;
            left -= n;
        }
        rc = gzip_inflate_step(&zs, out, hint, &status, &overflow);
        if (status != PKC_OK)
            goto done;
        if (overflow) {
            status = PKC_ERR_TOO_LARGE;
            goto done;
        }
        if (rc == Z_STREAM_END) {
            if (zs.avail_in == 0 && left == 0)
                break; /* the last member ended with the input */
            /* Another member follows. */
            if (inflateReset(&zs) != Z_OK) {
                status = PKC_ERR_COMPRESSION;
                goto done;
            }
            continue;
        }
        if (rc == Z_OK)
            continue;
        if (rc == Z_BUF_ERROR) {
            /* No progress possible: either output space (handled by the
             * next step) or the input ran out inside a member. */
            if (zs.avail_in == 0 && left == 0) {
                status = PKC_ERR_COMPRESSION; /* truncated */
                goto done;
            }
            continue;
        }
        status = rc == Z_MEM_ERROR ? PKC_ERR_NOMEM : PKC_ERR_COMPRESSION;
        goto done;
    }
done:
    inflateEnd(&zs);
    return status;
}

/* ------------------------------------------------------------ snappy */

#ifdef PKC_HAVE_SNAPPY

/* snappy-java's SnappyOutputStream framing ("xerial"). */
static const uint8_t xerial_magic[8] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0};
#define XERIAL_HEADER_SIZE 16
#define XERIAL_VERSION 1
#define XERIAL_COMPAT 1
#define XERIAL_BLOCK ((size_t)32 * 1024)

static int
snappy_compress_xerial(const uint8_t *in, size_t len, pkc_writer *out)
{
    size_t pos = 0;

    pkc_write_raw(out, xerial_magic, sizeof(xerial_magic));
    pkc_write_i32(out, XERIAL_VERSION);
    pkc_write_i32(out, XERIAL_COMPAT);
    while (pos < len && out->status == PKC_OK) {
        size_t n = len - pos < XERIAL_BLOCK ? len - pos : XERIAL_BLOCK;
        size_t bound = snappy_max_compressed_length(n);
        size_t at, clen = bound;

        at = pkc_write_i32(out, 0); /* chunk length, patched below */
        if (pkc_writer_reserve(out, bound))
            break;
        if (snappy_compress((const char *)in + pos, n,
                            (char *)out->buf + out->len, &clen) != SNAPPY_OK)
            return PKC_ERR_COMPRESSION;
        out->len += clen;
        pkc_patch_i32(out, at, (int32_t)clen);
        pos += n;
    }
    return out->status;
}

/* One raw snappy block; its length prefix is checked against the room
 * before any allocation. */
static int
snappy_decompress_raw(const uint8_t *in, size_t len, pkc_writer *out)
{
    size_t n, got;

    if (snappy_uncompressed_length((const char *)in, len, &n) != SNAPPY_OK)
        return PKC_ERR_COMPRESSION;
    if (n > room(out))
        return PKC_ERR_TOO_LARGE;
    if (n == 0) {
        /* An empty block is just its length byte. */
        return len == 1 ? PKC_OK : PKC_ERR_COMPRESSION;
    }
    if (pkc_writer_reserve(out, n))
        return out->status;
    got = n;
    if (snappy_uncompress((const char *)in, len, (char *)out->buf + out->len,
                          &got) != SNAPPY_OK || got != n)
        return PKC_ERR_COMPRESSION;
    out->len += n;
    return PKC_OK;
}

/*
 * xerial framing: a 16-byte header, then [int32 BE length][raw block]
 * chunks to the end of the input.  As snappy-java does, a header found
 * where a chunk length is expected starts a concatenated stream (its first
 * four bytes read as a negative length, so they cannot be a real one).
 */
static int
snappy_decompress_xerial(const uint8_t *in, size_t len, pkc_writer *out)
{
    pkc_reader r;
    int32_t version, compat, clen;
    pkc_slice chunk;
    int status;

    pkc_reader_init(&r, in, len);
    while (pkc_reader_remaining(&r) > 0) {
        if (pkc_reader_remaining(&r) >= sizeof(xerial_magic) &&
            memcmp(r.pos, xerial_magic, sizeof(xerial_magic)) == 0) {
            pkc_read_skip(&r, sizeof(xerial_magic), "xerial magic");
            pkc_read_i32(&r, &version, "xerial version");
            pkc_read_i32(&r, &compat, "xerial compatible version");
            if (r.status != PKC_OK || version < XERIAL_VERSION)
                return PKC_ERR_COMPRESSION;
            continue;
        }
        if (pkc_read_i32(&r, &clen, "xerial chunk length") || clen <= 0 ||
            pkc_read_raw(&r, (size_t)clen, &chunk, "xerial chunk"))
            return PKC_ERR_COMPRESSION;
        status = snappy_decompress_raw(chunk.ptr, (size_t)chunk.len, out);
        if (status != PKC_OK)
            return status;
    }
    return PKC_OK;
}

static int
snappy_decompress_any(const uint8_t *in, size_t len, pkc_writer *out)
{
    if (len >= sizeof(xerial_magic) &&
        memcmp(in, xerial_magic, sizeof(xerial_magic)) == 0)
        return snappy_decompress_xerial(in, len, out);
    return snappy_decompress_raw(in, len, out);
}

#endif /* PKC_HAVE_SNAPPY */

/* --------------------------------------------------------------- lz4 */

#ifdef PKC_HAVE_LZ4

#define LZ4_FRAME_MAGIC 0x184D2204u

/* Kafka's lz4 levels are lz4-java's: 1..17, default 9, and Kafka maps its
 * default to the fast compressor, every other level to LZ4HC at that level
 * (liblz4 caps HC levels at LZ4HC_CLEVEL_MAX).  Returns PKC_ERR_INVALID for
 * a level out of range. */
static int
lz4_prefs(int level, LZ4F_preferences_t *prefs)
{
    if (level != -1 && (level < 1 || level > 17))
        return PKC_ERR_INVALID;
    memset(prefs, 0, sizeof(*prefs));
    prefs->frameInfo.blockSizeID = LZ4F_max64KB;
    prefs->frameInfo.blockMode = LZ4F_blockIndependent;
    prefs->frameInfo.contentChecksumFlag = LZ4F_noContentChecksum;
    prefs->frameInfo.blockChecksumFlag = LZ4F_noBlockChecksum;
    prefs->frameInfo.contentSize = 0; /* not written, as Kafka does */
    prefs->compressionLevel = (level == -1 || level == 9) ? 0 : level;
    prefs->autoFlush = 1;
    return PKC_OK;
}

static int
lz4_compress(const uint8_t *in, size_t len, int level, pkc_writer *out)
{
    LZ4F_preferences_t prefs;
    size_t bound, n;

    if (lz4_prefs(level, &prefs) != PKC_OK)
        return PKC_ERR_INVALID;
    bound = LZ4F_compressFrameBound(len, &prefs);
    if (pkc_writer_reserve(out, bound))
        return out->status;
    n = LZ4F_compressFrame(out->buf + out->len, bound, in, len, &prefs);
    if (LZ4F_isError(n))
        return PKC_ERR_COMPRESSION;
    out->len += n;
    return PKC_OK;
}

/* xxHash32 (seed 0), for the LZ4 frame header checksum: the public
 * algorithm, little-endian lanes. */
#define XXH_P1 0x9E3779B1u
#define XXH_P2 0x85EBCA77u
#define XXH_P3 0xC2B2AE3Du
#define XXH_P4 0x27D4EB2Fu
#define XXH_P5 0x165667B1u

static uint32_t
xxh_rotl(uint32_t x, int r)
{
    return (x << r) | (x >> (32 - r));
}

static uint32_t
xxh_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

static uint32_t
xxh_round(uint32_t acc, uint32_t lane)
{
    return xxh_rotl(acc + lane * XXH_P2, 13) * XXH_P1;
}

static uint32_t
pkc_xxh32(const uint8_t *p, size_t len)
{
    const uint8_t *end = p + len;
    uint32_t h;

    if (len >= 16) {
        uint32_t v1 = XXH_P1 + XXH_P2, v2 = XXH_P2, v3 = 0, v4 = 0u - XXH_P1;
        while ((size_t)(end - p) >= 16) {
            v1 = xxh_round(v1, xxh_le32(p));
            v2 = xxh_round(v2, xxh_le32(p + 4));
            v3 = xxh_round(v3, xxh_le32(p + 8));
            v4 = xxh_round(v4, xxh_le32(p + 12));
            p += 16;
        }
        h = xxh_rotl(v1, 1) + xxh_rotl(v2, 7) + xxh_rotl(v3, 12) +
            xxh_rotl(v4, 18);
    }
    else {
        h = XXH_P5;
    }
    h += (uint32_t)len;
    while ((size_t)(end - p) >= 4) {
        h = xxh_rotl(h + xxh_le32(p) * XXH_P3, 17) * XXH_P4;
        p += 4;
    }
    while (p < end) {
        h = xxh_rotl(h + (uint32_t)(*p) * XXH_P5, 11) * XXH_P1;
        p++;
    }
    h ^= h >> 15;
    h *= XXH_P2;
    h ^= h >> 13;
    h *= XXH_P3;
    h ^= h >> 16;
    return h;
}

/*
 * Parse the header of the LZ4 frame at in[0..len) into hdr (a copy with a
 * correct header checksum) and its length.  Kafka clients before 0.10 (and
 * Kafka for magic-0 message sets) computed the header checksum over the
 * magic number too; such a header is accepted by repairing the copy.
 * Returns PKC_OK, or PKC_ERR_COMPRESSION for anything LZ4F should reject
 * itself (then the caller passes the input through unchanged).
 */
static int
lz4_header_copy(const uint8_t *in, size_t len, uint8_t hdr[LZ4F_HEADER_SIZE_MAX],
                size_t *hlen)
{
    pkc_reader r;
    int8_t flg, bd, hc;
    uint8_t good, broken;
    size_t n;

    pkc_reader_init(&r, in, len);
    pkc_read_skip(&r, 4, "lz4 magic");
    pkc_read_i8(&r, &flg, "lz4 FLG");
    pkc_read_i8(&r, &bd, "lz4 BD");
    pkc_read_skip(&r, (((uint8_t)flg & 0x08) ? 8 : 0) +
                      (((uint8_t)flg & 0x01) ? 4 : 0),
                  "lz4 content size / dictionary id");
    n = pkc_reader_offset(&r);
    pkc_read_i8(&r, &hc, "lz4 header checksum");
    if (r.status != PKC_OK || n + 1 > LZ4F_HEADER_SIZE_MAX)
        return PKC_ERR_COMPRESSION;
    good = (uint8_t)(pkc_xxh32(in + 4, n - 4) >> 8);
    broken = (uint8_t)(pkc_xxh32(in, n) >> 8);
    if ((uint8_t)hc != good && (uint8_t)hc != broken)
        return PKC_ERR_COMPRESSION;
    memcpy(hdr, in, n);
    hdr[n] = good;
    *hlen = n + 1;
    return PKC_OK;
}

/*
 * Frames one after another (skippable frames included); linked or
 * independent blocks, with or without content size and checksums (which
 * liblz4 verifies).
 */
static int
lz4_decompress(const uint8_t *in, size_t len, pkc_writer *out)
{
    LZ4F_dctx *dctx = NULL;
    LZ4F_frameInfo_t info;
    size_t pos = 0, hint = PKC_DECOMP_STEP, ret = 1;
    int status = PKC_OK, frame_start = 1;

    if (len == 0)
        return PKC_ERR_COMPRESSION;
    if (LZ4F_isError(LZ4F_createDecompressionContext(&dctx, LZ4F_VERSION)))
        return PKC_ERR_NOMEM;
    while (pos < len) {
        uint8_t scratch[1];
        size_t space, dst_size, src_size;
        uint8_t *dst;

        if (frame_start && len - pos >= 4 &&
            xxh_le32(in + pos) == LZ4_FRAME_MAGIC) {
            /* Read the header ourselves (see lz4_header_copy) to learn the
             * content size before decoding anything. */
            uint8_t hdr[LZ4F_HEADER_SIZE_MAX];
            size_t hlen = 0;

            if (lz4_header_copy(in + pos, len - pos, hdr, &hlen) == PKC_OK) {
                size_t used = hlen;
                ret = LZ4F_getFrameInfo(dctx, &info, hdr, &used);
                if (LZ4F_isError(ret) || used != hlen) {
                    status = PKC_ERR_COMPRESSION;
                    goto done;
                }
                pos += hlen;
                if (info.contentSize > room(out)) {
                    status = PKC_ERR_TOO_LARGE;
                    goto done;
                }
                hint = info.contentSize ? (size_t)info.contentSize
                                        : PKC_DECOMP_STEP;
                frame_start = 0;
                continue;
            }
            /* Otherwise let LZ4F report the bad header below. */
        }
        space = out_space(out, hint, &status);
        if (status != PKC_OK)
            goto done;
        if (space == 0) {
            dst = scratch;
            dst_size = 1;
        }
        else {
            dst = out->buf + out->len;
            dst_size = space;
        }
        src_size = len - pos;
        space = dst_size;
        ret = LZ4F_decompress(dctx, dst, &dst_size, in + pos, &src_size, NULL);
        if (LZ4F_isError(ret)) {
            status = PKC_ERR_COMPRESSION;
            goto done;
        }
        pos += src_size;
        if (dst == scratch) {
            if (dst_size > 0) {
                status = PKC_ERR_TOO_LARGE;
                goto done;
            }
        }
        else {
            out->len += dst_size;
        }
        frame_start = ret == 0;
        if (ret != 0 && pos == len && dst_size < space) {
            status = PKC_ERR_COMPRESSION; /* input ended inside a frame */
            goto done;
        }
    }
    /* The input ended; every frame must have been complete, and one more
     * call flushes what a frame with a full output buffer still holds. */
    while (!frame_start) {
        uint8_t scratch[1];
        size_t space = out_space(out, hint, &status), dst_size, src_size = 0;
        uint8_t *dst = space ? out->buf + out->len : scratch;

        if (status != PKC_OK)
            goto done;
        dst_size = space ? space : 1;
        space = dst_size;
        ret = LZ4F_decompress(dctx, dst, &dst_size, in + pos, &src_size, NULL);
        if (LZ4F_isError(ret)) {
            status = PKC_ERR_COMPRESSION;
            goto done;
        }
        if (dst == scratch && dst_size > 0) {
            status = PKC_ERR_TOO_LARGE;
            goto done;
        }
        if (dst != scratch)
            out->len += dst_size;
        frame_start = ret == 0;
        if (!frame_start && dst_size < space) {
            status = PKC_ERR_COMPRESSION;
            goto done;
        }
    }
done:
    LZ4F_freeDecompressionContext(dctx);
    return status;
}

#endif /* PKC_HAVE_LZ4 */

/* -------------------------------------------------------------- zstd */

#ifdef PKC_HAVE_ZSTD

/* The largest window a frame may ask for: zstd's own default limit
 * (ZSTD_WINDOWLOG_LIMIT_DEFAULT, 128 MiB).  It covers every level the Java
 * client offers (level-22 streams declare exactly 128 MiB); larger windows
 * need zstd's --long mode and are refused as unsupported. */
#define PKC_ZSTD_WINDOWLOG_LIMIT 27

/* Kafka's zstd levels: ZSTD_minCLevel()..22, default 3. */
static int
zstd_compress(const uint8_t *in, size_t len, int level, pkc_writer *out)
{
    ZSTD_CCtx *cctx;
    size_t bound, n;
    int status = PKC_OK;

    if (level == -1)
        level = 3;
    else if (level < ZSTD_minCLevel() || level > ZSTD_maxCLevel())
        return PKC_ERR_INVALID;
    bound = ZSTD_compressBound(len);
    if (ZSTD_isError(bound))
        return PKC_ERR_TOO_LARGE;
    if (pkc_writer_reserve(out, bound))
        return out->status;
    cctx = ZSTD_createCCtx();
    if (cctx == NULL)
        return PKC_ERR_NOMEM;
    n = ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level);
    if (!ZSTD_isError(n))
        n = ZSTD_compress2(cctx, out->buf + out->len, bound, in, len);
    if (ZSTD_isError(n))
        status = ZSTD_getErrorCode(n) == ZSTD_error_memory_allocation
                     ? PKC_ERR_NOMEM
                     : PKC_ERR_COMPRESSION;
    else
        out->len += n;
    ZSTD_freeCCtx(cctx);
    return status;
}

static int
zstd_status(size_t ret)
{
    return ZSTD_getErrorCode(ret) == ZSTD_error_memory_allocation
               ? PKC_ERR_NOMEM
               : PKC_ERR_COMPRESSION;
}

/*
 * Frames one after another, with or without a content size (the Java
 * client's streaming encoder does not record it).  A first frame that
 * declares a content size larger than the room is refused before anything
 * is decoded.  Memory: the streaming decoder keeps a window buffer of
 * min(window size, content size) bytes.  For a frame without a content
 * size that is the declared window (at most 128 MiB) - malloc'd address
 * space of which only as much is touched as the frame outputs; the output
 * stops at the cap, so a bomb still costs about the cap.
 */
static int
zstd_decompress(const uint8_t *in, size_t len, pkc_writer *out)
{
    ZSTD_DStream *ds = NULL;
    ZSTD_inBuffer src = {in, len, 0};
    unsigned long long fcs;
    size_t hint = PKC_DECOMP_STEP, ret;
    int status = PKC_OK;

    if (len == 0)
        return PKC_ERR_COMPRESSION;
    fcs = ZSTD_getFrameContentSize(in, len);
    if (fcs == ZSTD_CONTENTSIZE_ERROR)
        return PKC_ERR_COMPRESSION;
    if (fcs != ZSTD_CONTENTSIZE_UNKNOWN) {
        if (fcs > room(out))
            return PKC_ERR_TOO_LARGE;
        hint = (size_t)fcs;
    }
    ds = ZSTD_createDStream();
    if (ds == NULL)
        return PKC_ERR_NOMEM;
    ret = ZSTD_DCtx_setParameter(ds, ZSTD_d_windowLogMax,
                                 PKC_ZSTD_WINDOWLOG_LIMIT);
    if (ZSTD_isError(ret)) {
        status = PKC_ERR_COMPRESSION;
        goto done;
    }
    for (;;) {
        uint8_t scratch[1];
        ZSTD_outBuffer dst;
        size_t space = out_space(out, hint, &status);

        if (status != PKC_OK)
            goto done;
        if (space == 0) {
            dst.dst = scratch;
            dst.size = 1;
        }
        else {
            dst.dst = out->buf + out->len;
            dst.size = space;
        }
        dst.pos = 0;
        ret = ZSTD_decompressStream(ds, &dst, &src);
        if (ZSTD_isError(ret)) {
            status = zstd_status(ret);
            goto done;
        }
        if (dst.dst == scratch) {
            if (dst.pos > 0) {
                status = PKC_ERR_TOO_LARGE;
                goto done;
            }
        }
        else {
            out->len += dst.pos;
        }
        if (ret == 0 && src.pos == src.size)
            break; /* last frame complete and flushed */
        if (ret != 0 && src.pos == src.size && dst.pos < dst.size) {
            status = PKC_ERR_COMPRESSION; /* input ended inside a frame */
            goto done;
        }
    }
done:
    ZSTD_freeDStream(ds);
    return status;
}

#endif /* PKC_HAVE_ZSTD */

/* ------------------------------------------------------------ public */

int
pkc_codec_available(int codec)
{
    switch (codec) {
    case PKC_CODEC_NONE:
    case PKC_CODEC_GZIP:
        return 1;
    case PKC_CODEC_SNAPPY:
#ifdef PKC_HAVE_SNAPPY
        return 1;
#else
        return 0;
#endif
    case PKC_CODEC_LZ4:
#ifdef PKC_HAVE_LZ4
        return 1;
#else
        return 0;
#endif
    case PKC_CODEC_ZSTD:
#ifdef PKC_HAVE_ZSTD
        return 1;
#else
        return 0;
#endif
    default:
        return 0;
    }
}

const char *
pkc_codec_name(int codec)
{
    switch (codec) {
    case PKC_CODEC_NONE: return "none";
    case PKC_CODEC_GZIP: return "gzip";
    case PKC_CODEC_SNAPPY: return "snappy";
    case PKC_CODEC_LZ4: return "lz4";
    case PKC_CODEC_ZSTD: return "zstd";
    default: return "unknown";
    }
}

/* An upper bound of the compressed size of `len` bytes: what the codec
 * functions above reserve.  SIZE_MAX if it does not fit a size_t; 0 for a
 * codec that is unknown or not built. */
static size_t
compress_bound(int codec, size_t len, int level)
{
    if (len > SIZE_MAX / 4)
        return SIZE_MAX;
    switch (codec) {
    case PKC_CODEC_GZIP:
        /* zlib's bound is for its 6-byte wrapper; gzip's is 18 bytes. */
        return (size_t)compressBound((uLong)len) + 18;
#ifdef PKC_HAVE_SNAPPY
    case PKC_CODEC_SNAPPY: {
        size_t full = len / XERIAL_BLOCK, rest = len % XERIAL_BLOCK;
        return XERIAL_HEADER_SIZE +
               full * (4 + snappy_max_compressed_length(XERIAL_BLOCK)) +
               (rest ? 4 + snappy_max_compressed_length(rest) : 0);
    }
#endif
#ifdef PKC_HAVE_LZ4
    case PKC_CODEC_LZ4: {
        LZ4F_preferences_t prefs;
        if (lz4_prefs(level, &prefs) != PKC_OK)
            return 0;
        return LZ4F_compressFrameBound(len, &prefs);
    }
#endif
#ifdef PKC_HAVE_ZSTD
    case PKC_CODEC_ZSTD: {
        size_t b = ZSTD_compressBound(len);
        return ZSTD_isError(b) ? SIZE_MAX : b;
    }
#endif
    default:
        (void)level;
        return 0;
    }
}

static int
compress_into(int codec, const uint8_t *in, size_t len, int level,
              pkc_writer *out)
{
    switch (codec) {
    case PKC_CODEC_NONE:
        pkc_write_raw(out, in, len);
        return out->status;
    case PKC_CODEC_GZIP:
        return gzip_compress(in, len, level, out);
    case PKC_CODEC_SNAPPY:
#ifdef PKC_HAVE_SNAPPY
        return snappy_compress_xerial(in, len, out);
#else
        return PKC_ERR_CODEC;
#endif
    case PKC_CODEC_LZ4:
#ifdef PKC_HAVE_LZ4
        return lz4_compress(in, len, level, out);
#else
        return PKC_ERR_CODEC;
#endif
    case PKC_CODEC_ZSTD:
#ifdef PKC_HAVE_ZSTD
        return zstd_compress(in, len, level, out);
#else
        return PKC_ERR_CODEC;
#endif
    default:
        return PKC_ERR_UNSUPPORTED;
    }
}

int
pkc_compress(int codec, const uint8_t *in, size_t len, int level,
             pkc_writer *out)
{
    pkc_writer aside;
    int status;

    if (out->status != PKC_OK)
        return out->status;
    if (compress_bound(codec, len, level) <= room(out))
        return compress_into(codec, in, len, level, out);
    /* Near the cap the worst case the codec reserves may not fit although
     * the result would: compress aside, then append if it fits. */
    pkc_writer_init(&aside, 0, 0);
    status = compress_into(codec, in, len, level, &aside);
    if (status == PKC_OK) {
        pkc_write_raw(out, aside.buf, aside.len);
        status = out->status;
    }
    pkc_writer_free(&aside);
    return status;
}

int
pkc_snappy_compress_raw(const uint8_t *in, size_t len, pkc_writer *out)
{
#ifdef PKC_HAVE_SNAPPY
    pkc_writer aside;
    size_t bound, clen;
    int status;

    if (out->status != PKC_OK)
        return out->status;
    if (len > SIZE_MAX / 4)
        return PKC_ERR_TOO_LARGE;
    bound = snappy_max_compressed_length(len);
    /* Compress into a writer of our own, so that a worst-case reservation
     * near out's cap does not fail a result that fits. */
    pkc_writer_init(&aside, 0, 0);
    if (pkc_writer_reserve(&aside, bound)) {
        status = aside.status;
        goto done;
    }
    clen = bound;
    if (snappy_compress((const char *)in, len, (char *)aside.buf,
                        &clen) != SNAPPY_OK) {
        status = PKC_ERR_COMPRESSION;
        goto done;
    }
    pkc_write_raw(out, aside.buf, clen);
    status = out->status;
done:
    pkc_writer_free(&aside);
    return status;
#else
    (void)in;
    (void)len;
    (void)out;
    return PKC_ERR_CODEC;
#endif
}

int
pkc_decompress(int codec, const uint8_t *in, size_t len, pkc_writer *out)
{
    if (out->status != PKC_OK)
        return out->status;
    switch (codec) {
    case PKC_CODEC_NONE:
        return none_decompress(in, len, out);
    case PKC_CODEC_GZIP:
        return gzip_decompress(in, len, out);
    case PKC_CODEC_SNAPPY:
#ifdef PKC_HAVE_SNAPPY
        return snappy_decompress_any(in, len, out);
#else
        return PKC_ERR_CODEC;
#endif
    case PKC_CODEC_LZ4:
#ifdef PKC_HAVE_LZ4
        return lz4_decompress(in, len, out);
#else
        return PKC_ERR_CODEC;
#endif
    case PKC_CODEC_ZSTD:
#ifdef PKC_HAVE_ZSTD
        return zstd_decompress(in, len, out);
#else
        return PKC_ERR_CODEC;
#endif
    default:
        return PKC_ERR_UNSUPPORTED;
    }
}
