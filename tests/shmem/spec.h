/*
 * What the OpenSHMEM test programs share. They are written against the
 * OpenSHMEM specification alone (1.4, which Open MPI 4.1 implements:
 * shmem.h and nothing else), so that each runs unchanged under any
 * implementation, with or without a library that replaces its allocation
 * routines. Each prints its results from PE 0 only, in an order and a form
 * that do not depend on the allocator (no addresses), so that the outputs
 * of two runs can be compared line by line.
 */
#ifndef PINHEAP_TESTS_SHMEM_SPEC_H
#define PINHEAP_TESTS_SHMEM_SPEC_H

#include <shmem.h>
#include <stddef.h>
#include <stdio.h>

static int spec_me, spec_npes;

static inline void spec_init(void) {
  shmem_init();
  spec_me = shmem_my_pe();
  spec_npes = shmem_n_pes();
}

/* The byte PE pe writes at offset k of an object, for the case salt. */
static inline unsigned char spec_byte(int pe, size_t k, unsigned salt) {
  return (unsigned char)(((unsigned)pe + 1u) * 37u + (unsigned)k * 7u + salt * 13u) ^ 0x5au;
}

/* Collective: the sum of v over all PEs, on every PE. Global data is
 * symmetric; a barrier before and after lets the pSync array be reused. */
static inline long spec_sum(long v) {
  static long src, dst, work[SHMEM_REDUCE_MIN_WRKDATA_SIZE + 2], sync[SHMEM_REDUCE_SYNC_SIZE];
  static int ready;
  if (!ready) {
    for (int i = 0; i < SHMEM_REDUCE_SYNC_SIZE; i++) sync[i] = SHMEM_SYNC_VALUE;
    ready = 1;
  }
  src = v;
  shmem_barrier_all();
  shmem_long_sum_to_all(&dst, &src, 1, 0, 0, spec_npes, work, sync);
  shmem_barrier_all();
  return dst;
}

/* Collective: PE 0 prints what, then ok when no PE counted an error, else
 * the count. Returns the count. */
static inline long spec_report(const char *what, long errors) {
  long all = spec_sum(errors);
  if (spec_me == 0) {
    if (all)
      printf("%s: %ld errors\n", what, all);
    else
      printf("%s: ok\n", what);
    fflush(stdout);
  }
  return all;
}

#endif
