#include "canary.h"

#include <stdio.h>
#include <string.h>

#include "error.h"
#include "ph_assert.h"
#include "pinheap.h"
#include "track.h"

uint64_t canary_key(const void *p) { return ((uint64_t)(uintptr_t)p * 0x9E3779B97F4A7C15ull) ^ 0x5EC0DEC0FFEE5EEDull; }

uint64_t canary_record(const void *p, size_t usable) {
  PH_ASSERT(usable >= CANARY_TRAILER);
  uint64_t v;
  memcpy(&v, (const char *)p + usable - CANARY_TRAILER, sizeof v);
  return v;
}

void canary_set_record(void *p, size_t usable, uint64_t v) {
  PH_ASSERT(usable >= CANARY_TRAILER);
  memcpy((char *)p + usable - CANARY_TRAILER, &v, sizeof v);
}

bool canary_freed(const void *p, size_t usable) { return canary_record(p, usable) == (canary_key(p) ^ CANARY_FREED); }

size_t canary_mismatch(const void *p, size_t from, size_t to, unsigned char b) {
  const unsigned char *c = p;
  const uint64_t word = 0x0101010101010101ull * b;
  size_t i = from;
  for (; i < to && (i & 7); i++)
    if (c[i] != b) return i;
  for (uint64_t v; i + 8 <= to; i += 8) {
    memcpy(&v, c + i, sizeof v);
    if (v != word) break;
  }
  for (; i < to; i++)
    if (c[i] != b) return i;
  return to;
}

bool canary_whole(const void *p, size_t usable, size_t *n, char *why, size_t len) {
  const unsigned char *c = p;
  track_mem_defined(c + usable - CANARY_TRAILER, CANARY_TRAILER);
  uint64_t key = canary_key(p), rec = canary_record(p, usable);
  if (rec == (key ^ CANARY_FREED)) {
    snprintf(why, len, "block freed already (a double free)");
    return false;
  }
  uint64_t size = rec ^ key;
  if (usable < CANARY_EXTRA || size > usable - CANARY_EXTRA) {
    snprintf(why, len, "the size record at the end of the block's %zu usable bytes is overwritten: it holds %#018llx",
             usable, (unsigned long long)rec);
    return false;
  }
  track_mem_defined(c + size, usable - CANARY_TRAILER - size);
  size_t at = canary_mismatch(p, (size_t)size, usable - CANARY_TRAILER, CANARY_BYTE);
  if (at < usable - CANARY_TRAILER) {
    snprintf(why, len, "block of %zu bytes written past its end: byte %zu is %#04x, the canary %#04x", (size_t)size,
             at, c[at], CANARY_BYTE);
    return false;
  }
  *n = (size_t)size;
  return true;
}

void canary_write(void *p, size_t usable, size_t n) {
  PH_ASSERT(usable >= CANARY_EXTRA && n <= usable - CANARY_EXTRA);
  memset((char *)p + n, CANARY_BYTE, usable - CANARY_TRAILER - n);
  canary_set_record(p, usable, (uint64_t)n ^ canary_key(p));
}

bool canary_poisoned(const void *p, size_t usable, char *why, size_t len) {
  const unsigned char *c = p;
  size_t end = usable - CANARY_TRAILER;
  size_t at = canary_mismatch(p, 0, end, PINHEAP_POISON_BYTE);
  if (at < end) {
    snprintf(why, len, "freed block of %zu bytes written after its free: byte %zu is %#04x, the poison %#04x", usable,
             at, c[at], PINHEAP_POISON_BYTE);
    return false;
  }
  if (!canary_freed(p, usable)) {
    snprintf(why, len, "freed block of %zu bytes written after its free: its last 8 bytes hold %#018llx", usable,
             (unsigned long long)canary_record(p, usable));
    return false;
  }
  return true;
}

bool canary_quarantined(const void *p, size_t size, char *why, size_t len) {
  const unsigned char *c = p;
  track_mem_defined(p, size);
  size_t at = canary_mismatch(p, 0, size, PINHEAP_POISON_BYTE);
  track_mem_noaccess(p, size);
  if (at == size) return true;
  snprintf(why, len, "freed block of %zu bytes in quarantine written after its free: byte %zu is %#04x, the poison %#04x",
           size, at, c[at], PINHEAP_POISON_BYTE);
  return false;
}

void canary_check_reused(void *p, size_t usable, bool poison, const char *what) {
  track_mem_defined(p, usable);
  char why[200];
  if (poison && !canary_poisoned(p, usable, why, sizeof why)) error_fatal("%s: block %p: %s", what, p, why);
}

void canary_check_released(void *p, size_t usable, bool poison, const char *what) {
  if (!poison) return;
  track_mem_defined(p, usable);
  char why[200];
  bool whole = canary_poisoned(p, usable, why, sizeof why);
  track_mem_noaccess(p, usable);
  if (!whole) error_fatal("%s: block %p: %s", what, p, why);
}
