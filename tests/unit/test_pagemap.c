/* Unit tests of the page map. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "pagemap.h"

#define PAGE ((size_t)4096)
#define BASE ((char *)((uintptr_t)1 << 40))

static void test_tags(void **state) {
  (void)state;
  pagemap pm;
  assert_int_equal(pagemap_init(&pm, BASE, 1024 * PAGE, PAGE), 0);
  assert_true(pagemap_covers(&pm, BASE));
  assert_true(pagemap_covers(&pm, BASE + 1024 * PAGE - 1));
  assert_false(pagemap_covers(&pm, BASE + 1024 * PAGE));
  assert_false(pagemap_covers(&pm, BASE - 1));
  pagemap_set_small(&pm, BASE + 10 * PAGE, 4 * PAGE);
  for (int i = 10; i < 14; i++) assert_int_equal(pagemap_get(&pm, BASE + i * PAGE + 100), PAGEMAP_SMALL);
  assert_int_equal(pagemap_get(&pm, BASE + 14 * PAGE), 0);
  pagemap_set_large(&pm, BASE + 100 * PAGE, 50);
  assert_int_equal(pagemap_get(&pm, BASE + 100 * PAGE) >> 1, 50);
  assert_int_equal(pagemap_get(&pm, BASE + 101 * PAGE), 0);
  assert_int_equal(pagemap_check(&pm, 1, 50), 0);
  assert_true(pagemap_check(&pm, 2, 50) > 0);
  assert_true(pagemap_resize_large(&pm, BASE + 100 * PAGE, 50, 60));
  assert_false(pagemap_resize_large(&pm, BASE + 100 * PAGE, 50, 70));
  assert_int_equal(pagemap_take_large(&pm, BASE + 101 * PAGE), 0); /* not a head */
  assert_int_equal(pagemap_take_large(&pm, BASE + 10 * PAGE), 0);  /* small */
  assert_int_equal(pagemap_take_large(&pm, BASE + 100 * PAGE), 60);
  assert_int_equal(pagemap_take_large(&pm, BASE + 100 * PAGE), 0); /* taken once only */
  assert_int_equal(pagemap_check(&pm, 0, 0), 0);
  pagemap_clear(&pm, BASE + 10 * PAGE, 4 * PAGE);
  assert_int_equal(pagemap_get(&pm, BASE + 12 * PAGE), 0);
  /* A stray tag inside a large block is caught. */
  pagemap_set_large(&pm, BASE + 200 * PAGE, 10);
  pagemap_set_large(&pm, BASE + 205 * PAGE, 2);
  assert_true(pagemap_check(&pm, 2, 12) > 0);
  pagemap_fini(&pm);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_tags)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
