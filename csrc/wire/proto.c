/*
 * proto.c - the table walker behind proto.h: encodes and decodes any
 * message described by the generated tables of proto_gen.h.
 *
 * Decoding reads only through the pkc_reader of buf.h.  Array counts are
 * checked against the bytes left (each element needs at least its minimum
 * encoded size at this version) before any callback sees them, so a
 * hostile count never makes a caller allocate more than the input could
 * hold.  Nesting depth is bounded by the tables (PKC_PROTO_MAX_DEPTH).
 */
#include "proto.h"
/* PKC_PROTO_GEN_FILE lets tests build the walker over other generated
 * tables (tests/test_proto_gen.py). */
#ifdef PKC_PROTO_GEN_FILE
#include PKC_PROTO_GEN_FILE
#else
#include "proto_gen.h"
#endif

#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------- tables */

size_t
pkc_proto_api_count(void)
{
    return PKC_PROTO_N_APIS;
}

const pkc_proto_api *
pkc_proto_api_at(size_t i)
{
    return i < PKC_PROTO_N_APIS ? &pkc_proto_apis[i] : NULL;
}

const pkc_proto_api *
pkc_proto_api_find(int key)
{
    for (size_t i = 0; i < PKC_PROTO_N_APIS; i++) {
        if (pkc_proto_apis[i].key == key)
            return &pkc_proto_apis[i];
    }
    return NULL;
}

size_t
pkc_proto_struct_count(void)
{
    return PKC_PROTO_N_STRUCTS;
}

const pkc_proto_struct *
pkc_proto_struct_at(size_t i)
{
    return i < PKC_PROTO_N_STRUCTS ? &pkc_proto_structs[i] : NULL;
}

size_t
pkc_proto_field_count(void)
{
    return PKC_PROTO_N_FIELDS;
}

const pkc_proto_field *
pkc_proto_field_at(size_t i)
{
    return i < PKC_PROTO_N_FIELDS ? &pkc_proto_fields[i] : NULL;
}

size_t
pkc_proto_field_index(const pkc_proto_field *f)
{
    return (size_t)(f - pkc_proto_fields);
}

const pkc_proto_field *
pkc_proto_struct_field(const pkc_proto_struct *s, const char *name)
{
    for (unsigned i = 0; i < s->count; i++) {
        const pkc_proto_field *f = &pkc_proto_fields[s->first + i];
        if (strcmp(f->name, name) == 0)
            return f;
    }
    return NULL;
}

const pkc_proto_struct *
pkc_proto_message(const pkc_proto_api *api, pkc_proto_kind kind)
{
    return &pkc_proto_structs[kind == PKC_PROTO_REQUEST ? api->request
                                                        : api->response];
}

int
pkc_proto_is_flexible(const pkc_proto_api *api, int v)
{
    return api->flexible_from >= 0 && v >= api->flexible_from;
}

int
pkc_proto_request_header_version(int api_key, int v)
{
    const pkc_proto_api *api = pkc_proto_api_find(api_key);

    if (api == NULL)
        return -1;
    return pkc_proto_is_flexible(api, v) ? 2 : 1;
}

int
pkc_proto_response_header_version(int api_key, int v)
{
    const pkc_proto_api *api = pkc_proto_api_find(api_key);

    if (api == NULL)
        return -1;
    /* ApiVersions: the response header stays v0 so that a client can read
     * it whatever version it asked for (KIP-511). */
    if (api_key == PKC_API_API_VERSIONS)
        return 0;
    return pkc_proto_is_flexible(api, v) ? 1 : 0;
}

const pkc_proto_struct *
pkc_proto_header(pkc_proto_kind kind)
{
    return &pkc_proto_structs[kind == PKC_PROTO_REQUEST
                                  ? PKC_PROTO_REQUEST_HEADER
                                  : PKC_PROTO_RESPONSE_HEADER];
}

int
pkc_proto_header_flexible_from(pkc_proto_kind kind)
{
    return kind == PKC_PROTO_REQUEST
               ? PKC_PROTO_REQUEST_HEADER_FLEXIBLE_FROM
               : PKC_PROTO_RESPONSE_HEADER_FLEXIBLE_FROM;
}

/* ------------------------------------------------------- walker state */

typedef struct {
    const pkc_proto_field *f;
    int32_t index; /* element index inside an array, else -1 */
} path_ent;

typedef struct {
    path_ent path[PKC_PROTO_MAX_DEPTH + 1];
    int depth;
    int version;
    pkc_proto_error *err;
} walk;

static const pkc_proto_field *
struct_field(const pkc_proto_struct *s, unsigned i)
{
    return &pkc_proto_fields[s->first + i];
}

static const pkc_proto_struct *
sub_struct(const pkc_proto_field *f)
{
    return &pkc_proto_structs[f->sub];
}

static int
in_versions(const walk *wk, const pkc_proto_field *f)
{
    return pkc_proto_in(wk->version, f->ver_lo, f->ver_hi);
}

static int
is_tagged(const walk *wk, const pkc_proto_field *f, int flexible)
{
    return flexible && pkc_proto_in(wk->version, f->tag_lo, f->tag_hi);
}

static int
is_nullable(const walk *wk, const pkc_proto_field *f)
{
    return pkc_proto_in(wk->version, f->null_lo, f->null_hi);
}

static int
is_compact(const walk *wk, const pkc_proto_field *f, int flexible)
{
    return flexible && pkc_proto_in(wk->version, f->flex_lo, f->flex_hi);
}

