/*
 * libFuzzer target: the public API of a FIXED (or DYNAMIC) heap, with or
 * without the debugging aids (the low two bits of the first byte), placed
 * two-ended or by the ring (the third bit), under
 * arbitrary sequences of malloc, calloc, realloc, aligned allocation, free,
 * trim and stats, against a shadow model that checks contents, ownership,
 * non-overlap, usable sizes and the stats; heap_check runs every 64
 * operations and at the end. The heaps are small (32 MiB, a quarantine of
 * 8 MiB) so that a check, which visits every free page and every
 * quarantined byte, costs little: a run makes thousands of executions.
 *
 * Each operation takes 4 bytes: op, slot, and two bytes of size/alignment.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pinheap.h"

#define SLOTS 48
#define MiB ((size_t)1 << 20)
#define STAMP 64 /* bytes checked at each end of a block */

typedef struct {
  unsigned char *p;
  size_t size;
  unsigned char tag;
} block;

static pinheap *heaps[8];

static void fuzz_fail(const char *what, const void *p) {
  fprintf(stderr, "fuzz_api: %s (%p)\n", what, p);
  abort();
}

static void stamp(block *b) {
  size_t n = b->size < STAMP ? b->size : STAMP;
  memset(b->p, b->tag, n);
  memset(b->p + b->size - n, b->tag, n);
}

static void verify(const block *b, size_t upto) {
  size_t size = upto < b->size ? upto : b->size, n = size < STAMP ? size : STAMP;
  for (size_t i = 0; i < n; i++)
    if (b->p[i] != b->tag) fuzz_fail("a block's head changed", b->p);
  if (upto >= b->size)
    for (size_t i = b->size - n; i < b->size; i++)
      if (b->p[i] != b->tag) fuzz_fail("a block's tail changed", b->p);
}

static size_t pick_size(uint8_t a, uint8_t b) {
  switch (a & 3) {
  case 0: return b;                                  /* tiny, 0 included */
  case 1: return a & 4 ? 1025 + (size_t)b * 4 : 16 + (size_t)b * 55; /* the fine path's (fine.h), small */
  case 2: return 14000 + (size_t)b * 997;            /* both sides of the large threshold */
  default: return (size_t)(1 + b % 24) * MiB + a;    /* large */
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len) {
  unsigned which = len ? data[0] & 7 : 0;
  bool debug = which & 2;
  if (!heaps[which]) {
    pinheap_options o;
    pinheap_options_init(&o);
    o.mode = which & 1 ? PINHEAP_DYNAMIC : PINHEAP_FIXED;
    o.debug = debug ? PINHEAP_DEBUG_ALL : 0;
    o.policy = which & 4 ? PINHEAP_POLICY_RING : PINHEAP_POLICY_TWO_ENDED;
    o.size = 32 * MiB;
    o.chunk_size = 16 * MiB;
    o.direct_threshold = 4 * MiB;
    o.quarantine = 8 * MiB;
    o.arenas = 1;
    if (!(heaps[which] = pinheap_create(&o))) fuzz_fail(pinheap_last_error(), NULL);
  }
  pinheap *h = heaps[which];
  block live[SLOTS];
  memset(live, 0, sizeof live);
  unsigned char next_tag = 1;
  for (size_t i = 1; i + 4 <= len; i += 4) {
    unsigned op = data[i] % 8, s = data[i + 1] % SLOTS;
    size_t size = pick_size(data[i + 2], data[i + 3]);
    block *b = &live[s];
    if (op <= 2 && !b->p) {
      unsigned char *p = op == 0 ? pinheap_malloc(h, size)
                         : op == 1 ? pinheap_calloc(h, 1, size)
                                   : pinheap_aligned_alloc(h, (size_t)8 << (data[i + 3] % 20), size);
      if (!p) {
        if (errno != ENOMEM && errno != EINVAL) fuzz_fail("a failure without ENOMEM or EINVAL", NULL);
        continue;
      }
      if (!pinheap_owns(h, p)) fuzz_fail("a fresh block the heap does not own", p);
      size_t usable = pinheap_usable_size(h, p);
      if (usable < size || (debug && usable != size)) fuzz_fail("usable size below the request (debug: not it)", p);
      if (op == 1)
        for (size_t k = 0; k < size; k += 4093)
          if (p[k]) fuzz_fail("calloc memory that is not zero", p);
      if (op == 2 && (uintptr_t)p % ((size_t)8 << (data[i + 3] % 20))) fuzz_fail("a misaligned block", p);
      /* malloc(0): a minimal block, of which a debug heap lends no byte. */
      size_t real = size || debug ? size : 1;
      for (int j = 0; j < SLOTS; j++)
        if (live[j].p && p < live[j].p + live[j].size && live[j].p < p + real) fuzz_fail("overlapping blocks", p);
      *b = (block){p, real, next_tag++};
      stamp(b);
    } else if (op <= 4 && b->p) {
      verify(b, b->size);
      pinheap_free(h, b->p);
      b->p = NULL;
    } else if (op == 5 && b->p) {
      size_t real = size ? size : 1;
      unsigned char *q = pinheap_realloc(h, b->p, real);
      if (!q) {
        verify(b, b->size); /* a failed realloc keeps the block */
        continue;
      }
      b->p = q;
      verify(b, real < b->size ? real : b->size);
      b->size = real;
      b->tag = next_tag++;
      stamp(b);
    } else if (op == 6) {
      pinheap_trim(h);
    } else if (op == 7) {
      pinheap_stats st;
      if (pinheap_get_stats(h, &st) != 0) fuzz_fail("stats", NULL);
      size_t sum = 0;
      for (int j = 0; j < SLOTS; j++) sum += live[j].p ? live[j].size : 0;
      if (st.in_use + st.free_bytes != st.capacity || st.largest_free > st.free_bytes || st.allocated < sum ||
          st.peak_in_use < st.in_use)
        fuzz_fail("inconsistent stats", NULL);
    }
    if (i / 4 % 64 == 63 && pinheap_check(h) != 0) fuzz_fail("heap_check", NULL);
  }
  for (int j = 0; j < SLOTS; j++)
    if (live[j].p) {
      verify(&live[j], live[j].size);
      pinheap_free(h, live[j].p);
    }
  pinheap_trim(h);
  if (pinheap_check(h) != 0) fuzz_fail("heap_check at the end", NULL);
  pinheap_stats st;
  pinheap_get_stats(h, &st);
  if (st.allocated != 0) fuzz_fail("bytes still allocated after everything was freed", NULL);
  return 0;
}
