/*
 * Puts, gets, an atomic fetch-add and a reduction into objects of every
 * size, from every allocation routine: shmem_malloc, shmem_calloc (checked
 * zero), shmem_align (checked aligned), shmem_realloc growing and shrinking
 * (contents kept), and the deprecated shmalloc, shmemalign, shrealloc and
 * shfree. Right after the allocating call returns, each PE puts into the
 * first half of its right neighbour's new object, before any other
 * synchronization: the specification lets it (the call ends with a
 * barrier), so whatever the call writes into the object (zeroes, a copy)
 * must be written by then on every PE.
 *
 * Per object of s bytes, h = (s + 1) / 2:
 *   [0, h)   the left neighbour's bytes, put right after the call (realloc:
 *            growing, the new part; shrinking, [h, s));
 *            calloc: the second half, [s - h, s);
 *   the rest calloc: zero; realloc: this PE's bytes from before the call
 *            (growing, the old object; shrinking, [0, h)); otherwise
 *            written here and read by the right neighbour with a get;
 *   then (s >= 8) every PE adds to the first long of PE 0's object, and
 *   (s >= 16) a sum over all PEs of longs of the object into longs of it.
 *
 *   spec_rma                    one line per routine and size, from PE 0
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spec.h"

enum routine { MALLOC, CALLOC, ALIGN, GROW, SHRINK, SHMALLOC, SHMEMALIGN, SHREALLOC, ROUTINES };
static const char *const routine_name[ROUTINES] = {
    "shmem_malloc", "shmem_calloc", "shmem_align", "shmem_realloc (grow)", "shmem_realloc (shrink)",
    "shmalloc",     "shmemalign",   "shrealloc (grow)"};

static const size_t sizes[] = {1,     8,      24,          64,       100,           512,
                               4096,  14336,  14337,       65536,    262152,        1 << 20,
                               (3 << 20) + 1, 4 << 20,     (4 << 20) + 64, 8 << 20};
#define NSIZES (sizeof sizes / sizeof sizes[0])
static const size_t aligns[] = {8, 64, 4096, 65536, 1 << 20, 2 << 20};

#define NRED 64
static long red_work[NRED / 2 + 1 + SHMEM_REDUCE_MIN_WRKDATA_SIZE], red_sync[SHMEM_REDUCE_SYNC_SIZE];

static void fill(unsigned char *p, size_t from, size_t to, int pe, unsigned salt) {
  for (size_t k = from; k < to; k++) p[k] = spec_byte(pe, k, salt);
}

/* Bytes of [from, to) that are not what pe wrote for salt. */
static long differ(const unsigned char *p, size_t from, size_t to, int pe, unsigned salt) {
  long bad = 0;
  for (size_t k = from; k < to; k++) bad += p[k] != spec_byte(pe, k, salt);
  return bad;
}

/* Where an object's bytes come from: [rfrom, rto) the left neighbour's
 * put, [kfrom, kto) this PE's bytes from before the call (realloc). */
typedef struct layout {
  size_t rfrom, rto, kfrom, kto;
} layout;

/* The object for routine r, size s (the case's number i picks the
 * alignment), and its layout. */
static unsigned char *allocate(enum routine r, size_t s, size_t i, unsigned salt, layout *l, long *errors) {
  size_t h = (s + 1) / 2;
  *l = (layout){0, h, 0, 0};
  switch (r) {
  case MALLOC: return shmem_malloc(s);
  case SHMALLOC: return shmalloc(s);
  case CALLOC:
    /* The neighbour writes the second half, which a zeroing that came
     * late would reach last. */
    l->rfrom = s - h;
    l->rto = s;
    return shmem_calloc(s, 1);
  case ALIGN:
  case SHMEMALIGN: {
    size_t a = aligns[i % (sizeof aligns / sizeof aligns[0])];
    unsigned char *p = r == ALIGN ? shmem_align(a, s) : shmemalign(a, s);
    *errors += p && (uintptr_t)p % a != 0;
    return p;
  }
  default: {
    /* Growing keeps the old object and the neighbour writes the new part;
     * shrinking keeps the first half. */
    size_t old = r == SHRINK ? 2 * s : s / 2 + 1;
    *l = r == SHRINK ? (layout){h, s, 0, h} : (layout){old, s, 0, old};
    unsigned char *q = r == SHREALLOC ? shmalloc(old) : shmem_malloc(old);
    if (!q) return NULL;
    fill(q, 0, old, spec_me, salt);
    /* This PE's writes are in place before the call, as the
     * specification asks of a realloc's argument. */
    return r == SHREALLOC ? shrealloc(q, s) : shmem_realloc(q, s);
  }
  }
}

