/*
 * meta: a pool of fixed-size records taken from mmap, never from malloc, so
 * that jemalloc's extent hooks may allocate metadata without reentering
 * jemalloc.
 *
 * Invariants: every record is on the free list, handed out, or not yet
 * carved from the newest chunk ([bump, bump_end): carved in order, so that
 * a pool touches only the pages of the records it used); chunks are only
 * returned to the system by meta_fini.
 *
 * Not thread-safe: synchronization is the caller's.
 */
#ifndef PINHEAP_META_H
#define PINHEAP_META_H

#include <stddef.h>

typedef struct meta_chunk meta_chunk;

typedef struct meta_pool {
  size_t record_size;
  void *free_list;
  char *bump, *bump_end; /* the newest chunk's records not yet carved */
  meta_chunk *chunks;
  size_t live;     /* records handed out */
  size_t capacity; /* records in all chunks */
} meta_pool;

void meta_init(meta_pool *p, size_t record_size);
void meta_fini(meta_pool *p);
/* A zeroed record, or NULL when the system has no memory. */
void *meta_alloc(meta_pool *p);
void meta_free(meta_pool *p, void *rec);
/* Makes sure n records can be had without asking the system; 0 on success. */
int meta_reserve(meta_pool *p, size_t n);
/* Number of broken invariants (free list length + not carved + live =
 * capacity). */
int meta_check(const meta_pool *p);

#endif
