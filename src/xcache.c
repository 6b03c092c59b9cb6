#include "xcache.h"

#include <stdio.h>
#include <string.h>

#include "ph_assert.h"
#include "util.h"

#define XCACHE_WORDS (XCACHE_LENGTHS / 64)
_Static_assert(XCACHE_BLOCK_MAX <= XCACHE_CONTENDED_MAX && XCACHE_CONTENDED_MAX / 4096 <= XCACHE_LENGTHS && XCACHE_LENGTHS % 64 == 0, "a stack per length");
_Static_assert(XCACHE_SLOTS <= 64, "one bit of used per entry");

void xcache_init(xcache *x, size_t page) {
  PH_ASSERT(page >= 4096 && (page & (page - 1)) == 0);
  memset(x, 0, sizeof *x);
  x->page = page;
  x->page_shift = (unsigned)__builtin_ctzll(page);
  memset(x->top, XCACHE_NONE, sizeof x->top);
  for (unsigned e = 0; e < XCACHE_SLOTS; e++) x->next[e] = e + 1 < XCACHE_SLOTS ? (uint8_t)(e + 1) : XCACHE_NONE;
  x->unused = 0;
}

/* The lowest stack at or above s that holds an entry, or -1. */
static int xcache_first_from(const xcache *x, unsigned s) {
  size_t i = util_bit_next(x->nonempty, XCACHE_WORDS, s);
  return i < XCACHE_LENGTHS ? (int)i : -1;
}

bool xcache_holds_above(const xcache *x, size_t bytes) {
  return xcache_first_from(x, (unsigned)(bytes >> x->page_shift)) >= 0;
}

/* Entry e, its address set, onto the stack of pages pages. */
static void xcache_push(xcache *x, uint8_t e, size_t pages) {
  size_t s = pages - 1;
  x->length[e] = (uint16_t)pages;
  x->next[e] = x->top[s];
  x->top[s] = e;
  util_bit_set(x->nonempty, s);
  x->count++;
  x->bytes += pages << x->page_shift;
}

/* Unlinks entry e of stack s, below prev (XCACHE_NONE: e is the top). */
static void xcache_unlink(xcache *x, size_t s, uint8_t prev, uint8_t e) {
  if (prev == XCACHE_NONE)
    x->top[s] = x->next[e];
  else
    x->next[prev] = x->next[e];
  if (x->top[s] == XCACHE_NONE) util_bit_clear(x->nonempty, s);
  x->count--;
  x->bytes -= (size_t)x->length[e] << x->page_shift;
}

/* Entry e back on the free list. */
static void xcache_unuse(xcache *x, uint8_t e) {
  x->used &= ~((uint64_t)1 << e);
  x->next[e] = x->unused;
  x->unused = e;
}

/* Takes entry e of stack s (below prev) out and hands its extent to
 * release. */
static void xcache_evict(xcache *x, size_t s, uint8_t prev, uint8_t e, xcache_release *release, void *ctx) {
  xcache_unlink(x, s, prev, e);
  void *addr = (void *)x->addr[e];
  size_t bytes = (size_t)x->length[e] << x->page_shift;
  xcache_unuse(x, e);
  release(ctx, addr, bytes);
}

/* The smallest entry, the newest of its length, goes back; count > 0. */
static void xcache_evict_smallest(xcache *x, xcache_release *release, void *ctx) {
  int s = xcache_first_from(x, 0);
  PH_ASSERT(s >= 0);
  xcache_evict(x, (size_t)s, XCACHE_NONE, x->top[s], release, ctx);
}

