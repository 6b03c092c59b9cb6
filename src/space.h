/*
 * space: a heap's memory and the structures over it, set up and torn down
 * here for every mode: the extent manager (em.h), the page map (pagemap.h)
 * and the grants of the heap's arenas (hooks.h), over the regions the
 * heap's provider gave (FIXED: one region; DYNAMIC and SIMPLE: chunks, each
 * a region of the manager and a chunk of the page map).
 *
 * Invariants: every live chunk of the page map is a region of the manager
 * and the other way round (but for the instant space_add and
 * space_take_free spend between the two), each obtained from prov; the
 * first region added stays until space_close.
 *
 * Thread-safe as its parts are; space_add and space_take_free must not race
 * with each other (DYNAMIC: its grow lock), nor anything with space_open and
 * space_close.
 */
#ifndef PINHEAP_SPACE_H
#define PINHEAP_SPACE_H

#include <stddef.h>

#include "em.h"
#include "gate.h"
#include "hooks.h"
#include "pagemap.h"
#include "provider.h"

typedef struct space {
  em em;
  pagemap pm;
  hooks_shared grants;
  provider *prov;
} space;

/* An empty space whose regions come from prov, placed by policy (small_max,
 * ring_min: em.h); the hooks pass gate g (fork.h). 0, or -1 with the error
 * set (nothing left open). */
int space_open(space *s, provider *prov, em_policy policy, size_t page, size_t small_max, size_t ring_min,
               gate *g);
/* Gives every region back to the provider and frees the structures. */
void space_close(space *s);

/* Adds the region r, obtained from the provider and free, to the page map
 * and then to the manager (once the manager has it, any thread may take an
 * extent of it and tag its pages). 0, or -1 (no memory for the metadata;
 * r is the caller's to give back). */
int space_add(space *s, const pinheap_region *r);
/* Takes out of the manager and the page map up to max regions that are
 * wholly free, the first excepted, into out; returns how many. The caller
 * gives them back to the provider. */
size_t space_take_free(space *s, pinheap_region *out, size_t max);
/* Bytes of the live regions. */
size_t space_bytes(space *s);

#endif
