/*
 * A seeded random sequence of shmem_malloc, shmem_calloc, shmem_align,
 * shmem_realloc and shmem_free on up to 48 live objects of 1 byte to
 * 4 MiB (a few of 8 MiB), at most 24 MiB live, with data checked all the
 * way: right after an object is allocated each PE puts its bytes into the
 * right neighbour's copy (calloc: into the second half, the first half
 * checked zero); a realloc keeps what the object held (checked before the
 * neighbour rewrites it); before a free the object must still hold what
 * was put. The sequence depends on the seed alone, not on where the
 * allocator places objects, so the output is the same under any correct
 * allocator. Errors in objects from shmem_calloc are counted apart:
 * an implementation that zeroes after the call's barrier loses the puts
 * made right after it.
 *
 *   spec_churn [seed [steps]]     defaults: the clock, 600 steps
 */
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "spec.h"

#define SLOTS 48
#define BUDGET ((size_t)24 << 20)

typedef struct slot {
  unsigned char *p;
  size_t size;
  size_t zero; /* [0, zero) is zero (calloc), [zero, size) the left neighbour's bytes */
  unsigned salt;
  int calloced; /* from shmem_calloc, not rewritten since */
} slot;

static slot slots[SLOTS];
static size_t live_bytes;
/* Bytes that held something else than they should: in objects from
 * shmem_calloc, and in the others, counted apart. */
static long errors, calloc_errors;

static uint64_t rng(uint64_t *s) {
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  return *s * 2685821657736338717ull;
}

static size_t pick_size(uint64_t *s) {
  uint64_t r = rng(s);
  if (r % 50 == 0) return (size_t)8 << 20;
  return 1 + (size_t)(rng(s) % ((size_t)1 << (r % 23))); /* 1 B to 4 MiB, log-uniform */
}

static void verify(const slot *o) {
  int left = (spec_me + spec_npes - 1) % spec_npes;
  long bad = 0;
  for (size_t k = 0; k < o->size; k++) bad += o->p[k] != (k < o->zero ? 0 : spec_byte(left, k, o->salt));
  *(o->calloced ? &calloc_errors : &errors) += bad;
}

/* Each PE writes its bytes for salt into [from, size) of the right
 * neighbour's copy of o, then a barrier. */
static void put_right(slot *o, size_t from, unsigned salt) {
  static unsigned char buf[(size_t)8 << 20];
  for (size_t k = from; k < o->size; k++) buf[k] = spec_byte(spec_me, k, salt);
  shmem_putmem(o->p + from, buf + from, o->size - from, (spec_me + 1) % spec_npes);
  shmem_barrier_all();
}

int main(int argc, char **argv) {
  uint64_t seed = argc > 1 ? strtoull(argv[1], NULL, 0) : (uint64_t)time(NULL);
  int steps = argc > 2 ? atoi(argv[2]) : 600;
  spec_init();
  /* Every PE takes PE 0's seed. */
  static uint64_t shared_seed;
  shared_seed = seed;
  shmem_barrier_all();
  if (spec_me != 0) shmem_getmem(&shared_seed, &shared_seed, sizeof shared_seed, 0);
  shmem_barrier_all();
  seed = shared_seed;
  if (spec_me == 0) printf("spec_churn: seed %llu, %d steps\n", (unsigned long long)seed, steps);
  uint64_t s = seed | 1;
  long failed = 0;
  for (int step = 1; step <= steps; step++) {
    slot *o = &slots[rng(&s) % SLOTS];
    unsigned salt = (unsigned)step;
    int op = (int)(rng(&s) % 4);
    size_t size = pick_size(&s);
    if (o->p && op == 0) {
      verify(o);
      shmem_free(o->p);
      live_bytes -= o->size;
      *o = (slot){0};
    } else if (o->p && size <= BUDGET - live_bytes + o->size) {
      verify(o);
      unsigned char *q = shmem_realloc(o->p, size);
      if (!q) {
        failed++;
        continue;
      }
      live_bytes += size - o->size;
      o->p = q;
      if (size < o->size) o->size = size;
      if (o->zero > o->size) o->zero = o->size;
      verify(o);
      shmem_barrier_all();
      o->size = size;
      o->zero = 0;
      o->salt = salt;
      o->calloced = 0;
      put_right(o, 0, salt);
    } else if (!o->p && size <= BUDGET - live_bytes) {
      size_t align = (size_t)8 << (rng(&s) % 16);
      o->p = op == 1 ? shmem_calloc(size, 1) : op == 2 ? shmem_align(align, size) : shmem_malloc(size);
      if (!o->p) {
        failed++;
        continue;
      }
      errors += op == 2 && (uintptr_t)o->p % align;
      o->size = size;
      o->zero = op == 1 ? size / 2 : 0;
      o->calloced = op == 1;
      o->salt = salt;
      live_bytes += size;
      put_right(o, o->zero, salt);
      verify(o);
    }
    if (step % 100 == 0) {
      long e = spec_sum(errors), c = spec_sum(calloc_errors), f = spec_sum(failed);
      int n = 0;
      for (int i = 0; i < SLOTS; i++) n += slots[i].p != NULL;
      if (spec_me == 0) {
        printf("step %d: %d live objects, %zu bytes live, %ld failed requests, %ld errors\n", step, n, live_bytes,
               f, e);
        printf("step %d: %ld errors in objects from shmem_calloc\n", step, c);
      }
    }
  }
  for (int i = 0; i < SLOTS; i++)
    if (slots[i].p) {
      verify(&slots[i]);
      shmem_free(slots[i].p);
    }
  spec_report("spec_churn: every object not from shmem_calloc held what was put into it", errors);
  spec_report("spec_churn: every object from shmem_calloc held what was put into it", calloc_errors);
  shmem_finalize();
  return 0;
}
