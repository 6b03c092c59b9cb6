/*
 * Objects freed by a thread of another arena go back to their owner
 * (src/inbound.h), white-box (the heap's thread registry):
 *
 * - a thread's objects freed by a thread of another arena come back to the
 *   first thread's next mallocs of their class, without a call into
 *   jemalloc: its arena's count of live objects of the class stays as it
 *   was (an object jemalloc handed out again would raise it); they count
 *   as live nowhere meanwhile (pinheap_get_stats), and the checker walks
 *   the chains and lists they wait on; FIXED, SIMPLE and DYNAMIC;
 * - those still waiting on a live thread's chain or on its owner's list go
 *   back to jemalloc at a trim (their arena's count of live objects drops
 *   to what is live), and an allocation that needs their room succeeds;
 * - a list its owner takes none of stays within INBOUND_LIST_BYTES: past
 *   it, the freeing thread hands the list to jemalloc; so too with checks
 *   between the frees; the bound counts objects, not chains;
 * - under the debugging aids, the objects go through jemalloc as before
 *   (no chain, no list);
 * - a freed object on a list that the program wrote after its free (its
 *   link, or its mark, as a second free by another thread and the block's
 *   reuse do) aborts the malloc that reaches it, naming the object, rather
 *   than hand out what its link became (in a child);
 * - pinheap_check while two threads hand objects to each other walks the
 *   chains and lists without following a link their owners change;
 * - stress: threads hand blocks of 16 B - 1 KiB to each other at random,
 *   free the blocks handed to them, trim now and then, and ask for blocks
 *   of up to the whole region (whose ENOMEM retry must find the room the
 *   chains and lists held); every block keeps its bytes, and at the end
 *   nothing is live and a block of the whole free room is had (seed
 *   printed, taken as argv[1]).
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
#include "child.h"
#include "heaps.h"
#include "pinheap.h"
#include "seed.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

#define SIZE 64
/* Two full chains and a part of one. */
#define N (2 * INBOUND_CHAIN_MAX + 5)

/* The calling thread's cache (entered and left: the caller is the only
 * thread using it). */
static thread_cache *my_cache(pinheap *h) {
  thread_cache *tc = thread_enter(&h->core.threads);
  assert_non_null(tc);
  thread_leave(tc);
  return tc;
}

/* Live objects of bin b in the arena of slot owner (tcaches' included). */
static size_t arena_live(pinheap *h, unsigned owner, unsigned b) {
  hooks_stats_refresh();
  return hooks_arena_live(&h->core.arenas.arena[owner], b);
}

/* Objects on the list given back to owner, of bin b. */
static size_t listed(pinheap *h, unsigned owner, unsigned b) {
  size_t n = 0;
  for (void *p = atomic_load(&h->core.threads.inbound.list[owner][b]); p; p = inbound_next(p)) n++;
  return n;
}

/* Objects on every list and every chain of the heap. */
static size_t waiting(pinheap *h) {
  size_t n = 0;
  for (unsigned o = 0; o < INBOUND_OWNERS; o++)
    for (unsigned b = 0; b < INBOUND_BINS; b++) n += listed(h, o, b);
  for (thread_cache *tc = h->core.threads.head; tc; tc = tc->next)
    for (unsigned b = 0; b < SIZECLASS_MAX_BINS; b++) n += tc->chains[b].count;
  return n;
}

typedef struct freer {
  pinheap *h;
  void **objs;
  size_t n;
  bool alloc;         /* allocates the n objects of SIZE into objs rather than free them */
  size_t check_every; /* not 0: a pinheap_check after every check_every frees */
  unsigned owner;
  size_t chained; /* what its chain of the bin holds after its frees */
  pthread_barrier_t freed, done;
} freer;

/* Frees the objects (or allocates them), then stays alive (its chain
 * kept) until told. */
static void *freer_main(void *arg) {
  freer *f = arg;
  for (size_t i = 0; i < f->n; i++) {
    if (f->alloc) {
      f->objs[i] = pinheap_malloc(f->h, SIZE);
      continue;
    }
    pinheap_free(f->h, f->objs[i]);
    if (f->check_every && (i + 1) % f->check_every == 0) assert_int_equal(pinheap_check(f->h), 0);
  }
  thread_cache *tc = my_cache(f->h);
  f->owner = tc->owner;
  f->chained = tc->chains[sizeclass_bin(&f->h->core.classes, SIZE)].count;
  pthread_barrier_wait(&f->freed);
  pthread_barrier_wait(&f->done);
  return NULL;
}

