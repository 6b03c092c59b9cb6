/*
 * shserve: libpinheap-shmem's OpenSHMEM allocation routines. Open MPI's
 * liboshmem defines shmem_malloc and the others as weak aliases of strong
 * pshmem_* symbols (the OpenSHMEM profiling interface); this library
 * defines the shmem_* names, so that a program linked with it before the
 * implementation, or run with it in LD_PRELOAD, calls them here, and
 * reaches the implementation through pshmem_* only.
 *
 * At the first allocation every PE sets up (shserve_setup): the allgather's
 * buffers (shgather), one block of the implementation's symmetric heap as
 * the region of a FIXED heap of one arena (shblock), and in it a symmetric
 * heap (pinheap_sym) of what the block holds. Every object is placed by
 * that symmetric heap, so it lies at the same offset of the
 * implementation's heap on every PE: a symmetric object of the
 * implementation, valid in its puts, gets, atomics and collectives.
 *
 * The routines follow OpenSHMEM 1.5: collective over all PEs with the same
 * arguments; a call that does nothing (size 0, freeing NULL) returns at
 * once, without the collective; every other call ends with the symmetric
 * heap's allgather, which (shgather) is also the barrier the specification
 * puts on exit of an allocation and on entry of shmem_free: the memory is
 * neither written nor reused until every PE has made the call.
 * shmem_realloc of a live object adds a barrier on entry, since moving it
 * copies it (pinheap_sym_realloc). A failure on any PE is NULL on every PE,
 * and each PE says why on stderr. Different arguments on different PEs, or
 * a pointer that is not a live object, abort with the symmetric heap's
 * message.
 *
 * Thread safety: as OpenSHMEM's: the allocation routines are called by one
 * thread of a PE at a time, in the same order on every PE.
 */
#include <errno.h>
#include <pshmem.h>
#include <pthread.h>
#include <shmem.h>
#include <shmemx.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "pinheap.h"
#include "pinheap_sym.h"
#include "shblock.h"
#include "shconfig.h"
#include "shgather.h"

#define SHSERVE_API __attribute__((visibility("default")))

/*
 * The library's state, set up once. Invariants: sym is NULL until setup
 * succeeded, and again after a debug finalize destroyed it; while it is
 * set, heap is the FIXED heap over block and sym's allgather is gather's;
 * reported is set once the stats were printed.
 */
static struct {
  shconfig cfg;
  shgather gather;
  shblock block;
  pinheap *heap;
  pinheap_sym *sym;
  bool reported;
} shserve;
static pthread_once_t shserve_once = PTHREAD_ONCE_INIT;

static _Noreturn void shserve_fatal(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "libpinheap-shmem: PE %d: ", pshmem_my_pe());
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  pshmem_global_exit(1);
  abort();
}

/* PINHEAP_STATS=1: the symmetric heap's stats, once, from PE 0 (every
 * PE's are the same: every call checked that they placed the same). */
static void shserve_report(void) {
  pinheap_stats s;
  if (shserve.reported || !shserve.sym || pinheap_sym_get_stats(shserve.sym, &s) != 0) return;
  shserve.reported = true;
  if (shserve.gather.me != 0) return;
  fprintf(stderr,
          "libpinheap-shmem: symmetric heap of %d PEs: capacity %zu, in use %zu, free %zu, largest free %zu, free "
          "extents %zu, allocated %zu, peak in use %zu, large objects %zu (%zu bytes); block of %zu bytes of the "
          "implementation's heap\n",
          shserve.gather.npes, s.capacity, s.in_use, s.free_bytes, s.largest_free, s.free_extents, s.allocated,
          s.peak_in_use, s.large_blocks, s.large_allocated, shserve.block.size);
}

/* Collective. A setup that fails on one PE fails on all: the symmetric
 * heap's create gathers every PE's outcome, and then every PE stops. */
static void shserve_setup(void) {
  if (shconfig_from_env(&shserve.cfg) != 0) shserve_fatal("%s", pinheap_last_error());
  if (shgather_init(&shserve.gather) != 0) shserve_fatal("cannot set up: %s", pinheap_last_error());
  shblock_init(&shserve.block);
  pinheap_options o;
  pinheap_options_init(&o);
  o.mode = PINHEAP_FIXED;
  o.size = shserve.cfg.block;
  o.min_size = shserve.cfg.min_block < shserve.cfg.block ? shserve.cfg.min_block : 0;
  o.arenas = 1;
  /* No debugging aids of the heap: it holds one block, the symmetric
   * heap's, whose objects PINHEAP_DEBUG checks here instead. */
  o.provider = &shserve.block.provider;
  shserve.heap = pinheap_create(&o);
  char why[512] = "";
  pinheap_stats st;
  size_t size = 0;
  if (!shserve.heap)
    snprintf(why, sizeof why, "%s", pinheap_last_error());
  else if (pinheap_get_stats(shserve.heap, &st) == 0)
    size = shconfig_sym_size(st.capacity);
  pinheap_collective coll = {.ctx = &shserve.gather,
                             .rank = shserve.gather.me,
                             .nranks = shserve.gather.npes,
                             .allgather = shgather_allgather};
  shserve.sym = pinheap_sym_create(shserve.heap, size, &coll, 0);
  if (!shserve.sym)
    shserve_fatal("cannot set up a symmetric heap in a block of the implementation's (%zu bytes asked%s): %s",
                  shserve.cfg.block, shserve.cfg.explicit_size ? ", PINHEAP_SHMEM_SIZE" : "",
                  *why ? why : pinheap_last_error());
  if (shserve.cfg.stats) atexit(shserve_report);
}

