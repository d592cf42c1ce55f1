/*
 * pkc_test.h - a tiny plain-C unit test harness for csrc/wire.
 *
 * Each test is a `static void test_x(void)` that uses CHECK*; main() calls
 * RUN(test_x) for each and returns pkc_test_summary().  A failed check
 * prints file:line and the expression and the test goes on (so one run
 * shows every failure).  Built and run by the pytest suite.
 */
#pragma once

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* Atomic: checks also run in the fake broker threads of the engine tests,
 * and ThreadSanitizer runs those (scripts/tsan-tests.sh). */
static _Atomic int pkc_test_failures;
static _Atomic int pkc_test_checks;
static const char *pkc_test_current = "?";

#define CHECK(cond)                                                        \
    do {                                                                   \
        pkc_test_checks++;                                                 \
        if (!(cond)) {                                                     \
            pkc_test_failures++;                                           \
            fprintf(stderr, "%s:%d: %s: CHECK failed: %s\n", __FILE__,     \
                    __LINE__, pkc_test_current, #cond);                    \
        }                                                                  \
    } while (0)

#define CHECK_EQ(a, b)                                                     \
    do {                                                                   \
        long long pkc_a_ = (long long)(a), pkc_b_ = (long long)(b);       \
        pkc_test_checks++;                                                 \
        if (pkc_a_ != pkc_b_) {                                            \
            pkc_test_failures++;                                           \
            fprintf(stderr, "%s:%d: %s: %s == %s failed: %lld != %lld\n",  \
                    __FILE__, __LINE__, pkc_test_current, #a, #b, pkc_a_,  \
                    pkc_b_);                                               \
        }                                                                  \
    } while (0)

/* Compare n bytes; print the first difference. */
#define CHECK_MEM(a, b, n)                                                 \
    do {                                                                   \
        const unsigned char *pkc_x_ = (const unsigned char *)(a);          \
        const unsigned char *pkc_y_ = (const unsigned char *)(b);          \
        size_t pkc_n_ = (n), pkc_i_;                                       \
        pkc_test_checks++;                                                 \
        for (pkc_i_ = 0; pkc_i_ < pkc_n_; pkc_i_++)                        \
            if (pkc_x_[pkc_i_] != pkc_y_[pkc_i_])                          \
                break;                                                     \
        if (pkc_i_ < pkc_n_) {                                             \
            pkc_test_failures++;                                           \
            fprintf(stderr,                                                \
                    "%s:%d: %s: %s and %s differ at byte %zu: %02x != "    \
                    "%02x\n",                                              \
                    __FILE__, __LINE__, pkc_test_current, #a, #b, pkc_i_,  \
                    pkc_x_[pkc_i_], pkc_y_[pkc_i_]);                       \
        }                                                                  \
    } while (0)

#define RUN(fn)                                                            \
    do {                                                                   \
        pkc_test_current = #fn;                                            \
        fn();                                                              \
    } while (0)

static inline int
pkc_test_summary(void)
{
    printf("%d checks, %d failures\n", pkc_test_checks, pkc_test_failures);
    return pkc_test_failures ? 1 : 0;
}
