/*
 * Integration test of the public API of pinheap (include/pinheap.h), with
 * pinheap_check, which counts broken invariants of a heap, after each step,
 * and a look inside the handle (api.h) where a test corrupts it.
 *
 * Memory: regions are reserved with MAP_NORESERVE, so a big heap costs only
 * the pages written. The test never writes more than a few MiB of a big block
 * (first and last bytes, a few pages) and stays well under 1 GiB touched.
 *
 * Heaps are made with an explicit, small number of arenas (TEST_ARENAS):
 * every jemalloc arena of a FIXED heap takes 4 MiB of the region (its 2 MiB base
 * block) from the region, so with the default (one arena per CPU) the room
 * left in a small heap would depend on the machine running the test.
 *
 * Usage: test_api [seed]
 *
 * Longer than 600 lines: one test program per public header, every case
 * a cmocka test of its own sharing the heaps' set-up and checks.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "asserts.h"
#include "child.h"
#include "api.h"
#include "pinheap.h"
#include "seed.h"

#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#else
#define VALGRIND_MAKE_MEM_DEFINED(p, n) ((void)(p), (void)(n))
#endif


#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)
#define TEST_ARENAS 2u

static size_t page;

static size_t round_page(size_t n) { return (n + page - 1) & ~(page - 1); }

/* ---- helpers ----------------------------------------------------------- */

#define assert_heap_ok(h) assert_int_equal(pinheap_check(h), 0)

/* Puts a known text in pinheap_last_error() (a failure of another function),
 * so that a later failure must be seen to replace it. */
static char sentinel[512];

static void arm_error(void) {
  pinheap_stats s;
  assert_int_equal(pinheap_get_stats(NULL, &s), -1);
  snprintf(sentinel, sizeof sentinel, "%s", pinheap_last_error());
  assert_true(sentinel[0] != '\0');
  errno = 0;
}

/* The last call failed with err and wrote a fresh error text. */
static void assert_error_set(int got_errno, int want) {
  assert_int_equal(got_errno, want);
  const char *msg = pinheap_last_error();
  assert_non_null(msg);
  assert_true(msg[0] != '\0');
  assert_string_not_equal(msg, sentinel);
}

#define assert_fails(expr, err)                                                                    \
  do {                                                                                             \
    arm_error();                                                                                   \
    void *r_ = (void *)(expr);                                                                     \
    int e_ = errno;                                                                                \
    if (r_ || e_ != (err))                                                                         \
      print_error("%s: returned %p, errno %d (\"%s\"); expected NULL, errno %d\n", #expr, r_, e_, \
                  pinheap_last_error(), (err));                                                    \
    assert_null(r_);                                                                               \
    assert_error_set(e_, (err));                                                                   \
  } while (0)

static pinheap *fixed_heap(size_t size, pinheap_policy policy) {
  pinheap_options o;
  pinheap_options_init(&o);
  o.mode = PINHEAP_FIXED;
  o.size = size;
  o.policy = policy;
  o.arenas = TEST_ARENAS;
  pinheap *h = pinheap_create(&o);
  if (!h) print_error("pinheap_create(%zu): %s\n", size, pinheap_last_error());
  assert_non_null(h);
  assert_heap_ok(h);
  return h;
}

static pinheap *simple_heap(void) {
  pinheap_options o;
  pinheap_options_init(&o);
  o.mode = PINHEAP_SIMPLE;
  o.size = 0;
  o.arenas = TEST_ARENAS;
  pinheap *h = pinheap_create(&o);
  if (!h) print_error("pinheap_create(SIMPLE): %s\n", pinheap_last_error());
  assert_non_null(h);
  return h;
}

static pinheap_stats stats_of(pinheap *h) {
  pinheap_stats s;
  memset(&s, 0xff, sizeof s);
  assert_int_equal(pinheap_get_stats(h, &s), 0);
  assert_int_equal(s.free_bytes + s.in_use, s.capacity);
  assert_true(s.largest_free <= s.free_bytes);
  assert_true(s.peak_in_use >= s.in_use);
  if (s.free_bytes > 0) {
    assert_true(s.free_extents >= 1);
    assert_true(s.largest_free > 0);
    /* the largest is at least the average */
    assert_true(s.largest_free * s.free_extents >= s.free_bytes);
  } else {
    assert_int_equal(s.free_extents, 0);
  }
  return s;
}

static void fill(void *p, size_t n, unsigned seed) {
  unsigned char *c = p;
  for (size_t i = 0; i < n; i++) c[i] = (unsigned char)(seed + i * 7 + (i >> 9));
}

static bool check_fill(const void *p, size_t n, unsigned seed) {
  const unsigned char *c = p;
  for (size_t i = 0; i < n; i++)
    if (c[i] != (unsigned char)(seed + i * 7 + (i >> 9))) {
      print_error("byte %zu of %p: 0x%02x, expected 0x%02x\n", i, p, c[i], (unsigned char)(seed + i * 7 + (i >> 9)));
      return false;
    }
  return true;
}

/* Fills the bytes [off, off + n) of p. */
static void fill_at(void *p, size_t off, size_t n, unsigned seed) { fill((char *)p + off, n, seed); }
static bool check_at(const void *p, size_t off, size_t n, unsigned seed) {
  return check_fill((const char *)p + off, n, seed);
}

static bool all_zero(const void *p, size_t n) {
  const unsigned char *c = p;
  for (size_t i = 0; i < n; i++)
    if (c[i]) {
      print_error("byte %zu of %p is 0x%02x, expected 0\n", i, p, c[i]);
      return false;
    }
  return true;
}

/* ---- 1. options -------------------------------------------------------- */

/* Bad options: pinheap_options_check refuses them, and pinheap_create
 * with the same errno and text. */
static void expect_create_fails(const pinheap_options *o, int err) {
  arm_error();
  assert_int_equal(pinheap_options_check(o), -1);
  assert_error_set(errno, err);
  char checked[256];
  snprintf(checked, sizeof checked, "%s", pinheap_last_error());
  arm_error();
  pinheap *h = pinheap_create(o);
  int e = errno;
  if (h) pinheap_destroy(h);
  assert_null(h);
  assert_error_set(e, err);
  assert_string_equal(pinheap_last_error(), checked);
}

static void test_options(void **state) {
  (void)state;
  pinheap_options o;
  memset(&o, 0x5a, sizeof o);
  pinheap_options_init(&o);
  assert_int_equal(o.mode, PINHEAP_FIXED);
  assert_int_equal(o.size, 0);
  assert_int_equal(o.policy, PINHEAP_POLICY_TWO_ENDED);
  assert_int_equal(o.ring_min, 0);
  assert_int_equal(o.large_threshold, 14 * KiB);
  assert_int_equal(o.small_extent_max, 4 * MiB);
  assert_int_equal(o.arenas, 0);
  assert_false(o.prefault);
  assert_false(o.lock);
  assert_false(o.hugepages);
  assert_null(o.provider);
  assert_int_equal(o.min_size, 0);
  assert_int_equal(o.chunk_size, 64 * MiB);
  assert_int_equal(o.direct_threshold, 8 * MiB);
  assert_int_equal(o.debug, 0);

  expect_create_fails(NULL, EINVAL);

  pinheap_options_init(&o); /* FIXED, size 0 */
  expect_create_fails(&o, EINVAL);

  pinheap_options_init(&o);
  o.size = 64 * MiB;
  o.mode = (pinheap_mode)42;
  expect_create_fails(&o, EINVAL);

  pinheap_options_init(&o);
  o.size = 64 * MiB;
  o.policy = (pinheap_policy)42;
  expect_create_fails(&o, EINVAL);

  pinheap_options_init(&o);
  o.size = 64 * MiB;
  o.arenas = 1000;
  expect_create_fails(&o, EINVAL);

  pinheap_options_init(&o);
  o.size = 64 * MiB;
  o.large_threshold = 0;
  expect_create_fails(&o, EINVAL);

  pinheap_options_init(&o);
  o.mode = PINHEAP_DYNAMIC;
  o.policy = PINHEAP_POLICY_BUMP; /* the bump policy is for FIXED heaps */
  expect_create_fails(&o, EINVAL);

  pinheap_options_init(&o);
  o.mode = PINHEAP_DYNAMIC;
  o.chunk_size = 0;
  expect_create_fails(&o, EINVAL);

  pinheap_options_init(&o);
  o.mode = PINHEAP_DYNAMIC;
  o.size = 1 * MiB; /* a cap below one chunk */
  expect_create_fails(&o, EINVAL);

  /* The defaults plus a size make a working heap (default arenas included). */
  pinheap_options_init(&o);
  o.size = 256 * MiB;
  assert_int_equal(pinheap_options_check(&o), 0);
  pinheap *h = pinheap_create(&o);
  if (!h) print_error("pinheap_create(defaults): %s\n", pinheap_last_error());
  assert_non_null(h);
  void *p = pinheap_malloc(h, 100), *q = pinheap_malloc(h, 1 * MiB);
  assert_non_null(p);
  assert_non_null(q);
  assert_true(pinheap_owns(h, p));
  assert_true(pinheap_owns(h, q));
  assert_int_equal(stats_of(h).capacity, 256 * MiB);
  assert_heap_ok(h);
  pinheap_free(h, p);
  pinheap_free(h, q);
  assert_heap_ok(h);
  pinheap_destroy(h);
}

/* ---- 2. seed sequences ------------------------------------------------- */

