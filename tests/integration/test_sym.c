/*
 * Integration test of symmetric heaps (include/pinheap_sym.h), plus the
 * internal sym_check. The "processes" of a group are threads
 * (tests/fakecoll.h), each with a FIXED heap of its own.
 *
 * Memory: heaps are reserved with MAP_NORESERVE; the seed sequences write
 * only the first and last bytes of their blocks, the random run fills
 * objects of at most 4.25 MiB in 16 MiB symmetric heaps: under 200 MiB touched.
 *
 * Usage: test_sym [seed]
 *
 * Longer than 600 lines: one test program per public header, every case
 * a cmocka test of its own sharing the fake collectives' set-up.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "asserts.h"
#include "child.h"
#include "fakecoll.h"
#include "heaps.h"
#include "pinheap.h"
#include "pinheap_sym.h"
#include "seed.h"
#include "sym.h"
#include "util.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

static uint64_t test_seed;

/* A FIXED heap with room for a symmetric block of sym_size bytes and
 * 16 MiB more. */
static pinheap *heap_for(size_t sym_size) {
  pinheap_options o;
  pinheap_options_init(&o);
  o.mode = PINHEAP_FIXED;
  o.size = sym_size + 16 * MiB;
  o.arenas = 1;
  return pinheap_create(&o);
}

static pinheap_stats sym_stats(pinheap_sym *s) {
  pinheap_stats st;
  if (pinheap_sym_get_stats(s, &st) != 0) abort();
  return st;
}

/* ---- a group of one, in the main thread ------------------------------ */

static unsigned long solo_calls;

static int solo_allgather(void *ctx, const void *in, void *out, size_t len) {
  (void)ctx;
  memcpy(out, in, len);
  solo_calls++;
  return 0;
}

static const pinheap_collective solo = {.ctx = NULL, .rank = 0, .nranks = 1, .allgather = solo_allgather};

typedef struct solo_heap {
  pinheap *heap;
  pinheap_sym *sym;
} solo_heap;

static solo_heap solo_open(size_t size) {
  solo_heap h = {heap_for(size), NULL};
  assert_non_null(h.heap);
  h.sym = pinheap_sym_create(h.heap, size, &solo, 0);
  if (!h.sym) print_error("pinheap_sym_create: %s\n", pinheap_last_error());
  assert_non_null(h.sym);
  assert_int_equal(pinheap_sym_check(h.sym), 0);
  return h;
}

static void solo_close(solo_heap h) {
  assert_int_equal(pinheap_sym_check(h.sym), 0);
  pinheap_sym_destroy(h.sym);
  pinheap_stats st;
  assert_int_equal(pinheap_get_stats(h.heap, &st), 0);
  assert_int_equal(st.large_blocks, 0); /* the block went back */
  pinheap_destroy(h.heap);
}

/* ---- running a function in a child and reading its stderr --------------- */

static child_result run_child(void (*fn)(void *), void *arg) {
  child_result r;
  child_run(fn, arg, &r);
  assert_int_not_equal(r.status, -1);
  return r;
}

static void assert_aborted(const child_result *r, const char *what) {
  if (!WIFSIGNALED(r->status) || WTERMSIG(r->status) != SIGABRT)
    print_error("%s: child status %#x, stderr \"%s\"\n", what, r->status, r->err);
  assert_true(WIFSIGNALED(r->status));
  assert_int_equal(WTERMSIG(r->status), SIGABRT);
  assert_contains(r->err, "pinheap: ");
}

/* ---- 1. the same random sequence on every rank ----------------------------- */

#define RAND_RANKS 4
#define RAND_OPS 1500
#define RAND_SLOTS 48
#define RAND_SYM (16 * MiB)

typedef struct rand_obj {
  unsigned char *p;
  size_t size;
  unsigned tag;
} rand_obj;

typedef struct rand_run {
  size_t offsets[RAND_RANKS][RAND_OPS];
} rand_run;

/* An object's contents: its first and last 64 bytes vary with the offset
 * (a shifted copy shows), the middle is one byte (cheap to fill and check
 * under the sanitizers); both depend on the object's tag and the rank. */
#define PATTERN_EDGE 64

static unsigned char pattern_byte(unsigned tag, int rank, size_t i) {
  return (unsigned char)(tag + (unsigned)rank * 131u + i * 7u);
}

static unsigned char pattern_middle(unsigned tag, int rank) {
  return (unsigned char)(tag ^ (unsigned)rank * 131u ^ 0x5Cu);
}

static bool pattern_edge(size_t i, size_t size) { return i < PATTERN_EDGE || i + PATTERN_EDGE >= size; }

static void pattern_fill(rand_obj *o, int rank) {
  size_t n = o->size;
  memset(o->p, pattern_middle(o->tag, rank), n);
  for (size_t i = 0; i < PATTERN_EDGE && i < n; i++) {
    o->p[i] = pattern_byte(o->tag, rank, i);
    o->p[n - 1 - i] = pattern_byte(o->tag, rank, n - 1 - i);
  }
}

/* Whether the first n bytes of an object of size bytes, filled for (tag,
 * rank), are intact. */
static bool pattern_ok(const unsigned char *p, size_t n, size_t size, unsigned tag, int rank) {
  size_t i = 0;
  while (i < n) {
    if (pattern_edge(i, size)) {
      if (p[i] != pattern_byte(tag, rank, i)) return false;
      i++;
      continue;
    }
    /* The middle, up to the last edge or n: one byte repeated. */
    size_t end = size - PATTERN_EDGE < n ? size - PATTERN_EDGE : n;
    if (p[i] != pattern_middle(tag, rank) || memcmp(p + i, p + i + 1, end - i - 1) != 0) return false;
    i = end;
  }
  return true;
}

/* Sizes: mostly small, some medium, a few arrays. */
static size_t rand_size(uint64_t *rs) {
  uint64_t r = seed_next_r(rs) % 100;
  if (r < 65) return 1 + seed_next_r(rs) % 2048;
  if (r < 93) return 2048 + seed_next_r(rs) % (256 * KiB);
  return 256 * KiB + seed_next_r(rs) % (4 * MiB);
}

