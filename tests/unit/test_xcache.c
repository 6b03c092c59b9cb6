/*
 * Unit tests of xcache (src/xcache.h), a thread's cache of medium extents,
 * over addresses that are never touched: best fit carved from the top; an
 * exact fit when splitting is refused; the bound of entries and bytes with
 * the smallest sent back first; shedding to half the bound; the entries a
 * growing block needs sent back; an entry within the slack taken whole;
 * neighbours joined;
 * a drain; and, against a model, random puts and takes (the seed printed,
 * and taken as the first argument), xcache_check after each step.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "seed.h"
#include "xcache.h"

#define PAGE ((size_t)4096)
#define BASE ((uintptr_t)1 << 40)

/* What came back through release. */
typedef struct released {
  uintptr_t addr[4 * XCACHE_SLOTS];
  size_t bytes[4 * XCACHE_SLOTS];
  unsigned count;
  size_t total;
} released;

static void release(void *ctx, void *addr, size_t bytes) {
  released *r = ctx;
  if (r->count < 4 * XCACHE_SLOTS) {
    r->addr[r->count] = (uintptr_t)addr;
    r->bytes[r->count] = bytes;
  }
  r->count++;
  r->total += bytes;
}

static void *at(size_t offset) { return (void *)(BASE + offset); }

/* xcache_take of exactly bytes, no slack. */
static void *take(xcache *x, size_t bytes, bool split) { return xcache_take(x, &bytes, 0, split); }

static void test_best_fit_from_the_top(void **state) {
  (void)state;
  xcache x;
  xcache_init(&x, PAGE);
  released r = {0};
  assert_null(take(&x, PAGE, true));
  xcache_put(&x, at(0), 16 * PAGE, release, &r);
  xcache_put(&x, at(64 * PAGE), 4 * PAGE, release, &r);
  xcache_put(&x, at(128 * PAGE), 8 * PAGE, release, &r);
  assert_int_equal(xcache_check(&x), 0);
  assert_int_equal(x.bytes, 28 * PAGE);
  /* 3 pages: the 4-page entry is the smallest that holds them, its top 3. */
  assert_true(xcache_holds_above(&x, 15 * PAGE));
  assert_false(xcache_holds_above(&x, 16 * PAGE));
  assert_ptr_equal(take(&x, 3 * PAGE, true), at(65 * PAGE));
  /* an exact fit takes the entry whole */
  assert_ptr_equal(take(&x, 8 * PAGE, true), at(128 * PAGE));
  assert_int_equal(x.count, 2);
  /* without splitting only an exact fit answers */
  assert_null(take(&x, 2 * PAGE, false));
  assert_ptr_equal(take(&x, PAGE, false), at(64 * PAGE));
  assert_null(take(&x, 17 * PAGE, true));
  assert_int_equal(x.bytes, 16 * PAGE);
  assert_int_equal(xcache_check(&x), 0);
  assert_int_equal(r.count, 0);
  xcache_drain(&x, release, &r);
  assert_int_equal(x.count, 0);
  assert_int_equal(r.count, 1);
  assert_int_equal(r.total, 16 * PAGE);
}

