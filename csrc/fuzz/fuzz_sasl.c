/*
 * fuzz_sasl.c - libFuzzer target for the SASL client mechanisms (sasl.c,
 * scram.c, scram_msg.c, base64.c): arbitrary broker answers fed to a
 * SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER or PLAIN client.
 *
 * Input layout:
 *   byte 0      bits 0-1: the mechanism: 0 SCRAM-SHA-256, 1 SCRAM-SHA-512,
 *               2 OAUTHBEARER, 3 PLAIN
 *   byte 1..2   length n of the first server message (big-endian, cut to
 *               what is left)
 *   then        the first server message (n bytes), then the second (the
 *               rest of the input); a third step gets no message.
 * The client has a fixed nonce (FUZZ_NONCE), user and password; the
 * iteration bounds are 4096..4096, so any other count fails before
 * hashing and one PBKDF2 of 4096 rounds is the most an input costs.  The
 * whole input after byte 0 also goes through the two SCRAM parsers and the
 * base64 decoder.
 *
 * Checked on every step: only the documented statuses; a message to send
 * exactly when PKC_IN_PROGRESS is returned, of bounded size; an error
 * sentence that is printable, bounded and free of the password and the
 * token (unless the input itself contains them: broker text is quoted);
 * failures that stay failures.
 *
 * Seeds (csrc/fuzz/corpus/sasl/) are written by tests/test_sasl_c.py,
 * which also checks that they are current: valid exchanges (their
 * server signatures computed with Python's hashlib for these constants)
 * and the hostile cases of tests/c/test_sasl.c.
 *
 * Build and run (60 s, ASan + UBSan): scripts/fuzz.sh 60 sasl
 */
#include "base64.h"
#include "buf.h"
#include "sasl.h"
#include "scram.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_USER "fuzz-user"
#define FUZZ_PASSWORD "fuzz-password-never-in-errors"
#define FUZZ_TOKEN "fuzz.token-never-in-errors"
#define FUZZ_NONCE "fyko+d2lbbFgONRv9qkxdawL"

/* The longest client message: client-final with the longest server
 * nonce and a SHA-512 proof. */
#define FUZZ_MAX_OUT (PKC_SCRAM_MAX_MESSAGE + 128)

static void
fuzz_parsers(const uint8_t *data, size_t size)
{
    pkc_scram_server_first sf;
    pkc_scram_server_final sfin;
    uint8_t decoded[64];
    size_t n;
    char err[200];

    pkc_scram_parse_server_first(data, size, &sf, err, sizeof(err));
    pkc_scram_parse_server_final(data, size, &sfin, err, sizeof(err));
    pkc_scram_parse_server_first(data, size, &sf, NULL, 0);
    if (pkc_base64_decode(data, size, decoded, sizeof(decoded), &n) ==
            PKC_OK &&
        n > sizeof(decoded))
        abort();
}

static pkc_sasl_client *
fuzz_client(int mechanism)
{
    pkc_sasl_credentials cred = {0};
    pkc_sasl_client *c = NULL;

    cred.mechanism = mechanism;
    cred.username = FUZZ_USER;
    cred.username_len = strlen(FUZZ_USER);
    cred.password = FUZZ_PASSWORD;
    cred.password_len = strlen(FUZZ_PASSWORD);
    cred.token = FUZZ_TOKEN;
    cred.token_len = strlen(FUZZ_TOKEN);
    cred.scram_min_iterations = 4096;
    cred.scram_max_iterations = 4096;
    cred.scram_nonce = FUZZ_NONCE;
    if (pkc_sasl_client_new(&cred, &c, NULL, 0) != PKC_OK)
        abort();
    return c;
}

/* The input of the current run: broker text is quoted in error
 * sentences, so a secret may show there only if the "broker" sent it. */
static const uint8_t *fuzz_input;
static size_t fuzz_input_size;

static int
input_contains(const char *secret)
{
    return memmem(fuzz_input, fuzz_input_size, secret, strlen(secret)) !=
           NULL;
}

static void
check_error_sentence(const pkc_sasl_client *c)
{
    const char *e = pkc_sasl_client_error(c);
    size_t n = strlen(e);

    if (n >= 320)
        abort();
    for (size_t k = 0; k < n; k++)
        if ((unsigned char)e[k] < 0x20 || (unsigned char)e[k] > 0x7e)
            abort();
    if ((strstr(e, FUZZ_PASSWORD) && !input_contains(FUZZ_PASSWORD)) ||
        (strstr(e, FUZZ_TOKEN) && !input_contains(FUZZ_TOKEN)))
        abort();
}

/* One step with the invariants of sasl.h checked. */
static int
fuzz_step(pkc_sasl_client *c, const uint8_t *msg, size_t len)
{
    const uint8_t *out = (const uint8_t *)"x";
    size_t out_len = 12345;
    int rc = pkc_sasl_client_step(c, msg, len, &out, &out_len);

    switch (rc) {
    case PKC_IN_PROGRESS:
        if (out == NULL || out_len == 0 || out_len > FUZZ_MAX_OUT)
            abort();
        break;
    case PKC_OK:
    case PKC_ERR_AUTH:
    case PKC_ERR_INVALID:
        if (out != NULL || out_len != 0)
            abort();
        break;
    default:
        abort();
    }
    check_error_sentence(c);
    return rc;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int mechanisms[4] = {
        PKC_SASL_SCRAM_SHA_256, PKC_SASL_SCRAM_SHA_512,
        PKC_SASL_OAUTHBEARER, PKC_SASL_PLAIN};
    pkc_sasl_client *c;
    size_t first_len;
    int rc;

    if (size < 3)
        return 0;
    fuzz_input = data;
    fuzz_input_size = size;
    fuzz_parsers(data + 1, size - 1);
    if (!pkc_sasl_mechanism_available(mechanisms[data[0] & 3]))
        return 0;
    first_len = ((size_t)data[1] << 8) | data[2];
    if (first_len > size - 3)
        first_len = size - 3;
    c = fuzz_client(mechanisms[data[0] & 3]);
    if (fuzz_step(c, NULL, 0) != PKC_IN_PROGRESS)
        abort();
    rc = fuzz_step(c, data + 3, first_len);
    if (rc == PKC_IN_PROGRESS)
        rc = fuzz_step(c, data + 3 + first_len, size - 3 - first_len);
    if (rc != PKC_IN_PROGRESS && rc != PKC_OK) {
        /* Sticky. */
        if (fuzz_step(c, NULL, 0) != rc)
            abort();
    }
    else
        fuzz_step(c, NULL, 0);
    pkc_sasl_client_free(c);
    return 0;
}
