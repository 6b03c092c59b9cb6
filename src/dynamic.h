/*
 * dynamic: the memory of a DYNAMIC heap, and of a SIMPLE one (a DYNAMIC heap
 * over the local provider, without a cap). Registered chunks (opts.chunk_size)
 * are obtained from the provider as the heap grows, each added to the extent
 * manager as a region of its own (extents never cross or merge across two
 * chunks) and to the page map; blocks of at least opts.direct_threshold
 * bytes are obtained and registered one by one ("direct" blocks) and given
 * back when freed. opts.size, when not 0, caps the bytes registered at once.
 * pinheap_trim gives back every chunk but the first that is wholly free.
 *
 * A direct block that realloc moves to grow gets a registration half as big
 * again as its old one (as the cap allows): the steps that fit in it take
 * no new registration, so growing a block by steps to n bytes registers
 * O(log n) times and copies O(n) bytes. A block resizes in place while more
 * than half of its registration stays in use; a shrink below that moves it,
 * giving the rest back.
 *
 * The quarantine (PINHEAP_DEBUG_QUARANTINE, debug.h): a freed direct block
 * may stay registered, no longer live, until the quarantine's bytes pass
 * its cap (oldest first), the heap needs the bytes under its cap, or
 * pinheap_trim; its leave function sees each block before it is given back.
 *
 * The cache (opts.direct_cache bytes, opts.direct_cache_blocks blocks): a
 * freed direct block keeps its registration, no longer live, so that a
 * later direct block reuses it without a provider call (no mmap, no
 * registration, no page fault on the pages touched before). A request of
 * n bytes (page-rounded) takes the smallest cached registration of S bytes
 * with S - S / DYNAMIC_CACHE_SLACK <= n <= S, aligned as asked: the block is
 * the whole registration, never a part of one nor two joined. The oldest
 * leave before a block enters where it would pass either bound (so it
 * never holds more, even for a moment); every cached one is given back
 * before the heap reports ENOMEM (the cap is reached or the provider
 * refuses: then the request is tried again), at pinheap_trim and at close.
 * Cached bytes are registered but not in use: in_use and peak leave them
 * out. Their pages are not advised away (registered memory stays backed).
 *
 * Invariants: registered = the sum of live chunk sizes + direct_bytes (the
 * sum of the registrations of direct blocks, live, quarantined and cached)
 * + what is being obtained or given back now, <= cap (when set);
 * direct_used = the sum of the used bytes of live direct blocks; direct
 * blocks do not overlap chunks or each other; the quarantine's list holds
 * exactly the quarantined blocks, oldest first, and bytes and count sum
 * them; the cache's list holds exactly the cached blocks, oldest first,
 * its bytes and count sum them within the cache's bounds, cached_bytes
 * equals its bytes, the by_size tree holds the same blocks; peak >= every
 * in_use (the space's bytes in use + direct_bytes - cached_bytes) seen
 * after a direct block was registered; peak_registered >= every registered
 * seen after an obtain.
 * Only dynamic.c touches a dynamic record.
 *
 * Thread-safe: the provider and the leave function are called under no lock
 * of the heap's; adding and removing chunks takes grow_lock; direct blocks
 * the quarantine and the cache take direct_lock.
 */
#ifndef PINHEAP_DYNAMIC_H
#define PINHEAP_DYNAMIC_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "meta.h"
#include "pinheap.h"
#include "provider.h"
#include "space.h"
#include "tree.h"

/* Chunks are multiples of it and aligned to it; a cap below it is EINVAL. */
#define DYNAMIC_GRANULE ((size_t)2 << 20)

/* A request may leave up to 1/DYNAMIC_CACHE_SLACK of the cached
 * registration it reuses unused. */
#define DYNAMIC_CACHE_SLACK 4
/* The most blocks the cache may be asked to hold (opts.direct_cache_blocks). */
#define DYNAMIC_CACHE_MAX_BLOCKS 1024u

typedef enum dynamic_state { DYNAMIC_LIVE, DYNAMIC_QUARANTINED, DYNAMIC_CACHED } dynamic_state;

/* A direct block: its own registration. Invariants: used is a page
 * multiple, size / 2 < used <= size; a quarantined or cached block is on
 * the list of its state (and a cached one in the cache's by_size tree), and
 * nothing may use it. */
typedef struct dynamic_block {
  tree_node by_base;
  tree_node by_size; /* cached: in the cache's tree, by (size, base) */
  void *base;
  size_t size; /* registered */
  size_t used; /* the block's bytes (page-rounded): what usable_size sees */
  void *handle;
  dynamic_state state;
  struct dynamic_block *newer, *older; /* neighbours on its state's list */
} dynamic_block;

/* Blocks of one state, oldest first. Invariant: bytes and count sum them. */
typedef struct dynamic_list {
  dynamic_block *oldest, *newest;
  size_t bytes, count;
} dynamic_list;

typedef struct dynamic_cache {
  dynamic_list list;
  tree by_size;
  size_t max_bytes;  /* bytes it may hold (0: off); a bigger block never enters */
  size_t max_blocks; /* blocks it may hold (0: off) */
} dynamic_cache;

typedef struct dynamic_quarantine {
  dynamic_list list;
  size_t cap; /* bytes it may hold; a bigger block never enters */
  /* Sees each block that leaves (its base and used bytes), before it is
   * given back: the debugging aid's check. NULL while the quarantine is
   * off. */
  void (*leave)(void *ctx, void *base, size_t size);
  void *ctx;
} dynamic_quarantine;

