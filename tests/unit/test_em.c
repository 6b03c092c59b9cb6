/*
 * Unit tests of the extent manager, with em_check after every operation.
 * The manager never touches the memory it manages, so the regions here are
 * plain numbers: no memory is reserved. test_em.c is longer than 600 lines:
 * one test per placement rule of every policy, and the checker's own tests.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "child.h"
#include "em.h"
#include "placement.h"
#include "seed.h"
#include "util.h"

#define PAGE ((size_t)4096)
#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)
#define BASE ((uintptr_t)1 << 40)
#define AT(off) ((void *)(BASE + (off)))
#define OFF(p) ((uintptr_t)(p)-BASE)

static em *make_ring(em_policy policy, size_t region, size_t small_max, size_t ring_min) {
  static em m;
  assert_int_equal(em_init(&m, policy, PAGE, small_max, ring_min), 0);
  assert_int_equal(em_add_region(&m, AT(0), region, true), 0);
  assert_int_equal(em_check(&m), 0);
  return &m;
}

static em *make(em_policy policy, size_t region, size_t small_max) {
  return make_ring(policy, region, small_max, 0);
}

static void *take(em *m, size_t size) {
  void *p = em_alloc(m, size, PAGE, NULL);
  assert_int_equal(em_check(m), 0);
  return p;
}

static void give(em *m, void *p, size_t size) {
  assert_int_equal(em_free(m, p, size), EM_FREED);
  assert_int_equal(em_check(m), 0);
}

static em_stats stats(em *m) {
  em_stats s;
  em_get_stats(m, &s);
  return s;
}

static void test_coalesce_every_case(void **state) {
  (void)state;
  em *m = make(EM_TWO_ENDED, 100 * MiB, 1 * MiB);
  void *a = take(m, 10 * MiB), *b = take(m, 10 * MiB), *c = take(m, 10 * MiB), *d = take(m, 10 * MiB);
  assert_int_equal(OFF(a), 0); /* large from the bottom, in order */
  assert_int_equal(OFF(b), 10 * MiB);
  assert_int_equal(stats(m).free_extents, 1);
  give(m, b, 10 * MiB); /* no free neighbour: a new extent */
  assert_int_equal(stats(m).free_extents, 2);
  give(m, a, 10 * MiB); /* [ a ][ b ] => one extent */
  assert_int_equal(stats(m).free_extents, 2);
  assert_int_equal(stats(m).largest_free, 60 * MiB);
  give(m, d, 10 * MiB); /* [ d ][ rest ] => one */
  assert_int_equal(stats(m).free_extents, 2);
  give(m, c, 10 * MiB); /* [ a+b ][ c ][ d+rest ] => one */
  em_stats s = stats(m);
  assert_int_equal(s.free_extents, 1);
  assert_int_equal(s.largest_free, 100 * MiB);
  assert_int_equal(s.free_bytes, 100 * MiB);
  assert_int_equal(s.peak_in_use, 40 * MiB);
  em_fini(m);
}

static void test_two_ended_placement(void **state) {
  (void)state;
  em *m = make(EM_TWO_ENDED, 64 * MiB, 1 * MiB);
  void *big = take(m, 8 * MiB);
  void *small = take(m, 64 * KiB);
  void *small2 = take(m, 16 * KiB);
  assert_int_equal(OFF(big), 0);
  assert_int_equal(OFF(small), 64 * MiB - 64 * KiB);
  assert_int_equal(OFF(small2), 64 * MiB - 80 * KiB);
  /* The boundary: small_max itself is small, one page more is large. */
  void *edge = take(m, 1 * MiB);
  void *over = take(m, 1 * MiB + PAGE);
  assert_int_equal(OFF(edge), 64 * MiB - 80 * KiB - 1 * MiB);
  assert_int_equal(OFF(over), 8 * MiB);
  em_fini(m);
}

static void test_best_fit(void **state) {
  (void)state;
  em *m = make(EM_TWO_ENDED, 100 * MiB, 1 * MiB);
  void *blk[6];
  size_t sizes[6] = {5 * MiB, 2 * MiB, 3 * MiB, 2 * MiB, 4 * MiB, 2 * MiB};
  for (int i = 0; i < 6; i++) blk[i] = take(m, sizes[i]);
  /* Holes of 5, 3 and 4 MiB, each between live blocks. */
  give(m, blk[0], sizes[0]);
  give(m, blk[2], sizes[2]);
  give(m, blk[4], sizes[4]);
  void *p = take(m, 3 * MiB + PAGE); /* best fit is the 4 MiB hole */
  assert_ptr_equal(p, blk[4]);
  void *q = take(m, 3 * MiB); /* exactly the 3 MiB hole */
  assert_ptr_equal(q, blk[2]);
  /* Ties between equal holes go to the lowest address for large extents. */
  em_fini(m);
  m = make(EM_TWO_ENDED, 100 * MiB, 1 * MiB);
  void *x[4];
  for (int i = 0; i < 4; i++) x[i] = take(m, 4 * MiB);
  give(m, x[2], 4 * MiB);
  give(m, x[0], 4 * MiB);
  assert_ptr_equal(take(m, 4 * MiB), x[0]);
  em_fini(m);
}

/* The dlmalloc failure: a tiny object placed in a freed large hole blocks
 * the next large request. Small extents must go to the top instead. */
static void test_tiny_in_hole(void **state) {
  (void)state;
  em *m = make(EM_TWO_ENDED, 650 * MiB, 4 * MiB);
  void *big = take(m, 500 * MiB);
  void *tiny = take(m, PAGE);
  give(m, big, 500 * MiB);
  void *tiny2 = take(m, PAGE);
  assert_true(OFF(tiny) > 640 * MiB && OFF(tiny2) > 640 * MiB);
  assert_non_null(take(m, 500 * MiB));
  em_fini(m);
}

