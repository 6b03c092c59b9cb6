/*
 * Unit tests of thread (src/thread.h): the threads' caches of a registry,
 * without a heap, over jemalloc's own arena 0 and a fake extent manager
 * (release_extent records what comes back). A cache made on first enter
 * and found again; the limits of its stacks; what the caches hold walked
 * and drained by a flush (objects to jemalloc with the registry's mark in
 * their first bytes, extents to release_extent); a flush waits for an owner
 * inside its cache; an exiting thread's cache drained and kept idle for the
 * next thread; a stack that overflows grows, then spills half; the FIFO of
 * held-back objects; the fork steps; thread_check after each step.
 */
#include <errno.h>
#include <jemalloc/jemalloc.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include <cmocka.h>

#include "thread.h"

#define PAGE ((size_t)4096)
#define MARK 0x6D61726B65640001ull

/* The fake manager: the extents given back, in order. */
typedef struct released {
  pthread_mutex_t lock;
  void *addr[64];
  size_t bytes[64];
  unsigned count;
} released;

static void release_extent(void *ctx, void *addr, size_t bytes) {
  released *r = ctx;
  pthread_mutex_lock(&r->lock);
  assert_true(r->count < 64);
  r->addr[r->count] = addr;
  r->bytes[r->count++] = bytes;
  pthread_mutex_unlock(&r->lock);
}

static unsigned arena_zero(void *ctx, unsigned *slot) {
  *slot = 0;
  (void)ctx;
  return 0;
}

typedef struct fixture {
  sizeclass classes;
  thread_registry reg;
  released released;
  char *extents; /* addresses for the extent stacks, never touched */
} fixture;

static fixture *open_registry(uint32_t hold) {
  fixture *f = calloc(1, sizeof *f);
  assert_non_null(f);
  pthread_mutex_init(&f->released.lock, NULL);
  assert_int_equal(sizeclass_init(&f->classes, PAGE), 0);
  assert_int_equal(thread_registry_init(&f->reg, &f->classes, PAGE, release_extent, &f->released, arena_zero, NULL), 0);
  f->reg.free_mark = MARK;
  f->reg.hold = hold;
  f->extents = mmap(NULL, 64 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  assert_true(f->extents != MAP_FAILED);
  return f;
}

static void close_registry(fixture *f) {
  assert_int_equal(thread_check(&f->reg), 0);
  thread_registry_fini(&f->reg);
  munmap(f->extents, 64 * PAGE);
  pthread_mutex_destroy(&f->released.lock);
  free(f);
}

static void test_enter(void **state) {
  (void)state;
  fixture *f = open_registry(0);
  assert_int_equal(thread_count(&f->reg), 0);
  thread_cache *tc = thread_enter(&f->reg);
  assert_non_null(tc);
  assert_int_equal(atomic_load(&tc->busy), 1);
  thread_leave(tc);
  assert_int_equal(atomic_load(&tc->busy), 0);
  assert_int_equal(thread_count(&f->reg), 1);
  /* Found again, by the fast path. */
  assert_ptr_equal(thread_enter(&f->reg), tc);
  thread_leave(tc);
  assert_int_equal(thread_count(&f->reg), 1);
  assert_int_equal(tc->arena, 0);
  /* Each bin keeps 4 to 256 objects, at most 64 KiB; the extent cache
   * starts empty. */
  for (unsigned b = 0; b < f->classes.nbins; b++) {
    uint32_t l = tc->bins[b].limit;
    assert_true(l >= 4 && l <= 256);
    assert_true(l == 4 || l * f->classes.size[b] <= (64u << 10));
  }
  assert_int_equal(tc->extents.count, 0);
  assert_int_equal(tc->extents.bytes, 0);
  assert_int_equal(tc->held.limit, 0);
  assert_int_equal(thread_check(&f->reg), 0);
  /* Another registry: another cache. */
  fixture *g = open_registry(0);
  thread_cache *tg = thread_enter(&g->reg);
  assert_non_null(tg);
  assert_ptr_not_equal(tg, tc);
  thread_leave(tg);
  close_registry(g);
  assert_ptr_equal(thread_enter(&f->reg), tc);
  thread_leave(tc);
  close_registry(f);
}

typedef struct seen {
  size_t objects, object_bytes, extents, extent_bytes;
} seen;

static void visit(void *p, size_t bytes, void *arg) {
  seen *s = arg;
  if ((uintptr_t)p % PAGE == 0 && bytes % PAGE == 0 && bytes >= PAGE) {
    s->extents++;
    s->extent_bytes += bytes;
  } else {
    s->objects++;
    s->object_bytes += bytes;
  }
}

/* Fills tc's stacks: n objects of bin b, and one extent of each length
 * from 1 to e pages. */
static void fill(fixture *f, thread_cache *tc, unsigned b, unsigned n, void **objects, unsigned e) {
  for (unsigned i = 0; i < n; i++) {
    objects[i] = mallocx(f->classes.size[b], tc->alloc_flags);
    assert_non_null(objects[i]);
    assert_true(thread_bin_push(&tc->bins[b], objects[i]));
  }
  for (unsigned i = 0; i < e; i++) xcache_put(&tc->extents, f->extents + 4 * i * PAGE, (i + 1) * PAGE, release_extent, &f->released);
}

static void test_flush(void **state) {
  (void)state;
  fixture *f = open_registry(0);
  thread_cache *tc = thread_enter(&f->reg);
  unsigned b = 3;
  void *objects[4];
  fill(f, tc, b, 4, objects, 3);
  assert_true(thread_bin_holds(&tc->bins[b], objects[2]));
  thread_leave(tc);
  seen s = {0};
  thread_walk_cached(&f->reg, visit, &s);
  assert_int_equal(s.objects, 4);
  assert_int_equal(s.object_bytes, 4 * f->classes.size[b]);
  assert_int_equal(s.extents, 3);
  assert_int_equal(s.extent_bytes, 6 * PAGE);
  assert_int_equal(thread_cached_extent_bytes(&f->reg), 6 * PAGE);
  assert_int_equal(thread_check(&f->reg), 0);
  thread_flush_all(&f->reg);
  assert_int_equal(tc->bins[b].count, 0);
  assert_int_equal(thread_cached_extent_bytes(&f->reg), 0);
  /* The objects went to jemalloc with the mark, mixed with each one's
   * address, in their first bytes. */
  for (unsigned i = 0; i < 4; i++) {
    uint64_t w;
    memcpy(&w, objects[i], sizeof w);
    assert_int_equal(w, util_mark_at(MARK, objects[i]));
  }
  /* The extents to the manager, each with its length. */
  assert_int_equal(f->released.count, 3);
  size_t total = 0;
  for (unsigned i = 0; i < 3; i++) {
    size_t pages = ((char *)f->released.addr[i] - f->extents) / (4 * PAGE) + 1;
    assert_int_equal(f->released.bytes[i], pages * PAGE);
    total += f->released.bytes[i];
  }
  assert_int_equal(total, 6 * PAGE);
  close_registry(f);
}

typedef struct owner {
  fixture *f;
  _Atomic int inside, left;
} owner;

static void *owner_thread(void *arg) {
  owner *o = arg;
  thread_cache *tc = thread_enter(&o->f->reg);
  assert_non_null(tc);
  xcache_put(&tc->extents, o->f->extents, PAGE, release_extent, &o->f->released);
  atomic_store(&o->inside, 1);
  struct timespec pause = {0, 50 * 1000 * 1000};
  nanosleep(&pause, NULL);
  atomic_store(&o->left, 1);
  thread_leave(tc);
  return NULL;
}

/* A flush waits for an owner inside its cache, then drains it. */
static void test_flush_waits(void **state) {
  (void)state;
  fixture *f = open_registry(0);
  owner o = {.f = f};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, owner_thread, &o), 0);
  while (!atomic_load(&o.inside)) sched_yield();
  thread_flush_all(&f->reg);
  assert_int_equal(atomic_load(&o.left), 1);
  assert_int_equal(f->released.count, 1);
  pthread_join(t, NULL);
  close_registry(f);
}