static void freer_start(freer *f, pthread_t *id) {
  pthread_barrier_init(&f->freed, NULL, 2);
  pthread_barrier_init(&f->done, NULL, 2);
  assert_int_equal(pthread_create(id, NULL, freer_main, f), 0);
  pthread_barrier_wait(&f->freed);
}

static void freer_end(freer *f, pthread_t id) {
  pthread_barrier_wait(&f->done);
  assert_int_equal(pthread_join(id, NULL), 0);
  pthread_barrier_destroy(&f->freed);
  pthread_barrier_destroy(&f->done);
}

static size_t allocated(pinheap *h) {
  pinheap_stats s;
  assert_int_equal(pinheap_get_stats(h, &s), 0);
  return s.allocated;
}

static void comes_back(pinheap_mode mode) {
  pinheap *h = heaps_open(mode, mode == PINHEAP_FIXED ? 64 * MiB : 0, 2, 0);
  unsigned b = sizeclass_bin(&h->core.classes, SIZE);
  void *objs[N];
  for (size_t i = 0; i < N; i++) assert_non_null(objs[i] = pinheap_malloc(h, SIZE));
  thread_cache *tc = my_cache(h);
  size_t live_before = arena_live(h, tc->owner, b), bytes_before = allocated(h);
  freer f = {.h = h, .objs = objs, .n = N};
  pthread_t id;
  freer_start(&f, &id);
  size_t on_list = listed(h, tc->owner, b), bytes_freed = allocated(h);
  printf("test_inbound: %s: %d objects of %d B freed by a thread of arena slot %u (this one's %u): %zu on this "
         "arena's list, %zu on its chain; live bytes %zu before, %zu after\n",
         mode == PINHEAP_FIXED ? "FIXED" : mode == PINHEAP_SIMPLE ? "SIMPLE" : "DYNAMIC", N, SIZE, f.owner, tc->owner, on_list, f.chained, bytes_before,
         bytes_freed);
  assert_int_not_equal(f.owner, tc->owner); /* the test's premise: two arenas, a thread on each */
  assert_int_equal(on_list, N - N % INBOUND_CHAIN_MAX);
  assert_int_equal(f.chained, N % INBOUND_CHAIN_MAX);
  assert_int_equal(bytes_freed, bytes_before - N * h->core.classes.size[b]);
  assert_int_equal(pinheap_check(h), 0);
  /* What the stack holds first, then the list's objects, every one. */
  size_t stacked = tc->bins[b].count, back = 0;
  void *again[N + THREAD_BIN_MAX];
  for (size_t i = 0; i < stacked + on_list; i++) {
    assert_non_null(again[i] = pinheap_malloc(h, SIZE));
    for (size_t k = 0; k < N; k++) back += again[i] == objs[k];
  }
  size_t live_after = arena_live(h, tc->owner, b);
  printf("test_inbound: %zu mallocs after %zu of the stack: %zu of the freed objects back; the arena's live "
         "objects %zu before, %zu after\n", on_list, stacked, back, live_before, live_after);
  assert_int_equal(back, on_list);
  assert_int_equal(live_after, live_before); /* none from jemalloc */
  assert_int_equal(allocated(h), bytes_before - (N - on_list - stacked) * h->core.classes.size[b]);
  for (size_t i = 0; i < stacked + on_list; i++) pinheap_free(h, again[i]);
  /* The rest waits on the other thread's chain: a trim hands it back. */
  assert_int_equal(pinheap_check(h), 0);
  pinheap_trim(h);
  assert_int_equal(arena_live(h, tc->owner, b), 0);
  assert_int_equal(allocated(h), 0);
  freer_end(&f, id);
  assert_int_equal(pinheap_check(h), 0);
  pinheap_destroy(h);
}

static void test_comes_back_fixed(void **state) {
  (void)state;
  comes_back(PINHEAP_FIXED);
}

static void test_comes_back_simple(void **state) {
  (void)state;
  comes_back(PINHEAP_SIMPLE);
}

static void test_comes_back_dynamic(void **state) {
  (void)state;
  comes_back(PINHEAP_DYNAMIC);
}

