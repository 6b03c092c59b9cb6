#include "pagemap.h"

#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "ph_assert.h"

#define PAGEMAP_GRANULE ((uintptr_t)1 << PAGEMAP_GRANULE_SHIFT)
#define PAGEMAP_TOP_OF(a) ((a) >> (PAGEMAP_GRANULE_SHIFT + PAGEMAP_LEAF_BITS))
#define PAGEMAP_LEAF_OF(a) (((a) >> PAGEMAP_GRANULE_SHIFT) & ((1u << PAGEMAP_LEAF_BITS) - 1))

static void *pagemap_map(size_t bytes) {
  void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  return m == MAP_FAILED ? NULL : m;
}

int pagemap_init(pagemap *pm, size_t page) {
  memset(pm, 0, sizeof *pm);
  pm->page_shift = (unsigned)__builtin_ctzl(page);
  pm->dir = pagemap_map(sizeof(*pm->dir) << PAGEMAP_TOP_BITS);
  if (!pm->dir) return -1;
  meta_init(&pm->records, sizeof(pagemap_chunk));
  pthread_mutex_init(&pm->lock, NULL);
  return 0;
}

void pagemap_fini(pagemap *pm) {
  if (!pm->dir) return;
  for (pagemap_chunk *c = pm->chunks; c; c = c->next) {
    munmap((void *)c->tags, c->tag_bytes);
    munmap((void *)c->births, 2 * c->tag_bytes);
  }
  for (size_t t = 0; t < ((size_t)1 << PAGEMAP_TOP_BITS); t++) {
    pagemap_leaf *leaf = atomic_load(&pm->dir[t]);
    if (leaf) munmap(leaf, sizeof *leaf);
  }
  munmap(pm->dir, sizeof(*pm->dir) << PAGEMAP_TOP_BITS);
  meta_fini(&pm->records);
  pthread_mutex_destroy(&pm->lock);
  pm->dir = NULL;
}

/* The chunks' part of pagemap_check, lock held: each live chunk found by
 * its addresses, each removed one without tags. */
static int pagemap_check_chunks(const pagemap *pm) {
  int broken = 0;
  for (const pagemap_chunk *c = pm->chunks; c; c = c->next) {
    size_t npages = c->size >> pm->page_shift;
    if (!c->live) {
      for (size_t i = 0; i < npages; i++)
        if (atomic_load_explicit(&c->tags[i], memory_order_relaxed)) {
          fprintf(stderr, "pagemap: removed chunk %#lx should hold no tag\n", (unsigned long)c->base);
          broken++;
          break;
        }
      continue;
    }
    if (pagemap_chunk_of(pm, (void *)c->base) != c || pagemap_chunk_of(pm, (void *)(c->base + c->size - 1)) != c) {
      fprintf(stderr, "pagemap: chunk %#lx+%zu should be found by its addresses\n", (unsigned long)c->base, c->size);
      broken++;
    }
  }
  return broken;
}

pagemap_chunk *pagemap_chunk_slow(const pagemap *pm, uintptr_t p) {
  if (PAGEMAP_TOP_OF(p) >> PAGEMAP_TOP_BITS) return NULL;
  pagemap_leaf *leaf = atomic_load_explicit(&pm->dir[PAGEMAP_TOP_OF(p)], memory_order_acquire);
  if (!leaf) return NULL;
  pagemap_chunk *c = atomic_load_explicit(&(*leaf)[PAGEMAP_LEAF_OF(p)], memory_order_acquire);
  return c && c->live && p - c->base < c->size ? c : NULL;
}

/* Points every granule of c's range at c (or at NULL); lock held. */
static int pagemap_point(pagemap *pm, const pagemap_chunk *c, pagemap_chunk *to) {
  for (uintptr_t a = c->base & ~(PAGEMAP_GRANULE - 1); a < c->base + c->size; a += PAGEMAP_GRANULE) {
    _Atomic(pagemap_leaf *) *top = &pm->dir[PAGEMAP_TOP_OF(a)];
    pagemap_leaf *leaf = atomic_load(top);
    if (!leaf) {
      if (!to) continue;
      if (!(leaf = pagemap_map(sizeof *leaf))) return -1;
      atomic_store_explicit(top, leaf, memory_order_release);
    }
    atomic_store_explicit(&(*leaf)[PAGEMAP_LEAF_OF(a)], to, memory_order_release);
  }
  return 0;
}

