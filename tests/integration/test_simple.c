/*
 * Integration tests of SIMPLE heaps: the guarantees of FIXED and DYNAMIC
 * heaps, at costs independent of a block's size. A double or interior free
 * of a large block aborts with the heap's message; requests no memory can
 * back are refused at once, as malloc's mmap refuses them; freed large
 * blocks give their address space back (under a limit on it, a thread
 * still starts); the debugging aids catch a write after free and a broken
 * canary of a live large block. What must abort runs in a forked child
 * whose standard error is read back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>

#include "asserts.h"
#include "child.h"
#include "heaps.h"
#include "pinheap.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)
#define TiB ((size_t)1 << 40)

static pinheap *simple_heap(unsigned debug) { return heaps_open(PINHEAP_SIMPLE, 0, 1, debug); }

/* ---- bad frees of large blocks ------------------------------------------ */

typedef enum { DOUBLE_FREE, INTERIOR_FREE, DOUBLE_REALLOC } bad_free;

struct bad_case {
  size_t size;
  bad_free kind;
  char *at; /* set by the child: the pointer it passed */
};

static void bad_free_child(void *arg) {
  struct bad_case *bc = arg;
  pinheap *h = simple_heap(0);
  char *p = pinheap_malloc(h, bc->size);
  if (!p) _exit(3);
  p[0] = 1;
  if (bc->kind == INTERIOR_FREE) {
    fprintf(stderr, "passing %p\n", (void *)(p + 4096));
    pinheap_free(h, p + 4096);
  } else {
    pinheap_free(h, p);
    fprintf(stderr, "passing %p\n", (void *)p);
    if (bc->kind == DOUBLE_FREE)
      pinheap_free(h, p);
    else
      pinheap_realloc(h, p, bc->size * 2);
  }
  _exit(0);
}

/* Each bad free aborts with the heap's message naming the pointer, not a
 * crash inside jemalloc: large blocks (100 KiB), direct ones (16 MiB). */
static void test_bad_frees_of_large_blocks_abort(void **state) {
  (void)state;
  static const size_t sizes[] = {100 * KiB, 16 * MiB};
  static const char *names[] = {"double free", "interior free", "realloc after free"};
  for (size_t i = 0; i < 2; i++) {
    for (int k = DOUBLE_FREE; k <= DOUBLE_REALLOC; k++) {
      struct bad_case bc = {sizes[i], (bad_free)k, NULL};
      child_result r;
      child_run(bad_free_child, &bc, &r);
      void *at = NULL;
      const char *passing = strstr(r.err, "passing ");
      if (!child_aborted(&r) || !passing || sscanf(passing, "passing %p", &at) != 1)
        fail_msg("%s of a %zu-byte block: status %#x, stderr:\n%s", names[k], sizes[i], r.status, r.err);
      char text[64];
      snprintf(text, sizeof text, "(%p): pointer is not", at);
      if (!strstr(r.err, text)) fail_msg("%s of a %zu-byte block: no \"%s\" in:\n%s", names[k], sizes[i], text, r.err);
    }
  }
}

/* ---- requests no memory can back ---------------------------------------- */

