#include "dynamic.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "heap.h"
#include "util.h"

#define DYNAMIC_BLOCK(n) PH_CONTAINER_OF(n, dynamic_block, by_base)

static int dynamic_cmp(const tree_node *a, const tree_node *b) {
  uintptr_t x = (uintptr_t)DYNAMIC_BLOCK(a)->base, y = (uintptr_t)DYNAMIC_BLOCK(b)->base;
  return (x > y) - (x < y);
}

static bool dynamic_try_reserve(pinheap *h, size_t bytes) {
  size_t cur = atomic_load(&h->registered);
  do {
    if (h->opts.size && (bytes > h->opts.size || cur > h->opts.size - bytes)) return false;
  } while (!atomic_compare_exchange_weak(&h->registered, &cur, cur + bytes));
  return true;
}

/* Reserves bytes of the cap, emptying the quarantine when they do not fit
 * beside it; false when they would exceed it. */
static bool dynamic_reserve(pinheap *h, size_t bytes) {
  if (dynamic_try_reserve(h, bytes)) return true;
  if (!h->quarantine.leave) return false;
  dynamic_quarantine_drain(h);
  return dynamic_try_reserve(h, bytes);
}

/* Obtains a chunk of size bytes and adds it everywhere. The provider is
 * called under no lock of the heap's. */
static int dynamic_add_chunk(pinheap *h, size_t size) {
  if (!dynamic_reserve(h, size)) {
    error_set(ENOMEM, "the heap's cap of %zu registered bytes is reached", h->opts.size);
    return -1;
  }
  pinheap_region r;
  if (heap_provider_obtain(h, size, DYNAMIC_GRANULE, &r, "growing the heap") != 0) {
    atomic_fetch_sub(&h->registered, size);
    return -1;
  }
  pthread_mutex_lock(&h->grow_lock);
  /* The page map first: once the manager has the chunk, any thread may take
   * an extent of it and tag its pages. */
  int err = pagemap_add(&h->pm, r.base, size, r.handle);
  if (err == 0 && (err = em_add_region(&h->em, r.base, size, heap_provider_zeroed(h))) != 0)
    pagemap_remove(&h->pm, r.base);
  pthread_mutex_unlock(&h->grow_lock);
  if (err == 0) return 0;
  heap_provider_release(h, &r);
  atomic_fetch_sub(&h->registered, size);
  error_set(ENOMEM, "no memory for the metadata of a %zu-byte chunk", size);
  return -1;
}

/* Per thread, as the error text is: a heap grows inside jemalloc's calls
 * too, which can fail but not say why. */
static _Thread_local char dynamic_why[256];

const char *dynamic_refusal(void) { return dynamic_why; }

int dynamic_grow(void *heap, size_t bytes) {
  pinheap *h = heap;
  size_t need = util_align_up(bytes, DYNAMIC_GRANULE);
  int err = -1;
  if (!need) {
    error_set(ENOMEM, "a chunk for %zu bytes is beyond the address space", bytes);
  } else {
    size_t size = need < h->chunk_size ? h->chunk_size : need;
    if (h->opts.size) {
      /* Near the cap, a chunk only as big as what is left. */
      size_t left = (h->opts.size - atomic_load(&h->registered)) & ~(DYNAMIC_GRANULE - 1);
      if (size > left && left >= need) size = left;
    }
    err = dynamic_add_chunk(h, size);
  }
  snprintf(dynamic_why, sizeof dynamic_why, "%s", err ? pinheap_last_error() : "");
  return err;
}

int dynamic_open(pinheap *h) {
  const pinheap_options *o = &h->opts;
  h->chunk_size = util_align_up(o->chunk_size, DYNAMIC_GRANULE);
  pthread_mutex_init(&h->grow_lock, NULL);
  pthread_mutex_init(&h->direct_lock, NULL);
  tree_init(&h->direct, dynamic_cmp, NULL);
  meta_init(&h->direct_pool, sizeof(dynamic_block));
  if (em_init(&h->em, EM_TWO_ENDED, h->page, o->small_extent_max) != 0 || pagemap_init(&h->pm, h->page) != 0 ||
      hooks_shared_init(&h->grants, &h->em, &h->pm, &h->gate) != 0) {
    error_set(ENOMEM, "pinheap_create: no memory for the heap's metadata");
    return -1;
  }
  h->grants.grow = dynamic_grow;
  h->grants.grow_ctx = h;
  return dynamic_grow(h, DYNAMIC_GRANULE);
}

