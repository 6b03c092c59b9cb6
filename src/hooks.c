#include "hooks.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "local.h"
#include "ph_assert.h"
#include "track.h"
#include "util.h"

#define HOOKS_GRANT(n) PH_CONTAINER_OF(n, hooks_grant, by_addr)
/* jemalloc 5.3's HUGEPAGE on x86-64 (larger on some systems: the tests
 * below take it as a least): its base blocks' alignment and size unit. */
#define HOOKS_BASE_ALIGN ((size_t)2 << 20)

/* hooks_shared_check with the grants' lock held: the expensive assertions
 * after each change. */
static int hooks_check_locked(hooks_shared *s);

static int hooks_cmp_grant(const tree_node *a, const tree_node *b) {
  uintptr_t x = HOOKS_GRANT(a)->addr, y = HOOKS_GRANT(b)->addr;
  return (x > y) - (x < y);
}

int hooks_shared_init(hooks_shared *s, em *em, pagemap *pm, gate *gate) {
  memset(s, 0, sizeof *s);
  s->em = em;
  s->pm = pm;
  s->gate = gate;
  tree_init(&s->grants, hooks_cmp_grant, NULL);
  tree_init(&s->bases, hooks_cmp_grant, NULL);
  meta_init(&s->pool, sizeof(hooks_grant));
  return pthread_mutex_init(&s->lock, NULL) ? -1 : 0;
}

void hooks_set_grow(hooks_shared *s, int (*grow)(void *ctx, size_t bytes), void *ctx) {
  s->grow = grow;
  s->grow_ctx = ctx;
}

void hooks_shared_fini(hooks_shared *s) {
  meta_fini(&s->pool);
  pthread_mutex_destroy(&s->lock);
}

void *hooks_take(hooks_shared *s, size_t size, size_t align, bool low, bool *pristine) {
  void *(*place)(em *, size_t, size_t, bool *) = low ? em_alloc_low : em_alloc;
  void *p = place(s->em, size, align, pristine);
  if (!p && s->grow && s->grow(s->grow_ctx, size + align) == 0) p = place(s->em, size, align, pristine);
  return p;
}

/* Records [p, p + size) in t (grants or bases), lock held; NULL when no
 * record is left. */
static hooks_grant *hooks_record_locked(hooks_shared *s, tree *t, void *p, size_t size) {
  hooks_grant *g = meta_alloc(&s->pool);
  if (!g) return NULL;
  g->addr = (uintptr_t)p;
  g->size = size;
  g->birth = util_now_ns();
  tree_insert(t, &g->by_addr);
  return g;
}

/* A grant for jemalloc, or NULL; the gate passed. */
static void *hooks_grant_new(hooks_arena *ha, void *new_addr, size_t size, size_t alignment, bool *zero,
                             bool *commit) {
  hooks_shared *s = ha->shared;
  bool pristine = false;
  void *p;
  if (new_addr)
    p = em_alloc_at(s->em, new_addr, size, &pristine) ? new_addr : NULL;
  else
    p = hooks_take(s, size, alignment, false, &pristine);
  if (!p) return NULL;
  /* Without exact grants, the first comes while the arena is made, before
   * any other thread can use it. */
  if (!ha->exact && !ha->first_size) {
    ha->first = (uintptr_t)p;
    ha->first_size = size;
  }
  /* Tagged before it is recorded, untagged after it is forgotten
   * (hooks_give_back): the grants' lock holder sees every grant tagged. */
  pagemap_set_small(s->pm, p, size);
  pthread_mutex_lock(&s->lock);
  hooks_grant *g = hooks_record_locked(s, &s->grants, p, size);
  PH_ASSERT_EXPENSIVE(hooks_check_locked(s) == 0);
  pthread_mutex_unlock(&s->lock);
  if (!g) {
    pagemap_clear(s->pm, p, size);
    em_free(s->em, p, size);
    return NULL;
  }
  /* Never handed out, it reads as zero and memcheck knows it; else it may
   * have been a freed block, no-access for memcheck. */
  if (!pristine) track_mem_undefined(p, size);
  if (*zero && !pristine) memset(p, 0, size);
  *zero = *zero || pristine;
  *commit = true;
  return p;
}

