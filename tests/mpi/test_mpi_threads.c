/*
 * Two threads per rank grow and shrink one DYNAMIC heap at once: small
 * objects through jemalloc (whose hooks obtain chunks from inside it), large
 * blocks, direct blocks, and trims, so that the provider attaches and
 * detaches from both threads. Afterwards the registered bytes are the
 * heap's capacity and what MPI was asked to attach (attachlog.h), and the
 * peers read the blocks each thread kept. Needs
 * MPI_THREAD_MULTIPLE (Open MPI: with osc rdma; its osc pt2pt refuses it).
 *
 *   test_mpi_threads [seed]
 */
#include <pthread.h>

#include "attachlog.h"
#include "mpitest.h"

#define THREADS 2
#define ITERATIONS 30
#define BLOCKS 48
#define DIRECT (2 * MiB)
#define KEEP (3 * MiB) /* a direct block each thread keeps */

typedef struct worker {
  pinheap *heap;
  int idx;
  uint64_t rng;
  unsigned char *kept;
} worker;

static void *work(void *arg) {
  worker *w = arg;
  unsigned char *blk[BLOCKS];
  size_t len[BLOCKS];
  for (int it = 0; it < ITERATIONS; it++) {
    for (size_t b = 0; b < BLOCKS; b++) {
      uint64_t r = seed_next_r(&w->rng);
      len[b] = b % 12 == 0 ? DIRECT + r % (2 * MiB) : b % 3 == 0 ? 14337 + r % (256 * 1024) : 1 + r % 14336;
      blk[b] = pinheap_malloc(w->heap, len[b]);
      MT_CHECK(blk[b], "thread %d: malloc(%zu)", w->idx, len[b]);
      mt_fill(blk[b], len[b] < 4096 ? len[b] : 4096, mt_rank, w->idx, b);
      pinheap_region reg;
      MT_CHECK(pinheap_region_of(w->heap, blk[b], &reg) == 0 && blk[b] >= (unsigned char *)reg.base &&
                   blk[b] + len[b] <= (unsigned char *)reg.base + reg.size,
               "thread %d: a block outside its registration", w->idx);
    }
    for (size_t b = 0; b < BLOCKS; b++) {
      size_t at = mt_differs(blk[b], len[b] < 4096 ? len[b] : 4096, mt_rank, w->idx, b);
      MT_CHECK(at == (len[b] < 4096 ? len[b] : 4096), "thread %d: block %zu changed", w->idx, b);
      pinheap_free(w->heap, blk[b]);
    }
    if (it % 5 == 4) pinheap_trim(w->heap);
  }
  w->kept = pinheap_malloc(w->heap, KEEP);
  MT_CHECK(w->kept, "thread %d: the block kept", w->idx);
  mt_fill(w->kept, KEEP, mt_rank, w->idx, 0);
  return NULL;
}

int main(int argc, char **argv) {
  int level = mt_init(&argc, &argv, MPI_THREAD_MULTIPLE);
  MT_CHECK(level == MPI_THREAD_MULTIPLE, "MPI_THREAD_MULTIPLE is not provided (%d)", level);
  uint64_t seed = mt_seed(argc, argv, "test_mpi_threads");
  int n = mt_nranks;
  pinheap_mpi *pm = pinheap_mpi_create(MPI_COMM_WORLD, PINHEAP_DYNAMIC, NULL);
  MT_CHECK(pm, "pinheap_mpi_create");
  pinheap *heap = mt_heap(pm, PINHEAP_DYNAMIC, 0, 4 * MiB, DIRECT);
  MT_CHECK(heap, "pinheap_create");

  worker w[THREADS];
  pthread_t tid[THREADS];
  for (int i = 0; i < THREADS; i++) {
    w[i] = (worker){.heap = heap, .idx = i, .rng = seed ^ ((uint64_t)(mt_rank * THREADS + i + 1) << 20)};
    MT_CHECK(pthread_create(&tid[i], NULL, work, &w[i]) == 0, "pthread_create");
  }
  for (int i = 0; i < THREADS; i++) pthread_join(tid[i], NULL);

  pinheap_stats hs;
  MT_CHECK(pinheap_get_stats(heap, &hs) == 0, "stats");
  pinheap_mpi_stats st = mt_stats(pm);
  MT_CHECK(st.bytes == hs.capacity && st.obtained - st.released == st.regions,
           "%zu bytes attached for a capacity of %zu; %zu attached - %zu detached != %zu", st.bytes, hs.capacity,
           st.obtained, st.released, st.regions);
  MT_CHECK(st.obtained >= THREADS * ITERATIONS * (BLOCKS / 12), "only %zu attaches", st.obtained);
  size_t live, bytes, strays;
  attachlog_counts(&live, &bytes, &strays);
  MT_CHECK(live == st.regions && bytes == st.bytes && strays == 0,
           "MPI has %zu regions of %zu bytes attached (%zu strays), the provider says %zu of %zu", live, bytes, strays,
           st.regions, st.bytes);
  MT_CHECK(pinheap_mpi_check(pm) == 0 && pinheap_check(heap) == 0, "checks");

  MPI_Aint mine[THREADS], *all = malloc(sizeof mine * (size_t)n);
  unsigned char *buf = malloc(KEEP);
  MT_CHECK(all && buf, "memory");
  for (int i = 0; i < THREADS; i++) {
    pinheap_mpi_addr a;
    MT_CHECK(pinheap_mpi_locate(heap, w[i].kept, &a) == 0, "locate");
    mine[i] = a.disp;
  }
  MPI_Allgather(mine, THREADS, MPI_AINT, all, THREADS, MPI_AINT, MPI_COMM_WORLD);
  MPI_Win win = pinheap_mpi_window(pm);
  int succ = (mt_rank + 1) % n;
  MPI_Win_lock_all(0, win);
  for (int i = 0; i < THREADS; i++) {
    MPI_Get(buf, (int)KEEP, MPI_BYTE, succ, all[succ * THREADS + i], (int)KEEP, MPI_BYTE, win);
    MPI_Win_flush(succ, win);
    MT_CHECK(mt_differs(buf, KEEP, succ, i, 0) == KEEP, "the block thread %d of rank %d kept", i, succ);
  }
  MPI_Win_unlock_all(win);
  MPI_Barrier(MPI_COMM_WORLD);
  for (int i = 0; i < THREADS; i++) pinheap_free(heap, w[i].kept);
  pinheap_destroy(heap);
  st = mt_stats(pm);
  MT_CHECK(st.regions == 0 && st.obtained == st.released, "everything detached after destroy");
  attachlog_counts(&live, &bytes, &strays);
  MT_CHECK(live == 0 && strays == 0, "MPI still has %zu regions attached (%zu strays)", live, strays);
  pinheap_mpi_destroy(pm);
  free(all);
  free(buf);
  MPI_Barrier(MPI_COMM_WORLD);
  if (mt_rank == 0) printf("test_mpi_threads: ok (%d ranks, %d threads each)\n", n, THREADS);
  MPI_Finalize();
  return 0;
}
