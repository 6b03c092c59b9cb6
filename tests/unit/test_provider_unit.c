/*
 * Unit tests of provider (src/provider.h), the wrapper every call into a
 * heap's provider goes through, against a fake provider that can break
 * each of its promises: which provider a heap's options pick, what the
 * wrapper passes on and checks of the answer (a misaligned or NULL base
 * refused and given back), how it turns a provider's errno and reason into
 * the heap's, the shrinking retry, the release of exactly what was
 * obtained, and (with assertions) a request that breaks the wrapper's own
 * preconditions.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include <cmocka.h>

#include "child.h"
#include "error.h"
#include "provider.h"

#define PAGE ((size_t)4096)
#define MiB ((size_t)1 << 20)

typedef enum fake_answer { FAKE_OK, FAKE_MISALIGNED, FAKE_NULL, FAKE_ERRNO } fake_answer;

/* A provider over mmap'd memory that answers as told; it records the calls. */
typedef struct fake {
  fake_answer answer;
  int err;            /* FAKE_ERRNO: returned */
  const char *reason; /* FAKE_ERRNO: set with pinheap_set_error when not NULL */
  size_t limit;       /* sizes above it get ENOMEM (0: none) */
  unsigned obtains, releases;
  size_t asked[32];
  void *released_base;
  size_t released_size;
  void *released_handle;
} fake;

static int fake_obtain(void *ctx, size_t size, size_t align, void **base, void **handle) {
  fake *f = ctx;
  if (f->obtains < 32) f->asked[f->obtains] = size;
  f->obtains++;
  if (f->limit && size > f->limit) return ENOMEM;
  if (f->answer == FAKE_ERRNO) {
    if (f->reason) pinheap_set_error(f->err, "%s", f->reason);
    return f->err;
  }
  if (f->answer == FAKE_NULL) {
    *base = NULL;
    return 0;
  }
  size_t span = size + 2 * align;
  char *m = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m == MAP_FAILED) return ENOMEM;
  uintptr_t b = ((uintptr_t)m + align - 1) & ~(uintptr_t)(align - 1);
  if (f->answer == FAKE_MISALIGNED) b += PAGE;
  *base = (void *)b;
  *handle = (void *)(b ^ 0x5A5A);
  return 0;
}

/* Gives back only what it can tell apart: the mapping stays (the test is
 * short), the call is recorded. */
static int fake_release(void *ctx, void *base, size_t size, void *handle) {
  fake *f = ctx;
  f->releases++;
  f->released_base = base;
  f->released_size = size;
  f->released_handle = handle;
  return 0;
}

static pinheap_provider fake_provider(fake *f) {
  return (pinheap_provider){.name = "fake", .ctx = f, .obtain = fake_obtain, .release = fake_release};
}

static pinheap_options options(pinheap_mode mode, const pinheap_provider *pv) {
  pinheap_options o;
  pinheap_options_init(&o);
  o.mode = mode;
  o.provider = pv;
  return o;
}

static void test_which_provider(void **state) {
  (void)state;
  fake f = {0};
  pinheap_provider pv = fake_provider(&f);
  provider p;
  pinheap_options o = options(PINHEAP_FIXED, NULL);
  provider_init(&p, &o, PAGE);
  assert_ptr_equal(p.pv, &p.local);
  assert_true(p.busy_ok);
  assert_false(p.local_opts.charged);
  assert_true(provider_zeroed(&p));
  o = options(PINHEAP_DYNAMIC, &pv);
  provider_init(&p, &o, PAGE);
  assert_ptr_equal(p.pv, &pv);
  assert_false(p.busy_ok);
  assert_false(provider_zeroed(&p));
  /* SIMPLE: always the local provider, charged to the commit limit. */
  o = options(PINHEAP_SIMPLE, &pv);
  provider_init(&p, &o, PAGE);
  assert_ptr_equal(p.pv, &p.local);
  assert_true(p.local_opts.charged);
  /* The local provider through the wrapper: aligned, no handle, released. */
  pinheap_region r;
  assert_int_equal(provider_obtain(&p, 4 * MiB, 2 * MiB, &r, "test"), 0);
  assert_int_equal((uintptr_t)r.base % (2 * MiB), 0);
  assert_int_equal(r.size, 4 * MiB);
  assert_null(r.handle);
  provider_release(&p, &r);
}

