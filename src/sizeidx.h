/*
 * sizeidx: nodes ordered by (size, then whatever the caller's cmp orders
 * ties by), kept in bins by size class, so that a best-fit search or change
 * touches one small tree and a bitmap instead of one tree of every node.
 *
 * Classes, in units of the index's granule g (a power of two): a node of s
 * bytes has p = s / g units; p <= SIZEIDX_EXACT is class p - 1 (one size per
 * class: the bins of the common lengths hold ties only); above that,
 * SIZEIDX_SUB classes per doubling, and the last class holds every size from
 * its own up. Classes follow size order, so the index's order is its bins'
 * in class order, each bin a tree ordered by cmp.
 *
 * Invariants (sizeidx_check): each bin is a valid tree (tree_check) whose
 * nodes are all of its class; bit b of nonempty is set iff bin b holds a
 * node; count = the number of nodes in all bins.
 *
 * Complexity: O(log k) tree work in the k nodes of one bin, plus a scan of
 * SIZEIDX_BINS / 64 bitmap words. Not thread-safe: synchronization is the
 * caller's.
 */
#ifndef PINHEAP_SIZEIDX_H
#define PINHEAP_SIZEIDX_H

#include <stddef.h>
#include <stdint.h>

#include "tree.h"

/* Exact classes: lengths of 1..SIZEIDX_EXACT granules (1 MiB of 4 KiB pages,
 * the medium blocks' extents); then SIZEIDX_SUB per doubling. */
#define SIZEIDX_EXACT_LG 8u
#define SIZEIDX_EXACT (1u << SIZEIDX_EXACT_LG)
#define SIZEIDX_SUB_LG 2u
#define SIZEIDX_SUB (1u << SIZEIDX_SUB_LG)
/* A multiple of 64 (the bitmap's words): 16 doublings above the exact ones. */
#define SIZEIDX_BINS (SIZEIDX_EXACT + 16u * SIZEIDX_SUB)

typedef size_t (*sizeidx_size_fn)(const tree_node *n);

typedef struct sizeidx {
  unsigned shift; /* log2 of the granule */
  size_t count;
  sizeidx_size_fn size_of;
  uint64_t nonempty[SIZEIDX_BINS / 64];
  tree bins[SIZEIDX_BINS];
} sizeidx;

/* granule: a power of two; cmp: orders by size_of first (ascending), keys
 * unique; size_of: a node's size, a positive multiple of the granule for a
 * node in the index (a search key may have any size). */
void sizeidx_init(sizeidx *x, size_t granule, tree_cmp_fn cmp, sizeidx_size_fn size_of);
/* n must not be in the index, nor an equal key. */
void sizeidx_insert(sizeidx *x, tree_node *n);
/* n must be in the index. */
void sizeidx_remove(sizeidx *x, tree_node *n);
/* The smallest node >= key / the largest node <= key / the smallest node
 * > n (n need not be in the index), or NULL. */
tree_node *sizeidx_ceil(const sizeidx *x, const tree_node *key);
tree_node *sizeidx_floor(const sizeidx *x, const tree_node *key);
tree_node *sizeidx_next(const sizeidx *x, const tree_node *n);
/* The largest node, or NULL. */
tree_node *sizeidx_last(const sizeidx *x);

/* Number of broken invariants; each is described on stderr with the label. */
int sizeidx_check(const sizeidx *x, const char *label);

#endif