/* Past XCACHE_SLOTS entries or XCACHE_BYTES bytes the smallest go back. */
static void test_bound(void **state) {
  (void)state;
  xcache x;
  xcache_init(&x, PAGE);
  released r = {0};
  for (unsigned i = 0; i < XCACHE_SLOTS; i++) xcache_put(&x, at(2 * i * PAGE), PAGE, release, &r);
  assert_int_equal(x.count, XCACHE_SLOTS);
  assert_int_equal(r.count, 0);
  /* A larger one takes the place of a one-page entry. */
  xcache_put(&x, at(1000 * PAGE), 2 * PAGE, release, &r);
  assert_int_equal(x.count, XCACHE_SLOTS);
  assert_int_equal(r.count, 1);
  /* ties: the newest */
  assert_int_equal(r.addr[0], (uintptr_t)at(2 * (XCACHE_SLOTS - 1) * PAGE));
  /* One no larger than the smallest: the newest of those goes. */
  xcache_put(&x, at(2000 * PAGE), PAGE, release, &r);
  assert_int_equal(r.count, 2);
  assert_int_equal(r.addr[1], (uintptr_t)at(2 * (XCACHE_SLOTS - 2) * PAGE));
  assert_int_equal(xcache_check(&x), 0);
  xcache_drain(&x, release, &r);
  /* One smaller than every entry goes back itself. */
  r = (released){0};
  for (unsigned i = 0; i < XCACHE_SLOTS; i++) xcache_put(&x, at(4 * i * PAGE), 2 * PAGE, release, &r);
  xcache_put(&x, at(3000 * PAGE), PAGE, release, &r);
  assert_int_equal(r.count, 1);
  assert_int_equal(r.addr[0], (uintptr_t)at(3000 * PAGE));
  assert_int_equal(xcache_check(&x), 0);
  xcache_drain(&x, release, &r);
  /* Bytes: XCACHE_BYTES / XCACHE_CONTENDED_MAX blocks of the largest size
   * fit, the next one sends the smallest back. */
  r = (released){0};
  xcache_put(&x, at(0), PAGE, release, &r);
  size_t n = XCACHE_BYTES / XCACHE_CONTENDED_MAX;
  for (size_t i = 0; i < n; i++)
    xcache_put(&x, at((i + 1) * XCACHE_CONTENDED_MAX), XCACHE_CONTENDED_MAX, release, &r);
  assert_int_equal(x.bytes, XCACHE_BYTES);
  assert_int_equal(r.count, 1);
  assert_int_equal(r.addr[0], (uintptr_t)at(0));
  assert_int_equal(xcache_check(&x), 0);
  xcache_drain(&x, release, &r);
}

/* xcache_shed takes out the smallest entries until half the bound, in
 * entries and in bytes, is held. */
static void test_shed(void **state) {
  (void)state;
  xcache x;
  xcache_init(&x, PAGE);
  released r = {0};
  void *addrs[XCACHE_SLOTS];
  size_t lens[XCACHE_SLOTS];
  assert_int_equal(xcache_shed(&x, addrs, lens), 0);
  /* Entries: one page each, then one of 3 pages. */
  for (unsigned i = 0; i < XCACHE_SLOTS - 1; i++) xcache_put(&x, at(4 * i * PAGE), PAGE, release, &r);
  xcache_put(&x, at(1000 * PAGE), 3 * PAGE, release, &r);
  assert_false(xcache_fits(&x, PAGE));
  unsigned n = xcache_shed(&x, addrs, lens);
  assert_int_equal(n, XCACHE_SLOTS / 2);
  assert_int_equal(x.count, XCACHE_SLOTS / 2);
  for (unsigned i = 0; i < n; i++) assert_int_equal(lens[i], PAGE);
  assert_true(xcache_fits(&x, XCACHE_BLOCK_MAX));
  assert_ptr_equal(take(&x, 3 * PAGE, false), at(1000 * PAGE));
  assert_int_equal(xcache_check(&x), 0);
  xcache_drain(&x, release, &r);
  /* Bytes: 4 of the largest contended blocks fill the bound; shedding
   * keeps half of it, the smallest first. */
  r = (released){0};
  xcache_put(&x, at(0), PAGE, release, &r);
  for (size_t i = 0; i < XCACHE_BYTES / XCACHE_CONTENDED_MAX - 1; i++)
    xcache_put(&x, at((i + 1) * XCACHE_CONTENDED_MAX), XCACHE_CONTENDED_MAX, release, &r);
  assert_false(xcache_fits(&x, XCACHE_CONTENDED_MAX));
  n = xcache_shed(&x, addrs, lens);
  assert_true(n >= 2);
  assert_ptr_equal(addrs[0], at(0));
  assert_true(x.bytes <= XCACHE_BYTES / 2);
  assert_int_equal(r.count, 0);
  assert_int_equal(xcache_check(&x), 0);
  xcache_drain(&x, release, &r);
}

