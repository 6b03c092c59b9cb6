/*
 * Unit tests of canary (src/canary.h): the canary and the record of a live
 * block, the poison and the freed record of a freed one, the quarantine's
 * poison, and the checks that abort (in child processes, child.h). Blocks
 * are plain buffers: the module knows no heap.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "canary.h"
#include "child.h"
#include "pinheap.h"

static _Alignas(16) unsigned char block[4096 + 64];

static void test_live_block(void **state) {
  (void)state;
  for (size_t usable = CANARY_EXTRA; usable <= 512; usable += 8) {
    for (size_t n = 0; n + CANARY_EXTRA <= usable; n += 3) {
      memset(block, 0x11, sizeof block);
      canary_write(block, usable, n);
      size_t got = 0;
      char why[200];
      assert_true(canary_whole(block, usable, &got, why, sizeof why));
      assert_int_equal(got, n);
      assert_false(canary_freed(block, usable));
      /* The first byte past the caller's n bytes, and the last canary
       * byte, written over. */
      const size_t spots[2] = {n, usable - CANARY_TRAILER - 1};
      for (int k = 0; k < 2; k++) {
        block[spots[k]] ^= 0xFF;
        assert_false(canary_whole(block, usable, &got, why, sizeof why));
        assert_non_null(strstr(why, "written past its end"));
        block[spots[k]] ^= 0xFF;
      }
    }
  }
  /* A record overwritten, and one that holds the freed record. */
  canary_write(block, 64, 10);
  block[64 - 1] ^= 0x40;
  size_t got;
  char why[200];
  assert_false(canary_whole(block, 64, &got, why, sizeof why));
  assert_non_null(strstr(why, "size record"));
  canary_set_record(block, 64, canary_key(block) ^ CANARY_FREED);
  assert_true(canary_freed(block, 64));
  assert_false(canary_whole(block, 64, &got, why, sizeof why));
  assert_non_null(strstr(why, "double free"));
}

/* The key depends on the address: a record copied to another block is no
 * record there. */
static void test_key_of_address(void **state) {
  (void)state;
  assert_int_not_equal(canary_key(block), canary_key(block + 16));
  canary_write(block, 64, 20);
  memcpy(block + 1024, block, 64);
  size_t got;
  char why[200];
  assert_false(canary_whole(block + 1024, 64, &got, why, sizeof why));
}

static void test_mismatch(void **state) {
  (void)state;
  memset(block, 0xAB, sizeof block);
  for (size_t from = 0; from < 24; from++)
    for (size_t to = from; to < 80; to += 7) assert_int_equal(canary_mismatch(block, from, to, 0xAB), to);
  for (size_t at = 0; at < 80; at++) {
    block[at] = 0;
    assert_int_equal(canary_mismatch(block, 0, 80, 0xAB), at);
    assert_int_equal(canary_mismatch(block, at + 1, 80, 0xAB), 80);
    block[at] = 0xAB;
  }
}

static void poison(size_t usable) {
  memset(block, PINHEAP_POISON_BYTE, usable);
  canary_set_record(block, usable, canary_key(block) ^ CANARY_FREED);
}

static void test_poison(void **state) {
  (void)state;
  char why[200];
  poison(256);
  assert_true(canary_poisoned(block, 256, why, sizeof why));
  block[100] = 0;
  assert_false(canary_poisoned(block, 256, why, sizeof why));
  assert_non_null(strstr(why, "byte 100 is"));
  poison(256);
  block[255] ^= 1; /* the freed record */
  assert_false(canary_poisoned(block, 256, why, sizeof why));
  assert_non_null(strstr(why, "last 8 bytes"));
  memset(block, PINHEAP_POISON_BYTE, 4096);
  assert_true(canary_quarantined(block, 4096, why, sizeof why));
  block[4095] = 7;
  assert_false(canary_quarantined(block, 4096, why, sizeof why));
  assert_non_null(strstr(why, "in quarantine"));
}

typedef struct check_job {
  bool reused, poison;
} check_job;

static void check_child(void *arg) {
  const check_job *j = arg;
  if (j->reused)
    canary_check_reused(block, 128, j->poison, "test");
  else
    canary_check_released(block, 128, j->poison, "test");
}

/* A broken poison aborts, naming the block, only where poison is on. */
static void test_checks_abort(void **state) {
  (void)state;
  for (int reused = 0; reused < 2; reused++) {
    poison(128);
    check_job j = {reused, true};
    child_result r;
    child_run(check_child, &j, &r);
    assert_int_equal(r.status, 0);
    block[3] = 0;
    child_run(check_child, &j, &r);
    assert_true(child_aborted(&r));
    assert_non_null(strstr(r.err, "test: block"));
    assert_non_null(strstr(r.err, "written after its free"));
    j.poison = false;
    child_run(check_child, &j, &r);
    assert_int_equal(r.status, 0);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_live_block), cmocka_unit_test(test_key_of_address),
                                     cmocka_unit_test(test_mismatch), cmocka_unit_test(test_poison),
                                     cmocka_unit_test(test_checks_abort)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