/* Small holes are filled best fit before any large free extent is cut; with
 * only large free extents, the highest one is cut, never a hole between
 * large blocks below it. */
static void test_small_prefers_small_holes_then_top(void **state) {
  (void)state;
  em *m = make(EM_TWO_ENDED, 100 * MiB, 1 * MiB);
  void *s[4];
  for (int i = 0; i < 4; i++) s[i] = take(m, 64 * KiB);
  give(m, s[1], 64 * KiB); /* a 64 KiB hole at the top */
  void *a = take(m, 20 * MiB), *b = take(m, 20 * MiB), *c = take(m, 20 * MiB);
  (void)a, (void)c;
  give(m, b, 20 * MiB); /* a 20 MiB hole between arrays */
  assert_ptr_equal(take(m, 32 * KiB), (char *)s[1] + 32 * KiB);
  void *t = take(m, 64 * KiB); /* no small hole fits: the highest large extent */
  assert_true(OFF(t) > 60 * MiB);
  assert_true(OFF(t) < OFF(s[3]));
  assert_int_equal(em_alloc_at(m, b, 20 * MiB, NULL), true); /* the array hole is intact */
  em_fini(m);
}

struct bad_request {
  em *m;
  size_t size, align;
};

static void bad_request_child(void *arg) {
  struct bad_request *b = arg;
  printf("%p\n", em_alloc(b->m, b->size, b->align, NULL));
}

/* A request that breaks em_alloc's preconditions: with assertions (cheap
 * or expensive) it aborts, naming the assertion; without, it is refused. */
static void expect_refused(em *m, size_t size, size_t align) {
#if PINHEAP_ASSERT_LEVEL >= 1
  struct bad_request b = {m, size, align};
  child_result r;
  child_run(bad_request_child, &b, &r);
  if (!child_aborted(&r) || !strstr(r.err, "assertion failed")) fprintf(stderr, "child said: %s\n", r.err);
  assert_true(child_aborted(&r));
  assert_non_null(strstr(r.err, "assertion failed"));
#else
  (void)bad_request_child;
  assert_null(em_alloc(m, size, align, NULL));
#endif
}

static void test_alignment(void **state) {
  (void)state;
  em *m = make(EM_TWO_ENDED, 256 * MiB, 4 * MiB);
  void *skew = take(m, PAGE); /* top, now unaligned */
  void *low = take(m, 5 * MiB);
  for (size_t align = PAGE; align <= 64 * MiB; align <<= 1) {
    void *p = em_alloc(m, 2 * MiB, align, NULL);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % align, 0);
    void *q = em_alloc(m, 8 * MiB, align, NULL);
    assert_non_null(q);
    assert_int_equal((uintptr_t)q % align, 0);
    assert_int_equal(em_check(m), 0);
    give(m, p, 2 * MiB);
    give(m, q, 8 * MiB);
  }
  give(m, skew, PAGE);
  give(m, low, 5 * MiB);
  assert_int_equal(stats(m).free_extents, 1);
  /* Bad requests: not a page multiple, not a power of two, empty. */
  static const size_t bad[][2] = {{PAGE + 1, PAGE}, {PAGE, 3 * PAGE}, {0, PAGE}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) expect_refused(m, bad[i][0], bad[i][1]);
  em_fini(m);
}

/* Occupies exactly [off, off + size) of a fresh manager. */
static void occupy(em *m, uintptr_t off, size_t size) {
  assert_true(em_alloc_at(m, AT(off), size, NULL));
  assert_int_equal(em_check(m), 0);
}

/* em_alloc(size, align) gives off (or fails: off UINTPTR_MAX, and nothing
 * changes); em_check after it, and the extent given back. */
static void expect_aligned(em *m, size_t size, size_t align, uintptr_t off) {
  em_stats before = stats(m);
  void *p = em_alloc(m, size, align, NULL);
  assert_int_equal(em_check(m), 0);
  if (off == UINTPTR_MAX) {
    if (p) fail_msg("em_alloc(%zu, %zu) gave %#lx, expected a failure", size, align, (unsigned long)OFF(p));
    em_stats after = stats(m);
    assert_memory_equal(&before, &after, sizeof before);
    return;
  }
  if (!p) fail_msg("em_alloc(%zu, %zu) failed, expected offset %#lx", size, align, (unsigned long)off);
  if (OFF(p) != off)
    fail_msg("em_alloc(%zu, %zu) gave offset %#lx, expected %#lx", size, align, (unsigned long)OFF(p), (unsigned long)off);
  give(m, p, size);
}

/* An aligned request needs only an aligned piece of its size in some free
 * extent, not size + align - page bytes: every case of the search made when
 * that first search fails. */
