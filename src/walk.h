/*
 * walk: a heap's memory extent by extent (pinheap_walk), and the summary
 * pictures are drawn from (pinheap_slices).
 *
 * The extent manager partitions each region into free extents and the
 * ranges between them (em_walk). A range in use is told apart by the page
 * map and the hooks' grants: a large block's head page holds its length; a
 * grant is jemalloc's (metadata when it was asked for 2 MiB aligned, else
 * slabs), but for its pages jemalloc gave back (held); any other page in
 * use is held (an extent a thread's cache keeps, or under the bump policy
 * one freed for good). It reads the heap's core (heap.h) and changes
 * nothing.
 *
 * Runs in a gate section (fork.h) with the manager's lock held through the
 * walk; the grants' lock is taken for each lookup (the hooks never take the
 * manager's lock while they hold it); the page map is read without a lock.
 */
#ifndef PINHEAP_WALK_H
#define PINHEAP_WALK_H

#include <stddef.h>

#include "heap.h"
#include "pinheap.h"

/* pinheap_walk of h: calls visit on every extent in address order until it
 * returns non-zero; returns 0 or that value. visit must not call into the
 * heap. */
int walk_extents(heap *h, int (*visit)(const pinheap_extent *extent, void *arg), void *arg);
/* pinheap_slices of h, n > 0: kinds[i] is the kind covering most bytes of
 * slice i. */
void walk_slices(heap *h, unsigned char *kinds, size_t n);

#endif
