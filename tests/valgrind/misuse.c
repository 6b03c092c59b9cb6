/*
 * misuse: errors valgrind's memcheck must report in a heap's memory, for
 * tests/valgrind.sh, which checks that each is reported. Run natively it
 * only reads and writes memory the heap still has mapped.
 *
 *   1. a read of a small object after its free
 *   2. a write into a large block after its free
 *   3. a branch on a byte of a fresh block never written
 *   4. a read one byte past a block asked for 100 bytes (with canaries: the
 *      block ends where the caller's bytes do)
 */
#include <stdio.h>
#include <string.h>

#include "pinheap.h"

static pinheap *heap(unsigned debug) {
  pinheap_options o;
  pinheap_options_init(&o);
  o.size = (size_t)64 << 20;
  o.arenas = 1;
  o.debug = debug;
  pinheap *h = pinheap_create(&o);
  if (!h) {
    fprintf(stderr, "misuse: %s\n", pinheap_last_error());
    return NULL;
  }
  return h;
}

int main(void) {
  pinheap *h = heap(0), *d = heap(PINHEAP_DEBUG_CANARY);
  if (!h || !d) return 1;
  char *small = pinheap_malloc(h, 100), *large = pinheap_malloc(h, 100000);
  memset(small, 1, 100);
  memset(large, 1, 100000);
  pinheap_free(h, small);
  pinheap_free(h, large);
  volatile char sink = small[5]; /* 1 */
  large[10] = 3;                 /* 2 */
  char *fresh = pinheap_malloc(h, 100);
  if (fresh[3] == 42) puts("misuse: 42"); /* 3 */
  char *exact = pinheap_malloc(d, 100);
  memset(exact, 1, 100);
  sink = exact[100]; /* 4 */
  (void)sink;
  pinheap_free(h, fresh);
  pinheap_free(d, exact);
  pinheap_destroy(h);
  pinheap_destroy(d);
  return 0;
}