static void test_aligned_exact_fit(void **state) {
  (void)state;
  /* A 128 MiB region whose top 8 MiB are taken: the free extent is exactly
   * 120 MiB at an address aligned to anything up to 2^40. */
  em *m = make(EM_TWO_ENDED, 128 * MiB, 4 * MiB);
  occupy(m, 120 * MiB, 8 * MiB);
  for (size_t align = PAGE; align <= 64 * MiB; align <<= 1) expect_aligned(m, 120 * MiB, align, 0);
  expect_aligned(m, 120 * MiB + PAGE, PAGE, UINTPTR_MAX); /* one page too many */
  /* A small request too (at most small_max): from the top of the extent. */
  expect_aligned(m, 4 * MiB, 8 * MiB, 112 * MiB);
  em_fini(m);

  /* The free extent [56 KiB, 56 KiB + 1 MiB + 8 KiB): a 64 KiB-aligned
   * MiB fits at 64 KiB with nothing to spare; a 128 KiB-aligned one does
   * not, nor does one a page longer. */
  m = make(EM_TWO_ENDED, 64 * MiB, 256 * KiB);
  occupy(m, 0, 56 * KiB);
  occupy(m, 64 * KiB + MiB, 64 * MiB - 64 * KiB - MiB);
  expect_aligned(m, MiB, 64 * KiB, 64 * KiB);
  expect_aligned(m, MiB, 128 * KiB, UINTPTR_MAX);
  expect_aligned(m, MiB + PAGE, 64 * KiB, UINTPTR_MAX);
  em_fini(m);

  /* Large requests: among the extents that hold an aligned piece, the
   * smallest; ties, the lowest address; one that does not hold it is
   * skipped however small. Free (offsets): A = [1M+4K, 2M+4K) holds no
   * 1 MiB-aligned MiB; B = [8M, 9M+4K) and C = [16M, 17M+4K), equally long,
   * hold one; D = [24M, 25M+8K) holds one and is longer. */
  m = make(EM_TWO_ENDED, 64 * MiB, 256 * KiB);
  occupy(m, 0, MiB + PAGE);
  occupy(m, 2 * MiB + PAGE, 6 * MiB - PAGE);
  occupy(m, 9 * MiB + PAGE, 7 * MiB - PAGE);
  occupy(m, 17 * MiB + PAGE, 7 * MiB - PAGE);
  occupy(m, 25 * MiB + 2 * PAGE, 39 * MiB - 2 * PAGE);
  assert_int_equal(stats(m).free_extents, 4);
  expect_aligned(m, MiB, MiB, 8 * MiB);              /* B: A skipped, B before C */
  expect_aligned(m, MiB, 2 * MiB, 8 * MiB);          /* the same */
  expect_aligned(m, MiB, 16 * MiB, 16 * MiB);        /* only C starts on 16 MiB */
  expect_aligned(m, MiB + PAGE, MiB, 8 * MiB);       /* B exactly */
  expect_aligned(m, MiB + 2 * PAGE, MiB, 24 * MiB);  /* only D is long enough */
  expect_aligned(m, MiB, 32 * MiB, UINTPTR_MAX);     /* none starts on 32 MiB */
  expect_aligned(m, MiB, (size_t)1 << 62, UINTPTR_MAX);
  expect_aligned(m, ((size_t)1 << 63) + PAGE, (size_t)1 << 63, UINTPTR_MAX); /* size + align overflows */
  em_fini(m);

  /* Small requests (small_max 256 KiB). Free: S1 = [1M, 1M+68K) and S2 =
   * [4M, 4M+68K) (small, equally long), L1 = [8M, 8M+320K) and L2 =
   * [16M, 16M+320K) (large). */
  m = make(EM_TWO_ENDED, 64 * MiB, 256 * KiB);
  occupy(m, 0, MiB);
  occupy(m, MiB + 68 * KiB, 3 * MiB - 68 * KiB);
  occupy(m, 4 * MiB + 68 * KiB, 4 * MiB - 68 * KiB);
  occupy(m, 8 * MiB + 320 * KiB, 8 * MiB - 320 * KiB);
  occupy(m, 16 * MiB + 320 * KiB, 48 * MiB - 320 * KiB);
  assert_int_equal(stats(m).free_extents, 4);
  /* Some extent has size + align - page bytes (L1, L2): the top of the
   * highest of them, as without the fallback. */
  expect_aligned(m, 64 * KiB, 256 * KiB, 16 * MiB + 256 * KiB);
  /* None has: the smallest small extent that holds an aligned piece, ties
   * the highest (S2), from its top. */
  expect_aligned(m, 64 * KiB, 512 * KiB, 4 * MiB);
  expect_aligned(m, 64 * KiB, 4 * MiB, 4 * MiB);
  /* No small extent holds it: the highest extent that does. */
  expect_aligned(m, 64 * KiB, 16 * MiB, 16 * MiB);
  expect_aligned(m, 128 * KiB, 512 * KiB, 16 * MiB); /* L1 and L2 do: L2, from its top */
  expect_aligned(m, 64 * KiB, 32 * MiB, UINTPTR_MAX); /* none starts on 32 MiB */
  occupy(m, 16 * MiB, 320 * KiB);
  expect_aligned(m, 128 * KiB, 512 * KiB, 8 * MiB);
  em_fini(m);
}

static void test_alloc_at_and_pristine(void **state) {
  (void)state;
  em *m = make(EM_TWO_ENDED, 64 * MiB, 1 * MiB);
  bool pristine = false;
  void *a = em_alloc(m, 8 * MiB, PAGE, &pristine);
  assert_true(pristine);
  assert_true(em_alloc_at(m, (char *)a + 8 * MiB, 4 * MiB, &pristine)); /* grow in place */
  assert_true(pristine);
  assert_false(em_alloc_at(m, (char *)a + 10 * MiB, PAGE, NULL)); /* in use */
  assert_int_equal(em_check(m), 0);
  give(m, a, 12 * MiB);
  void *b = em_alloc(m, 4 * MiB, PAGE, &pristine);
  assert_ptr_equal(a, b);
  assert_false(pristine); /* handed out before */
  void *c = em_alloc(m, 16 * MiB, PAGE, &pristine);
  assert_false(pristine); /* overlaps [4, 12) MiB, used before */
  void *d = em_alloc(m, 16 * MiB, PAGE, &pristine);
  assert_true(pristine);
  (void)c, (void)d;
  em_fini(m);
}

