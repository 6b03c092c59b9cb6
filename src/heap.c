/*
 * heap.c is longer than 600 lines: every path of the core (malloc, free,
 * realloc, the large and direct paths, stats, check) in one translation
 * unit, because the small-object paths (heap_cached, heap_free_any) are
 * inlined into their callers with the helpers they share (the sections,
 * the classification of a pointer, the one reclaim-and-retry), which stay
 * static here; split, they would need a private header of their own and
 * the fast path would cost a call.
 */
#include "heap.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "canary.h"
#include "error.h"
#include "key.h"
#include "ph_assert.h"
#include "util.h"

/* Regions start on a 2 MiB boundary: huge pages. */
#define HEAP_REGION_ALIGN ((size_t)2 << 20)
/* ring_min's default: this fraction of the region (see the README). */
#define HEAP_RING_FRACTION 32
/* Blocks below this many bytes take the lowest free extent that holds them
 * (em_alloc_low; heap_low says in which heaps), apart from the slabs at the
 * top, whose objects live long and mixed: among slabs, a freed block left
 * a hole only a block or slab of its size could fill. FINE_SLAB_PAGES pages
 * of 4 KiB, the largest slab. Measured after exact grants (README,
 * "Thresholds and why"): grow-like H/M 1.239 -> 1.197 under two-ended,
 * server-like 1.075 -> 1.071; pgas-like unchanged, as its blocks are all
 * larger (with 64 KiB blocks too, its task stacks of exactly 64 KiB moved,
 * and two-ended rose to 1.856); any bound from 32 KiB to 4 MiB gave grow
 * the same. A block realloc moves is placed by em_move's rules. */
#define HEAP_LOW_LIMIT ((size_t)64 << 10)
/* Threads cache freed extents only while at least this fraction of the
 * heap's memory is free: near full, a cached extent is a hole the manager
 * cannot merge or place into, and the placements it changes cost room. */
#define HEAP_CACHE_ROOM 4
/* Once a free of a block above XCACHE_BLOCK_MAX finds the extent manager's
 * lock held, this many more such frees of its thread keep their extents
 * without trying the lock: two threads that meet there once are likely to
 * meet again (2 threads churning 64 KiB - 1 MiB blocks: 32 let a fifth of
 * the frees try the lock, and a tenth of those met the other thread). */
#define HEAP_CONTENDED_FREES 256
/* A request above XCACHE_BLOCK_MAX takes a cached extent up to
 * 1 / 2^HEAP_CONTENDED_SLACK_SHIFT larger whole, the block as long as the
 * extent: a carved one leaves a piece that few requests fit, and the
 * cache's bound sends such pieces to the manager one by one (2 threads
 * churning 64 KiB - 1 MiB blocks: 9 in 10 freed extents went back so, in
 * pieces). */
#define HEAP_CONTENDED_SLACK_SHIFT 3
/* A request of at most XCACHE_BLOCK_MAX takes a cached extent up to
 * 1 / 2^HEAP_MEDIUM_SLACK_SHIFT larger whole, for the same reason: each
 * carve left one entry more, and the cache's bound sent the smallest back
 * to the manager, one taking of its lock each (2 threads churning
 * 14 - 64 KiB blocks, 1000 live each: 16 % of the frees did, and the
 * threads ran at 0.6 of jemalloc's rate; 2 % and 1.5 with a quarter).
 * An eighth is less than a page below 32 KiB, where it changed little;
 * the H/M of bench/run_placement.sh's workloads moved by 0.001. */
#define HEAP_MEDIUM_SLACK_SHIFT 2

static bool heap_fixed(const heap *h) { return h->opts.mode == PINHEAP_FIXED; }
/* DYNAMIC, and SIMPLE: a DYNAMIC heap over ordinary memory that registers
 * nothing (chunks and direct blocks, dynamic.h). */
static bool heap_dynamic(const heap *h) { return h->opts.mode != PINHEAP_FIXED; }

static _Noreturn void heap_foreign(const heap *h, const void *p, const char *what, const char *why) {
  error_fatal("%s(%p): %s of heap %p", what, p, why, (const void *)h);
}

/* Aborts, naming what, when the small object p of bin b is freed already
 * (key.h; tc: the thread's cache, or NULL). */
static PH_ALWAYS_INLINE void heap_check_key(const heap *h, const thread_cache *tc, const void *p, unsigned b,
                                            const char *what) {
  uint64_t w = key_word(p);
  if (PH_UNLIKELY(key_maybe_freed(&h->keys, p, w)) && key_freed(&h->keys, tc ? &tc->bins[b] : NULL, p, w))
    heap_foreign(h, p, what, "block freed already (a double free)");
}

void heap_set_plain(heap *h, uint32_t hold, bool poison) {
  h->threads.free_mark = 0;
  h->threads.hold = hold;
  h->poison = poison;
}

void heap_on_enomem(heap *h, void (*fn)(void *ctx, heap *h, const char *what, size_t size), void *ctx) {
  h->on_enomem = fn;
  h->on_enomem_ctx = ctx;
}

/* Adds to the error why a DYNAMIC heap could not grow, when it could not. */
static void heap_explain(const heap *h) {
  if (heap_dynamic(h) && *dynamic_refusal()) error_append("; %s", dynamic_refusal());
}

static int heap_check_jemalloc_page(size_t page) {
  size_t je_page = 0, sz = sizeof je_page;
  if (mallctl("arenas.page", &je_page, &sz, NULL, 0) != 0 || je_page != page) {
    error_set(ENOSYS, "pinheap_create: jemalloc's page (%zu) differs from the system's (%zu)", je_page, page);
    return -1;
  }
  return 0;
}

static void heap_give_back(heap *h, void *p, size_t bytes, const char *what);

/* How thread caches empty their fronts of the fine path. */
static void heap_drain_front(void *ctx, unsigned tcache) { fine_drain(ctx, tcache); }

/* How thread caches give back the extents they keep. */
static void heap_release_extent(void *ctx, void *p, size_t bytes) { heap_give_back(ctx, p, bytes, "pinheap_trim"); }

/* The memory, empty: FIXED its region, DYNAMIC its first chunk. */
static int heap_open_memory(heap *h) {
  const pinheap_options *o = &h->opts;
  static const em_policy policies[] = {[PINHEAP_POLICY_TWO_ENDED] = EM_TWO_ENDED,
                                       [PINHEAP_POLICY_BUMP] = EM_BUMP,
                                       [PINHEAP_POLICY_RING] = EM_RING,
                                       [PINHEAP_POLICY_FIRST_FIT] = EM_FIRST_FIT};
  size_t ring_min = o->ring_min ? o->ring_min : (heap_fixed(h) ? o->size : o->chunk_size) / HEAP_RING_FRACTION;
  if (space_open(&h->space, &h->prov, policies[o->policy], h->page, o->small_extent_max, ring_min, &h->gate) != 0)
    return -1;
  if (heap_dynamic(h)) {
    if (dynamic_open(&h->dyn, &h->space, &h->prov, h->page, o->chunk_size, o->size) == 0) {
      dynamic_cache_open(&h->dyn, o->direct_cache, o->direct_cache_blocks);
      return 0;
    }
    dynamic_close(&h->dyn);
  } else if (provider_obtain_shrinking(&h->prov, util_align_up(o->size, h->page), o->min_size, HEAP_REGION_ALIGN,
                                       &h->region, "pinheap_create") == 0) {
    if (space_add(&h->space, &h->region) == 0) return 0;
    provider_release(&h->prov, &h->region);
    error_set(ENOMEM, "pinheap_create: no memory for the metadata of a %zu-byte region", h->region.size);
  }
  space_close(&h->space);
  return -1;
}

static void heap_close_memory(heap *h) {
  if (heap_dynamic(h)) dynamic_close(&h->dyn);
  space_close(&h->space);
}

/* Whether the heap's arenas take exact grants: all but a bump heap's
 * (hooks.h). */
static bool heap_exact_grants(const heap *h) { return !heap_fixed(h) || h->opts.policy != PINHEAP_POLICY_BUMP; }

/* The least the heap works in, checked once the memory is had (a layer that
 * obtains regions on several processes at once keeps them in step up to
 * there): 2 MiB, and under the bump policy the first grant of each arena,
 * all made with the heap. */