static int
push(walk *wk, const pkc_proto_field *f)
{
    if (wk->depth >= PKC_PROTO_MAX_DEPTH)
        return -1;
    wk->path[wk->depth].f = f;
    wk->path[wk->depth].index = -1;
    wk->depth++;
    return 0;
}

static void
pop(walk *wk)
{
    wk->depth--;
}

static void
set_index(walk *wk, int32_t i)
{
    wk->path[wk->depth - 1].index = i;
}

/* Write the current path ("topics[3].partitions[0].leader_id"). */
static void
format_path(walk *wk, const char *suffix)
{
    char *p = wk->err->path;
    size_t left = sizeof(wk->err->path);

    p[0] = '\0';
    for (int i = 0; i < wk->depth && left > 1; i++) {
        int n;
        if (wk->path[i].index >= 0)
            n = snprintf(p, left, "%s%s[%ld]", i ? "." : "",
                         wk->path[i].f->name, (long)wk->path[i].index);
        else
            n = snprintf(p, left, "%s%s", i ? "." : "",
                         wk->path[i].f->name);
        if (n < 0 || (size_t)n >= left)
            return;
        p += n;
        left -= (size_t)n;
    }
    if (suffix != NULL)
        snprintf(p, left, "%s", suffix);
}

/* The first error wins. */
static int
set_error(walk *wk, int status, const char *what, const char *suffix)
{
    if (wk->err->status == 0) {
        wk->err->status = status;
        wk->err->what = what;
        format_path(wk, suffix);
    }
    return wk->err->status;
}

/* ------------------------------------------------------------- decoding */

/* The reader failed: record its status with the path. */
static int
read_failed(walk *wk, pkc_reader *r)
{
    if (wk->err->status == 0) {
        wk->err->offset = r->err_offset;
        set_error(wk, r->status, NULL, NULL);
        r->err_field = wk->err->path;
    }
    return wk->err->status;
}

/* A visitor callback returned rc != 0. */
static int
callback_failed(walk *wk, pkc_reader *r, int rc)
{
    if (rc == PKC_PROTO_ABORT) {
        if (wk->err->status == 0)
            wk->err->status = PKC_PROTO_ABORT;
        return wk->err->status;
    }
    pkc_reader_fail(r, rc < 0 ? rc : PKC_ERR_INVALID, NULL);
    return read_failed(wk, r);
}

#define RD(call)                                                             \
    do {                                                                     \
        if ((call) != PKC_OK)                                                \
            return read_failed(wk, r);                                       \
    } while (0)

#define CB(cb, ...)                                                          \
    do {                                                                     \
        if (vis->cb != NULL) {                                               \
            int rc_ = vis->cb(vis->ctx, __VA_ARGS__);                        \
            if (rc_ != 0)                                                    \
                return callback_failed(wk, r, rc_);                          \
        }                                                                    \
    } while (0)

static size_t min_struct_size(const walk *wk, const pkc_proto_struct *s,
                              int flexible, int depth);

/* Smallest possible encoding of one value of f's (element) type. */
static size_t
min_value_size(const walk *wk, const pkc_proto_field *f, int flexible,
               int elem, int depth)
{
    int compact = is_compact(wk, f, flexible);

    switch (f->type) {
    case PKC_PT_BOOL:
    case PKC_PT_INT8:
        return 1;
    case PKC_PT_INT16:
    case PKC_PT_UINT16:
        return 2;
    case PKC_PT_INT32:
    case PKC_PT_UINT32:
        return 4;
    case PKC_PT_INT64:
    case PKC_PT_FLOAT64:
        return 8;
    case PKC_PT_UUID:
        return 16;
    case PKC_PT_STRING:
        return compact ? 1 : 2;
    case PKC_PT_BYTES:
    case PKC_PT_RECORDS:
        return compact ? 1 : 4;
    case PKC_PT_STRUCT:
        if (!elem && is_nullable(wk, f))
            return 1;
        return min_struct_size(wk, sub_struct(f), flexible, depth + 1);
    }
    return 1;
}

static size_t
min_struct_size(const walk *wk, const pkc_proto_struct *s, int flexible,
                int depth)
{
    size_t n = flexible ? 1 : 0; /* the tagged-field count */

    if (depth > PKC_PROTO_MAX_DEPTH)
        return n;
    for (unsigned i = 0; i < s->count; i++) {
        const pkc_proto_field *f = struct_field(s, i);
        if (!in_versions(wk, f) || is_tagged(wk, f, flexible))
            continue;
        if (f->flags & PKC_PF_ARRAY)
            n += is_compact(wk, f, flexible) ? 1 : 4;
        else
            n += min_value_size(wk, f, flexible, 0, depth);
    }
    return n;
}

static int dec_struct(walk *wk, pkc_reader *r, const pkc_proto_field *holder,
                      const pkc_proto_struct *s, int flexible,
                      const pkc_proto_visitor *vis);

