/*
 * kafka_errors.c - the rows of kafka_errors.def and lookups by code.
 */
#include "kafka_errors.h"

static const pkc_kafka_error_info kerr_rows[] = {
#define PKC_KAFKA_ERROR(name, code, retriable, refresh) \
    {(code), #name, (retriable), (refresh)},
#include "kafka_errors.def"
#undef PKC_KAFKA_ERROR
};

#define KERR_N (sizeof(kerr_rows) / sizeof(kerr_rows[0]))
#define KERR_FIRST PKC_KERR_UNKNOWN_SERVER_ERROR

/* Row positions, to check that each code sits at code - KERR_FIRST: the
 * rows ascend without gaps, so a lookup is an index. */
enum {
#define PKC_KAFKA_ERROR(name, code, retriable, refresh) KERR_ROW_##name,
#include "kafka_errors.def"
#undef PKC_KAFKA_ERROR
};
#define PKC_KAFKA_ERROR(name, code, retriable, refresh)                      \
    _Static_assert(KERR_ROW_##name == (code) - KERR_FIRST,                   \
                   "kafka_errors.def: " #name " is out of order or follows " \
                   "a gap");                                                 \
    _Static_assert((refresh) == 0 || (retriable) == 1,                       \
                   "kafka_errors.def: " #name " refreshes metadata but is "  \
                   "not retriable");
#include "kafka_errors.def"
#undef PKC_KAFKA_ERROR

static const pkc_kafka_error_info *
kerr_find(int code)
{
    long i = (long)code - KERR_FIRST;

    if (i < 0 || (size_t)i >= KERR_N)
        return NULL;
    return &kerr_rows[i];
}

const char *
pkc_kafka_error_name(int code)
{
    const pkc_kafka_error_info *e = kerr_find(code);

    return e != NULL ? e->name : NULL;
}

int
pkc_kafka_error_retriable(int code)
{
    const pkc_kafka_error_info *e = kerr_find(code);

    return e != NULL && e->retriable;
}

int
pkc_kafka_error_refresh_metadata(int code)
{
    const pkc_kafka_error_info *e = kerr_find(code);

    return e != NULL && e->refresh_metadata;
}

size_t
pkc_kafka_error_count(void)
{
    return KERR_N;
}

const pkc_kafka_error_info *
pkc_kafka_error_at(size_t i)
{
    return i < KERR_N ? &kerr_rows[i] : NULL;
}
