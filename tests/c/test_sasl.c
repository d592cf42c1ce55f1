/*
 * test_sasl.c - plain-C tests of the SASL client mechanisms (sasl.c,
 * scram.c, scram_msg.c, base64.c).
 *
 * Built and run by tests/test_sasl_c.py under ASan + UBSan, once with
 * OpenSSL and once without (then SCRAM must report itself unavailable and
 * the crypto-free parts still run).  With the PKC_SASL_KAT_* environment
 * variables set, it also runs one SCRAM exchange whose expected messages
 * the pytest side computed independently (hashlib / hmac), and prints what
 * the client sent.  Exit status 0 when every check passes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "buf.h"
#include "pkc_test.h"
#include "sasl.h"
#include "scram.h"

#define S(lit) ((const uint8_t *)(lit)), (sizeof(lit) - 1)

/* RFC 7677 section 3, SCRAM-SHA-256. */
#define RFC_USER "user"
#define RFC_PASSWORD "pencil"
#define RFC_NONCE "rOprNGfwEbeRWgbNEkqO"
#define RFC_CLIENT_FIRST "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
#define RFC_FULL_NONCE "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define RFC_SERVER_FIRST \
    "r=" RFC_FULL_NONCE ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
#define RFC_CLIENT_FINAL                                                   \
    "c=biws,r=" RFC_FULL_NONCE                                             \
    ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define RFC_SERVER_FINAL "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

/* ---------------------------------------------------------------- helpers */

static int
step(pkc_sasl_client *c, const uint8_t *msg, size_t len, const uint8_t **out,
     size_t *out_len)
{
    return pkc_sasl_client_step(c, msg, len, out, out_len);
}

static int
out_equals(const uint8_t *out, size_t len, const void *want, size_t want_len)
{
    return out != NULL && len == want_len && memcmp(out, want, len) == 0;
}

/* The error sentence is a bounded, printable C string without secrets. */
static void
check_error_is_clean(const pkc_sasl_client *c, const char *secret)
{
    const char *e = pkc_sasl_client_error(c);
    size_t n = strlen(e);

    CHECK(n > 0 && n < 320);
    for (size_t i = 0; i < n; i++)
        CHECK((unsigned char)e[i] >= 0x20 && (unsigned char)e[i] < 0x7f);
    if (secret != NULL && secret[0] != '\0')
        CHECK(strstr(e, secret) == NULL);
}

static pkc_sasl_credentials
plain_cred(void)
{
    pkc_sasl_credentials cred = {0};

    cred.mechanism = PKC_SASL_PLAIN;
    cred.username = "alice";
    cred.username_len = 5;
    cred.password = "alice-secret";
    cred.password_len = 12;
    return cred;
}

static pkc_sasl_credentials
oauth_cred(const char *token)
{
    pkc_sasl_credentials cred = {0};

    cred.mechanism = PKC_SASL_OAUTHBEARER;
    cred.token = token;
    cred.token_len = strlen(token);
    return cred;
}

static pkc_sasl_credentials
rfc_cred(void)
{
    pkc_sasl_credentials cred = {0};

    cred.mechanism = PKC_SASL_SCRAM_SHA_256;
    cred.username = RFC_USER;
    cred.username_len = strlen(RFC_USER);
    cred.password = RFC_PASSWORD;
    cred.password_len = strlen(RFC_PASSWORD);
    cred.scram_nonce = RFC_NONCE;
    return cred;
}

/* A client made from cred, after its first step (NULL if that failed). */
static pkc_sasl_client *
started(const pkc_sasl_credentials *cred)
{
    pkc_sasl_client *c = NULL;
    char err[256];
    const uint8_t *out;
    size_t len;

    if (pkc_sasl_client_new(cred, &c, err, sizeof(err)) != PKC_OK) {
        fprintf(stderr, "pkc_sasl_client_new: %s\n", err);
        return NULL;
    }
    if (step(c, NULL, 0, &out, &len) != PKC_IN_PROGRESS) {
        pkc_sasl_client_free(c);
        return NULL;
    }
    return c;
}

/* Creation fails with `want`, and the sentence mentions `needle`. */
static void
check_new_fails(const pkc_sasl_credentials *cred, int want,
                const char *needle)
{
    pkc_sasl_client *c = (pkc_sasl_client *)&c;
    char err[256];

    CHECK_EQ(pkc_sasl_client_new(cred, &c, err, sizeof(err)), want);
    CHECK(c == NULL);
    CHECK(strstr(err, needle) != NULL);
    if (cred->password_len > 0)
        CHECK(memmem(err, strlen(err), cred->password, cred->password_len) ==
              NULL);
}

/* ------------------------------------------------------------------ names */

static void
test_mechanism_names(void)
{
    static const char *names[] = {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512",
                                  "OAUTHBEARER"};

    for (int m = PKC_SASL_PLAIN; m <= PKC_SASL_OAUTHBEARER; m++) {
        const char *name = pkc_sasl_mechanism_name(m);
        CHECK(name != NULL && strcmp(name, names[m - 1]) == 0);
        CHECK_EQ(pkc_sasl_mechanism_from_name(name, strlen(name)), m);
    }
    CHECK(pkc_sasl_mechanism_name(PKC_SASL_NONE) == NULL);
    CHECK(pkc_sasl_mechanism_name(-1) == NULL);
    CHECK(pkc_sasl_mechanism_name(5) == NULL);
    CHECK_EQ(pkc_sasl_mechanism_from_name("plain", 5), -1);
    CHECK_EQ(pkc_sasl_mechanism_from_name("PLAINX", 6), -1);
    CHECK_EQ(pkc_sasl_mechanism_from_name("PLAINX", 5), PKC_SASL_PLAIN);
    CHECK_EQ(pkc_sasl_mechanism_from_name("GSSAPI", 6), -1);
    CHECK_EQ(pkc_sasl_mechanism_from_name("", 0), -1);
    CHECK_EQ(pkc_sasl_mechanism_from_name(NULL, 0), -1);
    CHECK_EQ(pkc_sasl_mechanism_available(PKC_SASL_PLAIN), 1);
    CHECK_EQ(pkc_sasl_mechanism_available(PKC_SASL_OAUTHBEARER), 1);
    CHECK_EQ(pkc_sasl_mechanism_available(PKC_SASL_NONE), 0);
    CHECK_EQ(pkc_sasl_mechanism_available(42), 0);
#ifdef PKC_HAVE_OPENSSL
    CHECK_EQ(pkc_sasl_mechanism_available(PKC_SASL_SCRAM_SHA_256), 1);
    CHECK_EQ(pkc_sasl_mechanism_available(PKC_SASL_SCRAM_SHA_512), 1);
#else
    CHECK_EQ(pkc_sasl_mechanism_available(PKC_SASL_SCRAM_SHA_256), 0);
    CHECK_EQ(pkc_sasl_mechanism_available(PKC_SASL_SCRAM_SHA_512), 0);
#endif
}

