#include "speed.h"

#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "rng.h"

#define MiB ((size_t)1 << 20)
#define SPEED_SIZES 4096        /* sizes drawn per worker before timing */
#define SPEED_RING 4096         /* xthread: pointers in a thread's inbox (a power of two) */
#define SPEED_BATCH 64          /* xthread: blocks allocated before handing them on */
#define SPEED_WRITES 64         /* falseshare: writes into each object */
#define SPEED_CHECK_EVERY 256   /* operations between looks at the clock's flag */
#define SPEED_MIN_REGION (64 * MiB) /* two of mimalloc's segments */

typedef enum speed_kind { SPEED_CHURN, SPEED_XTHREAD, SPEED_FALSESHARE } speed_kind;

typedef struct speed_def {
  speed_kind kind;
  uint32_t min, max; /* block sizes */
  bool log;          /* log-uniform rather than uniform */
  unsigned live;     /* CHURN: blocks live per thread */
} speed_def;

static const speed_def speed_defs[] = {
    {SPEED_CHURN, 16, 1024, false, 1000},
    {SPEED_CHURN, 16, 32 << 10, false, 1000},
    {SPEED_CHURN, 14 << 10, 1 << 20, true, 1000},
    {SPEED_CHURN, 1 << 20, 32 << 20, true, 40},
    {SPEED_XTHREAD, 16, 1024, false, 0},
    {SPEED_FALSESHARE, 8, 8, false, 0},
};

const speed_test speed_tests[] = {
    {"small1k", "16 B - 1 KiB, 1000 live per thread", 256 * MiB},
    {"small32k", "16 B - 32 KiB, 1000 live per thread", 512 * MiB},
    {"medium", "14 KiB - 1 MiB (log-uniform), 1000 live per thread", 1024 * MiB},
    {"large", "1 - 32 MiB (log-uniform), 40 live per thread", 2048 * MiB},
    {"xthread", "16 B - 1 KiB handed to the next thread, which frees them (larson-style)", 256 * MiB},
    {"falseshare", "8-byte objects of different threads, each written 64 times", 256 * MiB},
};
const size_t speed_test_count = sizeof speed_tests / sizeof speed_tests[0];

/* Blocks live per thread under scale (CHURN). */
static unsigned speed_live(const speed_def *d, double scale) {
  unsigned n = (unsigned)(d->live * scale);
  return n > 4 ? n : 4;
}

const speed_test *speed_find(const char *name) {
  for (size_t i = 0; i < speed_test_count; i++)
    if (strcmp(speed_tests[i].name, name) == 0) return &speed_tests[i];
  return NULL;
}

/* A thread's inbox: one producer (the previous thread), one consumer.
 * Invariants: head <= tail <= head + SPEED_RING; slot[i % SPEED_RING] for i
 * in [head, tail) holds a block handed over and not yet taken. */
typedef struct speed_ring {
  _Alignas(64) _Atomic uint64_t head; /* written by the consumer */
  _Alignas(64) _Atomic uint64_t tail; /* written by the producer */
  void *slot[SPEED_RING];
} speed_ring;

typedef struct speed_shared speed_shared;

typedef struct speed_worker {
  _Alignas(64) unsigned index;
  speed_shared *sh;
  pthread_t tid;
  rng rng;
  uint32_t sizes[SPEED_SIZES];
  uint64_t ops;
  double t_end;
  bool failed;
  char msg[160];
} speed_worker;

struct speed_shared {
  const peer *p;
  peer_heap *h;
  const speed_def *d;
  unsigned threads;
  unsigned live; /* CHURN: blocks live per thread, scaled */
  pthread_barrier_t ready, start;
  _Atomic int stop;
  _Atomic unsigned producers_done;
  speed_ring *rings;   /* xthread: one per thread */
  void **handed;       /* falseshare: one object per thread */
  speed_worker *w;
};

static double speed_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void speed_fail(speed_worker *w, const char *what, size_t size) {
  if (w->failed) return;
  w->failed = true;
  snprintf(w->msg, sizeof w->msg, "thread %u: %s (%zu bytes)", w->index, what, size);
}

/* A new block of size bytes, its size in its first 4 bytes when it has
 * room (else its first byte) and tag in its last. */
static inline unsigned char *speed_alloc(speed_worker *w, uint32_t size, unsigned char tag) {
  const speed_shared *sh = w->sh;
  unsigned char *q = sh->p->malloc(sh->h, size);
  if (!q) {
    speed_fail(w, "allocation failed", size);
    return NULL;
  }
  if (size >= 4)
    memcpy(q, &size, 4);
  else
    q[0] = (unsigned char)size;
  q[size - 1] = tag;
  return q;
}

