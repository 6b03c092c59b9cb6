#include "dynamic.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "ph_assert.h"
#include "util.h"

#define DYNAMIC_BLOCK(n) PH_CONTAINER_OF(n, dynamic_block, by_base)

static int dynamic_cmp(const tree_node *a, const tree_node *b) {
  uintptr_t x = (uintptr_t)DYNAMIC_BLOCK(a)->base, y = (uintptr_t)DYNAMIC_BLOCK(b)->base;
  return (x > y) - (x < y);
}

static bool dynamic_try_reserve(dynamic *d, size_t bytes) {
  size_t cur = atomic_load(&d->registered);
  do {
    if (d->cap && (bytes > d->cap || cur > d->cap - bytes)) return false;
  } while (!atomic_compare_exchange_weak(&d->registered, &cur, cur + bytes));
  return true;
}

/* Reserves bytes of the cap, emptying the quarantine when they do not fit
 * beside it; false when they would exceed it. */
static bool dynamic_reserve(dynamic *d, size_t bytes) {
  if (dynamic_try_reserve(d, bytes)) return true;
  if (!d->quarantine.leave) return false;
  dynamic_quarantine_drain(d);
  return dynamic_try_reserve(d, bytes);
}

static void dynamic_give_back(dynamic *d, const pinheap_region *r) {
  provider_release(d->prov, r);
  atomic_fetch_sub(&d->registered, r->size);
}

/* Obtains a chunk of size bytes and adds it to the space. The provider is
 * called under no lock of the heap's. */
static int dynamic_add_chunk(dynamic *d, size_t size) {
  if (!dynamic_reserve(d, size)) {
    error_set(ENOMEM, "the heap's cap of %zu registered bytes is reached", d->cap);
    return -1;
  }
  pinheap_region r;
  if (provider_obtain(d->prov, size, DYNAMIC_GRANULE, &r, "growing the heap") != 0) {
    atomic_fetch_sub(&d->registered, size);
    return -1;
  }
  pthread_mutex_lock(&d->grow_lock);
  int err = space_add(d->space, &r);
  pthread_mutex_unlock(&d->grow_lock);
  PH_ASSERT_EXPENSIVE(dynamic_check(d) == 0);
  if (err == 0) return 0;
  dynamic_give_back(d, &r);
  error_set(ENOMEM, "no memory for the metadata of a %zu-byte chunk", size);
  return -1;
}

/* Per thread, as the error text is: a heap grows inside jemalloc's calls
 * too, which can fail but not say why. */
static _Thread_local char dynamic_why[256];

const char *dynamic_refusal(void) { return dynamic_why; }

int dynamic_grow(void *ctx, size_t bytes) {
  dynamic *d = ctx;
  size_t need = util_align_up(bytes, DYNAMIC_GRANULE);
  int err = -1;
  if (!need) {
    error_set(ENOMEM, "a chunk for %zu bytes is beyond the address space", bytes);
  } else {
    size_t size = need < d->chunk_size ? d->chunk_size : need;
    if (d->cap) {
      /* Near the cap, a chunk only as big as what is left. */
      size_t left = (d->cap - atomic_load(&d->registered)) & ~(DYNAMIC_GRANULE - 1);
      if (size > left && left >= need) size = left;
    }
    err = dynamic_add_chunk(d, size);
  }
  snprintf(dynamic_why, sizeof dynamic_why, "%s", err ? pinheap_last_error() : "");
  return err;
}

int dynamic_open(dynamic *d, space *s, provider *p, size_t page, size_t chunk_size, size_t cap) {
  memset(d, 0, sizeof *d);
  d->space = s;
  d->prov = p;
  d->page = page;
  d->chunk_size = util_align_up(chunk_size, DYNAMIC_GRANULE);
  d->cap = cap;
  pthread_mutex_init(&d->grow_lock, NULL);
  pthread_mutex_init(&d->direct_lock, NULL);
  tree_init(&d->direct, dynamic_cmp, NULL);
  meta_init(&d->direct_pool, sizeof(dynamic_block));
  hooks_set_grow(&s->grants, dynamic_grow, d);
  return dynamic_grow(d, DYNAMIC_GRANULE);
}

static pinheap_region dynamic_region(const dynamic_block *b) {
  return (pinheap_region){.base = b->base, .size = b->size, .handle = b->handle};
}

static int dynamic_release_block(tree_node *n, void *arg) {
  pinheap_region r = dynamic_region(DYNAMIC_BLOCK(n));
  provider_release(arg, &r);
  return 0;
}

void dynamic_close(dynamic *d) {
  tree_walk(&d->direct, dynamic_release_block, d->prov);
  meta_fini(&d->direct_pool);
  pthread_mutex_destroy(&d->direct_lock);
  pthread_mutex_destroy(&d->grow_lock);
}

