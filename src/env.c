#include "env.h"

#include <errno.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "error.h"
#include "pinheap.h"
#include "util.h"

/* Digits into *out; returns the first character after them, or NULL when
 * there are none or they overflow. */
static const char *env_digits(const char *s, uint64_t *out) {
  uint64_t v = 0;
  const char *p = s;
  for (; *p >= '0' && *p <= '9'; p++) {
    if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10) return NULL;
    v = v * 10 + (uint64_t)(*p - '0');
  }
  if (p == s) return NULL;
  *out = v;
  return p;
}

/* A decimal number: digits, then optionally a point and 1 to max_frac more
 * digits, as whole + frac / scale (scale = 10^digits after the point, 1
 * without them). Returns the first character after it, or NULL when it is
 * malformed, has more fraction digits than max_frac (at most 18), or
 * overflows. */
static const char *env_decimal(const char *s, unsigned max_frac, uint64_t *whole, uint64_t *frac, uint64_t *scale) {
  const char *p = env_digits(s, whole);
  if (!p) return NULL;
  *frac = 0;
  *scale = 1;
  if (*p != '.') return p;
  const char *q = p + 1;
  for (; *q >= '0' && *q <= '9'; q++) {
    if ((unsigned)(q - p) > max_frac) return NULL;
    *frac = *frac * 10 + (uint64_t)(*q - '0');
    *scale *= 10;
  }
  return q == p + 1 ? NULL : q;
}

static int env_parse_percent(const char *text, size_t *out) {
  uint64_t whole, frac, scale;
  const char *p = env_decimal(text, 6, &whole, &frac, &scale);
  if (!p || strcmp(p, "%") != 0) return -1;
  /* The percentage in millionths, 0 < pct <= 100%. */
  if (whole > 100) return -1;
  uint64_t millionths = whole * 1000000 + frac * (1000000 / scale);
  if (millionths == 0 || millionths > 100000000) return -1;
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page <= 0) return -1;
  unsigned __int128 bytes = (unsigned __int128)pages * (uint64_t)page * millionths / 100000000;
  *out = util_align_up((size_t)bytes, (size_t)page);
  return *out ? 0 : -1;
}

int env_parse_size(const char *text, size_t *out) {
  if (!text || !*text) return -1;
  if (strchr(text, '%')) return env_parse_percent(text, out);
  uint64_t whole, frac, scale;
  const char *p = env_decimal(text, 18, &whole, &frac, &scale);
  if (!p) return -1;
  unsigned shift = 0;
  switch (*p) {
  case 'k': case 'K': shift = 10; p++; break;
  case 'm': case 'M': shift = 20; p++; break;
  case 'g': case 'G': shift = 30; p++; break;
  case 't': case 'T': shift = 40; p++; break;
  default: break;
  }
  if (shift && (strcasecmp(p, "b") == 0 || strcasecmp(p, "ib") == 0)) p += strlen(p);
  /* A fraction needs a unit: bytes are whole. */
  if (*p || (scale > 1 && !shift)) return -1;
  /* whole and frac / scale units, the fraction rounded up to a whole byte. */
  unsigned __int128 bytes = ((unsigned __int128)whole << shift) +
                            (((unsigned __int128)frac << shift) + scale - 1) / scale;
  if (bytes > SIZE_MAX) return -1;
  *out = (size_t)bytes;
  return 0;
}

int env_parse_seconds(const char *text, uint64_t *ns) {
  uint64_t whole, frac, scale;
  const char *p = text ? env_decimal(text, 9, &whole, &frac, &scale) : NULL;
  if (!p || *p || whole > ENV_MAX_SECONDS) return -1;
  *ns = whole * 1000000000u + frac * (1000000000u / scale);
  return 0;
}

int env_parse_bool(const char *text, bool *out) {
  static const char *yes[] = {"1", "yes", "true", "on"}, *no[] = {"0", "no", "false", "off"};
  for (size_t i = 0; text && i < 4; i++) {
    if (strcasecmp(text, yes[i]) == 0) return *out = true, 0;
    if (strcasecmp(text, no[i]) == 0) return *out = false, 0;
  }
  return -1;
}

int env_parse_count(const char *text, unsigned max, unsigned *out) {
  uint64_t v;
  const char *p = text ? env_digits(text, &v) : NULL;
  if (!p || *p || v > max) return -1;
  *out = (unsigned)v;
  return 0;
}

int env_parse_debug(const char *text, unsigned *out) {
  static const struct {
    const char *name;
    unsigned flag;
  } names[] = {{"canary", PINHEAP_DEBUG_CANARY}, {"poison", PINHEAP_DEBUG_POISON}, {"quarantine", PINHEAP_DEBUG_QUARANTINE}};
  bool all;
  if (env_parse_bool(text, &all) == 0) return *out = all ? PINHEAP_DEBUG_ALL : 0, 0;
  if (!text || !*text) return -1;
  unsigned flags = 0;
  for (const char *p = text;;) {
    size_t len = strcspn(p, ",");
    size_t i = 0;
    while (i < sizeof names / sizeof names[0] &&
           !(strlen(names[i].name) == len && strncasecmp(p, names[i].name, len) == 0))
      i++;
    if (i == sizeof names / sizeof names[0]) return -1;
    flags |= names[i].flag;
    if (!p[len]) break;
    p += len + 1;
  }
  *out = flags;
  return 0;
}

static int env_bad(const char *name, const char *value, const char *expected) {
  error_set(EINVAL, "pinheap_options_from_env: %s=\"%s\" is not %s", name, value, expected);
  return -1;
}

#define ENV_SIZE_WORDS \
  "a size (bytes, or a number such as 1.5 with a k, m, g or t suffix, or a percentage of memory such as 85%)"
