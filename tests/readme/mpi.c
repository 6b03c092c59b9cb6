/* Context of the README's MPI snippet, run at 2 ranks and more: a FIXED
 * heap of 256 MiB; every rank puts v into x[i] on its right neighbour, and
 * at the snippet's "..." checks, after a barrier, that its own x[i] holds
 * what its left neighbour put. */
#include <stdio.h>

#include <pinheap_mpi.h>
#pragma readme top

/* After the snippet's epoch: this rank's x[i] holds v. */
#define README_ELLIPSIS()                                                                    \
  do {                                                                                       \
    MPI_Barrier(MPI_COMM_WORLD);                                                             \
    if (x[i] != v) {                                                                         \
      fprintf(stderr, "MPI snippet: rank %d: x[%zu] holds %g, not %g\n", rank, i, x[i], v); \
      MPI_Abort(MPI_COMM_WORLD, 1);                                                          \
    }                                                                                        \
  } while (0)

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, nranks;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &nranks);
  pinheap_options opts;
  pinheap_options_init(&opts);
  opts.size = (size_t)256 << 20;
  opts.arenas = 1;
  size_t n = 1000, i = 7;
  int peer = (rank + 1) % nranks;
  double v = 1.5;
#pragma readme body
  MPI_Finalize();
  return 0;
}
