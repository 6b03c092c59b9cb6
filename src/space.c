#include "space.h"

#include <errno.h>

#include "error.h"
#include "ph_assert.h"

int space_open(space *s, provider *prov, em_policy policy, size_t page, size_t small_max, size_t ring_min,
               gate *g) {
  s->prov = prov;
  if (em_init(&s->em, policy, page, small_max, ring_min) != 0) goto no_memory;
  if (pagemap_init(&s->pm, page) != 0) {
    em_fini(&s->em);
    goto no_memory;
  }
  if (hooks_shared_init(&s->grants, &s->em, &s->pm, g) != 0) {
    pagemap_fini(&s->pm);
    em_fini(&s->em);
    goto no_memory;
  }
  return 0;
no_memory:
  error_set(ENOMEM, "pinheap_create: no memory for the heap's metadata");
  return -1;
}

static pinheap_region space_region(const pagemap_chunk *c) {
  return (pinheap_region){.base = (void *)c->base, .size = c->size, .handle = c->handle};
}

void space_close(space *s) {
  for (const pagemap_chunk *c = pagemap_next_live(&s->pm, NULL); c; c = pagemap_next_live(&s->pm, c)) {
    pinheap_region r = space_region(c);
    provider_release(s->prov, &r);
  }
  hooks_shared_fini(&s->grants);
  pagemap_fini(&s->pm);
  em_fini(&s->em);
}

int space_add(space *s, const pinheap_region *r) {
  PH_ASSERT(r->base && r->size > 0);
  if (pagemap_add(&s->pm, r->base, r->size, r->handle) != 0) return -1;
  if (em_add_region(&s->em, r->base, r->size, provider_zeroed(s->prov)) == 0) return 0;
  pagemap_remove(&s->pm, r->base);
  return -1;
}

size_t space_take_free(space *s, pinheap_region *out, size_t max) {
  size_t n = 0;
  const pagemap_chunk *first = pagemap_first(&s->pm);
  for (const pagemap_chunk *c = pagemap_next_live(&s->pm, NULL); c && n < max; c = pagemap_next_live(&s->pm, c)) {
    if (c == first || em_remove_region(&s->em, (void *)c->base) != 0) continue;
    out[n++] = space_region(c);
    pagemap_remove(&s->pm, (void *)c->base);
  }
  return n;
}

size_t space_bytes(space *s) {
  size_t bytes = 0;
  for (const pagemap_chunk *c = pagemap_next_live(&s->pm, NULL); c; c = pagemap_next_live(&s->pm, c)) bytes += c->size;
  return bytes;
}
