/* An OpenSHMEM program (the specification's routines only), built against
 * an installed libpinheap-shmem or run with it preloaded: PE 0 prints "ok"
 * when shmem_malloc(0) is NULL, as OpenSHMEM 1.5 says (Open MPI's own heap
 * returns a block), and when a put made right after shmem_calloc returns
 * lands in the next PE's object, whose other bytes are zero. */
#include <shmem.h>
#include <stdio.h>

static long bad, all_bad, work[SHMEM_REDUCE_MIN_WRKDATA_SIZE + 1], sync_[SHMEM_REDUCE_SYNC_SIZE];

int main(void) {
  for (int i = 0; i < SHMEM_REDUCE_SYNC_SIZE; i++) sync_[i] = SHMEM_SYNC_VALUE;
  shmem_init();
  int me = shmem_my_pe(), npes = shmem_n_pes();
  bad = shmem_malloc(0) != NULL;
  long *x = shmem_calloc(4096, sizeof *x);
  shmem_long_p(&x[4000], me + 1, (me + 1) % npes);
  shmem_barrier_all();
  for (int i = 0; i < 4096; i++) bad += x[i] != (i == 4000 ? (me + npes - 1) % npes + 1 : 0);
  shmem_long_sum_to_all(&all_bad, &bad, 1, 0, 0, npes, work, sync_);
  if (me == 0) printf(all_bad ? "%ld errors\n" : "ok\n", all_bad);
  shmem_free(x);
  shmem_finalize();
  return all_bad != 0;
}
