/*
 * A late remote write into a freed direct block of a DYNAMIC heap with the
 * quarantine on (PINHEAP_DEBUG_QUARANTINE). Every rank frees a direct block
 * whose address its right-hand neighbour holds; the neighbour then writes
 * into it with MPI_Put. The block stays attached to the window while it is
 * quarantined, so the owner does not die: pinheap_check reports the write,
 * naming the block, and pinheap_destroy reports it again and detaches it.
 *
 *   test_mpi_quarantine
 */
#include <string.h>
#include <unistd.h>

#include "mpitest.h"

/* pinheap_check's count, and what it printed on standard error in *text. */
static int check_with_text(pinheap *heap, char *text, size_t len) {
  fflush(stderr);
  FILE *f = tmpfile();
  MT_CHECK(f, "tmpfile");
  int saved = dup(STDERR_FILENO);
  dup2(fileno(f), STDERR_FILENO);
  int broken = pinheap_check(heap);
  fflush(stderr);
  dup2(saved, STDERR_FILENO);
  close(saved);
  rewind(f);
  size_t n = fread(text, 1, len - 1, f);
  text[n] = '\0';
  fclose(f);
  return broken;
}

int main(int argc, char **argv) {
  mt_init(&argc, &argv, MPI_THREAD_SINGLE);
  pinheap_mpi *pm = pinheap_mpi_create(MPI_COMM_WORLD, PINHEAP_DYNAMIC, NULL);
  MT_CHECK(pm, "pinheap_mpi_create");
  MPI_Win win = pinheap_mpi_window(pm);
  pinheap_options o = mt_options(PINHEAP_DYNAMIC, 0, 2 * MiB, 1 * MiB);
  o.debug = PINHEAP_DEBUG_QUARANTINE;
  pinheap *heap = pinheap_mpi_heap_create(pm, &o);
  MT_CHECK(heap, "pinheap_mpi_heap_create");

  const size_t size = 2 * MiB, at = 4096;
  unsigned char *p = pinheap_malloc(heap, size);
  MT_CHECK(p, "malloc(%zu)", size);
  memset(p, 1, size);
  MPI_Aint mine, *all = malloc((size_t)mt_nranks * sizeof *all);
  MT_CHECK(all, "memory");
  MPI_Get_address(p, &mine);
  MPI_Allgather(&mine, 1, MPI_AINT, all, 1, MPI_AINT, MPI_COMM_WORLD);
  size_t regions = mt_stats(pm).regions;
  pinheap_free(heap, p);
  MT_CHECK(mt_stats(pm).regions == regions, "a quarantined block stays attached");
  MPI_Barrier(MPI_COMM_WORLD); /* every block freed */

  int right = (mt_rank + 1) % mt_nranks;
  unsigned char late[64];
  memset(late, 0x2a, sizeof late);
  MPI_Win_lock_all(0, win);
  MPI_Put(late, (int)sizeof late, MPI_BYTE, right, all[right] + (MPI_Aint)at, (int)sizeof late, MPI_BYTE, win);
  MPI_Win_flush(right, win);
  MPI_Win_unlock_all(win);
  MPI_Barrier(MPI_COMM_WORLD); /* every late write done */

  char text[2048], want[200];
  int broken = check_with_text(heap, text, sizeof text);
  snprintf(want, sizeof want,
           "direct block %p: freed block of %zu bytes in quarantine written after its free: byte %zu is 0x2a", (void *)p,
           size, at);
  MT_CHECK(broken == 1 && strstr(text, want), "pinheap_check counted %d, printed \"%s\"", broken, text);
  pinheap_destroy(heap);
  MT_CHECK(mt_stats(pm).regions == 0, "everything detached at destroy");
  MPI_Barrier(MPI_COMM_WORLD);
  pinheap_mpi_destroy(pm);
  free(all);
  if (mt_rank == 0) printf("test_mpi_quarantine: %d ranks: every late write reported, none fatal\n", mt_nranks);
  MPI_Finalize();
  return 0;
}
