#include "ownmap.h"

#include <string.h>
#include <sys/mman.h>

static size_t ownmap_leaf_bytes(const ownmap *om) {
  return ((size_t)1 << (OWNMAP_LEAF_SHIFT - om->page_shift)) / 8;
}

int ownmap_init(ownmap *om, size_t page) {
  om->page_shift = (unsigned)__builtin_ctzl(page);
  void *top = mmap(NULL, sizeof(*om->top) << OWNMAP_TOP_BITS, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (top == MAP_FAILED) return -1;
  om->top = top;
  return 0;
}

void ownmap_fini(ownmap *om) {
  if (!om->top) return;
  for (size_t i = 0; i < ((size_t)1 << OWNMAP_TOP_BITS); i++) {
    _Atomic uint64_t *leaf = atomic_load(&om->top[i]);
    if (leaf) munmap((void *)leaf, ownmap_leaf_bytes(om));
  }
  munmap(om->top, sizeof(*om->top) << OWNMAP_TOP_BITS);
  om->top = NULL;
}

static _Atomic uint64_t *ownmap_leaf(ownmap *om, uintptr_t a) {
  _Atomic(_Atomic uint64_t *) *slot = &om->top[a >> OWNMAP_LEAF_SHIFT];
  _Atomic uint64_t *leaf = atomic_load_explicit(slot, memory_order_acquire);
  if (leaf) return leaf;
  void *m = mmap(NULL, ownmap_leaf_bytes(om), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1,
                 0);
  if (m == MAP_FAILED) return NULL;
  _Atomic uint64_t *expected = NULL;
  if (atomic_compare_exchange_strong(slot, &expected, (_Atomic uint64_t *)m)) return m;
  munmap(m, ownmap_leaf_bytes(om));
  return expected;
}

int ownmap_set(ownmap *om, const void *addr, size_t bytes, bool owned) {
  uintptr_t a = (uintptr_t)addr, end = a + bytes;
  if (end >> 47) return -1;
  uintptr_t page = (uintptr_t)1 << om->page_shift;
  for (; a < end; a += page) {
    _Atomic uint64_t *leaf = ownmap_leaf(om, a);
    if (!leaf) return -1;
    size_t bit = (a & (((uintptr_t)1 << OWNMAP_LEAF_SHIFT) - 1)) >> om->page_shift;
    uint64_t mask = (uint64_t)1 << (bit & 63);
    if (owned)
      atomic_fetch_or_explicit(&leaf[bit >> 6], mask, memory_order_release);
    else
      atomic_fetch_and_explicit(&leaf[bit >> 6], ~mask, memory_order_release);
  }
  return 0;
}
