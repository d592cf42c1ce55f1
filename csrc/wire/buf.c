/*
 * buf.c - out-of-line parts of the reader and writer (see buf.h).
 */
#include "buf.h"

#include <stdlib.h>

const char *
pkc_status_str(int status)
{
    switch (status) {
    case PKC_OK: return "ok";
    case PKC_ERR_TRUNCATED: return "truncated";
    case PKC_ERR_INVALID: return "invalid length, count or value";
    case PKC_ERR_VARINT: return "overlong varint";
    case PKC_ERR_CRC: return "CRC mismatch";
    case PKC_ERR_TOO_LARGE: return "size over the configured limit";
    case PKC_ERR_NOMEM: return "out of memory";
    case PKC_ERR_CODEC: return "compression codec not available";
    case PKC_ERR_COMPRESSION: return "corrupt compressed data";
    case PKC_ERR_IO: return "socket error";
    case PKC_ERR_TIMEOUT: return "timed out";
    case PKC_ERR_INTR: return "interrupted";
    case PKC_ERR_CLOSED: return "connection closed by peer";
    case PKC_ERR_UNSUPPORTED: return "unsupported format or version";
    case PKC_IN_PROGRESS: return "in progress";
    case PKC_ERR_TLS: return "TLS error";
    case PKC_ERR_AUTH: return "authentication failed";
    default: return "unknown error";
    }
}

/* ------------------------------------------------------------------ reader */

int
pkc_read_uvarlong(pkc_reader *r, uint64_t *out, const char *field)
{
    uint64_t v = 0;
    unsigned shift = 0;

    *out = 0;
    if (r->status != PKC_OK)
        return r->status;
    for (int i = 0; i < 10; i++) {
        if (r->pos >= r->end)
            return pkc_reader_fail(r, PKC_ERR_TRUNCATED, field);
        uint8_t b = *r->pos++;
        if (i == 9 && (b & 0xfe))
            return pkc_reader_fail(r, PKC_ERR_VARINT, field);
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return PKC_OK;
        }
        shift += 7;
    }
    return pkc_reader_fail(r, PKC_ERR_VARINT, field);
}

int
pkc_read_uvarint(pkc_reader *r, uint32_t *out, const char *field)
{
    uint32_t v = 0;
    unsigned shift = 0;

    *out = 0;
    if (r->status != PKC_OK)
        return r->status;
    for (int i = 0; i < 5; i++) {
        if (r->pos >= r->end)
            return pkc_reader_fail(r, PKC_ERR_TRUNCATED, field);
        uint8_t b = *r->pos++;
        if (i == 4 && (b & 0xf0))
            return pkc_reader_fail(r, PKC_ERR_VARINT, field);
        v |= (uint32_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return PKC_OK;
        }
        shift += 7;
    }
    return pkc_reader_fail(r, PKC_ERR_VARINT, field);
}

int
pkc_read_varint(pkc_reader *r, int32_t *out, const char *field)
{
    uint32_t u;

    *out = 0;
    if (pkc_read_uvarint(r, &u, field))
        return r->status;
    *out = (int32_t)((u >> 1) ^ (~(u & 1) + 1));
    return PKC_OK;
}

int
pkc_read_varlong(pkc_reader *r, int64_t *out, const char *field)
{
    uint64_t u;

    *out = 0;
    if (pkc_read_uvarlong(r, &u, field))
        return r->status;
    *out = (int64_t)((u >> 1) ^ (~(u & 1) + 1));
    return PKC_OK;
}

int
pkc_read_skip(pkc_reader *r, size_t n, const char *field)
{
    if (pkc_reader_need(r, n, field))
        return r->status;
    r->pos += n;
    return PKC_OK;
}

int
pkc_read_raw(pkc_reader *r, size_t n, pkc_slice *out, const char *field)
{
    out->ptr = NULL;
    out->len = -1;
    if (n > INT32_MAX)
        return pkc_reader_fail(r, PKC_ERR_INVALID, field);
    if (pkc_reader_need(r, n, field))
        return r->status;
    out->ptr = r->pos;
    out->len = (int32_t)n;
    r->pos += n;
    return PKC_OK;
}

