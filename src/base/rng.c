/* rng.c — xoshiro256** generator, seeded through splitmix64; uniform, bounded, normal, shuffle. */
#include "rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void rc_rng_seed(rc_rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t rc_rng_u64(rc_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

float rc_rng_uniform(rc_rng *r) { return (float)(rc_rng_u64(r) >> 40) * (1.0f / 16777216.0f); }

uint32_t rc_rng_below(rc_rng *r, uint32_t n) {
    /* rejection sampling on the top 32 bits */
    uint32_t limit = (uint32_t)(0x100000000ULL - (0x100000000ULL % n)) - 1u;
    for (;;) {
        uint32_t v = (uint32_t)(rc_rng_u64(r) >> 32);
        if (n == 0 || v <= limit) return n ? v % n : 0;
    }
}

float rc_rng_normal(rc_rng *r) {
    double u1 = ((double)(rc_rng_u64(r) >> 11) + 1.0) * (1.0 / 9007199254740993.0); /* (0, 1] */
    double u2 = (double)(rc_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

void rc_rng_shuffle(rc_rng *r, int *a, int n) {
    for (int i = n - 1; i > 0; i--) {
        int j = (int)rc_rng_below(r, (uint32_t)(i + 1));
        int t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}
