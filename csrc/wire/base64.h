/*
 * base64.h - strict base64 (RFC 4648 section 4, the standard alphabet with
 * '=' padding), as SCRAM (RFC 5802) uses it.  Python-free.
 *
 * The decoder is for bytes from the network and accepts only the canonical
 * encoding: a length that is a multiple of 4, characters of A-Z a-z 0-9 +
 * /, at most two '=' and only at the very end, and zero bits in the unused
 * low bits of the last group (so every byte string has exactly one
 * accepted encoding).  No whitespace, no URL-safe alphabet, no missing
 * padding.  Input is read through a pkc_reader; output never goes past the
 * caller's capacity.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Characters needed to encode n bytes (no terminating NUL counted). */
static inline size_t
pkc_base64_encoded_len(size_t n)
{
    return (n + 2) / 3 * 4;
}

/* Write the encoding of in[0..n) to out, which must have room for
 * pkc_base64_encoded_len(n) characters; no NUL is written.  Returns the
 * number of characters written. */
size_t pkc_base64_encode(const uint8_t *in, size_t n, char *out);

/*
 * Decode text[0..len) into out[0..cap).  Returns PKC_OK with *out_len set,
 * PKC_ERR_INVALID for anything but a canonical encoding, or
 * PKC_ERR_TOO_LARGE if the decoded bytes would not fit `cap` (checked
 * before anything is written).  *out_len is 0 on failure; out may then hold
 * part of the result.
 */
int pkc_base64_decode(const uint8_t *text, size_t len, uint8_t *out,
                      size_t cap, size_t *out_len);
