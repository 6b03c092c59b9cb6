/*
 * bench_sym_oshmem: symmetric allocation, pinheap_sym against OpenSHMEM's
 * shmem_malloc (Open MPI's OSHMEM, whose memheap component, ptmalloc or
 * buddy, run_sym.sh picks), in the same run on the same processes: the two
 * symmetric heaps are the same size, and every PE makes the same sequence of
 * calls on each.
 *
 *   oshrun ... bench_sym_oshmem SCENARIO HEAP_MIB PEER_LABEL [seed]
 *     with SHMEM_SYMMETRIC_HEAP_SIZE=<HEAP_MIB>M
 *
 * Scenarios (sizes in MiB):
 *   seq700   700, free, 1000                       (the seed's first sequence)
 *   seq1000  1000, free, 500, 500                  (the second)
 *   tiny     500, 40 B, free the 500, 40 B, 500    (the third)
 *   churn    arrays of 256 KiB to 256 MiB with random lifetimes, their live
 *            bytes kept at most 70% of the heap by freeing before asking,
 *            each with 1 to 3 small objects (16 B to 4 KiB) of which one in
 *            ten lives to the end: the array requests that fail show the
 *            fragmentation, since a perfect allocator would serve them all
 *   speed    time of malloc + free pairs, 64 B and 8 MiB (the collective
 *            included: one allgather for pinheap_sym, OSHMEM's barriers),
 *            and of pinheap_sym's local part alone (a second symmetric heap
 *            with PINHEAP_SYM_NOSYNC); the three alternate, SPEED_REPS times
 *            each
 *
 * Only the first and last bytes of an array are written. pinheap_sym's
 * collective is MPI_Allgather over MPI_COMM_WORLD (OSHMEM runs over Open
 * MPI). Rank 0 prints one line per allocator: "RESULT scenario allocator
 * key=value ...". The seed (default 12345) makes the churn reproducible.
 */
#include <errno.h>
#include <mpi.h>
#include <shmem.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pinheap.h"
#include "pinheap_sym.h"

#define MiB ((size_t)1 << 20)

typedef struct allocator {
  const char *name;
  void *(*malloc)(size_t size);
  void (*free)(void *p);
} allocator;

static pinheap_sym *sym, *local_sym;
static int me;

static void *ph_malloc(size_t size) { return pinheap_sym_malloc(sym, size); }
static void ph_free(void *p) { pinheap_sym_free(sym, p); }
static void *ph_local_malloc(size_t size) { return pinheap_sym_malloc(local_sym, size); }
static void ph_local_free(void *p) { pinheap_sym_free(local_sym, p); }
static void *osh_malloc(size_t size) { return shmem_malloc(size); }
static void osh_free(void *p) { shmem_free(p); }

static int mpi_allgather(void *ctx, const void *in, void *out, size_t len) {
  (void)ctx;
  return MPI_Allgather(in, (int)len, MPI_BYTE, out, (int)len, MPI_BYTE, MPI_COMM_WORLD) == MPI_SUCCESS ? 0 : EIO;
}

static void touch(void *p, size_t size) {
  if (!p) return;
  ((volatile char *)p)[0] = 1;
  ((volatile char *)p)[size - 1] = 2;
}

/* ---- the seed's sequences ----------------------------------------------- */

typedef struct step {
  int slot;    /* slot to fill or empty */
  size_t size; /* 0: free the slot */
} step;

static void run_sequence(const char *scenario, const allocator *a, const step *steps, int n) {
  void *slot[4] = {0};
  int failed = -1;
  for (int i = 0; i < n && failed < 0; i++) {
    if (steps[i].size == 0) {
      a->free(slot[steps[i].slot]);
      slot[steps[i].slot] = NULL;
      continue;
    }
    slot[steps[i].slot] = a->malloc(steps[i].size);
    touch(slot[steps[i].slot], steps[i].size);
    if (!slot[steps[i].slot]) failed = i;
  }
  if (me == 0) {
    if (failed < 0)
      printf("RESULT %s %s outcome=ok\n", scenario, a->name);
    else
      printf("RESULT %s %s outcome=FAILED_at_step_%d:malloc(%zuMiB)\n", scenario, a->name, failed + 1,
             steps[failed].size / MiB);
  }
  for (int i = 0; i < 4; i++) a->free(slot[i]);
}