/* Read a length prefix; *len is -1 for null. */
static int
read_length(pkc_reader *r, int compact, int wide, int nullable, int64_t *len,
            const char *field)
{
    *len = -1;
    if (compact) {
        uint32_t u;
        if (pkc_read_uvarint(r, &u, field))
            return r->status;
        *len = (int64_t)u - 1;
    }
    else if (wide) {
        int32_t v;
        if (pkc_read_i32(r, &v, field))
            return r->status;
        *len = v;
    }
    else {
        int16_t v;
        if (pkc_read_i16(r, &v, field))
            return r->status;
        *len = v;
    }
    if (*len == -1) {
        if (!nullable)
            return pkc_reader_fail(r, PKC_ERR_INVALID, field);
        return PKC_OK;
    }
    if (*len < 0)
        return pkc_reader_fail(r, PKC_ERR_INVALID, field);
    return PKC_OK;
}

static int
read_sized(pkc_reader *r, int compact, int wide, int nullable, pkc_slice *out,
           const char *field)
{
    int64_t len;

    out->ptr = NULL;
    out->len = -1;
    if (read_length(r, compact, wide, nullable, &len, field))
        return r->status;
    if (len < 0)
        return PKC_OK;
    return pkc_read_raw(r, (size_t)len, out, field);
}

int
pkc_read_string(pkc_reader *r, int compact, int nullable, pkc_slice *out,
                const char *field)
{
    return read_sized(r, compact, 0, nullable, out, field);
}

int
pkc_read_bytes(pkc_reader *r, int compact, int nullable, pkc_slice *out,
               const char *field)
{
    return read_sized(r, compact, 1, nullable, out, field);
}

int
pkc_read_array_count(pkc_reader *r, int compact, int nullable,
                     size_t min_elem_size, int32_t max, int32_t *out,
                     const char *field)
{
    int64_t n;

    *out = 0;
    if (read_length(r, compact, 1, nullable, &n, field))
        return r->status;
    if (n < 0) {
        *out = -1;
        return PKC_OK;
    }
    if (n > max)
        return pkc_reader_fail(r, PKC_ERR_INVALID, field);
    if (min_elem_size == 0)
        min_elem_size = 1;
    if ((uint64_t)n > pkc_reader_remaining(r) / min_elem_size)
        return pkc_reader_fail(r, PKC_ERR_TRUNCATED, field);
    *out = (int32_t)n;
    return PKC_OK;
}

int
pkc_read_skip_tags(pkc_reader *r, const char *field)
{
    uint32_t count, tag, size;

    if (pkc_read_uvarint(r, &count, field))
        return r->status;
    /* Each tagged field needs at least 2 bytes (tag, size). */
    if (count > pkc_reader_remaining(r) / 2)
        return pkc_reader_fail(r, PKC_ERR_TRUNCATED, field);
    for (uint32_t i = 0; i < count; i++) {
        if (pkc_read_uvarint(r, &tag, field) ||
            pkc_read_uvarint(r, &size, field) ||
            pkc_read_skip(r, size, field))
            return r->status;
    }
    return PKC_OK;
}

/* ------------------------------------------------------------------ writer */

int
pkc_writer_init(pkc_writer *w, size_t initial, size_t max)
{
    w->buf = NULL;
    w->len = 0;
    w->cap = 0;
    w->max = max ? max : SIZE_MAX / 2;
    w->status = PKC_OK;
    if (initial)
        return pkc_writer_reserve(w, initial);
    return PKC_OK;
}

void
pkc_writer_free(pkc_writer *w)
{
    free(w->buf);
    w->buf = NULL;
    w->len = w->cap = 0;
}

uint8_t *
pkc_writer_detach(pkc_writer *w, size_t *len)
{
    uint8_t *buf = w->buf;

    if (len)
        *len = w->len;
    w->buf = NULL;
    w->len = w->cap = 0;
    return buf;
}

