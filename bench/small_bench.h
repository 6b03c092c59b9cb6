/*
 * Small-object throughput benchmark: the workload and the harness shared by
 * every runner (bench_small_pinheap, bench_small_jemalloc, bench_small_mimalloc).
 *
 * A runner defines, before including this header:
 *
 *   #define BK_NAME "allocator"
 *   struct bk_thread { ... };   per-thread state of the allocator
 *
 * and after it the static functions declared below under "backend". The
 * workload loop calls them directly, so the compiler can inline them in every
 * runner alike; no runner pays for an indirect call the others do not.
 *
 * Workload, per thread: an array of N slots (default 1000), each holding one
 * live block, filled before timing starts. Then R rounds (default 5,000,000),
 * each: draw a 64-bit xorshift number; pick a slot with its high half and a
 * size in [MIN, MAX] bytes with its low half (-a/-b, default [16, 1024]);
 * check the tag bytes of the block in the slot and free it; allocate a block
 * of the new size, check it is not NULL, write a tag byte into its first and
 * its last byte. Only those 2 bytes are touched, so with large blocks the
 * memory really written stays small (about 2 pages per live block), but the
 * address space reserved is up to slots x threads x MAX: keep it well under
 * the region (-m) for pinheap and mimalloc. Every
 * thread's generator is seeded from the run's seed and the thread's index
 * (splitmix64), so every runner does the same sequence of requests.
 *
 * One op is one malloc or one free: a round is 2 ops. ops/s is the total
 * over all threads, divided by the wall time from the moment every thread is
 * released (a barrier) until the last one finishes its rounds.
 *
 * After the timed rounds every live block is checked to lie in the memory
 * of the allocator (where the runner can tell), then freed. Any failed
 * check makes the runner print the reason and exit with status 1.
 */
#ifndef PINHEAP_SMALL_BENCH_H
#define PINHEAP_SMALL_BENCH_H

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "bench_backend.h"

/* Default size range; -a and -b change it, within [1, SB_SIZE_LIMIT]. */
#define SB_MIN_SIZE 16u
#define SB_MAX_SIZE 1024u
#define SB_SIZE_LIMIT (64u << 20)
#define SB_MAX_THREADS 256u

typedef struct sb_config {
  unsigned threads;
  unsigned slots;
  uint64_t rounds; /* per thread */
  uint64_t seed;
  size_t region_mib; /* region for pinheap FIXED and the mimalloc arena */
  uint32_t min_size, max_size; /* block sizes are drawn from [min_size, max_size] */
  bool quiet;
} sb_config;

/* ---- harness ------------------------------------------------------------ */

typedef struct sb_worker {
  alignas(64) bk_thread bk;
  pthread_t tid;
  unsigned index;
  const sb_config *cfg;
  pthread_barrier_t *start;
  uint64_t rng;
  void **slot;
  uint32_t *size;
  unsigned char *tag;
  size_t arrays_bytes;
  uint64_t t_start, t_end; /* ns, CLOCK_MONOTONIC */
  int failed;
  char msg[256];
} sb_worker;

static void sb_fail(sb_worker *w, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(w->msg, sizeof w->msg, fmt, ap);
  va_end(ap);
  w->failed = 1;
}

static inline bool sb_alloc_slot(sb_worker *w, uint32_t idx, uint32_t sz, unsigned char tg) {
  unsigned char *p = bk_alloc(&w->bk, sz);
  if (p == NULL) {
    sb_fail(w, "thread %u: allocation of %" PRIu32 " bytes returned NULL (errno %d)", w->index, sz,
            errno);
    return false;
  }
  p[0] = tg;
  p[sz - 1] = tg;
  w->slot[idx] = p;
  w->size[idx] = sz;
  w->tag[idx] = tg;
  return true;
}

static inline bool sb_check_slot(sb_worker *w, uint32_t idx) {
  const unsigned char *p = w->slot[idx];
  uint32_t sz = w->size[idx];
  unsigned char tg = w->tag[idx];
  if (p[0] != tg || p[sz - 1] != tg) {
    sb_fail(w, "thread %u: slot %" PRIu32 " (%p, %" PRIu32 " bytes): tag bytes %#x/%#x, expected %#x",
            w->index, idx, (const void *)p, sz, p[0], p[sz - 1], tg);
    return false;
  }
  return true;
}