/* ----------------------------------------------------------------- base64 */

static void
test_base64_rfc4648_vectors(void)
{
    static const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba",
                                  "foobar"};
    static const char *coded[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==",
                                  "Zm9vYmE=", "Zm9vYmFy"};
    char text[16];
    uint8_t bytes[16];
    size_t n;

    for (int k = 0; k < 7; k++) {
        size_t len = strlen(plain[k]);
        CHECK_EQ(pkc_base64_encoded_len(len), strlen(coded[k]));
        n = pkc_base64_encode((const uint8_t *)plain[k], len, text);
        CHECK(n == strlen(coded[k]) && memcmp(text, coded[k], n) == 0);
        CHECK_EQ(pkc_base64_decode((const uint8_t *)coded[k],
                                   strlen(coded[k]), bytes, sizeof(bytes),
                                   &n), PKC_OK);
        CHECK(n == len && memcmp(bytes, plain[k], len) == 0);
    }
}

static void
test_base64_decoder_is_strict(void)
{
    static const char *bad[] = {
        "Zg=", "Zg", "Z", "Zg==Zg==", "Zm8=Zm8=", "Zh==", "Zm9=", "Z===",
        "====", "=AAA", "A=AA", "Zm 9", "Zm9v\n", "Zm-v", "Zm_v", "Zm9v====",
        "Zm9\x80", "Zm\x00v",
    };
    uint8_t out[16];
    size_t n = 99;

    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        /* The last one has a NUL inside. */
        size_t len =
            k == sizeof(bad) / sizeof(bad[0]) - 1 ? 4 : strlen(bad[k]);
        CHECK_EQ(pkc_base64_decode((const uint8_t *)bad[k], len, out,
                                   sizeof(out), &n), PKC_ERR_INVALID);
        CHECK_EQ(n, 0);
    }
    /* Capacity: exact fits, one less is refused before writing. */
    CHECK_EQ(pkc_base64_decode(S("Zm9vYmFy"), out, 6, &n), PKC_OK);
    CHECK_EQ(n, 6);
    memset(out, 0xAA, sizeof(out));
    CHECK_EQ(pkc_base64_decode(S("Zm9vYmFy"), out, 5, &n), PKC_ERR_TOO_LARGE);
    CHECK_EQ(out[0], 0xAA);
    CHECK_EQ(pkc_base64_decode(S("Zm9vYg=="), out, 4, &n), PKC_OK);
    CHECK_EQ(pkc_base64_decode(S("Zm9vYg=="), out, 3, &n), PKC_ERR_TOO_LARGE);
    /* Every byte value survives a round trip. */
    uint8_t all[256], back[256];
    char text[344];
    for (int k = 0; k < 256; k++)
        all[k] = (uint8_t)k;
    for (size_t len = 0; len <= 256; len += 37) {
        size_t t = pkc_base64_encode(all + (256 - len), len, text);
        CHECK_EQ(pkc_base64_decode((const uint8_t *)text, t, back,
                                   sizeof(back), &n), PKC_OK);
        CHECK(n == len && memcmp(back, all + (256 - len), len) == 0);
    }
}

/* ------------------------------------------------------------------ PLAIN */

static void
test_plain_exact_bytes_and_success(void)
{
    pkc_sasl_credentials cred = plain_cred();
    pkc_sasl_client *c;
    const uint8_t *out;
    size_t len;

    CHECK_EQ(pkc_sasl_client_new(&cred, &c, NULL, 0), PKC_OK);
    CHECK_EQ(step(c, NULL, 0, &out, &len), PKC_IN_PROGRESS);
    CHECK(out_equals(out, len, "\0alice\0alice-secret", 19));
    CHECK_EQ(step(c, NULL, 0, &out, &len), PKC_OK);
    CHECK(out == NULL && len == 0);
    CHECK_EQ(strlen(pkc_sasl_client_error(c)), 0);
    /* Done: another step is a caller error, and stays one. */
    CHECK_EQ(step(c, NULL, 0, &out, &len), PKC_ERR_INVALID);
    CHECK_EQ(step(c, NULL, 0, &out, &len), PKC_ERR_INVALID);
    CHECK(out == NULL && len == 0);
    pkc_sasl_client_free(c);
}

static void
test_plain_non_empty_answer_is_invalid(void)
{
    pkc_sasl_credentials cred = plain_cred();
    pkc_sasl_client *c = started(&cred);
    const uint8_t *out;
    size_t len;

    CHECK(c != NULL);
    CHECK_EQ(step(c, S("ok"), &out, &len), PKC_ERR_INVALID);
    check_error_is_clean(c, "alice-secret");
    CHECK_EQ(step(c, NULL, 0, &out, &len), PKC_ERR_INVALID);
    pkc_sasl_client_free(c);
}

static void
test_plain_credentials_are_checked(void)
{
    pkc_sasl_credentials cred = plain_cred();

    cred.username_len = 0;
    check_new_fails(&cred, PKC_ERR_INVALID, "non-empty");
    cred = plain_cred();
    cred.password_len = 0;
    check_new_fails(&cred, PKC_ERR_INVALID, "non-empty");
    cred = plain_cred();
    cred.username = "al\0ce";
    check_new_fails(&cred, PKC_ERR_INVALID, "NUL");
    cred = plain_cred();
    cred.password = "alice\0secre";
    check_new_fails(&cred, PKC_ERR_INVALID, "NUL");
}