static pinheap_sym *shserve_sym(void) {
  pthread_once(&shserve_once, shserve_setup);
  return shserve.sym;
}

/* Number of broken invariants of the library's state (set up), each
 * described on stderr. */
static int shserve_broken(void) {
  int broken = pinheap_sym_check(shserve.sym) + shgather_check(&shserve.gather) + shblock_check(&shserve.block) +
               shconfig_check(&shserve.cfg);
  pinheap_region r;
  if (!shserve.heap || !shserve.block.held ||
      pinheap_region_of(shserve.heap, shserve.block.base, &r) != 0 || r.base != shserve.block.base ||
      r.size != shserve.block.size) {
    fprintf(stderr, "shserve: the heap %p should hold the block %p of %zu bytes as its region\n",
            (void *)shserve.heap, shserve.block.base, shserve.block.size);
    broken++;
  }
  return broken;
}

/* PINHEAP_DEBUG: every invariant after every call. */
static void shserve_check(const char *what) {
  if (!shserve.cfg.debug) return;
  int broken = shserve_broken();
  if (broken) shserve_fatal("%s: %d broken invariant(s), described above", what, broken);
}

/* The end of an allocating call: why it returned NULL, the debug check. */
static void *shserve_done(void *p, const char *what) {
  if (!p)
    fprintf(stderr, "libpinheap-shmem: PE %d: %s returns NULL: %s\n", shserve.gather.me, what, pinheap_last_error());
  shserve_check(what);
  return p;
}

static void *shserve_malloc(size_t size, const char *what) {
  if (!size) return NULL;
  return shserve_done(pinheap_sym_malloc(shserve_sym(), size), what);
}

static void *shserve_align(size_t alignment, size_t size, const char *what) {
  if (!size) return NULL;
  return shserve_done(pinheap_sym_aligned_alloc(shserve_sym(), alignment, size), what);
}

static void *shserve_realloc(void *ptr, size_t size, const char *what) {
  if (!ptr && !size) return NULL;
  pinheap_sym *sym = shserve_sym();
  /* A move copies ptr: every PE's writes into it must be complete. */
  if (ptr && size) pshmem_barrier_all();
  void *p = pinheap_sym_realloc(sym, ptr, size);
  if (!size) {
    shserve_check(what);
    return NULL;
  }
  return shserve_done(p, what);
}

static void shserve_free(void *ptr, const char *what) {
  if (!ptr) return;
  pinheap_sym_free(shserve_sym(), ptr);
  shserve_check(what);
}

SHSERVE_API void *shmem_malloc(size_t size) { return shserve_malloc(size, "shmem_malloc"); }

SHSERVE_API void *shmem_calloc(size_t count, size_t size) {
  if (!count || !size) return NULL;
  return shserve_done(pinheap_sym_calloc(shserve_sym(), count, size), "shmem_calloc");
}

SHSERVE_API void *shmem_align(size_t alignment, size_t size) { return shserve_align(alignment, size, "shmem_align"); }

SHSERVE_API void *shmem_realloc(void *ptr, size_t size) { return shserve_realloc(ptr, size, "shmem_realloc"); }

SHSERVE_API void shmem_free(void *ptr) { shserve_free(ptr, "shmem_free"); }

/* The hint is advice (the block of the implementation's heap has whatever
 * memory that heap has). */
SHSERVE_API void *shmemx_malloc_with_hint(size_t size, long hint) {
  (void)hint;
  return shserve_malloc(size, "shmemx_malloc_with_hint");
}

/* The deprecated names, as the implementation has them. */
SHSERVE_API void *shmalloc(size_t size) { return shserve_malloc(size, "shmalloc"); }
SHSERVE_API void *shmemalign(size_t alignment, size_t size) { return shserve_align(alignment, size, "shmemalign"); }
SHSERVE_API void *shrealloc(void *ptr, size_t size) { return shserve_realloc(ptr, size, "shrealloc"); }
SHSERVE_API void shfree(void *ptr) { shserve_free(ptr, "shfree"); }

/* The stats before the implementation's heap goes; with PINHEAP_DEBUG the
 * symmetric heap is destroyed, which reports the objects still live (a
 * program may leave them to shmem_finalize: without it, nothing is spent
 * on them). */
SHSERVE_API void shmem_finalize(void) {
  if (shserve.sym) {
    if (shserve.cfg.stats) shserve_report();
    if (shserve.cfg.debug) {
      shserve_check("shmem_finalize");
      pinheap_sym_destroy(shserve.sym);
      shserve.sym = NULL;
      pinheap_destroy(shserve.heap);
      shserve.heap = NULL;
      shblock_free(&shserve.block);
      shgather_fini(&shserve.gather);
    }
  }
  pshmem_finalize();
}
