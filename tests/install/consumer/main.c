/* Uses an installed pinheap: a FIXED heap of 64 MiB, a few allocations,
 * frees, then prints "ok". Exits non-zero on any failure. */
#include <pinheap.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAIL(what)                                                         \
  do {                                                                     \
    fprintf(stderr, "consumer: %s failed: %s\n", (what), pinheap_last_error()); \
    return 1;                                                              \
  } while (0)

int main(void) {
  static const size_t sizes[] = {1, 64, 4096, 100000, 4u << 20};
  void *blocks[sizeof sizes / sizeof sizes[0]];
  pinheap_options opts;
  pinheap *heap;
  size_t i;

  pinheap_options_init(&opts);
  opts.mode = PINHEAP_FIXED;
  opts.size = (size_t)64 << 20;
  heap = pinheap_create(&opts);
  if (heap == NULL)
    FAIL("pinheap_create");

  for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    blocks[i] = pinheap_malloc(heap, sizes[i]);
    if (blocks[i] == NULL)
      FAIL("pinheap_malloc");
    if (!pinheap_owns(heap, blocks[i]))
      FAIL("pinheap_owns");
    memset(blocks[i], (int)i + 1, sizes[i]);
  }
  for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
    pinheap_free(heap, blocks[i]);

  pinheap_destroy(heap);
  printf("ok\n");
  return 0;
}
