/*
 * Failures on one rank only (the last), none of which may hang; heaps are
 * made with pinheap_mpi_heap_create unless said otherwise.
 * 1. Bad options on one rank (a FIXED size of 2^47 + 4096 bytes; a mode
 *    that is not the provider's): EINVAL on every rank, the others' message
 *    naming that rank, nothing taken; so are retries that could not stay in
 *    step (another min_size on one rank).
 * 2. A FIXED region it cannot map (it asks 2^47 bytes, more than a
 *    process's address space; the others ask 64 MiB), through the wrapper
 *    and through pinheap_create: ENOMEM on every rank, each message naming
 *    the rank that could not map, nothing left mapped.
 * 3. A heap that fails after its region was obtained (2 MiB under the bump
 *    policy: no room for its two arenas' first grants): ENOMEM on every rank, the others' heaps destroyed, no window.
 * 4. A heap that fails before it obtains (jemalloc's page size query fails,
 *    injected): its own error there, ENOMEM naming it on the others, whose
 *    min_size retries fail at once.
 * 5. A prefault that fails (MADV_POPULATE_WRITE answers ENOMEM, injected):
 *    FIXED, every rank fails and no page is touched; DYNAMIC, that rank's
 *    allocation alone. Without the injection the pages are faulted in.
 * 6. Retries stay collective: every rank asks 1 GiB, down to 128 MiB, and
 *    the last rank's address space (RLIMIT_AS) has room for about 600 MiB:
 *    every rank ends with the same smaller region after the same refusals,
 *    with pinheap_create and with the wrapper.
 * 7. A DYNAMIC heap's direct block that the last rank cannot map: ENOMEM
 *    there only, naming the provider and mmap; the other ranks get theirs.
 * 8. A DYNAMIC heap used from a thread other than the provider's creator,
 *    with MPI initialized at MPI_THREAD_FUNNELED: the attach is refused
 *    (ENOMEM naming the thread level), the detach is not made (unreleased);
 *    at a higher level MPI provides, both work.
 * Errors are injected through the program's own mallctl and madvise, which
 * the libraries' calls reach first and which pass the others on. UCX's
 * memory hooks (under MPICH) send madvise around them: run with
 * UCX_MEM_EVENTS=no.
 *
 *   UCX_MEM_EVENTS=no test_mpi_failure
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mpitest.h"

/* Calls still to fail: mallctl("arenas.page"), madvise(MADV_POPULATE_WRITE). */
static int fail_page_query, fail_populate;

int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen);
int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen) {
  typedef int fn(const char *, void *, size_t *, void *, size_t);
  static fn *next;
  fn *f = __atomic_load_n(&next, __ATOMIC_ACQUIRE);
  if (!f) {
    f = (fn *)dlsym(RTLD_NEXT, "mallctl");
    __atomic_store_n(&next, f, __ATOMIC_RELEASE);
  }
  if (fail_page_query > 0 && strcmp(name, "arenas.page") == 0) {
    fail_page_query--;
    return EFAULT;
  }
  return f(name, oldp, oldlenp, newp, newlen);
}

int madvise(void *addr, size_t len, int advice) {
  if (advice == MADV_POPULATE_WRITE && fail_populate > 0) {
    fail_populate--;
    errno = ENOMEM;
    return -1;
  }
  return (int)syscall(SYS_madvise, addr, len, advice);
}

/* A field of /proc/self/status in bytes (VmSize, VmRSS). */
static size_t vm(const char *field) {
  FILE *f = fopen("/proc/self/status", "r");
  MT_CHECK(f, "/proc/self/status");
  char line[256], fmt[64];
  snprintf(fmt, sizeof fmt, "%s: %%zu kB", field);
  size_t kb = 0;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, fmt, &kb) == 1) break;
  fclose(f);
  MT_CHECK(kb, "%s", field);
  return kb << 10;
}

