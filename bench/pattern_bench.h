/*
 * Small-object patterns beyond the steady churn of small_bench.h: the
 * harness shared by the bench_pattern_* runners, which are the
 * bench_small_* runners' sources built with this header in place of
 * small_bench.h (BK_HARNESS, CMakeLists.txt), so that each allocator's
 * backend is written once. The backend interface is small_bench.h's.
 *
 * Patterns (-p), with N = -n and sizes drawn uniformly from [-a, -b]:
 *
 *   burst     one thread (each of -t threads on its own) allocates N blocks
 *             (default 1600, of 16-64 B), then frees all of them in a random
 *             order; -r rounds (default 2000). More blocks of a size class
 *             are live at once than a per-thread cache keeps.
 *   prodcons  a producer thread allocates blocks (default 16 B-1 KiB) and
 *             hands them in batches of N (default 256) to a consumer thread,
 *             which frees them; -r batches (default 20000), at most 8
 *             batches in flight. Every block is freed by a thread other
 *             than the one that allocated it.
 *   spawn     -r short-lived threads (default 2000), one after the other:
 *             each allocates N blocks (default 4, of 16 B-1 KiB), frees the
 *             N blocks the thread before it left, and exits leaving its
 *             own to the next. Every thread sets up and tears down whatever
 *             the allocator keeps per thread.
 *
 * Every block gets a tag in its first and last byte when allocated, checked
 * before it is freed; every 64th block is also checked to lie in the
 * allocator's memory (bk_owns). Any failed check makes the runner print the
 * reason and exit with status 1. Waits are blocking (a mutex and condition
 * variables), so a waiting thread burns no CPU time.
 *
 * One op is one malloc or one free. The RESULT line gives the process's CPU
 * time (user + system, every thread, CLOCK_PROCESS_CPUTIME_ID) per op over
 * the timed part, and the wall time; in spawn the CPU time includes the
 * threads' creation, the same for every allocator.
 */
#ifndef PINHEAP_PATTERN_BENCH_H
#define PINHEAP_PATTERN_BENCH_H

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
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

#define PB_SIZE_LIMIT (1u << 20)
#define PB_MAX_THREADS 64u
#define PB_IN_FLIGHT 8u /* prodcons: batches between the threads at most */

typedef enum pb_pattern { PB_BURST, PB_PRODCONS, PB_SPAWN } pb_pattern;
static const char *const pb_names[] = {"burst", "prodcons", "spawn"};

/* The backend reads region_mib and quiet (small_bench.h's names). */
typedef struct sb_config {
  pb_pattern pattern;
  unsigned threads; /* burst only */
  unsigned n;
  uint64_t rounds;
  uint64_t seed;
  size_t region_mib;
  uint32_t min_size, max_size;
  bool quiet;
} sb_config;

/* ---- harness ------------------------------------------------------------ */

typedef struct pb_block {
  unsigned char *p;
  uint32_t size;
  unsigned char tag;
} pb_block;

/* The first failure of the run, under pb_lock. */
static pthread_mutex_t pb_lock = PTHREAD_MUTEX_INITIALIZER;
static char pb_msg[256];
static _Atomic int pb_failed;

static void pb_fail(const char *fmt, ...) {
  pthread_mutex_lock(&pb_lock);
  if (!pb_failed) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pb_msg, sizeof pb_msg, fmt, ap);
    va_end(ap);
    pb_failed = 1;
  }
  pthread_mutex_unlock(&pb_lock);
}

static void *pb_map(size_t bytes) {
  void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    perror("mmap");
    exit(1);
  }
  return p;
}

static const sb_config *pb_cfg;
static _Atomic uint64_t pb_counted; /* blocks allocated, for ownership sampling */

/* Allocates a block of a size drawn from the run's range, tags it. */
static inline bool pb_alloc(bk_thread *t, uint64_t *rng, pb_block *b) {
  uint64_t x = sb_next(rng);
  uint32_t span = pb_cfg->max_size - pb_cfg->min_size + 1;
  uint32_t size = pb_cfg->min_size + sb_range((uint32_t)x, span);
  unsigned char *p = bk_alloc(t, size);
  if (!p) {
    pb_fail("allocation of %" PRIu32 " bytes returned NULL (errno %d)", size, errno);
    return false;
  }
  b->p = p;
  b->size = size;
  b->tag = (unsigned char)(x >> 56);
  p[0] = b->tag;
  p[size - 1] = b->tag;
  return true;
}

/* Checks the block's tags, and now and then that the allocator owns it, and
 * frees it. */
