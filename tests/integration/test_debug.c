/*
 * Integration tests of the debugging aids (pinheap_options.debug): canaries
 * caught at free, at realloc and by pinheap_check, double frees of small
 * objects, writes after free caught when a thread's cache hands a block out
 * again, poisoned memory, the list of live blocks at destroy, and the
 * contents of blocks through realloc, in every mode. What must abort runs in
 * a forked child whose standard error is read back.
 *
 * The tests read freed memory on purpose (the poison): they are not for
 * valgrind.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asserts.h"
#include "child.h"
#include "counting.h"
#include "pinheap.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

static pinheap *debug_heap(pinheap_mode mode, unsigned flags) {
  pinheap_options o;
  pinheap_options_init(&o);
  o.mode = mode;
  o.size = mode == PINHEAP_FIXED ? 64 * MiB : 0;
  o.chunk_size = 8 * MiB;
  o.direct_threshold = 2 * MiB;
  o.arenas = 1;
  o.debug = flags;
  pinheap *h = pinheap_create(&o);
  if (!h) fail_msg("pinheap_create: %s", pinheap_last_error());
  return h;
}

static const pinheap_mode modes[] = {PINHEAP_FIXED, PINHEAP_DYNAMIC, PINHEAP_SIMPLE};
static const char *mode_names[] = {"fixed", "dynamic", "simple"};

/* Sizes that reach every path: small classes, a page multiple, large
 * blocks, a DYNAMIC heap's direct block. */
static const size_t sizes[] = {0, 1, 24, 100, 1000, 14336, 14337, 8192, 100000, 3 * MiB};

static void fill(unsigned char *p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i++) p[i] = (unsigned char)(seed + i * 13);
}

static void expect_fill(const unsigned char *p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != (unsigned char)(seed + i * 13)) fail_msg("byte %zu of %p: %#x, expected %#x", i, (const void *)p, p[i],
                                                          (unsigned char)(seed + i * 13));
}

/* Blocks keep their contents and sizes through realloc; usable_size is the
 * size asked for; nothing breaks a canary; the checker agrees. */
static void test_blocks_and_realloc(void **state) {
  (void)state;
  for (size_t m = 0; m < 3; m++) {
    pinheap *h = debug_heap(modes[m], PINHEAP_DEBUG_ALL);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
      size_t n = sizes[i];
      unsigned char *p = pinheap_malloc(h, n);
      assert_non_null(p);
      assert_int_equal(pinheap_usable_size(h, p), n);
      fill(p, n, (unsigned)i);
      for (size_t j = 0; j < sizeof sizes / sizeof sizes[0]; j++) {
        size_t to = sizes[j] ? sizes[j] : 1;
        unsigned char *q = pinheap_realloc(h, p, to);
        if (!q) fail_msg("%s: realloc %zu -> %zu: %s", mode_names[m], n, to, pinheap_last_error());
        expect_fill(q, n < to ? n : to, (unsigned)i);
        assert_int_equal(pinheap_usable_size(h, q), to);
        fill(q, to, (unsigned)i);
        n = to;
        p = q;
      }
      assert_int_equal(pinheap_check(h), 0);
      pinheap_free(h, p);
      unsigned char *z = pinheap_calloc(h, 1, sizes[i]);
      assert_non_null(z);
      for (size_t k = 0; k < sizes[i]; k++)
        if (z[k]) fail_msg("%s: calloc(%zu) byte %zu is %#x", mode_names[m], sizes[i], k, z[k]);
      unsigned char *a = pinheap_aligned_alloc(h, 4096, sizes[i]);
      assert_non_null(a);
      assert_int_equal((uintptr_t)a % 4096, 0);
      fill(a, sizes[i], 7);
      pinheap_free(h, a);
      pinheap_free(h, z);
    }
    assert_int_equal(pinheap_check(h), 0);
    pinheap_destroy(h);
  }
}

/* With poison alone, a block's usable size may pass its request: calloc
 * zeroes every usable byte, poisoned ones included. */