/* One value of f: the field itself, or one element when elem is set. */
static int
dec_value(walk *wk, pkc_reader *r, const pkc_proto_field *f, int flexible,
          int elem, const pkc_proto_visitor *vis)
{
    int compact = is_compact(wk, f, flexible);
    int nullable = !elem && is_nullable(wk, f);
    const char *nm = f->name;

    switch (f->type) {
    case PKC_PT_BOOL: {
        int8_t v;
        RD(pkc_read_i8(r, &v, nm));
        CB(on_bool, f, v != 0);
        return 0;
    }
    case PKC_PT_INT8: {
        int8_t v;
        RD(pkc_read_i8(r, &v, nm));
        CB(on_int, f, v);
        return 0;
    }
    case PKC_PT_INT16: {
        int16_t v;
        RD(pkc_read_i16(r, &v, nm));
        CB(on_int, f, v);
        return 0;
    }
    case PKC_PT_UINT16: {
        int16_t v;
        RD(pkc_read_i16(r, &v, nm));
        CB(on_int, f, (uint16_t)v);
        return 0;
    }
    case PKC_PT_INT32: {
        int32_t v;
        RD(pkc_read_i32(r, &v, nm));
        CB(on_int, f, v);
        return 0;
    }
    case PKC_PT_UINT32: {
        uint32_t v;
        RD(pkc_read_u32(r, &v, nm));
        CB(on_int, f, v);
        return 0;
    }
    case PKC_PT_INT64: {
        int64_t v;
        RD(pkc_read_i64(r, &v, nm));
        CB(on_int, f, v);
        return 0;
    }
    case PKC_PT_FLOAT64: {
        int64_t bits;
        double d;
        RD(pkc_read_i64(r, &bits, nm));
        memcpy(&d, &bits, sizeof(d));
        CB(on_float, f, d);
        return 0;
    }
    case PKC_PT_UUID: {
        pkc_slice s;
        RD(pkc_read_raw(r, 16, &s, nm));
        CB(on_uuid, f, s.ptr);
        return 0;
    }
    case PKC_PT_STRING: {
        pkc_slice s;
        RD(pkc_read_string(r, compact, nullable, &s, nm));
        if (s.len < 0)
            CB(on_null, f);
        else
            CB(on_string, f, s);
        return 0;
    }
    case PKC_PT_BYTES:
    case PKC_PT_RECORDS: {
        pkc_slice s;
        RD(pkc_read_bytes(r, compact, nullable, &s, nm));
        if (s.len < 0)
            CB(on_null, f);
        else
            CB(on_bytes, f, s);
        return 0;
    }
    case PKC_PT_STRUCT:
        if (nullable) {
            int8_t marker;
            RD(pkc_read_i8(r, &marker, nm));
            if (marker < 0) {
                CB(on_null, f);
                return 0;
            }
        }
        return dec_struct(wk, r, f, sub_struct(f), flexible, vis);
    }
    pkc_reader_fail(r, PKC_ERR_UNSUPPORTED, nm);
    return read_failed(wk, r);
}

/* The whole field f (an array or a single value); the path holds f. */
static int
dec_field(walk *wk, pkc_reader *r, const pkc_proto_field *f, int flexible,
          const pkc_proto_visitor *vis)
{
    int32_t count;
    size_t min;

    if (!(f->flags & PKC_PF_ARRAY))
        return dec_value(wk, r, f, flexible, 0, vis);
    min = min_value_size(wk, f, flexible, 1, wk->depth);
    RD(pkc_read_array_count(r, is_compact(wk, f, flexible),
                            is_nullable(wk, f), min, INT32_MAX, &count,
                            f->name));
    if (count < 0) {
        CB(on_null, f);
        return 0;
    }
    CB(begin_array, f, count);
    for (int32_t i = 0; i < count; i++) {
        set_index(wk, i);
        if (dec_value(wk, r, f, flexible, 1, vis))
            return wk->err->status;
    }
    set_index(wk, -1);
    CB(end_array, f);
    return 0;
}

/* Report the default of f (a known tagged field that was not sent). */
static int
emit_default(walk *wk, pkc_reader *r, const pkc_proto_field *f,
             int flexible, const pkc_proto_visitor *vis)
{
    static const uint8_t zero16[16];
    int null_default = (f->flags & PKC_PF_DEFAULT_NULL) != 0;

    if (f->flags & PKC_PF_ARRAY) {
        if (null_default) {
            CB(on_null, f);
            return 0;
        }
        CB(begin_array, f, 0);
        CB(end_array, f);
        return 0;
    }
    switch (f->type) {
    case PKC_PT_BOOL:
        CB(on_bool, f, f->def_int != 0);
        return 0;
    case PKC_PT_INT8:
    case PKC_PT_INT16:
    case PKC_PT_UINT16:
    case PKC_PT_INT32:
    case PKC_PT_UINT32:
    case PKC_PT_INT64:
        CB(on_int, f, f->def_int);
        return 0;
    case PKC_PT_FLOAT64:
        CB(on_float, f, f->def_float);
        return 0;
    case PKC_PT_UUID:
        CB(on_uuid, f, zero16);
        return 0;
    case PKC_PT_STRING:
    case PKC_PT_BYTES:
    case PKC_PT_RECORDS: {
        pkc_slice s = {(const uint8_t *)"", 0};
        if (null_default) {
            CB(on_null, f);
            return 0;
        }
        if (f->def_str != NULL) {
            s.ptr = (const uint8_t *)f->def_str;
            s.len = (int32_t)strlen(f->def_str);
        }
        if (f->type == PKC_PT_STRING)
            CB(on_string, f, s);
        else
            CB(on_bytes, f, s);
        return 0;
    }
    case PKC_PT_STRUCT: {
        const pkc_proto_struct *s = sub_struct(f);
        if (null_default) {
            CB(on_null, f);
            return 0;
        }
        CB(begin_struct, f, s);
        for (unsigned i = 0; i < s->count; i++) {
            const pkc_proto_field *g = struct_field(s, i);
            if (!in_versions(wk, g))
                continue;
            if (push(wk, g)) {
                pkc_reader_fail(r, PKC_ERR_INVALID, g->name);
                return read_failed(wk, r);
            }
            if (emit_default(wk, r, g, flexible, vis))
                return wk->err->status;
            pop(wk);
        }
        CB(end_struct, f, s);
        return 0;
    }
    }
    return 0;
}

