/*
 * inbound: freed objects on their way back to the arena that owns them.
 *
 * A thread that frees an object of another thread's arena must not hand it
 * out again itself (its next object would share a cache line with the
 * owner's: passive false sharing), and should not pay a call into jemalloc
 * and a lock per free either. It adds the object to a chain of its own,
 * one per bin, of one owner (inbound_add), linked through the objects; a
 * full chain, or one whose owner the next object does not share, goes
 * whole onto the owner's list of that bin with one compare-and-swap
 * (inbound_push); a thread of the owner's arena whose stack of the bin runs
 * empty takes the whole list with one exchange (inbound_take) and hands
 * its objects out from the front, reading each link as it hands the
 * object out. A link lies in a freed object, which a faulty program may
 * write (a write after free, or a second free by another thread than the
 * first, which key.h cannot always catch): whoever follows one checks it
 * first against what the heap knows of the object (thread.h,
 * thread_link_next), so that no malloc returns what the link became.
 * Pushes never read behind the head they replace and lists are only
 * emptied whole, so no reader follows a link that changes under it:
 * no ABA, no lock.
 *
 * An object on a chain or list holds a mark in its first 8 bytes (the
 * caller's: the heap's key of freed objects, so that a second free of it
 * is caught; mixed with the object's address, util_mark) and the next
 * object in its second 8 (NULL after the last):
 * objects of INBOUND_MIN_BYTES or more only.
 *
 * Thread-safe as described: a chain is its thread's; the lists are shared.
 */
#ifndef PINHEAP_INBOUND_H
#define PINHEAP_INBOUND_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "util.h"

/* Owners (arena slots) and bins the lists cover. */
#define INBOUND_OWNERS 64u
#define INBOUND_BINS 64u
/* A chain goes to its owner at this many objects: one compare-and-swap per
 * 32 frees keeps the owner's list line quiet, and a thread holds at most
 * 31 freed objects per bin of other arenas' meanwhile. */
#define INBOUND_CHAIN_MAX 32u
/* The fewest bytes of an object that may go on a chain: the mark and the link. */
#define INBOUND_MIN_BYTES (2 * sizeof(void *))
/* A list holds at most about this many bytes of objects between two takes
 * of it, or 4 full chains where that is more: past it, the thread that
 * pushes hands the whole list to jemalloc (thread.c), so that a list its
 * owner takes none of (no thread of it allocates that bin any more, or
 * none is left) stays small. */
#define INBOUND_LIST_BYTES ((size_t)1 << 20)

/* Objects of one bin and one owner freed by one thread. Invariant: count
 * <= INBOUND_CHAIN_MAX; count is 0 exactly when head is NULL, and then tail
 * is NULL too; else the links from head reach tail in count objects, and
 * tail's link is NULL; owner < INBOUND_OWNERS. */
typedef struct inbound_chain {
  void *head; /* the newest */
  void *tail; /* the oldest: linked to the list's head as the chain goes on it */
  uint32_t count;
  uint32_t owner;
} inbound_chain;

/* Per owner and bin, the objects given back to that owner, linked as a
 * chain. One row of bins per owner, so that two owners' lists share no
 * cache line. Invariant: every object on list[o][b] is of bin b and owner
 * o, holds the mark, and is on no other list or chain. objects[o][b]
 * counts the objects on list[o][b], as a hint: a push that meets a take
 * may be counted on the wrong side of it. */
typedef struct inbound {
  _Alignas(64) _Atomic(void *) list[INBOUND_OWNERS][INBOUND_BINS];
  _Alignas(64) _Atomic uint32_t objects[INBOUND_OWNERS][INBOUND_BINS];
} inbound;

void inbound_init(inbound *in);

/* The object after p on a chain or list (NULL after the last). */
static inline void *inbound_next(const void *p) {
  void *next;
  memcpy(&next, (const char *)p + sizeof(void *), sizeof next);
  return next;
}

static inline void inbound_link(void *p, void *next) { memcpy((char *)p + sizeof(void *), &next, sizeof next); }

/* Adds p (INBOUND_MIN_BYTES or more), marked with mark, to the chain c,
 * empty or of p's owner, with fewer than INBOUND_CHAIN_MAX objects; true
 * when c is full now (the caller pushes it). */
static inline bool inbound_add(inbound_chain *c, void *p, unsigned owner, uint64_t mark) {
  util_mark(p, mark);
  inbound_link(p, c->head);
  if (!c->count) {
    c->tail = p;
    c->owner = owner;
  }
  c->head = p;
  return ++c->count == INBOUND_CHAIN_MAX;
}

/* The chain c of bin b, not empty, onto its owner's list; c empty after.
 * Returns the objects on that list now (the hint objects[o][b]). */
uint32_t inbound_push(inbound *in, inbound_chain *c, unsigned b);

/* The objects on the list of owner and bin b (the hint). */
static inline uint32_t inbound_count(const inbound *in, unsigned owner, unsigned b) {
  return atomic_load_explicit(&in->objects[owner][b], memory_order_relaxed);
}

/* The list head .. tail of n objects of owner and bin b onto that list
 * whole, counted (the checker's walk puts back what inbound_take took
 * off, with the count it had); returns the objects on it now (the hint). */
uint32_t inbound_put_back(inbound *in, unsigned owner, unsigned b, void *head, void *tail, uint32_t n);

/* The whole list of owner and bin b, taken off it: its first object, NULL
 * when it is empty. */
static inline void *inbound_take(inbound *in, unsigned owner, unsigned b) {
  _Atomic(void *) *l = &in->list[owner][b];
  /* A plain look first: an empty list costs no write to its line. */
  if (!atomic_load_explicit(l, memory_order_relaxed)) return NULL;
  void *p = atomic_exchange_explicit(l, NULL, memory_order_acquire);
  atomic_store_explicit(&in->objects[owner][b], 0, memory_order_relaxed);
  return p;
}

/* Number of broken invariants of the chain c's fields. Its links are not
 * followed: they lie in freed objects, which a faulty program may have
 * written (the caller checks each link against what it knows of the
 * objects before it follows it). */
int inbound_chain_check(const inbound_chain *c);

#endif
