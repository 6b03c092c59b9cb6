/*
 * Soak: for a given time, several threads allocate blocks of every size
 * (small, medium, large and, in a DYNAMIC heap, direct), by malloc, calloc
 * (checked zero) and aligned_alloc, reallocate them, fill their ends with a
 * pattern and check it before every realloc and free, and hand blocks to
 * each other through queues, so that most frees happen in another thread
 * than the malloc. About every half second the main thread stops them all
 * at a barrier and runs pinheap_check (exact only while nobody allocates),
 * and sometimes pinheap_trim. At the end every block is freed: nothing may
 * stay allocated.
 *
 *   soak [seed] [seconds] [fixed|dynamic] [threads] [debug]
 *
 * seed 0 (the default): from the clock. Defaults: 10 seconds, fixed, 4
 * threads; "debug" turns every debugging aid on (PINHEAP_DEBUG_ALL).
 *
 * Memory: live blocks are bounded (SOAK_SLOTS per thread, sizes mostly
 * small); patterns touch at most 2 x SOAK_PATTERN bytes of a block, calloc
 * all of it: well under 1 GiB committed.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pattern.h"
#include "pinheap.h"
#include "seed.h"

#define MiB ((size_t)1 << 20)
#define SOAK_MAX_THREADS 16
#define SOAK_SLOTS 128
#define SOAK_QUEUE 64
#define SOAK_PATTERN 64

typedef struct block {
  unsigned char *p;
  size_t size;
  uint64_t tag; /* seeds its pattern */
} block;

/* Blocks handed to a thread, which frees them. */
typedef struct queue {
  pthread_mutex_t lock;
  block items[SOAK_QUEUE];
  unsigned count;
} queue;

static pinheap *heap;
static bool dynamic_mode;
static unsigned nthreads;
static queue queues[SOAK_MAX_THREADS];
static atomic_bool stop, pause_asked;
static pthread_barrier_t paused, resumed;
static atomic_ulong ops, handoffs, reallocs, callocs;

static _Noreturn void soak_fail(const char *fmt, const void *p, size_t size) {
  fprintf(stderr, "soak: ");
  fprintf(stderr, fmt, p, size);
  fprintf(stderr, " (seed %llu)\n", (unsigned long long)seed_state);
  abort();
}

/* The pattern at both ends of b (all of it when small). */
static void fill(const block *b) { pattern_fill(b->p, b->size, SOAK_PATTERN, b->tag); }

static void verify(const block *b) {
  if (pattern_find(b->p, b->size, SOAK_PATTERN, b->tag) != SIZE_MAX)
    soak_fail("block %p of %zu bytes was overwritten", b->p, b->size);
  if (!pinheap_owns(heap, b->p)) soak_fail("block %p of %zu bytes is not the heap's", b->p, b->size);
  if (pinheap_usable_size(heap, b->p) < b->size) soak_fail("block %p of %zu bytes has less usable", b->p, b->size);
}

static size_t pick_size(uint64_t *s) {
  uint64_t r = seed_next_r(s) % 1000;
  if (r < 850) return 1 + seed_next_r(s) % (14 << 10);                    /* small */
  if (r < 960) return (14 << 10) + seed_next_r(s) % (1 * MiB);            /* medium: extents */
  if (r < 995) return 1 * MiB + seed_next_r(s) % (5 * MiB);               /* large */
  return 8 * MiB + seed_next_r(s) % (8 * MiB);                            /* DYNAMIC: direct */
}

static void release(block *b) {
  verify(b);
  pinheap_free(heap, b->p);
  b->p = NULL;
}

/* A new block of the heap, or none when it has no room (reported). */
static bool make(block *b, uint64_t *s) {
  b->size = pick_size(s);
  b->tag = seed_next_r(s);
  uint64_t how = seed_next_r(s) % 10;
  if (how == 0) {
    b->p = pinheap_calloc(heap, 1, b->size);
    if (b->p) {
      atomic_fetch_add_explicit(&callocs, 1, memory_order_relaxed);
      for (size_t i = 0; i < b->size; i += i < 4096 || i + 4096 >= b->size ? 1 : 4093)
        if (b->p[i]) soak_fail("calloc'd block %p of %zu bytes is not zero", b->p, b->size);
    }
  } else if (how == 1) {
    size_t align = (size_t)16 << (seed_next_r(s) % 12);
    b->p = pinheap_aligned_alloc(heap, align, b->size);
    if (b->p && ((uintptr_t)b->p & (align - 1))) soak_fail("block %p of %zu bytes is misaligned", b->p, b->size);
  } else {
    b->p = pinheap_malloc(heap, b->size);
  }
  if (!b->p) {
    fprintf(stderr, "soak: no block of %zu bytes: %s\n", b->size, pinheap_last_error());
    return false;
  }
  fill(b);
  return true;
}

static void resize(block *b, uint64_t *s) {
  verify(b);
  size_t size = pick_size(s);
  unsigned char *q = pinheap_realloc(heap, b->p, size);
  if (!q) {
    fprintf(stderr, "soak: realloc to %zu bytes: %s\n", size, pinheap_last_error());
    return;
  }
  size_t keep = size < b->size ? size : b->size, head = keep < SOAK_PATTERN ? keep : SOAK_PATTERN;
  if (pattern_find(q, head, head, b->tag) != SIZE_MAX)
    soak_fail("realloc to %p (%zu bytes) lost the start of the block", q, size);
  b->p = q;
  b->size = size;
  fill(b);
  atomic_fetch_add_explicit(&reallocs, 1, memory_order_relaxed);
}

