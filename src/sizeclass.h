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
  uint64_t magic[SIZECLASS_MAX_BINS]; /* ceil(2^64 / size): d / size = d * magic >> 64 for d < 2^32 */
  uint8_t bin_of[SIZECLASS_MAX_SIZE / 8 + 1];
} sizeclass;

/* Reads jemalloc's bins. 0, or -1 with the error set. */
int sizeclass_init(sizeclass *sc);

/* The bin of a request of n bytes (n <= max). */
static inline unsigned sizeclass_bin(const sizeclass *sc, size_t n) { return sc->bin_of[(n + 7) >> 3]; }

/* Whether off + phase is a multiple of bin b's size: one multiplication
 * for the quotient, exact below 2^32, and one to check it. */
static inline bool sizeclass_starts(const sizeclass *sc, unsigned b, uint32_t off, uint32_t phase) {
  uint64_t d = (uint64_t)off + phase;
  return (uint64_t)(((unsigned __int128)d * sc->magic[b]) >> 64) * sc->size[b] == d;
}

/* Number of broken invariants. */
int sizeclass_check(const sizeclass *sc);

#endif
