/*
 * test_compress.c - plain-C unit tests of csrc/wire/compress.c.
 *
 * Built and run by tests/test_compress.py (gcc -Wall -Wextra -Werror, with
 * and without the optional codecs).  Vectors in "other producers' framing"
 * are made here with the codec libraries directly: raw snappy blocks, LZ4
 * frames with content size, checksums and linked blocks, zstd frames with
 * and without a content size, skippable frames.  Hostile headers are
 * written by hand.  Exit status 0 when every check passes.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "buf.h"
#include "compress.h"

#ifdef PKC_HAVE_SNAPPY
#include <snappy-c.h>
#endif
#ifdef PKC_HAVE_LZ4
#include <lz4frame.h>
#endif
#ifdef PKC_HAVE_ZSTD
#include <zstd.h>
#endif

static int failures;
static int checks;

#define CHECK(cond)                                                        \
    do {                                                                   \
        checks++;                                                          \
        if (!(cond)) {                                                     \
            failures++;                                                    \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,         \
                    __LINE__, #cond);                                      \
        }                                                                  \
    } while (0)

#define CHECK_STATUS(got, want)                                            \
    do {                                                                   \
        int got_ = (got), want_ = (want);                                  \
        checks++;                                                          \
        if (got_ != want_) {                                               \
            failures++;                                                    \
            fprintf(stderr, "%s:%d: %s gave %d (%s), expected %d (%s)\n",  \
                    __FILE__, __LINE__, #got, got_, pkc_status_str(got_),  \
                    want_, pkc_status_str(want_));                         \
        }                                                                  \
    } while (0)

#define MiB ((size_t)1024 * 1024)
/* compress.c grows output in steps of at least 64 KiB. */
#define PKC_DECOMP_TEST_STEP ((size_t)64 * 1024)

static const int all_codecs[] = {PKC_CODEC_NONE, PKC_CODEC_GZIP,
                                 PKC_CODEC_SNAPPY, PKC_CODEC_LZ4,
                                 PKC_CODEC_ZSTD};
#define N_CODECS (sizeof(all_codecs) / sizeof(all_codecs[0]))

/* ------------------------------------------------------------ helpers */

/* Text-like data: "record 000001 value=7919\n" lines, cut at n bytes. */
static uint8_t *
text_data(size_t n)
{
    uint8_t *p = malloc(n ? n : 1);
    size_t pos = 0;
    char line[64];

    for (unsigned i = 0; pos < n; i++) {
        int k = snprintf(line, sizeof(line), "record %06u value=%u\n", i,
                         (i * 7919u) % 100000u);
        size_t m = (size_t)k < n - pos ? (size_t)k : n - pos;
        memcpy(p + pos, line, m);
        pos += m;
    }
    return p;
}

/* Incompressible data (xorshift32). */
static uint8_t *
random_data(size_t n, uint32_t seed)
{
    uint8_t *p = malloc(n ? n : 1);
    uint32_t x = seed ? seed : 1;

    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (uint8_t)x;
    }
    return p;
}

/* Compress into a fresh writer; returns the status. */
static int
compress_new(int codec, const uint8_t *in, size_t len, int level,
             pkc_writer *w)
{
    pkc_writer_init(w, 0, 0);
    return pkc_compress(codec, in, len, level, w);
}

/* Decompress into a fresh writer capped at `cap` bytes (0 = no output). */
static int
decompress_cap(int codec, const uint8_t *in, size_t len, size_t cap,
               pkc_writer *w)
{
    pkc_writer_init(w, 0, 0);
    w->max = cap;
    return pkc_decompress(codec, in, len, w);
}

static int
same(const pkc_writer *w, const uint8_t *want, size_t n)
{
    return w->len == n && (n == 0 || memcmp(w->buf, want, n) == 0);
}

/* Append `src` to a heap buffer. */
static void
append(uint8_t **buf, size_t *len, const void *src, size_t n)
{
    *buf = realloc(*buf, *len + n + 1);
    memcpy(*buf + *len, src, n);
    *len += n;
}

/* Every strict prefix of a single-frame stream must fail cleanly. */
static void
check_prefixes_fail(int codec, const uint8_t *z, size_t zlen, size_t step)
{
    pkc_writer w;

    for (size_t cut = 0; cut < zlen; cut += step) {
        int st = decompress_cap(codec, z, cut, 16 * MiB, &w);
        if (st != PKC_ERR_COMPRESSION) {
            fprintf(stderr, "codec %d: prefix %zu of %zu gave %d\n", codec,
                    cut, zlen, st);
        }
        CHECK_STATUS(st, PKC_ERR_COMPRESSION);
        pkc_writer_free(&w);
    }
}

/* ------------------------------------------------------------- tests */

static void
test_names(void)
{
    CHECK(strcmp(pkc_codec_name(PKC_CODEC_NONE), "none") == 0);
    CHECK(strcmp(pkc_codec_name(PKC_CODEC_GZIP), "gzip") == 0);
    CHECK(strcmp(pkc_codec_name(PKC_CODEC_SNAPPY), "snappy") == 0);
    CHECK(strcmp(pkc_codec_name(PKC_CODEC_LZ4), "lz4") == 0);
    CHECK(strcmp(pkc_codec_name(PKC_CODEC_ZSTD), "zstd") == 0);
    CHECK(strcmp(pkc_codec_name(5), "unknown") == 0);
    CHECK(pkc_codec_available(PKC_CODEC_NONE) == 1);
    CHECK(pkc_codec_available(PKC_CODEC_GZIP) == 1);
#ifdef PKC_HAVE_SNAPPY
    CHECK(pkc_codec_available(PKC_CODEC_SNAPPY) == 1);
#else
    CHECK(pkc_codec_available(PKC_CODEC_SNAPPY) == 0);
#endif
#ifdef PKC_HAVE_LZ4
    CHECK(pkc_codec_available(PKC_CODEC_LZ4) == 1);
#else
    CHECK(pkc_codec_available(PKC_CODEC_LZ4) == 0);
#endif
#ifdef PKC_HAVE_ZSTD
    CHECK(pkc_codec_available(PKC_CODEC_ZSTD) == 1);
#else
    CHECK(pkc_codec_available(PKC_CODEC_ZSTD) == 0);
#endif
    CHECK(pkc_codec_available(-1) == 0);
    CHECK(pkc_codec_available(5) == 0);
    CHECK(pkc_codec_available(7) == 0);
}

