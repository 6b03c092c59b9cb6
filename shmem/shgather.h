/*
 * shgather: the allgather a symmetric heap needs (pinheap_collective), on
 * the OpenSHMEM implementation's own collectives: pshmem_fcollect64 over
 * all PEs, from and into buffers of the implementation's symmetric heap
 * (pshmem_malloc, never the heap the allgather serves).
 *
 * Each call first completes this PE's outstanding puts and atomics
 * (pshmem_quiet), so that the allgather that ends every call of the
 * symmetric heap is also the barrier OpenSHMEM puts there: once it has
 * returned on any PE, every PE has made the call and every PE's earlier
 * communication is complete.
 *
 * Two sets of buffers and pSync arrays, used in turn, let consecutive calls
 * follow one another without a barrier between them: a PE reaches call k+2
 * (set k's again) only after every PE has contributed to call k+1, that is
 * after every PE has left call k, read its result out and quieted its
 * traffic.
 *
 * Not thread-safe: one call at a time per PE, as the symmetric heap makes
 * them.
 */
#ifndef PINHEAP_SHGATHER_H
#define PINHEAP_SHGATHER_H

#include <stddef.h>
#include <stdint.h>

/* The most bytes one PE contributes to one allgather. */
#define SHGATHER_MAX_LEN ((size_t)256)

/*
 * Invariants: 0 <= me < npes; turn is 0 or 1; area is the one symmetric
 * allocation holding, per set, sync (SHMEM_COLLECT_SYNC_SIZE longs), src
 * (SHGATHER_MAX_LEN bytes) and dst (npes * SHGATHER_MAX_LEN bytes); between
 * calls every sync entry holds SHMEM_SYNC_VALUE.
 */
typedef struct shgather {
  int me, npes;
  unsigned turn; /* the set the next call uses */
  long *sync[2];
  uint64_t *src[2];
  uint64_t *dst[2];
  void *area;
} shgather;

/* Collective (pshmem_malloc and a barrier): the buffers. 0, or ENOMEM
 * with the error set. */
int shgather_init(shgather *g);

/* pinheap_collective's allgather; ctx is the shgather. len must be in
 * 1..SHGATHER_MAX_LEN (else EMSGSIZE, without the collective). */
int shgather_allgather(void *ctx, const void *in, void *out, size_t len);

/* Collective: gives the buffers back. */
void shgather_fini(shgather *g);

/* Number of broken invariants of g, each described on stderr. */
int shgather_check(const shgather *g);

#endif