static void test_bad_frees_change_nothing(void **state) {
  (void)state;
  em *m = make(EM_TWO_ENDED, 64 * MiB, 1 * MiB);
  void *a = take(m, 8 * MiB);
  void *b = take(m, 8 * MiB);
  give(m, a, 8 * MiB);
  em_stats before = stats(m);
  assert_int_equal(em_free(m, a, 8 * MiB), EM_ALREADY_FREE);
  assert_int_equal(em_free(m, (char *)a + 4 * MiB, 8 * MiB), EM_ALREADY_FREE); /* overlaps the free a */
  assert_int_equal(em_free(m, (char *)b + 4 * MiB, 40 * MiB), EM_ALREADY_FREE); /* runs into free space */
  assert_int_equal(em_free(m, AT(64 * MiB), PAGE), EM_NOT_IN_REGION);
  assert_int_equal(em_free(m, AT(64 * MiB - PAGE), 2 * PAGE), EM_NOT_IN_REGION);
  assert_int_equal(em_free(m, (char *)b + 1, PAGE), EM_NOT_IN_REGION); /* unaligned */
  em_stats after = stats(m);
  assert_memory_equal(&before, &after, sizeof before);
  assert_int_equal(em_check(m), 0);
  em_fini(m);
}

/* em_free_many gives back in order under one lock and stops at the first
 * bad extent, naming it; em_try_free gives back unless the lock is held. */
static void test_free_many_and_try(void **state) {
  (void)state;
  em *m = make(EM_TWO_ENDED, 64 * MiB, 1 * MiB);
  void *a = take(m, 4 * MiB), *b = take(m, 4 * MiB), *c = take(m, 4 * MiB);
  size_t failed = 99;
  void *two[] = {a, b};
  size_t sizes[] = {4 * MiB, 4 * MiB, 4 * MiB};
  assert_int_equal(em_free_many(m, two, sizes, 2, &failed), EM_FREED);
  assert_int_equal(failed, 2);
  assert_int_equal(em_check(m), 0);
  em_stats s = stats(m);
  assert_int_equal(s.free_bytes, 60 * MiB);
  /* a again (free already) after c: c goes back, a is named, b not tried. */
  void *bad[] = {c, a, b};
  assert_int_equal(em_free_many(m, bad, sizes, 3, &failed), EM_ALREADY_FREE);
  assert_int_equal(failed, 1);
  assert_int_equal(stats(m).free_bytes, 64 * MiB);
  assert_int_equal(em_free_many(m, bad, sizes, 0, &failed), EM_FREED);
  assert_int_equal(failed, 0);
  void *d = take(m, 4 * MiB);
  pthread_mutex_lock(&m->lock);
  assert_int_equal(em_try_free(m, d, 4 * MiB), EM_BUSY);
  pthread_mutex_unlock(&m->lock);
  assert_int_equal(stats(m).free_bytes, 60 * MiB);
  assert_int_equal(em_try_free(m, d, 4 * MiB), EM_FREED);
  assert_int_equal(em_try_free(m, d, 4 * MiB), EM_ALREADY_FREE);
  assert_int_equal(stats(m).free_bytes, 64 * MiB);
  assert_int_equal(em_check(m), 0);
  em_fini(m);
}

/* Two adjacent regions (two registrations) never merge. */
static void test_regions_never_merge(void **state) {
  (void)state;
  em m;
  assert_int_equal(em_init(&m, EM_TWO_ENDED, PAGE, 1 * MiB, 0), 0);
  assert_int_equal(em_add_region(&m, AT(0), 16 * MiB, true), 0);
  assert_int_equal(em_add_region(&m, AT(16 * MiB), 16 * MiB, true), 0);
  assert_int_equal(em_add_region(&m, AT(8 * MiB), 16 * MiB, true), -1); /* overlaps */
  assert_int_equal(em_add_region(&m, AT(100 * MiB + 1), 16 * MiB, true), -1); /* unaligned */
  assert_int_equal(em_check(&m), 0);
  em_stats s = stats(&m);
  assert_int_equal(s.free_extents, 2);
  assert_int_equal(s.capacity, 32 * MiB);
  assert_null(em_alloc(&m, 16 * MiB + PAGE, PAGE, NULL));
  void *a = take(&m, 16 * MiB), *b = take(&m, 16 * MiB);
  give(&m, a, 16 * MiB);
  give(&m, b, 16 * MiB);
  assert_int_equal(stats(&m).free_extents, 2);
  /* A region goes away only when wholly free. */
  void *c = take(&m, PAGE);
  assert_int_equal(em_remove_region(&m, AT(8 * MiB)), -1); /* no region starts there */
  int in_first = OFF(c) < 16 * MiB;
  assert_int_equal(em_remove_region(&m, in_first ? AT(0) : AT(16 * MiB)), -1);
  assert_int_equal(em_remove_region(&m, in_first ? AT(16 * MiB) : AT(0)), 0);
  assert_int_equal(em_check(&m), 0);
  em_stats s2 = stats(&m);
  assert_int_equal(s2.capacity, 16 * MiB);
  assert_int_equal(s2.free_bytes, 16 * MiB - PAGE);
  give(&m, c, PAGE);
  em_fini(&m);
}

static void test_seed_sequences(void **state) {
  (void)state;
  for (int policy = EM_TWO_ENDED; policy <= EM_BUMP; policy++) {
    bool two = policy == EM_TWO_ENDED;
    em *m = make((em_policy)policy, 1200 * MiB, 4 * MiB);
    give(m, take(m, 700 * MiB), 700 * MiB);
    assert_true((take(m, 1000 * MiB) != NULL) == two);
    em_fini(m);
    m = make((em_policy)policy, 1050 * MiB, 4 * MiB);
    give(m, take(m, 1000 * MiB), 1000 * MiB);
    bool first = take(m, 500 * MiB) != NULL;
    bool second = take(m, 500 * MiB) != NULL;
    assert_true((first && second) == two);
    em_fini(m);
  }
}