int pagemap_add(pagemap *pm, void *base, size_t size, void *handle) {
  uintptr_t b = (uintptr_t)base;
  if (PAGEMAP_TOP_OF(b + size - 1) >> PAGEMAP_TOP_BITS) return -1;
  if (pm->first && ((b | size) & (PAGEMAP_GRANULE - 1))) return -1;
  size_t need = util_align_up((size >> pm->page_shift) * sizeof(uint32_t), (size_t)1 << pm->page_shift);
  pthread_mutex_lock(&pm->lock);
  /* A removed chunk's record and tags, when they are big enough. */
  pagemap_chunk *c = NULL;
  for (pagemap_chunk *r = pm->chunks; r; r = r->next)
    if (!r->live && r->tag_bytes >= need && (!c || r->tag_bytes < c->tag_bytes)) c = r;
  if (!c) {
    void *tags = pagemap_map(need), *births = pagemap_map(2 * need);
    if (!tags || !births || !(c = meta_alloc(&pm->records))) {
      if (tags) munmap(tags, need);
      if (births) munmap(births, 2 * need);
      pthread_mutex_unlock(&pm->lock);
      return -1;
    }
    c->tags = tags;
    c->births = births;
    c->tag_bytes = need;
    c->next = pm->chunks;
    pm->chunks = c;
  }
  c->base = b;
  c->size = size;
  c->handle = handle;
  int err = pm->first ? pagemap_point(pm, c, c) : 0;
  if (err != 0) pagemap_point(pm, c, NULL); /* no granule may point at a dead record */
  if (err == 0) {
    c->live = true;
    if (!pm->first) {
      pm->first = c;
      pm->tags = c->tags;
      pm->base = b;
      pm->span = size;
    }
  }
  PH_ASSERT_EXPENSIVE(pagemap_check_chunks(pm) == 0);
  pthread_mutex_unlock(&pm->lock);
  return err;
}

void pagemap_remove(pagemap *pm, void *base) {
  pthread_mutex_lock(&pm->lock);
  for (pagemap_chunk *c = pm->chunks; c; c = c->next) {
    if (!c->live || c->base != (uintptr_t)base) continue;
    for (size_t i = 0; PINHEAP_ASSERT_LEVEL >= 1 && i < c->size >> pm->page_shift; i++)
      PH_ASSERT(atomic_load_explicit(&c->tags[i], memory_order_relaxed) == 0);
    pagemap_point(pm, c, NULL);
    c->live = false;
    if (c == pm->first) {
      pm->span = 0;
      pm->base = 0;
      pm->tags = NULL;
      pm->first = NULL;
    }
    break;
  }
  PH_ASSERT_EXPENSIVE(pagemap_check_chunks(pm) == 0);
  pthread_mutex_unlock(&pm->lock);
}

static void pagemap_fill(pagemap *pm, void *addr, size_t bytes, uint32_t tag) {
  PH_ASSERT(pagemap_within_chunk(pm, addr, bytes) && ((uintptr_t)addr | bytes) % ((size_t)1 << pm->page_shift) == 0);
  _Atomic uint32_t *slot = pagemap_slot(pm, addr);
  size_t n = bytes >> pm->page_shift;
  for (size_t i = 0; i < n; i++) atomic_store_explicit(&slot[i], tag, memory_order_relaxed);
  atomic_thread_fence(memory_order_release);
}

void pagemap_set_small(pagemap *pm, void *addr, size_t bytes) { pagemap_fill(pm, addr, bytes, PAGEMAP_SMALL); }

void pagemap_clear(pagemap *pm, void *addr, size_t bytes) { pagemap_fill(pm, addr, bytes, 0); }

void pagemap_fill_returned(pagemap *pm, void *addr, size_t bytes) { pagemap_fill(pm, addr, bytes, PAGEMAP_RETURNED); }

void pagemap_set_fine(pagemap *pm, void *addr, size_t npages, unsigned c) {
  PH_ASSERT(pagemap_within_chunk(pm, addr, npages << pm->page_shift));
  _Atomic uint32_t *slot = pagemap_slot(pm, addr);
  for (size_t i = 0; i < npages; i++) atomic_store_explicit(&slot[i], PAGEMAP_FINE(c, i), memory_order_relaxed);
  atomic_thread_fence(memory_order_release);
}

void pagemap_set_large(pagemap *pm, void *addr, size_t npages) {
  PH_ASSERT(npages >= 1 && npages <= PAGEMAP_MAX_PAGES && pagemap_within_chunk(pm, addr, npages << pm->page_shift));
  atomic_store_explicit(pagemap_slot(pm, addr), (uint32_t)(npages << 1), memory_order_release);
}