static int
dec_tagged(walk *wk, pkc_reader *r, const pkc_proto_struct *s,
           const pkc_proto_visitor *vis)
{
    uint32_t count, tag, size;
    uint64_t seen = 0;

    RD(pkc_read_uvarint(r, &count, "tagged fields"));
    /* Each tagged field needs at least two bytes (tag, size). */
    if (count > pkc_reader_remaining(r) / 2) {
        pkc_reader_fail(r, PKC_ERR_TRUNCATED, "tagged fields");
        return read_failed(wk, r);
    }
    for (uint32_t i = 0; i < count; i++) {
        const pkc_proto_field *f = NULL;
        unsigned fi = 0;
        pkc_reader sub;

        RD(pkc_read_uvarint(r, &tag, "tagged fields"));
        RD(pkc_read_uvarint(r, &size, "tagged fields"));
        RD(pkc_reader_need(r, size, "tagged fields"));
        for (fi = 0; fi < s->count; fi++) {
            const pkc_proto_field *g = struct_field(s, fi);
            if (in_versions(wk, g) && is_tagged(wk, g, 1) &&
                (uint32_t)g->tag == tag) {
                f = g;
                break;
            }
        }
        if (f == NULL) { /* unknown tag: skip it */
            r->pos += size;
            continue;
        }
        if (push(wk, f)) {
            pkc_reader_fail(r, PKC_ERR_INVALID, f->name);
            return read_failed(wk, r);
        }
        if (seen & ((uint64_t)1 << fi)) {
            pkc_reader_fail(r, PKC_ERR_INVALID, f->name);
            return read_failed(wk, r); /* duplicate tag */
        }
        seen |= (uint64_t)1 << fi;
        /* Decode inside exactly `size` bytes (same start, so offsets in
         * errors stay relative to the message). */
        sub = *r;
        sub.end = r->pos + size;
        if (dec_field(wk, &sub, f, 1, vis)) {
            r->status = sub.status;
            r->err_offset = sub.err_offset;
            r->err_field = sub.err_field;
            r->pos = sub.pos;
            return wk->err->status;
        }
        if (sub.pos != sub.end) {
            r->pos = sub.pos;
            pkc_reader_fail(r, PKC_ERR_INVALID, f->name);
            return read_failed(wk, r);
        }
        r->pos = sub.end;
        pop(wk);
    }
    for (unsigned fi = 0; fi < s->count; fi++) {
        const pkc_proto_field *f = struct_field(s, fi);
        if (!in_versions(wk, f) || !is_tagged(wk, f, 1) ||
            (seen & ((uint64_t)1 << fi)))
            continue;
        if (push(wk, f)) {
            pkc_reader_fail(r, PKC_ERR_INVALID, f->name);
            return read_failed(wk, r);
        }
        if (emit_default(wk, r, f, 1, vis))
            return wk->err->status;
        pop(wk);
    }
    return 0;
}

static int
dec_struct(walk *wk, pkc_reader *r, const pkc_proto_field *holder,
           const pkc_proto_struct *s, int flexible,
           const pkc_proto_visitor *vis)
{
    CB(begin_struct, holder, s);
    for (unsigned i = 0; i < s->count; i++) {
        const pkc_proto_field *f = struct_field(s, i);
        if (!in_versions(wk, f) || is_tagged(wk, f, flexible))
            continue;
        if (push(wk, f)) {
            pkc_reader_fail(r, PKC_ERR_INVALID, f->name);
            return read_failed(wk, r);
        }
        if (dec_field(wk, r, f, flexible, vis))
            return wk->err->status;
        pop(wk);
    }
    if (flexible && dec_tagged(wk, r, s, vis))
        return wk->err->status;
    CB(end_struct, holder, s);
    return 0;
}

static void
walk_init(walk *wk, int version, pkc_proto_error *err)
{
    memset(err, 0, sizeof(*err));
    wk->depth = 0;
    wk->version = version;
    wk->err = err;
}

int
pkc_proto_decode_struct(pkc_reader *r, const pkc_proto_struct *s,
                        int version, int flexible,
                        const pkc_proto_visitor *vis, pkc_proto_error *err)
{
    walk wk_;
    walk *wk = &wk_;

    walk_init(wk, version, err);
    if (r->status != PKC_OK)
        return read_failed(wk, r);
    return dec_struct(wk, r, NULL, s, flexible, vis);
}

int
pkc_proto_decode_prefix(pkc_reader *r, pkc_proto_kind kind, int api_key,
                        int version, const pkc_proto_visitor *vis,
                        pkc_proto_error *err)
{
    const pkc_proto_api *api = pkc_proto_api_find(api_key);
    walk wk_;
    walk *wk = &wk_;

    walk_init(wk, version, err);
    if (api == NULL || version < api->min_version ||
        version > api->max_version) {
        pkc_reader_fail(r, PKC_ERR_UNSUPPORTED, NULL);
        return read_failed(wk, r);
    }
    if (r->status != PKC_OK)
        return read_failed(wk, r);
    if (dec_struct(wk, r, NULL, pkc_proto_message(api, kind),
                   pkc_proto_is_flexible(api, version), vis) != 0)
        return err->status;
    return 0;
}

