/*
 * Tests of the gate the fork handlers close (gate.h): who passes, who waits,
 * who refuses; and of what a heap's extent hooks do while it is closed
 * (jemalloc gets a failed allocation and keeps an extent it could not give
 * back, and the heap stays consistent).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "gate.h"
#include "api.h"
#include "pinheap.h"

#define MiB ((size_t)1 << 20)

static gate g;
static atomic_int entered, left;

static void pause_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
  nanosleep(&ts, NULL);
}

static void test_try_and_close(void **state) {
  (void)state;
  gate_init(&g);
  assert_true(gate_try(&g));
  gate_leave(&g);
  assert_int_equal(gate_check(&g), 0);
  gate_close(&g); /* nobody inside: returns at once */
  assert_false(gate_try(&g));
  assert_int_equal(atomic_load(&g.inside), 0); /* the refused thread backed off */
  assert_int_equal(gate_check(&g), 1);
  gate_open(&g);
  assert_true(gate_try(&g));
  gate_leave(&g);
  /* A child forgets the threads counted at the fork. */
  atomic_store(&g.inside, 3);
  atomic_store(&g.closed, true);
  gate_reset(&g);
  assert_int_equal(atomic_load(&g.inside), 0);
  assert_int_equal(gate_check(&g), 0);
}

static void *stay_inside(void *arg) {
  (void)arg;
  gate_enter(&g);
  atomic_store(&entered, 1);
  pause_ms(50);
  atomic_store(&left, 1);
  gate_leave(&g);
  return NULL;
}

/* gate_close returns only once the thread inside has left. */
static void test_close_waits_for_those_inside(void **state) {
  (void)state;
  gate_init(&g);
  atomic_store(&entered, 0);
  atomic_store(&left, 0);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, stay_inside, NULL), 0);
  while (!atomic_load(&entered)) pause_ms(1);
  gate_close(&g);
  assert_int_equal(atomic_load(&left), 1);
  gate_open(&g);
  pthread_join(t, NULL);
}

static void *pass(void *arg) {
  (void)arg;
  gate_enter(&g);
  atomic_store(&entered, 1);
  gate_leave(&g);
  return NULL;
}

/* gate_enter waits while the gate is closed. */
static void test_enter_waits_while_closed(void **state) {
  (void)state;
  gate_init(&g);
  atomic_store(&entered, 0);
  gate_close(&g);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, pass, NULL), 0);
  pause_ms(50);
  assert_int_equal(atomic_load(&entered), 0);
  gate_open(&g);
  pthread_join(t, NULL);
  assert_int_equal(atomic_load(&entered), 1);
}

/* While a heap's gate is closed its hooks refuse: jemalloc fails an
 * allocation that needs a new extent and keeps the extent it cannot give
 * back; both are fine once the gate opens, and the heap stays consistent. */
static void test_hooks_refuse_while_closed(void **state) {
  (void)state;
  pinheap_options o;
  pinheap_options_init(&o);
  o.size = 64 * MiB;
  o.arenas = 1;
  pinheap *h = pinheap_create(&o);
  assert_non_null(h);
  int flags = (int)(MALLOCX_ARENA(arenas_first(&h->core.arenas)) | MALLOCX_TCACHE_NONE);
  pinheap_stats before;
  assert_int_equal(pinheap_get_stats(h, &before), 0);
  gate_close(&h->core.gate);
  assert_null(mallocx(4 * MiB, flags)); /* more than the arena keeps: a new extent */
  gate_open(&h->core.gate);
  void *p = mallocx(4 * MiB, flags);
  assert_non_null(p);
  assert_int_equal(pinheap_check(h), 0);
  gate_close(&h->core.gate);
  dallocx(p, MALLOCX_TCACHE_NONE); /* dalloc refused: jemalloc keeps the extent */
  gate_open(&h->core.gate);
  assert_int_equal(pinheap_check(h), 0);
  pinheap_stats kept;
  assert_int_equal(pinheap_get_stats(h, &kept), 0);
  assert_true(kept.in_use >= before.in_use + 4 * MiB);
  p = mallocx(4 * MiB, flags); /* from what jemalloc kept */
  assert_non_null(p);
  dallocx(p, MALLOCX_TCACHE_NONE);
  assert_int_equal(pinheap_check(h), 0);
  pinheap_destroy(h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_try_and_close),
      cmocka_unit_test(test_close_waits_for_those_inside),
      cmocka_unit_test(test_enter_waits_while_closed),
      cmocka_unit_test(test_hooks_refuse_while_closed),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
