/*
 * Symmetric heaps over MPI: remote writes made as soon as a collective call
 * returns. In each round every rank callocs an object of one slot per rank
 * and at once puts its pattern into its own slot of every other rank's copy
 * (MPI_Put through the FIXED heap's window, at the displacement
 * pinheap_sym_remote gives, then a flush); after a barrier each rank checks
 * every slot of its copy. Then the object is reallocated to twice its size
 * (it sits at the top of the block, so it moves and is copied), and the
 * same again with new patterns, then freed. A process still zeroing or
 * copying after another has returned would wipe that one's writes: every
 * write lost is counted, and any fails the test.
 *
 *   test_mpi_sym [rounds, default 200]
 */
#include <errno.h>
#include <string.h>

#include "mpitest.h"

#define SLOT ((size_t)16 << 10)

/* Puts this rank's pattern for phase k into its slot of obj on every other
 * rank, then flushes. */
static void put_everywhere(pinheap_sym *sym, MPI_Win win, unsigned char *obj, unsigned char *buf, int k) {
  mt_fill(buf, SLOT, mt_rank, k, 0);
  for (int i = 1; i < mt_nranks; i++) {
    int t = (mt_rank + i) % mt_nranks;
    pinheap_sym_addr a;
    MT_CHECK(pinheap_sym_remote(sym, obj + (size_t)mt_rank * SLOT, t, &a) == 0, "pinheap_sym_remote");
    MPI_Put(buf, (int)SLOT, MPI_BYTE, t, (MPI_Aint)a.reg_offset, (int)SLOT, MPI_BYTE, win);
  }
  MPI_Win_flush_all(win);
}

/* After a barrier: the slots of obj other ranks wrote in phase k that do
 * not hold their pattern (writes lost); this rank's own slot must be zero
 * (calloc's, copied by realloc). */
static long lost_writes(MPI_Win win, const unsigned char *obj, int k, const char *call) {
  MPI_Barrier(MPI_COMM_WORLD);
  MPI_Win_sync(win);
  long lost = 0;
  for (int r = 0; r < mt_nranks; r++) {
    const unsigned char *slot = obj + (size_t)r * SLOT;
    if (r == mt_rank) {
      for (size_t i = 0; i < SLOT; i++) MT_CHECK(slot[i] == 0, "%s: byte %zu of this rank's own slot", call, i);
    } else {
      lost += mt_differs(slot, SLOT, r, k, 0) != SLOT;
    }
  }
  return lost;
}

int main(int argc, char **argv) {
  mt_init(&argc, &argv, MPI_THREAD_SINGLE);
  int rounds = argc > 1 ? atoi(argv[1]) : 200;
  MT_CHECK(rounds > 0, "rounds: %s", argv[1]);
  int n = mt_nranks;
  pinheap_mpi *pm = pinheap_mpi_create(MPI_COMM_WORLD, PINHEAP_FIXED, NULL);
  MT_CHECK(pm, "pinheap_mpi_create");
  pinheap *heap = mt_heap(pm, PINHEAP_FIXED, 64 * MiB, 0, 0);
  MT_CHECK(heap, "the heap");
  MPI_Win win = pinheap_mpi_window(pm);
  pinheap_collective coll;
  MT_CHECK(pinheap_mpi_collective(pm, &coll) == 0, "pinheap_mpi_collective");
  pinheap_sym *sym = pinheap_sym_create(heap, 16 * MiB, &coll, 0);
  MT_CHECK(sym, "pinheap_sym_create");
  unsigned char *buf = malloc(SLOT);
  MT_CHECK(buf, "memory");

  long lost[2] = {0, 0};
  size_t bytes = (size_t)n * SLOT;
  MPI_Win_lock_all(0, win);
  for (int k = 0; k < rounds; k++) {
    unsigned char *c = pinheap_sym_calloc(sym, (size_t)n, SLOT);
    MT_CHECK(c, "calloc, round %d", k);
    put_everywhere(sym, win, c, buf, 2 * k);
    lost[0] += lost_writes(win, c, 2 * k, "calloc");
    unsigned char *r = pinheap_sym_realloc(sym, c, 2 * bytes);
    MT_CHECK(r && r != c, "realloc moves, round %d", k);
    put_everywhere(sym, win, r, buf, 2 * k + 1);
    lost[1] += lost_writes(win, r, 2 * k + 1, "realloc");
    pinheap_sym_free(sym, r);
  }
  MPI_Win_unlock_all(win);
  long total[2];
  MPI_Allreduce(lost, total, 2, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
  long writes = (long)rounds * n * (n - 1);
  if (mt_rank == 0)
    printf("test_mpi_sym: %d rounds at %d ranks: writes lost after calloc %ld of %ld, after realloc %ld of %ld\n",
           rounds, n, total[0], writes, total[1], writes);
  fflush(stdout);
  MT_CHECK(total[0] == 0 && total[1] == 0, "writes lost");

  MT_CHECK(pinheap_sym_check(sym) == 0, "pinheap_sym_check");
  pinheap_sym_destroy(sym);
  pinheap_destroy(heap);
  MT_CHECK(pinheap_mpi_destroy(pm) == 0, "pinheap_mpi_destroy");
  free(buf);
  MPI_Barrier(MPI_COMM_WORLD);
  if (mt_rank == 0) printf("test_mpi_sym: ok (%d ranks)\n", n);
  MPI_Finalize();
  return 0;
}