int
pkc_proto_decode(pkc_reader *r, pkc_proto_kind kind, int api_key,
                 int version, const pkc_proto_visitor *vis,
                 pkc_proto_error *err)
{
    int rc = pkc_proto_decode_prefix(r, kind, api_key, version, vis, err);

    if (rc != 0)
        return rc;
    if (pkc_reader_remaining(r) != 0) {
        pkc_reader_fail(r, PKC_ERR_INVALID, NULL);
        if (err->status == 0) {
            err->offset = r->err_offset;
            err->status = r->status;
            snprintf(err->path, sizeof(err->path), "(trailing bytes)");
            r->err_field = err->path;
        }
        return err->status;
    }
    return 0;
}

/* ------------------------------------------------------------- encoding */

/* Fail with a path (and the writer untouched). */
static int
enc_fail(walk *wk, int status, const char *what)
{
    return set_error(wk, status, what, NULL);
}

/* A source callback returned rc != 0. */
static int
source_failed(walk *wk, int rc, const char *what)
{
    if (rc == PKC_PROTO_ABORT) {
        if (wk->err->status == 0)
            wk->err->status = PKC_PROTO_ABORT;
        return wk->err->status;
    }
    if (rc == PKC_PROTO_BADTYPE)
        return enc_fail(wk, rc, what);
    /* a value the source could not represent (e.g. an int over 64 bits) */
    return enc_fail(wk, rc < 0 ? rc : PKC_ERR_INVALID, "value out of range");
}

/* The optional source callbacks: a NULL enter_struct means every struct
 * is present (not null); NULL leave_array / leave_struct do nothing. */
static int
src_enter_struct(const pkc_proto_source *src, const pkc_proto_field *f,
                 const pkc_proto_struct *s, int *is_null)
{
    if (src->enter_struct == NULL) {
        *is_null = 0;
        return 0;
    }
    return src->enter_struct(src->ctx, f, s, is_null);
}

static void
src_leave_struct(const pkc_proto_source *src, const pkc_proto_field *f,
                 const pkc_proto_struct *s)
{
    if (src->leave_struct != NULL)
        src->leave_struct(src->ctx, f, s);
}

static void
src_leave_array(const pkc_proto_source *src, const pkc_proto_field *f)
{
    if (src->leave_array != NULL)
        src->leave_array(src->ctx, f);
}

#define SRC(call, what)                                                      \
    do {                                                                     \
        int rc_ = (call);                                                    \
        if (rc_ != 0)                                                        \
            return source_failed(wk, rc_, what);                             \
    } while (0)

static int
writer_failed(walk *wk, pkc_writer *w)
{
    return enc_fail(wk, w->status, "the output buffer");
}

static int
int_in_range(int type, int64_t v)
{
    switch (type) {
    case PKC_PT_BOOL:
        return v == 0 || v == 1;
    case PKC_PT_INT8:
        return v >= INT8_MIN && v <= INT8_MAX;
    case PKC_PT_INT16:
        return v >= INT16_MIN && v <= INT16_MAX;
    case PKC_PT_UINT16:
        return v >= 0 && v <= UINT16_MAX;
    case PKC_PT_INT32:
        return v >= INT32_MIN && v <= INT32_MAX;
    case PKC_PT_UINT32:
        return v >= 0 && v <= (int64_t)UINT32_MAX;
    default:
        return 1;
    }
}

static void
write_int(pkc_writer *w, int type, int64_t v)
{
    uint8_t b[8];

    switch (type) {
    case PKC_PT_BOOL:
    case PKC_PT_INT8:
        b[0] = (uint8_t)v;
        pkc_write_raw(w, b, 1);
        break;
    case PKC_PT_INT16:
    case PKC_PT_UINT16:
        pkc_store_u16(b, (uint16_t)v);
        pkc_write_raw(w, b, 2);
        break;
    case PKC_PT_INT32:
    case PKC_PT_UINT32:
        pkc_store_u32(b, (uint32_t)v);
        pkc_write_raw(w, b, 4);
        break;
    default:
        pkc_store_u64(b, (uint64_t)v);
        pkc_write_raw(w, b, 8);
        break;
    }
}

static int is_default(walk *wk, const pkc_proto_field *f, int elem,
                      const pkc_proto_source *src);

/* Is the source's value of struct field f equal to its default? */
static int
struct_is_default(walk *wk, const pkc_proto_field *f,
                  const pkc_proto_source *src)
{
    const pkc_proto_struct *s = sub_struct(f);
    int is_null = 0, rc = 1;

    SRC(src_enter_struct(src, f, s, &is_null), NULL);
    if (is_null)
        return (f->flags & PKC_PF_DEFAULT_NULL) ? 1 : 0;
    for (unsigned i = 0; i < s->count && rc == 1; i++) {
        const pkc_proto_field *g = struct_field(s, i);
        int has = src->has(src->ctx, g);
        if (has < 0) {
            rc = source_failed(wk, has, NULL);
            break;
        }
        if (has && push(wk, g) == 0) {
            rc = is_default(wk, g, 0, src);
            pop(wk);
        }
    }
    src_leave_struct(src, f, s);
    return rc;
}

/* 1 if the value of f in the source equals f's default, 0 if not, or a
 * negative status. */