static void test_calloc_zeroes_usable_under_poison(void **state) {
  (void)state;
  for (size_t m = 0; m < 3; m++) {
    pinheap *h = debug_heap(modes[m], PINHEAP_DEBUG_POISON);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
      pinheap_free(h, pinheap_malloc(h, sizes[i])); /* leaves poison where calloc will look */
      unsigned char *z = pinheap_calloc(h, 1, sizes[i]);
      assert_non_null(z);
      size_t usable = pinheap_usable_size(h, z);
      for (size_t k = 0; k < usable; k++)
        if (z[k])
          fail_msg("%s: calloc(%zu) byte %zu of %zu usable is %#x", mode_names[m], sizes[i], k, usable, z[k]);
      pinheap_free(h, z);
    }
    assert_int_equal(pinheap_check(h), 0);
    pinheap_destroy(h);
  }
}

/* Under poison alone, a block shrunk in place whose new end holds the
 * freed record an earlier block at its address left there (freed once at
 * that length) is no double free: the shrink clears what lies at its new
 * end. */
static void test_shrink_over_old_record(void **state) {
  (void)state;
  pinheap *h = debug_heap(PINHEAP_FIXED, PINHEAP_DEBUG_POISON);
  unsigned char *x = pinheap_malloc(h, 100000);
  assert_non_null(x);
  assert_ptr_equal(pinheap_realloc(h, x, 80000), x); /* in place: 20 pages */
  pinheap_free(h, x);                                /* its record at x + 81920 - 8 */
  pinheap_trim(h);
  unsigned char *y = pinheap_malloc(h, 100000); /* the same place, the heap as before */
  assert_ptr_equal(y, x);
  fill(y, 80000, 7); /* and never past: x's record is still at y + 81920 - 8 */
  assert_ptr_equal(pinheap_realloc(h, y, 80000), y);
  print_message("shrunk in place over an old record: usable %zu\n", pinheap_usable_size(h, y));
  assert_int_equal(pinheap_usable_size(h, y), 81920);
  expect_fill(y, 80000, 7);
  pinheap_free(h, y);
  assert_int_equal(pinheap_check(h), 0);
  pinheap_destroy(h);
}

/* A freed block reads as poison; without the flag it does not change. */
static void test_poison(void **state) {
  (void)state;
  for (int poison = 0; poison < 2; poison++) {
    pinheap *h = debug_heap(PINHEAP_FIXED, poison ? PINHEAP_DEBUG_POISON : PINHEAP_DEBUG_CANARY);
    static const size_t n[] = {40, 5000, 300000};
    for (size_t i = 0; i < 3; i++) {
      unsigned char *p = pinheap_malloc(h, n[i]);
      assert_non_null(p);
      memset(p, 0x11, n[i]);
      pinheap_free(h, p);
      for (size_t k = 0; k < n[i]; k++)
        if (p[k] != (poison ? PINHEAP_POISON_BYTE : 0x11))
          fail_msg("byte %zu of freed %zu-byte block: %#x", k, n[i], p[k]);
    }
    pinheap_destroy(h);
  }
}

struct misuse {
  pinheap_mode mode;
  unsigned flags;
  size_t size;
  enum { OVERFLOW_FREE, OVERFLOW_REALLOC, DOUBLE_FREE, WRITE_AFTER_FREE } what;
};

/* Runs in the child: the misuse, then (if nothing aborted) a clean exit. */
static void misuse_child(void *arg) {
  struct misuse *m = arg;
  pinheap *h = debug_heap(m->mode, m->flags);
  unsigned char *p = pinheap_malloc(h, m->size);
  if (!p) _exit(3);
  fprintf(stderr, "block %p\n", (void *)p);
  memset(p, 0x5a, m->size);
  switch (m->what) {
  case OVERFLOW_FREE:
    p[m->size] = 0x5a; /* one byte past the end */
    pinheap_free(h, p);
    break;
  case OVERFLOW_REALLOC:
    p[m->size + 5] = 0;
    (void)pinheap_realloc(h, p, m->size + 1);
    break;
  case DOUBLE_FREE:
    pinheap_free(h, p);
    pinheap_free(h, p);
    break;
  case WRITE_AFTER_FREE: {
    pinheap_free(h, p);
    p[m->size / 2] = 1;
    /* Small blocks wait in a FIFO of 256 before reuse: 300 more frees push p
     * out of it, and it is checked then; a larger block is checked when the
     * thread's cache hands it out again. */
    void *more[300];
    for (int i = 0; i < 300; i++) more[i] = pinheap_malloc(h, m->size);
    for (int i = 0; i < 300; i++) pinheap_free(h, more[i]);
    (void)pinheap_malloc(h, m->size);
    break;
  }
  }
}

