/*
 * crc32c.h - CRC-32C (Castagnoli), the checksum of Kafka's RecordBatch v2.
 *
 * Python-free.  Polynomial 0x1EDC6F41 (reflected 0x82F63B78), initial value
 * and final xor 0xFFFFFFFF, as in iSCSI and java.util.zip.CRC32C.  Check
 * value: pkc_crc32c(0, "123456789", 9) == 0xE3069283.
 *
 * `crc` is the CRC of the data before `p` in its final (post-xor) form, 0
 * for a fresh start, so CRCs can be chained as with zlib's crc32():
 *     c = pkc_crc32c(0, a, na); c = pkc_crc32c(c, b, nb);
 * equals pkc_crc32c(0, ab, na + nb).
 *
 * On x86-64 CPUs with SSE4.2 the `crc32` instruction is used (8 bytes per
 * instruction, chosen at run time with cpuid); otherwise a slicing-by-8
 * table (built once, thread-safely, on first use).  Both give identical
 * results.  All functions are thread-safe and need no GIL.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* CRC-32C of p[0..n) continuing from `crc` (0 to start).  Picks the fastest
 * implementation this CPU supports. */
uint32_t pkc_crc32c(uint32_t crc, const void *p, size_t n);

/* The portable slicing-by-8 implementation (always available). */
uint32_t pkc_crc32c_sw(uint32_t crc, const void *p, size_t n);

/* 1 if this build and CPU have the SSE4.2 path. */
int pkc_crc32c_hw_available(void);

/* The SSE4.2 implementation; only call it when pkc_crc32c_hw_available()
 * returns 1 (it falls back to the table otherwise). */
uint32_t pkc_crc32c_hw(uint32_t crc, const void *p, size_t n);