/* The entries overlapping a range go back; the others stay. */
static void test_evict_range(void **state) {
  (void)state;
  xcache x;
  xcache_init(&x, PAGE);
  released r = {0};
  xcache_put(&x, at(0), 4 * PAGE, release, &r);
  xcache_put(&x, at(4 * PAGE), 2 * PAGE, release, &r);
  xcache_put(&x, at(8 * PAGE), 2 * PAGE, release, &r);
  assert_false(xcache_evict_range(&x, at(6 * PAGE), 2 * PAGE, release, &r));
  assert_true(xcache_evict_range(&x, at(3 * PAGE), 2 * PAGE, release, &r));
  assert_int_equal(r.count, 2);
  assert_int_equal(r.total, 6 * PAGE);
  assert_int_equal(x.count, 1);
  assert_ptr_equal(take(&x, 2 * PAGE, false), at(8 * PAGE));
  assert_int_equal(xcache_check(&x), 0);
  xcache_drain(&x, release, &r);
}

/* An entry at most slack bytes longer than the request is taken whole,
 * its length reported; a longer one is carved. */
static void test_slack(void **state) {
  (void)state;
  xcache x;
  xcache_init(&x, PAGE);
  released r = {0};
  xcache_put(&x, at(0), 20 * PAGE, release, &r);
  xcache_put(&x, at(64 * PAGE), 40 * PAGE, release, &r);
  size_t len = 18 * PAGE;
  assert_ptr_equal(xcache_take(&x, &len, 2 * PAGE, true), at(0));
  assert_int_equal(len, 20 * PAGE);
  assert_int_equal(x.count, 1);
  len = 36 * PAGE;
  assert_ptr_equal(xcache_take(&x, &len, 3 * PAGE, true), at(68 * PAGE));
  assert_int_equal(len, 36 * PAGE);
  assert_int_equal(x.bytes, 4 * PAGE);
  /* without splitting the slack does not apply */
  len = 3 * PAGE;
  assert_null(xcache_take(&x, &len, 4 * PAGE, false));
  assert_int_equal(len, 3 * PAGE);
  assert_int_equal(xcache_check(&x), 0);
  xcache_drain(&x, release, &r);
}

/* xcache_put_joined joins the entries that touch the extent, below and
 * above, up to XCACHE_CONTENDED_MAX bytes; xcache_put joins none. */
static void test_joined(void **state) {
  (void)state;
  xcache x;
  xcache_init(&x, PAGE);
  released r = {0};
  xcache_put(&x, at(0), 4 * PAGE, release, &r);
  xcache_put(&x, at(8 * PAGE), 2 * PAGE, release, &r);
  xcache_put(&x, at(11 * PAGE), PAGE, release, &r); /* a page apart: stays */
  xcache_put(&x, at(4 * PAGE), 4 * PAGE, release, &r);
  assert_int_equal(x.count, 4);
  xcache_drain(&x, release, &r);
  xcache_put(&x, at(0), 4 * PAGE, release, &r);
  xcache_put(&x, at(8 * PAGE), 2 * PAGE, release, &r);
  xcache_put(&x, at(11 * PAGE), PAGE, release, &r);
  xcache_put_joined(&x, at(4 * PAGE), 4 * PAGE, release, &r);
  assert_int_equal(x.count, 2);
  assert_int_equal(x.bytes, 11 * PAGE);
  size_t len = 10 * PAGE;
  assert_ptr_equal(xcache_take(&x, &len, 0, false), at(0));
  assert_int_equal(xcache_check(&x), 0);
  xcache_drain(&x, release, &r);
  /* A chain of neighbours put without joining, the nearer after the
   * farther: all of it joins. */
  xcache_put(&x, at(0), 16 * PAGE, release, &r);
  xcache_put(&x, at(16 * PAGE), 16 * PAGE, release, &r);
  xcache_put_joined(&x, at(32 * PAGE), 64 * PAGE, release, &r);
  assert_int_equal(x.count, 1);
  len = 96 * PAGE;
  assert_ptr_equal(xcache_take(&x, &len, 0, false), at(0));
  assert_int_equal(xcache_check(&x), 0);
  xcache_drain(&x, release, &r);
  /* No entry past XCACHE_CONTENDED_MAX: the neighbour that would make it
   * longer stays apart, the one that would not joins. */
  size_t max = XCACHE_CONTENDED_MAX;
  xcache_put(&x, at(0), max - PAGE, release, &r);
  xcache_put(&x, at(max + PAGE), 4 * PAGE, release, &r);
  xcache_put_joined(&x, at(max - PAGE), 2 * PAGE, release, &r);
  assert_int_equal(x.count, 2);
  len = 6 * PAGE;
  assert_ptr_equal(xcache_take(&x, &len, 0, false), at(max - PAGE));
  len = max - PAGE;
  assert_ptr_equal(xcache_take(&x, &len, 0, false), at(0));
  assert_int_equal(xcache_check(&x), 0);
  xcache_drain(&x, release, &r);
}