int
pkc_writer_reserve(pkc_writer *w, size_t n)
{
    size_t want, newcap;
    uint8_t *nb;

    if (w->status != PKC_OK)
        return w->status;
    if (n > w->max || w->len > w->max - n) {
        w->status = PKC_ERR_TOO_LARGE;
        return w->status;
    }
    want = w->len + n;
    if (want <= w->cap)
        return PKC_OK;
    newcap = w->cap ? w->cap : 256;
    while (newcap < want)
        newcap = newcap > SIZE_MAX / 2 ? want : newcap * 2;
    if (newcap > w->max)
        newcap = w->max > want ? w->max : want;
    nb = realloc(w->buf, newcap);
    if (nb == NULL) {
        w->status = PKC_ERR_NOMEM;
        return w->status;
    }
    w->buf = nb;
    w->cap = newcap;
    return PKC_OK;
}

size_t
pkc_write_raw(pkc_writer *w, const void *data, size_t n)
{
    size_t off = w->len;

    if (pkc_writer_reserve(w, n))
        return off;
    if (n)
        memcpy(w->buf + w->len, data, n);
    w->len += n;
    return off;
}

size_t
pkc_write_i8(pkc_writer *w, int8_t v)
{
    uint8_t b = (uint8_t)v;
    return pkc_write_raw(w, &b, 1);
}

size_t
pkc_write_i16(pkc_writer *w, int16_t v)
{
    uint8_t b[2];
    pkc_store_u16(b, (uint16_t)v);
    return pkc_write_raw(w, b, 2);
}

size_t
pkc_write_i32(pkc_writer *w, int32_t v)
{
    uint8_t b[4];
    pkc_store_u32(b, (uint32_t)v);
    return pkc_write_raw(w, b, 4);
}

size_t
pkc_write_i64(pkc_writer *w, int64_t v)
{
    uint8_t b[8];
    pkc_store_u64(b, (uint64_t)v);
    return pkc_write_raw(w, b, 8);
}

size_t
pkc_write_uvarint(pkc_writer *w, uint64_t v)
{
    uint8_t b[10];
    size_t n = 0;

    while (v >= 0x80) {
        b[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    b[n++] = (uint8_t)v;
    return pkc_write_raw(w, b, n);
}

size_t
pkc_write_varint(pkc_writer *w, int64_t v)
{
    uint64_t u = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    return pkc_write_uvarint(w, u);
}

size_t
pkc_uvarint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

size_t
pkc_varint_size(int64_t v)
{
    return pkc_uvarint_size(((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

static size_t
write_sized(pkc_writer *w, int compact, int wide, const void *p, int32_t len)
{
    size_t off = w->len;

    if (len < 0) {
        if (compact)
            pkc_write_uvarint(w, 0);
        else if (wide)
            pkc_write_i32(w, -1);
        else
            pkc_write_i16(w, -1);
        return off;
    }
    if (compact)
        pkc_write_uvarint(w, (uint64_t)len + 1);
    else if (wide)
        pkc_write_i32(w, len);
    else {
        if (len > INT16_MAX) {
            if (w->status == PKC_OK)
                w->status = PKC_ERR_TOO_LARGE;
            return off;
        }
        pkc_write_i16(w, (int16_t)len);
    }
    pkc_write_raw(w, p, (size_t)len);
    return off;
}

size_t
pkc_write_string(pkc_writer *w, int compact, const void *s, int32_t len)
{
    return write_sized(w, compact, 0, s, len);
}

size_t
pkc_write_bytes(pkc_writer *w, int compact, const void *b, int32_t len)
{
    return write_sized(w, compact, 1, b, len);
}

size_t
pkc_write_array_count(pkc_writer *w, int compact, int32_t n)
{
    if (compact)
        return pkc_write_uvarint(w, n < 0 ? 0 : (uint64_t)n + 1);
    return pkc_write_i32(w, n);
}

size_t
pkc_write_empty_tags(pkc_writer *w)
{
    return pkc_write_uvarint(w, 0);
}
