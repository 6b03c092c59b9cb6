/*
 * heap: the public handle. Picks the mode; sends small requests to the
 * heap's jemalloc arenas through the calling thread's cache and large ones
 * straight to the extent manager as exact page-rounded extents (DYNAMIC and
 * SIMPLE: or to registrations of their own); reclaims every cache of the
 * heap and retries before answering ENOMEM. A SIMPLE heap is a DYNAMIC heap
 * over ordinary memory from the local provider, charged to the system's
 * commit limit, without a cap and registered nowhere.
 *
 * Invariants: every large block is one extent in use
 * whose head page in the page map holds its length; large_blocks and
 * large_bytes count them; every byte of the regions (chunks) is free in the
 * manager, in a large block, in a thread's extent cache, or in an extent
 * jemalloc holds (tagged small or RETURNED), exactly once.
 *
 * Fork sections (fork.h): code that takes an inner lock (extent manager,
 * page map, grants, growth, direct blocks) or changes what the invariant
 * above relates runs inside one, so that fork() never copies it half done:
 * while its thread's cache is held busy (thread_enter), or, for a thread
 * without a cache and for lookups, stats, checks and trim, inside the
 * heap's gate (gate_enter); the extent hooks pass the gate with gate_try.
 * A section never takes an outer lock (reclaim, thread registry), and never
 * opens another: a busy section never waits at the gate, a gate section
 * never enters a cache.
 *
 * Thread-safe, as the public header says.
 */
#ifndef PINHEAP_HEAP_H
#define PINHEAP_HEAP_H

#include <stdatomic.h>

#include "dynamic.h"
#include "em.h"
#include "gate.h"
#include "hooks.h"
#include "local.h"
#include "pagemap.h"
#include "pinheap.h"
#include "sizeclass.h"
#include "thread.h"

#define HEAP_MAX_ARENAS 64u

struct pinheap {
  pinheap_options opts;
  size_t page;
  size_t large_threshold; /* requests above it take the large path */
  unsigned debug;         /* opts.debug, and DEBUG_VALGRIND (debug.h): any bit sends every call through debug.c */
  uint64_t cached_key;    /* random, in a small object freed into a thread's cache (heap.c) */
  uint64_t free_key;      /* random, in a small object freed into jemalloc (heap.c) */
  local_options local_opts;
  pinheap_provider local;            /* the local provider, when opts.provider is NULL */
  const pinheap_provider *provider;
  pinheap_region region; /* FIXED: the one region */
  em em;
  pagemap pm;
  hooks_shared grants;
  sizeclass classes;
  _Atomic size_t large_bytes;
  _Atomic size_t large_blocks;
  _Atomic size_t peak_seen; /* high-water mark of in_use as stats calls and direct blocks saw it */
  /* Arenas are made on first use (heap_arena_for): arenas[0 .. narenas) are
   * live, published by narenas (release), never more than arenas_max;
   * arena_lock serializes their making. */
  _Atomic unsigned narenas;
  _Atomic unsigned arenas_max; /* lowered to narenas when one cannot be made */
  _Atomic unsigned next_arena; /* round robin over the arena slots */
  pthread_mutex_t arena_lock;
  /* FIXED (two-ended): arenas_max pieces of HEAP_ARENA_BYTES ending at
   * arena_reserve, near the top of the region, taken from the manager at
   * creation, arena i's the i-th from there down (NULL: none); those of
   * arenas not made yet count as in use. */
  char *arena_reserve;
  bool arena_reserve_pristine;
  unsigned arena_index[HEAP_MAX_ARENAS];
  hooks_arena arenas[HEAP_MAX_ARENAS];
  thread_registry threads;
  pthread_mutex_t reclaim_lock;
  gate gate;                /* closed by the fork handlers (fork.h) */
  /* Called after an allocation answered ENOMEM (the error set), in no
   * section: the out-of-memory report (report.h) when opts.oom_report
   * names a file, set by pinheap_create. */
  void (*on_enomem)(void *ctx, pinheap *heap, const char *what, size_t size);
  void *on_enomem_ctx;
  struct pinheap *fork_next; /* the fork handlers' list of live heaps */
  /* DYNAMIC and SIMPLE (dynamic.h) */
  size_t chunk_size;
  _Atomic size_t registered;   /* bytes counted against the cap, in flight included */
  _Atomic size_t direct_bytes; /* bytes registered for direct blocks, quarantined ones included */
  _Atomic size_t direct_used;  /* bytes live direct blocks use */
  pthread_mutex_t grow_lock;
  pthread_mutex_t direct_lock;
  tree direct;
  meta_pool direct_pool;
  dynamic_quarantine quarantine;
};