static void expect_caught(struct misuse m, const char *words) {
  child_result r;
  child_run(misuse_child, &m, &r);
  if (!child_aborted(&r))
    fail_msg("mode %d, %zu bytes, misuse %d: child status %#x, stderr \"%s\"", (int)m.mode, m.size, (int)m.what,
             r.status, r.err);
  char block[64];
  void *p = NULL;
  assert_int_equal(sscanf(r.err, "block %p", &p), 1);
  snprintf(block, sizeof block, "%p", p);
  const char *report = strstr(r.err, "pinheap: ");
  if (!report) fail_msg("no report in \"%s\"", r.err);
  assert_contains(report, block);
  assert_contains(report, words);
}

static void test_overflow_by_one_byte(void **state) {
  (void)state;
  char words[64];
  for (size_t m = 0; m < 3; m++) {
    static const size_t n[] = {1, 100, 4000, 8192, 20000, 3 * MiB};
    for (size_t i = 0; i < sizeof n / sizeof n[0]; i++) {
      snprintf(words, sizeof words, "block of %zu bytes written past its end: byte %zu is 0x5a", n[i], n[i]);
      expect_caught((struct misuse){modes[m], PINHEAP_DEBUG_CANARY, n[i], OVERFLOW_FREE}, words);
    }
    expect_caught((struct misuse){modes[m], PINHEAP_DEBUG_ALL, 300, OVERFLOW_REALLOC}, "pinheap_realloc");
  }
}

static void test_double_free_of_small_object(void **state) {
  (void)state;
  for (size_t m = 0; m < 3; m++) {
    expect_caught((struct misuse){modes[m], PINHEAP_DEBUG_CANARY, 48, DOUBLE_FREE}, "freed already");
    expect_caught((struct misuse){modes[m], PINHEAP_DEBUG_ALL, 48, DOUBLE_FREE}, "freed already");
  }
}

static void test_write_after_free(void **state) {
  (void)state;
  /* Small objects and extents of up to 16 pages come back from the thread's
   * cache. */
  static const size_t n[] = {48, 1000, 14000, 20000, 60000};
  for (size_t i = 0; i < sizeof n / sizeof n[0]; i++) {
    expect_caught((struct misuse){PINHEAP_FIXED, PINHEAP_DEBUG_ALL, n[i], WRITE_AFTER_FREE},
                  "written after its free");
    expect_caught((struct misuse){PINHEAP_DYNAMIC, PINHEAP_DEBUG_POISON, n[i], WRITE_AFTER_FREE},
                  "written after its free");
  }
}

/* pinheap_check counts a broken canary of a live large block and a freed
 * block written in a thread's cache, without aborting. */
static void test_check_finds_broken_blocks(void **state) {
  (void)state;
  pinheap *h = debug_heap(PINHEAP_DYNAMIC, PINHEAP_DEBUG_ALL);
  unsigned char *big = pinheap_malloc(h, 30000), *direct = pinheap_malloc(h, 3 * MiB), *small = pinheap_malloc(h, 64);
  assert_non_null(big);
  assert_non_null(direct);
  assert_non_null(small);
  pinheap_free(h, small);
  assert_int_equal(pinheap_check(h), 0);
  fprintf(stderr, "test_debug: the reports below are expected (deliberate corruption)\n");
  unsigned char *spots[] = {big + 30000, direct + 3 * MiB + 3, small + 10};
  for (size_t i = 0; i < 3; i++) {
    unsigned char was = *spots[i];
    *spots[i] ^= 0xff;
    assert_int_equal(pinheap_check(h), 1);
    *spots[i] = was;
    assert_int_equal(pinheap_check(h), 0);
  }
  pinheap_free(h, big);
  pinheap_free(h, direct);
  pinheap_destroy(h);
}