static void rand_body(fake_proc *p, void *arg) {
  rand_run *run = arg;
  pinheap *heap = heap_for(RAND_SYM);
  FAKE_CHECK(p, heap, "heap");
  pinheap_sym *sym = pinheap_sym_create(heap, RAND_SYM, &p->coll, 0);
  FAKE_CHECK(p, sym, "create");
  uint64_t rs = test_seed; /* the same stream on every rank */
  rand_obj objs[RAND_SLOTS] = {{0}};
  size_t live_bytes = 0;
  for (int op = 0; op < RAND_OPS; op++) {
    rand_obj *o = &objs[seed_next_r(&rs) % RAND_SLOTS];
    uint64_t kind = seed_next_r(&rs) % 4;
    void *result = NULL;
    if (!o->p) {
      size_t size = rand_size(&rs);
      o->tag = (unsigned)seed_next_r(&rs);
      size_t align = (size_t)64 << (seed_next_r(&rs) % 16);
      if (kind == 0) {
        result = pinheap_sym_calloc(sym, 1, size);
        for (size_t i = 0; result && i < size; i++)
          FAKE_CHECK(p, ((unsigned char *)result)[i] == 0, "calloc zero at %zu", i);
      } else if (kind == 1) {
        result = pinheap_sym_aligned_alloc(sym, align, size);
        FAKE_CHECK(p, !result || ((uintptr_t)result & (align - 1)) == 0, "alignment %zu of %p", align, result);
      } else {
        result = pinheap_sym_malloc(sym, size);
      }
      FAKE_CHECK(p, result || errno == ENOMEM, "op %d: allocation of %zu failed with errno %d", op, size, errno);
      FAKE_CHECK(p, ((uintptr_t)result & 63) == 0, "64-byte alignment of %p", result);
      if (result) {
        o->p = result;
        o->size = size;
        live_bytes += size;
        pattern_fill(o, p->rank);
      }
    } else if (kind == 0) {
      FAKE_CHECK(p, pattern_ok(o->p, o->size, o->size, o->tag, p->rank), "op %d: pattern before free", op);
      pinheap_sym_free(sym, o->p);
      live_bytes -= o->size;
      o->p = NULL;
    } else if (kind <= 2) {
      size_t size = kind == 1 ? rand_size(&rs) : o->size / 2 + 1;
      result = pinheap_sym_realloc(sym, o->p, size);
      if (result) {
        size_t keep = size < o->size ? size : o->size;
        FAKE_CHECK(p, pattern_ok(result, keep, o->size, o->tag, p->rank), "op %d: realloc %zu -> %zu lost contents", op,
                   o->size, size);
        live_bytes += size - o->size;
        o->p = result;
        o->size = size;
        pattern_fill(o, p->rank);
      } else {
        FAKE_CHECK(p, errno == ENOMEM, "op %d: realloc errno %d", op, errno);
        FAKE_CHECK(p, pattern_ok(o->p, o->size, o->size, o->tag, p->rank), "op %d: failed realloc changed the object",
                   op);
      }
    } else {
      FAKE_CHECK(p, pattern_ok(o->p, o->size, o->size, o->tag, p->rank), "op %d: pattern", op);
    }
    run->offsets[p->rank][op] = result ? pinheap_sym_offset(sym, result) : SIZE_MAX;
    FAKE_CHECK(p, pinheap_sym_check(sym) == 0, "op %d: check", op);
    pinheap_stats st = sym_stats(sym);
    FAKE_CHECK(p, st.allocated == live_bytes, "op %d: allocated %zu, expected %zu", op, st.allocated, live_bytes);
    FAKE_CHECK(p,
               st.capacity == RAND_SYM && st.in_use + st.free_bytes == st.capacity && st.in_use >= live_bytes &&
                   st.peak_in_use >= st.in_use && st.largest_free <= st.free_bytes,
               "op %d: stats", op);
  }
  /* Every rank's objects, read where pinheap_sym_remote says they are. */
  FAKE_CHECK(p, fake_all_same(p, 1), "barrier");
  for (int i = 0; i < RAND_SLOTS; i++) {
    if (!objs[i].p) continue;
    for (int r = 0; r < p->group->nranks; r++) {
      pinheap_sym_addr a;
      FAKE_CHECK(p, pinheap_sym_remote(sym, objs[i].p + objs[i].size - 1, r, &a) == 0, "remote");
      FAKE_CHECK(p,
                 pattern_ok((const unsigned char *)(uintptr_t)a.addr - (objs[i].size - 1), objs[i].size, objs[i].size,
                            objs[i].tag, r),
                 "object %d as seen on rank %d", i, r);
      pinheap_region reg;
      FAKE_CHECK(p,
                 r != p->rank || (pinheap_region_of(heap, objs[i].p, &reg) == 0 &&
                                  a.reg_offset == (uint64_t)((char *)objs[i].p + objs[i].size - 1 - (char *)reg.base)),
                 "reg_offset");
    }
  }
  FAKE_CHECK(p, fake_all_same(p, 2), "barrier");
  for (int i = 0; i < RAND_SLOTS; i++) pinheap_sym_free(sym, objs[i].p);
  pinheap_stats st = sym_stats(sym);
  FAKE_CHECK(p, st.allocated == 0 && st.in_use == 0 && st.large_blocks == 0 && st.large_allocated == 0, "all freed");
  FAKE_CHECK(p, st.free_extents == 1 && st.largest_free == RAND_SYM, "one free extent: %zu extents, largest %zu",
             st.free_extents, st.largest_free);
  FAKE_CHECK(p, pinheap_sym_check(sym) == 0, "check at the end");
  pinheap_sym_destroy(sym);
  pinheap_destroy(heap);
}

static void test_random_same_offsets(void **state) {
  (void)state;
  rand_run *run = calloc(1, sizeof *run);
  assert_non_null(run);
  fake_run(RAND_RANKS, rand_body, run);
  int allocated = 0;
  for (int op = 0; op < RAND_OPS; op++) {
    allocated += run->offsets[0][op] != SIZE_MAX;
    for (int r = 1; r < RAND_RANKS; r++)
      if (run->offsets[r][op] != run->offsets[0][op])
        fail_msg("op %d: rank %d offset %zu, rank 0 offset %zu", op, r, run->offsets[r][op], run->offsets[0][op]);
  }
  assert_true(allocated > RAND_OPS / 4);
  free(run);
}

/* ---- 2. the seed sequences ------------------------------------------------- */

typedef struct seq_run {
  size_t sym_size;
  int which;
  size_t offsets[2][5];
} seq_run;

static void touch(fake_proc *p, void *v, size_t size) {
  FAKE_CHECK(p, v, "allocation of %zu", size);
  unsigned char *c = v;
  c[0] = 1;
  c[size - 1] = 2;
}

static void seq_body(fake_proc *p, void *arg) {
  seq_run *run = arg;
  pinheap *heap = heap_for(run->sym_size);
  FAKE_CHECK(p, heap, "heap");
  pinheap_sym *sym = pinheap_sym_create(heap, run->sym_size, &p->coll, 0);
  FAKE_CHECK(p, sym, "create");
  void *v[5] = {0};
  size_t *off = run->offsets[p->rank];
  switch (run->which) {
  case 0: /* 700 MiB, free, 1000 MiB in 1200 MiB */
    touch(p, v[0] = pinheap_sym_malloc(sym, 700 * MiB), 700 * MiB);
    pinheap_sym_free(sym, v[0]);
    touch(p, v[1] = pinheap_sym_malloc(sym, 1000 * MiB), 1000 * MiB);
    break;
  case 1: /* 1000 MiB, free, 2 x 500 MiB in 1050 MiB */
    touch(p, v[0] = pinheap_sym_malloc(sym, 1000 * MiB), 1000 * MiB);
    pinheap_sym_free(sym, v[0]);
    touch(p, v[1] = pinheap_sym_malloc(sym, 500 * MiB), 500 * MiB);
    touch(p, v[2] = pinheap_sym_malloc(sym, 500 * MiB), 500 * MiB);
    break;
  default: /* 500 MiB, 40 B, free the 500, 40 B, 500 MiB in 650 MiB */
    touch(p, v[0] = pinheap_sym_malloc(sym, 500 * MiB), 500 * MiB);
    touch(p, v[1] = pinheap_sym_malloc(sym, 40), 40);
    pinheap_sym_free(sym, v[0]);
    touch(p, v[2] = pinheap_sym_malloc(sym, 40), 40);
    touch(p, v[3] = pinheap_sym_malloc(sym, 500 * MiB), 500 * MiB);
    break;
  }
  for (int i = 1; i < 5; i++) off[i] = v[i] ? pinheap_sym_offset(sym, v[i]) : SIZE_MAX;
  FAKE_CHECK(p, pinheap_sym_check(sym) == 0, "check");
  for (int i = 1; i < 5; i++) pinheap_sym_free(sym, v[i]);
  pinheap_stats st = sym_stats(sym);
  FAKE_CHECK(p, st.free_extents == 1 && st.largest_free == run->sym_size, "one free extent at the end");
  pinheap_sym_destroy(sym);
  pinheap_destroy(heap);
}

