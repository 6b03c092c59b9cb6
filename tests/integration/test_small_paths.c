/*
 * Integration tests of the small-object paths under the patterns of
 * bench/pattern_bench.h, white-box (the heap's thread registry):
 *
 * - many live blocks of one class: a thread's stack grows to keep them all
 *   (1600 blocks of 16 B, freed, are all still in its cache), then at its
 *   longest hands its older half to jemalloc; a trim empties it and shrinks
 *   it back; FIXED and SIMPLE;
 * - a thread per task: the cache of an exited thread waits, holding
 *   nothing, and the next new thread takes it; a block as large as the
 *   whole free region is had after threads left their caches; many threads
 *   at once, started and ended at random (seed printed, taken as argv[1]);
 * - one thread allocates, another frees: the slabs emptied stay with their
 *   arena (not back in the extent manager), however long they wait (FIXED:
 *   no clock moves them; DYNAMIC and SIMPLE keep them a second), and are
 *   reclaimed before an allocation that needs their room fails;
 * - a miss of an empty stack takes a batch from jemalloc in one call, each
 *   twice the one before up to a bound: the stack then holds the rest,
 *   tagged, and hands them out; a trim starts the batches small again;
 * - objects freed by a thread of another arena: never handed out again by
 *   the freeing thread (its next objects share no cache line with them),
 *   and back in their own arena in batches without a trim, the rest at the
 *   freeing thread's exit or a trim; FIXED and SIMPLE; and those still
 *   waiting in a live thread's batch are reclaimed before an allocation
 *   that needs their room fails;
 * - a block grown by realloc under a large_threshold of 4 KiB stays on
 *   jemalloc's classes up to their largest, then becomes a large block.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "heaps.h"
#include "pinheap.h"
#include "seed.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

/* size: the FIXED heap's region; the other modes grow without a cap. */
static pinheap *open_heap_arenas(pinheap_mode mode, size_t size, unsigned arenas) {
  return heaps_open(mode, mode == PINHEAP_FIXED ? size : 0, arenas, 0);
}

static pinheap *open_heap(pinheap_mode mode, size_t size) { return open_heap_arenas(mode, size, 1); }

typedef struct counted {
  size_t objects, extents;
} counted;

static void count(void *p, size_t bytes, void *arg) {
  (void)p;
  counted *c = arg;
  if (bytes > 14 * KiB)
    c->extents++;
  else
    c->objects++;
}

static size_t cached_objects(pinheap *h) {
  counted c = {0};
  thread_walk_cached(&h->core.threads, count, &c);
  return c.objects;
}

/* ---- many live blocks of one class ---------------------------------------- */

#define MANY 1600

static void many_live(pinheap_mode mode) {
  pinheap *h = open_heap(mode, 64 * MiB);
  static void *p[3 * THREAD_BIN_MAX];
  for (int i = 0; i < MANY; i++) assert_non_null(p[i] = pinheap_malloc(h, 16));
  /* What the last refill took beyond the blocks asked for. */
  size_t spare = cached_objects(h);
  assert_true(spare < THREAD_REFILL_MAX);
  for (int i = 0; i < MANY; i++) pinheap_free(h, p[i]);
  size_t cached = cached_objects(h);
  printf("test_small_paths: %d blocks of 16 B freed, %zu in the thread's cache (%zu there before)\n", MANY, cached,
         spare);
  assert_int_equal(cached, MANY + spare);
  assert_int_equal(pinheap_check(h), 0);
  /* Allocated again, every one from the cache: the stack empties but for
   * the spare ones. */
  for (int i = 0; i < MANY; i++) assert_non_null(p[i] = pinheap_malloc(h, 16));
  assert_int_equal(cached_objects(h), spare);
  /* More than the stack may hold: it keeps between half and all of its
   * most, the rest handed to jemalloc, and a second free of one of those
   * is still caught as one (checked by the keys; the test only counts). */
  int n = 3 * THREAD_BIN_MAX;
  for (int i = MANY; i < n; i++) assert_non_null(p[i] = pinheap_malloc(h, 16));
  for (int i = 0; i < n; i++) pinheap_free(h, p[i]);
  cached = cached_objects(h);
  assert_true(cached >= THREAD_BIN_MAX / 2 && cached <= THREAD_BIN_MAX);
  assert_int_equal(pinheap_check(h), 0);
  /* A trim empties the stack and shrinks it back. */
  pinheap_trim(h);
  assert_int_equal(cached_objects(h), 0);
  thread_cache *tc = thread_enter(&h->core.threads);
  unsigned b = sizeclass_bin(&h->core.classes, 16);
  assert_int_equal(tc->bins[b].limit, THREAD_BIN_START);
  thread_leave(tc);
  assert_int_equal(pinheap_check(h), 0);
  pinheap_destroy(h);
}