static int heap_check_room(const heap *h, unsigned arenas) {
  size_t limit = heap_fixed(h) ? h->region.size : h->opts.size;
  bool exact = heap_exact_grants(h);
  size_t least = arenas_least_size(arenas, exact);
  if (!limit || limit >= least) return 0;
  if (exact) {
    error_set(ENOMEM, "pinheap_create: a %s of %zu bytes is too small: the least size that works is %zu bytes (%zu MiB)",
              heap_fixed(h) ? "region" : "cap", limit, least, least >> 20);
    return -1;
  }
  error_set(ENOMEM,
            "pinheap_create: a region of %zu bytes is too small: under the bump policy its %u jemalloc arena%s "
            "take%s %zu MiB of it for good (jemalloc's first grant each; %s) and the heap needs 2 MiB more; the "
            "least size that works is %zu bytes (%zu MiB)",
            limit, arenas, arenas > 1 ? "s" : "", arenas > 1 ? "" : "s", arenas * (ARENAS_BYTES >> 20),
            h->opts.arenas ? "as many as opts.arenas (PINHEAP_ARENAS) asks"
                           : "one per CPU; opts.arenas (PINHEAP_ARENAS) sets fewer",
            least, least >> 20);
  return -1;
}

/* One arena now (a bump heap: all, each keeping its first grant), the
 * others when threads first need them. */
static int heap_open_arenas(heap *h) {
  unsigned max = arenas_wanted(h->opts.arenas);
  if (heap_check_room(h, max) != 0) return -1;
  bool exact = heap_exact_grants(h);
  /* A FIXED heap's arenas keep what they free until a reclaim: no clock
   * moves its placement (hooks.h). */
  ssize_t keep = heap_fixed(h) ? HOOKS_KEEP_UNTIL_PURGED : HOOKS_KEEP_MS;
  if (arenas_open(&h->arenas, &h->space.grants, max, exact ? 1 : max, exact, keep) == 0) return 0;
  heap_explain(h);
  return -1;
}

int heap_open(heap *h, const pinheap_options *o) {
  h->opts = *o;
  h->page = (size_t)sysconf(_SC_PAGESIZE);
  provider_init(&h->prov, o, h->page);
  if (o->mode == PINHEAP_SIMPLE) h->opts.size = 0; /* no cap */
  h->large_threshold = o->large_threshold;
  if (heap_check_jemalloc_page(h->page) != 0 || sizeclass_init(&h->classes, h->page) != 0) return -1;
  /* The table never changes after sizeclass_init: checked once, here, and
   * not by heap_check (it costs a lookup per small size). */
  if (sizeclass_check(&h->classes) != 0) {
    error_set(EINVAL, "pinheap_create: the size classes of a %zu-byte page are inconsistent", h->page);
    return -1;
  }
  /* jemalloc serves only its small classes: its large sizes would round up
   * and keep the rest of their grants to themselves. */
  if (h->large_threshold > h->classes.max) h->large_threshold = h->classes.max;
  if (fine_open(&h->fine, &h->space, h->page) != 0) return -1;
  gate_init(&h->gate);
  if (heap_open_memory(h) != 0) return -1;
  if (heap_open_arenas(h) != 0) goto fail_memory;
  if (thread_registry_init(&h->threads, &h->classes, h->page,
                           /* the bump policy never reuses a freed extent */
                           o->policy != PINHEAP_POLICY_BUMP ? heap_release_extent : NULL, h, arenas_for,
                           &h->arenas) != 0) {
    error_set(ENOMEM, "pinheap_create: cannot set up thread caches");
    goto fail_arenas;
  }
  key_init(&h->keys, (uintptr_t)h);
  /* The caches' drains mark what they hand to jemalloc. */
  h->threads.free_mark = h->keys.freed;
  h->threads.pm = &h->space.pm;
  h->fine.mark = h->keys.freed;
  h->fine.fill_mark = h->keys.cached;
  h->threads.drain_front = heap_drain_front;
  h->threads.front_ctx = &h->fine;
  pthread_mutex_init(&h->reclaim_lock, NULL);
  return 0;
fail_arenas:
  arenas_close(&h->arenas);
fail_memory:
  heap_close_memory(h);
  fine_close(&h->fine);
  return -1;
}

void heap_close(heap *h) {
  thread_registry_fini(&h->threads);
  fine_close(&h->fine);
  arenas_close(&h->arenas);
  heap_close_memory(h);
  pthread_mutex_destroy(&h->reclaim_lock);
}

void heap_prefork(heap *h) {
  /* The arenas' lock first: making an arena takes none of the others. */
  arenas_prefork(&h->arenas);
  pthread_mutex_lock(&h->reclaim_lock);
  thread_fork_prepare(&h->threads);
  gate_close(&h->gate);
}

void heap_postfork_parent(heap *h) {
  gate_open(&h->gate);
  thread_fork_parent(&h->threads);
  pthread_mutex_unlock(&h->reclaim_lock);
  arenas_postfork(&h->arenas);
}

/* The gate first: emptying the dead threads' caches calls the hooks. */
void heap_postfork_child(heap *h) {
  gate_reset(&h->gate);
  thread_fork_child(&h->threads);
  pthread_mutex_unlock(&h->reclaim_lock);
  arenas_postfork(&h->arenas);
}

/* Opens a fork section (heap.h) for a thread that may change the heap: its
 * cache held busy, or the gate when it has no cache. Pair with heap_leave. */
static PH_ALWAYS_INLINE thread_cache *heap_enter(heap *h) {
  thread_cache *tc = thread_enter(&h->threads);
  if (PH_UNLIKELY(!tc)) gate_enter(&h->gate);
  return tc;
}

static PH_ALWAYS_INLINE void heap_leave(heap *h, thread_cache *tc) {
  if (PH_LIKELY(tc != NULL))
    thread_leave(tc);
  else
    gate_leave(&h->gate);
}

void heap_reclaim(heap *h) {
  pthread_mutex_lock(&h->reclaim_lock);
  thread_flush_all(&h->threads);
  fine_reclaim(&h->fine);
  arenas_purge(&h->arenas);
  pthread_mutex_unlock(&h->reclaim_lock);
}

void heap_trim(heap *h) {
  heap_reclaim(h);
  if (!heap_dynamic(h)) return;
  gate_enter(&h->gate);
  dynamic_quarantine_drain(&h->dyn);
  dynamic_cache_drain(&h->dyn);
  dynamic_release_free_chunks(&h->dyn);
  gate_leave(&h->gate);
}

/* Bytes the heap manages now: FIXED the region, DYNAMIC (SIMPLE) what is
 * registered (mapped). Inside a section. */
static size_t heap_capacity(heap *h, const em_stats *s) {
  return s->capacity + (heap_dynamic(h) ? dynamic_direct_bytes(&h->dyn) : 0);
}

static void heap_no_memory(heap *h, const char *what, size_t size) {
  em_stats s;
  gate_enter(&h->gate);
  em_get_stats(&h->space.em, &s);
  size_t capacity = heap_capacity(h, &s);
  gate_leave(&h->gate);
  error_set(ENOMEM, "%s(%zu): out of memory: %zu bytes free, largest free extent %zu bytes, %s %zu bytes", what,
            size, s.free_bytes, s.largest_free, heap_fixed(h) ? "region" : "registered", capacity);
  heap_explain(h);
  if (h->on_enomem) h->on_enomem(h->on_enomem_ctx, h, what, size);
}

/* An attempt at an allocation: NULL when there was no room. */
typedef void *heap_attempt(heap *h, void *arg);

/* The one reclaim-and-retry of every path: p, the first attempt's block,
 * or when it found no room, the same attempt once more after every cache
 * is emptied and every arena purged; NULL with the ENOMEM error when that
 * fails too. */
static void *heap_retry(heap *h, void *p, heap_attempt *attempt, void *arg, const char *what, size_t size) {
  if (PH_LIKELY(p != NULL)) return p;
  heap_reclaim(h);
  if ((p = attempt(h, arg)) != NULL) return p;
  heap_no_memory(h, what, size);
  return NULL;
}

/* The most a block may be: the region, the cap, or what a size allows. */
static size_t heap_limit(const heap *h) {
  if (heap_fixed(h)) return h->region.size;
  if (h->opts.size) return h->opts.size;
  return (size_t)PTRDIFF_MAX;
}

/* A request that no state of the heap could satisfy. */
static bool heap_impossible(heap *h, const char *what, size_t size) {
  size_t limit = heap_limit(h);
  if (size <= limit) return false;
  error_set(ENOMEM, "%s(%zu): impossible size: larger than the heap's %zu bytes", what, size, limit);
  return true;
}

/* Whether p, which jemalloc returned for one of the heap's arenas, lies in
 * the heap's memory. It may not: once a thread's jemalloc state is torn
 * down (a pthread key destructor that runs after jemalloc's at the thread's
 * exit), jemalloc serves every mallocx from its own arena 0, whatever arena
 * and tcache the flags name. */
static bool heap_jemalloc_ours(const heap *h, const void *p) { return pagemap_covers(&h->space.pm, p); }

