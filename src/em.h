/*
 * em: the extent manager. It owns one or more regions of address space and
 * hands out page-aligned extents of them.
 *
 * Glossary:
 *   region   a contiguous range added by em_add_region (FIXED: the heap's one
 *            registered region). Extents never cross a region boundary, and
 *            free extents of two regions are never merged, so a block never
 *            straddles two registrations.
 *   extent   a page-aligned, page-multiple range inside one region, either
 *            free (recorded here) or in use (handed out; not recorded here:
 *            in use = the region minus its free extents).
 *
 * Policy EM_TWO_ENDED (the default):
 *   - an extent of at most small_max bytes is "small": it is taken best fit
 *     from the free extents of at most small_max bytes (ties: highest address)
 *     and carved from that extent's top; when none fits, it is carved from the
 *     top of the highest-addressed free extent that fits. Small extents thus
 *     pack at the top of the region and fill small holes first, and never land
 *     in a hole between large blocks while room remains above them;
 *   - a larger extent is taken best fit from all free extents (ties: lowest
 *     address) and carved from that extent's bottom;
 *   - a freed extent is merged at once with free neighbours of its region.
 * Policy EM_RING: an extent below ring_min bytes is placed as a small one
 * under EM_TWO_ENDED (from the top; which holes count as small still goes
 * by small_max), and one of at least ring_min bytes next fit, at the bottom
 * of the free extent holding the roving pointer, else of the
 * lowest-addressed free extent that fits above the pointer, else (wrapping
 * round) of the lowest-addressed one that fits; the pointer then moves to
 * the extent's end. Large arrays thus follow each other round the region
 * like a ring buffer: when the oldest die first, the pointer keeps meeting
 * the room they left, and holes between arrays are not scattered by best
 * fit. Medium blocks stay at the top, out of the ring's way, and the ring
 * keeps room for them to grow down: it takes from the highest free extent
 * of at least ring_min bytes (the one below them) only what leaves
 * 2 ring_min bytes of it free, unless no other free extent fits. Taking
 * the bottom of the pointer's extent rather than the pointer's own place
 * leaves no hole behind the pointer once everything below it has died.
 * A move (em_move: a block grown by realloc) is placed by EM_TWO_ENDED's
 * rules and leaves the pointer where it was: a vector that grows lives on
 * past the arrays allocated after it, and placed at the pointer it cut the
 * ring's room (grow-by-realloc needed an 8% larger heap than under
 * EM_TWO_ENDED; the PGAS-like workload, which moves nothing, is unchanged).
 * Policy EM_FIRST_FIT: as EM_TWO_ENDED, but an extent of more than small_max
 * bytes is carved from the bottom of the lowest-addressed free extent that
 * fits (address-ordered first fit).
 * Policy EM_BUMP: a pointer per region that only moves up; freed extents are
 * never reused (the behaviour of bump-pointer extent hooks, for comparison).
 *
 * An aligned request succeeds whenever some free extent holds an aligned
 * extent of its size. It is placed as above among the free extents of at
 * least size + align - page bytes (each holds one), and only when there is
 * none among those that hold one.
 *
 * Complexity: O(log n) per operation in the number of free extents (every
 * policy); an
 * aligned request that no free extent of size + align - page bytes can
 * serve also visits the k free extents between size and that many bytes
 * long: O(k log n).
 * Thread-safe: every function takes the manager's lock (em_try_free only
 * when no other thread holds it).
 */
#ifndef PINHEAP_EM_H
#define PINHEAP_EM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "meta.h"
#include "sizeidx.h"
#include "tree.h"

typedef enum em_policy { EM_TWO_ENDED, EM_BUMP, EM_RING, EM_FIRST_FIT } em_policy;

/*
 * A region. Invariants: base < end, both page-aligned;
 * base <= pristine_lo <= pristine_hi <= end, and no byte of
 * [pristine_lo, pristine_hi) has ever been handed out (so it still reads as
 * zero); EM_BUMP: base <= bump <= end.
 */
typedef struct em_region {
  tree_node by_base;
  uintptr_t base;
  uintptr_t end;
  uintptr_t pristine_lo;
  uintptr_t pristine_hi;
  uintptr_t bump;
} em_region;

/*
 * A free extent, in both indexes. Invariants: addr and size page-aligned,
 * size > 0, [addr, addr + size) inside region; no two free extents overlap;
 * two free extents of one region are never adjacent (they are coalesced);
 * largest_below = the largest size in this node's by_addr subtree.
 */
typedef struct em_extent {
  tree_node by_addr; /* key: addr */
  tree_node by_size; /* key: (size, addr), in a bin of the size index */
  uintptr_t addr;
  size_t size;
  size_t largest_below;
  em_region *region;
} em_extent;

/*
 * The manager. Invariants: free_bytes = the sum of free extent sizes
 * (EM_BUMP: of end - bump over regions); free_bytes <= capacity = the sum of
 * region sizes; peak_in_use >= capacity - free_bytes; ring_min > small_max;
 * rover (EM_RING) = 0 (start from the lowest address), or page-aligned with
 * base < rover <= end of some region (the end of the last ring extent).
 */
