/* Unit tests of the page map. The map never touches the memory it
 * describes, so the chunks here are plain numbers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "pagemap.h"

#define PAGE ((size_t)4096)
#define MiB ((size_t)1 << 20)
#define BASE ((char *)((uintptr_t)1 << 40))

static void test_tags(void **state) {
  (void)state;
  pagemap pm;
  assert_int_equal(pagemap_init(&pm, PAGE), 0);
  assert_int_equal(pagemap_add(&pm, BASE, 1024 * PAGE, NULL), 0);
  assert_true(pagemap_covers(&pm, BASE));
  assert_true(pagemap_covers(&pm, BASE + 1024 * PAGE - 1));
  assert_false(pagemap_covers(&pm, BASE + 1024 * PAGE));
  assert_false(pagemap_covers(&pm, BASE - 1));
  pagemap_set_small(&pm, BASE + 10 * PAGE, 4 * PAGE);
  for (int i = 10; i < 14; i++) assert_int_equal(pagemap_get(&pm, BASE + i * PAGE + 100), PAGEMAP_SMALL);
  assert_int_equal(pagemap_get(&pm, BASE + 14 * PAGE), 0);
  pagemap_note_bin(&pm, BASE + 11 * PAGE + 64, 5, 48, 37);
  assert_int_equal(PAGEMAP_BIN_OF(pagemap_get(&pm, BASE + 11 * PAGE)), 5);
  assert_int_equal(PAGEMAP_OWNER_OF(pagemap_get(&pm, BASE + 11 * PAGE)), 37);
  assert_int_equal(PAGEMAP_PHASE_OF(pagemap_get(&pm, BASE + 11 * PAGE)), 48 - 64 % 48);
  /* The fields at their largest (a 64 KiB page's largest small class)
   * stay apart. */
  assert_int_equal(PAGEMAP_SMALL_OBJ(126, 229376 - 8, 63) & 3u, PAGEMAP_SMALL);
  assert_int_equal(PAGEMAP_BIN_OF(PAGEMAP_SMALL_OBJ(126, 229376 - 8, 63)), 126);
  assert_int_equal(PAGEMAP_OWNER_OF(PAGEMAP_SMALL_OBJ(126, 229376 - 8, 63)), 63);
  assert_int_equal(PAGEMAP_PHASE_OF(PAGEMAP_SMALL_OBJ(126, 229376 - 8, 63)), 229376 - 8);
  assert_int_equal(PAGEMAP_BIN_OF(pagemap_get(&pm, BASE + 10 * PAGE)), -1);
  assert_int_equal(pagemap_count_jemalloc_pages(&pm), 4);
  pagemap_set_large(&pm, BASE + 100 * PAGE, 50);
  assert_int_equal(pagemap_get(&pm, BASE + 100 * PAGE) >> 1, 50);
  assert_int_equal(pagemap_get(&pm, BASE + 101 * PAGE), 0);
  assert_int_equal(pagemap_check(&pm, 1, 50), 0);
  assert_true(pagemap_check(&pm, 2, 50) > 0);
  assert_true(pagemap_resize_large(&pm, BASE + 100 * PAGE, 50, 60));
  assert_false(pagemap_resize_large(&pm, BASE + 100 * PAGE, 50, 70));
  assert_int_equal(pagemap_take_large(pagemap_slot(&pm, BASE + 101 * PAGE)), 0); /* not a head */
  assert_int_equal(pagemap_take_large(pagemap_slot(&pm, BASE + 10 * PAGE)), 0);  /* small */
  assert_int_equal(pagemap_take_large(pagemap_slot(&pm, BASE + 100 * PAGE)), 60);
  assert_int_equal(pagemap_take_large(pagemap_slot(&pm, BASE + 100 * PAGE)), 0); /* taken once only */
  assert_int_equal(pagemap_check(&pm, 0, 0), 0);
  pagemap_clear(&pm, BASE + 10 * PAGE, 4 * PAGE);
  assert_int_equal(pagemap_get(&pm, BASE + 12 * PAGE), 0);
  /* A stray tag inside a large block is caught. */
  pagemap_set_large(&pm, BASE + 200 * PAGE, 10);
  pagemap_set_large(&pm, BASE + 205 * PAGE, 2);
  assert_true(pagemap_check(&pm, 2, 12) > 0);
  pagemap_fini(&pm);
}