/* ---- churn ---------------------------------------------------------------- */

#define CHURN_STEPS 2000
#define CHURN_ARRAYS 24
#define CHURN_SMALL 8192

static uint64_t rng_next(uint64_t *s) {
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  return *s * 2685821657736338717ull;
}

typedef struct small_obj {
  void *p;
  int dies; /* step at which it is freed; -1: at the end */
} small_obj;

static void run_churn(const allocator *a, size_t heap, uint64_t seed) {
  void *arr[CHURN_ARRAYS] = {0};
  size_t arr_size[CHURN_ARRAYS] = {0};
  static small_obj small[CHURN_SMALL];
  int nsmall = 0;
  size_t live = 0, budget = heap / 10 * 7;
  int requests = 0, failures = 0, first_failure = -1;
  size_t live_at_first = 0;
  uint64_t rs = seed;
  for (int stepno = 0; stepno < CHURN_STEPS; stepno++) {
    int i = (int)(rng_next(&rs) % CHURN_ARRAYS);
    if (arr[i]) {
      a->free(arr[i]);
      live -= arr_size[i];
      arr[i] = NULL;
    } else {
      size_t base = ((size_t)256 << 10) << (rng_next(&rs) % 10);
      size_t size = base + rng_next(&rs) % base;
      /* Keep the live bytes within the budget, freeing the lowest slots. */
      for (int j = 0; j < CHURN_ARRAYS && live + size > budget; j++) {
        if (!arr[j]) continue;
        a->free(arr[j]);
        live -= arr_size[j];
        arr[j] = NULL;
      }
      requests++;
      arr[i] = a->malloc(size);
      touch(arr[i], size);
      if (arr[i]) {
        arr_size[i] = size;
        live += size;
      } else {
        if (first_failure < 0) {
          first_failure = stepno;
          live_at_first = live;
        }
        failures++;
      }
    }
    int count = 1 + (int)(rng_next(&rs) % 3);
    for (int k = 0; k < count && nsmall < CHURN_SMALL; k++) {
      size_t size = 16 + rng_next(&rs) % 4081;
      void *p = a->malloc(size);
      if (!p) continue;
      int dies = rng_next(&rs) % 10 == 0 ? -1 : stepno + 1 + (int)(rng_next(&rs) % 20);
      small[nsmall++] = (small_obj){p, dies};
    }
    /* Free the small objects whose time has come, keeping the order. */
    int kept = 0;
    for (int k = 0; k < nsmall; k++) {
      if (small[k].dies == stepno)
        a->free(small[k].p);
      else
        small[kept++] = small[k];
    }
    nsmall = kept;
  }
  if (me == 0)
    printf(
        "RESULT churn %s requests=%d failed=%d first_failure_step=%d live_MiB_at_first_failure=%.1f "
        "long_lived_small=%d\n",
        a->name, requests, failures, first_failure, (double)live_at_first / (double)MiB, nsmall);
  for (int j = 0; j < CHURN_ARRAYS; j++) a->free(arr[j]);
  for (int k = 0; k < nsmall; k++) a->free(small[k].p);
}

/* ---- speed ---------------------------------------------------------------- */

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

#define SPEED_REPS 5

