/*
 * bench_shmem: an OpenSHMEM program (the specification's routines only)
 * that measures whatever serves its shmem_malloc: the implementation's own
 * symmetric heap, or libpinheap-shmem linked or preloaded. run_shmem.sh
 * runs it under oshrun both ways, side by side.
 *
 *   bench_shmem speed SIZE PAIRS
 *       PAIRS shmem_malloc(SIZE) + shmem_free pairs (the calls' collectives
 *       included) after a tenth as many unmeasured; PE 0 prints
 *       "RESULT speed size=SIZE pairs=PAIRS us_per_pair=T"
 *   bench_shmem workload SEED [STEPS]
 *       a generated PGAS-like workload (below), run until it ends or a
 *       request returns NULL; PE 0 prints "RESULT workload seed=SEED
 *       steps=STEPS completed=0|1 step=N peak_live=BYTES", N the step that
 *       failed (or STEPS), BYTES the most bytes live at once (asked for)
 *
 * The workload is drawn from a seeded generator of its own (xorshift),
 * and depends on the seed alone, not on the allocator's answers: per step,
 *   - arrays: with probability 1/4 a new array of 256 KiB to 32 MiB
 *     (log-uniform) that lives 5 to 200 steps, after freeing the oldest
 *     arrays while the live arrays would pass 160 MiB;
 *   - halo buffers: with probability 1/8 one of 16 to 256 KiB living 1 to
 *     10 steps;
 *   - small objects: 1 to 3 of 16 B to 4 KiB (counters, locks, pSync
 *     arrays), one in ten living to the end, the others 1 to 20 steps.
 * Every object's first and last bytes are written. STEPS defaults to 1500.
 */
#include <shmem.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)
#define MAX_LIVE 4096
#define ARRAY_CAP (160 * MiB)

static int me;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int speed(size_t size, long pairs) {
  for (long i = 0; i < pairs / 10 + 1; i++) shmem_free(shmem_malloc(size));
  shmem_barrier_all();
  double t0 = now();
  for (long i = 0; i < pairs; i++) {
    void *p = shmem_malloc(size);
    if (!p) {
      fprintf(stderr, "bench_shmem: PE %d: shmem_malloc(%zu) returned NULL\n", me, size);
      shmem_global_exit(1);
    }
    shmem_free(p);
  }
  shmem_barrier_all();
  double us = (now() - t0) * 1e6 / (double)pairs;
  if (me == 0) printf("RESULT speed size=%zu pairs=%ld us_per_pair=%.3f\n", size, pairs, us);
  return 0;
}

static uint64_t rng(uint64_t *s) {
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  return *s * 2685821657736338717ull;
}

/* A size from lo to hi bytes, log-uniform. */
static size_t log_uniform(uint64_t *s, size_t lo, size_t hi) {
  unsigned a = 63 - (unsigned)__builtin_clzll(lo), b = 63 - (unsigned)__builtin_clzll(hi);
  size_t base = (size_t)1 << (a + (unsigned)(rng(s) % (b - a + 1)));
  size_t size = base + (size_t)(rng(s) % base);
  return size < lo ? lo : size > hi ? hi : size;
}

typedef struct object {
  char *p;
  size_t size;
  int dies; /* the step at which it is freed; -1: at the end */
  int array;
} object;

static object live[MAX_LIVE];
static int nlive;
static size_t live_bytes, array_bytes, peak;

static void release(int i) {
  shmem_free(live[i].p);
  live_bytes -= live[i].size;
  if (live[i].array) array_bytes -= live[i].size;
  live[i] = live[--nlive];
}

/* 0, or -1 when the request returned NULL. */
static int take(size_t size, int dies, int array) {
  if (nlive == MAX_LIVE) return 0;
  char *p = shmem_malloc(size);
  if (!p) return -1;
  p[0] = p[size - 1] = 1;
  live[nlive++] = (object){p, size, dies, array};
  live_bytes += size;
  if (array) array_bytes += size;
  if (live_bytes > peak) peak = live_bytes;
  return 0;
}

static int workload(uint64_t seed, int steps) {
  uint64_t s = seed * 0x9e3779b97f4a7c15ull | 1;
  int step = 1, failed = 0;
  for (; step <= steps && !failed; step++) {
    for (int i = nlive - 1; i >= 0; i--)
      if (live[i].dies == step) release(i);
    if (rng(&s) % 4 == 0) {
      size_t size = log_uniform(&s, 256 * KiB, 32 * MiB);
      int life = 5 + (int)(rng(&s) % 196);
      /* The oldest arrays go first (the live list keeps no order: the
       * one that dies soonest). */
      while (array_bytes + size > ARRAY_CAP) {
        int first = -1;
        for (int i = 0; i < nlive; i++)
          if (live[i].array && (first < 0 || live[i].dies < live[first].dies)) first = i;
        release(first);
      }
      failed |= take(size, step + life, 1);
    }
    if (!failed && rng(&s) % 8 == 0) {
      size_t size = log_uniform(&s, 16 * KiB, 256 * KiB);
      failed |= take(size, step + 1 + (int)(rng(&s) % 10), 0);
    }
    int count = 1 + (int)(rng(&s) % 3);
    for (int k = 0; k < count && !failed; k++) {
      size_t size = log_uniform(&s, 16, 4 * KiB);
      int dies = rng(&s) % 10 == 0 ? -1 : step + 1 + (int)(rng(&s) % 20);
      failed |= take(size, dies, 0);
    }
  }
  if (me == 0)
    printf("RESULT workload seed=%llu steps=%d completed=%d step=%d peak_live=%zu\n", (unsigned long long)seed, steps,
           !failed, step - 1, peak);
  while (nlive) release(nlive - 1);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 3 || (strcmp(argv[1], "speed") && strcmp(argv[1], "workload")) ||
      (!strcmp(argv[1], "speed") && argc < 4)) {
    fprintf(stderr, "usage: bench_shmem speed SIZE PAIRS | workload SEED [STEPS]\n");
    return 2;
  }
  shmem_init();
  me = shmem_my_pe();
  int rc = !strcmp(argv[1], "speed")
               ? speed((size_t)strtoull(argv[2], NULL, 10), strtol(argv[3], NULL, 10))
               : workload(strtoull(argv[2], NULL, 10), argc > 3 ? atoi(argv[3]) : 1500);
  shmem_finalize();
  return rc;
}
