/*
 * gups: the HPC Challenge RandomAccess kernel over pinheap.
 *
 * The table (2^log_local 64-bit words per rank, 2^log_total in all) is one
 * symmetric object in each rank's heap on the MPI provider: FIXED (the
 * region is an MPI window), or DYNAMIC (chunks and blocks attached to one
 * dynamic window). pinheap_mpi_remote gives the window and the table's
 * displacement on every rank, whatever the mode. Each rank applies its share of the 4 * 2^log_total
 * updates, Table[ran & (size - 1)] ^= ran, to whichever rank owns the word,
 * with one-sided MPI_Accumulate(MPI_BXOR): atomic, so no update is lost.
 * The check is the benchmark's own: apply the same updates again, which
 * must bring every word back to its index. The benchmark's rules allow 1%
 * of words wrong; with atomics the example demands none.
 *
 *   mpirun.openmpi -np N gups_openmpi [log_local] [updates_per_flush] [dynamic|win_allocate]
 *   mpirun.mpich -np N gups_mpich ...
 *
 * (build/examples/gups_<mpi>, one per MPI found; Open MPI needs the options
 * tests/mpi/run.sh gives it, which runs either: tests/mpi/run.sh openmpi 4
 * build/examples/gups_openmpi 16.) N is a power of two. With dynamic the
 * heap is DYNAMIC; with win_allocate the table is in memory from
 * MPI_Win_allocate instead (the peer to compare rates with).
 *
 * Prints the rate in GUP/s (billions of updates per second) and exits
 * non-zero when a word is wrong or anything fails.
 */
#include <inttypes.h>
#include <mpi.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pinheap.h"
#include "pinheap_mpi.h"
#include "pinheap_sym.h"

/* The benchmark's generator: a shift register over GF(2) with this
 * polynomial, of this period. */
#define GUPS_POLY UINT64_C(0x0000000000000007)
#define GUPS_PERIOD INT64_C(1317624576693539401)

static uint64_t gups_step(uint64_t x) { return (x << 1) ^ ((int64_t)x < 0 ? GUPS_POLY : 0); }

/* The n-th value of the sequence that starts at 1, in O(64^2): the step is
 * linear over GF(2), so 2^i steps are a 64x64 bit matrix, applied by
 * squaring. Lets each rank start its share of the updates directly. */
static uint64_t gups_start(int64_t n) {
  while (n < 0) n += GUPS_PERIOD;
  while (n > GUPS_PERIOD) n -= GUPS_PERIOD;
  if (n == 0) return 1;
  /* A value is a polynomial over GF(2) and a step multiplies it by x, so the
   * n-th value is x^n mod the polynomial. Squaring maps each x^j to x^(2j):
   * square[j] = x^(2j) mod the polynomial. */
  uint64_t square[64];
  uint64_t t = 1;
  for (int j = 0; j < 64; j++) {
    square[j] = t;
    t = gups_step(gups_step(t));
  }
  int top = 62;
  while (top >= 0 && !((n >> top) & 1)) top--;
  uint64_t ran = 2;
  while (top > 0) {
    uint64_t sq = 0;
    for (int j = 0; j < 64; j++)
      if ((ran >> j) & 1) sq ^= square[j];
    ran = sq;
    top--;
    if ((n >> top) & 1) ran = gups_step(ran);
  }
  return ran;
}

typedef struct gups {
  int rank, nranks;
  unsigned log_local;
  uint64_t local_words;
  uint64_t total_words;
  uint64_t *table;
  MPI_Win win;
  MPI_Aint *disp; /* the table's displacement in each rank's window */
} gups;

static int gups_fail(const char *what) {
  fprintf(stderr, "gups: %s: %s\n", what, pinheap_last_error());
  MPI_Abort(MPI_COMM_WORLD, 1);
  return 1;
}

/* Applies this rank's share of the updates; returns the seconds taken.
 * buf holds per_flush values: an origin buffer must not change until a
 * flush completes its operation. */
