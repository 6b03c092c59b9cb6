/*
 * key: double frees of small objects caught without the debugging aids.
 * A freed small object holds one of two random keys of its heap's in its
 * first 8 bytes (every small size has them): freed while jemalloc holds it
 * (from its free, or a thread cache's drain, until jemalloc hands it out
 * again, when the key is wiped), cached while a thread's cache holds it,
 * and after the cache hands it out again until the caller writes there
 * (wiping it there costs more than the rare search below). A free that
 * finds freed is a second free; one that finds cached is when the object is
 * in the thread's own cache (a search of that one stack, of at most
 * THREAD_BIN_MAX, as glibc's tcache does; an object in another thread's
 * cache is missed, as there).
 *
 * Costs a load, two comparisons and a store at free, to bytes the caller
 * touches anyway; a store when jemalloc hands an object out. The keys are
 * independent: writing some bytes of an object that holds cached never
 * makes freed of it, and a live object holding a key by chance, one in
 * 2^64, is not a concern.
 *
 * No block is handed out holding freed in its first 8 bytes, not only no
 * small object: a large or direct block over memory used before has its
 * first word wiped too (heap.c). Its memory may have held freed small
 * objects, and what a program copies from its unwritten bytes into a small
 * object, itself or by realloc, would otherwise read as freed there when
 * the program wrote only part of the word, with the key's own bytes.
 *
 * Invariants: cached != freed, both odd (never 0, which fresh memory
 * holds).
 *
 * Thread-safe: read-only once made.
 */
#ifndef PINHEAP_KEY_H
#define PINHEAP_KEY_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "thread.h"

typedef struct key {
  uint64_t cached;
  uint64_t freed;
} key;

/* Keys from the kernel's random bytes for the process (no syscall), mixed
 * with seed (the heap's address). */
void key_init(key *k, uintptr_t seed);

/* The first 8 bytes of the object p, and writing them. */
static inline uint64_t key_word(const void *p) {
  uint64_t w;
  memcpy(&w, p, sizeof w);
  return w;
}

static inline void key_set(void *p, uint64_t w) { memcpy(p, &w, sizeof w); }

/* Whether the object p, whose first word is w, is freed already: w is
 * freed, or w is cached and p is on bin (the thread's stack of p's bin;
 * NULL when it has none). The first test alone is the fast path's: it
 * decides unless w holds a key. */
static inline bool key_maybe_freed(const key *k, uint64_t w) { return w == k->freed || w == k->cached; }
static inline bool key_freed(const key *k, const thread_bin *bin, const void *p, uint64_t w) {
  return w == k->freed || (w == k->cached && bin && thread_bin_holds(bin, p));
}

/* Number of broken invariants. */
int key_check(const key *k);

#endif
