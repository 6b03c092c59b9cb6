/*
 * Unit tests of options (src/options.h): the defaults, and each check
 * pinheap_create makes of the options before it takes anything, alone (no
 * heap is made).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "arenas.h"
#include "dynamic.h"
#include "options.h"
#include "pinheap.h"
#include "report.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

static void test_defaults(void **state) {
  (void)state;
  pinheap_options o;
  memset(&o, 0x5A, sizeof o);
  options_init(&o);
  assert_int_equal(o.mode, PINHEAP_FIXED);
  assert_int_equal(o.size, 0);
  assert_int_equal(o.policy, PINHEAP_POLICY_TWO_ENDED);
  assert_int_equal(o.ring_min, 0);
  assert_int_equal(o.large_threshold, 14 * KiB);
  assert_int_equal(o.small_extent_max, 4 * MiB);
  assert_int_equal(o.arenas, 0);
  assert_int_equal(o.chunk_size, 64 * MiB);
  assert_int_equal(o.direct_threshold, 8 * MiB);
  assert_int_equal(o.quarantine, 256 * MiB);
  assert_int_equal(o.direct_cache, 256 * MiB);
  assert_int_equal(o.direct_cache_blocks, 16);
  assert_int_equal(o.min_size, 0);
  assert_int_equal(o.debug, 0);
  assert_null(o.provider);
  assert_null(o.oom_report);
  assert_false(o.prefault || o.lock || o.hugepages);
  /* The defaults need only a size for a FIXED heap, and nothing for the
   * other modes. */
  assert_int_equal(options_check(&o), -1);
  o.size = 64 * MiB;
  assert_int_equal(options_check(&o), 0);
  o.mode = PINHEAP_DYNAMIC;
  o.size = 0;
  assert_int_equal(options_check(&o), 0);
  o.mode = PINHEAP_SIMPLE;
  assert_int_equal(options_check(&o), 0);
}

static int no_obtain_ctx;

/* One broken option at a time, from good FIXED (or given mode) options:
 * refused with EINVAL and a message holding what. */
typedef struct bad_case {
  const char *what;
  void (*spoil)(pinheap_options *o);
} bad_case;

static void spoil_null_provider(pinheap_options *o) {
  static pinheap_provider pv = {.name = "no obtain", .ctx = &no_obtain_ctx};
  o->provider = &pv;
}
static void spoil_mode(pinheap_options *o) { o->mode = (pinheap_mode)7; }
static void spoil_policy(pinheap_options *o) { o->policy = (pinheap_policy)9; }
static void spoil_size(pinheap_options *o) { o->size = 0; }
static void spoil_huge(pinheap_options *o) { o->size = (size_t)1 << 48; }
static void spoil_threshold(pinheap_options *o) { o->large_threshold = 0; }
static void spoil_small_max(pinheap_options *o) { o->small_extent_max = 0; }
static void spoil_min_size(pinheap_options *o) { o->min_size = o->size + 1; }
static void spoil_debug(pinheap_options *o) { o->debug = PINHEAP_DEBUG_ALL + 1; }
static void spoil_report_empty(pinheap_options *o) { o->oom_report = ""; }
static void spoil_report_long(pinheap_options *o) {
  static char path[REPORT_MAX_PATH + 2];
  memset(path, 'a', sizeof path - 1);
  o->oom_report = path;
}
static void spoil_arenas(pinheap_options *o) { o->arenas = ARENAS_MAX + 1; }
static void spoil_cap(pinheap_options *o) {
  o->mode = PINHEAP_DYNAMIC;
  o->size = DYNAMIC_GRANULE - 1;
}
static void spoil_bump(pinheap_options *o) {
  o->mode = PINHEAP_DYNAMIC;
  o->size = 0;
  o->policy = PINHEAP_POLICY_BUMP;
}
static void spoil_chunk(pinheap_options *o) {
  o->mode = PINHEAP_SIMPLE;
  o->chunk_size = 0;
}
static void spoil_chunk_huge(pinheap_options *o) {
  o->mode = PINHEAP_DYNAMIC;
  o->chunk_size = ((size_t)1 << 40) + 1;
}
static void spoil_cache_blocks(pinheap_options *o) {
  o->mode = PINHEAP_DYNAMIC;
  o->direct_cache_blocks = DYNAMIC_CACHE_MAX_BLOCKS + 1;
}
static void spoil_direct(pinheap_options *o) {
  o->mode = PINHEAP_DYNAMIC;
  o->direct_threshold = 0;
}

static void test_refused(void **state) {
  (void)state;
  static const bad_case cases[] = {
      {"unknown mode", spoil_mode},
      {"unknown policy", spoil_policy},
      {"needs a size", spoil_size},
      {"larger than the address space", spoil_huge},
      {"large_threshold and small_extent_max", spoil_threshold},
      {"large_threshold and small_extent_max", spoil_small_max},
      {"min_size", spoil_min_size},
      {"unknown debug flags", spoil_debug},
      {"oom_report", spoil_report_empty},
      {"oom_report", spoil_report_long},
      {"arenas asked", spoil_arenas},
      {"no obtain function", spoil_null_provider},
      {"below one 2 MiB chunk", spoil_cap},
      {"bump policy is for FIXED", spoil_bump},
      {"chunk_size", spoil_chunk},
      {"chunks at most 1 TiB", spoil_chunk_huge},
      {"direct_threshold", spoil_direct},
      {"direct_cache_blocks is 1025, at most 1024", spoil_cache_blocks},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    pinheap_options o;
    options_init(&o);
    o.size = 64 * MiB;
    assert_int_equal(options_check(&o), 0);
    cases[i].spoil(&o);
    errno = 0;
    assert_int_equal(options_check(&o), -1);
    assert_int_equal(errno, EINVAL);
    if (!strstr(pinheap_last_error(), cases[i].what))
      fail_msg("case %zu: \"%s\" does not say \"%s\"", i, pinheap_last_error(), cases[i].what);
  }
  errno = 0;
  assert_int_equal(options_check(NULL), -1);
  assert_int_equal(errno, EINVAL);
  assert_non_null(strstr(pinheap_last_error(), "options are NULL"));
}

/* The bounds themselves pass. */
static void test_bounds(void **state) {
  (void)state;
  pinheap_options o;
  options_init(&o);
  o.size = (size_t)1 << 47;
  o.min_size = o.size;
  o.arenas = ARENAS_MAX;
  o.direct_cache_blocks = DYNAMIC_CACHE_MAX_BLOCKS;
  o.debug = PINHEAP_DEBUG_ALL;
  static char path[REPORT_MAX_PATH + 1];
  memset(path, 'a', REPORT_MAX_PATH);
  o.oom_report = path;
  assert_int_equal(options_check(&o), 0);
  o.mode = PINHEAP_DYNAMIC;
  o.size = DYNAMIC_GRANULE;
  o.min_size = 0;
  o.chunk_size = (size_t)1 << 40;
  assert_int_equal(options_check(&o), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_defaults), cmocka_unit_test(test_refused),
                                     cmocka_unit_test(test_bounds)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
