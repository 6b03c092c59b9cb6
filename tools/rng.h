/*
 * rng: deterministic random numbers for the workloads: xorshift64, seeded
 * through splitmix64 so that small seeds still give well-mixed states.
 */
#ifndef PINHEAP_TOOLS_RNG_H
#define PINHEAP_TOOLS_RNG_H

#include <stdint.h>

typedef struct rng {
  uint64_t state; /* never 0 */
} rng;

static inline void rng_seed(rng *r, uint64_t seed) {
  uint64_t z = seed + 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  r->state = z != 0 ? z : 0x2545f4914f6cdd1dULL;
}

static inline uint64_t rng_next(rng *r) {
  uint64_t x = r->state;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  r->state = x;
  return x;
}

/* A number in [0, n); n > 0. The modulo bias is negligible for our n. */
static inline uint64_t rng_below(rng *r, uint64_t n) { return rng_next(r) % n; }

/* A number in [lo, hi]. */
static inline uint64_t rng_range(rng *r, uint64_t lo, uint64_t hi) { return lo + rng_below(r, hi - lo + 1); }

/* A size in [16 B, 4 KiB], roughly log-uniform. */
static inline uint64_t rng_small_size(rng *r) {
  uint64_t lo = (uint64_t)1 << (4 + rng_below(r, 8)); /* 16 .. 2048 */
  return lo + rng_below(r, lo + 1);                   /* lo .. 2 lo */
}

#endif