#define ENV_BOOL_WORDS "one of 0, 1, yes, no, true, false, on, off"

/* The policies by name, in the order of pinheap_policy: a new policy is one
 * more line here. */
static const char *const env_policies[] = {
    [PINHEAP_POLICY_TWO_ENDED] = "two-ended",
    [PINHEAP_POLICY_BUMP] = "bump",
    [PINHEAP_POLICY_RING] = "ring",
    [PINHEAP_POLICY_FIRST_FIT] = "first-fit",
};

PH_EXPORT const char *pinheap_policy_name(pinheap_policy policy) {
  return (unsigned)policy < sizeof env_policies / sizeof env_policies[0] ? env_policies[policy] : NULL;
}

PH_EXPORT int pinheap_parse_size(const char *text, size_t *out) {
  size_t v;
  if (!out || env_parse_size(text, &v) != 0) {
    error_set(EINVAL, "pinheap_parse_size: \"%s\" is not %s", text ? text : "(null)", ENV_SIZE_WORDS);
    return -1;
  }
  *out = v;
  return 0;
}

PH_EXPORT int pinheap_parse_bool(const char *text, bool *out) {
  bool v;
  if (!out || env_parse_bool(text, &v) != 0) {
    error_set(EINVAL, "pinheap_parse_bool: \"%s\" is not %s", text ? text : "(null)", ENV_BOOL_WORDS);
    return -1;
  }
  *out = v;
  return 0;
}

PH_EXPORT int pinheap_options_from_env(pinheap_options *opts) {
  if (!opts) {
    error_set(EINVAL, "pinheap_options_from_env: options are NULL");
    return -1;
  }
  pinheap_options o = *opts;
  const char *v;
  if ((v = getenv("PINHEAP_MODE"))) {
    if (strcasecmp(v, "simple") == 0)
      o.mode = PINHEAP_SIMPLE;
    else if (strcasecmp(v, "dynamic") == 0)
      o.mode = PINHEAP_DYNAMIC;
    else if (strcasecmp(v, "fixed") == 0)
      o.mode = PINHEAP_FIXED;
    else
      return env_bad("PINHEAP_MODE", v, "one of simple, dynamic, fixed");
  }
  if ((v = getenv("PINHEAP_POLICY"))) {
    pinheap_policy p = 0;
    while (pinheap_policy_name(p) && strcasecmp(v, pinheap_policy_name(p)) != 0) p++;
    if (!pinheap_policy_name(p)) {
      char names[256] = "one of";
      for (pinheap_policy q = 0; pinheap_policy_name(q); q++)
        snprintf(names + strlen(names), sizeof names - strlen(names), "%s %s", q ? "," : "", pinheap_policy_name(q));
      return env_bad("PINHEAP_POLICY", v, names);
    }
    o.policy = p;
  }
  static const struct {
    const char *name;
    size_t offset;
  } sizes[] = {
      {"PINHEAP_SIZE", offsetof(pinheap_options, size)},
      {"PINHEAP_MIN_SIZE", offsetof(pinheap_options, min_size)},
      {"PINHEAP_LARGE_THRESHOLD", offsetof(pinheap_options, large_threshold)},
      {"PINHEAP_SMALL_EXTENT_MAX", offsetof(pinheap_options, small_extent_max)},
      {"PINHEAP_CHUNK_SIZE", offsetof(pinheap_options, chunk_size)},
      {"PINHEAP_DIRECT_THRESHOLD", offsetof(pinheap_options, direct_threshold)},
      {"PINHEAP_QUARANTINE", offsetof(pinheap_options, quarantine)},
      {"PINHEAP_RING_MIN", offsetof(pinheap_options, ring_min)},
      {"PINHEAP_DIRECT_CACHE", offsetof(pinheap_options, direct_cache)},
  };
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    if ((v = getenv(sizes[i].name)) && env_parse_size(v, (size_t *)(void *)((char *)&o + sizes[i].offset)) != 0)
      return env_bad(sizes[i].name, v, ENV_SIZE_WORDS);
  }
  static const struct {
    const char *name;
    size_t offset;
  } bools[] = {
      {"PINHEAP_HUGEPAGES", offsetof(pinheap_options, hugepages)},
      {"PINHEAP_PREFAULT", offsetof(pinheap_options, prefault)},
      {"PINHEAP_LOCK", offsetof(pinheap_options, lock)},
  };
  for (size_t i = 0; i < sizeof bools / sizeof bools[0]; i++) {
    if ((v = getenv(bools[i].name)) && env_parse_bool(v, (bool *)((char *)&o + bools[i].offset)) != 0)
      return env_bad(bools[i].name, v, ENV_BOOL_WORDS);
  }
  if ((v = getenv("PINHEAP_ARENAS")) && env_parse_count(v, 1u << 16, &o.arenas) != 0)
    return env_bad("PINHEAP_ARENAS", v, "a count");
  if ((v = getenv("PINHEAP_DIRECT_CACHE_BLOCKS")) &&
      env_parse_count(v, 1u << 16, &o.direct_cache_blocks) != 0)
    return env_bad("PINHEAP_DIRECT_CACHE_BLOCKS", v, "a count");
  if ((v = getenv("PINHEAP_DEBUG")) && env_parse_debug(v, &o.debug) != 0)
    return env_bad("PINHEAP_DEBUG", v, ENV_BOOL_WORDS ", or a comma list of canary, poison, quarantine");
  if ((v = getenv("PINHEAP_OOM_REPORT"))) {
    if (!*v) return env_bad("PINHEAP_OOM_REPORT", v, "a path");
    o.oom_report = v;
  }
  *opts = o;
  return 0;
}
