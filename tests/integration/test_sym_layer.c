/*
 * Integration test of the comm-layer descriptors of symmetric heaps
 * (pinheap_sym_create_layer, pinheap_sym_layer_desc, pinheap_sym_rank),
 * over a group of threads (tests/fakecoll.h), each with a FIXED heap of its
 * own. A layer that describes each block by its address, its offset in its
 * registration and its rank: every rank reads every rank's descriptor, and
 * it matches what pinheap_sym_remote says; the layer's describe runs once
 * per rank, with the block; one more allgather than pinheap_sym_create.
 * A describe that fails on one rank fails every rank's create (its errno
 * there, the rank named elsewhere) and leaks nothing; ranks whose desc_len
 * differ get EINVAL; a bad layer is EINVAL without an allgather; another
 * layer's id, a rank out of range, and a heap made without a layer answer
 * NULL with EINVAL.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "fakecoll.h"
#include "pinheap.h"
#include "pinheap_sym.h"

#define MiB ((size_t)1 << 20)
#define RANKS 4

/* What the test layer records of a block. */
typedef struct test_desc {
  uint64_t base, reg_offset, size;
  int32_t rank;
  uint32_t zero;
} test_desc;

static const char test_id = 0, other_id = 0;
static atomic_int described;

/* ctx: the describing rank's fake_proc. */
static int test_describe(void *ctx, pinheap *heap, void *block, size_t size, void *desc) {
  fake_proc *p = ctx;
  pinheap_region r;
  if (pinheap_region_of(heap, block, &r) != 0) return EINVAL;
  test_desc d = {.base = (uintptr_t)block, .reg_offset = (uint64_t)((char *)block - (char *)r.base), .size = size,
                 .rank = p->rank};
  memcpy(desc, &d, sizeof d);
  atomic_fetch_add(&described, 1);
  return 0;
}

/* A describe that fails on rank `on` alone. */
typedef struct failing {
  fake_proc *p;
  int on;
} failing;

static int failing_describe(void *ctx, pinheap *heap, void *block, size_t size, void *desc) {
  failing *f = ctx;
  (void)heap, (void)block, (void)size;
  memset(desc, 0, sizeof(test_desc));
  if (f->p->rank != f->on) return 0;
  pinheap_set_error(ENOTCONN, "test layer: rank %d cannot describe its block", f->p->rank);
  return ENOTCONN;
}

static pinheap *heap_of(size_t size) {
  pinheap_options o;
  pinheap_options_init(&o);
  o.mode = PINHEAP_FIXED;
  o.size = size;
  o.arenas = 1;
  return pinheap_create(&o);
}

static void gathered_body(fake_proc *p, void *arg) {
  (void)arg;
  pinheap *heap = heap_of(32 * MiB);
  FAKE_CHECK(p, heap, "heap");
  void *before = pinheap_malloc(heap, 100000); /* the block is not at the region's start */
  pinheap_sym_layer layer = {.id = &test_id, .ctx = p, .desc_len = sizeof(test_desc), .describe = test_describe};
  pinheap_sym *sym = pinheap_sym_create_layer(heap, 4 * MiB, &p->coll, 0, &layer);
  FAKE_CHECK(p, sym, "pinheap_sym_create_layer");
  FAKE_CHECK(p, pinheap_sym_rank(sym) == p->rank, "pinheap_sym_rank");
  FAKE_CHECK(p, pinheap_sym_check(sym) == 0, "pinheap_sym_check");
  char *x = pinheap_sym_malloc(sym, 1000);
  FAKE_CHECK(p, x, "pinheap_sym_malloc");
  for (int r = 0; r < RANKS; r++) {
    const test_desc *d = pinheap_sym_layer_desc(sym, &test_id, r);
    FAKE_CHECK(p, d, "rank %d's descriptor", r);
    test_desc t;
    memcpy(&t, d, sizeof t);
    pinheap_sym_addr a;
    FAKE_CHECK(p, pinheap_sym_remote(sym, x, r, &a) == 0, "pinheap_sym_remote");
    uint64_t off = (uint64_t)pinheap_sym_offset(sym, x);
    FAKE_CHECK(p, t.rank == r && t.size == 4 * MiB && t.base + off == a.addr && t.reg_offset + off == a.reg_offset,
               "rank %d's descriptor says rank %d, block %#llx + %llu (offset %llu)", r, t.rank,
               (unsigned long long)t.base, (unsigned long long)t.size, (unsigned long long)t.reg_offset);
  }
  errno = 0;
  FAKE_CHECK(p, !pinheap_sym_layer_desc(sym, &other_id, 0) && errno == EINVAL, "another layer's id");
  errno = 0;
  FAKE_CHECK(p, !pinheap_sym_layer_desc(sym, &test_id, RANKS) && errno == EINVAL, "rank out of range");
  errno = 0;
  FAKE_CHECK(p, !pinheap_sym_layer_desc(sym, &test_id, -1) && errno == EINVAL, "rank -1");
  errno = 0;
  FAKE_CHECK(p, !pinheap_sym_layer_desc(NULL, &test_id, 0) && errno == EINVAL, "NULL");
  pinheap_sym_free(sym, x);
  pinheap_sym_destroy(sym);

  sym = pinheap_sym_create(heap, MiB, &p->coll, 0);
  FAKE_CHECK(p, sym, "pinheap_sym_create");
  errno = 0;
  FAKE_CHECK(p, !pinheap_sym_layer_desc(sym, &test_id, 0) && errno == EINVAL, "a heap made without a layer");
  pinheap_sym_destroy(sym);
  pinheap_free(heap, before);
  pinheap_stats st;
  pinheap_get_stats(heap, &st);
  FAKE_CHECK(p, st.large_blocks == 0, "the blocks went back");
  pinheap_destroy(heap);
}