static void test_obtain_and_release(void **state) {
  (void)state;
  fake f = {0};
  pinheap_provider pv = fake_provider(&f);
  pinheap_options o = options(PINHEAP_DYNAMIC, &pv);
  provider p;
  provider_init(&p, &o, PAGE);
  pinheap_region r;
  assert_int_equal(provider_obtain(&p, 3 * PAGE, 2 * MiB, &r, "test"), 0);
  assert_int_equal(f.obtains, 1);
  assert_int_equal(f.asked[0], 3 * PAGE);
  assert_int_equal((uintptr_t)r.base % (2 * MiB), 0);
  assert_int_equal(r.size, 3 * PAGE);
  assert_ptr_equal(r.handle, (void *)((uintptr_t)r.base ^ 0x5A5A));
  provider_release(&p, &r);
  assert_int_equal(f.releases, 1);
  assert_ptr_equal(f.released_base, r.base);
  assert_int_equal(f.released_size, r.size);
  assert_ptr_equal(f.released_handle, r.handle);
  /* A provider without release: nothing is called. */
  pv.release = NULL;
  assert_int_equal(provider_obtain(&p, PAGE, PAGE, &r, "test"), 0);
  provider_release(&p, &r);
  assert_int_equal(f.releases, 1);
}

/* A base not aligned as asked, or NULL with success: EINVAL, the region
 * given back, the text naming the provider. */
static void test_broken_promises(void **state) {
  (void)state;
  fake f = {.answer = FAKE_MISALIGNED};
  pinheap_provider pv = fake_provider(&f);
  pinheap_options o = options(PINHEAP_DYNAMIC, &pv);
  provider p;
  provider_init(&p, &o, PAGE);
  pinheap_region r;
  assert_int_equal(provider_obtain(&p, 2 * MiB, 2 * MiB, &r, "growing"), EINVAL);
  assert_int_equal(f.releases, 1);
  assert_int_not_equal((uintptr_t)f.released_base % (2 * MiB), 0);
  assert_int_equal(f.released_size, 2 * MiB);
  assert_non_null(strstr(pinheap_last_error(), "growing: provider fake cannot obtain 2097152 bytes"));
  assert_non_null(strstr(pinheap_last_error(), "not aligned"));
  f = (fake){.answer = FAKE_NULL};
  assert_int_equal(provider_obtain(&p, PAGE, PAGE, &r, "test"), EINVAL);
  assert_int_equal(f.releases, 0); /* nothing to give back */
}

/* Every errno but EINVAL (and EBUSY for a FIXED heap) is a lack of memory;
 * the provider's own reason ends the text when it left one. */
static void test_errors(void **state) {
  (void)state;
  fake f = {.answer = FAKE_ERRNO, .err = EIO};
  pinheap_provider pv = fake_provider(&f);
  pinheap_options o = options(PINHEAP_DYNAMIC, &pv);
  provider p;
  provider_init(&p, &o, PAGE);
  pinheap_region r;
  assert_int_equal(provider_obtain(&p, PAGE, PAGE, &r, "test"), ENOMEM);
  assert_int_equal(errno, ENOMEM);
  assert_non_null(strstr(pinheap_last_error(), "provider fake cannot obtain 4096 bytes: "));
  /* Without a reason of its own, the heap's errno's text. */
  assert_non_null(strstr(pinheap_last_error(), strerror(ENOMEM)));
  f.err = EBUSY;
  assert_int_equal(provider_obtain(&p, PAGE, PAGE, &r, "test"), ENOMEM);
  o.mode = PINHEAP_FIXED;
  provider_init(&p, &o, PAGE);
  assert_int_equal(provider_obtain(&p, PAGE, PAGE, &r, "test"), EBUSY);
  f.err = ENOSPC;
  f.reason = "no registration keys left";
  assert_int_equal(provider_obtain(&p, PAGE, PAGE, &r, "test"), ENOMEM);
  assert_non_null(strstr(pinheap_last_error(), ": no registration keys left"));
  /* A provider that refuses the request itself (EINVAL): its reason, or the
   * errno's text, never the wrapper's words for a broken alignment. */
  f.err = EINVAL;
  assert_int_equal(provider_obtain(&p, PAGE, PAGE, &r, "test"), EINVAL);
  assert_non_null(strstr(pinheap_last_error(), ": no registration keys left"));
  f.reason = NULL;
  assert_int_equal(provider_obtain(&p, PAGE, PAGE, &r, "test"), EINVAL);
  assert_non_null(strstr(pinheap_last_error(), strerror(EINVAL)));
  assert_null(strstr(pinheap_last_error(), "not aligned"));
  assert_int_equal(f.releases, 0);
}

