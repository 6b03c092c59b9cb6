/* longer than 600 lines: one structure, the free extents of every region, and
 * the placements over it, which share its searches and its carving. */
#include "em.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ph_assert.h"
#include "util.h"

/* Records kept spare by every allocation: one for its own carve, the rest for
 * frees that merge with nothing, so that a free needs no memory from the
 * system unless many come in a row without an allocation between. */
#define EM_RESERVE 16

/* Above the height of any AVL tree that fits in memory (1.44 log2 n). */
#define EM_MAX_HEIGHT 96

#define EM_OF_ADDR(n) PH_CONTAINER_OF(n, em_extent, by_addr)
#define EM_OF_SIZE(n) PH_CONTAINER_OF(n, em_extent, by_size)
#define EM_REGION_OF(n) PH_CONTAINER_OF(n, em_region, by_base)

/* em_check with the lock held: the expensive assertions after each change. */
static int em_check_locked(em *m);

static int em_cmp_addr(const tree_node *a, const tree_node *b) {
  uintptr_t x = EM_OF_ADDR(a)->addr, y = EM_OF_ADDR(b)->addr;
  return (x > y) - (x < y);
}

static int em_cmp_size(const tree_node *a, const tree_node *b) {
  const em_extent *x = EM_OF_SIZE(a), *y = EM_OF_SIZE(b);
  if (x->size != y->size) return x->size < y->size ? -1 : 1;
  return (x->addr > y->addr) - (x->addr < y->addr);
}

static size_t em_size_of(const tree_node *n) { return EM_OF_SIZE(n)->size; }

static int em_cmp_region(const tree_node *a, const tree_node *b) {
  uintptr_t x = EM_REGION_OF(a)->base, y = EM_REGION_OF(b)->base;
  return (x > y) - (x < y);
}

static size_t em_largest_below(const tree_node *n) { return n ? EM_OF_ADDR(n)->largest_below : 0; }

static bool em_update_addr(tree_node *n) {
  em_extent *e = EM_OF_ADDR(n);
  size_t l = em_largest_below(n->left), r = em_largest_below(n->right);
  size_t m = e->size;
  if (l > m) m = l;
  if (r > m) m = r;
  bool changed = e->largest_below != m;
  e->largest_below = m;
  return changed;
}

/* After a change of free_bytes or capacity. Lock held. */
static void em_publish(em *m) {
  atomic_store_explicit(&m->free_hint, m->free_bytes, memory_order_relaxed);
  atomic_store_explicit(&m->capacity_hint, m->capacity, memory_order_relaxed);
}

int em_init(em *m, em_policy policy, size_t page, size_t small_max, size_t ring_min) {
  memset(m, 0, sizeof *m);
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP);
  int err = pthread_mutex_init(&m->lock, &attr);
  pthread_mutexattr_destroy(&attr);
  if (err) return -1;
  m->policy = policy;
  m->page = page;
  m->small_max = small_max;
  m->ring_min = ring_min > small_max ? ring_min : small_max + page;
  tree_init(&m->by_addr, em_cmp_addr, em_update_addr);
  sizeidx_init(&m->by_size, page, em_cmp_size, em_size_of);
  tree_init(&m->regions, em_cmp_region, NULL);
  meta_init(&m->extent_pool, sizeof(em_extent));
  meta_init(&m->region_pool, sizeof(em_region));
  return 0;
}

void em_fini(em *m) {
  meta_fini(&m->extent_pool);
  meta_fini(&m->region_pool);
  pthread_mutex_destroy(&m->lock);
}

/* Takes the lock, counting in waits whether it was held. */
static void em_lock(em *m) {
  if (pthread_mutex_trylock(&m->lock) == 0) return;
  pthread_mutex_lock(&m->lock);
  atomic_fetch_add_explicit(&m->waits, 1, memory_order_relaxed);
}

/* The region holding addr, or NULL. Lock held. */
static em_region *em_region_at(const em *m, uintptr_t addr) {
  em_region key = {.base = addr};
  tree_node *n = tree_floor(&m->regions, &key.by_base);
  if (!n) return NULL;
  em_region *r = EM_REGION_OF(n);
  return addr < r->end ? r : NULL;
}

static void em_insert_free(em *m, em_extent *e) {
  tree_insert(&m->by_addr, &e->by_addr);
  sizeidx_insert(&m->by_size, &e->by_size);
}