typedef struct seq_step {
  bool free;   /* free the block of step `index` */
  size_t size; /* allocate size bytes */
  int index;
} seq_step;

typedef struct seq {
  const char *name;
  size_t heap;
  int nsteps;
  int first_reuse; /* the first allocation after a free */
  seq_step steps[6];
} seq;

#define ALLOC(n) {false, (n), -1}
#define FREE(i) {true, 0, (i)}

static const seq seqs[] = {
    {"a", 1200 * MiB, 3, 2, {ALLOC(700 * MiB), FREE(0), ALLOC(1000 * MiB)}},
    {"b", 1050 * MiB, 4, 2, {ALLOC(1000 * MiB), FREE(0), ALLOC(500 * MiB), ALLOC(500 * MiB)}},
    {"c", 650 * MiB, 5, 3, {ALLOC(500 * MiB), ALLOC(40), FREE(0), ALLOC(40), ALLOC(500 * MiB)}},
};

static void run_seq(const seq *s, pinheap_policy policy) {
  pinheap *h = fixed_heap(s->heap, policy);
  void *ptr[6] = {0};
  for (int i = 0; i < s->nsteps; i++) {
    const seq_step *st = &s->steps[i];
    if (st->free) {
      pinheap_free(h, ptr[st->index]);
      ptr[st->index] = NULL;
      assert_heap_ok(h);
      continue;
    }
    arm_error();
    ptr[i] = pinheap_malloc(h, st->size);
    int e = errno;
    bool must_work = policy == PINHEAP_POLICY_TWO_ENDED || i < s->first_reuse;
    if (must_work) {
      if (!ptr[i])
        print_error("seq %s policy %d step %d malloc(%zu): %s\n", s->name, (int)policy, i, st->size,
                    pinheap_last_error());
      assert_non_null(ptr[i]);
      /* touch the ends only */
      ((volatile char *)ptr[i])[0] = 1;
      ((volatile char *)ptr[i])[st->size - 1] = 2;
      assert_true(pinheap_usable_size(h, ptr[i]) >= st->size);
    } else if (i == s->nsteps - 1) {
      /* BUMP never reuses freed memory: the last step must fail */
      if (ptr[i]) print_error("seq %s with BUMP: the last malloc(%zu) succeeded\n", s->name, st->size);
      assert_null(ptr[i]);
      assert_error_set(e, ENOMEM);
      char num[32];
      snprintf(num, sizeof num, "%zu", st->size);
      assert_contains(pinheap_last_error(), num);
      assert_contains(pinheap_last_error(), "free");
      assert_contains(pinheap_last_error(), "largest");
    }
    assert_heap_ok(h);
  }
  for (int i = 0; i < s->nsteps; i++)
    if (ptr[i]) pinheap_free(h, ptr[i]);
  assert_heap_ok(h);
  pinheap_destroy(h);
}

static void test_seed_sequences(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof seqs / sizeof seqs[0]; i++) run_seq(&seqs[i], PINHEAP_POLICY_TWO_ENDED);
}

static void test_seed_sequences_bump(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof seqs / sizeof seqs[0]; i++) run_seq(&seqs[i], PINHEAP_POLICY_BUMP);
}

/* ---- 3. errors on allocation ------------------------------------------- */

static void test_alloc_errors(void **state) {
  (void)state;
  pinheap *h = fixed_heap(64 * MiB, PINHEAP_POLICY_TWO_ENDED);
  pinheap_stats s0 = stats_of(h);

  /* Sizes no state of the heap could hold: ENOMEM, as glibc and POSIX say,
   * with a text that says so; EINVAL is for bad alignments only. */
  assert_fails(pinheap_malloc(h, 64 * MiB + page), ENOMEM);
  assert_contains(pinheap_last_error(), "impossible size");
  assert_fails(pinheap_malloc(h, 1024 * MiB), ENOMEM);
  assert_fails(pinheap_malloc(h, SIZE_MAX), ENOMEM);
  assert_contains(pinheap_last_error(), "impossible size");
  assert_fails(pinheap_malloc(h, SIZE_MAX - 100), ENOMEM);
  assert_fails(pinheap_calloc(h, SIZE_MAX / 2, 4), ENOMEM);
  assert_contains(pinheap_last_error(), "impossible size");
  assert_fails(pinheap_calloc(h, 4, SIZE_MAX / 2), ENOMEM);
  assert_fails(pinheap_calloc(h, 1, 65 * MiB), ENOMEM);
  assert_fails(pinheap_aligned_alloc(h, 3, 100), EINVAL);
  assert_fails(pinheap_aligned_alloc(h, 0, 100), EINVAL);
  assert_fails(pinheap_aligned_alloc(h, 3, 1 * MiB), EINVAL);
  assert_fails(pinheap_aligned_alloc(h, 48, 64), EINVAL);
  assert_fails(pinheap_aligned_alloc(h, 4096, 65 * MiB), ENOMEM);
  assert_fails(pinheap_aligned_alloc(h, 64, SIZE_MAX), ENOMEM);

  assert_fails(pinheap_malloc(NULL, 10), EINVAL);
  assert_fails(pinheap_calloc(NULL, 1, 10), EINVAL);
  assert_fails(pinheap_realloc(NULL, NULL, 10), EINVAL);
  assert_fails(pinheap_aligned_alloc(NULL, 64, 10), EINVAL);

  pinheap_stats st;
  arm_error();
  assert_int_equal(pinheap_get_stats(NULL, &st), -1);
  assert_int_equal(errno, EINVAL);
  assert_true(pinheap_last_error()[0] != '\0');
  errno = 0;
  assert_int_equal(pinheap_get_stats(h, NULL), -1);
  assert_int_equal(errno, EINVAL);

  /* Nothing above took memory. */
  pinheap_stats s1 = stats_of(h);
  assert_int_equal(s1.in_use, s0.in_use);
  assert_int_equal(s1.allocated, s0.allocated);
  assert_heap_ok(h);

  /* A failed realloc leaves the block as it was: impossible size (ENOMEM). */
  void *small = pinheap_malloc(h, 200);
  assert_non_null(small);
  fill(small, 200, 11);
  assert_fails(pinheap_realloc(h, small, 65 * MiB), ENOMEM);
  assert_true(check_fill(small, 200, 11));

  void *a = pinheap_malloc(h, 20 * MiB);
  void *b = pinheap_malloc(h, 20 * MiB);
  assert_non_null(a);
  assert_non_null(b);
  fill(a, 64 * KiB, 3);
  fill_at(a, 20 * MiB - 64 * KiB, 64 * KiB, 4);
  assert_fails(pinheap_realloc(h, a, 65 * MiB), ENOMEM);
  assert_true(check_fill(a, 64 * KiB, 3));

  /* No room (ENOMEM): a cannot grow in place (b follows it) and no 45 MiB
   * extent is free. */
  pinheap_stats s2 = stats_of(h);
  assert_true(s2.largest_free < 45 * MiB);
  assert_fails(pinheap_realloc(h, a, 45 * MiB), ENOMEM);
  assert_true(check_fill(a, 64 * KiB, 3));
  assert_true(check_at(a, 20 * MiB - 64 * KiB, 64 * KiB, 4));
  assert_int_equal(pinheap_usable_size(h, a), 20 * MiB);
  /* small -> large that does not fit */
  assert_fails(pinheap_realloc(h, small, 45 * MiB), ENOMEM);
  assert_true(check_fill(small, 200, 11));
  assert_true(pinheap_usable_size(h, small) >= 200);
  pinheap_stats s3 = stats_of(h);
  assert_int_equal(s3.large_blocks, 2);
  assert_int_equal(s3.large_allocated, 40 * MiB);
  assert_heap_ok(h);

  /* The blocks are still live and whole: they can be used and freed. */
  void *a2 = pinheap_realloc(h, a, 20 * MiB - 100); /* same page count */
  assert_ptr_equal(a2, a);
  pinheap_free(h, a);
  pinheap_free(h, b);
  pinheap_free(h, small);
  assert_heap_ok(h);
  pinheap_destroy(h);
}

/* ---- 4. edge cases ----------------------------------------------------- */

static void test_edge_cases(void **state) {
  (void)state;
  pinheap *h = fixed_heap(64 * MiB, PINHEAP_POLICY_TWO_ENDED);

  void *z1 = pinheap_malloc(h, 0), *z2 = pinheap_malloc(h, 0);
  assert_non_null(z1);
  assert_non_null(z2);
  assert_ptr_not_equal(z1, z2);
  assert_true(pinheap_owns(h, z1));
  size_t u = pinheap_usable_size(h, z1);
  assert_true(u >= 1);
  memset(z1, 0x77, u);
  memset(z2, 0x11, pinheap_usable_size(h, z2));
  assert_int_equal(((unsigned char *)z1)[0], 0x77);
  assert_int_equal(((unsigned char *)z1)[u - 1], 0x77);
  pinheap_free(h, z1);
  pinheap_free(h, z2);

  pinheap_stats s0 = stats_of(h);
  pinheap_free(h, NULL);
  pinheap_free(NULL, NULL);
  pinheap_stats s1 = stats_of(h);
  assert_int_equal(s1.in_use, s0.in_use);
  assert_int_equal(s1.allocated, s0.allocated);
  assert_heap_ok(h);

  /* realloc(NULL, n) is malloc(n), small and large */
  void *p = pinheap_realloc(h, NULL, 100);
  assert_non_null(p);
  assert_true(pinheap_owns(h, p));
  assert_true(pinheap_usable_size(h, p) >= 100);
  memset(p, 1, 100);
  void *q = pinheap_realloc(h, NULL, 3 * MiB);
  assert_non_null(q);
  assert_true(pinheap_owns(h, q));
  assert_int_equal(pinheap_usable_size(h, q), 3 * MiB);
  assert_int_equal(stats_of(h).large_blocks, 1);
  assert_int_equal(stats_of(h).large_allocated, 3 * MiB);

  /* realloc(p, 0) frees and returns NULL */
  assert_null(pinheap_realloc(h, q, 0));
  assert_int_equal(stats_of(h).large_blocks, 0);
  assert_int_equal(stats_of(h).large_allocated, 0);
  assert_null(pinheap_realloc(h, p, 0));
  assert_heap_ok(h);
  pinheap_trim(h);
  assert_int_equal(stats_of(h).allocated, 0);
  assert_heap_ok(h);
  pinheap_destroy(h);
}

