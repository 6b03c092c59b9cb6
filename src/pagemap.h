/*
 * pagemap: one 32-bit tag per page of every region (chunk) of a heap, so that
 * a free can tell in O(1), without a lock and without touching jemalloc, what
 * a pointer is.
 *
 *   0                   the page is not the start of anything handed out:
 *                       free, in a thread cache, or inside a large block
 *   PAGEMAP_SMALL       the page belongs to an extent jemalloc took through
 *                       the hooks (slabs, its metadata);
 *                       PAGEMAP_SMALL_OBJ(b, phase, owner) also says that
 *                       the objects starting on the page are of jemalloc
 *                       bin b, at the offsets that phase takes to a
 *                       multiple of b's size (a slab's objects tile it from
 *                       its page-aligned start: they start every size of b
 *                       from the first one on the page), and that their
 *                       slab is of the heap's arena in slot owner
 *                       (arenas.h), so that a free can tell in the same
 *                       load whether the freeing thread's arena owns them
 *   PAGEMAP_RETURNED    jemalloc gave the page back, but the rest of its grant
 *                       is still in jemalloc (see hooks.h)
 *   npages << 1 (>= 2)  the first page of a large block of npages pages
 *   PAGEMAP_FINE(c, i)  page i of a slab of the fine path's class c
 *                       (fine.h): the slab starts i pages before
 *
 * Chunks: the first chunk added is found by one comparison (a FIXED heap has
 * no other); every chunk is also in a two-level directory by 2 MiB granule,
 * so chunks must start and end on 2 MiB boundaries, except the first. A
 * chunk's record and tags stay mapped after it is removed (a racing reader
 * of a stale pointer reads zeros, never unmapped memory) and are reused.
 *
 * Beside each tag, a birth stamp (CLOCK_MONOTONIC nanoseconds, to a clock
 * tick) for the head page of a large block: when it was handed out, for
 * reports; for the head page of a fine slab the same word holds the slab's
 * record (fine.h).
 *
 * Invariants: a large block's head holds its length; its other pages hold 0,
 * and so do free pages and extents kept in thread caches; a page holds a
 * small tag or PAGEMAP_RETURNED iff it lies in a grant (hooks.h). Tags are
 * reserved with MAP_NORESERVE: only the parts written cost memory.
 *
 * Thread-safe: tags are atomics (a large block's head is claimed by
 * compare-and-swap, so two frees of one block cannot both succeed); adding
 * and removing chunks takes the map's lock; lookups take none.
 */
#ifndef PINHEAP_PAGEMAP_H
#define PINHEAP_PAGEMAP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "meta.h"
#include "ph_assert.h"
#include "util.h"

#define PAGEMAP_SMALL 1u
#define PAGEMAP_RETURNED 3u
/* A small tag with a bin: bits 0-1 PAGEMAP_SMALL, 2-8 the bin + 1, 9-14 the
 * owner, 15-31 the phase / 8 (every object starts 8-aligned in its page,
 * and every size is a multiple of 8, so the phase is too). */
#define PAGEMAP_OWNER_SHIFT 9
#define PAGEMAP_OWNERS 64u
#define PAGEMAP_PHASE_SHIFT 15
#define PAGEMAP_PHASE_LIMIT ((uint32_t)8 << (32 - PAGEMAP_PHASE_SHIFT))
#define PAGEMAP_SMALL_OBJ(b, phase, owner)                                                             \
  (PAGEMAP_SMALL | (((uint32_t)(b) + 1) << 2) | ((uint32_t)(owner) << PAGEMAP_OWNER_SHIFT) | \
   (((uint32_t)(phase) >> 3) << PAGEMAP_PHASE_SHIFT))
/* The bin of a small tag, or -1 when the tag names none. */
#define PAGEMAP_BIN_OF(tag) ((((tag)&3u) == PAGEMAP_SMALL) ? (int)(((tag) >> 2) & 0x7Fu) - 1 : -1)
/* The phase of a small tag with a bin. */
#define PAGEMAP_PHASE_OF(tag) (((tag) >> PAGEMAP_PHASE_SHIFT) << 3)
/* The owner (arena slot) of a small tag with a bin. */
#define PAGEMAP_OWNER_OF(tag) (((tag) >> PAGEMAP_OWNER_SHIFT) & (PAGEMAP_OWNERS - 1))
#define PAGEMAP_IS_SMALL(tag) (((tag)&3u) == PAGEMAP_SMALL)
/* Fine slabs: low bits 3 like PAGEMAP_RETURNED, class + 1 (1 to 255) above
 * them, the page's index in its slab from PAGEMAP_PHASE_SHIFT up. */
