/* Unit tests of the metadata pool. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "meta.h"

static void test_alloc_free_reuse(void **state) {
  (void)state;
  meta_pool p;
  meta_init(&p, 40);
  assert_int_equal(p.record_size % 16, 0);
  enum { N = 5000 };
  static void *recs[N];
  for (int i = 0; i < N; i++) {
    recs[i] = meta_alloc(&p);
    assert_non_null(recs[i]);
    for (size_t b = 0; b < p.record_size; b++) assert_int_equal(((unsigned char *)recs[i])[b], 0);
    ((unsigned char *)recs[i])[0] = 0xAB;
  }
  assert_int_equal(p.live, N);
  assert_int_equal(meta_check(&p), 0);
  /* Records are distinct and do not overlap. */
  for (int i = 1; i < N; i++) assert_true(recs[i] != recs[i - 1]);
  size_t cap = p.capacity;
  for (int i = 0; i < N; i += 2) meta_free(&p, recs[i]);
  assert_int_equal(meta_check(&p), 0);
  for (int i = 0; i < N; i += 2) assert_non_null(meta_alloc(&p));
  assert_int_equal(p.capacity, cap); /* reused, not grown */
  assert_int_equal(meta_reserve(&p, cap), 0);
  assert_true(p.capacity - p.live >= cap);
  assert_int_equal(meta_check(&p), 0);
  meta_fini(&p);
}

static void test_check_catches_breakage(void **state) {
  (void)state;
  meta_pool p;
  meta_init(&p, 16);
  assert_non_null(meta_alloc(&p));
  p.live++;
  assert_int_equal(meta_check(&p), 1);
  p.live--;
  assert_int_equal(meta_check(&p), 0);
  meta_fini(&p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_alloc_free_reuse),
      cmocka_unit_test(test_check_catches_breakage),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