/* ------------------------------------------------------- common to all */

static void
test_credential_fields_and_mechanism_are_checked(void)
{
    pkc_sasl_credentials cred = plain_cred();
    char *big = calloc(1, PKC_SASL_MAX_CREDENTIAL + 1);

    cred.username = NULL;
    check_new_fails(&cred, PKC_ERR_INVALID, "NULL");
    cred = plain_cred();
    cred.token_len = 3;
    check_new_fails(&cred, PKC_ERR_INVALID, "token is NULL");
    cred = plain_cred();
    memset(big, 'p', PKC_SASL_MAX_CREDENTIAL + 1);
    cred.password = big;
    cred.password_len = PKC_SASL_MAX_CREDENTIAL + 1;
    check_new_fails(&cred, PKC_ERR_INVALID, "over the");
    cred.password_len = PKC_SASL_MAX_CREDENTIAL;
    pkc_sasl_client *c = NULL;
    CHECK_EQ(pkc_sasl_client_new(&cred, &c, NULL, 0), PKC_OK);
    pkc_sasl_client_free(c);
    free(big);
    cred = plain_cred();
    cred.mechanism = PKC_SASL_NONE;
    check_new_fails(&cred, PKC_ERR_INVALID, "unknown SASL mechanism");
    cred.mechanism = 77;
    check_new_fails(&cred, PKC_ERR_INVALID, "unknown SASL mechanism");
    pkc_sasl_client_free(NULL);
}

static void
test_first_step_takes_no_server_message(void)
{
    pkc_sasl_credentials cred = plain_cred();
    pkc_sasl_client *c;
    const uint8_t *out;
    size_t len;

    CHECK_EQ(pkc_sasl_client_new(&cred, &c, NULL, 0), PKC_OK);
    CHECK_EQ(step(c, S("hello"), &out, &len), PKC_ERR_INVALID);
    CHECK(out == NULL && len == 0);
    check_error_is_clean(c, "alice-secret");
    pkc_sasl_client_free(c);

    CHECK_EQ(pkc_sasl_client_new(&cred, &c, NULL, 0), PKC_OK);
    CHECK_EQ(step(c, NULL, 0, &out, &len), PKC_IN_PROGRESS);
    CHECK_EQ(step(c, NULL, 5, &out, &len), PKC_ERR_INVALID);
    pkc_sasl_client_free(c);
}

/* ------------------------------------------------------------ OAUTHBEARER */

static void
test_oauthbearer_exact_bytes_and_success(void)
{
    static const char want[] = "n,,\x01" "auth=Bearer eyJhbGciOiJub25lIn0."
                               "eyJzdWIiOiJhbGljZSJ9.\x01\x01";
    pkc_sasl_credentials cred =
        oauth_cred("eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9.");
    pkc_sasl_client *c;
    const uint8_t *out;
    size_t len;

    CHECK_EQ(pkc_sasl_client_new(&cred, &c, NULL, 0), PKC_OK);
    CHECK_EQ(step(c, NULL, 0, &out, &len), PKC_IN_PROGRESS);
    CHECK(out_equals(out, len, want, sizeof(want) - 1));
    CHECK_EQ(step(c, (const uint8_t *)"", 0, &out, &len), PKC_OK);
    CHECK(out == NULL && len == 0);
    pkc_sasl_client_free(c);
}

static void
test_oauthbearer_error_json_then_0x01(void)
{
    static const char json[] = "{\"status\":\"invalid_token\"}";
    pkc_sasl_credentials cred = oauth_cred("tok.en-value_1");
    pkc_sasl_client *c = started(&cred);
    const uint8_t *out;
    size_t len;

    CHECK(c != NULL);
    CHECK_EQ(step(c, S(json), &out, &len), PKC_IN_PROGRESS);
    CHECK(out_equals(out, len, "\x01", 1));
    CHECK(strstr(pkc_sasl_client_error(c), json) != NULL);
    /* The broker answers 58; if the link steps anyway, it is a failure. */
    CHECK_EQ(step(c, NULL, 0, &out, &len), PKC_ERR_AUTH);
    CHECK(out == NULL && len == 0);
    CHECK(strstr(pkc_sasl_client_error(c), json) != NULL);
    check_error_is_clean(c, "tok.en-value_1");
    CHECK_EQ(step(c, S("{}"), &out, &len), PKC_ERR_AUTH);
    pkc_sasl_client_free(c);
}

static void
test_oauthbearer_hostile_error_json_is_sanitized(void)
{
    pkc_sasl_credentials cred = oauth_cred("abc");
    pkc_sasl_client *c = started(&cred);
    uint8_t json[5000];
    const uint8_t *out;
    size_t len;

    for (size_t k = 0; k < sizeof(json); k++)
        json[k] = (uint8_t)(k * 7);
    CHECK_EQ(step(c, json, sizeof(json), &out, &len), PKC_IN_PROGRESS);
    CHECK(out_equals(out, len, "\x01", 1));
    check_error_is_clean(c, NULL);
    CHECK(strstr(pkc_sasl_client_error(c), "...") != NULL);
    CHECK_EQ(step(c, NULL, 0, &out, &len), PKC_ERR_AUTH);
    check_error_is_clean(c, NULL);
    pkc_sasl_client_free(c);
}

static void
test_oauthbearer_token_is_checked(void)
{
    static const char *bad[] = {"", "a b", "a\001b", "a\tb", "a\x7f",
                                "caf\xc3\xa9", "a\nb"};
    pkc_sasl_credentials cred;

    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        cred = oauth_cred(bad[k]);
        check_new_fails(&cred, PKC_ERR_INVALID,
                        k == 0 ? "needs a token" : "printable");
    }
    cred = oauth_cred("!~\"#$%&'()*+,-./09:;<=>?@AZ[\\]^_`az{|}");
    pkc_sasl_client *c = NULL;
    CHECK_EQ(pkc_sasl_client_new(&cred, &c, NULL, 0), PKC_OK);
    pkc_sasl_client_free(c);
}

