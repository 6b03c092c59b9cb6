/*
 * fork() while another thread reads the heap's stats: pinheap_get_stats
 * takes the locks of the fine path's classes, and a fork that lands while
 * it holds one must not leave the lock held in the child. One thread reads
 * the stats of a FIXED heap with live blocks in every fine class, without
 * pause, while the main thread forks again and again; each child reads the
 * stats, allocates and frees a block of every fine size, checks the heap
 * and exits 0. A child that does not finish within CHILD_SECONDS is killed
 * and counted as hung.
 *
 *   test_fork_stats [seed] [forks]   (seed 0: from the clock; 2000 forks by default)
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "children.h"
#include "pinheap.h"
#include "seed.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)
#define CHILD_SECONDS 5
#define BLOCKS 64
#define SPINNERS 2

static pinheap *heap;
static atomic_int stop;
static atomic_ulong reads;

/* Sizes of the fine path, 1–64 KiB, in steps that meet each of its classes. */
static size_t fine_size(int i) { return KiB + (size_t)i * KiB; }

static void *reader(void *arg) {
  (void)arg;
  pinheap_stats st;
  while (!atomic_load(&stop)) {
    pinheap_get_stats(heap, &st);
    atomic_fetch_add(&reads, 1);
  }
  return NULL;
}

/* Keeps a processor busy, so that the reader is often descheduled in the
 * middle of its stats, locks held, when the fork comes. */
static void *spinner(void *arg) {
  (void)arg;
  volatile unsigned long n = 0;
  while (!atomic_load(&stop)) n++;
  return NULL;
}

static _Noreturn void child(int n) {
  (void)n;
  pinheap_stats st;
  pinheap_get_stats(heap, &st);
  int failed = 0;
  for (int i = 0; i < BLOCKS; i++) {
    void *p = pinheap_malloc(heap, fine_size(i));
    if (!p) failed++;
    pinheap_free(heap, p);
  }
  pinheap_get_stats(heap, &st);
  if (pinheap_check(heap) != 0) failed++;
  _exit(failed ? 1 : 0);
}

int main(int argc, char **argv) {
  unsigned long long seed = seed_init(argc, argv, "test_fork_stats");
  int forks = argc > 2 ? atoi(argv[2]) : 2000;
  pinheap_options o;
  pinheap_options_init(&o);
  o.mode = PINHEAP_FIXED;
  o.size = 256 * MiB;
  heap = pinheap_create(&o);
  if (!heap) {
    fprintf(stderr, "test_fork_stats: pinheap_create: %s\n", pinheap_last_error());
    return 1;
  }
  void *live[BLOCKS];
  for (int i = 0; i < BLOCKS; i++) live[i] = pinheap_malloc(heap, fine_size(i));
  pthread_t t[1 + SPINNERS];
  pthread_create(&t[0], NULL, reader, NULL);
  for (int i = 1; i <= SPINNERS; i++) pthread_create(&t[i], NULL, spinner, NULL);
  children ends = children_fork_each(&(children_plan){.test = "test_fork_stats", .forks = forks,
                                                      .seconds = CHILD_SECONDS, .seed = seed, .pause = {20, 200, 1000},
                                                      .child = child});
  atomic_store(&stop, 1);
  for (int i = 0; i <= SPINNERS; i++) pthread_join(t[i], NULL);
  int broken = pinheap_check(heap);
  for (int i = 0; i < BLOCKS; i++) pinheap_free(heap, live[i]);
  pinheap_destroy(heap);
  printf("test_fork_stats: %d of %d children finished, %d hung, %d failed; %lu stats reads in the parent; "
         "%d broken invariants in the parent\n",
         ends.finished, forks, ends.hung, ends.failed, atomic_load(&reads), broken);
  return ends.finished == forks && broken == 0 ? 0 : 1;
}