/* jemalloc's flags for a thread without a cache of the heap's (its cache
 * is gone at its exit, or could not be made): the heap's first arena. */
static int heap_uncached_flags(const heap *h) {
  return (int)(MALLOCX_ARENA(arenas_first(&h->arenas)) | MALLOCX_TCACHE_NONE);
}

/* Adds bytes (modulo 2^64) to the count of jemalloc's objects out of
 * jemalloc: the thread's share when it has a cache (tc, entered), else
 * the heap's own. */
static void heap_count_small(heap *h, thread_cache *tc, size_t bytes) {
  if (PH_LIKELY(tc != NULL)) {
    thread_count_small(tc, bytes);
    return;
  }
  atomic_fetch_add_explicit(&h->small_bytes, bytes, memory_order_relaxed);
}

/* A request to jemalloc: mallocx of size with flags, or rallocx of old;
 * owner: the slot of the arena it went to (heap_jemalloc's answer). */
typedef struct heap_small_req {
  void *old;
  size_t size;
  int flags;
  unsigned owner;
} heap_small_req;

/* heap_attempt: the request through the thread's cache (mallocx without
 * one: the heap's first arena; rallocx without one: none). */
static void *heap_jemalloc(heap *h, void *arg) {
  heap_small_req *r = arg;
  thread_cache *tc = thread_enter(&h->threads);
  r->owner = tc ? tc->owner : 0;
  void *p;
  if (r->old) {
    size_t was = sallocx(r->old, 0);
    p = tc ? rallocx(r->old, r->size, tc->alloc_flags | r->flags) : NULL;
    if (p) heap_count_small(h, tc, sallocx(p, 0) - was);
  } else {
    p = mallocx(r->size, (tc ? tc->alloc_flags : heap_uncached_flags(h)) | r->flags);
    if (p) heap_count_small(h, tc, sallocx(p, 0));
  }
  if (tc) thread_leave(tc);
  return p;
}

static void *heap_large(heap *h, size_t size, size_t align, bool zero, bool keyed, const char *what);

_Static_assert(ARENAS_MAX <= PAGEMAP_OWNERS && SIZECLASS_MAX_BINS < 127 && SIZECLASS_MAX_SIZE < PAGEMAP_PHASE_LIMIT,
               "a page's tag names any bin, owner and phase");

/* pagemap_note_bin of the object p of bin b from the arena in slot owner,
 * without its division when the page's tag is right already: it names b
 * and owner, and objects of b start at p under its phase (one phase below
 * the size fits a given start). */
static PH_ALWAYS_INLINE void heap_note_bin(heap *h, void *p, unsigned b, unsigned owner) {
  uint32_t tag = atomic_load_explicit(pagemap_slot(&h->space.pm, p), memory_order_relaxed);
  if (PAGEMAP_BIN_OF(tag) == (int)b && PAGEMAP_OWNER_OF(tag) == owner &&
      sizeclass_starts(&h->classes, b, p, PAGEMAP_PHASE_OF(tag)))
    return;
  pagemap_note_bin(&h->space.pm, p, b, h->classes.size[b], owner);
}

/* The block p (NULL: none) jemalloc gave for size bytes, made the heap's:
 * its bin (the request's when the caller knows it, else -1) goes into its
 * page's tag, so that its free takes the fast path, and so that a tag left
 * from an earlier use of the page never outlives the first object of a new
 * slab on it, with owner, the slot of the arena it came from; keyed: its
 * freed key wiped. One from jemalloc's arena 0
 * (heap_jemalloc_ours) goes back there, and the request to the large path
 * (an exact page-rounded extent, or a direct block), which needs no
 * jemalloc. */
static PH_ALWAYS_INLINE void *heap_small_got(heap *h, void *p, size_t size, size_t align, bool zero, int bin,
                                             unsigned owner, bool keyed, const char *what) {
  if (!p) return NULL;
  if (PH_UNLIKELY(!heap_jemalloc_ours(h, p))) {
    heap_count_small(h, NULL, (size_t)0 - sallocx(p, 0));
    dallocx(p, MALLOCX_TCACHE_NONE);
    return heap_large(h, size, align < h->page ? h->page : align, zero, keyed, what);
  }
  unsigned b = bin >= 0 ? (unsigned)bin : sizeclass_bin(&h->classes, sallocx(p, 0));
  heap_note_bin(h, p, b, owner);
  if (keyed) key_set(p, 0);
  return p;
}

/* The jemalloc path, with the one reclaim and retry. align: 0 for malloc's;
 * bin and keyed as for heap_small_got. */
static void *heap_small(heap *h, size_t size, size_t align, bool zero, int bin, bool keyed, const char *what) {
  heap_small_req r = {NULL, size ? size : 1 /* mallocx(0) is undefined */,
                      (align ? (int)MALLOCX_ALIGN(align) : 0) | (zero ? MALLOCX_ZERO : 0), 0};
  void *p = heap_retry(h, heap_jemalloc(h, &r), heap_jemalloc, &r, what, size);
  return heap_small_got(h, p, r.size, align, zero, bin, r.owner, keyed, what);
}

/* A miss of the thread's stack of bin b (empty): a batch of objects from
 * its tcache in one call (thread_refill), the first for the caller, made
 * the heap's as heap_small_got makes it, the others onto the stack, tagged
 * and holding the cached key as a freed object there does; one jemalloc
 * gave from outside the heap goes back. NULL when none was had: the caller
 * takes the one-object path, with its reclaim. Keyed heaps only (the
 * debugging aids check what a stack hands out). */
static void *heap_refill(heap *h, thread_cache *tc, unsigned b) {
  void *got[THREAD_REFILL_MAX];
  unsigned n = thread_refill(tc, b, got);
  void *first = NULL;
  for (unsigned i = 0; i < n; i++) {
    void *q = got[i];
    if (PH_UNLIKELY(!heap_jemalloc_ours(h, q))) {
      thread_count_small(tc, (size_t)0 - h->classes.size[b]);
      dallocx(q, MALLOCX_TCACHE_NONE);
      continue;
    }
    heap_note_bin(h, q, b, tc->owner);
    if (!first) {
      first = q;
      key_set(q, 0);
    } else {
      key_put(q, h->keys.cached);
      if (!thread_bin_push(&tc->bins[b], q)) thread_bin_spill(tc, b, q);
    }
  }
  return first;
}

/* A freed block of usable bytes that a thread's cache hands out again. */
static void heap_reused(heap *h, void *p, size_t usable, const char *what) {
  canary_check_reused(p, usable, h->poison, what);
}

/* heap_attempt: an object of the fine path's class *arg, filling the
 * thread's front. */
static void *heap_fine_take(heap *h, void *arg) {
  thread_cache *tc = heap_enter(h);
  void *p = fine_fill(&h->fine, tc ? fine_front_of(&h->fine, tc->tcache) : NULL, *(unsigned *)arg);
  heap_leave(h, tc);
  return p;
}

/* heap_fine when the thread's front has no object of class c: out of line,
 * so that the fast path saves no registers. */
static __attribute__((noinline)) void *heap_fine_slow(heap *h, unsigned c, size_t size, bool zero,
                                                      const char *what) {
  void *p = heap_retry(h, heap_fine_take(h, &c), heap_fine_take, &c, what, size);
  if (p && zero) memset(p, 0, size);
  return p;
}

/* The fine path (fine.h): the thread's front, else its slabs, with the one
 * reclaim and retry. Out of line: its front's lookup may call, which would
 * cost the jemalloc objects' fast path saved registers. */
static __attribute__((noinline)) void *heap_fine(heap *h, size_t size, bool zero, const char *what) {
  unsigned c = fine_class_of(&h->fine, size);
  thread_cache *tc = thread_enter_fast(&h->threads);
  if (PH_LIKELY(tc != NULL)) {
    fine_front *fr = fine_front_of(&h->fine, tc->tcache);
    void *p = fr ? thread_bin_pop(&fr->stacks[c]) : NULL;
    thread_leave(tc);
    if (PH_LIKELY(p != NULL)) {
      if (zero) memset(p, 0, size);
      return p;
    }
  }
  return heap_fine_slow(h, c, size, zero, what);
}

/* heap_cached past its fast path: tc, the thread's cache entered (its stack
 * of bin found empty), or NULL when thread_enter_fast found none. Out of
 * line, so that the fast path saves no registers. */
