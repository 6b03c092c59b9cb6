/*
 * Unit tests of hooks (src/hooks.h): jemalloc arenas over an extent manager
 * and a page map made here, without a heap. Every extent an arena takes
 * comes from the manager and is tagged small while jemalloc holds it, and
 * recorded as a grant; jemalloc's metadata comes from mmap, outside the
 * region; an arena with exact grants takes nothing when it is made and
 * exactly the extents it uses, all back once freed and purged; one without
 * keeps its first grant and reuses what it frees of it; a closed gate makes
 * the alloc hook fail; hooks_take grows
 * the manager through the callback once when it has no room (the way up
 * is a callback, never a call); destroying the arena gives everything back;
 * hooks_shared_check after each step.
 *
 * Memory: the regions are reserved with MAP_NORESERVE; jemalloc touches
 * its metadata and the few objects written.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include <cmocka.h>

#include "hooks.h"
#include "util.h"

#define PAGE ((size_t)4096)
#define MiB ((size_t)1 << 20)
#define REGION (64 * MiB)

typedef struct fixture {
  em em;
  pagemap pm;
  gate gate;
  hooks_shared shared;
  void *maps[4];
  size_t map_bytes[4];
  unsigned nmaps;
} fixture;

/* A region of size bytes aligned to 2 MiB, added to the page map and the
 * manager as one chunk. */
