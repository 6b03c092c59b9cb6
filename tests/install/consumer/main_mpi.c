/* Uses an installed MPI provider: every rank makes a DYNAMIC heap on it
 * (pinheap_mpi_heap_create), locates a block, reads its neighbour's with
 * MPI_Get; rank 0 prints "ok".
 * Exits non-zero on any failure. */
#include <pinheap_mpi.h>

#include <stdio.h>
#include <stdlib.h>

#define FAIL(what)                                                                      \
  do {                                                                                  \
    fprintf(stderr, "consumer_mpi: %s failed: %s\n", (what), pinheap_last_error());     \
    MPI_Abort(MPI_COMM_WORLD, 1);                                                       \
  } while (0)

int main(int argc, char **argv) {
  pinheap_mpi *pm;
  pinheap_options opts;
  pinheap *heap;
  pinheap_mpi_addr at;
  MPI_Aint *disps;
  long *word, got = -1;
  int rank, size, next;

  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  next = (rank + 1) % size;
  pm = pinheap_mpi_create(MPI_COMM_WORLD, PINHEAP_DYNAMIC, NULL);
  if (pm == NULL) {
    /* Collective: it failed on every rank. No MPI_Abort, whose teardown can
     * lose what the ranks wrote to stderr. */
    fprintf(stderr, "consumer_mpi: pinheap_mpi_create failed: %s\n", pinheap_last_error());
    MPI_Finalize();
    return 1;
  }
  pinheap_options_init(&opts);
  opts.mode = PINHEAP_DYNAMIC;
  heap = pinheap_mpi_heap_create(pm, &opts);
  if (heap == NULL)
    FAIL("pinheap_mpi_heap_create");
  word = pinheap_malloc(heap, sizeof *word);
  if (word == NULL)
    FAIL("pinheap_malloc");
  *word = 1000 + rank;
  if (pinheap_mpi_locate(heap, word, &at) != 0)
    FAIL("pinheap_mpi_locate");
  disps = malloc(sizeof *disps * (size_t)size);
  if (disps == NULL)
    FAIL("malloc");
  MPI_Allgather(&at.disp, 1, MPI_AINT, disps, 1, MPI_AINT, MPI_COMM_WORLD);
  MPI_Win_lock_all(0, at.win);
  MPI_Get(&got, 1, MPI_LONG, next, disps[next], 1, MPI_LONG, at.win);
  MPI_Win_unlock_all(at.win);
  MPI_Barrier(MPI_COMM_WORLD);
  if (got != 1000 + next)
    FAIL("MPI_Get from the neighbour's heap");
  free(disps);
  pinheap_free(heap, word);
  pinheap_destroy(heap);
  pinheap_mpi_destroy(pm);
  if (rank == 0)
    puts("ok");
  MPI_Finalize();
  return 0;
}
