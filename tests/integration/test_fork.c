/*
 * fork() in a threaded program: threads allocate, reallocate and free blocks
 * of every size in a FIXED, a DYNAMIC and a SIMPLE heap at once, trim them,
 * read their stats and look blocks up, and short-lived threads come and go,
 * while the main thread forks again and again. Each child must find every
 * heap usable and consistent: it allocates and frees blocks of every size in
 * each, finds the parent's blocks intact, runs pinheap_check before and
 * after, keeps only its own thread's cache, creates and destroys a heap of
 * its own, and exits 0. A child that does not finish within CHILD_SECONDS
 * (a lock left held by a thread that did not survive the fork) is killed and
 * counted as hung. After the forks, the parent's heaps must pass
 * pinheap_check too. The heaps are far larger than what is live, so no
 * allocation may fail, in the parent or in a child.
 *
 *   test_fork [seed] [forks]   (seed 0: from the clock; 60 forks by default)
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "children.h"
#include "pattern.h"
#include "pinheap.h"
#include "seed.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)
#define NHEAPS 3
#define WORKERS 3
#define SLOTS 48          /* per worker and heap */
#define SHARED 64         /* blocks any worker may free, per heap */
#define ANCHORS 12        /* the main thread's blocks, checked in each child */
#define EDGE 64           /* bytes of pattern at each end of a block */
#define CHILD_SECONDS 10

typedef struct block {
  unsigned char *p;
  size_t size;
} block;

typedef struct shared_slot {
  pthread_mutex_t lock;
  block b;
} shared_slot;

static const char *const heap_names[NHEAPS] = {"fixed", "dynamic", "simple"};
static const pinheap_mode heap_modes[NHEAPS] = {PINHEAP_FIXED, PINHEAP_DYNAMIC, PINHEAP_SIMPLE};
static pinheap *heaps[NHEAPS];
static shared_slot shared[NHEAPS][SHARED];
static block anchors[NHEAPS][ANCHORS];
static unsigned long long seed;
static atomic_int stop;
static atomic_int quiet; /* while a child runs, so that it has the processors */
static atomic_ulong operations, refused;

/* Writes the pattern over the first and last EDGE bytes of the block. */
static void fill(block b) { pattern_fill(b.p, b.size, EDGE, (uintptr_t)b.p); }

static bool intact(block b) { return pattern_find(b.p, b.size, EDGE, (uintptr_t)b.p) == SIZE_MAX; }

static void overwritten(int heap, block b) {
  fprintf(stderr, "test_fork: %s heap: block %p of %zu bytes was overwritten (seed %llu)\n", heap_names[heap],
          (void *)b.p, b.size, seed);
  abort();
}

/* Sizes of every path: small objects, the thread caches' extents, extents
 * from the manager, and (DYNAMIC, from 1 MiB) direct blocks. */
static size_t pick_size(uint64_t *s) {
  uint64_t r = seed_next_r(s) % 100;
  if (r < 55) return 1 + seed_next_r(s) % (14 * KiB);
  if (r < 80) return 14 * KiB + seed_next_r(s) % (50 * KiB);
  if (r < 95) return 64 * KiB + seed_next_r(s) % MiB;
  return MiB + seed_next_r(s) % (2 * MiB);
}

/* A new block of the heap, filled; the block's p is NULL when refused. */
static block take(int heap, uint64_t *s) {
  block b = {NULL, pick_size(s)};
  switch (seed_next_r(s) % 4) {
    case 0:
      b.p = pinheap_calloc(heaps[heap], 1, b.size);
      break;
    case 1:
      b.p = pinheap_aligned_alloc(heaps[heap], (size_t)16 << (seed_next_r(s) % 12), b.size);
      break;
    default:
      b.p = pinheap_malloc(heaps[heap], b.size);
  }
  if (b.p)
    fill(b);
  else
    atomic_fetch_add(&refused, 1);
  return b;
}

/* Frees the block, or reallocates it and keeps the result in *b. */
static void drop(int heap, block *b, uint64_t *s) {
  if (!intact(*b)) overwritten(heap, *b);
  if (seed_next_r(s) % 4 == 0) {
    size_t size = pick_size(s);
    unsigned char *q = pinheap_realloc(heaps[heap], b->p, size);
    if (q) {
      size_t keep = size < b->size ? size : b->size, head = keep < EDGE ? keep : EDGE;
      if (pattern_find(q, head, head, (uintptr_t)b->p) != SIZE_MAX) overwritten(heap, *b);
      *b = (block){q, size};
      fill(*b);
      return;
    }
    atomic_fetch_add(&refused, 1);
  }
  pinheap_free(heaps[heap], b->p);
  b->p = NULL;
}

/* Sleeps while a child runs. */
static void hush(void) {
  struct timespec ts = {0, 100000};
  while (atomic_load(&quiet) && !atomic_load(&stop)) nanosleep(&ts, NULL);
}