/* ------------------------------------------------- SCRAM message parsing */

static void
test_scram_parser_accepts_and_extracts(void)
{
    pkc_scram_server_first sf;
    pkc_scram_server_final sfin;
    char err[256];

    CHECK_EQ(pkc_scram_parse_server_first(S(RFC_SERVER_FIRST), &sf, err,
                                          sizeof(err)), PKC_OK);
    CHECK(sf.nonce.len == (int32_t)strlen(RFC_FULL_NONCE) &&
          memcmp(sf.nonce.ptr, RFC_FULL_NONCE, (size_t)sf.nonce.len) == 0);
    CHECK_EQ(sf.salt_len, 16);
    CHECK_EQ(sf.iterations, 4096);
    CHECK_EQ(pkc_scram_parse_server_first(S("r=ab,s=QQ==,i=4294967295,x=1,"
                                            "Y=a=b"), &sf, err, sizeof(err)),
             PKC_OK);
    CHECK_EQ(sf.iterations, 4294967295u);
    CHECK_EQ(pkc_scram_parse_server_final(S(RFC_SERVER_FINAL), &sfin, err,
                                          sizeof(err)), PKC_OK);
    CHECK_EQ(sfin.signature_len, 32);
    CHECK_EQ(pkc_scram_parse_server_final(S("v=QUJD,q=ext"), &sfin, err,
                                          sizeof(err)), PKC_OK);
    CHECK_EQ(sfin.signature_len, 3);
}

static void
test_scram_parser_refuses(void)
{
    static const struct {
        const char *msg;
        int status;
        const char *needle;
    } first[] = {
        {"", PKC_ERR_INVALID, "empty"},
        {"r", PKC_ERR_INVALID, "ends at byte 0"},
        {"r=", PKC_ERR_INVALID, "r= is empty"},
        {"rr=abc,s=QQ==,i=4096", PKC_ERR_INVALID, "x=value"},
        {"=r,s=QQ==,i=4096", PKC_ERR_INVALID, "x=value"},
        {"1=abc,s=QQ==,i=4096", PKC_ERR_INVALID, "x=value"},
        {"s=QQ==,r=abc,i=4096", PKC_ERR_INVALID, "starts with s="},
        {"r=abc", PKC_ERR_INVALID, "s= is missing"},
        {"r=abc,s=QQ==", PKC_ERR_INVALID, "i= is missing"},
        {"r=abc,i=4096", PKC_ERR_INVALID, "where s="},
        {"r=abc,s=QQ==,s=QQ==,i=4096", PKC_ERR_INVALID, "where i="},
        {"r=abc,s=QQ==,i=4096,r=abc", PKC_ERR_INVALID, "repeated"},
        {"r=abc,s=QQ==,i=4096,i=4096", PKC_ERR_INVALID, "repeated"},
        {"r=abc,s=QQ==,i=4096,m=x", PKC_ERR_INVALID, "repeated"},
        {"r=abc,s=QQ==,i=4096,", PKC_ERR_INVALID, "should start"},
        {"r=abc,s=QQ==,i=4096,x", PKC_ERR_INVALID, "should start"},
        {"r=abc,s=QQ==,i=4096,x=", PKC_ERR_INVALID, "x= is empty"},
        {"r=abc,,s=QQ==,i=4096", PKC_ERR_INVALID, "x=value"},
        {"m=ext,r=abc,s=QQ==,i=4096", PKC_ERR_INVALID, "mandatory"},
        {"r=a c,s=QQ==,i=4096", PKC_ERR_INVALID, "printable"},
        {"r=a\177c,s=QQ==,i=4096", PKC_ERR_INVALID, "printable"},
        {"r=a\xc3\xa9,s=QQ==,i=4096", PKC_ERR_INVALID, "printable"},
        {"r=abc,s=QQ=,i=4096", PKC_ERR_INVALID, "base64"},
        {"r=abc,s=Q@==,i=4096", PKC_ERR_INVALID, "base64"},
        {"r=abc,s=QR==,i=4096", PKC_ERR_INVALID, "base64"},
        {"r=abc,s=QQ==QQ==,i=4096", PKC_ERR_INVALID, "base64"},
        {"r=abc,s=QUFB QUFB,i=4096", PKC_ERR_INVALID, "base64"},
        {"r=abc,s=QQ==,i=abc", PKC_ERR_INVALID, "positive decimal"},
        {"r=abc,s=QQ==,i=-4096", PKC_ERR_INVALID, "positive decimal"},
        {"r=abc,s=QQ==,i=+4096", PKC_ERR_INVALID, "positive decimal"},
        {"r=abc,s=QQ==,i= 4096", PKC_ERR_INVALID, "positive decimal"},
        {"r=abc,s=QQ==,i=4096 ", PKC_ERR_INVALID, "positive decimal"},
        {"r=abc,s=QQ==,i=04096", PKC_ERR_INVALID, "positive decimal"},
        {"r=abc,s=QQ==,i=0", PKC_ERR_INVALID, "positive decimal"},
        {"r=abc,s=QQ==,i=4096.0", PKC_ERR_INVALID, "positive decimal"},
        {"r=abc,s=QQ==,i=0x1000", PKC_ERR_INVALID, "positive decimal"},
        {"r=abc,s=QQ==,i=4294967296", PKC_ERR_INVALID, "over 4294967295"},
        {"r=abc,s=QQ==,i=99999999999999999999999", PKC_ERR_INVALID, "over"},
        {"e=unknown-user", PKC_ERR_AUTH, "e=unknown-user"},
        {"e=other-error,x=y", PKC_ERR_AUTH, "e=other-error"},
    };
    static const struct {
        const char *msg;
        int status;
        const char *needle;
    } final[] = {
        {"", PKC_ERR_INVALID, "no server signature"},
        {"v=", PKC_ERR_INVALID, "v= is empty"},
        {"v", PKC_ERR_INVALID, "should start"},
        {"v=QUJD=", PKC_ERR_INVALID, "base64"},
        {"v=QUJ", PKC_ERR_INVALID, "base64"},
        {"v=QUJD,v=QUJD", PKC_ERR_INVALID, "repeated"},
        {"v=QUJD,e=oops", PKC_ERR_INVALID, "repeated"},
        {"v=QUJD,", PKC_ERR_INVALID, "should start"},
        {"x=QUJD", PKC_ERR_INVALID, "starts with x="},
        {"m=1,v=QUJD", PKC_ERR_INVALID, "mandatory"},
        {"e=invalid-proof", PKC_ERR_AUTH, "e=invalid-proof"},
    };
    pkc_scram_server_first sf;
    pkc_scram_server_final sfin;
    char err[256];

    for (size_t k = 0; k < sizeof(first) / sizeof(first[0]); k++) {
        err[0] = '\0';
        int rc = pkc_scram_parse_server_first(
            (const uint8_t *)first[k].msg, strlen(first[k].msg), &sf, err,
            sizeof(err));
        CHECK_EQ(rc, first[k].status);
        if (strstr(err, first[k].needle) == NULL)
            fprintf(stderr, "server-first %zu (%s): '%s' lacks '%s'\n", k,
                    first[k].msg, err, first[k].needle);
        CHECK(strstr(err, first[k].needle) != NULL);
    }
    for (size_t k = 0; k < sizeof(final) / sizeof(final[0]); k++) {
        err[0] = '\0';
        int rc = pkc_scram_parse_server_final(
            (const uint8_t *)final[k].msg, strlen(final[k].msg), &sfin, err,
            sizeof(err));
        CHECK_EQ(rc, final[k].status);
        if (strstr(err, final[k].needle) == NULL)
            fprintf(stderr, "server-final %zu (%s): '%s' lacks '%s'\n", k,
                    final[k].msg, err, final[k].needle);
        CHECK(strstr(err, final[k].needle) != NULL);
    }
}

