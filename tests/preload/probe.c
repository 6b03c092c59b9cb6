/*
 * Prints what the malloc family answers to edge cases, one line each
 * (results, errno, alignment; never addresses or usable sizes, which differ
 * between allocators), so that a run under libpinheap-preload.so can be
 * compared line by line with a run under glibc's malloc (probe.sh).
 *
 *   probe
 */
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MiB ((size_t)1 << 20)

/* The failed reallocs below leave their block live, which GCC cannot know. */
#pragma GCC diagnostic ignored "-Wuse-after-free"

static const char *errname(int e) {
  switch (e) {
  case 0: return "0";
  case ENOMEM: return "ENOMEM";
  case EINVAL: return "EINVAL";
  default: return strerror(e);
  }
}

/* One allocation's outcome: NULL or not, errno when NULL, and whether the
 * block is aligned to align (0: not checked). Frees the block. */
static void show(const char *call, void *p, int err, size_t align) {
  if (!p) {
    printf("%-40s NULL errno=%s\n", call, errname(err));
    return;
  }
  printf("%-40s block%s\n", call, align ? ((uintptr_t)p % align ? " MISALIGNED" : " aligned") : "");
  free(p);
}

#define SHOW(expr, align)                 \
  do {                                    \
    errno = 0;                            \
    void *p_ = (expr);                    \
    show(#expr, p_, errno, (align));      \
  } while (0)

static void show_posix_memalign(size_t align, size_t size) {
  void *p = NULL;
  int r = posix_memalign(&p, align, size);
  char call[64];
  snprintf(call, sizeof call, "posix_memalign(%zu, %#zx)", align, size);
  printf("%-40s returns %s%s\n", call, errname(r), r == 0 ? ((uintptr_t)p % align ? " MISALIGNED" : " aligned") : "");
  if (r == 0) free(p);
}

/* The largest number following `key` in text. */
static size_t max_after(const char *text, const char *key) {
  size_t best = 0;
  for (const char *s = strstr(text, key); s; s = strstr(s + 1, key)) {
    size_t v = strtoull(s + strlen(key), NULL, 10);
    if (v > best) best = v;
  }
  return best;
}

int main(void) {
  /* Opaque to the compiler, which would warn about the sizes. */
  volatile size_t huge_v = SIZE_MAX, past_v = (size_t)PTRDIFF_MAX + 1;
  const size_t huge = huge_v, past = past_v;
  setvbuf(stdout, NULL, _IONBF, 0);

  /* Sizes no allocator can hold: ENOMEM. */
  SHOW(malloc(huge), 0);
  SHOW(malloc(past), 0);
  SHOW(malloc(huge - 4096), 0);
  SHOW(calloc(huge / 2, 4), 0);
  SHOW(calloc(4, huge / 2), 0);
  SHOW(calloc(1, huge), 0);
  SHOW(calloc(past, 1), 0);
  SHOW(valloc(huge), 0);
  SHOW(valloc(past), 0);
  SHOW(pvalloc(huge), 0);
  SHOW(pvalloc(past), 0);
  SHOW(memalign(64, huge), 0);
  SHOW(memalign(4096, past), 0);
  SHOW(aligned_alloc(64, huge), 0);
  SHOW(aligned_alloc(4096, past), 0);
  SHOW(memalign((size_t)1 << 62, 10), 0);
  SHOW(memalign(huge / 2 + 2, 10), 0);

  char *b = malloc(100);
  memset(b, 0x5a, 100);
  errno = 0;
  void *r = realloc(b, huge);
  printf("%-40s %s errno=%s, block kept: %s\n", "realloc(b, huge)", r ? "block" : "NULL", errname(errno),
         b[99] == 0x5a ? "yes" : "no");
  errno = 0;
  r = realloc(b, past);
  printf("%-40s %s errno=%s\n", "realloc(b, past)", r ? "block" : "NULL", errname(errno));
  errno = 0;
  r = reallocarray(b, huge / 2, 4);
  printf("%-40s %s errno=%s\n", "reallocarray(b, huge / 2, 4)", r ? "block" : "NULL", errname(errno));
  free(b);

  /* posix_memalign returns its error. */
  show_posix_memalign(64, huge);
  show_posix_memalign(4096, past);
  show_posix_memalign(0, 10);
  show_posix_memalign(3, 10);
  show_posix_memalign(4, 10);
  show_posix_memalign(24, 10);
  show_posix_memalign(8, 10);
  show_posix_memalign(64, 10);
  show_posix_memalign(65536, 100);

  /* memalign and aligned_alloc (the same function in glibc 2.36): an
   * alignment up to 16 is malloc's (16), another one not a power of two is
   * rounded up to one. */
  SHOW(memalign(0, 100), 16);
  SHOW(memalign(3, 100), 16);
  SHOW(memalign(8, 100), 16);
  SHOW(memalign(24, 100), 32);
  SHOW(memalign(48, 5000), 64);
  SHOW(memalign(4096, 100), 4096);
  SHOW(memalign((size_t)1 << 21, 100), (size_t)1 << 21);
  SHOW(aligned_alloc(0, 100), 16);
  SHOW(aligned_alloc(3, 100), 16);
  SHOW(aligned_alloc(24, 100), 32);
  SHOW(aligned_alloc(100, 1000), 128);
  SHOW(aligned_alloc(64, 100), 64);
  SHOW(valloc(100), 4096);
  SHOW(pvalloc(100), 4096);
  SHOW(pvalloc(0), 4096);
  SHOW(malloc(0), 0);
  SHOW(calloc(0, 0), 0);
  SHOW(realloc(NULL, 10), 0);

  char *u = malloc(100);
  printf("%-40s %s\n", "malloc_usable_size(malloc(100)) >= 100", malloc_usable_size(u) >= 100 ? "yes" : "no");
  free(u);

  /* The introspection calls answer for the allocator that holds the block. */
  char *big = malloc(64 * MiB);
  memset(big, 1, 4096);
  struct mallinfo2 mi = mallinfo2();
  printf("%-40s %s\n", "mallinfo2 counts a live 64 MiB block", mi.uordblks + mi.hblkhd >= 64 * MiB ? "yes" : "no");
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  int ri = malloc_info(0, f);
  fclose(f);
  printf("%-40s returns %d, counts it: %s\n", "malloc_info", ri, max_after(text, "size=\"") >= 64 * MiB ? "yes" : "no");
  free(text);
  char tmpl[] = "/tmp/pinheap-probe.XXXXXX";
  int fd = mkstemp(tmpl), saved = dup(STDERR_FILENO);
  dup2(fd, STDERR_FILENO);
  malloc_stats();
  fflush(stderr);
  dup2(saved, STDERR_FILENO);
  close(saved);
  char stats[4096] = {0};
  ssize_t got = pread(fd, stats, sizeof stats - 1, 0);
  close(fd);
  unlink(tmpl);
  printf("%-40s %s\n", "malloc_stats counts it", got > 0 && max_after(stats, "in use bytes     =") >= 64 * MiB ? "yes" : "no");
  free(big);
  mi = mallinfo2();
  printf("%-40s %s\n", "mallinfo2 after its free", mi.uordblks + mi.hblkhd < 64 * MiB ? "below 64 MiB" : "64 MiB or more");
  int t = malloc_trim(0);
  printf("%-40s %s\n", "malloc_trim(0) returns 0 or 1", t == 0 || t == 1 ? "yes" : "no");
  return 0;
}
