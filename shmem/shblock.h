/*
 * shblock: the provider of libpinheap-shmem's FIXED heap. Its one region is
 * a block of the OpenSHMEM implementation's own symmetric heap, taken with
 * pshmem_align: memory the implementation has registered, at the same
 * offset in the implementation's heap on every PE, so that every object
 * pinheap places in it is a symmetric object of the implementation.
 *
 * obtain is collective, as pshmem_align is: pinheap_create calls it on
 * every PE in the same order with the same sizes (a retry with a smaller
 * size too: the implementation's heap is in the same state everywhere, so
 * every PE gets the same answer). release does not give the block back:
 * pshmem_free is collective, and a heap whose create fails on one PE calls
 * release on that PE alone; it records the release, and shblock_free, which
 * every PE calls, gives the block to the implementation.
 *
 * Not thread-safe: one heap, created and destroyed by one thread per PE.
 */
#ifndef PINHEAP_SHBLOCK_H
#define PINHEAP_SHBLOCK_H

#include <stdbool.h>
#include <stddef.h>

#include "pinheap.h"

/*
 * Invariants: base is NULL exactly when size is 0; held implies base; base
 * is aligned as obtain was asked (align); the provider's ctx is the
 * shblock itself.
 */
typedef struct shblock {
  pinheap_provider provider; /* what pinheap_options.provider points to */
  void *base;                /* the block, NULL when none was obtained */
  size_t size;
  size_t align;
  bool held; /* the heap has it (obtained, not released) */
} shblock;

/* An shblock without a block, its provider ready. */
void shblock_init(shblock *b);

/* Collective: gives a released block back to the implementation
 * (pshmem_free), or does nothing when there is none; a held block stays. */
void shblock_free(shblock *b);

/* Number of broken invariants of b, each described on stderr. */
int shblock_check(const shblock *b);

#endif
