/* jemalloc's default malloc (Debian's libjemalloc, the process's malloc in
 * the runner that links it): the speed reference, over no fixed region. */
#include <jemalloc/jemalloc.h>
#include <stdlib.h>

#include "peer.h"

static int je_setup(const peer *p, const char *argv0, char *err, size_t errlen) {
  (void)p, (void)argv0;
  /* malloc must be jemalloc's: its per-thread counter moves with it. */
  uint64_t before = 0, after = 0;
  size_t len = sizeof before;
  if (mallctl("thread.allocated", &before, &len, NULL, 0) != 0) return peer_fail(err, errlen, "no mallctl"), -1;
  void *volatile b = malloc(4096);
  mallctl("thread.allocated", &after, &len, NULL, 0);
  free(b);
  if (after < before + 4096) return peer_fail(err, errlen, "malloc is not jemalloc's in this runner"), -1;
  return 0;
}

static peer_heap *je_create(const peer *p, size_t size, unsigned threads, bool prefault, char *err, size_t errlen) {
  (void)p, (void)size, (void)threads, (void)prefault, (void)err, (void)errlen;
  static char token;
  return (peer_heap *)&token;
}
static void *je_malloc(peer_heap *h, size_t size) { return (void)h, malloc(size); }
static void *je_calloc(peer_heap *h, size_t n, size_t size) { return (void)h, calloc(n, size); }
static void *je_realloc(peer_heap *h, void *ptr, size_t size) { return (void)h, realloc(ptr, size); }
static void *je_aligned(peer_heap *h, size_t a, size_t size) { return (void)h, aligned_alloc(a, size); }
static void je_free(peer_heap *h, void *ptr) { (void)h, free(ptr); }
static void je_destroy(peer_heap *h) { (void)h; }

size_t peer_jemalloc(peer *out, size_t max) {
  if (max)
    out[0] = (peer){.name = "jemalloc", .what = "jemalloc's default malloc (Debian libjemalloc2), no fixed region",
                    .flags = PEER_THREADS, .setup = je_setup, .create = je_create, .malloc = je_malloc,
                    .calloc = je_calloc, .realloc = je_realloc, .aligned = je_aligned, .free = je_free,
                    .destroy = je_destroy};
  return 1;
}
