/*
 * Run under libpinheap-preload.so: threads allocate blocks of every size,
 * and short-lived threads start, allocate and exit (their caches go back
 * under the heap's locks), while the main thread forks children that
 * allocate too. A lock held by another thread at the fork would hang a
 * child: each child has 10 s.
 *
 *   forker [forks]
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "children.h"

static atomic_int stop;

static void *churn(void *arg) {
  uint64_t s = (uintptr_t)arg * 0x9E3779B97F4A7C15ull + 1;
  void *live[64] = {0};
  while (!atomic_load(&stop)) {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    unsigned i = s % 64;
    free(live[i]);
    size_t size = (s >> 8) % 4 == 0 ? (s >> 16) % (2u << 20) : (s >> 16) % 2048;
    live[i] = malloc(size + 1);
    if (live[i]) memset(live[i], 1, 1);
  }
  for (int i = 0; i < 64; i++) free(live[i]);
  return NULL;
}

static void *brief(void *arg) {
  void *p = malloc((size_t)(uintptr_t)arg), *q = malloc(100);
  free(p);
  free(q);
  return NULL;
}

/* Starts and joins short-lived threads until told to stop. */
static void *spawner(void *arg) {
  (void)arg;
  for (uintptr_t n = 1; !atomic_load(&stop); n++) {
    pthread_t t;
    if (pthread_create(&t, NULL, brief, (void *)(n % 3 ? 64 : (uintptr_t)1 << 20)) == 0) pthread_join(t, NULL);
  }
  return NULL;
}

/* Allocates and frees blocks, and exits. */
static _Noreturn void child(int n) {
  (void)n;
  void *p[32];
  for (int i = 0; i < 32; i++) p[i] = malloc(i % 2 ? (size_t)(100 + i) : (size_t)(i + 1) << 16);
  for (int i = 0; i < 32; i++) free(p[i]);
  _exit(0);
}

int main(int argc, char **argv) {
  int forks = argc > 1 ? atoi(argv[1]) : 300;
  pthread_t t[3];
  for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, churn, (void *)(uintptr_t)(i + 1));
  pthread_create(&t[2], NULL, spawner, NULL);
  children ends = children_fork_each(&(children_plan){.test = "forker", .forks = forks, .seconds = 10, .child = child});
  atomic_store(&stop, 1);
  for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
  printf("forker: %d of %d children finished\n", ends.finished, forks);
  return ends.finished == forks ? 0 : 1;
}
