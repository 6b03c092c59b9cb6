/*
 * Integration test of the threads' caches of medium extents (src/xcache.h)
 * in a FIXED heap, looking inside the handle (api.h) for what the caches
 * hold: near full a freed block goes back at once; with room, blocks of
 * 64 KiB freed by a thread stay in that thread's cache, counted by the
 * checker and not given back to the extent manager; another thread's
 * request that only those extents (merged with their free neighbours) can
 * serve empties every cache and succeeds instead of answering ENOMEM; a
 * thread freeing many keeps at most the bound; an exiting thread's cache
 * goes back; calloc of a cached extent zeroes it. Blocks of 64 KiB - 1 MiB
 * stay in the freeing thread's cache only when another thread holds the
 * extent manager's lock (the free does not wait for it) and for the
 * thread's next few frees of such blocks, and another
 * thread's request that only such an extent can serve succeeds; such
 * kept extents join their kept neighbours, and one an eighth longer than
 * a request at most is handed out whole; a window of kept frees that saw
 * a thread wait at the manager's lock is followed by another. A request
 * of at most 64 KiB takes a cached extent up to a quarter longer whole.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "heaps.h"
#include "pinheap.h"

#define MiB ((size_t)1 << 20)
#define KiB ((size_t)1 << 10)
#define BLOCK (64 * KiB) /* XCACHE_BLOCK_MAX */
#define BLOCKS_MAX 1100

/* The other thread: frees blocks [from, to) when told (or, size not 0,
 * allocates size bytes into got), until told to end; one request at a
 * time. */
typedef struct other {
  pinheap *h;
  void **blocks;
  unsigned from, to;
  size_t size;
  void *got;
  bool end;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  unsigned asked, done;
} other;

static void *other_main(void *arg) {
  other *o = arg;
  pthread_mutex_lock(&o->lock);
  for (;;) {
    while (o->asked == o->done) pthread_cond_wait(&o->cond, &o->lock);
    if (o->end) break;
    unsigned from = o->from, to = o->to;
    size_t size = o->size;
    /* Unlocked meanwhile: a free that waits must not keep the asker from
     * seeing that it waits. */
    pthread_mutex_unlock(&o->lock);
    void *got = size ? pinheap_malloc(o->h, size) : NULL;
    for (unsigned i = from; i < to; i++) pinheap_free(o->h, o->blocks[i]);
    pthread_mutex_lock(&o->lock);
    o->got = got;
    o->done++;
    pthread_cond_broadcast(&o->cond);
  }
  pthread_mutex_unlock(&o->lock);
  return NULL;
}

/* Has the other thread free blocks [from, to); o's lock held. */
static void other_ask(other *o, unsigned from, unsigned to) {
  o->from = from;
  o->to = to;
  o->size = 0;
  o->asked++;
  pthread_cond_broadcast(&o->cond);
}


/* other_free, waiting at most seconds: whether the other thread has
 * freed them by then (else it is still at it). */
static bool other_free_within(other *o, unsigned from, unsigned to, int seconds) {
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += seconds;
  pthread_mutex_lock(&o->lock);
  other_ask(o, from, to);
  int err = 0;
  while (o->done != o->asked && err != ETIMEDOUT) err = pthread_cond_timedwait(&o->cond, &o->lock, &until);
  bool done = o->done == o->asked;
  pthread_mutex_unlock(&o->lock);
  return done;
}

/* Waits until the other thread has done what it was asked. */
static void other_wait(other *o) {
  pthread_mutex_lock(&o->lock);
  while (o->done != o->asked) pthread_cond_wait(&o->cond, &o->lock);
  pthread_mutex_unlock(&o->lock);
}

/* Has the other thread free blocks [from, to), and waits until it has. */
static void other_free(other *o, unsigned from, unsigned to) {
  pthread_mutex_lock(&o->lock);
  other_ask(o, from, to);
  pthread_mutex_unlock(&o->lock);
  other_wait(o);
}

/* other_free while this thread holds the extent manager's lock: the frees
 * must not wait for it (they keep their extents). */
static void other_free_at_held_lock(other *o, unsigned from, unsigned to) {
  pthread_mutex_lock(&o->h->core.space.em.lock);
  assert_true(other_free_within(o, from, to, 5));
  pthread_mutex_unlock(&o->h->core.space.em.lock);
}