static inline bool pb_free(bk_thread *t, const pb_block *b, uint64_t count) {
  if (b->p[0] != b->tag || b->p[b->size - 1] != b->tag) {
    pb_fail("block %p of %" PRIu32 " bytes: tag bytes %#x/%#x, expected %#x", (void *)b->p, b->size, b->p[0],
            b->p[b->size - 1], b->tag);
    return false;
  }
  if ((count & 63) == 0 && !bk_owns(t, b->p)) {
    pb_fail("block %p is outside the allocator's memory", (void *)b->p);
    return false;
  }
  bk_free(t, b->p);
  return true;
}

/* ---- burst ---- */

typedef struct pb_burst {
  bk_thread bk;
  pthread_t tid;
  unsigned index;
  uint64_t rng;
  pthread_barrier_t *start;
} pb_burst;

static void *pb_burst_main(void *arg) {
  pb_burst *w = arg;
  char msg[200];
  unsigned n = pb_cfg->n;
  pb_block *blocks = pb_map(n * sizeof *blocks);
  bool ready = bk_thread_init(&w->bk, w->index, msg, sizeof msg) == 0;
  if (!ready) pb_fail("%s", msg);
  pthread_barrier_wait(w->start);
  uint64_t count = 0;
  for (uint64_t r = 0; ready && r < pb_cfg->rounds && !pb_failed; r++) {
    unsigned got = 0;
    while (got < n && pb_alloc(&w->bk, &w->rng, &blocks[got])) got++;
    /* Frees in a random order: a Fisher-Yates pass as it goes. */
    for (unsigned left = got; left > 0; left--) {
      unsigned i = sb_range((uint32_t)sb_next(&w->rng), left);
      if (!pb_free(&w->bk, &blocks[i], count++)) break;
      blocks[i] = blocks[left - 1];
    }
  }
  if (ready) bk_thread_fini(&w->bk);
  munmap(blocks, n * sizeof *blocks);
  return NULL;
}

static uint64_t pb_run_burst(uint64_t *seeder) {
  unsigned nt = pb_cfg->threads;
  pb_burst *ws = pb_map(nt * sizeof *ws);
  pthread_barrier_t start;
  pthread_barrier_init(&start, NULL, nt);
  for (unsigned i = 0; i < nt; i++) {
    ws[i].index = i;
    ws[i].rng = sb_splitmix64(seeder) | 1;
    ws[i].start = &start;
    if (pthread_create(&ws[i].tid, NULL, pb_burst_main, &ws[i]) != 0) {
      fprintf(stderr, "pthread_create failed\n");
      exit(1);
    }
  }
  for (unsigned i = 0; i < nt; i++) pthread_join(ws[i].tid, NULL);
  pthread_barrier_destroy(&start);
  munmap(ws, nt * sizeof *ws);
  return 2 * pb_cfg->rounds * pb_cfg->n * nt;
}

/* ---- prodcons ---- */

typedef struct pb_queue {
  pthread_mutex_t lock;
  pthread_cond_t nonempty, nonfull;
  pb_block *batch[PB_IN_FLIGHT]; /* a ring of full batches */
  unsigned head, count;
  bool done;
} pb_queue;

static pb_queue pb_q = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER, {0}, 0, 0,
                        false};

static void *pb_producer(void *arg) {
  uint64_t rng = *(uint64_t *)arg;
  bk_thread bk;
  char msg[200];
  unsigned n = pb_cfg->n;
  /* One spare batch beyond those in flight and the consumer's. */
  pb_block *store = pb_map((PB_IN_FLIGHT + 2) * n * sizeof *store);
  unsigned next = 0;
  bool ready = bk_thread_init(&bk, 0, msg, sizeof msg) == 0;
  if (!ready) pb_fail("%s", msg);
  for (uint64_t r = 0; ready && r < pb_cfg->rounds && !pb_failed; r++) {
    pb_block *b = store + (size_t)next * n;
    next = (next + 1) % (PB_IN_FLIGHT + 2);
    unsigned got = 0;
    while (got < n && pb_alloc(&bk, &rng, &b[got])) got++;
    if (got < n) break;
    pthread_mutex_lock(&pb_q.lock);
    while (pb_q.count == PB_IN_FLIGHT) pthread_cond_wait(&pb_q.nonfull, &pb_q.lock);
    pb_q.batch[(pb_q.head + pb_q.count++) % PB_IN_FLIGHT] = b;
    pthread_cond_signal(&pb_q.nonempty);
    pthread_mutex_unlock(&pb_q.lock);
  }
  pthread_mutex_lock(&pb_q.lock);
  pb_q.done = true;
  pthread_cond_signal(&pb_q.nonempty);
  /* The store stays until the consumer has taken every batch. */
  while (pb_q.count) pthread_cond_wait(&pb_q.nonfull, &pb_q.lock);
  pthread_mutex_unlock(&pb_q.lock);
  if (ready) bk_thread_fini(&bk);
  return store;
}

