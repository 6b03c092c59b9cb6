#include "debug.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>

#include "error.h"
#include "heap.h"
#include "util.h"

#ifdef PINHEAP_HAVE_VALGRIND
#include <valgrind/valgrind.h>
#else
/* Without valgrind's headers, its client requests are no-ops. */
#define RUNNING_ON_VALGRIND 0
#define VALGRIND_MAKE_MEM_DEFINED(p, n) ((void)(p), (void)(n))
#define VALGRIND_MAKE_MEM_UNDEFINED(p, n) ((void)(p), (void)(n))
#define VALGRIND_MAKE_MEM_NOACCESS(p, n) ((void)(p), (void)(n))
#define VALGRIND_CREATE_MEMPOOL(pool, rz, zeroed) ((void)(pool))
#define VALGRIND_DESTROY_MEMPOOL(pool) ((void)(pool))
#define VALGRIND_MEMPOOL_ALLOC(pool, p, n) ((void)(pool), (void)(p), (void)(n))
#define VALGRIND_MEMPOOL_CHANGE(pool, a, b, n) ((void)(pool), (void)(a), (void)(b), (void)(n))
#define VALGRIND_MEMPOOL_FREE(pool, p) ((void)(pool), (void)(p))
#endif

#define DEBUG_CANARY_BYTE 0xCAu
#define DEBUG_TRAILER 8u
/* What a canary adds to a request: 8 canary bytes at least, then the record. */
#define DEBUG_EXTRA 16u
#define DEBUG_FREED 0x46524545442d2d21ull
/* pinheap_destroy lists at most this many large blocks one by one. */
#define DEBUG_LIST_MAX 32u

unsigned debug_flags(unsigned asked) {
  return RUNNING_ON_VALGRIND ? asked | DEBUG_VALGRIND : asked;
}

static bool debug_canary(const pinheap *h) { return (h->debug & PINHEAP_DEBUG_CANARY) != 0; }
static bool debug_poison(const pinheap *h) { return (h->debug & PINHEAP_DEBUG_POISON) != 0; }
/* Whether a freed block carries the freed record: with canaries or poison. */
static bool debug_records(const pinheap *h) { return (h->debug & (PINHEAP_DEBUG_CANARY | PINHEAP_DEBUG_POISON)) != 0; }
static bool debug_quarantine(const pinheap *h) {
  return (h->debug & PINHEAP_DEBUG_QUARANTINE) && h->opts.mode != PINHEAP_FIXED;
}

/* What the record holds, mixed with the address so that a block's bytes
 * copied elsewhere, or a stray pattern, do not pass for a record. */
static uint64_t debug_key(const void *p) {
  return ((uint64_t)(uintptr_t)p * 0x9E3779B97F4A7C15ull) ^ 0x5EC0DEC0FFEE5EEDull;
}

static uint64_t debug_record(const void *p, size_t usable) {
  uint64_t v;
  memcpy(&v, (const char *)p + usable - DEBUG_TRAILER, sizeof v);
  return v;
}

static void debug_set_record(void *p, size_t usable, uint64_t v) {
  memcpy((char *)p + usable - DEBUG_TRAILER, &v, sizeof v);
}

/* The first byte of [from, to) of p that is not b, or to. */
static size_t debug_mismatch(const void *p, size_t from, size_t to, unsigned char b) {
  const unsigned char *c = p;
  const uint64_t word = 0x0101010101010101ull * b;
  size_t i = from;
  for (; i < to && (i & 7); i++)
    if (c[i] != b) return i;
  for (uint64_t v; i + 8 <= to; i += 8) {
    memcpy(&v, c + i, sizeof v);
    if (v != word) break;
  }
  for (; i < to; i++)
    if (c[i] != b) return i;
  return to;
}

/* Whether the live block p of usable bytes has its canary whole: then *n is
 * the size asked for; else why says what was found. Under valgrind the
 * record and the canary are left readable. */
static bool debug_canary_whole(const void *p, size_t usable, size_t *n, char *why, size_t len) {
  const unsigned char *c = p;
  VALGRIND_MAKE_MEM_DEFINED(c + usable - DEBUG_TRAILER, DEBUG_TRAILER);
  uint64_t key = debug_key(p), rec = debug_record(p, usable);
  if (rec == (key ^ DEBUG_FREED)) {
    snprintf(why, len, "block freed already (a double free)");
    return false;
  }
  uint64_t size = rec ^ key;
  if (usable < DEBUG_EXTRA || size > usable - DEBUG_EXTRA) {
    snprintf(why, len, "the size record at the end of the block's %zu usable bytes is overwritten: it holds %#018llx",
             usable, (unsigned long long)rec);
    return false;
  }
  VALGRIND_MAKE_MEM_DEFINED(c + size, usable - DEBUG_TRAILER - size);
  size_t at = debug_mismatch(p, (size_t)size, usable - DEBUG_TRAILER, DEBUG_CANARY_BYTE);
  if (at < usable - DEBUG_TRAILER) {
    snprintf(why, len, "block of %zu bytes written past its end: byte %zu is %#04x, the canary %#04x", (size_t)size,
             at, c[at], DEBUG_CANARY_BYTE);
    return false;
  }
  *n = (size_t)size;
  return true;
}

