/*
 * buf.h - the bounds-checked reader and the growable writer.
 *
 * Python-free.  Every byte pykafka_c reads from the network goes through a
 * pkc_reader: each read checks the remaining length first and never reads
 * past `end`.  Errors are sticky: the first failure records its status,
 * byte offset and a static description of the field, and every later read
 * on the same reader fails at once without touching memory, so a decoder
 * may check once after a group of reads.  Outputs of a failed read are
 * zeroed.
 *
 * A pkc_writer is a growable byte buffer with a hard size cap; write
 * functions return the offset at which they wrote, so lengths, counts and
 * CRCs can be written as placeholders and patched later (pkc_patch_*).
 * Allocation failure or exceeding the cap is sticky in `status`.
 *
 * Integer encodings are big-endian, assembled with shifts (no pointer
 * casts).  "Flexible" protocol versions use compact (unsigned varint
 * length + 1) strings, bytes and arrays; the *_c functions take the flag.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Status codes shared by the whole wire layer.  0 is success. */
typedef enum {
    PKC_OK = 0,
    PKC_ERR_TRUNCATED = -1,   /* input ended inside a field */
    PKC_ERR_INVALID = -2,     /* a length, count or value that cannot be */
    PKC_ERR_VARINT = -3,      /* varint longer than its type allows */
    PKC_ERR_CRC = -4,         /* checksum mismatch */
    PKC_ERR_TOO_LARGE = -5,   /* over a configured cap */
    PKC_ERR_NOMEM = -6,       /* allocation failed */
    PKC_ERR_CODEC = -7,       /* compression codec not in this build */
    PKC_ERR_COMPRESSION = -8, /* corrupt compressed data */
    PKC_ERR_IO = -9,          /* socket error (errno kept by the caller) */
    PKC_ERR_TIMEOUT = -10,    /* deadline passed */
    PKC_ERR_INTR = -11,       /* interrupted by a signal (EINTR) */
    PKC_ERR_CLOSED = -12,     /* peer closed the connection */
    PKC_ERR_UNSUPPORTED = -13, /* a format or version this code cannot read */
    PKC_IN_PROGRESS = -14,     /* not an error: a non-blocking operation is
                                  under way; call its step function again */
    PKC_ERR_TLS = -15,         /* TLS set-up, handshake or verification */
    PKC_ERR_AUTH = -16         /* SASL authentication failed or was refused */
} pkc_status;

/* Human-readable name of a status, a static string. */
const char *pkc_status_str(int status);

/* A view of `len` bytes at `ptr`; len == -1 means null. */
typedef struct {
    const uint8_t *ptr;
    int32_t len;
} pkc_slice;

typedef struct {
    const uint8_t *start;
    const uint8_t *pos;
    const uint8_t *end;
    int status;            /* first error (pkc_status), sticky */
    size_t err_offset;     /* offset from start of the failing field */
    const char *err_field; /* static description of that field, or NULL */
} pkc_reader;

static inline void
pkc_reader_init(pkc_reader *r, const uint8_t *data, size_t len)
{
    r->start = data;
    r->pos = data;
    r->end = data + len;
    r->status = PKC_OK;
    r->err_offset = 0;
    r->err_field = NULL;
}

static inline size_t
pkc_reader_remaining(const pkc_reader *r)
{
    return (size_t)(r->end - r->pos);
}

static inline size_t
pkc_reader_offset(const pkc_reader *r)
{
    return (size_t)(r->pos - r->start);
}

/* Record the first error; returns `status` so callers can `return`. */
static inline int
pkc_reader_fail(pkc_reader *r, int status, const char *field)
{
    if (r->status == PKC_OK) {
        r->status = status;
        r->err_offset = pkc_reader_offset(r);
        r->err_field = field;
    }
    return status;
}

/* Check that n more bytes are available. */
static inline int
pkc_reader_need(pkc_reader *r, size_t n, const char *field)
{
    if (r->status != PKC_OK)
        return r->status;
    if (pkc_reader_remaining(r) < n)
        return pkc_reader_fail(r, PKC_ERR_TRUNCATED, field);
    return PKC_OK;
}

static inline int
pkc_read_i8(pkc_reader *r, int8_t *out, const char *field)
{
    *out = 0;
    if (pkc_reader_need(r, 1, field))
        return r->status;
    *out = (int8_t)r->pos[0];
    r->pos += 1;
    return PKC_OK;
}

static inline uint16_t
pkc_load_u16(const uint8_t *p)
{
    return (uint16_t)(((uint16_t)p[0] << 8) | p[1]);
}

static inline uint32_t
pkc_load_u32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
           ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static inline uint64_t
pkc_load_u64(const uint8_t *p)
{
    return ((uint64_t)pkc_load_u32(p) << 32) | pkc_load_u32(p + 4);
}

static inline void
pkc_store_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void
pkc_store_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline void
pkc_store_u64(uint8_t *p, uint64_t v)
{
    pkc_store_u32(p, (uint32_t)(v >> 32));
    pkc_store_u32(p + 4, (uint32_t)v);
}

static inline int
pkc_read_i16(pkc_reader *r, int16_t *out, const char *field)
{
    *out = 0;
    if (pkc_reader_need(r, 2, field))
        return r->status;
    *out = (int16_t)pkc_load_u16(r->pos);
    r->pos += 2;
    return PKC_OK;
}

static inline int
pkc_read_i32(pkc_reader *r, int32_t *out, const char *field)
{
    *out = 0;
    if (pkc_reader_need(r, 4, field))
        return r->status;
    *out = (int32_t)pkc_load_u32(r->pos);
    r->pos += 4;
    return PKC_OK;
}