static void test_many_live_fixed(void **state) {
  (void)state;
  many_live(PINHEAP_FIXED);
}

static void test_many_live_simple(void **state) {
  (void)state;
  many_live(PINHEAP_SIMPLE);
}

/* ---- a thread per task ---------------------------------------------------- */

typedef struct task {
  pinheap *h;
  thread_cache *tc; /* the cache the thread had */
  unsigned tcache;
} task;

/* Allocates and frees small objects and 5-page blocks (kept in the
 * thread's extent cache), and says which cache it had. */
static void *short_task(void *arg) {
  task *t = arg;
  void *p[32];
  for (int i = 0; i < 32; i++) assert_non_null(p[i] = pinheap_malloc(t->h, i % 2 ? 100 : 20 * KiB));
  for (int i = 0; i < 32; i++) pinheap_free(t->h, p[i]);
  t->tc = thread_enter(&t->h->core.threads);
  assert_non_null(t->tc);
  t->tcache = t->tc->tcache;
  thread_leave(t->tc);
  return NULL;
}

static void run_task(task *t) {
  pthread_t id;
  assert_int_equal(pthread_create(&id, NULL, short_task, t), 0);
  assert_int_equal(pthread_join(id, NULL), 0);
}

static void test_thread_per_task(void **state) {
  (void)state;
  pinheap *h = open_heap(PINHEAP_FIXED, 64 * MiB);
  pinheap_stats s0;
  assert_int_equal(pinheap_get_stats(h, &s0), 0);
  task a = {h, NULL, 0}, b = {h, NULL, 0};
  run_task(&a);
  /* Gone with its thread, but kept: idle, holding nothing. */
  assert_int_equal(thread_count(&h->core.threads), 0);
  printf("test_small_paths: after a thread's exit, %zu cache records live, %u idle\n",
         h->core.threads.pool.live, h->core.threads.idle_count);
  assert_int_equal(h->core.threads.pool.live, 1);
  assert_int_equal(h->core.threads.idle_count, 1);
  assert_int_equal(thread_cached_extent_bytes(&h->core.threads), 0);
  assert_int_equal(pinheap_check(h), 0);
  /* The next thread takes it as it is. */
  run_task(&b);
  assert_ptr_equal(b.tc, a.tc);
  assert_int_equal(b.tcache, a.tcache);
  assert_int_equal(h->core.threads.pool.live, 1);
  /* Nothing of theirs stands in the way of the largest block. */
  void *big = pinheap_malloc(h, s0.largest_free);
  assert_non_null(big);
  pinheap_free(h, big);
  assert_int_equal(pinheap_check(h), 0);
  pinheap_destroy(h);
}

/* Many threads at once, each a few tasks long, started and ended at random;
 * the heap's checker after every wave. */
#define WAVES 20
#define AT_ONCE 6

typedef struct worker {
  pinheap *h;
  uint64_t rng;
} worker;

static void *random_task(void *arg) {
  worker *w = arg;
  void *p[64];
  unsigned n = 1 + (unsigned)(seed_next_r(&w->rng) % 64);
  for (unsigned i = 0; i < n; i++) {
    size_t size = 1 + seed_next_r(&w->rng) % (seed_next_r(&w->rng) % 4 ? 512 : 64 * KiB);
    assert_non_null(p[i] = pinheap_malloc(w->h, size));
    memset(p[i], (int)i, size < 64 ? size : 64);
  }
  for (unsigned i = 0; i < n; i++) pinheap_free(w->h, p[i]);
  return NULL;
}

