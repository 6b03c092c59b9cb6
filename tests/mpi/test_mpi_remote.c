/*
 * Remote addressing of symmetric objects in one call: pinheap_mpi_remote
 * gives the window and displacement of an object on any rank, the same call
 * for a FIXED provider (the offset in the region's window) and a DYNAMIC
 * one (the address on the target). For each mode, two symmetric heaps made
 * with pinheap_mpi_sym_create: one of 24 MiB (DYNAMIC: above the direct
 * threshold, a registration of its own) and one of 1 MiB made after a few
 * blocks (DYNAMIC: inside a chunk, away from its start), each with objects
 * of 64 B, 100000 B and 3 MiB (the last in the large heap only). Every rank
 * puts its pattern into its right neighbour's objects through the target
 * returned and reads it back with MPI_Get through the same target; after a
 * barrier each rank finds its left neighbour's pattern in its own objects;
 * every rank adds to a counter on every rank with MPI_Fetch_and_op. The
 * target agrees with pinheap_sym_remote's reg_offset (FIXED) or addr
 * (DYNAMIC). A rank whose heap is not on the provider fails every rank's
 * pinheap_mpi_sym_create (EINVAL), and pinheap_mpi_remote refuses a
 * symmetric heap made without the provider, a rank out of range and a
 * pointer outside.
 *
 *   test_mpi_remote
 */
#include <errno.h>
#include <string.h>

#include "mpitest.h"

#define NOBJ 3
static const size_t obj_size[NOBJ] = {64, 100000, 3 * MiB};

/* The target of p on rank t: the provider's window. */
static pinheap_mpi_addr target(pinheap_sym *sym, pinheap_mpi *pm, const void *p, int t) {
  pinheap_mpi_addr a;
  MT_CHECK(pinheap_mpi_remote(sym, p, t, &a) == 0, "pinheap_mpi_remote(%p, rank %d)", p, t);
  MT_CHECK(a.win == pinheap_mpi_window(pm), "the provider's window");
  return a;
}

/* Puts, gets back and checks every object of sym in round k; returns after
 * every rank checked its own objects. */