/* Chunks beyond the first are found through the directory, never across
 * their ends, and their records are reused once removed. */
static void test_chunks(void **state) {
  (void)state;
  pagemap pm;
  int key[3];
  assert_int_equal(pagemap_init(&pm, PAGE), 0);
  assert_int_equal(pagemap_add(&pm, BASE, 6 * MiB, &key[0]), 0);
  char *b = BASE + 64 * MiB, *c = BASE + ((size_t)1 << 34) + 2 * MiB; /* c in another leaf */
  assert_int_equal(pagemap_add(&pm, b + 1, 4 * MiB, NULL), -1); /* not on a 2 MiB boundary */
  assert_int_equal(pagemap_add(&pm, b, 4 * MiB, &key[1]), 0);
  assert_int_equal(pagemap_add(&pm, c, 8 * MiB, &key[2]), 0);
  assert_ptr_equal(pagemap_chunk_of(&pm, BASE + 5)->handle, &key[0]);
  assert_ptr_equal(pagemap_chunk_of(&pm, b + 4 * MiB - 1)->handle, &key[1]);
  assert_null(pagemap_chunk_of(&pm, b + 4 * MiB));
  assert_null(pagemap_chunk_of(&pm, b - 1));
  assert_ptr_equal(pagemap_chunk_of(&pm, c + 7 * MiB)->handle, &key[2]);
  assert_null(pagemap_chunk_of(&pm, (void *)((uintptr_t)1 << 50)));
  assert_true(pagemap_within_chunk(&pm, BASE, 6 * MiB));
  assert_false(pagemap_within_chunk(&pm, BASE + PAGE, 6 * MiB)); /* past the first chunk's end */
  assert_true(pagemap_within_chunk(&pm, b + 2 * MiB, 2 * MiB));
  assert_false(pagemap_within_chunk(&pm, b + 2 * MiB, 2 * MiB + PAGE));
  assert_false(pagemap_within_chunk(&pm, b - PAGE, 2 * PAGE)); /* starts outside */
  assert_false(pagemap_within_chunk(&pm, b, 0));
  pagemap_set_large(&pm, b + PAGE, 3);
  pagemap_set_small(&pm, c, 2 * PAGE);
  assert_int_equal(pagemap_get(&pm, b + PAGE) >> 1, 3);
  assert_int_equal(pagemap_count_jemalloc_pages(&pm), 2);
  assert_int_equal(pagemap_check(&pm, 1, 3), 0);
  assert_int_equal(pagemap_take_large(pagemap_slot(&pm, b + PAGE)), 3);
  pagemap_clear(&pm, c, 2 * PAGE);
  pagemap_remove(&pm, b);
  assert_false(pagemap_covers(&pm, b));
  assert_int_equal(pagemap_check(&pm, 0, 0), 0);
  pagemap_chunk *old = NULL;
  for (pagemap_chunk *r = pm.chunks; r; r = r->next)
    if (!r->live) old = r;
  assert_non_null(old);
  char *d = BASE + 128 * MiB;
  assert_int_equal(pagemap_add(&pm, d, 2 * MiB, NULL), 0); /* reuses the removed record */
  assert_true(old->live);
  assert_ptr_equal(pagemap_chunk_of(&pm, d), old);
  pagemap_remove(&pm, BASE); /* the first chunk too */
  assert_false(pagemap_covers(&pm, BASE));
  assert_true(pagemap_covers(&pm, d));
  pagemap_fini(&pm);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_tags), cmocka_unit_test(test_chunks)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
