/*
 * Integration tests of DYNAMIC heaps: growth by chunks, blocks that never
 * straddle two registrations, direct blocks registered one by one, the cap,
 * and chunks given back after pinheap_trim, and a block grown by realloc
 * step by step registered O(log n) times. A counting provider stands in for
 * a comm layer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "asserts.h"
#include "counting.h"
#include "pinheap.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

static pinheap *dynamic(const pinheap_provider *pv, size_t cap, size_t chunk) {
  pinheap_options o;
  pinheap_options_init(&o);
  o.mode = PINHEAP_DYNAMIC;
  o.size = cap;
  o.chunk_size = chunk;
  o.arenas = 1;
  o.provider = pv;
  o.direct_cache = 0; /* direct blocks go back when freed; test_direct_cache has the cache */
  pinheap *h = pinheap_create(&o);
  if (!h) fprintf(stderr, "pinheap_create: %s\n", pinheap_last_error());
  assert_non_null(h);
  return h;
}

static pinheap_stats stats_of(pinheap *h) {
  pinheap_stats s;
  assert_int_equal(pinheap_get_stats(h, &s), 0);
  return s;
}

/* p .. p + size inside one registration, which the lookup names. */
static void assert_inside_one_registration(pinheap *h, const void *p, size_t size, counting *c) {
  pinheap_region r;
  assert_int_equal(pinheap_region_of(h, p, &r), 0);
  assert_ptr_equal(r.handle, &c->key);
  assert_true((const char *)p >= (char *)r.base && (const char *)p + size <= (char *)r.base + r.size);
  pinheap_region last;
  assert_int_equal(pinheap_region_of(h, (const char *)p + size - 1, &last), 0);
  assert_ptr_equal(last.base, r.base);
}

static void test_grows_by_chunks_and_shrinks_after_trim(void **state) {
  (void)state;
  counting c = {0};
  pinheap_provider pv = counting_provider(&c);
  pinheap *h = dynamic(&pv, 0, 8 * MiB);
  pinheap_stats s0 = stats_of(h);
  assert_int_equal(s0.capacity, 8 * MiB);
  assert_int_equal(c.obtains, 1);
  enum { N = 200 };
  static char *blk[N];
  for (int i = 0; i < N; i++) {
    size_t size = 512 * KiB + (size_t)i * 4099;
    blk[i] = pinheap_malloc(h, size);
    assert_non_null(blk[i]);
    blk[i][0] = blk[i][size - 1] = (char)i;
    assert_inside_one_registration(h, blk[i], size, &c);
    assert_true(pinheap_owns(h, blk[i] + size - 1));
  }
  pinheap_stats s1 = stats_of(h);
  assert_true(s1.capacity >= 100 * MiB + N * 4099);
  assert_true(c.obtains >= 13); /* many chunks */
  assert_int_equal(s1.capacity, c.live_bytes);
  assert_int_equal(pinheap_check(h), 0);
  for (int i = 0; i < N; i++) {
    assert_int_equal(blk[i][0], (char)i);
    pinheap_free(h, blk[i]);
  }
  pinheap_trim(h);
  pinheap_stats s2 = stats_of(h);
  assert_true(s2.capacity < s1.capacity / 4);
  assert_int_equal(s2.capacity, c.live_bytes);
  assert_true(c.releases >= c.obtains - 3);
  assert_int_equal(pinheap_check(h), 0);
  pinheap_destroy(h);
  assert_int_equal(c.live_bytes, 0);
  assert_int_equal(c.releases, c.obtains);
  assert_int_equal(c.bad_releases, 0);
}

/* A block under 64 KiB in a DYNAMIC heap goes where the manager's
 * rules put it (the top of the smallest hole, here the first chunk's), not
 * to the lowest address: a newer chunk, often mapped below, would stay
 * registered for it after pinheap_trim. */
