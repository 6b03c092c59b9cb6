/*
 * peer: one allocator of the comparison, behind one small interface, so
 * that the replays, the searches and the speed tests call every allocator
 * the same way (one indirect call per operation, which every peer pays
 * alike).
 *
 * A peer makes heaps: over a fixed region of a given size when it takes one
 * (PEER_FIXED: the fragmentation figures are about those), otherwise over
 * whatever memory it gets (the speed references). A heap serves malloc,
 * calloc, realloc, aligned allocation and free, says its free bytes and
 * largest free extent when it can (PEER_SPACE), and is destroyed with every
 * block it still holds.
 *
 * Thread safety: create, destroy and the process-wide set-up are called
 * from one thread, with no other thread in the heap. A peer with
 * PEER_THREADS serves calls from several threads at once (each calls
 * thread_start first and thread_stop last); one without it is called from
 * one thread only. A block may be freed by another thread than the one that
 * allocated it (PEER_THREADS).
 *
 * Each family of peers (pinheap and its policies, the jemalloc emulations,
 * mimalloc, ...) is a file peer_FAMILY.c defining a peer_family; a runner
 * binary (compare_FAMILY.c) hands its families to compare_main.
 */
#ifndef PINHEAP_BENCH_PEER_H
#define PINHEAP_BENCH_PEER_H

#include <stdbool.h>
#include <stddef.h>

#define PEER_FIXED 1u      /* takes a fixed region of the size asked */
#define PEER_THREADS 2u    /* may be called from several threads at once */
#define PEER_SPACE 4u      /* space() says free bytes and the largest free extent */
/* A replay is a process of its own (compare.h): started under the peer's
 * launcher, or directly when it has none (a peer that cannot give back what
 * one heap took, so that many heaps in one process would not be alike). */
#define PEER_EXTERNAL 8u

typedef struct peer_heap peer_heap;

typedef struct peer_space {
  size_t free_bytes;
  size_t largest_free;
} peer_space;

typedef struct peer peer;
struct peer {
  const char *name;  /* "pinheap-two-ended", "jemalloc", ...: what the results call it */
  const char *what;  /* one line: what it is and how it is run */
  unsigned flags;    /* PEER_* */
  int variant;       /* for the family: which of its peers */
  size_t max_heap;   /* the largest region it can be given (0: no limit of its own) */
  /* Once per process, before the first create: 0, or -1 with a message in
   * err. argv0 is the runner (for peers that start it again). May be NULL. */
  int (*setup)(const peer *p, const char *argv0, char *err, size_t errlen);
  /* A heap over a region of size bytes (PEER_FIXED; else size is ignored)
   * for up to threads threads; prefault: every page of the region written
   * before the call returns. NULL with a message in err. */
  peer_heap *(*create)(const peer *p, size_t size, unsigned threads, bool prefault, char *err, size_t errlen);
  void *(*malloc)(peer_heap *h, size_t size);
  void *(*calloc)(peer_heap *h, size_t count, size_t size);
  void *(*realloc)(peer_heap *h, void *ptr, size_t size);
  void *(*aligned)(peer_heap *h, size_t alignment, size_t size);
  void (*free)(peer_heap *h, void *ptr);
  /* PEER_SPACE: 0 with *out filled; else -1. May be NULL. */
  int (*space)(peer_heap *h, peer_space *out);
  /* The lowest address of the region (PEER_FIXED), for pictures; NULL when
   * the peer cannot say. May be NULL. */
  void *(*base)(peer_heap *h);
  /* PEER_FIXED: whether the size bytes at ptr lie in the heap's region, so
   * that a replay does not credit a peer with memory it took from elsewhere.
   * NULL: it cannot say. */
  bool (*owns)(peer_heap *h, const void *ptr, size_t size);
  /* The bytes the heap's memory spans, when they differ from the size
   * create was given (memory the peer took beyond it, or rounding down);
   * NULL: that size. */
  size_t (*extent)(peer_heap *h);
  /* Around a thread's use of the heap (PEER_THREADS); may be NULL. */
  void (*thread_start)(peer_heap *h);
  void (*thread_stop)(peer_heap *h);
  void (*destroy)(peer_heap *h);
  /* PEER_EXTERNAL, or NULL: the launcher's words that run the runner as one job of
   * this peer with a region of heap bytes, into argv[0..max) (their count,
   * or 0 when they do not fit), after setting in this process's
   * environment what the job needs. Called in a child about to exec. */
  size_t (*launch)(const peer *p, size_t heap, const char **argv, size_t max);
};

/* A family: fills out[0..max) with its peers (those this build has) and
 * returns how many it has (which may exceed max). */
typedef size_t (*peer_family)(peer *out, size_t max);

/* The families of this source tree, each in its peer_*.c. */
size_t peer_pinheap(peer *out, size_t max);  /* pinheap FIXED, one per policy; SIMPLE */
size_t peer_jemalloc(peer *out, size_t max); /* jemalloc's default malloc */
size_t peer_jebump(peer *out, size_t max);   /* emulations of bump-pointer hooks under jemalloc */
size_t peer_glibc(peer *out, size_t max);    /* the C library's malloc */
size_t peer_mimalloc(peer *out, size_t max); /* mimalloc's exclusive arena */
size_t peer_dpdk(peer *out, size_t max);     /* DPDK's rte_malloc over an external heap */
size_t peer_oshmem(peer *out, size_t max);   /* OSHMEM's shmem_malloc under oshrun */

/* For peers: formats a message into err (as snprintf) and returns NULL. */
void *peer_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* For peers: size bytes of address space aligned to align (a power of two,
 * at least a page), reserved with MAP_NORESERVE, and written page by page
 * when prefault is set. NULL when it cannot be had. */
void *peer_region_map(size_t size, size_t align, bool prefault);
void peer_region_unmap(void *base, size_t size);

/* For peers' owns: whether [ptr, ptr + size) lies in [base, base + len). */
bool peer_region_holds(const void *base, size_t len, const void *ptr, size_t size);

#endif
