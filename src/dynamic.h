/*
 * dynamic: the DYNAMIC heap's memory. Registered chunks (opts.chunk_size)
 * are obtained from the provider as the heap grows, each added to the extent
 * manager as a region of its own (extents never cross or merge across two
 * chunks) and to the page map; blocks of at least opts.direct_threshold
 * bytes are obtained and registered one by one ("direct" blocks) and given
 * back when freed. opts.size, when not 0, caps the bytes registered at once.
 * pinheap_trim gives back every chunk but the first that is wholly free.
 *
 * Invariants: registered = the sum of live chunk sizes + direct_bytes (the
 * sum of direct block sizes) + what is being obtained now, <= opts.size
 * (when set); direct blocks do not overlap chunks or each other.
 *
 * Thread-safe: the provider is called under no lock of the heap's; adding
 * and removing chunks takes grow_lock; direct blocks take direct_lock.
 */
#ifndef PINHEAP_DYNAMIC_H
#define PINHEAP_DYNAMIC_H

#include <stdbool.h>
#include <stddef.h>

#include "pinheap.h"
#include "tree.h"

/* Chunks are multiples of it and aligned to it; a cap below it is EINVAL. */
#define DYNAMIC_GRANULE ((size_t)2 << 20)

/* A direct block: its own registration. */
typedef struct dynamic_block {
  tree_node by_base;
  void *base;
  size_t size;
  void *handle;
} dynamic_block;

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

/* Direct blocks alone, without chunks: a SIMPLE heap has them too, for what
 * jemalloc cannot serve (heap.h). close gives back those still live. */
void dynamic_direct_open(pinheap *h);
void dynamic_direct_close(pinheap *h);

/* A direct block of size bytes aligned to align; NULL with the error set. */
void *dynamic_direct_alloc(pinheap *h, size_t size, size_t align, bool zero, const char *what);
/* The direct block holding p (exact: starting at p), copied to *out; false
 * when there is none. */
bool dynamic_direct_find(pinheap *h, const void *p, bool exact, pinheap_region *out);
/* Gives back the direct block starting at p; false when there is none. */
bool dynamic_direct_free(pinheap *h, void *p);

/* Calls visit on every direct block, under direct_lock: none is given back
 * meanwhile. */
void dynamic_walk_direct(pinheap *h, void (*visit)(void *base, size_t size, void *arg), void *arg);

/* Gives back every chunk but the first that is wholly free (after a
 * reclaim). */
void dynamic_release_free_chunks(pinheap *h);

/* Number of broken invariants. */
int dynamic_check(pinheap *h);

#endif
