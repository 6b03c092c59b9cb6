/*
 * blockmap: a hash map from a 64-bit key (a block id, an address) to two
 * 64-bit values, for the trace reader, the replay and the recording
 * library. Its memory comes from mmap, never from malloc: the recording
 * library uses it from inside malloc.
 *
 * Open addressing with linear probing and backward-shift deletion; the
 * table doubles when half full.
 * Invariants (blockmap_check): cap is a power of two (or 0 before the first
 * put); count = the slots whose key is not BLOCKMAP_EMPTY <= cap / 2; every
 * slot between a key's home slot and the slot holding it (cyclically) is
 * occupied.
 *
 * Not thread-safe: the caller serializes.
 */
#ifndef PINHEAP_TOOLS_BLOCKMAP_H
#define PINHEAP_TOOLS_BLOCKMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The one key that cannot be stored: it marks empty slots. */
#define BLOCKMAP_EMPTY UINT64_MAX

typedef struct blockmap_slot {
  uint64_t key, a, b;
} blockmap_slot;

typedef struct blockmap {
  blockmap_slot *slots;
  size_t cap;
  size_t count;
} blockmap;

/* An empty map; takes no memory until the first put. */
void blockmap_init(blockmap *m);
/* Gives the map's memory back; the map is then empty. */
void blockmap_fini(blockmap *m);

/* Sets key's values (key != BLOCKMAP_EMPTY), adding it if absent. 0, or -1
 * when the table cannot grow (no memory); the map is then unchanged. */
int blockmap_put(blockmap *m, uint64_t key, uint64_t a, uint64_t b);
/* Whether key is there; its values into *a and *b when they are not NULL. */
bool blockmap_get(const blockmap *m, uint64_t key, uint64_t *a, uint64_t *b);
/* As get, and removes it. */
bool blockmap_take(blockmap *m, uint64_t key, uint64_t *a, uint64_t *b);

/* Calls visit on every entry, in no particular order, until it returns
 * non-zero (returned). visit must not change the map. */
int blockmap_walk(const blockmap *m, int (*visit)(uint64_t key, uint64_t a, uint64_t b, void *arg), void *arg);

/* Number of broken invariants, each described on stderr. */
int blockmap_check(const blockmap *m);

#endif
