/* Unit tests of the environment parsers and pinheap_options_from_env. */
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

#include "env.h"
#include "pinheap.h"

static const char *vars[] = {"PINHEAP_MODE",     "PINHEAP_SIZE",      "PINHEAP_MIN_SIZE", "PINHEAP_POLICY",
                             "PINHEAP_LARGE_THRESHOLD", "PINHEAP_SMALL_EXTENT_MAX", "PINHEAP_ARENAS",
                             "PINHEAP_HUGEPAGES", "PINHEAP_PREFAULT", "PINHEAP_LOCK", "PINHEAP_DEBUG",
                             "PINHEAP_CHUNK_SIZE", "PINHEAP_DIRECT_THRESHOLD", "PINHEAP_QUARANTINE",
                             "PINHEAP_DIRECT_CACHE", "PINHEAP_DIRECT_CACHE_BLOCKS"};

static int clear_env(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) unsetenv(vars[i]);
  return 0;
}

static void test_sizes(void **state) {
  (void)state;
  size_t v = 0;
  assert_int_equal(env_parse_size("0", &v), 0);
  assert_int_equal(v, 0);
  assert_int_equal(env_parse_size("4096", &v), 0);
  assert_int_equal(v, 4096);
  assert_int_equal(env_parse_size("64k", &v), 0);
  assert_int_equal(v, 64 << 10);
  assert_int_equal(env_parse_size("3M", &v), 0);
  assert_int_equal(v, 3 << 20);
  assert_int_equal(env_parse_size("2g", &v), 0);
  assert_int_equal(v, (size_t)2 << 30);
  assert_int_equal(env_parse_size("1T", &v), 0);
  assert_int_equal(v, (size_t)1 << 40);
  assert_int_equal(env_parse_size("8GiB", &v), 0);
  assert_int_equal(v, (size_t)8 << 30);
  assert_int_equal(env_parse_size("8gb", &v), 0);
  assert_int_equal(v, (size_t)8 << 30);
  size_t phys = (size_t)sysconf(_SC_PHYS_PAGES) * (size_t)sysconf(_SC_PAGESIZE);
  assert_int_equal(env_parse_size("100%", &v), 0);
  assert_int_equal(v, phys);
  assert_int_equal(env_parse_size("50%", &v), 0);
  assert_true(v >= phys / 2 && v <= phys / 2 + 4096);
  assert_int_equal(env_parse_size("12.5%", &v), 0);
  assert_true(v >= phys / 8 && v <= phys / 8 + 4096);
  const char *bad[] = {"", "k", "-1", "12x", "1kk", "1 k", "0%", "101%", "%", "5.%", "abc",
                       "99999999999999999999", "16777216t", "1e9", "0x10", "1.5", "1.5.5g", ".g", ".5g",
                       "1.g", "1e3g", "1,5g", "+1g", "1.5 g", "1.5gg", "1.5g%", "0.1234567%",
                       "1.0000000000000000000k", "16777216.5t", "1.5%%"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    v = 7;
    if (env_parse_size(bad[i], &v) == 0) fail_msg("\"%s\" parsed as a size", bad[i]);
    assert_int_equal(v, 7);
  }
}

