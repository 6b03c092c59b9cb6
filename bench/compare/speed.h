/*
 * speed: throughput tests over a peer's heap, each for a fixed time at a
 * given number of threads, so that a slow peer costs no more time than a
 * fast one:
 *   small1k     blocks of 16 B - 1 KiB, 1000 live per thread: free one at
 *               random, allocate one of a random size in its place
 *   small32k    the same, 16 B - 32 KiB
 *   medium      the same, 14 KiB - 1 MiB (sizes log-uniform), 1000 live per thread
 *   large       the same, 1 - 32 MiB (log-uniform), 40 live per thread
 *   xthread     producer/consumer in a ring (larson-style): each thread
 *               allocates blocks of 16 B - 1 KiB and hands them to the next
 *               thread, which frees them (at 1 thread, to itself)
 *   falseshare  objects of different threads on one cache line: a thread
 *               allocates an 8-byte object per thread and hands them out;
 *               each thread frees its own and then allocates 8-byte
 *               objects, writing each 64 times before freeing it, so that an
 *               allocator that packs the threads' objects together makes
 *               them share cache lines
 * Every block is written at its first and last byte, and checked before
 * it is freed. One operation is one allocation or one free.
 */
#ifndef PINHEAP_BENCH_SPEED_H
#define PINHEAP_BENCH_SPEED_H

#include <stdbool.h>
#include <stdint.h>

#include "peer.h"

typedef struct speed_test {
  const char *name;
  const char *what;
  size_t region; /* the heap of a PEER_FIXED peer, for 2 threads (more: scaled) */
} speed_test;

extern const speed_test speed_tests[];
extern const size_t speed_test_count;

/* The test named name, or NULL. */
const speed_test *speed_find(const char *name);

typedef struct speed_result {
  bool ok;
  char error[256];
  double ops_per_s;
  uint64_t ops;
  double seconds;
} speed_result;

/* The region a PEER_FIXED peer gets for t at threads threads: t->region
 * for 2 threads (and 1), in proportion above, times scale, at least
 * 64 MiB. */
size_t speed_region(const speed_test *t, unsigned threads, double scale);

/* Runs t on a new heap of p (when it serves threads threads) for about
 * seconds seconds; scale (at most 1) shrinks the region and the blocks
 * live per thread alike, for smoke runs. Returns 0 with *res filled (res->ok false and
 * res->error when the heap could not be made or an allocation failed or a
 * block was found overwritten), or -1 when the harness could not start. */
int speed_run(const peer *p, const speed_test *t, unsigned threads, double seconds, double scale, uint64_t seed,
              speed_result *res);

#endif
