/*
 * shconfig: what libpinheap-shmem reads from the environment, once, when
 * it sets up at the first allocation:
 *
 *   PINHEAP_SHMEM_SIZE         the block taken from the implementation's
 *                              symmetric heap, a size as PINHEAP_SIZE takes
 *                              it (pinheap_parse_size)
 *   SHMEM_SYMMETRIC_HEAP_SIZE  the implementation's symmetric heap (Open
 *                              MPI's OSHMEM: 256 MiB when unset). Without
 *                              PINHEAP_SHMEM_SIZE the block is that heap
 *                              less a margin of a sixteenth of it (at least
 *                              SHCONFIG_MIN_MARGIN), left to the
 *                              implementation's own use, and a smaller one
 *                              is tried, an eighth less each time down to a
 *                              quarter of the heap, when the implementation
 *                              cannot give it (a buddy allocator rounds the
 *                              block up to a power of two)
 *   PINHEAP_STATS=1            the symmetric heap's stats on stderr at exit
 *   PINHEAP_DEBUG, and every other variable of pinheap_options_from_env:
 *                              read as it reads them; of them only
 *                              PINHEAP_DEBUG applies here: any flag of it
 *                              has every invariant checked after every
 *                              call
 *
 * Pure: no state of its own; thread-safe as getenv is.
 */
#ifndef PINHEAP_SHCONFIG_H
#define PINHEAP_SHCONFIG_H

#include <stdbool.h>
#include <stddef.h>

/* Open MPI's OSHMEM's symmetric heap when SHMEM_SYMMETRIC_HEAP_SIZE is unset. */
#define SHCONFIG_IMPL_DEFAULT ((size_t)256 << 20)
/* The least of the implementation's heap that the default leaves to it. */
#define SHCONFIG_MIN_MARGIN ((size_t)4 << 20)

/*
 * Invariants (after shconfig_from_env): min_block <= block; both are
 * multiples of the page size and at least shconfig_least_block(); min_block
 * == block when PINHEAP_SHMEM_SIZE gave it.
 */
typedef struct shconfig {
  size_t block;     /* bytes asked of the implementation's heap */
  size_t min_block; /* the smallest block tried when that is refused */
  size_t impl_heap; /* the implementation's heap, as far as we know it */
  bool explicit_size; /* PINHEAP_SHMEM_SIZE gave block */
  unsigned debug;   /* PINHEAP_DEBUG_* flags: any, every call checked */
  bool stats;       /* PINHEAP_STATS=1 */
} shconfig;

/* Fills *out from the environment. 0, or -1 with errno EINVAL and a
 * pinheap_last_error() text naming the variable and its value (*out then
 * unchanged). */
int shconfig_from_env(shconfig *out);

/* The smallest block that holds a symmetric heap: PINHEAP_SYM_MAX_ALIGN
 * bytes for objects in a FIXED heap of one arena. */
size_t shconfig_least_block(void);

/* The size of the symmetric heap a block of block bytes holds, in a FIXED
 * heap of one arena (PINHEAP_SYM_HEAP_SIZE): 0 when it holds none. */
size_t shconfig_sym_size(size_t block);

/* Number of broken invariants of c, each described on stderr. */
int shconfig_check(const shconfig *c);

#endif