static __attribute__((noinline)) void *heap_cached_miss(heap *h, thread_cache *tc, size_t size, unsigned bin,
                                                        bool zero, bool keyed, const char *what) {
  if (!tc) tc = thread_enter(&h->threads);
  if (PH_UNLIKELY(!tc)) return heap_small(h, size, 0, zero, (int)bin, keyed, what);
  void *p = thread_bin_pop(&tc->bins[bin]);
  if (PH_LIKELY(p != NULL)) {
    thread_leave(tc);
    if (!keyed) heap_reused(h, p, h->classes.size[bin], what);
    if (zero) memset(p, 0, size);
    return p;
  }
  if (keyed && (p = thread_inbound_take(tc, bin)) != NULL) {
    /* What other threads gave back to the arena: no call into jemalloc (a
     * thread whose objects other threads free finds its stack empty at
     * every malloc, and comes here). */
    thread_leave(tc);
    key_set(p, 0);
    if (zero) memset(p, 0, size);
    return p;
  }
  if (keyed && (p = heap_refill(h, tc, bin)) != NULL) {
    thread_leave(tc);
    if (zero) memset(p, 0, size);
    return p;
  }
  heap_small_req r = {NULL, size ? size : 1, zero ? MALLOCX_ZERO : 0, tc->owner};
  p = mallocx(r.size, tc->alloc_flags | r.flags);
  if (p) thread_count_small(tc, h->classes.size[bin]);
  thread_leave(tc);
  if (PH_UNLIKELY(!p)) p = heap_retry(h, NULL, heap_jemalloc, &r, what, size);
  return heap_small_got(h, p, size, 0, zero, (int)bin, r.owner, keyed, what);
}

/* size <= large_threshold (<= classes.max): the fine path for its sizes
 * (fine_serves), else the thread's stack of freed objects of the size's
 * bin, else (heap_cached_miss) the arena's objects other threads gave
 * back, else jemalloc. keyed: a constant, true on the
 * public paths; false under the layer of heap_set_plain, which zeroes
 * blocks itself. */
static PH_ALWAYS_INLINE void *heap_cached(heap *h, size_t size, bool zero, bool keyed, const char *what) {
  /* Not under the debugging aids' layer: the FIFO that holds freed objects
   * back from reuse, and its checks, are for jemalloc's objects. */
  if (keyed && fine_serves(size)) return heap_fine(h, size, zero, what);
  unsigned bin = sizeclass_bin(&h->classes, size);
  thread_cache *tc = thread_enter_fast(&h->threads);
  if (PH_LIKELY(tc != NULL)) {
    /* thread_bin_pop by hand: testing the count, not the popped pointer,
     * saves the fast path a test and a branch (31 instructions, not 34). */
    thread_bin *b = &tc->bins[bin];
    uint32_t n = b->count;
    if (PH_LIKELY(n != 0)) {
      void *p = b->slots[n - 1];
      thread_bin_set_count(b, n - 1);
      thread_leave(tc);
      if (!keyed) heap_reused(h, p, h->classes.size[bin], what);
      if (zero) memset(p, 0, size);
      return p;
    }
  }
  return heap_cached_miss(h, tc, size, bin, zero, keyed, what);
}

/* dynamic_direct_alloc in a section. */
static void *heap_direct_alloc(heap *h, size_t size, size_t align, bool zero, size_t grow_from, const char *what) {
  thread_cache *tc = heap_enter(h);
  void *p = dynamic_direct_alloc(&h->dyn, size, align, zero, grow_from, what);
  heap_leave(h, tc);
  return p;
}

void *heap_direct_plain(heap *h, size_t size, size_t grow_from, const char *what) {
  if (heap_impossible(h, what, size)) return NULL;
  return heap_direct_alloc(h, size, h->page, false, grow_from, what);
}

typedef struct heap_large_req {
  size_t bytes, align; /* bytes: the extent's length once taken (a cached one may be longer) */
  bool keyed;
  bool pristine;
  const char *what;
} heap_large_req;

/* Adds bytes and blocks (modulo 2^64) to the counts of large blocks: the
 * thread's share when it has a cache (tc), else the heap's own. Inside a
 * section. */
static void heap_count_large(heap *h, thread_cache *tc, size_t bytes, size_t blocks) {
  if (PH_LIKELY(tc != NULL)) {
    thread_count_large(tc, bytes, blocks);
    return;
  }
  atomic_fetch_add_explicit(&h->large_bytes, bytes, memory_order_relaxed);
  atomic_fetch_add_explicit(&h->large_blocks, blocks, memory_order_relaxed);
}

/* The counts of large blocks, every thread's share included; exact while no
 * thread allocates. */
static void heap_large_counts(heap *h, size_t *bytes, size_t *blocks) {
  thread_sum_large(&h->threads, bytes, blocks);
  *bytes += atomic_load(&h->large_bytes);
  *blocks += atomic_load(&h->large_blocks);
}

/* Tags the extent at p of pages pages as a live large block, born now (to
 * a clock tick: reports give ages in seconds). */
static void heap_tag_large(heap *h, void *p, size_t pages) {
  pagemap_set_large(&h->space.pm, p, pages);
  pagemap_set_birth(&h->space.pm, p, util_coarse_ns());
}

/* Whether a block of bytes bytes takes the lowest free extent that holds
 * it (HEAP_LOW_LIMIT): in a FIXED heap under two-ended or first fit. The ring
 * keeps every block below ring_min at the top, out of its arrays' way; a
 * DYNAMIC heap's lowest extent may be in its newest chunk, which the block
 * would then keep registered. */
static bool heap_low(const heap *h, size_t bytes) {
  return bytes < HEAP_LOW_LIMIT && heap_fixed(h) &&
         (h->opts.policy == PINHEAP_POLICY_TWO_ENDED || h->opts.policy == PINHEAP_POLICY_FIRST_FIT);
}

/* heap_attempt: one section from taking the extent (the thread's cache of
 * medium extents, or the manager, growing it) to tagging and
 * counting it. */
static void *heap_large_take(heap *h, void *arg) {
  heap_large_req *r = arg;
  void *p = NULL;
  r->pristine = false;
  thread_cache *tc = heap_enter(h);
  if (tc && r->bytes <= XCACHE_CONTENDED_MAX && r->align <= h->page && h->threads.release_extent) {
    size_t slack = r->bytes >> (r->bytes > XCACHE_BLOCK_MAX ? HEAP_CONTENDED_SLACK_SHIFT : HEAP_MEDIUM_SLACK_SHIFT);
    p = xcache_take(&tc->extents, &r->bytes, slack, !h->poison);
    if (p && !r->keyed) heap_reused(h, p, r->bytes, r->what);
  }
  if (!p) p = hooks_take(&h->space.grants, r->bytes, r->align, heap_low(h, r->bytes), &r->pristine);
  if (p) {
    heap_tag_large(h, p, r->bytes / h->page);
    heap_count_large(h, tc, r->bytes, 1);
  }
  heap_leave(h, tc);
  return p;
}

/* Extents that threads kept while their frees met at the manager's lock
 * are holes the manager would place around: a thread out of contention (no
 * contended free lately, and none of those extents in its cache) empties
 * every thread's cache before it places, rather than only before ENOMEM
 * (an idle thread's would stay); each thread at most once per
 * HEAP_CONTENDED_FLUSH_NS, for a thread that only allocates while another
 * only frees would empty them at nearly every block, and a flush stops
 * every thread. Threads without a cache do not: they are rare, and a
 * limit shared by all would let one thread's flushes stop another's. */
static __attribute__((noinline)) void heap_return_contended(heap *h) {
  thread_cache *tc = thread_enter(&h->threads);
  if (!tc) return;
  /* The clock last: a contended thread comes here at every block. */
  uint64_t now = 0;
  bool out = tc->contended == 0 && !xcache_holds_above(&tc->extents, XCACHE_BLOCK_MAX) &&
             (now = util_coarse_ns()) - tc->contended_flushed >= HEAP_CONTENDED_FLUSH_NS;
  if (out && atomic_exchange(&h->contended_kept, false)) {
    tc->contended_flushed = now;
  } else {
    out = false;
  }
  thread_leave(tc);
  if (!out) return;
  pthread_mutex_lock(&h->reclaim_lock);
  thread_flush_all(&h->threads);
  pthread_mutex_unlock(&h->reclaim_lock);
}

/* Large path: an exact page-rounded extent (DYNAMIC: or a registration of
 * its own from direct_threshold up), with the one reclaim and retry. */