static void test_small_block_keeps_no_chunk(void **state) {
  (void)state;
  pinheap *h = dynamic(NULL, 0, 8 * MiB);
  void *obj = pinheap_malloc(h, 100);
  char *x = pinheap_malloc(h, 7 * MiB), *y = pinheap_malloc(h, 7 * MiB);
  assert_non_null(obj);
  assert_non_null(x);
  assert_non_null(y);
  pinheap_region rx, ry, rs;
  assert_int_equal(pinheap_region_of(h, x, &rx), 0);
  assert_int_equal(pinheap_region_of(h, y, &ry), 0);
  assert_ptr_not_equal(rx.base, ry.base);
  pinheap_free(h, y);
  char *b = pinheap_malloc(h, 32 * KiB);
  assert_non_null(b);
  assert_int_equal(pinheap_region_of(h, b, &rs), 0);
  pinheap_trim(h);
  if (rs.base != rx.base || stats_of(h).capacity != 8 * MiB)
    fail_msg("a 32 KiB block in the %s chunk, %zu MiB registered after trim", rs.base == rx.base ? "first" : "second",
             stats_of(h).capacity >> 20);
  pinheap_free(h, b);
  pinheap_free(h, x);
  pinheap_free(h, obj);
  assert_int_equal(pinheap_check(h), 0);
  pinheap_destroy(h);
}

/* Many small objects: jemalloc's arenas grow the heap through the hooks. */
static void test_small_objects_grow_through_the_hooks(void **state) {
  (void)state;
  counting c = {0};
  pinheap_provider pv = counting_provider(&c);
  pinheap *h = dynamic(&pv, 0, 4 * MiB);
  enum { N = 100000 };
  char **v = malloc(N * sizeof *v);
  assert_non_null(v);
  for (int i = 0; i < N; i++) {
    v[i] = pinheap_malloc(h, 200 + (size_t)(i % 7) * 16);
    assert_non_null(v[i]);
    memset(v[i], i & 0xff, 8);
    if (i % 997 == 0) assert_inside_one_registration(h, v[i], 200, &c);
  }
  pinheap_stats s1 = stats_of(h);
  assert_true(s1.capacity >= 20 * MiB);
  assert_true(c.obtains >= 5);
  assert_int_equal(pinheap_check(h), 0);
  for (int i = 0; i < N; i++) {
    assert_int_equal((unsigned char)v[i][7], i & 0xff);
    pinheap_free(h, v[i]);
  }
  free(v);
  pinheap_trim(h);
  pinheap_stats s2 = stats_of(h);
  assert_true(s2.capacity < s1.capacity);
  assert_int_equal(s2.allocated, 0);
  assert_int_equal(pinheap_check(h), 0);
  pinheap_destroy(h);
  assert_int_equal(c.live_bytes, 0);
}

static void test_direct_blocks(void **state) {
  (void)state;
  counting c = {0};
  pinheap_provider pv = counting_provider(&c);
  pinheap *h = dynamic(&pv, 0, 8 * MiB);
  int before = c.obtains;
  char *big = pinheap_malloc(h, 20 * MiB + 5);
  assert_non_null(big);
  assert_int_equal(c.obtains, before + 1);
  pinheap_region r;
  assert_int_equal(pinheap_region_of(h, big + 10 * MiB, &r), 0);
  assert_ptr_equal(r.base, big); /* a registration of its own */
  assert_int_equal(r.size, 20 * MiB + 4096);
  assert_int_equal(pinheap_usable_size(h, big), 20 * MiB + 4096);
  assert_true(pinheap_owns(h, big + 20 * MiB));
  pinheap_stats s = stats_of(h);
  assert_int_equal(s.large_blocks, 1);
  assert_true(s.peak_in_use >= 20 * MiB);
  assert_int_equal(s.capacity, 8 * MiB + 20 * MiB + 4096);
  big[0] = 1;
  big[20 * MiB] = 2;
  char *moved = pinheap_realloc(h, big, 30 * MiB); /* another registration */
  assert_non_null(moved);
  assert_int_equal(moved[0], 1);
  assert_int_equal(moved[20 * MiB], 2);
  char *aligned = pinheap_aligned_alloc(h, 16 * MiB, 9 * MiB);
  assert_non_null(aligned);
  assert_int_equal((uintptr_t)aligned % (16 * MiB), 0);
  char *zeroed = pinheap_calloc(h, 10, 1 * MiB);
  assert_non_null(zeroed);
  assert_int_equal(zeroed[5 * MiB], 0);
  assert_int_equal(pinheap_check(h), 0);
  pinheap_free(h, moved);
  pinheap_free(h, aligned);
  pinheap_free(h, zeroed);
  assert_int_equal(c.releases, 4); /* the first, the moved, the aligned, the zeroed: back at once */
  pinheap_stats after = stats_of(h);
  assert_int_equal(after.capacity, 8 * MiB);
  assert_true(after.peak_in_use >= 20 * MiB + 30 * MiB); /* the moved block beside its old self */
  assert_int_equal(pinheap_check(h), 0);
  pinheap_destroy(h);
  assert_int_equal(c.live_bytes, 0);
  assert_int_equal(c.bad_releases, 0);
}