/* Whether the freed block p of usable bytes is still poisoned; else why
 * says what was found. */
static bool debug_poison_whole(const pinheap *h, const void *p, size_t usable, char *why, size_t len) {
  (void)h;
  const unsigned char *c = p;
  size_t end = usable - DEBUG_TRAILER;
  size_t at = debug_mismatch(p, 0, end, PINHEAP_POISON_BYTE);
  if (at < end) {
    snprintf(why, len, "freed block of %zu bytes written after its free: byte %zu is %#04x, the poison %#04x", usable,
             at, c[at], PINHEAP_POISON_BYTE);
    return false;
  }
  if (debug_record(p, usable) != (debug_key(p) ^ DEBUG_FREED)) {
    snprintf(why, len, "freed block of %zu bytes written after its free: its last 8 bytes hold %#018llx", usable,
             (unsigned long long)debug_record(p, usable));
    return false;
  }
  return true;
}

/* Whether the quarantined block p of size bytes is still poisoned; else why
 * says what was found. */
static bool debug_quarantine_whole(const void *p, size_t size, char *why, size_t len) {
  const unsigned char *c = p;
  VALGRIND_MAKE_MEM_DEFINED(p, size);
  size_t at = debug_mismatch(p, 0, size, PINHEAP_POISON_BYTE);
  VALGRIND_MAKE_MEM_NOACCESS(p, size);
  if (at == size) return true;
  snprintf(why, len, "freed block of %zu bytes in quarantine written after its free: byte %zu is %#04x, the poison %#04x",
           size, at, c[at], PINHEAP_POISON_BYTE);
  return false;
}

/* A block leaves the quarantine, to be given back: aborts when it was
 * written after its free. */
static void debug_quarantine_leave(void *ctx, void *p, size_t size) {
  (void)ctx;
  char why[200];
  if (!debug_quarantine_whole(p, size, why, sizeof why)) error_fatal("direct block %p: %s", p, why);
}

/* pinheap_destroy: the quarantined blocks written after their free. */
static void debug_report_quarantined(void *p, size_t size, void *arg) {
  char why[200];
  if (!debug_quarantine_whole(p, size, why, sizeof why))
    error_report("pinheap_destroy(%p): direct block %p: %s", arg, p, why);
}

void debug_open(pinheap *h) {
  if (h->debug & DEBUG_VALGRIND) VALGRIND_CREATE_MEMPOOL(h, 0, 0);
  if (debug_quarantine(h)) dynamic_quarantine_open(h, h->opts.quarantine, debug_quarantine_leave, h);
}

void debug_close(pinheap *h) {
  if (debug_quarantine(h)) dynamic_walk_quarantine(h, debug_report_quarantined, h);
  if (h->debug & DEBUG_VALGRIND) VALGRIND_DESTROY_MEMPOOL(h);
}

/* The size asked for the live block p of usable bytes; aborts, naming what,
 * when its canary is broken or it was freed already. */
static size_t debug_size_of(pinheap *h, const void *p, size_t usable, const char *what) {
  if (!debug_canary(h)) {
    /* Poison alone: the record is there only while the block is freed. */
    if (debug_records(h)) {
      VALGRIND_MAKE_MEM_DEFINED((const char *)p + usable - DEBUG_TRAILER, DEBUG_TRAILER);
      if (debug_record(p, usable) == (debug_key(p) ^ DEBUG_FREED))
        error_fatal("%s(%p): block freed already (a double free)", what, p);
    }
    return usable;
  }
  size_t n;
  char why[200];
  if (!debug_canary_whole(p, usable, &n, why, sizeof why)) error_fatal("%s(%p): %s", what, p, why);
  VALGRIND_MAKE_MEM_NOACCESS((const char *)p + n, usable - n);
  return n;
}

/* Gives the block p of usable bytes the shape of a live block of n bytes;
 * when it was live already (realloc), its first keep bytes stay the
 * caller's. */
