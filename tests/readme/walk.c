/* Context of the README's snippet on walking a heap ("From C", under
 * "Traces"): a FIXED heap with a large block and small objects in it. */
#include <stdio.h>
#include <stdlib.h>
#include <pinheap.h>
#pragma readme top

int main(void) {
  pinheap_options opts;
  pinheap_options_init(&opts);
  opts.size = (size_t)64 << 20;
  pinheap *heap = pinheap_create(&opts);
  if (!heap) return 1;
  void *big = pinheap_malloc(heap, (size_t)5 << 20), *small = pinheap_malloc(heap, 100);
#pragma readme body
  pinheap_free(heap, big);
  pinheap_free(heap, small);
  pinheap_destroy(heap);
  printf("ok\n");
  return 0;
}
