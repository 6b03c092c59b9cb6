/* Context of the README's symmetric-heap snippet, run at 2 ranks and more:
 * MPI_COMM_WORLD as the group, a FIXED heap of 2 GiB (reserved) on every
 * rank; the snippet's remote address of x[i] on the right neighbour must
 * be that rank's own address of it. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>

#include <mpi.h>
#include <pinheap_sym.h>
#pragma readme top

/* peer's own address of x[i] is what a said. */
#define README_ELLIPSIS()                                                                                      \
  do {                                                                                                         \
    uint64_t mine = (uint64_t)(uintptr_t)&x[i], theirs = 0;                                                    \
    MPI_Sendrecv(&mine, 1, MPI_UINT64_T, (rank + nranks - 1) % nranks, 0, &theirs, 1, MPI_UINT64_T, peer, 0, \
                 comm, MPI_STATUS_IGNORE);                                                                     \
    if (theirs != a.addr) {                                                                                    \
      fprintf(stderr, "symmetric snippet: rank %d: x[i] is at %#llx on rank %d, not %#llx\n", rank,           \
              (unsigned long long)theirs, peer, (unsigned long long)a.addr);                                   \
      MPI_Abort(MPI_COMM_WORLD, 1);                                                                            \
    }                                                                                                          \
  } while (0)

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  MPI_Comm comm = MPI_COMM_WORLD;
  int rank, nranks;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &nranks);
  pinheap_options o;
  pinheap_options_init(&o);
  o.mode = PINHEAP_FIXED;
  o.size = (size_t)2 << 30;
  o.arenas = 1;
  pinheap *heap = pinheap_create(&o);
  if (!heap) {
    fprintf(stderr, "symmetric snippet: %s\n", pinheap_last_error());
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  size_t n = 1000, i = 7;
  int peer = (rank + 1) % nranks;
#pragma readme body
  pinheap_destroy(heap);
  MPI_Finalize();
  return 0;
}
