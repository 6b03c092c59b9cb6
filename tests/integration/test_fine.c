/*
 * Integration tests of the fine path (fine.h): requests of 1025 B to 2 KiB
 * in 16 classes 64 B apart, of 10241 B to 14 KiB in 2 (12, 14 KiB), from
 * slabs of their own.
 *
 * - every size from 1025 to 2048 bytes is rounded up by less than the
 *   class step (64 B): 1100 bytes give at most 1152 (jemalloc: 1280);
 *   every size from 2049 B to 14 KiB to its class: jemalloc's up to 10 KiB
 *   (2100 bytes give 2560, 5000 give 5120), then the fine path's, 2 KiB
 *   apart as jemalloc's;
 * - a FIXED heap filled with objects of 1100 B, 12000 B or 14000 B to
 *   ENOMEM holds at least 95 % of its free bytes in them (1152-byte slots
 *   in slabs of 9 pages, 12288 in 6 pages, 14336 in 7, none with a tail);
 *   freed by a thread that then exits, the emptied slabs are back in the
 *   extent manager at once (but one spare; jemalloc's wait a second), and
 *   after a trim the largest free extent is what it was;
 * - random mallocs, callocs, reallocs and frees over two threads, contents
 *   checked, with pinheap_check and pinheap_walk (fine slabs report their
 *   object size) every few hundred operations (seed printed, taken as
 *   argv[1]); in DYNAMIC, and in FIXED with every debugging aid (which
 *   leaves these sizes to jemalloc);
 * - a second free, and a free inside an object, abort naming the pointer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "child.h"
#include "heaps.h"
#include "pinheap.h"
#include "seed.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

static void test_usable_sizes(void **state) {
  (void)state;
  pinheap *h = heaps_open(PINHEAP_FIXED, 64 * MiB, 1, 0);
  void *p = pinheap_malloc(h, 1100);
  assert_non_null(p);
  size_t u1100 = pinheap_usable_size(h, p);
  printf("test_fine: usable size of a 1100-byte block: %zu\n", u1100);
  pinheap_free(h, p);
  assert_in_range(u1100, 1100, 1152);
  size_t worst = 0;
  for (size_t n = 1025; n <= 2048; n++) {
    assert_non_null(p = pinheap_malloc(h, n));
    size_t u = pinheap_usable_size(h, p), step = 64;
    if (u < n || u - n >= step) fail_msg("%zu bytes: usable %zu, should be below %zu + %zu", n, u, n, step);
    if ((u - n) * 1000 / n > worst) worst = (u - n) * 1000 / n;
    memset(p, 0xA5, u);
    pinheap_free(h, p);
  }
  printf("test_fine: 1025-2048 bytes rounded up by at most %zu.%zu %%\n", worst / 10, worst % 10);
  size_t u2100 = 0, u5000 = 0;
  for (size_t n = 2049; n <= 14 * KiB; n++) {
    /* Four classes per doubling: jemalloc's up to 10 KiB, then the fine
     * path's 12 and 14 KiB. */
    size_t step = (size_t)1 << (63 - __builtin_clzll(n - 1)) >> 2;
    size_t want = (n + step - 1) / step * step;
    if (want > 14 * KiB) want = 14 * KiB;
    assert_non_null(p = pinheap_malloc(h, n));
    size_t u = pinheap_usable_size(h, p);
    if (u != want) fail_msg("%zu bytes: usable %zu, should be %zu", n, u, want);
    if (n == 2100) u2100 = u;
    if (n == 5000) u5000 = u;
    memset(p, 0xA5, u);
    pinheap_free(h, p);
  }
  printf("test_fine: usable size of a 2100-byte block: %zu, of a 5000-byte block: %zu\n", u2100, u5000);
  assert_int_equal(pinheap_check(h), 0);
  pinheap_destroy(h);
}

typedef struct filler {
  pinheap *h;
  size_t size, count, cap;
  void **p;
} filler;

/* Fills the heap with objects of x->size to ENOMEM, then frees them all;
 * the thread exits with its cache drained. */
static void *fill_and_free(void *arg) {
  filler *x = arg;
  void *q;
  while (x->count < x->cap && (q = pinheap_malloc(x->h, x->size)) != NULL) x->p[x->count++] = q;
  for (size_t i = 0; i < x->count; i++) pinheap_free(x->h, x->p[i]);
  return NULL;
}

