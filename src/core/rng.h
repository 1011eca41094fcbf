/* Seeded random numbers, identical on every machine for the integer stream: SplitMix64 to
 * expand the seed, xoshiro256** as the generator (Blackman & Vigna's published algorithms).
 * Uniform floats use the top 24 bits; normals use Box-Muller in double precision (libm log/cos:
 * bitwise equal across glibc builds on x86-64 in practice, not guaranteed by the C standard). */
#ifndef FU_RNG_H
#define FU_RNG_H
#include <stddef.h>
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

/* The whole state as text, for checkpoints: the 4 state words, has_spare and the spare normal's
 * bits, all hex ("%016x x4 %d %016x"; 86 characters). Parsing is strict (exactly that, nothing
 * after); returns 1, or 0 leaving r untouched (also for a NULL text). */
void fu_rng_to_text(const fu_rng *r, char *buf, size_t n);
int fu_rng_from_text(const char *text, fu_rng *r);

#endif
