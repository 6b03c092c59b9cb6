/*
 * realloc of a large block that cannot grow in place, in a FIXED heap where
 * no free extent holds the new size beside the old block: only freeing the
 * old block first, then placing the new one over its room (moving the
 * contents down with memmove) completes the request. Under each policy that
 * reuses memory. A request no place can hold fails and leaves the block as
 * it was.
 *
 * Layout (64 MiB region, one arena at the top):
 *   [ hole 16 MiB ][ A 20 MiB ][ B 8 MiB ][ free ~16 MiB ][ arena ]
 * A grown to 30 MiB: B blocks growth in place; no hole has 30 MiB while A
 * is held; with A counted as free the bottom holds 36 MiB.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "pinheap.h"

#define MiB ((size_t)1 << 20)

/* A pattern that tells every 4 KiB apart, so that a copy at the wrong
 * offset shows. */
static void fill(unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; i += 4096) memcpy(p + i, &i, sizeof i);
}

static void verify(const unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; i += 4096) {
    size_t v;
    memcpy(&v, p + i, sizeof v);
    if (v != i) fail_msg("byte %zu of the block changed", i);
  }
}

static void grow_by_free_then_place(pinheap_policy policy) {
  pinheap_options o;
  pinheap_options_init(&o);
  o.size = 64 * MiB;
  o.arenas = 1;
  o.policy = policy;
  pinheap *h = pinheap_create(&o);
  assert_non_null(h);
  unsigned char *c = pinheap_malloc(h, 16 * MiB), *a = pinheap_malloc(h, 20 * MiB), *b = pinheap_malloc(h, 8 * MiB);
  assert_true(c && a && b);
  assert_ptr_equal(a, c + 16 * MiB);
  assert_ptr_equal(b, a + 20 * MiB);
  pinheap_free(h, c);
  fill(a, 20 * MiB);
  pinheap_stats st;
  assert_int_equal(pinheap_get_stats(h, &st), 0);
  assert_true(st.largest_free < 30 * MiB); /* no ordinary move fits */

  unsigned char *big = pinheap_realloc(h, a, 40 * MiB); /* more than A and every hole together */
  assert_null(big);
  assert_int_equal(errno, ENOMEM);
  assert_int_equal(pinheap_check(h), 0);
  assert_int_equal(pinheap_usable_size(h, a), 20 * MiB);
  verify(a, 20 * MiB);

  unsigned char *moved = pinheap_realloc(h, a, 30 * MiB);
  printf("%s: realloc(20 MiB -> 30 MiB) with no 30 MiB hole: %s\n", pinheap_policy_name(policy),
         moved ? "moved over its own room" : "failed");
  assert_non_null(moved);
  assert_ptr_equal(moved, c); /* down into the hole, overlapping the old place */
  assert_int_equal(pinheap_usable_size(h, moved), 30 * MiB);
  verify(moved, 20 * MiB);
  assert_int_equal(pinheap_check(h), 0);
  pinheap_free(h, moved);
  pinheap_free(h, b);
  assert_int_equal(pinheap_check(h), 0);
  pinheap_destroy(h);
}

static void test_two_ended(void **state) {
  (void)state;
  grow_by_free_then_place(PINHEAP_POLICY_TWO_ENDED);
}

static void test_ring(void **state) {
  (void)state;
  grow_by_free_then_place(PINHEAP_POLICY_RING);
}

static void test_first_fit(void **state) {
  (void)state;
  grow_by_free_then_place(PINHEAP_POLICY_FIRST_FIT);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_two_ended),
      cmocka_unit_test(test_ring),
      cmocka_unit_test(test_first_fit),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