static int
is_default(walk *wk, const pkc_proto_field *f, int elem,
           const pkc_proto_source *src)
{
    int null_default = (f->flags & PKC_PF_DEFAULT_NULL) != 0;

    if ((f->flags & PKC_PF_ARRAY) && !elem) {
        int32_t count;
        SRC(src->enter_array(src->ctx, f, &count), NULL);
        src_leave_array(src, f);
        return count < 0 ? null_default : (count == 0 && !null_default);
    }
    switch (f->type) {
    case PKC_PT_BOOL:
    case PKC_PT_INT8:
    case PKC_PT_INT16:
    case PKC_PT_UINT16:
    case PKC_PT_INT32:
    case PKC_PT_UINT32:
    case PKC_PT_INT64: {
        int64_t v;
        SRC(src->get_int(src->ctx, f, &v), NULL);
        return v == f->def_int;
    }
    case PKC_PT_FLOAT64: {
        double d;
        SRC(src->get_float(src->ctx, f, &d), NULL);
        return d == f->def_float;
    }
    case PKC_PT_UUID: {
        pkc_slice s;
        SRC(src->get_bytes(src->ctx, f, &s), NULL);
        if (s.len != 16)
            return 0;
        for (int i = 0; i < 16; i++) {
            if (s.ptr[i])
                return 0;
        }
        return 1;
    }
    case PKC_PT_STRING:
    case PKC_PT_BYTES:
    case PKC_PT_RECORDS: {
        pkc_slice s;
        const char *d = f->def_str ? f->def_str : "";
        SRC(src->get_bytes(src->ctx, f, &s), NULL);
        if (s.len < 0)
            return null_default;
        if (null_default)
            return 0;
        return (size_t)s.len == strlen(d) &&
               (s.len == 0 || memcmp(s.ptr, d, (size_t)s.len) == 0);
    }
    case PKC_PT_STRUCT:
        return struct_is_default(wk, f, src);
    }
    return 0;
}

static int enc_struct(walk *wk, pkc_writer *w, const pkc_proto_struct *s,
                      int flexible, const pkc_proto_source *src);

/*
 * One value of f (the field, or the current element when elem is set),
 * taken from the source when `present`, else f's default.
 */
static int
enc_value(walk *wk, pkc_writer *w, const pkc_proto_field *f, int flexible,
          int elem, int present, const pkc_proto_source *src)
{
    int compact = is_compact(wk, f, flexible);
    int nullable = !elem && is_nullable(wk, f);
    int null_default = nullable && (f->flags & PKC_PF_DEFAULT_NULL);

    switch (f->type) {
    case PKC_PT_BOOL:
    case PKC_PT_INT8:
    case PKC_PT_INT16:
    case PKC_PT_UINT16:
    case PKC_PT_INT32:
    case PKC_PT_UINT32:
    case PKC_PT_INT64: {
        int64_t v = f->def_int;
        if (present)
            SRC(src->get_int(src->ctx, f, &v), "an int");
        if (!int_in_range(f->type, v))
            return enc_fail(wk, PKC_ERR_INVALID, "value out of range");
        write_int(w, f->type, v);
        return 0;
    }
    case PKC_PT_FLOAT64: {
        double d = f->def_float;
        uint64_t bits;
        if (present)
            SRC(src->get_float(src->ctx, f, &d), "a float");
        memcpy(&bits, &d, sizeof(bits));
        write_int(w, PKC_PT_INT64, (int64_t)bits);
        return 0;
    }
    case PKC_PT_UUID: {
        static const uint8_t zero16[16];
        pkc_slice s = {zero16, 16};
        if (present)
            SRC(src->get_bytes(src->ctx, f, &s), "a 16-byte uuid");
        if (s.len < 0)
            return enc_fail(wk, PKC_PROTO_BADTYPE, "a 16-byte uuid");
        if (s.len != 16)
            return enc_fail(wk, PKC_ERR_INVALID,
                            "a uuid must be exactly 16 bytes");
        pkc_write_raw(w, s.ptr, 16);
        return 0;
    }
    case PKC_PT_STRING:
    case PKC_PT_BYTES:
    case PKC_PT_RECORDS: {
        pkc_slice s = {(const uint8_t *)"", 0};
        if (present) {
            SRC(src->get_bytes(src->ctx, f, &s),
                f->type == PKC_PT_STRING ? "a string" : "bytes");
        }
        else if (null_default)
            s.len = -1;
        else if (f->def_str != NULL) {
            s.ptr = (const uint8_t *)f->def_str;
            s.len = (int32_t)strlen(f->def_str);
        }
        if (s.len < 0 && !nullable)
            return enc_fail(wk, PKC_PROTO_BADTYPE,
                            "not nullable in this version");
        if (f->type == PKC_PT_STRING) {
            if (!compact && s.len > INT16_MAX)
                return enc_fail(wk, PKC_ERR_INVALID,
                                "string longer than 32767 bytes");
            pkc_write_string(w, compact, s.ptr, s.len);
        }
        else
            pkc_write_bytes(w, compact, s.ptr, s.len);
        return 0;
    }
    case PKC_PT_STRUCT: {
        const pkc_proto_struct *s = sub_struct(f);
        int is_null = 0, rc;
        if (!present) {
            if (null_default) {
                pkc_write_i8(w, -1);
                return 0;
            }
            if (nullable)
                pkc_write_i8(w, 1);
            return enc_struct(wk, w, s, flexible, NULL);
        }
        SRC(src_enter_struct(src, f, s, &is_null), "a struct");
        if (is_null) {
            if (!nullable)
                return enc_fail(wk, PKC_PROTO_BADTYPE,
                                "not nullable in this version");
            pkc_write_i8(w, -1);
            return 0;
        }
        if (nullable)
            pkc_write_i8(w, 1);
        rc = enc_struct(wk, w, s, flexible, src);
        src_leave_struct(src, f, s);
        return rc;
    }
    }
    return enc_fail(wk, PKC_ERR_UNSUPPORTED, "unknown field type");
}