static void exchange(pinheap_sym *sym, pinheap_mpi *pm, pinheap_mode mode, unsigned char **obj, size_t nobj, int k) {
  int right = (mt_rank + 1) % mt_nranks, left = (mt_rank + mt_nranks - 1) % mt_nranks;
  MPI_Win win = pinheap_mpi_window(pm);
  for (size_t i = 0; i < nobj; i++) memset(obj[i], 0, obj_size[i]);
  MPI_Barrier(MPI_COMM_WORLD);
  size_t total = 0;
  for (size_t i = 0; i < nobj; i++) total += obj_size[i];
  unsigned char *src = malloc(total), *back = malloc(total);
  MT_CHECK(src && back, "memory");
  size_t off = 0;
  for (size_t i = 0; i < nobj; off += obj_size[i++]) {
    pinheap_mpi_addr a = target(sym, pm, obj[i], right);
    pinheap_sym_addr s;
    MT_CHECK(pinheap_sym_remote(sym, obj[i], right, &s) == 0, "pinheap_sym_remote");
    if (mode == PINHEAP_FIXED)
      MT_CHECK(a.disp == (MPI_Aint)s.reg_offset, "FIXED: displacement %ld, the offset in the region %llu", (long)a.disp,
               (unsigned long long)s.reg_offset);
    else
      MT_CHECK(a.disp == (MPI_Aint)s.addr, "DYNAMIC: displacement %ld, the address %#llx", (long)a.disp,
               (unsigned long long)s.addr);
    pinheap_mpi_addr last = target(sym, pm, obj[i] + obj_size[i] - 1, right);
    MT_CHECK(last.disp == a.disp + (MPI_Aint)obj_size[i] - 1, "the last byte's displacement");
    mt_fill(src + off, obj_size[i], mt_rank, k, i);
    MPI_Put(src + off, (int)obj_size[i], MPI_BYTE, right, a.disp, (int)obj_size[i], MPI_BYTE, a.win);
  }
  MPI_Win_flush(right, win);
  off = 0;
  for (size_t i = 0; i < nobj; off += obj_size[i++]) {
    pinheap_mpi_addr a = target(sym, pm, obj[i], right);
    MPI_Get(back + off, (int)obj_size[i], MPI_BYTE, right, a.disp, (int)obj_size[i], MPI_BYTE, a.win);
  }
  MPI_Win_flush(right, win);
  off = 0;
  for (size_t i = 0; i < nobj; off += obj_size[i++]) {
    size_t at = mt_differs(back + off, obj_size[i], mt_rank, k, i);
    MT_CHECK(at == obj_size[i], "object %zu (%zu bytes) read back from rank %d differs at %zu", i, obj_size[i], right,
             at);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  for (size_t i = 0; i < nobj; i++) {
    size_t at = mt_differs(obj[i], obj_size[i], left, k, i);
    MT_CHECK(at == obj_size[i], "own object %zu (%zu bytes) differs at %zu from what rank %d put", i, obj_size[i], at,
             left);
  }
  free(src);
  free(back);
}

/* Every rank adds its rank + 1 to a counter on each rank with
 * MPI_Fetch_and_op: each ends with n (n + 1) / 2. */
static void count(pinheap_sym *sym, pinheap_mpi *pm, int64_t *counter) {
  *counter = 0;
  MPI_Barrier(MPI_COMM_WORLD);
  int64_t add = mt_rank + 1, old;
  for (int t = 0; t < mt_nranks; t++) {
    pinheap_mpi_addr a = target(sym, pm, counter, t);
    MPI_Fetch_and_op(&add, &old, MPI_INT64_T, t, a.disp, MPI_SUM, a.win);
    MPI_Win_flush(t, a.win);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  int64_t want = (int64_t)mt_nranks * (mt_nranks + 1) / 2;
  MT_CHECK(*counter == want, "the counter holds %lld, expected %lld", (long long)*counter, (long long)want);
}

static void one_mode(pinheap_mode mode) {
  pinheap_mpi *pm = pinheap_mpi_create(MPI_COMM_WORLD, mode, NULL);
  MT_CHECK(pm, "pinheap_mpi_create");
  pinheap *heap = mt_heap(pm, mode, 128 * MiB, 8 * MiB, 16 * MiB);
  MT_CHECK(heap, "pinheap_mpi_heap_create");
  pinheap_sym *big = pinheap_mpi_sym_create(pm, heap, 24 * MiB, 0);
  MT_CHECK(big, "pinheap_mpi_sym_create(24 MiB)");
  void *spacer = pinheap_malloc(heap, 300000); /* the small heap does not start its chunk */
  MT_CHECK(spacer, "a block");
  pinheap_sym *small = pinheap_mpi_sym_create(pm, heap, MiB, 0);
  MT_CHECK(small, "pinheap_mpi_sym_create(1 MiB)");
  pinheap_region reg;
  MT_CHECK(pinheap_region_of(heap, pinheap_sym_ptr(small, 0), &reg) == 0, "the small heap's registration");
  if (mode == PINHEAP_DYNAMIC)
    MT_CHECK((char *)pinheap_sym_ptr(small, 0) != (char *)reg.base, "the small heap lies inside a chunk");
  MPI_Win_lock_all(0, pinheap_mpi_window(pm));
  pinheap_sym *syms[2] = {big, small};
  for (int h = 0; h < 2; h++) {
    unsigned char *obj[NOBJ];
    size_t nobj = h == 0 ? NOBJ : NOBJ - 1;
    for (size_t i = 0; i < nobj; i++) {
      obj[i] = pinheap_sym_malloc(syms[h], obj_size[i]);
      MT_CHECK(obj[i], "pinheap_sym_malloc(%zu)", obj_size[i]);
    }
    int64_t *counter = pinheap_sym_calloc(syms[h], 1, sizeof *counter);
    MT_CHECK(counter, "pinheap_sym_calloc");
    for (int k = 0; k < 3; k++) exchange(syms[h], pm, mode, obj, nobj, k);
    count(syms[h], pm, counter);
    pinheap_sym_free(syms[h], counter);
    for (size_t i = 0; i < nobj; i++) pinheap_sym_free(syms[h], obj[i]);
  }
  MPI_Win_unlock_all(pinheap_mpi_window(pm));

  /* Misuse. */
  pinheap_mpi_addr a;
  int local = 0;
  void *p = pinheap_sym_malloc(small, 64);
  MT_CHECK(p, "pinheap_sym_malloc");
  errno = 0;
  MT_CHECK(pinheap_mpi_remote(small, p, mt_nranks, &a) == -1 && errno == EINVAL, "rank out of range");
  errno = 0;
  MT_CHECK(pinheap_mpi_remote(small, p, -1, &a) == -1 && errno == EINVAL, "rank -1");
  errno = 0;
  MT_CHECK(pinheap_mpi_remote(small, &local, 0, &a) == -1 && errno == EINVAL, "a pointer outside");
  errno = 0;
  MT_CHECK(pinheap_mpi_remote(small, p, 0, NULL) == -1 && errno == EINVAL, "no output");
  errno = 0;
  MT_CHECK(pinheap_mpi_remote(NULL, p, 0, &a) == -1 && errno == EINVAL, "no symmetric heap");
  pinheap_sym_free(small, p);
  pinheap_collective coll;
  MT_CHECK(pinheap_mpi_collective(pm, &coll) == 0, "pinheap_mpi_collective");
  pinheap_sym *plain = pinheap_sym_create(heap, MiB, &coll, 0);
  MT_CHECK(plain, "pinheap_sym_create");
  errno = 0;
  MT_CHECK(pinheap_mpi_remote(plain, pinheap_sym_ptr(plain, 0), 0, &a) == -1 && errno == EINVAL,
           "a symmetric heap made without the provider");
  MT_CHECK(strstr(pinheap_last_error(), "pinheap_mpi_sym_create"), "its message names pinheap_mpi_sym_create");
  pinheap_sym_destroy(plain);

  /* Rank 0 passes a heap that is not on the provider: every rank fails. */
  pinheap_options lo;
  pinheap_options_init(&lo);
  lo.mode = PINHEAP_FIXED;
  lo.size = 16 * MiB;
  lo.arenas = 1;
  pinheap *own = mt_rank == 0 ? pinheap_create(&lo) : NULL;
  MT_CHECK(mt_rank != 0 || own, "a local heap");
  errno = 0;
  pinheap_sym *bad = pinheap_mpi_sym_create(pm, mt_rank == 0 ? own : heap, MiB, 0);
  MT_CHECK(!bad && errno == EINVAL, "a rank's heap not on the provider: NULL, EINVAL (errno %d)", errno);
  MT_CHECK(strstr(pinheap_last_error(), mt_rank == 0 ? "not on this MPI provider" : "rank 0"),
           "the message names the reason or the rank");
  if (own) pinheap_destroy(own);

  pinheap_sym_destroy(small);
  pinheap_sym_destroy(big);
  pinheap_free(heap, spacer);
  MT_CHECK(pinheap_mpi_check(pm) == 0, "pinheap_mpi_check");
  pinheap_destroy(heap);
  pinheap_mpi_destroy(pm);
}

int main(int argc, char **argv) {
  mt_init(&argc, &argv, MPI_THREAD_SINGLE);
  one_mode(PINHEAP_FIXED);
  one_mode(PINHEAP_DYNAMIC);
  MPI_Barrier(MPI_COMM_WORLD);
  if (mt_rank == 0) printf("test_mpi_remote: ok (%d ranks, FIXED and DYNAMIC)\n", mt_nranks);
  MPI_Finalize();
  return 0;
}
