/*
 * No allocator metadata in the heap's memory (FIXED, DYNAMIC, SIMPLE):
 * jemalloc's metadata for an arena comes from ordinary memory, so that
 * - making an arena takes nothing of the heap's memory, and a walk finds
 *   no extent of jemalloc's metadata;
 * - after every byte of the heap's memory that holds no live block is
 *   overwritten (free extents, held extents, free slots of slabs, the ends
 *   of large blocks), as a stray remote write could, the heap still works:
 *   pinheap_check passes, the live blocks keep their contents, and blocks
 *   are allocated and freed as before.
 * The scribble stays off what the heap promises to hand out zeroed
 * (calloc): memory never handed out is trusted to read as zero, so the test
 * asks for no zeroed block afterwards.
 *
 * Randomized: prints its seed and takes one as its first argument.
 * Memory: at most 64 MiB regions, about 40 MiB touched.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "pinheap.h"
#include "seed.h"

#define MiB ((size_t)1 << 20)
/* The longest slab of jemalloc's small classes (4 KiB pages). */
#define SLAB_MAX (64 * 1024)
#define NBLOCKS 6000

static pinheap *make(pinheap_mode mode, unsigned arenas) {
  pinheap_options o;
  pinheap_options_init(&o);
  o.mode = mode;
  o.size = mode == PINHEAP_SIMPLE ? 0 : 64 * MiB;
  o.arenas = arenas;
  o.chunk_size = 16 * MiB;
  pinheap *h = pinheap_create(&o);
  assert_non_null(h);
  return h;
}

typedef struct walk_log {
  pinheap_extent e[8192];
  size_t n;
} walk_log;

static int log_visit(const pinheap_extent *e, void *arg) {
  walk_log *w = arg;
  if (w->n == sizeof w->e / sizeof w->e[0]) return 1;
  w->e[w->n++] = *e;
  return 0;
}

static walk_log walked;

static void walk(pinheap *h) {
  walked.n = 0;
  assert_int_equal(pinheap_walk(h, log_visit, &walked), 0);
}

static size_t metadata_bytes(void) {
  size_t bytes = 0;
  for (size_t i = 0; i < walked.n; i++)
    if (walked.e[i].kind == PINHEAP_EXTENT_METADATA) bytes += walked.e[i].size;
  return bytes;
}

static size_t in_use(pinheap *h) {
  pinheap_stats st;
  assert_int_equal(pinheap_get_stats(h, &st), 0);
  return st.in_use;
}

static void *one_small(void *arg) {
  pinheap *h = arg;
  void *p = pinheap_malloc(h, 100);
  pinheap_free(h, p);
  return p;
}

/* Makes the heap's second arena: this thread's cache takes the first slot,
 * a second thread's the second. */
static void second_arena(pinheap *h) {
  one_small(h);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, one_small, h), 0);
  assert_int_equal(pthread_join(t, NULL), 0);
  unsigned made, most;
  assert_int_equal(pinheap_arena_count(h, &made, &most), 0);
  assert_int_equal(made, 2);
}

/* What creating a heap and its arenas takes of the heap's memory: nothing
 * (their grants are exact: an arena takes only the slabs it uses), and no
 * metadata; two arenas that each served one 100 B object, its slab. */
static void test_creation_cost(void **state) {
  (void)state;
  pinheap *h = make(PINHEAP_FIXED, 2);
  size_t at_create = in_use(h);
  walk(h);
  print_message("FIXED, 2 arenas: %zu bytes in use after create, %zu of jemalloc metadata\n", at_create,
                metadata_bytes());
  assert_int_equal(metadata_bytes(), 0);
  assert_int_equal(at_create, 0);
  second_arena(h);
  walk(h);
  print_message("FIXED, 2 arenas used: %zu bytes in use\n", in_use(h));
  assert_int_equal(metadata_bytes(), 0);
  assert_true(in_use(h) <= 2 * SLAB_MAX);
  pinheap_destroy(h);
  static const pinheap_mode growing[] = {PINHEAP_DYNAMIC, PINHEAP_SIMPLE};
  for (size_t i = 0; i < 2; i++) {
    pinheap_mode mode = growing[i];
    h = make(mode, 2);
    at_create = in_use(h);
    second_arena(h);
    size_t two = in_use(h);
    walk(h);
    print_message("%s: %zu bytes in use after create, %zu with 2 arenas, %zu of jemalloc metadata\n",
                  mode == PINHEAP_DYNAMIC ? "DYNAMIC" : "SIMPLE", at_create, two, metadata_bytes());
    assert_int_equal(metadata_bytes(), 0);
    assert_int_equal(at_create, 0);
    assert_true(two <= 2 * SLAB_MAX);
    pinheap_destroy(h);
  }
}