static void
test_unknown_and_missing(void)
{
    pkc_writer w;
    uint8_t b[4] = {1, 2, 3, 4};

    CHECK_STATUS(compress_new(5, b, 4, -1, &w), PKC_ERR_UNSUPPORTED);
    pkc_writer_free(&w);
    CHECK_STATUS(decompress_cap(7, b, 4, MiB, &w), PKC_ERR_UNSUPPORTED);
    pkc_writer_free(&w);
    for (size_t i = 0; i < N_CODECS; i++) {
        int c = all_codecs[i];
        if (pkc_codec_available(c))
            continue;
        CHECK_STATUS(compress_new(c, b, 4, -1, &w), PKC_ERR_CODEC);
        pkc_writer_free(&w);
        CHECK_STATUS(decompress_cap(c, b, 4, MiB, &w), PKC_ERR_CODEC);
        pkc_writer_free(&w);
    }
}

/* Round trips over the sizes around chunk and block boundaries, with the
 * cap exactly at the size (succeeds) and one below (fails). */
static void
test_roundtrips(void)
{
    static const size_t sizes[] = {0,     1,     100,   32767,  32768,
                                   32769, 65535, 65536, 65537,  MiB};

    for (size_t ci = 0; ci < N_CODECS; ci++) {
        int c = all_codecs[ci];
        if (!pkc_codec_available(c))
            continue;
        for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
            size_t n = sizes[si];
            for (int kind = 0; kind < 2; kind++) {
                uint8_t *d = kind ? random_data(n, (uint32_t)n + 7)
                                  : text_data(n);
                pkc_writer z, w;

                CHECK_STATUS(compress_new(c, d, n, -1, &z), PKC_OK);
                CHECK_STATUS(decompress_cap(c, z.buf, z.len, n, &w),
                             PKC_OK);
                CHECK(same(&w, d, n));
                CHECK(w.cap <= n || n == 0);
                pkc_writer_free(&w);
                CHECK_STATUS(decompress_cap(c, z.buf, z.len, n + 1, &w),
                             PKC_OK);
                CHECK(same(&w, d, n));
                pkc_writer_free(&w);
                if (n > 0) {
                    CHECK_STATUS(decompress_cap(c, z.buf, z.len, n - 1, &w),
                                 PKC_ERR_TOO_LARGE);
                    CHECK(w.cap <= n - 1);
                    pkc_writer_free(&w);
                }
                pkc_writer_free(&z);
                free(d);
            }
        }
    }
}

/* Output is appended; the cap counts what the writer already held. */
static void
test_append_and_sticky(void)
{
    uint8_t *d = text_data(5000);

    for (size_t ci = 0; ci < N_CODECS; ci++) {
        int c = all_codecs[ci];
        pkc_writer z, w;

        if (!pkc_codec_available(c))
            continue;
        pkc_writer_init(&z, 0, 0);
        pkc_write_raw(&z, "HEAD", 4);
        CHECK_STATUS(pkc_compress(c, d, 5000, -1, &z), PKC_OK);
        CHECK(z.len > 4 && memcmp(z.buf, "HEAD", 4) == 0);

        pkc_writer_init(&w, 0, 6 + 5000);
        pkc_write_raw(&w, "prefix", 6);
        CHECK_STATUS(pkc_decompress(c, z.buf + 4, z.len - 4, &w), PKC_OK);
        CHECK(w.len == 6 + 5000 && memcmp(w.buf, "prefix", 6) == 0 &&
              memcmp(w.buf + 6, d, 5000) == 0);
        pkc_writer_free(&w);

        pkc_writer_init(&w, 0, 6 + 4999);
        pkc_write_raw(&w, "prefix", 6);
        CHECK_STATUS(pkc_decompress(c, z.buf + 4, z.len - 4, &w),
                     PKC_ERR_TOO_LARGE);
        CHECK(w.cap <= 6 + 4999);
        pkc_writer_free(&w);

        /* A writer already in error is left alone. */
        pkc_writer_init(&w, 0, 0);
        w.status = PKC_ERR_NOMEM;
        CHECK_STATUS(pkc_decompress(c, z.buf + 4, z.len - 4, &w),
                     PKC_ERR_NOMEM);
        CHECK_STATUS(pkc_compress(c, d, 10, -1, &w), PKC_ERR_NOMEM);
        CHECK(w.len == 0);
        pkc_writer_free(&w);
        pkc_writer_free(&z);
    }
    free(d);
}

/* Compression into a capped writer: a result that fits exactly succeeds
 * even though the codec's worst-case bound would not; one byte less is
 * PKC_ERR_TOO_LARGE. */
static void
test_compress_cap(void)
{
    for (size_t ci = 0; ci < N_CODECS; ci++) {
        int c = all_codecs[ci];
        if (!pkc_codec_available(c))
            continue;
        for (int kind = 0; kind < 2; kind++) {
            size_t n = 100000;
            uint8_t *d = kind ? random_data(n, 11) : text_data(n);
            pkc_writer z, w;

            CHECK_STATUS(compress_new(c, d, n, -1, &z), PKC_OK);
            pkc_writer_init(&w, 0, 3 + z.len);
            pkc_write_raw(&w, "pre", 3);
            CHECK_STATUS(pkc_compress(c, d, n, -1, &w), PKC_OK);
            CHECK(w.len == 3 + z.len && memcmp(w.buf + 3, z.buf, z.len) == 0);
            pkc_writer_free(&w);
            pkc_writer_init(&w, 0, 3 + z.len - 1);
            pkc_write_raw(&w, "pre", 3);
            CHECK_STATUS(pkc_compress(c, d, n, -1, &w), PKC_ERR_TOO_LARGE);
            CHECK(w.status == PKC_ERR_TOO_LARGE && w.cap <= 3 + z.len - 1);
            pkc_writer_free(&w);
            pkc_writer_free(&z);
            free(d);
        }
    }
}