static void test_bump_never_reuses(void **state) {
  (void)state;
  em *m = make(EM_BUMP, 64 * MiB, 1 * MiB);
  void *a = take(m, 8 * MiB);
  void *b = take(m, PAGE);
  assert_int_equal(OFF(a), 0);
  assert_int_equal(OFF(b), 8 * MiB);
  give(m, a, 8 * MiB);
  void *c = take(m, 8 * MiB);
  assert_int_equal(OFF(c), 8 * MiB + PAGE);
  assert_int_equal(em_free(m, AT(40 * MiB), PAGE), EM_ALREADY_FREE); /* above the pointer */
  em_stats s = stats(m);
  assert_int_equal(s.free_bytes, 64 * MiB - 16 * MiB - PAGE);
  assert_int_equal(s.largest_free, s.free_bytes);
  assert_int_equal(m->abandoned, 8 * MiB);
  em_fini(m);
}

static void test_check_catches_breakage(void **state) {
  (void)state;
  em *m = make(EM_TWO_ENDED, 64 * MiB, 1 * MiB);
  void *a = take(m, 8 * MiB);
  (void)a;
  fprintf(stderr, "test_em: the next two reports are expected (deliberate corruption)\n");
  m->free_bytes += PAGE;
  assert_true(em_check(m) > 0);
  m->free_bytes -= PAGE;
  m->peak_in_use = 0;
  assert_true(em_check(m) > 0);
  em_fini(m);
}

/* em_alloc_low takes the bottom of the lowest free extent that holds the
 * request, where em_alloc puts a small extent at the top: under
 * two-ended, under first fit, and under the ring without moving its
 * pointer; under the bump policy it bumps. */
static void test_alloc_low(void **state) {
  (void)state;
  const em_policy policies[] = {EM_TWO_ENDED, EM_FIRST_FIT, EM_RING};
  for (size_t k = 0; k < sizeof policies / sizeof policies[0]; k++) {
    em *m = make_ring(policies[k], 100 * MiB, 1 * MiB, 10 * MiB);
    void *top = take(m, 64 * KiB);
    assert_int_equal(OFF(top), 100 * MiB - 64 * KiB);
    void *a = em_alloc_low(m, 16 * KiB, PAGE, NULL), *b = em_alloc_low(m, 64 * KiB, PAGE, NULL);
    assert_int_equal(em_check(m), 0);
    assert_int_equal(OFF(a), 0);
    assert_int_equal(OFF(b), 16 * KiB);
    give(m, a, 16 * KiB);
    /* The lowest that holds it, not the best fit: 8 KiB at 0, 32 KiB above b. */
    void *c = em_alloc_low(m, 32 * KiB, PAGE, NULL), *d = em_alloc_low(m, 8 * KiB, PAGE, NULL);
    assert_int_equal(OFF(c), 80 * KiB);
    assert_int_equal(OFF(d), 0);
    assert_int_equal(m->rover, 0);
    give(m, b, 64 * KiB);
    give(m, c, 32 * KiB);
    give(m, d, 8 * KiB);
    give(m, top, 64 * KiB);
    assert_int_equal(stats(m).free_extents, 1);
    em_fini(m);
  }
  em *m = make(EM_BUMP, 100 * MiB, 1 * MiB);
  void *a = take(m, 64 * KiB), *b = em_alloc_low(m, 64 * KiB, PAGE, NULL);
  assert_int_equal(OFF(a), 0);
  assert_int_equal(OFF(b), 64 * KiB);
  em_fini(m);
}

/* em_alloc_low with an alignment above a page: the lowest free extent of
 * size + align - page bytes (each holds an aligned piece), not a lower,
 * shorter one that holds an aligned piece too; with no extent that long,
 * one that holds an aligned piece all the same. */
static void test_alloc_low_aligned(void **state) {
  (void)state;
  const em_policy policies[] = {EM_TWO_ENDED, EM_FIRST_FIT, EM_RING};
  for (size_t k = 0; k < sizeof policies / sizeof policies[0]; k++) {
    em *m = make_ring(policies[k], 100 * MiB, 1 * MiB, 10 * MiB);
    /* In use: [0, 64) KiB and [100, 104) KiB; free [64, 100) KiB, which
     * holds a 64 KiB-aligned piece of 32 KiB but is shorter than 32 + 64 -
     * 4 = 92 KiB, and [104 KiB, the top). */
    assert_true(em_alloc_at(m, AT(0), 64 * KiB, NULL));
    assert_true(em_alloc_at(m, AT(100 * KiB), PAGE, NULL));
    void *a = em_alloc_low(m, 32 * KiB, 64 * KiB, NULL);
    assert_int_equal(em_check(m), 0);
    assert_int_equal(OFF(a), 128 * KiB);
    /* No free extent of 92 KiB: all in use but [64, 96) KiB, a hole of 32
     * KiB that holds the aligned piece, and a hole of 28 KiB at 200 KiB. */
    give(m, a, 32 * KiB);
    assert_true(em_alloc_at(m, AT(104 * KiB), 100 * MiB - 104 * KiB, NULL));
    assert_true(em_alloc_at(m, AT(96 * KiB), PAGE, NULL));
    give(m, AT(200 * KiB), 28 * KiB);
    void *b = em_alloc_low(m, 32 * KiB, 64 * KiB, NULL);
    assert_int_equal(em_check(m), 0);
    assert_int_equal(OFF(b), 64 * KiB);
    assert_null(em_alloc_low(m, 32 * KiB, 64 * KiB, NULL));
    assert_int_equal(m->rover, 0);
    em_fini(m);
  }
}

/* Holes of equal lengths share a bin of the size index: a small request
 * takes the highest of the smallest that fit, a large one the lowest; in a
 * bin of several lengths (above 256 pages), the smallest that fits. */
