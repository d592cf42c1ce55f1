/*
 * api_support.h - the version range of each API that pykafka_c
 * implements (the table is api_support.def).
 *
 * C code names the bounds PKC_VER_<NAME>_MIN and PKC_VER_<NAME>_MAX
 * (PKC_VER_FETCH_MAX = 12); the glue hands the rows to Python as
 * _core.supported_versions().
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "proto_api.h"

enum {
#define PKC_API_SUPPORT(name, lo, hi) \
    PKC_VER_##name##_MIN = (lo), PKC_VER_##name##_MAX = (hi),
#include "api_support.def"
#undef PKC_API_SUPPORT
    /* Lowest Produce version that may carry zstd batches (KIP-110). */
    PKC_VER_PRODUCE_ZSTD_MIN = 7
};

/* One row of the table. */
typedef struct {
    int16_t api_key;      /* PKC_API_<name> */
    const char *name;     /* "<NAME>" as in proto_api.h, "API_VERSIONS" */
    int16_t min_version;
    int16_t max_version;
} pkc_api_support;

/* The row of `api_key`, or NULL if pykafka_c does not use that API. */
const pkc_api_support *pkc_api_support_find(int api_key);

/* The rows in ApiKey order: pkc_api_support_at(i) for i below
 * pkc_api_support_count(). */
size_t pkc_api_support_count(void);
const pkc_api_support *pkc_api_support_at(size_t i);