/* The whole field f; the path holds f. */
static int
enc_field(walk *wk, pkc_writer *w, const pkc_proto_field *f, int flexible,
          int present, const pkc_proto_source *src)
{
    int32_t count = 0;
    int compact = is_compact(wk, f, flexible);
    int rc = 0;

    if (!(f->flags & PKC_PF_ARRAY))
        return enc_value(wk, w, f, flexible, 0, present, src);
    if (!present) {
        if ((f->flags & PKC_PF_DEFAULT_NULL) && is_nullable(wk, f))
            count = -1;
        pkc_write_array_count(w, compact, count);
        return 0;
    }
    SRC(src->enter_array(src->ctx, f, &count), "a list");
    if (count < 0 && !is_nullable(wk, f)) {
        src_leave_array(src, f);
        return enc_fail(wk, PKC_PROTO_BADTYPE,
                        "not nullable in this version");
    }
    pkc_write_array_count(w, compact, count);
    for (int32_t i = 0; i < count && rc == 0; i++) {
        set_index(wk, i);
        rc = src->enter_element(src->ctx, f, i);
        if (rc != 0)
            rc = source_failed(wk, rc, NULL);
        else
            rc = enc_value(wk, w, f, flexible, 1, 1, src);
    }
    if (rc == 0)
        set_index(wk, -1);
    src_leave_array(src, f);
    return rc;
}

/* Encode tagged field f into its own buffer, then tag, size, bytes. */
static int
enc_tagged_one(walk *wk, pkc_writer *w, const pkc_proto_field *f,
               const pkc_proto_source *src)
{
    pkc_writer tmp;
    int rc;

    if (pkc_writer_init(&tmp, 0, w->max) != PKC_OK)
        return enc_fail(wk, tmp.status, "the output buffer");
    rc = enc_field(wk, &tmp, f, 1, 1, src);
    if (rc == 0 && tmp.status != PKC_OK)
        rc = writer_failed(wk, &tmp);
    if (rc == 0) {
        pkc_write_uvarint(w, (uint64_t)f->tag);
        pkc_write_uvarint(w, tmp.len);
        pkc_write_raw(w, tmp.buf, tmp.len);
    }
    pkc_writer_free(&tmp);
    return rc;
}

static int
enc_tagged(walk *wk, pkc_writer *w, const pkc_proto_struct *s,
           const pkc_proto_source *src)
{
    const pkc_proto_field *send[64];
    unsigned n = 0;

    for (unsigned i = 0; src != NULL && i < s->count; i++) {
        const pkc_proto_field *f = struct_field(s, i);
        int has, dflt;
        if (!in_versions(wk, f) || !is_tagged(wk, f, 1))
            continue;
        has = src->has(src->ctx, f);
        if (has < 0)
            return source_failed(wk, has, NULL);
        if (!has || n >= 64)
            continue;
        if (push(wk, f))
            return enc_fail(wk, PKC_ERR_INVALID, "nesting too deep");
        dflt = is_default(wk, f, 0, src);
        pop(wk);
        if (dflt < 0)
            return wk->err->status;
        if (dflt)
            continue;
        /* insertion sort by tag: Kafka writes tags in ascending order */
        unsigned j = n++;
        while (j > 0 && send[j - 1]->tag > f->tag) {
            send[j] = send[j - 1];
            j--;
        }
        send[j] = f;
    }
    pkc_write_uvarint(w, n);
    for (unsigned i = 0; i < n; i++) {
        if (push(wk, send[i]))
            return enc_fail(wk, PKC_ERR_INVALID, "nesting too deep");
        if (enc_tagged_one(wk, w, send[i], src))
            return wk->err->status;
        pop(wk);
    }
    return 0;
}

/* The fields of struct s; src is positioned in s, or NULL for all
 * defaults. */
static int
enc_struct(walk *wk, pkc_writer *w, const pkc_proto_struct *s, int flexible,
           const pkc_proto_source *src)
{
    for (unsigned i = 0; i < s->count; i++) {
        const pkc_proto_field *f = struct_field(s, i);
        int has = 0;

        if (src != NULL) {
            has = src->has(src->ctx, f);
            if (has < 0)
                return source_failed(wk, has, NULL);
        }
        if (push(wk, f))
            return enc_fail(wk, PKC_ERR_INVALID, "nesting too deep");
        if (!in_versions(wk, f)) {
            /* Kafka's rule: a value the version cannot carry is an error
             * unless the field is ignorable or the value is the default */
            if (has && !(f->flags & PKC_PF_IGNORABLE)) {
                int dflt = is_default(wk, f, 0, src);
                if (dflt < 0)
                    return wk->err->status;
                if (!dflt)
                    return enc_fail(wk, PKC_ERR_UNSUPPORTED,
                                    "not in this version (and not "
                                    "ignorable)");
            }
            pop(wk);
            continue;
        }
        if (is_tagged(wk, f, flexible)) {
            pop(wk);
            continue;
        }
        if (enc_field(wk, w, f, flexible, has, src))
            return wk->err->status;
        pop(wk);
        if (w->status != PKC_OK)
            return writer_failed(wk, w);
    }
    if (flexible && enc_tagged(wk, w, s, src))
        return wk->err->status;
    if (w->status != PKC_OK)
        return writer_failed(wk, w);
    return 0;
}