#define PAGEMAP_FINE(c, i) (3u | (((uint32_t)(c) + 1) << 2) | ((uint32_t)(i) << PAGEMAP_PHASE_SHIFT))
#define PAGEMAP_IS_FINE(tag) (((tag)&3u) == 3u && (tag) != PAGEMAP_RETURNED)
/* The class of a fine tag. */
#define PAGEMAP_FINE_CLASS(tag) ((((tag) >> 2) & 0xFFu) - 1)
/* The index in its slab of the page of a fine tag. */
#define PAGEMAP_FINE_PAGE(tag) ((tag) >> PAGEMAP_PHASE_SHIFT)
#define PAGEMAP_MAX_PAGES (UINT32_MAX >> 1)

#define PAGEMAP_GRANULE_SHIFT 21
#define PAGEMAP_LEAF_BITS 13
#define PAGEMAP_TOP_BITS (47 - PAGEMAP_GRANULE_SHIFT - PAGEMAP_LEAF_BITS)

/* A chunk: a registered range and its tags. */
typedef struct pagemap_chunk {
  uintptr_t base;
  size_t size;
  void *handle; /* the provider's registration handle */
  _Atomic uint32_t *tags;
  size_t tag_bytes; /* mapped for tags (may exceed what size needs) */
  _Atomic uint64_t *births; /* twice tag_bytes */
  bool live;
  struct pagemap_chunk *next; /* every record, live or not */
} pagemap_chunk;

typedef _Atomic(pagemap_chunk *) pagemap_leaf[1u << PAGEMAP_LEAF_BITS];

typedef struct pagemap {
  unsigned page_shift;
  uintptr_t base; /* the first chunk */
  uintptr_t span;
  _Atomic uint32_t *tags;
  pagemap_chunk *first;
  _Atomic(pagemap_leaf *) *dir; /* 2^PAGEMAP_TOP_BITS leaves */
  pthread_mutex_t lock;
  meta_pool records;
  pagemap_chunk *chunks;
} pagemap;

int pagemap_init(pagemap *pm, size_t page);
void pagemap_fini(pagemap *pm);

/* Adds [base, base + size) with its handle. 0, or -1 (no memory, or a chunk
 * other than the first not on 2 MiB boundaries). */
int pagemap_add(pagemap *pm, void *base, size_t size, void *handle);
/* Removes the chunk starting at base; its tags must all be 0. Removing the
 * first chunk must not race with lookups (it only undoes a failed start). */
void pagemap_remove(pagemap *pm, void *base);

pagemap_chunk *pagemap_chunk_slow(const pagemap *pm, uintptr_t p);

/* The live chunk holding p, or NULL. */
static inline pagemap_chunk *pagemap_chunk_of(const pagemap *pm, const void *p) {
  if (PH_LIKELY((uintptr_t)p - pm->base < pm->span)) return pm->first;
  return pagemap_chunk_slow(pm, (uintptr_t)p);
}

/* The tag slot of the page holding p when p is in the first chunk, else
 * NULL: without a call, for the fast paths (pagemap_slot finds the rest). */
static inline _Atomic uint32_t *pagemap_slot_first(const pagemap *pm, const void *p) {
  uintptr_t off = (uintptr_t)p - pm->base;
  if (PH_UNLIKELY(off >= pm->span)) return NULL;
  /* A first chunk has its tags (so the callers' test of NULL folds). */
  if (!pm->tags) __builtin_unreachable();
  return &pm->tags[off >> pm->page_shift];
}

/* The tag slot of the page holding p, or NULL when p is in no chunk. */
static inline _Atomic uint32_t *pagemap_slot(const pagemap *pm, const void *p) {
  _Atomic uint32_t *slot = pagemap_slot_first(pm, p);
  if (PH_LIKELY(slot != NULL)) return slot;
  pagemap_chunk *c = pagemap_chunk_slow(pm, (uintptr_t)p);
  return c ? &c->tags[((uintptr_t)p - c->base) >> pm->page_shift] : NULL;
}

static inline bool pagemap_covers(const pagemap *pm, const void *p) { return pagemap_slot(pm, p) != NULL; }

/* Whether [addr, addr + size) lies inside one live chunk. */
static inline bool pagemap_within_chunk(const pagemap *pm, const void *addr, size_t size) {
  uintptr_t a = (uintptr_t)addr;
  pagemap_chunk *c = size && a + size > a ? pagemap_chunk_of(pm, addr) : NULL;
  return c && a + size - c->base <= c->size;
}

/* The tag of the page holding p; p must be covered. */
static inline uint32_t pagemap_get(const pagemap *pm, const void *p) {
  return atomic_load_explicit(pagemap_slot(pm, p), memory_order_acquire);
}

/* The length in pages of the large block whose head holds tag, or 0 when
 * tag is no head. */