static void debug_shape(pinheap *h, void *p, bool live, size_t keep, size_t usable, size_t n) {
  char *c = p;
  size_t visible = debug_canary(h) ? n : usable;
  VALGRIND_MAKE_MEM_UNDEFINED(c + keep, usable - keep);
  if (debug_canary(h)) {
    memset(c + n, DEBUG_CANARY_BYTE, usable - DEBUG_TRAILER - n);
    debug_set_record(p, usable, (uint64_t)n ^ debug_key(p));
  } else if (!live && debug_records(h)) {
    /* The caller's bytes now: no freed record left behind. */
    debug_set_record(p, usable, 0);
    VALGRIND_MAKE_MEM_UNDEFINED(c + usable - DEBUG_TRAILER, DEBUG_TRAILER);
  }
  if (h->debug & DEBUG_VALGRIND) {
    if (live)
      VALGRIND_MEMPOOL_CHANGE(h, p, p, visible);
    else
      VALGRIND_MEMPOOL_ALLOC(h, p, visible);
  }
  VALGRIND_MAKE_MEM_NOACCESS(c + visible, usable - visible);
}

/* Freed memory [from, to) of p: poisoned (when asked) and no-access. */
static void debug_bury(void *p, size_t from, size_t to, bool poison) {
  VALGRIND_MAKE_MEM_UNDEFINED((char *)p + from, to - from);
  if (poison) memset((char *)p + from, PINHEAP_POISON_BYTE, to - from);
  VALGRIND_MAKE_MEM_NOACCESS((char *)p + from, to - from);
}

/* The block p (NULL: the allocation failed) the plain path gave for size
 * bytes, shaped as a live block. */
static void *debug_new(pinheap *h, void *p, size_t size, bool zero, const char *what) {
  if (!p) return NULL;
  heap_kind kind;
  debug_shape(h, p, false, 0, heap_usable_plain(h, p, &kind, what), size);
  /* Zeroed here, not by the plain path: the block may have been poisoned. */
  if (zero) memset(p, 0, size);
  return p;
}

/* *need: size with the canary's bytes; false (the error set) when that
 * overflows. */
static bool debug_need(const pinheap *h, size_t size, size_t *need, const char *what) {
  size_t extra = debug_canary(h) ? DEBUG_EXTRA : 0;
  *need = size + extra;
  if (size <= SIZE_MAX - extra) return true;
  error_set(ENOMEM, "%s(%zu): impossible size", what, size);
  return false;
}

void *debug_alloc(pinheap *h, size_t size, size_t align, bool zero, const char *what) {
  size_t need;
  return debug_need(h, size, &need, what) ? debug_new(h, heap_alloc_plain(h, need, align, what), size, zero, what)
                                          : NULL;
}

void debug_free(pinheap *h, void *p) {
  heap_kind kind;
  size_t usable = heap_usable_plain(h, p, &kind, "pinheap_free");
  debug_size_of(h, p, usable, "pinheap_free");
  if (h->debug & DEBUG_VALGRIND) VALGRIND_MEMPOOL_FREE(h, p);
  if (kind == HEAP_DIRECT) {
    /* Poisoned whole into the quarantine, or back to its provider. */
    if (debug_quarantine(h) && usable <= h->opts.quarantine) {
      debug_bury(p, 0, usable, true);
      if (heap_quarantine_plain(h, p)) return;
    }
  } else {
    debug_bury(p, 0, usable, debug_poison(h));
    if (debug_records(h)) {
      VALGRIND_MAKE_MEM_UNDEFINED((char *)p + usable - DEBUG_TRAILER, DEBUG_TRAILER);
      debug_set_record(p, usable, debug_key(p) ^ DEBUG_FREED);
      VALGRIND_MAKE_MEM_NOACCESS((char *)p + usable - DEBUG_TRAILER, DEBUG_TRAILER);
    }
  }
  heap_free_plain(h, p);
}

size_t debug_usable_size(pinheap *h, const void *p) {
  heap_kind kind;
  return debug_size_of(h, p, heap_usable_plain(h, p, &kind, "pinheap_usable_size"), "pinheap_usable_size");
}

void *debug_realloc(pinheap *h, void *p, size_t size) {
  heap_kind kind;
  size_t usable = heap_usable_plain(h, p, &kind, "pinheap_realloc");
  size_t old = debug_size_of(h, p, usable, "pinheap_realloc");
  /* grow_from: the registration of a direct block, else the block. */
  size_t need, fit = 0, grow_from = usable;
  if (!debug_need(h, size, &need, "pinheap_realloc")) return NULL;
  if (kind == HEAP_SMALL) {
    /* In place while the block stays in its size class, about. */
    if (need <= usable && need > usable / 2) fit = usable;
  } else {
    size_t bytes = util_align_up(need, h->page);
    if (bytes == usable) {
      fit = usable;
    } else if (kind == HEAP_LARGE && bytes && need > h->large_threshold) {
      /* The tail goes back to the manager: buried before it does. */
      if (bytes < usable) debug_bury(p, bytes, usable, debug_poison(h));
      if (heap_resize_plain(h, p, usable, bytes)) fit = bytes;
    } else if (kind == HEAP_DIRECT && bytes >= h->opts.direct_threshold) {
      /* In its registration, or to one with room to grow (dynamic.h). */
      if (heap_direct_resize_plain(h, p, bytes, &grow_from)) {
        if (bytes < usable) debug_bury(p, bytes, usable, debug_poison(h));
        fit = bytes;
      }
    }
  }
  size_t keep = old < size ? old : size;
  if (fit) {
    debug_shape(h, p, true, keep, fit, size);
    return p;
  }
  /* Moved; into a direct block with room to grow when it takes one. */
  bool direct = h->opts.mode != PINHEAP_FIXED && util_align_up(need, h->page) >= h->opts.direct_threshold;
  void *q = direct ? debug_new(h, heap_direct_plain(h, need, grow_from, "pinheap_realloc"), size, false,
                               "pinheap_realloc")
                   : debug_alloc(h, size, 0, false, "pinheap_realloc");
  if (!q) return NULL;
  memcpy(q, p, keep);
  debug_free(h, p);
  return q;
}

