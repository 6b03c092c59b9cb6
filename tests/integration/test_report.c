/*
 * Integration tests of the heap's self-description: pinheap_walk (every
 * extent in address order, kinds, ages), pinheap_slices, pinheap_report,
 * the out-of-memory report of opts.oom_report and PINHEAP_OOM_REPORT, and
 * the options beside them (pinheap_policy_name, pinheap_parse_size).
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
#include <unistd.h>

#include "asserts.h"
#include "pinheap.h"

#define MiB ((size_t)1 << 20)

static pinheap *make(pinheap_mode mode, size_t size, pinheap_policy policy, const char *oom) {
  pinheap_options o;
  pinheap_options_init(&o);
  o.mode = mode;
  o.size = size;
  o.policy = policy;
  o.arenas = 1;
  o.oom_report = oom;
  o.chunk_size = 8 * MiB;
  pinheap *h = pinheap_create(&o);
  assert_non_null(h);
  return h;
}

typedef struct walk_log {
  pinheap_extent e[4096];
  size_t n;
  int stop_after; /* 0: never */
} walk_log;

static int log_visit(const pinheap_extent *e, void *arg) {
  walk_log *w = arg;
  if (w->n < sizeof w->e / sizeof w->e[0]) w->e[w->n] = *e;
  w->n++;
  return w->stop_after && (int)w->n == w->stop_after ? 7 : 0;
}

/* The region an extent lies in, as its start: pinheap_region_of where the
 * heap has registrations (FIXED, DYNAMIC); for a SIMPLE heap, whose memory
 * is registered nowhere, 0 (its chunks are not told apart). */
static void *region_of(pinheap *h, const pinheap_extent *e) {
  pinheap_region r;
  if (pinheap_region_of(h, e->addr, &r) != 0) return NULL;
  assert_true((char *)e->addr + e->size <= (char *)r.base + r.size);
  return r.base;
}

/* The extents tile the regions (chunks): in address order, adjacent within
 * a region, sizes summing to the capacity (no direct blocks here), free
 * ones coalesced within a region and as the stats count them. Returns how
 * many regions were told apart. */
static size_t check_tiling(pinheap *h, const walk_log *w) {
  pinheap_stats st;
  assert_int_equal(pinheap_get_stats(h, &st), 0);
  size_t total = 0, free = 0, free_n = 0, largest = 0, regions = 0;
  void *prev_region = NULL;
  for (size_t i = 0; i < w->n; i++) {
    const pinheap_extent *e = &w->e[i];
    void *region = region_of(h, e);
    assert_true(e->size > 0 && e->size % (size_t)sysconf(_SC_PAGESIZE) == 0);
    if (!i || region != prev_region) regions++;
    if (i) {
      const pinheap_extent *p = &w->e[i - 1];
      assert_true((char *)p->addr + p->size <= (char *)e->addr);
      bool same = region && region == prev_region;
      if (same) assert_ptr_equal((char *)p->addr + p->size, e->addr);
      if (same && e->kind == PINHEAP_EXTENT_FREE) assert_int_not_equal(p->kind, PINHEAP_EXTENT_FREE);
    }
    prev_region = region;
    total += e->size;
    if (e->kind == PINHEAP_EXTENT_FREE) {
      free += e->size;
      free_n++;
      if (e->size > largest) largest = e->size;
    }
    if (e->kind == PINHEAP_EXTENT_LARGE || e->kind == PINHEAP_EXTENT_SLAB || e->kind == PINHEAP_EXTENT_METADATA)
      assert_true(e->age >= 0 && e->age < 60);
    else
      assert_true(e->age < 0);
  }
  assert_int_equal(free, st.free_bytes);
  assert_int_equal(free_n, st.free_extents);
  assert_int_equal(largest, st.largest_free);
  assert_int_equal(total, st.capacity);
  return regions;
}

static const pinheap_extent *find(const walk_log *w, const void *addr) {
  for (size_t i = 0; i < w->n; i++)
    if (w->e[i].addr == addr) return &w->e[i];
  return NULL;
}