static inline size_t pagemap_large_pages(uint32_t tag) { return tag >= 2 && !(tag & 1) ? tag >> 1 : 0; }

/* The birth stamp of the page holding p (covered): set when a large block
 * is handed out, read by reports (0: none set). */
static inline void pagemap_set_birth(pagemap *pm, const void *p, uint64_t ns) {
  pagemap_chunk *c = pagemap_chunk_of(pm, p);
  atomic_store_explicit(&c->births[((uintptr_t)p - c->base) >> pm->page_shift], ns, memory_order_relaxed);
}
static inline uint64_t pagemap_birth(const pagemap *pm, const void *p) {
  pagemap_chunk *c = pagemap_chunk_of(pm, p);
  return atomic_load_explicit(&c->births[((uintptr_t)p - c->base) >> pm->page_shift], memory_order_relaxed);
}

/* The record of the fine slab whose head page holds p (covered): the word
 * beside the head's tag (NULL: none set). */
static inline void pagemap_set_record(pagemap *pm, const void *p, void *rec) {
  pagemap_set_birth(pm, p, (uint64_t)(uintptr_t)rec);
}
static inline void *pagemap_record(const pagemap *pm, const void *p) {
  return (void *)(uintptr_t)pagemap_birth(pm, p);
}

/* Range setters: [addr, addr + bytes) must lie in one chunk. */
void pagemap_set_small(pagemap *pm, void *addr, size_t bytes);
void pagemap_clear(pagemap *pm, void *addr, size_t bytes);
void pagemap_fill_returned(pagemap *pm, void *addr, size_t bytes);
void pagemap_set_large(pagemap *pm, void *addr, size_t npages);
/* Tags the npages pages at addr as a slab of the fine path's class c. */
void pagemap_set_fine(pagemap *pm, void *addr, size_t npages, unsigned c);
/* Replaces a head's length old_pages by new_pages; false if the head did not
 * hold old_pages (a racing free). */
bool pagemap_resize_large(pagemap *pm, void *addr, size_t old_pages, size_t new_pages);
/* Claims the large block whose head tag is *slot for freeing: returns its
 * length in pages and clears the head, or returns 0 if the slot holds no
 * large block's head. */
size_t pagemap_take_large(_Atomic uint32_t *slot);

/* Records that the object at p, in a page jemalloc holds, is of bin b, of
 * size bytes, in a slab of the arena in slot owner: its page's tag names
 * the bin, where on the page its objects start and the owner (bins: below
 * 127; sizes: multiples of 8 below PAGEMAP_PHASE_LIMIT; p 8-aligned;
 * owner below PAGEMAP_OWNERS). */
static inline void pagemap_note_bin(pagemap *pm, const void *p, unsigned b, uint32_t size, unsigned owner) {
  PH_ASSERT(b < 127 && size % 8 == 0 && size < PAGEMAP_PHASE_LIMIT && (uintptr_t)p % 8 == 0 &&
            owner < PAGEMAP_OWNERS);
  _Atomic uint32_t *slot = pagemap_slot(pm, p);
  uint32_t first = (uint32_t)((uintptr_t)p & (((uintptr_t)1 << pm->page_shift) - 1)) % size;
  uint32_t tag = PAGEMAP_SMALL_OBJ(b, first ? size - first : 0, owner);
  if (atomic_load_explicit(slot, memory_order_relaxed) != tag) atomic_store_explicit(slot, tag, memory_order_relaxed);
}

/* The first chunk added (NULL: none), which pagemap_remove removes only to
 * undo a failed start. */
static inline const pagemap_chunk *pagemap_first(const pagemap *pm) { return pm->first; }

/* The live chunk after c in the map's list of records (c NULL: the first
 * one), or NULL: a walk over the live chunks, a step at a time, under the
 * map's lock for each step only. The caller keeps other threads from adding
 * or removing chunks until it is done; it may remove c itself (records
 * stay in the list, so the walk goes on from there). */
const pagemap_chunk *pagemap_next_live(pagemap *pm, const pagemap_chunk *c);

/* Calls visit on every large block of the live chunks (its address and
 * length in bytes), under the map's lock: no chunk goes away meanwhile. */
void pagemap_walk_large(pagemap *pm, void (*visit)(void *addr, size_t bytes, void *arg), void *arg);

/* Pages over all live chunks holding a small or RETURNED tag. */
size_t pagemap_count_jemalloc_pages(pagemap *pm);
/* The same, and into *fine those holding a fine tag, in one pass. */
size_t pagemap_count_pages(pagemap *pm, size_t *fine);

/* Number of broken invariants over the map, given the number of large
 * blocks and the pages they hold as the caller counts them. */
int pagemap_check(pagemap *pm, size_t large_blocks, size_t large_pages);

#endif