static void
test_scram_parser_nul_and_size_limits(void)
{
    static const uint8_t with_nul[] = "r=ab\0c,s=QQ==,i=4096";
    uint8_t big[PKC_SCRAM_MAX_MESSAGE + 1];
    pkc_scram_server_first sf;
    pkc_scram_server_final sfin;
    char err[256];
    char salt[PKC_SCRAM_MAX_SALT * 2];
    size_t t;
    int n;

    CHECK_EQ(pkc_scram_parse_server_first(with_nul, sizeof(with_nul) - 1,
                                          &sf, err, sizeof(err)),
             PKC_ERR_INVALID);
    CHECK(strstr(err, "NUL") != NULL);
    memset(big, 'a', sizeof(big));
    memcpy(big, "r=", 2);
    CHECK_EQ(pkc_scram_parse_server_first(big, sizeof(big), &sf, err,
                                          sizeof(err)), PKC_ERR_INVALID);
    CHECK(strstr(err, "over the 4096") != NULL);
    CHECK_EQ(pkc_scram_parse_server_final(big, sizeof(big), &sfin, err,
                                          sizeof(err)), PKC_ERR_INVALID);
    /* A salt of PKC_SCRAM_MAX_SALT bytes is fine, one more is not. */
    uint8_t zeros[PKC_SCRAM_MAX_SALT + 1] = {0};
    for (size_t extra = 0; extra <= 1; extra++) {
        t = pkc_base64_encode(zeros, PKC_SCRAM_MAX_SALT + extra, salt);
        n = snprintf((char *)big, sizeof(big), "r=abc,s=%.*s,i=4096", (int)t,
                     salt);
        CHECK_EQ(pkc_scram_parse_server_first(big, (size_t)n, &sf, err,
                                              sizeof(err)),
                 extra ? PKC_ERR_INVALID : PKC_OK);
    }
    CHECK(strstr(err, "more than 128 bytes") != NULL);
    /* A signature longer than SHA-512's (65 bytes). */
    t = pkc_base64_encode(zeros, PKC_SCRAM_MAX_HASH + 1, salt);
    n = snprintf((char *)big, sizeof(big), "v=%.*s", (int)t, salt);
    CHECK_EQ(pkc_scram_parse_server_final(big, (size_t)n, &sfin, err,
                                          sizeof(err)), PKC_ERR_INVALID);
}

static void
test_scram_username_escaping(void)
{
    static const struct {
        const char *user, *want;
    } cases[] = {
        {"user", "n,,n=user,r=NONCE"},
        {"a,b=c", "n,,n=a=2Cb=3Dc,r=NONCE"},
        {"==,,", "n,,n==3D=3D=2C=2C,r=NONCE"},
        {",", "n,,n==2C,r=NONCE"},
        {"=3D", "n,,n==3D3D,r=NONCE"},
        {"\xc3\xa9l\xc3\xa8ve", "n,,n=\xc3\xa9l\xc3\xa8ve,r=NONCE"},
    };
    pkc_writer w;

    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        pkc_writer_init(&w, 0, 0);
        CHECK_EQ(pkc_scram_write_client_first(&w, cases[k].user,
                                              strlen(cases[k].user), "NONCE",
                                              5), PKC_OK);
        CHECK(w.len == strlen(cases[k].want) &&
              memcmp(w.buf, cases[k].want, w.len) == 0);
        pkc_writer_free(&w);
    }
}

/* ------------------------------------------------------ SCRAM exchange */

#ifdef PKC_HAVE_OPENSSL

static int
step_str(pkc_sasl_client *c, const char *msg, const uint8_t **out,
         size_t *out_len)
{
    return step(c, (const uint8_t *)msg, strlen(msg), out, out_len);
}

static void
test_scram_sha256_rfc7677_vector(void)
{
    pkc_sasl_credentials cred = rfc_cred();
    pkc_sasl_client *c;
    const uint8_t *out;
    size_t len;

    CHECK_EQ(pkc_sasl_client_new(&cred, &c, NULL, 0), PKC_OK);
    CHECK_EQ(step(c, NULL, 0, &out, &len), PKC_IN_PROGRESS);
    CHECK(out_equals(out, len, S(RFC_CLIENT_FIRST)));
    CHECK_EQ(step_str(c, RFC_SERVER_FIRST, &out, &len), PKC_IN_PROGRESS);
    CHECK(out_equals(out, len, S(RFC_CLIENT_FINAL)));
    CHECK_EQ(step_str(c, RFC_SERVER_FINAL, &out, &len), PKC_OK);
    CHECK(out == NULL && len == 0);
    CHECK_EQ(strlen(pkc_sasl_client_error(c)), 0);
    CHECK_EQ(step(c, NULL, 0, &out, &len), PKC_ERR_INVALID);
    pkc_sasl_client_free(c);
}

