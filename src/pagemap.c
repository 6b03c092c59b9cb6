#include "pagemap.h"

#include <stdio.h>
#include <sys/mman.h>

int pagemap_init(pagemap *pm, void *base, size_t bytes, size_t page) {
  pm->base = (uintptr_t)base;
  pm->page_shift = (unsigned)__builtin_ctzl(page);
  pm->pages = bytes >> pm->page_shift;
  pm->map_bytes = (pm->pages * sizeof(uint32_t) + page - 1) & ~(page - 1);
  void *m = mmap(NULL, pm->map_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m == MAP_FAILED) return -1;
  pm->tags = m;
  return 0;
}

void pagemap_fini(pagemap *pm) {
  if (pm->tags) munmap((void *)pm->tags, pm->map_bytes);
  pm->tags = NULL;
}

static size_t pagemap_index(const pagemap *pm, const void *p) { return ((uintptr_t)p - pm->base) >> pm->page_shift; }

static void pagemap_fill(pagemap *pm, void *addr, size_t bytes, uint32_t tag) {
  size_t first = pagemap_index(pm, addr), n = bytes >> pm->page_shift;
  for (size_t i = 0; i < n; i++) atomic_store_explicit(&pm->tags[first + i], tag, memory_order_relaxed);
  atomic_thread_fence(memory_order_release);
}

void pagemap_set_small(pagemap *pm, void *addr, size_t bytes) { pagemap_fill(pm, addr, bytes, PAGEMAP_SMALL); }

void pagemap_clear(pagemap *pm, void *addr, size_t bytes) { pagemap_fill(pm, addr, bytes, 0); }

void pagemap_fill_returned(pagemap *pm, void *addr, size_t bytes) { pagemap_fill(pm, addr, bytes, PAGEMAP_RETURNED); }

void pagemap_set_large(pagemap *pm, void *addr, size_t npages) {
  atomic_store_explicit(&pm->tags[pagemap_index(pm, addr)], (uint32_t)(npages << 1), memory_order_release);
}

bool pagemap_resize_large(pagemap *pm, void *addr, size_t old_pages, size_t new_pages) {
  uint32_t expect = (uint32_t)(old_pages << 1);
  return atomic_compare_exchange_strong(&pm->tags[pagemap_index(pm, addr)], &expect, (uint32_t)(new_pages << 1));
}

size_t pagemap_take_large(pagemap *pm, void *addr) {
  _Atomic uint32_t *slot = &pm->tags[pagemap_index(pm, addr)];
  uint32_t tag = atomic_load_explicit(slot, memory_order_acquire);
  while (tag >= 2 && !(tag & 1)) {
    if (atomic_compare_exchange_weak(slot, &tag, 0)) return tag >> 1;
  }
  return 0;
}

int pagemap_check(const pagemap *pm, size_t large_blocks, size_t large_pages) {
  int broken = 0;
  size_t blocks = 0, pages = 0;
  for (size_t i = 0; i < pm->pages; i++) {
    uint32_t tag = atomic_load_explicit(&pm->tags[i], memory_order_relaxed);
    if (tag < 2 || tag == PAGEMAP_RETURNED || PAGEMAP_IS_SMALL(tag)) continue;
    if (tag & 1) {
      fprintf(stderr, "pagemap: page %zu holds tag %#x, should be 0, SMALL, RETURNED or a length\n", i, tag);
      broken++;
      continue;
    }
    size_t n = tag >> 1;
    blocks++;
    pages += n;
    if (i + n > pm->pages) {
      fprintf(stderr, "pagemap: large block at page %zu of %zu pages should end inside the region\n", i, n);
      broken++;
      continue;
    }
    for (size_t j = i + 1; j < i + n; j++) {
      if (atomic_load_explicit(&pm->tags[j], memory_order_relaxed) != 0) {
        fprintf(stderr, "pagemap: page %zu inside the large block at page %zu should hold 0\n", j, i);
        broken++;
        break;
      }
    }
    i += n - 1;
  }
  if (blocks != large_blocks || pages != large_pages) {
    fprintf(stderr, "pagemap: %zu large blocks of %zu pages found, %zu of %zu counted\n", blocks, pages,
            large_blocks, large_pages);
    broken++;
  }
  return broken;
}