typedef struct block {
  unsigned char *p;
  size_t size;
  unsigned char tag;
} block;

static block blocks[NBLOCKS];

static int by_addr(const void *a, const void *b) {
  uintptr_t x = (uintptr_t)((const block *)a)->p, y = (uintptr_t)((const block *)b)->p;
  return (x > y) - (x < y);
}

/* Sizes of several small classes, and some medium and large blocks. */
static size_t pick_size(void) {
  static const size_t sizes[] = {8, 24, 48, 100, 160, 320, 640, 1500, 3000, 6000, 12000};
  uint64_t r = seed_below(100);
  if (r < 2) return 20000 + seed_below(200000);
  return sizes[seed_below(sizeof sizes / sizeof sizes[0])];
}

static void fill(block *b, pinheap *h) {
  b->size = pick_size();
  b->p = pinheap_malloc(h, b->size);
  assert_non_null(b->p);
  b->tag = (unsigned char)seed_next();
  memset(b->p, b->tag, b->size);
}

static void verify(const block *b) {
  for (size_t i = 0; i < b->size; i++)
    if (b->p[i] != b->tag) fail_msg("block %p of %zu bytes changed at byte %zu", (void *)b->p, b->size, i);
}

/* Overwrites every byte of the walked extents outside the live blocks
 * blocks[0 .. n) (sorted by address); returns the bytes written. */
static size_t scribble(size_t n) {
  size_t written = 0, j = 0;
  for (size_t i = 0; i < walked.n; i++) {
    unsigned char *a = walked.e[i].addr, *end = a + walked.e[i].size;
    while (j < n && blocks[j].p + blocks[j].size <= a) j++;
    for (size_t k = j; a < end; k++) {
      unsigned char *stop = k < n && blocks[k].p < end ? blocks[k].p : end;
      if (stop > a) {
        memset(a, 0xA5, (size_t)(stop - a));
        written += (size_t)(stop - a);
      }
      if (stop == end) break;
      if (blocks[k].p + blocks[k].size > a) a = blocks[k].p + blocks[k].size;
    }
  }
  return written;
}

static void scribble_mode(pinheap_mode mode) {
  pinheap *h = make(mode, 2);
  for (size_t i = 0; i < NBLOCKS; i++) fill(&blocks[i], h);
  /* Free about half, so that slabs hold free slots between live ones. */
  size_t n = 0;
  for (size_t i = 0; i < NBLOCKS; i++) {
    if (seed_below(2))
      pinheap_free(h, blocks[i].p);
    else
      blocks[n++] = blocks[i];
  }
  qsort(blocks, n, sizeof blocks[0], by_addr);
  walk(h);
  size_t total = 0;
  for (size_t i = 0; i < walked.n; i++) total += walked.e[i].size;
  size_t written = scribble(n);
  print_message("%s: %zu live blocks; overwrote %zu of %zu bytes of the heap's memory\n",
                mode == PINHEAP_FIXED ? "FIXED" : mode == PINHEAP_DYNAMIC ? "DYNAMIC" : "SIMPLE", n, written, total);
  assert_true(written > total / 4);
  assert_int_equal(pinheap_check(h), 0);
  for (size_t i = 0; i < n; i++) verify(&blocks[i]);
  /* The heap still works: replace blocks at random, twice over. */
  for (size_t round = 0; round < 2 * n; round++) {
    block *b = &blocks[seed_below(n)];
    verify(b);
    pinheap_free(h, b->p);
    fill(b, h);
  }
  assert_int_equal(pinheap_check(h), 0);
  for (size_t i = 0; i < n; i++) {
    verify(&blocks[i]);
    pinheap_free(h, blocks[i].p);
  }
  assert_int_equal(pinheap_check(h), 0);
  pinheap_destroy(h);
}

static void test_scribble_fixed(void **state) {
  (void)state;
  scribble_mode(PINHEAP_FIXED);
}

static void test_scribble_dynamic(void **state) {
  (void)state;
  scribble_mode(PINHEAP_DYNAMIC);
}

static void test_scribble_simple(void **state) {
  (void)state;
  scribble_mode(PINHEAP_SIMPLE);
}

int main(int argc, char **argv) {
  seed_init(argc, argv, "test_metadata");
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_creation_cost),
      cmocka_unit_test(test_scribble_fixed),
      cmocka_unit_test(test_scribble_dynamic),
      cmocka_unit_test(test_scribble_simple),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
