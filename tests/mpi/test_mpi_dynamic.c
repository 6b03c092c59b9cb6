/*
 * DYNAMIC heaps over one MPI_Win_create_dynamic window. Chunks (2 MiB) and
 * direct blocks (from 1 MiB) are attached when obtained and detached when
 * given back, as the provider counts them and as MPI was asked (attachlog.h):
 * the registered bytes always equal the heap's capacity, which grows with the
 * blocks and falls at pinheap_trim.
 * Every block lies inside the registration pinheap_region_of names (a direct
 * block is one of its own) and locate gives its address as displacement;
 * small objects alone grow it too (chunks obtained from inside jemalloc).
 * Peers read blocks in every chunk and direct blocks with MPI_Get, write them
 * with MPI_Put, and count on a counter in a late chunk with
 * MPI_Fetch_and_op; after the trim, the blocks kept are still reachable.
 * A detach that MPI refuses (injected) leaves the region attached and
 * mapped, counted as unreleased, not released.
 *
 *   test_mpi_dynamic [seed]
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "attachlog.h"
#include "mpitest.h"

#define NBLOCKS 192
#define CHUNK (2 * MiB)
#define DIRECT (1 * MiB)
#define ROUNDS 12
#define IS_DIRECT(b) ((b) % 16 == 5)
#define PUBLISHED(b) ((b) % 8 == 5) /* the direct blocks and as many large ones */
#define NPUB (NBLOCKS / 8)

static size_t block_size(size_t b) {
  if (IS_DIRECT(b)) return DIRECT + seed_below(MiB);
  if (b % 16 == 13) return 64 * 1024 + seed_below(256 * 1024);
  return seed_below(4) ? 1 + seed_below(14336) : 14337 + seed_below(256 * 1024);
}

/* The provider's registrations are the heap's capacity, each counted once,
 * and what MPI was asked to attach, less those the test holds itself
 * (others, of others_bytes). */
static void check_books(pinheap *heap, pinheap_mpi *pm, size_t others, size_t others_bytes) {
  pinheap_stats hs;
  MT_CHECK(pinheap_get_stats(heap, &hs) == 0, "stats");
  pinheap_mpi_stats st = mt_stats(pm);
  MT_CHECK(st.bytes == hs.capacity, "%zu bytes attached, capacity %zu", st.bytes, hs.capacity);
  size_t live, bytes, strays;
  attachlog_counts(&live, &bytes, &strays);
  MT_CHECK(live == st.regions + others && bytes == st.bytes + others_bytes && strays == 0,
           "MPI has %zu regions of %zu bytes attached (%zu strays), the provider says %zu of %zu", live, bytes, strays,
           st.regions, st.bytes);
  MT_CHECK(st.obtained - st.released - st.unreleased == st.regions,
           "attached %zu - detached %zu - unreleased %zu != %zu regions", st.obtained, st.released, st.unreleased,
           st.regions);
  MT_CHECK(pinheap_mpi_check(pm) == 0, "pinheap_mpi_check");
}

/* A direct block whose detach MPI refuses: the heap forgets it, the
 * provider counts it unreleased, MPI still has it attached and its memory
 * stays mapped; then the test detaches and unmaps it itself. */
static void refused_detach(pinheap *heap, pinheap_mpi *pm) {
  pinheap_mpi_stats before = mt_stats(pm);
  unsigned char *d = pinheap_malloc(heap, 3 * DIRECT);
  MT_CHECK(d, "a direct block");
  pinheap_region r;
  MT_CHECK(pinheap_region_of(heap, d, &r) == 0 && r.base == d, "its registration");
  attachlog_fail_detaches(1);
  pinheap_free(heap, d);
  pinheap_mpi_stats st = mt_stats(pm);
  MT_CHECK(st.unreleased == before.unreleased + 1 && st.released == before.released &&
               st.regions == before.regions && st.bytes == before.bytes && st.obtained == before.obtained + 1,
           "a refused detach: %zu unreleased, %zu released, %zu regions", st.unreleased, st.released, st.regions);
  MT_CHECK(attachlog_has(r.base, r.size), "MPI still has the region attached");
  check_books(heap, pm, 1, r.size);
  d[r.size - 1] = 1; /* still mapped */
  MT_CHECK(MPI_Win_detach(pinheap_mpi_window(pm), r.base) == MPI_SUCCESS, "the test's own detach");
  MT_CHECK(munmap(r.base, r.size) == 0, "munmap");
  check_books(heap, pm, 0, 0);
}

/* A second heap, with a cache of direct registrations: a freed direct
 * block stays attached, the next of its size reuses it
 * without an attach, and pinheap_trim detaches it. */