static void
test_levels(void)
{
    static const struct {
        int codec, level, status;
    } cases[] = {
        {PKC_CODEC_GZIP, -1, PKC_OK},  {PKC_CODEC_GZIP, 1, PKC_OK},
        {PKC_CODEC_GZIP, 9, PKC_OK},   {PKC_CODEC_GZIP, 0, PKC_ERR_INVALID},
        {PKC_CODEC_GZIP, 10, PKC_ERR_INVALID},
        {PKC_CODEC_GZIP, -2, PKC_ERR_INVALID},
        {PKC_CODEC_LZ4, -1, PKC_OK},   {PKC_CODEC_LZ4, 1, PKC_OK},
        {PKC_CODEC_LZ4, 9, PKC_OK},    {PKC_CODEC_LZ4, 12, PKC_OK},
        {PKC_CODEC_LZ4, 17, PKC_OK},   {PKC_CODEC_LZ4, 0, PKC_ERR_INVALID},
        {PKC_CODEC_LZ4, 18, PKC_ERR_INVALID},
        {PKC_CODEC_ZSTD, -1, PKC_OK},  {PKC_CODEC_ZSTD, 1, PKC_OK},
        {PKC_CODEC_ZSTD, 19, PKC_OK},  {PKC_CODEC_ZSTD, -5, PKC_OK},
        {PKC_CODEC_ZSTD, 23, PKC_ERR_INVALID},
        {PKC_CODEC_SNAPPY, 5, PKC_OK}, /* no levels: ignored */
        {PKC_CODEC_NONE, 5, PKC_OK},
    };
    uint8_t *d = text_data(20000);

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pkc_writer z, w;

        if (!pkc_codec_available(cases[i].codec))
            continue;
        CHECK_STATUS(
            compress_new(cases[i].codec, d, 20000, cases[i].level, &z),
            cases[i].status);
        if (cases[i].status == PKC_OK) {
            CHECK_STATUS(
                decompress_cap(cases[i].codec, z.buf, z.len, 20000, &w),
                PKC_OK);
            CHECK(same(&w, d, 20000));
            pkc_writer_free(&w);
        }
        pkc_writer_free(&z);
    }
    free(d);
}

/* ------------------------------------------------------------- gzip */

static void
test_gzip(void)
{
    uint8_t *a = text_data(3000), *b = random_data(3000, 5), *cat = NULL;
    size_t catlen = 0;
    pkc_writer za, zb, w;
    static const uint8_t garbage[3] = {1, 2, 3};

    CHECK_STATUS(compress_new(PKC_CODEC_GZIP, a, 3000, 1, &za), PKC_OK);
    CHECK_STATUS(compress_new(PKC_CODEC_GZIP, b, 3000, 9, &zb), PKC_OK);
    /* RFC 1952 header: 1f 8b, CM 8 */
    CHECK(za.len > 18 && za.buf[0] == 0x1f && za.buf[1] == 0x8b &&
          za.buf[2] == 8);

    /* Concatenated members decode to the concatenation. */
    append(&cat, &catlen, za.buf, za.len);
    append(&cat, &catlen, zb.buf, zb.len);
    CHECK_STATUS(decompress_cap(PKC_CODEC_GZIP, cat, catlen, 6000, &w),
                 PKC_OK);
    CHECK(w.len == 6000 && memcmp(w.buf, a, 3000) == 0 &&
          memcmp(w.buf + 3000, b, 3000) == 0);
    pkc_writer_free(&w);
    CHECK_STATUS(decompress_cap(PKC_CODEC_GZIP, cat, catlen, 5999, &w),
                 PKC_ERR_TOO_LARGE);
    pkc_writer_free(&w);
    /* A cut inside the second member is truncation. */
    CHECK_STATUS(decompress_cap(PKC_CODEC_GZIP, cat, catlen - 3, MiB, &w),
                 PKC_ERR_COMPRESSION);
    pkc_writer_free(&w);
    /* Bytes after the last member that are not a member are corrupt. */
    append(&cat, &catlen, garbage, sizeof(garbage));
    CHECK_STATUS(decompress_cap(PKC_CODEC_GZIP, cat, catlen, MiB, &w),
                 PKC_ERR_COMPRESSION);
    pkc_writer_free(&w);

    /* Empty input, zlib (not gzip) wrapping, a bad CRC32 trailer. */
    CHECK_STATUS(decompress_cap(PKC_CODEC_GZIP, a, 0, MiB, &w),
                 PKC_ERR_COMPRESSION);
    pkc_writer_free(&w);
    {
        uLongf zl = compressBound(3000);
        uint8_t *z = malloc(zl);
        CHECK(compress2(z, &zl, a, 3000, 6) == Z_OK);
        CHECK_STATUS(decompress_cap(PKC_CODEC_GZIP, z, zl, MiB, &w),
                     PKC_ERR_COMPRESSION);
        pkc_writer_free(&w);
        free(z);
    }
    za.buf[za.len - 8] ^= 0x01; /* CRC32 of the trailer */
    CHECK_STATUS(decompress_cap(PKC_CODEC_GZIP, za.buf, za.len, MiB, &w),
                 PKC_ERR_COMPRESSION);
    pkc_writer_free(&w);
    za.buf[za.len - 8] ^= 0x01;
    za.buf[za.len - 1] ^= 0x01; /* ISIZE */
    CHECK_STATUS(decompress_cap(PKC_CODEC_GZIP, za.buf, za.len, MiB, &w),
                 PKC_ERR_COMPRESSION);
    pkc_writer_free(&w);
    za.buf[za.len - 1] ^= 0x01;

    check_prefixes_fail(PKC_CODEC_GZIP, za.buf, za.len, 1);

    pkc_writer_free(&za);
    pkc_writer_free(&zb);
    free(cat);
    free(a);
    free(b);
}

/* A gzip member of `n` zero bytes made with zlib at level 9. */
static void
test_gzip_bomb(void)
{
    size_t n = 64 * MiB;
    uint8_t *zeros = calloc(1, MiB);
    z_stream zs;
    pkc_writer z, w;

    memset(&zs, 0, sizeof(zs));
    pkc_writer_init(&z, 128 * 1024, 0);
    CHECK(deflateInit2(&zs, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) ==
          Z_OK);
    for (size_t done = 0; done < n; done += MiB) {
        int flush = done + MiB == n ? Z_FINISH : Z_NO_FLUSH;
        zs.next_in = zeros;
        zs.avail_in = (uInt)MiB;
        do {
            pkc_writer_reserve(&z, 64 * 1024);
            zs.next_out = z.buf + z.len;
            zs.avail_out = (uInt)(z.cap - z.len);
            deflate(&zs, flush);
            z.len = (size_t)(zs.next_out - z.buf);
        } while (zs.avail_out == 0);
    }
    deflateEnd(&zs);
    CHECK(z.len < 100 * 1024); /* ~1000:1 */
    CHECK_STATUS(decompress_cap(PKC_CODEC_GZIP, z.buf, z.len, MiB, &w),
                 PKC_ERR_TOO_LARGE);
    CHECK(w.cap <= MiB);
    pkc_writer_free(&w);
    CHECK_STATUS(decompress_cap(PKC_CODEC_GZIP, z.buf, z.len, n, &w),
                 PKC_OK);
    CHECK(w.len == n && w.buf[n - 1] == 0);
    pkc_writer_free(&w);
    pkc_writer_free(&z);
    free(zeros);
}

/* ----------------------------------------------------------- snappy */

#ifdef PKC_HAVE_SNAPPY

static const uint8_t magic[8] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0};