static void test_gathered(void **state) {
  (void)state;
  atomic_store(&described, 0);
  unsigned long calls = fake_run(RANKS, gathered_body, NULL);
  assert_int_equal(atomic_load(&described), RANKS);
  /* create: its own allgather and the descriptors'; malloc, free, destroy;
   * the plain create and destroy. */
  assert_int_equal(calls, 2 + 3 + 2);
}

static void failing_body(fake_proc *p, void *arg) {
  int on = *(int *)arg;
  pinheap *heap = heap_of(16 * MiB);
  FAKE_CHECK(p, heap, "heap");
  pinheap_stats before;
  pinheap_get_stats(heap, &before);
  failing f = {p, on};
  pinheap_sym_layer layer = {.id = &test_id, .ctx = &f, .desc_len = sizeof(test_desc), .describe = failing_describe};
  errno = 0;
  pinheap_sym *sym = pinheap_sym_create_layer(heap, MiB, &p->coll, 0, &layer);
  int err = errno;
  FAKE_CHECK(p, !sym, "a describe that fails on rank %d", on);
  if (p->rank == on) {
    FAKE_CHECK(p, err == ENOTCONN && strstr(pinheap_last_error(), "cannot describe"), "its own reason (errno %d)",
               err);
  } else {
    char want[32];
    snprintf(want, sizeof want, "rank %d", on);
    FAKE_CHECK(p, err == ENOTCONN && strstr(pinheap_last_error(), want), "the rank named (errno %d)", err);
  }
  pinheap_stats after;
  pinheap_trim(heap); /* the thread's cache of extents may hold it */
  pinheap_get_stats(heap, &after);
  FAKE_CHECK(p, after.large_blocks == before.large_blocks && after.free_bytes == before.free_bytes,
             "the block went back");

  /* desc_len differs on the last rank. */
  pinheap_sym_layer odd = {.id = &test_id,
                           .ctx = p,
                           .desc_len = p->rank == RANKS - 1 ? sizeof(test_desc) + 8 : sizeof(test_desc),
                           .describe = test_describe};
  errno = 0;
  FAKE_CHECK(p, !pinheap_sym_create_layer(heap, MiB, &p->coll, 0, &odd) && errno == EINVAL,
             "descriptor lengths differ (errno %d)", errno);
  FAKE_CHECK(p, strstr(pinheap_last_error(), "disagree"), "the message says so");
  pinheap_destroy(heap);
}

static void test_failing(void **state) {
  (void)state;
  for (int on = 0; on < RANKS; on += RANKS - 1) fake_run(RANKS, failing_body, &on);
}

/* A group of one whose allgathers are counted. */
static int counted_allgather(void *ctx, const void *in, void *out, size_t len) {
  (*(int *)ctx)++;
  memcpy(out, in, len);
  return 0;
}

static void test_bad_layer(void **state) {
  (void)state;
  pinheap *heap = heap_of(16 * MiB);
  assert_non_null(heap);
  int calls = 0;
  pinheap_collective coll = {.ctx = &calls, .rank = 0, .nranks = 1, .allgather = counted_allgather};
  static const pinheap_sym_layer bad[] = {
      {.id = NULL, .desc_len = 8, .describe = test_describe},
      {.id = &test_id, .desc_len = 8, .describe = NULL},
      {.id = &test_id, .desc_len = 0, .describe = test_describe},
      {.id = &test_id, .desc_len = PINHEAP_SYM_DESC_MAX + 1, .describe = test_describe},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    errno = 0;
    assert_null(pinheap_sym_create_layer(heap, MiB, &coll, 0, &bad[i]));
    assert_int_equal(errno, EINVAL);
  }
  assert_int_equal(calls, 0);
  errno = 0;
  assert_int_equal(pinheap_sym_rank(NULL), -1);
  assert_int_equal(errno, EINVAL);
  pinheap_destroy(heap);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_gathered),
      cmocka_unit_test(test_failing),
      cmocka_unit_test(test_bad_layer),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
