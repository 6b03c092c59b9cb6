#include "fine.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "error.h"
#include "ph_assert.h"

_Static_assert(FINE_CLASSES < 255, "a fine tag holds the class + 1 in 8 bits (pagemap.h)");
_Static_assert(FINE_STACK_MIN <= FINE_STACK_BYTES / (FINE_MIN + FINE_BUCKET), "fine_fill's array holds half a stack");
_Static_assert(FINE_WIDE_SIZE(FINE_WIDE_CLASSES - 2) < FINE_MAX && FINE_WIDE_SIZE(FINE_WIDE_CLASSES - 1) >= FINE_MAX,
               "the last wide class is the first to reach FINE_MAX");

/* The size of class c: 64 B steps up to FINE_GAP_MIN, then FINE_WIDE_STEP
 * steps from FINE_GAP_MAX, the last class FINE_MAX. */
static uint32_t fine_class_size(unsigned c) {
  if (c < FINE_STEPS) return (uint32_t)(FINE_MIN + FINE_BUCKET * (c + 1));
  size_t size = FINE_WIDE_SIZE(c - FINE_STEPS);
  return (uint32_t)(size < FINE_MAX ? size : FINE_MAX);
}

/* How many objects of size bytes a front's stack holds. */
static uint32_t fine_stack_cap(size_t size) {
  size_t cap = FINE_STACK_BYTES / size;
  return (uint32_t)(cap > FINE_STACK_MIN ? cap : FINE_STACK_MIN);
}

int fine_open(fine *f, space *s, size_t page) {
  f->space = s;
  f->page = page;
  f->page_shift = (unsigned)__builtin_ctzll(page);
  f->front_bytes = 0;
  for (unsigned c = 0; c < FINE_CLASSES; c++) {
    fine_class *k = &f->classes[c];
    k->size = fine_class_size(c);
    /* The least waste per byte of slab, and the fewest pages among equals:
     * a slab's tail is lost to every class, while its free slots serve its
     * own (with 4 KiB pages at most 1.6 %, 12 of the 20 classes none). */
    size_t best = 0, best_waste = 0;
    for (size_t n = 1; n <= FINE_SLAB_PAGES; n++) {
      size_t objects = n * page / k->size;
      if (objects > FINE_SLAB_OBJECTS) objects = FINE_SLAB_OBJECTS;
      if (objects < 2) continue;
      size_t waste = n * page - objects * k->size;
      if (!best || waste * best < best_waste * n) best = n, best_waste = waste;
    }
    if (!best) {
      error_set(ENOSYS, "pinheap_create: a %zu-byte page holds no slab of %u-byte objects", page, k->size);
      return -1;
    }
    k->pages = (uint32_t)best;
    size_t objects = best * page / k->size;
    k->objects = (uint32_t)(objects < FINE_SLAB_OBJECTS ? objects : FINE_SLAB_OBJECTS);
    k->magic = (uint32_t)(((uint64_t)1 << 32) / k->size + 1);
    k->partial = k->full = k->spare = NULL;
    k->slabs = k->live = 0;
    meta_init(&k->records, sizeof(fine_slab));
    pthread_mutex_init(&k->lock, NULL);
    f->front_bytes += sizeof(void *) * fine_stack_cap(k->size);
  }
  for (size_t i = 0; i < sizeof f->class_of; i++) {
    size_t n = FINE_MIN + FINE_BUCKET * (i + 1); /* the bucket's largest size */
    unsigned c = 0;
    while (f->classes[c].size < n) c++;
    f->class_of[i] = (uint8_t)c;
  }
  f->front_bytes += sizeof(fine_front);
  return 0;
}

void fine_close(fine *f) {
  for (unsigned i = 0; i < FINE_FRONTS; i++) {
    fine_front *fr = atomic_load_explicit(&f->fronts[i], memory_order_relaxed);
    if (fr) munmap(fr, f->front_bytes);
  }
  for (unsigned c = 0; c < FINE_CLASSES; c++) {
    meta_fini(&f->classes[c].records);
    pthread_mutex_destroy(&f->classes[c].lock);
  }
}

