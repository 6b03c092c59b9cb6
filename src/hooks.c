#include "hooks.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "error.h"

static void *hooks_alloc(extent_hooks_t *h, void *new_addr, size_t size, size_t alignment, bool *zero, bool *commit,
                         unsigned arena_ind) {
  (void)arena_ind;
  hooks_arena *ha = (hooks_arena *)h;
  bool pristine = false;
  void *p;
  if (new_addr)
    p = em_alloc_at(ha->em, new_addr, size, &pristine) ? new_addr : NULL;
  else
    p = em_alloc(ha->em, size, alignment, &pristine);
  if (!p) return NULL;
  if (*zero && !pristine) memset(p, 0, size);
  *zero = *zero || pristine;
  *commit = true;
  pagemap_set_small(ha->pm, p, size);
  return p;
}

static void hooks_give_back(hooks_arena *ha, void *addr, size_t size) {
  pagemap_clear(ha->pm, addr, size);
  em_free_result r = em_free(ha->em, addr, size);
  if (r != EM_FREED)
    error_fatal("jemalloc gave back extent %p+%zu that the heap cannot take (%s)", addr, size,
                r == EM_ALREADY_FREE ? "already free" : r == EM_NOT_IN_REGION ? "not in the region" : "no metadata");
}

static bool hooks_dalloc(extent_hooks_t *h, void *addr, size_t size, bool committed, unsigned arena_ind) {
  (void)committed;
  (void)arena_ind;
  hooks_give_back((hooks_arena *)h, addr, size);
  return false;
}

static void hooks_destroy(extent_hooks_t *h, void *addr, size_t size, bool committed, unsigned arena_ind) {
  (void)committed;
  (void)arena_ind;
  hooks_give_back((hooks_arena *)h, addr, size);
}

static bool hooks_commit(extent_hooks_t *h, void *addr, size_t size, size_t offset, size_t length,
                         unsigned arena_ind) {
  (void)h, (void)addr, (void)size, (void)offset, (void)length, (void)arena_ind;
  return false;
}

static bool hooks_split(extent_hooks_t *h, void *addr, size_t size, size_t size_a, size_t size_b, bool committed,
                        unsigned arena_ind) {
  (void)size_a, (void)size_b, (void)committed, (void)arena_ind;
  return !em_contains(((hooks_arena *)h)->em, addr, size);
}

static bool hooks_merge(extent_hooks_t *h, void *addr_a, size_t size_a, void *addr_b, size_t size_b, bool committed,
                        unsigned arena_ind) {
  (void)committed, (void)arena_ind;
  if ((char *)addr_a + size_a != (char *)addr_b) return true;
  return !em_contains(((hooks_arena *)h)->em, addr_a, size_a + size_b);
}

static int hooks_arena_set(unsigned index, const char *leaf, void *value, size_t len) {
  char name[64];
  snprintf(name, sizeof name, "arena.%u.%s", index, leaf);
  return mallctl(name, NULL, NULL, value, len);
}

int hooks_arena_create(hooks_arena *ha, em *em, pagemap *pm) {
  memset(ha, 0, sizeof *ha);
  ha->em = em;
  ha->pm = pm;
  size_t sz = sizeof ha->index;
  int err;
  if (em) {
    ha->hooks = (extent_hooks_t){
        .alloc = hooks_alloc,
        .dalloc = hooks_dalloc,
        .destroy = hooks_destroy,
        .commit = hooks_commit,
        .decommit = NULL,
        .purge_lazy = NULL,
        .purge_forced = NULL,
        .split = hooks_split,
        .merge = hooks_merge,
    };
    extent_hooks_t *hp = &ha->hooks;
    err = mallctl("arenas.create", &ha->index, &sz, &hp, sizeof hp);
  } else {
    err = mallctl("arenas.create", &ha->index, &sz, NULL, 0);
  }
  if (err) {
    error_set(err == EAGAIN ? ENOMEM : err, "cannot create a jemalloc arena: arenas.create: %s", strerror(err));
    return -1;
  }
  if (em) {
    ssize_t decay = 0;
    size_t limit = (size_t)sysconf(_SC_PAGESIZE);
    if ((err = hooks_arena_set(ha->index, "dirty_decay_ms", &decay, sizeof decay)) ||
        (err = hooks_arena_set(ha->index, "muzzy_decay_ms", &decay, sizeof decay)) ||
        (err = hooks_arena_set(ha->index, "retain_grow_limit", &limit, sizeof limit))) {
      hooks_arena_destroy(ha);
      error_set(ENOMEM, "cannot configure jemalloc arena %u: %s", ha->index, strerror(err));
      return -1;
    }
  }
  return 0;
}

void hooks_arena_destroy(hooks_arena *ha) { hooks_arena_set(ha->index, "destroy", NULL, 0); }

void hooks_arena_purge(hooks_arena *ha) { hooks_arena_set(ha->index, "purge", NULL, 0); }

static size_t hooks_stat(unsigned index, const char *leaf) {
  char name[80];
  size_t v = 0, sz = sizeof v;
  snprintf(name, sizeof name, "stats.arenas.%u.%s", index, leaf);
  if (mallctl(name, &v, &sz, NULL, 0) != 0) return 0;
  return v;
}

size_t hooks_arena_allocated(const hooks_arena *ha) {
  return hooks_stat(ha->index, "small.allocated") + hooks_stat(ha->index, "large.allocated");
}

size_t hooks_arena_mapped(const hooks_arena *ha) { return hooks_stat(ha->index, "mapped"); }

void hooks_stats_refresh(void) {
  uint64_t epoch = 1;
  size_t sz = sizeof epoch;
  mallctl("epoch", &epoch, &sz, &epoch, sz);
}