static void *heap_large(heap *h, size_t size, size_t align, bool zero, bool keyed, const char *what) {
  size_t bytes = util_align_up(size, h->page);
  if (bytes == 0 || bytes > heap_limit(h)) {
    error_set(ENOMEM, "%s(%zu): impossible size: larger than the heap's %zu bytes", what, size, heap_limit(h));
    return NULL;
  }
  if (heap_dynamic(h) && (bytes >= h->opts.direct_threshold || bytes / h->page > PAGEMAP_MAX_PAGES))
    return heap_direct_alloc(h, size, align, zero, 0, what);
  if (bytes / h->page > PAGEMAP_MAX_PAGES) {
    error_set(ENOMEM, "%s(%zu): impossible size: above %zu pages", what, size, (size_t)PAGEMAP_MAX_PAGES);
    return NULL;
  }
  if (PH_UNLIKELY(atomic_load_explicit(&h->contended_kept, memory_order_relaxed))) heap_return_contended(h);
  heap_large_req r = {.bytes = bytes, .align = align, .keyed = keyed, .what = what};
  void *p = heap_retry(h, heap_large_take(h, &r), heap_large_take, &r, what, size);
  if (p && zero && !r.pristine) memset(p, 0, r.bytes); /* every usable byte */
  return p;
}

/* heap_alloc_any but for its fast path: an aligned request, or a large one.
 * Out of line, so that the fast path saves no registers. */
static __attribute__((noinline)) void *heap_alloc_rest(heap *h, size_t size, size_t align, bool zero, bool keyed,
                                                       const char *what) {
  if (heap_impossible(h, what, size)) return NULL;
  if (align == 0) return heap_large(h, size, h->page, zero, keyed, what);
  if (size == 0) size = 1;
  /* Alignments above a page, and sizes that alignment would lift out of
   * jemalloc's small classes, go to the large path: jemalloc would ask the
   * hooks for more and keep the rest to itself. */
  if (align <= h->page && size <= h->large_threshold && util_align_up(size, align) <= h->classes.max)
    return heap_small(h, size, align, zero, -1, keyed, what);
  return heap_large(h, size, align < h->page ? h->page : align, zero, keyed, what);
}

/* Every allocation but realloc's: size bytes aligned to align (0: malloc's
 * alignment), zeroed when asked. keyed as for heap_cached. */
static PH_ALWAYS_INLINE void *heap_alloc_any(heap *h, size_t size, size_t align, bool zero, bool keyed,
                                             const char *what) {
  if (PH_LIKELY(align == 0 && size <= h->large_threshold)) return heap_cached(h, size, zero, keyed, what);
  return heap_alloc_rest(h, size, align, zero, keyed, what);
}

void *heap_malloc(heap *h, size_t size, const char *what) { return heap_alloc_any(h, size, 0, false, true, what); }

void *heap_alloc(heap *h, size_t size, size_t align, bool zero, const char *what) {
  return heap_alloc_any(h, size, align, zero, true, what);
}

void *heap_alloc_plain(heap *h, size_t size, size_t align, const char *what) {
  return heap_alloc_any(h, size, align, false, false, what);
}

/* dynamic_direct_find in a section: it takes the direct blocks' lock. */
static size_t heap_direct_find(heap *h, const void *p, bool exact, pinheap_region *out) {
  gate_enter(&h->gate);
  size_t used = dynamic_direct_find(&h->dyn, p, exact, out);
  gate_leave(&h->gate);
  return used;
}

/* Length in bytes of the live large block at p, whose page holds tag, or 0
 * if p is a small object; aborts if p is neither. */
static size_t heap_classify_tag(const heap *h, const void *p, uint32_t tag, const char *what) {
  if (PAGEMAP_IS_SMALL(tag)) return 0;
  if (tag < 2 || (tag & 1) || ((uintptr_t)p & (h->page - 1)))
    heap_foreign(h, p, what, "pointer is not a live block (freed already, or inside a block)");
  return (size_t)(tag >> 1) * h->page;
}

/* The live block at p: its length when it is a large or direct block
 * (*direct tells which), 0 when it is a small object; aborts when p is none
 * of these. One page-map lookup. */
static size_t heap_classify(heap *h, const void *p, bool *direct, const char *what) {
  _Atomic uint32_t *slot = pagemap_slot(&h->space.pm, p);
  *direct = false;
  if (slot) return heap_classify_tag(h, p, atomic_load_explicit(slot, memory_order_acquire), what);
  size_t used = heap_dynamic(h) ? heap_direct_find(h, p, true, NULL) : 0;
  if (!used) heap_foreign(h, p, what, "pointer is not in the heap's memory, or not a live block of it");
  *direct = true;
  return used;
}

/* Interior pointers of small objects. A page's tag says where on the page
 * the objects of its bin b start (pagemap.h):
 * aborts, naming what, unless an object starts at p. */
static PH_ALWAYS_INLINE void heap_check_start(const heap *h, const void *p, uint32_t tag, unsigned b,
                                              const char *what) {
  if (PH_UNLIKELY(!sizeclass_starts(&h->classes, b, p, PAGEMAP_PHASE_OF(tag))))
    heap_foreign(h, p, what, "pointer is inside a block, not at its start");
}

/* Aborts, naming what, unless p, one of jemalloc's objects to a keyed
 * heap, is a live object at its start. */
static void heap_check_live(heap *h, void *p, const char *what) {
  uint32_t tag = pagemap_get(&h->space.pm, p);
  int bin = PAGEMAP_BIN_OF(tag);
  if (bin < 0) heap_foreign(h, p, what, "pointer is not a live block (inside a block)");
  heap_check_start(h, p, tag, (unsigned)bin, what);
  thread_cache *tc = thread_enter(&h->threads);
  bool freed = key_freed(&h->keys, tc ? &tc->bins[bin] : NULL, p, key_word(p));
  if (tc) thread_leave(tc);
  if (freed) heap_foreign(h, p, what, "block freed already (a double free)");
}

/* Gives a large block's extent (its head tag already cleared) back to the
 * extent manager; also the way thread caches give back the extents they
 * keep. */
static void heap_gave_back(heap *h, void *p, em_free_result r, const char *what) {
  if (r == EM_NO_METADATA) error_fatal("%s(%p): the system has no memory left for the heap's metadata", what, p);
  if (r != EM_FREED) heap_foreign(h, p, what, "extent overlaps free space: the heap is corrupt");
}

static void heap_give_back(heap *h, void *p, size_t bytes, const char *what) {
  heap_gave_back(h, p, em_free(&h->space.em, p, bytes), what);
}

/* heap_give_back unless another thread holds the manager's lock: whether
 * the extent went back. */
static bool heap_try_give_back(heap *h, void *p, size_t bytes, const char *what) {
  em_free_result r = em_try_free(&h->space.em, p, bytes);
  if (r == EM_BUSY) return false;
  heap_gave_back(h, p, r, what);
  return true;
}

/* Whether threads may cache freed extents now (HEAP_CACHE_ROOM). */
static bool heap_cache_room(heap *h) {
  size_t free_bytes, capacity;
  em_hint(&h->space.em, &free_bytes, &capacity);
  return free_bytes >= capacity / HEAP_CACHE_ROOM;
}

/* Keeps the extent of a block freed while the extent manager's lock is
 * contended, bytes at most XCACHE_CONTENDED_MAX; over the bound, the
 * smallest entries go back first, together under one taking of the lock
 * (singly, each would take it once per free). */
static void heap_keep_contended(heap *h, thread_cache *tc, void *p, size_t bytes) {
  if (!xcache_fits(&tc->extents, bytes)) {
    void *addrs[XCACHE_SLOTS];
    size_t lens[XCACHE_SLOTS], failed;
    unsigned n = xcache_shed(&tc->extents, addrs, lens);
    em_free_result r = em_free_many(&h->space.em, addrs, lens, n, &failed);
    if (r != EM_FREED) heap_gave_back(h, addrs[failed], r, "pinheap_free");
  }
  /* A FIXED heap is one region: its extents may join (xcache.h); a
   * poisoned block's record must stay at its end. */
  if (heap_fixed(h) && !h->poison)
    xcache_put_joined(&tc->extents, p, bytes, heap_release_extent, h);
  else
    xcache_put(&tc->extents, p, bytes, heap_release_extent, h);
  if (!atomic_load_explicit(&h->contended_kept, memory_order_relaxed))
    atomic_store_explicit(&h->contended_kept, true, memory_order_relaxed);
}

/* One section from clearing the tag to the extent's new place; near full,
 * the thread's cache of extents goes back too. */
