/*
 * Unit tests of the binned size index: its searches against a plain sorted
 * shadow under random inserts and removes (sizeidx_check after each), the
 * class boundaries, and the checker's own tests.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "seed.h"
#include "sizeidx.h"

#define GRAIN ((size_t)4096)

typedef struct item {
  tree_node node;
  size_t size;
  uintptr_t addr;
  bool in;
} item;

#define ITEM(n) ((item *)(void *)(n))

static int item_cmp(const tree_node *a, const tree_node *b) {
  const item *x = ITEM(a), *y = ITEM(b);
  if (x->size != y->size) return x->size < y->size ? -1 : 1;
  return (x->addr > y->addr) - (x->addr < y->addr);
}

static size_t item_size(const tree_node *n) { return ITEM(n)->size; }

static bool item_le(const item *a, const item *b) { return item_cmp(&a->node, &b->node) <= 0; }

/* The shadow's answers: plain scans of every item in the index. */
static item *shadow_ceil(item *items, int n, const item *key) {
  item *best = NULL;
  for (int i = 0; i < n; i++)
    if (items[i].in && item_le(key, &items[i]) && (!best || item_le(&items[i], best))) best = &items[i];
  return best;
}

static item *shadow_floor(item *items, int n, const item *key) {
  item *best = NULL;
  for (int i = 0; i < n; i++)
    if (items[i].in && item_le(&items[i], key) && (!best || item_le(best, &items[i]))) best = &items[i];
  return best;
}

static item *shadow_next(item *items, int n, const item *key) {
  item *best = NULL;
  for (int i = 0; i < n; i++)
    if (items[i].in && !item_le(&items[i], key) && (!best || item_le(&items[i], best))) best = &items[i];
  return best;
}

/* A length that falls in the exact classes, around their end, or in the
 * classes per doubling and the last one. */
static size_t random_size(void) {
  switch (seed_below(4)) {
  case 0: return (1 + seed_below(8)) * GRAIN;
  case 1: return (SIZEIDX_EXACT - 4 + seed_below(9)) * GRAIN;
  case 2: return (1 + seed_below(1u << 14)) * GRAIN;
  default: return ((size_t)1 << (20 + seed_below(10))) * GRAIN + seed_below(3) * GRAIN;
  }
}

static tree_node *node_of(item *it) { return it ? &it->node : NULL; }

static void test_random_against_shadow(void **state) {
  (void)state;
  enum { N = 300 };
  static item items[N];
  sizeidx x;
  sizeidx_init(&x, GRAIN, item_cmp, item_size);
  for (int i = 0; i < N; i++) {
    /* Few distinct sizes per run of items, so that bins hold ties. */
    items[i] = (item){.size = i % 3 ? random_size() : (size_t)(1 + i % 5) * GRAIN, .addr = (uintptr_t)(i + 1) * 4096};
  }
  size_t count = 0;
  for (int step = 0; step < 6000; step++) {
    item *it = &items[seed_below(N)];
    if (it->in) {
      sizeidx_remove(&x, &it->node);
      count--;
    } else {
      sizeidx_insert(&x, &it->node);
      count++;
    }
    it->in = !it->in;
    assert_int_equal(x.count, count);
    if (step % 5 == 0) assert_int_equal(sizeidx_check(&x, "random"), 0);
    item key = {.size = random_size() + seed_below(2), .addr = seed_below(2) ? UINTPTR_MAX : seed_below(N + 2) * 4096};
    if (seed_below(4) == 0) key = items[seed_below(N)];
    assert_ptr_equal(sizeidx_ceil(&x, &key.node), node_of(shadow_ceil(items, N, &key)));
    assert_ptr_equal(sizeidx_floor(&x, &key.node), node_of(shadow_floor(items, N, &key)));
    assert_ptr_equal(sizeidx_next(&x, &key.node), node_of(shadow_next(items, N, &key)));
    item top = {.size = SIZE_MAX, .addr = UINTPTR_MAX};
    assert_ptr_equal(sizeidx_last(&x), node_of(shadow_floor(items, N, &top)));
  }
  /* An in-order walk with next visits every item, in order. */
  item bottom = {.size = 0, .addr = 0};
  size_t seen = 0;
  const item *prev = NULL;
  for (tree_node *n = sizeidx_ceil(&x, &bottom.node); n; n = sizeidx_next(&x, n)) {
    if (prev) assert_true(item_cmp(&prev->node, n) < 0);
    prev = ITEM(n);
    seen++;
  }
  assert_int_equal(seen, count);
}

