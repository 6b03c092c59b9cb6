#include "walk.h"

#include "util.h"

typedef struct walk_state {
  heap *heap;
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
 * of the others (slabs; jemalloc's metadata lies outside the region). A
 * run of slabs is named by the first bin a page of it names, and ends
 * where a page names another (an arena keeps emptied slabs beside those in
 * use). */
static int walk_grant(walk_state *w, const hooks_grant *g, uintptr_t a, uintptr_t end) {
  heap *h = w->heap;
  const pagemap *pm = &h->space.pm;
  while (a < end) {
    uint32_t tag = pagemap_get(pm, (void *)a);
    bool returned = tag == PAGEMAP_RETURNED;
    int bin = PAGEMAP_BIN_OF(tag);
    uintptr_t b = a + h->page;
    for (; b < end; b += h->page) {
      uint32_t next = pagemap_get(pm, (void *)b);
      if ((next == PAGEMAP_RETURNED) != returned) break;
      int nb = PAGEMAP_BIN_OF(next);
      if (nb >= 0 && bin >= 0 && nb != bin) break;
      if (nb >= 0) bin = nb;
    }
    int stop = returned ? walk_emit(w, a, b - a, PINHEAP_EXTENT_HELD, 0, 0)
                        : walk_emit(w, a, b - a, PINHEAP_EXTENT_SLAB, g->birth, bin >= 0 ? h->classes.size[bin] : 0);
    if (stop) return stop;
    a = b;
  }
  return 0;
}

/* Whether a page whose tag is tag starts a large block or a fine slab. */
static bool walk_starts_block(uint32_t tag) {
  return pagemap_large_pages(tag) || (PAGEMAP_IS_FINE(tag) && PAGEMAP_FINE_PAGE(tag) == 0);
}

/* A range [a, end) in use: large blocks, grants, and held runs between. */
static int walk_used(walk_state *w, uintptr_t a, uintptr_t end) {
  heap *h = w->heap;
  const pagemap *pm = &h->space.pm;
  while (a < end) {
    uint32_t tag = pagemap_get(pm, (void *)a);
    size_t bytes = pagemap_large_pages(tag) * h->page;
    int stop;
    if (bytes && bytes <= end - a) {
      stop = walk_emit(w, a, bytes, PINHEAP_EXTENT_LARGE, pagemap_birth(pm, (void *)a), 0);
      a += bytes;
    } else if (PAGEMAP_IS_FINE(tag) && PAGEMAP_FINE_PAGE(tag) == 0) {
      /* A fine slab (fine.h): no birth kept. */
      const fine_class *k = &h->fine.classes[PAGEMAP_FINE_CLASS(tag)];
      uintptr_t stop_at = a + ((uintptr_t)k->pages << h->fine.page_shift);
      if (stop_at > end) stop_at = end;
      stop = walk_emit(w, a, stop_at - a, PINHEAP_EXTENT_SLAB, 0, k->size);
      a = stop_at;
    } else {
      hooks_grant g;
      uintptr_t next;
      if (hooks_grant_at(&h->space.grants, a, &g, &next)) {
        uintptr_t stop_at = g.addr + g.size < end ? g.addr + g.size : end;
        stop = walk_grant(w, &g, a, stop_at);
        a = stop_at;
      } else {
        uintptr_t limit = next < end ? next : end, b = a + h->page;
        while (b < limit && !walk_starts_block(pagemap_get(pm, (void *)b))) b += h->page;
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

int walk_extents(heap *h, int (*visit)(const pinheap_extent *extent, void *arg), void *arg) {
  walk_state w = {h, visit, arg, util_now_ns()};
  gate_enter(&h->gate);
  int r = em_walk(&h->space.em, walk_range, &w);
  gate_leave(&h->gate);
  return r;
}

/* pinheap_slices: the slices are closed in address order as the walk
 * passes them, so only the current one's bytes per kind are kept. */
typedef struct walk_slicer {
  unsigned char *kinds;
  size_t n, capacity;
  size_t i;   /* the current slice */
  size_t pos; /* bytes of the regions before the next extent */
  size_t bytes[PINHEAP_EXTENT_KINDS];
} walk_slicer;

static size_t walk_slice_end(const walk_slicer *s, size_t i) {
  return (size_t)((unsigned __int128)s->capacity * (i + 1) / s->n);
}

static void walk_slice_close(walk_slicer *s) {
  unsigned best = 0;
  for (unsigned k = 1; k < PINHEAP_EXTENT_KINDS; k++)
    if (s->bytes[k] > s->bytes[best]) best = k;
  s->kinds[s->i++] = (unsigned char)best;
  for (unsigned k = 0; k < PINHEAP_EXTENT_KINDS; k++) s->bytes[k] = 0;
}

static int walk_slice_visit(const pinheap_extent *e, void *arg) {
  walk_slicer *s = arg;
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

void walk_slices(heap *h, unsigned char *kinds, size_t n) {
  em_stats st;
  em_get_stats(&h->space.em, &st);
  walk_slicer s = {.kinds = kinds, .n = n, .capacity = st.capacity};
  walk_extents(h, walk_slice_visit, &s);
  /* Regions that shrank meanwhile (DYNAMIC): the rest counts as free. */
  while (s.i < s.n) walk_slice_close(&s);
}