static void *worker(void *arg) {
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + (uintptr_t)arg + 1;
  block own[NHEAPS][SLOTS] = {{{0}}};
  while (!atomic_load(&stop)) {
    hush();
    int heap = (int)(seed_next_r(&s) % NHEAPS);
    block *b;
    shared_slot *sh = NULL;
    if (seed_next_r(&s) % 4 == 0) {
      sh = &shared[heap][seed_next_r(&s) % SHARED];
      pthread_mutex_lock(&sh->lock);
      b = &sh->b;
    } else {
      b = &own[heap][seed_next_r(&s) % SLOTS];
    }
    if (b->p)
      drop(heap, b, &s);
    else
      *b = take(heap, &s);
    if (sh) pthread_mutex_unlock(&sh->lock);
    atomic_fetch_add(&operations, 1);
  }
  for (int h = 0; h < NHEAPS; h++)
    for (int i = 0; i < SLOTS; i++)
      if (own[h][i].p) {
        if (!intact(own[h][i])) overwritten(h, own[h][i]);
        pinheap_free(heaps[h], own[h][i].p);
      }
  return NULL;
}

/* Trims, reads stats and looks blocks up while the others allocate: the
 * heaps' reclaim and their lookups under locks. */
static void *janitor(void *arg) {
  (void)arg;
  uint64_t s = seed + 7;
  while (!atomic_load(&stop)) {
    hush();
    int heap = (int)(seed_next_r(&s) % NHEAPS);
    pinheap_stats st;
    if (pinheap_get_stats(heaps[heap], &st) != 0) {
      fprintf(stderr, "test_fork: pinheap_get_stats: %s\n", pinheap_last_error());
      abort();
    }
    const block *a = &anchors[heap][seed_next_r(&s) % ANCHORS];
    pinheap_region r;
    if (!pinheap_owns(heaps[heap], a->p) || pinheap_usable_size(heaps[heap], a->p) < a->size ||
        (heap != 2 && pinheap_region_of(heaps[heap], a->p, &r) != 0)) {
      fprintf(stderr, "test_fork: %s heap: lookups of block %p failed\n", heap_names[heap], (void *)a->p);
      abort();
    }
    if (seed_next_r(&s) % 16 == 0) pinheap_trim(heaps[heap]);
    struct timespec ts = {0, 200000};
    nanosleep(&ts, NULL);
  }
  return NULL;
}

static void *brief(void *arg) {
  uint64_t s = (uintptr_t)arg;
  for (int heap = 0; heap < NHEAPS; heap++) {
    block b = take(heap, &s);
    if (b.p) pinheap_free(heaps[heap], b.p);
  }
  return NULL;
}

/* Starts and joins short-lived threads: their caches go back to the heaps
 * as they exit. */
static void *spawner(void *arg) {
  (void)arg;
  for (uintptr_t n = 1; !atomic_load(&stop); n++) {
    hush();
    pthread_t t;
    if (pthread_create(&t, NULL, brief, (void *)(seed + n)) == 0) pthread_join(t, NULL);
  }
  return NULL;
}

static pinheap *create(pinheap_mode mode) {
  pinheap_options o;
  pinheap_options_init(&o);
  o.mode = mode;
  o.arenas = 2;
  if (mode == PINHEAP_FIXED) o.size = 512 * MiB;
  if (mode == PINHEAP_DYNAMIC) {
    o.size = 1024 * MiB;
    o.chunk_size = 8 * MiB;
    o.direct_threshold = MiB;
  }
  return pinheap_create(&o);
}

/* In the child: one heap of the parent, used by the only thread left. 0, or
 * the number of failures. */
static int child_uses(int heap, uint64_t *s) {
  pinheap *h = heaps[heap];
  int failed = 0;
  int broken = pinheap_check(h);
  if (broken != 0) {
    fprintf(stderr, "test_fork: child: %s heap: pinheap_check found %d broken invariants at start\n",
            heap_names[heap], broken);
    failed++;
  }
  /* The caches of the threads that did not survive the fork are gone. */
  size_t caches = thread_count(&h->core.threads);
  if (caches != 1) {
    fprintf(stderr, "test_fork: child: %s heap: %zu thread caches, the forking thread's only expected\n",
            heap_names[heap], caches);
    failed++;
  }
  for (int i = 0; i < ANCHORS; i++)
    if (!intact(anchors[heap][i])) overwritten(heap, anchors[heap][i]);
  static const size_t sizes[] = {1, 8, 100, 1000, 4096, 14 * KiB, 14 * KiB + 1, 40 * KiB, 64 * KiB + 1, 300 * KiB,
                                 MiB - 1, MiB, 3 * MiB};
  block got[sizeof sizes / sizeof *sizes];
  for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
    got[i] = (block){pinheap_malloc(h, sizes[i]), sizes[i]};
    if (!got[i].p) {
      fprintf(stderr, "test_fork: child: %s heap: malloc(%zu): %s\n", heap_names[heap], sizes[i], pinheap_last_error());
      failed++;
      continue;
    }
    fill(got[i]);
  }
  for (int i = 0; i < 200; i++) {
    block b = take(heap, s);
    if (b.p) drop(heap, &b, s);
    if (b.p) pinheap_free(h, b.p);
  }
  for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
    if (!got[i].p) continue;
    if (!intact(got[i])) overwritten(heap, got[i]);
    pinheap_free(h, got[i].p);
  }
  pinheap_trim(h);
  broken = pinheap_check(h);
  if (broken != 0) {
    fprintf(stderr, "test_fork: child: %s heap: pinheap_check found %d broken invariants at the end\n",
            heap_names[heap], broken);
    failed++;
  }
  return failed;
}

