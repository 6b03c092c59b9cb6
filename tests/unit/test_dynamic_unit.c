/*
 * Unit tests of dynamic (src/dynamic.h), the memory of DYNAMIC and SIMPLE
 * heaps, alone: no heap, no jemalloc arena; a space (space.h) over a fake
 * provider that keeps a ledger of what is registered and can refuse. Chunks
 * as the heap grows (granule, chunk size, the cap and the last chunk cut to
 * what it leaves, the reason of a refusal), direct blocks (lookup, resize in
 * place while more than half used, the room of a block that grows, the cap,
 * the provider's refusal), the quarantine (oldest first, its cap, drained
 * for room under the heap's cap), the cache of freed registrations (reuse
 * without the provider, its slack and bounds, given back for room under
 * the cap and when the provider refuses, drained), trimming free chunks,
 * and dynamic_check after every step; at the end the ledger is empty.
 *
 * Memory: regions are reserved with MAP_NORESERVE and only the first bytes
 * of a few are written.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include <cmocka.h>

#include "dynamic.h"
#include "error.h"
#include "space.h"

#define PAGE ((size_t)4096)
#define MiB ((size_t)1 << 20)
#define GRANULE DYNAMIC_GRANULE

/* The fake provider: mmap'd regions, each recorded until released. */
#define LEDGER_MAX 64
typedef struct ledger {
  struct {
    void *base;
    size_t size;
    void *handle;
  } live[LEDGER_MAX];
  unsigned count;
  size_t bytes;
  unsigned obtains, releases;
  bool refuse;  /* answer ENOMEM with a reason */
  size_t limit; /* refuse too what would take bytes above it (0: none) */
} ledger;

static int fake_obtain(void *ctx, size_t size, size_t align, void **base, void **handle) {
  ledger *l = ctx;
  l->obtains++;
  if (l->refuse || l->count == LEDGER_MAX || (l->limit && l->bytes + size > l->limit)) {
    pinheap_set_error(ENOMEM, "the fake refuses");
    return ENOMEM;
  }
  char *m = mmap(NULL, size + align, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m == MAP_FAILED) return ENOMEM;
  uintptr_t b = ((uintptr_t)m + align - 1) & ~(uintptr_t)(align - 1);
  /* Only [b, b + size) stays mapped: a release unmaps it whole. */
  if (b > (uintptr_t)m) munmap(m, b - (uintptr_t)m);
  if ((uintptr_t)m + size + align > b + size) munmap((void *)(b + size), (uintptr_t)m + align - b);
  *base = (void *)b;
  *handle = (void *)(uintptr_t)(l->obtains * 16);
  l->live[l->count].base = *base;
  l->live[l->count].size = size;
  l->live[l->count].handle = *handle;
  l->count++;
  l->bytes += size;
  return 0;
}

static int fake_release(void *ctx, void *base, size_t size, void *handle) {
  ledger *l = ctx;
  l->releases++;
  for (unsigned i = 0; i < l->count; i++) {
    if (l->live[i].base != base) continue;
    /* Exactly what was obtained comes back. */
    assert_int_equal(l->live[i].size, size);
    assert_ptr_equal(l->live[i].handle, handle);
    l->live[i] = l->live[--l->count];
    l->bytes -= size;
    munmap(base, size);
    return 0;
  }
  fail_msg("released %p, which the provider did not give", base);
  return EINVAL;
}

typedef struct fixture {
  ledger ledger;
  pinheap_provider pv;
  provider prov;
  gate gate;
  space space;
  dynamic dyn;
} fixture;

/* A DYNAMIC memory of chunks of chunk bytes under cap (0: none). */
static fixture *open_dynamic(size_t chunk, size_t cap) {
  fixture *f = calloc(1, sizeof *f);
  assert_non_null(f);
  f->pv = (pinheap_provider){.name = "fake", .ctx = &f->ledger, .obtain = fake_obtain, .release = fake_release};
  pinheap_options o;
  pinheap_options_init(&o);
  o.mode = PINHEAP_DYNAMIC;
  o.provider = &f->pv;
  provider_init(&f->prov, &o, PAGE);
  gate_init(&f->gate);
  assert_int_equal(space_open(&f->space, &f->prov, EM_TWO_ENDED, PAGE, 0, 0, &f->gate), 0);
  assert_int_equal(dynamic_open(&f->dyn, &f->space, &f->prov, PAGE, chunk, cap), 0);
  assert_int_equal(dynamic_check(&f->dyn), 0);
  return f;
}

