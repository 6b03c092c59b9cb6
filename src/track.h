/*
 * track: what the heap tells valgrind's memcheck about its memory, and
 * nothing else (a leaf: it includes no module of the library).
 *
 * Built with valgrind's headers (PINHEAP_HAVE_VALGRIND) the functions are
 * memcheck's client requests, which cost a few instructions and do nothing
 * unless the program runs under valgrind; without them they are empty. A
 * memory pool (track_pool_*) is the heap's set of live blocks: memcheck
 * reports an access to a byte of the pool's memory that no live block
 * covers.
 *
 * Thread-safe (client requests have no state of ours).
 */
#ifndef PINHEAP_TRACK_H
#define PINHEAP_TRACK_H

#include <stdbool.h>
#include <stddef.h>

#ifdef PINHEAP_HAVE_VALGRIND
#include <valgrind/memcheck.h>
#include <valgrind/valgrind.h>

/* Whether the process runs under valgrind. */
static inline bool track_running(void) { return RUNNING_ON_VALGRIND != 0; }
/* [p, p + n) holds what it holds: readable and defined. */
static inline void track_mem_defined(const void *p, size_t n) { VALGRIND_MAKE_MEM_DEFINED(p, n); }
/* [p, p + n) is accessible, its contents undefined. */
static inline void track_mem_undefined(const void *p, size_t n) { VALGRIND_MAKE_MEM_UNDEFINED(p, n); }
/* [p, p + n) must not be accessed. */
static inline void track_mem_noaccess(const void *p, size_t n) { VALGRIND_MAKE_MEM_NOACCESS(p, n); }
static inline void track_pool_create(const void *pool) { VALGRIND_CREATE_MEMPOOL(pool, 0, 0); }
static inline void track_pool_destroy(const void *pool) { VALGRIND_DESTROY_MEMPOOL(pool); }
/* A block [p, p + n) becomes live in the pool. */
static inline void track_pool_alloc(const void *pool, const void *p, size_t n) { VALGRIND_MEMPOOL_ALLOC(pool, p, n); }
/* The live block at p now covers [p, p + n). */
static inline void track_pool_change(const void *pool, const void *p, size_t n) {
  VALGRIND_MEMPOOL_CHANGE(pool, p, p, n);
}
/* The live block at p is no longer live. */
static inline void track_pool_free(const void *pool, const void *p) { VALGRIND_MEMPOOL_FREE(pool, p); }
#else
static inline bool track_running(void) { return false; }
static inline void track_mem_defined(const void *p, size_t n) { (void)p, (void)n; }
static inline void track_mem_undefined(const void *p, size_t n) { (void)p, (void)n; }
static inline void track_mem_noaccess(const void *p, size_t n) { (void)p, (void)n; }
static inline void track_pool_create(const void *pool) { (void)pool; }
static inline void track_pool_destroy(const void *pool) { (void)pool; }
static inline void track_pool_alloc(const void *pool, const void *p, size_t n) { (void)pool, (void)p, (void)n; }
static inline void track_pool_change(const void *pool, const void *p, size_t n) { (void)pool, (void)p, (void)n; }
static inline void track_pool_free(const void *pool, const void *p) { (void)pool, (void)p; }
#endif

#endif
