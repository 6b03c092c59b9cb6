/*
 * What OpenSHMEM 1.5 specifies for zero sizes and null pointers (the
 * allocation routines' descriptions):
 *   shmem_malloc(0), shmem_calloc(0, n), shmem_calloc(n, 0),
 *   shmem_align(a, 0): perform no action and return NULL;
 *   shmem_free(NULL): no action;
 *   shmem_realloc(NULL, n): as shmem_malloc(n);
 *   shmem_realloc(p, 0): frees p and returns NULL.
 * The object shmem_realloc(NULL, n) returns must be a symmetric object
 * (a put into the right neighbour's lands). PE 0 prints one line each.
 *
 *   spec_zero
 */
#include "spec.h"

static void null_or_not(const char *what, void *p) {
  long nulls = spec_sum(p == NULL);
  if (spec_me == 0) printf("%s: %s\n", what, nulls == spec_npes ? "NULL" : nulls ? "NULL on some PEs" : "a block");
}

int main(void) {
  spec_init();
  void *p;
  null_or_not("shmem_malloc(0)", p = shmem_malloc(0));
  shmem_free(p);
  null_or_not("shmem_calloc(0, 8)", p = shmem_calloc(0, 8));
  shmem_free(p);
  null_or_not("shmem_calloc(8, 0)", p = shmem_calloc(8, 0));
  shmem_free(p);
  null_or_not("shmem_align(64, 0)", p = shmem_align(64, 0));
  shmem_free(p);
  null_or_not("shmem_realloc(NULL, 0)", p = shmem_realloc(NULL, 0));
  shmem_free(p);
  shmem_free(NULL);
  if (spec_me == 0) printf("shmem_free(NULL): returned\n");
  long *q = shmem_realloc(NULL, 64);
  long v = spec_me + 1;
  if (q) shmem_long_put(q, &v, 1, (spec_me + 1) % spec_npes);
  shmem_barrier_all();
  long bad = spec_sum(!q || *q != (spec_me + spec_npes - 1) % spec_npes + 1);
  if (spec_me == 0) printf("shmem_realloc(NULL, 64): %s\n", bad ? "NOT a symmetric block" : "a symmetric block");
  shmem_barrier_all();
  null_or_not("shmem_realloc(p, 0)", shmem_realloc(q, 0));
  shmem_finalize();
  return 0;
}
