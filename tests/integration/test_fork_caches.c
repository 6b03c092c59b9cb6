/*
 * fork() while many threads allocate through their thread caches, and the
 * child checks the heap: the child's handler gives back the caches of the
 * threads that did not survive, jemalloc tcaches included, and the check
 * then reads jemalloc's stats, which walk the tcaches every arena lists. In
 * the child jemalloc lists no tcache but the forking thread's own, so a
 * tcache made by tcache.create that is still alive at the fork must not be
 * destroyed there (its unlinking would rewrite the links of the listed one
 * and leave freed tcaches on an arena's list: SIGSEGV or an endless loop in
 * the stats). THREADS threads allocate and free random 8 B - 14 KiB blocks
 * of a FIXED heap with 64 arenas, while the main thread forks; each child
 * allocates, checks the heap and exits 0. A child that does not finish
 * within CHILD_SECONDS is killed and counted as hung.
 *
 *   test_fork_caches [seed] [forks]   (seed 0: from the clock; 6 forks by default)
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "children.h"
#include "pinheap.h"
#include "seed.h"

#define MiB ((size_t)1 << 20)
#define CHILD_SECONDS 10
#define THREADS 16
#define SLOTS 2000

static pinheap *heap;
static atomic_int stop;
static atomic_int started;
static unsigned long long seed;

static void *worker(void *arg) {
  uint64_t s = seed * 7919 + (uint64_t)(uintptr_t)arg + 1;
  void **v = calloc(SLOTS, sizeof *v);
  if (!v) return NULL;
  atomic_fetch_add(&started, 1);
  while (!atomic_load(&stop)) {
    for (int i = 0; i < SLOTS; i++) {
      size_t r = (size_t)seed_next_r(&s);
      if (v[i]) {
        pinheap_free(heap, v[i]);
        v[i] = NULL;
      }
      if (r & 1) {
        size_t size = 8 + (r >> 8) % (14 * 1024);
        v[i] = pinheap_malloc(heap, size);
        if (v[i]) memset(v[i], 0x5a, size < 64 ? size : 64);
      }
    }
  }
  for (int i = 0; i < SLOTS; i++) pinheap_free(heap, v[i]);
  free(v);
  return NULL;
}

static _Noreturn void child(int n) {
  (void)n;
  int failed = 0;
  void *a = pinheap_malloc(heap, 100), *b = pinheap_malloc(heap, 5000);
  if (!a || !b) {
    fprintf(stderr, "test_fork_caches: the child cannot allocate\n");
    failed++;
  }
  if (pinheap_check(heap) != 0) failed++;
  pinheap_free(heap, a);
  pinheap_free(heap, b);
  if (pinheap_check(heap) != 0) failed++;
  _exit(failed ? 1 : 0);
}

/* Waits for child n, and says how it ended unless it finished or hung. */
static int wait_telling(pid_t pid, int seconds, int n) {
  int status = children_wait(pid, seconds);
  if (status > 0)
    fprintf(stderr, "test_fork_caches: child %d: exit status %d%s\n", n, status, status > 128 ? " (128 + signal)" : "");
  return status;
}

int main(int argc, char **argv) {
  seed = seed_init(argc, argv, "test_fork_caches");
  int forks = argc > 2 ? atoi(argv[2]) : 6;
  pinheap_options o;
  pinheap_options_init(&o);
  o.mode = PINHEAP_FIXED;
  o.size = 256 * MiB;
  o.arenas = 64;
  heap = pinheap_create(&o);
  if (!heap) {
    fprintf(stderr, "test_fork_caches: pinheap_create: %s\n", pinheap_last_error());
    return 1;
  }
  pthread_t t[THREADS];
  for (int i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)i);
  while (atomic_load(&started) < THREADS) sched_yield();
  children ends = children_fork_each(&(children_plan){.test = "test_fork_caches", .forks = forks,
                                                      .seconds = CHILD_SECONDS, .seed = seed,
                                                      .pause = {5, 20, 1000000}, .child = child, .wait = wait_telling});
  atomic_store(&stop, 1);
  for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
  int broken = pinheap_check(heap);
  pinheap_destroy(heap);
  printf("test_fork_caches: %d of %d children finished, %d hung, %d failed; %d broken invariants in the parent\n",
         ends.finished, forks, ends.hung, ends.failed, broken);
  return ends.finished == forks && broken == 0 ? 0 : 1;
}
