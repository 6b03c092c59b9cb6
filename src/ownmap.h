/*
 * ownmap: one bit per page of the address space, set for the pages jemalloc
 * mapped for a SIMPLE heap's arenas, so that a free or pinheap_owns tells the
 * heap's pointers from foreign ones in O(1) without asking jemalloc (whose
 * arenas.lookup in 5.3 crashes on addresses it never mapped).
 *
 * Two levels: a top array by GiB of address space, and a bitmap per GiB
 * (32 KiB) mapped when first needed. Invariant: a bit is set iff its page
 * lies in an extent jemalloc obtained through the heap's hooks and has not
 * given back.
 *
 * Thread-safe: bits change by atomic OR and AND; a bitmap is installed by
 * compare-and-swap; tests take no lock.
 */
#ifndef PINHEAP_OWNMAP_H
#define PINHEAP_OWNMAP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OWNMAP_LEAF_SHIFT 30 /* a bitmap per GiB */
#define OWNMAP_TOP_BITS (47 - OWNMAP_LEAF_SHIFT)

typedef struct ownmap {
  unsigned page_shift;
  _Atomic(_Atomic uint64_t *) *top;
} ownmap;

int ownmap_init(ownmap *om, size_t page);
void ownmap_fini(ownmap *om);
/* Marks [addr, addr + bytes) owned or not; 0, or -1 (no memory for a bitmap). */
int ownmap_set(ownmap *om, const void *addr, size_t bytes, bool owned);

static inline bool ownmap_test(const ownmap *om, const void *p) {
  uintptr_t a = (uintptr_t)p;
  if (a >> 47) return false;
  _Atomic uint64_t *leaf = atomic_load_explicit(&om->top[a >> OWNMAP_LEAF_SHIFT], memory_order_acquire);
  if (!leaf) return false;
  size_t bit = (a & (((uintptr_t)1 << OWNMAP_LEAF_SHIFT) - 1)) >> om->page_shift;
  return (atomic_load_explicit(&leaf[bit >> 6], memory_order_relaxed) >> (bit & 63)) & 1;
}

#endif
