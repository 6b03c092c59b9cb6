/*
 * heap: the core of a heap, under the public face (api.h). Sends small
 * requests to the heap's jemalloc arenas (arenas.h) through the calling
 * thread's cache (thread.h), but for the sizes of the fine path (fine.h),
 * and large ones straight to the extent manager
 * (space.h) as exact page-rounded extents (or a thread's cached extent a
 * little longer, taken whole; DYNAMIC and SIMPLE: or to
 * registrations of their own, dynamic.h); reclaims every cache of the heap
 * and retries once before answering ENOMEM. It knows nothing of the
 * debugging aids nor of fork: the layer above turns the small objects' keys
 * off and holds freed objects back (heap_set_plain), and calls the
 * prefork and postfork steps below.
 *
 * Double frees of small objects are caught by the keys (key.h) a freed
 * object holds, without the debugging aids.
 *
 * Invariants: every large block is one extent in use whose head page in the
 * page map holds its length; large_blocks and large_bytes, plus every
 * thread's share of them (thread_sum_large), count them; small_bytes, plus
 * every thread's share (thread_sum_small), count the bytes of jemalloc's
 * objects out of jemalloc (live, or on a cache's stacks or FIFO); every
 * byte of the regions (chunks) is free in the manager, in a large block, in
 * a thread's extent cache, in an extent jemalloc holds (tagged small or
 * RETURNED), or in a fine slab, exactly once.
 *
 * Fork sections (fork.h): code that takes an inner lock (extent manager,
 * page map, grants, growth, direct blocks) or changes what the invariant
 * above relates runs inside one, so that fork() never copies it half done:
 * while its thread's cache is held busy (thread_enter), or, for a thread
 * without a cache and for lookups, stats, checks and trim, inside the
 * heap's gate (gate_enter); the extent hooks pass the gate with gate_try.
 * A section never takes an outer lock (reclaim, thread registry, arenas),
 * and never opens another: a busy section never waits at the gate, a gate
 * section never enters a cache. Every function below opens its own
 * sections: the caller must be in none and hold none of the heap's locks.
 *
 * Thread-safe, as the public header says.
 */
#ifndef PINHEAP_HEAP_H
#define PINHEAP_HEAP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "arenas.h"
#include "dynamic.h"
#include "fine.h"
#include "gate.h"
#include "key.h"
#include "pinheap.h"
#include "provider.h"
#include "sizeclass.h"
#include "space.h"
#include "thread.h"

/* The least time between two emptyings of every thread's cache, by one
 * thread, for the extents kept under contention (heap.c). */
#define HEAP_CONTENDED_FLUSH_NS 100000000u

typedef struct heap heap;

struct heap {
  pinheap_options opts; /* as checked; SIMPLE: size 0 */
  size_t page;
  size_t large_threshold; /* requests above it take the large path */
  key keys; /* the small objects' keys */
  bool poison; /* heap_set_plain: freed blocks a cache reuses or lets go of are checked */
  provider prov;
  space space;
  pinheap_region region; /* FIXED: the one region */
  dynamic dyn;           /* DYNAMIC and SIMPLE */
  sizeclass classes;
  fine fine; /* FINE_MIN + 1 to FINE_MAX bytes but (FINE_GAP_MIN, FINE_GAP_MAX], up to large_threshold */
  arenas arenas;
  thread_registry threads;
  pthread_mutex_t reclaim_lock;
  gate gate; /* closed by the fork steps */
  _Atomic size_t large_bytes;  /* the part of threads without a cache */
  _Atomic size_t large_blocks;
  _Atomic size_t small_bytes;  /* of thread_cache's small_bytes, the same part */
  _Atomic size_t peak_seen; /* high-water mark of in_use as stats calls saw it */
  /* Set when a thread keeps an extent its free found contended (heap.c),
   * cleared when every thread's cache is emptied for it. */
  atomic_bool contended_kept;
  /* Called after an allocation answered ENOMEM (the error set), in no
   * section (heap_on_enomem). */
  void (*on_enomem)(void *ctx, heap *h, const char *what, size_t size);
  void *on_enomem_ctx;
};

