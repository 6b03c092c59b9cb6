#include "arenas.h"

#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include "error.h"
#include "ph_assert.h"

unsigned arenas_wanted(unsigned asked) {
  if (asked) return asked;
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  if (n < 1) n = 1;
  return n > (long)ARENAS_MAX ? ARENAS_MAX : (unsigned)n;
}

size_t arenas_least_size(unsigned n, bool exact) { return (exact ? 0 : n * ARENAS_BYTES) + ((size_t)2 << 20); }

/* Makes the next arena; lock held, or the set not yet shared. 0, or -1 with
 * the error set; then no other is made. */
static int arenas_add(arenas *a) {
  unsigned i = atomic_load_explicit(&a->made, memory_order_relaxed);
  PH_ASSERT(i < atomic_load(&a->max));
  if (hooks_arena_create(&a->arena[i], a->grants, a->exact, a->keep_ms) != 0) {
    atomic_store(&a->max, i);
    return -1;
  }
  a->index[i] = a->arena[i].index;
  atomic_store_explicit(&a->made, i + 1, memory_order_release);
  PH_ASSERT_EXPENSIVE(arenas_check(a) == 0);
  return 0;
}

int arenas_open(arenas *a, hooks_shared *grants, unsigned max, unsigned now, bool exact, ssize_t keep_ms) {
  PH_ASSERT(max >= 1 && max <= ARENAS_MAX && now >= 1 && now <= max);
  a->grants = grants;
  atomic_init(&a->made, 0);
  atomic_init(&a->max, max);
  atomic_init(&a->next, 0);
  a->exact = exact;
  a->keep_ms = keep_ms;
  pthread_mutex_init(&a->lock, NULL);
  for (unsigned i = 0; i < now; i++) {
    if (arenas_add(a) != 0) {
      arenas_close(a);
      return -1;
    }
  }
  return 0;
}

void arenas_close(arenas *a) {
  unsigned made = atomic_load(&a->made);
  for (unsigned i = 0; i < made; i++) hooks_arena_destroy(&a->arena[i]);
  atomic_store(&a->made, 0);
  pthread_mutex_destroy(&a->lock);
}

unsigned arenas_for(void *ctx, unsigned *slot_out) {
  arenas *a = ctx;
  unsigned slot = atomic_fetch_add_explicit(&a->next, 1, memory_order_relaxed) % atomic_load(&a->max);
  unsigned n = atomic_load_explicit(&a->made, memory_order_acquire);
  if (slot >= n) {
    int saved = errno; /* a failure here is no failure of the caller's */
    pthread_mutex_lock(&a->lock);
    while ((n = atomic_load_explicit(&a->made, memory_order_relaxed)) <= slot && arenas_add(a) == 0) {
    }
    pthread_mutex_unlock(&a->lock);
    errno = saved;
  }
  *slot_out = slot < n ? slot : slot % n;
  return a->index[*slot_out];
}

void arenas_count(const arenas *a, unsigned *made, unsigned *max) {
  *made = atomic_load_explicit(&a->made, memory_order_acquire);
  *max = atomic_load(&a->max);
}

void arenas_purge(arenas *a) {
  unsigned n = atomic_load_explicit(&a->made, memory_order_acquire);
  for (unsigned i = 0; i < n; i++) hooks_arena_purge(&a->arena[i]);
}

size_t arenas_allocated(arenas *a) {
  hooks_stats_refresh();
  size_t bytes = 0;
  unsigned n = atomic_load_explicit(&a->made, memory_order_acquire);
  for (unsigned i = 0; i < n; i++) bytes += hooks_arena_allocated(&a->arena[i]);
  return bytes;
}

size_t arenas_live(arenas *a, unsigned j) {
  hooks_stats_refresh();
  size_t count = 0;
  unsigned n = atomic_load_explicit(&a->made, memory_order_acquire);
  for (unsigned i = 0; i < n; i++) count += hooks_arena_live(&a->arena[i], j);
  return count;
}

void arenas_prefork(arenas *a) { pthread_mutex_lock(&a->lock); }

void arenas_postfork(arenas *a) { pthread_mutex_unlock(&a->lock); }

int arenas_check(arenas *a) {
  unsigned made, max;
  arenas_count(a, &made, &max);
  int broken = 0;
  if (made < 1 || made > max || max > ARENAS_MAX) {
    fprintf(stderr, "arenas: %u made of at most %u should be 1 <= made <= max <= %u\n", made, max, ARENAS_MAX);
    broken++;
  }
  for (unsigned i = 0; i < made && i < ARENAS_MAX; i++) {
    if (a->index[i] != a->arena[i].index || a->arena[i].shared != a->grants || a->arena[i].exact != a->exact) {
      fprintf(stderr, "arenas: arena %u should have jemalloc index %u, the heap's grants and exact %d\n", i,
              a->index[i], a->exact);
      broken++;
    }
    ssize_t keep = hooks_arena_keep_ms(&a->arena[i]);
    if (keep != a->keep_ms) {
      fprintf(stderr, "arenas: arena %u keeps what it frees %zd ms, should keep it %zd ms (-1: until a purge)\n", i,
              keep, a->keep_ms);
      broken++;
    }
  }
  return broken;
}