fine_front *fine_front_make(fine *f, unsigned slot) {
  if (slot >= FINE_FRONTS) return NULL;
  fine_front *fr = mmap(NULL, f->front_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (fr == MAP_FAILED) return NULL;
  void **slots = (void **)(fr + 1);
  for (unsigned c = 0; c < FINE_CLASSES; c++) {
    uint32_t cap = fine_stack_cap(f->classes[c].size);
    fr->stacks[c] = (thread_bin){.slots = slots, .count = 0, .limit = cap, .cap = cap};
    slots += cap;
  }
  /* Only the owner of the slot's cache makes its front. */
  atomic_store_explicit(&f->fronts[slot], fr, memory_order_release);
  return fr;
}

/* List helpers: the class's lock held. */
static void fine_unlink(fine_slab **list, fine_slab *s) {
  if (s->prev)
    s->prev->next = s->next;
  else
    *list = s->next;
  if (s->next) s->next->prev = s->prev;
  s->prev = s->next = NULL;
}

static void fine_link(fine_slab **list, fine_slab *s) {
  s->prev = NULL;
  s->next = *list;
  if (*list) (*list)->prev = s;
  *list = s;
}

/* The extent of the slab s back to the manager, its tags and record gone. */
static void fine_give_back(fine *f, fine_class *k, fine_slab *s) {
  size_t bytes = (size_t)k->pages << f->page_shift;
  pagemap_set_record(&f->space->pm, (void *)s->base, NULL);
  pagemap_clear(&f->space->pm, (void *)s->base, bytes);
  em_free_result r = em_free(&f->space->em, (void *)s->base, bytes);
  if (r != EM_FREED)
    error_fatal("pinheap_free(%p): a fine slab's extent %s", (void *)s->base,
                r == EM_NO_METADATA ? "found no memory for the heap's metadata" : "overlaps free space");
  meta_free(&k->records, s);
  k->slabs--;
}

/* A new slab of class c, all free, on no list; NULL when the manager (or
 * the system, for its record) has no room. The class's lock held. */
static fine_slab *fine_new_slab(fine *f, unsigned c) {
  fine_class *k = &f->classes[c];
  fine_slab *s = meta_alloc(&k->records);
  if (!s) return NULL;
  bool pristine;
  void *p = hooks_take(&f->space->grants, (size_t)k->pages << f->page_shift, f->page, false, &pristine);
  if (!p) {
    meta_free(&k->records, s);
    return NULL;
  }
  *s = (fine_slab){.base = (uintptr_t)p,
                   .free = k->objects == 64 ? ~(uint64_t)0 : ((uint64_t)1 << k->objects) - 1,
                   .nfree = k->objects,
                   .cls = (uint8_t)c};
  pagemap_set_record(&f->space->pm, p, s);
  pagemap_set_fine(&f->space->pm, p, k->pages, c);
  k->slabs++;
  return s;
}

/* A slab of class c with a free object, on the partial list: the first
 * partial one, the spare, or a new one. NULL: no room. Lock held. */
static fine_slab *fine_slab_with_room(fine *f, unsigned c) {
  fine_class *k = &f->classes[c];
  fine_slab *s = k->partial;
  if (s) return s;
  s = k->spare;
  k->spare = NULL;
  if (!s && !(s = fine_new_slab(f, c))) return NULL;
  fine_link(&k->partial, s);
  return s;
}

/* Takes up to n objects of class c from its slabs into out; returns how
 * many. Lock held. */
static unsigned fine_take(fine *f, unsigned c, void **out, unsigned n) {
  fine_class *k = &f->classes[c];
  unsigned got = 0;
  while (got < n) {
    fine_slab *s = fine_slab_with_room(f, c);
    if (!s) break;
    while (got < n && s->free) {
      unsigned i = (unsigned)__builtin_ctzll(s->free);
      s->free &= s->free - 1;
      s->nfree--;
      out[got++] = (void *)(s->base + (uintptr_t)i * k->size);
    }
    if (!s->free) {
      fine_unlink(&k->partial, s);
      fine_link(&k->full, s);
    }
  }
  k->live += got;
  return got;
}

/* The object p of class c back into its slab. Lock held. */
static void fine_put(fine *f, unsigned c, void *p) {
  fine_class *k = &f->classes[c];
  pagemap *pm = &f->space->pm;
  uint32_t tag = pagemap_get(pm, p);
  uintptr_t head = ((uintptr_t)p & ~(uintptr_t)(f->page - 1)) - ((uintptr_t)PAGEMAP_FINE_PAGE(tag) << f->page_shift);
  fine_slab *s = pagemap_record(pm, (void *)head);
  unsigned i = (unsigned)(((uint64_t)((uintptr_t)p - head) * k->magic) >> 32);
  PH_ASSERT(s && s->base == head && s->cls == c && i < k->objects);
  uint64_t bit = (uint64_t)1 << i;
  if (s->free & bit) error_fatal("pinheap_free(%p): block freed already (a double free)", p);
  if (f->mark) util_mark(p, f->mark);
  if (!s->free) {
    fine_unlink(&k->full, s);
    fine_link(&k->partial, s);
  }
  s->free |= bit;
  k->live--;
  if (++s->nfree < k->objects) return;
  fine_unlink(&k->partial, s);
  if (k->spare) {
    fine_give_back(f, k, s);
  } else {
    k->spare = s;
  }
}

void *fine_fill(fine *f, fine_front *fr, unsigned c) {
  fine_class *k = &f->classes[c];
  void *got[FINE_STACK_BYTES / (FINE_MIN + FINE_BUCKET)]; /* half the largest stack (FINE_STACK_MIN is less) */
  /* Half a stack, and never more than the stack has room for. */
  unsigned want = fr ? fr->stacks[c].cap / 2 : 1;
  if (fr && want > fr->stacks[c].cap - fr->stacks[c].count + 1) want = fr->stacks[c].cap - fr->stacks[c].count + 1;
  pthread_mutex_lock(&k->lock);
  unsigned n = fine_take(f, c, got, want);
  pthread_mutex_unlock(&k->lock);
  if (!n) return NULL;
  /* The first taken is handed out; the others wait on the stack, in
   * address order from the top. */
  for (unsigned i = n - 1; i >= 1; i--) {
    if (f->fill_mark) util_mark(got[i], f->fill_mark);
    fr->stacks[c].slots[fr->stacks[c].count] = got[i];
    thread_bin_set_count(&fr->stacks[c], fr->stacks[c].count + 1);
  }
  if (f->fill_mark) memset(got[0], 0, sizeof f->fill_mark);
  return got[0];
}

void fine_spill(fine *f, fine_front *fr, unsigned c, void *p) {
  fine_class *k = &f->classes[c];
  pthread_mutex_lock(&k->lock);
  if (fr) {
    thread_bin *b = &fr->stacks[c];
    for (uint32_t i = 0; i < thread_bin_older(b); i++) fine_put(f, c, b->slots[i]);
    thread_bin_drop_older(b);
    b->slots[b->count] = p;
    thread_bin_set_count(b, b->count + 1);
  } else {
    fine_put(f, c, p);
  }
  pthread_mutex_unlock(&k->lock);
}

void fine_drain(fine *f, unsigned slot) {
  fine_front *fr = slot < FINE_FRONTS ? atomic_load_explicit(&f->fronts[slot], memory_order_acquire) : NULL;
  if (!fr) return;
  for (unsigned c = 0; c < FINE_CLASSES; c++) {
    thread_bin *b = &fr->stacks[c];
    if (!b->count) continue;
    pthread_mutex_lock(&f->classes[c].lock);
    for (uint32_t n = b->count; n; n--) {
      fine_put(f, c, b->slots[n - 1]);
      thread_bin_set_count(b, n - 1);
    }
    pthread_mutex_unlock(&f->classes[c].lock);
  }
}

void fine_reclaim(fine *f) {
  for (unsigned c = 0; c < FINE_CLASSES; c++) {
    fine_class *k = &f->classes[c];
    pthread_mutex_lock(&k->lock);
    if (k->spare) fine_give_back(f, k, k->spare);
    k->spare = NULL;
    pthread_mutex_unlock(&k->lock);
  }
}

void fine_counts(fine *f, size_t *allocated, size_t *slab_bytes) {
  *allocated = *slab_bytes = 0;
  for (unsigned c = 0; c < FINE_CLASSES; c++) {
    fine_class *k = &f->classes[c];
    pthread_mutex_lock(&k->lock);
    *allocated += k->live * k->size;
    *slab_bytes += (k->slabs * k->pages) << f->page_shift;
    pthread_mutex_unlock(&k->lock);
  }
}

size_t fine_front_bytes(fine *f) {
  size_t bytes = 0;
  for (unsigned slot = 0; slot < FINE_FRONTS; slot++) {
    const fine_front *fr = atomic_load_explicit(&f->fronts[slot], memory_order_acquire);
    for (unsigned c = 0; fr && c < FINE_CLASSES; c++)
      bytes += (size_t)thread_bin_load_count(&fr->stacks[c]) * f->classes[c].size;
  }
  return bytes;
}

/* Number of broken invariants of the slabs of one list (full: holding no
 * free object; partial; spare: all free); counts them into *slabs and
 * their handed-out objects into *used. Lock held. */
static int fine_check_list(fine *f, unsigned c, const fine_slab *s, const char *list, size_t *slabs, size_t *used) {
  const fine_class *k = &f->classes[c];
  const pagemap *pm = &f->space->pm;
  uint64_t all = k->objects == 64 ? ~(uint64_t)0 : ((uint64_t)1 << k->objects) - 1;
  int broken = 0;
  for (const fine_slab *prev = NULL; s; prev = s, s = s->next) {
    bool fits = list[0] == 'f' ? s->nfree == 0 : list[0] == 's' ? s->nfree == k->objects
                                                                : s->nfree > 0 && s->nfree < k->objects;
    bool tags = pagemap_within_chunk(pm, (void *)s->base, (size_t)k->pages << f->page_shift) &&
                pagemap_record(pm, (void *)s->base) == s;
    for (unsigned i = 0; tags && i < k->pages; i++)
      tags = pagemap_get(pm, (void *)(s->base + ((uintptr_t)i << f->page_shift))) == PAGEMAP_FINE(c, i);
    if (s->cls != c || s->prev != prev || (s->free & ~all) || (unsigned)__builtin_popcountll(s->free) != s->nfree ||
        !fits || !tags || s->base & (f->page - 1)) {
      fprintf(stderr,
              "fine: slab %#lx of class %u (%u-byte objects) on the %s list: class %u, %u free (mask %#llx), "
              "tags and record %s; should be on the list its free objects say, tagged, and linked back\n",
              (unsigned long)s->base, c, k->size, list, s->cls, s->nfree, (unsigned long long)s->free,
              tags ? "right" : "wrong");
      broken++;
    }
    ++*slabs;
    *used += k->objects - s->nfree;
    if (*slabs > k->slabs) break; /* a cycle */
  }
  return broken;
}

int fine_check(fine *f, size_t tagged) {
  int broken = 0;
  size_t pages = 0;
  for (unsigned c = 0; c < FINE_CLASSES; c++) {
    fine_class *k = &f->classes[c];
    pthread_mutex_lock(&k->lock);
    size_t slabs = 0, used = 0;
    broken += fine_check_list(f, c, k->full, "full", &slabs, &used);
    broken += fine_check_list(f, c, k->partial, "partial", &slabs, &used);
    if (k->spare && k->spare->next) {
      fprintf(stderr, "fine: class %u's spare slab should be on no list\n", c);
      broken++;
    }
    broken += fine_check_list(f, c, k->spare, "spare", &slabs, &used);
    if (slabs != k->slabs || used != k->live || k->records.live != k->slabs) {
      fprintf(stderr, "fine: class %u: %zu slabs and %zu objects out found, %zu and %zu counted, %zu records\n", c,
              slabs, used, k->slabs, k->live, k->records.live);
      broken++;
    }
    broken += meta_check(&k->records);
    pages += k->slabs * k->pages;
    pthread_mutex_unlock(&k->lock);
  }
  if (tagged != pages) {
    fprintf(stderr, "fine: %zu pages hold a fine tag, the slabs have %zu\n", tagged, pages);
    broken++;
  }
  return broken;
}
