/*
 * local: the local provider. A region of ordinary anonymous memory from mmap,
 * reserved without committing swap (MAP_NORESERVE) so that a large heap costs
 * only the pages it touches, optionally pre-faulted, locked and backed by
 * transparent huge pages.
 *
 * Invariants of a mapped region: base is aligned to LOCAL_ALIGN and size is a
 * multiple of the page size; the pages are never madvised away while mapped.
 *
 * Thread-safe: no shared state.
 */
#ifndef PINHEAP_LOCAL_H
#define PINHEAP_LOCAL_H

#include <stdbool.h>
#include <stddef.h>

/* Regions start on a 2 MiB boundary: huge pages, and jemalloc asks for 2 MiB
 * aligned blocks for its metadata. */
#define LOCAL_ALIGN ((size_t)2 << 20)

typedef struct local_region {
  void *base;
  size_t size;
  bool locked;
} local_region;

typedef struct local_options {
  bool prefault;
  bool lock;
  bool hugepages;
} local_options;

/* Maps size bytes (a page multiple). 0, or -1 with errno and the error text
 * set (ENOMEM: no address space or memory to lock; EPERM: locking refused). */
int local_map(local_region *r, size_t size, const local_options *opts);
void local_unmap(local_region *r);

#endif
