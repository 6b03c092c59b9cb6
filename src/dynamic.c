#include "dynamic.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "ph_assert.h"
#include "util.h"

#define DYNAMIC_BLOCK(n) PH_CONTAINER_OF(n, dynamic_block, by_base)
#define DYNAMIC_BY_SIZE(n) PH_CONTAINER_OF(n, dynamic_block, by_size)

static int dynamic_cmp(const tree_node *a, const tree_node *b) {
  uintptr_t x = (uintptr_t)DYNAMIC_BLOCK(a)->base, y = (uintptr_t)DYNAMIC_BLOCK(b)->base;
  return (x > y) - (x < y);
}

/* The cache's order: by size, then by base. */
static int dynamic_size_cmp(const tree_node *a, const tree_node *b) {
  const dynamic_block *x = DYNAMIC_BY_SIZE(a), *y = DYNAMIC_BY_SIZE(b);
  if (x->size != y->size) return (x->size > y->size) - (x->size < y->size);
  return ((uintptr_t)x->base > (uintptr_t)y->base) - ((uintptr_t)x->base < (uintptr_t)y->base);
}

static void dynamic_list_push(dynamic_list *l, dynamic_block *b) {
  b->newer = NULL;
  b->older = l->newest;
  if (l->newest)
    l->newest->newer = b;
  else
    l->oldest = b;
  l->newest = b;
  l->bytes += b->size;
  l->count++;
}

static void dynamic_list_remove(dynamic_list *l, dynamic_block *b) {
  if (b->older)
    b->older->newer = b->newer;
  else
    l->oldest = b->newer;
  if (b->newer)
    b->newer->older = b->older;
  else
    l->newest = b->older;
  l->bytes -= b->size;
  l->count--;
}

static bool dynamic_try_reserve(dynamic *d, size_t bytes) {
  size_t cur = atomic_load(&d->registered);
  do {
    if (d->cap && (bytes > d->cap || cur > d->cap - bytes)) return false;
  } while (!atomic_compare_exchange_weak(&d->registered, &cur, cur + bytes));
  return true;
}

/* Reserves bytes of the cap, emptying the quarantine and the cache when
 * they do not fit beside them; false when they would exceed it. */
static bool dynamic_reserve(dynamic *d, size_t bytes) {
  if (dynamic_try_reserve(d, bytes)) return true;
  dynamic_quarantine_drain(d);
  dynamic_cache_drain(d);
  return dynamic_try_reserve(d, bytes);
}

static void dynamic_give_back(dynamic *d, const pinheap_region *r) {
  provider_release(d->prov, r);
  atomic_fetch_sub(&d->registered, r->size);
}

/* Registers size bytes aligned to align: 0 with *r filled, or -1: with
 * *cap_reached set when they do not fit under the cap (no error set), else
 * with the provider's error set. A refusal of the provider while the cache
 * holds registrations gives those back and asks again. */
static int dynamic_obtain(dynamic *d, size_t size, size_t align, pinheap_region *r, bool *cap_reached,
                          const char *what) {
  *cap_reached = !dynamic_reserve(d, size);
  if (*cap_reached) return -1;
  if (provider_obtain(d->prov, size, align, r, what) == 0 ||
      (dynamic_cache_drain(d) && provider_obtain(d->prov, size, align, r, what) == 0)) {
    util_raise_max(&d->peak_registered, atomic_load(&d->registered));
    return 0;
  }
  atomic_fetch_sub(&d->registered, size);
  return -1;
}

/* The bytes the cap leaves: not registered, or held by the cache (which
 * gives them back for a registration that needs them). */
static size_t dynamic_left(dynamic *d) {
  size_t registered = atomic_load(&d->registered), cached = atomic_load(&d->cached_bytes);
  registered -= cached < registered ? cached : registered;
  return registered < d->cap ? d->cap - registered : 0;
}

/* Obtains a chunk of size bytes and adds it to the space. The provider is
 * called under no lock of the heap's. */