/* Fills a heap with objects of size bytes to ENOMEM from a thread that
 * frees them and exits. */
static void fill_to_enomem(size_t size) {
  pinheap *h = heaps_open(PINHEAP_FIXED, 32 * MiB, 1, 0);
  pinheap_stats s0, s1, s2;
  assert_int_equal(pinheap_get_stats(h, &s0), 0);
  filler x = {h, size, 0, 64 * MiB / size, NULL};
  assert_non_null(x.p = calloc(x.cap, sizeof *x.p));
  pthread_t id;
  assert_int_equal(pthread_create(&id, NULL, fill_and_free, &x), 0);
  assert_int_equal(pthread_join(id, NULL), 0);
  assert_int_equal(pinheap_get_stats(h, &s1), 0);
  assert_int_equal(pinheap_check(h), 0);
  pinheap_trim(h);
  assert_int_equal(pinheap_get_stats(h, &s2), 0);
  printf("test_fine: %zu blocks of %zu B filled %.1f %% of %zu KiB free; freed by an exited thread: %zu KiB free "
         "(%zu KiB at start), largest %zu KiB; after a trim %zu KiB (%zu KiB at start)\n",
         x.count, x.size, 100.0 * (double)(x.count * x.size) / (double)s0.free_bytes, s0.free_bytes / KiB,
         s1.free_bytes / KiB, s0.free_bytes / KiB, s1.largest_free / KiB, s2.largest_free / KiB,
         s0.largest_free / KiB);
  assert_true(x.count < x.cap);
  /* Slots at most 5 % larger (1100 B in 1152), slabs without a tail. */
  assert_true(x.count * x.size >= s0.free_bytes / 1000 * 950);
  /* The emptied slabs went back as they emptied, but the class's spare. */
  assert_true(s1.free_bytes + 64 * KiB >= s0.free_bytes);
  assert_int_equal(s2.largest_free, s0.largest_free);
  assert_int_equal(s2.allocated, 0);
  free(x.p);
  pinheap_destroy(h);
}

static void test_fill_to_enomem(void **state) {
  (void)state;
  fill_to_enomem(1100);
  fill_to_enomem(12000);
  fill_to_enomem(14000);
}

#define SLOTS 512

typedef struct worker {
  pinheap *h;
  uint64_t rng;
  void *p[SLOTS];
  size_t n[SLOTS];
  unsigned char tag[SLOTS];
  unsigned ops;
} worker;

static size_t random_size(uint64_t *rng) {
  uint64_t r = seed_next_r(rng);
  switch (r % 8) {
  case 0: return 1 + (r >> 8) % 1024;
  case 1: return 2049 + (r >> 8) % (14 * KiB - 2048);
  case 2: return 14 * KiB + 1 + (r >> 8) % 4096;
  default: return 1025 + (r >> 8) % 1024;
  }
}

static void check_contents(const worker *w, unsigned i) {
  const unsigned char *c = w->p[i];
  for (size_t k = 0; k < w->n[i]; k++)
    if (c[k] != w->tag[i]) fail_msg("block %p of %zu bytes: byte %zu changed", w->p[i], w->n[i], k);
}

static void *churn(void *arg) {
  worker *w = arg;
  for (unsigned op = 0; op < w->ops; op++) {
    unsigned i = (unsigned)(seed_next_r(&w->rng) % SLOTS);
    if (w->p[i]) check_contents(w, i);
    size_t n = random_size(&w->rng);
    switch (seed_next_r(&w->rng) % 4) {
    case 0:
      pinheap_free(w->h, w->p[i]);
      w->p[i] = NULL;
      continue;
    case 1:
      if (w->p[i]) {
        void *q = pinheap_realloc(w->h, w->p[i], n);
        assert_non_null(q);
        w->p[i] = q;
        size_t keep = w->n[i] < n ? w->n[i] : n;
        w->n[i] = keep;
        check_contents(w, i);
        break;
      }
      /* fall through */
    case 2:
      pinheap_free(w->h, w->p[i]);
      assert_non_null(w->p[i] = pinheap_calloc(w->h, 1, n));
      for (size_t k = 0; k < n; k++) assert_int_equal(((unsigned char *)w->p[i])[k], 0);
      break;
    default:
      pinheap_free(w->h, w->p[i]);
      assert_non_null(w->p[i] = pinheap_malloc(w->h, n));
    }
    assert_true(pinheap_usable_size(w->h, w->p[i]) >= n);
    w->n[i] = n;
    w->tag[i] = (unsigned char)(seed_next_r(&w->rng) | 1);
    memset(w->p[i], w->tag[i], n);
  }
  return NULL;
}