/* Raises the high-water mark of in_use to what is in use now. */
static void dynamic_note_peak(dynamic *d) {
  em_stats s;
  em_get_stats(&d->space->em, &s);
  util_raise_max(&d->peak, s.capacity - s.free_bytes + atomic_load(&d->direct_bytes));
}

/* The bytes to register for a direct block of bytes that replaces one of
 * grow_from registered bytes: when it grows, half as much again as the old
 * registration, within what the cap leaves beside everything registered
 * now (the old block included: it is given back only after the copy). */
static size_t dynamic_room(dynamic *d, size_t bytes, size_t grow_from) {
  if (bytes <= grow_from) return bytes;
  size_t room = util_align_up(grow_from + grow_from / 2, d->page);
  if (d->cap) {
    size_t registered = atomic_load(&d->registered);
    size_t left = registered < d->cap ? util_align_down(d->cap - registered, d->page) : 0;
    if (room > left) room = left;
  }
  return room > bytes ? room : bytes;
}

/* Registers room bytes for a block: 0 with *r filled, or -1: with
 * *cap_reached set when they do not fit under the cap (no error set), else
 * with the provider's error set. */
static int dynamic_register(dynamic *d, size_t room, size_t align, pinheap_region *r, bool *cap_reached,
                            const char *what) {
  *cap_reached = !dynamic_reserve(d, room);
  if (*cap_reached) return -1;
  if (provider_obtain(d->prov, room, align, r, what) == 0) return 0;
  atomic_fetch_sub(&d->registered, room);
  return -1;
}

void *dynamic_direct_alloc(dynamic *d, size_t size, size_t align, bool zero, size_t grow_from, const char *what) {
  size_t bytes = util_align_up(size, d->page);
  if (align < d->page) align = d->page;
  size_t room = bytes ? dynamic_room(d, bytes, grow_from) : 0;
  pinheap_region r;
  bool cap_reached = true;
  /* The room first, then no more than the block when that cannot be had. */
  int err = room ? dynamic_register(d, room, align, &r, &cap_reached, what) : -1;
  if (err && room > bytes) err = dynamic_register(d, room = bytes, align, &r, &cap_reached, what);
  if (err) {
    if (cap_reached)
      error_set(ENOMEM, "%s(%zu): out of memory: the heap's cap of %zu registered bytes is reached", what, size,
                d->cap);
    return NULL;
  }
  pthread_mutex_lock(&d->direct_lock);
  dynamic_block *b = meta_alloc(&d->direct_pool);
  if (b) {
    *b = (dynamic_block){.base = r.base, .size = room, .used = bytes, .handle = r.handle};
    tree_insert(&d->direct, &b->by_base);
    atomic_fetch_add(&d->direct_bytes, room);
    atomic_fetch_add(&d->direct_used, bytes);
  }
  pthread_mutex_unlock(&d->direct_lock);
  if (!b) {
    dynamic_give_back(d, &r);
    error_set(ENOMEM, "%s(%zu): out of memory: no memory for its record", what, size);
    return NULL;
  }
  if (zero && !provider_zeroed(d->prov)) memset(r.base, 0, bytes);
  dynamic_note_peak(d);
  PH_ASSERT_EXPENSIVE(dynamic_check(d) == 0);
  return r.base;
}

/* The live direct block holding p (exact: starting at p); direct_lock held. */
static dynamic_block *dynamic_lookup(dynamic *d, const void *p, bool exact) {
  dynamic_block key = {.base = (void *)p};
  tree_node *n = tree_floor(&d->direct, &key.by_base);
  dynamic_block *b = n ? DYNAMIC_BLOCK(n) : NULL;
  if (!b || b->quarantined || (exact ? b->base != p : (uintptr_t)p - (uintptr_t)b->base >= b->size)) return NULL;
  return b;
}

size_t dynamic_direct_find(dynamic *d, const void *p, bool exact, pinheap_region *out) {
  pthread_mutex_lock(&d->direct_lock);
  dynamic_block *b = dynamic_lookup(d, p, exact);
  if (b && out) *out = dynamic_region(b);
  size_t used = b ? b->used : 0;
  pthread_mutex_unlock(&d->direct_lock);
  return used;
}

bool dynamic_direct_resize(dynamic *d, void *p, size_t bytes, pinheap_region *out) {
  PH_ASSERT(bytes % d->page == 0);
  pthread_mutex_lock(&d->direct_lock);
  dynamic_block *b = dynamic_lookup(d, p, true);
  bool fits = b && bytes <= b->size && bytes > b->size / 2;
  if (fits) {
    atomic_fetch_add(&d->direct_used, bytes);
    atomic_fetch_sub(&d->direct_used, b->used);
    b->used = bytes;
  }
  if (out) *out = b ? dynamic_region(b) : (pinheap_region){0};
  pthread_mutex_unlock(&d->direct_lock);
  return fits;
}