static void test_seed_sequences(void **state) {
  (void)state;
  const size_t sizes[3] = {1200 * MiB, 1050 * MiB, 650 * MiB};
  for (int which = 0; which < 3; which++) {
    seq_run run = {.sym_size = sizes[which], .which = which};
    fake_run(2, seq_body, &run);
    for (int i = 1; i < 5; i++) assert_int_equal(run.offsets[0][i], run.offsets[1][i]);
    if (which == 2) {
      /* The tiny objects sit at the top, the arrays at the bottom. */
      assert_int_equal(run.offsets[0][1], 650 * MiB - 64);
      assert_int_equal(run.offsets[0][2], 650 * MiB - 128);
      assert_int_equal(run.offsets[0][3], 0);
    }
  }
}

/* ---- 3. mismatches abort everywhere ------------------------------------- */

static void mismatch_size_body(fake_proc *p, void *arg) {
  (void)arg;
  pinheap *heap = heap_for(4 * MiB);
  pinheap_sym *sym = pinheap_sym_create(heap, 4 * MiB, &p->coll, 0);
  FAKE_CHECK(p, sym, "create");
  pinheap_sym_malloc(sym, 100 * (size_t)(p->rank + 1));
}

static void mismatch_op_body(fake_proc *p, void *arg) {
  (void)arg;
  pinheap *heap = heap_for(4 * MiB);
  pinheap_sym *sym = pinheap_sym_create(heap, 4 * MiB, &p->coll, 0);
  FAKE_CHECK(p, sym, "create");
  void *a = pinheap_sym_malloc(sym, 64);
  if (p->rank == 0)
    pinheap_sym_free(sym, a);
  else
    pinheap_sym_realloc(sym, a, 128);
}

/* Rank 1's manager loses an extent behind the heap's back: the next call
 * gives different offsets. */
static void diverged_body(fake_proc *p, void *arg) {
  (void)arg;
  pinheap *heap = heap_for(4 * MiB);
  pinheap_sym *sym = pinheap_sym_create(heap, 4 * MiB, &p->coll, 0);
  FAKE_CHECK(p, sym, "create");
  if (p->rank == 1) FAKE_CHECK(p, em_alloc(&sym->em, 4 * KiB, SYM_QUANTUM, NULL), "em_alloc");
  pinheap_sym_malloc(sym, 64);
}

typedef struct group_job {
  void (*body)(fake_proc *self, void *arg);
} group_job;

static void run_group_of_2(void *job) { fake_run(2, ((group_job *)job)->body, NULL); }

static void test_mismatch_aborts(void **state) {
  (void)state;
  group_job size_job = {mismatch_size_body}, op_job = {mismatch_op_body}, diverged_job = {diverged_body};
  child_result r = run_child(run_group_of_2, &size_job);
  assert_aborted(&r, "different sizes");
  assert_contains(r.err, "different calls");
  assert_contains(r.err, "rank 0: call 0 malloc(100)");
  assert_contains(r.err, "rank 1: call 0 malloc(200)");

  r = run_child(run_group_of_2, &op_job);
  assert_aborted(&r, "different calls");
  assert_contains(r.err, "rank 0: call 1 free(offset 0x3fffc0)");
  assert_contains(r.err, "rank 1: call 1 realloc(offset 0x3fffc0, 128)");

  r = run_child(run_group_of_2, &diverged_job);
  assert_aborted(&r, "diverged heaps");
  assert_contains(r.err, "different results");
  assert_contains(r.err, "rank 0: call 0 malloc(64) -> offset 0x3fffc0");
  assert_contains(r.err, "rank 1: call 0 malloc(64) -> offset 0x3fefc0");
}

/* ---- 4. a failure on one rank fails everywhere -------------------------- */

static void one_fails_body(fake_proc *p, void *arg) {
  (void)arg;
  size_t size = 8 * MiB;
  pinheap *heap = heap_for(size);
  pinheap_sym *sym = pinheap_sym_create(heap, size, &p->coll, 0);
  FAKE_CHECK(p, sym, "create");
  unsigned char *keep = pinheap_sym_malloc(sym, 1000);
  FAKE_CHECK(p, keep, "malloc");
  memset(keep, 0x5A, 1000);
  pinheap_stats before = sym_stats(sym);
  /* Rank 1 alone has almost no room left. */
  void *blocker = NULL;
  if (p->rank == 1) {
    blocker = em_alloc(&sym->em, before.largest_free - 64 * KiB, SYM_QUANTUM, NULL);
    FAKE_CHECK(p, blocker, "em_alloc");
  }
  pinheap_stats mid = sym_stats(sym);
  void *r[4];
  errno = 0;
  r[0] = pinheap_sym_malloc(sym, 2 * MiB);
  int e0 = errno;
  r[1] = pinheap_sym_calloc(sym, 2, MiB);
  int e1 = errno;
  r[2] = pinheap_sym_aligned_alloc(sym, 4096, 2 * MiB);
  int e2 = errno;
  r[3] = pinheap_sym_realloc(sym, keep, 3 * MiB);
  int e3 = errno;
  for (int i = 0; i < 4; i++) FAKE_CHECK(p, r[i] == NULL, "call %d succeeded", i);
  FAKE_CHECK(p, e0 == ENOMEM && e1 == ENOMEM && e2 == ENOMEM && e3 == ENOMEM, "errno %d %d %d %d", e0, e1, e2, e3);
  if (p->rank == 0)
    FAKE_CHECK(p, strstr(pinheap_last_error(), "failed on rank 1"), "message");
  else
    FAKE_CHECK(p, strstr(pinheap_last_error(), "out of symmetric memory"), "message");
  pinheap_stats after = sym_stats(sym);
  FAKE_CHECK(p,
             after.allocated == mid.allocated && after.free_bytes == mid.free_bytes &&
                 after.free_extents == mid.free_extents && after.largest_free == mid.largest_free,
             "nothing leaked");
  for (int i = 0; i < 1000; i++) FAKE_CHECK(p, keep[i] == 0x5A, "realloc's object changed");
  if (blocker) FAKE_CHECK(p, em_free(&sym->em, blocker, before.largest_free - 64 * KiB) == EM_FREED, "em_free");
  FAKE_CHECK(p, pinheap_sym_check(sym) == 0, "check");
  void *ok = pinheap_sym_malloc(sym, 2 * MiB);
  FAKE_CHECK(p, ok && fake_all_same(p, pinheap_sym_offset(sym, ok)), "the same call succeeds now");
  keep = pinheap_sym_realloc(sym, keep, 3 * MiB);
  FAKE_CHECK(p, keep && keep[999] == 0x5A, "realloc succeeds now");
  pinheap_sym_free(sym, ok);
  pinheap_sym_free(sym, keep);
  pinheap_sym_destroy(sym);
  pinheap_destroy(heap);
}