/* Has the other thread allocate size bytes: the block. */
static void *other_malloc(other *o, size_t size) {
  pthread_mutex_lock(&o->lock);
  other_ask(o, 0, 0);
  o->size = size;
  pthread_mutex_unlock(&o->lock);
  other_wait(o);
  return o->got;
}

/* Starts the other thread, in *t, over the heap's blocks. */
static void other_start(other *o, pinheap *h, void **blocks, pthread_t *t) {
  *o = (other){.h = h, .blocks = blocks};
  pthread_mutex_init(&o->lock, NULL);
  pthread_cond_init(&o->cond, NULL);
  assert_int_equal(pthread_create(t, NULL, other_main, o), 0);
}

/* Tells the other thread to end, joins it, and destroys what it used. */
static void other_end(other *o, pthread_t t) {
  pthread_mutex_lock(&o->lock);
  o->end = true;
  o->asked++;
  pthread_cond_broadcast(&o->cond);
  pthread_mutex_unlock(&o->lock);
  pthread_join(t, NULL);
  pthread_cond_destroy(&o->cond);
  pthread_mutex_destroy(&o->lock);
}

static size_t cached(pinheap *h) { return thread_cached_extent_bytes(&h->core.threads); }

/* The number of extents the threads' caches hold. */
static unsigned cached_entries(pinheap *h) {
  thread_registry *reg = &h->core.threads;
  unsigned n = 0;
  pthread_mutex_lock(&reg->lock);
  for (thread_cache *tc = reg->head; tc; tc = tc->next) n += tc->extents.count;
  pthread_mutex_unlock(&reg->lock);
  return n;
}

#define HEAP_SIZE (64 * MiB)

/* A FIXED heap of HEAP_SIZE with one arena. */
static pinheap *open_heap(void) { return heaps_open(PINHEAP_FIXED, HEAP_SIZE, 1, 0); }

static void test_cached_then_reclaimed(void **state) {
  (void)state;
  pinheap *h = open_heap();
  /* Fill the region with blocks of 64 KiB, side by side. */
  static void *blocks[BLOCKS_MAX];
  unsigned n = 0;
  while (n < BLOCKS_MAX && (blocks[n] = pinheap_malloc(h, BLOCK)) != NULL) n++;
  assert_true(n >= 900 && n < BLOCKS_MAX);
  /* Near full, a freed block goes back at once. */
  pinheap_free(h, blocks[1]);
  assert_int_equal(cached(h), 0);
  /* Holes of one block, every other block: room again, but no 3 blocks. */
  for (unsigned i = 3; i < n; i += 2) pinheap_free(h, blocks[i]);
  pinheap_trim(h);
  pinheap_stats holes;
  pinheap_get_stats(h, &holes);
  assert_true(holes.largest_free < 2 * BLOCK);
  assert_true(holes.free_bytes >= HEAP_SIZE / 4);

  other o;
  pthread_t t;
  other_start(&o, h, blocks, &t);
  /* Blocks 2 and 4, between the holes, freed by the other thread, stay in
   * its cache: the manager does not see them. */
  other_free(&o, 2, 3);
  other_free(&o, 4, 5);
  pinheap_stats st;
  pinheap_get_stats(h, &st);
  print_message("after the other thread freed 2 blocks: %zu bytes cached, %zu free (%zu before)\n", cached(h),
                st.free_bytes, holes.free_bytes);
  assert_int_equal(cached(h), 2 * BLOCK);
  assert_int_equal(st.free_bytes, holes.free_bytes);
  assert_int_equal(pinheap_check(h), 0);
  /* 3 blocks fit only once blocks 2 and 4 are back, merged with holes 1,
   * 3 and 5: this thread's request empties every cache rather than answer
   * ENOMEM. */
  void *three = pinheap_malloc(h, 3 * BLOCK);
  assert_non_null(three);
  assert_int_equal(cached(h), 0);
  assert_int_equal(pinheap_check(h), 0);
  /* The bound: every other block freed, at most XCACHE_BYTES kept. */
  unsigned freed = 2;
  for (unsigned i = 6; i < n; i += 2, freed++) other_free(&o, i, i + 1);
  pinheap_get_stats(h, &st);
  print_message("after the other thread freed %u blocks more: %zu bytes cached, %zu free\n", freed - 2, cached(h),
                st.free_bytes);
  assert_true(cached(h) > 0 && cached(h) <= XCACHE_BYTES);
  assert_int_equal(st.free_bytes + cached(h), holes.free_bytes + (freed - 3) * BLOCK);
  assert_int_equal(pinheap_check(h), 0);
  /* An exiting thread's cache goes back. */
  other_end(&o, t);
  assert_int_equal(cached(h), 0);
  pinheap_get_stats(h, &st);
  assert_int_equal(st.free_bytes, holes.free_bytes + (freed - 3) * BLOCK);
  pinheap_free(h, three);
  pinheap_free(h, blocks[0]);
  pinheap_trim(h);
  assert_int_equal(pinheap_check(h), 0);
  pinheap_destroy(h);
}