static void close_dynamic(fixture *f) {
  assert_int_equal(dynamic_check(&f->dyn), 0);
  dynamic_close(&f->dyn);
  space_close(&f->space);
  assert_int_equal(f->ledger.count, 0);
  assert_int_equal(f->ledger.bytes, 0);
  free(f);
}

static size_t registered(fixture *f) { return atomic_load(&f->dyn.registered); }

static void test_chunks(void **state) {
  (void)state;
  /* The chunk size rounds up to the granule; the first chunk comes at open. */
  fixture *f = open_dynamic(3 * MiB, 0);
  assert_int_equal(f->dyn.chunk_size, 2 * GRANULE);
  assert_int_equal(f->ledger.count, 1);
  assert_int_equal(space_bytes(&f->space), 2 * GRANULE);
  assert_int_equal(registered(f), 2 * GRANULE);
  /* Growing for more than a chunk: a chunk of the granules it needs. */
  assert_int_equal(dynamic_grow(&f->dyn, 5 * MiB), 0);
  assert_string_equal(dynamic_refusal(), "");
  assert_int_equal(f->ledger.count, 2);
  assert_int_equal(space_bytes(&f->space), 2 * GRANULE + 6 * MiB);
  assert_int_equal(registered(f), f->ledger.bytes);
  assert_int_equal(dynamic_check(&f->dyn), 0);
  /* Both free: trimming gives back every chunk but the first. */
  dynamic_release_free_chunks(&f->dyn);
  assert_int_equal(f->ledger.count, 1);
  assert_int_equal(space_bytes(&f->space), 2 * GRANULE);
  assert_int_equal(registered(f), 2 * GRANULE);
  /* A chunk in use stays. */
  assert_int_equal(dynamic_grow(&f->dyn, GRANULE), 0);
  bool pristine;
  void *a = em_alloc(&f->space.em, 2 * GRANULE, PAGE, &pristine);
  void *b = em_alloc(&f->space.em, PAGE, PAGE, &pristine);
  assert_non_null(a);
  assert_non_null(b);
  dynamic_release_free_chunks(&f->dyn);
  assert_int_equal(f->ledger.count, 2);
  em_free(&f->space.em, a, 2 * GRANULE);
  em_free(&f->space.em, b, PAGE);
  dynamic_release_free_chunks(&f->dyn);
  assert_int_equal(f->ledger.count, 1);
  /* The provider refuses: -1, its reason kept for the thread. */
  f->ledger.refuse = true;
  assert_int_equal(dynamic_grow(&f->dyn, GRANULE), -1);
  assert_non_null(strstr(dynamic_refusal(), "provider fake cannot obtain"));
  assert_non_null(strstr(dynamic_refusal(), "the fake refuses"));
  assert_int_equal(registered(f), 2 * GRANULE);
  close_dynamic(f);
}

static void test_cap(void **state) {
  (void)state;
  fixture *f = open_dynamic(4 * MiB, 10 * MiB);
  assert_int_equal(registered(f), 4 * MiB);
  assert_int_equal(dynamic_grow(&f->dyn, MiB), 0);
  assert_int_equal(registered(f), 8 * MiB);
  /* Near the cap, a chunk only as big as what is left. */
  assert_int_equal(dynamic_grow(&f->dyn, MiB), 0);
  assert_int_equal(registered(f), 10 * MiB);
  assert_int_equal(dynamic_grow(&f->dyn, MiB), -1);
  assert_non_null(strstr(dynamic_refusal(), "cap of 10485760 registered bytes is reached"));
  assert_int_equal(f->ledger.count, 3);
  /* A direct block beyond what the cap leaves: ENOMEM naming the cap. */
  dynamic_release_free_chunks(&f->dyn);
  assert_int_equal(registered(f), 4 * MiB);
  assert_null(dynamic_direct_alloc(&f->dyn, 7 * MiB, 0, false, 0, "test"));
  assert_int_equal(errno, ENOMEM);
  assert_non_null(strstr(pinheap_last_error(), "test(7340032): out of memory: the heap's cap"));
  void *p = dynamic_direct_alloc(&f->dyn, 6 * MiB, 0, false, 0, "test");
  assert_non_null(p);
  assert_int_equal(registered(f), 10 * MiB);
  assert_true(dynamic_direct_free(&f->dyn, p));
  close_dynamic(f);
}