/* ---- 5. calloc zeroes -------------------------------------------------- */

static void test_calloc_zeroes(void **state) {
  (void)state;
  pinheap *h = fixed_heap(256 * MiB, PINHEAP_POLICY_TWO_ENDED);
  enum { N = 2000 };
  void **v = calloc(N, sizeof *v);
  assert_non_null(v);

  /* small: dirty, free, calloc the same size: reused memory comes back zero */
  for (int i = 0; i < N; i++) {
    v[i] = pinheap_malloc(h, 100);
    assert_non_null(v[i]);
    memset(v[i], 0xAB, pinheap_usable_size(h, v[i]));
  }
  for (int i = 0; i < N; i++) pinheap_free(h, v[i]);
  int reused = 0;
  for (int i = 0; i < N; i++) {
    void *c = i % 2 ? pinheap_calloc(h, 1, 100) : pinheap_calloc(h, 10, 10);
    assert_non_null(c);
    assert_true(all_zero(c, 100));
    for (int j = 0; j < N && !reused; j++) reused += v[j] == c;
    v[i] = c;
  }
  assert_true(reused > 0); /* the scenario really reused dirtied memory */
  for (int i = 0; i < N; i++) pinheap_free(h, v[i]);
  free(v);
  assert_heap_ok(h);

  /* large, 2 MiB: dirty it all, free, calloc: same place, all zero */
  char *d = pinheap_malloc(h, 2 * MiB);
  assert_non_null(d);
  memset(d, 0xAB, 2 * MiB);
  pinheap_free(h, d);
  char *c = pinheap_calloc(h, 1024, 2 * KiB);
  assert_ptr_equal(c, d); /* best fit: the freed extent is taken again */
  assert_true(all_zero(c, 2 * MiB));
  pinheap_free(h, c);
  assert_heap_ok(h);

  /* large, 64 MiB: dirty a few pages, free, calloc: those pages are zero */
  d = pinheap_malloc(h, 64 * MiB);
  assert_non_null(d);
  static const size_t offs[] = {0, 4096, 1 * MiB + 123, 32 * MiB, 64 * MiB - 8192, 64 * MiB - 4096};
  for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) memset(d + offs[i], 0xAB, 4096);
  pinheap_free(h, d);
  c = pinheap_calloc(h, 1, 64 * MiB);
  assert_ptr_equal(c, d);
  for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) assert_true(all_zero(c + offs[i], 4096));
  assert_heap_ok(h);
  pinheap_free(h, c);

  /* a large calloc in never-used memory is zero too */
  char *big1 = pinheap_malloc(h, 64 * MiB);
  char *fresh = pinheap_calloc(h, 1, 100 * MiB);
  assert_non_null(big1);
  assert_non_null(fresh);
  assert_true(all_zero(fresh, 4096));
  assert_true(all_zero(fresh + 100 * MiB - 4096, 4096));
  pinheap_free(h, big1);
  pinheap_free(h, fresh);
  assert_heap_ok(h);
  pinheap_destroy(h);
}

/* ---- 6. aligned_alloc -------------------------------------------------- */

static void test_aligned_alloc(void **state) {
  (void)state;
  /* up to nine blocks aligned to 64 MiB live at once: each needs its own
   * 64 MiB boundary, so the region must hold more than nine */
  pinheap *h = fixed_heap(1024 * MiB, PINHEAP_POLICY_TWO_ENDED);
  static const size_t sizes[] = {1, 8, 100, 4096, 5000, 32 * KiB, 32 * KiB + 1, 1 * MiB + 3, 3 * MiB};
  enum { NS = sizeof sizes / sizeof sizes[0] };
  /* a live large block first so that the bottom of the region is not aligned
   * by chance */
  void *spacer = pinheap_malloc(h, 3 * page);
  assert_non_null(spacer);
  for (size_t align = 8; align <= 64 * MiB; align <<= 1) {
    void *p[NS];
    for (size_t i = 0; i < NS; i++) {
      p[i] = pinheap_aligned_alloc(h, align, sizes[i]);
      if (!p[i]) print_error("aligned_alloc(%zu, %zu): %s\n", align, sizes[i], pinheap_last_error());
      assert_non_null(p[i]);
      if ((uintptr_t)p[i] % align) print_error("aligned_alloc(%zu, %zu) = %p\n", align, sizes[i], p[i]);
      assert_int_equal((uintptr_t)p[i] % align, 0);
      assert_true(pinheap_owns(h, p[i]));
      size_t u = pinheap_usable_size(h, p[i]);
      assert_true(u >= sizes[i]);
      ((volatile char *)p[i])[0] = 1;
      ((volatile char *)p[i])[sizes[i] - 1] = 1;
    }
    assert_heap_ok(h);
    for (size_t i = 0; i < NS; i++) pinheap_free(h, p[i]);
    assert_heap_ok(h);
  }
  pinheap_free(h, spacer);
  assert_heap_ok(h);
  pinheap_destroy(h);
}

/* ---- 7. usable size ---------------------------------------------------- */

static void check_usable(pinheap *h, size_t size) {
  /* A large block from an empty cache: the thread's cache may hand out a
   * freed extent up to a quarter longer whole (test_medium). */
  if (size > 14 * KiB) pinheap_trim(h);
  char *p = pinheap_malloc(h, size);
  if (!p) print_error("malloc(%zu): %s\n", size, pinheap_last_error());
  assert_non_null(p);
  size_t u = pinheap_usable_size(h, p);
  if (u < size) print_error("usable_size of malloc(%zu) = %zu\n", size, u);
  assert_true(u >= size);
  if (size > 14 * KiB) { /* above the large threshold: an exact page-rounded extent */
    if (u != round_page(size)) print_error("usable_size of large malloc(%zu) = %zu, expected %zu\n", size, u, round_page(size));
    assert_int_equal(u, round_page(size));
  }
  p[0] = 1;
  p[u - 1] = 1;
  pinheap_free(h, p);
}

static void test_usable_size(void **state) {
  (void)state;
  pinheap *h = fixed_heap(768 * MiB, PINHEAP_POLICY_TWO_ENDED);
  for (size_t s = 1; s <= 4096; s++) check_usable(h, s);
  static const size_t edges[] = {14 * KiB - 1, 14 * KiB, 14 * KiB + 1, 16 * KiB, 16 * KiB + 1, 32 * KiB,
                                 32 * KiB + 1, 40 * KiB - 1, 40 * KiB, 100000, 1 * MiB - 1, 1 * MiB};
  for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) check_usable(h, edges[i]);
  for (int i = 0; i < 3000; i++) check_usable(h, 4097 + (size_t)(seed_next() % (1 * MiB - 4096)));
  assert_heap_ok(h);

  /* Large blocks skip jemalloc's size classes (700 MiB + 1 would be 768 MiB
   * in a size class). */
  void *p = pinheap_malloc(h, 700 * MiB + 1);
  assert_non_null(p);
  assert_int_equal(pinheap_usable_size(h, p), 700 * MiB + page);
  assert_int_equal(stats_of(h).large_allocated, 700 * MiB + page);
  pinheap_free(h, p);

  /* calloc, aligned_alloc and realloc of large sizes: exact too */
  p = pinheap_calloc(h, 3, 33333);
  assert_non_null(p);
  assert_int_equal(pinheap_usable_size(h, p), round_page(99999));
  p = pinheap_realloc(h, p, 5 * MiB + 17);
  assert_non_null(p);
  assert_int_equal(pinheap_usable_size(h, p), 5 * MiB + page);
  pinheap_free(h, p);
  p = pinheap_aligned_alloc(h, 64 * KiB, 100000);
  assert_non_null(p);
  assert_int_equal(pinheap_usable_size(h, p), round_page(100000));
  pinheap_free(h, p);
  assert_heap_ok(h);
  pinheap_destroy(h);
}

/* ---- 8. owns ----------------------------------------------------------- */