static void em_remove_free(em *m, em_extent *e) {
  tree_remove(&m->by_addr, &e->by_addr);
  sizeidx_remove(&m->by_size, &e->by_size);
  meta_free(&m->extent_pool, e);
}

/* Changes a free extent's range in place. The new range must not pass any
 * other free extent, so its position in by_addr stays right. */
static void em_resize_free(em *m, em_extent *e, uintptr_t addr, size_t size) {
  sizeidx_remove(&m->by_size, &e->by_size);
  e->addr = addr;
  e->size = size;
  sizeidx_insert(&m->by_size, &e->by_size);
  tree_refresh(&m->by_addr, &e->by_addr);
}

static em_extent *em_new_free(em *m, em_region *r, uintptr_t addr, size_t size) {
  em_extent *e = meta_alloc(&m->extent_pool);
  if (!e) return NULL;
  e->addr = addr;
  e->size = size;
  e->region = r;
  em_insert_free(m, e);
  return e;
}

int em_add_region(em *m, void *base, size_t size, bool zeroed) {
  uintptr_t b = (uintptr_t)base;
  if (size == 0 || (b & (m->page - 1)) || (size & (m->page - 1)) || b + size < b) {
    errno = EINVAL;
    return -1;
  }
  pthread_mutex_lock(&m->lock);
  em_region key = {.base = b + size - 1};
  tree_node *below = tree_floor(&m->regions, &key.by_base);
  if (below && EM_REGION_OF(below)->end > b) {
    pthread_mutex_unlock(&m->lock);
    errno = EINVAL;
    return -1;
  }
  em_region *r = NULL;
  if (meta_reserve(&m->extent_pool, 1) != 0 || !(r = meta_alloc(&m->region_pool))) {
    pthread_mutex_unlock(&m->lock);
    errno = ENOMEM;
    return -1;
  }
  r->base = r->pristine_lo = r->bump = b;
  r->end = b + size;
  r->pristine_hi = zeroed ? r->end : b;
  tree_insert(&m->regions, &r->by_base);
  if (m->policy != EM_BUMP) em_new_free(m, r, b, size);
  m->capacity += size;
  m->free_bytes += size;
  em_publish(m);
  PH_ASSERT_EXPENSIVE(em_check_locked(m) == 0);
  pthread_mutex_unlock(&m->lock);
  return 0;
}

int em_remove_region(em *m, void *base) {
  uintptr_t b = (uintptr_t)base;
  int res = -1;
  pthread_mutex_lock(&m->lock);
  em_region *r = em_region_at(m, b);
  if (r && r->base == b && m->policy != EM_BUMP) {
    em_extent key = {.addr = b};
    tree_node *n = tree_ceil(&m->by_addr, &key.by_addr);
    em_extent *e = n ? EM_OF_ADDR(n) : NULL;
    if (e && e->addr == b && e->size == r->end - r->base) {
      em_remove_free(m, e);
      tree_remove(&m->regions, &r->by_base);
      if (m->rover > r->base && m->rover <= r->end) m->rover = 0;
      m->capacity -= r->end - r->base;
      m->free_bytes -= r->end - r->base;
      em_publish(m);
      meta_free(&m->region_pool, r);
      res = 0;
    }
  }
  PH_ASSERT_EXPENSIVE(em_check_locked(m) == 0);
  pthread_mutex_unlock(&m->lock);
  return res;
}

/* Marks [s, e) as handed out: the pristine range keeps its larger part
 * outside [s, e). Returns whether [s, e) was wholly pristine. */
static bool em_touch(em_region *r, uintptr_t s, uintptr_t e) {
  bool pristine = s >= r->pristine_lo && e <= r->pristine_hi;
  if (s < r->pristine_hi && e > r->pristine_lo) {
    uintptr_t below = s > r->pristine_lo ? s - r->pristine_lo : 0;
    uintptr_t above = r->pristine_hi > e ? r->pristine_hi - e : 0;
    if (below >= above)
      r->pristine_hi = r->pristine_lo + below;
    else
      r->pristine_lo = e;
  }
  return pristine;
}

