#include "tree.h"

#include <stdio.h>

#include "ph_assert.h"

/* Recomputes n's height and summary; returns whether either changed. */
static bool tree_fix(const tree *t, tree_node *n) {
  int hl = tree_height(n->left), hr = tree_height(n->right);
  int h = 1 + (hl > hr ? hl : hr);
  bool changed = n->height != h;
  n->height = h;
  if (t->update && t->update(n)) changed = true;
  return changed;
}

/*  Right rotation:      n              l
 *                      / \            / \
 *                     l   c   =>     a   n
 *                    / \                / \
 *                   a   b              b   c
 */
static tree_node *tree_rotate_right(const tree *t, tree_node *n) {
  tree_node *l = n->left;
  n->left = l->right;
  l->right = n;
  tree_fix(t, n);
  tree_fix(t, l);
  return l;
}

static tree_node *tree_rotate_left(const tree *t, tree_node *n) {
  tree_node *r = n->right;
  n->right = r->left;
  r->left = n;
  tree_fix(t, n);
  tree_fix(t, r);
  return r;
}

/* Fixes and rebalances n after a change below it; *changed: whether the
 * subtree's height or summary may differ from before (a rotation counts). */
static tree_node *tree_balance(const tree *t, tree_node *n, bool *changed) {
  *changed = tree_fix(t, n);
  int bf = tree_height(n->left) - tree_height(n->right);
  if (bf > 1) {
    *changed = true;
    if (tree_height(n->left->left) < tree_height(n->left->right)) n->left = tree_rotate_left(t, n->left);
    return tree_rotate_right(t, n);
  }
  if (bf < -1) {
    *changed = true;
    if (tree_height(n->right->right) < tree_height(n->right->left)) n->right = tree_rotate_right(t, n->right);
    return tree_rotate_left(t, n);
  }
  return n;
}

/* *dirty: whether the subtree returned differs in height or summary from
 * the one passed; a clean one leaves its ancestors as they were. */
static tree_node *tree_insert_at(tree *t, tree_node *root, tree_node *n, bool *dirty) {
  if (!root) {
    *dirty = true;
    return n;
  }
  int c = t->cmp(n, root);
  PH_ASSERT(c != 0); /* n, or a node of its key, is in the tree already */
  if (c < 0)
    root->left = tree_insert_at(t, root->left, n, dirty);
  else
    root->right = tree_insert_at(t, root->right, n, dirty);
  return *dirty ? tree_balance(t, root, dirty) : root;
}

void tree_init(tree *t, tree_cmp_fn cmp, tree_update_fn update) {
  t->root = NULL;
  t->cmp = cmp;
  t->update = update;
  t->count = 0;
}

void tree_insert(tree *t, tree_node *n) {
  n->left = n->right = NULL;
  n->height = 1;
  if (t->update) t->update(n);
  bool dirty;
  t->root = tree_insert_at(t, t->root, n, &dirty);
  t->count++;
  PH_ASSERT_EXPENSIVE(tree_check(t, "tree") == 0);
}

/* Detaches the smallest node of the subtree into *min; returns the rest. */
/* Detaches the smallest node of the subtree into *min; returns the rest
 * (*dirty as tree_insert_at's). */
static tree_node *tree_take_min(const tree *t, tree_node *root, tree_node **min, bool *dirty) {
  if (!root->left) {
    *min = root;
    *dirty = true;
    return root->right;
  }
  root->left = tree_take_min(t, root->left, min, dirty);
  return *dirty ? tree_balance(t, root, dirty) : root;
}

static tree_node *tree_remove_at(tree *t, tree_node *root, tree_node *n, bool *dirty) {
  PH_ASSERT(root != NULL); /* n is in the tree */
  if (!root) return NULL;
  if (root != n) {
    if (t->cmp(n, root) < 0)
      root->left = tree_remove_at(t, root->left, n, dirty);
    else
      root->right = tree_remove_at(t, root->right, n, dirty);
    return *dirty ? tree_balance(t, root, dirty) : root;
  }
  /*  [ l ][ n ][ r ]  =>  [ l ][ min(r) ][ r - min(r) ]  */
  *dirty = true;
  if (!n->right) return n->left;
  tree_node *min;
  tree_node *rest = tree_take_min(t, n->right, &min, dirty);
  min->left = n->left;
  min->right = rest;
  /* min's old height and summary say nothing of n's subtree: dirty. */
  tree_node *top = tree_balance(t, min, dirty);
  *dirty = true;
  return top;
}

