/*
 * counting: a test provider over mmap that registers nothing but counts
 * obtains and releases, hands out one handle, can refuse regions above a
 * size or past a total of live bytes (giving a reason through pinheap_set_error when it has one), can
 * hand released regions out again unchanged, and checks that every release names a region it gave.
 */
#ifndef PINHEAP_TEST_COUNTING_H
#define PINHEAP_TEST_COUNTING_H

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "pinheap.h"

typedef struct counting {
  int obtains, releases, refusals, bad_releases;
  size_t refuse_above; /* 0: no limit */
  size_t live_limit;   /* refuse what would take live_bytes above it (0: no limit) */
  const char *reason;  /* a refusal's text, or NULL: none */
  size_t last_size, last_align;
  void *last_base;
  size_t live_bytes;
  int key;   /* what the handle points to */
  int dirty; /* fill what obtain returns with 0xAB, as reused memory would be */
  /* Keep released regions mapped, as they were, and hand one of the size
   * asked out again, as a comm layer's pool would (at most COUNTING_KEPT). */
  int recycle;
  struct {
    void *base;
    size_t size;
  } kept[8];
} counting;

#define COUNTING_KEPT (sizeof ((counting *)0)->kept / sizeof ((counting *)0)->kept[0])

/* A kept region of size bytes aligned to align, taken off the list; NULL: none. */
static void *counting_reuse(counting *c, size_t size, size_t align) {
  for (size_t i = 0; i < COUNTING_KEPT; i++)
    if (c->kept[i].base && c->kept[i].size == size && (uintptr_t)c->kept[i].base % align == 0) {
      void *b = c->kept[i].base;
      c->kept[i].base = NULL;
      return b;
    }
  return NULL;
}

static int counting_obtain(void *ctx, size_t size, size_t align, void **base, void **handle) {
  counting *c = ctx;
  c->last_size = size;
  c->last_align = align;
  if ((c->refuse_above && size > c->refuse_above) || (c->live_limit && c->live_bytes + size > c->live_limit)) {
    c->refusals++;
    if (c->reason) pinheap_set_error(ENOMEM, "%s", c->reason);
    return ENOMEM;
  }
  char *b = c->recycle ? counting_reuse(c, size, align) : NULL;
  if (!b) {
    char *raw = mmap(NULL, size + align, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (raw == MAP_FAILED) return ENOMEM;
    b = (char *)(((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1));
    if (b > raw) munmap(raw, (size_t)(b - raw));
    if (raw + align > b) munmap(b + size, (size_t)(raw + align - b));
    if (c->dirty) memset(b, 0xAB, size < (8u << 20) ? size : (8u << 20));
  }
  c->obtains++;
  c->live_bytes += size;
  c->last_base = b;
  *base = b;
  *handle = &c->key;
  return 0;
}

static int counting_release(void *ctx, void *base, size_t size, void *handle) {
  counting *c = ctx;
  if (handle != &c->key || size > c->live_bytes) c->bad_releases++;
  c->releases++;
  c->live_bytes -= size;
  for (size_t i = 0; c->recycle && i < COUNTING_KEPT; i++)
    if (!c->kept[i].base) {
      c->kept[i].base = base;
      c->kept[i].size = size;
      return 0;
    }
  munmap(base, size);
  return 0;
}

static inline pinheap_provider counting_provider(counting *c) {
  return (pinheap_provider){.name = "counting", .ctx = c, .obtain = counting_obtain, .release = counting_release};
}

#endif
