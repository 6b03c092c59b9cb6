/*
 * Stress of the threads' caches of medium extents (src/xcache.h) in a FIXED
 * heap kept near full: threads allocate blocks of 14 KiB to 1 MiB (now and
 * then an aligned one or a realloc) into shared slots, fill both ends with
 * a pattern, free blocks other threads allocated, and now and then call
 * pinheap_trim, so that caches are emptied by other threads while their
 * owners use them and requests that find no room empty them before
 * answering ENOMEM. Live bytes may ask for more than the region holds: a
 * refusal is counted, not a failure. At the end every block is checked and
 * freed, and after pinheap_trim one free extent covers the region but for
 * what the arenas keep.
 *
 * With a larger region (the fourth argument, in MiB) the heap is seldom
 * near full, so that the caches keep extents most of the time, those of
 * 64 KiB - 1 MiB whenever the threads meet at the extent manager's lock.
 *
 *   stress_medium [seed] [threads] [rounds] [region MiB, default 64]
 *   (seed 0: from the clock)
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pattern.h"
#include "pinheap.h"
#include "seed.h"

#define MiB ((size_t)1 << 20)
#define SLOTS 192
#define ENDS 256 /* pattern bytes at each end */

typedef struct slot {
  pthread_mutex_t lock;
  unsigned char *p;
  size_t size;
} slot;

static pinheap *heap;
static slot slots[SLOTS];
static uint64_t seed;
static unsigned rounds;
static atomic_ulong refusals, allocations;

static void fill(unsigned char *p, size_t size) { pattern_fill(p, size, ENDS, (uintptr_t)p); }

static void verify(const unsigned char *p, size_t size) {
  if (pattern_find(p, size, ENDS, (uintptr_t)p) == SIZE_MAX) return;
  fprintf(stderr, "stress_medium: block %p of %zu bytes was overwritten (seed %llu)\n", (const void *)p, size,
          (unsigned long long)seed);
  abort();
}

static size_t pick_size(uint64_t *s) { return 14 * 1024 + 1 + seed_next_r(s) % (MiB - 14 * 1024); }

static void *worker(void *arg) {
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + (uintptr_t)arg + 1;
  for (unsigned r = 0; r < rounds; r++) {
    if (seed_next_r(&s) % 4096 == 0) pinheap_trim(heap);
    slot *sl = &slots[seed_next_r(&s) % SLOTS];
    pthread_mutex_lock(&sl->lock);
    if (sl->p) {
      verify(sl->p, sl->size);
      if (seed_next_r(&s) % 8 == 0) {
        size_t size = pick_size(&s);
        unsigned char *q = pinheap_realloc(heap, sl->p, size);
        if (q) {
          if (pattern_find(q, 1, 1, (uintptr_t)sl->p) != SIZE_MAX) {
            fprintf(stderr, "stress_medium: realloc lost content (seed %llu)\n", (unsigned long long)seed);
            abort();
          }
          sl->p = q;
          sl->size = size;
          fill(q, size);
        } else {
          atomic_fetch_add(&refusals, 1);
        }
      } else {
        pinheap_free(heap, sl->p);
        sl->p = NULL;
      }
    } else {
      size_t size = pick_size(&s);
      unsigned char *p = seed_next_r(&s) % 8 ? pinheap_malloc(heap, size)
                                          : pinheap_aligned_alloc(heap, (size_t)4096 << (seed_next_r(&s) % 6), size);
      if (p) {
        fill(p, size);
        sl->p = p;
        sl->size = size;
        atomic_fetch_add(&allocations, 1);
      } else {
        atomic_fetch_add(&refusals, 1);
      }
    }
    pthread_mutex_unlock(&sl->lock);
  }
  return NULL;
}

int main(int argc, char **argv) {
  seed = seed_init(argc, argv, "stress_medium");
  unsigned threads = argc > 2 ? (unsigned)atoi(argv[2]) : 4;
  rounds = argc > 3 ? (unsigned)atoi(argv[3]) : 100000;
  /* 64: half the slots full, of 0.5 MiB on average: 48 MiB, and the caches */
  unsigned region = argc > 4 ? (unsigned)atoi(argv[4]) : 64;
  if (threads < 1 || threads > 64) threads = 4;
  if (region < 64 || region > 4096) region = 64;
  printf("stress_medium: %u threads, %u rounds each, %u MiB (rerun: stress_medium %llu %u %u %u)\n", threads, rounds,
         region, (unsigned long long)seed, threads, rounds, region);
  pinheap_options o;
  pinheap_options_init(&o);
  o.mode = PINHEAP_FIXED;
  o.size = region * MiB;
  o.arenas = 1;
  heap = pinheap_create(&o);
  if (!heap) {
    fprintf(stderr, "stress_medium: %s\n", pinheap_last_error());
    return 1;
  }
  for (int i = 0; i < SLOTS; i++) pthread_mutex_init(&slots[i].lock, NULL);
  pthread_t t[64];
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
  printf("stress_medium: %lu allocations, %lu refused for room; after trim: %zu free extent(s), largest %zu of %zu "
         "bytes\n",
         atomic_load(&allocations), atomic_load(&refusals), st.free_extents, st.largest_free, st.capacity);
  /* One arena: its first grant of 2 MiB at the top, the rest one extent. */
  bool ok = broken == 0 && st.allocated == 0 && st.free_extents <= 2 && st.largest_free + 2 * MiB >= st.capacity;
  pinheap_destroy(heap);
  printf("%s\n", ok ? "1 passed, 0 failed" : "0 passed, 1 failed");
  return ok ? 0 : 1;
}
