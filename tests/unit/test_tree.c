/* Unit tests of the intrusive AVL tree, with tree_check after every change. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "seed.h"
#include "tree.h"

typedef struct item {
  tree_node node;
  int key;
  int max_below; /* augmentation: the largest key in the subtree */
} item;

#define ITEM(n) ((item *)(void *)(n))

static int item_cmp(const tree_node *a, const tree_node *b) { return (ITEM(a)->key > ITEM(b)->key) - (ITEM(a)->key < ITEM(b)->key); }

static bool item_update(tree_node *n) {
  int m = ITEM(n)->key;
  if (n->left && ITEM(n->left)->max_below > m) m = ITEM(n->left)->max_below;
  if (n->right && ITEM(n->right)->max_below > m) m = ITEM(n->right)->max_below;
  bool changed = ITEM(n)->max_below != m;
  ITEM(n)->max_below = m;
  return changed;
}

static int check_aug(tree_node *n, void *arg) {
  int *bad = arg;
  int m = ITEM(n)->key;
  if (n->left && ITEM(n->left)->max_below > m) m = ITEM(n->left)->max_below;
  if (n->right && ITEM(n->right)->max_below > m) m = ITEM(n->right)->max_below;
  if (m != ITEM(n)->max_below) (*bad)++;
  return 0;
}

static void test_order_and_search(void **state) {
  (void)state;
  tree t;
  tree_init(&t, item_cmp, item_update);
  item items[100];
  for (int i = 0; i < 100; i++) {
    items[i].key = (i * 37) % 100 * 2; /* even keys 0..198, scrambled */
    tree_insert(&t, &items[i].node);
    assert_int_equal(tree_check(&t, "t"), 0);
  }
  assert_int_equal(t.count, 100);
  assert_int_equal(ITEM(tree_first(&t))->key, 0);
  assert_int_equal(ITEM(tree_last(&t))->key, 198);
  item key = {.key = 51};
  assert_int_equal(ITEM(tree_ceil(&t, &key.node))->key, 52);
  assert_int_equal(ITEM(tree_floor(&t, &key.node))->key, 50);
  key.key = 50;
  assert_int_equal(ITEM(tree_ceil(&t, &key.node))->key, 50);
  assert_int_equal(ITEM(tree_prev(&t, &key.node))->key, 48);
  assert_int_equal(ITEM(tree_next(&t, &key.node))->key, 52);
  key.key = 199;
  assert_null(tree_ceil(&t, &key.node));
  key.key = -1;
  assert_null(tree_floor(&t, &key.node));
  /* tree_around: floor and next in one descent, for every key around the
   * stored ones (both ends included). */
  for (key.key = -1; key.key <= 199; key.key++) {
    tree_node *lo, *hi;
    tree_around(&t, &key.node, &lo, &hi);
    assert_ptr_equal(lo, tree_floor(&t, &key.node));
    assert_ptr_equal(hi, tree_next(&t, &key.node));
  }
  /* The height of an AVL tree of 100 nodes is at most 1.44 log2(102). */
  assert_true(tree_height(t.root) <= 9);
}

static void test_random_insert_remove(void **state) {
  (void)state;
  enum { N = 2000 };
  static item items[N];
  static int in[N];
  tree t;
  tree_init(&t, item_cmp, item_update);
  for (int i = 0; i < N; i++) items[i].key = i;
  size_t count = 0;
  for (int step = 0; step < 20000; step++) {
    int i = (int)seed_below(N);
    if (in[i]) {
      tree_remove(&t, &items[i].node);
      count--;
    } else {
      tree_insert(&t, &items[i].node);
      count++;
    }
    in[i] = !in[i];
    if (step % 7 == 0 || step < 200) {
      assert_int_equal(tree_check(&t, "random"), 0);
      int bad = 0;
      tree_walk(&t, check_aug, &bad);
      assert_int_equal(bad, 0);
    }
    assert_int_equal(t.count, count);
  }
  /* Every key present is found, every key absent is not. */
  for (int i = 0; i < N; i++) {
    item key = {.key = i};
    tree_node *n = tree_ceil(&t, &key.node);
    if (in[i])
      assert_ptr_equal(n, &items[i].node);
    else
      assert_true(n == NULL || ITEM(n)->key > i);
  }
}

static void test_refresh(void **state) {
  (void)state;
  tree t;
  tree_init(&t, item_cmp, item_update);
  item items[10];
  for (int i = 0; i < 10; i++) {
    items[i].key = i * 10;
    tree_insert(&t, &items[i].node);
  }
  /* Change a key without changing its rank, then refresh the path. */
  items[9].key = 95;
  tree_refresh(&t, &items[9].node);
  assert_int_equal(ITEM(t.root)->max_below, 95);
  assert_int_equal(tree_check(&t, "refresh"), 0);
}

static void test_check_catches_breakage(void **state) {
  (void)state;
  tree t;
  tree_init(&t, item_cmp, NULL);
  item a = {.key = 1}, b = {.key = 2};
  tree_insert(&t, &a.node);
  tree_insert(&t, &b.node);
  int saved = t.root->height;
  t.root->height = 7;
  assert_true(tree_check(&t, "broken (expected)") > 0);
  t.root->height = saved;
  t.count = 5;
  assert_true(tree_check(&t, "broken (expected)") > 0);
}

int main(int argc, char **argv) {
  seed_init(argc, argv, "test_tree");
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_order_and_search),
      cmocka_unit_test(test_random_insert_remove),
      cmocka_unit_test(test_refresh),
      cmocka_unit_test(test_check_catches_breakage),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
