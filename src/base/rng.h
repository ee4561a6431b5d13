/* rng.h — a small deterministic random number generator (xoshiro256** seeded by splitmix64).
 * The whole state is four words, so it is saved in checkpoints and restored exactly. */
#ifndef RC_RNG_H
#define RC_RNG_H

#include <stdint.h>

typedef struct {
    uint64_t s[4];
} rc_rng;

void rc_rng_seed(rc_rng *r, uint64_t seed);
uint64_t rc_rng_u64(rc_rng *r);
/* Uniform in [0, 1) with 24 bits of precision. */
float rc_rng_uniform(rc_rng *r);
/* Uniform integer in [0, n), unbiased. n > 0. */
uint32_t rc_rng_below(rc_rng *r, uint32_t n);
/* Standard normal (Box-Muller, no cached second value so the state is the only state). */
float rc_rng_normal(rc_rng *r);
/* Fisher-Yates shuffle of an int array. */
void rc_rng_shuffle(rc_rng *r, int *a, int n);

#endif
