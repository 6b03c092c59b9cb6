/*
 * Emulations of the FIXED heap of jemalloc-based PGAS runtimes: jemalloc
 * arenas whose extent hooks bump a pointer through the fixed region and
 * never take memory back, so that jemalloc keeps ("retains") what it frees
 * and reuses it itself.
 *
 *   seed-bump     the hooks as first written: split and merge refused, one
 *                 arena per thread for every size
 *   chapel-fixed  Chapel's FIXED heap today (its runtime's
 *                 runtime/src/mem/jemalloc/mem-jemalloc.c, read for this):
 *                 split and merge allowed (CHPL_RT_MERGE_SPLIT_CHUNKS, on
 *                 for a fixed heap), and requests of 32 MiB and more sent to
 *                 one dedicated arena (its CHPL_JE_LG_ARENA)
 *
 * As there: alloc aligns the pointer up to the alignment asked, returns
 * NULL when new_addr is given and is not the pointer, or when the rest of
 * the region is too small; dalloc, commit, decommit and purge refuse;
 * destroy does nothing. The arenas are made with jemalloc's own hooks and
 * then given these (Chapel replaces the hooks of arenas jemalloc made), so
 * their first metadata lies outside the region. Each thread has an explicit
 * tcache (one runner serves several peers' arenas in one process). Memory
 * the bump hands out has never been written, so it is zero: *zero is
 * answered without a memset.
 */
#include <jemalloc/jemalloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "peer.h"

#define JB_SEED 0
#define JB_CHAPEL 1
#define JB_LARGE ((size_t)32 << 20)
#define JB_MAX_ARENAS 65

/* Invariants: top <= size, and [base, base + top) is all the hooks have
 * handed out; arena[0..n_arenas) carry these hooks; with large_arena the
 * last of them (large) serves requests of JB_LARGE and more, the others a
 * thread each, in turn. */
typedef struct jb_heap {
  extent_hooks_t hooks; /* first: a hook finds its heap from the pointer jemalloc passes */
  bool split_merge, large_arena;
  char *base;
  size_t size, top;     /* the bump pointer: base + top */
  pthread_mutex_t lock;
  unsigned arena[JB_MAX_ARENAS], n_arenas, large;
  _Atomic unsigned next;
} jb_heap;

/* The calling thread's arena and tcache in the heap it started on. */
static _Thread_local struct {
  jb_heap *h;
  unsigned arena, tcache;
} jb_tl;

static void *jb_alloc(extent_hooks_t *hooks, void *new_addr, size_t size, size_t alignment, bool *zero, bool *commit,
                      unsigned arena_ind) {
  (void)arena_ind;
  jb_heap *h = (jb_heap *)hooks;
  pthread_mutex_lock(&h->lock);
  uintptr_t cur = ((uintptr_t)h->base + h->top + alignment - 1) & ~(uintptr_t)(alignment - 1);
  size_t off = cur - (uintptr_t)h->base;
  void *got = NULL;
  if ((!new_addr || (uintptr_t)new_addr == cur) && off <= h->size && size <= h->size - off) {
    h->top = off + size;
    got = (void *)cur;
  }
  pthread_mutex_unlock(&h->lock);
  if (got) {
    *zero = true;
    *commit = true;
  }
  return got;
}

static bool jb_refuse(extent_hooks_t *hooks, void *addr, size_t size, bool committed, unsigned arena_ind) {
  (void)hooks, (void)addr, (void)size, (void)committed, (void)arena_ind;
  return true;
}
static void jb_destroy_extent(extent_hooks_t *hooks, void *addr, size_t size, bool committed, unsigned arena_ind) {
  (void)hooks, (void)addr, (void)size, (void)committed, (void)arena_ind;
}
static bool jb_refuse_range(extent_hooks_t *hooks, void *addr, size_t size, size_t offset, size_t length,
                            unsigned arena_ind) {
  (void)hooks, (void)addr, (void)size, (void)offset, (void)length, (void)arena_ind;
  return true;
}
static bool jb_split(extent_hooks_t *hooks, void *addr, size_t size, size_t a, size_t b, bool committed,
                     unsigned arena_ind) {
  (void)addr, (void)size, (void)a, (void)b, (void)committed, (void)arena_ind;
  return !((jb_heap *)hooks)->split_merge;
}
static bool jb_merge(extent_hooks_t *hooks, void *a, size_t sa, void *b, size_t sb, bool committed,
                     unsigned arena_ind) {
  (void)a, (void)sa, (void)b, (void)sb, (void)committed, (void)arena_ind;
  return !((jb_heap *)hooks)->split_merge;
}

/* An arena made with jemalloc's hooks, then given the heap's. */
static int jb_arena(jb_heap *h, unsigned *out) {
  size_t len = sizeof *out;
  if (mallctl("arenas.create", out, &len, NULL, 0) != 0) return -1;
  char name[64];
  snprintf(name, sizeof name, "arena.%u.extent_hooks", *out);
  extent_hooks_t *hp = &h->hooks;
  return mallctl(name, NULL, NULL, &hp, sizeof hp) != 0 ? -1 : 0;
}