/* With the default options, a freed direct block keeps its registration:
 * the next block of its size takes it without asking the provider; the
 * cached bytes are capacity and free, no live block; they go back when the
 * provider refuses a request, and at pinheap_trim. */
static void test_direct_cache(void **state) {
  (void)state;
  counting c = {0};
  pinheap_provider pv = counting_provider(&c);
  pinheap_options o;
  pinheap_options_init(&o);
  o.mode = PINHEAP_DYNAMIC;
  o.chunk_size = 8 * MiB;
  o.arenas = 1;
  o.provider = &pv;
  pinheap *h = pinheap_create(&o);
  assert_non_null(h);
  pinheap_stats s0 = stats_of(h);
  size_t chunks = c.live_bytes;
  char *p = pinheap_malloc(h, 20 * MiB);
  assert_non_null(p);
  int obtains = c.obtains, releases = c.releases;
  pinheap_free(h, p);
  assert_int_equal(c.releases, releases);
  pinheap_stats s = stats_of(h);
  assert_int_equal(s.capacity, s0.capacity + 20 * MiB);
  assert_int_equal(s.free_bytes, s0.free_bytes + 20 * MiB);
  assert_int_equal(s.in_use, s0.in_use);
  assert_int_equal(s.large_blocks, 0);
  assert_int_equal(s.allocated, s0.allocated);
  assert_int_equal(s.peak_capacity, chunks + 20 * MiB);
  assert_false(pinheap_owns(h, p));
  pinheap_region r;
  assert_int_equal(pinheap_region_of(h, p, &r), -1);
  assert_int_equal(pinheap_check(h), 0);
  /* The same size, then a little less, calloc too: the same registration. */
  for (int i = 0; i < 3; i++) {
    char *q = i < 2 ? pinheap_malloc(h, 20 * MiB - (size_t)i * MiB) : pinheap_calloc(h, 19, MiB);
    assert_ptr_equal(q, p);
    assert_int_equal(pinheap_region_of(h, q + MiB, &r), 0);
    assert_int_equal(r.size, 20 * MiB);
    if (i == 2) assert_int_equal(q[0] | q[19 * MiB - 1], 0);
    q[0] = 1;
    pinheap_free(h, q);
  }
  assert_int_equal(c.obtains, obtains);
  /* The provider refuses 30 MiB beside the cached 20: they go back first. */
  c.live_limit = chunks + 40 * MiB;
  char *big = pinheap_malloc(h, 30 * MiB);
  assert_non_null(big);
  assert_int_equal(c.releases, releases + 1);
  assert_int_equal(c.live_bytes, chunks + 30 * MiB);
  pinheap_free(h, big);
  assert_int_equal(pinheap_check(h), 0);
  pinheap_trim(h);
  assert_int_equal(c.live_bytes, chunks);
  assert_int_equal(stats_of(h).capacity, s0.capacity);
  pinheap_destroy(h);
  assert_int_equal(c.live_bytes, 0);
  assert_int_equal(c.bad_releases, 0);
}