static void *sb_worker_main(void *arg) {
  sb_worker *w = arg;
  const sb_config *cfg = w->cfg;
  const uint32_t n = cfg->slots;
  const uint32_t lo = cfg->min_size;
  const uint32_t span = cfg->max_size - cfg->min_size + 1;
  bool thread_ready = false;
  uint32_t filled = 0;

  if (bk_thread_init(&w->bk, w->index, w->msg, sizeof w->msg) != 0) {
    w->failed = 1;
  } else {
    thread_ready = true;
    /* Untimed: fill every slot. */
    for (; filled < n; filled++) {
      uint64_t x = sb_next(&w->rng);
      if (!sb_alloc_slot(w, filled, lo + sb_range((uint32_t)x, span),
                         (unsigned char)(x >> 56)))
        break;
    }
  }

  /* Every thread waits here, failed or not, so that none is left behind. */
  pthread_barrier_wait(w->start);
  w->t_start = sb_clock_ns(CLOCK_MONOTONIC);
  if (!w->failed) {
    uint64_t s = w->rng;
    for (uint64_t r = 0; r < cfg->rounds; r++) {
      uint64_t x = sb_next(&s);
      uint32_t idx = sb_range((uint32_t)(x >> 32), n);
      if (!sb_check_slot(w, idx))
        break;
      bk_free(&w->bk, w->slot[idx]);
      if (!sb_alloc_slot(w, idx, lo + sb_range((uint32_t)x, span),
                         (unsigned char)(x >> 24))) {
        w->slot[idx] = NULL;
        break;
      }
    }
    w->rng = s;
  }
  w->t_end = sb_clock_ns(CLOCK_MONOTONIC);

  /* Untimed: check and free what is left. */
  for (uint32_t i = 0; i < filled; i++) {
    if (w->slot[i] == NULL)
      continue;
    if (!w->failed && !bk_owns(&w->bk, w->slot[i]))
      sb_fail(w, "thread %u: slot %" PRIu32 " holds %p, outside the allocator's memory", w->index,
              i, w->slot[i]);
    if (!w->failed)
      sb_check_slot(w, i);
    bk_free(&w->bk, w->slot[i]);
    w->slot[i] = NULL;
  }
  if (thread_ready)
    bk_thread_fini(&w->bk);
  return NULL;
}

static void sb_usage(const char *prog) {
  fprintf(stderr,
          "usage: %s [-t threads] [-r rounds] [-n slots] [-s seed] [-m region_mib]\n"
          "       [-a min_bytes] [-b max_bytes] [-q]\n"
          "  -t  worker threads (default 1, at most %u)\n"
          "  -r  rounds per thread, each one free and one malloc (default 5000000)\n"
          "  -n  live slots per thread (default 1000)\n"
          "  -s  seed, decimal or 0x hex (default 12345)\n"
          "  -m  MiB of the pinheap FIXED region / mimalloc arena (default 1024)\n"
          "  -a  smallest block size in bytes, decimal (default %u)\n"
          "  -b  largest block size in bytes, decimal (default %u); 1 <= min <= max <= %u\n"
          "      (64 MiB). Keep slots x threads x max well under the region.\n"
          "  -q  print only the RESULT line\n",
          prog, SB_MAX_THREADS, SB_MIN_SIZE, SB_MAX_SIZE, SB_SIZE_LIMIT);
}

static int sb_parse_u64(const char *s, uint64_t *out) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 0);
  if (errno != 0 || end == s || *end != '\0' || s[0] == '-')
    return -1;
  *out = v;
  return 0;
}

/* A block size: decimal digits only, in [1, SB_SIZE_LIMIT]. */
static int sb_parse_size(const char *s, uint32_t *out) {
  char *end;
  if (s[0] < '0' || s[0] > '9')
    return -1;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno != 0 || *end != '\0' || v < 1 || v > SB_SIZE_LIMIT)
    return -1;
  *out = (uint32_t)v;
  return 0;
}

static int sb_parse_args(int argc, char **argv, sb_config *cfg) {
  cfg->threads = 1;
  cfg->slots = 1000;
  cfg->rounds = 5000000;
  cfg->seed = 12345;
  cfg->region_mib = 1024;
  cfg->min_size = SB_MIN_SIZE;
  cfg->max_size = SB_MAX_SIZE;
  cfg->quiet = false;
  int c;
  uint64_t v;
  while ((c = getopt(argc, argv, "t:r:n:s:m:a:b:qh")) != -1) {
    switch (c) {
    case 't':
      if (sb_parse_u64(optarg, &v) != 0 || v == 0 || v > SB_MAX_THREADS)
        goto bad;
      cfg->threads = (unsigned)v;
      break;
    case 'r':
      if (sb_parse_u64(optarg, &v) != 0)
        goto bad;
      cfg->rounds = v;
      break;
    case 'n':
      if (sb_parse_u64(optarg, &v) != 0 || v == 0 || v > (1u << 24))
        goto bad;
      cfg->slots = (unsigned)v;
      break;
    case 's':
      if (sb_parse_u64(optarg, &v) != 0)
        goto bad;
      cfg->seed = v;
      break;
    case 'm':
      if (sb_parse_u64(optarg, &v) != 0 || v < 64 || v > (1u << 20))
        goto bad;
      cfg->region_mib = (size_t)v;
      break;
    case 'a':
      if (sb_parse_size(optarg, &cfg->min_size) != 0) {
        fprintf(stderr, "%s: bad -a %s: a decimal byte count in [1, %u]\n", argv[0], optarg,
                SB_SIZE_LIMIT);
        goto bad;
      }
      break;
    case 'b':
      if (sb_parse_size(optarg, &cfg->max_size) != 0) {
        fprintf(stderr, "%s: bad -b %s: a decimal byte count in [1, %u]\n", argv[0], optarg,
                SB_SIZE_LIMIT);
        goto bad;
      }
      break;
    case 'q':
      cfg->quiet = true;
      break;
    case 'h':
      sb_usage(argv[0]);
      exit(0);
    default:
      goto bad;
    }
  }
  if (optind != argc)
    goto bad;
  if (cfg->min_size > cfg->max_size) {
    fprintf(stderr, "%s: -a %" PRIu32 " is above -b %" PRIu32 "\n", argv[0], cfg->min_size,
            cfg->max_size);
    goto bad;
  }
  return 0;
bad:
  sb_usage(argv[0]);
  return -1;
}

