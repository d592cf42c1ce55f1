/*
 * base64.c - strict base64 encoder and decoder (see base64.h).
 */
#include "base64.h"

#include "buf.h"

static const char base64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t
pkc_base64_encode(const uint8_t *in, size_t n, char *out)
{
    size_t o = 0, i = 0;

    for (; i + 3 <= n; i += 3) {
        uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8) |
                     in[i + 2];
        out[o++] = base64_alphabet[(v >> 18) & 63];
        out[o++] = base64_alphabet[(v >> 12) & 63];
        out[o++] = base64_alphabet[(v >> 6) & 63];
        out[o++] = base64_alphabet[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        out[o++] = base64_alphabet[(v >> 18) & 63];
        out[o++] = base64_alphabet[(v >> 12) & 63];
        out[o++] = i + 1 < n ? base64_alphabet[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    return o;
}

/* The 6-bit value of a base64 character, or -1. */
static int
base64_value(uint8_t ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '+')
        return 62;
    if (ch == '/')
        return 63;
    return -1;
}

/* Bytes a group of four characters decodes to: 3, or 2 / 1 when it ends
 * in one / two '=' (only allowed in the last group); 0 if malformed. */
static size_t
base64_group_bytes(const uint8_t *g, int last)
{
    int pad = (g[3] == '=') + (g[2] == '=');

    if (pad && !last)
        return 0;
    if (g[2] == '=' && g[3] != '=')
        return 0;
    for (int k = 0; k < 4 - pad; k++)
        if (base64_value(g[k]) < 0)
            return 0;
    return (size_t)(3 - pad);
}

/* Decode one well-formed group into out; 0 if its unused bits are not
 * zero (a non-canonical encoding). */
static int
base64_decode_group(const uint8_t *g, size_t nbytes, uint8_t *out)
{
    uint32_t v = 0;

    for (size_t k = 0; k < nbytes + 1; k++)
        v |= (uint32_t)base64_value(g[k]) << (18 - 6 * k);
    if (nbytes < 3 && (v & (0xffffffu >> (8 * nbytes))) != 0)
        return 0;
    for (size_t k = 0; k < nbytes; k++)
        out[k] = (uint8_t)(v >> (16 - 8 * k));
    return 1;
}

/* The length text[0..len) decodes to if it is well formed (len % 4 == 0). */
static size_t
base64_decoded_len(const uint8_t *text, size_t len)
{
    size_t n = len / 4 * 3;

    if (len >= 4)
        n -= (size_t)(text[len - 1] == '=') + (text[len - 2] == '=');
    return n;
}

int
pkc_base64_decode(const uint8_t *text, size_t len, uint8_t *out, size_t cap,
                  size_t *out_len)
{
    pkc_reader r;
    pkc_slice group;
    size_t o = 0;

    *out_len = 0;
    if (len % 4 != 0)
        return PKC_ERR_INVALID;
    if (base64_decoded_len(text, len) > cap)
        return PKC_ERR_TOO_LARGE;
    pkc_reader_init(&r, text, len);
    while (pkc_reader_remaining(&r) > 0) {
        if (pkc_read_raw(&r, 4, &group, "base64 group"))
            return PKC_ERR_INVALID;
        size_t nbytes =
            base64_group_bytes(group.ptr, pkc_reader_remaining(&r) == 0);
        if (nbytes == 0)
            return PKC_ERR_INVALID;
        if (nbytes > cap - o)
            return PKC_ERR_TOO_LARGE;
        if (!base64_decode_group(group.ptr, nbytes, out + o))
            return PKC_ERR_INVALID;
        o += nbytes;
    }
    *out_len = o;
    return PKC_OK;
}
