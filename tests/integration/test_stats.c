/*
 * pinheap_get_stats's allocated: the sum of pinheap_usable_size over the
 * live blocks, whatever the threads' caches hold, in FIXED, DYNAMIC and
 * SIMPLE heaps. The caches are warmed first (blocks allocated and freed),
 * so that a count of what they hold would show: one live 16 B block; none
 * after malloc/free pairs; a mix of sizes on every path (jemalloc's bins,
 * the fine path, mid-size and large extents, DYNAMIC's direct blocks);
 * and several threads, each freeing half of another's blocks, read while
 * every thread is alive and holds its cache, and again after they exit.
 * Each figure is printed beside the one expected. Meanwhile one more
 * thread reads the stats without pause: a figure read while threads
 * allocate and free may be off by what they move, but never wraps below
 * 0 (under ThreadSanitizer: no data race).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "heaps.h"
#include "pinheap.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)
#define PAIRS 6
#define PER_SIZE 8
#define MAX_THREADS 4

static const size_t sizes[] = {16, 1536, 8 * KiB, 100 * KiB, 2 * MiB};
#define NSIZES (sizeof sizes / sizeof sizes[0])
#define BLOCKS (NSIZES * PER_SIZE)

static const char *mode_name(pinheap_mode m) {
  return m == PINHEAP_FIXED ? "FIXED" : m == PINHEAP_DYNAMIC ? "DYNAMIC" : "SIMPLE";
}

static pinheap *open_heap(pinheap_mode m) { return heaps_open(m, m == PINHEAP_FIXED ? 256 * MiB : 0, 2, 0); }

/* Prints allocated beside want; 1 when they differ. */
static int expect(pinheap *h, pinheap_mode m, size_t want, const char *what) {
  pinheap_stats s;
  assert_int_equal(pinheap_get_stats(h, &s), 0);
  printf("%-7s %-44s allocated %9zu, live %9zu%s\n", mode_name(m), what, s.allocated, want,
         s.allocated == want ? "" : "  WRONG");
  fflush(stdout);
  return s.allocated != want;
}

/* Allocates and frees PAIRS blocks of every size, so that the caches hold
 * some of each. */
static void warm(pinheap *h) {
  for (int i = 0; i < PAIRS; i++)
    for (size_t k = 0; k < NSIZES; k++) {
      void *p = pinheap_malloc(h, sizes[k]);
      assert_non_null(p);
      pinheap_free(h, p);
    }
}

static int one_thread(pinheap_mode m) {
  pinheap *h = open_heap(m);
  int wrong = 0;
  for (int i = 0; i < PAIRS; i++) pinheap_free(h, pinheap_malloc(h, 16));
  wrong += expect(h, m, 0, "no block live after 6 pairs of 16 B");
  void *one = pinheap_malloc(h, 16);
  assert_non_null(one);
  wrong += expect(h, m, pinheap_usable_size(h, one), "one live 16 B block");
  pinheap_free(h, one);
  warm(h);
  wrong += expect(h, m, 0, "no block live after pairs of every size");
  void *p[BLOCKS];
  size_t live = 0;
  for (size_t i = 0; i < BLOCKS; i++) {
    p[i] = pinheap_malloc(h, sizes[i % NSIZES]);
    assert_non_null(p[i]);
    memset(p[i], 1, 64);
  }
  for (size_t i = 0; i < BLOCKS; i++) {
    if (i % 3 == 0) {
      pinheap_free(h, p[i]);
      p[i] = NULL;
    } else {
      live += pinheap_usable_size(h, p[i]);
    }
  }
  wrong += expect(h, m, live, "a mix of 16 B - 2 MiB, a third freed");
  for (size_t i = 0; i < BLOCKS; i++) pinheap_free(h, p[i]);
  wrong += expect(h, m, 0, "the mix freed");
  assert_int_equal(pinheap_check(h), 0);
  pinheap_trim(h);
  wrong += expect(h, m, 0, "after pinheap_trim");
  assert_int_equal(pinheap_check(h), 0); /* jemalloc's count, its tcaches empty, against the caches' */
  pinheap_destroy(h);
  return wrong;
}

/* Several threads: each allocates BLOCKS blocks, then frees the even ones
 * of the next thread's (stage 1), then the rest of its own (stage 2); the
 * main thread reads the stats after each stage while they wait (two
 * barriers: the stage is done; the stats are read). */
struct shared {
  pinheap *h;
  unsigned n;
  atomic_bool stop;
  size_t most; /* the most the reader saw */
  pthread_barrier_t bar;
  void *blocks[MAX_THREADS][BLOCKS];
};

struct worker {
  struct shared *sh;
  unsigned i;
};