int main(int argc, char **argv) {
  sb_config cfg;
  if (sb_parse_args(argc, argv, &cfg) != 0)
    return 2;
  if (!cfg.quiet)
    printf("small-object bench: allocator=%s threads=%u slots=%u rounds/thread=%" PRIu64
           " sizes=%" PRIu32 "..%" PRIu32 " seed=%" PRIu64 "\n",
           BK_NAME, cfg.threads, cfg.slots, cfg.rounds, cfg.min_size, cfg.max_size, cfg.seed);
  if (bk_global_init(&cfg) != 0)
    return 1;

  /* Workers and their slot arrays come from mmap, outside every allocator
   * under test, each worker on its own cache lines. */
  size_t wbytes = sizeof(sb_worker) * cfg.threads;
  sb_worker *ws = mmap(NULL, wbytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (ws == MAP_FAILED) {
    perror("mmap workers");
    return 1;
  }
  pthread_barrier_t start;
  pthread_barrier_init(&start, NULL, cfg.threads);
  uint64_t seeder = cfg.seed;
  for (unsigned i = 0; i < cfg.threads; i++) {
    sb_worker *w = &ws[i];
    w->index = i;
    w->cfg = &cfg;
    w->start = &start;
    w->rng = sb_splitmix64(&seeder);
    if (w->rng == 0)
      w->rng = 1; /* xorshift must not start at 0 */
    w->arrays_bytes = (size_t)cfg.slots * (sizeof(void *) + sizeof(uint32_t) + 1);
    char *a = mmap(NULL, w->arrays_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
    if (a == MAP_FAILED) {
      perror("mmap slots");
      return 1;
    }
    w->slot = (void **)a;
    w->size = (uint32_t *)(a + (size_t)cfg.slots * sizeof(void *));
    w->tag = (unsigned char *)(a + (size_t)cfg.slots * (sizeof(void *) + sizeof(uint32_t)));
  }
  for (unsigned i = 0; i < cfg.threads; i++) {
    int rc = pthread_create(&ws[i].tid, NULL, sb_worker_main, &ws[i]);
    if (rc != 0) {
      fprintf(stderr, "pthread_create: %s\n", strerror(rc));
      return 1;
    }
  }
  for (unsigned i = 0; i < cfg.threads; i++)
    pthread_join(ws[i].tid, NULL);
  pthread_barrier_destroy(&start);

  int status = 0;
  uint64_t t0 = UINT64_MAX, t1 = 0;
  for (unsigned i = 0; i < cfg.threads; i++) {
    if (ws[i].failed) {
      fprintf(stderr, "%s: FAILED: %s\n", BK_NAME, ws[i].msg);
      status = 1;
    }
    if (ws[i].t_start < t0)
      t0 = ws[i].t_start;
    if (ws[i].t_end > t1)
      t1 = ws[i].t_end;
  }
  if (bk_global_fini(&cfg) != 0)
    status = 1;
  if (status != 0)
    return status;

  double secs = (double)(t1 - t0) / 1e9;
  if (secs <= 0)
    secs = 1e-9;
  double pairs = (double)cfg.rounds * cfg.threads;
  /* The range goes at the end of the line, and only when -a/-b moved it off
   * the default, so that the default line stays as it was. */
  char range[48] = "";
  if (cfg.min_size != SB_MIN_SIZE || cfg.max_size != SB_MAX_SIZE)
    snprintf(range, sizeof range, " sizes=%" PRIu32 "..%" PRIu32, cfg.min_size, cfg.max_size);
  printf("RESULT allocator=%s threads=%u seed=%" PRIu64 " slots=%u rounds=%" PRIu64
         " seconds=%.6f ops_per_s=%.0f pairs_per_s=%.0f%s\n",
         BK_NAME, cfg.threads, cfg.seed, cfg.slots, cfg.rounds, secs, 2.0 * pairs / secs,
         pairs / secs, range);
  for (unsigned i = 0; i < cfg.threads; i++)
    munmap(ws[i].slot, ws[i].arrays_bytes);
  munmap(ws, wbytes);
  return 0;
}

#endif /* PINHEAP_SMALL_BENCH_H */