static _Noreturn void child(int n) {
  int round = n - 1;
  uint64_t s = seed * 31 + (uint64_t)round;
  int failed = 0;
  unsigned long refused_before = atomic_load(&refused);
  for (int heap = 0; heap < NHEAPS; heap++) failed += child_uses(heap, &s);
  if (atomic_load(&refused) != refused_before) {
    fprintf(stderr, "test_fork: child: %lu allocations failed\n", atomic_load(&refused) - refused_before);
    failed++;
  }
  pinheap *h = create(heap_modes[round % NHEAPS]);
  if (!h) {
    fprintf(stderr, "test_fork: child: pinheap_create: %s\n", pinheap_last_error());
    _exit(1);
  }
  void *p = pinheap_malloc(h, 100), *q = pinheap_malloc(h, 100 * KiB);
  if (!p || !q || pinheap_check(h) != 0) failed++;
  pinheap_free(h, p);
  pinheap_free(h, q);
  pinheap_destroy(h);
  _exit(failed ? 1 : 0);
}

/* Waits for a child while the threads sleep (hush). */
static int wait_quietly(pid_t pid, int seconds, int n) {
  (void)n;
  atomic_store(&quiet, 1);
  int status = children_wait(pid, seconds);
  atomic_store(&quiet, 0);
  return status;
}

int main(int argc, char **argv) {
  seed = seed_init(argc, argv, "test_fork");
  int forks = argc > 2 ? atoi(argv[2]) : 60;
  for (int h = 0; h < NHEAPS; h++) {
    heaps[h] = create(heap_modes[h]);
    if (!heaps[h]) {
      fprintf(stderr, "test_fork: pinheap_create(%s): %s\n", heap_names[h], pinheap_last_error());
      return 1;
    }
    for (int i = 0; i < SHARED; i++) pthread_mutex_init(&shared[h][i].lock, NULL);
    uint64_t s = seed + (uint64_t)h;
    for (int i = 0; i < ANCHORS; i++) {
      do anchors[h][i] = take(h, &s);
      while (!anchors[h][i].p);
    }
  }
  pthread_t t[WORKERS + 2];
  for (uintptr_t i = 0; i < WORKERS; i++) pthread_create(&t[i], NULL, worker, (void *)i);
  pthread_create(&t[WORKERS], NULL, janitor, NULL);
  pthread_create(&t[WORKERS + 1], NULL, spawner, NULL);
  children ends = children_fork_each(&(children_plan){.test = "test_fork", .forks = forks, .seconds = CHILD_SECONDS,
                                                      .seed = seed, .pause = {500, 4500, 1000}, .child = child,
                                                      .wait = wait_quietly});
  atomic_store(&stop, 1);
  for (int i = 0; i < WORKERS + 2; i++) pthread_join(t[i], NULL);
  int broken = 0;
  for (int h = 0; h < NHEAPS; h++) {
    broken += pinheap_check(heaps[h]);
    for (int i = 0; i < SHARED; i++)
      if (shared[h][i].b.p) pinheap_free(heaps[h], shared[h][i].b.p);
    for (int i = 0; i < ANCHORS; i++) {
      if (!intact(anchors[h][i])) overwritten(h, anchors[h][i]);
      pinheap_free(heaps[h], anchors[h][i].p);
    }
    pinheap_trim(heaps[h]);
    broken += pinheap_check(heaps[h]);
    pinheap_stats st;
    pinheap_get_stats(heaps[h], &st);
    if (st.allocated != 0) {
      fprintf(stderr, "test_fork: %s heap: %zu bytes still allocated after every block was freed\n", heap_names[h],
              st.allocated);
      broken++;
    }
    pinheap_destroy(heaps[h]);
  }
  printf("test_fork: %d of %d children finished, %d hung, %d failed; %lu operations in the parent (%lu refused); "
         "%d broken invariants in the parent\n",
         ends.finished, forks, ends.hung, ends.failed, atomic_load(&operations), atomic_load(&refused), broken);
  return ends.finished == forks && broken == 0 && atomic_load(&refused) == 0 ? 0 : 1;
}
