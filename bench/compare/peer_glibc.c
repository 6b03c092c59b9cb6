/* The C library's malloc (glibc's ptmalloc, with its thread caches), in a
 * runner that links no other allocator: a reference, over no fixed region. */
#include <stdlib.h>

#include "peer.h"

static peer_heap *gl_create(const peer *p, size_t size, unsigned threads, bool prefault, char *err, size_t errlen) {
  (void)p, (void)size, (void)threads, (void)prefault, (void)err, (void)errlen;
  static char token;
  return (peer_heap *)&token;
}
static void *gl_malloc(peer_heap *h, size_t size) { return (void)h, malloc(size); }
static void *gl_calloc(peer_heap *h, size_t n, size_t size) { return (void)h, calloc(n, size); }
static void *gl_realloc(peer_heap *h, void *ptr, size_t size) { return (void)h, realloc(ptr, size); }
static void *gl_aligned(peer_heap *h, size_t a, size_t size) { return (void)h, aligned_alloc(a, size); }
static void gl_free(peer_heap *h, void *ptr) { (void)h, free(ptr); }
static void gl_destroy(peer_heap *h) { (void)h; }

size_t peer_glibc(peer *out, size_t max) {
  if (max)
    out[0] = (peer){.name = "glibc", .what = "the C library's malloc (glibc ptmalloc), no fixed region",
                    .flags = PEER_THREADS, .create = gl_create, .malloc = gl_malloc, .calloc = gl_calloc,
                    .realloc = gl_realloc, .aligned = gl_aligned, .free = gl_free, .destroy = gl_destroy};
  return 1;
}