static void run_speed(const allocator *a) {
  static const size_t sizes[2] = {64, 8 * MiB};
  static const int pairs[2] = {5000, 1000};
  for (int s = 0; s < 2; s++) {
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = now();
    for (int i = 0; i < pairs[s]; i++) {
      void *p = a->malloc(sizes[s]);
      if (!p) {
        fprintf(stderr, "bench_sym_oshmem: %s: malloc(%zu) failed\n", a->name, sizes[s]);
        MPI_Abort(MPI_COMM_WORLD, 1);
      }
      a->free(p);
    }
    double us = (now() - t0) * 1e6 / pairs[s];
    if (me == 0) printf("RESULT speed %s size=%zu pairs=%d us_per_pair=%.2f\n", a->name, sizes[s], pairs[s], us);
  }
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s seq700|seq1000|tiny|churn|speed HEAP_MIB PEER_LABEL [seed]\n", argv[0]);
    return 2;
  }
  const char *scenario = argv[1];
  size_t heap_size = (size_t)strtoull(argv[2], NULL, 10) * MiB;
  uint64_t seed = argc > 4 ? strtoull(argv[4], NULL, 0) : 12345;
  MPI_Init(&argc, &argv);
  shmem_init(); /* shmem_finalize finalizes MPI too */
  me = shmem_my_pe();
  int nranks = shmem_n_pes();

  pinheap_options o;
  pinheap_options_init(&o);
  o.mode = PINHEAP_FIXED;
  bool speed = !strcmp(scenario, "speed");
  o.size = heap_size * (speed ? 2 : 1) + 16 * MiB; /* the arena's 4 MiB and slack */
  o.arenas = 1;
  pinheap *heap = pinheap_create(&o);
  pinheap_collective coll = {.ctx = NULL, .rank = me, .nranks = nranks, .allgather = mpi_allgather};
  sym = heap ? pinheap_sym_create(heap, heap_size, &coll, 0) : NULL;
  if (sym && speed) local_sym = pinheap_sym_create(heap, heap_size, &coll, PINHEAP_SYM_NOSYNC);
  if (!sym || (speed && !local_sym)) {
    fprintf(stderr, "bench_sym_oshmem: rank %d: %s\n", me, pinheap_last_error());
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  char peer_name[64];
  snprintf(peer_name, sizeof peer_name, "shmem_malloc(%s)", argv[3]);
  const allocator all[3] = {{"pinheap_sym", ph_malloc, ph_free},
                            {peer_name, osh_malloc, osh_free},
                            {"pinheap_sym_nosync", ph_local_malloc, ph_local_free}};
  const step seq700[] = {{0, 700 * MiB}, {0, 0}, {1, 1000 * MiB}};
  const step seq1000[] = {{0, 1000 * MiB}, {0, 0}, {1, 500 * MiB}, {2, 500 * MiB}};
  const step tiny[] = {{0, 500 * MiB}, {1, 40}, {0, 0}, {2, 40}, {3, 500 * MiB}};
  for (int i = 0; i < 3 * SPEED_REPS && speed; i++) run_speed(&all[i % 3]);
  for (int i = 0; i < 2 && !speed; i++) {
    const allocator *a = &all[i];
    if (!strcmp(scenario, "seq700"))
      run_sequence(scenario, a, seq700, 3);
    else if (!strcmp(scenario, "seq1000"))
      run_sequence(scenario, a, seq1000, 4);
    else if (!strcmp(scenario, "tiny"))
      run_sequence(scenario, a, tiny, 5);
    else if (!strcmp(scenario, "churn"))
      run_churn(a, heap_size, seed);
    else {
      if (me == 0) fprintf(stderr, "bench_sym_oshmem: unknown scenario %s\n", scenario);
      MPI_Abort(MPI_COMM_WORLD, 2);
    }
  }
  if (pinheap_sym_check(sym) != 0) {
    fprintf(stderr, "bench_sym_oshmem: rank %d: the symmetric heap is inconsistent\n", me);
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  pinheap_sym_destroy(sym);
  pinheap_sym_destroy(local_sym);
  pinheap_destroy(heap);
  shmem_finalize();
  return 0;
}
