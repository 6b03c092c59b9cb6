/*
 * Integration tests of the quarantine of freed direct blocks
 * (PINHEAP_DEBUG_QUARANTINE): a write into a freed direct block, as a late
 * remote write would make, lands in memory still registered and poisoned,
 * and is reported, naming the block, when the block leaves the quarantine
 * (pushed out by newer ones, or at pinheap_trim), by pinheap_check and at
 * pinheap_destroy, instead of killing the process. The quarantine's bytes
 * are capped, count as registered (capacity, the DYNAMIC cap), and give way
 * when the heap needs them. What must abort runs in a forked child whose
 * standard error is read back.
 *
 * The tests write freed memory on purpose: they are not for valgrind.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asserts.h"
#include "child.h"
#include "counting.h"
#include "pinheap.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

static pinheap *quarantine_heap(pinheap_mode mode, const pinheap_provider *pv, size_t cap, size_t quarantine) {
  pinheap_options o;
  pinheap_options_init(&o);
  o.mode = mode;
  o.size = cap;
  o.chunk_size = 2 * MiB;
  o.direct_threshold = 1 * MiB;
  o.arenas = 1;
  o.provider = pv;
  o.debug = PINHEAP_DEBUG_QUARANTINE;
  o.quarantine = quarantine;
  o.direct_cache = 0; /* a block the quarantine refuses goes back at once */
  pinheap *h = pinheap_create(&o);
  if (!h) fail_msg("pinheap_create: %s", pinheap_last_error());
  return h;
}

static const pinheap_mode modes[] = {PINHEAP_DYNAMIC, PINHEAP_SIMPLE};

/* A direct block freed, then written at byte 4096, as a late remote write
 * would; the child prints the block's address. */
static char *free_and_write(pinheap *h) {
  char *p = pinheap_malloc(h, 2 * MiB);
  if (!p) _exit(3);
  memset(p, 1, 2 * MiB);
  pinheap_free(h, p);
  p[4096] = 0x2a;
  fprintf(stderr, "wrote into %p\n", (void *)p);
  return p;
}

typedef enum { AT_CHECK, AT_DESTROY, PUSHED_OUT, AT_TRIM } when;

struct late_case {
  pinheap_mode mode;
  when at;
};

static void late_write_child(void *arg) {
  const struct late_case *lc = arg;
  pinheap *h = quarantine_heap(lc->mode, NULL, 0, 5 * MiB);
  free_and_write(h);
  switch (lc->at) {
  case AT_CHECK:
    fprintf(stderr, "check: %d\n", pinheap_check(h));
    break;
  case AT_DESTROY:
    pinheap_destroy(h);
    break;
  case PUSHED_OUT: /* two more 2 MiB blocks pass the 5 MiB cap */
    for (int i = 0; i < 2; i++) pinheap_free(h, pinheap_malloc(h, 2 * MiB));
    break;
  case AT_TRIM:
    pinheap_trim(h);
    break;
  }
}

static void expect_report(const struct late_case *lc, const child_result *r, const char *where) {
  void *p = NULL;
  const char *wrote = strstr(r->err, "wrote into ");
  if (!wrote || sscanf(wrote, "wrote into %p", &p) != 1) fail_msg("%s: stderr:\n%s", where, r->err);
  char text[160];
  snprintf(text, sizeof text,
           "direct block %p: freed block of %zu bytes in quarantine written after its free: byte 4096 is 0x2a", p,
           2 * MiB);
  if (!strstr(r->err, text)) fail_msg("%s (%s): no \"%s\" in:\n%s", where, lc->mode ? "dynamic" : "simple", text, r->err);
}

/* The late write is reported, naming the block: by pinheap_check (which
 * counts it), at pinheap_destroy (which goes on), and when the block
 * leaves the quarantine, pushed out or at pinheap_trim (which abort, as
 * every broken check of the debugging aids does). Never a crash. */
static void test_late_write_reported(void **state) {
  (void)state;
  for (size_t m = 0; m < 2; m++) {
    static const char *names[] = {"check", "destroy", "pushed out", "trim"};
    for (int at = AT_CHECK; at <= AT_TRIM; at++) {
      struct late_case lc = {modes[m], (when)at};
      child_result r;
      child_run(late_write_child, &lc, &r);
      bool aborts = at == PUSHED_OUT || at == AT_TRIM;
      if (aborts ? !child_aborted(&r) : (r.status == -1 || !WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0))
        fail_msg("%s: status %#x, stderr:\n%s", names[at], r.status, r.err);
      expect_report(&lc, &r, names[at]);
      if (at == AT_CHECK) assert_contains(r.err, "check: 1");
    }
  }
}

