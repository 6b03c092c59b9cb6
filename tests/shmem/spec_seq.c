/*
 * The seed's sequences through shmem_malloc, in units of U MiB (the first
 * argument, default 10), for a symmetric heap somewhat above 10 U:
 *   seq700   7 U, free it, 10 U
 *   seq1000  10 U, free it, 5 U, 5 U
 *   tiny     8 U, 40 B, free the 8 U, 40 B, 8 U
 * Live at once: at most 10 U, and in tiny 8 U and 80 B; but an allocator
 * that puts the second 40-byte object into the hole the freed array left
 * has no 8 U left in a heap under 16 U. Every object gets a byte put at
 * each end on the right neighbour right after it is allocated, checked
 * after a barrier. PE 0 prints one line per sequence: ok, or the step that
 * returned NULL (on every PE; NULL on some PEs only is an error).
 *
 *   spec_seq [U]
 */
#include <stdlib.h>

#include "spec.h"

#define MiB ((size_t)1 << 20)

typedef struct step {
  int slot;    /* slot to fill or empty */
  size_t size; /* 0: free the slot */
} step;

static void sequence(const char *name, const step *steps, int n) {
  char *slot[4] = {0};
  size_t size[4] = {0};
  long errors = 0;
  int failed = -1;
  for (int i = 0; i < n && failed < 0; i++) {
    int k = steps[i].slot;
    if (!steps[i].size) {
      shmem_free(slot[k]);
      slot[k] = NULL;
      continue;
    }
    slot[k] = shmem_malloc(steps[i].size);
    size[k] = steps[i].size;
    if (slot[k]) {
      char v = (char)(spec_me + 1);
      shmem_putmem(slot[k], &v, 1, (spec_me + 1) % spec_npes);
      shmem_putmem(slot[k] + size[k] - 1, &v, 1, (spec_me + 1) % spec_npes);
    }
    long nulls = spec_sum(slot[k] == NULL);
    if (nulls) {
      failed = i;
      errors += nulls != spec_npes;
      continue;
    }
    char want = (char)((spec_me + spec_npes - 1) % spec_npes + 1);
    errors += slot[k][0] != want || slot[k][size[k] - 1] != want;
  }
  errors = spec_sum(errors);
  if (spec_me == 0) {
    printf("%s: ", name);
    if (failed < 0)
      printf("ok");
    else if (steps[failed].size >= MiB)
      printf("FAILED at step %d: shmem_malloc(%zu MiB) returned NULL", failed + 1, steps[failed].size / MiB);
    else
      printf("FAILED at step %d: shmem_malloc(%zu) returned NULL", failed + 1, steps[failed].size);
    printf(errors ? ", %ld errors\n" : "\n", errors);
    fflush(stdout);
  }
  for (int k = 0; k < 4; k++) shmem_free(slot[k]);
}

int main(int argc, char **argv) {
  size_t u = (argc > 1 ? (size_t)strtoul(argv[1], NULL, 10) : 10) * MiB;
  spec_init();
  const step seq700[] = {{0, 7 * u}, {0, 0}, {1, 10 * u}};
  const step seq1000[] = {{0, 10 * u}, {0, 0}, {1, 5 * u}, {2, 5 * u}};
  const step tiny[] = {{0, 8 * u}, {1, 40}, {0, 0}, {2, 40}, {3, 8 * u}};
  sequence("seq700", seq700, 3);
  sequence("seq1000", seq1000, 4);
  sequence("tiny", tiny, 5);
  shmem_finalize();
  return 0;
}