static void
put_be32(uint8_t **buf, size_t *len, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8),
                    (uint8_t)v};
    append(buf, len, b, 4);
}

static void
xerial_header(uint8_t **buf, size_t *len, uint32_t version)
{
    append(buf, len, magic, 8);
    put_be32(buf, len, version);
    put_be32(buf, len, 1);
}

/* A raw snappy block of in[0..n) made by libsnappy. */
static void
raw_block(uint8_t **buf, size_t *len, const uint8_t *in, size_t n)
{
    size_t cl = snappy_max_compressed_length(n);
    uint8_t *tmp = malloc(cl);

    CHECK(snappy_compress((const char *)in, n, (char *)tmp, &cl) ==
          SNAPPY_OK);
    append(buf, len, tmp, cl);
    free(tmp);
}

static void
test_snappy(void)
{
    uint8_t *d = text_data(100000), *s = NULL;
    size_t sl = 0;
    pkc_writer z, w;

    /* Our output is xerial: header, then 32 KiB chunks. */
    CHECK_STATUS(compress_new(PKC_CODEC_SNAPPY, d, 100000, -1, &z), PKC_OK);
    CHECK(z.len > 16 && memcmp(z.buf, magic, 8) == 0 &&
          pkc_load_u32(z.buf + 8) == 1 && pkc_load_u32(z.buf + 12) == 1);
    {
        /* Walk the chunks: each holds at most 32 KiB of input. */
        size_t pos = 16, nchunks = 0, total = 0;
        while (pos + 4 <= z.len) {
            size_t cl = pkc_load_u32(z.buf + pos), ul = 0;
            CHECK(snappy_uncompressed_length((const char *)z.buf + pos + 4,
                                             cl, &ul) == SNAPPY_OK);
            CHECK(ul <= 32768);
            total += ul;
            pos += 4 + cl;
            nchunks++;
        }
        CHECK(pos == z.len && nchunks == 4 && total == 100000);
    }
    pkc_writer_free(&z);

    /* Raw block (librdkafka's framing). */
    raw_block(&s, &sl, d, 100000);
    CHECK_STATUS(decompress_cap(PKC_CODEC_SNAPPY, s, sl, 100000, &w),
                 PKC_OK);
    CHECK(same(&w, d, 100000));
    pkc_writer_free(&w);
    CHECK_STATUS(decompress_cap(PKC_CODEC_SNAPPY, s, sl, 99999, &w),
                 PKC_ERR_TOO_LARGE);
    CHECK(w.cap == 0); /* refused from the length prefix alone */
    pkc_writer_free(&w);
    check_prefixes_fail(PKC_CODEC_SNAPPY, s, sl, 97);
    free(s);
    s = NULL;
    sl = 0;

    /* Hand-made xerial stream: two chunks, then a second concatenated
     * stream (header again) with one more chunk. */
    xerial_header(&s, &sl, 1);
    for (int i = 0; i < 2; i++) {
        size_t at = sl;
        put_be32(&s, &sl, 0);
        raw_block(&s, &sl, d + i * 1000, 1000);
        pkc_store_u32(s + at, (uint32_t)(sl - at - 4));
    }
    xerial_header(&s, &sl, 1);
    {
        size_t at = sl;
        put_be32(&s, &sl, 0);
        raw_block(&s, &sl, d + 2000, 500);
        pkc_store_u32(s + at, (uint32_t)(sl - at - 4));
    }
    CHECK_STATUS(decompress_cap(PKC_CODEC_SNAPPY, s, sl, 2500, &w), PKC_OK);
    CHECK(same(&w, d, 2500));
    pkc_writer_free(&w);
    CHECK_STATUS(decompress_cap(PKC_CODEC_SNAPPY, s, sl, 2499, &w),
                 PKC_ERR_TOO_LARGE);
    pkc_writer_free(&w);
    /* Cuts inside a chunk or its length fail; a cut exactly between
     * chunks is a shorter valid stream. */
    for (size_t cut = 0; cut < sl; cut++) {
        int st = decompress_cap(PKC_CODEC_SNAPPY, s, cut, MiB, &w);
        if (st == PKC_OK)
            CHECK(w.len == 0 || w.len == 1000 || w.len == 2000);
        else
            CHECK_STATUS(st, PKC_ERR_COMPRESSION);
        pkc_writer_free(&w);
    }
    free(s);
    s = NULL;
    sl = 0;

    /* Header only: empty result (snappy-java's output for no data). */
    xerial_header(&s, &sl, 1);
    CHECK_STATUS(decompress_cap(PKC_CODEC_SNAPPY, s, sl, 0, &w), PKC_OK);
    CHECK(w.len == 0);
    pkc_writer_free(&w);
    /* Magic with a short header; version 0. */
    CHECK_STATUS(decompress_cap(PKC_CODEC_SNAPPY, s, 12, MiB, &w),
                 PKC_ERR_COMPRESSION);
    pkc_writer_free(&w);
    s[11] = 0;
    CHECK_STATUS(decompress_cap(PKC_CODEC_SNAPPY, s, sl, MiB, &w),
                 PKC_ERR_COMPRESSION);
    pkc_writer_free(&w);
    s[11] = 1;

    /* Hostile chunk lengths: past the input, negative, zero. */
    {
        static const uint32_t bad[] = {0x7fffffffu, 0xffffffffu, 0x80000000u,
                                       0u, 100u};
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            uint8_t *h = NULL;
            size_t hl = 0;
            xerial_header(&h, &hl, 1);
            put_be32(&h, &hl, bad[i]);
            raw_block(&h, &hl, d, 10);
            CHECK_STATUS(decompress_cap(PKC_CODEC_SNAPPY, h, hl, MiB, &w),
                         PKC_ERR_COMPRESSION);
            CHECK(w.cap == 0);
            pkc_writer_free(&w);
            free(h);
        }
    }
    /* A chunk whose block claims 4 GiB - 1: refused before allocating. */
    {
        static const uint8_t claim[] = {0xff, 0xff, 0xff, 0xff, 0x0f,
                                        0x00, 'a'};
        uint8_t *h = NULL;
        size_t hl = 0;
        xerial_header(&h, &hl, 1);
        put_be32(&h, &hl, sizeof(claim));
        append(&h, &hl, claim, sizeof(claim));
        CHECK_STATUS(decompress_cap(PKC_CODEC_SNAPPY, h, hl, 64 * MiB, &w),
                     PKC_ERR_TOO_LARGE);
        CHECK(w.cap == 0);
        pkc_writer_free(&w);
        CHECK_STATUS(
            decompress_cap(PKC_CODEC_SNAPPY, claim, sizeof(claim), MiB, &w),
            PKC_ERR_TOO_LARGE);
        CHECK(w.cap == 0);
        pkc_writer_free(&w);
        free(h);
    }
    /* A raw block whose length prefix is a 6-byte varint is corrupt. */
    {
        static const uint8_t overlong[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x00};
        CHECK_STATUS(decompress_cap(PKC_CODEC_SNAPPY, overlong,
                                    sizeof(overlong), MiB, &w),
                     PKC_ERR_COMPRESSION);
        pkc_writer_free(&w);
    }
    /* Raw block claiming 20 bytes but holding 3 literal bytes. */
    {
        static const uint8_t lie[] = {20, 0x08, 'a', 'b', 'c'};
        static const uint8_t ok[] = {3, 0x08, 'a', 'b', 'c'};
        CHECK_STATUS(
            decompress_cap(PKC_CODEC_SNAPPY, lie, sizeof(lie), MiB, &w),
            PKC_ERR_COMPRESSION);
        pkc_writer_free(&w);
        CHECK_STATUS(decompress_cap(PKC_CODEC_SNAPPY, ok, sizeof(ok), 3, &w),
                     PKC_OK);
        CHECK(same(&w, (const uint8_t *)"abc", 3));
        pkc_writer_free(&w);
    }
    /* Empty input is not a snappy block. */
    CHECK_STATUS(decompress_cap(PKC_CODEC_SNAPPY, d, 0, MiB, &w),
                 PKC_ERR_COMPRESSION);
    pkc_writer_free(&w);
    free(s);
    free(d);
}

