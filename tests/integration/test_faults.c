/*
 * Fault injection: a provider over mmap whose Nth call (obtain or release)
 * fails, under a fixed workload, for N = 1, 2, ... until a run makes fewer
 * than N calls. For every N: a call of the API that returns NULL does so
 * only because of the injected failure, with ENOMEM and a message naming
 * the provider; pinheap_check finds nothing broken after every step; and
 * once the heap is destroyed, every region obtained was released exactly
 * once (same base, size and handle), the failed release included (the heap
 * forgets a region whose release fails).
 *
 * Workloads: FIXED heaps made with and without min_size retries; DYNAMIC
 * heaps growing through jemalloc's hooks (small objects) and through the
 * large path, with direct blocks, realloc across the direct threshold,
 * pinheap_trim, and growth again after it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "pinheap.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)
#define FAULTY_REGIONS 256

/* The provider. Single-threaded workloads: no lock. */
typedef struct faulty {
  unsigned long calls;   /* obtain and release calls so far */
  unsigned long fail_at; /* the call that fails, from 1; 0: none */
  unsigned long failed;  /* the call that failed, 0: none yet */
  int key;               /* what the handle points to */
  struct {
    void *base;
    size_t size;
  } live[FAULTY_REGIONS];
  unsigned nlive;
  unsigned long obtains, releases, bad_releases;
  size_t obtained_bytes, released_bytes;
} faulty;

/* Whether this call is the one to fail. */
static bool faulty_fails(faulty *f) {
  if (++f->calls != f->fail_at) return false;
  f->failed = f->calls;
  return true;
}