static void *work(void *arg) {
  struct worker *w = arg;
  struct shared *sh = w->sh;
  warm(sh->h);
  for (size_t k = 0; k < BLOCKS; k++) {
    sh->blocks[w->i][k] = pinheap_malloc(sh->h, sizes[k % NSIZES]);
    assert_non_null(sh->blocks[w->i][k]);
  }
  pthread_barrier_wait(&sh->bar);
  pthread_barrier_wait(&sh->bar); /* the main thread read the stats */
  void **theirs = sh->blocks[(w->i + 1) % sh->n];
  for (size_t k = 0; k < BLOCKS; k += 2) {
    pinheap_free(sh->h, theirs[k]);
    theirs[k] = NULL;
  }
  pthread_barrier_wait(&sh->bar);
  pthread_barrier_wait(&sh->bar); /* the main thread read the stats */
  void **mine = sh->blocks[w->i];
  for (size_t k = 1; k < BLOCKS; k += 2) {
    pinheap_free(sh->h, mine[k]);
    mine[k] = NULL;
  }
  pthread_barrier_wait(&sh->bar);
  pthread_barrier_wait(&sh->bar);
  return NULL;
}

static void *reader(void *arg) {
  struct shared *sh = arg;
  while (!atomic_load(&sh->stop)) {
    pinheap_stats s;
    assert_int_equal(pinheap_get_stats(sh->h, &s), 0);
    if (s.allocated > sh->most) sh->most = s.allocated;
  }
  return NULL;
}

static size_t live_bytes(struct shared *sh) {
  size_t live = 0;
  for (unsigned t = 0; t < sh->n; t++)
    for (size_t k = 0; k < BLOCKS; k++)
      if (sh->blocks[t][k]) live += pinheap_usable_size(sh->h, sh->blocks[t][k]);
  return live;
}

static int threads(pinheap_mode m, unsigned n) {
  static struct shared sh;
  struct worker w[MAX_THREADS];
  pthread_t tid[MAX_THREADS], rd;
  sh.h = open_heap(m);
  sh.n = n;
  atomic_store(&sh.stop, false);
  sh.most = 0;
  assert_int_equal(pthread_create(&rd, NULL, reader, &sh), 0);
  pthread_barrier_init(&sh.bar, NULL, n + 1);
  for (unsigned t = 0; t < n; t++) {
    w[t] = (struct worker){&sh, t};
    assert_int_equal(pthread_create(&tid[t], NULL, work, &w[t]), 0);
  }
  char what[64];
  int wrong = 0;
  pthread_barrier_wait(&sh.bar);
  snprintf(what, sizeof what, "%u threads, each block live", n);
  wrong += expect(sh.h, m, live_bytes(&sh), what);
  pthread_barrier_wait(&sh.bar);
  pthread_barrier_wait(&sh.bar);
  snprintf(what, sizeof what, "%u threads, half freed by another thread", n);
  wrong += expect(sh.h, m, live_bytes(&sh), what);
  pthread_barrier_wait(&sh.bar);
  pthread_barrier_wait(&sh.bar);
  snprintf(what, sizeof what, "%u threads alive, every block freed", n);
  wrong += expect(sh.h, m, 0, what);
  pthread_barrier_wait(&sh.bar);
  for (unsigned t = 0; t < n; t++) pthread_join(tid[t], NULL);
  atomic_store(&sh.stop, true);
  pthread_join(rd, NULL);
  /* Every block live at once, twice over, is far more than what moves. */
  size_t bound = 0;
  for (size_t k = 0; k < NSIZES; k++) bound += 2 * n * PER_SIZE * (sizes[k] + 4096);
  printf("%-7s %u threads: the most a concurrent reader saw %zu, bound %zu\n", mode_name(m), n, sh.most, bound);
  assert_true(sh.most <= bound);
  snprintf(what, sizeof what, "%u threads exited", n);
  wrong += expect(sh.h, m, 0, what);
  assert_int_equal(pinheap_check(sh.h), 0);
  pthread_barrier_destroy(&sh.bar);
  pinheap_destroy(sh.h);
  return wrong;
}

static void run_mode(pinheap_mode m) {
  int wrong = one_thread(m) + threads(m, 2) + threads(m, MAX_THREADS);
  assert_int_equal(wrong, 0);
}

static void test_allocated_counts_live_blocks_fixed(void **state) {
  (void)state;
  run_mode(PINHEAP_FIXED);
}

static void test_allocated_counts_live_blocks_dynamic(void **state) {
  (void)state;
  run_mode(PINHEAP_DYNAMIC);
}

static void test_allocated_counts_live_blocks_simple(void **state) {
  (void)state;
  run_mode(PINHEAP_SIMPLE);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_allocated_counts_live_blocks_fixed),
      cmocka_unit_test(test_allocated_counts_live_blocks_dynamic),
      cmocka_unit_test(test_allocated_counts_live_blocks_simple),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