/* Many chunks of 32 KiB zeros: 64 MiB from ~3 MiB of input. */
static void
test_snappy_bomb(void)
{
    uint8_t *zeros = calloc(1, 32768), *s = NULL, *one = NULL;
    size_t sl = 0, onel = 0;
    pkc_writer w;

    put_be32(&one, &onel, 0);
    raw_block(&one, &onel, zeros, 32768);
    pkc_store_u32(one, (uint32_t)(onel - 4));
    xerial_header(&s, &sl, 1);
    for (int i = 0; i < 2048; i++)
        append(&s, &sl, one, onel);
    CHECK_STATUS(decompress_cap(PKC_CODEC_SNAPPY, s, sl, MiB, &w),
                 PKC_ERR_TOO_LARGE);
    CHECK(w.cap <= MiB);
    pkc_writer_free(&w);
    CHECK_STATUS(decompress_cap(PKC_CODEC_SNAPPY, s, sl, 64 * MiB, &w),
                 PKC_OK);
    CHECK(w.len == 64 * MiB);
    pkc_writer_free(&w);
    free(s);
    free(one);
    free(zeros);
}

#endif /* PKC_HAVE_SNAPPY */

/* -------------------------------------------------------------- lz4 */

#ifdef PKC_HAVE_LZ4

static void
lz4_frame(uint8_t **buf, size_t *len, const uint8_t *in, size_t n,
          const LZ4F_preferences_t *prefs)
{
    size_t cap = LZ4F_compressFrameBound(n, prefs);
    uint8_t *tmp = malloc(cap);
    size_t got = LZ4F_compressFrame(tmp, cap, in, n, prefs);

    CHECK(!LZ4F_isError(got));
    if (!LZ4F_isError(got))
        append(buf, len, tmp, got);
    free(tmp);
}