static pinheap_region dynamic_region(const dynamic_block *b) {
  return (pinheap_region){.base = b->base, .size = b->size, .handle = b->handle};
}

static int dynamic_release_block(tree_node *n, void *arg) {
  pinheap_region r = dynamic_region(DYNAMIC_BLOCK(n));
  heap_provider_release(arg, &r);
  return 0;
}

void dynamic_close(pinheap *h) {
  tree_walk(&h->direct, dynamic_release_block, h);
  for (pagemap_chunk *c = h->pm.chunks; c; c = c->next)
    if (c->live) heap_provider_release(h, &(pinheap_region){.base = (void *)c->base, .size = c->size, .handle = c->handle});
  hooks_shared_fini(&h->grants);
  pagemap_fini(&h->pm);
  em_fini(&h->em);
  meta_fini(&h->direct_pool);
  pthread_mutex_destroy(&h->direct_lock);
  pthread_mutex_destroy(&h->grow_lock);
}

/* The bytes to register for a direct block of bytes that replaces one of
 * grow_from registered bytes: when it grows, half as much again as the old
 * registration, within what the cap leaves beside everything registered
 * now (the old block included: it is given back only after the copy). */
static size_t dynamic_room(pinheap *h, size_t bytes, size_t grow_from) {
  if (bytes <= grow_from) return bytes;
  size_t room = util_align_up(grow_from + grow_from / 2, h->page);
  if (h->opts.size) {
    size_t registered = atomic_load(&h->registered);
    size_t left = registered < h->opts.size ? util_align_down(h->opts.size - registered, h->page) : 0;
    if (room > left) room = left;
  }
  return room > bytes ? room : bytes;
}

/* Registers room bytes for a block: 0 with *r filled, or -1: with
 * *cap_reached set when they do not fit under the cap (no error set), else
 * with the provider's error set. */
static int dynamic_register(pinheap *h, size_t room, size_t align, pinheap_region *r, bool *cap_reached,
                            const char *what) {
  *cap_reached = !dynamic_reserve(h, room);
  if (*cap_reached) return -1;
  if (heap_provider_obtain(h, room, align, r, what) == 0) return 0;
  atomic_fetch_sub(&h->registered, room);
  return -1;
}

void *dynamic_direct_alloc(pinheap *h, size_t size, size_t align, bool zero, size_t grow_from, const char *what) {
  size_t bytes = util_align_up(size, h->page);
  if (align < h->page) align = h->page;
  size_t room = bytes ? dynamic_room(h, bytes, grow_from) : 0;
  pinheap_region r;
  bool cap_reached = true;
  /* The room first, then no more than the block when that cannot be had. */
  int err = room ? dynamic_register(h, room, align, &r, &cap_reached, what) : -1;
  if (err && room > bytes) err = dynamic_register(h, room = bytes, align, &r, &cap_reached, what);
  if (err) {
    if (cap_reached)
      error_set(ENOMEM, "%s(%zu): out of memory: the heap's cap of %zu registered bytes is reached", what, size,
                h->opts.size);
    return NULL;
  }
  pthread_mutex_lock(&h->direct_lock);
  dynamic_block *b = meta_alloc(&h->direct_pool);
  if (b) {
    *b = (dynamic_block){.base = r.base, .size = room, .used = bytes, .handle = r.handle};
    tree_insert(&h->direct, &b->by_base);
    atomic_fetch_add(&h->direct_bytes, room);
    atomic_fetch_add(&h->direct_used, bytes);
  }
  pthread_mutex_unlock(&h->direct_lock);
  if (!b) {
    heap_provider_release(h, &r);
    atomic_fetch_sub(&h->registered, room);
    error_set(ENOMEM, "%s(%zu): out of memory: no memory for its record", what, size);
    return NULL;
  }
  if (zero && !heap_provider_zeroed(h)) memset(r.base, 0, bytes);
  heap_note_peak(h);
  return r.base;
}

