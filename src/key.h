/*
 * key: double frees of small objects caught without the debugging aids.
 * A freed small object holds one of two random keys of its heap's in its
 * first 8 bytes (every small size has them), mixed with its address
 * (util_mark): freed while jemalloc holds it
 * (from its free, or a thread cache's drain, until jemalloc hands it out
 * again, when the key is wiped), cached while a thread's cache holds it,
 * and after the cache hands it out again until the caller writes there
 * (wiping it there costs more than the rare search below). A free that
 * finds freed is a second free; one that finds cached is when the object is
 * in the thread's own cache (a search of that one stack, of at most
 * THREAD_BIN_MAX, as glibc's tcache does; an object in another thread's
 * cache is missed, as there).
 *
 * Costs a load, a multiply, a shift, an exclusive or, two comparisons and
 * a store at free, to bytes the caller touches anyway; a store when
 * jemalloc hands an object out. The keys are independent: writing some
 * bytes of an object that holds cached never makes freed of it, and a live
 * object holding a key by chance, one in 2^64, is not a concern.
 *
 * Why the address: memory keeps the words of objects freed there after it
 * becomes something else (a large block, a slab of another size, a
 * symmetric object), and a program may copy bytes it never wrote: a
 * struct's padding, realloc of a block it wrote in part. Mixed with the
 * address's hash, such a word read at any other address holds a key only
 * by chance, whatever bytes of it the program wrote; at its own address,
 * every object handed out has its first word set first (wiped, or
 * cached).
 *
 * Invariants: cached != freed, both odd with the top bit set (so that a
 * key mixed with an address's hash, whose top bit is clear, is never 0,
 * which fresh memory holds, nor a pointer).
 *
 * Thread-safe: read-only once made.
 */
#ifndef PINHEAP_KEY_H
#define PINHEAP_KEY_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "thread.h"
#include "util.h"

typedef struct key {
  uint64_t cached;
  uint64_t freed;
} key;

/* Keys from the kernel's random bytes for the process (no syscall), mixed
 * with seed (the heap's address). */
void key_init(key *k, uintptr_t seed);

/* The first 8 bytes of the object p, and writing them: w as it is
 * (key_set: 0 wipes a key), or the key kw mixed with p's address
 * (key_put). */
static inline uint64_t key_word(const void *p) {
  uint64_t w;
  memcpy(&w, p, sizeof w);
  return w;
}

static inline void key_set(void *p, uint64_t w) { memcpy(p, &w, sizeof w); }
static inline void key_put(void *p, uint64_t kw) { util_mark(p, kw); }

/* Whether the object p, whose first word is w, is freed already: w is
 * freed at p, or cached at p and p is on bin (the thread's stack of p's
 * bin; NULL when it has none). The first test alone is the fast path's: it
 * decides unless w holds a key. */
static inline bool key_maybe_freed(const key *k, const void *p, uint64_t w) {
  uint64_t x = util_mark_at(w, p);
  return x == k->freed || x == k->cached;
}
static inline bool key_freed(const key *k, const thread_bin *bin, const void *p, uint64_t w) {
  uint64_t x = util_mark_at(w, p);
  return x == k->freed || (x == k->cached && bin && thread_bin_holds(bin, p));
}

/* Number of broken invariants. */
int key_check(const key *k);

#endif