static void heap_large_free(heap *h, void *p, _Atomic uint32_t *slot) {
  thread_cache *tc = heap_enter(h);
  size_t pages = pagemap_take_large(slot);
  if (pages == 0) {
    heap_leave(h, tc);
    heap_foreign(h, p, "pinheap_free", "pointer is not a live block (freed already)");
  }
  size_t bytes = pages * h->page;
  heap_count_large(h, tc, (size_t)0 - bytes, (size_t)0 - 1);
  bool cache = tc && h->threads.release_extent;
  if (cache && !heap_cache_room(h)) {
    xcache_drain(&tc->extents, heap_release_extent, h);
    cache = false;
  }
  if (cache && bytes <= XCACHE_BLOCK_MAX) {
    xcache_put(&tc->extents, p, bytes, heap_release_extent, h);
  } else if (cache && bytes <= XCACHE_CONTENDED_MAX) {
    /* Kept, rather than waited for, only while another thread holds the
     * manager's lock (and for HEAP_CONTENDED_FREES frees after): a lone
     * thread never finds it held, and its blocks keep the manager's
     * placement. */
    if (tc->contended) {
      tc->contended--;
      heap_keep_contended(h, tc, p, bytes);
    } else {
      /* At the end of this thread's window, a wait at the lock meanwhile
       * (by any thread) renews it; else the lock decides. */
      bool renew = tc->contended_renew && em_waits(&h->space.em) != tc->contended_waits;
      tc->contended_renew = false;
      if (renew || !heap_try_give_back(h, p, bytes, "pinheap_free")) {
        tc->contended = HEAP_CONTENDED_FREES;
        tc->contended_waits = em_waits(&h->space.em);
        tc->contended_renew = true;
        heap_keep_contended(h, tc, p, bytes);
      }
    }
  } else {
    heap_give_back(h, p, bytes, "pinheap_free");
  }
  heap_leave(h, tc);
}

/* dynamic_direct_free in a section. */
static bool heap_direct_free(heap *h, void *p) {
  thread_cache *tc = heap_enter(h);
  bool freed = dynamic_direct_free(&h->dyn, p);
  heap_leave(h, tc);
  return freed;
}

/* Aborts, naming what, unless an object of the fine path starts at p,
 * whose page holds tag; keyed: unless it is live too, as far as its key
 * tells (fr: the thread's front, or NULL). Its class. */
static PH_ALWAYS_INLINE unsigned heap_fine_live(heap *h, fine_front *fr, thread_cache *tc, void *p, uint32_t tag, bool keyed,
                               const char *what) {
  unsigned c = PAGEMAP_FINE_CLASS(tag);
  if (PH_UNLIKELY(!fine_starts(&h->fine, p, tag))) {
    heap_leave(h, tc);
    heap_foreign(h, p, what, "pointer is inside a block, not at its start");
  }
  uint64_t w = keyed ? key_word(p) : 0;
  if (keyed && PH_UNLIKELY(key_maybe_freed(&h->keys, p, w)) &&
      key_freed(&h->keys, fr ? &fr->stacks[c] : NULL, p, w)) {
    heap_leave(h, tc);
    heap_foreign(h, p, what, "block freed already (a double free)");
  }
  return c;
}

/* A free of the fine path's object p, whose page holds tag: onto the
 * thread's front, or back to its slab. */
static PH_ALWAYS_INLINE void heap_fine_free(heap *h, void *p, uint32_t tag, bool keyed) {
  thread_cache *tc = heap_enter(h);
  fine_front *fr = tc ? fine_front_of(&h->fine, tc->tcache) : NULL;
  unsigned c = heap_fine_live(h, fr, tc, p, tag, keyed, "pinheap_free");
  if (keyed) key_put(p, h->keys.cached);
  if (!fr || !thread_bin_push(&fr->stacks[c], p)) fine_spill(&h->fine, fr, c, p);
  heap_leave(h, tc);
}

/* keyed: a constant, as for heap_cached. */
static PH_ALWAYS_INLINE void heap_free_any(heap *h, void *p, bool keyed) {
  _Atomic uint32_t *slot = pagemap_slot(&h->space.pm, p);
  if (PH_UNLIKELY(!slot)) {
    if (heap_dynamic(h) && heap_direct_free(h, p)) return;
    heap_foreign(h, p, "pinheap_free", "pointer is not in the heap's memory, or not a live block of it");
  }
  uint32_t tag = atomic_load_explicit(slot, memory_order_acquire);
  int bin = PAGEMAP_BIN_OF(tag);
  if (PH_LIKELY(bin >= 0)) {
    heap_check_start(h, p, tag, (unsigned)bin, "pinheap_free");
    thread_cache *tc = thread_enter(&h->threads);
    if (PH_LIKELY(tc != NULL)) {
      if (keyed) heap_check_key(h, tc, p, (unsigned)bin, "pinheap_free");
      unsigned b = (unsigned)bin;
      if (!keyed && tc->held.limit) {
        if (!thread_hold(tc, p, b, &p, &b)) {
          thread_leave(tc);
          return;
        }
        canary_check_released(p, h->classes.size[b], h->poison, "pinheap_free");
        tag = pagemap_get(&h->space.pm, p); /* the object out of the FIFO's */
      }
      if (PH_UNLIKELY(PAGEMAP_OWNER_OF(tag) != tc->owner)) {
        /* Another arena's: back to it, never handed out by this thread. */
        thread_give_remote(tc, b, p, PAGEMAP_OWNER_OF(tag));
      } else {
        if (keyed) key_put(p, h->keys.cached);
        if (PH_UNLIKELY(!thread_bin_push(&tc->bins[b], p))) thread_bin_spill(tc, b, p);
      }
      thread_leave(tc);
    } else {
      if (keyed) {
        heap_check_key(h, NULL, p, (unsigned)bin, "pinheap_free");
        key_put(p, h->keys.freed);
      }
      heap_count_small(h, NULL, (size_t)0 - h->classes.size[bin]);
      dallocx(p, MALLOCX_TCACHE_NONE);
    }
    return;
  }
  if (PAGEMAP_IS_FINE(tag)) {
    heap_fine_free(h, p, tag, keyed);
    return;
  }
  /* Every object handed out had its page tagged with its bin
   * (heap_small_got): a small page without one holds no object's start. */
  if (PAGEMAP_IS_SMALL(tag)) heap_foreign(h, p, "pinheap_free", "pointer is not a live block (inside a block)");
  heap_classify_tag(h, p, tag, "pinheap_free");
  heap_large_free(h, p, slot);
}

/* heap_free past its fast path. */
static __attribute__((noinline)) void heap_free_rest(heap *h, void *p) { heap_free_any(h, p, true); }

/* heap_free's fast path for the live object p of bin b of the arena of
 * slot owner, not the thread's (tc entered): as heap_free_any gives it
 * back; leaves. */
static __attribute__((noinline)) void heap_free_remote(thread_cache *tc, unsigned b, void *p, unsigned owner) {
  thread_give_remote(tc, b, p, owner);
  thread_leave(tc);
}

/* heap_free's fast path for the live object p of bin b of the thread's
 * arena, whose stack is full (tc entered): as heap_free_any spills it;
 * leaves. */
static __attribute__((noinline)) void heap_free_spill(heap *h, thread_cache *tc, unsigned b, void *p) {
  key_put(p, h->keys.cached);
  thread_bin_spill(tc, b, p);
  thread_leave(tc);
}

/* The fast path: an object of jemalloc's in the first chunk, starting where
 * its page's tag says objects of its bin start, not freed as far as its key
 * tells: onto the thread's stack, or, out of line, to its arena when that
 * is another's, or spilled when the stack is full. Anything else goes the
 * whole way (heap_free_any), which decides from the start again. Without a
 * call but in tail position, so that it saves no registers. */
void heap_free(heap *h, void *p) {
  _Atomic uint32_t *slot = pagemap_slot_first(&h->space.pm, p);
  if (PH_LIKELY(slot != NULL)) {
    uint32_t tag = atomic_load_explicit(slot, memory_order_acquire);
    int bin = PAGEMAP_BIN_OF(tag);
    if (PH_LIKELY(bin >= 0) && PH_LIKELY(sizeclass_starts(&h->classes, (unsigned)bin, p, PAGEMAP_PHASE_OF(tag)))) {
      thread_cache *tc = thread_enter_fast(&h->threads);
      if (PH_LIKELY(tc != NULL)) {
        if (PH_LIKELY(!key_maybe_freed(&h->keys, p, key_word(p)))) {
          if (PH_UNLIKELY(PAGEMAP_OWNER_OF(tag) != tc->owner)) {
            heap_free_remote(tc, (unsigned)bin, p, PAGEMAP_OWNER_OF(tag));
            return;
          }
          if (PH_UNLIKELY(!thread_bin_push(&tc->bins[bin], p))) {
            heap_free_spill(h, tc, (unsigned)bin, p);
            return;
          }
          key_put(p, h->keys.cached);
          thread_leave(tc);
          return;
        }
        thread_leave(tc);
      }
    }
  }
  heap_free_rest(h, p);
}

void heap_free_plain(heap *h, void *p) { heap_free_any(h, p, false); }