static void test_direct(void **state) {
  (void)state;
  fixture *f = open_dynamic(GRANULE, 0);
  size_t size = 3 * MiB + 100, bytes = 3 * MiB + PAGE;
  char *p = dynamic_direct_alloc(&f->dyn, size, 0, true, 0, "test");
  assert_non_null(p);
  assert_int_equal(f->ledger.count, 2);
  assert_int_equal(p[0] | p[size - 1], 0);
  p[0] = 1;
  /* Found by its start and inside, exact only by its start. */
  pinheap_region r;
  assert_int_equal(dynamic_direct_find(&f->dyn, p, true, &r), bytes);
  assert_ptr_equal(r.base, p);
  assert_int_equal(r.size, bytes);
  assert_int_equal(dynamic_direct_find(&f->dyn, p + MiB, false, NULL), bytes);
  assert_int_equal(dynamic_direct_find(&f->dyn, p + MiB, true, NULL), 0);
  assert_int_equal(dynamic_direct_find(&f->dyn, p + bytes, false, NULL), 0);
  size_t reg, used, blocks;
  dynamic_direct_stats(&f->dyn, &reg, &used, &blocks);
  assert_int_equal(reg, bytes);
  assert_int_equal(used, bytes);
  assert_int_equal(blocks, 1);
  assert_true(dynamic_peak(&f->dyn) >= bytes);
  /* In place while more than half of the registration stays used. */
  assert_true(dynamic_direct_resize(&f->dyn, p, 2 * MiB, &r));
  assert_int_equal(dynamic_direct_find(&f->dyn, p, true, NULL), 2 * MiB);
  assert_false(dynamic_direct_resize(&f->dyn, p, 3 * MiB / 2, &r));
  assert_false(dynamic_direct_resize(&f->dyn, p, bytes + PAGE, &r));
  assert_int_equal(r.size, bytes);
  assert_false(dynamic_direct_resize(&f->dyn, p + PAGE, 2 * MiB, &r));
  assert_int_equal(r.size, 0);
  assert_int_equal(dynamic_check(&f->dyn), 0);
  /* Growing from it: half as much again as its registration. */
  char *q = dynamic_direct_alloc(&f->dyn, bytes + PAGE, 0, false, bytes, "test");
  assert_non_null(q);
  assert_true(dynamic_direct_find(&f->dyn, q, true, &r) == bytes + PAGE);
  assert_int_equal(r.size, (bytes + bytes / 2 + PAGE - 1) / PAGE * PAGE);
  assert_false(dynamic_direct_free(&f->dyn, q + PAGE));
  assert_true(dynamic_direct_free(&f->dyn, p));
  assert_false(dynamic_direct_free(&f->dyn, p));
  assert_true(dynamic_direct_free(&f->dyn, q));
  dynamic_direct_stats(&f->dyn, &reg, &used, &blocks);
  assert_int_equal(reg + used + blocks, 0);
  assert_int_equal(f->ledger.count, 1);
  /* The provider refuses: NULL with its reason, nothing counted. */
  f->ledger.refuse = true;
  assert_null(dynamic_direct_alloc(&f->dyn, 4 * MiB, 0, false, 0, "test"));
  assert_non_null(strstr(pinheap_last_error(), "the fake refuses"));
  assert_int_equal(registered(f), GRANULE);
  f->ledger.refuse = false;
  /* Blocks left live go back at close. */
  assert_non_null(dynamic_direct_alloc(&f->dyn, 4 * MiB, 2 * MiB, false, 0, "test"));
  close_dynamic(f);
}

typedef struct left {
  void *base[8];
  size_t size[8];
  unsigned count;
} left;

static void leave(void *ctx, void *base, size_t size) {
  left *l = ctx;
  assert_true(l->count < 8);
  l->base[l->count] = base;
  l->size[l->count++] = size;
}

