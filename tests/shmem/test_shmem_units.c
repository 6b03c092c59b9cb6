/* Unit tests of libpinheap-shmem's modules that need no OpenSHMEM runtime:
 * the configuration from the environment (shconfig), and the checkers of
 * the provider (shblock) and of the allgather (shgather), on records made
 * consistent and then broken. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <shmem.h>
#include <stdlib.h>
#include <string.h>

#include "pinheap.h"
#include "pinheap_sym.h"
#include "shblock.h"
#include "shconfig.h"
#include "shgather.h"

#define MiB ((size_t)1 << 20)

static int clear_env(void **state) {
  (void)state;
  static const char *vars[] = {"PINHEAP_SHMEM_SIZE", "SHMEM_SYMMETRIC_HEAP_SIZE", "PINHEAP_STATS", "PINHEAP_DEBUG"};
  for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) unsetenv(vars[i]);
  return 0;
}

/* Without PINHEAP_SHMEM_SIZE: the implementation's heap less a sixteenth
 * (at least 4 MiB), trying down to a quarter of it. */
static void test_default_block(void **state) {
  (void)state;
  static const struct {
    const char *heap; /* SHMEM_SYMMETRIC_HEAP_SIZE, NULL: unset */
    size_t block, min_block;
  } cases[] = {
      {NULL, 240 * MiB, 64 * MiB},
      {"256M", 240 * MiB, 64 * MiB},
      {"64M", 60 * MiB, 16 * MiB},
      {"1g", 960 * MiB, 256 * MiB},
      {"12M", 8 * MiB, 3 * MiB},     /* down to a quarter */
      {"6M", 2 * MiB, 2 * MiB},      /* a quarter is below the least block */
      {"100M", 92 * MiB, 25 * MiB}, /* 100 - 6.25, down to 2 MiB */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    clear_env(NULL);
    if (cases[i].heap) setenv("SHMEM_SYMMETRIC_HEAP_SIZE", cases[i].heap, 1);
    shconfig c;
    if (shconfig_from_env(&c) != 0) fail_msg("%s: %s", cases[i].heap, pinheap_last_error());
    if (c.block != cases[i].block || c.min_block != cases[i].min_block)
      fail_msg("SHMEM_SYMMETRIC_HEAP_SIZE=%s: block %zu (least %zu), expected %zu (%zu)", cases[i].heap, c.block,
               c.min_block, cases[i].block, cases[i].min_block);
    assert_false(c.explicit_size);
    assert_false(c.stats);
    assert_int_equal(c.debug, 0);
    assert_int_equal(shconfig_check(&c), 0);
  }
}

static void test_explicit_block(void **state) {
  (void)state;
  setenv("PINHEAP_SHMEM_SIZE", "100m", 1);
  setenv("SHMEM_SYMMETRIC_HEAP_SIZE", "not a size", 1); /* not needed, then */
  setenv("PINHEAP_STATS", "1", 1);
  setenv("PINHEAP_DEBUG", "1", 1);
  shconfig c;
  assert_int_equal(shconfig_from_env(&c), 0);
  assert_int_equal(c.block, 100 * MiB);
  assert_int_equal(c.min_block, 100 * MiB);
  assert_true(c.explicit_size);
  assert_true(c.stats);
  assert_int_equal(c.debug, PINHEAP_DEBUG_ALL);
  assert_int_equal(shconfig_check(&c), 0);
  setenv("PINHEAP_SHMEM_SIZE", "6291457", 1); /* rounded up to a page */
  assert_int_equal(shconfig_from_env(&c), 0);
  assert_int_equal(c.block, 6 * MiB + 4096);
}

/* Refusals: EINVAL, the variable and its value named, *out unchanged. */
static void test_refusals(void **state) {
  (void)state;
  static const struct {
    const char *var, *value, *phrase;
  } cases[] = {
      {"PINHEAP_SHMEM_SIZE", "1.5x", "PINHEAP_SHMEM_SIZE=\"1.5x\""},
      {"PINHEAP_SHMEM_SIZE", "1m", "below the"},
      {"SHMEM_SYMMETRIC_HEAP_SIZE", "lots", "set PINHEAP_SHMEM_SIZE"},
      {"SHMEM_SYMMETRIC_HEAP_SIZE", "5M", "leaves no block"},
      {"PINHEAP_DEBUG", "loud", "PINHEAP_DEBUG=\"loud\""},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    clear_env(NULL);
    setenv(cases[i].var, cases[i].value, 1);
    shconfig c, before;
    memset(&c, 0x5a, sizeof c);
    before = c;
    errno = 0;
    assert_int_equal(shconfig_from_env(&c), -1);
    assert_int_equal(errno, EINVAL);
    assert_memory_equal(&c, &before, sizeof c);
    if (!strstr(pinheap_last_error(), cases[i].phrase))
      fail_msg("%s=%s: message \"%s\" lacks \"%s\"", cases[i].var, cases[i].value, pinheap_last_error(),
               cases[i].phrase);
  }
}