static void cached_direct(pinheap_mpi *pm) {
  pinheap_options o = mt_options(PINHEAP_DYNAMIC, 0, CHUNK, DIRECT);
  o.direct_cache = 64 * MiB;
  pinheap *heap = pinheap_mpi_heap_create(pm, &o);
  MT_CHECK(heap, "a heap with the cache");
  pinheap_mpi_stats s0 = mt_stats(pm);
  unsigned char *d = pinheap_malloc(heap, 2 * DIRECT);
  MT_CHECK(d, "a direct block");
  pinheap_free(heap, d);
  pinheap_mpi_stats s1 = mt_stats(pm);
  MT_CHECK(s1.obtained == s0.obtained + 1 && s1.released == s0.released && attachlog_has(d, 2 * DIRECT),
           "a freed direct block stays attached in the cache");
  unsigned char *e = pinheap_malloc(heap, 2 * DIRECT);
  MT_CHECK(e == d && mt_stats(pm).obtained == s1.obtained, "the next block of its size reuses it, no attach");
  pinheap_free(heap, e);
  pinheap_trim(heap);
  pinheap_mpi_stats s2 = mt_stats(pm);
  MT_CHECK(s2.released >= s1.released + 1 && !attachlog_has(d, 2 * DIRECT), "pinheap_trim detaches it");
  MT_CHECK(pinheap_check(heap) == 0 && pinheap_mpi_check(pm) == 0, "the checkers");
  pinheap_destroy(heap);
}