static void *exiting_thread(void *arg) {
  fixture *f = arg;
  thread_cache *tc = thread_enter(&f->reg);
  assert_non_null(tc);
  void *objects[2];
  fill(f, tc, 1, 2, objects, 2);
  thread_leave(tc);
  return NULL;
}

/* Takes a cache and keeps its thread alive until release_held. */
static _Atomic int release_held;
static void *held_thread(void *arg) {
  fixture *f = arg;
  thread_cache *tc = thread_enter(&f->reg);
  assert_non_null(tc);
  thread_leave(tc);
  while (!atomic_load(&release_held)) sched_yield();
  return NULL;
}

static void *cache_of_thread(void *arg) {
  fixture *f = arg;
  thread_cache *tc = thread_enter(&f->reg);
  assert_non_null(tc);
  thread_leave(tc);
  return tc;
}

/* An exiting thread's cache is drained and waits, idle, for the next new
 * thread, which takes it; past THREAD_IDLE_MAX idle caches, one goes. */
static void test_exit(void **state) {
  (void)state;
  fixture *f = open_registry(0);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, exiting_thread, f), 0);
  pthread_join(t, NULL);
  assert_int_equal(thread_count(&f->reg), 0);
  assert_int_equal(f->released.count, 2);
  assert_int_equal(f->reg.idle_count, 1);
  thread_cache *idle = f->reg.idle;
  assert_non_null(idle);
  assert_true(idle->idle);
  assert_int_equal(thread_check(&f->reg), 0);
  void *got;
  assert_int_equal(pthread_create(&t, NULL, cache_of_thread, f), 0);
  pthread_join(t, &got);
  assert_ptr_equal(got, idle);
  assert_int_equal(f->reg.idle_count, 1);
  /* THREAD_IDLE_MAX + 1 threads at once: one cache too many when they end. */
  pthread_t many[THREAD_IDLE_MAX + 1];
  thread_cache *mine = thread_enter(&f->reg); /* the main thread's, never idle */
  thread_leave(mine);
  for (unsigned i = 0; i <= THREAD_IDLE_MAX; i++) assert_int_equal(pthread_create(&many[i], NULL, held_thread, f), 0);
  while (thread_count(&f->reg) < THREAD_IDLE_MAX + 2) sched_yield();
  atomic_store(&release_held, 1);
  for (unsigned i = 0; i <= THREAD_IDLE_MAX; i++) pthread_join(many[i], NULL);
  atomic_store(&release_held, 0);
  assert_int_equal(f->reg.idle_count, THREAD_IDLE_MAX);
  assert_int_equal(thread_count(&f->reg), 1);
  assert_int_equal(f->reg.pool.live, THREAD_IDLE_MAX + 1);
  assert_int_equal(thread_check(&f->reg), 0);
  close_registry(f);
}