static void test_owns(void **state) {
  (void)state;
  pinheap *h1 = fixed_heap(64 * MiB, PINHEAP_POLICY_TWO_ENDED);
  pinheap *h2 = fixed_heap(64 * MiB, PINHEAP_POLICY_TWO_ENDED);
  char *s1 = pinheap_malloc(h1, 24), *l1 = pinheap_malloc(h1, 1 * MiB);
  char *s2 = pinheap_malloc(h2, 24), *l2 = pinheap_malloc(h2, 1 * MiB);
  assert_non_null(s1);
  assert_non_null(l1);
  assert_non_null(s2);
  assert_non_null(l2);
  int local = 0;
  char *m = malloc(64);
  assert_non_null(m);

  assert_true(pinheap_owns(h1, s1));
  assert_true(pinheap_owns(h1, l1));
  assert_true(pinheap_owns(h1, l1 + 1 * MiB - 1));
  assert_true(pinheap_owns(h2, s2));
  assert_true(pinheap_owns(h2, l2));
  assert_false(pinheap_owns(h1, &local));
  assert_false(pinheap_owns(h1, m));
  assert_false(pinheap_owns(h1, s2));
  assert_false(pinheap_owns(h1, l2));
  assert_false(pinheap_owns(h2, s1));
  assert_false(pinheap_owns(h2, l1));
  assert_false(pinheap_owns(h1, NULL));
  assert_false(pinheap_owns(NULL, s1));

  free(m);
  pinheap_free(h1, s1);
  pinheap_free(h1, l1);
  pinheap_free(h2, s2);
  pinheap_free(h2, l2);
  assert_heap_ok(h1);
  assert_heap_ok(h2);
  pinheap_destroy(h1);
  pinheap_destroy(h2);
}

/* ---- 9. realloc -------------------------------------------------------- */

static void test_realloc_content(void **state) {
  (void)state;
  pinheap *h = fixed_heap(256 * MiB, PINHEAP_POLICY_TWO_ENDED);

  /* small -> small (grow, shrink) */
  char *p = pinheap_malloc(h, 100);
  assert_non_null(p);
  fill(p, 100, 1);
  p = pinheap_realloc(h, p, 1000);
  assert_non_null(p);
  assert_true(check_fill(p, 100, 1));
  fill(p, 1000, 2);
  p = pinheap_realloc(h, p, 50);
  assert_non_null(p);
  assert_true(check_fill(p, 50, 2));
  fill(p, 50, 3);
  /* small -> large */
  p = pinheap_realloc(h, p, 1 * MiB);
  assert_non_null(p);
  assert_true(check_fill(p, 50, 3));
  assert_int_equal(pinheap_usable_size(h, p), 1 * MiB);
  assert_int_equal(stats_of(h).large_blocks, 1);
  fill(p, 1 * MiB, 4);
  /* large -> large (grow, wherever it lands) */
  p = pinheap_realloc(h, p, 3 * MiB + 5);
  assert_non_null(p);
  assert_int_equal(pinheap_usable_size(h, p), 3 * MiB + page);
  assert_true(check_fill(p, 1 * MiB, 4));
  /* large -> small keeps content */
  p = pinheap_realloc(h, p, 300);
  assert_non_null(p);
  assert_true(check_fill(p, 300, 4));
  pinheap_stats s = stats_of(h);
  assert_int_equal(s.large_blocks, 0);
  assert_int_equal(s.large_allocated, 0);
  assert_true(pinheap_usable_size(h, p) >= 300);
  pinheap_free(h, p);
  assert_heap_ok(h);
  pinheap_destroy(h);
}

/* Grows a block of `first` bytes, the only large block of a fresh heap, to
 * `grown` bytes and shrinks it to `shrunk` bytes: both in place. */
static void realloc_in_place(size_t first, size_t grown, size_t shrunk) {
  pinheap *h = fixed_heap(256 * MiB, PINHEAP_POLICY_TWO_ENDED);
  char *a = pinheap_malloc(h, first);
  assert_non_null(a);
  fill(a, first, 4);
  pinheap_stats s0 = stats_of(h);
  assert_true(s0.largest_free >= grown); /* room for it somewhere */
  char *r = pinheap_realloc(h, a, grown);
  if (r != a) {
    pinheap_stats s = stats_of(h);
    print_error("realloc(%p of %zu bytes, %zu) moved to %p: in_use %zu, largest_free %zu, free_extents %zu\n",
                (void *)a, first, grown, (void *)r, s.in_use, s.largest_free, s.free_extents);
  }
  assert_ptr_equal(r, a);
  assert_int_equal(pinheap_usable_size(h, r), grown);
  assert_true(check_fill(r, first, 4));
  pinheap_stats s1 = stats_of(h);
  assert_int_equal(s1.large_allocated, grown);
  assert_int_equal(s1.large_blocks, 1);
  assert_int_equal(s1.free_bytes + (grown - round_page(first)), s0.free_bytes);
  assert_heap_ok(h);
  fill_at(r, grown - 4096, 4096, 5);

  /* same page count: same pointer */
  r = pinheap_realloc(h, a, grown - 100);
  assert_ptr_equal(r, a);
  assert_int_equal(pinheap_usable_size(h, r), grown);

  /* shrinks in place and gives the tail back */
  r = pinheap_realloc(h, a, shrunk);
  assert_ptr_equal(r, a);
  assert_int_equal(pinheap_usable_size(h, r), shrunk);
  assert_true(check_fill(r, first < shrunk ? first : shrunk, 4));
  pinheap_stats s2 = stats_of(h);
  assert_int_equal(s2.large_allocated, shrunk);
  assert_int_equal(s2.large_blocks, 1);
  assert_int_equal(s2.free_bytes, s1.free_bytes + (grown - shrunk));
  assert_heap_ok(h);
  /* and can grow in place again into the tail it gave back */
  r = pinheap_realloc(h, a, grown);
  assert_ptr_equal(r, a);
  assert_true(check_fill(r, first < shrunk ? first : shrunk, 4));
  pinheap_free(h, r);
  assert_heap_ok(h);
  pinheap_destroy(h);
}

/* A block of at most small_extent_max (4 MiB) is placed from the top, so the
 * block above it is the one allocated just before: once that one is freed,
 * the lower block grows in place into its space. */
static void test_realloc_in_place_1mib(void **state) {
  (void)state;
  pinheap *h = fixed_heap(256 * MiB, PINHEAP_POLICY_TWO_ENDED);
  char *a = pinheap_malloc(h, 1 * MiB);
  char *b = pinheap_malloc(h, 1 * MiB + 100);
  assert_non_null(a);
  assert_non_null(b);
  assert_ptr_equal(b + 1 * MiB + 4096, a); /* b right below a */
  fill(b, 1 * MiB + 100, 4);
  char *moved = pinheap_realloc(h, b, 2 * MiB); /* a is in the way: moves (over b's room, but for the
                                                   debugging aids' realloc, which valgrind turns on) */
  assert_ptr_not_equal(moved, b);
  assert_true(check_fill(moved, 1 * MiB + 100, 4));
  pinheap_free(h, moved);
  b = pinheap_malloc(h, 1 * MiB + 100);
  fill(b, 1 * MiB + 100, 4);
  pinheap_free(h, a);
  char *r = pinheap_realloc(h, b, 2 * MiB);
  assert_ptr_equal(r, b);
  assert_int_equal(pinheap_usable_size(h, r), 2 * MiB);
  assert_true(check_fill(r, 1 * MiB + 100, 4));
  assert_heap_ok(h);
  pinheap_destroy(h);
}

/* The same with a block above small_extent_max (4 MiB). */
static void test_realloc_in_place_5mib(void **state) {
  (void)state;
  realloc_in_place(5 * MiB + 100, 16 * MiB, 6 * MiB);
}

/* Growth when the next extent is taken: moves, keeps content. */
static void test_realloc_moves(void **state) {
  (void)state;
  pinheap *h = fixed_heap(256 * MiB, PINHEAP_POLICY_TWO_ENDED);
  /* two blocks above small_extent_max: both from the bottom, b right after a */
  char *a = pinheap_malloc(h, 5 * MiB);
  char *b = pinheap_malloc(h, 5 * MiB);
  assert_non_null(a);
  assert_non_null(b);
  assert_ptr_equal(b, a + 5 * MiB);
  fill(a, 1 * MiB, 6);
  fill_at(a, 5 * MiB - 4096, 4096, 8);
  fill(b, 4096, 7);
  char *r = pinheap_realloc(h, a, 8 * MiB);
  assert_non_null(r);
  assert_ptr_not_equal(r, a);
  assert_true(r + 8 * MiB <= b || r >= b + 5 * MiB); /* no overlap with b */
  assert_int_equal(pinheap_usable_size(h, r), 8 * MiB);
  assert_true(check_fill(r, 1 * MiB, 6));
  assert_true(check_at(r, 5 * MiB - 4096, 4096, 8));
  assert_true(check_fill(b, 4096, 7));
  pinheap_stats s = stats_of(h);
  assert_int_equal(s.large_blocks, 2);
  assert_int_equal(s.large_allocated, 13 * MiB);
  assert_heap_ok(h);
  /* a's old extent is free again: a block of its size lands there */
  char *c = pinheap_malloc(h, 5 * MiB);
  assert_ptr_equal(c, a);
  pinheap_free(h, c);
  pinheap_free(h, r);
  pinheap_free(h, b);
  assert_heap_ok(h);
  pinheap_destroy(h);
}

/* Blocks under 64 KiB take the lowest free extent that holds them, apart
 * from the slabs at the top, under two-ended and first fit; one of 64 KiB
 * or more below small_extent_max goes to the top. The ring keeps them at the
 * top, out of its arrays' way. */