static inline int
pkc_read_u32(pkc_reader *r, uint32_t *out, const char *field)
{
    *out = 0;
    if (pkc_reader_need(r, 4, field))
        return r->status;
    *out = pkc_load_u32(r->pos);
    r->pos += 4;
    return PKC_OK;
}

static inline int
pkc_read_i64(pkc_reader *r, int64_t *out, const char *field)
{
    *out = 0;
    if (pkc_reader_need(r, 8, field))
        return r->status;
    *out = (int64_t)pkc_load_u64(r->pos);
    r->pos += 8;
    return PKC_OK;
}

/* Unsigned LEB128 varint of at most 5 bytes (uint32). */
int pkc_read_uvarint(pkc_reader *r, uint32_t *out, const char *field);
/* Unsigned varint of at most 10 bytes (uint64). */
int pkc_read_uvarlong(pkc_reader *r, uint64_t *out, const char *field);
/* Zig-zag signed varint, int32 (at most 5 bytes). */
int pkc_read_varint(pkc_reader *r, int32_t *out, const char *field);
/* Zig-zag signed varint, int64 (at most 10 bytes). */
int pkc_read_varlong(pkc_reader *r, int64_t *out, const char *field);

/* Skip n bytes. */
int pkc_read_skip(pkc_reader *r, size_t n, const char *field);
/* A raw view of n bytes. */
int pkc_read_raw(pkc_reader *r, size_t n, pkc_slice *out, const char *field);

/*
 * Strings and bytes.  `compact` selects the flexible encoding (unsigned
 * varint of length + 1, 0 meaning null) over the classic one (int16 length
 * for strings, int32 for bytes, -1 meaning null).  A null where
 * `nullable` is 0 is PKC_ERR_INVALID.  The view points into the input.
 */
int pkc_read_string(pkc_reader *r, int compact, int nullable, pkc_slice *out,
                    const char *field);
int pkc_read_bytes(pkc_reader *r, int compact, int nullable, pkc_slice *out,
                   const char *field);

/*
 * An array count, classic (int32, -1 null) or compact (uvarint, 0 null).
 * `*out` is -1 for a null array (only if nullable).  The count is rejected
 * with PKC_ERR_INVALID if it is larger than `max` or larger than the bytes
 * left divided by `min_elem_size` (each element needs at least that many
 * bytes), so no caller allocates memory proportional to a hostile count.
 */
int pkc_read_array_count(pkc_reader *r, int compact, int nullable,
                         size_t min_elem_size, int32_t max, int32_t *out,
                         const char *field);

/* Skip a tagged-field section (flexible versions): count, then per field a
 * tag, a size and the bytes. */
int pkc_read_skip_tags(pkc_reader *r, const char *field);

/* ------------------------------------------------------------------ writer */

typedef struct {
    uint8_t *buf;
    size_t len;
    size_t cap;
    size_t max;  /* hard cap on len; PKC_ERR_TOO_LARGE past it */
    int status;  /* first error, sticky */
} pkc_writer;

/* Initialise with `initial` bytes reserved (may be 0) and a hard cap of
 * `max` bytes (0 means SIZE_MAX / 2). Returns a status. */
int pkc_writer_init(pkc_writer *w, size_t initial, size_t max);
void pkc_writer_free(pkc_writer *w);
/* Give up ownership of the buffer: returns it (caller frees with free()). */
uint8_t *pkc_writer_detach(pkc_writer *w, size_t *len);
/* Ensure room for n more bytes; returns a status (sticky). */
int pkc_writer_reserve(pkc_writer *w, size_t n);
static inline void
pkc_writer_reset(pkc_writer *w)
{
    w->len = 0;
    w->status = PKC_OK;
}

/* Each write returns the offset it wrote at (valid only while status is
 * PKC_OK). */
size_t pkc_write_raw(pkc_writer *w, const void *data, size_t n);
size_t pkc_write_i8(pkc_writer *w, int8_t v);
size_t pkc_write_i16(pkc_writer *w, int16_t v);
size_t pkc_write_i32(pkc_writer *w, int32_t v);
size_t pkc_write_i64(pkc_writer *w, int64_t v);
size_t pkc_write_uvarint(pkc_writer *w, uint64_t v);
size_t pkc_write_varint(pkc_writer *w, int64_t v); /* zig-zag, 64-bit */
/* String/bytes: len -1 writes null.  compact selects the flexible form. */
size_t pkc_write_string(pkc_writer *w, int compact, const void *s,
                        int32_t len);
size_t pkc_write_bytes(pkc_writer *w, int compact, const void *b,
                       int32_t len);
/* Array count; -1 is null. */
size_t pkc_write_array_count(pkc_writer *w, int compact, int32_t n);
/* An empty tagged-field section. */
size_t pkc_write_empty_tags(pkc_writer *w);

/* Back-patching of fixed-width placeholders. */
static inline void
pkc_patch_i32(pkc_writer *w, size_t off, int32_t v)
{
    if (w->status == PKC_OK && off + 4 <= w->len)
        pkc_store_u32(w->buf + off, (uint32_t)v);
}

static inline void
pkc_patch_u32(pkc_writer *w, size_t off, uint32_t v)
{
    if (w->status == PKC_OK && off + 4 <= w->len)
        pkc_store_u32(w->buf + off, v);
}

static inline void
pkc_patch_i16(pkc_writer *w, size_t off, int16_t v)
{
    if (w->status == PKC_OK && off + 2 <= w->len)
        pkc_store_u16(w->buf + off, (uint16_t)v);
}

/* Bytes needed for the unsigned / zig-zag varint encodings of v. */
size_t pkc_uvarint_size(uint64_t v);
size_t pkc_varint_size(int64_t v);
