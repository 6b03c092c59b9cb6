#include "provider.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "ph_assert.h"
#include "track.h"
#include "util.h"

void provider_init(provider *p, const pinheap_options *o, size_t page) {
  p->page = page;
  p->local_opts = (local_options){.prefault = o->prefault, .lock = o->lock, .hugepages = o->hugepages};
  local_provider_init(&p->local, &p->local_opts);
  p->pv = o->provider ? o->provider : &p->local;
  p->busy_ok = o->mode == PINHEAP_FIXED;
  if (o->mode == PINHEAP_SIMPLE) {
    /* Ordinary memory, charged to the system's commit limit as malloc's is:
     * a size the system cannot back is refused at once. */
    p->local_opts.charged = true;
    p->pv = &p->local;
  }
}

int provider_obtain(provider *p, size_t size, size_t align, pinheap_region *out, const char *what) {
  PH_ASSERT(size > 0 && size % p->page == 0 && util_is_pow2(align) && align >= p->page);
  const pinheap_provider *pv = p->pv;
  void *base = NULL, *handle = NULL;
  unsigned serial = error_serial();
  int err = pv->obtain(pv->ctx, size, align, &base, &handle);
  bool broken = err == 0 && (!base || ((uintptr_t)base & (align - 1)));
  if (broken) {
    if (base && pv->release) pv->release(pv->ctx, base, size, handle);
    err = EINVAL;
  }
  if (err == 0) {
    PH_ASSERT(pv != &p->local || handle == NULL);
    *out = (pinheap_region){.base = base, .size = size, .handle = handle};
    track_mem_defined(base, size);
    return 0;
  }
  /* A FIXED heap's one region may be EBUSY (the provider serves no other
   * now); anything else but EINVAL is a lack of memory. */
  if (err != EINVAL && !(err == EBUSY && p->busy_ok)) err = ENOMEM;
  if (pv != &p->local || err == EINVAL) {
    /* The provider's own reason when it left one (copied: error_set
     * rewrites the buffer it lives in). */
    char why[256];
    snprintf(why, sizeof why, "%s",
             broken                      ? "it returned an address that is not aligned as asked"
             : error_serial() != serial ? pinheap_last_error()
                                         : strerror(err));
    error_set(err, "%s: provider %s cannot obtain %zu bytes: %s", what, pv->name ? pv->name : "(unnamed)", size, why);
  } else {
    errno = err;
  }
  return err;
}

int provider_obtain_shrinking(provider *p, size_t size, size_t floor, size_t align, pinheap_region *out,
                              const char *what) {
  floor = util_align_up(floor, p->page);
  for (;;) {
    int err = provider_obtain(p, size, align, out, what);
    size_t next = util_align_down(size - size / 8, p->page);
    if (err == 0 || err != ENOMEM || floor == 0 || size <= floor || next == 0) return err;
    size = next < floor ? floor : next;
  }
}

void provider_release(provider *p, const pinheap_region *r) {
  PH_ASSERT(r->base && r->size > 0 && r->size % p->page == 0);
  if (p->pv->release) p->pv->release(p->pv->ctx, r->base, r->size, r->handle);
}

bool provider_zeroed(const provider *p) { return p->pv == &p->local; }
