/*
 * sym: symmetric heaps (include/pinheap_sym.h). One block of a pinheap heap
 * per process, managed by an extent manager of its own whose "page" is a
 * 64-byte quantum; live objects recorded apart, in an AVL tree keyed by
 * address, since the manager records only free extents and nothing is
 * written into the managed memory.
 *
 * Why the offsets agree: the manager's choices depend only on the sequence
 * of calls and on addresses relative to each other and to alignments up to
 * PINHEAP_SYM_MAX_ALIGN, and every block starts on such a boundary.
 *
 * Every collective call ends in sym_sync: one allgather of a sym_record per
 * process; each process compares them all, so every process takes the same
 * decision (abort on a mismatch, fail everywhere when one failed). All that
 * a call writes into the block (calloc's zeroes, realloc's copy) is written
 * before its allgather, so that no process writes an object after any
 * process has returned it.
 *
 * With PINHEAP_SYM_TIMEOUT, a watchdog (watchdog.h) watches every
 * allgather, create's included, and aborts one that lasts longer.
 *
 * Thread-safe as the public header says: the queries read only what create
 * set; lock guards the objects and counters against stats and check.
 */
#ifndef PINHEAP_SYM_INTERNAL_H
#define PINHEAP_SYM_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "em.h"
#include "meta.h"
#include "pinheap_sym.h"
#include "tree.h"
#include "watchdog.h"

/* The manager's page: objects are this many bytes apart at least, and
 * aligned to it. */
#define SYM_QUANTUM ((size_t)64)

/*
 * A live object. Invariants: addr and bytes are multiples of SYM_QUANTUM,
 * 0 < requested <= bytes, [addr, addr + bytes) lies inside the block and
 * overlaps no other object and no free extent of the manager.
 */
typedef struct sym_object {
  tree_node node; /* key: addr */
  uintptr_t addr;
  size_t bytes;     /* what the manager handed out */
  size_t requested; /* what the caller asked for */
} sym_object;

/* What create learned of one process (one allgather). */
typedef struct sym_peer {
  uint64_t base;       /* its block */
  uint64_t reg_offset; /* base's offset in its registration, or PINHEAP_SYM_NO_REG */
  uint64_t size;       /* the block's size, page-rounded (0 when size was bad) */
  uint32_t flags;
  uint32_t verify; /* it wants every call checked */
  int32_t status;  /* 0, or the errno value of its local failure */
  uint32_t desc_len; /* its layer's descriptor length, 0 without a layer */
} sym_peer;

/* One process's account of one collective call. Plain integers: every
 * process reads every other's. */
typedef struct sym_record {
  uint64_t seq;    /* collective calls made on the heap before this one */
  uint32_t op;     /* sym_op */
  int32_t status;  /* 0, an errno value, or SYM_BAD_POINTER */
  uint64_t size;   /* size asked for (calloc: of one element) */
  uint64_t count;  /* calloc: elements */
  uint64_t align;  /* aligned_alloc: alignment */
  uint64_t arg;    /* realloc, free: offset of ptr, or SYM_NONE, SYM_FOREIGN */
  uint64_t result; /* offset of the object returned or SYM_NONE; destroy: live objects */
} sym_record;

/*
 * A symmetric heap. Invariants: every byte of [base, base + size) is in
 * exactly one free extent of em or one live object; objects.live =
 * live.count; allocated = the sum of requested over objects; large_bytes and
 * large_objects sum and count the objects of more than small_max bytes;
 * peers[rank].base = base; layer_id is NULL exactly when desc_len is 0,
 * and desc_len <= PINHEAP_SYM_DESC_MAX.
 */
struct pinheap_sym {
  pinheap *heap;
  pinheap_collective coll;
  unsigned flags;
  bool verify; /* every call ends in an allgather (some process asked) */
  uintptr_t base;
  size_t size;
  size_t small_max; /* objects up to it pack at the top of the block */
  uint64_t seq;
  pthread_mutex_t lock;
  em em;
  tree live;
  meta_pool objects;
  size_t allocated;
  size_t large_bytes;
  size_t large_objects;
  size_t record_bytes;  /* this mapping: the struct, peers, gathered, descs */
  sym_peer *peers;      /* one per rank */
  sym_record *gathered; /* one per rank, the last call's */
  uint64_t timeout_ns;  /* PINHEAP_SYM_TIMEOUT; 0: no watchdog */
  watchdog watch;       /* running while timeout_ns > 0 */
  const void *layer_id; /* the layer's, or NULL */
  size_t desc_len;      /* the layer's descriptor length, 0 without one */
  unsigned char *descs; /* desc_len bytes per rank, rank i's at i * desc_len */
};

/* Number of broken invariants of s, each described on stderr. */
int sym_check(pinheap_sym *s);

#endif