/* Each length of the exact classes has a bin of its own; above them,
 * lengths share bins in size order; the largest share the last. */
static void test_classes(void **state) {
  (void)state;
  sizeidx x;
  sizeidx_init(&x, GRAIN, item_cmp, item_size);
  static item items[] = {
      {.size = 1 * GRAIN, .addr = 1}, {.size = 2 * GRAIN, .addr = 2},
      {.size = SIZEIDX_EXACT * GRAIN, .addr = 3}, {.size = (SIZEIDX_EXACT + 1) * GRAIN, .addr = 4},
      {.size = (SIZEIDX_EXACT + 2) * GRAIN, .addr = 5}, {.size = (size_t)1 << 50, .addr = 6},
      {.size = ((size_t)1 << 50) + GRAIN, .addr = 7}};
  for (size_t i = 0; i < sizeof items / sizeof *items; i++) sizeidx_insert(&x, &items[i].node);
  assert_int_equal(sizeidx_check(&x, "classes"), 0);
  assert_ptr_equal(x.bins[0].root, &items[0].node);
  assert_ptr_equal(x.bins[1].root, &items[1].node);
  assert_ptr_equal(x.bins[SIZEIDX_EXACT - 1].root, &items[2].node);
  assert_int_equal(x.bins[SIZEIDX_EXACT].count, 2);
  assert_int_equal(x.bins[SIZEIDX_BINS - 1].count, 2);
  /* The smallest that holds 3 grains is the first of the exact class past
   * 2; the largest is the last bin's larger one. */
  item key = {.size = 3 * GRAIN};
  assert_ptr_equal(sizeidx_ceil(&x, &key.node), &items[2].node);
  assert_ptr_equal(sizeidx_last(&x), &items[6].node);
  key.size = (SIZEIDX_EXACT + 2) * GRAIN;
  assert_ptr_equal(sizeidx_floor(&x, &key.node), &items[3].node);
}

static void test_check_catches_breakage(void **state) {
  (void)state;
  sizeidx x;
  sizeidx_init(&x, GRAIN, item_cmp, item_size);
  item a = {.size = 3 * GRAIN, .addr = 1}, b = {.size = 300 * GRAIN, .addr = 2};
  sizeidx_insert(&x, &a.node);
  sizeidx_insert(&x, &b.node);
  assert_int_equal(sizeidx_check(&x, "intact"), 0);
  fprintf(stderr, "test_sizeidx: the next reports are expected (deliberate corruption)\n");
  /* A node whose size changed without moving it to its new class's bin. */
  a.size = 4 * GRAIN;
  assert_true(sizeidx_check(&x, "broken (expected)") > 0);
  a.size = 3 * GRAIN;
  /* A bin's bit cleared while it holds a node: searches would skip it. */
  x.nonempty[0] &= ~((uint64_t)1 << 2);
  assert_true(sizeidx_check(&x, "broken (expected)") > 0);
  x.nonempty[0] |= (uint64_t)1 << 2;
  /* The bit of an empty bin set. */
  x.nonempty[0] |= (uint64_t)1 << 7;
  assert_true(sizeidx_check(&x, "broken (expected)") > 0);
  x.nonempty[0] &= ~((uint64_t)1 << 7);
  x.count++;
  assert_true(sizeidx_check(&x, "broken (expected)") > 0);
  x.count--;
  assert_int_equal(sizeidx_check(&x, "restored"), 0);
}

int main(int argc, char **argv) {
  seed_init(argc, argv, "test_sizeidx");
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_random_against_shadow),
      cmocka_unit_test(test_classes),
      cmocka_unit_test(test_check_catches_breakage),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