static void
test_lz4(void)
{
    uint8_t *d = text_data(300000), *r = random_data(70000, 3);
    static const LZ4F_blockSizeID_t bsids[] = {LZ4F_max64KB, LZ4F_max256KB,
                                               LZ4F_max1MB, LZ4F_max4MB};
    pkc_writer z, w;

    /* Our output: FLG version 01, independent blocks, no content size,
     * no checksums; BD 64 KiB. */
    CHECK_STATUS(compress_new(PKC_CODEC_LZ4, d, 300000, -1, &z), PKC_OK);
    CHECK(z.len > 7 && z.buf[0] == 0x04 && z.buf[1] == 0x22 &&
          z.buf[2] == 0x4d && z.buf[3] == 0x18);
    CHECK(z.buf[4] == 0x60); /* version 01, B.Indep, nothing else */
    CHECK(z.buf[5] == 0x40); /* BD: 64 KiB */
    check_prefixes_fail(PKC_CODEC_LZ4, z.buf, z.len, 331);
    pkc_writer_free(&z);

    /* Frames as other producers write them: every combination of content
     * size, checksums, linked blocks and block size. */
    for (int mask = 0; mask < 16; mask++) {
        for (size_t b = 0; b < 4; b++) {
            LZ4F_preferences_t p;
            uint8_t *f = NULL;
            size_t fl = 0;

            memset(&p, 0, sizeof(p));
            p.frameInfo.blockSizeID = bsids[b];
            p.frameInfo.contentSize = (mask & 1) ? 1 : 0;
            p.frameInfo.contentChecksumFlag = (mask & 2)
                                                  ? LZ4F_contentChecksumEnabled
                                                  : LZ4F_noContentChecksum;
            p.frameInfo.blockChecksumFlag = (mask & 4)
                                                ? LZ4F_blockChecksumEnabled
                                                : LZ4F_noBlockChecksum;
            p.frameInfo.blockMode = (mask & 8) ? LZ4F_blockLinked
                                               : LZ4F_blockIndependent;
            p.compressionLevel = (mask & 8) ? 9 : 0;
            lz4_frame(&f, &fl, d, 300000, &p);
            CHECK_STATUS(decompress_cap(PKC_CODEC_LZ4, f, fl, 300000, &w),
                         PKC_OK);
            CHECK(same(&w, d, 300000));
            pkc_writer_free(&w);
            CHECK_STATUS(decompress_cap(PKC_CODEC_LZ4, f, fl, 299999, &w),
                         PKC_ERR_TOO_LARGE);
            CHECK(w.cap <= 299999);
            if (mask & 1)
                CHECK(w.cap == 0); /* refused from the content size */
            pkc_writer_free(&w);
            if (mask & 6) {
                /* Flip a byte of the last block: a checksum catches it. */
                f[fl - 5 - ((mask & 2) ? 4 : 0)] ^= 0x40;
                CHECK_STATUS(decompress_cap(PKC_CODEC_LZ4, f, fl, MiB, &w),
                             PKC_ERR_COMPRESSION);
                pkc_writer_free(&w);
            }
            free(f);
        }
    }

    /* Concatenated frames, with a skippable frame between them. */
    {
        LZ4F_preferences_t p;
        static const uint8_t skip[12] = {0x5a, 0x2a, 0x4d, 0x18, 4, 0, 0, 0,
                                         9,    9,    9,    9};
        uint8_t *f = NULL;
        size_t fl = 0;

        memset(&p, 0, sizeof(p));
        p.frameInfo.contentSize = 1;
        lz4_frame(&f, &fl, d, 1000, &p);
        append(&f, &fl, skip, sizeof(skip));
        lz4_frame(&f, &fl, r, 70000, &p);
        CHECK_STATUS(decompress_cap(PKC_CODEC_LZ4, f, fl, 71000, &w), PKC_OK);
        CHECK(w.len == 71000 && memcmp(w.buf, d, 1000) == 0 &&
              memcmp(w.buf + 1000, r, 70000) == 0);
        pkc_writer_free(&w);
        CHECK_STATUS(decompress_cap(PKC_CODEC_LZ4, f, fl, 70999, &w),
                     PKC_ERR_TOO_LARGE);
        pkc_writer_free(&w);
        /* Trailing bytes that are not a frame. */
        append(&f, &fl, "junk", 4);
        CHECK_STATUS(decompress_cap(PKC_CODEC_LZ4, f, fl, MiB, &w),
                     PKC_ERR_COMPRESSION);
        pkc_writer_free(&w);
        free(f);
    }

    /* A header claiming 2^40 bytes of content: refused at once. */
    {
        LZ4F_cctx *cctx = NULL;
        LZ4F_preferences_t p;
        uint8_t buf[1024];
        size_t n;
        pkc_writer w2;

        memset(&p, 0, sizeof(p));
        p.frameInfo.contentSize = (unsigned long long)1 << 40;
        CHECK(!LZ4F_isError(LZ4F_createCompressionContext(&cctx,
                                                          LZ4F_VERSION)));
        n = LZ4F_compressBegin(cctx, buf, sizeof(buf), &p);
        CHECK(!LZ4F_isError(n));
        n += LZ4F_compressUpdate(cctx, buf + n, sizeof(buf) - n, d, 100,
                                 NULL);
        n += LZ4F_flush(cctx, buf + n, sizeof(buf) - n, NULL);
        memset(buf + n, 0, 4); /* end mark */
        n += 4;
        LZ4F_freeCompressionContext(cctx);
        CHECK_STATUS(decompress_cap(PKC_CODEC_LZ4, buf, n, 64 * MiB, &w2),
                     PKC_ERR_TOO_LARGE);
        CHECK(w2.cap == 0);
        pkc_writer_free(&w2);
        /* Claiming 10 bytes but holding 100: corrupt. */
        memset(&p, 0, sizeof(p));
        p.frameInfo.contentSize = 10;
        CHECK(!LZ4F_isError(LZ4F_createCompressionContext(&cctx,
                                                          LZ4F_VERSION)));
        n = LZ4F_compressBegin(cctx, buf, sizeof(buf), &p);
        n += LZ4F_compressUpdate(cctx, buf + n, sizeof(buf) - n, d, 100,
                                 NULL);
        n += LZ4F_flush(cctx, buf + n, sizeof(buf) - n, NULL);
        memset(buf + n, 0, 4);
        n += 4;
        LZ4F_freeCompressionContext(cctx);
        CHECK_STATUS(decompress_cap(PKC_CODEC_LZ4, buf, n, 64 * MiB, &w2),
                     PKC_ERR_COMPRESSION);
        pkc_writer_free(&w2);
    }

    /* Header faults: bad header checksum, version bits, reserved bits. */
    {
        uint8_t *f = NULL;
        size_t fl = 0;
        LZ4F_preferences_t p;

        memset(&p, 0, sizeof(p));
        lz4_frame(&f, &fl, d, 1000, &p);
        f[6] ^= 0x5a; /* HC */
        CHECK_STATUS(decompress_cap(PKC_CODEC_LZ4, f, fl, MiB, &w),
                     PKC_ERR_COMPRESSION);
        pkc_writer_free(&w);
        f[6] ^= 0x5a;
        f[4] ^= 0x80; /* version 11 (HC no longer matches either) */
        CHECK_STATUS(decompress_cap(PKC_CODEC_LZ4, f, fl, MiB, &w),
                     PKC_ERR_COMPRESSION);
        pkc_writer_free(&w);
        f[4] ^= 0x80;
        CHECK_STATUS(decompress_cap(PKC_CODEC_LZ4, f, fl, MiB, &w), PKC_OK);
        pkc_writer_free(&w);
        CHECK_STATUS(decompress_cap(PKC_CODEC_LZ4, f, 0, MiB, &w),
                     PKC_ERR_COMPRESSION);
        pkc_writer_free(&w);
        free(f);
    }
    free(d);
    free(r);
}

/* One frame of 1024 blocks of 64 KiB zeros: 64 MiB from ~300 KiB. */
static void
test_lz4_bomb(void)
{
    uint8_t *zeros = calloc(1, 65536), *one = NULL, *f = NULL;
    size_t onel = 0, fl = 0;
    LZ4F_preferences_t p;
    pkc_writer w;

    memset(&p, 0, sizeof(p));
    p.frameInfo.blockSizeID = LZ4F_max64KB;
    lz4_frame(&one, &onel, zeros, 65536, &p);
    /* one = header (7) + block + end mark (4): repeat the block. */
    append(&f, &fl, one, 7);
    for (int i = 0; i < 1024; i++)
        append(&f, &fl, one + 7, onel - 11);
    append(&f, &fl, one + onel - 4, 4);
    CHECK_STATUS(decompress_cap(PKC_CODEC_LZ4, f, fl, MiB, &w),
                 PKC_ERR_TOO_LARGE);
    CHECK(w.cap <= MiB);
    pkc_writer_free(&w);
    CHECK_STATUS(decompress_cap(PKC_CODEC_LZ4, f, fl, 64 * MiB, &w), PKC_OK);
    CHECK(w.len == 64 * MiB);
    pkc_writer_free(&w);
    free(one);
    free(f);
    free(zeros);
}

#endif /* PKC_HAVE_LZ4 */

/* ------------------------------------------------------------- zstd */

#ifdef PKC_HAVE_ZSTD

/* A frame without a content size, as a streaming encoder writes it. */
static void
zstd_stream_frame(uint8_t **buf, size_t *len, const uint8_t *in, size_t n,
                  int checksum, size_t piece)
{
    ZSTD_CCtx *cctx = ZSTD_createCCtx();
    size_t cap = ZSTD_compressBound(n) + 1024, pos = 0;
    uint8_t *tmp = malloc(cap);
    ZSTD_outBuffer out = {tmp, cap, 0};

    ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, checksum);
    while (pos < n) {
        size_t m = n - pos < piece ? n - pos : piece;
        ZSTD_inBuffer src = {in + pos, m, 0};
        while (src.pos < src.size)
            CHECK(!ZSTD_isError(
                ZSTD_compressStream2(cctx, &out, &src, ZSTD_e_continue)));
        pos += m;
    }
    {
        ZSTD_inBuffer src = {NULL, 0, 0};
        size_t left;
        do {
            left = ZSTD_compressStream2(cctx, &out, &src, ZSTD_e_end);
            CHECK(!ZSTD_isError(left));
        } while (left != 0 && !ZSTD_isError(left));
    }
    append(buf, len, tmp, out.pos);
    ZSTD_freeCCtx(cctx);
    free(tmp);
}