size_t heap_usable_plain(heap *h, const void *p, heap_kind *kind, const char *what) {
  *kind = HEAP_SMALL;
  /* A small object's page names its bin: no lookup in jemalloc. */
  _Atomic uint32_t *slot = pagemap_slot(&h->space.pm, p);
  uint32_t tag = slot ? atomic_load_explicit(slot, memory_order_acquire) : 0;
  int bin = PAGEMAP_BIN_OF(tag);
  if (bin >= 0) {
    heap_check_start(h, p, tag, (unsigned)bin, what);
    return h->classes.size[bin];
  }
  if (PAGEMAP_IS_FINE(tag)) {
    if (!fine_starts(&h->fine, p, tag)) heap_foreign(h, p, what, "pointer is inside a block, not at its start");
    return fine_size(&h->fine, PAGEMAP_FINE_CLASS(tag));
  }
  if (PAGEMAP_IS_SMALL(tag)) heap_foreign(h, p, what, "pointer is not a live block (inside a block)");
  bool direct;
  size_t bytes = heap_classify(h, p, &direct, what);
  if (bytes) {
    *kind = direct ? HEAP_DIRECT : HEAP_LARGE;
    return bytes;
  }
  return sallocx(p, 0);
}

size_t heap_usable_size(heap *h, const void *p) {
  heap_kind kind;
  return heap_usable_plain(h, p, &kind, "pinheap_usable_size");
}

/* Resizes the large block p of old bytes in place to new bytes (both page
 * multiples), in one section; false if the next extent is not free. */
bool heap_resize_plain(heap *h, void *p, size_t old, size_t new) {
  PH_ASSERT(old % h->page == 0 && new % h->page == 0 && new > h->large_threshold);
  char *c = p;
  if (new / h->page > PAGEMAP_MAX_PAGES) return false;
  thread_cache *tc = heap_enter(h);
  /* The room above may be in the thread's own cache of extents. */
  if (new > old && !em_alloc_at(&h->space.em, c + old, new - old, NULL) &&
      !(tc && h->threads.release_extent &&
        xcache_evict_range(&tc->extents, c + old, new - old, heap_release_extent, h) &&
        em_alloc_at(&h->space.em, c + old, new - old, NULL))) {
    heap_leave(h, tc);
    return false;
  }
  if (!pagemap_resize_large(&h->space.pm, p, old / h->page, new / h->page)) {
    heap_leave(h, tc);
    heap_foreign(h, p, "pinheap_realloc", "block was freed during the call");
  }
  if (new < old) heap_give_back(h, c + new, old - new, "pinheap_realloc");
  heap_count_large(h, tc, new - old, 0);
  heap_leave(h, tc);
  return true;
}

/* realloc's move of the large block p of old bytes to one of bytes (page
 * multiples), where the old block counts as free (em_move): the new place
 * may overlap the old, so the contents move with memmove, and what is left
 * of the old block is given back. NULL when no place holds it: p is then
 * unchanged. One section. */
typedef struct heap_move_req {
  char *p;
  size_t old, bytes;
} heap_move_req;

static void *heap_move_take(heap *h, void *arg) {
  heap_move_req *r = arg;
  thread_cache *tc = heap_enter(h);
  char *p = r->p, *q = em_move(&h->space.em, p, r->old, r->bytes);
  if (q) {
    if (pagemap_take_large(pagemap_slot(&h->space.pm, p)) != r->old / h->page) {
      heap_leave(h, tc);
      heap_foreign(h, p, "pinheap_realloc", "block was freed during the call");
    }
    memmove(q, p, r->old < r->bytes ? r->old : r->bytes);
    heap_tag_large(h, q, r->bytes / h->page);
    /*   [ below ][ new ][ above ]: the old block's parts the new one left. */
    if (p < q) heap_give_back(h, p, (size_t)((q < p + r->old ? q : p + r->old) - p), "pinheap_realloc");
    if (p + r->old > q + r->bytes) {
      char *from = q + r->bytes > p ? q + r->bytes : p;
      heap_give_back(h, from, (size_t)(p + r->old - from), "pinheap_realloc");
    }
    heap_count_large(h, tc, r->bytes - r->old, 0);
  }
  heap_leave(h, tc);
  return q;
}

/* Moves p, of old_usable bytes, to q (NULL: the allocation failed). */
static void *heap_move_to(heap *h, void *q, void *p, size_t old_usable, size_t size) {
  if (!q) return NULL;
  memcpy(q, p, old_usable < size ? old_usable : size);
  heap_free(h, p);
  return q;
}

static void *heap_move(heap *h, void *p, size_t old_usable, size_t size) {
  return heap_move_to(h, heap_alloc(h, size, 0, false, "pinheap_realloc"), p, old_usable, size);
}

bool heap_direct_resize_plain(heap *h, void *p, size_t bytes, size_t *registered) {
  thread_cache *tc = heap_enter(h);
  pinheap_region r;
  bool fits = dynamic_direct_resize(&h->dyn, p, bytes, &r);
  heap_leave(h, tc);
  *registered = r.size;
  return fits;
}

bool heap_quarantine_plain(heap *h, void *p) {
  thread_cache *tc = heap_enter(h);
  bool kept = dynamic_direct_quarantine(&h->dyn, p);
  heap_leave(h, tc);
  return kept;
}

/* Moves the large or direct block p to a new block of size bytes: a direct
 * one with room to grow beyond grow_from bytes when size takes a direct
 * block (growth by steps costs O(total bytes)), else any. */
static void *heap_relocate(heap *h, void *p, size_t old, size_t size, size_t grow_from) {
  if (!heap_dynamic(h) || util_align_up(size, h->page) < h->opts.direct_threshold) return heap_move(h, p, old, size);
  return heap_move_to(h, heap_direct_plain(h, size, grow_from, "pinheap_realloc"), p, old, size);
}

/* The direct block p of old bytes resized: in place when its registration
 * holds size, else moved. */
static void *heap_direct_realloc(heap *h, void *p, size_t old, size_t size) {
  size_t registered = old;
  if (util_align_up(size, h->page) >= h->opts.direct_threshold &&
      heap_direct_resize_plain(h, p, util_align_up(size, h->page), &registered))
    return p;
  return heap_relocate(h, p, old, size, registered);
}

/* The small object p resized by jemalloc in its arena, with the one reclaim
 * and retry; moved when the thread has no cache. */
static void *heap_small_realloc(heap *h, void *p, size_t size) {
  thread_cache *tc = thread_enter(&h->threads);
  if (!tc) return heap_move(h, p, sallocx(p, 0), size);
  if (PAGEMAP_OWNER_OF(pagemap_get(&h->space.pm, p)) != tc->owner) {
    /* rallocx would put another arena's object into the thread's tcache,
     * to hand out again: moved, it goes back to its arena (heap_free). */
    thread_leave(tc);
    return heap_move(h, p, sallocx(p, 0), size);
  }
  heap_small_req r = {p, size, 0, tc->owner};
  size_t was = sallocx(p, 0);
  void *q = rallocx(p, size, tc->alloc_flags);
  if (q) thread_count_small(tc, sallocx(q, 0) - was);
  thread_leave(tc);
  q = heap_retry(h, q, heap_jemalloc, &r, "pinheap_realloc", size);
  if (!q) return NULL;
  /* rallocx keeps to the arena named, even where mallocx would not
   * (heap_jemalloc_ours). */
  if (!heap_jemalloc_ours(h, q)) error_fatal("pinheap_realloc(%p): jemalloc moved the block out of the heap", p);
  heap_note_bin(h, q, sizeclass_bin(&h->classes, sallocx(q, 0)), r.owner);
  return q;
}

/* The fine path's object p, whose page holds tag, resized: in place while
 * the size keeps its class, else moved. */
static void *heap_fine_realloc(heap *h, void *p, uint32_t tag, size_t size) {
  thread_cache *tc = thread_enter(&h->threads);
  fine_front *fr = tc ? fine_front_of(&h->fine, tc->tcache) : NULL;
  if (!tc) gate_enter(&h->gate); /* heap_fine_live leaves what it entered */
  unsigned c = heap_fine_live(h, fr, tc, p, tag, true, "pinheap_realloc");
  heap_leave(h, tc);
  if (heap_impossible(h, "pinheap_realloc", size)) return NULL;
  if (fine_serves(size) && size <= h->large_threshold && fine_class_of(&h->fine, size) == c) return p;
  return heap_move(h, p, fine_size(&h->fine, c), size);
}