static void test_thread_churn(void **state) {
  (void)state;
  pinheap *h = open_heap(PINHEAP_FIXED, 128 * MiB);
  for (int wave = 0; wave < WAVES; wave++) {
    pthread_t id[AT_ONCE];
    worker w[AT_ONCE];
    unsigned n = 1 + (unsigned)seed_below(AT_ONCE);
    for (unsigned i = 0; i < n; i++) {
      w[i] = (worker){h, seed_next() | 1};
      assert_int_equal(pthread_create(&id[i], NULL, random_task, &w[i]), 0);
    }
    for (unsigned i = 0; i < n; i++) assert_int_equal(pthread_join(id[i], NULL), 0);
    assert_int_equal(pinheap_check(h), 0);
    assert_true(h->core.threads.idle_count <= THREAD_IDLE_MAX);
    assert_true(h->core.threads.pool.live <= AT_ONCE + THREAD_IDLE_MAX);
  }
  pinheap_stats s;
  pinheap_trim(h);
  assert_int_equal(pinheap_get_stats(h, &s), 0);
  assert_int_equal(s.allocated, 0);
  pinheap_destroy(h);
}

/* ---- one thread allocates, another frees ---------------------------------- */

/* A jemalloc size: the fine path (fine.h) gives its emptied slabs back
 * at once, see test_fine. */
#define OBJ_SIZE 4096
#define OBJS (12 * MiB / OBJ_SIZE)

typedef struct handoff {
  pinheap *h;
  void **p;
} handoff;

static void *consumer(void *arg) {
  handoff *x = arg;
  for (size_t i = 0; i < OBJS; i++) pinheap_free(x->h, x->p[i]);
  return NULL;
}

/* Allocates OBJS objects here and frees them in another thread, which then
 * exits: its cache drained, the slabs emptied. */
static void produce_and_consume(pinheap *h, void **p) {
  for (size_t i = 0; i < OBJS; i++) assert_non_null(p[i] = pinheap_malloc(h, OBJ_SIZE));
  handoff x = {h, p};
  pthread_t id;
  assert_int_equal(pthread_create(&id, NULL, consumer, &x), 0);
  assert_int_equal(pthread_join(id, NULL), 0);
}

static void test_producer_consumer(void **state) {
  (void)state;
  pinheap *h = open_heap(PINHEAP_FIXED, 32 * MiB);
  void **p = calloc(OBJS, sizeof *p);
  assert_non_null(p);
  pinheap_stats s0, s1, s1_later, s2;
  assert_int_equal(pinheap_get_stats(h, &s0), 0);
  produce_and_consume(h, p);
  /* This thread's own cache holds none of them: the consumer freed them. */
  assert_int_equal(pinheap_get_stats(h, &s1), 0);
  /* However long they wait, no clock hands them to the manager: jemalloc's
   * decay of the arena, run over a second later (as its own ticks would
   * run it), finds nothing due, and where the next blocks land does not
   * depend on how fast the program ran. */
  struct timespec pause = {1, 100 * 1000 * 1000};
  assert_int_equal(nanosleep(&pause, NULL), 0);
  char decay[64];
  snprintf(decay, sizeof decay, "arena.%u.decay", h->core.arenas.index[0]);
  assert_int_equal(mallctl(decay, NULL, NULL, NULL, 0), 0);
  assert_int_equal(pinheap_get_stats(h, &s1_later), 0);
  assert_int_equal(s1_later.free_bytes, s1.free_bytes);
  pinheap_trim(h);
  assert_int_equal(pinheap_get_stats(h, &s2), 0);
  printf("test_small_paths: %zu MiB freed by another thread: %zu KiB kept by the arena, free %zu KiB at start, "
         "%zu KiB after a trim\n",
         (size_t)(OBJS * OBJ_SIZE / MiB), (s2.free_bytes - s1.free_bytes) / KiB, s0.free_bytes / KiB,
         s2.free_bytes / KiB);
  /* The emptied slabs stayed with the arena until the trim. */
  assert_true(s2.free_bytes - s1.free_bytes >= 4 * MiB);
  assert_true(s2.free_bytes + 2 * MiB >= s0.free_bytes);
  /* Again, and then a block that needs their room: had at the first try,
   * the kept slabs reclaimed on the way. */
  produce_and_consume(h, p);
  void *big = pinheap_malloc(h, s0.largest_free * 3 / 4);
  assert_non_null(big);
  pinheap_free(h, big);
  assert_int_equal(pinheap_check(h), 0);
  free(p);
  pinheap_destroy(h);
}

