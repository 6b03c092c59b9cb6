/*
 * arenas: the jemalloc arenas of one heap, made on first use. One is made
 * with the heap (a FIXED heap under the bump policy: all of them), the
 * others as new thread caches take their slots in turn (arenas_for), so
 * that a process that allocates from one thread pays for one.
 *
 * Their grants are exact (hooks.h), but under the bump policy, where each
 * arena keeps its first grant (ARENAS_BYTES), taken while it is made: then
 * all of them are made with the heap. When an arena cannot be made, max
 * drops to the arenas made.
 *
 * Invariants: arena[0 .. made) are live and index[i] is arena[i]'s jemalloc
 * index; 1 <= made <= max <= ARENAS_MAX once open; every arena made has
 * exact grants when exact is set, none otherwise, and keeps the extents it
 * frees for keep_ms.
 *
 * Thread-safe: made is published with release, read with acquire; making
 * an arena takes lock (and no other lock of the heap's).
 */
#ifndef PINHEAP_ARENAS_H
#define PINHEAP_ARENAS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "hooks.h"

#define ARENAS_MAX 64u
/* What an arena without exact grants takes of a FIXED region for good: the
 * first grant jemalloc keeps (hooks.c); its metadata lies outside. */
#define ARENAS_BYTES ((size_t)2 << 20)

typedef struct arenas {
  hooks_shared *grants;
  _Atomic unsigned made;
  _Atomic unsigned max;  /* lowered to made when one cannot be made */
  _Atomic unsigned next; /* round robin over the slots */
  pthread_mutex_t lock;
  bool exact;
  ssize_t keep_ms;
  unsigned index[ARENAS_MAX];
  hooks_arena arena[ARENAS_MAX];
} arenas;

/* How many arenas a heap may make: asked, or one per online CPU (at most
 * ARENAS_MAX). */
unsigned arenas_wanted(unsigned asked);
/* The least region (or cap) a heap of n arenas works in: one 2 MiB extent
 * for what is allocated, and ARENAS_BYTES each without exact grants. */
size_t arenas_least_size(unsigned n, bool exact);

/* Opens the set of at most max arenas over grants, making now of them
 * (1 <= now <= max), with exact grants or not, keeping what they free for
 * keep_ms (hooks_arena_create). 0, or -1 with the error set (then nothing
 * is left to close). */
int arenas_open(arenas *a, hooks_shared *grants, unsigned max, unsigned now, bool exact, ssize_t keep_ms);
/* Destroys every arena; every tcache that may hold their objects must be
 * gone. */
void arenas_close(arenas *a);

/* The jemalloc index of the arena of a new thread cache (ctx: the set),
 * making it when its slot is first taken; when none can be made, one that
 * exists; its slot (below ARENAS_MAX) into *slot. Leaves errno as it was. */
unsigned arenas_for(void *ctx, unsigned *slot);
/* The first arena's jemalloc index (its slot is 0). */
static inline unsigned arenas_first(const arenas *a) { return a->index[0]; }
/* The arenas made, and the most there may be. */
void arenas_count(const arenas *a, unsigned *made, unsigned *max);

/* Hands every arena's unused extents back (hooks_arena_purge). */
void arenas_purge(arenas *a);
/* Bytes in live allocations of all arenas, and the live objects of
 * jemalloc bin j in them (jemalloc's stats, refreshed). */
size_t arenas_allocated(arenas *a);
size_t arenas_live(arenas *a, unsigned j);

/* fork(2) (fork.h): prepare takes the lock (no arena is being made while
 * the process is copied); parent and child release it. */
void arenas_prefork(arenas *a);
void arenas_postfork(arenas *a);

/* Number of broken invariants. */
int arenas_check(arenas *a);

#endif