static double seconds(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static long max_rss_kib(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

/* malloc's verdict on size bytes: whether an mmap charged to the commit
 * limit, as glibc's malloc makes for a large block, succeeds. */
static bool system_backs(size_t size) {
  void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return false;
  munmap(m, size);
  return true;
}

static void huge_child(void *arg) {
  (void)arg;
  alarm(20); /* a cost that grows with the size does not finish */
  pinheap *h = simple_heap(0);
  static const size_t sizes[] = {1 * TiB, 64 * TiB, 100 * TiB};
  long rss = max_rss_kib();
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    bool backed = system_backs(sizes[i]);
    double t = seconds();
    errno = 0;
    char *p = pinheap_malloc(h, sizes[i]);
    int err = errno;
    t = seconds() - t;
    fprintf(stderr, "malloc(%zu TiB): %s (errno %d) in %.3f s; an mmap of it %s\n", sizes[i] >> 40,
            p ? "a block" : "NULL", err, t, backed ? "succeeds" : "fails");
    if (t > 1.0 || (p != NULL) != backed || (!p && err != ENOMEM)) _exit(1);
    pinheap_free(h, p);
  }
  fprintf(stderr, "max RSS grew by %ld KiB\n", max_rss_kib() - rss);
  if (max_rss_kib() - rss > 8 * 1024) _exit(2);
  pinheap_destroy(h);
}

/* 1, 64 and 100 TiB: answered at once, as malloc's mmap answers them (on a
 * machine that cannot back them, ENOMEM), without touching memory. */
static void test_huge_requests_answered_at_once(void **state) {
  (void)state;
  child_result r;
  child_run(huge_child, NULL, &r);
  printf("%s", r.err);
  if (r.status == -1 || !WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0)
    fail_msg("status %#x, stderr:\n%s", r.status, r.err);
}

/* ---- address space given back ------------------------------------------- */

static void *thread_body(void *arg) { return arg; }

/* This process's address space in bytes (the first field of statm). */
static size_t address_space(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  unsigned long pages = 0;
  if (!f || fscanf(f, "%lu", &pages) != 1) _exit(4);
  fclose(f);
  return pages * (size_t)sysconf(_SC_PAGESIZE);
}

static void address_space_child(void *arg) {
  (void)arg;
  const size_t big = 768 * MiB;
  pinheap *h = simple_heap(0);
  struct rlimit lim = {address_space() + big + 256 * MiB, RLIM_INFINITY};
  if (setrlimit(RLIMIT_AS, &lim) != 0) _exit(4);
  for (int round = 0; round < 3; round++) {
    char *p = pinheap_malloc(h, big);
    if (!p) {
      fprintf(stderr, "round %d: malloc(768 MiB): %s\n", round, pinheap_last_error());
      _exit(1);
    }
    p[0] = p[big - 1] = 1;
    pinheap_free(h, p);
    /* What the heap gave back, another user of the address space can have. */
    void *m = mmap(NULL, big, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) {
      fprintf(stderr, "round %d: after the free, mmap(768 MiB) fails: %s\n", round, strerror(errno));
      _exit(2);
    }
    munmap(m, big);
    pthread_t t;
    int err = pthread_create(&t, NULL, thread_body, NULL);
    if (err) {
      fprintf(stderr, "round %d: after the free, pthread_create fails: %s\n", round, strerror(err));
      _exit(3);
    }
    pthread_join(t, NULL);
  }
  pinheap_destroy(h);
}

/* Under a limit on the address space, a freed large block's address space
 * is free again at once: the next mmap and a new thread's stack get it. */
static void test_address_space_given_back(void **state) {
  (void)state;
  child_result r;
  child_run(address_space_child, NULL, &r);
  if (r.status == -1 || !WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0)
    fail_msg("status %#x, stderr:\n%s", r.status, r.err);
}

/* ---- the debugging aids -------------------------------------------------- */

static void write_after_free_child(void *arg) {
  size_t size = *(const size_t *)arg;
  pinheap *h = simple_heap(PINHEAP_DEBUG_POISON);
  char *p = pinheap_malloc(h, size);
  pinheap_free(h, p);
  p[10] = 0x20;
  fprintf(stderr, "wrote into %p\n", (void *)p);
  /* A small object waits in a FIFO of 256 before reuse: 300 more frees push
   * p out of it, and it is checked then; a large block is checked when the
   * thread's cache hands it out again. */
  void *more[300];
  for (int i = 0; i < 300; i++) more[i] = pinheap_malloc(h, size);
  for (int i = 0; i < 300; i++) pinheap_free(h, more[i]);
  pinheap_malloc(h, size);
  _exit(0);
}

/* With poison, a write after free is caught when the block leaves the
 * hold-back FIFO (a small object) or is handed out again (a large block). */
static void test_poison_catches_write_after_free(void **state) {
  (void)state;
  static const size_t sizes[] = {80, 20 * KiB};
  for (size_t i = 0; i < 2; i++) {
    child_result r;
    child_run(write_after_free_child, (void *)&sizes[i], &r);
    void *p = NULL;
    const char *wrote = strstr(r.err, "wrote into ");
    if (!child_aborted(&r) || !wrote || sscanf(wrote, "wrote into %p", &p) != 1)
      fail_msg("%zu bytes: status %#x, stderr:\n%s", sizes[i], r.status, r.err);
    char text[64];
    snprintf(text, sizeof text, "block %p: freed block", p);
    assert_contains(r.err, text);
    assert_contains(r.err, "written after its free: byte 10 is 0x20");
  }
}

static void broken_canary_child(void *arg) {
  size_t size = *(const size_t *)arg;
  pinheap *h = simple_heap(PINHEAP_DEBUG_CANARY);
  char *p = pinheap_malloc(h, size);
  p[size] = 0x35; /* one past the end */
  fprintf(stderr, "broke %p\n", (void *)p);
  _exit(pinheap_check(h));
}

/* With canaries, pinheap_check finds the broken canary of a live large
 * block, and of a direct one. */
static void test_check_finds_broken_canary(void **state) {
  (void)state;
  static const size_t sizes[] = {100000, 20 * MiB};
  for (size_t i = 0; i < 2; i++) {
    child_result r;
    child_run(broken_canary_child, (void *)&sizes[i], &r);
    void *p = NULL;
    const char *broke = strstr(r.err, "broke ");
    if (r.status == -1 || !WIFEXITED(r.status) || WEXITSTATUS(r.status) != 1 || !broke ||
        sscanf(broke, "broke %p", &p) != 1)
      fail_msg("%zu bytes: status %#x, stderr:\n%s", sizes[i], r.status, r.err);
    char text[96];
    snprintf(text, sizeof text, "live block %p: block of %zu bytes written past its end", p, sizes[i]);
    assert_contains(r.err, text);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bad_frees_of_large_blocks_abort),
      cmocka_unit_test(test_huge_requests_answered_at_once),
      cmocka_unit_test(test_address_space_given_back),
      cmocka_unit_test(test_poison_catches_write_after_free),
      cmocka_unit_test(test_check_finds_broken_canary),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