/* Objects of a whole heap freed by another thread that stays alive: an
 * allocation of nearly all the room succeeds (the retry empties the lists
 * and chains), and a trim leaves no object of theirs live in jemalloc. */
static void test_room_back(void **state) {
  (void)state;
  pinheap *h = heaps_open(PINHEAP_FIXED, 32 * MiB, 2, 0);
  pinheap_stats s0;
  assert_int_equal(pinheap_get_stats(h, &s0), 0);
  size_t n = 16 * MiB / SIZE;
  void **objs = malloc(n * sizeof *objs);
  assert_non_null(objs);
  for (size_t i = 0; i < n; i++) assert_non_null(objs[i] = pinheap_malloc(h, SIZE));
  freer f = {.h = h, .objs = objs, .n = n};
  pthread_t id;
  freer_start(&f, &id);
  unsigned b = sizeclass_bin(&h->core.classes, SIZE);
  thread_cache *tc = my_cache(h);
  printf("test_inbound: %zu objects on the list, %zu on the other thread's chain\n", listed(h, tc->owner, b),
         f.chained);
  assert_true(listed(h, tc->owner, b) > 0);
  assert_int_equal(pinheap_check(h), 0);
  void *big = pinheap_malloc(h, s0.largest_free * 3 / 4);
  assert_non_null(big);
  pinheap_free(h, big);
  assert_int_equal(listed(h, tc->owner, b), 0);
  assert_int_equal(arena_live(h, tc->owner, b), 0);
  freer_end(&f, id);
  free(objs);
  assert_int_equal(pinheap_check(h), 0);
  pinheap_destroy(h);
}

/* A list whose owner takes none of it (its thread allocates no more of
 * that size) holds at most INBOUND_LIST_BYTES: past it, the thread that
 * pushes hands the whole list to jemalloc, where the objects are live no
 * more; so too with a pinheap_check between the frees, whose walk takes
 * each list and puts it back (check_every frees; 0: none). */
static void list_bounded(size_t check_every) {
  pinheap *h = heaps_open(PINHEAP_FIXED, 64 * MiB, 2, 0);
  unsigned b = sizeclass_bin(&h->core.classes, SIZE);
  size_t n = 8 * MiB / SIZE; /* 8 times INBOUND_LIST_BYTES */
  void **objs = malloc(n * sizeof *objs);
  assert_non_null(objs);
  for (size_t i = 0; i < n; i++) assert_non_null(objs[i] = pinheap_malloc(h, SIZE));
  thread_cache *tc = my_cache(h);
  freer f = {.h = h, .objs = objs, .n = n, .check_every = check_every};
  pthread_t id;
  freer_start(&f, &id);
  size_t on_list = listed(h, tc->owner, b), live = arena_live(h, tc->owner, b);
  printf("test_inbound: %zu objects of %d B freed by a thread of another arena (a check every %zu frees): %zu on "
         "this arena's list (%zu bytes), %zu on the other's chain; %zu live in the arena\n",
         n, SIZE, check_every, on_list, on_list * SIZE, f.chained, live);
  assert_int_not_equal(f.owner, tc->owner);
  assert_true(on_list > 0 && on_list * SIZE <= INBOUND_LIST_BYTES + INBOUND_CHAIN_MAX * SIZE);
  assert_true(on_list * SIZE <= 2 * MiB); /* a quarter of what was freed at most */
  /* The rest is back in jemalloc, but for what the other thread's remote
   * tcache holds until it is flushed. */
  assert_true(live <= on_list + f.chained + tc->bins[b].count + 1024);
  assert_int_equal(pinheap_check(h), 0);
  freer_end(&f, id);
  pinheap_trim(h);
  assert_int_equal(arena_live(h, tc->owner, b), 0);
  assert_int_equal(allocated(h), 0);
  free(objs);
  assert_int_equal(pinheap_check(h), 0);
  pinheap_destroy(h);
}

static void test_list_bounded(void **state) {
  (void)state;
  list_bounded(0);
  list_bounded(8192);
}

/* The bound counts objects: a thread that frees two arenas' objects in
 * turn pushes chains of one object, and the lists, far below the bound,
 * stay whole for their owners. */
