/*
 * Allocation and free at any point of a thread's exit (public API).
 *
 * A thread's exit runs the destructors of its pthread keys, in rounds of
 * key order, up to PTHREAD_DESTRUCTOR_ITERATIONS rounds while values are
 * set again. jemalloc's own destructor (its key made when it started) tears
 * down its state for the thread, and the heap's destructor its cache; a
 * destructor that runs after them (a key made after the heap), or between
 * them (a key made before it), and frees and allocates must still get blocks
 * of the heap, and free them. Each case runs threads whose destructors free
 * their value and allocate blocks of every kind (small, large, direct,
 * aligned, calloc'd, realloc'd), re-arming their key 0, 1 and
 * PTHREAD_DESTRUCTOR_ITERATIONS - 1 times; the main thread then checks
 * that each block is the heap's and whole, frees it, and checks the heap.
 * In every mode, with and without the debugging aids.
 *
 * Usage: test_exit
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "heaps.h"
#include "pinheap.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)
#define THREADS 4
#define MAX_LATE 4096

static pinheap *heap;
static pthread_key_t key_before, key_after;
static int rearm; /* times each destructor sets its key again */

/* Blocks allocated by destructors, with the byte they were filled with. */
static struct late {
  unsigned char *p;
  size_t size;
  unsigned char fill;
} late[MAX_LATE];
static int nlate;
/* What went wrong in the threads (cmocka's assertions belong to the main
 * thread): failed allocations, lost contents. */
static int bad;
static pthread_mutex_t late_lock = PTHREAD_MUTEX_INITIALIZER;

static void keep(void *p, size_t size, unsigned char fill) {
  pthread_mutex_lock(&late_lock);
  if (!p || nlate == MAX_LATE) {
    bad++;
  } else {
    /* Its first 4 KiB and last byte: the large blocks need not be touched
     * whole. */
    memset(p, fill, size < 4096 ? size : 4096);
    ((unsigned char *)p)[size - 1] = fill;
    late[nlate++] = (struct late){p, size, fill};
  }
  pthread_mutex_unlock(&late_lock);
}

/* A key's value: a block and how many rounds are left to re-arm. */
struct value {
  int rounds;
  unsigned char fill;
};

static struct value *new_value(int rounds, unsigned char fill) {
  struct value *v = pinheap_malloc(heap, 40);
  if (v) *v = (struct value){rounds, fill};
  return v;
}

static void destructor(pthread_key_t key, void *arg) {
  struct value *v = arg;
  if (!v) {
    __atomic_fetch_add(&bad, 1, __ATOMIC_RELAXED);
    return;
  }
  int rounds = v->rounds;
  unsigned char fill = v->fill;
  pinheap_free(heap, v);
  keep(pinheap_malloc(heap, 40), 40, fill);
  keep(pinheap_malloc(heap, 3000), 3000, fill);
  keep(pinheap_malloc(heap, 20 * KiB), 20 * KiB, fill);
  keep(pinheap_malloc(heap, 9 * MiB), 9 * MiB, fill); /* DYNAMIC: a direct block */
  keep(pinheap_aligned_alloc(heap, 4096, 100), 100, fill);
  unsigned char *z = pinheap_calloc(heap, 10, 100);
  for (int i = 0; z && i < 1000; i++)
    if (z[i]) __atomic_fetch_add(&bad, 1, __ATOMIC_RELAXED);
  keep(z, 1000, fill);
  unsigned char *r = pinheap_malloc(heap, 24);
  if (r) memset(r, fill, 24);
  r = r ? pinheap_realloc(heap, r, 5000) : NULL;
  for (int i = 0; r && i < 24; i++)
    if (r[i] != fill) __atomic_fetch_add(&bad, 1, __ATOMIC_RELAXED);
  keep(r, 5000, fill);
  pinheap_free(heap, pinheap_malloc(heap, 200)); /* freed at once */
  if (rounds > 0) pthread_setspecific(key, new_value(rounds - 1, fill));
}

static void destructor_before(void *arg) { destructor(key_before, arg); }
static void destructor_after(void *arg) { destructor(key_after, arg); }

static void *thread_main(void *arg) {
  unsigned char fill = (unsigned char)(uintptr_t)arg;
  /* The heap's cache of this thread exists before the destructors run. */
  pinheap_free(heap, pinheap_malloc(heap, 100));
  pthread_setspecific(key_before, new_value(rearm, fill));
  pthread_setspecific(key_after, new_value(rearm, (unsigned char)(fill + 1)));
  return NULL;
}

static void run_case(pinheap_mode mode, unsigned debug, int rearms) {
  nlate = bad = 0;
  rearm = rearms;
  assert_int_equal(pthread_key_create(&key_before, destructor_before), 0);
  heap = heaps_open(mode, mode == PINHEAP_FIXED ? 512 * MiB : 0, 2, debug);
  assert_int_equal(pthread_key_create(&key_after, destructor_after), 0);
  pinheap_stats s0;
  pinheap_trim(heap);
  assert_int_equal(pinheap_get_stats(heap, &s0), 0);
  for (int t = 0; t < THREADS; t++) {
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, thread_main, (void *)(uintptr_t)(2 * t + 1)), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
  }
  /* Both destructors of every thread ran 1 + rearms times. */
  assert_int_equal(bad, 0);
  assert_int_equal(nlate, THREADS * 2 * (rearms + 1) * 7);
  for (int i = 0; i < nlate; i++) {
    assert_true(pinheap_owns(heap, late[i].p));
    assert_true(pinheap_usable_size(heap, late[i].p) >= late[i].size);
    for (size_t j = 0; j < late[i].size && j < 4096; j += 97) assert_int_equal(late[i].p[j], late[i].fill);
    assert_int_equal(late[i].p[late[i].size - 1], late[i].fill);
    pinheap_free(heap, late[i].p);
  }
  assert_int_equal(pinheap_check(heap), 0);
  pinheap_stats s1;
  pinheap_trim(heap);
  assert_int_equal(pinheap_get_stats(heap, &s1), 0);
  assert_int_equal(s1.allocated, s0.allocated);
  pthread_key_delete(key_after);
  pthread_key_delete(key_before);
  pinheap_destroy(heap);
}

static const pinheap_mode modes[] = {PINHEAP_SIMPLE, PINHEAP_FIXED, PINHEAP_DYNAMIC};

static void test_plain(void **state) {
  (void)state;
  for (int m = 0; m < 3; m++) run_case(modes[m], 0, 0);
}

static void test_rearmed(void **state) {
  (void)state;
  for (int m = 0; m < 3; m++) {
    run_case(modes[m], 0, 1);
    run_case(modes[m], 0, PTHREAD_DESTRUCTOR_ITERATIONS - 1);
  }
}

static void test_debug(void **state) {
  (void)state;
  for (int m = 0; m < 3; m++) run_case(modes[m], PINHEAP_DEBUG_ALL, 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_plain),
      cmocka_unit_test(test_rearmed),
      cmocka_unit_test(test_debug),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