/* The live direct block holding p (exact: starting at p); direct_lock held. */
static dynamic_block *dynamic_lookup(pinheap *h, const void *p, bool exact) {
  dynamic_block key = {.base = (void *)p};
  tree_node *n = tree_floor(&h->direct, &key.by_base);
  dynamic_block *b = n ? DYNAMIC_BLOCK(n) : NULL;
  if (!b || b->quarantined || (exact ? b->base != p : (uintptr_t)p - (uintptr_t)b->base >= b->size)) return NULL;
  return b;
}

size_t dynamic_direct_find(pinheap *h, const void *p, bool exact, pinheap_region *out) {
  pthread_mutex_lock(&h->direct_lock);
  dynamic_block *b = dynamic_lookup(h, p, exact);
  if (b && out) *out = dynamic_region(b);
  size_t used = b ? b->used : 0;
  pthread_mutex_unlock(&h->direct_lock);
  return used;
}

bool dynamic_direct_resize(pinheap *h, void *p, size_t bytes, pinheap_region *out) {
  pthread_mutex_lock(&h->direct_lock);
  dynamic_block *b = dynamic_lookup(h, p, true);
  bool fits = b && bytes <= b->size && bytes > b->size / 2;
  if (fits) {
    atomic_fetch_add(&h->direct_used, bytes);
    atomic_fetch_sub(&h->direct_used, b->used);
    b->used = bytes;
  }
  if (out) *out = b ? dynamic_region(b) : (pinheap_region){0};
  pthread_mutex_unlock(&h->direct_lock);
  return fits;
}

/* Takes b out of the tree and forgets it; direct_lock held. Returns its
 * registration, to be given back once the lock is released. */
static pinheap_region dynamic_forget(pinheap *h, dynamic_block *b) {
  pinheap_region r = dynamic_region(b);
  tree_remove(&h->direct, &b->by_base);
  meta_free(&h->direct_pool, b);
  atomic_fetch_sub(&h->direct_bytes, r.size);
  return r;
}

static void dynamic_give_back(pinheap *h, const pinheap_region *r) {
  heap_provider_release(h, r);
  atomic_fetch_sub(&h->registered, r->size);
}

bool dynamic_direct_free(pinheap *h, void *p) {
  pthread_mutex_lock(&h->direct_lock);
  dynamic_block *b = dynamic_lookup(h, p, true);
  if (!b) {
    pthread_mutex_unlock(&h->direct_lock);
    return false;
  }
  atomic_fetch_sub(&h->direct_used, b->used);
  pinheap_region r = dynamic_forget(h, b);
  pthread_mutex_unlock(&h->direct_lock);
  dynamic_give_back(h, &r);
  return true;
}

/* Lets the oldest quarantined blocks leave while they hold more than keep
 * bytes, one at a time: each is checked and given back outside the lock. */
static void dynamic_quarantine_trim(pinheap *h, size_t keep) {
  dynamic_quarantine *q = &h->quarantine;
  for (;;) {
    pthread_mutex_lock(&h->direct_lock);
    dynamic_block *b = q->oldest;
    if (!b || q->bytes <= keep) {
      pthread_mutex_unlock(&h->direct_lock);
      return;
    }
    q->oldest = b->newer;
    if (!q->oldest) q->newest = NULL;
    q->bytes -= b->size;
    q->count--;
    size_t used = b->used;
    pinheap_region r = dynamic_forget(h, b);
    pthread_mutex_unlock(&h->direct_lock);
    q->leave(q->ctx, r.base, used);
    dynamic_give_back(h, &r);
  }
}