/* Limits this process's address space to what it uses now plus room. */
static struct rlimit limit_address_space(size_t room) {
  struct rlimit old, lim;
  MT_CHECK(getrlimit(RLIMIT_AS, &old) == 0, "getrlimit");
  lim = old;
  lim.rlim_cur = vm("VmSize") + room;
  MT_CHECK(setrlimit(RLIMIT_AS, &lim) == 0, "setrlimit");
  return old;
}

/* "rank <last> of <n>", as messages name the last rank. */
static const char *last_rank(void) {
  static char s[64];
  snprintf(s, sizeof s, "rank %d of %d", mt_nranks - 1, mt_nranks);
  return s;
}

/* The provider made and kept nothing since before, but refusals. */
static void nothing_kept(pinheap_mpi *pm, pinheap_mpi_stats before, size_t refusals) {
  pinheap_mpi_stats st = mt_stats(pm);
  MT_CHECK(st.regions == 0 && st.bytes == 0 && st.obtained == before.obtained && st.released == before.released &&
               st.refused == before.refused + refusals,
           "%zu regions, %zu obtained, %zu refused (%zu before)", st.regions, st.obtained, st.refused,
           before.refused);
  MT_CHECK(pinheap_mpi_window(pm) == MPI_WIN_NULL, "no window");
  MT_CHECK(pinheap_mpi_check(pm) == 0, "pinheap_mpi_check");
}

/* The provider serves a heap after a failure: the ranks are in step. */
static void still_serves(pinheap_mpi *pm) {
  pinheap *heap = mt_heap(pm, PINHEAP_FIXED, 64 * MiB, 0, 0);
  MT_CHECK(heap, "a heap after the failure");
  MT_CHECK(mt_stats(pm).regions == 1 && pinheap_mpi_window(pm) != MPI_WIN_NULL, "one region exposed");
  pinheap_destroy(heap);
}

static void bad_options(pinheap_mpi *pm, bool last) {
  pinheap_mpi_stats before = mt_stats(pm);
  pinheap_options o = mt_options(PINHEAP_FIXED, last ? ((size_t)1 << 47) + 4096 : 64 * MiB, 0, 0);
  errno = 0;
  MT_CHECK(!pinheap_mpi_heap_create(pm, &o) && errno == EINVAL, "an impossible size on the last rank");
  const char *msg = pinheap_last_error();
  if (last)
    MT_CHECK(strstr(msg, "larger than the address space"), "its own reason: %s", msg);
  else
    MT_CHECK(strstr(msg, last_rank()) && strstr(msg, "bad options"), "the rank named: %s", msg);
  nothing_kept(pm, before, 0);

  o = mt_options(mt_rank == 0 ? PINHEAP_DYNAMIC : PINHEAP_FIXED, 64 * MiB, 0, 0);
  errno = 0;
  MT_CHECK(!pinheap_mpi_heap_create(pm, &o) && errno == EINVAL, "a mode not the provider's on rank 0");
  msg = pinheap_last_error();
  MT_CHECK(mt_rank == 0 ? strstr(msg, "not its provider's") != NULL : strstr(msg, "rank 0 of") != NULL, "message: %s",
           msg);
  errno = 0;
  MT_CHECK(!pinheap_mpi_heap_create(pm, NULL) && errno == EINVAL, "NULL options everywhere");

  o = mt_options(PINHEAP_FIXED, 64 * MiB, 0, 0);
  o.min_size = last ? 16 * MiB : 32 * MiB;
  errno = 0;
  MT_CHECK(!pinheap_mpi_heap_create(pm, &o) && errno == EINVAL, "another min_size on the last rank");
  MT_CHECK(strstr(pinheap_last_error(), "same size and min_size"), "message: %s", pinheap_last_error());
  nothing_kept(pm, before, 0);
}

