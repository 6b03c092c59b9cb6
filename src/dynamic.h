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
 * Invariants: registered = the sum of live chunk sizes + direct_bytes (the
 * sum of the registrations of direct blocks, live and quarantined) + what is
 * being obtained now, <= cap (when set); direct_used = the sum of the used
 * bytes of live direct blocks; direct blocks do not overlap chunks or each
 * other; the quarantine's list holds exactly the quarantined blocks, oldest
 * first, and bytes and count sum them; peak >= every in_use (the space's
 * bytes in use + direct_bytes) seen after a direct block was registered.
 * Only dynamic.c touches a dynamic record.
 *
 * Thread-safe: the provider and the leave function are called under no lock
 * of the heap's; adding and removing chunks takes grow_lock; direct blocks
 * and the quarantine take direct_lock.
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

/* A direct block: its own registration. Invariants: used is a page
 * multiple, size / 2 < used <= size; a quarantined block is on the
 * quarantine's list, and nothing may use it. */
typedef struct dynamic_block {
  tree_node by_base;
  void *base;
  size_t size; /* registered */
  size_t used; /* the block's bytes (page-rounded): what usable_size sees */
  void *handle;
  bool quarantined;
  struct dynamic_block *newer; /* the next on the quarantine's list */
} dynamic_block;

typedef struct dynamic_quarantine {
  dynamic_block *oldest, *newest;
  size_t bytes, count;
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
  _Atomic size_t direct_bytes; /* registered for direct blocks, quarantined ones included */
  _Atomic size_t direct_used;  /* used by live direct blocks */
  _Atomic size_t peak;
  pthread_mutex_t grow_lock;
  pthread_mutex_t direct_lock;
  tree direct;
  meta_pool direct_pool;
  dynamic_quarantine quarantine;
} dynamic;

/* Sets up the DYNAMIC memory of a heap over its open space s, whose regions
 * come from p: chunks of chunk_size bytes (rounded up to DYNAMIC_GRANULE)
 * under a cap of cap bytes (0: none), the first one now; the space's hooks
 * grow through dynamic_grow. 0, or -1 with the error set; dynamic_close
 * undoes either. */
int dynamic_open(dynamic *d, space *s, provider *p, size_t page, size_t chunk_size, size_t cap);
/* Gives every direct block back (the chunks go with the space). */
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

/* Calls visit on every live direct block, or on every quarantined one (its
 * base and used bytes), under direct_lock: none is given back meanwhile. */
void dynamic_walk_direct(dynamic *d, void (*visit)(void *base, size_t size, void *arg), void *arg);
void dynamic_walk_quarantine(dynamic *d, void (*visit)(void *base, size_t size, void *arg), void *arg);

/* Gives back every chunk but the first that is wholly free (after a
 * reclaim). */
void dynamic_release_free_chunks(dynamic *d);

/* What the stats count of direct blocks: the bytes registered for them
 * (quarantined ones too), the bytes the live ones use, and how many live
 * ones there are, read together. */
void dynamic_direct_stats(dynamic *d, size_t *registered, size_t *used, size_t *blocks);
/* Bytes registered for direct blocks now. */
size_t dynamic_direct_bytes(dynamic *d);
/* The high-water mark of in_use as the direct blocks saw it. */
size_t dynamic_peak(dynamic *d);

/* Number of broken invariants. */
int dynamic_check(dynamic *d);

#endif