static void em_note_use(em *m, size_t bytes) {
  m->free_bytes -= bytes;
  if (m->capacity - m->free_bytes > m->peak_in_use) m->peak_in_use = m->capacity - m->free_bytes;
  em_publish(m);
}

/*
 * Carves [start, start + size) out of the free extent e (one node is reserved).
 *   [ lead ][ taken ][ trail ]  =>  e keeps lead, a new node gets trail.
 */
static void em_carve(em *m, em_extent *e, uintptr_t start, size_t size) {
  uintptr_t lead = start - e->addr;
  uintptr_t trail = e->addr + e->size - (start + size);
  em_region *r = e->region;
  if (lead == 0 && trail == 0)
    em_remove_free(m, e);
  else if (lead == 0)
    em_resize_free(m, e, start + size, trail);
  else {
    em_resize_free(m, e, e->addr, lead);
    if (trail) em_new_free(m, r, start + size, trail);
  }
  em_note_use(m, size);
}

/* The highest-addressed free extent of at least size bytes. */
static em_extent *em_highest_fit(const em *m, size_t size) {
  tree_node *n = m->by_addr.root;
  while (n) {
    if (em_largest_below(n->right) >= size)
      n = n->right;
    else if (EM_OF_ADDR(n)->size >= size)
      return EM_OF_ADDR(n);
    else if (em_largest_below(n->left) >= size)
      n = n->left;
    else
      return NULL;
  }
  return NULL;
}

/* The lowest-addressed free extent of at least size bytes in the subtree
 * at n. O(log n). */
static em_extent *em_leftmost_fit(tree_node *n, size_t size) {
  while (n && em_largest_below(n) >= size) {
    if (em_largest_below(n->left) >= size)
      n = n->left;
    else if (EM_OF_ADDR(n)->size >= size)
      return EM_OF_ADDR(n);
    else
      n = n->right;
  }
  return NULL;
}

/* The lowest-addressed free extent at or above from of at least size bytes,
 * or NULL. The path towards from passes, where it turns left, the nodes at
 * or above from whose right subtrees lie wholly above from; they are tried
 * from the lowest up, and one descent enters the first with room: O(log n). */
static em_extent *em_lowest_fit(const em *m, uintptr_t from, size_t size) {
  tree_node *above[EM_MAX_HEIGHT];
  size_t k = 0;
  for (tree_node *n = m->by_addr.root; n;) {
    if (EM_OF_ADDR(n)->addr < from) {
      n = n->right;
    } else {
      above[k++] = n;
      n = n->left;
    }
  }
  while (k--) {
    if (EM_OF_ADDR(above[k])->size >= size) return EM_OF_ADDR(above[k]);
    if (em_largest_below(above[k]->right) >= size) return em_leftmost_fit(above[k]->right, size);
  }
  return NULL;
}

/* Whether e holds an extent of size bytes (at most e->size) aligned to align:
 * the first aligned address in it leaves room enough. */
static bool em_holds_aligned(const em_extent *e, size_t size, size_t align) {
  uintptr_t start = (e->addr + align - 1) & ~(uintptr_t)(align - 1);
  return start >= e->addr && start - e->addr <= e->size - size;
}

/*
 * When no free extent has size + align - page bytes (which any alignment
 * fits): the extent the policy would choose among those that hold an aligned
 * piece of size bytes, or NULL. Such an extent is between size and
 * size + align - page bytes long: they are visited in size order, so this
 * costs O(k log n) for the k of them, and runs only when the allocation
 * would fail otherwise. Large: the smallest, ties the lowest address. Small:
 * the smallest of at most small_max bytes, ties the highest address; else
 * the highest-addressed.
 */
static em_extent *em_aligned_fit(const em *m, size_t size, size_t align) {
  bool small = size <= m->small_max;
  em_extent key = {.addr = 0, .size = size}, *best = NULL;
  for (tree_node *n = sizeidx_ceil(&m->by_size, &key.by_size); n; n = sizeidx_next(&m->by_size, n)) {
    em_extent *e = EM_OF_SIZE(n);
    if (best && (!small || (best->size <= m->small_max && e->size != best->size))) break;
    if (!em_holds_aligned(e, size, align)) continue;
    if (!small || e->size <= m->small_max || !best || e->addr > best->addr) best = e;
  }
  return best;
}