int main(int argc, char **argv) {
  mt_init(&argc, &argv, MPI_THREAD_SINGLE);
  mt_seed(argc, argv, "test_mpi_dynamic");
  seed_state ^= (uint64_t)(mt_rank + 1) * 0x9E3779B97F4A7C15ull;
  int n = mt_nranks;
  size_t page = (size_t)sysconf(_SC_PAGESIZE);

  pinheap_mpi *pm = pinheap_mpi_create(MPI_COMM_WORLD, PINHEAP_DYNAMIC, NULL);
  MT_CHECK(pm, "pinheap_mpi_create");
  MPI_Win win = pinheap_mpi_window(pm);
  MT_CHECK(win != MPI_WIN_NULL, "the dynamic window");
  MT_CHECK(mt_stats(pm).regions == 0, "nothing attached before a heap");
  pinheap *heap = mt_heap(pm, PINHEAP_DYNAMIC, 0, CHUNK, DIRECT);
  MT_CHECK(heap, "pinheap_create");
  check_books(heap, pm, 0, 0);
  pinheap_mpi_stats st0 = mt_stats(pm);
  MT_CHECK(st0.regions >= 1, "the first chunk is attached");

  unsigned char *blk[NBLOCKS];
  size_t len[NBLOCKS];
  size_t ndirect = 0, direct_bytes = 0;
  mt_desc mine[NPUB];
  void *chunk_of_pub[NPUB];
  for (size_t b = 0; b < NBLOCKS; b++) {
    len[b] = block_size(b);
    pinheap_mpi_stats before = mt_stats(pm);
    blk[b] = pinheap_malloc(heap, len[b]);
    MT_CHECK(blk[b], "malloc(%zu)", len[b]);
    mt_fill(blk[b], len[b], mt_rank, 0, b);
    pinheap_region r;
    MT_CHECK(pinheap_region_of(heap, blk[b], &r) == 0, "region_of");
    MT_CHECK(blk[b] >= (unsigned char *)r.base && blk[b] + len[b] <= (unsigned char *)r.base + r.size,
             "block %zu (%zu bytes at %p) is not inside its registration [%p, +%zu)", b, len[b], (void *)blk[b], r.base,
             r.size);
    MT_CHECK(attachlog_has(r.base, r.size), "the registration of block %zu is not attached", b);
    if (IS_DIRECT(b)) {
      size_t rounded = (len[b] + page - 1) / page * page;
      pinheap_mpi_stats after = mt_stats(pm);
      MT_CHECK(r.base == blk[b] && r.size == rounded, "a direct block is a registration of its own");
      MT_CHECK(after.obtained == before.obtained + 1 && after.bytes == before.bytes + rounded,
               "a direct block is attached when allocated");
      ndirect++;
      direct_bytes += rounded;
    }
    pinheap_mpi_addr a, z;
    MPI_Aint addr;
    MPI_Get_address(blk[b], &addr);
    MT_CHECK(pinheap_mpi_locate(heap, blk[b], &a) == 0 && a.win == win && a.disp == addr, "locate block %zu", b);
    MT_CHECK(pinheap_mpi_locate(heap, blk[b] + len[b] - 1, &z) == 0 && z.disp == addr + (MPI_Aint)len[b] - 1,
             "locate the last byte of block %zu", b);
    if (PUBLISHED(b)) {
      mine[b / 8] = (mt_desc){(uint64_t)a.disp, len[b]};
      chunk_of_pub[b / 8] = r.base;
    }
  }
  check_books(heap, pm, 0, 0);
  pinheap_mpi_stats grown = mt_stats(pm);
  MT_CHECK(grown.regions >= ndirect + 4, "%zu regions for %zu direct blocks and the chunks", grown.regions, ndirect);
  /* The published large blocks lie in several chunks, later ones included. */
  size_t distinct = 0;
  for (size_t i = 0; i < NPUB; i++) {
    if (IS_DIRECT(i * 8 + 5)) continue;
    size_t j = 0;
    while (j < i && (IS_DIRECT(j * 8 + 5) || chunk_of_pub[j] != chunk_of_pub[i])) j++;
    distinct += j == i;
  }
  MT_CHECK(distinct >= 3, "the published blocks lie in only %zu chunks", distinct);

  mt_desc *all = malloc(sizeof mine * (size_t)n);
  MT_CHECK(all, "memory");
  MPI_Allgather(mine, sizeof mine, MPI_BYTE, all, sizeof mine, MPI_BYTE, MPI_COMM_WORLD);
  MPI_Win_lock_all(0, win);
  for (int i = 0; i < n; i++) {
    int t = (mt_rank + i) % n;
    mt_get_check(win, t, all + (size_t)t * NPUB, NPUB, 5, 8, 0);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  int succ = (mt_rank + 1) % n, pred = (mt_rank + n - 1) % n;
  mt_put(win, succ, all + (size_t)succ * NPUB, NPUB, 5, 8, 1);
  MPI_Barrier(MPI_COMM_WORLD);
  MPI_Win_sync(win);
  for (size_t k = 0; k < NPUB; k++) {
    size_t b = k * 8 + 5, at = mt_differs(blk[b], len[b], pred, 1, b);
    MT_CHECK(at == len[b], "block %zu as rank %d wrote it differs at %zu", b, pred, at);
  }
  /* A counter at the head of the last published block that is not direct. */
  size_t last = NPUB - 1;
  while (IS_DIRECT(last * 8 + 5)) last--;
  *(int64_t *)blk[last * 8 + 5] = 0;
  MPI_Win_sync(win);
  MPI_Barrier(MPI_COMM_WORLD);
  for (int k = 0; k < ROUNDS; k++)
    for (int i = 0; i < n; i++) {
      int t = (mt_rank + i) % n;
      int64_t one = 1, old;
      MPI_Fetch_and_op(&one, &old, MPI_INT64_T, t, (MPI_Aint)all[(size_t)t * NPUB + last].disp, MPI_SUM, win);
      MPI_Win_flush(t, win);
      MT_CHECK(old >= 0 && old < (int64_t)n * ROUNDS, "fetched %lld", (long long)old);
    }
  MPI_Barrier(MPI_COMM_WORLD);
  MPI_Win_sync(win);
  MT_CHECK(*(int64_t *)blk[last * 8 + 5] == (int64_t)n * ROUNDS, "counter %lld",
           (long long)*(int64_t *)blk[last * 8 + 5]);
  MPI_Win_unlock_all(win);
  MPI_Barrier(MPI_COMM_WORLD);

  /* Each direct block is detached when freed. */
  for (size_t b = 0; b < NBLOCKS; b++) {
    if (!IS_DIRECT(b)) continue;
    pinheap_mpi_stats before = mt_stats(pm);
    pinheap_free(heap, blk[b]);
    blk[b] = NULL;
    pinheap_mpi_stats after = mt_stats(pm);
    MT_CHECK(after.released == before.released + 1 && after.regions == before.regions - 1 &&
                 after.bytes == before.bytes - (len[b] + page - 1) / page * page,
             "a direct block is detached when freed");
  }
  check_books(heap, pm, 0, 0);
  /* Small objects alone grow the heap: jemalloc's hooks obtain the chunks,
   * from inside jemalloc. */
  enum { SMALL = 8192 };
  unsigned char **small = malloc(SMALL * sizeof *small);
  MT_CHECK(small, "memory");
  size_t attached = mt_stats(pm).obtained;
  for (size_t i = 0; i < SMALL; i++) {
    small[i] = pinheap_malloc(heap, 1024);
    MT_CHECK(small[i], "small object %zu", i);
    mt_fill(small[i], 16, mt_rank, 2, i);
  }
  MT_CHECK(mt_stats(pm).obtained >= attached + 2, "8 MiB of small objects attached %zu chunks",
           mt_stats(pm).obtained - attached);
  check_books(heap, pm, 0, 0);
  for (size_t i = 0; i < SMALL; i++) {
    pinheap_region r;
    MT_CHECK(pinheap_region_of(heap, small[i], &r) == 0 && attachlog_has(r.base, r.size) &&
                 small[i] >= (unsigned char *)r.base && small[i] + 1024 <= (unsigned char *)r.base + r.size,
             "small object %zu is not inside an attached registration", i);
    MT_CHECK(mt_differs(small[i], 16, mt_rank, 2, i) == 16, "small object %zu changed", i);
    pinheap_free(heap, small[i]);
  }
  free(small);
  /* Everything but the first three blocks; the trim gives back the chunks
   * left empty. */
  for (size_t b = 3; b < NBLOCKS; b++) pinheap_free(heap, blk[b]);
  pinheap_stats hs;
  MT_CHECK(pinheap_get_stats(heap, &hs) == 0, "stats");
  size_t peak = hs.capacity;
  pinheap_mpi_stats pre = mt_stats(pm);
  pinheap_trim(heap);
  MT_CHECK(pinheap_get_stats(heap, &hs) == 0, "stats");
  pinheap_mpi_stats post = mt_stats(pm);
  MT_CHECK(hs.capacity < peak && post.released >= pre.released + 3 && post.regions + 3 <= pre.regions,
           "the trim gave back %zu of %zu bytes, %zu regions detached", peak - hs.capacity, peak,
           post.released - pre.released);
  check_books(heap, pm, 0, 0);
  MT_CHECK(pinheap_check(heap) == 0, "pinheap_check");

  /* The blocks kept are still reachable. */
  mt_desc keep[3];
  for (size_t b = 0; b < 3; b++) {
    pinheap_mpi_addr a;
    MT_CHECK(pinheap_mpi_locate(heap, blk[b], &a) == 0, "locate a kept block");
    keep[b] = (mt_desc){(uint64_t)a.disp, len[b]};
  }
  mt_desc *kept = malloc(sizeof keep * (size_t)n);
  MT_CHECK(kept, "memory");
  MPI_Allgather(keep, sizeof keep, MPI_BYTE, kept, sizeof keep, MPI_BYTE, MPI_COMM_WORLD);
  MPI_Win_lock_all(0, win);
  mt_get_check(win, succ, kept + (size_t)succ * 3, 3, 0, 1, 0);
  MPI_Win_unlock_all(win);
  MPI_Barrier(MPI_COMM_WORLD);

  refused_detach(heap, pm);
  cached_direct(pm);
  for (size_t b = 0; b < 3; b++) pinheap_free(heap, blk[b]);
  /* While the last rank's heap is live, destroying the provider is refused
   * on every rank, naming that rank to the others. */
  if (mt_rank != n - 1) pinheap_destroy(heap);
  errno = 0;
  MT_CHECK(pinheap_mpi_destroy(pm) == -1 && errno == EBUSY, "destroy under rank %d's heap: errno %d", n - 1, errno);
  char rank_text[64];
  snprintf(rank_text, sizeof rank_text, "rank %d still has a heap on the provider", n - 1);
  MT_CHECK(strstr(pinheap_last_error(), mt_rank == n - 1 ? "destroy the heap first" : rank_text),
           "the message of a destroy under rank %d's heap", n - 1);
  if (mt_rank == n - 1) pinheap_destroy(heap);
  pinheap_mpi_stats end = mt_stats(pm);
  MT_CHECK(end.regions == 0 && end.bytes == 0 && end.obtained == end.released + 1 && end.unreleased == 1 &&
               end.refused == 0,
           "everything detached after destroy, but the region the test detached");
  size_t live, bytes, strays;
  attachlog_counts(&live, &bytes, &strays);
  MT_CHECK(live == 0 && strays == 0, "MPI still has %zu regions attached (%zu strays)", live, strays);
  MT_CHECK(pinheap_mpi_check(pm) == 0, "pinheap_mpi_check");
  MT_CHECK(pinheap_mpi_destroy(pm) == 0, "destroy");
  free(kept);
  free(all);
  MPI_Barrier(MPI_COMM_WORLD);
  if (mt_rank == 0)
    printf("test_mpi_dynamic: ok (%d ranks; rank 0: %zu regions at the peak, %zu direct)\n", n, grown.regions, ndirect);
  MPI_Finalize();
  return 0;
}
