/*
 * Open MPI's OpenSHMEM (OSHMEM 4.1): shmem_malloc and friends over the
 * symmetric heap, as an OpenSHMEM program uses them, with the memheap
 * component ptmalloc (dlmalloc, the default) or buddy. The heap's size is
 * fixed when shmem_init runs (SHMEM_SYMMETRIC_HEAP_SIZE), so every replay
 * is an oshrun job of one PE (PEER_EXTERNAL: launch gives the words);
 * allocation is collective and made by one thread of a PE at a time, so
 * one thread only. It cannot say its free space. Open MPI maps (and
 * registers) more than SHMEM_SYMMETRIC_HEAP_SIZE: H is that mapping. The base of a heap (for
 * pictures) is where the first block of the empty heap lands.
 */
#include <shmem.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "peer.h"

static const char *const osh_components[] = {"ptmalloc", "buddy"};
static bool osh_started, osh_used;
static void *osh_first;
static char *osh_lo;   /* the mapping that holds the heap (osh_mapping) */
static size_t osh_len;

static int osh_setup(const peer *p, const char *argv0, char *err, size_t errlen) {
  (void)argv0;
  const char *c = getenv("OMPI_MCA_memheap");
  if (!c || strcmp(c, osh_components[p->variant]) != 0)
    return peer_fail(err, errlen, "run under oshrun --mca memheap %s (OMPI_MCA_memheap is %s)",
                     osh_components[p->variant], c ? c : "unset"), -1;
  shmem_init();
  osh_started = true;
  atexit(shmem_finalize);
  return 0;
}

/* The mapping that holds the heap: Open MPI maps (and registers) more than
 * SHMEM_SYMMETRIC_HEAP_SIZE, for its own use. Found in /proc/self/maps
 * from the first block; 0, or -1. */
static int osh_mapping(void) {
  FILE *f = fopen("/proc/self/maps", "r");
  unsigned long lo, hi;
  char line[512];
  while (f && !osh_len && fgets(line, sizeof line, f))
    if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && (uintptr_t)osh_first >= lo && (uintptr_t)osh_first < hi) {
      osh_lo = (char *)lo;
      osh_len = hi - lo;
    }
  if (f) fclose(f);
  return osh_len ? 0 : -1;
}

static peer_heap *osh_create(const peer *p, size_t size, unsigned threads, bool prefault, char *err, size_t errlen) {
  (void)p, (void)threads, (void)prefault;
  const char *s = getenv("SHMEM_SYMMETRIC_HEAP_SIZE");
  if (!osh_started || !s || strtoull(s, NULL, 10) != size)
    return peer_fail(err, errlen, "the symmetric heap is fixed at shmem_init: run with SHMEM_SYMMETRIC_HEAP_SIZE=%zu",
                     size);
  if (osh_used) return peer_fail(err, errlen, "one heap per process");
  osh_used = true;
  osh_first = shmem_malloc(1);
  shmem_free(osh_first);
  if (!osh_first || osh_mapping() != 0) return peer_fail(err, errlen, "the symmetric heap's mapping was not found");
  static char token;
  return (peer_heap *)&token;
}

static void *osh_malloc(peer_heap *h, size_t size) { return (void)h, shmem_malloc(size); }
static void *osh_calloc(peer_heap *h, size_t n, size_t size) { return (void)h, shmem_calloc(n, size); }
static void *osh_realloc(peer_heap *h, void *ptr, size_t size) { return (void)h, shmem_realloc(ptr, size); }
static void *osh_aligned(peer_heap *h, size_t a, size_t size) { return (void)h, shmem_align(a, size); }
static void osh_free(peer_heap *h, void *ptr) { (void)h, shmem_free(ptr); }
static void *osh_base(peer_heap *h) { return (void)h, osh_first; }
static void osh_destroy(peer_heap *h) { (void)h; }

static size_t osh_extent(peer_heap *h) { return (void)h, osh_len; }
static bool osh_owns(peer_heap *h, const void *ptr, size_t size) {
  return (void)h, peer_region_holds(osh_lo, osh_len, ptr, size);
}

static size_t osh_launch(const peer *p, size_t heap, const char **argv, size_t max) {
  static char size[32];
  static const char *words[] = {"oshrun", "-np", "1", "--mca", "osc", "^rdma", "--mca", "memheap", NULL,
                                "--allow-run-as-root"};
  size_t n = sizeof words / sizeof words[0] - (geteuid() == 0 ? 0 : 1);
  if (n > max) return 0;
  snprintf(size, sizeof size, "%zu", heap);
  setenv("SHMEM_SYMMETRIC_HEAP_SIZE", size, 1);
  for (size_t i = 0; i < n; i++) argv[i] = words[i] ? words[i] : osh_components[p->variant];
  return n;
}

size_t peer_oshmem(peer *out, size_t max) {
  static const peer proto = {.flags = PEER_FIXED | PEER_EXTERNAL, .max_heap = (size_t)16 << 30,
                             .setup = osh_setup, .create = osh_create, .malloc = osh_malloc, .calloc = osh_calloc,
                             .realloc = osh_realloc, .aligned = osh_aligned, .free = osh_free, .base = osh_base,
                             .extent = osh_extent, .owns = osh_owns, .destroy = osh_destroy, .launch = osh_launch};
  if (max > 0) {
    out[0] = proto;
    out[0].name = "oshmem-ptmalloc";
    out[0].what = "Open MPI 4.1 OSHMEM shmem_malloc, memheap ptmalloc (dlmalloc), oshrun -np 1";
    out[0].variant = 0;
  }
  if (max > 1) {
    out[1] = proto;
    out[1].name = "oshmem-buddy";
    out[1].what = "Open MPI 4.1 OSHMEM shmem_malloc, memheap buddy, oshrun -np 1";
    out[1].variant = 1;
  }
  return 2;
}