/* calloc served from the thread's cache zeroes what a freed block left. */
static void test_calloc_from_cache(void **state) {
  (void)state;
  pinheap *h = open_heap();
  unsigned char *p = pinheap_malloc(h, 60 * KiB);
  assert_non_null(p);
  memset(p, 0xAB, 60 * KiB);
  pinheap_free(h, p);
  assert_int_equal(cached(h), 60 * KiB);
  unsigned char *q = pinheap_calloc(h, 1, 40 * KiB);
  assert_non_null(q);
  assert_int_equal(cached(h), 20 * KiB); /* carved from the cached extent */
  for (size_t i = 0; i < 40 * KiB; i++)
    if (q[i]) fail_msg("byte %zu of a calloc'd block is %#x", i, q[i]);
  pinheap_free(h, q);
  assert_int_equal(pinheap_check(h), 0);
  pinheap_destroy(h);
}

/* Blocks of XCACHE_CONTENDED_MAX: the largest whose extents a free keeps
 * when it finds the extent manager's lock held. */
static void test_contended_free_cached(void **state) {
  (void)state;
  pinheap *h = open_heap();
  const size_t big = XCACHE_CONTENDED_MAX;
  static void *blocks[BLOCKS_MAX];
  unsigned n = 0;
  while (n < BLOCKS_MAX && (blocks[n] = pinheap_malloc(h, big)) != NULL) n++;
  assert_true(n >= 32 && n < BLOCKS_MAX);
  /* Holes of one block, every other block: room enough to cache, no 3
   * blocks in a row. */
  for (unsigned i = 1; i < n; i += 2) pinheap_free(h, blocks[i]);
  pinheap_trim(h);
  pinheap_stats holes;
  pinheap_get_stats(h, &holes);
  assert_true(holes.largest_free < 2 * big);

  other o;
  pthread_t t;
  other_start(&o, h, blocks, &t);
  /* Uncontended, the block goes back to the manager (the other thread's
   * cache is made on the way). */
  other_free(&o, 0, 1);
  assert_int_equal(cached(h), 0);
  /* The manager's lock held here: the other thread's free of block 2 does
   * not wait for it, and keeps the extent. */
  pthread_mutex_lock(&h->core.space.em.lock);
  bool done = other_free_within(&o, 2, 3, 5);
  pthread_mutex_unlock(&h->core.space.em.lock);
  other_wait(&o);
  print_message("free of a %zu-byte block with the manager's lock held: %s, %zu bytes cached\n", big,
                done ? "done at once" : "still waiting after 5 s", cached(h));
  assert_true(done);
  assert_int_equal(cached(h), big);
  /* Its next frees of such blocks keep theirs too, without trying the
   * lock (HEAP_CONTENDED_FREES). */
  other_free(&o, 4, 5);
  assert_int_equal(cached(h), 2 * big);
  assert_int_equal(pinheap_check(h), 0);
  /* This thread, out of contention, empties the other's cache before it
   * places a block, though a hole would hold it: kept extents are holes
   * the manager places around, and an idle thread's would stay until
   * ENOMEM. */
  void *mine = pinheap_malloc(h, big);
  assert_non_null(mine);
  print_message("a block placed by a thread out of contention: %zu bytes still cached by the other\n", cached(h));
  assert_int_equal(cached(h), 0);
  uint64_t flushed = util_coarse_ns();
  /* 3 blocks fit: blocks 0 to 5 are one free extent again. */
  void *three = pinheap_malloc(h, 3 * big);
  assert_non_null(three);
  assert_int_equal(pinheap_check(h), 0);
  /* Kept again (block 6, the lock held); this thread's next block empties
   * nobody's cache within HEAP_CONTENDED_FLUSH_NS of its last emptying: a
   * thread that only allocates beside one that only frees would stop
   * every thread at nearly every block. */
  other_free_at_held_lock(&o, 6, 7);
  assert_int_equal(cached(h), big);
  void *next = pinheap_malloc(h, big);
  assert_non_null(next);
  if (util_coarse_ns() - flushed < HEAP_CONTENDED_FLUSH_NS / 2)
    assert_int_equal(cached(h), big);
  else
    print_message("the machine was too slow to see the limit: %zu bytes cached\n", cached(h));
  other_end(&o, t);
  pinheap_free(h, next);
  pinheap_free(h, three);
  pinheap_free(h, mine);
  for (unsigned i = 8; i < n; i += 2) pinheap_free(h, blocks[i]);
  pinheap_trim(h);
  pinheap_get_stats(h, &holes);
  assert_int_equal(holes.largest_free, holes.free_bytes);
  assert_int_equal(pinheap_check(h), 0);
  pinheap_destroy(h);
}