static double gups_update(const gups *g, uint64_t *buf, unsigned per_flush) {
  uint64_t updates = 4 * g->total_words;
  uint64_t mine = updates / (uint64_t)g->nranks;
  uint64_t ran = gups_start((int64_t)(mine * (uint64_t)g->rank));
  MPI_Barrier(MPI_COMM_WORLD);
  double t0 = MPI_Wtime();
  for (uint64_t i = 0; i < mine; i++) {
    ran = gups_step(ran);
    uint64_t index = ran & (g->total_words - 1);
    int owner = (int)(index >> g->log_local);
    uint64_t word = index & (g->local_words - 1);
    uint64_t *v = &buf[i % per_flush];
    *v = ran;
    MPI_Accumulate(v, 1, MPI_UINT64_T, owner, g->disp[owner] + (MPI_Aint)(word * sizeof(uint64_t)), 1,
                   MPI_UINT64_T, MPI_BXOR, g->win);
    if ((i + 1) % per_flush == 0) MPI_Win_flush_all(g->win);
  }
  MPI_Win_flush_all(g->win);
  MPI_Barrier(MPI_COMM_WORLD);
  return MPI_Wtime() - t0;
}

/* What this rank's words hold after one pass: their initial values with
 * every update of the whole sequence (every rank's share, in any order:
 * XOR commutes) that lands on them applied. */
static void gups_replay(const gups *g, uint64_t *expect) {
  uint64_t first = g->local_words * (uint64_t)g->rank;
  for (uint64_t i = 0; i < g->local_words; i++) expect[i] = first + i;
  uint64_t all = 4 * g->total_words / (uint64_t)g->nranks * (uint64_t)g->nranks;
  uint64_t ran = gups_start(0);
  for (uint64_t i = 0; i < all; i++) {
    ran = gups_step(ran);
    uint64_t index = ran & (g->total_words - 1);
    if ((int)(index >> g->log_local) == g->rank) expect[index & (g->local_words - 1)] ^= ran;
  }
}

