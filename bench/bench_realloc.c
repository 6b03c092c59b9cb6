/* Growth by realloc: one buffer grown from STEP to TOP bytes by STEP at a
 * time (a log, a vector, a string builder), one byte written per step. Built
 * twice: bench_realloc_pinheap (a pinheap heap, DYNAMIC or FIXED) and
 * bench_realloc_glibc (the C library's realloc: no pinheap, no jemalloc in
 * that process). run_realloc.sh drives them side by side.
 *
 *   bench_realloc_pinheap dynamic|fixed [step_kib [top_mib]]
 *   bench_realloc_glibc [step_kib [top_mib]]
 *
 * Prints one line: the allocator, the calls, how many moved the buffer, the
 * seconds. Exits 1 when a realloc fails or a byte written earlier is lost. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef BENCH_REALLOC_GLIBC
#define BR_NAME "glibc"
#define BR_FIRST_ARG 1
static void *br_realloc(void *p, size_t n) { return realloc(p, n); }
static void br_free(void *p) { free(p); }
static int br_open(char **argv, size_t top) {
  (void)argv;
  (void)top;
  return 0;
}
static void br_close(void) {}
#else
#include "pinheap.h"
static pinheap *heap;
static const char *br_mode = "dynamic";
#define BR_NAME br_mode
#define BR_FIRST_ARG 2
static void *br_realloc(void *p, size_t n) { return pinheap_realloc(heap, p, n); }
static void br_free(void *p) { pinheap_free(heap, p); }
/* The heap argv[1] names; FIXED: a region with room for the buffer twice
 * and jemalloc's arenas. 0, or -1 after a message. */
static int br_open(char **argv, size_t top) {
  pinheap_options o;
  pinheap_options_init(&o);
  o.arenas = 1;
  if (strcmp(argv[1], "fixed") == 0) {
    o.mode = PINHEAP_FIXED;
    o.size = 2 * top + ((size_t)64 << 20);
    br_mode = "fixed";
  } else if (strcmp(argv[1], "dynamic") == 0) {
    o.mode = PINHEAP_DYNAMIC;
  } else {
    fprintf(stderr, "usage: %s dynamic|fixed [step_kib [top_mib]]\n", argv[0]);
    return -1;
  }
  heap = pinheap_create(&o);
  if (!heap) {
    fprintf(stderr, "pinheap_create: %s\n", pinheap_last_error());
    return -1;
  }
  return 0;
}
static void br_close(void) { pinheap_destroy(heap); }
#endif

static double br_seconds(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static unsigned char br_stamp(size_t n) { return (unsigned char)(n * 2654435761u >> 24); }

int main(int argc, char **argv) {
  const int a = BR_FIRST_ARG;
  size_t step = (argc > a ? strtoull(argv[a], NULL, 10) : 64) << 10;
  size_t top = (argc > a + 1 ? strtoull(argv[a + 1], NULL, 10) : 128) << 20;
  if (argc < a || !step || top < step) {
    fprintf(stderr, "bench_realloc: a mode (pinheap), a step of at least 1 KiB and a top of at least one step\n");
    return 2;
  }
  if (br_open(argv, top) != 0) return 2;
  unsigned char *p = NULL;
  size_t calls = 0, moves = 0;
  double t = br_seconds();
  for (size_t n = step; n <= top; n += step) {
    unsigned char *q = br_realloc(p, n);
    if (!q) {
      fprintf(stderr, "bench_realloc (%s): realloc to %zu bytes failed\n", BR_NAME, n);
      return 1;
    }
    calls++;
    moves += p && q != p;
    q[n - 1] = br_stamp(n);
    p = q;
  }
  t = br_seconds() - t;
  for (size_t n = step; n <= top; n += step)
    if (p[n - 1] != br_stamp(n)) {
      fprintf(stderr, "bench_realloc (%s): byte %zu lost\n", BR_NAME, n - 1);
      return 1;
    }
  br_free(p);
  br_close();
  printf("%s calls=%zu moves=%zu seconds=%.4f\n", BR_NAME, calls, moves, t);
  return 0;
}
