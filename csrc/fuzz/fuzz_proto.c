/*
 * fuzz_proto.c - libFuzzer target for the table-driven protocol codec
 * (csrc/wire/proto.c), Python-free.
 *
 * Input: byte 0 selects the API (index into the API table, modulo its
 * size), byte 1 the version (modulo the API's range), byte 2 the mode:
 *   bit 0  request (0) or response (1)
 *   bit 1  decode (0): the rest is a message body, decoded with a visitor
 *          that checks every view lies inside the input and that struct
 *          and array events nest; or encode (1): the rest drives a source
 *          (presence bits, values, array lengths, nulls); whatever
 *          encodes successfully must decode again (value-exact round
 *          trips are the job of the hypothesis tests in tests/).
 *
 * Build and run (60 s, ASan + UBSan): scripts/fuzz.sh 60 proto, or by hand
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined \
 *       -fno-sanitize-recover=undefined -I csrc/wire \
 *       csrc/fuzz/fuzz_proto.c csrc/wire/proto.c csrc/wire/buf.c \
 *       -o csrc/fuzz/build/fuzz_proto
 *   csrc/fuzz/build/fuzz_proto -max_total_time=60 -rss_limit_mb=512 \
 *       csrc/fuzz/build/corpus_proto csrc/fuzz/corpus/proto
 * The seed corpus holds a valid body (from tests/proto_kat.py) for the
 * versions that matter of every API, in decode mode, plus a few encode-mode
 * seeds.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

/* ------------------------------------------------------- decode checks */

typedef struct {
    const uint8_t *lo, *hi;
    int depth;
    long events;
} dcheck;

static void
check_view(dcheck *c, const uint8_t *p, int32_t len)
{
    if (len < 0 || (len > 0 && (p < c->lo || p + len > c->hi)))
        abort();
}

static int
d_begin(void *ctx, const pkc_proto_field *f, const pkc_proto_struct *s)
{
    dcheck *c = ctx;
    (void)f;
    (void)s;
    c->depth++;
    c->events++;
    if (c->depth > 2 * PKC_PROTO_MAX_DEPTH + 2)
        abort();
    return 0;
}

static int
d_end(void *ctx, const pkc_proto_field *f, const pkc_proto_struct *s)
{
    dcheck *c = ctx;
    (void)f;
    (void)s;
    if (--c->depth < 0)
        abort();
    return 0;
}

static int
d_barr(void *ctx, const pkc_proto_field *f, int32_t n)
{
    dcheck *c = ctx;
    (void)f;
    if (n < 0 || (size_t)n > (size_t)(c->hi - c->lo))
        abort(); /* never more elements than input bytes */
    c->depth++;
    c->events++;
    return 0;
}

static int
d_earr(void *ctx, const pkc_proto_field *f)
{
    dcheck *c = ctx;
    (void)f;
    if (--c->depth < 0)
        abort();
    return 0;
}

static int
d_null(void *ctx, const pkc_proto_field *f)
{
    (void)f;
    ((dcheck *)ctx)->events++;
    return 0;
}

static int
d_int(void *ctx, const pkc_proto_field *f, int64_t v)
{
    (void)f;
    (void)v;
    ((dcheck *)ctx)->events++;
    return 0;
}

static int
d_bool(void *ctx, const pkc_proto_field *f, int v)
{
    (void)f;
    if (v != 0 && v != 1)
        abort();
    ((dcheck *)ctx)->events++;
    return 0;
}

static int
d_float(void *ctx, const pkc_proto_field *f, double v)
{
    (void)f;
    (void)v;
    ((dcheck *)ctx)->events++;
    return 0;
}

static int
d_view(void *ctx, const pkc_proto_field *f, pkc_slice v)
{
    dcheck *c = ctx;
    (void)f;
    /* defaults of absent tagged fields point at static strings */
    if (v.len > 0 && !(v.ptr >= c->lo && v.ptr < c->hi) &&
        f->def_str == NULL)
        abort();
    if (v.ptr >= c->lo && v.ptr < c->hi)
        check_view(c, v.ptr, v.len);
    c->events++;
    return 0;
}

static int
d_uuid(void *ctx, const pkc_proto_field *f, const uint8_t *v16)
{
    dcheck *c = ctx;
    (void)f;
    if (v16 >= c->lo && v16 < c->hi)
        check_view(c, v16, 16);
    c->events++;
    return 0;
}

static const pkc_proto_visitor check_visitor = {
    NULL,   d_begin, d_end,   d_barr, d_earr, d_null,
    d_int,  d_bool,  d_float, d_view, d_view, d_uuid,
};

static int
decode(const uint8_t *data, size_t len, pkc_proto_kind kind, int key,
       int version, long *events)
{
    dcheck c = {data, data + len, 0, 0};
    pkc_proto_visitor vis = check_visitor;
    pkc_reader r;
    pkc_proto_error err;
    int rc;

    vis.ctx = &c;
    pkc_reader_init(&r, data, len);
    rc = pkc_proto_decode(&r, kind, key, version, &vis, &err);
    if (rc == 0 && c.depth != 0)
        abort();
    if (rc != 0 && (err.status == 0 || r.status == PKC_OK))
        abort(); /* a failure must say why, in the reader too */
    if (rc != 0 && strlen(err.path) >= sizeof(err.path))
        abort();
    *events = c.events;
    return rc;
}

