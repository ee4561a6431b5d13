/* test.h — the tiny test harness: CHECK macros that count failures, and a main-return helper.
 * A test binary prints one line per failed check and "ok NAME" / "FAIL NAME" per test function. */
#ifndef RC_TEST_H
#define RC_TEST_H

#include <math.h>
#include <stddef.h>
#include <stdio.h>

static int rc_test_fails = 0;

#define CHECK(cond, ...)                                               \
    do {                                                               \
        if (!(cond)) {                                                 \
            fprintf(stderr, "  check failed at %s:%d: ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                              \
            fprintf(stderr, "\n");                                     \
            rc_test_fails++;                                           \
        }                                                              \
    } while (0)

/* |a - b| <= atol + rtol * |b| */
#define CHECK_CLOSE(a, b, rtol, atol, what)                                                        \
    do {                                                                                           \
        double a_ = (double)(a), b_ = (double)(b);                                                 \
        CHECK(fabs(a_ - b_) <= (atol) + (rtol)*fabs(b_) && !isnan(a_) && !isnan(b_),                \
              "%s: got %.9g expected %.9g (rtol %g atol %g)", (what), a_, b_, (double)(rtol),       \
              (double)(atol));                                                                     \
    } while (0)

#define RUN_TEST(fn)                                                  \
    do {                                                              \
        int before_ = rc_test_fails;                                  \
        fn();                                                         \
        printf("%s %s\n", rc_test_fails == before_ ? "ok  " : "FAIL", #fn); \
        fflush(stdout);                                               \
    } while (0)

#define TEST_MAIN_END() return rc_test_fails ? 1 : 0

/* max |a - b| / max(max |b|, 1e-3): the relative error of a against the reference b (NaN anywhere in a
 * counts as an infinite error). */
static inline double rel_err(const float *a, const float *b, size_t n) {
    double md = 0, mb = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= md)) md = d;
        if (fabs((double)b[i]) > mb) mb = fabs((double)b[i]);
    }
    return md / (mb > 1e-3 ? mb : 1e-3);
}

#endif