/* Whether EM_RING may take a request of need bytes from the bottom of e:
 * top, the highest free extent of at least ring_min bytes (the one that
 * meets the blocks placed from the top when they grow down), must keep
 * twice ring_min above it, so that those blocks find room there rather
 * than between arrays. */
static bool em_ring_room(const em *m, const em_extent *e, const em_extent *top, size_t need) {
  return e && e->size >= need && (e != top || e->size - need >= 2 * m->ring_min);
}

/* EM_RING's extent for a request of at least ring_min bytes (any free
 * extent of need bytes holds it aligned; it is carved from the bottom): the
 * free extent holding the pointer, else the lowest-addressed one above it,
 * else (wrapping round) the lowest-addressed one, each only with room as
 * em_ring_room says; when none has that room, the one above the pointer or
 * round that has need bytes. NULL when none has need bytes. */
static em_extent *em_ring_fit(const em *m, size_t need) {
  em_extent *top = em_highest_fit(m, m->ring_min);
  em_extent key = {.addr = m->rover};
  tree_node *n = m->rover ? tree_floor(&m->by_addr, &key.by_addr) : NULL;
  em_extent *e = n && EM_OF_ADDR(n)->addr + EM_OF_ADDR(n)->size > m->rover ? EM_OF_ADDR(n) : NULL;
  if (em_ring_room(m, e, top, need)) return e;
  em_extent *above = em_lowest_fit(m, m->rover, need);
  if (em_ring_room(m, above, top, need)) return above;
  em_extent *round = em_lowest_fit(m, 0, need);
  if (em_ring_room(m, round, top, need)) return round;
  return above ? above : round;
}

/* Places size bytes by policy's rules (m's own, or EM_TWO_ENDED for a move
 * under EM_RING: see em_move); low: at the bottom of the lowest free
 * extent that fits, whatever the policy (em_alloc_low). */
static void *em_alloc_free_list(em *m, em_policy policy, size_t size, size_t align, bool low, bool *pristine) {
  /* Any free extent of need bytes holds an aligned piece: one O(log n)
   * search in the common case. */
  size_t need = size + (align - m->page);
  /* EM_RING: all but the ring's extents are placed as small ones, at the
   * top, out of the ring's way. */
  bool ring = !low && policy == EM_RING && size >= m->ring_min;
  bool small = !low && (size <= m->small_max || (policy == EM_RING && !ring));
  em_extent *e = NULL;
  if (need < size) {
    e = em_aligned_fit(m, size, align);
  } else if (ring) {
    e = em_ring_fit(m, need);
  } else if ((policy == EM_FIRST_FIT || low) && !small) {
    e = em_lowest_fit(m, 0, need);
  } else {
    em_extent key = {.addr = 0, .size = need};
    tree_node *n = sizeidx_ceil(&m->by_size, &key.by_size);
    e = n ? EM_OF_SIZE(n) : NULL;
    if (e && small) {
      /* Ties among small extents go to the highest; past them, the highest
       * extent that fits. */
      if (e->size <= m->small_max) {
        key.size = e->size;
        key.addr = UINTPTR_MAX;
        e = EM_OF_SIZE(sizeidx_floor(&m->by_size, &key.by_size));
      } else {
        e = em_highest_fit(m, need);
      }
    }
  }
  /* Only an alignment too large for any extent of need bytes comes here
   * (em_aligned_fit chose by the two-ended rules already). */
  if (!e && !(e = em_aligned_fit(m, size, align))) return NULL;
  uintptr_t start = small ? util_align_down(e->addr + e->size - size, align) : util_align_up(e->addr, align);
  if (ring) m->rover = start + size;
  *pristine = em_touch(e->region, start, start + size);
  em_carve(m, e, start, size);
  return (void *)start;
}

static void *em_alloc_bump(em *m, size_t size, size_t align, bool *pristine) {
  for (tree_node *n = tree_first(&m->regions); n; n = tree_next(&m->regions, n)) {
    em_region *r = EM_REGION_OF(n);
    uintptr_t start = (r->bump + align - 1) & ~(uintptr_t)(align - 1);
    if (start < r->bump || start > r->end || r->end - start < size) continue;
    *pristine = em_touch(r, start, start + size);
    em_note_use(m, start + size - r->bump);
    r->bump = start + size;
    return (void *)start;
  }
  return NULL;
}