int main(int argc, char **argv) {
  int provided;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_SINGLE, &provided);
  gups g = {0};
  MPI_Comm_rank(MPI_COMM_WORLD, &g.rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g.nranks);
  if (g.nranks & (g.nranks - 1)) {
    if (g.rank == 0) fprintf(stderr, "gups: the number of ranks must be a power of two\n");
    MPI_Finalize();
    return 2;
  }
  g.log_local = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 16;
  unsigned per_flush = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 1024;
  bool peer = argc > 3 && strcmp(argv[3], "win_allocate") == 0;
  bool dynamic = argc > 3 && strcmp(argv[3], "dynamic") == 0;
  if (g.log_local < 4 || g.log_local > 30 || per_flush == 0 || (argc > 3 && !peer && !dynamic)) {
    if (g.rank == 0)
      fprintf(stderr, "usage: gups [log_local 4..30] [updates_per_flush > 0] [dynamic|win_allocate]\n");
    MPI_Finalize();
    return 2;
  }
  g.local_words = (uint64_t)1 << g.log_local;
  g.total_words = g.local_words * (uint64_t)g.nranks;
  size_t table_bytes = g.local_words * sizeof(uint64_t);

  g.disp = calloc((size_t)g.nranks, sizeof *g.disp);
  uint64_t *buf = calloc(per_flush, sizeof *buf);
  if (!g.disp || !buf) return gups_fail("calloc");
  pinheap_mpi *pm = NULL;
  pinheap *heap = NULL;
  pinheap_sym *sym = NULL;
  if (peer) {
    /* The peer: the table in memory MPI allocates for its own window. */
    MPI_Win_allocate((MPI_Aint)table_bytes, 1, MPI_INFO_NULL, MPI_COMM_WORLD, &g.table, &g.win);
  } else {
    /* The heap: FIXED, its region an MPI window over every rank, or
     * DYNAMIC, its memory attached to one dynamic window. */
    pinheap_mode mode = dynamic ? PINHEAP_DYNAMIC : PINHEAP_FIXED;
    pm = pinheap_mpi_create(MPI_COMM_WORLD, mode, NULL);
    if (!pm) return gups_fail("pinheap_mpi_create");
    pinheap_options opts;
    pinheap_options_init(&opts);
    opts.mode = mode;
    opts.size = dynamic ? 0 : table_bytes + ((size_t)64 << 20);
    opts.arenas = 1;
    heap = pinheap_mpi_heap_create(pm, &opts);
    if (!heap) return gups_fail("pinheap_mpi_heap_create");

    /* The table: one symmetric object, the same offset on every rank, and
     * where it lies on each: the window and the displacement its
     * MPI_Accumulate takes. */
    sym = pinheap_mpi_sym_create(pm, heap, table_bytes + ((size_t)2 << 20), 0);
    if (!sym) return gups_fail("pinheap_mpi_sym_create");
    g.table = pinheap_sym_malloc(sym, table_bytes);
    if (!g.table) return gups_fail("pinheap_sym_malloc");
    for (int r = 0; r < g.nranks; r++) {
      pinheap_mpi_addr a;
      if (pinheap_mpi_remote(sym, g.table, r, &a) != 0) return gups_fail("pinheap_mpi_remote");
      g.win = a.win;
      g.disp[r] = a.disp;
    }
  }
  uint64_t first = g.local_words * (uint64_t)g.rank;
  for (uint64_t i = 0; i < g.local_words; i++) g.table[i] = first + i;

  /* Local stores and remote updates of the window meet at a Win_sync and a
   * barrier (MPI's separate memory model needs them; the unified one
   * orders them only eventually). */
  MPI_Win_lock_all(MPI_MODE_NOCHECK, g.win);
  MPI_Win_sync(g.win);
  double seconds = gups_update(&g, buf, per_flush);
  MPI_Win_sync(g.win);
  /* After one pass every word must be what this rank computes by replaying
   * the whole sequence of updates on its own words: it catches an update
   * applied to the wrong word, which the second pass would undo. */
  uint64_t *expect = malloc(table_bytes);
  if (!expect) return gups_fail("malloc");
  gups_replay(&g, expect);
  uint64_t misplaced = 0, all_misplaced = 0;
  for (uint64_t i = 0; i < g.local_words; i++)
    if (g.table[i] != expect[i]) misplaced++;
  free(expect);
  MPI_Barrier(MPI_COMM_WORLD);
  /* The benchmark's own check: the same updates again restore the table. */
  gups_update(&g, buf, per_flush);
  MPI_Win_sync(g.win);
  MPI_Win_unlock_all(g.win);

  uint64_t wrong = 0, all_wrong = 0;
  for (uint64_t i = 0; i < g.local_words; i++)
    if (g.table[i] != first + i) wrong++;
  MPI_Reduce(&wrong, &all_wrong, 1, MPI_UINT64_T, MPI_SUM, 0, MPI_COMM_WORLD);
  MPI_Reduce(&misplaced, &all_misplaced, 1, MPI_UINT64_T, MPI_SUM, 0, MPI_COMM_WORLD);
  double slowest = 0;
  MPI_Reduce(&seconds, &slowest, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);

  int broken = peer ? 0 : pinheap_sym_check(sym) + pinheap_check(heap);
  int all_broken = 0;
  MPI_Reduce(&broken, &all_broken, 1, MPI_INT, MPI_SUM, 0, MPI_COMM_WORLD);

  uint64_t updates = 4 * g.total_words / (uint64_t)g.nranks * (uint64_t)g.nranks;
  if (g.rank == 0) {
    printf("gups: the table in %s\n", peer      ? "MPI_Win_allocate memory (the peer)"
                                       : dynamic ? "a pinheap symmetric heap in a DYNAMIC heap"
                                                 : "a pinheap symmetric heap in a FIXED heap");
    printf("gups: %d ranks, table 2^%u words (%" PRIu64 " MiB) per rank, %" PRIu64 " updates, %u per flush\n",
           g.nranks, g.log_local, (uint64_t)(table_bytes >> 20), updates, per_flush);
    printf("gups: %.6f GUP/s (%.3f s)\n", (double)updates / slowest / 1e9, slowest);
    printf("gups: %" PRIu64 " of %" PRIu64 " words wrong (%.4f%%; the rules allow 1%%, atomics allow none)\n",
           all_wrong, g.total_words, 100.0 * (double)all_wrong / (double)g.total_words);
    printf("gups: after one pass, %" PRIu64 " words differ from a local replay of the updates\n", all_misplaced);
    printf("gups: heap checks: %d broken invariants\n", all_broken);
  }

  if (peer) {
    MPI_Win_free(&g.win);
  } else {
    pinheap_sym_free(sym, g.table);
    pinheap_sym_destroy(sym);
    pinheap_destroy(heap);
    pinheap_mpi_destroy(pm);
  }
  free(g.disp);
  free(buf);
  int status = all_wrong == 0 && all_misplaced == 0 && all_broken == 0 ? 0 : 1;
  MPI_Bcast(&status, 1, MPI_INT, 0, MPI_COMM_WORLD);
  MPI_Finalize();
  return status;
}