/* Takes b out of the tree and forgets it; direct_lock held. Returns its
 * registration, to be given back once the lock is released. */
static pinheap_region dynamic_forget(dynamic *d, dynamic_block *b) {
  pinheap_region r = dynamic_region(b);
  tree_remove(&d->direct, &b->by_base);
  meta_free(&d->direct_pool, b);
  atomic_fetch_sub(&d->direct_bytes, r.size);
  return r;
}

bool dynamic_direct_free(dynamic *d, void *p) {
  pthread_mutex_lock(&d->direct_lock);
  dynamic_block *b = dynamic_lookup(d, p, true);
  if (!b) {
    pthread_mutex_unlock(&d->direct_lock);
    return false;
  }
  atomic_fetch_sub(&d->direct_used, b->used);
  pinheap_region r = dynamic_forget(d, b);
  pthread_mutex_unlock(&d->direct_lock);
  dynamic_give_back(d, &r);
  PH_ASSERT_EXPENSIVE(dynamic_check(d) == 0);
  return true;
}

/* Lets the oldest quarantined blocks leave while they hold more than keep
 * bytes, one at a time: each is checked and given back outside the lock. */
static void dynamic_quarantine_trim(dynamic *d, size_t keep) {
  dynamic_quarantine *q = &d->quarantine;
  for (;;) {
    pthread_mutex_lock(&d->direct_lock);
    dynamic_block *b = q->oldest;
    if (!b || q->bytes <= keep) {
      pthread_mutex_unlock(&d->direct_lock);
      return;
    }
    q->oldest = b->newer;
    if (!q->oldest) q->newest = NULL;
    q->bytes -= b->size;
    q->count--;
    size_t used = b->used;
    pinheap_region r = dynamic_forget(d, b);
    pthread_mutex_unlock(&d->direct_lock);
    q->leave(q->ctx, r.base, used);
    dynamic_give_back(d, &r);
  }
}

bool dynamic_direct_quarantine(dynamic *d, void *p) {
  dynamic_quarantine *q = &d->quarantine;
  if (!q->leave) return false;
  pthread_mutex_lock(&d->direct_lock);
  dynamic_block *b = dynamic_lookup(d, p, true);
  bool enters = b && b->size <= q->cap;
  if (enters) {
    atomic_fetch_sub(&d->direct_used, b->used);
    b->quarantined = true;
    b->newer = NULL;
    if (q->newest)
      q->newest->newer = b;
    else
      q->oldest = b;
    q->newest = b;
    q->bytes += b->size;
    q->count++;
  }
  pthread_mutex_unlock(&d->direct_lock);
  if (enters) dynamic_quarantine_trim(d, q->cap);
  PH_ASSERT_EXPENSIVE(dynamic_check(d) == 0);
  return enters;
}

void dynamic_quarantine_drain(dynamic *d) {
  if (d->quarantine.leave) dynamic_quarantine_trim(d, 0);
}

void dynamic_quarantine_open(dynamic *d, size_t cap, void (*leave)(void *ctx, void *base, size_t size), void *ctx) {
  d->quarantine.cap = cap;
  d->quarantine.ctx = ctx;
  d->quarantine.leave = leave;
}

struct dynamic_walk {
  void (*visit)(void *base, size_t size, void *arg);
  void *arg;
};

static int dynamic_walk_block(tree_node *n, void *arg) {
  struct dynamic_walk *w = arg;
  dynamic_block *b = DYNAMIC_BLOCK(n);
  if (!b->quarantined) w->visit(b->base, b->used, w->arg);
  return 0;
}

void dynamic_walk_direct(dynamic *d, void (*visit)(void *base, size_t size, void *arg), void *arg) {
  struct dynamic_walk w = {visit, arg};
  pthread_mutex_lock(&d->direct_lock);
  tree_walk(&d->direct, dynamic_walk_block, &w);
  pthread_mutex_unlock(&d->direct_lock);
}

void dynamic_walk_quarantine(dynamic *d, void (*visit)(void *base, size_t size, void *arg), void *arg) {
  pthread_mutex_lock(&d->direct_lock);
  for (dynamic_block *b = d->quarantine.oldest; b; b = b->newer) visit(b->base, b->used, arg);
  pthread_mutex_unlock(&d->direct_lock);
}

void dynamic_release_free_chunks(dynamic *d) {
  /* Taken out under the lock, given back after it, a batch at a time. */
  enum { BATCH = 32 };
  pinheap_region out[BATCH];
  for (;;) {
    pthread_mutex_lock(&d->grow_lock);
    size_t n = space_take_free(d->space, out, BATCH);
    pthread_mutex_unlock(&d->grow_lock);
    for (size_t i = 0; i < n; i++) dynamic_give_back(d, &out[i]);
    if (n < BATCH) return;
  }
}

