/*
 * comm_mpi: one-sided MPI put/get latency and bandwidth into pinheap memory
 * against the same into memory MPI allocates itself.
 *
 * Three targets, each a window over rank 1's memory, driven from rank 0:
 *   pinheap       a block of a FIXED pinheap heap whose region is the window
 *                 (the MPI provider: MPI_Win_create over the region)
 *   win_allocate  MPI_Win_allocate
 *   alloc_mem     MPI_Alloc_mem, then MPI_Win_create over it
 * Latency: one 8-byte put (get) and a flush, repeated. Bandwidth: a batch
 * of puts (gets) of one size, one flush, repeated. Each figure is the best
 * of several rounds; the three targets run in turns inside each round, so
 * that drift of the machine hits them alike. Ratios are pinheap / peer
 * (time: below 1 is faster; bandwidth: above 1 is faster).
 *
 *   mpirun -np 2 comm_mpi [rounds] [max_bytes]
 */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pinheap.h"
#include "pinheap_mpi.h"

enum { T_PINHEAP, T_WIN_ALLOCATE, T_ALLOC_MEM, T_COUNT };
static const char *const target_name[T_COUNT] = {"pinheap", "win_allocate", "alloc_mem"};

typedef struct target {
  MPI_Win win;
  MPI_Aint disp; /* of the target buffer on rank 1 */
  void *mem;     /* alloc_mem: to free */
} target;

#define LAT_ITERS 2000
#define SIZES 8

static const size_t bw_size[SIZES] = {8, 64, 512, 4096, 32768, 262144, 1 << 20, 4 << 20};

static int comm_fail(const char *what) {
  fprintf(stderr, "comm_mpi: %s: %s\n", what, pinheap_last_error());
  MPI_Abort(MPI_COMM_WORLD, 1);
  return 1;
}

/* Seconds for one put (get) of bytes plus a flush, averaged over iters. */
static double comm_latency(const target *t, char *buf, size_t bytes, int iters, int get) {
  double t0 = MPI_Wtime();
  for (int i = 0; i < iters; i++) {
    if (get) MPI_Get(buf, (int)bytes, MPI_BYTE, 1, t->disp, (int)bytes, MPI_BYTE, t->win);
    else MPI_Put(buf, (int)bytes, MPI_BYTE, 1, t->disp, (int)bytes, MPI_BYTE, t->win);
    MPI_Win_flush(1, t->win);
  }
  return (MPI_Wtime() - t0) / iters;
}

/* Bytes per second for batches of puts (gets) of bytes into the target
 * buffer of max bytes. */
static double comm_bandwidth(const target *t, char *buf, size_t bytes, size_t max, int get) {
  size_t batch = max / bytes < 64 ? max / bytes : 64;
  int reps = bytes >= (1 << 20) ? 4 : 16;
  double t0 = MPI_Wtime();
  for (int r = 0; r < reps; r++) {
    for (size_t i = 0; i < batch; i++) {
      MPI_Aint d = t->disp + (MPI_Aint)(i * bytes);
      if (get) MPI_Get(buf + i * bytes, (int)bytes, MPI_BYTE, 1, d, (int)bytes, MPI_BYTE, t->win);
      else MPI_Put(buf + i * bytes, (int)bytes, MPI_BYTE, 1, d, (int)bytes, MPI_BYTE, t->win);
    }
    MPI_Win_flush(1, t->win);
  }
  return (double)(bytes * batch * (size_t)reps) / (MPI_Wtime() - t0);
}

/* Bytes from p to the next page boundary (0 when p is on one). */
static MPI_Aint comm_page_offset(const void *p) { return (MPI_Aint)((4096 - (uintptr_t)p % 4096) % 4096); }

