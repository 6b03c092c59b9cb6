/*
 * Integration tests of the provider interface and the registration lookup:
 * a counting provider over mmap stands in for a comm layer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "pinheap.h"
#include "counting.h"
#include "heaps.h"

#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#else
#define RUNNING_ON_VALGRIND 0
#define VALGRIND_MAKE_MEM_DEFINED(p, n) ((void)(p), (void)(n))
#endif

#define MiB ((size_t)1 << 20)

static pinheap *fixed(const pinheap_provider *pv, size_t size, size_t min_size) {
  pinheap_options o;
  pinheap_options_init(&o);
  o.size = size;
  o.min_size = min_size;
  o.arenas = 1;
  o.provider = pv;
  return pinheap_create(&o);
}

static void test_heap_lives_in_provider_memory(void **state) {
  (void)state;
  counting c = {0};
  pinheap_provider pv = counting_provider(&c);
  pinheap *h = fixed(&pv, 64 * MiB, 0);
  assert_non_null(h);
  assert_int_equal(c.obtains, 1);
  assert_int_equal(c.last_size, 64 * MiB);
  assert_true(c.last_align >= 4096 && (c.last_align & (c.last_align - 1)) == 0);
  char *small = pinheap_malloc(h, 100), *large = pinheap_malloc(h, 10 * MiB);
  assert_non_null(small);
  assert_non_null(large);
  pinheap_region r;
  for (int i = 0; i < 2; i++) {
    char *p = i ? large : small;
    assert_int_equal(pinheap_region_of(h, p + 7, &r), 0);
    assert_ptr_equal(r.base, c.last_base);
    assert_int_equal(r.size, 64 * MiB);
    assert_ptr_equal(r.handle, &c.key);
    assert_true(p >= (char *)r.base && p + 100 <= (char *)r.base + r.size);
  }
  int local = 0;
  errno = 0;
  assert_int_equal(pinheap_region_of(h, &local, &r), -1);
  assert_int_equal(errno, EINVAL);
  assert_int_equal(pinheap_check(h), 0);
  pinheap_free(h, small);
  pinheap_free(h, large);
  pinheap_destroy(h);
  assert_int_equal(c.releases, 1);
  assert_int_equal(c.bad_releases, 0);
}

static void test_failing_provider(void **state) {
  (void)state;
  counting c = {.refuse_above = 1};
  pinheap_provider pv = counting_provider(&c);
  errno = 0;
  assert_null(fixed(&pv, 64 * MiB, 0));
  assert_int_equal(errno, ENOMEM);
  const char *msg = pinheap_last_error();
  assert_non_null(strstr(msg, "counting"));
  assert_non_null(strstr(msg, "67108864"));
  assert_non_null(strstr(msg, "Cannot allocate memory"));
  assert_int_equal(c.releases, 0);
  /* A reason the provider gives ends the heap's message. */
  c.reason = "the NIC has no registrations left";
  errno = 0;
  assert_null(fixed(&pv, 64 * MiB, 0));
  assert_int_equal(errno, ENOMEM);
  msg = pinheap_last_error();
  assert_non_null(strstr(msg, "counting"));
  assert_non_null(strstr(msg, ": the NIC has no registrations left"));
  /* A provider without obtain is a bad option. */
  pinheap_provider none = {.name = "none"};
  errno = 0;
  assert_null(fixed(&none, 64 * MiB, 0));
  assert_int_equal(errno, EINVAL);
}

/* When the whole size cannot be had, smaller sizes down to min_size. */
static void test_retry_smaller(void **state) {
  (void)state;
  counting c = {.refuse_above = 40 * MiB};
  pinheap_provider pv = counting_provider(&c);
  pinheap *h = fixed(&pv, 64 * MiB, 16 * MiB);
  assert_non_null(h);
  assert_true(c.refusals >= 1);
  pinheap_stats s;
  assert_int_equal(pinheap_get_stats(h, &s), 0);
  assert_true(s.capacity <= 40 * MiB && s.capacity >= 16 * MiB);
  assert_true(s.capacity > 40 * MiB * 7 / 8); /* steps of an eighth: the first size that fits */
  assert_non_null(pinheap_malloc(h, 20 * MiB));
  pinheap_destroy(h);
  /* and not below the floor */
  counting d = {.refuse_above = 8 * MiB};
  pv = counting_provider(&d);
  errno = 0;
  assert_null(fixed(&pv, 64 * MiB, 16 * MiB));
  assert_int_equal(errno, ENOMEM);
  assert_int_equal(d.last_size, 16 * MiB);
  /* min_size above size is a bad option */
  errno = 0;
  assert_null(fixed(&pv, 16 * MiB, 32 * MiB));
  assert_int_equal(errno, EINVAL);
}

