/* Context of the README's provider snippet: the layer it registers with is
 * a counter of the bytes obtained; the heap must live in its memory, and
 * give it all back at pinheap_destroy. */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS, MAP_NORESERVE */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>

#include <pinheap.h>

struct my_layer {
  size_t registered; /* bytes obtained and not released */
};
#pragma readme top

int main(void) {
  struct my_layer layer = {0};
  pinheap_options opts;
  pinheap_options_init(&opts);
  opts.mode = PINHEAP_FIXED;
  opts.size = (size_t)8 << 30;
#pragma readme body
  if (!heap || !ptr || layer.registered < opts.min_size || (char *)ptr < (char *)r.base ||
      (char *)(ptr + 1000) > (char *)r.base + r.size) {
    fprintf(stderr, "provider snippet: heap %p, block %p, %zu bytes registered: %s\n", (void *)heap, (void *)ptr,
            layer.registered, pinheap_last_error());
    return 1;
  }
  pinheap_free(heap, ptr);
  pinheap_destroy(heap);
  if (layer.registered) {
    fprintf(stderr, "provider snippet: %zu bytes still registered after pinheap_destroy\n", layer.registered);
    return 1;
  }
  return 0;
}