static void *em_alloc_by(em *m, size_t size, size_t align, bool low, bool *pristine) {
  PH_ASSERT(size > 0 && size % m->page == 0 && util_is_pow2(align) && align >= m->page);
  if (size == 0 || (size & (m->page - 1)) || !util_is_pow2(align)) return NULL;
  if (align < m->page) align = m->page;
  bool zero = false;
  void *p = NULL;
  em_lock(m);
  if (m->policy == EM_BUMP)
    p = em_alloc_bump(m, size, align, &zero);
  else if (meta_reserve(&m->extent_pool, EM_RESERVE) == 0)
    p = em_alloc_free_list(m, m->policy, size, align, low, &zero);
  PH_ASSERT_EXPENSIVE(em_check_locked(m) == 0);
  pthread_mutex_unlock(&m->lock);
  if (pristine) *pristine = zero;
  return p;
}

void *em_alloc(em *m, size_t size, size_t align, bool *pristine) { return em_alloc_by(m, size, align, false, pristine); }

void *em_alloc_low(em *m, size_t size, size_t align, bool *pristine) { return em_alloc_by(m, size, align, true, pristine); }

bool em_alloc_at(em *m, void *addr, size_t size, bool *pristine) {
  uintptr_t a = (uintptr_t)addr;
  if (size == 0 || (size & (m->page - 1)) || (a & (m->page - 1)) || a + size < a) return false;
  bool ok = false, zero = false;
  em_lock(m);
  if (m->policy == EM_BUMP) {
    em_region *r = em_region_at(m, a);
    if (r && r->bump == a && r->end - a >= size) {
      zero = em_touch(r, a, a + size);
      em_note_use(m, size);
      r->bump = a + size;
      ok = true;
    }
  } else if (meta_reserve(&m->extent_pool, EM_RESERVE) == 0) {
    em_extent key = {.addr = a};
    tree_node *n = tree_floor(&m->by_addr, &key.by_addr);
    em_extent *e = n ? EM_OF_ADDR(n) : NULL;
    if (e && e->addr + e->size >= a + size) {
      zero = em_touch(e->region, a, a + size);
      em_carve(m, e, a, size);
      ok = true;
    }
  }
  PH_ASSERT_EXPENSIVE(em_check_locked(m) == 0);
  pthread_mutex_unlock(&m->lock);
  if (pristine) *pristine = zero;
  return ok;
}

static em_free_result em_free_two_ended(em *m, em_region *r, uintptr_t a, size_t size);

/* Takes [a, a + size), wholly inside one free extent. Lock held, a node
 * reserved. */
static void em_take(em *m, uintptr_t a, size_t size) {
  em_extent key = {.addr = a};
  em_extent *e = EM_OF_ADDR(tree_floor(&m->by_addr, &key.by_addr));
  em_touch(e->region, a, a + size);
  em_carve(m, e, a, size);
}

void *em_move(em *m, void *addr, size_t size, size_t new_size) {
  uintptr_t a = (uintptr_t)addr, q = 0;
  if (size == 0 || new_size == 0 || ((size | new_size | a) & (m->page - 1)) || a + size < a) return NULL;
  em_lock(m);
  em_region *r = em_region_at(m, a);
  /* One node for the free, one for the carve, two for the old extent's
   * pieces taken back. */
  if (m->policy != EM_BUMP && r && a + size <= r->end && meta_reserve(&m->extent_pool, EM_RESERVE) == 0 &&
      em_free_two_ended(m, r, a, size) == EM_FREED) {
    bool zero;
    /* A block that grows by moving is no array of the ring's: it lives on,
     * so it goes best fit, and the ring's pointer stays (see em.h). */
    em_policy policy = m->policy == EM_RING ? EM_TWO_ENDED : m->policy;
    q = (uintptr_t)em_alloc_free_list(m, policy, new_size, m->page, false, &zero);
    if (!q) {
      em_take(m, a, size);
    } else {
      /*   [ below ][ new ][ above ]: the parts of the old extent left out. */
      if (a < q) em_take(m, a, (q < a + size ? q : a + size) - a);
      if (a + size > q + new_size) {
        uintptr_t from = q + new_size > a ? q + new_size : a;
        em_take(m, from, a + size - from);
      }
    }
  }
  pthread_mutex_unlock(&m->lock);
  return (void *)q;
}