/* Fractions with a unit: exact values, rounded up to a whole byte. */
static void test_size_fractions(void **state) {
  (void)state;
  static const struct {
    const char *text;
    size_t bytes;
  } good[] = {
      {"1.5g", (size_t)3 << 29},
      {"1.5G", (size_t)3 << 29},
      {"1.5GiB", (size_t)3 << 29},
      {"0.5m", (size_t)1 << 19},
      {"2.25k", 2304},
      {"0.3k", 308}, /* 307.2 */
      {"0.001k", 2}, /* 1.024 */
      {"0.0k", 0},
      {"1.000000000000000001t", ((size_t)1 << 40) + 1}, /* 18 digits: a fraction of a byte */
      {"0.000000000000000001k", 1},
      {"3.0m", (size_t)3 << 20},
      {"16777215.5t", ((size_t)16777215 << 40) + ((size_t)1 << 39)},
  };
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    size_t v = 7;
    if (env_parse_size(good[i].text, &v) != 0 || v != good[i].bytes)
      fail_msg("\"%s\" parsed as %zu, expected %zu", good[i].text, v, good[i].bytes);
  }
  /* Every size variable takes them. */
  static const char *sizes[] = {"PINHEAP_SIZE",      "PINHEAP_MIN_SIZE",         "PINHEAP_LARGE_THRESHOLD",
                                "PINHEAP_SMALL_EXTENT_MAX", "PINHEAP_CHUNK_SIZE", "PINHEAP_DIRECT_THRESHOLD"};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    setenv(sizes[i], "1.5g", 1);
    pinheap_options o;
    pinheap_options_init(&o);
    if (pinheap_options_from_env(&o) != 0) fail_msg("%s=1.5g: %s", sizes[i], pinheap_last_error());
    unsetenv(sizes[i]);
  }
  setenv("PINHEAP_SIZE", "1.5g", 1);
  setenv("PINHEAP_CHUNK_SIZE", "0.25g", 1);
  pinheap_options o;
  pinheap_options_init(&o);
  assert_int_equal(pinheap_options_from_env(&o), 0);
  assert_int_equal(o.size, (size_t)3 << 29);
  assert_int_equal(o.chunk_size, (size_t)1 << 28);
  setenv("PINHEAP_SIZE", "1.5.5g", 1);
  assert_int_equal(pinheap_options_from_env(&o), -1);
  assert_int_equal(errno, EINVAL);
  unsetenv("PINHEAP_SIZE");
  unsetenv("PINHEAP_CHUNK_SIZE");
}

static void test_seconds(void **state) {
  (void)state;
  static const struct {
    const char *text;
    uint64_t ns;
  } good[] = {{"0", 0}, {"2", 2000000000u}, {"0.5", 500000000u}, {"1.000000001", 1000000001u},
              {"1000000000", 1000000000000000000u}};
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    uint64_t ns = 7;
    if (env_parse_seconds(good[i].text, &ns) != 0 || ns != good[i].ns)
      fail_msg("\"%s\" parsed as %llu ns", good[i].text, (unsigned long long)ns);
  }
  const char *bad[] = {"", "s", "-1", "1s", "1.", ".5", "1.5.5", "1e3", "0.0000000001", "1000000001", " 1"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    uint64_t ns = 7;
    if (env_parse_seconds(bad[i], &ns) == 0) fail_msg("\"%s\" parsed as seconds", bad[i]);
    assert_int_equal(ns, 7);
  }
  uint64_t ns;
  assert_int_equal(env_parse_seconds(NULL, &ns), -1);
}

static void test_bools_and_counts(void **state) {
  (void)state;
  bool b;
  const char *yes[] = {"1", "yes", "YES", "true", "On"}, *no[] = {"0", "no", "False", "off", "OFF"};
  for (int i = 0; i < 5; i++) {
    assert_int_equal(env_parse_bool(yes[i], &b), 0);
    assert_true(b);
    assert_int_equal(env_parse_bool(no[i], &b), 0);
    assert_false(b);
  }
  assert_int_equal(env_parse_bool("2", &b), -1);
  assert_int_equal(env_parse_bool("", &b), -1);
  assert_int_equal(env_parse_bool("yess", &b), -1);
  unsigned n;
  assert_int_equal(env_parse_count("16", 64, &n), 0);
  assert_int_equal(n, 16);
  assert_int_equal(env_parse_count("65", 64, &n), -1);
  assert_int_equal(env_parse_count("4a", 64, &n), -1);
  assert_int_equal(env_parse_count("", 64, &n), -1);
}

static void test_debug_flags(void **state) {
  (void)state;
  static const struct {
    const char *text;
    unsigned flags;
  } good[] = {{"1", PINHEAP_DEBUG_ALL},    {"on", PINHEAP_DEBUG_ALL},
              {"0", 0},                    {"false", 0},
              {"canary", PINHEAP_DEBUG_CANARY}, {"Poison", PINHEAP_DEBUG_POISON},
              {"canary,poison", PINHEAP_DEBUG_CANARY | PINHEAP_DEBUG_POISON},
              {"poison,canary,poison", PINHEAP_DEBUG_CANARY | PINHEAP_DEBUG_POISON},
              {"Quarantine", PINHEAP_DEBUG_QUARANTINE}, {"canary,quarantine,poison", PINHEAP_DEBUG_ALL}};
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    unsigned f = 99;
    if (env_parse_debug(good[i].text, &f) != 0 || f != good[i].flags)
      fail_msg("\"%s\" parsed as %u, expected %u", good[i].text, f, good[i].flags);
  }
  const char *bad[] = {"", ",", "canary,", ",poison", "canar", "canary poison", "canary,,poison", "2", "guard"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    unsigned f = 99;
    if (env_parse_debug(bad[i], &f) == 0) fail_msg("\"%s\" parsed as debug flags", bad[i]);
    assert_int_equal(f, 99);
  }
}

