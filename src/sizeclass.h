/*
 * sizeclass: jemalloc's small size classes (bins), read from jemalloc at
 * start-up, and an O(1) table from a request size to its bin.
 *
 * Invariants: size[0] < size[1] < ... < size[nbins - 1] = max; every size is
 * a multiple of 8; bin_of[(n + 7) / 8] is the smallest bin b with
 * size[b] >= n, for 0 <= n <= max (0 maps to bin 0).
 *
 * Thread-safe once initialized (read-only).
 */
#ifndef PINHEAP_SIZECLASS_H
#define PINHEAP_SIZECLASS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIZECLASS_MAX_BINS 64
#define SIZECLASS_MAX_SIZE ((size_t)64 << 10)

typedef struct sizeclass {
  unsigned nbins;
  size_t max; /* the largest small size */
  uint32_t size[SIZECLASS_MAX_BINS];
  /* Divisibility by size = odd << shift: inverse (of odd, mod 2^32) and
   * limit (UINT32_MAX / size), for sizeclass_starts. */
  struct sizeclass_div {
    uint32_t inverse;
    uint32_t limit;
    uint32_t shift;
  } div[SIZECLASS_MAX_BINS];
  uint8_t bin_of[SIZECLASS_MAX_SIZE / 8 + 1];
} sizeclass;

/* Reads jemalloc's bins. 0, or -1 with the error set. */
int sizeclass_init(sizeclass *sc);

/* The bin of a request of n bytes (n <= max). */
static inline unsigned sizeclass_bin(const sizeclass *sc, size_t n) { return sc->bin_of[(n + 7) >> 3]; }

/* Whether off + phase (below 2^32) is a multiple of bin b's size, with one
 * multiplication: d is a multiple of odd << shift iff d times the inverse
 * of odd, rotated right by shift, is at most UINT32_MAX / size (its low
 * shift bits, which must be 0, come out on top). */
static inline bool sizeclass_starts(const sizeclass *sc, unsigned b, uint32_t off, uint32_t phase) {
  const struct sizeclass_div *v = &sc->div[b];
  uint32_t x = (off + phase) * v->inverse;
  x = (x >> v->shift) | (x << ((32 - v->shift) & 31));
  return x <= v->limit;
}

/* Number of broken invariants. */
int sizeclass_check(const sizeclass *sc);

#endif