/* The RFC exchange up to the client-final message. */
static pkc_sasl_client *
rfc_after_client_final(void)
{
    pkc_sasl_credentials cred = rfc_cred();
    pkc_sasl_client *c = started(&cred);
    const uint8_t *out;
    size_t len;

    if (c == NULL ||
        step_str(c, RFC_SERVER_FIRST, &out, &len) != PKC_IN_PROGRESS) {
        CHECK(0);
        pkc_sasl_client_free(c);
        return NULL;
    }
    return c;
}

/*
 * Give c (NULL: a CHECK fails) the server message msg[0..msg_len): the step
 * must fail with `want` and a clean sentence containing `needle`, then
 * fail the same way when stepped again with a valid message; frees c.
 */
static void
check_step_fails(pkc_sasl_client *c, const void *msg, size_t msg_len,
                 int want, const char *needle, const char *again)
{
    const uint8_t *out;
    size_t len;

    CHECK(c != NULL);
    if (c == NULL)
        return;
    CHECK_EQ(step(c, (const uint8_t *)msg, msg_len, &out, &len), want);
    CHECK(out == NULL && len == 0);
    check_error_is_clean(c, RFC_PASSWORD);
    if (strstr(pkc_sasl_client_error(c), needle) == NULL) {
        fprintf(stderr, "'%s' lacks '%s'\n", pkc_sasl_client_error(c),
                needle);
        CHECK(0);
    }
    CHECK_EQ(step_str(c, again, &out, &len), want);
    pkc_sasl_client_free(c);
}

static void
check_server_final_fails(const void *msg, size_t msg_len, int want,
                         const char *needle)
{
    check_step_fails(rfc_after_client_final(), msg, msg_len, want, needle,
                     RFC_SERVER_FINAL);
}

static void
test_scram_server_final_hostile(void)
{
    /* One bit flipped in the signature. */
    check_server_final_fails(
        S("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G8="), PKC_ERR_AUTH,
        "signature is wrong");
    /* Error 0 with no v= at all (a forged success). */
    check_server_final_fails(S(""), PKC_ERR_INVALID, "no server signature");
    check_server_final_fails(S("e=invalid-proof"), PKC_ERR_AUTH,
                             "e=invalid-proof");
    check_server_final_fails(S("e=\x01\x02nasty\n"), PKC_ERR_AUTH,
                             "e=??nasty?");
    check_server_final_fails(
        S("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4"), PKC_ERR_INVALID,
        "base64");
    check_server_final_fails(
        S("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=="), PKC_ERR_INVALID,
        "base64");
    check_server_final_fails(
        S("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl9"), PKC_ERR_INVALID,
        "30 bytes instead of 32");
    check_server_final_fails(S(RFC_SERVER_FINAL "," RFC_SERVER_FINAL),
                             PKC_ERR_INVALID, "repeated");
    check_server_final_fails(S("r=" RFC_FULL_NONCE), PKC_ERR_INVALID,
                             "starts with r=");
    /* A valid final message with an extension is accepted. */
    pkc_sasl_client *c = rfc_after_client_final();
    const uint8_t *out;
    size_t len;
    CHECK_EQ(step_str(c, RFC_SERVER_FINAL ",z=ignored", &out, &len), PKC_OK);
    pkc_sasl_client_free(c);
}

/* Feed a server-first message to a fresh client for cred; it must fail. */
static void
check_server_first_fails(const pkc_sasl_credentials *cred, const void *msg,
                         size_t msg_len, int want, const char *needle)
{
    check_step_fails(started(cred), msg, msg_len, want, needle,
                     RFC_SERVER_FIRST);
}

#define RFC_SALT ",s=W22ZaJ0SNY7soEsUEjb6gQ=="

