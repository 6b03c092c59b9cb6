/*
 * hooks: jemalloc arenas of a heap, and the extent hooks that make a FIXED
 * heap's arenas take their extents from, and give them back to, the extent
 * manager.
 *
 * The hooks are thin adapters: alloc takes an extent from the manager and
 * tags its pages PAGEMAP_SMALL; dalloc and destroy clear the tags and give
 * the extent back at once; commit always succeeds (region memory is always
 * committed); decommit and purge refuse, so registered pages are never
 * madvised away; split and merge are allowed only inside one region.
 *
 * An arena with hooks has dirty and muzzy decay of 0, so an extent jemalloc
 * frees reaches dalloc at once and any thread can reuse it, and a retain grow
 * limit of one page, so jemalloc asks the manager for what it needs instead
 * of ever larger blocks it would keep to itself.
 *
 * Thread-safe: jemalloc calls hooks from any thread; the manager and the
 * page map are thread-safe.
 */
#ifndef PINHEAP_HOOKS_H
#define PINHEAP_HOOKS_H

#include <jemalloc/jemalloc.h>
#include <stdbool.h>

#include "em.h"
#include "pagemap.h"

/* Invariant: hooks is the first member (jemalloc hands its address back to
 * every hook); the record outlives the arena. */
typedef struct hooks_arena {
  extent_hooks_t hooks;
  em *em;
  pagemap *pm;
  unsigned index; /* jemalloc's arena index */
} hooks_arena;

/* Creates an arena; with em and pm non-NULL it takes its extents from them,
 * otherwise it uses jemalloc's default hooks. 0, or -1 with the error set. */
int hooks_arena_create(hooks_arena *ha, em *em, pagemap *pm);
/* Destroys the arena; every tcache that may hold its objects must be gone. */
void hooks_arena_destroy(hooks_arena *ha);
/* Hands the arena's unused dirty and muzzy extents back. */
void hooks_arena_purge(hooks_arena *ha);
/* Bytes in live allocations of the arena (jemalloc's stats; objects cached in
 * thread caches count as live); the caller refreshes the stats epoch. */
size_t hooks_arena_allocated(const hooks_arena *ha);
/* Bytes jemalloc maps for the arena. */
size_t hooks_arena_mapped(const hooks_arena *ha);
/* Refreshes jemalloc's stats. */
void hooks_stats_refresh(void);

#endif