/* Hands b to thread to; frees it here when that queue is full. */
static void hand_off(block *b, unsigned to) {
  queue *q = &queues[to];
  pthread_mutex_lock(&q->lock);
  bool taken = q->count < SOAK_QUEUE;
  if (taken) q->items[q->count++] = *b;
  pthread_mutex_unlock(&q->lock);
  if (taken) {
    b->p = NULL;
    atomic_fetch_add_explicit(&handoffs, 1, memory_order_relaxed);
  } else {
    release(b);
  }
}

/* Frees what other threads handed to this one. */
static void drain(unsigned self) {
  block got[SOAK_QUEUE];
  queue *q = &queues[self];
  pthread_mutex_lock(&q->lock);
  unsigned n = q->count;
  memcpy(got, q->items, n * sizeof got[0]);
  q->count = 0;
  pthread_mutex_unlock(&q->lock);
  for (unsigned i = 0; i < n; i++) release(&got[i]);
}

static void *worker(void *arg) {
  unsigned self = (unsigned)(uintptr_t)arg;
  uint64_t s = seed_state * 0x9E3779B97F4A7C15ull + self + 1;
  block mine[SOAK_SLOTS] = {{0}};
  while (!atomic_load(&stop)) {
    if (atomic_load(&pause_asked)) {
      pthread_barrier_wait(&paused);
      pthread_barrier_wait(&resumed);
    }
    for (int k = 0; k < 64; k++) {
      block *b = &mine[seed_next_r(&s) % SOAK_SLOTS];
      uint64_t r = seed_next_r(&s) % 8;
      if (!b->p)
        make(b, &s);
      else if (r < 2)
        resize(b, &s);
      else if (r < 5 && nthreads > 1)
        hand_off(b, (self + 1 + (unsigned)(seed_next_r(&s) % (nthreads - 1))) % nthreads);
      else
        release(b);
    }
    drain(self);
    atomic_fetch_add_explicit(&ops, 64, memory_order_relaxed);
  }
  for (int i = 0; i < SOAK_SLOTS; i++)
    if (mine[i].p) release(&mine[i]);
  return NULL;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  seed_init(argc, argv, "soak");
  double seconds = argc > 2 ? atof(argv[2]) : 10;
  dynamic_mode = argc > 3 && strcmp(argv[3], "dynamic") == 0;
  nthreads = argc > 4 ? (unsigned)atoi(argv[4]) : 4;
  bool debug = argc > 5 && strcmp(argv[5], "debug") == 0;
  if (nthreads < 1 || nthreads > SOAK_MAX_THREADS || seconds <= 0) {
    fprintf(stderr, "usage: soak [seed] [seconds] [fixed|dynamic] [threads 1-%d] [debug]\n", SOAK_MAX_THREADS);
    return 2;
  }
  printf("soak: %.0f s, %s heap%s, %u threads\n", seconds, dynamic_mode ? "DYNAMIC" : "FIXED",
         debug ? " with every debugging aid" : "", nthreads);
  pinheap_options o;
  pinheap_options_init(&o);
  if (dynamic_mode) {
    o.mode = PINHEAP_DYNAMIC;
    o.chunk_size = 16 * MiB;
  } else {
    /* Reserved, not committed; room for what the threads keep live. */
    o.size = (size_t)2 << 30;
  }
  o.debug = debug ? PINHEAP_DEBUG_ALL : 0;
  heap = pinheap_create(&o);
  if (!heap) {
    fprintf(stderr, "soak: pinheap_create: %s\n", pinheap_last_error());
    return 1;
  }
  pthread_barrier_init(&paused, NULL, nthreads + 1);
  pthread_barrier_init(&resumed, NULL, nthreads + 1);
  pthread_t t[SOAK_MAX_THREADS];
  for (unsigned i = 0; i < nthreads; i++) pthread_mutex_init(&queues[i].lock, NULL);
  for (unsigned i = 0; i < nthreads; i++) pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)i);
  double start = now(), end = start + seconds;
  int broken = 0;
  unsigned checks = 0;
  while (now() < end && !broken) {
    usleep(500000);
    atomic_store(&pause_asked, true);
    pthread_barrier_wait(&paused);
    atomic_store(&pause_asked, false);
    broken = pinheap_check(heap);
    if (++checks % 4 == 0) pinheap_trim(heap);
    pthread_barrier_wait(&resumed);
  }
  atomic_store(&stop, true);
  for (unsigned i = 0; i < nthreads; i++) pthread_join(t[i], NULL);
  for (unsigned i = 0; i < nthreads; i++) drain(i);
  pinheap_trim(heap);
  broken += pinheap_check(heap);
  pinheap_stats st;
  pinheap_get_stats(heap, &st);
  printf("soak: %.1f s: %lu operations, %lu handed to another thread, %lu reallocs, %lu callocs; %u checks; "
         "peak in use %zu bytes; after freeing everything: %zu bytes allocated in %zu large blocks\n",
         now() - start, atomic_load(&ops), atomic_load(&handoffs), atomic_load(&reallocs), atomic_load(&callocs),
         checks, st.peak_in_use, st.allocated, st.large_blocks);
  bool ok = broken == 0 && st.allocated == 0 && st.large_blocks == 0;
  pinheap_destroy(heap);
  printf("%s\n", ok ? "1 passed, 0 failed" : "0 passed, 1 failed");
  return ok ? 0 : 1;
}