/* The checker finds a broken cache. */
static void test_check(void **state) {
  (void)state;
  xcache x;
  xcache_init(&x, PAGE);
  released r = {0};
  xcache_put(&x, at(0), 4 * PAGE, release, &r);
  xcache_put(&x, at(8 * PAGE), 2 * PAGE, release, &r);
  uint8_t e = x.top[1]; /* the entry of 2 pages */
  x.addr[e] = (uintptr_t)at(2 * PAGE); /* overlaps the first */
  assert_int_equal(xcache_check(&x), 1);
  x.addr[e] = (uintptr_t)at(8 * PAGE);
  x.bytes += PAGE;
  assert_int_equal(xcache_check(&x), 1);
  x.bytes -= PAGE;
  x.nonempty[0] |= 1; /* the stack of 1 page is empty */
  assert_int_equal(xcache_check(&x), 1);
  x.nonempty[0] &= ~(uint64_t)1;
  x.used ^= (uint64_t)1 << e; /* an entry on a stack, said unused */
  assert_int_equal(xcache_check(&x), 1);
  x.used ^= (uint64_t)1 << e;
  assert_int_equal(xcache_check(&x), 0);
}

/* Random puts (joined or not) and takes (with a slack or not) of disjoint
 * extents against a model: every byte
 * put is handed out by a take, sent back by release, or still cached, once;
 * a take answers whenever some entry is large enough. */
static uint64_t seed;

static void test_random(void **state) {
  (void)state;
  seed_state = seed;
  xcache x;
  xcache_init(&x, PAGE);
  static released r;
  r = (released){0};
  size_t put = 0, taken = 0;
  uintptr_t next = 0;
  for (unsigned step = 0; step < 200000; step++) {
    size_t bytes = (1 + seed_below(XCACHE_BLOCK_MAX / PAGE)) * PAGE;
    if (seed_below(2)) {
      if (seed_below(2))
        xcache_put_joined(&x, at(next), bytes, release, &r);
      else
        xcache_put(&x, at(next), bytes, release, &r);
      next += bytes;
      put += bytes;
    } else {
      size_t largest = 0;
      for (size_t l = XCACHE_LENGTHS; l > 0 && !largest; l--)
        if (x.top[l - 1] != XCACHE_NONE) largest = l * PAGE;
      bool split = seed_below(4) != 0;
      size_t len = bytes;
      uint8_t *p = xcache_take(&x, &len, seed_below(2) ? bytes / 8 : 0, split);
      if (p) {
        assert_true(len >= bytes && len <= bytes + bytes / 8);
        bytes = len;
        taken += bytes;
        assert_true((uintptr_t)p >= BASE && (uintptr_t)p + bytes <= BASE + next);
      } else if (split) {
        assert_true(largest < bytes);
      }
    }
    assert_true(x.count <= XCACHE_SLOTS && x.bytes <= XCACHE_BYTES);
    assert_int_equal(put, taken + r.total + x.bytes);
    if (step % 1024 == 0) assert_int_equal(xcache_check(&x), 0);
  }
  assert_int_equal(xcache_check(&x), 0);
}

int main(int argc, char **argv) {
  seed = seed_init(argc, argv, "test_xcache");
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_best_fit_from_the_top), cmocka_unit_test(test_bound),
      cmocka_unit_test(test_shed), cmocka_unit_test(test_evict_range), cmocka_unit_test(test_slack), cmocka_unit_test(test_joined),
      cmocka_unit_test(test_check), cmocka_unit_test(test_random),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