static void test_cap(void **state) {
  (void)state;
  counting c = {0};
  pinheap_provider pv = counting_provider(&c);
  pinheap *h = dynamic(&pv, 40 * MiB, 8 * MiB);
  enum { MAX = 64 };
  void *v[MAX];
  int n = 0;
  while (n < MAX && (v[n] = pinheap_malloc(h, 1 * MiB))) n++;
  assert_int_equal(n, 40); /* every MiB of the cap: the arena took none of it */
  assert_int_equal(errno, ENOMEM);
  assert_non_null(strstr(pinheap_last_error(), "out of memory"));
  assert_true(c.live_bytes <= 40 * MiB);
  errno = 0;
  assert_null(pinheap_malloc(h, 41 * MiB)); /* over the cap: impossible */
  assert_int_equal(errno, ENOMEM);
  assert_contains(pinheap_last_error(), "impossible size");
  assert_null(pinheap_malloc(h, 20 * MiB)); /* a direct block that does not fit now */
  assert_int_equal(errno, ENOMEM);
  for (int i = 0; i < n; i++) pinheap_free(h, v[i]);
  pinheap_trim(h);
  void *d = pinheap_malloc(h, 20 * MiB); /* room again */
  assert_non_null(d);
  pinheap_free(h, d);
  assert_int_equal(pinheap_check(h), 0);
  pinheap_destroy(h);
  assert_int_equal(c.live_bytes, 0);
}

/* One byte per step of a block grown by steps, to see that every move kept
 * the contents. */
static unsigned char stamp(size_t n) { return (unsigned char)(n * 2654435761u >> 24); }

/* Grows p (NULL: a new block) by step bytes at a time from its size to
 * top, stamping the last byte of each step, and fails as soon as the
 * provider has been called more than limit times meanwhile, or holds more
 * than cap bytes (when not 0). */
static char *grow_by_steps(pinheap *h, char *p, size_t from, size_t top, size_t step, counting *c, int limit,
                           size_t cap) {
  int calls = c->obtains + c->releases;
  for (size_t n = from + step; n <= top; n += step) {
    char *q = pinheap_realloc(h, p, n);
    if (!q) fail_msg("realloc to %zu bytes: %s", n, pinheap_last_error());
    q[n - 1] = (char)stamp(n);
    p = q;
    int now = c->obtains + c->releases - calls;
    if (now > limit) fail_msg("growing to %zu bytes by %zu: %d obtains and releases already", n, step, now);
    if (cap && c->live_bytes > cap) fail_msg("%zu bytes registered at %zu, over the cap", c->live_bytes, n);
  }
  return p;
}

static void expect_stamps(const char *p, size_t top, size_t step) {
  for (size_t n = step; n <= top; n += step)
    if ((unsigned char)p[n - 1] != stamp(n)) fail_msg("byte %zu is %#x, expected %#x", n - 1, p[n - 1], stamp(n));
}

/* A block grown by realloc in 64 KiB steps to 256 MiB (4,096 calls) moves
 * to a new registration O(log n) times, not at every page-rounded size: the
 * registration grows geometrically and the steps fill it in place. The
 * slack is registered: capacity, not allocated. Shrinking to a quarter gives
 * the registration back; growing again works. */