typedef struct create_case {
  size_t size[2];
  unsigned flags[2];
  size_t heap_size[2];
  int want;         /* errno, 0: success */
  const char *text; /* in every rank's error */
} create_case;

static void create_body(fake_proc *p, void *arg) {
  const create_case *c = arg;
  pinheap_options o;
  pinheap_options_init(&o);
  o.size = c->heap_size[p->rank];
  o.arenas = 1;
  pinheap *heap = pinheap_create(&o);
  FAKE_CHECK(p, heap, "heap");
  pinheap_stats before, after;
  pinheap_get_stats(heap, &before);
  errno = 0;
  pinheap_sym *sym = pinheap_sym_create(heap, c->size[p->rank], &p->coll, c->flags[p->rank]);
  int err = errno;
  if (c->want == 0) {
    FAKE_CHECK(p, sym, "create");
    pinheap_sym_destroy(sym);
  } else {
    FAKE_CHECK(p, !sym && err == c->want, "create: errno %d, wanted %d", err, c->want);
    FAKE_CHECK(p, strstr(pinheap_last_error(), c->text), "message should contain \"%s\"", c->text);
  }
  pinheap_get_stats(heap, &after);
  FAKE_CHECK(p, after.allocated == before.allocated && after.free_bytes == before.free_bytes, "the block went back");
  pinheap_destroy(heap);
}