static void test_blocks_under_64k_at_the_bottom(void **state) {
  (void)state;
  pinheap *ring = fixed_heap(256 * MiB, PINHEAP_POLICY_RING);
  char *top = pinheap_malloc(ring, 16 * KiB);
  pinheap_region rr;
  assert_int_equal(pinheap_region_of(ring, top, &rr), 0);
  assert_true(top > (char *)rr.base + rr.size / 2);
  pinheap_free(ring, top);
  pinheap_destroy(ring);
  const pinheap_policy policies[] = {PINHEAP_POLICY_TWO_ENDED, PINHEAP_POLICY_FIRST_FIT};
  for (size_t k = 0; k < sizeof policies / sizeof policies[0]; k++) {
    pinheap *h = fixed_heap(256 * MiB, policies[k]);
    void *obj = pinheap_malloc(h, 100);
    char *a = pinheap_malloc(h, 16 * KiB), *b = pinheap_malloc(h, 60 * KiB), *c = pinheap_malloc(h, 64 * KiB);
    assert_non_null(obj);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    pinheap_region r;
    assert_int_equal(pinheap_region_of(h, a, &r), 0);
    if (a != (char *)r.base || b != a + 16 * KiB)
      fail_msg("%s: 16 and 60 KiB at %#zx and %#zx into the region, not 0 and 0x4000",
               pinheap_policy_name(policies[k]), (size_t)(a - (char *)r.base), (size_t)(b - (char *)r.base));
    assert_true(c > (char *)r.base + r.size / 2);
    assert_true((char *)obj > (char *)r.base + r.size / 2);
    pinheap_free(h, a);
    char *d = pinheap_malloc(h, 14 * KiB + 1); /* 16 KiB again, in a's place */
    assert_ptr_equal(d, a);
    pinheap_free(h, d);
    pinheap_free(h, b);
    pinheap_free(h, c);
    pinheap_free(h, obj);
    assert_heap_ok(h);
    pinheap_destroy(h);
  }
}

/* ---- 10. stats --------------------------------------------------------- */

static size_t max_in_use;
static pinheap_stats snap(pinheap *h) {
  pinheap_stats s = stats_of(h);
  if (s.in_use > max_in_use) max_in_use = s.in_use;
  return s;
}

static void test_stats(void **state) {
  (void)state;
  max_in_use = 0;
  const size_t cap = 512 * MiB;
  pinheap *h = fixed_heap(cap, PINHEAP_POLICY_TWO_ENDED);
  pinheap_stats s0 = snap(h);
  assert_int_equal(s0.capacity, cap);
  assert_int_equal(s0.allocated, 0);
  assert_int_equal(s0.large_allocated, 0);
  assert_int_equal(s0.large_blocks, 0);
  assert_true(s0.in_use < 16 * MiB);

  char *big = pinheap_malloc(h, 100 * MiB);
  assert_non_null(big);
  pinheap_stats s1 = snap(h);
  assert_int_equal(s1.capacity, cap);
  assert_true(s1.in_use >= s0.in_use + 100 * MiB);
  assert_true(s1.allocated >= 100 * MiB);
  assert_int_equal(s1.large_allocated, 100 * MiB);
  assert_int_equal(s1.large_blocks, 1);
  assert_true(s1.largest_free >= cap - 100 * MiB - 16 * MiB);

  enum { NS = 1000 };
  void *sm[NS];
  for (int i = 0; i < NS; i++) {
    sm[i] = pinheap_malloc(h, 64);
    assert_non_null(sm[i]);
  }
  char *b2 = pinheap_malloc(h, 50 * MiB);
  assert_non_null(b2);
  pinheap_stats s2 = snap(h);
  assert_true(s2.allocated >= 150 * MiB + NS * 64);
  assert_true(s2.in_use >= s1.in_use + 50 * MiB);
  assert_int_equal(s2.large_blocks, 2);
  assert_int_equal(s2.large_allocated, 150 * MiB);

  /* a hole at the bottom: two free extents, the hole among them */
  pinheap_free(h, big);
  pinheap_stats s3 = snap(h);
  assert_true(s3.free_extents >= 2);
  assert_true(s3.largest_free >= 100 * MiB);
  assert_int_equal(s3.free_bytes, s2.free_bytes + 100 * MiB);
  assert_int_equal(s3.large_blocks, 1);
  assert_true(s3.peak_in_use >= max_in_use);

  pinheap_free(h, b2);
  for (int i = 0; i < NS; i++) pinheap_free(h, sm[i]);
  pinheap_trim(h);
  pinheap_stats s4 = snap(h);
  assert_int_equal(s4.capacity, cap);
  assert_int_equal(s4.free_extents, 1);
  assert_int_equal(s4.largest_free, s4.free_bytes);
  if (s4.largest_free < cap - 16 * MiB)
    print_error("after trim: largest_free %zu, in_use %zu\n", s4.largest_free, s4.in_use);
  assert_true(s4.largest_free >= cap - 16 * MiB);
  assert_int_equal(s4.allocated, 0);
  assert_int_equal(s4.large_allocated, 0);
  assert_int_equal(s4.large_blocks, 0);
  assert_true(s4.peak_in_use >= max_in_use);
  assert_true(s4.peak_in_use >= s0.in_use + 150 * MiB);
  assert_heap_ok(h);
  pinheap_destroy(h);
}

/* ---- 11. exhaustion and recovery --------------------------------------- */

static size_t fill_until_null(pinheap *h, size_t size, void **v, size_t max, bool touch) {
  size_t n = 0;
  arm_error();
  while (n < max) {
    void *p = pinheap_malloc(h, size);
    if (!p) {
      int e = errno;
      assert_error_set(e, ENOMEM);
      char num[32];
      snprintf(num, sizeof num, "%zu", size);
      assert_contains(pinheap_last_error(), num);
      assert_contains(pinheap_last_error(), "free");
      assert_contains(pinheap_last_error(), "largest");
      return n;
    }
    if (touch) *(volatile char *)p = 1;
    v[n++] = p;
  }
  print_error("malloc(%zu) never failed after %zu blocks\n", size, n);
  fail();
  return n;
}

static void test_exhaustion(void **state) {
  (void)state;
  /* large blocks */
  pinheap *h = fixed_heap(256 * MiB, PINHEAP_POLICY_TWO_ENDED);
  void *v[512];
  size_t n1 = fill_until_null(h, 1 * MiB, v, 512, true);
  /* Every MiB of the region: its arenas took none of it. */
  assert_int_equal(n1, 256);
  assert_heap_ok(h);
  for (size_t i = 0; i < n1; i++) pinheap_free(h, v[i]);
  pinheap_trim(h);
  assert_heap_ok(h);
  size_t n2 = fill_until_null(h, 1 * MiB, v, 512, true);
  if (n2 + 1 < n1 || n2 > n1 + 1) print_error("first fill %zu blocks, second %zu\n", n1, n2);
  assert_true(n2 + 1 >= n1 && n2 <= n1 + 1);
  for (size_t i = 0; i < n2; i++) pinheap_free(h, v[i]);
  assert_heap_ok(h);
  pinheap_destroy(h);

  /* small objects, then one large block: with and without trim first */
  size_t max = 64 * MiB / 512 + 1;
  void **w = malloc(max * sizeof *w);
  assert_non_null(w);
  for (int with_trim = 1; with_trim >= 0; with_trim--) {
    h = fixed_heap(64 * MiB, PINHEAP_POLICY_TWO_ENDED);
    size_t n = fill_until_null(h, 512, w, max, true);
    assert_true(n >= 48 * MiB / 512);
    assert_heap_ok(h);
    for (size_t i = 0; i < n; i++) pinheap_free(h, w[i]);
    if (with_trim) pinheap_trim(h);
    arm_error();
    char *p = pinheap_malloc(h, 52 * MiB);
    if (!p)
      print_error("%s trim: malloc(52 MiB) after freeing %zu small objects: %s\n", with_trim ? "with" : "without", n,
                  pinheap_last_error());
    assert_non_null(p);
    p[0] = 1;
    p[52 * MiB - 1] = 1;
    assert_heap_ok(h);
    pinheap_free(h, p);
    /* and small objects again */
    void *s = pinheap_malloc(h, 512);
    assert_non_null(s);
    pinheap_free(h, s);
    assert_heap_ok(h);
    pinheap_destroy(h);
  }
  free(w);
}

/* ---- 12. cross-thread reuse -------------------------------------------- */

typedef struct xthread {
  pinheap *h;
  bool small; /* A fills with small objects (else one 52 MiB block) */
  pthread_mutex_t m;
  pthread_cond_t c;
  int stage; /* 0 start, 1 A freed everything, 2 B done */
  /* results, checked by the main thread */
  size_t a_count;
  bool a_failed;
  char a_msg[512];
  size_t largest_before_b;
  void *b_ptr;
  int b_errno;
  char b_msg[512];
} xthread;

static void xt_set(xthread *x, int stage) {
  pthread_mutex_lock(&x->m);
  x->stage = stage;
  pthread_cond_broadcast(&x->c);
  pthread_mutex_unlock(&x->m);
}

static void xt_wait(xthread *x, int stage) {
  pthread_mutex_lock(&x->m);
  while (x->stage < stage) pthread_cond_wait(&x->c, &x->m);
  pthread_mutex_unlock(&x->m);
}

