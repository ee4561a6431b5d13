/* vmath.h — exp, sigmoid and tanh on floats as branch-free polynomials (Cephes-style range reduction)
 * that compilers vectorise, within a few ulps of libm (tests/test_ops.c measures it): the ConvLSTM cell's
 * gates and the fast paths of the sigmoid and tanh ops. The plain-C references of those ops call libm. */
#ifndef RC_VMATH_H
#define RC_VMATH_H

#include <math.h>
#include <stdint.h>

/* The files that include this call it in `omp simd` loops, which ask for vectorisation; sanitizer builds
 * cannot honour that, which clang reports: the diagnostic is off for the rest of such a file. */
#if defined(__clang__)
#pragma clang diagnostic ignored "-Wpass-failed"
#endif

#ifndef RC_INLINE
#define RC_INLINE static inline __attribute__((always_inline))
#endif

typedef union {
    float f;
    int32_t i;
} fbits;

/* e^x for x in [-87, 88] (clamped outside): x = k ln2 + r, |r| <= ln2/2, e^r by a degree-6 polynomial. */
RC_INLINE float vexp(float x) {
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    float k = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f; /* round to nearest */
    float r = fmaf(k, -0.693359375f, x); /* fmaf: one rounding, and an FMA instruction once vectorised */
    r = fmaf(k, 2.12194440e-4f, r);
    float p = 1.9875691500e-4f;
    p = fmaf(p, r, 1.3981999507e-3f);
    p = fmaf(p, r, 8.3334519073e-3f);
    p = fmaf(p, r, 4.1665795894e-2f);
    p = fmaf(p, r, 1.6666665459e-1f);
    p = fmaf(p, r, 5.0000001201e-1f);
    p = fmaf(p * r, r, r) + 1.0f;
    fbits s;
    s.i = ((int32_t)k + 127) << 23;
    return p * s.f;
}

RC_INLINE float vsigmoid(float x) { return 1.0f / (1.0f + vexp(-x)); }

/* tanh: odd polynomial for |x| < 0.625, else (1 - e) / (1 + e) with e = exp(-2|x|) */
RC_INLINE float vtanh(float x) {
    float ax = x < 0.0f ? -x : x;
    float e = vexp(-2.0f * ax);
    float big = (1.0f - e) / (1.0f + e);
    big = x < 0.0f ? -big : big;
    float s = x * x;
    float small = fmaf(-5.70498872745e-3f, s, 2.06390887954e-2f);
    small = fmaf(small, s, -5.37397155531e-2f);
    small = fmaf(small, s, 1.33314422036e-1f);
    small = fmaf(small, s, -3.33332819422e-1f);
    small = fmaf(small * s, x, x);
    return ax < 0.625f ? small : big;
}

#endif