static em_free_result em_free_two_ended(em *m, em_region *r, uintptr_t a, size_t size) {
  em_extent key = {.addr = a};
  tree_node *pn, *nn;
  tree_around(&m->by_addr, &key.by_addr, &pn, &nn);
  em_extent *prev = pn ? EM_OF_ADDR(pn) : NULL;
  em_extent *next = nn ? EM_OF_ADDR(nn) : NULL;
  if ((prev && prev->addr + prev->size > a) || (next && next->addr < a + size)) return EM_ALREADY_FREE;
  bool join_prev = prev && prev->region == r && prev->addr + prev->size == a;
  bool join_next = next && next->region == r && next->addr == a + size;
  if (join_prev && join_next) {
    /* [ prev ][ freed ][ next ]  =>  [ ------- prev ------- ] */
    size_t total = prev->size + size + next->size;
    em_remove_free(m, next);
    em_resize_free(m, prev, prev->addr, total);
  } else if (join_prev) {
    /* [ prev ][ freed ]  =>  [ --- prev --- ] */
    em_resize_free(m, prev, prev->addr, prev->size + size);
  } else if (join_next) {
    /* [ freed ][ next ]  =>  [ --- next --- ] */
    em_resize_free(m, next, a, size + next->size);
  } else if (meta_reserve(&m->extent_pool, 1) != 0) {
    return EM_NO_METADATA;
  } else {
    em_new_free(m, r, a, size);
  }
  m->free_bytes += size;
  em_publish(m);
  return EM_FREED;
}

/* em_free's work, lock held, [a, a + size) page-aligned. */
static em_free_result em_free_locked(em *m, uintptr_t a, size_t size) {
  em_free_result res = EM_NOT_IN_REGION;
  em_region *r = em_region_at(m, a);
  if (r && a + size <= r->end) {
    if (m->policy != EM_BUMP) {
      res = em_free_two_ended(m, r, a, size);
    } else if (a + size <= r->bump) {
      m->abandoned += size;
      res = EM_FREED;
    } else {
      res = EM_ALREADY_FREE;
    }
  }
  PH_ASSERT_EXPENSIVE(em_check_locked(m) == 0);
  return res;
}

/* Whether [a, a + size) can be an extent at all. */
static bool em_well_formed(const em *m, uintptr_t a, size_t size) {
  return size != 0 && !(size & (m->page - 1)) && !(a & (m->page - 1)) && a + size >= a;
}

em_free_result em_free(em *m, void *addr, size_t size) {
  uintptr_t a = (uintptr_t)addr;
  if (!em_well_formed(m, a, size)) return EM_NOT_IN_REGION;
  em_lock(m);
  em_free_result res = em_free_locked(m, a, size);
  pthread_mutex_unlock(&m->lock);
  return res;
}

em_free_result em_try_free(em *m, void *addr, size_t size) {
  uintptr_t a = (uintptr_t)addr;
  if (!em_well_formed(m, a, size)) return EM_NOT_IN_REGION;
  if (pthread_mutex_trylock(&m->lock) != 0) return EM_BUSY;
  em_free_result res = em_free_locked(m, a, size);
  pthread_mutex_unlock(&m->lock);
  return res;
}

em_free_result em_free_many(em *m, void *const *addrs, const size_t *sizes, size_t n, size_t *failed) {
  em_free_result res = EM_FREED;
  size_t i = 0;
  em_lock(m);
  for (; i < n; i++) {
    uintptr_t a = (uintptr_t)addrs[i];
    res = em_well_formed(m, a, sizes[i]) ? em_free_locked(m, a, sizes[i]) : EM_NOT_IN_REGION;
    if (res != EM_FREED) break;
  }
  pthread_mutex_unlock(&m->lock);
  *failed = i;
  return res;
}

void em_get_stats(em *m, em_stats *out) {
  memset(out, 0, sizeof *out);
  pthread_mutex_lock(&m->lock);
  out->capacity = m->capacity;
  out->free_bytes = m->free_bytes;
  out->peak_in_use = m->peak_in_use;
  if (m->policy != EM_BUMP) {
    tree_node *last = sizeidx_last(&m->by_size);
    out->largest_free = last ? EM_OF_SIZE(last)->size : 0;
    out->free_extents = m->by_size.count;
  } else {
    for (tree_node *n = tree_first(&m->regions); n; n = tree_next(&m->regions, n)) {
      em_region *r = EM_REGION_OF(n);
      if (r->end > r->bump) out->free_extents++;
      if (r->end - r->bump > out->largest_free) out->largest_free = r->end - r->bump;
    }
  }
  pthread_mutex_unlock(&m->lock);
}