/*
 * Whether jemalloc asks alloc for a base block (its metadata) rather than an
 * extent for objects. Read in jemalloc 5.3.0's sources:
 * - base_map (src/base.c) is the only caller that asks for metadata: with
 *   new_addr NULL, alignment HUGEPAGE, *zero and *commit true, and a size
 *   that base_block_alloc rounds up to a multiple of HUGEPAGE; first for
 *   the base_t inside arenas.create, later whenever the base runs out (from
 *   any thread, in any mallocx). base_new keeps the hooks given to
 *   arenas.create, and arena.<i>.extent_hooks would replace them for the
 *   base too (base_extent_hooks_set): no hook set later tells them apart.
 * - Extent growth for slabs and large objects, with opt.retain (the
 *   default on 64-bit Linux), is extent_grow_retained (src/extent.c): it
 *   asks with alignment PAGE and *zero, *commit false, whatever the
 *   request's alignment (it asks for size + alignment - PAGE instead).
 * - When that growth fails (the hook returned NULL), ecache_alloc_grow falls
 *   back to extent_alloc_wrapper, which asks for exactly the request with
 *   its alignment raised to PAGE, *commit true and *zero as the request
 *   asked: the one path where a non-base request could look like a base
 *   one. It would take an alignment of HUGEPAGE or more from the caller of
 *   mallocx; pinheap routes every alignment above a page to its large path
 *   (heap.c), so its arenas' extents are always asked with alignment PAGE.
 * - Arenas with hooks of their own never use the HPA (arena_new), and the
 *   tcache and rtree metadata come from arena 0 and base 0, not from here.
 * So alignment >= HOOKS_BASE_ALIGN alone separates the two here; the other
 * marks are checked too, so that a request breaking the precondition on
 * hooks_arena_create is more likely served as an extent than as metadata.
 */
static bool hooks_is_base(const void *new_addr, size_t size, size_t alignment, bool zero, bool commit) {
  return !new_addr && alignment >= HOOKS_BASE_ALIGN && size % HOOKS_BASE_ALIGN == 0 && zero && commit;
}

/* Ordinary memory for base blocks: mapped (and charged) as the local
 * provider maps a SIMPLE heap's memory. */
static local_options hooks_base_memory = {.charged = true};

/* A base block of size bytes from mmap, aligned as jemalloc asks, zeroed
 * and committed, and recorded; NULL when the system has none. */
static void *hooks_base_map(hooks_shared *s, size_t size, size_t alignment) {
  void *p = NULL, *handle = NULL;
  if (local_obtain(&hooks_base_memory, size, alignment, &p, &handle) != 0) return NULL;
  pthread_mutex_lock(&s->lock);
  hooks_grant *g = hooks_record_locked(s, &s->bases, p, size);
  if (g) s->base_bytes += size;
  PH_ASSERT_EXPENSIVE(hooks_check_locked(s) == 0);
  pthread_mutex_unlock(&s->lock);
  if (!g) {
    local_release(&hooks_base_memory, p, size, handle);
    return NULL;
  }
  return p;
}

/* Unmaps [addr, addr + size) when it is a base block; false when it is
 * none (then it is an extent of the region). */
static bool hooks_base_unmap(hooks_shared *s, void *addr, size_t size) {
  hooks_grant key = {.addr = (uintptr_t)addr};
  pthread_mutex_lock(&s->lock);
  tree_node *n = tree_floor(&s->bases, &key.by_addr);
  if (n && HOOKS_GRANT(n)->addr != key.addr) n = NULL;
  if (n) {
    hooks_grant *g = HOOKS_GRANT(n);
    if (g->size != size) {
      pthread_mutex_unlock(&s->lock);
      error_fatal("jemalloc gave back %zu bytes of its base block %p of %zu bytes", size, addr, g->size);
    }
    tree_remove(&s->bases, n);
    s->base_bytes -= size;
    meta_free(&s->pool, g);
    PH_ASSERT_EXPENSIVE(hooks_check_locked(s) == 0);
  }
  pthread_mutex_unlock(&s->lock);
  if (n) local_release(&hooks_base_memory, addr, size, NULL);
  return n != NULL;
}

/* While a fork is being prepared the gate is closed: alloc fails and dalloc
 * refuses, which jemalloc copes with (a failed allocation; an extent it
 * keeps for itself, as retained), rather than wait with jemalloc's locks
 * held (fork.h). Base blocks pass it too: the grants' lock must not be
 * held across fork. */
static void *hooks_alloc(extent_hooks_t *h, void *new_addr, size_t size, size_t alignment, bool *zero, bool *commit,
                         unsigned arena_ind) {
  (void)arena_ind;
  hooks_arena *ha = (hooks_arena *)h;
  hooks_shared *s = ha->shared;
  PH_ASSERT(size > 0 && size % s->em->page == 0 && util_is_pow2(alignment));
  /* jemalloc's growth of retained memory (the one request with *commit
   * false: extent_grow_retained): refused, so that it asks for the exact
   * extent (hooks.h). */
  if (ha->exact && !new_addr && !*commit) return NULL;
  if (!gate_try(s->gate)) return NULL;
  void *p;
  bool base = hooks_is_base(new_addr, size, alignment, *zero, *commit);
  PH_ASSERT(base || alignment < HOOKS_BASE_ALIGN); /* hooks_arena_create's precondition */
  if (base)
    p = hooks_base_map(s, size, alignment);
  else
    p = hooks_grant_new(ha, new_addr, size, alignment, zero, commit);
  gate_leave(s->gate);
  return p;
}