void *xcache_take(xcache *x, size_t *len, size_t slack, bool split) {
  size_t bytes = *len, pages = bytes >> x->page_shift;
  PH_ASSERT(pages > 0 && (pages << x->page_shift) == bytes);
  if (pages == 0 || pages > XCACHE_LENGTHS) return NULL;
  int s = split ? xcache_first_from(x, (unsigned)pages - 1) : (x->top[pages - 1] != XCACHE_NONE ? (int)pages - 1 : -1);
  if (s < 0) return NULL;
  uint8_t e = x->top[s];
  xcache_unlink(x, (size_t)s, XCACHE_NONE, e);
  uintptr_t addr = x->addr[e];
  size_t rest = (size_t)s + 1 - pages;
  if ((rest << x->page_shift) <= slack) {
    *len = (size_t)(s + 1) << x->page_shift;
    xcache_unuse(x, e);
    return (void *)addr;
  }
  /* Carved from the top: the rest keeps the address, on the stack of its
   * new length. */
  xcache_push(x, e, rest);
  return (void *)(addr + (rest << x->page_shift));
}

void xcache_put(xcache *x, void *addr, size_t bytes, xcache_release *release, void *ctx) {
  size_t pages = bytes >> x->page_shift;
  PH_ASSERT(pages > 0 && (pages << x->page_shift) == bytes && bytes <= XCACHE_CONTENDED_MAX);
  if (x->count == XCACHE_SLOTS) {
    /* Room for the new entry first: it may be the one that goes. */
    if ((size_t)xcache_first_from(x, 0) + 1 > pages) {
      release(ctx, addr, bytes);
      return;
    }
    xcache_evict_smallest(x, release, ctx);
  }
  uint8_t e = x->unused;
  x->unused = x->next[e];
  x->used |= (uint64_t)1 << e;
  x->addr[e] = (uintptr_t)addr;
  xcache_push(x, e, pages);
  while (x->bytes > XCACHE_BYTES) xcache_evict_smallest(x, release, ctx);
}

/* Takes out the entries that end at *addr or start at *addr + bytes, while
 * the joined extent stays within XCACHE_CONTENDED_MAX bytes, and widens
 * [*addr, *addr + bytes) over them: the joined length. A pass that widened
 * is followed by another, for an entry it passed may touch the new ends
 * (entries put without joining lie side by side). */
static size_t xcache_absorb(xcache *x, uintptr_t *addr, size_t bytes) {
  for (bool widened = true; widened;) {
    widened = false;
    for (uint64_t left = x->used; left && bytes < XCACHE_CONTENDED_MAX; left &= left - 1) {
      uint8_t e = (uint8_t)__builtin_ctzll(left);
      uintptr_t a = x->addr[e];
      size_t len = (size_t)x->length[e] << x->page_shift;
      if ((a + len != *addr && a != *addr + bytes) || bytes + len > XCACHE_CONTENDED_MAX) continue;
      size_t s = x->length[e] - 1u;
      uint8_t prev = XCACHE_NONE;
      for (uint8_t f = x->top[s]; f != e; f = x->next[f]) prev = f;
      xcache_unlink(x, s, prev, e);
      xcache_unuse(x, e);
      if (a < *addr) *addr = a;
      bytes += len;
      widened = true;
    }
  }
  return bytes;
}

void xcache_put_joined(xcache *x, void *addr, size_t bytes, xcache_release *release, void *ctx) {
  uintptr_t a = (uintptr_t)addr;
  bytes = xcache_absorb(x, &a, bytes);
  xcache_put(x, (void *)a, bytes, release, ctx);
}

bool xcache_evict_range(xcache *x, const void *addr, size_t bytes, xcache_release *release, void *ctx) {
  uintptr_t lo = (uintptr_t)addr, hi = lo + bytes;
  bool any = false;
  for (size_t s = 0; s < XCACHE_LENGTHS; s++) {
    size_t len = (s + 1) << x->page_shift;
    for (uint8_t prev = XCACHE_NONE, e = x->top[s]; e != XCACHE_NONE;) {
      uint8_t below = x->next[e];
      if (x->addr[e] < hi && lo < x->addr[e] + len) {
        xcache_evict(x, s, prev, e, release, ctx);
        any = true;
      } else {
        prev = e;
      }
      e = below;
    }
  }
  return any;
}

