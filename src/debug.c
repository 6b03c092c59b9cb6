#include "debug.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "canary.h"
#include "error.h"
#include "track.h"
#include "util.h"

/* pinheap_destroy lists at most this many large blocks one by one. */
#define DEBUG_LIST_MAX 32u
/* Freed small objects each thread holds back with the debugging aids. */
#define DEBUG_HOLD 256u

unsigned debug_flags(unsigned asked) { return track_running() ? asked | DEBUG_VALGRIND : asked; }

static bool debug_canary(const debug *d) { return (d->flags & PINHEAP_DEBUG_CANARY) != 0; }
static bool debug_poison(const debug *d) { return (d->flags & PINHEAP_DEBUG_POISON) != 0; }
static bool debug_valgrind(const debug *d) { return (d->flags & DEBUG_VALGRIND) != 0; }
/* Whether a freed block carries the freed record: with canaries or poison. */
static bool debug_records(const debug *d) { return (d->flags & (PINHEAP_DEBUG_CANARY | PINHEAP_DEBUG_POISON)) != 0; }
static bool debug_quarantine(const debug *d) {
  return (d->flags & PINHEAP_DEBUG_QUARANTINE) && d->core->opts.mode != PINHEAP_FIXED;
}

/* A block leaves the quarantine, to be given back: aborts when it was
 * written after its free. */
static void debug_quarantine_leave(void *ctx, void *p, size_t size) {
  (void)ctx;
  char why[200];
  if (!canary_quarantined(p, size, why, sizeof why)) error_fatal("direct block %p: %s", p, why);
}

/* pinheap_destroy: the quarantined blocks written after their free. */
static void debug_report_quarantined(void *p, size_t size, void *arg) {
  char why[200];
  if (!canary_quarantined(p, size, why, sizeof why))
    error_report("pinheap_destroy(%p): direct block %p: %s", arg, p, why);
}

void debug_open(debug *d, heap *core, unsigned flags) {
  d->core = core;
  d->flags = flags;
  heap_set_plain(core, flags & PINHEAP_DEBUG_ALL ? DEBUG_HOLD : 0, debug_poison(d));
  if (debug_valgrind(d)) track_pool_create(d);
  if (debug_quarantine(d)) dynamic_quarantine_open(&core->dyn, core->opts.quarantine, debug_quarantine_leave, d);
}

void debug_close(debug *d) {
  if (debug_quarantine(d)) dynamic_walk_quarantine(&d->core->dyn, debug_report_quarantined, d->core);
  if (debug_valgrind(d)) track_pool_destroy(d);
}

/* The size asked for the live block p of usable bytes; aborts, naming what,
 * when its canary is broken or it was freed already. */
static size_t debug_size_of(const debug *d, const void *p, size_t usable, const char *what) {
  if (!debug_canary(d)) {
    /* Poison alone: the record is there only while the block is freed. */
    if (debug_records(d)) {
      track_mem_defined((const char *)p + usable - CANARY_TRAILER, CANARY_TRAILER);
      if (canary_freed(p, usable)) error_fatal("%s(%p): block freed already (a double free)", what, p);
    }
    return usable;
  }
  size_t n;
  char why[200];
  if (!canary_whole(p, usable, &n, why, sizeof why)) error_fatal("%s(%p): %s", what, p, why);
  track_mem_noaccess((const char *)p + n, usable - n);
  return n;
}

/* Gives the block p of usable bytes the shape of a live block of n bytes;
 * when it was live already (realloc), its first keep bytes stay the
 * caller's. */
static void debug_shape(debug *d, void *p, bool live, size_t keep, size_t usable, size_t n) {
  char *c = p;
  size_t visible = debug_canary(d) ? n : usable;
  track_mem_undefined(c + keep, usable - keep);
  if (debug_canary(d)) {
    canary_write(p, usable, n);
  } else if (debug_records(d) && (!live || keep <= usable - CANARY_TRAILER)) {
    /* The caller's bytes now: no freed record left behind, neither this
     * block's nor, at a new end a shrink in place made, that of an earlier
     * block freed at this address with this length. */
    canary_set_record(p, usable, 0);
    track_mem_undefined(c + usable - CANARY_TRAILER, CANARY_TRAILER);
  }
  if (debug_valgrind(d)) {
    if (live)
      track_pool_change(d, p, visible);
    else
      track_pool_alloc(d, p, visible);
  }
  track_mem_noaccess(c + visible, usable - visible);
}