static void test_ties_in_size_bins(void **state) {
  (void)state;
  for (int large = 0; large < 2; large++) {
    /* small_max below or above the holes' lengths. */
    em *m = make(EM_TWO_ENDED, 256 * MiB, large ? 64 * KiB : 64 * MiB);
    const size_t lens[] = {96 * KiB, 88 * KiB, 96 * KiB, 1 * MiB + 40 * PAGE, 96 * KiB, 1 * MiB + 2 * PAGE, 88 * KiB};
    enum { N = sizeof lens / sizeof *lens };
    /* From the bottom up: a page in use, a hole, a page in use, ... */
    void *hole[N];
    size_t off = 0;
    for (int i = 0; i < N; i++) {
      assert_true(em_alloc_at(m, AT(off), PAGE + lens[i], NULL));
      hole[i] = AT(off + PAGE);
      off += PAGE + lens[i];
    }
    assert_true(em_alloc_at(m, AT(off), PAGE, NULL));
    for (int i = 0; i < N; i++) give(m, hole[i], lens[i]);
    size_t want = 96 * KiB;
    void *p = take(m, want);
    /* Two-ended small: the top of the highest 96 KiB hole; large: the
     * lowest one, from its bottom. */
    assert_ptr_equal(p, large ? hole[0] : hole[4]);
    give(m, p, want);
    void *q = take(m, 1 * MiB + PAGE);
    assert_ptr_equal(q, large ? hole[5] : (char *)hole[5] + PAGE);
    give(m, q, 1 * MiB + PAGE);
    void *r = take(m, 80 * KiB);
    assert_ptr_equal(r, large ? hole[1] : (char *)hole[6] + 8 * KiB);
    em_fini(m);
  }
}

/* em_check finds an index that no longer holds a free extent where its
 * length says, or whose map of bins hides one. */
static void test_check_catches_broken_size_index(void **state) {
  (void)state;
  em *m = make(EM_TWO_ENDED, 64 * MiB, 1 * MiB);
  void *a = take(m, 96 * KiB), *b = take(m, 96 * KiB);
  (void)b;
  give(m, a, 96 * KiB); /* one free extent of 24 pages, bin 23 */
  em_extent key = {.addr = (uintptr_t)a};
  em_extent *e = PH_CONTAINER_OF(tree_floor(&m->by_addr, &key.by_addr), em_extent, by_addr);
  assert_int_equal(e->size, 96 * KiB);
  sizeidx *x = &m->by_size;
  fprintf(stderr, "test_em: the next reports are expected (deliberate corruption)\n");
  x->nonempty[0] &= ~((uint64_t)1 << 23);
  assert_true(em_check(m) > 0);
  x->nonempty[0] |= (uint64_t)1 << 23;
  assert_int_equal(em_check(m), 0);
  /* In the bin of another length. */
  tree_remove(&x->bins[23], &e->by_size);
  tree_insert(&x->bins[22], &e->by_size);
  x->nonempty[0] ^= (uint64_t)3 << 22;
  assert_true(em_check(m) > 0);
  /* Out of the index altogether. */
  tree_remove(&x->bins[22], &e->by_size);
  x->nonempty[0] &= ~((uint64_t)1 << 22);
  x->count--;
  assert_true(em_check(m) > 0);
  tree_insert(&x->bins[23], &e->by_size);
  x->nonempty[0] |= (uint64_t)1 << 23;
  x->count++;
  assert_int_equal(em_check(m), 0);
  em_fini(m);
}

/* Four 20 MiB arrays, the first and third freed: best fit would refill the
 * lowest hole; the ring goes on from where it stopped (80 MiB), but the
 * room there is the highest free extent of at least ring_min, where only
 * what leaves 2 ring_min free is taken: it wraps to the bottom, then takes
 * the next hole above the pointer, and the top one last, when nothing else
 * fits. Blocks below ring_min are placed at the top, as small ones. */
static void test_ring_next_fit(void **state) {
  (void)state;
  em *m = make_ring(EM_RING, 100 * MiB, 1 * MiB, 10 * MiB);
  void *a = take(m, 20 * MiB), *b = take(m, 20 * MiB), *c = take(m, 20 * MiB), *d = take(m, 20 * MiB);
  assert_int_equal(OFF(a), 0);
  assert_int_equal(OFF(d), 60 * MiB);
  assert_int_equal(m->rover, BASE + 80 * MiB);
  give(m, a, 20 * MiB);
  give(m, c, 20 * MiB);
  void *e = take(m, 20 * MiB), *f = take(m, 20 * MiB), *g = take(m, 20 * MiB);
  assert_int_equal(OFF(e), 0);        /* wrapped round: the top keeps its room */
  assert_int_equal(OFF(f), 40 * MiB); /* the next hole above the pointer */
  assert_int_equal(OFF(g), 80 * MiB); /* the top, the only room left */
  assert_null(take(m, 20 * MiB));
  give(m, b, 20 * MiB);
  void *medium = take(m, 4 * MiB), *small = take(m, 64 * KiB);
  assert_int_equal(OFF(medium), 36 * MiB);          /* below ring_min: the top of the highest hole */
  assert_int_equal(OFF(small), 36 * MiB - 64 * KiB);
  assert_int_equal(m->rover, BASE + 100 * MiB);     /* only ring extents move it */
  give(m, medium, 4 * MiB);
  void *aligned = em_alloc(m, 10 * MiB, 8 * MiB, NULL); /* no hole of 18 MiB: the smallest aligned fit */
  assert_int_equal(OFF(aligned), 24 * MiB);
  assert_int_equal(em_check(m), 0);
  em_fini(m);
}