void debug_block_reused(pinheap *h, void *p, size_t usable, const char *what) {
  VALGRIND_MAKE_MEM_DEFINED(p, usable);
  char why[200];
  if (debug_poison(h) && !debug_poison_whole(h, p, usable, why, sizeof why))
    error_fatal("%s: block %p: %s", what, p, why);
}

void debug_block_released(pinheap *h, void *p, size_t usable, const char *what) {
  if (!debug_poison(h)) return;
  VALGRIND_MAKE_MEM_DEFINED(p, usable);
  char why[200];
  bool whole = debug_poison_whole(h, p, usable, why, sizeof why);
  VALGRIND_MAKE_MEM_NOACCESS(p, usable);
  if (!whole) error_fatal("%s: block %p: %s", what, p, why);
}

struct debug_walk {
  pinheap *h;
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
  if (!debug_canary(w->h))
    error_report("  large block %p: %zu bytes", p, usable);
  else if (debug_canary_whole(p, usable, &n, why, sizeof why))
    error_report("  large block %p: %zu bytes", p, n);
  else
    error_report("  large block %p: %zu usable bytes, %s", p, usable, why);
}

static void debug_list_class(pinheap *h, unsigned j, size_t size) {
  size_t count = 0;
  for (unsigned a = 0; a < h->narenas; a++) count += hooks_arena_live(&h->arenas[a], j);
  if (count) error_report("  %zu object(s) of jemalloc's %zu-byte class", count, size);
}

void debug_report_live(pinheap *h) {
  struct debug_walk w = {.h = h};
  pagemap_walk_large(&h->pm, debug_list_large, &w);
  if (h->opts.mode != PINHEAP_FIXED) dynamic_walk_direct(h, debug_list_large, &w);
  if (w.more) error_report("  and %zu more large block(s)", w.more);
  /* jemalloc's objects, by size class: it can count them, not list them. */
  hooks_stats_refresh();
  for (unsigned j = 0; j < h->classes.nbins; j++) debug_list_class(h, j, h->classes.size[j]);
}

static void debug_check_live(void *p, size_t usable, void *arg) {
  struct debug_walk *w = arg;
  size_t n;
  char why[200];
  if (debug_canary_whole(p, usable, &n, why, sizeof why)) {
    VALGRIND_MAKE_MEM_NOACCESS((char *)p + n, usable - n);
    return;
  }
  fprintf(stderr, "debug: live block %p: %s\n", p, why);
  w->broken++;
}

static void debug_check_freed(void *p, size_t usable, void *arg) {
  struct debug_walk *w = arg;
  char why[200];
  VALGRIND_MAKE_MEM_DEFINED(p, usable);
  if (!debug_poison_whole(w->h, p, usable, why, sizeof why)) {
    fprintf(stderr, "debug: block %p in a thread cache: %s\n", p, why);
    w->broken++;
  }
  VALGRIND_MAKE_MEM_NOACCESS(p, usable);
}

static void debug_check_quarantined(void *p, size_t size, void *arg) {
  struct debug_walk *w = arg;
  char why[200];
  if (debug_quarantine_whole(p, size, why, sizeof why)) return;
  fprintf(stderr, "debug: direct block %p: %s\n", p, why);
  w->broken++;
}

int debug_check_blocks(pinheap *h) {
  struct debug_walk w = {.h = h};
  if (debug_canary(h)) pagemap_walk_large(&h->pm, debug_check_live, &w);
  if (debug_canary(h) && h->opts.mode != PINHEAP_FIXED) dynamic_walk_direct(h, debug_check_live, &w);
  if (debug_quarantine(h)) dynamic_walk_quarantine(h, debug_check_quarantined, &w);
  return w.broken;
}

int debug_check_cached(pinheap *h) {
  struct debug_walk w = {.h = h};
  if (debug_poison(h)) thread_walk_cached(&h->threads, debug_check_freed, &w);
  return w.broken;
}
