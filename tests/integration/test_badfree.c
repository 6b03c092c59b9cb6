/*
 * Bad frees of small objects (public API): a double free and an interior
 * pointer print the pointer and abort, in every mode, without the debugging
 * aids; with them, a double free made after other blocks of the size were
 * handed out (which, without the aids, would have handed the block out
 * again) too. Legitimate patterns never abort: blocks freed without being
 * written, blocks written in part (a byte of their first 8), blocks freed
 * by another thread, unwritten bytes of a large block over freed objects
 * copied into a small one. Aborting cases run in child processes
 * (child.h).
 *
 * Usage: test_badfree
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asserts.h"
#include "child.h"
#include "heaps.h"
#include "pinheap.h"

#define MiB ((size_t)1 << 20)

static pinheap *make_heap(pinheap_mode mode, unsigned debug) {
  return heaps_open(mode, mode == PINHEAP_FIXED ? 64 * MiB : 0, 1, debug);
}

enum misuse {
  TWICE,              /* free(p); free(p) */
  TWICE_BETWEEN,      /* free(p); free(q); free(p) */
  TWICE_AFTER_TRIM,   /* free(p); trim (the caches emptied into jemalloc); free(p) */
  TWICE_THREAD_GONE,  /* another thread frees p and exits; free(p) */
  REALLOC_FREED,      /* free(p); realloc(p) */
  TWICE_AFTER_REUSE,  /* free(p); 100 more mallocs of the size; free(p): with the aids only */
  INTERIOR_8,         /* free(p + 8), p of 40 bytes */
  INTERIOR_1,         /* free(p + 1) */
  INTERIOR_16_OF_64,  /* free(p + 16), p of 64 bytes */
  INTERIOR_16_OF_48,  /* free(p + 16), p of 40 bytes (a 48-byte class) */
  INTERIOR_NEXT_PAGE, /* free(p + 4096), p of 10000 bytes */
};

struct job {
  pinheap_mode mode;
  unsigned debug;
  enum misuse what;
};

static pinheap *thread_heap;
static void *thread_free(void *p) {
  pinheap_free(thread_heap, p);
  return NULL;
}

/* In the child: the misuse, after printing the pointer it passes. */
static void misuse(void *arg) {
  struct job *j = arg;
  pinheap *h = make_heap(j->mode, j->debug);
  size_t size = j->what == INTERIOR_16_OF_64 ? 64 : j->what == INTERIOR_NEXT_PAGE ? 10000 : 40;
  char *p = pinheap_malloc(h, size), *q = pinheap_malloc(h, size);
  memset(p, 0, size);
  memset(q, 0, size);
  static const size_t off[] = {[INTERIOR_8] = 8, [INTERIOR_1] = 1, [INTERIOR_16_OF_64] = 16, [INTERIOR_16_OF_48] = 16,
                               [INTERIOR_NEXT_PAGE] = 4096};
  char *bad = j->what >= INTERIOR_8 ? p + off[j->what] : p;
  fprintf(stderr, "pointer %p\n", (void *)bad);
  switch (j->what) {
  case TWICE:
    pinheap_free(h, p);
    break;
  case TWICE_BETWEEN:
    pinheap_free(h, p);
    pinheap_free(h, q);
    break;
  case TWICE_AFTER_TRIM:
    pinheap_free(h, p);
    pinheap_trim(h);
    break;
  case TWICE_THREAD_GONE: {
    pthread_t t;
    thread_heap = h;
    pthread_create(&t, NULL, thread_free, p);
    pthread_join(t, NULL);
    break;
  }
  case REALLOC_FREED:
    pinheap_free(h, p);
    (void)pinheap_realloc(h, p, 100);
    return;
  case TWICE_AFTER_REUSE:
    pinheap_free(h, p);
    for (int i = 0; i < 100; i++) memset(pinheap_malloc(h, size), 1, size);
    break;
  default:
    break;
  }
  pinheap_free(h, bad);
}

static const char *mode_name(pinheap_mode m) {
  return m == PINHEAP_SIMPLE ? "simple" : m == PINHEAP_FIXED ? "fixed" : "dynamic";
}

static void expect_abort(pinheap_mode mode, unsigned debug, enum misuse what, const char *words) {
  struct job j = {mode, debug, what};
  child_result r;
  child_run(misuse, &j, &r);
  void *bad = NULL;
  char ptr[32] = "";
  if (sscanf(r.err, "pointer %p", &bad) == 1) snprintf(ptr, sizeof ptr, "%p", bad);
  const char *report = strstr(r.err, "pinheap: ");
  if (!child_aborted(&r) || !ptr[0] || !report || !strstr(report, ptr) || !strstr(report, words))
    fail_msg("%s, debug %#x, misuse %d: child status %#x, expected an abort naming %s and \"%s\"; stderr \"%s\"",
             mode_name(mode), debug, (int)what, r.status, ptr, words, r.err);
}

static const pinheap_mode modes[] = {PINHEAP_SIMPLE, PINHEAP_FIXED, PINHEAP_DYNAMIC};

static void test_double_free(void **state) {
  (void)state;
  for (int m = 0; m < 3; m++) {
    expect_abort(modes[m], 0, TWICE, "double free");
    expect_abort(modes[m], 0, TWICE_BETWEEN, "double free");
    expect_abort(modes[m], 0, TWICE_AFTER_TRIM, "double free");
    expect_abort(modes[m], 0, TWICE_THREAD_GONE, "double free");
    expect_abort(modes[m], 0, REALLOC_FREED, "freed already");
  }
}