static double min_d(double a, double b) { return a < b ? a : b; }
static double max_d(double a, double b) { return a > b ? a : b; }

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, nranks;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &nranks);
  int rounds = argc > 1 ? atoi(argv[1]) : 5;
  size_t max = argc > 2 ? strtoull(argv[2], NULL, 10) : (size_t)4 << 20;
  if (nranks != 2 || rounds < 1 || max < bw_size[SIZES - 1]) {
    if (rank == 0) fprintf(stderr, "usage: mpirun -np 2 comm_mpi [rounds >= 1] [max_bytes >= 4 MiB]\n");
    MPI_Finalize();
    return 2;
  }

  /* pinheap: a FIXED heap on the MPI provider; the block's displacement in
   * the region's window. */
  pinheap_mpi *pm = pinheap_mpi_create(MPI_COMM_WORLD, PINHEAP_FIXED, NULL);
  if (!pm) return comm_fail("pinheap_mpi_create");
  pinheap_options opts;
  pinheap_options_init(&opts);
  opts.size = 2 * max + ((size_t)32 << 20);
  opts.arenas = 1;
  pinheap *heap = pinheap_mpi_heap_create(pm, &opts);
  if (!heap) return comm_fail("pinheap_mpi_heap_create");
  target t[T_COUNT];
  char *block = pinheap_malloc(heap, max);
  if (!block) return comm_fail("pinheap_malloc");
  memset(block, 1, max);
  pinheap_mpi_addr a;
  if (pinheap_mpi_locate(heap, block, &a) != 0) return comm_fail("pinheap_mpi_locate");
  t[T_PINHEAP] = (target){.win = a.win, .disp = a.disp};
  MPI_Bcast(&t[T_PINHEAP].disp, 1, MPI_AINT, 1, MPI_COMM_WORLD);

  /* Every target buffer starts on a page boundary, as the pinheap block
   * does (the peers get a page more and use its first page boundary), and
   * so does the origin buffer below: Open MPI's single-copy transfers
   * (process_vm_readv, process_vm_writev) run about 5 times slower when the
   * destination sits a few bytes past the source within a page, which a
   * malloc'd buffer 16 bytes into its page would make of some pairs. */
  void *wmem;
  MPI_Win_allocate((MPI_Aint)(max + 4096), 1, MPI_INFO_NULL, MPI_COMM_WORLD, &wmem, &t[T_WIN_ALLOCATE].win);
  memset(wmem, 1, max + 4096);
  t[T_WIN_ALLOCATE].disp = comm_page_offset(wmem);
  t[T_WIN_ALLOCATE].mem = NULL;
  MPI_Bcast(&t[T_WIN_ALLOCATE].disp, 1, MPI_AINT, 1, MPI_COMM_WORLD);

  MPI_Alloc_mem((MPI_Aint)(max + 4096), MPI_INFO_NULL, &t[T_ALLOC_MEM].mem);
  memset(t[T_ALLOC_MEM].mem, 1, max + 4096);
  MPI_Win_create(t[T_ALLOC_MEM].mem, (MPI_Aint)(max + 4096), 1, MPI_INFO_NULL, MPI_COMM_WORLD,
                 &t[T_ALLOC_MEM].win);
  t[T_ALLOC_MEM].disp = comm_page_offset(t[T_ALLOC_MEM].mem);
  MPI_Bcast(&t[T_ALLOC_MEM].disp, 1, MPI_AINT, 1, MPI_COMM_WORLD);

  char *buf = NULL;
  if (posix_memalign((void **)&buf, 4096, max) != 0) return comm_fail("posix_memalign");
  memset(buf, 2, max);

  double lat[2][T_COUNT], bw[2][SIZES][T_COUNT];
  for (int g = 0; g < 2; g++)
    for (int k = 0; k < T_COUNT; k++) {
      lat[g][k] = 1e9;
      for (int s = 0; s < SIZES; s++) bw[g][s][k] = 0;
    }
  for (int k = 0; k < T_COUNT; k++) MPI_Win_lock_all(MPI_MODE_NOCHECK, t[k].win);
  for (int r = 0; r < rounds; r++)
    for (int k = 0; k < T_COUNT; k++) {
      /* Rank 1 stays in MPI (the barrier) so that its side progresses. */
      if (rank == 0) {
        for (int g = 0; g < 2; g++) {
          lat[g][k] = min_d(lat[g][k], comm_latency(&t[k], buf, 8, LAT_ITERS, g));
          for (int s = 0; s < SIZES; s++) bw[g][s][k] = max_d(bw[g][s][k], comm_bandwidth(&t[k], buf, bw_size[s], max, g));
        }
      }
      MPI_Barrier(MPI_COMM_WORLD);
    }
  for (int k = 0; k < T_COUNT; k++) MPI_Win_unlock_all(t[k].win);

  if (rank == 0) {
    static const char *const op[2] = {"put", "get"};
    printf("comm_mpi: best of %d rounds; ratio = pinheap / peer\n", rounds);
    printf("%-4s %-10s %12s %12s %12s %10s %10s\n", "op", "bytes", target_name[T_PINHEAP],
           target_name[T_WIN_ALLOCATE], target_name[T_ALLOC_MEM], "/win_alloc", "/alloc_mem");
    for (int g = 0; g < 2; g++)
      printf("%-4s %-10s %10.2fus %10.2fus %10.2fus %10.2f %10.2f   (latency)\n", op[g], "8", lat[g][0] * 1e6,
             lat[g][1] * 1e6, lat[g][2] * 1e6, lat[g][0] / lat[g][1], lat[g][0] / lat[g][2]);
    for (int g = 0; g < 2; g++)
      for (int s = 0; s < SIZES; s++)
        printf("%-4s %-10zu %8.1fMB/s %8.1fMB/s %8.1fMB/s %10.2f %10.2f   (bandwidth)\n", op[g], bw_size[s],
               bw[g][s][0] / 1e6, bw[g][s][1] / 1e6, bw[g][s][2] / 1e6, bw[g][s][0] / bw[g][s][1],
               bw[g][s][0] / bw[g][s][2]);
  }

  MPI_Win_free(&t[T_ALLOC_MEM].win);
  MPI_Free_mem(t[T_ALLOC_MEM].mem);
  MPI_Win_free(&t[T_WIN_ALLOCATE].win);
  pinheap_free(heap, block);
  pinheap_destroy(heap);
  pinheap_mpi_destroy(pm);
  free(buf);
  MPI_Finalize();
  return 0;
}
