/*
 * Stress: threads allocate blocks of every size class (small, medium, large),
 * fill them with a pattern, hand some to another thread to free, check
 * ownership and patterns, and at the end free everything: after
 * pinheap_trim nothing is in use and one free extent covers the region
 * (arenas take exact grants and give emptied slabs back; jemalloc's
 * metadata lies outside the region).
 *
 *   stress_threads [seed] [threads] [rounds] [fixed|dynamic]   (seed 0: from the clock)
 *
 * DYNAMIC: a heap of 16 MiB chunks and direct blocks from 8 MiB, capped at
 * 512 MiB, with the default cache of freed direct registrations (reused by
 * other threads, drained for room under the cap); after trim, what stays
 * registered is the first chunk and the chunks holding what jemalloc keeps.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pattern.h"
#include "pinheap.h"
#include "seed.h"

#define MiB ((size_t)1 << 20)
#define SLOTS 512
#define PATTERN_BYTES 8192 /* filled at each end of a block; small ones fully */

typedef struct slot {
  pthread_mutex_t lock;
  unsigned char *p;
  size_t size;
} slot;

static pinheap *heap;
static slot slots[SLOTS];
static unsigned long long seed;
static unsigned rounds;
static atomic_ulong failures, allocations, cross_frees;


static void fill(unsigned char *p, size_t size) { pattern_fill(p, size, PATTERN_BYTES, (uintptr_t)p); }

static void verify(const unsigned char *p, size_t size) {
  if (pattern_find(p, size, PATTERN_BYTES, (uintptr_t)p) == SIZE_MAX) return;
  fprintf(stderr, "stress: block %p of %zu bytes was overwritten (seed %llu)\n", (const void *)p, size, seed);
  abort();
}

static size_t pick_size(uint64_t *s) {
  uint64_t r = seed_next_r(s) % 100;
  if (r < 70) return 1 + seed_next_r(s) % 1024;             /* small */
  if (r < 90) return 1024 + seed_next_r(s) % (256 * 1024);  /* medium, both sides of the threshold */
  if (r < 99) return 256 * 1024 + seed_next_r(s) % (4 * MiB);
  return 4 * MiB + seed_next_r(s) % (32 * MiB);              /* large */
}

static void *worker(void *arg) {
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + (uintptr_t)arg + 1;
  for (unsigned r = 0; r < rounds; r++) {
    slot *sl = &slots[seed_next_r(&s) % SLOTS];
    pthread_mutex_lock(&sl->lock);
    if (sl->p) {
      verify(sl->p, sl->size);
      if (!pinheap_owns(heap, sl->p)) {
        fprintf(stderr, "stress: heap does not own its block %p\n", (void *)sl->p);
        abort();
      }
      if (pinheap_usable_size(heap, sl->p) < sl->size) {
        fprintf(stderr, "stress: usable size of %p below %zu\n", (void *)sl->p, sl->size);
        abort();
      }
      if (seed_next_r(&s) % 4 == 0) {
        size_t size = pick_size(&s);
        unsigned char *q = pinheap_realloc(heap, sl->p, size);
        if (q) {
          size_t keep = size < sl->size ? size : sl->size, head = keep < PATTERN_BYTES ? keep : PATTERN_BYTES;
          if (pattern_find(q, head, head, (uintptr_t)sl->p) != SIZE_MAX) {
            fprintf(stderr, "stress: realloc lost content (seed %llu)\n", seed);
            abort();
          }
          sl->p = q;
          sl->size = size;
          fill(q, size);
        }
      } else {
        pinheap_free(heap, sl->p);
        sl->p = NULL;
        atomic_fetch_add(&cross_frees, 1);
      }
    } else {
      size_t size = pick_size(&s);
      unsigned char *p = seed_next_r(&s) % 8 ? pinheap_malloc(heap, size)
                                          : pinheap_aligned_alloc(heap, (size_t)64 << (seed_next_r(&s) % 12), size);
      if (p) {
        fill(p, size);
        sl->p = p;
        sl->size = size;
        atomic_fetch_add(&allocations, 1);
      } else {
        atomic_fetch_add(&failures, 1);
      }
    }
    pthread_mutex_unlock(&sl->lock);
  }
  return NULL;
}

int main(int argc, char **argv) {
  seed = argc > 1 ? strtoull(argv[1], NULL, 0) : 0; /* 0: from the clock */
  if (seed == 0) seed = (unsigned long long)time(NULL);
  unsigned threads = argc > 2 ? (unsigned)atoi(argv[2]) : 2;
  rounds = argc > 3 ? (unsigned)atoi(argv[3]) : 200000;
  bool dyn = argc > 4 && strcmp(argv[4], "dynamic") == 0;
  printf("stress_threads: seed %llu, %u threads, %u rounds each, %s (rerun: stress_threads %llu %u %u %s)\n", seed,
         threads, rounds, dyn ? "dynamic" : "fixed", seed, threads, rounds, dyn ? "dynamic" : "fixed");
  fflush(stdout);
  pinheap_options o;
  pinheap_options_init(&o);
  o.size = 512 * MiB;
  if (dyn) {
    o.mode = PINHEAP_DYNAMIC;
    o.chunk_size = 16 * MiB;
  }
  heap = pinheap_create(&o);
  if (!heap) {
    fprintf(stderr, "stress: %s\n", pinheap_last_error());
    return 1;
  }
  for (int i = 0; i < SLOTS; i++) pthread_mutex_init(&slots[i].lock, NULL);
  pthread_t t[64];
  if (threads < 1 || threads > 64) threads = 2;
  for (unsigned i = 0; i < threads; i++) pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)i);
  for (unsigned i = 0; i < threads; i++) pthread_join(t[i], NULL);
  int broken = pinheap_check(heap);
  for (int i = 0; i < SLOTS; i++) {
    if (slots[i].p) {
      verify(slots[i].p, slots[i].size);
      pinheap_free(heap, slots[i].p);
    }
  }
  pinheap_trim(heap);
  broken += pinheap_check(heap);
  pinheap_stats st;
  pinheap_get_stats(heap, &st);
  /* Nothing stays in use: FIXED, one free extent is the region; DYNAMIC,
   * at most two chunks stay registered. */
  printf("stress_threads: %lu allocations, %lu frees by any thread, %lu refused for room; after trim: %zu free "
         "extent(s), largest %zu of %zu bytes, %zu in use, peak %zu\n",
         atomic_load(&allocations), atomic_load(&cross_frees), atomic_load(&failures), st.free_extents,
         st.largest_free, st.capacity, st.in_use, st.peak_in_use);
  int ok = broken == 0 && st.allocated == 0 && st.in_use == 0 &&
           (dyn ? st.capacity <= 2 * o.chunk_size : st.largest_free == st.capacity && st.free_extents == 1);
  pinheap_destroy(heap);
  printf("%s\n", ok ? "1 passed, 0 failed" : "0 passed, 1 failed");
  return ok ? 0 : 1;
}
