#include "meta.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "ph_assert.h"

#define META_CHUNK_BYTES (64 * 1024)

struct meta_chunk {
  meta_chunk *next;
  size_t bytes;
};

void meta_init(meta_pool *p, size_t record_size) {
  memset(p, 0, sizeof *p);
  /* Records hold a free-list link and stay pointer-aligned. */
  if (record_size < sizeof(void *)) record_size = sizeof(void *);
  p->record_size = (record_size + 15) & ~(size_t)15;
}

void meta_fini(meta_pool *p) {
  meta_chunk *c = p->chunks;
  while (c) {
    meta_chunk *next = c->next;
    munmap(c, c->bytes);
    c = next;
  }
  memset(p, 0, sizeof *p);
}

static int meta_grow(meta_pool *p) {
  size_t bytes = META_CHUNK_BYTES;
  void *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return -1;
  meta_chunk *c = mem;
  c->bytes = bytes;
  c->next = p->chunks;
  p->chunks = c;
  size_t header = (sizeof *c + 15) & ~(size_t)15;
  /* The records not carved yet of the chunk before stay free. */
  for (; p->bump && p->bump + p->record_size <= p->bump_end; p->bump += p->record_size) {
    *(void **)p->bump = p->free_list;
    p->free_list = p->bump;
  }
  p->bump = (char *)mem + header;
  p->bump_end = p->bump + (bytes - header) / p->record_size * p->record_size;
  p->capacity += (bytes - header) / p->record_size;
  return 0;
}

static size_t meta_uncarved(const meta_pool *p) {
  return p->bump ? (size_t)(p->bump_end - p->bump) / p->record_size : 0;
}

int meta_reserve(meta_pool *p, size_t n) {
  while (p->capacity - p->live < n)
    if (meta_grow(p) != 0) return -1;
  return 0;
}

void *meta_alloc(meta_pool *p) {
  void *r = p->free_list;
  if (r) {
    p->free_list = *(void **)r;
  } else {
    if (p->bump == p->bump_end && meta_grow(p) != 0) return NULL;
    r = p->bump;
    p->bump += p->record_size;
  }
  p->live++;
  memset(r, 0, p->record_size);
  PH_ASSERT_EXPENSIVE(meta_check(p) == 0);
  return r;
}

void meta_free(meta_pool *p, void *rec) {
  PH_ASSERT(rec && p->live > 0);
  *(void **)rec = p->free_list;
  p->free_list = rec;
  p->live--;
  PH_ASSERT_EXPENSIVE(meta_check(p) == 0);
}

int meta_check(const meta_pool *p) {
  size_t free_count = 0;
  for (void *r = p->free_list; r && free_count <= p->capacity; r = *(void **)r) free_count++;
  if (free_count + meta_uncarved(p) + p->live != p->capacity) {
    fprintf(stderr, "meta: %zu free + %zu not carved + %zu live records should equal the capacity %zu\n", free_count,
            meta_uncarved(p), p->live, p->capacity);
    return 1;
  }
  return 0;
}