static void test_list_bound_counts_objects(void **state) {
  (void)state;
  pinheap *h = heaps_open(PINHEAP_FIXED, 64 * MiB, 3, 0);
  unsigned b = sizeclass_bin(&h->core.classes, SIZE);
  enum { EACH = 2000 };
  static void *mine[EACH], *theirs[EACH], *both[2 * EACH];
  for (size_t i = 0; i < EACH; i++) assert_non_null(mine[i] = pinheap_malloc(h, SIZE));
  freer k = {.h = h, .objs = theirs, .n = EACH, .alloc = true}; /* a thread of a second arena, kept alive */
  pthread_t kid;
  freer_start(&k, &kid);
  for (size_t i = 0; i < EACH; i++) {
    assert_non_null(theirs[i]);
    both[2 * i] = mine[i];
    both[2 * i + 1] = theirs[i];
  }
  unsigned me = my_cache(h)->owner;
  freer f = {.h = h, .objs = both, .n = 2 * EACH};
  pthread_t id;
  freer_start(&f, &id);
  size_t a = listed(h, me, b), c = listed(h, k.owner, b);
  printf("test_inbound: %d objects each of arena slots %u and %u freed in turn by slot %u: listed %zu and %zu\n",
         EACH, me, k.owner, f.owner, a, c);
  assert_true(me != k.owner && f.owner != me && f.owner != k.owner); /* the premise: three arenas */
  assert_int_equal(a, EACH);
  assert_int_equal(c, EACH - f.chained);
  freer_end(&f, id);
  freer_end(&k, kid);
  pinheap_trim(h);
  assert_int_equal(allocated(h), 0);
  assert_int_equal(pinheap_check(h), 0);
  pinheap_destroy(h);
}

/* Under the debugging aids freed bytes are checked: no chain, no list. */
static void test_debug_keeps_jemalloc(void **state) {
  (void)state;
  pinheap *h = heaps_open(PINHEAP_FIXED, 64 * MiB, 2, PINHEAP_DEBUG_ALL);
  void *objs[N];
  for (size_t i = 0; i < N; i++) assert_non_null(objs[i] = pinheap_malloc(h, SIZE));
  freer f = {.h = h, .objs = objs, .n = N};
  pthread_t id;
  freer_start(&f, &id);
  size_t n = waiting(h);
  printf("test_inbound: debugging aids: %zu objects on chains and lists\n", n);
  assert_int_equal(n, 0);
  assert_int_equal(pinheap_check(h), 0);
  freer_end(&f, id);
  pinheap_destroy(h);
}

/* ---- stress ----------------------------------------------------------------- */

#define THREADS 4
#define ROUNDS 2000
#define BOX 512

typedef struct box {
  pthread_mutex_t lock;
  void *p[BOX];
  unsigned n;
} box;

typedef struct stress {
  pinheap *h;
  box boxes[THREADS];
  size_t region;
  _Atomic unsigned enomem, big;
} stress;

typedef struct worker {
  stress *s;
  unsigned index;
  uint64_t rng;
} worker;

/* A block's bytes: its size and the byte every other byte holds. */
static void *block_new(pinheap *h, size_t size, unsigned char fill) {
  unsigned char *p = pinheap_malloc(h, size);
  if (!p) return NULL;
  memset(p, fill, size);
  memcpy(p, &size, sizeof size);
  return p;
}

static void block_free(pinheap *h, unsigned char *p) {
  size_t size;
  memcpy(&size, p, sizeof size);
  for (size_t i = sizeof size; i < size; i++)
    if (p[i] != p[size - 1]) fail_msg("block %p of %zu bytes: byte %zu changed", (void *)p, size, i);
  pinheap_free(h, p);
}


/* In a child: this thread's N objects freed by a thread of another arena
 * (two full chains onto this arena's list); then the program writes into
 * one of them (spoil) and mallocs until the list is used up: the heap must
 * abort at the spoiled object. */
typedef struct spoiled {
  pinheap *h;
  char outside[256]; /* what a spoiled link points at: not the heap's */
} spoiled;

/* The child: mallocs until this arena's list is used up. It starts no
 * thread: under TSan, a child of a threaded process that makes an arena
 * trips over jemalloc's mutexes as fork left them. */
static void spoiled_run(void *arg) {
  spoiled *sp = arg;
  for (size_t i = 0; i < 2 * N; i++) {
    void *p = pinheap_malloc(sp->h, SIZE);
    if (p == (void *)sp->outside) fprintf(stderr, "malloc #%zu returned memory outside the heap\n", i);
  }
}

