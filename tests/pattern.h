/*
 * pattern: the bytes the randomized tests write at both ends of a block and
 * check before they reallocate or free it, so that a block another one
 * overlaps, or that the heap moved badly, is found at once.
 *
 * The byte at offset i depends on a key (the block's address, or a tag the
 * test keeps) and on i, so that two blocks, or one block at two places,
 * never hold the same bytes. Only the first and last `ends` bytes are
 * written (all of a block of at most 2 * ends bytes): patterns stay cheap
 * for blocks of megabytes and commit little memory.
 */
#ifndef PINHEAP_TEST_PATTERN_H
#define PINHEAP_TEST_PATTERN_H

#include <stddef.h>
#include <stdint.h>

static inline unsigned char pattern_byte(uint64_t key, size_t i) {
  return (unsigned char)((key >> (i % 7 * 8)) ^ (key >> 4) * 31 ^ i * 7);
}

/* Offset where the tail of the pattern starts in a block of size bytes. */
static inline size_t pattern_tail(size_t size, size_t ends) { return size > 2 * ends ? size - ends : ends < size ? ends : size; }

static inline void pattern_fill(unsigned char *p, size_t size, size_t ends, uint64_t key) {
  size_t head = size < ends ? size : ends;
  for (size_t i = 0; i < head; i++) p[i] = pattern_byte(key, i);
  for (size_t i = pattern_tail(size, ends); i < size; i++) p[i] = pattern_byte(key, i);
}

/* The first offset of the first `ends` bytes and the last `ends` bytes of p
 * that does not hold the pattern of key, or SIZE_MAX when all do. With
 * ends >= size it checks the first size bytes only (what a realloc kept). */
static inline size_t pattern_find(const unsigned char *p, size_t size, size_t ends, uint64_t key) {
  size_t head = size < ends ? size : ends;
  for (size_t i = 0; i < head; i++)
    if (p[i] != pattern_byte(key, i)) return i;
  for (size_t i = pattern_tail(size, ends); i < size; i++)
    if (p[i] != pattern_byte(key, i)) return i;
  return SIZE_MAX;
}

#endif
