/* Seeded random numbers, identical on every machine for the integer stream: SplitMix64 to
 * expand the seed, xoshiro256** as the generator (Blackman & Vigna's published algorithms).
 * Uniform floats use the top 24 bits; normals use Box-Muller in double precision (libm log/cos:
 * bitwise equal across glibc builds on x86-64 in practice, not guaranteed by the C standard). */
#ifndef FU_RNG_H
#define FU_RNG_H
#include <stdint.h>

typedef struct fu_rng { uint64_t s[4]; double spare; int has_spare; } fu_rng;

void fu_rng_seed(fu_rng *r, uint64_t seed);
uint64_t fu_rng_u64(fu_rng *r);
float fu_rng_uniform(fu_rng *r);                 /* [0, 1) */
uint64_t fu_rng_below(fu_rng *r, uint64_t n);    /* [0, n), unbiased; n > 0 */
double fu_rng_normal(fu_rng *r);                 /* N(0, 1) */
void fu_rng_fill_normal(fu_rng *r, float *x, int64_t n, float mean, float std);
void fu_rng_fill_uniform(fu_rng *r, float *x, int64_t n, float lo, float hi);
void fu_rng_shuffle(fu_rng *r, int64_t *idx, int64_t n);

#endif