void *heap_realloc(heap *h, void *p, size_t size) {
  _Atomic uint32_t *slot = pagemap_slot(&h->space.pm, p);
  uint32_t tag = slot ? atomic_load_explicit(slot, memory_order_acquire) : 0;
  if (PAGEMAP_IS_FINE(tag)) return heap_fine_realloc(h, p, tag, size);
  bool direct = false;
  size_t old_large = heap_classify(h, p, &direct, "pinheap_realloc");
  if (!old_large) heap_check_live(h, p, "pinheap_realloc");
  if (heap_impossible(h, "pinheap_realloc", size)) return NULL;
  if (direct) return heap_direct_realloc(h, p, old_large, size);
  if (old_large == 0) {
    /* A small block that grows stays on jemalloc's classes up to their
     * largest, whatever large_threshold: each stage of a growing block as a
     * page-rounded extent left holes among the top's blocks (README,
     * "Thresholds and why"); and so it does above FINE_GAP_MAX: on the fine
     * path's few classes there (then 4-14 KiB) its stages took grow-like
     * H/M up. */
    if (size > h->classes.max || (fine_serves(size) && size <= FINE_GAP_MIN))
      return heap_move(h, p, sallocx(p, 0), size);
    return heap_small_realloc(h, p, size);
  }
  if (size <= h->large_threshold) return heap_move(h, p, old_large, size);
  size_t bytes = util_align_up(size, h->page);
  if (bytes == old_large || heap_resize_plain(h, p, old_large, bytes)) return p;
  /* A large block stays large: free, then place (the bump policy places
   * nothing where it freed; DYNAMIC grows only by a new block). */
  if (h->opts.policy != PINHEAP_POLICY_BUMP && bytes / h->page <= PAGEMAP_MAX_PAGES &&
      (!heap_dynamic(h) || bytes < h->opts.direct_threshold)) {
    heap_move_req r = {p, old_large, bytes};
    void *q = heap_move_take(h, &r);
    if (q) return q;
    if (heap_fixed(h)) return heap_retry(h, NULL, heap_move_take, &r, "pinheap_realloc", size);
  }
  return heap_relocate(h, p, old_large, size, old_large);
}

bool heap_owns(heap *h, const void *p) {
  return pagemap_covers(&h->space.pm, p) || (heap_dynamic(h) && heap_direct_find(h, p, false, NULL));
}

int heap_region_of(heap *h, const void *p, pinheap_region *out) {
  /* A SIMPLE heap's memory is ordinary, registered nowhere. */
  bool registered = h->opts.mode != PINHEAP_SIMPLE;
  pagemap_chunk *c = registered ? pagemap_chunk_of(&h->space.pm, p) : NULL;
  if (c) {
    *out = (pinheap_region){.base = (void *)c->base, .size = c->size, .handle = c->handle};
    return 0;
  }
  if (registered && heap_dynamic(h) && heap_direct_find(h, p, false, out)) return 0;
  error_set(EINVAL, "pinheap_region_of(%p): not in memory the heap obtained from its provider", p);
  return -1;
}

void heap_get_stats(heap *h, pinheap_stats *out) {
  memset(out, 0, sizeof *out);
  /* jemalloc's objects out of jemalloc less those the caches hold: what
   * jemalloc's own tcaches hold is neither. Counts read while other
   * threads move objects may disagree for a moment: never below 0. */
  size_t held, out_of_jemalloc = thread_sum_small(&h->threads, &held) + atomic_load(&h->small_bytes);
  size_t small = util_sub_floor(out_of_jemalloc, held);
  heap_large_counts(h, &out->large_allocated, &out->large_blocks);
  em_stats s;
  gate_enter(&h->gate);
  em_get_stats(&h->space.em, &s);
  out->capacity = s.capacity;
  out->free_bytes = s.free_bytes;
  out->largest_free = s.largest_free;
  out->free_extents = s.free_extents;
  out->peak_in_use = s.peak_in_use;
  if (heap_dynamic(h)) {
    /* Direct blocks: their registrations are capacity in use (quarantined
     * ones too; cached ones free), the bytes the live ones use are
     * allocated. */
    size_t registered, used, blocks, cached_blocks, cached;
    dynamic_direct_stats(&h->dyn, &registered, &used, &blocks);
    dynamic_cache_stats(&h->dyn, &cached_blocks, &cached);
    out->capacity += registered;
    out->free_bytes += cached;
    out->large_allocated += used;
    out->large_blocks += blocks;
  }
  /* Inside the section: a fork must not find a class's lock held. */
  size_t fine_allocated, fine_slabs;
  fine_counts(&h->fine, &fine_allocated, &fine_slabs);
  gate_leave(&h->gate);
  size_t in_use = out->capacity - out->free_bytes;
  out->in_use = in_use;
  out->allocated = small + util_sub_floor(fine_allocated, fine_front_bytes(&h->fine)) + out->large_allocated;
  /* The high-water mark as stats calls and direct blocks saw it, beside what
   * the manager saw. */
  size_t peak = util_raise_max(&h->peak_seen, in_use);
  if (heap_dynamic(h) && dynamic_peak(&h->dyn) > peak) peak = dynamic_peak(&h->dyn);
  if (peak > out->peak_in_use) out->peak_in_use = peak;
  out->peak_capacity = heap_fixed(h) ? out->capacity : dynamic_peak_registered(&h->dyn);
}

struct heap_check_walk {
  heap *h;
  int broken;
};

/* Counts the objects of the threads' chains and inbound lists (bin, going
 * back to the arena of slot owner) whose page's tag names another bin or
 * owner, or at which no object of the bin starts. */
static void heap_check_remote(void *p, unsigned bin, unsigned owner, void *arg) {
  struct heap_check_walk *walk = arg;
  if (!thread_object_of(&walk->h->threads, p, bin, owner)) {
    fprintf(stderr, "heap: object %p going back to arena slot %u, bin %u, is no object of that bin and arena\n", p,
            owner, bin);
    walk->broken++;
  }
}

/* Counts the free extents with a page the map says is in use. */
static int heap_check_free_untagged(uintptr_t addr, size_t size, void *arg) {
  struct heap_check_walk *walk = arg;
  heap *h = walk->h;
  /* A free extent lies in one region, whose tags are one array: one lookup. */
  _Atomic uint32_t *tags = pagemap_slot(&h->space.pm, (void *)addr);
  for (size_t i = 0; i < size / h->page; i++) {
    if (atomic_load_explicit(&tags[i], memory_order_relaxed) != 0) {
      fprintf(stderr, "heap: page %#lx of free extent %#lx+%zu should carry no tag\n",
              (unsigned long)(addr + i * h->page), (unsigned long)addr, size);
      walk->broken++;
      break;
    }
  }
  return 0;
}

int heap_check(heap *h) {
  /* The outer locks (the thread registry's) first, outside the section:
   * fork's prepare takes them before it closes the gate. */
  int broken = thread_check(&h->threads) + arenas_check(&h->arenas) + key_check(&h->keys);
  size_t cached = thread_cached_extent_bytes(&h->threads);
  /* jemalloc counts its objects out of the heap's arenas, those its
   * tcaches hold included; the caches count them less those. */
  size_t jemalloc_out = arenas_allocated(&h->arenas);
  size_t held, small_out = thread_sum_small(&h->threads, &held) + atomic_load(&h->small_bytes);
  if (small_out > jemalloc_out) {
    fprintf(stderr, "heap: the caches count %zu bytes of jemalloc's objects out, jemalloc only %zu\n", small_out,
            jemalloc_out);
    broken++;
  }
  size_t fine_allocated, fine_slabs;
  size_t bytes, blocks;
  heap_large_counts(h, &bytes, &blocks);
  gate_enter(&h->gate);
  if (heap_dynamic(h)) broken += dynamic_check(&h->dyn);
  broken += em_check(&h->space.em);
  broken += pagemap_check(&h->space.pm, blocks, bytes / h->page);
  broken += hooks_shared_check(&h->space.grants);
  size_t fine_pages, small_pages = pagemap_count_pages(&h->space.pm, &fine_pages);
  broken += fine_check(&h->fine, fine_pages);
  fine_counts(&h->fine, &fine_allocated, &fine_slabs);
  em_stats s;
  em_get_stats(&h->space.em, &s);
  struct heap_check_walk walk = {h, 0};
  em_walk_free(&h->space.em, heap_check_free_untagged, &walk);
  broken += walk.broken;
  gate_leave(&h->gate);
  walk.broken = 0;
  thread_walk_remote(&h->threads, heap_check_remote, &walk);
  broken += walk.broken;
  if (h->opts.policy != PINHEAP_POLICY_BUMP &&
      s.free_bytes + bytes + cached + small_pages * h->page + fine_slabs != s.capacity) {
    fprintf(stderr,
            "heap: free %zu + large %zu + cached %zu + jemalloc's %zu + fine slabs %zu bytes should equal the "
            "region's %zu\n",
            s.free_bytes, bytes, cached, small_pages * h->page, fine_slabs, s.capacity);
    broken++;
  }
  return broken;
}
