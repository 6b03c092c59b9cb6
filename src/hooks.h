/*
 * hooks: jemalloc arenas of a heap, and the extent hooks that make them
 * take their extents from, and give them back to, the extent manager.
 *
 * The hooks are thin adapters: alloc takes an extent (a "grant") from the
 * manager and tags its pages PAGEMAP_SMALL; dalloc and destroy give it back;
 * commit always succeeds (region memory is always committed); decommit and
 * purge refuse, so registered pages are never madvised away; split and merge
 * are allowed only inside one region (a chunk of the page map). While a
 * fork is being prepared, alloc fails and dalloc refuses (the heap's gate,
 * fork.h); split and merge take no lock and never wait.
 *
 * Exact grants: with opt.retain (the default on 64-bit Linux, and
 * process-wide) jemalloc grows an arena by blocks of its page size classes
 * (its first 2 MiB whatever the retain grow limit), carves the extent it
 * needs from one and keeps the rest as the arena's retained memory, of use
 * to no other arena or block. An arena with exact grants (every one but a
 * bump heap's) refuses that growth, the one request jemalloc makes with
 * *commit false; jemalloc then asks for exactly the extent it needs
 * (extent_alloc_wrapper), so every grant is an extent jemalloc uses, and
 * one it frees whole goes back to the manager for anyone. An arena without
 * them (the bump policy, which models hooks that never take memory back)
 * takes its first grant while it is made, and keeps it for good: dalloc
 * refuses every extent inside it, so that jemalloc keeps it as retained
 * memory and carves this arena's later extents from it.
 *
 * A grant goes back to the manager whole, at once when jemalloc gives it back
 * whole, and otherwise when its last piece comes back. jemalloc with
 * opt.retain (the default on 64-bit Linux, and process-wide) never merges an
 * extent into a higher grant, but it assumes that the memory just below an
 * extent it split off a grant still belongs to that grant: if a piece came
 * back and went to another arena while the rest was still in jemalloc, two
 * arenas would merge each other's extents. Pieces that came back wait, tagged
 * PAGEMAP_RETURNED, and count as in use.
 *
 * jemalloc's own metadata for an arena (its base blocks: the arena, its
 * bins, the records of its extents) also comes through alloc, and is served
 * from ordinary memory (mmap), outside the region, so that no allocator
 * metadata lies where a remote write can land and none takes registered
 * memory; it goes back to the system when the arena is destroyed (hooks.c
 * says how a base request is told from extent growth).
 *
 * An arena with hooks keeps the extents it frees (its emptied slabs: it
 * serves only small classes), so that a slab emptied by one thread and
 * needed again by another comes back without the manager's lock and the
 * grants' bookkeeping; every reclaim purges them (hooks_arena_purge:
 * pinheap_trim, and before any ENOMEM), so they are never why an
 * allocation fails. How long they stay (jemalloc's dirty decay): in a
 * FIXED heap until a reclaim (HOOKS_KEEP_UNTIL_PURGED), so that no clock
 * moves them and where a block lands depends on the calls made, not on how
 * fast they came: a program, or a trace replayed, places alike on every
 * run. Where the heap grows instead of failing (DYNAMIC, SIMPLE),
 * HOOKS_KEEP_MS, so that slabs one arena emptied do not stay out of the
 * other arenas' reach for good: jemalloc hands them back over about that
 * time, on the arena's own calls (an idle arena keeps them). The cost of
 * keeping them in a FIXED heap: jemalloc joins kept slabs under 16 KiB
 * (its smallest large size; longer ones it joins at once) only when it
 * purges them, so a slab longer than each of them takes new room beside
 * them, which a later large block may then miss (a purge before its ENOMEM
 * comes too late for that); with HOOKS_KEEP_MS the same happened unless a
 * second had passed. Muzzy decay is 0 and purge refuses: jemalloc never
 * madvises a registered page. Without exact
 * grants, a retain grow limit of one page makes jemalloc ask the manager
 * for what it needs after its first grant, instead of ever larger blocks it
 * would keep to itself.
 *
 * Thread-safe: jemalloc calls hooks from any thread; the manager and the
 * page map are thread-safe.
 */
#ifndef PINHEAP_HOOKS_H
#define PINHEAP_HOOKS_H

#include <jemalloc/jemalloc.h>
#include <stdbool.h>
#include <sys/types.h>

#include "em.h"
#include "gate.h"
#include "pagemap.h"

/* How long an arena keeps the extents it frees before they reach dalloc
 * (jemalloc's dirty decay, above): until a purge, or HOOKS_KEEP_MS. With
 * HOOKS_KEEP_MS a FIXED heap placed by the clock: replays of one trace
 * differed from run to run (python3, two-ended: smallest heaps of 1.40
 * and 1.55 times its peak in two runs of pinheap size). */