static inline bool speed_release(speed_worker *w, unsigned char *q, unsigned char tag) {
  const speed_shared *sh = w->sh;
  uint32_t size;
  memcpy(&size, q, 4);
  if (size < 4 || q[size - 1] != tag) {
    speed_fail(w, "block overwritten", size);
    return false;
  }
  sh->p->free(sh->h, q);
  return true;
}

static void speed_churn(speed_worker *w) {
  speed_shared *sh = w->sh;
  unsigned n = sh->live;
  size_t len = n * sizeof(void *);
  unsigned char **slot = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (slot == MAP_FAILED) {
    speed_fail(w, "no memory for the slots", len);
    slot = NULL;
  }
  for (unsigned i = 0; slot && i < n && !w->failed; i++) slot[i] = speed_alloc(w, w->sizes[i % SPEED_SIZES], 0x5a);
  pthread_barrier_wait(&sh->start);
  rng s = w->rng;
  uint64_t ops = 0;
  while (!w->failed && slot) {
    for (unsigned k = 0; k < SPEED_CHECK_EVERY; k++) {
      uint64_t x = rng_next(&s);
      unsigned i = (unsigned)(((x >> 32) * n) >> 32);
      if (!speed_release(w, slot[i], 0x5a)) break;
      slot[i] = speed_alloc(w, w->sizes[x & (SPEED_SIZES - 1)], 0x5a);
      if (!slot[i]) break;
    }
    ops += 2 * SPEED_CHECK_EVERY;
    if (atomic_load_explicit(&sh->stop, memory_order_relaxed)) break;
  }
  w->t_end = speed_now();
  w->ops = ops;
  for (unsigned i = 0; slot && i < n; i++)
    if (slot[i]) sh->p->free(sh->h, slot[i]);
  if (slot) munmap(slot, len);
}

static bool speed_push(speed_ring *r, void *q) {
  uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
  if (t - atomic_load_explicit(&r->head, memory_order_acquire) == SPEED_RING) return false;
  r->slot[t & (SPEED_RING - 1)] = q;
  atomic_store_explicit(&r->tail, t + 1, memory_order_release);
  return true;
}

/* Frees what the inbox holds; the number freed. */
static uint64_t speed_drain(speed_worker *w, speed_ring *r) {
  uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
  uint64_t t = atomic_load_explicit(&r->tail, memory_order_acquire), n = t - h;
  for (; h != t; h++) speed_release(w, r->slot[h & (SPEED_RING - 1)], 0xa5);
  atomic_store_explicit(&r->head, h, memory_order_release);
  return n;
}

static void speed_xthread(speed_worker *w) {
  speed_shared *sh = w->sh;
  speed_ring *in = &sh->rings[w->index], *out = &sh->rings[(w->index + 1) % sh->threads];
  pthread_barrier_wait(&sh->start);
  rng s = w->rng;
  uint64_t ops = 0;
  while (!w->failed && !atomic_load_explicit(&sh->stop, memory_order_relaxed)) {
    for (unsigned k = 0; k < SPEED_BATCH && !w->failed; k++) {
      unsigned char *q = speed_alloc(w, w->sizes[rng_next(&s) & (SPEED_SIZES - 1)], 0xa5);
      if (!q) break;
      ops++;
      while (!speed_push(out, q)) {
        ops += speed_drain(w, in);
        sched_yield();
      }
    }
    ops += speed_drain(w, in);
  }
  w->t_end = speed_now();
  w->ops = ops;
  atomic_fetch_add(&sh->producers_done, 1);
  for (;;) {
    bool all = atomic_load(&sh->producers_done) == sh->threads;
    if (!speed_drain(w, in) && all) break;
    if (!all) sched_yield();
  }
}

static void speed_falseshare(speed_worker *w) {
  speed_shared *sh = w->sh;
  if (w->index == 0)
    for (unsigned i = 0; i < sh->threads && !w->failed; i++) sh->handed[i] = speed_alloc(w, 8, 0x3c);
  pthread_barrier_wait(&sh->ready);
  if (sh->handed[w->index]) speed_release(w, sh->handed[w->index], 0x3c);
  pthread_barrier_wait(&sh->start);
  uint64_t ops = 0;
  while (!w->failed) {
    for (unsigned k = 0; k < SPEED_CHECK_EVERY / 2; k++) {
      volatile unsigned char *q = speed_alloc(w, 8, 0x3c);
      if (!q) break;
      for (unsigned j = 0; j < SPEED_WRITES; j++) q[4 + (j & 1)]++; /* not the tag, in the last byte */
      if (!speed_release(w, (unsigned char *)q, 0x3c)) break;
    }
    ops += SPEED_CHECK_EVERY;
    if (atomic_load_explicit(&sh->stop, memory_order_relaxed)) break;
  }
  w->t_end = speed_now();
  w->ops = ops;
}