/* A FIXED heap's arenas keep what they free until a reclaim, a DYNAMIC or
 * SIMPLE heap's for HOOKS_KEEP_MS (hooks.h), as jemalloc has it; the
 * checker tells an arena that keeps them otherwise. */
static void test_keep_by_mode(void **state) {
  (void)state;
  const pinheap_mode modes[] = {PINHEAP_FIXED, PINHEAP_DYNAMIC, PINHEAP_SIMPLE};
  for (size_t m = 0; m < sizeof modes / sizeof *modes; m++) {
    pinheap *h = open_heap(modes[m], 32 * MiB);
    arenas *a = &h->core.arenas;
    ssize_t want = modes[m] == PINHEAP_FIXED ? HOOKS_KEEP_UNTIL_PURGED : HOOKS_KEEP_MS;
    assert_int_equal(a->keep_ms, want);
    assert_int_equal(hooks_arena_keep_ms(&a->arena[0]), want);
    assert_int_equal(pinheap_check(h), 0);
    a->keep_ms = want == HOOKS_KEEP_MS ? HOOKS_KEEP_UNTIL_PURGED : HOOKS_KEEP_MS;
    assert_int_not_equal(arenas_check(a), 0);
    a->keep_ms = want;
    pinheap_destroy(h);
  }
}

/* ---- a stack miss takes a batch ----------------------------------------- */

/* Objects on the calling thread's stacks after a malloc(48). */
static size_t malloc_48_leaves(pinheap *h, void **p) {
  assert_non_null(*p = pinheap_malloc(h, 48));
  memset(*p, 0xa5, 48);
  return cached_objects(h);
}

static void test_refill(void **state) {
  (void)state;
  pinheap *h = open_heap(PINHEAP_FIXED, 64 * MiB);
  unsigned b = sizeclass_bin(&h->core.classes, 48);
  unsigned most = h->core.threads.refill[b];
  assert_true(h->core.threads.batch_mib_len == 0 || most > THREAD_REFILL_START * 2); /* jemalloc 5.3 has batch_alloc */
  /* A first miss takes one object, the next THREAD_REFILL_START, the next
   * twice that, up to most. */
  static void *p[4 * THREAD_REFILL_MAX];
  unsigned n = 0, batch = 1;
  size_t left[3];
  for (int miss = 0; miss < 3; miss++, batch = !most ? 1 : batch == 1 ? THREAD_REFILL_START : batch * 2) {
    left[miss] = malloc_48_leaves(h, &p[n++]);
    assert_int_equal(left[miss], batch - 1);
    for (unsigned i = 1; i < batch; i++) {
      assert_int_equal(malloc_48_leaves(h, &p[n]), batch - 1 - i);
      for (unsigned j = 0; j < n; j++) assert_ptr_not_equal(p[n], p[j]);
      n++;
    }
  }
  printf("test_small_paths: malloc(48) from an empty stack, three times: %zu, %zu, %zu objects left on the stack "
         "(batches up to %u)\n", left[0], left[1], left[2], most);
  assert_int_equal(pinheap_check(h), 0);
  for (unsigned i = 0; i < n; i++) pinheap_free(h, p[i]);
  /* A trim empties the stack and starts its batches small again; calloc
   * through a refill: zeroed. */
  pinheap_trim(h);
  unsigned char *z = pinheap_calloc(h, 1, 48);
  assert_non_null(z);
  for (int i = 0; i < 48; i++) assert_int_equal(z[i], 0);
  assert_int_equal(cached_objects(h), 0);
  pinheap_free(h, z);
  assert_int_equal(pinheap_check(h), 0);
  pinheap_destroy(h);
}

