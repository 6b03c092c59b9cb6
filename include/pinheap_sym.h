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
 * An allocation that fails on any process (ENOMEM) fails on every process:
 * those where it succeeded undo it, and all return NULL. Whatever a call
 * writes into an object (calloc's zeroes, realloc's copy) is written before
 * the allgather: once the call has returned on any process, no process
 * writes the object any more, and every process may write into every
 * other's copy of it at once.
 *
 * Watchdog: PINHEAP_SYM_TIMEOUT=seconds in the environment at create (a
 * number such as 30 or 2.5; unset or 0: none, and nothing is spent on it)
 * makes a process abort when one of its collective calls has waited longer
 * than that in the allgather (some process never made the call), printing
 * the call (name, arguments, sequence number), the heap and the rank. A
 * thread per symmetric heap watches; each call pays a clock read and two
 * uncontended locks. A value that is not a number fails create with EINVAL.
 *
 * PINHEAP_SYM_NOSYNC leaves the allgather out (the caller synchronizes); the
 * check is then done only in debug builds (CMAKE_BUILD_TYPE=Debug) and when
 * PINHEAP_DEBUG is set (to anything but "" or "0") in the environment of
 * some process at create. Without the check a failure is local: the caller
 * must learn of it (by a reduction of its own) and free the object on the
 * processes where it succeeded before its next call.
 *
 * Thread safety: the collective calls of one symmetric heap must be made in
 * the same order on every process (one thread at a time, as OpenSHMEM
 * requires); the queries (offset, ptr, remote) and stats may be called from
 * any thread at any time, check from any thread between collective calls.
 *
 * Errors: as in pinheap.h: NULL (or -1) with errno and pinheap_last_error().
 *
 * Fork: a child process must not make collective calls on its parent's
 * symmetric heaps.
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

/* The largest alignment pinheap_sym_aligned_alloc takes: the block of every
 * process starts on such a boundary, so that an aligned object has the same
 * offset everywhere. */
#define PINHEAP_SYM_MAX_ALIGN ((size_t)2 << 20)

/* What each jemalloc arena of a FIXED heap takes of its region besides
 * the blocks: nothing (its grants are exact: it takes the slabs it uses
 * and gives them back; jemalloc's metadata lies outside the region). Kept
 * for the sources that add it per arena. */
#define PINHEAP_SYM_ARENA_BYTES ((size_t)0)

/* How large a FIXED heap must be for pinheap_sym_create(heap, n, ...) to
 * find its block: n rounded up to PINHEAP_SYM_MAX_ALIGN, plus
 * PINHEAP_SYM_ARENA_BYTES per arena (arenas: pinheap_options.arenas, or
 * when that is 0 the number of online CPUs, at most 64): n rounded up.
 * True of a heap made with otherwise default options (pinheap_options_init;
 * under the bump policy each arena keeps 2 MiB more) from which nothing
 * else was allocated; for n a multiple of PINHEAP_SYM_MAX_ALIGN a heap one
 * page smaller does not hold the block. */
#define PINHEAP_SYM_HEAP_SIZE(n, arenas)                                        \
  ((((size_t)(n) + PINHEAP_SYM_MAX_ALIGN - 1) & ~(PINHEAP_SYM_MAX_ALIGN - 1)) + \
   (size_t)(arenas) * PINHEAP_SYM_ARENA_BYTES)

/* Collective. Takes size bytes (rounded up to a page) from heap as one
 * block, aligned to PINHEAP_SYM_MAX_ALIGN, the same size on every process
 * (a FIXED heap needs PINHEAP_SYM_HEAP_SIZE bytes for it), and returns the
 * symmetric heap, or NULL with errno EINVAL (bad arguments on any process,
 * the processes disagree on size or flags, or a PINHEAP_SYM_TIMEOUT that is
 * not a number) or ENOMEM (no room for the block, or a size no heap could
 * hold, on any process: then on every process). coll NULL, or a coll whose
 * rank or allgather is unusable, fails at once without the allgather. The
 * collective is copied; coll->ctx and heap must stay valid until
 * pinheap_sym_destroy. */
pinheap_sym *pinheap_sym_create(pinheap *heap, size_t size, const pinheap_collective *coll, unsigned flags);

/*
 * What a comm layer gathers of every process's block at create, for its own
 * remote-addressing call (pinheap_mpi_remote, pinheap_ofi_remote): a window
 * displacement, a memory key. Optional: pinheap_sym_create gathers none.
 * Comm layers build it (pinheap_mpi_sym_create, pinheap_ofi_sym_create);
 * applications need not.
 */
typedef struct pinheap_sym_layer {
  const void *id;  /* any address unique to the layer: pinheap_sym_layer_desc
                    * answers only to it */
  void *ctx;       /* passed to describe */
  size_t desc_len; /* bytes each process describes its block with,
                    * 1..PINHEAP_SYM_DESC_MAX, the same on every process */
  /* Called once on each process when its block is taken, before anything
   * is gathered: fills desc[0, desc_len) (every byte) with what the layer
   * will need of this process's block. Returns 0, or an errno value (with
   * pinheap_set_error): create then fails on every process, as when a
   * block cannot be had. */
  int (*describe)(void *ctx, pinheap *heap, void *block, size_t size, void *desc);
} pinheap_sym_layer;
#define PINHEAP_SYM_DESC_MAX 256