static void *xt_a(void *arg) {
  xthread *x = arg;
  if (x->small) {
    size_t n = 56 * MiB / KiB;
    void **v = malloc(n * sizeof *v);
    if (!v) abort();
    for (size_t i = 0; i < n; i++) {
      v[i] = pinheap_malloc(x->h, KiB);
      if (!v[i]) {
        x->a_failed = true;
        snprintf(x->a_msg, sizeof x->a_msg, "%s", pinheap_last_error());
        n = i;
        break;
      }
      *(volatile char *)v[i] = 1;
    }
    x->a_count = n;
    for (size_t i = 0; i < n; i++) pinheap_free(x->h, v[i]);
    free(v);
  } else {
    char *p = pinheap_malloc(x->h, 52 * MiB);
    if (!p) {
      x->a_failed = true;
      snprintf(x->a_msg, sizeof x->a_msg, "%s", pinheap_last_error());
    } else {
      p[0] = p[52 * MiB - 1] = 1;
      x->a_count = 1;
      pinheap_free(x->h, p);
    }
  }
  pinheap_stats s;
  if (pinheap_get_stats(x->h, &s) == 0) x->largest_before_b = s.largest_free;
  xt_set(x, 1);
  xt_wait(x, 2); /* stay alive, holding this thread's cache */
  return NULL;
}

static void *xt_b(void *arg) {
  xthread *x = arg;
  xt_wait(x, 1);
  char *p = pinheap_malloc(x->h, 52 * MiB);
  x->b_errno = errno;
  x->b_ptr = p;
  if (!p) {
    snprintf(x->b_msg, sizeof x->b_msg, "%s", pinheap_last_error());
  } else {
    p[0] = p[52 * MiB - 1] = 1;
    pinheap_free(x->h, p);
  }
  xt_set(x, 2);
  return NULL;
}

static void run_cross_thread(bool small) {
  xthread x;
  memset(&x, 0, sizeof x);
  x.h = fixed_heap(64 * MiB, PINHEAP_POLICY_TWO_ENDED);
  x.small = small;
  pthread_mutex_init(&x.m, NULL);
  pthread_cond_init(&x.c, NULL);
  pthread_t a, b;
  assert_int_equal(pthread_create(&a, NULL, xt_a, &x), 0);
  assert_int_equal(pthread_create(&b, NULL, xt_b, &x), 0);
  pthread_join(b, NULL);
  pthread_join(a, NULL);
  if (x.a_failed) print_error("thread A failed after %zu allocations: %s\n", x.a_count, x.a_msg);
  assert_false(x.a_failed);
  if (small && x.largest_before_b >= 52 * MiB)
    print_error("note: %zu bytes free in one extent before B asked: the cache of A held nothing back\n",
                x.largest_before_b);
  if (!x.b_ptr)
    print_error("thread B: malloc(52 MiB) with A alive (%s): errno %d: %s\n", small ? "small objects" : "large block",
                x.b_errno, x.b_msg);
  assert_non_null(x.b_ptr);
  assert_heap_ok(x.h);
  pthread_cond_destroy(&x.c);
  pthread_mutex_destroy(&x.m);
  pinheap_destroy(x.h);
}

static void test_cross_thread_small(void **state) {
  (void)state;
  run_cross_thread(true);
}

static void test_cross_thread_large(void **state) {
  (void)state;
  run_cross_thread(false);
}

/* ---- 13. foreign and double free abort --------------------------------- */

enum free_case { FREE_STACK, FREE_MALLOC, FREE_TWICE, FREE_INTERIOR };

struct free_job {
  pinheap *h;
  enum free_case which;
  void *ptr;
};

static void free_child(void *arg) {
  struct free_job *j = arg;
  if (j->which == FREE_TWICE) pinheap_free(j->h, j->ptr);
  pinheap_free(j->h, j->ptr);
}

static void run_free_case(pinheap *h, enum free_case which, void *ptr, const char *name) {
  struct free_job job = {h, which, ptr};
  child_result r;
  child_run(free_child, &job, &r);
  if (!child_aborted(&r))
    print_error("free of %s (%p): child status %#x, stderr \"%s\"\n", name, ptr, r.status, r.err);
  assert_true(child_aborted(&r));
  char pstr[32];
  snprintf(pstr, sizeof pstr, "%p", ptr);
  assert_contains(r.err, "pinheap");
  assert_contains(r.err, pstr);
}

static void test_bad_free_aborts(void **state) {
  (void)state;
  pinheap *h = fixed_heap(64 * MiB, PINHEAP_POLICY_TWO_ENDED);
  int local = 0;
  char *m = malloc(64);
  char *big = pinheap_malloc(h, 1 * MiB);
  char *small = pinheap_malloc(h, 64);
  assert_non_null(m);
  assert_non_null(big);
  assert_non_null(small);
  run_free_case(h, FREE_STACK, &local, "a stack variable");
  run_free_case(h, FREE_MALLOC, m, "a malloc()'d pointer");
  run_free_case(h, FREE_TWICE, big, "a large block freed twice");
  run_free_case(h, FREE_INTERIOR, big + 4096, "an interior pointer of a large block");
  /* The parent's heap is untouched by the children. */
  assert_int_equal(pinheap_usable_size(h, big), 1 * MiB);
  assert_heap_ok(h);
  pinheap_free(h, big);
  pinheap_free(h, small);
  free(m);
  assert_heap_ok(h);
  pinheap_destroy(h);
}

/* ---- 14. SIMPLE mode --------------------------------------------------- */

/* SIMPLE heaps catch foreign pointers too: the heap knows the pages jemalloc
 * mapped for its arenas. */
static void test_simple_foreign_free_aborts(void **state) {
  (void)state;
  pinheap_options o;
  pinheap_options_init(&o);
  o.mode = PINHEAP_SIMPLE;
  o.arenas = 1;
  pinheap *h = pinheap_create(&o), *other = pinheap_create(&o);
  assert_non_null(h);
  assert_non_null(other);
  int local = 0;
  char *m = malloc(64), *mine = pinheap_malloc(h, 64), *big = pinheap_malloc(h, 3 * MiB);
  char *theirs = pinheap_malloc(other, 64);
  assert_true(pinheap_owns(h, mine));
  assert_true(pinheap_owns(h, big + 3 * MiB - 1));
  assert_false(pinheap_owns(h, &local));
  assert_false(pinheap_owns(h, m));
  assert_false(pinheap_owns(h, theirs));
  assert_true(pinheap_owns(other, theirs));
  run_free_case(h, FREE_STACK, &local, "a stack variable (SIMPLE)");
  run_free_case(h, FREE_MALLOC, m, "a malloc()'d pointer (SIMPLE)");
  run_free_case(h, FREE_MALLOC, theirs, "another heap's pointer (SIMPLE)");
  pinheap_free(h, mine);
  pinheap_free(h, big);
  pinheap_free(other, theirs);
  free(m);
  pinheap_destroy(other);
  pinheap_destroy(h);
}

static void test_simple_mode(void **state) {
  (void)state;
  pinheap *h = simple_heap();
  pinheap *other = simple_heap();
  static const size_t sizes[] = {0, 1, 100, 4096, 32 * KiB, 32 * KiB + 1, 1 * MiB, 5 * MiB + 3};
  enum { NS = sizeof sizes / sizeof sizes[0] };
  char *p[NS];
  for (size_t i = 0; i < NS; i++) {
    p[i] = pinheap_malloc(h, sizes[i]);
    assert_non_null(p[i]);
    assert_true(pinheap_owns(h, p[i]));
    assert_false(pinheap_owns(other, p[i]));
    size_t u = pinheap_usable_size(h, p[i]);
    assert_true(u >= sizes[i]);
    size_t n = sizes[i] < 4096 ? sizes[i] : 4096;
    fill(p[i], n, (unsigned)i);
  }
  for (size_t i = 0; i < NS; i++) {
    size_t n = sizes[i] < 4096 ? sizes[i] : 4096;
    assert_true(check_fill(p[i], n, (unsigned)i));
  }

  /* 100 MiB: only the ends are touched */
  char *huge = pinheap_malloc(h, 100 * MiB);
  assert_non_null(huge);
  assert_true(pinheap_owns(h, huge));
  assert_false(pinheap_owns(other, huge));
  assert_true(pinheap_usable_size(h, huge) >= 100 * MiB);
  huge[0] = 1;
  huge[100 * MiB - 1] = 2;
  char *hz = pinheap_calloc(h, 100, MiB);
  assert_non_null(hz);
  assert_true(pinheap_owns(h, hz));
  assert_true(all_zero(hz, 4096));
  assert_true(all_zero(hz + 50 * MiB, 4096));
  assert_true(all_zero(hz + 100 * MiB - 4096, 4096));
  pinheap_stats s = stats_of(h);
  assert_true(s.capacity > 0);
  assert_true(s.allocated >= 200 * MiB);
  assert_true(s.peak_in_use >= s.in_use);
  pinheap_free(h, hz);

  /* calloc small after dirtying */
  char *d = pinheap_malloc(h, 200);
  assert_non_null(d);
  memset(d, 0xAB, 200);
  pinheap_free(h, d);
  char *cz = pinheap_calloc(h, 20, 10);
  assert_non_null(cz);
  assert_true(all_zero(cz, 200));

  /* realloc small -> large -> huge -> small keeps content */
  char *r = pinheap_malloc(h, 100);
  assert_non_null(r);
  fill(r, 100, 9);
  r = pinheap_realloc(h, r, 64 * KiB);
  assert_non_null(r);
  assert_true(check_fill(r, 100, 9));
  r = pinheap_realloc(h, r, 100 * MiB);
  assert_non_null(r);
  assert_true(check_fill(r, 100, 9));
  assert_true(pinheap_owns(h, r));
  r = pinheap_realloc(h, r, 50);
  assert_non_null(r);
  assert_true(check_fill(r, 50, 9));
  assert_null(pinheap_realloc(h, r, 0));

  /* aligned_alloc */
  for (size_t align = 8; align <= 4 * MiB; align <<= 2) {
    char *a = pinheap_aligned_alloc(h, align, 1000);
    assert_non_null(a);
    assert_int_equal((uintptr_t)a % align, 0);
    assert_true(pinheap_owns(h, a));
    assert_true(pinheap_usable_size(h, a) >= 1000);
    a[999] = 1;
    pinheap_free(h, a);
  }
  assert_fails(pinheap_aligned_alloc(h, 3, 10), EINVAL);
  assert_fails(pinheap_aligned_alloc(h, 0, 10), EINVAL);

  char *o = pinheap_malloc(other, 100);
  assert_non_null(o);
  assert_true(pinheap_owns(other, o));
  assert_false(pinheap_owns(h, o));

  for (size_t i = 0; i < NS; i++) pinheap_free(h, p[i]);
  pinheap_free(h, huge);
  pinheap_free(h, cz);
  pinheap_free(other, o);
  pinheap_trim(h);
  assert_heap_ok(h);
  assert_heap_ok(other);
  pinheap_destroy(other);
  pinheap_destroy(h);
}