/* A write after free: a pointer into the program's memory at the link. */
static void spoil_link(void *obj, void *outside) { memcpy((char *)obj + sizeof(void *), &outside, sizeof outside); }

/* A second free by another thread whose block was handed out again and
 * written: mark and link gone. */
static void spoil_all(void *obj, void *outside) {
  (void)outside;
  memset(obj, 0x41, SIZE);
}

static void spoiled_aborts(void (*spoil)(void *obj, void *outside), const char *what) {
  static spoiled sp;
  sp.h = heaps_open(PINHEAP_FIXED, 64 * MiB, 2, 0);
  void *objs[N];
  for (size_t i = 0; i < N; i++) assert_non_null(objs[i] = pinheap_malloc(sp.h, SIZE));
  freer f = {.h = sp.h, .objs = objs, .n = N};
  pthread_t id;
  freer_start(&f, &id);
  freer_end(&f, id);
  /* objs[N / 2] waits on this arena's list (the freer's two full chains). */
  unsigned char saved[SIZE];
  memcpy(saved, objs[N / 2], SIZE);
  spoil(objs[N / 2], sp.outside);
  child_result r;
  child_run(spoiled_run, &sp, &r);
  memcpy(objs[N / 2], saved, SIZE); /* mended, for this process to go on */
  printf("test_inbound: %s: child %s; it printed: %s\n", what,
         child_aborted(&r) ? "aborted" : WIFSIGNALED(r.status) ? "died of another signal" : "exited", r.err);
  assert_true(child_aborted(&r));
  assert_non_null(strstr(r.err, "written after its free"));
  assert_int_equal(pinheap_check(sp.h), 0);
  pinheap_destroy(sp.h);
}

static void test_spoiled_link_aborts(void **state) {
  (void)state;
  spoiled_aborts(spoil_link, "a link written after its free");
}

static void test_spoiled_mark_aborts(void **state) {
  (void)state;
  spoiled_aborts(spoil_all, "an object written whole after its free");
}

/* One thread mallocs SIZE-byte objects, fills them with 0x5a (what a
 * link followed while its owner writes would read) and puts each in a
 * random slot of a queue; the other (of another arena) frees what it takes
 * out of the queue; until told to stop. */
#define QUEUE 4096
typedef struct handover {
  pinheap *h;
  _Atomic(void *) queue[QUEUE];
  atomic_bool stop;
} handover;

static void *handover_maker(void *arg) {
  handover *ho = arg;
  for (unsigned i = 0; !atomic_load_explicit(&ho->stop, memory_order_relaxed); i++) {
    void *p = pinheap_malloc(ho->h, SIZE);
    assert_non_null(p);
    memset(p, 0x5a, SIZE);
    void *old = atomic_exchange(&ho->queue[i % QUEUE], p);
    if (old) pinheap_free(ho->h, old);
  }
  return NULL;
}

static void *handover_taker(void *arg) {
  handover *ho = arg;
  for (unsigned i = 0; !atomic_load_explicit(&ho->stop, memory_order_relaxed); i++) {
    void *p = atomic_exchange(&ho->queue[i * 7 % QUEUE], NULL);
    if (p) pinheap_free(ho->h, p);
  }
  return NULL;
}

static void test_check_while_threads_hand_over(void **state) {
  (void)state;
  static handover ho;
  ho.h = heaps_open(PINHEAP_FIXED, 64 * MiB, 2, 0);
  atomic_store(&ho.stop, false);
  pthread_t ids[2];
  assert_int_equal(pthread_create(&ids[0], NULL, handover_maker, &ho), 0);
  assert_int_equal(pthread_create(&ids[1], NULL, handover_taker, &ho), 0);
  unsigned checks = 0;
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  do {
    pinheap_check(ho.h); /* its counts may disagree while threads run; its walks must not crash */
    checks++;
    clock_gettime(CLOCK_MONOTONIC, &t);
  } while ((t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) < 1000000000L);
  atomic_store(&ho.stop, true);
  for (int i = 0; i < 2; i++) assert_int_equal(pthread_join(ids[i], NULL), 0);
  for (unsigned i = 0; i < QUEUE; i++)
    if (ho.queue[i]) pinheap_free(ho.h, ho.queue[i]);
  printf("test_inbound: %u checks while one thread handed objects to another\n", checks);
  assert_int_equal(pinheap_check(ho.h), 0);
  pinheap_destroy(ho.h);
}

