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
 * being obtained now, <= opts.size (when set); direct_used = the sum of the
 * used bytes of live direct blocks; direct blocks do not overlap chunks or
 * each other; the quarantine's list holds exactly the quarantined blocks,
 * oldest first, and bytes and count sum them.
 *
 * Thread-safe: the provider and the leave function are called under no lock
 * of the heap's; adding and removing chunks takes grow_lock; direct blocks
 * and the quarantine take direct_lock.
 */
#ifndef PINHEAP_DYNAMIC_H
#define PINHEAP_DYNAMIC_H

#include <stdbool.h>
#include <stddef.h>

#include "pinheap.h"
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

/* Sets up an empty DYNAMIC heap with its first chunk. 0, or -1 with the
 * error set. */
int dynamic_open(pinheap *h);
/* Gives every chunk and direct block back. */
void dynamic_close(pinheap *h);

/* Adds a chunk with room for at least bytes (the hooks' and the large path's
 * way to grow). 0, or -1 (cap reached or provider refused). */
int dynamic_grow(void *heap, size_t bytes);
/* Why the calling thread's last attempt to grow a heap failed, or "" when
 * it succeeded: the reason behind an ENOMEM of a call that had to grow. */
const char *dynamic_refusal(void);

/* A direct block of size bytes aligned to align; NULL with the error set.
 * grow_from: the registered bytes of the block it replaces as it grows
 * (realloc), or 0: when the new block is bigger, its registration is up to
 * half as big again as that one, as the cap allows. */
void *dynamic_direct_alloc(pinheap *h, size_t size, size_t align, bool zero, size_t grow_from, const char *what);
/* The live direct block holding p (exact: starting at p): its used bytes,
 * and its registration copied to *out (when out is not NULL); 0 when there
 * is none. */
size_t dynamic_direct_find(pinheap *h, const void *p, bool exact, pinheap_region *out);
/* Resizes the live direct block p to bytes (a page multiple) in place when
 * its registration holds them and stays more than half used; *out (when not
 * NULL) gets its registration. false when it does not fit, or p is no live
 * direct block (*out then has size 0). */
bool dynamic_direct_resize(pinheap *h, void *p, size_t bytes, pinheap_region *out);
/* Gives back the live direct block starting at p; false when there is none. */
bool dynamic_direct_free(pinheap *h, void *p);
/* Moves the live direct block starting at p to the quarantine, then lets
 * the oldest quarantined blocks leave while they hold more than its cap;
 * false (nothing done) when p is no live direct block, its registration is
 * larger than the cap, or the quarantine is off. */
bool dynamic_direct_quarantine(pinheap *h, void *p);
/* Lets every quarantined block leave. */
void dynamic_quarantine_drain(pinheap *h);
/* Turns the quarantine on, before the heap is used: freed direct blocks of
 * registrations up to cap bytes may enter; leave(ctx, base, used) sees each
 * one that leaves. */
void dynamic_quarantine_open(pinheap *h, size_t cap, void (*leave)(void *ctx, void *base, size_t size), void *ctx);

/* Calls visit on every live direct block, or on every quarantined one (its
 * base and used bytes), under direct_lock: none is given back meanwhile. */
void dynamic_walk_direct(pinheap *h, void (*visit)(void *base, size_t size, void *arg), void *arg);
void dynamic_walk_quarantine(pinheap *h, void (*visit)(void *base, size_t size, void *arg), void *arg);

/* Gives back every chunk but the first that is wholly free (after a
 * reclaim). */
void dynamic_release_free_chunks(pinheap *h);

/* Number of broken invariants. */
int dynamic_check(pinheap *h);

#endif
