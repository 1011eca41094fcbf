#include "rng.h"
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void fu_rng_seed(fu_rng *r, uint64_t seed) {
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
    r->has_spare = 0;
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t fu_rng_u64(fu_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t; s[3] = rotl(s[3], 45);
    return result;
}

float fu_rng_uniform(fu_rng *r) { return (float)(fu_rng_u64(r) >> 40) * (1.0f / 16777216.0f); }

uint64_t fu_rng_below(fu_rng *r, uint64_t n) {
    uint64_t limit = UINT64_MAX - UINT64_MAX % n, x;
    do x = fu_rng_u64(r); while (x >= limit);
    return x % n;
}

double fu_rng_normal(fu_rng *r) {
    if (r->has_spare) { r->has_spare = 0; return r->spare; }
    double u1 = ((double)(fu_rng_u64(r) >> 11) + 1.0) * (1.0 / 9007199254740992.0); /* (0, 1] */
    double u2 = (double)(fu_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
    double rad = sqrt(-2.0 * log(u1)), th = 6.283185307179586 * u2;
    r->spare = rad * sin(th);
    r->has_spare = 1;
    return rad * cos(th);
}

void fu_rng_fill_normal(fu_rng *r, float *x, int64_t n, float mean, float std) {
    for (int64_t i = 0; i < n; i++) x[i] = mean + std * (float)fu_rng_normal(r);
}

void fu_rng_fill_uniform(fu_rng *r, float *x, int64_t n, float lo, float hi) {
    for (int64_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * fu_rng_uniform(r);
}

void fu_rng_shuffle(fu_rng *r, int64_t *idx, int64_t n) {
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)fu_rng_below(r, (uint64_t)i + 1), t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}

void fu_rng_to_text(const fu_rng *r, char *buf, size_t n) {
    uint64_t spare;
    memcpy(&spare, &r->spare, sizeof spare);
    snprintf(buf, n, "%016" PRIx64 " %016" PRIx64 " %016" PRIx64 " %016" PRIx64 " %d %016" PRIx64,
             r->s[0], r->s[1], r->s[2], r->s[3], r->has_spare, spare);
}

int fu_rng_from_text(const char *text, fu_rng *r) {
    fu_rng t;
    uint64_t spare;
    int end = -1;
    if (!text || sscanf(text, "%16" SCNx64 " %16" SCNx64 " %16" SCNx64 " %16" SCNx64 " %d %16" SCNx64 "%n",
                        &t.s[0], &t.s[1], &t.s[2], &t.s[3], &t.has_spare, &spare, &end) != 6 || end < 0 || text[end])
        return 0;
    memcpy(&t.spare, &spare, sizeof spare);
    *r = t;
    return 1;
}