static void test_walk_fixed(void **state) {
  (void)state;
  pinheap *h = make(PINHEAP_FIXED, 64 * MiB, PINHEAP_POLICY_TWO_ENDED, NULL);
  void *a = pinheap_malloc(h, 5 * MiB), *b = pinheap_malloc(h, 6 * MiB);
  void *small[1000];
  for (int i = 0; i < 1000; i++) small[i] = pinheap_malloc(h, 100);
  pinheap_free(h, a);
  usleep(30000);
  void *c = pinheap_malloc(h, 8 * MiB);
  static walk_log w;
  w.n = 0;
  assert_int_equal(pinheap_walk(h, log_visit, &w), 0);
  assert_int_equal(check_tiling(h, &w), 1);
  pinheap_region r;
  assert_int_equal(pinheap_region_of(h, b, &r), 0);
  assert_ptr_equal(w.e[0].addr, r.base);
  const pinheap_extent *eb = find(&w, b), *ec = find(&w, c), *ea = find(&w, a);
  assert_non_null(eb);
  assert_int_equal(eb->kind, PINHEAP_EXTENT_LARGE);
  assert_int_equal(eb->size, 6 * MiB);
  assert_non_null(ec);
  assert_int_equal(ec->size, 8 * MiB);
  assert_true(eb->age > ec->age + 0.01); /* b is 30 ms older; stamps go by clock ticks of up to 10 ms */
  assert_non_null(ea); /* best fit: the 5 MiB hole stays free */
  assert_int_equal(ea->kind, PINHEAP_EXTENT_FREE);
  size_t slab = 0, meta = 0, objects = 0;
  for (size_t i = 0; i < w.n; i++) {
    if (w.e[i].kind == PINHEAP_EXTENT_SLAB) slab += w.e[i].size, objects += w.e[i].object_size == 112;
    if (w.e[i].kind == PINHEAP_EXTENT_METADATA) meta += w.e[i].size;
  }
  /* jemalloc's metadata lies outside the region */
  printf("test_report: slabs %zu bytes, metadata %zu bytes, %zu runs of 112-byte objects\n", slab, meta, objects);
  assert_true(slab > 0 && meta == 0 && objects > 0);
  /* visit's non-zero value stops the walk */
  w.n = 0;
  w.stop_after = 2;
  assert_int_equal(pinheap_walk(h, log_visit, &w), 7);
  assert_int_equal(w.n, 2);
  w.stop_after = 0;
  for (int i = 0; i < 1000; i++) pinheap_free(h, small[i]);
  pinheap_free(h, b);
  pinheap_free(h, c);
  pinheap_destroy(h);
}

/* Under the bump policy a freed block is held for good. */
static void test_walk_bump(void **state) {
  (void)state;
  pinheap *h = make(PINHEAP_FIXED, 64 * MiB, PINHEAP_POLICY_BUMP, NULL);
  void *a = pinheap_malloc(h, 10 * MiB);
  pinheap_free(h, a);
  static walk_log w;
  w.n = 0;
  assert_int_equal(pinheap_walk(h, log_visit, &w), 0);
  assert_int_equal(check_tiling(h, &w), 1);
  const pinheap_extent *ea = find(&w, a);
  assert_non_null(ea);
  assert_int_equal(ea->kind, PINHEAP_EXTENT_HELD);
  assert_true(ea->size >= 10 * MiB);
  pinheap_destroy(h);
}

/* DYNAMIC and SIMPLE heaps: every chunk tiled, the large blocks found. */
static void test_walk_chunks(void **state) {
  (void)state;
  static const pinheap_mode modes[] = {PINHEAP_DYNAMIC, PINHEAP_SIMPLE};
  for (int m = 0; m < 2; m++) {
    pinheap *h = make(modes[m], 0, PINHEAP_POLICY_TWO_ENDED, NULL);
    void *p[6];
    for (int i = 0; i < 6; i++) p[i] = pinheap_malloc(h, 3 * MiB); /* past the first chunk */
    static walk_log w;
    w.n = 0;
    assert_int_equal(pinheap_walk(h, log_visit, &w), 0);
    size_t regions = check_tiling(h, &w);
    if (modes[m] == PINHEAP_DYNAMIC) assert_true(regions >= 2);
    for (int i = 0; i < 6; i++) {
      const pinheap_extent *e = find(&w, p[i]);
      assert_non_null(e);
      assert_int_equal(e->kind, PINHEAP_EXTENT_LARGE);
    }
    unsigned char k[8];
    assert_int_equal(pinheap_slices(h, k, 8), 0);
    for (int i = 0; i < 6; i++) pinheap_free(h, p[i]);
    pinheap_destroy(h);
  }
}