typedef struct em_walk_state {
  int (*visit)(uintptr_t addr, size_t size, void *arg);
  void *arg;
} em_walk_state;

static int em_walk_one(tree_node *n, void *arg) {
  em_walk_state *w = arg;
  return w->visit(EM_OF_ADDR(n)->addr, EM_OF_ADDR(n)->size, w->arg);
}

int em_walk_free(em *m, int (*visit)(uintptr_t addr, size_t size, void *arg), void *arg) {
  em_walk_state w = {visit, arg};
  pthread_mutex_lock(&m->lock);
  int r = tree_walk(&m->by_addr, em_walk_one, &w);
  pthread_mutex_unlock(&m->lock);
  return r;
}

/* One region's ranges for em_walk; lock held. */
static int em_walk_region(em *m, const em_region *r, int (*visit)(uintptr_t, size_t, bool, void *), void *arg) {
  if (m->policy == EM_BUMP) {
    int stop = r->bump > r->base ? visit(r->base, r->bump - r->base, false, arg) : 0;
    return stop || r->end == r->bump ? stop : visit(r->bump, r->end - r->bump, true, arg);
  }
  em_extent key = {.addr = r->base};
  uintptr_t at = r->base;
  for (tree_node *n = tree_ceil(&m->by_addr, &key.by_addr); n && EM_OF_ADDR(n)->addr < r->end;
       n = tree_next(&m->by_addr, n)) {
    const em_extent *e = EM_OF_ADDR(n);
    int stop = e->addr > at ? visit(at, e->addr - at, false, arg) : 0;
    if (stop || (stop = visit(e->addr, e->size, true, arg))) return stop;
    at = e->addr + e->size;
  }
  return at < r->end ? visit(at, r->end - at, false, arg) : 0;
}

int em_walk(em *m, int (*visit)(uintptr_t addr, size_t size, bool free, void *arg), void *arg) {
  int stop = 0;
  pthread_mutex_lock(&m->lock);
  for (tree_node *n = tree_first(&m->regions); n && !stop; n = tree_next(&m->regions, n))
    stop = em_walk_region(m, EM_REGION_OF(n), visit, arg);
  pthread_mutex_unlock(&m->lock);
  return stop;
}

typedef struct em_check_state {
  em *m;
  const em_extent *prev;
  size_t sum;
  int broken;
} em_check_state;

#define EM_BROKEN(s, ...)             \
  do {                                \
    fprintf(stderr, "em: " __VA_ARGS__); \
    (s)->broken++;                    \
  } while (0)

static int em_check_extent(tree_node *n, void *arg) {
  em_check_state *s = arg;
  em *m = s->m;
  const em_extent *e = EM_OF_ADDR(n);
  size_t page = m->page;
  if (e->size == 0 || (e->addr & (page - 1)) || (e->size & (page - 1)))
    EM_BROKEN(s, "free extent %#lx+%zu should be non-empty and page-aligned\n", (unsigned long)e->addr, e->size);
  em_region *r = em_region_at(m, e->addr);
  if (r != e->region || !r || e->addr + e->size > r->end)
    EM_BROKEN(s, "free extent %#lx+%zu should lie inside its region\n", (unsigned long)e->addr, e->size);
  if (s->prev) {
    uintptr_t prev_end = s->prev->addr + s->prev->size;
    if (prev_end > e->addr)
      EM_BROKEN(s, "free extents %#lx+%zu and %#lx+%zu should not overlap\n", (unsigned long)s->prev->addr,
                s->prev->size, (unsigned long)e->addr, e->size);
    else if (prev_end == e->addr && s->prev->region == e->region)
      EM_BROKEN(s, "free extents %#lx+%zu and %#lx+%zu should have coalesced\n", (unsigned long)s->prev->addr,
                s->prev->size, (unsigned long)e->addr, e->size);
  }
  size_t want = e->size;
  if (em_largest_below(n->left) > want) want = em_largest_below(n->left);
  if (em_largest_below(n->right) > want) want = em_largest_below(n->right);
  if (e->largest_below != want)
    EM_BROKEN(s, "extent %#lx: largest size below %zu should be %zu\n", (unsigned long)e->addr, e->largest_below, want);
  if (sizeidx_ceil(&m->by_size, &e->by_size) != &e->by_size)
    EM_BROKEN(s, "free extent %#lx+%zu should be in the size index\n", (unsigned long)e->addr, e->size);
  s->sum += e->size;
  s->prev = e;
  return 0;
}

