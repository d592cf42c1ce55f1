/*
 * crc32c.c - CRC-32C: SSE4.2 instruction path and slicing-by-8 tables
 * (see crc32c.h).
 */
#include "crc32c.h"

#include <pthread.h>
#include <stdatomic.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define PKC_CRC32C_X86 1
#include <nmmintrin.h>
#endif

#define CRC32C_POLY 0x82F63B78u /* reflected Castagnoli polynomial */

/* ------------------------------------------------------- slicing-by-8 */

/* crc32c_table[k][b]: the CRC contribution of byte b followed by k zero
 * bytes.  Filled once by crc32c_table_build() under pthread_once. */
static uint32_t crc32c_table[8][256];
static pthread_once_t crc32c_table_once = PTHREAD_ONCE_INIT;

static void
crc32c_table_build(void)
{
    for (uint32_t b = 0; b < 256; b++) {
        uint32_t c = b;
        for (int i = 0; i < 8; i++)
            c = (c & 1) ? (c >> 1) ^ CRC32C_POLY : c >> 1;
        crc32c_table[0][b] = c;
    }
    for (uint32_t b = 0; b < 256; b++) {
        uint32_t c = crc32c_table[0][b];
        for (int k = 1; k < 8; k++) {
            c = (c >> 8) ^ crc32c_table[0][c & 0xff];
            crc32c_table[k][b] = c;
        }
    }
}

/* Little-endian 32-bit load without pointer casts. */
static inline uint32_t
load_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

uint32_t
pkc_crc32c_sw(uint32_t crc, const void *data, size_t n)
{
    const uint8_t *p = data;
    const uint32_t (*t)[256] = (const uint32_t (*)[256])crc32c_table;

    pthread_once(&crc32c_table_once, crc32c_table_build);
    crc = ~crc;
    while (n >= 8) {
        uint32_t lo = load_le32(p) ^ crc;
        uint32_t hi = load_le32(p + 4);
        crc = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^
              t[5][(lo >> 16) & 0xff] ^ t[4][lo >> 24] ^
              t[3][hi & 0xff] ^ t[2][(hi >> 8) & 0xff] ^
              t[1][(hi >> 16) & 0xff] ^ t[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n--)
        crc = (crc >> 8) ^ t[0][(crc ^ *p++) & 0xff];
    return ~crc;
}

/* ------------------------------------------------------------- SSE4.2 */

#ifdef PKC_CRC32C_X86

__attribute__((target("sse4.2"))) static uint32_t
crc32c_sse42(uint32_t crc, const uint8_t *p, size_t n)
{
    uint64_t c = ~crc;

    /* Bytes up to an 8-byte boundary, so the 64-bit loads are aligned. */
    while (n && ((uintptr_t)p & 7)) {
        c = _mm_crc32_u8((uint32_t)c, *p++);
        n--;
    }
    while (n >= 32) {
        uint64_t w0, w1, w2, w3;
        __builtin_memcpy(&w0, p, 8);
        __builtin_memcpy(&w1, p + 8, 8);
        __builtin_memcpy(&w2, p + 16, 8);
        __builtin_memcpy(&w3, p + 24, 8);
        c = _mm_crc32_u64(c, w0);
        c = _mm_crc32_u64(c, w1);
        c = _mm_crc32_u64(c, w2);
        c = _mm_crc32_u64(c, w3);
        p += 32;
        n -= 32;
    }
    while (n >= 8) {
        uint64_t w;
        __builtin_memcpy(&w, p, 8);
        c = _mm_crc32_u64(c, w);
        p += 8;
        n -= 8;
    }
    while (n--)
        c = _mm_crc32_u8((uint32_t)c, *p++);
    return ~(uint32_t)c;
}

/* -1 unknown, 0 no, 1 yes.  A race only recomputes the same answer. */
static atomic_int crc32c_hw_state = -1;

int
pkc_crc32c_hw_available(void)
{
    int s = atomic_load_explicit(&crc32c_hw_state, memory_order_relaxed);

    if (s < 0) {
        __builtin_cpu_init();
        s = __builtin_cpu_supports("sse4.2") ? 1 : 0;
        atomic_store_explicit(&crc32c_hw_state, s, memory_order_relaxed);
    }
    return s;
}

uint32_t
pkc_crc32c_hw(uint32_t crc, const void *p, size_t n)
{
    if (!pkc_crc32c_hw_available())
        return pkc_crc32c_sw(crc, p, n);
    return crc32c_sse42(crc, p, n);
}

uint32_t
pkc_crc32c(uint32_t crc, const void *p, size_t n)
{
    if (pkc_crc32c_hw_available())
        return crc32c_sse42(crc, p, n);
    return pkc_crc32c_sw(crc, p, n);
}

#else /* !PKC_CRC32C_X86 */

int
pkc_crc32c_hw_available(void)
{
    return 0;
}

uint32_t
pkc_crc32c_hw(uint32_t crc, const void *p, size_t n)
{
    return pkc_crc32c_sw(crc, p, n);
}

uint32_t
pkc_crc32c(uint32_t crc, const void *p, size_t n)
{
    return pkc_crc32c_sw(crc, p, n);
}

#endif