/* ---- objects freed by a thread of another arena ----------------------------- */

#define REMOTE_OBJS 1000
#define REMOTE_NEW 64
#define LINE 64

typedef struct remote_case {
  pinheap *h;
  void **theirs;        /* REMOTE_OBJS objects of 8 B of the main thread's arena */
  unsigned their_owner; /* its slot */
  unsigned owner;       /* the freeing thread's slot */
  size_t live_before, live_after; /* the main thread's arena's live 8 B objects */
  size_t shared_lines;  /* new objects of the freeing thread on a line of theirs */
  void *mine[REMOTE_NEW];
} remote_case;

/* Live objects of the size class of 8 B in the heap's arena of slot owner
 * (held by tcaches counts as live: jemalloc's curregs). */
static size_t arena_live_8(pinheap *h, unsigned owner) {
  hooks_stats_refresh();
  return hooks_arena_live(&h->core.arenas.arena[owner], sizeclass_bin(&h->core.classes, 8));
}

/* The slot of the calling thread's arena in the heap's set. */
static unsigned my_slot(pinheap *h) {
  thread_cache *tc = thread_enter(&h->core.threads);
  assert_non_null(tc);
  unsigned slot = 0;
  while (slot < ARENAS_MAX && h->core.arenas.index[slot] != tc->arena) slot++;
  thread_leave(tc);
  assert_true(slot < ARENAS_MAX);
  return slot;
}

static void *remote_freer(void *arg) {
  remote_case *c = arg;
  c->owner = my_slot(c->h);
  c->live_before = arena_live_8(c->h, c->their_owner);
  for (int i = 0; i < REMOTE_OBJS; i++) pinheap_free(c->h, c->theirs[i]);
  c->live_after = arena_live_8(c->h, c->their_owner);
  for (int i = 0; i < REMOTE_NEW; i++) {
    assert_non_null(c->mine[i] = pinheap_malloc(c->h, 8));
    int k = 0;
    while (k < REMOTE_OBJS && (uintptr_t)c->mine[i] / LINE != (uintptr_t)c->theirs[k] / LINE) k++;
    c->shared_lines += k < REMOTE_OBJS;
  }
  return NULL;
}

static void remote_free(pinheap_mode mode) {
  pinheap *h = open_heap_arenas(mode, 64 * MiB, 2);
  static void *theirs[REMOTE_OBJS];
  remote_case c = {.h = h, .theirs = theirs};
  for (int i = 0; i < REMOTE_OBJS; i++) assert_non_null(theirs[i] = pinheap_malloc(h, 8));
  c.their_owner = my_slot(h);
  pthread_t id;
  assert_int_equal(pthread_create(&id, NULL, remote_freer, &c), 0);
  assert_int_equal(pthread_join(id, NULL), 0);
  size_t live_exit = arena_live_8(h, c.their_owner);
  printf("test_small_paths: %s: %d objects of 8 B of arena %u freed by a thread of arena %u: their arena's live "
         "objects %zu before, %zu after; %zu of the freeing thread's %d next objects on a cache line of theirs\n",
         mode == PINHEAP_FIXED ? "FIXED" : "SIMPLE", REMOTE_OBJS, c.their_owner, c.owner, c.live_before,
         c.live_after, c.shared_lines, REMOTE_NEW);
  assert_int_not_equal(c.owner, c.their_owner); /* the test's premise: two arenas, a thread on each */
  assert_int_equal(c.shared_lines, 0);
  /* Back to their arena in batches as they were freed, no trim needed. */
  assert_true(c.live_after + REMOTE_OBJS / 2 <= c.live_before);
  /* The rest at the freeing thread's exit. */
  assert_int_equal(live_exit, c.live_before - REMOTE_OBJS);
  /* The freeing thread's objects, freed here, wait in this thread's remote
   * batch; a trim hands them back: none of that size is left live. */
  for (int i = 0; i < REMOTE_NEW; i++) pinheap_free(h, c.mine[i]);
  assert_int_equal(pinheap_check(h), 0);
  pinheap_trim(h);
  assert_int_equal(arena_live_8(h, c.owner), 0);
  assert_int_equal(arena_live_8(h, c.their_owner), 0);
  assert_int_equal(pinheap_check(h), 0);
  pinheap_destroy(h);
}