/* Every array freed, the pointer is left in the middle of one free extent:
 * the next array is taken from that extent's bottom, not at the pointer,
 * which would cut the room in two (30 MiB below, 40 above) where a 60 MiB
 * array must fit next. */
static void test_ring_bottom_of_pointer_extent(void **state) {
  (void)state;
  em *m = make_ring(EM_RING, 100 * MiB, 1 * MiB, 10 * MiB);
  void *a = take(m, 30 * MiB);
  give(m, a, 30 * MiB);
  assert_int_equal(m->rover, BASE + 30 * MiB);
  assert_int_equal(OFF(take(m, 30 * MiB)), 0);
  void *b = take(m, 60 * MiB);
  assert_non_null(b);
  assert_int_equal(OFF(b), 30 * MiB);
  em_fini(m);
}

/* A block at the top, two arrays, the first freed: the pointer's extent
 * (60-99 MiB) is the highest free extent of at least ring_min, and a
 * 25 MiB array there would leave 14 MiB free, less than 2 ring_min: it
 * wraps to the hole at the bottom, and a medium block then finds room
 * below the top one instead of landing between arrays. */
static void test_ring_keeps_room_below_top(void **state) {
  (void)state;
  em *m = make_ring(EM_RING, 100 * MiB, 1 * MiB, 10 * MiB);
  assert_int_equal(OFF(take(m, 1 * MiB)), 99 * MiB);
  void *a = take(m, 30 * MiB), *b = take(m, 30 * MiB);
  assert_int_equal(OFF(b), 30 * MiB);
  give(m, a, 30 * MiB);
  assert_int_equal(OFF(take(m, 25 * MiB)), 0);
  assert_int_equal(OFF(take(m, 8 * MiB)), 91 * MiB);
  assert_int_equal(stats(m).largest_free, 31 * MiB);
  em_fini(m);
}

/* Free holes of 20 MiB at 0 and 10 MiB at 50 MiB: best fit takes the
 * second for 10 MiB, address-ordered first fit the first. */
static void test_first_fit(void **state) {
  (void)state;
  em *m = make(EM_FIRST_FIT, 100 * MiB, 1 * MiB);
  void *a = take(m, 20 * MiB), *b = take(m, 10 * MiB), *c = take(m, 20 * MiB), *d = take(m, 10 * MiB);
  void *e = take(m, 10 * MiB);
  (void)b, (void)c, (void)e;
  assert_int_equal(OFF(d), 50 * MiB);
  give(m, a, 20 * MiB);
  give(m, d, 10 * MiB);
  assert_int_equal(OFF(take(m, 10 * MiB)), 0);
  assert_int_equal(OFF(take(m, 10 * MiB)), 10 * MiB);
  assert_int_equal(OFF(take(m, 10 * MiB)), 50 * MiB);
  assert_int_equal(OFF(take(m, 64 * KiB)), 100 * MiB - 64 * KiB); /* small: still the top */
  em_fini(m);
}

/* em_move places with the old extent counted as free: 30 MiB grown to 45
 * fits only over its own room (a 20 MiB hole below it), and keeps the old
 * extent's part above the new one in use for the caller to give back. A
 * move that fits nowhere changes nothing. */
static void test_move_over_own_room(void **state) {
  (void)state;
  em *m = make(EM_TWO_ENDED, 100 * MiB, 1 * MiB);
  void *a = take(m, 20 * MiB), *b = take(m, 30 * MiB), *c = take(m, 10 * MiB);
  give(m, a, 20 * MiB);
  em_stats before = stats(m);
  assert_null(em_move(m, b, 30 * MiB, 80 * MiB));
  assert_int_equal(em_check(m), 0);
  em_stats after = stats(m);
  assert_int_equal(after.free_bytes, before.free_bytes);
  assert_int_equal(after.free_extents, before.free_extents);
  assert_int_equal(em_free(m, b, PAGE), EM_FREED); /* still in use, all of it */
  assert_true(em_alloc_at(m, b, PAGE, NULL));
  void *q = em_move(m, b, 30 * MiB, 45 * MiB);
  assert_int_equal(em_check(m), 0);
  assert_int_equal(OFF(q), 0);
  assert_int_equal(stats(m).free_bytes, 100 * MiB - 45 * MiB - 5 * MiB - 10 * MiB);
  give(m, AT(45 * MiB), 5 * MiB); /* what of the old extent the new one left */
  give(m, q, 45 * MiB);
  give(m, c, 10 * MiB);
  assert_int_equal(stats(m).free_extents, 1);
  em_fini(m);
}

/* Under the ring, a move (a block grown by realloc) goes best fit and leaves
 * the pointer: three 10 MiB arrays, the first freed, the second grown to
 * 12 MiB. With its own room counted free the best fit is the bottom hole
 * (0-20 MiB), not the pointer's extent (30-100 MiB), and the next array
 * still follows the third. */
static void test_ring_move_best_fit(void **state) {
  (void)state;
  em *m = make_ring(EM_RING, 100 * MiB, 1 * MiB, 8 * MiB);
  void *a = take(m, 10 * MiB), *b = take(m, 10 * MiB);
  assert_int_equal(OFF(take(m, 10 * MiB)), 20 * MiB);
  give(m, a, 10 * MiB);
  void *q = em_move(m, b, 10 * MiB, 12 * MiB);
  assert_int_equal(em_check(m), 0);
  assert_int_equal(OFF(q), 0);
  assert_int_equal(m->rover, BASE + 30 * MiB);
  give(m, AT(12 * MiB), 8 * MiB); /* what of the old extent the new one left */
  assert_int_equal(OFF(take(m, 10 * MiB)), 30 * MiB);
  em_fini(m);
}