void dynamic_direct_stats(dynamic *d, size_t *registered, size_t *used, size_t *blocks) {
  pthread_mutex_lock(&d->direct_lock);
  *registered = atomic_load(&d->direct_bytes);
  *used = atomic_load(&d->direct_used);
  *blocks = d->direct.count - d->quarantine.count;
  pthread_mutex_unlock(&d->direct_lock);
}

size_t dynamic_direct_bytes(dynamic *d) { return atomic_load(&d->direct_bytes); }

size_t dynamic_peak(dynamic *d) { return atomic_load(&d->peak); }

typedef struct dynamic_check_state {
  dynamic *d;
  size_t bytes, used, quarantined;
  uintptr_t prev_end;
  int broken;
} dynamic_check_state;

static int dynamic_check_block(tree_node *n, void *arg) {
  dynamic_check_state *st = arg;
  dynamic_block *b = DYNAMIC_BLOCK(n);
  const pagemap *pm = &st->d->space->pm;
  bool in_chunk = false;
  for (uintptr_t a = (uintptr_t)b->base; a < (uintptr_t)b->base + b->size && !in_chunk; a += DYNAMIC_GRANULE)
    in_chunk = pagemap_covers(pm, (void *)a);
  in_chunk = in_chunk || pagemap_covers(pm, (char *)b->base + b->size - 1);
  if ((uintptr_t)b->base < st->prev_end || in_chunk) {
    fprintf(stderr, "dynamic: direct block %p+%zu should overlap no other block and no chunk\n", b->base, b->size);
    st->broken++;
  }
  if (b->used > b->size || b->used <= b->size / 2 || b->used % st->d->page) {
    fprintf(stderr, "dynamic: direct block %p uses %zu bytes of its %zu: should be a page multiple above half\n",
            b->base, b->used, b->size);
    st->broken++;
  }
  st->prev_end = (uintptr_t)b->base + b->size;
  st->bytes += b->size;
  if (b->quarantined)
    st->quarantined++;
  else
    st->used += b->used;
  return 0;
}

/* The quarantine's list against its counts and the tree's flags. */
static int dynamic_check_quarantine(dynamic *d, size_t flagged) {
  const dynamic_quarantine *q = &d->quarantine;
  size_t count = 0, bytes = 0;
  const dynamic_block *last = NULL;
  for (const dynamic_block *b = q->oldest; b && count <= flagged; b = b->newer, count++) {
    bytes += b->size;
    last = b;
    if (!b->quarantined) break;
  }
  if (count != flagged || count != q->count || bytes != q->bytes || last != q->newest) {
    fprintf(stderr, "dynamic: the quarantine lists %zu blocks of %zu bytes (counted %zu of %zu), %zu are flagged\n",
            count, bytes, q->count, q->bytes, flagged);
    return 1;
  }
  return 0;
}

int dynamic_check(dynamic *d) {
  dynamic_check_state st = {.d = d};
  pthread_mutex_lock(&d->grow_lock);
  pthread_mutex_lock(&d->direct_lock);
  st.broken += tree_check(&d->direct, "dynamic.direct") + meta_check(&d->direct_pool);
  tree_walk(&d->direct, dynamic_check_block, &st);
  st.broken += dynamic_check_quarantine(d, st.quarantined);
  size_t chunks = space_bytes(d->space);
  em_stats es;
  em_get_stats(&d->space->em, &es);
  size_t registered = atomic_load(&d->registered), direct = atomic_load(&d->direct_bytes);
  size_t used = atomic_load(&d->direct_used);
  if (st.bytes != direct || st.used != used || es.capacity != chunks) {
    fprintf(stderr,
            "dynamic: direct blocks hold %zu bytes (counted %zu) and use %zu (counted %zu), chunks %zu (the manager "
            "has %zu)\n",
            st.bytes, direct, st.used, used, chunks, es.capacity);
    st.broken++;
  }
  /* registered also counts obtains in flight: equal only when none is. */
  if (chunks + st.bytes > registered) {
    fprintf(stderr, "dynamic: chunks %zu + direct blocks %zu bytes should not exceed registered %zu\n", chunks,
            st.bytes, registered);
    st.broken++;
  }
  if (d->cap && registered > d->cap) {
    fprintf(stderr, "dynamic: %zu bytes registered, over the cap %zu\n", registered, d->cap);
    st.broken++;
  }
  pthread_mutex_unlock(&d->direct_lock);
  pthread_mutex_unlock(&d->grow_lock);
  return st.broken;
}
