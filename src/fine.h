/*
 * fine: the fine path for requests of FINE_MIN + 1 to FINE_MAX bytes but
 * the gap of 2-10 KiB: over 1-2 KiB in FINE_STEPS size classes (64 B
 * steps) instead of jemalloc's four, which round these sizes up by up to
 * 25 %: the rounding of 1-2 KiB objects was most of the waste of a FIXED
 * heap under a server-like workload (README, "Placement compared"); over
 * 10-14 KiB in FINE_WIDE_CLASSES classes (12 and 14 KiB): there the
 * rounding is little waste, what jemalloc's slabs of these sizes kept is
 * more (free slots, and emptied slabs left in what was then its arena's
 * first grant).
 * Below 1 KiB the mix of both paths cost the small-object benchmark
 * (16 B - 1 KiB) half its speed (README).
 *
 * A class's objects tile slabs of its own: a few pages (1 to
 * FINE_SLAB_PAGES, at most FINE_SLAB_OBJECTS objects, the least waste per
 * byte of slab, then the fewest pages: with 4 KiB pages at most 1.6 % of
 * the slab, 12 of the 20 classes none) taken from the extent manager
 * (hooks_take, as a large block is) and tagged in the page map with the
 * class and each page's index in its slab (pagemap.h), so a free finds the
 * class and the slab's start without a lookup; the word beside the head
 * page's tag holds the slab's record, which lives outside the heap's
 * memory (meta.h), as jemalloc's metadata does.
 *
 * In front of the slabs, each thread cache (thread.h, by its tcache number)
 * has a front: one stack of freed objects per class, as the cache has per
 * jemalloc bin. A free pushes; a full stack gives its older half back to
 * the slabs under the class's lock; an empty one is filled with half a
 * stack. A slab
 * whose objects are all back is kept as its class's spare (one at most),
 * or goes back to the manager at once; the fronts are emptied and the
 * spares given back by every reclaim, before any ENOMEM (heap.h).
 *
 * Invariants: every slab is on exactly one of its class's lists: full (no
 * free object), partial (some free, not all), or it is the spare (all
 * free); nfree = popcount(free) and free has no bit at or above objects;
 * live = the class's objects not free in a slab (handed out, or in a
 * front); slabs counts the class's slabs, the spare included; every page
 * of a slab holds its fine tag, and its head's word the record.
 *
 * Thread-safe: a class's slabs and counts under its lock; a front by the
 * thread inside its cache (thread_enter), or by the thief that holds the
 * cache; the caller opens the heap's section (heap.h) around every call
 * (or holds a lock that fork's prepare takes): every call takes a class's
 * lock, which fork's prepare does not, and only a section keeps a fork
 * from finding one held.
 */
#ifndef PINHEAP_FINE_H
#define PINHEAP_FINE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "meta.h"
#include "space.h"
#include "thread.h"

#define FINE_MIN ((size_t)1024) /* jemalloc's class: exact */
/* jemalloc's largest small class, the default large_threshold. */
#define FINE_MAX ((size_t)14 << 10)
/* (FINE_GAP_MIN, FINE_GAP_MAX] stays with jemalloc: the PGAS-like and
 * grow-like workloads' small objects reach 4 KiB, and on the fine path
 * they took those H/M up; 4-10 KiB there, in classes of their own, took
 * the recorded programs' H/M up (sqlite3 1.62 -> 2.06: their objects left
 * the arena's first grant, which jemalloc then kept for good, half used;
 * README, "Placement compared"; with exact grants since, 4-14 KiB in
 * 1 KiB classes measured no better: server 1.078 against 1.075). */
#define FINE_GAP_MIN (2 * FINE_MIN)
#define FINE_GAP_MAX (10 * FINE_MIN)
/* Classes over (FINE_MIN, FINE_GAP_MIN], 64 B apart. */
#define FINE_STEPS 16u
/* Classes over (FINE_GAP_MAX, FINE_MAX], FINE_WIDE_STEP apart, the last
 * FINE_MAX: 12 and 14 KiB. */
#define FINE_WIDE_STEP (2 * FINE_MIN)
#define FINE_WIDE_CLASSES 2u
#define FINE_WIDE_SIZE(w) (FINE_GAP_MAX + FINE_WIDE_STEP * ((w) + 1))
#define FINE_CLASSES (FINE_STEPS + FINE_WIDE_CLASSES)
/* The smallest step: class_of's buckets. */
#define FINE_BUCKET (FINE_MIN / FINE_STEPS)
#define FINE_SLAB_OBJECTS 64u /* one bitmap word */
#define FINE_SLAB_PAGES 16u
/* A front's stack holds at most this many bytes of objects, or
 * FINE_STACK_MIN objects where that is more (6-14 KiB: with 4 of 14 KiB
 * every other call took the class's lock, and 2 threads ran 1-14 KiB at
 * half the speed). */