static int dynamic_add_chunk(dynamic *d, size_t size) {
  pinheap_region r;
  bool cap_reached;
  if (dynamic_obtain(d, size, DYNAMIC_GRANULE, &r, &cap_reached, "growing the heap") != 0) {
    if (cap_reached) error_set(ENOMEM, "the heap's cap of %zu registered bytes is reached", d->cap);
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
      size_t left = dynamic_left(d) & ~(DYNAMIC_GRANULE - 1);
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
  tree_init(&d->cache.by_size, dynamic_size_cmp, NULL);
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

/* Raises the high-water mark of in_use to what is in use now (cached
 * registrations are not). */
static void dynamic_note_peak(dynamic *d) {
  em_stats s;
  em_get_stats(&d->space->em, &s);
  size_t direct = atomic_load(&d->direct_bytes), cached = atomic_load(&d->cached_bytes);
  util_raise_max(&d->peak, s.capacity - s.free_bytes + direct - (cached < direct ? cached : direct));
}

/* The bytes to register for a direct block of bytes that replaces one of
 * grow_from registered bytes: when it grows, half as much again as the old
 * registration, within what the cap leaves beside everything registered
 * now (the old block included: it is given back only after the copy). */
static size_t dynamic_room(dynamic *d, size_t bytes, size_t grow_from) {
  if (bytes <= grow_from) return bytes;
  size_t room = util_align_up(grow_from + grow_from / 2, d->page);
  if (d->cap) {
    size_t left = util_align_down(dynamic_left(d), d->page);
    if (room > left) room = left;
  }
  return room > bytes ? room : bytes;
}

/* The smallest cached registration that holds bytes, of which bytes
 * leave at most a DYNAMIC_CACHE_SLACKth unused, starting aligned to align,
 * made live for bytes; NULL when there is none. direct_lock held. */
static dynamic_block *dynamic_cache_take(dynamic *d, size_t bytes, size_t align) {
  dynamic_cache *c = &d->cache;
  dynamic_block key = {.size = bytes};
  tree_node *n = tree_ceil(&c->by_size, &key.by_size);
  /* The slack grows with the size: past the first that is too big, all are. */
  while (n && (uintptr_t)DYNAMIC_BY_SIZE(n)->base % align &&
         DYNAMIC_BY_SIZE(n)->size - bytes <= DYNAMIC_BY_SIZE(n)->size / DYNAMIC_CACHE_SLACK)
    n = tree_next(&c->by_size, n);
  dynamic_block *b = n ? DYNAMIC_BY_SIZE(n) : NULL;
  if (!b || b->size - bytes > b->size / DYNAMIC_CACHE_SLACK || (uintptr_t)b->base % align) return NULL;
  tree_remove(&c->by_size, &b->by_size);
  dynamic_list_remove(&c->list, b);
  atomic_fetch_sub(&d->cached_bytes, b->size);
  b->state = DYNAMIC_LIVE;
  b->used = bytes;
  atomic_fetch_add(&d->direct_used, bytes);
  return b;
}

/* A cached registration for a block of bytes (a page multiple), or NULL. */
static void *dynamic_reuse(dynamic *d, size_t bytes, size_t align, bool zero) {
  if (!d->cache.max_bytes || !bytes) return NULL;
  pthread_mutex_lock(&d->direct_lock);
  dynamic_block *b = dynamic_cache_take(d, bytes, align);
  void *p = b ? b->base : NULL;
  pthread_mutex_unlock(&d->direct_lock);
  if (p && zero) memset(p, 0, bytes);
  return p;
}

void *dynamic_direct_alloc(dynamic *d, size_t size, size_t align, bool zero, size_t grow_from, const char *what) {
  size_t bytes = util_align_up(size, d->page);
  if (align < d->page) align = d->page;
  void *reused = dynamic_reuse(d, bytes, align, zero);
  if (reused) {
    dynamic_note_peak(d);
    PH_ASSERT_EXPENSIVE(dynamic_check(d) == 0);
    return reused;
  }
  size_t room = bytes ? dynamic_room(d, bytes, grow_from) : 0;
  pinheap_region r;
  bool cap_reached = true;
  /* The room first, then no more than the block when that cannot be had. */
  int err = room ? dynamic_obtain(d, room, align, &r, &cap_reached, what) : -1;
  if (err && room > bytes) err = dynamic_obtain(d, room = bytes, align, &r, &cap_reached, what);
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
  if (!b || b->state != DYNAMIC_LIVE || (exact ? b->base != p : (uintptr_t)p - (uintptr_t)b->base >= b->size)) return NULL;
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

/* Takes b out of everything that holds it (its state's list, the cache's
 * tree, the tree of blocks) and appends it to the chain whose end is *tail:
 * its record stays, to be given back by dynamic_let_go once direct_lock
 * (held) is released. Returns the chain's new end. */
static dynamic_block **dynamic_take_out(dynamic *d, dynamic_block *b, dynamic_block **tail) {
  if (b->state == DYNAMIC_LIVE) atomic_fetch_sub(&d->direct_used, b->used);
  if (b->state == DYNAMIC_QUARANTINED) dynamic_list_remove(&d->quarantine.list, b);
  if (b->state == DYNAMIC_CACHED) {
    dynamic_list_remove(&d->cache.list, b);
    tree_remove(&d->cache.by_size, &b->by_size);
    atomic_fetch_sub(&d->cached_bytes, b->size);
  }
  tree_remove(&d->direct, &b->by_base);
  atomic_fetch_sub(&d->direct_bytes, b->size);
  b->newer = NULL;
  *tail = b;
  return &b->newer;
}

/* Takes the oldest blocks of l out while l holds more than keep_bytes or
 * keep_count, chained from *out (NULL), oldest first; direct_lock held. */
static void dynamic_take_oldest(dynamic *d, dynamic_list *l, size_t keep_bytes, size_t keep_count,
                                dynamic_block **out) {
  while (l->oldest && (l->bytes > keep_bytes || l->count > keep_count)) out = dynamic_take_out(d, l->oldest, out);
}

/* Gives back the chain of blocks dynamic_take_out took out (a
 * quarantined one seen by the quarantine's leave first), then their
 * records; direct_lock not held. Returns the bytes given back. */
static size_t dynamic_let_go(dynamic *d, dynamic_block *chain) {
  size_t bytes = 0;
  for (dynamic_block *b = chain; b; b = b->newer) {
    if (b->state == DYNAMIC_QUARANTINED) d->quarantine.leave(d->quarantine.ctx, b->base, b->used);
    pinheap_region r = dynamic_region(b);
    dynamic_give_back(d, &r);
    bytes += r.size;
  }
  if (!chain) return 0;
  pthread_mutex_lock(&d->direct_lock);
  for (dynamic_block *next; chain; chain = next) {
    next = chain->newer;
    meta_free(&d->direct_pool, chain);
  }
  pthread_mutex_unlock(&d->direct_lock);
  return bytes;
}

/* Moves the live block b to the cache when it may enter, letting the
 * oldest cached ones go to keep within the bounds (chained on *out);
 * direct_lock held. */
static bool dynamic_cache_put(dynamic *d, dynamic_block *b, dynamic_block **out) {
  dynamic_cache *c = &d->cache;
  if (!c->max_blocks || b->size > c->max_bytes) return false;
  atomic_fetch_sub(&d->direct_used, b->used);
  b->state = DYNAMIC_CACHED;
  /* Room first, so that the cache never holds more than its bounds. */
  dynamic_take_oldest(d, &c->list, c->max_bytes - b->size, c->max_blocks - 1, out);
  dynamic_list_push(&c->list, b);
  tree_insert(&c->by_size, &b->by_size);
  atomic_fetch_add(&d->cached_bytes, b->size);
  return true;
}

bool dynamic_direct_free(dynamic *d, void *p) {
  pthread_mutex_lock(&d->direct_lock);
  dynamic_block *b = dynamic_lookup(d, p, true);
  if (!b) {
    pthread_mutex_unlock(&d->direct_lock);
    return false;
  }
  /* Cached (the oldest cached ones may leave for it), or given back. */
  dynamic_block *chain = NULL;
  if (!dynamic_cache_put(d, b, &chain)) dynamic_take_out(d, b, &chain);
  pthread_mutex_unlock(&d->direct_lock);
  dynamic_let_go(d, chain);
  PH_ASSERT_EXPENSIVE(dynamic_check(d) == 0);
  return true;
}

void dynamic_cache_open(dynamic *d, size_t max_bytes, size_t max_blocks) {
  PH_ASSERT(max_blocks <= DYNAMIC_CACHE_MAX_BLOCKS);
  d->cache.max_bytes = max_blocks ? max_bytes : 0;
  d->cache.max_blocks = max_bytes ? max_blocks : 0;
}

size_t dynamic_cache_drain(dynamic *d) {
  dynamic_block *chain = NULL;
  pthread_mutex_lock(&d->direct_lock);
  dynamic_take_oldest(d, &d->cache.list, 0, 0, &chain);
  pthread_mutex_unlock(&d->direct_lock);
  return dynamic_let_go(d, chain);
}

void dynamic_cache_stats(dynamic *d, size_t *blocks, size_t *bytes) {
  pthread_mutex_lock(&d->direct_lock);
  *blocks = d->cache.list.count;
  *bytes = d->cache.list.bytes;
  pthread_mutex_unlock(&d->direct_lock);
}

/* Lets the oldest quarantined blocks leave while they hold more than keep
 * bytes: each is checked and given back outside the lock. */
static void dynamic_quarantine_trim(dynamic *d, size_t keep) {
  dynamic_block *chain = NULL;
  pthread_mutex_lock(&d->direct_lock);
  dynamic_take_oldest(d, &d->quarantine.list, keep, SIZE_MAX, &chain);
  pthread_mutex_unlock(&d->direct_lock);
  dynamic_let_go(d, chain);
}

bool dynamic_direct_quarantine(dynamic *d, void *p) {
  dynamic_quarantine *q = &d->quarantine;
  if (!q->leave) return false;
  pthread_mutex_lock(&d->direct_lock);
  dynamic_block *b = dynamic_lookup(d, p, true);
  bool enters = b && b->size <= q->cap;
  if (enters) {
    atomic_fetch_sub(&d->direct_used, b->used);
    b->state = DYNAMIC_QUARANTINED;
    dynamic_list_push(&q->list, b);
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
  if (b->state == DYNAMIC_LIVE) w->visit(b->base, b->used, w->arg);
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
  for (dynamic_block *b = d->quarantine.list.oldest; b; b = b->newer) visit(b->base, b->used, arg);
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
  *blocks = d->direct.count - d->quarantine.list.count - d->cache.list.count;
  pthread_mutex_unlock(&d->direct_lock);
}

size_t dynamic_direct_bytes(dynamic *d) { return atomic_load(&d->direct_bytes); }

size_t dynamic_peak(dynamic *d) { return atomic_load(&d->peak); }

size_t dynamic_peak_registered(dynamic *d) { return atomic_load(&d->peak_registered); }

typedef struct dynamic_check_state {
  dynamic *d;
  size_t bytes, used, quarantined, cached;
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
  if (b->state == DYNAMIC_QUARANTINED)
    st->quarantined++;
  else if (b->state == DYNAMIC_CACHED)
    st->cached++;
  else
    st->used += b->used;
  return 0;
}

/* A list (name) against its counts and the blocks flagged state in the
 * tree. */
static int dynamic_check_list(const dynamic_list *l, dynamic_state state, size_t flagged, const char *name) {
  size_t count = 0, bytes = 0;
  const dynamic_block *last = NULL;
  for (const dynamic_block *b = l->oldest; b && count <= flagged; b = b->newer, count++) {
    bytes += b->size;
    if (b->older != last || b->state != state) break;
    last = b;
  }
  if (count != flagged || count != l->count || bytes != l->bytes || last != l->newest) {
    fprintf(stderr, "dynamic: the %s lists %zu blocks of %zu bytes (counted %zu of %zu), %zu are flagged\n", name,
            count, bytes, l->count, l->bytes, flagged);
    return 1;
  }
  return 0;
}

/* The cache: its list, its tree of the same blocks, its bounds. */
static int dynamic_check_cache(dynamic *d, size_t flagged) {
  const dynamic_cache *c = &d->cache;
  int broken = dynamic_check_list(&c->list, DYNAMIC_CACHED, flagged, "cache") + tree_check(&c->by_size, "dynamic.cache");
  size_t cached = atomic_load(&d->cached_bytes);
  if (c->by_size.count != c->list.count || cached != c->list.bytes || c->list.bytes > c->max_bytes ||
      c->list.count > c->max_blocks) {
    fprintf(stderr,
            "dynamic: the cache's tree holds %zu blocks, its list %zu of %zu bytes (published %zu), its bounds are "
            "%zu blocks and %zu bytes\n",
            c->by_size.count, c->list.count, c->list.bytes, cached, c->max_blocks, c->max_bytes);
    broken++;
  }
  return broken;
}

int dynamic_check(dynamic *d) {
  dynamic_check_state st = {.d = d};
  pthread_mutex_lock(&d->grow_lock);
  pthread_mutex_lock(&d->direct_lock);
  st.broken += tree_check(&d->direct, "dynamic.direct") + meta_check(&d->direct_pool);
  tree_walk(&d->direct, dynamic_check_block, &st);
  st.broken += dynamic_check_list(&d->quarantine.list, DYNAMIC_QUARANTINED, st.quarantined, "quarantine");
  st.broken += dynamic_check_cache(d, st.cached);
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
