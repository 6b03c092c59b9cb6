/*
 * util: small helpers shared by every module (no state).
 */
#ifndef PINHEAP_UTIL_H
#define PINHEAP_UTIL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#define PH_EXPORT __attribute__((visibility("default")))
#define PH_LIKELY(x) __builtin_expect(!!(x), 1)
#define PH_UNLIKELY(x) __builtin_expect(!!(x), 0)
/* For a function whose callers pass constants that must fold away. */
#define PH_ALWAYS_INLINE inline __attribute__((always_inline))
#define PH_CONTAINER_OF(p, type, member) ((type *)(void *)((char *)(p)-offsetof(type, member)))

/* The word a freed object at p holds for the mark m (key.h, inbound.h):
 * m mixed with a hash of p's address (its top bit clear), so that a word
 * copied to another address reads as a mark there only by chance, even
 * with some of its bytes rewritten: the multiply spreads the addresses'
 * difference over the bits above its lowest one, not into one byte. */
static inline uint64_t util_mark_at(uint64_t m, const void *p) {
  return m ^ (((uint64_t)(uintptr_t)p * 0x9E3779B97F4A7C15ull) >> 1);
}
/* Writes that word into p's first 8 bytes. */
static inline void util_mark(void *p, uint64_t m) {
  uint64_t w = util_mark_at(m, p);
  memcpy(p, &w, sizeof w);
}

static inline bool util_is_pow2(size_t x) { return x != 0 && (x & (x - 1)) == 0; }

/* Rounds x up to a multiple of the power of two a; returns 0 on overflow. */
static inline size_t util_align_up(size_t x, size_t a) {
  if (x > SIZE_MAX - (a - 1)) return 0;
  return (x + a - 1) & ~(a - 1);
}

/* CLOCK_MONOTONIC in nanoseconds. */
static inline uint64_t util_now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* CLOCK_MONOTONIC to a tick (a few ms; never ahead of util_now_ns), for
 * stamps taken on hot paths: about a quarter of util_now_ns's cost. */
static inline uint64_t util_coarse_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* a - b, or 0 when b is larger: a difference of counts read at different
 * moments, which must not wrap. */
static inline size_t util_sub_floor(size_t a, size_t b) { return a > b ? a - b : 0; }

static inline uintptr_t util_align_down(uintptr_t x, size_t a) { return x & ~(uintptr_t)(a - 1); }

/* Bit i of a bitmap of 64-bit words: set, cleared, read. */
static inline void util_bit_set(uint64_t *words, size_t i) { words[i / 64] |= (uint64_t)1 << (i % 64); }
static inline void util_bit_clear(uint64_t *words, size_t i) { words[i / 64] &= ~((uint64_t)1 << (i % 64)); }
static inline bool util_bit_test(const uint64_t *words, size_t i) { return (words[i / 64] >> (i % 64)) & 1; }

/* The lowest bit set at or above from in the bitmap words[0..n), or n * 64
 * when none is. */
static inline size_t util_bit_next(const uint64_t *words, size_t n, size_t from) {
  for (size_t w = from / 64; w < n; w++) {
    uint64_t bits = words[w];
    if (w == from / 64) bits &= ~(uint64_t)0 << (from % 64);
    if (bits) return w * 64 + (size_t)__builtin_ctzll(bits);
  }
  return n * 64;
}

/* The highest bit set at or below from in the bitmap words (from < 64 times
 * their number), or SIZE_MAX when none is. */
static inline size_t util_bit_prev(const uint64_t *words, size_t from) {
  for (size_t w = from / 64 + 1; w-- > 0;) {
    uint64_t bits = words[w];
    if (w == from / 64 && from % 64 != 63) bits &= ((uint64_t)1 << (from % 64 + 1)) - 1;
    if (bits) return w * 64 + 63 - (size_t)__builtin_clzll(bits);
  }
  return SIZE_MAX;
}

/* Raises *max to v when v is larger; returns the maximum after. */
static inline size_t util_raise_max(_Atomic size_t *max, size_t v) {
  size_t cur = atomic_load(max);
  while (v > cur && !atomic_compare_exchange_weak(max, &cur, v)) {
  }
  return v > cur ? v : cur;
}

#endif
