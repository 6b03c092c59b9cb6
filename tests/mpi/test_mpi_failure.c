/*
 * Failures on one rank only (the last).
 * 1. A FIXED region it cannot map (it asks 128 TiB, more than a process's
 *    address space; the others ask 64 MiB): pinheap_create fails with ENOMEM
 *    on every rank, without a hang, each message naming the rank that could
 *    not map, and nothing stays mapped; then the provider serves a heap.
 * 2. Retries stay collective: every rank asks 1 GiB, down to 128 MiB, and
 *    the last rank's address space (RLIMIT_AS) has room for about 600 MiB:
 *    every rank ends with the same smaller region after the same refusals.
 * 3. A DYNAMIC heap's direct block that the last rank cannot map: ENOMEM
 *    there only, naming the provider and mmap; the other ranks get theirs.
 *
 *   test_mpi_failure
 */
#include <errno.h>
#include <string.h>
#include <sys/resource.h>

#include "mpitest.h"

/* This process's address space in bytes (VmSize). */
static size_t vm_size(void) {
  FILE *f = fopen("/proc/self/status", "r");
  MT_CHECK(f, "/proc/self/status");
  char line[256];
  size_t kb = 0;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "VmSize: %zu kB", &kb) == 1) break;
  fclose(f);
  MT_CHECK(kb, "VmSize");
  return kb << 10;
}

/* Limits this process's address space to what it uses now plus room. */
static struct rlimit limit_address_space(size_t room) {
  struct rlimit old, lim;
  MT_CHECK(getrlimit(RLIMIT_AS, &old) == 0, "getrlimit");
  lim = old;
  lim.rlim_cur = vm_size() + room;
  MT_CHECK(setrlimit(RLIMIT_AS, &lim) == 0, "setrlimit");
  return old;
}

static void unmappable_region(pinheap_mpi *pm, bool last) {
  size_t before = vm_size();
  errno = 0;
  pinheap *heap = mt_heap(pm, PINHEAP_FIXED, last ? (size_t)1 << 47 : 64 * MiB, 0, 0);
  MT_CHECK(!heap && errno == ENOMEM, "pinheap_create must fail on every rank");
  const char *msg = pinheap_last_error();
  char want[64];
  snprintf(want, sizeof want, "rank %d of %d cannot map", mt_nranks - 1, mt_nranks);
  MT_CHECK(strstr(msg, "provider mpi") && strstr(msg, want) && strstr(msg, "every rank gives up"), "message: %s", msg);
  if (last) MT_CHECK(strstr(msg, "mmap"), "the last rank's message says why: %s", msg);
  pinheap_mpi_stats st = mt_stats(pm);
  MT_CHECK(st.regions == 0 && st.bytes == 0 && st.obtained == 0 && st.refused == 1, "nothing obtained, one refusal");
  size_t after = vm_size();
  MT_CHECK(after < before + 32 * MiB, "%zu bytes more mapped after a failed create", after - before);
  MT_CHECK(pinheap_mpi_check(pm) == 0, "pinheap_mpi_check");

  /* Nothing is left busy: the same provider serves a heap now. */
  heap = mt_heap(pm, PINHEAP_FIXED, 64 * MiB, 0, 0);
  MT_CHECK(heap, "a heap after the failure");
  MT_CHECK(mt_stats(pm).regions == 1, "one region");
  pinheap_destroy(heap);
}

