/*
 * reg_cost: what a FIXED heap costs to create (its region obtained and
 * registered) and to destroy, with each provider:
 *   local      the local provider (mmap; nothing registered)
 *   mpi        the MPI provider (pinheap_mpi_heap_create: MPI_Win_create
 *              over the region, collective over every rank of the job)
 *   ofi-tcp    the libfabric provider on tcp;ofi_rxm (fi_mr_reg)
 *   ofi-shm    the libfabric provider on shm
 * for regions of 1 GiB and 8 GiB, without and with pre-faulting (every page
 * touched before it is registered). Pre-faulting commits the whole region,
 * so it is measured only for regions of at most 2 GiB (the benchmark keeps
 * to 2 GiB of memory per rank). Each figure is the median of several runs;
 * the ratio is the provider's time over the local provider's.
 *
 *   mpirun -np 1 reg_cost [runs]     (FI_TCP_IFACE=lo for ofi-tcp)
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rdma/fabric.h>

#include "pinheap.h"
#include "pinheap_mpi.h"
#include "pinheap_ofi.h"

enum { P_LOCAL, P_MPI, P_OFI_TCP, P_OFI_SHM, P_COUNT };
static const char *const prov_name[P_COUNT] = {"local", "mpi", "ofi-tcp", "ofi-shm"};

#define MAX_RUNS 15
#define PREFAULT_MAX ((size_t)2 << 30)

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* A libfabric provider object on the named libfabric provider, or NULL. */
static pinheap_ofi *reg_ofi_open(const char *name) {
  struct fi_info *hints = fi_allocinfo();
  if (!hints) return NULL;
  hints->caps = FI_RMA;
  hints->ep_attr->type = FI_EP_RDM;
  hints->fabric_attr->prov_name = strdup(name);
  pinheap_ofi *po = pinheap_ofi_open(hints, FI_REMOTE_READ | FI_REMOTE_WRITE);
  fi_freeinfo(hints);
  return po;
}

/* Times one create and one destroy of a FIXED heap of size bytes on pv
 * (on pm, when not NULL, through pinheap_mpi_heap_create); 0 on success.
 * Every rank calls it (the MPI provider is collective). */
static int reg_once(const pinheap_provider *pv, pinheap_mpi *pm, size_t size, bool prefault_local, double *create_s,
                    double *destroy_s) {
  pinheap_options opts;
  pinheap_options_init(&opts);
  opts.size = size;
  opts.arenas = 1;
  opts.provider = pv;
  opts.prefault = prefault_local;
  MPI_Barrier(MPI_COMM_WORLD);
  double t0 = now();
  pinheap *h = pm ? pinheap_mpi_heap_create(pm, &opts) : pinheap_create(&opts);
  double t1 = now();
  if (!h) {
    fprintf(stderr, "reg_cost: pinheap_create: %s\n", pinheap_last_error());
    return -1;
  }
  MPI_Barrier(MPI_COMM_WORLD);
  double t2 = now();
  pinheap_destroy(h);
  *destroy_s = now() - t2;
  *create_s = t1 - t0;
  return 0;
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  int runs = argc > 1 ? atoi(argv[1]) : 5;
  if (runs < 1 || runs > MAX_RUNS) {
    if (rank == 0) fprintf(stderr, "usage: reg_cost [runs 1..%d]\n", MAX_RUNS);
    MPI_Finalize();
    return 2;
  }
  static const size_t sizes[] = {(size_t)1 << 30, (size_t)8 << 30};
  if (rank == 0) {
    printf("reg_cost: FIXED heap create and destroy, median of %d runs (ms); ratio = provider / local\n", runs);
    printf("%-8s %-6s %-9s %12s %12s %8s\n", "provider", "size", "prefault", "create", "destroy", "ratio");
  }
  int status = 0;
  for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++)
    for (int prefault = 0; prefault < 2; prefault++) {
      if (prefault && sizes[si] > PREFAULT_MAX) {
        if (rank == 0)
          printf("%-8s %4zuG  %-9s %12s   (would commit %zu GiB per rank: not run)\n", "all", sizes[si] >> 30,
                 "yes", "-", sizes[si] >> 30);
        continue;
      }
      double local_create = 0;
      for (int p = 0; p < P_COUNT; p++) {
        pinheap_mpi *pm = NULL;
        pinheap_ofi *po = NULL;
        const pinheap_provider *pv = NULL;
        if (p == P_MPI) {
          pinheap_mpi_options mo = {.info = MPI_INFO_NULL, .prefault = prefault};
          pm = pinheap_mpi_create(MPI_COMM_WORLD, PINHEAP_FIXED, &mo);
          pv = pm ? pinheap_mpi_provider(pm) : NULL;
        } else if (p == P_OFI_TCP || p == P_OFI_SHM) {
          po = reg_ofi_open(p == P_OFI_TCP ? "tcp;ofi_rxm" : "shm");
          if (po) pinheap_ofi_set_prefault(po, prefault);
          pv = po ? pinheap_ofi_provider(po) : NULL;
        }
        if (p != P_LOCAL && !pv) {
          if (rank == 0) printf("%-8s (unavailable: %s)\n", prov_name[p], pinheap_last_error());
          continue;
        }
        /* One run first, not counted: the first heap of a process also
         * initializes jemalloc and the provider's first registration. */
        double c[MAX_RUNS + 1], d[MAX_RUNS + 1];
        int ok = 1;
        for (int r = 0; r <= runs && ok; r++)
          ok = reg_once(pv, pm, sizes[si], p == P_LOCAL && prefault, &c[r], &d[r]) == 0;
        c[0] = c[runs];
        d[0] = d[runs];
        if (pm) pinheap_mpi_destroy(pm);
        if (po) pinheap_ofi_destroy(po);
        if (!ok) {
          status = 1;
          continue;
        }
        qsort(c, (size_t)runs, sizeof *c, cmp_double);
        qsort(d, (size_t)runs, sizeof *d, cmp_double);
        double cm = c[runs / 2], dm = d[runs / 2];
        if (p == P_LOCAL) local_create = cm;
        if (rank == 0)
          printf("%-8s %4zuG  %-9s %12.3f %12.3f %8.2f\n", prov_name[p], sizes[si] >> 30, prefault ? "yes" : "no",
                 cm * 1e3, dm * 1e3, local_create > 0 ? cm / local_create : 0.0);
      }
    }
  MPI_Finalize();
  return status;
}
