/*
 * xcache: one thread's cache of freed extents of medium blocks (a page to
 * XCACHE_CONTENDED_MAX bytes), so that a thread that frees and allocates such
 * blocks takes the extent manager's lock only on a miss or an eviction.
 * Blocks up to XCACHE_BLOCK_MAX bytes are cached whenever there is room;
 * larger ones only when the manager's lock is held by another thread at
 * their free (heap.c): a lone thread's blocks of that size keep the
 * manager's placement.
 *
 * The extents it holds are in use to the extent manager; the heap empties
 * every cache before it answers ENOMEM, so that they cost no failure.
 *
 *   take: best fit, the smallest entry that holds the request, carved
 *         from its top, as the manager carves small extents (em.h):
 *         the rest of the entry stays cached; an entry at most a slack
 *         longer than the request is taken whole;
 *   put:  the extent becomes an entry; then, while more than XCACHE_SLOTS
 *         entries or XCACHE_BYTES bytes are held, the smallest entry (ties:
 *         the newest) goes back through the release callback.
 * Entries sit in one stack per length in pages, and a bitmap says which
 * stacks hold any: every operation is O(1) (a scan of XCACHE_LENGTHS bits).
 * Entries are merged with their neighbours only when the caller says that
 * they may be (xcache_put_joined): two adjacent extents may lie in two
 * regions of a DYNAMIC heap, which no extent may straddle; the manager
 * merges them when they go back.
 *
 * Invariants: count <= XCACHE_SLOTS entries, each on exactly one list: the
 * stack of its length (length[i] pages: the stack of index length - 1) or,
 * unused, the free list; bit i of nonempty is set iff stack i holds an
 * entry; bytes = the sum of the entries' lengths <= XCACHE_BYTES; every
 * entry's address is page-aligned; no two entries overlap; bit e of used
 * is set iff entry e is on a stack.
 *
 * Not thread-safe: its owner uses it, or a thread that has taken it from the
 * owner (thread.h).
 */
#ifndef PINHEAP_XCACHE_H
#define PINHEAP_XCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The largest block whose extent is cached: caching larger ones (up to
 * 1 MiB) raised the smallest heaps of bench/run_placement.sh's PGAS-like
 * workloads by 2 to 7 %. */
#define XCACHE_BLOCK_MAX ((size_t)64 << 10)
/* The largest block whose extent is cached when its free finds the
 * manager's lock held. */
#define XCACHE_CONTENDED_MAX ((size_t)1 << 20)
/* The bound per thread: bytes and entries. Entries of at most
 * XCACHE_BLOCK_MAX never reach the bytes bound (XCACHE_SLOTS of them hold
 * 4 MiB at most); contended ones do: with 2 threads churning 64 KiB - 1 MiB
 * blocks, 16 MiB took 1.4 times the operations per second of 4 MiB. */
#define XCACHE_BYTES ((size_t)16 << 20)
#define XCACHE_SLOTS 64u
/* Stacks of lengths in pages (at least XCACHE_CONTENDED_MAX / 4 KiB), a
 * multiple of 64 (the bitmap's words). */
#define XCACHE_LENGTHS 256u
#define XCACHE_NONE 0xFFu

typedef struct xcache {
  size_t page;
  unsigned page_shift;
  uint32_t count;
  size_t bytes;
  uint64_t nonempty[XCACHE_LENGTHS / 64];
  uint8_t top[XCACHE_LENGTHS]; /* each stack's newest entry, or XCACHE_NONE */
  uint64_t used;               /* the entries on a stack, one bit each */
  uint8_t unused;              /* the free list of entries */
  uint8_t next[XCACHE_SLOTS];  /* the entry below on its list */
  uint16_t length[XCACHE_SLOTS];
  uintptr_t addr[XCACHE_SLOTS];
} xcache;

/* Where an extent goes back when it leaves the cache. */
typedef void xcache_release(void *ctx, void *addr, size_t bytes);

/* An empty cache for extents of pages of page bytes (a power of two, at
 * least 4 KiB). */
void xcache_init(xcache *x, size_t page);

/* *len bytes (a positive page multiple) carved from the best-fitting
 * entry, or NULL when no entry holds that many; that entry whole, and its
 * length in *len, when it is at most slack bytes longer; split false: only
 * an entry of exactly that many (an entry that carries a record in its
 * last bytes, as a poisoned freed block does, cannot be split). */
void *xcache_take(xcache *x, size_t *len, size_t slack, bool split);

/* Caches [addr, addr + bytes), a free extent the caller owns (bytes a
 * positive page multiple, at most XCACHE_CONTENDED_MAX), handing the
 * smallest entries to release while over the bound. */
void xcache_put(xcache *x, void *addr, size_t bytes, xcache_release *release, void *ctx);

/* xcache_put, after joining the extent with the entries that end where it
 * starts or start where it ends, while the whole stays within
 * XCACHE_CONTENDED_MAX bytes. Only for extents that lie in one region
 * with every entry, and carry no record in their last bytes. */
void xcache_put_joined(xcache *x, void *addr, size_t bytes, xcache_release *release, void *ctx);

/* Whether an entry of bytes more would keep the cache within its bound,
 * so that xcache_put hands nothing to release. */
static inline bool xcache_fits(const xcache *x, size_t bytes) {
  return x->count < XCACHE_SLOTS && x->bytes + bytes <= XCACHE_BYTES;
}

/* Whether an entry longer than bytes (a page multiple) is held. */
bool xcache_holds_above(const xcache *x, size_t bytes);

/* Takes out the smallest entries (ties: the newest) until at most half the
 * bound is held, in entries and in bytes, into addrs and lens (room for
 * XCACHE_SLOTS each), for the caller to give back in one go: how many. */
unsigned xcache_shed(xcache *x, void **addrs, size_t *lens);

/* Hands every entry that overlaps [addr, addr + bytes) to release (a
 * block about to grow in place over them); whether there was one. */
bool xcache_evict_range(xcache *x, const void *addr, size_t bytes, xcache_release *release, void *ctx);

/* Hands every entry to release; the cache is empty after. */
void xcache_drain(xcache *x, xcache_release *release, void *ctx);

/* Calls visit on every entry. */
void xcache_walk(const xcache *x, void (*visit)(void *addr, size_t bytes, void *arg), void *arg);

/* Number of broken invariants, each described on stderr. */
int xcache_check(const xcache *x);

#endif
