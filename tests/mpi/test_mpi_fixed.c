/*
 * FIXED heaps over MPI windows. Every rank allocates blocks of many sizes in
 * its own heap (the regions differ in size between ranks), writes patterns
 * and publishes (displacement, length); every rank reads every peer's blocks
 * with MPI_Get, writes a neighbour's with MPI_Put (checked locally after a
 * barrier), and counts on two counters in every heap with MPI_Fetch_and_op
 * and MPI_Compare_and_swap: each fetch must see a distinct value and the
 * totals must be exact. Then misuse (a second heap on the provider: EBUSY;
 * destroying the provider under the heap: EBUSY, nothing changed; locate
 * outside an MPI heap: a stack variable, a heap of the local provider, a
 * heap whose provider's handles are not the MPI provider's), destroy and a
 * second heap on the same provider, made with pinheap_create this time.
 *
 *   test_mpi_fixed [seed]
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "mpitest.h"

#define NBLOCKS 48
#define ROUNDS 12 /* atomic operations per rank on each counter */

/* Sizes of every kind: the edges of the small and large paths, then random
 * tiny, small (jemalloc) and large (extent) sizes. */
static size_t block_size(size_t b) {
  static const size_t edges[] = {1, 8, 4096, 14336, 14337, 2 * MiB};
  if (b < sizeof edges / sizeof *edges) return edges[b];
  switch (seed_below(3)) {
    case 0: return 1 + seed_below(256);
    case 1: return 257 + seed_below(14336 - 256);
    default: return 14337 + seed_below(MiB);
  }
}

static void check_locate(pinheap *heap, MPI_Win win, const pinheap_region *reg, const unsigned char *p, size_t len) {
  pinheap_mpi_addr a, z;
  MT_CHECK(pinheap_mpi_locate(heap, p, &a) == 0, "locate %p", (const void *)p);
  MT_CHECK(a.win == win, "the window of %p", (const void *)p);
  MT_CHECK(a.disp == (MPI_Aint)(p - (const unsigned char *)reg->base), "displacement of %p", (const void *)p);
  MT_CHECK(pinheap_mpi_locate(heap, p + len - 1, &z) == 0 && z.win == win && z.disp == a.disp + (MPI_Aint)len - 1,
           "the last byte of a %zu-byte block", len);
}

/* Every rank adds 1 to every rank's counter ROUNDS times, with
 * MPI_Fetch_and_op (cas false) or a MPI_Compare_and_swap loop (cas true);
 * each target checks that the values fetched from it were 0 .. n*ROUNDS-1,
 * each once. */
static void count(MPI_Win win, const mt_desc *all, size_t slot, bool cas) {
  int n = mt_nranks;
  int64_t *seen = malloc(sizeof *seen * (size_t)n * ROUNDS), *got = malloc(sizeof *got * (size_t)n * ROUNDS);
  MT_CHECK(seen && got, "memory");
  for (int k = 0; k < ROUNDS; k++) {
    for (int i = 0; i < n; i++) {
      int t = (mt_rank + i) % n;
      MPI_Aint disp = (MPI_Aint)all[(size_t)t * (NBLOCKS + 2) + slot].disp;
      int64_t one = 1, old = -1;
      if (!cas) {
        MPI_Fetch_and_op(&one, &old, MPI_INT64_T, t, disp, MPI_SUM, win);
        MPI_Win_flush(t, win);
      } else {
        for (int64_t cur = 0;;) {
          int64_t next = cur + 1;
          MPI_Compare_and_swap(&next, &cur, &old, MPI_INT64_T, t, disp, win);
          MPI_Win_flush(t, win);
          if (old == cur) break;
          cur = old;
        }
      }
      seen[(size_t)t * ROUNDS + (size_t)k] = old;
    }
  }
  MPI_Alltoall(seen, ROUNDS, MPI_INT64_T, got, ROUNDS, MPI_INT64_T, MPI_COMM_WORLD);
  char *hit = calloc((size_t)n * ROUNDS, 1);
  MT_CHECK(hit, "memory");
  for (size_t i = 0; i < (size_t)n * ROUNDS; i++) {
    MT_CHECK(got[i] >= 0 && got[i] < (int64_t)n * ROUNDS && !hit[got[i]], "%s fetched %lld twice or out of range",
             cas ? "MPI_Compare_and_swap" : "MPI_Fetch_and_op", (long long)got[i]);
    hit[got[i]] = 1;
  }
  free(hit);
  free(seen);
  free(got);
}

