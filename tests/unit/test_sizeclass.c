/*
 * Unit tests of sizeclass (src/sizeclass.h): jemalloc's small size classes
 * as read at start-up, the table from a request to its bin, and the test of
 * where an object of a bin may start on a page, against the plain
 * arithmetic (a modulo) over every offset of a page and every phase.
 */
#include <jemalloc/jemalloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "sizeclass.h"

static sizeclass sc;
static size_t page;

static int setup(void **state) {
  (void)state;
  page = (size_t)sysconf(_SC_PAGESIZE);
  return sizeclass_init(&sc, page);
}

static void test_classes(void **state) {
  (void)state;
  unsigned nbins = 0;
  size_t sz = sizeof nbins;
  assert_int_equal(mallctl("arenas.nbins", &nbins, &sz, NULL, 0), 0);
  assert_int_equal(sc.nbins, nbins);
  assert_int_equal(sc.max, sc.size[nbins - 1]);
  for (unsigned b = 1; b < sc.nbins; b++) assert_true(sc.size[b] > sc.size[b - 1]);
  assert_int_equal(sizeclass_check(&sc), 0);
}

/* Every request up to the largest class maps to the smallest bin that holds
 * it; what jemalloc itself rounds the request to is that bin's size. */
static void test_bins(void **state) {
  (void)state;
  for (size_t n = 0; n <= sc.max; n++) {
    unsigned b = sizeclass_bin(&sc, n);
    assert_true(sc.size[b] >= n);
    if (b) assert_true(sc.size[b - 1] < n);
    if (n) assert_int_equal(nallocx(n, 0), sc.size[b]);
  }
}

/* Objects of bin b start on a page where their offset plus the page's
 * phase is a multiple of the size: exactly there. */
static void test_starts(void **state) {
  (void)state;
  uintptr_t base = (uintptr_t)1 << 40;
  for (unsigned b = 0; b < sc.nbins; b++) {
    uint32_t s = sc.size[b];
    uint32_t phases[3] = {0, s > 8 ? s - 8 : 0, s > 1000 ? 1000 : s / 2};
    for (int k = 0; k < 3; k++) {
      uint32_t phase = phases[k] % s;
      for (size_t off = 0; off < page; off += 8) {
        bool expect = (off + phase) % s == 0;
        if (sizeclass_starts(&sc, b, (const void *)(base + off), phase) != expect)
          fail_msg("bin %u (%u bytes), phase %u, offset %zu: said %d", b, s, phase, off, !expect);
      }
    }
  }
}

/* A spoilt table is caught. */
static void test_check_catches(void **state) {
  (void)state;
  sizeclass bad = sc;
  bad.bin_of[10] = (uint8_t)(bad.bin_of[10] + 1);
  assert_true(sizeclass_check(&bad) > 0);
  bad = sc;
  bad.div[3].limit = 0; /* no object past a page start */
  assert_true(sizeclass_check(&bad) > 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_classes), cmocka_unit_test(test_bins),
                                     cmocka_unit_test(test_starts), cmocka_unit_test(test_check_catches)};
  return cmocka_run_group_tests(tests, setup, NULL);
}