static void
test_zstd(void)
{
    uint8_t *d = text_data(300000), *r = random_data(70000, 9);
    uint8_t *f = NULL;
    size_t fl = 0;
    pkc_writer z, w;

    /* Our output carries the content size. */
    CHECK_STATUS(compress_new(PKC_CODEC_ZSTD, d, 300000, -1, &z), PKC_OK);
    CHECK(ZSTD_getFrameContentSize(z.buf, z.len) == 300000);
    check_prefixes_fail(PKC_CODEC_ZSTD, z.buf, z.len, 53);
    pkc_writer_free(&z);

    /* Streaming frames (no content size), with and without checksum. */
    for (int checksum = 0; checksum < 2; checksum++) {
        zstd_stream_frame(&f, &fl, d, 300000, checksum, 16384);
        CHECK(ZSTD_getFrameContentSize(f, fl) == ZSTD_CONTENTSIZE_UNKNOWN);
        CHECK_STATUS(decompress_cap(PKC_CODEC_ZSTD, f, fl, 300000, &w),
                     PKC_OK);
        CHECK(same(&w, d, 300000));
        pkc_writer_free(&w);
        CHECK_STATUS(decompress_cap(PKC_CODEC_ZSTD, f, fl, 299999, &w),
                     PKC_ERR_TOO_LARGE);
        CHECK(w.cap <= 299999);
        pkc_writer_free(&w);
        check_prefixes_fail(PKC_CODEC_ZSTD, f, fl, 61);
        if (checksum) {
            f[fl - 1] ^= 1;
            CHECK_STATUS(decompress_cap(PKC_CODEC_ZSTD, f, fl, MiB, &w),
                         PKC_ERR_COMPRESSION);
            pkc_writer_free(&w);
        }
        free(f);
        f = NULL;
        fl = 0;
    }

    /* Concatenated frames with a skippable frame between them. */
    {
        static const uint8_t skip[11] = {0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0,
                                         7,    7,    7};
        zstd_stream_frame(&f, &fl, d, 1000, 0, 1000);
        append(&f, &fl, skip, sizeof(skip));
        CHECK_STATUS(compress_new(PKC_CODEC_ZSTD, r, 70000, 1, &z), PKC_OK);
        append(&f, &fl, z.buf, z.len);
        pkc_writer_free(&z);
        CHECK_STATUS(decompress_cap(PKC_CODEC_ZSTD, f, fl, 71000, &w),
                     PKC_OK);
        CHECK(w.len == 71000 && memcmp(w.buf, d, 1000) == 0 &&
              memcmp(w.buf + 1000, r, 70000) == 0);
        pkc_writer_free(&w);
        CHECK_STATUS(decompress_cap(PKC_CODEC_ZSTD, f, fl, 70999, &w),
                     PKC_ERR_TOO_LARGE);
        pkc_writer_free(&w);
        append(&f, &fl, "\0\0\0\0", 4);
        CHECK_STATUS(decompress_cap(PKC_CODEC_ZSTD, f, fl, MiB, &w),
                     PKC_ERR_COMPRESSION);
        pkc_writer_free(&w);
        free(f);
        f = NULL;
        fl = 0;
    }

    /* Hand-written frames: magic, frame header descriptor, then one raw
     * block "hello" (block header: last=1, type raw, size 5). */
    {
        /* Single segment, 8-byte content size 2^40. */
        static const uint8_t huge[] = {0x28, 0xb5, 0x2f, 0xfd, 0xe0, 0, 0,
                                       0,    0,    0,    1,    0,    0,
                                       0x29, 0,    0,    'h',  'e',  'l',
                                       'l',  'o'};
        /* Window descriptor asking for a 1 GiB window, no content size:
         * beyond zstd's default limit, refused without allocating it. */
        static const uint8_t window[] = {0x28, 0xb5, 0x2f, 0xfd, 0x00,
                                         0xa0, 0x29, 0,    0,    'h',
                                         'e',  'l',  'l',  'o'};
        /* A 128 MiB window (as level-22 streams declare): accepted even
         * with a small cap. */
        static const uint8_t w27[] = {0x28, 0xb5, 0x2f, 0xfd, 0x00,
                                      0x88, 0x29, 0,    0,    'h',
                                      'e',  'l',  'l',  'o'};
        /* A 256 MiB window: over zstd's default limit. */
        static const uint8_t w28[] = {0x28, 0xb5, 0x2f, 0xfd, 0x00,
                                      0x90, 0x29, 0,    0,    'h',
                                      'e',  'l',  'l',  'o'};
        /* A 64 KiB window: fine. */
        static const uint8_t small[] = {0x28, 0xb5, 0x2f, 0xfd, 0x00,
                                        0x30, 0x29, 0,    0,    'h',
                                        'e',  'l',  'l',  'o'};
        CHECK_STATUS(
            decompress_cap(PKC_CODEC_ZSTD, huge, sizeof(huge), 64 * MiB, &w),
            PKC_ERR_TOO_LARGE);
        CHECK(w.cap == 0);
        pkc_writer_free(&w);
        CHECK_STATUS(decompress_cap(PKC_CODEC_ZSTD, window, sizeof(window),
                                    64 * MiB, &w),
                     PKC_ERR_COMPRESSION);
        CHECK(w.cap <= PKC_DECOMP_TEST_STEP);
        pkc_writer_free(&w);
        CHECK_STATUS(decompress_cap(PKC_CODEC_ZSTD, w27, sizeof(w27), MiB, &w),
                     PKC_OK);
        CHECK(same(&w, (const uint8_t *)"hello", 5));
        pkc_writer_free(&w);
        CHECK_STATUS(decompress_cap(PKC_CODEC_ZSTD, w28, sizeof(w28), MiB, &w),
                     PKC_ERR_COMPRESSION);
        pkc_writer_free(&w);
        CHECK_STATUS(
            decompress_cap(PKC_CODEC_ZSTD, small, sizeof(small), 5, &w),
            PKC_OK);
        CHECK(same(&w, (const uint8_t *)"hello", 5));
        pkc_writer_free(&w);
        CHECK_STATUS(
            decompress_cap(PKC_CODEC_ZSTD, small, sizeof(small), 4, &w),
            PKC_ERR_TOO_LARGE);
        pkc_writer_free(&w);
        CHECK_STATUS(decompress_cap(PKC_CODEC_ZSTD, small, 0, 4, &w),
                     PKC_ERR_COMPRESSION);
        pkc_writer_free(&w);
    }
    free(d);
    free(r);
}

