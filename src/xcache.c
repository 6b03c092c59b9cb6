#include "xcache.h"

#include <stdio.h>
#include <string.h>

#include "ph_assert.h"

void xcache_init(xcache *x) { memset(x, 0, sizeof *x); }

/* Removes entry i, keeping the others in order. */
static void xcache_remove(xcache *x, uint32_t i) {
  x->bytes -= x->entry[i].bytes;
  memmove(&x->entry[i], &x->entry[i + 1], (x->count - i - 1) * sizeof x->entry[0]);
  x->count--;
}

/* Hands entry i to release. */
static void xcache_evict(xcache *x, uint32_t i, xcache_release *release, void *ctx) {
  xcache_entry e = x->entry[i];
  xcache_remove(x, i);
  release(ctx, (void *)e.addr, e.bytes);
}

/* The number of entries of at least bytes: they come first. */
static uint32_t xcache_at_least(const xcache *x, size_t bytes) {
  uint32_t lo = 0, hi = x->count;
  while (lo < hi) {
    uint32_t mid = (lo + hi) / 2;
    if (x->entry[mid].bytes >= bytes)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

void *xcache_take(xcache *x, size_t bytes, bool split) {
  PH_ASSERT(bytes > 0);
  uint32_t n = xcache_at_least(x, bytes);
  if (n == 0) return NULL;
  uint32_t i = n - 1; /* the smallest that holds it */
  xcache_entry e = x->entry[i];
  if (e.bytes == bytes) {
    xcache_remove(x, i);
    return (void *)e.addr;
  }
  if (!split) return NULL;
  /* Carved from the top: the rest keeps its address and moves down the
   * order to its new size. */
  e.bytes -= bytes;
  x->bytes -= bytes;
  while (i + 1 < x->count && x->entry[i + 1].bytes > e.bytes) {
    x->entry[i] = x->entry[i + 1];
    i++;
  }
  x->entry[i] = e;
  return (void *)(e.addr + e.bytes);
}

void xcache_put(xcache *x, void *addr, size_t bytes, xcache_release *release, void *ctx) {
  PH_ASSERT(bytes > 0 && bytes <= XCACHE_BLOCK_MAX);
  if (x->count == XCACHE_SLOTS) {
    /* Room for the new entry first: it may be the one that goes. */
    if (x->entry[x->count - 1].bytes > bytes) {
      release(ctx, addr, bytes);
      return;
    }
    xcache_evict(x, x->count - 1, release, ctx);
  }
  uint32_t at = xcache_at_least(x, bytes + 1); /* before the entries of its size: they are older */
  memmove(&x->entry[at + 1], &x->entry[at], (x->count - at) * sizeof x->entry[0]);
  x->entry[at] = (xcache_entry){(uintptr_t)addr, bytes};
  x->count++;
  x->bytes += bytes;
  while (x->bytes > XCACHE_BYTES) xcache_evict(x, x->count - 1, release, ctx);
}

bool xcache_evict_range(xcache *x, const void *addr, size_t bytes, xcache_release *release, void *ctx) {
  uintptr_t lo = (uintptr_t)addr, hi = lo + bytes;
  bool any = false;
  for (uint32_t i = x->count; i-- > 0;) {
    if (x->entry[i].addr < hi && lo < x->entry[i].addr + x->entry[i].bytes) {
      xcache_evict(x, i, release, ctx);
      any = true;
    }
  }
  return any;
}

void xcache_drain(xcache *x, xcache_release *release, void *ctx) {
  while (x->count) xcache_evict(x, x->count - 1, release, ctx);
}

void xcache_walk(const xcache *x, void (*visit)(void *addr, size_t bytes, void *arg), void *arg) {
  for (uint32_t i = 0; i < x->count; i++) visit((void *)x->entry[i].addr, x->entry[i].bytes, arg);
}

int xcache_check(const xcache *x, size_t page) {
  int broken = 0;
  if (x->count > XCACHE_SLOTS) {
    fprintf(stderr, "xcache: %u entries, over the bound %u\n", x->count, XCACHE_SLOTS);
    return 1;
  }
  size_t sum = 0;
  for (uint32_t i = 0; i < x->count; i++) {
    const xcache_entry *e = &x->entry[i];
    sum += e->bytes;
    if (e->bytes == 0 || e->bytes % page || e->addr % page || e->bytes > XCACHE_BLOCK_MAX) {
      fprintf(stderr, "xcache: entry %#lx+%zu should be a page-aligned extent of 1 page to %zu bytes\n",
              (unsigned long)e->addr, e->bytes, XCACHE_BLOCK_MAX);
      broken++;
    }
    if (i > 0 && x->entry[i - 1].bytes < e->bytes) {
      fprintf(stderr, "xcache: entry %u (%zu bytes) should not be larger than the one before (%zu)\n", i, e->bytes,
              x->entry[i - 1].bytes);
      broken++;
    }
    for (uint32_t j = 0; j < i; j++) {
      const xcache_entry *o = &x->entry[j];
      if (e->addr < o->addr + o->bytes && o->addr < e->addr + e->bytes) {
        fprintf(stderr, "xcache: entries %#lx+%zu and %#lx+%zu should not overlap\n", (unsigned long)o->addr,
                o->bytes, (unsigned long)e->addr, e->bytes);
        broken++;
      }
    }
  }
  if (sum != x->bytes || sum > XCACHE_BYTES) {
    fprintf(stderr, "xcache: entries sum to %zu, the cache says %zu, the bound is %zu\n", sum, x->bytes,
            XCACHE_BYTES);
    broken++;
  }
  return broken;
}