/* Accounts [addr, addr + size), which may span grants that jemalloc merged,
 * and gives back every grant that is now whole. */
static void hooks_give_back(hooks_arena *ha, void *addr, size_t size) {
  hooks_shared *s = ha->shared;
  uintptr_t a = (uintptr_t)addr, end = a + size;
  while (a < end) {
    hooks_grant key = {.addr = a};
    pthread_mutex_lock(&s->lock);
    tree_node *n = tree_floor(&s->grants, &key.by_addr);
    hooks_grant *g = n ? HOOKS_GRANT(n) : NULL;
    size_t piece = g && a < g->addr + g->size ? (size_t)(g->addr + g->size - a) : 0;
    if (piece > end - a) piece = end - a;
    if (!piece || g->returned + piece > g->size) {
      pthread_mutex_unlock(&s->lock);
      error_fatal("jemalloc gave back extent %p+%zu that no grant of the heap holds", addr, size);
    }
    uintptr_t whole = 0;
    size_t whole_size = 0;
    if (g->returned + piece == g->size) {
      whole = g->addr;
      whole_size = g->size;
      tree_remove(&s->grants, &g->by_addr);
      meta_free(&s->pool, g);
    } else {
      g->returned += piece;
      pagemap_fill_returned(s->pm, (void *)a, piece);
    }
    PH_ASSERT_EXPENSIVE(hooks_check_locked(s) == 0);
    pthread_mutex_unlock(&s->lock);
    a += piece;
    if (!whole) continue;
    pagemap_clear(s->pm, (void *)whole, whole_size);
    em_free_result r = em_free(s->em, (void *)whole, whole_size);
    if (r != EM_FREED)
      error_fatal("grant %p+%zu cannot go back to the extent manager (%s)", (void *)whole, whole_size,
                  r == EM_ALREADY_FREE ? "already free" : r == EM_NOT_IN_REGION ? "not in the region" : "no metadata");
  }
}

/* Whether [addr, addr + size) overlaps the arena's first grant. */
static bool hooks_in_first(const hooks_arena *ha, const void *addr, size_t size) {
  uintptr_t a = (uintptr_t)addr;
  return ha->first_size && a < ha->first + ha->first_size && a + size > ha->first;
}

/* Refuses the extents of the arena's first grant: jemalloc keeps them as
 * retained and reuses them (hooks.h). */
static bool hooks_dalloc(extent_hooks_t *h, void *addr, size_t size, bool committed, unsigned arena_ind) {
  (void)committed;
  (void)arena_ind;
  hooks_shared *s = ((hooks_arena *)h)->shared;
  if (hooks_in_first((hooks_arena *)h, addr, size)) return true;
  if (!gate_try(s->gate)) return true;
  if (!hooks_base_unmap(s, addr, size)) hooks_give_back((hooks_arena *)h, addr, size);
  gate_leave(s->gate);
  return false;
}

/* Cannot refuse, and need not pass the gate: jemalloc destroys extents only
 * with their arena, and a heap's arenas are destroyed before the heap joins
 * the fork handlers' list or after it has left it. */
static void hooks_destroy(extent_hooks_t *h, void *addr, size_t size, bool committed, unsigned arena_ind) {
  (void)committed;
  (void)arena_ind;
  if (!hooks_base_unmap(((hooks_arena *)h)->shared, addr, size)) hooks_give_back((hooks_arena *)h, addr, size);
}

static bool hooks_commit(extent_hooks_t *h, void *addr, size_t size, size_t offset, size_t length,
                         unsigned arena_ind) {
  (void)h, (void)addr, (void)size, (void)offset, (void)length, (void)arena_ind;
  return false;
}

/* Split and merge take no lock and need no gate: the page map answers
 * alone. Split must never refuse while a fork is prepared either: jemalloc
 * forgets an extent it fails to split. */
static bool hooks_split(extent_hooks_t *h, void *addr, size_t size, size_t size_a, size_t size_b, bool committed,
                        unsigned arena_ind) {
  (void)committed, (void)arena_ind;
  PH_ASSERT(size_a > 0 && size_b > 0 && size_a + size_b == size);
  return !pagemap_within_chunk(((hooks_arena *)h)->shared->pm, addr, size);
}