static void *speed_main(void *arg) {
  speed_worker *w = arg;
  speed_shared *sh = w->sh;
  if (sh->p->thread_start) sh->p->thread_start(sh->h);
  const speed_def *d = sh->d;
  double lmin = log((double)d->min), lspan = log((double)d->max) - lmin;
  for (unsigned i = 0; i < SPEED_SIZES; i++) {
    uint64_t x = rng_next(&w->rng);
    double u = (double)(x >> 11) / 9007199254740992.0;
    w->sizes[i] = d->log ? (uint32_t)exp(lmin + u * lspan) : d->min + (uint32_t)(u * (d->max - d->min + 1));
    if (w->sizes[i] < d->min) w->sizes[i] = d->min;
    if (w->sizes[i] > d->max) w->sizes[i] = d->max;
  }
  if (d->kind != SPEED_FALSESHARE) pthread_barrier_wait(&sh->ready);
  switch (d->kind) {
  case SPEED_CHURN: speed_churn(w); break;
  case SPEED_XTHREAD: speed_xthread(w); break;
  case SPEED_FALSESHARE: speed_falseshare(w); break;
  }
  if (sh->p->thread_stop) sh->p->thread_stop(sh->h);
  return NULL;
}

size_t speed_region(const speed_test *t, unsigned threads, double scale) {
  const speed_def *d = &speed_defs[t - speed_tests];
  size_t n = threads > 2 ? threads : 2;
  size_t r = (size_t)((double)(t->region / 2 * n) * scale) / MiB * MiB;
  /* Room for twice the most the live blocks can hold, however scaled. */
  size_t least = 2 * n * speed_live(d, scale) * d->max;
  if (r < least) r = (least + MiB - 1) / MiB * MiB;
  return r > SPEED_MIN_REGION ? r : SPEED_MIN_REGION;
}

int speed_run(const peer *p, const speed_test *t, unsigned threads, double seconds, double scale, uint64_t seed,
              speed_result *res) {
  memset(res, 0, sizeof *res);
  if (threads > 1 && !(p->flags & PEER_THREADS)) {
    snprintf(res->error, sizeof res->error, "%s serves one thread", p->name);
    return 0;
  }
  speed_shared sh = {.p = p, .d = &speed_defs[t - speed_tests], .threads = threads};
  sh.live = speed_live(sh.d, scale);
  size_t region = speed_region(t, threads, scale);
  size_t wlen = threads * sizeof(speed_worker), rlen = threads * sizeof(speed_ring);
  sh.w = mmap(NULL, wlen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  sh.rings = mmap(NULL, rlen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  void *handed[threads];
  memset(handed, 0, sizeof handed);
  sh.handed = handed;
  if (sh.w == MAP_FAILED || sh.rings == MAP_FAILED) {
    snprintf(res->error, sizeof res->error, "no memory for %u workers", threads);
    return -1;
  }
  sh.h = p->create(p, region, threads, false, res->error, sizeof res->error);
  if (!sh.h) {
    munmap(sh.w, wlen);
    munmap(sh.rings, rlen);
    return 0;
  }
  pthread_barrier_init(&sh.ready, NULL, threads);
  pthread_barrier_init(&sh.start, NULL, threads + 1);
  unsigned started = 0;
  for (unsigned i = 0; i < threads; i++) {
    sh.w[i].index = i;
    sh.w[i].sh = &sh;
    rng_seed(&sh.w[i].rng, seed + i);
  }
  for (; started < threads; started++)
    if (pthread_create(&sh.w[started].tid, NULL, speed_main, &sh.w[started]) != 0) break;
  if (started < threads) {
    /* Cannot happen short of a system out of threads; the ones started
     * wait at a barrier that never opens, so end here. */
    fprintf(stderr, "speed: pthread_create failed after %u threads\n", started);
    exit(1);
  }
  pthread_barrier_wait(&sh.start);
  double t0 = speed_now();
  struct timespec nap = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
  nanosleep(&nap, NULL);
  atomic_store(&sh.stop, 1);
  double t1 = t0;
  for (unsigned i = 0; i < threads; i++) {
    pthread_join(sh.w[i].tid, NULL);
    if (sh.w[i].t_end > t1) t1 = sh.w[i].t_end;
    res->ops += sh.w[i].ops;
    if (sh.w[i].failed && !res->error[0]) snprintf(res->error, sizeof res->error, "%s", sh.w[i].msg);
  }
  res->seconds = t1 - t0;
  res->ok = !res->error[0];
  res->ops_per_s = res->seconds > 0 ? (double)res->ops / res->seconds : 0;
  p->destroy(sh.h);
  pthread_barrier_destroy(&sh.ready);
  pthread_barrier_destroy(&sh.start);
  munmap(sh.w, wlen);
  munmap(sh.rings, rlen);
  return 0;
}