static void test_realloc_growth_is_amortized(void **state) {
  (void)state;
  counting c = {0};
  pinheap_provider pv = counting_provider(&c);
  pinheap *h = dynamic(&pv, 0, 8 * MiB);
  const size_t step = 64 * KiB, top = 256 * MiB;
  /* From 8 MiB (the direct threshold) up by half each time: 9 moves, and
   * chunks for the block below it. */
  int before = c.obtains + c.releases;
  char *p = grow_by_steps(h, NULL, 0, top, step, &c, 40, 0);
  printf("grew to %zu MiB by %zu KiB: %d obtains and releases\n", top >> 20, step >> 10,
         c.obtains + c.releases - before);
  expect_stamps(p, top, step);
  pinheap_region r;
  assert_int_equal(pinheap_region_of(h, p + top - 1, &r), 0);
  assert_ptr_equal(r.base, p);
  assert_true(r.size >= top);
  assert_int_equal(pinheap_usable_size(h, p), top);
  pinheap_stats s = stats_of(h);
  assert_int_equal(s.capacity, c.live_bytes); /* the slack too */
  assert_true(s.allocated >= top && s.allocated < top + 8 * MiB);
  assert_int_equal(pinheap_check(h), 0);
  /* At most half of it stays in use: moved, the rest given back. */
  size_t live = c.live_bytes;
  char *q = pinheap_realloc(h, p, r.size / 4);
  assert_non_null(q);
  /* Its new registration is a page multiple: r.size / 4 rounded up. */
  size_t page = (size_t)sysconf(_SC_PAGESIZE), quarter = (r.size / 4 + page - 1) / page * page;
  print_message("registered %zu before the shrink of %zu to %zu, %zu after\n", live, r.size, r.size / 4, c.live_bytes);
  assert_true(c.live_bytes <= live - r.size + quarter);
  expect_stamps(q, r.size / 4, step);
  /* Above half: in place. */
  p = pinheap_realloc(h, q, r.size / 4 - 1 * MiB);
  assert_ptr_equal(p, q);
  assert_int_equal(pinheap_usable_size(h, p), quarter - 1 * MiB);
  assert_int_equal(pinheap_check(h), 0);
  p = grow_by_steps(h, p, r.size / 4 - 1 * MiB, top, step, &c, 20, 0);
  expect_stamps(p, r.size / 4 - 1 * MiB, step);
  pinheap_free(h, p);
  assert_int_equal(pinheap_check(h), 0);
  pinheap_destroy(h);
  assert_int_equal(c.live_bytes, 0);
  assert_int_equal(c.bad_releases, 0);
}

/* Under a cap the room shrinks to what the cap leaves: growth still goes
 * as far as a move allows (the old block and the new one), the cap is
 * never passed, and the moves stay few. */
static void test_realloc_growth_under_a_cap(void **state) {
  (void)state;
  counting c = {0};
  pinheap_provider pv = counting_provider(&c);
  const size_t cap = 100 * MiB, step = 64 * KiB, top = 36 * MiB;
  pinheap *h = dynamic(&pv, cap, 8 * MiB);
  int before = c.obtains + c.releases;
  char *p = grow_by_steps(h, NULL, 0, top, step, &c, 30, cap);
  printf("grew to %zu MiB under a %zu MiB cap: %d obtains and releases\n", top >> 20, cap >> 20,
         c.obtains + c.releases - before);
  expect_stamps(p, top, step);
  assert_int_equal(pinheap_check(h), 0);
  pinheap_free(h, p);
  pinheap_destroy(h);
  assert_int_equal(c.live_bytes, 0);
}

static void test_foreign_free_aborts(void **state) {
  (void)state;
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int fd[2];
    if (pipe(fd) == 0) dup2(fd[1], 2);
    pinheap *h = dynamic(NULL, 0, 8 * MiB);
    char *big = pinheap_malloc(h, 16 * MiB);
    pinheap_free(h, big + 4096); /* inside a direct block */
    _exit(0);
  }
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFSIGNALED(status));
  assert_int_equal(WTERMSIG(status), SIGABRT);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_grows_by_chunks_and_shrinks_after_trim),
      cmocka_unit_test(test_small_objects_grow_through_the_hooks),
      cmocka_unit_test(test_direct_blocks),
      cmocka_unit_test(test_direct_cache),
      cmocka_unit_test(test_cap),
      cmocka_unit_test(test_realloc_growth_is_amortized),
      cmocka_unit_test(test_realloc_growth_under_a_cap),
      cmocka_unit_test(test_small_block_keeps_no_chunk),
      cmocka_unit_test(test_foreign_free_aborts),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
