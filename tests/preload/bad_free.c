/*
 * Bad frees that glibc's malloc catches by default, for a run under glibc
 * and under libpinheap-preload.so (cases.sh): the pointer passed goes to
 * stderr first, then the misuse; "ok" runs legitimate patterns and exits 0.
 *
 *   bad_free twice | twice_between | interior8 | interior16 | ok
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Opaque to the compiler, which would warn about the misuse. */
static void (*volatile release)(void *) = free;

int main(int argc, char **argv) {
  const char *what = argc > 1 ? argv[1] : "";
  char *p = malloc(40), *q = malloc(40), *r = malloc(64);
  memset(p, 0, 40);
  memset(q, 0, 40);
  memset(r, 0, 64);
  if (strcmp(what, "ok") == 0) {
    /* Freed unwritten, written in part, handed out again, freed again. */
    for (int i = 0; i < 1000; i++) {
      unsigned char *a = malloc((size_t)(i % 300)), *b = calloc(1, (size_t)(i % 50));
      if (i % 3 == 0 && i % 300) a[i % 8 < i % 300 ? i % 8 : 0] = (unsigned char)i;
      release(a);
      release(b);
    }
    release(p);
    release(q);
    release(r);
    puts("bad_free: legitimate patterns passed");
    return 0;
  }
  char *bad = strcmp(what, "interior8") == 0 ? p + 8 : strcmp(what, "interior16") == 0 ? r + 16 : p;
  fprintf(stderr, "pointer %p\n", (void *)bad);
  if (strncmp(what, "twice", 5) == 0) {
    release(p);
    if (strcmp(what, "twice_between") == 0) release(q);
  }
  release(bad);
  puts("bad_free: not caught");
  return 0;
}