#define FINE_STACK_BYTES ((size_t)64 << 10)
#define FINE_STACK_MIN 32u
/* Fronts, one per jemalloc tcache number (below 2^12: MALLOCX_TCACHE). */
#define FINE_FRONTS 4096u

typedef struct fine_slab {
  uintptr_t base;
  uint64_t free; /* bit i: object i is free in the slab */
  struct fine_slab *prev, *next;
  uint32_t nfree;
  uint8_t cls;
} fine_slab;

typedef struct fine_class {
  pthread_mutex_t lock;
  uint32_t size, objects, pages;
  uint32_t magic; /* offset * magic >> 32 = offset / size, for offsets in a slab */
  fine_slab *partial, *full, *spare;
  size_t slabs;
  size_t live;
  meta_pool records;
} __attribute__((aligned(64))) fine_class;

typedef struct fine_front {
  thread_bin stacks[FINE_CLASSES];
} fine_front;

typedef struct fine {
  space *space;
  size_t page;
  unsigned page_shift;
  /* Written into the first 8 bytes of objects, mixed with each object's
   * address (util_mark; 0: nothing written): mark, when they go back to a
   * slab; fill_mark, when a fill puts them on a stack (the heap's keys,
   * key.h). */
  uint64_t mark, fill_mark;
  size_t front_bytes;
  _Atomic(fine_front *) fronts[FINE_FRONTS];
  uint8_t class_of[(FINE_MAX - FINE_MIN) / FINE_BUCKET]; /* the gap's buckets unused */
  fine_class classes[FINE_CLASSES];
} fine;

/* Sets up f over the space s (page: the system's page). 0, or -1. */
int fine_open(fine *f, space *s, size_t page);
/* Frees the records and fronts; the slabs go with the heap's memory. */
void fine_close(fine *f);

/* Whether the fine path serves a request of n bytes (malloc's alignment):
 * one test, not taken, for those up to FINE_MIN (jemalloc's fast path). */
static inline bool fine_serves(size_t n) {
  if (PH_LIKELY(n - (FINE_MIN + 1) >= FINE_MAX - FINE_MIN)) return false;
  return n - (FINE_GAP_MIN + 1) >= FINE_GAP_MAX - FINE_GAP_MIN;
}
/* The class of a request of n bytes that fine_serves. */
static inline unsigned fine_class_of(const fine *f, size_t n) { return f->class_of[(n - FINE_MIN - 1) / FINE_BUCKET]; }
static inline size_t fine_size(const fine *f, unsigned c) { return f->classes[c].size; }

fine_front *fine_front_make(fine *f, unsigned slot);

/* The front of the thread cache with tcache number slot, made on first use
 * (NULL: none, no memory). The caller is inside that cache. */
static inline fine_front *fine_front_of(fine *f, unsigned slot) {
  fine_front *fr = slot < FINE_FRONTS ? atomic_load_explicit(&f->fronts[slot], memory_order_acquire) : NULL;
  return PH_LIKELY(fr != NULL) ? fr : fine_front_make(f, slot);
}

/* The start of the slab holding p, whose page holds the fine tag tag, and
 * whether an object of its class starts at p. */
static inline bool fine_starts(const fine *f, const void *p, uint32_t tag) {
  const fine_class *k = &f->classes[PAGEMAP_FINE_CLASS(tag)];
  uintptr_t base = ((uintptr_t)p & ~(uintptr_t)(f->page - 1)) - ((uintptr_t)PAGEMAP_FINE_PAGE(tag) << f->page_shift);
  uint32_t off = (uint32_t)((uintptr_t)p - base);
  uint32_t i = (uint32_t)(((uint64_t)off * k->magic) >> 32);
  return i < k->objects && i * k->size == off && PAGEMAP_FINE_PAGE(tag) < k->pages;
}

/* An object of class c for the front fr (NULL: none), filling its stack
 * from the slabs; NULL when no slab could be had. */
void *fine_fill(fine *f, fine_front *fr, unsigned c);
/* The object p of class c (a checked start) back: onto fr's stack when
 * there is room, else half the stack and p, or p straight to its slab when
 * fr is NULL. Aborts, naming p, when p is free in its slab already. */
void fine_spill(fine *f, fine_front *fr, unsigned c, void *p);
/* Empties the front of tcache number slot into the slabs. The caller holds
 * that cache (a thief, or its owner). */
void fine_drain(fine *f, unsigned slot);
/* Gives every class's spare slab back to the manager. */
void fine_reclaim(fine *f);

/* Bytes of the objects out of the slabs (live, or on a front), and of the
 * slabs. */
void fine_counts(fine *f, size_t *allocated, size_t *slab_bytes);
/* Bytes of the objects on the fronts' stacks: takes no lock, reads each
 * stack's count as its thread leaves it (thread_bin_load_count); exact
 * while no thread is inside a call of the fine path. */
size_t fine_front_bytes(fine *f);
/* Number of broken invariants, each described on stderr; tagged: the
 * pages of the page map holding a fine tag, as the caller counted them. */
int fine_check(fine *f, size_t tagged);

#endif