bool dynamic_direct_quarantine(pinheap *h, void *p) {
  dynamic_quarantine *q = &h->quarantine;
  if (!q->leave) return false;
  pthread_mutex_lock(&h->direct_lock);
  dynamic_block *b = dynamic_lookup(h, p, true);
  bool enters = b && b->size <= q->cap;
  if (enters) {
    atomic_fetch_sub(&h->direct_used, b->used);
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
  pthread_mutex_unlock(&h->direct_lock);
  if (enters) dynamic_quarantine_trim(h, q->cap);
  return enters;
}

void dynamic_quarantine_drain(pinheap *h) {
  if (h->quarantine.leave) dynamic_quarantine_trim(h, 0);
}

void dynamic_quarantine_open(pinheap *h, size_t cap, void (*leave)(void *ctx, void *base, size_t size), void *ctx) {
  h->quarantine.cap = cap;
  h->quarantine.ctx = ctx;
  h->quarantine.leave = leave;
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

void dynamic_walk_direct(pinheap *h, void (*visit)(void *base, size_t size, void *arg), void *arg) {
  struct dynamic_walk w = {visit, arg};
  pthread_mutex_lock(&h->direct_lock);
  tree_walk(&h->direct, dynamic_walk_block, &w);
  pthread_mutex_unlock(&h->direct_lock);
}

void dynamic_walk_quarantine(pinheap *h, void (*visit)(void *base, size_t size, void *arg), void *arg) {
  pthread_mutex_lock(&h->direct_lock);
  for (dynamic_block *b = h->quarantine.oldest; b; b = b->newer) visit(b->base, b->used, arg);
  pthread_mutex_unlock(&h->direct_lock);
}

void dynamic_release_free_chunks(pinheap *h) {
  /* Taken out under the lock, given back after it, a batch at a time. */
  enum { BATCH = 32 };
  pinheap_region out[BATCH];
  for (;;) {
    size_t n = 0;
    pthread_mutex_lock(&h->grow_lock);
    for (pagemap_chunk *c = h->pm.chunks; c && n < BATCH; c = c->next) {
      if (!c->live || c == h->pm.first || em_remove_region(&h->em, (void *)c->base) != 0) continue;
      out[n++] = (pinheap_region){.base = (void *)c->base, .size = c->size, .handle = c->handle};
      pagemap_remove(&h->pm, (void *)c->base);
    }
    pthread_mutex_unlock(&h->grow_lock);
    for (size_t i = 0; i < n; i++) dynamic_give_back(h, &out[i]);
    if (n < BATCH) return;
  }
}

typedef struct dynamic_check_state {
  pinheap *h;
  size_t bytes, used, quarantined;
  uintptr_t prev_end;
  int broken;
} dynamic_check_state;

static int dynamic_check_block(tree_node *n, void *arg) {
  dynamic_check_state *st = arg;
  dynamic_block *b = DYNAMIC_BLOCK(n);
  bool in_chunk = false;
  for (uintptr_t a = (uintptr_t)b->base; a < (uintptr_t)b->base + b->size && !in_chunk; a += DYNAMIC_GRANULE)
    in_chunk = pagemap_covers(&st->h->pm, (void *)a);
  in_chunk = in_chunk || pagemap_covers(&st->h->pm, (char *)b->base + b->size - 1);
  if ((uintptr_t)b->base < st->prev_end || in_chunk) {
    fprintf(stderr, "dynamic: direct block %p+%zu should overlap no other block and no chunk\n", b->base, b->size);
    st->broken++;
  }
  if (b->used > b->size || b->used <= b->size / 2 || b->used % st->h->page) {
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
static int dynamic_check_quarantine(pinheap *h, size_t flagged) {
  const dynamic_quarantine *q = &h->quarantine;
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

int dynamic_check(pinheap *h) {
  dynamic_check_state st = {.h = h};
  pthread_mutex_lock(&h->grow_lock);
  pthread_mutex_lock(&h->direct_lock);
  st.broken += tree_check(&h->direct, "dynamic.direct") + meta_check(&h->direct_pool);
  tree_walk(&h->direct, dynamic_check_block, &st);
  st.broken += dynamic_check_quarantine(h, st.quarantined);
  size_t chunks = 0;
  pthread_mutex_lock(&h->pm.lock);
  for (pagemap_chunk *c = h->pm.chunks; c; c = c->next)
    if (c->live) chunks += c->size;
  pthread_mutex_unlock(&h->pm.lock);
  em_stats es;
  em_get_stats(&h->em, &es);
  size_t registered = atomic_load(&h->registered), direct = atomic_load(&h->direct_bytes);
  size_t used = atomic_load(&h->direct_used);
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
  if (h->opts.size && registered > h->opts.size) {
    fprintf(stderr, "dynamic: %zu bytes registered, over the cap %zu\n", registered, h->opts.size);
    st.broken++;
  }
  pthread_mutex_unlock(&h->direct_lock);
  pthread_mutex_unlock(&h->grow_lock);
  return st.broken;
}