static int by_address(const void *a, const void *b) {
  uintptr_t x = (uintptr_t) * (void *const *)a, y = (uintptr_t) * (void *const *)b;
  return (x > y) - (x < y);
}

/* Under contention, in a FIXED heap, a kept extent joins the kept ones
 * beside it, and a request takes a kept extent up to an eighth longer
 * whole (the block as long as the extent) rather than carve a piece few
 * requests would fit. */
static void test_contended_joined_whole(void **state) {
  (void)state;
  pinheap *h = open_heap();
  const size_t quarter = 256 * KiB;
  static void *blocks[8];
  for (unsigned i = 0; i < 8; i++) {
    blocks[i] = pinheap_malloc(h, quarter);
    assert_non_null(blocks[i]);
  }
  /* Placed side by side (em.h): in address order, block i + 1 is right
   * after block i. */
  qsort(blocks, 8, sizeof blocks[0], by_address);
  for (unsigned i = 1; i < 8; i++) assert_ptr_equal(blocks[i], (char *)blocks[i - 1] + quarter);
  other o;
  pthread_t t;
  other_start(&o, h, blocks, &t);
  other_free_at_held_lock(&o, 1, 2);
  /* In the contended window: block 2 joins block 1, block 5 stays apart. */
  other_free(&o, 2, 3);
  other_free(&o, 5, 6);
  print_message("3 blocks kept, 2 side by side: %u extents, %zu bytes cached\n", cached_entries(h), cached(h));
  assert_int_equal(cached(h), 3 * quarter);
  assert_int_equal(cached_entries(h), 2);
  assert_int_equal(pinheap_check(h), 0);
  /* 32 KiB short of blocks 1 and 2: both, whole. */
  void *two = other_malloc(&o, 2 * quarter - 32 * KiB);
  print_message("a block 32 KiB short of a kept extent of %zu: at %p (the extent at %p), %zu bytes usable, %zu "
                "bytes still cached\n",
                2 * quarter, two, blocks[1], pinheap_usable_size(h, two), cached(h));
  assert_ptr_equal(two, blocks[1]);
  assert_int_equal(pinheap_usable_size(h, two), 2 * quarter);
  assert_int_equal(cached(h), quarter);
  /* A quarter short: carved, from the top. */
  void *small = other_malloc(&o, quarter - quarter / 4);
  assert_ptr_equal(small, (char *)blocks[5] + quarter / 4);
  assert_int_equal(cached(h), quarter / 4);
  assert_int_equal(pinheap_check(h), 0);
  other_end(&o, t);
  assert_int_equal(cached(h), 0);
  pinheap_free(h, two);
  pinheap_free(h, small);
  for (unsigned i = 0; i < 8; i++)
    if (i != 1 && i != 2 && i != 5) pinheap_free(h, blocks[i]);
  pinheap_trim(h);
  pinheap_stats st;
  pinheap_get_stats(h, &st);
  assert_int_equal(st.largest_free, st.free_bytes);
  assert_int_equal(pinheap_check(h), 0);
  pinheap_destroy(h);
}

