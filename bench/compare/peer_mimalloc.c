/* mimalloc's exclusive arena over the fixed region (Debian libmimalloc-dev
 * 2.0.9): mi_manage_os_memory_ex over the region, a heap per thread made
 * with mi_heap_new_in_arena. Its arenas are made of 32 MiB segments, which
 * must be aligned to their size: the region is aligned to 32 MiB and its
 * size rounded down to a multiple of 32 MiB (so a heap of less than 32 MiB
 * cannot be made). An arena cannot be given back: each replay is a process
 * of its own (PEER_EXTERNAL), and a heap's region stays mapped. */
#include <mimalloc.h>
#include <stdint.h>

#include "peer.h"

#define MI_SEGMENT ((size_t)32 << 20)

/* Invariants: base is aligned to MI_SEGMENT, size a positive multiple of
 * it; arena is the exclusive arena over [base, base + size). */
typedef struct mi_region {
  char *base;
  size_t size;
  mi_arena_id_t arena;
} mi_region;

static _Thread_local mi_heap_t *mi_tl;

static peer_heap *mi_create(const peer *p, size_t size, unsigned threads, bool prefault, char *err, size_t errlen) {
  (void)p, (void)threads;
  static mi_region regions[64];
  static unsigned n;
  size = size / MI_SEGMENT * MI_SEGMENT;
  if (!size) return peer_fail(err, errlen, "mimalloc's arena needs at least one 32 MiB segment");
  if (n == 64) return peer_fail(err, errlen, "no more arenas in this process");
  mi_region *r = &regions[n];
  r->size = size;
  r->base = peer_region_map(size, MI_SEGMENT, prefault);
  if (!r->base) return peer_fail(err, errlen, "no address space for %zu bytes", size);
  /* committed, not large pages, zeroed, any NUMA node, exclusive */
  if (!mi_manage_os_memory_ex(r->base, size, true, false, true, -1, true, &r->arena))
    return peer_fail(err, errlen, "mi_manage_os_memory_ex(%zu bytes) failed", size);
  n++;
  return (peer_heap *)r;
}

static void mi_thread_start(peer_heap *h) { mi_tl = mi_heap_new_in_arena(((mi_region *)h)->arena); }
static void mi_thread_stop(peer_heap *h) {
  (void)h;
  if (mi_tl) mi_heap_delete(mi_tl);
  mi_tl = NULL;
}
static void *mi_p_malloc(peer_heap *h, size_t size) { return (void)h, mi_tl ? mi_heap_malloc(mi_tl, size) : NULL; }
static void *mi_p_calloc(peer_heap *h, size_t n, size_t size) {
  return (void)h, mi_tl ? mi_heap_calloc(mi_tl, n, size) : NULL;
}
static void *mi_p_realloc(peer_heap *h, void *ptr, size_t size) {
  return (void)h, mi_tl ? mi_heap_realloc(mi_tl, ptr, size) : NULL;
}
static void *mi_p_aligned(peer_heap *h, size_t a, size_t size) {
  return (void)h, mi_tl ? mi_heap_malloc_aligned(mi_tl, size, a) : NULL;
}
static void mi_p_free(peer_heap *h, void *ptr) { (void)h, mi_free(ptr); }
static void *mi_base(peer_heap *h) { return ((mi_region *)h)->base; }
static bool mi_owns(peer_heap *h, const void *ptr, size_t size) {
  return peer_region_holds(((mi_region *)h)->base, ((mi_region *)h)->size, ptr, size);
}
static void mi_destroy(peer_heap *h) { (void)h; }
static size_t mi_extent(peer_heap *h) { return ((mi_region *)h)->size; }

size_t peer_mimalloc(peer *out, size_t max) {
  if (max)
    out[0] = (peer){.name = "mimalloc-arena",
                    .what = "mimalloc 2.0.9: an exclusive arena over the region (mi_manage_os_memory_ex), a heap "
                            "per thread in it (mi_heap_new_in_arena)",
                    .flags = PEER_FIXED | PEER_THREADS | PEER_EXTERNAL, .create = mi_create, .malloc = mi_p_malloc,
                    .calloc = mi_p_calloc, .realloc = mi_p_realloc, .aligned = mi_p_aligned, .free = mi_p_free,
                    .base = mi_base, .owns = mi_owns, .extent = mi_extent, .thread_start = mi_thread_start, .thread_stop = mi_thread_stop,
                    .destroy = mi_destroy};
  return 1;
}
