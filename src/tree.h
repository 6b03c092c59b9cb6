/*
 * tree: an intrusive AVL tree with an optional augmentation callback.
 *
 * Nodes are embedded in the caller's records; the tree never allocates, so it
 * is usable from jemalloc's extent hooks. Keys must be unique under cmp.
 * After any change to a subtree the tree calls update(node) bottom-up on the
 * nodes whose children changed, so a caller can keep per-subtree summaries
 * (the extent manager keeps the largest free size below each node). update
 * says whether the node's summary changed: where neither a subtree's height
 * nor its summary changed, its ancestors are not revisited.
 *
 * Invariants (tree_check):
 *   in-order traversal is strictly increasing under cmp;
 *   height(n) = 1 + max(height(left), height(right)), height(NULL) = 0;
 *   |height(left) - height(right)| <= 1 at every node;
 *   count = number of nodes reachable from root.
 *
 * Not thread-safe: synchronization is the caller's.
 */
#ifndef PINHEAP_TREE_H
#define PINHEAP_TREE_H

#include <stdbool.h>
#include <stddef.h>

/* Above the height of any AVL tree that fits in memory (1.44 log2 n). */
#define TREE_MAX_HEIGHT 96

typedef struct tree_node {
  struct tree_node *left;
  struct tree_node *right;
  int height;
} tree_node;

typedef int (*tree_cmp_fn)(const tree_node *a, const tree_node *b);
/* Recomputes n's summary from n and its children's; returns whether it
 * changed. */
typedef bool (*tree_update_fn)(tree_node *n);

typedef struct tree {
  tree_node *root;
  tree_cmp_fn cmp;
  tree_update_fn update; /* NULL: no augmentation */
  size_t count;
} tree;

void tree_init(tree *t, tree_cmp_fn cmp, tree_update_fn update);
/* n must not be in the tree and no equal key may be. O(log n). */
void tree_insert(tree *t, tree_node *n);
/* n must be in the tree. O(log n). */
void tree_remove(tree *t, tree_node *n);
/* Re-runs update on the path from the root to n, after the caller changed
 * what update reads in n without changing its key. O(log n). */
void tree_refresh(tree *t, tree_node *n);
/* The smallest node >= key, or NULL. */
tree_node *tree_ceil(const tree *t, const tree_node *key);
/* The largest node <= key, or NULL. */
tree_node *tree_floor(const tree *t, const tree_node *key);
/* In one descent: *floor = tree_floor(key), *next = tree_next(key). */
void tree_around(const tree *t, const tree_node *key, tree_node **floor, tree_node **next);
/* The largest node < key / the smallest node > key, or NULL. */
tree_node *tree_prev(const tree *t, const tree_node *key);
tree_node *tree_next(const tree *t, const tree_node *key);
tree_node *tree_first(const tree *t);
tree_node *tree_last(const tree *t);
static inline int tree_height(const tree_node *n) { return n ? n->height : 0; }

/* Calls visit on every node in order; stops early when visit returns non-zero
 * and returns that value. Recursion depth is the tree's height. */
int tree_walk(const tree *t, int (*visit)(tree_node *n, void *arg), void *arg);

/* Number of broken invariants; each is described on stderr with the label. */
int tree_check(const tree *t, const char *label);

#endif
