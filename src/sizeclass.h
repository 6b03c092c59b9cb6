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

#include "ph_assert.h"

#define SIZECLASS_MAX_BINS 64
#define SIZECLASS_MAX_SIZE ((size_t)64 << 10)

typedef struct sizeclass {
  unsigned nbins;
  size_t max; /* the largest small size */
  uint32_t size[SIZECLASS_MAX_BINS];
  /* Divisibility by size = odd << shift, for sizeclass_starts: inverse
   * (of odd, mod 2^32), limit (UINT32_MAX / odd), low (2^shift - 1). */
  struct sizeclass_div {
    uint32_t inverse;
    uint32_t limit;
    uint32_t low;
    uint32_t page_mask; /* the page size - 1, beside the rest for the free path */
  } div[SIZECLASS_MAX_BINS];
  uint8_t bin_of[SIZECLASS_MAX_SIZE / 8 + 1];
} sizeclass;

/* Reads jemalloc's bins (page: the system's page size). 0, or -1 with the
 * error set. */
int sizeclass_init(sizeclass *sc, size_t page);

/* The bin of a request of n bytes (n <= max). */
static inline unsigned sizeclass_bin(const sizeclass *sc, size_t n) {
  PH_ASSERT(n <= sc->max);
  return sc->bin_of[(n + 7) >> 3];
}

/* Whether an object of bin b may start at p, on a page whose objects of b
 * start where phase takes their offset to a multiple of the size: d = (p's
 * offset in its page) + phase must be a multiple of odd << shift, so d's
 * low shift bits 0, and d times the inverse of odd (mod 2^32) at most
 * UINT32_MAX / odd, which holds iff odd divides d (d below 2^32). No
 * branch, one multiplication. */
static inline bool sizeclass_starts(const sizeclass *sc, unsigned b, const void *p, uint32_t phase) {
  const struct sizeclass_div *v = &sc->div[b];
  uint32_t d = ((uint32_t)(uintptr_t)p & v->page_mask) + phase;
  return ((d & v->low) == 0) & (d * v->inverse <= v->limit);
}

/* Number of broken invariants. */
int sizeclass_check(const sizeclass *sc);

#endif