static void unmappable_region(pinheap_mpi *pm, bool last, bool wrapped) {
  size_t before_vm = vm("VmSize");
  pinheap_mpi_stats before = mt_stats(pm);
  pinheap_options o = mt_options(PINHEAP_FIXED, last ? (size_t)1 << 47 : 64 * MiB, 0, 0);
  o.provider = pinheap_mpi_provider(pm);
  errno = 0;
  pinheap *heap = wrapped ? pinheap_mpi_heap_create(pm, &o) : pinheap_create(&o);
  MT_CHECK(!heap && errno == ENOMEM, "the create must fail on every rank");
  const char *msg = pinheap_last_error();
  char want[96];
  snprintf(want, sizeof want, "%s cannot map", last_rank());
  MT_CHECK(strstr(msg, "provider mpi") && strstr(msg, want) && strstr(msg, "every rank gives up"), "message: %s", msg);
  if (last) MT_CHECK(strstr(msg, "mmap"), "the last rank's message says why: %s", msg);
  nothing_kept(pm, before, 1);
  size_t after_vm = vm("VmSize");
  MT_CHECK(after_vm < before_vm + 32 * MiB, "%zu bytes more mapped after a failed create", after_vm - before_vm);
  still_serves(pm);
}

static void failed_after_obtain(pinheap_mpi *pm, bool last) {
  size_t before_vm = vm("VmSize");
  pinheap_mpi_stats before = mt_stats(pm);
  errno = 0;
  /* Under the bump policy each of two arenas keeps a first grant of 2 MiB:
   * a 2 MiB region has no room for them (under the others it would do). */
  pinheap_options o = mt_options(PINHEAP_FIXED, last ? 2 * MiB : 64 * MiB, 0, 0);
  o.policy = PINHEAP_POLICY_BUMP;
  o.arenas = 2;
  MT_CHECK(!pinheap_mpi_heap_create(pm, &o) && errno == ENOMEM,
           "a bump heap without room for its arenas on the last rank");
  const char *msg = pinheap_last_error();
  if (last)
    MT_CHECK(strstr(msg, "arena"), "its own reason: %s", msg);
  else
    MT_CHECK(strstr(msg, last_rank()) && strstr(msg, "could not create its heap"), "the rank named: %s", msg);
  nothing_kept(pm, before, 1); /* the region each rank had obtained, given up */
  size_t after_vm = vm("VmSize");
  MT_CHECK(after_vm < before_vm + 32 * MiB, "%zu bytes more mapped after a failed create", after_vm - before_vm);
  still_serves(pm);
}

static void failed_before_obtain(pinheap_mpi *pm, bool last) {
  pinheap_mpi_stats before = mt_stats(pm);
  pinheap_options o = mt_options(PINHEAP_FIXED, 64 * MiB, 0, 0);
  o.min_size = 16 * MiB;
  fail_page_query = last;
  errno = 0;
  pinheap *heap = pinheap_mpi_heap_create(pm, &o);
  int err = errno;
  MT_CHECK(fail_page_query == 0, "the injected failure was reached");
  MT_CHECK(!heap, "no heap on any rank");
  const char *msg = pinheap_last_error();
  if (last) {
    MT_CHECK(err == ENOSYS && strstr(msg, "jemalloc's page"), "its own reason: %s", msg);
    nothing_kept(pm, before, 0);
  } else {
    MT_CHECK(err == ENOMEM && strstr(msg, last_rank()) && strstr(msg, "could not create its heap"),
             "the rank named: %s", msg);
    pinheap_mpi_stats st = mt_stats(pm);
    MT_CHECK(st.refused >= before.refused + 2, "the retries were refused too (%zu)", st.refused - before.refused);
    nothing_kept(pm, before, st.refused - before.refused);
  }
  still_serves(pm);
}