static void test_options_from_env(void **state) {
  (void)state;
  pinheap_options o, defaults;
  pinheap_options_init(&o);
  defaults = o;
  assert_int_equal(pinheap_options_from_env(&o), 0); /* nothing set: nothing changes */
  assert_memory_equal(&o, &defaults, sizeof o);
  setenv("PINHEAP_MODE", "Simple", 1);
  setenv("PINHEAP_SIZE", "2g", 1);
  setenv("PINHEAP_MIN_SIZE", "512m", 1);
  setenv("PINHEAP_POLICY", "bump", 1);
  setenv("PINHEAP_LARGE_THRESHOLD", "8k", 1);
  setenv("PINHEAP_SMALL_EXTENT_MAX", "1m", 1);
  setenv("PINHEAP_ARENAS", "3", 1);
  setenv("PINHEAP_HUGEPAGES", "yes", 1);
  setenv("PINHEAP_PREFAULT", "1", 1);
  setenv("PINHEAP_LOCK", "off", 1);
  setenv("PINHEAP_DEBUG", "poison", 1);
  setenv("PINHEAP_QUARANTINE", "64m", 1);
  setenv("PINHEAP_DIRECT_CACHE", "0", 1);
  setenv("PINHEAP_DIRECT_CACHE_BLOCKS", "7", 1);
  assert_int_equal(pinheap_options_from_env(&o), 0);
  assert_int_equal(o.direct_cache, 0);
  assert_int_equal(o.direct_cache_blocks, 7);
  assert_int_equal(o.debug, PINHEAP_DEBUG_POISON);
  assert_int_equal(o.quarantine, (size_t)64 << 20);
  assert_int_equal(o.mode, PINHEAP_SIMPLE);
  assert_int_equal(o.size, (size_t)2 << 30);
  assert_int_equal(o.min_size, (size_t)512 << 20);
  assert_int_equal(o.policy, PINHEAP_POLICY_BUMP);
  assert_int_equal(o.large_threshold, 8 << 10);
  assert_int_equal(o.small_extent_max, 1 << 20);
  assert_int_equal(o.arenas, 3);
  assert_true(o.hugepages);
  assert_true(o.prefault);
  assert_false(o.lock);
  setenv("PINHEAP_MODE", "dynamic", 1);
  assert_int_equal(pinheap_options_from_env(&o), 0);
  assert_int_equal(o.mode, PINHEAP_DYNAMIC);
}

/* Every malformed value is refused, names the variable and the value, and
 * leaves the options as they were. */