/* Freed memory [from, to) of p: poisoned (when asked) and no-access. */
static void debug_bury(void *p, size_t from, size_t to, bool poison) {
  track_mem_undefined((char *)p + from, to - from);
  if (poison) memset((char *)p + from, PINHEAP_POISON_BYTE, to - from);
  track_mem_noaccess((char *)p + from, to - from);
}

/* The block p (NULL: the allocation failed) the plain path gave for size
 * bytes, shaped as a live block. */
static void *debug_new(debug *d, void *p, size_t size, bool zero, const char *what) {
  if (!p) return NULL;
  heap_kind kind;
  size_t usable = heap_usable_plain(d->core, p, &kind, what);
  debug_shape(d, p, false, 0, usable, size);
  /* Zeroed here, not by the plain path: the block may have been poisoned.
   * Without canaries the whole usable size is the caller's. */
  if (zero) memset(p, 0, debug_canary(d) ? size : usable);
  return p;
}

/* *need: size with the canary's bytes; false (the error set) when that
 * overflows. */
static bool debug_need(const debug *d, size_t size, size_t *need, const char *what) {
  size_t extra = debug_canary(d) ? CANARY_EXTRA : 0;
  *need = size + extra;
  if (size <= SIZE_MAX - extra) return true;
  error_set(ENOMEM, "%s(%zu): impossible size", what, size);
  return false;
}

void *debug_alloc(debug *d, size_t size, size_t align, bool zero, const char *what) {
  size_t need;
  return debug_need(d, size, &need, what)
             ? debug_new(d, heap_alloc_plain(d->core, need, align, what), size, zero, what)
             : NULL;
}

void debug_free(debug *d, void *p) {
  heap_kind kind;
  size_t usable = heap_usable_plain(d->core, p, &kind, "pinheap_free");
  debug_size_of(d, p, usable, "pinheap_free");
  if (debug_valgrind(d)) track_pool_free(d, p);
  if (kind == HEAP_DIRECT) {
    /* Poisoned whole into the quarantine, or back to its provider. */
    if (debug_quarantine(d) && usable <= d->core->opts.quarantine) {
      debug_bury(p, 0, usable, true);
      if (heap_quarantine_plain(d->core, p)) return;
    }
  } else {
    debug_bury(p, 0, usable, debug_poison(d));
    if (debug_records(d)) {
      track_mem_undefined((char *)p + usable - CANARY_TRAILER, CANARY_TRAILER);
      canary_set_record(p, usable, canary_key(p) ^ CANARY_FREED);
      track_mem_noaccess((char *)p + usable - CANARY_TRAILER, CANARY_TRAILER);
    }
  }
  heap_free_plain(d->core, p);
}

size_t debug_usable_size(debug *d, const void *p) {
  heap_kind kind;
  return debug_size_of(d, p, heap_usable_plain(d->core, p, &kind, "pinheap_usable_size"), "pinheap_usable_size");
}

void *debug_realloc(debug *d, void *p, size_t size) {
  heap *h = d->core;
  heap_kind kind;
  size_t usable = heap_usable_plain(h, p, &kind, "pinheap_realloc");
  size_t old = debug_size_of(d, p, usable, "pinheap_realloc");
  /* grow_from: the registration of a direct block, else the block. */
  size_t need, fit = 0, grow_from = usable;
  if (!debug_need(d, size, &need, "pinheap_realloc")) return NULL;
  if (kind == HEAP_SMALL) {
    /* In place while the block stays in its size class, about. */
    if (need <= usable && need > usable / 2) fit = usable;
  } else {
    size_t bytes = util_align_up(need, h->page);
    if (bytes == usable) {
      fit = usable;
    } else if (kind == HEAP_LARGE && bytes && need > h->large_threshold) {
      /* The tail goes back to the manager: buried before it does. */
      if (bytes < usable) debug_bury(p, bytes, usable, debug_poison(d));
      if (heap_resize_plain(h, p, usable, bytes)) fit = bytes;
    } else if (kind == HEAP_DIRECT && bytes >= h->opts.direct_threshold) {
      /* In its registration, or to one with room to grow (dynamic.h). */
      if (heap_direct_resize_plain(h, p, bytes, &grow_from)) {
        if (bytes < usable) debug_bury(p, bytes, usable, debug_poison(d));
        fit = bytes;
      }
    }
  }
  size_t keep = old < size ? old : size;
  if (fit) {
    debug_shape(d, p, true, keep, fit, size);
    return p;
  }
  /* Moved; into a direct block with room to grow when it takes one. */
  bool direct = h->opts.mode != PINHEAP_FIXED && util_align_up(need, h->page) >= h->opts.direct_threshold;
  void *q = direct ? debug_new(d, heap_direct_plain(h, need, grow_from, "pinheap_realloc"), size, false,
                               "pinheap_realloc")
                   : debug_alloc(d, size, 0, false, "pinheap_realloc");
  if (!q) return NULL;
  memcpy(q, p, keep);
  debug_free(d, p);
  return q;
}