static void test_check_catches_bad_rover(void **state) {
  (void)state;
  em *m = make_ring(EM_RING, 64 * MiB, 1 * MiB, 8 * MiB);
  take(m, 8 * MiB);
  fprintf(stderr, "test_em: the next two reports are expected (deliberate corruption)\n");
  m->rover += 1;
  assert_true(em_check(m) > 0);
  m->rover = BASE + 65 * MiB;
  assert_true(em_check(m) > 0);
  m->rover = BASE;
  em_fini(m);
}

typedef struct aligned_query {
  size_t size, align;
  bool found;
} aligned_query;

/* em_walk_free visitor: whether [addr, addr + size) holds q's request. */
static int holds_aligned(uintptr_t addr, size_t size, void *arg) {
  aligned_query *q = arg;
  uintptr_t start = (addr + q->align - 1) & ~(uintptr_t)(q->align - 1);
  q->found = start + q->size <= addr + size;
  return q->found;
}

/* Random allocations and frees against a shadow list of live extents. */
static void random_against_shadow(em_policy policy) {
  enum { SLOTS = 300, STEPS = 20000 };
  const size_t region = 512 * MiB;
  static struct {
    void *p;
    size_t size;
  } live[SLOTS];
  memset(live, 0, sizeof live);
  em *m = make_ring(policy, region, 1 * MiB, 16 * MiB);
  size_t used = 0, failures = 0;
  uintptr_t rover = 0;
  for (int step = 0; step < STEPS; step++) {
    int i = (int)seed_below(SLOTS);
    if (live[i].p) {
      give(m, live[i].p, live[i].size);
      used -= live[i].size;
      live[i].p = NULL;
      continue;
    }
    size_t size;
    switch (seed_below(3)) {
    case 0: size = (1 + seed_below(16)) * PAGE; break;
    case 1: size = (1 + seed_below(512)) * PAGE; break;
    default: size = (1 + seed_below(8192)) * PAGE; break;
    }
    size_t align = seed_below(8) == 0 ? PAGE << seed_below(10) : PAGE;
    /* Where the rules put it, by a plain walk: the indexes must agree. One
     * in four goes to the lowest fit (em_alloc_low), the pointer unmoved. */
    bool rules = align == PAGE, low = seed_below(4) == 0;
    uintptr_t want = !rules ? 0 : low ? placement_low(m, size) : placement_expected(m, size, rover);
    void *p = low ? em_alloc_low(m, size, align, NULL) : em_alloc(m, size, align, NULL);
    assert_int_equal(em_check(m), 0);
    if (rules && (uintptr_t)p != want)
      fail_msg("step %d: em_alloc%s(%zu) placed at %#lx, the rules at %#lx", step, low ? "_low" : "", size,
               (unsigned long)OFF(p), (unsigned long)(want - BASE));
    if (!low) placement_advance(m, &rover, p, size);
    if (!p) {
      failures++;
      /* A failure is only allowed when no free extent holds an aligned
       * piece of that size. */
      aligned_query q = {size, align, false};
      em_walk_free(m, holds_aligned, &q);
      if (q.found) fail_msg("em_alloc(%zu, %zu) failed though a free extent holds it", size, align);
      continue;
    }
    assert_int_equal((uintptr_t)p % align, 0);
    assert_true(OFF(p) + size <= region);
    for (int j = 0; j < SLOTS; j++) {
      if (!live[j].p) continue;
      uintptr_t a = (uintptr_t)p, b = (uintptr_t)live[j].p;
      assert_true(a + size <= b || b + live[j].size <= a);
    }
    live[i].p = p;
    live[i].size = size;
    used += size;
    assert_int_equal(stats(m).free_bytes, region - used);
  }
  for (int i = 0; i < SLOTS; i++)
    if (live[i].p) give(m, live[i].p, live[i].size);
  em_stats s = stats(m);
  assert_int_equal(s.free_extents, 1);
  assert_int_equal(s.largest_free, region);
  printf("random (policy %d): %d steps, %zu failed for lack of room\n", (int)policy, STEPS, failures);
  em_fini(m);
}

static void test_random_against_shadow(void **state) {
  (void)state;
  random_against_shadow(EM_TWO_ENDED);
  random_against_shadow(EM_RING);
  random_against_shadow(EM_FIRST_FIT);
}

int main(int argc, char **argv) {
  seed_init(argc, argv, "test_em");
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_coalesce_every_case),
      cmocka_unit_test(test_two_ended_placement),
      cmocka_unit_test(test_best_fit),
      cmocka_unit_test(test_tiny_in_hole),
      cmocka_unit_test(test_small_prefers_small_holes_then_top),
      cmocka_unit_test(test_alignment),
      cmocka_unit_test(test_aligned_exact_fit),
      cmocka_unit_test(test_alloc_at_and_pristine),
      cmocka_unit_test(test_bad_frees_change_nothing),
      cmocka_unit_test(test_free_many_and_try),
      cmocka_unit_test(test_regions_never_merge),
      cmocka_unit_test(test_seed_sequences),
      cmocka_unit_test(test_bump_never_reuses),
      cmocka_unit_test(test_check_catches_breakage),
      cmocka_unit_test(test_ring_next_fit),
      cmocka_unit_test(test_ring_bottom_of_pointer_extent),
      cmocka_unit_test(test_ring_keeps_room_below_top),
      cmocka_unit_test(test_ring_move_best_fit),
      cmocka_unit_test(test_first_fit),
      cmocka_unit_test(test_check_catches_bad_rover),
      cmocka_unit_test(test_move_over_own_room),
      cmocka_unit_test(test_alloc_low),
      cmocka_unit_test(test_alloc_low_aligned),
      cmocka_unit_test(test_ties_in_size_bins),
      cmocka_unit_test(test_check_catches_broken_size_index),
      cmocka_unit_test(test_random_against_shadow),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
