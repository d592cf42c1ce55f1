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

/*
 * The crc32 instruction has a latency of three cycles and a throughput of
 * one per cycle, so one dependent chain uses a third of it.  Long buffers
 * are cut into blocks of three equal parts whose CRCs run side by side and
 * are then joined.  For register values (before the final inversion),
 * with R(c, M) the register after message M from register c:
 *     R(c, A B) = Z_|B|(R(c, A)) ^ R(0, B)
 * where Z_n, the effect of n zero bytes on the register, is linear in c:
 * four 256-entry tables per part length apply it.
 */
#define CRC32C_PART_LONG 8192
#define CRC32C_PART_SHORT 256

/* crc32c_zeros_*[k][b]: Z_n of byte b at bit 8k of the register. */
static uint32_t crc32c_zeros_long[4][256];
static uint32_t crc32c_zeros_short[4][256];
static pthread_once_t crc32c_zeros_once = PTHREAD_ONCE_INIT;

/* Z_n(c) the slow way, for the tables; n is a multiple of 8. */
__attribute__((target("sse4.2"))) static uint32_t
crc32c_zeros_slow(uint32_t c, size_t n)
{
    uint64_t r = c;

    for (size_t i = 0; i < n; i += 8)
        r = _mm_crc32_u64(r, 0);
    return (uint32_t)r;
}

static void
crc32c_zeros_fill(uint32_t t[4][256], size_t n)
{
    uint32_t basis[32];

    for (int i = 0; i < 32; i++)
        basis[i] = crc32c_zeros_slow(1u << i, n);
    for (int k = 0; k < 4; k++)
        for (uint32_t b = 0; b < 256; b++) {
            uint32_t v = 0;
            for (int i = 0; i < 8; i++)
                if (b & (1u << i))
                    v ^= basis[8 * k + i];
            t[k][b] = v;
        }
}

static void
crc32c_zeros_build(void)
{
    crc32c_zeros_fill(crc32c_zeros_long, CRC32C_PART_LONG);
    crc32c_zeros_fill(crc32c_zeros_short, CRC32C_PART_SHORT);
}

static inline uint32_t
crc32c_zeros(const uint32_t t[4][256], uint32_t c)
{
    return t[0][c & 0xff] ^ t[1][(c >> 8) & 0xff] ^ t[2][(c >> 16) & 0xff] ^
           t[3][c >> 24];
}

/* Register c after the 3 * part bytes at p (part a multiple of 8). */
__attribute__((target("sse4.2"))) static uint64_t
crc32c_sse42_3way(uint64_t c, const uint8_t *p, size_t part,
                  const uint32_t t[4][256])
{
    uint64_t c1 = 0, c2 = 0;

    for (size_t i = 0; i < part; i += 8) {
        uint64_t w0, w1, w2;
        __builtin_memcpy(&w0, p + i, 8);
        __builtin_memcpy(&w1, p + part + i, 8);
        __builtin_memcpy(&w2, p + 2 * part + i, 8);
        c = _mm_crc32_u64(c, w0);
        c1 = _mm_crc32_u64(c1, w1);
        c2 = _mm_crc32_u64(c2, w2);
    }
    c = crc32c_zeros(t, (uint32_t)c) ^ c1;
    return crc32c_zeros(t, (uint32_t)c) ^ c2;
}

__attribute__((target("sse4.2"))) static uint32_t
crc32c_sse42(uint32_t crc, const uint8_t *p, size_t n)
{
    uint64_t c = ~crc;

    /* Bytes up to an 8-byte boundary, so the 64-bit loads are aligned. */
    while (n && ((uintptr_t)p & 7)) {
        c = _mm_crc32_u8((uint32_t)c, *p++);
        n--;
    }
    if (n >= 3 * CRC32C_PART_SHORT) {
        pthread_once(&crc32c_zeros_once, crc32c_zeros_build);
        for (; n >= 3 * CRC32C_PART_LONG; n -= 3 * CRC32C_PART_LONG) {
            c = crc32c_sse42_3way(c, p, CRC32C_PART_LONG, crc32c_zeros_long);
            p += 3 * CRC32C_PART_LONG;
        }
        for (; n >= 3 * CRC32C_PART_SHORT; n -= 3 * CRC32C_PART_SHORT) {
            c = crc32c_sse42_3way(c, p, CRC32C_PART_SHORT,
                                  crc32c_zeros_short);
            p += 3 * CRC32C_PART_SHORT;
        }
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