/* pinheap_sym_create, and every process's descriptor of its block gathered
 * by one more allgather (layer NULL: none, as pinheap_sym_create). A layer
 * that is unusable (no id or describe, desc_len out of range) is EINVAL
 * without an allgather; processes whose desc_len differ get EINVAL on
 * every process. */
pinheap_sym *pinheap_sym_create_layer(pinheap *heap, size_t size, const pinheap_collective *coll, unsigned flags,
                                      const pinheap_sym_layer *layer);

/* The descriptor process rank gave for its block, or NULL with errno EINVAL
 * when sym is NULL, was not created with a layer of this id, or rank is out
 * of range. Valid until pinheap_sym_destroy; thread-safe, O(1). */
const void *pinheap_sym_layer_desc(const pinheap_sym *sym, const void *id, int rank);

/* This process's rank in the group (the collective's), or -1 with errno
 * EINVAL for NULL. */
int pinheap_sym_rank(const pinheap_sym *sym);

/* Collective. Frees the block. Objects still live are reported (count and
 * bytes) on stderr. */
void pinheap_sym_destroy(pinheap_sym *sym);

/* Collective; the arguments must be the same on every process. Objects are
 * aligned to 64 bytes at least. size 0 returns NULL without an error, as
 * shmem_malloc(0) does (still collective). No room, a size no state of the
 * heap could satisfy, an overflowing calloc: ENOMEM. An alignment that is
 * not a power of two or is above PINHEAP_SYM_MAX_ALIGN: EINVAL. */
void *pinheap_sym_malloc(pinheap_sym *sym, size_t size);
void *pinheap_sym_calloc(pinheap_sym *sym, size_t count, size_t size);
void *pinheap_sym_aligned_alloc(pinheap_sym *sym, size_t alignment, size_t size);
/* Collective. Grows or shrinks in place when it can, otherwise moves (the
 * same way on every process); on failure ptr is left as it was. ptr NULL:
 * malloc; size 0: frees ptr and returns NULL. A ptr that is not a live
 * symmetric object aborts, as in pinheap_sym_free. A move copies ptr's
 * contents as the call begins: writes into ptr by any process must be
 * complete before any process makes the call (as before a barrier). */
void *pinheap_sym_realloc(pinheap_sym *sym, void *ptr, size_t size);
/* Collective. NULL does nothing (but is still collective). A pointer that is
 * not a live symmetric object (outside the heap, freed already, inside an
 * object) aborts with a message naming it. */
void pinheap_sym_free(pinheap_sym *sym, void *ptr);

/* The offset of ptr from this process's symmetric base, or SIZE_MAX when ptr
 * is not inside the symmetric heap. */
size_t pinheap_sym_offset(const pinheap_sym *sym, const void *ptr);
/* The local address at offset, or NULL when offset is outside. */
void *pinheap_sym_ptr(const pinheap_sym *sym, size_t offset);

/* Where ptr (a local address inside the symmetric heap) lives on process
 * rank: its virtual address there, and its offset inside rank's registration
 * (the block's pinheap_region_of there). Which of the two a one-sided
 * operation takes depends on the comm layer and its mode (an MPI FIXED
 * window takes the offset, a DYNAMIC one the address; libfabric the address
 * under FI_MR_VIRT_ADDR, else the offset) and neither carries the key or
 * the window: pinheap_mpi_remote and pinheap_ofi_remote answer exactly what
 * their operations take. */
typedef struct pinheap_sym_addr {
  uint64_t addr;       /* virtual address on rank */
  uint64_t reg_offset; /* offset from the base of rank's registration, or
                        * PINHEAP_SYM_NO_REG when rank's heap has none (a
                        * SIMPLE heap) */
} pinheap_sym_addr;
#define PINHEAP_SYM_NO_REG UINT64_MAX
/* 0 with *out filled, or -1 with errno EINVAL (NULL sym or out, rank out of
 * range, ptr outside the symmetric heap). */
int pinheap_sym_remote(const pinheap_sym *sym, const void *ptr, int rank, pinheap_sym_addr *out);

/* Stats of the symmetric heap, as pinheap_stats for a heap: capacity is the
 * block, in_use the bytes of live objects rounded up to 64, allocated the
 * bytes asked for, large_* the objects placed from the bottom (above the
 * heap's small-object limit). 0, or -1 with errno EINVAL. */
int pinheap_sym_get_stats(pinheap_sym *sym, pinheap_stats *out);

/* Number of broken invariants (extent manager, live objects, counters),
 * each described on stderr; -1 with errno EINVAL for NULL. Local, not
 * collective. */
int pinheap_sym_check(pinheap_sym *sym);

#ifdef __cplusplus
}
#endif

#endif /* PINHEAP_SYM_H */