static void *pb_consumer(void *arg) {
  (void)arg;
  bk_thread bk;
  char msg[200];
  bool ready = bk_thread_init(&bk, 1, msg, sizeof msg) == 0;
  if (!ready) pb_fail("%s", msg);
  uint64_t count = 0;
  for (;;) {
    pthread_mutex_lock(&pb_q.lock);
    while (!pb_q.count && !pb_q.done) pthread_cond_wait(&pb_q.nonempty, &pb_q.lock);
    if (!pb_q.count) {
      pthread_mutex_unlock(&pb_q.lock);
      break;
    }
    pb_block *b = pb_q.batch[pb_q.head];
    pthread_mutex_unlock(&pb_q.lock);
    /* The batch's slot is given back only once its blocks are freed: the
     * producer reuses the array then. */
    for (unsigned i = 0; i < pb_cfg->n; i++)
      if (!ready || !pb_free(&bk, &b[i], count++)) ready = false;
    pthread_mutex_lock(&pb_q.lock);
    pb_q.head = (pb_q.head + 1) % PB_IN_FLIGHT;
    pb_q.count--;
    pthread_cond_signal(&pb_q.nonfull);
    pthread_mutex_unlock(&pb_q.lock);
  }
  bk_thread_fini(&bk);
  return NULL;
}

static uint64_t pb_run_prodcons(uint64_t *seeder) {
  uint64_t rng = sb_splitmix64(seeder) | 1;
  pthread_t p, c;
  if (pthread_create(&c, NULL, pb_consumer, NULL) != 0 || pthread_create(&p, NULL, pb_producer, &rng) != 0) {
    fprintf(stderr, "pthread_create failed\n");
    exit(1);
  }
  void *store;
  pthread_join(p, &store);
  pthread_join(c, NULL);
  munmap(store, (PB_IN_FLIGHT + 2) * pb_cfg->n * sizeof(pb_block));
  return 2 * pb_cfg->rounds * pb_cfg->n;
}

/* ---- spawn ---- */

typedef struct pb_spawn {
  uint64_t rng;
  unsigned index;
  unsigned alloc;  /* blocks this thread allocates */
  pb_block *left;  /* the blocks of the thread before (got of them) */
  pb_block *mine;  /* this thread's, left to the next */
  unsigned got;
} pb_spawn;

static void *pb_spawn_main(void *arg) {
  pb_spawn *s = arg;
  bk_thread bk;
  char msg[200];
  if (bk_thread_init(&bk, s->index, msg, sizeof msg) != 0) {
    pb_fail("%s", msg);
    return NULL;
  }
  unsigned got = 0;
  while (got < s->alloc && pb_alloc(&bk, &s->rng, &s->mine[got])) got++;
  for (unsigned i = 0; i < s->got; i++)
    if (!pb_free(&bk, &s->left[i], atomic_fetch_add(&pb_counted, 1))) break;
  s->got = got;
  bk_thread_fini(&bk);
  return NULL;
}

static uint64_t pb_run_spawn(uint64_t *seeder) {
  unsigned n = pb_cfg->n;
  pb_block *a = pb_map(2 * n * sizeof *a);
  pb_spawn s = {sb_splitmix64(seeder) | 1, 0, n, a, a + n, 0};
  /* The last thread only frees what the one before it left. */
  for (uint64_t r = 0; r <= pb_cfg->rounds && !pb_failed; r++) {
    pthread_t t;
    s.index = (unsigned)r;
    if (r == pb_cfg->rounds) s.alloc = 0;
    if (pthread_create(&t, NULL, pb_spawn_main, &s) != 0) {
      fprintf(stderr, "pthread_create failed\n");
      exit(1);
    }
    pthread_join(t, NULL);
    pb_block *x = s.left;
    s.left = s.mine;
    s.mine = x;
  }
  munmap(a, 2 * n * sizeof *a);
  return 2 * pb_cfg->rounds * n;
}

/* ---- driver ---- */

static void pb_usage(const char *prog) {
  fprintf(stderr,
          "usage: %s -p burst|prodcons|spawn [-t threads] [-r rounds] [-n blocks] [-s seed]\n"
          "       [-m region_mib] [-a min_bytes] [-b max_bytes] [-q]\n"
          "  -p  the pattern (pattern_bench.h)\n"
          "  -t  burst: threads, each on its own (default 1, at most %u)\n"
          "  -r  rounds: burst rounds (default 2000), prodcons batches (20000), spawn threads (2000)\n"
          "  -n  burst: live blocks (1600); prodcons: blocks per batch (256); spawn: per thread (4)\n"
          "  -s  seed, decimal or 0x hex (default 12345)\n"
          "  -m  MiB of the pinheap FIXED region / mimalloc arena (default 1024)\n"
          "  -a, -b  block sizes in bytes, 1 <= min <= max <= %u (default burst 16..64,\n"
          "      else 16..1024)\n"
          "  -q  print only the RESULT line\n",
          prog, PB_MAX_THREADS, PB_SIZE_LIMIT);
}

