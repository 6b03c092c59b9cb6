/*
 * pagemap: one 32-bit tag per page of a region, so that a free can tell in
 * O(1), without a lock and without touching jemalloc, what a pointer is.
 *
 *   0                   the page is not the start of anything we handed out:
 *                       free, metadata, or inside a large block
 *   PAGEMAP_SMALL       the page belongs to an extent jemalloc took through
 *                       the hooks (slabs, jemalloc's own large sizes, its
 *                       metadata); PAGEMAP_SMALL_BIN(b) also says that the
 *                       objects starting on the page are of jemalloc bin b
 *   PAGEMAP_RETURNED    jemalloc gave the page back, but the rest of its grant
 *                       is still in jemalloc (see hooks.h)
 *   npages << 1 (>= 2)  the first page of a large block of npages pages
 *
 * Invariants: a large block's head holds its length; its other pages hold 0,
 * and so do the pages of free extents and of extents thread caches keep; a
 * page holds a small tag (PAGEMAP_SMALL or PAGEMAP_SMALL_BIN) or
 * PAGEMAP_RETURNED iff it lies in a grant (hooks.h).
 * The map itself is reserved with MAP_NORESERVE: only the parts written cost
 * memory.
 *
 * Thread-safe: tags are atomics; a large block's head is claimed by
 * compare-and-swap so that two frees of one block cannot both succeed.
 */
#ifndef PINHEAP_PAGEMAP_H
#define PINHEAP_PAGEMAP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PAGEMAP_SMALL 1u
#define PAGEMAP_SMALL_BIN(b) (PAGEMAP_SMALL | (((uint32_t)(b) + 1) << 2))
/* The bin of a small tag, or -1 when the tag names none. */
#define PAGEMAP_BIN_OF(tag) ((((tag)&3u) == PAGEMAP_SMALL) ? (int)((tag) >> 2) - 1 : -1)
#define PAGEMAP_IS_SMALL(tag) (((tag)&3u) == PAGEMAP_SMALL)
#define PAGEMAP_RETURNED 3u
#define PAGEMAP_MAX_PAGES (UINT32_MAX >> 1)

typedef struct pagemap {
  uintptr_t base;
  size_t pages;
  unsigned page_shift;
  _Atomic uint32_t *tags;
  size_t map_bytes;
} pagemap;

int pagemap_init(pagemap *pm, void *base, size_t bytes, size_t page);
void pagemap_fini(pagemap *pm);

static inline bool pagemap_covers(const pagemap *pm, const void *p) {
  return (uintptr_t)p - pm->base < ((uintptr_t)pm->pages << pm->page_shift);
}

/* The tag of the page holding p; p must be covered. */
static inline uint32_t pagemap_get(const pagemap *pm, const void *p) {
  size_t i = ((uintptr_t)p - pm->base) >> pm->page_shift;
  return atomic_load_explicit(&pm->tags[i], memory_order_acquire);
}

void pagemap_set_small(pagemap *pm, void *addr, size_t bytes);
/* Records that the object at p, in a page jemalloc holds, is of bin b. */
static inline void pagemap_note_bin(pagemap *pm, const void *p, unsigned b) {
  _Atomic uint32_t *slot = &pm->tags[((uintptr_t)p - pm->base) >> pm->page_shift];
  if (atomic_load_explicit(slot, memory_order_relaxed) != PAGEMAP_SMALL_BIN(b))
    atomic_store_explicit(slot, PAGEMAP_SMALL_BIN(b), memory_order_relaxed);
}
void pagemap_clear(pagemap *pm, void *addr, size_t bytes);
void pagemap_fill_returned(pagemap *pm, void *addr, size_t bytes);
void pagemap_set_large(pagemap *pm, void *addr, size_t npages);
/* Replaces a head's length old_pages by new_pages; false if the head did not
 * hold old_pages (a racing free). */
bool pagemap_resize_large(pagemap *pm, void *addr, size_t old_pages, size_t new_pages);
/* Claims the large block at addr for freeing: returns its length in pages
 * and clears the head, or returns 0 if addr is not a large block's head. */
size_t pagemap_take_large(pagemap *pm, void *addr);

/* Number of broken invariants over the map, given the number of large
 * blocks and the pages they hold as the caller counts them. */
int pagemap_check(const pagemap *pm, size_t large_blocks, size_t large_pages);

#endif
