/*
 * local: the local provider. Regions of ordinary anonymous memory from mmap,
 * reserved without committing swap (MAP_NORESERVE) so that a large heap costs
 * only the pages it touches, or charged to the system's commit limit as
 * malloc's memory is (so that a size the system cannot back is refused at
 * once), optionally pre-faulted, locked and backed by transparent huge
 * pages. Nothing is registered: the handle is NULL.
 *
 * Invariants of a region it gave: base is aligned as asked and size is a
 * multiple of the page size; its pages are never madvised away.
 *
 * Thread-safe: no shared state.
 */
#ifndef PINHEAP_LOCAL_H
#define PINHEAP_LOCAL_H

#include <stdbool.h>
#include <stddef.h>

#include "pinheap.h"

typedef struct local_options {
  bool prefault;
  bool lock;
  bool hugepages;
  bool charged; /* without MAP_NORESERVE */
} local_options;

/* Fills *p with the local provider; opts is its context and must outlive it. */
void local_provider_init(pinheap_provider *p, local_options *opts);

/* The provider's functions (ctx: a local_options). obtain also leaves the
 * reason of a failure in pinheap_last_error(). */
int local_obtain(void *ctx, size_t size, size_t align, void **base, void **handle);
int local_release(void *ctx, void *base, size_t size, void *handle);

#endif
