#include "sizeidx.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "ph_assert.h"
#include "util.h"

#define SIZEIDX_WORDS (SIZEIDX_BINS / 64)
_Static_assert(SIZEIDX_BINS % 64 == 0, "whole bitmap words");

void sizeidx_init(sizeidx *x, size_t granule, tree_cmp_fn cmp, sizeidx_size_fn size_of) {
  PH_ASSERT(util_is_pow2(granule));
  memset(x, 0, sizeof *x);
  x->shift = (unsigned)__builtin_ctzll(granule);
  x->size_of = size_of;
  for (unsigned b = 0; b < SIZEIDX_BINS; b++) tree_init(&x->bins[b], cmp, NULL);
}

/* The class of a size: see the header. Sizes below a granule go with the
 * smallest, as a search key may. */
static unsigned sizeidx_class(const sizeidx *x, size_t size) {
  size_t p = size >> x->shift;
  if (p <= SIZEIDX_EXACT) return p ? (unsigned)p - 1 : 0;
  unsigned lg = 63u - (unsigned)__builtin_clzll(p);
  size_t c = SIZEIDX_EXACT + (size_t)(lg - SIZEIDX_EXACT_LG) * SIZEIDX_SUB + ((p >> (lg - SIZEIDX_SUB_LG)) & (SIZEIDX_SUB - 1));
  return c < SIZEIDX_BINS ? (unsigned)c : SIZEIDX_BINS - 1;
}

static unsigned sizeidx_bin_of(const sizeidx *x, const tree_node *n) { return sizeidx_class(x, x->size_of(n)); }

void sizeidx_insert(sizeidx *x, tree_node *n) {
  unsigned b = sizeidx_bin_of(x, n);
  tree_insert(&x->bins[b], n);
  util_bit_set(x->nonempty, b);
  x->count++;
}

void sizeidx_remove(sizeidx *x, tree_node *n) {
  unsigned b = sizeidx_bin_of(x, n);
  tree_remove(&x->bins[b], n);
  if (!x->bins[b].root) util_bit_clear(x->nonempty, b);
  x->count--;
}

/* The first node of the lowest bin above b that holds one, or NULL. */
static tree_node *sizeidx_first_above(const sizeidx *x, unsigned b) {
  size_t i = util_bit_next(x->nonempty, SIZEIDX_WORDS, (size_t)b + 1);
  return i < SIZEIDX_BINS ? tree_first(&x->bins[i]) : NULL;
}

/* The last node of the highest bin below b that holds one, or NULL. */
static tree_node *sizeidx_last_below(const sizeidx *x, unsigned b) {
  size_t i = b ? util_bit_prev(x->nonempty, (size_t)b - 1) : SIZE_MAX;
  return i != SIZE_MAX ? tree_last(&x->bins[i]) : NULL;
}

tree_node *sizeidx_ceil(const sizeidx *x, const tree_node *key) {
  unsigned b = sizeidx_bin_of(x, key);
  tree_node *n = tree_ceil(&x->bins[b], key);
  return n ? n : sizeidx_first_above(x, b);
}

tree_node *sizeidx_floor(const sizeidx *x, const tree_node *key) {
  unsigned b = sizeidx_bin_of(x, key);
  tree_node *n = tree_floor(&x->bins[b], key);
  return n ? n : sizeidx_last_below(x, b);
}

tree_node *sizeidx_next(const sizeidx *x, const tree_node *n) {
  unsigned b = sizeidx_bin_of(x, n);
  tree_node *next = tree_next(&x->bins[b], n);
  return next ? next : sizeidx_first_above(x, b);
}

tree_node *sizeidx_last(const sizeidx *x) { return sizeidx_last_below(x, SIZEIDX_BINS); }

typedef struct sizeidx_check_state {
  const sizeidx *x;
  const char *label;
  unsigned bin;
  int broken;
} sizeidx_check_state;

static int sizeidx_check_node(tree_node *n, void *arg) {
  sizeidx_check_state *s = arg;
  unsigned b = sizeidx_bin_of(s->x, n);
  if (b != s->bin) {
    fprintf(stderr, "sizeidx %s: a node of %zu bytes (class %u) should not be in bin %u\n", s->label,
            s->x->size_of(n), b, s->bin);
    s->broken++;
  }
  return 0;
}

int sizeidx_check(const sizeidx *x, const char *label) {
  sizeidx_check_state s = {x, label, 0, 0};
  size_t count = 0;
  for (s.bin = 0; s.bin < SIZEIDX_BINS; s.bin++) {
    const tree *t = &x->bins[s.bin];
    s.broken += tree_check(t, label);
    tree_walk(t, sizeidx_check_node, &s);
    count += t->count;
    bool bit = util_bit_test(x->nonempty, s.bin);
    if (bit != (t->root != NULL)) {
      fprintf(stderr, "sizeidx %s: bin %u's bit is %d, but the bin holds %zu nodes\n", label, s.bin, bit, t->count);
      s.broken++;
    }
  }
  if (count != x->count) {
    fprintf(stderr, "sizeidx %s: count %zu should equal the %zu nodes of the bins\n", label, x->count, count);
    s.broken++;
  }
  return s.broken;
}