/* Opens the heap in h (zeroed memory that does not move) for the options
 * *o, which options_check passed. 0, or -1 with the error set (nothing left
 * open). */
int heap_open(heap *h, const pinheap_options *o);
/* Gives everything back. No other call may race with it. */
void heap_close(heap *h);

/* For the layer above, before the heap is used: fn(ctx, h, what, size) is
 * called after each allocation that answers ENOMEM. */
void heap_on_enomem(heap *h, void (*fn)(void *ctx, heap *h, const char *what, size_t size), void *ctx);
/* For the layer above that checks frees itself (debug.h), before the heap
 * is used: no keys are written into freed small objects; each thread holds
 * back its last hold freed small objects from reuse; poison: a freed block
 * that a cache hands out again, or lets go of after holding it back, must
 * still be poisoned (canary.h). */
void heap_set_plain(heap *h, uint32_t hold, bool poison);

/* The public calls' paths, with the small objects' keys. size bytes
 * aligned to align (0: malloc's alignment), zeroed when asked; NULL with
 * the error set. heap_malloc: align 0, not zeroed. */
void *heap_malloc(heap *h, size_t size, const char *what);
void *heap_alloc(heap *h, size_t size, size_t align, bool zero, const char *what);
/* p not NULL; aborts, with a message naming p, when p is no live block. */
void heap_free(heap *h, void *p);
size_t heap_usable_size(heap *h, const void *p);
/* p not NULL, size not 0. */
void *heap_realloc(heap *h, void *p, size_t size);

/* The same without the keys, for the layer of heap_set_plain. */
typedef enum heap_kind { HEAP_SMALL, HEAP_LARGE, HEAP_DIRECT } heap_kind;
/* size bytes aligned to align (0: malloc's alignment), not zeroed. */
void *heap_alloc_plain(heap *h, size_t size, size_t align, const char *what);
/* The bytes usable at the live block ptr and its kind; aborts, naming what,
 * when ptr is no live block (as far as the heap can tell). */
size_t heap_usable_plain(heap *h, const void *ptr, heap_kind *kind, const char *what);
void heap_free_plain(heap *h, void *ptr);
/* Resizes the large block ptr of old bytes in place to new bytes (page
 * multiples, new above the large threshold); false when the extent after it
 * is not free. */
bool heap_resize_plain(heap *h, void *ptr, size_t old, size_t new);
/* DYNAMIC and SIMPLE: a direct block of size bytes, with room to grow when
 * it replaces one of grow_from registered bytes (dynamic_direct_alloc). */
void *heap_direct_plain(heap *h, size_t size, size_t grow_from, const char *what);
/* dynamic_direct_resize of the live direct block ptr to bytes (a page
 * multiple); *registered gets its registration's size. */
bool heap_direct_resize_plain(heap *h, void *ptr, size_t bytes, size_t *registered);
/* dynamic_direct_quarantine of the live direct block ptr. */
bool heap_quarantine_plain(heap *h, void *ptr);

/* pinheap_owns, pinheap_region_of, pinheap_trim and pinheap_get_stats. */
bool heap_owns(heap *h, const void *p);
int heap_region_of(heap *h, const void *p, pinheap_region *out);
void heap_trim(heap *h);
void heap_get_stats(heap *h, pinheap_stats *out);

/* Empties every thread cache of the heap and purges its arenas, so that every
 * free extent is back in the manager. */
void heap_reclaim(heap *h);

/* fork(2) (fork.h): prepare takes the outer locks (arenas, reclaim, thread
 * registry), steals the thread caches and closes the gate, each waiting for
 * the threads inside; parent undoes it; child too, after forgetting the
 * threads that did not survive the fork. */
void heap_prefork(heap *h);
void heap_postfork_parent(heap *h);
void heap_postfork_child(heap *h);

/* Number of broken invariants of the core and its modules; each described
 * on stderr. */
int heap_check(heap *h);

#endif
