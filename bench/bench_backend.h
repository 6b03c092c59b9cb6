/*
 * bench_backend: what the two small-object harnesses share (small_bench.h,
 * the steady churn; pattern_bench.h, the patterns beyond it): the backend
 * interface every runner (bench_small_*.c) defines, the clock and the random
 * numbers, so that each runner's backend and each draw is written once.
 * Each harness defines its own struct sb_config, with the fields region_mib
 * and quiet that the backends read.
 */
#ifndef PINHEAP_BENCH_BACKEND_H
#define PINHEAP_BENCH_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

typedef struct sb_config sb_config;

/* ---- backend: defined by the runner ------------------------------------ */
typedef struct bk_thread bk_thread;
/* Once, before any thread starts. 0, or -1 after printing why. Prints a line
 * naming the allocator and its version. */
static int bk_global_init(const sb_config *cfg);
/* In the worker thread, before timing. 0, or -1 with a message in msg. */
static int bk_thread_init(bk_thread *t, unsigned index, char *msg, size_t msglen);
static void *bk_alloc(bk_thread *t, size_t size);
static void bk_free(bk_thread *t, void *p);
/* Whether p lies in memory the allocator manages for this run. */
static bool bk_owns(bk_thread *t, const void *p);
/* In the worker thread, after every block of the thread is freed. */
static void bk_thread_fini(bk_thread *t);
/* Once, after every thread is joined. Returns 0, or -1 after printing why. */
static int bk_global_fini(const sb_config *cfg);

/* ---- clock and random numbers ------------------------------------------ */

/* Nanoseconds on clock c. */
static inline uint64_t sb_clock_ns(clockid_t c) {
  struct timespec ts;
  clock_gettime(c, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The next seed of a sequence: a thread's generator is seeded from the
 * run's seed this way. */
static inline uint64_t sb_splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* xorshift64* */
static inline uint64_t sb_next(uint64_t *s) {
  uint64_t x = *s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *s = x;
  return x * 0x2545f4914f6cdd1dull;
}

/* A number in [0, n) from 32 random bits, without a division. */
static inline uint32_t sb_range(uint32_t bits, uint32_t n) {
  return (uint32_t)(((uint64_t)bits * n) >> 32);
}

#endif