/* Memory from a provider is not known to be zero: calloc must clear it. */
static void test_calloc_clears_provider_memory(void **state) {
  (void)state;
  for (int mode = 0; mode < 2; mode++) {
    counting c = {.dirty = 1};
    pinheap_provider pv = counting_provider(&c);
    pinheap_options o;
    pinheap_options_init(&o);
    o.mode = mode ? PINHEAP_DYNAMIC : PINHEAP_FIXED;
    o.size = 64 * MiB;
    o.chunk_size = 16 * MiB;
    o.arenas = 1;
    o.provider = &pv;
    pinheap *h = pinheap_create(&o);
    assert_non_null(h);
    static const size_t sizes[] = {24, 1000, 100000, 2 * MiB, 5 * MiB};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
      unsigned char *p = pinheap_calloc(h, 1, sizes[i]);
      assert_non_null(p);
      for (size_t off = 0; off < sizes[i]; off += 997)
        if (p[off]) fail_msg("calloc(%zu) byte %zu is %#x (%s)", sizes[i], off, p[off], mode ? "dynamic" : "fixed");
      assert_int_equal(p[sizes[i] - 1], 0);
    }
    pinheap_destroy(h);
  }
}

/* A comm layer's pool hands a released chunk out again, unchanged, as a
 * direct block: its first bytes, which held a freed small object's key,
 * copied into a small block by the program (it never wrote them), read as a
 * double free at that block's free, until keys were mixed with their
 * objects' addresses (key.h). */
static void test_recycled_chunk_as_direct_block(void **state) {
  (void)state;
  counting c = {.recycle = 1};
  pinheap_provider pv = counting_provider(&c);
  pinheap_options o;
  pinheap_options_init(&o);
  o.mode = PINHEAP_DYNAMIC;
  o.chunk_size = 8 * MiB;
  o.direct_threshold = 8 * MiB;
  o.arenas = 1;
  o.provider = &pv;
  pinheap *h = pinheap_create(&o);
  assert_non_null(h);
  int released = c.releases;
  /* The trim gives wholly free chunks back to the provider, which keeps them. */
  heaps_freed_objects(h, 40 * MiB, 64, NULL, NULL);
  assert_true(c.releases > released);
  size_t reused = 0, keys = 0;
  void *direct[4];
  for (int i = 0; i < 4; i++) {
    void *kept[COUNTING_KEPT];
    for (size_t k = 0; k < COUNTING_KEPT; k++) kept[k] = c.kept[k].base;
    assert_non_null(direct[i] = pinheap_malloc(h, 8 * MiB));
    for (size_t k = 0; k < COUNTING_KEPT; k++) reused += kept[k] == direct[i];
    for (size_t off = 0; off < 8 * MiB; off += MiB) {
      void *copy = pinheap_malloc(h, 40);
      assert_non_null(copy);
      memcpy(copy, (char *)direct[i] + off, 8);
      VALGRIND_MAKE_MEM_DEFINED(copy, 8); /* bytes never written, on purpose */
      uint64_t w;
      memcpy(&w, copy, sizeof w);
      keys += w >> 63; /* a key's top bit; no pointer has it */
      pinheap_free(h, copy);
    }
  }
  assert_true(reused > 0);
  /* Under valgrind the heap turns the debugging aids on, which write no
   * keys. */
  if (!RUNNING_ON_VALGRIND) assert_true(keys > 0);
  for (int i = 0; i < 4; i++) pinheap_free(h, direct[i]);
  assert_int_equal(pinheap_check(h), 0);
  pinheap_destroy(h);
}

static void test_region_of_simple(void **state) {
  (void)state;
  pinheap_options o;
  pinheap_options_init(&o);
  o.mode = PINHEAP_SIMPLE;
  o.arenas = 1;
  pinheap *h = pinheap_create(&o);
  assert_non_null(h);
  void *p = pinheap_malloc(h, 10);
  pinheap_region r;
  errno = 0;
  assert_int_equal(pinheap_region_of(h, p, &r), -1); /* nothing registered */
  assert_int_equal(errno, EINVAL);
  pinheap_free(h, p);
  pinheap_destroy(h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_heap_lives_in_provider_memory),
      cmocka_unit_test(test_failing_provider),
      cmocka_unit_test(test_retry_smaller),
      cmocka_unit_test(test_calloc_clears_provider_memory),
      cmocka_unit_test(test_recycled_chunk_as_direct_block),
      cmocka_unit_test(test_region_of_simple),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