static void test_sym_size(void **state) {
  (void)state;
  /* The arena takes none of the block: all of it for objects, in 2 MiB. */
  assert_int_equal(shconfig_least_block(), 2 * MiB);
  assert_int_equal(shconfig_sym_size(1 * MiB), 0);
  assert_int_equal(shconfig_sym_size(2 * MiB), 2 * MiB);
  assert_int_equal(shconfig_sym_size(60 * MiB), 60 * MiB);
  assert_int_equal(shconfig_sym_size(61 * MiB), 60 * MiB);
  /* What the symmetric heap's header says the block must hold. */
  for (size_t b = 2 * MiB; b < 80 * MiB; b += 4096 * 37)
    assert_true(PINHEAP_SYM_HEAP_SIZE(shconfig_sym_size(b), 1) <= b);
}

static void test_config_checker(void **state) {
  (void)state;
  shconfig c;
  assert_int_equal(shconfig_from_env(&c), 0);
  shconfig bad = c;
  bad.min_block = bad.block + 4096;
  assert_int_equal(shconfig_check(&bad), 1);
  bad = c;
  bad.explicit_size = true;
  assert_int_equal(shconfig_check(&bad), 1);
  bad = c;
  bad.block += 1;
  assert_int_equal(shconfig_check(&bad), 1);
}

static void test_block(void **state) {
  (void)state;
  shblock b;
  shblock_init(&b);
  assert_int_equal(shblock_check(&b), 0);
  /* A block as obtain leaves it (without the implementation). */
  static _Alignas(4096) char area[8192];
  b.base = area;
  b.size = sizeof area;
  b.align = 4096;
  b.held = true;
  assert_int_equal(shblock_check(&b), 0);
  void *base, *handle;
  assert_int_equal(b.provider.obtain(b.provider.ctx, 4096, 4096, &base, &handle), EBUSY);
  assert_int_equal(b.provider.release(b.provider.ctx, area, 4096, NULL), EINVAL); /* not its size */
  assert_int_equal(b.provider.release(b.provider.ctx, area, sizeof area, NULL), 0);
  assert_false(b.held);
  assert_int_equal(b.provider.release(b.provider.ctx, area, sizeof area, NULL), EINVAL); /* twice */
  /* Broken in place: the provider's context is the record itself. */
  b.size = 0;
  assert_int_equal(shblock_check(&b), 1);
  b.size = sizeof area;
  b.base = area + 64;
  assert_int_equal(shblock_check(&b), 1);
  b.base = area;
  b.provider.ctx = NULL;
  assert_int_equal(shblock_check(&b), 1);
  b.provider.ctx = &b;
  assert_int_equal(shblock_check(&b), 0);
}

static void test_gather(void **state) {
  (void)state;
  static long sync[2][SHMEM_COLLECT_SYNC_SIZE];
  for (int t = 0; t < 2; t++)
    for (int i = 0; i < SHMEM_COLLECT_SYNC_SIZE; i++) sync[t][i] = SHMEM_SYNC_VALUE;
  shgather g = {.me = 1, .npes = 2, .area = sync, .sync = {sync[0], sync[1]}};
  assert_int_equal(shgather_check(&g), 0);
  char in[SHGATHER_MAX_LEN + 1] = {0}, out[2 * (SHGATHER_MAX_LEN + 1)];
  assert_int_equal(shgather_allgather(&g, in, out, 0), EMSGSIZE);
  assert_int_equal(shgather_allgather(&g, in, out, SHGATHER_MAX_LEN + 1), EMSGSIZE);
  assert_int_equal(g.turn, 0); /* refused before the collective */
  sync[1][0] = 0;
  assert_int_equal(shgather_check(&g), 1);
  sync[1][0] = SHMEM_SYNC_VALUE;
  g.me = 2;
  assert_int_equal(shgather_check(&g), 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_default_block, clear_env), cmocka_unit_test_setup(test_explicit_block, clear_env),
      cmocka_unit_test_setup(test_refusals, clear_env),      cmocka_unit_test_setup(test_sym_size, clear_env),
      cmocka_unit_test_setup(test_config_checker, clear_env), cmocka_unit_test_setup(test_block, clear_env),
      cmocka_unit_test_setup(test_gather, clear_env),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
