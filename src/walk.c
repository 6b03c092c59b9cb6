/*
 * walk: the heap's memory extent by extent (pinheap_walk), and the summary
 * pictures are drawn from (pinheap_slices).
 *
 * The extent manager partitions each region into free extents and the
 * ranges between them (em_walk). A range in use is told apart by the page
 * map and the hooks' grants: a large block's head page holds its length; a
 * grant is jemalloc's (metadata when it was asked for 2 MiB aligned, else
 * slabs), but for its pages jemalloc gave back (held); any other page in
 * use is held (an extent a thread's cache keeps, or under the bump policy
 * one freed for good).
 *
 * Runs in a gate section (fork.h) with the manager's lock held through the
 * walk; the grants' lock is taken for each lookup (the hooks never take the
 * manager's lock while they hold it); the page map is read without a lock.
 */
#include <errno.h>

#include "error.h"
#include "heap.h"
#include "util.h"

typedef struct walk_state {
  pinheap *heap;
  int (*visit)(const pinheap_extent *extent, void *arg);
  void *arg;
  uint64_t now;
} walk_state;

static int walk_emit(walk_state *w, uintptr_t addr, size_t size, pinheap_extent_kind kind, uint64_t birth,
                     size_t object_size) {
  pinheap_extent e = {.addr = (void *)addr,
                      .size = size,
                      .kind = kind,
                      .age = birth && birth <= w->now ? (double)(w->now - birth) / 1e9 : -1,
                      .object_size = object_size};
  return w->visit(&e, w->arg);
}

/* [a, end) inside grant g: runs of the pages jemalloc gave back (held) and
 * of the others (slabs or metadata). */
static int walk_grant(walk_state *w, const hooks_grant *g, uintptr_t a, uintptr_t end) {
  pinheap *h = w->heap;
  while (a < end) {
    uint32_t tag = pagemap_get(&h->pm, (void *)a);
    bool returned = tag == PAGEMAP_RETURNED;
    uintptr_t b = a + h->page;
    while (b < end && (pagemap_get(&h->pm, (void *)b) == PAGEMAP_RETURNED) == returned) b += h->page;
    int bin = g->meta ? -1 : PAGEMAP_BIN_OF(tag);
    int stop = returned ? walk_emit(w, a, b - a, PINHEAP_EXTENT_HELD, 0, 0)
                        : walk_emit(w, a, b - a, g->meta ? PINHEAP_EXTENT_METADATA : PINHEAP_EXTENT_SLAB, g->birth,
                                    bin >= 0 ? h->classes.size[bin] : 0);
    if (stop) return stop;
    a = b;
  }
  return 0;
}

/* A range [a, end) in use: large blocks, grants, and held runs between. */
static int walk_used(walk_state *w, uintptr_t a, uintptr_t end) {
  pinheap *h = w->heap;
  while (a < end) {
    size_t bytes = pagemap_large_pages(pagemap_get(&h->pm, (void *)a)) * h->page;
    int stop;
    if (bytes && bytes <= end - a) {
      stop = walk_emit(w, a, bytes, PINHEAP_EXTENT_LARGE, pagemap_birth(&h->pm, (void *)a), 0);
      a += bytes;
    } else {
      hooks_grant g;
      uintptr_t next;
      if (hooks_grant_at(&h->grants, a, &g, &next)) {
        uintptr_t stop_at = g.addr + g.size < end ? g.addr + g.size : end;
        stop = walk_grant(w, &g, a, stop_at);
        a = stop_at;
      } else {
        uintptr_t limit = next < end ? next : end, b = a + h->page;
        while (b < limit && !pagemap_large_pages(pagemap_get(&h->pm, (void *)b))) b += h->page;
        stop = walk_emit(w, a, b - a, PINHEAP_EXTENT_HELD, 0, 0);
        a = b;
      }
    }
    if (stop) return stop;
  }
  return 0;
}

static int walk_range(uintptr_t addr, size_t size, bool free, void *arg) {
  walk_state *w = arg;
  if (free) return walk_emit(w, addr, size, PINHEAP_EXTENT_FREE, 0, 0);
  return walk_used(w, addr, addr + size);
}

static bool walk_refuse(const pinheap *h, const void *p, const char *what) {
  if (h && p) return false;
  error_set(EINVAL, "%s: a NULL argument", what);
  return true;
}

PH_EXPORT int pinheap_walk(pinheap *h, int (*visit)(const pinheap_extent *extent, void *arg), void *arg) {
  if (walk_refuse(h, (const void *)visit, "pinheap_walk")) return -1;
  walk_state w = {h, visit, arg, util_now_ns()};
  gate_enter(&h->gate);
  int r = em_walk(&h->em, walk_range, &w);
  gate_leave(&h->gate);
  return r;
}

/* pinheap_slices: the slices are closed in address order as the walk
 * passes them, so only the current one's bytes per kind are kept. */
typedef struct walk_slices {
  unsigned char *kinds;
  size_t n, capacity;
  size_t i;   /* the current slice */
  size_t pos; /* bytes of the regions before the next extent */
  size_t bytes[PINHEAP_EXTENT_KINDS];
} walk_slices;

static size_t walk_slice_end(const walk_slices *s, size_t i) {
  return (size_t)((unsigned __int128)s->capacity * (i + 1) / s->n);
}

static void walk_slice_close(walk_slices *s) {
  unsigned best = 0;
  for (unsigned k = 1; k < PINHEAP_EXTENT_KINDS; k++)
    if (s->bytes[k] > s->bytes[best]) best = k;
  s->kinds[s->i++] = (unsigned char)best;
  for (unsigned k = 0; k < PINHEAP_EXTENT_KINDS; k++) s->bytes[k] = 0;
}

static int walk_slice_visit(const pinheap_extent *e, void *arg) {
  walk_slices *s = arg;
  size_t at = s->pos, end = s->pos + e->size;
  s->pos = end;
  while (at < end && s->i < s->n) {
    size_t slice_end = walk_slice_end(s, s->i);
    size_t upto = end < slice_end ? end : slice_end;
    s->bytes[e->kind] += upto - at;
    at = upto;
    if (at == slice_end) walk_slice_close(s);
  }
  return s->i < s->n ? 0 : 1;
}

PH_EXPORT int pinheap_slices(pinheap *h, unsigned char *kinds, size_t n) {
  if (walk_refuse(h, kinds, "pinheap_slices")) return -1;
  if (n == 0) {
    error_set(EINVAL, "pinheap_slices: no slices asked");
    return -1;
  }
  em_stats st;
  em_get_stats(&h->em, &st);
  walk_slices s = {.kinds = kinds, .n = n, .capacity = st.capacity};
  if (pinheap_walk(h, walk_slice_visit, &s) < 0) return -1;
  /* Regions that shrank meanwhile (DYNAMIC): the rest counts as free. */
  while (s.i < s.n) walk_slice_close(&s);
  return 0;
}