/* ----------------------------------------------------- fuzz-driven source */

typedef struct {
    const uint8_t *p, *end;
    uint8_t scratch[64];
} fsrc;

static unsigned
take(fsrc *s)
{
    return s->p < s->end ? *s->p++ : 0;
}

static int
s_has(void *ctx, const pkc_proto_field *f)
{
    (void)f;
    return (int)(take(ctx) & 1);
}

static int
s_int(void *ctx, const pkc_proto_field *f, int64_t *out)
{
    fsrc *s = ctx;
    uint64_t u = 0;
    unsigned n = take(s) % 9;

    for (unsigned i = 0; i < n; i++)
        u = (u << 8) | take(s);
    switch (f->type) {
    case PKC_PT_BOOL: *out = (int64_t)(u & 1); break;
    case PKC_PT_INT8: *out = (int8_t)u; break;
    case PKC_PT_INT16: *out = (int16_t)u; break;
    case PKC_PT_UINT16: *out = (uint16_t)u; break;
    case PKC_PT_INT32: *out = (int32_t)u; break;
    case PKC_PT_UINT32: *out = (uint32_t)u; break;
    default: *out = (int64_t)u; break;
    }
    return 0;
}

static int
s_float(void *ctx, const pkc_proto_field *f, double *out)
{
    (void)f;
    *out = (double)(int)take(ctx);
    return 0;
}

static int
s_bytes(void *ctx, const pkc_proto_field *f, pkc_slice *out)
{
    fsrc *s = ctx;
    unsigned n = take(s);

    if (n == 0xff) {
        out->ptr = NULL;
        out->len = -1;
        return 0;
    }
    if (f->type == PKC_PT_UUID)
        n = (n & 1) ? 16 : n % 20;
    else
        n %= sizeof(s->scratch);
    for (unsigned i = 0; i < n; i++)
        s->scratch[i] = (uint8_t)take(s);
    out->ptr = s->scratch;
    out->len = (int32_t)n;
    return 0;
}

static int
s_enter_array(void *ctx, const pkc_proto_field *f, int32_t *count)
{
    unsigned b = take(ctx);
    (void)f;
    *count = b == 0xff ? -1 : (int32_t)(b % 4);
    return 0;
}

static int
s_enter_element(void *ctx, const pkc_proto_field *f, int32_t i)
{
    (void)ctx;
    (void)f;
    (void)i;
    return 0;
}

static void
s_leave_array(void *ctx, const pkc_proto_field *f)
{
    (void)ctx;
    (void)f;
}

static int
s_enter_struct(void *ctx, const pkc_proto_field *f, const pkc_proto_struct *st,
               int *is_null)
{
    (void)st;
    *is_null = f != NULL && take(ctx) == 0xff;
    return 0;
}

static void
s_leave_struct(void *ctx, const pkc_proto_field *f, const pkc_proto_struct *st)
{
    (void)ctx;
    (void)f;
    (void)st;
}

static const pkc_proto_source fuzz_source = {
    NULL,          s_has,         s_int,           s_float,
    s_bytes,       s_enter_array, s_enter_element, s_leave_array,
    s_enter_struct, s_leave_struct,
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const pkc_proto_api *api;
    pkc_proto_kind kind;
    int version, range;
    long events;

    if (size < 3)
        return 0;
    api = pkc_proto_api_at(data[0] % pkc_proto_api_count());
    range = api->max_version - api->min_version + 1;
    version = api->min_version + data[1] % range;
    kind = (data[2] & 1) ? PKC_PROTO_RESPONSE : PKC_PROTO_REQUEST;
    data += 3;
    size -= 3;

    if (!(data[-1] & 2)) {
        /* decode mode; copy to an exact-size heap buffer so ASan sees any
         * read past the end */
        uint8_t *copy = malloc(size ? size : 1);
        if (copy == NULL)
            return 0;
        memcpy(copy, data, size);
        decode(copy, size, kind, api->key, version, &events);
        free(copy);
        return 0;
    }

    /* encode mode: whatever encodes must decode */
    {
        fsrc s = {data, data + size, {0}};
        pkc_proto_source src = fuzz_source;
        pkc_proto_error err;
        pkc_writer w;
        int rc;

        src.ctx = &s;
        if (pkc_writer_init(&w, 0, 1 << 20) != PKC_OK)
            return 0;
        rc = pkc_proto_encode(&w, kind, api->key, version, &src, &err);
        if (rc == 0) {
            uint8_t *copy = malloc(w.len ? w.len : 1);
            if (copy != NULL) {
                if (w.len)
                    memcpy(copy, w.buf, w.len);
                if (decode(copy, w.len, kind, api->key, version, &events))
                    abort();
                free(copy);
            }
        }
        else if (err.status == 0)
            abort();
        pkc_writer_free(&w);
    }
    return 0;
}