#define HOOKS_KEEP_UNTIL_PURGED ((ssize_t)-1)
#define HOOKS_KEEP_MS ((ssize_t)1000)

/* An extent the alloc hook handed out. Invariant: 0 <= returned < size; the
 * pages of [addr, addr + size) are tagged SMALL or RETURNED. */
typedef struct hooks_grant {
  tree_node by_addr;
  uintptr_t addr;
  size_t size;
  size_t returned; /* bytes jemalloc gave back so far */
  uint64_t birth;  /* CLOCK_MONOTONIC ns when handed out */
} hooks_grant;

/* What the arenas of one heap hold. Invariants: grants do not overlap;
 * bases holds jemalloc's base blocks (records of the grant type, returned
 * 0), mapped outside every region of the page map, base_bytes in all. */
typedef struct hooks_shared {
  pthread_mutex_t lock;
  tree grants;
  tree bases;
  size_t base_bytes;
  meta_pool pool;
  em *em;
  pagemap *pm;
  gate *gate; /* the heap's: alloc and dalloc pass it (fork.h) */
  /* DYNAMIC: adds room for at least bytes to the manager; 0 or -1. */
  int (*grow)(void *ctx, size_t bytes);
  void *grow_ctx;
} hooks_shared;

int hooks_shared_init(hooks_shared *s, em *em, pagemap *pm, gate *gate);
/* From now on hooks_take grows the manager through grow(ctx, bytes) when it
 * has no room (DYNAMIC); before the arenas exist. */
void hooks_set_grow(hooks_shared *s, int (*grow)(void *ctx, size_t bytes), void *ctx);
/* An extent from the manager, growing it once when it has no room (DYNAMIC);
 * NULL when it still has none. The hooks' way, and the large path's; low:
 * placed by em_alloc_low rather than em_alloc. */
void *hooks_take(hooks_shared *s, size_t size, size_t align, bool low, bool *pristine);
void hooks_shared_fini(hooks_shared *s);
/* Number of broken invariants. */
int hooks_shared_check(hooks_shared *s);
/* Bytes of jemalloc's metadata the arenas hold, outside the region. */
size_t hooks_base_bytes(hooks_shared *s);

/* The grant holding addr: true with a copy in *out (its node unused);
 * otherwise false, with *next the start of the first grant above addr
 * (UINTPTR_MAX when there is none). Takes the grants' lock, which callers
 * may hold the manager's lock around: the hooks never hold the grants'
 * lock while they call the manager. */
bool hooks_grant_at(hooks_shared *s, uintptr_t addr, hooks_grant *out, uintptr_t *next);

/* Invariant: hooks is the first member (jemalloc hands its address back to
 * every hook); the record outlives the arena. */
typedef struct hooks_arena {
  extent_hooks_t hooks;
  hooks_shared *shared;
  unsigned index; /* jemalloc's arena index */
  bool exact; /* jemalloc's growth refused: every grant exact (above) */
  /* Without exact grants: the arena's first grant, taken while the arena
   * is made; dalloc refuses the extents inside it, which jemalloc then
   * keeps as retained and reuses for this arena. */
  uintptr_t first;
  size_t first_size;
} hooks_arena;

/* Creates an arena that takes its extents from shared's manager, with
 * exact grants or (!exact) its first grant taken now and kept (above),
 * that keeps the extents it frees for keep_ms (HOOKS_KEEP_UNTIL_PURGED or
 * HOOKS_KEEP_MS).
 * Precondition, for the arena's life: nothing asks it for an alignment of
 * 2 MiB or more (the heap sends it none above a page): such a request could
 * pass for a base block (hooks.c). 0, or -1 with the error set. */
int hooks_arena_create(hooks_arena *ha, hooks_shared *shared, bool exact, ssize_t keep_ms);
/* Destroys the arena; every tcache that may hold its objects must be gone. */
void hooks_arena_destroy(hooks_arena *ha);
/* Hands the arena's unused dirty and muzzy extents back. */
void hooks_arena_purge(hooks_arena *ha);
/* How long the arena keeps the extents it frees, as jemalloc has it: its
 * keep_ms; -2 when jemalloc cannot say. */
ssize_t hooks_arena_keep_ms(const hooks_arena *ha);
/* Bytes in live allocations of the arena (jemalloc's stats; objects cached in
 * thread caches count as live); the caller refreshes the stats epoch. */
size_t hooks_arena_allocated(const hooks_arena *ha);
/* Live objects of the arena in jemalloc's small bin j; the caller refreshes
 * the stats epoch. */
size_t hooks_arena_live(const hooks_arena *ha, unsigned j);
/* Refreshes jemalloc's stats. */
void hooks_stats_refresh(void);

#endif
