#include "dynamic.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "heap.h"
#include "util.h"

#define DYNAMIC_GRANULE ((size_t)2 << 20)
#define DYNAMIC_BLOCK(n) PH_CONTAINER_OF(n, dynamic_block, by_base)

static int dynamic_cmp(const tree_node *a, const tree_node *b) {
  uintptr_t x = (uintptr_t)DYNAMIC_BLOCK(a)->base, y = (uintptr_t)DYNAMIC_BLOCK(b)->base;
  return (x > y) - (x < y);
}

/* Reserves bytes of the cap; false when they would exceed it. */
static bool dynamic_reserve(pinheap *h, size_t bytes) {
  size_t cur = atomic_load(&h->registered);
  do {
    if (h->opts.size && (bytes > h->opts.size || cur > h->opts.size - bytes)) return false;
  } while (!atomic_compare_exchange_weak(&h->registered, &cur, cur + bytes));
  return true;
}

static const char *dynamic_provider_name(const pinheap *h) {
  return h->provider->name ? h->provider->name : "(unnamed)";
}

/* Obtains a chunk of size bytes and adds it everywhere. The provider is
 * called under no lock of the heap's. */
static int dynamic_add_chunk(pinheap *h, size_t size) {
  if (!dynamic_reserve(h, size)) {
    error_set(ENOMEM, "the heap's cap of %zu registered bytes is reached", h->opts.size);
    return -1;
  }
  void *base = NULL, *handle = NULL;
  int err = h->provider->obtain(h->provider->ctx, size, DYNAMIC_GRANULE, &base, &handle);
  if (err == 0 && ((uintptr_t)base & (DYNAMIC_GRANULE - 1))) err = EINVAL;
  if (err == 0) {
    pthread_mutex_lock(&h->grow_lock);
    /* The page map first: once the manager has the chunk, any thread may
     * take an extent of it and tag its pages. Only the local provider's
     * memory is known to read as zero. */
    if (pagemap_add(&h->pm, base, size, handle) != 0)
      err = ENOMEM;
    else if (em_add_region(&h->em, base, size, h->provider == &h->local) != 0) {
      pagemap_remove(&h->pm, base);
      err = ENOMEM;
    }
    pthread_mutex_unlock(&h->grow_lock);
    if (err == 0) return 0;
    if (h->provider->release) h->provider->release(h->provider->ctx, base, size, handle);
    atomic_fetch_sub(&h->registered, size);
    error_set(ENOMEM, "no memory for the metadata of a %zu-byte chunk", size);
    return -1;
  }
  if (err == EINVAL && h->provider->release) h->provider->release(h->provider->ctx, base, size, handle);
  atomic_fetch_sub(&h->registered, size);
  if (h->provider != &h->local || err == EINVAL)
    error_set(ENOMEM, "provider %s cannot obtain a chunk of %zu bytes: %s", dynamic_provider_name(h), size,
              err == EINVAL ? "it returned an address not aligned to 2 MiB" : strerror(err));
  return -1;
}

int dynamic_grow(void *heap, size_t bytes) {
  pinheap *h = heap;
  size_t size = util_align_up(bytes, DYNAMIC_GRANULE);
  if (!size) return -1;
  if (size < h->chunk_size) size = h->chunk_size;
  if (h->opts.size) {
    /* Near the cap, a chunk only as big as what is left. */
    size_t left = h->opts.size - atomic_load(&h->registered);
    left &= ~(DYNAMIC_GRANULE - 1);
    if (size > left && left >= util_align_up(bytes, DYNAMIC_GRANULE)) size = left;
  }
  return dynamic_add_chunk(h, size);
}

int dynamic_open(pinheap *h) {
  const pinheap_options *o = &h->opts;
  h->chunk_size = util_align_up(o->chunk_size, DYNAMIC_GRANULE);
  pthread_mutex_init(&h->grow_lock, NULL);
  pthread_mutex_init(&h->direct_lock, NULL);
  tree_init(&h->direct, dynamic_cmp, NULL);
  meta_init(&h->direct_pool, sizeof(dynamic_block));
  if (em_init(&h->em, EM_TWO_ENDED, h->page, o->small_extent_max) != 0 || pagemap_init(&h->pm, h->page) != 0 ||
      hooks_shared_init(&h->grants, &h->em, &h->pm) != 0) {
    error_set(ENOMEM, "pinheap_create: no memory for the heap's metadata");
    return -1;
  }
  h->grants.grow = dynamic_grow;
  h->grants.grow_ctx = h;
  size_t first = h->chunk_size;
  if (o->size && first > (o->size & ~(DYNAMIC_GRANULE - 1))) first = o->size & ~(DYNAMIC_GRANULE - 1);
  if (first == 0 || dynamic_add_chunk(h, first) != 0) {
    if (first == 0) error_set(EINVAL, "pinheap_create: a cap of %zu bytes is below one 2 MiB chunk", o->size);
    return -1;
  }
  return 0;
}

static int dynamic_release_block(tree_node *n, void *arg) {
  pinheap *h = arg;
  dynamic_block *b = DYNAMIC_BLOCK(n);
  if (h->provider->release) h->provider->release(h->provider->ctx, b->base, b->size, b->handle);
  return 0;
}

