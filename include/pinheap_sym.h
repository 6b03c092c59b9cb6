/*
 * pinheap_sym: symmetric allocation, as OpenSHMEM's shmem_malloc does it.
 *
 * A symmetric heap is a block of a pinheap heap, the same size on every
 * process of a group, managed by an extent manager of its own with the
 * two-ended policy (small objects from the top, large ones from the bottom,
 * best fit, free extents coalesced at once). Every process makes the same
 * sequence of collective calls, so every call returns the same offset on
 * every process: the remote address of an object is the remote symmetric
 * base plus the offset (pinheap_sym_remote).
 *
 * Collective calls: create, malloc, calloc, aligned_alloc, realloc, free and
 * destroy. Each one ends with one allgather over the group (which is also
 * the barrier OpenSHMEM puts after shmem_malloc and before shmem_free) in
 * which every process checks that all of them asked for and obtained the
 * same thing; a mismatch is reported with both sides' calls and aborts.
 * PINHEAP_SYM_NOSYNC leaves the allgather out (the caller synchronizes); the
 * check is then done only in debug builds and when PINHEAP_DEBUG is set in
 * the environment.
 *
 * Thread safety: the collective calls of one symmetric heap must be made in
 * the same order on every process (one thread at a time, as OpenSHMEM
 * requires); the queries (offset, ptr, remote, owns) may be called from any
 * thread at any time.
 *
 * Errors: as in pinheap.h: NULL (or -1) with errno and pinheap_last_error().
 */
#ifndef PINHEAP_SYM_H
#define PINHEAP_SYM_H

#include <stddef.h>
#include <stdint.h>

#include "pinheap.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The group a symmetric heap spans, as its comm layer sees it (an MPI
 * communicator, an OpenSHMEM team, ...). pinheap_mpi.h builds one from an
 * MPI communicator.
 */
typedef struct pinheap_collective {
  void *ctx;  /* passed to every call */
  int rank;   /* this process, 0 <= rank < nranks */
  int nranks; /* processes in the group */
  /* Every process calls it with the same len; out receives nranks * len
   * bytes, process i's in at out + i * len. Returns 0 or an errno value. */
  int (*allgather)(void *ctx, const void *in, void *out, size_t len);
} pinheap_collective;

typedef struct pinheap_sym pinheap_sym;

/* Flags of pinheap_sym_create. */
#define PINHEAP_SYM_NOSYNC 1u /* no allgather per call (see above) */

/* Collective. Takes size bytes (rounded up to a page) from heap as one
 * block, the same size on every process, and returns the symmetric heap, or
 * NULL with errno EINVAL (bad arguments, or the processes disagree on size)
 * or ENOMEM (on any process: then on every process). The collective is
 * copied; coll->ctx must stay valid until pinheap_sym_destroy. */
pinheap_sym *pinheap_sym_create(pinheap *heap, size_t size, const pinheap_collective *coll, unsigned flags);

/* Collective. Frees the block. Objects still live are reported (count and
 * bytes) on stderr. */
void pinheap_sym_destroy(pinheap_sym *sym);

/* Collective; the arguments must be the same on every process. Objects are
 * aligned to 64 bytes at least. size 0 returns NULL without an error, as
 * shmem_malloc(0) does. */
void *pinheap_sym_malloc(pinheap_sym *sym, size_t size);
void *pinheap_sym_calloc(pinheap_sym *sym, size_t count, size_t size);
void *pinheap_sym_aligned_alloc(pinheap_sym *sym, size_t alignment, size_t size);
/* Collective. Grows or shrinks in place when it can, otherwise moves (the
 * same way on every process); on failure ptr is left as it was. */
void *pinheap_sym_realloc(pinheap_sym *sym, void *ptr, size_t size);
/* Collective. NULL does nothing (but is still collective). A pointer that is
 * not a live symmetric object aborts with a message naming it. */
void pinheap_sym_free(pinheap_sym *sym, void *ptr);

/* The offset of ptr from this process's symmetric base, or SIZE_MAX when ptr
 * is not inside the symmetric heap. */
size_t pinheap_sym_offset(const pinheap_sym *sym, const void *ptr);
/* The local address at offset, or NULL when offset is outside. */
void *pinheap_sym_ptr(const pinheap_sym *sym, size_t offset);

/* Where ptr (a local address inside the symmetric heap) lives on process
 * rank: its virtual address there, and its offset inside rank's registration
 * (the block's pinheap_region_of there; an MPI window displacement for a
 * FIXED heap over MPI_Win_create, a libfabric offset without
 * FI_MR_VIRT_ADDR). */
typedef struct pinheap_sym_addr {
  uint64_t addr;       /* virtual address on rank */
  uint64_t reg_offset; /* offset from the base of rank's registration */
} pinheap_sym_addr;
int pinheap_sym_remote(const pinheap_sym *sym, const void *ptr, int rank, pinheap_sym_addr *out);

/* Stats of the symmetric heap, as pinheap_stats for a heap. */
int pinheap_sym_get_stats(pinheap_sym *sym, pinheap_stats *out);

/* Number of broken invariants (extent manager, live objects, counters),
 * each described on stderr. Local, not collective. */
int pinheap_sym_check(pinheap_sym *sym);

#ifdef __cplusplus
}
#endif

#endif /* PINHEAP_SYM_H */
