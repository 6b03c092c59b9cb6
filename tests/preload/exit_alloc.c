/*
 * Run under libpinheap-preload.so: pthread key destructors that free their
 * value and allocate at a thread's exit (malloc, calloc, realloc,
 * posix_memalign, small to large), re-arming their key [rearm] times (at
 * most PTHREAD_DESTRUCTOR_ITERATIONS - 1), for keys made before and after
 * the heap was set up; the main thread then checks every block and frees
 * it. Exits 0 when every block came back whole, 1 otherwise; a block that is
 * not the heap's aborts its free.
 *
 *   exit_alloc [rearm]
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define THREADS 8
#define MAX_LATE 4096

static pthread_key_t keys[2];
static int rearm, nlate, bad;
static struct {
  unsigned char *p;
  size_t size;
  unsigned char fill;
} late[MAX_LATE];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void keep(void *p, size_t size, unsigned char fill) {
  pthread_mutex_lock(&lock);
  if (!p || nlate == MAX_LATE) {
    bad++;
  } else {
    /* Its first 4 KiB and last byte: large blocks need not be touched whole. */
    memset(p, fill, size < 4096 ? size : 4096);
    ((unsigned char *)p)[size - 1] = fill;
    late[nlate].p = p;
    late[nlate].size = size;
    late[nlate++].fill = fill;
  }
  pthread_mutex_unlock(&lock);
}

static void destructor(pthread_key_t key, void *arg) {
  int *v = arg; /* {rounds left, fill} */
  int rounds = v[0], fill = v[1];
  free(v);
  keep(malloc(40), 40, (unsigned char)fill);
  keep(malloc(20000), 20000, (unsigned char)fill);
  keep(malloc(3 << 20), 3 << 20, (unsigned char)fill);
  keep(calloc(30, 30), 900, (unsigned char)fill);
  void *a = NULL;
  keep(posix_memalign(&a, 256, 300) == 0 ? a : NULL, 300, (unsigned char)fill);
  char *r = malloc(10);
  keep(r ? realloc(r, 7000) : NULL, 7000, (unsigned char)fill);
  free(malloc(100));
  if (rounds > 0) {
    int *n = malloc(2 * sizeof *n);
    n[0] = rounds - 1;
    n[1] = fill;
    pthread_setspecific(key, n);
  }
}

static void destructor0(void *arg) { destructor(keys[0], arg); }
static void destructor1(void *arg) { destructor(keys[1], arg); }

static void *thread_main(void *arg) {
  for (int k = 0; k < 2; k++) {
    int *v = malloc(2 * sizeof *v);
    v[0] = rearm;
    v[1] = (int)(uintptr_t)arg + k;
    pthread_setspecific(keys[k], v);
  }
  return NULL;
}

int main(int argc, char **argv) {
  rearm = argc > 1 ? atoi(argv[1]) : 0;
  /* keys[0] before the first allocation (the heap's set-up), keys[1] after. */
  pthread_key_create(&keys[0], destructor0);
  free(malloc(1));
  pthread_key_create(&keys[1], destructor1);
  for (int t = 0; t < THREADS; t++) {
    pthread_t th;
    if (pthread_create(&th, NULL, thread_main, (void *)(uintptr_t)(3 * t + 1)) != 0 || pthread_join(th, NULL) != 0)
      return 2;
  }
  int lost = 0;
  for (int i = 0; i < nlate; i++) {
    for (size_t j = 0; j < late[i].size && j < 4096; j += 61)
      if (late[i].p[j] != late[i].fill) lost++;
    if (late[i].p[late[i].size - 1] != late[i].fill) lost++;
    free(late[i].p);
  }
  int want = THREADS * 2 * (rearm + 1) * 6;
  printf("exit_alloc: %d blocks allocated in destructors (%d expected), %d failed, %d bytes lost\n", nlate, want, bad,
         lost);
  return nlate == want && !bad && !lost ? 0 : 1;
}
