/*
 * heaps: the heap most integration tests open, so that each test states
 * only what differs (mode, size, arenas, debugging aids). Include after
 * cmocka.h.
 */
#ifndef PINHEAP_TEST_HEAPS_H
#define PINHEAP_TEST_HEAPS_H

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

#endif