static void test_walk_refusals(void **state) {
  (void)state;
  static walk_log w;
  unsigned char k[8];
  errno = 0;
  assert_int_equal(pinheap_walk(NULL, log_visit, &w), -1);
  assert_int_equal(errno, EINVAL);
  assert_contains(pinheap_last_error(), "pinheap_walk: a NULL argument");
  pinheap *h = make(PINHEAP_FIXED, 64 * MiB, PINHEAP_POLICY_TWO_ENDED, NULL);
  assert_int_equal(pinheap_walk(h, NULL, &w), -1);
  assert_int_equal(pinheap_slices(h, NULL, 8), -1);
  assert_int_equal(pinheap_slices(NULL, k, 8), -1);
  assert_int_equal(pinheap_report(h, NULL), -1);
  assert_int_equal(pinheap_report(NULL, stdout), -1);
  assert_int_equal(errno, EINVAL);
  pinheap_destroy(h);
}

static void test_slices(void **state) {
  (void)state;
  pinheap *h = make(PINHEAP_FIXED, 64 * MiB, PINHEAP_POLICY_TWO_ENDED, NULL);
  void *a = pinheap_malloc(h, 16 * MiB); /* the bottom quarter */
  unsigned char k[64];
  assert_int_equal(pinheap_slices(h, k, 64), 0);
  for (int i = 0; i < 16; i++) assert_int_equal(k[i], PINHEAP_EXTENT_LARGE);
  for (int i = 16; i < 64; i++) assert_int_equal(k[i], PINHEAP_EXTENT_FREE); /* the arena takes nothing */
  void *b = pinheap_malloc(h, 3 * MiB); /* a medium block: from the top */
  assert_int_equal(pinheap_slices(h, k, 64), 0);
  for (int i = 16; i < 61; i++) assert_int_equal(k[i], PINHEAP_EXTENT_FREE);
  for (int i = 61; i < 64; i++) assert_int_equal(k[i], PINHEAP_EXTENT_LARGE);
  pinheap_free(h, b);
  assert_int_equal(pinheap_slices(h, k, 0), -1);
  assert_int_equal(errno, EINVAL);
  pinheap_free(h, a);
  pinheap_destroy(h);
}

static char *read_file(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) return NULL;
  static char buf[1 << 16];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = '\0';
  fclose(f);
  return buf;
}

static size_t count(const char *hay, const char *needle) {
  size_t n = 0;
  for (const char *p = hay; (p = strstr(p, needle)); p++) n++;
  return n;
}

/* Three long-lived 5 MiB blocks cut the region into 10 MiB holes: the
 * report of the 20 MiB request that fails names them, on both sides of
 * every hole. */
static void test_oom_report(void **state) {
  (void)state;
  char dir[] = "/tmp/pinheap-report.XXXXXX", pattern[256], path[256], svg[300];
  assert_non_null(mkdtemp(dir));
  snprintf(pattern, sizeof pattern, "%s/oom-%%p.txt", dir);
  snprintf(path, sizeof path, "%s/oom-%ld.txt", dir, (long)getpid());
  snprintf(svg, sizeof svg, "%s.svg", path);
  pinheap *h = make(PINHEAP_FIXED, 64 * MiB, PINHEAP_POLICY_TWO_ENDED, pattern);
  void *p[6];
  for (int i = 0; i < 6; i++) p[i] = pinheap_malloc(h, i % 2 ? 5 * MiB : 10 * MiB);
  for (int i = 0; i < 6; i += 2) pinheap_free(h, p[i]);
  errno = 0;
  assert_null(pinheap_malloc(h, 20 * MiB));
  assert_int_equal(errno, ENOMEM);
  assert_contains(pinheap_last_error(), "pinheap_malloc(20971520): out of memory");
  char *text = read_file(path);
  assert_non_null(text);
  assert_contains(text, "request: pinheap_malloc(20971520) (20.0 MiB) failed: ENOMEM");
  assert_contains(text, "FIXED, policy two-ended");
  assert_contains(text, "the largest is 19922944 bytes"); /* 64 - 45 MiB, at the top */
  assert_contains(text, "10485760 bytes (10.0 MiB) free at");
  /* every 5 MiB block lies between two holes: six mentions */
  assert_int_equal(count(text, "large block of 5242880 bytes (5.0 MiB) at"), 6);
  char *where = strstr(text, "large block of 5242880 bytes (5.0 MiB) at ");
  char addr[32];
  snprintf(addr, sizeof addr, "%p", p[1]);
  assert_contains(where, addr);
  assert_contains(text, "age ");
  assert_contains(text, "below: the start of the region");
  char *picture = read_file(svg);
  assert_non_null(picture);
  assert_true(strncmp(picture, "<svg", 4) == 0);
  assert_contains(picture, "</svg>");
  /* only the first ENOMEM writes */
  unlink(path);
  assert_null(pinheap_malloc(h, 30 * MiB));
  assert_null(read_file(path));
  for (int i = 1; i < 6; i += 2) pinheap_free(h, p[i]);
  pinheap_destroy(h);
  unlink(svg);
  rmdir(dir);
}