static void
test_scram_server_first_hostile(void)
{
    pkc_sasl_credentials cred = rfc_cred();
    /* Iteration counts: absurd (would block for minutes if hashed), too
     * small, just outside the bounds, not digits. */
    check_server_first_fails(&cred, S("r=" RFC_FULL_NONCE RFC_SALT
                                      ",i=2147483647"),
                             PKC_ERR_INVALID, "i=2147483647 is outside");
    check_server_first_fails(&cred, S("r=" RFC_FULL_NONCE RFC_SALT ",i=1"),
                             PKC_ERR_INVALID, "outside the accepted 4096 to "
                                              "16384");
    check_server_first_fails(&cred, S("r=" RFC_FULL_NONCE RFC_SALT ",i=4095"),
                             PKC_ERR_INVALID, "4095");
    check_server_first_fails(&cred, S("r=" RFC_FULL_NONCE RFC_SALT
                                      ",i=16385"),
                             PKC_ERR_INVALID, "16385");
    check_server_first_fails(&cred, S("r=" RFC_FULL_NONCE RFC_SALT ",i=abc"),
                             PKC_ERR_INVALID, "positive decimal");
    check_server_first_fails(&cred, S("r=" RFC_FULL_NONCE RFC_SALT
                                      ",i=99999999999"),
                             PKC_ERR_INVALID, "over");
    /* Nonces: not ours, equal to ours, shorter, ours with one byte
     * changed, ours as a suffix (librdkafka's old doubled nonce). */
    check_server_first_fails(&cred, S("r=XOprNGfwEbeRWgbNEkqO%hvYDpWUa2"
                                      RFC_SALT ",i=4096"),
                             PKC_ERR_INVALID, "does not extend");
    check_server_first_fails(&cred, S("r=" RFC_NONCE RFC_SALT ",i=4096"),
                             PKC_ERR_INVALID, "does not extend");
    check_server_first_fails(&cred, S("r=rOprNGfw" RFC_SALT ",i=4096"),
                             PKC_ERR_INVALID, "does not extend");
    check_server_first_fails(&cred, S("r=rOprNGfwEbeRWgbNEkqP%hvY" RFC_SALT
                                      ",i=4096"),
                             PKC_ERR_INVALID, "does not extend");
    check_server_first_fails(&cred, S("r=abc" RFC_NONCE RFC_SALT ",i=4096"),
                             PKC_ERR_INVALID, "does not extend");
    /* Attributes: missing, duplicated, reordered, bad base64, m=, e=. */
    check_server_first_fails(&cred, S("r=" RFC_FULL_NONCE ",i=4096"),
                             PKC_ERR_INVALID, "where s=");
    check_server_first_fails(&cred, S("r=" RFC_FULL_NONCE RFC_SALT),
                             PKC_ERR_INVALID, "i= is missing");
    check_server_first_fails(&cred, S("s=W22ZaJ0SNY7soEsUEjb6gQ==,r="
                                      RFC_FULL_NONCE ",i=4096"),
                             PKC_ERR_INVALID,
                             "starts with s=");
    check_server_first_fails(&cred, S(RFC_SERVER_FIRST ",s=QQ=="),
                             PKC_ERR_INVALID, "repeated");
    check_server_first_fails(&cred, S(RFC_SERVER_FIRST ",r=" RFC_FULL_NONCE),
                             PKC_ERR_INVALID, "repeated");
    check_server_first_fails(&cred, S("r=" RFC_FULL_NONCE
                                      ",s=W22ZaJ0SNY7soEsUEjb6gQ=,i=4096"),
                             PKC_ERR_INVALID, "base64");
    check_server_first_fails(&cred, S("r=" RFC_FULL_NONCE
                                      ",s=W22ZaJ0SNY7s_EsUEjb6gQ==,i=4096"),
                             PKC_ERR_INVALID, "base64");
    check_server_first_fails(&cred, S("m=x," RFC_SERVER_FIRST),
                             PKC_ERR_INVALID, "mandatory");
    check_server_first_fails(&cred, S("e=unknown-user"), PKC_ERR_AUTH,
                             "e=unknown-user");
    check_server_first_fails(&cred, S(""), PKC_ERR_INVALID, "empty");
    /* Configured bounds. */
    cred.scram_min_iterations = 8192;
    check_server_first_fails(&cred, S(RFC_SERVER_FIRST), PKC_ERR_INVALID,
                             "outside the accepted 8192 to 16384");
    cred.scram_min_iterations = 0;
    cred.scram_max_iterations = 4095;
    pkc_sasl_client *c = NULL;
    char err[256];
    CHECK_EQ(pkc_sasl_client_new(&cred, &c, err, sizeof(err)),
             PKC_ERR_INVALID);
    CHECK(strstr(err, "reversed") != NULL);
}

static void
test_scram_every_prefix_fails_cleanly(void)
{
    pkc_sasl_credentials cred = rfc_cred();
    const char *first = RFC_SERVER_FIRST, *final = RFC_SERVER_FINAL;

    for (size_t k = 0; k < strlen(first); k++) {
        pkc_sasl_client *c = started(&cred);
        const uint8_t *out;
        size_t len;
        int rc = step(c, (const uint8_t *)first, k, &out, &len);
        CHECK(rc == PKC_ERR_INVALID);
        check_error_is_clean(c, RFC_PASSWORD);
        pkc_sasl_client_free(c);
    }
    for (size_t k = 0; k < strlen(final); k++) {
        pkc_sasl_client *c = rfc_after_client_final();
        const uint8_t *out;
        size_t len;
        int rc = step(c, (const uint8_t *)final, k, &out, &len);
        CHECK(rc == PKC_ERR_INVALID || rc == PKC_ERR_AUTH);
        CHECK(out == NULL && len == 0);
        check_error_is_clean(c, RFC_PASSWORD);
        pkc_sasl_client_free(c);
    }
}

static void
test_scram_extension_after_i_is_skipped(void)
{
    /* The RFC exchange with ",x=1" appended to server-first: the
     * AuthMessage includes it, so the signatures differ from the RFC's; the
     * client must get that far (PKC_IN_PROGRESS) and then refuse the RFC's
     * signature. */
    pkc_sasl_credentials cred = rfc_cred();
    pkc_sasl_client *c = started(&cred);
    const uint8_t *out;
    size_t len;

    CHECK_EQ(step_str(c, RFC_SERVER_FIRST ",x=1", &out, &len),
             PKC_IN_PROGRESS);
    CHECK(len > 9 && memcmp(out, "c=biws,r=", 9) == 0);
    CHECK_EQ(step_str(c, RFC_SERVER_FINAL, &out, &len), PKC_ERR_AUTH);
    pkc_sasl_client_free(c);
}

static void
test_scram_random_nonce(void)
{
    pkc_sasl_credentials cred = rfc_cred();
    pkc_sasl_client *a, *b;
    const uint8_t *out_a, *out_b;
    size_t len_a, len_b;
    char first_a[128];

    cred.scram_nonce = NULL;
    cred.mechanism = PKC_SASL_SCRAM_SHA_512;
    CHECK_EQ(pkc_sasl_client_new(&cred, &a, NULL, 0), PKC_OK);
    CHECK_EQ(pkc_sasl_client_new(&cred, &b, NULL, 0), PKC_OK);
    CHECK_EQ(step(a, NULL, 0, &out_a, &len_a), PKC_IN_PROGRESS);
    CHECK_EQ(step(b, NULL, 0, &out_b, &len_b), PKC_IN_PROGRESS);
    /* "n,,n=user,r=" + 32 base64 characters of 24 random bytes. */
    CHECK_EQ(len_a, 12 + 32);
    CHECK_EQ(len_b, 12 + 32);
    CHECK(memcmp(out_a, "n,,n=user,r=", 12) == 0);
    CHECK(pkc_scram_is_printable(out_a + 12, 32));
    CHECK(memchr(out_a + 12, '=', 32) == NULL);
    memcpy(first_a, out_a, len_a);
    CHECK(memcmp(first_a, out_b, len_a) != 0);
    pkc_sasl_client_free(a);
    pkc_sasl_client_free(b);
}