bool pagemap_resize_large(pagemap *pm, void *addr, size_t old_pages, size_t new_pages) {
  uint32_t expect = (uint32_t)(old_pages << 1);
  return atomic_compare_exchange_strong(pagemap_slot(pm, addr), &expect, (uint32_t)(new_pages << 1));
}

size_t pagemap_take_large(_Atomic uint32_t *slot) {
  uint32_t tag = atomic_load_explicit(slot, memory_order_acquire);
  while (tag >= 2 && !(tag & 1)) {
    if (atomic_compare_exchange_weak(slot, &tag, 0)) return tag >> 1;
  }
  return 0;
}

const pagemap_chunk *pagemap_next_live(pagemap *pm, const pagemap_chunk *c) {
  pthread_mutex_lock(&pm->lock);
  const pagemap_chunk *n = c ? c->next : pm->chunks;
  while (n && !n->live) n = n->next;
  pthread_mutex_unlock(&pm->lock);
  return n;
}

void pagemap_walk_large(pagemap *pm, void (*visit)(void *addr, size_t bytes, void *arg), void *arg) {
  pthread_mutex_lock(&pm->lock);
  for (pagemap_chunk *c = pm->chunks; c; c = c->next) {
    if (!c->live) continue;
    size_t npages = c->size >> pm->page_shift;
    for (size_t i = 0; i < npages; i++) {
      uint32_t tag = atomic_load_explicit(&c->tags[i], memory_order_acquire);
      /* A length past the chunk is no block (pagemap_check says so). */
      if (tag < 2 || (tag & 1) || (tag >> 1) > npages - i) continue;
      visit((void *)(c->base + (i << pm->page_shift)), (size_t)(tag >> 1) << pm->page_shift, arg);
      i += (tag >> 1) - 1;
    }
  }
  pthread_mutex_unlock(&pm->lock);
}

size_t pagemap_count_pages(pagemap *pm, size_t *fine) {
  size_t n = 0, f = 0;
  pthread_mutex_lock(&pm->lock);
  for (pagemap_chunk *c = pm->chunks; c; c = c->next) {
    if (!c->live) continue;
    for (size_t i = 0; i < c->size >> pm->page_shift; i++) {
      uint32_t tag = atomic_load_explicit(&c->tags[i], memory_order_relaxed);
      n += PAGEMAP_IS_SMALL(tag) || tag == PAGEMAP_RETURNED;
      f += PAGEMAP_IS_FINE(tag);
    }
  }
  pthread_mutex_unlock(&pm->lock);
  *fine = f;
  return n;
}

size_t pagemap_count_jemalloc_pages(pagemap *pm) {
  size_t fine;
  return pagemap_count_pages(pm, &fine);
}

int pagemap_check(pagemap *pm, size_t large_blocks, size_t large_pages) {
  size_t blocks = 0, pages = 0;
  pthread_mutex_lock(&pm->lock);
  int broken = pagemap_check_chunks(pm);
  for (pagemap_chunk *c = pm->chunks; c; c = c->next) {
    size_t npages = c->size >> pm->page_shift;
    if (!c->live) continue;
    for (size_t i = 0; i < npages; i++) {
      uint32_t tag = atomic_load_explicit(&c->tags[i], memory_order_relaxed);
      if (tag < 2 || tag == PAGEMAP_RETURNED || PAGEMAP_IS_SMALL(tag) || PAGEMAP_IS_FINE(tag)) continue;
      if (tag & 1) {
        fprintf(stderr, "pagemap: page %zu of chunk %#lx holds tag %#x, should be 0, small, RETURNED, fine or a length\n", i,
                (unsigned long)c->base, tag);
        broken++;
        continue;
      }
      size_t n = tag >> 1;
      blocks++;
      pages += n;
      if (i + n > npages) {
        fprintf(stderr, "pagemap: large block at page %zu of %zu pages should end inside its chunk\n", i, n);
        broken++;
        continue;
      }
      for (size_t j = i + 1; j < i + n; j++) {
        if (atomic_load_explicit(&c->tags[j], memory_order_relaxed) != 0) {
          fprintf(stderr, "pagemap: page %zu inside the large block at page %zu should hold 0\n", j, i);
          broken++;
          break;
        }
      }
      i += n - 1;
    }
  }
  pthread_mutex_unlock(&pm->lock);
  if (blocks != large_blocks || pages != large_pages) {
    fprintf(stderr, "pagemap: %zu large blocks of %zu pages found, %zu of %zu counted\n", blocks, pages,
            large_blocks, large_pages);
    broken++;
  }
  return broken;
}
