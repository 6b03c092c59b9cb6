/*
 * seed: the random source of the randomized tests. Every test prints its
 * seed and takes one as its first argument, so a failure can be replayed.
 */
#ifndef PINHEAP_TEST_SEED_H
#define PINHEAP_TEST_SEED_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static uint64_t seed_state;

/* xorshift64* over a caller's state (one per thread). */
static inline uint64_t seed_next_r(uint64_t *s) {
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  return *s * 2685821657736338717ull;
}

static inline uint64_t seed_next(void) { return seed_next_r(&seed_state); }

static inline uint64_t seed_below(uint64_t n) { return seed_next() % n; }

/* Takes the seed from argv[1] (0: the clock) or the clock, prints it, and
 * returns it. */
static inline uint64_t seed_init(int argc, char **argv, const char *name) {
  uint64_t s = argc > 1 ? strtoull(argv[1], NULL, 0) : 0;
  if (s == 0) s = (uint64_t)time(NULL);
  if (s == 0) s = 1;
  seed_state = s;
  printf("%s: seed %llu (rerun with: %s %llu)\n", name, (unsigned long long)s, name, (unsigned long long)s);
  fflush(stdout);
  return s;
}

#endif