static int pb_u64(const char *s, uint64_t *out) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 0);
  if (errno || end == s || *end || s[0] == '-') return -1;
  *out = v;
  return 0;
}

static int pb_parse(int argc, char **argv, sb_config *cfg) {
  int pattern = -1;
  uint64_t rounds = 0, n = 0, a = 0, b = 0, v;
  *cfg = (sb_config){.threads = 1, .seed = 12345, .region_mib = 1024};
  int c;
  while ((c = getopt(argc, argv, "p:t:r:n:s:m:a:b:qh")) != -1) {
    switch (c) {
    case 'p':
      for (int i = 0; i < 3; i++)
        if (strcmp(optarg, pb_names[i]) == 0) pattern = i;
      if (pattern < 0) goto bad;
      break;
    case 't':
      if (pb_u64(optarg, &v) || v == 0 || v > PB_MAX_THREADS) goto bad;
      cfg->threads = (unsigned)v;
      break;
    case 'r':
      if (pb_u64(optarg, &rounds) || rounds == 0) goto bad;
      break;
    case 'n':
      if (pb_u64(optarg, &n) || n == 0 || n > (1u << 20)) goto bad;
      break;
    case 's':
      if (pb_u64(optarg, &cfg->seed)) goto bad;
      break;
    case 'm':
      if (pb_u64(optarg, &v) || v < 64 || v > (1u << 20)) goto bad;
      cfg->region_mib = (size_t)v;
      break;
    case 'a':
      if (pb_u64(optarg, &a) || a < 1 || a > PB_SIZE_LIMIT) goto bad;
      break;
    case 'b':
      if (pb_u64(optarg, &b) || b < 1 || b > PB_SIZE_LIMIT) goto bad;
      break;
    case 'q':
      cfg->quiet = true;
      break;
    case 'h':
      pb_usage(argv[0]);
      exit(0);
    default:
      goto bad;
    }
  }
  if (optind != argc || pattern < 0) goto bad;
  cfg->pattern = (pb_pattern)pattern;
  static const uint64_t def_rounds[] = {2000, 20000, 2000}, def_n[] = {1600, 256, 4};
  cfg->rounds = rounds ? rounds : def_rounds[pattern];
  cfg->n = (unsigned)(n ? n : def_n[pattern]);
  cfg->min_size = (uint32_t)(a ? a : 16);
  cfg->max_size = (uint32_t)(b ? b : pattern == PB_BURST ? 64 : 1024);
  if (cfg->min_size > cfg->max_size) goto bad;
  return 0;
bad:
  pb_usage(argv[0]);
  return -1;
}

int main(int argc, char **argv) {
  sb_config cfg;
  if (pb_parse(argc, argv, &cfg) != 0) return 2;
  pb_cfg = &cfg;
  if (!cfg.quiet)
    printf("pattern bench: allocator=%s pattern=%s threads=%u n=%u rounds=%" PRIu64 " sizes=%" PRIu32 "..%" PRIu32
           " seed=%" PRIu64 "\n",
           BK_NAME, pb_names[cfg.pattern], cfg.threads, cfg.n, cfg.rounds, cfg.min_size, cfg.max_size, cfg.seed);
  if (bk_global_init(&cfg) != 0) return 1;
  uint64_t seeder = cfg.seed;
  uint64_t cpu0 = sb_clock_ns(CLOCK_PROCESS_CPUTIME_ID), wall0 = sb_clock_ns(CLOCK_MONOTONIC);
  uint64_t ops = cfg.pattern == PB_BURST ? pb_run_burst(&seeder)
                 : cfg.pattern == PB_PRODCONS ? pb_run_prodcons(&seeder)
                                              : pb_run_spawn(&seeder);
  uint64_t cpu1 = sb_clock_ns(CLOCK_PROCESS_CPUTIME_ID), wall1 = sb_clock_ns(CLOCK_MONOTONIC);
  int status = 0;
  if (pb_failed) {
    fprintf(stderr, "%s: FAILED: %s\n", BK_NAME, pb_msg);
    status = 1;
  }
  if (bk_global_fini(&cfg) != 0) status = 1;
  if (status) return status;
  printf("RESULT allocator=%s pattern=%s threads=%u n=%u rounds=%" PRIu64 " seed=%" PRIu64
         " cpu_ns_per_op=%.2f wall_ns_per_op=%.2f ops=%" PRIu64 "\n",
         BK_NAME, pb_names[cfg.pattern], cfg.threads, cfg.n, cfg.rounds, cfg.seed, (double)(cpu1 - cpu0) / ops,
         (double)(wall1 - wall0) / ops, ops);
  return 0;
}

#endif /* PINHEAP_PATTERN_BENCH_H */