static void
test_scram_credentials_are_checked(void)
{
    pkc_sasl_credentials cred = rfc_cred();

    cred.username_len = 0;
    check_new_fails(&cred, PKC_ERR_INVALID, "user name");
    cred = rfc_cred();
    cred.username = "us\0r";
    check_new_fails(&cred, PKC_ERR_INVALID, "NUL");
    cred = rfc_cred();
    cred.scram_nonce = "with,comma";
    check_new_fails(&cred, PKC_ERR_INVALID, "nonce");
    cred.scram_nonce = "with space";
    check_new_fails(&cred, PKC_ERR_INVALID, "nonce");
    cred.scram_nonce = "";
    check_new_fails(&cred, PKC_ERR_INVALID, "nonce");
    /* An empty password is the user's business (Kafka does not check). */
    cred = rfc_cred();
    cred.password = NULL;
    cred.password_len = 0;
    pkc_sasl_client *c = started(&cred);
    CHECK(c != NULL);
    const uint8_t *out;
    size_t len;
    CHECK_EQ(step_str(c, RFC_SERVER_FIRST, &out, &len), PKC_IN_PROGRESS);
    CHECK_EQ(step_str(c, RFC_SERVER_FINAL, &out, &len), PKC_ERR_AUTH);
    pkc_sasl_client_free(c);
}

static void
test_scram_low_minimum_when_configured(void)
{
    /* A caller may lower the minimum (tests); i=1 then computes. */
    pkc_sasl_credentials cred = rfc_cred();
    pkc_sasl_client *c;
    const uint8_t *out;
    size_t len;

    cred.scram_min_iterations = 1;
    c = started(&cred);
    CHECK_EQ(step_str(c, "r=" RFC_FULL_NONCE RFC_SALT ",i=1", &out, &len),
             PKC_IN_PROGRESS);
    pkc_sasl_client_free(c);
}

/* One exchange from the PKC_SASL_KAT_* variables (see test_sasl_c.py). */
static void
test_scram_known_answer_from_environment(void)
{
    const char *mech = getenv("PKC_SASL_KAT_MECHANISM");
    const char *user = getenv("PKC_SASL_KAT_USER");
    const char *password = getenv("PKC_SASL_KAT_PASSWORD");
    const char *nonce = getenv("PKC_SASL_KAT_NONCE");
    const char *server_first = getenv("PKC_SASL_KAT_SERVER_FIRST");
    const char *server_final = getenv("PKC_SASL_KAT_SERVER_FINAL");
    pkc_sasl_credentials cred = {0};
    pkc_sasl_client *c;
    const uint8_t *out;
    size_t len;

    if (mech == NULL)
        return;
    CHECK(user && password && nonce && server_first && server_final);
    if (!(user && password && nonce && server_first && server_final))
        return;
    cred.mechanism = pkc_sasl_mechanism_from_name(mech, strlen(mech));
    cred.username = user;
    cred.username_len = strlen(user);
    cred.password = password;
    cred.password_len = strlen(password);
    cred.scram_nonce = nonce;
    CHECK_EQ(pkc_sasl_client_new(&cred, &c, NULL, 0), PKC_OK);
    CHECK_EQ(step(c, NULL, 0, &out, &len), PKC_IN_PROGRESS);
    printf("kat client-first: %.*s\n", (int)len, (const char *)out);
    CHECK_EQ(step_str(c, server_first, &out, &len), PKC_IN_PROGRESS);
    printf("kat client-final: %.*s\n", (int)len, (const char *)out);
    int rc = step_str(c, server_final, &out, &len);
    printf("kat server-final: %s\n", pkc_status_str(rc));
    CHECK_EQ(rc, PKC_OK);
    pkc_sasl_client_free(c);
}

#else /* !PKC_HAVE_OPENSSL */

static void
test_scram_unavailable_without_openssl(void)
{
    pkc_sasl_credentials cred = rfc_cred();

    check_new_fails(&cred, PKC_ERR_UNSUPPORTED, "SCRAM-SHA-256 needs OpenSSL");
    check_new_fails(&cred, PKC_ERR_UNSUPPORTED, "libcrypto");
    cred.mechanism = PKC_SASL_SCRAM_SHA_512;
    check_new_fails(&cred, PKC_ERR_UNSUPPORTED, "SCRAM-SHA-512 needs OpenSSL");
    printf("scram: unavailable without OpenSSL\n");
}

#endif /* PKC_HAVE_OPENSSL */

int
main(void)
{
    RUN(test_mechanism_names);
    RUN(test_base64_rfc4648_vectors);
    RUN(test_base64_decoder_is_strict);
    RUN(test_plain_exact_bytes_and_success);
    RUN(test_plain_non_empty_answer_is_invalid);
    RUN(test_plain_credentials_are_checked);
    RUN(test_credential_fields_and_mechanism_are_checked);
    RUN(test_first_step_takes_no_server_message);
    RUN(test_oauthbearer_exact_bytes_and_success);
    RUN(test_oauthbearer_error_json_then_0x01);
    RUN(test_oauthbearer_hostile_error_json_is_sanitized);
    RUN(test_oauthbearer_token_is_checked);
    RUN(test_scram_parser_accepts_and_extracts);
    RUN(test_scram_parser_refuses);
    RUN(test_scram_parser_nul_and_size_limits);
    RUN(test_scram_username_escaping);
#ifdef PKC_HAVE_OPENSSL
    RUN(test_scram_sha256_rfc7677_vector);
    RUN(test_scram_server_final_hostile);
    RUN(test_scram_server_first_hostile);
    RUN(test_scram_every_prefix_fails_cleanly);
    RUN(test_scram_extension_after_i_is_skipped);
    RUN(test_scram_random_nonce);
    RUN(test_scram_credentials_are_checked);
    RUN(test_scram_low_minimum_when_configured);
    RUN(test_scram_known_answer_from_environment);
#else
    RUN(test_scram_unavailable_without_openssl);
#endif
    return pkc_test_summary();
}