static void test_malformed_values(void **state) {
  (void)state;
  static const struct {
    const char *name, *value;
  } cases[] = {
      {"PINHEAP_MODE", "fixd"},         {"PINHEAP_MODE", ""},          {"PINHEAP_SIZE", "12q"},
      {"PINHEAP_SIZE", "150%"},         {"PINHEAP_MIN_SIZE", "-4k"},   {"PINHEAP_POLICY", "best"},
      {"PINHEAP_LARGE_THRESHOLD", "x"}, {"PINHEAP_SMALL_EXTENT_MAX", "4mm"}, {"PINHEAP_ARENAS", "two"},
      {"PINHEAP_ARENAS", "99999999"},   {"PINHEAP_HUGEPAGES", "maybe"}, {"PINHEAP_PREFAULT", "2"},
      {"PINHEAP_LOCK", "enable"},       {"PINHEAP_DEBUG", "guard"},    {"PINHEAP_DEBUG", "canary,"},
      {"PINHEAP_QUARANTINE", "1x"},     {"PINHEAP_DIRECT_CACHE", "lots"}, {"PINHEAP_DIRECT_CACHE_BLOCKS", "-1"},
      {"PINHEAP_DIRECT_CACHE_BLOCKS", "99999999"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    clear_env(NULL);
    setenv("PINHEAP_SIZE", "1g", 1); /* a good value beside the bad one */
    setenv(cases[i].name, cases[i].value, 1);
    pinheap_options o, before;
    pinheap_options_init(&o);
    before = o;
    errno = 0;
    assert_int_equal(pinheap_options_from_env(&o), -1);
    assert_int_equal(errno, EINVAL);
    assert_memory_equal(&o, &before, sizeof o);
    const char *msg = pinheap_last_error();
    if (!strstr(msg, cases[i].name) || !strstr(msg, cases[i].value)) fail_msg("message \"%s\"", msg);
  }
  assert_int_equal(pinheap_options_from_env(NULL), -1);
}

/* The public parser: env_parse_size's answers, and EINVAL with a text
 * quoting what it refused. */
static void test_public_size_parser(void **state) {
  (void)state;
  static const char *good[] = {"4096", "64k", "1.5g", "8GiB", "12.5%", "0.3k"};
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    size_t mine = 7, inner = 9;
    if (pinheap_parse_size(good[i], &mine) != 0) fail_msg("\"%s\": %s", good[i], pinheap_last_error());
    assert_int_equal(env_parse_size(good[i], &inner), 0);
    assert_int_equal(mine, inner);
  }
  static const char *bad[] = {"", "1.5", "12x", "-1", "101%"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    size_t v = 7;
    errno = 0;
    assert_int_equal(pinheap_parse_size(bad[i], &v), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(v, 7);
    char quoted[32];
    snprintf(quoted, sizeof quoted, "\"%s\"", bad[i]);
    if (!strstr(pinheap_last_error(), quoted)) fail_msg("message \"%s\" does not quote %s", pinheap_last_error(), quoted);
  }
  size_t v;
  assert_int_equal(pinheap_parse_size(NULL, &v), -1);
  assert_int_equal(pinheap_parse_size("4k", NULL), -1);
  assert_int_equal(errno, EINVAL);
}

/* pinheap_parse_bool reads what PINHEAP_PREFAULT does; EINVAL quoting the
 * text otherwise, *out unchanged. */
static void test_public_bool_parser(void **state) {
  (void)state;
  static const struct {
    const char *text;
    bool value;
  } good[] = {{"1", true}, {"0", false}, {"yes", true}, {"NO", false}, {"True", true},
              {"false", false}, {"on", true}, {"Off", false}};
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    bool v = !good[i].value, inner = good[i].value;
    if (pinheap_parse_bool(good[i].text, &v) != 0) fail_msg("\"%s\": %s", good[i].text, pinheap_last_error());
    assert_int_equal(v, good[i].value);
    assert_int_equal(env_parse_bool(good[i].text, &inner), 0);
    assert_int_equal(inner, v);
  }
  static const char *bad[] = {"", "2", "yess", "of", " on"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    bool v = true;
    errno = 0;
    assert_int_equal(pinheap_parse_bool(bad[i], &v), -1);
    assert_int_equal(errno, EINVAL);
    assert_true(v);
    char quoted[32];
    snprintf(quoted, sizeof quoted, "\"%s\"", bad[i]);
    if (!strstr(pinheap_last_error(), quoted)) fail_msg("message \"%s\" does not quote %s", pinheap_last_error(), quoted);
  }
  bool v;
  assert_int_equal(pinheap_parse_bool(NULL, &v), -1);
  assert_int_equal(pinheap_parse_bool("on", NULL), -1);
  assert_int_equal(errno, EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_sizes, clear_env),
      cmocka_unit_test_setup(test_size_fractions, clear_env),
      cmocka_unit_test_setup(test_seconds, clear_env),
      cmocka_unit_test_setup(test_bools_and_counts, clear_env),
      cmocka_unit_test_setup(test_debug_flags, clear_env),
      cmocka_unit_test_setup(test_options_from_env, clear_env),
      cmocka_unit_test_setup(test_malformed_values, clear_env),
      cmocka_unit_test_setup(test_public_size_parser, clear_env),
      cmocka_unit_test_setup(test_public_bool_parser, clear_env),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
