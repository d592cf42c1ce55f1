/*
 * api_support.c - the rows of api_support.def.
 */
#include "api_support.h"

static const pkc_api_support support_rows[] = {
#define PKC_API_SUPPORT(name, lo, hi) {PKC_API_##name, #name, (lo), (hi)},
#include "api_support.def"
#undef PKC_API_SUPPORT
};

#define SUPPORT_N (sizeof(support_rows) / sizeof(support_rows[0]))

#define PKC_API_SUPPORT(name, lo, hi)                                   \
    _Static_assert((lo) >= 0 && (lo) <= (hi),                           \
                   "api_support.def: " #name " has an empty range");
#include "api_support.def"
#undef PKC_API_SUPPORT

const pkc_api_support *
pkc_api_support_find(int api_key)
{
    for (size_t i = 0; i < SUPPORT_N; i++)
        if (support_rows[i].api_key == api_key)
            return &support_rows[i];
    return NULL;
}

size_t
pkc_api_support_count(void)
{
    return SUPPORT_N;
}

const pkc_api_support *
pkc_api_support_at(size_t i)
{
    return i < SUPPORT_N ? &support_rows[i] : NULL;
}