typedef struct dynamic {
  space *space; /* the heap's: chunks are its regions */
  provider *prov;
  size_t page;
  size_t chunk_size;
  size_t cap; /* opts.size: bytes registered at once, at most (0: no cap) */
  _Atomic size_t registered;
  _Atomic size_t direct_bytes; /* registered for direct blocks, quarantined and cached ones included */
  _Atomic size_t direct_used;  /* used by live direct blocks */
  _Atomic size_t cached_bytes; /* the cache's bytes, for readers without direct_lock */
  _Atomic size_t peak;
  _Atomic size_t peak_registered;
  pthread_mutex_t grow_lock;
  pthread_mutex_t direct_lock;
  tree direct;
  meta_pool direct_pool;
  dynamic_quarantine quarantine;
  dynamic_cache cache;
} dynamic;

/* Sets up the DYNAMIC memory of a heap over its open space s, whose regions
 * come from p: chunks of chunk_size bytes (rounded up to DYNAMIC_GRANULE)
 * under a cap of cap bytes (0: none), the first one now; the space's hooks
 * grow through dynamic_grow. 0, or -1 with the error set; dynamic_close
 * undoes either. */
int dynamic_open(dynamic *d, space *s, provider *p, size_t page, size_t chunk_size, size_t cap);
/* Gives every direct block back, cached and quarantined ones too (the
 * chunks go with the space). */
void dynamic_close(dynamic *d);

/* Adds a chunk with room for at least bytes (ctx: the dynamic record; the
 * hooks' and the large path's way to grow). 0, or -1 (cap reached or
 * provider refused). */
int dynamic_grow(void *ctx, size_t bytes);
/* Why the calling thread's last attempt to grow a heap failed, or "" when
 * it succeeded: the reason behind an ENOMEM of a call that had to grow. */
const char *dynamic_refusal(void);

/* A direct block of size bytes aligned to align; NULL with the error set.
 * grow_from: the registered bytes of the block it replaces as it grows
 * (realloc), or 0: when the new block is bigger, its registration is up to
 * half as big again as that one, as the cap allows. */
void *dynamic_direct_alloc(dynamic *d, size_t size, size_t align, bool zero, size_t grow_from, const char *what);
/* The live direct block holding p (exact: starting at p): its used bytes,
 * and its registration copied to *out (when out is not NULL); 0 when there
 * is none. */
size_t dynamic_direct_find(dynamic *d, const void *p, bool exact, pinheap_region *out);
/* Resizes the live direct block p to bytes (a page multiple) in place when
 * its registration holds them and stays more than half used; *out (when not
 * NULL) gets its registration. false when it does not fit, or p is no live
 * direct block (*out then has size 0). */
bool dynamic_direct_resize(dynamic *d, void *p, size_t bytes, pinheap_region *out);
/* Gives back the live direct block starting at p; false when there is none. */
bool dynamic_direct_free(dynamic *d, void *p);
/* Moves the live direct block starting at p to the quarantine, then lets
 * the oldest quarantined blocks leave while they hold more than its cap;
 * false (nothing done) when p is no live direct block, its registration is
 * larger than the cap, or the quarantine is off. */
bool dynamic_direct_quarantine(dynamic *d, void *p);
/* Lets every quarantined block leave. */
void dynamic_quarantine_drain(dynamic *d);
/* Turns the quarantine on, before the heap is used: freed direct blocks of
 * registrations up to cap bytes may enter; leave(ctx, base, used) sees each
 * one that leaves. */
void dynamic_quarantine_open(dynamic *d, size_t cap, void (*leave)(void *ctx, void *base, size_t size), void *ctx);

/* Turns the cache on, before the heap is used: it holds up to max_bytes
 * bytes in up to max_blocks freed registrations (max_blocks at most
 * DYNAMIC_CACHE_MAX_BLOCKS; either 0: off). */
void dynamic_cache_open(dynamic *d, size_t max_bytes, size_t max_blocks);
/* Gives back every cached registration; returns how many bytes went. */
size_t dynamic_cache_drain(dynamic *d);
/* The cache's registrations and bytes now, read together. */
void dynamic_cache_stats(dynamic *d, size_t *blocks, size_t *bytes);

/* Calls visit on every live direct block, or on every quarantined one (its
 * base and used bytes), under direct_lock: none is given back meanwhile. */
void dynamic_walk_direct(dynamic *d, void (*visit)(void *base, size_t size, void *arg), void *arg);
void dynamic_walk_quarantine(dynamic *d, void (*visit)(void *base, size_t size, void *arg), void *arg);

/* Gives back every chunk but the first that is wholly free (after a
 * reclaim). */
void dynamic_release_free_chunks(dynamic *d);

/* What the stats count of direct blocks: the bytes registered for them
 * (quarantined and cached ones too), the bytes the live ones use, and how
 * many live ones there are, read together. */
void dynamic_direct_stats(dynamic *d, size_t *registered, size_t *used, size_t *blocks);
/* Bytes registered for direct blocks now. */
size_t dynamic_direct_bytes(dynamic *d);
/* The high-water mark of in_use as the direct blocks saw it. */
size_t dynamic_peak(dynamic *d);
/* The most bytes registered at once so far. */
size_t dynamic_peak_registered(dynamic *d);

/* Number of broken invariants. */
int dynamic_check(dynamic *d);

#endif