/* A provider of the test's own whose handles are not NULL: locate must not
 * take them for an MPI provider's records. */
static struct {
  unsigned char bytes[256];
} fake_handle;

static int fake_obtain(void *ctx, size_t size, size_t align, void **base, void **handle) {
  (void)ctx;
  char *raw = mmap(NULL, size + align, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED) return ENOMEM;
  char *b = (char *)(((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1));
  if (b > raw) munmap(raw, (size_t)(b - raw));
  munmap(b + size, (size_t)(raw + align - b));
  memset(&fake_handle, 0xA5, sizeof fake_handle);
  *base = b;
  *handle = &fake_handle;
  return 0;
}

static int fake_release(void *ctx, void *base, size_t size, void *handle) {
  (void)ctx;
  (void)handle;
  return munmap(base, size) == 0 ? 0 : errno;
}

/* locate in a heap on another provider: EINVAL, naming the MPI provider. */
static void locate_foreign(const pinheap_provider *pv) {
  pinheap_options o = mt_options(PINHEAP_FIXED, 16 * MiB, 0, 0);
  o.provider = pv;
  pinheap *h = pinheap_create(&o);
  MT_CHECK(h, "a heap on the %s provider", pv ? pv->name : "local");
  void *p = pinheap_malloc(h, 100);
  pinheap_mpi_addr a;
  errno = 0;
  MT_CHECK(pinheap_mpi_locate(h, p, &a) == -1 && errno == EINVAL, "locate in a heap of the %s provider",
           pv ? pv->name : "local");
  MT_CHECK(strstr(pinheap_last_error(), "not from an MPI provider"), "its message");
  pinheap_free(h, p);
  pinheap_destroy(h);
}

static void misuse(pinheap_mpi *pm, pinheap *heap) {
  /* A second FIXED heap on a provider that exposes one: every rank refuses
   * at once, without a collective. */
  errno = 0;
  MT_CHECK(mt_heap(pm, PINHEAP_FIXED, 16 * MiB, 0, 0) == NULL && errno == EBUSY, "a second heap: errno %d", errno);
  MT_CHECK(strstr(pinheap_last_error(), "provider mpi") && strstr(pinheap_last_error(), "one at a time"),
           "the message of a second heap");
  MT_CHECK(mt_stats(pm).refused == 1, "refusals");
  /* Destroying the provider under the live heap: refused on every rank, and
   * both stay usable (the caller goes on with them). */
  errno = 0;
  MT_CHECK(pinheap_mpi_destroy(pm) == -1 && errno == EBUSY, "destroy under a live heap: errno %d", errno);
  MT_CHECK(strstr(pinheap_last_error(), "1 region(s)") && strstr(pinheap_last_error(), "destroy the heap first"),
           "the message of a destroy under a live heap");
  MT_CHECK(pinheap_mpi_check(pm) == 0 && pinheap_mpi_window(pm) != MPI_WIN_NULL, "the provider after it");
  int local = 0;
  pinheap_mpi_addr a;
  errno = 0;
  MT_CHECK(pinheap_mpi_locate(heap, &local, &a) == -1 && errno == EINVAL, "locate of a stack variable");
  locate_foreign(NULL); /* NULL handles */
  pinheap_provider fake = {.name = "fake", .obtain = fake_obtain, .release = fake_release};
  locate_foreign(&fake);
}

int main(int argc, char **argv) {
  mt_init(&argc, &argv, MPI_THREAD_SINGLE);
  mt_seed(argc, argv, "test_mpi_fixed");
  seed_state ^= (uint64_t)(mt_rank + 1) * 0x9E3779B97F4A7C15ull;
  int n = mt_nranks;

  pinheap_mpi *pm = pinheap_mpi_create(MPI_COMM_WORLD, PINHEAP_FIXED, NULL);
  MT_CHECK(pm, "pinheap_mpi_create");
  MT_CHECK(pinheap_mpi_window(pm) == MPI_WIN_NULL, "no window before the heap");
  size_t size = (96 + 16 * (size_t)mt_rank) * MiB;
  pinheap *heap = mt_heap(pm, PINHEAP_FIXED, size, 0, 0);
  MT_CHECK(heap, "pinheap_create");
  MPI_Win win = pinheap_mpi_window(pm);
  MT_CHECK(win != MPI_WIN_NULL, "the window");
  pinheap_mpi_stats st = mt_stats(pm);
  MT_CHECK(st.regions == 1 && st.bytes == size && st.obtained == 1 && st.released == 0, "stats after create");

  /* The window is the whole region. */
  void *attr;
  int flag = 0;
  pinheap_region reg;
  void *one = pinheap_malloc(heap, 1);
  MT_CHECK(one && pinheap_region_of(heap, one, &reg) == 0 && reg.size == size, "the region");
  pinheap_free(heap, one);
  MPI_Win_get_attr(win, MPI_WIN_BASE, &attr, &flag);
  MT_CHECK(flag && attr == reg.base, "MPI_WIN_BASE");
  MPI_Win_get_attr(win, MPI_WIN_SIZE, &attr, &flag);
  MT_CHECK(flag && *(MPI_Aint *)attr == (MPI_Aint)size, "MPI_WIN_SIZE");
  MPI_Win_get_attr(win, MPI_WIN_DISP_UNIT, &attr, &flag);
  MT_CHECK(flag && *(int *)attr == 1, "MPI_WIN_DISP_UNIT");

  /* Blocks with patterns, and two counters: a small object and the head of a
   * large block. */
  unsigned char *blk[NBLOCKS];
  mt_desc mine[NBLOCKS + 2];
  for (size_t b = 0; b < NBLOCKS; b++) {
    size_t len = block_size(b);
    blk[b] = pinheap_malloc(heap, len);
    MT_CHECK(blk[b], "malloc(%zu)", len);
    mt_fill(blk[b], len, mt_rank, 0, b);
    check_locate(heap, win, &reg, blk[b], len);
    mine[b] = (mt_desc){(uint64_t)(blk[b] - (unsigned char *)reg.base), len};
  }
  int64_t *counter[2] = {pinheap_malloc(heap, sizeof(int64_t)), pinheap_malloc(heap, 64 * 1024)};
  for (int c = 0; c < 2; c++) {
    MT_CHECK(counter[c], "a counter");
    *counter[c] = 0;
    check_locate(heap, win, &reg, (unsigned char *)counter[c], sizeof(int64_t));
    mine[NBLOCKS + c] = (mt_desc){(uint64_t)((unsigned char *)counter[c] - (unsigned char *)reg.base), sizeof(int64_t)};
  }
  mt_desc *all = malloc(sizeof mine * (size_t)n);
  MT_CHECK(all, "memory");
  MPI_Allgather(mine, sizeof mine, MPI_BYTE, all, sizeof mine, MPI_BYTE, MPI_COMM_WORLD);

  MPI_Win_lock_all(0, win);
  /* Every rank reads every rank's blocks. */
  for (int i = 0; i < n; i++) {
    int t = (mt_rank + i) % n;
    mt_get_check(win, t, all + (size_t)t * (NBLOCKS + 2), NBLOCKS, 0, 1, 0);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  /* Every rank writes its successor's blocks. */
  int succ = (mt_rank + 1) % n, pred = (mt_rank + n - 1) % n;
  mt_put(win, succ, all + (size_t)succ * (NBLOCKS + 2), NBLOCKS, 0, 1, 1);
  MPI_Barrier(MPI_COMM_WORLD);
  MPI_Win_sync(win);
  for (size_t b = 0; b < NBLOCKS; b++) {
    size_t at = mt_differs(blk[b], mine[b].len, pred, 1, b);
    MT_CHECK(at == mine[b].len, "block %zu as rank %d wrote it differs at %zu", b, pred, at);
  }
  count(win, all, NBLOCKS, false);
  count(win, all, NBLOCKS + 1, true);
  MPI_Barrier(MPI_COMM_WORLD);
  MPI_Win_sync(win);
  MT_CHECK(*counter[0] == (int64_t)n * ROUNDS, "MPI_Fetch_and_op total %lld", (long long)*counter[0]);
  MT_CHECK(*counter[1] == (int64_t)n * ROUNDS, "MPI_Compare_and_swap total %lld", (long long)*counter[1]);
  MPI_Win_unlock_all(win);
  MPI_Barrier(MPI_COMM_WORLD);

  misuse(pm, heap);
  for (size_t b = 0; b < NBLOCKS; b++) pinheap_free(heap, blk[b]);
  pinheap_free(heap, counter[0]);
  pinheap_free(heap, counter[1]);
  MT_CHECK(pinheap_check(heap) == 0, "pinheap_check");
  MT_CHECK(pinheap_mpi_check(pm) == 0, "pinheap_mpi_check");
  pinheap_destroy(heap);
  st = mt_stats(pm);
  MT_CHECK(st.regions == 0 && st.bytes == 0 && st.obtained == 1 && st.released == 1, "stats after destroy");
  MT_CHECK(pinheap_mpi_window(pm) == MPI_WIN_NULL, "no window after the heap");
  MT_CHECK(pinheap_mpi_check(pm) == 0, "pinheap_mpi_check");

  /* The provider serves a second heap, on the same window rules, through
   * pinheap_create (which nothing here makes fail on one rank alone). */
  pinheap_options o = mt_options(PINHEAP_FIXED, 32 * MiB, 0, 0);
  o.provider = pinheap_mpi_provider(pm);
  heap = pinheap_create(&o);
  MT_CHECK(heap, "a second heap after the first");
  win = pinheap_mpi_window(pm);
  uint64_t *v = pinheap_malloc(heap, 1000 * sizeof *v);
  MT_CHECK(v, "malloc");
  for (int i = 0; i < 1000; i++) v[i] = ((uint64_t)mt_rank << 32) | (uint64_t)i;
  pinheap_mpi_addr a;
  MT_CHECK(pinheap_mpi_locate(heap, v + 500, &a) == 0 && a.win == win, "locate");
  MPI_Aint *disps = malloc(sizeof *disps * (size_t)n);
  MT_CHECK(disps, "memory");
  MPI_Allgather(&a.disp, 1, MPI_AINT, disps, 1, MPI_AINT, MPI_COMM_WORLD);
  MPI_Win_lock_all(0, win);
  uint64_t got = 0;
  MPI_Get(&got, 1, MPI_UINT64_T, succ, disps[succ], 1, MPI_UINT64_T, win);
  MPI_Win_flush(succ, win);
  MT_CHECK(got == (((uint64_t)succ << 32) | 500), "the second heap's word from rank %d", succ);
  MPI_Win_unlock_all(win);
  MPI_Barrier(MPI_COMM_WORLD);
  pinheap_free(heap, v);
  pinheap_destroy(heap);
  st = mt_stats(pm);
  MT_CHECK(st.regions == 0 && st.obtained == 2 && st.released == 2, "stats after the second heap");
  MT_CHECK(pinheap_mpi_destroy(pm) == 0, "destroy");
  free(disps);
  free(all);
  MPI_Barrier(MPI_COMM_WORLD);
  if (mt_rank == 0) printf("test_mpi_fixed: ok (%d ranks)\n", n);
  MPI_Finalize();
  return 0;
}