void tree_remove(tree *t, tree_node *n) {
  bool dirty;
  t->root = tree_remove_at(t, t->root, n, &dirty);
  t->count--;
  PH_ASSERT_EXPENSIVE(tree_check(t, "tree") == 0);
}

void tree_refresh(tree *t, tree_node *n) {
  if (!t->update) return;
  tree_node *path[TREE_MAX_HEIGHT];
  size_t k = 0;
  for (tree_node *p = t->root; p != n; p = t->cmp(n, p) < 0 ? p->left : p->right) path[k++] = p;
  /* Up from n while summaries change: above an unchanged one, none does. */
  if (!t->update(n)) return;
  while (k-- > 0 && t->update(path[k])) {
  }
}

tree_node *tree_ceil(const tree *t, const tree_node *key) {
  tree_node *best = NULL;
  for (tree_node *n = t->root; n;) {
    int c = t->cmp(key, n);
    if (c == 0) return n;
    if (c < 0) {
      best = n;
      n = n->left;
    } else {
      n = n->right;
    }
  }
  return best;
}

tree_node *tree_floor(const tree *t, const tree_node *key) {
  tree_node *best = NULL;
  for (tree_node *n = t->root; n;) {
    int c = t->cmp(key, n);
    if (c == 0) return n;
    if (c > 0) {
      best = n;
      n = n->right;
    } else {
      n = n->left;
    }
  }
  return best;
}

void tree_around(const tree *t, const tree_node *key, tree_node **floor, tree_node **next) {
  tree_node *lo = NULL, *hi = NULL;
  for (tree_node *n = t->root; n;) {
    int c = t->cmp(key, n);
    if (c >= 0) {
      lo = n;
      n = n->right;
    } else {
      hi = n;
      n = n->left;
    }
  }
  *floor = lo;
  *next = hi;
}

tree_node *tree_prev(const tree *t, const tree_node *key) {
  tree_node *best = NULL;
  for (tree_node *n = t->root; n;) {
    if (t->cmp(key, n) > 0) {
      best = n;
      n = n->right;
    } else {
      n = n->left;
    }
  }
  return best;
}

tree_node *tree_next(const tree *t, const tree_node *key) {
  tree_node *best = NULL;
  for (tree_node *n = t->root; n;) {
    if (t->cmp(key, n) < 0) {
      best = n;
      n = n->left;
    } else {
      n = n->right;
    }
  }
  return best;
}

tree_node *tree_first(const tree *t) {
  tree_node *n = t->root;
  while (n && n->left) n = n->left;
  return n;
}

tree_node *tree_last(const tree *t) {
  tree_node *n = t->root;
  while (n && n->right) n = n->right;
  return n;
}

static int tree_walk_at(tree_node *n, int (*visit)(tree_node *, void *), void *arg) {
  if (!n) return 0;
  int r = tree_walk_at(n->left, visit, arg);
  if (r) return r;
  r = visit(n, arg);
  if (r) return r;
  return tree_walk_at(n->right, visit, arg);
}

int tree_walk(const tree *t, int (*visit)(tree_node *n, void *arg), void *arg) {
  return tree_walk_at(t->root, visit, arg);
}

typedef struct tree_check_state {
  const tree *t;
  const char *label;
  const tree_node *last;
  size_t seen;
  int broken;
} tree_check_state;

static int tree_check_at(tree_check_state *s, const tree_node *n) {
  if (!n) return 0;
  int hl = tree_check_at(s, n->left);
  if (s->last && s->t->cmp(s->last, n) >= 0) {
    fprintf(stderr, "tree %s: in-order keys should strictly increase\n", s->label);
    s->broken++;
  }
  s->last = n;
  s->seen++;
  int hr = tree_check_at(s, n->right);
  int h = 1 + (hl > hr ? hl : hr);
  if (n->height != h) {
    fprintf(stderr, "tree %s: node height %d should be %d\n", s->label, n->height, h);
    s->broken++;
  }
  if (hl - hr > 1 || hr - hl > 1) {
    fprintf(stderr, "tree %s: subtrees of heights %d and %d should differ by at most 1\n", s->label, hl, hr);
    s->broken++;
  }
  return h;
}

int tree_check(const tree *t, const char *label) {
  tree_check_state s = {t, label, NULL, 0, 0};
  tree_check_at(&s, t->root);
  if (s.seen != t->count) {
    fprintf(stderr, "tree %s: count %zu should equal the %zu nodes reachable\n", label, t->count, s.seen);
    s.broken++;
  }
  return s.broken;
}