/* Runs body(arg) in a thread started while this one holds the extent
 * manager's lock, held 50 ms more: what body returned. */
static void *at_held_lock(pinheap *h, void *(*body)(void *), void *arg) {
  pthread_t w;
  void *got;
  pthread_mutex_lock(&h->core.space.em.lock);
  assert_int_equal(pthread_create(&w, NULL, body, arg), 0);
  nanosleep(&(struct timespec){.tv_nsec = 50000000}, NULL);
  pthread_mutex_unlock(&h->core.space.em.lock);
  pthread_join(w, &got);
  return got;
}

/* A thread that waits at the extent manager's lock. */
static void *waiter_main(void *arg) {
  pinheap *h = arg;
  return pinheap_malloc(h, 2 * MiB);
}

/* A thread that frees a block: arg is {heap, block}. */
static void *freer_main(void *arg) {
  void **a = arg;
  pinheap_free(a[0], a[1]);
  return NULL;
}

/* Ends the contended window of the thread whose window is open. */
static void end_window(pinheap *h) {
  thread_registry *reg = &h->core.threads;
  unsigned open = 0;
  pthread_mutex_lock(&reg->lock);
  for (thread_cache *tc = reg->head; tc; tc = tc->next)
    if (tc->contended) {
      tc->contended = 0;
      open++;
    }
  pthread_mutex_unlock(&reg->lock);
  assert_int_equal(open, 1);
}

/* When a thread's window of kept frees ends, and some thread waited at the
 * extent manager's lock meanwhile, its next free opens another window
 * without trying the lock; when none did, the free gives the extent back. */
static void test_contended_window_renewed(void **state) {
  (void)state;
  pinheap *h = open_heap();
  const size_t quarter = 256 * KiB;
  static void *blocks[8];
  for (unsigned i = 0; i < 8; i++) assert_non_null(blocks[i] = pinheap_malloc(h, quarter));
  /* Placed now: a thread out of contention that places a block empties
   * every cache (heap_return_contended). */
  enum { TRIES = 20 };
  void *big[TRIES];
  for (unsigned i = 0; i < TRIES; i++) assert_non_null(big[i] = pinheap_malloc(h, 2 * MiB));
  other o;
  pthread_t t;
  other_start(&o, h, blocks, &t);
  other_free_at_held_lock(&o, 0, 1);
  assert_int_equal(cached(h), quarter);
  end_window(h);
  /* A thread waits at the lock (tried until one is seen to have waited),
   * freeing a block above the cached sizes: it places nothing, so it
   * empties no cache (heap_return_contended). */
  size_t waits = em_waits(&h->core.space.em);
  unsigned tries = 0;
  while (tries < TRIES && em_waits(&h->core.space.em) == waits)
    at_held_lock(h, freer_main, (void *[]){h, big[tries++]});
  assert_true(em_waits(&h->core.space.em) > waits);
  assert_int_equal(cached(h), quarter);
  /* The lock is free now, yet the free keeps its extent: a new window. */
  other_free(&o, 2, 3);
  print_message("a free after a window in which a thread waited at the lock: %zu bytes cached\n", cached(h));
  assert_int_equal(cached(h), 2 * quarter);
  /* No wait in that window: the free after it gives the extent back. */
  end_window(h);
  other_free(&o, 4, 5);
  print_message("a free after a window without a wait: %zu bytes cached\n", cached(h));
  assert_int_equal(cached(h), 2 * quarter);
  assert_int_equal(pinheap_check(h), 0);
  other_end(&o, t);
  for (unsigned i = 0; i < 8; i++)
    if (i != 0 && i != 2 && i != 4) pinheap_free(h, blocks[i]);
  while (tries < TRIES) pinheap_free(h, big[tries++]);
  pinheap_trim(h);
  pinheap_stats st;
  pinheap_get_stats(h, &st);
  assert_int_equal(st.largest_free, st.free_bytes);
  assert_int_equal(pinheap_check(h), 0);
  pinheap_destroy(h);
}

/* Waits at the extent manager's lock between other threads leave a thread
 * that never met it trying the lock: its frees give their extents back. */
