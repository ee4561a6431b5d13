/* vec8.h — 8-lane float and double vectors on GCC/Clang vector types, for the streaming loops that keep
 * batch-norm sums in double (bnact.c, upsample.c): a 16-lane nChw16c position is two v8f halves, each
 * widened to a v8d to be summed. Internal to src/ops; include only from .c files. */
#ifndef RC_VEC8_H
#define RC_VEC8_H

#include <string.h>

typedef float v8f __attribute__((vector_size(32)));
typedef int v8i __attribute__((vector_size(32)));
typedef double v8d __attribute__((vector_size(64)));
/* These types are passed only between static functions of the including file, so the note GCC gives for a
 * 64-byte vector returned without AVX-512 (its ABI differs across translation units) does not apply. */
#if defined(__GNUC__) && !defined(__clang__) && !defined(__AVX512F__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

static inline v8f ldf(const float *p) {
    v8f f;
    memcpy(&f, p, sizeof f);
    return f;
}
static inline void stf(float *p, v8f f) { memcpy(p, &f, sizeof f); }
static inline v8d cvt(v8f f) { return __builtin_convertvector(f, v8d); }

#endif
