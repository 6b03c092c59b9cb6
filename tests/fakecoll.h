/*
 * fakecoll: a group of "processes" that are the threads of one process, for
 * the tests of symmetric heaps. Each thread gets its own pinheap_collective
 * whose allgather meets the others' at a barrier over a shared buffer.
 * Since the threads share one address space, a test can also read what
 * pinheap_sym_remote says lies on another rank.
 *
 * Failures inside a thread print the rank and abort the process (cmocka's
 * assertions are for the main thread only).
 */
#ifndef PINHEAP_TEST_FAKECOLL_H
#define PINHEAP_TEST_FAKECOLL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pinheap_sym.h"

#define FAKE_MAX_RANKS 8
#define FAKE_MAX_LEN 256 /* bytes one rank contributes to one allgather */

typedef struct fake_group {
  int nranks;
  pthread_barrier_t barrier;
  char buf[FAKE_MAX_RANKS * FAKE_MAX_LEN];
  atomic_ulong calls; /* allgathers completed */
} fake_group;

typedef struct fake_proc {
  fake_group *group;
  int rank;
  pinheap_collective coll;
  void (*body)(struct fake_proc *self, void *arg);
  void *arg;
} fake_proc;

#define FAKE_CHECK(p, cond, ...)                                                                   \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "rank %d: %s:%d: check failed: %s: ", (p)->rank, __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                                                \
      fprintf(stderr, " (last error: %s)\n", pinheap_last_error());                                \
      abort();                                                                                     \
    }                                                                                              \
  } while (0)

static int fake_allgather(void *ctx, const void *in, void *out, size_t len) {
  fake_proc *p = ctx;
  fake_group *g = p->group;
  if (len > FAKE_MAX_LEN) {
    fprintf(stderr, "fake_allgather: %zu bytes, at most %d\n", len, FAKE_MAX_LEN);
    abort();
  }
  memcpy(g->buf + (size_t)p->rank * len, in, len);
  pthread_barrier_wait(&g->barrier);
  memcpy(out, g->buf, (size_t)g->nranks * len);
  if (pthread_barrier_wait(&g->barrier) == PTHREAD_BARRIER_SERIAL_THREAD) atomic_fetch_add(&g->calls, 1);
  return 0;
}

/* Whether every rank passed the same value (itself a collective call). */
static inline int fake_all_same(fake_proc *p, unsigned long long v) {
  unsigned long long all[FAKE_MAX_RANKS];
  fake_allgather(p, &v, all, sizeof v);
  for (int i = 0; i < p->group->nranks; i++)
    if (all[i] != v) return 0;
  return 1;
}

/* What rank i passed, from every rank's v (collective). */
static inline unsigned long long fake_value_of(fake_proc *p, unsigned long long v, int i) {
  unsigned long long all[FAKE_MAX_RANKS];
  fake_allgather(p, &v, all, sizeof v);
  return all[i];
}

static void *fake_thread(void *arg) {
  fake_proc *p = arg;
  p->body(p, p->arg);
  return NULL;
}

/* Runs body on nranks threads, each with its rank and collective; returns
 * the number of allgathers they made. */
static inline unsigned long fake_run(int nranks, void (*body)(fake_proc *self, void *arg), void *arg) {
  fake_group g;
  memset(&g, 0, sizeof g);
  g.nranks = nranks;
  pthread_barrier_init(&g.barrier, NULL, (unsigned)nranks);
  fake_proc procs[FAKE_MAX_RANKS];
  pthread_t threads[FAKE_MAX_RANKS];
  for (int i = 0; i < nranks; i++) {
    procs[i] = (fake_proc){.group = &g, .rank = i, .body = body, .arg = arg};
    procs[i].coll = (pinheap_collective){.ctx = &procs[i], .rank = i, .nranks = nranks, .allgather = fake_allgather};
    if (pthread_create(&threads[i], NULL, fake_thread, &procs[i]) != 0) abort();
  }
  for (int i = 0; i < nranks; i++) pthread_join(threads[i], NULL);
  pthread_barrier_destroy(&g.barrier);
  return atomic_load(&g.calls);
}

#endif