void dynamic_close(pinheap *h) {
  tree_walk(&h->direct, dynamic_release_block, h);
  for (pagemap_chunk *c = h->pm.chunks; c; c = c->next)
    if (c->live && h->provider->release) h->provider->release(h->provider->ctx, (void *)c->base, c->size, c->handle);
  hooks_shared_fini(&h->grants);
  pagemap_fini(&h->pm);
  em_fini(&h->em);
  meta_fini(&h->direct_pool);
  pthread_mutex_destroy(&h->direct_lock);
  pthread_mutex_destroy(&h->grow_lock);
}

void *dynamic_direct_alloc(pinheap *h, size_t size, size_t align, bool zero, const char *what) {
  size_t bytes = util_align_up(size, h->page);
  if (!bytes || !dynamic_reserve(h, bytes)) {
    error_set(ENOMEM, "%s(%zu): out of memory: the heap's cap of %zu registered bytes is reached", what, size,
              h->opts.size);
    return NULL;
  }
  void *base = NULL, *handle = NULL;
  int err = h->provider->obtain(h->provider->ctx, bytes, align < h->page ? h->page : align, &base, &handle);
  if (err || ((uintptr_t)base & (align - 1))) {
    if (!err && h->provider->release) h->provider->release(h->provider->ctx, base, bytes, handle);
    atomic_fetch_sub(&h->registered, bytes);
    error_set(ENOMEM, "%s(%zu): out of memory: provider %s cannot obtain %zu bytes: %s", what, size,
              dynamic_provider_name(h), bytes, err ? strerror(err) : "misaligned");
    return NULL;
  }
  pthread_mutex_lock(&h->direct_lock);
  dynamic_block *b = meta_alloc(&h->direct_pool);
  if (b) {
    *b = (dynamic_block){.base = base, .size = bytes, .handle = handle};
    tree_insert(&h->direct, &b->by_base);
    atomic_fetch_add(&h->direct_bytes, bytes);
  }
  pthread_mutex_unlock(&h->direct_lock);
  if (!b) {
    if (h->provider->release) h->provider->release(h->provider->ctx, base, bytes, handle);
    atomic_fetch_sub(&h->registered, bytes);
    error_set(ENOMEM, "%s(%zu): out of memory: no memory for its record", what, size);
    return NULL;
  }
  /* The local provider's memory is fresh from mmap, so already zero. */
  if (zero && h->provider != &h->local) memset(base, 0, bytes);
  heap_note_peak(h);
  return base;
}

bool dynamic_direct_find(pinheap *h, const void *p, bool exact, pinheap_region *out) {
  dynamic_block key = {.base = (void *)p};
  pthread_mutex_lock(&h->direct_lock);
  tree_node *n = tree_floor(&h->direct, &key.by_base);
  dynamic_block *b = n ? DYNAMIC_BLOCK(n) : NULL;
  bool found = b && (exact ? b->base == p : (uintptr_t)p - (uintptr_t)b->base < b->size);
  if (found && out) *out = (pinheap_region){.base = b->base, .size = b->size, .handle = b->handle};
  pthread_mutex_unlock(&h->direct_lock);
  return found;
}

bool dynamic_direct_free(pinheap *h, void *p) {
  dynamic_block key = {.base = p};
  pthread_mutex_lock(&h->direct_lock);
  tree_node *n = tree_floor(&h->direct, &key.by_base);
  dynamic_block *b = n ? DYNAMIC_BLOCK(n) : NULL;
  if (!b || b->base != p) {
    pthread_mutex_unlock(&h->direct_lock);
    return false;
  }
  dynamic_block copy = *b;
  tree_remove(&h->direct, &b->by_base);
  meta_free(&h->direct_pool, b);
  atomic_fetch_sub(&h->direct_bytes, copy.size);
  pthread_mutex_unlock(&h->direct_lock);
  if (h->provider->release) h->provider->release(h->provider->ctx, copy.base, copy.size, copy.handle);
  atomic_fetch_sub(&h->registered, copy.size);
  return true;
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
    for (size_t i = 0; i < n; i++) {
      if (h->provider->release) h->provider->release(h->provider->ctx, out[i].base, out[i].size, out[i].handle);
      atomic_fetch_sub(&h->registered, out[i].size);
    }
    if (n < BATCH) return;
  }
}

typedef struct dynamic_check_state {
  pinheap *h;
  size_t bytes;
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
  st->prev_end = (uintptr_t)b->base + b->size;
  st->bytes += b->size;
  return 0;
}

int dynamic_check(pinheap *h) {
  dynamic_check_state st = {.h = h};
  pthread_mutex_lock(&h->grow_lock);
  pthread_mutex_lock(&h->direct_lock);
  st.broken += tree_check(&h->direct, "dynamic.direct") + meta_check(&h->direct_pool);
  tree_walk(&h->direct, dynamic_check_block, &st);
  size_t chunks = 0;
  pthread_mutex_lock(&h->pm.lock);
  for (pagemap_chunk *c = h->pm.chunks; c; c = c->next)
    if (c->live) chunks += c->size;
  pthread_mutex_unlock(&h->pm.lock);
  em_stats es;
  em_get_stats(&h->em, &es);
  size_t registered = atomic_load(&h->registered), direct = atomic_load(&h->direct_bytes);
  if (st.bytes != direct || es.capacity != chunks) {
    fprintf(stderr, "dynamic: direct blocks hold %zu bytes (counted %zu), chunks %zu (the manager has %zu)\n",
            st.bytes, direct, chunks, es.capacity);
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