static void test_report_on_demand(void **state) {
  (void)state;
  pinheap *h = make(PINHEAP_FIXED, 64 * MiB, PINHEAP_POLICY_TWO_ENDED, NULL);
  void *a = pinheap_malloc(h, 7 * MiB), *b = pinheap_malloc(h, 9 * MiB);
  pinheap_free(h, a);
  char *buf = NULL;
  size_t len;
  FILE *out = open_memstream(&buf, &len);
  assert_int_equal(pinheap_report(h, out), 0);
  fclose(out);
  assert_contains(buf, "request: none (pinheap_report)");
  assert_contains(buf, "7340032 bytes (7.0 MiB) free at");
  assert_contains(buf, "above: large block of 9437184 bytes (9.0 MiB)");
  free(buf);
  pinheap_free(h, b);
  pinheap_destroy(h);
}

static void test_options(void **state) {
  (void)state;
  assert_string_equal(pinheap_policy_name(PINHEAP_POLICY_TWO_ENDED), "two-ended");
  assert_string_equal(pinheap_policy_name(PINHEAP_POLICY_BUMP), "bump");
  assert_string_equal(pinheap_policy_name(PINHEAP_POLICY_RING), "ring");
  assert_string_equal(pinheap_policy_name(PINHEAP_POLICY_FIRST_FIT), "first-fit");
  assert_null(pinheap_policy_name((pinheap_policy)4));
  assert_null(pinheap_policy_name((pinheap_policy)-1));
  pinheap_options o;
  pinheap_options_init(&o);
  assert_null(o.oom_report);
  setenv("PINHEAP_POLICY", "nope", 1);
  assert_int_equal(pinheap_options_from_env(&o), -1);
  assert_contains(pinheap_last_error(), "is not one of two-ended, bump");
  setenv("PINHEAP_POLICY", "BUMP", 1);
  setenv("PINHEAP_OOM_REPORT", "/tmp/x-%p", 1);
  assert_int_equal(pinheap_options_from_env(&o), 0);
  assert_int_equal(o.policy, PINHEAP_POLICY_BUMP);
  assert_string_equal(o.oom_report, "/tmp/x-%p");
  setenv("PINHEAP_OOM_REPORT", "", 1);
  assert_int_equal(pinheap_options_from_env(&o), -1);
  unsetenv("PINHEAP_OOM_REPORT");
  unsetenv("PINHEAP_POLICY");
  pinheap_options_init(&o);
  o.size = 64 * MiB;
  o.oom_report = "";
  assert_null(pinheap_create(&o));
  assert_int_equal(errno, EINVAL);
  size_t v = 0;
  assert_int_equal(pinheap_parse_size("1.5k", &v), 0);
  assert_int_equal(v, 1536);
  assert_int_equal(pinheap_parse_size("1.5", &v), -1);
  assert_int_equal(errno, EINVAL);
  assert_int_equal(v, 1536);
  pinheap_phase("nothing happens outside a recording");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_walk_fixed),     cmocka_unit_test(test_walk_bump),
      cmocka_unit_test(test_walk_chunks),   cmocka_unit_test(test_walk_refusals),
      cmocka_unit_test(test_slices),         cmocka_unit_test(test_oom_report),
      cmocka_unit_test(test_report_on_demand), cmocka_unit_test(test_options),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