static void prefault_failure(bool last) {
  pinheap_mpi_options mo = {.info = MPI_INFO_NULL, .prefault = true};
  pinheap_mpi *pm = pinheap_mpi_create(MPI_COMM_WORLD, PINHEAP_FIXED, &mo);
  MT_CHECK(pm, "pinheap_mpi_create");
  size_t rss = vm("VmRSS");
  fail_populate = last;
  errno = 0;
  pinheap *heap = mt_heap(pm, PINHEAP_FIXED, 64 * MiB, 0, 0);
  int err = errno;
  MT_CHECK(fail_populate == 0, "the injected failure was reached (UCX's memory hooks bypass it: UCX_MEM_EVENTS=no)");
  MT_CHECK(!heap && err == ENOMEM, "a failed prefault fails every rank");
  const char *msg = pinheap_last_error();
  char want[96];
  snprintf(want, sizeof want, "%s cannot map", last_rank());
  MT_CHECK(strstr(msg, want), "message: %s", msg);
  if (last) MT_CHECK(strstr(msg, "MADV_POPULATE_WRITE"), "the last rank's message says why: %s", msg);
  size_t grown = vm("VmRSS") - rss;
  if (last) MT_CHECK(grown < 16 * MiB, "%zu bytes faulted in after a failed prefault", grown);
  MT_CHECK(mt_stats(pm).refused == 1 && mt_stats(pm).obtained == 0, "one refusal");
  heap = mt_heap(pm, PINHEAP_FIXED, 64 * MiB, 0, 0);
  MT_CHECK(heap, "a prefaulted heap");
  grown = vm("VmRSS") - rss;
  MT_CHECK(grown >= 48 * MiB, "only %zu bytes faulted in by a prefault of 64 MiB", grown);
  pinheap_destroy(heap);
  pinheap_mpi_destroy(pm);

  pm = pinheap_mpi_create(MPI_COMM_WORLD, PINHEAP_DYNAMIC, &mo);
  MT_CHECK(pm, "pinheap_mpi_create");
  heap = mt_heap(pm, PINHEAP_DYNAMIC, 0, 2 * MiB, 4 * MiB);
  MT_CHECK(heap, "pinheap_mpi_heap_create");
  fail_populate = last;
  errno = 0;
  void *p = pinheap_malloc(heap, 8 * MiB);
  if (last)
    MT_CHECK(!p && errno == ENOMEM && strstr(pinheap_last_error(), "MADV_POPULATE_WRITE"), "a failed prefault: %s",
             pinheap_last_error());
  else
    MT_CHECK(p, "the direct block on the other ranks");
  pinheap_free(heap, p);
  MT_CHECK(last ? mt_stats(pm).refused >= 1 : mt_stats(pm).refused == 0, "refusals");
  pinheap_destroy(heap);
  pinheap_mpi_destroy(pm);
}

static void collective_retries(pinheap_mpi *pm, bool last, bool wrapped) {
  pinheap_options o = mt_options(PINHEAP_FIXED, 1024 * MiB, 0, 0);
  o.min_size = 128 * MiB;
  o.provider = pinheap_mpi_provider(pm);
  size_t refused = mt_stats(pm).refused;
  struct rlimit old;
  if (last) old = limit_address_space(600 * MiB);
  pinheap *heap = wrapped ? pinheap_mpi_heap_create(pm, &o) : pinheap_create(&o);
  if (last) MT_CHECK(setrlimit(RLIMIT_AS, &old) == 0, "restoring RLIMIT_AS");
  MT_CHECK(heap, "a heap with retries");
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
    printf("test_mpi_failure: every rank took %llu MiB after %llu refusals (%s)\n",
           (unsigned long long)(mine[0] >> 20), (unsigned long long)mine[1],
           wrapped ? "pinheap_mpi_heap_create" : "pinheap_create");
}