static void collective_retries(pinheap_mpi *pm, bool last) {
  pinheap_options o;
  pinheap_options_init(&o);
  o.size = 1024 * MiB;
  o.min_size = 128 * MiB;
  o.arenas = 1;
  o.provider = pinheap_mpi_provider(pm);
  size_t refused = mt_stats(pm).refused;
  struct rlimit old;
  if (last) old = limit_address_space(600 * MiB);
  pinheap *heap = pinheap_create(&o);
  if (last) MT_CHECK(setrlimit(RLIMIT_AS, &old) == 0, "restoring RLIMIT_AS");
  MT_CHECK(heap, "pinheap_create with retries");
  pinheap_stats hs;
  MT_CHECK(pinheap_get_stats(heap, &hs) == 0, "stats");
  uint64_t mine[2] = {hs.capacity, mt_stats(pm).refused - refused}, *all = malloc(sizeof mine * (size_t)mt_nranks);
  MT_CHECK(all, "memory");
  MPI_Allgather(mine, 2, MPI_UINT64_T, all, 2, MPI_UINT64_T, MPI_COMM_WORLD);
  for (int r = 0; r < mt_nranks; r++)
    MT_CHECK(all[2 * r] == mine[0] && all[2 * r + 1] == mine[1],
             "rank %d has %llu bytes after %llu refusals, this one %llu after %llu", r, (unsigned long long)all[2 * r],
             (unsigned long long)all[2 * r + 1], (unsigned long long)mine[0], (unsigned long long)mine[1]);
  MT_CHECK(mine[1] >= 1 && mine[0] < 600 * MiB && mine[0] >= 128 * MiB, "%llu bytes after %llu refusals",
           (unsigned long long)mine[0], (unsigned long long)mine[1]);
  free(all);
  pinheap_destroy(heap);
  if (mt_rank == 0)
    printf("test_mpi_failure: every rank took %llu MiB after %llu refusals\n", (unsigned long long)(mine[0] >> 20),
           (unsigned long long)mine[1]);
}

static void unmappable_direct_block(bool last) {
  pinheap_mpi *pm = pinheap_mpi_create(MPI_COMM_WORLD, PINHEAP_DYNAMIC, NULL);
  MT_CHECK(pm, "pinheap_mpi_create");
  pinheap *heap = mt_heap(pm, PINHEAP_DYNAMIC, 0, 4 * MiB, 8 * MiB);
  MT_CHECK(heap, "pinheap_create");
  size_t attached = mt_stats(pm).obtained;
  struct rlimit old;
  if (last) old = limit_address_space(64 * MiB);
  errno = 0;
  void *p = pinheap_malloc(heap, 256 * MiB);
  int err = errno;
  if (last) MT_CHECK(setrlimit(RLIMIT_AS, &old) == 0, "restoring RLIMIT_AS");
  pinheap_mpi_stats st = mt_stats(pm);
  if (last) {
    MT_CHECK(!p && err == ENOMEM, "the direct block must fail on the last rank");
    MT_CHECK(strstr(pinheap_last_error(), "provider mpi") && strstr(pinheap_last_error(), "mmap"), "message");
    MT_CHECK(st.refused >= 1 && st.obtained == attached, "refused, nothing attached");
  } else {
    MT_CHECK(p, "the direct block on the other ranks");
    MT_CHECK(st.refused == 0 && st.obtained == attached + 1, "attached");
    pinheap_free(heap, p);
  }
  MT_CHECK(pinheap_mpi_check(pm) == 0, "pinheap_mpi_check");
  pinheap_destroy(heap);
  MT_CHECK(mt_stats(pm).regions == 0, "everything detached");
  pinheap_mpi_destroy(pm);
}

int main(int argc, char **argv) {
  mt_init(&argc, &argv, MPI_THREAD_SINGLE);
  bool last = mt_rank == mt_nranks - 1;
  pinheap_mpi *pm = pinheap_mpi_create(MPI_COMM_WORLD, PINHEAP_FIXED, NULL);
  MT_CHECK(pm, "pinheap_mpi_create");
  unmappable_region(pm, last);
  collective_retries(pm, last);
  pinheap_mpi_destroy(pm);
  unmappable_direct_block(last);
  MPI_Barrier(MPI_COMM_WORLD);
  if (mt_rank == 0) printf("test_mpi_failure: ok (%d ranks)\n", mt_nranks);
  MPI_Finalize();
  return 0;
}