static void destroy_with_live_blocks(void *arg) {
  pinheap *h = debug_heap(*(const pinheap_mode *)arg, PINHEAP_DEBUG_CANARY);
  void *large = pinheap_malloc(h, 3000000);
  for (int i = 0; i < 5; i++) pinheap_malloc(h, 40);
  fprintf(stderr, "block %p\n", large);
  pinheap_destroy(h);
}

static void test_destroy_lists_live_blocks(void **state) {
  (void)state;
  for (size_t m = 0; m < 3; m++) {
    child_result r;
    child_run(destroy_with_live_blocks, (void *)&modes[m], &r);
    assert_true(r.status != -1 && WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0);
    void *p = NULL;
    assert_int_equal(sscanf(r.err, "block %p", &p), 1);
    char line[96];
    assert_contains(r.err, "still allocated");
    /* 40 bytes and the canary's 16: jemalloc's 64-byte class. */
    assert_contains(r.err, "5 object(s) of jemalloc's 64-byte class");
    snprintf(line, sizeof line, "large block %p: 3000000 bytes", p);
    assert_contains(r.err, line);
  }
}

static void test_bad_flags(void **state) {
  (void)state;
  pinheap_options o;
  pinheap_options_init(&o);
  assert_int_equal(o.debug, 0);
  o.size = 64 * MiB;
  o.debug = 1u << 7;
  errno = 0;
  assert_null(pinheap_create(&o));
  assert_int_equal(errno, EINVAL);
  assert_contains(pinheap_last_error(), "debug");
}

/* Memory a provider hands over is not zero: calloc still zeroes, and a
 * heap grown in debug mode stays consistent. */
static void test_dirty_provider(void **state) {
  (void)state;
  counting c = {.dirty = 1};
  pinheap_provider pv = counting_provider(&c);
  pinheap_options o;
  pinheap_options_init(&o);
  o.mode = PINHEAP_DYNAMIC;
  o.chunk_size = 4 * MiB;
  o.arenas = 1;
  o.provider = &pv;
  o.debug = PINHEAP_DEBUG_ALL;
  pinheap *h = pinheap_create(&o);
  assert_non_null(h);
  enum { N = 3000 };
  static unsigned char *v[N];
  for (int i = 0; i < N; i++) {
    size_t n = 1 + (size_t)(i * 7919) % 40000;
    v[i] = pinheap_calloc(h, 1, n);
    assert_non_null(v[i]);
    for (size_t k = 0; k < n; k += 61) assert_int_equal(v[i][k], 0);
    if (i % 3 == 0) {
      pinheap_free(h, v[i]);
      v[i] = NULL;
    }
  }
  assert_int_equal(pinheap_check(h), 0);
  for (int i = 0; i < N; i++) pinheap_free(h, v[i]);
  pinheap_trim(h);
  assert_int_equal(pinheap_check(h), 0);
  pinheap_destroy(h);
  assert_int_equal(c.live_bytes, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_blocks_and_realloc),
      cmocka_unit_test(test_poison),
      cmocka_unit_test(test_calloc_zeroes_usable_under_poison),
      cmocka_unit_test(test_shrink_over_old_record),
      cmocka_unit_test(test_overflow_by_one_byte),
      cmocka_unit_test(test_double_free_of_small_object),
      cmocka_unit_test(test_write_after_free),
      cmocka_unit_test(test_check_finds_broken_blocks),
      cmocka_unit_test(test_destroy_lists_live_blocks),
      cmocka_unit_test(test_bad_flags),
      cmocka_unit_test(test_dirty_provider),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
