/*
 * Requests the symmetric heap cannot hold: each must return NULL on every
 * PE, take nothing, and leave the program able to go on.
 *
 * With some objects live, the largest block the heap gives (found by
 * bisection to 1 MiB, every probe freed at once) is measured; then, many
 * times over, a block 1 MiB larger than that, 1 TiB, a calloc whose size
 * overflows, an aligned 1 TiB and a realloc of a live object to 1 TiB are
 * asked for; each must be NULL on every PE, and the realloc's object must
 * keep its contents. The largest block must be the same afterwards, the
 * live objects must still work as targets of puts and gets, and once they
 * are freed the largest block must be what it was at the start.
 *
 *   spec_oom      PE 0 prints what held
 */
#include <stdint.h>
#include <string.h>

#include "spec.h"

#define MiB ((size_t)1 << 20)
#define ROUNDS 25

/* Collective: the largest block shmem_malloc gives now, to 1 MiB. */
static size_t largest(void) {
  size_t lo = 0, hi = (size_t)1 << 16; /* in MiB */
  while (hi - lo > 1) {
    size_t mid = (lo + hi) / 2;
    void *p = shmem_malloc(mid * MiB);
    if (p) lo = mid;
    else hi = mid;
    shmem_free(p);
  }
  return lo * MiB;
}

/* Collective: 0 when p is NULL on every PE, else 1; PE 0 prints what
 * (unless NULL) and how many PEs got NULL. */
static long null_everywhere(const char *what, void *p) {
  long nulls = spec_sum(p == NULL);
  if (spec_me == 0 && what) printf("%s: NULL on %ld of %d PEs\n", what, nulls, spec_npes);
  return nulls != spec_npes;
}

int main(void) {
  spec_init();
  long errors = 0;
  size_t start = largest();
  /* Live objects: small ones and an array of a quarter of what is free. */
  enum { SMALL = 16 };
  long *small[SMALL];
  for (int i = 0; i < SMALL; i++) {
    small[i] = shmem_malloc((size_t)(i + 1) * 24);
    small[i][0] = spec_me * 100 + i;
  }
  size_t array_bytes = start / 4;
  unsigned char *array = shmem_malloc(array_bytes);
  memset(array, spec_me + 1, array_bytes);
  shmem_barrier_all();
  size_t before = largest();
  int printed = 0;
  for (int round = 0; round < ROUNDS; round++) {
    long e = 0;
    e += null_everywhere(printed ? NULL : "shmem_malloc(largest + 1 MiB)", shmem_malloc(before + MiB));
    e += null_everywhere(printed ? NULL : "shmem_malloc(1 TiB)", shmem_malloc((size_t)1 << 40));
    e += null_everywhere(printed ? NULL : "shmem_calloc(SIZE_MAX / 2, 4)", shmem_calloc(SIZE_MAX / 2, 4));
    e += null_everywhere(printed ? NULL : "shmem_align(4096, 1 TiB)", shmem_align(4096, (size_t)1 << 40));
    e += null_everywhere(printed ? NULL : "shmem_realloc(array, 1 TiB)", shmem_realloc(array, (size_t)1 << 40));
    errors += e;
    printed = 1;
  }
  for (size_t k = 0; k < array_bytes; k += 4093) errors += array[k] != spec_me + 1;
  size_t after = largest();
  /* Still targets of puts and gets. */
  int right = (spec_me + 1) % spec_npes, left = (spec_me + spec_npes - 1) % spec_npes;
  long v = spec_me * 7 + 3, got = 0;
  shmem_long_put(&small[SMALL - 1][1], &v, 1, right);
  unsigned char b = (unsigned char)(0xa0 + spec_me);
  shmem_putmem(array + array_bytes - 1, &b, 1, right);
  shmem_barrier_all();
  errors += small[SMALL - 1][1] != left * 7 + 3 || array[array_bytes - 1] != (unsigned char)(0xa0 + left);
  shmem_long_get(&got, &small[3][0], 1, left);
  errors += got != left * 100 + 3;
  shmem_barrier_all();
  for (int i = 0; i < SMALL; i++) shmem_free(small[i]);
  shmem_free(array);
  size_t end = largest();
  errors = spec_sum(errors);
  if (spec_me == 0) {
    printf("%d rounds of failed requests; the realloc's object kept its contents, puts and gets into live objects "
           "work: %s\n", ROUNDS, errors ? "NO" : "yes");
    printf("largest block after the failed requests as before them: %s\n", after == before ? "yes" : "NO");
    printf("largest block once everything is freed as at the start: %s\n", end == start ? "yes" : "NO");
  }
  shmem_finalize();
  return 0;
}
