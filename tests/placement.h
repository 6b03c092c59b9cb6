/*
 * placement: where em.h's rules place a page-aligned request under
 * EM_TWO_ENDED, EM_FIRST_FIT and EM_RING, found by a plain walk of the free
 * extents, so that the tests and the fuzzer check that the manager's
 * indexes find what a scan of every free extent finds. The ring's roving
 * pointer is the caller's own copy, moved by placement_advance, so that
 * where the manager moves its pointer is checked too.
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

typedef struct placement_ring_query {
  size_t size, ring_min;
  uintptr_t rover;
  uintptr_t top;
  size_t top_size;
  uintptr_t held, above, lowest;
} placement_ring_query;

/* em_walk_free visitor: the top, the highest free extent of at least
 * ring_min bytes (the one the blocks placed from the top grow down into). */
static inline int placement_ring_top(uintptr_t addr, size_t size, void *arg) {
  placement_ring_query *q = arg;
  if (size >= q->ring_min) {
    q->top = addr;
    q->top_size = size;
  }
  return 0;
}

/* em_walk_free visitor, once the top is known: the free extents that hold
 * the request with the room the ring keeps (the top keeps 2 ring_min free
 * after it), as the one holding the pointer, the lowest at or above it and
 * the lowest of all. */
static inline int placement_ring_visit(uintptr_t addr, size_t size, void *arg) {
  placement_ring_query *q = arg;
  if (size < q->size || (addr == q->top && size - q->size < 2 * q->ring_min)) return 0;
  if (q->rover && addr <= q->rover && q->rover < addr + size) q->held = addr;
  if (!q->above && addr >= q->rover) q->above = addr;
  if (!q->lowest) q->lowest = addr;
  return 0;
}

/* EM_RING, a request of at least ring_min bytes: the bottom of the free
 * extent holding the pointer rover (0: none), else of the lowest one above
 * it, else of the lowest one, each with the room kept; when none has that
 * room, the top when it holds the request (then no other extent does). */
static inline uintptr_t placement_ring(em *m, size_t size, uintptr_t rover) {
  placement_ring_query q = {.size = size, .ring_min = m->ring_min, .rover = rover};
  em_walk_free(m, placement_ring_top, &q);
  em_walk_free(m, placement_ring_visit, &q);
  if (q.held) return q.held;
  if (q.above) return q.above;
  if (q.lowest) return q.lowest;
  return q.top && q.top_size >= size ? q.top : 0;
}

/* Where em_alloc must place size bytes aligned to a page (m's policy
 * EM_TWO_ENDED, EM_FIRST_FIT or EM_RING, no free extent at address 0;
 * rover: the ring's pointer as placement_advance left it, from 0), or 0
 * when nothing fits: a small extent (under the ring, any below ring_min) at
 * the top of the best fit when that is a small hole, else at the top of the
 * highest fit; a larger one at the bottom of the best fit (two-ended), of
 * the lowest fit (first fit), or of the ring's choice (placement_ring). */
static inline uintptr_t placement_expected(em *m, size_t size, uintptr_t rover) {
  size_t small_max = m->small_max;
  bool ring = m->policy == EM_RING;
  if (ring && size >= m->ring_min) return placement_ring(m, size, rover);
  placement_query q = {.size = size, .small_max = small_max};
  em_walk_free(m, placement_visit, &q);
  if (!q.best) return 0;
  if (size <= small_max || ring) return q.best_size <= small_max ? q.best + q.best_size - size : q.high + q.high_size - size;
  return m->policy == EM_FIRST_FIT ? q.low : q.best;
}

/* Where em_alloc_low must place size bytes aligned to a page (any policy but
 * EM_BUMP, no free extent at address 0), or 0: the bottom of the lowest
 * free extent that holds them. */
static inline uintptr_t placement_low(em *m, size_t size) {
  placement_query q = {.size = size, .small_max = m->small_max};
  em_walk_free(m, placement_visit, &q);
  return q.low;
}

/* After em_alloc placed size bytes at p (any alignment; NULL: nothing
 * placed): the ring's pointer moves to the end of an extent of at least
 * ring_min bytes. em_move never moves it (a move goes by EM_TWO_ENDED's
 * rules). */
static inline void placement_advance(const em *m, uintptr_t *rover, const void *p, size_t size) {
  if (m->policy == EM_RING && p && size >= m->ring_min) *rover = (uintptr_t)p + size;
}

#endif
