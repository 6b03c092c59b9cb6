/*
 * DPDK's rte_malloc over an external heap (Debian libdpdk-dev 22.11): the
 * EAL started once per process without huge pages, PCI, telemetry or a
 * shared configuration, on one lcore (22.11 refuses --in-memory with
 * --no-huge); each heap a named heap (rte_malloc_heap_create) given the
 * region (rte_malloc_heap_memory_add, 4 KiB pages, no IOVAs), allocated
 * from by its socket id; other threads registered (rte_thread_register).
 * rte_free clears a freed block (its memory is then written), as DPDK
 * does for memory it does not know to be dirty.
 */
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <stdio.h>
#include <stdlib.h>

#include "peer.h"

#define DP_PAGE ((size_t)4096)

/* Invariants: [base, base + size) is all the memory of the named heap name,
 * size a multiple of DP_PAGE; socket is that heap's socket id. */
typedef struct dp_heap {
  char name[32];
  char *base;
  size_t size;
  int socket;
} dp_heap;

static _Thread_local bool dp_registered;

static int dp_setup(const peer *p, const char *argv0, char *err, size_t errlen) {
  (void)p, (void)argv0;
  char *args[] = {"compare", "--no-huge", "--no-pci", "--no-telemetry", "--no-shconf", "-l", "0",
                  "--log-level", "lib.eal:error", NULL};
  if (rte_eal_init((int)(sizeof args / sizeof args[0]) - 1, args) < 0)
    return peer_fail(err, errlen, "rte_eal_init: %s", rte_strerror(rte_errno)), -1;
  return 0;
}

static void dp_destroy(peer_heap *ph) {
  dp_heap *h = (dp_heap *)ph;
  if (rte_malloc_heap_memory_remove(h->name, h->base, h->size) != 0 || rte_malloc_heap_destroy(h->name) != 0)
    fprintf(stderr, "dpdk: heap %s not destroyed: %s\n", h->name, rte_strerror(rte_errno));
  else
    peer_region_unmap(h->base, h->size);
  free(h);
}

static peer_heap *dp_create(const peer *p, size_t size, unsigned threads, bool prefault, char *err, size_t errlen) {
  (void)p, (void)threads;
  static unsigned serial;
  dp_heap *h = calloc(1, sizeof *h);
  if (!h) return peer_fail(err, errlen, "no memory");
  snprintf(h->name, sizeof h->name, "compare%u", serial++);
  h->size = size / DP_PAGE * DP_PAGE;
  h->base = peer_region_map(h->size, DP_PAGE, prefault);
  if (!h->base) return free(h), peer_fail(err, errlen, "no address space for %zu bytes", size);
  if (rte_malloc_heap_create(h->name) != 0) {
    peer_region_unmap(h->base, h->size);
    free(h);
    return peer_fail(err, errlen, "rte_malloc_heap_create: %s", rte_strerror(rte_errno));
  }
  if (rte_malloc_heap_memory_add(h->name, h->base, h->size, NULL, 0, DP_PAGE) != 0) {
    int e = rte_errno;
    rte_malloc_heap_destroy(h->name);
    peer_region_unmap(h->base, h->size);
    free(h);
    return peer_fail(err, errlen, "rte_malloc_heap_memory_add(%zu bytes): %s", size, rte_strerror(e));
  }
  h->socket = rte_malloc_heap_get_socket(h->name);
  return (peer_heap *)h;
}

static void dp_thread_start(peer_heap *h) {
  (void)h;
  if (rte_lcore_id() == LCORE_ID_ANY && rte_thread_register() == 0) dp_registered = true;
}
static void dp_thread_stop(peer_heap *h) {
  (void)h;
  if (dp_registered) rte_thread_unregister();
  dp_registered = false;
}
static void *dp_malloc(peer_heap *h, size_t size) { return rte_malloc_socket(NULL, size, 0, ((dp_heap *)h)->socket); }
static void *dp_calloc(peer_heap *h, size_t n, size_t size) {
  return rte_calloc_socket(NULL, n, size, 0, ((dp_heap *)h)->socket);
}
static void *dp_realloc(peer_heap *h, void *ptr, size_t size) {
  return rte_realloc_socket(ptr, size, 0, ((dp_heap *)h)->socket);
}
static void *dp_aligned(peer_heap *h, size_t a, size_t size) {
  return rte_malloc_socket(NULL, size, (unsigned)a, ((dp_heap *)h)->socket);
}
static void dp_free(peer_heap *h, void *ptr) { (void)h, rte_free(ptr); }
static void *dp_base(peer_heap *h) { return ((dp_heap *)h)->base; }
static bool dp_owns(peer_heap *h, const void *ptr, size_t size) {
  return peer_region_holds(((dp_heap *)h)->base, ((dp_heap *)h)->size, ptr, size);
}
static int dp_space(peer_heap *h, peer_space *out) {
  struct rte_malloc_socket_stats st;
  if (rte_malloc_get_socket_stats(((dp_heap *)h)->socket, &st) != 0) return -1;
  out->free_bytes = st.heap_freesz_bytes;
  out->largest_free = st.greatest_free_size;
  return 0;
}

size_t peer_dpdk(peer *out, size_t max) {
  if (max)
    out[0] = (peer){.name = "dpdk",
                    .what = "DPDK 22.11 rte_malloc over an external heap (rte_malloc_heap_create, "
                            "rte_malloc_heap_memory_add, 4 KiB pages), EAL without huge pages",
                    .flags = PEER_FIXED | PEER_THREADS | PEER_SPACE, .max_heap = (size_t)16 << 30,
                    .setup = dp_setup, .create = dp_create, .malloc = dp_malloc, .calloc = dp_calloc,
                    .realloc = dp_realloc, .aligned = dp_aligned, .free = dp_free, .space = dp_space,
                    .base = dp_base, .owns = dp_owns, .thread_start = dp_thread_start, .thread_stop = dp_thread_stop,
                    .destroy = dp_destroy};
  return 1;
}