typedef struct em {
  pthread_mutex_t lock;
  em_policy policy;
  size_t page;
  size_t small_max;
  size_t ring_min;
  uintptr_t rover;
  tree by_addr;
  sizeidx by_size;
  tree regions;
  meta_pool extent_pool;
  meta_pool region_pool;
  size_t capacity;
  size_t free_bytes;
  size_t peak_in_use;
  size_t abandoned; /* EM_BUMP: bytes freed and never reusable */
  /* free_bytes and capacity as each change under the lock left them, for
   * readers without it (em_hint). */
  _Atomic size_t free_hint;
  _Atomic size_t capacity_hint;
  /* Takings of the lock that found it held (em_waits). */
  _Atomic size_t waits;
} em;

typedef struct em_stats {
  size_t capacity;
  size_t free_bytes;
  size_t largest_free;
  size_t free_extents;
  size_t peak_in_use;
} em_stats;

/* page: a power of two; small_max and ring_min: see the policies (EM_RING
 * only: ring_min is raised to small_max + page when below it). Returns 0 or
 * -1. */
int em_init(em *m, em_policy policy, size_t page, size_t small_max, size_t ring_min);
void em_fini(em *m);

/* Adds [base, base + size) as a free region; zeroed: whether it reads as
 * zero now (then extents from it are pristine until first handed out). 0, or
 * -1 with errno EINVAL (unaligned, empty or overlapping) or ENOMEM
 * (metadata). */
int em_add_region(em *m, void *base, size_t size, bool zeroed);

/* Removes the region starting at base if it is wholly free: 0, or -1 (no
 * such region, or some of it in use). */
int em_remove_region(em *m, void *base);

/* An extent of size bytes (a page multiple) aligned to align (a power of two,
 * at least a page), or NULL when no free extent holds one (EM_BUMP: when no
 * region has one above its pointer). *pristine tells whether it reads as
 * zero. Pre (PH_ASSERT; without assertions such a request gets NULL): size
 * and align as said. */
void *em_alloc(em *m, size_t size, size_t align, bool *pristine);

/* em_alloc, but at the bottom of the lowest-addressed free extent that
 * holds the request (address-ordered first fit; an alignment above a page:
 * of the lowest of size + align - page bytes, else of the extent em_alloc
 * would choose), whatever m's policy but EM_BUMP (which bumps as em_alloc
 * does): for blocks kept apart from the small extents at the top. The
 * ring's pointer does not move. */
void *em_alloc_low(em *m, size_t size, size_t align, bool *pristine);

/* Takes exactly [addr, addr + size) if it is wholly free; false otherwise. */
bool em_alloc_at(em *m, void *addr, size_t size, bool *pristine);

/* Moves the extent [addr, addr + size), in use, to a new place of new_size
 * bytes (a page multiple), chosen as em_alloc would choose (under EM_RING
 * by EM_TWO_ENDED's rules, the pointer left where it was) with the old
 * extent counted as free, so that the new place may overlap the old: the
 * new extent is taken, and what of the old one it does not cover stays in
 * use, for the caller to move the contents (memmove) and then give back
 * with em_free. NULL when no place holds new_size bytes (then nothing
 * changed, the old extent in use as before), and under EM_BUMP. */
void *em_move(em *m, void *addr, size_t size, size_t new_size);

typedef enum em_free_result { EM_FREED = 0, EM_NOT_IN_REGION, EM_ALREADY_FREE, EM_NO_METADATA, EM_BUSY } em_free_result;

/* Gives [addr, addr + size) back. Anything but EM_FREED changes nothing. */
em_free_result em_free(em *m, void *addr, size_t size);

/* em_free without waiting: EM_BUSY (nothing changed) when another thread
 * holds the lock. */
em_free_result em_try_free(em *m, void *addr, size_t size);

/* em_free of the n extents [addrs[i], addrs[i] + sizes[i]) under one
 * taking of the lock, in order: EM_FREED (*failed = n), or the first
 * other result, the index of its extent in *failed (those before it given
 * back, it and those after it not). */
em_free_result em_free_many(em *m, void *const *addrs, const size_t *sizes, size_t n, size_t *failed);

void em_get_stats(em *m, em_stats *out);

/* How many times a thread found the lock held and waited for it (em_try_free
 * does not wait: not counted); read without the lock. */
static inline size_t em_waits(const em *m) { return atomic_load_explicit(&m->waits, memory_order_relaxed); }

/* free_bytes and capacity without the lock: what the last change left,
 * which the changes in flight may have made stale (a hint). */
static inline void em_hint(const em *m, size_t *free_bytes, size_t *capacity) {
  *free_bytes = atomic_load_explicit(&m->free_hint, memory_order_relaxed);
  *capacity = atomic_load_explicit(&m->capacity_hint, memory_order_relaxed);
}

/* Calls visit on every free extent in address order, under the lock (visit
 * must not call back into the manager); stops when visit returns non-zero. */
int em_walk_free(em *m, int (*visit)(uintptr_t addr, size_t size, void *arg), void *arg);

/* Calls visit on the ranges of every region, regions in address order and
 * the ranges of each in address order, under the lock (visit must not call
 * back into the manager): each free extent (free true; EM_BUMP: the room
 * above a region's pointer) and each range between them (free false), so
 * that the ranges of a region are adjacent and cover it. Stops when visit
 * returns non-zero, and returns that. O(k log n) for k ranges. */
int em_walk(em *m, int (*visit)(uintptr_t addr, size_t size, bool free, void *arg), void *arg);

/* Number of broken invariants, each described on stderr. */
int em_check(em *m);

#endif
