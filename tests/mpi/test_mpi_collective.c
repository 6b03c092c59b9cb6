/*
 * pinheap_mpi_collective: the pinheap_collective over the provider's
 * communicator, as pinheap_sym_create takes it. Its rank and size are the
 * communicator's; allgathers of 0, 1, 24 bytes and 1 MiB put every rank's
 * bytes at rank * len; a length over INT_MAX is refused with EINVAL on every
 * rank, without a hang; over a communicator of half the ranks
 * (MPI_Comm_split), the group is that half. NULL arguments of the
 * provider's local calls are EINVAL, not a crash.
 *
 *   test_mpi_collective
 */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "mpitest.h"

static void round_trips(pinheap_mpi *pm, MPI_Comm comm) {
  int rank, size;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  pinheap_collective c;
  MT_CHECK(pinheap_mpi_collective(pm, &c) == 0, "pinheap_mpi_collective");
  MT_CHECK(c.rank == rank && c.nranks == size && c.ctx && c.allgather, "rank %d of %d, collective says %d of %d", rank,
           size, c.rank, c.nranks);
  static const size_t lens[] = {0, 1, 24, MiB};
  for (size_t i = 0; i < sizeof lens / sizeof *lens; i++) {
    size_t len = lens[i];
    unsigned char *in = malloc(len + 1), *out = malloc(len * (size_t)size + 1);
    MT_CHECK(in && out, "memory");
    mt_fill(in, len, mt_rank, 0, len);
    memset(out, 0, len * (size_t)size + 1);
    MT_CHECK(c.allgather(c.ctx, in, out, len) == 0, "allgather of %zu bytes", len);
    /* The world rank of each member, to know its pattern. */
    int *world = malloc(sizeof *world * (size_t)size);
    MT_CHECK(world, "memory");
    MPI_Allgather(&mt_rank, 1, MPI_INT, world, 1, MPI_INT, comm);
    for (int r = 0; r < size; r++)
      MT_CHECK(mt_differs(out + (size_t)r * len, len, world[r], 0, len) == len, "%zu bytes from member %d", len, r);
    free(world);
    free(in);
    free(out);
  }
  errno = 0;
  MT_CHECK(c.allgather(c.ctx, NULL, NULL, (size_t)INT_MAX + 1) == EINVAL, "a length over INT_MAX");
  MT_CHECK(strstr(pinheap_last_error(), "allgather"), "its message");
}

int main(int argc, char **argv) {
  mt_init(&argc, &argv, MPI_THREAD_SINGLE);
  pinheap_mpi *pm = pinheap_mpi_create(MPI_COMM_WORLD, PINHEAP_FIXED, NULL);
  MT_CHECK(pm, "pinheap_mpi_create");
  round_trips(pm, MPI_COMM_WORLD);
  pinheap_mpi_destroy(pm);

  MPI_Comm half;
  MPI_Comm_split(MPI_COMM_WORLD, mt_rank % 2, mt_nranks - mt_rank, &half); /* reversed order */
  pm = pinheap_mpi_create(half, PINHEAP_DYNAMIC, NULL);
  MT_CHECK(pm, "pinheap_mpi_create over half the ranks");
  round_trips(pm, half);
  pinheap_mpi_destroy(pm);
  MPI_Comm_free(&half);

  pinheap_collective c;
  errno = 0;
  MT_CHECK(pinheap_mpi_collective(NULL, &c) == -1 && errno == EINVAL, "pinheap_mpi_collective(NULL, ...)");
  errno = 0;
  MT_CHECK(pinheap_mpi_check(NULL) == -1 && errno == EINVAL, "pinheap_mpi_check(NULL)");
  pinheap_mpi_stats st;
  errno = 0;
  MT_CHECK(pinheap_mpi_get_stats(NULL, &st) == -1 && errno == EINVAL, "pinheap_mpi_get_stats(NULL, ...)");
  pinheap_mpi_addr a;
  errno = 0;
  MT_CHECK(pinheap_mpi_locate(NULL, &a, &a) == -1 && errno == EINVAL, "pinheap_mpi_locate(NULL, ...)");
  errno = 0;
  MT_CHECK(!pinheap_mpi_heap_create(NULL, NULL) && errno == EINVAL, "pinheap_mpi_heap_create(NULL, ...)");
  MT_CHECK(!pinheap_mpi_provider(NULL) && pinheap_mpi_window(NULL) == MPI_WIN_NULL, "provider and window of NULL");
  pm = pinheap_mpi_create(MPI_COMM_WORLD, PINHEAP_FIXED, NULL);
  MT_CHECK(pm, "pinheap_mpi_create");
  errno = 0;
  MT_CHECK(pinheap_mpi_collective(pm, NULL) == -1 && errno == EINVAL, "pinheap_mpi_collective(pm, NULL)");
  pinheap_mpi_destroy(pm);

  errno = 0;
  MT_CHECK(!pinheap_mpi_create(MPI_COMM_WORLD, PINHEAP_SIMPLE, NULL) && errno == EINVAL, "a SIMPLE provider");
  errno = 0;
  MT_CHECK(!pinheap_mpi_create(MPI_COMM_NULL, PINHEAP_FIXED, NULL) && errno == EINVAL, "MPI_COMM_NULL");
  MPI_Barrier(MPI_COMM_WORLD);
  if (mt_rank == 0) printf("test_mpi_collective: ok (%d ranks)\n", mt_nranks);
  MPI_Finalize();
  return 0;
}