static bool hooks_merge(extent_hooks_t *h, void *addr_a, size_t size_a, void *addr_b, size_t size_b, bool committed,
                        unsigned arena_ind) {
  (void)committed, (void)arena_ind;
  if ((char *)addr_a + size_a != (char *)addr_b) return true;
  return !pagemap_within_chunk(((hooks_arena *)h)->shared->pm, addr_a, size_a + size_b);
}

/* jemalloc's "arena.<index>.<leaf>": reads into old (NULL: nothing), writes
 * new (NULL: nothing); mallctl's error. */
static int hooks_arena_ctl(unsigned index, const char *leaf, void *old, size_t *old_len, void *new, size_t new_len) {
  char name[64];
  snprintf(name, sizeof name, "arena.%u.%s", index, leaf);
  return mallctl(name, old, old_len, new, new_len);
}

static int hooks_arena_set(unsigned index, const char *leaf, void *value, size_t len) {
  return hooks_arena_ctl(index, leaf, NULL, NULL, value, len);
}

/* Extents from the manager; decommit and purge refused. */
static const extent_hooks_t hooks_managed = {
    .alloc = hooks_alloc,
    .dalloc = hooks_dalloc,
    .destroy = hooks_destroy,
    .commit = hooks_commit,
    .decommit = NULL,
    .purge_lazy = NULL,
    .purge_forced = NULL,
    .split = hooks_split,
    .merge = hooks_merge,
};

int hooks_arena_create(hooks_arena *ha, hooks_shared *shared, bool exact, ssize_t keep_ms) {
  PH_ASSERT(keep_ms == HOOKS_KEEP_UNTIL_PURGED || keep_ms == HOOKS_KEEP_MS);
  memset(ha, 0, sizeof *ha);
  ha->shared = shared;
  ha->hooks = hooks_managed;
  ha->exact = exact;
  size_t sz = sizeof ha->index;
  extent_hooks_t *hp = &ha->hooks;
  int err = mallctl("arenas.create", &ha->index, &sz, &hp, sizeof hp);
  if (err) {
    error_set(err == EAGAIN ? ENOMEM : err, "cannot create a jemalloc arena: arenas.create: %s", strerror(err));
    return -1;
  }
  ssize_t dirty = keep_ms, muzzy = 0;
  size_t limit = (size_t)sysconf(_SC_PAGESIZE);
  if ((err = hooks_arena_set(ha->index, "dirty_decay_ms", &dirty, sizeof dirty)) ||
      (err = hooks_arena_set(ha->index, "muzzy_decay_ms", &muzzy, sizeof muzzy)) ||
      (err = hooks_arena_set(ha->index, "retain_grow_limit", &limit, sizeof limit))) {
    hooks_arena_destroy(ha);
    error_set(ENOMEM, "cannot configure jemalloc arena %u: %s", ha->index, strerror(err));
    return -1;
  }
  if (exact) return 0;
  /* jemalloc's first grow is 2 MiB whatever the limit, and this arena
   * keeps that grant for good: take it now, where the heap stands at its
   * creation, rather than later in the middle of the region. */
  void *warm = mallocx(1, (int)(MALLOCX_ARENA(ha->index) | MALLOCX_TCACHE_NONE));
  if (!warm) {
    hooks_arena_destroy(ha);
    error_set(ENOMEM, "cannot start jemalloc arena %u: the region is too small for it", ha->index);
    return -1;
  }
  dallocx(warm, MALLOCX_TCACHE_NONE);
  return 0;
}

void hooks_arena_destroy(hooks_arena *ha) { hooks_arena_set(ha->index, "destroy", NULL, 0); }

void hooks_arena_purge(hooks_arena *ha) { hooks_arena_set(ha->index, "purge", NULL, 0); }

static size_t hooks_stat(unsigned index, const char *leaf) {
  char name[80];
  size_t v = 0, sz = sizeof v;
  snprintf(name, sizeof name, "stats.arenas.%u.%s", index, leaf);
  if (mallctl(name, &v, &sz, NULL, 0) != 0) return 0;
  return v;
}

ssize_t hooks_arena_keep_ms(const hooks_arena *ha) {
  ssize_t ms;
  size_t len = sizeof ms;
  return hooks_arena_ctl(ha->index, "dirty_decay_ms", &ms, &len, NULL, 0) == 0 ? ms : -2;
}

size_t hooks_arena_allocated(const hooks_arena *ha) {
  return hooks_stat(ha->index, "small.allocated") + hooks_stat(ha->index, "large.allocated");
}