static void test_lone_thread_after_contention(void **state) {
  (void)state;
  pinheap *h = open_heap();
  const size_t quarter = 256 * KiB;
  static void *blocks[4];
  for (unsigned i = 0; i < 4; i++) assert_non_null(blocks[i] = pinheap_malloc(h, quarter));
  size_t waits = em_waits(&h->core.space.em);
  for (unsigned try = 0; try < 20 && em_waits(&h->core.space.em) == waits; try++) {
    void *got = at_held_lock(h, waiter_main, h);
    assert_non_null(got);
    pinheap_free(h, got);
  }
  assert_true(em_waits(&h->core.space.em) > waits);
  /* A thread new to the heap frees with the lock free. */
  other o;
  pthread_t t;
  other_start(&o, h, blocks, &t);
  other_free(&o, 0, 4);
  print_message("a thread that never met the lock, after others waited at it: %zu bytes cached\n", cached(h));
  assert_int_equal(cached(h), 0);
  assert_int_equal(pinheap_check(h), 0);
  other_end(&o, t);
  pinheap_destroy(h);
}

/* A request of at most 64 KiB takes a cached extent up to a quarter longer
 * than it asks whole (the block as long as the extent), and carves one
 * longer than that; a near-full heap caches nothing, so its blocks stay
 * exact. */
static void test_slack_whole(void **state) {
  (void)state;
  pinheap *h = open_heap();
  char *p = pinheap_malloc(h, 40 * KiB);
  assert_non_null(p);
  pinheap_free(h, p);
  assert_int_equal(cached(h), 40 * KiB);
  /* 8 pages asked, 10 cached: the 2 pages more are a quarter. */
  char *q = pinheap_malloc(h, 32 * KiB);
  print_message("32 KiB asked with 40 KiB cached: %p (the cached %p), usable %zu, %zu bytes left cached\n", (void *)q,
                (void *)p, pinheap_usable_size(h, q), cached(h));
  assert_ptr_equal(q, p);
  assert_int_equal(pinheap_usable_size(h, q), 40 * KiB);
  assert_int_equal(cached(h), 0);
  pinheap_stats st;
  pinheap_get_stats(h, &st);
  assert_int_equal(st.allocated, 40 * KiB);
  assert_int_equal(pinheap_check(h), 0);
  q[40 * KiB - 1] = 1;
  pinheap_free(h, q);
  assert_int_equal(cached(h), 40 * KiB);
  /* 7 pages asked, 10 cached: 3 pages more are beyond a quarter; carved
   * from the top, the rest stays cached. */
  char *r = pinheap_malloc(h, 28 * KiB);
  assert_ptr_equal(r, p + 12 * KiB);
  assert_int_equal(pinheap_usable_size(h, r), 28 * KiB);
  assert_int_equal(cached(h), 12 * KiB);
  assert_int_equal(pinheap_check(h), 0);
  pinheap_free(h, r);
  /* Near full (less than a quarter free), a free caches nothing: the next
   * block of that size gets an exact extent from the manager. */
  static void *blocks[BLOCKS_MAX];
  unsigned n = 0;
  pinheap_trim(h);
  while (n < BLOCKS_MAX && (blocks[n] = pinheap_malloc(h, BLOCK)) != NULL) n++;
  assert_true(n > 900);
  pinheap_free(h, blocks[n - 1]);
  pinheap_free(h, blocks[n - 2]);
  assert_int_equal(cached(h), 0);
  char *s = pinheap_malloc(h, 52 * KiB);
  assert_non_null(s);
  assert_int_equal(pinheap_usable_size(h, s), 52 * KiB);
  pinheap_free(h, s);
  for (unsigned i = 0; i + 2 < n; i++) pinheap_free(h, blocks[i]);
  assert_int_equal(pinheap_check(h), 0);
  pinheap_destroy(h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cached_then_reclaimed),
      cmocka_unit_test(test_calloc_from_cache),
      cmocka_unit_test(test_contended_free_cached),
      cmocka_unit_test(test_contended_joined_whole),
      cmocka_unit_test(test_contended_window_renewed),
      cmocka_unit_test(test_lone_thread_after_contention),
      cmocka_unit_test(test_slack_whole),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
