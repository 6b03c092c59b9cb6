/*
 * mpitest: what the multi-process tests share. A failed check prints the
 * rank, the place, the condition and pinheap's last error, then aborts the
 * whole job (a rank that merely exited would leave the others waiting).
 * Every rank uses the seed rank 0 picked (tests/seed.h), printed once.
 */
#ifndef PINHEAP_TEST_MPITEST_H
#define PINHEAP_TEST_MPITEST_H

#include <mpi.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "pinheap.h"
#include "pinheap_mpi.h"
#include "seed.h"

#define MiB ((size_t)1 << 20)

static int mt_rank, mt_nranks;

__attribute__((format(printf, 4, 5))) static _Noreturn void mt_fail(const char *file, int line, const char *cond,
                                                                    const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fprintf(stderr, "rank %d: %s:%d: check failed: %s: %s (pinheap_last_error: \"%s\")\n", mt_rank, file, line, cond, msg,
          pinheap_last_error());
  fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, 1);
  abort();
}

#define MT_CHECK(cond, ...)                                       \
  do {                                                            \
    if (!(cond)) mt_fail(__FILE__, __LINE__, #cond, __VA_ARGS__); \
  } while (0)

/* MPI_Init_thread with the level asked; sets mt_rank, mt_nranks; returns the
 * level provided. */
static inline int mt_init(int *argc, char ***argv, int level) {
  int provided = MPI_THREAD_SINGLE;
  MPI_Init_thread(argc, argv, level, &provided);
  MPI_Comm_rank(MPI_COMM_WORLD, &mt_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &mt_nranks);
  return provided;
}

/* Rank 0's seed (argv[1], else the clock) on every rank. */
static inline uint64_t mt_seed(int argc, char **argv, const char *name) {
  uint64_t s = 0;
  if (mt_rank == 0) s = seed_init(argc, argv, name);
  MPI_Bcast(&s, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
  seed_state = s;
  return s;
}

/* Options for a heap of mode: FIXED of size bytes, DYNAMIC with chunks of
 * chunk bytes and direct blocks from direct bytes; one arena. */
static inline pinheap_options mt_options(pinheap_mode mode, size_t size, size_t chunk, size_t direct) {
  pinheap_options o;
  pinheap_options_init(&o);
  o.mode = mode;
  o.size = size;
  o.arenas = 1;
  if (chunk) o.chunk_size = chunk;
  if (direct) o.direct_threshold = direct;
  /* Direct blocks attached when allocated and detached when freed: the
   * tests count them (test_mpi_dynamic turns the cache on where it tests
   * it). */
  o.direct_cache = 0;
  return o;
}

/* Such a heap on the provider, made collectively (pinheap_mpi_heap_create). */
static inline pinheap *mt_heap(pinheap_mpi *pm, pinheap_mode mode, size_t size, size_t chunk, size_t direct) {
  pinheap_options o = mt_options(mode, size, chunk, direct);
  return pinheap_mpi_heap_create(pm, &o);
}

static inline pinheap_mpi_stats mt_stats(pinheap_mpi *pm) {
  pinheap_mpi_stats s;
  MT_CHECK(pinheap_mpi_get_stats(pm, &s) == 0, "stats");
  return s;
}

/* The byte at offset i of block b that rank r wrote in round k. */
static inline unsigned char mt_byte(int r, int k, size_t b, size_t i) {
  uint64_t x = ((uint64_t)(r + 1) << 48) ^ ((uint64_t)k << 40) ^ ((uint64_t)b << 24) ^ i;
  x *= 0x9E3779B97F4A7C15ull;
  return (unsigned char)(x >> 56);
}

static inline void mt_fill(unsigned char *p, size_t len, int r, int k, size_t b) {
  for (size_t i = 0; i < len; i++) p[i] = mt_byte(r, k, b, i);
}

/* The first offset where p differs from the pattern, or len. */
static inline size_t mt_differs(const unsigned char *p, size_t len, int r, int k, size_t b) {
  for (size_t i = 0; i < len; i++)
    if (p[i] != mt_byte(r, k, b, i)) return i;
  return len;
}

/* A block as its owner publishes it: displacement in the window, length. */
typedef struct mt_desc {
  uint64_t disp, len;
} mt_desc;

/* The blocks d[0..count) of rank t carry the patterns rank t wrote in round
 * k as blocks first, first + stride, ...: read with one MPI_Get each and one
 * flush. */
static inline void mt_get_check(MPI_Win win, int t, const mt_desc *d, size_t count, size_t first, size_t stride,
                                int k) {
  size_t total = 1, off = 0;
  for (size_t i = 0; i < count; i++) total += d[i].len;
  unsigned char *buf = malloc(total);
  MT_CHECK(buf, "memory");
  for (size_t i = 0; i < count; off += d[i++].len)
    MPI_Get(buf + off, (int)d[i].len, MPI_BYTE, t, (MPI_Aint)d[i].disp, (int)d[i].len, MPI_BYTE, win);
  MPI_Win_flush(t, win);
  off = 0;
  for (size_t i = 0; i < count; off += d[i++].len) {
    size_t at = mt_differs(buf + off, d[i].len, t, k, first + i * stride);
    MT_CHECK(at == d[i].len, "block %zu of rank %d (%llu bytes) differs at %zu", first + i * stride, t,
             (unsigned long long)d[i].len, at);
  }
  free(buf);
}

/* Writes this rank's round-k patterns into the blocks d[0..count) of rank t
 * (blocks first, first + stride, ...): one MPI_Put each and one flush. */
static inline void mt_put(MPI_Win win, int t, const mt_desc *d, size_t count, size_t first, size_t stride, int k) {
  size_t total = 1, off = 0;
  for (size_t i = 0; i < count; i++) total += d[i].len;
  unsigned char *buf = malloc(total);
  MT_CHECK(buf, "memory");
  for (size_t i = 0; i < count; off += d[i++].len) {
    mt_fill(buf + off, d[i].len, mt_rank, k, first + i * stride);
    MPI_Put(buf + off, (int)d[i].len, MPI_BYTE, t, (MPI_Aint)d[i].disp, (int)d[i].len, MPI_BYTE, win);
  }
  MPI_Win_flush(t, win);
  free(buf);
}

#endif