/* An impossible size (more than the address space: above PTRDIFF_MAX) is
 * ENOMEM in a SIMPLE heap too, for every allocating function. */
static void test_simple_impossible_size(void **state) {
  (void)state;
  pinheap *h = simple_heap();
  void *p = pinheap_malloc(h, 64);
  assert_non_null(p);
  memset(p, 0x3c, 64);
  assert_fails(pinheap_realloc(h, p, SIZE_MAX), ENOMEM);
  assert_fails(pinheap_realloc(h, p, (size_t)PTRDIFF_MAX + 1), ENOMEM);
  assert_int_equal(((unsigned char *)p)[63], 0x3c);
  assert_fails(pinheap_aligned_alloc(h, 64, SIZE_MAX), ENOMEM);
  assert_fails(pinheap_calloc(h, SIZE_MAX / 2, 4), ENOMEM);
  assert_fails(pinheap_malloc(h, SIZE_MAX), ENOMEM);
  assert_fails(pinheap_malloc(h, (size_t)PTRDIFF_MAX + 1), ENOMEM);
  assert_fails(pinheap_calloc(h, 1, SIZE_MAX), ENOMEM);
  pinheap_free(h, p);
  assert_heap_ok(h);
  pinheap_destroy(h);
}

/* ---- 15. destroy and independence -------------------------------------- */

typedef struct live_thread {
  pinheap *h;
  pthread_mutex_t m;
  pthread_cond_t c;
  int stage;
  bool ok;
} live_thread;

static void *live_thread_main(void *arg) {
  live_thread *t = arg;
  void *a = pinheap_malloc(t->h, 100), *b = pinheap_malloc(t->h, 200), *c = pinheap_malloc(t->h, 2 * MiB);
  t->ok = a && b && c;
  if (b) pinheap_free(t->h, b); /* something in this thread's cache */
  pthread_mutex_lock(&t->m);
  t->stage = 1;
  pthread_cond_broadcast(&t->c);
  while (t->stage < 2) pthread_cond_wait(&t->c, &t->m);
  pthread_mutex_unlock(&t->m);
  return NULL; /* exits after the heap is gone */
}

/* The local provider's options, and a region that cannot be had. */
static void test_provider_options(void **state) {
  (void)state;
  pinheap_options o;
  pinheap_options_init(&o);
  o.size = 16 * MiB;
  o.arenas = TEST_ARENAS;
  o.prefault = true;
  o.hugepages = true;
  pinheap *h = pinheap_create(&o);
  assert_non_null(h);
  char *p = pinheap_malloc(h, 1 * MiB);
  assert_non_null(p);
  /* Pre-faulted pages read as zero: malloc'd memory, undefined for memcheck,
   * which does not know what the test knows. */
  VALGRIND_MAKE_MEM_DEFINED(p, 1 * MiB);
  for (size_t i = 0; i < 1 * MiB; i += 4096) assert_int_equal(p[i], 0);
  pinheap_free(h, p);
  assert_heap_ok(h);
  pinheap_destroy(h);

  o.prefault = o.hugepages = false;
  o.lock = true;
  h = pinheap_create(&o);
  if (h) {
    assert_non_null(pinheap_malloc(h, 100));
    pinheap_destroy(h);
  } else {
    /* Locking may be refused by RLIMIT_MEMLOCK: then a clear error. */
    assert_true(errno == EPERM || errno == ENOMEM);
    assert_non_null(strstr(pinheap_last_error(), "lock"));
  }

  /* No address space for the region: ENOMEM naming the size. (Not under
   * AddressSanitizer, whose shadow memory needs more address space than the
   * limit leaves.) */
#if defined(__SANITIZE_ADDRESS__) || defined(PINHEAP_TEST_ASAN)
  return;
#endif
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    struct rlimit lim = {.rlim_cur = (rlim_t)2 << 30, .rlim_max = (rlim_t)2 << 30};
    setrlimit(RLIMIT_AS, &lim);
    o.lock = false;
    o.size = (size_t)4 << 30;
    pinheap *big = pinheap_create(&o);
    int ok = big == NULL && errno == ENOMEM && strstr(pinheap_last_error(), "4294967296") != NULL &&
             strstr(pinheap_last_error(), "reserve") != NULL;
    _exit(ok ? 0 : 1);
  }
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
}

/* Regressions found in review: jemalloc must only ever serve its small
 * classes in a FIXED heap, or grants it keeps a tail of never come back. */
static void test_jemalloc_small_classes_only(void **state) {
  (void)state;
  pinheap_options o;
  pinheap_options_init(&o);
  o.size = 64 * MiB;
  o.arenas = 1;
  o.large_threshold = 64 * KiB; /* above jemalloc's small classes: clamped */
  pinheap *h = pinheap_create(&o);
  assert_non_null(h);
  for (int i = 0; i < 3000; i++) {
    void *p = pinheap_malloc(h, 36000);
    assert_non_null(p);
    pinheap_free(h, p);
    void *q = pinheap_aligned_alloc(h, 4096, 12289); /* 16 KiB once aligned */
    assert_non_null(q);
    assert_int_equal((uintptr_t)q % 4096, 0);
    pinheap_free(h, q);
  }
  pinheap_trim(h);
  pinheap_stats st = stats_of(h);
  assert_true(st.largest_free + 8 * MiB >= st.capacity);
  assert_heap_ok(h);
  void *z = pinheap_aligned_alloc(h, 8192, 0); /* any size, 0 included */
  assert_non_null(z);
  assert_int_equal((uintptr_t)z % 8192, 0);
  pinheap_free(h, z);
  pinheap_destroy(h);
}

/* pinheap_check counts broken invariants; destroy reports live blocks. */
static void test_check_and_destroy_report(void **state) {
  (void)state;
  errno = 0;
  assert_int_equal(pinheap_check(NULL), -1);
  assert_int_equal(errno, EINVAL);
  pinheap *h = fixed_heap(64 * MiB, PINHEAP_POLICY_TWO_ENDED);
  void *a = pinheap_malloc(h, 1000), *b = pinheap_malloc(h, 3 * MiB);
  assert_int_equal(pinheap_check(h), 0);
  fprintf(stderr, "test_api: the reports below are expected (deliberate corruption)\n");
  h->core.space.em.free_bytes += page; /* a counter that no longer matches */
  assert_true(pinheap_check(h) > 0);
  h->core.space.em.free_bytes -= page;
  assert_int_equal(pinheap_check(h), 0);
  pinheap_free(h, a);
  (void)b;
  /* The report, read back through a pipe in place of stderr (not from a
   * forked child: jemalloc's stats crash in a forked child under valgrind's
   * memcheck). */
  int fds[2], saved = dup(STDERR_FILENO);
  assert_int_equal(pipe(fds), 0);
  fflush(stderr);
  dup2(fds[1], STDERR_FILENO);
  pinheap_destroy(h); /* b is still live */
  dup2(saved, STDERR_FILENO);
  close(saved);
  close(fds[1]);
  char buf[512] = {0};
  ssize_t n = read(fds[0], buf, sizeof buf - 1);
  close(fds[0]);
  assert_true(n > 0);
  assert_contains(buf, "still allocated");
  assert_contains(buf, "1 large block");
}

/* ---- arenas on first use --------------------------------------------- */

struct lazy_job {
  pinheap *h;
  pthread_barrier_t *all_in;
};

static void *lazy_thread(void *arg) {
  struct lazy_job *j = arg;
  void *p = pinheap_malloc(j->h, 100); /* this thread's cache, and its arena */
  pthread_barrier_wait(j->all_in);     /* every thread holds a cache at once */
  pinheap_free(j->h, p);
  return NULL;
}

/* A heap makes one arena at creation and the others as threads first need
 * them (a process that allocates little pays for one); in a FIXED heap they
 * all sit in the room kept for them at the top of the region, however late
 * they come, so that the rest comes back as one free extent. */
