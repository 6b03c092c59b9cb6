/*
 * provider: the only way into a heap's provider (pinheap.h: pinheap_provider;
 * the local one, local.h, when the options name none), as jemalloc's
 * ehooks.h is the only way into extent hooks. It checks what it passes
 * (PH_ASSERT: sizes page multiples, alignments powers of two of at least a
 * page) and what the provider promised: a base aligned as asked is checked
 * always (a provider that breaks it fails the call with EINVAL, the region
 * given back); with assertions, the local provider's NULL handle too. It turns a provider's errno
 * into the heap's (ENOMEM; EBUSY for a FIXED heap's one region) with a
 * message naming the provider, and tells valgrind that fresh memory is
 * defined (track.h).
 *
 * Invariant: pv is the options' provider, or &local, whose context is
 * local_opts.
 *
 * Thread-safe: the provider is called under no lock of the library's, from
 * any thread, as pinheap.h promises the provider's author.
 */
#ifndef PINHEAP_PROVIDER_H
#define PINHEAP_PROVIDER_H

#include <stdbool.h>
#include <stddef.h>

#include "local.h"
#include "pinheap.h"

typedef struct provider {
  const pinheap_provider *pv;
  pinheap_provider local;
  local_options local_opts;
  size_t page;
  bool busy_ok; /* EBUSY passes through (a FIXED heap's one region) */
} provider;

/* Sets up the provider of a heap created with *o (validated): opts.provider,
 * or the local one with opts' prefault, lock and hugepages; SIMPLE: always
 * the local one, charged to the commit limit. The record must not move
 * afterwards (the local provider's context is inside it). */
void provider_init(provider *p, const pinheap_options *o, size_t page);

/* size bytes (a positive page multiple) aligned to align (a power of two,
 * at least a page) into *out: 0, or an errno value (ENOMEM; EBUSY where
 * busy_ok; EINVAL when the provider returned NULL or a misaligned base,
 * which is given back) with the error text set, naming what, the provider
 * and the size (the local provider's own text stands). */
int provider_obtain(provider *p, size_t size, size_t align, pinheap_region *out, const char *what);
/* provider_obtain of size bytes, retrying after ENOMEM with sizes an eighth
 * smaller down to floor bytes (0: no retry); out->size tells what was had. */
int provider_obtain_shrinking(provider *p, size_t size, size_t floor, size_t align, pinheap_region *out,
                              const char *what);
/* Gives back a region provider_obtain filled, whole. */
void provider_release(provider *p, const pinheap_region *r);
/* Whether memory fresh from the provider reads as zero (the local one's). */
bool provider_zeroed(const provider *p);

#endif
