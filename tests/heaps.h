/*
 * heaps: the heap most integration tests open, so that each test states
 * only what differs (mode, size, arenas, debugging aids). Include after
 * cmocka.h.
 */
#ifndef PINHEAP_TEST_HEAPS_H
#define PINHEAP_TEST_HEAPS_H

#include <stdint.h>
#include <stdlib.h>

#include "pinheap.h"

/* A heap of mode with size (FIXED: the region; DYNAMIC: the cap on
 * registered bytes, 0 for none; SIMPLE: unused), arenas and debug flags,
 * every other option at its default. Fails the test, with
 * pinheap_last_error(), when it cannot be made. */
static inline pinheap *heaps_open(pinheap_mode mode, size_t size, unsigned arenas, unsigned debug) {
  pinheap_options o;
  pinheap_options_init(&o);
  o.mode = mode;
  o.size = size;
  o.arenas = arenas;
  o.debug = debug;
  pinheap *h = pinheap_create(&o);
  if (!h) fail_msg("pinheap_create: %s", pinheap_last_error());
  return h;
}

/* Leaves memory that held freed small objects (key.h): bytes of objects of
 * size bytes allocated, freed, and given back by pinheap_trim. The range
 * they covered into [*lo, *hi) (NULL: not wanted). */
static inline void heaps_freed_objects(pinheap *h, size_t bytes, size_t size, uintptr_t *lo, uintptr_t *hi) {
  size_t n = bytes / size;
  void **p = malloc(n * sizeof *p);
  assert_non_null(p);
  uintptr_t l = UINTPTR_MAX, e = 0;
  for (size_t i = 0; i < n; i++) {
    assert_non_null(p[i] = pinheap_malloc(h, size));
    l = (uintptr_t)p[i] < l ? (uintptr_t)p[i] : l;
    e = (uintptr_t)p[i] + size > e ? (uintptr_t)p[i] + size : e;
  }
  for (size_t i = 0; i < n; i++) pinheap_free(h, p[i]);
  free(p);
  pinheap_trim(h);
  if (lo) *lo = l;
  if (hi) *hi = e;
}

#endif