static void test_one_rank_fails(void **state) {
  (void)state;
  fake_run(2, one_fails_body, NULL);
  const create_case cases[] = {
      {{16 * MiB, 16 * MiB}, {0, 0}, {64 * MiB, 64 * MiB}, 0, ""},
      {{16 * MiB, 16 * MiB}, {0, 0}, {64 * MiB, 14 * MiB}, ENOMEM, "pinheap_sym_create(16777216)"},
      {{16 * MiB, 32 * MiB}, {0, 0}, {64 * MiB, 64 * MiB}, EINVAL, "disagree"},
      {{16 * MiB, 16 * MiB}, {0, PINHEAP_SYM_NOSYNC}, {64 * MiB, 64 * MiB}, EINVAL, "disagree"},
      {{0, 16 * MiB}, {0, 0}, {64 * MiB, 64 * MiB}, EINVAL, "pinheap_sym_create"},
      {{16 * MiB, 16 * MiB}, {8, 8}, {64 * MiB, 64 * MiB}, EINVAL, "unknown flags"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) fake_run(2, create_body, (void *)&cases[i]);
}

/* ---- 5. bad input -------------------------------------------------------- */

#define assert_fails(expr, err)                                                                         \
  do {                                                                                                  \
    errno = 0;                                                                                          \
    void *r_ = (void *)(expr);                                                                          \
    int e_ = errno;                                                                                     \
    if (r_ || e_ != (err)) print_error("%s: %p, errno %d (%s)\n", #expr, r_, e_, pinheap_last_error()); \
    assert_null(r_);                                                                                    \
    assert_int_equal(e_, (err));                                                                        \
    assert_true(pinheap_last_error()[0] != '\0');                                                       \
  } while (0)

static void test_bad_input(void **state) {
  (void)state;
  solo_heap h = solo_open(8 * MiB);
  pinheap_sym *s = h.sym;
  pinheap_collective bad = solo;
  assert_fails(pinheap_sym_create(h.heap, MiB, NULL, 0), EINVAL);
  bad.rank = 1;
  assert_fails(pinheap_sym_create(h.heap, MiB, &bad, 0), EINVAL);
  bad = solo;
  bad.allgather = NULL;
  assert_fails(pinheap_sym_create(h.heap, MiB, &bad, 0), EINVAL);
  bad = solo;
  bad.nranks = 0;
  assert_fails(pinheap_sym_create(h.heap, MiB, &bad, 0), EINVAL);
  assert_fails(pinheap_sym_create(NULL, MiB, &solo, 0), EINVAL);
  assert_fails(pinheap_sym_create(h.heap, 0, &solo, 0), EINVAL);
  /* Sizes no heap could hold are ENOMEM, as a lack of room is. */
  assert_fails(pinheap_sym_create(h.heap, SIZE_MAX, &solo, 0), ENOMEM);
  assert_fails(pinheap_sym_create(h.heap, 64 * MiB, &solo, 0), ENOMEM); /* larger than the heap */

  assert_fails(pinheap_sym_malloc(NULL, 10), EINVAL);
  assert_fails(pinheap_sym_calloc(NULL, 1, 10), EINVAL);
  assert_fails(pinheap_sym_aligned_alloc(NULL, 64, 10), EINVAL);
  assert_fails(pinheap_sym_realloc(NULL, NULL, 10), EINVAL);
  pinheap_sym_free(NULL, NULL);
  pinheap_sym_destroy(NULL);
  pinheap_stats st;
  errno = 0;
  assert_int_equal(pinheap_sym_get_stats(NULL, &st), -1);
  assert_int_equal(errno, EINVAL);
  assert_int_equal(pinheap_sym_get_stats(s, NULL), -1);
  assert_int_equal(pinheap_sym_check(NULL), -1);

  char *a = pinheap_sym_malloc(s, 100);
  assert_non_null(a);
  memset(a, 7, 100);
  unsigned long calls = solo_calls;
  assert_fails(pinheap_sym_aligned_alloc(s, 3, 10), EINVAL);
  assert_fails(pinheap_sym_aligned_alloc(s, 0, 10), EINVAL);
  assert_fails(pinheap_sym_aligned_alloc(s, 2 * PINHEAP_SYM_MAX_ALIGN, 10), EINVAL);
  assert_fails(pinheap_sym_calloc(s, SIZE_MAX / 2, 3), ENOMEM);
  assert_fails(pinheap_sym_malloc(s, 8 * MiB + 1), ENOMEM);
  assert_fails(pinheap_sym_malloc(s, SIZE_MAX), ENOMEM);
  assert_fails(pinheap_sym_malloc(s, 8 * MiB), ENOMEM); /* possible in an empty heap */
  errno = 0;
  assert_null(pinheap_sym_malloc(s, 0));
  assert_null(pinheap_sym_calloc(s, 0, 10));
  assert_int_equal(errno, 0);
  /* Failed and empty calls are collective all the same. */
  assert_int_equal(solo_calls - calls, 9);
  assert_fails(pinheap_sym_realloc(s, a, SIZE_MAX - 10), ENOMEM);
  assert_fails(pinheap_sym_realloc(s, a, 9 * MiB), ENOMEM);
  assert_int_equal(a[99], 7);

  /* Queries. */
  int local;
  pinheap_sym_addr ra;
  assert_int_equal(pinheap_sym_offset(NULL, a), SIZE_MAX);
  assert_int_equal(pinheap_sym_offset(s, NULL), SIZE_MAX);
  assert_int_equal(pinheap_sym_offset(s, &local), SIZE_MAX);
  assert_int_equal(pinheap_sym_offset(s, a), 8 * MiB - 128);
  assert_ptr_equal(pinheap_sym_ptr(s, 8 * MiB - 128), a);
  assert_null(pinheap_sym_ptr(s, 8 * MiB));
  assert_null(pinheap_sym_ptr(NULL, 0));
  assert_int_equal(pinheap_sym_remote(s, &local, 0, &ra), -1);
  assert_int_equal(pinheap_sym_remote(s, a, 1, &ra), -1);
  assert_int_equal(pinheap_sym_remote(s, a, -1, &ra), -1);
  assert_int_equal(pinheap_sym_remote(s, a, 0, NULL), -1);
  assert_int_equal(pinheap_sym_remote(NULL, a, 0, &ra), -1);
  assert_int_equal(errno, EINVAL);
  assert_int_equal(pinheap_sym_remote(s, a, 0, &ra), 0);
  assert_int_equal(ra.addr, (uintptr_t)a);
  pinheap_region reg;
  assert_int_equal(pinheap_region_of(h.heap, a, &reg), 0);
  assert_int_equal(ra.reg_offset, (uint64_t)(a - (char *)reg.base));
  pinheap_sym_free(s, a);
  solo_close(h);
}

/* ---- 6. bad pointers abort -------------------------------------------------- */

typedef struct bad_free {
  int how; /* 0 stack, 1 malloc, 2 twice, 3 interior, 4 realloc of a freed object, 5 NOSYNC twice */
  char *reported;
} bad_free;

static void bad_free_child(void *arg) {
  bad_free *b = arg;
  pinheap *heap = heap_for(8 * MiB);
  pinheap_sym *s = pinheap_sym_create(heap, 8 * MiB, &solo, b->how == 5 ? PINHEAP_SYM_NOSYNC : 0);
  char *a = pinheap_sym_malloc(s, 1000);
  int local = 0;
  char *m = malloc(64);
  switch (b->how) {
  case 0: pinheap_sym_free(s, &local); break;
  case 1: pinheap_sym_free(s, m); break;
  case 2:
  case 5:
    pinheap_sym_free(s, a);
    pinheap_sym_free(s, a);
    break;
  case 3: pinheap_sym_free(s, a + 64); break;
  default:
    pinheap_sym_free(s, a);
    pinheap_sym_realloc(s, a, 10);
    break;
  }
}

static void test_bad_pointers_abort(void **state) {
  (void)state;
  const char *why[] = {"not in the symmetric heap", "not in the symmetric heap", "not a live object",
                       "inside a live object",      "not a live object",         "not a live object"};
  for (int how = 0; how < 6; how++) {
    bad_free b = {.how = how};
    child_result r = run_child(bad_free_child, &b);
    assert_aborted(&r, why[how]);
    assert_contains(r.err, why[how]);
    assert_contains(r.err, how == 4 ? "pinheap_sym_realloc(0x" : "pinheap_sym_free(0x");
  }
}

/* A pointer that is bad on one rank only: both abort. */
static void bad_on_one_body(fake_proc *p, void *arg) {
  (void)arg;
  pinheap *heap = heap_for(4 * MiB);
  pinheap_sym *sym = pinheap_sym_create(heap, 4 * MiB, &p->coll, 0);
  char *a = pinheap_sym_malloc(sym, 64);
  if (p->rank == 1) {
    sym_object key = {.addr = (uintptr_t)a};
    sym_object *o = PH_CONTAINER_OF(tree_floor(&sym->live, &key.node), sym_object, node);
    tree_remove(&sym->live, &o->node); /* rank 1 forgets the object */
  }
  pinheap_sym_free(sym, a);
  fake_all_same(p, 0); /* rank 0 must not get here */
}

static void test_bad_pointer_on_one_rank(void **state) {
  (void)state;
  group_job job = {bad_on_one_body};
  child_result r = run_child(run_group_of_2, &job);
  assert_aborted(&r, "bad on one rank");
  /* Rank 1 names the pointer, rank 0 the call: whichever aborts first. */
  assert_contains(r.err, "not a live object");
  assert_contains(r.err, "pinheap_sym_free");
}

/* ---- 7. realloc, calloc ---------------------------------------------------- */

static void test_realloc_in_place_and_moves(void **state) {
  (void)state;
  solo_heap h = solo_open(16 * MiB); /* objects above 1 MiB go to the bottom */
  pinheap_sym *s = h.sym;
  unsigned char *a = pinheap_sym_malloc(s, 2 * MiB);
  assert_int_equal(pinheap_sym_offset(s, a), 0);
  for (size_t i = 0; i < 2 * MiB; i++) a[i] = (unsigned char)(i * 13);
  /* Grows in place into the free extent above. */
  assert_ptr_equal(pinheap_sym_realloc(s, a, 3 * MiB), a);
  unsigned char *b = pinheap_sym_malloc(s, 2 * MiB);
  assert_int_equal(pinheap_sym_offset(s, b), 3 * MiB);
  /* b is above: moves, contents kept, the old place freed. */
  unsigned char *m = pinheap_sym_realloc(s, a, 4 * MiB);
  assert_non_null(m);
  assert_int_equal(pinheap_sym_offset(s, m), 5 * MiB);
  for (size_t i = 0; i < 2 * MiB; i++)
    if (m[i] != (unsigned char)(i * 13)) fail_msg("byte %zu lost in the move", i);
  pinheap_stats st = sym_stats(s);
  assert_int_equal(st.allocated, 6 * MiB);
  assert_int_equal(st.in_use, 6 * MiB);
  assert_int_equal(st.large_blocks, 2);
  assert_int_equal(pinheap_sym_check(s), 0);
  /* Shrinks in place; the tail goes back. */
  assert_ptr_equal(pinheap_sym_realloc(s, m, MiB + 1), m);
  st = sym_stats(s);
  assert_int_equal(st.allocated, 3 * MiB + 1);
  assert_int_equal(st.in_use, 3 * MiB + 64);
  assert_int_equal(st.large_blocks, 2);
  assert_int_equal(m[MiB], (unsigned char)(MiB * 13));
  assert_int_equal(pinheap_sym_check(s), 0);
  /* Small now: stays where it is, counted small. */
  assert_ptr_equal(pinheap_sym_realloc(s, m, 100), m);
  assert_int_equal(sym_stats(s).large_blocks, 1);
  /* NULL: malloc; size 0: free. */
  unsigned char *c = pinheap_sym_realloc(s, NULL, 100);
  assert_int_equal(pinheap_sym_offset(s, c), 16 * MiB - 128);
  assert_null(pinheap_sym_realloc(s, c, 0));
  assert_null(pinheap_sym_realloc(s, m, 0));
  pinheap_sym_free(s, b);
  st = sym_stats(s);
  assert_int_equal(st.allocated, 0);
  assert_int_equal(st.free_extents, 1);
  solo_close(h);
}

/* Symmetric objects carved from memory where freed small objects were:
 * bytes of one the program never wrote, copied into a small block of the
 * heap, do not make that block's free read as a double free (key.h). */
static void test_copy_from_reused_memory(void **state) {
  (void)state;
  pinheap *heap = heap_for(48 * MiB);
  assert_non_null(heap);
  heaps_freed_objects(heap, 32 * MiB, 64, NULL, NULL);
  pinheap_sym *sym = pinheap_sym_create(heap, 48 * MiB, &solo, 0);
  assert_non_null(sym);
  /* Objects over most of the symmetric block, which lies over most of
   * where the objects were (their slabs at the top, the block low). */
  enum { OBJECTS = 40 * MiB / 4096 };
  static char *objects[OBJECTS];
  for (int i = 0; i < OBJECTS; i++) {
    char *o = objects[i] = pinheap_sym_malloc(sym, 4096);
    assert_non_null(o);
    for (size_t off = 0; off < 4096; off += 1024) {
      void *copy = pinheap_malloc(heap, 40);
      assert_non_null(copy);
      memcpy(copy, o + off, 8);
      pinheap_free(heap, copy);
    }
  }
  for (int i = 0; i < OBJECTS; i++) pinheap_sym_free(sym, objects[i]);
  assert_int_equal(pinheap_sym_check(sym), 0);
  pinheap_sym_destroy(sym);
  pinheap_destroy(heap);
}

static void test_calloc_clears(void **state) {
  (void)state;
  solo_heap h = solo_open(4 * MiB);
  unsigned char *a = pinheap_sym_malloc(h.sym, 5000);
  memset(a, 0xAB, 5000);
  pinheap_sym_free(h.sym, a);
  unsigned char *b = pinheap_sym_calloc(h.sym, 50, 100);
  assert_ptr_equal(a, b);
  for (int i = 0; i < 5000; i++) assert_int_equal(b[i], 0);
  pinheap_sym_free(h.sym, b);
  solo_close(h);
}

/* ---- 8. NOSYNC ------------------------------------------------------------ */

static bool verify_expected(void) {
#ifdef PINHEAP_DEBUG_BUILD
  return true;
#else
  const char *v = getenv("PINHEAP_DEBUG");
  return v && *v && strcmp(v, "0") != 0;
#endif
}

/* Four calls; rank 1 cannot place the third when unchecked, and the caller
 * then frees rank 0's as the header asks. */
static void nosync_body(fake_proc *p, void *arg) {
  (void)arg;
  pinheap *heap = heap_for(4 * MiB);
  pinheap_sym *sym = pinheap_sym_create(heap, 4 * MiB, &p->coll, PINHEAP_SYM_NOSYNC);
  FAKE_CHECK(p, sym, "create");
  void *a = pinheap_sym_malloc(sym, 1000);
  FAKE_CHECK(p, a, "malloc");
  pinheap_sym_free(sym, a);
  if (!sym->verify) {
    void *blocker = p->rank == 1 ? em_alloc(&sym->em, 4 * MiB - 4 * KiB, SYM_QUANTUM, NULL) : NULL;
    void *b = pinheap_sym_malloc(sym, 8 * KiB);
    FAKE_CHECK(p, (b != NULL) == (p->rank == 0), "a local failure");
    if (b) pinheap_sym_free(sym, b);
    if (blocker) em_free(&sym->em, blocker, 4 * MiB - 4 * KiB);
    b = pinheap_sym_malloc(sym, 8 * KiB);
    FAKE_CHECK(p, b && fake_all_same(p, pinheap_sym_offset(sym, b)), "in step again");
    pinheap_sym_free(sym, b);
  }
  FAKE_CHECK(p, pinheap_sym_check(sym) == 0, "check");
  pinheap_sym_destroy(sym);
  pinheap_destroy(heap);
}

static void test_nosync(void **state) {
  (void)state;
  char *saved = getenv("PINHEAP_DEBUG") ? strdup(getenv("PINHEAP_DEBUG")) : NULL;
  unsetenv("PINHEAP_DEBUG");
  /* create, then without the check one helper allgather; with it, the
   * malloc, free and destroy too */
  unsigned long calls = fake_run(2, nosync_body, NULL);
  assert_int_equal(calls, verify_expected() ? 4 : 2);
  setenv("PINHEAP_DEBUG", "1", 1);
  assert_int_equal(fake_run(2, nosync_body, NULL), 4);
  if (saved)
    setenv("PINHEAP_DEBUG", saved, 1);
  else
    unsetenv("PINHEAP_DEBUG");
  free(saved);
}

/* ---- 9. heaps without registrations, and DYNAMIC ones ------------------- */

static void modes_body(fake_proc *p, void *arg) {
  (void)arg;
  pinheap_options o;
  pinheap_options_init(&o);
  o.mode = p->rank == 0 ? PINHEAP_SIMPLE : PINHEAP_DYNAMIC;
  o.arenas = 1;
  pinheap *heap = pinheap_create(&o);
  FAKE_CHECK(p, heap, "heap");
  pinheap_sym *sym = pinheap_sym_create(heap, 3 * MiB, &p->coll, 0);
  FAKE_CHECK(p, sym, "create");
  char *a = pinheap_sym_malloc(sym, 100);
  FAKE_CHECK(p, a && ((uintptr_t)pinheap_sym_ptr(sym, 0) & (PINHEAP_SYM_MAX_ALIGN - 1)) == 0, "aligned block");
  unsigned long long theirs = fake_value_of(p, (uintptr_t)a, 1 - p->rank);
  pinheap_sym_addr mine, other;
  FAKE_CHECK(p, pinheap_sym_remote(sym, a, p->rank, &mine) == 0 && pinheap_sym_remote(sym, a, 1 - p->rank, &other) == 0,
             "remote");
  FAKE_CHECK(p, mine.addr == (uintptr_t)a && other.addr == theirs, "addresses");
  pinheap_region reg;
  if (p->rank == 0) {
    FAKE_CHECK(p, mine.reg_offset == PINHEAP_SYM_NO_REG, "SIMPLE: no registration");
    FAKE_CHECK(p, other.reg_offset != PINHEAP_SYM_NO_REG, "DYNAMIC: a registration");
  } else {
    FAKE_CHECK(p, pinheap_region_of(heap, a, &reg) == 0 && mine.reg_offset == (uint64_t)(a - (char *)reg.base),
               "DYNAMIC: offset in the chunk");
    FAKE_CHECK(p, other.reg_offset == PINHEAP_SYM_NO_REG, "SIMPLE: no registration");
  }
  pinheap_sym_free(sym, a);
  pinheap_sym_destroy(sym);
  pinheap_destroy(heap);
}

static void test_simple_and_dynamic(void **state) {
  (void)state;
  fake_run(2, modes_body, NULL);
}

/* ---- 10. destroy reports, the checker catches -------------------------- */

static void destroy_live_child(void *arg) {
  (void)arg;
  pinheap *heap = heap_for(4 * MiB);
  pinheap_sym *s = pinheap_sym_create(heap, 4 * MiB, &solo, 0);
  pinheap_sym_malloc(s, 100);
  pinheap_sym_calloc(s, 2, 1000);
  pinheap_sym_destroy(s);
  pinheap_stats st;
  pinheap_get_stats(heap, &st);
  if (st.large_blocks != 0) abort();
  pinheap_destroy(heap);
}

static void test_destroy_reports(void **state) {
  (void)state;
  child_result r = run_child(destroy_live_child, NULL);
  assert_true(WIFEXITED(r.status));
  assert_int_equal(WEXITSTATUS(r.status), 0);
  assert_contains(r.err, "pinheap_sym_destroy(0x");
  assert_contains(r.err, "2 object(s) still live, 2100 bytes");
}

static void test_check_catches(void **state) {
  (void)state;
  solo_heap h = solo_open(4 * MiB);
  pinheap_sym *s = h.sym;
  char *a = pinheap_sym_malloc(s, 100);
  assert_int_equal(sym_check(s), 0);
  s->allocated++;
  assert_true(sym_check(s) >= 1);
  s->allocated--;
  /* Memory neither free nor a live object. */
  void *lost = em_alloc(&s->em, 4096, SYM_QUANTUM, NULL);
  assert_true(sym_check(s) >= 1);
  assert_int_equal(em_free(&s->em, lost, 4096), EM_FREED);
  /* An object overlapping free memory: b at the bottom, free space above. */
  char *b = pinheap_sym_malloc(s, MiB);
  assert_int_equal(pinheap_sym_offset(s, b), 0);
  sym_object key = {.addr = (uintptr_t)b};
  sym_object *o = PH_CONTAINER_OF(tree_floor(&s->live, &key.node), sym_object, node);
  o->bytes += 64;
  assert_true(sym_check(s) >= 1);
  o->bytes -= 64;
  assert_int_equal(sym_check(s), 0);
  pinheap_sym_free(s, a);
  pinheap_sym_free(s, b);
  solo_close(h);
}

/* ---- 11. remote writes right after calloc and realloc ------------------ */

/* Rank 1's allgather, while held, returns only after rank 0 has returned
 * from the same call and written into rank 1's new object, as a fast
 * process's remote write reaches a slow one. */
typedef struct held_group {
  atomic_int hold;    /* set by rank 1 before the call */
  atomic_int written; /* set by rank 0 after its write */
} held_group;

static int held_allgather(void *ctx, const void *in, void *out, size_t len) {
  fake_proc *p = ctx;
  held_group *g = p->arg;
  int r = fake_allgather(ctx, in, out, len);
  if (p->rank == 1 && atomic_load(&g->hold)) {
    for (int i = 0; !atomic_load(&g->written); i++) {
      FAKE_CHECK(p, i < 10000, "rank 0 did not write within 10 s");
      usleep(1000);
    }
  }
  return r;
}

/* Rank 0 writes byte into rank 1's copy of obj (rank 0's address). */
static void held_write(fake_proc *p, held_group *g, pinheap_sym *sym, void *obj, size_t len, int byte) {
  pinheap_sym_addr a;
  FAKE_CHECK(p, pinheap_sym_remote(sym, obj, 1, &a) == 0, "remote");
  memset((void *)(uintptr_t)a.addr, byte, len);
  atomic_store(&g->written, 1);
}

/* Rank 1: whether rank 0's write survived; then the group is in step. */
static void held_check(fake_proc *p, held_group *g, const unsigned char *obj, size_t len, int byte, const char *call) {
  if (p->rank == 1) {
    atomic_store(&g->hold, 0);
    size_t lost = 0;
    for (size_t i = 0; i < len; i++) lost += obj[i] != byte;
    FAKE_CHECK(p, lost == 0, "%zu of the %zu bytes rank 0 wrote into the object %s returned were overwritten", lost,
               len, call);
  }
  fake_all_same(p, 0);
  atomic_store(&g->written, 0);
}

#define HELD_BYTES (64 * KiB)

static void held_body(fake_proc *p, void *arg) {
  held_group *g = arg;
  p->arg = g;
  pinheap_collective coll = p->coll;
  coll.allgather = held_allgather;
  pinheap *heap = heap_for(4 * MiB);
  pinheap_sym *sym = pinheap_sym_create(heap, 4 * MiB, &coll, 0);
  FAKE_CHECK(p, sym, "create");
  /* calloc zeroes; rank 0 writes at once. */
  if (p->rank == 1) atomic_store(&g->hold, 1);
  unsigned char *c = pinheap_sym_calloc(sym, 1, HELD_BYTES);
  FAKE_CHECK(p, c, "calloc");
  if (p->rank == 0) held_write(p, g, sym, c, HELD_BYTES, 0xC5);
  held_check(p, g, c, HELD_BYTES, 0xC5, "calloc");
  /* realloc moves (the object sits at the top) and copies; rank 0 writes
   * over the copied part at once. */
  memset(c, 0x11, HELD_BYTES);
  fake_all_same(p, 0);
  if (p->rank == 1) atomic_store(&g->hold, 1);
  unsigned char *r = pinheap_sym_realloc(sym, c, 2 * HELD_BYTES);
  FAKE_CHECK(p, r && r != c, "realloc moves");
  if (p->rank == 0) held_write(p, g, sym, r, HELD_BYTES, 0xD7);
  held_check(p, g, r, HELD_BYTES, 0xD7, "realloc");
  pinheap_sym_free(sym, r);
  FAKE_CHECK(p, pinheap_sym_check(sym) == 0, "check");
  pinheap_sym_destroy(sym);
  pinheap_destroy(heap);
}

static void test_remote_write_after_return(void **state) {
  (void)state;
  held_group g;
  atomic_init(&g.hold, 0);
  atomic_init(&g.written, 0);
  fake_run(2, held_body, &g);
}

/* ---- 12. the heap a symmetric block needs ------------------------------- */

static size_t online_arenas(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n < 1 ? 1 : n > 64 ? 64 : (size_t)n;
}

/* pinheap_sym_create(n) in a FIXED heap of size bytes and arenas arenas
 * (0: the default): 0, or the errno (ENOMEM also when the heap is too
 * small to be made: below 2 MiB). */
static int sym_fits(size_t size, unsigned arenas, size_t n) {
  pinheap_options o;
  pinheap_options_init(&o);
  o.mode = PINHEAP_FIXED;
  o.size = size;
  o.arenas = arenas;
  errno = 0;
  pinheap *heap = pinheap_create(&o);
  if (!heap) {
    assert_contains(pinheap_last_error(), "too small");
    return errno;
  }
  errno = 0;
  pinheap_sym *s = pinheap_sym_create(heap, n, &solo, 0);
  int err = s ? 0 : errno;
  if (s) {
    assert_int_equal(pinheap_sym_check(s), 0);
    pinheap_sym_destroy(s);
  }
  pinheap_destroy(heap);
  return err;
}

static void test_heap_size_for_a_block(void **state) {
  (void)state;
  /* The extent manager's exact fit, through the public API: with 2 arenas
   * (which take none of it) a 124 MiB heap's free extent is all of it, and
   * 2 MiB-aligned. */
  pinheap_options o;
  pinheap_options_init(&o);
  o.mode = PINHEAP_FIXED;
  o.size = 124 * MiB;
  o.arenas = 2;
  pinheap *heap = pinheap_create(&o);
  assert_non_null(heap);
  pinheap_stats st;
  pinheap_get_stats(heap, &st);
  assert_int_equal(st.largest_free, 124 * MiB);
  for (size_t align = 4096; align <= PINHEAP_SYM_MAX_ALIGN; align <<= 1) {
    void *p = pinheap_aligned_alloc(heap, align, 124 * MiB);
    if (!p) fail_msg("aligned_alloc(%zu, 124 MiB) in a 124 MiB extent: %s", align, pinheap_last_error());
    assert_int_equal((uintptr_t)p % align, 0);
    pinheap_free(heap, p);
  }
  assert_int_equal(pinheap_check(heap), 0);
  pinheap_destroy(heap);

  /* PINHEAP_SYM_HEAP_SIZE holds the block exactly, for the default arenas
   * and others (which take none of the region); for a multiple of 2 MiB one
   * page less does not. */
  static const size_t sizes[] = {1, 4096, 2 * MiB, 3 * MiB + 1, 120 * MiB, 120 * MiB + 4096};
  static const unsigned arenas[] = {0, 1, 3};
  for (size_t a = 0; a < sizeof arenas / sizeof *arenas; a++) {
    size_t count = arenas[a] ? arenas[a] : online_arenas();
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
      size_t n = sizes[i], need = PINHEAP_SYM_HEAP_SIZE(n, count);
      int err = sym_fits(need, arenas[a], n);
      if (err)
        fail_msg("pinheap_sym_create(%zu) in a heap of PINHEAP_SYM_HEAP_SIZE = %zu bytes, %zu arenas: %s", n, need,
                 count, pinheap_last_error());
      if (n % PINHEAP_SYM_MAX_ALIGN == 0) assert_int_equal(sym_fits(need - 4096, arenas[a], n), ENOMEM);
    }
  }
}

/* ---- 13. the watchdog --------------------------------------------------- */

typedef struct watch_case {
  bool skip_create; /* rank 2 never calls create (else its third malloc) */
  unsigned pause_ms; /* else: rank 1 comes this late to every call, and rank 2 skips nothing */
} watch_case;

static void watch_body(fake_proc *p, void *arg) {
  const watch_case *c = arg;
  pinheap *heap = heap_for(4 * MiB);
  FAKE_CHECK(p, heap, "heap");
  bool skipper = p->rank == 2 && !c->pause_ms;
  if (skipper && c->skip_create) pause();
  pinheap_sym *sym = pinheap_sym_create(heap, 4 * MiB, &p->coll, 0);
  FAKE_CHECK(p, sym, "create");
  for (int i = 0; i < 3; i++) {
    if (skipper && i == 2) pause();
    if (p->rank == 1) usleep(c->pause_ms * 1000);
    void *a = pinheap_sym_malloc(sym, i == 2 ? 4096 : 64);
    FAKE_CHECK(p, a, "malloc");
  }
  pinheap_sym_destroy(sym);
  pinheap_destroy(heap);
}

/* In a child: a group of 3 under PINHEAP_SYM_TIMEOUT=1; SIGALRM after 20 s
 * if nothing else ends it. */
static void watch_child(void *arg) {
  alarm(20);
  setenv("PINHEAP_SYM_TIMEOUT", "1", 1);
  fake_run(3, watch_body, arg);
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* The threads of this process. */
static int task_count(void) {
  int n = 0;
  DIR *d = opendir("/proc/self/task");
  if (!d) return -1;
  for (struct dirent *e; (e = readdir(d));) n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

static void watch_quiet_child(void *arg) {
  (void)arg;
  /* Off: no thread. On: one per symmetric heap, gone at destroy. */
  unsetenv("PINHEAP_SYM_TIMEOUT");
  int before = task_count();
  pinheap *heap = heap_for(4 * MiB);
  pinheap_sym *s = pinheap_sym_create(heap, 4 * MiB, &solo, 0);
  if (!s || task_count() != before) abort();
  pinheap_sym_destroy(s);
  setenv("PINHEAP_SYM_TIMEOUT", "0", 1);
  s = pinheap_sym_create(heap, 4 * MiB, &solo, 0);
  if (!s || task_count() != before) abort();
  pinheap_sym_destroy(s);
  setenv("PINHEAP_SYM_TIMEOUT", "2.5", 1);
  s = pinheap_sym_create(heap, 4 * MiB, &solo, 0);
  if (!s || task_count() != before + 1 || pinheap_sym_check(s) != 0) abort();
  /* The checker sees a wait that was left open (marked now: the watchdog
   * would fire only 2.5 s later). */
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  pthread_mutex_lock(&s->watch.lock);
  s->watch.busy = true;
  s->watch.since = (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
  pthread_mutex_unlock(&s->watch.lock);
  if (sym_check(s) != 1) abort();
  pthread_mutex_lock(&s->watch.lock);
  s->watch.busy = false;
  pthread_mutex_unlock(&s->watch.lock);
  pinheap_sym_destroy(s);
  if (task_count() != before) abort();
  /* Not a number: EINVAL, naming the variable. */
  setenv("PINHEAP_SYM_TIMEOUT", "1.5s", 1);
  errno = 0;
  if (pinheap_sym_create(heap, 4 * MiB, &solo, 0) || errno != EINVAL ||
      !strstr(pinheap_last_error(), "PINHEAP_SYM_TIMEOUT=\"1.5s\""))
    abort();
  pinheap_destroy(heap);
  /* Calls that wait less than the limit go through. */
  alarm(20);
  setenv("PINHEAP_SYM_TIMEOUT", "1", 1);
  watch_case late = {.pause_ms = 300};
  fake_run(3, watch_body, &late);
}

static void test_watchdog(void **state) {
  (void)state;
  child_result r = run_child(watch_quiet_child, NULL);
  if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0) fail_msg("status %#x, stderr \"%s\"", r.status, r.err);

  static const struct {
    watch_case c;
    const char *call;
  } cases[] = {{{.skip_create = false}, "pinheap_sym_malloc: symmetric heap 0x"},
               {{.skip_create = true}, "pinheap_sym_create: symmetric heap 0x"}};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    double t0 = now_s();
    r = run_child(watch_child, (void *)&cases[i].c);
    double took = now_s() - t0;
    assert_aborted(&r, "a call rank 2 skipped");
    assert_contains(r.err, cases[i].call);
    assert_contains(r.err, cases[i].c.skip_create ? "create(4194304), before call 0 has waited 1."
                                                  : "call 2 malloc(4096) -> offset 0x3fef80 has waited 1.");
    assert_contains(r.err, "(PINHEAP_SYM_TIMEOUT=1.000): some process has not made this call");
    if (!strstr(r.err, "rank 0 of 3") && !strstr(r.err, "rank 1 of 3")) fail_msg("no waiting rank in \"%s\"", r.err);
    /* Within the limit, give or take scheduling on a loaded machine. */
    if (took < 1.0 || took > 6.0) fail_msg("the watchdog fired after %.2f s, with a limit of 1 s", took);
  }
}

int main(int argc, char **argv) {
  test_seed = seed_init(argc, argv, "test_sym");
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_random_same_offsets),
      cmocka_unit_test(test_seed_sequences),
      cmocka_unit_test(test_mismatch_aborts),
      cmocka_unit_test(test_one_rank_fails),
      cmocka_unit_test(test_bad_input),
      cmocka_unit_test(test_bad_pointers_abort),
      cmocka_unit_test(test_bad_pointer_on_one_rank),
      cmocka_unit_test(test_realloc_in_place_and_moves),
      cmocka_unit_test(test_calloc_clears),
      cmocka_unit_test(test_copy_from_reused_memory),
      cmocka_unit_test(test_nosync),
      cmocka_unit_test(test_simple_and_dynamic),
      cmocka_unit_test(test_destroy_reports),
      cmocka_unit_test(test_check_catches),
      cmocka_unit_test(test_remote_write_after_return),
      cmocka_unit_test(test_heap_size_for_a_block),
      cmocka_unit_test(test_watchdog),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