/* The shrinking retry: an eighth smaller each time, page multiples, not
 * below the floor; no retry without a floor nor after another error. */
static void test_shrinking(void **state) {
  (void)state;
  fake f = {.limit = 5 * MiB};
  pinheap_provider pv = fake_provider(&f);
  pinheap_options o = options(PINHEAP_FIXED, &pv);
  provider p;
  provider_init(&p, &o, PAGE);
  pinheap_region r;
  assert_int_equal(provider_obtain_shrinking(&p, 8 * MiB, MiB, PAGE, &r, "test"), 0);
  assert_true(r.size <= 5 * MiB && r.size >= MiB && r.size % PAGE == 0);
  assert_true(f.obtains > 1);
  for (unsigned i = 1; i < f.obtains; i++) {
    size_t prev = f.asked[i - 1], want = (prev - prev / 8) & ~(PAGE - 1);
    assert_int_equal(f.asked[i], want);
  }
  assert_int_equal(r.size, f.asked[f.obtains - 1]);
  /* The floor stops it. */
  f = (fake){.limit = MiB / 2};
  assert_int_equal(provider_obtain_shrinking(&p, 8 * MiB, MiB, PAGE, &r, "test"), ENOMEM);
  assert_int_equal(f.asked[f.obtains - 1], MiB);
  /* No floor: one attempt. */
  f = (fake){.limit = MiB};
  assert_int_equal(provider_obtain_shrinking(&p, 2 * MiB, 0, PAGE, &r, "test"), ENOMEM);
  assert_int_equal(f.obtains, 1);
  /* Another error: one attempt. */
  f = (fake){.answer = FAKE_ERRNO, .err = EBUSY};
  assert_int_equal(provider_obtain_shrinking(&p, 2 * MiB, PAGE, PAGE, &r, "test"), EBUSY);
  assert_int_equal(f.obtains, 1);
}

struct bad_request {
  provider *p;
  size_t size, align;
};

static void bad_request_child(void *arg) {
  struct bad_request *b = arg;
  pinheap_region r;
  provider_obtain(b->p, b->size, b->align, &r, "test");
}

/* With assertions, a request that breaks the wrapper's preconditions
 * aborts before the provider sees it. */
static void test_preconditions(void **state) {
  (void)state;
#if PINHEAP_ASSERT_LEVEL >= 1
  fake f = {0};
  pinheap_provider pv = fake_provider(&f);
  pinheap_options o = options(PINHEAP_DYNAMIC, &pv);
  provider p;
  provider_init(&p, &o, PAGE);
  static const size_t bad[][2] = {{PAGE + 1, PAGE}, {PAGE, 3 * PAGE}, {0, PAGE}, {PAGE, PAGE / 2}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    struct bad_request b = {&p, bad[i][0], bad[i][1]};
    child_result res;
    child_run(bad_request_child, &b, &res);
    assert_true(child_aborted(&res));
    assert_non_null(strstr(res.err, "assertion failed"));
  }
#else
  (void)bad_request_child;
  skip();
#endif
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_which_provider), cmocka_unit_test(test_obtain_and_release),
      cmocka_unit_test(test_broken_promises), cmocka_unit_test(test_errors),
      cmocka_unit_test(test_shrinking),       cmocka_unit_test(test_preconditions),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