size_t hooks_arena_live(const hooks_arena *ha, unsigned j) {
  char leaf[48];
  snprintf(leaf, sizeof leaf, "bins.%u.curregs", j);
  return hooks_stat(ha->index, leaf);
}

void hooks_stats_refresh(void) {
  uint64_t epoch = 1;
  size_t sz = sizeof epoch;
  mallctl("epoch", &epoch, &sz, &epoch, sz);
}

bool hooks_grant_at(hooks_shared *s, uintptr_t addr, hooks_grant *out, uintptr_t *next) {
  hooks_grant key = {.addr = addr};
  pthread_mutex_lock(&s->lock);
  tree_node *n = tree_floor(&s->grants, &key.by_addr);
  bool in = n && addr - HOOKS_GRANT(n)->addr < HOOKS_GRANT(n)->size;
  if (in) {
    *out = *HOOKS_GRANT(n);
  } else {
    n = tree_next(&s->grants, &key.by_addr);
    *next = n ? HOOKS_GRANT(n)->addr : UINTPTR_MAX;
  }
  pthread_mutex_unlock(&s->lock);
  return in;
}

typedef struct hooks_check_state {
  const pagemap *pm;
  const hooks_grant *prev;
  int broken;
} hooks_check_state;

static int hooks_check_grant(tree_node *n, void *arg) {
  hooks_check_state *st = arg;
  const hooks_grant *g = HOOKS_GRANT(n);
  if (g->returned >= g->size) {
    fprintf(stderr, "hooks: grant %#lx+%zu returned %zu bytes, should be fewer than its size\n", (unsigned long)g->addr,
            g->size, g->returned);
    st->broken++;
  }
  if (st->prev && st->prev->addr + st->prev->size > g->addr) {
    fprintf(stderr, "hooks: grants %#lx and %#lx should not overlap\n", (unsigned long)st->prev->addr,
            (unsigned long)g->addr);
    st->broken++;
  }
  for (uintptr_t a = g->addr; a < g->addr + g->size; a += (uintptr_t)1 << st->pm->page_shift) {
    uint32_t tag = pagemap_get(st->pm, (void *)a);
    if (!PAGEMAP_IS_SMALL(tag) && tag != PAGEMAP_RETURNED) {
      fprintf(stderr, "hooks: page %#lx of grant %#lx should be tagged SMALL or RETURNED, holds %#x\n",
              (unsigned long)a, (unsigned long)g->addr, tag);
      st->broken++;
      break;
    }
  }
  st->prev = g;
  return 0;
}

typedef struct hooks_base_state {
  const pagemap *pm;
  size_t bytes;
  int broken;
} hooks_base_state;

static int hooks_check_base(tree_node *n, void *arg) {
  hooks_base_state *st = arg;
  const hooks_grant *g = HOOKS_GRANT(n);
  st->bytes += g->size;
  if (g->returned || g->addr % HOOKS_BASE_ALIGN || g->size % HOOKS_BASE_ALIGN) {
    fprintf(stderr, "hooks: base block %#lx+%zu should be 2 MiB-aligned, whole, and not partly returned (%zu)\n",
            (unsigned long)g->addr, g->size, g->returned);
    st->broken++;
  }
  if (pagemap_covers(st->pm, (void *)g->addr) || pagemap_covers(st->pm, (void *)(g->addr + g->size - 1))) {
    fprintf(stderr, "hooks: base block %#lx+%zu should lie outside every region\n", (unsigned long)g->addr,
            g->size);
    st->broken++;
  }
  return 0;
}

static int hooks_check_locked(hooks_shared *s) {
  hooks_check_state st = {.pm = s->pm};
  st.broken = tree_check(&s->grants, "hooks.grants") + tree_check(&s->bases, "hooks.bases") + meta_check(&s->pool);
  tree_walk(&s->grants, hooks_check_grant, &st);
  hooks_base_state bs = {.pm = s->pm};
  tree_walk(&s->bases, hooks_check_base, &bs);
  if (bs.bytes != s->base_bytes) {
    fprintf(stderr, "hooks: base blocks hold %zu bytes, counted %zu\n", bs.bytes, s->base_bytes);
    bs.broken++;
  }
  return st.broken + bs.broken;
}

int hooks_shared_check(hooks_shared *s) {
  pthread_mutex_lock(&s->lock);
  int broken = hooks_check_locked(s);
  pthread_mutex_unlock(&s->lock);
  return broken;
}

size_t hooks_base_bytes(hooks_shared *s) {
  pthread_mutex_lock(&s->lock);
  size_t bytes = s->base_bytes;
  pthread_mutex_unlock(&s->lock);
  return bytes;
}