/* A stack of objects that overflows doubles, up to its cap; at its cap it
 * hands its older half to jemalloc, marked; a flush shrinks it back. */
static void test_spill(void **state) {
  (void)state;
  fixture *f = open_registry(0);
  thread_cache *tc = thread_enter(&f->reg);
  unsigned b = sizeclass_bin(&f->classes, 16);
  thread_bin *bin = &tc->bins[b];
  assert_int_equal(bin->cap, THREAD_BIN_MAX);
  assert_int_equal(bin->limit, THREAD_BIN_START);
  static void *objects[THREAD_BIN_MAX + 1];
  for (unsigned i = 0; i <= THREAD_BIN_MAX; i++) {
    objects[i] = mallocx(16, tc->alloc_flags);
    assert_non_null(objects[i]);
    if (!thread_bin_push(bin, objects[i])) {
      uint32_t before = bin->limit;
      thread_bin_spill(tc, b, objects[i]);
      assert_int_equal(bin->limit, before < bin->cap ? 2 * before : bin->cap);
    }
    assert_int_equal(thread_check(&f->reg), 0);
  }
  /* THREAD_BIN_MAX held, then the one more: the oldest half went. */
  assert_int_equal(bin->count, THREAD_BIN_MAX / 2 + 1);
  assert_ptr_equal(bin->slots[0], objects[THREAD_BIN_MAX / 2]);
  for (unsigned i = 0; i < THREAD_BIN_MAX / 2; i++) {
    uint64_t w;
    memcpy(&w, objects[i], sizeof w);
    assert_int_equal(w, util_mark_at(MARK, objects[i]));
  }
  thread_leave(tc);
  thread_flush_all(&f->reg);
  assert_int_equal(bin->count, 0);
  assert_int_equal(bin->limit, THREAD_BIN_START);
  close_registry(f);
}

/* The FIFO of held-back objects: the oldest pushed out first, with its bin;
 * walked with its bin's size; drained by a flush. */
static void test_held(void **state) {
  (void)state;
  fixture *f = open_registry(3);
  thread_cache *tc = thread_enter(&f->reg);
  assert_int_equal(tc->held.limit, 3);
  void *objects[5];
  void *out = NULL;
  unsigned out_bin = 0;
  for (unsigned i = 0; i < 5; i++) {
    objects[i] = mallocx(f->classes.size[i], tc->alloc_flags);
    assert_non_null(objects[i]);
    bool evicted = thread_fifo_push(&tc->held, objects[i], i, &out, &out_bin);
    assert_int_equal(evicted, i >= 3);
    if (evicted) {
      assert_ptr_equal(out, objects[i - 3]);
      assert_int_equal(out_bin, i - 3);
      dallocx(out, tc->free_flags);
    }
  }
  thread_leave(tc);
  seen s = {0};
  thread_walk_cached(&f->reg, visit, &s);
  assert_int_equal(s.objects, 3);
  assert_int_equal(s.object_bytes, f->classes.size[2] + f->classes.size[3] + f->classes.size[4]);
  assert_int_equal(thread_check(&f->reg), 0);
  thread_flush_all(&f->reg);
  assert_int_equal(tc->held.count, 0);
  close_registry(f);
}

/* The fork steps in the parent: every cache stolen, then handed back. */
static void test_fork_steps(void **state) {
  (void)state;
  fixture *f = open_registry(0);
  thread_cache *tc = thread_enter(&f->reg);
  thread_leave(tc);
  thread_fork_prepare(&f->reg);
  assert_int_equal(atomic_load(&tc->stolen), 1);
  thread_fork_parent(&f->reg);
  assert_int_equal(atomic_load(&tc->stolen), 0);
  assert_int_equal(thread_check(&f->reg), 0);
  assert_ptr_equal(thread_enter(&f->reg), tc);
  thread_leave(tc);
  close_registry(f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_enter), cmocka_unit_test(test_flush), cmocka_unit_test(test_flush_waits),
      cmocka_unit_test(test_exit),  cmocka_unit_test(test_held),  cmocka_unit_test(test_fork_steps),
      cmocka_unit_test(test_spill),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