static void test_interior(void **state) {
  (void)state;
  for (int m = 0; m < 3; m++) {
    expect_abort(modes[m], 0, INTERIOR_8, "inside a block");
    expect_abort(modes[m], 0, INTERIOR_1, "inside a block");
    expect_abort(modes[m], 0, INTERIOR_16_OF_64, "inside a block");
    expect_abort(modes[m], 0, INTERIOR_16_OF_48, "inside a block");
    expect_abort(modes[m], 0, INTERIOR_NEXT_PAGE, "inside a block");
  }
}

/* With the aids: each double free, and one made after 100 more blocks of
 * the size were handed out (small objects wait in a FIFO of 256 before
 * reuse). */
static void test_debug(void **state) {
  (void)state;
  static const unsigned flags[] = {PINHEAP_DEBUG_CANARY, PINHEAP_DEBUG_POISON, PINHEAP_DEBUG_ALL};
  for (int m = 0; m < 3; m++) {
    for (int f = 0; f < 3; f++) {
      expect_abort(modes[m], flags[f], TWICE, "double free");
      expect_abort(modes[m], flags[f], TWICE_BETWEEN, "double free");
      expect_abort(modes[m], flags[f], INTERIOR_8, "inside a block");
      expect_abort(modes[m], flags[f], TWICE_AFTER_REUSE, "double free");
    }
  }
}

/* Legitimate patterns: none aborts (a false report would end the test). */
struct legit {
  pinheap *h;
  void *p;
};

static void *free_in_thread(void *arg) {
  struct legit *l = arg;
  pinheap_free(l->h, l->p);
  return NULL;
}

static void test_no_false_reports(void **state) {
  (void)state;
  for (int m = 0; m < 3; m++) {
    for (unsigned debug = 0; debug <= PINHEAP_DEBUG_ALL; debug += PINHEAP_DEBUG_ALL) {
      pinheap *h = make_heap(modes[m], debug);
      /* Blocks of every small size freed and handed out again unwritten. */
      for (size_t n = 0; n <= 14336; n += n < 256 ? 8 : 200) {
        void *a = pinheap_malloc(h, n), *b = pinheap_calloc(h, 1, n);
        pinheap_free(h, a);
        pinheap_free(h, b);
        a = pinheap_malloc(h, n);
        pinheap_free(h, a);
        a = pinheap_realloc(h, pinheap_malloc(h, n), n + 100);
        pinheap_free(h, a);
      }
      /* A block handed out again, written in one byte of its first 8, then
       * freed: every byte, every value. */
      for (int k = 0; k < 8; k++) {
        for (int v = 0; v < 256; v++) {
          unsigned char *p = pinheap_malloc(h, 40);
          p[k] = (unsigned char)v;
          pinheap_free(h, p);
        }
      }
      /* Blocks handed out unwritten, freed by another thread. */
      for (int i = 0; i < 20; i++) {
        void *x = pinheap_malloc(h, 40);
        pinheap_free(h, x);
        struct legit l = {h, pinheap_malloc(h, 40)};
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, free_in_thread, &l), 0);
        assert_int_equal(pthread_join(t, NULL), 0);
      }
      assert_int_equal(pinheap_check(h), 0);
      pinheap_destroy(h);
    }
  }
}

/* Memory of freed small objects handed out again as large blocks (their
 * slabs given back by a trim): the program copies bytes of each it never
 * wrote (its start, and words inside it, as a struct's padding would be)
 * into a small block, itself and by realloc, and frees that block. Those
 * bytes held freed objects' keys: the block read as freed already, until
 * the keys were mixed with their objects' addresses (key.h). */
static void test_no_false_reports_reused(void **state) {
  (void)state;
  enum { SMALL = 64, LARGE = 16384, MAX_LARGE = 4096 };
  static void *large[MAX_LARGE];
  for (int m = 0; m < 3; m++) {
    pinheap *h = make_heap(modes[m], 0);
    uintptr_t lo, hi;
    heaps_freed_objects(h, 16 * MiB, SMALL, &lo, &hi);
    /* A FIXED heap filled with large blocks: some lie where the objects were. */
    size_t got = 0, over = 0;
    while (got < MAX_LARGE && (large[got] = pinheap_malloc(h, LARGE)) != NULL) {
      over += (uintptr_t)large[got] < hi && (uintptr_t)large[got] + LARGE > lo;
      got++;
    }
    if (modes[m] == PINHEAP_FIXED) assert_true(over > 0);
    for (size_t i = 0; i < got; i += 2) pinheap_free(h, large[i]); /* room for the small blocks */
    static const size_t offsets[] = {0, 64, 4096, LARGE - 64};
    size_t keys = 0; /* words copied that hold a key (its top bit set; no pointer has it) */
    for (size_t i = 1; i < got; i += 2) {
      for (size_t o = 0; o < sizeof offsets / sizeof offsets[0]; o++) {
        void *copy = pinheap_malloc(h, 40);
        assert_non_null(copy);
        memcpy(copy, (char *)large[i] + offsets[o], 8);
        uint64_t w;
        memcpy(&w, copy, sizeof w);
        keys += w >> 63;
        pinheap_free(h, copy);
      }
      void *moved = pinheap_realloc(h, large[i], 40);
      assert_non_null(moved);
      pinheap_free(h, moved);
    }
    if (modes[m] == PINHEAP_FIXED) assert_true(keys > 0);
    assert_int_equal(pinheap_check(h), 0);
    pinheap_destroy(h);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_double_free),
      cmocka_unit_test(test_interior),
      cmocka_unit_test(test_debug),
      cmocka_unit_test(test_no_false_reports),
      cmocka_unit_test(test_no_false_reports_reused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