/* Frees what other threads handed to w. */
static void empty_box(stress *s, unsigned i) {
  box *bx = &s->boxes[i];
  pthread_mutex_lock(&bx->lock);
  for (unsigned k = 0; k < bx->n; k++) block_free(s->h, bx->p[k]);
  bx->n = 0;
  pthread_mutex_unlock(&bx->lock);
}

static void *stress_main(void *arg) {
  worker *w = arg;
  stress *s = w->s;
  for (unsigned r = 0; r < ROUNDS; r++) {
    unsigned count = 1 + (unsigned)(seed_next_r(&w->rng) % 200);
    for (unsigned k = 0; k < count; k++) {
      size_t size = 16 + seed_next_r(&w->rng) % (1024 - 16 + 1);
      void *p = block_new(s->h, size, (unsigned char)(1 + seed_next_r(&w->rng) % 255));
      if (!p) {
        atomic_fetch_add(&s->enomem, 1);
        continue;
      }
      unsigned to = (unsigned)(seed_next_r(&w->rng) % THREADS);
      box *bx = &s->boxes[to];
      pthread_mutex_lock(&bx->lock);
      bool kept = bx->n < BOX;
      if (kept) bx->p[bx->n++] = p;
      pthread_mutex_unlock(&bx->lock);
      if (!kept) block_free(s->h, p);
    }
    empty_box(s, w->index);
    uint64_t what = seed_next_r(&w->rng) % 64;
    if (what == 0) pinheap_trim(s->h);
    if (what == 1) {
      /* Up to the whole region: the retry before ENOMEM empties the chains. */
      size_t size = s->region / 4 + seed_next_r(&w->rng) % (s->region * 3 / 4);
      void *big = pinheap_malloc(s->h, size);
      atomic_fetch_add(big ? &s->big : &s->enomem, 1);
      if (big) pinheap_free(s->h, big);
    }
  }
  return NULL;
}

static void test_stress(void **state) {
  (void)state;
  stress *s = calloc(1, sizeof *s);
  assert_non_null(s);
  s->region = 32 * MiB;
  s->h = heaps_open(PINHEAP_FIXED, s->region, THREADS, 0);
  for (unsigned i = 0; i < THREADS; i++) pthread_mutex_init(&s->boxes[i].lock, NULL);
  worker w[THREADS];
  pthread_t id[THREADS];
  for (unsigned i = 0; i < THREADS; i++) {
    w[i] = (worker){s, i, seed_next() | 1};
    assert_int_equal(pthread_create(&id[i], NULL, stress_main, &w[i]), 0);
  }
  for (unsigned i = 0; i < THREADS; i++) assert_int_equal(pthread_join(id[i], NULL), 0);
  for (unsigned i = 0; i < THREADS; i++) empty_box(s, i);
  printf("test_inbound: stress: %u large blocks had, %u requests answered ENOMEM\n", atomic_load(&s->big),
         atomic_load(&s->enomem));
  assert_int_equal(pinheap_check(s->h), 0);
  assert_int_equal(allocated(s->h), 0);
  pinheap_trim(s->h);
  pinheap_stats st;
  assert_int_equal(pinheap_get_stats(s->h, &st), 0);
  void *all = pinheap_malloc(s->h, st.largest_free);
  assert_non_null(all);
  pinheap_free(s->h, all);
  assert_int_equal(pinheap_check(s->h), 0);
  for (unsigned i = 0; i < THREADS; i++) pthread_mutex_destroy(&s->boxes[i].lock);
  pinheap_destroy(s->h);
  free(s);
}

int main(int argc, char **argv) {
  seed_init(argc, argv, "test_inbound");
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_comes_back_fixed),     cmocka_unit_test(test_comes_back_simple),
      cmocka_unit_test(test_comes_back_dynamic),
      cmocka_unit_test(test_room_back),            cmocka_unit_test(test_list_bounded),
      cmocka_unit_test(test_list_bound_counts_objects),
      cmocka_unit_test(test_debug_keeps_jemalloc),
      cmocka_unit_test(test_spoiled_link_aborts),  cmocka_unit_test(test_spoiled_mark_aborts),
      cmocka_unit_test(test_check_while_threads_hand_over),
      cmocka_unit_test(test_stress),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