static long one_case(enum routine r, size_t s, size_t i) {
  unsigned salt = (unsigned)(r * NSIZES + i);
  int right = (spec_me + 1) % spec_npes, left = (spec_me + spec_npes - 1) % spec_npes;
  long errors = 0;
  layout l;
  unsigned char *p = allocate(r, s, i, salt, &l, &errors);
  unsigned char *mine = malloc(s);
  /* Right after the call, before anything else. */
  if (p) {
    fill(mine, l.rfrom, l.rto, spec_me, salt + 1);
    shmem_putmem(p + l.rfrom, mine + l.rfrom, l.rto - l.rfrom, right);
  }
  if (spec_sum(p == NULL)) {
    if (p) (r >= SHMALLOC ? shfree : shmem_free)(p);
    free(mine);
    return 1;
  }
  errors += differ(p, l.rfrom, l.rto, left, salt + 1);
  if (l.kto) {
    errors += differ(p, l.kfrom, l.kto, spec_me, salt);
  } else if (r == CALLOC) {
    for (size_t k = 0; k < l.rfrom; k++) errors += p[k] != 0;
  } else {
    fill(p, l.rto, s, spec_me, salt + 2);
    shmem_barrier_all();
    shmem_getmem(mine + l.rto, p + l.rto, s - l.rto, left);
    errors += differ(mine, l.rto, s, left, salt + 2);
  }
  if (s >= 8) {
    shmem_barrier_all();
    if (spec_me == 0) *(long *)(void *)p = 0;
    shmem_barrier_all();
    long total = (long)spec_npes * (spec_npes + 1) / 2;
    long before = shmem_long_atomic_fetch_add((long *)(void *)p, spec_me + 1, 0);
    errors += before < 0 || before >= total;
    shmem_barrier_all();
    if (spec_me == 0) errors += *(long *)(void *)p != total;
  }
  if (s >= 16) {
    long *v = (long *)(void *)p;
    int n = (int)(s / 16 < NRED ? s / 16 : NRED);
    for (int j = 0; j < n; j++) v[j] = spec_me * 1000L + j;
    shmem_barrier_all();
    shmem_long_sum_to_all(v + n, v, n, 0, 0, spec_npes, red_work, red_sync);
    shmem_barrier_all();
    for (int j = 0; j < n; j++) errors += v[n + j] != 1000L * spec_npes * (spec_npes - 1) / 2 + (long)spec_npes * j;
  }
  shmem_barrier_all();
  (r >= SHMALLOC ? shfree : shmem_free)(p);
  free(mine);
  return errors;
}

int main(void) {
  spec_init();
  for (int i = 0; i < SHMEM_REDUCE_SYNC_SIZE; i++) red_sync[i] = SHMEM_SYNC_VALUE;
  shmem_barrier_all();
  /* Cases failed: of shmem_calloc, and of the other routines. */
  long failed[2] = {0, 0};
  for (int r = 0; r < ROUTINES; r++)
    for (size_t i = 0; i < NSIZES; i++) {
      char what[96];
      snprintf(what, sizeof what, "%s of %zu bytes", routine_name[r], sizes[i]);
      failed[r == CALLOC] += spec_report(what, one_case((enum routine)r, sizes[i], i)) != 0;
    }
  if (spec_me == 0) {
    printf("shmem_calloc: %ld of %d cases failed\n", failed[1], (int)NSIZES);
    printf("the other routines: %ld of %d cases failed\n", failed[0], (ROUTINES - 1) * (int)NSIZES);
  }
  shmem_finalize();
  return 0;
}
