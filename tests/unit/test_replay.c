/*
 * Unit tests of the comparison's replay (bench/compare/replay.c) and of
 * peer_region_holds (bench/compare/peer.c): a peer with a fixed region that
 * serves some requests from memory beyond it must not be credited with
 * them. A replay counts each such block (outside), frees it, and counts the
 * request failed; a realloc moved beyond the region loses its old block; a
 * peer that cannot say (owns NULL) is taken at its word.
 *
 *   test_replay
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>
#include <sys/mman.h>

#include "peer.h"
#include "replay.h"

#define SPILL_REGION ((size_t)1 << 20)
#define SPILL_FROM ((size_t)64 << 10) /* requests of this many bytes and more go beyond the region */
#define SPILL_MAX 16

/* A bump heap over a region that maps each request of SPILL_FROM bytes or
 * more on its own, beyond the region (as a peer falling back to the OS).
 * Invariants: top <= SPILL_REGION; out[0..n) are the live spills. */
typedef struct spill_heap {
  char *base;
  size_t top;
  struct {
    void *ptr;
    size_t len;
  } out[SPILL_MAX];
  size_t n, freed_outside;
} spill_heap;

static spill_heap spill;

static peer_heap *spill_create(const peer *p, size_t size, unsigned threads, bool prefault, char *err, size_t errlen) {
  (void)p, (void)size, (void)threads, (void)prefault, (void)err, (void)errlen;
  memset(&spill, 0, sizeof spill);
  spill.base = peer_region_map(SPILL_REGION, 4096, false);
  return spill.base ? (peer_heap *)&spill : NULL;
}

static void *spill_malloc(peer_heap *h, size_t size) {
  spill_heap *s = (spill_heap *)h;
  if (size >= SPILL_FROM) {
    if (s->n == SPILL_MAX) return NULL;
    void *q = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (q == MAP_FAILED) return NULL;
    s->out[s->n].ptr = q;
    s->out[s->n++].len = size;
    return q;
  }
  size = (size + 15) & ~(size_t)15;
  if (size > SPILL_REGION - s->top) return NULL;
  s->top += size;
  return s->base + s->top - size;
}

static void spill_free(peer_heap *h, void *ptr) {
  spill_heap *s = (spill_heap *)h;
  for (size_t i = 0; i < s->n; i++)
    if (s->out[i].ptr == ptr) {
      munmap(ptr, s->out[i].len);
      s->out[i] = s->out[--s->n];
      s->freed_outside++;
      return;
    }
}

static void *spill_calloc(peer_heap *h, size_t n, size_t size) { return spill_malloc(h, n * size); }
static void *spill_aligned(peer_heap *h, size_t a, size_t size) { return (void)a, spill_malloc(h, size); }

/* Moves the block (its first bytes are enough here) and frees the old one. */
static void *spill_realloc(peer_heap *h, void *ptr, size_t size) {
  void *q = spill_malloc(h, size);
  if (q && ptr) {
    memcpy(q, ptr, 16);
    spill_free(h, ptr);
  }
  return q;
}

static bool spill_owns(peer_heap *h, const void *ptr, size_t size) {
  return peer_region_holds(((spill_heap *)h)->base, SPILL_REGION, ptr, size);
}

static void spill_destroy(peer_heap *h) {
  spill_heap *s = (spill_heap *)h;
  while (s->n) spill_free(h, s->out[0].ptr);
  peer_region_unmap(s->base, SPILL_REGION);
}

static const peer spill_peer = {.name = "spill", .flags = PEER_FIXED, .create = spill_create,
                                .malloc = spill_malloc, .calloc = spill_calloc, .realloc = spill_realloc,
                                .aligned = spill_aligned, .free = spill_free, .owns = spill_owns,
                                .destroy = spill_destroy};

/* slot 0: 1000 B; slot 1: 100 KiB (beyond); slot 0 grown to 200 KiB
 * (beyond: the 1000 B are gone with it); slot 2: 2000 B; the frees. */
static const ops_rec spill_recs[] = {
    {OPS_MALLOC, 0, 1000, 0}, {OPS_MALLOC, 1, 100 << 10, 0}, {OPS_REALLOC, 0, 200 << 10, 1000},
    {OPS_MALLOC, 2, 2000, 0}, {OPS_FREE, 0, 200 << 10, 0},   {OPS_FREE, 1, 100 << 10, 0},
    {OPS_FREE, 2, 2000, 0},
};

static ops spill_ops(void) {
  ops o = {.rec = spill_recs};
  o.h.n = sizeof spill_recs / sizeof spill_recs[0];
  o.h.slots = 3;
  o.h.peak_live = (200 << 10) + (100 << 10) + 2000;
  o.h.events = o.h.n;
  o.h.measure = o.h.n;
  return o;
}

static void test_outside_counted_as_failure(void **state) {
  (void)state;
  ops o = spill_ops();
  replay_options ro = {.heap = SPILL_REGION};
  replay_result r;
  assert_int_equal(replay_run(&spill_peer, &o, &ro, &r), 0);
  assert_true(r.created);
  assert_false(r.completed);
  assert_int_equal(r.outside, 2);
  assert_int_equal(r.outside_size, 100 << 10);
  assert_int_equal(r.failures, 2);
  assert_int_equal(r.fail_record, 2);
  assert_int_equal(r.fail_live, 1000);
  /* Both blocks beyond the region were given back at once. */
  assert_int_equal(spill.freed_outside, 2);
}

static void test_stop_at_first_outside(void **state) {
  (void)state;
  ops o = spill_ops();
  replay_options ro = {.heap = SPILL_REGION, .stop_at_failure = true};
  replay_result r;
  assert_int_equal(replay_run(&spill_peer, &o, &ro, &r), 0);
  assert_int_equal(r.outside, 1);
  assert_int_equal(r.failures, 1);
  assert_int_equal(r.fail_record, 2);
}

static void test_no_owns_taken_at_its_word(void **state) {
  (void)state;
  peer p = spill_peer;
  p.owns = NULL;
  ops o = spill_ops();
  replay_options ro = {.heap = SPILL_REGION};
  replay_result r;
  assert_int_equal(replay_run(&p, &o, &ro, &r), 0);
  assert_true(r.completed);
  assert_int_equal(r.outside, 0);
  assert_int_equal(r.failures, 0);
}

static void test_region_holds(void **state) {
  (void)state;
  char *b = (char *)(uintptr_t)0x100000;
  assert_true(peer_region_holds(b, 4096, b, 4096));
  assert_true(peer_region_holds(b, 4096, b + 4095, 1));
  assert_true(peer_region_holds(b, 4096, b + 4096, 0));
  assert_false(peer_region_holds(b, 4096, b + 4095, 2));
  assert_false(peer_region_holds(b, 4096, b - 1, 1));
  assert_false(peer_region_holds(b, 4096, b + 4097, 0));
  assert_false(peer_region_holds(b, 4096, b + 16, SIZE_MAX));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_outside_counted_as_failure),
      cmocka_unit_test(test_stop_at_first_outside),
      cmocka_unit_test(test_no_owns_taken_at_its_word),
      cmocka_unit_test(test_region_holds),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