/* Empties every thread cache of the heap and purges its arenas, so that every
 * free extent is back in the manager. */
void heap_reclaim(pinheap *heap);

/* The fork handlers' steps for one heap (fork.h): prepare takes the outer
 * locks, steals the thread caches and closes the gate, each waiting for the
 * threads inside; parent undoes it; child too, after forgetting the threads
 * that did not survive the fork. */
void heap_fork_prepare(pinheap *heap);
void heap_fork_parent(pinheap *heap);
void heap_fork_child(pinheap *heap);

/* The heap's provider, for every caller alike. obtain: size bytes aligned
 * to align into *out; 0, or an errno value (ENOMEM, or EINVAL for a NULL or
 * misaligned base, which is given back) with the error text set, naming
 * what, the provider and the size (the local provider's own text stands). */
int heap_provider_obtain(pinheap *heap, size_t size, size_t align, pinheap_region *out, const char *what);
void heap_provider_release(pinheap *heap, const pinheap_region *r);
/* Whether memory fresh from the provider reads as zero (the local one's). */
bool heap_provider_zeroed(const pinheap *heap);

/* Raises the high-water mark of in_use to what is in use now (DYNAMIC:
 * after a direct block, which the extent manager does not see). */
void heap_note_peak(pinheap *heap);

/* Number of broken invariants of the whole heap; each described on stderr. */
int heap_check(pinheap *heap);

/* The paths under the public calls, without the debugging aids, for
 * debug.c. Each opens its own section (fork.h): the caller must be in no
 * section and hold none of the heap's outer locks. */
typedef enum heap_kind { HEAP_SMALL, HEAP_LARGE, HEAP_DIRECT } heap_kind;
/* size bytes aligned to align (0: malloc's alignment), not zeroed; a freed
 * block a thread's cache hands out again goes through debug_block_reused
 * first. NULL with the error set. */
void *heap_alloc_plain(pinheap *heap, size_t size, size_t align, const char *what);
/* The bytes usable at the live block ptr and its kind; aborts, naming what,
 * when ptr is no live block (as far as the heap can tell). */
size_t heap_usable_plain(pinheap *heap, const void *ptr, heap_kind *kind, const char *what);
void heap_free_plain(pinheap *heap, void *ptr);
/* Resizes the large block ptr of old bytes in place to new bytes (page
 * multiples, new above the large threshold); false when the extent after it
 * is not free. */
bool heap_resize_plain(pinheap *heap, void *ptr, size_t old, size_t new);
/* DYNAMIC and SIMPLE: a direct block of size bytes, with room to grow when
 * it replaces one of grow_from registered bytes (dynamic_direct_alloc). */
void *heap_direct_plain(pinheap *heap, size_t size, size_t grow_from, const char *what);
/* dynamic_direct_resize of the live direct block ptr to bytes (a page
 * multiple); *registered gets its registration's size. */
bool heap_direct_resize_plain(pinheap *heap, void *ptr, size_t bytes, size_t *registered);
/* dynamic_direct_quarantine of the live direct block ptr. */
bool heap_quarantine_plain(pinheap *heap, void *ptr);

#endif
