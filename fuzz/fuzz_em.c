/*
 * libFuzzer target: the extent manager under arbitrary operation sequences,
 * against a shadow list of the extents handed out, with em_check after every
 * operation. The manager never touches the memory it manages, so its regions
 * are plain numbers.
 *
 * Each operation takes 4 bytes: op (allocate, allocate at the lowest fit
 * (em_alloc_low), at an address, free, free twice, move), slot, and two
 * bytes of size/alignment
 * (alignments from a page to 2^15 pages). A refused allocation must have
 * found no free extent that holds an aligned extent of its size; under
 * two-ended, first-fit and ring placement, a page-aligned one must land
 * where em.h's rules, applied to a walk of the free extents, place it (so
 * that the manager's indexes find what a plain scan finds; the ring's
 * pointer followed by the fuzzer itself). The first
 * byte's top two bits choose the policy (00 two-ended, 01 ring, 10 bump,
 * 11 first fit), its next bit the largest small extent (1 MiB, or 4 MiB as
 * the heap's default: small holes then reach past the size index's exact
 * bins); the ring takes extents of 8 MiB and more.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "em.h"
#include "placement.h"

#define PAGE ((size_t)4096)
#define SLOTS 64
#define BASE ((uintptr_t)1 << 40)
#define REGION ((size_t)256 << 20)

typedef struct {
  uintptr_t addr;
  size_t size;
} live_extent;

static void fuzz_fail(const char *what) {
  fprintf(stderr, "fuzz_em: %s\n", what);
  abort();
}

static void check_disjoint(const live_extent *live, uintptr_t a, size_t size) {
  for (int i = 0; i < SLOTS; i++)
    if (live[i].size && a < live[i].addr + live[i].size && live[i].addr < a + size)
      fuzz_fail("an extent handed out overlaps a live one");
}

typedef struct aligned_query {
  size_t size, align;
  bool found;
} aligned_query;

/* em_walk_free visitor: whether [addr, addr + size) holds an extent of
 * q->size bytes aligned to q->align. */
static int holds_aligned(uintptr_t addr, size_t size, void *arg) {
  aligned_query *q = arg;
  uintptr_t start = (addr + q->align - 1) & ~(uintptr_t)(q->align - 1);
  q->found = start >= addr && start + q->size <= addr + size;
  return q->found;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len) {
  em m;
  static const em_policy policies[] = {EM_TWO_ENDED, EM_RING, EM_BUMP, EM_FIRST_FIT};
  size_t small_max = len && (data[0] & 0x20) ? (size_t)4 << 20 : (size_t)1 << 20;
  if (em_init(&m, policies[len ? data[0] >> 6 : 0], PAGE, small_max, (size_t)8 << 20) != 0) return 0;
  /* Two adjacent regions: extents must never cross or merge between them. */
  if (em_add_region(&m, (void *)BASE, REGION, true) != 0 || em_add_region(&m, (void *)(BASE + REGION), REGION, false))
    fuzz_fail("em_add_region");
  live_extent live[SLOTS] = {{0, 0}};
  size_t used = 0;
  uintptr_t rover = 0;
  for (size_t i = 1; i + 4 <= len; i += 4) {
    unsigned op = data[i] % 6, s = data[i + 1] % SLOTS;
    size_t pages = 1 + ((size_t)data[i + 2] << (data[i + 3] % 8)) % 20000;
    size_t size = pages * PAGE, align = PAGE << (data[i + 3] >> 4);
    live_extent *e = &live[s];
    if (op <= 1 && !e->size) {
      /* op 1: em_alloc_low, the lowest fit, the ring's pointer unmoved. */
      bool rules = align == PAGE && m.policy != EM_BUMP, low = op == 1;
      uintptr_t want = !rules ? 0 : low ? placement_low(&m, size) : placement_expected(&m, size, rover);
      void *p = low ? em_alloc_low(&m, size, align, NULL) : em_alloc(&m, size, align, NULL);
      if (rules && (uintptr_t)p != want) fuzz_fail("an extent placed against the policy's rules");
      if (!low) placement_advance(&m, &rover, p, size);
      if (!p && m.policy != EM_BUMP) {
        aligned_query q = {size, align, false};
        em_walk_free(&m, holds_aligned, &q);
        if (q.found) fuzz_fail("an aligned request refused though a free extent holds it");
      }
      if (p) {
        uintptr_t a = (uintptr_t)p;
        if (a % align || a < BASE || a + size > BASE + 2 * REGION) fuzz_fail("a misplaced extent");
        if (a < BASE + REGION && a + size > BASE + REGION) fuzz_fail("an extent crosses two regions");
        check_disjoint(live, a, size);
        *e = (live_extent){a, size};
        used += size;
      }
    } else if (op == 2 && !e->size) {
      uintptr_t a = BASE + ((size_t)data[i + 2] * 7919 % (2 * REGION / PAGE)) * PAGE;
      if (a + size <= BASE + 2 * REGION && em_alloc_at(&m, (void *)a, size, NULL)) {
        check_disjoint(live, a, size);
        *e = (live_extent){a, size};
        used += size;
      }
    } else if (op == 3 && e->size) {
      if (em_free(&m, (void *)e->addr, e->size) != EM_FREED) fuzz_fail("a live extent could not be freed");
      used -= e->size;
      *e = (live_extent){0, 0};
    } else if (op == 5 && e->size) {
      /* A move: the new place, then the old extent's parts it left out,
       * given back. */
      live_extent old = *e;
      *e = (live_extent){0, 0};
      uintptr_t q = (uintptr_t)em_move(&m, (void *)old.addr, old.size, size);
      if (q) {
        if (q < BASE || q + size > BASE + 2 * REGION || (q < BASE + REGION && q + size > BASE + REGION))
          fuzz_fail("a misplaced move");
        check_disjoint(live, q, size);
        if (old.addr < q && em_free(&m, (void *)old.addr, (q < old.addr + old.size ? q : old.addr + old.size) -
                                                              old.addr) != EM_FREED)
          fuzz_fail("the old extent's part below the new one was not in use");
        uintptr_t from = q + size > old.addr ? q + size : old.addr;
        if (old.addr + old.size > from && em_free(&m, (void *)from, old.addr + old.size - from) != EM_FREED)
          fuzz_fail("the old extent's part above the new one was not in use");
        used = used - old.size + size;
        *e = (live_extent){q, size};
      } else {
        *e = old;
      }
    } else if (op == 4 && e->size) {
      /* A second free of a live extent's range must be refused whole. */
      if (em_free(&m, (void *)e->addr, e->size) != EM_FREED) fuzz_fail("free");
      if (m.policy != EM_BUMP && em_free(&m, (void *)e->addr, e->size) == EM_FREED) fuzz_fail("a double free");
      used -= e->size;
      *e = (live_extent){0, 0};
    }
    if (em_check(&m) != 0) fuzz_fail("em_check");
    em_stats st;
    em_get_stats(&m, &st);
    if (m.policy != EM_BUMP && st.free_bytes != 2 * REGION - used) fuzz_fail("free bytes");
  }
  for (int s = 0; s < SLOTS; s++)
    if (live[s].size) em_free(&m, (void *)live[s].addr, live[s].size);
  if (em_check(&m) != 0) fuzz_fail("em_check at the end");
  if (m.policy != EM_BUMP) {
    em_stats st;
    em_get_stats(&m, &st);
    if (st.free_extents != 2 || st.free_bytes != 2 * REGION) fuzz_fail("everything freed: two whole regions");
  }
  em_fini(&m);
  return 0;
}