static void test_quarantine(void **state) {
  (void)state;
  fixture *f = open_dynamic(GRANULE, 20 * MiB);
  left l = {0};
  void *p[4];
  for (int i = 0; i < 4; i++) p[i] = dynamic_direct_alloc(&f->dyn, (size_t)(i + 3) * MiB, 0, false, 0, "test");
  for (int i = 0; i < 4; i++) assert_non_null(p[i]);
  /* Off: nothing enters. */
  assert_false(dynamic_direct_quarantine(&f->dyn, p[0]));
  dynamic_quarantine_open(&f->dyn, 9 * MiB, leave, &l);
  assert_true(dynamic_direct_quarantine(&f->dyn, p[0]));
  assert_true(dynamic_direct_quarantine(&f->dyn, p[1]));
  /* Quarantined: no longer live, still registered. */
  assert_int_equal(dynamic_direct_find(&f->dyn, p[0], true, NULL), 0);
  assert_false(dynamic_direct_free(&f->dyn, p[0]));
  assert_int_equal(l.count, 0);
  size_t reg, used, blocks;
  dynamic_direct_stats(&f->dyn, &reg, &used, &blocks);
  assert_int_equal(reg, 18 * MiB);
  assert_int_equal(used, 11 * MiB);
  assert_int_equal(blocks, 2);
  assert_int_equal(dynamic_check(&f->dyn), 0);
  /* Over its cap: the oldest leaves, seen by leave before it goes back. */
  assert_true(dynamic_direct_quarantine(&f->dyn, p[2]));
  assert_int_equal(l.count, 1);
  assert_ptr_equal(l.base[0], p[0]);
  assert_int_equal(l.size[0], 3 * MiB);
  /* No room under the heap's cap (2 + 4 + 5 + 6 registered, 10 more is
   * over 20): the quarantine is drained for it. */
  void *big = dynamic_direct_alloc(&f->dyn, 10 * MiB, 0, false, 0, "test");
  assert_non_null(big);
  assert_int_equal(l.count, 3);
  assert_ptr_equal(l.base[2], p[2]);
  assert_int_equal(f->dyn.quarantine.list.count, 0);
  assert_int_equal(registered(f), 18 * MiB);
  /* A block bigger than the quarantine's cap never enters. */
  assert_false(dynamic_direct_quarantine(&f->dyn, big));
  assert_int_equal(dynamic_direct_find(&f->dyn, big, true, NULL), 10 * MiB);
  assert_true(dynamic_direct_free(&f->dyn, p[3]));
  assert_int_equal(dynamic_check(&f->dyn), 0);
  /* Drain lets every quarantined block leave. */
  void *small = dynamic_direct_alloc(&f->dyn, MiB, 0, false, 0, "test");
  assert_true(dynamic_direct_quarantine(&f->dyn, small));
  dynamic_quarantine_drain(&f->dyn);
  assert_int_equal(l.count, 4);
  assert_ptr_equal(l.base[3], small);
  assert_true(dynamic_direct_free(&f->dyn, big));
  close_dynamic(f);
}

static size_t cached_bytes(fixture *f) {
  size_t blocks, bytes;
  dynamic_cache_stats(&f->dyn, &blocks, &bytes);
  return bytes;
}

static size_t cached_blocks(fixture *f) {
  size_t blocks, bytes;
  dynamic_cache_stats(&f->dyn, &blocks, &bytes);
  return blocks;
}

static void *direct(fixture *f, size_t size) {
  void *p = dynamic_direct_alloc(&f->dyn, size, 0, false, 0, "test");
  assert_non_null(p);
  assert_int_equal(dynamic_check(&f->dyn), 0);
  return p;
}

static void release(fixture *f, void *p) {
  assert_true(dynamic_direct_free(&f->dyn, p));
  assert_int_equal(dynamic_check(&f->dyn), 0);
  /* Never past its bounds. */
  assert_true(cached_bytes(f) <= 10 * MiB);
  assert_true(cached_blocks(f) <= 2);
}

/* A freed block's registration is reused by a block of its size, or up to
 * a quarter of it smaller, without the provider; the cache keeps to its
 * bounds. */