static int em_check_region(tree_node *n, void *arg) {
  em_check_state *s = arg;
  em_region *r = EM_REGION_OF(n);
  if (s->m->policy != EM_BUMP && r->pristine_lo < r->pristine_hi) {
    em_extent key = {.addr = r->pristine_lo};
    tree_node *f = tree_floor(&s->m->by_addr, &key.by_addr);
    const em_extent *e = f ? EM_OF_ADDR(f) : NULL;
    if (!e || e->addr + e->size < r->pristine_hi)
      EM_BROKEN(s, "pristine range %#lx..%#lx of region %#lx should lie inside one free extent\n",
                (unsigned long)r->pristine_lo, (unsigned long)r->pristine_hi, (unsigned long)r->base);
  }
  if (!(r->base < r->end && r->base <= r->pristine_lo && r->pristine_lo <= r->pristine_hi &&
        r->pristine_hi <= r->end && r->base <= r->bump && r->bump <= r->end))
    EM_BROKEN(s, "region %#lx..%#lx: base <= pristine_lo <= pristine_hi <= end and base <= bump <= end\n",
              (unsigned long)r->base, (unsigned long)r->end);
  if (s->m->policy == EM_BUMP) s->sum += r->end - r->bump;
  return 0;
}

static int em_check_locked(em *m) {
  em_check_state s = {.m = m};
  s.broken += tree_check(&m->by_addr, "em.by_addr");
  s.broken += sizeidx_check(&m->by_size, "em.by_size");
  s.broken += tree_check(&m->regions, "em.regions");
  s.broken += meta_check(&m->extent_pool) + meta_check(&m->region_pool);
  if (m->by_addr.count != m->by_size.count)
    EM_BROKEN(&s, "the address index (%zu) and the size index (%zu) should hold the same extents\n",
              m->by_addr.count, m->by_size.count);
  if (m->extent_pool.live != m->by_addr.count)
    EM_BROKEN(&s, "%zu extent records live should equal %zu free extents\n", m->extent_pool.live, m->by_addr.count);
  tree_walk(&m->regions, em_check_region, &s);
  if (m->ring_min <= m->small_max)
    EM_BROKEN(&s, "ring_min %zu should exceed small_max %zu\n", m->ring_min, m->small_max);
  if (m->rover && (!em_region_at(m, m->rover - 1) || (m->rover & (m->page - 1))))
    EM_BROKEN(&s, "the roving pointer %#lx should be 0, or page-aligned with base < it <= end of a region\n",
              (unsigned long)m->rover);
  tree_walk(&m->by_addr, em_check_extent, &s);
  if (s.sum != m->free_bytes) EM_BROKEN(&s, "free extents sum to %zu, free_bytes says %zu\n", s.sum, m->free_bytes);
  if (atomic_load(&m->free_hint) != m->free_bytes || atomic_load(&m->capacity_hint) != m->capacity)
    EM_BROKEN(&s, "the hints (%zu free of %zu) should be free_bytes %zu and capacity %zu\n",
              atomic_load(&m->free_hint), atomic_load(&m->capacity_hint), m->free_bytes, m->capacity);
  if (m->free_bytes > m->capacity)
    EM_BROKEN(&s, "free bytes %zu should not exceed capacity %zu\n", m->free_bytes, m->capacity);
  if (m->peak_in_use < m->capacity - m->free_bytes)
    EM_BROKEN(&s, "peak in use %zu should be at least in use %zu\n", m->peak_in_use, m->capacity - m->free_bytes);
  return s.broken;
}

int em_check(em *m) {
  pthread_mutex_lock(&m->lock);
  int broken = em_check_locked(m);
  pthread_mutex_unlock(&m->lock);
  return broken;
}