struct debug_walk {
  const debug *d;
  int broken;
  size_t listed, more;
};

static void debug_list_large(void *p, size_t usable, void *arg) {
  struct debug_walk *w = arg;
  if (w->listed == DEBUG_LIST_MAX) {
    w->more++;
    return;
  }
  w->listed++;
  size_t n;
  char why[200];
  if (!debug_canary(w->d))
    error_report("  large block %p: %zu bytes", p, usable);
  else if (canary_whole(p, usable, &n, why, sizeof why))
    error_report("  large block %p: %zu bytes", p, n);
  else
    error_report("  large block %p: %zu usable bytes, %s", p, usable, why);
}

void debug_report_live(debug *d) {
  heap *h = d->core;
  struct debug_walk w = {.d = d};
  pagemap_walk_large(&h->space.pm, debug_list_large, &w);
  if (h->opts.mode != PINHEAP_FIXED) dynamic_walk_direct(&h->dyn, debug_list_large, &w);
  if (w.more) error_report("  and %zu more large block(s)", w.more);
  /* jemalloc's objects, by size class: it can count them, not list them. */
  for (unsigned j = 0; j < h->classes.nbins; j++) {
    size_t count = arenas_live(&h->arenas, j);
    if (count) error_report("  %zu object(s) of jemalloc's %u-byte class", count, h->classes.size[j]);
  }
}

static void debug_check_live(void *p, size_t usable, void *arg) {
  struct debug_walk *w = arg;
  size_t n;
  char why[200];
  if (canary_whole(p, usable, &n, why, sizeof why)) {
    track_mem_noaccess((char *)p + n, usable - n);
    return;
  }
  fprintf(stderr, "debug: live block %p: %s\n", p, why);
  w->broken++;
}

static void debug_check_freed(void *p, size_t usable, void *arg) {
  struct debug_walk *w = arg;
  char why[200];
  track_mem_defined(p, usable);
  if (!canary_poisoned(p, usable, why, sizeof why)) {
    fprintf(stderr, "debug: block %p in a thread cache: %s\n", p, why);
    w->broken++;
  }
  track_mem_noaccess(p, usable);
}

static void debug_check_quarantined(void *p, size_t size, void *arg) {
  struct debug_walk *w = arg;
  char why[200];
  if (canary_quarantined(p, size, why, sizeof why)) return;
  fprintf(stderr, "debug: direct block %p: %s\n", p, why);
  w->broken++;
}

int debug_check_blocks(debug *d) {
  heap *h = d->core;
  struct debug_walk w = {.d = d};
  gate_enter(&h->gate);
  if (debug_canary(d)) pagemap_walk_large(&h->space.pm, debug_check_live, &w);
  if (debug_canary(d) && h->opts.mode != PINHEAP_FIXED) dynamic_walk_direct(&h->dyn, debug_check_live, &w);
  if (debug_quarantine(d)) dynamic_walk_quarantine(&h->dyn, debug_check_quarantined, &w);
  gate_leave(&h->gate);
  return w.broken;
}

int debug_check_cached(debug *d) {
  struct debug_walk w = {.d = d};
  if (debug_poison(d)) thread_walk_cached(&d->core->threads, debug_check_freed, &w);
  return w.broken;
}