static void test_remote_free_fixed(void **state) {
  (void)state;
  remote_free(PINHEAP_FIXED);
}

static void test_remote_free_simple(void **state) {
  (void)state;
  remote_free(PINHEAP_SIMPLE);
}

/* Frees the producer's objects (of its arena), then stays alive, its
 * remote batch not flushed, until the producer is done. */
typedef struct parked {
  handoff x;
  pthread_barrier_t freed, done;
} parked;

static void *remote_parker(void *arg) {
  parked *k = arg;
  consumer(&k->x);
  pthread_barrier_wait(&k->freed);
  pthread_barrier_wait(&k->done);
  return NULL;
}

static void test_remote_parked(void **state) {
  (void)state;
  pinheap *h = open_heap_arenas(PINHEAP_FIXED, 32 * MiB, 2);
  void **p = calloc(OBJS, sizeof *p);
  assert_non_null(p);
  pinheap_stats s0;
  assert_int_equal(pinheap_get_stats(h, &s0), 0);
  for (size_t i = 0; i < OBJS; i++) assert_non_null(p[i] = pinheap_malloc(h, OBJ_SIZE));
  parked k = {.x = {h, p}};
  pthread_barrier_init(&k.freed, NULL, 2);
  pthread_barrier_init(&k.done, NULL, 2);
  pthread_t id;
  assert_int_equal(pthread_create(&id, NULL, remote_parker, &k), 0);
  pthread_barrier_wait(&k.freed);
  /* Needs the room of slabs whose objects wait in the live thread's batch. */
  void *big = pinheap_malloc(h, s0.largest_free * 3 / 4);
  assert_non_null(big);
  pinheap_free(h, big);
  assert_int_equal(pinheap_check(h), 0);
  pthread_barrier_wait(&k.done);
  assert_int_equal(pthread_join(id, NULL), 0);
  pthread_barrier_destroy(&k.freed);
  pthread_barrier_destroy(&k.done);
  free(p);
  pinheap_destroy(h);
}

/* ---- a block grown by realloc under a low large_threshold ----------------- */

/* Grown from 3000 bytes by half at a time under large_threshold 4 KiB, a
 * block stays on jemalloc's classes up to the largest (14 KiB), and only
 * then becomes a large block, its bytes kept at every step. */
static void test_grow_below_classes(void **state) {
  (void)state;
  pinheap_options o;
  pinheap_options_init(&o);
  o.size = 32 * MiB;
  o.arenas = 1;
  o.large_threshold = 4 * KiB;
  pinheap *h = pinheap_create(&o);
  assert_non_null(h);
  size_t n = 3000;
  unsigned char *p = pinheap_malloc(h, n);
  assert_non_null(p);
  memset(p, 0x5a, n);
  pinheap_stats s;
  while (n < 20 * KiB) {
    size_t next = n + n / 2;
    p = pinheap_realloc(h, p, next);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++) assert_int_equal(p[i], 0x5a);
    memset(p, 0x5a, next);
    n = next;
    assert_int_equal(pinheap_get_stats(h, &s), 0);
    printf("test_small_paths: grown to %zu bytes: %zu large blocks\n", n, s.large_blocks);
    assert_int_equal(s.large_blocks, n > 14 * KiB);
  }
  pinheap_free(h, p);
  assert_int_equal(pinheap_check(h), 0);
  pinheap_destroy(h);
}

int main(int argc, char **argv) {
  seed_init(argc, argv, "test_small_paths");
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_many_live_fixed),  cmocka_unit_test(test_many_live_simple),
      cmocka_unit_test(test_thread_per_task),  cmocka_unit_test(test_thread_churn),
      cmocka_unit_test(test_producer_consumer), cmocka_unit_test(test_keep_by_mode),
      cmocka_unit_test(test_remote_free_fixed), cmocka_unit_test(test_remote_free_simple),
      cmocka_unit_test(test_refill),           cmocka_unit_test(test_remote_parked),
      cmocka_unit_test(test_grow_below_classes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