static int faulty_obtain(void *ctx, size_t size, size_t align, void **base, void **handle) {
  faulty *f = ctx;
  if (faulty_fails(f) || f->nlive == FAULTY_REGIONS) return ENOMEM;
  char *raw = mmap(NULL, size + align, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED) return ENOMEM;
  char *b = (char *)(((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1));
  if (b > raw) munmap(raw, (size_t)(b - raw));
  munmap(b + size, (size_t)(raw + align - b));
  f->live[f->nlive].base = b;
  f->live[f->nlive++].size = size;
  f->obtains++;
  f->obtained_bytes += size;
  *base = b;
  *handle = &f->key;
  return 0;
}

/* Forgets the region and unmaps it even when the call fails: the heap
 * forgets it either way, and counts as released. */
static int faulty_release(void *ctx, void *base, size_t size, void *handle) {
  faulty *f = ctx;
  int err = faulty_fails(f) ? EIO : 0;
  unsigned i = 0;
  while (i < f->nlive && f->live[i].base != base) i++;
  if (i == f->nlive || f->live[i].size != size || handle != &f->key) {
    f->bad_releases++;
    return EINVAL;
  }
  f->live[i] = f->live[--f->nlive];
  f->releases++;
  f->released_bytes += size;
  munmap(base, size);
  return err;
}

static faulty prov;
static pinheap_provider pv = {.name = "faulty", .ctx = &prov, .obtain = faulty_obtain, .release = faulty_release};

/* A call of the API returned NULL: only for the injected failure, during
 * that call, with ENOMEM and the provider named. */
static void expect_refused(const char *call, unsigned long calls_before, int err) {
  if (!prov.failed || prov.failed <= calls_before)
    fail_msg("%s failed with no provider failure during it (fail_at %lu): errno %d, %s", call, prov.fail_at, err,
             pinheap_last_error());
  if (err != ENOMEM || !strstr(pinheap_last_error(), "faulty"))
    fail_msg("%s after a provider failure (call %lu): errno %d, \"%s\", expected ENOMEM naming the provider", call,
             prov.failed, err, pinheap_last_error());
}

/* TRY(expr): runs expr (a pointer) and, when it is NULL, checks why. */
static unsigned long try_calls;

static void try_begin(void) {
  try_calls = prov.calls;
  errno = 0;
}

static void *try_end(void *r, const char *call) {
  if (!r) expect_refused(call, try_calls, errno);
  return r;
}

#define TRY(expr) (try_begin(), try_end((void *)(expr), #expr))

static void expect_consistent(pinheap *h, const char *where) {
  int broken = pinheap_check(h);
  if (broken) fail_msg("%d invariants broken %s (fail_at %lu)", broken, where, prov.fail_at);
}

static void expect_all_released(void) {
  if (prov.nlive || prov.bad_releases || prov.obtains != prov.releases || prov.obtained_bytes != prov.released_bytes)
    fail_msg("fail_at %lu: %u regions still live, %lu bad releases, %lu obtains and %lu releases, %zu and %zu bytes",
             prov.fail_at, prov.nlive, prov.bad_releases, prov.obtains, prov.releases, prov.obtained_bytes,
             prov.released_bytes);
}

/* Runs workload with the provider failing at call n; false once a run made
 * fewer than n calls (nothing was injected). */
static bool run_with_fault(unsigned long n, void (*workload)(void)) {
  memset(&prov, 0, sizeof prov);
  prov.fail_at = n;
  workload();
  expect_all_released();
  return prov.failed != 0;
}

static unsigned long loop(void (*workload)(void)) {
  unsigned long n = 1;
  while (run_with_fault(n, workload)) n++;
  return n - 1;
}

static bool created; /* whether the last workload's heap was created */

static void fixed_workload(size_t min_size) {
  pinheap_options o;
  pinheap_options_init(&o);
  o.size = 64 * MiB;
  o.min_size = min_size;
  o.arenas = 1;
  o.provider = &pv;
  pinheap *h = TRY(pinheap_create(&o));
  if (!(created = h != NULL)) return;
  void *small[64], *large[8];
  for (int i = 0; i < 64; i++) small[i] = TRY(pinheap_malloc(h, 16 + (size_t)i * 200));
  for (int i = 0; i < 8; i++) large[i] = TRY(pinheap_malloc(h, (size_t)(i + 1) * MiB));
  expect_consistent(h, "after allocating");
  for (int i = 0; i < 64; i++) pinheap_free(h, small[i]);
  for (int i = 0; i < 8; i++) pinheap_free(h, large[i]);
  pinheap_trim(h);
  expect_consistent(h, "after trim");
  pinheap_destroy(h);
}

static void fixed_with_retries(void) { fixed_workload(16 * MiB); }
static void fixed_without_retries(void) { fixed_workload(0); }

static void test_fixed(void **state) {
  (void)state;
  /* Calls: obtain (and, with min_size, a smaller one after it failed), then
   * release. */
  assert_int_equal(loop(fixed_with_retries), 2);
  run_with_fault(1, fixed_with_retries);
  assert_true(created);
  assert_int_equal(prov.obtains, 1);
  assert_int_equal(prov.obtained_bytes, 56 * MiB); /* an eighth smaller */
  assert_int_equal(loop(fixed_without_retries), 2);
  run_with_fault(1, fixed_without_retries);
  assert_false(created);
}

#define DYN_SMALL 3000
#define DYN_LARGE 40
#define DYN_DIRECT 6

static unsigned dynamic_debug; /* the debug flags of the DYNAMIC heaps */

static void dynamic_workload(void) {
  pinheap_options o;
  pinheap_options_init(&o);
  o.mode = PINHEAP_DYNAMIC;
  o.chunk_size = 4 * MiB;
  o.direct_threshold = 2 * MiB;
  o.arenas = 2;
  o.provider = &pv;
  o.debug = dynamic_debug;
  pinheap *h = TRY(pinheap_create(&o));
  if (!h) return;
  static void *small[DYN_SMALL], *large[DYN_LARGE], *direct[DYN_DIRECT];
  /* Small objects: jemalloc asks the hooks for slabs, which grow the heap. */
  for (int i = 0; i < DYN_SMALL; i++) small[i] = TRY(pinheap_malloc(h, 64 + (size_t)(i * 37) % 4000));
  expect_consistent(h, "after small objects");
  /* Large blocks: the large path grows the heap. */
  for (int i = 0; i < DYN_LARGE; i++) large[i] = TRY(pinheap_malloc(h, 300 * KiB + (size_t)i * 29 * KiB));
  expect_consistent(h, "after large blocks");
  for (int i = 0; i < DYN_DIRECT; i++) direct[i] = TRY(pinheap_calloc(h, 1, 2 * MiB + (size_t)i * 100 * KiB));
  expect_consistent(h, "after direct blocks");
  /* Across the direct threshold both ways: a new registration, or back to
   * a chunk. On failure the block stays as it was. */
  for (int i = 0; i < 4; i++) {
    void **slot = i < 2 ? &large[i] : &direct[i];
    if (!*slot) continue;
    memset(*slot, i + 1, 1000);
    void *q = TRY(pinheap_realloc(h, *slot, i < 2 ? 5 * MiB : 700 * KiB));
    if (q) *slot = q;
    for (int k = 0; k < 1000; k++)
      if (((unsigned char *)*slot)[k] != i + 1) fail_msg("fail_at %lu: realloc lost byte %d", prov.fail_at, k);
  }
  /* Aligned beyond a chunk's granule: growth for size and alignment. */
  void *aligned = TRY(pinheap_aligned_alloc(h, 4 * MiB, 1 * MiB));
  if (aligned) assert_int_equal((uintptr_t)aligned % (4 * MiB), 0);
  pinheap_free(h, aligned);
  expect_consistent(h, "after realloc");
  /* Half of everything freed, the free chunks given back, then growth again. */
  for (int i = 0; i < DYN_SMALL; i += 2) pinheap_free(h, small[i]);
  for (int i = 0; i < DYN_LARGE; i += 2) pinheap_free(h, large[i]);
  for (int i = 0; i < DYN_DIRECT; i += 2) pinheap_free(h, direct[i]);
  pinheap_trim(h);
  expect_consistent(h, "after trim");
  for (int i = 0; i < DYN_SMALL; i += 2) small[i] = TRY(pinheap_malloc(h, 5000 + (size_t)i));
  for (int i = 0; i < DYN_LARGE; i += 2) large[i] = TRY(pinheap_malloc(h, 1 * MiB));
  expect_consistent(h, "after growing again");
  for (int i = 0; i < DYN_SMALL; i++) pinheap_free(h, small[i]);
  for (int i = 0; i < DYN_LARGE; i++) pinheap_free(h, large[i]);
  for (int i = 1; i < DYN_DIRECT; i += 2) pinheap_free(h, direct[i]);
  pinheap_trim(h);
  expect_consistent(h, "after freeing everything");
  pinheap_destroy(h);
}

static void test_dynamic(void **state) {
  (void)state;
  for (dynamic_debug = 0; dynamic_debug <= PINHEAP_DEBUG_ALL; dynamic_debug += PINHEAP_DEBUG_ALL) {
    unsigned long n = loop(dynamic_workload);
    printf("test_faults: DYNAMIC workload (debug %u): the provider failed at each of its %lu calls in turn\n",
           dynamic_debug, n);
    assert_true(n >= 30);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fixed),
      cmocka_unit_test(test_dynamic),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