typedef struct slabs_seen {
  size_t fine, bytes;
} slabs_seen;

static int see_slab(const pinheap_extent *e, void *arg) {
  slabs_seen *s = arg;
  s->bytes += e->size;
  /* Sizes only the fine path has: a multiple of 64, not of 256. */
  if (e->kind == PINHEAP_EXTENT_SLAB && e->object_size > 1024 && e->object_size <= 2048 && e->object_size % 256)
    s->fine++;
  return 0;
}

static void run_random(pinheap_mode mode, unsigned debug) {
  pinheap *h = heaps_open(mode, 64 * MiB, 1, debug);
  worker w[2] = {{.h = h, .rng = seed_next() | 1, .ops = 300}, {.h = h, .rng = seed_next() | 1, .ops = 300}};
  for (unsigned round = 0; round < 10; round++) {
    pthread_t id;
    assert_int_equal(pthread_create(&id, NULL, churn, &w[1]), 0);
    churn(&w[0]);
    assert_int_equal(pthread_join(id, NULL), 0);
    assert_int_equal(pinheap_check(h), 0);
    slabs_seen seen = {0, 0};
    assert_int_equal(pinheap_walk(h, see_slab, &seen), 0);
    pinheap_stats s;
    assert_int_equal(pinheap_get_stats(h, &s), 0);
    assert_int_equal(seen.bytes, s.capacity);
    /* The debugging aids' layer leaves these sizes to jemalloc. */
    if (debug)
      assert_int_equal(seen.fine, 0);
    else
      assert_true(seen.fine > 0);
    /* The other thread's blocks, freed here, and back. */
    for (unsigned i = 0; i < SLOTS; i += 2) {
      pinheap_free(h, w[1].p[i]);
      w[1].p[i] = NULL;
    }
  }
  for (unsigned t = 0; t < 2; t++)
    for (unsigned i = 0; i < SLOTS; i++) pinheap_free(h, w[t].p[i]);
  pinheap_trim(h);
  pinheap_stats s;
  assert_int_equal(pinheap_get_stats(h, &s), 0);
  assert_int_equal(s.allocated, 0);
  assert_int_equal(pinheap_check(h), 0);
  pinheap_destroy(h);
}

static void test_random_fixed(void **state) {
  (void)state;
  run_random(PINHEAP_FIXED, 0);
}

static void test_random_dynamic(void **state) {
  (void)state;
  run_random(PINHEAP_DYNAMIC, 0);
}

static void test_random_debug(void **state) {
  (void)state;
  run_random(PINHEAP_FIXED, PINHEAP_DEBUG_ALL);
}

static void free_twice(void *arg) {
  pinheap *h = arg;
  void *p = pinheap_malloc(h, 1100);
  pinheap_free(h, p);
  pinheap_free(h, p);
}

static void free_inside(void *arg) {
  pinheap *h = arg;
  char *p = pinheap_malloc(h, 1100);
  pinheap_free(h, p + 64);
}

static void test_bad_frees(void **state) {
  (void)state;
  pinheap *h = heaps_open(PINHEAP_FIXED, 64 * MiB, 1, 0);
  child_result r;
  child_run(free_twice, h, &r);
  assert_true(WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGABRT);
  assert_non_null(strstr(r.err, "double free"));
  child_run(free_inside, h, &r);
  assert_true(WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGABRT);
  assert_non_null(strstr(r.err, "inside a block"));
  pinheap_destroy(h);
}

int main(int argc, char **argv) {
  seed_init(argc, argv, "test_fine");
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_usable_sizes),   cmocka_unit_test(test_fill_to_enomem), cmocka_unit_test(test_random_fixed),
      cmocka_unit_test(test_random_dynamic), cmocka_unit_test(test_random_debug),   cmocka_unit_test(test_bad_frees),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