static void jb_destroy(peer_heap *ph) {
  jb_heap *h = (jb_heap *)ph;
  char name[64];
  for (unsigned i = 0; i < h->n_arenas; i++) {
    snprintf(name, sizeof name, "arena.%u.destroy", h->arena[i]);
    mallctl(name, NULL, NULL, NULL, 0);
  }
  peer_region_unmap(h->base, h->size);
  pthread_mutex_destroy(&h->lock);
  free(h);
}

static peer_heap *jb_create(const peer *p, size_t size, unsigned threads, bool prefault, char *err, size_t errlen) {
  jb_heap *h = calloc(1, sizeof *h);
  if (!h) return peer_fail(err, errlen, "no memory");
  h->hooks = (extent_hooks_t){jb_alloc, jb_refuse, jb_destroy_extent, jb_refuse_range, jb_refuse_range,
                              jb_refuse_range, jb_refuse_range, jb_split, jb_merge};
  h->split_merge = h->large_arena = p->variant == JB_CHAPEL;
  h->size = size;
  pthread_mutex_init(&h->lock, NULL);
  h->base = peer_region_map(size, (size_t)2 << 20, prefault);
  if (!h->base) {
    pthread_mutex_destroy(&h->lock);
    free(h);
    return peer_fail(err, errlen, "no address space for %zu bytes", size);
  }
  unsigned want = (threads ? threads : 1) + (h->large_arena ? 1 : 0);
  for (; h->n_arenas < want && h->n_arenas < JB_MAX_ARENAS; h->n_arenas++)
    if (jb_arena(h, &h->arena[h->n_arenas]) != 0) {
      jb_destroy((peer_heap *)h);
      return peer_fail(err, errlen, "arenas.create failed");
    }
  h->large = h->arena[h->n_arenas - 1];
  return (peer_heap *)h;
}

static void jb_thread_start(peer_heap *ph) {
  jb_heap *h = (jb_heap *)ph;
  unsigned small = h->n_arenas - (h->large_arena ? 1 : 0);
  size_t len = sizeof jb_tl.tcache;
  jb_tl.h = h;
  jb_tl.arena = h->arena[atomic_fetch_add(&h->next, 1) % small];
  if (mallctl("tcache.create", &jb_tl.tcache, &len, NULL, 0) != 0) abort();
}

static void jb_thread_stop(peer_heap *ph) {
  (void)ph;
  mallctl("tcache.destroy", NULL, NULL, &jb_tl.tcache, sizeof jb_tl.tcache);
  jb_tl.h = NULL;
}

static int jb_flags(size_t size) {
  if (jb_tl.h->large_arena && size >= JB_LARGE) return MALLOCX_ARENA(jb_tl.h->large) | MALLOCX_TCACHE_NONE;
  return MALLOCX_ARENA(jb_tl.arena) | MALLOCX_TCACHE(jb_tl.tcache);
}

static void *jb_malloc(peer_heap *h, size_t size) {
  (void)h;
  size += !size;
  return mallocx(size, jb_flags(size));
}
static void *jb_calloc(peer_heap *h, size_t n, size_t size) {
  (void)h;
  if (size && n > SIZE_MAX / size) return NULL;
  size_t b = n * size;
  b += b == 0;
  return mallocx(b, jb_flags(b) | MALLOCX_ZERO);
}
static void *jb_realloc(peer_heap *h, void *ptr, size_t size) {
  if (!ptr) return jb_malloc(h, size);
  size += !size;
  return rallocx(ptr, size, jb_flags(size));
}
static void *jb_aligned(peer_heap *h, size_t a, size_t size) {
  (void)h;
  size += !size;
  return mallocx(size, jb_flags(size) | MALLOCX_ALIGN(a));
}
static void jb_free(peer_heap *h, void *ptr) {
  (void)h;
  if (ptr) dallocx(ptr, MALLOCX_TCACHE(jb_tl.tcache));
}
static void *jb_base(peer_heap *h) { return ((jb_heap *)h)->base; }
static bool jb_owns(peer_heap *ph, const void *ptr, size_t size) {
  jb_heap *h = (jb_heap *)ph;
  return peer_region_holds(h->base, h->size, ptr, size);
}

size_t peer_jebump(peer *out, size_t max) {
  static const peer proto = {.flags = PEER_FIXED | PEER_THREADS, .create = jb_create, .malloc = jb_malloc,
                             .calloc = jb_calloc, .realloc = jb_realloc, .aligned = jb_aligned, .free = jb_free,
                             .base = jb_base, .owns = jb_owns, .thread_start = jb_thread_start, .thread_stop = jb_thread_stop,
                             .destroy = jb_destroy};
  if (max > 0) {
    out[0] = proto;
    out[0].name = "seed-bump";
    out[0].what = "emulation: jemalloc arenas whose hooks bump a pointer through the region, never take memory "
                  "back, refuse split and merge";
    out[0].variant = JB_SEED;
  }
  if (max > 1) {
    out[1] = proto;
    out[1].name = "chapel-fixed";
    out[1].what = "emulation of Chapel's FIXED heap: the bump hooks with split and merge allowed, requests of "
                  "32 MiB and more in one arena";
    out[1].variant = JB_CHAPEL;
  }
  return 2;
}
