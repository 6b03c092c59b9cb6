/*
 * placement: where em.h's rules place a page-aligned request under
 * EM_TWO_ENDED and EM_FIRST_FIT, found by a plain walk of the free extents,
 * so that the tests and the fuzzer check that the manager's indexes find
 * what a scan of every free extent finds.
 */
#ifndef PINHEAP_TEST_PLACEMENT_H
#define PINHEAP_TEST_PLACEMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "em.h"

typedef struct placement_query {
  size_t size, small_max;
  size_t best_size, high_size;
  uintptr_t best, high, low;
} placement_query;

/* em_walk_free visitor, over the free extents in address order. */
static inline int placement_visit(uintptr_t addr, size_t size, void *arg) {
  placement_query *q = arg;
  if (size < q->size) return 0;
  if (!q->low) q->low = addr;
  q->high = addr;
  q->high_size = size;
  /* Best fit: the smallest; ties, the highest for a small request (the
   * later one in address order), the lowest for a large one. */
  bool small = q->size <= q->small_max;
  if (!q->best || size < q->best_size || (small && size == q->best_size)) {
    q->best = addr;
    q->best_size = size;
  }
  return 0;
}

/* Where em_alloc must place size bytes aligned to a page (m's policy
 * EM_TWO_ENDED or EM_FIRST_FIT, no free extent at address 0), or 0 when nothing fits: a small extent at the top of the best
 * fit when that is a small hole, else at the top of the highest fit; a large
 * one at the bottom of the best fit (two-ended) or of the lowest fit (first
 * fit). */
static inline uintptr_t placement_expected(em *m, size_t size) {
  size_t small_max = m->small_max;
  placement_query q = {.size = size, .small_max = small_max};
  em_walk_free(m, placement_visit, &q);
  if (!q.best) return 0;
  if (size <= small_max) return q.best_size <= small_max ? q.best + q.best_size - size : q.high + q.high_size - size;
  return m->policy == EM_FIRST_FIT ? q.low : q.best;
}

#endif