static void test_cache_reuse(void **state) {
  (void)state;
  fixture *f = open_dynamic(GRANULE, 0);
  dynamic_cache_open(&f->dyn, 10 * MiB, 2);
  char *p = direct(f, 4 * MiB);
  p[0] = 7;
  unsigned obtains = f->ledger.obtains;
  release(f, p);
  assert_int_equal(f->ledger.releases, 0);
  assert_int_equal(cached_bytes(f), 4 * MiB);
  /* Cached: registered, neither live nor in use. */
  size_t reg, used, blocks;
  dynamic_direct_stats(&f->dyn, &reg, &used, &blocks);
  assert_int_equal(reg, 4 * MiB);
  assert_int_equal(used + blocks, 0);
  assert_int_equal(dynamic_direct_find(&f->dyn, p, false, NULL), 0);
  assert_false(dynamic_direct_free(&f->dyn, p));
  /* The same size again: the same registration, no obtain. */
  char *q = direct(f, 4 * MiB);
  assert_ptr_equal(q, p);
  assert_int_equal(f->ledger.obtains, obtains);
  assert_int_equal(cached_blocks(f), 0);
  release(f, q);
  /* A quarter smaller still takes it, used as asked; zeroed when asked. */
  q = dynamic_direct_alloc(&f->dyn, 3 * MiB + 1, 0, true, 0, "test");
  assert_ptr_equal(q, p);
  assert_int_equal(q[0], 0);
  pinheap_region r;
  assert_int_equal(dynamic_direct_find(&f->dyn, q, true, &r), 3 * MiB + PAGE);
  assert_int_equal(r.size, 4 * MiB);
  assert_int_equal(f->ledger.obtains, obtains);
  release(f, q);
  /* Smaller still, larger, or aligned beyond it: a registration of its own. */
  void *small = direct(f, 3 * MiB - PAGE);
  void *big = direct(f, 4 * MiB + PAGE);
  assert_int_equal(f->ledger.obtains, obtains + 2);
  if ((uintptr_t)p % (8 * MiB) != 0) {
    void *aligned = dynamic_direct_alloc(&f->dyn, 4 * MiB, 8 * MiB, false, 0, "test");
    assert_non_null(aligned);
    assert_ptr_not_equal(aligned, p);
    release(f, aligned);
  }
  /* The count bound: the oldest goes. */
  release(f, small);
  release(f, big);
  assert_int_equal(cached_blocks(f), 2);
  assert_int_equal(cached_bytes(f), 7 * MiB);
  /* The byte bound: 4 MiB more would pass 10, the oldest go first. */
  void *a = direct(f, 5 * MiB);
  release(f, a);
  assert_int_equal(cached_bytes(f), 4 * MiB + PAGE + 5 * MiB);
  /* Larger than the cache: back at once. */
  unsigned releases = f->ledger.releases;
  release(f, direct(f, 11 * MiB));
  assert_int_equal(f->ledger.releases, releases + 1);
  assert_int_equal(cached_bytes(f), 9 * MiB + PAGE);
  /* Drained: everything back but the chunk; cached blocks also go at close. */
  assert_int_equal(dynamic_cache_drain(&f->dyn), 9 * MiB + PAGE);
  assert_int_equal(f->ledger.bytes, GRANULE);
  assert_int_equal(registered(f), GRANULE);
  release(f, direct(f, 6 * MiB));
  assert_int_equal(cached_blocks(f), 1);
  close_dynamic(f);
}

/* Cached registrations go back before a request fails: under the heap's
 * cap, when the provider refuses, and when a chunk must grow. */
static void test_cache_gives_back(void **state) {
  (void)state;
  fixture *f = open_dynamic(GRANULE, 16 * MiB);
  dynamic_cache_open(&f->dyn, 64 * MiB, 8);
  release(f, direct(f, 3 * MiB));
  release(f, direct(f, 4 * MiB));
  assert_int_equal(registered(f), GRANULE + 7 * MiB);
  /* 8 MiB fits under the cap of 16 only without the cache. */
  void *p = direct(f, 8 * MiB);
  assert_int_equal(cached_blocks(f), 0);
  assert_int_equal(registered(f), GRANULE + 8 * MiB);
  release(f, p);
  /* A chunk of 8 MiB fits under the cap only without the cache either. */
  assert_int_equal(dynamic_grow(&f->dyn, 8 * MiB), 0);
  assert_int_equal(cached_blocks(f), 0);
  assert_int_equal(registered(f), GRANULE + 8 * MiB);
  close_dynamic(f);
  /* No cap, but the provider refuses past 12 MiB in all. */
  f = open_dynamic(GRANULE, 0);
  dynamic_cache_open(&f->dyn, 64 * MiB, 8);
  release(f, direct(f, 3 * MiB));
  release(f, direct(f, 4 * MiB));
  f->ledger.limit = 12 * MiB;
  p = direct(f, 6 * MiB);
  assert_int_equal(cached_blocks(f), 0);
  assert_int_equal(f->ledger.bytes, GRANULE + 6 * MiB);
  /* Refused with the cache empty: NULL, the provider's reason. */
  assert_null(dynamic_direct_alloc(&f->dyn, 5 * MiB, 0, false, 0, "test"));
  assert_non_null(strstr(pinheap_last_error(), "the fake refuses"));
  release(f, p);
  assert_int_equal(dynamic_grow(&f->dyn, 6 * MiB), 0);
  assert_int_equal(cached_blocks(f), 0);
  close_dynamic(f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_chunks),
      cmocka_unit_test(test_cap),
      cmocka_unit_test(test_direct),
      cmocka_unit_test(test_quarantine),
      cmocka_unit_test(test_cache_reuse),
      cmocka_unit_test(test_cache_gives_back),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