/* Quarantined blocks stay registered (capacity, not allocated, not live
 * blocks), the oldest leave past the cap, a block larger than the cap goes
 * back at once, pinheap_trim empties the quarantine, an untouched block
 * passes its check, and a double free of a quarantined block aborts. */
static void test_quarantine_books(void **state) {
  (void)state;
  counting c = {0};
  pinheap_provider pv = counting_provider(&c);
  pinheap *h = quarantine_heap(PINHEAP_DYNAMIC, &pv, 0, 5 * MiB);
  pinheap_stats s0;
  assert_int_equal(pinheap_get_stats(h, &s0), 0);
  size_t base = c.live_bytes;
  char *p[3];
  for (int i = 0; i < 3; i++) assert_non_null(p[i] = pinheap_malloc(h, 2 * MiB));
  for (int i = 0; i < 3; i++) pinheap_free(h, p[i]);
  /* Two of 2 MiB fit under 5 MiB: the first left. */
  assert_int_equal(c.live_bytes, base + 4 * MiB);
  pinheap_stats s;
  assert_int_equal(pinheap_get_stats(h, &s), 0);
  assert_int_equal(s.capacity, s0.capacity + 4 * MiB);
  assert_int_equal(s.large_blocks, 0);
  assert_int_equal(s.allocated, s0.allocated);
  assert_false(pinheap_owns(h, p[2]));
  pinheap_region r;
  assert_int_equal(pinheap_region_of(h, p[2], &r), -1);
  assert_int_equal(pinheap_check(h), 0);
  char *big = pinheap_malloc(h, 6 * MiB);
  assert_non_null(big);
  int releases = c.releases;
  pinheap_free(h, big); /* larger than the quarantine: back at once */
  assert_int_equal(c.releases, releases + 1);
  assert_int_equal(c.live_bytes, base + 4 * MiB);
  pinheap_trim(h);
  assert_int_equal(c.live_bytes, base);
  assert_int_equal(pinheap_check(h), 0);
  pinheap_destroy(h);
  assert_int_equal(c.live_bytes, 0);
  assert_int_equal(c.bad_releases, 0);
}

static void double_free_child(void *arg) {
  (void)arg;
  pinheap *h = quarantine_heap(PINHEAP_DYNAMIC, NULL, 0, 64 * MiB);
  char *p = pinheap_malloc(h, 2 * MiB);
  pinheap_free(h, p);
  fprintf(stderr, "freeing %p again\n", (void *)p);
  pinheap_free(h, p);
}

static void test_double_free_of_quarantined_block_aborts(void **state) {
  (void)state;
  child_result r;
  child_run(double_free_child, NULL, &r);
  void *p = NULL;
  const char *again = strstr(r.err, "freeing ");
  if (!child_aborted(&r) || !again || sscanf(again, "freeing %p", &p) != 1)
    fail_msg("status %#x, stderr:\n%s", r.status, r.err);
  char text[64];
  snprintf(text, sizeof text, "pinheap_free(%p): pointer is not", p);
  assert_contains(r.err, text);
}

/* Under a DYNAMIC cap, quarantined bytes count against it and give way when
 * the heap needs them: blocks churning through a quarantine larger than
 * the room under the cap never fail. */
static void test_quarantine_gives_way_under_the_cap(void **state) {
  (void)state;
  counting c = {0};
  pinheap_provider pv = counting_provider(&c);
  const size_t cap = 24 * MiB;
  pinheap *h = quarantine_heap(PINHEAP_DYNAMIC, &pv, cap, 64 * MiB);
  for (int i = 0; i < 40; i++) {
    char *p = pinheap_malloc(h, 4 * MiB + (size_t)i * 4096);
    if (!p) fail_msg("round %d: %s", i, pinheap_last_error());
    p[0] = 1;
    pinheap_free(h, p);
    assert_true(c.live_bytes <= cap);
  }
  assert_int_equal(pinheap_check(h), 0);
  pinheap_destroy(h);
  assert_int_equal(c.live_bytes, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_late_write_reported),
      cmocka_unit_test(test_quarantine_books),
      cmocka_unit_test(test_double_free_of_quarantined_block_aborts),
      cmocka_unit_test(test_quarantine_gives_way_under_the_cap),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
