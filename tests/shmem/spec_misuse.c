/*
 * Erroneous OpenSHMEM programs, whose behaviour the specification leaves
 * undefined; an allocator that checks must stop them with a message:
 *   sizes    PE 0 calls shmem_malloc(64), the others shmem_malloc(128)
 *   foreign  shmem_free of an address that no allocation returned
 *   double   shmem_free of an object freed already
 * Each prints "reached the end" if nothing stopped it.
 *
 *   spec_misuse sizes|foreign|double
 */
#include <string.h>

#include "spec.h"

int main(int argc, char **argv) {
  const char *what = argc > 1 ? argv[1] : "";
  spec_init();
  long local = 0;
  if (!strcmp(what, "sizes")) {
    shmem_free(shmem_malloc(spec_me == 0 ? 64 : 128));
  } else if (!strcmp(what, "foreign")) {
    shmem_free(&local);
  } else if (!strcmp(what, "double")) {
    void *p = shmem_malloc(4096);
    shmem_free(p);
    shmem_free(p);
  } else {
    if (spec_me == 0) fprintf(stderr, "usage: spec_misuse sizes|foreign|double\n");
    shmem_finalize();
    return 2;
  }
  if (spec_me == 0) printf("reached the end\n");
  shmem_finalize();
  return 0;
}