/* A streaming frame of 256 MiB of zeros is a few KiB. */
static void
test_zstd_bomb(void)
{
    size_t n = 256 * MiB;
    uint8_t *zeros = calloc(1, MiB), *f = NULL;
    size_t fl = 0;
    ZSTD_CCtx *cctx = ZSTD_createCCtx();
    uint8_t out_buf[1 << 16];
    pkc_writer w;

    for (size_t done = 0; done < n; done += MiB) {
        ZSTD_inBuffer src = {zeros, MiB, 0};
        ZSTD_EndDirective e = done + MiB == n ? ZSTD_e_end : ZSTD_e_continue;
        size_t left;
        do {
            ZSTD_outBuffer out = {out_buf, sizeof(out_buf), 0};
            left = ZSTD_compressStream2(cctx, &out, &src, e);
            append(&f, &fl, out_buf, out.pos);
        } while ((e == ZSTD_e_end && left != 0 && !ZSTD_isError(left)) ||
                 src.pos < src.size);
    }
    ZSTD_freeCCtx(cctx);
    CHECK(fl < 64 * 1024);
    CHECK(ZSTD_getFrameContentSize(f, fl) == ZSTD_CONTENTSIZE_UNKNOWN);
    CHECK_STATUS(decompress_cap(PKC_CODEC_ZSTD, f, fl, MiB, &w),
                 PKC_ERR_TOO_LARGE);
    CHECK(w.cap <= MiB);
    pkc_writer_free(&w);
    free(f);
    free(zeros);
}

#endif /* PKC_HAVE_ZSTD */

/* ---------------------------------------------------------- threads */

/* Both threads run round trips of every codec at once; any shared state
 * in the codec code would show up as a wrong result (or a TSan/ASan
 * report when built with sanitizers). */
static void *
thread_main(void *arg)
{
    uint32_t seed = (uint32_t)(uintptr_t)arg;
    long bad = 0;

    for (int round = 0; round < 8; round++) {
        for (size_t ci = 0; ci < N_CODECS; ci++) {
            int c = all_codecs[ci];
            size_t n = 50000 + seed * 1000 + (size_t)round;
            uint8_t *d = (round & 1) ? random_data(n, seed + 1)
                                     : text_data(n);
            pkc_writer z, w;

            if (!pkc_codec_available(c)) {
                free(d);
                continue;
            }
            if (compress_new(c, d, n, -1, &z) != PKC_OK ||
                decompress_cap(c, z.buf, z.len, n, &w) != PKC_OK ||
                !same(&w, d, n))
                bad++;
            pkc_writer_free(&w);
            pkc_writer_free(&z);
            free(d);
        }
    }
    return (void *)bad;
}

static void
test_threads(void)
{
    pthread_t t[2];
    void *res[2];

    for (uintptr_t i = 0; i < 2; i++)
        CHECK(pthread_create(&t[i], NULL, thread_main, (void *)(i + 1)) ==
              0);
    for (int i = 0; i < 2; i++) {
        CHECK(pthread_join(t[i], &res[i]) == 0);
        CHECK(res[i] == NULL);
    }
}

/* pkc_snappy_compress_raw: one raw block that libsnappy reads back, no
 * xerial header, appended after what the writer holds, capped; without
 * snappy in the build it is PKC_ERR_CODEC. */
static void
test_snappy_raw(void)
{
    static uint8_t data[100000];
    pkc_writer w;

    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)("raw snappy block "[i % 17] + (i / 1000) % 3);
#ifdef PKC_HAVE_SNAPPY
    static const size_t sizes[] = {0, 1, 17, 32 * 1024, 32 * 1024 + 1,
                                   sizeof(data)};
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        size_t n = sizes[k], ulen = 0;
        pkc_writer_init(&w, 0, 0);
        pkc_write_raw(&w, "AB", 2);
        CHECK_STATUS(pkc_snappy_compress_raw(data, n, &w), PKC_OK);
        CHECK(w.len > 2 && memcmp(w.buf, "AB", 2) == 0);
        CHECK(w.len - 2 < 8 || memcmp(w.buf + 2, "\x82SNAPPY", 7) != 0);
        CHECK(snappy_uncompressed_length((const char *)w.buf + 2, w.len - 2,
                                         &ulen) == SNAPPY_OK && ulen == n);
        if (ulen == n) {
            char *out = malloc(n + 1);
            size_t got = n;
            CHECK(out != NULL && snappy_uncompress((const char *)w.buf + 2,
                                                   w.len - 2, out,
                                                   &got) == SNAPPY_OK);
            CHECK(got == n && (n == 0 || memcmp(out, data, n) == 0));
            free(out);
        }
        /* our own decoder reads it as a raw block */
        {
            pkc_writer d;
            CHECK_STATUS(decompress_cap(PKC_CODEC_SNAPPY, w.buf + 2,
                                        w.len - 2, n, &d), PKC_OK);
            CHECK(same(&d, data, n));
            pkc_writer_free(&d);
        }
        pkc_writer_free(&w);
    }
    /* a cap too small for the result */
    pkc_writer_init(&w, 0, 10);
    CHECK_STATUS(pkc_snappy_compress_raw(data, sizeof(data), &w),
                 PKC_ERR_TOO_LARGE);
    pkc_writer_free(&w);
#else
    pkc_writer_init(&w, 0, 0);
    CHECK_STATUS(pkc_snappy_compress_raw(data, 10, &w), PKC_ERR_CODEC);
    pkc_writer_free(&w);
#endif
}

int
main(void)
{
    test_names();
    test_unknown_and_missing();
    test_roundtrips();
    test_append_and_sticky();
    test_compress_cap();
    test_levels();
    test_gzip();
    test_gzip_bomb();
    test_snappy_raw();
#ifdef PKC_HAVE_SNAPPY
    test_snappy();
    test_snappy_bomb();
#endif
#ifdef PKC_HAVE_LZ4
    test_lz4();
    test_lz4_bomb();
#endif
#ifdef PKC_HAVE_ZSTD
    test_zstd();
    test_zstd_bomb();
#endif
    test_threads();
    printf("test_compress: %d checks, %d failures\n", checks, failures);
    return failures ? 1 : 0;
}
