/*
 * Unit tests of key (src/key.h): the two keys of a heap, and how a free
 * tells a freed object from a live one, against a thread's stack made up
 * here (thread.h's thread_bin over an array).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "key.h"

static void test_keys(void **state) {
  (void)state;
  key a, b;
  key_init(&a, 0x7f0012340000u);
  key_init(&b, 0x7f0056780000u);
  assert_int_equal(key_check(&a), 0);
  assert_int_equal(key_check(&b), 0);
  assert_true(a.cached & a.freed & 1);
  assert_true(a.cached & a.freed & (uint64_t)1 << 63);
  assert_int_not_equal(a.cached, a.freed);
  /* Two heaps get different keys: one's mark means nothing to the other. */
  assert_int_not_equal(a.freed, b.freed);
  assert_int_not_equal(a.cached, b.cached);
  key broken = {.cached = a.freed, .freed = a.freed};
  assert_int_equal(key_check(&broken), 1);
  broken = (key){.cached = 2, .freed = 5};
  assert_int_equal(key_check(&broken), 1);
  broken = (key){.cached = 3, .freed = 5}; /* odd, but the top bit clear */
  assert_int_equal(key_check(&broken), 1);
}

static void test_freed(void **state) {
  (void)state;
  key k;
  key_init(&k, (uintptr_t)&k);
  uint64_t objects[4][2] = {{0}};
  void *slots[8];
  thread_bin bin = {.slots = slots, .count = 0, .limit = 8};
  /* Live: no key. */
  key_set(objects[0], 12345);
  assert_false(key_maybe_freed(&k, objects[0], key_word(objects[0])));
  assert_false(key_freed(&k, &bin, objects[0], key_word(objects[0])));
  /* Freed into jemalloc: freed, with or without the thread's stack. */
  key_put(objects[1], k.freed);
  assert_true(key_maybe_freed(&k, objects[1], key_word(objects[1])));
  assert_true(key_freed(&k, NULL, objects[1], key_word(objects[1])));
  /* In the thread's own stack: freed. */
  key_put(objects[2], k.cached);
  assert_true(thread_bin_push(&bin, objects[2]));
  assert_true(key_freed(&k, &bin, objects[2], key_word(objects[2])));
  /* Handed out again, not written yet: still cached, live. */
  assert_ptr_equal(thread_bin_pop(&bin), objects[2]);
  assert_true(key_maybe_freed(&k, objects[2], key_word(objects[2])));
  assert_false(key_freed(&k, &bin, objects[2], key_word(objects[2])));
  /* Another thread's object holding cached: not on this stack, missed. */
  key_put(objects[3], k.cached);
  assert_false(key_freed(&k, NULL, objects[3], key_word(objects[3])));
  /* A write of some of its bytes never turns cached into freed. */
  for (int i = 0; i < 8; i++) {
    uint64_t w = k.cached;
    ((unsigned char *)&w)[i] ^= 0x5A;
    assert_int_not_equal(w, k.freed);
  }
  /* A freed object's word copied to another address (a block over the
   * memory it held, a struct's unwritten padding): no key there, whatever
   * else of the word the program wrote; at its own address, still freed. */
  uint64_t copy[2];
  memcpy(copy, objects[1], sizeof copy);
  assert_false(key_maybe_freed(&k, copy, key_word(copy)));
  for (int i = 0; i < 8; i++)
    for (int v = 0; v < 256; v++) {
      unsigned char *c = (unsigned char *)copy;
      memcpy(copy, objects[1], sizeof copy[0]);
      c[i] = (unsigned char)v;
      assert_false(key_maybe_freed(&k, copy, key_word(copy)));
    }
  /* Fresh memory (0) and a pointer never read as a key anywhere. */
  key_set(objects[0], 0);
  assert_false(key_maybe_freed(&k, objects[0], key_word(objects[0])));
  key_set(objects[0], (uint64_t)(uintptr_t)objects[1]);
  assert_false(key_maybe_freed(&k, objects[0], key_word(objects[0])));
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_keys), cmocka_unit_test(test_freed)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