int
pkc_proto_encode_struct(pkc_writer *w, const pkc_proto_struct *s,
                        int version, int flexible,
                        const pkc_proto_source *src, pkc_proto_error *err)
{
    walk wk_;
    walk *wk = &wk_;
    int is_null = 0, rc;

    walk_init(wk, version, err);
    if (w->status != PKC_OK)
        return writer_failed(wk, w);
    if (src == NULL)
        return enc_struct(wk, w, s, flexible, NULL);
    SRC(src_enter_struct(src, NULL, s, &is_null), "a struct");
    if (is_null)
        return enc_fail(wk, PKC_PROTO_BADTYPE, "a message cannot be null");
    rc = enc_struct(wk, w, s, flexible, src);
    src_leave_struct(src, NULL, s);
    return rc;
}

int
pkc_proto_encode(pkc_writer *w, pkc_proto_kind kind, int api_key,
                 int version, const pkc_proto_source *src,
                 pkc_proto_error *err)
{
    const pkc_proto_api *api = pkc_proto_api_find(api_key);

    if (api == NULL || version < api->min_version ||
        version > api->max_version) {
        memset(err, 0, sizeof(*err));
        err->status = PKC_ERR_UNSUPPORTED;
        err->what = api ? "version out of range" : "unknown api key";
        return err->status;
    }
    return pkc_proto_encode_struct(w, pkc_proto_message(api, kind), version,
                                   pkc_proto_is_flexible(api, version), src,
                                   err);
}

/* -------------------------------------------------------------- headers */

typedef struct {
    int api_key, api_version;
    int32_t correlation_id;
    pkc_slice client_id;
} req_header_src;

static int
rh_has(void *ctx, const pkc_proto_field *f)
{
    (void)ctx;
    (void)f;
    return 1;
}

static int
rh_get_int(void *ctx, const pkc_proto_field *f, int64_t *out)
{
    const req_header_src *h = ctx;

    if (strcmp(f->name, "request_api_key") == 0)
        *out = h->api_key;
    else if (strcmp(f->name, "request_api_version") == 0)
        *out = h->api_version;
    else if (strcmp(f->name, "correlation_id") == 0)
        *out = h->correlation_id;
    else
        return PKC_PROTO_BADTYPE;
    return 0;
}

static int
rh_get_float(void *ctx, const pkc_proto_field *f, double *out)
{
    (void)ctx;
    (void)f;
    *out = 0;
    return PKC_PROTO_BADTYPE;
}

static int
rh_get_bytes(void *ctx, const pkc_proto_field *f, pkc_slice *out)
{
    const req_header_src *h = ctx;

    if (strcmp(f->name, "client_id") != 0)
        return PKC_PROTO_BADTYPE;
    *out = h->client_id;
    return 0;
}

static int
rh_enter_array(void *ctx, const pkc_proto_field *f, int32_t *count)
{
    (void)ctx;
    (void)f;
    *count = 0;
    return PKC_PROTO_BADTYPE;
}

static int
rh_enter_element(void *ctx, const pkc_proto_field *f, int32_t i)
{
    (void)ctx;
    (void)f;
    (void)i;
    return PKC_PROTO_BADTYPE;
}

static int
rh_enter_struct(void *ctx, const pkc_proto_field *f,
                const pkc_proto_struct *s, int *is_null)
{
    (void)ctx;
    (void)s;
    *is_null = 0;
    return f == NULL ? 0 : PKC_PROTO_BADTYPE;
}

int
pkc_proto_write_request_header(pkc_writer *w, int api_key, int api_version,
                               int32_t correlation_id, const char *client_id,
                               int32_t client_id_len)
{
    req_header_src h;
    pkc_proto_source src = {
        &h, rh_has, rh_get_int, rh_get_float, rh_get_bytes, rh_enter_array,
        rh_enter_element, NULL, rh_enter_struct, NULL,
    };
    pkc_proto_error err;
    int hv = pkc_proto_request_header_version(api_key, api_version);

    if (hv < 0)
        return PKC_ERR_UNSUPPORTED;
    h.api_key = api_key;
    h.api_version = api_version;
    h.correlation_id = correlation_id;
    h.client_id.ptr = (const uint8_t *)client_id;
    h.client_id.len = client_id == NULL ? -1 : client_id_len;
    return pkc_proto_encode_struct(
        w, pkc_proto_header(PKC_PROTO_REQUEST), hv,
        hv >= PKC_PROTO_REQUEST_HEADER_FLEXIBLE_FROM, &src, &err);
}

static int
resp_header_int(void *ctx, const pkc_proto_field *f, int64_t v)
{
    if (strcmp(f->name, "correlation_id") == 0)
        *(int32_t *)ctx = (int32_t)v;
    return 0;
}

int
pkc_proto_read_response_header(pkc_reader *r, int api_key, int api_version,
                               int32_t *correlation_id)
{
    pkc_proto_visitor vis;
    pkc_proto_error err;
    int hv = pkc_proto_response_header_version(api_key, api_version);

    *correlation_id = 0;
    if (hv < 0)
        return pkc_reader_fail(r, PKC_ERR_UNSUPPORTED, "response header");
    memset(&vis, 0, sizeof(vis));
    vis.ctx = correlation_id;
    vis.on_int = resp_header_int;
    if (pkc_proto_decode_struct(r, pkc_proto_header(PKC_PROTO_RESPONSE), hv,
                                hv >= PKC_PROTO_RESPONSE_HEADER_FLEXIBLE_FROM,
                                &vis, &err) != 0) {
        r->err_field = "response header";
        return err.status;
    }
    return 0;
}