unsigned xcache_shed(xcache *x, void **addrs, size_t *lens) {
  unsigned n = 0;
  while (x->count > XCACHE_SLOTS / 2 || x->bytes > XCACHE_BYTES / 2) {
    size_t s = (size_t)xcache_first_from(x, 0);
    uint8_t e = x->top[s];
    xcache_unlink(x, s, XCACHE_NONE, e);
    addrs[n] = (void *)x->addr[e];
    lens[n++] = (s + 1) << x->page_shift;
    xcache_unuse(x, e);
  }
  return n;
}

void xcache_drain(xcache *x, xcache_release *release, void *ctx) {
  while (x->count) xcache_evict_smallest(x, release, ctx);
}

void xcache_walk(const xcache *x, void (*visit)(void *addr, size_t bytes, void *arg), void *arg) {
  for (size_t s = 0; s < XCACHE_LENGTHS; s++)
    for (uint8_t e = x->top[s]; e != XCACHE_NONE; e = x->next[e])
      visit((void *)x->addr[e], (s + 1) << x->page_shift, arg);
}

int xcache_check(const xcache *x) {
  int broken = 0;
  uint8_t seen[XCACHE_SLOTS] = {0};
  size_t count = 0, sum = 0;
  for (size_t s = 0; s < XCACHE_LENGTHS; s++) {
    bool bit = util_bit_test(x->nonempty, s);
    if (bit != (x->top[s] != XCACHE_NONE)) {
      fprintf(stderr, "xcache: the bitmap should say whether the stack of %zu pages holds any entry\n", s + 1);
      broken++;
    }
    for (uint8_t e = x->top[s]; e != XCACHE_NONE; e = x->next[e]) {
      if (e >= XCACHE_SLOTS || seen[e] || count++ >= XCACHE_SLOTS) {
        fprintf(stderr, "xcache: the stack of %zu pages should list distinct entries\n", s + 1);
        return broken + 1;
      }
      seen[e] = 1;
      if (x->length[e] != s + 1 || x->addr[e] % x->page) {
        fprintf(stderr, "xcache: entry %#lx of %u pages should be page-aligned, on the stack of its length (%zu)\n",
                (unsigned long)x->addr[e], x->length[e], s + 1);
        broken++;
      }
      sum += (s + 1) << x->page_shift;
    }
  }
  size_t unused = 0;
  for (uint8_t e = x->unused; e != XCACHE_NONE; e = x->next[e]) {
    if (e >= XCACHE_SLOTS || seen[e]) {
      fprintf(stderr, "xcache: the free list should hold distinct entries on no stack\n");
      return broken + 1;
    }
    seen[e] = 2;
    unused++;
  }
  if (count != x->count || count + unused != XCACHE_SLOTS) {
    fprintf(stderr, "xcache: %zu entries on the stacks and %zu unused, the cache says %u of %u\n", count, unused,
            x->count, XCACHE_SLOTS);
    broken++;
  }
  if (sum != x->bytes || sum > XCACHE_BYTES) {
    fprintf(stderr, "xcache: entries sum to %zu bytes, the cache says %zu, the bound is %zu\n", sum, x->bytes,
            XCACHE_BYTES);
    broken++;
  }
  for (unsigned e = 0; e < XCACHE_SLOTS; e++) {
    if (((x->used >> e) & 1) != (seen[e] == 1)) {
      fprintf(stderr, "xcache: bit %u of the used mask should say whether entry %u is on a stack\n", e, e);
      broken++;
    }
  }
  /* seen: 1 for the entries on a stack. */
  for (unsigned e = 0; e < XCACHE_SLOTS; e++) {
    if (seen[e] != 1) continue;
    for (unsigned f = 0; f < e; f++) {
      if (seen[f] != 1) continue;
      uintptr_t a = x->addr[e], b = x->addr[f];
      if (a < b + ((size_t)x->length[f] << x->page_shift) && b < a + ((size_t)x->length[e] << x->page_shift)) {
        fprintf(stderr, "xcache: entries %#lx and %#lx should not overlap\n", (unsigned long)a, (unsigned long)b);
        broken++;
      }
    }
  }
  return broken;
}