static void unmappable_direct_block(bool last) {
  pinheap_mpi *pm = pinheap_mpi_create(MPI_COMM_WORLD, PINHEAP_DYNAMIC, NULL);
  MT_CHECK(pm, "pinheap_mpi_create");
  pinheap *heap = mt_heap(pm, PINHEAP_DYNAMIC, 0, 4 * MiB, 8 * MiB);
  MT_CHECK(heap, "pinheap_mpi_heap_create");
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

typedef struct other {
  pinheap *heap;
  bool funneled;
  unsigned char *give; /* a direct block the main thread allocated, for this one to free */
} other;

/* The other thread: a direct block of its own, then the main thread's freed. */
static void *other_thread(void *arg) {
  other *t = arg;
  errno = 0;
  void *p = pinheap_malloc(t->heap, 16 * MiB);
  if (t->funneled)
    MT_CHECK(!p && errno == ENOMEM && strstr(pinheap_last_error(), "MPI_THREAD_SERIALIZED"),
             "an attach from another thread below MPI_THREAD_SERIALIZED: %s", pinheap_last_error());
  else
    MT_CHECK(p, "a direct block from another thread");
  pinheap_free(t->heap, p);
  pinheap_free(t->heap, t->give);
  return NULL;
}

static void thread_level(int provided) {
  pinheap_mpi *pm = pinheap_mpi_create(MPI_COMM_WORLD, PINHEAP_DYNAMIC, NULL);
  MT_CHECK(pm, "pinheap_mpi_create");
  pinheap *heap = mt_heap(pm, PINHEAP_DYNAMIC, 0, 4 * MiB, 8 * MiB);
  MT_CHECK(heap, "pinheap_mpi_heap_create");
  pinheap_mpi_stats before = mt_stats(pm);
  other t = {.heap = heap, .funneled = provided < MPI_THREAD_SERIALIZED, .give = pinheap_malloc(heap, 16 * MiB)};
  MT_CHECK(t.give, "a direct block");
  pinheap_region r;
  MT_CHECK(pinheap_region_of(heap, t.give, &r) == 0, "its registration");
  pthread_t id;
  MT_CHECK(pthread_create(&id, NULL, other_thread, &t) == 0 && pthread_join(id, NULL) == 0, "the other thread");
  pinheap_mpi_stats st = mt_stats(pm);
  if (t.funneled) {
    MT_CHECK(st.refused > before.refused && st.unreleased == before.unreleased + 1 &&
                 st.released == before.released && st.regions == before.regions,
             "refused %zu, unreleased %zu, released %zu", st.refused, st.unreleased, st.released);
    t.give[r.size - 1] = 1; /* left mapped */
    MT_CHECK(MPI_Win_detach(pinheap_mpi_window(pm), r.base) == MPI_SUCCESS, "the test's own detach");
    MT_CHECK(munmap(r.base, r.size) == 0, "munmap");
  } else {
    MT_CHECK(st.refused == before.refused && st.unreleased == 0 && st.released == before.released + 2,
             "refused %zu, unreleased %zu, released %zu", st.refused, st.unreleased, st.released);
  }
  MT_CHECK(pinheap_mpi_check(pm) == 0, "pinheap_mpi_check");
  pinheap_destroy(heap);
  pinheap_mpi_destroy(pm);
  if (mt_rank == 0)
    printf("test_mpi_failure: MPI thread level %d: attach and detach from another thread %s\n", provided,
           t.funneled ? "refused" : "made");
}

int main(int argc, char **argv) {
  int provided = mt_init(&argc, &argv, MPI_THREAD_FUNNELED);
  bool last = mt_rank == mt_nranks - 1;
  pinheap_mpi *pm = pinheap_mpi_create(MPI_COMM_WORLD, PINHEAP_FIXED, NULL);
  MT_CHECK(pm, "pinheap_mpi_create");
  bad_options(pm, last);
  unmappable_region(pm, last, true);
  unmappable_region(pm, last, false);
  failed_after_obtain(pm, last);
  failed_before_obtain(pm, last);
  collective_retries(pm, last, false);
  collective_retries(pm, last, true);
  pinheap_mpi_destroy(pm);
  prefault_failure(last);
  unmappable_direct_block(last);
  thread_level(provided);
  MPI_Barrier(MPI_COMM_WORLD);
  if (mt_rank == 0) printf("test_mpi_failure: ok (%d ranks)\n", mt_nranks);
  MPI_Finalize();
  return 0;
}