static void test_arenas_on_first_use(void **state) {
  (void)state;
  static const pinheap_mode modes[] = {PINHEAP_FIXED, PINHEAP_DYNAMIC, PINHEAP_SIMPLE};
  for (int m = 0; m < 3; m++) {
    pinheap_options o;
    pinheap_options_init(&o);
    o.mode = modes[m];
    o.size = modes[m] == PINHEAP_FIXED ? 256 * MiB : 0;
    o.arenas = 4;
    pinheap *h = pinheap_create(&o);
    assert_non_null(h);
    assert_int_equal(h->core.arenas.made, 1);
    unsigned made = 0, most = 0;
    assert_int_equal(pinheap_arena_count(h, &made, &most), 0);
    assert_int_equal(made, 1);
    assert_int_equal(most, 4);
    errno = 0;
    assert_int_equal(pinheap_arena_count(h, NULL, &most), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(pinheap_arena_count(NULL, &made, &most), -1);
    void *keep = pinheap_malloc(h, 3000); /* the main thread's arena: the first */
    assert_int_equal(h->core.arenas.made, 1);
    /* Blocks that fill the top of the region before the other arenas come. */
    void *mid[64];
    for (int i = 0; i < 64; i++) mid[i] = pinheap_malloc(h, 64 * KiB);
    pthread_barrier_t all_in;
    pthread_barrier_init(&all_in, NULL, 4);
    pthread_t t[3];
    struct lazy_job j = {h, &all_in};
    for (int i = 0; i < 3; i++) assert_int_equal(pthread_create(&t[i], NULL, lazy_thread, &j), 0);
    pthread_barrier_wait(&all_in);
    for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
    pthread_barrier_destroy(&all_in);
    assert_int_equal(h->core.arenas.made, 4);
    assert_int_equal(pinheap_arena_count(h, &made, &most), 0);
    assert_int_equal(made, 4);
    assert_int_equal(most, 4);
    assert_heap_ok(h);
    for (int i = 0; i < 64; i++) pinheap_free(h, mid[i]);
    pinheap_free(h, keep);
    pinheap_trim(h);
    assert_heap_ok(h);
    if (modes[m] == PINHEAP_FIXED) {
      /* Trimmed, the 4 arenas keep nothing: the region is one free extent. */
      pinheap_stats s = stats_of(h);
      print_message("FIXED, 4 arenas used and trimmed: largest free %zu of %zu\n", s.largest_free, s.capacity);
      assert_int_equal(s.largest_free, s.capacity);
    }
    pinheap_destroy(h);
  }
  /* The least size: 2 MiB whatever the arenas; under the bump policy, where
   * each arena keeps its first grant of 2 MiB, 2 MiB each and 2 MiB more. */
  pinheap_options o;
  pinheap_options_init(&o);
  o.mode = PINHEAP_FIXED;
  o.size = 2 * MiB;
  o.arenas = 64;
  pinheap *h = pinheap_create(&o);
  assert_non_null(h);
  void *p = pinheap_malloc(h, 100);
  assert_non_null(p);
  pinheap_free(h, p);
  pinheap_destroy(h);
  o.size = 2 * MiB - 4096;
  errno = 0;
  assert_null(pinheap_create(&o));
  assert_int_equal(errno, ENOMEM);
  assert_contains(pinheap_last_error(), "the least size that works is 2097152 bytes");
  o.policy = PINHEAP_POLICY_BUMP;
  o.arenas = 4;
  o.size = 8 * MiB;
  errno = 0;
  assert_null(pinheap_create(&o));
  assert_int_equal(errno, ENOMEM);
  assert_contains(pinheap_last_error(), "under the bump policy its 4 jemalloc arenas take 8 MiB");
  assert_contains(pinheap_last_error(), "the least size that works is 10485760 bytes");
  o.size = 10 * MiB;
  h = pinheap_create(&o);
  assert_non_null(h);
  assert_int_equal(stats_of(h).in_use, 8 * MiB);
  pinheap_destroy(h);
}

static void test_destroy_and_independence(void **state) {
  (void)state;
  /* destroy with live blocks, from this thread and from a thread still alive */
  pinheap *h = fixed_heap(64 * MiB, PINHEAP_POLICY_TWO_ENDED);
  live_thread t;
  memset(&t, 0, sizeof t);
  t.h = h;
  pthread_mutex_init(&t.m, NULL);
  pthread_cond_init(&t.c, NULL);
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, live_thread_main, &t), 0);
  pthread_mutex_lock(&t.m);
  while (t.stage < 1) pthread_cond_wait(&t.c, &t.m);
  pthread_mutex_unlock(&t.m);
  assert_true(t.ok);
  for (int i = 0; i < 100; i++) assert_non_null(pinheap_malloc(h, 16 + (size_t)i * 8));
  assert_non_null(pinheap_malloc(h, 5 * MiB));
  assert_heap_ok(h);
  pinheap_destroy(h);
  pthread_mutex_lock(&t.m);
  t.stage = 2;
  pthread_cond_broadcast(&t.c);
  pthread_mutex_unlock(&t.m);
  pthread_join(th, NULL);
  pthread_cond_destroy(&t.c);
  pthread_mutex_destroy(&t.m);
  /* SIMPLE too */
  pinheap *sh = simple_heap();
  assert_non_null(pinheap_malloc(sh, 100));
  assert_non_null(pinheap_malloc(sh, 3 * MiB));
  pinheap_destroy(sh);

  /* two heaps are independent */
  pinheap *h1 = fixed_heap(128 * MiB, PINHEAP_POLICY_TWO_ENDED);
  pinheap *h2 = fixed_heap(128 * MiB, PINHEAP_POLICY_TWO_ENDED);
  char *p2 = pinheap_malloc(h2, 1000), *l2 = pinheap_malloc(h2, 1 * MiB);
  assert_non_null(p2);
  assert_non_null(l2);
  fill(p2, 1000, 21);
  fill(l2, 64 * KiB, 22);
  pinheap_stats a0 = stats_of(h2);

  char *l1 = pinheap_malloc(h1, 100 * MiB);
  assert_non_null(l1);
  void *sm1[500];
  for (int i = 0; i < 500; i++) {
    sm1[i] = pinheap_malloc(h1, 1000);
    assert_non_null(sm1[i]);
    assert_false(pinheap_owns(h2, sm1[i]));
    memset(sm1[i], 0xEE, 1000);
  }
  assert_false(pinheap_owns(h2, l1));
  pinheap_stats a1 = stats_of(h2);
  assert_int_equal(a1.in_use, a0.in_use);
  assert_int_equal(a1.allocated, a0.allocated);
  assert_int_equal(a1.large_blocks, 1);
  assert_int_equal(a1.large_allocated, 1 * MiB);
  pinheap_stats b1 = stats_of(h1);
  assert_int_equal(b1.large_blocks, 1);
  assert_int_equal(b1.large_allocated, 100 * MiB);
  assert_true(b1.allocated >= 100 * MiB + 500 * 1000);

  /* exhausting h1 leaves h2 able to allocate */
  assert_fails(pinheap_malloc(h1, 30 * MiB), ENOMEM);
  void *ok = pinheap_malloc(h2, 30 * MiB);
  assert_non_null(ok);
  pinheap_free(h2, ok);

  pinheap_destroy(h1); /* with live blocks */
  assert_true(check_fill(p2, 1000, 21));
  assert_true(check_fill(l2, 64 * KiB, 22));
  p2 = pinheap_realloc(h2, p2, 5000);
  assert_non_null(p2);
  assert_true(check_fill(p2, 1000, 21));
  assert_heap_ok(h2);
  pinheap_free(h2, p2);
  pinheap_free(h2, l2);
  pinheap_trim(h2);
  pinheap_stats a2 = stats_of(h2);
  assert_int_equal(a2.allocated, 0);
  assert_int_equal(a2.free_extents, 1);
  assert_heap_ok(h2);
  pinheap_destroy(h2);
}

int main(int argc, char **argv) {
  page = (size_t)sysconf(_SC_PAGESIZE);
  seed_init(argc, argv, "test_api");

  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_options),
      cmocka_unit_test(test_seed_sequences),
      cmocka_unit_test(test_seed_sequences_bump),
      cmocka_unit_test(test_alloc_errors),
      cmocka_unit_test(test_edge_cases),
      cmocka_unit_test(test_calloc_zeroes),
      cmocka_unit_test(test_aligned_alloc),
      cmocka_unit_test(test_usable_size),
      cmocka_unit_test(test_owns),
      cmocka_unit_test(test_realloc_content),
      cmocka_unit_test(test_realloc_in_place_1mib),
      cmocka_unit_test(test_realloc_in_place_5mib),
      cmocka_unit_test(test_realloc_moves),
      cmocka_unit_test(test_blocks_under_64k_at_the_bottom),
      cmocka_unit_test(test_stats),
      cmocka_unit_test(test_exhaustion),
      cmocka_unit_test(test_cross_thread_small),
      cmocka_unit_test(test_cross_thread_large),
      cmocka_unit_test(test_bad_free_aborts),
      cmocka_unit_test(test_simple_mode),
      cmocka_unit_test(test_simple_foreign_free_aborts),
      cmocka_unit_test(test_simple_impossible_size),
      cmocka_unit_test(test_provider_options),
      cmocka_unit_test(test_jemalloc_small_classes_only),
      cmocka_unit_test(test_check_and_destroy_report),
      cmocka_unit_test(test_arenas_on_first_use),
      cmocka_unit_test(test_destroy_and_independence),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
