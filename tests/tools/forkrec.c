/*
 * A multi-threaded program that forks, for `pinheap record`'s tests:
 * worker threads allocate blocks of every size (malloc, calloc, realloc,
 * posix_memalign) and hand them to each other through a queue to be
 * reallocated and freed there, while the main thread forks children that
 * allocate and free too and end by exit() or _exit(). Prints how many
 * children finished. It marks its phases with pinheap_phase, which a
 * recording turns into phase records.
 *
 *   forkrec [forks]
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "children.h"
#include "pinheap.h"

#define WORKERS 3
#define QUEUE 256

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static void *queue[QUEUE];
static size_t queued;
static atomic_int stop;

static void *work(void *arg) {
  uint64_t s = (uintptr_t)arg * 0x9E3779B97F4A7C15ull + 1;
  while (!atomic_load(&stop)) {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    size_t size = s % 8 == 0 ? (s >> 20) % (1u << 20) : (s >> 20) % 1024;
    void *p = NULL;
    switch ((s >> 8) % 4) {
    case 0: p = malloc(size + 1); break;
    case 1: p = calloc(1 + size % 7, 16); break;
    case 2: if (posix_memalign(&p, (size_t)64 << (s % 7), size + 1)) p = NULL; break;
    default: p = realloc(NULL, size + 1);
    }
    if (!p) continue;
    memset(p, 1, 1);
    /* Hand it over; take one another thread made, grow it and free it. */
    pthread_mutex_lock(&lock);
    void *q = NULL;
    if (queued == QUEUE || (queued && s % 2)) q = queue[--queued];
    if (queued < QUEUE) {
      queue[queued++] = p;
      p = NULL;
    }
    pthread_mutex_unlock(&lock);
    free(p);
    if (q) {
      void *r = realloc(q, 100 + (s >> 40) % 5000);
      free(r ? r : q);
    }
  }
  return NULL;
}

/* Allocates blocks, frees half of them, and ends by exit() (even n) or _exit(). */
static _Noreturn void child(int n) {
  void *p[16];
  for (int i = 0; i < 16; i++) p[i] = malloc(i % 2 ? (size_t)(100 + i) : (size_t)(i + 1) << 14);
  for (int i = 0; i < 16; i += 2) free(p[i]);
  if (n % 2 == 0) exit(0);
  _exit(0);
}

int main(int argc, char **argv) {
  int forks = argc > 1 ? atoi(argv[1]) : 20;
  pthread_t t[WORKERS];
  pinheap_phase("workers start");
  for (int i = 0; i < WORKERS; i++) pthread_create(&t[i], NULL, work, (void *)(uintptr_t)(i + 1));
  children ends = children_fork_each(
      &(children_plan){.test = "forkrec", .forks = forks, .seconds = 10, .pause = {2, 0, 1000000}, .child = child});
  atomic_store(&stop, 1);
  pinheap_phase("workers stop");
  for (int i = 0; i < WORKERS; i++) pthread_join(t[i], NULL);
  while (queued) free(queue[--queued]);
  printf("forkrec: %d of %d children finished\n", ends.finished, forks);
  return ends.finished == forks ? 0 : 1;
}