static void *add_region(fixture *f, size_t size) {
  size_t align = 2 * MiB;
  char *m = mmap(NULL, size + align, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  assert_true(m != MAP_FAILED);
  f->maps[f->nmaps] = m;
  f->map_bytes[f->nmaps++] = size + align;
  void *base = (void *)(((uintptr_t)m + align - 1) & ~(uintptr_t)(align - 1));
  assert_int_equal(pagemap_add(&f->pm, base, size, NULL), 0);
  assert_int_equal(em_add_region(&f->em, base, size, true), 0);
  return base;
}

static fixture *open_fixture(size_t region) {
  fixture *f = calloc(1, sizeof *f);
  assert_non_null(f);
  assert_int_equal(em_init(&f->em, EM_TWO_ENDED, PAGE, 0, 0), 0);
  assert_int_equal(pagemap_init(&f->pm, PAGE), 0);
  gate_init(&f->gate);
  assert_int_equal(hooks_shared_init(&f->shared, &f->em, &f->pm, &f->gate), 0);
  if (region) add_region(f, region);
  return f;
}

static void close_fixture(fixture *f) {
  assert_int_equal(hooks_shared_check(&f->shared), 0);
  hooks_shared_fini(&f->shared);
  pagemap_fini(&f->pm);
  em_fini(&f->em);
  for (unsigned i = 0; i < f->nmaps; i++) munmap(f->maps[i], f->map_bytes[i]);
  free(f);
}

static size_t free_bytes(fixture *f) {
  em_stats s;
  em_get_stats(&f->em, &s);
  return s.free_bytes;
}

static bool in_region(fixture *f, const void *p, size_t size) { return pagemap_within_chunk(&f->pm, p, size); }

static int flags(const hooks_arena *ha) { return (int)(MALLOCX_ARENA(ha->index) | MALLOCX_TCACHE_NONE); }

static void test_arena(void **state) {
  (void)state;
  fixture *f = open_fixture(REGION);
  hooks_arena ha;
  assert_int_equal(hooks_arena_create(&ha, &f->shared, true, HOOKS_KEEP_MS), 0);
  assert_int_equal(hooks_arena_keep_ms(&ha), HOOKS_KEEP_MS);
  assert_int_equal(f->shared.grants.count, 0); /* exact grants: nothing taken until asked */
  assert_int_equal(hooks_shared_check(&f->shared), 0);
  /* Small and large objects lie in the region, on pages tagged small,
   * inside a grant. */
  size_t sizes[] = {16, 200, 3000, 40000, 3 * MiB};
  void *p[5];
  for (int i = 0; i < 5; i++) {
    p[i] = mallocx(sizes[i], flags(&ha));
    assert_non_null(p[i]);
    assert_true(in_region(f, p[i], sizes[i]));
    assert_true(PAGEMAP_IS_SMALL(pagemap_get(&f->pm, p[i])));
    hooks_grant g;
    uintptr_t next;
    assert_true(hooks_grant_at(&f->shared, (uintptr_t)p[i], &g, &next));
    assert_true((uintptr_t)p[i] + sizes[i] <= g.addr + g.size);
    memset(p[i], 0xA5, sizes[i] < 64 ? sizes[i] : 64);
  }
  assert_int_equal(hooks_shared_check(&f->shared), 0);
  hooks_stats_refresh();
  assert_true(hooks_arena_allocated(&ha) >= 3 * MiB);
  /* Outside every grant: the next one above is named. */
  hooks_grant g;
  uintptr_t next = 0;
  assert_false(hooks_grant_at(&f->shared, 4096, &g, &next));
  assert_true(next != UINTPTR_MAX && in_region(f, (void *)next, 1));
  /* Freed and purged: its pages back in the manager, or waiting returned
   * inside a grant that is still partly in use; never left tagged small
   * outside every grant. */
  dallocx(p[4], MALLOCX_TCACHE_NONE);
  hooks_arena_purge(&ha);
  for (uintptr_t a = (uintptr_t)p[4]; a < (uintptr_t)p[4] + 3 * MiB; a += PAGE) {
    uint32_t tag = pagemap_get(&f->pm, (void *)a);
    if (tag == 0 || tag == PAGEMAP_RETURNED) continue;
    assert_true(PAGEMAP_IS_SMALL(tag));
    assert_true(hooks_grant_at(&f->shared, a, &g, &next));
  }
  for (int i = 0; i < 4; i++) dallocx(p[i], MALLOCX_TCACHE_NONE);
  assert_int_equal(hooks_shared_check(&f->shared), 0);
  /* Destroyed: every grant back, every page untagged. */
  hooks_arena_destroy(&ha);
  assert_int_equal(f->shared.grants.count, 0);
  assert_int_equal(free_bytes(f), REGION);
  assert_int_equal(pagemap_count_jemalloc_pages(&f->pm), 0);
  close_fixture(f);
}

typedef struct span {
  uintptr_t lo, hi;
  size_t bytes;
} span;

static int grant_span(tree_node *n, void *arg) {
  span *s = arg;
  const hooks_grant *g = PH_CONTAINER_OF(n, hooks_grant, by_addr);
  if (g->addr < s->lo) s->lo = g->addr;
  if (g->addr + g->size > s->hi) s->hi = g->addr + g->size;
  s->bytes += g->size;
  return 0;
}

/* Pages of grants that wait RETURNED, summed into *arg. */
static int count_returned(tree_node *n, void *arg) {
  *(size_t *)arg += PH_CONTAINER_OF(n, hooks_grant, by_addr)->returned;
  return 0;
}

static size_t in_use(fixture *f) { return REGION - free_bytes(f); }

/* Exact grants: jemalloc's growth of retained memory is refused, so that
 * it asks for each extent exactly: making the arena takes nothing of the
 * region, an object of each small class takes that class's slab alone
 * (jemalloc's slabs are at most a few pages), a 3 MiB object an extent of
 * 3 MiB and a page at most (not jemalloc's 3.5 MiB size class), and once
 * freed and purged every extent is back in the manager for anyone: no
 * grant is left, no page RETURNED. */
static void test_exact_grants(void **state) {
  (void)state;
  fixture *f = open_fixture(REGION);
  hooks_arena ha;
  assert_int_equal(hooks_arena_create(&ha, &f->shared, true, HOOKS_KEEP_MS), 0);
  print_message("made: %zu bytes of the region in use, %zu grants\n", in_use(f), f->shared.grants.count);
  assert_int_equal(in_use(f), 0);
  void *small[3];
  size_t sizes[3] = {16, 1024, 8192};
  for (int i = 0; i < 3; i++) {
    small[i] = mallocx(sizes[i], flags(&ha));
    assert_non_null(small[i]);
    hooks_grant g;
    uintptr_t next;
    assert_true(hooks_grant_at(&f->shared, (uintptr_t)small[i], &g, &next));
    print_message("%zu B: its grant is %zu bytes\n", sizes[i], g.size);
    assert_true(g.size <= 16 * PAGE);
  }
  span s = {.lo = UINTPTR_MAX};
  tree_walk(&f->shared.grants, grant_span, &s);
  assert_int_equal(s.bytes, in_use(f));
  assert_true(in_use(f) <= 3 * 16 * PAGE);
  void *big = mallocx(3 * MiB, flags(&ha));
  assert_non_null(big);
  hooks_grant g;
  uintptr_t next;
  assert_true(hooks_grant_at(&f->shared, (uintptr_t)big, &g, &next));
  print_message("3 MiB: its grant is %zu bytes\n", g.size);
  assert_true(g.size >= 3 * MiB && g.size <= 3 * MiB + PAGE);
  assert_int_equal(hooks_shared_check(&f->shared), 0);
  dallocx(big, MALLOCX_TCACHE_NONE);
  for (int i = 0; i < 3; i++) dallocx(small[i], MALLOCX_TCACHE_NONE);
  hooks_arena_purge(&ha);
  size_t returned = 0;
  tree_walk(&f->shared.grants, count_returned, &returned);
  print_message("freed and purged: %zu bytes in use, %zu grants, %zu bytes returned\n", in_use(f),
                f->shared.grants.count, returned);
  assert_int_equal(in_use(f), 0);
  assert_int_equal(f->shared.grants.count, 0);
  assert_int_equal(hooks_shared_check(&f->shared), 0);
  hooks_arena_destroy(&ha);
  assert_int_equal(free_bytes(f), REGION);
  close_fixture(f);
}

/* Without exact grants (a bump heap's arenas), the arena's first grant (2 MiB) stays its own: slabs freed in it while
 * others there live are kept by jemalloc as retained and reused, not left
 * RETURNED. Twice 4 MiB of 1 KiB objects, all but one in 256 freed between
 * the rounds: the second round takes no more of the region than the first
 * (the slabs freed in the first grant serve it), and no page of any grant
 * waits RETURNED. */
static void test_first_grant_reused(void **state) {
  (void)state;
  fixture *f = open_fixture(REGION);
  hooks_arena ha;
  assert_int_equal(hooks_arena_create(&ha, &f->shared, false, HOOKS_KEEP_MS), 0);
  assert_int_equal(in_use(f), 2 * MiB);
  enum { N = 4096, KEEP_EVERY = 256 };
  static void *p[N];
  size_t peak[2] = {0, 0}, returned = 0;
  for (int round = 0; round < 2; round++) {
    for (unsigned i = 0; i < N; i++) {
      if (round && i % KEEP_EVERY == 0) continue; /* kept from the first round */
      p[i] = mallocx(1024, flags(&ha));
      assert_non_null(p[i]);
    }
    peak[round] = in_use(f);
    for (unsigned i = 0; i < N; i++)
      if (i % KEEP_EVERY) dallocx(p[i], MALLOCX_TCACHE_NONE);
    hooks_arena_purge(&ha);
    returned = 0;
    tree_walk(&f->shared.grants, count_returned, &returned);
    assert_int_equal(returned, 0);
    assert_int_equal(hooks_shared_check(&f->shared), 0);
  }
  assert_true(peak[1] <= peak[0]);
  for (unsigned i = 0; i < N; i += KEEP_EVERY) dallocx(p[i], MALLOCX_TCACHE_NONE);
  hooks_arena_destroy(&ha);
  assert_int_equal(free_bytes(f), REGION);
  close_fixture(f);
}

/* jemalloc's metadata (its base blocks) comes from mmap, outside the
 * region: a new arena takes nothing of the region, its objects' slabs
 * alone; destroying it unmaps its base blocks. */
static void test_bases(void **state) {
  (void)state;
  fixture *f = open_fixture(REGION);
  hooks_arena ha;
  assert_int_equal(hooks_arena_create(&ha, &f->shared, true, HOOKS_KEEP_MS), 0);
  assert_int_equal(in_use(f), 0);
  assert_true(hooks_base_bytes(&f->shared) >= 2 * MiB);
  span b = {.lo = UINTPTR_MAX};
  tree_walk(&f->shared.bases, grant_span, &b);
  assert_int_equal(b.bytes, hooks_base_bytes(&f->shared));
  assert_false(pagemap_covers(&f->pm, (void *)b.lo) || pagemap_covers(&f->pm, (void *)(b.hi - 1)));
  /* Objects of many classes: slabs come from the region, their records
   * from the base blocks. */
  enum { N = 4000 };
  static void *p[N];
  for (unsigned i = 0; i < N; i++) {
    p[i] = mallocx(16 + (i % 40) * 64, flags(&ha));
    assert_non_null(p[i]);
    assert_true(pagemap_covers(&f->pm, p[i]));
  }
  assert_int_equal(hooks_shared_check(&f->shared), 0);
  for (unsigned i = 0; i < N; i++) dallocx(p[i], MALLOCX_TCACHE_NONE);
  hooks_arena_destroy(&ha);
  assert_int_equal(hooks_base_bytes(&f->shared), 0);
  assert_int_equal(f->shared.bases.count, 0);
  /* Unmapped: msync fails with ENOMEM on a range not mapped. */
  assert_int_equal(msync((void *)b.lo, PAGE, MS_ASYNC), -1);
  assert_int_equal(errno, ENOMEM);
  assert_int_equal(free_bytes(f), REGION);
  close_fixture(f);
}

/* While the gate is closed (fork), the alloc hook fails: jemalloc answers
 * NULL; once open, it succeeds. */
static void test_gate(void **state) {
  (void)state;
  fixture *f = open_fixture(REGION);
  hooks_arena ha;
  assert_int_equal(hooks_arena_create(&ha, &f->shared, true, HOOKS_KEEP_MS), 0);
  size_t grants = f->shared.grants.count;
  gate_close(&f->gate);
  assert_null(mallocx(8 * MiB, flags(&ha)));
  assert_int_equal(f->shared.grants.count, grants);
  gate_open(&f->gate);
  void *p = mallocx(8 * MiB, flags(&ha));
  assert_non_null(p);
  dallocx(p, MALLOCX_TCACHE_NONE);
  hooks_arena_destroy(&ha);
  close_fixture(f);
}

typedef struct grower {
  fixture *f;
  unsigned calls;
  size_t asked;
  bool refuse;
} grower;

static int grow(void *ctx, size_t bytes) {
  grower *g = ctx;
  g->calls++;
  g->asked = bytes;
  if (g->refuse) return -1;
  add_region(g->f, (bytes + 2 * MiB - 1) & ~(2 * MiB - 1));
  return 0;
}

/* hooks_take grows the manager through the callback, once, when it has no
 * room, placed either way; without a callback, or when it refuses, NULL. */
static void test_grow(void **state) {
  (void)state;
  fixture *f = open_fixture(0);
  bool pristine;
  assert_null(hooks_take(&f->shared, 2 * MiB, PAGE, false, &pristine));
  grower g = {.f = f, .refuse = true};
  hooks_set_grow(&f->shared, grow, &g);
  assert_null(hooks_take(&f->shared, 2 * MiB, PAGE, true, &pristine));
  assert_int_equal(g.calls, 1);
  g.refuse = false;
  void *p = hooks_take(&f->shared, 2 * MiB, PAGE, true, &pristine);
  assert_non_null(p);
  assert_int_equal(g.calls, 2);
  assert_int_equal(g.asked, 2 * MiB + PAGE);
  assert_true(pristine);
  /* Room left: no call. */
  void *q = hooks_take(&f->shared, PAGE, PAGE, false, &pristine);
  assert_non_null(q);
  assert_int_equal(g.calls, 2);
  em_free(&f->em, p, 2 * MiB);
  em_free(&f->em, q, PAGE);
  /* An arena over a manager that only grows: its extents come through it. */
  hooks_arena ha;
  assert_int_equal(hooks_arena_create(&ha, &f->shared, true, HOOKS_KEEP_MS), 0);
  void *big = mallocx(16 * MiB, flags(&ha));
  assert_non_null(big);
  assert_true(g.calls > 2);
  assert_true(in_region(f, big, 16 * MiB));
  dallocx(big, MALLOCX_TCACHE_NONE);
  hooks_arena_destroy(&ha);
  close_fixture(f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_arena),
      cmocka_unit_test(test_exact_grants),
      cmocka_unit_test(test_first_grant_reused),
      cmocka_unit_test(test_bases),
      cmocka_unit_test(test_gate),
      cmocka_unit_test(test_grow),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
